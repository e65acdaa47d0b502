"""Hypothesis: hostile bytes named as images never escape the ingest loop."""

from __future__ import annotations

import io
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from studio.photos.ingest import IngestOptions, ingest_photos
from studio.photos.report import Reason

SUFFIXES = [".jpg", ".png", ".webp", ".bmp", ".tif", ".jpeg", ".txt", ""]


def _valid_encodings() -> list[bytes]:
    rng = np.random.default_rng(3)
    img = Image.fromarray(rng.integers(0, 256, (24, 32, 3), dtype=np.uint8))
    out = []
    for fmt, kw in (
        ("JPEG", {"quality": 80}),
        ("PNG", {}),
        ("WEBP", {}),
        ("BMP", {}),
        ("TIFF", {}),
        ("TIFF", {"compression": "tiff_lzw"}),
        ("JPEG", {"progressive": True, "exif": Image.Exif().tobytes()}),
    ):
        buf = io.BytesIO()
        img.save(buf, fmt, **kw)
        out.append(buf.getvalue())
    return out


VALID = _valid_encodings()


@st.composite
def mutated_image(draw) -> bytes:
    data = bytearray(draw(st.sampled_from(VALID)))
    for _ in range(draw(st.integers(0, 8))):
        pos = draw(st.integers(0, len(data) - 1))
        data[pos] = draw(st.integers(0, 255))
    if draw(st.booleans()):
        data = data[: draw(st.integers(0, len(data)))]
    return bytes(data)


hostile = st.one_of(
    st.binary(max_size=2048),
    st.sampled_from(
        [b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"RIFF\0\0\0\0WEBP", b"BM", b"II*\0", b"MM\0*"]
    ).flatmap(lambda head: st.binary(max_size=1024).map(lambda t: head + t)),
    mutated_image(),
)


@pytest.fixture(scope="module")
def warm_finder(finder):
    return finder


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(blobs=st.lists(st.tuples(hostile, st.sampled_from(SUFFIXES)), min_size=1, max_size=3))
def test_hostile_files_never_escape_the_ingest(warm_finder, blobs):
    with tempfile.TemporaryDirectory() as tmp:
        photos = Path(tmp) / "photos"
        photos.mkdir()
        for i, (data, suffix) in enumerate(blobs):
            (photos / f"f{i}{suffix}").write_bytes(data)
        report = ingest_photos(
            photos, Path(tmp) / "ds", 32, IngestOptions(max_pixels=2_000_000), finder=warm_finder
        )
        assert len(report.files) == len(blobs)
        for f in report.files:
            assert f.status in ("kept", "rejected")
            assert f.message
            # Every failure is classified; none is an unexpected internal error.
            assert f.reason != Reason.ERROR, f.message
