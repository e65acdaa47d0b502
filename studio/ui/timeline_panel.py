"""The Timeline panel: the project's curve tracks and clips over time.

Shows every curve track as a lane (evaluated with the same interpolation the renderer
uses), speech and audio clips as labelled bars, and a draggable playhead. Tracks can be
muted or deleted and clips deleted — each an undoable edit. Keyframe editing and live
playback of the animation come with the timeline editor.
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

from studio.animate.curves import evaluate_curve
from studio.ui.context import StudioContext

LANE = 1.2  # vertical spacing of lanes in data units (a curve spans about 0..1)
CLIP_COLORS = {"speech": "#4f9dff", "audio": "#5bc98a"}
SAMPLES_PER_S = 50


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
        self.delete_track_btn = QPushButton("Delete track")
        self.delete_clip_btn = QPushButton("Delete clip")
        self.delete_track_btn.clicked.connect(self.delete_selected_track)
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
        lv.addWidget(self.delete_track_btn)
        lv.addWidget(QLabel("Clips"))
        lv.addWidget(self.clips, 1)
        lv.addWidget(self.delete_clip_btn)
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
        split.setSizes([220, 900])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(split)
        self._filling = False
        self.doc.changed.connect(self._on_doc_changed)
        self.doc.replaced.connect(self.refresh)
        self.refresh()

    # -- document → view ----------------------------------------------------------------
    def _on_doc_changed(self, paths) -> None:
        if any(p == () or p[:1] == ("timeline",) for p in paths):
            self.refresh()

    def refresh(self) -> None:
        tl = self.doc.project.timeline
        self._filling = True
        row_t, row_c = self.tracks.currentRow(), self.clips.currentRow()
        self.tracks.clear()
        for track in tl.tracks:
            item = QListWidgetItem(f"{track.channel}  ({len(track.keys)} keys)")
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(Qt.CheckState.Unchecked if track.muted else Qt.CheckState.Checked)
            self.tracks.addItem(item)
        self.clips.clear()
        for clip in tl.clips:
            text = clip.text.strip().replace("\n", " ")
            label = f"{clip.kind} {clip.start:.2f}–{clip.start + clip.duration:.2f} s"
            self.clips.addItem(f"{label}: {text[:40]}" if text else label)
        self.tracks.setCurrentRow(min(row_t, self.tracks.count() - 1))
        self.clips.setCurrentRow(min(row_c, self.clips.count() - 1))
        self._filling = False
        self._draw()
        self.summary.setText(
            f"{len(tl.tracks)} tracks · {len(tl.clips)} clips · {tl.duration:.2f} s at {tl.fps} fps")
        self._update_buttons()

    def _draw(self) -> None:
        tl = self.doc.project.timeline
        self.plot.clear()
        self.plot.addItem(self.playhead)
        n = len(tl.tracks)
        t = np.linspace(0.0, tl.duration, max(2, int(tl.duration * SAMPLES_PER_S)))
        for i, track in enumerate(tl.tracks):
            base = (n - 1 - i) * LANE
            keys = [k.model_dump() for k in track.keys]
            values = evaluate_curve(keys, t) if keys else np.zeros_like(t)
            lo, hi = (float(values.min()), float(values.max())) if keys else (0.0, 1.0)
            span = hi - lo if hi - lo > 1e-9 else 1.0
            y = base + (values - lo) / span  # each lane shows its curve's own range
            color = QColor("#8b9099") if track.muted else pg.intColor(i, hues=max(n, 6))
            self.plot.plot(t, y, pen=pg.mkPen(color, width=1.5))
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

    def _update_buttons(self) -> None:
        self.delete_track_btn.setEnabled(self.tracks.currentRow() >= 0)
        self.delete_clip_btn.setEnabled(self.clips.currentRow() >= 0)

    def _on_playhead(self) -> None:
        t = max(0.0, float(self.playhead.value()))
        self.time_label.setText(f"{t:.2f} s")

    # -- edits ---------------------------------------------------------------------------
    def _on_item_changed(self, item: QListWidgetItem) -> None:
        if self._filling:
            return
        i = self.tracks.row(item)
        muted = item.checkState() != Qt.CheckState.Checked
        channel = self.doc.project.timeline.tracks[i].channel
        self.doc.set(("timeline", "tracks", i, "muted"), muted,
                     f"{'Mute' if muted else 'Unmute'} {channel}")

    def delete_selected_track(self) -> None:
        i = self.tracks.currentRow()
        tracks = self.doc.get(("timeline", "tracks"))
        if 0 <= i < len(tracks):
            channel = tracks[i].channel
            del tracks[i]
            self.doc.set(("timeline", "tracks"), tracks, f"Delete track {channel}")

    def delete_selected_clip(self) -> None:
        i = self.clips.currentRow()
        clips = self.doc.get(("timeline", "clips"))
        if 0 <= i < len(clips):
            del clips[i]
            self.doc.set(("timeline", "clips"), clips, "Delete clip")
