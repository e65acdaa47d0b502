"""The curve editor: one control's curve (pyqtgraph), its keys, and the interpolation and
tangents of the selected keys.

Interpolation (step / linear / smooth / Bezier) applies to the selected keys of the shown
track; a single selected Bezier key shows its arriving and leaving slopes (value per
second), editable, with "Auto" to go back to the automatic tangent. Every change is a
:class:`~studio.timeline.SetKeyShape` edit.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from studio.timeline import SetKeyShape, curve_of

INTERPS = (("Step", "step"), ("Linear", "linear"), ("Smooth", "smooth"), ("Bezier", "bezier"))
SAMPLES = 600


class CurveEditor(QWidget):
    def __init__(self, panel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.panel = panel
        self.title = QLabel("Curve: click a track's name or a key")
        self.plot = pg.PlotWidget(background="#16171a")
        self.plot.setObjectName("curveEditorPlot")
        self.plot.setMenuEnabled(False)
        self.plot.showGrid(x=True, y=True, alpha=0.15)
        self.line = self.plot.plot([], [], pen=pg.mkPen("#4f9dff", width=1.5))
        self.points = pg.ScatterPlotItem(size=9, symbol="d")
        self.plot.addItem(self.points)
        self.interp = QComboBox()
        self.interp.setObjectName("keyInterp")
        for text, name in INTERPS:
            self.interp.addItem(text, name)
        self.interp.activated.connect(self._set_interp)
        self.tan_in, self.tan_out = QDoubleSpinBox(), QDoubleSpinBox()
        for box, name in ((self.tan_in, "tan_in"), (self.tan_out, "tan_out")):
            box.setRange(-1000.0, 1000.0)
            box.setDecimals(3)
            box.setSingleStep(0.1)
            box.setKeyboardTracking(False)
            box.valueChanged.connect(lambda value, n=name: self._set_tangent(n, value))
        self.auto_btn = QPushButton("Auto tangents")
        self.auto_btn.clicked.connect(self._auto)
        row = QHBoxLayout()
        row.addWidget(QLabel("Interpolation"))
        row.addWidget(self.interp)
        row.addWidget(QLabel("In"))
        row.addWidget(self.tan_in)
        row.addWidget(QLabel("Out"))
        row.addWidget(self.tan_out)
        row.addWidget(self.auto_btn)
        row.addStretch(1)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.title)
        lay.addWidget(self.plot, 1)
        lay.addLayout(row)
        self._filling = False
        self._shown = None  # (track keys tuple, selection) last drawn
        self.refresh()

    def _track(self):
        tid = self.panel.lanes.current_track
        if tid is None:
            return None
        return next((t for t in self.panel.doc.project.timeline.tracks if t.id == tid), None)

    def selected_keys(self) -> list[int]:
        track = self._track()
        if track is None:
            return []
        return sorted(kid for tid, kid in self.panel.lanes.selection if tid == track.id)

    def refresh(self) -> None:
        track = self._track()
        sel = self.selected_keys()
        state = (track.keys if track else None, track.id if track else None, tuple(sel))
        if state == self._shown:
            return
        self._shown = state
        self._filling = True
        if track is None or not track.keys:
            self.line.setData([], [])
            self.points.setData([], [])
            self.title.setText("Curve: click a track's name or a key" if track is None
                               else f"Curve: {track.channel} (no keys)")
        else:
            curve = curve_of(track)
            tl = self.panel.doc.project.timeline
            t = np.linspace(0.0, max(tl.duration, curve.end), SAMPLES)
            self.line.setData(t, curve.evaluate(t))
            brushes = [pg.mkBrush("#ffb454" if k.id in sel else "#e6e8eb") for k in track.keys]
            self.points.setData(curve.times, curve.values, brush=brushes)
            self.title.setText(f"Curve: {track.channel} · {len(sel)} of {len(track.keys)} "
                               "keys selected")
        keys = [k for k in (track.keys if track else ()) if k.id in sel]
        editable = bool(keys) and not track.locked
        self.interp.setEnabled(editable)
        if keys:
            self.interp.setCurrentIndex([n for _, n in INTERPS].index(keys[0].interp))
        one_bezier = editable and len(keys) == 1 and keys[0].interp == "bezier"
        for box, name in ((self.tan_in, "tan_in"), (self.tan_out, "tan_out")):
            box.setEnabled(one_bezier)
            if one_bezier:
                value = getattr(keys[0], name)
                if value is None:
                    value = curve_of(track).auto_tangent(track.key_index(keys[0].id))
                box.setValue(float(value))
        self.auto_btn.setEnabled(one_bezier)
        self._filling = False

    def _refs(self) -> list[tuple[str, int]]:
        track = self._track()
        return [(track.id, kid) for kid in self.selected_keys()] if track else []

    def _set_interp(self, index: int) -> None:
        refs = self._refs()
        if refs and not self._filling:
            self.panel.push(SetKeyShape(refs, interp=self.interp.itemData(index)))

    def _set_tangent(self, name: str, value: float) -> None:
        refs = self._refs()
        if refs and not self._filling:
            self.panel.push(SetKeyShape(refs, **{name: round(float(value), 6)}))

    def _auto(self) -> None:
        refs = self._refs()
        if refs:
            self.panel.push(SetKeyShape(refs, tan_in=None, tan_out=None,
                                        label="Auto tangents"))
