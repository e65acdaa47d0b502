"""A whitelisting unpickler for NVIDIA StyleGAN2 network pickles that executes nothing.

A pickle can call any importable function while it loads, and NVIDIA's own loader goes
further: it ``exec``s Python source stored inside the file. This unpickler resolves only the
handful of names those files actually refer to, each mapped to a function of ours that
checks its arguments and builds plain data:

- ``torch_utils.persistence._reconstruct_persistent_obj`` -> :class:`PersistentObject`, a
  record of the class name and the module's ``__dict__``; the embedded source is dropped
  unread;
- tensor storages (``torch.storage._load_from_bytes``) are read by our own parser of the
  legacy ``torch.save`` stream (:mod:`.torch_legacy`), and tensors
  (``torch._utils._rebuild_tensor_v2`` / ``_rebuild_parameter``) are views that must lie
  inside their storage and hold no more values than it does;
- ``collections.OrderedDict``, ``dnnlib.util.EasyDict`` (a plain ``dict`` here), ``set`` and
  ``frozenset`` of names and numbers, ``_codecs.encode`` for latin-1 text and ``bytes()``
  for empty bytes (both protocol 2);
- numpy: dtypes of plain numbers only (no objects, records, sub-arrays, strings), scalars,
  and arrays only the way numpy pickles them (``_reconstruct`` then ``BUILD``) with the
  shape and the data length checked before numpy sees them. ``numpy.ndarray`` itself is a
  marker: calling it, which would make an array of raw memory, is refused.

The opcodes that act on objects (``REDUCE``, ``NEWOBJ``, ``BUILD``, ``SETITEM``...) go
through :class:`~.guarded_unpickler.GuardedUnpickler`: only our own records accept state,
only real dicts, lists and sets accept items. Everything the allowed functions make is
charged to a budget of a few times the file's size, so a small file cannot make the
importer build something huge from the same bytes many times over.

Any other reference ends the load with :class:`PickleRefused` naming it. Persistent ids
are refused too.
"""

from __future__ import annotations

import collections
import contextvars
import io
import math
from collections.abc import Callable
from typing import IO, Any

import numpy as np

from studio.face.importers.guarded_unpickler import (
    GuardedUnpickler,
    PickleRefused,
    check_opcodes,
)
from studio.face.importers.torch_legacy import read_storage_bytes

__all__ = [
    "ALLOWED_GLOBALS",
    "EasyDict",
    "NumpyDType",
    "PersistentObject",
    "PickleRefused",
    "RestrictedUnpickler",
    "TorchStorage",
    "load_restricted",
    "looks_like_pickle",
]

MAX_TENSOR_DIMS = 8
MAX_DIM = 1 << 40
MAX_SET_ITEMS = 1 << 20
ITEM_COST = 64  # bytes charged per set or dict entry made by an allowed callable
BUDGET_FACTOR = 4  # storages, tensors and protocol-2 bytes are each about the file once
BUDGET_SLACK = 256 << 20


class EasyDict(dict):
    """Stands in for ``dnnlib.util.EasyDict``: a plain dict (no attribute magic)."""


class StateDict(collections.OrderedDict):
    """What ``collections.OrderedDict`` builds here (any attributes pickled with it, such as
    torch's ``_metadata``, are dropped)."""


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


class TorchStorage:
    """A tensor storage read from a pickle: a flat CPU tensor of its values."""

    __slots__ = ("dtype", "flat")

    def __init__(self, dtype: str, flat: Any) -> None:
        self.dtype = dtype
        self.flat = flat

    def __repr__(self) -> str:
        return f"TorchStorage({self.dtype}, {self.flat.numel()})"


class NumpyDType:
    """What ``numpy.dtype(spec, align, copy)`` builds here: a checked numpy dtype of plain
    numbers, and the only thing its ``BUILD`` may set is the byte order."""

    __slots__ = ("dtype", "built")

    def __init__(self, dtype: np.dtype) -> None:
        self.dtype = dtype
        self.built = False

    def set_state(self, state: Any) -> None:
        if self.built:
            raise PickleRefused("it changes a numpy dtype twice")
        if not isinstance(state, tuple) or len(state) not in (8, 9) or state[0] not in (3, 4):
            raise PickleRefused("a numpy dtype has a malformed state")
        endian, subarray, names, fields = state[1:5]
        if subarray is not None or names is not None or fields is not None:
            raise PickleRefused("a numpy dtype has fields or sub-arrays, which are not allowed")
        if not all(type(v) is int for v in state[5:8]):
            raise PickleRefused("a numpy dtype has a malformed state")
        if state[5] not in (-1, self.dtype.itemsize):
            raise PickleRefused("a numpy dtype declares the wrong item size")
        if len(state) == 9 and state[8] is not None and not isinstance(state[8], dict):
            raise PickleRefused("a numpy dtype has malformed metadata")
        if endian not in ("<", ">", "|", "="):
            raise PickleRefused("a numpy dtype has an unknown byte order")
        if endian in "<>" and self.dtype.itemsize > 1:
            self.dtype = self.dtype.newbyteorder(endian)
        self.built = True

    def __repr__(self) -> str:
        return f"NumpyDType({self.dtype.str!r})"


class _NdarrayMarker:
    """``numpy.ndarray`` as a name in a pickle: only the first argument of ``_reconstruct``."""

    def __call__(self, *args: Any) -> Any:
        raise PickleRefused(
            "it calls numpy.ndarray directly (an array over raw memory), which NVIDIA "
            "network pickles never do"
        )

    def __repr__(self) -> str:
        return "numpy.ndarray"


NDARRAY = _NdarrayMarker()


class _LoadState:
    """Per-load bookkeeping for the allowed callables."""

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self.pending_arrays: dict[int, np.ndarray] = {}

    def charge(self, nbytes: int, what: str) -> None:
        self.budget -= nbytes
        if self.budget < 0:
            raise PickleRefused(
                f"it builds far more data than the file holds ({what}); a network pickle "
                "never does (hostile or damaged?)"
            )


_STATE: contextvars.ContextVar[_LoadState | None] = contextvars.ContextVar(
    "studio_safe_pickle_state", default=None
)


def _state() -> _LoadState:
    st = _STATE.get()
    # Called outside load_restricted (a test calling a callable directly): a fresh budget.
    return st if st is not None else _LoadState(BUDGET_SLACK)


# --------------------------------------------------------------------------- allowed callables


def _reconstruct_persistent_obj(meta: Any) -> PersistentObject:
    if not isinstance(meta, dict):
        raise PickleRefused("a network record is not a dict")
    if meta.get("type") != "class":
        raise PickleRefused(f"a network record has an unknown type {str(meta.get('type'))[:40]!r}")
    class_name = meta.get("class_name")
    state = meta.get("state")
    if not isinstance(class_name, str) or not isinstance(state, dict):
        raise PickleRefused("a network record lacks its class name or its state")
    src = meta.get("module_src")
    size = len(src) if isinstance(src, str) else 0
    _state().charge(ITEM_COST * len(state), "network records")
    return PersistentObject(class_name[:200], meta.get("version"), dict(state), size)


def _load_from_bytes(data: Any) -> TorchStorage:
    if not isinstance(data, bytes | bytearray):
        raise PickleRefused("tensor storage is not bytes")
    _state().charge(len(data), "tensor storages")
    try:
        dtype, flat = read_storage_bytes(bytes(data))
    except PickleRefused as exc:
        raise PickleRefused(f"a tensor storage is unreadable: {exc.reason}") from None
    return TorchStorage(dtype, flat)


def _int_tuple(value: Any, what: str) -> tuple[int, ...]:
    if (not isinstance(value, tuple | list) or len(value) > MAX_TENSOR_DIMS
            or not all(type(v) is int and 0 <= v <= MAX_DIM for v in value)):
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

    if not isinstance(storage, TorchStorage):
        raise PickleRefused("a tensor refers to something that is not a storage")
    if type(storage_offset) is not int or not 0 <= storage_offset <= MAX_DIM:
        raise PickleRefused("tensor storage offset is malformed")
    size = _int_tuple(size, "size")
    stride = _int_tuple(stride, "stride")
    if len(size) != len(stride):
        raise PickleRefused("tensor size and stride disagree")
    numel = storage.flat.numel()
    count = math.prod(size)
    if count > numel:  # no stride-0 blow-ups: a tensor never outgrows its data
        raise PickleRefused("a tensor claims more elements than its storage holds")
    if count > 0:
        extent = storage_offset + sum((s - 1) * st for s, st in zip(size, stride, strict=True)) + 1
        if extent > numel:
            raise PickleRefused("a tensor reaches past the end of its storage")
    elif storage_offset > numel:
        raise PickleRefused("a tensor reaches past the end of its storage")
    _state().charge(count * storage.flat.element_size(), "tensors")
    return torch.as_strided(storage.flat, size, stride, storage_offset)


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
    _state().charge(len(text), "bytes")
    try:
        return text.encode("latin-1")
    except UnicodeEncodeError:
        raise PickleRefused("it holds bytes written as text that is not latin-1") from None


def _empty_bytes(*args: Any) -> bytes:
    # Protocol 2 writes ``b""`` as ``bytes()``; anything else would be a conversion.
    if args:
        raise PickleRefused("it calls bytes() with arguments, which network pickles never do")
    return b""


_SET_ITEM_TYPES = (str, int, float, bool, bytes, type(None))


def _set_items(items: Any) -> list:
    if not isinstance(items, list | tuple | set | frozenset):
        raise PickleRefused(f"a set is made from a {type(items).__name__}")
    if len(items) > MAX_SET_ITEMS:
        raise PickleRefused("a set holds more items than any network pickle")
    for item in items:
        if not isinstance(item, _SET_ITEM_TYPES):
            raise PickleRefused(
                f"a set holds a {type(item).__name__}; network pickles keep only names in sets"
            )
    _state().charge(ITEM_COST * len(items), "sets")
    return list(items)


def _make_set(items: Any = ()) -> set:
    return set(_set_items(items))


def _make_frozenset(items: Any = ()) -> frozenset:
    return frozenset(_set_items(items))


def _dict_items(args: tuple, what: str) -> list:
    if not args:
        return []
    if len(args) > 1:
        raise PickleRefused(f"an {what} is made from more than one argument")
    src = args[0]
    if isinstance(src, dict):
        pairs = list(src.items())
    elif isinstance(src, list | tuple):
        if not all(isinstance(p, tuple | list) and len(p) == 2 for p in src):
            raise PickleRefused(f"an {what} is made from something other than key-value pairs")
        pairs = [tuple(p) for p in src]
    else:
        raise PickleRefused(f"an {what} is made from a {type(src).__name__}")
    if len(pairs) > MAX_SET_ITEMS:
        raise PickleRefused(f"an {what} holds more items than any network pickle")
    _state().charge(ITEM_COST * len(pairs), "dicts")
    return pairs


def _ordered_dict(*args: Any) -> StateDict:
    return StateDict(_dict_items(args, "OrderedDict"))


def _easy_dict(*args: Any) -> EasyDict:
    return EasyDict(_dict_items(args, "EasyDict"))


def _np_dtype(spec: Any, align: Any = False, copy: Any = False) -> NumpyDType:
    if not isinstance(spec, str):
        raise PickleRefused(f"a numpy dtype is named by a {type(spec).__name__}")
    if len(spec) > 16:
        raise PickleRefused(f"a numpy dtype {spec[:20]!r}... is not allowed")
    if type(align) not in (bool, int) or type(copy) not in (bool, int):
        raise PickleRefused("a numpy dtype is malformed")
    try:
        dt = np.dtype(spec)
    except Exception:
        raise PickleRefused(f"a numpy dtype {spec!r} is malformed") from None
    if (dt.hasobject or dt.kind not in "biufc" or dt.fields is not None
            or dt.subdtype is not None or not 1 <= dt.itemsize <= 16):
        raise PickleRefused(
            f"a numpy dtype {spec!r} is not allowed (only plain numbers: no objects, records, "
            "sub-arrays or text)"
        )
    return NumpyDType(dt)


def _np_scalar(dtype: Any, data: Any = None) -> Any:
    if not isinstance(dtype, NumpyDType):
        raise PickleRefused("a numpy scalar has an unsupported dtype")
    if not isinstance(data, bytes):
        raise PickleRefused("a numpy scalar is malformed")
    if len(data) != dtype.dtype.itemsize:
        raise PickleRefused("a numpy scalar has the wrong number of bytes")
    return np.frombuffer(data, dtype=dtype.dtype)[0]


def _np_reconstruct(subtype: Any, shape: Any, dtype: Any) -> np.ndarray:
    if subtype is not NDARRAY:
        raise PickleRefused("a numpy array has an unsupported type")
    if not isinstance(shape, tuple) or not isinstance(dtype, bytes | str):
        raise PickleRefused("a numpy array is malformed")
    arr = np.empty((0,), dtype=np.uint8)
    _state().pending_arrays[id(arr)] = arr
    return arr


def _set_array_state(arr: np.ndarray, state: Any) -> None:
    """``BUILD`` of an array made by ``_reconstruct``: numpy's state tuple, checked."""
    if not isinstance(state, tuple) or len(state) != 5 or state[0] != 1:
        raise PickleRefused("a numpy array has a malformed state")
    _, shape, dtype, fortran, raw = state
    if (not isinstance(shape, tuple) or len(shape) > MAX_TENSOR_DIMS
            or not all(type(s) is int and 0 <= s <= MAX_DIM for s in shape)):
        raise PickleRefused("a numpy array has a malformed shape")
    if not isinstance(dtype, NumpyDType):
        raise PickleRefused("a numpy array has an unsupported dtype")
    if type(fortran) is not bool or not isinstance(raw, bytes | bytearray):
        raise PickleRefused("a numpy array is malformed (only raw numbers are allowed)")
    nbytes = math.prod(shape) * dtype.dtype.itemsize
    if nbytes != len(raw):
        raise PickleRefused(
            f"a numpy array of shape {list(shape)} has {len(raw)} bytes of data, not {nbytes}"
        )
    _state().charge(nbytes, "numpy arrays")
    arr.__setstate__((1, shape, dtype.dtype, fortran, bytes(raw)))


ALLOWED_GLOBALS: dict[tuple[str, str], Callable[..., Any] | type] = {
    ("torch_utils.persistence", "_reconstruct_persistent_obj"): _reconstruct_persistent_obj,
    ("collections", "OrderedDict"): _ordered_dict,
    ("dnnlib.util", "EasyDict"): EasyDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter_with_state,
    ("torch.storage", "_load_from_bytes"): _load_from_bytes,
    ("numpy", "dtype"): _np_dtype,
    ("numpy", "ndarray"): NDARRAY,
    ("numpy.core.multiarray", "scalar"): _np_scalar,
    ("numpy._core.multiarray", "scalar"): _np_scalar,
    ("numpy.core.multiarray", "_reconstruct"): _np_reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _np_reconstruct,
    ("builtins", "set"): _make_set,
    ("__builtin__", "set"): _make_set,
    ("builtins", "frozenset"): _make_frozenset,
    ("__builtin__", "frozenset"): _make_frozenset,
    ("_codecs", "encode"): _codecs_encode,
    ("builtins", "bytes"): _empty_bytes,
    ("__builtin__", "bytes"): _empty_bytes,
}

# What REDUCE may call, by identity: our functions; ``EasyDict(...)`` goes through
# ``_easy_dict``; calling the ``numpy.ndarray`` marker raises.
_CALLABLE: dict[int, tuple[Any, Callable[..., Any]]] = {
    id(f): (f, f) for f in ALLOWED_GLOBALS.values() if f is not EasyDict
}
_CALLABLE[id(EasyDict)] = (EasyDict, _easy_dict)
_DICT_TYPES = (dict, EasyDict, StateDict)


class RestrictedUnpickler(GuardedUnpickler):
    """Resolves only :data:`ALLOWED_GLOBALS`; only our records accept ``BUILD``."""

    def find_class(self, module: str, name: str) -> Any:
        target = ALLOWED_GLOBALS.get((module, name))
        if target is None:
            qual = f"{module}.{name}"[:200]
            raise PickleRefused(
                f"it refers to {qual}, which a StyleGAN network pickle never needs "
                "(pickles can run code through such references, so it was not loaded)",
                global_name=qual,
            )
        return target

    def persistent_load(self, pid: Any) -> Any:
        raise PickleRefused("it uses persistent ids, which NVIDIA network pickles never do")

    def call(self, func: Any, args: tuple) -> Any:
        entry = _CALLABLE.get(id(func))
        if entry is None or entry[0] is not func:
            raise PickleRefused(f"it calls a {type(func).__name__}, which is not callable here")
        return entry[1](*args)

    def new_object(self, cls: Any, args: tuple, kwargs: dict) -> Any:
        if cls is EasyDict and not args and not kwargs:
            return EasyDict()
        what = cls.__name__ if isinstance(cls, type) else f"a {type(cls).__name__}"
        raise PickleRefused(f"it creates an object of {what} in a way network pickles never do")

    def build(self, inst: Any, state: Any) -> None:
        if type(inst) in (EasyDict, StateDict):
            # Attributes pickled with a dict (always empty for EasyDict; torch's _metadata
            # on state dicts): nothing we need.
            if state is not None and not isinstance(state, dict | tuple):
                raise PickleRefused("a dict in it has malformed attributes")
            return
        if isinstance(inst, NumpyDType):
            inst.set_state(state)
            return
        pending = _state().pending_arrays
        if type(inst) is np.ndarray and pending.get(id(inst)) is inst:
            del pending[id(inst)]
            _set_array_state(inst, state)
            return
        if isinstance(inst, PersistentObject):
            raise PickleRefused("it modifies a reconstructed network in a way real files never do")
        raise PickleRefused(
            f"it changes a {type(inst).__name__} after creating it, which network pickles "
            "never do"
        )

    def set_items(self, target: Any, pairs: list[tuple[Any, Any]]) -> None:
        if type(target) not in _DICT_TYPES:
            raise PickleRefused(f"it inserts dict items into a {type(target).__name__}")
        for key, value in pairs:
            target[key] = value


def looks_like_pickle(head: bytes) -> bool:
    """True when ``head`` starts like a binary pickle of protocol 2 to 5."""
    return len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5


def check_structure(data: bytes) -> int:
    """Walk the opcode stream without building anything: catches truncation, bad opcodes,
    length fields that point past the end of the file and more instructions than any
    network pickle holds, before the real load. Returns the number of opcodes."""
    return check_opcodes(io.BytesIO(data))


def _one_line(text: str) -> str:
    lines = text.strip().splitlines()
    return lines[0][:160] if lines else ""


def load_restricted(source: bytes | bytearray | IO[bytes]) -> Any:
    """Unpickle ``source`` (bytes or a binary file) with :class:`RestrictedUnpickler`.

    Raises :class:`PickleRefused` for a forbidden reference, a damaged or truncated file,
    or a file that is not a pickle; nothing in the file is executed.
    """
    data = bytes(source) if isinstance(source, bytes | bytearray) else source.read()
    if not looks_like_pickle(data[:2]):
        raise PickleRefused("it is not a binary pickle (protocol 2 to 5)")
    check_structure(data)
    token = _STATE.set(_LoadState(BUDGET_FACTOR * len(data) + BUDGET_SLACK))
    try:
        return RestrictedUnpickler(io.BytesIO(data)).load()
    except PickleRefused:
        raise
    except MemoryError:
        raise PickleRefused("it asks for more memory than it could hold (damaged?)") from None
    except EOFError:
        raise PickleRefused("it ends early (truncated download?)") from None
    except RecursionError:
        raise PickleRefused("it is nested too deeply to be a network pickle") from None
    except Exception as exc:  # anything else a malformed opcode stream raises
        detail = "" if isinstance(exc, KeyError) else f": {_one_line(str(exc))}"
        raise PickleRefused(f"it is damaged ({type(exc).__name__}{detail})") from None
    finally:
        _STATE.reset(token)
