"""The face model file: one ``.safetensors`` holding a generator, optionally its discriminator
and named control directions, described by JSON metadata.

Layout::

    G.<param>         generator state_dict (NVIDIA names)
    D.<param>         discriminator state_dict (optional; kept for fine-tuning)
    E.<param>         parameter encoder state_dict (optional; distilled models: renderer
                      parameters -> w, for exact parametric controls)
    controls.<name>   float32 [w_dim] or [num_ws, w_dim] directions in W space (optional)
    metadata "studio" JSON: {"format": "dhs-face", "format_version": 1, "G_kwargs": {...},
                             "D_kwargs": {...} | null, "name", "resolution", "source",
                             "license", "training": {...}, "controls": {name: {...}},
                             "controls_order": [name, ...],
                             "encoder": {"kwargs": {...}, "layout": [...],
                                         "start": [...], ...} | absent}

``controls`` holds each control's metadata (:meth:`studio.face.controls.Control.to_meta`:
label, group, kind, range, neutral, layers, parameter moves, measured figures); a
direction control has its tensor, a parametric one has none and needs the encoder.

Weights are data: nothing in the file is executed. Every problem with a file surfaces as a
:class:`~studio.core.errors.FileFormatError` naming the file and what is wrong.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from studio.core.atomic import atomic_write_bytes
from studio.core.errors import FileFormatError
from studio.core.model_registry import (
    FACE_FORMAT,
    FACE_FORMAT_VERSION,
    FLOAT_DTYPES,
    STUDIO_META_KEY,
    face_metadata,
    read_safetensors_header,
)
from studio.face.controls import Control, ControlError, ControlSet

if TYPE_CHECKING:  # torch is imported lazily: reading metadata must stay cheap
    import torch

    from studio.face.discriminator import Discriminator
    from studio.face.generator import Generator

FORMAT = FACE_FORMAT
FORMAT_VERSION = FACE_FORMAT_VERSION
META_KEY = STUDIO_META_KEY
CONTROL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-]{0,63}$")


@dataclass
class FaceModel:
    """A loaded face model: ``G`` in eval mode without gradients, ``D`` or None, the metadata
    and the named control directions (float32 numpy arrays)."""

    G: Generator
    D: Discriminator | None
    meta: dict[str, Any]
    controls: dict[str, np.ndarray] = field(default_factory=dict)
    path: Path | None = None
    control_set: ControlSet | None = None  # None: built from ``controls`` (directions)
    encoder: Any = None  # studio.face.param_encoder.ParamEncoder or None
    encoder_meta: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if self.control_set is None:
            self.control_set = ControlSet([Control(name, direction=np.asarray(d, np.float32))
                                           for name, d in self.controls.items()])
        self._layout: Any = None

    @property
    def encoder_layout(self) -> Any:
        """The encoder's :class:`~studio.face.param_encoder.EncoderLayout`, or None."""
        if self.encoder is None or not self.encoder_meta:
            return None
        if self._layout is None:
            from studio.face.param_encoder import EncoderLayout

            self._layout = EncoderLayout.from_json(self.encoder_meta["layout"])
        return self._layout

    @property
    def encoder_start(self) -> np.ndarray:
        """Where parameter fits start: the mean encoded training vector."""
        start = (self.encoder_meta or {}).get("start")
        if start is None:
            return np.zeros(self.encoder_layout.dim, np.float32)
        return np.asarray(start, np.float32)

    @property
    def name(self) -> str:
        return str(self.meta.get("name", ""))

    @property
    def resolution(self) -> int:
        return int(self.G.img_resolution)


# --------------------------------------------------------------------------- metadata

# Names the network code knows (checked against studio.face.layers/generator in the tests;
# kept here so that reading metadata does not import torch).
ACTIVATIONS = ("linear", "relu", "lrelu")
ARCHITECTURES = ("orig", "skip", "resnet")

# Sanity bounds for network settings read from a file, so a hostile or damaged header gives
# a clear error (and cannot make us allocate absurd amounts of memory) before anything is
# built. Keys mean the same wherever they appear (G_kwargs, mapping_kwargs, D_kwargs, ...).
_INT_BOUNDS = {
    "z_dim": (0, 4096), "w_dim": (1, 4096), "c_dim": (0, 100_000), "img_channels": (1, 4),
    "img_resolution": (4, 4096), "channel_base": (1, 1 << 20), "channel_max": (1, 4096),
    "num_layers": (1, 64), "num_fp16_res": (0, 16), "cmap_dim": (1, 4096),
    "embed_features": (1, 4096), "layer_features": (1, 4096), "mbstd_group_size": (1, 1024),
    "mbstd_num_channels": (0, 64), "freeze_layers": (0, 64),
}
_FLOAT_BOUNDS = {  # (low, high), both inclusive
    "lr_multiplier": (1e-8, 1e3), "w_avg_beta": (0.0, 1.0), "conv_clamp": (1e-6, 1e9),
}
_BOOLS = ("use_noise", "fp16_channels_last")
_NESTED = ("mapping_kwargs", "synthesis_kwargs", "block_kwargs", "epilogue_kwargs")


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _check_kwargs(kwargs: Any, where: str, path: Path) -> None:
    """Types and ranges of network settings: integers in bounds, the resolution a power of
    two, known activation and architecture names, finite floats, a sane resample filter."""
    if not isinstance(kwargs, dict):
        raise FileFormatError(f"invalid {where} in metadata (not an object)", path)

    def bad(key: str, value: Any, why: str = "") -> FileFormatError:
        shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
        return FileFormatError(f"invalid {where} in metadata ({key}={shown}{why})", path)

    for key, value in kwargs.items():
        if not isinstance(key, str):  # pragma: no cover - JSON keys are strings
            raise bad(str(key), value)
        if key in _NESTED:
            if value is not None:
                _check_kwargs(value, where, path)
        elif isinstance(value, dict):
            raise bad(key, value, ": an object where a value belongs")
        elif key in _INT_BOUNDS:
            if value is None and key in ("embed_features", "layer_features", "cmap_dim",
                                         "mbstd_group_size"):
                continue
            lo, hi = _INT_BOUNDS[key]
            if not _is_int(value) or not lo <= value <= hi:
                raise bad(key, value, f": an integer from {lo} to {hi}")
            if key == "img_resolution" and value & (value - 1):
                raise bad(key, value, ": not a power of two")
        elif key in _FLOAT_BOUNDS:
            if value is None and key in ("w_avg_beta", "conv_clamp"):
                continue
            lo, hi = _FLOAT_BOUNDS[key]
            if (not isinstance(value, int | float) or isinstance(value, bool)
                    or not math.isfinite(value) or not lo <= value <= hi):
                raise bad(key, value, f": a number from {lo:g} to {hi:g}")
        elif key == "activation":
            if value not in ACTIVATIONS:
                raise bad(key, value, f": unknown activation (known: {', '.join(ACTIVATIONS)})")
        elif key == "architecture":
            if value not in ARCHITECTURES:
                raise bad(key, value,
                          f": unknown architecture (known: {', '.join(ARCHITECTURES)})")
        elif key == "resample_filter":
            if (not isinstance(value, list) or not 1 <= len(value) <= 16
                    or not all(isinstance(v, int | float) and not isinstance(v, bool)
                               and math.isfinite(v) and abs(v) <= 1e6 for v in value)
                    or abs(sum(value)) < 1e-6):
                raise bad(key, value, ": 1 to 16 finite numbers with a non-zero sum")
        elif key in _BOOLS and not isinstance(value, bool):
            raise bad(key, value, ": true or false")


def _parse_meta(header: Mapping[str, Any], path: Path) -> dict[str, Any]:
    """The face model's metadata: the registry's envelope checks plus the network settings."""
    meta = face_metadata(header, path)
    _check_kwargs(meta["G_kwargs"], "G_kwargs", path)
    if meta.get("D_kwargs") is not None:
        _check_kwargs(meta["D_kwargs"], "D_kwargs", path)
    return meta


def read_face_model_meta(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The metadata of a face model, reading only the file header (cheap; for model pickers)."""
    p = Path(path)
    header, _ = read_safetensors_header(p, "face model file")
    return _parse_meta(header, p)


# --------------------------------------------------------------------------- save


def _control_arrays(
    controls: Mapping[str, Any] | ControlSet | None, G: Generator
) -> tuple[dict[str, torch.Tensor], dict[str, dict[str, Any]], list[str]]:
    import torch

    from studio.face.generator import plain_json

    if controls is None:
        controls = ControlSet()
    if not isinstance(controls, ControlSet):  # {name: direction} or {name: {"direction", ...}}
        items = []
        for name, value in controls.items():
            info: dict[str, Any] = {}
            if isinstance(value, Mapping):
                info = {k: v for k, v in value.items() if k != "direction"}
                value = value.get("direction")
            try:
                items.append(Control.from_meta(
                    name, info, None if value is None else np.asarray(value, np.float32)))
            except (TypeError, ValueError, ControlError) as exc:
                raise ValueError(f"control {name!r}: {exc}") from None
        controls = ControlSet(items)
    tensors: dict[str, torch.Tensor] = {}
    infos: dict[str, dict[str, Any]] = {}
    for c in controls:
        try:
            c.check(G.num_ws, G.w_dim)
        except ControlError as exc:
            raise ValueError(str(exc)) from None
        if c.direction is not None:
            arr = torch.as_tensor(np.asarray(c.direction, dtype=np.float32))
            tensors[f"controls.{c.name}"] = arr.contiguous()
        infos[c.name] = plain_json(c.to_meta())
    return tensors, infos, controls.names()


def save_face_model(
    path: str | os.PathLike[str],
    G: Generator,
    *,
    D: Discriminator | None = None,
    name: str,
    source: str = "",
    license: str = "",
    training: Mapping[str, Any] | None = None,
    controls: Mapping[str, Any] | ControlSet | None = None,
    encoder: torch.nn.Module | None = None,
    encoder_meta: Mapping[str, Any] | None = None,
) -> Path:
    """Write a face model atomically (temp file, fsync, rename).

    ``controls`` is a :class:`~studio.face.controls.ControlSet`, or maps a name to a
    direction (array ``[w_dim]`` or ``[num_ws, w_dim]``) or to a dict with a
    ``"direction"`` array plus metadata fields (``label``, ``group``, ...). ``encoder``
    (a :class:`~studio.face.param_encoder.ParamEncoder`) is stored as ``E.*`` with
    ``encoder_meta`` (its ``layout``, ``start`` vector and fit figures) in the metadata.
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
    ctl_tensors, ctl_infos, order = _control_arrays(controls, G)
    tensors.update(ctl_tensors)
    enc_meta = None
    if encoder is not None:
        for key, t in encoder.state_dict().items():
            tensors[f"E.{key}"] = t.detach().to("cpu", torch.float32).contiguous().clone()
        enc_meta = {**dict(encoder_meta or {}), "kwargs": encoder.init_kwargs}
        if "layout" not in enc_meta:
            raise ValueError("an encoder needs its parameter layout in encoder_meta")
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
        "controls_order": order,
    }
    if enc_meta is not None:
        meta["encoder"] = plain_json(enc_meta)
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


def _build(kind: str, cls: type, kwargs: dict[str, Any], path: Path) -> Any:
    try:
        return cls.from_kwargs(kwargs)
    except (TypeError, ValueError, KeyError, IndexError, AssertionError, ZeroDivisionError,
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
    header, _ = read_safetensors_header(p, "face model file")
    meta = _parse_meta(header, p)
    for key in header:
        if key != "__metadata__" and header[key]["dtype"] not in FLOAT_DTYPES:
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
    encoder, enc_meta = _encoder(meta, tensors, G.w_dim, p)
    controls: dict[str, np.ndarray] = {}
    for key, t in tensors.items():
        if key.startswith(("G.", "D.", "E.")):
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
    control_set = _control_set(meta, controls, encoder is not None, G, p)
    G = G.to(device).eval().requires_grad_(False)
    if D is not None:
        D = D.to(device).eval().requires_grad_(False)
    return FaceModel(G=G, D=D, meta=meta, controls=control_set.directions(), path=p,
                     control_set=control_set, encoder=encoder, encoder_meta=enc_meta)


def _encoder(meta: Mapping[str, Any], tensors: Mapping[str, torch.Tensor], w_dim: int,
             path: Path) -> tuple[Any, dict[str, Any] | None]:
    """The parameter encoder (``E.*`` + ``meta["encoder"]``), checked; or (None, None)."""
    from studio.face.param_encoder import EncoderLayout, ParamEncoder

    info = meta.get("encoder")
    has_tensors = any(k.startswith("E.") for k in tensors)
    if info is None:
        if has_tensors:
            raise FileFormatError("file has E.* tensors but no encoder in its metadata", path)
        return None, None
    if not isinstance(info, dict) or not isinstance(info.get("kwargs"), dict):
        raise FileFormatError("invalid encoder in metadata (no kwargs)", path)
    kw = info["kwargs"]
    try:
        layout = EncoderLayout.from_json(info.get("layout"))
        if set(kw) != {"in_dim", "w_dim", "hidden", "layers"} or not all(
                _is_int(v) and 1 <= v <= 4096 for v in kw.values()) or kw["layers"] > 16:
            raise ValueError(f"bad kwargs {kw}")
        if kw["in_dim"] != layout.dim or kw["w_dim"] != w_dim:
            raise ValueError(f"kwargs {kw} do not fit the layout ({layout.dim} wide) "
                             f"and the generator (w_dim {w_dim})")
        start = info.get("start")
        if start is not None and (not isinstance(start, list) or len(start) != layout.dim):
            raise ValueError("the start vector does not fit the layout")
    except (ValueError, TypeError) as exc:
        raise FileFormatError(f"invalid encoder in metadata: {exc}", path) from None
    E = ParamEncoder(**kw)
    shapes = {k: tuple(t.shape) for k, t in tensors.items()}
    _check_layout(E, "E", shapes, path)
    _fill(E, "E", tensors, path)
    return E.eval().requires_grad_(False), dict(info)


def _control_set(meta: Mapping[str, Any], directions: Mapping[str, np.ndarray],
                 has_encoder: bool, G: Generator, path: Path) -> ControlSet:
    infos = meta.get("controls") or {}
    if not isinstance(infos, dict):
        raise FileFormatError("invalid controls in metadata (not an object)", path)
    order = meta.get("controls_order")
    names = list(order) if isinstance(order, list) else list(infos)
    names += [n for n in list(infos) + list(directions) if n not in names]
    items = []
    for name in names:
        info = infos.get(name, {})
        if not isinstance(info, dict) or not isinstance(name, str):
            raise FileFormatError(f"invalid metadata of control {name!r}", path)
        try:
            c = Control.from_meta(name, info, directions.get(name))
            c.check(G.num_ws, G.w_dim)
        except (ControlError, TypeError, ValueError, IndexError) as exc:
            raise FileFormatError(f"invalid control {name!r}: {exc}", path) from None
        if c.kind == "parametric" and not has_encoder:
            raise FileFormatError(f"control {name!r} is parametric but the file has no "
                                  "parameter encoder", path)
        items.append(c)
    try:
        return ControlSet(items)
    except ControlError as exc:
        raise FileFormatError(str(exc), path) from None
