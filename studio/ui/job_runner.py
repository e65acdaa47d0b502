"""Run core jobs in their lanes and deliver their events on the UI thread.

A panel starts a job with its own callbacks::

    runner.start(job, on_progress=..., on_state=..., on_done=..., on_failed=...,
                 on_cancelled=..., on_finished=...)

and they run on the UI thread, in order (every progress event before the ending). The
runner's own signals (``added``, ``progressed``, ``state_changed``, ``finished``) are for
monitors that watch every job, such as the Jobs panel.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from PySide6.QtCore import QObject, Qt, Signal

from studio.core.jobs import Job, JobLanes, JobState, Lane, Progress
from studio.ui.worker_gate import WorkerGate


class _Bridge(QObject):
    """Qt signals emitted from worker threads arrive queued on the UI thread."""

    call = Signal(object)  # a callable to run on the UI thread
    progressed = Signal(object, object)  # Job, Progress
    state_changed = Signal(object, object)  # Job, JobState


class JobRunner(QObject):
    """Starts jobs in their lanes (:class:`~studio.core.jobs.JobLanes`); per-job callbacks
    and the monitor signals below arrive on the UI thread."""

    added = Signal(object)  # Job
    progressed = Signal(object, object)  # Job, Progress
    state_changed = Signal(object, object)  # Job, JobState
    finished = Signal(object)  # Job (done, failed or cancelled), after its own callbacks

    def __init__(self, widths: Mapping[Lane, int] | None = None,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.lanes = JobLanes(widths)
        self.jobs: list[Job] = []
        self._bridge = _Bridge(self)
        self._gate = WorkerGate()  # job threads may outlive the window: see shutdown()
        queued = Qt.ConnectionType.QueuedConnection  # always later, from the event loop
        self._bridge.call.connect(self._call, queued)
        self._bridge.progressed.connect(self.progressed, queued)
        self._bridge.state_changed.connect(self._on_state, queued)

    def start(self, job: Job, *, on_progress: Callable[[Progress], None] | None = None,
              on_state: Callable[[JobState], None] | None = None,
              on_done: Callable[[Any], None] | None = None,
              on_failed: Callable[[str], None] | None = None,
              on_cancelled: Callable[[], None] | None = None,
              on_finished: Callable[[Job], None] | None = None) -> Job:
        """Queue ``job`` in its lane; its callbacks run on the UI thread."""
        gate, bridge = self._gate, self._bridge
        job.deliver = lambda fn: gate.emit(bridge.call, fn)
        self.jobs.append(job)
        job.progressed.connect(lambda p, j=job: gate.emit(bridge.progressed, j, p))
        job.state_changed.connect(lambda s, j=job: gate.emit(bridge.state_changed, j, s))
        job.add_callbacks(on_progress=on_progress, on_state=on_state, on_done=on_done, on_failed=on_failed,
                          on_cancelled=on_cancelled, on_finished=on_finished)
        self.added.emit(job)
        self.lanes.submit(job)
        return job

    @staticmethod
    def _call(fn: Callable[[], None]) -> None:
        fn()

    def _on_state(self, job: Job, state: JobState) -> None:
        self.state_changed.emit(job, state)
        if state.finished:
            self._bridge.call.emit(lambda: self.finished.emit(job))  # after the job's own

    @property
    def running(self) -> list[Job]:
        return [j for j in self.jobs if not j.state.finished]

    def cancel_all(self) -> None:
        for job in self.running:
            job.cancel()

    def shutdown(self) -> None:
        """The window is closing: cancel every job and deliver nothing more from them."""
        self.cancel_all()
        self._gate.close()
        self.lanes.shutdown()  # the lane threads end once their (cancelled) jobs have

    def wait(self, msecs: int = 5000) -> bool:
        """Block (this thread) until every job has ended; False after ``msecs``."""
        return self.lanes.wait(msecs / 1000)


__all__ = ["JobRunner", "Job", "Progress", "JobState"]
