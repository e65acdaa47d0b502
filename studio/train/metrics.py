"""Quality metrics of a face model that work offline: Fréchet distance and precision/recall.

The feature space
-----------------
Standard FID needs Inception-v3 weights trained on ImageNet, which the studio cannot
download. The default features therefore come from :class:`RandomFeatures`, a *fixed*
random convolutional network: five 3x3 conv + leaky-ReLU stages (32, 64, 128, 256, 256
channels, 2x average pooling between stages) on the image resized to 128 x 128. Its weights
are drawn from NumPy's PCG64 generator seeded with ``(seed, stage)`` and He-scaled, so every
install computes the same features without a weights file. The feature vector (1520
numbers) is the per-channel spatial mean and standard deviation of every stage plus the
image averaged down to 4 x 4 pixels (colour layout). Random conv features are known to
rank generative models much like Inception features do, but their numbers are on another
scale: compare them only with each other (same ``FEATURE_VERSION`` and seed), never with
published FIDs.

When the user has pytorch-fid's Inception weights (``pt_inception-2015-12-05-*.pth``), the
standard FID is computed too (:mod:`studio.train.inception`).

Metrics
-------
* :func:`frechet_distance`: ``|mu1 - mu2|^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2))`` with the trace
  of the matrix square root from the eigenvalues of ``S1^(1/2) S2 S1^(1/2)`` (symmetric,
  numerically stable; no SciPy needed).
* :func:`precision_recall`: the k-nearest-neighbour manifolds of Kynkäänniemi et al. 2019:
  precision = share of generated samples inside the real manifold (a union of balls around
  each real sample, radius = distance to its k-th nearest real neighbour); recall = share
  of real samples inside the generated manifold.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

FEATURE_VERSION = 1
FEATURE_SEED = 2024
FEATURE_SIZE = 128
STAGES = (32, 64, 128, 256, 256)
INCEPTION_GLOB = "pt_inception-2015-12-05-*.pth"


class RandomFeatures(torch.nn.Module):
    """The fixed random feature extractor (see the module docstring)."""

    def __init__(self, seed: int = FEATURE_SEED, size: int = FEATURE_SIZE,
                 stages: Iterable[int] = STAGES) -> None:
        super().__init__()
        self.seed = int(seed)
        self.size = int(size)
        self.stages = tuple(int(c) for c in stages)
        cin = 3
        for i, cout in enumerate(self.stages):
            rng = np.random.default_rng([self.seed, i])
            w = rng.standard_normal((cout, cin, 3, 3)) * np.sqrt(2.0 / (1 + 0.2**2) / (cin * 9))
            b = rng.standard_normal(cout) * 0.1
            self.register_buffer(f"w{i}", torch.from_numpy(w.astype(np.float32)))
            self.register_buffer(f"b{i}", torch.from_numpy(b.astype(np.float32)))
            cin = cout
        self.requires_grad_(False).eval()

    @property
    def dim(self) -> int:
        return 2 * sum(self.stages) + 3 * 16

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Images ``[N, 3, H, W]`` in [-1, 1] -> features ``[N, dim]`` (float32)."""
        x = x.float()
        if x.shape[-1] != self.size or x.shape[-2] != self.size:
            x = F.interpolate(x, size=(self.size, self.size), mode="bilinear",
                              align_corners=False, antialias=True)
        out = [F.adaptive_avg_pool2d(x, 4).flatten(1)]
        for i in range(len(self.stages)):
            if i > 0:
                x = F.avg_pool2d(x, 2)
            x = F.leaky_relu(F.conv2d(x, getattr(self, f"w{i}"), getattr(self, f"b{i}"),
                                      padding=1), 0.2)
            out.append(x.mean(dim=(2, 3)))
            out.append(x.std(dim=(2, 3)))
        return torch.cat(out, dim=1)


def to_tensor(images: np.ndarray) -> torch.Tensor:
    """``[N, H, W, 3]`` uint8 -> ``[N, 3, H, W]`` float in [-1, 1]."""
    return torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float() / 127.5 - 1


@torch.no_grad()
def compute_features(images: np.ndarray | torch.Tensor, extractor: Callable[[torch.Tensor], torch.Tensor] | None = None,
                     batch: int = 64, device: str | torch.device = "cpu") -> np.ndarray:
    """Features ``[N, D]`` (float64) of uint8 ``[N, H, W, 3]`` images or float ``[N, 3, H, W]``
    tensors in [-1, 1]."""
    extractor = extractor or RandomFeatures().to(device)
    out = []
    for i in range(0, len(images), batch):
        chunk = images[i : i + batch]
        x = to_tensor(chunk) if isinstance(chunk, np.ndarray) else chunk.float()
        out.append(extractor(x.to(device)).double().cpu().numpy())
    if not out:
        return np.zeros((0, getattr(extractor, "dim", 0)))
    return np.concatenate(out)


def feature_stats(feats: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    feats = np.asarray(feats, dtype=np.float64)
    if len(feats) < 2:
        raise ValueError("need at least two samples for feature statistics")
    return feats.mean(axis=0), np.cov(feats, rowvar=False)


def _sqrt_psd(m: np.ndarray) -> np.ndarray:
    vals, vecs = np.linalg.eigh((m + m.T) / 2)
    return (vecs * np.sqrt(np.clip(vals, 0, None))) @ vecs.T


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray,
                     sigma2: np.ndarray) -> float:
    """Fréchet distance between two Gaussians (float64)."""
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    s1, s2 = np.atleast_2d(sigma1).astype(np.float64), np.atleast_2d(sigma2).astype(np.float64)
    r1 = _sqrt_psd(s1)
    mid = r1 @ s2 @ r1
    tr_sqrt = float(np.sqrt(np.clip(np.linalg.eigvalsh((mid + mid.T) / 2), 0, None)).sum())
    diff = mu1 - mu2
    value = float(diff @ diff + np.trace(s1) + np.trace(s2) - 2 * tr_sqrt)
    return max(value, 0.0)


def fd_from_features(a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet distance between the Gaussians fitted to two feature sets.

    With fewer samples than feature dimensions the covariances are low-rank, and
    ``Tr((S1 S2)^(1/2))`` equals the nuclear norm of ``A B^T / sqrt((n1-1)(n2-1))`` (``A``,
    ``B`` the centred features): an ``n1 x n2`` SVD instead of ``d x d`` eigenproblems.
    """
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if len(a) < 2 or len(b) < 2:
        raise ValueError("need at least two samples on each side for a Fréchet distance")
    if max(len(a), len(b)) >= a.shape[1]:
        return frechet_distance(*feature_stats(a), *feature_stats(b))
    mu_a, mu_b = a.mean(0), b.mean(0)
    ca, cb = a - mu_a, b - mu_b
    na, nb = len(a) - 1, len(b) - 1
    tr_sqrt = float(np.linalg.svd(ca @ cb.T, compute_uv=False).sum()) / np.sqrt(na * nb)
    diff = mu_a - mu_b
    value = float(diff @ diff + (ca * ca).sum() / na + (cb * cb).sum() / nb - 2 * tr_sqrt)
    return max(value, 0.0)


def _kth_radii(x: torch.Tensor, k: int, chunk: int = 1024) -> torch.Tensor:
    """Distance from every row of ``x`` to its k-th nearest other row."""
    radii = []
    for i in range(0, len(x), chunk):
        d = torch.cdist(x[i : i + chunk], x)
        radii.append(d.kthvalue(k + 1, dim=1).values)  # +1: the point itself at distance 0
    return torch.cat(radii)


def _covered(queries: torch.Tensor, centres: torch.Tensor, radii: torch.Tensor,
             chunk: int = 1024) -> torch.Tensor:
    out = []
    for i in range(0, len(queries), chunk):
        d = torch.cdist(queries[i : i + chunk], centres)
        out.append((d <= radii[None, :]).any(dim=1))
    return torch.cat(out)


def precision_recall(real: np.ndarray, fake: np.ndarray, k: int = 3) -> tuple[float, float]:
    """Improved precision and recall (Kynkäänniemi et al. 2019) of ``fake`` against ``real``."""
    r = torch.from_numpy(np.asarray(real, np.float64))
    f = torch.from_numpy(np.asarray(fake, np.float64))
    if len(r) <= k or len(f) <= k:
        raise ValueError(f"precision/recall needs more than k={k} samples on each side")
    precision = float(_covered(f, r, _kth_radii(r, k)).double().mean())
    recall = float(_covered(r, f, _kth_radii(f, k)).double().mean())
    return precision, recall


# --------------------------------------------------------------------------- images


@torch.no_grad()
def sample_images(G: Any, n: int, seed: int = 0, batch: int = 16, truncation_psi: float = 1.0,
                  noise_mode: str = "const", device: str | torch.device | None = None) -> np.ndarray:
    """``n`` images ``[N, R, R, 3]`` uint8 from a generator (z from a seeded generator)."""
    device = torch.device(device) if device is not None else next(G.parameters()).device
    gen = torch.Generator().manual_seed(int(seed))
    z = torch.randn(n, G.z_dim, generator=gen)
    c = torch.zeros(batch, G.c_dim, device=device) if G.c_dim else None
    out = []
    for i in range(0, n, batch):
        zb = z[i : i + batch].to(device)
        img = G(zb, None if c is None else c[: len(zb)], truncation_psi=truncation_psi,
                noise_mode=noise_mode)
        out.append((img.float() * 127.5 + 128).clamp(0, 255).to(torch.uint8)
                   .permute(0, 2, 3, 1).cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, G.img_resolution, G.img_resolution, 3), np.uint8)


def real_images(folder: Any, n: int, seed: int = 0) -> np.ndarray:
    """Up to ``n`` images of an :class:`~studio.train.data.ImageFolder` (a seeded choice)."""
    rng = np.random.default_rng([int(seed), 0xFD])
    idx = rng.permutation(len(folder))[: min(n, len(folder))]
    return folder.images(np.sort(idx))


# --------------------------------------------------------------------------- Inception


def find_inception_weights(explicit: str | os.PathLike[str] | None = None) -> Path | None:
    """pytorch-fid's Inception weights: ``explicit``, else one in the models folders."""
    if explicit:
        return Path(explicit)
    from studio.core.paths import shipped_models_dir, user_models_dir

    for folder in (user_models_dir(), shipped_models_dir()):
        for sub in (folder, folder / "metrics"):
            hits = sorted(sub.glob(INCEPTION_GLOB)) if sub.is_dir() else []
            if hits:
                return hits[-1]
    return None


# --------------------------------------------------------------------------- report


def evaluate(real: np.ndarray, fake: np.ndarray, *, k: int = 3, inception: str | Path | None = None,
             device: str | torch.device = "cpu") -> dict[str, float]:
    """All metrics of ``fake`` (uint8 NHWC) against ``real``: ``fd`` (random features),
    ``precision``, ``recall`` and, with Inception weights, ``fid``."""
    extractor = RandomFeatures().to(device)
    fr = compute_features(real, extractor, device=device)
    ff = compute_features(fake, extractor, device=device)
    out = {"fd": fd_from_features(fr, ff)}
    out["precision"], out["recall"] = precision_recall(fr, ff, k=k)
    path = find_inception_weights(inception)
    if path is not None:
        from studio.train.inception import load_fid_inception

        net = load_fid_inception(path).to(device)
        out["fid"] = fd_from_features(compute_features(real, net, device=device),
                                      compute_features(fake, net, device=device))
    return out
