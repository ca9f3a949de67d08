"""PropertiesPanel: a form from the config schema; inline validation; every change undoable."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from PySide6.QtCore import QEvent
from PySide6.QtGui import QFocusEvent
from PySide6.QtTest import QTest
from PySide6.QtWidgets import (
    QApplication,
    QCheckBox,
    QComboBox,
    QLineEdit,
    QMessageBox,
    QPlainTextEdit,
    QSpinBox,
)
from pytestqt.qtbot import QtBot

from symphony.document.editor import MelodyEditor
from symphony.registry import NodeTypeRegistry
from symphony.ui.properties import PropertiesPanel, escape_line, unescape_line
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
    line = box.lineEdit()
    assert line is not None
    assert line.placeholderText() == "default model"
    # with the embedded model off in the Settings, an empty box runs nothing: it says so
    panel.set_models(["work"], embedded=False)
    box = panel.field_widget("model")
    assert isinstance(box, QComboBox)
    line = box.lineEdit()
    assert line is not None
    assert line.placeholderText() == "default model (off in the Settings)"


# ------------------------------------------------------------------ rebuilding with focus

# A separate process: before the fix this crashed the interpreter (a segfault), not a test.
_REBUILD_WITH_FOCUS = """
import sys
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QPlainTextEdit
from symphony.document.editor import MelodyEditor
from symphony.ui.properties import PropertiesPanel
from tests.document.conftest import full_registry

app = QApplication([])
editor = MelodyEditor.from_template("idea_to_plan", full_registry())
panel = PropertiesPanel()
panel.set_editor(editor)
panel.show()
panel.activateWindow()
node = editor.add_node("op.template")
editor.set_selection([node])
field = panel.field_widget("template")
assert isinstance(field, QPlainTextEdit)
field.setFocus()
app.processEvents()
assert QApplication.focusWidget() is field, "the template box did not get the focus"
field.selectAll()
QTest.keyClicks(field, "Hi {input}")
action = sys.argv[1]
if action == "select-another":
    editor.set_selection(["code"])
elif action == "clear-selection":
    editor.set_selection([])
elif action == "undo":  # removes the shown node
    editor.undo_stack.undo()
elif action == "close":
    panel.set_editor(None)
elif action == "models":  # rebuilds the same node's form
    panel.set_models(["work"])
app.processEvents()
nodes = editor.melody.nodes
print("template:", nodes[node].config.get("template") if node in nodes else "(removed)")
"""


@pytest.mark.parametrize(
    ("action", "template"),
    [
        ("select-another", "Hi {input}"),
        ("clear-selection", "Hi {input}"),
        ("undo", "(removed)"),
        ("close", "Hi {input}"),
        ("models", "Hi {input}"),
    ],
)
def test_rebuilding_the_form_while_a_multiline_box_has_focus(action: str, template: str) -> None:
    root = Path(__file__).resolve().parents[2]
    env = {
        **os.environ,
        "QT_QPA_PLATFORM": "offscreen",
        "PYTHONPATH": os.pathsep.join([str(root / "app"), str(root), *sys.path]),
    }
    done = subprocess.run(
        [sys.executable, "-X", "faulthandler", "-c", _REBUILD_WITH_FOCUS, action],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    # what was typed is kept, as when the box loses focus, unless its node went away
    assert f"template: {template}" in done.stdout


# ------------------------------------------------------------------ pending edits


def test_commit_pending_applies_what_is_being_typed(
    panel: PropertiesPanel, editor: MelodyEditor
) -> None:
    name = _line(panel, "name")
    name.selectAll()
    QTest.keyClicks(name, "Coder")  # no Return, no focus change
    assert editor.melody.nodes["code"].name == "Generate code"
    assert panel.commit_pending()
    assert editor.melody.nodes["code"].name == "Coder"
    assert editor.undo_stack.count() == 1
    assert panel.commit_pending()  # nothing left to commit
    assert editor.undo_stack.count() == 1


def test_commit_pending_refuses_invalid_values_like_a_normal_commit(
    panel: PropertiesPanel, editor: MelodyEditor
) -> None:
    timeout = _line(panel, "timeout_s")
    timeout.selectAll()
    QTest.keyClicks(timeout, "abc")
    assert not panel.commit_pending()
    assert panel.error_text("timeout_s") == "timeout: expected seconds, got 'abc'"
    assert timeout.text() == "abc"  # kept for the user to correct
    assert editor.melody.nodes["code"].policy.timeout_s == 600
    assert editor.undo_stack.count() == 0
    timeout.selectAll()
    QTest.keyClicks(timeout, "30")
    assert panel.commit_pending()
    assert editor.melody.nodes["code"].policy.timeout_s == 30
    assert panel.error_text("timeout_s") == ""


def test_selecting_another_node_commits_the_typed_text_first(
    panel: PropertiesPanel, editor: MelodyEditor
) -> None:
    editor.set_selection(["enhance"])
    prompt = panel.field_widget("prompt")
    assert isinstance(prompt, QPlainTextEdit)
    prompt.selectAll()
    QTest.keyClicks(prompt, "Build a todo app")
    editor.set_selection(["code"])
    assert editor.melody.nodes["enhance"].config["prompt"] == "Build a todo app"


def test_undo_clears_the_error_of_text_typed_before(
    panel: PropertiesPanel, editor: MelodyEditor
) -> None:
    _type(_line(panel, "temperature"), "0.9")
    _type(_line(panel, "timeout_s"), "abc")
    assert panel.error_text("timeout_s") == "timeout: expected seconds, got 'abc'"
    editor.undo_stack.undo()  # the form is refreshed from the melody
    assert _line(panel, "timeout_s").text() == "600"
    assert panel.error_text("timeout_s") == ""
    assert _line(panel, "temperature").text() == "0.2"


@pytest.mark.parametrize(
    ("value", "shown"),
    [(0.123456789, "0.123456789"), (1234567.891, "1234567.891"), (1e20, "1e+20"), (0.5, "0.5")],
)
def test_numbers_show_exactly_and_an_unchanged_box_commits_nothing(
    panel: PropertiesPanel, editor: MelodyEditor, value: float, shown: str
) -> None:
    # they showed rounded to six digits (0.123457), and Enter then stored the rounded value
    editor.set_config("code", "temperature", 0.123456789)
    editor.set_policy("code", timeout_s=value)
    steps = editor.undo_stack.count()
    assert _line(panel, "temperature").text() == "0.123456789"
    assert _line(panel, "timeout_s").text() == shown
    for name in ("temperature", "timeout_s", "name"):
        _line(panel, name).editingFinished.emit()  # Enter, or focus passing through
    assert editor.undo_stack.count() == steps  # no "Set …" step for nothing
    node = editor.melody.nodes["code"]
    assert node.policy.timeout_s == value
    assert node.config["temperature"] == 0.123456789


def test_whole_number_boxes_show_no_point_zero(panel: PropertiesPanel) -> None:
    assert _line(panel, "timeout_s").text() == "600"  # stored as 600.0


def test_a_huge_whole_number_is_an_error_under_the_field(
    panel: PropertiesPanel, editor: MelodyEditor
) -> None:
    editor.set_selection(["features"])
    _type(_line(panel, "max_features"), "9" * 400)  # raised OverflowError in the schema check
    assert panel.error_text("max_features") == (
        "config 'max_features': a whole number of about 400 digits is too large "
        "(the most is about 1.8e+308)"
    )
    assert editor.melody.nodes["features"].config["max_features"] == 12


def test_another_edit_of_the_node_keeps_what_is_being_typed(
    panel: PropertiesPanel, editor: MelodyEditor
) -> None:
    editor.set_selection(["enhance"])
    prompt = panel.field_widget("prompt")
    assert isinstance(prompt, QPlainTextEdit)
    prompt.setPlainText("my careful prompt")  # typed, not committed yet
    _line(panel, "timeout_s").setText("42")
    editor.set_breakpoint("enhance", True)  # F9, an undo, another view: the form is refreshed
    assert prompt.toPlainText() == "my careful prompt"
    assert _line(panel, "timeout_s").text() == "42"
    assert panel.field_widget("breakpoint").isChecked()  # type: ignore[attr-defined]
    assert panel.commit_pending()
    node = editor.melody.nodes["enhance"]
    assert node.config["prompt"] == "my careful prompt"
    assert node.policy.timeout_s == 42


def test_commit_pending_commits_every_box_being_typed_in(
    panel: PropertiesPanel, editor: MelodyEditor
) -> None:
    editor.set_selection(["enhance"])
    prompt = panel.field_widget("prompt")
    assert isinstance(prompt, QPlainTextEdit)
    _line(panel, "name").setText("Renamed")  # the first row: its commit refreshes the form
    prompt.setPlainText("x" * 200_000)
    assert panel.commit_pending()
    node = editor.melody.nodes["enhance"]
    assert node.name == "Renamed"
    assert node.config["prompt"] == "x" * 200_000


# ------------------------------------------------------------------ escapes


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("\n", "\\n"),
        ("\n\n", "\\n\\n"),
        ("a\tb\r", "a\\tb\\r"),
        ("\\d+", "\\d+"),  # a lone backslash stays single
        ("C:\\new", "C:\\\\new"),  # doubled: \\n would be a line break
        ("end\\", "end\\"),
        ("", ""),
    ],
)
def test_single_line_text_escapes_control_characters(value: str, shown: str) -> None:
    assert escape_line(value) == shown
    assert unescape_line(shown) == value


def test_escapes_read_back_whatever_is_shown() -> None:
    alphabet = ["\\", "n", "t", "r", "\n", "\t", "\r", "x"]
    values = [""]
    for _ in range(4):
        values = [v + c for v in values for c in alphabet]
        for value in values:
            assert unescape_line(escape_line(value)) == value


def test_separators_are_shown_and_typed_escaped(
    panel: PropertiesPanel, editor: MelodyEditor
) -> None:
    split = editor.add_node("op.split")
    merge = editor.add_node("op.merge")
    editor.set_selection([merge])
    assert _line(panel, "separator").text() == "\\n\\n"
    editor.set_selection([split])
    separator = _line(panel, "separator")
    assert separator.text() == "\\n"
    _type(separator, "\\t")
    assert editor.melody.nodes[split].config["separator"] == "\t"
    _type(separator, "\\n\\n")
    assert editor.melody.nodes[split].config["separator"] == "\n\n"
    _type(separator, "")  # accepted here; validation reports it (see the operator's checks)
    assert editor.melody.nodes[split].config["separator"] == ""
    editor.undo_stack.undo()
    assert separator.text() == "\\n\\n"


# ------------------------------------------------------------------ in the window


def _window_with_template(
    make_window: Callable[..., object],
) -> tuple[Any, Any, str, QPlainTextEdit]:
    from symphony.ui.main_window import MainWindow

    w = make_window()
    assert isinstance(w, MainWindow)
    w.set_registry(full_registry())
    board = w.new_melody()
    assert board is not None
    node = board.editor.add_node("op.template")
    board.editor.set_selection([node])
    field = w.properties_widget.field_widget("template")
    assert isinstance(field, QPlainTextEdit)
    return w, board, node, field


def test_saving_commits_the_text_being_typed(
    tmp_path: Path, make_window: Callable[..., object]
) -> None:
    w, board, node, field = _window_with_template(make_window)
    path = tmp_path / "m.melody"
    assert w.save_tab(board, path)
    field.selectAll()
    QTest.keyClicks(field, "Hello {input}")  # the box keeps the focus: Ctrl+S
    assert w.save_tab(board)
    saved = json.loads(path.read_text())
    assert [n["config"] for n in saved["nodes"]] == [{"template": "Hello {input}"}]
    assert not board.is_modified()
    assert board.melody.nodes[node].config["template"] == "Hello {input}"


def test_running_commits_the_text_being_typed(
    tmp_path: Path, make_window: Callable[..., object]
) -> None:
    from symphony.extension_host.host import ExtensionHost
    from symphony.pit import Pit
    from tests.conftest import TEST_KEY
    from tests.ui.test_run import in_qt

    w, board, node, field = _window_with_template(make_window)
    w.set_host(ExtensionHost(None, w, workspace=tmp_path))
    w.set_pit(Pit.open(tmp_path / "pit", key=TEST_KEY))
    field.selectAll()
    QTest.keyClicks(field, "Run this")  # F5 with the box focused

    async def scenario() -> Any:
        w.action_map["run.all"].trigger()
        assert w.runs.run is not None
        return await w.runs.run.wait()

    result = in_qt(scenario)
    assert result.status == "succeeded", result.detail
    assert result.outputs[f"{node}.text"] == "Run this"


def test_closing_asks_to_save_the_text_being_typed(
    tmp_path: Path, make_window: Callable[..., object]
) -> None:
    w, board, _node, field = _window_with_template(make_window)
    assert w.save_tab(board, tmp_path / "m.melody")
    field.selectAll()
    QTest.keyClicks(field, "Unsaved")  # Ctrl+W with the box focused
    asked = mock.Mock(return_value=QMessageBox.StandardButton.Cancel)
    with mock.patch.object(QMessageBox, "question", asked):
        assert not w.close_tab(w.tabs.indexOf(board))
    asked.assert_called_once()
    assert board.is_modified()
