"""Image checks on aligned crops: sharpness and perceptual hashes for near-duplicates."""

from __future__ import annotations

import cv2
import numpy as np

# Sharpness is measured on the crop scaled to this side, so the number does not depend on
# the data set resolution.
SHARPNESS_REFERENCE = 256
# The face centre in FFHQ crop coordinates (0..1): from the brows to below the mouth.
FACE_REGION = (0.25, 0.30, 0.75, 0.80)  # left, top, right, bottom


def _gray(image: np.ndarray) -> np.ndarray:
    if image.ndim == 2:
        return image.astype(np.float32)
    return cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2GRAY).astype(np.float32)


def sharpness(crop: np.ndarray) -> float:
    """Variance of the Laplacian over the face centre of an aligned crop.

    The crop is first scaled to 256x256, so values compare across data set sizes. On 0..255
    grey levels a sharp portrait scores in the hundreds; a heavily blurred one below ~20.
    """
    gray = _gray(crop)
    ref = SHARPNESS_REFERENCE
    if gray.shape[0] != ref or gray.shape[1] != ref:
        interp = cv2.INTER_AREA if gray.shape[0] > ref else cv2.INTER_LINEAR
        gray = cv2.resize(gray, (ref, ref), interpolation=interp)
    left, top, right, bottom = (int(round(v * ref)) for v in FACE_REGION)
    region = gray[top:bottom, left:right]
    lap = cv2.Laplacian(region.astype(np.float64), cv2.CV_64F, ksize=1)
    return float(lap[1:-1, 1:-1].var())


def phash(image: np.ndarray, bits: int = 16) -> int:
    """Perceptual hash: signs of the lowest ``bits`` x ``bits`` DCT terms of the grey image.

    Returns a ``bits * bits``-bit integer. Robust to re-encoding, rescaling and mild colour
    changes; see :func:`hamming`.
    """
    gray = _gray(image)
    side = bits * 4
    small = cv2.resize(gray, (side, side), interpolation=cv2.INTER_AREA)
    coeffs = cv2.dct(small)[:bits, :bits].flatten()
    ac = coeffs[1:]  # the DC term carries only brightness
    bitsv = np.concatenate([[False], ac > np.median(ac)])
    value = 0
    for b in bitsv:
        value = (value << 1) | int(b)
    return value


def hamming(a: int, b: int) -> int:
    return (a ^ b).bit_count()
