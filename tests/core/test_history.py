import pytest

from studio.core.document import Document
from studio.core.errors import StudioError


def test_set_undo_redo():
    doc = Document()
    seen = []
    doc.changed.connect(seen.append)
    doc.set(("avatar", "seed"), 5)
    doc.set(("avatar", "truncation"), 0.5)
    assert doc.project.avatar.seed == 5 and doc.modified
    assert doc.history.undo()
    assert doc.project.avatar.truncation == 0.7
    assert doc.history.undo()
    assert doc.project.avatar.seed == 0
    assert not doc.modified
    assert doc.history.redo()
    assert doc.project.avatar.seed == 5
    assert ("avatar", "seed") in seen[0]


def test_slider_drag_merges_into_one_step():
    doc = Document()
    for i in range(200):
        doc.set(("avatar", "truncation"), 0.7 + i / 1000, merge_key="drag-1")
    assert doc.project.avatar.truncation == pytest.approx(0.899)
    doc.history.undo()
    assert doc.project.avatar.truncation == 0.7
    assert not doc.history.can_undo


def test_separate_gestures_do_not_merge():
    doc = Document()
    doc.set(("avatar", "truncation"), 0.5, merge_key="drag")
    doc.history.close_merge()
    doc.set(("avatar", "truncation"), 0.4, merge_key="drag")
    doc.history.undo()
    assert doc.project.avatar.truncation == 0.5


def test_dict_entries_and_removal():
    doc = Document()
    doc.set(("avatar", "controls", "smile"), 0.8)
    assert doc.project.avatar.controls == {"smile": 0.8}
    doc.history.undo()
    assert doc.project.avatar.controls == {}


def test_invalid_value_is_refused_and_nothing_changes():
    doc = Document()
    with pytest.raises(StudioError):
        doc.set(("avatar", "seed"), -3)
    assert doc.project.avatar.seed == 0
    assert not doc.history.can_undo


def test_set_many_is_one_step():
    doc = Document()
    doc.set_many({("avatar", "seed"): 3, ("avatar", "mix_seed"): 9}, "Randomise")
    assert doc.history.undo_label == "Randomise"
    doc.history.undo()
    assert (doc.project.avatar.seed, doc.project.avatar.mix_seed) == (0, None)


def test_save_marks_clean_and_keeps_backup(tmp_path):
    doc = Document()
    f = tmp_path / "a.dhproj"
    doc.set(("name",), "First")
    doc.save(f)
    assert not doc.modified
    doc.set(("name",), "Second")
    doc.save()
    assert '"Second"' in f.read_text()
    assert '"First"' in (tmp_path / "a.dhproj.bak").read_text()
    assert not list(tmp_path.glob(".*.tmp"))


def test_saved_files_get_normal_permissions(tmp_path):
    import os
    import stat

    doc = Document()
    f = tmp_path / "p.dhproj"
    doc.save(f)
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(f.stat().st_mode) == 0o666 & ~mask


def test_save_as_names_the_project_after_its_file_unless_the_user_named_it(tmp_path):
    import json

    from studio.core.document import Document

    doc = Document()
    assert doc.project.name == "Untitled"
    doc.save(tmp_path / "Evening show.dhproj")
    assert doc.project.name == "Evening show" and not doc.modified
    assert json.loads((tmp_path / "Evening show.dhproj").read_text())["name"] == "Evening show"
    doc.save(tmp_path / "Morning show.dhproj")  # the name still followed the file
    assert doc.project.name == "Morning show"
    doc.history.undo()  # the rename is an ordinary, undoable edit
    assert doc.project.name == "Evening show"
    doc.set(("name",), "Anna's interview")
    doc.save(tmp_path / "take2.dhproj")
    assert doc.project.name == "Anna's interview"


def test_a_refused_edit_leaves_the_gesture_it_would_merge_into(monkeypatch):
    import pytest

    import studio.core.document as document_mod
    from studio.core.document import Document
    from studio.core.errors import StudioError

    doc = Document()
    doc.set(("avatar", "truncation"), 0.5, "Drag", merge_key="drag")
    doc.set(("avatar", "truncation"), 0.6, "Drag", merge_key="drag")
    monkeypatch.setattr(document_mod._project, "count_keys", lambda project: 10**9)
    with pytest.raises(StudioError, match="cannot drag"):
        doc.set(("avatar", "truncation"), 0.9, "Drag", merge_key="drag")
    monkeypatch.undo()
    assert doc.project.avatar.truncation == 0.6  # the refused value was taken back
    assert not doc.history.can_redo  # and is nothing to redo
    doc.history.undo()  # the gesture before it is still one step, intact
    assert doc.project.avatar.truncation == 0.7
