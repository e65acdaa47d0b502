"""Training and fine-tuning the default refiner end to end on tiny data (seconds)."""

import numpy as np
import pytest
from PIL import Image
from refine_helpers import CPU32

from studio.cli import main
from studio.core.jobs import Job, JobState
from studio.refine.base import RefineParams
from studio.refine.pixel import load_pixel_refiner
from studio.train.refiner_train import RefinerTrainConfig, train_refiner_job

pytestmark = pytest.mark.slow


def _tiny_cfg(tmp_path, **kw):
    base = dict(run_dir=str(tmp_path / "run"), out=str(tmp_path / "refiner"), channels=(8, 16),
                norm_groups=4, scale=2, input_size=16, patch=16, batch=4, pool_size=16,
                pool_min=8, render_batch=8, max_steps=6, minutes=10, sample_every=0,
                sample_steps=2, bf16=False)
    base.update(kw)
    return RefinerTrainConfig(**base)


def test_train_from_gan_pairs_writes_a_refiner_that_refines(tmp_path, tiny_face_files):
    model, enc = tiny_face_files
    cfg = _tiny_cfg(tmp_path, face_model=str(model), encoder=str(enc))
    job = Job("train", train_refiner_job, cfg)
    losses = []
    job.progressed.connect(lambda p: losses.append(p.metrics.get("loss")) if p.metrics else None)
    job.run()
    assert job.state is JobState.DONE, job.error
    assert job.result["steps"] == 6 and len(losses) == 6
    r = load_pixel_refiner(tmp_path / "refiner", CPU32)
    img = (np.random.default_rng(0).random((16, 16, 3)) * 255).astype(np.uint8)
    assert r.refine(img, RefineParams(0.5, 4)).shape == (32, 32, 3)
    grid = np.asarray(Image.open(sorted((tmp_path / "run" / "samples").glob("*.png"))[-1]))
    assert grid.shape == (96, 4 * 32, 3)  # condition | refined | target, 4 faces
    assert (tmp_path / "run" / "checkpoint.pt").is_file()


def test_cancel_checkpoints_and_resume_continues(tmp_path, tiny_face_files):
    from studio.train.checkpoint import load_checkpoint

    model, enc = tiny_face_files
    cfg = _tiny_cfg(tmp_path, face_model=str(model), encoder=str(enc), max_steps=50)
    job = Job("train", train_refiner_job, cfg)
    job.progressed.connect(lambda p: job.cancel() if p.step == 3 else None)
    job.run()
    assert job.state is JobState.CANCELLED
    assert load_checkpoint(tmp_path / "run")["state"]["step"] == 3
    cfg2 = _tiny_cfg(tmp_path, face_model=str(model), encoder=str(enc), max_steps=5)
    job2 = Job("train", train_refiner_job, cfg2)
    msgs = []
    job2.progressed.connect(lambda p: msgs.append(p.message))
    job2.run()
    assert job2.state is JobState.DONE, job2.error
    assert any("resumed" in m and "step 3" in m for m in msgs)
    assert job2.result["steps"] == 5


def test_fine_tune_on_a_folder_from_the_cli(tmp_path, tiny_pixel_refiner, capsys):
    data = tmp_path / "photos"
    data.mkdir()
    rng = np.random.default_rng(0)
    for i in range(5):
        Image.fromarray((rng.random((40, 36, 3)) * 255).astype(np.uint8)).save(data / f"{i}.png")
    (data / "broken.png").write_bytes(b"nope")
    out = tmp_path / "mine"
    before = load_pixel_refiner(tiny_pixel_refiner, CPU32).unet.state_dict()
    assert main(["train", "refiner", "--data", str(data), "--base", str(tiny_pixel_refiner),
                 "-o", str(out), "--run-dir", str(tmp_path / "run"), "--max-steps", "3",
                 "--batch", "2", "--patch", "16", "--no-bf16", "--sample-every", "0"]) == 0
    cap = capsys.readouterr()
    assert "broken.png" in cap.err and "wrote" in cap.out
    after = load_pixel_refiner(out, CPU32)
    assert after.scale == 2
    changed = [k for k, v in after.unet.state_dict().items() if not (v == before[k]).all()]
    assert changed  # the weights moved


def test_resume_without_checkpoint_is_a_clear_error(tmp_path, capsys):
    assert main(["train", "refiner", "--resume", "--run-dir", str(tmp_path / "none")]) == 2
    assert "nothing to resume" in capsys.readouterr().err
