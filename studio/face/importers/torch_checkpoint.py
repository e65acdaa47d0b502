"""Loading a ``.pt`` checkpoint with ``torch.load(weights_only=True)``, bounded.

``weights_only=True`` keeps code out, but not size: a file of a few kilobytes can declare a
100000x100000 tensor over one stored value (stride 0) that the first copy turns into 40 GB,
declare storages far larger than the bytes it holds (the legacy format allocates what it
declares before reading), or hide a zip bomb. So, before torch reads anything:

- a zip checkpoint must hold uncompressed entries (``torch.save`` never compresses) that lie
  inside the file; a legacy one must have every declared storage really there, in full
  (:mod:`.torch_legacy`);
- the pickle is walked by :class:`ScanUnpickler`, which calls nothing: every storage it
  declares must match the bytes stored for it, and every tensor must lie inside its storage
  and hold no more values than the storage does;

and after the load, before any tensor is copied, :func:`check_tensors` checks the same of
what torch built (plain CPU tensors only: no sparse, meta or quantized ones).

torch's error messages advise re-running with ``weights_only=False``, which would run code
from the file: they are replaced with our own (:func:`torch_error_reason`).
"""

from __future__ import annotations

import argparse
import io
import math
import pickle
import pickletools
import re
import warnings
import zipfile
from pathlib import Path
from typing import IO, Any

from studio.core.errors import FileFormatError
from studio.face.importers.guarded_unpickler import (
    GuardedUnpickler,
    PickleRefused,
    check_opcodes,
)
from studio.face.importers.torch_legacy import (
    MAX_NUMEL,
    STORAGE_TYPES,
    StorageRef,
    StorageType,
    read_layout,
    storage_ref_from_pid,
)

__all__ = [
    "ScanUnpickler",
    "check_tensors",
    "load_torch_checkpoint",
    "precheck_torch_file",
    "torch_error_reason",
]

MAX_ZIP_ENTRIES = 1 << 20
MAX_TENSOR_DIMS = 16
MAX_TENSORS = 1 << 22
MAX_DEPTH = 64
ZIP_MAGIC = b"PK\x03\x04"


class _Opaque:
    """Whatever a scanned pickle builds that is not a storage: never called, never built."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name


class _TensorMaker(_Opaque):
    """``torch._utils._rebuild_tensor_v2``: its arguments are checked, nothing is made."""


class ScanUnpickler(GuardedUnpickler):
    """Walks a checkpoint's pickle without importing or calling anything.

    Collects every storage the pickle declares in ``refs`` and checks every tensor view
    made through ``_rebuild_tensor_v2`` against its storage. Names it does not know become
    inert placeholders: whether they are allowed is ``torch.load``'s decision later."""

    def __init__(self, file: IO[bytes], refs: list[StorageRef]) -> None:
        super().__init__(file)
        self.refs = refs
        self.tensors = 0

    def find_class(self, module: str, name: str) -> Any:
        if module == "torch" and name in STORAGE_TYPES:
            return StorageType(name)
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _TensorMaker(name)
        return _Opaque(f"{module}.{name}"[:200])

    def persistent_load(self, pid: Any) -> Any:
        ref = storage_ref_from_pid(pid)
        self.refs.append(ref)
        return ref

    def call(self, func: Any, args: tuple) -> Any:
        if isinstance(func, _TensorMaker) and len(args) >= 4:
            self.tensors += 1
            if self.tensors > MAX_TENSORS:
                raise PickleRefused("it holds more tensors than any checkpoint")
            check_view(args[0], args[1], args[2], args[3])
        return _Opaque("result")

    def new_object(self, cls: Any, args: tuple, kwargs: dict) -> Any:
        return _Opaque("object")

    def build(self, inst: Any, state: Any) -> None:
        return None

    def set_items(self, target: Any, pairs: list[tuple[Any, Any]]) -> None:
        if type(target) is dict:
            super().set_items(target, pairs)
        elif not isinstance(target, _Opaque):
            raise PickleRefused(f"it inserts dict items into a {type(target).__name__}")

    def append_items(self, target: Any, items: list) -> None:
        if not isinstance(target, _Opaque):
            super().append_items(target, items)

    def add_items(self, target: Any, items: list) -> None:
        if not isinstance(target, _Opaque):
            super().add_items(target, items)


def check_view(storage: Any, offset: Any, size: Any, stride: Any) -> None:
    """A tensor view as a pickle declares it, against its storage."""
    if not isinstance(storage, StorageRef):
        return  # not a storage: torch.load refuses it itself
    dims_ok = all(
        isinstance(v, tuple | list) and len(v) <= MAX_TENSOR_DIMS
        and all(type(x) is int and 0 <= x <= MAX_NUMEL for x in v)
        for v in (size, stride)
    )
    if (not dims_ok or len(size) != len(stride) or type(offset) is not int
            or not 0 <= offset <= MAX_NUMEL):
        raise PickleRefused("a tensor has a malformed shape")
    have = storage.view_numel
    count = math.prod(size)
    if count > have:
        raise PickleRefused(
            f"a tensor of shape {list(size)[:8]} claims {count:,} values but its storage "
            f"holds {have:,}"
        )
    if count and offset + sum((s - 1) * st for s, st in zip(size, stride, strict=True)) >= have:
        raise PickleRefused("a tensor reaches past the end of its storage")


def _check_zip(f: IO[bytes], size: int) -> None:
    try:
        zf = zipfile.ZipFile(f)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        raise PickleRefused("it is a damaged ZIP file (a truncated download?)") from None
    with zf:
        infos = zf.infolist()
        if len(infos) > MAX_ZIP_ENTRIES:
            raise PickleRefused("it holds more entries than any checkpoint")
        pkl = [i for i in infos if i.filename == "data.pkl" or i.filename.endswith("/data.pkl")]
        if not pkl:
            raise PickleRefused("it is a ZIP file without data.pkl, not a PyTorch checkpoint")
        for info in infos:
            if info.compress_type != zipfile.ZIP_STORED:
                raise PickleRefused(
                    f"its entry {info.filename[:80]} is compressed, which torch.save never "
                    "does (a zip bomb?)"
                )
            if (info.file_size != info.compress_size
                    or info.header_offset + info.compress_size > size):
                raise PickleRefused(f"its entry {info.filename[:80]} lies outside the file")
        records = {i.filename: i.file_size for i in infos}
        prefix = pkl[0].filename[: -len("data.pkl")]
        try:
            data = zf.read(pkl[0])
        except (zipfile.BadZipFile, OSError, ValueError, EOFError):
            raise PickleRefused("it is a damaged ZIP file (a truncated download?)") from None
    refs: list[StorageRef] = []
    _scan(io.BytesIO(data), refs)
    for ref in refs:
        stored = records.get(f"{prefix}data/{ref.key}")
        if stored is None:
            raise PickleRefused(f"tensor storage {ref.key[:40]} is missing from the file")
        if stored != ref.numel * ref.itemsize:
            raise PickleRefused(
                f"tensor storage {ref.key[:40]} declares {ref.numel:,} values but the file "
                f"holds {stored:,} bytes for it"
            )


def _scan(f: IO[bytes], refs: list[StorageRef]) -> Any:
    check_opcodes(f)
    f.seek(0)
    try:
        return ScanUnpickler(f, refs).load()
    except PickleRefused:
        raise
    except EOFError:
        raise PickleRefused("it ends early (truncated download?)") from None
    except MemoryError:
        raise PickleRefused("it asks for more memory than it could hold (damaged?)") from None
    except Exception as exc:
        raise PickleRefused(f"it is damaged ({type(exc).__name__})") from None


def precheck_torch_file(path: Path, size: int) -> None:
    """Check a ``torch.save`` file (zip or legacy) before ``torch.load`` reads it; raises
    :class:`PickleRefused`."""
    with path.open("rb") as f:
        head = f.read(4)
        f.seek(0)
        if head == ZIP_MAGIC:
            _check_zip(f, size)
            return
        refs: list[StorageRef] = []

        class Main(ScanUnpickler):
            def __init__(self, file: IO[bytes]) -> None:
                super().__init__(file, refs)

        read_layout(f, size, Main, refs)


# --------------------------------------------------------------------------- after the load


def check_tensors(obj: Any, what: str = "the checkpoint") -> None:
    """Every tensor in a loaded checkpoint is a plain CPU tensor that holds no more values
    than its storage (checked before anything is copied)."""
    import torch

    stack: list[tuple[Any, str, int]] = [(obj, "", 0)]
    seen = 0
    while stack:
        value, where, depth = stack.pop()
        seen += 1
        if depth > MAX_DEPTH or seen > MAX_TENSORS:
            raise FileFormatError(f"{what} is nested too deeply or holds too many entries")
        if isinstance(value, torch.Tensor):
            _check_tensor(value, where or "a tensor")
        elif isinstance(value, dict):
            stack.extend((v, f"{where}.{k}" if where else str(k), depth + 1)
                         for k, v in value.items())
        elif isinstance(value, list | tuple):
            stack.extend((v, f"{where}[{i}]", depth + 1) for i, v in enumerate(value))
        elif isinstance(value, argparse.Namespace):
            stack.extend((v, f"{where}.{k}", depth + 1) for k, v in vars(value).items())


def _check_tensor(t: Any, where: str) -> None:
    import torch

    where = where[:120]
    if (type(t) not in (torch.Tensor, torch.nn.Parameter) or t.layout != torch.strided
            or t.device.type != "cpu" or t.is_quantized):
        raise FileFormatError(
            f"{where} is not a plain tensor with its values in the file (a sparse, meta or "
            "quantized tensor?); StyleGAN2 checkpoints hold plain ones"
        )
    count = t.numel()
    have = t.untyped_storage().nbytes() // max(t.element_size(), 1)
    if count > have:
        raise FileFormatError(
            f"{where} claims {count:,} values (shape {list(t.shape)[:8]}) but the file stores "
            f"{have:,} for it; the file is damaged or hostile"
        )
    if count and t.storage_offset() + sum(
        (s - 1) * st for s, st in zip(t.shape, t.stride(), strict=True)
    ) >= have:
        raise FileFormatError(f"{where} reaches past the end of its stored values")


# --------------------------------------------------------------------------- errors


_OPCODE_NAMES = {op.code.encode("latin-1")[0]: op.name for op in pickletools.opcodes}
_ADVICE = re.compile(r"weights_only|safe_globals|allowlist|trust", re.IGNORECASE)


def torch_error_reason(exc: BaseException) -> str:
    """A short reason from a torch error, with torch's advice (re-run with
    ``weights_only=False``, allowlist globals) removed: following it would run code from
    the file."""
    text = str(exc)
    m = re.search(r"WeightsUnpickler error:\s*(.*)", text)
    if m:
        text = m.group(1)
    m = re.match(r"Unsupported operand (\d+)", text.strip())
    if m:
        op = _OPCODE_NAMES.get(int(m.group(1)), f"number {m.group(1)}")
        return f"it uses the pickle opcode {op}, which torch's safe loader cannot read"
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    first = lines[0] if lines else ""
    sentences = [s for s in re.split(r"(?<=[.!?])\s+", first) if s and not _ADVICE.search(s)]
    reason = " ".join(sentences).strip()
    reason = re.sub(r"\x1b\[[0-9;]*m", "", reason)[:200]
    return reason or "it holds something other than plain weights"


def load_torch_checkpoint(path: Path, size: int) -> Any:
    """``torch.load(path, weights_only=True)`` on the CPU after :func:`precheck_torch_file`,
    with ``argparse.Namespace`` (rosinality's ``args``) the only extra class allowed; then
    :func:`check_tensors`. Every problem is a :class:`FileFormatError` naming the file."""
    import torch

    try:
        precheck_torch_file(path, size)
    except PickleRefused as exc:
        raise FileFormatError(f"is not a readable PyTorch checkpoint: {exc.reason}", path) from None
    except OSError as exc:
        raise FileFormatError(f"cannot be read ({exc.strerror or exc})", path) from None
    try:
        with warnings.catch_warnings(), torch.serialization.safe_globals([argparse.Namespace]):
            warnings.simplefilter("ignore")  # torch's advice about pickle protocols etc.
            ckpt = torch.load(path, weights_only=True, map_location="cpu")
    except pickle.UnpicklingError as exc:
        m = re.search(r"GLOBAL ([\w.]+)", str(exc))
        if m:
            raise FileFormatError(
                f"contains a pickled Python object ({m.group(1)}), not plain weights; only "
                "state dicts can be imported (loading it would run code from the file)",
                path,
            ) from None
        raise FileFormatError(
            f"is not a plain weights file ({torch_error_reason(exc)})", path
        ) from None
    except FileNotFoundError:
        raise FileFormatError("file not found", path) from None
    except MemoryError:
        raise FileFormatError("needs more memory than this computer has", path) from None
    except Exception as exc:  # torch raises many kinds for damaged files
        raise FileFormatError(
            "is not a readable PyTorch checkpoint (damaged or truncated?): "
            f"{torch_error_reason(exc)}",
            path,
        ) from None
    try:
        check_tensors(ckpt)
    except FileFormatError as exc:
        raise FileFormatError(exc.reason, path) from None
    return ckpt
