"""The timeline editor driven with the mouse and keys: keying, dragging, scrubbing, undo,
selection, clipboard, clips, the curve editor, and readable lanes with many tracks."""

from __future__ import annotations

from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QColor

from studio.core.project import Clip, CurveTrack, Key
from studio.ui.timeline.layout import LABEL_W, RULER_H

LEFT = Qt.MouseButton.LeftButton
NO_MOD = Qt.KeyboardModifier.NoModifier


def _panel(window):
    panel = window.panels["timeline"]
    window.docks["timeline"].raise_()
    panel.lanes.setMinimumHeight(300)
    return panel


def _pt(p: QPointF) -> QPoint:
    return QPoint(round(p.x()), round(p.y()))


def _diamond(lanes, track_id, key_id) -> QPointF:
    track = lanes.timeline.track(track_id)
    return lanes.key_pos(track, lanes.track_rect(track_id), track.key_index(key_id))


def _drag(qtbot, widget, a: QPoint, b: QPoint, mod=NO_MOD, steps=4):
    qtbot.mousePress(widget, LEFT, mod, a)
    for i in range(1, steps + 1):
        qtbot.mouseMove(widget, a + (b - a) * i / steps)
    qtbot.mouseRelease(widget, LEFT, mod, b)


def test_key_drag_scrub_and_undo(window, qtbot):
    """Done when: key the current sliders, drag the key along the timeline, scrub the
    playhead, undo both edits."""
    doc, panel = window.document, _panel(window)
    lanes, tr = panel.lanes, window.app.transport
    doc.set(("avatar", "controls"), {"mouth_smile": 0.6, "brow_raise": 0.2})
    doc.history.clear()
    qtbot.waitUntil(lambda: panel.key_btn.isEnabled())
    tr.seek(1.0)
    qtbot.mouseClick(panel.key_btn, LEFT)
    tl = doc.project.timeline
    assert {(t.channel, k.t, k.v) for t in tl.tracks for k in t.keys} == {
        ("mouth_smile", 1.0, 0.6), ("brow_raise", 1.0, 0.2)}
    smile = next(t.id for t in tl.tracks if t.channel == "mouth_smile")
    assert (smile, 1) in lanes.selection  # the new keys are selected

    # drag the smile key 1 s later: it snaps to a frame, one undo step
    a = _diamond(lanes, smile, 1)
    b = QPointF(lanes.view.x_of(2.0) + 1.3, a.y())
    qtbot.mousePress(lanes, LEFT, NO_MOD, _pt(a))  # select only that key
    qtbot.mouseRelease(lanes, LEFT, NO_MOD, _pt(a))
    _drag(qtbot, lanes, _pt(a), _pt(b))
    key = tl.track(smile).keys[0]
    fps = tl.fps
    assert abs(key.t - 2.0) < 2 / fps and abs(key.t * fps - round(key.t * fps)) < 1e-6
    assert key.v == 0.6
    brow = next(t for t in tl.tracks if t.channel == "brow_raise")
    assert brow.keys[0].t == 1.0  # not selected, not moved

    # scrub: press on the ruler and drag; the playhead follows the transport
    x0, x1 = lanes.view.x_of(0.5), lanes.view.x_of(3.0)
    _drag(qtbot, lanes, QPoint(round(x0), 10), QPoint(round(x1), 12))
    assert abs(tr.time - 3.0) < 1.5 / fps
    qtbot.waitUntil(lambda: lanes.grab().toImage().pixelColor(
        round(lanes.view.x_of(tr.time)), RULER_H + 5) == QColor("#ffb454"))
    assert doc.history.undo_label == "Move key"  # scrubbing is not an edit

    window.act_undo.trigger()
    assert doc.project.timeline.track(smile).keys[0].t == 1.0
    window.act_undo.trigger()
    assert doc.project.timeline.tracks == []
    assert not doc.history.can_undo


def _many_tracks(n=25):
    names = ["mouth_open", "jaw", "lip_press", "blink", "eye_look_x", "brow_raise",
             "head_yaw", "head_pitch", "smile", "frown"]
    return [CurveTrack(channel=f"{names[i % len(names)]}_{i}",
                       keys=[Key(t=0.2 * j, v=(i + j) % 3 / 2) for j in range(10)])
            for i in range(n)]


def test_25_tracks_at_1600x1000_labels_never_overlap(window, qtbot):
    window.resize(1600, 1000)
    panel = _panel(window)
    lanes = panel.lanes
    doc = window.document
    doc.set(("timeline", "tracks"), _many_tracks())
    doc.set(("timeline", "clips"), [Clip(kind="speech", start=0.5, duration=1.0, text="Hi")])
    qtbot.waitUntil(lambda: lanes.height() >= 300)

    def check():
        rects = [r for _, r in lanes.label_rects()]
        assert len(rects) >= 5
        for i, a in enumerate(rects):
            assert a.right() <= LABEL_W and a.left() >= 0
            for b in rects[i + 1:]:
                assert not a.intersects(b), (a, b)
        return rects

    first = check()
    # zoom and scroll: labels stay in their column, do not overlap, scroll vertically
    qtbot.mouseMove(lanes, QPoint(LABEL_W + 200, 100))
    for mod, delta in ((Qt.KeyboardModifier.ControlModifier, 360),
                       (NO_MOD, -240)):
        from PySide6.QtGui import QWheelEvent

        pos = QPointF(LABEL_W + 200, 100)
        ev = QWheelEvent(pos, lanes.mapToGlobal(pos), QPoint(), QPoint(0, delta),
                         Qt.MouseButton.NoButton, mod, Qt.ScrollPhase.NoScrollPhase, False)
        from PySide6.QtWidgets import QApplication

        QApplication.sendEvent(lanes, ev)
    assert lanes.view.user_zoomed and lanes.view.scroll_y > 0
    check()
    assert {r.left() for r in check()} == {r.left() for r in first} == {6}
    # every group is labelled and collapsing one removes its lanes
    texts = [t for t, _ in lanes.label_rects()]
    assert "Mouth" in texts or lanes.view.scroll_y > 0
    before = len(lanes.rows)
    lanes.toggle_group("Expression")
    assert len(lanes.rows) < before
    # zoom is kept across edits
    pps = lanes.view.pps
    doc.set(("timeline", "duration"), 30.0)
    assert lanes.view.pps == pps


def _two_tracks(doc):
    doc.set(("timeline", "tracks"), [
        CurveTrack(id="t1", channel="mouth_open", keys=[Key(t=0.4, v=0), Key(t=1, v=1),
                                                        Key(t=1.6, v=0)]),
        CurveTrack(id="t2", channel="blink", keys=[Key(t=0.6, v=0), Key(t=1.2, v=1)])])
    doc.history.clear()


def test_rubber_band_copy_paste_delete(window, qtbot):
    doc, panel = window.document, _panel(window)
    lanes, tr = panel.lanes, window.app.transport
    _two_tracks(doc)
    r1, r2 = lanes.track_rect("t1"), lanes.track_rect("t2")
    a = QPoint(round(lanes.view.x_of(0.8)), round(r1.top()) + 1)
    b = QPoint(round(lanes.view.x_of(1.3)), round(r2.bottom()) - 1)
    _drag(qtbot, lanes, a, b)
    assert lanes.selection == {("t1", 2), ("t2", 2)}
    # shift-click adds a key
    qtbot.mouseClick(lanes, LEFT, Qt.KeyboardModifier.ShiftModifier,
                     _pt(_diamond(lanes, "t1", 3)))
    assert ("t1", 3) in lanes.selection and len(lanes.selection) == 3
    qtbot.keyClick(lanes, Qt.Key.Key_C, Qt.KeyboardModifier.ControlModifier)
    tr.seek(3.0)
    qtbot.keyClick(lanes, Qt.Key.Key_V, Qt.KeyboardModifier.ControlModifier)
    tl = doc.project.timeline
    assert [k.t for k in tl.track("t1").keys] == [0.4, 1.0, 1.6, 3.0, 3.6]
    assert [k.t for k in tl.track("t2").keys] == [0.6, 1.2, 3.2]
    assert len(lanes.selection) == 3  # the pasted keys
    qtbot.keyClick(lanes, Qt.Key.Key_Delete)
    assert [k.t for k in tl.track("t1").keys] == [0.4, 1.0, 1.6]
    qtbot.keyClick(lanes, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: len(doc.project.timeline.track("t1").keys) == 5)


def test_transport_keys_and_loop(window, qtbot):
    panel = _panel(window)
    lanes, tr = panel.lanes, window.app.transport
    fps = window.document.project.timeline.fps
    lanes.setFocus()
    tr.seek(1.0)
    qtbot.keyClick(lanes, Qt.Key.Key_Right)
    assert tr.time == (fps + 1) / fps
    qtbot.keyClick(lanes, Qt.Key.Key_End)
    assert tr.time == window.document.project.timeline.duration
    qtbot.keyClick(lanes, Qt.Key.Key_Home)
    assert tr.time == 0.0
    tr.seek(1.0 + 1 / fps)
    qtbot.keyClick(lanes, Qt.Key.Key_Left)
    qtbot.keyClick(lanes, Qt.Key.Key_I)
    tr.seek(2.0)
    qtbot.keyClick(lanes, Qt.Key.Key_O)
    assert tr.loop == (1.0, 2.0)
    qtbot.keyClick(lanes, Qt.Key.Key_L)
    assert tr.playing
    qtbot.keyClick(lanes, Qt.Key.Key_K)
    assert not tr.playing
    qtbot.keyClick(lanes, Qt.Key.Key_I, Qt.KeyboardModifier.ShiftModifier)
    assert tr.loop is None


def test_clips_move_trim_split(window, qtbot):
    doc, panel = window.document, _panel(window)
    lanes = panel.lanes
    doc.set(("timeline", "clips"), [Clip(id="c1", kind="speech", start=1.0, duration=2.0,
                                         text="Hello there")])
    doc.history.clear()
    row = next(r for r, _ in lanes.row_rects() if r.kind == "clips")
    rect = next(rc for r, rc in lanes.row_rects() if r is row)
    y = round(rect.center().y())
    body = QPoint(round(lanes.view.x_of(2.0)), y)
    _drag(qtbot, lanes, body, QPoint(round(lanes.view.x_of(2.5)), y))
    clip = doc.project.timeline.clip("c1")
    assert abs(clip.start - 1.5) < 0.05 and clip.duration == 2.0
    tail = QPoint(round(lanes.view.x_of(clip.end)), y)
    _drag(qtbot, lanes, tail, QPoint(round(lanes.view.x_of(3.0)), y))
    clip = doc.project.timeline.clip("c1")
    assert abs(clip.end - 3.0) < 0.05 and abs(clip.start - 1.5) < 0.05
    window.app.transport.seek(2.0)
    qtbot.mouseClick(panel.split_btn, LEFT)
    assert len(doc.project.timeline.clips) == 2
    for _ in range(3):
        window.act_undo.trigger()
    clip = doc.project.timeline.clip("c1")
    assert (clip.start, clip.duration) == (1.0, 2.0) and len(doc.project.timeline.clips) == 1


def test_curve_editor_interpolation_and_tangents(window, qtbot):
    doc, panel = window.document, _panel(window)
    lanes, editor = panel.lanes, panel.editor
    _two_tracks(doc)
    qtbot.mouseClick(lanes, LEFT, NO_MOD, _pt(_diamond(lanes, "t1", 2)))
    assert lanes.selection == {("t1", 2)} and "mouth_open" in editor.title.text()
    editor.interp.setCurrentIndex(3)
    editor.interp.activated.emit(3)  # what choosing "Bezier" in the list sends
    assert doc.project.timeline.track("t1").keys[1].interp == "bezier"
    assert editor.tan_out.isEnabled()
    editor.tan_out.setValue(2.5)
    assert doc.project.timeline.track("t1").keys[1].tan_out == 2.5
    x, y = editor.line.getData()
    assert len(x) > 10
    qtbot.mouseClick(editor.auto_btn, LEFT)
    assert doc.project.timeline.track("t1").keys[1].tan_out is None
    window.act_undo.trigger()
    window.act_undo.trigger()
    window.act_undo.trigger()
    assert doc.project.timeline.track("t1").keys[1].interp == "smooth"


def test_track_flags_from_the_label_column(window, qtbot):
    doc, panel = window.document, _panel(window)
    lanes = panel.lanes
    _two_tracks(doc)
    from studio.ui.timeline.lanes import FLAG_W

    rect = lanes.track_rect("t2")
    y = round(rect.center().y())
    mute_x = LABEL_W - 3 * FLAG_W - 4 + FLAG_W // 2
    qtbot.mouseClick(lanes, LEFT, NO_MOD, QPoint(mute_x, y))
    assert doc.project.timeline.track("t2").muted
    qtbot.mouseClick(lanes, LEFT, NO_MOD, QPoint(mute_x + 2 * FLAG_W, y))
    assert doc.project.timeline.track("t2").locked
    qtbot.mouseClick(lanes, LEFT, NO_MOD, QPoint(20, y))
    assert lanes.current_track == "t2" and not panel.delete_track_btn.isEnabled()


def test_cached_frames_show_on_the_ruler(window, qtbot):
    from PySide6.QtGui import QColor

    panel = _panel(window)
    lanes = panel.lanes
    state = window.ctx.playback
    fps = window.document.project.timeline.fps
    x_in = round(lanes.view.x_of(0.5))
    x_out = round(lanes.view.x_of(3.0))

    def color_at(x):
        return lanes.grab().toImage().pixelColor(x, RULER_H - 2)

    assert color_at(x_in) != QColor("#5fbf6f")
    state.set_cached_frames(range(0, 2 * fps), fps)  # the first two seconds are ready
    qtbot.waitUntil(lambda: color_at(x_in) == QColor("#5fbf6f"))
    assert color_at(x_out) != QColor("#5fbf6f")
