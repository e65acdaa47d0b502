"""Training → New photo set: ingest a folder of photos, review the crops, drop bad ones."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QIcon, QPixmap
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QProgressBar,
    QPushButton,
    QSplitter,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from studio.core import paths
from studio.core.errors import StudioError
from studio.core.jobs import Job, JobKind, JobState, Progress
from studio.ui.context import StudioContext

SIZES = (64, 128, 256, 512, 1024)


class PhotoSetDialog(QDialog):
    def __init__(self, ctx: StudioContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("New photo set")
        self.setObjectName("photoSetDialog")
        self.resize(820, 620)
        self.ctx = ctx
        self.job: Job | None = None
        self._running = False  # until the job's own ending reached this dialog
        self.dataset_dir: Path | None = None
        self.photos = QLineEdit()
        self.photos.setPlaceholderText("folder with your photos (JPEG, PNG, WebP, BMP, TIFF)")
        self.output = QLineEdit()
        self.output.setPlaceholderText("where the aligned crops go")
        self.photos.textChanged.connect(self._suggest_output)
        self.size = QComboBox()
        for s in SIZES:
            self.size.addItem(f"{s} px", s)
        self.size.setCurrentIndex(SIZES.index(256))
        self.all_faces = QCheckBox("Keep every face in a photo (not only the largest)")
        self.run_btn = QPushButton("Find and align faces")
        self.run_btn.setObjectName("primary")
        self.run_btn.clicked.connect(self.run)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.message = QLabel()
        self.message.setWordWrap(True)
        self.crops = QListWidget()
        self.crops.setObjectName("photoCrops")
        self.crops.setViewMode(QListWidget.ViewMode.IconMode)
        self.crops.setIconSize(QSize(96, 96))
        self.crops.setResizeMode(QListWidget.ResizeMode.Adjust)
        self.crops.setSelectionMode(QListWidget.SelectionMode.ExtendedSelection)
        self.rejected = QTreeWidget()
        self.rejected.setObjectName("photoRejected")
        self.rejected.setHeaderLabels(["Rejected file", "Why"])
        self.rejected.setRootIsDecorated(False)
        self.rejected.setColumnWidth(0, 180)
        self.remove_btn = QPushButton("Remove selected crops")
        self.remove_btn.clicked.connect(self.remove_selected)
        self.use_btn = QPushButton("Use for training")
        self.use_btn.clicked.connect(self.accept)
        self.close_btn = QPushButton("Close")
        self.close_btn.clicked.connect(self._close)

        form = QFormLayout()
        form.addRow("Photos", self._with_browse(self.photos))
        form.addRow("Data set", self._with_browse(self.output))
        form.addRow("Crop size", self.size)
        form.addRow("", self.all_faces)
        split = QSplitter(Qt.Orientation.Horizontal)
        left = QWidget()
        lv = QVBoxLayout(left)
        lv.setContentsMargins(0, 0, 0, 0)
        lv.addWidget(QLabel("Kept (select bad crops and remove them)"))
        lv.addWidget(self.crops)
        right = QWidget()
        rv = QVBoxLayout(right)
        rv.setContentsMargins(0, 0, 0, 0)
        rv.addWidget(QLabel("Rejected"))
        rv.addWidget(self.rejected)
        split.addWidget(left)
        split.addWidget(right)
        split.setSizes([520, 300])
        buttons = QHBoxLayout()
        buttons.addWidget(self.remove_btn)
        buttons.addStretch(1)
        buttons.addWidget(self.close_btn)
        buttons.addWidget(self.use_btn)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.run_btn)
        layout.addWidget(self.progress)
        layout.addWidget(self.message)
        layout.addWidget(split, 1)
        layout.addLayout(buttons)
        self._update_buttons()

    def _with_browse(self, edit: QLineEdit) -> QHBoxLayout:
        row = QHBoxLayout()
        row.addWidget(edit, 1)
        b = QPushButton("…")
        b.setFixedWidth(40)
        b.clicked.connect(lambda: self._browse(edit))
        row.addWidget(b)
        return row

    def _browse(self, edit: QLineEdit) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Choose a folder", edit.text())
        if folder:
            edit.setText(folder)

    def _suggest_output(self, text: str) -> None:
        name = Path(text).name
        if name and not self.output.isModified():
            self.output.setText(str(paths.data_dir() / "datasets" / name))

    # -- ingest --------------------------------------------------------------------------
    def run(self) -> Job | None:
        from studio.photos.ingest import IngestOptions, ingest_job

        photos, out = Path(self.photos.text().strip()), Path(self.output.text().strip())
        if not self.photos.text().strip() or not photos.is_dir():
            self.message.setText("Choose the folder that holds your photos.")
            return None
        if not self.output.text().strip():
            self.message.setText("Choose where the data set should go.")
            return None
        options = IngestOptions(all_faces=self.all_faces.isChecked())
        job = Job(f"Ingest {photos.name}", ingest_job, photos, out,
                  int(self.size.currentData()), options, kind=JobKind.INGEST)
        self.job = job
        self._running = True
        self.ctx.runner.start(job, on_progress=lambda p: self._on_progress(job, p),
                              on_finished=self._on_finished)
        self._update_buttons()
        return self.job

    def _on_progress(self, job: Job, p: Progress) -> None:
        if job is self.job:
            self.progress.setValue(int(1000 * (p.fraction or 0)))
            self.message.setText(p.message)

    def _on_finished(self, job: Job) -> None:
        if job is not self.job:
            return
        self._running = False
        if job.state is JobState.DONE:
            report = job.result
            self.dataset_dir = Path(report.dataset_dir)
            self.progress.setValue(1000)
            self.message.setText(report.summary().splitlines()[0])
            self.show_report(report)
        elif job.state is JobState.FAILED:
            self.message.setText(f"Failed: {job.error}")
        else:
            self.message.setText("Cancelled.")
        self._update_buttons()

    def show_report(self, report) -> None:
        self.rejected.clear()
        for f in report.rejected_files:
            item = QTreeWidgetItem([f.source, f.message or f.reason or ""])
            item.setToolTip(1, f.message)
            self.rejected.addTopLevelItem(item)
        self.refresh_crops()

    def refresh_crops(self) -> None:
        from studio.photos.dataset import load_dataset

        self.crops.clear()
        if self.dataset_dir is None:
            return
        data = load_dataset(self.dataset_dir)
        for img in data.get("images", []):
            name = img["file"]
            pix = QPixmap(str(self.dataset_dir / name))
            item = QListWidgetItem(QIcon(pix), name)
            item.setToolTip(f"{name} ← {img.get('source', '')}")
            self.crops.addItem(item)
        self._update_buttons()

    def remove_selected(self) -> None:
        from studio.photos.dataset import remove_from_dataset

        names = [i.text() for i in self.crops.selectedItems()]
        if not names or self.dataset_dir is None:
            return
        try:
            remove_from_dataset(self.dataset_dir, names)
        except StudioError as exc:
            self.message.setText(str(exc))
            return
        self.message.setText(f"Removed {len(names)} crop(s).")
        self.refresh_crops()

    def _close(self) -> None:
        if self.job is not None and not self.job.state.finished:
            self.job.cancel()
        self.reject()

    def _update_buttons(self) -> None:
        running = self._running
        self.run_btn.setEnabled(not running)
        self.remove_btn.setEnabled(self.crops.count() > 0)
        self.use_btn.setEnabled(self.crops.count() > 0 and not running)
