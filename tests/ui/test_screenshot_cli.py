"""``studio screenshot`` stops at once, with one line and a non-zero exit, when the preview
fails (issue 9): a model file that does not load, a render that raises, a broken latent."""

from __future__ import annotations

import time

import numpy as np
import pytest

from studio.cli import main as cli_main
from studio.core.document import Document

pytest.importorskip("torch")


def _project(tmp_path, **avatar) -> str:
    doc = Document()
    for key, value in avatar.items():
        doc.set(("avatar", key), value)
    path = tmp_path / "p.dhproj"
    doc.save(path)
    return str(path)


def _shoot(tmp_path, project: str | None, capsys, timeout: float = 120.0):
    out = tmp_path / "shot.png"
    args = ["screenshot", str(out), "--size", "800x600", "--timeout", str(timeout)]
    if project:
        args += ["--project", project]
    t0 = time.monotonic()
    code = cli_main(args)
    elapsed = time.monotonic() - t0
    captured = capsys.readouterr()
    return code, captured.err, elapsed, out


def _one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def test_broken_model_file_fails_at_once(tmp_path, capsys):
    (tmp_path / "bad.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all")
    project = _project(tmp_path, model="bad.safetensors")
    code, err, elapsed, out = _shoot(tmp_path, project, capsys, timeout=100)
    line = _one_error_line(err)
    assert code == 2 and elapsed < 60
    assert line.startswith("error: the face preview failed: Could not load the face model")
    assert "bad.safetensors" in line and "not JSON" in line
    assert out.is_file()  # the window as it was, for a look at what went wrong


def test_render_failure_does_not_wait_for_the_timeout(tmp_path, capsys, monkeypatch):
    from studio.ui.face_preview import FacePreview

    def broken_render(self, request, coarse):
        raise RuntimeError("the engine fell over")

    monkeypatch.setattr(FacePreview, "render", broken_render)
    code, err, elapsed, _ = _shoot(tmp_path, None, capsys, timeout=120)
    line = _one_error_line(err)
    assert code == 2
    assert elapsed < 60, f"waited {elapsed:.0f} s for a render that had failed"
    assert "Render failed: the engine fell over" in line


def test_empty_latent_file_fails_at_once(tmp_path, capsys):
    (tmp_path / "w.npy").write_bytes(b"")
    project = _project(tmp_path, latent="w.npy")
    code, err, elapsed, _ = _shoot(tmp_path, project, capsys, timeout=100)
    line = _one_error_line(err)
    assert code == 2 and elapsed < 60
    assert "w.npy" in line and line.startswith("error: the face preview failed:")


def test_good_project_still_succeeds(tmp_path, capsys):
    from studio.core.model_registry import default_face_model

    if default_face_model() is None:
        pytest.skip("no shipped default face model")
    code, err, _, out = _shoot(tmp_path, _project(tmp_path, seed=3), capsys)
    assert code == 0, err
    from PIL import Image

    assert np.asarray(Image.open(out)).std() > 5
