"""Identity distance between two aligned faces: dlib's 128-D face descriptor (the ResNet in
the ``face-recognition-models`` package; no download).

Both images are enlarged to :data:`WORK_SIZE` and described at the same face box (the one
FFHQ-style alignment puts the face in), with landmarks from the 68-point predictor, so
small generated faces that dlib's detector would miss are still measured. dlib counts two
faces as the same person below a distance of about 0.6.
"""

from __future__ import annotations

import threading
from pathlib import Path

import cv2
import numpy as np

from studio.core.errors import StudioError
from studio.photos.faces import find_landmarks_model

DESCRIPTOR_FILE = "dlib_face_recognition_resnet_model_v1.dat"
WORK_SIZE = 256
# Where FFHQ-style alignment puts the face (fractions of the crop side): left, top, right,
# bottom of a box around brows, eyes, nose, mouth and chin.
FACE_BOX = (0.22, 0.28, 0.78, 0.86)
SAME_PERSON = 0.6


class IdentityMeter:
    """Face descriptors and distances for aligned face crops. Thread-safe."""

    def __init__(self) -> None:
        try:
            import dlib
        except ImportError as exc:  # pragma: no cover - a packaging problem
            raise StudioError("dlib is not installed: install the 'dlib-bin' package") from exc
        landmarks = find_landmarks_model()
        path = Path(landmarks).parent / DESCRIPTOR_FILE
        if not path.is_file():
            raise StudioError("the face descriptor model is missing: install the "
                              f"'face-recognition-models' package (it provides {DESCRIPTOR_FILE})")
        self._dlib = dlib
        self._predictor = dlib.shape_predictor(str(landmarks))
        self._net = dlib.face_recognition_model_v1(str(path))
        self._lock = threading.Lock()

    def descriptor(self, image: np.ndarray) -> np.ndarray:
        """128-D descriptor of an aligned ``H x W x 3`` uint8 face crop."""
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError("expected an HxWx3 uint8 image")
        img = np.ascontiguousarray(cv2.resize(image, (WORK_SIZE, WORK_SIZE),
                                              interpolation=cv2.INTER_CUBIC))
        x0, y0, x1, y1 = (int(round(v * WORK_SIZE)) for v in FACE_BOX)
        with self._lock:
            shape = self._predictor(img, self._dlib.rectangle(x0, y0, x1, y1))
            d = self._net.compute_face_descriptor(img, shape)
        return np.asarray(d, np.float64)

    def distance(self, a: np.ndarray, b: np.ndarray) -> float:
        """Euclidean distance of the descriptors of two aligned crops."""
        return float(np.linalg.norm(self.descriptor(a) - self.descriptor(b)))


_shared: IdentityMeter | None = None
_shared_lock = threading.Lock()


def shared_identity_meter() -> IdentityMeter:
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = IdentityMeter()
        return _shared
