"""Face panel: live preview off the UI thread, newest request wins, edits are undoable."""

import threading

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox

from studio.core import paths
from studio.core.settings import Settings
from studio.ui.imageutil import from_qimage

torch = pytest.importorskip("torch")


def _tiny_model(path, seed=0, resolution=32):
    from studio.face.generator import Generator
    from studio.face.model_file import save_face_model

    torch.manual_seed(seed)
    G = Generator(z_dim=32, w_dim=32, img_resolution=resolution, img_channels=3,
                  mapping_kwargs={"num_layers": 2},
                  synthesis_kwargs={"channel_base": 512, "channel_max": 32})
    with torch.no_grad():
        for name, p in G.named_parameters():
            if name.endswith("noise_strength"):
                p.fill_(0.1)
        G.mapping.w_avg.copy_(G.mapping(torch.randn(64, 32), None).mean(dim=(0, 1)))
    path.parent.mkdir(parents=True, exist_ok=True)
    save_face_model(path, G, name=f"Tiny {seed}", source="tests", training={"untrained": True})
    return path


@pytest.fixture(autouse=True)
def no_shipped_models(request, monkeypatch, tmp_path):
    """Most tests use tiny models of their own, not the shipped default."""
    if "shipped" in request.node.name:
        return
    monkeypatch.setattr("studio.core.model_registry.shipped_face_dir", lambda: tmp_path / "none")
    monkeypatch.setattr("studio.core.paths.shipped_models_dir", lambda: tmp_path / "none")
    monkeypatch.setattr("studio.face.model_ref.default_face_model", lambda: None)


def test_shipped_default_model_shows(qtbot):
    from studio.core.model_registry import default_face_model
    from studio.ui.main_window import MainWindow

    assert default_face_model() is not None
    w = MainWindow(Settings(), offer_recovery=False)
    w.ask_save_changes = lambda: QMessageBox.StandardButton.Discard
    qtbot.addWidget(w)
    panel = w.panels["face"]
    qtbot.waitUntil(panel.is_ready, timeout=60000)
    assert w.document.project.avatar.model == "default"
    img = _shown(w)
    assert img.shape[0] == img.shape[1] >= 64 and img.std() > 10  # a picture, not a flat field
    assert "Default procedural faces" in panel.model_combo.currentText()
    w.close()


@pytest.fixture
def face_window(qtbot):
    from studio.ui.main_window import MainWindow

    _tiny_model(paths.user_models_dir() / "face" / "tiny.safetensors")
    w = MainWindow(Settings(device="cpu", precision="fp32"), offer_recovery=False)
    w.ask_save_changes = lambda: QMessageBox.StandardButton.Discard
    qtbot.addWidget(w)
    w.show()
    panel = w.panels["face"]
    qtbot.waitUntil(panel.is_ready, timeout=20000)
    yield w
    w.close()


def _shown(window):
    return from_qimage(window.viewport.image)[..., :3]


def test_first_frame_appears(face_window):
    panel = face_window.panels["face"]
    assert face_window.viewport.image is not None
    assert face_window.viewport.image.width() == 32
    assert "32×32" in panel.model_info.text()
    assert "Preview:" in face_window.fps_label.text() and "ms" in face_window.fps_label.text()


def test_truncation_drag_is_live_and_one_undo_step(face_window, qtbot):
    panel = face_window.panels["face"]
    doc = face_window.document
    before = _shown(face_window)
    slider = panel.trunc
    engine = face_window.panels["face"].preview.engine
    render_threads = []
    real_render = engine.render

    def spy(*args, **kwargs):
        render_threads.append(threading.current_thread())
        return real_render(*args, **kwargs)

    engine.render = spy
    # a drag: press, many value changes, release — rendered off the UI thread
    slider.sliderPressed.emit()
    for v in range(70, 20, -2):
        slider.setValue(v)
    slider.sliderReleased.emit()
    assert doc.project.avatar.truncation == pytest.approx(0.22)
    qtbot.waitUntil(panel.is_ready, timeout=20000)
    after = _shown(face_window)
    assert render_threads and threading.main_thread() not in render_threads
    assert np.abs(after.astype(int) - before.astype(int)).mean() > 1.0
    # one undo restores the previous image exactly
    face_window.act_undo.trigger()
    assert doc.project.avatar.truncation == pytest.approx(0.7)
    qtbot.waitUntil(panel.is_ready, timeout=20000)
    qtbot.wait(50)
    assert np.array_equal(_shown(face_window), before)


def test_newest_request_wins(face_window, qtbot):
    panel = face_window.panels["face"]
    preview = panel.preview
    start = preview.rendered
    for seed in range(1, 40):
        face_window.document.set(("avatar", "seed"), seed)
    qtbot.waitUntil(panel.is_ready, timeout=20000)
    assert preview.rendered - start < 39  # stale requests were skipped
    # the picture on screen is the one for the last seed
    engine = face_window.panels["face"].preview.engine
    expected = engine.render(engine.ws_for(39, 0.7))
    assert np.array_equal(_shown(face_window), expected)


def test_seed_buttons_and_locks(face_window, qtbot):
    panel = face_window.panels["face"]
    doc = face_window.document
    qtbot.mouseClick(panel.next_btn, Qt.MouseButton.LeftButton)
    assert doc.project.avatar.seed == 1
    qtbot.mouseClick(panel.prev_btn, Qt.MouseButton.LeftButton)
    assert doc.project.avatar.seed == 0
    panel.lock_seed.setChecked(True)
    assert "seed" in doc.project.avatar.locks
    qtbot.mouseClick(panel.rand_btn, Qt.MouseButton.LeftButton)
    assert doc.project.avatar.seed == 0  # locked
    panel.lock_seed.setChecked(False)
    qtbot.mouseClick(panel.rand_btn, Qt.MouseButton.LeftButton)
    assert doc.project.avatar.seed != 0


def test_style_mixing_changes_the_face(face_window, qtbot):
    panel = face_window.panels["face"]
    qtbot.waitUntil(panel.is_ready, timeout=20000)
    before = _shown(face_window)
    panel.mix_seed.setValue(5)
    panel.mix_on.setChecked(True)
    panel.mix_from.setValue(2)
    panel.mix_to.setValue(6)
    a = face_window.document.project.avatar
    assert a.mix_seed == 5 and tuple(a.mix_layers) == (2, 6)
    qtbot.waitUntil(panel.is_ready, timeout=20000)
    qtbot.wait(50)
    assert not np.array_equal(_shown(face_window), before)


def test_broken_model_file_is_reported(qtbot):
    from studio.ui.main_window import MainWindow

    bad = paths.user_models_dir() / "face" / "broken.safetensors"
    bad.parent.mkdir(parents=True, exist_ok=True)
    bad.write_bytes(b"not a model at all")
    w = MainWindow(Settings(), offer_recovery=False)
    qtbot.addWidget(w)
    panel = w.panels["face"]
    qtbot.waitUntil(panel.is_ready, timeout=5000)
    assert "No face model" in w.viewport._message
    assert panel.model_combo.isEnabled() is False
    w.close()


def test_import_model_from_file_menu(face_window, qtbot, tmp_path, monkeypatch):
    """File → Import Model… converts a rosinality checkpoint and selects it."""
    import sys
    from pathlib import Path

    from PySide6.QtWidgets import QFileDialog

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "face"))
    from import_fixtures import rosinality_generator_state, write_rosinality_export

    sd = rosinality_generator_state(seed=3)
    latent_avg = torch.randn(sd["style.1.weight"].shape[0]) * 0.1
    ckpt = write_rosinality_export(tmp_path / "artist.pt", sd, latent_avg)
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(ckpt), ""))
    face_window.act_import_model.trigger()
    doc = face_window.document
    qtbot.waitUntil(lambda: doc.project.avatar.model == "library:artist.safetensors",
                    timeout=30000)
    assert (paths.user_models_dir() / "face" / "artist.safetensors").is_file()
    panel = face_window.panels["face"]
    qtbot.waitUntil(panel.is_ready, timeout=20000)
    assert "artist" in panel.model_combo.currentText().lower() or panel.models


def test_import_of_hostile_file_reports_error(face_window, qtbot, tmp_path):
    bad = tmp_path / "evil.pkl"
    bad.write_bytes(b"\x80\x04cos\nsystem\n(S'echo pwned'\ntR.")
    job = face_window.import_model(bad)
    qtbot.waitUntil(lambda: job.state.finished, timeout=10000)
    qtbot.wait(50)
    boxes = [w for w in face_window.findChildren(QMessageBox) if w.objectName() == "errorBox"]
    assert boxes and "evil.pkl" in boxes[-1].text()


def test_low_res_frame_first_when_full_frames_are_slow(qtbot):
    from studio.ui.main_window import MainWindow

    _tiny_model(paths.user_models_dir() / "face" / "tiny64.safetensors", resolution=64)
    w = MainWindow(Settings(device="cpu", precision="fp32"), offer_recovery=False)
    w.ask_save_changes = lambda: QMessageBox.StandardButton.Discard
    qtbot.addWidget(w)
    panel = w.panels["face"]
    qtbot.waitUntil(panel.is_ready, timeout=20000)
    frames = []
    panel.preview.frame_ready.connect(lambda s, img, ms, final: frames.append((img, final)))
    panel.preview.LOW_RES_AFTER_MS = 0.0  # treat every full frame as slow
    w.document.set(("avatar", "seed"), 11)
    qtbot.waitUntil(lambda: any(f for _, f in frames), timeout=20000)
    kinds = [f for _, f in frames]
    assert kinds[0] is False and kinds[-1] is True  # coarse frame first, then the full one
    coarse, full = frames[0][0], frames[-1][0]
    assert coarse.shape == full.shape == (64, 64, 3)  # shown at the same size
    assert not np.array_equal(coarse, full)
    w.close()


def test_panel_and_generate_give_identical_pixels(face_window, qtbot, tmp_path):
    """One frame path: the preview and `studio generate` render the same request alike."""
    from studio.cli import main
    from studio.face.engine import FaceEngine
    from studio.face.model_file import load_face_model
    from studio.face.request import avatar_request, render_request
    from studio.render.frame import frame_request

    panel = face_window.panels["face"]
    doc = face_window.document
    doc.set_many({("avatar", "seed"): 5, ("avatar", "truncation"): 0.5,
                  ("avatar", "mix_seed"): 9, ("avatar", "mix_layers"): (2, 6)}, "setup")
    qtbot.waitUntil(panel.is_ready, timeout=20000)
    shown = _shown(face_window)
    model = paths.user_models_dir() / "face" / "tiny.safetensors"
    out = tmp_path / "gen.png"
    assert main(["generate", "--model", str(model), "--seed", "5", "--truncation", "0.5",
                 "--mix-seed", "9", "--mix-layers", "2:6", "--device", "cpu",
                 "--precision", "fp32", "-o", str(out)]) == 0
    from PIL import Image

    generated = np.asarray(Image.open(out).convert("RGB"))
    assert np.array_equal(generated, shown)
    engine = FaceEngine(load_face_model(model), panel.preview.device)
    assert np.array_equal(render_request(engine, avatar_request(doc.project, doc.path)), shown)
    assert np.array_equal(render_request(engine, frame_request(doc.project, 0.0, doc.path)), shown)


def test_mix_layers_out_of_range_are_refused_not_clamped(face_window, qtbot):
    panel = face_window.panels["face"]
    doc = face_window.document
    num_ws = panel.preview.engine.num_ws
    # turning mixing on with a stored range this model lacks picks a valid one in the edit
    assert tuple(doc.project.avatar.mix_layers) == (8, 18) and num_ws < 18
    panel.mix_on.click()
    assert doc.project.avatar.mix_seed is not None
    assert tuple(doc.project.avatar.mix_layers) == (num_ws // 2, num_ws)
    # the widget says the end is not included, as the CLI's A:B (layers A..B-1)
    labels = [w.text() for w in panel.findChildren(type(panel.problem))]
    assert "up to (excl.)" in labels and "not including" in panel.mix_to.toolTip()
    qtbot.waitUntil(panel.is_ready, timeout=20000)
    # a range past the model's layers (e.g. from a project made with a bigger model) is an
    # error the panel shows, as the CLI does, instead of a silently clamped picture
    doc.set(("avatar", "mix_layers"), (2, num_ws + 4))
    assert panel.problem.isVisible() and "do not fit this model" in panel.problem.text()


def test_latent_file_is_read_once_per_change(face_window, qtbot, tmp_path, monkeypatch):
    from studio.face import request as request_mod

    panel = face_window.panels["face"]
    doc = face_window.document
    engine = panel.preview.engine
    project = tmp_path / "p.dhproj"
    doc.save(project)
    np.save(tmp_path / "w.npy", np.zeros((engine.num_ws, engine.w_dim), np.float32))
    reads = []
    real_load = np.load
    monkeypatch.setattr(request_mod.np, "load",
                        lambda *a, **k: reads.append(a[0]) or real_load(*a, **k))
    doc.set(("avatar", "latent"), "w.npy")
    for i in range(10):
        doc.set(("avatar", "noise_mode"), ("const", "none")[i % 2])
    qtbot.waitUntil(panel.is_ready, timeout=20000)
    assert len(reads) == 1
    assert not panel.problem.isVisible()
    # a broken latent is a clear problem on the panel, not a preview that never draws
    (tmp_path / "empty.npy").write_bytes(b"")
    doc.set(("avatar", "latent"), "empty.npy")
    assert panel.problem.isVisible() and "empty.npy" in panel.problem.text()
    huge = tmp_path / "huge.npy"
    huge.write_bytes(b"\x93NUMPY\x01\x00v\x00{'descr': '<f4', 'fortran_order': False, "
                     b"'shape': (1000000, 1000000), }" + b" " * 50 + b"\n")
    doc.set(("avatar", "latent"), "huge.npy")
    assert "huge.npy" in panel.problem.text() and "does not fit the file" in panel.problem.text()
