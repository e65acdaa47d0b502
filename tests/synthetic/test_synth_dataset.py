"""Writing labelled face folders: the job, resuming, the CLI and its subset overrides."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from studio.cli import main
from studio.core.errors import StudioError
from studio.core.jobs import Job, JobState
from studio.synthetic.dataset import dataset_params, synth_dataset_job, write_dataset
from studio.synthetic.params import HAIR_COLORS, PARAM_NAMES, VOCABULARIES

SIZE = 48


def _pngs(folder):
    return sorted(p.name for p in folder.glob("*.png"))


def test_writes_images_and_labels(tmp_path):
    out = write_dataset(tmp_path / "faces", n=5, size=SIZE, seed=3, batch=2)
    assert _pngs(out) == [f"{i:08d}.png" for i in range(5)]
    img = np.asarray(Image.open(out / "00000004.png"))
    assert img.shape == (SIZE, SIZE, 3) and img.dtype == np.uint8
    doc = json.loads((out / "labels.json").read_text())
    assert doc["param_names"] == list(PARAM_NAMES)
    assert doc["vocabularies"] == VOCABULARIES
    assert sorted(doc["labels"]) == _pngs(out)
    npz = np.load(out / "labels.npz")
    assert npz["labels"].shape == (5, len(PARAM_NAMES))
    assert list(npz["files"]) == _pngs(out)
    assert np.allclose(npz["labels"][2], doc["labels"]["00000002.png"], atol=1e-4)
    # the labels are the parameters the faces were drawn with
    p = dataset_params(5, seed=3)
    assert np.allclose(npz["labels"][:, PARAM_NAMES.index("smile")], p["smile"], atol=1e-5)
    assert not list(out.glob(".*.tmp"))


def test_resume_skips_existing_images_and_extends(tmp_path):
    out = write_dataset(tmp_path, n=4, size=SIZE, seed=1)
    before = {n: (out / n).read_bytes() for n in _pngs(out)}
    (out / "00000001.png").unlink()
    mtime = (out / "00000002.png").stat().st_mtime_ns
    events = []
    job = Job("synth", synth_dataset_job, out, 6, SIZE, 1)
    job.progressed.connect(events.append)
    job.run()
    assert job.state is JobState.DONE, job.error
    assert (out / "00000002.png").stat().st_mtime_ns == mtime  # not rewritten
    assert _pngs(out) == [f"{i:08d}.png" for i in range(6)]
    # a re-rendered face is the same face, whatever batch it was drawn in
    assert (out / "00000001.png").read_bytes() == before["00000001.png"]
    assert "3 of 6 faces already there" in events[0].message
    assert events[-1].fraction == pytest.approx(1.0)
    assert events[-1].preview is not None and events[-1].preview.shape == (SIZE, SIZE, 3)
    assert len(json.loads((out / "labels.json").read_text())["labels"]) == 6


def test_face_parameters_do_not_depend_on_the_count():
    a = dataset_params(5, seed=9)
    b = dataset_params(1500, seed=9)
    c = dataset_params(3, seed=9, start=1100)
    for k in PARAM_NAMES:
        assert np.array_equal(a[k], b[k][:5])
        assert np.array_equal(c[k], b[k][1100:1103])


def test_other_settings_in_the_same_folder_are_refused(tmp_path):
    write_dataset(tmp_path, n=2, size=SIZE, seed=1)
    with pytest.raises(StudioError, match="other settings"):
        write_dataset(tmp_path, n=2, size=SIZE, seed=2)


def test_cancel_keeps_labels_for_what_was_written(tmp_path):
    job = Job("synth", synth_dataset_job, tmp_path, 8, SIZE, 0, 2)

    def on_progress(p):
        if p.preview is not None:
            job.cancel()

    job.progressed.connect(on_progress)
    job.run()
    assert job.state is JobState.CANCELLED
    written = _pngs(tmp_path)
    assert 0 < len(written) < 8
    assert sorted(json.loads((tmp_path / "labels.json").read_text())["labels"]) == written


def test_cli_writes_a_subset(tmp_path, capsys):
    out = tmp_path / "red"
    rc = main(["synth-faces", "-n", "4", "--size", str(SIZE), "-o", str(out), "--seed", "5",
               "--set", "hair_color=red", "--set", "glasses=1", "--set", "head_yaw=-5:5"])
    assert rc == 0
    assert _pngs(out) == [f"{i:08d}.png" for i in range(4)]
    doc = json.loads((out / "labels.json").read_text())
    names = doc["param_names"]
    rows = np.array(list(doc["labels"].values()))
    assert (rows[:, names.index("hair_color")] == HAIR_COLORS.index("red")).all()
    assert (rows[:, names.index("glasses")] == 1).all()
    assert np.abs(rows[:, names.index("head_yaw")]).max() <= 5
    assert "wrote 4 faces" in capsys.readouterr().out


def test_cli_reports_bad_settings(tmp_path, capsys):
    rc = main(["synth-faces", "-n", "2", "-o", str(tmp_path / "x"), "--set", "hair_color=plaid"])
    assert rc == 2
    assert "hair_color" in capsys.readouterr().err
    rc = main(["synth-faces", "-n", "2", "-o", str(tmp_path / "x"), "--set", "hat=1"])
    assert rc == 2
    assert main(["synth-faces", "--list-params"]) == 0
    assert "head_yaw" in capsys.readouterr().out


@pytest.mark.slow
def test_worker_processes_draw_the_same_faces(tmp_path):
    a = write_dataset(tmp_path / "a", n=6, size=32, seed=4, batch=2, workers=0)
    b = write_dataset(tmp_path / "b", n=6, size=32, seed=4, batch=2, workers=2)
    for name in _pngs(a):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    assert (a / "labels.npz").read_bytes() == (b / "labels.npz").read_bytes()
