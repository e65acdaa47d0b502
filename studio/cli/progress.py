"""Run a job in the terminal with a progress bar on stderr; Ctrl-C (or SIGTERM) cancels it
cleanly. Without a terminal (a log file), a line is written when the message changes, at most
every ``log_interval`` seconds, plus the last one."""

from __future__ import annotations

import signal
import sys
import threading
import time
from typing import Any, TextIO

from studio.cli.crashlog import JobCrashed
from studio.core.errors import StudioError
from studio.core.jobs import Job, JobState, Progress


class ProgressBar:
    def __init__(self, title: str, stream: TextIO | None = None, width: int = 30,
                 log_interval: float = 5.0) -> None:
        self.title = title
        self.stream = stream or sys.stderr
        self.width = width
        self.log_interval = log_interval
        self._last_draw = 0.0
        self._tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self._t0 = time.monotonic()
        self._last_msg = ""
        self._last_line_at: float | None = None
        self._unwritten: str | None = None  # a log line held back by the interval

    def update(self, p: Progress) -> None:
        now = time.monotonic()
        if self._tty and now - self._last_draw < 0.1 and (p.fraction or 0) < 1:
            return
        self._last_draw = now
        frac = p.fraction
        if frac is None:
            bar = "?" * 3
            pct = "  ? %"
        else:
            frac = min(max(frac, 0.0), 1.0)
            filled = int(round(frac * self.width))
            bar = "#" * filled + "-" * (self.width - filled)
            pct = f"{frac * 100:5.1f}%"
        line = f"{self.title} [{bar}] {pct} {now - self._t0:6.1f}s {p.message}"
        if self._tty:
            self.stream.write("\r\x1b[2K" + line[:200])
        elif (frac is not None and frac >= 1) or (
                p.message != self._last_msg and (
                    self._last_line_at is None or now - self._last_line_at >= self.log_interval)):
            self.stream.write(line + "\n")
            self._last_line_at = now
            self._unwritten = None
        elif p.message != self._last_msg:
            self._unwritten = line
        self._last_msg = p.message
        self.stream.flush()

    def close(self) -> None:
        if self._tty:
            self.stream.write("\n")
            self.stream.flush()
        elif self._unwritten is not None:
            self.stream.write(self._unwritten + "\n")
            self._unwritten = None
            self.stream.flush()


def run_job(job: Job, stream: TextIO | None = None) -> Any:
    """Run ``job`` here with a progress bar. Returns its result; raises StudioError when it
    is cancelled or fails on bad input, and :class:`JobCrashed` (with the job's traceback,
    for the log file) when it fails with an unexpected error."""
    bar = ProgressBar(job.name, stream)
    job.progressed.connect(bar.update)
    previous: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():
        def on_signal(signum, frame):  # noqa: ARG001
            job.cancel()  # a training job writes its checkpoint, then stops
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, on_signal)
    try:
        job.run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        bar.close()
        job.progressed.disconnect(bar.update)
    if job.state is JobState.CANCELLED:
        raise StudioError(f"{job.name}: cancelled")
    if job.state is JobState.FAILED:
        if job.details:
            raise JobCrashed(f"{job.name}: {job.error}", job.details)
        raise StudioError(job.error or f"{job.name} failed")
    return job.result
