#!/usr/bin/env bash
# Install Symphony AIDE for the current user (no root needed), from an extracted release:
#
#   ./install.sh                 # into ~/.local/share/symphony-aide, with a menu entry and icon
#   ./install.sh --prefix DIR    # into DIR/symphony-aide, DIR/applications, DIR/icons (DIR: a data home)
#   ./install.sh --uninstall     # remove what an install put there (your melodies and data stay)
#
# It copies the Symphony/ folder next to this script, writes the desktop entry
# (applications/symphony.desktop) and the icons (icons/hicolor/{256x256,scalable}/apps), and links
# ~/.local/bin/symphony to the executable when that is free. Paths may contain spaces.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PREFIX="${XDG_DATA_HOME:-$HOME/.local/share}"
BIN_DIR="$HOME/.local/bin"
ACTION=install
ICON_NAME=symphony-aide

usage() { sed -n '2,10s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"; }
die() { echo "install.sh: $*" >&2; exit 1; }

while (($#)); do
  case "$1" in
    --uninstall) ACTION=uninstall ;;
    --prefix)
      (($# >= 2)) || die "--prefix needs a folder"
      PREFIX="$2"
      shift
      ;;
    --prefix=*) PREFIX="${1#--prefix=}" ;;
    --bin-dir)
      (($# >= 2)) || die "--bin-dir needs a folder"
      BIN_DIR="$2"
      shift
      ;;
    -h | --help) usage; exit 0 ;;
    *) die "unknown option: $1 (see --help)" ;;
  esac
  shift
done
[ -n "$PREFIX" ] || die "the install prefix is empty"
case "$PREFIX" in /*) ;; *) PREFIX="$PWD/$PREFIX" ;; esac

TARGET="$PREFIX/symphony-aide"
APP="$TARGET/Symphony"
EXE="$APP/symphony"
DESKTOP="$PREFIX/applications/symphony.desktop"
ICON_PNG="$PREFIX/icons/hicolor/256x256/apps/$ICON_NAME.png"
ICON_SVG="$PREFIX/icons/hicolor/scalable/apps/$ICON_NAME.svg"
LINK="$BIN_DIR/symphony"

refresh_caches() {
  if command -v update-desktop-database >/dev/null 2>&1; then
    update-desktop-database -q "$PREFIX/applications" 2>/dev/null || true
  fi
  if command -v gtk-update-icon-cache >/dev/null 2>&1; then
    gtk-update-icon-cache -q -t "$PREFIX/icons/hicolor" 2>/dev/null || true
  fi
}

# An Exec= argument: quoted, with the characters the Desktop Entry spec reserves escaped inside
# the quotes (" ` $ \), then backslashes doubled again for the key file's string escaping, and
# % doubled for field codes.
desktop_exec_arg() {
  local s="$1"
  s="${s//\\/\\\\}"
  s="${s//\"/\\\"}"
  s="${s//\`/\\\`}"
  s="${s//\$/\\\$}"
  s="${s//\\/\\\\}"
  s="${s//%/%%}"
  printf '"%s"' "$s"
}

if [ "$ACTION" = uninstall ]; then
  if [ -L "$LINK" ] && [ "$(readlink "$LINK")" = "$EXE" ]; then rm -f "$LINK"; fi
  rm -f "$DESKTOP" "$ICON_PNG" "$ICON_SVG"
  if [ -d "$TARGET" ]; then
    [ -f "$TARGET/.symphony-install" ] || die "$TARGET was not made by install.sh; remove it yourself"
    rm -rf "$TARGET"
  fi
  refresh_caches
  echo "Symphony AIDE removed from $PREFIX (your melodies and ~/.local/share/symphony data stay)."
  exit 0
fi

[ -x "$HERE/Symphony/symphony" ] || die "no Symphony/symphony next to this script ($HERE): extract the whole archive first"
for f in symphony.desktop symphony.png symphony.svg; do
  [ -f "$HERE/$f" ] || die "$f is missing next to this script ($HERE)"
done
if [ -e "$TARGET" ] && [ ! -f "$TARGET/.symphony-install" ]; then
  die "$TARGET exists and was not made by install.sh; move it away first"
fi

mkdir -p "$TARGET" "$(dirname "$DESKTOP")" "$(dirname "$ICON_PNG")" "$(dirname "$ICON_SVG")"
touch "$TARGET/.symphony-install"
# Copy next to the old version, then swap: an interrupted install leaves the old one working.
rm -rf "$TARGET/Symphony.new" "$TARGET/Symphony.old"
cp -a "$HERE/Symphony" "$TARGET/Symphony.new"
if [ -d "$APP" ]; then mv "$APP" "$TARGET/Symphony.old"; fi
mv "$TARGET/Symphony.new" "$APP"
rm -rf "$TARGET/Symphony.old"

cp "$HERE/symphony.png" "$ICON_PNG"
cp "$HERE/symphony.svg" "$ICON_SVG"
exec_line="Exec=$(desktop_exec_arg "$EXE")"
tmp="$DESKTOP.tmp.$$"
while IFS= read -r line || [ -n "$line" ]; do
  case "$line" in
    Exec=@EXEC@*) printf '%s%s\n' "$exec_line" "${line#Exec=@EXEC@}" ;;
    *) printf '%s\n' "$line" ;;
  esac
done <"$HERE/symphony.desktop" >"$tmp"
mv "$tmp" "$DESKTOP"
chmod 644 "$DESKTOP"

linked=""
if [ -d "$BIN_DIR" ] && { [ ! -e "$LINK" ] || { [ -L "$LINK" ] && [ "$(readlink "$LINK")" = "$EXE" ]; }; }; then
  ln -sfn "$EXE" "$LINK"
  linked=" and $LINK"
fi
refresh_caches
echo "Symphony AIDE installed in $APP$linked; it is in your applications menu as \"Symphony AIDE\"."
