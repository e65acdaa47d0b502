"""Run core jobs on worker threads and deliver their events on the UI thread."""

from __future__ import annotations

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal

from studio.core.jobs import Job, JobState, Progress


class _Bridge(QObject):
    """Qt signals emitted from worker threads arrive queued on the UI thread."""

    progressed = Signal(object, object)  # Job, Progress
    state_changed = Signal(object, object)  # Job, JobState


class _Runnable(QRunnable):
    def __init__(self, job: Job) -> None:
        super().__init__()
        self.job = job
        self.setAutoDelete(True)

    def run(self) -> None:
        self.job.run()


class JobRunner(QObject):
    """Starts jobs on a thread pool. Listen to ``progressed``/``finished`` on the UI thread."""

    added = Signal(object)  # Job
    progressed = Signal(object, object)  # Job, Progress
    state_changed = Signal(object, object)  # Job, JobState
    finished = Signal(object)  # Job (done, failed or cancelled)

    def __init__(self, max_threads: int = 2, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(max_threads)
        self.jobs: list[Job] = []
        self._bridge = _Bridge()
        self._bridge.progressed.connect(self.progressed)
        self._bridge.state_changed.connect(self._on_state)

    def start(self, job: Job) -> Job:
        self.jobs.append(job)
        job.progressed.connect(lambda p, j=job: self._bridge.progressed.emit(j, p))
        job.state_changed.connect(lambda s, j=job: self._bridge.state_changed.emit(j, s))
        self.added.emit(job)
        self.pool.start(_Runnable(job))
        return job

    def _on_state(self, job: Job, state: JobState) -> None:
        self.state_changed.emit(job, state)
        if state.finished:
            self.finished.emit(job)

    @property
    def running(self) -> list[Job]:
        return [j for j in self.jobs if not j.state.finished]

    def cancel_all(self) -> None:
        for job in self.running:
            job.cancel()

    def wait(self, msecs: int = 5000) -> bool:
        return self.pool.waitForDone(msecs)


__all__ = ["JobRunner", "Job", "Progress", "JobState"]
