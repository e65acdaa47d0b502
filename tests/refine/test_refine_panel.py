"""The Refine dock, driven like an artist would: settings are undoable project edits, the
Refine button runs the job on the viewport's frame and shows before/after."""

import shutil

import numpy as np
import pytest

pytest.importorskip("PySide6")

from studio.core import paths  # noqa: E402
from studio.core.settings import Settings  # noqa: E402


@pytest.fixture
def panel(qtbot):
    from studio.core.app import AppModel
    from studio.core.document import Document
    from studio.ui.context import StudioContext
    from studio.ui.job_runner import JobRunner
    from studio.ui.refine_panel import RefinePanel
    from studio.ui.viewport import Viewport

    viewport = Viewport()
    ctx = StudioContext(document=Document(), app=AppModel(Settings(device="cpu",
                                                                   precision="fp32")),
                        runner=JobRunner(), viewport=viewport)
    p = RefinePanel(ctx)
    qtbot.addWidget(p)
    qtbot.addWidget(viewport)
    p.show()
    yield p
    ctx.runner.cancel_all()
    qtbot.waitUntil(lambda: p.job is None, timeout=30000)


def _choose(panel, ref):
    idx = panel.model_combo.findData(ref)
    assert idx >= 0, [panel.model_combo.itemData(i) for i in range(panel.model_combo.count())]
    panel.model_combo.setCurrentIndex(idx)
    panel.model_combo.activated.emit(idx)


def test_without_a_default_refiner_the_panel_says_so(panel, monkeypatch):
    import studio.refine.locate as locate

    monkeypatch.setattr(locate, "default_refiner_dir", lambda: None)
    panel.sync()
    assert "no default refiner model is installed" in panel.model_note.text()
    assert not panel.model_note.isHidden()
    assert not panel.refine_button.isEnabled()  # no button that does nothing
    labels = [panel.model_combo.itemText(i) for i in range(panel.model_combo.count())]
    assert any("Stable Diffusion" in t for t in labels)  # the user's SD is still offered


def test_controls_are_undoable_edits(panel, tiny_pixel_refiner, qtbot):
    shutil.copytree(tiny_pixel_refiner, paths.user_models_dir() / "refiner" / "tiny")
    panel.sync()
    doc = panel.doc
    _choose(panel, "library:tiny")
    assert doc.project.refiner.model == "library:tiny"
    assert panel.refine_button.isEnabled() and panel.model_note.isHidden()
    assert panel.prompt.isHidden()  # the default-style refiner takes no text
    panel.strength.sliderPressed.emit()
    for v in (40, 55, 70):
        panel.strength.setValue(v)
    panel.strength.sliderReleased.emit()
    assert doc.project.refiner.strength == pytest.approx(0.7)
    panel.steps.setValue(6)
    panel.enabled_box.setChecked(True)
    assert doc.project.refiner.steps == 6 and doc.project.refiner.enabled
    doc.history.undo()  # enabled
    doc.history.undo()  # steps
    assert doc.project.refiner.steps == 20 and not panel.enabled_box.isChecked()
    doc.history.undo()  # the whole drag is one step
    assert doc.project.refiner.strength == pytest.approx(0.3)
    assert panel.strength.value() == 30
    doc.history.undo()
    assert doc.project.refiner.model == "default"


def test_refine_button_refines_the_viewport_frame_with_a_compare(panel, tiny_pixel_refiner,
                                                                  face16, qtbot):
    from PySide6.QtCore import Qt

    from studio.refine.images import resize_image
    from studio.ui.imageutil import from_qimage

    shutil.copytree(tiny_pixel_refiner, paths.user_models_dir() / "refiner" / "tiny")
    panel.sync()
    _choose(panel, "library:tiny")
    panel.steps.setValue(4)
    panel.ctx.viewport.set_image(face16)
    qtbot.mouseClick(panel.refine_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: panel.job is None, timeout=60000)
    assert "Refined to 32×32" in panel.status.text(), panel.status.text()
    shown = from_qimage(panel.ctx.viewport.image)[..., :3]
    assert shown.shape == (32, 32, 3)
    assert not np.array_equal(shown, resize_image(face16, (32, 32)))
    assert panel.ctx.viewport.compare_active
    panel.ctx.viewport.set_image(face16)  # a new preview frame ends the compare
    assert not panel.ctx.viewport.compare_active


def test_live_refine_shows_the_raw_frame_then_the_refined_one(panel, tiny_pixel_refiner,
                                                              face16, qtbot):
    from studio.ui.imageutil import from_qimage

    shutil.copytree(tiny_pixel_refiner, paths.user_models_dir() / "refiner" / "tiny")
    panel.sync()
    _choose(panel, "library:tiny")
    panel.steps.setValue(4)
    panel.pause_timer.setInterval(50)
    panel.live_box.setChecked(True)
    vp = panel.ctx.viewport
    vp.set_image(face16)  # a raw preview frame arrives: shown as it is...
    assert from_qimage(vp.image).shape[:2] == (16, 16)
    # ...then refined once the preview rests
    qtbot.waitUntil(lambda: vp.compare_active and panel.job is None, timeout=60000)
    assert from_qimage(vp.image).shape[:2] == (32, 32)
    other = face16[::-1].copy()
    vp.set_image(other)  # the next drag: the raw frame, the compare ends
    assert not vp.compare_active and from_qimage(vp.image).shape[:2] == (16, 16)
    qtbot.waitUntil(lambda: vp.compare_active and panel.job is None, timeout=60000)
    before = from_qimage(vp._before)[..., :3]  # the compare's "before" is the new frame
    from studio.refine.images import resize_image

    assert np.array_equal(before, resize_image(other, (32, 32)))
