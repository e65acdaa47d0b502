"""Decoding photos: formats, EXIF orientation, odd modes and hostile files."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from photo_fixtures import exif_rotated_jpeg, truncated_jpeg
from PIL import Image

from studio.photos.decode import load_photo
from studio.photos.report import Reason, Rejected


def png_with_header(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )


def encode(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


@pytest.fixture()
def pattern() -> np.ndarray:
    rng = np.random.default_rng(1)
    return rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)


def rejection(path) -> Rejected:
    with pytest.raises(Rejected) as info:
        load_photo(path)
    return info.value


@pytest.mark.parametrize(
    "fmt,suffix",
    [("JPEG", ".jpg"), ("PNG", ".png"), ("WEBP", ".webp"), ("BMP", ".bmp"), ("TIFF", ".tif")],
)
def test_supported_formats(tmp_path, pattern, fmt, suffix):
    path = tmp_path / f"x{suffix}"
    path.write_bytes(encode(Image.fromarray(pattern), fmt))
    photo = load_photo(path)
    assert photo.rgb.shape == (30, 40, 3) and photo.rgb.dtype == np.uint8
    if fmt in ("PNG", "BMP", "TIFF"):
        assert np.array_equal(photo.rgb, pattern)


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_exif_orientation_is_applied(tmp_path, orientation):
    upright = np.zeros((60, 40, 3), np.uint8)
    upright[:20] = 255  # bright top band
    path = exif_rotated_jpeg(tmp_path / "r.jpg", upright, orientation)
    with Image.open(path) as raw:
        assert raw.size != (40, 60) or orientation == 3
    photo = load_photo(path)
    assert photo.rgb.shape == (60, 40, 3)
    assert photo.rgb[:15].mean() > 200 and photo.rgb[-30:].mean() < 30


@pytest.mark.parametrize("mode", ["L", "P", "RGBA", "LA", "CMYK", "1", "I;16", "F"])
def test_odd_pixel_modes_become_rgb(tmp_path, pattern, mode):
    img = Image.fromarray(pattern)
    if mode == "I;16":
        img = Image.fromarray(pattern[:, :, 0].astype(np.uint16) * 257)
        fmt = "PNG"
    elif mode == "F":
        img = Image.fromarray(pattern[:, :, 0].astype(np.float32) / 2)
        fmt = "TIFF"
    else:
        img = img.convert(mode)
        fmt = "JPEG" if mode == "CMYK" else "TIFF" if mode in ("1",) else "PNG"
    path = tmp_path / f"x.{fmt.lower()}"
    path.write_bytes(encode(img, fmt))
    photo = load_photo(path)
    assert photo.rgb.shape == (30, 40, 3) and photo.rgb.dtype == np.uint8


def test_truncated_jpeg(tmp_path, pattern):
    big = np.kron(pattern, np.ones((8, 8, 1), np.uint8))
    err = rejection(truncated_jpeg(tmp_path / "t.jpg", big))
    assert err.reason is Reason.TRUNCATED


def test_truncated_png(tmp_path, pattern):
    data = encode(Image.fromarray(np.kron(pattern, np.ones((8, 8, 1), np.uint8))), "PNG")
    (tmp_path / "t.png").write_bytes(data[: len(data) // 2])
    assert rejection(tmp_path / "t.png").reason in (Reason.TRUNCATED, Reason.CORRUPT)


def test_random_bytes_text_and_empty_files(tmp_path):
    (tmp_path / "r.png").write_bytes(np.random.default_rng(0).bytes(3000))
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "empty.jpg").write_bytes(b"")
    assert rejection(tmp_path / "r.png").reason is Reason.CORRUPT
    assert rejection(tmp_path / "notes.txt").reason is Reason.UNSUPPORTED
    err = rejection(tmp_path / "empty.jpg")
    assert err.reason is Reason.CORRUPT and "empty" in err.message


def test_other_formats_are_refused(tmp_path, pattern):
    (tmp_path / "a.gif").write_bytes(encode(Image.fromarray(pattern), "GIF"))
    (tmp_path / "b.heic").write_bytes(b"\0\0\0\x18ftypheic" + b"\0" * 64)
    (tmp_path / "c.jpg").write_bytes(encode(Image.fromarray(pattern), "GIF"))  # misnamed
    assert rejection(tmp_path / "a.gif").reason is Reason.UNSUPPORTED
    assert "HEIC" in rejection(tmp_path / "b.heic").message
    assert rejection(tmp_path / "c.jpg").reason is Reason.CORRUPT


def test_decompression_bombs_are_rejected_before_decoding(tmp_path):
    (tmp_path / "huge.png").write_bytes(png_with_header(100_000, 100_000))
    (tmp_path / "big.png").write_bytes(png_with_header(12_000, 9_000))
    assert rejection(tmp_path / "huge.png").reason is Reason.TOO_LARGE
    with pytest.warns(Image.DecompressionBombWarning):  # Pillow warns; we refuse
        err = rejection(tmp_path / "big.png")
    assert err.reason is Reason.TOO_LARGE and "12000x9000" in err.message
    (tmp_path / "ok.png").write_bytes(png_with_header(3000, 3000))
    with pytest.raises(Rejected) as info:
        load_photo(tmp_path / "ok.png", max_pixels=1_000_000)
    assert info.value.reason is Reason.TOO_LARGE


def test_missing_file_and_folder(tmp_path):
    (tmp_path / "d.jpg").mkdir()
    assert rejection(tmp_path / "d.jpg").reason is Reason.UNREADABLE
    assert rejection(tmp_path / "missing.jpg").reason is Reason.UNREADABLE
