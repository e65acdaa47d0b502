"""The Training panel: fine-tune or train a face GAN on a folder of images, with live plots.

Pick the data (a folder made by `studio ingest` or `studio synth-faces`, or any folder of
PNG/JPEG faces), a base model (or train from scratch), a preset; start, pause, cancel;
watch the losses, R1, the augmentation probability and a sample grid of fixed seeds; then
use the new model. The run is the same job `studio train face` runs.

Before a start, the panel shows a memory estimate, and on request ("Estimate time") a time
estimate measured on this machine: a few real training iterations on a worker thread.
"""

from __future__ import annotations

import contextlib
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QObject, Qt, Signal
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
from studio.core.jobs import Job, JobCancelled, JobState, Progress
from studio.face.model_ref import face_model_dirs
from studio.face.registry import find_face_models
from studio.ui.context import StudioContext
from studio.ui.imageutil import to_qimage

PRESET_LABELS = {
    "few": "Few photos (10 to 50)",
    "hundreds": "A few hundred photos",
    "scratch": "From scratch (thousands)",
}
PLOTTED = ("loss_G", "loss_D", "r1", "aug_p", "fd")


class _SpeedBridge(QObject):
    """Carries a speed measurement's outcome from its worker thread to the UI thread."""

    done = Signal(int, object, object)  # stamp, result dict or None, error text or None


class TrainingPanel(QWidget):
    def __init__(self, ctx: StudioContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.job: Job | None = None
        # The time estimate: the newest request (stamp) wins; older results are dropped.
        self._speed_stamp = 0
        self._speed_pending: tuple[int, tuple, threading.Event] | None = None
        self._speed: tuple[tuple, dict[str, Any] | None, str | None] | None = None
        self._speed_workers = 0  # worker threads not yet finished (cancelled ones too)
        self._start_when_measured = False
        self._speed_bridge = _SpeedBridge()
        self._speed_bridge.done.connect(self._on_speed_done)
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
        new_set.clicked.connect(self.new_photo_set)
        self.new_set_btn = new_set
        data_row = QHBoxLayout()
        data_row.addWidget(self.data_edit, 1)
        data_row.addWidget(browse)
        set_row = QHBoxLayout()
        set_row.addWidget(new_set)
        set_row.addStretch(1)
        self.base = QComboBox()
        self.base.setObjectName("trainBase")
        self.preset = QComboBox()
        for key, label in PRESET_LABELS.items():
            self.preset.addItem(label, key)
        self.preset.setCurrentIndex(1)
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
        self.time_btn.setToolTip("Time a few training iterations on this machine (seconds on "
                                 "a GPU, can be a minute on the CPU)")
        self.time_btn.clicked.connect(self.measure_time)
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
        layout.addLayout(buttons)
        layout.addWidget(self.status)
        layout.addWidget(self.plot, 1)
        layout.addWidget(self.samples)
        layout.addWidget(self.use_btn)
        self.refresh_models()
        self._apply_preset()
        self._update_buttons()

    # -- setup -------------------------------------------------------------------------------
    def refresh_models(self) -> None:
        current = self.base.currentData()
        self.base.clear()
        self.base.addItem("Train from scratch", None)
        dirs = face_model_dirs(self.ctx.settings.all_model_dirs())
        for m in find_face_models(dirs):
            self.base.addItem(f"{m.name} ({m.resolution} px)", str(m.path))
        idx = self.base.findData(current)
        self.base.setCurrentIndex(idx if idx >= 0 else min(1, self.base.count() - 1))

    def _browse_data(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Training images")
        if folder:
            self.data_edit.setText(folder)

    def new_photo_set(self, exec_dialog: bool = True):
        from studio.ui.photo_set_dialog import PhotoSetDialog

        dialog = PhotoSetDialog(self.ctx, self)
        dialog.accepted.connect(
            lambda: dialog.dataset_dir and self.data_edit.setText(str(dialog.dataset_dir)))
        if exec_dialog:
            dialog.open()
        return dialog

    def _apply_preset(self) -> None:
        from studio.train.config import PRESETS

        p = PRESETS[self.preset.currentData()]
        self.kimg.setValue(p["kimg"])
        self.batch.setValue(p["batch"])
        if self.preset.currentData() == "scratch":
            self.base.setCurrentIndex(0)
        self._update_estimate()

    def _update_estimate(self) -> None:
        from studio.train.estimate import estimate_memory

        base = self.base.currentData()
        key = self._speed_key()
        if self._speed_pending is not None and self._speed_pending[1] != key:
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
        self._update_buttons()

    def _time_text(self, key: tuple) -> str:
        from studio.train.estimate import estimate_time, format_duration

        if self._speed_pending is not None:
            return "Time: measuring…"
        if self._speed is None or self._speed[0] != key:
            return "Time: press Estimate time to measure this machine's speed."
        _, result, error = self._speed
        if result is None:
            return f"Time: cannot measure ({error})."
        kimg = self.kimg.value()
        took = format_duration(estimate_time(result["images_per_s"], kimg))
        device = "CPU" if result["device"] == "cpu" else result["device"].upper()
        return (f"Measured on this machine: {result['images_per_s']:.1f} img/s on {device} "
                f"({result['precision']}, {result['resolution']} px) → {took} for {kimg:g} "
                f"kimg.")

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
    def measure_time(self) -> int:
        """Measure the training speed for the current settings off the UI thread; the label
        shows the result. A newer request supersedes (cancels) an older one. Returns its
        stamp."""
        self._cancel_measurement()
        data = self.data_edit.text().strip()
        cfg = self._train_config(data if data and Path(data).is_dir() else "")
        self._speed_stamp += 1
        stamp, cancel = self._speed_stamp, threading.Event()
        self._speed_pending = (stamp, self._speed_key(), cancel)
        self._speed_workers += 1
        bridge = self._speed_bridge
        threading.Thread(target=_measure, args=(bridge, stamp, cfg, cancel),
                         name="train-speed", daemon=True).start()
        self._update_estimate()
        return stamp

    def _cancel_measurement(self) -> None:
        if self._speed_pending is not None:
            self._speed_pending[2].set()
            self._speed_pending = None

    def _on_speed_done(self, stamp: int, result: dict | None, error: str | None) -> None:
        self._speed_workers -= 1
        pending = self._speed_pending
        if pending is not None and pending[0] == stamp:
            self._speed_pending = None
            if result is not None or error is not None:
                self._speed = (pending[1], result, error)
            self._update_estimate()
        if self._start_when_measured and self._speed_workers == 0:
            self._start_when_measured = False
            self.start()

    def shutdown(self) -> None:
        self._cancel_measurement()

    # -- running -----------------------------------------------------------------------------
    def start(self) -> Job | None:
        from studio.train.loop import train_face_job

        try:
            cfg = self.config()
        except StudioError as exc:
            self.ctx.report_error("Cannot start training", str(exc))
            return None
        if self._speed_workers:
            # A time measurement shares torch's global random generator and the CPU: stop
            # it and start the run once its thread has finished (within a network block).
            self._cancel_measurement()
            self._start_when_measured = True
            self.status.setText("Stopping the time measurement, then starting…")
            self._update_estimate()
            return None
        self.series.clear()
        self.plot.clear()
        self.curves.clear()
        self.result_path = None
        self.job = Job(f"Train {cfg.name}", train_face_job, cfg)
        window = self.ctx.services.get("window")
        self.ctx.runner.progressed.connect(self._on_progress)
        if window is not None:
            window.when_finished(self.job, self._on_finished)
        self.ctx.runner.state_changed.connect(self._on_state)
        self.ctx.runner.start(self.job)
        self._update_buttons()
        return self.job

    def toggle_pause(self) -> None:
        if self.job is None:
            return
        if self.job.state is JobState.PAUSED:
            self.job.resume()
        else:
            self.job.pause()

    def _on_state(self, job: Job, state: JobState) -> None:
        if job is self.job:
            self.pause_btn.setText("Resume" if state is JobState.PAUSED else "Pause")
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
        self.ctx.runner.progressed.disconnect(self._on_progress)
        self.ctx.runner.state_changed.disconnect(self._on_state)
        if job.state is JobState.DONE:
            self.result_path = Path(job.result.model)
            self.status.setText(f"Done: {self.result_path.name} "
                                f"({job.result.images_seen:,} images seen)")
            self.refresh_models()
        elif job.state is JobState.FAILED:
            self.status.setText(f"Failed: {job.error}")
            self.ctx.report_error("Training failed", job.error or "unknown error")
        else:
            self.status.setText(f"Cancelled at a checkpoint: {time.strftime('%H:%M:%S')}")
        self._update_buttons()

    def use_result(self) -> None:
        if self.result_path is None:
            return
        face = self.ctx.services.get("window").panels.get("face")
        if hasattr(face, "refresh_models"):
            face.refresh_models()
        self.ctx.document.set(("avatar", "model"), f"library:{self.result_path.name}",
                              "Use trained model")

    def _update_buttons(self) -> None:
        running = self.job is not None and not self.job.state.finished
        self.start_btn.setEnabled(not running)
        self.pause_btn.setEnabled(running)
        self.cancel_btn.setEnabled(running)
        self.use_btn.setEnabled(self.result_path is not None and not running)
        self.time_btn.setEnabled(not running and self._speed_pending is None
                                 and not self._start_when_measured)


def _measure(bridge: _SpeedBridge, stamp: int, cfg: Any, cancel: threading.Event) -> None:
    """Worker thread: measure, then report (result, None), (None, error) or (None, None)
    when cancelled. Never raises."""
    from studio.train.estimate import measure_speed

    def check() -> None:
        if cancel.is_set():
            raise JobCancelled()

    result, error = None, None
    try:
        result = measure_speed(cfg, check=check)
    except JobCancelled:
        pass
    except StudioError as exc:
        error = str(exc)
    except Exception as exc:  # noqa: BLE001 - shown in the label, never a crash
        error = f"{type(exc).__name__}: {exc}"
    with contextlib.suppress(RuntimeError):  # the panel is gone
        bridge.done.emit(stamp, result, error)
