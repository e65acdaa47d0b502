"""A worker that outlives its window emits nothing into the deleted Qt object."""

from __future__ import annotations

import threading

from PySide6.QtCore import QCoreApplication

from studio.ui.face_preview import PreviewRunner


def test_a_busy_worker_emits_nothing_after_shutdown(qtbot):
    runner = PreviewRunner("test-runner")
    got = []
    runner.setup_done.connect(got.append)
    runner.setup_failed.connect(got.append)
    started, release = threading.Event(), threading.Event()

    def slow_load():  # a model load that takes longer than the window takes to close
        started.set()
        release.wait(10)
        return "engine"

    runner.run_on_worker(slow_load)
    assert started.wait(10)
    runner.shutdown(timeout=0.05)  # the window closes while the load goes on
    release.set()
    runner._thread.join(10)
    assert not runner._thread.is_alive()
    QCoreApplication.processEvents()  # deliver anything that was queued
    assert got == []
    runner.deleteLater()


def test_before_shutdown_results_arrive(qtbot):
    runner = PreviewRunner("test-runner")
    with qtbot.waitSignal(runner.setup_done, timeout=10000) as blocker:
        runner.run_on_worker(lambda: "engine")
    assert blocker.args == ["engine"]
    runner.shutdown()
