"""What the timeline says at a time: channel values from the playing tracks (pure, no Qt).

A track plays when it has keys, is not muted, and either no track is soloed or it is
soloed itself (a muted track stays silent even when soloed). A channel without a playing
track is absent from the result: the rig keeps the avatar's own value for it.

``evaluate_many`` is vectorised over the times (one array per channel), for rendering a
clip's frames at once; each track's keys are read through its cached curve.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from studio.core.project import CurveTrack, Project, Timeline
from studio.timeline.curves import curve_of


def _timeline(source: Project | Timeline) -> Timeline:
    return source.timeline if isinstance(source, Project) else source


def playing_tracks(source: Project | Timeline) -> list[CurveTrack]:
    """The tracks whose keys drive their channel now (mute and solo applied)."""
    tracks = _timeline(source).tracks
    soloed = any(t.solo for t in tracks)
    return [t for t in tracks if t.keys and not t.muted and (t.solo or not soloed)]


def evaluate_many(source: Project | Timeline, times: Any) -> dict[str, np.ndarray]:
    """channel → values at ``times`` (an array of seconds; the result has its shape)."""
    t = np.asarray(times, dtype=np.float64)
    flat = t.reshape(-1)
    return {track.channel: curve_of(track).evaluate(flat).reshape(t.shape)
            for track in playing_tracks(source)}


def evaluate(source: Project | Timeline, t: float) -> dict[str, float]:
    """channel → value at ``t`` seconds."""
    return {ch: float(v[0]) for ch, v in evaluate_many(source, np.array([float(t)])).items()}


__all__ = ["evaluate", "evaluate_many", "playing_tracks"]
