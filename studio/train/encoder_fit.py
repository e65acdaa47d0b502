"""Fit a parameter encoder (renderer parameters -> w) to a frozen generator.

The default face model was distilled from the procedural renderer through such an encoder,
but only its generator shipped. With the generator frozen, a fresh encoder learns again
which w renders the face of a parameter set: the same reconstruction loss as distillation
(L1 plus image-gradient L1 at two scales against ``render_faces(params)``), only the
encoder's weights move. The encoder is what gives the default model exact parametric
controls (mouth open, blink, head yaw... are renderer parameters) and the refiner its
training pairs (the GAN's rendering of p next to the renderer's crisp render of p).

A run is resumable: ``run_dir/checkpoint.pt`` (atomic, plain state dicts) every few minutes;
the result is ``run_dir/encoder.safetensors`` (``E.*`` tensors, JSON metadata with the
parameter layout and the fit's figures).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Generator as PyGenerator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from studio.core.jobs import JobContext, Progress
from studio.train.checkpoint import has_checkpoint, load_checkpoint, save_checkpoint
from studio.train.distill import (
    FaceFeeder,
    ParamEncoder,
    ReplayPool,
    encode_params,
    param_layout,
    recon_loss,
    sample_training_params,
)

ENCODER_FORMAT = "dhs-param-encoder"


@dataclass
class EncoderFitConfig:
    model: str = "models/face/default.safetensors"
    run_dir: str = "runs/encoder-fit"
    minutes: float = 60.0  # training minutes, summed over resumes
    batch: int = 16
    lr: float = 2e-3
    lr_final: float = 2e-4  # cosine decay over the whole budget
    hidden: int = 512
    pose_scale: float = 0.4  # the spread the default model was trained on
    pool_size: int = 4096
    pool_min: int = 256
    render_batch: int = 32
    seed: int = 0
    checkpoint_minutes: float = 4.0
    val_faces: int = 64  # held-out faces that measure the fit
    bf16: bool = True
    max_steps: int | None = None  # tests


def _synth(G: Any, w: torch.Tensor, bf16: bool) -> torch.Tensor:
    ws = w.unsqueeze(1).repeat(1, G.num_ws, 1)
    if bf16:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            img = G.synthesis(ws, noise_mode="const", channels_last=True)
    else:
        img = G.synthesis(ws, noise_mode="const")
    return img.float()


def _lr(cfg: EncoderFitConfig, seconds: float) -> float:
    t = min(1.0, max(0.0, seconds / max(cfg.minutes * 60, 1e-9)))
    # a plain float: a numpy scalar in the optimiser's state would make the checkpoint
    # unreadable by torch.load(weights_only=True)
    return float(cfg.lr_final + (cfg.lr - cfg.lr_final) * 0.5 * (1 + math.cos(math.pi * t)))


def save_encoder(path: str | Path, E: ParamEncoder, meta: dict[str, Any]) -> Path:
    from safetensors.torch import save

    from studio.core.atomic import atomic_write_bytes

    tensors = {f"E.{k}": v.detach().float().contiguous() for k, v in E.state_dict().items()}
    meta = {"format": ENCODER_FORMAT, "format_version": 1, **meta}
    atomic_write_bytes(path, save(tensors, metadata={"studio": json.dumps(meta)}))
    return Path(path)


def fit_encoder_job(ctx: JobContext, cfg: EncoderFitConfig) -> PyGenerator[Progress, None, dict]:
    from studio.face.model_file import load_face_model
    from studio.synthetic.renderer import render_faces

    run_dir = Path(cfg.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.seed)
    G = load_face_model(cfg.model).G.eval().requires_grad_(False)
    vec_dim = sum(w for _, w in param_layout())
    E = ParamEncoder(vec_dim, G.w_dim, cfg.hidden)
    opt = torch.optim.Adam(E.parameters(), lr=cfg.lr, betas=(0.9, 0.99))
    pool = ReplayPool(cfg.pool_size, vec_dim, G.img_resolution)
    st: dict[str, Any] = {"step": 0, "seconds": 0.0, "images_seen": 0, "losses": []}
    if has_checkpoint(run_dir):
        ck = load_checkpoint(run_dir)
        E.load_state_dict(ck["E"])
        opt.load_state_dict(ck["opt"])
        pool.load_state_dict(ck["pool"])
        st.update(ck["state"])
        yield Progress(None, f"resumed {run_dir} at step {st['step']}")

    def checkpoint() -> None:
        save_checkpoint(run_dir, {"images_seen": st["images_seen"], "E": E.state_dict(),
                                  "opt": opt.state_dict(),
                                  "pool": pool.state_dict(), "state": dict(st),
                                  "config": asdict(cfg)})

    # held-out faces, never trained on, measure the fit
    val_params = sample_training_params(cfg.val_faces, np.random.default_rng(999),
                                        cfg.pose_scale)
    val_vec = torch.from_numpy(encode_params(val_params))
    val_real = torch.from_numpy(render_faces(val_params, G.img_resolution)).permute(0, 3, 1, 2)
    val_real = val_real.float() / 127.5 - 1

    def validate() -> float:
        with torch.no_grad():
            return float(recon_loss(_synth(G, E(val_vec), cfg.bf16), val_real))

    gen = torch.Generator().manual_seed(cfg.seed + 7919 * st["step"])
    first = max(min(cfg.pool_min, cfg.pool_size) - pool.count, cfg.batch)
    feeder = FaceFeeder(G.img_resolution, cfg.render_batch, cfg.seed * 1000 + st["step"], first,
                        cfg.pose_scale)
    start_seen = st["images_seen"]
    last_ck = t_seg = time.monotonic()
    try:
        while feeder.got < first:
            ctx.check()
            if (item := feeder.get(block=True)) is not None:
                pool.add(*item)
        while st["seconds"] < cfg.minutes * 60 and (cfg.max_steps is None
                                                     or st["step"] < cfg.max_steps):
            ctx.check()
            while (item := feeder.get(block=False)) is not None:
                pool.add(*item)
            feeder.budget = first + (st["images_seen"] - start_seen)
            vec, real = pool.sample(cfg.batch, gen)
            loss = recon_loss(_synth(G, E(vec), cfg.bf16), real)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            for group in opt.param_groups:
                group["lr"] = _lr(cfg, st["seconds"])
            opt.step()
            st["step"] += 1
            st["images_seen"] += cfg.batch
            now = time.monotonic()
            st["seconds"] += now - t_seg
            t_seg = now
            if st["step"] % 20 == 0:
                st["losses"].append([st["step"], float(loss.detach())])
                yield Progress(min(1.0, st["seconds"] / (cfg.minutes * 60)),
                               f"step {st['step']}: loss {float(loss.detach()):.3f}",
                               metrics={"loss": float(loss.detach())}, step=st["step"])
            if now - last_ck >= cfg.checkpoint_minutes * 60:
                st["val_loss"] = validate()
                checkpoint()
                last_ck = time.monotonic()
                t_seg = last_ck  # validation and saving are not training time
    finally:
        feeder.close()
    st["val_loss"] = validate()
    checkpoint()
    out = save_encoder(run_dir / "encoder.safetensors", E, {
        "hidden": cfg.hidden, "vec_dim": vec_dim, "w_dim": G.w_dim,
        "layout": param_layout(), "pose_scale": cfg.pose_scale,
        "fit": {"steps": st["step"], "images_seen": st["images_seen"],
                "minutes": round(st["seconds"] / 60, 1), "val_loss": round(st["val_loss"], 4)},
    })
    return {"encoder": str(out), "val_loss": st["val_loss"], "steps": st["step"]}
