"""The Jobs panel: running and finished jobs with progress, pause, cancel and errors."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from studio.core.jobs import Job, JobState, Progress
from studio.ui.job_runner import JobRunner

COL_NAME, COL_PROGRESS, COL_STATE, COL_MESSAGE = range(4)


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


class JobsPanel(QWidget):
    def __init__(self, runner: JobRunner, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.runner = runner
        self.tree = QTreeWidget()
        self.tree.setObjectName("jobsTree")
        self.tree.setHeaderLabels(["Job", "Progress", "State", "Message"])
        self.tree.setRootIsDecorated(False)
        self.tree.header().setSectionResizeMode(COL_MESSAGE, QHeaderView.ResizeMode.Stretch)
        self.tree.setColumnWidth(COL_NAME, 150)
        self.tree.setColumnWidth(COL_PROGRESS, 120)
        self.tree.currentItemChanged.connect(self._update_buttons)
        self.cancel_btn = QPushButton("Cancel")
        self.pause_btn = QPushButton("Pause")
        self.clear_btn = QPushButton("Clear finished")
        self.cancel_btn.clicked.connect(self.cancel_selected)
        self.pause_btn.clicked.connect(self.toggle_pause_selected)
        self.clear_btn.clicked.connect(self.clear_finished)
        self.details = QPlainTextEdit()
        self.details.setObjectName("jobDetails")
        self.details.setReadOnly(True)
        self.details.setMaximumHeight(90)
        self.details.setPlaceholderText("Select a job to see its details and errors.")
        self.empty = QLabel("No jobs yet. Training, rendering and synthesis show up here.")
        self.empty.setObjectName("hint")
        buttons = QHBoxLayout()
        for b in (self.pause_btn, self.cancel_btn):
            buttons.addWidget(b)
        buttons.addStretch(1)
        buttons.addWidget(self.clear_btn)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.empty)
        layout.addWidget(self.tree, 1)
        layout.addLayout(buttons)
        layout.addWidget(self.details)
        self._items: dict[int, QTreeWidgetItem] = {}
        self._bars: dict[int, QProgressBar] = {}
        runner.added.connect(self._add)
        runner.progressed.connect(self._progress)
        runner.state_changed.connect(self._state)
        self._update_buttons()

    def _add(self, job: Job) -> None:
        item = QTreeWidgetItem([job.name, "", job.state.value, ""])
        item.setData(0, Qt.ItemDataRole.UserRole, job.id)
        item.setToolTip(COL_NAME, f"{job.name} ({job.kind.value}, {job.lane.value} lane)")
        self.tree.insertTopLevelItem(0, item)
        bar = QProgressBar()
        bar.setRange(0, 1000)
        bar.setValue(0)
        self.tree.setItemWidget(item, COL_PROGRESS, bar)
        self._items[job.id] = item
        self._bars[job.id] = bar
        self.empty.hide()
        if self.tree.currentItem() is None:
            self.tree.setCurrentItem(item)
        self._update_buttons()

    def _progress(self, job: Job, p: Progress) -> None:
        item = self._items.get(job.id)
        if item is None:
            return
        bar = self._bars[job.id]
        if p.fraction is None:
            bar.setRange(0, 0)  # busy indicator
        else:
            bar.setRange(0, 1000)
            bar.setValue(int(round(min(max(p.fraction, 0.0), 1.0) * 1000)))
        item.setText(COL_MESSAGE, p.message)
        if self.tree.currentItem() is item:
            self._show_details(job)

    def _state(self, job: Job, state: JobState) -> None:
        item = self._items.get(job.id)
        if item is None:
            return
        item.setText(COL_STATE, state.value)
        bar = self._bars[job.id]
        if state is JobState.DONE:
            bar.setRange(0, 1000)
            bar.setValue(1000)
        elif state.finished and bar.maximum() == 0:
            bar.setRange(0, 1000)
        if state is JobState.FAILED:
            item.setText(COL_MESSAGE, job.error or "failed")
            item.setForeground(COL_STATE, Qt.GlobalColor.red)
        elif state is JobState.DONE:
            item.setText(COL_MESSAGE, f"done in {_duration(job.elapsed)}")
        elif state is JobState.CANCELLED:
            item.setText(COL_MESSAGE, "cancelled" + (f" after {_duration(job.elapsed)}"
                                                     if job.started_at is not None else ""))
        if self.tree.currentItem() is item:
            self._show_details(job)
        self._update_buttons()

    def job_for(self, item: QTreeWidgetItem | None) -> Job | None:
        if item is None:
            return None
        job_id = item.data(0, Qt.ItemDataRole.UserRole)
        return next((j for j in self.runner.jobs if j.id == job_id), None)

    def selected_job(self) -> Job | None:
        return self.job_for(self.tree.currentItem())

    def _show_details(self, job: Job) -> None:
        lines = [f"{job.name} ({job.kind.value}, {job.lane.value} lane): {job.state.value}, "
                 f"{job.elapsed:.1f} s"]
        if job.last.message:
            lines.append(job.last.message)
        if job.error:
            lines.append(f"Error: {job.error}")
        if job.details:
            lines.append(job.details)
        self.details.setPlainText("\n".join(lines))

    def _update_buttons(self, *args) -> None:
        job = self.selected_job()
        active = job is not None and not job.state.finished
        self.cancel_btn.setEnabled(active)
        self.pause_btn.setEnabled(active)
        self.pause_btn.setText("Resume" if job is not None and job.state is JobState.PAUSED
                               else "Pause")
        if job is not None:
            self._show_details(job)
        self.clear_btn.setEnabled(any(j.state.finished for j in self.runner.jobs))

    def cancel_selected(self) -> None:
        job = self.selected_job()
        if job is not None:
            job.cancel()

    def toggle_pause_selected(self) -> None:
        job = self.selected_job()
        if job is None:
            return
        if job.state is JobState.PAUSED:
            job.resume()
        else:
            job.pause()

    def clear_finished(self) -> None:
        for job in [j for j in self.runner.jobs if j.state.finished]:
            item = self._items.pop(job.id, None)
            self._bars.pop(job.id, None)
            if item is not None:
                self.tree.takeTopLevelItem(self.tree.indexOfTopLevelItem(item))
            self.runner.jobs.remove(job)
        self.empty.setVisible(not self.runner.jobs)
        self.details.clear()
        self._update_buttons()
