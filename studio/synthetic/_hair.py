"""Hair: a shell around the skull with a hairline, plus a screen-space mass behind the head.

The shell is an ellipsoid a little larger than the head. Where a pixel ray meets the shell
above the style's hairline (a smooth function of the azimuth around the head) it shows
hair; through the face opening it shows the skin underneath. The back of the shell, seen
from inside, fills the hair beside the cheeks. Long, bob, curly and bun styles add a mass
behind the head drawn in the rolled screen frame.
"""

from __future__ import annotations

import copy
import math

import torch
from torch import Tensor

from studio.synthetic._geometry import HEAD_B_BOT, HEAD_B_TOP, HEAD_C, HEAD_MID
from studio.synthetic._ops import Noise, clamp01, fade_octave, smin, smoothstep, take

BALD, SHORT, LONG, BOB, BUN, CURLY = range(6)

# Hairline: local y above which the shell holds hair, at these azimuths (radians from the
# front). Rows follow the style order.
KNOTS = (0.0, 0.45, 0.9, 1.3, 1.75, math.pi)
HAIRLINES = (
    (-3.0, -3.0, -3.0, -3.0, -3.0, -3.0),  # bald
    (-0.46, -0.43, -0.31, 0.0, -0.07, 0.55),  # short
    (-0.46, -0.43, -0.2, 0.85, 1.0, 1.0),  # long
    (-0.46, -0.43, -0.2, 0.5, 0.6, 0.6),  # bob
    (-0.48, -0.45, -0.33, -0.04, -0.1, 0.4),  # bun
    (-0.47, -0.42, -0.25, 0.3, 0.5, 0.7),  # curly
)
# (side, top, front) shell thickness and how much hair_volume adds to each.
THICKNESS = (
    (0.0, 0.0, 0.0, 0.0),
    (0.018, 0.06, 0.025, 0.05),
    (0.045, 0.07, 0.03, 0.06),
    (0.06, 0.08, 0.035, 0.06),
    (0.022, 0.035, 0.015, 0.02),
    (0.1, 0.13, 0.05, 0.14),
)
SHELL_MAX_Y = 0.78  # below this the mass behind the head takes over
LOCKS_PER_RADIAN = 12.0
CURLS_PER_UNIT = 14.0


class HairStyle:
    """Per-face hair constants as (B, 1, 1) tensors, from the categorical style."""

    def __init__(self, p: dict[str, Tensor], a: Tensor) -> None:
        style = p["hair_style"].round().long()
        self.style = style
        onehot = torch.stack([(style == i).to(torch.float32) for i in range(6)], 0)  # (6,B,1,1)
        knots = torch.tensor(HAIRLINES)  # (6, 6)
        values = (onehot[:, None] * knots[:, :, None, None, None]).sum(0)  # (knots, B, 1, 1)
        self.values = list(values.unbind(0))
        thick = torch.tensor(THICKNESS)
        th = (onehot[:, None] * thick[:, :, None, None, None]).sum(0)
        vol = p["hair_volume"]
        self.side = th[0] + th[3] * vol * torch.where(style == SHORT, 0.4, 1.0)
        self.top = th[1] + th[3] * vol * 1.3
        self.front = th[2] + 0.3 * th[3] * vol
        self.a = a
        self.has_hair = (style != BALD).to(torch.float32)
        self.fringe = p["fringe"].to(torch.float32) * self.has_hair
        self.part = p["hair_part"]
        self.curly = (style == CURLY).to(torch.float32)
        self.has_mass = (style == LONG) | (style == BOB) | (style == CURLY) | (style == BUN)
        self.length = p["hair_length"]
        self.volume = vol

    def subset(self, idx: Tensor) -> HairStyle:
        """The same constants for faces ``idx`` only."""
        out = copy.copy(self)
        batch = self.a.shape[0]
        for key, value in vars(self).items():
            setattr(out, key, take(value, idx, batch))
        return out

    def shell_axes(self):
        """(centre, x axis, z axis, straight part, dome height, lower height) of the shell."""
        centre = (torch.zeros_like(self.a), -0.02 + 0 * self.a, -0.03 + 0 * self.a)
        return (centre, self.a + self.side, HEAD_C + self.front, HEAD_MID - 0.02,
                HEAD_B_TOP + self.top, HEAD_B_BOT + self.side)

    def hairline(self, phi: Tensor, nz: Noise, lk=None) -> Tensor:
        """Local y of the hairline at azimuth ``phi`` (hair where y is smaller). ``lk``: the
        :func:`locks` of these pixels, when already computed."""
        ap = (phi - 0.16 * self.part).abs()
        h = self.values[0] + 0.0 * ap
        for i in range(len(KNOTS) - 1):
            h = h + (self.values[i + 1] - self.values[i]) * smoothstep(KNOTS[i], KNOTS[i + 1], ap)
        # a fringe hangs to just above the brows, slightly swept
        fringe_y = -0.19 + 0.05 * self.part * phi + 0.025 * (nz.noise1(phi * 9.0) - 0.5)
        fr = self.fringe * (1.0 - smoothstep(0.55, 1.0, ap))
        h = h + (torch.maximum(h, fringe_y) - h) * fr
        # the locks end in soft points
        _, frac, rnd = lk if lk is not None else locks(phi, 0.0 * phi, self, nz)
        tip = (1.0 - (2.0 * frac - 1.0).abs()) ** 3 * (0.4 + 1.2 * rnd)
        h = h + (0.007 + 0.025 * fr) * tip * self.has_hair * (1.0 - self.curly)
        h = h + 0.02 * self.curly * (nz.noise1(phi * 30.0, 2) - 0.5)
        return torch.minimum(h, torch.full_like(h, SHELL_MAX_Y))


def locks(phi: Tensor, y: Tensor, hs: HairStyle, nz: Noise, salt: int = 0):
    """Lock coordinate along the azimuth: (continuous index, fraction across, random 0..1)."""
    warp = 0.25 * (nz.noise1(y * 4.0 + 0.5 * phi, 4 + salt) - 0.5) + 0.06 * hs.part * (y + 0.4)
    u = (phi + warp) * LOCKS_PER_RADIAN
    fu = torch.floor(u)
    frac = u - fu
    rnd = nz.at(fu, 0.0, 31 + salt)
    return u, frac, rnd


def hair_texture(phi: Tensor, y: Tensor, hs: HairStyle, nz: Noise, px: float,
                 scale: float = 0.6, lk=None) -> tuple[Tensor, Tensor]:
    """Strand brightness (about 0.4 .. 1.2) and a highlight shift, on the shell or the back
    mass. ``scale``: head units per radian of ``phi`` (sets where detail would alias)."""
    lock_fade = fade_octave(scale / LOCKS_PER_RADIAN, px, 2.0, 5.0)
    strand_fade = fade_octave(scale / 90.0, px, 1.5, 3.0)
    u, frac, rnd = lk if lk is not None else locks(phi, y, hs, nz)
    profile = 4.0 * frac * (1.0 - frac)
    shape = 1.0 - lock_fade * (0.35 * (1.0 - profile) ** 2 + 0.2 * (rnd - 0.5))
    strands = nz.noise1(u * 7.5 + 3.0 * nz.noise1(y * 9.0, 5), 6)
    straight = shape * (1.0 + 0.35 * strand_fade * (strands - 0.5))
    shift = lock_fade * (0.25 * (profile - 0.5) + 0.35 * (rnd - 0.5)) + 0.1 * strand_fade * (strands - 0.5)
    ci = torch.nonzero(hs.curly.reshape(-1) > 0).reshape(-1)
    if len(ci):  # curls only for the curly-haired faces
        nzc = nz.subset(ci)
        cu = phi[ci] * scale * CURLS_PER_UNIT
        cv = y[ci] * CURLS_PER_UNIT
        bumps = torch.maximum(_coils(cu, cv, nzc, 7), _coils(cu + 0.5, cv + 0.37, nzc, 9))
        curl_fade = fade_octave(1.0 / CURLS_PER_UNIT, px, 2.5, 6.0)
        straight = straight.clone()
        shift = shift.clone()
        straight[ci] = 0.8 + curl_fade * (0.7 * bumps - 0.35)
        shift[ci] = curl_fade * 0.4 * (bumps - 0.5)
    return straight, shift


def _coils(u: Tensor, v: Tensor, nz: Noise, salt: int) -> Tensor:
    """One shaded coil (a small lit bump) per unit cell, at a random place: 0 .. 1."""
    rx, ry, ox, oy, rr = nz.cells(u, v, salt)
    dx = rx - 0.25 - 0.5 * ox
    dy = ry - 0.25 - 0.5 * oy
    r = 0.42 + 0.25 * rr
    blob = clamp01(1.0 - (dx * dx + dy * dy) / (r * r))
    return torch.sqrt(blob) * clamp01(0.75 - 0.55 * (dx + dy) / r)


def back_mass(X: Tensor, Y: Tensor, hs: HairStyle, bun_xy: Tensor, nz: Noise) -> tuple[Tensor, Tensor]:
    """Screen-space hair mass behind the head. X, Y: un-rolled screen coordinates relative
    to the projected head centre. Returns (signed distance, fake normal's x)."""
    a = hs.a + hs.side
    big = torch.full_like(X, 9.0)
    style = hs.style
    # long: a rounded cap flowing into a slightly flaring sheet
    top = torch.sqrt(X * X + (Y + 0.05) ** 2) - (a + 0.01)
    end = 0.72 + 0.6 * hs.length
    half = a - 0.03 + 0.14 * (Y - 0.05).clamp(min=0)
    tips = 0.06 * nz.noise1(X * 30.0, 12)
    sheet = torch.maximum(X.abs() - half, torch.maximum(-0.05 - Y, Y - end + tips))
    d_long = smin(top, sheet, 0.06)
    # bob: shorter, fuller, rounded ends
    half_b = a + 0.0 + 0.05 * hs.volume
    end_b = 0.5 + 0.12 * hs.length
    bx = (X.abs() - (half_b - 0.12)).clamp(min=0)
    by = (Y - (end_b - 0.12)).clamp(min=0)
    bob_round = torch.sqrt(bx * bx + by * by) - 0.12
    d_bob = smin(top, torch.maximum(bob_round, -0.05 - Y), 0.05)
    # curly: a round cloud with a scalloped edge
    cy0 = -0.12
    ang = torch.atan2(X, -(Y - cy0))
    rx = a + 0.15 + 0.1 * hs.volume
    ry = 0.78 + 0.1 * hs.volume + 0.1 * hs.length
    er = torch.sqrt((X / rx) ** 2 + ((Y - cy0) / ry) ** 2)
    d_curly = (er - 1.0) * torch.minimum(rx, ry) + 0.035 * scallop(ang, 26.0, nz, 13)
    # bun: a ball on the top of the head
    bx2 = X - bun_xy[:, 0, None, None]
    by2 = Y - bun_xy[:, 1, None, None]
    d_bun = torch.sqrt(bx2 * bx2 + by2 * by2) - (0.17 + 0.06 * hs.volume)
    d = torch.where(style == LONG, d_long, big)
    d = torch.where(style == BOB, d_bob, d)
    d = torch.where(style == CURLY, d_curly, d)
    d = torch.where(style == BUN, d_bun, d)
    nx = torch.where(style == BUN, bx2 / 0.2, X / (a + 0.1)).clamp(-1, 1)
    return d, nx


def shade_hair(base: Tensor, tex: Tensor, shift: Tensor, n, t, light) -> Tensor:
    """Diffuse + Kajiya-Kay strand highlight. ``n``/``t``: camera normal and strand
    tangent (three fields each); ``light``: dict of per-face light vectors."""
    nx, ny, nz = n
    L = light["dir"]
    ndl = nx * L[0] + ny * L[1] + nz * L[2]
    diff = clamp01((ndl + 0.3) / 1.3)
    hx, hy, hz = light["half"]
    tdh = t[0] * hx + t[1] * hy + t[2] * hz + shift
    sin_th = torch.sqrt(clamp01(1.0 - tdh * tdh))
    s2 = sin_th * sin_th
    s8 = (s2 * s2) ** 2
    spec = (s8 * s8) ** 2 * s8 * clamp01(ndl + 0.4)  # sin^40
    sky = 0.8 + 0.2 * (-ny)
    col = base * tex[:, None]
    out = col * (light["amb"] * sky[:, None] + light["key"] * diff[:, None])
    out = out + light["key"] * (0.6 * col + 0.12) * spec[:, None]
    return out


def bun_centre():
    return torch.tensor([0.0, -0.86, -0.3])


def hair_ao_on_skin(y_skin: Tensor, hairline: Tensor, hs: HairStyle) -> Tensor:
    """Contact shadow on the skin just below the hairline."""
    d = y_skin - hairline
    return 1.0 - 0.4 * hs.has_hair * smoothstep(0.07, 0.0, d)


def part_line(phi: Tensor, y: Tensor, hairline: Tensor, hs: HairStyle, px: float) -> Tensor:
    """Darkening along the parting, from the hairline back over the top."""
    has = ((hs.style == SHORT) | (hs.style == LONG) | (hs.style == BOB)).to(torch.float32)
    has = has * (1.0 - hs.fringe)
    phi_p = 0.32 * hs.part
    width = 0.012 + px
    d = ((phi - phi_p) * 0.6).abs()
    line = clamp01(1.0 - d / width) * smoothstep(-0.02, -0.08, y - hairline) * smoothstep(-0.3, -0.55, y)
    return 1.0 - 0.45 * line * has


def scallop(ang: Tensor, lobes_per_radian: float, nz: Noise, salt: int) -> Tensor:
    """0 at the crest of round lobes along an angle, up to 1 in the notches between them."""
    u = ang * lobes_per_radian / 6.2832 + 0.4 * nz.noise1(ang * 3.0, salt)
    frac = u - torch.floor(u)
    return 1.0 - torch.sqrt(clamp01(1.0 - (2.0 * frac - 1.0) ** 2))
