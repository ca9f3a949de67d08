"""Text editor tabs: a QPlainTextEdit with line numbers and Python/JSON/Markdown highlighting.

A :class:`TextEditorTab` edits either a workspace file (:class:`FileSource`) or an artifact of
the Pit (:class:`ArtifactSource`). Saving an artifact never overwrites it: it stores a new
version whose lineage names the old one (``inputs=(old_id,)``).

Text is kept byte for byte: :func:`decode_text` remembers the encoding (UTF-8, a UTF BOM, or
Windows-1252/Latin-1 for text that is not UTF-8), the byte-order mark and the line ending, and
:meth:`TextEncoding.encode` writes them back, so saving an unedited file gives the same bytes.
Binary content (NUL bytes) and files above :data:`MAX_TEXT_BYTES` are refused with a message
instead of being opened, because editing them as text could only corrupt them. A file tab
notices changes other programs make to its file (:meth:`TextEditorTab.check_disk`).
"""

from __future__ import annotations

import codecs
import functools
import hashlib
import os
import re
import stat
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import shiboken6
from PySide6.QtCore import (
    QEvent,
    QFileSystemWatcher,
    QObject,
    QRect,
    QRegularExpression,
    QSize,
    Qt,
    Signal,
)
from PySide6.QtGui import (
    QColor,
    QFont,
    QFontDatabase,
    QPainter,
    QPaintEvent,
    QPalette,
    QResizeEvent,
    QSyntaxHighlighter,
    QTextCharFormat,
    QTextDocument,
    QTextFormat,
)
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

if TYPE_CHECKING:
    from symphony.pit import Pit


def _fmt(color: str | None, *, bold: bool = False, italic: bool = False) -> QTextCharFormat:
    """Make a format; ``color=None`` keeps the theme's text colour (readable on any theme)."""
    f = QTextCharFormat()
    if color is not None:
        f.setForeground(QColor(color))
    if bold:
        f.setFontWeight(QFont.Weight.Bold)
    f.setFontItalic(italic)
    return f


# The rules are written in One Light colours; on a dark background they become their One Dark
# counterparts, which keep the same meaning and are readable there.
_DARK_COLORS = {
    "#a626a4": "#c678dd",
    "#0184bc": "#56b6c2",
    "#986801": "#d19a66",
    "#c18401": "#e5c07b",
    "#4078f2": "#61afef",
    "#50a14f": "#98c379",
    "#8a8f98": "#7f848e",
    "#e45649": "#e06c75",
}


def _for_theme(fmt: QTextCharFormat, dark: bool) -> QTextCharFormat:
    if not dark or not fmt.hasProperty(QTextFormat.Property.ForegroundBrush):
        return fmt
    name = fmt.foreground().color().name()
    themed = QTextCharFormat(fmt)
    themed.setForeground(QColor(_DARK_COLORS.get(name, name)))
    return themed


class _RuleHighlighter(QSyntaxHighlighter):
    """Single-line regular-expression rules, applied in order (later rules win)."""

    rules: list[tuple[str, QTextCharFormat]] = []

    def __init__(self, document: QTextDocument, *, dark: bool = False) -> None:
        super().__init__(document)
        self.dark = dark
        self._compile()

    def _compile(self) -> None:
        self._compiled = [(QRegularExpression(p), _for_theme(f, self.dark)) for p, f in self.rules]

    def set_dark(self, dark: bool) -> None:
        """Use the colours for a dark (or light) background and highlight again."""
        if dark != self.dark:
            self.dark = dark
            self._compile()
            self.rehighlight()

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

    def _compile(self) -> None:
        super()._compile()
        self._string = _for_theme(self._STRING, self.dark)

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
                    self.setFormat(start, len(text) - start, self._string)
                    self.setCurrentBlockState(state)
                    return
                end = m.capturedEnd()
                self.setFormat(start, end - start, self._string)
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
            self.setFormat(pos, 3, self._string)
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
        # emphasis keeps the text colour: a fixed dark grey vanished on the dark theme
        (r"\*\*[^*]+\*\*|__[^_]+__", _fmt(None, bold=True)),
        (r"(?<![*\w])\*[^*\s][^*]*\*|(?<![_\w])_[^_\s][^_]*_", _fmt(None, italic=True)),
        (r"\[[^\]]*\]\([^)]*\)", _fmt("#4078f2")),
        (r"`[^`]+`", _fmt("#e45649")),
        (r"^#{1,6}\s.*", _fmt("#4078f2", bold=True)),
    ]
    _FENCE = re.compile(r"^\s*(```|~~~)")
    _CODE = _fmt("#e45649")

    def _compile(self) -> None:
        super()._compile()
        self._code = _for_theme(self._CODE, self.dark)

    def highlightBlock(self, text: str) -> None:  # noqa: N802 - Qt override
        """Highlight one block of text."""
        inside = self.previousBlockState() == 1
        fence = bool(self._FENCE.match(text))
        if inside or fence:
            self.setFormat(0, len(text), self._code)
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
            self._highlighter = cls(self.document(), dark=self.is_dark())

    def is_dark(self) -> bool:
        """Whether the editor's background is dark (the highlighter's colours follow it)."""
        return self.palette().color(QPalette.ColorRole.Base).lightness() < 128

    def changeEvent(self, event: QEvent) -> None:  # noqa: N802 - Qt override
        """Re-colour the highlighting when the theme (the palette) changes."""
        super().changeEvent(event)
        if event.type() == QEvent.Type.PaletteChange and isinstance(
            self._highlighter, _RuleHighlighter
        ):
            self._highlighter.set_dark(self.is_dark())

    def text(self) -> str:
        r"""Return the text exactly as typed, lines separated by ``\n``.

        Not ``toPlainText``: that also turns no-break spaces into spaces and U+2028 into line
        breaks, which would change bytes of a file nobody edited there.
        """
        return self.document().toRawText().replace("\u2029", "\n")

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


MAX_TEXT_BYTES = 16 * 1024 * 1024
"""Larger files are not opened: a 100 MB file froze the window ~3 s and took ~860 MB."""

_ENCODING_NAMES = {
    "utf-8": "UTF-8",
    "utf-16-le": "UTF-16 LE",
    "utf-16-be": "UTF-16 BE",
    "utf-32-le": "UTF-32 LE",
    "utf-32-be": "UTF-32 BE",
    "cp1252": "Windows-1252",
    "latin-1": "Latin-1 (ISO-8859-1)",
}
# Longest first: the UTF-32 LE mark starts with the UTF-16 LE one.
_BOMS = (
    ("utf-32-le", codecs.BOM_UTF32_LE),
    ("utf-32-be", codecs.BOM_UTF32_BE),
    ("utf-8", codecs.BOM_UTF8),
    ("utf-16-le", codecs.BOM_UTF16_LE),
    ("utf-16-be", codecs.BOM_UTF16_BE),
)
_NEWLINE_NAMES = {"\n": "LF", "\r\n": "CRLF", "\r": "CR"}


class NotTextError(ValueError):
    """The content is binary (or too large) and is not opened as editable text."""


class FileChangedError(OSError):
    """Another program changed the file since it was loaded; saving would overwrite that."""


@dataclass(frozen=True, slots=True)
class TextEncoding:
    r"""How text is stored as bytes: codec, byte-order mark and line ending.

    Parameters
    ----------
    encoding
        A Python codec name (``utf-8``, ``cp1252``, ``latin-1``, ``utf-16-le``, …).
    bom
        Whether the bytes start with the codec's byte-order mark.
    newline
        The line ending written for each line break (``\\n``, ``\\r\\n`` or ``\\r``).
    mixed_newlines
        The content had more than one kind of line ending; edited text is written with
        ``newline`` throughout.
    """

    encoding: str = "utf-8"
    bom: bool = False
    newline: str = "\n"
    mixed_newlines: bool = False

    @property
    def name(self) -> str:
        """The encoding's display name (``UTF-8``, ``Windows-1252``, …)."""
        return _ENCODING_NAMES.get(self.encoding, self.encoding)

    @property
    def is_utf(self) -> bool:
        """Whether this is a Unicode encoding (any text can be written in it)."""
        return self.encoding.startswith("utf")

    def describe(self) -> str:
        """Return a short label such as ``UTF-8 with BOM · CRLF``."""
        eol = _NEWLINE_NAMES.get(self.newline, repr(self.newline))
        if self.mixed_newlines:
            eol = f"mixed line endings (new ones {eol})"
        return f"{self.name}{' with BOM' if self.bom else ''} · {eol}"

    def encode(self, text: str) -> bytes:
        r"""Return ``text`` (lines separated by ``\n``) as bytes in this encoding.

        Raises
        ------
        ValueError
            A character cannot be written in this encoding; names it and its line and column.
        """
        out = text.replace("\n", self.newline) if self.newline != "\n" else text
        try:
            data = out.encode(self.encoding)
        except UnicodeEncodeError as e:
            before = out[: e.start].replace(self.newline, "\n")
            line = before.count("\n") + 1
            column = len(before) - (before.rfind("\n") + 1) + 1
            ch = out[e.start]
            raise ValueError(
                f"“{ch}” (U+{ord(ch):04X}, line {line}, column {column}) cannot be written in "
                f"{self.name}, the file's encoding; nothing was written (remove that character, "
                "or save a copy as UTF-8)"
            ) from None
        bom = dict(_BOMS)[self.encoding] if self.bom else b""
        return bom + data


def decode_text(data: bytes) -> tuple[str, TextEncoding]:
    r"""Decode file or artifact content as text, remembering how to write it back unchanged.

    A byte-order mark selects UTF-8/16/32; otherwise UTF-8 is tried, then Windows-1252, then
    Latin-1 (which maps every byte), so any text round-trips to the same bytes. Line endings
    are normalised to ``\\n`` for the editor and the dominant one is remembered.

    Raises
    ------
    NotTextError
        The content has NUL bytes (binary) or does not match its byte-order mark.
    """
    for encoding, mark in _BOMS:
        if data.startswith(mark):
            try:
                text = data[len(mark) :].decode(encoding)
            except UnicodeDecodeError:
                raise NotTextError(
                    f"not a text file: it starts like {_ENCODING_NAMES[encoding]} but is not "
                    "valid there; it is not opened, so it cannot be damaged by saving"
                ) from None
            fmt = TextEncoding(encoding, bom=True)
            break
    else:
        if b"\0" in data:
            raise NotTextError(
                "not a text file (it contains NUL bytes, so it is binary); it is not opened in "
                "the text editor, so it cannot be damaged by saving"
            )
        for encoding in ("utf-8", "cp1252", "latin-1"):
            try:
                text = data.decode(encoding)
            except UnicodeDecodeError:
                continue
            fmt = TextEncoding(encoding)
            break
    if "\0" in text:
        raise NotTextError("not a text file (it contains NUL characters, so it is binary)")
    crlf = text.count("\r\n")
    counts = {"\r\n": crlf, "\n": text.count("\n") - crlf, "\r": text.count("\r") - crlf}
    newline = max(counts, key=lambda k: (counts[k], k == "\n"))  # a tie or none: LF
    if counts[newline] == 0:
        newline = "\n"
    mixed = sum(1 for n in counts.values() if n) > 1
    if crlf or counts["\r"]:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text, replace(fmt, newline=newline, mixed_newlines=mixed)


def _check_size(size: int) -> None:
    if size > MAX_TEXT_BYTES:
        raise NotTextError(
            f"too large for the text editor ({size / 2**20:.1f} MiB; it opens files up to "
            f"{MAX_TEXT_BYTES // 2**20} MiB): open it in another program"
        )


def _digest(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=16).digest()


def _digest_text(text: str) -> bytes:
    return _digest(text.encode("utf-8", "surrogatepass"))


_Stamp = tuple[int, int, int]


def _stamp(st: os.stat_result) -> _Stamp:
    return (st.st_mtime_ns, st.st_size, st.st_ino)


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
    """A file on disk, written atomically (temp file + rename) so a failed save loses nothing.

    It is written back in the encoding, byte-order mark and line ending it was read with, and
    remembers what it last read or wrote (time stamp and hash), so that :meth:`store` refuses
    to overwrite a change another program made since (:class:`FileChangedError`).

    Parameters
    ----------
    path
        The file.
    encoding
        How to write it (set by :meth:`load`; UTF-8 and LF for a new file).
    """

    path: Path
    encoding: TextEncoding = TextEncoding()
    stamp: _Stamp | None = None
    """``(mtime_ns, size, inode)`` when last read or written; ``None``: not yet."""
    digest: bytes | None = None
    """Hash of the bytes last read or written."""
    text_digest: bytes | None = None
    """Hash of the text last read or written (unchanged text needs no write)."""
    _differs: _Stamp | None = field(default=None, init=False, repr=False)
    """A time stamp already found to hold other content (not hashed again per event)."""

    @property
    def title(self) -> str:
        """The file name."""
        return self.path.name

    @property
    def language(self) -> str:
        """From the suffix."""
        return language_for(self.path.name)

    def load(self) -> str:
        """Read the file, detecting its encoding and line ending.

        Raises
        ------
        NotTextError
            The file is binary or larger than :data:`MAX_TEXT_BYTES`.
        OSError
            It cannot be read.
        """
        with self.path.open("rb") as f:
            st = os.fstat(f.fileno())
            _check_size(st.st_size)
            data = f.read()
        text, self.encoding = decode_text(data)
        self.stamp, self.digest, self.text_digest = _stamp(st), _digest(data), _digest_text(text)
        return text

    def disk_state(self) -> str:
        """Compare the file on disk with what was last read or written.

        Returns
        -------
        str
            ``same`` (also after a mere touch, or if nothing was read yet), ``changed``
            (different content), ``missing`` (deleted) or ``other`` (no longer a regular
            file: saving will say why it cannot write).
        """
        try:
            st = os.stat(self.path)
        except (FileNotFoundError, NotADirectoryError):
            return "missing"
        if not stat.S_ISREG(st.st_mode):
            return "other"
        now = _stamp(st)
        if self.stamp is None or now == self.stamp:
            return "same"
        if now != self._differs and st.st_size <= MAX_TEXT_BYTES:
            try:
                same = _digest(self.path.read_bytes()) == self.digest
            except OSError:
                same = False
            if same:  # touched, or rewritten with the same bytes
                self.stamp = now
                return "same"
        self._differs = now
        return "changed"

    def store(self, text: str, *, force: bool = False) -> None:
        r"""Replace the file's content atomically, in its encoding and line ending.

        Unchanged text whose file is unchanged on disk is not written again, so the file keeps
        its exact bytes (even mixed line endings).

        Parameters
        ----------
        text
            Lines separated by ``\\n``.
        force
            Write even if another program changed the file since it was read.

        Raises
        ------
        FileChangedError
            The file changed on disk since it was read (only without ``force``).
        ValueError
            ``text`` has a character its encoding cannot hold (nothing is written).
        OSError
            It cannot be written (the file is left as it was).
        """
        state = self.disk_state()
        if state == "changed" and not force:
            raise FileChangedError(
                f"{self.path.name} was changed by another program since it was opened here"
            )
        if state == "same" and self.stamp is not None and _digest_text(text) == self.text_digest:
            return
        data = self.encoding.encode(text)
        folder = self.path.parent
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=folder)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            if self.path.exists():
                os.chmod(tmp, self.path.stat().st_mode & 0o7777)
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        self.stamp, self.digest, self.text_digest = (
            _stamp(os.stat(self.path)),
            _digest(data),
            _digest_text(text),
        )

    def moved(self, path: Path) -> FileSource:
        """Return the same file under its new name (it was renamed: nothing on disk changed)."""
        return replace(self, path=path)

    def copy_to(self, path: Path) -> FileSource:
        """Return a new file ``path`` written in the same encoding and line ending (Save As)."""
        return FileSource(path, self.encoding)


class ArtifactSource:
    """An artifact version; :meth:`store` puts a new version derived from the one shown."""

    def __init__(self, pit: Pit, artifact_id: int) -> None:
        self.pit = pit
        self.artifact_id = artifact_id
        info = pit.artifacts.info(artifact_id)
        self.name = info.name
        self.kind = info.kind
        self.version = info.version
        self.encoding = TextEncoding()

    @property
    def title(self) -> str:
        """``name v<version>``."""
        return f"{self.name} v{self.version}"

    @property
    def language(self) -> str:
        """From the artifact's kind."""
        return language_for(self.kind)

    def load(self) -> str:
        """Return the content as text, remembering its encoding and line ending.

        Raises
        ------
        NotTextError
            The artifact is binary or too large to edit; the message names it.
        """
        data = self.pit.artifacts.get(self.artifact_id, actor="ui")
        try:
            if self.kind == "binary":
                raise NotTextError("not text (its kind is binary)")
            _check_size(len(data))
            text, self.encoding = decode_text(data)
        except NotTextError as e:
            raise NotTextError(f"artifact {self.title}: {e}") from None
        return text

    def store(self, text: str) -> None:
        """Store ``text`` as a new version of the same name, derived from the shown one."""
        new_id = self.pit.artifacts.put(
            self.name,
            self.encoding.encode(text),
            kind=self.kind,
            inputs=(self.artifact_id,),
            actor="ui",
        )
        self.artifact_id = new_id
        self.version = self.pit.artifacts.info(new_id).version


class _DiskWatch(QObject):
    """One file-system watcher for every file tab (each watcher costs an inotify instance).

    A tab's folder is watched too: a file replaced by rename (how most programs save) or
    deleted and written again is no longer the watched file, and only its folder tells.
    """

    def __init__(self) -> None:
        super().__init__()
        self._watcher = QFileSystemWatcher(self)
        self._tabs: dict[int, TextEditorTab] = {}
        self._watcher.fileChanged.connect(self._changed)
        self._watcher.directoryChanged.connect(self._changed)

    def watch(self, tab: TextEditorTab) -> None:
        """Watch ``tab``'s file (again, after it was renamed or written)."""
        key = id(tab)
        if key not in self._tabs:
            tab.destroyed.connect(lambda *_: self.unwatch(key))
        self._tabs[key] = tab
        self._sync(renew=_tab_file(tab))

    def unwatch(self, key: int) -> None:
        """Stop watching the tab ``id(tab) == key``."""
        # at exit Qt may delete the watcher before the last tabs: nothing left to unwatch then
        if self._tabs.pop(key, None) is not None and shiboken6.isValid(self._watcher):
            self._sync()

    def _sync(self, renew: Path | None = None) -> None:
        files = {str(p) for t in self._tabs.values() if (p := _tab_file(t)) is not None}
        wanted = files | {str(Path(f).parent) for f in files}
        watched = set(self._watcher.files()) | set(self._watcher.directories())
        # a file we just replaced is listed, but its watch is on the old inode: renew it
        drop = (watched - wanted) | ({str(renew)} & watched if renew is not None else set())
        if drop:
            self._watcher.removePaths(sorted(drop))
        add = [p for p in sorted(wanted - (watched - drop)) if os.path.exists(p)]
        if add:
            self._watcher.addPaths(add)

    def _changed(self, path: str) -> None:
        self._sync()
        for tab in list(self._tabs.values()):
            file = _tab_file(tab)
            if file is not None and path in (str(file), str(file.parent)):
                tab.check_disk()


def _tab_file(tab: TextEditorTab) -> Path | None:
    return tab.source.path if isinstance(tab.source, FileSource) else None


@functools.cache
def _disk_watch() -> _DiskWatch:
    return _DiskWatch()


class TextEditorTab(QWidget):
    """A central tab editing one :class:`EditorSource`.

    A banner above the text says what needs the user's attention (an encoding that is not
    UTF-8, a change another program made to the file); a label below shows the encoding and
    line ending the text is saved in.

    Signals
    -------
    sig_modified_changed(bool)
    sig_title_changed(str)
    sig_saved(object)
        After a successful save; carries the source.
    sig_disk_changed(str)
        Another program changed the file: reloaded, or kept (with edits) — the message says.
    """

    sig_modified_changed = Signal(bool)
    sig_title_changed = Signal(str)
    sig_saved = Signal(object)
    sig_disk_changed = Signal(str)

    def __init__(self, source: FileSource | ArtifactSource, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.source = source
        self.editor = CodeEditor(self)
        self.banner = QFrame(self)
        self.banner.setObjectName("editor_banner")
        self.banner.setFrameShape(QFrame.Shape.StyledPanel)
        self.banner.setAutoFillBackground(True)
        self.banner.setBackgroundRole(QPalette.ColorRole.ToolTipBase)
        self.banner_label = QLabel(self.banner)
        self.banner_label.setWordWrap(True)
        self.banner_label.setForegroundRole(QPalette.ColorRole.ToolTipText)
        self.reload_button = QPushButton("Reload", self.banner)
        self.reload_button.clicked.connect(self._reload_clicked)
        hide = QToolButton(self.banner)
        hide.setText("✕")
        hide.setToolTip("Hide this message")
        hide.setAutoRaise(True)
        hide.clicked.connect(self.banner.hide)
        row = QHBoxLayout(self.banner)
        row.setContentsMargins(8, 4, 4, 4)
        row.addWidget(self.banner_label, 1)
        row.addWidget(self.reload_button)
        row.addWidget(hide)
        self.banner.hide()
        self.encoding_label = QLabel(self)
        self.encoding_label.setObjectName("editor_encoding")
        self.encoding_label.setAlignment(Qt.AlignmentFlag.AlignRight)
        self.encoding_label.setContentsMargins(6, 1, 6, 1)
        self.encoding_label.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.banner)
        layout.addWidget(self.editor, 1)
        layout.addWidget(self.encoding_label)
        self._notified: _Stamp | None = None  # the disk version a banner already told about
        self._gone_revision: int | None = None  # document revision when the file disappeared
        self._modified_before_gone = False
        self.editor.set_language(source.language)
        self._show(source.load())
        self.editor.modificationChanged.connect(self.sig_modified_changed)
        if isinstance(source, FileSource):
            _disk_watch().watch(self)

    @property
    def title(self) -> str:
        """The tab title (without the modified marker)."""
        return self.source.title

    @property
    def encoding(self) -> TextEncoding:
        """How the text is saved (encoding, byte-order mark, line ending)."""
        return self.source.encoding

    def is_modified(self) -> bool:
        """Whether there are unsaved edits."""
        return self.editor.document().isModified()

    def _show(self, text: str) -> None:
        # setPlainText drops one leading U+FEFF (it takes it for a byte-order mark); the file's
        # own mark is already gone, so one that is left is text and must stay.
        self.editor.setPlainText("\ufeff" + text if text.startswith("\ufeff") else text)
        self.editor.document().setModified(False)
        enc = self.source.encoding
        self.encoding_label.setText(enc.describe())
        self.encoding_label.setToolTip(f"Saved as {enc.describe()}, as it was read")
        self.banner.hide()
        if not enc.is_utf:
            self._show_banner(
                f"{self.title} is not valid UTF-8: it was opened as {enc.name} and is saved in "
                f"{enc.name} again (a character {enc.name} cannot hold is refused on save).",
                reload=False,
            )

    def _show_banner(self, message: str, *, reload: bool) -> None:
        self.banner_label.setText(message)
        self.reload_button.setVisible(reload)
        self.reload_button.setText("Reload (discard my edits)" if self.is_modified() else "Reload")
        self.banner.show()

    def banner_text(self) -> str:
        """Return the banner's message, or ``""`` when no banner is shown."""
        return self.banner_label.text() if not self.banner.isHidden() else ""

    def _reload_clicked(self) -> None:
        try:
            self.reload()
        except (OSError, ValueError) as e:
            self._show_banner(f"{self.title} cannot be reloaded: {e}", reload=True)

    def reload(self) -> None:
        """Read the file (or artifact) again, dropping any edits; the cursor keeps its place.

        Raises
        ------
        OSError, ValueError
            It cannot be read or is no longer text; the tab is left as it was.
        """
        text = self.source.load()
        position = self.editor.textCursor().position()
        scroll = self.editor.verticalScrollBar().value()
        self._show(text)
        cursor = self.editor.textCursor()
        cursor.setPosition(min(position, self.editor.document().characterCount() - 1))
        self.editor.setTextCursor(cursor)
        self.editor.verticalScrollBar().setValue(scroll)
        self._notified = None
        self._gone_revision = None
        if isinstance(self.source, FileSource):
            _disk_watch().watch(self)  # the file read may be a new inode (replaced by rename)
        self.sig_title_changed.emit(self.title)

    def check_disk(self) -> None:
        """Notice what another program did to the file since it was read or saved here.

        An unmodified tab reloads a changed file. A modified one keeps its text and shows a
        banner; Save then asks before overwriting. A deleted file's text counts as unsaved.
        The watcher calls this; nothing is written.
        """
        source = self.source
        if not isinstance(source, FileSource):
            return
        state = source.disk_state()
        if state == "missing":
            if self._gone_revision is None:
                self._gone_revision = self.editor.document().revision()
                self._modified_before_gone = self.is_modified()
                self.mark_unsaved()
                self._show_banner(
                    f"{self.title} was deleted or moved away; the text is kept: Save writes it "
                    "again.",
                    reload=False,
                )
            return
        self._file_back()
        if state != "changed":
            return
        try:
            now = _stamp(os.stat(source.path))
        except OSError:
            return
        if now == self._notified:
            return  # already told (a change fires several watcher signals)
        self._notified = now
        if not self.is_modified():
            try:
                self.reload()
            except (OSError, ValueError) as e:
                message = (
                    f"{self.title} was changed by another program and cannot be reloaded: {e}. "
                    "The text here is kept; Save asks before overwriting the file."
                )
                self._show_banner(message, reload=False)
                self.sig_disk_changed.emit(message)
                return
            self.sig_disk_changed.emit(f"{self.title} was changed by another program: reloaded")
            return
        message = (
            f"{self.title} was changed by another program. Your edits are kept; Save asks before "
            "overwriting that change."
        )
        self._show_banner(message, reload=True)
        self.sig_disk_changed.emit(message)

    def _file_back(self) -> None:
        # the file is there again (written back, or the tab followed a rename)
        if self._gone_revision is None:
            return
        if self.editor.document().revision() == self._gone_revision:
            self.editor.document().setModified(self._modified_before_gone)
        self._gone_revision = None
        self.banner.hide()

    def move_to(self, path: Path) -> None:
        """Follow the file to ``path`` (it was renamed or moved; nothing is written)."""
        if isinstance(self.source, FileSource):
            self.source = self.source.moved(Path(path))
            self.editor.set_language(self.source.language)
            _disk_watch().watch(self)
            if self.source.disk_state() != "missing":
                self._file_back()
            self.sig_title_changed.emit(self.title)

    def mark_unsaved(self) -> None:
        """Count the text as modified (its file is gone: closing should offer to save)."""
        self.editor.document().setModified(True)

    def save(self, *, force: bool = False) -> None:
        """Write the text back in its encoding and line ending.

        Parameters
        ----------
        force
            Overwrite a file another program changed since it was read here.

        Raises
        ------
        FileChangedError
            That happened and ``force`` is false (nothing is written).
        OSError, ValueError
            Or a Pit error, naming the problem; the text stays in the editor.
        """
        source = self.source
        if isinstance(source, FileSource):
            source.store(self.editor.text(), force=force)
            _disk_watch().watch(self)
        else:
            source.store(self.editor.text())
        self._saved()

    def save_as(self, path: Path) -> None:
        """Write the text to the new file ``path`` and edit that from now on.

        The encoding and line ending stay. If writing fails the tab still edits its old file.

        Raises
        ------
        OSError, ValueError
            Naming the problem.
        """
        if not isinstance(self.source, FileSource):
            raise ValueError(f"{self.title} is an artifact: saving stores a new version")
        target = self.source.copy_to(Path(path))
        target.store(self.editor.text(), force=True)
        self.source = target
        self.editor.set_language(target.language)
        _disk_watch().watch(self)
        self._saved()

    def _saved(self) -> None:
        self.editor.document().setModified(False)
        self._notified = None
        self._gone_revision = None
        self.banner.hide()
        self.encoding_label.setText(self.source.encoding.describe())
        self.sig_title_changed.emit(self.title)
        self.sig_saved.emit(self.source)

    def dispose(self) -> None:
        """Stop watching the file (the tab is being closed)."""
        _disk_watch().unwatch(id(self))
