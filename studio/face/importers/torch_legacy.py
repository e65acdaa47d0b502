"""The legacy (pre-zip) ``torch.save`` format, read by our own code with every size checked.

A legacy stream is five pickles followed by raw data: the magic number, the format
protocol (1001), a ``sys_info`` dict (byte order, C type sizes), the saved object, in which
every storage is a persistent id ``('storage', torch.<Type>Storage, key, location, numel,
view)``, and the sorted list of storage keys; then, for each key in that order, the element
count as a little-endian int64 and the storage's bytes.

torch's own loader allocates each storage from the count the pickle *declares* before it
reads a byte of data, so a 300-byte file that declares 10^10 floats asks for 40 GB. Here
every declared count is checked against the count written before the data and against
the bytes actually left in the file.

Two uses: NVIDIA network pickles store each tensor's storage as the bytes of such a stream
(``torch.storage._load_from_bytes``), which :func:`read_storage_bytes` turns into a flat
tensor without torch's unpickler; and old rosinality checkpoints are whole legacy files,
which :func:`read_layout` checks before ``torch.load`` sees them.
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass
from typing import IO, Any

import numpy as np

from studio.face.importers.guarded_unpickler import (
    GuardedUnpickler,
    PickleRefused,
    check_opcodes,
)

__all__ = [
    "LEGACY_MAGIC",
    "LegacyLayout",
    "StorageRef",
    "StorageType",
    "read_layout",
    "read_storage_bytes",
]

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001
MAX_NUMEL = 1 << 50  # far past any file; keeps the arithmetic and the messages sane

# torch.<name> storage classes -> (torch dtype name, bytes per element).
STORAGE_TYPES: dict[str, tuple[str, int]] = {
    "FloatStorage": ("float32", 4),
    "DoubleStorage": ("float64", 8),
    "HalfStorage": ("float16", 2),
    "BFloat16Storage": ("bfloat16", 2),
    "LongStorage": ("int64", 8),
    "IntStorage": ("int32", 4),
    "ShortStorage": ("int16", 2),
    "CharStorage": ("int8", 1),
    "ByteStorage": ("uint8", 1),
    "BoolStorage": ("bool", 1),
}


class StorageType:
    """What ``torch.FloatStorage`` & co. stand for here: a dtype name, nothing callable."""

    __slots__ = ("name", "dtype", "itemsize")

    def __init__(self, name: str) -> None:
        self.name = name
        self.dtype, self.itemsize = STORAGE_TYPES[name]

    def __repr__(self) -> str:
        return f"torch.{self.name}"


@dataclass(frozen=True)
class StorageRef:
    """A storage as the pickle declares it (nothing allocated)."""

    key: str
    dtype: str
    itemsize: int
    numel: int
    view: tuple[int, int] | None = None  # (offset, numel) inside the root storage

    @property
    def view_numel(self) -> int:
        return self.view[1] if self.view is not None else self.numel


def storage_ref_from_pid(pid: Any) -> StorageRef:
    """Check a legacy (6-tuple) or zip-format (5-tuple) storage persistent id."""
    if not isinstance(pid, tuple) or len(pid) not in (5, 6) or pid[0] != "storage":
        raise PickleRefused("a tensor storage reference is malformed")
    stype, key, location, numel = pid[1:5]
    if not isinstance(stype, StorageType):
        raise PickleRefused("a tensor storage has an unknown type")
    if not isinstance(key, str) or not isinstance(location, str) or len(key) > 256:
        raise PickleRefused("a tensor storage reference is malformed")
    if type(numel) is not int or not 0 <= numel <= MAX_NUMEL:
        raise PickleRefused("a tensor storage declares a malformed size")
    view = None
    if len(pid) == 6 and pid[5] is not None:
        meta = pid[5]
        if (not isinstance(meta, tuple) or len(meta) != 3
                or not all(type(v) is int and 0 <= v <= MAX_NUMEL for v in meta[1:])):
            raise PickleRefused("a tensor storage view is malformed")
        offset, size = meta[1], meta[2]
        if offset + size > numel:
            raise PickleRefused("a tensor storage view reaches past the end of its storage")
        view = (offset, size)
    return StorageRef(key, stype.dtype, stype.itemsize, numel, view)


class _PlainUnpickler(GuardedUnpickler):
    """Plain data only: numbers, strings, containers."""


class _StorageUnpickler(GuardedUnpickler):
    """The saved object of a single-storage stream: one persistent id, nothing else."""

    def find_class(self, module: str, name: str) -> Any:
        if module == "torch" and name in STORAGE_TYPES:
            return StorageType(name)
        return super().find_class(module, name)

    def persistent_load(self, pid: Any) -> Any:
        return storage_ref_from_pid(pid)


@dataclass
class LegacyLayout:
    """Where everything in a legacy stream is, all sizes checked."""

    root: Any
    storages: dict[str, StorageRef]  # root storages by key
    data: dict[str, tuple[int, int]]  # key -> (offset of the bytes in the stream, nbytes)


class ClampedReader:
    """A binary file whose reads never ask for more than what is left in it: a pickle length
    field of 2^60 must not make a buffered file allocate 2^60 bytes before it finds out."""

    def __init__(self, f: IO[bytes], size: int) -> None:
        self.f, self.size = f, size

    def _left(self, n: int | None) -> int:
        left = max(self.size - self.f.tell(), 0)
        return left if n is None or n < 0 else min(n, left)

    def read(self, n: int | None = -1) -> bytes:
        return self.f.read(self._left(n))

    def readline(self, limit: int | None = -1) -> bytes:
        return self.f.readline(self._left(limit))

    def tell(self) -> int:
        return self.f.tell()

    def seek(self, pos: int, whence: int = 0) -> int:
        return self.f.seek(pos, whence)


def _load_one(f: IO[bytes], cls: type[GuardedUnpickler]) -> Any:
    start = f.tell()
    check_opcodes(f)
    f.seek(start)
    try:
        return cls(f).load()
    except PickleRefused:
        raise
    except EOFError:
        raise PickleRefused("it ends early (truncated?)") from None
    except MemoryError:
        raise PickleRefused("it asks for more memory than it could hold (damaged?)") from None
    except Exception as exc:
        raise PickleRefused(f"it is damaged ({type(exc).__name__})") from None


def read_layout(f: IO[bytes], total: int, main: type[GuardedUnpickler],
                refs: list[StorageRef]) -> LegacyLayout:
    """Parse a legacy stream from ``f`` (``total`` bytes long) without reading storage
    data. ``main`` unpickles the saved object and appends every storage it declares to
    ``refs``."""
    f = ClampedReader(f, total)  # type: ignore[assignment]
    if _load_one(f, _PlainUnpickler) != LEGACY_MAGIC:
        raise PickleRefused("it is not a torch.save stream (wrong magic number)")
    if _load_one(f, _PlainUnpickler) != LEGACY_PROTOCOL:
        raise PickleRefused("it is a torch.save stream of an unknown version")
    info = _load_one(f, _PlainUnpickler)
    if not isinstance(info, dict) or info.get("little_endian") is not True:
        raise PickleRefused("it was saved on a big-endian machine, which is not supported")
    root = _load_one(f, main)
    keys = _load_one(f, _PlainUnpickler)
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise PickleRefused("its list of tensor storages is malformed")
    storages: dict[str, StorageRef] = {}
    for ref in refs:
        known = storages.get(ref.key)
        if known is not None and (known.numel, known.dtype) != (ref.numel, ref.dtype):
            raise PickleRefused(f"tensor storage {ref.key} is declared twice, differently")
        storages[ref.key] = ref
    if set(keys) != set(storages) or len(keys) != len(set(keys)):
        raise PickleRefused("its list of tensor storages does not match the tensors")
    data: dict[str, tuple[int, int]] = {}
    pos = f.tell()
    for key in keys:
        ref = storages[key]
        f.seek(pos)
        head = f.read(8)
        if len(head) != 8:
            raise PickleRefused("it ends early (truncated?)")
        (count,) = struct.unpack("<q", head)
        if count != ref.numel:
            raise PickleRefused(
                f"tensor storage {key} declares {ref.numel:,} values but holds {count:,}"
            )
        nbytes = count * ref.itemsize
        if pos + 8 + nbytes > total:
            raise PickleRefused(f"tensor storage {key} reaches past the end of the file "
                                "(truncated?)")
        data[key] = (pos + 8, nbytes)
        pos += 8 + nbytes
    return LegacyLayout(root, storages, data)


def read_storage_bytes(data: bytes) -> tuple[str, Any]:
    """``(dtype name, flat CPU tensor)`` for the bytes of a single-storage ``torch.save``
    stream, as NVIDIA pickles hold them. Whatever device the storage was saved from, it
    loads on the CPU."""
    import torch

    refs: list[StorageRef] = []

    class Main(_StorageUnpickler):
        def persistent_load(self, pid: Any) -> Any:
            ref = storage_ref_from_pid(pid)
            refs.append(ref)
            return ref

    f = io.BytesIO(data)
    layout = read_layout(f, len(data), Main, refs)
    root = layout.root
    if not isinstance(root, StorageRef):
        raise PickleRefused("tensor storage bytes hold something other than a storage")
    offset, nbytes = layout.data[root.key]
    dtype = getattr(torch, root.dtype)
    # One copy into fresh (aligned, writable) memory; the bytes themselves stay untouched.
    if nbytes == 0:
        flat = torch.empty(0, dtype=dtype)
    else:
        raw = np.frombuffer(data, dtype=np.uint8, count=nbytes, offset=offset).copy()
        flat = torch.from_numpy(raw).view(dtype)
    if root.view is not None:
        start, size = root.view
        flat = flat[start:start + size]
    return root.dtype, flat

