"""Mouse and keyboard on the lanes view.

- Ruler: press or drag anywhere scrubs (``app.transport.seek``).
- Labels: a group header collapses or expands; M / S / L mute, solo, lock; the name makes
  the track current (the curve editor shows it).
- Lanes: click a diamond selects it (Shift adds or removes), drag moves the selection with
  snapping to frames and to the playhead (Alt: no snapping), one undo step per drag; a
  press on empty lane starts a rubber band.
- Clips: drag the body to move, an edge to trim; one undo step per drag.
- Wheel scrolls the lanes, Shift+wheel pans in time, Ctrl+wheel zooms about the cursor.
- Keys: K pause, L play; Left/Right a frame; Home/End; I/O loop in/out at the playhead
  (Shift+I clears the loop); Delete; Ctrl+C / Ctrl+V copy and paste keys at the playhead.
  Space belongs to the player; Ctrl+Z to the main window's Undo.
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING

from PySide6.QtCore import QPointF, QRectF, Qt

from studio.timeline import MoveClip, MoveKeys, SetTrackFlags, TrimClip
from studio.ui.timeline.layout import LABEL_W, RULER_H

if TYPE_CHECKING:
    from studio.ui.timeline.lanes import LanesView

EDGE = 6  # px: a press this close to a clip's edge trims
SNAP_PX = 8
_drags = itertools.count(1)


class Gestures:
    def __init__(self, view: LanesView) -> None:
        self.v = view
        self.mode: str | None = None
        self.press_pos = QPointF()
        self.drag_id = 0
        self.start: dict = {}  # the dragged things as they were at the press

    # -- hit tests ---------------------------------------------------------------------
    def key_at(self, pos: QPointF):
        from studio.ui.timeline.lanes import DIAMOND

        for row, rect in self.v.row_rects():
            if row.kind != "track" or not rect.contains(pos):
                continue
            track = self.v.timeline.track(row.track_id)
            best, dist = None, DIAMOND + 3.0
            for i in self.v.visible_keys(track):
                c = self.v.key_pos(track, rect, i)
                d = max(abs(c.x() - pos.x()), abs(c.y() - pos.y()))
                if d <= dist:
                    best, dist = (track.id, track.keys[i].id), d
            return best, row
        return None, None

    def row_at(self, pos: QPointF):
        for row, rect in self.v.row_rects():
            if rect.top() <= pos.y() < rect.bottom():
                return row, rect
        return None, None

    def clip_at(self, pos: QPointF, rect: QRectF):
        for clip in reversed(self.v.timeline.clips):
            box = self.v.clip_rect(clip, rect)
            if box.adjusted(-EDGE / 2, 0, EDGE / 2, 0).contains(pos):
                if abs(pos.x() - box.left()) <= EDGE:
                    return clip, "trim_start"
                if abs(pos.x() - box.right()) <= EDGE:
                    return clip, "trim_end"
                return clip, "move_clip"
        return None, None

    # -- mouse -------------------------------------------------------------------------
    def press(self, e) -> None:
        v = self.v
        v.setFocus()
        pos = e.position()
        self.press_pos = pos
        self.mode = None
        if e.button() != Qt.MouseButton.LeftButton:
            return
        shift = bool(e.modifiers() & Qt.KeyboardModifier.ShiftModifier)
        if pos.y() < RULER_H:
            self.mode = "scrub"
            self._scrub(pos.x())
            return
        row, rect = self.row_at(pos)
        if row is None:
            return
        if row.kind == "group":
            v.toggle_group(row.group)
            return
        if pos.x() < LABEL_W:
            self._label_press(row, rect, pos)
            return
        if row.kind == "clips":
            clip, mode = self.clip_at(pos, rect)
            v.current_clip = clip.id if clip is not None else None
            if clip is not None:
                self.mode, self.drag_id = mode, next(_drags)
                self.start = {"start": clip.start, "end": clip.end}
            v.update()
            return
        ref, _ = self.key_at(pos)
        v.current_track = row.track_id
        if ref is None:
            if not shift:
                self._select(set())
            self.mode = "band"
            v.band = QRectF(pos, pos)
        else:
            self.clicked = None
            if shift:
                self._select(v.selection ^ {ref})
            elif ref not in v.selection:
                self._select({ref})
            else:
                self.clicked = ref  # a click without a drag selects only this key
            if ref in v.selection:
                self._begin_key_drag(ref)
        v.panel.current_track_changed()
        v.update()

    def _label_press(self, row, rect: QRectF, pos: QPointF) -> None:
        from studio.ui.timeline.lanes import FLAG_W

        if row.kind != "track":
            return
        track = self.v.timeline.track(row.track_id)
        flag_index = int((pos.x() - (LABEL_W - 3 * FLAG_W - 4)) // FLAG_W)
        if pos.x() >= LABEL_W - 3 * FLAG_W - 4 and 0 <= flag_index < 3:
            name = ("muted", "solo", "locked")[flag_index]
            self.v.panel.push(SetTrackFlags(track.id, **{name: not getattr(track, name)}))
            return
        self.v.current_track = track.id
        self.v.panel.current_track_changed()
        self.v.update()

    def _begin_key_drag(self, anchor) -> None:
        tl = self.v.timeline
        self.mode, self.drag_id = "keys", next(_drags)
        self.start = {}
        for tid, kid in self.v.selection:
            track = tl.track(tid)
            if track.locked:
                self.mode = None  # a locked track's keys stay put (selecting is fine)
                return
            self.start[(tid, kid)] = track.keys[track.key_index(kid)].t
        self.anchor = self.start[anchor]

    def move(self, e) -> None:
        pos = e.position()
        v = self.v
        if self.mode == "scrub":
            self._scrub(pos.x())
        elif self.mode == "band":
            v.band = QRectF(self.press_pos, pos).normalized()
            v.update()
        elif self.mode == "keys":
            dt = (pos.x() - self.press_pos.x()) / v.view.pps
            snap = not (e.modifiers() & Qt.KeyboardModifier.AltModifier)
            target = self._snap(self.anchor + dt) if snap else self.anchor + dt
            dt = max(target - self.anchor, -min(self.start.values()))
            v.panel.push(MoveKeys({ref: (t + dt, None) for ref, t in self.start.items()},
                                  merge_key=("keys", self.drag_id)), close=False)
        elif self.mode in ("move_clip", "trim_start", "trim_end"):
            dt = (pos.x() - self.press_pos.x()) / v.view.pps
            key = ("clip", self.drag_id)
            cid = v.current_clip
            if self.mode == "move_clip":
                start = max(0.0, self._snap(self.start["start"] + dt))
                cmd = MoveClip(cid, start, merge_key=key)
            elif self.mode == "trim_start":
                cmd = TrimClip(cid, start=max(0.0, self._snap(self.start["start"] + dt)),
                               merge_key=key)
            else:
                cmd = TrimClip(cid, end=self._snap(self.start["end"] + dt), merge_key=key)
            v.panel.push(cmd, close=False, quiet=True)

    def release(self, e) -> None:
        v = self.v
        if self.mode == "band" and v.band is not None:
            band = v.band
            shift = bool(e.modifiers() & Qt.KeyboardModifier.ShiftModifier)
            inside = set()
            for row, rect in v.row_rects():
                if row.kind != "track" or not rect.intersects(band):
                    continue
                track = v.timeline.track(row.track_id)
                for i in v.visible_keys(track):
                    if band.contains(v.key_pos(track, rect, i)):
                        inside.add((track.id, track.keys[i].id))
            self._select(v.selection | inside if shift else inside)
            v.band = None
            v.update()
        moved = (e.position() - self.press_pos).manhattanLength() > 2
        if self.mode == "keys" and not moved and getattr(self, "clicked", None) is not None:
            self._select({self.clicked})
            v.update()
        self.mode = None
        v.doc.history.close_merge()

    def _select(self, refs: set) -> None:
        if refs != self.v.selection:
            self.v.selection = set(refs)
            self.v.selection_changed.emit()

    def _scrub(self, x: float) -> None:
        t = max(0.0, self.v.view.t_of(max(x, LABEL_W)))
        fps = self.v.timeline.fps
        self.v.transport.seek(round(t * fps) / fps)

    def _snap(self, t: float) -> float:
        """To the playhead when within SNAP_PX, else to the nearest frame."""
        playhead = self.v.transport.time
        if abs(t - playhead) * self.v.view.pps <= SNAP_PX:
            return playhead
        fps = self.v.timeline.fps
        return round(t * fps) / fps

    # -- wheel and keys ---------------------------------------------------------------
    def wheel(self, e) -> None:
        v = self.v
        steps = e.angleDelta().y() / 120.0 or e.angleDelta().x() / 120.0
        mods = e.modifiers()
        if mods & Qt.KeyboardModifier.ControlModifier:
            v.view.zoom(1.25 ** steps, e.position().x())
        elif mods & Qt.KeyboardModifier.ShiftModifier:
            v.view.t0 = max(0.0, v.view.t0 - steps * 80 / v.view.pps)
        else:
            v.view.scroll_y -= int(steps * 60)
            v._clamp_scroll()
        v.update()
        e.accept()

    def key(self, e) -> bool:
        v, tr = self.v, self.v.transport
        k, mods = e.key(), e.modifiers()
        ctrl = bool(mods & Qt.KeyboardModifier.ControlModifier)
        fps = v.timeline.fps
        frame = round(tr.time * fps)
        if ctrl and k == Qt.Key.Key_C:
            v.panel.copy_keys()
        elif ctrl and k == Qt.Key.Key_V:
            v.panel.paste_keys()
        elif ctrl:
            return False
        elif k in (Qt.Key.Key_Delete, Qt.Key.Key_Backspace):
            v.panel.delete_selection()
        elif k == Qt.Key.Key_Left:
            tr.seek(max(0, frame - 1) / fps)
        elif k == Qt.Key.Key_Right:
            tr.seek((frame + 1) / fps)
        elif k == Qt.Key.Key_K:
            tr.pause()
        elif k == Qt.Key.Key_L:
            tr.play()
        elif k == Qt.Key.Key_I:
            v.panel.set_loop_edge("in", clear=bool(mods & Qt.KeyboardModifier.ShiftModifier))
        elif k == Qt.Key.Key_O:
            v.panel.set_loop_edge("out")
        else:
            return False
        v.update()
        return True
