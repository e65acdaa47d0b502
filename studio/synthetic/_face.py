"""The face surface: relief (height field), outline, and the painted features on it.

Everything here works in head-frame decal coordinates ``(x, y)`` (the frontal projection
of a point on the head), so features foreshorten and shift with the head's pose. Both eyes
(and both nostrils, cheeks...) are drawn at once by mirroring on ``|x|``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from studio.synthetic._geometry import EYE_X, HEAD_C, MOUTH_Y
from studio.synthetic._ops import (
    Noise,
    clamp01,
    cover,
    fade_octave,
    gauss,
    mix,
    nexp,
    smax,
    smoothstep,
)


@dataclass
class FaceGeom:
    """Per-face shape constants, each a (B, 1, 1) tensor."""

    a: Tensor  # head half-width
    chin_y: Tensor
    jaw_y0: Tensor
    jaw_p: Tensor
    jaw_taper: Tensor
    eye_w: Tensor
    eye_hu: Tensor
    eye_hl: Tensor
    eye_tilt: Tensor
    iris_r: Tensor
    iris_dx: Tensor
    iris_dy: Tensor
    blink: Tensor
    brow_y: Tensor
    brow_arch: Tensor
    brow_th: Tensor
    brow_frown: Tensor
    brow_lift: Tensor
    nose_tip_y: Tensor
    nose_w: Tensor
    nose_h: Tensor
    mouth_y: Tensor
    mouth_w: Tensor
    mouth_up: Tensor
    mouth_open: Tensor
    lip_u: Tensor
    lip_l: Tensor
    pucker: Tensor
    smile: Tensor
    cheek: Tensor
    age: Tensor
    masc: Tensor

    @classmethod
    def from_params(cls, p: dict[str, Tensor]) -> FaceGeom:
        smile = p["smile"]
        pos_smile = smile.clamp(min=0)
        pucker = p["pucker"]
        open_ = p["mouth_open"]
        eye_w = 0.1 + 0.026 * p["eye_size"]
        blink = p["blink"]
        mouth_w = (0.155 + 0.05 * p["mouth_width"]) * (1 + 0.13 * pos_smile) * (1 - 0.42 * pucker)
        return cls(
            a=0.465 + 0.07 * p["face_width"],
            chin_y=0.75 + 0.09 * p["face_length"] + 0.1 * open_,
            jaw_y0=torch.full_like(smile, 0.08),
            jaw_p=2.0 + 1.6 * p["chin_shape"],
            jaw_taper=0.5 - 0.32 * p["jaw_width"] - 0.08 * p["chin_shape"],
            eye_w=eye_w,
            eye_hu=eye_w * (0.42 + 0.22 * p["eye_shape"]) * (1 + 0.12 * p["brow_raise"].clamp(min=0)),
            eye_hl=eye_w * (0.24 + 0.12 * p["eye_shape"]) * (1 - 0.3 * pos_smile),
            eye_tilt=0.22 * p["eye_tilt"],
            iris_r=eye_w * 0.43,
            iris_dx=0.42 * eye_w * p["gaze_x"],
            iris_dy=0.018 * p["gaze_y"] - 0.004,
            blink=blink,
            brow_y=-(0.105 + 0.015 * p["eye_size"]) - 0.032 * p["brow_raise"],
            brow_arch=0.008 + 0.024 * p["brow_arch"] + 0.012 * p["brow_raise"].clamp(min=0),
            brow_th=0.02 + 0.026 * p["brow_thickness"] + 0.006 * p["masculine"],
            brow_frown=(-p["brow_raise"]).clamp(min=0),
            brow_lift=p["brow_raise"].clamp(min=0),
            nose_tip_y=0.3 + 0.07 * p["nose_length"],
            nose_w=0.075 + 0.04 * p["nose_width"] + 0.01 * pos_smile,
            nose_h=0.085 + 0.03 * p["nose_length"] + 0.015 * p["masculine"],
            mouth_y=MOUTH_Y + 0.0 * smile,
            mouth_w=mouth_w,
            mouth_up=0.07 * smile,
            mouth_open=0.13 * open_ + 0.06 * (pos_smile - 0.35).clamp(min=0) + 0.008 * pucker,
            lip_u=(0.022 + 0.02 * p["lip_fullness"]) * (1 + 0.35 * pucker) * (1 - 0.25 * pos_smile),
            lip_l=(0.03 + 0.026 * p["lip_fullness"]) * (1 + 0.3 * pucker) * (1 - 0.15 * pos_smile),
            pucker=pucker,
            smile=smile,
            cheek=0.02 + 0.035 * p["cheek_fullness"] + 0.02 * pos_smile,
            age=p["age"],
            masc=p["masculine"],
        )


def face_outline(x: Tensor, y: Tensor, g: FaceGeom, z: Tensor | None = None) -> Tensor:
    """Signed distance-like field of the face outline (cheeks, jaw, chin): < 0 inside.

    With the head-frame depth ``z``, the cut follows the head's narrowing behind the ears,
    so a turned head shows no thin strip of skull beside the jaw."""
    hj = g.chin_y - g.jaw_y0
    t = ((y - g.jaw_y0) / hj).clamp(min=0.0)
    above = smoothstep(0.0, -0.25, y - g.jaw_y0)  # no cut above the jaw
    width = g.a * (1.0 - g.jaw_taper * t.clamp(max=1.0) ** 1.6 + 0.6 * above)
    if z is not None:
        width = width * torch.sqrt((1.0 - (z.clamp(max=0.0) / HEAD_C) ** 2).clamp(min=0.05))
    xs = (x.abs() / width).clamp(min=1e-6)
    f = (xs**g.jaw_p + t.clamp(max=1.3) ** g.jaw_p) ** (1.0 / g.jaw_p) - 1.0
    return f * width


def mouth_curves(x: Tensor, g: FaceGeom):
    """Lip curves at ``x``: (upper outer, upper inner, lower inner, lower outer, lip line)."""
    w = g.mouth_w
    r = (x / w).clamp(-1.0, 1.0)
    r2 = r * r
    inside = clamp01(1.0 - r2)
    line = g.mouth_y - g.mouth_up * r2 + 0.012 * g.smile.clamp(min=0) * inside
    gap = inside**0.7 * g.mouth_open
    up_in = line - 0.28 * gap
    lo_in = line + 0.72 * gap
    bow = 0.35 * nexp(-((x / (0.022 + 0.1 * g.pucker * w)) ** 2))
    peaks = 0.12 * nexp(-(((x.abs() - 0.038) / 0.02) ** 2))
    up_out = up_in - g.lip_u * inside**0.45 * (1.0 - bow + peaks)
    lo_out = lo_in + g.lip_l * inside**0.6
    return up_out, up_in, lo_in, lo_out, line


def sabs(x: Tensor) -> Tensor:
    """|x| rounded within 0.01 of zero, so mirrored bumps leave no crease on the midline."""
    return torch.sqrt(x * x + 1e-4)


def _bump(t: Tensor) -> Tensor:
    """0 outside [0, 1], a smooth hump inside."""
    t = clamp01(t)
    return 16.0 * (t * (1.0 - t)) ** 2


def face_height(x: Tensor, y: Tensor, g: FaceGeom, full: bool = True) -> Tensor:
    """Relief above the head capsule (head units). ``full=False``: nose and lips only."""
    ax = sabs(x)
    dy_tip = y - g.nose_tip_y
    # nose: bridge ridge, tip ball, wings
    along = smoothstep(-0.05, g.nose_tip_y, y)
    bridge = g.nose_h * (0.12 + 0.25 * along) * along * nexp(-((x / (0.045 + 0.3 * g.nose_w * along)) ** 2))
    bridge = bridge * (1.0 - smoothstep(g.nose_tip_y - 0.02, g.nose_tip_y + 0.05, y))
    tip = g.nose_h * gauss(x, dy_tip + 0.012, 0.045 + 0.2 * g.nose_w, 0.05)
    wings = 0.4 * g.nose_h * gauss(ax - g.nose_w * 0.8, dy_tip - 0.005, 0.038, 0.035)
    nose = torch.maximum(bridge, tip) + wings * (1.0 - 0.4 * gauss(x, dy_tip, 0.05, 0.05))
    # lips on a slightly raised muzzle
    up_out, up_in, lo_in, lo_out, _ = mouth_curves(x, g)
    across = clamp01(1.0 - (x / (g.mouth_w * 1.02)) ** 2) ** 1.5
    lip_up = (0.012 + 0.03 * g.pucker) * across * _bump((y - up_out) / (up_in - up_out + 1e-4))
    lip_lo = (0.016 + 0.03 * g.pucker) * across * _bump((y - lo_in) / (lo_out - lo_in + 1e-4))
    muzzle = (0.022 + 0.02 * g.pucker) * gauss(x, y - g.mouth_y, g.mouth_w * 1.1, 0.1)
    h = nose + lip_up + lip_lo + muzzle
    if not full:
        return h
    brow = (0.018 + 0.02 * g.masc) * gauss(ax - 0.19, y - g.brow_y - 0.015, 0.14, 0.06)
    socket = -0.025 * gauss(ax - EYE_X, y + 0.01, 0.1, 0.065)
    eyeball = 0.018 * gauss(ax - EYE_X, y, g.eye_w * 0.95, g.eye_w * 0.55)
    cheeks = g.cheek * gauss(ax - 0.25, y - 0.17 + 0.03 * g.smile, 0.16, 0.18)
    chin = 0.035 * gauss(x, y - g.chin_y + 0.09, 0.09, 0.07)
    philtrum = -0.004 * gauss(x, y - g.mouth_y + 0.085, 0.02, 0.04)
    fold = -(0.007 * g.smile.clamp(min=0) + 0.005 * g.age) * _fold(x, y, g)
    h = h + brow + socket + eyeball + cheeks + chin + philtrum + fold
    # round off the jaw and cheeks towards the outline
    edge = face_outline(x, y, g)
    jaw = smoothstep(0.12, 0.4, y)
    return h - 0.035 * jaw * smoothstep(-0.12, 0.0, edge) ** 2 * smoothstep(0.06, 0.0, edge)


def _fold(x: Tensor, y: Tensor, g: FaceGeom) -> Tensor:
    """Nasolabial folds: a curve from the nose wings past the mouth corners (0..1)."""
    t = clamp01((y - g.nose_tip_y + 0.01) / (g.mouth_y + 0.05 - g.nose_tip_y))
    cx = g.nose_w * 1.25 + (g.mouth_w + 0.035 - g.nose_w * 1.25) * t + 0.02 * torch.sin(3.0 * t)
    d = (x.abs() - cx) / 0.018
    return nexp(-d * d) * smoothstep(0.0, 0.15, t) * (1.0 - smoothstep(0.8, 1.0, t))


@dataclass
class Paint:
    """What the features paint onto the skin before shading."""

    albedo: Tensor  # (B, 3, H, W) linear
    spec: Tensor  # (B, H, W) specular strength
    gloss: Tensor  # (B, H, W) 0 = matte skin .. 1 = wet lips
    ao: Tensor  # (B, H, W) ambient occlusion multiplier
    catch: Tensor  # (B, H, W) eye catch-light alpha (added after shading)


def over(dst: Tensor, col: Tensor, alpha: Tensor) -> None:
    """Alpha-composite ``col`` (B,3,1,1 or B,3,H,W) over ``dst`` in place."""
    dst.add_((col - dst) * alpha[:, None])


def paint_eyes(x, y, ell, g: FaceGeom, p, paint: Paint, light_xy, nz: Noise) -> Tensor:
    """Sclera, iris, pupil, lids, lashes and creases. Returns the eye-opening coverage."""
    side = torch.sign(x)
    xi = x.abs() - EYE_X
    eta = y + g.eye_tilt * xi
    w = g.eye_w
    r = (xi / w).clamp(-1.0, 1.0)
    inside = clamp01(1.0 - r * r)
    shape_u = inside**0.55 * (1.0 - 0.12 * r)
    shape_l = inside**0.75 * (1.0 + 0.15 * r)
    lid_u = shape_u * (-g.eye_hu * (1.0 - g.blink) + g.blink * 0.3 * g.eye_hl)
    lid_l = shape_l * g.eye_hl
    d_open = torch.maximum(torch.maximum(lid_u - eta, eta - lid_l), xi.abs() - w)
    opening = cover(d_open, ell) * (1.0 - g.blink) ** 0.3
    # eyeball: sclera, iris, pupil
    sclera = torch.tensor([0.80, 0.76, 0.72]).view(1, 3, 1, 1)
    corner = clamp01(r.abs() ** 2)
    shade = (1.0 - 0.45 * corner) * (1.0 - 0.55 * nexp(-(eta - lid_u).clamp(min=0) / (0.22 * g.eye_hu)))
    eye_col = sclera * shade[:, None]
    pink = torch.tensor([0.75, 0.38, 0.36]).view(1, 3, 1, 1)
    eye_col = mix(eye_col, pink, (smoothstep(-0.65, -1.0, r) * 0.8)[:, None])
    ix = xi - g.iris_dx * side
    iy = eta - g.iris_dy
    rr = torch.sqrt(ix * ix + iy * iy)
    t = rr / g.iris_r
    iris = p["iris_lin"]
    streak = nz.noise1(torch.atan2(iy, ix) * 9.0 + t * 2.0)
    ring = (0.55 + 0.6 * smoothstep(0.95, 0.35, t) + 0.35 * (streak - 0.5)) * (1.0 - 0.6 * smoothstep(0.75, 1.0, t))
    iris_col = iris * ring[:, None] * (0.8 + 0.5 * smoothstep(0.7, 0.3, t))[:, None]
    iris_col = iris_col * (1.0 - 0.5 * nexp(-(eta - lid_u).clamp(min=0) / (0.35 * g.eye_hu)))[:, None]
    over(eye_col, iris_col, cover(rr - g.iris_r, ell))
    over(eye_col, torch.tensor([0.01, 0.01, 0.012]).view(1, 3, 1, 1), cover(rr - 0.42 * g.iris_r, ell))
    over(paint.albedo, eye_col, opening)
    paint.spec.mul_(1.0 - opening)
    paint.gloss.add_((1.0 - paint.gloss) * opening)
    # catch-light towards the key light
    lx, ly = light_xy
    cx = ix - 0.4 * g.iris_r * lx * side
    cy = iy - 0.4 * g.iris_r * ly
    catch = cover(torch.sqrt(cx * cx + cy * cy) - 0.2 * g.iris_r, ell, 0.006) * opening
    paint.catch.copy_(torch.maximum(paint.catch, catch * cover(rr - g.iris_r, ell)))
    # lids: crease, lash lines, lid shadow
    lash = p["lashes"]
    crease_y = lid_u - (0.018 + 0.35 * g.eye_hu) * (1.0 - 0.5 * g.blink)
    crease = cover((eta - crease_y).abs() - 0.004, ell, 0.006) * smoothstep(1.05, 0.6, r.abs())
    over(paint.albedo, paint.albedo * 0.62, crease * 0.5)
    paint.ao.mul_(1.0 - 0.3 * smoothstep(0.05, 0.0, (eta - crease_y).abs()) * inside)
    th = (0.004 + 0.009 * lash) * (0.55 + 0.45 * smoothstep(-1.0, 0.8, r))
    flick = (0.02 * lash * (lash > 0.55)) * smoothstep(0.7, 1.25, xi / w)
    upper = torch.maximum((eta - (lid_u - th * 0.5 - flick * (xi / w - 0.7))).abs() - th * 0.6,
                          xi.abs() - w * (1.0 + 0.25 * lash))
    ink = torch.tensor([0.012, 0.01, 0.01]).view(1, 3, 1, 1)
    over(paint.albedo, ink, cover(upper, ell) * (0.85 + 0.15 * lash))
    lower = torch.maximum((eta - lid_l).abs() - 0.0025, xi.abs() - w * 0.85)
    over(paint.albedo, ink, cover(lower, ell) * (0.25 + 0.2 * lash) * smoothstep(-1.0, 0.3, r))
    # under-eye shadow, crow's feet with age
    bag = gauss(xi, eta - lid_l - 0.03, w * 1.1, 0.02) * (0.12 + 0.25 * g.age)
    paint.ao.mul_(1.0 - bag)
    crow = g.age * smoothstep(0.06, 0.0, (xi - w * 1.15).abs()) * (0.5 + 0.5 * torch.cos(eta * 160.0))
    paint.ao.mul_(1.0 - 0.18 * crow * gauss(0.0 * xi, eta, 1.0, 0.05))
    return opening


def paint_brows(x, y, ell, g: FaceGeom, brow_lin: Tensor, paint: Paint, nz: Noise, px: float) -> None:
    xi = x.abs() - EYE_X
    w = g.eye_w
    xin, xout = -1.15 * w, 1.3 * w
    t = clamp01((xi - xin) / (xout - xin))
    peak = 0.62
    centre = (g.brow_y - 0.25 * g.eye_hu + 0.01 * t - g.brow_arch * (1.0 - ((t - peak) / 0.62) ** 2)
              + 0.025 * g.brow_frown * (1.0 - t) ** 2)
    th = g.brow_th * (1.0 - 0.8 * smoothstep(0.3, 1.05, t)) * (0.8 + 0.2 * smoothstep(0.0, 0.15, t))
    d = smax((y - centre).abs() - th * 0.5, xin - xi, 0.012)
    d = torch.maximum(d, xi - xout)
    hairs = nz.noise2((xi * 1.0 + (y - centre) * 0.6) * 190.0, (y - centre) * 40.0)
    fine = min(1.0, 0.0035 / px)
    alpha = cover(d, ell, 0.004) * (0.78 - 0.25 * fine + 0.45 * fine * hairs).clamp(0, 1)
    over(paint.albedo, brow_lin, alpha * 0.95)
    paint.spec.mul_(1.0 - 0.7 * alpha)
    # frown lines between the brows
    frown = g.brow_frown * gauss(x.abs() - 0.035, y - g.brow_y - 0.01, 0.006, 0.04)
    paint.ao.mul_(1.0 - 0.35 * frown)


def paint_nose(x, y, ell, g: FaceGeom, paint: Paint) -> None:
    ax = x.abs()
    dy = y - g.nose_tip_y
    nostril = gauss(ax - 0.42 * g.nose_w - 0.008, dy - 0.036, 0.24 * g.nose_w + 0.004, 0.011)
    dark = torch.tensor([0.06, 0.02, 0.02]).view(1, 3, 1, 1)
    over(paint.albedo, dark, clamp01(nostril * 1.4) * 0.85)
    crease = gauss(ax - g.nose_w * 1.15, dy + 0.005, 0.012, 0.03)
    paint.ao.mul_(1.0 - 0.35 * crease - 0.25 * gauss(x, dy - 0.055, 0.06, 0.012))


def paint_mouth(x, y, ell, g: FaceGeom, lip_lin: Tensor, paint: Paint) -> Tensor:
    """Lips, mouth interior, teeth. Returns the lips+mouth coverage (for the beard)."""
    up_out, up_in, lo_in, lo_out, line = mouth_curves(x, g)
    w = g.mouth_w
    end = x.abs() - w
    d_up = torch.maximum(torch.maximum(up_out - y, y - up_in), end)
    d_lo = torch.maximum(torch.maximum(lo_in - y, y - lo_out), end)
    d_in = torch.maximum(torch.maximum(up_in - y, y - lo_in), end)
    soft = 0.003
    c_up = cover(d_up, ell, soft)
    c_lo = cover(d_lo, ell, soft)
    c_in = cover(d_in, ell)
    # lips
    over(paint.albedo, lip_lin * 0.78, c_up)
    over(paint.albedo, lip_lin, c_lo)
    lips = clamp01(c_up + c_lo)
    paint.spec.add_((0.55 - paint.spec) * lips)
    paint.gloss.add_((0.55 - paint.gloss) * lips)
    # interior, teeth, tongue
    inner = torch.tensor([0.09, 0.018, 0.02]).view(1, 3, 1, 1)
    depth = clamp01((y - up_in) / (lo_in - up_in + 1e-4))
    mouth_col = inner * (0.6 + 0.4 * (1.0 - (x / w) ** 2).clamp(min=0))[:, None].expand(-1, 3, -1, -1).clone()
    tongue = torch.tensor([0.42, 0.12, 0.12]).view(1, 3, 1, 1)
    over(mouth_col, tongue, cover(torch.sqrt((x / (0.62 * w)) ** 2 + ((y - lo_in - 0.004) / 0.035) ** 2) - 1.0, ell / (0.035), 0.15))
    teeth_col = torch.tensor([0.78, 0.74, 0.66]).view(1, 3, 1, 1) * (1.0 - 0.55 * (x / (0.75 * w)) ** 2).clamp(min=0.2)[:, None]
    gaps = 1.0 - 0.25 * nexp(-(((x.abs() % 0.034) - 0.017) / 0.0035) ** 2) * smoothstep(0.01, 0.03, x.abs())
    teeth_col = teeth_col * gaps[:, None]
    teeth_h = 0.03 + 0.0 * x
    upper_teeth = torch.maximum(y - up_in - teeth_h, x.abs() - 0.78 * w)
    over(mouth_col, teeth_col, cover(upper_teeth, ell, 0.002))
    lower_teeth = torch.maximum(lo_in - 0.016 - y, x.abs() - 0.62 * w)
    over(mouth_col, teeth_col * 0.75, cover(lower_teeth, ell, 0.002) * smoothstep(0.04, 0.08, lo_in - up_in))
    mouth_col = mouth_col * (0.55 + 0.45 * smoothstep(0.0, 0.3, depth))[:, None]
    over(paint.albedo, mouth_col, c_in)
    paint.spec.mul_(1.0 - 0.7 * c_in)
    # closed-mouth lip line and dark corners
    corner = gauss(x.abs() - w, y - line, 0.018, 0.012)
    lip_line = cover((y - line).abs() - 0.0015 - 0.004 * (1.0 - (x / w) ** 2).clamp(min=0), ell, 0.003)
    lip_line = lip_line * clamp01(1.0 - end / 0.01) * (1.0 - c_in)
    over(paint.albedo, inner, lip_line * 0.7)
    paint.ao.mul_(1.0 - 0.45 * corner)
    paint.ao.mul_(1.0 - 0.35 * gauss(x, y - (lo_out + 0.012), w * 0.6, 0.012))
    return clamp01(lips + c_in)


def paint_skin_detail(x, y, g: FaceGeom, p, paint: Paint, nz: Noise, px: float) -> None:
    """Blush, freckles, fine pores, forehead lines."""
    ax = x.abs()
    blush = p["blush"] * gauss(ax - 0.27, y - 0.2, 0.1, 0.08)
    red = torch.tensor([0.62, 0.12, 0.12]).view(1, 3, 1, 1)
    over(paint.albedo, paint.albedo * red * 1.6, blush * 0.3)
    if float(p["freckles"].max()) > 0:
        dots = nz.dots(x * 120.0, y * 120.0, 0, 0.35, 0.45) * gauss(ax - 0.1, y - 0.15, 0.2, 0.1)
        brown = torch.tensor([0.55, 0.36, 0.25]).view(1, 3, 1, 1)
        over(paint.albedo, paint.albedo * brown, dots * p["freckles"] * min(1.0, 0.003 / px))
    if px < 0.012:
        pores = nz.noise2(x * 260.0, y * 260.0, 5) - 0.5
        paint.albedo.mul_((1.0 + 0.08 * pores * min(1.0, (0.012 - px) / 0.006))[:, None])
    # forehead lines: with age, and when the brows go up
    wrinkle = (0.5 * g.age + 0.8 * g.brow_lift).clamp(max=1.0) * fade_octave(0.045, px, 2.0, 4.0)
    band = smoothstep(-0.4, -0.3, y) * smoothstep(-0.16, -0.24, y) * smoothstep(0.3, 0.1, ax)
    waves = 0.5 + 0.5 * torch.cos((y + 0.02 * torch.sin(x * 12.0)) * 140.0)
    paint.ao.mul_(1.0 - 0.14 * wrinkle * band * waves)


def paint_facial_hair(x, y, ell, g: FaceGeom, kind: Tensor, hair_lin: Tensor, outline: Tensor,
                      mouth_cov: Tensor, paint: Paint, nz: Noise, px: float) -> None:
    """Stubble, moustache or beard (a beard also widens the jaw: see ``_cut_jaw``)."""
    ax = x.abs()
    up_out, _, _, lo_out, _ = mouth_curves(x, g)
    # beard region: below a line from the sideburns round the cheeks to the moustache
    t = clamp01(ax / g.a)
    top = mix(g.nose_tip_y + 0.065, torch.full_like(t, 0.05), smoothstep(0.35, 0.95, t))
    top = top + 0.06 * gauss(ax - 0.3, 0.0 * y, 0.14, 1.0)
    top = top + 0.012 * (nz.noise1(x * 60.0, 3) - 0.5)
    jag = 0.01 * (nz.noise1(x * 80.0, 9) - 0.5)
    region = cover(top - y + jag, ell, 0.01) * cover(outline - 0.03 * (kind == 3) + 0.5 * jag, ell, 0.004)
    moustache_d = torch.maximum((y - (up_out - 0.016 + 0.02 * (x / g.mouth_w) ** 2)).abs() - 0.014,
                                ax - g.mouth_w - 0.025)
    moustache = cover(moustache_d, ell, 0.006)
    is_stub = (kind == 1).to(torch.float32)
    is_mou = (kind == 2).to(torch.float32)
    is_beard = (kind == 3).to(torch.float32)
    keep_lips = 1.0 - mouth_cov
    fine = min(1.0, 0.004 / px)
    strands = nz.noise2(x * 220.0, y * 70.0, 17)
    beard_a = clamp01(is_beard * torch.maximum(region, moustache) * keep_lips * (0.8 + 0.35 * fine * (strands - 0.3)))
    mou_a = clamp01(is_mou * moustache * keep_lips * (0.85 + 0.3 * fine * (strands - 0.3)))
    stub_region = torch.maximum(region, moustache) * keep_lips
    dots = nz.dots(x * 240.0, y * 240.0, 29, 0.5, 0.7) if fine > 0.5 else 0.45
    stub_a = is_stub * stub_region * (0.3 + 0.45 * dots * fine)
    shadow = torch.tensor([0.05, 0.045, 0.045]).view(1, 3, 1, 1)
    over(paint.albedo, paint.albedo * shadow * 4.0, (is_stub * stub_region * 0.35 + 0.12 * g.masc * stub_region * (1 - is_beard)))
    col = hair_lin * (0.55 + 0.7 * strands)[:, None]
    over(paint.albedo, col, torch.maximum(torch.maximum(beard_a, mou_a), stub_a * 0.9))
    hairy = torch.maximum(beard_a, mou_a)
    paint.spec.mul_(1.0 - 0.8 * hairy)
