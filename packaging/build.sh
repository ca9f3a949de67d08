#!/usr/bin/env bash
# Build the Linux release: dist/Symphony/ (PyInstaller one-folder bundle, checked) and
# dist/Symphony-<version>-linux-x86_64.tar.gz (the bundle, install.sh, desktop entry, icons).
#
#   bash packaging/build.sh            (or: make bundle)
#
# PYTHON selects the interpreter whose environment is bundled (default: .venv/bin/python, which
# must have the `dev` extra, which has PyInstaller: make setup).
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-.venv/bin/python}"

fail() { echo "packaging/build.sh: $*" >&2; exit 1; }
"$PY" -c 'import PyInstaller' 2>/dev/null \
  || fail "PyInstaller is not installed for $PY: run \`$PY -m pip install -e '.[dev]'\` (or make setup)"

start=$SECONDS
# --clean: a stale analysis cache must never leak removed files into a release.
"$PY" -m PyInstaller --noconfirm --clean --log-level WARN \
  --distpath dist --workpath build installer.spec
built=$((SECONDS - start))

"$PY" packaging/check_bundle.py dist/Symphony || fail "the bundle in dist/Symphony is incomplete (see above)"

version="$("$PY" -c 'import sys; sys.path.insert(0, "packaging"); import bundle_config; print(bundle_config.metadata_version())')"
arch="$(uname -m)"
top="Symphony-$version-linux-$arch"
out="dist/$top.tar.gz"
compress=gzip
if command -v pigz >/dev/null 2>&1; then compress=pigz; fi
rm -f "$out"
# One top folder; `S`: symlink targets inside the bundle are not renamed.
tar --create --owner=0 --group=0 --use-compress-program="$compress" --file="$out" \
  --transform="s,^,$top/,S" \
  -C dist Symphony \
  -C "$PWD/packaging" install.sh symphony.desktop \
  -C "$PWD/packaging/icons" symphony.png symphony.svg
total=$((SECONDS - start))

echo "packaging/build.sh: dist/Symphony: $(du -sh dist/Symphony | cut -f1) ($(find dist/Symphony -type f | wc -l) files), PyInstaller ${built}s"
echo "packaging/build.sh: $out: $(du -sh "$out" | cut -f1), total ${total}s"
