"""Signals from worker threads that never outlive their Qt object.

A worker thread (preview, playback, a job) may still be finishing a frame or a model load
when its window closes. Emitting a signal of a QObject whose C++ side is gone crashes the
process, so every emit from a worker goes through a gate: after :meth:`WorkerGate.close`
(called on the UI thread before the object is deleted) nothing more is emitted.
"""

from __future__ import annotations

import threading
from typing import Any


class WorkerGate:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open = True

    def emit(self, signal: Any, *args: Any) -> None:
        """``signal.emit(*args)`` unless the gate is closed (a queued emit is quick)."""
        with self._lock:
            if self._open:
                signal.emit(*args)

    def close(self) -> None:
        """No emits after this returns (waits for one in progress)."""
        with self._lock:
            self._open = False

    @property
    def is_open(self) -> bool:
        return self._open
