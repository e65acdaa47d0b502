"""The Refine dock: the project's refiner settings (undoable edits) and a Refine button that
runs the refine job on the frame in the viewport, then shows before/after in the viewport.

The settings live in the project (``project.refiner``); every control writes them through the
document (one undo step per change, a slider drag is one step). The model picker offers the
default refiner when it is installed, the refiners in the model folders, and any Stable
Diffusion 1.x checkpoint chosen from disk; with no default installed the panel says so.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSlider,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from studio.core.errors import StudioError
from studio.core.jobs import Job, JobKind, Progress
from studio.refine.locate import NO_DEFAULT, available_refiners, refiner_kind, resolve_refiner
from studio.ui.context import StudioContext
from studio.ui.imageutil import from_qimage

STRENGTH_SCALE = 100
PAUSE_MS = 600  # live refine: the preview must rest this long before it is refined
OTHER = "__other__"


class RefinePanel(QWidget):
    def __init__(self, ctx: StudioContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.doc = ctx.document
        self._syncing = False
        self._gesture = itertools.count()
        self._drag_key: tuple | None = None
        self.job: Job | None = None
        self._refined_key: int | None = None  # cacheKey of the refined image we showed
        self._source_key: int | None = None  # cacheKey of the frame being refined
        self._again = False  # live refine: a newer frame waits for the running job
        self.pause_timer = QTimer(self)
        self.pause_timer.setSingleShot(True)
        self.pause_timer.setInterval(PAUSE_MS)
        self.pause_timer.timeout.connect(self._on_paused)

        self.model_combo = QComboBox()
        self.model_combo.setObjectName("refineModel")
        self.model_note = QLabel("")
        self.model_note.setObjectName("refineModelNote")
        self.model_note.setWordWrap(True)
        self.enabled_box = QCheckBox("Refine every rendered frame")
        self.enabled_box.setObjectName("refineEnabled")
        self.enabled_box.setToolTip("studio render and File → Render refine each frame")
        self.strength = QSlider(Qt.Orientation.Horizontal)
        self.strength.setObjectName("refineStrength")
        self.strength.setRange(0, STRENGTH_SCALE)
        self.strength_label = QLabel("")
        self.steps = QSpinBox()
        self.steps.setObjectName("refineSteps")
        self.steps.setRange(1, 500)
        self.seed = QSpinBox()
        self.seed.setObjectName("refineSeed")
        self.seed.setRange(0, 2**31 - 1)
        self.prompt = QPlainTextEdit()
        self.prompt.setObjectName("refinePrompt")
        self.prompt.setPlaceholderText("prompt (Stable Diffusion)")
        self.prompt.setMaximumHeight(60)
        self.negative = QLineEdit()
        self.negative.setObjectName("refineNegative")
        self.negative.setPlaceholderText("negative prompt")
        self.guidance = QDoubleSpinBox()
        self.guidance.setObjectName("refineGuidance")
        self.guidance.setRange(0.0, 50.0)
        self.guidance.setSingleStep(0.5)
        self.live_box = QCheckBox("Refine the preview when you pause")
        self.live_box.setObjectName("refineLive")
        self.live_box.setToolTip("While you drag, the viewport shows the raw GAN frame; when "
                                 "you stop, the frame is refined")
        self.refine_button = QPushButton("Refine frame")
        self.refine_button.setObjectName("refineButton")
        self.refine_button.setToolTip("Refine the frame in the viewport; drag the viewport's "
                                      "slider to compare before and after")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setObjectName("refineCancel")
        self.cancel_button.setEnabled(False)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setTextVisible(False)
        self.status = QLabel("")
        self.status.setObjectName("refineStatus")
        self.status.setWordWrap(True)

        form = QFormLayout()
        form.addRow("Model", self.model_combo)
        form.addRow("", self.model_note)
        row = QHBoxLayout()
        row.addWidget(self.strength, 1)
        row.addWidget(self.strength_label)
        form.addRow("Strength", row)
        form.addRow("Steps", self.steps)
        form.addRow("Seed", self.seed)
        self.prompt_label = QLabel("Prompt")
        self.negative_label = QLabel("Negative")
        self.guidance_label = QLabel("Guidance")
        form.addRow(self.prompt_label, self.prompt)
        form.addRow(self.negative_label, self.negative)
        form.addRow(self.guidance_label, self.guidance)
        buttons = QHBoxLayout()
        buttons.addWidget(self.refine_button)
        buttons.addWidget(self.cancel_button)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.enabled_box)
        layout.addWidget(self.live_box)
        layout.addLayout(buttons)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        layout.addStretch(1)

        self.model_combo.activated.connect(self._on_model_chosen)
        self.enabled_box.toggled.connect(lambda on: self._set("enabled", on,
                                                              "Refine rendered frames"))
        self.strength.sliderPressed.connect(self._begin_drag)
        self.strength.sliderReleased.connect(self._end_drag)
        self.strength.valueChanged.connect(self._on_strength)
        self.steps.valueChanged.connect(lambda v: self._set("steps", v, "Refine steps"))
        self.seed.valueChanged.connect(lambda v: self._set("seed", v, "Refine seed"))
        self.prompt.textChanged.connect(
            lambda: self._set("prompt", self.prompt.toPlainText(), "Refine prompt", "prompt"))
        self.negative.textEdited.connect(
            lambda t: self._set("negative_prompt", t, "Negative prompt", "negative"))
        self.guidance.valueChanged.connect(lambda v: self._set("guidance", v, "Guidance"))
        self.refine_button.clicked.connect(self.refine_frame)
        self.cancel_button.clicked.connect(self.cancel)
        self.doc.changed.connect(self._on_doc_changed)
        self.doc.replaced.connect(self.sync)
        self.ctx.viewport.frame_shown.connect(self._on_frame_shown)
        self.sync()

    # -- document -> widgets -----------------------------------------------------------------
    def _model_dirs(self) -> list[Path]:
        return list(self.ctx.settings.all_model_dirs())

    def _fill_models(self, current: str) -> None:
        self.model_combo.clear()
        entries = available_refiners(self._model_dirs())
        for label, ref in entries:
            self.model_combo.addItem(label, ref)
        if current not in [ref for _, ref in entries]:
            label = "Default refiner (not installed)" if current == "default" else current
            self.model_combo.insertItem(0, label, current)
        self.model_combo.addItem("Choose a Stable Diffusion 1.x checkpoint…", OTHER)
        self.model_combo.setCurrentIndex(self.model_combo.findData(current))

    def _kind(self, ref: str) -> tuple[str | None, str]:
        """("pixel" | "sd" | None, a problem to show)."""
        try:
            path = resolve_refiner(ref, self.doc.path, self._model_dirs())
        except StudioError as exc:
            return None, str(exc)
        return refiner_kind(path), ""

    def sync(self) -> None:
        r = self.doc.project.refiner
        self._syncing = True
        try:
            self._fill_models(r.model)
            self.enabled_box.setChecked(r.enabled)
            self.strength.setValue(round(r.strength * STRENGTH_SCALE))
            self.strength_label.setText(f"{r.strength:.2f}")
            self.steps.setValue(r.steps)
            self.seed.setValue(min(r.seed, self.seed.maximum()))
            if self.prompt.toPlainText() != r.prompt:
                self.prompt.setPlainText(r.prompt)
            if self.negative.text() != r.negative_prompt:
                self.negative.setText(r.negative_prompt)
            self.guidance.setValue(r.guidance)
        finally:
            self._syncing = False
        kind, problem = self._kind(r.model)
        if r.model == "default" and kind is None:
            problem = NO_DEFAULT
        self.model_note.setText(problem)
        self.model_note.setVisible(bool(problem))
        takes_text = kind == "sd"
        for w in (self.prompt, self.negative, self.guidance, self.prompt_label,
                  self.negative_label, self.guidance_label):
            w.setVisible(takes_text)
        self.refine_button.setEnabled(kind is not None and self.job is None)

    def _on_doc_changed(self, paths) -> None:
        if any(p and p[0] == "refiner" for p in paths):
            self.sync()

    # -- widgets -> document -----------------------------------------------------------------
    def _set(self, field: str, value, label: str, merge_key=None) -> None:
        if self._syncing:
            return
        try:
            self.doc.set(("refiner", field), value, label, merge_key)
        except StudioError as exc:
            self.status.setText(str(exc))

    def _begin_drag(self) -> None:
        self._drag_key = ("refine-strength", next(self._gesture))

    def _end_drag(self) -> None:
        self._drag_key = None
        self.doc.history.close_merge()

    def _on_strength(self, v: int) -> None:
        self.strength_label.setText(f"{v / STRENGTH_SCALE:.2f}")
        self._set("strength", v / STRENGTH_SCALE, "Refine strength", self._drag_key)

    def _on_model_chosen(self, index: int) -> None:
        ref = self.model_combo.itemData(index)
        if ref == OTHER:
            ref = self.choose_checkpoint()
            if not ref:
                self.sync()
                return
        self._set("model", ref, "Refiner model")

    def choose_checkpoint(self) -> str | None:
        """A file dialog for an SD 1.x .safetensors file (cancel it to pick a folder)."""
        start = str(self.doc.path.parent) if self.doc.path else str(Path.home())
        name, _ = QFileDialog.getOpenFileName(self, "Stable Diffusion 1.x checkpoint", start,
                                              "Safetensors (*.safetensors)")
        if not name:
            name = QFileDialog.getExistingDirectory(self, "…or a diffusers folder", start)
        return self.reference_for(Path(name)) if name else None

    def reference_for(self, path: Path) -> str | None:
        """A project reference for a checkpoint: ``library:NAME`` inside a model folder's
        refiner/, a relative path inside the project folder; otherwise say where to put it."""
        path = path.resolve()
        for base in self._model_dirs():
            if path.parent == (Path(base) / "refiner").resolve():
                return f"library:{path.name}"
        if self.doc.path is not None:
            try:
                return path.relative_to(self.doc.path.parent.resolve()).as_posix()
            except ValueError:
                pass
        from studio.core.paths import user_models_dir

        self.status.setText(f"{path.name}: put the checkpoint in {user_models_dir() / 'refiner'} "
                            "(or in the project's folder) and choose it again, so the project "
                            "can find it on any machine")
        return None

    # -- refining ----------------------------------------------------------------------------
    def current_params(self):
        from studio.refine.base import RefineParams

        r = self.doc.project.refiner
        return RefineParams(strength=r.strength, steps=r.steps, seed=r.seed, prompt=r.prompt,
                            negative_prompt=r.negative_prompt, guidance=r.guidance)

    def refine_frame(self) -> Job | None:
        """Run the refine job on the viewport's frame; the result shows with a compare."""
        from studio.refine.job import RefineRequest, refine_job

        qimg = self.ctx.viewport.image
        if qimg is None or self.job is not None:
            self.status.setText("Nothing to refine: the viewport shows no frame yet.")
            return None
        frame = from_qimage(qimg)[..., :3]
        self._source_key = qimg.cacheKey()
        try:
            req = RefineRequest(model=self.doc.project.refiner.model,
                                params=self.current_params(), images=[frame],
                                project_path=self.doc.path, model_dirs=tuple(self._model_dirs()),
                                device=self.ctx.app.device)
        except StudioError as exc:
            self.status.setText(str(exc))
            return None
        self.job = Job("Refine frame", refine_job, req, kind=JobKind.RENDER)
        self.refine_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self.progress.setValue(0)
        self.status.setText("Refining…")
        self.ctx.runner.start(self.job, on_progress=self._on_progress,
                              on_done=lambda res, f=frame: self._on_done(f, res[0]),
                              on_failed=self._on_failed, on_cancelled=self._on_cancelled,
                              on_finished=self._on_finished)
        return self.job

    def cancel(self) -> None:
        if self.job is not None:
            self.job.cancel()

    def _on_progress(self, p: Progress) -> None:
        if p.fraction is not None:
            self.progress.setValue(round(p.fraction * 1000))
        self.status.setText(p.message)

    def _on_done(self, before: np.ndarray, after: np.ndarray) -> None:
        from studio.refine.images import resize_image

        img = self.ctx.viewport.image
        if img is None or img.cacheKey() != self._source_key:
            self.status.setText("A newer frame arrived; that refine was dropped")
            return  # newest wins: never show a refine of a stale frame
        self.ctx.viewport.set_image(after)
        self._refined_key = self.ctx.viewport.image.cacheKey()
        self.ctx.viewport.set_before(resize_image(before, after.shape[:2]))
        self.status.setText(f"Refined to {after.shape[1]}×{after.shape[0]}: drag the "
                            "viewport's slider to compare")

    def _on_failed(self, message: str) -> None:
        self.status.setText(f"Refine failed: {message}")

    def _on_cancelled(self) -> None:
        self.status.setText("Refine cancelled")

    def _on_finished(self, job: Job) -> None:
        self.job = None
        self.cancel_button.setEnabled(False)
        self.sync()
        if self._again:
            self._again = False
            self.pause_timer.start()

    def _on_frame_shown(self) -> None:
        """A new preview frame replaces the refined one: the compare no longer applies."""
        img = self.ctx.viewport.image
        if img is not None and img.cacheKey() == self._refined_key:
            return
        if self._refined_key is not None:
            self._refined_key = None
            self.ctx.viewport.set_before(None)
        if self.live_box.isChecked() and img is not None:
            self.pause_timer.start()  # restarts while frames keep coming (a drag)

    def _on_paused(self) -> None:
        if self.job is not None:  # a refine of an older frame: stop it, go again after
            self._again = True
            self.job.cancel()
            return
        if self.refine_button.isEnabled():
            self.refine_frame()
