"""Jobs around the metrics: measure a face model against a data set; train the attribute
regressor on procedural faces."""

from __future__ import annotations

import os
from collections.abc import Generator
from pathlib import Path
from typing import Any

import numpy as np

from studio.core.errors import StudioError
from studio.core.jobs import JobContext, Progress


def face_metrics_job(
    ctx: JobContext,
    model: str | os.PathLike[str],
    data: str | os.PathLike[str],
    n: int = 1000,
    *,
    seed: int = 0,
    truncation_psi: float = 1.0,
    inception: str | os.PathLike[str] | None = None,
    attributes: str | os.PathLike[str] | None = None,
    device: str = "auto",
    batch: int = 16,
) -> Generator[Progress, None, dict[str, Any]]:
    """Job: FD, precision/recall (random features), FID with Inception weights, and the
    attribute coverage of the model's images when an attribute model is available."""
    import torch

    from studio.core.devices import select_device
    from studio.face.model_file import load_face_model
    from studio.train.attributes import find_attribute_model, load_attribute_regressor
    from studio.train.data import ImageFolder
    from studio.train.metrics import (
        RandomFeatures,
        compute_features,
        fd_from_features,
        find_inception_weights,
        precision_recall,
        real_images,
    )

    if n < 4:
        raise StudioError(f"--n must be at least 4 images, not {n}")
    choice = select_device(device, "fp32")
    face = load_face_model(model, device=choice.torch_device)
    folder = ImageFolder(data, resolution=face.resolution)
    yield Progress(0.0, f"reading up to {n} training images")
    real = real_images(folder, n, seed)
    fake_parts = []
    gen = torch.Generator().manual_seed(int(seed) + 1)
    z = torch.randn(n, face.G.z_dim, generator=gen)
    with torch.no_grad():
        for i in range(0, n, batch):
            ctx.check()
            img = face.G(z[i : i + batch].to(choice.torch_device), None,
                         truncation_psi=truncation_psi, noise_mode="const")
            fake_parts.append((img.float() * 127.5 + 128).clamp(0, 255).to(torch.uint8)
                              .permute(0, 2, 3, 1).cpu().numpy())
            done = min(i + batch, n)
            yield Progress(0.6 * done / n, f"generated {done} of {n} images")
    fake = np.concatenate(fake_parts)
    yield Progress(0.65, "computing features")
    extractor = RandomFeatures().to(choice.torch_device)
    fr = compute_features(real, extractor, device=choice.torch_device)
    ctx.check()
    ff = compute_features(fake, extractor, device=choice.torch_device)
    out: dict[str, Any] = {"model": str(model), "data": str(data), "n_real": len(real),
                           "n_fake": len(fake), "fd": fd_from_features(fr, ff)}
    out["precision"], out["recall"] = precision_recall(fr, ff)
    weights = find_inception_weights(inception)
    if weights is not None:
        from studio.train.inception import load_fid_inception

        yield Progress(0.8, f"computing FID with {Path(weights).name}")
        net = load_fid_inception(weights).to(choice.torch_device)
        out["fid"] = fd_from_features(compute_features(real, net, device=choice.torch_device),
                                      compute_features(fake, net, device=choice.torch_device))
    attr_path = find_attribute_model(attributes)
    if attr_path is not None:
        yield Progress(0.95, "measuring attribute coverage")
        reg = load_attribute_regressor(attr_path)
        out["coverage"] = reg.coverage(fake)
        out["coverage_data"] = reg.coverage(real)
    yield Progress(1.0, f"FD {out['fd']:.3f}, precision {out['precision']:.3f}, "
                   f"recall {out['recall']:.3f}")
    return out


def train_attributes_job(
    ctx: JobContext,
    data: str | os.PathLike[str],
    output: str | os.PathLike[str],
    *,
    attributes: tuple[str, ...] | None = None,
    steps: int = 3000,
    batch: int = 64,
    size: int = 64,
    width: int = 32,
    seed: int = 0,
    limit: int | None = None,
) -> Generator[Progress, None, dict[str, Any]]:
    """Job: train the attribute regressor on a ``studio synth-faces`` folder and save it."""
    from studio.train.attributes import DEFAULT_ATTRIBUTES, AttributeTrainer, load_synth_labels

    yield Progress(0.0, "reading the labelled faces")
    images, labels = load_synth_labels(data, limit=limit, size=size)
    trainer = AttributeTrainer(images, labels, attributes or DEFAULT_ATTRIBUTES, steps=steps,
                               batch=batch, size=size, width=width, seed=seed)
    for step in range(1, steps + 1):
        ctx.check()
        loss = trainer.step()
        if step % 10 == 0 or step == steps:
            yield Progress(0.95 * step / steps, f"step {step} of {steps}, loss {loss:.3f}",
                           metrics={"loss": loss}, step=step)
    reg, scores = trainer.result()
    path = reg.save(output, data=str(data))
    yield Progress(1.0, f"wrote {path}", metrics=scores)
    return {"model": str(path), **scores}
