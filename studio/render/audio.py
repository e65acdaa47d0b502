"""The timeline's sound: every speech and audio clip mixed into one track, in sync.

A clip plays its audio from ``offset`` seconds into the file (trims and splits move it),
for ``duration`` seconds, starting at ``start`` on the timeline, scaled by ``gain``. Clips
that overlap add up; the sum is soft-limited only where it would clip. A clip whose audio
file is missing or unreadable is left out with a warning naming the file (the rest still
plays), never a failure of the whole render.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from studio.core.errors import StudioError
from studio.core.project import Clip, Project, resolve_asset

MIX_RATE = 48_000  # when the clips' rates differ, every clip is resampled to this
AAC_RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000, 64000, 88200, 96000)


@dataclass
class Mix:
    audio: np.ndarray  # float32 mono, -1..1
    sample_rate: int
    warnings: list[str] = field(default_factory=list)

    @property
    def duration(self) -> float:
        return len(self.audio) / self.sample_rate


def clip_audio_path(project_path: Path | None, clip: Clip) -> Path | None:
    return None if not clip.audio else resolve_asset(project_path, clip.audio)


def missing_audio(project: Project, project_path: Path | None) -> list[str]:
    """One warning per clip whose audio file is absent (cheap: no decoding), for the
    message shown when a project opens."""
    out = []
    for clip in project.timeline.clips:
        if not clip.audio:
            continue
        try:
            path = clip_audio_path(project_path, clip)
        except StudioError as exc:
            out.append(f"clip {clip.id}: {exc}")
            continue
        if path is None or not path.is_file():
            out.append(f"{path}: audio file not found (clip {clip.id} at {clip.start:.2f} s "
                       "is silent)")
    return out


def mix_rate(project: Project, project_path: Path | None) -> int:
    """The rate to mix at: the clips' own rate when they all share one that AAC takes
    (speech from one voice: no resampling at all), :data:`MIX_RATE` otherwise."""
    import soundfile as sf

    rates = set()
    for clip in project.timeline.clips:
        try:
            path = clip_audio_path(project_path, clip)
            if path is not None and path.is_file():
                rates.add(int(sf.info(str(path)).samplerate))
        except (StudioError, RuntimeError, TypeError, ValueError):
            continue  # unreadable here: mixdown reports it
    if len(rates) == 1 and (rate := rates.pop()) in AAC_RATES:
        return rate
    return MIX_RATE


def _load(path: Path, rate: int) -> np.ndarray:
    from studio.voice.audio_io import load_audio

    return load_audio(path, sample_rate=rate, normalize=False).audio


def mixdown(project: Project, project_path: Path | None, start: float = 0.0,
            end: float | None = None, sample_rate: int | None = None) -> Mix:
    """The mix of the clips from ``start`` to ``end`` seconds (default: the timeline's
    duration): exactly ``round((end - start) * sample_rate)`` samples. ``sample_rate``
    defaults to :func:`mix_rate`."""
    if sample_rate is None:
        sample_rate = mix_rate(project, project_path)
    end = project.timeline.duration if end is None else float(end)
    if not end > start >= 0:
        raise StudioError(f"the audio range must satisfy 0 <= start < end, not {start}:{end}")
    n = int(round((end - start) * sample_rate))
    out = np.zeros(n, np.float64)
    warnings: list[str] = []
    cache: dict[Path, np.ndarray] = {}
    for clip in project.timeline.clips:
        if not clip.audio or clip.gain == 0 or clip.duration <= 0:
            continue
        if clip.end <= start or clip.start >= end:
            continue
        try:
            path = clip_audio_path(project_path, clip)
            assert path is not None
            if path not in cache:
                cache[path] = _load(path, sample_rate)
            audio = cache[path]
        except StudioError as exc:
            warnings.append(f"{exc} (clip {clip.id} at {clip.start:.2f} s left out)")
            continue
        # timeline samples [a, b) of this clip, relative to the render's start
        a = int(round((clip.start - start) * sample_rate))
        b = int(round((clip.end - start) * sample_rate))
        src0 = int(round(clip.offset * sample_rate))
        lo, hi = max(a, 0), min(b, n)
        s0 = src0 + (lo - a)
        s1 = min(s0 + (hi - lo), len(audio))
        if s1 <= s0:
            continue
        out[lo:lo + (s1 - s0)] += audio[s0:s1].astype(np.float64) * clip.gain
    peak = float(np.max(np.abs(out))) if n else 0.0
    if peak > 1.0:  # soft-limit only the loud parts: quiet speech stays as it was
        over = np.abs(out) > 0.9
        out[over] = np.sign(out[over]) * (0.9 + 0.1 * np.tanh((np.abs(out[over]) - 0.9) / 0.1))
    return Mix(out.astype(np.float32), sample_rate, warnings)


__all__ = ["MIX_RATE", "Mix", "clip_audio_path", "missing_audio", "mix_rate", "mixdown"]
