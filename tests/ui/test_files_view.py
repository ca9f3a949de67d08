"""The Files dock over the real File Explorer extension child."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtWidgets import QMessageBox
from pytestqt.qtbot import QtBot

from symphony.extension_host.discovery import bundled_dir
from symphony.extension_host.host import ExtensionHost
from symphony.ui.files_view import FilesView

WAIT_MS = 20_000


@pytest.fixture
def files(qtbot: QtBot, tmp_path: Path) -> Iterator[tuple[FilesView, Path]]:
    ws = tmp_path / "ws"
    (ws / "src").mkdir(parents=True)
    (ws / "src" / "main.py").write_text("print('hi')\n")
    (ws / "README.md").write_text("# ws\n")
    host = ExtensionHost([bundled_dir()])
    view = FilesView(host)
    qtbot.addWidget(view)
    yield view, ws
    host.shutdown(grace=5)


def _listed(qtbot: QtBot, view: FilesView, folder: str, expected: list[str]) -> None:
    qtbot.waitUntil(lambda: view.names(folder) == expected, timeout=WAIT_MS)


def test_lists_the_workspace_and_folders_on_expand(
    qtbot: QtBot, files: tuple[FilesView, Path]
) -> None:
    view, ws = files
    view.set_workspace(ws)
    _listed(qtbot, view, "", ["src", "README.md"])  # folders first
    assert not view.is_loaded("src")
    view.expand("src")
    _listed(qtbot, view, "src", ["main.py"])
    with qtbot.waitSignal(view.sig_open_file) as sig:
        view.open_path("src/main.py")
    assert sig.args == [str(ws / "src" / "main.py")]


def test_updates_live_on_changes_made_outside(qtbot: QtBot, files: tuple[FilesView, Path]) -> None:
    view, ws = files
    view.set_workspace(ws)
    _listed(qtbot, view, "", ["src", "README.md"])
    view.expand("src")
    _listed(qtbot, view, "src", ["main.py"])
    (ws / "notes.txt").write_text("x")
    (ws / "src" / "util.py").write_text("")
    _listed(qtbot, view, "", ["src", "notes.txt", "README.md"])
    _listed(qtbot, view, "src", ["main.py", "util.py"])
    (ws / "notes.txt").unlink()
    _listed(qtbot, view, "", ["src", "README.md"])


def test_new_rename_delete_through_the_extension(
    qtbot: QtBot, files: tuple[FilesView, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    view, ws = files
    view.set_workspace(ws)
    _listed(qtbot, view, "", ["src", "README.md"])
    fut = view.new_file("", "todo.md")
    assert fut is not None
    fut.wait(20)
    assert (ws / "todo.md").read_bytes() == b""
    fut = view.new_folder("src", "pkg")
    assert fut is not None
    fut.wait(20)
    assert (ws / "src" / "pkg").is_dir()
    with qtbot.waitSignal(view.sig_renamed, timeout=WAIT_MS) as renamed:
        fut = view.rename("todo.md", "done.md")
        assert fut is not None
    assert renamed.args == [str(ws / "todo.md"), str(ws / "done.md")]  # open tabs follow it
    assert (ws / "done.md").exists()
    assert not (ws / "todo.md").exists()
    _listed(qtbot, view, "", ["src", "done.md", "README.md"])
    # Delete asks first; "No" keeps the file.
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.No)
    assert view.delete("done.md", is_dir=False) is None
    assert (ws / "done.md").exists()
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Yes)
    with qtbot.waitSignal(view.sig_deleted, timeout=WAIT_MS) as deleted:
        fut = view.delete("src", is_dir=True)
        assert fut is not None
    assert deleted.args == [str(ws / "src")]
    assert not (ws / "src").exists()
    _listed(qtbot, view, "", ["done.md", "README.md"])


def test_errors_name_the_problem(qtbot: QtBot, files: tuple[FilesView, Path]) -> None:
    view, ws = files
    view.set_workspace(ws)
    _listed(qtbot, view, "", ["src", "README.md"])
    with qtbot.waitSignal(view.sig_error) as sig:
        view.new_file("", "../escape.txt")
    assert "must be a single file or folder name" in sig.args[0]
    with qtbot.waitSignal(view.sig_error, timeout=WAIT_MS) as sig:
        view.rename("README.md", "src")  # taken by a folder
    assert "README.md" in sig.args[0]
    assert (ws / "README.md").read_text() == "# ws\n"
    with pytest.raises(NotADirectoryError, match="is not a folder"):
        view.set_workspace(ws / "README.md")


def test_switching_workspace_restarts_the_listing(
    qtbot: QtBot, files: tuple[FilesView, Path], tmp_path: Path
) -> None:
    view, ws = files
    view.set_workspace(ws)
    _listed(qtbot, view, "", ["src", "README.md"])
    other = tmp_path / "other"
    other.mkdir()
    (other / "b.txt").write_text("b")
    view.set_workspace(other)
    _listed(qtbot, view, "", ["b.txt"])
    (other / "c.txt").write_text("c")
    _listed(qtbot, view, "", ["b.txt", "c.txt"])
