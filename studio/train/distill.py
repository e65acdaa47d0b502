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

import argparse
import math
import queue
import signal
import sys
import threading
import time
from collections.abc import Generator as PyGenerator
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from studio.core.jobs import JobCancelled, JobContext, Progress
from studio.face.generator import Generator
from studio.face.layers import FullyConnectedLayer
from studio.train.checkpoint import has_checkpoint, load_checkpoint, save_checkpoint

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


# --------------------------------------------------------------------------- encoding


def param_layout() -> list[tuple[str, int]]:
    """(name, width) of each parameter in the encoded vector."""
    from studio.synthetic.params import PARAM_SPECS

    return [(s.name, len(s.choices) if s.categorical else 1) for s in PARAM_SPECS]


POSE_PARAMS = ("head_yaw", "head_pitch", "head_roll", "gaze_x", "gaze_y")


def sample_training_params(n: int, rng: np.random.Generator, pose_scale: float = 1.0) -> dict[str, np.ndarray]:
    """Renderer parameters for distillation, with one fixed texture seed. ``pose_scale`` < 1
    narrows head pose and gaze: with the eyes and mouth in nearly the same place in every
    image, regression learns them sharp far sooner (a budget choice for a CPU-trained
    default model)."""
    from studio.synthetic.params import sample_params

    params = sample_params(n, rng)
    # one strand/pore/freckle noise pattern for all: a per-face random pattern cannot be
    # predicted from the params, so L1 would only learn its blurred average
    params["texture_seed"] = np.full(n, 1234.0)
    if pose_scale != 1.0:
        for name in POSE_PARAMS:
            params[name] = params[name] * pose_scale
    return params


def encode_params(params: Mapping[str, np.ndarray]) -> np.ndarray:
    """``(N, D)`` float32: continuous parameters in [-1, 1], categoricals one-hot."""
    from studio.synthetic.params import SPECS

    cols = []
    for name, width in param_layout():
        spec = SPECS[name]
        v = np.asarray(params[name]).reshape(-1)
        if spec.categorical:
            cols.append(np.eye(width, dtype=np.float32)[np.clip(v.astype(np.int64), 0, width - 1)])
        else:
            span = max(spec.high - spec.low, 1e-9)
            cols.append((2.0 * (v.astype(np.float64) - spec.low) / span - 1.0)[:, None])
    return np.concatenate(cols, axis=1).astype(np.float32)


class ParamEncoder(nn.Module):
    """Param vector -> w. The last layer ends with the same leaky ReLU as the mapping network,
    so the mapping network can reach every w it produces."""

    def __init__(self, in_dim: int, w_dim: int, hidden: int = 512, layers: int = 3) -> None:
        super().__init__()
        dims = [in_dim] + [hidden] * (layers - 1) + [w_dim]
        self.net = nn.Sequential(
            *[FullyConnectedLayer(dims[i], dims[i + 1], activation="lrelu") for i in range(layers)]
        )

    def forward(self, v: torch.Tensor) -> torch.Tensor:
        return self.net(v.float())


class WCritic(nn.Module):
    def __init__(self, w_dim: int, hidden: int = 512) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(w_dim, hidden), nn.LeakyReLU(0.2), nn.Linear(hidden, hidden),
            nn.LeakyReLU(0.2), nn.Linear(hidden, 1),
        )

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        return self.net(w).squeeze(1)


class PatchCritic(nn.Module):
    """A small PatchGAN-style discriminator: a realism logit per ~22 px patch. Added to the
    L1 loss with a small weight it sharpens what L1 alone leaves blurred (the averaging of
    details the params barely determine), while L1 keeps the structure."""

    def __init__(self, width: int = 32) -> None:
        super().__init__()
        w = width
        self.net = nn.Sequential(
            nn.Conv2d(3, w, 4, 2, 1), nn.LeakyReLU(0.2),
            nn.Conv2d(w, 2 * w, 4, 2, 1), nn.GroupNorm(8, 2 * w), nn.LeakyReLU(0.2),
            nn.Conv2d(2 * w, 4 * w, 3, 1, 1), nn.GroupNorm(8, 4 * w), nn.LeakyReLU(0.2),
            nn.Conv2d(4 * w, 1, 3, 1, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.float())


# --------------------------------------------------------------------------- data


class FaceFeeder:
    """Renders random faces in a background thread into a bounded queue."""

    def __init__(self, size: int, batch: int, seed: int, budget: int = 1 << 62,
                 pose_scale: float = 1.0) -> None:
        self.size, self.batch, self.pose_scale = size, batch, pose_scale
        self.rng = np.random.default_rng(seed)
        self.q: queue.Queue[tuple[np.ndarray, np.ndarray]] = queue.Queue(maxsize=4)
        self._stop = threading.Event()
        self.rendered = 0
        self.got = 0
        self.budget = budget  # faces to render in all; the trainer raises it as it goes
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="distill-render", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        from studio.synthetic.renderer import render_faces

        try:
            while not self._stop.is_set():
                if self.rendered >= self.budget:  # throttled: the trainer shares the CPU
                    time.sleep(0.05)
                    continue
                params = sample_training_params(self.batch, self.rng, self.pose_scale)
                imgs = render_faces(params, self.size)
                item = (encode_params(params), imgs)
                self.rendered += len(imgs)
                while not self._stop.is_set():
                    try:
                        self.q.put(item, timeout=0.2)
                        break
                    except queue.Full:
                        continue
        except BaseException as exc:  # noqa: BLE001 - reported by the training loop
            self.error = exc

    def get(self, block: bool) -> tuple[np.ndarray, np.ndarray] | None:
        if self.error is not None:
            raise RuntimeError(f"face renderer failed: {self.error}") from self.error
        try:
            item = self.q.get(block=block, timeout=30 if block else None)
        except queue.Empty:
            return None
        self.got += len(item[0])
        return item

    def close(self) -> None:
        self._stop.set()
        self.thread.join(timeout=60)


class ReplayPool:
    """Ring buffer of rendered faces (uint8 NHWC) and their encoded params."""

    def __init__(self, capacity: int, vec_dim: int, size: int) -> None:
        self.vecs = torch.zeros(capacity, vec_dim)
        self.imgs = torch.zeros(capacity, size, size, 3, dtype=torch.uint8)
        self.count = 0
        self.head = 0

    def add(self, vecs: np.ndarray, imgs: np.ndarray) -> None:
        for v, im in zip(torch.from_numpy(vecs), torch.from_numpy(imgs), strict=True):
            self.vecs[self.head] = v
            self.imgs[self.head] = im
            self.head = (self.head + 1) % len(self.vecs)
            self.count = min(self.count + 1, len(self.vecs))

    def sample(self, n: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        idx = torch.randint(0, self.count, (n,), generator=gen)
        img = self.imgs[idx].permute(0, 3, 1, 2).float() / 127.5 - 1.0
        return self.vecs[idx], img

    def state_dict(self) -> dict[str, Any]:
        return {"vecs": self.vecs[: self.count].clone(), "imgs": self.imgs[: self.count].clone(),
                "head": self.head}

    def load_state_dict(self, s: Mapping[str, Any]) -> None:
        n = min(len(s["vecs"]), len(self.vecs))
        self.vecs[:n] = s["vecs"][:n]
        self.imgs[:n] = s["imgs"][:n]
        self.count = n
        self.head = int(s["head"]) % len(self.vecs)


# --------------------------------------------------------------------------- losses


def _grads(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return x[..., :, 1:] - x[..., :, :-1], x[..., 1:, :] - x[..., :-1, :]


def recon_loss(fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """L1 + L1 of image gradients, at full and half resolution."""
    total = fake.new_zeros(())
    for scale in (1, 2):
        f = F.avg_pool2d(fake, scale) if scale > 1 else fake
        r = F.avg_pool2d(real, scale) if scale > 1 else real
        fx, fy = _grads(f)
        rx, ry = _grads(r)
        total = total + (f - r).abs().mean() + (fx - rx).abs().mean() + (fy - ry).abs().mean()
    return total


def sliced_wasserstein(a: torch.Tensor, b: torch.Tensor, n_proj: int, gen: torch.Generator) -> torch.Tensor:
    proj = torch.randn(a.shape[1], n_proj, generator=gen)
    proj = proj / proj.norm(dim=0, keepdim=True)
    pa = torch.sort(a @ proj, dim=0).values
    pb = torch.sort(b @ proj, dim=0).values
    return (pa - pb).square().mean()


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


def distill_job(ctx: JobContext, cfg: DistillConfig) -> PyGenerator[Progress, None, dict[str, Any]]:
    """Train (or resume) a distillation run; returns ``{"model": path, "run_dir": ...}``."""
    run_dir = Path(cfg.run_dir) if cfg.run_dir else _new_run_dir(cfg)
    run_dir.mkdir(parents=True, exist_ok=True)
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
    if has_checkpoint(run_dir):
        ck = load_checkpoint(run_dir)
        G.load_state_dict(ck["G"])
        E.load_state_dict(ck["E"])
        C.load_state_dict(ck["C"])
        if "opt" in ck:  # a grown run starts its optimisers and replay pool afresh
            opt.load_state_dict(ck["opt"])
            opt_map.load_state_dict(ck["opt_map"])
            opt_c.load_state_dict(ck["opt_c"])
            pool.load_state_dict(ck["pool"])
        if "PD" in ck:  # runs from before the patch critic have none
            PD.load_state_dict(ck["PD"])
            opt_pd.load_state_dict(ck["opt_pd"])
        st.update(ck["state"])
        for group in opt.param_groups:  # settings may change between sessions of a run
            group["lr"], group["betas"] = cfg.lr, (cfg.beta1, 0.99)
        if st["stage"] > 1 and st["seconds"] < cfg.minutes * 60 - 1:
            # a finished run given more reconstruction time: train on, then refit the
            # mapping network (the encoder's w distribution moves with training)
            st["stage"], st["map_seconds"] = 1, 0.0
        yield Progress(None, f"resumed {run_dir} at step {st['step']}, {st['images_seen']} images")
    gen = torch.Generator().manual_seed(cfg.seed + 7919 * st["step"] + st["map_step"])

    def checkpoint() -> None:
        save_checkpoint(run_dir, {
            "images_seen": st["images_seen"], "G": G.state_dict(), "E": E.state_dict(),
            "C": C.state_dict(), "opt": opt.state_dict(), "opt_map": opt_map.state_dict(),
            "PD": PD.state_dict(), "opt_pd": opt_pd.state_dict(),
            "opt_c": opt_c.state_dict(), "pool": pool.state_dict(), "state": dict(st),
            "config": asdict(cfg),
        })

    # fixed preview faces
    from studio.synthetic.renderer import render_faces

    prev_params = sample_training_params(8, np.random.default_rng(12345), cfg.pose_scale)
    prev_vec = torch.from_numpy(encode_params(prev_params))
    prev_real = render_faces(prev_params, cfg.resolution)

    # ---------------------------------------------------------------- stage 1
    if st["stage"] == 1 and (cfg.max_steps is None or st["step"] < cfg.max_steps) \
            and st["seconds"] < cfg.minutes * 60:
        first = max(min(cfg.pool_min, cfg.pool_size) - pool.count, cfg.batch)
        feeder = FaceFeeder(cfg.resolution, cfg.render_batch, cfg.seed * 1000 + st["step"], first,
                            cfg.pose_scale)
        G.train()
        E.train()
        last_ck = last_prev = time.monotonic()
        t_seg = time.monotonic()
        ema_loss = None
        try:
            start_seen = st["images_seen"]
            while feeder.got < first:
                ctx.check()
                item = feeder.get(block=True)
                if item is not None:
                    pool.add(*item)
                    st["rendered"] += len(item[0])
            while True:
                ctx.check()
                while (item := feeder.get(block=False)) is not None:
                    pool.add(*item)
                    st["rendered"] += len(item[0])
                feeder.budget = first + int(
                    cfg.fresh_ratio * (st["images_seen"] - start_seen))
                vec, real = pool.sample(cfg.batch, gen)
                w = E(vec)
                fake = _synth(G, w, cfg.bf16)
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
                    opt_pd.zero_grad(set_to_none=True)
                    d_loss.backward()
                    opt_pd.step()
                    PD.requires_grad_(False)
                    adv = F.softplus(-PD(fake)).mean()
                    PD.requires_grad_(True)
                    adv_v = float(adv.detach())
                    loss = loss + cfg.adv_weight * adv
                opt.zero_grad(set_to_none=True)
                loss.backward()
                for group in opt.param_groups:
                    group["lr"] = cfg.lr * lr_factor(cfg, st["seconds"])
                opt.step()
                st["step"] += 1
                st["images_seen"] += cfg.batch
                now = time.monotonic()
                st["seconds"] += now - t_seg
                t_seg = now
                lv = float(rec.detach())
                ema_loss = lv if ema_loss is None else 0.98 * ema_loss + 0.02 * lv
                if st["step"] % 10 == 0 or st["step"] <= 3:
                    st["losses"].append([st["step"], st["images_seen"], lv])
                done = (cfg.max_steps is not None and st["step"] >= cfg.max_steps) \
                    or st["seconds"] >= cfg.minutes * 60
                preview = None
                if now - last_prev >= cfg.preview_minutes * 60 or done:
                    last_prev = now
                    with torch.no_grad():
                        rec = _synth(G, E(prev_vec), cfg.bf16, "const")
                    grid = np.concatenate([to_grid(prev_real, 8), to_grid(rec, 8)], axis=0)
                    save_png(run_dir / f"recon-{st['step']:06d}.png", grid)
                    preview = grid
                if now - last_ck >= cfg.checkpoint_minutes * 60 or done:
                    checkpoint()
                    last_ck = time.monotonic()
                    t_seg = last_ck
                frac = min(1.0, st["seconds"] / max(cfg.minutes * 60, 1e-9))
                ips = st["images_seen"] / max(st["seconds"], 1e-9)
                yield Progress(
                    0.9 * frac,
                    f"reconstruction step {st['step']}: loss {ema_loss:.4f}, {ips:.1f} img/s, "
                    f"{st['rendered']} rendered" + (f", adv {adv_v:.3f}" if adv_v == adv_v else ""),
                    preview, {"recon_loss": lv, "img_per_s": ips, "adv": adv_v}, st["step"],
                )
                if done:
                    break
        except (JobCancelled, KeyboardInterrupt):
            checkpoint()
            raise
        finally:
            feeder.close()
        st["stage"] = 2
        checkpoint()

    # ---------------------------------------------------------------- stage 2
    G.eval()
    E.eval()
    E.requires_grad_(False)
    G.synthesis.requires_grad_(False)
    bank_rng = np.random.default_rng(cfg.seed + 99)
    with torch.no_grad():
        bank = E(torch.from_numpy(encode_params(
            sample_training_params(cfg.map_bank, bank_rng, cfg.pose_scale))))
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
            opt_c.zero_grad(set_to_none=True)
            c_loss.backward()
            opt_c.step()
            swd = sliced_wasserstein(fake, real, 256, gen)
            moments = (fake.mean(0) - real.mean(0)).square().mean() + (fake.std(0) - real.std(0)).square().mean()
            adv = F.softplus(-C(fake)).mean()
            m_loss = swd + moments + 0.05 * adv
            opt_map.zero_grad(set_to_none=True)
            m_loss.backward()
            opt_map.step()
            st["map_step"] += 1
            now = time.monotonic()
            st["map_seconds"] += now - t_seg
            t_seg = now
            done = (cfg.map_steps is not None and st["map_step"] >= cfg.map_steps) \
                or (cfg.map_steps is None and st["map_seconds"] >= cfg.map_minutes * 60)
            if now - last_ck >= cfg.checkpoint_minutes * 60 or done:
                checkpoint()
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
        checkpoint()
        raise

    # ---------------------------------------------------------------- export
    G.eval()
    with torch.no_grad():
        zs = torch.randn(8192, cfg.z_dim, generator=torch.Generator().manual_seed(1))
        w_all = G.mapping(zs, None, skip_w_avg_update=True)[:, 0]
        G.mapping.w_avg.copy_(w_all.mean(0))
        k = min(4096, len(bank))
        swd_final = float(sliced_wasserstein(w_all[:k], bank[:k], 512, gen))
    st["final_swd"] = swd_final
    checkpoint()
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
    yield Progress(1.0, f"saved {out}", None, {"final_swd": swd_final}, st["map_step"])
    return {"model": str(out), "run_dir": str(run_dir), "training": training}


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


# --------------------------------------------------------------------------- CLI


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m studio.train.distill", description=__doc__.split("\n")[0])
    d = DistillConfig()
    p.add_argument("--out", default=d.out)
    p.add_argument("--resolution", type=int, default=d.resolution)
    p.add_argument("--minutes", type=float, default=d.minutes, help="reconstruction minutes")
    p.add_argument("--map-minutes", type=float, default=d.map_minutes)
    p.add_argument("--resume", metavar="RUN_DIR", default=None)
    p.add_argument("--grow", metavar="RUN_DIR", default=None,
                   help="start --run-dir at --resolution from this (smaller) run's checkpoint")
    p.add_argument("--run-dir", default=None, help="folder for a new run")
    p.add_argument("--batch", type=int, default=None, help=f"default {d.batch}")
    p.add_argument("--channel-base", type=int, default=d.channel_base)
    p.add_argument("--channel-max", type=int, default=d.channel_max)
    p.add_argument("--z-dim", type=int, default=d.z_dim)
    p.add_argument("--w-dim", type=int, default=d.w_dim)
    p.add_argument("--mapping-layers", type=int, default=d.mapping_layers)
    p.add_argument("--lr", type=float, default=None, help=f"default {d.lr}")
    p.add_argument("--beta1", type=float, default=None, help=f"Adam beta1, default {d.beta1}")
    p.add_argument("--fresh-ratio", type=float, default=None,
                   help=f"new renders per trained image (the rest is replay), default {d.fresh_ratio}")
    p.add_argument("--pose-scale", type=float, default=None,
                   help="scale head pose and gaze of the training faces (default 1)")
    p.add_argument("--lr-decay-minutes", type=float, default=None,
                   help="cosine-decay the lr to 0.1x over the last N minutes (default 0)")
    p.add_argument("--adv-weight", type=float, default=None,
                   help="weight of the patch discriminator's loss (default 0: L1 only)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--fp32", action="store_true")
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    signal.signal(signal.SIGTERM, _interrupt)
    if a.grow:
        if not a.run_dir:
            p.error("--grow needs --run-dir for the new run")
        grow_checkpoint(a.grow, a.run_dir, a.resolution)
        a.resume = a.run_dir
    if a.resume:
        ck = load_checkpoint(a.resume)
        cfg = DistillConfig(**{**ck["config"], "run_dir": a.resume})
        cfg.minutes, cfg.map_minutes, cfg.out = a.minutes, a.map_minutes, a.out
        for key in ("batch", "lr", "beta1", "fresh_ratio", "pose_scale", "adv_weight",
                    "lr_decay_minutes"):
            if getattr(a, key) is not None:
                setattr(cfg, key, getattr(a, key))
    else:
        cfg = DistillConfig(
            out=a.out, run_dir=a.run_dir, resolution=a.resolution, minutes=a.minutes,
            map_minutes=a.map_minutes, batch=a.batch or d.batch, channel_base=a.channel_base,
            channel_max=a.channel_max, z_dim=a.z_dim, w_dim=a.w_dim,
            mapping_layers=a.mapping_layers, lr=a.lr or d.lr, seed=a.seed, bf16=not a.fp32,
            fresh_ratio=d.fresh_ratio if a.fresh_ratio is None else a.fresh_ratio,
            pose_scale=d.pose_scale if a.pose_scale is None else a.pose_scale,
            adv_weight=d.adv_weight if a.adv_weight is None else a.adv_weight,
            lr_decay_minutes=d.lr_decay_minutes if a.lr_decay_minutes is None
            else a.lr_decay_minutes,
        )
    ctx = JobContext()
    job = distill_job(ctx, cfg)
    last = 0.0
    try:
        while True:
            ev = next(job)
            now = time.monotonic()
            if now - last > 20 or ev.fraction in (None, 1.0) or ev.preview is not None:
                print(f"[{time.strftime('%H:%M:%S')}] {ev.message}", flush=True)
                last = now
    except StopIteration as stop:
        print(f"done: {stop.value}", flush=True)
        out = Path(cfg.out)
        png = out.with_name(out.stem + "_samples.png")
        print(f"samples {png}: {write_samples(out, png)}", flush=True)
    except KeyboardInterrupt:
        print("interrupted; checkpoint saved", flush=True)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
