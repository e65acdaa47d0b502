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
from studio.core.model_registry import (
    default_face_model,
    default_model_path,
    find_face_models,
)
from studio.face.discriminator import Discriminator
from studio.face.model_file import (
    FORMAT,
    load_face_model,
    read_face_model_meta,
    save_face_model,
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
    assert set(m.meta["controls"]) == {"smile", "age"}  # full fields: tests/face/test_controls.py
    assert m.meta["controls"]["age"]["label"] == "Age"
    assert m.meta["controls"]["age"]["kind"] == "direction"
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
    import studio.core.model_registry as registry

    monkeypatch.setattr(registry, "shipped_face_dir", lambda: tmp_path / "no-shipped-models")
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
    import studio.core.model_registry as registry

    assert default_model_path().parts[-3:] == ("models", "face", "default.safetensors")
    monkeypatch.setattr(registry, "shipped_face_dir", lambda: tmp_path)
    assert default_face_model() is None
    save_face_model(tmp_path / "default.safetensors", tiny_G, name="x", training={"untrained": True})
    assert default_face_model() is None
    save_face_model(tmp_path / "default.safetensors", tiny_G, name="x", training={"kimg": 5000})
    assert default_face_model() == tmp_path / "default.safetensors"


# --------------------------------------------------------------------------- metadata values


def _kw(path: Path, part: str | None = None, **changes) -> dict:
    """The file's metadata with ``changes`` made to G_kwargs (or to G_kwargs[part])."""
    meta = read_face_model_meta(path)
    target = meta["G_kwargs"] if part is None else meta["G_kwargs"].setdefault(part, {})
    target.update(changes)
    return meta


@pytest.mark.parametrize(
    ("change", "message"),
    [
        # issue 9: an unknown activation in the mapping network was a KeyError traceback
        (lambda p: _kw(p, "mapping_kwargs", activation="relu6"), "unknown activation"),
        (lambda p: _kw(p, "synthesis_kwargs", activation="gelu"), "unknown activation"),
        (lambda p: _kw(p, "synthesis_kwargs", architecture="weird"), "unknown architecture"),
        (lambda p: _kw(p, "mapping_kwargs", lr_multiplier=float("nan")), "lr_multiplier"),
        (lambda p: _kw(p, "mapping_kwargs", lr_multiplier=-1), "lr_multiplier"),
        (lambda p: _kw(p, "mapping_kwargs", w_avg_beta="a"), "w_avg_beta"),
        (lambda p: _kw(p, "mapping_kwargs", num_layers=0), "num_layers"),
        (lambda p: _kw(p, "mapping_kwargs", num_layers=2.5), "num_layers"),
        (lambda p: _kw(p, "synthesis_kwargs", conv_clamp="x"), "conv_clamp"),
        (lambda p: _kw(p, "synthesis_kwargs", conv_clamp=0), "conv_clamp"),
        (lambda p: _kw(p, "synthesis_kwargs", channel_base=True), "channel_base"),
        (lambda p: _kw(p, "synthesis_kwargs", resample_filter=[]), "resample_filter"),
        (lambda p: _kw(p, "synthesis_kwargs", resample_filter=[1, -1]), "resample_filter"),
        (lambda p: _kw(p, "synthesis_kwargs", use_noise="yes"), "use_noise"),
        (lambda p: _kw(p, "synthesis_kwargs", channel_max={"a": 1}), "channel_max"),
        (lambda p: _kw(p, img_resolution=48), "power of two"),
        (lambda p: _kw(p, mapping_kwargs=[1, 2]), "G_kwargs"),
        (lambda p: _meta(p, resolution=48), "power of two"),
        (lambda p: _meta(p, resolution=True), "resolution"),
        (lambda p: _meta(p, name=["x"]), "name is not text"),
        (lambda p: _meta(p, license=3), "license is not text"),
        (lambda p: _meta(p, training=[1]), "training"),
        (lambda p: _meta(p, controls={"smile": 5}), "controls"),
        (lambda p: _meta(p, D_kwargs={"architecture": "nope"}), "D_kwargs"),
        (lambda p: _meta(p, D_kwargs={"mbstd_group_size": -4}), "mbstd_group_size"),
    ],
)
def test_bad_metadata_values_give_a_clear_error(tiny_model_path, change, message):
    bad = _rewrite(tiny_model_path, meta=change(tiny_model_path))
    for read in (read_face_model_meta, load_face_model):
        with pytest.raises(FileFormatError) as err:
            read(bad)
        assert message in str(err.value), str(err.value)
        assert err.value.path == Path(bad) and str(bad) in str(err.value)


def test_valid_optional_settings_still_load(tiny_model_path, tmp_path):
    """The checks refuse only what is wrong: explicit defaults and nulls load."""
    meta = _kw(tiny_model_path, "mapping_kwargs", activation="lrelu", lr_multiplier=0.01,
               w_avg_beta=0.995, layer_features=None)
    meta["G_kwargs"]["synthesis_kwargs"].update(conv_clamp=256, architecture="skip",
                                                resample_filter=[1, 3, 3, 1])
    m = load_face_model(_rewrite(tiny_model_path, meta=meta))
    assert m.G.mapping.w_avg_beta == 0.995


def test_known_names_match_the_network_code():
    from studio.face import generator, layers, model_file

    assert set(model_file.ACTIVATIONS) == set(layers.ACTIVATION_GAIN)
    assert tuple(model_file.ARCHITECTURES) == tuple(generator.ARCHITECTURES)


@pytest.mark.timeout(20)
def test_devices_and_fifos_are_refused_without_reading(tmp_path):
    fifo = tmp_path / "model.safetensors"
    os.mkfifo(fifo)  # opening it for reading would block until a writer comes
    for path in (fifo, Path("/dev/zero")):
        for read in (read_face_model_meta, load_face_model):
            with pytest.raises(FileFormatError, match="not a regular file") as err:
                read(path)
            assert str(path) in str(err.value)


def test_symlink_loop_is_a_clear_error(tmp_path):
    loop = tmp_path / "loop.safetensors"
    loop.symlink_to(loop)
    with pytest.raises(FileFormatError) as err:
        load_face_model(loop)
    assert str(loop) in str(err.value)


def test_one_header_reader():
    """Issue 10: the face model file and the registry read safetensors headers one way."""
    import inspect

    import studio.core.model_registry as registry
    import studio.face.model_file as model_file

    assert model_file.read_safetensors_header is registry.read_safetensors_header
    assert "struct" not in inspect.getsource(model_file)
    root = Path(registry.__file__).resolve().parents[1]
    readers = [p.relative_to(root).as_posix() for p in root.rglob("*.py")
               if '"<Q"' in p.read_text(encoding="utf-8")]
    assert readers == ["core/model_registry.py"]
    assert not (root / "face" / "registry.py").exists()


def test_registry_lists_models_of_every_kind_with_the_same_checks(tmp_path, tiny_G, monkeypatch):
    import studio.core.model_registry as registry

    monkeypatch.setattr(registry, "shipped_face_dir", lambda: tmp_path / "no-shipped-models")
    face = tmp_path / "models" / "face"
    face.mkdir(parents=True)
    good = save_face_model(face / "good.safetensors", tiny_G, name="Good")
    _rewrite(good, meta=_meta(good, resolution=48)).rename(face / "odd.safetensors")
    os.mkfifo(face / "pipe.safetensors")
    entries, problems = registry.scan_models([tmp_path / "models"])
    assert [(e.kind, e.name) for e in entries] == [("face", "Good")]
    assert any("odd.safetensors" in p and "power of two" in p for p in problems)
    assert any("pipe.safetensors" in p and "not a regular file" in p for p in problems)
    found_problems: list = []
    assert [m.name for m in find_face_models([face], problems=found_problems)] == ["Good"]
    assert sorted(p.path.name for p in found_problems) == ["odd.safetensors", "pipe.safetensors"]
