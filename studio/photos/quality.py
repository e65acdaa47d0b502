"""Image checks on aligned crops: sharpness and perceptual hashes for near-duplicates."""

from __future__ import annotations

import cv2
import numpy as np

# Sharpness is measured on the crop at min(size, 256) px and expressed in 256 px units, so one
# threshold serves every data set size (see sharpness()).
SHARPNESS_REFERENCE = 256
SHARPNESS_MIN_SIDE = 32  # below this the scaling stops (tiny crops are all edges)
# The face centre in FFHQ crop coordinates (0..1): from the brows to below the mouth.
FACE_REGION = (0.25, 0.30, 0.75, 0.80)  # left, top, right, bottom


def _gray(image: np.ndarray) -> np.ndarray:
    if image.ndim == 2:
        return image.astype(np.float32)
    return cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2GRAY).astype(np.float32)


def sharpness(crop: np.ndarray) -> float:
    """Variance of the Laplacian over the face centre of an aligned crop, in 256 px units.

    Crops larger than 256 px are area-reduced to 256 first (detail finer than that does not
    count); smaller crops are measured as they are, and the value is scaled by
    ``(side / 256) ** 2`` because a face drawn with fewer pixels has stronger per-pixel edges
    (measured on FFHQ-aligned portraits: about 2-4x per halving). On 0..255 grey levels a
    sharp portrait scores in the hundreds; a heavily blurred or enlarged one below ~20.
    """
    gray = _gray(crop)
    ref = SHARPNESS_REFERENCE
    side = gray.shape[0]
    if side > ref:
        gray = cv2.resize(gray, (ref, ref), interpolation=cv2.INTER_AREA)
        side = ref
    left, top, right, bottom = (int(round(v * side)) for v in FACE_REGION)
    region = gray[top:bottom, left:right]
    lap = cv2.Laplacian(region.astype(np.float64), cv2.CV_64F, ksize=1)
    value = float(lap[1:-1, 1:-1].var()) if min(lap.shape) > 2 else 0.0
    return value * (max(side, SHARPNESS_MIN_SIDE) / ref) ** 2


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
