import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QDockWidget, QFileDialog, QMessageBox

from studio.cli import main as cli_main
from studio.core.jobs import Job, JobError, JobKind, JobState, Lane, Progress
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
    assert menus == ["File", "Edit", "View", "Playback", "Help"]
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


def test_finished_job_row_says_done_not_its_last_step(window, qtbot):
    panel = window.panels["jobs"]
    job = window.runner.start(Job("Animate", counting, 3))
    qtbot.waitUntil(lambda: panel._items[job.id].text(2) == "done")
    assert panel._items[job.id].text(3).startswith("done in ")
    assert "step 3/3" not in panel._items[job.id].text(3)


def _blocking(ctx, started, release):
    started.set()
    while not release.wait(0.01):
        ctx.check()
    return "long"


def test_callbacks_arrive_on_the_ui_thread_in_order(window, qtbot):
    import threading

    seen = []
    on_ui = []

    def note(what):
        on_ui.append(threading.current_thread() is threading.main_thread())
        seen.append(what)

    job = window.runner.start(Job("Count", counting, 3, kind=JobKind.MEASURE),
                              on_progress=lambda p: note(p.fraction),
                              on_done=lambda r: note(("done", r)),
                              on_finished=lambda j: note("finished"))
    qtbot.waitUntil(lambda: "finished" in seen)
    assert seen == [1 / 3, 2 / 3, 1.0, ("done", 3), "finished"] and all(on_ui)
    assert job.lane is Lane.INTERACTIVE


def test_speak_runs_while_long_jobs_fill_their_lane(window, qtbot):
    """A training run and a render occupy the long lane (a third long job waits): Speak,
    an interactive job, still runs and shows its speech."""
    import threading

    release = threading.Event()
    started = [threading.Event() for _ in range(window.runner.lanes.widths[Lane.LONG])]
    kinds = [JobKind.TRAIN, JobKind.RENDER, JobKind.INVERT]
    long_jobs = [window.runner.start(Job(f"Long {i}", _blocking, s, release,
                                         kind=kinds[i % len(kinds)]))
                 for i, s in enumerate(started)]
    waiting = window.runner.start(Job("Queued render", counting, 1, kind=JobKind.RENDER))
    try:
        assert all(s.wait(10) for s in started)
        voice = window.panels["voice"]
        edit = voice.voice_combo.lineEdit()
        edit.selectAll()
        qtbot.keyClicks(edit, "en-us")
        qtbot.keyClick(edit, Qt.Key.Key_Return)
        voice.text_edit.clear()
        qtbot.keyClicks(voice.text_edit, "Hello there")
        with qtbot.waitSignal(voice.speech_ready, timeout=60000):
            voice.speak_btn.click()
        assert all(j.state is JobState.RUNNING for j in long_jobs)
        assert waiting.state is JobState.PENDING  # the long lane is still full
        speak = next(j for j in window.runner.jobs if j.name == "Speak")
        assert speak.kind is JobKind.SPEAK and speak.state is JobState.DONE
    finally:
        release.set()
    assert window.runner.wait(10000)
    assert waiting.state is JobState.DONE


def test_preview_stats_show_render_time_and_fps_only_while_frames_arrive(window, qtbot):
    # the real preview first: once the face is shown and nothing moves, the label gives
    # the last render's time and no frame rate
    qtbot.waitUntil(window.panels["face"].is_ready, timeout=60000)
    qtbot.waitUntil(lambda: window.fps_label.text().startswith("Preview: ")
                    and "fps" not in window.fps_label.text(), timeout=10000)
    assert window.fps_label.text().endswith(" ms")
    now = [time.monotonic() + 1000.0]  # a clock of our own, after every real frame
    window._clock = lambda: now[0]
    window.set_preview_stats(0.3, 5811.7)  # one frame (e.g. after opening a project)
    window.set_preview_stats(42.4, 5811.7)  # and another in the same burst
    assert window.fps_label.text() == "Preview: 42 ms"  # a burst is not a frame rate
    now[0] += 2.0
    for _ in range(10):  # a drag: a frame every 50 ms
        window.set_preview_stats(40.0, None)
        now[0] += 0.05
    assert window.fps_label.text() == "Preview: 40 ms · 20.0 fps"
    now[0] += 5.0  # frames stopped: the idle timer drops the rate, keeps the last time
    qtbot.waitUntil(lambda: window.fps_label.text() == "Preview: 40 ms")


def test_models_panel_tooltips_name_path_and_size(window, tmp_path):
    from PySide6.QtWidgets import QTreeWidgetItemIterator

    folder = tmp_path / "more" / "refiner" / "a-very-long-refiner-name-that-does-not-fit"
    folder.mkdir(parents=True)
    (folder / "model_index.json").write_text("{}" + " " * 2046)  # 2 KB
    window.settings.model_dirs = [str(tmp_path / "more")]
    window.apply_settings()  # the app model rescans; the panel lists it
    tree = window.panels["models"].tree
    items = []
    it = QTreeWidgetItemIterator(tree)
    while it.value():
        items.append(it.value())
        it += 1
    item = next(i for i in items if i.text(0) == folder.name)
    assert item.toolTip(0) == f"{folder.name}\n{folder}\n2.0 KB"
    assert str(folder) in item.toolTip(2) and "2.0 KB" in item.toolTip(2)
    assert "format: diffusers" in item.toolTip(1)


def test_import_model_is_a_job_that_reports_errors(window, qtbot, tmp_path):
    bad = tmp_path / "evil.pkl"
    bad.write_bytes(b"\x80\x04cos\nsystem\n(S'echo pwned'\ntR.")
    job = window.import_model(bad)
    assert job.kind is JobKind.IMPORT and job.lane is Lane.INTERACTIVE
    assert job.id in window.panels["jobs"]._items
    qtbot.waitUntil(lambda: bool(_error_boxes(window)), timeout=30000)
    box = _error_boxes(window)[-1]
    assert box.windowTitle() == "Import failed" and "evil.pkl" in box.text()
    box.close()


def _tiny_face(path):
    import torch

    from studio.face.generator import Generator
    from studio.face.model_file import save_face_model

    torch.manual_seed(0)
    G = Generator(z_dim=32, w_dim=32, img_resolution=32, img_channels=3,
                  mapping_kwargs={"num_layers": 2},
                  synthesis_kwargs={"channel_base": 512, "channel_max": 32})
    path.parent.mkdir(parents=True, exist_ok=True)
    save_face_model(path, G, name="Tiny", source="tests", training={"untrained": True})


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


@pytest.mark.parametrize("field,value,label", [
    ("precision", "bf16", "Device: CPU · bf16"),
    pytest.param("device", "cuda", "Device: CUDA · fp32",
                 marks=pytest.mark.skipif(not _cuda(), reason="needs a CUDA GPU")),
])
def test_device_chosen_in_preferences_is_the_one_the_preview_renders_on(qtbot, field, value,
                                                                        label):
    """Preferences → another device or precision (the dialog itself, OK clicked): the status
    bar says so and the preview reloads its engine there and renders with it."""
    from PySide6.QtWidgets import QDialogButtonBox

    from studio.core import paths
    from studio.ui.main_window import MainWindow
    from studio.ui.preferences import PreferencesDialog

    _tiny_face(paths.user_models_dir() / "face" / "tiny.safetensors")
    w = MainWindow(Settings(device="cpu", precision="fp32"), offer_recovery=False)
    w.ask_save_changes = lambda: QMessageBox.StandardButton.Discard
    qtbot.addWidget(w)
    w.show()
    face = w.panels["face"]
    w.document.set(("avatar", "model"), "library:tiny.safetensors")
    qtbot.waitUntil(lambda: face.preview.engine is not None and face.is_ready(), timeout=30000)
    old_engine = face.preview.engine
    assert (old_engine.device_choice.device, old_engine.device_choice.precision) == ("cpu",
                                                                                   "fp32")
    rendered = face.preview.rendered

    w.findChild(QAction, "actionPreferences").trigger()
    qtbot.waitUntil(lambda: any(d.isVisible() for d in w.findChildren(PreferencesDialog)))
    dlg = next(d for d in w.findChildren(PreferencesDialog) if d.isVisible())
    getattr(dlg, field).setCurrentText(value)
    dlg.findChild(QDialogButtonBox).button(QDialogButtonBox.StandardButton.Ok).click()

    assert w.device_label.text() == label
    assert getattr(w.settings, field) == value
    qtbot.waitUntil(lambda: face.preview.engine is not None
                    and face.preview.engine is not old_engine and face.is_ready(),
                    timeout=30000)
    engine = face.preview.engine
    assert engine.device_choice == w.app.device == face.preview.device
    assert w.device_label.text() == f"Device: {engine.device_choice.label}"
    expected = {"device": "cuda", "precision": "bf16"}[field]
    where = engine.device.type if field == "device" else engine.device_choice.precision
    assert where == expected
    params = next(engine.G.parameters())
    assert params.device.type == engine.device.type  # the weights moved there too
    assert face.preview.rendered > rendered  # a frame rendered by the new engine
    w.close()


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
