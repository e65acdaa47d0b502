"""Child process of ``test_safe_pickle_fuzz``: imports the studio once, then, for each pickle
it is sent, inspects and converts it as ``studio import`` would and reports one line.

Protocol on stdin: a 4-byte little-endian length, then that many bytes; one result line per
pickle on stdout: ``ok``, ``refused`` (a one-line FileFormatError naming the file) or
``bad: ...`` (anything else: another exception, a message that does not name the file, a
refusal for lack of memory, peak memory past the limit). A crash shows up in the parent as
the child's exit status; memory is capped so a missing size check fails fast instead of
eating the machine."""

from __future__ import annotations

import os
import resource
import struct
import sys
import tempfile

AS_LIMIT = 6 << 30
PEAK_LIMIT_MB = 1500


def classify(path: str) -> str:
    from studio.core.errors import FileFormatError
    from studio.face.importers import convert_checkpoint, inspect_checkpoint

    for action in (inspect_checkpoint, convert_checkpoint):
        try:
            action(path)
        except FileFormatError as exc:
            msg = str(exc)
            if os.path.basename(path) not in msg or "\n" in msg:
                return f"bad: unclear message {msg[:300]!r}"
            if "more memory than" in msg:
                return f"bad: ran out of memory instead of checking a size: {msg[:300]!r}"
            return "refused"
        except Exception as exc:  # noqa: BLE001 - the point is to see every kind
            return f"bad: {type(exc).__name__}: {str(exc)[:300]!r}"
    return "ok"


def main() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (AS_LIMIT, AS_LIMIT))
    import torch

    torch.set_num_threads(1)
    import studio.face.importers  # noqa: F401 - import once, before the first example

    path = os.path.join(tempfile.mkdtemp(prefix="pickle-fuzz-"), "fuzz.pkl")
    inp, out = sys.stdin.buffer, sys.stdout
    out.write("ready\n")
    out.flush()
    while True:
        head = inp.read(4)
        if len(head) < 4:
            return
        (n,) = struct.unpack("<I", head)
        with open(path, "wb") as f:
            f.write(inp.read(n))
        result = classify(path)
        peak = _peak_mb()
        if result != "ok" and not result.startswith("bad") and peak > PEAK_LIMIT_MB:
            result = f"bad: peak memory {peak:.0f} MB"
        out.write(result.replace("\n", " ") + "\n")
        out.flush()


def _peak_mb() -> float:
    """This process's peak RSS (VmHWM: ru_maxrss would include the forked parent's)."""
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:")) / 1024


if __name__ == "__main__":
    main()
