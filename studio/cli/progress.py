"""Run a job in the terminal with a progress bar on stderr; Ctrl-C cancels it cleanly."""

from __future__ import annotations

import signal
import sys
import threading
import time
from typing import Any, TextIO

from studio.core.errors import StudioError
from studio.core.jobs import Job, JobState, Progress


class ProgressBar:
    def __init__(self, title: str, stream: TextIO | None = None, width: int = 30) -> None:
        self.title = title
        self.stream = stream or sys.stderr
        self.width = width
        self._last_draw = 0.0
        self._tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self._t0 = time.monotonic()
        self._last_msg = ""

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
        elif p.message != self._last_msg or (frac is not None and frac >= 1):
            self.stream.write(line + "\n")
        self._last_msg = p.message
        self.stream.flush()

    def close(self) -> None:
        if self._tty:
            self.stream.write("\n")
            self.stream.flush()


def run_job(job: Job, stream: TextIO | None = None) -> Any:
    """Run ``job`` here with a progress bar. Returns its result or raises StudioError."""
    bar = ProgressBar(job.name, stream)
    job.progressed.connect(bar.update)
    previous = None
    if threading.current_thread() is threading.main_thread():
        def on_sigint(signum, frame):  # noqa: ARG001
            job.cancel()
        previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        job.run()
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
        bar.close()
        job.progressed.disconnect(bar.update)
    if job.state is JobState.CANCELLED:
        raise StudioError(f"{job.name}: cancelled")
    if job.state is JobState.FAILED:
        raise StudioError(job.error or f"{job.name} failed")
    return job.result
