"""``inspect_checkpoint``: what a checkpoint holds and whether it can be imported, without
converting weights or writing anything (``studio import --inspect``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from studio.core.errors import FileFormatError
from studio.face.importers.build import load_strict, normalized_d_kwargs
from studio.face.importers.detect import FORMAT_NAMES, NVIDIA_PKL, detect_format

__all__ = ["inspect_checkpoint"]


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
            load_strict(Discriminator, normalized_d_kwargs(d_kwargs), d_state, "discriminator")
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
