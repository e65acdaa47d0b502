"""GAN inversion: find the w+ latent whose image matches a target face, then optionally tune
the generator around it (pivotal tuning) for fidelity.

Projection (after Karras et al. 2020, "Analyzing and improving the image quality of
StyleGAN", section 5, and Abdal et al. 2019, "Image2StyleGAN", for the per-layer w+): start
at ``w_avg`` or the best of a few random faces, then optimise w+ with Adam under a cosine
learning-rate schedule. The loss is a pixel term (MSE), a multi-scale structural term
(1 - SSIM over a pyramid) and a feature term: the distance between channel-normalised
activations of a feature network given by the caller (the studio uses its attribute
regressor; no download). Early steps add decaying noise to w+ so the search does not stall,
a small penalty keeps the w+ layers close to their mean (an editable latent), and when noise
maps are optimised too a regulariser keeps them free of image structure.

Pivotal tuning (after Roich et al. 2022, "Pivotal Tuning for Latent-based Editing of Real
Images"): the found latent is the pivot; the synthesis network is fine-tuned so that the
pivot renders the target, while a locality term keeps the tuned network's images of latents
around the pivot equal to the original network's, so edits (controls) keep working.
:func:`edit_consistency` measures that.

Everything here is Qt-free and photo-agnostic: the functions take a target tensor and yield
:class:`~studio.core.jobs.Progress` events (a job drives them with ``yield from``).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from studio.core.errors import StudioError
from studio.core.jobs import Progress
from studio.face.generator import Generator as StyleGenerator
from studio.face.invert_losses import ms_ssim_loss, noise_regularizer, normalize_noise_

FeatureFn = Callable[[torch.Tensor], Sequence[torch.Tensor]]

__all__ = ["FeatureFn", "InvertSettings", "Projection", "edit_consistency", "edit_directions",
           "pivotal_tune", "project", "to_uint8", "to_tensor"]


@dataclass(frozen=True)
class InvertSettings:
    steps: int = 200
    start_seeds: int = 8  # 0: start at w_avg; else the best of w_avg and this many faces
    start_truncation: float = 0.7
    lr: float = 0.08
    pixel_weight: float = 1.0
    ssim_weight: float = 0.5
    feature_weight: float = 0.5
    spread_weight: float = 0.02  # keeps w+ layers near their mean (editability)
    w_noise: float = 0.05  # start noise on w+ (times the spread of W), gone by 3/4 of steps
    optimize_noise: bool = False  # only useful when a tuned model stores the noise maps
    noise_weight: float = 1e3
    pivotal_steps: int = 0
    pivotal_lr: float = 3e-4
    locality_weight: float = 1.0
    bf16: bool = False  # bf16 autocast on the CPU (fast where the CPU has bf16 units)
    preview_every: int = 10
    seed: int = 0  # the random choices (start faces, w noise, locality samples)

    def __post_init__(self) -> None:
        if not 1 <= self.steps <= 100_000:
            raise StudioError(f"steps must be between 1 and 100000, not {self.steps}")
        if not 0 <= self.pivotal_steps <= 100_000:
            raise StudioError(f"pivotal-tuning steps must be 0 to 100000, not "
                              f"{self.pivotal_steps}")
        if not 0 <= self.start_seeds <= 256:
            raise StudioError(f"start seeds must be 0 to 256, not {self.start_seeds}")


@dataclass
class Projection:
    ws: np.ndarray  # [num_ws, w_dim] float32
    image: np.ndarray  # H x W x 3 uint8, the reconstruction
    noises: dict[str, torch.Tensor] | None = None  # optimised noise maps by buffer name
    history: dict[str, list[float]] = field(default_factory=dict)


def to_tensor(image: np.ndarray) -> torch.Tensor:
    """``H x W x 3`` uint8 -> ``[1, 3, H, W]`` float in [-1, 1]."""
    t = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None].float()
    return t / 127.5 - 1


def to_uint8(img: torch.Tensor) -> np.ndarray:
    """``[1, 3, H, W]`` in [-1, 1] -> ``H x W x 3`` uint8."""
    x = (img.detach().float()[0].permute(1, 2, 0) * 127.5 + 128).clamp(0, 255)
    return x.to(torch.uint8).cpu().numpy()


def _side_by_side(target: np.ndarray, recon: np.ndarray) -> np.ndarray:
    gap = np.full((target.shape[0], 2, 3), 255, np.uint8)
    return np.concatenate([target, gap, recon], axis=1)


class _Loss:
    """Pixel + multi-scale SSIM + feature distance against one fixed target."""

    def __init__(self, target: torch.Tensor, s: InvertSettings,
                 features: FeatureFn | None) -> None:
        self.target = target
        self.s = s
        self.features = features if s.feature_weight > 0 else None
        self.t_feats: list[torch.Tensor] = []
        if self.features is not None:
            with torch.no_grad():
                self.t_feats = [_unit(f) for f in self.features(target)]

    def parts(self, img: torch.Tensor, target: torch.Tensor | None = None,
              t_feats: list[torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
        img = img.float()
        tgt = self.target if target is None else target
        out = {"pixel": F.mse_loss(img, tgt.expand_as(img))}
        if self.s.ssim_weight > 0:
            out["ssim"] = ms_ssim_loss(img, tgt.expand_as(img))
        if self.features is not None:
            tf = self.t_feats if t_feats is None else t_feats
            fs = self.features(img)
            out["feature"] = sum(((_unit(a) - b) ** 2).sum(1).mean() for a, b in
                                 zip(fs, tf, strict=True)) / len(tf)
        return out

    def total(self, parts: dict[str, torch.Tensor]) -> torch.Tensor:
        w = {"pixel": self.s.pixel_weight, "ssim": self.s.ssim_weight,
             "feature": self.s.feature_weight}
        return sum(w[k] * v for k, v in parts.items())


def _unit(f: torch.Tensor) -> torch.Tensor:
    """Channel-normalised activations (LPIPS-style): each position's feature vector has
    unit length, so every layer counts alike."""
    f = f.float()
    return f / f.norm(dim=1, keepdim=True).clamp_min(1e-8)


def _synth(G: StyleGenerator, ws: torch.Tensor, bf16: bool) -> torch.Tensor:
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16 and ws.device.type == "cpu"):
        img = G.synthesis(ws, noise_mode="const", fused_modconv=False)
    return img.float()


def _noise_layers(G: StyleGenerator) -> dict[str, torch.nn.Module]:
    return {name: m for name, m in G.synthesis.named_modules()
            if getattr(m, "use_noise", False) and hasattr(m, "noise_const")}


def _cosine(t: float) -> float:
    """Learning-rate factor at progress ``t`` in [0, 1]: a short ramp up, a cosine down."""
    up = min(1.0, t / 0.05)
    down = 0.5 - 0.5 * math.cos(math.pi * min(1.0, (1 - t) / 0.25))
    return up * down


def start_latent(G: StyleGenerator, loss: _Loss, s: InvertSettings) -> torch.Tensor:
    """w ``[w_dim]``: ``w_avg`` or the candidate face closest to the target."""
    w_avg = G.mapping.w_avg.detach().float()
    if s.start_seeds == 0:
        return w_avg.clone()
    gen = torch.Generator().manual_seed(s.seed)
    z = torch.randn(s.start_seeds, G.z_dim, generator=gen)
    with torch.no_grad():
        w = G.mapping(z.to(w_avg.device), None, truncation_psi=s.start_truncation)[:, 0]
        cands = torch.cat([w_avg[None], w])
        best, best_loss = 0, math.inf
        for i in range(len(cands)):
            ws = cands[i][None, None].repeat(1, G.num_ws, 1)
            value = float(loss.total(loss.parts(_synth(G, ws, s.bf16))))
            if value < best_loss:
                best, best_loss = i, value
    return cands[best].clone()


def project(G: StyleGenerator, target: torch.Tensor, s: InvertSettings,
            features: FeatureFn | None = None,
            ) -> Generator[Progress, None, Projection]:
    """Optimise w+ (and, with ``optimize_noise``, the noise maps) so that ``G`` renders
    ``target`` (``[1, 3, R, R]`` in [-1, 1], R the model's resolution). Yields one
    :class:`Progress` per step (fraction of this phase, loss metrics, a preview of target
    and reconstruction side by side every ``preview_every`` steps)."""
    R = G.img_resolution
    if tuple(target.shape) != (1, G.img_channels, R, R):
        raise StudioError(f"the target must be {R}x{R} pixels with {G.img_channels} channels "
                          f"for this model, not {tuple(target.shape)}")
    G = copy.deepcopy(G).float().eval().requires_grad_(False)
    dev = G.mapping.w_avg.device
    target = target.to(dev).float()
    loss = _Loss(target, s, features)
    target_u8 = to_uint8(target)
    yield Progress(0.0, "Choosing a starting face", step=0)
    w0 = start_latent(G, loss, s)
    gen = torch.Generator().manual_seed(s.seed + 1)
    with torch.no_grad():  # spread of W, for the w noise
        zs = torch.randn(256, G.z_dim, generator=gen).to(dev)
        w_std = float(G.mapping(zs, None)[:, 0].std(0).mean())
    ws = w0[None, None].repeat(1, G.num_ws, 1).clone().requires_grad_(True)
    params: list[torch.Tensor] = [ws]
    noises: dict[str, torch.Tensor] = {}
    if s.optimize_noise:
        for name, layer in _noise_layers(G).items():
            n = layer.noise_const.detach().clone().float().requires_grad_(True)
            layer.noise_const = n  # a tensor with grad stands in for the buffer
            noises[name] = n
        params += list(noises.values())
    opt = torch.optim.Adam(params, lr=s.lr, betas=(0.9, 0.999))
    history: dict[str, list[float]] = {}
    img = None
    for step in range(s.steps):
        t = step / max(1, s.steps)
        for g in opt.param_groups:
            g["lr"] = s.lr * _cosine(t)
        noise_scale = w_std * s.w_noise * max(0.0, 1 - t / 0.75) ** 2
        jitter = torch.randn(ws.shape, generator=gen).to(dev) * noise_scale
        img = _synth(G, ws + jitter, s.bf16)
        parts = loss.parts(img)
        total = loss.total(parts)
        if s.spread_weight > 0:
            spread = (ws - ws.mean(1, keepdim=True)).square().sum(2).mean()
            parts["spread"] = spread
            total = total + s.spread_weight * spread
        if noises:
            reg = noise_regularizer(list(noises.values()))
            parts["noise_reg"] = reg
            total = total + s.noise_weight * reg
        opt.zero_grad(set_to_none=True)
        total.backward()
        opt.step()
        if noises:
            normalize_noise_(list(noises.values()))
        metrics = {k: float(v.detach()) for k, v in parts.items()}
        metrics["loss"] = float(total.detach())
        for k, v in metrics.items():
            history.setdefault(k, []).append(v)
        preview = None
        if step % s.preview_every == 0 or step == s.steps - 1:
            preview = _side_by_side(target_u8, to_uint8(img))
        yield Progress((step + 1) / s.steps, f"Projecting: step {step + 1}/{s.steps}",
                       preview=preview, metrics=metrics, step=step + 1)
    with torch.no_grad():
        final = _synth(G, ws, False)
    return Projection(ws=ws.detach()[0].float().cpu().numpy(), image=to_uint8(final),
                      noises={k: v.detach().clone() for k, v in noises.items()} or None,
                      history=history)


def pivotal_tune(G: StyleGenerator, target: torch.Tensor, pivot: np.ndarray, s: InvertSettings,
                 features: FeatureFn | None = None,
                 noises: dict[str, torch.Tensor] | None = None,
                 ) -> Generator[Progress, None, StyleGenerator]:
    """Fine-tune a copy of ``G``'s synthesis network so the pivot w+ renders ``target``; a
    locality term keeps images of latents between the pivot and random faces unchanged.
    The copy's constant noise maps become ``noises`` when given. ``G`` is not modified."""
    G_orig = copy.deepcopy(G).float().eval().requires_grad_(False)
    G_t = copy.deepcopy(G_orig)
    dev = G_t.mapping.w_avg.device
    if noises:
        layers = _noise_layers(G_t)
        for name, n in noises.items():
            layers[name].noise_const = n.detach().clone().to(dev)
    G_t.synthesis.requires_grad_(True)
    params = [p for p in G_t.synthesis.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=s.pivotal_lr, betas=(0.9, 0.999))
    target = target.to(dev).float()
    loss = _Loss(target, s, features)
    target_u8 = to_uint8(target)
    w_p = torch.from_numpy(np.asarray(pivot, np.float32))[None].to(dev)
    gen = torch.Generator().manual_seed(s.seed + 2)
    n = s.pivotal_steps
    for step in range(n):
        img = _synth(G_t, w_p, s.bf16)
        parts = loss.parts(img)
        total = loss.total(parts)
        if s.locality_weight > 0:
            z = torch.randn(1, G_t.z_dim, generator=gen).to(dev)
            with torch.no_grad():
                w_r = G_orig.mapping(z, None)
                alpha = float(torch.rand((), generator=gen)) * 0.75 + 0.25
                w_l = w_p + alpha * (w_r - w_p)
                ref = _synth(G_orig, w_l, s.bf16)
            out = _synth(G_t, w_l, s.bf16)
            local = F.mse_loss(out, ref) + ms_ssim_loss(out, ref)
            parts["locality"] = local
            total = total + s.locality_weight * local
        opt.zero_grad(set_to_none=True)
        total.backward()
        opt.step()
        metrics = {f"pt_{k}": float(v.detach()) for k, v in parts.items()}
        metrics["pt_loss"] = float(total.detach())
        preview = None
        if step % s.preview_every == 0 or step == n - 1:
            preview = _side_by_side(target_u8, to_uint8(img))
        yield Progress((step + 1) / n, f"Pivotal tuning: step {step + 1}/{n}",
                       preview=preview, metrics=metrics, step=step + 1)
    return G_t.eval().requires_grad_(False)


def edit_directions(G: StyleGenerator, controls: dict[str, np.ndarray] | None = None,
                    count: int = 4, seed: int = 7) -> dict[str, np.ndarray]:
    """The edits to test on an inverted face: the model's controls when it has some, else
    directions from ``w_avg`` halfway towards ``count`` random faces (a generic stand-in for
    semantic edits)."""
    if controls:
        return {k: np.asarray(v, np.float32) for k, v in controls.items()}
    gen = torch.Generator().manual_seed(seed)
    z = torch.randn(count, G.z_dim, generator=gen).to(G.mapping.w_avg.device)
    with torch.no_grad():
        w = G.mapping(z, None)[:, 0].float()
        d = 0.5 * (w - G.mapping.w_avg.float()[None])
    return {f"towards_face_{i}": d[i].cpu().numpy() for i in range(count)}


def edit_consistency(G_orig: StyleGenerator, G_new: StyleGenerator, pivot: np.ndarray,
                     directions: dict[str, np.ndarray]) -> dict[str, float]:
    """How well edits of the pivot survive pivotal tuning: per direction, the cosine
    similarity between the image change an edit makes with the tuned network and the change
    it makes with the original (1 = the same edit; 0 = unrelated). Also ``mean``."""
    out: dict[str, float] = {}
    w_p = torch.from_numpy(np.asarray(pivot, np.float32))[None].to(G_orig.mapping.w_avg.device)
    with torch.no_grad():
        base_o, base_n = _synth(G_orig, w_p, False), _synth(G_new, w_p, False)
        for name, d in directions.items():
            dt = torch.from_numpy(np.asarray(d, np.float32)).to(w_p.device)
            w_e = w_p + (dt[None, None] if dt.ndim == 1 else dt[None])
            do = (_synth(G_orig, w_e, False) - base_o).flatten()
            dn = (_synth(G_new, w_e, False) - base_n).flatten()
            out[name] = float(F.cosine_similarity(do, dn, dim=0))
    out["mean"] = float(np.mean(list(out.values()))) if out else math.nan
    return out
