"""Garbage collection on the UI thread only.

Windows and panels hold reference cycles (signal lambdas that capture ``self``), so their
Qt wrappers are freed by Python's cyclic garbage collector, which runs in whichever thread
happens to allocate at the time: a preview or playback worker. Deleting Qt widgets off the
UI thread crashes the process. So automatic collection is switched off and a timer on the
UI thread collects instead, generation by generation as the counts call for it (the scheme
pyqtgraph's GarbageCollector uses).
"""

from __future__ import annotations

import gc

from PySide6.QtCore import QObject, QTimer


class MainThreadGC(QObject):
    def __init__(self, interval_ms: int = 500, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.threshold = gc.get_threshold()
        gc.disable()
        self.timer = QTimer(self)
        self.timer.timeout.connect(self.check)
        self.timer.start(interval_ms)

    def check(self) -> None:
        t0, t1, t2 = self.threshold
        c0, c1, c2 = gc.get_count()
        if c0 > t0:
            gc.collect(0)
            if c1 > t1:
                gc.collect(1)
                if c2 > t2:
                    gc.collect(2)

    def stop(self) -> None:
        self.timer.stop()
        gc.enable()


_installed: MainThreadGC | None = None


def install(app: QObject) -> MainThreadGC:
    """Collect garbage on ``app``'s (the UI) thread from now on (once per process)."""
    global _installed
    if _installed is None:
        _installed = MainThreadGC(parent=app)
    return _installed
