"""Import StyleGAN2 checkpoints that artists already have into a studio face model.

Supported:

- NVIDIA network pickles (``.pkl``) from stylegan2-ada-pytorch and the StyleGAN2 networks of
  the stylegan3 repository: read with a whitelisting unpickler that executes nothing;
  ``G_ema`` (else ``G``) and ``D`` are imported, conditional (``c_dim > 0``) ones included.
- rosinality/stylegan2-pytorch checkpoints (``.pt``): ``{g, d, g_ema, ...}`` or
  ``{g_ema, latent_avg}``, loaded with ``torch.load(weights_only=True)``; ``g_ema``
  (else ``g``) and the discriminator ``d`` when present.

Refused with a :class:`~studio.core.errors.FileFormatError` naming the file: StyleGAN3
networks, anything that is not one of the formats above, damaged files, and pickles that
refer to anything outside the short list real files use.

The format is sniffed from the file's first bytes, not its name.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from studio.core.errors import FileFormatError, StudioError

__all__ = [
    "FORMAT_NAMES",
    "ConvertedCheckpoint",
    "convert_checkpoint",
    "default_output_path",
    "detect_format",
    "import_checkpoint",
    "inspect_checkpoint",
]

NVIDIA_PKL = "nvidia-pkl"
TORCH_CKPT = "rosinality-pt"
FORMAT_NAMES = {
    NVIDIA_PKL: "NVIDIA StyleGAN2(-ADA) network pickle",
    TORCH_CKPT: "rosinality stylegan2-pytorch checkpoint",
}
LICENSE_NOTE = (
    "licence unknown: the terms of the original model apply (NVIDIA's published models, "
    "for example, are for non-commercial use only)"
)
# A legacy (pre-zip) torch.save file starts with a pickled magic number.
_LEGACY_TORCH_MAGIC = b"\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19"


@dataclass
class ConvertedCheckpoint:
    """A checkpoint converted to our networks' constructor arguments and state dicts."""

    format: str
    G_kwargs: dict[str, Any]
    G_state: dict[str, Any]
    D_kwargs: dict[str, Any] | None = None
    D_state: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)


# --------------------------------------------------------------------------- sniffing


def _describe_other(head: bytes) -> str:
    if head.startswith(b"\x89PNG"):
        return "a PNG image"
    if head.startswith(b"\xff\xd8\xff"):
        return "a JPEG image"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "a GIF image"
    if head[:4] == b"RIFF":
        return "a RIFF (WAV/WebP/AVI) file"
    if head.startswith(b"\x1f\x8b"):
        return "a gzip archive"
    if head.startswith(b"%PDF"):
        return "a PDF document"
    if len(head) >= 9 and head[8:9] == b"{":
        return "a safetensors file (open it as a model instead of importing it)"
    if head.lstrip()[:1] in (b"{", b"["):
        return "a JSON/text file"
    return "of an unknown kind"


def detect_format(path: str | Path) -> str:
    """``'nvidia-pkl'`` or ``'rosinality-pt'`` from the file's first bytes; a clear
    ``FileFormatError`` for anything else."""
    p = Path(path)
    try:
        with p.open("rb") as f:
            head = f.read(64)
    except FileNotFoundError:
        raise FileFormatError("file not found", p) from None
    except IsADirectoryError:
        raise FileFormatError("is a folder, not a checkpoint file", p) from None
    except OSError as exc:
        raise FileFormatError(f"cannot be read ({exc.strerror or exc})", p) from None
    if not head:
        raise FileFormatError("is empty", p)
    if head.startswith(b"PK\x03\x04"):
        try:
            with zipfile.ZipFile(p) as zf:
                names = zf.namelist()
        except (zipfile.BadZipFile, OSError, ValueError):
            raise FileFormatError(
                "is a damaged ZIP file (a truncated PyTorch checkpoint?)", p
            ) from None
        if any(n == "data.pkl" or n.endswith("/data.pkl") for n in names):
            return TORCH_CKPT
        raise FileFormatError(
            "is a ZIP archive, not a StyleGAN2 checkpoint (.pkl from NVIDIA or .pt from "
            "rosinality's stylegan2-pytorch)",
            p,
        )
    if head.startswith(_LEGACY_TORCH_MAGIC):
        return TORCH_CKPT
    from studio.face.importers.safe_pickle import looks_like_pickle

    if looks_like_pickle(head):
        return NVIDIA_PKL
    raise FileFormatError(
        f"is {_describe_other(head)}, not a StyleGAN2 checkpoint (.pkl from NVIDIA or .pt "
        "from rosinality's stylegan2-pytorch)",
        p,
    )


# --------------------------------------------------------------------------- conversion


def _with_path(exc: FileFormatError, path: Path) -> FileFormatError:
    if exc.path is not None:
        return exc
    return FileFormatError(exc.reason, path)


def convert_checkpoint(path: str | Path) -> ConvertedCheckpoint:
    """Read and convert a checkpoint without writing anything."""
    p = Path(path)
    fmt = detect_format(p)
    try:
        if fmt == NVIDIA_PKL:
            return _convert_nvidia(p)
        return _convert_rosinality(p)
    except FileFormatError as exc:
        raise _with_path(exc, p) from None


def _convert_nvidia(p: Path) -> ConvertedCheckpoint:
    from studio.face.importers import nvidia_pkl

    pkl = nvidia_pkl.read_nvidia_pickle(p)
    gkey = pkl.generator_key
    G = pkl.generator
    assert G is not None and gkey is not None
    g_kwargs, notes = nvidia_pkl.generator_kwargs(G)
    g_state = nvidia_pkl.convert_generator(G)[1]
    if gkey != "G_ema":
        notes.append("the file has no G_ema; imported the training generator G")
    d_kwargs = d_state = None
    if "D" in pkl.networks:
        try:
            d_kwargs, d_state = nvidia_pkl.convert_discriminator(pkl.networks["D"])
        except FileFormatError as exc:
            notes.append(f"discriminator not imported: {exc.reason}")
    else:
        notes.append("the file has no discriminator; fine-tuning will start a fresh one")
    info: dict[str, Any] = {"network": gkey}
    if pkl.training_set_kwargs:
        info["training_set"] = pkl.training_set_kwargs
    return ConvertedCheckpoint(NVIDIA_PKL, g_kwargs, g_state, d_kwargs, d_state, notes, info)


def _convert_rosinality(p: Path) -> ConvertedCheckpoint:
    from studio.face.importers import rosinality

    ckpt = rosinality.load_checkpoint(p)
    if _looks_nvidia_state(ckpt):
        raise FileFormatError(
            "holds bare NVIDIA-style weights without the network's configuration; export "
            "the network pickle (.pkl) instead"
        )
    key, sd = rosinality.pick_generator(ckpt)
    g_kwargs, g_state, notes = rosinality.convert_generator(
        sd, latent_avg=ckpt.get("latent_avg"), lr_mlp=rosinality.checkpoint_lr_mlp(ckpt)
    )
    if key == "g":
        notes.append("the checkpoint has no g_ema; imported the training generator g")
    d_kwargs = d_state = None
    if rosinality.is_rosinality_discriminator(ckpt.get("d")):
        try:
            d_kwargs, d_state = rosinality.convert_discriminator(ckpt["d"])
        except FileFormatError as exc:
            notes.append(f"discriminator not imported ({exc.reason}); fine-tuning starts a fresh one")
    else:
        notes.append("the checkpoint has no discriminator; fine-tuning will start a fresh one")
    info: dict[str, Any] = {"network": key or "(state dict)"}
    args = rosinality.checkpoint_args(ckpt)
    if args:
        info["args"] = args
    return ConvertedCheckpoint(TORCH_CKPT, g_kwargs, g_state, d_kwargs, d_state, notes, info)


def _looks_nvidia_state(ckpt: dict[str, Any]) -> bool:
    for v in (ckpt, ckpt.get("G_ema"), ckpt.get("g_ema")):
        if isinstance(v, dict) and "synthesis.b4.const" in v:
            return True
    return False


# --------------------------------------------------------------------------- loading


def _shape_problem(what: str, own: dict[str, tuple[int, ...]], given: dict[str, Any]) -> str | None:
    missing = [k for k in own if k not in given]
    extra = [k for k in given if k not in own]
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"missing {', '.join(missing[:4])}" + (" ..." if len(missing) > 4 else ""))
        if extra:
            parts.append(f"unexpected {', '.join(extra[:4])}" + (" ..." if len(extra) > 4 else ""))
        return f"the {what} does not match a StyleGAN2 network: " + "; ".join(parts)
    for k, shape in own.items():
        if tuple(given[k].shape) != shape:
            return f"the {what}'s {k} has shape {list(given[k].shape)}, expected {list(shape)}"
    return None


def _int(kwargs: dict[str, Any], key: str, default: Any) -> int:
    value = kwargs.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise FileFormatError(f"its network setting {key}={value!r} is not a whole number")
    return value


def _estimated_size(kwargs: dict[str, Any], what: str) -> int:
    """Roughly how many numbers a StyleGAN2 network with these arguments holds (NVIDIA's
    channel schedule), so a file cannot make us build something far bigger than itself."""
    syn = kwargs.get("synthesis_kwargs") if what == "generator" else kwargs
    syn = syn if isinstance(syn, dict) else {}
    base, cmax = _int(syn, "channel_base", 32768), _int(syn, "channel_max", 512)
    res = _int(kwargs, "img_resolution", 0)
    c, img_c = _int(kwargs, "c_dim", 0), _int(kwargs, "img_channels", 3)
    if res < 4 or res & (res - 1) or res > 2**16:
        raise FileFormatError(f"its image resolution {res} is not a power of two from 4 to 65536")

    def ch(r: int) -> int:
        return min(base // r, cmax)

    rs = [2**i for i in range(2, res.bit_length())]
    if what == "generator":
        w, z = _int(kwargs, "w_dim", 512), _int(kwargs, "z_dim", 512)
        total = _mapping_size(kwargs.get("mapping_kwargs"), z, c, w)
        for r in rs:
            cin, cout = (ch(r // 2) if r > 4 else ch(4)), ch(r)
            total += (cin + cout) * (9 * cout + w + 1) + cout * (img_c + w + 1) + 2 * r * r + cin * cout
        return total
    cmap = kwargs.get("cmap_dim")
    cmap = ch(4) if cmap is None else _int(kwargs, "cmap_dim", 0)
    total = _mapping_size(kwargs.get("mapping_kwargs"), 0, c, cmap) if c else 0
    for r in rs:
        total += ch(r) * (ch(r) * 9 + ch(r // 2) * 10 + img_c + 2)
    return total + ch(4) * (ch(4) * 26 + 2)


def _check_activations(value: Any, what: str) -> None:
    """Our layers know linear, relu and lrelu (NVIDIA's code knows a few more that no
    published StyleGAN2 uses); refuse the rest now rather than at the first render."""
    from studio.face.layers import ACTIVATION_GAIN

    if isinstance(value, dict):
        for k, v in value.items():
            if k == "activation" and v not in ACTIVATION_GAIN:
                raise FileFormatError(
                    f"its {what} uses the activation {v!r}, which this studio does not support "
                    f"(only {', '.join(sorted(ACTIVATION_GAIN))})"
                )
            _check_activations(v, what)


def _normalized_d_kwargs(kwargs: dict[str, Any]) -> dict[str, Any]:
    """An unconditional discriminator builds no label mapping: drop its (unused) settings."""
    if kwargs.get("c_dim") == 0 and "mapping_kwargs" in kwargs:
        kwargs = {k: v for k, v in kwargs.items() if k != "mapping_kwargs"}
    return kwargs


def _mapping_size(mapping: Any, z: int, c: int, w: int) -> int:
    mapping = mapping if isinstance(mapping, dict) else {}
    layers = _int(mapping, "num_layers", 8)
    embed = _int(mapping, "embed_features", w) if mapping.get("embed_features") is not None else w
    feats = _int(mapping, "layer_features", w) if mapping.get("layer_features") is not None else w
    widest = max(z + (embed if c else 0), feats, w, 1)
    return (layers + 1) * widest * (widest + 1) + c * embed


def _load_strict(cls: type, kwargs: dict[str, Any], state: dict[str, Any], what: str) -> Any:
    import torch

    _check_activations(kwargs, what)

    held = sum(int(t.numel()) for t in state.values())
    claimed = _estimated_size(kwargs, what)
    if claimed > 2 * held + 10_000_000:
        raise FileFormatError(
            f"its {what} settings describe a network of about {claimed:,} numbers but the file "
            f"holds {held:,}; the file is inconsistent"
        )
    try:
        net = cls(**kwargs)
    except Exception as exc:  # the constructor's own checks: TypeError, ValueError, ...
        raise FileFormatError(
            f"its {what} configuration cannot be built here ({type(exc).__name__}: {exc})"
        ) from None
    own = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    problem = _shape_problem(what, own, state)
    if problem:
        raise FileFormatError(problem)
    _check_finite(what, state)
    with torch.no_grad():
        net.load_state_dict(state, strict=True)
    return net.eval().requires_grad_(False)


def build_networks(conv: ConvertedCheckpoint) -> tuple[Any, Any, list[str]]:
    """Our ``Generator`` (and ``Discriminator``) with the converted weights loaded strictly.

    A discriminator that does not fit is dropped with a note; a generator that does not fit
    is a ``FileFormatError``."""
    from studio.face.discriminator import Discriminator
    from studio.face.generator import Generator

    notes: list[str] = []
    G = _load_strict(Generator, conv.G_kwargs, conv.G_state, "generator")
    D = None
    if conv.D_kwargs is not None and conv.D_state is not None:
        try:
            D = _load_strict(
                Discriminator, _normalized_d_kwargs(conv.D_kwargs), conv.D_state, "discriminator"
            )
        except FileFormatError as exc:
            notes.append(f"discriminator not imported ({exc.reason}); fine-tuning starts a fresh one")
    return G, D, notes


def _check_finite(what: str, sd: dict[str, Any]) -> None:
    import torch

    for k, t in sd.items():
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            raise FileFormatError(f"the {what}'s {k} contains NaN or infinity")


# --------------------------------------------------------------------------- public API


def default_output_path(path: str | Path, models_dir: str | Path | None = None) -> Path:
    """``<models_dir>/face/<stem>.safetensors``; ``models_dir`` defaults to the user's
    models folder (``studio.core.paths.user_models_dir()``)."""
    if models_dir is None:
        from studio.core.paths import user_models_dir

        models_dir = user_models_dir()
    return Path(models_dir) / "face" / f"{Path(path).stem}.safetensors"


def import_checkpoint(
    path: str | Path,
    out_path: str | Path | None = None,
    name: str | None = None,
    *,
    models_dir: str | Path | None = None,
    overwrite: bool = False,
) -> Path:
    """Convert a StyleGAN2 checkpoint into a studio face model and return its path.

    Nothing is written unless the whole checkpoint converts and loads into our networks
    (strictly: every tensor accounted for, every shape right).
    """
    src = Path(path)
    out = Path(out_path) if out_path is not None else default_output_path(src, models_dir)
    if out.suffix.lower() != ".safetensors":
        raise StudioError(f"the output file must end in .safetensors: {out}")
    if out.exists() and not overwrite:
        raise StudioError(f"{out} already exists; choose another name or allow overwriting")
    if out.resolve() == src.resolve():
        raise StudioError(f"the output would replace the checkpoint itself: {out}")

    conv = convert_checkpoint(src)
    try:
        G, D, more = build_networks(conv)
    except FileFormatError as exc:
        raise _with_path(exc, src) from None
    notes = conv.notes + more
    imported_from = {
        "file": src.name,
        "format": conv.format,
        "format_name": FORMAT_NAMES[conv.format],
        **conv.info,
    }
    source = f"imported from {src.name} ({FORMAT_NAMES[conv.format]})"

    def save(D: Any) -> Path:
        training = {"imported_from": imported_from, "notes": [*notes, LICENSE_NOTE]}
        return _save_verified(out, G, D, name=name or src.stem, source=source, training=training)

    try:
        try:
            return save(D)
        except FileFormatError as exc:
            if D is None:
                raise
            notes.append(
                f"discriminator not kept (the model file refused it: {exc.reason}); "
                "fine-tuning starts a fresh one"
            )
            return save(None)
    except FileFormatError as exc:
        raise FileFormatError(
            f"the converted model does not open ({exc.reason}); this is a bug in the "
            "importer, please report it with the file",
            src,
        ) from None


def _save_verified(out: Path, G: Any, D: Any, *, name: str, source: str, training: dict) -> Path:
    """Save next to ``out``, load it back as the studio would, then rename into place: an
    import never leaves a model file that does not open."""
    import contextlib
    import os

    from studio.face.model_file import load_face_model, save_face_model

    made_dir = not out.parent.exists()
    tmp = out.with_name(f".{out.stem}.importing.safetensors")
    try:
        save_face_model(tmp, G, D=D, name=name, source=source, license="", training=training)
        load_face_model(tmp)
        os.replace(tmp, out)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if made_dir:
            with contextlib.suppress(OSError):
                out.parent.rmdir()
        if isinstance(exc, FileFormatError):
            raise FileFormatError(exc.reason) from None
        if isinstance(exc, OSError):
            raise StudioError(f"cannot write {out}: {exc.strerror or exc}") from None
        if isinstance(exc, Exception):  # e.g. settings save_face_model cannot store
            raise FileFormatError(f"{type(exc).__name__}: {exc}") from None
        raise
    return out


def inspect_checkpoint(path: str | Path) -> dict[str, Any]:
    """Describe what a checkpoint holds without converting weights or writing anything.

    Keys: ``path``, ``format``, ``format_name``, ``networks`` (what the file contains),
    ``generator`` (our constructor arguments, resolution, parameter count) or None,
    ``discriminator`` (present, imported), ``supported`` and ``problem`` (why an otherwise
    readable file cannot be imported), ``notes``, ``info``. Unreadable or hostile files raise
    ``FileFormatError``.
    """
    p = Path(path)
    fmt = detect_format(p)
    report: dict[str, Any] = {
        "path": str(p), "format": fmt, "format_name": FORMAT_NAMES[fmt], "networks": [],
        "generator": None, "discriminator": {"present": False, "imported": False},
        "supported": True, "problem": None, "notes": [], "info": {},
    }
    try:
        if fmt == NVIDIA_PKL:
            _inspect_nvidia(p, report)
        else:
            _inspect_rosinality(p, report)
    except FileFormatError as exc:
        if exc.path is not None:  # the file itself could not be read
            raise
        report["supported"] = False
        report["problem"] = exc.reason
    return report


def _count(sd: dict[str, Any]) -> int:
    return int(sum(t.numel() for t in sd.values()))


def _inspect_nvidia(p: Path, report: dict[str, Any]) -> None:
    from studio.face.importers import nvidia_pkl

    pkl = nvidia_pkl.read_nvidia_pickle(p)
    report["networks"] = sorted(pkl.networks)
    report["info"] = {"network": pkl.generator_key}
    if pkl.training_set_kwargs:
        report["info"]["training_set"] = pkl.training_set_kwargs
    G = pkl.generator
    assert G is not None
    report["generator"] = {
        "kind": nvidia_pkl.network_kind(G),
        "class_name": G.class_name,
        "num_params": _count(nvidia_pkl.module_state_dict(G)),
    }
    report["discriminator"]["present"] = "D" in pkl.networks
    kwargs, notes = nvidia_pkl.generator_kwargs(G)
    report["generator"].update(_summary(kwargs))
    report["notes"] = notes
    if "D" in pkl.networks:
        from studio.face.discriminator import Discriminator

        try:
            d_kwargs, d_state = nvidia_pkl.convert_discriminator(pkl.networks["D"])
            _load_strict(Discriminator, _normalized_d_kwargs(d_kwargs), d_state, "discriminator")
            report["discriminator"]["imported"] = True
        except FileFormatError as exc:
            report["notes"].append(f"the discriminator will not be imported ({exc.reason})")


def _inspect_rosinality(p: Path, report: dict[str, Any]) -> None:
    from studio.face.importers import rosinality

    ckpt = rosinality.load_checkpoint(p)
    report["networks"] = sorted(
        k for k in ("g", "d", "g_ema") if isinstance(ckpt.get(k), dict)
    )
    report["discriminator"]["present"] = isinstance(ckpt.get("d"), dict)
    args = rosinality.checkpoint_args(ckpt)
    if args:
        report["info"]["args"] = args
    key, sd = rosinality.pick_generator(ckpt)
    report["info"]["network"] = key or "(state dict)"
    report["generator"] = {"kind": "stylegan2", "num_params": _count(sd)}
    cfg = rosinality.infer_config(sd)
    kwargs = rosinality.generator_kwargs(cfg, rosinality.checkpoint_lr_mlp(ckpt))
    report["generator"].update(_summary(kwargs))
    report["generator"]["channels"] = {str(r): c for r, c in sorted(cfg.channels.items())}
    if "latent_avg" not in ckpt:
        report["notes"].append("no latent_avg: the average w will be computed on import")
    if report["discriminator"]["present"]:
        try:
            rosinality.convert_discriminator(ckpt["d"])
            report["discriminator"]["imported"] = True
        except FileFormatError as exc:
            report["notes"].append(f"the discriminator will not be imported ({exc.reason})")


def _summary(kwargs: dict[str, Any]) -> dict[str, Any]:
    syn = kwargs.get("synthesis_kwargs", {})
    return {
        "init_kwargs": kwargs,
        "z_dim": kwargs["z_dim"], "w_dim": kwargs["w_dim"], "c_dim": kwargs["c_dim"],
        "img_resolution": kwargs["img_resolution"], "img_channels": kwargs["img_channels"],
        "mapping_layers": kwargs.get("mapping_kwargs", {}).get("num_layers", 8),
        "channel_base": syn.get("channel_base", 32768),
        "channel_max": syn.get("channel_max", 512),
        "architecture": syn.get("architecture", "skip"),
    }
