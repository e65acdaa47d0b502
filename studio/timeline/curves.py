"""Project tracks ↔ curves: the cached array view of a track, tracks made from curves.

A project track (:class:`~studio.core.project.CurveTrack`) stores keys with ids; evaluating
and drawing use its :class:`~studio.animate.curves.Curve`, built once per change of the
keys and cached on the track (:func:`curve_of`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import numpy as np

from studio.animate.curves import INTERPOLATIONS, Curve
from studio.core.project import CurveTrack, Key, Timeline


def _build(track: CurveTrack) -> Curve:
    return Curve.from_keys(track.channel, track.keys)


def curve_of(track: CurveTrack) -> Curve:
    """The track's keys as a :class:`Curve` (cached until its keys change)."""
    return track.cached(_build)


def keys_from_curve(curve: Curve, first_id: int = 1, shift: float = 0.0) -> tuple[Key, ...]:
    """Project keys (ids ``first_id``, ``first_id + 1``, ...) for a curve, ``shift``
    seconds later (times rounded to microseconds)."""
    times = np.round(curve.times + shift, 6) if shift else curve.times
    keys = tuple(
        Key(id=first_id + i, t=float(t), v=float(v), interp=INTERPOLATIONS[int(c)])
        for i, (t, v, c) in enumerate(zip(times, curve.values, curve.interp, strict=True))
    )
    tangents = np.isfinite(curve.tan_in) | np.isfinite(curve.tan_out)
    if not tangents.any():
        return keys
    out = list(keys)
    for i in np.nonzero(tangents)[0]:
        ti, to = float(curve.tan_in[i]), float(curve.tan_out[i])
        out[i] = out[i].model_copy(update={"tan_in": ti if np.isfinite(ti) else None,
                                           "tan_out": to if np.isfinite(to) else None})
    return tuple(out)


def track_from_curve(curve: Curve, track_id: str, shift: float = 0.0) -> CurveTrack:
    track = CurveTrack(id=track_id, channel=curve.channel, keys=keys_from_curve(curve, 1, shift))
    if not shift:
        track.cached(lambda _: curve)  # the view is the curve it came from
    return track


# -------------------------------------------------------------------------------- ids


def _next_number(ids: Iterable[str], prefix: str) -> int:
    pattern = re.compile(rf"^{re.escape(prefix)}(\d{{1,15}})$")
    numbers = [int(m.group(1)) for m in map(pattern.match, ids) if m]
    return max(numbers, default=0) + 1


def next_track_id(timeline: Timeline, taken: Iterable[str] = ()) -> str:
    """``t<n>``: one more than the highest such id in the timeline (and in ``taken``)."""
    return f"t{_next_number([*(t.id for t in timeline.tracks), *taken], 't')}"


def next_clip_id(timeline: Timeline, taken: Iterable[str] = ()) -> str:
    return f"c{_next_number([*(c.id for c in timeline.clips), *taken], 'c')}"


def next_key_id(keys: Iterable[Key]) -> int:
    return max((k.id for k in keys), default=0) + 1


def clips_end(timeline: Timeline) -> float:
    """Where the last clip ends (0 without clips)."""
    return max((c.start + c.duration for c in timeline.clips), default=0.0)


def find_track(timeline: Timeline, channel: str) -> CurveTrack | None:
    return next((t for t in timeline.tracks if t.channel == channel), None)


__all__ = ["clips_end", "curve_of", "find_track", "keys_from_curve", "next_clip_id",
           "next_key_id", "next_track_id", "track_from_curve"]
