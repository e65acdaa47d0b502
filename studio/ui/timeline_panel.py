"""The Timeline panel: the project's curve tracks and clips over time.

Shows every curve track as a lane (its cached curve, evaluated with the renderer's
interpolation), speech and audio clips as labelled bars, and a draggable playhead. Tracks
can be muted (the tick), soloed, locked or deleted; clips split at the playhead or deleted.
Each is an undoable timeline command addressed by the track's or clip's id
(:mod:`studio.timeline.commands`). Keyframe editing in the plot comes with the timeline
editor.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from studio.animate.curves import Curve
from studio.core.errors import StudioError
from studio.core.history import Command
from studio.core.project import CurveTrack
from studio.timeline import (
    DeleteClip,
    DeleteTrack,
    SplitClip,
    curve_of,
    lock_track,
    mute_track,
    playing_tracks,
    solo_track,
)
from studio.ui.context import StudioContext

LANE = 1.2  # vertical spacing of lanes in data units (a curve spans about 0..1)
CLIP_COLORS = {"speech": "#4f9dff", "audio": "#5bc98a"}
SAMPLES_PER_S = 50
MAX_SAMPLES = 4000  # per lane: about a screen's width of points
ID_ROLE = Qt.ItemDataRole.UserRole


class TimelinePanel(QWidget):
    def __init__(self, ctx: StudioContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.doc = ctx.document
        self.tracks = QListWidget()
        self.tracks.setObjectName("timelineTracks")
        self.tracks.itemChanged.connect(self._on_item_changed)
        self.tracks.currentRowChanged.connect(lambda _: self._update_buttons())
        self.clips = QListWidget()
        self.clips.setObjectName("timelineClips")
        self.clips.currentRowChanged.connect(lambda _: self._update_buttons())
        self.solo_btn = QPushButton("Solo")
        self.solo_btn.setCheckable(True)
        self.solo_btn.setToolTip("Play only the soloed tracks")
        self.lock_btn = QPushButton("Lock")
        self.lock_btn.setCheckable(True)
        self.lock_btn.setToolTip("Protect the track's keys from edits")
        self.delete_track_btn = QPushButton("Delete track")
        self.split_clip_btn = QPushButton("Split at playhead")
        self.delete_clip_btn = QPushButton("Delete clip")
        self.solo_btn.clicked.connect(self.toggle_solo)
        self.lock_btn.clicked.connect(self.toggle_lock)
        self.delete_track_btn.clicked.connect(self.delete_selected_track)
        self.split_clip_btn.clicked.connect(self.split_selected_clip)
        self.delete_clip_btn.clicked.connect(self.delete_selected_clip)
        self.summary = QLabel()
        self.summary.setObjectName("hint")
        self.plot = pg.PlotWidget(background="#16171a")
        self.plot.setObjectName("timelinePlot")
        self.plot.setMenuEnabled(False)
        self.plot.showGrid(x=True, y=False, alpha=0.15)
        self.plot.getPlotItem().hideAxis("left")
        self.plot.getPlotItem().setLabel("bottom", "time", units="s")
        self.plot.setMouseEnabled(x=True, y=False)
        self.playhead = pg.InfiniteLine(pos=0.0, angle=90, movable=True,
                                        pen=pg.mkPen("#ffb454", width=2))
        self.playhead.sigPositionChanged.connect(self._on_playhead)
        self.time_label = QLabel("0.00 s")
        left = QWidget()
        lv = QVBoxLayout(left)
        lv.setContentsMargins(0, 0, 0, 0)
        lv.addWidget(QLabel("Tracks (tick to play, untick to mute)"))
        lv.addWidget(self.tracks, 2)
        track_row = QHBoxLayout()
        for b in (self.solo_btn, self.lock_btn, self.delete_track_btn):
            track_row.addWidget(b)
        lv.addLayout(track_row)
        lv.addWidget(QLabel("Clips"))
        lv.addWidget(self.clips, 1)
        clip_row = QHBoxLayout()
        clip_row.addWidget(self.split_clip_btn)
        clip_row.addWidget(self.delete_clip_btn)
        lv.addLayout(clip_row)
        right = QWidget()
        rv = QVBoxLayout(right)
        rv.setContentsMargins(0, 0, 0, 0)
        rv.addWidget(self.plot, 1)
        row = QHBoxLayout()
        row.addWidget(self.summary, 1)
        row.addWidget(self.time_label)
        rv.addLayout(row)
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(left)
        split.addWidget(right)
        split.setStretchFactor(1, 4)
        split.setSizes([260, 900])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(split)
        self._filling = False
        # track id -> (curve, grid key, lane values): a lane is sampled again only when its
        # curve (the track's cached view) or the time grid changes
        self._lanes: dict[str, tuple[Curve, tuple, np.ndarray]] = {}
        self.doc.changed.connect(self._on_doc_changed)
        self.doc.replaced.connect(self.refresh)
        self.refresh()

    # -- document → view ----------------------------------------------------------------
    def _on_doc_changed(self, paths) -> None:
        if any(p == () or p[:1] == ("timeline",) for p in paths):
            self.refresh()

    @staticmethod
    def _selected_id(widget: QListWidget) -> str | None:
        item = widget.currentItem()
        return item.data(ID_ROLE) if item is not None else None

    @staticmethod
    def _select(widget: QListWidget, wanted: str | None, fallback_row: int) -> None:
        for row in range(widget.count()):
            if widget.item(row).data(ID_ROLE) == wanted:
                widget.setCurrentRow(row)
                return
        widget.setCurrentRow(min(fallback_row, widget.count() - 1))

    def refresh(self) -> None:
        tl = self.doc.project.timeline
        self._filling = True
        track_id, clip_id = self._selected_id(self.tracks), self._selected_id(self.clips)
        row_t, row_c = self.tracks.currentRow(), self.clips.currentRow()
        self.tracks.clear()
        for track in tl.tracks:
            flags = "".join(f" · {word}" for word, on in (("solo", track.solo),
                                                           ("locked", track.locked)) if on)
            item = QListWidgetItem(f"{track.channel}  ({len(track.keys)} keys){flags}")
            item.setData(ID_ROLE, track.id)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(Qt.CheckState.Unchecked if track.muted else Qt.CheckState.Checked)
            self.tracks.addItem(item)
        self.clips.clear()
        for clip in tl.clips:
            text = clip.text.strip().replace("\n", " ")
            label = f"{clip.kind} {clip.start:.2f}–{clip.start + clip.duration:.2f} s"
            item = QListWidgetItem(f"{label}: {text[:40]}" if text else label)
            item.setData(ID_ROLE, clip.id)
            self.clips.addItem(item)
        self._select(self.tracks, track_id, row_t)
        self._select(self.clips, clip_id, row_c)
        self._filling = False
        self._draw()
        self.summary.setText(
            f"{len(tl.tracks)} tracks · {len(tl.clips)} clips · {tl.duration:.2f} s at {tl.fps} fps")
        self._update_buttons()

    def _lane_values(self, track: CurveTrack, t: np.ndarray, grid: tuple) -> np.ndarray:
        curve = curve_of(track)  # cached on the track: no conversion of its keys here
        cached = self._lanes.get(track.id)
        if cached is not None and cached[0] is curve and cached[1] == grid:
            return cached[2]
        values = curve.evaluate(t) if len(curve) else np.zeros_like(t)
        self._lanes[track.id] = (curve, grid, values)
        return values

    def _draw(self) -> None:
        tl = self.doc.project.timeline
        self.plot.clear()
        self.plot.addItem(self.playhead)
        n = len(tl.tracks)
        samples = int(min(MAX_SAMPLES, max(2, tl.duration * SAMPLES_PER_S)))
        grid = (tl.duration, samples)
        t = np.linspace(0.0, tl.duration, samples)
        playing = {tr.id for tr in playing_tracks(tl)}
        ids = {tr.id for tr in tl.tracks}
        self._lanes = {k: v for k, v in self._lanes.items() if k in ids}
        for i, track in enumerate(tl.tracks):
            base = (n - 1 - i) * LANE
            values = self._lane_values(track, t, grid)
            lo, hi = (float(values.min()), float(values.max())) if track.keys else (0.0, 1.0)
            span = hi - lo if hi - lo > 1e-9 else 1.0
            y = base + (values - lo) / span  # each lane shows its curve's own range
            color = pg.intColor(i, hues=max(n, 6)) if track.id in playing else QColor("#8b9099")
            style = Qt.PenStyle.DashLine if track.locked else Qt.PenStyle.SolidLine
            self.plot.plot(t, y, pen=pg.mkPen(color, width=1.5, style=style))
            label = pg.TextItem(track.channel, color="#c4c8cf", anchor=(0, 1))
            label.setPos(0, base)
            self.plot.addItem(label)
        top = n * LANE + 0.2
        for clip in tl.clips:
            x0, x1 = clip.start, clip.start + max(clip.duration, 1e-3)
            bar = pg.LinearRegionItem((x0, x1), movable=False,
                                      brush=pg.mkBrush(CLIP_COLORS.get(clip.kind, "#aaaaaa") + "55"),
                                      pen=pg.mkPen(None))
            bar.setZValue(-10)
            self.plot.addItem(bar)
            text = pg.TextItem((clip.text or clip.kind)[:30], color="#e6e8eb", anchor=(0, 0))
            text.setPos(x0, top + 0.6)
            self.plot.addItem(text)
        self.plot.setXRange(0.0, tl.duration, padding=0.02)
        self.plot.setYRange(-0.2, top + 0.8, padding=0)

    def _current_track(self) -> CurveTrack | None:
        track_id = self._selected_id(self.tracks)
        return next((t for t in self.doc.project.timeline.tracks if t.id == track_id), None)

    def _update_buttons(self) -> None:
        track = self._current_track()
        for b in (self.solo_btn, self.lock_btn, self.delete_track_btn):
            b.setEnabled(track is not None)
        self.solo_btn.setChecked(bool(track and track.solo))
        self.lock_btn.setChecked(bool(track and track.locked))
        self.delete_track_btn.setEnabled(track is not None and not track.locked)
        has_clip = self.clips.currentRow() >= 0
        self.delete_clip_btn.setEnabled(has_clip)
        self.split_clip_btn.setEnabled(has_clip)

    @property
    def playhead_time(self) -> float:
        return max(0.0, float(self.playhead.value()))

    def _on_playhead(self) -> None:
        self.time_label.setText(f"{self.playhead_time:.2f} s")

    # -- edits ---------------------------------------------------------------------------
    def _push(self, cmd: Command) -> None:
        try:
            self.doc.push(cmd)
        except StudioError as exc:
            self.ctx.report_error("Timeline edit refused", str(exc))
            self.refresh()
        self.doc.history.close_merge()

    def _on_item_changed(self, item: QListWidgetItem) -> None:
        if self._filling:
            return
        muted = item.checkState() != Qt.CheckState.Checked
        self._push(mute_track(item.data(ID_ROLE), muted))

    def toggle_solo(self) -> None:
        track = self._current_track()
        if track is not None:
            self._push(solo_track(track.id, not track.solo))

    def toggle_lock(self) -> None:
        track = self._current_track()
        if track is not None:
            self._push(lock_track(track.id, not track.locked))

    def delete_selected_track(self) -> None:
        track = self._current_track()
        if track is not None:
            self._push(DeleteTrack(track.id))

    def delete_selected_clip(self) -> None:
        clip_id = self._selected_id(self.clips)
        if clip_id is not None:
            self._push(DeleteClip(clip_id))

    def split_selected_clip(self) -> None:
        clip_id = self._selected_id(self.clips)
        if clip_id is not None:
            self._push(SplitClip(clip_id, self.playhead_time))
