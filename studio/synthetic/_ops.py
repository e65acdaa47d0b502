"""Small batched building blocks of the renderer: coverage, SDF shapes, hashed noise.

Per-pixel fields are float32 tensors of shape (B, H, W); per-face values are (B, 1, 1).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch
from torch import Tensor


def clamp01(x: Tensor) -> Tensor:
    return x.clamp(0.0, 1.0)


def mix(a, b, t):
    return a + (b - a) * t


def smoothstep(e0, e1, x: Tensor) -> Tensor:
    t = ((x - e0) / (e1 - e0)).clamp(0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def fwidth(f: Tensor) -> Tensor:
    """|df/dx| + |df/dy| per pixel from forward differences (edge pixels repeat)."""
    dx = torch.zeros_like(f)
    dy = torch.zeros_like(f)
    dx[..., :, :-1] = (f[..., :, 1:] - f[..., :, :-1]).abs()
    dx[..., :, -1] = dx[..., :, -2]
    dy[..., :-1, :] = (f[..., 1:, :] - f[..., :-1, :]).abs()
    dy[..., -1, :] = dy[..., -2, :]
    return dx + dy


def grad(f: Tensor, step: float) -> tuple[Tensor, Tensor]:
    """Central-difference gradient (d/dx, d/dy) of a (B, H, W) field, ``step`` = pixel size."""
    gx = torch.zeros_like(f)
    gy = torch.zeros_like(f)
    gx[..., :, 1:-1] = (f[..., :, 2:] - f[..., :, :-2]) * (0.5 / step)
    gy[..., 1:-1, :] = (f[..., 2:, :] - f[..., :-2, :]) * (0.5 / step)
    return gx, gy


def cover(d: Tensor, width, soft=0.0) -> Tensor:
    """Coverage of the region ``d < 0`` with an anti-aliased edge ``width`` (+ ``soft``) wide."""
    return (0.5 - d / (width + soft)).clamp(0.0, 1.0)


def sd_ellipse(x: Tensor, y: Tensor, rx, ry) -> Tensor:
    """Approximate signed distance to an axis-aligned ellipse (exact on the axes)."""
    k0 = torch.sqrt((x / rx) ** 2 + (y / ry) ** 2)
    k1 = torch.sqrt((x / (rx * rx)) ** 2 + (y / (ry * ry)) ** 2)
    return k0 * (k0 - 1.0) / (k1 + 1e-6)


def sd_circle(x: Tensor, y: Tensor, r) -> Tensor:
    return torch.sqrt(x * x + y * y) - r


def sd_round_box(x: Tensor, y: Tensor, hx, hy, r) -> Tensor:
    qx = x.abs() - hx + r
    qy = y.abs() - hy + r
    outside = torch.sqrt(qx.clamp(min=0) ** 2 + qy.clamp(min=0) ** 2)
    return outside + torch.minimum(torch.maximum(qx, qy), torch.zeros_like(qx)) - r


def sd_segment(x: Tensor, y: Tensor, ax, ay, bx, by) -> tuple[Tensor, Tensor]:
    """Distance to the segment a-b and the parameter t in [0, 1] of the closest point."""
    px, py = x - ax, y - ay
    vx, vy = bx - ax, by - ay
    t = ((px * vx + py * vy) / (vx * vx + vy * vy + 1e-9)).clamp(0.0, 1.0)
    dx, dy = px - vx * t, py - vy * t
    return torch.sqrt(dx * dx + dy * dy), t


def smin(a: Tensor, b: Tensor, k: float) -> Tensor:
    """Smooth minimum (polynomial), blend radius ``k``."""
    h = (0.5 + 0.5 * (b - a) / k).clamp(0.0, 1.0)
    return mix(b, a, h) - k * h * (1.0 - h)


def smax(a: Tensor, b: Tensor, k: float) -> Tensor:
    return -smin(-a, -b, k)


def rotate(x: Tensor, y: Tensor, cos, sin) -> tuple[Tensor, Tensor]:
    return x * cos - y * sin, x * sin + y * cos


def nexp(x: Tensor) -> Tensor:
    """exp of a (mostly negative) field, clamped so it never takes the slow denormal path."""
    return torch.exp(x.clamp(min=-60.0))


def gauss(x: Tensor, y: Tensor, sx, sy) -> Tensor:
    return nexp(-((x / sx) ** 2) - (y / sy) ** 2)


# --- value noise from per-face random tables ------------------------------------------------

TABLE = 65536
_ROW = 317.0  # lattice row stride inside the table


class Noise:
    """Value noise for a batch: one table of random numbers per face, made from that face's
    seed alone, so a face's noise does not depend on the batch it is rendered in.

    Lattice points index the table with exact float arithmetic (integers below 2**24), so
    the results are bit-identical whatever the batch size or thread count.
    """

    def __init__(self, seeds, device=None) -> None:
        tabs = [np.random.default_rng(int(s) + 0x5EED).random(TABLE, dtype=np.float32) for s in seeds]
        self.table = torch.from_numpy(np.stack(tabs)).to(device or torch.get_default_device())
        self.batch = len(tabs)

    def subset(self, idx: Tensor) -> Noise:
        out = Noise.__new__(Noise)
        out.table = self.table[idx]
        out.batch = out.table.shape[0]
        return out

    def at(self, ix: Tensor, iy: Tensor | float = 0.0, salt: int = 0) -> Tensor:
        """Table values at integer-valued float lattice coordinates."""
        idx = torch.remainder(ix + iy * _ROW + float(salt * 7919), float(TABLE)).to(torch.int64)
        shape = idx.shape
        return self.table.gather(1, idx.reshape(self.batch, -1)).reshape(shape)

    def noise1(self, x: Tensor, salt: int = 0) -> Tensor:
        """Smooth 1-D value noise in [0, 1] with unit lattice spacing."""
        f0 = torch.floor(x)
        t = x - f0
        t = t * t * (3.0 - 2.0 * t)
        a = self.at(f0, 0.0, salt)
        b = self.at(f0 + 1.0, 0.0, salt)
        return a + (b - a) * t

    def noise2(self, x: Tensor, y: Tensor, salt: int = 0) -> Tensor:
        """Smooth 2-D value noise in [0, 1] with unit lattice spacing."""
        fx = torch.floor(x)
        fy = torch.floor(y)
        tx = x - fx
        ty = y - fy
        tx = tx * tx * (3.0 - 2.0 * tx)
        ty = ty * ty * (3.0 - 2.0 * ty)
        a = self.at(fx, fy, salt)
        b = self.at(fx + 1.0, fy, salt)
        c = self.at(fx, fy + 1.0, salt)
        d = self.at(fx + 1.0, fy + 1.0, salt)
        top = a + (b - a) * tx
        bot = c + (d - c) * tx
        return top + (bot - top) * ty

    def cells(self, x: Tensor, y: Tensor, salt: int = 0):
        """Per unit cell: (x - cell x, y - cell y, random a, random b, random c)."""
        fx = torch.floor(x)
        fy = torch.floor(y)
        return (x - fx, y - fy, self.at(fx, fy, salt), self.at(fx, fy, salt + 1),
                self.at(fx, fy, salt + 2))

    def dots(self, x: Tensor, y: Tensor, salt: int, radius: float, density: float) -> Tensor:
        """Soft dots, at most one per unit cell at a random place: 1 at a dot centre."""
        rx, ry, ox, oy, on = self.cells(x, y, salt)
        d2 = (rx - 0.25 - 0.5 * ox) ** 2 + (ry - 0.25 - 0.5 * oy) ** 2
        return (on < density).to(torch.float32) * (1.0 - d2 / (radius * radius)).clamp(0.0, 1.0)


def take(obj, idx: Tensor, batch: int):
    """Select faces ``idx`` from tensors with a leading batch dimension of ``batch`` (inside
    tuples, lists, dicts and dataclasses too); everything else is passed through."""
    if isinstance(obj, Tensor):
        return obj[idx] if obj.dim() > 0 and obj.shape[0] == batch else obj
    if hasattr(obj, "subset") and not isinstance(obj, type):  # Noise, HairStyle
        return obj.subset(idx)
    if isinstance(obj, tuple | list):
        return type(obj)(take(o, idx, batch) for o in obj)
    if isinstance(obj, dict):
        return {k: take(v, idx, batch) for k, v in obj.items()}
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return dataclasses.replace(obj, **{f.name: take(getattr(obj, f.name), idx, batch)
                                           for f in dataclasses.fields(obj) if f.init})
    return obj


def fade_octave(period_units, px: float, lo: float = 1.5, hi: float = 4.0) -> float:
    """Weight of a noise octave whose period (in image units) spans ``period/px`` pixels:
    0 below ``lo`` pixels (it would alias), 1 above ``hi``."""
    p = period_units / px
    t = min(max((p - lo) / (hi - lo), 0.0), 1.0)
    return t * t * (3.0 - 2.0 * t)
