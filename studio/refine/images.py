"""Image helpers shared by the refiners: uint8 HxWx3 arrays in and out, resizing, masks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from studio.core.errors import FileFormatError, StudioError

MAX_IMAGE_BYTES = 256 * 1024 * 1024
MAX_SIDE = 4096


def check_image(image: np.ndarray, what: str = "image") -> np.ndarray:
    """An HxWx3 uint8 array (RGBA loses alpha, greyscale is repeated)."""
    a = np.asarray(image)
    if a.ndim == 2:
        a = np.repeat(a[..., None], 3, axis=2)
    if a.ndim != 3 or a.shape[2] not in (3, 4) or a.dtype != np.uint8:
        raise StudioError(f"{what}: expected an HxWx3 uint8 image, got {a.shape} {a.dtype}")
    if min(a.shape[:2]) < 8 or max(a.shape[:2]) > MAX_SIDE:
        raise StudioError(f"{what}: {a.shape[1]}x{a.shape[0]} px is outside 8..{MAX_SIDE} px")
    return np.ascontiguousarray(a[..., :3])


def read_image(path: str | Path) -> np.ndarray:
    """Read a PNG/JPEG as HxWx3 uint8; FileFormatError naming the file otherwise."""
    from PIL import Image, UnidentifiedImageError

    from studio.core.files import check_regular_file

    p = Path(path)
    check_regular_file(p, MAX_IMAGE_BYTES, what="image")
    try:
        with Image.open(p) as im:
            if max(im.size) > MAX_SIDE:
                raise FileFormatError(f"{im.size[0]}x{im.size[1]} px is larger than "
                                      f"{MAX_SIDE} px", p)
            return np.asarray(im.convert("RGB"), dtype=np.uint8).copy()
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise FileFormatError(f"not a readable image ({exc})", p) from None


def read_mask(path: str | Path, size: tuple[int, int]) -> np.ndarray:
    """A greyscale mask (white = refine) as float32 HxW in [0, 1], resized to ``size`` (h, w)."""
    from PIL import Image

    img = read_image(path)
    m = Image.fromarray(img).convert("L").resize((size[1], size[0]), Image.BILINEAR)
    return np.asarray(m, dtype=np.float32) / 255.0


def write_png(path: str | Path, image: np.ndarray) -> None:
    """Write atomically (a temp file renamed), so a cancelled run leaves no partial file."""
    import io

    from PIL import Image

    from studio.core.atomic import atomic_write_bytes

    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG")
    atomic_write_bytes(path, buf.getvalue())


def to_tensor(image: np.ndarray) -> torch.Tensor:
    """uint8 HxWx3 -> float 1x3xHxW in [-1, 1]."""
    t = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None].float()
    return t / 127.5 - 1.0


def to_image(t: torch.Tensor) -> np.ndarray:
    """float 1x3xHxW in [-1, 1] -> uint8 HxWx3 (rounded, clipped)."""
    x = ((t[0].float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return x.permute(1, 2, 0).contiguous().numpy()


def resize_tensor(t: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bicubic (antialiased when shrinking) resize of an NCHW tensor to ``size`` (h, w)."""
    if tuple(t.shape[-2:]) == tuple(size):
        return t
    shrink = size[0] < t.shape[-2] or size[1] < t.shape[-1]
    return F.interpolate(t, size=size, mode="bicubic", align_corners=False, antialias=shrink)


def resize_image(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """The input resized to ``size`` (h, w): what strength 0 returns."""
    if image.shape[:2] == tuple(size):
        return image.copy()
    return to_image(resize_tensor(to_tensor(image), size))


def feather(mask: np.ndarray, radius: float) -> np.ndarray:
    """Soften a mask's edge with a Gaussian of ``radius`` px (sigma = radius / 2)."""
    m = np.clip(np.asarray(mask, dtype=np.float32), 0.0, 1.0)
    if radius <= 0:
        return m
    sigma = radius / 2.0
    r = int(np.ceil(3 * sigma))
    x = torch.arange(-r, r + 1, dtype=torch.float32)
    k = torch.exp(-0.5 * (x / sigma) ** 2)
    k = k / k.sum()
    t = torch.from_numpy(m)[None, None]
    t = F.pad(t, (r, r, r, r), mode="replicate")
    t = F.conv2d(t, k.view(1, 1, 1, -1))
    t = F.conv2d(t, k.view(1, 1, -1, 1))
    return t[0, 0].numpy()


def composite(refined: np.ndarray, base: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``mask`` x refined + (1 - mask) x base, in uint8."""
    m = mask[..., None].astype(np.float32)
    out = refined.astype(np.float32) * m + base.astype(np.float32) * (1 - m)
    return np.clip(np.round(out), 0, 255).astype(np.uint8)
