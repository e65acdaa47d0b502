"""A checkpoint's networks converted to our ``Generator``/``Discriminator`` constructor
arguments and state dicts, without writing anything."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from studio.core.errors import FileFormatError
from studio.face.importers.detect import NVIDIA_PKL, TORCH_CKPT, detect_format

__all__ = ["ConvertedCheckpoint", "convert_checkpoint", "with_path"]


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


def with_path(exc: FileFormatError, path: Path) -> FileFormatError:
    """``exc`` naming ``path`` when it does not name a file yet."""
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
        raise with_path(exc, p) from None


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
    if looks_nvidia_state(ckpt):
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


def looks_nvidia_state(ckpt: dict[str, Any]) -> bool:
    for v in (ckpt, ckpt.get("G_ema"), ckpt.get("g_ema")):
        if isinstance(v, dict) and "synthesis.b4.const" in v:
            return True
    return False
