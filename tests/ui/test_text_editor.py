"""Text editor tabs: highlighting per language and theme, line numbers, atomic saves that keep
encoding, byte-order mark and line endings, binary and huge files refused, changes made by
other programs noticed."""

from __future__ import annotations

import codecs
import os
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtGui import QColor, QFont, QTextCursor, QTextFormat
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from symphony.ui.text_editor import (
    MAX_TEXT_BYTES,
    ArtifactSource,
    CodeEditor,
    FileChangedError,
    FileSource,
    JsonHighlighter,
    MarkdownHighlighter,
    NotTextError,
    PythonHighlighter,
    TextEditorTab,
    language_for,
)
from symphony.ui.theme import palette_for


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


def _tab(qtbot: QtBot, source: FileSource | ArtifactSource) -> TextEditorTab:
    tab = TextEditorTab(source)
    qtbot.addWidget(tab)
    return tab


def _append(tab: TextEditorTab, text: str) -> None:
    cursor = tab.editor.textCursor()
    cursor.movePosition(QTextCursor.MoveOperation.End)
    cursor.insertText(text)
    tab.editor.setTextCursor(cursor)


# (content on disk, what the editor shows, label, the bytes after appending "new\n")
ROUND_TRIPS = [
    (b"plain\n", "plain\n", "UTF-8 · LF", b"plain\nnew\n"),
    (b"line1\r\nline2\r\n", "line1\nline2\n", "UTF-8 · CRLF", b"line1\r\nline2\r\nnew\r\n"),
    (b"old mac\rline\r", "old mac\nline\n", "UTF-8 · CR", b"old mac\rline\rnew\r"),
    (b"\xef\xbb\xbfwith bom\n", "with bom\n", "UTF-8 with BOM · LF",
     b"\xef\xbb\xbfwith bom\nnew\n"),
    ("caf\xe9 na\xefve\n".encode("latin-1"), "café naïve\n", "Windows-1252 · LF",
     b"caf\xe9 na\xefve\nnew\n"),
    (b"\x93quoted\x94 \x80\r\n", "“quoted” €\n", "Windows-1252 · CRLF",
     b"\x93quoted\x94 \x80\r\nnew\r\n"),
    (b"\x81\x8d undefined in 1252\n", "\x81\x8d undefined in 1252\n", "Latin-1 (ISO-8859-1) · LF",
     b"\x81\x8d undefined in 1252\nnew\n"),
    (codecs.BOM_UTF16_LE + "hé\r\n".encode("utf-16-le"), "hé\n", "UTF-16 LE with BOM · CRLF",
     codecs.BOM_UTF16_LE + "hé\r\nnew\r\n".encode("utf-16-le")),
    # a second mark after the BOM is text (a zero-width no-break space); Qt drops a leading one
    (b"\xef\xbb\xbf\xef\xbb\xbftwice\n", "\ufefftwice\n", "UTF-8 with BOM · LF",
     b"\xef\xbb\xbf\xef\xbb\xbftwice\nnew\n"),
    # a no-break space and U+2028 are kept (QPlainTextEdit.toPlainText would change both)
    ("a\u00a0b\u2028c\n".encode(), "a\u00a0b\u2028c\n", "UTF-8 · LF",
     "a\u00a0b\u2028c\nnew\n".encode()),
]  # fmt: skip


@pytest.mark.parametrize(("data", "shown", "label", "edited"), ROUND_TRIPS)
def test_files_keep_encoding_bom_and_line_endings(
    qtbot: QtBot, tmp_path: Path, data: bytes, shown: str, label: str, edited: bytes
) -> None:
    f = tmp_path / "f.txt"
    f.write_bytes(data)
    tab = _tab(qtbot, FileSource(f))
    assert tab.editor.text() == shown
    assert tab.encoding.describe() == label
    assert tab.encoding_label.text() == label
    # Written back unedited, the bytes are the same (not merely skipped: the encoder is exact).
    assert tab.encoding.encode(tab.editor.text()) == data
    tab.save()
    assert f.read_bytes() == data
    _append(tab, "new\n")
    tab.save()
    assert f.read_bytes() == edited
    assert not tab.is_modified()


def test_a_file_that_is_not_utf8_says_so(qtbot: QtBot, tmp_path: Path) -> None:
    f = tmp_path / "latin1.txt"
    f.write_bytes("caf\xe9\n".encode("latin-1"))
    tab = _tab(qtbot, FileSource(f))
    assert "not valid UTF-8" in tab.banner_text()
    assert "Windows-1252" in tab.banner_text()
    utf8 = _tab(qtbot, FileSource(_write(tmp_path / "u.txt", "café\n".encode())))
    assert utf8.banner_text() == ""


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_mixed_line_endings_are_kept_until_edited(qtbot: QtBot, tmp_path: Path) -> None:
    data = b"a\r\nb\r\nc\n"
    f = _write(tmp_path / "mixed.txt", data)
    tab = _tab(qtbot, FileSource(f))
    assert tab.encoding.describe() == "UTF-8 · mixed line endings (new ones CRLF)"
    tab.save()
    assert f.read_bytes() == data  # unchanged text: nothing rewritten
    _append(tab, "d\n")
    tab.save()
    assert f.read_bytes() == b"a\r\nb\r\nc\r\nd\r\n"


def test_a_character_the_encoding_cannot_hold_is_refused_on_save(
    qtbot: QtBot, tmp_path: Path
) -> None:
    data = "caf\xe9\r\n".encode("cp1252")
    f = _write(tmp_path / "w.txt", data)
    tab = _tab(qtbot, FileSource(f))
    _append(tab, "x → y")
    with pytest.raises(ValueError, match=r"“→” \(U\+2192, line 2, column 3\).*Windows-1252"):
        tab.save()
    assert f.read_bytes() == data
    assert tab.is_modified()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w.txt"]


@pytest.mark.parametrize(
    ("data", "reason"),
    [(bytes(range(256)), "NUL bytes"), (b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR", "NUL bytes"),
     (codecs.BOM_UTF8 + b"\xff\xfe bad", "UTF-8")],
)  # fmt: skip
def test_binary_files_are_refused_and_left_alone(
    qtbot: QtBot, tmp_path: Path, data: bytes, reason: str
) -> None:
    f = _write(tmp_path / "bin.dat", data)
    with pytest.raises(NotTextError, match=reason):
        TextEditorTab(FileSource(f))
    assert f.read_bytes() == data


def test_files_above_the_limit_are_refused(tmp_path: Path) -> None:
    f = tmp_path / "big.log"
    with f.open("wb") as fh:
        fh.truncate(MAX_TEXT_BYTES + 1)  # sparse: costs no disk space
    with pytest.raises(NotTextError, match=r"too large .*16\.0 MiB.* up to 16 MiB"):
        FileSource(f).load()


def test_an_unmodified_tab_reloads_what_another_program_wrote(qtbot: QtBot, tmp_path: Path) -> None:
    f = _write(tmp_path / "ext.txt", b"one\ntwo\nthree\n")
    tab = _tab(qtbot, FileSource(f))
    tab.editor.moveCursor(QTextCursor.MoveOperation.Down)
    # another program replaces the file by rename, as most editors save
    tmp = _write(tmp_path / "ext.tmp", b"one\r\nTWO\r\nthree\r\n")
    with qtbot.waitSignal(tab.sig_disk_changed) as blocker:  # the file-system watcher
        tmp.replace(f)
    assert blocker.args == ["ext.txt was changed by another program: reloaded"]
    assert tab.editor.text() == "one\nTWO\nthree\n"
    assert tab.encoding.newline == "\r\n"
    assert not tab.is_modified()
    assert tab.editor.textCursor().blockNumber() == 1  # the cursor kept its line
    # the file is still watched after the rename replaced it
    with qtbot.waitSignal(tab.sig_disk_changed):
        f.write_bytes(b"again\n")
    assert tab.editor.text() == "again\n"
    # saving here (which replaces the file too) is not taken for another program's change
    _append(tab, "mine\n")
    with qtbot.assertNotEmitted(tab.sig_disk_changed):
        tab.save()
        tab.check_disk()
    assert f.read_bytes() == b"again\nmine\n"


def test_a_modified_tab_does_not_overwrite_another_programs_change(
    qtbot: QtBot, tmp_path: Path
) -> None:
    f = _write(tmp_path / "ext.txt", b"original\n")
    tab = _tab(qtbot, FileSource(f))
    _append(tab, "my edit\n")
    f.write_bytes(b"changed by another program\n")
    tab.check_disk()
    assert tab.editor.text() == "original\nmy edit\n"  # the edits are kept
    assert tab.is_modified()
    assert "changed by another program" in tab.banner_text()
    assert tab.reload_button.isVisibleTo(tab)
    with pytest.raises(FileChangedError, match="ext.txt was changed by another program"):
        tab.save()
    assert f.read_bytes() == b"changed by another program\n"
    assert tab.is_modified()
    tab.save(force=True)
    assert f.read_bytes() == b"original\nmy edit\n"
    assert tab.banner_text() == ""
    # the Reload button drops the edits and shows the file
    _append(tab, "more\n")
    f.write_bytes(b"theirs\n")
    tab.check_disk()
    tab.reload_button.click()
    assert tab.editor.text() == "theirs\n"
    assert not tab.is_modified()


def test_touching_the_file_is_not_a_change(qtbot: QtBot, tmp_path: Path) -> None:
    f = _write(tmp_path / "t.txt", b"same\n")
    tab = _tab(qtbot, FileSource(f))
    _append(tab, "edit\n")
    stat = f.stat()
    os.utime(f, ns=(stat.st_atime_ns, stat.st_mtime_ns + 5_000_000_000))
    tab.check_disk()
    assert tab.banner_text() == ""
    tab.save()  # no question: the content on disk is what was read
    assert f.read_bytes() == b"same\nedit\n"


def test_a_deleted_file_keeps_its_text_as_unsaved_until_it_is_back(
    qtbot: QtBot, tmp_path: Path
) -> None:
    f = _write(tmp_path / "d.txt", b"text\n")
    tab = _tab(qtbot, FileSource(f))
    f.unlink()
    tab.check_disk()
    assert tab.is_modified()
    assert "deleted" in tab.banner_text()
    f.write_bytes(b"text\n")  # back (deleted and written again by another program)
    tab.check_disk()
    assert not tab.is_modified()
    assert tab.banner_text() == ""
    f.unlink()
    tab.check_disk()
    tab.save()  # writes it again
    assert f.read_bytes() == b"text\n"
    assert not tab.is_modified()


def test_save_as_keeps_the_old_file_when_it_fails(qtbot: QtBot, tmp_path: Path) -> None:
    f = _write(tmp_path / "notes.txt", b"a\r\n")
    tab = _tab(qtbot, FileSource(f))
    _append(tab, "b\n")
    with pytest.raises(OSError, match="no_such_dir"):
        tab.save_as(tmp_path / "no_such_dir" / "x.md")
    assert isinstance(tab.source, FileSource)
    assert tab.source.path == f
    assert tab.title == "notes.txt"
    assert tab.is_modified()
    tab.save_as(tmp_path / "notes.md")
    assert tab.source.path == tmp_path / "notes.md"
    assert tab.editor.language == "markdown"
    assert (tmp_path / "notes.md").read_bytes() == b"a\r\nb\r\n"  # same line endings
    assert f.read_bytes() == b"a\r\n"


def test_a_renamed_file_keeps_its_encoding(qtbot: QtBot, tmp_path: Path) -> None:
    f = _write(tmp_path / "old.txt", b"\xe9\r\n")
    tab = _tab(qtbot, FileSource(f))
    f.rename(tmp_path / "new.txt")
    tab.check_disk()  # before the tab is told: looks deleted
    tab.move_to(tmp_path / "new.txt")
    assert not tab.is_modified()  # it was not deleted, only renamed
    _append(tab, "\xe9\n")
    tab.save()
    assert (tmp_path / "new.txt").read_bytes() == b"\xe9\r\n\xe9\r\n"
    assert not f.exists()


def test_artifacts_keep_their_encoding_and_binary_ones_are_refused(qtbot: QtBot, pit: Any) -> None:
    store = pit.artifacts
    crlf = store.put("notes", b"a\r\nb\r\n", kind="text")
    tab = _tab(qtbot, ArtifactSource(pit, crlf))
    assert tab.editor.text() == "a\nb\n"
    _append(tab, "c\n")
    tab.save()
    assert store.get(tab.source.artifact_id) == b"a\r\nb\r\nc\r\n"  # type: ignore[union-attr]
    blob = store.put("blob", bytes(range(256)), kind="text")
    with pytest.raises(NotTextError, match=r"artifact blob v1: .*NUL bytes"):
        TextEditorTab(ArtifactSource(pit, blob))
    marked = store.put("image", b"no NUL but marked", kind="binary")
    with pytest.raises(NotTextError, match=r"artifact image v1: .*binary"):
        TextEditorTab(ArtifactSource(pit, marked))


def _bold_in_text_colour(editor: CodeEditor, block: int, column: int) -> bool:
    QApplication.processEvents()
    layout = editor.document().findBlockByNumber(block).layout()
    for r in layout.formats():
        if r.start <= column < r.start + r.length:
            return r.format.fontWeight() == QFont.Weight.Bold and not r.format.hasProperty(
                QTextFormat.Property.ForegroundBrush
            )
    return False


def test_highlighting_follows_the_theme(qtbot: QtBot) -> None:
    ed = CodeEditor()
    qtbot.addWidget(ed)
    ed.set_language("markdown")
    ed.setPlainText("# Head\n**bold** and *it*\n```\ncode\n```\n")
    assert _color_at(ed, 0, 2) == QColor("#4078f2")
    # emphasis has no colour of its own: it is the theme's text colour, readable on both
    assert _bold_in_text_colour(ed, 1, 3)
    ed.setPalette(palette_for("dark"))
    assert ed.is_dark()
    assert _color_at(ed, 0, 2) == QColor("#61afef")
    assert _color_at(ed, 3, 0) == QColor("#e06c75")  # inside the fence
    assert _bold_in_text_colour(ed, 1, 3)
    ed.set_language("python")  # a new highlighter starts in the current theme
    ed.setPlainText('"""doc"""\n')
    assert _color_at(ed, 0, 4) == QColor("#98c379")
    ed.setPalette(palette_for("light"))
    assert _color_at(ed, 0, 4) == QColor("#50a14f")
