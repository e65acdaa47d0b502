"""File → Render: the dialog queues renders that run one after another and write MP4s."""

from __future__ import annotations

import shutil

import av
import numpy as np
import pytest
import soundfile as sf
import torch

from studio.core.document import Document
from studio.core.jobs import JobState
from studio.core.project import Clip, CurveTrack, Key, Project, project_to_text
from studio.core.settings import Settings


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    from studio.face.generator import Generator
    from studio.face.model_file import save_face_model

    torch.set_num_threads(1)
    torch.manual_seed(3)
    G = Generator(z_dim=32, w_dim=32, img_resolution=32, img_channels=3,
                  mapping_kwargs={"num_layers": 2},
                  synthesis_kwargs={"channel_base": 512, "channel_max": 32})
    path = tmp_path_factory.mktemp("model") / "tiny.safetensors"
    save_face_model(path, G, name="Tiny", source="tests")
    return path


@pytest.fixture
def ctx(qtbot, tmp_path, tiny_model):
    from studio.core.app import AppModel
    from studio.core.devices import select_device
    from studio.ui.context import StudioContext
    from studio.ui.job_runner import JobRunner
    from studio.ui.viewport import Viewport

    shutil.copy(tiny_model, tmp_path / "tiny.safetensors")
    (tmp_path / "audio").mkdir()
    t = np.arange(8000) / 16000
    sf.write(tmp_path / "audio" / "a.wav", (0.5 * np.sin(2 * np.pi * 440 * t)), 16000)
    p = Project(name="t")
    p.avatar.model = "tiny.safetensors"
    p.timeline.fps = 10
    p.timeline.duration = 1.0
    p.timeline.tracks = [CurveTrack(channel="smile", keys=[Key(t=0, v=0), Key(t=1, v=1)])]
    p.timeline.clips = [Clip(id="c1", kind="speech", start=0.2, duration=0.5, audio="audio/a.wav"),
                        Clip(id="c2", kind="speech", start=0.0, duration=0.2,
                             audio="audio/gone.wav")]
    path = tmp_path / "t.dhproj"
    path.write_text(project_to_text(p))
    errors: list[str] = []
    viewport = Viewport()
    qtbot.addWidget(viewport)
    c = StudioContext(document=Document.open(path),
                      app=AppModel(Settings(), device=select_device("cpu", "fp32")),
                      runner=JobRunner(), viewport=viewport,
                      report_error=lambda title, text: errors.append(text))
    c.errors = errors  # type: ignore[attr-defined]
    yield c
    c.runner.cancel_all()
    c.runner.wait(5000)


def test_renders_queue_one_after_another(qtbot, ctx, tmp_path):
    from studio.ui.render_dialog import RenderDialog, RenderQueue

    queue = RenderQueue(ctx)
    dialog = RenderDialog(ctx, queue)
    qtbot.addWidget(dialog)
    assert dialog.video.text() == str(tmp_path / "t.mp4")
    assert "gone.wav" in dialog.warning.text()  # the missing clip is named up front
    dialog.add_btn.click()
    dialog.video.setText(str(tmp_path / "short.mp4"))
    dialog.start.setValue(0.5)
    dialog.wav.setText(str(tmp_path / "short.wav"))
    dialog.add_btn.click()
    first, second = queue.jobs
    assert queue.current is first and queue.waiting == [second]
    assert second not in ctx.runner.jobs  # waiting in the queue, not in a lane
    assert dialog.list.count() == 2 and "waiting" in dialog.list.item(1).text()
    qtbot.waitUntil(lambda: second.state.finished, timeout=60_000)
    assert first.state is JobState.DONE and second.state is JobState.DONE, ctx.errors
    assert second.started_at >= first.finished_at
    for name, frames in (("t.mp4", 10), ("short.mp4", 5)):
        with av.open(str(tmp_path / name)) as c:
            assert c.streams.video[0].frames == frames
            v, a = c.streams.video[0], c.streams.audio[0]
            assert abs(float(v.duration * v.time_base) - float(a.duration * a.time_base)) <= 0.1
    assert sf.info(str(tmp_path / "short.wav")).frames == 8000
    # the missing file is reported with the finished render, which still happened
    assert any("gone.wav" in e for e in ctx.errors)


def test_a_waiting_render_can_be_cancelled(qtbot, ctx, tmp_path):
    from studio.ui.render_dialog import RenderDialog, RenderQueue

    queue = RenderQueue(ctx)
    dialog = RenderDialog(ctx, queue)
    qtbot.addWidget(dialog)
    dialog.add_btn.click()
    dialog.video.setText(str(tmp_path / "never.mp4"))
    dialog.add_btn.click()
    dialog.list.setCurrentRow(1)
    dialog.cancel_btn.click()
    qtbot.waitUntil(lambda: queue.jobs[0].state.finished and queue.current is None,
                    timeout=60_000)
    assert queue.jobs[1].state is JobState.CANCELLED and queue.current is None
    assert not (tmp_path / "never.mp4").exists() and (tmp_path / "t.mp4").exists()


def test_no_output_is_refused_in_the_dialog(qtbot, ctx):
    from studio.ui.render_dialog import RenderDialog, RenderQueue

    queue = RenderQueue(ctx)
    dialog = RenderDialog(ctx, queue)
    qtbot.addWidget(dialog)
    dialog.video_on.setChecked(False)
    assert dialog.add_to_queue() is None and queue.jobs == []
    assert "at least one output" in dialog.warning.text()


def test_file_render_opens_the_dialog(window):
    from studio.ui.render_dialog import RenderDialog

    action = window.findChild(type(window.act_render), "actionRender")
    action.trigger()
    assert isinstance(window.render_dialog, RenderDialog) and window.render_dialog.isVisible()
    window.render_dialog.close()
