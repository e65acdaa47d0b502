"""The Face panel's controls: a slider per control of the loaded model, grouped, with a
search box, a reset per slider, a pin for the controls the timeline animates, and
*Randomise identity* (a new face within limits, expression and pose kept).

Values live in the project (``avatar.controls``): a slider drag is one undo step (the edits
of one gesture merge), a reset removes the value (the control's neutral). A pin is a
timeline track for the control's channel: pinning adds the track, unpinning deletes it,
both undoable. The box follows the document, so undo and redo move the sliders back.
"""

from __future__ import annotations

import itertools
import random

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QDoubleSpinBox,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSlider,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from studio.core.document import Document
from studio.core.errors import StudioError
from studio.face.controls import Control, ControlSet
from studio.timeline.commands import AddTrack, DeleteTrack

STEPS = 1000  # slider units over a control's range
SEED_MAX = 2**31 - 1


def _value_of(c: Control, step: int) -> float:
    return float(c.low + (c.high - c.low) * step / STEPS)


def _step_of(c: Control, value: float) -> int:
    t = (float(value) - c.low) / (c.high - c.low)
    return int(round(min(max(t, 0.0), 1.0) * STEPS))


class ControlRow:
    """The widgets of one control: name, slider, value, reset, pin."""

    def __init__(self, box: ControlsBox, control: Control, grid: QGridLayout, row: int) -> None:
        self.box = box
        self.control = control
        c = control
        self.label = QLabel(c.title)
        tip = c.description or c.name
        if c.measured.get("correlation") is not None:
            tip += f"\nmeasured correlation {float(c.measured['correlation']):.2f}"
        self.label.setToolTip(tip)
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setObjectName(f"control:{c.name}")
        self.slider.setRange(0, STEPS)
        self.slider.setPageStep(STEPS // 10)
        self.slider.setToolTip(f"{c.title}: {c.low:g} to {c.high:g}, neutral {c.neutral:g}")
        self.value = QLabel()
        self.value.setMinimumWidth(40)
        self.reset = QToolButton()
        self.reset.setText("↺")
        self.reset.setToolTip(f"Reset {c.title} to neutral")
        self.pin = QToolButton()
        self.pin.setText("📌")
        self.pin.setCheckable(True)
        self.pin.setObjectName(f"pin:{c.name}")
        self.pin.setToolTip("Pin: animate this control on the timeline (adds its track)")
        self.widgets = (self.label, self.slider, self.value, self.reset, self.pin)
        for col, w in enumerate(self.widgets):
            grid.addWidget(w, row, col)
        self._key = None
        self.slider.sliderPressed.connect(self._pressed)
        self.slider.sliderReleased.connect(self._released)
        self.slider.valueChanged.connect(self._moved)
        self.reset.clicked.connect(lambda: box.set_value(c.name, None, f"Reset {c.title}"))
        self.pin.toggled.connect(lambda on: box.set_pinned(c.name, on))

    def _pressed(self) -> None:
        self._key = ("control-drag", self.control.name, next(self.box.gestures))

    def _released(self) -> None:
        self._key = None
        self.box.doc.history.close_merge()

    def _moved(self, step: int) -> None:
        value = _value_of(self.control, step)
        self.value.setText(f"{value:+.2f}")
        if self.box.syncing:
            return
        if step == _step_of(self.control, self.control.neutral):
            value = None  # back at neutral: no value stored
        self.box.set_value(self.control.name, value, f"Change {self.control.title}", self._key)

    def show_value(self, value: float | None, pinned: bool) -> None:
        v = self.control.neutral if value is None else value
        self.slider.setValue(_step_of(self.control, v))
        self.value.setText(f"{v:+.2f}")
        self.pin.setChecked(pinned)

    def matches(self, text: str) -> bool:
        c = self.control
        return not text or any(text in s.lower() for s in (c.name, c.title, c.group))

    def set_visible(self, on: bool) -> None:
        for w in self.widgets:
            w.setVisible(on)


class ControlsBox(QWidget):
    """Sliders for the controls of the loaded model (see the module docstring)."""

    def __init__(self, doc: Document, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.doc = doc
        self.gestures = itertools.count()
        self.syncing = False
        self.rows: dict[str, ControlRow] = {}
        self.groups: dict[str, QGroupBox] = {}
        self.controls = ControlSet()
        self.on_problem = lambda text: None  # the panel shows problems
        self.search = QLineEdit()
        self.search.setObjectName("controlSearch")
        self.search.setPlaceholderText("Search controls")
        self.search.setClearButtonEnabled(True)
        self.search.textChanged.connect(self._filter)
        self.reset_all = QPushButton("Reset all")
        self.reset_all.setToolTip("Every control back to neutral (one undo step)")
        self.reset_all.clicked.connect(self.reset_every)
        self.rand_identity = QPushButton("Randomise identity")
        self.rand_identity.setToolTip("A new face (seed and identity controls) with the "
                                      "same expression and pose")
        self.rand_identity.clicked.connect(lambda: self.randomise_identity())
        self.rand_limit = QDoubleSpinBox()
        self.rand_limit.setRange(0.0, 1.0)
        self.rand_limit.setSingleStep(0.1)
        self.rand_limit.setValue(0.5)
        self.rand_limit.setToolTip("How far identity controls may go: a share of each range")
        self.empty = QLabel("This model has no controls yet. Find some with "
                            "`studio controls discover`.")
        self.empty.setObjectName("hint")
        self.empty.setWordWrap(True)
        top = QHBoxLayout()
        top.addWidget(self.search, 1)
        top.addWidget(self.reset_all)
        rand = QHBoxLayout()
        rand.addWidget(self.rand_identity)
        rand.addWidget(QLabel("within"))
        rand.addWidget(self.rand_limit)
        rand.addStretch(1)
        self.body = QVBoxLayout()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(top)
        layout.addLayout(rand)
        layout.addWidget(self.empty)
        layout.addLayout(self.body)
        doc.changed.connect(self._on_doc_changed)
        doc.replaced.connect(self.sync)

    # -- the model's controls -------------------------------------------------------------
    def set_controls(self, controls: ControlSet) -> None:
        """Show sliders for these controls (a model was loaded)."""
        self.controls = controls
        for box in self.groups.values():
            self.body.removeWidget(box)
            box.deleteLater()
        self.rows.clear()
        self.groups.clear()
        for group, items in controls.by_group().items():
            if not items:
                continue
            box = QGroupBox(group)
            box.setObjectName(f"controlGroup:{group}")
            grid = QGridLayout(box)
            grid.setColumnStretch(1, 1)
            for i, c in enumerate(items):
                self.rows[c.name] = ControlRow(self, c, grid, i)
            self.body.addWidget(box)
            self.groups[group] = box
        self.empty.setVisible(not self.rows)
        self.sync()
        self._filter(self.search.text())

    def _filter(self, text: str) -> None:
        text = text.strip().lower()
        for group, box in self.groups.items():
            shown = 0
            for row in self.rows.values():
                if row.control.group == group:
                    ok = row.matches(text)
                    row.set_visible(ok)
                    shown += ok
            box.setVisible(shown > 0)

    # -- document → sliders -----------------------------------------------------------------
    def _on_doc_changed(self, paths) -> None:
        if any(p == () or p[:2] == ("avatar", "controls") or p[:1] == ("timeline",)
               for p in paths):
            self.sync()

    def pinned(self) -> set[str]:
        return {t.channel for t in self.doc.project.timeline.tracks}

    def sync(self) -> None:
        values = self.doc.project.avatar.controls
        pins = self.pinned()
        self.syncing = True
        try:
            for name, row in self.rows.items():
                row.show_value(values.get(name), name in pins)
        finally:
            self.syncing = False

    # -- edits ------------------------------------------------------------------------------
    def set_value(self, name: str, value: float | None, label: str, merge_key=None) -> None:
        try:
            self.doc.set(("avatar", "controls", name), value, label, merge_key)
        except StudioError as exc:
            self.on_problem(str(exc))

    def set_pinned(self, name: str, on: bool) -> None:
        if self.syncing:
            return
        track = next((t for t in self.doc.project.timeline.tracks if t.channel == name), None)
        try:
            if on and track is None:
                self.doc.push(AddTrack(name, label=f"Pin {name} to the timeline"))
            elif not on and track is not None:
                self.doc.push(DeleteTrack(track.id, label=f"Unpin {name}"))
        except StudioError as exc:
            self.on_problem(str(exc))
            self.sync()

    def reset_every(self) -> None:
        values = {("avatar", "controls", n): None for n in self.doc.project.avatar.controls}
        if values:
            self.doc.set_many(values, "Reset all controls")

    def randomise_identity(self, rng: random.Random | None = None) -> None:
        """A new seed (unless locked) and Identity controls drawn within ``rand_limit`` of
        their ranges around neutral; Expression, Pose and Style values are kept. One undo
        step."""
        rng = rng or random.SystemRandom()
        avatar = self.doc.project.avatar
        share = float(self.rand_limit.value())
        values: dict[tuple, object] = {}
        if "seed" not in avatar.locks and avatar.latent is None:
            values[("avatar", "seed")] = rng.randrange(0, SEED_MAX)
        for c in self.controls:
            if c.group == "Identity" and c.name not in avatar.locks:
                lo = c.neutral + (c.low - c.neutral) * share
                hi = c.neutral + (c.high - c.neutral) * share
                values[("avatar", "controls", c.name)] = rng.uniform(lo, hi)
        if values:
            self.doc.set_many(values, "Randomise identity")
