#!/usr/bin/env bash
# Remove Digital Human Studio as install.sh installed it: exactly the files and folders in
# $XDG_DATA_HOME/digital-human-studio-app/installed-files.txt (the app's environment, the
# launcher, the menu entry, the icon, the MIME type). Your settings, your models and
# trained runs, and your projects stay; the end of the output says where they are.
#   uninstall.sh [--yes]     (without --yes it asks first when run in a terminal)
set -euo pipefail

APP=digital-human-studio
DATA_HOME=${XDG_DATA_HOME:-$HOME/.local/share}
APP_DIR=$DATA_HOME/$APP-app
MANIFEST=$APP_DIR/installed-files.txt

say() { echo "uninstall: $*"; }
die() { echo "uninstall: error: $*" >&2; exit 1; }

yes=0
for arg in "$@"; do
  case "$arg" in
    -y|--yes) yes=1 ;;
    -h|--help) sed -n '2,6p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option $arg" ;;
  esac
done

[ -f "$MANIFEST" ] || die "no installation found ($MANIFEST is missing); nothing removed"

# Where the user's own things are, asked of the app while it is still here.
user_dirs=""
if [ -x "$APP_DIR/env/bin/python" ]; then
  user_dirs=$("$APP_DIR/env/bin/python" - <<'EOF' 2>/dev/null || true
from studio.core import paths
print(f"  settings:           {paths.config_dir()}")
print(f"  your models, runs:  {paths.data_dir()}")
print(f"  recovery and logs:  {paths.state_dir()}")
EOF
)
fi
[ -n "$user_dirs" ] || user_dirs="  settings:           ${XDG_CONFIG_HOME:-$HOME/.config}/$APP
  your models, runs:  $DATA_HOME/$APP
  recovery and logs:  ${XDG_STATE_HOME:-$HOME/.local/state}/$APP"

if [ "$yes" = 0 ] && [ -t 0 ]; then
  printf 'Remove Digital Human Studio (your settings, models and projects stay)? [y/N] '
  read -r answer
  case "$answer" in y|Y|yes|YES) ;; *) say "nothing removed"; exit 0 ;; esac
fi

# Only paths inside the user's home, data or bin folders are ever removed.
inside() {
  case "$1" in
    "$HOME"/*|"$DATA_HOME"/*|"${STUDIO_BIN_DIR:-$HOME/.local/bin}"/*) return 0 ;;
    *) return 1 ;;
  esac
}

dirs=()
while read -r kind path; do
  case "$kind" in
    ''|'#'*) continue ;;
  esac
  inside "$path" || { say "skipping $path (outside your home folder)"; continue; }
  case "$kind" in
    file) if [ -e "$path" ] || [ -L "$path" ]; then rm -f "$path"; say "removed $path"; fi ;;
    tree) if [ -d "$path" ]; then rm -rf "$path"; say "removed $path"; fi ;;
    dir) dirs+=("$path") ;;
  esac
done <"$MANIFEST"
rm -f "$MANIFEST"

# Caches of the desktop: rebuild them without our entries.
if command -v update-mime-database >/dev/null 2>&1 && [ -d "$DATA_HOME/mime/packages" ]; then
  update-mime-database "$DATA_HOME/mime" >/dev/null 2>&1 || true
fi
if command -v update-desktop-database >/dev/null 2>&1 && [ -d "$DATA_HOME/applications" ]; then
  update-desktop-database "$DATA_HOME/applications" >/dev/null 2>&1 || true
fi

# Folders install.sh created, deepest first, if nothing else lives in them now. A MIME
# folder we created holds only the database built from its packages/: with no package left,
# all of it goes.
if [ ${#dirs[@]} -gt 0 ]; then
  mapfile -t dirs < <(printf '%s\n' "${dirs[@]}" | awk '{ print length($0) "\t" $0 }' | sort -rn | cut -f2-)
  for d in "${dirs[@]}"; do
    [ -d "$d" ] || continue
    if [ "$d" = "$DATA_HOME/mime" ] && ! compgen -G "$d/packages/*.xml" >/dev/null; then
      rm -rf "$d"
    else
      rmdir "$d" 2>/dev/null || true
    fi
  done
fi

echo "uninstall: Digital Human Studio is removed. Nothing of yours was touched:"
echo "$user_dirs"
echo "  projects (.dhproj):  wherever you saved them"
