"""Playback, Qt-free: the clock → playhead, the slow-machine policies, cached ranges and
the background frame worker (newest frame first, then prefetch into the cache)."""

import threading

import numpy as np
import pytest

from studio.render.cache import FrameCache
from studio.render.playback import (
    FrameWorker,
    PlaybackState,
    Playhead,
    advance,
    frame_index,
    frame_ranges,
)


def test_advance_follows_the_clock_loops_and_stops():
    assert advance(1.0, 0.5, 10.0) == (1.5, False)
    assert advance(9.0, 2.0, 10.0) == (10.0, True)
    assert advance(1.0, 2.5, 10.0, loop=(1.0, 3.0)) == (pytest.approx(1.5), False)
    assert advance(0.0, 5.0, 10.0, loop=(1.0, 3.0)) == (pytest.approx(1.0), False)
    assert advance(4.0, 1.0, 10.0, loop=(1.0, 3.0)) == (5.0, False)  # past the loop: plays on
    head = Playhead(2.0, clock=100.0)
    assert head.at(100.25, 10.0, None) == (2.25, False)


def test_frame_index_and_ranges():
    assert frame_index(0.0, 25) == 0 and frame_index(0.04, 25) == 1
    assert frame_index(0.0399, 25) == 0 and frame_index(-1, 25) == 0
    assert frame_ranges([5, 1, 2, 3, 7, 6], 10) == [(0.1, 0.4), (0.5, 0.8)]
    assert frame_ranges([], 25) == []


def test_policies_apply_only_when_frames_are_slower_than_real_time():
    s = PlaybackState()
    statuses = []
    s.events.status.connect(statuses.append)
    s.fps = 25.0  # 40 ms a frame
    s.set_playing(True, "No audio output device")
    assert "no sound" in s.status and "wall clock" in s.status and "real time" in s.status
    s.add_render_time(10.0)
    assert not s.slow and s.plan().live and s.plan().step == 1
    for _ in range(20):
        s.add_render_time(100.0)
    assert s.slow
    assert s.policy == "cached" and not s.plan().live
    assert "cached frames" in s.status
    s.set_policy("lower")
    assert s.plan().coarse and s.plan().live and "lower preview resolution" in s.status
    s.set_policy("reduced")
    plan = s.plan()
    assert plan.step == 3 and not plan.coarse  # 100 ms a frame: every third frame
    assert "8.33 fps" in s.status
    with pytest.raises(ValueError):
        s.set_policy("faster")
    s.set_playing(False)
    assert s.status == "" and statuses[-1] == ""


class GatedRender:
    """A render function the test releases frame by frame."""

    def __init__(self) -> None:
        self.calls = []
        self.gate = threading.Semaphore(0)

    def __call__(self, req, coarse):
        self.gate.acquire()
        self.calls.append((req, coarse))
        return np.full((2, 2, 3), req, np.uint8)


def _wait(cond, what):
    for _ in range(5000):
        if cond():
            return
        threading.Event().wait(0.002)
    raise AssertionError(what)


def test_worker_shows_the_newest_frame_first_then_prefetches():
    render = GatedRender()
    cache = FrameCache()
    shown, cached = [], []
    w = FrameWorker(render, cache, on_frame=lambda s, i, k, img: shown.append((s, i)),
                    on_cached=cached.append)
    try:
        w.prefetch([(10, "k10", 10), (11, "k11", 11)])
        w.show(1, "k1", 1)  # the worker may already be rendering frame 10
        w.show(2, "k2", 2)  # replaces frame 1: never rendered
        for _ in range(4):
            render.gate.release()
        _wait(lambda: w.idle and len(cached) == 2, "the worker did not finish")
        done = [r for r, _ in render.calls]
        assert 1 not in done and sorted(done) == [2, 10, 11]
        assert done.index(2) <= 1  # shown before the rest of the prefetch list
        assert shown == [(2, 2)] and cached == [10, 11]
        assert {"k2", "k10", "k11"} == cache.keys()
        # a cached frame is shown without rendering
        w.show(10, "k10", 10)
        _wait(lambda: len(shown) == 2, "the cached frame was not shown")
        assert len(render.calls) == 3
    finally:
        render.gate.release()
        w.shutdown()


def test_worker_waits_for_the_model_and_reports_failures():
    ready = threading.Event()
    errors, times = [], []

    def render(req, coarse):
        if req == "bad":
            raise ValueError("broken request")
        return np.zeros((1, 1, 3), np.uint8)

    ticks = iter(range(0, 10_000, 5))
    w = FrameWorker(render, FrameCache(), ready=ready.is_set,
                    on_error=lambda s, m: errors.append(m), on_render_ms=times.append,
                    clock=lambda: next(ticks) / 1000.0)
    try:
        w.prefetch([(0, "a", "ok"), (1, "b", "bad"), (2, "c", "ok")])
        assert not w.idle or not ready.is_set()
        threading.Event().wait(0.01)
        assert w.rendered == 0  # no model yet: nothing rendered
        ready.set()
        w.wake()
        _wait(lambda: w.idle and errors, "no error was reported")
        assert errors == ["broken request"] and w.rendered == 1
        assert "c" not in w.cache  # the list is dropped after a failure
        assert times == [5.0]  # the injected clock: one full frame took 5 ms
    finally:
        w.shutdown()
