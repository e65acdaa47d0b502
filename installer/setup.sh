#!/usr/bin/env bash
# Set up everything Digital Human Studio needs in ./.venv. Safe to run again.
#   installer/setup.sh          app + dev tools (tests, linters)
#   installer/setup.sh --gui    also the X11 libraries Qt needs for a real window
#   add --system-only to install only the system libraries
# System libraries come from apt-get when they are missing and we may use it (root or sudo).
set -euo pipefail
cd "$(dirname "$0")/.."

gui=0
system_only=0
for arg in "$@"; do
  case "$arg" in
    --gui) gui=1 ;;
    --system-only) system_only=1 ;;
    *) echo "setup: unknown option $arg" >&2; exit 2 ;;
  esac
done
PYTHON=${PYTHON:-python3}

have_lib() { ldconfig -p 2>/dev/null | grep -q "$1"; }

need=()
have_lib libportaudio.so.2 || need+=(libportaudio2)      # sounddevice
have_lib libEGL.so.1 || need+=(libegl1)                 # Qt, even offscreen
have_lib libfontconfig.so.1 || need+=(libfontconfig1)
have_lib libxkbcommon.so.0 || need+=(libxkbcommon0)
have_lib libglib-2.0.so.0 || need+=(libglib2.0-0)
have_lib libdbus-1.so.3 || need+=(libdbus-1-3)
if [ "$gui" = 1 ]; then
  for pkg in libxcb-cursor0:libxcb-cursor.so.0 libxkbcommon-x11-0:libxkbcommon-x11.so.0 \
             libxcb-icccm4:libxcb-icccm.so.4 libxcb-keysyms1:libxcb-keysyms.so.1 \
             libxcb-image0:libxcb-image.so.0 libxcb-render-util0:libxcb-render-util.so.0 \
             libxcb-shape0:libxcb-shape.so.0 libxcb-randr0:libxcb-randr.so.0 \
             libxcb-xinerama0:libxcb-xinerama.so.0 libgl1:libGL.so.1; do
    have_lib "${pkg#*:}" || need+=("${pkg%%:*}")
  done
fi
if [ ${#need[@]} -gt 0 ] && command -v apt-get >/dev/null 2>&1; then
  SUDO=""
  [ "$(id -u)" != 0 ] && command -v sudo >/dev/null 2>&1 && SUDO="sudo"
  if [ "$(id -u)" = 0 ] || [ -n "$SUDO" ]; then
    echo "setup: installing system libraries: ${need[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}"
  else
    echo "setup: please install these system packages: ${need[*]}" >&2
  fi
fi

[ "$system_only" = 1 ] && exit 0

if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
# The CPU build of torch keeps the install small; CUDA users can install their own first.
.venv/bin/python -c "import torch" 2>/dev/null || .venv/bin/pip install -q "torch==2.13.0"
.venv/bin/pip install -q -e ".[dev]"
echo "setup: done ($(.venv/bin/python -c 'import torch; print("torch", torch.__version__)'))"
