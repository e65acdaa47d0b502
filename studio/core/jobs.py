"""Long work as jobs: generators that report progress and honour cancellation.

A job function is a generator taking a :class:`JobContext`. It yields :class:`Progress`
events and returns its result (``return value`` inside the generator). Cancellation is
cooperative: the runner checks the context between events and the job calls
``ctx.check()`` inside long loops, so a cancel lands within one step. Runners (CLI progress
bar, GUI worker threads) drive a :class:`Job` the same way: ``job.run()``.
"""

from __future__ import annotations

import enum
import threading
import time
import traceback
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from psygnal import Signal

from studio.core.errors import StudioError


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


class Job:
    """A named unit of long work with its state, last progress and result."""

    progressed = Signal(object)  # Progress
    state_changed = Signal(object)  # JobState

    _ids = 0
    _ids_lock = threading.Lock()

    def __init__(self, name: str, fn: JobFunction, *args: Any, **kwargs: Any) -> None:
        with Job._ids_lock:
            Job._ids += 1
            self.id = Job._ids
        self.name = name
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

    def _set_state(self, state: JobState) -> None:
        self.state = state
        self.state_changed.emit(state)

    def cancel(self) -> None:
        self.ctx.cancel()
        if self.state is JobState.PENDING:
            self._set_state(JobState.CANCELLED)

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
        if self.state is not JobState.PENDING:
            return self.result
        self.started_at = time.monotonic()
        self._set_state(JobState.RUNNING)
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
            self.finished_at = time.monotonic()
            self._set_state(JobState.DONE)
        except JobCancelled:
            self.finished_at = time.monotonic()
            self._set_state(JobState.CANCELLED)
        except StudioError as exc:
            self.error = str(exc)
            self.finished_at = time.monotonic()
            self._set_state(JobState.FAILED)
        except Exception as exc:  # noqa: BLE001 - a job must never take the app down
            self.error = f"{type(exc).__name__}: {exc}"
            self.details = traceback.format_exc()
            self.finished_at = time.monotonic()
            self._set_state(JobState.FAILED)
        return self.result
