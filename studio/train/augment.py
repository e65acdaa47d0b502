"""Differentiable augmentation of everything the discriminator sees, with ADA's adaptive
probability (Karras et al. 2020, "Training GANs with limited data").

Written for this project: a compact set of augmentations that are all differentiable with
respect to the image (so G's gradients and the R1 penalty pass through them):

========== ==============================================================================
xflip      mirror left-right (when chosen, a coin decides: as in ADA)
rotate90   rotate by 0, 90, 180 or 270 degrees
translate  integer shift by up to 1/8 of the image, reflecting at the border
brightness add N(0, 0.2) to every channel
contrast   scale about mid-grey by 2^N(0, 0.5)
saturation scale the distance from the grey axis by 2^N(0, 1)
cutout     set a square of half the image side to mid-grey
========== ==============================================================================

Each augmentation is applied to each image independently with probability ``p``. With
``p`` below about 0.8 the augmentations do not "leak" into the generated images.

:class:`AdaptiveP` adjusts ``p`` from the sign of D's outputs on real images: if D is
confidently right about the reals more often than the target (overfitting), ``p`` rises;
otherwise it falls. The step is sized so ``p`` could go from 0 to 1 in ``ada_kimg``
thousand images.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch

from studio.train.config import AUGMENTS

BRIGHTNESS_STD = 0.2
CONTRAST_STD = 0.5  # log2
SATURATION_STD = 1.0  # log2
TRANSLATE_MAX = 0.125  # fraction of the image side
CUTOUT_SIZE = 0.5  # fraction of the image side


def _where(mask: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.where(mask.reshape(-1, 1, 1, 1), a, b)


def augment(x: torch.Tensor, p: float, generator: torch.Generator,
            ops: Sequence[str] = AUGMENTS) -> torch.Tensor:
    """Augment a batch ``[N, C, H, W]`` (images in about [-1, 1]). The random numbers come
    from ``generator`` (on the CPU) and do not depend on ``p``, so the same generator
    state gives the same choices for any ``p``."""
    if p <= 0 or not ops:
        return x
    n, c, h, w = x.shape
    dev = x.device

    def rand(*shape: int) -> torch.Tensor:
        return torch.rand(shape, generator=generator).to(dev)

    def randn(*shape: int) -> torch.Tensor:
        return torch.randn(shape, generator=generator).to(dev)

    def chosen() -> torch.Tensor:
        return rand(n) < p

    fmt = torch.channels_last if x.is_contiguous(memory_format=torch.channels_last) and c > 1 \
        else torch.contiguous_format
    ops = set(ops)
    # Draw every number in a fixed order whether or not its augmentation is enabled.
    flip_on, flip_coin = chosen(), rand(n) < 0.5
    rot_on, rot_k = chosen(), (rand(n) * 4).floor().clamp(max=3).long()
    tr_on, tr = chosen(), (rand(n, 2) * 2 - 1) * TRANSLATE_MAX
    br_on, br = chosen(), randn(n) * BRIGHTNESS_STD
    co_on, co = chosen(), torch.exp2(randn(n) * CONTRAST_STD)
    sa_on, sa = chosen(), torch.exp2(randn(n) * SATURATION_STD)
    cu_on, cu_centre = chosen(), rand(n, 2)

    if "xflip" in ops:
        x = _where(flip_on & flip_coin, x.flip(3), x)
    if "rotate90" in ops and h == w:
        for k in (1, 2, 3):
            x = _where(rot_on & (rot_k == k), torch.rot90(x, k, dims=(2, 3)), x)
    if "translate" in ops:
        x = _translate(x, torch.where(tr_on[:, None], tr, torch.zeros_like(tr)))
    if c == 3 and ("brightness" in ops or "contrast" in ops or "saturation" in ops):
        if "brightness" in ops:
            x = x + torch.where(br_on, br, torch.zeros_like(br)).reshape(n, 1, 1, 1)
        if "contrast" in ops:
            x = x * torch.where(co_on, co, torch.ones_like(co)).reshape(n, 1, 1, 1)
        if "saturation" in ops:
            grey = x.mean(dim=1, keepdim=True)
            s = torch.where(sa_on, sa, torch.ones_like(sa)).reshape(n, 1, 1, 1)
            x = grey + (x - grey) * s
    if "cutout" in ops:
        ys = (torch.arange(h, device=dev, dtype=torch.float32) + 0.5) / h
        xs = (torch.arange(w, device=dev, dtype=torch.float32) + 0.5) / w
        inside_y = (ys[None, :] - cu_centre[:, 1:2]).abs() < CUTOUT_SIZE / 2
        inside_x = (xs[None, :] - cu_centre[:, 0:1]).abs() < CUTOUT_SIZE / 2
        hole = inside_y[:, :, None] & inside_x[:, None, :] & cu_on[:, None, None]
        x = x * (~hole).to(x.dtype)[:, None]
    return x.contiguous(memory_format=fmt)


def _translate(x: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """Shift each image by ``shift [N, 2]`` (fractions of the side: x, y), rounded to whole
    pixels, reflecting at the border. Differentiable with respect to ``x``."""
    n, _, h, w = x.shape
    m = max(1, min(int(math.ceil(TRANSLATE_MAX * max(h, w))), min(h, w) - 1))
    tx = (shift[:, 0] * w).round().long().clamp(-m, m)
    ty = (shift[:, 1] * h).round().long().clamp(-m, m)
    if not bool((tx != 0).any() | (ty != 0).any()):
        return x
    xp = torch.nn.functional.pad(x, [m, m, m, m], mode="reflect")
    rows = torch.arange(h, device=x.device)[None, :] + m - ty[:, None]  # [N, H]
    cols = torch.arange(w, device=x.device)[None, :] + m - tx[:, None]  # [N, W]
    b = torch.arange(n, device=x.device)[:, None, None]
    out = xp[b, :, rows[:, :, None], cols[:, None, :]]  # [N, H, W, C]
    return out.permute(0, 3, 1, 2)


class AdaptiveP:
    """ADA's controller of the augmentation probability ``p``."""

    def __init__(self, p: float = 0.0, target: float = 0.6, interval: int = 4,
                 kimg: float = 100.0, adaptive: bool = True) -> None:
        self.p = float(p)
        self.target = float(target)
        self.interval = int(interval)
        self.kimg = float(kimg)
        self.adaptive = adaptive
        self.sign_sum = 0.0
        self.sign_count = 0
        self.last_rt: float | None = None  # the last E[sign(D(real))] used for an update

    def accumulate(self, real_logits: torch.Tensor) -> None:
        """Record D's outputs on (augmented) real images."""
        if self.adaptive:
            s = real_logits.detach().float().sign()
            self.sign_sum += float(s.sum())
            self.sign_count += int(s.numel())

    def add_counts(self, sign_sum: float, sign_count: int) -> None:
        """Replace the local statistics (after summing them over all processes)."""
        self.sign_sum, self.sign_count = float(sign_sum), int(sign_count)

    def update(self, images: int) -> float:
        """Move ``p`` after ``images`` real images; returns the new ``p``."""
        if not self.adaptive or self.sign_count == 0:
            return self.p
        rt = self.sign_sum / self.sign_count
        step = math.copysign(1.0, rt - self.target) if rt != self.target else 0.0
        self.p = min(max(self.p + step * images / (self.kimg * 1000.0), 0.0), 1.0)
        self.last_rt = rt
        self.sign_sum, self.sign_count = 0.0, 0
        return self.p

    def state_dict(self) -> dict[str, Any]:
        return {"p": self.p, "sign_sum": self.sign_sum, "sign_count": self.sign_count,
                "last_rt": self.last_rt}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.p = float(state["p"])
        self.sign_sum = float(state["sign_sum"])
        self.sign_count = int(state["sign_count"])
        rt = state.get("last_rt")
        self.last_rt = None if rt is None else float(rt)
