"""Blending two faces in the one frame path: checks, latents, project files."""

from __future__ import annotations

import json

import numpy as np
import pytest

from studio.core.project import Blend, Project, project_from_text, project_to_text
from studio.face.request import FaceRequest, RequestError, avatar_request, check_request

torch = pytest.importorskip("torch")


@pytest.fixture
def engine(kit):
    from studio.core.devices import select_device
    from studio.face.engine import FaceEngine
    from studio.face.model_file import FaceModel

    return FaceEngine(FaceModel(G=kit.make_G(), D=None, meta={}), select_device("cpu", "fp32"))


def test_blend_interpolates_w_plus(engine):
    from studio.face.request import request_ws

    a, b = engine.ws_for(1, 0.7), engine.ws_for(2, 0.7)
    ws = request_ws(engine, FaceRequest(seed=1, blend_seed=2, blend_amount=0.25))
    assert np.allclose(ws, 0.75 * a + 0.25 * b, atol=1e-6)
    assert np.array_equal(request_ws(engine, FaceRequest(seed=1, blend_seed=2)), a)  # amount 0
    latent = request_ws(engine, FaceRequest(seed=1, blend_seed=2, blend_amount=1.0,
                                            blend_latent=engine.ws_for(3, 0.7)))
    assert np.array_equal(latent, engine.ws_for(3, 0.7))  # a latent overrides the seed
    with pytest.raises(RequestError, match="blend latent has shape") as err:
        request_ws(engine, FaceRequest(blend_amount=0.5, blend_latent=np.zeros((3, 3))))
    assert err.value.field == "blend_latent"


@pytest.mark.parametrize("bad", [1.5, -0.1, float("nan")])
def test_blend_amount_is_checked(bad):
    with pytest.raises(RequestError, match="blend amount") as err:
        check_request(FaceRequest(blend_seed=1, blend_amount=bad))
    assert err.value.field == "blend_amount"


def test_avatar_blend_round_trips_and_old_files_have_none(tmp_path):
    p = Project()
    p.avatar.blend = Blend(latent="photo.npy", amount=0.3)
    again = project_from_text(project_to_text(p))
    assert again.avatar.blend == p.avatar.blend
    np.save(tmp_path / "photo.npy", np.ones((4, 8), np.float32))
    req = avatar_request(again, tmp_path / "p.dhproj")
    assert req.blend_amount == 0.3 and req.blend_latent.shape == (4, 8)
    v2 = json.loads(project_to_text(Project()))
    v2["schema_version"] = 2
    del v2["avatar"]["blend"]
    assert project_from_text(json.dumps(v2)).avatar.blend is None
    with pytest.raises(Exception, match="amount"):
        Blend(seed=1, amount=2.0)
