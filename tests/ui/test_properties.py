"""PropertiesPanel: a form from the config schema; inline validation; every change undoable."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QEvent
from PySide6.QtGui import QFocusEvent
from PySide6.QtWidgets import (
    QApplication,
    QCheckBox,
    QComboBox,
    QLineEdit,
    QPlainTextEdit,
    QSpinBox,
)
from pytestqt.qtbot import QtBot

from symphony.document.editor import MelodyEditor
from symphony.registry import NodeTypeRegistry
from symphony.ui.properties import PropertiesPanel
from tests.document.conftest import full_registry


@pytest.fixture
def editor(qtbot: QtBot) -> MelodyEditor:
    return MelodyEditor.from_template("idea_to_plan", full_registry())


@pytest.fixture
def panel(qtbot: QtBot, editor: MelodyEditor) -> PropertiesPanel:
    widget = PropertiesPanel()
    qtbot.addWidget(widget)
    widget.set_editor(editor)
    editor.set_selection(["code"])
    return widget


def _line(panel: PropertiesPanel, name: str) -> QLineEdit:
    widget = panel.field_widget(name)
    assert isinstance(widget, QLineEdit)
    return widget


def _type(line: QLineEdit, text: str) -> None:
    line.setText(text)
    line.editingFinished.emit()


def test_the_form_is_generated_from_the_schema(panel: PropertiesPanel) -> None:
    assert panel.node_id == "code"
    assert isinstance(panel.field_widget("language"), QComboBox)
    assert isinstance(panel.field_widget("temperature"), QLineEdit)
    model = panel.field_widget("model")
    assert isinstance(model, QComboBox)
    assert model.isEditable()
    assert isinstance(panel.field_widget("max_retries"), QSpinBox)
    assert isinstance(panel.field_widget("breakpoint"), QCheckBox)
    assert _line(panel, "temperature").text() == "0.2"
    assert _line(panel, "name").text() == "Generate code"
    with pytest.raises(KeyError, match="no field 'colour' shown"):
        panel.field_widget("colour")


def test_invalid_numbers_show_an_error_and_change_nothing(
    panel: PropertiesPanel, editor: MelodyEditor
) -> None:
    temperature = _line(panel, "temperature")
    _type(temperature, "warm")
    assert panel.error_text("temperature") == "config 'temperature': expected a number, got 'warm'"
    _type(temperature, "5")
    assert panel.error_text("temperature") == "config 'temperature': 5 is above the maximum 2"
    assert editor.undo_stack.count() == 0
    assert editor.melody.nodes["code"].config["temperature"] == 0.2
    _type(temperature, "0.9")
    assert panel.error_text("temperature") == ""
    assert editor.melody.nodes["code"].config["temperature"] == 0.9
    assert editor.undo_stack.count() == 1


def test_whole_number_fields_refuse_fractions(panel: PropertiesPanel, editor: MelodyEditor) -> None:
    editor.set_selection(["features"])
    field = _line(panel, "max_features")
    _type(field, "2.5")
    assert "expected a whole number, got 2.5" in panel.error_text("max_features")
    _type(field, "7")
    assert editor.melody.nodes["features"].config["max_features"] == 7
    assert isinstance(editor.melody.nodes["features"].config["max_features"], int)


def test_each_change_is_one_undo_step_and_the_form_follows_undo(
    panel: PropertiesPanel, editor: MelodyEditor
) -> None:
    language = panel.field_widget("language")
    assert isinstance(language, QComboBox)
    language.setCurrentText("rust")
    _type(_line(panel, "name"), "Coder")
    retries = panel.field_widget("max_retries")
    assert isinstance(retries, QSpinBox)
    retries.setValue(7)
    bp = panel.field_widget("breakpoint")
    assert isinstance(bp, QCheckBox)
    bp.setChecked(True)
    _type(_line(panel, "fallback_models"), "gpt-4o-mini, smollm2")
    node = editor.melody.nodes["code"]
    assert node.config["language"] == "rust"
    assert node.name == "Coder"
    assert node.policy.max_retries == 7
    assert node.breakpoint
    assert node.policy.fallback_models == ("gpt-4o-mini", "smollm2")
    assert editor.undo_stack.count() == 5
    while editor.undo_stack.canUndo():
        editor.undo_stack.undo()
    assert language.currentText() == "python"
    assert _line(panel, "name").text() == "Generate code"
    assert retries.value() == 3
    assert not bp.isChecked()
    assert editor.undo_stack.count() == 5  # refreshing the form pushed nothing


def test_policy_and_name_errors_are_shown_inline(
    panel: PropertiesPanel, editor: MelodyEditor
) -> None:
    _type(_line(panel, "timeout_s"), "soon")
    assert panel.error_text("timeout_s") == "timeout: expected seconds, got 'soon'"
    _type(_line(panel, "timeout_s"), "-3")
    assert "timeout_s must be a positive number of seconds" in panel.error_text("timeout_s")
    _type(_line(panel, "name"), "   ")
    assert "a name must not be empty" in panel.error_text("name")
    assert editor.undo_stack.count() == 0
    _type(_line(panel, "timeout_s"), "")
    assert editor.melody.nodes["code"].policy.timeout_s is None


def test_multiline_text_commits_on_focus_out(
    qtbot: QtBot, panel: PropertiesPanel, editor: MelodyEditor
) -> None:
    editor.set_selection(["enhance"])
    prompt = panel.field_widget("prompt")
    assert isinstance(prompt, QPlainTextEdit)
    prompt.setPlainText("Build a todo app")
    assert editor.undo_stack.count() == 0  # typing alone commits nothing
    QApplication.sendEvent(prompt, QFocusEvent(QEvent.Type.FocusOut))
    assert editor.melody.nodes["enhance"].config["prompt"] == "Build a todo app"
    assert editor.undo_stack.count() == 1


def test_selection_and_editor_changes(panel: PropertiesPanel, editor: MelodyEditor) -> None:
    editor.set_selection(["code", "docs"])
    assert panel.node_id is None
    editor.set_selection(["docs"])
    assert panel.node_id == "docs"
    editor.remove_nodes(["docs"])
    assert panel.node_id is None
    panel.set_editor(None)
    editor.undo_stack.undo()
    editor.set_selection(["docs"])
    assert panel.node_id is None


def test_unknown_node_types_are_named(qtbot: QtBot) -> None:
    registry = NodeTypeRegistry()
    editor = MelodyEditor.from_template("idea_to_plan", registry)
    panel = PropertiesPanel()
    qtbot.addWidget(panel)
    panel.set_editor(editor)
    editor.set_selection(["code"])
    assert panel.node_id == "code"
    assert isinstance(panel.field_widget("name"), QLineEdit)


def test_model_box_offers_the_settings_endpoints(panel: PropertiesPanel) -> None:
    panel.set_models(["work", "home"])
    box = panel.field_widget("model")  # the code generator's model box
    assert isinstance(box, QComboBox)
    assert [box.itemText(i) for i in range(box.count())] == ["", "work", "home"]
