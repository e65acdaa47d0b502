"""``studio generate``: a PNG from a seed or z, deterministic, with clear errors."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from studio.cli import main


def _gen(model, out, *extra: str) -> int:
    return main(["generate", "--model", str(model), "-o", str(out), "--device", "cpu", *extra])


def _pixels(path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


def test_same_arguments_give_the_same_png(tiny_model_path, tmp_path, capsys):
    a, b, c = tmp_path / "a.png", tmp_path / "b.png", tmp_path / "c.png"
    assert _gen(tiny_model_path, a, "--seed", "3", "--truncation", "0.7") == 0
    assert _gen(tiny_model_path, b, "--seed", "3", "--truncation", "0.7") == 0
    assert _gen(tiny_model_path, c, "--seed", "4", "--truncation", "0.7") == 0
    assert a.read_bytes() == b.read_bytes()
    assert Image.open(a).size == (32, 32)
    assert np.abs(_pixels(a).astype(int) - _pixels(c)).mean() > 2  # seeds look different
    assert "wrote" in capsys.readouterr().out
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_z_file_gives_the_same_image_as_its_seed(tiny_model_path, tmp_path):
    z = np.random.RandomState(5).randn(32)
    np.save(tmp_path / "z1.npy", z)
    np.save(tmp_path / "z2.npy", z[None].astype(np.float32))
    assert _gen(tiny_model_path, tmp_path / "s.png", "--seed", "5") == 0
    assert _gen(tiny_model_path, tmp_path / "z1.png", "--z", str(tmp_path / "z1.npy")) == 0
    assert _gen(tiny_model_path, tmp_path / "z2.png", "--z", str(tmp_path / "z2.npy")) == 0
    assert (tmp_path / "s.png").read_bytes() == (tmp_path / "z1.png").read_bytes()
    assert np.abs(_pixels(tmp_path / "s.png").astype(int) - _pixels(tmp_path / "z2.png")).max() <= 2


def test_options_change_the_image(tiny_model_path, tmp_path):
    base = tmp_path / "base.png"
    assert _gen(tiny_model_path, base, "--seed", "1") == 0
    for i, extra in enumerate([
        ["--mix-seed", "2", "--mix-layers", "4:8"],
        ["--mix-seed", "2"],
        ["--noise-mode", "none"],
        ["--truncation", "0.3"],
    ]):
        out = tmp_path / f"o{i}.png"
        assert _gen(tiny_model_path, out, "--seed", "1", *extra) == 0
        assert out.read_bytes() != base.read_bytes(), extra
    big = tmp_path / "big.png"
    assert _gen(tiny_model_path, big, "--seed", "1", "--size", "48") == 0
    assert Image.open(big).size == (48, 48)
    r1, r2 = tmp_path / "r1.png", tmp_path / "r2.png"
    assert _gen(tiny_model_path, r1, "--seed", "1", "--noise-mode", "random") == 0
    assert _gen(tiny_model_path, r2, "--seed", "1", "--noise-mode", "random") == 0
    assert r1.read_bytes() == r2.read_bytes()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--seed", "1", "--mix-layers", "2:4"], "--mix-layers needs --mix-seed"),
        (["--seed", "1", "--mix-seed", "2", "--mix-layers", "6:99"], "--mix-layers: style-mixing layers 6 up to 99 do not fit"),
        (["--seed", "1", "--size", "3"], "--size"),
        (["--seed", "1", "--truncation", "nan"], "--truncation"),
    ],
)
def test_bad_options_are_user_errors(tiny_model_path, tmp_path, capsys, args, message):
    assert _gen(tiny_model_path, tmp_path / "x.png", *args) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists()


def test_bad_z_files_are_named(tiny_model_path, tmp_path, capsys):
    cases = {
        "wrong.npy": lambda p: np.save(p, np.zeros((2, 32))),
        "short.npy": lambda p: np.save(p, np.zeros(7)),
        "text.npy": lambda p: p.write_text("hello"),
        "strings.npy": lambda p: np.save(p, np.array(["a"] * 32)),
        "nan.npy": lambda p: np.save(p, np.full(32, np.nan)),
    }
    for name, make in cases.items():
        make(tmp_path / name)
        assert _gen(tiny_model_path, tmp_path / "x.png", "--z", str(tmp_path / name)) == 2
        err = capsys.readouterr().err
        assert name in err and "Traceback" not in err
    assert _gen(tiny_model_path, tmp_path / "x.png", "--z", str(tmp_path / "none.npy")) == 2
    assert "none.npy: no such latent (.npy) file" in capsys.readouterr().err


def test_bad_model_and_output(tiny_model_path, tmp_path, capsys):
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(b"nope")
    assert _gen(broken, tmp_path / "x.png", "--seed", "1") == 2
    assert "broken.safetensors" in capsys.readouterr().err
    assert _gen(tiny_model_path, tmp_path / "x.jpg", "--seed", "1") == 2
    assert ".png" in capsys.readouterr().err


def test_without_a_default_model_the_message_says_what_to_do(tmp_path, monkeypatch, capsys):
    import studio.core.model_registry as registry

    monkeypatch.setattr(registry, "shipped_face_dir", lambda: tmp_path / "models" / "face")
    code = main(["generate", "--seed", "1", "-o", str(tmp_path / "x.png"), "--device", "cpu"])
    err = capsys.readouterr().err
    assert code == 2
    assert "no default face model is installed yet" in err and "--model" in err


def test_seed_or_z_is_required(tmp_path):
    with pytest.raises(SystemExit):
        main(["generate", "-o", str(tmp_path / "x.png")])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--seed", "-1"], "seeds go from 0 to 4294967295, not -1"),
        (["--seed", "4294967296"], "seeds go from 0 to 4294967295"),
        (["--seed", "1", "--mix-seed", "-5"], "seeds go from 0 to 4294967295, not -5"),
        (["--seed", "1", "--truncation", "1e39"], "--truncation: truncation must be a number"),
        (["--seed", "1", "--truncation=-1e308"], "--truncation"),
        (["--seed", "1", "--truncation", "inf"], "--truncation"),
    ],
)
def test_out_of_range_numbers_are_refused_at_the_edge(tiny_model_path, tmp_path, capsys, args,
                                                      message):
    try:
        code = _gen(tiny_model_path, tmp_path / "x.png", *args)
    except SystemExit as exc:  # argparse refuses it while parsing
        code = exc.code
    assert code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "x.png").exists()


def test_hostile_and_nan_latent_files_are_named(tiny_model_path, tmp_path, capsys):
    huge = tmp_path / "huge.npy"  # a header that declares 10^12 elements, a few bytes of data
    header = "{'descr': '<f8', 'fortran_order': False, 'shape': (1000000000000,), }"
    header += " " * (64 - (10 + len(header) + 1) % 64) + "\n"
    huge.write_bytes(b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little")
                     + header.encode("latin1") + b"\0" * 64)
    np.save(tmp_path / "nan_w.npy", np.full((8, 32), np.nan, np.float32))
    for flag, name, expect in [("--z", "huge.npy", "does not fit the file"),
                               ("--latent", "nan_w.npy", "NaN"),
                               ("--z", "nan_w.npy", "NaN")]:
        assert _gen(tiny_model_path, tmp_path / "x.png", flag, str(tmp_path / name)) == 2
        err = capsys.readouterr().err
        assert name in err and expect in err and "Traceback" not in err
    assert not (tmp_path / "x.png").exists()


def test_a_latent_renders_like_its_seed(tiny_model_path, tmp_path):
    from studio.face.engine import FaceEngine
    from studio.face.model_file import load_face_model

    engine = FaceEngine(load_face_model(tiny_model_path))
    np.save(tmp_path / "w.npy", engine.ws_for(7, 0.7))
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    assert _gen(tiny_model_path, a, "--seed", "7") == 0
    assert _gen(tiny_model_path, b, "--latent", str(tmp_path / "w.npy")) == 0
    assert a.read_bytes() == b.read_bytes()


def test_cli_and_gui_share_the_truncation_default_and_the_mix_convention(tiny_model_path,
                                                                         tmp_path):
    """Issue 10: the same seed gives the same face in the CLI and a new GUI project."""
    from studio.cli import build_parser
    from studio.core.project import Avatar

    args = build_parser().parse_args(["generate", "--seed", "1", "-o", "x.png"])
    assert args.truncation == Avatar().truncation == 0.7
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    assert _gen(tiny_model_path, a, "--seed", "1") == 0
    assert _gen(tiny_model_path, b, "--seed", "1", "--truncation", "0.7") == 0
    assert a.read_bytes() == b.read_bytes()
