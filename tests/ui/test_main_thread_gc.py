"""Cyclic garbage is collected by the UI thread's timer, never by a worker thread."""

from __future__ import annotations

import gc
import weakref

from studio.ui.main_thread_gc import MainThreadGC


class _Node:
    pass


def test_the_timer_collects_cycles_and_automatic_collection_stays_off(qtbot):
    keeper = MainThreadGC(interval_ms=10)
    try:
        assert not gc.isenabled()
        a, b = _Node(), _Node()
        a.other, b.other = b, a  # a cycle only the collector frees
        gone = weakref.ref(a)
        del a, b
        # young objects kept alive push the generation-0 count past its threshold, so the
        # next tick of the timer must collect (whatever else the test run allocated)
        hold = [[] for _ in range(keeper.threshold[0] * 2)]
        qtbot.waitUntil(lambda: gone() is None, timeout=10000)
        del hold
    finally:
        keeper.timer.stop()  # the session keeps automatic collection off (conftest)
