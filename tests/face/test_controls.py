"""Face controls: the data model, storage in the model file, and applying them to faces."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from studio.core.errors import FileFormatError
from studio.face.controls import (
    Control,
    ControlError,
    ControlSet,
    controls_edit,
    face_params,
    save_controls,
)
from studio.face.engine import FaceEngine
from studio.face.model_file import load_face_model, save_face_model
from studio.face.param_encoder import (
    EncoderLayout,
    EncoderMath,
    LayoutEntry,
    ParamEncoder,
    fit_params,
)
from studio.face.request import FaceRequest, render_request

LAYOUT = EncoderLayout([
    LayoutEntry("mouth_open", 1, 0.0, 1.0),
    LayoutEntry("head_yaw", 1, -40.0, 40.0),
    LayoutEntry("age", 1, 0.0, 1.0),
    LayoutEntry("glasses", 3, 0.0, 2.0, ("none", "round", "square")),
])


def _encoder(w_dim: int) -> ParamEncoder:
    torch.manual_seed(5)
    return ParamEncoder(LAYOUT.dim, w_dim, 24).eval().requires_grad_(False)


def _controls(tiny_G) -> ControlSet:
    hair = np.random.default_rng(1).standard_normal(tiny_G.w_dim).astype(np.float32)
    return ControlSet([
        Control("mouth_open", "Mouth open", "Expression", "parametric", 0, 1, 0,
                params={"mouth_open": 1.0}, attribute="mouth_open",
                measured={"correlation": 0.97}),
        Control("head_yaw", "", "Pose", "parametric", -1, 1, 0, params={"head_yaw": 15.0}),
        Control("glasses", "Glasses", "Style", "parametric", 0, 1, 0,
                params={"glasses=round": 1.0, "glasses=none": -1.0}),
        Control("hair", "Hair", "Style", "direction", -2, 2, 0, direction=hair,
                layers=(tiny_G.num_ws - 2, tiny_G.num_ws)),
    ])


@pytest.fixture
def model_path(tmp_path, tiny_G):
    E = _encoder(tiny_G.w_dim)
    meta = {"layout": LAYOUT.to_json(), "start": [0.0, 0.0, -0.4, 1.0, 0.0, 0.0]}
    return save_face_model(tmp_path / "m.safetensors", tiny_G, name="With controls",
                           controls=_controls(tiny_G), encoder=E, encoder_meta=meta)


# --------------------------------------------------------------------------- data model


def test_control_set_edits_return_new_sets_and_keep_order(tiny_G):
    cs = _controls(tiny_G)
    names = cs.names()
    added = cs.added(Control("smile", direction=np.ones(tiny_G.w_dim, np.float32)), index=1)
    assert added.names() == [names[0], "smile", *names[1:]] and cs.names() == names
    moved = added.moved("hair", 0)
    assert moved.names()[0] == "hair"
    renamed = moved.renamed("smile", "grin", label="Grin")
    assert "smile" not in renamed and renamed["grin"].title == "Grin"
    assert renamed.names().index("grin") == moved.names().index("smile")
    assert "grin" not in renamed.removed("grin")
    by_group = cs.by_group()
    assert list(by_group) == ["Expression", "Pose", "Identity", "Style"]
    assert [c.name for c in by_group["Style"]] == ["glasses", "hair"]


@pytest.mark.parametrize(("edit", "message"), [
    (lambda cs: cs.added(Control("hair", direction=np.ones(4))), "already"),
    (lambda cs: cs.renamed("hair", "mouth_open"), "already"),
    (lambda cs: cs.renamed("hair", "no spaces"), "control name"),
    (lambda cs: cs.removed("nope"), "no control named 'nope'"),
    (lambda cs: cs.added(Control("x", low=1, high=0, direction=np.ones(4))), "range"),
    (lambda cs: cs.added(Control("x", group="Mood", direction=np.ones(4))), "group"),
    (lambda cs: cs.added(Control("x")), "no direction"),
    (lambda cs: cs.added(Control("x", kind="parametric")), "moves no parameter"),
    (lambda cs: cs.check_names(["smlie"]), "no control 'smlie'"),
])
def test_bad_edits_are_refused_with_a_clear_error(tiny_G, edit, message):
    with pytest.raises(ControlError, match=message):
        edit(_controls(tiny_G))


# --------------------------------------------------------------------------- the file


def test_controls_and_encoder_round_trip(model_path, tiny_G):
    m = load_face_model(model_path)
    assert m.control_set.names() == ["mouth_open", "head_yaw", "glasses", "hair"]
    mo = m.control_set["mouth_open"]
    assert (mo.kind, mo.group, mo.low, mo.high, mo.label) == (
        "parametric", "Expression", 0.0, 1.0, "Mouth open")
    assert mo.params == {"mouth_open": 1.0} and mo.measured["correlation"] == 0.97
    hair = m.control_set["hair"]
    assert hair.layers == (tiny_G.num_ws - 2, tiny_G.num_ws) and hair.direction.shape == (32,)
    assert set(m.controls) == {"hair"}  # directions only
    assert m.encoder is not None and m.encoder_layout.dim == LAYOUT.dim
    v = torch.from_numpy(LAYOUT.encode({"mouth_open": [0.3], "head_yaw": [10.0], "age": [0.5],
                                        "glasses": [1]}))
    assert torch.equal(m.encoder(v), _encoder(tiny_G.w_dim)(v))


def test_user_edits_are_saved_into_the_model(model_path, tmp_path):
    m = load_face_model(model_path)
    edited = m.control_set.renamed("hair", "hair_tint", "Hair tint").moved("hair_tint", 0)
    edited = edited.removed("glasses")
    out = save_controls(m, edited, tmp_path / "mine.safetensors")
    again = load_face_model(out)
    assert again.control_set.names() == ["hair_tint", "mouth_open", "head_yaw"]
    assert again.control_set["hair_tint"].label == "Hair tint"
    np.testing.assert_array_equal(again.control_set["hair_tint"].direction,
                                  m.control_set["hair"].direction)
    assert again.encoder is not None  # the encoder travels with the model


def _rewrite(path, tmp_path, change_meta=None, change_tensors=None):
    from safetensors import safe_open
    from safetensors.torch import save_file

    with safe_open(str(path), "pt") as f:
        meta = json.loads(f.metadata()["studio"])
        tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
    if change_meta:
        change_meta(meta)
    if change_tensors:
        change_tensors(tensors)
    out = tmp_path / "bad.safetensors"
    save_file(tensors, str(out), metadata={"studio": json.dumps(meta)})
    return out


@pytest.mark.parametrize(("meta", "tensors", "message"), [
    (lambda m: m.pop("encoder"), None, "E.* tensors but no encoder"),
    (lambda m: m["encoder"].update(layout=[["x", 1, 0, 1, []]]), None, "do not fit the layout"),
    (lambda m: m["encoder"].update(layout="nope"), None, "invalid encoder"),
    (lambda m: m["controls"]["hair"].update(group="Mood"), None, "invalid control 'hair'"),
    (lambda m: m["controls"]["hair"].update(low=3), None, "range"),
    (None, lambda t: t.pop("E.net.0.bias"), "E.net.0.bias is missing"),
    (None, lambda t: t.update({"E.net.0.bias": torch.full((24,), float("nan"))}), "NaN"),
])
def test_bad_controls_or_encoder_in_a_file_give_a_clear_error(model_path, tmp_path, meta,
                                                               tensors, message):
    bad = _rewrite(model_path, tmp_path, meta, tensors)
    with pytest.raises(FileFormatError, match=message) as err:
        load_face_model(bad)
    assert "bad.safetensors" in str(err.value)


def test_parametric_controls_need_the_encoder(model_path, tmp_path):
    def strip(t):
        for k in [k for k in t if k.startswith("E.")]:
            del t[k]

    bad = _rewrite(model_path, tmp_path, lambda m: m.pop("encoder"), strip)
    with pytest.raises(FileFormatError, match="parametric but the file has no parameter encoder"):
        load_face_model(bad)


# --------------------------------------------------------------------------- applying


def test_encoder_math_matches_torch_and_its_gradient_is_right(tiny_G):
    E = _encoder(tiny_G.w_dim)
    f = EncoderMath(E)
    v = np.random.default_rng(2).uniform(-1, 1, (3, LAYOUT.dim))
    np.testing.assert_allclose(f(v), E(torch.from_numpy(v).float()).numpy(), atol=1e-5)
    target = np.random.default_rng(3).standard_normal((1, tiny_G.w_dim))
    loss, g = f.value_and_grad(v[0], target)
    eps = 1e-6
    for i in range(LAYOUT.dim):
        d = np.zeros(LAYOUT.dim)
        d[i] = eps
        num = (f.value_and_grad(v[0] + d, target)[0] - f.value_and_grad(v[0] - d, target)[0])
        assert g[i] == pytest.approx(num / (2 * eps), rel=1e-4, abs=1e-9)


def test_fitting_parameters_finds_a_face_the_encoder_made(tiny_G):
    E = _encoder(tiny_G.w_dim)
    truth = LAYOUT.encode({"mouth_open": [0.8], "head_yaw": [-20.0], "age": [0.3],
                           "glasses": [2]})[0]
    w = EncoderMath(E)(truth)[0]
    start = np.zeros(LAYOUT.dim, np.float32)
    p = fit_params(E, LAYOUT, w, start, steps=400)
    err = np.mean((EncoderMath(E)(p)[0] - w) ** 2)
    assert err < 0.02 * np.mean((EncoderMath(E)(start)[0] - w) ** 2)
    assert np.array_equal(p, fit_params(E, LAYOUT, w, start, steps=400))  # deterministic


def test_direction_controls_touch_only_their_layers(model_path):
    m = load_face_model(model_path)
    off = controls_edit(m, None, {"hair": 1.5})
    d = m.control_set["hair"].direction
    n = m.G.num_ws
    assert not off[: n - 2].any()
    np.testing.assert_allclose(off[n - 2 :], np.broadcast_to(1.5 * d, (2, d.shape[0])))
    assert controls_edit(m, None, {"hair": 0.0, "not_a_control": 3.0}) is None


def test_parametric_controls_move_the_faces_own_parameters(model_path):
    m = load_face_model(model_path)
    engine = FaceEngine(m)
    ws = engine.ws_for(7, 0.7)
    p = face_params(m, ws)
    off = controls_edit(m, ws, {"mouth_open": 0.5, "head_yaw": -1.0})
    moved = p.copy()
    moved[LAYOUT.offsets["mouth_open"]] += 0.5 * 2.0
    moved[LAYOUT.offsets["head_yaw"]] += -1.0 * 15.0 * 2.0 / 80.0
    moved = np.clip(moved, -1, 1)
    f = EncoderMath(m.encoder)
    expected = (f(moved) - f(p))[0]
    np.testing.assert_allclose(off, np.broadcast_to(expected, off.shape), atol=1e-5)
    # applied together through the encoder, not summed one by one
    a = controls_edit(m, ws, {"mouth_open": 0.5})
    b = controls_edit(m, ws, {"head_yaw": -1.0})
    assert not np.allclose(a + b, off, atol=1e-6)


def test_controls_change_the_rendered_pixels_and_neutral_changes_nothing(model_path):
    engine = FaceEngine(load_face_model(model_path))
    plain = render_request(engine, FaceRequest(seed=3))
    assert np.array_equal(render_request(engine, FaceRequest(seed=3, controls={"glasses": 0.0})),
                          plain)
    for name, value in (("glasses", 1.0), ("mouth_open", 0.7), ("hair", -2.0)):
        frame = render_request(engine, FaceRequest(seed=3, controls={name: value}))
        assert np.abs(frame.astype(int) - plain).mean() > 0.5, name
    again = render_request(engine, FaceRequest(seed=3, controls={"mouth_open": 0.7}))
    assert np.array_equal(again, render_request(engine, FaceRequest(seed=3,
                                                                     controls={"mouth_open": 0.7})))


def test_old_files_with_plain_directions_still_load(tmp_path, tiny_G):
    d = np.linspace(-1, 1, tiny_G.w_dim, dtype=np.float32)
    path = save_face_model(tmp_path / "old.safetensors", tiny_G, name="old",
                           controls={"smile": d})
    m = load_face_model(path)
    c = m.control_set["smile"]
    assert (c.kind, c.low, c.high, c.neutral, c.group) == ("direction", -1.0, 1.0, 0.0,
                                                           "Expression")
    np.testing.assert_allclose(controls_edit(m, None, {"smile": 0.5}),
                               np.broadcast_to(0.5 * d, (tiny_G.num_ws, tiny_G.w_dim)))
