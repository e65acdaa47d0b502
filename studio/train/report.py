"""What a training run leaves next to its model: sample grids (PNG) and a model card."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from studio.core.atomic import atomic_write_bytes, atomic_write_text


def image_grid(images: np.ndarray, cols: int, rows: int, pad: int = 0) -> np.ndarray:
    """``[N, H, W, 3]`` uint8 -> one ``rows x cols`` grid (missing cells stay black)."""
    n, h, w, c = images.shape
    grid = np.zeros((rows * h + (rows - 1) * pad, cols * w + (cols - 1) * pad, c), np.uint8)
    for i in range(min(n, rows * cols)):
        r, q = divmod(i, cols)
        grid[r * (h + pad) : r * (h + pad) + h, q * (w + pad) : q * (w + pad) + w] = images[i]
    return grid


def png_bytes(rgb: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgb), "RGB").save(buf, format="PNG")
    return buf.getvalue()


def write_png(path: str | Path, rgb: np.ndarray) -> None:
    atomic_write_bytes(path, png_bytes(rgb))


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def model_card(*, name: str, model_file: str, training: dict[str, Any], config: dict[str, Any],
               license: str, notes: list[str], grid_file: str | None) -> str:
    """Markdown model card for a trained face model."""
    base = training.get("base_model") or {}
    metrics = training.get("metrics") or {}
    lines = [
        f"# {name}",
        "",
        "A StyleGAN2 face model trained with Digital Human Studio "
        f"({'fine-tuned from ' + repr(base.get('name') or base.get('file')) if base else 'trained from scratch'}).",
        "",
    ]
    if grid_file:
        lines += [f"![samples]({grid_file})", ""]
    lines += [
        "## Model",
        "",
        f"- File: `{model_file}`",
        f"- Resolution: {training.get('resolution')} x {training.get('resolution')} px",
        f"- Trained: {training.get('finished_at', datetime.now(UTC).isoformat(timespec='seconds'))}",
        f"- Licence: {license or 'not stated'}",
        "",
        "## Training data",
        "",
        f"- Folder: `{training.get('data', {}).get('folder')}`",
        f"- Images: {training.get('data', {}).get('count')}"
        + (" (resized to the model resolution)" if training.get("data", {}).get("resized") else ""),
        f"- Mirrored: {'yes' if config.get('mirror') else 'no'}",
        "",
        "## Training",
        "",
        f"- Images shown to the discriminator: {training.get('images_seen')} "
        f"({training.get('images_seen', 0) / 1000:g} kimg)",
        f"- Preset: {config.get('preset')}; batch {config.get('batch')}; "
        f"learning rates G {config.get('lr_g')}, D {config.get('lr_d')}",
        f"- R1 gamma {config.get('r1_gamma')} every {config.get('r1_interval')} minibatches; "
        f"path length weight {config.get('pl_weight')}; style mixing {config.get('style_mixing')}",
        f"- Augmentation: {config.get('augment')} (final p = {_fmt(training.get('aug_p', 0.0))}); "
        f"frozen discriminator blocks: {config.get('freeze_d')}",
        f"- Precision: {training.get('precision')} on {training.get('device')}",
    ]
    if base:
        lines += [f"- Base model: {base.get('name')} (`{base.get('file')}`, licence "
                  f"{base.get('license') or 'not stated'})"]
    lines += ["", "## Metrics", ""]
    if metrics:
        lines += [
            "Fréchet distance (`fd`) and precision/recall in the feature space of the studio's "
            "fixed random network (comparable between studio models only, not with published "
            "FIDs); `fid` only when Inception weights were available.",
            "",
        ]
        lines += [f"- {k}: {_fmt(v)}" for k, v in sorted(metrics.items())]
    else:
        lines += ["None computed."]
    lines += [
        "",
        "## Intended use and limits",
        "",
        "For creating digital-human faces in the studio. The model reproduces the kind of "
        "faces in its training data and their biases; a small data set gives little variety. "
        "Do not use it to depict real people without their consent.",
    ]
    if notes:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in notes]
    return "\n".join(lines) + "\n"


def write_model_card(path: str | Path, **kwargs: Any) -> None:
    atomic_write_text(path, model_card(**kwargs))
