"""frame_request: the project at time t as a frame request, rendered by the one frame path."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from studio.core.project import CurveTrack, Key, Project
from studio.face.engine import FaceEngine
from studio.face.model_file import load_face_model, save_face_model
from studio.face.request import avatar_request, render_request
from studio.render.frame import frame_request, frame_requests


@pytest.fixture
def engine_with_smile(tmp_path):
    from studio.face.generator import Generator

    torch.set_num_threads(1)
    torch.manual_seed(3)
    G = Generator(z_dim=32, w_dim=32, img_resolution=32, img_channels=3,
                  mapping_kwargs={"num_layers": 2},
                  synthesis_kwargs={"channel_base": 512, "channel_max": 32})
    direction = np.random.default_rng(0).standard_normal(G.w_dim).astype(np.float32)
    path = tmp_path / "tiny.safetensors"
    save_face_model(path, G, name="Tiny", source="tests", controls={"smile": direction})
    return FaceEngine(load_face_model(path)), direction


def _project() -> Project:
    p = Project()
    p.avatar.seed = 4
    p.avatar.controls = {"smile": 0.25}
    p.timeline.tracks = [CurveTrack(channel="smile", keys=[Key(t=0, v=0, interp="linear"),
                                                          Key(t=2, v=1, interp="linear")])]
    return p


def test_the_timeline_drives_the_avatars_controls(engine_with_smile):
    engine, direction = engine_with_smile
    project = _project()
    req = frame_request(project, 1.0)
    assert req.seed == 4 and req.controls["smile"] == pytest.approx(0.25 + 0.5)
    frame = render_request(engine, req)
    ws = engine.ws_for(4, project.avatar.truncation)
    expected = engine.render(ws, edits=np.float32(0.75) * direction)
    assert np.array_equal(frame, expected)
    # the picture moves along the curve
    assert not np.array_equal(render_request(engine, frame_request(project, 0.0)), frame)


def test_muted_tracks_leave_the_avatar_as_it_is(engine_with_smile):
    engine, _ = engine_with_smile
    project = _project()
    project.timeline.tracks[0].muted = True
    still = render_request(engine, avatar_request(project, None))
    for t in (0.0, 1.0, 2.0):
        assert np.array_equal(render_request(engine, frame_request(project, t)), still)


def test_many_times_at_once_match_one_at_a_time(engine_with_smile):
    project = _project()
    times = np.linspace(0, 2.5, 11)
    many = frame_requests(project, times, size=48)
    for t, req in zip(times, many, strict=True):
        one = frame_request(project, float(t), size=48)
        assert req.controls == pytest.approx(one.controls) and req.size == 48
