"""Train or fine-tune the pixel-space refiner as a job (resumable, cancellable).

``studio train refiner`` runs :func:`train_refiner_job`: pairs from
:mod:`studio.train.refiner_data` (the renderer + the face GAN through its parameter encoder,
or a folder of images), random ``patch`` crops (a convolutional net trained on patches
applies to full frames), v-prediction of the residual over the upsampled condition (see
:mod:`studio.refine.pixel`), bf16 autocast on the CPU fast path. Every few minutes an atomic
``run_dir/checkpoint.pt`` (weights, optimiser, counters; read with ``weights_only=True``);
``--resume`` continues exactly there. Loss points go to the progress events (live plots), a
sample grid (condition | refined | target) to ``run_dir/samples/``. The result is a refiner
folder (diffusers layout, safetensors, model card) at ``out``.
"""

from __future__ import annotations

import time
from collections.abc import Generator as PyGenerator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from studio.core.errors import StudioError
from studio.core.jobs import JobCancelled, JobContext, Progress
from studio.refine.pixel import (
    PixelRefinerSpec,
    build_unet,
    load_pixel_refiner,
    make_scheduler,
    noise_pair,
    save_pixel_refiner,
    scheduler_config,
)
from studio.train.checkpoint import has_checkpoint, load_checkpoint, save_checkpoint
from studio.train.refiner_data import PairPool, degrade, random_patches, upsample


@dataclass
class RefinerTrainConfig:
    run_dir: str = "runs/refiner"
    out: str = "models/refiner/default"
    source: str = "renderer"  # "renderer" (GAN + encoder) or "folder" (the user's images)
    data: str | None = None  # the folder for source="folder"
    face_model: str = "models/face/default.safetensors"
    encoder: str = "runs/encoder-fit/encoder.safetensors"
    base: str | None = None  # a refiner folder to fine-tune instead of a fresh net
    channels: tuple[int, ...] = (32, 64, 128, 256)
    layers_per_block: int = 1
    norm_groups: int = 8
    scale: int = 4
    input_size: int = 64
    residual_scale: float = 4.0
    patch: int = 64
    batch: int = 32
    lr: float = 2e-4
    minutes: float = 60.0  # training minutes, summed over resumes
    max_steps: int | None = None
    pool_size: int = 1024
    pool_min: int = 64
    render_batch: int = 16
    pose_scale: float = 0.4
    degrade: float = 1.0
    bf16: bool = True
    seed: int = 0
    checkpoint_minutes: float = 5.0
    sample_every: int = 1000  # steps between sample grids (0: only at the end)
    sample_steps: int = 10
    extra: dict[str, Any] = field(default_factory=dict)

    def spec(self) -> PixelRefinerSpec:
        return PixelRefinerSpec(channels=tuple(self.channels),
                                layers_per_block=self.layers_per_block, scale=self.scale,
                                input_size=self.input_size, residual_scale=self.residual_scale,
                                norm_groups=self.norm_groups)

    def check(self) -> None:
        if self.source not in ("renderer", "folder"):
            raise StudioError(f"unknown pair source {self.source!r} (renderer or folder)")
        if self.source == "folder" and not self.data:
            raise StudioError("fine-tuning on a folder needs --data DIR")
        if self.patch > self.input_size * self.scale or self.patch % 8:
            raise StudioError(f"patch {self.patch} must be a multiple of 8 and at most the "
                              f"output size {self.input_size * self.scale}")
        if self.batch < 1 or self.minutes <= 0:
            raise StudioError("batch must be at least 1 and minutes positive")


class _Feed:
    """Keeps the pair pool topped up (renderer source) or fills it once (folder source)."""

    def __init__(self, cfg: RefinerTrainConfig, pool: PairPool, seed: int) -> None:
        self.cfg, self.pool = cfg, pool
        self.feeder = self.maker = None
        self.problems: list[str] = []
        out = cfg.input_size * cfg.scale
        if cfg.source == "folder":
            from studio.train.refiner_data import folder_pairs

            conds, targets, self.problems = folder_pairs(cfg.data, cfg.input_size, cfg.scale,
                                                         limit=len(pool.cond))
            pool.add(conds, targets)
        else:
            from studio.train.distill_parts import FaceFeeder
            from studio.train.refiner_data import GanPairMaker

            self.maker = GanPairMaker(cfg.face_model, cfg.encoder, cfg.bf16)
            self.feeder = FaceFeeder(out, cfg.render_batch, seed, budget=1 << 62,
                                     pose_scale=cfg.pose_scale)

    def top_up(self, block: bool) -> None:
        if self.feeder is None:
            return
        while (item := self.feeder.get(block=block)) is not None:
            vecs, targets = item
            self.pool.add(self.maker.conditions(vecs, self.cfg.input_size), targets)
            block = False

    def close(self) -> None:
        if self.feeder is not None:
            self.feeder.close()


def _sample_grid(unet: Any, cfg: RefinerTrainConfig, cond: torch.Tensor,
                 target: torch.Tensor) -> np.ndarray:
    """Rows: condition (upsampled) | refined (strength 1) | target, one column per face."""
    from studio.core.devices import DeviceChoice
    from studio.refine.base import RefineParams
    from studio.refine.images import to_image
    from studio.refine.pixel import PixelRefiner

    meta = {"scale": cfg.scale, "residual_scale": cfg.residual_scale}
    device = DeviceChoice("cpu", "bf16" if cfg.bf16 else "fp32", "training")
    r = PixelRefiner(unet, meta, scheduler_config(), "sample", device)
    out = cfg.input_size * cfg.scale
    cols = []
    params = RefineParams(strength=1.0, steps=cfg.sample_steps, seed=0)
    for c, t in zip(cond, target, strict=True):
        c_img = to_image(c[None])
        refined = r.refine(c_img, params)
        cols.append(np.concatenate([to_image(upsample(c[None], out)), refined,
                                    to_image(t[None])], axis=0))
    unet.train().requires_grad_(True)
    return np.concatenate(cols, axis=1)


def train_refiner_job(ctx: JobContext, cfg: RefinerTrainConfig
                      ) -> PyGenerator[Progress, None, dict[str, Any]]:
    from studio.refine.images import write_png

    cfg.check()
    run_dir = Path(cfg.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.seed)
    spec = cfg.spec()
    if cfg.base:
        base = load_pixel_refiner(cfg.base)
        unet = base.unet.float().train().requires_grad_(True)
        spec.scale, spec.residual_scale = base.scale, base.residual_scale
        spec.input_size = int(base.meta.get("input_size", cfg.input_size))
        spec.channels = tuple(unet.config.block_out_channels)
        cfg.scale, cfg.residual_scale, cfg.input_size = spec.scale, spec.residual_scale, spec.input_size
    else:
        unet = build_unet(spec).train()
    opt = torch.optim.AdamW(unet.parameters(), lr=cfg.lr, weight_decay=0.0)
    sched = make_scheduler("ddim", scheduler_config())
    st: dict[str, Any] = {"step": 0, "seconds": 0.0, "images_seen": 0, "losses": []}
    if has_checkpoint(run_dir):
        ck = load_checkpoint(run_dir)
        unet.load_state_dict(ck["unet"])
        opt.load_state_dict(ck["opt"])
        st.update(ck["state"])
        yield Progress(None, f"resumed {run_dir} at step {st['step']}")

    def checkpoint() -> None:
        save_checkpoint(run_dir, {"unet": unet.state_dict(), "opt": opt.state_dict(),
                                  "state": dict(st), "images_seen": st["images_seen"],
                                  "config": {k: v for k, v in asdict(cfg).items()
                                             if k != "extra"}})

    yield Progress(None, "making training pairs")
    pool = PairPool(cfg.pool_size, cfg.input_size, cfg.scale)
    feed = _Feed(cfg, pool, cfg.seed * 1000 + st["step"])
    gen = torch.Generator().manual_seed(cfg.seed + 7919 * st["step"])
    out_size = cfg.input_size * cfg.scale
    budget_s = cfg.minutes * 60
    last_ck = t_seg = time.monotonic()
    try:
        while feed.feeder is not None and pool.count < min(cfg.pool_min, cfg.pool_size):
            ctx.check()
            feed.top_up(block=True)
            yield Progress(None, f"making training pairs: {pool.count}/{cfg.pool_min}")
        k = min(4, pool.count)  # the first faces of the pool: four different ones
        vis_cond = pool.cond[:k].permute(0, 3, 1, 2).float() / 127.5 - 1.0
        vis_target = pool.target[:k].permute(0, 3, 1, 2).float() / 127.5 - 1.0
        t_seg = time.monotonic()
        while st["seconds"] < budget_s and (cfg.max_steps is None or st["step"] < cfg.max_steps):
            ctx.check()
            feed.top_up(block=False)
            cond, target = pool.sample(cfg.batch, gen)
            cond = upsample(degrade(cond, cfg.degrade, gen), out_size)
            cond, target = random_patches(cond, target, cfg.patch, gen)
            inp, t, v = noise_pair(target, cond, cfg.residual_scale, sched, gen)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=cfg.bf16):
                pred = unet(inp.contiguous(memory_format=torch.channels_last), t).sample
            loss = torch.nn.functional.mse_loss(pred.float(), v)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(unet.parameters(), 1.0)
            opt.step()
            st["step"] += 1
            st["images_seen"] += cfg.batch
            now = time.monotonic()
            st["seconds"] += now - t_seg
            t_seg = now
            lv = float(loss.detach())
            if not np.isfinite(lv):
                raise StudioError(f"training diverged at step {st['step']} (loss {lv}); "
                                  "resume from the last checkpoint with a lower --lr")
            if st["step"] % 10 == 0 or cfg.max_steps is not None:
                st["losses"].append([st["step"], lv])
                frac = st["seconds"] / budget_s
                if cfg.max_steps:
                    frac = max(frac, st["step"] / cfg.max_steps)
                yield Progress(min(1.0, frac), f"step {st['step']}: loss {lv:.4f} "
                               f"({st['images_seen'] / max(st['seconds'], 1e-9):.1f} patches/s)",
                               metrics={"loss": lv}, step=st["step"])
            if cfg.sample_every and st["step"] % cfg.sample_every == 0:
                grid = _sample_grid(unet, cfg, vis_cond, vis_target)
                write_png(run_dir / "samples" / f"step_{st['step']:07d}.png", grid)
                yield Progress(None, f"samples at step {st['step']}", preview=grid)
                t_seg = time.monotonic()
            if now - last_ck >= cfg.checkpoint_minutes * 60:
                checkpoint()
                last_ck = t_seg = time.monotonic()
    except (JobCancelled, GeneratorExit):
        checkpoint()  # Ctrl-C / Cancel (the runner closes the job): resume continues here
        raise
    finally:
        feed.close()
    checkpoint()
    grid = _sample_grid(unet, cfg, vis_cond, vis_target)
    write_png(run_dir / "samples" / f"step_{st['step']:07d}.png", grid)
    info = {"steps": st["step"], "patches_seen": st["images_seen"], "patch": cfg.patch,
            "minutes": round(st["seconds"] / 60, 1), "source": cfg.source,
            "final_loss": st["losses"][-1][1] if st["losses"] else None}
    unet.eval()
    folder = save_pixel_refiner(cfg.out, unet, spec, info)
    yield Progress(1.0, f"wrote {folder}", preview=grid)
    return {"refiner": str(folder), "problems": feed.problems, **info}
