"""Refining as a job: per-step progress from the sampler's callback, cancel within a step.

One job for the command line, the GUI and the renderer: :func:`refine_job` takes a
:class:`RefineRequest` (model reference, parameters, frames, optional mask) and returns the
refined frames; with ``out_paths`` it also writes them (atomically) as PNGs.

Clips: every frame uses the same seed, hence the same initial noise; ``temporal`` > 0 also
blends each frame's added detail with the previous frame's (an exponential moving average),
trading a little sharpness in motion for less flicker.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from studio.core.devices import DeviceChoice
from studio.core.errors import StudioError
from studio.core.jobs import JobCancelled, JobContext, Progress
from studio.refine.base import RefineParams, Refiner, StepCallback
from studio.refine.images import composite, feather, resize_image


@dataclass
class RefineRequest:
    model: str = "default"
    params: RefineParams = field(default_factory=RefineParams)
    images: list[np.ndarray] = field(default_factory=list)
    mask: np.ndarray | None = None  # HxW float in [0, 1] (1 = refine), any size
    temporal: float = 0.0  # 0..0.9: blend of the previous frame's detail
    out_paths: list[Path] | None = None
    project_path: Path | None = None
    model_dirs: tuple[Path, ...] = ()
    device: DeviceChoice | None = None
    config_dir: Path | None = None  # SD single-file configs (default resources/sd15)
    loras: tuple[tuple[Path, float], ...] = ()  # SD only: (file, weight)

    def __post_init__(self) -> None:
        if not 0.0 <= self.temporal <= 0.9:
            raise StudioError(f"temporal {self.temporal} is outside 0..0.9")
        if self.out_paths is not None and len(self.out_paths) != len(self.images):
            raise StudioError("one output path per input image")


def refine_image(refiner: Refiner, image: np.ndarray, params: RefineParams,
                 mask: np.ndarray | None = None, on_step: StepCallback | None = None
                 ) -> np.ndarray:
    """Refine one image; with a mask, only where it is white (feathered edge)."""
    out = refiner.refine(image, params, on_step)
    if mask is None:
        return out
    from PIL import Image

    m = np.asarray(Image.fromarray((np.clip(mask, 0, 1) * 255).astype(np.uint8)).resize(
        (out.shape[1], out.shape[0]), Image.BILINEAR), dtype=np.float32) / 255.0
    return composite(out, resize_image(image, out.shape[:2]), feather(m, params.feather))


def stepped(ctx: JobContext, work: Callable[[StepCallback], Any]
            ) -> Generator[tuple[int, int], None, Any]:
    """Run ``work(on_step)`` on a helper thread, yielding its ``(done, total)`` steps here;
    a cancel raises inside ``on_step``, so the sampler stops after the current step."""
    events: queue.Queue[tuple[int, int] | None] = queue.Queue()
    box: dict[str, Any] = {}

    def on_step(done: int, total: int) -> None:
        if ctx.cancelled:
            raise JobCancelled()
        events.put((done, total))

    def target() -> None:
        try:
            box["value"] = work(on_step)
        except BaseException as exc:  # noqa: BLE001 - re-raised on the job's thread
            box["error"] = exc
        finally:
            events.put(None)

    thread = threading.Thread(target=target, name="refine-steps", daemon=True)
    thread.start()
    try:
        while True:
            try:
                item = events.get(timeout=0.2)
            except queue.Empty:
                ctx.check()
                continue
            if item is None:
                break
            yield item
    finally:
        if thread.is_alive():
            ctx.cancel()
            thread.join()
    if "error" in box:
        raise box["error"]
    return box.get("value")


def refine_job(ctx: JobContext, req: RefineRequest
               ) -> Generator[Progress, None, list[np.ndarray]]:
    from studio.refine.images import write_png
    from studio.refine.locate import load_refiner, resolve_refiner

    if not req.images:
        raise StudioError("nothing to refine")
    path = resolve_refiner(req.model, req.project_path, req.model_dirs)
    yield Progress(None, f"loading {path.name}")
    refiner = yield from stepped(ctx, lambda _s: load_refiner(path, req.device, req.config_dir,
                                                               req.loras))
    total = len(req.images)
    results: list[np.ndarray] = []
    prev_detail: np.ndarray | None = None
    for k, image in enumerate(req.images):
        ctx.check()

        def work(on_step: StepCallback, image: np.ndarray = image) -> np.ndarray:
            return refine_image(refiner, image, req.params, req.mask, on_step)

        label = f"frame {k + 1}/{total}" if total > 1 else "refining"
        gen = stepped(ctx, work)
        try:
            while True:
                done, n = next(gen)
                yield Progress((k + done / max(n, 1)) / total, f"{label}: step {done}/{n}")
        except StopIteration as stop:
            out = stop.value
        if req.temporal > 0:
            base = resize_image(image, out.shape[:2]).astype(np.float32)
            detail = out.astype(np.float32) - base
            if prev_detail is not None and prev_detail.shape == detail.shape:
                detail = (1 - req.temporal) * detail + req.temporal * prev_detail
            prev_detail = detail
            out = np.clip(np.round(base + detail), 0, 255).astype(np.uint8)
        if req.out_paths is not None:
            write_png(req.out_paths[k], out)
        results.append(out)
        yield Progress((k + 1) / total, f"{label}: done", preview=out if total == 1 else None)
    return results
