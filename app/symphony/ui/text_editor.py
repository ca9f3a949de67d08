"""Text editor tabs: a QPlainTextEdit with line numbers and Python/JSON/Markdown highlighting.

A :class:`TextEditorTab` edits either a workspace file (:class:`FileSource`) or an artifact of
the Pit (:class:`ArtifactSource`). Saving an artifact never overwrites it: it stores a new
version whose lineage names the old one (``inputs=(old_id,)``).
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from PySide6.QtCore import QRect, QRegularExpression, QSize, Qt, Signal
from PySide6.QtGui import (
    QColor,
    QFont,
    QFontDatabase,
    QPainter,
    QPaintEvent,
    QResizeEvent,
    QSyntaxHighlighter,
    QTextCharFormat,
    QTextDocument,
)
from PySide6.QtWidgets import QPlainTextEdit, QVBoxLayout, QWidget

if TYPE_CHECKING:
    from symphony.pit import Pit


def _fmt(color: str, *, bold: bool = False, italic: bool = False) -> QTextCharFormat:
    f = QTextCharFormat()
    f.setForeground(QColor(color))
    if bold:
        f.setFontWeight(QFont.Weight.Bold)
    f.setFontItalic(italic)
    return f


class _RuleHighlighter(QSyntaxHighlighter):
    """Single-line regular-expression rules, applied in order (later rules win)."""

    rules: list[tuple[str, QTextCharFormat]] = []

    def __init__(self, document: QTextDocument) -> None:
        super().__init__(document)
        self._compiled = [(QRegularExpression(p), f) for p, f in self.rules]

    def highlightBlock(self, text: str) -> None:  # noqa: N802 - Qt override
        for regex, fmt in self._compiled:
            it = regex.globalMatch(text)
            while it.hasNext():
                m = it.next()
                self.setFormat(m.capturedStart(), m.capturedLength(), fmt)


_PY_KEYWORDS = (
    "False None True and as assert async await break class continue def del elif else except "
    "finally for from global if import in is lambda nonlocal not or pass raise return try while "
    "with yield match case"
).split()


class PythonHighlighter(_RuleHighlighter):
    """Keywords, builtins-ish names, numbers, decorators, strings, comments; triple quotes span."""

    rules = [
        (r"\b(" + "|".join(_PY_KEYWORDS) + r")\b", _fmt("#a626a4", bold=True)),
        (r"\b(self|cls|print|len|range|str|int|float|dict|list|set|tuple)\b", _fmt("#0184bc")),
        (r"\b[0-9][0-9_]*(\.[0-9_]+)?([eE][+-]?[0-9]+)?\b", _fmt("#986801")),
        (r"^\s*@[\w.]+", _fmt("#c18401")),
        (r"(?<=\bdef\s)\w+|(?<=\bclass\s)\w+", _fmt("#4078f2", bold=True)),
        (r"[rbfuRBFU]{0,2}\"[^\"\\]*(\\.[^\"\\]*)*\"", _fmt("#50a14f")),
        (r"[rbfuRBFU]{0,2}'[^'\\]*(\\.[^'\\]*)*'", _fmt("#50a14f")),
        (r"#[^\n]*", _fmt("#8a8f98", italic=True)),
    ]
    _TRIPLE = (QRegularExpression('"""'), QRegularExpression("'''"))
    _STRING = _fmt("#50a14f")

    def highlightBlock(self, text: str) -> None:  # noqa: N802 - Qt override
        """Highlight one block of text."""
        super().highlightBlock(text)
        # Multi-line strings: block state 1/2 = inside a """ / ''' string at the block's end.
        self.setCurrentBlockState(0)
        start = 0
        state = self.previousBlockState()
        while True:
            if state in (1, 2):
                delim = self._TRIPLE[state - 1]
                m = delim.match(text, start)
                if not m.hasMatch():
                    self.setFormat(start, len(text) - start, self._STRING)
                    self.setCurrentBlockState(state)
                    return
                end = m.capturedEnd()
                self.setFormat(start, end - start, self._STRING)
                start = end
                state = 0
            found = [
                (m.capturedStart(), i + 1)
                for i, d in enumerate(self._TRIPLE)
                if (m := d.match(text, start)).hasMatch()
            ]
            if not found:
                return
            pos, state = min(found)
            self.setFormat(pos, 3, self._STRING)
            start = pos + 3


class JsonHighlighter(_RuleHighlighter):
    """Keys, strings, numbers, literals."""

    rules = [
        (r"-?\b[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?\b", _fmt("#986801")),
        (r"\b(true|false|null)\b", _fmt("#a626a4", bold=True)),
        (r"\"[^\"\\]*(\\.[^\"\\]*)*\"", _fmt("#50a14f")),
        (r"\"[^\"\\]*(\\.[^\"\\]*)*\"(?=\s*:)", _fmt("#4078f2")),
    ]


class MarkdownHighlighter(_RuleHighlighter):
    """Headings, emphasis, inline code, links, list markers, quotes; fenced blocks span lines."""

    rules = [
        (r"^\s*([-*+]|[0-9]+\.)\s", _fmt("#c18401", bold=True)),
        (r"^>.*", _fmt("#8a8f98", italic=True)),
        (r"\*\*[^*]+\*\*|__[^_]+__", _fmt("#383a42", bold=True)),
        (r"(?<![*\w])\*[^*\s][^*]*\*|(?<![_\w])_[^_\s][^_]*_", _fmt("#383a42", italic=True)),
        (r"\[[^\]]*\]\([^)]*\)", _fmt("#4078f2")),
        (r"`[^`]+`", _fmt("#e45649")),
        (r"^#{1,6}\s.*", _fmt("#4078f2", bold=True)),
    ]
    _FENCE = re.compile(r"^\s*(```|~~~)")
    _CODE = _fmt("#e45649")

    def highlightBlock(self, text: str) -> None:  # noqa: N802 - Qt override
        """Highlight one block of text."""
        inside = self.previousBlockState() == 1
        fence = bool(self._FENCE.match(text))
        if inside or fence:
            self.setFormat(0, len(text), self._CODE)
            self.setCurrentBlockState(0 if (inside and fence) else 1)
            return
        self.setCurrentBlockState(0)
        super().highlightBlock(text)


_HIGHLIGHTERS: dict[str, type[_RuleHighlighter]] = {
    "python": PythonHighlighter,
    "json": JsonHighlighter,
    "jsonl": JsonHighlighter,
    "markdown": MarkdownHighlighter,
}
_SUFFIX_LANGUAGE = {
    ".py": "python",
    ".pyi": "python",
    ".json": "json",
    ".jsonl": "jsonl",
    ".melody": "json",
    ".md": "markdown",
    ".markdown": "markdown",
}


def language_for(path_or_kind: str) -> str:
    """Return the highlighting language of a file name or an artifact kind (``text`` if none)."""
    if path_or_kind in _HIGHLIGHTERS:
        return path_or_kind
    return _SUFFIX_LANGUAGE.get(Path(path_or_kind).suffix.lower(), "text")


class _LineNumbers(QWidget):
    def __init__(self, editor: CodeEditor) -> None:
        super().__init__(editor)
        self._editor = editor

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt override
        return QSize(self._editor.line_number_width(), 0)

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 - Qt override
        self._editor.paint_line_numbers(event)


class CodeEditor(QPlainTextEdit):
    """A plain-text editor with a line-number gutter and a syntax highlighter."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._gutter = _LineNumbers(self)
        self._highlighter: QSyntaxHighlighter | None = None
        self.language = "text"
        font = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)
        self.setFont(font)
        self.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self.setTabStopDistance(self.fontMetrics().horizontalAdvance(" ") * 4)
        self.blockCountChanged.connect(self._update_margin)
        self.updateRequest.connect(self._scroll_gutter)
        self._update_margin()

    def set_language(self, language: str) -> None:
        """Attach the highlighter of ``language`` (``python``, ``json``, ``markdown``, ``text``)."""
        if self._highlighter is not None:
            self._highlighter.setDocument(None)
            self._highlighter.deleteLater()
            self._highlighter = None
        self.language = language if language in _HIGHLIGHTERS else "text"
        cls = _HIGHLIGHTERS.get(language)
        if cls is not None:
            self._highlighter = cls(self.document())

    @property
    def highlighter(self) -> QSyntaxHighlighter | None:
        """The attached highlighter, if the language has one."""
        return self._highlighter

    def line_number_width(self) -> int:
        """Width of the gutter for the current number of lines."""
        digits = max(3, len(str(self.blockCount())))
        return 10 + self.fontMetrics().horizontalAdvance("9") * digits

    def _update_margin(self, _count: int = 0) -> None:
        self.setViewportMargins(self.line_number_width(), 0, 0, 0)

    def _scroll_gutter(self, rect: QRect, dy: int) -> None:
        if dy:
            self._gutter.scroll(0, dy)
        else:
            self._gutter.update(0, rect.y(), self._gutter.width(), rect.height())

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802 - Qt override
        """Keep the gutter beside the text."""
        super().resizeEvent(event)
        cr = self.contentsRect()
        self._gutter.setGeometry(QRect(cr.left(), cr.top(), self.line_number_width(), cr.height()))

    def paint_line_numbers(self, event: QPaintEvent) -> None:
        """Paint the numbers of the visible lines into the gutter."""
        painter = QPainter(self._gutter)
        pal = self.palette()
        painter.fillRect(event.rect(), pal.color(pal.ColorRole.AlternateBase))
        painter.setPen(pal.color(pal.ColorRole.PlaceholderText))
        block = self.firstVisibleBlock()
        number = block.blockNumber()
        top = round(self.blockBoundingGeometry(block).translated(self.contentOffset()).top())
        bottom = top + round(self.blockBoundingRect(block).height())
        width = self._gutter.width() - 5
        height = self.fontMetrics().height()
        while block.isValid() and top <= event.rect().bottom():
            if block.isVisible() and bottom >= event.rect().top():
                painter.drawText(
                    0, top, width, height, Qt.AlignmentFlag.AlignRight, str(number + 1)
                )
            block = block.next()
            top = bottom
            bottom = top + round(self.blockBoundingRect(block).height())
            number += 1
        painter.end()


class EditorSource(Protocol):
    """Where a text tab's content comes from and goes to."""

    @property
    def title(self) -> str:
        """The tab title."""
        ...

    @property
    def language(self) -> str:
        """The highlighting language."""
        ...

    def load(self) -> str:
        """Read the content."""
        ...

    def store(self, text: str) -> None:
        """Write the content (raises ``OSError``/``ValueError`` naming the problem)."""
        ...


@dataclass(slots=True)
class FileSource:
    """A file on disk, written atomically (temp file + rename) so a failed save loses nothing."""

    path: Path

    @property
    def title(self) -> str:
        """The file name."""
        return self.path.name

    @property
    def language(self) -> str:
        """From the suffix."""
        return language_for(self.path.name)

    def load(self) -> str:
        """Read the file as UTF-8 (undecodable bytes shown as U+FFFD)."""
        return self.path.read_bytes().decode("utf-8", errors="replace")

    def store(self, text: str) -> None:
        """Replace the file's content atomically."""
        folder = self.path.parent
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=folder)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(text.encode("utf-8"))
            if self.path.exists():
                os.chmod(tmp, self.path.stat().st_mode & 0o7777)
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


class ArtifactSource:
    """An artifact version; :meth:`store` puts a new version derived from the one shown."""

    def __init__(self, pit: Pit, artifact_id: int) -> None:
        self.pit = pit
        self.artifact_id = artifact_id
        info = pit.artifacts.info(artifact_id)
        self.name = info.name
        self.kind = info.kind
        self.version = info.version

    @property
    def title(self) -> str:
        """``name v<version>``."""
        return f"{self.name} v{self.version}"

    @property
    def language(self) -> str:
        """From the artifact's kind."""
        return language_for(self.kind)

    def load(self) -> str:
        """Return the content as text (binary bytes shown as U+FFFD)."""
        return self.pit.artifacts.get(self.artifact_id, actor="ui").decode(
            "utf-8", errors="replace"
        )

    def store(self, text: str) -> None:
        """Store ``text`` as a new version of the same name, derived from the shown one."""
        new_id = self.pit.artifacts.put(
            self.name,
            text.encode("utf-8"),
            kind=self.kind,
            inputs=(self.artifact_id,),
            actor="ui",
        )
        self.artifact_id = new_id
        self.version = self.pit.artifacts.info(new_id).version


class TextEditorTab(QWidget):
    """A central tab editing one :class:`EditorSource`.

    Signals
    -------
    sig_modified_changed(bool)
    sig_title_changed(str)
    sig_saved(object)
        After a successful save; carries the source.
    """

    sig_modified_changed = Signal(bool)
    sig_title_changed = Signal(str)
    sig_saved = Signal(object)

    def __init__(self, source: FileSource | ArtifactSource, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.source = source
        self.editor = CodeEditor(self)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.editor)
        self.editor.set_language(source.language)
        self.editor.setPlainText(source.load())
        self.editor.document().setModified(False)
        self.editor.modificationChanged.connect(self.sig_modified_changed)

    @property
    def title(self) -> str:
        """The tab title (without the modified marker)."""
        return self.source.title

    def is_modified(self) -> bool:
        """Whether there are unsaved edits."""
        return self.editor.document().isModified()

    def move_to(self, path: Path) -> None:
        """Follow the file to ``path`` (it was renamed or moved; nothing is written)."""
        if isinstance(self.source, FileSource):
            self.source = FileSource(Path(path))
            self.editor.set_language(self.source.language)
            self.sig_title_changed.emit(self.title)

    def mark_unsaved(self) -> None:
        """Count the text as modified (its file is gone: closing should offer to save)."""
        self.editor.document().setModified(True)

    def save(self) -> None:
        """Write the text back; raises ``OSError`` or a Pit error naming the problem."""
        self.source.store(self.editor.toPlainText())
        self.editor.document().setModified(False)
        self.sig_title_changed.emit(self.title)
        self.sig_saved.emit(self.source)
