"""Face panel controls: sliders (live, one undo step per drag), search, reset, pins,
randomise identity, and blending two faces."""

from __future__ import annotations

import random

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox

from studio.core import paths
from studio.core.settings import Settings
from studio.ui.imageutil import from_qimage

torch = pytest.importorskip("torch")


def _tiny_model_with_controls(path):
    from studio.face.controls import Control, ControlSet
    from studio.face.generator import Generator
    from studio.face.model_file import save_face_model

    torch.manual_seed(0)
    G = Generator(z_dim=32, w_dim=32, img_resolution=32, img_channels=3,
                  mapping_kwargs={"num_layers": 2},
                  synthesis_kwargs={"channel_base": 512, "channel_max": 32})
    with torch.no_grad():
        G.mapping.w_avg.copy_(G.mapping(torch.randn(64, 32), None).mean(dim=(0, 1)))
    rng = np.random.default_rng(0)

    def d():
        return (rng.normal(size=32) * 2).astype(np.float32)

    controls = ControlSet([
        Control("mouth_open", "Mouth open", "Expression", low=-3, high=3, direction=d()),
        Control("brow_height", "Brow height", "Expression", low=-3, high=3, direction=d()),
        Control("yaw", "Head turn", "Pose", low=-3, high=3, direction=d()),
        Control("jaw", "Jaw width", "Identity", low=-2, high=2, direction=d()),
    ])
    path.parent.mkdir(parents=True, exist_ok=True)
    save_face_model(path, G, name="Tiny controls", source="tests",
                    training={"untrained": True}, controls=controls)
    return path


@pytest.fixture(autouse=True)
def no_shipped_models(monkeypatch, tmp_path):
    monkeypatch.setattr("studio.core.model_registry.shipped_face_dir", lambda: tmp_path / "none")
    monkeypatch.setattr("studio.core.paths.shipped_models_dir", lambda: tmp_path / "none")
    monkeypatch.setattr("studio.face.model_ref.default_face_model", lambda: None)


@pytest.fixture
def window(qtbot):
    from studio.ui.main_window import MainWindow

    _tiny_model_with_controls(paths.user_models_dir() / "face" / "tiny.safetensors")
    w = MainWindow(Settings(device="cpu", precision="fp32"), offer_recovery=False)
    w.ask_save_changes = lambda: QMessageBox.StandardButton.Discard
    qtbot.addWidget(w)
    w.show()
    panel = w.panels["face"]
    qtbot.waitUntil(lambda: panel.is_ready() and bool(panel.controls_box.rows), timeout=20000)
    yield w
    w.document.history.mark_clean()
    w.close()


def _shown(window):
    return from_qimage(window.viewport.image)[..., :3]


def test_sliders_are_grouped_and_searchable(window):
    box = window.panels["face"].controls_box
    assert list(box.rows) == ["mouth_open", "brow_height", "yaw", "jaw"]
    assert set(box.groups) == {"Expression", "Pose", "Identity"}
    assert box.rows["yaw"].label.text() == "Head turn"
    # symmetric range: neutral sits in the middle of the slider
    assert box.rows["mouth_open"].slider.value() == 500
    box.search.setText("brow")
    assert box.rows["brow_height"].slider.isVisibleTo(box)
    assert not box.rows["mouth_open"].slider.isVisibleTo(box)
    assert not box.groups["Pose"].isVisibleTo(box)
    box.search.setText("pose")  # a group name finds its controls
    assert box.rows["yaw"].slider.isVisibleTo(box) and box.groups["Pose"].isVisibleTo(box)
    box.search.clear()
    assert all(r.slider.isVisibleTo(box) for r in box.rows.values())


def test_drag_a_control_updates_the_preview_and_is_one_undo_step(window, qtbot):
    panel = window.panels["face"]
    doc = window.document
    before = _shown(window)
    undo_depth = len(doc.history._undo)
    slider = panel.controls_box.rows["mouth_open"].slider
    slider.sliderPressed.emit()
    for v in range(500, 1001, 25):
        slider.setValue(v)
    slider.sliderReleased.emit()
    assert doc.project.avatar.controls["mouth_open"] == pytest.approx(3.0)
    assert len(doc.history._undo) == undo_depth + 1  # the whole drag is one step
    qtbot.waitUntil(lambda: panel.is_ready() and not np.array_equal(_shown(window), before),
                    timeout=20000)
    qtbot.waitUntil(panel.is_ready, timeout=20000)
    # the preview shows what the frame path renders for the document
    from studio.face.request import avatar_request, render_request

    engine = panel.preview.engine
    expected = render_request(engine, avatar_request(doc.project, doc.path))
    qtbot.waitUntil(lambda: np.array_equal(_shown(window), expected), timeout=20000)
    assert np.abs(expected.astype(int) - before.astype(int)).mean() > 1.0
    window.act_undo.trigger()
    assert "mouth_open" not in doc.project.avatar.controls
    assert slider.value() == 500  # the slider follows the document
    qtbot.waitUntil(lambda: panel.is_ready() and np.array_equal(_shown(window), before),
                    timeout=20000)


def test_reset_pin_and_reset_all(window, qtbot):
    box = window.panels["face"].controls_box
    doc = window.document
    box.rows["yaw"].slider.setValue(800)
    box.rows["jaw"].slider.setValue(100)
    assert doc.project.avatar.controls["yaw"] == pytest.approx(1.8)
    assert doc.project.avatar.controls["jaw"] == pytest.approx(-1.6)
    qtbot.mouseClick(box.rows["yaw"].reset, Qt.MouseButton.LeftButton)
    assert "yaw" not in doc.project.avatar.controls
    assert box.rows["yaw"].slider.value() == 500
    qtbot.mouseClick(box.reset_all, Qt.MouseButton.LeftButton)
    assert doc.project.avatar.controls == {}
    window.act_undo.trigger()  # reset all is one step
    assert doc.project.avatar.controls == {"jaw": pytest.approx(-1.6)}
    # a pin gives the control a timeline track; unpinning removes it; both undo
    qtbot.mouseClick(box.rows["mouth_open"].pin, Qt.MouseButton.LeftButton)
    assert [t.channel for t in doc.project.timeline.tracks] == ["mouth_open"]
    qtbot.mouseClick(box.rows["mouth_open"].pin, Qt.MouseButton.LeftButton)
    assert not doc.project.timeline.tracks
    window.act_undo.trigger()
    assert box.rows["mouth_open"].pin.isChecked()
    window.act_undo.trigger()
    assert not box.rows["mouth_open"].pin.isChecked()


def test_randomise_identity_keeps_expression(window):
    box = window.panels["face"].controls_box
    doc = window.document
    box.rows["mouth_open"].slider.setValue(900)
    box.rows["yaw"].slider.setValue(300)
    expression = dict(doc.project.avatar.controls)
    seed = doc.project.avatar.seed
    box.rand_limit.setValue(0.5)
    box.randomise_identity(random.Random(7))
    a = doc.project.avatar
    assert a.seed != seed
    assert a.controls["mouth_open"] == expression["mouth_open"]
    assert a.controls["yaw"] == expression["yaw"]
    assert -1.0 <= a.controls["jaw"] <= 1.0  # within half of its -2..2 range
    window.act_undo.trigger()  # one step
    assert doc.project.avatar.seed == seed and "jaw" not in doc.project.avatar.controls
    # a locked seed stays
    window.panels["face"].lock_seed.setChecked(True)
    box.rand_identity.click()
    assert doc.project.avatar.seed == seed and "jaw" in doc.project.avatar.controls


def test_blend_two_faces(window, qtbot, tmp_path):
    from studio.face.request import avatar_request, render_request

    panel = window.panels["face"]
    blend = panel.blend_box
    doc = window.document
    engine = panel.preview.engine
    before = _shown(window)
    other = engine.render(engine.ws_for(9, 0.7))
    blend.seed.setValue(9)
    blend.setChecked(True)
    assert doc.project.avatar.blend.seed == 9
    # drag the amount all the way: the picture becomes the other face
    blend.amount.sliderPressed.emit()
    for v in range(50, 101, 10):
        blend.amount.setValue(v)
    blend.amount.sliderReleased.emit()
    assert doc.project.avatar.blend.amount == 1.0
    qtbot.waitUntil(lambda: panel.is_ready() and np.array_equal(_shown(window), other),
                    timeout=20000)
    # halfway: w+ interpolated, rendered by the one frame path
    blend.amount.setValue(50)
    ws = 0.5 * engine.ws_for(0, 0.7) + 0.5 * engine.ws_for(9, 0.7)
    half = engine.render(ws.astype(np.float32))
    assert np.array_equal(render_request(engine, avatar_request(doc.project, doc.path)), half)
    qtbot.waitUntil(lambda: panel.is_ready() and np.array_equal(_shown(window), half),
                    timeout=20000)
    assert not np.array_equal(half, before) and not np.array_equal(half, other)
    # a latent file in the project folder (an inverted photo) as the other face
    project = tmp_path / "p.dhproj"
    doc.save(project)
    np.save(tmp_path / "photo.npy", engine.ws_for(9, 0.7))
    blend.set_latent("photo.npy")
    assert doc.project.avatar.blend.latent == "photo.npy"
    qtbot.waitUntil(lambda: panel.is_ready() and np.array_equal(_shown(window), half),
                    timeout=20000)
    # undo back to the start: blending off, the original face
    while doc.project.avatar.blend is not None:
        window.act_undo.trigger()
    assert not blend.isChecked()
    qtbot.waitUntil(lambda: panel.is_ready() and np.array_equal(_shown(window), before),
                    timeout=20000)
    # a project with a blend saves and opens again
    blend.setChecked(True)
    doc.save(project)
    from studio.core.project import load_project

    assert load_project(project).avatar.blend.seed == 9
