"""The face-GAN training job: runs, writes a usable model, cancels and resumes exactly,
and fine-tuning moves the model towards its data."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from studio.core.errors import StudioError
from studio.core.jobs import Job, JobCancelled, JobContext, JobState


class CancelAtCheck(JobContext):
    """Cancels at the n-th ``check()`` (a micro-batch in the middle of a minibatch)."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.calls = 0
        self.n = n

    def check(self) -> None:
        self.calls += 1
        if self.calls == self.n:
            self.cancel()
        super().check()


def test_training_runs_and_writes_a_usable_model(faces16, tmp_path, tk):
    from studio.face.engine import FaceEngine
    from studio.face.model_file import load_face_model
    from studio.train.loop import train_face_job

    out = tmp_path / "out" / "tiny.safetensors"
    cfg = tk.config(faces16, tmp_path, output=str(out), name="tiny", kimg=0.128, pl_weight=2.0,
                    pl_interval=2, fd_samples=12)
    events, result = tk.drive(train_face_job(JobContext(), cfg))

    metrics = [e.metrics for e in events if e.metrics and "loss_G" in e.metrics]
    assert len(metrics) == 16  # 128 images / batch 8
    for m in metrics:
        assert math.isfinite(m["loss_G"]) and math.isfinite(m["loss_D"])
    assert any("r1" in m for m in metrics) and any("pl" in m for m in metrics)
    assert [e.step for e in events if e.metrics and "loss_G" in e.metrics] == list(range(8, 129, 8))
    fractions = [e.fraction for e in events if e.fraction is not None]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    previews = [e.preview for e in events if e.preview is not None]
    assert previews and all(p.shape == (32, 32, 3) and p.dtype == np.uint8 for p in previews)

    assert result.model == out and result.images_seen == 128
    assert set(result.metrics) == {"fd", "precision", "recall"}
    model = load_face_model(out)
    assert model.D is not None and model.resolution == 16
    tr = model.meta["training"]
    assert tr["images_seen"] == 128 and tr["data"]["count"] == 24 and tr["base_model"] is None
    assert tr["metrics"]["fd"] == pytest.approx(result.metrics["fd"])
    frame = FaceEngine(model).render(FaceEngine(model).ws_for(3))
    assert frame.shape == (16, 16, 3) and frame.std() > 0
    assert out.with_suffix(".md").read_text().startswith("# tiny")
    assert out.with_name("tiny.samples.png").stat().st_size > 0
    saved = json.loads((result.run_dir / "config.json").read_text())
    assert saved["resolution"] == 16 and saved["r1_gamma"] == pytest.approx(0.0002 * 256 / 8)
    assert (result.run_dir / "checkpoint.pt").exists()
    assert len((result.run_dir / "log.jsonl").read_text().splitlines()) == 4


def test_ada_p_rises_when_d_overfits_a_tiny_set(tmp_path, tk):
    from studio.train.loop import train_face_job

    data = tk.write_folder(tmp_path / "four", tk.render(4, 16, seed=0))
    cfg = tk.config(data, tmp_path, kimg=0.064, batch=4, batch_gpu=4, lr_d=0.01, ada_kimg=0.1,
                    ada_interval=2, mirror=False, r1_gamma=0.0, preview_every=1000)
    events, _ = tk.drive(train_face_job(JobContext(), cfg))
    p = [e.metrics["aug_p"] for e in events if e.metrics and "aug_p" in e.metrics]
    assert p[0] == 0.0 and max(p) >= 0.08  # one ADA step is 2 * 4 / 100 = 0.08


def test_cancel_then_resume_continues_exactly(faces16, tmp_path, tk):
    from studio.face.model_file import load_face_model
    from studio.train.checkpoint import load_checkpoint
    from studio.train.loop import resume_config, train_face_job

    common = {"kimg": 0.096, "pl_weight": 1.0, "pl_interval": 3, "style_mixing": 0.5,
              "aug_p": 0.3, "checkpoint_every": 10_000, "batch_gpu": 4}
    cfg_a = tk.config(faces16, tmp_path, run_dir=str(tmp_path / "a"),
                      output=str(tmp_path / "a.safetensors"), **common)
    _, res_a = tk.drive(train_face_job(JobContext(), cfg_a))

    cfg_b = tk.config(faces16, tmp_path, run_dir=str(tmp_path / "b"),
                      output=str(tmp_path / "b.safetensors"), **common)
    # check() runs before each micro-batch and each network block: with 2 micro-batches per
    # phase, check 90 falls in the middle of a forward pass in minibatch 2's Dmain phase.
    ctx = CancelAtCheck(90)
    with pytest.raises(JobCancelled):
        tk.drive(train_face_job(ctx, cfg_b))
    state = load_checkpoint(tmp_path / "b")
    seen = state["images_seen"]
    assert 0 < seen < 96 and seen % 8 == 0
    assert state["trainer"]["next_phase"] > 0  # stopped inside a minibatch
    config_before = (tmp_path / "b" / "config.json").read_text()

    events, res_b = tk.drive(train_face_job(JobContext(), resume_config(tmp_path / "b")))
    assert events[1].step == seen  # continues with the same images-seen count
    assert (tmp_path / "b" / "config.json").read_text() == config_before
    assert res_b.images_seen == res_a.images_seen == 96
    a, b = load_face_model(res_a.model), load_face_model(res_b.model)
    for (ka, va), (kb, vb) in zip(a.G.state_dict().items(), b.G.state_dict().items(), strict=True):
        assert ka == kb and torch.equal(va, vb), ka
    for va, vb in zip(a.D.state_dict().values(), b.D.state_dict().values(), strict=True):
        assert torch.equal(va, vb)
    assert a.meta["training"]["aug_p"] == b.meta["training"]["aug_p"]


def test_cancel_through_the_job_runner_writes_a_checkpoint(faces16, tmp_path, tk):
    from studio.train.checkpoint import load_checkpoint
    from studio.train.loop import train_face_job

    cfg = tk.config(faces16, tmp_path, run_dir=str(tmp_path / "run"), kimg=1.0)
    job = Job("train", train_face_job, cfg)

    def on_progress(p):
        if p.step is not None and p.step >= 24:
            job.cancel()

    job.progressed.connect(on_progress)
    job.run()
    assert job.state is JobState.CANCELLED
    assert load_checkpoint(tmp_path / "run")["images_seen"] == 24


def test_resume_refuses_other_settings(faces16, tmp_path, tk):
    from studio.train.loop import resume_config, train_face_job

    cfg = tk.config(faces16, tmp_path, run_dir=str(tmp_path / "run"), kimg=0.016)
    tk.drive(train_face_job(JobContext(), cfg))
    other = tk.config(faces16, tmp_path, run_dir=str(tmp_path / "run"), kimg=0.032, seed=7)
    with pytest.raises(StudioError, match="other settings"):
        tk.drive(train_face_job(JobContext(), other))
    with pytest.raises(StudioError, match="cannot change seed"):
        resume_config(tmp_path / "run", seed=4)
    # a longer run is fine: kimg may change
    _, res = tk.drive(train_face_job(JobContext(), resume_config(tmp_path / "run", kimg=0.032)))
    assert res.images_seen == 32


def test_bad_data_folder_is_a_clear_error(tmp_path, tk):
    from studio.train.loop import train_face_job

    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("no images here")
    with pytest.raises(StudioError, match="no usable PNG or JPG") as err:
        tk.drive(train_face_job(JobContext(), tk.config(empty, tmp_path)))
    assert str(empty) in str(err.value)


def _mean_rgb(G) -> np.ndarray:
    from studio.train.metrics import sample_images

    return sample_images(G, 32, seed=5).reshape(-1, 3).mean(0) / 255


def test_finetune_on_a_biased_subset_moves_colours_towards_it(red_faces16, tmp_path, tk):
    from studio.face.model_file import load_face_model
    from studio.train.loop import train_face_job

    base = tk.base_model(tmp_path / "base.safetensors",
                         controls={"smile": np.linspace(-1, 1, 16).astype(np.float32)})
    before = _mean_rgb(load_face_model(base).G)
    target = np.stack([np.asarray(__import__("PIL.Image").Image.open(p).convert("RGB"))
                       for p in sorted(red_faces16.glob("*.png"))]).reshape(-1, 3).mean(0) / 255
    out = tmp_path / "red.safetensors"
    cfg = tk.config(red_faces16, tmp_path, base=str(base), resolution=None, output=str(out),
                    kimg=0.24, lr_g=0.01, lr_d=0.01, augment="none", ema_kimg=0.01,
                    preview_every=1000)
    tk.drive(train_face_job(JobContext(), cfg))
    model = load_face_model(out)
    after = _mean_rgb(model.G)
    assert np.abs(after - target).sum() < 0.6 * np.abs(before - target).sum()
    assert (after[0] - after[1:].mean()) > (before[0] - before[1:].mean()) + 0.05  # redder
    tr = model.meta["training"]
    assert tr["base_model"]["name"] == "tiny base"
    assert model.meta["license"] == "CC0-1.0"
    assert "smile" in model.controls and model.meta["controls"]["smile"]["inherited_from"] == "tiny base"


def test_finetune_on_a_look_raises_its_share_and_lowers_fd(tmp_path, tk):
    """The issue's experiment in miniature (bench/finetune_look.py runs it at scale): fine-tune
    on red-haired faces with glasses; the attribute regressor reads red hair in more of the
    model's faces, and the FD to the subset falls."""
    from studio.face.model_file import load_face_model
    from studio.synthetic.params import sample_params
    from studio.train.attributes import train_attribute_regressor
    from studio.train.data import ImageFolder
    from studio.train.look import look_report, parse_look
    from studio.train.loop import train_face_job
    from studio.train.metrics import real_images

    params = sample_params(600, np.random.default_rng(3))
    reg, _ = train_attribute_regressor(tk.render(600, 16, seed=3), params, ("hair_color",),
                                       steps=250, batch=32, size=16, width=8, seed=0)
    look = parse_look("hair_color=red")
    subset = tk.write_folder(tmp_path / "red", tk.render(32, 16, seed=2, hair_color="red",
                                                         glasses="round"))
    real = real_images(ImageFolder(subset, resolution=16), 32)
    base = tk.base_model(tmp_path / "base.safetensors")
    before = look_report(load_face_model(base).G, reg, look, real, n=128)
    out = tmp_path / "red.safetensors"
    cfg = tk.config(subset, tmp_path, base=str(base), resolution=None, output=str(out),
                    kimg=0.6, lr_g=0.01, lr_d=0.01, augment="none", ema_kimg=0.01,
                    preview_every=1000)
    tk.drive(train_face_job(JobContext(), cfg))
    after = look_report(load_face_model(out).G, reg, look, real, n=128)
    # tiny nets, a few hundred images: the share moves from the base rate (~0.08) about
    # half-way to the regressor's reading of the subset itself (~0.6)
    assert after["share"] > max(3 * before["share"], before["share"] + 0.2), (before, after)
    assert after["fd"] < 0.3 * before["fd"], (before, after)


def test_parse_look_reads_and_rejects():
    from studio.core.errors import StudioError
    from studio.train.look import parse_look

    assert parse_look("hair_color=red, glasses=round|square") == {
        "hair_color": ("red",), "glasses": ("round", "square")}
    for bad in ("", "hair_color", "=red", "hair_color="):
        with pytest.raises(StudioError):
            parse_look(bad)
