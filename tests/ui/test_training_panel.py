"""Training panel: a tiny fine-tune run end to end through the real widgets."""

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox

from studio.core import paths
from studio.core.jobs import JobKind, JobState, Progress
from studio.core.settings import Settings

torch = pytest.importorskip("torch")


def _tiny_model(path):
    from studio.face.discriminator import Discriminator
    from studio.face.generator import Generator
    from studio.face.model_file import save_face_model

    torch.manual_seed(0)
    G = Generator(z_dim=32, w_dim=32, img_resolution=32, img_channels=3,
                  mapping_kwargs={"num_layers": 2},
                  synthesis_kwargs={"channel_base": 512, "channel_max": 32})
    D = Discriminator(img_resolution=32, img_channels=3, channel_base=512, channel_max=32)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_face_model(path, G, D=D, name="Tiny base", training={"untrained": True})


@pytest.fixture
def train_window(qtbot, tmp_path):
    from studio.ui.main_window import MainWindow

    _tiny_model(paths.user_models_dir() / "face" / "tinybase.safetensors")
    data = tmp_path / "data"
    data.mkdir()
    rng = np.random.default_rng(0)
    for i in range(12):
        img = np.full((32, 32, 3), (200, 60, 40), np.uint8)
        img[8:24, 8:24] = rng.integers(0, 255, 3)
        Image.fromarray(img).save(data / f"{i:03d}.png")
    w = MainWindow(Settings(device="cpu", precision="fp32"), offer_recovery=False)
    w.ask_save_changes = lambda: QMessageBox.StandardButton.Discard
    qtbot.addWidget(w)
    w.show()
    yield w, data
    w.close()


def test_estimate_and_tiny_run(train_window, qtbot):
    window, data = train_window
    panel = window.panels["training"]
    assert "GB" in panel.estimate.text() and "parameters" in panel.estimate.text()
    panel.data_edit.setText(str(data))
    panel.base.setCurrentIndex(panel.base.findText("Tiny base (32 px)"))
    panel.preset.setCurrentIndex(0)  # few photos
    panel.kimg.setValue(0.04)  # 40 images
    panel.batch.setValue(4)
    panel.name.setText("tuned")
    qtbot.mouseClick(panel.start_btn, Qt.MouseButton.LeftButton)
    job = panel.job
    assert job is not None and not panel.start_btn.isEnabled() and panel.running
    assert job.kind is JobKind.TRAIN
    # the panel's own state: its ending arrives through the job's callbacks, after every
    # progress event, so there is nothing left to race with once it says it stopped
    qtbot.waitUntil(lambda: not panel.running, timeout=120000)
    assert job.error is None, job.error
    assert job.state is JobState.DONE
    assert (paths.user_models_dir() / "face" / "tuned.safetensors").is_file()
    assert panel.series.get("loss_G") and panel.series.get("loss_D")
    assert panel.samples.pixmap() is not None and not panel.samples.pixmap().isNull()
    assert panel.use_btn.isEnabled()
    # click() rather than a synthetic mouse event at the button's centre: in a tabbed dock
    # the button can lie under another widget offscreen, and the event then goes there
    panel.use_btn.click()
    assert window.document.project.avatar.model == "library:tuned.safetensors"


def test_start_without_data_says_why(train_window, qtbot):
    window, _ = train_window
    panel = window.panels["training"]
    panel.data_edit.setText("")
    assert panel.start() is None
    boxes = [b for b in window.findChildren(QMessageBox) if b.objectName() == "errorBox"]
    assert boxes and "training images" in boxes[-1].text()


def test_new_photo_set_ingests_and_drops_crops(train_window, qtbot, tmp_path):
    """Training → New photo set with a real face photo, a broken file and a non-face."""
    import shutil
    from pathlib import Path

    import matplotlib

    window, _ = train_window
    panel = window.panels["training"]
    photos = tmp_path / "photos"
    photos.mkdir()
    grace = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
    shutil.copy(grace, photos / "grace.jpg")
    (photos / "broken.jpg").write_bytes(b"\xff\xd8\xff garbage")
    Image.fromarray(np.tile(np.linspace(0, 255, 300, dtype=np.uint8), (300, 1))).save(
        photos / "gradient.png")
    dialog = panel.new_photo_set(show=False)
    qtbot.addWidget(dialog)
    dialog.photos.setText(str(photos))
    dialog.output.setText(str(tmp_path / "set"))
    dialog.size.setCurrentIndex(dialog.size.findData(128))
    job = dialog.run()
    assert job.kind is JobKind.INGEST
    qtbot.waitUntil(lambda: dialog.run_btn.isEnabled(), timeout=120000)  # its ending arrived
    assert job.error is None, job.error
    assert dialog.crops.count() == 1
    assert dialog.rejected.topLevelItemCount() == 2
    assert (tmp_path / "set" / "grace.png").is_file()
    dialog.accept()
    assert panel.data_edit.text() == str(tmp_path / "set")
    dialog.crops.item(0).setSelected(True)
    qtbot.mouseClick(dialog.remove_btn, Qt.MouseButton.LeftButton)
    assert dialog.crops.count() == 0
    assert not (tmp_path / "set" / "grace.png").exists()


def test_estimate_time_measures_off_the_ui_thread(train_window, qtbot):
    from studio.train.estimate import clear_speed_cache

    clear_speed_cache()
    window, data = train_window
    panel = window.panels["training"]
    panel.data_edit.setText(str(data))
    panel.base.setCurrentIndex(panel.base.findText("Tiny base (32 px)"))
    panel.batch.setValue(4)
    panel.kimg.setValue(1.0)
    assert "Estimate time" in panel.estimate.text() and panel.time_btn.isEnabled()
    qtbot.mouseClick(panel.time_btn, Qt.MouseButton.LeftButton)
    assert "measuring" in panel.estimate.text() and panel.time_btn.text() == "Stop estimating"
    job = panel.estimate_job
    assert job in window.runner.jobs and job.kind is JobKind.ESTIMATE
    qtbot.waitUntil(lambda: "img/s" in panel.estimate.text(), timeout=120000)
    assert job.state is JobState.DONE and not panel.measuring
    text = panel.estimate.text()
    assert "Measured on this machine" in text and "on CPU" in text and "32 px" in text
    assert "for 1 kimg" in text and "about" in text and "GB" in text
    assert panel.time_btn.isEnabled() and panel.time_btn.text() == "Estimate time"
    jobs = len(window.runner.jobs)
    panel.kimg.setValue(250.0)  # only the length: the time follows without a new measurement
    assert "for 250 kimg" in panel.estimate.text() and len(window.runner.jobs) == jobs
    panel.batch.setValue(8)  # the speed depends on the batch: the old result no longer applies
    assert "img/s" not in panel.estimate.text()
    panel.batch.setValue(4)  # back again: the result applies again
    assert "img/s" in panel.estimate.text()


def test_newer_time_request_supersedes_and_errors_show_in_the_label(train_window, qtbot,
                                                                     tmp_path):
    window, _ = train_window
    panel = window.panels["training"]
    bad = tmp_path / "broken.safetensors"
    bad.write_bytes(b"not a model")
    panel.base.addItem("Broken", str(bad))
    panel.base.setCurrentIndex(panel.base.findText("Tiny base (32 px)"))
    panel.batch.setValue(4)
    first = panel.measure_time()
    panel.base.setCurrentIndex(panel.base.findText("Broken"))  # the first one is now stale
    assert first.ctx.cancelled and panel.estimate_job is None
    second = panel.measure_time()
    qtbot.waitUntil(lambda: "cannot measure" in panel.estimate.text(), timeout=120000)
    assert "broken.safetensors" in panel.estimate.text()
    qtbot.waitUntil(lambda: not panel.measuring, timeout=120000)
    assert second.state is JobState.FAILED and first.state is not JobState.DONE
    assert "img/s" not in panel.estimate.text() and panel.time_btn.isEnabled()


def test_start_waits_for_a_running_measurement(train_window, qtbot):
    window, data = train_window
    panel = window.panels["training"]
    panel.data_edit.setText(str(data))
    panel.base.setCurrentIndex(panel.base.findText("Tiny base (32 px)"))
    panel.preset.setCurrentIndex(0)
    panel.kimg.setValue(0.008)
    panel.batch.setValue(4)
    panel.name.setText("after-measure")
    panel.measure_time()
    # the measurement's ending has not reached the panel (no events processed): start waits
    assert panel.start() is None and "Stopping the time measurement" in panel.status.text()
    assert not panel.time_btn.isEnabled() and not panel.start_btn.isEnabled()
    qtbot.waitUntil(lambda: panel.job is not None, timeout=120000)
    job = panel.job
    assert not panel.measuring
    assert not panel.time_btn.isEnabled() or not panel.running  # no measuring during a run
    qtbot.waitUntil(lambda: not panel.running, timeout=120000)
    assert job.error is None, job.error
    assert panel.time_btn.isEnabled()


# -- the base model, the photo-set button, the time estimate as a job -----------------------


def test_new_photo_set_button_shows_the_dialog(train_window, qtbot):
    from studio.ui.photo_set_dialog import PhotoSetDialog

    window, _ = train_window
    panel = window.panels["training"]
    panel.new_set_btn.click()  # the real button: clicked(bool) must not stop it showing

    def shown():
        return [d for d in panel.findChildren(PhotoSetDialog) if d.isVisible()]

    qtbot.waitUntil(lambda: bool(shown()))
    dialog = shown()[0]
    assert dialog.isModal() or dialog.windowModality() != Qt.WindowModality.NonModal
    dialog.reject()
    qtbot.waitUntil(lambda: not shown())


def test_base_defaults_to_the_project_face_model_with_the_few_photos_preset(train_window,
                                                                            qtbot):
    window, _ = train_window
    panel = window.panels["training"]
    assert panel.preset.currentData() == "few"
    assert panel.base.currentData() is not None  # not "Train from scratch"
    expected = panel.project_model()
    assert expected is not None and panel.base.currentData() == str(expected)
    window.document.set(("avatar", "model"), "library:tinybase.safetensors")
    assert panel.base.currentText() == "Tiny base (32 px)"  # follows the project's model
    assert "6.6 GB" not in panel.estimate.text()
    # once the artist picks a base model, the panel keeps it
    scratch = panel.base.findText("Train from scratch")
    panel.base.setCurrentIndex(scratch)
    panel.base.activated.emit(scratch)
    window.document.set(("avatar", "model"), "default")
    assert panel.base.currentIndex() == scratch


def _fake_speed(images_per_s):
    return {"images_per_s": images_per_s, "s_per_kimg": 1000 / images_per_s,
            "resolution": 32, "device": "cpu", "precision": "fp32", "batch": 4, "steps": 2,
            "cached": False}


def test_estimate_is_a_job_with_progress_that_can_be_cancelled(train_window, qtbot,
                                                                monkeypatch):
    import threading

    window, data = train_window
    panel = window.panels["training"]
    jobs_panel = window.panels["jobs"]
    reached = threading.Event()

    def slow_measure(ctx, config, steps=2):
        yield Progress(0.4, "Timing a training iteration 1 of 2")
        reached.set()
        while not ctx.cancelled:  # a measurement that only ends when cancelled
            reached.wait(0.01)
        ctx.check()
        return _fake_speed(10.0)

    monkeypatch.setattr("studio.train.estimate.measure_speed_job", slow_measure)
    panel.data_edit.setText(str(data))
    panel.time_btn.click()
    job = panel.estimate_job
    assert job is not None and job.kind is JobKind.ESTIMATE and job in window.runner.jobs
    assert job.id in jobs_panel._items  # it shows in the Jobs panel
    qtbot.waitUntil(lambda: "40%" in panel.estimate.text())  # its progress, in the label
    assert "Timing a training iteration" in panel.estimate.text()
    assert panel.time_btn.text() == "Stop estimating" and panel.time_btn.isEnabled()
    panel.time_btn.click()  # cancel it
    qtbot.waitUntil(lambda: not panel.measuring)
    assert job.state is JobState.CANCELLED
    assert "press Estimate time" in panel.estimate.text()
    assert panel.time_btn.text() == "Estimate time"
    assert jobs_panel._items[job.id].text(2) == "cancelled"

    # cancelled from the Jobs panel: the Training panel hears of it too
    again = panel.measure_time()
    qtbot.waitUntil(lambda: "40%" in panel.estimate.text())
    jobs_panel.tree.setCurrentItem(jobs_panel._items[again.id])
    jobs_panel.cancel_btn.click()
    qtbot.waitUntil(lambda: not panel.measuring)
    assert again.state is JobState.CANCELLED and panel.estimate_job is None
    assert panel.time_btn.text() == "Estimate time"


def test_a_run_longer_than_an_hour_says_so_before_start(train_window, qtbot, monkeypatch):
    window, data = train_window
    panel = window.panels["training"]

    def measure(ctx, config, steps=2):
        yield Progress(0.5, "Timing")
        return _fake_speed(0.1)  # 10 000 s per kimg

    monkeypatch.setattr("studio.train.estimate.measure_speed_job", measure)
    panel.data_edit.setText(str(data))
    panel.kimg.setValue(1.0)
    assert panel.long_warning.isHidden()  # nothing measured yet: nothing claimed
    panel.measure_time()
    qtbot.waitUntil(lambda: not panel.measuring)
    assert not panel.long_warning.isHidden()
    text = panel.long_warning.text()
    assert "This run will take about 2 h 47 min on this machine's CPU" in text
    assert panel.start_btn.toolTip() == text
    panel.kimg.setValue(0.2)  # 2000 s: under an hour
    assert panel.long_warning.isHidden() and "about 33 min" in panel.estimate.text()
