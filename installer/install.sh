#!/usr/bin/env bash
# Install Digital Human Studio for this user, like any desktop program (Linux, no root).
#
#   installer/install.sh              from this checkout, downloading what it needs
#   installer/install.sh --from DIR   offline, from a wheelhouse made by `installer/build
#                                     --wheelhouse` (a folder or a USB stick; that folder's
#                                     own install.sh uses it without --from)
#   --cpu / --cuda                    the torch build (default: CUDA when an NVIDIA driver
#                                     is present, else CPU)
#   --python PY                       the Python (3.11 or newer) for the app's environment
#   --force                           replace a `studio` launcher that another program made
#
# It makes the app's own environment in $XDG_DATA_HOME/digital-human-studio-app/env, a
# `studio` launcher in ~/.local/bin, a menu entry with the app icon, and the MIME type that
# opens .dhproj files in the studio. Running it again upgrades in place; settings, models
# and projects are never touched. uninstall.sh (copied beside the environment) removes
# exactly what this script made, listed in installed-files.txt there.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
APP=digital-human-studio
DATA_HOME=${XDG_DATA_HOME:-$HOME/.local/share}
BIN_DIR=${STUDIO_BIN_DIR:-$HOME/.local/bin}
APP_DIR=$DATA_HOME/$APP-app
ENV_DIR=$APP_DIR/env
MANIFEST=$APP_DIR/installed-files.txt
LAUNCHER=$BIN_DIR/studio
MARK="made by Digital Human Studio's install.sh"
CPU_INDEX=${STUDIO_TORCH_CPU_INDEX:-https://download.pytorch.org/whl/cpu}

say() { echo "install: $*"; }
die() { echo "install: error: $*" >&2; exit 1; }

from=""
torch_choice=auto
python=${PYTHON:-}
force=0
while [ $# -gt 0 ]; do
  case "$1" in
    --from) [ $# -ge 2 ] || die "--from needs a folder"; from=$2; shift ;;
    --from=*) from=${1#--from=} ;;
    --cpu) torch_choice=cpu ;;
    --cuda) torch_choice=cuda ;;
    --python) [ $# -ge 2 ] || die "--python needs a command"; python=$2; shift ;;
    --force) force=1 ;;
    -h|--help) sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
  shift
done

[ "$(uname -s)" = Linux ] || die "this installer is for Linux; on other systems use the PyInstaller bundle (installer/studio.spec)"
[ "$(id -u)" != 0 ] || [ -n "${STUDIO_ALLOW_ROOT:-}" ] \
  || die "run this as the user who will use the studio, not as root (it installs into your home folder)"

# --- what to install: a wheelhouse, or this checkout ---------------------------------------
source_dir=""
if [ -z "$from" ] && [ ! -f "$HERE/../pyproject.toml" ] \
   && compgen -G "$HERE/digital_human_studio-*.whl" >/dev/null; then
  from=$HERE  # install.sh copied into a wheelhouse by installer/build
fi
if [ -n "$from" ]; then
  [ -d "$from" ] || die "--from $from: no such folder"
  from=$(cd "$from" && pwd)
  compgen -G "$from/digital_human_studio-*.whl" >/dev/null \
    || die "$from holds no digital_human_studio-*.whl; make a wheelhouse with installer/build --wheelhouse"
  wh_python=$(sed -n 's/^python=//p' "$from/BUILD-INFO" 2>/dev/null || true)
  wh_torch=$(sed -n 's/^torch=//p' "$from/BUILD-INFO" 2>/dev/null || true)
  if [ -z "$wh_torch" ]; then
    if compgen -G "$from/torch-*+cpu-*.whl" >/dev/null; then wh_torch=cpu
    elif compgen -G "$from/torch-*.whl" >/dev/null; then wh_torch=cuda
    else die "$from holds no torch wheel"; fi
  fi
elif [ -f "$HERE/../pyproject.toml" ]; then
  source_dir=$(cd "$HERE/.." && pwd)
else
  die "nothing to install: run this from a checkout of the studio or pass --from WHEELHOUSE"
fi
templates=$HERE/share
[ -f "$templates/$APP.desktop.in" ] || die "missing $templates/$APP.desktop.in (copy the whole installer folder)"

# --- torch: CUDA or CPU ---------------------------------------------------------------------
has_nvidia() {
  { command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; } \
    || [ -e /proc/driver/nvidia/version ]
}
if [ "$torch_choice" = auto ]; then
  if has_nvidia; then detected=cuda; else detected=cpu; fi
  if [ -n "$from" ] && [ "$wh_torch" != "$detected" ]; then
    say "warning: this machine suits the $detected build of torch but $from holds the $wh_torch build; installing that (make a --$detected wheelhouse for the other)"
    torch_choice=$wh_torch
  else
    torch_choice=$detected
  fi
elif [ -n "$from" ] && [ "$wh_torch" != "$torch_choice" ]; then
  die "you asked for the $torch_choice build of torch but $from holds the $wh_torch build; make one with: installer/build --wheelhouse --$torch_choice"
fi

# --- Python ---------------------------------------------------------------------------------
py_ok() { "$1" -c 'import sys, venv, ensurepip; sys.exit(sys.version_info < (3, 11))' >/dev/null 2>&1; }
if [ -z "$python" ]; then
  candidates=(python3.13 python3.12 python3.11 python3)
  [ -n "${wh_python:-}" ] && candidates=("python$wh_python" "${candidates[@]}")
  for c in "${candidates[@]}"; do
    if command -v "$c" >/dev/null 2>&1 && py_ok "$c"; then python=$c; break; fi
  done
  [ -n "$python" ] || die "no Python 3.11 or newer with venv found; install one (Debian/Ubuntu: sudo apt-get install python3 python3-venv) or pass --python"
fi
py_ok "$python" || die "$python is not Python 3.11 or newer with the venv module (Debian/Ubuntu: sudo apt-get install python3-venv)"
py_version=$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
if [ -n "${wh_python:-}" ] && [ "$py_version" != "$wh_python" ]; then
  die "the wheelhouse was built for Python $wh_python but $python is $py_version; pass --python python$wh_python or rebuild the wheelhouse with this Python"
fi

# --- bookkeeping: every file and folder we make goes into the manifest ----------------------
made=()
keep_dirs=()
[ -f "$MANIFEST" ] && mapfile -t keep_dirs < <(grep '^dir ' "$MANIFEST" || true)
make_dir() {  # mkdir -p, remembering each folder it creates
  local d=$1 missing=()
  while [ ! -d "$d" ]; do missing=("$d" "${missing[@]}"); d=$(dirname "$d"); done
  for d in "${missing[@]}"; do mkdir "$d"; made+=("dir $d"); done
}
put_file() {  # put_file SRC DEST [MODE]
  make_dir "$(dirname "$2")"
  cp "$1" "$2.tmp.$$" && chmod "${3:-644}" "$2.tmp.$$" && mv -f "$2.tmp.$$" "$2"
  made+=("file $2")
}

if [ -e "$LAUNCHER" ] && ! grep -q "$MARK" "$LAUNCHER" 2>/dev/null && [ "$force" = 0 ]; then
  die "$LAUNCHER exists and was not made by this installer; move it away or pass --force"
fi

# --- the environment ------------------------------------------------------------------------
make_dir "$APP_DIR"
if [ -x "$ENV_DIR/bin/python" ] && ! "$ENV_DIR/bin/python" -c 'import sys' >/dev/null 2>&1; then
  say "the environment in $ENV_DIR is broken (its Python is gone); making it again"
  rm -rf "$ENV_DIR"
fi
if [ -x "$ENV_DIR/bin/python" ]; then
  say "upgrading the environment in $ENV_DIR (Python $("$ENV_DIR/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])'))"
else
  say "making the app's environment in $ENV_DIR (Python $py_version)"
  "$python" -m venv "$ENV_DIR"
fi
pip=("$ENV_DIR/bin/python" -m pip --disable-pip-version-check)
export PIP_NO_CACHE_DIR=1  # no copy of torch (GBs) left behind in ~/.cache/pip

if [ -n "$from" ]; then
  say "installing offline from $from (torch: $torch_choice build)"
  offline=(--no-index --find-links "$from" --only-binary :all:)
  "${pip[@]}" install -q "${offline[@]}" --upgrade digital-human-studio \
    || die "pip could not install from $from (is the wheelhouse for this machine and Python $py_version?)"
  "${pip[@]}" install -q "${offline[@]}" --force-reinstall --no-deps digital-human-studio
else
  "${pip[@]}" install -q --upgrade pip || say "warning: could not upgrade pip; carrying on"
  have_torch=$("$ENV_DIR/bin/python" -c 'import torch; print("cuda" if torch.version.cuda else "cpu")' 2>/dev/null || true)
  if [ "$have_torch" = "$torch_choice" ]; then
    say "torch ($torch_choice build) is already installed"
  elif [ "$torch_choice" = cpu ]; then
    say "installing the CPU build of torch from $CPU_INDEX"
    "${pip[@]}" install --upgrade --force-reinstall "torch>=2.4" --index-url "$CPU_INDEX" \
      || die "could not install the CPU build of torch from $CPU_INDEX (set STUDIO_TORCH_CPU_INDEX, or install offline with --from)"
  else
    say "installing the CUDA build of torch (a download of a few GB)"
    "${pip[@]}" install --upgrade --force-reinstall "torch>=2.4" \
      || die "could not install torch (no internet? install offline with --from)"
  fi
  say "building the studio from $source_dir"
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  "${pip[@]}" install -q "setuptools>=68" || die "could not install setuptools (needed to build the studio)"
  "$HERE/build" --out "$tmp" --python "$ENV_DIR/bin/python" >/dev/null \
    || die "could not build the studio from $source_dir"
  wheel=$(ls "$tmp"/digital_human_studio-*.whl)
  say "installing the studio and its packages"
  "${pip[@]}" install -q --upgrade "$wheel" || die "pip could not install the studio's packages"
  "${pip[@]}" install -q --force-reinstall --no-deps "$wheel"
fi
"$ENV_DIR/bin/studio" --version >/dev/null || die "the installed studio does not start; see the messages above"
made+=("tree $ENV_DIR")

# --- launcher, icon, menu entry, MIME type ----------------------------------------------------
tmpf=$(mktemp)
printf '#!/bin/sh\n# Digital Human Studio launcher, %s; %s removes it.\nexec "%s" "$@"\n' \
  "$MARK" "$APP_DIR/uninstall.sh" "$ENV_DIR/bin/studio" >"$tmpf"
put_file "$tmpf" "$LAUNCHER" 755

icon=$ENV_DIR/share/$APP-app/resources/icons/app.svg
[ -f "$icon" ] || icon=$HERE/../resources/icons/app.svg
[ -f "$icon" ] || die "the app icon is missing from the installed package ($icon)"
put_file "$icon" "$DATA_HOME/icons/hicolor/scalable/apps/$APP.svg"
put_file "$icon" "$DATA_HOME/icons/hicolor/scalable/mimetypes/application-x-digital-human-project.svg"

sed "s|@LAUNCHER@|$LAUNCHER|g" "$templates/$APP.desktop.in" >"$tmpf"
put_file "$tmpf" "$DATA_HOME/applications/$APP.desktop"
rm -f "$tmpf"
put_file "$templates/$APP-mime.xml" "$DATA_HOME/mime/packages/$APP.xml"
put_file "$HERE/uninstall.sh" "$APP_DIR/uninstall.sh" 755

if command -v update-mime-database >/dev/null 2>&1; then
  update-mime-database "$DATA_HOME/mime" >/dev/null 2>&1 || say "warning: update-mime-database failed"
fi
if command -v update-desktop-database >/dev/null 2>&1; then
  cache=$DATA_HOME/applications/mimeinfo.cache
  [ -e "$cache" ] || made+=("file $cache")
  update-desktop-database "$DATA_HOME/applications" >/dev/null 2>&1 || true
fi

{
  echo "# Digital Human Studio: what install.sh made (uninstall.sh removes exactly these)"
  printf '%s\n' "${keep_dirs[@]}" "${made[@]}" | grep -v '^$' | sort -u
} >"$MANIFEST.tmp" && mv -f "$MANIFEST.tmp" "$MANIFEST"

# --- report ---------------------------------------------------------------------------------
version=$("$ENV_DIR/bin/studio" --version)
torch_line=$("$ENV_DIR/bin/python" -c 'import torch; print(torch.__version__, "(CUDA %s)" % torch.version.cuda if torch.version.cuda else "(CPU)")' 2>/dev/null || echo "not importable")
cat <<EOF
install: done: $version, torch $torch_line
  launcher:    $LAUNCHER
  menu entry:  $DATA_HOME/applications/$APP.desktop (Digital Human Studio, with its icon)
  .dhproj:     opens in the studio (MIME type application/x-digital-human-project)
  environment: $ENV_DIR
  your settings, models and projects are kept where they are (run this again to upgrade)
  uninstall:   $APP_DIR/uninstall.sh
EOF
case ":$PATH:" in
  *":$BIN_DIR:"*) ;;
  *) echo "  note: $BIN_DIR is not on your PATH; the menu entry works, or add it to PATH to type \`studio\`" ;;
esac
