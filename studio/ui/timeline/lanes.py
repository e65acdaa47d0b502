"""The lanes view: ruler with time code, grouped collapsible lanes, key diamonds, clips.

One painted widget: the label column (left) and the ruler (top) stay put while the lanes
zoom (Ctrl+wheel) and scroll (wheel; Shift+wheel pans in time), so labels never overlap
and never scroll out of sight sideways. Only what is visible is drawn: each lane finds its
visible keys by binary search on its cached curve. Mouse and key handling lives in
:mod:`studio.ui.timeline.gestures`.
"""

from __future__ import annotations

import contextlib

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QFont, QPainter, QPainterPath, QPen, QPolygonF
from PySide6.QtWidgets import QSizePolicy, QWidget

from studio.core.project import Clip, CurveTrack
from studio.timeline import curve_of, playing_tracks
from studio.ui.timeline.clip_assets import PEAK_RATE, ClipAssets
from studio.ui.timeline.gestures import Gestures
from studio.ui.timeline.layout import (
    LABEL_W,
    RULER_H,
    Row,
    View,
    build_rows,
    tick_step,
    timecode,
)

BG, LANE_BG, LANE_ALT, GROUP_BG = "#16171a", "#1c1e22", "#202227", "#2a2d33"
TEXT, DIM, ACCENT, PLAYHEAD = "#d6d9de", "#8b9099", "#4f9dff", "#ffb454"
CACHED = "#5fbf6f"  # frames in the playback cache
CLIP_COLORS = {"speech": "#4f9dff", "audio": "#5bc98a"}
DIAMOND = 5  # half size, px
FLAG_W = 16  # the M / S / L toggles in a track's label


class LanesView(QWidget):
    """The timeline's lanes. ``selection`` holds (track id, key id) pairs; ``current_track``
    and ``current_clip`` the track and clip last clicked."""

    selection_changed = Signal()
    _transport_changed = Signal()

    def __init__(self, panel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.panel = panel
        self.doc = panel.doc
        self.transport = panel.ctx.app.transport
        self.setObjectName("timelineLanes")
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setMouseTracking(True)
        self.setMinimumHeight(140)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.view = View()
        self.collapsed: set[str] = set()
        self.rows: list[Row] = []
        self.selection: set[tuple[str, int]] = set()
        self.current_track: str | None = None
        self.current_clip: str | None = None
        self.band: QRectF | None = None  # rubber band while dragging one
        self.assets = ClipAssets(self)
        self.assets.loaded.connect(lambda _: self.update())
        self.gestures = Gestures(self)
        self.font_small = QFont(self.font())
        self.font_small.setPointSizeF(max(7.0, self.font().pointSizeF() * 0.85))
        self._transport_changed.connect(self.update)
        self.playback = panel.ctx.playback
        self.playback.events.cache.connect(self.on_transport)  # cached ranges on the ruler
        self.rebuild()

    # -- model ---------------------------------------------------------------------------
    @property
    def timeline(self):
        return self.doc.project.timeline

    def rebuild(self) -> None:
        """Rows from the tracks; drops selected keys and tracks that are gone."""
        tl = self.timeline
        self.rows = build_rows(tl, self.collapsed)
        keys = {(t.id, k.id) for t in tl.tracks for k in t.keys}
        if not self.selection <= keys:
            self.selection &= keys
            self.selection_changed.emit()
        if self.current_track and all(t.id != self.current_track for t in tl.tracks):
            self.current_track = None
        if self.current_clip and all(c.id != self.current_clip for c in tl.clips):
            self.current_clip = None
        if not self.view.user_zoomed:
            self.view.fit(tl.duration, self.width())
        self._clamp_scroll()
        self.update()

    def on_transport(self, *_: object) -> None:
        """From the transport's time or loop event (any thread): repaint on the UI
        thread."""
        with contextlib.suppress(RuntimeError):  # the view may be gone
            self._transport_changed.emit()

    def toggle_group(self, group: str) -> None:
        self.collapsed ^= {group}
        self.rebuild()

    # -- geometry ------------------------------------------------------------------------
    def row_rects(self) -> list[tuple[Row, QRectF]]:
        out, y = [], RULER_H - self.view.scroll_y
        for row in self.rows:
            out.append((row, QRectF(0, y, self.width(), row.height)))
            y += row.height
        return out

    def content_height(self) -> int:
        return RULER_H + sum(r.height for r in self.rows)

    def _clamp_scroll(self) -> None:
        most = max(0, self.content_height() - self.height())
        self.view.scroll_y = int(min(max(self.view.scroll_y, 0), most))

    def track_rect(self, track_id: str) -> QRectF | None:
        for row, rect in self.row_rects():
            if row.kind == "track" and row.track_id == track_id:
                return rect
        return None

    def label_rects(self) -> list[tuple[str, QRectF]]:
        """(text, rectangle) of every label drawn (group names and channels)."""
        out = []
        for row, rect in self.row_rects():
            if rect.bottom() < RULER_H or rect.top() > self.height():
                continue
            text = row.group if row.kind != "track" else self.timeline.track(row.track_id).channel
            if row.kind == "clips":
                text = "clips"
            out.append((text, QRectF(6, rect.top() + 1, LABEL_W - 3 * FLAG_W - 10,
                                     rect.height() - 2)))
        return out

    def key_pos(self, track: CurveTrack, rect: QRectF, key_index: int) -> QPointF:
        curve = curve_of(track)
        t, v = curve.times[key_index], curve.values[key_index]
        lo, hi = self._range(track)
        y = rect.bottom() - 4 - (v - lo) / (hi - lo) * (rect.height() - 8)
        return QPointF(self.view.x_of(float(t)), y)

    @staticmethod
    def _range(track: CurveTrack) -> tuple[float, float]:
        values = curve_of(track).values
        if not len(values):
            return 0.0, 1.0
        lo, hi = float(values.min()), float(values.max())
        if hi - lo < 1e-9:
            lo, hi = lo - 0.5, hi + 0.5
        return lo, hi

    def visible_keys(self, track: CurveTrack) -> range:
        times = curve_of(track).times
        t0 = self.view.t_of(LABEL_W - DIAMOND)
        t1 = self.view.t_of(self.width() + DIAMOND)
        return range(int(np.searchsorted(times, t0, "left")),
                     int(np.searchsorted(times, t1, "right")))

    def clip_rect(self, clip: Clip, row_rect: QRectF) -> QRectF:
        x0, x1 = self.view.x_of(clip.start), self.view.x_of(clip.end)
        return QRectF(x0, row_rect.top() + 3, max(2.0, x1 - x0), row_rect.height() - 6)

    # -- painting ------------------------------------------------------------------------
    def paintEvent(self, event) -> None:  # noqa: N802 - Qt API
        p = QPainter(self)
        p.fillRect(self.rect(), QColor(BG))
        playing = {t.id for t in playing_tracks(self.timeline)}
        p.setClipRect(QRectF(0, RULER_H, self.width(), self.height() - RULER_H))
        for i, (row, rect) in enumerate(self.row_rects()):
            if rect.bottom() < RULER_H or rect.top() > self.height():
                continue
            if row.kind == "group":
                self._paint_group(p, row, rect)
            elif row.kind == "clips":
                self._paint_clips(p, rect)
            else:
                self._paint_track(p, self.timeline.track(row.track_id), rect, i,
                                  row.track_id in playing)
        self._paint_loop(p)
        p.setClipping(False)
        self._paint_ruler(p)
        self._paint_playhead(p)
        if self.band is not None:
            p.setPen(QPen(QColor(ACCENT), 1, Qt.PenStyle.DashLine))
            p.setBrush(QColor(79, 157, 255, 40))
            p.drawRect(self.band)
        p.end()

    def _paint_group(self, p: QPainter, row: Row, rect: QRectF) -> None:
        p.fillRect(rect, QColor(GROUP_BG))
        p.setPen(QColor(TEXT))
        arrow = "▸" if row.group in self.collapsed else "▾"
        count = ""
        if row.group != "Speech":
            n = sum(1 for r in build_rows(self.timeline, set()) if r.kind == "track"
                    and r.group == row.group)
            count = f"  ({n})"
        p.drawText(rect.adjusted(6, 0, 0, 0), Qt.AlignmentFlag.AlignVCenter,
                   f"{arrow} {row.group}{count}")

    def _paint_label(self, p: QPainter, text: str, rect: QRectF, selected: bool) -> None:
        label = QRectF(0, rect.top(), LABEL_W, rect.height())
        p.fillRect(label, QColor("#2f3540" if selected else LANE_ALT))
        p.setPen(QColor(TEXT))
        box = QRectF(14, rect.top(), LABEL_W - 3 * FLAG_W - 18, rect.height())
        p.drawText(box, Qt.AlignmentFlag.AlignVCenter,
                   p.fontMetrics().elidedText(text, Qt.TextElideMode.ElideRight, int(box.width())))

    def _paint_track(self, p: QPainter, track: CurveTrack, rect: QRectF, index: int,
                     playing: bool) -> None:
        p.fillRect(rect, QColor(LANE_BG if index % 2 else LANE_ALT))
        self._paint_label(p, track.channel, rect, track.id == self.current_track)
        p.setFont(self.font_small)
        for j, (flag, on) in enumerate((("M", track.muted), ("S", track.solo),
                                        ("L", track.locked))):
            box = QRectF(LABEL_W - (3 - j) * FLAG_W - 4, rect.top() + 4, FLAG_W - 2,
                         rect.height() - 8)
            p.fillRect(box, QColor("#c0504d" if on and flag == "M" else
                                   "#d9a43c" if on and flag == "S" else
                                   "#7a7f8a" if on else "#33363d"))
            p.setPen(QColor(TEXT if on else DIM))
            p.drawText(box, Qt.AlignmentFlag.AlignCenter, flag)
        p.setFont(self.font())
        p.save()
        p.setClipRect(QRectF(LABEL_W, max(rect.top(), RULER_H), self.width() - LABEL_W,
                             rect.height()))
        curve = curve_of(track)
        lo, hi = self._range(track)
        if len(curve):
            x = np.arange(LABEL_W, self.width() + 2, 2.0)
            v = curve.evaluate(self.view.t0 + (x - LABEL_W) / self.view.pps)
            y = rect.bottom() - 4 - (v - lo) / (hi - lo) * (rect.height() - 8)
            color = QColor(ACCENT if playing else DIM)
            color.setAlpha(150)
            pen = QPen(color, 1.2, Qt.PenStyle.DashLine if track.locked else Qt.PenStyle.SolidLine)
            p.setPen(pen)
            p.drawPolyline(QPolygonF([QPointF(a, b) for a, b in zip(x, y, strict=True)]))
        for i in self.visible_keys(track):
            c = self.key_pos(track, rect, i)
            kid = track.keys[i].id
            sel = (track.id, kid) in self.selection
            p.setPen(QPen(QColor("#ffffff" if sel else "#0d0e10"), 1))
            p.setBrush(QColor(PLAYHEAD if sel else ("#9aa0aa" if track.locked else "#e6e8eb")))
            p.drawPolygon(QPolygonF([QPointF(c.x(), c.y() - DIAMOND),
                                     QPointF(c.x() + DIAMOND, c.y()),
                                     QPointF(c.x(), c.y() + DIAMOND),
                                     QPointF(c.x() - DIAMOND, c.y())]))
        p.restore()

    def _paint_clips(self, p: QPainter, rect: QRectF) -> None:
        p.fillRect(rect, QColor(LANE_ALT))
        self._paint_label(p, "clips", rect, False)
        p.save()
        p.setClipRect(QRectF(LABEL_W, max(rect.top(), RULER_H), self.width() - LABEL_W,
                             rect.height()))
        t0, t1 = self.view.t_of(LABEL_W), self.view.t_of(self.width())
        for clip in self.timeline.clips:
            if clip.end < t0 or clip.start > t1:
                continue
            box = self.clip_rect(clip, rect)
            color = QColor(CLIP_COLORS.get(clip.kind, "#aaaaaa"))
            fill = QColor(color)
            fill.setAlpha(70)
            p.setBrush(fill)
            p.setPen(QPen(QColor("#ffffff") if clip.id == self.current_clip else color,
                          2 if clip.id == self.current_clip else 1))
            p.drawRoundedRect(box, 3, 3)
            self._paint_clip_data(p, clip, box, color)
            p.setPen(QColor(TEXT))
            p.drawText(box.adjusted(4, 1, -4, 0), Qt.AlignmentFlag.AlignTop,
                       p.fontMetrics().elidedText((clip.text or clip.kind).replace("\n", " "),
                                                  Qt.TextElideMode.ElideRight,
                                                  int(max(0, box.width() - 8))))
        p.restore()

    def _paint_clip_data(self, p: QPainter, clip: Clip, box: QRectF, color: QColor) -> None:
        data = self.assets.get(self.doc.path, clip)
        if data is None:
            return
        mid, half = box.center().y() + 4, box.height() / 2 - 8
        left = max(box.left(), LABEL_W)
        right = min(box.right(), self.width())
        if len(data.peaks) and right > left:
            xs = np.arange(left, right, 1.0)
            idx = ((self.view.t_of(xs) - clip.start + clip.offset) * PEAK_RATE).astype(int)
            ok = (idx >= 0) & (idx < len(data.peaks))
            path = QPainterPath()
            for x, i in zip(xs[ok], idx[ok], strict=True):
                a = float(data.peaks[i]) * half
                path.moveTo(x, mid - a)
                path.lineTo(x, mid + a)
            p.setPen(QPen(color.lighter(130), 1))
            p.drawPath(path)
        p.setFont(self.font_small)
        p.setPen(QColor(TEXT))
        fm = p.fontMetrics()
        last_right = -1e9
        for label, start, end in data.phonemes:
            a = clip.start + start - clip.offset
            b = clip.start + end - clip.offset
            if b <= clip.start or a >= clip.end:
                continue
            x0, x1 = self.view.x_of(a), self.view.x_of(b)
            w = fm.horizontalAdvance(label)
            if x1 < left or x0 > right or x0 < last_right + 2 or w > x1 - x0 + 6:
                continue  # off screen, or no room: never draw labels over each other
            p.drawText(QPointF(x0 + 1, box.bottom() - 3), label)
            last_right = x0 + 1 + w
        p.setFont(self.font())

    def _paint_loop(self, p: QPainter) -> None:
        loop = self.transport.loop
        if loop is None:
            return
        x0, x1 = self.view.x_of(loop[0]), self.view.x_of(loop[1])
        p.fillRect(QRectF(x0, RULER_H, x1 - x0, self.height()), QColor(255, 180, 84, 25))

    def _paint_ruler(self, p: QPainter) -> None:
        w = self.width()
        p.fillRect(QRectF(0, 0, w, RULER_H), QColor(GROUP_BG))
        fps = self.timeline.fps
        p.setPen(QColor(TEXT))
        p.drawText(QRectF(6, 0, LABEL_W - 8, RULER_H), Qt.AlignmentFlag.AlignVCenter,
                   timecode(self.transport.time, fps))
        for a, b in self.playback.cached_ranges:  # frames ready to play: a thin bar
            x0, x1 = max(LABEL_W, self.view.x_of(a)), min(w, self.view.x_of(b))
            if x1 > x0:
                p.fillRect(QRectF(x0, RULER_H - 3, x1 - x0, 3), QColor(CACHED))
        loop = self.transport.loop
        if loop is not None:
            x0, x1 = max(LABEL_W, self.view.x_of(loop[0])), self.view.x_of(loop[1])
            if x1 > x0:
                p.fillRect(QRectF(x0, RULER_H - 5, x1 - x0, 2), QColor(PLAYHEAD))
        step = tick_step(self.view.pps)
        t = np.floor(self.view.t0 / step) * step
        end = self.view.t_of(w)
        p.setFont(self.font_small)
        while t <= end:
            x = self.view.x_of(t)
            if x >= LABEL_W:
                p.setPen(QColor(DIM))
                p.drawLine(QPointF(x, RULER_H - 8), QPointF(x, RULER_H))
                p.setPen(QColor(TEXT))
                p.drawText(QPointF(x + 3, RULER_H - 10), timecode(t, fps))
            t += step
        p.setFont(self.font())
        p.setPen(QColor(DIM))
        p.drawLine(QPointF(0, RULER_H), QPointF(w, RULER_H))
        p.drawLine(QPointF(LABEL_W, 0), QPointF(LABEL_W, self.height()))

    def _paint_playhead(self, p: QPainter) -> None:
        x = self.view.x_of(self.transport.time)
        if x < LABEL_W or x > self.width():
            return
        p.setPen(QPen(QColor(PLAYHEAD), 2))
        p.drawLine(QPointF(x, 0), QPointF(x, self.height()))
        p.setBrush(QColor(PLAYHEAD))
        p.drawPolygon(QPolygonF([QPointF(x - 6, 0), QPointF(x + 6, 0), QPointF(x, 8)]))

    # -- events --------------------------------------------------------------------------
    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt API
        if not self.view.user_zoomed:
            self.view.fit(self.timeline.duration, self.width())
        self._clamp_scroll()
        super().resizeEvent(event)

    def fit(self) -> None:
        self.view.fit(self.timeline.duration, self.width())
        self.update()

    def mousePressEvent(self, e) -> None:  # noqa: N802 - Qt API
        self.gestures.press(e)

    def mouseMoveEvent(self, e) -> None:  # noqa: N802 - Qt API
        self.gestures.move(e)

    def mouseReleaseEvent(self, e) -> None:  # noqa: N802 - Qt API
        self.gestures.release(e)

    def wheelEvent(self, e) -> None:  # noqa: N802 - Qt API
        self.gestures.wheel(e)

    def keyPressEvent(self, e) -> None:  # noqa: N802 - Qt API
        if not self.gestures.key(e):
            super().keyPressEvent(e)
