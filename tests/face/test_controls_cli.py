"""`studio generate --control`, `studio controls list|evaluate|build-default`, end to end on
tiny models built here (a tiny generator, an encoder over the renderer's real parameter
layout, an untrained control meter: real networks, real measurements of them)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from studio.cli import main
from studio.face.model_file import load_face_model, save_face_model


@pytest.fixture
def tiny_default(tmp_path, tiny_G):
    """A model file with G only (like the shipped default), an encoder file and a meter."""
    from studio.train.attributes import AttributeNet, AttributeRegressor, attribute_specs
    from studio.train.controls_fit import renderer_layout
    from studio.train.controls_meter import METER_ATTRIBUTES
    from studio.train.distill_parts import ParamEncoder
    from studio.train.encoder_fit import save_encoder

    model = save_face_model(tmp_path / "default.safetensors", tiny_G, name="Tiny default")
    torch.manual_seed(1)
    E = ParamEncoder(renderer_layout().dim, tiny_G.w_dim, 16)
    enc = save_encoder(tmp_path / "encoder.safetensors", E,
                       {"hidden": 16, "pose_scale": 0.4, "fit": {"steps": 3}})
    torch.manual_seed(2)
    net = AttributeNet([a.to_dict() for a in attribute_specs(METER_ATTRIBUTES)], size=32, width=8)
    meter = AttributeRegressor(net).save(tmp_path / "meter.safetensors")
    return model, enc, meter


def test_build_default_ships_encoder_and_measured_controls_and_evaluate_reproduces(
        tiny_default, tmp_path, capsys):
    from studio.train.controls_fit import CARD_BEGIN, CARD_END, DEFAULT_CONTROLS

    model, enc, meter = tiny_default
    card = tmp_path / "default.md"
    card.write_text("# Tiny default\n\nSome words.\n")
    args = ["controls", "build-default", "--encoder", str(enc), "--model", str(model),
            "--card", str(card), "--meter", str(meter), "--faces", "2", "--steps", "3"]
    assert main(args) == 0
    m = load_face_model(model)
    assert m.encoder is not None
    assert m.control_set.names() == [c.name for c in DEFAULT_CONTROLS]
    for c in m.control_set:
        assert c.kind in ("parametric", "direction") and "correlation" in c.measured
        assert {"entanglement", "identity", "max_step", "step_ratio"} <= set(c.measured)
    text = card.read_text()
    assert text.startswith("# Tiny default\n\nSome words.") and CARD_BEGIN in text
    assert text.count("\n| mouth_open |") == 1 and CARD_END in text
    assert main(args) == 0  # again: the table is replaced, not added twice
    assert card.read_text().count("\n| mouth_open |") == 1
    capsys.readouterr()
    assert main(["controls", "evaluate", "--model", str(model), "--meter", str(meter),
                 "--faces", "2", "--steps", "3", "--json"]) == 0
    figures = json.loads(capsys.readouterr().out)
    stored = load_face_model(model).control_set
    for name, fig in figures.items():
        for key in ("correlation", "moves", "entanglement", "identity", "max_step"):
            assert fig[key] == stored[name].measured[key], (name, key)
        assert fig["kind"] == stored[name].kind
    assert main(["controls", "evaluate", "--model", str(model), "--meter", str(meter),
                 "--faces", "2", "--steps", "3", "--control", "smile"]) == 0
    out = capsys.readouterr().out
    assert "| smile |" in out and "| blink |" not in out
    assert main(["controls", "list", "--model", str(model)]) == 0
    listed = capsys.readouterr().out
    assert "Expression" in listed and "head_yaw" in listed and "correlation" in listed


def test_generate_with_controls_changes_the_picture(tiny_default, tmp_path, capsys):
    from studio.face.controls import ControlSet
    from studio.train.controls_fit import (
        DEFAULT_CONTROLS,
        load_encoder,
        renderer_layout,
        training_vectors,
    )

    model, enc, _ = tiny_default
    base = load_face_model(model)
    E, _ = load_encoder(enc, base.G.w_dim)
    save_face_model(model, base.G, name="x", controls=ControlSet(list(DEFAULT_CONTROLS)),
                    encoder=E, encoder_meta={"layout": renderer_layout().to_json(),
                                             "start": training_vectors(64, 0.4).mean(0).tolist()})
    plain, smile = tmp_path / "plain.png", tmp_path / "smile.png"
    base_args = ["generate", "--model", str(model), "--seed", "3", "--device", "cpu",
                 "--precision", "fp32"]
    assert main([*base_args, "-o", str(plain)]) == 0
    assert main([*base_args, "--control", "smile=0.8", "--control", "head_yaw=-0.3",
                 "-o", str(smile)]) == 0
    a = np.asarray(Image.open(plain), np.int16)
    b = np.asarray(Image.open(smile), np.int16)
    assert np.abs(a - b).mean() > 0.2
    capsys.readouterr()
    assert main([*base_args, "--control", "smlie=0.8", "-o", str(smile)]) == 2
    err = capsys.readouterr().err
    assert "no control 'smlie'" in err and "smile" in err
    assert main([*base_args, "--control", "head_yaw=7", "-o", str(smile)]) == 2
    assert "control 'head_yaw' goes from" in capsys.readouterr().err  # off the slider
    with pytest.raises(SystemExit):
        main([*base_args, "--control", "smile", "-o", str(smile)])
    assert "NAME=VALUE" in capsys.readouterr().err


def test_evaluate_refuses_a_control_the_meter_cannot_read(tmp_path, tiny_G, tiny_default,
                                                          capsys):
    _, _, meter = tiny_default
    d = np.ones(tiny_G.w_dim, np.float32)
    model = save_face_model(tmp_path / "pca.safetensors", tiny_G, name="pca",
                            controls={"pc1": d})
    assert main(["controls", "evaluate", "--model", str(model), "--meter", str(meter),
                 "--control", "pc1"]) == 2
    assert "does not read" in capsys.readouterr().err
