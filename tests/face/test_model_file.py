"""The face model file: round trips, metadata, controls, and clear errors for bad files."""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors.torch import save_file

from studio.core.errors import FileFormatError
from studio.face.discriminator import Discriminator
from studio.face.model_file import (
    FORMAT,
    load_face_model,
    read_face_model_meta,
    save_face_model,
)
from studio.face.registry import (
    default_face_model,
    default_model_path,
    find_face_models,
)


def _tiny_D() -> Discriminator:
    torch.manual_seed(3)
    return Discriminator(c_dim=0, img_resolution=32, img_channels=3, channel_base=512,
                         channel_max=32, mbstd_group_size=2)


def test_round_trip_renders_identical_pixels(tmp_path, tiny_G):
    D = _tiny_D()
    controls = {
        "smile": np.linspace(-1, 1, 32, dtype=np.float32),
        "age": {"direction": np.ones((tiny_G.num_ws, 32), np.float32), "label": "Age", "max": 3},
    }
    path = save_face_model(tmp_path / "m.safetensors", tiny_G, D=D, name="Ada", source="test",
                           license="CC0-1.0", training={"kimg": 12, "untrained": True},
                           controls=controls)
    m = load_face_model(path)
    assert not m.G.training and not any(p.requires_grad for p in m.G.parameters())
    assert m.D is not None and not m.D.training
    z = torch.randn(2, 32)
    with torch.no_grad():
        assert torch.equal(m.G(z, noise_mode="const"), tiny_G(z, noise_mode="const"))
        img = torch.randn(2, 3, 32, 32)
        assert torch.equal(m.D(img), D.eval()(img))
    assert m.meta["format"] == FORMAT and m.meta["format_version"] == 1
    assert m.meta["name"] == "Ada" and m.name == "Ada" and m.resolution == 32
    assert m.meta["G_kwargs"] == tiny_G.init_kwargs
    assert m.meta["D_kwargs"] == D.init_kwargs
    assert m.meta["training"] == {"kimg": 12, "untrained": True}
    assert m.meta["controls"] == {"smile": {"label": "smile"},
                                  "age": {"label": "Age", "max": 3}}
    assert set(m.controls) == {"smile", "age"}
    np.testing.assert_array_equal(m.controls["smile"], controls["smile"])
    assert m.controls["age"].shape == (tiny_G.num_ws, 32) and m.controls["age"].dtype == np.float32


def test_meta_is_read_from_the_header_alone(tiny_model_path):
    meta = read_face_model_meta(tiny_model_path)
    assert meta["name"] == "Tiny test face" and meta["resolution"] == 32
    assert meta["D_kwargs"] is None and meta["license"] == "CC0-1.0"
    # The metadata lives in the safetensors header, which is all the reader looks at.
    data = tiny_model_path.read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    assert json.loads(data[8 : 8 + n])["__metadata__"]["studio"]


def test_save_is_atomic_and_replaces(tmp_path, tiny_G):
    path = tmp_path / "sub" / "m.safetensors"
    save_face_model(path, tiny_G, name="one")
    save_face_model(path, tiny_G, name="two")
    assert read_face_model_meta(path)["name"] == "two"
    assert sorted(os.listdir(path.parent)) == ["m.safetensors"]


def test_save_is_deterministic(tmp_path, tiny_G):
    a = save_face_model(tmp_path / "a.safetensors", tiny_G, name="x")
    b = save_face_model(tmp_path / "b.safetensors", tiny_G, name="x")
    assert a.read_bytes() == b.read_bytes()


def test_bad_controls_are_refused_on_save(tmp_path, tiny_G):
    with pytest.raises(ValueError, match="shape"):
        save_face_model(tmp_path / "m.safetensors", tiny_G, name="x",
                        controls={"smile": np.zeros(7, np.float32)})
    with pytest.raises(ValueError, match="name"):
        save_face_model(tmp_path / "m.safetensors", tiny_G, name="x",
                        controls={"no spaces": np.zeros(32, np.float32)})


# --------------------------------------------------------------------------- bad files


def _rewrite(path: Path, tensors: dict[str, torch.Tensor] | None = None,
             meta: dict | None = None, raw_meta: dict[str, str] | None = None) -> Path:
    from safetensors import safe_open

    with safe_open(str(path), "pt") as f:
        old_meta = f.metadata()
        old = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
    if tensors is not None:
        old = tensors(old) if callable(tensors) else tensors
    md = raw_meta if raw_meta is not None else {
        "studio": json.dumps(meta if meta is not None else json.loads(old_meta["studio"]))
    }
    out = path.with_name("bad.safetensors")
    save_file(old, str(out), metadata=md)
    return out


def _meta(path: Path, **changes) -> dict:
    meta = read_face_model_meta(path)
    meta.update(changes)
    return meta


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p.with_name("missing.safetensors"), "not found"),
        (lambda p: p.parent, "folder"),
        (lambda p: _write(p, b"PK\x03\x04 this is a zip"), "not a safetensors"),
        (lambda p: _write(p, b""), "too short"),
        (lambda p: _write(p, p.read_bytes()[:-100]), "truncated"),
        (lambda p: _write(p, p.read_bytes()[:200]), "bad header length"),
        (lambda p: _rewrite(p, raw_meta={"format": "pt"}), "no studio metadata"),
        (lambda p: _rewrite(p, raw_meta={"studio": "{not json"}), "not JSON"),
        (lambda p: _rewrite(p, meta=_meta(p, format="dhs-voice")), "not a face model"),
        (lambda p: _rewrite(p, meta=_meta(p, format_version=99)), "newer"),
        (lambda p: _rewrite(p, meta=_meta(p, G_kwargs=None)), "G_kwargs"),
        (lambda p: _rewrite(p, meta=_meta(p, G_kwargs={"z_dim": "many"})), "G_kwargs"),
        (lambda p: _rewrite(p, meta=_meta(p, G_kwargs={"img_resolution": 1 << 30})), "G_kwargs"),
        (lambda p: _rewrite(p, meta=_meta(p, resolution=64)), "resolution"),
        (lambda p: _rewrite(p, meta=_meta(p, G_kwargs=_huge(p))), "far bigger than the tensors"),
        (lambda p: _rewrite(p, tensors=lambda t: {**t, "G.synthesis.b4.const": torch.zeros(3, 4, 4)}),
         "G.synthesis.b4.const has shape"),
        (lambda p: _rewrite(p, tensors=lambda t: {k: v for k, v in t.items() if "fc1.bias" not in k}),
         "G.mapping.fc1.bias is missing"),
        (lambda p: _rewrite(p, tensors=lambda t: {**t, "G.extra": torch.zeros(1)}), "unexpected tensor G.extra"),
        (lambda p: _rewrite(p, tensors=lambda t: {**t, "D.b4.out.bias": torch.zeros(1)}), "D_kwargs"),
        (lambda p: _rewrite(p, tensors=lambda t: {**t, "controls.smile": torch.zeros(5)}),
         "controls.smile has shape"),
        (lambda p: _rewrite(p, tensors=lambda t: {**t, "G.mapping.w_avg": torch.full((32,), float("nan"))}),
         "NaN"),
        (lambda p: _rewrite(p, tensors=lambda t: {**t, "G.mapping.w_avg": torch.zeros(32, dtype=torch.int32)}),
         "not floating point"),
    ],
)
def test_bad_files_give_a_clear_error(tiny_model_path, make, message):
    bad = make(tiny_model_path)
    with pytest.raises(FileFormatError) as err:
        load_face_model(bad)
    assert message in str(err.value)
    assert err.value.path == Path(bad)
    assert str(bad) in str(err.value)


def _huge(path: Path) -> dict:
    """Within the sanity bounds but ~100 GB of weights: refused before allocating them."""
    kwargs = read_face_model_meta(path)["G_kwargs"]
    return {**kwargs, "img_resolution": 1024, "synthesis_kwargs": {
        "channel_base": 1 << 20, "channel_max": 4096}}


def _write(path: Path, data: bytes) -> Path:
    out = path.with_name("bad.safetensors")
    out.write_bytes(data)
    return out


def test_meta_reader_rejects_what_the_loader_rejects(tiny_model_path):
    bad = _write(tiny_model_path, tiny_model_path.read_bytes()[:-10])
    with pytest.raises(FileFormatError, match="truncated"):
        read_face_model_meta(bad)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=400))
def test_random_bytes_only_raise_file_format_error(tmp_path, data):
    path = tmp_path / "random.safetensors"
    path.write_bytes(data)
    with pytest.raises(FileFormatError):
        load_face_model(path)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cut=st.floats(0.0, 0.9999), flips=st.lists(st.tuples(st.floats(0, 0.9999), st.integers(0, 255)),
                                                    max_size=4))
def test_damaged_files_only_raise_file_format_error(tiny_model_path, tmp_path, cut, flips):
    data = bytearray(tiny_model_path.read_bytes())
    (n,) = struct.unpack("<Q", bytes(data[:8]))
    for where, value in flips:  # damage the header, where damage is detectable
        data[8 + int(where * n)] = value
    data = data[: max(1, int(len(data) * cut))] if cut > 0.0 else data
    path = tmp_path / "damaged.safetensors"
    path.write_bytes(bytes(data))
    try:
        m = load_face_model(path)
    except FileFormatError:
        return
    assert m.G is not None  # an undamaged (or harmlessly damaged) file loads


# --------------------------------------------------------------------------- registry


def test_registry_finds_models_and_reports_broken_ones(tmp_path, tiny_G, monkeypatch):
    import studio.face.registry as registry

    monkeypatch.setattr(registry, "models_dir", lambda: tmp_path / "no-shipped-models")
    folder = tmp_path / "models"
    folder.mkdir()
    save_face_model(folder / "b.safetensors", tiny_G, name="Bea", source="test")
    save_face_model(folder / "a.safetensors", tiny_G, name="Al", training={"untrained": True})
    (folder / "broken.safetensors").write_bytes(b"garbage")
    (folder / "notes.txt").write_text("not a model")
    problems: list = []
    found = find_face_models([folder, folder], problems=problems)
    assert [m.name for m in found] == ["Al", "Bea"]
    assert found[0].untrained and not found[1].untrained
    assert found[1].resolution == 32 and found[1].source == "test"
    assert [p.path.name for p in problems] == ["broken.safetensors"]
    assert find_face_models([tmp_path / "nowhere"]) == [m for m in find_face_models([])]


def test_default_model_location_and_untrained_models_are_never_default(tmp_path, tiny_G, monkeypatch):
    import studio.face.registry as registry

    assert default_model_path().parts[-3:] == ("models", "face", "default.safetensors")
    monkeypatch.setattr(registry, "models_dir", lambda: tmp_path)
    assert default_face_model() is None
    save_face_model(tmp_path / "default.safetensors", tiny_G, name="x", training={"untrained": True})
    assert default_face_model() is None
    save_face_model(tmp_path / "default.safetensors", tiny_G, name="x", training={"kimg": 5000})
    assert default_face_model() == tmp_path / "default.safetensors"
