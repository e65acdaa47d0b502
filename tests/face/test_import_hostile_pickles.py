"""Hostile NVIDIA-style pickles that reach the whitelisted callables with crafted arguments:
object arrays over attacker bytes, numpy and torch ``__setstate__`` with crafted state,
tensors larger than their storage, calls that multiply a small file into gigabytes. Each is
refused with a clear error; none crashes the process."""

from __future__ import annotations

import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from hostile_files import (
    BUILD,
    P2,
    REDUCE,
    STOP,
    assert_one_line_error,
    b,
    g,
    i,
    run_studio,
    the_73_byte_pickle,
    tup,
    u,
)

from studio.face.importers.safe_pickle import PickleRefused, load_restricted

# --------------------------------------------------------------------------- the crash


@pytest.mark.slow
def test_the_73_byte_object_array_pickle_is_a_clean_error(tmp_path: Path) -> None:
    """``set(numpy.ndarray((1,), "|O", b"AAAAAAAA"))`` segfaulted ``studio import`` and
    ``studio import --inspect`` (exit 139): the array's one "object" is a pointer made of
    attacker bytes, and ``set`` dereferences it."""
    src = tmp_path / "tiny.pkl"
    data = the_73_byte_pickle()
    assert len(data) == 73
    src.write_bytes(data)
    out = tmp_path / "out.safetensors"
    for args in (["import", str(src), "-o", str(out)], ["import", "--inspect", str(src)]):
        run = run_studio(args, tmp_path)
        assert run.code != 139 and run.code > 0, run.err
        assert_one_line_error(run, "tiny.pkl", "numpy.ndarray")
    assert src.read_bytes() == data
    assert not out.exists()


# --------------------------------------------------------------------------- hostile pieces


def _dtype(spec: str) -> bytes:
    return g("numpy", "dtype") + tup(u(spec), b"\x89", b"\x88") + REDUCE


def _dtype_state(endian: str = "<", names: bytes = b"N", fields: bytes = b"N",
                 elsize: int = -1, flags: int = 0) -> bytes:
    return tup(i(3), u(endian), b"N", names, fields, i(elsize), i(-1), i(flags)) + BUILD


def _array(shape: tuple[int, ...], dtype: bytes, raw: bytes, fortran: bool = False) -> bytes:
    return (g("numpy._core.multiarray", "_reconstruct")
            + tup(g("numpy", "ndarray"), tup(i(0)), b(b"b")) + REDUCE
            + tup(i(1), tup(*(i(s) for s in shape)), dtype, b"\x88" if fortran else b"\x89",
                  b(raw))
            + BUILD)


def _storage_bytes(values: int = 4) -> bytes:
    """The bytes ``torch.storage._load_from_bytes`` receives for a float storage."""
    t = torch.arange(float(values))
    _, (inner,) = t.__reduce_ex__(2)[1][0].__reduce__()
    return inner


def _tensor(size: tuple[int, ...], stride: tuple[int, ...], offset: int = 0,
            values: int = 4) -> bytes:
    storage = g("torch.storage", "_load_from_bytes") + tup(b(_storage_bytes(values))) + REDUCE
    return (g("torch._utils", "_rebuild_tensor_v2")
            + tup(storage, i(offset), tup(*(i(s) for s in size)), tup(*(i(s) for s in stride)),
                  b"\x89", g("collections", "OrderedDict") + b")" + REDUCE)
            + REDUCE)


def _call(module: str, name: str, *args: bytes) -> bytes:
    return g(module, name) + tup(*args) + REDUCE


def _legacy_storage_claiming(declared: int) -> bytes:
    """Single-storage legacy stream whose pickle declares ``declared`` floats but whose
    data holds one."""
    raw = _storage_bytes(1)
    good = b"X\x03\x00\x00\x00cpuq\x03K\x01"
    assert good in raw
    return raw.replace(good, b"X\x03\x00\x00\x00cpuq\x03" + i(declared), 1)


_BIG_LIST = b"]" + b"(" + b"".join(i(n) for n in range(20_000)) + b"e" + b"q\x00" + b"0"

HOSTILE: dict[str, tuple[bytes, str]] = {
    "object dtype |O": (_dtype("|O"), "not allowed"),
    "object dtype O8": (_dtype("O8"), "not allowed"),
    "record dtype with an object field": (_dtype("i4,O"), "not allowed"),
    "sub-array dtype of objects": (_dtype("(2,)O"), "not allowed"),
    "void dtype": (_dtype("V8"), "not allowed"),
    "text dtype": (_dtype("U4"), "not allowed"),
    "dtype BUILD adding fields": (
        _dtype("f4") + _dtype_state(names=tup(u("a")),
                                    fields=b"}" + u("a") + tup(_dtype("f4"), i(0)) + b"s"),
        "fields",
    ),
    "dtype BUILD claiming another item size": (_dtype("f4") + _dtype_state(elsize=4096),
                                               "item size"),
    "dtype BUILD with object flags": (_dtype("f4") + _dtype_state(flags=63) + _dtype_state(),
                                      "twice"),
    "scalar of an object dtype": (
        _call("numpy._core.multiarray", "scalar", _dtype("O"), b(b"A" * 8)), "not allowed"),
    "scalar with too few bytes": (
        _call("numpy._core.multiarray", "scalar", _dtype("f8") + _dtype_state(), b(b"AB")),
        "wrong number of bytes"),
    "ndarray called directly": (
        _call("numpy", "ndarray", tup(i(1)), u("f8"), b(b"A" * 8)), "numpy.ndarray directly"),
    "ndarray created with NEWOBJ": (g("numpy", "ndarray") + b")\x81", "creates an object"),
    "array of objects": (_array((1,), _dtype("O"), b"A" * 8), "not allowed"),
    "array claiming more data than it has": (
        _array((1000, 1000), _dtype("f4") + _dtype_state(), b"A" * 8), "bytes of data"),
    "array of 10^12 elements over 8 bytes": (
        _array((10**6, 10**6), _dtype("f8") + _dtype_state(), b"A" * 8), "bytes of data"),
    "array from a list (an object pickle)": (
        g("numpy._core.multiarray", "_reconstruct")
        + tup(g("numpy", "ndarray"), tup(i(0)), b(b"b")) + REDUCE
        + tup(i(1), tup(i(1)), _dtype("f8") + _dtype_state(), b"\x89", b"]" + i(1) + b"a")
        + BUILD,
        "only raw numbers"),
    "array BUILD twice": (
        _array((1,), _dtype("f8") + _dtype_state(), b"A" * 8)
        + tup(i(1), tup(i(1)), _dtype("f8"), b"\x89", b(b"B" * 8)) + BUILD,
        "changes a ndarray"),
    "BUILD on a tensor (torch's set_ to a huge view)": (
        _tensor((4,), (1,)) + tup(i(0), i(0), tup(i(10**6), i(10**6)), tup(i(0), i(0))) + BUILD,
        "changes a Tensor"),
    "SETITEM into a tensor": (_tensor((4,), (1,)) + i(0) + i(7) + b"s", "into a Tensor"),
    "APPEND onto a tensor": (_tensor((4,), (1,)) + i(0) + b"a", "appends items to a Tensor"),
    "tensor with stride 0 claiming 10^10 values": (
        _tensor((10**5, 10**5), (0, 0)), "more elements than its storage"),
    "tensor past the end of its storage": (_tensor((4,), (1,), offset=3), "past the end"),
    "tensor with a huge stride": (_tensor((2,), (2**50,)), "malformed"),
    "tensor with a negative size": (_tensor((-4,), (1,)), "malformed"),
    "tensor of a non-storage": (
        _call("torch._utils", "_rebuild_tensor_v2", b(b"x"), i(0), tup(i(1)), tup(i(1))),
        "not a storage"),
    "storage declaring 10^10 values over one": (
        _call("torch.storage", "_load_from_bytes", b(_legacy_storage_claiming(10**10))),
        "declares"),
    "storage bytes that are not a torch stream": (
        _call("torch.storage", "_load_from_bytes", b(b"\x80\x02K\x01.")), "magic"),
    "_codecs.encode with rot13": (_call("_codecs", "encode", u("abc"), u("rot13")), "latin-1"),
    "_codecs.encode with a compression codec": (
        _call("_codecs", "encode", u("abc"), u("zlib_codec")), "latin-1"),
    "_codecs.encode of bytes": (_call("_codecs", "encode", b(b"abc"), u("latin1")), "latin-1"),
    "set of lists": (_call("__builtin__", "set", b"]](" + i(1) + b"ea"), "set holds a list"),
    "set of a tensor": (_call("builtins", "set", _tensor((4,), (1,))), "made from a Tensor"),
    "frozenset of a dict": (_call("builtins", "frozenset", b"}"), "made from a dict"),
    "OrderedDict of a tensor": (
        _call("collections", "OrderedDict", _tensor((4,), (1,))), "made from a Tensor"),
    "EasyDict of a string": (_call("dnnlib.util", "EasyDict", u("abcd")), "made from a str"),
    "call with a tensor as the argument tuple": (
        g("collections", "OrderedDict") + _tensor((4,), (1,)) + REDUCE, "not a tuple"),
    "calling a tensor": (_tensor((4,), (1,)) + b")" + REDUCE, "not callable"),
    "BUILD on a network record": (
        _call("torch_utils.persistence", "_reconstruct_persistent_obj",
              b"}(" + u("type") + u("class") + u("class_name") + u("G") + u("state") + b"}"
              + b"u") + b"}" + BUILD,
        "modifies a reconstructed network"),
    "a set made 2000 times from one list": (
        _BIG_LIST + b"(" + (g("builtins", "set") + b"h\x00\x85" + REDUCE + b"0") * 2000 + b"t",
        "far more data"),
    "one storage read 3000 times": (
        b(_storage_bytes(40_000)) + b"q\x01" + b"0" + b"("
        + (g("torch.storage", "_load_from_bytes") + b"h\x01\x85" + REDUCE + b"0") * 3000 + b"t",
        "far more data"),
}


@pytest.mark.parametrize("case", list(HOSTILE))
def test_hostile_arguments_are_refused(case: str) -> None:
    body, needle = HOSTILE[case]
    with pytest.raises(PickleRefused) as info:
        load_restricted(P2 + body + STOP)
    assert needle in info.value.reason
    assert "\n" not in info.value.reason


def test_a_file_of_millions_of_tiny_objects_is_refused(monkeypatch) -> None:
    """``}}}}...``: each byte a new dict of ~64 bytes; a 100 MB file would hold 6 GB."""
    from studio.face.importers import guarded_unpickler

    monkeypatch.setattr(guarded_unpickler, "MAX_OPCODES", 1000)
    with pytest.raises(PickleRefused, match="more than 1,000 pickle instructions"):
        load_restricted(P2 + b"(" + b"}" * 2000 + b"l" + STOP)
    assert load_restricted(P2 + b"(" + b"}" * 500 + b"l" + STOP) == [{}] * 500


# --------------------------------------------------------------------------- still loads


@pytest.mark.parametrize("protocol", [2, 3, 4])
def test_numpy_data_real_files_hold_still_loads(protocol: int) -> None:
    values = {
        "f4": np.arange(6, dtype="<f4").reshape(2, 3),
        "big-endian": np.arange(4, dtype=">f8"),
        "fortran": np.asfortranarray(np.arange(6.0).reshape(2, 3)),
        "empty": np.zeros((0, 3), dtype="u1"),
        "bool": np.array([True, False]),
        "complex": np.array([1 + 2j], dtype="c8"),
        "scalar": np.float32(2.5),
        "int": np.int64(-3),
    }
    got = load_restricted(pickle.dumps(values, protocol=protocol))
    for key, want in values.items():
        assert type(got[key]) is type(want), key
        assert np.array_equal(got[key], want), key
        assert got[key].shape == want.shape, key


def test_tensor_views_inside_their_storage_still_load() -> None:
    t = torch.arange(12.0).reshape(3, 4)
    got = load_restricted(pickle.dumps({"t": t, "col": t[:, 1], "tail": t[2]}, protocol=2))
    assert torch.equal(got["t"], t)
    assert torch.equal(got["col"], t[:, 1]) and torch.equal(got["tail"], t[2])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16, torch.float64,
                                   torch.int64, torch.uint8, torch.bool])
def test_storages_of_every_dtype_load_aligned(dtype: torch.dtype) -> None:
    t = (torch.arange(6) % 3).to(dtype).reshape(2, 3)
    got = load_restricted(pickle.dumps({"t": t, "empty": torch.zeros(0, dtype=dtype)},
                                       protocol=2))
    assert got["t"].dtype == dtype and torch.equal(got["t"], t)
    assert got["empty"].numel() == 0 and got["empty"].dtype == dtype
    assert got["t"].data_ptr() % 16 == 0  # a fresh buffer, not an offset into the file


def test_protocol_2_empty_bytes_load() -> None:
    assert load_restricted(pickle.dumps({"e": b""}, protocol=2)) == {"e": b""}


def test_a_set_of_names_loads() -> None:
    data = P2 + _call("__builtin__", "set", b"](" + u("a") + u("b") + b"e") + STOP
    assert load_restricted(data) == {"a", "b"}


def test_storage_bytes_hold_exactly_what_they_declare() -> None:
    raw = _storage_bytes(4)
    assert struct.pack("<q", 4) in raw
    got = load_restricted(P2 + _tensor((2, 2), (2, 1)) + STOP)
    assert torch.equal(got, torch.arange(4.0).reshape(2, 2))
