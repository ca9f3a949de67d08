"""The properties panel: the selected node's name, config, policy and breakpoint.

The form is generated from the node type's config schema: a line (or multi-line) box for text, a
checked line box for numbers, a list for enums, a check box for booleans, an editable list for
model choices. Input is validated inline with the schema's own rules
(:meth:`~symphony.registry.descriptions.ConfigField.check`): a bad value shows its reason under
the field and is not applied. Every accepted change goes through the
:class:`~symphony.document.editor.MelodyEditor`, so it is one undo step. When the melody changes
(undo, redo, another view), the form's values follow without being rebuilt.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any, Final

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtWidgets import (
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

from symphony.document.editor import EditError, MelodyEditor
from symphony.document.listeners import weak_listener
from symphony.registry.descriptions import ConfigField, FieldKind
from symphony.workflow.events import MelodyEvent
from symphony.workflow.model import MAX_RETRIES, Importance, Node

__all__ = ["PropertiesPanel"]

_ERROR_STYLE: Final = "color: #e5534b;"
_UNSET: Final = "(not set)"


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


class _Row:
    """One edited value: its widget, its error label, and how to show a value in it."""

    def __init__(self, widget: QWidget, error: QLabel, show: Callable[[Any], None]) -> None:
        self.widget = widget
        self.error = error
        self.show = show

    def set_error(self, message: str | None) -> None:
        self.error.setText(message or "")
        self.error.setVisible(bool(message))


class _FocusOut(QObject):
    """Calls back when a watched widget loses focus (commits multi-line text)."""

    def __init__(self, callback: Callable[[], None], parent: QObject) -> None:
        super().__init__(parent)
        self._callback = callback

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: D102, N802
        if event.type() == QEvent.Type.FocusOut:
            self._callback()
        return False


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

    def set_models(self, models: Iterable[str]) -> None:
        """Offer ``models`` (the Settings' endpoints) in every model box, after the type's own."""
        self._models = tuple(models)
        if self._editor is not None:  # rebuild the form of the shown node
            self._on_selection(self._editor.selected_node_ids())

    def set_editor(self, editor: MelodyEditor | None) -> None:
        """Follow ``editor``'s selection (``None``: show nothing)."""
        if self._editor is editor:
            return
        if self._editor is not None:
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

    # ------------------------------------------------------------------ building the form

    def _placeholder(self, text: str) -> None:
        label = QLabel(text)
        label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        label.setWordWrap(True)
        label.setEnabled(False)
        self._rows = {}
        self._scroll.setWidget(label)

    def _on_selection(self, ids: list[str]) -> None:
        editor = self._editor
        if editor is None:
            return
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
        self._rows = {}
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
        name = QLineEdit(node.name)
        name.editingFinished.connect(lambda: self._commit_name(name.text()))
        self._add_row(general, "Name", "name", name, lambda v: name.setText(str(v)))
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
        timeout.editingFinished.connect(lambda: self._commit_timeout(timeout.text()))
        self._add_row(
            pform,
            "Timeout (s)",
            "timeout_s",
            timeout,
            lambda v: timeout.setText("" if v is None else f"{v:g}"),
        )
        fallbacks = QLineEdit()
        fallbacks.setPlaceholderText("model ids, comma-separated")
        fallbacks.editingFinished.connect(lambda: self._commit_fallbacks(fallbacks.text()))
        self._add_row(
            pform,
            "Fallback models",
            "fallback_models",
            fallbacks,
            lambda v: fallbacks.setText(", ".join(v)),
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
        if desc is not None:
            for spec in desc.config:
                row = self._rows.get(spec.name)
                if row is not None:
                    row.set_error(spec.check(node.config.get(spec.name)))

    def _add_row(
        self,
        form: QFormLayout,
        label: str,
        key: str,
        widget: QWidget,
        show: Callable[[Any], None],
        tip: str = "",
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
        row = _Row(widget, error, show)
        self._rows[key] = row
        return row

    def _add_config_row(self, form: QFormLayout, spec: ConfigField, value: Any) -> None:
        label = spec.label or spec.name
        if spec.required:
            label += " *"
        tip = spec.description
        kind = spec.kind
        if kind is FieldKind.BOOL:
            box = QCheckBox()
            box.toggled.connect(lambda on: self._commit_config(spec, bool(on)))
            self._add_row(form, label, spec.name, box, lambda v: box.setChecked(bool(v)), tip)
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
            )
        elif kind is FieldKind.MODEL_CHOICE:
            model = QComboBox()
            model.setEditable(True)
            model.addItems(["", *dict.fromkeys((*spec.choices, *self._models))])
            line = model.lineEdit()
            if line is not None:
                line.setPlaceholderText("default model")
                line.editingFinished.connect(
                    lambda: self._commit_config(spec, model.currentText().strip())
                )
            model.activated.connect(
                lambda _i: self._commit_config(spec, model.currentText().strip())
            )
            self._add_row(
                form,
                label,
                spec.name,
                model,
                lambda v: model.setCurrentText("" if v is None else str(v)),
                tip,
            )
        elif kind is FieldKind.NUMBER:
            number = QLineEdit()
            bounds = []
            if spec.minimum is not None:
                bounds.append(f"≥ {spec.minimum:g}")
            if spec.maximum is not None:
                bounds.append(f"≤ {spec.maximum:g}")
            number.setPlaceholderText(
                ("whole number " if spec.integer else "number ") + " ".join(bounds)
            )
            number.editingFinished.connect(lambda: self._commit_number(spec, number.text()))
            self._add_row(
                form,
                label,
                spec.name,
                number,
                lambda v: number.setText(
                    "" if v is None else f"{v:g}" if isinstance(v, float) else str(v)
                ),
                tip,
            )
        elif spec.multiline:
            text = QPlainTextEdit()
            text.setTabChangesFocus(True)
            text.setFixedHeight(90)
            text.installEventFilter(
                _FocusOut(lambda: self._commit_config(spec, text.toPlainText()), text)
            )
            self._add_row(
                form,
                label,
                spec.name,
                text,
                lambda v: None if text.toPlainText() == (v or "") else text.setPlainText(v or ""),
                tip,
            )
        else:
            line_edit = QLineEdit()
            line_edit.editingFinished.connect(lambda: self._commit_config(spec, line_edit.text()))
            self._add_row(
                form,
                label,
                spec.name,
                line_edit,
                lambda v: line_edit.setText("" if v is None else str(v)),
                tip,
            )

    def _refresh(self, node: Node) -> None:
        values: dict[str, Any] = {
            "name": node.name,
            "max_retries": node.policy.max_retries,
            "timeout_s": node.policy.timeout_s,
            "fallback_models": node.policy.fallback_models,
            "skippable": node.policy.skippable,
            "importance": node.policy.importance,
            "breakpoint": node.breakpoint,
        }
        self._updating = True
        try:
            for key, row in self._rows.items():
                row.show(values[key] if key in values else node.config.get(key))
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

    def _commit_name(self, text: str) -> None:
        editor, node_id = self._editor, self._node_id
        if self._updating or editor is None or node_id is None:
            return
        self._apply("name", lambda: editor.rename_node(node_id, text.strip()))

    def _commit_config(self, spec: ConfigField, value: Any) -> None:
        editor, node_id = self._editor, self._node_id
        if self._updating or editor is None or node_id is None:
            return
        if (
            value == ""
            and spec.kind in (FieldKind.TEXT, FieldKind.MODEL_CHOICE)
            and (spec.default is None)
        ):
            value = None
        self._apply(spec.name, lambda: editor.set_config(node_id, spec.name, value))

    def _commit_number(self, spec: ConfigField, text: str) -> None:
        if self._updating:
            return
        value, problem = parse_number(text, spec)
        if problem is not None:
            self._rows[spec.name].set_error(f"config '{spec.name}': {problem}")
            return
        self._commit_config(spec, value)

    def _commit_policy(self, field: str, value: Any) -> None:
        editor, node_id = self._editor, self._node_id
        if self._updating or editor is None or node_id is None:
            return
        self._apply(field, lambda: editor.set_policy(node_id, **{field: value}))

    def _commit_timeout(self, text: str) -> None:
        if self._updating:
            return
        text = text.strip()
        if not text:
            self._commit_policy("timeout_s", None)
            return
        try:
            value = float(text)
        except ValueError:
            self._rows["timeout_s"].set_error(f"timeout: expected seconds, got {text!r}")
            return
        self._commit_policy("timeout_s", value)

    def _commit_fallbacks(self, text: str) -> None:
        models = tuple(m.strip() for m in text.split(",") if m.strip())
        self._commit_policy("fallback_models", models)

    def _commit_breakpoint(self, on: bool) -> None:
        editor, node_id = self._editor, self._node_id
        if self._updating or editor is None or node_id is None:
            return
        self._apply("breakpoint", lambda: editor.set_breakpoint(node_id, bool(on)))
