"""Checks that need a CUDA GPU (``pytest -m cuda``; bench/gpu_check.sh runs them with the
GPU benchmarks). Skipped on a machine without one."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device"),
]


def _tiny_model(resolution: int = 32):
    from studio.face.generator import Generator
    from studio.face.model_file import FaceModel

    torch.manual_seed(0)
    G = Generator(z_dim=32, w_dim=32, img_resolution=resolution, img_channels=3,
                  mapping_kwargs={"num_layers": 2},
                  synthesis_kwargs={"channel_base": 512, "channel_max": 32})
    with torch.no_grad():
        for name, p in G.named_parameters():
            if name.endswith("noise_strength"):
                p.fill_(0.1)
        G.mapping.w_avg.copy_(G.mapping(torch.randn(64, 32), None).mean(dim=(0, 1)))
    return FaceModel(G=G.eval().requires_grad_(False), D=None, meta={"name": "tiny"})


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(255.0**2 / mse)


def test_auto_device_is_the_gpu():
    from studio.core.devices import select_device

    choice = select_device("auto", "auto")
    assert choice.device.startswith("cuda") and choice.precision in ("bf16", "fp16")


@pytest.mark.parametrize(("precision", "min_db"), [("fp32", 35.0), ("bf16", 25.0), ("fp16", 25.0)])
def test_face_engine_on_the_gpu_matches_the_cpu(precision, min_db):
    import copy

    from studio.core.devices import DeviceChoice
    from studio.face.engine import FaceEngine

    model = _tiny_model()
    cpu = FaceEngine(copy.deepcopy(model), DeviceChoice("cpu", "fp32", "test"))
    gpu = FaceEngine(copy.deepcopy(model), DeviceChoice("cuda", precision, "test"))
    assert next(gpu.G.parameters()).is_cuda
    for seed in (0, 7):
        want = cpu.render(cpu.ws_for(seed, 0.7))
        got = gpu.render(gpu.ws_for(seed, 0.7))
        assert got.shape == want.shape == (32, 32, 3) and got.dtype == np.uint8
        assert _psnr(got, want) > min_db, (precision, seed, _psnr(got, want))


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_face_training_runs_on_the_gpu(tmp_path: Path, precision):
    from PIL import Image

    from studio.core.jobs import JobContext
    from studio.face.model_file import load_face_model
    from studio.synthetic.params import sample_params
    from studio.synthetic.renderer import render_faces
    from studio.train.config import TrainConfig
    from studio.train.loop import train_face_job

    data = tmp_path / "faces"
    data.mkdir()
    for i, img in enumerate(render_faces(sample_params(16, np.random.default_rng(0)), 16)):
        Image.fromarray(img).save(data / f"{i:03d}.png")
    out = tmp_path / "m.safetensors"
    cfg = TrainConfig(data=str(data), runs_root=str(tmp_path / "runs"), resolution=16,
                      z_dim=16, w_dim=16, mapping_layers=2, channel_base=256, channel_max=16,
                      conv_clamp=256.0, kimg=0.064, batch=8, batch_gpu=8, precision=precision,
                      device="cuda", fd_samples=0, preview_every=32, checkpoint_every=10_000,
                      preview_grid=[2, 2], r1_interval=4, output=str(out), name="gpu")
    gen = train_face_job(JobContext(), cfg)
    losses = []
    while True:
        try:
            ev = next(gen)
        except StopIteration as stop:
            result = stop.value
            break
        if ev.metrics and "loss_G" in ev.metrics:
            losses.append((ev.metrics["loss_G"], ev.metrics["loss_D"]))
    assert losses and all(math.isfinite(g) and math.isfinite(d) for g, d in losses)
    assert result.images_seen == 64
    model = load_face_model(out)  # saved on the CPU side, loads anywhere
    assert model.resolution == 16
