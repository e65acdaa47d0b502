"""One StyleGAN2 training step at a time, with everything needed to stop and resume it.

Our own implementation of the StyleGAN2-ADA objective (Karras et al. 2020):

* non-saturating logistic loss: ``G: softplus(-D(G(z)))``, ``D: softplus(D(G(z))) +
  softplus(-D(x))``;
* lazy R1 on real images every ``r1_interval`` minibatches, ``gamma / 2 * |grad D(x)|^2``
  scaled by the interval; optional lazy path-length regularisation of G;
* style mixing (per sample, a random cut in w+) and an exponential moving average of G
  whose half-life is ``ema_kimg`` (ramped up over the first images);
* Adam with beta1 = 0, and the lazy-regularisation correction of lr and betas;
* every image D sees goes through the differentiable augmentation with ADA's ``p``.

A minibatch runs in *phases* (``Gmain``, ``Greg``, ``Dmain``, ``Dreg``), each split into
micro-batches (gradient accumulation). Every random number comes either from a generator
seeded by (seed, minibatch, phase, micro-batch) or from torch's global generator (the
per-pixel noise of G), whose state the checkpoint keeps. If a phase is interrupted
(cancel), the small state it touched is put back as it was at the phase start, so the
checkpoint written then resumes exactly where the run stopped.

Mixed precision: the convolutions run under autocast (bf16 on AMX CPUs, bf16 or fp16 with
GradScalers on CUDA); the mapping network and both regularisers stay in fp32.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from studio.core.devices import DeviceChoice
from studio.core.errors import StudioError
from studio.train.augment import AdaptiveP, augment
from studio.train.config import TrainConfig
from studio.train.data import Batches, ImageFolder
from studio.train.distributed import Dist
from studio.train.networks import Networks, freeze_d_blocks

PHASE_CODES = {"Gmain": 1, "Greg": 2, "Dmain": 3, "Dreg": 4}
STAT_NAMES = ("loss_G", "loss_D", "r1", "pl", "real_sign")


def derive_seed(*parts: int) -> int:
    """A 63-bit seed from integers (NumPy's SeedSequence hashing)."""
    words = np.random.SeedSequence([int(p) % (2**32) for p in parts]).generate_state(2)
    return int((int(words[0]) << 31) ^ int(words[1])) % (2**63)


def _cpu(obj: Any) -> Any:
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu()
    if isinstance(obj, dict):
        return {k: _cpu(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return type(obj)(_cpu(v) for v in obj)
    return obj


class FaceTrainer:
    """The training state (networks, optimisers, augmentation, counters) and its step."""

    def __init__(self, cfg: TrainConfig, nets: Networks, folder: ImageFolder,
                 choice: DeviceChoice, dist: Dist | None = None,
                 freeze_d: int | None = None) -> None:
        self.cfg = cfg
        self.dist = dist or Dist()
        self.device = choice.torch_device
        if self.dist.enabled and self.device.type == "cuda":
            self.device = torch.device("cuda", self.dist.local_rank)
        self.precision = choice.precision
        self.amp_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(self.precision)
        assert cfg.batch_gpu is not None and cfg.r1_gamma is not None and cfg.ema_kimg is not None
        world = self.dist.world
        if cfg.batch % (cfg.batch_gpu * world):
            raise StudioError(f"training setting batch: {cfg.batch} is not a multiple of "
                              f"batch_gpu ({cfg.batch_gpu}) x devices ({world})")
        self.rank_batch = cfg.batch // world
        self.rounds = self.rank_batch // cfg.batch_gpu

        self.G = nets.G.to(self.device).train().requires_grad_(True)
        self.D = nets.D.to(self.device).train().requires_grad_(True)
        self.G_ema = nets.G_ema.to(self.device).eval().requires_grad_(False)
        self.channels_last = bool(cfg.channels_last)
        if self.channels_last:
            self.D = self.D.to(memory_format=torch.channels_last)
        mbstd = getattr(self.D.b4, "mbstd", None)
        group = getattr(mbstd, "group_size", None)
        if group and cfg.batch_gpu > group and cfg.batch_gpu % group:
            raise StudioError(f"training setting batch_gpu: {cfg.batch_gpu} must be a multiple "
                              f"of the discriminator's minibatch-std group ({group})")
        self.frozen = freeze_d_blocks(self.D, cfg.freeze_d if freeze_d is None else freeze_d)
        # Cancel and pause also land between blocks, not only between micro-batches.
        self._check: Callable[[], None] | None = None
        blocks = [*self.G.synthesis.blocks(), *(getattr(self.D, f"b{r}") for r in self.D.block_resolutions)]
        for block in blocks:
            block.register_forward_pre_hook(self._block_hook)
        self.dist.broadcast_module(self.G)
        self.dist.broadcast_module(self.D)
        self.dist.broadcast_module(self.G_ema)

        self.G_params = [p for p in self.G.parameters() if p.requires_grad]
        self.D_params = [p for p in self.D.parameters() if p.requires_grad]
        g_ratio = cfg.pl_interval / (cfg.pl_interval + 1) if cfg.pl_weight > 0 else 1.0
        d_ratio = cfg.r1_interval / (cfg.r1_interval + 1) if cfg.r1_gamma > 0 else 1.0
        self.opt_G = torch.optim.Adam(self.G_params, lr=cfg.lr_g * g_ratio,
                                      betas=(cfg.beta1**g_ratio, cfg.beta2**g_ratio), eps=1e-8)
        self.opt_D = torch.optim.Adam(self.D_params, lr=cfg.lr_d * d_ratio,
                                      betas=(cfg.beta1**d_ratio, cfg.beta2**d_ratio), eps=1e-8)
        use_scaler = self.amp_dtype == torch.float16 and self.device.type == "cuda"
        self.scaler_G = torch.amp.GradScaler("cuda") if use_scaler else None
        self.scaler_D = torch.amp.GradScaler("cuda") if use_scaler else None

        self.ada = AdaptiveP(cfg.aug_p, cfg.ada_target, cfg.ada_interval, cfg.ada_kimg,
                             adaptive=cfg.augment == "ada")
        self.pl_mean = torch.zeros([], device=self.device)
        self.images_seen = 0
        self.iteration = 0
        self.next_phase = 0
        self.batches = Batches(folder, cfg.seed, cfg.mirror, self.device)
        self._real: tuple[int, torch.Tensor] | None = None
        self._sums = dict.fromkeys(STAT_NAMES, 0.0)
        self._counts = dict.fromkeys(STAT_NAMES, 0)

    # ------------------------------------------------------------------ helpers

    def _block_hook(self, module: Any, args: Any) -> None:
        if self._check is not None:
            self._check()

    def _autocast(self, enabled: bool = True) -> contextlib.AbstractContextManager[Any]:
        if self.amp_dtype is None or not enabled:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def _record(self, name: str, value: torch.Tensor | float, n: int = 1) -> None:
        self._sums[name] += float(value) * n
        self._counts[name] += n

    def take_stats(self) -> dict[str, float]:
        """Means of the losses since the last call (and the current aug p)."""
        out = {k: self._sums[k] / self._counts[k] for k in STAT_NAMES if self._counts[k]}
        self._sums = dict.fromkeys(STAT_NAMES, 0.0)
        self._counts = dict.fromkeys(STAT_NAMES, 0)
        out["aug_p"] = self.ada.p
        return out

    def phases(self, iteration: int) -> list[str]:
        cfg = self.cfg
        out = ["Gmain"]
        if cfg.pl_weight > 0 and iteration % cfg.pl_interval == 0:
            out.append("Greg")
        out.append("Dmain")
        if (cfg.r1_gamma or 0) > 0 and iteration % cfg.r1_interval == 0:
            out.append("Dreg")
        return out

    def _generator(self, phase: str, *more: int) -> torch.Generator:
        return torch.Generator().manual_seed(
            derive_seed(self.cfg.seed, self.iteration, PHASE_CODES[phase], *more))

    def _latents(self, phase: str) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        """Per micro-batch of this process: (z, z2 for mixing, mixing cut per sample)."""
        gen = self._generator(phase, 0)
        b, zd = self.cfg.batch, self.G.z_dim
        z = torch.randn(b, zd, generator=gen)
        z2 = torch.randn(b, zd, generator=gen)
        cut = torch.randint(1, max(2, self.G.num_ws), (b,), generator=gen)
        mix = torch.rand(b, generator=gen) < self.cfg.style_mixing
        cut = torch.where(mix, cut, torch.full_like(cut, self.G.num_ws))
        lo = self.dist.rank * self.rank_batch
        out = []
        for r in range(self.rounds):
            s = slice(lo + r * self.cfg.batch_gpu, lo + (r + 1) * self.cfg.batch_gpu)
            out.append((z[s].to(self.device), z2[s].to(self.device), cut[s].to(self.device)))
        return out

    def _real_batches(self) -> list[torch.Tensor]:
        if self._real is None or self._real[0] != self.images_seen:
            start = self.images_seen + self.dist.rank * self.rank_batch
            self._real = (self.images_seen, self.batches.get(start, self.rank_batch))
        x = self._real[1]
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return list(x.split(self.cfg.batch_gpu))

    def _ws(self, z: torch.Tensor, z2: torch.Tensor, cut: torch.Tensor) -> torch.Tensor:
        ws = self.G.mapping(z, None)
        if bool((cut < self.G.num_ws).any()):
            ws2 = self.G.mapping(z2, None, skip_w_avg_update=True)
            layer = torch.arange(self.G.num_ws, device=ws.device)[None, :, None]
            ws = torch.where(layer < cut[:, None, None], ws, ws2)
        return ws

    def _synth(self, ws: torch.Tensor, amp: bool = True) -> torch.Tensor:
        with self._autocast(amp):
            return self.G.synthesis(ws, channels_last=self.channels_last).float()

    def _D(self, img: torch.Tensor, gen: torch.Generator, amp: bool = True) -> torch.Tensor:
        if self.cfg.augment != "none" and self.ada.p > 0:
            img = augment(img, self.ada.p, gen, self.cfg.augments)
        if self.channels_last:
            img = img.contiguous(memory_format=torch.channels_last)
        with self._autocast(amp):
            return self.D(img).float()

    def _backward(self, loss: torch.Tensor, scaler: Any) -> None:
        (scaler.scale(loss) if scaler is not None else loss).backward()

    def _step(self, opt: torch.optim.Optimizer, params: list[torch.nn.Parameter],
              scaler: Any) -> None:
        if scaler is not None:
            scaler.unscale_(opt)
        self.dist.average_grads(params)
        for p in params:
            if p.grad is not None:
                torch.nan_to_num(p.grad, nan=0.0, posinf=1e5, neginf=-1e5, out=p.grad)
        if scaler is not None:
            scaler.step(opt)
            scaler.update()
        else:
            opt.step()

    def _set_D_grad(self, flag: bool) -> None:
        for p in self.D_params:
            p.requires_grad_(flag)

    # ------------------------------------------------------------------ phases

    def _phase_Gmain(self, check: Callable[[], None]) -> None:
        self.opt_G.zero_grad(set_to_none=True)
        self._set_D_grad(False)
        try:
            for r, (z, z2, cut) in enumerate(self._latents("Gmain")):
                check()
                img = self._synth(self._ws(z, z2, cut))
                logits = self._D(img, self._generator("Gmain", 1, r, self.dist.rank))
                loss = F.softplus(-logits).mean()
                self._backward(loss / self.rounds, self.scaler_G)
                self._record("loss_G", loss.detach())
        finally:
            self._set_D_grad(True)
        self._step(self.opt_G, self.G_params, self.scaler_G)

    def _phase_Greg(self, check: Callable[[], None]) -> None:
        cfg = self.cfg
        self.opt_G.zero_grad(set_to_none=True)
        n = max(1, cfg.batch_gpu // cfg.pl_batch_shrink)  # type: ignore[operator]
        for r, (z, z2, cut) in enumerate(self._latents("Greg")):
            check()
            ws = self._ws(z[:n], z2[:n], cut[:n])
            img = self._synth(ws, amp=False)
            gen = self._generator("Greg", 1, r, self.dist.rank)
            noise = torch.randn(img.shape, generator=gen).to(img.device) / math.sqrt(
                img.shape[2] * img.shape[3])
            (grads,) = torch.autograd.grad((img * noise).sum(), ws, create_graph=True)
            lengths = grads.square().sum(2).mean(1).sqrt()
            with torch.no_grad():
                self.pl_mean.copy_(self.pl_mean.lerp(lengths.mean(), cfg.pl_decay))
            penalty = (lengths - self.pl_mean).square().mean()
            loss = penalty * cfg.pl_weight * cfg.pl_interval
            (loss / self.rounds).backward()
            self._record("pl", penalty.detach())
        self._step(self.opt_G, self.G_params, None)

    def _phase_Dmain(self, check: Callable[[], None]) -> None:
        self.opt_D.zero_grad(set_to_none=True)
        reals = self._real_batches()
        for r, (z, z2, cut) in enumerate(self._latents("Dmain")):
            check()
            with torch.no_grad():
                img = self._synth(self._ws(z, z2, cut))
            gen = self._generator("Dmain", 1, r, self.dist.rank)
            fake_logits = self._D(img, gen)
            real_logits = self._D(reals[r], gen)
            loss_fake = F.softplus(fake_logits).mean()
            loss_real = F.softplus(-real_logits).mean()
            self.ada.accumulate(real_logits)
            self._backward((loss_fake + loss_real) / self.rounds, self.scaler_D)
            self._record("loss_D", (loss_fake + loss_real).detach())
            self._record("real_sign", real_logits.detach().sign().mean())
        self._step(self.opt_D, self.D_params, self.scaler_D)

    def _phase_Dreg(self, check: Callable[[], None]) -> None:
        cfg = self.cfg
        self.opt_D.zero_grad(set_to_none=True)
        for r, real in enumerate(self._real_batches()):
            check()
            x = real.detach().requires_grad_(True)
            logits = self._D(x, self._generator("Dreg", 1, r, self.dist.rank), amp=False)
            (grads,) = torch.autograd.grad(logits.sum(), x, create_graph=True)
            penalty = grads.square().sum(dim=(1, 2, 3)).mean()
            loss = penalty * (cfg.r1_gamma / 2) * cfg.r1_interval  # type: ignore[operator]
            (loss / self.rounds).backward()
            self._record("r1", penalty.detach())
        self._step(self.opt_D, self.D_params, None)

    # ------------------------------------------------------------------ the step

    def _snapshot(self) -> dict[str, Any]:
        snap = {
            "rng": torch.get_rng_state(),
            "ada": (self.ada.sign_sum, self.ada.sign_count),
            "pl_mean": self.pl_mean.clone(),
            "w_avg": self.G.mapping.w_avg.clone(),
        }
        if self.device.type == "cuda":
            snap["cuda_rng"] = torch.cuda.get_rng_state(self.device)
        return snap

    def _restore(self, snap: dict[str, Any]) -> None:
        torch.set_rng_state(snap["rng"])
        if "cuda_rng" in snap:
            torch.cuda.set_rng_state(snap["cuda_rng"], self.device)
        self.ada.sign_sum, self.ada.sign_count = snap["ada"]
        with torch.no_grad():
            self.pl_mean.copy_(snap["pl_mean"])
            self.G.mapping.w_avg.copy_(snap["w_avg"])
        self.opt_G.zero_grad(set_to_none=True)
        self.opt_D.zero_grad(set_to_none=True)

    def train_step(self, check: Callable[[], None] = lambda: None) -> None:
        """One minibatch (resuming at ``next_phase`` after an interrupted one). ``check`` is
        called before every micro-batch and may raise to stop (the state is then as it was
        at the start of the interrupted phase)."""
        phases = self.phases(self.iteration)
        while self.next_phase < len(phases):
            name = phases[self.next_phase]
            snap = self._snapshot()
            self._check = check
            try:
                getattr(self, f"_phase_{name}")(check)
            except BaseException:
                self._restore(snap)
                raise
            finally:
                self._check = None
            self.next_phase += 1
        self._update_ema()
        self.images_seen += self.cfg.batch
        self.iteration += 1
        self.next_phase = 0
        if self.iteration % self.cfg.ada_interval == 0 and self.ada.adaptive:
            s, c = self.dist.sum_floats([self.ada.sign_sum, float(self.ada.sign_count)], self.device)
            self.ada.add_counts(s, int(c))
            self.ada.update(self.cfg.batch * self.cfg.ada_interval)

    @torch.no_grad()
    def _update_ema(self) -> None:
        cfg = self.cfg
        ema_nimg = cfg.ema_kimg * 1000  # type: ignore[operator]
        if cfg.ema_rampup is not None:
            ema_nimg = min(ema_nimg, self.images_seen * cfg.ema_rampup)
        beta = 0.5 ** (cfg.batch / max(ema_nimg, 1e-8))
        for p_ema, p in zip(self.G_ema.parameters(), self.G.parameters(), strict=True):
            p_ema.copy_(p.detach().lerp(p_ema, beta))
        for b_ema, b in zip(self.G_ema.buffers(), self.G.buffers(), strict=True):
            b_ema.copy_(b)

    # ------------------------------------------------------------------ checkpoints

    def state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {
            "G": self.G.state_dict(), "D": self.D.state_dict(), "G_ema": self.G_ema.state_dict(),
            "opt_G": self.opt_G.state_dict(), "opt_D": self.opt_D.state_dict(),
            "ada": self.ada.state_dict(), "pl_mean": float(self.pl_mean),
            "images_seen": self.images_seen, "iteration": self.iteration,
            "next_phase": self.next_phase, "rng_torch": torch.get_rng_state(),
            "config": self.cfg.to_dict(),
        }
        if self.scaler_G is not None and self.scaler_D is not None:
            state["scaler_G"] = self.scaler_G.state_dict()
            state["scaler_D"] = self.scaler_D.state_dict()
        if self.device.type == "cuda":
            state["rng_cuda"] = torch.cuda.get_rng_state(self.device)
        return _cpu(state)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        try:
            self.G.load_state_dict(state["G"])
            self.D.load_state_dict(state["D"])
            self.G_ema.load_state_dict(state["G_ema"])
            self.opt_G.load_state_dict(state["opt_G"])
            self.opt_D.load_state_dict(state["opt_D"])
        except (KeyError, RuntimeError, ValueError) as exc:
            raise StudioError(f"the checkpoint does not fit this run's networks ({exc})") from None
        self.ada.load_state_dict(state["ada"])
        self.pl_mean.fill_(float(state["pl_mean"]))
        self.images_seen = int(state["images_seen"])
        self.iteration = int(state["iteration"])
        self.next_phase = int(state.get("next_phase", 0))
        torch.set_rng_state(state["rng_torch"])
        if self.device.type == "cuda" and "rng_cuda" in state:
            torch.cuda.set_rng_state(state["rng_cuda"], self.device)
        if self.scaler_G is not None and "scaler_G" in state:
            self.scaler_G.load_state_dict(state["scaler_G"])
            self.scaler_D.load_state_dict(state["scaler_D"])  # type: ignore[union-attr]
