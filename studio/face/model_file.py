"""The face model file: one ``.safetensors`` holding a generator, optionally its discriminator
and named control directions, described by JSON metadata.

Layout::

    G.<param>         generator state_dict (NVIDIA names)
    D.<param>         discriminator state_dict (optional; kept for fine-tuning)
    controls.<name>   float32 [w_dim] or [num_ws, w_dim] directions in W space (optional)
    metadata "studio" JSON: {"format": "dhs-face", "format_version": 1, "G_kwargs": {...},
                             "D_kwargs": {...} | null, "name", "resolution", "source",
                             "license", "training": {...}, "controls": {name: {...}}}

Weights are data: nothing in the file is executed. Every problem with a file surfaces as a
:class:`~studio.core.errors.FileFormatError` naming the file and what is wrong.
"""

from __future__ import annotations

import json
import math
import os
import re
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from studio.core.atomic import atomic_write_bytes
from studio.core.errors import FileFormatError

if TYPE_CHECKING:  # torch is imported lazily: reading metadata must stay cheap
    import torch

    from studio.face.discriminator import Discriminator
    from studio.face.generator import Generator

FORMAT = "dhs-face"
FORMAT_VERSION = 1
META_KEY = "studio"
MAX_HEADER_BYTES = 100 * 1024 * 1024
CONTROL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-]{0,63}$")
_DTYPE_SIZES = {
    "F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1,
    "BOOL": 1,
}
_FLOAT_DTYPES = {"F64", "F32", "F16", "BF16"}


@dataclass
class FaceModel:
    """A loaded face model: ``G`` in eval mode without gradients, ``D`` or None, the metadata
    and the named control directions (float32 numpy arrays)."""

    G: Generator
    D: Discriminator | None
    meta: dict[str, Any]
    controls: dict[str, np.ndarray] = field(default_factory=dict)
    path: Path | None = None

    @property
    def name(self) -> str:
        return str(self.meta.get("name", ""))

    @property
    def resolution(self) -> int:
        return int(self.G.img_resolution)


# --------------------------------------------------------------------------- header


def _read_header(path: Path) -> tuple[dict[str, Any], int]:
    """Parse and check a safetensors header; returns (header, data_start)."""
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            head = f.read(8)
            if len(head) < 8:
                raise FileFormatError("not a safetensors file (too short)", path)
            (n,) = struct.unpack("<Q", head)
            if n < 2 or n > MAX_HEADER_BYTES or 8 + n > size:
                raise FileFormatError("not a safetensors file (bad header length)", path)
            raw = f.read(n)
    except FileNotFoundError:
        raise FileFormatError("file not found", path) from None
    except IsADirectoryError:
        raise FileFormatError("is a folder, not a face model file", path) from None
    except OSError as exc:
        raise FileFormatError(f"cannot read: {exc.strerror or exc}", path) from None
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise FileFormatError("not a safetensors file (header is not JSON)", path) from None
    if not isinstance(header, dict):
        raise FileFormatError("not a safetensors file (header is not an object)", path)
    data_len = size - 8 - n
    for key, info in header.items():
        if key == "__metadata__":
            continue
        if not isinstance(info, dict):
            raise FileFormatError(f"tensor {key!r}: malformed header entry", path)
        dtype, shape, offsets = info.get("dtype"), info.get("shape"), info.get("data_offsets")
        if dtype not in _DTYPE_SIZES:
            raise FileFormatError(f"tensor {key!r}: unsupported dtype {dtype!r}", path)
        if (
            not isinstance(shape, list)
            or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in shape)
            or not isinstance(offsets, list)
            or len(offsets) != 2
            or not all(isinstance(o, int) and not isinstance(o, bool) for o in offsets)
        ):
            raise FileFormatError(f"tensor {key!r}: malformed header entry", path)
        begin, end = offsets
        if not 0 <= begin <= end or end - begin != math.prod(shape) * _DTYPE_SIZES[dtype]:
            raise FileFormatError(f"tensor {key!r}: size does not match its shape", path)
        if end > data_len:
            raise FileFormatError(f"truncated file (tensor {key!r} runs past the end)", path)
    return header, 8 + n


def _parse_meta(header: Mapping[str, Any], path: Path) -> dict[str, Any]:
    md = header.get("__metadata__")
    if not isinstance(md, dict) or META_KEY not in md:
        raise FileFormatError("not a face model (no studio metadata)", path)
    text = md[META_KEY]
    if not isinstance(text, str):
        raise FileFormatError("invalid studio metadata", path)
    try:
        meta = json.loads(text)
    except (json.JSONDecodeError, RecursionError):
        raise FileFormatError("invalid studio metadata (not JSON)", path) from None
    if not isinstance(meta, dict):
        raise FileFormatError("invalid studio metadata (not an object)", path)
    if meta.get("format") != FORMAT:
        raise FileFormatError(f"not a face model (format is {meta.get('format')!r})", path)
    version = meta.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise FileFormatError("invalid studio metadata (format_version)", path)
    if version > FORMAT_VERSION:
        raise FileFormatError(
            f"face model format version {version} is newer than this studio supports "
            f"({FORMAT_VERSION}); update the studio",
            path,
        )
    if not isinstance(meta.get("G_kwargs"), dict):
        raise FileFormatError("invalid studio metadata (G_kwargs missing)", path)
    if meta.get("D_kwargs") is not None and not isinstance(meta["D_kwargs"], dict):
        raise FileFormatError("invalid studio metadata (D_kwargs)", path)
    if not isinstance(meta.get("controls", {}), dict):
        raise FileFormatError("invalid studio metadata (controls)", path)
    if not isinstance(meta.get("resolution"), int):
        raise FileFormatError("invalid studio metadata (resolution)", path)
    return meta


def read_face_model_meta(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The metadata of a face model, reading only the file header (cheap; for model pickers)."""
    p = Path(path)
    header, _ = _read_header(p)
    return _parse_meta(header, p)


# --------------------------------------------------------------------------- save


def _control_arrays(
    controls: Mapping[str, Any] | None, G: Generator
) -> tuple[dict[str, torch.Tensor], dict[str, dict[str, Any]]]:
    import torch

    from studio.face.generator import plain_json

    tensors: dict[str, torch.Tensor] = {}
    infos: dict[str, dict[str, Any]] = {}
    for name, value in (controls or {}).items():
        if not CONTROL_NAME.match(name):
            raise ValueError(f"control name {name!r}: use letters, digits, '-' and '_'")
        info: dict[str, Any] = {"label": name}
        if isinstance(value, Mapping):
            info.update({k: v for k, v in value.items() if k != "direction"})
            value = value["direction"]
        arr = torch.as_tensor(np.asarray(value, dtype=np.float32))
        if tuple(arr.shape) not in ((G.w_dim,), (G.num_ws, G.w_dim)):
            raise ValueError(
                f"control {name!r} has shape {tuple(arr.shape)}; expected ({G.w_dim},) "
                f"or ({G.num_ws}, {G.w_dim})"
            )
        tensors[f"controls.{name}"] = arr.contiguous()
        infos[name] = plain_json(info)
    return tensors, infos


def save_face_model(
    path: str | os.PathLike[str],
    G: Generator,
    *,
    D: Discriminator | None = None,
    name: str,
    source: str = "",
    license: str = "",
    training: Mapping[str, Any] | None = None,
    controls: Mapping[str, Any] | None = None,
) -> Path:
    """Write a face model atomically (temp file, fsync, rename).

    ``controls`` maps a name to a direction (array ``[w_dim]`` or ``[num_ws, w_dim]``) or to
    a dict with a ``"direction"`` array plus JSON fields (``label``, ...) for the metadata.
    """
    import torch
    from safetensors.torch import save as st_save

    from studio.face.generator import plain_json

    p = Path(path)
    tensors: dict[str, torch.Tensor] = {}
    for prefix, net in (("G", G), ("D", D)):
        if net is None:
            continue
        for key, t in net.state_dict().items():
            tensors[f"{prefix}.{key}"] = t.detach().to("cpu", torch.float32).contiguous().clone()
    ctl_tensors, ctl_infos = _control_arrays(controls, G)
    tensors.update(ctl_tensors)
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "G_kwargs": G.init_kwargs,
        "D_kwargs": D.init_kwargs if D is not None else None,
        "name": str(name),
        "resolution": int(G.img_resolution),
        "source": str(source),
        "license": str(license),
        "training": plain_json(dict(training or {})),
        "controls": ctl_infos,
    }
    data = st_save(tensors, metadata={META_KEY: json.dumps(meta, sort_keys=True)})
    atomic_write_bytes(p, data)
    return p


# --------------------------------------------------------------------------- load


def _load_tensors(path: Path) -> dict[str, torch.Tensor]:
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            return {key: f.get_tensor(key) for key in f.keys()}  # noqa: SIM118
    except (SafetensorError, ValueError, RuntimeError, OSError) as exc:
        raise FileFormatError(f"cannot read tensors: {exc}", path) from None


# Sanity bounds for network sizes read from a file, so a hostile header cannot make us
# allocate absurd amounts of memory before the tensors are checked.
_INT_BOUNDS = {
    "z_dim": (0, 4096), "w_dim": (1, 4096), "c_dim": (0, 100_000), "img_channels": (1, 4),
    "img_resolution": (4, 4096), "channel_base": (1, 1 << 20), "channel_max": (1, 4096),
    "num_layers": (1, 64), "num_fp16_res": (0, 16), "cmap_dim": (1, 4096),
    "embed_features": (1, 4096), "layer_features": (1, 4096),
}


def _check_kwargs(kwargs: Any, where: str, path: Path) -> None:
    if not isinstance(kwargs, dict):
        raise FileFormatError(f"invalid {where} in metadata (not an object)", path)
    for key, value in kwargs.items():
        if isinstance(value, dict):
            _check_kwargs(value, where, path)
        elif key in _INT_BOUNDS and value is not None:
            lo, hi = _INT_BOUNDS[key]
            if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
                raise FileFormatError(f"invalid {where} in metadata ({key}={value!r})", path)


def _build(kind: str, cls: type, kwargs: dict[str, Any], path: Path) -> Any:
    _check_kwargs(kwargs, f"{kind}_kwargs", path)
    try:
        return cls.from_kwargs(kwargs)
    except (TypeError, ValueError, KeyError, AssertionError, ZeroDivisionError,
            OverflowError, RuntimeError, MemoryError) as exc:
        raise FileFormatError(f"invalid {kind}_kwargs in metadata: {exc}", path) from None


def _check_layout(net: torch.nn.Module, prefix: str, shapes: Mapping[str, tuple[int, ...]],
                  path: Path) -> None:
    """Names and shapes of ``net``'s state against the file's tensors ``prefix.*``."""
    own = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    given = {k[len(prefix) + 1 :]: s for k, s in shapes.items() if k.startswith(prefix + ".")}
    missing = [k for k in own if k not in given]
    extra = [k for k in given if k not in own]
    if missing:
        raise FileFormatError(f"tensor {prefix}.{missing[0]} is missing ({len(missing)} missing)", path)
    if extra:
        raise FileFormatError(f"unexpected tensor {prefix}.{extra[0]} ({len(extra)} unexpected)", path)
    for key, shape in given.items():
        if shape != own[key]:
            raise FileFormatError(
                f"tensor {prefix}.{key} has shape {list(shape)}, expected {list(own[key])}", path
            )


def _network(kind: str, cls: type, kwargs: dict[str, Any],
             shapes: Mapping[str, tuple[int, ...]], path: Path) -> Any:
    """Build a network from the metadata and check its layout against the file's tensors.

    A rough size estimate comes first, so that a header asking for an enormous network is
    refused before anything is allocated."""
    _check_kwargs(kwargs, f"{kind}_kwargs", path)
    syn = (kwargs.get("synthesis_kwargs") or {}) if kind == "G" else kwargs
    base = syn.get("channel_base", 32768) if isinstance(syn, dict) else 32768
    cmax = syn.get("channel_max", 512) if isinstance(syn, dict) else 512
    res = kwargs.get("img_resolution", 256)
    estimate, r = 0, 4
    while isinstance(res, int) and r <= res:
        estimate += 20 * min(base // r, cmax) ** 2
        r *= 2
    have = sum(math.prod(s) for k, s in shapes.items() if k.startswith(kind + "."))
    if estimate > 64 * have + 50_000_000:
        raise FileFormatError(
            f"{kind}_kwargs describe a network far bigger than the tensors in the file", path
        )
    net = _build(kind, cls, kwargs, path)
    _check_layout(net, kind, shapes, path)
    return net


def _all_finite(t: torch.Tensor) -> bool:
    import torch

    if math.isfinite(float(t.float().sum())):  # one pass; NaN and inf always propagate
        return True
    return bool(torch.isfinite(t).all())  # a finite tensor whose sum overflowed


def _fill(net: torch.nn.Module, prefix: str, tensors: Mapping[str, torch.Tensor], path: Path) -> None:

    given = {k[len(prefix) + 1 :]: v for k, v in tensors.items() if k.startswith(prefix + ".")}
    for key, t in given.items():
        if not _all_finite(t):
            raise FileFormatError(f"tensor {prefix}.{key} contains NaN or infinity", path)
    net.load_state_dict({k: v.float() for k, v in given.items()}, strict=True)


def load_face_model(path: str | os.PathLike[str], device: Any = "cpu") -> FaceModel:
    """Load a face model; ``G`` (and ``D``) in eval mode with ``requires_grad`` off."""

    from studio.face.discriminator import Discriminator
    from studio.face.generator import Generator

    p = Path(path)
    header, _ = _read_header(p)
    meta = _parse_meta(header, p)
    for key in header:
        if key != "__metadata__" and header[key]["dtype"] not in _FLOAT_DTYPES:
            raise FileFormatError(f"tensor {key} is not floating point", p)
    shapes = {k: tuple(v["shape"]) for k, v in header.items() if k != "__metadata__"}
    G = _network("G", Generator, meta["G_kwargs"], shapes, p)
    D = None
    if meta.get("D_kwargs") is not None:
        D = _network("D", Discriminator, meta["D_kwargs"], shapes, p)
    elif any(k.startswith("D.") for k in shapes):
        raise FileFormatError("file has D.* tensors but no D_kwargs in its metadata", p)
    tensors = _load_tensors(p)
    _fill(G, "G", tensors, p)
    if D is not None:
        _fill(D, "D", tensors, p)
    controls: dict[str, np.ndarray] = {}
    for key, t in tensors.items():
        if key.startswith(("G.", "D.")):
            continue
        if not key.startswith("controls."):
            raise FileFormatError(f"unexpected tensor {key}", p)
        name = key[len("controls.") :]
        if tuple(t.shape) not in ((G.w_dim,), (G.num_ws, G.w_dim)):
            raise FileFormatError(
                f"tensor {key} has shape {list(t.shape)}, expected [{G.w_dim}] or "
                f"[{G.num_ws}, {G.w_dim}]",
                p,
            )
        if not _all_finite(t):
            raise FileFormatError(f"tensor {key} contains NaN or infinity", p)
        controls[name] = t.float().numpy().copy()
    if int(meta["resolution"]) != G.img_resolution:
        raise FileFormatError(
            f"metadata says resolution {meta['resolution']} but the generator makes "
            f"{G.img_resolution} px images",
            p,
        )
    G = G.to(device).eval().requires_grad_(False)
    if D is not None:
        D = D.to(device).eval().requires_grad_(False)
    return FaceModel(G=G, D=D, meta=meta, controls=controls, path=p)
