"""Visemes → mouth curves with coarticulation (a dominance model).

Each viseme span pulls every mouth channel towards its pose with a dominance function:
flat over the span (widened to ``min_duration``), then falling off exponentially before
and after it (``blend`` seconds time constant), scaled by how strongly the viseme holds
its shape (:data:`~studio.animate.visemes.DOMINANCE`: a p/b/m closure wins over the
vowels around it, a t/d/k yields to them). A channel's value at time t is the
dominance-weighted mean of the poses (Cohen & Massaro 1993). Spans are shifted
``anticipation`` seconds earlier because the mouth forms a sound before it is heard.
The curves are sampled at ``fps`` and reduced to keys within ``tolerance``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from studio.animate.curves import make_track, track_from_samples
from studio.animate.visemes import CHANNELS, DOMINANCE, POSES, VISEMES, VisemeSpan

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


def _dominance(spans: Sequence[VisemeSpan], t: np.ndarray, s: LipSyncSettings) -> np.ndarray:
    """Dominance of every span at every time: shape (spans, times)."""
    out = np.empty((len(spans), len(t)))
    for i, span in enumerate(spans):
        start = span.start - s.anticipation
        end = span.end - s.anticipation
        centre = 0.5 * (start + end)
        half = max(0.5 * (end - start), 0.5 * s.min_duration)
        distance = np.maximum(np.abs(t - centre) - half, 0.0)
        out[i] = DOMINANCE.get(span.viseme, 1.0) * np.exp(-distance / max(s.blend, 1e-4))
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
        distance = np.maximum(np.abs(t - centre) - half, 0.0)
        w = np.clip(1.0 - distance / ramp, 0.0, 1.0)
        w = w * w * (3 - 2 * w)  # smoothstep ramps
        target = POSES["PP"]
        values[closed] = np.maximum(values[closed], w * target[3])
        values[opened] = values[opened] * (1 - w) + w * target[0]


def viseme_curves(
    spans: Sequence[VisemeSpan], duration: float, settings: LipSyncSettings | None = None
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Sampled curves: times, and {channel: values} for mouth channels and viseme weights."""
    s = settings or LipSyncSettings()
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
    dom = _dominance(padded, t, s)
    weights = dom / np.maximum(dom.sum(axis=0, keepdims=True), 1e-12)
    poses = np.array([POSES.get(sp.viseme, POSES["sil"]) for sp in padded])  # (spans, 4)
    values = poses.T @ weights  # (4, times)
    values = _gaussian(values, s.smoothing * s.fps)
    if s.closures:
        _force_closures(values, spans, t, s)
    gains = np.array([s.intensity, s.intensity, s.intensity, 1.0])
    values = np.clip(values * gains[:, None], 0.0, 1.0)
    curves = {ch: values[i] for i, ch in enumerate(CHANNELS)}
    if s.viseme_channels:
        index = {v: i for i, v in enumerate(VISEMES)}
        onehot = np.zeros((len(padded), len(VISEMES)))
        for i, sp in enumerate(padded):
            onehot[i, index.get(sp.viseme, 0)] = 1.0
        vis = _gaussian(onehot.T @ weights, s.smoothing * s.fps)
        for v, i in index.items():
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
