"""A whitelisting unpickler for NVIDIA StyleGAN2 network pickles that executes nothing.

A pickle can call any importable function while it loads, and NVIDIA's own loader goes
further: it ``exec``s Python source stored inside the file. This unpickler resolves only the
handful of names those files actually refer to, each mapped to a function of ours that
builds plain data:

- ``torch_utils.persistence._reconstruct_persistent_obj`` -> :class:`PersistentObject`, a
  record of the class name and the module's ``__dict__``; the embedded source is dropped
  unread;
- tensors through ``torch._utils._rebuild_tensor_v2`` / ``_rebuild_parameter``, their storage
  bytes through ``torch.load(..., weights_only=True)``;
- ``collections.OrderedDict``, ``dnnlib.util.EasyDict`` (a plain ``dict`` here), ``set``,
  ``frozenset``, numpy scalars, dtypes and arrays, ``_codecs.encode`` for latin-1 text.

Any other reference ends the load with :class:`PickleRefused` naming it. Persistent ids
are refused too.
"""

from __future__ import annotations

import collections
import io
import math
import pickle
import pickletools
import re
import warnings
from collections.abc import Callable
from typing import IO, Any

import numpy as np

__all__ = [
    "ALLOWED_GLOBALS",
    "EasyDict",
    "PersistentObject",
    "PickleRefused",
    "RestrictedUnpickler",
    "load_restricted",
    "looks_like_pickle",
]


class PickleRefused(Exception):
    """The pickle is damaged, is not a pickle, or asks for something we do not allow."""

    def __init__(self, reason: str, global_name: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.global_name = global_name


class EasyDict(dict):
    """Stands in for ``dnnlib.util.EasyDict``: a plain dict (no attribute magic)."""


class PersistentObject:
    """What ``_reconstruct_persistent_obj(meta)`` stands for: a network module, as data.

    ``state`` is the pickled module ``__dict__`` (``_parameters``, ``_buffers``,
    ``_modules``, ``_init_kwargs``...). The module source carried by the file is never kept.
    """

    __slots__ = ("class_name", "version", "state", "source_size")

    def __init__(self, class_name: str, version: Any, state: dict, source_size: int) -> None:
        self.class_name = class_name
        self.version = version
        self.state = state
        self.source_size = source_size

    def __setstate__(self, state: Any) -> None:  # a BUILD opcode aimed at us
        raise PickleRefused("it modifies a reconstructed network in a way real files never do")

    def __repr__(self) -> str:
        return f"PersistentObject({self.class_name!r})"


# --------------------------------------------------------------------------- allowed callables


def _reconstruct_persistent_obj(meta: Any) -> PersistentObject:
    if not isinstance(meta, dict):
        raise PickleRefused("a network record is not a dict")
    if meta.get("type") != "class":
        raise PickleRefused(f"a network record has an unknown type {meta.get('type')!r}")
    class_name = meta.get("class_name")
    state = meta.get("state")
    if not isinstance(class_name, str) or not isinstance(state, dict):
        raise PickleRefused("a network record lacks its class name or its state")
    src = meta.get("module_src")
    size = len(src) if isinstance(src, str) else 0
    return PersistentObject(class_name, meta.get("version"), dict(state), size)


def _load_from_bytes(data: Any) -> Any:
    import torch

    if not isinstance(data, bytes | bytearray):
        raise PickleRefused("tensor storage is not bytes")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TypedStorage deprecation chatter
        try:
            storage = torch.load(io.BytesIO(bytes(data)), weights_only=True, map_location="cpu")
        except pickle.UnpicklingError as exc:
            m = re.search(r"GLOBAL ([\w.]+)", str(exc))
            what = f" (it refers to {m.group(1)})" if m else ""
            raise PickleRefused(
                f"tensor storage refused by torch's weights-only loader{what}",
                global_name=m.group(1) if m else None,
            ) from None
        except Exception as exc:  # torch raises many kinds for malformed bytes
            text = str(exc).strip().splitlines()
            raise PickleRefused(
                f"tensor storage is damaged ({text[0][:160] if text else type(exc).__name__})"
            ) from None
    if not isinstance(storage, torch.storage.TypedStorage | torch.UntypedStorage):
        raise PickleRefused("tensor storage bytes hold something other than a storage")
    return storage


def _int_tuple(value: Any, what: str) -> tuple[int, ...]:
    if not isinstance(value, tuple | list) or not all(
        isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value
    ):
        raise PickleRefused(f"tensor {what} is malformed")
    return tuple(value)


def _rebuild_tensor_v2(
    storage: Any,
    storage_offset: Any,
    size: Any,
    stride: Any,
    requires_grad: Any = False,
    backward_hooks: Any = None,
    metadata: Any = None,
) -> Any:
    import torch

    if isinstance(storage, torch.storage.TypedStorage):
        dtype = storage.dtype
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            untyped = storage.untyped()
    elif isinstance(storage, torch.UntypedStorage):
        dtype, untyped = torch.uint8, storage
    else:
        raise PickleRefused("a tensor refers to something that is not a storage")
    if not isinstance(storage_offset, int) or isinstance(storage_offset, bool) or storage_offset < 0:
        raise PickleRefused("tensor storage offset is malformed")
    size = _int_tuple(size, "size")
    stride = _int_tuple(stride, "stride")
    if len(size) != len(stride):
        raise PickleRefused("tensor size and stride disagree")
    itemsize = torch.empty((), dtype=dtype).element_size()
    numel = untyped.nbytes() // itemsize
    if math.prod(size) > numel:  # no stride-0 blow-ups: a tensor never outgrows its data
        raise PickleRefused("a tensor claims more elements than its storage holds")
    if all(s > 0 for s in size):
        extent = storage_offset + sum((s - 1) * st for s, st in zip(size, stride, strict=True)) + 1
        if extent > numel:
            raise PickleRefused("a tensor reaches past the end of its storage")
    t = torch.empty((0,), dtype=dtype)
    return t.set_(untyped, storage_offset, size, stride)


def _rebuild_parameter(data: Any, requires_grad: Any = False, backward_hooks: Any = None) -> Any:
    import torch

    if not isinstance(data, torch.Tensor):
        raise PickleRefused("a parameter holds something that is not a tensor")
    return data  # a plain tensor: no hooks, no gradient state


def _rebuild_parameter_with_state(
    data: Any, requires_grad: Any = False, backward_hooks: Any = None, state: Any = None
) -> Any:
    return _rebuild_parameter(data)


def _codecs_encode(text: Any, encoding: Any = "utf-8") -> bytes:
    # Protocol 2 writes bytes as ``_codecs.encode(latin-1 text, 'latin1')``.
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise PickleRefused("it uses _codecs.encode for something other than latin-1 bytes")
    return text.encode("latin-1")


def _np_scalar(dtype: Any, data: Any = None) -> Any:
    if not isinstance(dtype, np.dtype) or dtype.hasobject:
        raise PickleRefused("a numpy scalar has an unsupported dtype")
    if not isinstance(data, bytes):
        raise PickleRefused("a numpy scalar is malformed")
    if len(data) != dtype.itemsize:
        raise PickleRefused("a numpy scalar has the wrong number of bytes")
    return np.frombuffer(data, dtype=dtype)[0].copy()


def _np_reconstruct(subtype: Any, shape: Any, dtype: Any) -> Any:
    if subtype is not np.ndarray:
        raise PickleRefused("a numpy array has an unsupported type")
    return np.ndarray.__new__(np.ndarray, (0,), dtype="b")


def _np_dtype(spec: Any, align: Any = False, copy: Any = False) -> np.dtype:
    if not isinstance(spec, str) or spec.startswith("O"):
        raise PickleRefused(f"a numpy dtype {spec!r} is not allowed")
    try:
        return np.dtype(spec, align=bool(align), copy=bool(copy))
    except TypeError as exc:
        raise PickleRefused(f"a numpy dtype is malformed ({exc})") from None


ALLOWED_GLOBALS: dict[tuple[str, str], Callable[..., Any] | type] = {
    ("torch_utils.persistence", "_reconstruct_persistent_obj"): _reconstruct_persistent_obj,
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("dnnlib.util", "EasyDict"): EasyDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter_with_state,
    ("torch.storage", "_load_from_bytes"): _load_from_bytes,
    ("numpy", "dtype"): _np_dtype,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy.core.multiarray", "scalar"): _np_scalar,
    ("numpy._core.multiarray", "scalar"): _np_scalar,
    ("numpy.core.multiarray", "_reconstruct"): _np_reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _np_reconstruct,
    ("builtins", "set"): set,
    ("__builtin__", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("__builtin__", "frozenset"): frozenset,
    ("_codecs", "encode"): _codecs_encode,
}


class RestrictedUnpickler(pickle.Unpickler):
    """``pickle.Unpickler`` that resolves only :data:`ALLOWED_GLOBALS`."""

    def find_class(self, module: str, name: str) -> Any:
        target = ALLOWED_GLOBALS.get((module, name))
        if target is None:
            qual = f"{module}.{name}"
            raise PickleRefused(
                f"it refers to {qual}, which a StyleGAN network pickle never needs "
                "(pickles can run code through such references, so it was not loaded)",
                global_name=qual,
            )
        return target

    def persistent_load(self, pid: Any) -> Any:
        raise PickleRefused("it uses persistent ids, which NVIDIA network pickles never do")


def looks_like_pickle(head: bytes) -> bool:
    """True when ``head`` starts like a binary pickle of protocol 2 to 5."""
    return len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5


def check_structure(data: bytes) -> int:
    """Walk the opcode stream without building anything: catches truncation, bad opcodes
    and length fields that point past the end of the file before the real load (which
    would allocate what a length field claims). Returns the number of opcodes."""
    count = 0
    try:
        for _ in pickletools.genops(io.BytesIO(data)):
            count += 1
    except (ValueError, UnicodeDecodeError) as exc:
        text = str(exc)
        if "exhausted" in text or ("only" in text and "remain" in text):
            raise PickleRefused("it ends early (truncated download?)") from None
        raise PickleRefused(f"it is damaged ({text[:160]})") from None
    return count


def load_restricted(source: bytes | bytearray | IO[bytes]) -> Any:
    """Unpickle ``source`` (bytes or a binary file) with :class:`RestrictedUnpickler`.

    Raises :class:`PickleRefused` for a forbidden reference, a damaged or truncated file,
    or a file that is not a pickle; nothing in the file is executed.
    """
    data = bytes(source) if isinstance(source, bytes | bytearray) else source.read()
    if not looks_like_pickle(data[:2]):
        raise PickleRefused("it is not a binary pickle (protocol 2 to 5)")
    check_structure(data)
    unpickler = RestrictedUnpickler(io.BytesIO(data))
    try:
        return unpickler.load()
    except PickleRefused:
        raise
    except MemoryError:
        raise PickleRefused("it asks for more memory than it could hold (damaged?)") from None
    except EOFError:
        raise PickleRefused("it ends early (truncated download?)") from None
    except RecursionError:
        raise PickleRefused("it is nested too deeply to be a network pickle") from None
    except Exception as exc:  # anything else a malformed opcode stream raises
        raise PickleRefused(f"it is damaged ({type(exc).__name__}: {str(exc)[:160]})") from None
