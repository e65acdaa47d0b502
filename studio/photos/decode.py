"""Decode one photo safely: supported formats only, a pixel cap, EXIF orientation applied.

Every failure becomes a :class:`~studio.photos.report.Rejected` with a reason code and a
message for the artist; nothing else escapes :func:`load_photo` for a bad file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from studio.photos.report import Reason, Rejected

# Only these decoders are ever used (never EPS/PSD/...: some call external programs).
FORMATS = ("JPEG", "PNG", "WEBP", "BMP", "DIB", "TIFF")  # JPEG covers MPO
IMAGE_SUFFIXES = {
    ".jpg",
    ".jpeg",
    ".jpe",
    ".jfif",
    ".png",
    ".webp",
    ".bmp",
    ".dib",
    ".tif",
    ".tiff",
}
# Pillow's own decompression-bomb limit (about 89.5 megapixels) by default.
DEFAULT_MAX_PIXELS = 89_478_485
# Longer side / shorter side. Even a stitched panorama stays well under this; a 3x50000 strip
# holds no face and would make the face detector plan for tens of gigabytes.
MAX_ASPECT = 25
_KNOWN_OTHER = {
    ".heic": "HEIC/HEIF photos are not supported; export them as JPEG",
    ".heif": "HEIC/HEIF photos are not supported; export them as JPEG",
    ".avif": "AVIF images are not supported; export them as JPEG or PNG",
    ".gif": "GIF images are not supported; use JPEG or PNG",
    ".raw": "camera RAW files are not supported; export them as JPEG",
    ".cr2": "camera RAW files are not supported; export them as JPEG",
    ".nef": "camera RAW files are not supported; export them as JPEG",
    ".dng": "camera RAW files are not supported; export them as JPEG",
    ".arw": "camera RAW files are not supported; export them as JPEG",
}


@dataclass
class Photo:
    rgb: np.ndarray  # HxWx3 uint8, upright
    format: str
    notes: list[str] = field(default_factory=list)

    @property
    def width(self) -> int:
        return int(self.rgb.shape[1])

    @property
    def height(self) -> int:
        return int(self.rgb.shape[0])


def _to_rgb(img: Image.Image) -> np.ndarray:
    mode = img.mode
    if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return np.asarray(Image.alpha_composite(background, rgba).convert("RGB"))
    if mode.startswith("I;16") or mode in ("I", "F"):
        arr = np.asarray(img).astype(np.float64)
        top = 65535.0 if mode.startswith("I;16") else float(np.nanmax(arr)) if arr.size else 1.0
        if not np.isfinite(top) or top <= 0:
            top = 1.0
        scale = 255.0 / top if top > 255 else 1.0
        gray = np.clip(np.nan_to_num(arr * scale), 0, 255).astype(np.uint8)
        return np.repeat(gray[:, :, None], 3, axis=2)
    return np.asarray(img.convert("RGB"))


def _classify_decode_error(exc: BaseException, fmt: str) -> Rejected:
    text = str(exc) or type(exc).__name__
    if isinstance(exc, EOFError) or "truncated" in text.lower():
        return Rejected(Reason.TRUNCATED, f"the {fmt} file is truncated (it ends early): {text}")
    if isinstance(exc, MemoryError):
        return Rejected(Reason.TOO_LARGE, "not enough memory to decode this image")
    return Rejected(Reason.CORRUPT, f"the {fmt} data is corrupt: {text}")


def load_photo(path: str | Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> Photo:
    """Read ``path`` as an upright RGB photo, or raise :class:`Rejected`."""
    path = Path(path)
    suffix = path.suffix.lower()
    try:
        fh = open(path, "rb")  # noqa: SIM115 - closed below; open errors are classified here
    except OSError as exc:
        raise Rejected(Reason.UNREADABLE, f"cannot read the file: {exc.strerror or exc}") from None
    try:
        try:
            empty = not fh.read(1)
            fh.seek(0)
        except OSError as exc:
            raise Rejected(
                Reason.UNREADABLE, f"cannot read the file: {exc.strerror or exc}"
            ) from None
        if empty:
            raise Rejected(Reason.CORRUPT, "the file is empty (0 bytes)")
        try:
            img = Image.open(fh, formats=FORMATS)
        except Image.DecompressionBombError as exc:
            raise Rejected(
                Reason.TOO_LARGE, f"too many pixels to decode safely ({exc})"
            ) from None
        except UnidentifiedImageError:
            if suffix in _KNOWN_OTHER:
                raise Rejected(Reason.UNSUPPORTED, _KNOWN_OTHER[suffix]) from None
            if suffix in IMAGE_SUFFIXES:
                raise Rejected(
                    Reason.CORRUPT,
                    f"not a valid {suffix[1:].upper()} image (the data is not recognised)",
                ) from None
            raise Rejected(
                Reason.UNSUPPORTED,
                "not a supported image (JPEG, PNG, WebP, BMP or TIFF)",
            ) from None
        except OSError as exc:
            raise Rejected(Reason.UNREADABLE, f"cannot read the file: {exc}") from None
        except Exception as exc:  # noqa: BLE001 - malformed headers raise all sorts
            raise _classify_decode_error(exc, suffix[1:].upper() or "image") from None
        with img:
            fmt = img.format or "image"
            w, h = img.size
            if w <= 0 or h <= 0:
                raise Rejected(Reason.CORRUPT, f"the {fmt} header gives an empty size {w}x{h}")
            # Both from the header, before a single pixel is decoded.
            if max(w, h) > MAX_ASPECT * min(w, h):
                raise Rejected(
                    Reason.EXTREME_ASPECT,
                    f"extreme aspect ratio {w}x{h} (more than {MAX_ASPECT}:1): not a photo "
                    "of a face",
                )
            if w * h > max_pixels:
                raise Rejected(
                    Reason.TOO_LARGE,
                    f"too many pixels: the image is {w}x{h} ({w * h / 1e6:.0f} megapixels), "
                    f"more than the {max_pixels / 1e6:.0f} megapixel limit; scale it down first",
                )
            try:
                img.load()
            except Rejected:
                raise
            except Image.DecompressionBombError as exc:
                raise Rejected(
                    Reason.TOO_LARGE, f"the image is too large to decode safely ({exc})"
                ) from None
            except Exception as exc:  # noqa: BLE001
                raise _classify_decode_error(exc, fmt) from None
            notes: list[str] = []
            upright = img
            try:
                upright = ImageOps.exif_transpose(img) or img
            except Exception as exc:  # noqa: BLE001 - broken EXIF: use the pixels as stored
                notes.append(f"EXIF orientation unreadable ({exc}); used the image as stored")
            try:
                rgb = _to_rgb(upright)
            except Exception as exc:  # noqa: BLE001
                raise _classify_decode_error(exc, fmt) from None
            if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
                raise Rejected(Reason.CORRUPT, f"unexpected pixel layout in the {fmt} image")
            return Photo(rgb=np.ascontiguousarray(rgb), format=fmt, notes=notes)
    finally:
        fh.close()
