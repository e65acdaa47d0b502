"""bench/gpu_check.sh on a machine without CUDA: a clear message and exit code 3, at once."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "bench" / "gpu_check.sh"

pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")


def _run(out: Path, **env: str) -> tuple[subprocess.CompletedProcess, float]:
    t0 = time.monotonic()
    result = subprocess.run(["bash", str(SCRIPT), str(out)], capture_output=True, text=True,
                            timeout=120, env={**os.environ, "PYTHON": sys.executable, **env})
    return result, time.monotonic() - t0


def test_hidden_gpus_mean_no_cuda(tmp_path):
    result, seconds = _run(tmp_path / "out", CUDA_VISIBLE_DEVICES="")
    assert result.returncode == 3, result.stderr
    assert "no CUDA device" in result.stderr and seconds < 30
    assert not (tmp_path / "out").exists()  # nothing was run or written


def test_cpu_only_machine_exits_3_at_once(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU")
    env = {k: v for k, v in os.environ.items() if k != "CUDA_VISIBLE_DEVICES"}
    t0 = time.monotonic()
    result = subprocess.run(["bash", str(SCRIPT), str(tmp_path / "out")], capture_output=True,
                            text=True, timeout=120, env={**env, "PYTHON": sys.executable})
    assert result.returncode == 3, result.stderr
    assert result.stderr.strip().startswith("gpu_check: no CUDA device")
    assert time.monotonic() - t0 < 60
    assert result.stdout == "" and not (tmp_path / "out").exists()


def test_script_is_executable_and_registers_the_cuda_marker():
    assert os.access(SCRIPT, os.X_OK)
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert '"cuda: ' in text
