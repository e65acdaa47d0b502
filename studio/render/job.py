"""The render job: a project's frames and sound to MP4, a PNG sequence and/or a WAV.

Frames come from the one frame path: :func:`studio.render.frame.frame_requests` (the
timeline evaluated for a batch of times) rendered with
:func:`studio.face.request.render_requests` (batched on the engine's device). The sound is
:func:`studio.render.audio.mixdown` of every clip. ``studio render`` runs this job under
the progress bar, File → Render in the render queue; both report progress with an ETA,
cancel between batches and leave nothing under the output names but finished files.
"""

from __future__ import annotations

import math
import time
from collections.abc import Generator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from studio.core.errors import StudioError
from studio.core.jobs import JobContext, Progress
from studio.core.project import Project

if TYPE_CHECKING:
    from studio.core.devices import DeviceChoice
    from studio.face.engine import FaceEngine

MAX_FRAMES = 24 * 3600 * 60  # a day at 60 fps


@dataclass
class RenderSpec:
    """What to render. ``project`` is a snapshot (the GUI passes a copy, so edits made
    while rendering do not leak into the frames); ``project_path`` resolves its assets."""

    project: Project
    project_path: Path | None
    output: Path | None = None  # .mp4
    png_dir: Path | None = None
    wav: Path | None = None
    range: tuple[float, float] | None = None  # seconds, [a, b); None: the whole timeline
    fps: int | None = None  # None: the timeline's
    size: int | None = None  # None: the model's resolution
    batch: int | None = None  # frames per engine call; None: by the frame size
    model_dirs: Sequence[Path] = ()
    device: DeviceChoice | None = None

    def outputs(self) -> list[Path]:
        return [p for p in (self.output, self.png_dir, self.wav) if p is not None]


@dataclass
class RenderResult:
    outputs: list[Path]
    frames: int
    fps: int
    size: int
    seconds: float  # of video
    elapsed: float  # wall time of the render
    warnings: list[str] = field(default_factory=list)


def frame_times(spec: RenderSpec) -> tuple[np.ndarray, int, float, float]:
    """The frame times, the fps and the range of a spec (checked)."""
    tl = spec.project.timeline
    fps = int(spec.fps or tl.fps)
    if not 1 <= fps <= 240:
        raise StudioError(f"the frame rate must be 1 to 240 fps, not {fps}")
    a, b = spec.range if spec.range is not None else (0.0, tl.duration)
    if not (math.isfinite(a) and math.isfinite(b) and 0 <= a < b):
        raise StudioError(f"the range must satisfy 0 <= A < B, not {a:g}:{b:g}")
    n = int(round((b - a) * fps))
    if n < 1:
        raise StudioError(f"the range {a:g}:{b:g} holds no frame at {fps} fps")
    if n > MAX_FRAMES:
        raise StudioError(f"{n} frames are more than the {MAX_FRAMES} a render can make")
    return a + np.arange(n, dtype=np.float64) / fps, fps, a, a + n / fps


def load_engine(spec: RenderSpec) -> FaceEngine:
    """The face engine of the project's avatar model on the spec's device."""
    from studio.core.devices import select_device
    from studio.face.engine import FaceEngine
    from studio.face.model_file import load_face_model
    from studio.face.model_ref import resolve_face_model

    choice = spec.device or select_device()
    path = resolve_face_model(spec.project.avatar.model, spec.project_path, spec.model_dirs)
    return FaceEngine(load_face_model(path, device=choice.torch_device), choice)


def default_batch(size: int) -> int:
    """Frames per engine call: 16 at 256 px and below, fewer for big frames."""
    return int(max(1, min(16, (256 * 256 * 16) // (size * size))))


def _clock(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    m, s = divmod(seconds, 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def _check_outputs(spec: RenderSpec) -> None:
    if not spec.outputs():
        raise StudioError("nothing to write: give an MP4, a PNG folder or a WAV")
    if spec.output is not None and spec.output.suffix.lower() not in (".mp4", ".m4v", ".mov"):
        raise StudioError("the video must be an .mp4 file", spec.output)
    if spec.wav is not None and spec.wav.suffix.lower() != ".wav":
        raise StudioError("the audio must be a .wav file", spec.wav)
    for p in spec.outputs():
        if p.is_symlink() or (p.exists() and p.is_dir() != (p == spec.png_dir)):
            raise StudioError("exists and is not a " + ("folder" if p == spec.png_dir
                                                          else "regular file"), p)


def render_job(ctx: JobContext, spec: RenderSpec,
               engine: FaceEngine | None = None) -> Generator[Progress, None, RenderResult]:
    """Render ``spec``; the engine is loaded here unless one is given (tests, bench)."""
    import contextlib

    from studio.core.locks import output_lock
    from studio.face.request import render_requests
    from studio.render.audio import mixdown
    from studio.render.frame import frame_requests
    from studio.render.video import (
        BackgroundWriter,
        Mp4Writer,
        PngSequenceWriter,
        write_wav,
    )

    _check_outputs(spec)
    times, fps, start, end = frame_times(spec)
    t0 = time.monotonic()
    with contextlib.ExitStack() as stack:
        for p in spec.outputs():
            stack.enter_context(output_lock(p, "render output"))
        yield Progress(0.0, "mixing the audio")
        mix = mixdown(spec.project, spec.project_path, start, end)
        ctx.check()
        if engine is None:
            yield Progress(0.0, "loading the face model")
            engine = load_engine(spec)
            ctx.check()
        size = int(spec.size or engine.resolution)
        batch = int(spec.batch or default_batch(size))
        refine = None
        if spec.project.refiner.enabled:  # the project refines every frame
            from studio.refine.clip import FrameRefiner

            yield Progress(0.0, "loading the refiner")
            refine = FrameRefiner(spec.project.refiner, spec.project_path, spec.model_dirs,
                                  spec.device)
            size = refine.output_size(size)
        writers: list[Any] = []
        try:
            if spec.output is not None:
                writers.append(Mp4Writer(spec.output, (size, size), fps, mix.audio,
                                         mix.sample_rate))
            if spec.png_dir is not None:
                writers.append(PngSequenceWriter(spec.png_dir))
        except BaseException:
            for w in writers:
                w.abort()
            raise
        out = BackgroundWriter(writers)
        outputs: list[Path] = []
        try:
            n = len(times)
            render_t0 = time.monotonic()
            for i in range(0, n, batch):
                ctx.check()
                reqs = frame_requests(spec.project, times[i:i + batch], spec.project_path,
                                      size=spec.size)
                frames = render_requests(engine, reqs)
                out.write(refine(frames, ctx) if refine is not None else frames)
                done = min(i + batch, n)
                spent = time.monotonic() - render_t0
                rate = done / spent if spent > 0 else 0.0
                eta = (n - done) / rate if rate > 0 else 0.0
                yield Progress(done / n * 0.99, f"frame {done}/{n}, {rate:.1f} fps, "
                                                f"{_clock(eta)} left", step=done)
            ctx.check()
            outputs = out.finish()  # waits for the encoder, then renames into place
        finally:
            out.abort()  # cancelled or failed: nothing under the final names (no-op after finish)
        if spec.wav is not None:
            outputs.append(write_wav(spec.wav, mix.audio, mix.sample_rate))
    yield Progress(1.0, f"done: {len(times)} frames in {_clock(time.monotonic() - t0)}")
    return RenderResult(outputs, len(times), fps, size, end - start,
                        time.monotonic() - t0, mix.warnings)


__all__ = ["RenderResult", "RenderSpec", "default_batch", "frame_times", "load_engine",
           "render_job"]
