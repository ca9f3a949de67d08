"""The main window's text tabs: what open_path refuses or warns about, Save As that fails,
saving over a file another program changed."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtGui import QTextCursor
from PySide6.QtWidgets import QMessageBox

from symphony.ui.main_window import MainWindow
from symphony.ui.text_editor import FileSource, TextEditorTab


def _window(make_window: Callable[..., object]) -> MainWindow:
    w = make_window()
    assert isinstance(w, MainWindow)
    return w


def _open(w: MainWindow, path: Path) -> TextEditorTab:
    tab = w.open_path(path)
    assert isinstance(tab, TextEditorTab)
    return tab


def _append(tab: TextEditorTab, text: str) -> None:
    cursor = tab.editor.textCursor()
    cursor.movePosition(QTextCursor.MoveOperation.End)
    cursor.insertText(text)


def test_a_binary_file_is_not_opened_and_the_message_names_it(
    tmp_path: Path, make_window: Callable[..., object]
) -> None:
    w = _window(make_window)
    f = tmp_path / "bin.dat"
    f.write_bytes(bytes(range(256)))
    assert w.open_path(f) is None
    assert w.tabs.count() == 0
    assert any("bin.dat" in line and "binary" in line for line in w.log_view.lines())
    assert f.read_bytes() == bytes(range(256))


def test_a_file_that_is_not_utf8_is_reported_and_saved_in_its_encoding(
    tmp_path: Path, make_window: Callable[..., object]
) -> None:
    w = _window(make_window)
    f = tmp_path / "latin1.txt"
    f.write_bytes("caf\xe9\n".encode("latin-1"))
    tab = _open(w, f)
    assert any(
        "latin1.txt is not valid UTF-8: opened as Windows-1252" in line
        for line in w.log_view.lines()
    )
    _append(tab, "na\xefve\n")
    assert w.save_tab(tab)
    assert f.read_bytes() == "caf\xe9\nna\xefve\n".encode("latin-1")


def test_a_failed_save_as_leaves_the_tab_on_its_file(
    tmp_path: Path, make_window: Callable[..., object]
) -> None:
    w = _window(make_window)
    f = tmp_path / "target.txt"
    f.write_text("target\n")
    tab = _open(w, f)
    _append(tab, "more\n")
    assert not w.save_tab(tab, tmp_path / "no_such_dir" / "x.py")
    assert isinstance(tab.source, FileSource)
    assert tab.source.path == f.resolve()
    assert w.tabs.tabText(w.tabs.indexOf(tab)) == "● target.txt"
    assert tab.editor.language == "text"
    assert w.save_tab(tab)  # plain Save still writes the original file
    assert f.read_text() == "target\nmore\n"
    assert w.save_tab(tab, tmp_path / "copy.py")  # a successful one re-targets the tab
    assert tab.editor.language == "python"
    assert w.tabs.tabText(w.tabs.indexOf(tab)) == "copy.py"


def test_saving_over_another_programs_change_asks_first(
    tmp_path: Path, make_window: Callable[..., object], monkeypatch: pytest.MonkeyPatch
) -> None:
    w = _window(make_window)
    f = tmp_path / "ext.txt"
    f.write_text("original\n")
    tab = _open(w, f)
    _append(tab, "my edit\n")
    f.write_text("changed by another program\n")
    asked: list[str] = []
    answer = QMessageBox.StandardButton.Cancel

    def question(_parent: Any, title: str, text: str, *_a: Any) -> QMessageBox.StandardButton:
        asked.append(f"{title}: {text}")
        return answer

    monkeypatch.setattr(QMessageBox, "question", question)
    assert not w.save_tab(tab)
    assert len(asked) == 1
    assert "ext.txt was changed by another program" in asked[0]
    assert f.read_text() == "changed by another program\n"
    assert tab.is_modified()
    assert "changed by another program" in tab.banner_text()
    assert any("ext.txt was not saved" in line for line in w.log_view.lines())
    answer = QMessageBox.StandardButton.Save
    assert w.save_tab(tab)
    assert f.read_text() == "original\nmy edit\n"
    assert not tab.is_modified()
    assert len(asked) == 2
    # saving again asks nothing: the tab wrote that file itself
    _append(tab, "again\n")
    assert w.save_tab(tab)
    assert len(asked) == 2


def test_a_reload_after_another_programs_change_is_logged(
    tmp_path: Path, make_window: Callable[..., object]
) -> None:
    w = _window(make_window)
    f = tmp_path / "ext.txt"
    f.write_text("original\n")
    tab = _open(w, f)
    f.write_text("theirs\n")
    tab.check_disk()  # what the file-system watcher calls
    assert tab.editor.text() == "theirs\n"
    assert any("ext.txt was changed by another program: reloaded" in line
               for line in w.log_view.lines())  # fmt: skip


def test_save_as_onto_a_file_open_in_another_tab_is_refused(
    tmp_path: Path, make_window: Callable[..., object]
) -> None:
    from symphony.registry import default_registry
    from symphony.ui.board_tab import BoardTab

    w = _window(make_window)
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    a.write_text("a\n")
    b.write_text("b\n")
    tab_a, tab_b = _open(w, a), _open(w, b)
    _append(tab_b, "typed in b\n")
    # two tabs on one file would each overwrite the other's work at their next save
    assert not w.save_tab(tab_a, b)
    assert b.read_text() == "b\n"
    assert isinstance(tab_a.source, FileSource)
    assert tab_a.source.path == a.resolve()
    assert any("is open in another tab" in line for line in w.log_view.lines())
    assert w.save_tab(tab_b)
    assert b.read_text() == "b\ntyped in b\n"
    # boards alike
    w.set_registry(default_registry())
    first, second = w.new_melody(), w.new_melody()
    assert isinstance(first, BoardTab)
    assert isinstance(second, BoardTab)
    assert w.save_tab(first, tmp_path / "one.melody")
    before = (tmp_path / "one.melody").read_bytes()
    assert not w.save_tab(second, tmp_path / "one.melody")
    assert (tmp_path / "one.melody").read_bytes() == before
    assert second.path is None
