"""Which kind of checkpoint a file is, from its first bytes (not its name), after the
bounded checks every user-given file gets: a regular file (not a FIFO or ``/dev/zero``),
links that resolve (no loops), a size we can hold."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

from studio.core.errors import FileFormatError, StudioError
from studio.core.files import check_regular_file

__all__ = [
    "FORMAT_NAMES",
    "MAX_CHECKPOINT_BYTES",
    "NVIDIA_PKL",
    "TORCH_CKPT",
    "check_checkpoint_file",
    "detect_format",
]

NVIDIA_PKL = "nvidia-pkl"
TORCH_CKPT = "rosinality-pt"
FORMAT_NAMES = {
    NVIDIA_PKL: "NVIDIA StyleGAN2(-ADA) network pickle",
    TORCH_CKPT: "rosinality stylegan2-pytorch checkpoint",
}
# NVIDIA's 1024 px FFHQ pickle is 364 MB; the largest StyleGAN2 checkpoints are a few GB.
MAX_CHECKPOINT_BYTES = 8 << 30
# A legacy (pre-zip) torch.save file starts with a pickled magic number.
_LEGACY_TORCH_MAGIC = b"\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19"


def check_checkpoint_file(path: str | Path) -> int:
    """The size of ``path`` after checking it is a regular file of at most
    :data:`MAX_CHECKPOINT_BYTES` (never opens it, so a FIFO cannot block); a
    :class:`FileFormatError` naming the file otherwise."""
    p = Path(path)
    try:
        os.stat(p)
    except FileNotFoundError:
        raise FileFormatError("file not found", p) from None
    except OSError:
        pass  # a symlink loop and the like: worded by check_regular_file
    try:
        return check_regular_file(p, MAX_CHECKPOINT_BYTES, "checkpoint")
    except StudioError as exc:
        raise FileFormatError(exc.reason, p) from None


def _describe_other(head: bytes) -> str:
    if head.startswith(b"\x89PNG"):
        return "a PNG image"
    if head.startswith(b"\xff\xd8\xff"):
        return "a JPEG image"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "a GIF image"
    if head[:4] == b"RIFF":
        return "a RIFF (WAV/WebP/AVI) file"
    if head.startswith(b"\x1f\x8b"):
        return "a gzip archive"
    if head.startswith(b"%PDF"):
        return "a PDF document"
    if len(head) >= 9 and head[8:9] == b"{":
        return "a safetensors file (open it as a model instead of importing it)"
    if head.lstrip()[:1] in (b"{", b"["):
        return "a JSON/text file"
    return "of an unknown kind"


def detect_format(path: str | Path) -> str:
    """``'nvidia-pkl'`` or ``'rosinality-pt'`` from the file's first bytes; a clear
    ``FileFormatError`` for anything else."""
    p = Path(path)
    check_checkpoint_file(p)
    try:
        with p.open("rb") as f:
            head = f.read(64)
    except IsADirectoryError:
        raise FileFormatError("is a folder, not a checkpoint file", p) from None
    except OSError as exc:
        raise FileFormatError(f"cannot be read ({exc.strerror or exc})", p) from None
    if not head:
        raise FileFormatError("is empty", p)
    if head.startswith(b"PK\x03\x04"):
        try:
            with zipfile.ZipFile(p) as zf:
                names = zf.namelist()
        except (zipfile.BadZipFile, OSError, ValueError, EOFError):
            raise FileFormatError(
                "is a damaged ZIP file (a truncated PyTorch checkpoint?)", p
            ) from None
        if any(n == "data.pkl" or n.endswith("/data.pkl") for n in names):
            return TORCH_CKPT
        raise FileFormatError(
            "is a ZIP archive, not a StyleGAN2 checkpoint (.pkl from NVIDIA or .pt from "
            "rosinality's stylegan2-pytorch)",
            p,
        )
    if head.startswith(_LEGACY_TORCH_MAGIC):
        return TORCH_CKPT
    from studio.face.importers.safe_pickle import looks_like_pickle

    if looks_like_pickle(head):
        return NVIDIA_PKL
    raise FileFormatError(
        f"is {_describe_other(head)}, not a StyleGAN2 checkpoint (.pkl from NVIDIA or .pt "
        "from rosinality's stylegan2-pytorch)",
        p,
    )
