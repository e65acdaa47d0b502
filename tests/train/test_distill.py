"""The distillation trainer: loss falls, checkpoints resume, the saved model loads and renders."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from studio.core.jobs import JobContext
from studio.train.distill import DistillConfig, distill_job, encode_params, param_layout


def _drive(gen):
    events = []
    while True:
        try:
            events.append(next(gen))
        except StopIteration as stop:
            return events, stop.value


def _cfg(tmp: Path, **kw) -> DistillConfig:
    base = dict(
        out=str(tmp / "model.safetensors"), run_dir=str(tmp / "run"), resolution=16,
        batch=8, z_dim=16, w_dim=16, mapping_layers=2, channel_base=256, channel_max=16,
        encoder_hidden=32, pool_size=64, render_batch=8, minutes=100.0, max_steps=30,
        map_steps=30, map_bank=256, bf16=False, lr=5e-3,
    )
    base.update(kw)
    return DistillConfig(**base)


def test_encode_params_ranges():
    from studio.synthetic.params import sample_params

    v = encode_params(sample_params(5, np.random.default_rng(0)))
    assert v.shape == (5, sum(w for _, w in param_layout()))
    assert v.min() >= -1.0 - 1e-6 and v.max() <= 1.0 + 1e-6


@pytest.mark.slow
def test_distill_trains_resumes_and_saves(tmp_path: Path):
    from studio.face.engine import FaceEngine
    from studio.face.model_file import load_face_model
    from studio.train.checkpoint import load_checkpoint

    cfg = _cfg(tmp_path, max_steps=30, map_steps=None, map_minutes=0.0)
    # stage 1 only: stop right after the reconstruction steps by cancelling in stage 2
    ctx = JobContext()
    gen = distill_job(ctx, cfg)
    events = []
    for ev in gen:
        events.append(ev)
        if ev.message.startswith("mapping") or ev.fraction == 1.0:
            break
    gen.close()
    ck = load_checkpoint(cfg.run_dir)
    losses = [x[2] for x in ck["state"]["losses"]]
    assert ck["state"]["step"] == 30 and ck["images_seen"] == 240
    assert np.mean(losses[-2:]) < losses[0]

    # resume: more reconstruction steps continue from the checkpoint, then stage 2 and export
    cfg2 = _cfg(tmp_path, max_steps=40)
    events, result = _drive(distill_job(JobContext(), cfg2))
    assert events[0].message.startswith("resumed")
    ck = load_checkpoint(cfg.run_dir)
    assert ck["state"]["stage"] == 3 and ck["state"]["map_step"] >= 30
    assert Path(result["model"]).exists()

    model = load_face_model(result["model"])
    assert model.meta["training"]["untrained"] is False
    assert model.meta["training"]["images_seen"] >= 240
    torch.testing.assert_close(model.G.mapping.w_avg, ck["G"]["mapping.w_avg"])
    eng = FaceEngine(model)
    img = eng.render(eng.ws_for(0, 0.7))
    assert img.shape == (16, 16, 3) and img.dtype == np.uint8 and img.std() > 0


def test_grown_generator_starts_as_the_upsampled_small_one(tmp_path: Path):
    """Progressive growing: the grown generator's first image is the old one upsampled."""
    import torch.nn.functional as F

    from studio.train.checkpoint import load_checkpoint
    from studio.train.distill import ParamEncoder, _synth, build_generator, grow_checkpoint

    cfg = _cfg(tmp_path, max_steps=4, map_steps=2)
    _drive(distill_job(JobContext(), cfg))
    big = grow_checkpoint(cfg.run_dir, tmp_path / "run32", 32)
    assert big.resolution == 32
    small_ck, big_ck = load_checkpoint(cfg.run_dir), load_checkpoint(tmp_path / "run32")
    G0, G1 = build_generator(cfg), build_generator(big)
    G0.load_state_dict(small_ck["G"])
    G1.load_state_dict(big_ck["G"])
    E = ParamEncoder(sum(w for _, w in param_layout()), cfg.w_dim, cfg.encoder_hidden)
    E.load_state_dict(big_ck["E"])
    from studio.synthetic.params import sample_params

    w = E(torch.from_numpy(encode_params(sample_params(2, np.random.default_rng(0)))))
    with torch.no_grad():
        small = _synth(G0, w, False, "const")
        grown = _synth(G1, w, False, "const")
    up = F.interpolate(small, scale_factor=2, mode="bilinear", align_corners=False)
    # NVIDIA's upfirdn upsampling is not bilinear, but close: the content is the old image
    assert grown.shape[-1] == 32
    assert (grown - up).abs().mean() < 0.05 * small.abs().mean() + 0.02
    # and the grown run trains on from there
    cfg2 = DistillConfig(**{**big_ck["config"], "max_steps": big_ck["state"]["step"] + 3,
                            "map_steps": 2, "out": str(tmp_path / "m32.safetensors")})
    _events, result = _drive(distill_job(JobContext(), cfg2))
    assert Path(result["model"]).exists()
    assert result["training"]["grown_from_resolution"] == 16


def test_patch_critic_trains_alongside_and_resumes(tmp_path: Path):
    from studio.train.checkpoint import load_checkpoint

    cfg = _cfg(tmp_path, max_steps=6, map_steps=2, adv_weight=0.05)
    events, result = _drive(distill_job(JobContext(), cfg))
    adv = [e.metrics["adv"] for e in events if "adv" in e.metrics]
    assert adv and all(np.isfinite(adv))
    ck = load_checkpoint(cfg.run_dir)
    assert "PD" in ck and result["training"]["adv_weight"] == 0.05


def test_lr_factor_holds_then_decays_to_a_tenth():
    from studio.train.distill import lr_factor

    cfg = DistillConfig(minutes=10.0, lr_decay_minutes=4.0)
    assert lr_factor(cfg, 0.0) == 1.0 and lr_factor(cfg, 6 * 60 - 1) == 1.0
    mid = lr_factor(cfg, 8 * 60)
    assert 0.5 < mid < 0.6  # half-way down the cosine: 0.55
    assert abs(lr_factor(cfg, 10 * 60) - 0.1) < 1e-9 and lr_factor(cfg, 11 * 60) == 0.1
    assert lr_factor(DistillConfig(minutes=10.0), 9.9 * 60) == 1.0


# --------------------------------------------------------------------------- `studio train distill`


def _settings(argv: list[str]):
    from studio.cli import build_parser
    from studio.cli.train_cmds import distill_settings

    return distill_settings(build_parser().parse_args(["train", "distill", *argv]))


def test_distill_cli_options_make_the_config(tmp_path: Path):
    cfg = _settings(["--out", str(tmp_path / "m.safetensors"), "--run-dir", str(tmp_path / "r"),
                     "--resolution", "32", "--minutes", "5", "--map-minutes", "1",
                     "--batch", "4", "--channel-base", "512", "--channel-max", "32",
                     "--z-dim", "8", "--w-dim", "8", "--mapping-layers", "2", "--lr", "1e-3",
                     "--beta1", "0.5", "--fresh-ratio", "0.5", "--pose-scale", "0.4",
                     "--lr-decay-minutes", "2", "--adv-weight", "0.03", "--seed", "7",
                     "--fp32"])
    assert (cfg.resolution, cfg.minutes, cfg.map_minutes, cfg.batch) == (32, 5.0, 1.0, 4)
    assert (cfg.channel_base, cfg.channel_max, cfg.z_dim, cfg.w_dim) == (512, 32, 8, 8)
    assert (cfg.mapping_layers, cfg.lr, cfg.beta1, cfg.fresh_ratio) == (2, 1e-3, 0.5, 0.5)
    assert (cfg.pose_scale, cfg.lr_decay_minutes, cfg.adv_weight, cfg.seed) == (0.4, 2.0, 0.03, 7)
    assert cfg.bf16 is False and cfg.run_dir == str(tmp_path / "r")
    d = DistillConfig()
    plain = _settings([])
    assert (plain.resolution, plain.batch, plain.lr, plain.bf16, plain.out) == \
        (d.resolution, d.batch, d.lr, True, d.out)


def test_distill_cli_resume_keeps_the_runs_settings(tmp_path: Path):
    from studio.core.errors import StudioError

    cfg = _cfg(tmp_path, max_steps=2, map_steps=1)
    _drive(distill_job(JobContext(), cfg))
    out = str(tmp_path / "again.safetensors")
    resumed = _settings(["--resume", cfg.run_dir, "--minutes", "9", "--out", out,
                         "--pose-scale", "0.5", "--batch", "4"])
    assert (resumed.resolution, resumed.w_dim, resumed.channel_max) == (16, 16, 16)
    assert (resumed.minutes, resumed.out, resumed.pose_scale, resumed.batch) == (9.0, out, 0.5, 4)
    with pytest.raises(StudioError, match="--channel-base"):
        _settings(["--resume", cfg.run_dir, "--channel-base", "64"])
    with pytest.raises(StudioError, match="--resolution"):
        _settings(["--resume", cfg.run_dir, "--resolution", "32"])
    with pytest.raises(StudioError, match="--run-dir"):
        _settings(["--grow", cfg.run_dir, "--resolution", "32"])
    with pytest.raises(StudioError, match="already 16 px"):
        _settings(["--grow", cfg.run_dir, "--run-dir", str(tmp_path / "g"), "--resolution", "16"])
    with pytest.raises(StudioError, match="power of two"):
        _settings(["--resolution", "48"])
    with pytest.raises(StudioError, match="no checkpoint"):
        _settings(["--resume", str(tmp_path / "nowhere")])


@pytest.mark.slow
def test_studio_train_distill_runs_resumes_and_writes_samples(tmp_path: Path, capsys):
    from studio.cli import main
    from studio.face.model_file import load_face_model

    out, run = tmp_path / "m.safetensors", tmp_path / "run"
    tiny = ["--resolution", "16", "--channel-base", "256", "--channel-max", "16", "--z-dim", "16",
            "--w-dim", "16", "--mapping-layers", "2", "--batch", "8", "--fp32", "--threads", "1"]
    assert main(["train", "distill", "--out", str(out), "--run-dir", str(run), *tiny,
                 "--minutes", "0.01", "--map-minutes", "0.005"]) == 0
    text = capsys.readouterr().out
    assert f"wrote {out}" in text and "samples" in text
    assert out.with_name("m_samples.png").is_file()
    first = load_face_model(out).meta["training"]
    assert first["resolution"] == 16 and first["images_seen"] >= 8
    from studio.train.checkpoint import load_checkpoint

    more = (load_checkpoint(run)["state"]["seconds"] + 1.5) / 60  # reopens the finished run
    assert main(["train", "distill", "--resume", str(run), "--out", str(out), "--minutes",
                 f"{more:.4f}", "--map-minutes", "0.005", "--threads", "1", "--no-samples"]) == 0
    assert "resumed" in capsys.readouterr().err
    assert load_face_model(out).meta["training"]["steps"] > first["steps"]
