"""The terminal job runner: a log-friendly bar without a terminal; SIGTERM stops cleanly."""

from __future__ import annotations

import io
import os
import signal
import time

import pytest

from studio.cli.progress import ProgressBar, run_job
from studio.core.errors import StudioError
from studio.core.jobs import Job, Progress


def test_without_a_terminal_lines_are_rate_limited_and_the_last_is_kept():
    stream = io.StringIO()
    bar = ProgressBar("train", stream, log_interval=3600)
    for i in range(500):
        bar.update(Progress(i / 1000, f"step {i}"))
    bar.close()
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2, lines  # the first, and the last one held back by the interval
    assert lines[0].endswith("step 0") and lines[1].endswith("step 499")
    stream = io.StringIO()
    bar = ProgressBar("train", stream, log_interval=0)
    for i in range(5):
        bar.update(Progress(i / 4, f"step {i}"))
    bar.close()
    assert len(stream.getvalue().splitlines()) == 5


def test_sigterm_cancels_the_job_like_ctrl_c():
    seen = []

    def long_job(ctx):
        os.kill(os.getpid(), signal.SIGTERM)
        for i in range(1000):
            time.sleep(0.01)
            ctx.check()
            seen.append(i)
            yield Progress(i / 1000, "working")

    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(StudioError, match="cancelled"):
        run_job(Job("long", long_job), stream=io.StringIO())
    assert len(seen) < 100
    assert signal.getsignal(signal.SIGTERM) is before
