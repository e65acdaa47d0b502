"""Head geometry and pose: the camera, rays into the head frame, ellipsoid hits, landmarks.

Screen coordinates run from -1 to 1 across the image (x right, y down). The head frame has
its origin between the eyes' centres, x to the subject's left (image right when frontal),
y down and z towards the camera. A head point P lands on the screen at
``O + (R P).xy - delta`` where ``R = Rx(pitch) @ Ry(yaw)``, ``O`` is the eyes' midpoint of
the frontal layout and ``delta`` keeps the FFHQ crop centre (the eyes' midpoint moved a
tenth of the way to the mouth) fixed when the head turns, as FFHQ alignment would.
``head_roll`` then rotates the whole image plane about the image centre.

The layout follows the FFHQ alignment recipe: with eye distance e and eye-to-mouth
distance m (fractions of the crop side), the side is ``2 * max(2e, 1.8m)`` and the centre
is ``eye_mid + 0.1 * eye_to_mouth``. Our frontal neutral face has e = 0.235 and m = 0.278,
so the eyes sit at 47.2 % of the height, 23.5 % of the width apart, the mouth at 75 %.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

# Frontal layout, in screen units (the image spans 2 units).
EYE_DIST = 0.47  # 23.5 % of the width
EYE_Y = -0.0556  # 47.2 % of the height
MOUTH_Y = 0.5556  # local y of the mouth-corner line (75 % of the height)
EYE_X = EYE_DIST / 2

# Head-frame constants.
HEAD_MID = 0.3  # the straight part of the skull above the eye line
HEAD_B_TOP = 0.52  # the dome above it (skull top at y = -0.82)
HEAD_B_BOT = 1.25  # below (the jaw shape cuts the chin)
HEAD_C = 0.58  # depth: the face front is at z = HEAD_C
CENTRE_POINT_Z = 0.5


def rotation(yaw_deg: Tensor, pitch_deg: Tensor) -> Tensor:
    """(B, 3, 3) camera-from-head rotation ``Rx(pitch) @ Ry(yaw)`` (y down, z to camera)."""
    yaw = torch.deg2rad(yaw_deg.reshape(-1).to(torch.float64))
    pitch = torch.deg2rad(pitch_deg.reshape(-1).to(torch.float64))
    cy, sy = torch.cos(yaw), torch.sin(yaw)
    cp, sp = torch.cos(pitch), torch.sin(pitch)
    zero, one = torch.zeros_like(cy), torch.ones_like(cy)
    ry = torch.stack([cy, zero, sy, zero, one, zero, -sy, zero, cy], 1).reshape(-1, 3, 3)
    rx = torch.stack([one, zero, zero, zero, cp, -sp, zero, sp, cp], 1).reshape(-1, 3, 3)
    return (rx @ ry).to(torch.float32)


@dataclass
class Camera:
    """Per-face pose, shared by every layer of one batch."""

    R: Tensor  # (B, 3, 3) camera from head
    delta: Tensor  # (B, 2) recentring shift
    roll_cos: Tensor  # (B, 1, 1)
    roll_sin: Tensor
    origin: tuple[float, float] = (0.0, EYE_Y)

    @classmethod
    def from_params(cls, yaw: Tensor, pitch: Tensor, roll: Tensor) -> Camera:
        R = rotation(yaw, pitch)
        pc = torch.tensor([0.0, 0.1 * MOUTH_Y, CENTRE_POINT_Z])
        delta = (R @ pc)[:, :2] - pc[:2]
        r = torch.deg2rad(roll.reshape(-1, 1, 1).to(torch.float32))
        return cls(R, delta, torch.cos(r), torch.sin(r))

    @property
    def view(self) -> Tensor:
        """(B, 3) the direction towards the camera in the head frame (R^T z)."""
        return self.R[:, 2, :]

    def unroll(self, u: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        """Screen grid -> screen coordinates of the un-rolled head (roll about the centre)."""
        c, s = self.roll_cos, self.roll_sin
        return u * c + v * s, -u * s + v * c

    def ray_origin(self, uu: Tensor, vv: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Head-frame origins (on the plane through the head origin) of the pixel rays."""
        qx = uu - self.origin[0] + self.delta[:, 0, None, None]
        qy = vv - self.origin[1] + self.delta[:, 1, None, None]
        R = self.R
        ox = R[:, 0, 0, None, None] * qx + R[:, 1, 0, None, None] * qy
        oy = R[:, 0, 1, None, None] * qx + R[:, 1, 1, None, None] * qy
        oz = R[:, 0, 2, None, None] * qx + R[:, 1, 2, None, None] * qy
        return ox, oy, oz

    def project_unrolled(self, pts: Tensor) -> Tensor:
        """Head-frame points (B, K, 3) -> un-rolled screen points (B, K, 2)."""
        cam = pts @ self.R.transpose(1, 2)
        x = cam[..., 0] + self.origin[0] - self.delta[:, 0:1]
        y = cam[..., 1] + self.origin[1] - self.delta[:, 1:2]
        return torch.stack([x, y], -1)

    def project(self, pts: Tensor) -> Tensor:
        """Head-frame points (B, K, 3) -> screen points (B, K, 2) of the final image."""
        xy = self.project_unrolled(pts)
        c, s = self.roll_cos[:, 0], self.roll_sin[:, 0]
        x, y = xy[..., 0], xy[..., 1]
        return torch.stack([x * c - y * s, x * s + y * c], -1)

    def depth(self, pts: Tensor) -> Tensor:
        """Camera-space depth (towards the camera) of head-frame points (B, K, 3)."""
        return (pts @ self.R.transpose(1, 2))[..., 2]


@dataclass
class Hit:
    """Where the pixel rays meet an ellipsoid: front point, ray parameters, coverage field."""

    x: Tensor
    y: Tensor
    z: Tensor
    s_front: Tensor  # ray parameter (larger = nearer the camera)
    s_back: Tensor
    disc: Tensor  # > 0 inside the silhouette (a smooth field for anti-aliasing)


def hit_ellipsoid(o, k: Tensor, centre, axes) -> Hit:
    """Intersect rays ``o + s k`` (o: three (B,H,W) fields, k: (B, 3)) with ellipsoids.

    ``centre`` and ``axes``: sequences of three per-face (B, 1, 1) tensors or floats.
    """
    ox, oy, oz = o
    kx, ky, kz = (k[:, i, None, None] for i in range(3))
    cx, cy, cz = centre
    ax, ay, az = axes
    dx, dy, dz = (ox - cx) / ax, (oy - cy) / ay, (oz - cz) / az
    ex, ey, ez = kx / ax, ky / ay, kz / az
    a = ex * ex + ey * ey + ez * ez
    b = dx * ex + dy * ey + dz * ez
    c = dx * dx + dy * dy + dz * dz - 1.0
    disc = b * b - a * c
    root = torch.sqrt(disc.clamp(min=0.0))
    s_front = (-b + root) / a
    s_back = (-b - root) / a
    x = ox + kx * s_front
    y = oy + ky * s_front
    z = oz + kz * s_front
    return Hit(x, y, z, s_front, s_back, disc / a)


def _quadric_hit(o, k, centre, inv2, cyl: bool):
    """Front/back ray parameters and discriminant for an axis-aligned ellipsoid (or an
    elliptic cylinder along y when ``cyl``). ``inv2``: per-axis 1/axis^2."""
    ox, oy, oz = o
    kx, ky, kz = (k[:, i, None, None] for i in range(3))
    dx, dy, dz = ox - centre[0], oy - centre[1], oz - centre[2]
    ix, iy, iz = inv2
    a = kx * kx * ix + kz * kz * iz
    b = dx * kx * ix + dz * kz * iz
    c = dx * dx * ix + dz * dz * iz - 1.0
    if not cyl:
        a = a + ky * ky * iy
        b = b + dy * ky * iy
        c = c + dy * dy * iy
    disc = b * b - a * c
    root = torch.sqrt(disc.clamp(min=0.0))
    return (-b + root) / a, (-b - root) / a, disc / a


@dataclass
class CapsuleHit(Hit):
    nx: Tensor  # head-frame normal (unit)
    ny: Tensor
    nz: Tensor
    back_y: Tensor


def hit_capsule(o, k: Tensor, centre, ax, az, mid, b_top, b_bot) -> CapsuleHit:
    """Rays against a rounded head: an elliptic cylinder (axes ax, az) from
    ``centre_y - mid`` to ``centre_y``, capped by half-ellipsoids of height ``b_top`` above
    and ``b_bot`` below. Returns the front hit, its head-frame normal and the back hit's y."""
    cx, cy, cz = centre
    ox, oy, oz = o
    kx, ky, kz = (k[:, i, None, None] for i in range(3))
    ia, ic = 1.0 / (ax * ax), 1.0 / (az * az)
    it, ib = 1.0 / (b_top * b_top), 1.0 / (b_bot * b_bot)
    join = cy - mid
    top = _quadric_hit(o, k, (cx, join, cz), (ia, it, ic), False)
    cyl = _quadric_hit(o, k, centre, (ia, 0.0, ic), True)
    bot = _quadric_hit(o, k, centre, (ia, ib, ic), False)

    # each piece counts only inside its own height range; the one the ray meets (or comes
    # nearest to meeting, for a smooth anti-aliased edge) wins
    neg = torch.full_like(top[2], -1e9)
    yt, yc, yb = (oy + ky * piece[0] for piece in (top, cyl, bot))
    dt = torch.where(yt <= join, top[2], neg)
    dc = torch.where((yc > join) & (yc <= cy), cyl[2], neg)
    db = torch.where(yb > cy, bot[2], neg)
    use_top = dt >= torch.maximum(dc, db)
    use_cyl = (~use_top) & (dc >= db)
    y = torch.where(use_top, yt, torch.where(use_cyl, yc, yb))
    bt, bc, bb = (oy + ky * piece[1] for piece in (top, cyl, bot))
    back_y = torch.where(bt <= join, bt, torch.where(bc <= cy, bc, bb))

    def sel(a, b, c):
        return torch.where(use_top, a, torch.where(use_cyl, b, c))

    s_f = sel(top[0], cyl[0], bot[0])
    s_b = sel(top[1], cyl[1], bot[1])
    disc = sel(top[2], cyl[2], bot[2])
    x = ox + kx * s_f
    z = oz + kz * s_f
    nx = (x - cx) * ia
    nz = (z - cz) * ic
    ny = sel((y - join) * it, torch.zeros_like(y), (y - cy) * ib)
    inv = torch.rsqrt(nx * nx + ny * ny + nz * nz + 1e-12)
    return CapsuleHit(x, y, z, s_f, s_b, disc, nx * inv, ny * inv, nz * inv, back_y)


def ellipsoid_z(x, y, ax, ay, az):
    """Front surface depth of an axis-aligned ellipsoid centred at the origin."""
    r = 1.0 - (x / ax) ** 2 - (y / ay) ** 2
    return az * torch.sqrt(r.clamp(min=0.0)) if isinstance(r, Tensor) else az * math.sqrt(max(r, 0.0))


def plane_hit(o, k: Tensor, point: Tensor, normal: Tensor):
    """Ray-plane intersection; ``point``/``normal``: (B, 3). Returns (x, y, z, s)."""
    ox, oy, oz = o
    kx, ky, kz = (k[:, i, None, None] for i in range(3))
    nx, ny, nz = (normal[:, i, None, None] for i in range(3))
    px, py, pz = (point[:, i, None, None] for i in range(3))
    denom = kx * nx + ky * ny + kz * nz
    denom = torch.where(denom.abs() < 1e-4, torch.full_like(denom, 1e-4), denom)
    s = ((px - ox) * nx + (py - oy) * ny + (pz - oz) * nz) / denom
    return ox + kx * s, oy + ky * s, oz + kz * s, s
