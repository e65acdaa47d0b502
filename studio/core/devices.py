"""Pick the compute device and precision: CUDA when present, else the CPU (bf16 with AMX).

torch is imported lazily so the core stays importable without loading it.
"""

from __future__ import annotations

import functools
import os
import platform
from dataclasses import dataclass
from typing import Any

DEVICE_CHOICES = ("auto", "cuda", "cpu")
PRECISION_CHOICES = ("auto", "fp32", "bf16", "fp16")


@functools.cache
def cpu_flags() -> frozenset[str]:
    """CPU feature flags from /proc/cpuinfo (empty where it does not exist)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def cpu_has_fast_bf16() -> bool:
    """True when bf16 matmuls beat fp32 on this CPU (AMX or AVX512-BF16)."""
    if os.environ.get("STUDIO_NO_BF16"):
        return False
    flags = cpu_flags()
    if "amx_bf16" in flags or "avx512_bf16" in flags:
        return True
    return platform.machine().lower() in ("arm64", "aarch64") and "bf16" in flags


@dataclass(frozen=True)
class DeviceChoice:
    device: str  # "cuda", "cuda:1", "cpu"
    precision: str  # "fp32", "bf16", "fp16"
    reason: str

    @property
    def torch_device(self) -> Any:
        import torch

        return torch.device(self.device)

    @property
    def dtype(self) -> Any:
        import torch

        return {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[
            self.precision
        ]

    @property
    def label(self) -> str:
        return f"{self.device.upper()} · {self.precision}"


def cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def select_device(device: str = "auto", precision: str = "auto") -> DeviceChoice:
    """Resolve the user's preference into a concrete device and precision."""
    if device not in DEVICE_CHOICES and not device.startswith("cuda:"):
        raise ValueError(f"unknown device {device!r}; choose one of {DEVICE_CHOICES}")
    if precision not in PRECISION_CHOICES:
        raise ValueError(f"unknown precision {precision!r}; choose one of {PRECISION_CHOICES}")
    reason = "chosen in preferences"
    if device == "auto":
        if cuda_available():
            device, reason = "cuda", "CUDA GPU found"
        else:
            device, reason = "cpu", "no CUDA GPU found"
    elif device.startswith("cuda") and not cuda_available():
        device, reason = "cpu", "CUDA requested but not available; using the CPU"
    if precision == "auto":
        if device.startswith("cuda"):
            import torch

            precision = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        else:
            precision = "bf16" if cpu_has_fast_bf16() else "fp32"
    elif precision == "fp16" and device == "cpu":
        precision = "bf16" if cpu_has_fast_bf16() else "fp32"
        reason += "; fp16 is slow on the CPU, using " + precision
    return DeviceChoice(device, precision, reason)
