"""Build test photo folders from face photos that ship with matplotlib and scikit-image."""

from __future__ import annotations

import contextlib
import importlib
import io
from pathlib import Path

import cv2
import numpy as np
from PIL import Image


def grace_hopper() -> np.ndarray:
    import matplotlib

    path = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
    with Image.open(path) as img:
        return np.asarray(img.convert("RGB"))


def astronaut() -> np.ndarray:
    from skimage import data

    return data.astronaut()


def lfw_face(i: int, side: int = 200) -> np.ndarray:
    from skimage import data

    g = (data.lfw_subset()[i] * 255).astype(np.uint8)
    g = cv2.resize(g, (side, side), interpolation=cv2.INTER_CUBIC)
    return np.repeat(g[:, :, None], 3, axis=2)


def save(path: Path, rgb: np.ndarray, **kwargs) -> Path:
    Image.fromarray(rgb).save(path, **kwargs)
    return path


def exif_rotated_jpeg(path: Path, rgb: np.ndarray, orientation: int = 6) -> Path:
    """Store ``rgb`` rotated so that only EXIF ``orientation`` makes it upright again."""
    img = Image.fromarray(rgb)
    stored = {
        3: img.transpose(Image.Transpose.ROTATE_180),
        6: img.transpose(Image.Transpose.ROTATE_90),  # viewer rotates 90 deg clockwise
        8: img.transpose(Image.Transpose.ROTATE_270),
    }[orientation]
    exif = Image.Exif()
    exif[0x0112] = orientation
    stored.save(path, "JPEG", quality=95, exif=exif.tobytes())
    return path


def truncated_jpeg(path: Path, rgb: np.ndarray) -> Path:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG", quality=90)
    data = buf.getvalue()
    path.write_bytes(data[: len(data) // 2])
    return path


def build_mixed_folder(folder: Path) -> dict[str, str | None]:
    """The acceptance folder. Returns file name -> expected reason (None: kept)."""
    folder.mkdir(parents=True, exist_ok=True)
    grace, astro = grace_hopper(), astronaut()
    rng = np.random.default_rng(0)
    expected: dict[str, str | None] = {}

    save(folder / "grace_hopper.jpg", grace, quality=95)
    expected["grace_hopper.jpg"] = None
    save(folder / "astronaut.png", astro)
    expected["astronaut.png"] = None
    # 25x25 LFW faces enlarged 8x: a face is found but the detail is not there.
    for i in (0, 1):
        save(folder / f"lfw_{i}.png", lfw_face(i))
        expected[f"lfw_{i}.png"] = "too_blurry"
    # Re-encoded, rescaled copy of Grace Hopper, sorted after the original.
    h, w = grace.shape[:2]
    small = cv2.resize(grace, (w * 3 // 4, h * 3 // 4), interpolation=cv2.INTER_AREA)
    save(folder / "grace_hopper_copy.webp", small, quality=80)
    expected["grace_hopper_copy.webp"] = "duplicate"
    # The same photo stored sideways with an EXIF orientation tag: found only if applied,
    # then a duplicate of the original.
    exif_rotated_jpeg(folder / "grace_rotated.jpg", grace, 6)
    expected["grace_rotated.jpg"] = "duplicate"
    # A heavily blurred copy.
    save(folder / "grace_blurred.jpg", cv2.GaussianBlur(grace, (0, 0), 5), quality=95)
    expected["grace_blurred.jpg"] = "too_blurry"
    # A tiny copy: 48x56 pixels.
    save(folder / "tiny.png", cv2.resize(grace, (48, 56), interpolation=cv2.INTER_AREA))
    expected["tiny.png"] = "face_too_small"
    # Broken files.
    truncated_jpeg(folder / "truncated.jpg", astro)
    expected["truncated.jpg"] = "truncated"
    (folder / "random.png").write_bytes(rng.integers(0, 256, 5000, dtype=np.uint8).tobytes())
    expected["random.png"] = "corrupt"
    (folder / "notes.txt").write_text("not a photo\n")
    expected["notes.txt"] = "unsupported"
    # No faces.
    from skimage import data

    save(folder / "coffee.jpg", data.coffee(), quality=90)
    expected["coffee.jpg"] = "no_face"
    save(folder / "cat.bmp", data.chelsea())
    expected["cat.bmp"] = "no_face"
    grad = np.linspace(0, 255, 400, dtype=np.float32)
    gradient = np.stack([np.tile(grad, (300, 1))] * 3, axis=2).astype(np.uint8)
    save(folder / "gradient.tif", gradient)
    expected["gradient.tif"] = "no_face"
    return expected


def run_cli(argv: list[str]) -> tuple[int, str, str]:
    """Run ``studio ARGV`` in-process with the ingest command registered."""
    from unittest import mock

    import studio.cli as cli

    modules = list(cli.COMMAND_MODULES)
    names = [getattr(m, "__name__", m) for m in modules]  # module objects or their names
    if "studio.cli.ingest_cmds" not in names:  # until the lead registers the module
        name = "studio.cli.ingest_cmds"
        by_name = all(isinstance(m, str) for m in modules)
        modules.append(name if by_name else importlib.import_module(name))
    out, err = io.StringIO(), io.StringIO()
    with (
        mock.patch.object(cli, "COMMAND_MODULES", modules),
        contextlib.redirect_stdout(out),
        contextlib.redirect_stderr(err),
    ):
        code = cli.main(argv)
    return code, out.getvalue(), err.getvalue()
