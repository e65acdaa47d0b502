"""The animation itself, for other tools: every playing channel sampled per frame.

* CSV: a ``time`` column (seconds), then one column per channel. A channel that maps to
  ARKit blendshapes is written under those names (``mouth_open`` → ``jawOpen``; ``smile``
  → ``mouthSmileLeft`` and ``mouthSmileRight`` with the same values), the head channels
  under Live Link Face's ``HeadYaw``/``HeadPitch``/``HeadRoll``; any other channel under
  its own name.
* JSON: ``{"fps", "start", "frames", "times", "channels": {name: {"arkit": [...],
  "values": [...], "keys": [{"t", "v", "interp"}]}}}`` with the keys as on the timeline.

Values come from :func:`studio.timeline.evaluate_many`, the same evaluation the renderer
uses (mute and solo applied).
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

import numpy as np

from studio.core.atomic import atomic_write_text
from studio.core.errors import StudioError
from studio.core.project import Project
from studio.timeline.evaluate import evaluate_many, playing_tracks

ARKIT: dict[str, tuple[str, ...]] = {
    "mouth_open": ("jawOpen",),
    "lip_pucker": ("mouthPucker",),
    "lips_closed": ("mouthClose",),
    "smile": ("mouthSmileLeft", "mouthSmileRight"),
    "blink": ("eyeBlinkLeft", "eyeBlinkRight"),
}
HEAD = {"head_yaw": "HeadYaw", "head_pitch": "HeadPitch", "head_roll": "HeadRoll"}


def sample_curves(project: Project, rng: tuple[float, float] | None = None,
                  fps: int | None = None) -> tuple[np.ndarray, dict[str, np.ndarray], int]:
    """Frame times and channel → values over ``rng`` (default: the whole timeline)."""
    tl = project.timeline
    fps = int(fps or tl.fps)
    if not 1 <= fps <= 240:
        raise StudioError(f"the frame rate must be 1 to 240 fps, not {fps}")
    a, b = rng if rng is not None else (0.0, tl.duration)
    if not (math.isfinite(a) and math.isfinite(b) and 0 <= a < b):
        raise StudioError(f"the range must satisfy 0 <= A < B, not {a:g}:{b:g}")
    n = max(1, int(round((b - a) * fps)))
    times = a + np.arange(n, dtype=np.float64) / fps
    return times, evaluate_many(project, times), fps


def column_names(channel: str) -> tuple[str, ...]:
    return ARKIT.get(channel) or ((HEAD[channel],) if channel in HEAD else (channel,))


def curves_csv(project: Project, rng: tuple[float, float] | None = None,
               fps: int | None = None) -> str:
    times, values, _ = sample_curves(project, rng, fps)
    channels = sorted(values)
    header, columns = ["time"], [times]
    for ch in channels:
        for name in column_names(ch):
            if name in header:
                raise StudioError(f"two channels would both be written as {name!r}")
            header.append(name)
            columns.append(values[ch])
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    for row in zip(*columns, strict=True):
        w.writerow([f"{x:.6g}" for x in row])
    return buf.getvalue()


def curves_json(project: Project, rng: tuple[float, float] | None = None,
                fps: int | None = None) -> str:
    times, values, fps = sample_curves(project, rng, fps)
    tracks = {t.channel: t for t in playing_tracks(project)}
    channels = {}
    for ch in sorted(values):
        channels[ch] = {
            "arkit": list(ARKIT.get(ch, ())),
            "values": [round(float(v), 6) for v in values[ch]],
            "keys": [{"t": k.t, "v": k.v, "interp": k.interp} for k in tracks[ch].keys],
        }
    doc = {"fps": fps, "start": float(times[0]), "frames": len(times),
           "times": [round(float(t), 6) for t in times], "channels": channels}
    return json.dumps(doc, indent=1)


def export_curves(project: Project, path: Path, rng: tuple[float, float] | None = None,
                  fps: int | None = None) -> Path:
    """Write CSV or JSON by the extension, atomically."""
    path = Path(path)
    ext = path.suffix.lower()
    if ext not in (".csv", ".json"):
        raise StudioError("curves are exported as .csv or .json", path)
    text = curves_csv(project, rng, fps) if ext == ".csv" else curves_json(project, rng, fps)
    try:
        atomic_write_text(path, text)
    except OSError as exc:
        raise StudioError(f"cannot write: {exc.strerror or exc}", path) from None
    return path


__all__ = ["ARKIT", "HEAD", "column_names", "curves_csv", "curves_json", "export_curves",
           "sample_curves"]
