"""File → New avatar from photo: run the inversion job and make the face the avatar.

The inverted face replaces the current project's avatar as one undoable edit (the artist
keeps the voice and timeline work, and Edit → Undo brings the previous face back), rather
than opening a new project. The latent (and, with pivotal tuning, the tuned model) is
written next to the project, so an unsaved project is saved first.

While the job runs, the viewport shows the photo and the current reconstruction side by
side (the job's progress previews), a small window plots the loss and can cancel, and the
Jobs panel lists it like any other job.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFileDialog, QLabel, QPushButton, QVBoxLayout, QWidget

from studio.core.errors import StudioError
from studio.core.jobs import Job, JobKind, Progress
from studio.core.project import Avatar
from studio.face.invert import InvertSettings
from studio.face.model_ref import resolve_face_model
from studio.train.invert_job import bf16_default, invert_photo_job
from studio.ui.context import StudioContext

PHOTO_FILTER = "Photos (*.jpg *.jpeg *.png *.webp *.bmp *.tif *.tiff);;All files (*)"


class InvertMonitor(QWidget):
    """Loss plot, status line and Cancel for one inversion job."""

    def __init__(self, job: Job, parent: QWidget | None = None) -> None:
        super().__init__(parent, Qt.WindowType.Tool)
        self.setObjectName("invertMonitor")
        self.setWindowTitle(job.name)
        self.job = job
        self.status = QLabel("Starting…")
        self.plot = pg.PlotWidget()
        self.plot.setLabel("bottom", "step")
        self.plot.setLabel("left", "loss")
        self.plot.addLegend()
        self.curves: dict[str, Any] = {}
        self.points: dict[str, tuple[list[float], list[float]]] = {}
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(job.cancel)
        lay = QVBoxLayout(self)
        lay.addWidget(self.status)
        lay.addWidget(self.plot)
        lay.addWidget(self.cancel_button)
        self.resize(420, 300)

    def add(self, p: Progress) -> None:
        self.status.setText(p.message)
        if p.step is None:
            return
        for name in ("loss", "pt_loss"):
            if name not in p.metrics:
                continue
            xs, ys = self.points.setdefault(name, ([], []))
            xs.append(float(p.step))
            ys.append(float(p.metrics[name]))
            if name not in self.curves:
                pen = pg.mkPen("#4c9be8" if name == "loss" else "#e8a34c", width=2)
                self.curves[name] = self.plot.plot(name=name, pen=pen)
            self.curves[name].setData(xs, ys)

    def finish(self, message: str) -> None:
        self.status.setText(message)
        self.cancel_button.setEnabled(False)


def start_invert(ctx: StudioContext, photo: str | Path | None = None,
                 settings: InvertSettings | None = None,
                 parent: QWidget | None = None) -> Job | None:
    """Ask for a photo (unless given), then run the inversion job. None when the artist
    backed out (no photo, or the project could not be saved)."""
    doc = ctx.document
    if doc.path is None:
        ctx.show_status("Save the project first: the face is stored next to it", 8000)
        if not ctx.save_project_as() or doc.path is None:
            return None
    if photo is None:
        photo, _ = QFileDialog.getOpenFileName(parent, "New avatar from photo", "",
                                               PHOTO_FILTER)
        if not photo:
            return None
    photo = Path(photo)
    project_path = Path(doc.path)
    ref = doc.project.avatar.model
    try:
        model_path = resolve_face_model(ref, project_path, ctx.settings.all_model_dirs())
    except StudioError as exc:
        ctx.report_error("Cannot invert the photo", str(exc))
        return None
    settings = settings or InvertSettings(bf16=bf16_default())
    job = Job(f"Avatar from {photo.name}", invert_photo_job, photo, model_path=model_path,
              folder=project_path.parent, stem=f"{project_path.stem}_{photo.stem}",
              model_ref=ref, settings=settings, kind=JobKind.INVERT)
    monitor = InvertMonitor(job, parent)

    def progress(p: Progress) -> None:
        monitor.add(p)
        if p.preview is not None:
            ctx.viewport.set_image(np.ascontiguousarray(p.preview))

    def done(result: dict[str, Any]) -> None:
        fields = {**doc.get(("avatar",)).model_dump(), "model": result["model"],
                  "latent": result["latent"], "controls": {}}
        new = Avatar(**fields)
        doc.set(("avatar",), new, "Avatar from photo")
        m = result["metrics"].get("pivotal") or result["metrics"]["w_plus"]
        text = (f"Avatar from {photo.name}: PSNR {m['psnr']:.1f} dB, SSIM {m['ssim']:.3f}, "
                f"identity distance {m.get('identity_distance', float('nan')):.2f}")
        monitor.finish(text)
        ctx.show_status(text, 10000)

    def failed(error: str) -> None:
        monitor.finish(f"Failed: {error}")
        ctx.report_error("Avatar from photo failed", error)

    ctx.runner.start(job, on_progress=progress, on_done=done, on_failed=failed,
                     on_cancelled=lambda: monitor.finish("Cancelled"))
    monitor.show()
    job.monitor = monitor  # type: ignore[attr-defined] - kept alive with the job; tests use it
    return job
