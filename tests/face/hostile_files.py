"""Hostile checkpoint files built by hand, and a way to run ``studio`` on them in a child
process (so a crash is an exit status, and memory use can be measured and capped)."""

from __future__ import annotations

import collections
import io
import os
import pickle
import struct
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[2]

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C


# --------------------------------------------------------------------------- pickle opcodes


def u(text: str) -> bytes:
    """BINUNICODE."""
    raw = text.encode()
    return b"X" + struct.pack("<I", len(raw)) + raw


def b(data: bytes) -> bytes:
    """SHORT_BINBYTES / BINBYTES."""
    if len(data) < 256:
        return b"C" + bytes([len(data)]) + data
    return b"B" + struct.pack("<I", len(data)) + data


def i(n: int) -> bytes:
    """The smallest int opcode that holds ``n`` (LONG1 for the big and negative ones)."""
    if 0 <= n < 256:
        return b"K" + bytes([n])
    if 0 <= n < 65536:
        return b"M" + struct.pack("<H", n)
    if -(2**31) <= n < 2**31:
        return b"J" + struct.pack("<i", n)
    raw = n.to_bytes((n.bit_length() + 8) // 8, "little", signed=True)
    return b"\x8a" + bytes([len(raw)]) + raw


def g(module: str, name: str) -> bytes:
    """GLOBAL (text form, as protocol 2 writes it)."""
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def tup(*items: bytes) -> bytes:
    return b"(" + b"".join(items) + b"t"


P2 = b"\x80\x02"
REDUCE, BUILD, STOP = b"R", b"b", b"."


def the_73_byte_pickle() -> bytes:
    """``set(numpy.ndarray((1,), "|O", b"AAAAAAAA"))``: an object array whose one pointer is
    attacker bytes, which ``set`` then dereferences. Before the fix: segfault (exit 139)."""
    def put(n: int) -> bytes:  # BINPUT: memoize the top of the stack, as picklers do
        return b"q" + bytes([n])

    data = (
        P2
        + g("__builtin__", "set") + put(0)             # the callable, pushed first
        + g("numpy", "ndarray") + put(1)               # ndarray(shape, dtype, buffer)
        + b"(" + tup(i(1)) + put(2)                    # ((1,),
        + u("|O") + put(3)                             #  "|O",
        + b(b"A" * 8) + put(4) + b"t" + put(5)         #  b"AAAAAAAA")
        + REDUCE                                       # -> an object array over the bytes
        + b"\x85"                                      # TUPLE1: (array,)
        + REDUCE                                       # set(array): reads the "pointers"
        + STOP
    )
    assert len(data) == 73, len(data)
    return data


# --------------------------------------------------------------------------- torch files


class RawTensor:
    """Pickles as ``torch._utils._rebuild_tensor_v2(storage, offset, size, stride)`` with
    whatever size and stride we like (torch.save finds the storage inside the arguments)."""

    def __init__(self, storage: Any, size: tuple[int, ...], stride: tuple[int, ...],
                 offset: int = 0) -> None:
        self.storage, self.size, self.stride, self.offset = storage, size, stride, offset

    def __reduce__(self) -> tuple[Any, ...]:
        return (torch._utils._rebuild_tensor_v2,
                (self.storage, self.offset, self.size, self.stride, False,
                 collections.OrderedDict()))


def one_value_storage() -> Any:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.ones(1).storage()


def tiny_hostile_rosinality(huge: int = 100_000) -> dict[str, Any]:
    """A rosinality-looking state whose mapping weight claims ``huge`` x ``huge`` floats
    backed by one stored value (stride 0): 40 GB the moment anything copies it."""
    return {
        "g_ema": {
            "style.1.weight": RawTensor(one_value_storage(), (huge, huge), (0, 0)),
            "style.1.bias": torch.zeros(4),
            "input.input": torch.zeros(1, 4, 4, 4),
            "to_rgb1.conv.weight": torch.zeros(1, 3, 4, 1, 1),
        },
        "latent_avg": torch.zeros(4),
    }


def torch_save(obj: Any, legacy: bool = False, **kwargs: Any) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf, _use_new_zipfile_serialization=not legacy, **kwargs)
    return buf.getvalue()


@dataclass
class FakeStorage:
    """A storage in a hand-written legacy stream: ``declared`` values in the pickle,
    ``data`` (float32) in the file."""

    key: str
    declared: int
    data: bytes


def legacy_stream(obj: Any, storages: list[FakeStorage]) -> bytes:
    """A legacy ``torch.save`` stream (magic, version, sys_info, object, keys, data) in
    which the pickle may declare sizes the data does not have."""
    buf = io.BytesIO()
    for header in (LEGACY_MAGIC, 1001, {"protocol_version": 1001, "little_endian": True,
                                        "type_sizes": {"short": 2, "int": 4, "long": 4}}):
        pickle.dump(header, buf, protocol=2)

    class Pickler(pickle.Pickler):
        def persistent_id(self, o: Any) -> Any:
            if isinstance(o, FakeStorage):
                return ("storage", torch.FloatStorage, o.key, "cpu", o.declared, None)
            return None

    Pickler(buf, protocol=2).dump(obj)
    pickle.dump(sorted(s.key for s in storages), buf, protocol=2)
    for s in sorted(storages, key=lambda s: s.key):
        buf.write(struct.pack("<q", len(s.data) // 4))
        buf.write(s.data)
    return buf.getvalue()


# --------------------------------------------------------------------------- running studio


@dataclass
class Run:
    code: int
    out: str
    err: str
    maxrss_mb: float


_CHILD = r"""
import os, resource, sys
limit = int(os.environ.get("STUDIO_TEST_AS_LIMIT", "0"))
if limit:
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
from studio.cli import main
try:
    code = main(sys.argv[1:])
finally:
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss over exec from the forked parent, so a
    # child of a big pytest process would report the parent's peak
    with open("/proc/self/status") as f:
        rss = next(int(line.split()[1]) for line in f if line.startswith("VmHWM:")) / 1024
    with open(os.environ["STUDIO_TEST_RSS_FILE"], "w") as f:
        f.write(str(rss))
sys.exit(code)
"""


def run_studio(args: list[str], tmp: Path, *, as_limit_gb: float = 6.0,
               timeout: float = 120) -> Run:
    """``studio ARGS`` in a child process, its address space capped (so a bug that asks
    for tens of GB fails instead of eating the machine), with its peak memory measured."""
    rss_file = tmp / f"rss-{os.getpid()}-{len(list(tmp.iterdir()))}.txt"
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", STUDIO_TEST_RSS_FILE=str(rss_file),
               STUDIO_TEST_AS_LIMIT=str(int(as_limit_gb * 2**30)), PYTHONFAULTHANDLER="")
    env.setdefault("PYTHONPATH", str(ROOT))  # this checkout (unless the caller chose one)
    proc = subprocess.run([sys.executable, "-c", _CHILD, *args], capture_output=True,
                          text=True, env=env, timeout=timeout, cwd=tmp)
    rss = float(rss_file.read_text()) if rss_file.exists() else -1.0
    return Run(proc.returncode, proc.stdout, proc.stderr, rss)


def assert_one_line_error(run: Run, *needles: str) -> None:
    """A clean refusal: exit status 1 or 2 (not a signal, not 139), one line on stderr
    naming what is wrong, no traceback."""
    assert run.code in (1, 2), (run.code, run.err[-2000:])
    lines = run.err.strip().splitlines()
    assert len(lines) == 1, run.err[-2000:]
    assert "Traceback" not in run.err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
