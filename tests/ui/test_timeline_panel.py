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


def _track_id(doc, channel):
    return next(t.id for t in doc.project.timeline.tracks if t.channel == channel)


def test_solo_lock_and_split_use_ids(window, qtbot):
    panel = window.panels["timeline"]
    doc = window.document
    _fill(doc)
    blink = _track_id(doc, "blink")
    panel.tracks.setCurrentRow(1)
    qtbot.mouseClick(panel.solo_btn, Qt.MouseButton.LeftButton)
    assert doc.project.timeline.track(blink).solo and panel.solo_btn.isChecked()
    assert "solo" in panel.tracks.item(1).text()
    qtbot.mouseClick(panel.lock_btn, Qt.MouseButton.LeftButton)
    assert doc.project.timeline.track(blink).locked
    assert not panel.delete_track_btn.isEnabled()  # a locked track cannot be deleted
    # the selection follows the track's id, not its row, when the list changes
    panel.tracks.setCurrentRow(0)
    qtbot.mouseClick(panel.delete_track_btn, Qt.MouseButton.LeftButton)
    assert [t.id for t in doc.project.timeline.tracks] == [blink]
    assert panel.tracks.currentItem().data(Qt.ItemDataRole.UserRole) == blink
    panel.playhead.setValue(1.0)
    panel.clips.setCurrentRow(0)
    qtbot.mouseClick(panel.split_clip_btn, Qt.MouseButton.LeftButton)
    clips = doc.project.timeline.clips
    assert [(c.start, c.duration, c.offset) for c in clips] == [(0.2, 0.8, 0.0),
                                                                (1.0, 0.7, 0.8)]
    assert panel.clips.count() == 2
    for _ in range(4):
        window.act_undo.trigger()
    tl = doc.project.timeline
    assert len(tl.clips) == 1 and [t.channel for t in tl.tracks] == ["mouth_open", "blink"]
    assert not tl.track(blink).solo and not tl.track(blink).locked


def test_redraw_reads_cached_curves(window, monkeypatch):
    from studio.animate.curves import Curve

    panel = window.panels["timeline"]
    _fill(window.document)
    built = []
    real = Curve.from_keys.__func__
    monkeypatch.setattr(Curve, "from_keys",
                        classmethod(lambda cls, ch, keys: built.append(ch) or real(cls, ch, keys)))
    panel.refresh()
    panel.refresh()
    window.document.set(("timeline", "duration"), 12.0)  # a redraw of every lane
    assert built == []  # the curves were made once, when the tracks arrived
    mouth = _track_id(window.document, "mouth_open")
    from studio.timeline import MoveKey

    window.document.push(MoveKey(mouth, 2, v=0.5))
    assert built == ["mouth_open"]  # only the edited track's curve is rebuilt


def test_cli_add_speech_shows_in_the_gui(window, tmp_path, monkeypatch):
    """`studio timeline add-speech` changes a project; the GUI opens it with the clip."""
    import studio.cli as cli
    from studio.core.document import Document
    from studio.core.project import Project, VoiceSettings

    path = tmp_path / "proj" / "hero.dhproj"
    path.parent.mkdir()
    Document(Project(voice=VoiceSettings(voice="espeak:en-us", engine="espeak"))).save(path)
    assert cli.main(["timeline", "add-speech", str(path), "Hello from the shell.",
                     "--at", "1.0"]) == 0

    assert window.open_project(path)
    panel = window.panels["timeline"]
    clip = window.document.project.timeline.clips[0]
    assert panel.clips.count() == 1
    assert "Hello from the shell." in panel.clips.item(0).text()
    assert panel.clips.item(0).text().startswith("speech 1.00–")
    assert panel.clips.item(0).data(Qt.ItemDataRole.UserRole) == clip.id
    shown = [panel.tracks.item(i).text().split()[0] for i in range(panel.tracks.count())]
    assert {"mouth_open", "blink", "head_yaw"} <= set(shown)
    assert "1 clips" in panel.summary.text()
