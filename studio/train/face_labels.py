"""Labels measured on generated faces, for control discovery (:mod:`studio.face.discover`):
dlib's 68 landmarks from the photo pipeline (:mod:`studio.photos.faces`), turned into mouth,
eye, brow and head-pose figures by :func:`studio.face.discover.measure`.

Generated faces are aligned the FFHQ way, so when the detector finds no face (small or
odd-looking models) the landmark predictor runs on the box where an aligned face sits: every
model gets labels.
"""

from __future__ import annotations

import numpy as np

from studio.face.discover import measure

# Where an FFHQ-aligned face's dlib box sits in the crop (fractions of the side).
ALIGNED_BOX = (0.5, 0.57, 0.55)  # centre x, centre y, side


class LandmarkMeasurer:
    """Measures labels on generated faces: dlib's detector, and the aligned-face box when it
    finds nothing. Faces smaller than the detector's window are enlarged first."""

    MIN_SIDE = 256

    def __init__(self) -> None:
        from studio.photos.faces import shared_finder

        self.finder = shared_finder()
        self.detected = 0
        self.fallback = 0

    def landmarks(self, image: np.ndarray) -> np.ndarray:
        import cv2

        side = image.shape[0]
        scale = max(1.0, self.MIN_SIDE / side)
        work = image if scale == 1.0 else cv2.resize(
            image, (round(image.shape[1] * scale), round(side * scale)),
            interpolation=cv2.INTER_CUBIC)
        work = np.ascontiguousarray(work)
        # one pass at this scale: FaceFinder.find would enlarge a small face towards a
        # photo's size, which costs far more than a generated, aligned face needs
        faces = self.finder._detect_at(work, 1.0)
        if faces:
            self.detected += 1
            pts = faces[0].landmarks
        else:
            self.fallback += 1
            n = work.shape[0]
            cx, cy, s = (v * n for v in ALIGNED_BOX)
            rect = self.finder._dlib.rectangle(int(cx - s / 2), int(cy - s / 2),
                                               int(cx + s / 2), int(cy + s / 2))
            with self.finder._lock:
                shape = self.finder._predictor(work, rect)
            pts = np.array([(p.x, p.y) for p in shape.parts()], np.float64)
        return pts / scale

    def __call__(self, image: np.ndarray) -> dict[str, float]:
        return measure(self.landmarks(image))
