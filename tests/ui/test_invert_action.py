"""File → New avatar from photo: the real menu action runs the inversion job (Jobs panel,
live previews in the viewport, a loss plot) and sets the avatar as one undoable edit."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PySide6.QtCore import Qt

from studio.core.jobs import JobState
from studio.face.invert import InvertSettings


def _grace_hopper() -> Path:
    from matplotlib import cbook

    return Path(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))


def _tiny_model(path: Path) -> None:
    from studio.face.generator import Generator
    from studio.face.model_file import save_face_model

    torch.manual_seed(0)
    G = Generator(z_dim=16, w_dim=16, c_dim=0, img_resolution=16, img_channels=3,
                  mapping_kwargs={"num_layers": 2},
                  synthesis_kwargs={"channel_base": 128, "channel_max": 16})
    save_face_model(path, G, name="Tiny", source="tests")


@pytest.fixture
def saved_project(window, tmp_path):
    _tiny_model(tmp_path / "tiny.safetensors")
    window.document.set(("avatar", "model"), "tiny.safetensors", "Use tiny")
    window.document.set(("avatar", "seed"), 5, "Seed")
    window.document.save(tmp_path / "p.dhproj")
    return tmp_path / "p.dhproj"


def _quick(monkeypatch) -> None:
    import studio.ui.invert_action as ia

    monkeypatch.setattr(ia, "InvertSettings",
                        lambda **kw: InvertSettings(steps=6, start_seeds=0, preview_every=2))


def test_menu_action_inverts_a_photo_into_an_undoable_avatar(window, qtbot, monkeypatch,
                                                             saved_project):
    import studio.ui.invert_action as ia

    _quick(monkeypatch)
    photo = _grace_hopper()
    monkeypatch.setattr(ia.QFileDialog, "getOpenFileName",
                        staticmethod(lambda *a, **k: (str(photo), "")))
    errors: list[str] = []
    window.ctx.report_error = lambda title, text: errors.append(text)
    started = []
    window.runner.added.connect(started.append)
    window.act_invert.trigger()
    assert len(started) == 1
    job = started[0]
    assert job.kind.value == "invert"
    qtbot.waitUntil(lambda: job.state.finished, timeout=240_000)
    assert job.state is JobState.DONE, job.error
    doc = window.document
    qtbot.waitUntil(lambda: doc.project.avatar.latent is not None, timeout=10_000)
    avatar = doc.project.avatar
    latent = saved_project.parent / avatar.latent
    assert latent.is_file() and np.load(latent).shape == (6, 16)  # w+ of the tiny model
    assert avatar.model == "tiny.safetensors" and avatar.seed == 5
    # the viewport showed the live reconstruction; the monitor plotted the loss
    assert window.viewport.image is not None
    xs, ys = job.monitor.points["loss"]
    assert xs == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0] and all(np.isfinite(ys))
    assert "PSNR" in job.monitor.status.text()
    assert not errors
    # one undo step brings the previous face back
    window.undo()
    assert doc.project.avatar.latent is None and doc.project.avatar.seed == 5
    window.redo()
    assert doc.project.avatar.latent == avatar.latent


def test_a_photo_without_a_face_is_reported_and_changes_nothing(window, qtbot, monkeypatch,
                                                                saved_project, tmp_path):
    from PIL import Image

    _quick(monkeypatch)
    wall = tmp_path / "wall.png"
    Image.fromarray(np.full((200, 240, 3), 90, np.uint8)).save(wall)
    errors: list[str] = []
    window.ctx.report_error = lambda title, text: errors.append(text)
    job = window.new_avatar_from_photo(wall)
    qtbot.waitUntil(lambda: job.state.finished, timeout=120_000)
    qtbot.waitUntil(lambda: bool(errors), timeout=10_000)
    assert job.state is JobState.FAILED
    assert "wall.png" in errors[0] and "no face found" in errors[0]
    assert window.document.project.avatar.latent is None


def test_cancel_from_the_monitor(window, qtbot, monkeypatch, saved_project):
    import studio.ui.invert_action as ia

    monkeypatch.setattr(ia, "InvertSettings",
                        lambda **kw: InvertSettings(steps=100_000, start_seeds=0))
    job = window.new_avatar_from_photo(_grace_hopper())
    qtbot.waitUntil(lambda: "loss" in job.monitor.points, timeout=120_000)
    qtbot.mouseClick(job.monitor.cancel_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: job.state.finished, timeout=10_000)
    assert job.state is JobState.CANCELLED
    assert window.document.project.avatar.latent is None
