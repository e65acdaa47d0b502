"""The renderer: determinism, labels that move the right pixels, anti-aliasing, layout."""

from __future__ import annotations

import numpy as np
import pytest

from studio.synthetic.params import default_params, index_params, sample_params
from studio.synthetic.renderer import face_landmarks, render_faces

SIZE = 96


def _box(img: np.ndarray, cx: float, cy: float, hw: float, hh: float) -> np.ndarray:
    """Pixels of a box given in image fractions (centre, half width, half height)."""
    h, w = img.shape[:2]
    return img[int((cy - hh) * h) : int((cy + hh) * h), int((cx - hw) * w) : int((cx + hw) * w)]


def _diff(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.abs(a.astype(np.float64) - b.astype(np.float64)).mean(axis=-1)


@pytest.fixture(scope="module")
def mixed():
    return sample_params(6, np.random.default_rng(11))


def test_shape_dtype_and_determinism(mixed):
    a = render_faces(mixed, SIZE)
    b = render_faces(mixed, SIZE)
    assert a.shape == (6, SIZE, SIZE, 3) and a.dtype == np.uint8
    assert a.tobytes() == b.tobytes()
    assert a.std() > 20  # not a blank image


def test_a_face_renders_the_same_alone_or_in_any_batch(mixed):
    together = render_faces(mixed, SIZE)
    alone = np.concatenate([render_faces(index_params(mixed, [i]), SIZE) for i in range(3)])
    assert np.array_equal(together[:3], alone)
    assert np.array_equal(together, render_faces(mixed, SIZE, batch=4))


def test_other_sizes_and_empty_batches():
    p = default_params(1)
    assert render_faces(p, 64).shape == (1, 64, 64, 3)
    assert render_faces(p, 100).shape == (1, 100, 100, 3)
    assert render_faces(index_params(p, slice(0, 0)), 64).shape == (0, 64, 64, 3)
    with pytest.raises(ValueError, match="missing"):
        render_faces({"smile": np.zeros(1)}, 64)


def test_layout_matches_ffhq_alignment():
    lm = face_landmarks(default_params(1))
    eye_l, eye_r = lm["eye_left"][0], lm["eye_right"][0]
    mouth = (lm["mouth_left"][0] + lm["mouth_right"][0]) / 2
    eye_mid = (eye_l + eye_r) / 2
    eye_to_eye = eye_r[0] - eye_l[0]
    eye_to_mouth = mouth[1] - eye_mid[1]
    # FFHQ recipe: crop side = 2 * max(2 * e, 1.8 * m), centre = eye_mid + 0.1 * m
    assert 2 * max(2 * eye_to_eye, 1.8 * eye_to_mouth) == pytest.approx(1.0, abs=0.03)
    assert eye_mid[1] + 0.1 * eye_to_mouth == pytest.approx(0.5, abs=0.01)
    assert 0.44 < eye_mid[1] < 0.5 and 0.2 < eye_to_eye < 0.3


@pytest.mark.parametrize("change", [{"smile": 1.0}, {"mouth_open": 1.0}, {"pucker": 1.0}])
def test_expressions_change_the_mouth_not_the_hair(change):
    base = default_params(1, smile=0.0)
    changed = default_params(1, **{"smile": 0.0, **change})
    imgs = render_faces({k: np.concatenate([base[k], changed[k]]) for k in base}, SIZE)
    d = _diff(imgs[0], imgs[1])
    mouth = _box(d, 0.5, 0.75, 0.14, 0.08).mean()
    top = _box(d, 0.5, 0.15, 0.2, 0.1).mean()
    assert mouth > 5.0
    assert mouth > 20 * (top + 0.05)


def test_blink_closes_the_eyes():
    imgs = render_faces({k: np.concatenate([default_params(1)[k], default_params(1, blink=1.0)[k]])
                         for k in default_params(1)}, SIZE)
    eye = _box(imgs[0], 0.382, 0.472, 0.05, 0.025).astype(float)
    shut = _box(imgs[1], 0.382, 0.472, 0.05, 0.025).astype(float)
    # open eyes show bright whites; closed lids are skin
    assert (eye.mean(-1) > 170).sum() > (shut.mean(-1) > 170).sum() + 3
    d = _diff(imgs[0], imgs[1])
    assert _box(d, 0.5, 0.47, 0.2, 0.04).mean() > 10 * (_box(d, 0.5, 0.75, 0.1, 0.05).mean() + 0.1)


def test_glasses_add_dark_frame_pixels_round_the_eyes():
    p = default_params(3, hair_style="bald", glasses_color="black")
    p["glasses"] = np.array([0, 1, 2])
    imgs = render_faces(p, 128)
    band = [_box(im, 0.5, 0.475, 0.26, 0.08).astype(float).mean(-1) for im in imgs]
    dark = [(b < 60).sum() for b in band]
    assert dark[1] > dark[0] + 25 and dark[2] > dark[0] + 25


def test_hair_colour_moves_the_hair_region_mean_colour():
    colours = ["black", "blond", "red", "blue"]
    p = default_params(4, hair_style="short", hair_shade=0.0)
    p2 = {k: v.copy() for k, v in p.items()}
    for i, c in enumerate(colours):
        q = default_params(1, hair_style="short", hair_color=c, hair_shade=0.0)
        for k in ("hair_color", "hair_r", "hair_g", "hair_b"):
            p2[k][i] = q[k][0]
    imgs = render_faces(p2, SIZE)
    hair = [_box(im, 0.5, 0.12, 0.15, 0.05).reshape(-1, 3).astype(float).mean(0) for im in imgs]
    black, blond, red, blue = hair
    assert blond.mean() > black.mean() + 60
    assert red[0] > red[2] + 40 and red[0] > black[0] + 40
    assert blue[2] > blue[0] + 40


def _nose_x(img: np.ndarray, cy: float) -> float:
    """x centroid (image fraction) of the darkest pixels round the nostrils."""
    h, w = img.shape[:2]
    r0, r1 = int((cy - 0.02) * h), int((cy + 0.06) * h)
    c0, c1 = int(0.3 * w), int(0.7 * w)
    lum = img[r0:r1, c0:c1].astype(float).mean(-1)
    mask = lum <= np.percentile(lum, 4)
    return (c0 + np.nonzero(mask)[1].mean() + 0.5) / w


def test_head_yaw_moves_the_nose_horizontally():
    yaws = np.array([-25.0, 0.0, 25.0])
    p = default_params(3, hair_style="bald", light_azimuth=0.0, light_elevation=40.0)
    p["head_yaw"] = yaws
    imgs = render_faces(p, 128)
    lm = face_landmarks(p)
    xs = [_nose_x(im, float(lm["nose_tip"][i, 1])) for i, im in enumerate(imgs)]
    assert xs[0] < xs[1] - 0.015 and xs[2] > xs[1] + 0.015
    assert abs(xs[1] - 0.5) < 0.02
    # the projected landmark agrees with the pixels
    assert np.allclose(xs, lm["nose_tip"][:, 0], atol=0.025)


def test_roll_rotates_the_eye_line():
    p = default_params(2, hair_style="bald")
    p["head_roll"] = np.array([0.0, 12.0])
    lm = face_landmarks(p)
    dy = lm["eye_right"][:, 1] - lm["eye_left"][:, 1]
    assert abs(dy[0]) < 1e-6 and dy[1] > 0.03  # clockwise: the image-right eye goes down


def test_edges_are_anti_aliased():
    """A 96 px face is close to a 384 px one box-filtered down, and its silhouette has
    in-between pixels."""
    p = default_params(1, hair_style="bald", bg_kind="flat")
    small = render_faces(p, 96)[0].astype(float)
    big = render_faces(p, 384)[0].astype(float).reshape(96, 4, 96, 4, 3).mean((1, 3))
    assert np.abs(small - big).mean() < 4.0
    row = small[int(0.45 * 96)].mean(-1)
    bg, skin = row[2], row[48]
    t = (row[:48] - bg) / (skin - bg)
    assert ((t > 0.15) & (t < 0.85)).sum() >= 1
