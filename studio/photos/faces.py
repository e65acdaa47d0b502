"""Face detection (dlib's HOG frontal detector) and 68-point landmarks (dlib shape predictor).

The landmark model ships in the ``face-recognition-models`` package. We locate its file
without importing that package (its ``__init__`` needs ``pkg_resources``).
"""

from __future__ import annotations

import importlib.util
import math
import os
import threading
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from studio.core.errors import StudioError

LANDMARKS_FILE = "shape_predictor_68_face_landmarks.dat"
LANDMARKS_ENV = "STUDIO_FACE_LANDMARKS"  # optional override: path to the .dat file

# dlib's HOG detector scans an 80x80 window: faces smaller than that are not found.
DETECTOR_WINDOW = 80
# Detector boxes are about 0.5-0.7 of the FFHQ crop side; use the low end to plan scales.
BOX_PER_QUAD = 0.5
# Work budget for the detection image (pixels); larger photos are scaled down for it.
DETECT_MAX_PIXELS = 4_000_000
# Small photos are enlarged for detection towards this long side, at most UPSAMPLE_MAX x.
DETECT_SMALL_SIDE = 1000
UPSAMPLE_MAX = 8.0


def find_landmarks_model() -> Path:
    """Path of ``shape_predictor_68_face_landmarks.dat``; StudioError when it is missing."""
    override = os.environ.get(LANDMARKS_ENV)
    if override:
        path = Path(override)
        if path.is_file():
            return path
        raise StudioError(f"{LANDMARKS_ENV} points to a missing file", path)
    candidates: list[Path] = []
    try:
        spec = importlib.util.find_spec("face_recognition_models")
    except (ImportError, ValueError):
        spec = None
    if spec is not None:
        for loc in spec.submodule_search_locations or []:
            candidates.append(Path(loc) / "models" / LANDMARKS_FILE)
        if spec.origin:
            candidates.append(Path(spec.origin).parent / "models" / LANDMARKS_FILE)
    for path in candidates:
        if path.is_file():
            return path
    raise StudioError(
        "the face landmark model is missing: install the 'face-recognition-models' "
        f"package (it provides {LANDMARKS_FILE})"
    )


@dataclass(frozen=True)
class Face:
    box: tuple[float, float, float, float]  # left, top, right, bottom in source pixels
    score: float  # detector confidence (dlib HOG; 0 is its default threshold)
    landmarks: np.ndarray  # 68x2 float, source pixel-index coordinates


class FaceFinder:
    """Finds faces and their landmarks. Loading the models takes about a second."""

    def __init__(self, landmarks_path: str | Path | None = None, threshold: float = 0.0) -> None:
        try:
            import dlib
        except ImportError as exc:  # pragma: no cover - a packaging problem
            raise StudioError("dlib is not installed: install the 'dlib-bin' package") from exc
        self._dlib = dlib
        path = Path(landmarks_path) if landmarks_path else find_landmarks_model()
        try:
            self._predictor = dlib.shape_predictor(str(path))
        except RuntimeError as exc:
            raise StudioError(f"cannot load the face landmark model ({exc})", path) from exc
        self._detector = dlib.get_frontal_face_detector()
        self.threshold = threshold
        self._lock = threading.Lock()

    def detection_scale(self, width: int, height: int, min_face: float) -> float:
        """Scale at which to run the detector so faces of ``min_face`` crop side are found."""
        long_side = max(width, height)
        # Enough to see the smallest face we would accept...
        scale = DETECTOR_WINDOW / max(min_face * BOX_PER_QUAD, 1.0)
        # ...and small photos enlarged so faces filling them are found and measured.
        if long_side < DETECT_SMALL_SIDE:
            scale = max(scale, min(DETECT_SMALL_SIDE / long_side, UPSAMPLE_MAX))
        scale = min(scale, UPSAMPLE_MAX)
        # Stay within the pixel budget (large photos are scaled down).
        budget = math.sqrt(DETECT_MAX_PIXELS / max(width * height, 1))
        return float(min(scale, budget))

    def find(self, image: np.ndarray, min_face: float = 0.0) -> list[Face]:
        """Faces in an HxWx3 uint8 RGB image, largest first."""
        h, w = image.shape[:2]
        scale = self.detection_scale(w, h, min_face)
        if abs(scale - 1.0) > 1e-3:
            interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
            size = (max(1, round(w * scale)), max(1, round(h * scale)))
            work = cv2.resize(image, size, interpolation=interp)
            sx, sy = size[0] / w, size[1] / h
        else:
            work, sx, sy = image, 1.0, 1.0
        # A grey margin lets the detector find faces that touch the photo's edges.
        margin = max(8, int(0.1 * max(work.shape[:2])))
        padded = cv2.copyMakeBorder(
            np.ascontiguousarray(work), margin, margin, margin, margin,
            cv2.BORDER_CONSTANT, value=(127, 127, 127),
        )
        # Landmarks on the enlarged image when we enlarged (finer sampling), else the original.
        lm_image, lm_scale = (padded, (sx, sy)) if scale > 1 else (image, None)
        with self._lock:
            rects, scores, _ = self._detector.run(padded, 0, self.threshold)
            faces = []
            for rect, score in zip(rects, scores, strict=True):
                if lm_scale is None:
                    left = (rect.left() - margin) / sx
                    top = (rect.top() - margin) / sy
                    right = (rect.right() - margin) / sx
                    bottom = (rect.bottom() - margin) / sy
                    r = self._dlib.rectangle(
                        int(round(left)), int(round(top)), int(round(right)), int(round(bottom))
                    )
                    shape = self._predictor(lm_image, r)
                    pts = np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float64)
                else:
                    shape = self._predictor(lm_image, rect)
                    pts = np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float64)
                    pts = (pts - margin + 0.5) / np.array(lm_scale) - 0.5
                    left = (rect.left() - margin) / sx
                    top = (rect.top() - margin) / sy
                    right = (rect.right() - margin) / sx
                    bottom = (rect.bottom() - margin) / sy
                faces.append(Face((left, top, right, bottom), float(score), pts))
        faces.sort(key=lambda f: (f.box[2] - f.box[0]) * (f.box[3] - f.box[1]), reverse=True)
        return faces


_shared: FaceFinder | None = None
_shared_lock = threading.Lock()


def shared_finder() -> FaceFinder:
    """A process-wide FaceFinder (the landmark model is ~100 MB; load it once)."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = FaceFinder()
        return _shared
