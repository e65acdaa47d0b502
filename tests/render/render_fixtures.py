"""A tiny face model with a "smile" control and a project with one speech clip."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch

from studio.core.project import Clip, CurveTrack, Key, Project, project_to_text

RATE = 16_000


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    from studio.face.generator import Generator
    from studio.face.model_file import save_face_model

    torch.set_num_threads(1)
    torch.manual_seed(3)
    G = Generator(z_dim=32, w_dim=32, img_resolution=32, img_channels=3,
                  mapping_kwargs={"num_layers": 2},
                  synthesis_kwargs={"channel_base": 512, "channel_max": 32})
    direction = np.random.default_rng(0).standard_normal(G.w_dim).astype(np.float32) * 3
    path = tmp_path_factory.mktemp("model") / "tiny.safetensors"
    save_face_model(path, G, name="Tiny", source="tests", controls={"smile": direction})
    return path


@pytest.fixture(scope="module")
def engine(tiny_model):
    from studio.core.devices import select_device
    from studio.face.engine import FaceEngine
    from studio.face.model_file import load_face_model

    return FaceEngine(load_face_model(tiny_model), select_device("cpu", "fp32"))


def tone(seconds: float, freq: float, rate: int = RATE) -> np.ndarray:
    t = np.arange(int(round(seconds * rate))) / rate
    return (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


@pytest.fixture
def project_dir(tmp_path, tiny_model):
    """A project folder: tiny.safetensors, audio/a.wav (1 s of 440 Hz), project.dhproj
    with the clip at 0.4 s and a smile from 0 to 1 over 1.6 s."""
    import shutil

    shutil.copy(tiny_model, tmp_path / "tiny.safetensors")
    (tmp_path / "audio").mkdir()
    sf.write(tmp_path / "audio" / "a.wav", tone(1.0, 440.0), RATE, subtype="FLOAT")
    p = Project(name="t")
    p.avatar.model = "tiny.safetensors"
    p.avatar.seed = 5
    p.timeline.fps = 10
    p.timeline.duration = 1.6
    p.timeline.tracks = [CurveTrack(channel="smile", keys=[Key(t=0, v=0, interp="linear"),
                                                          Key(t=1.6, v=1, interp="linear")])]
    p.timeline.clips = [Clip(id="c1", kind="speech", start=0.4, duration=1.0, audio="audio/a.wav")]
    (tmp_path / "project.dhproj").write_text(project_to_text(p))
    return tmp_path
