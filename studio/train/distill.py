"""Distil the procedural face renderer into a StyleGAN2 generator, cheaply, on the CPU.

Adversarial training from scratch is far too slow on a few CPU cores, but the synthetic
renderer gives every image its labels, so the generator can be taught by regression:

1. **Reconstruction** (params -> image). Each sampled parameter set becomes a vector
   (continuous values scaled to [-1, 1], categoricals one-hot); a small MLP *encoder* maps it
   to one w (broadcast to every layer) and the generator's synthesis network renders it.
   Loss: L1 plus L1 on image gradients, at full and half resolution, against
   ``render_faces(params)``. Faces are rendered in a background thread into a replay pool.
2. **Mapping fit** (z -> w). The generator's own mapping network learns to send z ~ N(0, I)
   to the encoder's distribution of w over random params: sliced Wasserstein distance plus a
   small non-saturating game against an MLP critic on w vectors (R1 penalty). ``w_avg``
   becomes the mean mapped w.

The result is a plain :class:`~studio.face.generator.Generator` (NVIDIA parameter names), so
it fine-tunes later with the adversarial trainer. A run lives in ``runs/distill-*/`` and is
resumable from atomic checkpoints (plain state dicts, ``torch.load(weights_only=True)``).
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Generator as PyGenerator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from studio.core.jobs import JobCancelled, JobContext, Progress
from studio.face.generator import Generator
from studio.train.checkpoint import has_checkpoint, load_checkpoint, save_checkpoint
from studio.train.distill_parts import (
    POSE_PARAMS,
    FaceFeeder,
    ParamEncoder,
    PatchCritic,
    ReplayPool,
    WCritic,
    encode_params,
    param_layout,
    recon_loss,
    sample_training_params,
    sliced_wasserstein,
)

__all__ = [  # the parts are imported from here too
    "POSE_PARAMS", "DistillConfig", "DistillRun", "FaceFeeder", "ParamEncoder", "PatchCritic",
    "ReplayPool", "WCritic", "distill_config", "distill_job", "encode_params", "grow_checkpoint",
    "param_layout", "recon_loss", "sample_training_params", "sliced_wasserstein",
    "write_samples",
]

MODEL_NAME = "Default procedural faces"
MODEL_SOURCE = "trained by Digital Human Studio on procedural faces (studio synth-faces)"


@dataclass
class DistillConfig:
    out: str = "models/face/default.safetensors"
    run_dir: str | None = None  # None: a new runs/distill-<time> folder
    runs_root: str = "runs"
    resolution: int = 64
    minutes: float = 60.0  # reconstruction budget (training minutes, summed over resumes)
    map_minutes: float = 4.0  # mapping-fit budget
    batch: int = 16
    z_dim: int = 256
    w_dim: int = 256
    mapping_layers: int = 4
    channel_base: int = 4096
    channel_max: int = 256
    encoder_hidden: int = 512
    lr: float = 2e-3
    beta1: float = 0.9
    lr_map: float = 1e-3  # before the mapping network's lr multiplier
    pool_size: int = 4096
    pool_min: int = 256  # faces rendered before training starts
    fresh_ratio: float = 1.0  # new renders per image trained on (the rest is replay)
    render_batch: int = 32
    seed: int = 0
    checkpoint_minutes: float = 4.0
    preview_minutes: float = 3.0
    bf16: bool = True
    max_steps: int | None = None  # stop stage 1 after this many steps (tests)
    map_steps: int | None = None  # stop stage 2 after this many steps (tests)
    map_bank: int = 16384
    pose_scale: float = 1.0  # scales head pose and gaze of the sampled faces (1 = the renderer's)
    lr_decay_minutes: float = 0.0  # cosine-decay the lr to a tenth over the budget's last N minutes
    adv_weight: float = 0.0  # weight of a patch discriminator's loss (0 = pure reconstruction)
    adv_lr: float = 2e-4
    adv_r1: float = 0.2  # R1 weight on real patches, applied every 8 steps
    extra_notes: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------- helpers


def build_generator(cfg: DistillConfig) -> Generator:
    return Generator(
        z_dim=cfg.z_dim, w_dim=cfg.w_dim, c_dim=0, img_resolution=cfg.resolution, img_channels=3,
        mapping_kwargs={"num_layers": cfg.mapping_layers},
        synthesis_kwargs={"channel_base": cfg.channel_base, "channel_max": cfg.channel_max,
                          "num_fp16_res": 0, "conv_clamp": None},
    )


def grow_checkpoint(src_run: str | Path, dst_run: str | Path, resolution: int) -> DistillConfig:
    """Start ``dst_run`` at a higher ``resolution`` from the finished or running ``src_run``
    (progressive growing). Blocks up to the old resolution, the encoder and the mapping
    network carry over; the new blocks' toRGB starts at zero, so the grown generator first
    renders exactly the upsampled old image and the new blocks only learn the detail.
    The optimiser and the replay pool start afresh (at the new size)."""
    ck = load_checkpoint(src_run)
    old = DistillConfig(**ck["config"])
    if resolution <= old.resolution:
        raise ValueError(f"{src_run}: already {old.resolution} px; grow to a larger size")
    cfg = DistillConfig(**{**ck["config"], "resolution": resolution, "run_dir": str(dst_run),
                           "extra_notes": [*old.extra_notes,
                                           f"grown from {old.resolution} px"]})
    G = build_generator(cfg)
    state = G.state_dict()
    carried = {k: v for k, v in ck["G"].items() if k in state and state[k].shape == v.shape}
    state.update(carried)
    G.load_state_dict(state)
    with torch.no_grad():
        for res in G.synthesis.block_resolutions:
            if res > old.resolution:
                rgb = getattr(G.synthesis, f"b{res}").torgb
                rgb.weight.zero_()
                rgb.bias.zero_()
    vec_dim = sum(w for _, w in param_layout())
    E = ParamEncoder(vec_dim, cfg.w_dim, cfg.encoder_hidden)
    E.load_state_dict(ck["E"])
    C = WCritic(cfg.w_dim)
    C.load_state_dict(ck["C"])
    st = dict(ck["state"])
    st.update(stage=1, seconds=0.0, map_seconds=0.0, map_step=0,
              grown_from={"run": str(src_run), "resolution": old.resolution,
                          "images_seen": int(st["images_seen"]), "minutes": st["seconds"] / 60})
    Path(dst_run).mkdir(parents=True, exist_ok=True)
    save_checkpoint(dst_run, {"images_seen": st["images_seen"], "G": G.state_dict(),
                              "E": E.state_dict(), "C": C.state_dict(), "state": st,
                              "config": asdict(cfg)})
    return cfg


def lr_factor(cfg: DistillConfig, seconds: float) -> float:
    """1 until the last ``lr_decay_minutes`` of the reconstruction budget, then a cosine
    down to 0.1: the final low-lr stretch removes the noise floor of the L1 fit."""
    window = cfg.lr_decay_minutes * 60
    left = cfg.minutes * 60 - seconds
    if window <= 0 or left >= window:
        return 1.0
    t = min(1.0, max(0.0, 1.0 - left / window))
    return 0.1 + 0.9 * 0.5 * (1.0 + math.cos(math.pi * t))


def _synth(G: Generator, w: torch.Tensor, bf16: bool, noise_mode: str = "random") -> torch.Tensor:
    ws = w.unsqueeze(1).repeat(1, G.num_ws, 1)
    if bf16:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            img = G.synthesis(ws, noise_mode=noise_mode, channels_last=True)
    else:
        img = G.synthesis(ws, noise_mode=noise_mode)
    return img.float()


def to_grid(imgs: torch.Tensor | np.ndarray, cols: int) -> np.ndarray:
    """``N x C x H x W`` floats in [-1, 1] (or ``N x H x W x 3`` uint8) -> one uint8 grid."""
    if isinstance(imgs, torch.Tensor):
        arr = ((imgs.detach().float().clamp(-1, 1) + 1) * 127.5).round().byte()
        arr = arr.permute(0, 2, 3, 1).cpu().numpy()
    else:
        arr = np.asarray(imgs, np.uint8)
    n, h, w, c = arr.shape
    rows = math.ceil(n / cols)
    grid = np.zeros((rows * h, cols * w, c), np.uint8)
    for i in range(n):
        grid[(i // cols) * h : (i // cols + 1) * h, (i % cols) * w : (i % cols + 1) * w] = arr[i]
    return grid


def save_png(path: Path, grid: np.ndarray) -> None:
    from PIL import Image

    Image.fromarray(grid).save(path)


def _new_run_dir(cfg: DistillConfig) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return Path(cfg.runs_root) / f"distill-{stamp}"


# --------------------------------------------------------------------------- the job


@dataclass
class DistillRun:
    """Everything a distillation run trains and keeps: the networks, their optimisers, the
    replay pool and the progress state ``st`` (saved in each checkpoint)."""

    cfg: DistillConfig
    run_dir: Path
    G: Generator
    E: ParamEncoder
    C: WCritic
    PD: PatchCritic
    opt: torch.optim.Optimizer
    opt_map: torch.optim.Optimizer
    opt_c: torch.optim.Optimizer
    opt_pd: torch.optim.Optimizer
    pool: ReplayPool
    st: dict[str, Any]
    gen: torch.Generator = field(default_factory=torch.Generator)

    def checkpoint(self) -> None:
        save_checkpoint(self.run_dir, {
            "images_seen": self.st["images_seen"], "G": self.G.state_dict(),
            "E": self.E.state_dict(), "C": self.C.state_dict(), "opt": self.opt.state_dict(),
            "opt_map": self.opt_map.state_dict(), "PD": self.PD.state_dict(),
            "opt_pd": self.opt_pd.state_dict(), "opt_c": self.opt_c.state_dict(),
            "pool": self.pool.state_dict(), "state": dict(self.st), "config": asdict(self.cfg),
        })


def build_run(cfg: DistillConfig) -> DistillRun:
    """A fresh run: networks, optimisers and an empty replay pool (not yet on disk)."""
    run_dir = Path(cfg.run_dir) if cfg.run_dir else _new_run_dir(cfg)
    torch.manual_seed(cfg.seed)
    G = build_generator(cfg)
    vec_dim = sum(w for _, w in param_layout())
    E = ParamEncoder(vec_dim, cfg.w_dim, cfg.encoder_hidden)
    C = WCritic(cfg.w_dim)
    opt = torch.optim.Adam(list(G.synthesis.parameters()) + list(E.parameters()), lr=cfg.lr,
                           betas=(cfg.beta1, 0.99))
    map_lr = cfg.lr_map / G.mapping.fc0.weight_gain / math.sqrt(cfg.z_dim)  # undo lr multiplier
    opt_map = torch.optim.Adam(G.mapping.parameters(), lr=map_lr, betas=(0.5, 0.99))
    opt_c = torch.optim.Adam(C.parameters(), lr=2e-4, betas=(0.5, 0.99))
    PD = PatchCritic()
    opt_pd = torch.optim.Adam(PD.parameters(), lr=cfg.adv_lr, betas=(0.5, 0.99))
    pool = ReplayPool(cfg.pool_size, vec_dim, cfg.resolution)
    st: dict[str, Any] = {"stage": 1, "step": 0, "map_step": 0, "images_seen": 0,
                          "rendered": 0, "seconds": 0.0, "map_seconds": 0.0, "losses": []}
    return DistillRun(cfg, run_dir, G, E, C, PD, opt, opt_map, opt_c, opt_pd, pool, st)


def restore_run(run: DistillRun) -> bool:
    """Load the run folder's checkpoint into ``run`` if there is one; returns whether it did.
    A finished run given more reconstruction minutes reopens stage 1."""
    if not has_checkpoint(run.run_dir):
        return False
    cfg, st = run.cfg, run.st
    ck = load_checkpoint(run.run_dir)
    run.G.load_state_dict(ck["G"])
    run.E.load_state_dict(ck["E"])
    run.C.load_state_dict(ck["C"])
    if "opt" in ck:  # a grown run starts its optimisers and replay pool afresh
        run.opt.load_state_dict(ck["opt"])
        run.opt_map.load_state_dict(ck["opt_map"])
        run.opt_c.load_state_dict(ck["opt_c"])
        run.pool.load_state_dict(ck["pool"])
    if "PD" in ck:  # runs from before the patch critic have none
        run.PD.load_state_dict(ck["PD"])
        run.opt_pd.load_state_dict(ck["opt_pd"])
    st.update(ck["state"])
    for group in run.opt.param_groups:  # settings may change between sessions of a run
        group["lr"], group["betas"] = cfg.lr, (cfg.beta1, 0.99)
    if st["stage"] > 1 and st["seconds"] < cfg.minutes * 60 - 1:
        # a finished run given more reconstruction time: train on, then refit the
        # mapping network (the encoder's w distribution moves with training)
        st["stage"], st["map_seconds"] = 1, 0.0
    return True


def _stage1_due(run: DistillRun) -> bool:
    cfg, st = run.cfg, run.st
    return (st["stage"] == 1 and (cfg.max_steps is None or st["step"] < cfg.max_steps)
            and st["seconds"] < cfg.minutes * 60)


def _recon_step(run: DistillRun) -> tuple[float, float]:
    """One reconstruction step (and one patch-critic step when ``adv_weight`` > 0) on a
    batch from the replay pool. Returns (reconstruction loss, adversarial loss or NaN)."""
    cfg, st, G, E, PD = run.cfg, run.st, run.G, run.E, run.PD
    vec, real = run.pool.sample(cfg.batch, run.gen)
    fake = _synth(G, E(vec), cfg.bf16)
    rec = recon_loss(fake, real)
    loss = rec
    adv_v = math.nan
    if cfg.adv_weight > 0:
        # patch critic step on real renders vs the current reconstructions
        r = real.detach().requires_grad_(st["step"] % 8 == 0)
        d_real, d_fake = PD(r), PD(fake.detach())
        d_loss = F.softplus(-d_real).mean() + F.softplus(d_fake).mean()
        if r.requires_grad:  # lazy R1 keeps the critic smooth on real images
            (g,) = torch.autograd.grad(d_real.sum(), r, create_graph=True)
            d_loss = d_loss + cfg.adv_r1 * 8 * g.square().sum((1, 2, 3)).mean()
        run.opt_pd.zero_grad(set_to_none=True)
        d_loss.backward()
        run.opt_pd.step()
        PD.requires_grad_(False)
        adv = F.softplus(-PD(fake)).mean()
        PD.requires_grad_(True)
        adv_v = float(adv.detach())
        loss = loss + cfg.adv_weight * adv
    run.opt.zero_grad(set_to_none=True)
    loss.backward()
    for group in run.opt.param_groups:
        group["lr"] = cfg.lr * lr_factor(cfg, st["seconds"])
    run.opt.step()
    return float(rec.detach()), adv_v


def reconstruction_phase(ctx: JobContext, run: DistillRun, preview: tuple[torch.Tensor, np.ndarray]
                         ) -> PyGenerator[Progress, None, None]:
    """Stage 1: params -> encoder -> synthesis, trained by L1 against renderer faces that a
    background thread renders into the replay pool. Checkpoints on cancel and at the end."""
    cfg, st = run.cfg, run.st
    prev_vec, prev_real = preview
    first = max(min(cfg.pool_min, cfg.pool_size) - run.pool.count, cfg.batch)
    feeder = FaceFeeder(cfg.resolution, cfg.render_batch, cfg.seed * 1000 + st["step"], first,
                        cfg.pose_scale)
    run.G.train()
    run.E.train()
    last_ck = last_prev = time.monotonic()
    t_seg = time.monotonic()
    ema_loss = None

    def take(block: bool) -> bool:
        item = feeder.get(block=block)
        if item is None:
            return False
        run.pool.add(*item)
        st["rendered"] += len(item[0])
        return True

    try:
        start_seen = st["images_seen"]
        while feeder.got < first:
            ctx.check()
            take(block=True)
        while True:
            ctx.check()
            while take(block=False):
                pass
            feeder.budget = first + int(cfg.fresh_ratio * (st["images_seen"] - start_seen))
            lv, adv_v = _recon_step(run)
            st["step"] += 1
            st["images_seen"] += cfg.batch
            now = time.monotonic()
            st["seconds"] += now - t_seg
            t_seg = now
            ema_loss = lv if ema_loss is None else 0.98 * ema_loss + 0.02 * lv
            if st["step"] % 10 == 0 or st["step"] <= 3:
                st["losses"].append([st["step"], st["images_seen"], lv])
            done = (cfg.max_steps is not None and st["step"] >= cfg.max_steps) \
                or st["seconds"] >= cfg.minutes * 60
            grid = None
            if now - last_prev >= cfg.preview_minutes * 60 or done:
                last_prev = now
                with torch.no_grad():
                    rec = _synth(run.G, run.E(prev_vec), cfg.bf16, "const")
                grid = np.concatenate([to_grid(prev_real, 8), to_grid(rec, 8)], axis=0)
                save_png(run.run_dir / f"recon-{st['step']:06d}.png", grid)
            if now - last_ck >= cfg.checkpoint_minutes * 60 or done:
                run.checkpoint()
                last_ck = time.monotonic()
                t_seg = last_ck
            frac = min(1.0, st["seconds"] / max(cfg.minutes * 60, 1e-9))
            ips = st["images_seen"] / max(st["seconds"], 1e-9)
            yield Progress(
                0.9 * frac,
                f"reconstruction step {st['step']}: loss {ema_loss:.4f}, {ips:.1f} img/s, "
                f"{st['rendered']} rendered" + (f", adv {adv_v:.3f}" if adv_v == adv_v else ""),
                grid, {"recon_loss": lv, "img_per_s": ips, "adv": adv_v}, st["step"],
            )
            if done:
                break
    except (JobCancelled, KeyboardInterrupt):
        run.checkpoint()
        raise
    finally:
        feeder.close()
    st["stage"] = 2
    run.checkpoint()


def _w_bank(run: DistillRun) -> torch.Tensor:
    """The encoder's w for ``map_bank`` random parameter sets (what the mapping must match)."""
    cfg = run.cfg
    bank_rng = np.random.default_rng(cfg.seed + 99)
    with torch.no_grad():
        return run.E(torch.from_numpy(encode_params(
            sample_training_params(cfg.map_bank, bank_rng, cfg.pose_scale))))


def mapping_phase(ctx: JobContext, run: DistillRun, bank: torch.Tensor
                  ) -> PyGenerator[Progress, None, None]:
    """Stage 2: fit the mapping network (z -> w) to the encoder's distribution of w."""
    cfg, st, G, C, gen = run.cfg, run.st, run.G, run.C, run.gen
    G.mapping.train()
    last_ck = time.monotonic()
    t_seg = time.monotonic()
    mb = min(512, cfg.map_bank)
    try:
        while st["stage"] == 2:
            ctx.check()
            real = bank[torch.randint(0, len(bank), (mb,), generator=gen)]
            z = torch.randn(mb, cfg.z_dim, generator=gen)
            fake = G.mapping(z, None, skip_w_avg_update=True)[:, 0]
            # critic: non-saturating loss + R1 on real w
            real_r = real.detach().requires_grad_(True)
            d_real = C(real_r)
            d_fake = C(fake.detach())
            (r1,) = torch.autograd.grad(d_real.sum(), real_r, create_graph=True)
            c_loss = F.softplus(-d_real).mean() + F.softplus(d_fake).mean() + 0.5 * r1.square().sum(1).mean()
            run.opt_c.zero_grad(set_to_none=True)
            c_loss.backward()
            run.opt_c.step()
            swd = sliced_wasserstein(fake, real, 256, gen)
            moments = (fake.mean(0) - real.mean(0)).square().mean() + (fake.std(0) - real.std(0)).square().mean()
            adv = F.softplus(-C(fake)).mean()
            m_loss = swd + moments + 0.05 * adv
            run.opt_map.zero_grad(set_to_none=True)
            m_loss.backward()
            run.opt_map.step()
            st["map_step"] += 1
            now = time.monotonic()
            st["map_seconds"] += now - t_seg
            t_seg = now
            done = (cfg.map_steps is not None and st["map_step"] >= cfg.map_steps) \
                or (cfg.map_steps is None and st["map_seconds"] >= cfg.map_minutes * 60)
            if now - last_ck >= cfg.checkpoint_minutes * 60 or done:
                run.checkpoint()
                last_ck = time.monotonic()
                t_seg = last_ck
            if st["map_step"] % 20 == 0 or done:
                yield Progress(
                    0.9 + 0.09 * min(1.0, st["map_seconds"] / max(cfg.map_minutes * 60, 1e-9)),
                    f"mapping step {st['map_step']}: swd {float(swd.detach()):.4f} critic {float(c_loss.detach()):.3f}",
                    None, {"swd": float(swd.detach()), "critic": float(c_loss.detach())}, st["map_step"],
                )
            if done:
                st["stage"] = 3
    except (JobCancelled, KeyboardInterrupt):
        run.checkpoint()
        raise


def export_model(run: DistillRun, bank: torch.Tensor) -> dict[str, Any]:
    """Set ``w_avg`` to the mean mapped w, checkpoint, and save the face model with its
    training record. Returns ``{"model", "run_dir", "training"}``."""
    cfg, st, G = run.cfg, run.st, run.G
    G.eval()
    with torch.no_grad():
        zs = torch.randn(8192, cfg.z_dim, generator=torch.Generator().manual_seed(1))
        w_all = G.mapping(zs, None, skip_w_avg_update=True)[:, 0]
        G.mapping.w_avg.copy_(w_all.mean(0))
        k = min(4096, len(bank))
        swd_final = float(sliced_wasserstein(w_all[:k], bank[:k], 512, run.gen))
    st["final_swd"] = swd_final
    run.checkpoint()
    out = Path(cfg.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    from studio.face.model_file import save_face_model

    losses = st["losses"]
    tail = [x[2] for x in losses[-50:]] or [float("nan")]
    training = {
        "method": "distillation of the procedural renderer: params->w encoder + synthesis "
                  "trained by L1/gradient reconstruction"
                  + (" with a patch critic" if cfg.adv_weight > 0 else "")
                  + ", then the mapping network fitted to the encoder's w distribution "
                  "(sliced Wasserstein + MLP critic on w)",
        "images_seen": int(st["images_seen"]),
        "unique_images_rendered": int(st["rendered"]),
        "minutes": round((st["seconds"] + st["map_seconds"]) / 60
                         + st.get("grown_from", {}).get("minutes", 0.0), 1),
        "resolution": cfg.resolution,
        "steps": int(st["step"]),
        "final_recon_loss": round(float(np.mean(tail)), 4),
        "mapping_steps": int(st["map_step"]),
        "final_mapping_swd": round(swd_final, 5),
        "notes": "; ".join([("L1 plus a small patch-critic loss" if cfg.adv_weight > 0 else
                             "no adversarial training")
                            + "; images are smoother than the renderer",
                            *cfg.extra_notes]),
        "untrained": False,
        "pose_scale": cfg.pose_scale,
        "adv_weight": cfg.adv_weight,
    }
    if "grown_from" in st:
        training["grown_from_resolution"] = st["grown_from"]["resolution"]
    save_face_model(out, G, D=None, name=MODEL_NAME, source=MODEL_SOURCE,
                    license="GPL-3.0-or-later", training=training)
    return {"model": str(out), "run_dir": str(run.run_dir), "training": training}


def distill_job(ctx: JobContext, cfg: DistillConfig) -> PyGenerator[Progress, None, dict[str, Any]]:
    """Train (or resume) a distillation run; returns ``{"model": path, "run_dir": ...}``."""
    run = build_run(cfg)
    run.run_dir.mkdir(parents=True, exist_ok=True)
    st = run.st
    if restore_run(run):
        yield Progress(None, f"resumed {run.run_dir} at step {st['step']}, {st['images_seen']} images")
    run.gen = torch.Generator().manual_seed(cfg.seed + 7919 * st["step"] + st["map_step"])

    # fixed preview faces
    from studio.synthetic.renderer import render_faces

    prev_params = sample_training_params(8, np.random.default_rng(12345), cfg.pose_scale)
    preview = (torch.from_numpy(encode_params(prev_params)), render_faces(prev_params, cfg.resolution))
    if _stage1_due(run):
        yield from reconstruction_phase(ctx, run, preview)

    run.G.eval()
    run.E.eval()
    run.E.requires_grad_(False)
    run.G.synthesis.requires_grad_(False)
    bank = _w_bank(run)
    yield from mapping_phase(ctx, run, bank)

    result = export_model(run, bank)
    yield Progress(1.0, f"saved {result['model']}", None,
                   {"final_swd": st["final_swd"]}, st["map_step"])
    return result


def write_samples(model_path: str | Path, png: str | Path, seeds: range = range(16),
                  psi: float = 0.7, cols: int = 4) -> dict[str, float]:
    """Render ``seeds`` at truncation ``psi`` with the face engine into a grid PNG. Returns
    a diversity check: mean pairwise L1 between the samples relative to that between
    renderer faces (about 1 means as varied as the renderer; near 0 means one face)."""
    from studio.face.engine import FaceEngine
    from studio.face.model_file import load_face_model
    from studio.synthetic.params import sample_params
    from studio.synthetic.renderer import render_faces

    eng = FaceEngine(load_face_model(model_path))
    frames = eng.render_batch([eng.ws_for(int(s), psi) for s in seeds])
    save_png(Path(png), to_grid(frames, cols))
    real = render_faces(sample_params(len(frames), np.random.default_rng(4321)), eng.resolution)

    def spread(a: np.ndarray) -> float:
        x = a.reshape(len(a), -1).astype(np.float32)
        return float(np.abs(x[:, None] - x[None]).mean())

    free = eng.render_batch([eng.ws_for(int(s), 1.0) for s in seeds])
    return {"diversity_psi": spread(frames) / spread(real), "diversity_psi1": spread(free) / spread(real)}


# --------------------------------------------------------------------------- settings

# Settings that a resumed run may change between sessions (the rest are the run's own).
RESUME_OVERRIDES = ("batch", "lr", "beta1", "fresh_ratio", "pose_scale", "adv_weight",
                    "lr_decay_minutes")


def distill_config(*, out: str, minutes: float, map_minutes: float, resume: str | None = None,
                   grow: str | None = None, run_dir: str | None = None,
                   resolution: int | None = None, **settings: Any) -> DistillConfig:
    """The settings of a new, resumed or grown run (``studio train distill``).

    ``grow`` starts ``run_dir`` at ``resolution`` from that smaller run's checkpoint and
    resumes it; ``resume`` continues a run with its own settings, except the budgets, the
    output and the :data:`RESUME_OVERRIDES` given (not None). A new run takes every setting
    of :class:`DistillConfig` from ``settings`` (None: the default)."""
    from studio.core.errors import StudioError

    unknown = sorted(set(settings) - {f for f in DistillConfig.__dataclass_fields__})
    if unknown:
        raise TypeError(f"unknown distillation settings: {', '.join(unknown)}")
    if grow is not None:
        if not run_dir or resolution is None:
            raise StudioError("--grow needs --run-dir and --resolution for the new run")
        if resume is not None:
            raise StudioError("--grow starts a new run from another; drop --resume")
        try:
            grow_checkpoint(grow, run_dir, resolution)
        except ValueError as exc:
            raise StudioError(str(exc)) from None
        resume = run_dir
    given = {k: v for k, v in settings.items() if v is not None}
    if resume is not None:
        fixed = sorted(k for k in given if k not in RESUME_OVERRIDES)
        if grow is None:
            fixed += [k for k, v in (("resolution", resolution), ("run_dir", run_dir)) if v]
        if fixed:
            raise StudioError("--resume continues a run with its own settings; drop "
                              + ", ".join("--" + k.replace("_", "-") for k in fixed))
        ck = load_checkpoint(resume)
        cfg = DistillConfig(**{**ck["config"], "run_dir": str(resume)})
        cfg.minutes, cfg.map_minutes, cfg.out = minutes, map_minutes, out
        for key, value in given.items():
            setattr(cfg, key, value)
        return cfg
    return DistillConfig(out=out, run_dir=run_dir, minutes=minutes, map_minutes=map_minutes,
                         **({"resolution": resolution} if resolution is not None else {}),
                         **given)


if __name__ == "__main__":  # pragma: no cover - the old entry point
    sys.exit("python -m studio.train.distill is now `studio train distill` (same options; "
             "see `studio train distill --help`)")
