"""The main window around real boards: templates, undo/redo, edit actions, run events."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLineEdit
from pytestqt.qtbot import QtBot

from symphony.conductor import events as ev
from symphony.extension_host.discovery import discover
from symphony.ui.board_tab import BoardTab
from symphony.ui.main_window import MainWindow, build_registry
from symphony.ui.palette import PaletteWidget
from symphony.workflow import list_templates


def _window(make_window: Callable[..., object], qtbot: QtBot) -> MainWindow:
    w = make_window()
    assert isinstance(w, MainWindow)
    registry, errors = build_registry(discover().manifests.values())
    assert errors == []
    w.set_registry(registry)
    with qtbot.waitExposed(w):
        w.show()
    return w


def _template(w: MainWindow) -> BoardTab:
    first = list_templates()[0].id
    board = w.new_from_template(first)
    assert board is not None
    return board


def test_template_opens_on_a_board_with_palette_and_properties(
    qtbot: QtBot, make_window: Callable[..., object]
) -> None:
    w = _window(make_window, qtbot)
    assert w.palette_widget is not None
    assert w.docks["palette"].widget() is w.palette_widget
    board = _template(w)
    assert w.current_board() is board
    assert w.tabs.tabText(w.tabs.currentIndex()) == board.melody.name
    assert w.action_map["run.all"].isEnabled()
    assert w.action_map["view.fit"].isEnabled()
    assert not w.action_map["run.from_here"].isEnabled()  # nothing selected
    assert "nodes · Zoom" in w.position_label.text()


def test_the_status_follows_the_boards_zoom_and_node_count(
    qtbot: QtBot, make_window: Callable[..., object]
) -> None:
    w = _window(make_window, qtbot)
    board = _template(w)
    n = len(board.melody.nodes)
    board.view.set_zoom(0.8)  # as the wheel does, not through the window's zoom actions
    assert w.position_label.text() == f"{n} nodes · Zoom 80%"
    board.editor.add_node(next(iter(board.melody.nodes.values())).type_id, (900.0, 900.0))
    qtbot.waitUntil(lambda: w.position_label.text() == f"{n + 1} nodes · Zoom 80%")


def test_selecting_a_node_in_view_does_not_move_the_board_and_one_out_of_view_is_centred(
    qtbot: QtBot, make_window: Callable[..., object]
) -> None:
    w = _window(make_window, qtbot)
    board = _template(w)
    view = board.view
    view.fit_all()

    def seen() -> object:
        return view.mapToScene(view.viewport().rect()).boundingRect()

    before = seen()
    for node_id in board.melody.nodes:  # all in view after Fit All
        assert board.select_node(node_id)
        assert seen() == before, node_id
    far = board.editor.add_node(next(iter(board.melody.nodes.values())).type_id, (5000.0, 3000.0))
    assert board.select_node(far)
    rect = view.board_scene.node_items[far].sceneBoundingRect()
    assert seen().contains(rect)
    assert abs(seen().center().x() - rect.center().x()) < 2  # its middle, not its corner


def test_undo_redo_actions_follow_the_boards_stack(
    qtbot: QtBot, make_window: Callable[..., object]
) -> None:
    w = _window(make_window, qtbot)
    board = _template(w)
    before = len(board.melody.nodes)
    assert not w.action_map["edit.undo"].isEnabled()
    first = next(iter(board.melody.nodes))
    assert board.select_node(first)
    assert w.action_map["run.from_here"].isEnabled()
    assert w.action_map["edit.delete"].isEnabled()
    # as after clicking the node: with a dock's text box focused, Delete acts on that box
    board.view.setFocus()
    w.action_map["edit.delete"].trigger()
    assert len(board.melody.nodes) == before - 1
    assert w.action_map["edit.undo"].isEnabled()
    assert w.action_map["edit.undo"].text().startswith("&Undo Delete")
    assert w.tabs.tabText(w.tabs.currentIndex()).startswith("● ")
    board.view.setFocus()
    qtbot.keyClick(board.view, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert len(board.melody.nodes) == before
    assert w.action_map["edit.redo"].isEnabled()
    w.action_map["edit.redo"].trigger()
    assert len(board.melody.nodes) == before - 1
    w.action_map["edit.undo"].trigger()
    # Copy and paste through the Edit menu, select all, breakpoints (the Edit menu acts on the
    # focused widget: the board here, not the palette's search field).
    board.view.setFocus()
    assert board.select_node(first)
    w.action_map["edit.copy"].trigger()
    w.action_map["edit.paste"].trigger()
    assert len(board.melody.nodes) == before + 1
    w.action_map["edit.select_all"].trigger()
    assert len(board.selected_node_ids()) == before + 1
    assert board.select_node(first)
    w.action_map["run.toggle_breakpoint"].trigger()
    assert board.melody.nodes[first].breakpoint


def test_save_board_and_reopen_from_recent(
    qtbot: QtBot, make_window: Callable[..., object], tmp_path: Path
) -> None:
    from symphony.ui import settings as st

    w = _window(make_window, qtbot)
    board = _template(w)
    target = tmp_path / "mine.melody"
    assert w.save_tab(board, target)
    assert target.exists()
    assert w.tabs.tabText(w.tabs.currentIndex()) == "mine.melody"
    assert st.recent_files()[0] == str(target.resolve())
    assert w.close_tab(w.tabs.currentIndex())
    opened = w.open_path(target)
    assert isinstance(opened, BoardTab)
    assert opened.melody.name == board.melody.name


def test_broken_melody_file_is_reported(
    qtbot: QtBot, make_window: Callable[..., object], tmp_path: Path
) -> None:
    w = _window(make_window, qtbot)
    bad = tmp_path / "bad.melody"
    bad.write_text('{"format_version": 2, "nodes": 5}')
    assert w.open_path(bad) is None
    assert any("bad.melody" in line and "ERROR" in line for line in w.log_view.lines())


def test_problems_follow_the_current_melody(
    qtbot: QtBot, make_window: Callable[..., object]
) -> None:
    w = _window(make_window, qtbot)
    board = _template(w)
    assert w.problems.messages() == []  # templates are valid
    board.editor.melody.create_node("no.such_type", "Mystery")
    qtbot.waitUntil(lambda: any("no.such_type" in m for m in w.problems.messages()))
    w.close_tab(w.tabs.currentIndex(), ask=False)
    assert w.problems.messages() == []


def test_run_events_reach_board_timeline_problems_and_status(
    qtbot: QtBot, make_window: Callable[..., object]
) -> None:
    w = _window(make_window, qtbot)
    board = _template(w)
    w.attach_run(board)
    node = next(iter(board.melody.nodes))
    for e in [
        ev.RunStateChanged("r", 10.0, ev.RUN_RUNNING),
        ev.NodeStateChanged("r", 10.0, node, ev.RUNNING),
        ev.NodeProgress("r", 10.5, node, 0.5, "half"),
        ev.NodeToken("r", 10.6, node, "tok"),
        ev.NodeStateChanged("r", 11.0, node, ev.FAILED, 1, "", "boom"),
        ev.RecoveryChosen("r", 11.0, node, "boom", "error", "abort", "no retries left", 1),
        ev.RunStateChanged("r", 11.0, ev.RUN_FAILED, "node failed"),
    ]:
        w.handle_run_event(e)
    assert w.run_label.text() == "Run failed: node failed"
    assert node in w.timeline.chart.model.rows
    assert any("recovery: abort, because no retries left" in m for m in w.problems.messages())
    assert w.action_map["run.all"].isEnabled()
    # Double-clicking the problem selects the node on the run's board.
    item = w.problems.topLevelItem(w.problems.topLevelItemCount() - 1)
    assert item is not None
    w.problems.itemDoubleClicked.emit(item, 1)
    assert board.selected_node_ids() == [node]


# ------------------------------------------------------------------ keys and edit actions

X11_SCRIPT = r"""
import json, sys
from PySide6.QtCore import QSettings, Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication
app = QApplication([])
QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, sys.argv[1])
from symphony.extension_host.discovery import discover
from symphony.ui.main_window import MainWindow, build_registry
w = MainWindow(start_services=False, remember_layout=False)
w.set_registry(build_registry(discover().manifests.values())[0])
w.show()
QTest.qWaitForWindowExposed(w)
board = w.new_from_template("idea_to_plan")
w.activateWindow()
board.view.setFocus()
QTest.qWait(50)
board.editor.set_selection(["docs"])
before = sorted(board.melody.nodes)
QTest.keyClick(board.view.viewport(), Qt.Key.Key_D, Qt.KeyboardModifier.ControlModifier)
print(json.dumps({
    "platform": QApplication.platformName(),
    "shortcuts": {k: [s.toString() for s in a.shortcuts()] for k, a in w.action_map.items()},
    "before": before,
    "after": sorted(board.melody.nodes),
    "undo": board.editor.undo_stack.undoText(),
}))
w.close_tab(0, ask=False)
"""


@pytest.mark.skipif(shutil.which("xvfb-run") is None, reason="needs Xvfb for X11's key bindings")
def test_ctrl_d_duplicates_on_x11_where_the_standard_delete_key_includes_it(
    tmp_path: Path,
) -> None:
    # On X11, QKeySequence.StandardKey.Delete is Del *and* Ctrl+D; bound to Edit ▸ Delete it
    # deleted the selection when Ctrl+D (duplicate) was pressed on the board. The offscreen
    # platform has Windows' bindings, so this runs a real X server.
    env = {**os.environ, "QT_QPA_PLATFORM": "xcb", "XDG_CONFIG_HOME": str(tmp_path)}
    done = subprocess.run(
        ["xvfb-run", "-a", sys.executable, "-c", X11_SCRIPT, str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["platform"] == "xcb"
    assert result["shortcuts"]["edit.delete"] == ["Del"]
    board_keys = {"Ctrl+D", "Ctrl+L", "Tab", "Space", "Backspace"}  # the board's own keys
    for key, shortcuts in result["shortcuts"].items():
        assert not board_keys & set(shortcuts), f"{key} takes {shortcuts} from the board"
    assert len(result["after"]) == len(result["before"]) + 1, result
    assert result["undo"] == "Duplicate 1 node"


def test_ctrl_d_duplicates_on_the_board(qtbot: QtBot, make_window: Callable[..., object]) -> None:
    w = _window(make_window, qtbot)
    board = _template(w)
    board.view.setFocus()
    first = next(iter(board.melody.nodes))
    board.editor.set_selection([first])
    n = len(board.melody.nodes)
    qtbot.keyClick(board.view.viewport(), Qt.Key.Key_D, Qt.KeyboardModifier.ControlModifier)
    assert len(board.melody.nodes) == n + 1
    assert board.editor.undo_stack.undoText() == "Duplicate 1 node"


def test_edit_menu_acts_on_the_text_box_that_has_the_focus(
    qtbot: QtBot, make_window: Callable[..., object]
) -> None:
    w = _window(make_window, qtbot)
    board = _template(w)
    node = next(iter(board.melody.nodes))
    board.editor.set_selection([node])
    properties = w.properties_widget
    assert properties is not None
    name = properties.field_widget("name")
    assert isinstance(name, QLineEdit)
    before = name.text()
    name.setFocus()
    qtbot.waitUntil(name.hasFocus)
    name.setSelection(0, 3)
    n = len(board.melody.nodes)
    w.action_map["edit.delete"].trigger()  # Edit ▸ Delete, or the command palette
    assert len(board.melody.nodes) == n  # the node stays
    assert name.text() == before[3:]
    palette = w.palette_widget
    assert isinstance(palette, PaletteWidget)
    palette.search.setFocus()
    qtbot.waitUntil(palette.search.hasFocus)
    palette.search.setText("spl")
    w.action_map["edit.select_all"].trigger()
    assert palette.search.selectedText() == "spl"
    assert board.selected_node_ids() == [node]  # not every node of the board


def test_toggle_breakpoint_applies_what_is_being_typed_first(
    qtbot: QtBot, make_window: Callable[..., object]
) -> None:
    w = _window(make_window, qtbot)
    board = _template(w)
    node = next(iter(board.melody.nodes))
    board.editor.set_selection([node])
    properties = w.properties_widget
    assert properties is not None
    name = properties.field_widget("name")
    assert isinstance(name, QLineEdit)
    name.setFocus()
    qtbot.waitUntil(name.hasFocus)
    name.setText("Typed, no Enter")
    w.action_map["run.toggle_breakpoint"].trigger()  # F9
    assert board.melody.nodes[node].breakpoint
    assert board.melody.nodes[node].name == "Typed, no Enter"
    assert name.text() == "Typed, no Enter"


def test_a_palette_entry_activated_adds_a_node_in_view_without_covering_the_last(
    qtbot: QtBot, make_window: Callable[..., object]
) -> None:
    w = _window(make_window, qtbot)
    board = _template(w)
    palette = w.palette_widget
    assert isinstance(palette, PaletteWidget)
    item = palette.item_for("op.split")
    assert item is not None
    before = set(board.melody.nodes)
    for _ in range(2):
        palette.tree.setCurrentItem(item)
        palette.tree.setFocus()
        qtbot.keyClick(palette.tree, Qt.Key.Key_Return)
    added = [i for i in board.melody.nodes if i not in before]
    assert [board.melody.nodes[i].type_id for i in added] == ["op.split", "op.split"]
    # each lands where it covers no other node (and no other node's ports), near the middle
    items = board.view.board_scene.node_items
    for node_id in added:
        rect = items[node_id].sceneBoundingRect()
        others = [item for other, item in items.items() if other != node_id]
        assert not any(rect.intersects(o.sceneBoundingRect()) for o in others), node_id
        view_rect = board.view.mapToScene(board.view.viewport().rect()).boundingRect()
        assert view_rect.intersects(rect)
    assert board.selected_node_ids() == [added[1]]
