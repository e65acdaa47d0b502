"""The whitelisting unpickler: hostile, damaged and foreign files are refused with a clear
FileFormatError naming the file; nothing in them runs and nothing is written."""

from __future__ import annotations

import io
import os
import pickle
import struct
import subprocess
import zipfile
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from import_fixtures import (
    fake_nvidia_modules,
    network_from_state_dict,
    nvidia_g_init_kwargs,
    nvidia_pickle_bytes,
    tiny_generator,
    write_nvidia_pkl,
)

from studio.core.errors import FileFormatError
from studio.face.importers import detect_format, import_checkpoint, inspect_checkpoint
from studio.face.importers.safe_pickle import (
    PersistentObject,
    PickleRefused,
    load_restricted,
)


class Evil:
    """Pickles as ``func(*args)``: what an attacker puts in a file."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return (self.func, self.args)


def _binunicode(text: str) -> bytes:
    raw = text.encode()
    return b"X" + struct.pack("<I", len(raw)) + raw


def _short_binunicode(text: str) -> bytes:
    raw = text.encode()
    return b"\x8c" + bytes([len(raw)]) + raw


def hostile_pickles(marker: Path) -> dict[str, tuple[bytes, str]]:
    """name -> (file bytes, text the error must contain)."""
    cmd = f"touch {marker}"
    out = {
        "posix.system REDUCE p2": (pickle.dumps(Evil(os.system, cmd), protocol=2), "system"),
        "posix.system STACK_GLOBAL p4": (pickle.dumps(Evil(os.system, cmd), protocol=4), "system"),
        "os.system GLOBAL": (b"\x80\x02cos\nsystem\n" + _binunicode(cmd) + b"\x85R.", "os.system"),
        "posix.system STACK_GLOBAL handmade": (
            b"\x80\x04" + _short_binunicode("posix") + _short_binunicode("system") + b"\x93"
            + _binunicode(cmd) + b"\x85R.",
            "posix.system",
        ),
        "builtins.eval": (
            pickle.dumps(Evil(eval, f"__import__('os').system({cmd!r})"), protocol=3),
            "builtins.eval",
        ),
        "__builtin__.eval p2": (
            pickle.dumps(Evil(eval, f"__import__('os').system({cmd!r})"), protocol=2), "eval"
        ),
        "subprocess.Popen": (
            pickle.dumps(Evil(subprocess.Popen, ["touch", str(marker)]), protocol=4),
            "subprocess.Popen",
        ),
        "INST os.system": (b"\x80\x02(" + _binunicode(cmd) + b"ios\nsystem\n.", "os.system"),
        "OBJ os.system": (b"\x80\x02(cos\nsystem\n" + _binunicode(cmd) + b"o.", "os.system"),
        "NEWOBJ subprocess.Popen": (
            b"\x80\x02csubprocess\nPopen\n(X\x05\x00\x00\x00touchX" + struct.pack("<I", len(str(marker)))
            + str(marker).encode() + b"l\x85\x81.",
            "subprocess.Popen",
        ),
        "persistence._src_to_module": (
            b"\x80\x02ctorch_utils.persistence\n_src_to_module\n"
            + _binunicode(f"import pathlib; pathlib.Path({str(marker)!r}).write_text('x')")
            + b"\x85R.",
            "torch_utils.persistence._src_to_module",
        ),
        "persistence.persistent_class": (
            b"\x80\x02ctorch_utils.persistence\npersistent_class\n.",
            "torch_utils.persistence.persistent_class",
        ),
        "dnnlib.util.call_func_by_name": (
            b"\x80\x02cdnnlib.util\ncall_func_by_name\n" + _binunicode("os.system") + b"\x85R.",
            "dnnlib.util.call_func_by_name",
        ),
        "persistent id": (b"\x80\x02" + _binunicode("storage") + b"Q.", "persistent id"),
        "copyreg extension": (b"\x80\x02\x82\x01.", "extension codes"),
    }
    # A hostile pickle hidden inside a tensor's storage bytes.
    inner = pickle.dumps(Evil(os.system, cmd), protocol=2)
    out["hostile storage bytes"] = (
        b"\x80\x02ctorch.storage\n_load_from_bytes\nB" + struct.pack("<I", len(inner)) + inner
        + b"\x85R.",
        "system",
    )
    return out


@pytest.fixture
def marker(tmp_path: Path) -> Path:
    return tmp_path / "EXECUTED"


@pytest.mark.parametrize("case", list(hostile_pickles(Path("/nonexistent/m"))))
def test_hostile_pickles_are_refused(tmp_path: Path, marker: Path, case: str) -> None:
    data, needle = hostile_pickles(marker)[case]
    src = tmp_path / "evil.pkl"
    src.write_bytes(data)
    out = tmp_path / "models" / "evil.safetensors"
    with pytest.raises(FileFormatError) as info:
        import_checkpoint(src, out)
    msg = str(info.value)
    assert "evil.pkl" in msg
    assert needle in msg
    assert not marker.exists()
    assert not out.exists() and not out.parent.exists()
    with pytest.raises(FileFormatError):
        inspect_checkpoint(src)
    assert not marker.exists()


def test_hostile_object_inside_a_real_looking_network(tmp_path: Path, marker: Path) -> None:
    G, kwargs = tiny_generator()
    net = network_from_state_dict(G.state_dict(), "Generator", nvidia_g_init_kwargs(kwargs), "")
    net.meta["state"]["_init_kwargs"]["hook"] = Evil(os.system, f"touch {marker}")
    src = tmp_path / "trojan.pkl"
    src.write_bytes(nvidia_pickle_bytes({"G_ema": net}, protocol=4))
    with pytest.raises(FileFormatError, match=r"trojan\.pkl.*posix\.system"):
        import_checkpoint(src, tmp_path / "out.safetensors")
    assert not marker.exists()
    assert not (tmp_path / "out.safetensors").exists()


def test_module_src_is_never_executed(tmp_path: Path, marker: Path) -> None:
    G, kwargs = tiny_generator()
    src = write_nvidia_pkl(tmp_path / "net.pkl", G.state_dict(), kwargs, marker=marker)
    assert b"module_src was executed" in src.read_bytes()  # the payload is really in there
    obj = load_restricted(src.read_bytes())
    assert isinstance(obj["G_ema"], PersistentObject)
    assert obj["G_ema"].class_name == "Generator"
    assert not hasattr(obj["G_ema"], "module_src")
    assert not marker.exists()


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_protocols_give_the_same_tensors(tmp_path: Path, protocol: int) -> None:
    G, kwargs = tiny_generator()
    with fake_nvidia_modules():
        data = pickle.dumps({"t": torch.nn.Parameter(torch.arange(6.0).reshape(2, 3)),
                             "s": {1, 2}, "b": b"\x00\xff"}, protocol=protocol)
    obj = load_restricted(data)
    assert torch.equal(obj["t"], torch.arange(6.0).reshape(2, 3))
    assert type(obj["t"]) is torch.Tensor  # a plain tensor, not a Parameter with hooks
    assert obj["s"] == {1, 2} and obj["b"] == b"\x00\xff"


def test_storages_saved_on_a_gpu_load_on_the_cpu() -> None:
    t = torch.arange(4.0)
    _, (inner,) = t.__reduce_ex__(2)[1][0].__reduce__()
    assert inner.count(b"X\x03\x00\x00\x00cpu") == 1
    inner = inner.replace(b"X\x03\x00\x00\x00cpu", b"X\x06\x00\x00\x00cuda:0")

    class Storage:
        def __reduce__(self):
            return (torch.storage._load_from_bytes, (inner,))

    class Tensor:
        def __reduce__(self):
            return (torch._utils._rebuild_tensor_v2, (Storage(), 0, (4,), (1,), False, {}))

    obj = load_restricted(pickle.dumps({"t": Tensor()}, protocol=2))
    assert obj["t"].device.type == "cpu" and torch.equal(obj["t"], t)


def test_old_numpy_module_names(tmp_path: Path, marker: Path) -> None:
    # Files written with numpy 1.x say numpy.core.multiarray; numpy 2 writes numpy._core.
    G, kwargs = tiny_generator()
    src = write_nvidia_pkl(tmp_path / "old.pkl", G.state_dict(), kwargs, marker=marker,
                           protocol=2, old_numpy_names=True)
    raw = src.read_bytes()
    assert b"cnumpy.core.multiarray\nscalar" in raw and b"numpy._core" not in raw
    info = inspect_checkpoint(src)
    assert info["supported"] and info["generator"]["img_resolution"] == 16


def _valid_pkl(tmp_path: Path, marker: Path) -> bytes:
    G, kwargs = tiny_generator()
    return write_nvidia_pkl(tmp_path / "ok.pkl", G.state_dict(), kwargs, marker=marker).read_bytes()


def test_truncated_files_are_refused(tmp_path: Path, marker: Path) -> None:
    data = _valid_pkl(tmp_path, marker)
    src = tmp_path / "cut.pkl"
    for n in (2, 3, 40, len(data) // 3, len(data) // 2, len(data) - 200, len(data) - 1):
        src.write_bytes(data[:n])
        with pytest.raises(FileFormatError, match=r"cut\.pkl") as info:
            import_checkpoint(src, tmp_path / "out.safetensors")
        assert "truncated" in str(info.value) or "damaged" in str(info.value)
    assert not (tmp_path / "out.safetensors").exists()
    assert not marker.exists()


def _png_bytes() -> bytes:
    return b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(30)


@pytest.mark.parametrize(
    ("name", "make", "needle"),
    [
        ("photo.pkl", lambda p: p.write_bytes(_png_bytes()), "PNG image"),
        ("photo2.pt", lambda p: p.write_bytes(b"\xff\xd8\xff\xe0" + bytes(40)), "JPEG image"),
        ("empty.pkl", lambda p: p.write_bytes(b""), "empty"),
        ("notes.pkl", lambda p: p.write_text("hello, not a model"), "not a StyleGAN2 checkpoint"),
        ("model.pkl", lambda p: p.write_bytes(struct.pack("<Q", 2) + b"{}"), "safetensors"),
        ("legacy0.pkl", lambda p: p.write_bytes(pickle.dumps({"G": 1}, protocol=0)), "unknown"),
    ],
)
def test_foreign_files_are_refused(tmp_path: Path, name, make, needle) -> None:
    src = tmp_path / name
    make(src)
    with pytest.raises(FileFormatError) as info:
        import_checkpoint(src, tmp_path / "out.safetensors")
    assert name in str(info.value) and needle in str(info.value)
    assert not (tmp_path / "out.safetensors").exists()


def test_zip_renamed_pkl_is_refused(tmp_path: Path) -> None:
    src = tmp_path / "archive.pkl"
    with zipfile.ZipFile(src, "w") as zf:
        zf.writestr("readme.txt", "hello")
    with pytest.raises(FileFormatError, match=r"archive\.pkl.*ZIP archive"):
        import_checkpoint(src, tmp_path / "out.safetensors")
    src.write_bytes(src.read_bytes()[:30])  # a torn zip
    with pytest.raises(FileFormatError, match=r"archive\.pkl"):
        detect_format(src)


def test_missing_file_and_folder(tmp_path: Path) -> None:
    with pytest.raises(FileFormatError, match="not found"):
        import_checkpoint(tmp_path / "nope.pkl", tmp_path / "out.safetensors")
    with pytest.raises(FileFormatError, match="folder"):
        import_checkpoint(tmp_path, tmp_path / "out.safetensors")


@pytest.mark.parametrize(
    ("obj", "needle"),
    [([1, 2, 3], "pickle of a list"), ({"a": 1}, "no generator network"), ({"G_ema": 3}, "no generator")],
)
def test_pickles_without_networks(tmp_path: Path, obj, needle) -> None:
    src = tmp_path / "data.pkl"
    src.write_bytes(pickle.dumps(obj, protocol=4))
    with pytest.raises(FileFormatError, match=needle):
        import_checkpoint(src, tmp_path / "out.safetensors")


def test_tensor_outside_its_storage_is_refused(tmp_path: Path) -> None:
    t = torch.arange(4.0)
    storage_reduce = t.untyped_storage()  # noqa: F841  (documents what the bytes hold)
    good = pickle.dumps(t, protocol=2)
    # Rewrite the size tuple (4,) to (400,): a tensor pointing past its data.
    bad = good.replace(b"K\x04\x85", b"M\x90\x01\x85", 1)
    assert bad != good
    with pytest.raises(PickleRefused, match="storage"):
        load_restricted(bad)


def test_cyclic_and_shared_modules_are_refused(tmp_path: Path) -> None:
    G, kwargs = tiny_generator()
    ik = nvidia_g_init_kwargs(kwargs)
    net = network_from_state_dict(G.state_dict(), "Generator", ik, "")
    net.meta["state"]["_modules"]["mapping"].meta["state"]["_modules"]["loop"] = net
    src = tmp_path / "cycle.pkl"
    src.write_bytes(nvidia_pickle_bytes({"G_ema": net}, protocol=4))
    with pytest.raises(FileFormatError, match=r"cycle\.pkl"):
        import_checkpoint(src, tmp_path / "out.safetensors")
    # The same module object reachable twice (a real network is a tree).
    net = network_from_state_dict(G.state_dict(), "Generator", ik, "")
    mods = net.meta["state"]["_modules"]
    mods["mapping"].meta["state"]["_modules"]["again"] = mods["synthesis"]
    src = tmp_path / "shared.pkl"
    src.write_bytes(nvidia_pickle_bytes({"G_ema": net}, protocol=4))
    with pytest.raises(FileFormatError, match=r"shared\.pkl.*twice"):
        import_checkpoint(src, tmp_path / "out.safetensors")


_settings = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@_settings
@given(data=st.binary(max_size=300))
def test_random_bytes_are_refused_cleanly(tmp_path: Path, data: bytes) -> None:
    src = tmp_path / "random.pkl"
    src.write_bytes(data)
    with pytest.raises(FileFormatError, match=r"random\.pkl"):
        import_checkpoint(src, tmp_path / "out.safetensors")
    assert not (tmp_path / "out.safetensors").exists()


@_settings
@given(proto=st.sampled_from([b"\x80\x02", b"\x80\x04", b"\x80\x05"]), data=st.binary(max_size=300))
def test_random_opcode_streams_are_refused_cleanly(tmp_path: Path, proto: bytes, data: bytes) -> None:
    src = tmp_path / "garbage.pkl"
    src.write_bytes(proto + data)
    with pytest.raises(FileFormatError, match=r"garbage\.pkl"):
        import_checkpoint(src, tmp_path / "out.safetensors")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data())
def test_mutated_real_pickles_never_crash(tmp_path: Path, data) -> None:
    base = _MUTATION_BASE.get("data")
    if base is None:
        G, kwargs = tiny_generator()
        nets = {"G_ema": network_from_state_dict(
            G.state_dict(), "Generator", nvidia_g_init_kwargs(kwargs), "")}
        base = _MUTATION_BASE["data"] = nvidia_pickle_bytes(nets, protocol=4)
    buf = bytearray(base)
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(2, len(buf) - 1))
        buf[i] = data.draw(st.integers(0, 255))
    src = tmp_path / "mutant.pkl"
    src.write_bytes(bytes(buf))
    try:
        inspect_checkpoint(src)
    except FileFormatError as exc:
        assert "mutant.pkl" in str(exc)


_MUTATION_BASE: dict[str, bytes] = {}


def test_load_restricted_reads_file_objects() -> None:
    assert load_restricted(io.BytesIO(pickle.dumps({"a": [1, 2]}, protocol=4))) == {"a": [1, 2]}
