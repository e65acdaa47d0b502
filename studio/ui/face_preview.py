"""Live preview off the UI thread: newest request wins, stale results are dropped.

:class:`PreviewRunner` is generic: the UI sends stamped requests; one worker thread always
renders the newest pending one with a plain render function (older pending requests are
skipped), and a result is shown only if nothing newer has been shown already. When a full
frame takes long, a quick coarse frame goes first. :class:`FacePreview` is the runner for
face requests: it owns the face engine and renders with :func:`studio.face.request.render_request`,
the same function ``studio generate`` and the renderer use.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, Signal

from studio.core.devices import DeviceChoice
from studio.face.request import FaceRequest, render_request
from studio.ui.worker_gate import WorkerGate

__all__ = ["FacePreview", "FaceRequest", "PreviewRunner"]


class PreviewRunner(QObject):
    """Renders the newest request on a worker thread with ``render(request, coarse)``.

    ``run_on_worker(fn)`` queues setup work (loading a model) that runs before the next
    render; its result or error arrives as ``setup_done``/``setup_failed``."""

    frame_ready = Signal(int, object, float, bool)  # stamp, HxWx3 uint8, latency ms, is_final
    render_failed = Signal(int, str)
    setup_done = Signal(object)
    setup_failed = Signal(str)

    LOW_RES_AFTER_MS = 120.0  # full frames slower than this get a quick coarse frame first

    def __init__(self, name: str = "preview", parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.low_res_first = True
        self._cond = threading.Condition()
        self._pending: tuple[int, Any, float] | None = None
        self._pending_setup: Callable[[], Any] | None = None
        self._stamp = 0
        self._shown_stamp = -1
        self._last_full_ms = 0.0
        self._stop = False
        self._busy = False
        self._times: deque[float] = deque(maxlen=30)
        self.rendered = 0  # frames actually rendered (tests: stale requests are skipped)
        self.last_render_ms: float | None = None  # the last full frame's render time
        self._gate = WorkerGate()  # no signal after shutdown, even from a busy worker
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    # -- what a subclass provides --------------------------------------------------------
    def render(self, request: Any, coarse: bool) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    def can_render(self) -> bool:
        return True

    def can_coarse(self) -> bool:
        return False

    # -- UI thread ---------------------------------------------------------------------
    def run_on_worker(self, fn: Callable[[], Any]) -> None:
        with self._cond:
            self._pending_setup = fn
            self._cond.notify()

    def request(self, req: Any) -> int:
        with self._cond:
            self._stamp += 1
            self._pending = (self._stamp, req, time.perf_counter())
            self._cond.notify()
            return self._stamp

    def accept(self, stamp: int) -> bool:
        """Called on the UI thread for each arriving frame: False if it is stale."""
        if stamp < self._shown_stamp:
            return False
        self._shown_stamp = stamp
        self._times.append(time.perf_counter())
        return True

    @property
    def fps(self) -> float | None:
        """Frames per second while frames are arriving; None when idle."""
        now = time.perf_counter()
        t = [x for x in self._times if x > now - 2.0]
        if len(t) < 2:
            return None
        return (len(t) - 1) / max(t[-1] - t[0], 1e-6)

    @property
    def idle(self) -> bool:
        with self._cond:
            return self._pending is None and self._pending_setup is None and not self._busy

    def shutdown(self, timeout: float = 5.0) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify()
        self._gate.close()  # a model load may outlast the join below: it emits nothing
        self._thread.join(timeout)

    # -- worker thread -------------------------------------------------------------------
    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._stop and self._pending is None and self._pending_setup is None:
                    self._cond.wait()
                if self._stop:
                    return
                setup, self._pending_setup = self._pending_setup, None
                job = None if setup is not None else self._pending
                if job is not None:
                    self._pending = None
                self._busy = True
            try:
                if setup is not None:
                    self._setup(setup)
                elif job is not None:
                    self._render(*job)
            finally:
                with self._cond:
                    self._busy = False

    def _setup(self, fn: Callable[[], Any]) -> None:
        try:
            result = fn()
        except Exception as exc:  # noqa: BLE001 - report, never crash the preview thread
            self._gate.emit(self.setup_failed, str(exc))
            return
        self._last_full_ms = 0.0
        self._gate.emit(self.setup_done, result)

    def _newer_pending(self, stamp: int) -> bool:
        with self._cond:
            return self._pending is not None and self._pending[0] > stamp

    def _render(self, stamp: int, req: Any, t0: float) -> None:
        if not self.can_render():
            return
        try:
            slow = self._last_full_ms > self.LOW_RES_AFTER_MS
            if self.low_res_first and slow and self.can_coarse():
                low = self.render(req, True)
                self._gate.emit(self.frame_ready, stamp, low, (time.perf_counter() - t0) * 1000,
                                False)
                if self._newer_pending(stamp):
                    return  # the user moved on: skip the full frame for this one
            t1 = time.perf_counter()
            img = self.render(req, False)
            self._last_full_ms = (time.perf_counter() - t1) * 1000
            self.last_render_ms = self._last_full_ms
            self.rendered += 1
            self._gate.emit(self.frame_ready, stamp, img, (time.perf_counter() - t0) * 1000,
                            True)
        except Exception as exc:  # noqa: BLE001
            self._gate.emit(self.render_failed, stamp, str(exc))


class FacePreview(PreviewRunner):
    """The preview of face requests: owns a face engine, loaded on the worker thread."""

    model_loaded = Signal(object)  # FaceEngine
    model_failed = Signal(str)

    def __init__(self, device: DeviceChoice, parent: QObject | None = None) -> None:
        super().__init__("face-preview", parent)
        self.device = device
        self.engine = None
        self.model_path: Path | None = None
        self.setup_done.connect(self.model_loaded)
        self.setup_failed.connect(self.model_failed)

    def load_model(self, path: Path, device: DeviceChoice | None = None) -> None:
        """Load ``path`` on ``device`` (default: the current one) off the UI thread."""
        path = Path(path)
        device = device or self.device
        self.model_path = path

        def load():
            from studio.face.engine import FaceEngine
            from studio.face.model_file import load_face_model

            self.engine = None
            engine = FaceEngine(load_face_model(path, device=device.torch_device), device)
            self.engine = engine
            self.device = device
            return engine

        self.run_on_worker(load)

    def set_device(self, device: DeviceChoice) -> None:
        """Render on ``device`` from now on (reloads the model there)."""
        if device == self.device and self.engine is not None:
            return
        self.device = device
        if self.model_path is not None:
            self.load_model(self.model_path, device)

    def can_render(self) -> bool:
        return self.engine is not None

    def can_coarse(self) -> bool:
        return True

    def render(self, request: FaceRequest, coarse: bool) -> np.ndarray:
        return render_request(self.engine, request, coarse=coarse)
