"""The first start opens a copy of the demo project; later starts do not."""

from __future__ import annotations

from studio.core import paths
from studio.core.demo import first_start_project, shipped_demo
from studio.core.project import load_project, resolve_asset


def test_first_start_opens_a_working_copy_of_the_demo():
    path = first_start_project([])
    assert path is not None and path.is_file()
    assert paths.data_dir() in path.parents and path != shipped_demo()
    project = load_project(path)
    clips = [c for c in project.timeline.clips if c.audio]
    assert len(clips) == 2  # the two sentences, their audio copied beside the project
    for clip in clips:
        assert resolve_asset(path, clip.audio).is_file()
    assert not list(path.parent.glob("*.py"))  # the script that made it stays behind
    # the copy is reused, never overwritten: the artist's changes to it survive
    path.write_text(path.read_text().replace('"name"', '"name"', 1))
    assert first_start_project([]) == path


def test_later_starts_open_nothing():
    assert first_start_project(["/some/project.dhproj"]) is None


def test_gui_first_start_shows_the_demo(qtbot):
    from studio.ui.app import open_main_window

    window = open_main_window(None, offer_recovery=False, demo_on_first_start=True)
    qtbot.addWidget(window)
    assert window.document.path is not None and window.document.path.name == "demo.dhproj"
    assert len(window.document.project.timeline.clips) == 2
    window.document.history.mark_clean()
    window.close()
