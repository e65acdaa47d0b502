import threading
import time

from studio.cli.progress import run_job
from studio.core.errors import StudioError
from studio.core.jobs import Job, JobError, JobState, Progress


def counting(ctx, n, fail_at=None):
    for i in range(n):
        ctx.check()
        if i == fail_at:
            raise JobError(f"step {i} went wrong")
        yield Progress((i + 1) / n, f"step {i + 1}", metrics={"loss": 1.0 / (i + 1)}, step=i)
    return n * 10


def test_job_reports_progress_and_result():
    job = Job("count", counting, 5)
    events = []
    job.progressed.connect(events.append)
    assert job.run() == 50
    assert job.state is JobState.DONE
    assert [e.fraction for e in events] == [0.2, 0.4, 0.6, 0.8, 1.0]
    assert events[-1].metrics["loss"] == 0.2


def test_job_error_is_clear():
    job = Job("count", counting, 5, fail_at=2)
    job.run()
    assert job.state is JobState.FAILED
    assert job.error == "step 2 went wrong"
    assert job.details is None  # an expected error has no traceback


def test_unexpected_exception_keeps_traceback():
    def broken(ctx):
        yield Progress(0.1)
        raise ZeroDivisionError("oops")

    job = Job("broken", broken)
    job.run()
    assert job.state is JobState.FAILED
    assert "ZeroDivisionError" in job.error and "Traceback" in job.details


def slow(ctx, started: threading.Event):
    started.set()
    while True:
        time.sleep(0.01)
        yield Progress(None, "working")


def test_cancel_lands_quickly():
    started = threading.Event()
    job = Job("slow", slow, started)
    t = threading.Thread(target=job.run)
    t.start()
    started.wait(2)
    job.cancel()
    t.join(5)
    assert not t.is_alive()  # the job noticed at its next step, not at the end
    assert job.state is JobState.CANCELLED


def test_pause_and_resume():
    started = threading.Event()
    job = Job("slow", slow, started)
    t = threading.Thread(target=job.run)
    t.start()
    started.wait(2)
    job.pause()
    assert job.state is JobState.PAUSED
    time.sleep(0.05)
    n = job.last
    time.sleep(0.1)
    assert job.last is n  # no progress while paused
    job.resume()
    time.sleep(0.05)
    job.cancel()
    t.join(2)
    assert job.state is JobState.CANCELLED


def test_cli_runner_prints_bar_and_raises(capsys):
    import io

    stream = io.StringIO()
    assert run_job(Job("count", counting, 3), stream=stream) == 30
    assert "count" in stream.getvalue() and "100.0%" in stream.getvalue()
    try:
        run_job(Job("count", counting, 3, fail_at=1), stream=io.StringIO())
    except StudioError as exc:
        assert "step 1 went wrong" in str(exc)
    else:
        raise AssertionError("expected an error")
