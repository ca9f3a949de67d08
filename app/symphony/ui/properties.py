"""The properties panel: the selected node's name, config, policy and breakpoint.

The form is generated from the node type's config schema: a line (or multi-line) box for text, a
checked line box for numbers, a list for enums, a check box for booleans, an editable list for
model choices. Input is validated inline with the schema's own rules
(:meth:`~symphony.registry.descriptions.ConfigField.check`): a bad value shows its reason under
the field and is not applied. Every accepted change goes through the
:class:`~symphony.document.editor.MelodyEditor`, so it is one undo step. When the melody changes
(undo, redo, another view), the form's values follow without being rebuilt, and errors shown
for values typed earlier go away.

Text is committed when its box loses focus (or on Return); what is still being typed is committed
by :meth:`PropertiesPanel.commit_pending`, which saving, closing and running call first, and
before the form shows another node. Single-line text boxes show control characters escaped
(see :func:`escape_line`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any, Final

import shiboken6
from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtWidgets import (
    QApplication,
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGroupBox,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QScrollArea,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from symphony.conductor.models import EMBEDDED_MODEL
from symphony.document.editor import EditError, MelodyEditor
from symphony.document.listeners import weak_listener
from symphony.registry.descriptions import ConfigField, FieldKind
from symphony.workflow.events import MelodyEvent
from symphony.workflow.model import MAX_RETRIES, Importance, Node

__all__ = ["PropertiesPanel", "escape_line", "number_text", "parse_number", "unescape_line"]

_ERROR_STYLE: Final = "color: #e5534b;"
_UNSET: Final = "(not set)"
_ESCAPES: Final = {"\n": "n", "\t": "t", "\r": "r"}
_UNESCAPES: Final = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\"}


def escape_line(value: str) -> str:
    r"""Return ``value`` as a single-line box shows it: line breaks, tabs and CRs escaped.

    A line break, a tab and a CR are shown as ``\n``, ``\t`` and ``\r``. Every single-line text
    field is shown this way, not only separators: a one-line box can neither show nor take a
    line break, so this is the only way to see or type one, and doing it for every such field
    keeps extension fields consistent with the built-ins (the schema has no per-field flag for
    it). A backslash is doubled only where it would otherwise be read as an escape (before
    ``n``, ``t``, ``r`` or another backslash), so regular expressions and paths such as ``\d+``
    or ``C:\data`` show as they are stored; only ones like ``C:\new`` show doubled.
    :func:`unescape_line` reads the text back: ``unescape_line(escape_line(v)) == v``.
    """
    out: list[str] = []
    for i, ch in enumerate(value):
        if ch in _ESCAPES:
            out.append("\\" + _ESCAPES[ch])
        elif ch == "\\":
            after = value[i + 1 : i + 2]
            out.append("\\\\" if after in _UNESCAPES or after in _ESCAPES else "\\")
        else:
            out.append(ch)
    return "".join(out)


def unescape_line(text: str) -> str:
    r"""Return the value typed as ``text`` in a single-line box (see :func:`escape_line`).

    ``\n``, ``\t``, ``\r`` and ``\\`` are read as a line break, a tab, a CR and one
    backslash; any other backslash is kept as it is.
    """
    out: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and text[i + 1 : i + 2] in _UNESCAPES:
            out.append(_UNESCAPES[text[i + 1]])
            i += 2
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def parse_number(text: str, spec: ConfigField) -> tuple[Any, str | None]:
    """Return ``(value, problem)`` for number text typed into a field (empty: unset)."""
    text = text.strip()
    if not text:
        return None, spec.check(None)
    value: int | float
    try:
        value = int(text)  # "5" stays a whole number in the file
    except ValueError:
        try:
            value = float(text)
        except ValueError:
            return None, f"expected a number, got {text!r}"
    if isinstance(value, float) and math.isfinite(value) and value.is_integer() and spec.integer:
        value = int(value)
    return value, spec.check(value)


def number_text(value: Any) -> str:
    """Return the text a number box shows for ``value`` (``None``: empty).

    Exactly the stored number: the shortest text that reads back as the same value (Python's
    ``repr``), without a ``.0`` on whole numbers. ``0.123456789`` shows as such, not rounded
    to six digits, so a box can be committed without changing what it holds.
    """
    if value is None:
        return ""
    if isinstance(value, float):
        text = repr(value)
        return text[:-2] if text.endswith(".0") else text
    return str(value)


def _model_value(node: Node, key: str) -> Any:
    """Return the value of ``node`` that the row ``key`` shows."""
    policy = node.policy
    if key == "name":
        return node.name
    if key == "breakpoint":
        return node.breakpoint
    if key in ("max_retries", "timeout_s", "fallback_models", "skippable", "importance"):
        return getattr(policy, key)
    return node.config.get(key)


class _FocusOut(QObject):
    """Calls back when a watched widget loses focus (commits multi-line text).

    :meth:`disarm` it before its widget goes: a widget being deleted still gets a FocusOut,
    and the callback would then read a half-destroyed widget (a crash, not an exception).
    """

    def __init__(self, callback: Callable[[], object], parent: QWidget) -> None:
        super().__init__(parent)
        self._callback: Callable[[], object] | None = callback
        self._watched = parent

    def disarm(self) -> None:
        """Stop watching for good."""
        self._callback = None
        if shiboken6.isValid(self._watched):
            self._watched.removeEventFilter(self)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: D102, N802
        callback = self._callback
        if (
            callback is not None
            and event.type() == QEvent.Type.FocusOut
            and shiboken6.isValid(self._watched)
        ):
            callback()
        return False


class _Row:
    """One edited value: its widget, its error label, how to show a value and to commit.

    Parameters
    ----------
    widget, error
        The editor widget and the label under it.
    show
        Puts a value of the model into the widget.
    check
        What is wrong with a value of the model, shown when the field is refreshed (config
        fields: the schema's check; ``None``: nothing can be).
    """

    def __init__(
        self,
        widget: QWidget,
        error: QLabel,
        show: Callable[[Any], None],
        check: Callable[[Any], str | None] | None = None,
    ) -> None:
        self.widget = widget
        self.error = error
        self.show = show
        self.check = check
        #: Applies what the widget holds (False: refused, the error is shown); text boxes only,
        #: the other widgets commit on every change.
        self.commit: Callable[[], bool] | None = None
        #: Text boxes: the text the box holds, and the text it shows for a value of the model.
        #: A box whose text is what it shows for the stored value commits nothing: a number
        #: would otherwise be re-read (3.0 becoming 3) and an undo step pushed for no change.
        self.typed: Callable[[], str] | None = None
        self.text_of: Callable[[Any], str] | None = None
        #: Edited since it was last shown or committed: a refresh of the form leaves it alone,
        #: unless its text was already committed and refused (then the melody's change, an
        #: undo say, shows the stored value again and the error goes).
        self.dirty = False
        self.refused = False
        self.focus_out: _FocusOut | None = None

    def set_error(self, message: str | None) -> None:
        self.error.setText(message or "")
        self.error.setVisible(bool(message))


class PropertiesPanel(QWidget):
    """Shows and edits the node selected on the board of the current editor.

    Parameters
    ----------
    parent
        Qt parent.
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._editor: MelodyEditor | None = None
        self._node_id: str | None = None
        self._models: tuple[str, ...] = ()
        self._embedded = True
        self._rows: dict[str, _Row] = {}
        self._updating = False
        self._listener: Callable[[Any], None] = self._on_event
        self._scroll = QScrollArea(self)
        self._scroll.setWidgetResizable(True)
        self._scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self._scroll)
        self._placeholder("Open a melody to edit its nodes.")

    # ------------------------------------------------------------------ public

    def set_models(self, models: Iterable[str], *, embedded: bool = True) -> None:
        """Offer ``models`` (the Settings' endpoints) in every model box, after the type's own.

        With ``embedded`` off (the Settings' "Use the embedded model"), the embedded model is
        not offered and an empty box says the default is off.
        """
        self._models = tuple(models)
        self._embedded = embedded
        if self._editor is not None:  # rebuild the form of the shown node
            self._on_selection(self._editor.selected_node_ids())

    def set_editor(self, editor: MelodyEditor | None) -> None:
        """Follow ``editor``'s selection (``None``: show nothing)."""
        if self._editor is editor:
            return
        if self._editor is not None:
            self._commit_before_leaving()  # what is being typed belongs to the old melody
            self._node_id = None  # the form no longer shows a node of the current editor
            self._retire_page()
            self._editor.sig_selection_changed.disconnect(self._on_selection)
            self._editor.melody.events.unsubscribe(self._listener)
        self._editor = editor
        if editor is not None:
            editor.sig_selection_changed.connect(self._on_selection)
            events = editor.melody.events
            self._listener = weak_listener(
                self, PropertiesPanel._on_event, lambda fn: events.unsubscribe(fn)
            )
            events.subscribe(self._listener)
            self._on_selection(editor.selected_node_ids())
        else:
            self._node_id = None
            self._placeholder("Open a melody to edit its nodes.")

    @property
    def node_id(self) -> str | None:
        """The node shown, or ``None``."""
        return self._node_id

    def field_widget(self, name: str) -> QWidget:
        """Return the editor widget of field ``name``.

        Config fields by their name; also ``name``, ``max_retries``, ``timeout_s``,
        ``fallback_models``, ``skippable``, ``importance`` and ``breakpoint``.

        Raises
        ------
        KeyError
            If the shown node has no such field.
        """
        try:
            return self._rows[name].widget
        except KeyError:
            raise KeyError(f"no field {name!r} shown (fields: {', '.join(self._rows)})") from None

    def error_text(self, name: str) -> str:
        """Return the validation message shown under ``name`` (``""`` if none)."""
        row = self._rows[name]
        return row.error.text() if not row.error.isHidden() else ""

    def commit_pending(self) -> bool:
        """Commit what is typed but not yet committed (the box still has the focus).

        Text boxes commit when they lose focus; call this before anything that reads the
        melody while one may still have it: saving, closing, running. Each edited box is
        committed as on focus-out, with the same validation: a refused value stays shown with
        its error and is not applied.

        Returns
        -------
        bool
            ``False`` if a value was refused (the melody then holds the previous value).
        """
        ok = True
        for row in list(self._rows.values()):
            # a commit refreshes the form, which may retire or re-show the later rows
            if row.dirty and not self._commit_row(row):
                ok = False
        return ok

    # ------------------------------------------------------------------ building the form

    def _placeholder(self, text: str) -> None:
        self._retire_page()
        label = QLabel(text)
        label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        label.setWordWrap(True)
        label.setEnabled(False)
        self._scroll.setWidget(label)

    def _retire_page(self) -> None:
        """Make the shown form inert before it is replaced.

        ``QScrollArea.setWidget`` deletes the old page at once, and its focused box then gets
        a FocusOut (and may emit ``editingFinished``) while half-destroyed: acting on that
        reads a dead widget and crashes. So nothing of the old page may react any more: its
        focus filters are removed, its signals blocked, and the focus is taken from it while
        its widgets are still whole. Pending text is not committed here (see
        :meth:`_commit_before_leaving`): this also runs inside undo, when the node is gone.
        """
        rows, self._rows = self._rows, {}
        for row in rows.values():
            row.dirty = False
            if row.focus_out is not None:
                row.focus_out.disarm()
        page = self._scroll.widget()
        if page is None:
            return
        for widget in (page, *page.findChildren(QWidget)):
            widget.blockSignals(True)
        focused = QApplication.focusWidget()
        if focused is not None and page.isAncestorOf(focused):
            focused.clearFocus()

    def _commit_before_leaving(self) -> None:
        """Commit the pending text of the shown node before the form stops showing it.

        Only while that node still exists: when it was removed (undo of its creation, another
        view deleting it) the selection changes in the middle of that edit, where a commit
        would fail or, worse, push onto the undo stack while it is undoing.
        """
        editor, node_id = self._editor, self._node_id
        if editor is not None and node_id is not None and node_id in editor.melody.nodes:
            self.commit_pending()

    def _on_selection(self, ids: list[str]) -> None:
        editor = self._editor
        if editor is None:
            return
        self._commit_before_leaving()
        if len(ids) != 1:
            self._node_id = None
            self._placeholder(
                "Select a node to see its properties."
                if not ids
                else f"{len(ids)} nodes selected: select one to edit it."
            )
            return
        self._node_id = ids[0]
        self._build(editor, editor.melody.nodes[ids[0]])

    def _on_event(self, event: MelodyEvent) -> None:
        node_id = getattr(event, "node_id", None)
        node = getattr(event, "node", None)
        if node_id is None and node is not None:
            node_id = node.id
        if node_id is None or node_id != self._node_id or self._editor is None:
            return
        current = self._editor.melody.nodes.get(node_id)
        if current is None:
            self._node_id = None
            self._placeholder("Select a node to see its properties.")
        else:
            self._refresh(current)

    def _build(self, editor: MelodyEditor, node: Node) -> None:
        self._retire_page()
        page = QWidget()
        outer = QVBoxLayout(page)
        outer.setContentsMargins(8, 8, 8, 8)
        desc = editor.registry.get(node.type_id)
        heading = QLabel(
            f"<b>{desc.title if desc else node.type_id}</b>"
            f"<br><small>{node.type_id} · {node.id}</small>"
            + (f"<br><small>{desc.description}</small>" if desc and desc.description else "")
        )
        heading.setWordWrap(True)
        heading.setTextFormat(Qt.TextFormat.RichText)
        outer.addWidget(heading)

        general = QFormLayout()
        self._add_line_row(general, "Name", "name", QLineEdit(), str, self._commit_name)
        outer.addLayout(general)

        if desc is None:
            warn = QLabel(
                f"Unknown node type {node.type_id!r}: install the extension that provides it."
            )
            warn.setWordWrap(True)
            warn.setStyleSheet(_ERROR_STYLE)
            outer.addWidget(warn)
        elif desc.config:
            box = QGroupBox("Configuration")
            form = QFormLayout(box)
            for spec in desc.config:
                self._add_config_row(form, spec, node.config.get(spec.name))
            outer.addWidget(box)

        policy = QGroupBox("Run policy")
        pform = QFormLayout(policy)
        retries = QSpinBox()
        retries.setRange(0, MAX_RETRIES)
        retries.setValue(node.policy.max_retries)
        retries.valueChanged.connect(lambda v: self._commit_policy("max_retries", int(v)))
        self._add_row(pform, "Retries", "max_retries", retries, lambda v: retries.setValue(int(v)))
        timeout = QLineEdit()
        timeout.setPlaceholderText("conductor default")
        self._add_line_row(
            pform,
            "Timeout (s)",
            "timeout_s",
            timeout,
            number_text,
            self._commit_timeout,
        )
        fallbacks = QLineEdit()
        fallbacks.setPlaceholderText("model ids, comma-separated")
        self._add_line_row(
            pform,
            "Fallback models",
            "fallback_models",
            fallbacks,
            ", ".join,
            self._commit_fallbacks,
        )
        skippable = QCheckBox("May be skipped on failure")
        skippable.toggled.connect(lambda on: self._commit_policy("skippable", bool(on)))
        self._add_row(pform, "", "skippable", skippable, lambda v: skippable.setChecked(bool(v)))
        importance = QComboBox()
        importance.addItems([i.value for i in Importance])
        importance.currentTextChanged.connect(
            lambda t: self._commit_policy("importance", Importance(t))
        )
        self._add_row(
            pform,
            "Importance",
            "importance",
            importance,
            lambda v: importance.setCurrentText(Importance(v).value),
        )
        outer.addWidget(policy)

        debug = QFormLayout()
        bp = QCheckBox("Pause here in debug runs")
        bp.toggled.connect(self._commit_breakpoint)
        self._add_row(debug, "Breakpoint", "breakpoint", bp, lambda v: bp.setChecked(bool(v)))
        outer.addLayout(debug)
        outer.addStretch(1)
        self._scroll.setWidget(page)
        self._refresh(node)

    def _add_row(
        self,
        form: QFormLayout,
        label: str,
        key: str,
        widget: QWidget,
        show: Callable[[Any], None],
        tip: str = "",
        check: Callable[[Any], str | None] | None = None,
    ) -> _Row:
        error = QLabel()
        error.setStyleSheet(_ERROR_STYLE)
        error.setWordWrap(True)
        error.hide()
        holder = QWidget()
        box = QVBoxLayout(holder)
        box.setContentsMargins(0, 0, 0, 0)
        box.setSpacing(2)
        box.addWidget(widget)
        box.addWidget(error)
        widget.setObjectName(f"field:{key}")
        if tip:
            widget.setToolTip(tip)
        form.addRow(label, holder)
        row = _Row(widget, error, show, check)
        self._rows[key] = row
        return row

    def _add_line_row(
        self,
        form: QFormLayout,
        label: str,
        key: str,
        line: QLineEdit,
        text_of: Callable[[Any], str],
        commit: Callable[[str], bool],
        tip: str = "",
        check: Callable[[Any], str | None] | None = None,
    ) -> _Row:
        """Add a line box showing ``text_of(value)``, committing its text with ``commit``."""

        def show(value: Any) -> None:
            text = text_of(value)
            if line.text() != text:  # setting the same text would move the cursor
                line.setText(text)

        row = self._add_row(form, label, key, line, show, tip, check)
        row.commit = lambda: commit(line.text())
        row.typed = line.text
        row.text_of = text_of
        line.editingFinished.connect(lambda: self._commit_row(row))
        line.textChanged.connect(lambda _t: self._mark_dirty(row))
        return row

    def _mark_dirty(self, row: _Row) -> None:
        if not self._updating:  # not when the form shows the model
            row.dirty = True
            row.refused = False

    def _commit_row(self, row: _Row) -> bool:
        """Commit what ``row``'s widget holds, if it is a row of the shown form."""
        if (
            row.commit is None
            or row not in self._rows.values()
            or not shiboken6.isValid(row.widget)
        ):
            return True
        editor, node_id = self._editor, self._node_id
        node = None if editor is None or node_id is None else editor.melody.nodes.get(node_id)
        if node is not None and row.typed is not None and row.text_of is not None:
            key = next(k for k, r in self._rows.items() if r is row)
            value = _model_value(node, key)
            if row.typed() == row.text_of(value):  # nothing typed, or typed back as it was
                row.dirty = row.refused = False
                row.set_error(row.check(value) if row.check is not None else None)
                return True
        # Not dirty while it commits: the refresh that the edit causes then shows the value
        # as stored in this box (and leaves the other boxes still being typed in alone).
        row.dirty = False
        ok = row.commit()
        if not ok:
            # refused: the text stays, with its error, to be corrected
            row.dirty = row.refused = True
        return ok

    def _add_config_row(self, form: QFormLayout, spec: ConfigField, value: Any) -> None:
        label = spec.label or spec.name
        if spec.required:
            label += " *"
        tip = spec.description
        kind = spec.kind
        if kind is FieldKind.BOOL:
            box = QCheckBox()
            box.toggled.connect(lambda on: self._commit_config(spec, bool(on)))
            self._add_row(
                form, label, spec.name, box, lambda v: box.setChecked(bool(v)), tip, spec.check
            )
        elif kind is FieldKind.ENUM:
            combo = QComboBox()
            if not spec.required:
                combo.addItem(_UNSET)
            combo.addItems(list(spec.choices))
            combo.currentTextChanged.connect(
                lambda t: self._commit_config(spec, None if t == _UNSET else t)
            )
            self._add_row(
                form,
                label,
                spec.name,
                combo,
                lambda v: combo.setCurrentText(_UNSET if v is None else str(v)),
                tip,
                spec.check,
            )
        elif kind is FieldKind.MODEL_CHOICE:
            model = QComboBox()
            model.setEditable(True)
            offered = dict.fromkeys((*spec.choices, *self._models))
            if not self._embedded:
                offered.pop(EMBEDDED_MODEL, None)
            model.addItems(["", *offered])
            row = self._add_row(
                form,
                label,
                spec.name,
                model,
                lambda v: model.setCurrentText("" if v is None else str(v)),
                tip,
                spec.check,
            )
            row.commit = lambda: self._commit_config(spec, model.currentText().strip())
            row.typed = model.currentText
            row.text_of = lambda v: "" if v is None else str(v)
            line = model.lineEdit()
            if line is not None:
                line.setPlaceholderText(
                    "default model" if self._embedded else "default model (off in the Settings)"
                )
                line.editingFinished.connect(lambda: self._commit_row(row))
                line.textChanged.connect(lambda _t: self._mark_dirty(row))
            model.activated.connect(lambda _i: self._commit_row(row))
        elif kind is FieldKind.NUMBER:
            number = QLineEdit()
            bounds = []
            if spec.minimum is not None:
                bounds.append(f"≥ {number_text(spec.minimum)}")
            if spec.maximum is not None:
                bounds.append(f"≤ {number_text(spec.maximum)}")
            number.setPlaceholderText(
                ("whole number " if spec.integer else "number ") + " ".join(bounds)
            )
            self._add_line_row(
                form,
                label,
                spec.name,
                number,
                number_text,
                lambda t: self._commit_number(spec, t),
                tip,
                spec.check,
            )
        elif spec.multiline:
            text = QPlainTextEdit()
            text.setTabChangesFocus(True)
            text.setFixedHeight(90)
            text_row = self._add_row(
                form,
                label,
                spec.name,
                text,
                lambda v: None if text.toPlainText() == (v or "") else text.setPlainText(v or ""),
                tip,
                spec.check,
            )
            text_row.commit = lambda: self._commit_config(spec, text.toPlainText())
            text_row.typed = text.toPlainText
            text_row.text_of = lambda v: v or ""
            text_row.focus_out = _FocusOut(lambda: self._commit_row(text_row), text)
            text.installEventFilter(text_row.focus_out)
            text.textChanged.connect(lambda: self._mark_dirty(text_row))
        else:
            # one line cannot hold a line break: see escape_line
            self._add_line_row(
                form,
                label,
                spec.name,
                QLineEdit(),
                lambda v: "" if v is None else escape_line(str(v)),
                lambda t: self._commit_config(spec, unescape_line(t)),
                tip,
                spec.check,
            )

    def _refresh(self, node: Node) -> None:
        self._updating = True
        try:
            for key, row in self._rows.items():
                if row.dirty and not row.refused:
                    # Being typed in: another edit of the node (a breakpoint, an undo, another
                    # box's commit) must not put the stored value over the typing.
                    continue
                value = _model_value(node, key)
                row.show(value)
                row.dirty = row.refused = False
                # an error about text typed earlier no longer applies to the value shown now
                row.set_error(row.check(value) if row.check is not None else None)
        finally:
            self._updating = False

    # ------------------------------------------------------------------ committing

    def _apply(self, key: str, action: Callable[[], None]) -> bool:
        row = self._rows.get(key)
        try:
            action()
        except EditError as exc:
            if row is not None:
                row.set_error(str(exc))
            return False
        if row is not None:
            row.set_error(None)
        return True

    def _commit_name(self, text: str) -> bool:
        editor, node_id = self._editor, self._node_id
        if self._updating or editor is None or node_id is None:
            return True
        return self._apply("name", lambda: editor.rename_node(node_id, text.strip()))

    def _commit_config(self, spec: ConfigField, value: Any) -> bool:
        editor, node_id = self._editor, self._node_id
        if self._updating or editor is None or node_id is None:
            return True
        if (
            value == ""
            and spec.kind in (FieldKind.TEXT, FieldKind.MODEL_CHOICE)
            and (spec.default is None)
        ):
            value = None
        return self._apply(spec.name, lambda: editor.set_config(node_id, spec.name, value))

    def _commit_number(self, spec: ConfigField, text: str) -> bool:
        if self._updating:
            return True
        value, problem = parse_number(text, spec)
        if problem is not None:
            self._rows[spec.name].set_error(f"config '{spec.name}': {problem}")
            return False
        return self._commit_config(spec, value)

    def _commit_policy(self, field: str, value: Any) -> bool:
        editor, node_id = self._editor, self._node_id
        if self._updating or editor is None or node_id is None:
            return True
        return self._apply(field, lambda: editor.set_policy(node_id, **{field: value}))

    def _commit_timeout(self, text: str) -> bool:
        if self._updating:
            return True
        text = text.strip()
        if not text:
            return self._commit_policy("timeout_s", None)
        try:
            value = float(text)
        except ValueError:
            self._rows["timeout_s"].set_error(f"timeout: expected seconds, got {text!r}")
            return False
        return self._commit_policy("timeout_s", value)

    def _commit_fallbacks(self, text: str) -> bool:
        models = tuple(m.strip() for m in text.split(",") if m.strip())
        return self._commit_policy("fallback_models", models)

    def _commit_breakpoint(self, on: bool) -> None:
        editor, node_id = self._editor, self._node_id
        if self._updating or editor is None or node_id is None:
            return
        self._apply("breakpoint", lambda: editor.set_breakpoint(node_id, bool(on)))
