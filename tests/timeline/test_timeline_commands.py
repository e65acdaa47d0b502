"""Timeline edits as undo commands: addressed by id, fine-grained, drags merge, locks hold."""

from __future__ import annotations

import numpy as np
import pytest

from studio.animate.curves import Curve
from studio.core.document import Document
from studio.core.errors import StudioError
from studio.core.project import Clip, CurveTrack, Key
from studio.timeline import (
    AddClip,
    AddKey,
    AddTrack,
    DeleteClip,
    DeleteTrack,
    MoveClip,
    MoveKey,
    SpeechForTimeline,
    SplitClip,
    TrimClip,
    add_speech_command,
    delete_key,
    evaluate,
    lock_track,
    mute_track,
    solo_track,
)
from studio.voice.types import SpeechResult


@pytest.fixture
def doc():
    d = Document()
    d.push(AddTrack("mouth_open", [Key(t=0, v=0), Key(t=1, v=1), Key(t=2, v=0)]))
    d.push(AddTrack("blink", [Key(t=0.5, v=0, interp="linear")]))
    d.history.clear()
    return d


def _tl(doc):
    return doc.project.timeline


def _keys(doc, track_id):
    return [(k.id, k.t, k.v) for k in _tl(doc).track(track_id).keys]


def test_new_tracks_get_sequential_ids_and_keys_numbers(doc):
    assert [(t.id, t.channel) for t in _tl(doc).tracks] == [("t1", "mouth_open"), ("t2", "blink")]
    assert _keys(doc, "t1") == [(1, 0, 0), (2, 1, 1), (3, 2, 0)]
    with pytest.raises(StudioError, match="already has a track"):
        doc.push(AddTrack("blink"))


def test_add_move_delete_a_key_by_id(doc):
    add = AddKey("t1", 0.5, 0.4)
    doc.push(add)
    assert add.key_id == 4
    assert _keys(doc, "t1") == [(1, 0, 0), (4, 0.5, 0.4), (2, 1, 1), (3, 2, 0)]
    doc.push(MoveKey("t1", 4, t=1.5, v=0.9))  # past key 2: the keys re-sort, ids stay
    assert _keys(doc, "t1") == [(1, 0, 0), (2, 1, 1), (4, 1.5, 0.9), (3, 2, 0)]
    doc.push(delete_key("t1", 2))
    assert [k[0] for k in _keys(doc, "t1")] == [1, 4, 3]
    assert doc.history.undo_label == "Delete key"
    doc.history.undo()
    doc.history.undo()
    assert _keys(doc, "t1") == [(1, 0, 0), (4, 0.5, 0.4), (2, 1, 1), (3, 2, 0)]
    doc.history.redo()
    doc.history.redo()
    assert [k[0] for k in _keys(doc, "t1")] == [1, 4, 3]
    with pytest.raises(StudioError, match="no key 99"):
        doc.push(MoveKey("t1", 99, t=1))
    with pytest.raises(StudioError, match="no track"):
        doc.push(AddKey("t9", 0, 0))


def test_a_key_drag_is_one_undo_step(doc):
    before = _keys(doc, "t1")
    for i in range(1, 20):
        doc.push(MoveKey("t1", 2, t=1 + i * 0.02, v=1 - i * 0.01, merge_key=("drag", 2)))
    doc.history.close_merge()
    assert _keys(doc, "t1")[1] == (2, pytest.approx(1.38), pytest.approx(0.81))
    assert len(doc.history._undo) == 1
    doc.history.undo()
    assert _keys(doc, "t1") == before
    doc.history.redo()
    assert _keys(doc, "t1")[1] == (2, pytest.approx(1.38), pytest.approx(0.81))


def test_mute_solo_lock_and_ids_survive_reordering(doc):
    doc.push(mute_track("t2"))
    assert _tl(doc).track("t2").muted and doc.history.undo_label == "Mute"
    doc.push(solo_track("t1"))
    assert evaluate(doc.project, 1.0) == {"mouth_open": 1.0}
    doc.push(lock_track("t1"))
    with pytest.raises(StudioError, match="locked"):
        doc.push(AddKey("t1", 3, 1))
    with pytest.raises(StudioError, match="locked"):
        doc.push(DeleteTrack("t1"))
    assert len(_tl(doc).track("t1").keys) == 3  # the refused edits changed nothing
    doc.push(lock_track("t1", False))
    doc.push(DeleteTrack("t1"))
    # the remaining track is still addressed by its id although it moved up the list
    assert [t.id for t in _tl(doc).tracks] == ["t2"]
    doc.push(mute_track("t2", False))
    assert not _tl(doc).track("t2").muted
    for _ in range(5):
        doc.history.undo()
    tl = _tl(doc)
    assert [t.id for t in tl.tracks] == ["t1", "t2"]
    assert not tl.track("t1").solo and not tl.track("t1").locked and tl.track("t2").muted


def test_clip_move_trim_split_delete(doc):
    clip = Clip(id="c1", kind="speech", start=1.0, duration=2.0, text="Hi", audio="audio/a.wav")
    doc.push(AddClip(clip))
    for x in (1.2, 1.4, 1.5):
        doc.push(MoveClip("c1", x, merge_key="drag"))
    doc.history.close_merge()
    assert _tl(doc).clip("c1").start == 1.5
    doc.push(TrimClip("c1", start=1.75))  # the head moves, the audio stays in place
    c = _tl(doc).clip("c1")
    assert (c.start, c.duration, c.offset) == (1.75, 1.75, 0.25)
    doc.push(TrimClip("c1", end=3.0))
    assert _tl(doc).clip("c1").duration == 1.25
    with pytest.raises(StudioError, match="before"):
        doc.push(TrimClip("c1", start=1.0))  # before the start of its audio
    split = SplitClip("c1", 2.25)
    doc.push(split)
    first, second = _tl(doc).clips
    assert (first.id, first.start, first.duration, first.offset) == ("c1", 1.75, 0.5, 0.25)
    assert (second.id, second.start, second.duration, second.offset) == ("c2", 2.25, 0.75, 0.75)
    assert second.audio == "audio/a.wav" and second.text == "Hi"
    with pytest.raises(StudioError, match="not inside"):
        doc.push(SplitClip("c2", 9.0))
    doc.push(DeleteClip("c1"))
    assert [c.id for c in _tl(doc).clips] == ["c2"]
    labels = []
    while doc.history.can_undo:
        labels.append(doc.history.undo_label)
        doc.history.undo()
    assert labels == ["Delete clip", "Split clip", "Trim clip", "Trim clip", "Move clip",
                      "Add speech clip"]
    assert _tl(doc).clips == []


def _speech_item(duration=1.0, channels=("mouth_open", "jaw")) -> SpeechForTimeline:
    sr = 1000
    speech = SpeechResult(np.zeros(int(duration * sr), np.float32), sr, [], [])
    curves = [Curve(ch, [0.0, duration / 2, duration], [0.0, 0.5, 0.0], "linear")
              for ch in channels]
    return SpeechForTimeline("speech", speech, "audio/s.wav", curves, text="hello")


def test_add_speech_merges_curves_in_one_step(doc):
    doc.push(lock_track("t2"))
    batch, clip = add_speech_command(_tl(doc), _speech_item(1.0, ("mouth_open", "jaw", "blink")),
                                     doc.project.voice, at=0.5)
    doc.push(batch)
    tl = _tl(doc)
    assert clip.id == "c1" and tl.clips == [clip] and clip.start == 0.5
    mouth = tl.track("t1")
    # keys inside [0.5, 1.5] replaced, keys outside kept; new keys get fresh ids
    assert [(k.id, k.t, k.v) for k in mouth.keys] == [
        (1, 0, 0), (4, 0.5, 0), (5, 1.0, 0.5), (6, 1.5, 0), (3, 2, 0)]
    assert tl.track("t3").channel == "jaw"
    assert [k.t for k in tl.track("t2").keys] == [0.5]  # locked: left alone
    assert tl.duration == 10.0
    doc.history.undo()
    assert _keys(doc, "t1") == [(1, 0, 0), (2, 1, 1), (3, 2, 0)]
    assert [t.id for t in _tl(doc).tracks] == ["t1", "t2"] and _tl(doc).clips == []
    doc.history.redo()
    assert [t.id for t in _tl(doc).tracks] == ["t1", "t2", "t3"]
    # the next clip goes after the last one and stretches the timeline to whole frames
    batch, second = add_speech_command(_tl(doc), _speech_item(9.51), None)
    doc.push(batch)
    assert second.id == "c2" and second.start == 1.5 and second.voice is None
    assert _tl(doc).duration == pytest.approx(11.04)


def test_a_track_object_from_outside_gets_an_id():
    track = CurveTrack(channel="smile", keys=[Key(t=1, v=1), Key(t=0, v=0)])
    assert track.id.startswith("t") and [k.id for k in track.keys] == [2, 1]
    assert [k.t for k in track.keys] == [0, 1]  # kept sorted
    with pytest.raises(ValueError, match="same id"):
        CurveTrack(channel="smile", keys=[Key(id=1, t=0, v=0), Key(id=1, t=1, v=0)])
