"""The Training panel: fine-tune or train a face GAN on a folder of images, with live plots.

Pick the data (a folder made by `studio ingest` or `studio synth-faces`, or any folder of
PNG/JPEG faces), a base model (the face model the project uses, another one, or train from
scratch), a preset; start, pause, cancel; watch the losses, R1, the augmentation
probability and a sample grid of fixed seeds; then use the new model. The run is the same
job `studio train face` runs.

Before a start, the panel shows a memory estimate, and on request ("Estimate time") a time
estimate measured on this machine: a few real training iterations, as a job (it shows its
progress, can be cancelled and appears in the Jobs panel). A run measured to take more than
an hour says so plainly before Start.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from studio.core import paths
from studio.core.errors import StudioError
from studio.core.jobs import Job, JobKind, JobState, Progress
from studio.core.model_registry import find_face_models
from studio.face.model_ref import face_model_dirs, resolve_face_model
from studio.ui.context import StudioContext
from studio.ui.imageutil import to_qimage

PRESET_LABELS = {
    "few": "Few photos (10 to 50)",
    "hundreds": "A few hundred photos",
    "scratch": "From scratch (thousands)",
}
PLOTTED = ("loss_G", "loss_D", "r1", "aug_p", "fd")
LONG_RUN_S = 3600.0  # runs measured to take longer than this get a plain warning


class TrainingPanel(QWidget):
    def __init__(self, ctx: StudioContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.job: Job | None = None
        self._running = False  # a run was started and its ending has not reached us yet
        self._paused = False
        # The time estimate: the newest request wins; older results are dropped.
        self.estimate_job: Job | None = None  # the current measurement (None: none running)
        self._estimate_for: tuple | None = None  # the settings it measures
        self._estimate_progress = ""
        self._estimates_alive: set[int] = set()  # ids of measurements not yet ended here
        self._speed: tuple[tuple, dict[str, Any] | None, str | None] | None = None
        self._start_when_measured = False
        self._base_follows_project = True  # until the artist picks a base model
        self.result_path: Path | None = None
        self.series: dict[str, tuple[list[float], list[float]]] = {}
        self.curves: dict[str, pg.PlotDataItem] = {}

        self.data_edit = QLineEdit()
        self.data_edit.setObjectName("trainData")
        self.data_edit.setPlaceholderText("folder of aligned face images")
        browse = QPushButton("…")
        browse.setFixedWidth(40)
        browse.clicked.connect(self._browse_data)
        new_set = QPushButton("New photo set…")
        new_set.setObjectName("newPhotoSet")
        new_set.setToolTip("Find, align and check the faces in a folder of your photos")
        new_set.clicked.connect(lambda: self.new_photo_set())  # not clicked(bool) as `show`
        self.new_set_btn = new_set
        data_row = QHBoxLayout()
        data_row.addWidget(self.data_edit, 1)
        data_row.addWidget(browse)
        set_row = QHBoxLayout()
        set_row.addWidget(new_set)
        set_row.addStretch(1)
        self.base = QComboBox()
        self.base.setObjectName("trainBase")
        self.base.setToolTip("The model to fine-tune; by default the face model the project "
                             "uses")
        self.base.activated.connect(self._on_base_chosen)
        self.preset = QComboBox()
        for key, label in PRESET_LABELS.items():
            self.preset.addItem(label, key)
        self.preset.setCurrentIndex(0)  # few photos: a fine-tune of the chosen model
        self.preset.currentIndexChanged.connect(self._apply_preset)
        self.kimg = QDoubleSpinBox()
        self.kimg.setRange(0.01, 100000)
        self.kimg.setDecimals(2)
        self.kimg.setSuffix(" kimg")
        self.batch = QSpinBox()
        self.batch.setRange(1, 1024)
        self.name = QLineEdit("my-faces")
        self.estimate = QLabel()
        self.estimate.setObjectName("hint")
        self.estimate.setWordWrap(True)
        self.time_btn = QPushButton("Estimate time")
        self.time_btn.setObjectName("estimateTime")
        self.time_btn.clicked.connect(self._on_time_btn)
        self.long_warning = QLabel()
        self.long_warning.setObjectName("missing")
        self.long_warning.setWordWrap(True)
        self.long_warning.hide()
        for w in (self.kimg, self.batch):
            w.valueChanged.connect(self._update_estimate)
        self.base.currentIndexChanged.connect(self._update_estimate)
        self.data_edit.textChanged.connect(self._update_estimate)

        self.start_btn = QPushButton("Start")
        self.start_btn.setObjectName("primary")
        self.pause_btn = QPushButton("Pause")
        self.cancel_btn = QPushButton("Cancel")
        self.use_btn = QPushButton("Use this model")
        self.start_btn.clicked.connect(self.start)
        self.pause_btn.clicked.connect(self.toggle_pause)
        self.cancel_btn.clicked.connect(lambda: self.job and self.job.cancel())
        self.use_btn.clicked.connect(self.use_result)
        buttons = QHBoxLayout()
        for b in (self.start_btn, self.pause_btn, self.cancel_btn):
            buttons.addWidget(b)
        self.status = QLabel("Not running")
        self.status.setWordWrap(True)

        self.plot = pg.PlotWidget(background="#16171a")
        self.plot.setObjectName("trainPlot")
        self.plot.setMinimumHeight(140)
        self.plot.addLegend(offset=(5, 5))
        self.plot.setLabel("bottom", "images seen")
        self.samples = QLabel("The sample grid appears here during training")
        self.samples.setObjectName("hint")
        self.samples.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.samples.setMinimumHeight(120)

        form = QFormLayout()
        form.addRow("Data", data_row)
        form.addRow("", set_row)
        form.addRow("Base model", self.base)
        form.addRow("Preset", self.preset)
        form.addRow("Length", self.kimg)
        form.addRow("Batch", self.batch)
        form.addRow("Model name", self.name)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addLayout(form)
        estimate_row = QHBoxLayout()
        estimate_row.addWidget(self.estimate, 1)
        estimate_row.addWidget(self.time_btn, 0, Qt.AlignmentFlag.AlignTop)
        layout.addLayout(estimate_row)
        layout.addWidget(self.long_warning)
        layout.addLayout(buttons)
        layout.addWidget(self.status)
        layout.addWidget(self.plot, 1)
        layout.addWidget(self.samples)
        layout.addWidget(self.use_btn)
        self.refresh_models()
        self._apply_preset()
        self._update_buttons()
        ctx.app.models.changed.connect(self.refresh_models)
        ctx.app.events.settings.connect(self._update_estimate)
        ctx.document.changed.connect(self._on_doc_changed)
        ctx.document.replaced.connect(self._follow_project_model)

    # -- setup -------------------------------------------------------------------------------
    def refresh_models(self) -> None:
        current = self.base.currentData()
        self.base.blockSignals(True)
        self.base.clear()
        self.base.addItem("Train from scratch", None)
        dirs = face_model_dirs(self.ctx.settings.all_model_dirs())
        for m in find_face_models(dirs):
            self.base.addItem(f"{m.name} ({m.resolution} px)", str(m.path))
            self.base.setItemData(self.base.count() - 1, str(m.path),
                                  Qt.ItemDataRole.ToolTipRole)
        self.base.blockSignals(False)
        if self._base_follows_project:
            self._follow_project_model()
        else:
            idx = self.base.findData(current)
            self._select_base(idx if idx >= 0 else self._project_model_index())

    def project_model(self) -> Path | None:
        """The face model the project uses (the one the Face panel shows), if it exists."""
        doc = self.ctx.document
        try:
            return resolve_face_model(doc.project.avatar.model, doc.path,
                                      self.ctx.settings.all_model_dirs())
        except StudioError:
            return None

    def _project_model_index(self) -> int:
        path = self.project_model()
        for i in range(1, self.base.count()):
            data = self.base.itemData(i)
            if path is not None and data and Path(data).resolve() == path.resolve():
                return i
        return min(1, self.base.count() - 1)  # else the first model, else from scratch

    def _select_base(self, index: int) -> None:
        if index != self.base.currentIndex():
            self.base.setCurrentIndex(index)  # updates the estimate
        else:
            self._update_estimate()

    def _follow_project_model(self) -> None:
        if self._base_follows_project and self.preset.currentData() != "scratch":
            self._select_base(self._project_model_index())

    def _on_doc_changed(self, changed) -> None:
        if any(p == () or p[:2] == ("avatar", "model") for p in changed):
            self._follow_project_model()

    def _on_base_chosen(self, index: int) -> None:
        self._base_follows_project = False  # the artist chose: keep it

    def _browse_data(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Training images")
        if folder:
            self.data_edit.setText(folder)

    def new_photo_set(self, *, show: bool = True):
        """The photo-set dialog (window-modal, non-blocking); its data set becomes the
        training data when accepted."""
        from studio.ui.photo_set_dialog import PhotoSetDialog

        dialog = PhotoSetDialog(self.ctx, self)
        dialog.setObjectName("photoSetDialog")
        dialog.accepted.connect(
            lambda: dialog.dataset_dir and self.data_edit.setText(str(dialog.dataset_dir)))
        if show:
            dialog.open()
        return dialog

    def _apply_preset(self) -> None:
        from studio.train.config import PRESETS

        p = PRESETS[self.preset.currentData()]
        self.kimg.blockSignals(True)
        self.kimg.setValue(p["kimg"])
        self.kimg.blockSignals(False)
        self.batch.blockSignals(True)
        self.batch.setValue(p["batch"])
        self.batch.blockSignals(False)
        if self.preset.currentData() == "scratch":
            self._select_base(0)
        else:
            self._update_estimate()

    def _update_estimate(self, *args: Any) -> None:
        from studio.train.estimate import estimate_memory

        base = self.base.currentData()
        key = self._speed_key()
        if self.estimate_job is not None and self._estimate_for != key:
            self._cancel_measurement()  # the settings changed: that measurement is stale
        try:
            est = estimate_memory(base, self.batch.value())
        except StudioError as exc:
            memory = str(exc).rstrip(".") + "."
        else:
            images = self.kimg.value() * 1000
            memory = (f"Needs about {est['total_gb']:.1f} GB ({est['params_m']:.1f} M "
                      f"parameters, batch {self.batch.value()}); {images:,.0f} images will "
                      f"be shown."
                      + ("" if base else " From scratch the size follows the data's "
                         "resolution."))
        self.estimate.setText(f"{memory} {self._time_text(key)}")
        self._update_long_warning(key)
        self._update_buttons()

    def measured_seconds(self) -> float | None:
        """The measured time of the run as set up now, or None if not measured."""
        from studio.train.estimate import estimate_time

        if self._speed is None or self._speed[0] != self._speed_key() or self._speed[1] is None:
            return None
        return estimate_time(self._speed[1]["images_per_s"], self.kimg.value())

    def _update_long_warning(self, key: tuple) -> None:
        from studio.train.estimate import format_duration

        seconds = self.measured_seconds()
        if seconds is None or seconds <= LONG_RUN_S:
            self.long_warning.hide()
            self.start_btn.setToolTip("")
            return
        device = _device_name(self._speed[1]["device"]) if self._speed and self._speed[1] else ""
        text = (f"This run will take {format_duration(seconds)} on this machine's {device}. "
                "Shorten it (Length), pick a smaller base model, or train on a GPU.")
        self.long_warning.setText(text)
        self.long_warning.show()
        self.start_btn.setToolTip(text)

    def _time_text(self, key: tuple) -> str:
        from studio.train.estimate import format_duration

        if self.estimate_job is not None:
            return f"Time: measuring… {self._estimate_progress}".rstrip()
        if self._speed is None or self._speed[0] != key:
            return "Time: press Estimate time to measure this machine's speed."
        _, result, error = self._speed
        if result is None:
            return f"Time: cannot measure ({error})."
        kimg = self.kimg.value()
        took = format_duration(self.measured_seconds() or 0.0)
        return (f"Measured on this machine: {result['images_per_s']:.1f} img/s on "
                f"{_device_name(result['device'])} ({result['precision']}, "
                f"{result['resolution']} px) → {took} for {kimg:g} kimg.")

    def _speed_key(self) -> tuple:
        """What the time measurement depends on (kimg only scales the time)."""
        base = self.base.currentData()
        data = "" if base else self.data_edit.text().strip()  # from scratch: the data's size
        s = self.ctx.settings
        return (base, self.batch.value(), self.preset.currentData(), data, s.device,
                s.precision)

    def _train_config(self, data: str):
        from studio.train.config import TrainConfig

        name = self.name.text().strip() or "my-faces"
        out = paths.user_models_dir() / "face" / f"{name}.safetensors"
        return TrainConfig.from_preset(
            self.preset.currentData(), data=data, base=self.base.currentData(), name=name,
            output=str(out), kimg=self.kimg.value(), batch=self.batch.value(),
            runs_root=str(paths.data_dir() / "runs"),
            device=self.ctx.settings.device, precision=self.ctx.settings.precision)

    def config(self):
        data = self.data_edit.text().strip()
        if not data or not Path(data).is_dir():
            raise StudioError("choose a folder of training images first")
        return self._train_config(data)

    # -- time estimate -----------------------------------------------------------------------
    def _on_time_btn(self) -> None:
        if self.estimate_job is not None:
            self._cancel_measurement()
            self._update_estimate()
        else:
            self.measure_time()

    def measure_time(self) -> Job:
        """Measure the training speed for the current settings as a job; the label shows
        its progress and then the result. A newer request supersedes (cancels) an older
        one."""
        from studio.train.estimate import measure_speed_job

        self._cancel_measurement()
        data = self.data_edit.text().strip()
        cfg = self._train_config(data if data and Path(data).is_dir() else "")
        job = Job("Estimate training time", measure_speed_job, cfg, kind=JobKind.ESTIMATE)
        self.estimate_job, self._estimate_for = job, self._speed_key()
        self._estimate_progress = ""
        self._estimates_alive.add(job.id)
        self.ctx.runner.start(
            job, on_progress=lambda p: self._on_estimate_progress(job, p),
            on_done=lambda result: self._on_estimate_end(job, result, None),
            on_failed=lambda error: self._on_estimate_end(job, None, error),
            on_finished=self._on_estimate_finished)
        self._update_estimate()
        return job

    def _cancel_measurement(self) -> None:
        if self.estimate_job is not None:
            self.estimate_job.cancel()
            self.estimate_job = None
            self._estimate_for = None

    def _on_estimate_progress(self, job: Job, p: Progress) -> None:
        if job is self.estimate_job:
            percent = f"{p.fraction * 100:.0f}%" if p.fraction is not None else ""
            self._estimate_progress = f"{percent} {p.message}".strip()
            self._update_estimate()

    def _on_estimate_end(self, job: Job, result: dict | None, error: str | None) -> None:
        if job is self.estimate_job:
            self._speed = (self._estimate_for, result, error)
            self.estimate_job, self._estimate_for = None, None

    def _on_estimate_finished(self, job: Job) -> None:
        self._estimates_alive.discard(job.id)
        if job is self.estimate_job:  # cancelled from the Jobs panel
            self.estimate_job, self._estimate_for = None, None
        self._update_estimate()
        if self._start_when_measured and not self._estimates_alive:
            self._start_when_measured = False
            self.start()

    @property
    def measuring(self) -> bool:
        """True while a measurement (a cancelled one too) has not ended here yet."""
        return bool(self._estimates_alive)

    def shutdown(self) -> None:
        self._cancel_measurement()

    # -- running -----------------------------------------------------------------------------
    def start(self) -> Job | None:
        from studio.train.loop import train_face_job

        if self._running:
            return None
        try:
            cfg = self.config()
        except StudioError as exc:
            self.ctx.report_error("Cannot start training", str(exc))
            return None
        if self._estimates_alive:
            # A time measurement shares torch's global random generator and the device:
            # stop it and start the run once it has ended (within a network block).
            self._cancel_measurement()
            self._start_when_measured = True
            self.status.setText("Stopping the time measurement, then starting…")
            self._update_estimate()
            return None
        self.series.clear()
        self.plot.clear()
        self.curves.clear()
        self.result_path = None
        job = Job(f"Train {cfg.name}", train_face_job, cfg, kind=JobKind.TRAIN)
        self.job, self._running, self._paused = job, True, False
        self.ctx.runner.start(job, on_progress=lambda p: self._on_progress(job, p),
                              on_state=lambda s: self._on_state(job, s),
                              on_finished=self._on_finished)
        self._update_buttons()
        return job

    def toggle_pause(self) -> None:
        if self.job is None or not self._running:
            return
        if self._paused:
            self.job.resume()
        else:
            self.job.pause()

    def _on_state(self, job: Job, state: JobState) -> None:
        if job is self.job:
            self._paused = state is JobState.PAUSED
            self._update_buttons()

    def _on_progress(self, job: Job, p: Progress) -> None:
        if job is not self.job:
            return
        self.status.setText(p.message)
        if p.step is not None:
            for key, value in p.metrics.items():
                if key in PLOTTED and np.isfinite(value):
                    xs, ys = self.series.setdefault(key, ([], []))
                    xs.append(float(p.step))
                    ys.append(float(value))
                    if key not in self.curves:
                        color = pg.intColor(PLOTTED.index(key), hues=len(PLOTTED))
                        self.curves[key] = self.plot.plot(name=key, pen=pg.mkPen(color, width=1.5))
                    self.curves[key].setData(xs, ys)
        if p.preview is not None:
            img = to_qimage(np.ascontiguousarray(p.preview))
            from PySide6.QtGui import QPixmap

            pix = QPixmap.fromImage(img).scaledToWidth(
                max(120, self.samples.width() - 4), Qt.TransformationMode.SmoothTransformation)
            self.samples.setPixmap(pix)

    def _on_finished(self, job: Job) -> None:
        if job is not self.job:
            return
        self._running, self._paused = False, False
        if job.state is JobState.DONE:
            self.result_path = Path(job.result.model)
            self.status.setText(f"Done: {self.result_path.name} "
                                f"({job.result.images_seen:,} images seen)")
            self.ctx.app.models.refresh()  # the new model appears in every model list
        elif job.state is JobState.FAILED:
            self.status.setText(f"Failed: {job.error}")
            self.ctx.report_error("Training failed", job.error or "unknown error")
        else:
            self.status.setText(f"Cancelled at a checkpoint: {time.strftime('%H:%M:%S')}")
        self._update_buttons()

    @property
    def running(self) -> bool:
        """True from Start until the run's ending has reached this panel."""
        return self._running

    def use_result(self) -> None:
        if self.result_path is None:
            return
        self.ctx.document.set(("avatar", "model"), f"library:{self.result_path.name}",
                              "Use trained model")

    def _update_buttons(self) -> None:
        running = self._running
        self.start_btn.setEnabled(not running and not self._start_when_measured)
        self.pause_btn.setEnabled(running)
        self.pause_btn.setText("Resume" if self._paused else "Pause")
        self.cancel_btn.setEnabled(running)
        self.use_btn.setEnabled(self.result_path is not None and not running)
        measuring = self.estimate_job is not None
        self.time_btn.setEnabled(not running and not self._start_when_measured)
        self.time_btn.setText("Stop estimating" if measuring else "Estimate time")
        self.time_btn.setToolTip(
            "Stop the time measurement" if measuring else
            "Time a few training iterations on this machine (seconds on a GPU, can be a "
            "minute on the CPU); it shows in Jobs")


def _device_name(device: str) -> str:
    return "CPU" if device == "cpu" else device.upper()
