"""Sliders for how a voice speaks: rate, pitch, formant, expressiveness, volume, pauses.

The box only shows values and reports edits (``edited(name, value, dragging)``); the
Voice panel writes them to the document, merging a drag into one undo step.
Slider ranges are what the speech engines accept (:data:`studio.voice.settings.LIMITS`).
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import QSignalBlocker, Qt, Signal
from PySide6.QtGui import QFont
from PySide6.QtWidgets import QGridLayout, QGroupBox, QLabel, QPushButton, QSlider, QWidget

from studio.voice.settings import LIMITS


@dataclass(frozen=True)
class SliderSpec:
    name: str
    label: str
    lo: float
    hi: float
    step: float
    fmt: str
    tip: str

    @property
    def steps(self) -> int:
        return int(round((self.hi - self.lo) / self.step))

    def to_int(self, value: float) -> int:
        return int(round((min(max(value, self.lo), self.hi) - self.lo) / self.step))

    def to_value(self, index: int) -> float:
        return round(self.lo + index * self.step, 6)

    def text(self, value: float) -> str:
        return self.fmt.format(value)


def _spec(name: str, label: str, step: float, fmt: str, tip: str) -> SliderSpec:
    lo, hi, _ = LIMITS[name]
    return SliderSpec(name, label, lo, hi, step, fmt, tip)


SLIDERS = [
    _spec("rate", "Rate", 0.05, "{:.2f}×", "Speaking speed: 1 is the voice's natural speed."),
    _spec("pitch", "Pitch", 0.5, "{:+.1f} st", "Pitch shift in semitones (timing is kept)."),
    _spec("formant", "Formant", 0.25, "{:+.2f} st",
          "Timbre (formant shift) in semitones: + smaller/brighter, − larger/darker."),
    _spec("expressiveness", "Expressive", 0.05, "{:.2f}",
          "Prosody variation: 1 is the voice's default, 0 is flat."),
    _spec("volume", "Volume", 0.05, "{:.2f}×", "Loudness: 1 peaks at −1 dBFS."),
    _spec("sentence_pause", "Pause", 0.05, "{:.2f} s",
          "Extra silence between sentences, in seconds."),
]


class DeliveryBox(QGroupBox):
    edited = Signal(str, float, bool)  # name, value, the handle is being dragged
    released = Signal()  # a drag ended
    reset_clicked = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Delivery", parent)
        grid = QGridLayout(self)
        grid.setContentsMargins(8, 6, 8, 6)
        grid.setHorizontalSpacing(8)
        grid.setVerticalSpacing(3)
        self.sliders: dict[str, QSlider] = {}
        self.value_labels: dict[str, QLabel] = {}
        self.specs = {s.name: s for s in SLIDERS}
        mono = QFont("monospace")
        mono.setStyleHint(QFont.StyleHint.TypeWriter)
        for row, spec in enumerate(SLIDERS):
            name = QLabel(spec.label)
            name.setToolTip(spec.tip)
            slider = QSlider(Qt.Orientation.Horizontal)
            slider.setObjectName(f"slider_{spec.name}")
            slider.setRange(0, spec.steps)
            slider.setSingleStep(1)
            slider.setPageStep(max(1, spec.steps // 10))
            slider.setToolTip(spec.tip)
            slider.valueChanged.connect(lambda i, s=spec: self._on_value(s, i))
            slider.sliderReleased.connect(self.released)
            value = QLabel(spec.text(spec.lo))
            value.setObjectName(f"value_{spec.name}")
            value.setFont(mono)
            value.setMinimumWidth(62)
            value.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            grid.addWidget(name, row, 0)
            grid.addWidget(slider, row, 1)
            grid.addWidget(value, row, 2)
            self.sliders[spec.name] = slider
            self.value_labels[spec.name] = value
        grid.setColumnStretch(1, 1)
        self.reset_btn = QPushButton("Reset")
        self.reset_btn.setObjectName("resetVoiceButton")
        self.reset_btn.setToolTip("Put every delivery setting back to its default "
                                  "(one undo step).")
        self.reset_btn.clicked.connect(self.reset_clicked)
        grid.addWidget(self.reset_btn, len(SLIDERS), 2)

    def _on_value(self, spec: SliderSpec, index: int) -> None:
        value = spec.to_value(index)
        self.value_labels[spec.name].setText(spec.text(value))
        self.edited.emit(spec.name, value, self.sliders[spec.name].isSliderDown())

    def show_values(self, values: dict[str, float]) -> None:
        """Show these values (no ``edited`` signal). Values outside what the engines take
        are marked with "!" and explained in the label's tooltip."""
        for name, value in values.items():
            spec = self.specs[name]
            slider = self.sliders[name]
            with QSignalBlocker(slider):
                if spec.to_value(slider.value()) != value:
                    slider.setValue(spec.to_int(value))
            label = self.value_labels[name]
            if spec.lo <= value <= spec.hi:
                label.setText(spec.text(value))
                label.setToolTip("")
            else:
                used = spec.text(min(max(value, spec.lo), spec.hi))
                label.setText(spec.text(value) + "!")
                label.setToolTip(f"The project asks for {value:g}; the voice engines take "
                                 f"{spec.lo:g} to {spec.hi:g}, so {used} is used.")
