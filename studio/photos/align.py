"""FFHQ-style face alignment from 68 landmarks.

Our implementation of the recipe described for NVIDIA's FFHQ data set (``align_images``):
the crop is an oriented square ("quad") built from the eye and mouth landmarks, the photo is
first shrunk by an integer factor when it is much larger than needed, cropped to the quad
plus a border, padded by reflection with a blurred, median-faded edge where the quad leaves
the photo, then resampled to the quad at up to 4x the output size and reduced with area
averaging to the output size.

Coordinates: landmarks are dlib pixel indices (the centre of pixel ``i`` is ``i``); the
"continuous" coordinates used internally put that centre at ``i + 0.5``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

# Landmark indices of the iBUG 300-W 68-point layout.
LEFT_EYE = slice(36, 42)  # the eye on the image's left (the subject's right eye)
RIGHT_EYE = slice(42, 48)
MOUTH_LEFT = 48
MOUTH_RIGHT = 54


@dataclass(frozen=True)
class Quad:
    """The oriented square an FFHQ crop covers, in source pixel-index coordinates."""

    corners: np.ndarray  # 4x2: upper-left, lower-left, lower-right, upper-right
    size: float  # side length in source pixels ("qsize")
    center: np.ndarray  # 2


@dataclass(frozen=True)
class AlignedFace:
    image: np.ndarray  # size x size x 3 uint8
    quad: Quad  # in the source image
    to_crop: np.ndarray  # 2x3 affine: source pixel index -> crop pixel index
    landmarks: np.ndarray  # 68x2 landmarks in crop pixel-index coordinates

    @property
    def scale(self) -> float:
        """Output pixels per source pixel (> 1 means the face was enlarged)."""
        return float(self.image.shape[1] / self.quad.size)


def face_geometry(landmarks: np.ndarray) -> dict[str, np.ndarray]:
    """Eye centres, eye midpoint and mouth midpoint (the points the recipe uses)."""
    lm = np.asarray(landmarks, dtype=np.float64)
    if lm.shape != (68, 2):
        raise ValueError(f"expected 68x2 landmarks, got {lm.shape}")
    eye_left = lm[LEFT_EYE].mean(axis=0)
    eye_right = lm[RIGHT_EYE].mean(axis=0)
    mouth_avg = (lm[MOUTH_LEFT] + lm[MOUTH_RIGHT]) * 0.5
    return {
        "eye_left": eye_left,
        "eye_right": eye_right,
        "eye_avg": (eye_left + eye_right) * 0.5,
        "mouth_avg": mouth_avg,
    }


def ffhq_quad(landmarks: np.ndarray) -> Quad:
    """The FFHQ crop square for a face. Raises ValueError for degenerate landmarks."""
    g = face_geometry(landmarks)
    eye_to_eye = g["eye_right"] - g["eye_left"]
    eye_to_mouth = g["mouth_avg"] - g["eye_avg"]
    # Horizontal axis: the eye line blended with the perpendicular of the eye-mouth line.
    x = eye_to_eye - np.flipud(eye_to_mouth) * np.array([-1.0, 1.0])
    norm = math.hypot(*x)
    half = max(math.hypot(*eye_to_eye) * 2.0, math.hypot(*eye_to_mouth) * 1.8)
    if not (np.isfinite(norm) and norm > 1e-6 and np.isfinite(half) and half > 0.5):
        raise ValueError("degenerate face landmarks")
    x = x / norm * half
    y = np.flipud(x) * np.array([-1.0, 1.0])
    c = g["eye_avg"] + eye_to_mouth * 0.1
    corners = np.stack([c - x - y, c - x + y, c + x + y, c + x - y])
    return Quad(corners=corners, size=2.0 * half, center=c)


def quad_to_crop_matrix(quad: Quad, size: int) -> np.ndarray:
    """2x3 affine taking source pixel indices to crop pixel indices for a ``size`` crop."""
    ul, ll, _, ur = quad.corners + 0.5  # continuous coordinates
    # source_c = ul + (u_c / size) * (ur - ul) + (v_c / size) * (ll - ul)
    a = np.column_stack([(ur - ul) / size, (ll - ul) / size])
    a_inv = np.linalg.inv(a)
    # u_idx = u_c - 0.5 = a_inv @ (p_idx + 0.5 - ul) - 0.5
    offset = a_inv @ (0.5 - ul) - 0.5
    return np.column_stack([a_inv, offset])


def apply_affine(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    pts = np.asarray(points, dtype=np.float64)
    return pts @ matrix[:, :2].T + matrix[:, 2]


def _blurred_reflect_pad(
    img: np.ndarray, pad: tuple[int, int, int, int], qsize: float
) -> np.ndarray:
    """Pad (left, top, right, bottom) by reflection, blurring and fading the new area."""
    left, top, right, bottom = pad
    mode = "reflect" if min(img.shape[:2]) >= 2 else "edge"
    out = np.pad(img.astype(np.float32), ((top, bottom), (left, right), (0, 0)), mode=mode)
    h, w = out.shape[:2]
    yy = np.arange(h, dtype=np.float32)[:, None]
    xx = np.arange(w, dtype=np.float32)[None, :]
    mask_x = 1.0 - np.minimum(xx / max(left, 1), (w - 1 - xx) / max(right, 1))
    mask_y = 1.0 - np.minimum(yy / max(top, 1), (h - 1 - yy) / max(bottom, 1))
    mask = np.maximum(mask_x, mask_y)[:, :, None]  # h x w x 1, > 0 in the padding
    sigma = qsize * 0.02
    if sigma >= 0.3:
        blurred = cv2.GaussianBlur(out, (0, 0), sigma, borderType=cv2.BORDER_REFLECT)
        out += (blurred - out) * np.clip(mask * 3.0 + 1.0, 0.0, 1.0)
    median = np.median(out.reshape(-1, out.shape[2]), axis=0)
    out += (median - out) * np.clip(mask, 0.0, 1.0)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def align_face(
    image: np.ndarray, landmarks: np.ndarray, size: int, *, padding: bool = True
) -> AlignedFace:
    """Crop ``image`` (HxWx3 uint8 RGB) to the FFHQ square of ``landmarks``, ``size`` px."""
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError("expected an HxWx3 uint8 image")
    if size < 1:
        raise ValueError("size must be positive")
    quad0 = ffhq_quad(landmarks)
    lm = np.asarray(landmarks, dtype=np.float64)
    img = image
    quad = quad0.corners.copy()
    qsize = quad0.size

    # Shrink: pre-reduce photos much larger than the crop needs (area averaging).
    shrink = int(math.floor(qsize / size * 0.5))
    if shrink > 1:
        h, w = img.shape[:2]
        nw, nh = max(1, round(w / shrink)), max(1, round(h / shrink))
        img = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_AREA)
        quad = (quad + 0.5) * np.array([nw / w, nh / h]) - 0.5
        qsize = qsize * nw / w

    # Crop to the quad plus a border.
    h, w = img.shape[:2]
    border = max(int(round(qsize * 0.1)), 3)
    x0, y0 = (int(math.floor(v)) for v in quad.min(axis=0))
    x1, y1 = (int(math.ceil(v)) for v in quad.max(axis=0))
    cx0, cy0 = max(x0 - border, 0), max(y0 - border, 0)
    cx1, cy1 = min(x1 + border, w), min(y1 + border, h)
    if cx1 <= cx0 or cy1 <= cy0:  # the quad lies entirely outside the photo
        raise ValueError("face lies outside the image")
    if cx1 - cx0 < w or cy1 - cy0 < h:
        img = img[cy0:cy1, cx0:cx1]
        quad = quad - np.array([cx0, cy0])
        x0, x1, y0, y1 = x0 - cx0, x1 - cx0, y0 - cy0, y1 - cy0

    # Pad where the quad leaves the photo: reflect, blur and fade towards the median colour.
    h, w = img.shape[:2]
    pad = [
        max(-x0 + border, 0),
        max(-y0 + border, 0),
        max(x1 - w + border, 0),
        max(y1 - h + border, 0),
    ]
    if padding and max(pad) > border - 4:
        p = max(int(round(qsize * 0.3)), 1)
        pad = [max(v, p) for v in pad]
        img = _blurred_reflect_pad(img, (pad[0], pad[1], pad[2], pad[3]), qsize)
        quad = quad + np.array([pad[0], pad[1]])

    # Resample the quad at up to 4x the output size (at least the quad's own resolution),
    # then area-reduce to the output size.
    factor = min(4, max(1, math.ceil(qsize / size)))
    tsize = size * factor
    ul, ll, _, ur = quad + 0.5
    a = np.column_stack([(ur - ul) / tsize, (ll - ul) / tsize])
    offset = a @ np.array([0.5, 0.5]) + ul - 0.5
    m = np.column_stack([a, offset])
    # The warp enlarges (tsize >= qsize after the shrink), so cubic interpolation keeps detail.
    out = cv2.warpAffine(
        np.ascontiguousarray(img),
        m,
        (tsize, tsize),
        flags=cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_REPLICATE,
    )
    if factor > 1:
        out = cv2.resize(out, (size, size), interpolation=cv2.INTER_AREA)

    to_crop = quad_to_crop_matrix(quad0, size)
    return AlignedFace(
        image=np.ascontiguousarray(out),
        quad=quad0,
        to_crop=to_crop,
        landmarks=apply_affine(to_crop, lm),
    )


# Where the recipe puts the features in a crop of side 1, for a face whose eye-to-mouth line
# is perpendicular to the eye line and eye distance e, eye-to-mouth distance m: the crop half
# side is max(2e, 1.8m); eyes sit 0.1m above the centre, the mouth 0.9m below it.
def expected_positions(eye_distance: float, eye_to_mouth: float) -> dict[str, np.ndarray]:
    """Normalised (0..1) positions of eyes and mouth midpoint in an ideal FFHQ crop."""
    half = max(2.0 * eye_distance, 1.8 * eye_to_mouth)
    side = 2.0 * half
    cy_eye = 0.5 - 0.1 * eye_to_mouth / side
    return {
        "eye_left": np.array([0.5 - 0.5 * eye_distance / side, cy_eye]),
        "eye_right": np.array([0.5 + 0.5 * eye_distance / side, cy_eye]),
        "mouth_avg": np.array([0.5, 0.5 + 0.9 * eye_to_mouth / side]),
    }
