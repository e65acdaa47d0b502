"""Visemes → mouth curves with coarticulation (a dominance model).

Each viseme span pulls every mouth channel towards its pose with a dominance function:
flat over the span (widened to ``min_duration``), then falling off exponentially before
and after it (``blend`` seconds time constant), scaled by how strongly the viseme holds
its shape (:data:`~studio.animate.visemes.DOMINANCE`: a p/b/m closure wins over the
vowels around it, a t/d/k yields to them). A channel's value at time t is the
dominance-weighted mean of the poses (Cohen & Massaro 1993). Spans are shifted
``anticipation`` seconds earlier because the mouth forms a sound before it is heard.
The curves are sampled at ``fps`` and reduced to keys within ``tolerance``. A viseme is only
added where its weight can exceed ``exp(-40)`` (about 1.3 s around it with the defaults), so
the work and memory grow with the length of the speech, not with phonemes x samples.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from studio.animate.curves import make_track, track_from_samples
from studio.animate.visemes import CHANNELS, DOMINANCE, POSES, VISEMES, VisemeSpan
from studio.core.errors import StudioError

LIP_CHANNELS = CHANNELS


@dataclass(frozen=True)
class LipSyncSettings:
    intensity: float = 1.0  # scales jaw, pucker and smile (closures always close)
    anticipation: float = 0.03  # seconds the mouth leads the sound
    blend: float = 0.02  # coarticulation time constant, seconds
    min_duration: float = 0.06  # a viseme is held at least this long, seconds
    smoothing: float = 0.01  # extra Gaussian smoothing (sigma, seconds)
    fps: float = 100.0  # sampling rate of the curves before key reduction
    tolerance: float = 0.01  # key reduction error
    viseme_channels: bool = True  # also write viseme.<name> weight channels
    closures: bool = True  # p/b/m always shut the lips fully (over the middle of the sound)


NEGLIGIBLE = 40.0
"""A viseme's weight is dropped where it is below ``exp(-NEGLIGIBLE)`` (4e-18)."""
_FLOOR = 1e-12  # the dominance sum a weight is divided by is at least this
MAX_DURATION = 3 * 3600.0
"""The longest speech animated in one go, seconds (3 h; the timeline allows 24 h)."""
MAX_OVERLAP = 4.0
"""How many times more work than tiled phonemes need before the phonemes count as
overlapping too much (a timings file in which every phoneme spans the whole clip)."""


def _reach(blend: float, max_dominance: float) -> float:
    """How far (seconds) beyond its widened span a viseme still has a weight of at least
    ``exp(-NEGLIGIBLE)``. A weight is ``d_i / max(sum d, _FLOOR)`` with
    ``d_i = D_i exp(-distance / blend)``, so it is at most ``D_i exp(-distance / blend) /
    _FLOOR``; beyond ``blend * (ln(D_max / _FLOOR) + NEGLIGIBLE)`` that is below
    ``exp(-NEGLIGIBLE)``, whatever the other visemes do (about 1.3 s with the defaults)."""
    return blend * (math.log(max(max_dominance, _FLOOR) / _FLOOR) + NEGLIGIBLE)


def _dominance_sums(
    spans: Sequence[VisemeSpan], t: np.ndarray, s: LipSyncSettings
) -> np.ndarray:
    """Summed dominance of each viseme at every time: shape (len(VISEMES), times).

    Each span's dominance is flat over the span (widened to ``min_duration``) and falls
    off exponentially outside; it is only added where it can matter (within
    :func:`_reach` of the span), so the work and memory grow with the length of the
    speech, not with phonemes x samples. Visemes not in :data:`VISEMES` count as silence.
    """
    index = {v: i for i, v in enumerate(VISEMES)}
    out = np.zeros((len(VISEMES), len(t)))
    if not spans or not len(t):
        return out
    blend = max(s.blend, 1e-4)
    dom = np.array([DOMINANCE.get(sp.viseme, 1.0) for sp in spans])
    start = np.array([sp.start for sp in spans]) - s.anticipation
    end = np.array([sp.end for sp in spans]) - s.anticipation
    centre = 0.5 * (start + end)
    half = np.maximum(0.5 * (end - start), 0.5 * s.min_duration)
    reach = _reach(blend, float(dom.max()))
    lo = np.searchsorted(t, centre - half - reach, side="left")
    hi = np.searchsorted(t, centre + half + reach, side="right")
    work = int(np.sum(np.maximum(hi - lo, 0)))
    step = float(t[1] - t[0]) if len(t) > 1 else 1.0
    tiled = len(t) + len(spans) * (2 * (reach + 0.5 * s.min_duration) / step + 2)
    if work > MAX_OVERLAP * tiled:
        covered = float(np.sum(end - start))
        raise StudioError(
            f"the phonemes overlap too much to animate ({covered:.0f} s of phonemes in "
            f"{float(t[-1]):.0f} s of speech)"
        )
    for i in range(len(spans)):
        a, b = int(lo[i]), int(hi[i])
        if a >= b:
            continue
        distance = np.maximum(np.abs(t[a:b] - centre[i]) - half[i], 0.0)
        out[index.get(spans[i].viseme, 0), a:b] += dom[i] * np.exp(-distance / blend)
    return out


def _gaussian(values: np.ndarray, sigma_samples: float) -> np.ndarray:
    if sigma_samples < 0.3:
        return values
    radius = int(np.ceil(3 * sigma_samples))
    k = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma_samples) ** 2)
    k /= k.sum()
    padded = np.pad(values, ((0, 0), (radius, radius)), mode="edge")
    return np.stack([np.convolve(row, k, mode="valid") for row in padded])


def _force_closures(values: np.ndarray, spans, t: np.ndarray, s: LipSyncSettings) -> None:
    """Blending can leave a short p/b/m half closed; a viewer sees that at once. Over every
    bilabial (less 15 ms at each edge, at least 40 ms) the lips shut and the jaw closes,
    with 20 ms ramps in and out."""
    ramp = 0.02
    closed = CHANNELS.index("lips_closed")
    opened = CHANNELS.index("mouth_open")
    for span in spans:
        if span.viseme != "PP":
            continue
        centre = 0.5 * (span.start + span.end) - s.anticipation
        half = max(0.5 * span.duration - min(0.25 * span.duration, 0.015), 0.02)
        a = int(np.searchsorted(t, centre - half - ramp, side="left"))
        b = int(np.searchsorted(t, centre + half + ramp, side="right"))
        if a >= b:
            continue  # w is 0 outside [centre - half - ramp, centre + half + ramp]
        distance = np.maximum(np.abs(t[a:b] - centre) - half, 0.0)
        w = np.clip(1.0 - distance / ramp, 0.0, 1.0)
        w = w * w * (3 - 2 * w)  # smoothstep ramps
        target = POSES["PP"]
        values[closed, a:b] = np.maximum(values[closed, a:b], w * target[3])
        values[opened, a:b] = values[opened, a:b] * (1 - w) + w * target[0]


def check_duration(duration: float) -> None:
    """A clear error for a length that cannot be animated (not finite, negative, or
    longer than :data:`MAX_DURATION`)."""
    if not math.isfinite(duration) or duration < 0:
        raise StudioError(f"cannot animate speech of {duration} s")
    if duration > MAX_DURATION:
        raise StudioError(
            f"the speech is {duration:.0f} s long; at most {MAX_DURATION:.0f} s "
            f"({MAX_DURATION / 3600:g} h) can be animated at once"
        )


def viseme_curves(
    spans: Sequence[VisemeSpan], duration: float, settings: LipSyncSettings | None = None
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Sampled curves: times, and {channel: values} for mouth channels and viseme weights."""
    s = settings or LipSyncSettings()
    check_duration(duration)
    if not (math.isfinite(s.fps) and 1.0 <= s.fps <= 1000.0):
        raise StudioError(f"the lip-sync sampling rate must be 1..1000 fps, not {s.fps}")
    n = max(2, int(np.ceil(duration * s.fps)) + 1)
    t = np.linspace(0.0, duration, n)
    if not spans:
        zeros = np.zeros(n)
        curves = {ch: zeros.copy() for ch in CHANNELS}
        if s.viseme_channels:
            curves.update({f"viseme.{v}": (zeros + (v == "sil")) for v in VISEMES})
        return t, curves
    # silence before the first and after the last span lets the mouth rest
    padded = [VisemeSpan("sil", -1.0, spans[0].start), *spans,
              VisemeSpan("sil", spans[-1].end, max(duration, spans[-1].end) + 1.0)]
    sums = _dominance_sums(padded, t, s)  # (visemes, times)
    total = np.maximum(sums.sum(axis=0), _FLOOR)
    poses = np.array([POSES[v] for v in VISEMES])  # (visemes, 4)
    values = (poses.T @ sums) / total  # (4, times): the dominance-weighted mean pose
    values = _gaussian(values, s.smoothing * s.fps)
    if s.closures:
        _force_closures(values, spans, t, s)
    gains = np.array([s.intensity, s.intensity, s.intensity, 1.0])
    values = np.clip(values * gains[:, None], 0.0, 1.0)
    curves = {ch: values[i] for i, ch in enumerate(CHANNELS)}
    if s.viseme_channels:
        vis = _gaussian(sums / total, s.smoothing * s.fps)
        for i, v in enumerate(VISEMES):
            curves[f"viseme.{v}"] = np.clip(vis[i], 0.0, 1.0)
    return t, curves


def lipsync_tracks(
    spans: Sequence[VisemeSpan], duration: float, settings: LipSyncSettings | None = None
) -> list[dict[str, Any]]:
    """Curve tracks (timeline dicts) for the mouth from viseme spans."""
    s = settings or LipSyncSettings()
    t, curves = viseme_curves(spans, duration, s)
    tracks = []
    for channel, values in curves.items():
        if channel.startswith("viseme.") and float(np.max(values)) < s.tolerance:
            tracks.append(make_track(channel, [{"t": 0.0, "v": 0.0, "interp": "linear"}]))
            continue
        tracks.append(track_from_samples(channel, t, values, s.tolerance, "smooth"))
    return tracks
