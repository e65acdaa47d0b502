"""Refining rendered frames: the hook ``studio render`` calls when the project says so.

Every frame uses the project's seed, so the initial noise is the same in every frame (noise
does not flicker); ``temporal`` > 0 also carries part of the previous frame's added detail.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from studio.core.devices import DeviceChoice
from studio.core.jobs import JobCancelled, JobContext
from studio.refine.base import RefineParams, Refiner


def params_from_settings(settings: Any) -> RefineParams:
    """RefineParams from a project's ``RefinerSettings``."""
    return RefineParams(strength=settings.strength, steps=settings.steps, seed=settings.seed,
                        prompt=settings.prompt, negative_prompt=settings.negative_prompt,
                        guidance=settings.guidance)


class FrameRefiner:
    """Refines batches of frames with the project's refiner settings."""

    def __init__(self, settings: Any, project_path: Path | None,
                 model_dirs: Sequence[Path] = (), device: DeviceChoice | None = None,
                 temporal: float = 0.0) -> None:
        from studio.refine.locate import load_refiner, resolve_refiner

        path = resolve_refiner(settings.model, project_path, model_dirs)
        self.refiner: Refiner = load_refiner(path, device)
        self.params = params_from_settings(settings)
        self.temporal = temporal
        self._prev: np.ndarray | None = None

    def output_size(self, size: int) -> int:
        return self.refiner.output_size(size, size, self.params)[0]

    def __call__(self, frames: np.ndarray, ctx: JobContext | None = None) -> np.ndarray:
        from studio.refine.images import resize_image

        def on_step(done: int, total: int) -> None:
            if ctx is not None and ctx.cancelled:
                raise JobCancelled()

        out = []
        for frame in frames:
            img = self.refiner.refine(frame, self.params, on_step)
            if self.temporal > 0:
                base = resize_image(frame, img.shape[:2]).astype(np.float32)
                detail = img.astype(np.float32) - base
                if self._prev is not None and self._prev.shape == detail.shape:
                    detail = (1 - self.temporal) * detail + self.temporal * self._prev
                self._prev = detail
                img = np.clip(np.round(base + detail), 0, 255).astype(np.uint8)
            out.append(img)
        return np.stack(out)
