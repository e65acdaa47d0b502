"""Timeline playback, Qt-free: the clock, the frame schedule, the real-time policy and the
background frame worker.

* :func:`advance` turns a clock reading into the playhead time (loop wrap, end stop): the
  picture follows the clock, so a slow frame is dropped, never a drift.
* :class:`PlaybackState` holds the user's choice for when frames cannot be rendered in real
  time (play cached frames, a lower preview resolution or a reduced rate), whether that is
  happening, which frames are cached (as time ranges for the timeline's ruler) and a status
  line; its psygnal events fire on the thread that changed it (the UI changes it on the UI
  thread only).
* :class:`FrameWorker` renders on one background thread: the frame to show (newest wins)
  first, then frames ahead of the playhead into the :class:`~studio.render.cache.FrameCache`.
  It renders with a function it is given (``render_request`` on the Face panel's engine),
  so there is one frame path and one copy of the model.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
from psygnal import Signal, SignalGroup

from studio.render.cache import FrameCache

__all__ = [
    "POLICIES", "FrameWorker", "PlaybackState", "Playhead", "advance", "frame_index",
    "frame_ranges", "frame_time",
]

# what to do when frames cannot be rendered in real time: key -> label
POLICIES = {
    "cached": "Play cached frames",
    "lower": "Lower preview resolution",
    "reduced": "Reduced frame rate",
}
MAX_RATE_DIVISOR = 8
SLOW_FACTOR = 0.9  # slower than this share of a frame's period is "cannot keep up"


def frame_index(t: float, fps: float) -> int:
    """The frame shown at ``t`` seconds (frame i covers [i/fps, (i+1)/fps))."""
    return max(0, int(math.floor(float(t) * fps + 1e-6)))


def frame_time(index: int, fps: float) -> float:
    return index / float(fps)


def advance(start: float, elapsed: float, duration: float,
            loop: tuple[float, float] | None = None) -> tuple[float, bool]:
    """The playhead ``elapsed`` seconds after playing from ``start``, and whether playback
    reached the end. Inside a loop (or before it) playback wraps from its end to its start;
    otherwise it stops at ``duration``."""
    t = start + max(0.0, elapsed)
    if loop is not None and start < loop[1]:
        a, b = loop
        if t >= b:
            return a + (t - b) % (b - a), False
        return t, False
    if t >= duration:
        return float(duration), True
    return t, False


def frame_ranges(indices: Iterable[int], fps: float) -> list[tuple[float, float]]:
    """Frame indices as merged time ranges ``[(start, end), ...]`` in seconds."""
    out: list[tuple[float, float]] = []
    run_start = prev = None
    for i in sorted(set(indices)):
        if prev is not None and i == prev + 1:
            prev = i
            continue
        if run_start is not None:
            out.append((frame_time(run_start, fps), frame_time(prev + 1, fps)))
        run_start = prev = i
    if run_start is not None:
        out.append((frame_time(run_start, fps), frame_time(prev + 1, fps)))
    return out


@dataclass
class Playhead:
    """Where playback started: the playhead time and the clock reading at that moment."""

    time: float
    clock: float

    def at(self, now: float, duration: float,
           loop: tuple[float, float] | None) -> tuple[float, bool]:
        return advance(self.time, now - self.clock, duration, loop)


class PlaybackEvents(SignalGroup):
    cache = Signal()  # the cached ranges changed
    status = Signal(str)  # the status line changed
    policy = Signal(str)  # the user chose another policy


@dataclass(frozen=True)
class RenderPlan:
    """How frames are made right now: every ``step``-th frame, coarse (lower resolution)
    or not, and whether frames not in the cache are rendered live while playing."""

    step: int = 1
    coarse: bool = False
    live: bool = True


class PlaybackState:
    """The playback policy, the measured render time, the cached ranges and a status line."""

    def __init__(self, policy: str = "cached") -> None:
        if policy not in POLICIES:
            raise ValueError(f"unknown playback policy {policy!r}")
        self.events = PlaybackEvents()
        self._policy = policy
        self.render_ms: float | None = None  # full frames, smoothed
        self.playing = False
        self.sound: str | None = None  # None: with sound; otherwise why there is none
        self.fps = 25.0
        self._ranges: list[tuple[float, float]] = []
        self._status = ""

    # -- policy and real time --------------------------------------------------------------
    @property
    def policy(self) -> str:
        return self._policy

    def set_policy(self, policy: str) -> None:
        if policy not in POLICIES:
            raise ValueError(f"unknown playback policy {policy!r}")
        if policy != self._policy:
            self._policy = policy
            self.events.policy.emit(policy)
            self._update_status()

    def add_render_time(self, ms: float) -> None:
        """A full frame took ``ms`` to render (smoothed; the first one counts as is)."""
        ms = float(ms)
        self.render_ms = ms if self.render_ms is None else 0.7 * self.render_ms + 0.3 * ms
        self._update_status()

    @property
    def period_ms(self) -> float:
        return 1000.0 / self.fps

    @property
    def slow(self) -> bool:
        """Full frames take longer than a frame's period: real time is out of reach."""
        return self.render_ms is not None and self.render_ms > SLOW_FACTOR * self.period_ms

    def plan(self) -> RenderPlan:
        if not self.slow:
            return RenderPlan()
        if self._policy == "lower":
            return RenderPlan(coarse=True)
        if self._policy == "reduced":
            step = math.ceil((self.render_ms or 0.0) / (SLOW_FACTOR * self.period_ms))
            return RenderPlan(step=max(2, min(MAX_RATE_DIVISOR, step)))
        return RenderPlan(live=False)

    # -- cached ranges ---------------------------------------------------------------------
    @property
    def cached_ranges(self) -> list[tuple[float, float]]:
        """The timeline's cached stretches in seconds, for the ruler."""
        return list(self._ranges)

    def set_cached_frames(self, indices: Iterable[int], fps: float) -> None:
        ranges = frame_ranges(indices, fps)
        if ranges != self._ranges:
            self._ranges = ranges
            self.events.cache.emit()

    # -- status ------------------------------------------------------------------------------
    def set_playing(self, playing: bool, sound: str | None = None) -> None:
        self.playing, self.sound = bool(playing), sound
        self._update_status()

    @property
    def status(self) -> str:
        return self._status

    def describe(self) -> str:
        if not self.playing:
            return ""
        parts = [f"Playing at {self.fps:g} fps"]
        if self.sound:
            parts.append(f"no sound ({self.sound}): picture on the wall clock")
        if self.slow:
            what = {"cached": "showing cached frames only",
                    "lower": "at a lower preview resolution",
                    "reduced": f"at {self.fps / self.plan().step:.3g} fps"}[self._policy]
            parts.append(f"too slow for real time ({self.render_ms:.0f} ms a frame): {what}")
        else:
            parts.append("real time")
        return " · ".join(parts)

    def _update_status(self) -> None:
        text = self.describe()
        if text != self._status:
            self._status = text
            self.events.status.emit(text)


@dataclass
class _Show:
    stamp: int
    index: int
    key: str
    request: Any
    coarse: bool


class FrameWorker:
    """One background thread: the newest frame to show first, then the prefetch list.

    ``render(request, coarse)`` makes a frame; ``ready()`` says whether it can now (the
    model is loaded). ``on_frame(stamp, index, key, image)`` delivers a shown frame,
    ``on_cached(index)`` a prefetched one, ``on_error(stamp, message)`` a failure, and
    ``on_render_ms(ms)`` the time of each full frame; all on the worker thread.
    """

    def __init__(self, render: Callable[[Any, bool], np.ndarray], cache: FrameCache, *,
                 ready: Callable[[], bool] = lambda: True,
                 on_frame: Callable[[int, int, str, np.ndarray], None] = lambda s, i, k, img: None,
                 on_cached: Callable[[int], None] = lambda i: None,
                 on_error: Callable[[int, str], None] = lambda s, m: None,
                 on_render_ms: Callable[[float], None] = lambda ms: None,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        self._render, self.cache, self._ready = render, cache, ready
        self.on_frame, self.on_cached, self.on_error = on_frame, on_cached, on_error
        self.on_render_ms, self._clock = on_render_ms, clock
        self._cond = threading.Condition()
        self._show: _Show | None = None
        self._prefetch: list[tuple[int, str, Any]] = []
        self._stamp = 0
        self._busy = False
        self._stop = False
        self.rendered = 0
        self._thread = threading.Thread(target=self._loop, name="playback-frames", daemon=True)
        self._thread.start()

    def show(self, index: int, key: str, request: Any, coarse: bool = False) -> int:
        """Render this frame next (replaces an older frame still waiting). Its stamp."""
        with self._cond:
            self._stamp += 1
            self._show = _Show(self._stamp, index, key, request, coarse)
            self._cond.notify()
            return self._stamp

    def prefetch(self, items: list[tuple[int, str, Any]]) -> None:
        """Render these ``(index, key, request)`` into the cache in order, when nothing is
        to be shown (replaces the previous list)."""
        with self._cond:
            self._prefetch = list(items)
            self._cond.notify()

    @property
    def prefetch_left(self) -> int:
        with self._cond:
            return len(self._prefetch)

    def wake(self) -> None:
        """Look again (the model became ready)."""
        with self._cond:
            self._cond.notify()

    @property
    def idle(self) -> bool:
        with self._cond:
            return self._show is None and not self._busy and not (
                self._prefetch and self._ready())

    def shutdown(self) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify()
        self._thread.join(5)

    def _next(self) -> tuple[_Show | None, tuple[int, str, Any] | None]:
        """Under the lock: the job to do now, or (None, None) to wait."""
        if not self._ready():
            return None, None
        if self._show is not None:
            show, self._show = self._show, None
            return show, None
        while self._prefetch:
            item = self._prefetch.pop(0)
            if item[1] not in self.cache:
                return None, item
        return None, None

    def _loop(self) -> None:
        while True:
            with self._cond:
                show, item = self._next()
                while not self._stop and show is None and item is None:
                    self._cond.wait(0.5)  # also wakes to look at ready() again
                    show, item = self._next()
                if self._stop:
                    return
                self._busy = True
            try:
                if show is not None:
                    self._do_show(show)
                elif item is not None:
                    self._do_prefetch(*item)
            finally:
                with self._cond:
                    self._busy = False

    def _make(self, key: str, request: Any, coarse: bool) -> np.ndarray:
        img = self.cache.get(key)
        if img is not None:
            return img
        t0 = self._clock()
        img = self._render(request, coarse)
        ms = (self._clock() - t0) * 1000.0
        self.rendered += 1
        if not coarse:
            self.on_render_ms(ms)
        self.cache.put(key, img)
        return img

    def _do_show(self, job: _Show) -> None:
        try:
            img = self._make(job.key, job.request, job.coarse)
        except Exception as exc:  # noqa: BLE001 - report, never kill the worker
            self.on_error(job.stamp, str(exc))
            return
        self.on_frame(job.stamp, job.index, job.key, img)

    def _do_prefetch(self, index: int, key: str, request: Any) -> None:
        try:
            self._make(key, request, False)
        except Exception as exc:  # noqa: BLE001
            self.on_error(0, str(exc))
            with self._cond:
                self._prefetch = []  # the same failure would repeat for every frame
            return
        self.on_cached(index)
