"""Blend two faces: the avatar's w+ interpolated towards another face, with a slider.

The other face is a seed (mapped at the avatar's truncation) or a w+ ``.npy`` inside the
project's folder (an inverted photo, another avatar's latent). It is stored on the avatar
(``avatar.blend``) and rendered by the one frame path (:func:`studio.face.request.
avatar_request`), so the preview, ``studio generate`` and renders agree. Every change is an
undoable edit; a drag of the amount slider is one step.
"""

from __future__ import annotations

import itertools
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QFileDialog,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSlider,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from studio.core.document import Document
from studio.core.errors import StudioError
from studio.core.files import resolve_path
from studio.core.project import Blend

SCALE = 100  # slider units per 1.0 of the amount
SEED_MAX = 2**31 - 1


class BlendBox(QGroupBox):
    def __init__(self, doc: Document, parent: QWidget | None = None) -> None:
        super().__init__("Blend with another face", parent)
        self.doc = doc
        self.setObjectName("faceBlend")
        self.setCheckable(True)
        self.setChecked(False)
        self.on_problem = lambda text: None
        self._syncing = False
        self._gestures = itertools.count()
        self._key = None
        self.seed = QSpinBox()
        self.seed.setObjectName("blendSeed")
        self.seed.setRange(0, SEED_MAX)
        self.seed.setValue(1)
        self.seed.setKeyboardTracking(False)
        self.seed.setToolTip("The other face's seed")
        self.file_btn = QPushButton("Latent file…")
        self.file_btn.setToolTip("Blend with a w+ .npy in the project's folder (an inverted "
                                 "photo, another avatar's latent)")
        self.source = QLabel()
        self.source.setObjectName("hint")
        self.amount = QSlider(Qt.Orientation.Horizontal)
        self.amount.setObjectName("blendAmount")
        self.amount.setRange(0, SCALE)
        self.amount.setValue(SCALE // 2)
        self.amount_label = QLabel()
        self.amount_label.setMinimumWidth(36)
        row = QHBoxLayout()
        row.addWidget(QLabel("seed"))
        row.addWidget(self.seed, 1)
        row.addWidget(self.file_btn)
        arow = QHBoxLayout()
        arow.addWidget(self.amount, 1)
        arow.addWidget(self.amount_label)
        layout = QVBoxLayout(self)
        layout.addLayout(row)
        layout.addWidget(self.source)
        layout.addLayout(arow)
        self.toggled.connect(self._on_toggled)
        self.seed.valueChanged.connect(self._on_seed)
        self.file_btn.clicked.connect(self.choose_file)
        self.amount.sliderPressed.connect(self._pressed)
        self.amount.sliderReleased.connect(self._released)
        self.amount.valueChanged.connect(self._on_amount)
        doc.changed.connect(self._on_doc_changed)
        doc.replaced.connect(self.sync)
        self.sync()

    # -- edits ----------------------------------------------------------------------------
    def _set(self, path: tuple, value, label: str, merge_key=None) -> None:
        if self._syncing:
            return
        try:
            self.doc.set(path, value, label, merge_key)
        except StudioError as exc:
            self.on_problem(str(exc))

    def _on_toggled(self, on: bool) -> None:
        blend = Blend(seed=int(self.seed.value()), amount=self.amount.value() / SCALE) if on else None
        self._set(("avatar", "blend"), blend, "Blend faces" if on else "Stop blending")

    def _on_seed(self, v: int) -> None:
        if self.doc.project.avatar.blend is not None:
            b = self.doc.project.avatar.blend.model_copy(update={"seed": int(v), "latent": None})
            self._set(("avatar", "blend"), b, "Change blend seed")

    def set_latent(self, rel: str) -> None:
        """Blend with a w+ file (a path relative to the project folder)."""
        b = self.doc.project.avatar.blend or Blend(amount=self.amount.value() / SCALE)
        self._set(("avatar", "blend"), Blend(seed=b.seed, latent=rel, amount=b.amount),
                  "Blend with a latent file")

    def choose_file(self) -> None:
        if self.doc.path is None:
            self.on_problem("Save the project first: a latent file must be in its folder")
            return
        name, _ = QFileDialog.getOpenFileName(self, "Blend with a latent", str(self.doc.path.parent),
                                              "Latents (*.npy)")
        if not name:
            return
        base = resolve_path(self.doc.path.parent)
        target = resolve_path(Path(name))
        if not target.is_relative_to(base):
            self.on_problem(f"{target.name} is outside the project folder: copy it there first")
            return
        self.set_latent(target.relative_to(base).as_posix())

    def _pressed(self) -> None:
        self._key = ("blend-drag", next(self._gestures))

    def _released(self) -> None:
        self._key = None
        self.doc.history.close_merge()

    def _on_amount(self, v: int) -> None:
        self.amount_label.setText(f"{v / SCALE:.2f}")
        if self.doc.project.avatar.blend is not None:
            self._set(("avatar", "blend", "amount"), v / SCALE, "Change blend amount", self._key)

    # -- document → widgets ----------------------------------------------------------------------
    def _on_doc_changed(self, paths) -> None:
        if any(p == () or p[:2] == ("avatar", "blend") or p == ("avatar",) for p in paths):
            self.sync()

    def sync(self) -> None:
        b = self.doc.project.avatar.blend
        self._syncing = True
        try:
            self.setChecked(b is not None)
            if b is not None:
                if b.seed is not None:
                    self.seed.setValue(min(b.seed, SEED_MAX))
                self.amount.setValue(int(round(b.amount * SCALE)))
                self.source.setText(f"latent {b.latent}" if b.latent else f"seed {b.seed}")
            else:
                self.source.setText("")
            self.amount_label.setText(f"{self.amount.value() / SCALE:.2f}")
        finally:
            self._syncing = False
