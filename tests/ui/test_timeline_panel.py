from PySide6.QtCore import Qt

from studio.core.project import Clip, CurveTrack, Key


def _fill(doc):
    tracks = [CurveTrack(channel="mouth_open", keys=[Key(t=0, v=0), Key(t=1, v=1), Key(t=2, v=0)]),
              CurveTrack(channel="blink", keys=[Key(t=0.5, v=0, interp="linear"),
                                               Key(t=0.6, v=1), Key(t=0.7, v=0)])]
    clips = [Clip(kind="speech", start=0.2, duration=1.5, text="Hello there")]
    doc.set_many({("timeline", "tracks"): tracks, ("timeline", "clips"): clips}, "Add speech")


def test_shows_tracks_and_clips(window):
    panel = window.panels["timeline"]
    _fill(window.document)
    assert panel.tracks.count() == 2 and "mouth_open" in panel.tracks.item(0).text()
    assert panel.clips.count() == 1 and "Hello there" in panel.clips.item(0).text()
    assert "2 tracks" in panel.summary.text()
    curves = [i for i in panel.plot.getPlotItem().listDataItems()]
    assert len(curves) == 2
    x, y = curves[0].getData()
    # the mouth_open lane peaks at t = 1 s
    assert abs(x[int(y.argmax())] - 1.0) < 0.05


def test_mute_and_delete_are_undoable(window, qtbot):
    panel = window.panels["timeline"]
    doc = window.document
    _fill(doc)
    panel.tracks.item(1).setCheckState(Qt.CheckState.Unchecked)
    assert doc.project.timeline.tracks[1].muted
    window.act_undo.trigger()
    assert not doc.project.timeline.tracks[1].muted
    panel.tracks.setCurrentRow(0)
    qtbot.mouseClick(panel.delete_track_btn, Qt.MouseButton.LeftButton)
    assert [t.channel for t in doc.project.timeline.tracks] == ["blink"]
    panel.clips.setCurrentRow(0)
    qtbot.mouseClick(panel.delete_clip_btn, Qt.MouseButton.LeftButton)
    assert doc.project.timeline.clips == []
    window.act_undo.trigger()
    window.act_undo.trigger()
    assert [t.channel for t in doc.project.timeline.tracks] == ["mouth_open", "blink"]
    assert panel.clips.count() == 1
