import threading
import time

from studio.cli.progress import run_job
from studio.core.errors import StudioError
from studio.core.jobs import Job, JobError, JobKind, JobLanes, JobState, Lane, Progress


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


# -- kinds, lanes and per-job callbacks ------------------------------------------------------


def test_kinds_map_to_lanes():
    assert JobKind.SPEAK.lane is Lane.INTERACTIVE and JobKind.IMPORT.lane is Lane.INTERACTIVE
    assert JobKind.MEASURE.lane is Lane.INTERACTIVE
    for kind in (JobKind.TRAIN, JobKind.RENDER, JobKind.INVERT, JobKind.SYNTH,
                 JobKind.ESTIMATE, JobKind.TASK):
        assert kind.lane is Lane.LONG
    assert Job("x", counting, 1).kind is JobKind.TASK  # unclassified work counts as long


def test_callbacks_get_progress_then_the_result_in_order():
    seen = []
    job = Job("count", counting, 3).add_callbacks(
        on_progress=lambda p: seen.append(("progress", p.fraction)),
        on_state=lambda s: seen.append(("state", s)),
        on_done=lambda r: seen.append(("done", r)),
        on_failed=lambda e: seen.append(("failed", e)),
        on_finished=lambda j: seen.append(("finished", j.state)))
    job.run()
    assert seen == [("state", JobState.RUNNING), ("progress", 1 / 3), ("progress", 2 / 3),
                    ("progress", 1.0), ("state", JobState.DONE), ("done", 30),
                    ("finished", JobState.DONE)]


def test_failure_and_cancel_reach_their_own_callbacks():
    failed, cancelled = [], []
    Job("count", counting, 5, fail_at=1).add_callbacks(on_failed=failed.append).run()
    assert failed == ["step 1 went wrong"]
    job = Job("count", counting, 5).add_callbacks(on_cancelled=lambda: cancelled.append(1))
    job.cancel()  # still pending: it ends at once and never runs
    assert job.state is JobState.CANCELLED and cancelled == [1]
    assert job.run() is None and job.started_at is None
    late = []
    job.add_callbacks(on_finished=late.append)  # added after the end: delivered at once
    assert late == [job]


def test_a_broken_callback_does_not_fail_the_job():
    job = Job("count", counting, 2).add_callbacks(on_progress=lambda p: 1 / 0)
    assert job.run() == 20 and job.state is JobState.DONE


def test_cancelled_job_runs_its_cleanup_on_its_own_thread():
    started, cleaned = threading.Event(), []

    def with_cleanup(ctx):
        try:
            started.set()
            while True:
                yield Progress(None, "working")
                time.sleep(0.005)
        finally:
            cleaned.append(threading.current_thread().name)

    job = Job("clean", with_cleanup)
    t = threading.Thread(target=job.run, name="worker")
    t.start()
    started.wait(5)
    job.cancel()
    t.join(5)
    assert job.state is JobState.CANCELLED and cleaned == ["worker"]


def _blocking(ctx, started: threading.Event, release: threading.Event):
    started.set()
    while not release.wait(0.01):
        ctx.check()
        yield Progress(None, "busy")
    return "long done"


def test_interactive_job_runs_while_the_long_lane_is_full():
    lanes = JobLanes({Lane.LONG: 1, Lane.INTERACTIVE: 1})
    started, release = threading.Event(), threading.Event()
    train = lanes.submit(Job("Train", _blocking, started, release, kind=JobKind.TRAIN))
    render = lanes.submit(Job("Render", counting, 2, kind=JobKind.RENDER))
    assert started.wait(10)
    spoken = threading.Event()
    speak = Job("Speak", counting, 2, kind=JobKind.SPEAK).add_callbacks(
        on_done=lambda result: spoken.set())
    lanes.submit(speak)
    assert spoken.wait(10)  # while the long lane is still busy with the training run
    assert speak.state is JobState.DONE and speak.result == 20
    assert train.state is JobState.RUNNING and render.state is JobState.PENDING
    assert lanes.queued(Lane.LONG) == [render]
    release.set()
    assert lanes.wait(10)
    assert train.result == "long done" and render.state is JobState.DONE


def test_a_lane_runs_as_many_jobs_as_it_is_wide():
    lanes = JobLanes({Lane.LONG: 2})
    release = threading.Event()
    starts = [threading.Event(), threading.Event()]
    jobs = [lanes.submit(Job(f"Long {i}", _blocking, s, release, kind=JobKind.RENDER))
            for i, s in enumerate(starts)]
    assert all(s.wait(10) for s in starts)  # both at once, neither waits for the other
    for job in jobs:
        job.cancel()
    assert lanes.wait(10)
    assert all(j.state is JobState.CANCELLED for j in jobs)


def test_shut_down_lanes_end_their_threads_and_take_no_more_jobs():
    import pytest

    from studio.core.jobs import Job, JobLanes, Progress

    def quick(ctx):
        yield Progress(1.0, "done")
        return 7

    lanes = JobLanes()
    job = lanes.submit(Job("quick", quick))
    assert lanes.wait(10) and job.result == 7
    threads = [t for ts in lanes._threads.values() for t in ts]
    assert threads and all(t.is_alive() for t in threads)  # idle, waiting for work
    lanes.shutdown()
    for t in threads:
        t.join(10)
    assert not any(t.is_alive() for t in threads)
    with pytest.raises(RuntimeError):
        lanes.submit(Job("late", quick))
