"""Versions and licences, for `studio info` and Help → About. No heavy imports."""

from __future__ import annotations

import platform
import sys
from importlib import metadata

from studio import __version__

COMPONENTS = [
    ("torch", "torch"),
    ("diffusers", "diffusers"),
    ("transformers", "transformers"),
    ("Qt for Python (PySide6)", "PySide6-Essentials"),
    ("pyqtgraph", "pyqtgraph"),
    ("numpy", "numpy"),
    ("safetensors", "safetensors"),
    ("piper-tts", "piper-tts"),
    ("onnxruntime", "onnxruntime"),
    ("eSpeak NG loader", "espeakng-loader"),
    ("pocketsphinx", "pocketsphinx"),
    ("dlib", "dlib-bin"),
    ("PyAV", "av"),
    ("sounddevice", "sounddevice"),
]

LICENCES = [
    ("Digital Human Studio", "GPL-3.0-or-later"),
    ("Qt / PySide6", "LGPL-3.0"),
    ("PyTorch", "BSD-3-Clause"),
    ("diffusers, transformers", "Apache-2.0"),
    ("piper-tts, eSpeak NG", "GPL-3.0-or-later"),
    ("en_US-joe-medium voice", "CC0 (per its model card)"),
    ("FFmpeg (PyAV), x264", "LGPL/GPL"),
    ("dlib, face-recognition-models", "Boost / CC0"),
    ("pocketsphinx", "BSD-2-Clause"),
]


def versions() -> dict[str, str]:
    out = {
        "studio": __version__,
        "python": sys.version.split()[0],
        "platform": f"{platform.system()} {platform.machine()}",
    }
    for label, dist in COMPONENTS:
        try:
            out[label] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[label] = "not installed"
    return out
