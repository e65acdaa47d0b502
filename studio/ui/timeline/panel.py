"""The Timeline panel: toolbar, lanes view and curve editor.

Every edit is a timeline command (:mod:`studio.timeline`) pushed on the document's
history; the playhead and loop are the app's transport (``app.transport``): the panel
seeks and sets the loop, and draws what the transport says. Playback itself (the play
button, Space, the audio clock) belongs to the player.
"""

from __future__ import annotations

import contextlib

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QSplitter, QVBoxLayout, QWidget

from studio.core.errors import StudioError
from studio.core.history import Batch, Command
from studio.timeline import (
    DeleteClip,
    DeleteKeys,
    DeleteTrack,
    KeySpec,
    PutKeys,
    SplitClip,
    key_channels,
)
from studio.ui.context import StudioContext
from studio.ui.timeline.curve_editor import CurveEditor
from studio.ui.timeline.lanes import LanesView
from studio.ui.timeline.layout import timecode

_clipboard: dict[str, list[KeySpec]] = {}  # channel -> keys from 0 s (shared by panels)


class TimelinePanel(QWidget):
    def __init__(self, ctx: StudioContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.doc = ctx.document
        self.transport = ctx.app.transport
        self.lanes = LanesView(self)
        self.editor = CurveEditor(self)
        self.key_btn = QPushButton("Key controls")
        self.key_btn.setToolTip("Key the current control values at the playhead")
        self.key_btn.clicked.connect(lambda: self.key_controls())
        self.split_btn = QPushButton("Split clip")
        self.split_btn.setToolTip("Split the selected clip at the playhead")
        self.split_btn.clicked.connect(self.split_clip)
        self.delete_track_btn = QPushButton("Delete track")
        self.delete_track_btn.clicked.connect(self.delete_track)
        self.fit_btn = QPushButton("Fit")
        self.fit_btn.setToolTip("Show the whole timeline")
        self.fit_btn.clicked.connect(self.lanes.fit)
        self.time_label = QLabel()
        self.summary = QLabel()
        self.summary.setObjectName("hint")
        bar = QHBoxLayout()
        for w in (self.key_btn, self.split_btn, self.delete_track_btn, self.fit_btn):
            bar.addWidget(w)
        bar.addWidget(self.summary, 1)
        bar.addWidget(self.time_label)
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(self.lanes)
        split.addWidget(self.editor)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 1)
        split.setSizes([900, 320])
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addLayout(bar)
        lay.addWidget(split, 1)
        self.doc.changed.connect(self._on_doc_changed)
        self.doc.replaced.connect(self.refresh)
        self.lanes.selection_changed.connect(self._on_selection)
        ev = self.transport.events
        ev.time.connect(self.lanes.on_transport)
        ev.time.connect(self._on_time)
        ev.loop.connect(self.lanes.on_transport)
        self.destroyed.connect(lambda *_: self._disconnect(ev))
        self.refresh()

    def _disconnect(self, ev) -> None:
        for sig, slot in ((ev.time, self.lanes.on_transport), (ev.time, self._on_time),
                          (ev.loop, self.lanes.on_transport)):
            with contextlib.suppress(ValueError, RuntimeError):
                sig.disconnect(slot)

    # -- document → view ------------------------------------------------------------------
    def _on_doc_changed(self, paths) -> None:
        if any(p == () or p[:1] == ("timeline",) or p[:1] == ("avatar",) for p in paths):
            self.refresh()

    def refresh(self) -> None:
        tl = self.doc.project.timeline
        self.lanes.rebuild()
        self.editor.refresh()
        self.summary.setText(f"{len(tl.tracks)} tracks · {len(tl.clips)} clips · "
                             f"{tl.duration:.2f} s at {tl.fps} fps")
        self._update_buttons()
        self._on_time(self.transport.time)

    def _on_time(self, t: float) -> None:
        with contextlib.suppress(RuntimeError):  # the view may be gone
            self.time_label.setText(f"{timecode(t, self.doc.project.timeline.fps)}  "
                                    f"({t:.2f} s)")

    def _on_selection(self) -> None:
        self.editor.refresh()
        self._update_buttons()

    def current_track_changed(self) -> None:
        self.editor.refresh()
        self._update_buttons()

    def _update_buttons(self) -> None:
        self.key_btn.setEnabled(bool(self.control_values()))
        self.split_btn.setEnabled(self.lanes.current_clip is not None)
        track = self._current_track()
        self.delete_track_btn.setEnabled(track is not None and not track.locked)

    def _current_track(self):
        tid = self.lanes.current_track
        return next((t for t in self.doc.project.timeline.tracks if t.id == tid), None)

    # -- edits ------------------------------------------------------------------------------
    def push(self, cmd: Command, close: bool = True, quiet: bool = False) -> bool:
        try:
            self.doc.push(cmd)
        except StudioError as exc:
            if not quiet:
                self.ctx.report_error("Timeline edit refused", str(exc))
            return False
        finally:
            if close:
                self.doc.history.close_merge()
        return True

    def control_values(self, channels: list[str] | None = None) -> dict[str, float]:
        """The values to key: the avatar's controls (as the Face panel shows them), only
        ``channels`` when given (the pinned controls)."""
        controls = self.doc.project.avatar.controls
        if channels is None:
            return dict(controls)
        return {ch: controls[ch] for ch in channels if ch in controls}

    def key_controls(self, channels: list[str] | None = None) -> bool:
        """Keys at the playhead for ``channels`` (default: every control), one undo step."""
        values = self.control_values(channels)
        if not values:
            return False
        cmd = key_channels(values, self.transport.time)
        ok = self.push(cmd)
        if ok:
            self._select(set(cmd.added_refs))
        return ok

    def _select(self, refs: set) -> None:
        self.lanes.selection = refs
        self.lanes.selection_changed.emit()
        self.lanes.update()

    def copy_keys(self) -> int:
        tl = self.doc.project.timeline
        refs = self.lanes.selection
        if not refs:
            return 0
        keys = [(tl.track(tid), tl.track(tid).keys[tl.track(tid).key_index(kid)])
                for tid, kid in refs]
        first = min(k.t for _, k in keys)
        _clipboard.clear()
        for track, key in sorted(keys, key=lambda tk: tk[1].t):
            _clipboard.setdefault(track.channel, []).append(KeySpec.of(key, -first))
        self.ctx.show_status(f"Copied {len(keys)} keys", 3000)
        return len(keys)

    def paste_keys(self) -> bool:
        if not _clipboard:
            return False
        t = self.transport.time
        cmd = PutKeys({ch: [KeySpec(s.t + t, s.v, s.interp, s.tan_in, s.tan_out)
                            for s in specs] for ch, specs in _clipboard.items()})
        ok = self.push(cmd)
        if ok:
            self._select(set(cmd.added_refs))
        return ok

    def delete_selection(self) -> None:
        if self.lanes.selection:
            by_track: dict[str, list[int]] = {}
            for tid, kid in self.lanes.selection:
                by_track.setdefault(tid, []).append(kid)
            cmds: list[Command] = [DeleteKeys(tid, kids) for tid, kids in by_track.items()]
            n = len(self.lanes.selection)
            self.push(Batch(cmds, "Delete key" if n == 1 else f"Delete {n} keys"))
        elif self.lanes.current_clip is not None:
            self.push(DeleteClip(self.lanes.current_clip))

    def delete_track(self) -> None:
        track = self._current_track()
        if track is not None:
            self.push(DeleteTrack(track.id))

    def split_clip(self) -> None:
        if self.lanes.current_clip is not None:
            self.push(SplitClip(self.lanes.current_clip, self.transport.time))

    def set_loop_edge(self, edge: str, clear: bool = False) -> None:
        """I / O: the loop starts / ends at the playhead (the other end kept when it
        still makes a range, else the timeline's start or end)."""
        tr, t = self.transport, self.transport.time
        if clear:
            tr.set_loop(None)
            return
        start, end = tr.loop if tr.loop is not None else (0.0, self.doc.project.timeline.duration)
        start, end = (t, end) if edge == "in" else (start, t)
        if edge == "in" and not end > start:
            end = max(self.doc.project.timeline.duration, start + 1.0)
        if edge == "out" and not end > start:
            start = 0.0
        if end > start:
            tr.set_loop(start, end)
