"""Training images: a folder of PNG/JPG faces and a seeded, resumable batch order.

Accepted folders:

* a data set made by ``studio ingest`` (``dataset.json`` lists the crops; faces the user
  removed are not used);
* a folder made by ``studio synth-faces`` (``synth.json``, numbered PNGs);
* any folder of ``.png`` / ``.jpg`` / ``.jpeg`` images (not searched recursively).

Images are converted to RGB, centre-cropped to a square and resized (Lanczos) when their
size differs from the model's. Files that cannot be read are skipped and reported; a
folder with no usable image is an error naming the folder.

The batch order depends only on (seed, images seen): image ``k`` of the run is entry
``k mod M`` of the permutation of epoch ``k div M`` (``M`` = number of images, doubled by
mirroring), so a resumed run sees exactly the images it would have seen.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from studio.core.errors import StudioError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
DEFAULT_CACHE_BYTES = 2 << 30  # keep decoded images in memory up to this much


@dataclass
class Skipped:
    file: str
    reason: str


def _list_files(folder: Path) -> list[Path]:
    if not folder.exists():
        raise StudioError("no such folder", folder)
    if not folder.is_dir():
        raise StudioError("is not a folder of images", folder)
    desc = folder / "dataset.json"
    if desc.is_file():  # a studio ingest data set: use its list (removed faces stay out)
        try:
            doc = json.loads(desc.read_text(encoding="utf-8"))
            names = [str(img["file"]) for img in doc.get("images", []) if img.get("file")]
        except (OSError, ValueError, TypeError, KeyError, AttributeError) as exc:
            raise StudioError(f"cannot read the data set description ({exc})", desc) from None
        return [folder / Path(n).name for n in names]
    return sorted(
        p for p in folder.iterdir()
        if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".") and p.is_file()
    )


def _decode(path: Path, size: int | None) -> np.ndarray:
    """``H x W x 3`` uint8, centre-cropped to a square and resized to ``size``."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im.load()
            im = im.convert("RGB")
    except FileNotFoundError:
        raise StudioError("file not found", path) from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise StudioError(f"cannot read this image ({exc})", path) from None
    w, h = im.size
    if w != h:
        s = min(w, h)
        left, top = (w - s) // 2, (h - s) // 2
        im = im.crop((left, top, left + s, top + s))
    if size is not None and im.size != (size, size):
        im = im.resize((size, size), Image.Resampling.LANCZOS)
    return np.asarray(im, dtype=np.uint8)


class ImageFolder:
    """The usable images of a folder at one resolution (``resolution=None``: the most
    common image size in the folder). ``skipped`` lists the files left out and why."""

    def __init__(self, folder: str | Path, resolution: int | None = None,
                 cache_bytes: int = DEFAULT_CACHE_BYTES) -> None:
        from PIL import Image, UnidentifiedImageError

        self.folder = Path(folder)
        self.skipped: list[Skipped] = []
        files: list[Path] = []
        sizes: Counter[int] = Counter()
        for path in _list_files(self.folder):
            try:
                with Image.open(path) as im:  # reads the header only
                    w, h = im.size
            except FileNotFoundError:
                self.skipped.append(Skipped(path.name, "listed but missing"))
                continue
            except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
                self.skipped.append(Skipped(path.name, f"not a readable image ({exc})"))
                continue
            if min(w, h) < 8:
                self.skipped.append(Skipped(path.name, f"too small ({w}x{h})"))
                continue
            files.append(path)
            sizes[min(w, h)] += 1
        if not files:
            why = f" ({len(self.skipped)} unreadable file(s), e.g. {self.skipped[0].file}: " \
                  f"{self.skipped[0].reason})" if self.skipped else ""
            raise StudioError(f"no usable PNG or JPG images in this folder{why}", self.folder)
        self.files = files
        self.source_resolution = sizes.most_common(1)[0][0]
        self.resolution = int(resolution or self.source_resolution)
        self._cache: dict[int, np.ndarray] = {}
        self._cache_left = int(cache_bytes)
        self._lock = threading.Lock()
        self._broken: set[int] = set()

    def __len__(self) -> int:
        return len(self.files)

    @property
    def resized(self) -> bool:
        return self.resolution != self.source_resolution

    def image(self, index: int) -> np.ndarray:
        """Image ``index`` as ``R x R x 3`` uint8. An image that fails to decode is replaced
        by the next good one (and recorded in ``skipped``)."""
        n = len(self.files)
        for step in range(n):
            i = (index + step) % n
            with self._lock:
                hit = self._cache.get(i)
                broken = i in self._broken
            if hit is not None:
                return hit
            if broken:
                continue
            try:
                img = _decode(self.files[i], self.resolution)
            except StudioError as exc:
                with self._lock:
                    self._broken.add(i)
                    self.skipped.append(Skipped(self.files[i].name, exc.reason))
                continue
            with self._lock:
                if img.nbytes <= self._cache_left:
                    self._cache[i] = img
                    self._cache_left -= img.nbytes
            return img
        raise StudioError("none of the images in this folder could be read", self.folder)

    def images(self, indices: np.ndarray | list[int]) -> np.ndarray:
        return np.stack([self.image(int(i)) for i in indices])


@dataclass
class BatchOrder:
    """Which images (and mirror flags) make up each batch, from (seed, images seen)."""

    count: int  # images in the folder
    seed: int = 0
    mirror: bool = False
    _perm: tuple[int, np.ndarray] | None = field(default=None, repr=False)

    @property
    def epoch_length(self) -> int:
        return self.count * (2 if self.mirror else 1)

    def _permutation(self, epoch: int) -> np.ndarray:
        if self._perm is None or self._perm[0] != epoch:
            rng = np.random.default_rng([int(self.seed), 0x5EED, int(epoch)])
            self._perm = (epoch, rng.permutation(self.epoch_length))
        return self._perm[1]

    def entries(self, start: int, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Images ``start .. start + n - 1`` of the run: (indices, flip flags)."""
        m = self.epoch_length
        out = np.empty(n, dtype=np.int64)
        for j in range(n):
            k = start + j
            out[j] = self._permutation(k // m)[k % m]
        return out % self.count, out >= self.count


class Batches:
    """Real-image batches as float tensors in [-1, 1], ``[N, 3, R, R]``, on ``device``."""

    def __init__(self, folder: ImageFolder, seed: int = 0, mirror: bool = False,
                 device: torch.device | str = "cpu") -> None:
        self.folder = folder
        self.order = BatchOrder(len(folder), seed, mirror)
        self.device = torch.device(device)

    def get(self, start: int, n: int) -> torch.Tensor:
        idx, flip = self.order.entries(start, n)
        imgs = self.folder.images(idx)
        if flip.any():
            imgs[flip] = imgs[flip, :, ::-1]
        x = torch.from_numpy(np.ascontiguousarray(imgs)).permute(0, 3, 1, 2)
        return x.to(self.device).float().div_(127.5).sub_(1.0)
