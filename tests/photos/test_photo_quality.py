"""Sharpness and perceptual hashes."""

from __future__ import annotations

import cv2
import numpy as np
from photo_fixtures import astronaut

from studio.photos.quality import hamming, phash, sharpness


def test_sharpness_drops_with_blur_and_ignores_resolution():
    img = cv2.resize(astronaut()[0:256, 100:356], (256, 256))
    sharp = sharpness(img)
    assert sharpness(cv2.GaussianBlur(img, (0, 0), 3)) < sharp / 10
    # The same crop at another data set size scores about the same.
    assert (
        0.5 < sharpness(cv2.resize(img, (1024, 1024), interpolation=cv2.INTER_CUBIC)) / sharp < 1.5
    )
    assert sharpness(np.full((256, 256, 3), 128, np.uint8)) == 0.0


def test_phash_matches_copies_and_separates_images():
    img = astronaut()
    h = phash(img, 8)
    assert h < 2**64
    assert hamming(h, phash(cv2.resize(img, (200, 200), interpolation=cv2.INTER_AREA), 8)) <= 2
    ok, jpg = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 30])
    assert hamming(h, phash(cv2.imdecode(jpg, cv2.IMREAD_COLOR), 8)) <= 4
    assert hamming(h, phash(img[:, ::-1], 8)) > 16
    from skimage import data

    assert hamming(h, phash(data.coffee(), 8)) > 16
    assert phash(img, 16) < 2**256
