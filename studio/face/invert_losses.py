"""Losses and measures for inversion: SSIM (one scale and several), PSNR, and the noise
regulariser that keeps optimised noise maps noise-like.

Images are float tensors ``[N, C, H, W]`` in [-1, 1] unless a function says otherwise. SSIM
follows Wang et al. 2004 (Gaussian window, sigma 1.5, C1 = (0.01 L)^2, C2 = (0.03 L)^2);
the multi-scale loss averages it over a pyramid of 2x box-downsampled images.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["gaussian_window", "ms_ssim_loss", "noise_regularizer", "psnr", "ssim",
           "ssim_uint8"]


def gaussian_window(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    x = torch.arange(size, dtype=torch.float32) - (size - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    return g / g.sum()


def _blur(x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    c = x.shape[1]
    k = g.to(x)
    x = F.conv2d(x, k.view(1, 1, 1, -1).repeat(c, 1, 1, 1), groups=c)
    return F.conv2d(x, k.view(1, 1, -1, 1).repeat(c, 1, 1, 1), groups=c)


def ssim(x: torch.Tensor, y: torch.Tensor, data_range: float = 2.0,
         window: int = 11) -> torch.Tensor:
    """Mean SSIM per image ``[N]`` (valid region; the window shrinks for tiny images)."""
    x, y = x.float(), y.float()
    size = min(window, x.shape[-1], x.shape[-2])
    size -= 1 - size % 2  # odd
    g = gaussian_window(size, 1.5 * size / 11)
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    mx, my = _blur(x, g), _blur(y, g)
    sxx = _blur(x * x, g) - mx * mx
    syy = _blur(y * y, g) - my * my
    sxy = _blur(x * y, g) - mx * my
    s = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx * mx + my * my + c1) * (sxx + syy + c2))
    return s.mean(dim=(1, 2, 3))


def ms_ssim_loss(x: torch.Tensor, y: torch.Tensor, scales: int = 3) -> torch.Tensor:
    """``1 - SSIM`` averaged over ``scales`` resolutions (stops when images get below 8 px)."""
    total, n = x.new_zeros(()), 0
    for i in range(scales):
        if i:
            if min(x.shape[-2:]) < 16:
                break
            x, y = F.avg_pool2d(x, 2), F.avg_pool2d(y, 2)
        total = total + (1 - ssim(x, y)).mean()
        n += 1
    return total / n


def noise_regularizer(noises: list[torch.Tensor]) -> torch.Tensor:
    """Penalise spatial correlation in optimised noise maps (``[H, W]`` or ``[1, 1, H, W]``)
    at every scale of a 2x pyramid: squared shift-by-one autocorrelations, horizontally and
    vertically. White noise scores about zero; a map that carries image structure does not.
    """
    total = torch.zeros(())
    for n in noises:
        v = n.reshape(1, 1, n.shape[-2], n.shape[-1]).float()
        while True:
            total = total + (v * torch.roll(v, 1, dims=3)).mean() ** 2
            total = total + (v * torch.roll(v, 1, dims=2)).mean() ** 2
            if v.shape[-1] <= 8:
                break
            v = F.avg_pool2d(v, 2) * 2  # averaging 4 white samples halves the std
    return total


def normalize_noise_(noises: list[torch.Tensor]) -> None:
    """In place: zero mean, unit variance (keeps optimised noise on the prior's scale)."""
    with torch.no_grad():
        for n in noises:
            n.sub_(n.mean()).div_(n.std().clamp_min(1e-8))


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB between two uint8 images of the same shape (inf when identical)."""
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(255.0**2 / mse)


def ssim_uint8(a: np.ndarray, b: np.ndarray) -> float:
    """SSIM between two ``H x W x 3`` uint8 images (on the 0..255 scale, per channel)."""
    ta = torch.from_numpy(np.ascontiguousarray(a)).permute(2, 0, 1)[None].float()
    tb = torch.from_numpy(np.ascontiguousarray(b)).permute(2, 0, 1)[None].float()
    with torch.no_grad():
        return float(ssim(ta, tb, data_range=255.0)[0])
