"""Text editor tabs: highlighting per language, line numbers, atomic saves."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from symphony.ui.text_editor import (
    CodeEditor,
    FileSource,
    JsonHighlighter,
    MarkdownHighlighter,
    PythonHighlighter,
    TextEditorTab,
    language_for,
)


@pytest.mark.parametrize(
    ("name", "language"),
    [("a.py", "python"), ("a.json", "json"), ("x.melody", "json"), ("R.md", "markdown"),
     ("notes.txt", "text"), ("python", "python"), ("markdown", "markdown"), ("binary", "text")],
)  # fmt: skip
def test_language_for(name: str, language: str) -> None:
    assert language_for(name) == language


def _color_at(editor: CodeEditor, block: int, column: int) -> QColor | None:
    QApplication.processEvents()  # a highlighter that replaced another one applies lazily
    layout = editor.document().findBlockByNumber(block).layout()
    for r in layout.formats():
        if r.start <= column < r.start + r.length:
            return r.format.foreground().color()
    return None


def test_highlighters(qtbot: QtBot) -> None:
    ed = CodeEditor()
    qtbot.addWidget(ed)
    ed.set_language("python")
    assert isinstance(ed.highlighter, PythonHighlighter)
    ed.setPlainText('def f():\n    """doc\n    more"""\n    return 1  # note\n')
    assert _color_at(ed, 0, 0) == QColor("#a626a4")  # keyword
    assert _color_at(ed, 0, 4) == QColor("#4078f2")  # the defined name
    assert _color_at(ed, 2, 4) == QColor("#50a14f")  # inside the triple-quoted string
    assert _color_at(ed, 3, 15) == QColor("#8a8f98")  # comment
    ed.set_language("json")
    assert isinstance(ed.highlighter, JsonHighlighter)
    ed.setPlainText('{"key": true}')
    assert _color_at(ed, 0, 1) == QColor("#4078f2")  # key
    assert _color_at(ed, 0, 8) == QColor("#a626a4")  # literal
    ed.set_language("markdown")
    assert isinstance(ed.highlighter, MarkdownHighlighter)
    ed.setPlainText("# Head\n```\ncode\n```\ntext")
    assert _color_at(ed, 0, 2) == QColor("#4078f2")
    assert _color_at(ed, 2, 0) == QColor("#e45649")  # inside the fence
    assert _color_at(ed, 4, 0) is None
    ed.set_language("text")
    assert ed.highlighter is None


def test_line_number_gutter_grows(qtbot: QtBot) -> None:
    ed = CodeEditor()
    qtbot.addWidget(ed)
    small = ed.line_number_width()
    ed.setPlainText("\n" * 12345)
    assert ed.line_number_width() > small
    assert ed.viewportMargins().left() == ed.line_number_width()


def test_save_is_atomic_and_keeps_the_mode(qtbot: QtBot, tmp_path: Path) -> None:
    f = tmp_path / "run.py"
    f.write_text("print(1)\n")
    f.chmod(0o750)
    tab = TextEditorTab(FileSource(f))
    qtbot.addWidget(tab)
    tab.editor.selectAll()
    tab.editor.insertPlainText("print(2)\n")
    with qtbot.waitSignal(tab.sig_saved):
        tab.save()
    assert f.read_text() == "print(2)\n"
    assert f.stat().st_mode & 0o777 == 0o750
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.py"]


def test_undecodable_bytes_are_shown_not_refused(qtbot: QtBot, tmp_path: Path) -> None:
    f = tmp_path / "latin.txt"
    f.write_bytes(b"caf\xe9\n")
    tab = TextEditorTab(FileSource(f))
    qtbot.addWidget(tab)
    assert tab.editor.toPlainText() == "caf\ufffd\n"
