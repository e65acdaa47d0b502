"""Before the QApplication exists: can Qt's xcb platform plugin load?

Without its system libraries Qt aborts the whole process with "could not load the Qt
platform plugin xcb" and a list of plugins. We look for the same libraries first and, when
some are missing, say which ones and the command that installs them.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import sys
from collections.abc import Callable, Mapping

# The libraries PySide6's libqxcb.so and libQt6XcbQpa.so need (readelf -d, Qt 6.7 to 6.11)
# and the Debian/Ubuntu package of each.
XCB_LIBRARIES: dict[str, str] = {
    "libxcb.so.1": "libxcb1",
    "libxcb-cursor.so.0": "libxcb-cursor0",
    "libxcb-icccm.so.4": "libxcb-icccm4",
    "libxcb-image.so.0": "libxcb-image0",
    "libxcb-keysyms.so.1": "libxcb-keysyms1",
    "libxcb-randr.so.0": "libxcb-randr0",
    "libxcb-render.so.0": "libxcb-render0",
    "libxcb-render-util.so.0": "libxcb-render-util0",
    "libxcb-shape.so.0": "libxcb-shape0",
    "libxcb-shm.so.0": "libxcb-shm0",
    "libxcb-sync.so.1": "libxcb-sync1",
    "libxcb-util.so.1": "libxcb-util1",
    "libxcb-xfixes.so.0": "libxcb-xfixes0",
    "libxcb-xkb.so.1": "libxcb-xkb1",
    "libxkbcommon.so.0": "libxkbcommon0",
    "libxkbcommon-x11.so.0": "libxkbcommon-x11-0",
    "libX11.so.6": "libx11-6",
    "libX11-xcb.so.1": "libx11-xcb1",
    "libGL.so.1": "libgl1",
    "libEGL.so.1": "libegl1",
    "libfontconfig.so.1": "libfontconfig1",
    "libglib-2.0.so.0": "libglib2.0-0",
    "libdbus-1.so.3": "libdbus-1-3",
}


def _loads(soname: str) -> bool:
    try:
        ctypes.CDLL(soname)
    except OSError:
        return False
    return True


def uses_xcb(env: Mapping[str, str] | None = None, platform: str | None = None) -> bool:
    """Whether Qt will pick the xcb plugin: Linux, an X display, no other platform asked
    for (QT_QPA_PLATFORM) and not a Wayland session."""
    env = os.environ if env is None else env
    if (platform or sys.platform) != "linux":
        return False
    requested = env.get("QT_QPA_PLATFORM", "")
    if requested:
        return requested.split(":")[0].split(";")[0] == "xcb"
    if not env.get("DISPLAY"):
        return False
    return not (env.get("WAYLAND_DISPLAY") and env.get("XDG_SESSION_TYPE") == "wayland")


def missing_xcb_libraries(loads: Callable[[str], bool] | None = None) -> list[str]:
    loads = loads or _loads
    return [soname for soname in XCB_LIBRARIES if not loads(soname)]


def xcb_message(missing: list[str], has_apt: bool | None = None) -> str:
    if has_apt is None:
        has_apt = shutil.which("apt-get") is not None
    packages = sorted({XCB_LIBRARIES[s] for s in missing})
    lines = [
        "error: the studio window cannot open: Qt's X11 (xcb) platform plugin needs "
        f"system libraries that are missing: {', '.join(missing)}.",
    ]
    if has_apt:
        lines.append(f"Install them with:\n  sudo apt-get install {' '.join(packages)}")
    else:
        lines.append("Install the packages that provide them with your system's package "
                     f"manager (on Debian and Ubuntu: {' '.join(packages)}).")
    lines.append("Headless work needs none of them: `studio screenshot OUT.png`, or "
                 "QT_QPA_PLATFORM=offscreen.")
    return "\n".join(lines)


def xcb_problem(env: Mapping[str, str] | None = None,
                loads: Callable[[str], bool] | None = None) -> str | None:
    """The message to print instead of Qt's abort, or None when the window can open (or
    Qt will not use xcb)."""
    if not uses_xcb(env):
        return None
    missing = missing_xcb_libraries(loads)
    return xcb_message(missing) if missing else None
