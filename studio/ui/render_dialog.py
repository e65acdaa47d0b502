"""File → Render: the render settings and the render queue.

The dialog builds a :class:`~studio.render.job.RenderSpec` from a snapshot of the project
and adds it to the :class:`RenderQueue`, which runs renders one after another in the long
lane (each shows in the Jobs panel too, with progress, ETA and cancel). The job is the one
``studio render`` runs. Also File → Export → Animation curves.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from studio.core.errors import StudioError
from studio.core.jobs import Job, JobKind, JobState, Progress
from studio.render.job import RenderResult, RenderSpec, render_job
from studio.ui.context import StudioContext


class RenderQueue(QObject):
    """Renders wait here and run one at a time, in order. ``changed`` fires whenever a
    render is added, progresses or ends."""

    changed = Signal()

    def __init__(self, ctx: StudioContext, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.jobs: list[Job] = []  # every render added (waiting, running, ended)
        self._current: Job | None = None

    @property
    def waiting(self) -> list[Job]:
        return [j for j in self.jobs if j.state is JobState.PENDING and j is not self._current]

    @property
    def current(self) -> Job | None:
        return self._current

    def add(self, spec: RenderSpec, name: str) -> Job:
        job = Job(name, render_job, spec, kind=JobKind.RENDER)
        self.jobs.append(job)
        self.changed.emit()
        self._next()
        return job

    def cancel(self, job: Job) -> None:
        job.cancel()  # a waiting render is simply skipped
        self.changed.emit()

    def _next(self) -> None:
        if self._current is not None:
            return
        for job in self.jobs:
            if job.state is JobState.PENDING:
                self._current = job
                self.ctx.runner.start(job, on_progress=self._progressed, on_done=self._done,
                                      on_failed=self._failed, on_finished=self._finished)
                break
        self.changed.emit()

    def _progressed(self, p: Progress) -> None:
        self.changed.emit()

    def _done(self, result: RenderResult) -> None:
        names = ", ".join(p.name for p in result.outputs)
        self.ctx.show_status(f"Rendered {names} ({result.frames} frames)", 8000)
        if result.warnings:
            self.ctx.report_error("Rendered with warnings", "\n".join(result.warnings))

    def _failed(self, error: str) -> None:
        self.ctx.report_error("Render failed", error)

    def _finished(self, job: Job) -> None:
        if job is self._current:
            self._current = None
        self._next()


def _describe(job: Job) -> str:
    state = {JobState.PENDING: "waiting", JobState.RUNNING: "rendering"}.get(job.state,
                                                                              job.state.value)
    msg = f": {job.last.message}" if job.state is JobState.RUNNING and job.last.message else ""
    return f"{job.name} ({state}{msg})"


class RenderDialog(QDialog):
    """Render settings and the queue. Not modal: the artist keeps working meanwhile."""

    def __init__(self, ctx: StudioContext, queue: RenderQueue,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("renderDialog")
        self.setWindowTitle("Render")
        self.ctx, self.queue = ctx, queue
        tl = ctx.document.project.timeline
        self.video = QLineEdit()
        self.video.setObjectName("renderVideo")
        self.video_on = QCheckBox("Video (MP4: H.264 + AAC)")
        self.video_on.setChecked(True)
        self.png_dir = QLineEdit()
        self.png_dir.setObjectName("renderPngDir")
        self.png_dir.setPlaceholderText("(none) folder for frame_000001.png …")
        self.wav = QLineEdit()
        self.wav.setObjectName("renderWav")
        self.wav.setPlaceholderText("(none) the mixed audio as WAV")
        self.start = QDoubleSpinBox()
        self.end = QDoubleSpinBox()
        for box in (self.start, self.end):
            box.setRange(0.0, 24 * 3600.0)
            box.setDecimals(2)
            box.setSuffix(" s")
        self.start.setObjectName("renderStart")
        self.end.setObjectName("renderEnd")
        self.end.setValue(tl.duration)
        self.fps = QSpinBox()
        self.fps.setObjectName("renderFps")
        self.fps.setRange(1, 240)
        self.fps.setValue(tl.fps)
        self.size = QSpinBox()
        self.size.setObjectName("renderSize")
        self.size.setRange(0, 8192)
        self.size.setSingleStep(64)
        self.size.setSpecialValueText("the model's")
        self.warning = QLabel("")
        self.warning.setObjectName("renderWarning")
        self.warning.setWordWrap(True)
        self.add_btn = QPushButton("Add to queue")
        self.add_btn.setObjectName("renderAdd")
        self.add_btn.setDefault(True)
        self.add_btn.clicked.connect(self.add_to_queue)
        self.list = QListWidget()
        self.list.setObjectName("renderQueue")
        self.cancel_btn = QPushButton("Cancel selected")
        self.cancel_btn.clicked.connect(self._cancel_selected)

        form = QFormLayout()
        form.addRow(self.video_on, self._with_browse(self.video, self._browse_video))
        form.addRow("PNG frames", self._with_browse(self.png_dir, self._browse_png))
        form.addRow("WAV", self._with_browse(self.wav, self._browse_wav))
        rng = QHBoxLayout()
        rng.addWidget(self.start)
        rng.addWidget(QLabel("to"))
        rng.addWidget(self.end)
        form.addRow("Range", rng)
        form.addRow("Frame rate", self.fps)
        form.addRow("Size (px)", self.size)
        lay = QVBoxLayout(self)
        lay.addLayout(form)
        lay.addWidget(self.warning)
        lay.addWidget(self.add_btn)
        lay.addWidget(QLabel("Render queue (one render at a time):"))
        lay.addWidget(self.list)
        lay.addWidget(self.cancel_btn)
        queue.changed.connect(self.refresh)
        self._default_names()
        self.refresh()

    @staticmethod
    def _with_browse(edit: QLineEdit, slot) -> QWidget:
        w = QWidget()
        row = QHBoxLayout(w)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(edit)
        b = QPushButton("…")
        b.clicked.connect(slot)
        row.addWidget(b)
        return w

    def _default_names(self) -> None:
        doc = self.ctx.document
        folder = doc.path.parent if doc.path is not None else Path.home()
        stem = doc.path.stem if doc.path is not None else doc.project.name
        self.video.setText(str(folder / f"{stem}.mp4"))
        from studio.render.audio import missing_audio

        warnings = missing_audio(doc.project, doc.path)
        self.warning.setText("\n".join(f"Warning: {w}" for w in warnings))

    def _browse_video(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Render video", self.video.text(),
                                              "MP4 video (*.mp4)")
        if path:
            self.video.setText(path)

    def _browse_png(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Folder for the PNG frames")
        if path:
            self.png_dir.setText(path)

    def _browse_wav(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Audio", "", "WAV audio (*.wav)")
        if path:
            self.wav.setText(path)

    def spec(self) -> RenderSpec:
        """The render these settings describe, on a snapshot of the project."""
        doc = self.ctx.document

        def path(edit: QLineEdit, on: bool = True) -> Path | None:
            text = edit.text().strip()
            return Path(text).expanduser() if on and text else None

        spec = RenderSpec(
            project=doc.project.model_copy(deep=True), project_path=doc.path,
            output=path(self.video, self.video_on.isChecked()), png_dir=path(self.png_dir),
            wav=path(self.wav), range=(self.start.value(), self.end.value()),
            fps=self.fps.value(), size=self.size.value() or None,
            model_dirs=list(self.ctx.settings.all_model_dirs()), device=self.ctx.app.device)
        if not spec.outputs():
            raise StudioError("choose at least one output: a video, PNG frames or a WAV")
        if not self.end.value() > self.start.value():
            raise StudioError("the range must end after it starts")
        return spec

    def add_to_queue(self) -> Job | None:
        try:
            spec = self.spec()
        except StudioError as exc:
            self.warning.setText(str(exc))
            return None
        name = f"Render {spec.outputs()[0].name}"
        return self.queue.add(spec, name)

    def refresh(self) -> None:
        self.list.clear()
        for job in self.queue.jobs:
            item = QListWidgetItem(_describe(job))
            item.setData(Qt.ItemDataRole.UserRole, job.id)
            self.list.addItem(item)

    def _cancel_selected(self) -> None:
        item = self.list.currentItem()
        if item is None:
            return
        for job in self.queue.jobs:
            if job.id == item.data(Qt.ItemDataRole.UserRole):
                self.queue.cancel(job)


def export_curves_dialog(ctx: StudioContext, parent: QWidget | None = None,
                         path: str | Path | None = None) -> Path | None:
    """File → Export → Animation curves: CSV (ARKit names) or JSON."""
    from studio.render.export import export_curves

    if path is None:
        path, _ = QFileDialog.getSaveFileName(parent, "Export animation curves", "curves.csv",
                                              "CSV (*.csv);;JSON (*.json)")
        if not path:
            return None
    try:
        out = export_curves(ctx.document.project, Path(path))
    except StudioError as exc:
        ctx.report_error("Export failed", str(exc))
        return None
    ctx.show_status(f"Exported {out}", 5000)
    return out


__all__ = ["RenderDialog", "RenderQueue", "export_curves_dialog"]
