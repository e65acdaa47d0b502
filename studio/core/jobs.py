"""Long work as jobs: generators that report progress and honour cancellation.

A job function is a generator taking a :class:`JobContext`. It yields :class:`Progress`
events and returns its result (``return value`` inside the generator). Cancellation is
cooperative: the runner checks the context between events and the job calls
``ctx.check()`` inside long loops, so a cancel lands within one step.

Every job has a :class:`JobKind`, and each kind belongs to a :class:`Lane`: interactive
work (speak, a measurement, an import) never waits behind long work (training, a render,
an inversion), because each lane has its own worker threads (:class:`JobLanes`).

A job delivers its events to its own callbacks (:meth:`Job.add_callbacks`): ``on_progress``,
``on_state(state)``, ``on_done(result)``, ``on_failed(error)``, ``on_cancelled()`` and
``on_finished(job)`` (last, after any ending).
They go through ``job.deliver``: called directly by default (the command line, tests), on
the UI thread in the GUI (the runner sets ``deliver``). Runners drive a job the same way:
``job.run()`` on some thread.
"""

from __future__ import annotations

import enum
import logging
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from psygnal import Signal

from studio.core.errors import StudioError

log = logging.getLogger(__name__)


class JobCancelled(Exception):
    """Raised inside a job when the user cancelled it."""


class JobError(StudioError):
    """A failure with a message meant for the artist (no traceback shown)."""


@dataclass
class Progress:
    """One progress event. ``fraction`` is None when the amount of work is unknown."""

    fraction: float | None = None
    message: str = ""
    preview: np.ndarray | None = None  # H×W×3 uint8, e.g. a training sample grid
    metrics: dict[str, float] = field(default_factory=dict)  # for live plots
    step: int | None = None  # x value for the metrics


class JobState(enum.Enum):
    PENDING = "pending"
    RUNNING = "running"
    PAUSED = "paused"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self in (JobState.DONE, JobState.FAILED, JobState.CANCELLED)


class Lane(enum.Enum):
    """Where a job waits for a worker thread."""

    INTERACTIVE = "interactive"  # seconds: the artist is waiting for it
    LONG = "long"  # minutes to days: training, rendering, inversion, synthesis


class JobKind(enum.Enum):
    """What a job does; decides its lane."""

    SPEAK = "speak"  # synthesise speech (Speak, Add to timeline)
    MEASURE = "measure"  # a preview measurement
    EDIT = "edit"  # a short edit computed off the UI thread
    IMPORT = "import"  # import a model, a voice or a recording
    ESTIMATE = "estimate"  # time real training iterations (uses the device like a run)
    INGEST = "ingest"  # find, align and check the faces in a folder of photos
    TRAIN = "train"
    RENDER = "render"
    INVERT = "invert"
    SYNTH = "synth"  # make a synthetic data set
    TASK = "task"  # anything else: treated as long work

    @property
    def lane(self) -> Lane:
        return LANE_OF_KIND[self]


LANE_OF_KIND: dict[JobKind, Lane] = {
    **{k: Lane.LONG for k in JobKind},
    JobKind.SPEAK: Lane.INTERACTIVE,
    JobKind.MEASURE: Lane.INTERACTIVE,
    JobKind.EDIT: Lane.INTERACTIVE,
    JobKind.IMPORT: Lane.INTERACTIVE,
}
# Worker threads per lane: two long jobs (a training run and a render) can run together,
# and two interactive ones beside them.
LANE_WIDTHS: dict[Lane, int] = {Lane.INTERACTIVE: 2, Lane.LONG: 2}


class JobContext:
    """What a running job sees: cancellation and pause requests."""

    def __init__(self) -> None:
        self._cancel = threading.Event()
        self._resume = threading.Event()
        self._resume.set()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def cancel(self) -> None:
        self._cancel.set()
        self._resume.set()  # a paused job must wake up to see the cancel

    def pause(self) -> None:
        self._resume.clear()

    def resume(self) -> None:
        self._resume.set()

    @property
    def paused(self) -> bool:
        return not self._resume.is_set()

    def check(self) -> None:
        """Raise :class:`JobCancelled` if cancelled; block here while paused."""
        while not self._resume.wait(0.05):
            pass
        if self._cancel.is_set():
            raise JobCancelled()


JobFunction = Callable[..., Generator[Progress, None, Any]]
Deliver = Callable[[Callable[[], None]], None]


def call_now(fn: Callable[[], None]) -> None:
    """The default delivery: call the callback in the job's thread, never let it raise
    into the job."""
    try:
        fn()
    except Exception:  # noqa: BLE001 - a broken callback must not fail the job
        log.exception("a job callback failed")


@dataclass
class JobCallbacks:
    on_progress: Callable[[Progress], None] | None = None
    on_state: Callable[[JobState], None] | None = None  # running, paused, ..., the ending
    on_done: Callable[[Any], None] | None = None  # the result
    on_failed: Callable[[str], None] | None = None  # the error for the artist
    on_cancelled: Callable[[], None] | None = None
    on_finished: Callable[[Job], None] | None = None  # after any of the three above


class Job:
    """A named unit of long work with its kind, state, last progress and result."""

    progressed = Signal(object)  # Progress (emitted on the job's thread)
    state_changed = Signal(object)  # JobState (emitted on the thread that changed it)

    _ids = 0
    _ids_lock = threading.Lock()

    def __init__(self, name: str, fn: JobFunction, *args: Any,
                 kind: JobKind = JobKind.TASK, **kwargs: Any) -> None:
        with Job._ids_lock:
            Job._ids += 1
            self.id = Job._ids
        self.name = name
        self.kind = kind
        self._fn = fn
        self._args = args
        self._kwargs = kwargs
        self.ctx = JobContext()
        self.state = JobState.PENDING
        self.last: Progress = Progress(0.0, "waiting")
        self.result: Any = None
        self.error: str | None = None
        self.details: str | None = None  # traceback for the "details" view
        self.started_at: float | None = None
        self.finished_at: float | None = None
        self.deliver: Deliver = call_now
        self._callbacks: list[JobCallbacks] = []
        self._lock = threading.RLock()

    def __repr__(self) -> str:
        return f"<Job {self.id} {self.name!r} {self.kind.value} {self.state.value}>"

    @property
    def lane(self) -> Lane:
        return self.kind.lane

    # -- callbacks ---------------------------------------------------------------------------
    def add_callbacks(self, *, on_progress: Callable[[Progress], None] | None = None,
                      on_state: Callable[[JobState], None] | None = None,
                      on_done: Callable[[Any], None] | None = None,
                      on_failed: Callable[[str], None] | None = None,
                      on_cancelled: Callable[[], None] | None = None,
                      on_finished: Callable[[Job], None] | None = None) -> Job:
        """Have this job's events delivered to these callbacks (through ``deliver``).
        Added after the job ended, the ending is delivered at once. Returns the job."""
        cbs = JobCallbacks(on_progress, on_state, on_done, on_failed, on_cancelled,
                           on_finished)
        with self._lock:
            self._callbacks.append(cbs)
            ended = self.state.finished
        if ended:
            self._deliver_end([cbs])
        return self

    def _deliver_progress(self, event: Progress) -> None:
        for cbs in list(self._callbacks):
            if cbs.on_progress is not None:
                self._post(lambda f=cbs.on_progress: f(event))

    def _deliver_state(self, state: JobState) -> None:
        for cbs in list(self._callbacks):
            if cbs.on_state is not None:
                self._post(lambda f=cbs.on_state: f(state))

    def _deliver_end(self, callbacks: list[JobCallbacks]) -> None:
        for cbs in callbacks:
            if self.state is JobState.DONE and cbs.on_done is not None:
                self._post(lambda f=cbs.on_done, r=self.result: f(r))
            elif self.state is JobState.FAILED and cbs.on_failed is not None:
                self._post(lambda f=cbs.on_failed, e=self.error or "failed": f(e))
            elif self.state is JobState.CANCELLED and cbs.on_cancelled is not None:
                self._post(cbs.on_cancelled)
            if cbs.on_finished is not None:
                self._post(lambda f=cbs.on_finished: f(self))

    def _post(self, fn: Callable[[], None]) -> None:
        try:
            self.deliver(fn)
        except Exception:  # noqa: BLE001 - e.g. the window that listened is gone
            log.exception("could not deliver a callback of %s", self)

    # -- control -----------------------------------------------------------------------------
    def _set_state(self, state: JobState) -> None:
        self.state = state
        self.state_changed.emit(state)
        self._deliver_state(state)

    def _finish(self, state: JobState) -> None:
        with self._lock:
            self.finished_at = time.monotonic()
            self.state = state
            callbacks = list(self._callbacks)
        self.state_changed.emit(state)
        self._deliver_state(state)
        self._deliver_end(callbacks)

    def cancel(self) -> None:
        self.ctx.cancel()
        with self._lock:
            pending = self.state is JobState.PENDING
            if pending:
                self.state = JobState.CANCELLED  # run() will not start it now
        if pending:
            self._finish(JobState.CANCELLED)

    def pause(self) -> None:
        if self.state is JobState.RUNNING:
            self.ctx.pause()
            self._set_state(JobState.PAUSED)

    def resume(self) -> None:
        if self.state is JobState.PAUSED:
            self.ctx.resume()
            self._set_state(JobState.RUNNING)

    @property
    def elapsed(self) -> float:
        if self.started_at is None:
            return 0.0
        return (self.finished_at or time.monotonic()) - self.started_at

    def run(self) -> Any:
        """Drive the job to the end in this thread. Never raises; read ``state``."""
        with self._lock:
            if self.state is not JobState.PENDING:
                return self.result
            self.started_at = time.monotonic()
            self.state = JobState.RUNNING
        self.state_changed.emit(JobState.RUNNING)
        self._deliver_state(JobState.RUNNING)
        gen = None
        try:
            gen = self._fn(self.ctx, *self._args, **self._kwargs)
            while True:
                self.ctx.check()
                try:
                    event = next(gen)
                except StopIteration as stop:
                    self.result = stop.value
                    break
                if isinstance(event, Progress):
                    self.last = event
                    self.progressed.emit(event)
                    self._deliver_progress(event)
            final = JobState.DONE
        except JobCancelled:
            final = JobState.CANCELLED
        except StudioError as exc:
            self.error = str(exc)
            final = JobState.FAILED
        except Exception as exc:  # noqa: BLE001 - a job must never take the app down
            self.error = f"{type(exc).__name__}: {exc}"
            self.details = traceback.format_exc()
            final = JobState.FAILED
        if gen is not None and final is not JobState.DONE:
            # a job stopped between two events: run its cleanup (finally blocks) here, now
            try:
                gen.close()
            except Exception:  # noqa: BLE001
                log.exception("cleaning up %s failed", self)
        self._finish(final)
        return self.result


class JobLanes:
    """Runs jobs on worker threads, a queue per lane: a job waits only behind jobs of its
    own lane. Qt-free; the GUI's runner and headless tools share it."""

    def __init__(self, widths: Mapping[Lane, int] | None = None, name: str = "job") -> None:
        self.widths = {**LANE_WIDTHS, **(widths or {})}
        if any(w < 1 for w in self.widths.values()):
            raise ValueError("every lane needs at least one worker thread")
        self._name = name
        self._cond = threading.Condition()
        self._queues: dict[Lane, deque[Job]] = {lane: deque() for lane in Lane}
        self._threads: dict[Lane, list[threading.Thread]] = {lane: [] for lane in Lane}
        self._idle: dict[Lane, int] = {lane: 0 for lane in Lane}
        self._unfinished = 0
        self._closed = False

    def submit(self, job: Job) -> Job:
        lane = job.lane
        with self._cond:
            if self._closed:
                raise RuntimeError("these job lanes are shut down")
            self._queues[lane].append(job)
            self._unfinished += 1
            if (len(self._queues[lane]) > self._idle[lane]
                    and len(self._threads[lane]) < self.widths[lane]):
                n = len(self._threads[lane]) + 1
                t = threading.Thread(target=self._work, args=(lane,), daemon=True,
                                     name=f"{self._name}-{lane.value}-{n}")
                self._threads[lane].append(t)
                t.start()
            self._cond.notify_all()
        return job

    def queued(self, lane: Lane) -> list[Job]:
        with self._cond:
            return list(self._queues[lane])

    def _work(self, lane: Lane) -> None:
        queue = self._queues[lane]
        while True:
            with self._cond:
                self._idle[lane] += 1
                while not queue and not self._closed:
                    self._cond.wait()
                self._idle[lane] -= 1
                if not queue:  # shut down with nothing left to run: the thread ends
                    return
                job = queue.popleft()
            try:
                job.run()  # never raises
            finally:
                with self._cond:
                    self._unfinished -= 1
                    self._cond.notify_all()

    def shutdown(self) -> None:
        """Idle worker threads end (at once, or after the jobs still queued); no new jobs."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until every submitted job has ended; False if ``timeout`` passed first."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while self._unfinished:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._cond.wait(left)
        return True
