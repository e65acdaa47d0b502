"""Live face preview off the UI thread: newest request wins, stale results are dropped.

The UI sends stamped requests; one worker thread always renders the newest pending one
(older pending requests are skipped), and a result is shown only if nothing newer has been
shown already. When a full frame takes long, a quick low-resolution frame goes first.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, Signal

from studio.core.devices import DeviceChoice


@dataclass(frozen=True)
class FaceRequest:
    seed: int
    truncation: float
    mix_seed: int | None
    mix_layers: tuple[int, int]
    noise_mode: str
    latent: np.ndarray | None = None  # explicit w+ (inversion), overrides seed
    edits: np.ndarray | None = None  # additive w offset from controls


class FacePreview(QObject):
    """Owns the face engine on a worker thread and renders the newest request."""

    model_loaded = Signal(object)  # FaceEngine
    model_failed = Signal(str)
    frame_ready = Signal(int, object, float, bool)  # stamp, HxWx3 uint8, latency ms, is_final
    render_failed = Signal(int, str)

    LOW_RES_AFTER_MS = 120.0  # full frames slower than this get a quick low-res frame first

    def __init__(self, device: DeviceChoice, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.device = device
        self.engine = None
        self.low_res_first = True
        self._cond = threading.Condition()
        self._pending: tuple[int, FaceRequest, float] | None = None
        self._pending_model: Path | None = None
        self._stamp = 0
        self._shown_stamp = -1
        self._last_full_ms = 0.0
        self._stop = False
        self._busy = False
        self._times: deque[float] = deque(maxlen=30)
        self.rendered = 0  # frames actually rendered (tests: stale requests are skipped)
        self._thread = threading.Thread(target=self._loop, name="face-preview", daemon=True)
        self._thread.start()

    # -- UI thread ---------------------------------------------------------------------
    def load_model(self, path: Path) -> None:
        with self._cond:
            self._pending_model = Path(path)
            self._cond.notify()

    def request(self, req: FaceRequest) -> int:
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
        now = time.perf_counter()
        self._times.append(now)
        return True

    @property
    def fps(self) -> float:
        t = [x for x in self._times if x > time.perf_counter() - 2.0]
        if len(t) < 2:
            return 0.0
        return (len(t) - 1) / max(t[-1] - t[0], 1e-6)

    @property
    def idle(self) -> bool:
        with self._cond:
            return self._pending is None and self._pending_model is None and not self._busy

    def shutdown(self) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify()
        self._thread.join(5)

    # -- worker thread -------------------------------------------------------------------
    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._stop and self._pending is None and self._pending_model is None:
                    self._cond.wait()
                if self._stop:
                    return
                model, self._pending_model = self._pending_model, None
                job = None if model is not None else self._pending
                if job is not None:
                    self._pending = None
                self._busy = True
            try:
                if model is not None:
                    self._load(model)
                elif job is not None:
                    self._render(*job)
            finally:
                with self._cond:
                    self._busy = False

    def _load(self, path: Path) -> None:
        try:
            from studio.face.engine import FaceEngine
            from studio.face.model_file import load_face_model

            engine = FaceEngine(load_face_model(path), self.device)
        except Exception as exc:  # noqa: BLE001 - report, never crash the preview thread
            self.engine = None
            self.model_failed.emit(str(exc))
            return
        self.engine = engine
        self._last_full_ms = 0.0
        self.model_loaded.emit(engine)

    def _newer_pending(self, stamp: int) -> bool:
        with self._cond:
            return self._pending is not None and self._pending[0] > stamp

    def _render(self, stamp: int, req: FaceRequest, t0: float) -> None:
        engine = self.engine
        if engine is None:
            return
        try:
            if req.latent is not None:
                ws = np.asarray(req.latent, np.float32)
            else:
                a, b = req.mix_layers
                b = min(b, engine.num_ws)
                a = min(a, b - 1)
                ws = engine.ws_for(int(req.seed), req.truncation,
                                   req.mix_seed, (a, b) if req.mix_seed is not None else None)
            slow = self._last_full_ms > self.LOW_RES_AFTER_MS
            if self.low_res_first and slow and hasattr(engine, "render_preview"):
                low = engine.render_preview(ws, noise_mode=req.noise_mode, edits=req.edits,
                                             size=engine.resolution)
                self.frame_ready.emit(stamp, low, (time.perf_counter() - t0) * 1000, False)
                if self._newer_pending(stamp):
                    return  # the user moved on: skip the full frame for this one
            t1 = time.perf_counter()
            img = engine.render(ws, noise_mode=req.noise_mode, edits=req.edits)
            self._last_full_ms = (time.perf_counter() - t1) * 1000
            self.rendered += 1
            self.frame_ready.emit(stamp, img, (time.perf_counter() - t0) * 1000, True)
        except Exception as exc:  # noqa: BLE001
            self.render_failed.emit(stamp, str(exc))
