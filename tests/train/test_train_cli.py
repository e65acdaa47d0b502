"""``studio train face`` and ``studio metrics face`` from the command line."""

from __future__ import annotations

import json

import pytest

from studio.cli import main


def test_train_face_cli_fine_tunes_resumes_and_measures(faces16, tmp_path, tk, capsys):
    from studio.face.model_file import load_face_model

    base = tk.base_model(tmp_path / "base.safetensors")
    out = tmp_path / "mine.safetensors"
    run = tmp_path / "run"
    args = ["train", "face", "--data", str(faces16), "--base", str(base), "--kimg", "0.016",
            "--batch", "8", "--preset", "few", "--fd-samples", "0", "--threads", "1",
            "--precision", "fp32", "--device", "cpu", "--run-dir", str(run), "-o", str(out)]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert f"wrote {out}" in text and "16 images seen" in text
    model = load_face_model(out)
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["preset"] == "few" and cfg["freeze_d"] == 3 and cfg["base"] == str(base)
    assert model.meta["training"]["images_seen"] == 16 and model.name == "mine"

    # continue the same run for longer
    assert main(["train", "face", "--resume", str(run), "--kimg", "0.032"]) == 0
    assert "32 images seen" in capsys.readouterr().out
    assert load_face_model(out).meta["training"]["images_seen"] == 32

    assert main(["metrics", "face", "--model", str(out), "--data", str(faces16), "--n", "8",
                 "--device", "cpu", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["n_real"] == result["n_fake"] == 8
    assert result["fd"] > 0 and 0 <= result["precision"] <= 1 and "fid" not in result


@pytest.mark.parametrize("argv, message", [
    (["train", "face", "-o", "x.safetensors"], "needs --data"),
    (["train", "face", "--data", "d"], "needs -o"),
    (["train", "face", "--data", "d", "-o", "x.pkl"], "must be a .safetensors"),
    (["train", "face", "--resume", "nowhere", "--batch", "4"], "drop --batch"),
    (["train", "face", "--resume", "nowhere"], "no such run folder"),
])
def test_train_face_cli_errors(argv, message, capsys):
    assert main(argv) == 2
    assert message in capsys.readouterr().err
