"""The rig: animation channels -> face controls, and the frame request built through it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from studio.animate.rig import DEFAULT_RIG, Rig, RigError, RigTarget
from studio.core.project import CurveTrack, Key, Project
from studio.face.engine import FaceEngine
from studio.face.model_file import load_face_model, save_face_model
from studio.face.request import render_request
from studio.render.frame import frame_request, frame_requests


def test_default_rig_maps_animation_channels_onto_the_default_controls():
    out = DEFAULT_RIG.controls({"lip_pucker": 0.5, "mouth_open": 0.3, "viseme.aa": 0.9,
                                "blink": 1.0, "head_yaw": -0.1, "brow_raise": 0.4})
    assert out == pytest.approx({"pucker": 0.5, "mouth_open": 0.3, "blink": 1.0,
                                 "head_yaw": -0.1, "brow_raise": 0.4})


def test_gains_offsets_and_several_targets_add_up():
    rig = Rig({"jaw": (RigTarget("mouth_open", 0.5, 0.1), RigTarget("smile", -1.0)),
               "grin": (RigTarget("smile", 2.0),)}, passthrough=False)
    out = rig.controls({"jaw": 0.4, "grin": 0.25, "brow_raise": 1.0})
    assert out == pytest.approx({"mouth_open": 0.3, "smile": -0.4 + 0.5})


def test_rig_json_round_trip_and_bad_rigs():
    rig = DEFAULT_RIG.with_channel("viseme.oh", (RigTarget("pucker", 0.6),
                                                 RigTarget("mouth_open", 0.4)))
    again = Rig.from_json(rig.to_json())
    assert again == rig and again.controls({"viseme.oh": 1.0}) == pytest.approx(
        {"pucker": 0.6, "mouth_open": 0.4})
    with pytest.raises(RigError, match="finite"):
        Rig({"blink": (RigTarget("blink", float("nan")),)})
    with pytest.raises(RigError, match="bad control name"):
        Rig({"blink": (RigTarget("no spaces"),)})
    with pytest.raises(RigError, match="rig"):
        Rig.from_json({"channels": {"blink": [{"gain": 1}]}})
    with pytest.raises(RigError, match="rig"):
        Rig.from_json([1, 2])


@pytest.fixture
def engine_with_pucker(tmp_path):
    from studio.face.generator import Generator

    torch.manual_seed(3)
    G = Generator(z_dim=32, w_dim=32, img_resolution=32, img_channels=3,
                  mapping_kwargs={"num_layers": 2},
                  synthesis_kwargs={"channel_base": 512, "channel_max": 32})
    direction = np.random.default_rng(0).standard_normal(G.w_dim).astype(np.float32)
    path = tmp_path / "tiny.safetensors"
    save_face_model(path, G, name="Tiny", controls={"pucker": direction})
    return FaceEngine(load_face_model(path)), direction


def test_lip_sync_channels_drive_controls_through_the_rig(engine_with_pucker):
    engine, direction = engine_with_pucker
    p = Project()
    p.avatar.seed = 2
    p.timeline.tracks = [CurveTrack(channel="lip_pucker", keys=[
        Key(t=0, v=0, interp="linear"), Key(t=1, v=1, interp="linear")])]
    req = frame_request(p, 0.5)
    assert req.controls == pytest.approx({"pucker": 0.5}) and "lip_pucker" not in req.controls
    ws = engine.ws_for(2, p.avatar.truncation)
    assert np.array_equal(render_request(engine, req),
                          engine.render(ws, edits=np.float32(0.5) * direction))
    # a project's own rig: the channel drives the control at half strength
    half = Rig({"lip_pucker": (RigTarget("pucker", 0.5),)})
    assert frame_request(p, 0.5, rig=half).controls == pytest.approx({"pucker": 0.25})
    many = frame_requests(p, [0.0, 0.5, 1.0], rig=half)
    assert [r.controls.get("pucker", 0.0) for r in many] == pytest.approx([0.0, 0.25, 0.5])


def test_the_projects_own_rig_wins_and_survives_a_save(tmp_path):
    """Schema 3 ``avatar.rig``: a version 2 file has none (the model's rig applies)."""
    from studio.core.project import AvatarRig, load_project, project_to_bytes
    from studio.core.project import RigTarget as SavedTarget

    p = Project()
    p.timeline.tracks = [CurveTrack(channel="blink", keys=[Key(t=0, v=1.0)])]
    assert frame_request(p, 0.0).controls == pytest.approx({"blink": 1.0})
    p.avatar.rig = AvatarRig(channels={"blink": [SavedTarget(control="blink", gain=0.5,
                                                             offset=0.1)]})
    model_rig = Rig({"blink": (RigTarget("blink", 2.0),)})
    assert frame_request(p, 0.0, rig=model_rig).controls == pytest.approx({"blink": 0.6})
    path = tmp_path / "rigged.dhproj"
    path.write_bytes(project_to_bytes(p, path))
    again = load_project(path)
    assert again.avatar.rig == p.avatar.rig
    assert frame_request(again, 0.0).controls == pytest.approx({"blink": 0.6})
