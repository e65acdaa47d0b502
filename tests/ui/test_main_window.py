import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
from PySide6.QtCore import QPoint, Qt
from PySide6.QtWidgets import QDockWidget, QFileDialog, QMessageBox

from studio.cli import main as cli_main
from studio.core.jobs import Job, JobError, Progress
from studio.core.project import Project, project_to_text
from studio.core.settings import Settings, load_settings
from studio.ui.imageutil import from_qimage

ROOT = Path(__file__).resolve().parents[2]


def _error_boxes(window):
    return [w for w in window.findChildren(QMessageBox)
            if w.objectName() == "errorBox" and w.isVisible()]


def test_window_has_docks_menus_status(window):
    titles = {d.windowTitle() for d in window.findChildren(QDockWidget)}
    assert {"Face", "Refine", "Voice", "Timeline", "Training", "Jobs", "Models"} <= titles
    menus = [a.text().replace("&", "") for a in window.menuBar().actions()]
    assert menus == ["File", "Edit", "View", "Help"]
    assert "Device:" in window.device_label.text()
    assert window.statusBar().isVisible()


def test_save_open_undo_through_menus(window, qtbot, tmp_path, monkeypatch):
    target = tmp_path / "hero.dhproj"
    window.document.set(("name",), "Hero")
    assert window.windowTitle().startswith("Untitled*")
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(target), ""))
    window.act_save.trigger()
    assert json.loads(target.read_text())["name"] == "Hero"
    assert window.windowTitle().startswith("hero.dhproj —")
    window.document.set(("avatar", "seed"), 77)
    window.act_undo.trigger()
    assert window.document.project.avatar.seed == 0
    window.act_redo.trigger()
    assert window.document.project.avatar.seed == 77
    window.act_undo.trigger()
    # open another project through the menu
    other = tmp_path / "other.dhproj"
    other.write_text(project_to_text(Project(name="Other")))
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(other), ""))
    window.act_open.trigger()
    assert window.document.project.name == "Other"
    assert window.document.path == other.resolve()
    assert str(other.resolve()) in window.settings.recent_projects
    assert not window.document.history.can_undo


def test_undo_shortcut_keys(window, qtbot):
    window.document.set(("avatar", "seed"), 5)
    window.activateWindow()
    qtbot.keyClick(window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert window.document.project.avatar.seed == 0


def test_corrupted_project_from_gui_gives_message_and_leaves_file(window, tmp_path, monkeypatch):
    bad = tmp_path / "broken.dhproj"
    bad.write_text('{"schema_version": 1, "avatar": {"seed": ')
    before = bad.read_bytes()
    window.document.set(("name",), "Keep me")
    window.document.history.mark_clean()
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(bad), ""))
    window.act_open.trigger()
    boxes = _error_boxes(window)
    assert boxes and "broken.dhproj" in boxes[0].text() and "not valid JSON" in boxes[0].text()
    assert bad.read_bytes() == before
    assert window.document.project.name == "Keep me"
    for b in boxes:
        b.close()


def test_unsaved_changes_prompt_can_cancel(window, monkeypatch):
    window.document.set(("name",), "Dirty")
    monkeypatch.setattr(window, "ask_save_changes", lambda: QMessageBox.StandardButton.Cancel)
    window.act_new.trigger()
    assert window.document.project.name == "Dirty"
    monkeypatch.setattr(window, "ask_save_changes", lambda: QMessageBox.StandardButton.Discard)
    window.act_new.trigger()
    assert window.document.project.name == "Untitled"


def test_autosave_and_recovery_after_kill(qtbot, tmp_path, studio_home):
    """A real app process edits, autosaves and is killed; the next start offers the work."""
    script = textwrap.dedent("""
        import os, signal
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
        from studio.ui.app import create_app
        from studio.ui.main_window import MainWindow
        from studio.core.settings import Settings
        app = create_app()
        w = MainWindow(Settings(), offer_recovery=False)
        w.show()
        w.document.set(("name",), "Unsaved masterpiece")
        w.document.set(("avatar", "seed"), 1234)
        assert w.autosave_now()
        assert w.wait_autosave()
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    env = dict(os.environ, STUDIO_HOME=str(studio_home))
    proc = subprocess.run([sys.executable, "-c", script], env=env, cwd=ROOT)
    assert proc.returncode == -9
    from studio.ui.main_window import MainWindow

    w = MainWindow(Settings(), offer_recovery=False)
    qtbot.addWidget(w)
    asked = []
    w.ask_recover = lambda entry: asked.append(entry) or True
    assert w.check_recovery()
    assert asked and w.document.project.name == "Unsaved masterpiece"
    assert w.document.project.avatar.seed == 1234
    assert w.document.modified  # recovered work is not saved yet
    w.document.history.mark_clean()
    w.close()
    # after a clean exit there is nothing left to recover
    w2 = MainWindow(Settings(), offer_recovery=False)
    qtbot.addWidget(w2)
    assert w2.recovery.pending() == []
    w2.close()


def test_autosave_only_when_modified(window):
    assert not window.autosave_now()
    window.document.set(("name",), "x")
    assert window.autosave_now()
    assert window.wait_autosave()
    assert window.recovery.file.exists()
    assert not window.autosave_now()  # nothing new since


def counting(ctx, n, delay=0.0, fail=False):
    for i in range(n):
        ctx.check()
        time.sleep(delay)
        yield Progress((i + 1) / n, f"step {i + 1}/{n}")
    if fail:
        raise JobError("the data folder vanished")
    return n


def test_jobs_panel_progress_failure_and_cancel(window, qtbot):
    panel = window.panels["jobs"]
    done = window.runner.start(Job("Count", counting, 4))
    qtbot.waitUntil(lambda: done.state.finished, timeout=5000)
    qtbot.waitUntil(lambda: panel._bars[done.id].value() == 1000, timeout=2000)
    failed = window.runner.start(Job("Doomed", counting, 2, fail=True))
    qtbot.waitUntil(lambda: panel._items[failed.id].text(2) == "failed", timeout=5000)
    assert panel._items[failed.id].text(3) == "the data folder vanished"
    panel.tree.setCurrentItem(panel._items[failed.id])
    assert "the data folder vanished" in panel.details.toPlainText()
    slow = window.runner.start(Job("Slow", counting, 10_000, delay=0.01))
    qtbot.waitUntil(lambda: slow.last.fraction and slow.last.fraction > 0, timeout=5000)
    panel.tree.setCurrentItem(panel._items[slow.id])
    assert panel.cancel_btn.isEnabled()
    qtbot.mouseClick(panel.cancel_btn, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: panel._items[slow.id].text(2) == "cancelled", timeout=2000)
    qtbot.mouseClick(panel.clear_btn, Qt.MouseButton.LeftButton)
    assert panel.tree.topLevelItemCount() == 0


def test_viewport_zoom_fit_and_compare(window, qtbot):
    vp = window.viewport
    img = np.zeros((64, 64, 3), np.uint8)
    img[:, :32] = (255, 0, 0)
    vp.set_image(img)
    vp.actual_size()
    assert vp.zoom == 1.0
    vp.zoom_by(2.0)
    assert vp.zoom == 2.0
    vp.fit()
    assert vp.zoom > 2.0  # a 64 px image fills the viewport
    # compare slider: before (blue) left of the split, after (red/black) right
    vp.set_before(np.full((64, 64, 3), (0, 0, 255), np.uint8))
    vp.set_split(0.75)
    shot = from_qimage(vp.grab().toImage())
    r = vp.image_rect()
    y = int(r.center().y())
    left = shot[y, int(r.x() + r.width() * 0.6)]
    right = shot[y, int(r.x() + r.width() * 0.9)]
    assert left[2] > 200 and left[0] < 50  # blue 'before'
    assert right[0] < 50 and right[2] < 50  # the black half of 'after'
    # drag the split handle with the mouse
    start = QPoint(int(r.x() + r.width() * 0.75), y)
    qtbot.mousePress(vp, Qt.MouseButton.LeftButton, pos=start)
    qtbot.mouseMove(vp, QPoint(int(r.x() + r.width() * 0.25), y))
    qtbot.mouseRelease(vp, Qt.MouseButton.LeftButton, pos=QPoint(int(r.x() + r.width() * 0.25), y))
    assert abs(vp.split - 0.25) < 0.05


def test_export_frame(window, tmp_path):
    window.viewport.set_image(np.full((8, 8, 3), 200, np.uint8))
    out = tmp_path / "f.png"
    assert window.export_frame(out)
    from PIL import Image

    assert np.asarray(Image.open(out))[0, 0, 0] == 200


def test_layout_persists(qtbot):
    from studio.ui.main_window import MainWindow

    settings = Settings()
    w = MainWindow(settings, offer_recovery=False)
    qtbot.addWidget(w)
    w.show()
    w.docks["models"].setFloating(True)
    w.docks["training"].hide()
    w.close()
    saved, _ = load_settings()
    assert saved.window_state
    w2 = MainWindow(saved, offer_recovery=False)
    qtbot.addWidget(w2)
    w2.show()
    assert w2.docks["models"].isFloating()
    assert not w2.docks["training"].isVisible()
    w2.reset_layout()
    assert not w2.docks["models"].isFloating()
    w2.close()


def test_preferences_bound_to_settings(window, qtbot):
    from studio.ui.preferences import PreferencesDialog

    dlg = PreferencesDialog(window.settings, window)
    qtbot.addWidget(dlg)
    dlg.device.setCurrentText("cpu")
    dlg.precision.setCurrentText("fp32")
    dlg.autosave.setValue(15)
    assert "CPU" in dlg.resolved.text()
    dlg.apply()
    window.apply_settings()
    assert window.settings.device == "cpu" and window.settings.autosave_interval_s == 15
    assert window.device_label.text() == "Device: CPU · fp32"
    assert window.autosave_timer.interval() == 15000
    saved, _ = load_settings()
    assert saved.precision == "fp32"


def test_about_lists_versions(window):
    box = window.show_about()
    assert "torch" in box.text() and "GPL-3.0-or-later" in box.text()
    box.close()


def test_screenshot_command(tmp_path):
    out = tmp_path / "shot.png"
    assert cli_main(["screenshot", str(out), "--size", "1000x700"]) == 0
    from PIL import Image

    img = np.asarray(Image.open(out).convert("RGB"))
    assert img.shape == (700, 1000, 3)
    assert img.std() > 5  # not a blank image: menus, docks and text are drawn


def test_screenshot_of_corrupted_project_fails_clearly(tmp_path, capsys):
    bad = tmp_path / "bad.dhproj"
    bad.write_text("[1, 2")
    before = bad.read_bytes()
    assert cli_main(["screenshot", str(tmp_path / "s.png"), "--project", str(bad)]) != 0
    err = capsys.readouterr().err
    assert "bad.dhproj" in err and "not valid JSON" in err
    assert bad.read_bytes() == before
    assert not (tmp_path / "s.png").exists()
