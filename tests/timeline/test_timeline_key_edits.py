"""Many-key edits (paste, key the sliders, move a selection, interpolation and tangents),
Bezier curves and the schema 3 key fields, without Qt."""

from __future__ import annotations

import json

import numpy as np
import pytest

from studio.animate.curves import BEZIER, Curve
from studio.core.document import Document
from studio.core.errors import StudioError
from studio.core.project import Key, migrate, project_from_text, project_to_text
from studio.timeline import (
    AddTrack,
    KeySpec,
    MoveKeys,
    PutKeys,
    SetKeyShape,
    curve_of,
    key_channels,
    lock_track,
)


@pytest.fixture
def doc():
    d = Document()
    d.push(AddTrack("mouth_open", [Key(t=0, v=0), Key(t=1, v=1), Key(t=2, v=0)]))
    d.push(AddTrack("blink", [Key(t=0.5, v=0, interp="linear")]))
    d.history.clear()
    return d


def _keys(doc, tid):
    return [(k.id, k.t, k.v) for k in doc.project.timeline.track(tid).keys]


def test_key_channels_adds_tracks_and_replaces_keys_at_the_same_time(doc):
    cmd = key_channels({"mouth_open": 0.5, "smile": 0.8}, 1.0)
    doc.push(cmd)
    tl = doc.project.timeline
    assert _keys(doc, "t1") == [(1, 0, 0), (2, 1, 0.5), (3, 2, 0)]  # key 2 replaced
    smile = next(t for t in tl.tracks if t.channel == "smile")
    assert smile.id == "t3" and _keys(doc, "t3") == [(1, 1.0, 0.8)]
    assert set(cmd.added_refs) == {("t1", 2), ("t3", 1)}
    assert doc.history.undo_label == "Key 2 controls"
    doc.history.undo()
    assert [t.channel for t in tl.tracks] == ["mouth_open", "blink"]
    assert _keys(doc, "t1") == [(1, 0, 0), (2, 1, 1), (3, 2, 0)]
    doc.history.redo()
    assert _keys(doc, "t3") == [(1, 1.0, 0.8)]


def test_put_keys_skips_locked_tracks_and_refuses_when_all_are(doc):
    doc.push(lock_track("t2"))
    cmd = PutKeys({"blink": [KeySpec(1.0, 1.0)], "mouth_open": [KeySpec(3.0, 0.2, "step")]})
    doc.push(cmd)
    assert cmd.skipped == ["blink"] and _keys(doc, "t1")[-1] == (4, 3.0, 0.2)
    with pytest.raises(StudioError, match="locked"):
        doc.push(PutKeys({"blink": [KeySpec(1.0, 1.0)]}))


def test_move_keys_of_two_tracks_merges_a_drag_into_one_step(doc):
    for dt in (0.1, 0.2, 0.3):
        doc.push(MoveKeys({("t1", 2): (1 + dt, None), ("t2", 1): (0.5 + dt, 0.4)},
                          merge_key="drag"))
    assert _keys(doc, "t1")[1] == (2, 1.3, 1.0) and _keys(doc, "t2") == [(1, 0.8, 0.4)]
    doc.history.close_merge()
    assert doc.history.undo()
    assert _keys(doc, "t1")[1] == (2, 1.0, 1.0) and _keys(doc, "t2") == [(1, 0.5, 0.0)]
    assert not doc.history.can_undo  # the whole drag was one step
    doc.history.redo()
    assert _keys(doc, "t2") == [(1, 0.8, 0.4)]


def test_move_keys_past_others_keeps_order_and_refuses_locked(doc):
    doc.push(MoveKeys({("t1", 1): (2.5, None)}))
    assert [k.id for k in doc.project.timeline.track("t1").keys] == [2, 3, 1]
    doc.push(lock_track("t2"))
    with pytest.raises(StudioError, match="locked"):
        doc.push(MoveKeys({("t2", 1): (1.0, None)}))
    assert _keys(doc, "t2") == [(1, 0.5, 0.0)]


def test_set_key_shape_interp_and_tangent_drag(doc):
    doc.push(SetKeyShape([("t1", 1), ("t1", 2)], interp="bezier"))
    for slope in (1.0, 2.0, 3.0):
        doc.push(SetKeyShape([("t1", 1)], tan_out=slope, merge_key="tan"))
    k = doc.project.timeline.track("t1").keys[0]
    assert (k.interp, k.tan_out, k.tan_in) == ("bezier", 3.0, None)
    curve = curve_of(doc.project.timeline.track("t1"))
    assert curve.interp[0] == BEZIER and curve.tan_out[0] == 3.0
    # the slope leaving key 1 is the one set
    eps = 1e-4
    assert (curve.evaluate(eps)[0] - curve.evaluate(0.0)[0]) / eps == pytest.approx(3, rel=1e-2)
    doc.history.undo()
    assert doc.project.timeline.track("t1").keys[0].tan_out is None
    doc.history.undo()
    assert doc.project.timeline.track("t1").keys[0].interp == "smooth"


def test_bezier_without_tangents_is_the_smooth_curve_and_is_vectorised():
    t = np.linspace(-1, 3, 401)
    smooth = Curve("x", [0, 1, 2], [0, 1, 0.2], "smooth")
    bez = Curve("x", [0, 1, 2], [0, 1, 0.2], "bezier")
    assert np.allclose(bez.evaluate(t), smooth.evaluate(t))
    tilted = Curve("x", [0, 1, 2], [0, 1, 0.2], "bezier", tan_in=[None, -4.0, None],
                   tan_out=[None, 4.0, None])
    v = tilted.evaluate(t)
    assert v.shape == t.shape and v.max() > 1.0  # the arriving slope overshoots the key
    assert tilted.evaluate([0.0, 1.0, 2.0]) == pytest.approx([0, 1, 0.2])
    assert Curve.from_keys("x", tilted.key_dicts()) == tilted


def test_schema_3_keys_save_tangents_only_when_set_and_v2_files_migrate():
    v2 = {"schema_version": 2, "timeline": {"tracks": [
        {"id": "t1", "channel": "jaw", "keys": [{"id": 1, "t": 0, "v": 1, "interp": "step"}]}]}}
    p = project_from_text(json.dumps(v2))
    key = p.timeline.tracks[0].keys[0]
    assert p.schema_version == 3 and key.tan_in is None and key.tan_out is None
    assert migrate(dict(v2))["schema_version"] == 3
    text = project_to_text(p)
    assert "tan_in" not in text  # automatic tangents take no room in the file
    p.timeline.tracks[0].keys = (Key(id=1, t=0, v=1, interp="bezier", tan_in=0.5, tan_out=-2),)
    again = project_from_text(project_to_text(p))
    assert again.timeline.tracks[0].keys[0].tan_out == -2 and again == p
    with pytest.raises(ValueError):
        Key(t=0, v=0, tan_in=float("inf"))
