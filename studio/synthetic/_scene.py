"""Everything around the face: light, background, neck and clothes, ears, glasses."""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

from studio.synthetic._geometry import EYE_X, HEAD_B_BOT, HEAD_C, Camera, plane_hit
from studio.synthetic._ops import (
    Noise,
    clamp01,
    cover,
    fwidth,
    mix,
    sd_round_box,
    sd_segment,
    smin,
    smoothstep,
)

HINGE_X = 0.45  # glasses hinges, just inside the head's half-width
SKIN_SRGB = np.array([
    (0.97, 0.84, 0.76), (0.93, 0.76, 0.65), (0.86, 0.65, 0.52), (0.75, 0.53, 0.39),
    (0.60, 0.40, 0.27), (0.43, 0.27, 0.18), (0.29, 0.18, 0.12),
])
LIP_SRGB = {"pink": (0.86, 0.42, 0.52), "red": (0.66, 0.07, 0.12), "berry": (0.45, 0.09, 0.22),
            "nude": (0.76, 0.52, 0.45)}
FRAME_SRGB = np.array([(0.035, 0.035, 0.04), (0.33, 0.18, 0.07), (0.80, 0.63, 0.28),
                       (0.74, 0.75, 0.78), (0.68, 0.07, 0.09), (0.10, 0.19, 0.55)])


def srgb_to_linear(c):
    c = np.clip(np.asarray(c, dtype=np.float64), 0.0, 1.0)
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def col(arr: np.ndarray) -> Tensor:
    """(B, 3) numpy -> (B, 3, 1, 1) float32 tensor."""
    t = torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32)).view(-1, 3, 1, 1)
    return t.to(torch.get_default_device())


def skin_srgb(tone: np.ndarray, undertone: np.ndarray) -> np.ndarray:
    t = np.clip(tone, 0, 1) * (len(SKIN_SRGB) - 1)
    i = np.minimum(np.floor(t).astype(int), len(SKIN_SRGB) - 2)
    f = (t - i)[:, None]
    rgb = SKIN_SRGB[i] * (1 - f) + SKIN_SRGB[i + 1] * f
    u = undertone[:, None]
    warm = np.array([0.01, 0.02, -0.035])
    cool = np.array([0.015, -0.025, 0.0])
    return np.clip(rgb + np.where(u > 0, u * warm, -u * cool) * (0.6 + rgb), 0, 1)


def lip_srgb(kind: np.ndarray, skin: np.ndarray) -> np.ndarray:
    natural = np.clip(skin * np.array([0.9, 0.6, 0.6]) + np.array([0.06, 0.0, 0.02]), 0, 1)
    out = natural.copy()
    for i, name in enumerate(("natural", "pink", "red", "berry", "nude")):
        if name in LIP_SRGB:
            m = kind == i
            out[m] = np.array(LIP_SRGB[name]) * 0.8 + natural[m] * 0.2
    return out


def make_light(p: dict[str, Tensor], cam: Camera, bg_lin: Tensor) -> dict[str, object]:
    """Key light direction (in the un-rolled head camera frame), colours and half vector."""
    az = torch.deg2rad(p["light_azimuth"])
    el = torch.deg2rad(p["light_elevation"])
    lx = torch.sin(az) * torch.cos(el)
    ly = -torch.sin(el)
    lz = torch.cos(az) * torch.cos(el)
    # into the un-rolled frame
    c, s = cam.roll_cos, cam.roll_sin
    lx, ly = lx * c + ly * s, -lx * s + ly * c
    hx, hy, hz = lx, ly, lz + 1.0
    hn = torch.sqrt(hx * hx + hy * hy + hz * hz)
    w = p["light_warmth"]
    tint = torch.cat([1.0 + 0.18 * w, 1.0 + 0.02 * w, 1.0 - 0.22 * w], 1)[:, :, None]  # (B,3,1,1)
    key = tint * p["light_intensity"][:, None] * 1.15
    amb = p["ambient"][:, None] * (0.75 + 0.25 * bg_lin / (bg_lin.mean(1, keepdim=True) + 0.05)).clamp(0.5, 1.5)
    return {"dir": (lx, ly, lz), "half": (hx / hn, hy / hn, hz / hn), "key": key, "amb": amb,
            "xy": (lx, ly)}


def background(u: Tensor, v: Tensor, p, c1: Tensor, c2: Tensor, seeds: np.ndarray) -> Tensor:
    kind = p["bg_kind"].round()
    r = torch.sqrt(u * u + (v + 0.1) ** 2)
    t_vert = smoothstep(-1.1, 1.1, v)
    t_rad = clamp01(r / 1.35)
    t = torch.where(kind == 1, t_vert, torch.where(kind == 2, t_rad, t_vert * 0.6))
    t = torch.where(kind == 0, 0.25 * t_rad, t)
    img = c1 + (c2 - c1) * t[:, None]
    # bokeh: soft discs at per-face hashed places
    is_bokeh = (kind == 3).reshape(-1).tolist()
    for b, on in enumerate(is_bokeh):
        if not on:
            continue
        rng = np.random.default_rng(int(seeds[b]) + 7919)
        for _ in range(9):
            cx, cy = rng.uniform(-1.1, 1.1, 2)
            rad = rng.uniform(0.08, 0.3)
            gain = rng.uniform(0.15, 0.55)
            d = torch.sqrt((u[b] - cx) ** 2 + (v[b] - cy) ** 2) - rad
            a = clamp01(0.5 - d / 0.03) * gain
            img[b] = img[b] + (c1[b] * 1.6 + 0.15 - img[b]) * a
    return img


def body(uu, vv, cam: Camera, p, skin_lin: Tensor, cloth_lin: Tensor, light, px: float, chin_xy,
         nz: Noise):
    """Neck, shoulders and garment in the un-rolled screen frame. Returns (colour, alpha)."""
    masc = p["masculine"]
    tx = -cam.delta[:, 0, None, None] * 0.6
    # the neck: wide where it meets the skull behind the ears, narrower at the shoulders;
    # its top turns with the head, so a turned head shows the neck's side below the ear
    wt = 0.3 + 0.05 * masc[:, 0, 0]
    corners = torch.stack([torch.stack([-wt, 0.12 + 0 * wt, -0.12 + 0 * wt], 1),
                           torch.stack([wt, 0.12 + 0 * wt, -0.12 + 0 * wt], 1)], 1)
    top = cam.project_unrolled(corners)
    wb = 0.27 + 0.06 * masc
    y_bot = 1.3
    xl0, yl0 = top[:, 0, 0, None, None], top[:, 0, 1, None, None]
    xr0, yr0 = top[:, 1, 0, None, None], top[:, 1, 1, None, None]
    tl = ((vv - yl0) / (y_bot - yl0)).clamp(max=1.0)
    tr = ((vv - yr0) / (y_bot - yr0)).clamp(max=1.0)
    x_left = xl0 + (tx - wb - xl0) * tl
    x_right = xr0 + (tx + wb - xr0) * tr
    d_neck = torch.maximum(torch.maximum(x_left - uu, uu - x_right), torch.minimum(yl0, yr0) - vv)
    rel = uu - tx
    shoulder_y = 0.83 + 0.06 * (1 - masc) + 0.22 * ((rel.abs() - 0.25).clamp(min=0) / 0.75) ** 1.4
    d_sh = shoulder_y - vv
    d_body = smin(d_neck, d_sh, 0.12)
    alpha = cover(d_body, px, 0.003)
    # neck shading: a cylinder, shadowed under the jaw
    half = (0.5 * (x_right - x_left)).clamp(min=0.05)
    nxn = ((uu - 0.5 * (x_left + x_right)) / half).clamp(-1, 1)
    nzn = torch.sqrt(clamp01(1 - nxn * nxn))
    lx, ly, lz = light["dir"]
    ndl = clamp01(nxn * lx + nzn * lz + 0.25 * (-ly))
    chin_shadow = 1.0 - 0.6 * smoothstep(0.3, 0.0, vv - chin_xy[:, 1, None, None]) * (1 - 0.3 * (-ly).clamp(min=0))
    sky = 0.8 + 0.2 * nzn
    neck_col = skin_lin * 0.88 * (light["amb"] * sky[:, None] + light["key"] * ndl[:, None]) * chin_shadow[:, None]
    # garment below the neckline
    kind = p["neckline"].round()
    crew = 0.9 + 0.12 * (1 - masc) - 0.25 * (rel / 0.45) ** 2
    vneck = 1.25 - 1.0 * rel.abs()
    collar = 0.88 - 0.35 * (rel / 0.5) ** 2
    line = torch.where(kind == 0, crew, torch.where(kind == 1, vneck, collar))
    d_cloth = line - vv
    cloth_a = cover(d_cloth, px, 0.004)
    fold = 0.85 + 0.15 * nz.noise2(uu * 6.0, vv * 3.0)
    shade = (light["amb"] + light["key"] * (0.5 + 0.5 * clamp01(-rel * lx * 2 + 0.5))[:, None]) * fold[:, None]
    cloth_col = cloth_lin * shade
    # a shirt collar: two light flaps
    flap = torch.maximum((rel.abs() - 0.09 - 0.45 * (vv - 0.86)).abs() - 0.05, (vv - 0.98).abs() - 0.09)
    flap_a = cover(flap, px, 0.004) * (kind == 2).to(torch.float32)
    cloth_col = cloth_col + (cloth_lin * 1.25 + 0.05 - cloth_col) * flap_a[:, None] * 0.6
    out = neck_col + (cloth_col - neck_col) * cloth_a[:, None]
    out = out * (1.0 - 0.35 * cover(flap.abs() - 0.004, px) * (kind == 2).to(torch.float32))[:, None]
    return out, alpha


def ear(o, k: Tensor, side: float, a: Tensor, p, cam: Camera):
    """Planar ear on one side, tilted out from the head by ``ear_protrusion``: returns
    (coverage, depth, across-ear coordinate, along-ear coordinate, camera-frame normal)."""
    size = p["ear_size"][:, 0, 0]
    prot = p["ear_protrusion"][:, 0, 0]
    theta = 0.32 + 0.45 * prot
    yc, zc = 0.1, -0.05
    aa = a[:, 0, 0]
    xr = side * (aa * math.sqrt(1 - (yc / HEAD_B_BOT) ** 2 - (zc / HEAD_C) ** 2) - 0.02)
    root = torch.stack([xr, torch.full_like(xr, yc), torch.full_like(xr, zc)], 1)
    normal = torch.stack([side * torch.cos(theta), torch.zeros_like(theta), torch.sin(theta)], 1)
    e2 = torch.stack([side * torch.sin(theta), torch.zeros_like(theta), -torch.cos(theta)], 1)
    x, y, z, s = plane_hit(o, k, root, normal)
    w = (x - root[:, 0, None, None]) * e2[:, 0, None, None] + (z - root[:, 2, None, None]) * e2[:, 2, None, None]
    t = y - yc
    he = (0.17 + 0.05 * size)[:, None, None]
    we = he * 0.56
    lobe = 1.0 - 0.3 * smoothstep(-0.2 * he, he, t)
    ex = (w - we * 0.95) / (we * lobe)
    ey = t / he
    d = (torch.sqrt(ex * ex + ey * ey) - 1.0) * we
    d = torch.maximum(d, -w - 0.01)
    cov = clamp01(0.5 - d / (fwidth(d) + 1e-4))
    n_cam = (cam.R @ normal[:, :, None])[:, :, 0]
    return cov, s, w / we, ey, n_cam


def glasses_sdf(gx: Tensor, gy: Tensor, kind: Tensor) -> tuple[Tensor, Tensor]:
    """(frame distance, lens distance) in the glasses plane; ``kind`` 1 round, 2 square."""
    lx = gx.abs() - EYE_X
    ly = gy - 0.012
    rr = 0.132
    d_round = torch.sqrt(lx * lx + ly * ly) - rr
    d_square = sd_round_box(lx, ly, 0.148, 0.1, 0.035)
    d_lens = torch.where(kind == 1, d_round, d_square)
    thick = torch.where(kind == 1, 0.0085, 0.011)
    ring = d_lens.abs() - thick
    bx = torch.where(kind == 1, torch.full_like(thick, EYE_X - rr + 0.004),
                     torch.full_like(thick, EYE_X - 0.148 + 0.004))
    arch = -0.012 - 0.016 * clamp01(1.0 - (gx / bx) ** 2)
    bridge = torch.maximum((gy - arch).abs() - thick * 0.8, gx.abs() - bx)
    return torch.minimum(ring, bridge), d_lens


def glasses(o, k, cam: Camera, p, frame_lin: Tensor, light, px: float, zbuf: Tensor, uu, vv, a,
            nz: Noise):
    """Frames in a plane before the eyes plus the temples. Returns (colour, alpha)."""
    kind = p["glasses"].round()
    B = kind.shape[0]
    zg = HEAD_C + 0.05
    point = torch.tensor([0.0, 0.0, zg]).expand(B, 3)
    normal = torch.tensor([0.0, 0.0, 1.0]).expand(B, 3)
    gx, gy, _, s = plane_hit(o, k, point, normal)
    d_frame, d_lens = glasses_sdf(gx, gy, kind)
    ell = fwidth(d_frame).clamp(px * 0.3, px * 3)
    frame_a = cover(d_frame, ell)
    lens_a = cover(d_lens, ell) * (1 - frame_a)
    # temples: 3-D bars from the hinges back to the ears, depth-tested against the head
    temple_a = torch.zeros_like(frame_a)
    one = torch.ones_like(a[:, 0, 0])
    outer = torch.where(kind[:, 0, 0] == 1, EYE_X + 0.132, EYE_X + 0.148)
    for side in (-1.0, 1.0):
        # end piece (lens edge -> hinge) and temple (hinge -> ear), as 3-D bars
        pts = torch.stack([
            torch.stack([side * outer, -0.035 * one, zg * one], 1),
            torch.stack([side * HINGE_X * one, -0.035 * one, (zg - 0.09) * one], 1),
            torch.stack([side * (a[:, 0, 0] + 0.015), -0.02 * one, -0.1 * one], 1),
        ], 1)
        scr = cam.project_unrolled(pts)
        dep = cam.depth(pts)
        for i in (0, 1):
            d, t = sd_segment(uu, vv, scr[:, i, 0, None, None], scr[:, i, 1, None, None],
                              scr[:, i + 1, 0, None, None], scr[:, i + 1, 1, None, None])
            depth = dep[:, i, None, None] + (dep[:, i + 1, None, None] - dep[:, i, None, None]) * t
            vis = torch.sigmoid((depth - zbuf) / 0.01)
            temple_a = torch.maximum(temple_a, cover(d - 0.0075, px) * vis)
    lx, ly, lz = light["dir"]
    lit = light["amb"] + light["key"] * clamp01(lz * 0.8 + 0.2 - 0.4 * ly)[:, None]
    sheen = 1.0 + 1.2 * smoothstep(0.004, -0.004, d_frame + 0.004) * clamp01(-gy * 10.0 + 0.5)
    tort = mix(1.0, 0.35 + 1.1 * nz.noise2(gx * 60.0, gy * 60.0), (p["glasses_color"] == 1).to(torch.float32))
    frame_col = frame_lin * lit * (sheen * tort)[:, None]
    alpha = torch.maximum(frame_a, temple_a) * (kind > 0).to(torch.float32)
    # lenses: faint tint plus a reflection streak
    band = gx.abs() - EYE_X + 0.7 * gy
    streak = smoothstep(0.09, 0.0, (band + 0.03).abs()) * 0.6 + 0.4 * smoothstep(0.05, -0.1, gy)
    lens_alpha = lens_a * (0.03 + 0.08 * streak * light["key"].mean(1)) * (kind > 0).to(torch.float32)
    lens_col = torch.tensor([0.85, 0.9, 0.95]).view(1, 3, 1, 1) * light["key"].mean(1, keepdim=True)
    return frame_col, alpha, lens_col, lens_alpha, (gx, gy)
