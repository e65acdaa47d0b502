"""numpy ↔ Qt image conversion."""

from __future__ import annotations

import numpy as np
from PySide6.QtGui import QImage


def to_qimage(img: np.ndarray) -> QImage:
    """H×W×3 (RGB) or H×W×4 (RGBA) uint8 → a QImage that owns its pixels."""
    if img.dtype != np.uint8:
        raise ValueError("image must be uint8")
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    img = np.ascontiguousarray(img)
    h, w, c = img.shape
    fmt = QImage.Format.Format_RGB888 if c == 3 else QImage.Format.Format_RGBA8888
    return QImage(img.data, w, h, img.strides[0], fmt).copy()


def from_qimage(qimg: QImage) -> np.ndarray:
    """QImage → H×W×4 RGBA uint8 copy."""
    q = qimg.convertToFormat(QImage.Format.Format_RGBA8888)
    w, h = q.width(), q.height()
    arr = np.frombuffer(q.constBits(), np.uint8, count=q.sizeInBytes())
    return arr.reshape(h, q.bytesPerLine())[:, : w * 4].reshape(h, w, 4).copy()
