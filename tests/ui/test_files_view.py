"""The Files dock over the real File Explorer extension child."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from PySide6.QtWidgets import QMessageBox
from pytestqt.qtbot import QtBot

from symphony.extension_host.discovery import bundled_dir
from symphony.extension_host.host import ExtensionHost
from symphony.ui.files_view import _KIND, FilesView

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


def _sorted_like_the_tree(folders: list[str], files: list[str]) -> list[str]:
    return sorted(folders, key=str.lower) + sorted(files, key=str.lower)


def test_renaming_a_symlink_renames_the_link_not_its_target(
    qtbot: QtBot, files: tuple[FilesView, Path]
) -> None:
    view, ws = files
    (ws / "target.txt").write_text("target content\n")
    (ws / "link.txt").symlink_to("target.txt")
    (ws / "linkdir").symlink_to("src")
    view.set_workspace(ws)
    _listed(qtbot, view, "", ["linkdir", "src", "link.txt", "README.md", "target.txt"])
    for old, new in (("link.txt", "link2.txt"), ("linkdir", "linkdir2")):
        with qtbot.waitSignal(view.sig_renamed, timeout=WAIT_MS):
            assert view.rename(old, new) is not None
        assert (ws / new).is_symlink()
        assert not (ws / old).is_symlink()
        assert not (ws / old).exists()
    assert (ws / "link2.txt").read_text() == "target content\n"
    assert (ws / "target.txt").read_text() == "target content\n"
    assert not (ws / "target.txt").is_symlink()
    assert (ws / "src" / "main.py").read_text() == "print('hi')\n"
    assert not (ws / "src").is_symlink()
    _listed(qtbot, view, "", ["linkdir2", "src", "link2.txt", "README.md", "target.txt"])


def test_deleting_a_link_to_a_folder_says_link_and_keeps_the_folder(
    qtbot: QtBot, files: tuple[FilesView, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    view, ws = files
    (ws / "linkdir").symlink_to("src")
    view.set_workspace(ws)
    _listed(qtbot, view, "", ["linkdir", "src", "README.md"])
    row = view.item_for("linkdir")
    assert row is not None
    assert row.data(_KIND) == "dir"  # it lists and opens like the folder it points to
    assert "symbolic link to a folder" in row.toolTip()
    asked: list[str] = []

    def question(_parent: object, _title: str, text: str, *_a: object) -> object:
        asked.append(text)
        return QMessageBox.StandardButton.Yes

    monkeypatch.setattr(QMessageBox, "question", question)
    with qtbot.waitSignal(view.sig_deleted, timeout=WAIT_MS):
        assert view.delete("linkdir", is_dir=True) is not None
    assert asked == [
        "Delete the link 'linkdir' (what it points to is kept)? This cannot be undone."
    ]
    assert not (ws / "linkdir").is_symlink()
    assert (ws / "src" / "main.py").read_text() == "print('hi')\n"
    asked.clear()
    with qtbot.waitSignal(view.sig_deleted, timeout=WAIT_MS):
        assert view.delete("src", is_dir=True) is not None
    assert asked == ["Delete the folder 'src' and everything in it? This cannot be undone."]


def test_a_workspace_deleted_under_the_dock_says_so_instead_of_listing_old_files(
    qtbot: QtBot, files: tuple[FilesView, Path]
) -> None:
    import shutil

    view, ws = files
    view.set_workspace(ws)
    _listed(qtbot, view, "", ["src", "README.md"])
    shutil.rmtree(ws)
    view.refresh()
    qtbot.waitUntil(lambda: view.unavailable is not None, timeout=WAIT_MS)
    assert "no longer exists" in view.unavailable
    assert str(ws) in view.unavailable
    assert view.model.invisibleRootItem().rowCount() == 0
    assert view.tree.isHidden()


def test_a_big_folder_is_inserted_in_one_go_in_tree_order(
    qtbot: QtBot, files: tuple[FilesView, Path]
) -> None:
    view, ws = files
    big = ws / "big"
    big.mkdir()
    names = [f"f{i:04d}.txt" for i in range(1200)]  # more than two pages of the listing
    for name in names[::2]:
        (big / name).write_text("")
    for sub in ("Zeta", "alpha"):
        (big / sub).mkdir()
    view.set_workspace(ws)
    _listed(qtbot, view, "", ["big", "src", "README.md"])
    # Count the insertions under big/: one for the whole listing, not one per row.
    big_item = view.item_for("big")
    assert big_item is not None
    inserts: list[int] = []
    view.model.rowsInserted.connect(
        lambda parent, first, last: (
            inserts.append(last - first + 1)
            if view.model.itemFromIndex(parent) is big_item
            else None
        )
    )
    view.expand("big")
    expected = _sorted_like_the_tree(["Zeta", "alpha"], names[::2])
    _listed(qtbot, view, "big", expected)
    assert inserts == [len(expected)]
    # New names land between the rows already shown, still in order.
    for name in names[1::2]:
        (big / name).write_text("")
    (big / "Mid").mkdir()
    expected = _sorted_like_the_tree(["Mid", "Zeta", "alpha"], names)
    _listed(qtbot, view, "big", expected)


def test_rows_follow_a_change_of_size_or_kind(qtbot: QtBot, files: tuple[FilesView, Path]) -> None:
    view, ws = files
    view.set_workspace(ws)
    _listed(qtbot, view, "", ["src", "README.md"])
    readme = view.item_for("README.md")
    assert readme is not None
    assert readme.toolTip() == "README.md — 5 bytes"
    (ws / "README.md").write_text("# a longer readme\n")
    qtbot.waitUntil(lambda: readme.toolTip() == "README.md — 18 bytes", timeout=WAIT_MS)
    # Replaced by a dangling link: the row becomes a link that says why it cannot be opened.
    (ws / "README.md").unlink()
    (ws / "README.md").symlink_to("nowhere.md")
    qtbot.waitUntil(lambda: readme.data(_KIND) == "symlink", timeout=WAIT_MS)
    assert "symbolic link" in readme.toolTip()
    assert view.names("") == ["src", "README.md"]


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("new\nline", "a line break (U+000A)"),
        ("a\tb", "a tab (U+0009)"),
        ("cr\r", "a carriage return (U+000D)"),
        ("bell\x07", "a control character (U+0007)"),
        ("c1\x85", "a control character (U+0085)"),
        ("nul\x00", "a NUL character (U+0000)"),
        ("para\u2029", "a paragraph separator (U+2029)"),
    ],
)
def test_names_with_control_characters_are_refused(
    qtbot: QtBot, files: tuple[FilesView, Path], name: str, words: str
) -> None:
    view, ws = files
    view.set_workspace(ws)
    _listed(qtbot, view, "", ["src", "README.md"])
    attempts: list[Callable[[], object]] = [
        lambda: view.new_file("", name),
        lambda: view.new_folder("", name),
        lambda: view.rename("README.md", name),
    ]
    for attempt in attempts:
        with qtbot.waitSignal(view.sig_error) as sig:
            assert attempt() is None
        assert words in sig.args[0]
        assert "must not contain control characters" in sig.args[0]
    assert sorted(p.name for p in ws.iterdir()) == ["README.md", "src"]
    assert (ws / "README.md").read_text() == "# ws\n"


def test_activating_a_link_that_cannot_be_opened_says_why(
    qtbot: QtBot, files: tuple[FilesView, Path], tmp_path: Path
) -> None:
    view, ws = files
    (tmp_path / "outside.txt").write_text("secret")
    (ws / "dangling").symlink_to("nowhere.txt")
    (ws / "outside_link").symlink_to(tmp_path / "outside.txt")
    os.mkfifo(ws / "pipe")
    view.set_workspace(ws)
    _listed(qtbot, view, "", ["src", "dangling", "outside_link", "pipe", "README.md"])
    opened: list[str] = []
    view.sig_open_file.connect(opened.append)
    for name, words in (
        ("dangling", "dangling is a symbolic link whose target (nowhere.txt) does not exist"),
        ("outside_link", "leads outside the workspace"),
        ("pipe", "it is not a regular file"),
    ):
        item = view.item_for(name)
        assert item is not None
        with qtbot.waitSignal(view.sig_error, timeout=WAIT_MS) as sig:
            view.tree.doubleClicked.emit(item.index())
        assert sig.args[0].startswith(f"cannot open {name}: ")
        assert words in sig.args[0]
    assert opened == []
    # A link repaired since the listing opens.
    (ws / "nowhere.txt").write_text("here now")
    item = view.item_for("dangling")
    assert item is not None
    with qtbot.waitSignal(view.sig_open_file, timeout=WAIT_MS) as sig:
        view.tree.doubleClicked.emit(item.index())
    assert sig.args == [str(ws / "dangling")]
