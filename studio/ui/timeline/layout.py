"""What the lanes view shows where: groups of tracks, rows, and the time ↔ pixel map.

Plain Python (no widgets): the view asks this module which row is at a height and where
a time is drawn, so painting and hit-testing agree.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from studio.core.project import Timeline

GROUPS = ("Speech", "Mouth", "Eyes", "Head", "Expression")
_PREFIXES = {
    "Mouth": ("mouth", "jaw", "lip", "viseme", "tongue", "teeth", "smile", "cheek"),
    "Eyes": ("blink", "eye", "brow", "gaze", "lid", "squint"),
    "Head": ("head", "neck", "body", "shoulder"),
}
RULER_H = 26  # px
ROW_H = 24
CLIP_ROW_H = 48
LABEL_W = 170
MIN_PPS, MAX_PPS = 2.0, 4000.0  # pixels per second


def group_of(channel: str) -> str:
    name = channel.lower()
    for group, prefixes in _PREFIXES.items():
        if name.startswith(prefixes):
            return group
    return "Expression"


@dataclass(frozen=True)
class Row:
    kind: str  # "group", "clips" or "track"
    group: str
    track_id: str | None = None
    height: int = ROW_H


def build_rows(timeline: Timeline, collapsed: set[str]) -> list[Row]:
    """Group headers, then (unless collapsed) the group's rows: the Speech group holds the
    clips row, the others their tracks in timeline order. Empty groups are left out."""
    by_group: dict[str, list[str]] = {g: [] for g in GROUPS}
    for track in timeline.tracks:
        by_group[group_of(track.channel)].append(track.id)
    rows: list[Row] = []
    for group in GROUPS:
        if group == "Speech":
            rows.append(Row("group", group))
            if group not in collapsed:
                rows.append(Row("clips", group, height=CLIP_ROW_H))
            continue
        ids = by_group[group]
        if not ids:
            continue
        rows.append(Row("group", group))
        if group not in collapsed:
            rows += [Row("track", group, tid) for tid in ids]
    return rows


@dataclass
class View:
    """Horizontal zoom and scroll (``t0`` at the lanes' left edge, pixels per second) and
    vertical scroll in pixels. Kept across edits; only the user changes it."""

    t0: float = 0.0
    pps: float = 100.0
    scroll_y: int = 0
    user_zoomed: bool = False  # until the user zooms, the whole timeline fits the width
    row_tops: list[int] = field(default_factory=list)

    def x_of(self, t: float) -> float:
        return LABEL_W + (t - self.t0) * self.pps

    def t_of(self, x: float) -> float:
        return self.t0 + (x - LABEL_W) / self.pps

    def zoom(self, factor: float, about_x: float) -> None:
        t = self.t_of(about_x)
        self.pps = min(MAX_PPS, max(MIN_PPS, self.pps * factor))
        self.t0 = max(0.0, t - (about_x - LABEL_W) / self.pps)
        self.user_zoomed = True

    def fit(self, duration: float, width: int) -> None:
        lanes = max(50, width - LABEL_W - 12)
        self.pps = min(MAX_PPS, max(MIN_PPS, lanes / max(duration, 0.1)))
        self.t0 = 0.0


def tick_step(pps: float, min_px: float = 70.0) -> float:
    """A round time step (frames-free: 0.01, 0.02, 0.05, 0.1 ... s) at least ``min_px``
    apart on screen."""
    raw = min_px / max(pps, 1e-9)
    base = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 5, 10):
        if base * m >= raw:
            return base * m
    return base * 10


def timecode(t: float, fps: int) -> str:
    """``m:ss:ff`` (minutes, seconds, frames)."""
    frames = round(t * fps)
    s, f = divmod(frames, fps)
    m, s = divmod(s, 60)
    return f"{m}:{s:02d}:{f:02d}"
