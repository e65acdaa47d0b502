#!/usr/bin/env bash
# GPU check: on a machine with CUDA, run the tests marked `cuda` and the face-engine and
# training benchmarks on the GPU, in under 8 minutes, writing JSON to a folder.
#
#   bench/gpu_check.sh [OUT_DIR]        (default: bench-out/)
#
# Writes OUT_DIR/tests.json (the cuda tests: counts and failures), OUT_DIR/face_engine.json,
# OUT_DIR/train_face.json and OUT_DIR/summary.json (each step's status and seconds), plus
# each step's log. Exit codes: 0 all passed, 1 a step failed or ran out of time, 3 no CUDA
# device (said at once, nothing run). PYTHON picks the interpreter (default: the project's
# .venv, else python3).
set -u

cd "$(dirname "$0")/.." || exit 1
OUT="${1:-bench-out}"
if [ -z "${PYTHON:-}" ]; then
    if [ -x .venv/bin/python ]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi

no_cuda() {
    echo "gpu_check: no CUDA device${1:+ ($1)}; nothing to check on this machine" >&2
    exit 3
}

# Cheap checks first, so a CPU-only machine answers at once (no torch import).
if [ -n "${CUDA_VISIBLE_DEVICES+x}" ] && { [ -z "$CUDA_VISIBLE_DEVICES" ] || [ "$CUDA_VISIBLE_DEVICES" = "-1" ]; }; then
    no_cuda "CUDA_VISIBLE_DEVICES hides every GPU"
fi
if ! ls /dev/nvidia[0-9]* >/dev/null 2>&1 && ! command -v nvidia-smi >/dev/null 2>&1; then
    no_cuda "no NVIDIA driver or device found"
fi
if ! "$PYTHON" -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 3)" 2>/dev/null; then
    no_cuda "torch sees no CUDA GPU"
fi

mkdir -p "$OUT" || exit 1
export QT_QPA_PLATFORM=offscreen
START=$(date +%s)
STATUS=0
STEPS=()

# step NAME SECONDS COMMAND...: run with a time limit, log to OUT/NAME.log, record the result
step() {
    local name=$1 limit=$2
    shift 2
    local t0 rc
    t0=$(date +%s)
    echo "gpu_check: $name (at most ${limit} s)" >&2
    timeout --kill-after=10 "$limit" "$@" >"$OUT/$name.log" 2>&1
    rc=$?
    local status=ok
    if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then status=timeout; elif [ $rc -ne 0 ]; then status=failed; fi
    [ "$status" = ok ] || STATUS=1
    STEPS+=("{\"step\": \"$name\", \"status\": \"$status\", \"exit_code\": $rc, \"seconds\": $(( $(date +%s) - t0 ))}")
    echo "gpu_check: $name $status ($(( $(date +%s) - t0 )) s)" >&2
}

# 1. the tests marked cuda (about a minute)
step tests 140 "$PYTHON" -m pytest -q -m cuda -p no:cacheprovider --junitxml="$OUT/tests.xml" tests
"$PYTHON" - "$OUT/tests.xml" "$OUT/tests.json" <<'PY' || STATUS=1
import json, sys
import xml.etree.ElementTree as ET
from pathlib import Path

src, dst = Path(sys.argv[1]), Path(sys.argv[2])
out = {"passed": 0, "failed": 0, "skipped": 0, "failures": []}
if src.is_file():
    for case in ET.parse(src).getroot().iter("testcase"):
        name = f"{case.get('classname')}::{case.get('name')}"
        bad = case.find("failure") if case.find("failure") is not None else case.find("error")
        if bad is not None:
            out["failed"] += 1
            out["failures"].append({"test": name, "message": (bad.get("message") or "")[:500]})
        elif case.find("skipped") is not None:
            out["skipped"] += 1
        else:
            out["passed"] += 1
else:
    out["error"] = "pytest wrote no report (see tests.log)"
dst.write_text(json.dumps(out, indent=2) + "\n")
sys.exit(1 if out["failed"] or out["passed"] == 0 else 0)
PY

# 2. the face engine on the GPU: reference vs fp32 vs bf16 fast path, 256 and 1024 px
step face_engine 140 "$PYTHON" bench/face_engine.py --device cuda --out "$OUT/face_engine.json"

# 3. one face-GAN training step on the GPU: fp32 vs bf16 + channels-last, 128 and 256 px
step train_face 140 "$PYTHON" bench/train_face.py --device cuda --threads 0 --out "$OUT/train_face.json"

GPU_NAME=$("$PYTHON" -c "import torch; print(torch.cuda.get_device_name(0))" 2>/dev/null || echo unknown)
{
    echo "{"
    echo "  \"gpu\": \"$GPU_NAME\","
    echo "  \"seconds\": $(( $(date +%s) - START )),"
    echo "  \"ok\": $([ $STATUS -eq 0 ] && echo true || echo false),"
    echo "  \"steps\": ["
    for i in "${!STEPS[@]}"; do
        sep=","; [ "$i" -eq $(( ${#STEPS[@]} - 1 )) ] && sep=""
        echo "    ${STEPS[$i]}$sep"
    done
    echo "  ]"
    echo "}"
} >"$OUT/summary.json"
echo "gpu_check: results in $OUT/ ($( [ $STATUS -eq 0 ] && echo 'all passed' || echo 'something failed: see summary.json' ))" >&2
exit $STATUS
