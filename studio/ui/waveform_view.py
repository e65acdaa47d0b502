"""A waveform plot of speech with its phonemes and words, and a playhead.

The audio is drawn as a min/max envelope of the visible time range with at most
``MAX_BUCKETS`` buckets (a few thousand points however long the speech; zooming in with
the mouse wheel recomputes it, down to single samples). Below the waveform a lane holds
the phonemes (alternately shaded spans, the symbol at each start); above it a lane holds
the words. Each lane is one graphics item that paints only what is in view and only the
labels that fit side by side, so thousands of phonemes stay cheap.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFont, QFontMetricsF, QPainter, QPen, QTransform
from PySide6.QtWidgets import QVBoxLayout, QWidget

from studio.voice.types import Phone, Word

MAX_BUCKETS = 2000
BG = "#16171a"
WAVE = "#4f9dff"
TEXT = "#c4c8cf"
WORD_TEXT = "#e6e8eb"
DIM = "#8b9099"
TICK = "#3a3d43"
PLAYHEAD = "#ffb454"
SILENT = {"_", "SIL", "sil", ""}

# y layout (data units): words above, waveform in [-1, 1], phonemes below
WORD_LANE = (1.08, 1.42)
PHONE_LANE = (-1.45, -1.08)


def envelope(audio: np.ndarray, sample_rate: int, buckets: int = MAX_BUCKETS,
             first: int = 0, last: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(t, y) of a min/max envelope of ``audio[first:last]``: at most ``2 * buckets``
    points (the samples themselves when there are few enough)."""
    audio = np.asarray(audio, dtype=np.float32).reshape(-1)
    last = len(audio) if last is None else min(last, len(audio))
    first = max(0, min(first, last))
    part = audio[first:last]
    n = len(part)
    if n == 0:
        return np.zeros(0), np.zeros(0)
    rate = float(sample_rate)
    if n <= 2 * buckets:
        return (first + np.arange(n)) / rate, part.astype(np.float64)
    size = int(np.ceil(n / buckets))
    count = n // size
    body = part[: count * size].reshape(count, size)
    lo, hi = body.min(axis=1), body.max(axis=1)
    starts = np.arange(count) * size
    if count * size < n:  # the short last bucket
        tail = part[count * size:]
        lo, hi = np.append(lo, tail.min()), np.append(hi, tail.max())
        starts = np.append(starts, count * size)
    t = np.repeat((first + starts) / rate, 2)
    t[1::2] += (size - 1) / rate / 2
    t[-1] = (first + n - 1) / rate  # the envelope reaches the last sample
    y = np.empty(2 * len(lo))
    y[0::2], y[1::2] = lo, hi
    return t, y


class LabelLane(pg.GraphicsObject):
    """Spans with a label at each start, painted in one item (only what is in view)."""

    def __init__(self, lane: tuple[float, float], font: QFont, color: str,
                 shade: bool, ticks: bool) -> None:
        super().__init__()
        self.lo, self.hi = lane
        self.font = font
        self.metrics = QFontMetricsF(font)
        self.color = QColor(color)
        self.shade = shade
        self.ticks = ticks
        self.shades = (QColor("#2a2e36"), QColor("#20242a"))
        self.min_width = self.metrics.horizontalAdvance("M…") + 5  # an elided label
        self.set_spans([], [], [])
        self._layout_key: tuple | None = None
        self._shown: list[int] = []
        self._display: dict[int, str] = {}  # index -> the text drawn (elided to fit)

    def set_spans(self, starts: Sequence[float], ends: Sequence[float],
                  texts: Sequence[str]) -> None:
        self.prepareGeometryChange()
        self.starts = np.asarray(starts, dtype=np.float64)
        self.ends = np.asarray(ends, dtype=np.float64)
        self.texts = list(texts)
        self.widths = np.array([self.metrics.horizontalAdvance(t) + 5 for t in self.texts])
        self.extent = float(self.ends.max()) if len(self.ends) else 0.0
        self._layout_key = None
        self.update()

    def boundingRect(self) -> QRectF:  # noqa: N802 - Qt API
        return QRectF(0.0, self.lo, max(self.extent, 1e-3), self.hi - self.lo)

    def visible_range(self) -> tuple[int, int]:
        vb = self.getViewBox()
        if vb is None or not len(self.starts):
            return 0, 0
        x0, x1 = vb.viewRange()[0]
        return (int(np.searchsorted(self.ends, x0, side="left")),
                int(np.searchsorted(self.starts, x1, side="right")))

    def shown(self, transform: QTransform | None = None) -> list[int]:
        """Indices of the labels drawn at the current zoom: left to right, each one in the
        room up to the next label, elided ("wor…") when it is wider than that; only a label
        without room for a letter and the ellipsis is left out."""
        if transform is None:
            view = self.getViewWidget()
            if view is None:
                return []
            transform = self.deviceTransform(view.viewportTransform())  # item → pixels
        i0, i1 = self.visible_range()
        key = (i0, i1, round(transform.m11(), 6), round(transform.m31(), 3))
        if key != self._layout_key:
            end = min(i1 + 1, len(self.starts))  # the first label after the view bounds room
            xs = self.starts[i0:end] * transform.m11() + transform.m31()
            labelled = [k for k in range(len(xs)) if self.texts[i0 + k]]  # silences: none
            shown, display, free_from = [], {}, -np.inf
            for n, k in enumerate(labelled):
                i, x = i0 + k, xs[k]
                if i >= i1 or x < free_from:
                    continue
                room = xs[labelled[n + 1]] - x if n + 1 < len(labelled) else np.inf
                if self.widths[i] <= room:
                    text, used = self.texts[i], self.widths[i]
                elif room >= self.min_width:
                    text = self.metrics.elidedText(self.texts[i], Qt.TextElideMode.ElideRight,
                                                   room - 5)
                    used = room
                else:
                    continue
                shown.append(i)
                display[i] = text
                free_from = x + used
            self._layout_key, self._shown, self._display = key, shown, display
        return self._shown

    def shown_texts(self, transform: QTransform | None = None) -> list[str]:
        """The label texts as drawn (elided ones end in "…")."""
        return [self._display[i] for i in self.shown(transform)]

    def paint(self, painter: QPainter, *args) -> None:
        i0, i1 = self.visible_range()
        if i1 <= i0:
            return
        if self.shade:
            for i in range(i0, i1):
                if self.texts[i]:
                    painter.fillRect(QRectF(self.starts[i], self.lo,
                                            self.ends[i] - self.starts[i], self.hi - self.lo),
                                     self.shades[i % 2])
        transform = painter.transform()
        shown = self.shown(transform)
        painter.save()
        painter.setTransform(QTransform())
        painter.setFont(self.font)
        mid = transform.map(QPointF(0.0, (self.lo + self.hi) / 2)).y()
        top = transform.map(QPointF(0.0, self.hi)).y()
        bottom = transform.map(QPointF(0.0, self.lo)).y()
        baseline = mid + (self.metrics.ascent() - self.metrics.descent()) / 2
        for i in shown:
            x = self.starts[i] * transform.m11() + transform.m31()
            if self.ticks:
                painter.setPen(QPen(QColor(TICK)))
                painter.drawLine(QPointF(x, top), QPointF(x, bottom))
            painter.setPen(QPen(self.color))
            painter.drawText(QPointF(x + 3, baseline), self._display.get(i, self.texts[i]))
        painter.restore()


class WaveformView(QWidget):
    """Shows one piece of speech. ``clicked(t)`` fires when the user clicks a time."""

    clicked = Signal(float)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.plot = pg.PlotWidget(background=BG)
        self.plot.setObjectName("waveformPlot")
        self.plot.setMinimumHeight(110)
        self.plot.setMenuEnabled(False)
        self.plot.hideButtons()
        self.plot.setToolTip("Mouse wheel: zoom · drag: scroll · click: play from there")
        item = self.plot.getPlotItem()
        item.hideAxis("left")
        bottom = item.getAxis("bottom")
        bottom.setPen(pg.mkPen(DIM))
        bottom.setTextPen(pg.mkPen(DIM))
        bottom.setHeight(22)
        self.viewbox = item.getViewBox()
        self.viewbox.setMouseEnabled(x=True, y=False)
        self.viewbox.setYRange(PHONE_LANE[0], WORD_LANE[1], padding=0.02)
        self.curve = pg.PlotDataItem(pen=pg.mkPen(WAVE, width=1))
        self.plot.addItem(self.curve)
        self.plot.addItem(pg.InfiniteLine(pos=0.0, angle=0, pen=pg.mkPen("#2a2d33")))
        phone_font = QFont()
        phone_font.setPointSizeF(8.5)
        word_font = QFont()
        word_font.setPointSizeF(9)
        word_font.setBold(True)
        self.phone_lane = LabelLane(PHONE_LANE, phone_font, TEXT, shade=True, ticks=False)
        self.word_lane = LabelLane(WORD_LANE, word_font, WORD_TEXT, shade=False, ticks=True)
        for lane in (self.phone_lane, self.word_lane):
            lane.setZValue(-5)
            self.plot.addItem(lane)
        self.playhead = pg.InfiniteLine(pos=0.0, angle=90, pen=pg.mkPen(PLAYHEAD, width=2))
        self.playhead.setZValue(20)
        self.playhead.hide()
        self.plot.addItem(self.playhead)
        self.placeholder = pg.TextItem("Type some text and press Speak", color=DIM,
                                       anchor=(0.5, 0.5))
        self.plot.addItem(self.placeholder)
        self.placeholder.setPos(0.5, 0.0)
        self.viewbox.setXRange(0.0, 1.0, padding=0.0)
        self.audio = np.zeros(0, dtype=np.float32)
        self.duration = 0.0
        self.sample_rate = 0
        self.samples = 0
        self._env_range: tuple[int, int] | None = None
        self.plot.scene().sigMouseClicked.connect(self._on_click)
        self.viewbox.sigXRangeChanged.connect(self._update_envelope)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.plot)

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt API
        return QSize(320, 170)

    # -- content -----------------------------------------------------------------------
    def clear(self) -> None:
        self.audio = np.zeros(0, dtype=np.float32)
        self.duration = 0.0
        self.samples = 0
        self._env_range = None
        self.curve.setData([], [])
        self.phone_lane.set_spans([], [], [])
        self.word_lane.set_spans([], [], [])
        self.playhead.hide()
        self.placeholder.show()
        self.viewbox.setLimits(xMin=None, xMax=None)
        self.viewbox.setXRange(0.0, 1.0, padding=0.0)

    def set_speech(self, audio: np.ndarray, sample_rate: int, phonemes: Sequence[Phone] = (),
                   words: Sequence[Word] = ()) -> None:
        """Show audio (float mono) with its phoneme and word timings."""
        self.placeholder.hide()
        self.audio = np.asarray(audio, dtype=np.float32).reshape(-1)
        self.samples = len(self.audio)
        self.sample_rate = int(sample_rate)
        self.duration = self.samples / float(sample_rate) if sample_rate else 0.0
        phones = [p for p in phonemes if p.end > p.start]
        self.phone_lane.set_spans([p.start for p in phones], [p.end for p in phones],
                                  ["" if p.phoneme in SILENT else p.phoneme for p in phones])
        self.word_lane.set_spans([w.start for w in words], [w.end for w in words],
                                 [w.word for w in words])
        end = max(self.duration, 0.01)
        self._env_range = None
        self.viewbox.setLimits(xMin=0.0, xMax=end, minXRange=min(0.02, end))
        self.viewbox.setXRange(0.0, end, padding=0.0)
        self._update_envelope()
        self.set_playhead(0.0)

    @property
    def phonemes_shown(self) -> list[str]:
        """The phoneme symbols in the lane (silences left out)."""
        return [t for t in self.phone_lane.texts if t]

    @property
    def words_shown(self) -> list[str]:
        return list(self.word_lane.texts)

    def _update_envelope(self, *args) -> None:
        if not self.samples:
            return
        x0, x1 = self.viewbox.viewRange()[0]
        first = max(0, int(np.floor(x0 * self.sample_rate)) - 1)
        last = min(self.samples, int(np.ceil(x1 * self.sample_rate)) + 2)
        if (first, last) == self._env_range:
            return
        self._env_range = (first, last)
        t, y = envelope(self.audio, self.sample_rate, MAX_BUCKETS, first, last)
        self.curve.setData(t, y)

    # -- playhead ----------------------------------------------------------------------
    def set_playhead(self, seconds: float) -> None:
        if self.duration <= 0:
            self.playhead.hide()
            return
        self.playhead.setValue(min(max(seconds, 0.0), self.duration))
        self.playhead.show()

    @property
    def playhead_position(self) -> float:
        return float(self.playhead.value())

    def _on_click(self, event) -> None:
        if self.duration <= 0 or event.button() != Qt.MouseButton.LeftButton:
            return
        point = self.viewbox.mapSceneToView(event.scenePos())
        t = float(point.x())
        if 0.0 <= t <= self.duration:
            self.clicked.emit(t)
