"""Two windows, one project: the second save asks instead of overwriting silently."""

from __future__ import annotations

from PySide6.QtWidgets import QFileDialog

from studio.core.document import Document
from studio.core.project import Project, load_project


def _file_changed_elsewhere(path, name):
    other = Document.open(path)  # another studio window on the same file
    other.set(("name",), name)
    other.save()


def test_save_of_a_file_changed_on_disk_offers_save_as_or_overwrite(window, tmp_path,
                                                                    monkeypatch):
    f = tmp_path / "p.dhproj"
    Document(Project(name="v1")).save(f)
    assert window.open_project(f)
    window.document.set(("name",), "mine")
    _file_changed_elsewhere(f, "theirs")

    asked = []
    monkeypatch.setattr(window, "ask_changed_on_disk",
                        lambda msg: asked.append(msg) or "cancel")
    window.act_save.trigger()
    assert "changed on disk" in asked[-1]
    assert load_project(f).name == "theirs" and window.document.modified

    copy = tmp_path / "mine.dhproj"
    monkeypatch.setattr(window, "ask_changed_on_disk", lambda msg: "save_as")
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(copy), ""))
    window.act_save.trigger()
    assert load_project(copy).name == "mine" and load_project(f).name == "theirs"
    assert window.document.path == copy and not window.document.modified

    assert window.open_project(f)
    window.document.set(("name",), "mine again")
    _file_changed_elsewhere(f, "theirs again")
    monkeypatch.setattr(window, "ask_changed_on_disk", lambda msg: "overwrite")
    window.act_save.trigger()
    assert load_project(f).name == "mine again" and not window.document.modified
