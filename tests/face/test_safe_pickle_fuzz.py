"""Fuzzing the whitelisting unpickler: random opcode programs built from the whitelisted
globals and hostile arguments (huge and negative ints, object dtype strings, odd codecs,
storage bytes, containers, calls, ``BUILD``, ``SETITEMS``...), each loaded in a child
process as ``studio import`` would. A crash is the child's exit status, not the end of
pytest; every outcome must be a load or the studio's one-line ``FileFormatError``.

``STUDIO_FUZZ_EXAMPLES`` raises the number of programs (200 by default: well under a
minute on a slow 2-core machine)."""

from __future__ import annotations

import os
import select
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch
from hostile_files import g, i, the_73_byte_pickle, u
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from studio.face.importers.safe_pickle import ALLOWED_GLOBALS

WORKER = Path(__file__).with_name("pickle_fuzz_worker.py")
EXAMPLES = int(os.environ.get("STUDIO_FUZZ_EXAMPLES", "200"))
TIMEOUT_S = 60


class Worker:
    """The child process; restarted after a crash (hypothesis keeps calling while it
    shrinks a failing example)."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen | None = None

    def _start(self) -> subprocess.Popen:
        env = dict(os.environ, QT_QPA_PLATFORM="offscreen", PYTHONFAULTHANDLER="")
        root = str(Path(__file__).resolve().parents[2])
        env.setdefault("PYTHONPATH", root)
        proc = subprocess.Popen([sys.executable, str(WORKER)], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
        assert self._line(proc) == "ready"
        return proc

    def _line(self, proc: subprocess.Popen) -> str | None:
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], TIMEOUT_S)
        if not ready:
            return None
        line = proc.stdout.readline()
        return line.decode().strip() if line else ""

    def run(self, data: bytes) -> str:
        if self.proc is None or self.proc.poll() is not None:
            self.proc = self._start()
        proc = self.proc
        assert proc.stdin is not None
        try:
            proc.stdin.write(struct.pack("<I", len(data)) + data)
            proc.stdin.flush()
        except BrokenPipeError:
            pass
        line = self._line(proc)
        if line is None:
            proc.kill()
            proc.wait()
            self.proc = None
            return f"hang: no answer in {TIMEOUT_S} s"
        if not line:
            code = proc.wait()
            self.proc = None
            return f"crash: the child exited with status {code}"
        return line

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            self.proc.wait(timeout=30)


@pytest.fixture(scope="module")
def worker():
    w = Worker()
    yield w
    w.close()


# --------------------------------------------------------------------------- programs


def _storage_bytes() -> bytes:
    _, (inner,) = torch.arange(4.0).__reduce_ex__(2)[1][0].__reduce__()
    return inner


STORAGE = _storage_bytes()
NAMES = sorted(ALLOWED_GLOBALS) + [("numpy._core.numeric", "_frombuffer"), ("os", "system")]
STRINGS = ["|O", "O8", "O", "<f4", "f4", ">f8", "|b1", "V8", "i4,O", "(2,)O", "U4", "S3", "b",
           "latin1", "latin-1", "rot13", "zlib_codec", "hex", "utf-16", "class", "state",
           "type", "class_name", "module_src", "storage", "cpu", "_parameters", "_modules",
           "G_ema", "<", ">", "|", "", "x" * 300]
INTS = [0, 1, 2, 3, 4, -1, -2, 255, 256, 2**31 - 1, 2**31, 2**32, 2**40, 2**63 - 1, 2**63,
        -(2**63), 10**10, 100_000, 10**30]


def _bytes_op(data: bytes) -> bytes:
    if len(data) < 256:
        return b"C" + bytes([len(data)]) + data
    return b"B" + struct.pack("<I", len(data)) + data


def _global(name: tuple[str, str], stack_form: bool) -> bytes:
    if stack_form:
        return u(name[0]) + u(name[1]) + b"\x93"
    return g(*name)


@st.composite
def _mutated_storage(draw) -> bytes:
    buf = bytearray(STORAGE)
    for _ in range(draw(st.integers(0, 3))):
        buf[draw(st.integers(0, len(buf) - 1))] = draw(st.integers(0, 255))
    cut = draw(st.integers(len(buf) // 2, len(buf)))
    return bytes(buf[:cut])


LEAVES = st.one_of(
    st.one_of(st.sampled_from(INTS), st.integers(-(2**70), 2**70)).map(i),
    st.sampled_from(STRINGS).map(u),
    st.one_of(st.binary(max_size=40), st.just(b"A" * 8), _mutated_storage()).map(_bytes_op),
    st.sampled_from([b"N", b"\x88", b"\x89", b")", b"]", b"}", b"\x8f"]),
    st.builds(_global, st.sampled_from(NAMES), st.booleans()),
)
# Calls with arguments of the right shape, so the fuzzing gets past the type checks.
SMALL = st.one_of(st.sampled_from(INTS), st.integers(0, 16)).map(i)
SHAPE = st.lists(SMALL, max_size=3).map(lambda xs: b"(" + b"".join(xs) + b"t")
DTYPE_NAME = st.sampled_from(STRINGS[:12]).map(u)
RAW = st.one_of(st.binary(max_size=24), st.integers(1, 4).map(lambda n: b"A" * 8 * n)).map(_bytes_op)
DTYPE_STATE = st.tuples(st.sampled_from(["<", ">", "|", "="]), st.sampled_from([-1, 4, 8, 4096]),
                        st.sampled_from([0, 1, 63])).map(
    lambda t: b"(" + i(3) + u(t[0]) + b"NNN" + i(t[1]) + i(-1) + i(t[2]) + b"tb")
DTYPE = st.tuples(st.booleans(), DTYPE_NAME, st.one_of(st.just(b""), DTYPE_STATE)).map(
    lambda t: _global(("numpy", "dtype"), t[0]) + b"(" + t[1] + b"tR" + t[2])
STORAGE_CALL = st.tuples(st.booleans(), st.one_of(st.just(STORAGE), _mutated_storage())).map(
    lambda t: _global(("torch.storage", "_load_from_bytes"), t[0]) + b"(" + _bytes_op(t[1]) + b"tR")
TYPED = st.one_of(
    st.tuples(SHAPE, DTYPE_NAME, RAW).map(                                   # ndarray(...)
        lambda t: g("numpy", "ndarray") + b"(" + t[0] + t[1] + t[2] + b"tR"),
    st.tuples(SHAPE, st.one_of(DTYPE, DTYPE_NAME), st.booleans(), RAW).map(  # _reconstruct
        lambda t: g("numpy._core.multiarray", "_reconstruct") + b"(" + g("numpy", "ndarray")
        + b"(K\x00tC\x01btR" + b"(" + i(1) + t[0] + t[1] + (b"\x88" if t[2] else b"\x89")
        + t[3] + b"tb"),
    st.tuples(DTYPE, RAW).map(                                               # scalar(...)
        lambda t: g("numpy.core.multiarray", "scalar") + b"(" + t[0] + t[1] + b"tR"),
    st.tuples(STORAGE_CALL, SMALL, SHAPE, SHAPE).map(                        # a tensor
        lambda t: g("torch._utils", "_rebuild_tensor_v2") + b"(" + t[0] + t[1] + t[2] + t[3]
        + b"\x89tR"),
    DTYPE,
    STORAGE_CALL,
)
LEAVES = st.one_of(*[LEAVES] * 20, *[TYPED] * 9,
                   st.integers(0, 4).map(lambda n: b"h" + bytes([n])))  # BINGET (maybe missing)


def _extend(children):
    many = st.lists(children, max_size=4)
    call = st.tuples(st.builds(_global, st.sampled_from(NAMES), st.booleans()), many).map(
        lambda t: t[0] + b"(" + b"".join(t[1]) + b"tR")
    return st.one_of(
        call, call, call,
        many.map(lambda xs: b"(" + b"".join(xs) + b"t"),            # tuple
        many.map(lambda xs: b"(" + b"".join(xs) + b"l"),            # list
        many.map(lambda xs: b"(" + b"".join(xs) + b"\x91"),         # frozenset
        st.tuples(children, children).map(lambda t: t[0] + t[1] + b"b"),        # BUILD
        st.tuples(children, many).map(lambda t: t[0] + b"(" + b"".join(t[1]) + b"u"),  # SETITEMS
        st.tuples(children, many).map(lambda t: t[0] + b"(" + b"".join(t[1]) + b"e"),  # APPENDS
        st.tuples(children, many).map(lambda t: t[0] + b"(" + b"".join(t[1]) + b"\x90"),
        st.tuples(children, many).map(lambda t: t[0] + b"(" + b"".join(t[1]) + b"t\x81"),
        children.map(lambda x: x + b"\x94"),                        # MEMOIZE
        st.tuples(st.builds(_global, st.sampled_from(NAMES), st.booleans()), children).map(
            lambda t: t[0] + t[1] + b"\x85R"),                      # call with one argument
    )


EXPRESSIONS = st.recursive(LEAVES, _extend, max_leaves=24)
JUNK = st.sampled_from([b"(", b"0", b"1", b"2", b"t", b"R", b"b", b"s", b"a", b"\x85"])


@st.composite
def programs(draw) -> bytes:
    proto = draw(st.sampled_from([b"\x80\x02", b"\x80\x03", b"\x80\x04"]))
    parts = draw(st.lists(EXPRESSIONS, min_size=1, max_size=3))
    if draw(st.integers(0, 4)) == 0:  # now and then a stray opcode (often a damaged stack)
        parts.insert(draw(st.integers(0, len(parts))), draw(JUNK))
    return proto + b"".join(parts) + b"."


# A known crasher, pinned: an object array over attacker bytes, iterated by set().
CRASHER = the_73_byte_pickle()


@pytest.mark.slow
@settings(max_examples=EXAMPLES, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                 HealthCheck.function_scoped_fixture])
@example(data=CRASHER)
@example(data=b"\x80\x02" + g("numpy", "dtype") + b"(" + u("|O") + b"tR" + b".")
@given(data=programs())
def test_random_programs_never_crash_the_importer(worker: Worker, data: bytes) -> None:
    result = worker.run(data)
    assert result in ("ok", "refused"), f"{result} for {data!r}"


# --------------------------------------------------------------------------- torch files


def _rosinality_files() -> dict[str, bytes]:
    import io
    import warnings

    from hostile_files import torch_save
    from import_fixtures import ROS_STYLE, rosinality_generator_state

    ckpt = {"g_ema": rosinality_generator_state(seed=1, size=8),
            "latent_avg": torch.zeros(ROS_STYLE)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        legacy = torch_save(ckpt, legacy=True)
        zipped = torch_save(ckpt)
    with zipfile.ZipFile(io.BytesIO(zipped)) as zf:
        name = next(n for n in zf.namelist() if n.endswith("data.pkl"))
        data_pkl = zf.read(name)
    return {"legacy": legacy, "zip": zipped, "data.pkl": data_pkl, "data.pkl name": name.encode()}


_FILES: dict[str, bytes] = {}


def _files() -> dict[str, bytes]:
    if not _FILES:
        _FILES.update(_rosinality_files())
    return _FILES


def _rezip(data_pkl: bytes) -> bytes:
    """The zip checkpoint with its data.pkl replaced (CRCs right: torch must parse it)."""
    import io

    files = _files()
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(files["zip"])) as zin, zipfile.ZipFile(out, "w") as zout:
        for info in zin.infolist():
            body = data_pkl if info.filename == files["data.pkl name"].decode() else zin.read(info)
            zout.writestr(info, body)
    return out.getvalue()


@st.composite
def mutated_torch_files(draw) -> bytes:
    zipped = draw(st.booleans())
    base = bytearray(_files()["data.pkl" if zipped else "legacy"])
    # Legacy: mutate the pickles before the data (the first ~4 KB); zip: data.pkl itself.
    span = len(base) if zipped else min(len(base), 4096)
    for _ in range(draw(st.integers(1, 4))):
        base[draw(st.integers(0, span - 1))] = draw(
            st.one_of(st.integers(0, 255), st.sampled_from(list(b"KMJ\x8a(tR}]Qqhb.e"))))
    if draw(st.integers(0, 5)) == 0:
        base = base[: draw(st.integers(1, len(base)))]
    return _rezip(bytes(base)) if zipped else bytes(base)


@pytest.mark.slow
@settings(max_examples=max(EXAMPLES // 2, 10), deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                 HealthCheck.function_scoped_fixture])
@given(data=mutated_torch_files())
def test_mutated_torch_checkpoints_never_crash_the_importer(worker: Worker, data: bytes) -> None:
    result = worker.run(data)
    assert result in ("ok", "refused"), f"{result} for a file of {len(data)} bytes"
