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
VERIFIER_FILE = "mmod_human_face_detector.dat"  # dlib's CNN face detector, same package
LANDMARKS_ENV = "STUDIO_FACE_LANDMARKS"  # optional override: path to the .dat file

# dlib's HOG detector scans an 80x80 window: faces smaller than that are not found.
DETECTOR_WINDOW = 80
# Detector boxes are about 0.5-0.7 of the FFHQ crop side; use the low end to plan scales.
BOX_PER_QUAD = 0.5
# Work budget for the detection image (pixels); larger photos are scaled down for it.
DETECT_MAX_PIXELS = 4_000_000
DETECT_RETRY_PIXELS = 16_000_000  # second pass when the first found nothing
# Small photos are enlarged for detection towards this long side, at most UPSAMPLE_MAX x.
DETECT_SMALL_SIDE = 1000
UPSAMPLE_MAX = 8.0
# HOG detections scoring below this are confirmed by the CNN detector (drops false positives
# such as badges and patterns; real faces with low HOG scores pass).
VERIFY_BELOW = 0.5
VERIFY_SIDE = 200  # the verification crop, face box at about half of it


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


def detection_margin(height: int, width: int) -> int:
    """The grey margin around the detection image, which lets the detector find faces that
    touch the photo's edges: a tenth of the long side, but never more than the short side
    (no face is larger than that), so a long thin strip does not grow into gigabytes."""
    return max(8, min(int(0.1 * max(height, width)), min(height, width)))


class FaceFinder:
    """Finds faces and their landmarks. Loading the models takes about a second."""

    def __init__(
        self,
        landmarks_path: str | Path | None = None,
        threshold: float = 0.0,
        verify_below: float = VERIFY_BELOW,
    ) -> None:
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
        self.verify_below = verify_below
        self._verifier = None
        verifier = path.parent / VERIFIER_FILE
        if verify_below > threshold and verifier.is_file():
            try:
                self._verifier = dlib.cnn_face_detection_model_v1(str(verifier))
            except RuntimeError:  # pragma: no cover - a damaged install: skip verification
                self._verifier = None
        self._lock = threading.Lock()

    def detection_scale(
        self, width: int, height: int, min_face: float, max_pixels: float = DETECT_MAX_PIXELS
    ) -> tuple[float, float]:
        """(scale to use, scale wanted) for the detector to find faces of ``min_face`` side.

        The wanted scale makes the smallest acceptable face fill the detector window (and
        enlarges small photos); the used one also keeps within ``max_pixels``.
        """
        long_side = max(width, height)
        # Enough to see the smallest face we would accept...
        scale = DETECTOR_WINDOW / max(min_face * BOX_PER_QUAD, 1.0)
        # ...and small photos enlarged so faces filling them are found and measured.
        if long_side < DETECT_SMALL_SIDE:
            scale = max(scale, min(DETECT_SMALL_SIDE / long_side, UPSAMPLE_MAX))
        scale = min(scale, UPSAMPLE_MAX)
        # Stay within the pixel budget (large photos are scaled down).
        budget = math.sqrt(max_pixels / max(width * height, 1))
        return float(min(scale, budget)), float(scale)

    def find(self, image: np.ndarray, min_face: float = 0.0) -> list[Face]:
        """Faces in an HxWx3 uint8 RGB image, largest first.

        Large photos are searched at a reduced scale first (about 4 megapixels); when that
        finds nothing and small faces could still be usable, a second pass runs closer to the
        wanted scale (up to 16 megapixels).
        """
        h, w = image.shape[:2]
        scale, wanted = self.detection_scale(w, h, min_face)
        faces = self._detect_at(image, scale)
        if not faces and wanted > scale * 1.2:
            second, _ = self.detection_scale(w, h, min_face, DETECT_RETRY_PIXELS)
            if second > scale * 1.2:
                faces = self._detect_at(image, second)
        return faces

    def _detect_at(self, image: np.ndarray, scale: float) -> list[Face]:
        h, w = image.shape[:2]
        if abs(scale - 1.0) > 1e-3:
            interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
            size = (max(1, round(w * scale)), max(1, round(h * scale)))
            work = cv2.resize(image, size, interpolation=interp)
            sx, sy = size[0] / w, size[1] / h
        else:
            work, sx, sy = image, 1.0, 1.0
        margin = detection_margin(*work.shape[:2])
        padded = cv2.copyMakeBorder(
            np.ascontiguousarray(work),
            margin,
            margin,
            margin,
            margin,
            cv2.BORDER_CONSTANT,
            value=(127, 127, 127),
        )
        enlarged = scale > 1
        with self._lock:
            rects, scores, _ = self._detector.run(padded, 0, self.threshold)
            faces = []
            for rect, score in zip(rects, scores, strict=True):
                left = (rect.left() - margin) / sx
                top = (rect.top() - margin) / sy
                right = (rect.right() - margin) / sx
                bottom = (rect.bottom() - margin) / sy
                if enlarged:
                    # Landmarks on the enlarged image (finer sampling), mapped back.
                    shape = self._predictor(padded, rect)
                    pts = np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float64)
                    pts = (pts - margin + 0.5) / np.array([sx, sy]) - 0.5
                else:
                    # Landmarks on the full-resolution photo.
                    r = self._dlib.rectangle(
                        int(round(left)), int(round(top)), int(round(right)), int(round(bottom))
                    )
                    shape = self._predictor(image, r)
                    pts = np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float64)
                box = (left, top, right, bottom)
                if score < self.verify_below and not self._verified(image, box):
                    continue
                faces.append(Face(box, float(score), pts))
        faces.sort(key=lambda f: (f.box[2] - f.box[0]) * (f.box[3] - f.box[1]), reverse=True)
        return faces

    def _verified(self, image: np.ndarray, box: tuple[float, float, float, float]) -> bool:
        """Whether the CNN detector also sees a face around ``box`` (True if unavailable)."""
        if self._verifier is None:
            return True
        left, top, right, bottom = box
        half = max(right - left, bottom - top, 1.0)
        cx, cy = (left + right) / 2, (top + bottom) / 2
        x0, y0 = int(round(cx - half)), int(round(cy - half))
        x1, y1 = int(round(cx + half)), int(round(cy + half))
        h, w = image.shape[:2]
        sub = image[max(y0, 0) : min(y1, h), max(x0, 0) : min(x1, w)]
        if sub.size == 0:
            return False
        sub = cv2.copyMakeBorder(
            np.ascontiguousarray(sub),
            max(-y0, 0),
            max(y1 - h, 0),
            max(-x0, 0),
            max(x1 - w, 0),
            cv2.BORDER_CONSTANT,
            value=(127, 127, 127),
        )
        interp = cv2.INTER_AREA if sub.shape[0] > VERIFY_SIDE else cv2.INTER_CUBIC
        sub = cv2.resize(sub, (VERIFY_SIDE, VERIFY_SIDE), interpolation=interp)
        found = self._verifier(np.ascontiguousarray(sub), 0)
        centre = VERIFY_SIDE / 2
        for det in found:
            r = det.rect
            # The confirmed face must sit near the centre, at a similar size.
            if (
                abs((r.left() + r.right()) / 2 - centre) < VERIFY_SIDE * 0.2
                and abs((r.top() + r.bottom()) / 2 - centre) < VERIFY_SIDE * 0.2
            ):
                return True
        return False


_shared: FaceFinder | None = None
_shared_lock = threading.Lock()


def shared_finder() -> FaceFinder:
    """A process-wide FaceFinder (the landmark model is ~100 MB; load it once)."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = FaceFinder()
        return _shared
