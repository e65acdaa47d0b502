"""Training pairs for the pixel-space refiner: (low-res condition, crisp target).

Two sources, one pool:

- ``renderer``: for random procedural-renderer parameters p, the target is
  ``render_faces(p, input_size x scale)`` and the condition is the default face GAN's
  rendering of its parameter encoder's w for p (so the refiner learns to turn *GAN* frames
  into crisp ones, not merely to upsample);
- ``folder``: the user's images (fine-tuning): the target is the image, the condition its
  box-downsampled copy.

Mild degradations (blur, noise, a small colour shift) are drawn afresh for every batch, so the
refiner also serves frames the GAN made from latents outside the encoder's reach.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from studio.core.errors import StudioError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")


class PairPool:
    """Ring buffer of (condition uint8 NHWC at input size, target uint8 NHWC at output size)."""

    def __init__(self, capacity: int, input_size: int, scale: int) -> None:
        self.cond = torch.zeros(capacity, input_size, input_size, 3, dtype=torch.uint8)
        out = input_size * scale
        self.target = torch.zeros(capacity, out, out, 3, dtype=torch.uint8)
        self.count = 0
        self.head = 0

    def add(self, cond: np.ndarray | torch.Tensor, target: np.ndarray | torch.Tensor) -> None:
        for c, t in zip(torch.as_tensor(cond), torch.as_tensor(target), strict=True):
            self.cond[self.head] = c
            self.target[self.head] = t
            self.head = (self.head + 1) % len(self.cond)
            self.count = min(self.count + 1, len(self.cond))

    def sample(self, n: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """(cond, target) as float NCHW in [-1, 1]."""
        if self.count == 0:
            raise StudioError("the training pool is empty")
        idx = torch.randint(0, self.count, (n,), generator=gen)
        f = lambda x: x[idx].permute(0, 3, 1, 2).float() / 127.5 - 1.0  # noqa: E731
        return f(self.cond), f(self.target)


def degrade(cond: torch.Tensor, amount: float, gen: torch.Generator) -> torch.Tensor:
    """Per image: a random blur (blend towards a 3-tap binomial blur), Gaussian noise and a
    small brightness/colour shift; ``amount`` 0 leaves the batch as it is."""
    if amount <= 0:
        return cond
    n = cond.shape[0]
    k = torch.tensor([0.25, 0.5, 0.25])
    blurred = F.conv2d(F.pad(cond, (1, 1, 1, 1), mode="replicate"),
                       (k[:, None] * k[None, :]).expand(3, 1, 3, 3), groups=3)
    a = torch.rand(n, 1, 1, 1, generator=gen) * amount
    x = cond * (1 - a) + blurred * a
    sigma = torch.rand(n, 1, 1, 1, generator=gen) * 0.04 * amount
    x = x + torch.randn(x.shape, generator=gen) * sigma
    shift = (torch.rand(n, 3, 1, 1, generator=gen) - 0.5) * 0.06 * amount
    return (x + shift).clamp(-1, 1)


def upsample(cond: torch.Tensor, size: int) -> torch.Tensor:
    return F.interpolate(cond, size=(size, size), mode="bicubic", align_corners=False).clamp(-1, 1)


def random_patches(cond_up: torch.Tensor, target: torch.Tensor, patch: int,
                   gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """The same random ``patch`` crop of each (condition, target) pair."""
    size = target.shape[-1]
    if patch >= size:
        return cond_up, target
    ys = torch.randint(0, size - patch + 1, (target.shape[0],), generator=gen).tolist()
    xs = torch.randint(0, size - patch + 1, (target.shape[0],), generator=gen).tolist()
    c = torch.stack([cond_up[i, :, y:y + patch, x:x + patch] for i, (y, x) in enumerate(zip(ys, xs, strict=True))])
    t = torch.stack([target[i, :, y:y + patch, x:x + patch] for i, (y, x) in enumerate(zip(ys, xs, strict=True))])
    return c, t


class GanPairMaker:
    """Conditions from the face GAN through the parameter encoder: GAN(E(p))."""

    def __init__(self, face_model: str | Path, encoder: str | Path, bf16: bool = True) -> None:
        from studio.face.model_file import load_face_model
        from studio.train.controls_fit import load_encoder

        self.G = load_face_model(face_model).G.eval().requires_grad_(False)
        self.E, self.encoder_info = load_encoder(encoder, self.G.w_dim)
        self.E.eval().requires_grad_(False)
        self.bf16 = bf16
        self.resolution = self.G.img_resolution

    @torch.no_grad()
    def conditions(self, vecs: np.ndarray, size: int) -> np.ndarray:
        w = self.E(torch.from_numpy(np.asarray(vecs, np.float32)))
        ws = w.unsqueeze(1).repeat(1, self.G.num_ws, 1)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16):
            img = self.G.synthesis(ws, noise_mode="const")
        img = img.float()
        if img.shape[-1] != size:
            img = F.interpolate(img, size=(size, size), mode="area" if img.shape[-1] > size
                                else "bicubic", align_corners=None if img.shape[-1] > size
                                else False)
        img = ((img.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
        return img.permute(0, 2, 3, 1).numpy()


def folder_pairs(folder: str | Path, input_size: int, scale: int,
                 limit: int = 10_000) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(conditions, targets, problems) from a folder of images (each resized to the output
    size, centre-cropped square; the condition is its box-downsampled copy). Unreadable files
    are skipped and named in ``problems``."""
    from PIL import Image

    from studio.refine.images import read_image

    folder = Path(folder)
    if not folder.is_dir():
        raise StudioError("training data folder not found", folder)
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)[:limit]
    out = input_size * scale
    conds, targets, problems = [], [], []
    for f in files:
        try:
            img = read_image(f)
        except StudioError as exc:
            problems.append(str(exc))
            continue
        h, w = img.shape[:2]
        s = min(h, w)
        img = img[(h - s) // 2:(h - s) // 2 + s, (w - s) // 2:(w - s) // 2 + s]
        t = np.asarray(Image.fromarray(img).resize((out, out), Image.BICUBIC))
        c = np.asarray(Image.fromarray(t).resize((input_size, input_size), Image.BOX))
        conds.append(c)
        targets.append(t)
    if not conds:
        raise StudioError(f"no readable images ({', '.join(IMAGE_SUFFIXES)}) in the folder",
                          folder)
    return np.stack(conds), np.stack(targets), problems


def describe(maker: Any) -> dict[str, Any]:
    return {"encoder": getattr(maker, "encoder_info", {})}
