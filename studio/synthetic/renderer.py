"""Batched procedural renderer of stylised, shaded avatar faces (torch on the CPU or GPU).

``render_faces(params, size)`` turns a params dict (see :mod:`studio.synthetic.params`) into
N x H x W x 3 uint8 images; ``face_landmarks(params)`` gives where the eyes, nose tip,
mouth and chin land. The layout follows FFHQ alignment (see :mod:`._geometry`).

How a batch is drawn, back to front: background; hair mass behind the head (long, bob,
curly, bun); the inside of the hair shell; neck, shoulders and garment; the face; ears;
the outside of the hair shell; glasses. The head is a capsule (a cylinder with
half-ellipsoid caps) seen by an orthographic camera: every pixel ray is intersected with
it analytically, so yaw and pitch move and foreshorten everything painted on it, and roll
turns the image plane. The jaw outline cuts its front; features are signed-distance
shapes in head coordinates, parallax-mapped over a relief height field (nose, lips, brows,
cheeks, chin) whose gradients become normals for wrap-Lambert lighting with a warm
subsurface-like terminator, soft Blinn specular, ambient from the background and ambient
occlusion in creases. Hair is a shell round the skull with a hairline, strand locks and a
Kajiya-Kay highlight. Every edge is an anti-aliased coverage (distance over the pixel
footprint), textures fade out before they would alias, and noise comes from per-face
random tables, so a face renders to the same pixels alone or in any batch.

Features are evaluated only inside image windows that hold them for the whole batch, and
per-face extras (curls, beards, glasses, back hair) only for the faces that have them.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
from torch import Tensor

from studio.synthetic import _face as F
from studio.synthetic import _hair as Hr
from studio.synthetic import _scene as S
from studio.synthetic._geometry import (
    EYE_X,
    EYE_Y,
    HEAD_B_BOT,
    HEAD_B_TOP,
    HEAD_C,
    HEAD_MID,
    MOUTH_Y,
    Camera,
    hit_capsule,
)
from studio.synthetic._ops import Noise, clamp01, cover, fwidth, grad, nexp, smoothstep, take
from studio.synthetic.params import (
    HAIR_COLORS,
    PARAM_NAMES,
    SPECS,
    index_params,
    param_count,
)

_ALIGN = 16
BEARD_VOLUME = 0.03
_DYED = [HAIR_COLORS.index(c) for c in ("blue", "pink", "purple", "green")]


def render_faces(
    params: Mapping[str, np.ndarray], size: int = 256, device: str | torch.device = "cpu",
    batch: int | None = None,
) -> np.ndarray:
    """Render faces: N x size x size x 3 uint8. Deterministic for the same params."""
    missing = [k for k in PARAM_NAMES if k not in params]
    if missing:
        raise ValueError(f"missing parameter(s): {missing}")
    size = int(size)
    if not 16 <= size <= 2048:
        raise ValueError(f"size must be between 16 and 2048, got {size}")
    n = param_count(params)
    out = np.empty((n, size, size, 3), dtype=np.uint8)
    if batch is None:
        batch = max(1, min(64, (1 << 20) // (size * size)))
    dev = torch.device(device)
    with torch.inference_mode(), dev:  # tensors made inside land on ``device``
        for i in range(0, n, batch):
            chunk = index_params(params, slice(i, i + batch))
            out[i : i + batch] = _render_batch(chunk, size, dev)
    return out


def face_landmarks(params: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Projected landmarks as (N, 2) arrays in [0, 1] image fractions (x right, y down):
    ``eye_left``/``eye_right`` (image left/right), ``nose_tip``, ``mouth_left``,
    ``mouth_right``, ``mouth_centre``, ``chin``."""
    p = {k: torch.as_tensor(np.asarray(params[k], dtype=np.float32)).reshape(-1, 1, 1) for k in PARAM_NAMES}
    cam = Camera.from_params(p["head_yaw"], p["head_pitch"], p["head_roll"])
    g = F.FaceGeom.from_params(p)
    n = p["smile"].shape[0]

    def pt(x, y, z):
        return torch.stack([torch.as_tensor(x, dtype=torch.float32).expand(n),
                            torch.as_tensor(y, dtype=torch.float32).expand(n),
                            torch.as_tensor(z, dtype=torch.float32).expand(n)], 1)

    zeye = HEAD_C * (1 - (EYE_X / g.a[:, 0, 0]) ** 2) ** 0.5
    mw = g.mouth_w[:, 0, 0]
    zm = HEAD_C * (1 - (MOUTH_Y / HEAD_B_BOT) ** 2 - (mw / g.a[:, 0, 0]) ** 2).clamp(min=0) ** 0.5
    chin = g.chin_y[:, 0, 0]
    pts = torch.stack([
        pt(-EYE_X, 0.0, zeye), pt(EYE_X, 0.0, zeye),
        pt(0.0, g.nose_tip_y[:, 0, 0], HEAD_C * (1 - (g.nose_tip_y[:, 0, 0] / HEAD_B_BOT) ** 2) ** 0.5 + g.nose_h[:, 0, 0]),
        pt(-mw, MOUTH_Y - g.mouth_up[:, 0, 0], zm), pt(mw, MOUTH_Y - g.mouth_up[:, 0, 0], zm),
        pt(0.0, MOUTH_Y, HEAD_C * (1 - (MOUTH_Y / HEAD_B_BOT) ** 2) ** 0.5 + 0.03),
        pt(0.0, chin, HEAD_C * (1 - (chin / HEAD_B_BOT) ** 2).clamp(min=0) ** 0.5),
    ], 1)
    scr = cam.project(pts).numpy() * 0.5 + 0.5
    names = ("eye_left", "eye_right", "nose_tip", "mouth_left", "mouth_right", "mouth_centre", "chin")
    return {name: scr[:, i] for i, name in enumerate(names)}


def _colours(params: Mapping[str, np.ndarray]) -> dict[str, Tensor]:
    """Per-face linear colours as (B, 3, 1, 1) tensors."""
    g = {k: np.asarray(params[k], dtype=np.float64).reshape(-1) for k in PARAM_NAMES}
    skin = S.skin_srgb(g["skin_tone"], g["skin_undertone"])
    hair = np.stack([g["hair_r"], g["hair_g"], g["hair_b"]], 1)
    hair_idx = np.rint(g["hair_color"]).astype(int)
    natural = np.where(np.isin(hair_idx, _DYED)[:, None], np.array([0.2, 0.13, 0.09]), hair)
    dark = np.array([0.05, 0.04, 0.035])
    brow = natural * 0.72 + (dark - natural * 0.72) * g["brow_darkness"][:, None] * 0.75
    beard = np.where((hair_idx == HAIR_COLORS.index("grey"))[:, None], hair * 0.9, natural * 0.85)
    lips = S.lip_srgb(np.rint(g["lip_color"]).astype(int), skin)
    frame = S.FRAME_SRGB[np.clip(np.rint(g["glasses_color"]).astype(int), 0, len(S.FRAME_SRGB) - 1)]
    rgb = {
        "skin": skin, "hair": hair, "brow": brow, "beard": beard, "lips": lips, "frame": frame,
        "iris": np.stack([g["iris_r"], g["iris_g"], g["iris_b"]], 1),
        "cloth": np.stack([g["cloth_r"], g["cloth_g"], g["cloth_b"]], 1),
        "bg": np.stack([g["bg_r"], g["bg_g"], g["bg_b"]], 1),
        "bg2": np.stack([g["bg2_r"], g["bg2_g"], g["bg2_b"]], 1),
    }
    return {k: S.col(S.srgb_to_linear(v)) for k, v in rgb.items()}


def _render_batch(params: Mapping[str, np.ndarray], size: int, device: torch.device) -> np.ndarray:
    n = param_count(params)
    p: dict[str, Tensor] = {}
    for name in PARAM_NAMES:
        v = torch.as_tensor(np.asarray(params[name], dtype=np.float64).reshape(-1), dtype=torch.float32,
                            device=device)
        if SPECS[name].categorical:
            v = v.round()
        p[name] = v.reshape(n, 1, 1)
    seeds = np.rint(np.asarray(params["texture_seed"], dtype=np.float64).reshape(-1)).astype(np.int64)
    nz = Noise(seeds, device)
    colours = _colours(params)
    p["iris_lin"] = colours["iris"]
    px = 2.0 / size
    lin = (torch.arange(size, dtype=torch.float32) + 0.5) * px - 1.0
    u = lin.view(1, 1, size).expand(n, size, size)
    v = lin.view(1, size, 1).expand(n, size, size)

    cam = Camera.from_params(p["head_yaw"], p["head_pitch"], p["head_roll"])
    uu, vv = cam.unroll(u, v)
    o = cam.ray_origin(uu, vv)
    k = cam.view
    light = S.make_light(p, cam, colours["bg"])
    g = F.FaceGeom.from_params(p)
    hs = Hr.HairStyle(p, g.a)

    img = S.background(u, v, p, colours["bg"], colours["bg2"], seeds)

    # --- hair mass behind the head -------------------------------------------------------
    refs = torch.stack([torch.tensor([0.0, -0.05, -0.15]).expand(n, 3), Hr.bun_centre().expand(n, 3),
                        torch.tensor([0.0, 0.0, 0.0]).expand(n, 3)], 1)
    refs[:, 2, 1] = g.chin_y[:, 0, 0]
    refs[:, 2, 2] = 0.25
    scr = cam.project_unrolled(refs)
    X = uu - scr[:, 0, 0, None, None]
    Y = vv - scr[:, 0, 1, None, None]
    bun_xy = scr[:, 1] - scr[:, 0]
    mi = torch.nonzero(hs.has_mass.reshape(-1)).reshape(-1)
    if len(mi):  # only the styles with hair behind the head
        Xm, Ym, hsm, nzm_, lightm, hair_m = take((X, Y, hs, nz, light, colours["hair"]), mi, n)
        d_mass, nx_mass = Hr.back_mass(Xm, Ym, hsm, bun_xy[mi], nzm_)
        mass_a = cover(d_mass, px, 0.006)
        tex, shift = Hr.hair_texture(Xm * 1.6, Ym, hsm, nzm_, px, scale=0.6)
        nzm = torch.sqrt(clamp01(1 - nx_mass * nx_mass)) + 0.2
        zero = torch.zeros_like(Xm)
        mass_col = Hr.shade_hair(hair_m, tex, shift, (nx_mass, zero - 0.2, nzm), (zero, zero + 1.0, zero), lightm)
        mass_col = mass_col * (0.6 + 0.3 * smoothstep(0.0, -0.25, d_mass))[:, None]
        sub_img = img[mi]
        F.over(sub_img, mass_col, mass_a)
        img[mi] = sub_img

    # --- hair shell, inside (the back half seen through the front) ------------------------
    centre, sa, sc, smid, sb_top, sb_bot = hs.shell_axes()
    shell = hit_capsule(o, k, centre, sa, sc, smid, sb_top, sb_bot)
    ang = torch.atan2(X, -(Y + 0.1))
    _, afrac, arnd = Hr.locks(ang * 0.8, 0.0 * ang, hs, nz, 40)
    fuzz = (0.006 + 0.01 * arnd) * (1.0 - 4.0 * afrac * (1.0 - afrac)) ** 2 + 0.002
    fuzz = fuzz + hs.curly * 0.03 * Hr.scallop(ang, 30.0, nz, 21)
    shell_sil = cover(-shell.disc / (2.0 * sa) + fuzz, px, 0.003) * hs.has_hair
    kx, ky, kz = (k[:, i, None, None] for i in range(3))
    bx = o[0] + kx * shell.s_back
    by = shell.back_y
    bz = o[2] + kz * shell.s_back
    phi_b = torch.atan2(bx, bz - centre[2])
    lk_b = Hr.locks(phi_b, by, hs, nz)
    inner_a = shell_sil * cover(by - hs.hairline(phi_b, nz, lk_b), px * 2, 0.01)
    if float(inner_a.max()) > 0:
        tex_b, _ = Hr.hair_texture(phi_b, by, hs, nz, px, lk=lk_b)
        inner_col = colours["hair"] * tex_b[:, None] * (light["amb"] * 0.6 + light["key"] * 0.12)
        F.over(img, inner_col, inner_a)

    # --- neck, shoulders, clothes ----------------------------------------------------------
    body_col, body_a = S.body(uu, vv, cam, p, colours["skin"], colours["cloth"], light, px, scr[:, 2], nz)
    F.over(img, body_col, body_a)

    # --- the face --------------------------------------------------------------------------
    head = hit_capsule(o, k, (0.0, 0.0, 0.0), g.a, HEAD_C, HEAD_MID, HEAD_B_TOP, HEAD_B_BOT)
    a_max = float(g.a.max())
    chin_max = float(g.chin_y.max())
    w_face = _window(cam, g, -a_max - 0.06, a_max + 0.06, -0.55, chin_max + 0.14, size)
    w_eyes = _window(cam, g, -0.46, 0.46, -0.32, 0.13, size)
    w_mouth = _window(cam, g, -0.33, 0.33, 0.12, chin_max + 0.02, size)
    w_relief = _window(cam, g, -0.45, 0.45, -0.1, chin_max + 0.02, size)
    # parallax: look the nose and lips up where the pixel ray meets their relief
    sv = (kx / kz, ky / kz)
    x, y = head.x.clone(), head.y.clone()
    hx, hy = w_relief(head.x), w_relief(head.y)
    xs, ys = hx, hy
    for _ in range(2):
        h0 = F.face_height(xs, ys, g, full=False)
        xs = hx + h0 * sv[0]
        ys = hy + h0 * sv[1]
    w_relief(x).copy_(xs)
    w_relief(y).copy_(ys)
    ell = (0.5 * (fwidth(x) + fwidth(y))).clamp(px * 0.5, px * 3.0)
    outline = F.face_outline(x, y, g)
    sil = cover(-head.disc / (2.0 * g.a), px)
    beard_grow = BEARD_VOLUME * (p["facial_hair"] == 3).to(torch.float32)  # a full beard adds volume
    cut = F.face_outline(x, y, g, head.z) - beard_grow * smoothstep(0.05, 0.3, y)
    face_a = sil * cover(cut, ell)

    skin = colours["skin"].expand(n, 3, size, size).clone()
    paint = F.Paint(skin, torch.full_like(x, 0.15), torch.zeros_like(x), torch.ones_like(x), torch.zeros_like(x))
    F.paint_skin_detail(w_face(x), w_face(y), g, p, w_face.paint(paint), nz, px)
    F.paint_nose(w_mouth(x), w_mouth(y), w_mouth(ell), g, w_mouth.paint(paint))
    mouth_cov = torch.zeros_like(x)
    w_mouth(mouth_cov).copy_(F.paint_mouth(w_mouth(x), w_mouth(y), w_mouth(ell), g, colours["lips"],
                                           w_mouth.paint(paint)))
    F.paint_eyes(w_eyes(x), w_eyes(y), w_eyes(ell), g, p, w_eyes.paint(paint), light["xy"], nz)
    F.paint_brows(w_eyes(x), w_eyes(y), w_eyes(ell), g, colours["brow"], w_eyes.paint(paint), nz, px)
    fi = torch.nonzero(p["facial_hair"].reshape(-1) > 0).reshape(-1)
    if len(fi):  # only the faces with facial hair
        sub = take((w_face(x), w_face(y), w_face(ell), g, p["facial_hair"], colours["beard"],
                    w_face(outline), w_face(mouth_cov), w_face.paint(paint), nz), fi, n)
        F.paint_facial_hair(*sub, px)
        _put_paint(w_face.paint(paint), sub[8], fi)
    # hairline contact shadow
    phi_s = torch.atan2(w_face(head.x), w_face(head.z) - centre[2])
    w_face(paint.ao).mul_(Hr.hair_ao_on_skin(w_face(head.y), hs.hairline(phi_s, nz), hs))
    # glasses shadow
    has_glasses = p["glasses"] > 0
    gi = torch.nonzero(has_glasses.reshape(-1)).reshape(-1)
    if len(gi):
        lx, ly, lz = take(light["dir"], gi, n)
        gap = 0.09 / lz.clamp(min=0.3)
        ex, ey, el = take((w_face(x), w_face(y), w_face(ell)), gi, n)
        d_sh, _ = S.glasses_sdf(ex + lx * gap, ey + ly * gap, p["glasses"][gi])
        w_face(paint.ao)[gi] *= 1.0 - 0.45 * cover(d_sh - 0.006, el, 0.02)

    h = torch.zeros_like(x)
    w_face(h).copy_(F.face_height(w_face(x), w_face(y), g, full=True))
    normal = _head_normal(head, g, cam, h, px)
    face_col = _shade_skin(paint, normal, light)
    face_col = face_col + (0.9 * light["key"] + 0.2 - face_col) * paint.catch[:, None]
    F.over(img, face_col, face_a)
    zbuf = torch.where(face_a > 0.5, head.s_front, torch.full_like(x, -10.0))

    # --- ears ------------------------------------------------------------------------------
    ear_base = colours["skin"] * torch.tensor([0.97, 0.84, 0.8]).view(1, 3, 1, 1)
    for side in (-1.0, 1.0):
        ear_a, ear_s, ew, et, en = S.ear(o, k, side, g.a, p, cam)
        behind = torch.sigmoid((head.s_front - ear_s) / 0.006) * face_a
        ear_a = ear_a * (1.0 - behind)
        if float(ear_a.max()) <= 0:
            continue
        # helix rim, the groove inside it and the bowl (concha) by the ear canal
        r = torch.sqrt(((ew - 0.95) / 0.95) ** 2 + et * et)
        helix = smoothstep(0.7, 0.86, r)
        groove = nexp(-(((r - 0.66) / 0.07) ** 2))
        concha = nexp(-(((ew - 0.7) / 0.33) ** 2) - ((et + 0.12) / 0.33) ** 2)
        shade = (1.0 - 0.5 * concha - 0.3 * groove) * (0.85 + 0.25 * helix)
        lx, ly, lz = light["dir"]
        ndl = clamp01((en[:, 0, None, None] * lx + en[:, 1, None, None] * ly
                       + en[:, 2, None, None] * lz + 0.4) / 1.4)
        ear_col = ear_base * (light["amb"] + light["key"] * ndl[:, None]) * shade[:, None]
        F.over(img, ear_col, ear_a)
        zbuf = torch.where(ear_a > 0.5, ear_s, zbuf)

    # --- hair shell, outside -----------------------------------------------------------------
    phi_f = torch.atan2(shell.x, shell.z - centre[2])
    lk_f = Hr.locks(phi_f, shell.y, hs, nz)
    line_f = hs.hairline(phi_f, nz, lk_f)
    front_a = shell_sil * cover(shell.y - line_f, px * 1.5, 0.012)
    if float(front_a.max()) > 0:
        tex_f, shift = Hr.hair_texture(phi_f, shell.y, hs, nz, px, lk=lk_f)
        tex_f = tex_f * Hr.part_line(phi_f, shell.y, line_f, hs, px)
        n_shell = _to_camera(cam, shell.nx, shell.ny, shell.nz)
        tnx, tny, tnz = _strand_tangent(n_shell, cam)
        nsx = n_shell[0] + 0.3 * shift
        shade = Hr.shade_hair(colours["hair"], tex_f, shift, (nsx, n_shell[1], n_shell[2]), (tnx, tny, tnz), light)
        edge_dark = 1.0 - 0.3 * smoothstep(-0.05, 0.0, shell.y - line_f)
        shade = shade * edge_dark[:, None]
        F.over(img, shade, front_a)
        zbuf = torch.where(front_a > 0.5, shell.s_front, zbuf)

    # --- glasses -----------------------------------------------------------------------------
    if len(gi):  # only the faces with glasses
        sub = take((o, k, cam, p, colours["frame"], light, px, zbuf, uu, vv, g.a, nz), gi, n)
        frame_col, frame_a, lens_col, lens_a, _ = S.glasses(*sub)
        sub_img = img[gi]
        F.over(sub_img, lens_col, lens_a)
        F.over(sub_img, frame_col, frame_a)
        img[gi] = sub_img

    out = clamp01(img).pow(1.0 / 2.2)
    out = (out * 255.0 + 0.5).clamp(0, 255).to(torch.uint8)
    return out.permute(0, 2, 3, 1).contiguous().cpu().numpy()


def _put_paint(dst: F.Paint, src: F.Paint, idx: Tensor) -> None:
    for name in ("albedo", "spec", "gloss", "ao", "catch"):
        getattr(dst, name)[idx] = getattr(src, name)


class _Window:
    """A rectangle of the image (rows r0:r1, columns c0:c1) that holds a feature for every
    face of the batch; features are evaluated on these views only."""

    def __init__(self, r0: int, r1: int, c0: int, c1: int) -> None:
        self.r0, self.r1, self.c0, self.c1 = r0, r1, c0, c1

    def __call__(self, t: Tensor) -> Tensor:
        return t[..., self.r0 : self.r1, self.c0 : self.c1]

    def paint(self, paint: F.Paint) -> F.Paint:
        return F.Paint(self(paint.albedo), self(paint.spec), self(paint.gloss), self(paint.ao),
                       self(paint.catch))


def _window(cam: Camera, g: F.FaceGeom, x0: float, x1: float, y0: float, y1: float, size: int,
            pad: float = 0.04) -> _Window:
    """The image window covering the head-frame rectangle [x0, x1] x [y0, y1] on the face
    surface (and up to the nose tip in front of it) for every face of the batch."""
    n = g.a.shape[0]
    gx, gy = torch.meshgrid(torch.linspace(x0, x1, 7), torch.linspace(y0, y1, 7), indexing="ij")
    gx, gy = gx.reshape(1, -1).expand(n, -1), gy.reshape(1, -1).expand(n, -1)
    a = g.a[:, :, 0]
    b = torch.where(gy > 0, HEAD_B_BOT, HEAD_B_TOP + HEAD_MID)
    z = HEAD_C * torch.sqrt((1 - (gx / a) ** 2 - (gy / b) ** 2).clamp(min=0.0))
    pts = torch.cat([torch.stack([gx, gy, z], -1), torch.stack([gx, gy, z + 0.14], -1)], 1)
    scr = cam.project(pts)
    lo = ((scr.amin(dim=(0, 1)) - pad + 1.0) * 0.5 * size).floor().long().clamp(0, size)
    hi = ((scr.amax(dim=(0, 1)) + pad + 1.0) * 0.5 * size).ceil().long().clamp(0, size)
    # columns on a grid of 16 (whole SIMD vectors): a pixel's arithmetic then does not
    # depend on where the window starts, so a face renders the same in any batch
    c0 = int(lo[0]) // _ALIGN * _ALIGN
    c1 = min(-(-int(hi[0]) // _ALIGN) * _ALIGN, size)
    if (c1 - c0) % _ALIGN:
        c0 = max(0, c1 - -(-(c1 - c0) // _ALIGN) * _ALIGN)
    return _Window(int(lo[1]), int(hi[1]), c0, c1)


def _to_camera(cam: Camera, nx: Tensor, ny: Tensor, nz: Tensor):
    R = cam.R
    cxn = R[:, 0, 0, None, None] * nx + R[:, 0, 1, None, None] * ny + R[:, 0, 2, None, None] * nz
    cyn = R[:, 1, 0, None, None] * nx + R[:, 1, 1, None, None] * ny + R[:, 1, 2, None, None] * nz
    czn = R[:, 2, 0, None, None] * nx + R[:, 2, 1, None, None] * ny + R[:, 2, 2, None, None] * nz
    return cxn, cyn, czn


def _strand_tangent(n, cam: Camera):
    """Camera-frame tangent pointing down the head (the strand direction)."""
    down = cam.R[:, :, 1]  # the head's y axis in the camera frame
    dx, dy, dz = (down[:, i, None, None] for i in range(3))
    nx, ny, nz = n
    dot = dx * nx + dy * ny + dz * nz
    tx, ty, tz = dx - dot * nx, dy - dot * ny, dz - dot * nz
    inv = torch.rsqrt(tx * tx + ty * ty + tz * tz + 1e-6)
    return tx * inv, ty * inv, tz * inv


def _head_normal(head, g, cam: Camera, h: Tensor, px: float):
    nx, ny, nz = _to_camera(cam, head.nx, head.ny, head.nz)
    gx, gy = grad(h, px)
    c, s = cam.roll_cos, cam.roll_sin
    gx, gy = gx * c + gy * s, -gx * s + gy * c
    nzc = nz.clamp(min=0.12)
    bx = nx / nzc - gx
    by = ny / nzc - gy
    inv = torch.rsqrt(bx * bx + by * by + 1.0)
    return bx * inv, by * inv, inv


def _shade_skin(paint: F.Paint, n, light) -> Tensor:
    nx, ny, nz = n
    lx, ly, lz = light["dir"]
    ndl = nx * lx + ny * ly + nz * lz
    lam = clamp01(ndl)
    wrap = clamp01((ndl + 0.5) / 1.5)
    sss = (wrap - lam).clamp(min=0)
    scatter = torch.tensor([1.0, 0.38, 0.25]).view(1, 3, 1, 1)
    sky = 0.72 + 0.28 * (-ny).clamp(-1, 1)
    ao = paint.ao
    diffuse = light["key"] * (lam[:, None] + sss[:, None] * scatter) * (0.55 + 0.45 * ao)[:, None]
    ambient = light["amb"] * (sky * ao)[:, None]
    out = paint.albedo * (ambient + diffuse)
    hx, hy, hz = light["half"]
    ndh = clamp01(nx * hx + ny * hy + nz * hz)
    shin = 16.0 + 60.0 * paint.gloss
    spec = paint.spec * torch.exp(shin * torch.log(ndh + 1e-6)) * (lam > 0).to(torch.float32) * ao
    fresnel = (1.0 - nz.clamp(0, 1)) ** 4 * 0.15
    out = out + light["key"] * (spec * 0.35)[:, None] + light["amb"] * (fresnel * ao)[:, None]
    return out


__all__ = ["render_faces", "face_landmarks", "EYE_Y"]
