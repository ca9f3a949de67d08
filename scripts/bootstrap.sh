#!/usr/bin/env bash
# Set up everything a fresh Debian/Ubuntu machine lacks, then run a Makefile target.
#
#   bash scripts/bootstrap.sh run    # set up, then launch Symphony on its embedded defaults
#   bash scripts/bootstrap.sh test   # set up, then run the whole test suite
#
# System packages come from apt (as root, or through sudo); Python packages go into ./.venv;
# the Rust toolchain must already be installed (rustup), since no other source can provide it.
set -euo pipefail
cd "$(dirname "$0")/.."

# Build tools, Qt's runtime libraries for the offscreen/X11 platforms, Xvfb for screenshots,
# restic (a same-run benchmark baseline), cmake (llama-cpp-python's build).
# procps (pgrep) and binutils (objdump) for the bundle build and its smoke test.
APT_PACKAGES=(
  make gcc g++ pkg-config cmake git
  libgl1 libegl1 libxkbcommon0 libxkbcommon-x11-0 libfontconfig1 libdbus-1-3
  libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxcb-shape0 libxcb-xinerama0 libxcb-randr0
  libxcb-render-util0 libxcb-image0
  xvfb xauth restic
  procps binutils
)

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "bootstrap: installing system packages: ${missing[*]}"
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if ! command -v cargo >/dev/null 2>&1; then
  for d in "$HOME/.cargo/bin" /usr/local/cargo/bin; do
    if [ -x "$d/cargo" ]; then export PATH="$d:$PATH"; fi
  done
fi
if ! command -v cargo >/dev/null 2>&1; then
  echo "bootstrap: Rust is not installed. Install it with rustup (https://rustup.rs), then rerun." >&2
  exit 1
fi

PYTHON="${PYTHON:-python3}"
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  echo "bootstrap: Symphony needs Python >= 3.11; $PYTHON is $("$PYTHON" --version 2>&1)." >&2
  exit 1
fi

exec make PYTHON="$PYTHON" "${@:-help}"
