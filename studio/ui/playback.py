"""Timeline playback in the GUI: the viewport follows the playhead, Play runs the clock.

:class:`PlaybackController` listens to ``app.transport``: when the time changes (the
timeline's ruler is scrubbed, or playback advances it) the frame at that time is shown
from the render cache or rendered newest-wins on a background thread, with
:func:`~studio.render.frame.frame_request` and
:func:`~studio.face.request.render_request` on the Face panel's engine (one model in
memory, one frame path). While playing, the playhead follows the audio clock of the mix
played through sounddevice, or the wall clock when there is no audio device (the status
bar says so); late frames are dropped, never allowed to drift. Frames ahead of the
playhead are rendered into the cache in the background; ``state.cached_ranges`` (and
``cache_changed``) give the cached stretches for the ruler. When full frames are slower
than real time the user's choice applies: cached frames only, a lower preview resolution
or a reduced rate (:class:`~studio.render.playback.PlaybackState`).

:class:`TransportBar` is the play button, the time and the choice for slow machines.
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QMenu,
    QPushButton,
    QToolBar,
    QWidget,
)

from studio.core.errors import StudioError
from studio.face.request import render_request
from studio.render.cache import FrameCache, frame_key, model_stamp
from studio.render.frame import frame_request, frame_requests
from studio.render.playback import (
    POLICIES,
    FrameWorker,
    PlaybackState,
    Playhead,
    RenderPlan,
    advance,
    frame_index,
    frame_time,
)
from studio.ui.audio_player import AudioPlayer
from studio.ui.context import StudioContext
from studio.ui.face_preview import FacePreview
from studio.ui.worker_gate import WorkerGate

__all__ = ["PlaybackController", "TransportBar", "format_time", "install_playback"]

PREFETCH_S = 3.0  # render this far ahead of the playhead
PREFETCH_CHUNK = 24  # uncached frames per plan (bounds the UI thread's work on a replan)


def format_time(t: float) -> str:
    m, s = divmod(max(0.0, t), 60.0)
    return f"{int(m)}:{s:05.2f}"


class PlaybackController(QObject):
    frame_shown = Signal(int)  # the index of the frame now in the viewport
    cache_changed = Signal()  # state.cached_ranges changed
    status_changed = Signal(str)
    _frame = Signal(int, int, str, object)  # from the worker: stamp, index, key, image
    _cached = Signal(int)
    _failed = Signal(int, str)
    _render_ms = Signal(float)
    _mixed = Signal(int, object, float)  # generation, Mix or error text, mix start time

    TICK_MS = 10
    REPLAN_MS = 250

    def __init__(self, ctx: StudioContext, preview: FacePreview,
                 player: AudioPlayer | None = None, state: PlaybackState | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.ctx, self.doc, self.preview = ctx, ctx.document, preview
        self.transport = ctx.app.transport
        self.player = player if player is not None else AudioPlayer(self)
        self.state = state if state is not None else PlaybackState()
        self.clock = clock
        self.cache = FrameCache()
        gate = self._gate = WorkerGate()  # no signal from the worker after shutdown()
        self.worker = FrameWorker(
            self._render, self.cache, ready=lambda: self.preview.engine is not None,
            on_frame=lambda *a: gate.emit(self._frame, *a),
            on_cached=lambda *a: gate.emit(self._cached, *a),
            on_error=lambda *a: gate.emit(self._failed, *a),
            on_render_ms=lambda *a: gate.emit(self._render_ms, *a))
        self._keys: dict[int, str] = {}  # frame index -> cache key, this document revision
        self._model_stamp: str | None = None  # the loaded model file, as part of keys
        self._shown_key: str | None = None
        # the frame asked of the worker for the viewport; a result for anything else (the
        # document changed meanwhile, the Face panel showed a newer edit) is not shown
        self._wanted_key: str | None = None
        self._shown_slot: tuple | None = None  # what decided the shown frame (cheap check)
        self._accepted = 0
        self._anchor: Playhead | None = None
        self._audio_t0: float | None = None  # playhead time at the audio buffer's start
        self._audio_end = 0.0
        self._audio_gen = 0
        self._own_time: float | None = None
        self.frames_shown = 0
        self.shown_index: int | None = None
        self.bar: TransportBar | None = None  # set by install_playback
        self.status_label: QLabel | None = None
        self.menu: QMenu | None = None
        self.timer = QTimer(self)
        self.timer.setInterval(self.TICK_MS)
        self.timer.timeout.connect(self._tick)
        self._replan = QTimer(self)
        self._replan.setSingleShot(True)
        self._replan.setInterval(self.REPLAN_MS)
        self._replan.timeout.connect(self.plan_prefetch)
        self._last_plan = 0.0
        self._frame.connect(self._on_frame)
        self._cached.connect(self._on_cached)
        self._failed.connect(self._on_failed)
        self._render_ms.connect(self.state.add_render_time)
        self._mixed.connect(self._on_mixed)
        self.state.events.cache.connect(self.cache_changed.emit)
        self.state.events.status.connect(self.status_changed.emit)
        self.state.events.policy.connect(self._on_policy)
        self.transport.events.time.connect(self._on_time)
        self.transport.events.playing.connect(self._on_playing)
        self.doc.changed.connect(self._on_doc_changed)
        self.doc.replaced.connect(self._on_replaced)
        preview.model_loaded.connect(self._on_model_loaded)
        self.state.fps = float(self.doc.project.timeline.fps)

    # -- rendering (worker thread) ------------------------------------------------------------
    def _render(self, request: Any, coarse: bool) -> np.ndarray:
        engine = self.preview.engine
        if engine is None:
            raise StudioError("the face model is not loaded")
        return render_request(engine, request, coarse=coarse)

    def _key(self, request: Any, coarse: bool) -> str:
        device = self.preview.device
        if self._model_stamp is None:
            self._model_stamp = model_stamp(self.preview.model_path)
        return frame_key(request, f"{self._model_stamp}|coarse={coarse}",
                         device.device, device.precision)

    # -- what the viewport shows ------------------------------------------------------------------
    @property
    def fps(self) -> float:
        return float(self.doc.project.timeline.fps)

    def _plan(self) -> RenderPlan:
        return self.state.plan() if self.transport.playing else RenderPlan()

    def display(self, t: float) -> None:
        """Show the frame at ``t``: from the cache, or rendered (newest wins)."""
        if self.preview.engine is None:
            return
        plan, fps = self._plan(), self.fps
        index = frame_index(t, fps)
        index -= index % plan.step
        slot = (index, plan.coarse, self.doc.history.revision, id(self.preview.engine))
        if slot == self._shown_slot:
            return  # this frame is on screen or on its way
        try:
            req = frame_request(self.doc.project, frame_time(index, fps), self.doc.path)
        except StudioError as exc:
            self.ctx.show_status(f"Cannot render the frame at {t:.2f} s: {exc}", 5000)
            return
        key = self._key(req, plan.coarse)
        if not plan.coarse:
            self._keys[index] = key
        if key == self._shown_key:
            self._shown_slot = slot
            return
        img = self.cache.get(key)
        if img is not None:
            self._shown_slot = slot
            self._accepted = self.worker.show(index, key, req, plan.coarse)  # drop older ones
            self._present(index, key, img)
            return
        if plan.live:
            self._shown_slot = slot
            self._wanted_key = key
            self.worker.show(index, key, req, plan.coarse)
        # playing cached frames only: this one is not ready; keep the last one on screen

    def _present(self, index: int, key: str, img: np.ndarray) -> None:
        self.ctx.viewport.set_image(img)
        self._shown_key = key
        self.shown_index = index
        self.frames_shown += 1
        self.frame_shown.emit(index)

    def _on_frame(self, stamp: int, index: int, key: str, img: np.ndarray) -> None:
        if stamp < self._accepted:
            return  # a newer frame is on screen already
        self._accepted = stamp
        if key == self._wanted_key:  # else: rendered for a state that is gone: cache only
            self._wanted_key = None
            self._present(index, key, img)
        self._on_cached(index)

    def _on_failed(self, stamp: int, message: str) -> None:
        self.ctx.show_status(f"Playback frame failed: {message}", 5000)

    # -- transport ----------------------------------------------------------------------------------
    def _on_time(self, t: float) -> None:
        if self.transport.playing and t != self._own_time:
            self._restart_clock(t)  # the user moved the playhead while playing
        self.display(t)
        if not self.transport.playing:
            self._replan.start()

    def toggle(self) -> None:
        if self.transport.playing:
            self.transport.pause()
        else:
            self.transport.play()

    def _on_playing(self, playing: bool) -> None:
        if playing:
            t = self.transport.time
            loop = self.transport.loop
            duration = self.doc.project.timeline.duration
            if loop is None and t >= duration - 0.5 / self.fps:
                t = 0.0  # play from the end starts again at the start
                self._own_time = t
                self.transport.seek(t)
            self.state.fps = self.fps
            self._restart_clock(t)
            self.timer.start()
            self.plan_prefetch()
        else:
            self.timer.stop()
            self._anchor = None
            self._stop_audio()
            self.state.set_playing(False)
            self._shown_slot = None
            self.display(self.transport.time)  # full resolution, every frame
            self.plan_prefetch()

    def _restart_clock(self, t: float) -> None:
        self._anchor = Playhead(t, self.clock())
        self._stop_audio()
        self._start_audio(t)

    def _tick(self) -> None:
        if not self.transport.playing:
            return
        duration = self.doc.project.timeline.duration
        loop = self.transport.loop
        if self._audio_t0 is not None and not self.player.playing:
            # the mix ran out: carry on from its end on the wall clock
            self._anchor = Playhead(self._audio_end, self.clock())
            self._audio_t0 = None
        if self._audio_t0 is not None:
            t, ended = advance(self._audio_t0, self.player.position(), duration, loop)
        elif self._anchor is not None:
            t, ended = self._anchor.at(self.clock(), duration, loop)
        else:
            return
        wrapped = t < self.transport.time
        self._own_time = t
        if t == self.transport.time:
            self.display(t)  # no time event: a frame that was not ready may be now
        self.transport.seek(t)
        if wrapped:
            self._restart_clock(t)
        if ended:
            self.transport.pause()
            return
        now = self.clock()
        if now - self._last_plan > self.REPLAN_MS / 1000.0:
            self.plan_prefetch()

    # -- audio ----------------------------------------------------------------------------------------
    def _sound_reason(self) -> str | None:
        if self.player.available:
            return None
        return (self.player.message or "no audio output device").rstrip(".")

    def _start_audio(self, t: float) -> None:
        reason = self._sound_reason()
        self.state.set_playing(True, reason)
        if reason is not None or not self.doc.project.timeline.clips:
            return
        duration = self.doc.project.timeline.duration
        loop = self.transport.loop
        end = loop[1] if loop is not None and t < loop[1] else duration
        if not end > t:
            return
        self._audio_gen += 1
        gen, project, path = self._audio_gen, self.doc.project, self.doc.path

        def work() -> None:
            from studio.render.audio import mixdown

            try:
                mix: Any = mixdown(project, path, t, end)
            except (StudioError, OSError, ValueError) as exc:
                mix = str(exc)
            with contextlib.suppress(RuntimeError):  # the controller was deleted meanwhile
                self._gate.emit(self._mixed, gen, mix, t)

        threading.Thread(target=work, name="playback-mix", daemon=True).start()

    def _on_mixed(self, gen: int, mix: Any, t0: float) -> None:
        if gen != self._audio_gen or not self.transport.playing:
            return
        if isinstance(mix, str):
            self.ctx.show_status(f"Playing without sound: {mix}", 8000)
            return
        for w in mix.warnings:
            self.ctx.show_status(w, 8000)
        start = max(0.0, self.transport.time - t0)
        if self.player.play(mix.audio, mix.sample_rate, start=start):
            self._audio_t0 = t0
            self._audio_end = t0 + mix.duration
        else:
            self.state.set_playing(True, self._sound_reason() or "the audio output failed")

    def _stop_audio(self) -> None:
        self._audio_gen += 1
        self._audio_t0 = None
        self.player.stop()

    # -- the cache ahead of the playhead --------------------------------------------------------------
    def plan_prefetch(self) -> None:
        """Give the worker the frames ahead of the playhead that are not cached yet."""
        self._last_plan = self.clock()
        if self.preview.engine is None:
            return
        fps, t = self.fps, self.transport.time
        plan = self._plan()
        duration = self.doc.project.timeline.duration
        last = max(0, math.ceil(duration * fps) - 1)
        first = frame_index(t, fps)
        if self.transport.playing:  # frames due before they could be rendered are skipped
            ms = self.state.render_ms or 0.0
            first += 1 + math.ceil(ms / (1000.0 / fps))
        count = max(1, int(PREFETCH_S * fps / plan.step))
        indices = []
        loop = self.transport.loop
        for n in range(count):
            i = first + n * plan.step
            if loop is not None and first < round(loop[1] * fps) <= i:
                a, b = round(loop[0] * fps), round(loop[1] * fps)
                i = a + (i - b) % max(1, b - a)
            if i > last:
                break
            indices.append(i - i % plan.step)
        indices = [i for i in dict.fromkeys(indices) if i not in self._keys
                   or self._keys[i] not in self.cache][:PREFETCH_CHUNK]
        if not indices:
            self.worker.prefetch([])
            return
        try:
            reqs = frame_requests(self.doc.project, [frame_time(i, fps) for i in indices],
                                  self.doc.path)
        except StudioError:
            return
        items = []
        for i, req in zip(indices, reqs, strict=True):
            key = self._keys.setdefault(i, self._key(req, False))
            if key not in self.cache:
                items.append((i, key, req))
        self.worker.prefetch(items)

    def _on_cached(self, index: int) -> None:
        keys = self.cache.keys()
        self.state.set_cached_frames((i for i, k in self._keys.items() if k in keys), self.fps)
        if self.transport.playing and self.shown_index != index:
            self.display(self.transport.time)  # playing cached frames: this one may be due
        elif not self.transport.playing and self.worker.prefetch_left == 0:
            self._replan.start()  # this chunk is done: plan the next one

    def _on_policy(self, policy: str) -> None:
        self._shown_slot = None
        if self.transport.playing:
            self.display(self.transport.time)

    # -- document and model -----------------------------------------------------------------------------
    def _invalidate(self) -> None:
        self._keys.clear()
        self._shown_slot = None
        self._shown_key = None
        self._wanted_key = None
        self.state.fps = self.fps
        self.state.set_cached_frames((), self.fps)

    def _on_doc_changed(self, paths) -> None:
        self._invalidate()
        avatar_only = all(p[:1] == ("avatar",) for p in paths) and bool(paths)
        if not avatar_only:  # the Face panel renders avatar edits itself
            self.display(self.transport.time)
        self._replan.start()

    def _on_replaced(self) -> None:
        self.transport.pause()
        self._invalidate()
        self._replan.start()

    def _on_model_loaded(self, engine) -> None:
        self._model_stamp = None
        self._invalidate()
        self.worker.wake()
        self.display(self.transport.time)
        self._replan.start()

    # -- state for tests and the window ------------------------------------------------------------------
    @property
    def idle(self) -> bool:
        return self.worker.idle

    def shutdown(self) -> None:
        self._gate.close()
        self.timer.stop()
        self._replan.stop()
        self._stop_audio()
        for sig, slot in ((self.transport.events.time, self._on_time),
                          (self.transport.events.playing, self._on_playing)):
            with contextlib.suppress(Exception):
                sig.disconnect(slot)
        self.worker.shutdown()


class TransportBar(QWidget):
    """Play/pause, the playhead time, and what to do when the machine is too slow."""

    def __init__(self, controller: PlaybackController, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        transport = controller.transport
        self.play_btn = QPushButton("▶ Play")
        self.play_btn.setObjectName("playButton")
        self.play_btn.setToolTip("Play or pause the timeline (Space)")
        self.play_btn.clicked.connect(controller.toggle)
        self.time_label = QLabel()
        self.time_label.setObjectName("playheadTime")
        self.policy = QComboBox()
        self.policy.setObjectName("playbackPolicy")
        for key, label in POLICIES.items():
            self.policy.addItem(label, key)
        self.policy.setCurrentIndex(self.policy.findData(controller.state.policy))
        self.policy.setToolTip("When frames cannot be rendered in real time: show only frames "
                               "already cached, render them at a lower resolution, or render "
                               "fewer frames a second (the sound always plays in real time)")
        self.policy.activated.connect(
            lambda i: controller.state.set_policy(self.policy.itemData(i)))
        layout = QHBoxLayout(self)
        layout.setContentsMargins(4, 0, 4, 0)
        layout.addWidget(self.play_btn)
        layout.addWidget(self.time_label)
        layout.addSpacing(12)
        layout.addWidget(QLabel("If too slow:"))
        layout.addWidget(self.policy)
        layout.addStretch(1)
        transport.events.time.connect(self._show_time)
        transport.events.playing.connect(self._show_playing)
        controller.doc.changed.connect(lambda paths: self._show_time(transport.time))
        self._show_time(transport.time)

    def _show_time(self, t: float) -> None:
        duration = self.controller.doc.project.timeline.duration
        self.time_label.setText(f"{format_time(t)} / {format_time(duration)}")

    def _show_playing(self, playing: bool) -> None:
        self.play_btn.setText("❚❚ Pause" if playing else "▶ Play")


def install_playback(window: QMainWindow, ctx: StudioContext,
                     preview: FacePreview) -> PlaybackController:
    """Give ``window`` playback: the controller, the transport bar (a tool bar at the
    bottom), a status-bar label that says how it plays, and the Playback menu (Space
    plays or pauses, Home and End go to the start and the end)."""
    controller = PlaybackController(ctx, preview, state=ctx.playback, parent=window)
    bar = QToolBar("Transport", window)
    bar.setObjectName("transportBar")
    bar.setMovable(False)
    controller.bar = TransportBar(controller)
    bar.addWidget(controller.bar)
    window.addToolBar(Qt.ToolBarArea.BottomToolBarArea, bar)
    label = QLabel("")
    label.setObjectName("playbackLabel")
    label.hide()

    def show_status(text: str) -> None:
        label.setText(text)
        label.setVisible(bool(text))

    controller.status_changed.connect(show_status)
    window.statusBar().insertPermanentWidget(0, label)
    controller.status_label = label
    menu = QMenu("&Playback", window)
    help_menu = getattr(window, "help_menu", None)
    if help_menu is not None:
        window.menuBar().insertMenu(help_menu.menuAction(), menu)
    else:
        window.menuBar().addMenu(menu)
    transport = controller.transport
    for text, slot, key, name in (
        ("&Play / Pause", controller.toggle, Qt.Key.Key_Space, "actionPlayPause"),
        # the one owner of Home/End (window-wide); the timeline widget leaves them to us
        ("Go to &start", lambda: transport.seek(0.0),
         Qt.Key.Key_Home, "actionGoStart"),
        ("Go to &end", lambda: transport.seek(controller.doc.project.timeline.duration),
         Qt.Key.Key_End, "actionGoEnd"),
    ):
        action = QAction(text, window)
        action.setShortcut(QKeySequence(key))
        action.setObjectName(name)
        action.triggered.connect(slot)
        menu.addAction(action)
    controller.menu = menu
    return controller
