"""The main window around real boards: templates, undo/redo, edit actions, run events."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from symphony.conductor import events as ev
from symphony.extension_host.discovery import discover
from symphony.ui.board_tab import BoardTab
from symphony.ui.main_window import MainWindow, build_registry
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
