"""FFHQ alignment geometry on synthetic landmarks (no face detector needed)."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from studio.photos.align import (
    align_face,
    apply_affine,
    expected_positions,
    face_geometry,
    ffhq_quad,
)


def synthetic_landmarks(eye_left, eye_right, mouth_left, mouth_right) -> np.ndarray:
    """68 points whose eye rings average to the eye centres and with the mouth corners set."""
    lm = np.zeros((68, 2))
    ring = np.array([[-3, 0], [-1.5, -1], [1.5, -1], [3, 0], [1.5, 1], [-1.5, 1]])
    lm[36:42] = np.asarray(eye_left) + ring
    lm[42:48] = np.asarray(eye_right) + ring
    lm[48] = mouth_left
    lm[54] = mouth_right
    # Other points: anywhere (the recipe does not use them).
    lm[0:36] = np.asarray(eye_left)
    lm[55:68] = np.asarray(mouth_right)
    lm[49:54] = np.asarray(mouth_left)
    return lm


def rotate(points, angle_deg, centre):
    a = math.radians(angle_deg)
    r = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    return (np.asarray(points, float) - centre) @ r.T + centre


def dots_image(w, h, points, radius=3) -> np.ndarray:
    img = np.full((h, w, 3), 40, np.uint8)
    for x, y in points:
        centre = (int(round(x * 16)), int(round(y * 16)))  # sub-pixel: 4 fractional bits
        cv2.circle(img, centre, radius * 16, (255, 255, 255), -1, cv2.LINE_AA, shift=4)
    return img


def blob_centres(img: np.ndarray, level: float = 150) -> np.ndarray:
    gray = img[:, :, 0].astype(np.float64)
    mask = (gray > level).astype(np.uint8)
    n, labels = cv2.connectedComponents(mask)
    out = []
    for i in range(1, n):
        ys, xs = np.nonzero(labels == i)
        wts = gray[ys, xs]
        out.append([np.average(xs, weights=wts), np.average(ys, weights=wts)])
    return np.array(out)


def max_match_error(found: np.ndarray, predicted: np.ndarray) -> float:
    """Largest distance from a predicted point to its nearest found blob."""
    assert len(found) == len(predicted)
    d = np.linalg.norm(found[None, :, :] - predicted[:, None, :], axis=2)
    return float(d.min(axis=1).max())


def test_quad_of_an_upright_face():
    lm = synthetic_landmarks((100, 100), (160, 100), (110, 170), (150, 170))
    q = ffhq_quad(lm)
    e, m = 60.0, 70.0  # eye distance, eye-to-mouth distance
    half = max(2 * e, 1.8 * m)
    assert q.size == pytest.approx(2 * half)
    centre = np.array([130, 100 + 0.1 * m])
    assert np.allclose(q.center, centre)
    assert np.allclose(q.corners[0], centre + [-half, -half])  # upper-left
    assert np.allclose(q.corners[2], centre + [half, half])  # lower-right


def test_quad_rotates_with_the_face():
    base = synthetic_landmarks((100, 100), (160, 100), (110, 170), (150, 170))
    q0 = ffhq_quad(base)
    q = ffhq_quad(rotate(base, 30, np.array([130, 130])))
    assert q.size == pytest.approx(q0.size)
    top = q.corners[3] - q.corners[0]
    assert math.degrees(math.atan2(top[1], top[0])) == pytest.approx(30, abs=1e-6)


def test_degenerate_landmarks_raise():
    with pytest.raises(ValueError):
        ffhq_quad(np.zeros((68, 2)))
    with pytest.raises(ValueError):
        ffhq_quad(np.zeros((5, 2)))


@pytest.mark.parametrize(
    ("angle", "shift", "size"),
    [(0, (0, 0), 128), (17, (0, 0), 128), (-35, (40, -30), 64), (8, (-150, -120), 128)],
)
def test_align_puts_eyes_and_mouth_at_ffhq_positions(angle, shift, size):
    centre = np.array([260.0, 240.0]) + shift
    pts = np.array([[-30, -35], [30, -35], [-20, 35], [20, 35]], float) + centre
    pts = rotate(pts, angle, centre)
    lm = synthetic_landmarks(*pts)
    img = dots_image(520, 480, [pts[0], pts[1], (pts[2] + pts[3]) / 2])
    aligned = align_face(img, lm, size)
    assert aligned.image.shape == (size, size, 3)
    assert aligned.image.dtype == np.uint8

    g = face_geometry(aligned.landmarks)
    want = expected_positions(60.0, 70.0)
    for key in ("eye_left", "eye_right", "mouth_avg"):
        # Pixel-index coordinates: the centre of pixel i is at i + 0.5 in crop units.
        assert np.allclose((g[key] + 0.5) / size, want[key], atol=1e-6), key
    # The drawn dots really land where the landmark transform says (sub-pixel).
    found = blob_centres(aligned.image)
    assert len(found) == 3
    predicted = np.array([g["eye_left"], g["eye_right"], g["mouth_avg"]])
    assert max_match_error(found, predicted) < 0.2 * max(1.0, 128 / size)


def test_faces_at_the_edge_get_blurred_reflect_padding():
    # A face in the top-left corner: most of the crop lies outside the photo.
    pts = np.array([[10, 20], [70, 20], [20, 90], [60, 90]], float)
    img = np.zeros((300, 300, 3), np.uint8)
    img[:, :, 1] = 200
    img[100:, :, 0] = 255
    aligned = align_face(img, synthetic_landmarks(*pts), 64)
    assert aligned.image.shape == (64, 64, 3)
    # Padding is filled (reflected and faded to the median), not black.
    assert aligned.image[:8, :8].mean() > 50
    no_pad = align_face(img, synthetic_landmarks(*pts), 64, padding=False)
    assert no_pad.image.shape == (64, 64, 3)


def test_large_photos_are_shrunk_first_and_map_consistently():
    pts = np.array([[900, 1000], [1500, 1000], [1000, 1700], [1400, 1700]], float)
    lm = synthetic_landmarks(*pts)
    img = dots_image(2400, 2600, [pts[0], pts[1], (pts[2] + pts[3]) / 2], radius=80)
    aligned = align_face(img, lm, 64)
    assert aligned.scale < 0.1
    found = blob_centres(aligned.image, level=90)
    g = face_geometry(apply_affine(aligned.to_crop, lm))
    predicted = np.array([g["eye_left"], g["eye_right"], g["mouth_avg"]])
    assert max_match_error(found, predicted) < 0.2


def test_align_rejects_bad_input():
    lm = synthetic_landmarks((100, 100), (160, 100), (110, 170), (150, 170))
    with pytest.raises(ValueError):
        align_face(np.zeros((10, 10), np.uint8), lm, 64)
    with pytest.raises(ValueError):  # the face lies far outside the image
        align_face(np.zeros((10, 10, 3), np.uint8), lm + 5000, 64)


def test_detection_scale_plans():
    from studio.photos.faces import FaceFinder

    plan = FaceFinder.detection_scale
    # Small photos are enlarged (up to 8x) so that faces filling them are found.
    assert plan(None, 25, 25, 128)[0] == 8.0
    assert plan(None, 512, 600, 128)[0] == pytest.approx(1000 / 600)
    # Large photos are searched within the pixel budget first, wanting more for small faces.
    used, wanted = plan(None, 4000, 3000, 128)
    assert used == pytest.approx((4e6 / 12e6) ** 0.5) and wanted > used
    assert plan(None, 4000, 3000, 128, 16e6)[0] > used
