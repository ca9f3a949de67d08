"""The main window: actions, shortcuts, enabled states, tabs, recent files, layout."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QSettings, Qt
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import QMessageBox
from pytestqt.qtbot import QtBot

from symphony.conductor import events as ev
from symphony.ui import settings as st
from symphony.ui.board_tab import BoardTab
from symphony.ui.main_window import MainWindow, menu_actions
from symphony.ui.text_editor import TextEditorTab

# Built inside the tests: a QKeySequence needs the QApplication.
EXPECTED_SHORTCUTS: dict[str, QKeySequence.StandardKey | str] = {
    "file.new": QKeySequence.StandardKey.New,
    "file.open": QKeySequence.StandardKey.Open,
    "file.save": QKeySequence.StandardKey.Save,
    "edit.undo": QKeySequence.StandardKey.Undo,
    "edit.redo": QKeySequence.StandardKey.Redo,
    "view.command_palette": "Ctrl+Shift+P",
    "view.fit": "Ctrl+0",
    "run.all": "F5",
    "run.stop": "Shift+F5",
    "run.pause": "F6",
    "run.continue": "F8",
    "run.step": "F10",
    "run.toggle_breakpoint": "F9",
}
MENU_ITEMS = {
    "&File": ["New Melody", "New from Template", "Open", "Open Workspace Folder", "Save",
              "Save As", "Close Tab"],
    "&Edit": ["Undo", "Redo", "Cut", "Copy", "Paste", "Delete", "Select All", "Settings"],
    "&View": ["Zoom In", "Zoom Out", "Fit Melody", "Light Theme", "Dark Theme", "Files",
              "Palette", "Properties", "Artifacts", "Timeline", "Problems", "Runs", "Log"],
    "&Run": ["Run All", "Run Selected", "Run From Here", "Stop", "Pause", "Continue", "Step",
             "Toggle Breakpoint", "Run History"],
    "&Help": ["About Symphony AIDE"],
}  # fmt: skip


def _window(make_window: Callable[..., object], **kw: Any) -> MainWindow:
    w = make_window(**kw)
    assert isinstance(w, MainWindow)
    return w


def test_window_opens_offscreen_with_menus_docks_and_status(
    qtbot: QtBot, make_window: Callable[..., object]
) -> None:
    w = _window(make_window)
    with qtbot.waitExposed(w):
        w.show()
    assert w.windowHandle().isExposed()
    menus = {a.text(): a.menu() for a in w.menuBar().actions()}
    for menu_name, items in MENU_ITEMS.items():
        texts = [a.text().replace("&", "").rstrip(".…") for a in menu_actions(menus[menu_name])]
        for item in items:
            assert item in texts, f"{menu_name}: {item} missing from {texts}"
    assert set(w.docks) == {
        "files", "palette", "properties", "artifacts", "timeline", "problems", "runs", "log"
    }  # fmt: skip
    assert w.run_label.text() == "Idle"
    assert w.findChild(type(w.run_label), "position_status") is not None


def test_shortcuts_are_bound(make_window: Callable[..., object]) -> None:
    w = _window(make_window)
    for key, seq in EXPECTED_SHORTCUTS.items():
        assert w.action_map[key].shortcut() == QKeySequence(seq), key
    shortcuts = [
        a.shortcut().toString() for a in w.action_map.values() if not a.shortcut().isEmpty()
    ]
    assert len(shortcuts) == len(set(shortcuts)), f"a shortcut is bound twice: {shortcuts}"


def test_run_actions_follow_the_run_state(make_window: Callable[..., object]) -> None:
    w = _window(make_window)
    x = w.action_map
    # No board: nothing to run, nothing running.
    assert not x["run.all"].isEnabled()
    assert not any(x[k].isEnabled() for k in ("run.stop", "run.pause", "run.step"))
    w.set_run_state(ev.RUN_RUNNING)
    assert x["run.stop"].isEnabled()
    assert x["run.pause"].isEnabled()
    assert not x["run.step"].isEnabled()
    assert not x["run.all"].isEnabled()
    assert w.run_label.text() == "Running…"
    w.set_run_state(ev.RUN_PAUSED)
    assert x["run.step"].isEnabled()
    assert x["run.stop"].isEnabled()
    assert not x["run.pause"].isEnabled()
    w.set_run_state(ev.RUN_FAILED, "node n2 failed")
    assert not x["run.stop"].isEnabled()
    assert w.run_label.text() == "Run failed: node n2 failed"


def test_command_palette_shortcut_filters_and_triggers(
    qtbot: QtBot, make_window: Callable[..., object]
) -> None:
    w = _window(make_window)
    with qtbot.waitExposed(w):
        w.show()
    qtbot.keyClick(
        w, Qt.Key.Key_P, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier
    )
    palette = w.command_palette
    assert palette.isVisible()
    qtbot.keyClicks(palette.edit, "dark thm")
    assert palette.labels()[0] == "Dark Theme"
    assert "Run All" not in palette.labels()  # disabled actions are not offered
    qtbot.keyClick(palette.edit, Qt.Key.Key_Return)
    assert not palette.isVisible()
    assert w.action_map["view.theme.dark"].isChecked()
    assert st.settings().value("ui/theme") == "dark"
    w.set_theme("light")


def test_command_palette_fuzzy_ranking() -> None:
    from symphony.ui.command_palette import fuzzy_score

    assert fuzzy_score("sva", "Save As") is not None
    assert fuzzy_score("xyz", "Save As") is None
    # A prefix match at word starts beats a scattered one.
    assert fuzzy_score("op", "Open") > fuzzy_score("op", "Stop")  # type: ignore[operator]


def test_text_tab_edit_and_save_with_shortcut(
    qtbot: QtBot, tmp_path: Path, make_window: Callable[..., object]
) -> None:
    w = _window(make_window)
    with qtbot.waitExposed(w):
        w.show()
    f = tmp_path / "notes.md"
    f.write_text("# Title\n")
    tab = w.open_path(f)
    assert isinstance(tab, TextEditorTab)
    assert tab.editor.language == "markdown"
    assert w.tabs.tabText(w.tabs.currentIndex()) == "notes.md"
    tab.editor.setFocus()
    tab.editor.moveCursor(tab.editor.textCursor().MoveOperation.End)
    qtbot.keyClicks(tab.editor, "more")
    assert tab.is_modified()
    assert w.tabs.tabText(w.tabs.currentIndex()).startswith("● ")
    assert w.action_map["edit.undo"].isEnabled()
    qtbot.keyClick(tab.editor, Qt.Key.Key_S, Qt.KeyboardModifier.ControlModifier)
    assert f.read_text() == "# Title\nmore"
    assert not tab.is_modified()
    assert w.tabs.tabText(w.tabs.currentIndex()) == "notes.md"
    # Opening the same file again brings its tab to front instead of a second tab.
    assert w.open_path(f) is tab
    assert w.tabs.count() == 1


def test_failed_save_names_the_file_and_keeps_the_edits(
    tmp_path: Path, make_window: Callable[..., object]
) -> None:
    w = _window(make_window)
    folder = tmp_path / "ro"
    folder.mkdir()
    f = folder / "a.py"
    f.write_text("x = 1\n")
    tab = w.open_path(f)
    assert isinstance(tab, TextEditorTab)
    tab.editor.selectAll()
    tab.editor.insertPlainText("x = 2\n")
    # Something else put a folder where the file was (root ignores permission bits, so a
    # read-only folder would not make the save fail here).
    f.unlink()
    f.mkdir()
    (f / "keep.txt").write_text("mine")
    assert not w.save_current()
    assert (f / "keep.txt").read_text() == "mine"
    assert [p.name for p in folder.iterdir()] == ["a.py"]  # no temporary file left behind
    assert tab.is_modified()
    assert any("a.py" in line and "ERROR" in line for line in w.log_view.lines())


def test_close_tab_asks_about_unsaved_edits(
    tmp_path: Path, make_window: Callable[..., object], monkeypatch: pytest.MonkeyPatch
) -> None:
    w = _window(make_window)
    f = tmp_path / "a.json"
    f.write_text("{}")
    tab = w.open_path(f)
    assert isinstance(tab, TextEditorTab)
    tab.editor.selectAll()
    tab.editor.insertPlainText('{"a": 1}')
    answers = [QMessageBox.StandardButton.Cancel, QMessageBox.StandardButton.Save]
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: answers.pop(0))
    assert not w.close_tab(0)
    assert w.tabs.count() == 1
    assert w.close_tab(0)
    assert w.tabs.count() == 0
    assert f.read_text() == '{"a": 1}'


def test_open_missing_file_reports_it(tmp_path: Path, make_window: Callable[..., object]) -> None:
    w = _window(make_window)
    assert w.open_path(tmp_path / "nope.txt") is None
    assert any("nope.txt" in line for line in w.log_view.lines())
    assert w.tabs.count() == 0


def test_recent_files(tmp_path: Path, make_window: Callable[..., object]) -> None:
    w = _window(make_window)
    assert not w.action_map["file.clear_recent"].isEnabled()  # nothing to clear yet
    files = []
    for i in range(st.MAX_RECENT + 2):
        f = tmp_path / f"f{i}.txt"
        f.write_text(str(i))
        files.append(f)
        w.open_path(f)
    recent = st.recent_files()
    assert recent[0] == str(files[-1].resolve())
    assert len(recent) == st.MAX_RECENT
    assert str(files[0].resolve()) not in recent
    w.open_path(files[5])  # reopening moves it first, without a duplicate
    assert st.recent_files()[0] == str(files[5].resolve())
    assert len(set(st.recent_files())) == st.MAX_RECENT
    w.recent_menu.aboutToShow.emit()
    entries = [a for a in w.recent_menu.actions() if a.text() == str(files[3].resolve())]
    assert entries
    while w.tabs.count():
        w.close_tab(0)
    entries[0].trigger()
    assert isinstance(w.current_tab(), TextEditorTab)
    assert w.action_map["file.clear_recent"].isEnabled()
    w.action_map["file.clear_recent"].trigger()
    assert st.recent_files() == []
    assert not w.action_map["file.clear_recent"].isEnabled()


def test_layout_is_restored(qtbot: QtBot, make_window: Callable[..., object]) -> None:
    w = _window(make_window)
    with qtbot.waitExposed(w):
        w.show()
    w.resize(760, 600)  # the offscreen screen is small; the docks set a minimum size
    size = (w.width(), w.height())
    assert size != (1400, 860)
    w.docks["artifacts"].hide()
    w.docks["log"].setFloating(True)
    w.close()
    stored = QSettings(
        QSettings.Format.IniFormat, QSettings.Scope.UserScope, st.ORGANIZATION, st.APPLICATION
    )
    assert stored.value("window/state") is not None
    again = _window(make_window)
    with qtbot.waitExposed(again):
        again.show()
    assert (again.width(), again.height()) == size
    assert again.docks["artifacts"].isHidden()
    assert again.docks["log"].isFloating()


def test_problems_show_recovery_and_select_the_node(qtbot: QtBot) -> None:
    from symphony.ui.log_view import ProblemsView

    view = ProblemsView()
    qtbot.addWidget(view)
    view.add_event(ev.RunStateChanged("r1", 1.0, ev.RUN_RUNNING))
    view.add_event(ev.NodeStateChanged("r1", 2.0, "gen", ev.FAILED, 1, "smollm2", "timeout"))
    view.add_event(
        ev.RecoveryChosen("r1", 2.1, "gen", "timeout", "deadline", "retry",
                          "the error is transient and 2 attempts are left", 1)
    )  # fmt: skip
    # One row per failed attempt: its recovery completes it.
    assert view.messages() == [
        "gen failed (attempt 1, deadline): timeout — recovery: retry, because the error is "
        "transient and 2 attempts are left"
    ]
    row = view.topLevelItem(0)
    assert row is not None
    assert row.text(0) == "warning"  # recovered: the run goes on
    # The last attempt: the abort may be decided before the failure is announced.
    view.add_event(
        ev.RecoveryChosen(
            "r1", 3.0, "gen", "timeout", "deadline", "abort", "abort: no retries left", 2
        )
    )
    view.add_event(ev.NodeStateChanged("r1", 3.0, "gen", ev.FAILED, 2, "smollm2", "timeout"))
    assert len(view.messages()) == 2
    assert view.messages()[1].endswith("recovery: abort, because no retries left")
    last = view.topLevelItem(1)
    assert last is not None
    assert last.text(0) == "error"
    # A failure with no recovery decision keeps its own row.
    view.add_event(ev.NodeStateChanged("r1", 4.0, "write", ev.FAILED, 1, "", "disk full"))
    assert view.messages()[2] == "write failed (attempt 1): disk full"
    with qtbot.waitSignal(view.sig_run_node_activated) as sig:
        view.itemDoubleClicked.emit(last, 1)
    assert sig.args == ["r1", "gen"]  # a run's row: the run's board, not the one in front
    view.add_event(ev.RunStateChanged("r2", 9.0, ev.RUN_RUNNING))
    assert view.messages() == []


def test_problems_list_validation_issues(qtbot: QtBot) -> None:
    from symphony.registry import default_registry
    from symphony.ui.log_view import ProblemsView
    from symphony.workflow import Melody, validate

    melody = Melody("m")
    melody.create_node("no.such_type", "Mystery")
    view = ProblemsView()
    qtbot.addWidget(view)
    view.set_validation(validate(melody, default_registry()))
    assert any("unknown node type 'no.such_type'" in m for m in view.messages())
    view.set_validation([])
    assert view.messages() == []


def test_python_logging_reaches_the_log_dock(
    qtbot: QtBot, make_window: Callable[..., object]
) -> None:
    import logging

    w = _window(make_window)
    logging.getLogger("symphony.test").warning("disk almost full")
    qtbot.waitUntil(lambda: any("disk almost full" in line for line in w.log_view.lines()))
    line = next(line for line in w.log_view.lines() if "disk almost full" in line)
    assert "WARNING" in line
    assert "symphony.test" in line


def test_new_melodies_are_told_apart_until_saved_under_their_own_names(
    tmp_path: Path, make_window: Callable[..., object]
) -> None:
    from tests.conductor.conftest import make_registry

    w = _window(make_window)
    w.set_registry(make_registry())
    boards = [w.new_melody() for _ in range(3)]
    names = [b.melody.name for b in boards if b is not None]
    assert names == ["Untitled melody", "Untitled melody 2", "Untitled melody 3"]
    first = boards[0]
    assert first is not None
    assert w.save_tab(first, tmp_path / "fruit.melody")
    assert first.melody.name == "fruit"  # runs and outputs now go by the file's name
    assert w.tabs.tabText(w.tabs.indexOf(first)) == "fruit.melody"
    again = w.new_melody()
    assert again is not None
    assert again.melody.name == "Untitled melody"  # free again


def test_open_tabs_follow_a_renamed_or_deleted_file(
    tmp_path: Path, make_window: Callable[..., object]
) -> None:
    from tests.conductor.conftest import make_registry

    w = _window(make_window)
    w.set_registry(make_registry())
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "a.md").write_text("alpha\n")
    text = w.open_path(folder / "a.md")
    assert isinstance(text, TextEditorTab)
    board = w.new_melody()
    assert board is not None
    assert w.save_tab(board, folder / "m.melody")
    # the folder is renamed (as the Files dock does it): both tabs follow
    (folder).rename(tmp_path / "kept")
    w.follow_rename(str(folder), str(tmp_path / "kept"))
    assert text.source.path == tmp_path / "kept" / "a.md"  # type: ignore[union-attr]
    assert board.path == tmp_path / "kept" / "m.melody"
    assert w.tabs.tabText(w.tabs.indexOf(text)) == "a.md"
    text.editor.setPlainText("alpha beta\n")
    assert w.save_tab(text)
    assert (tmp_path / "kept" / "a.md").read_text() == "alpha beta\n"
    assert not folder.exists()  # the old name did not come back
    assert any("a.md was renamed" in line for line in w.log_view.lines())
    # the file is deleted: the tab keeps the text and counts as unsaved
    (tmp_path / "kept" / "a.md").unlink()
    w.follow_delete(str(tmp_path / "kept" / "a.md"))
    assert text.is_modified()
    assert w.tabs.tabText(w.tabs.indexOf(text)).startswith("● ")
    assert not board.is_modified()  # only the deleted file's tab
    assert any("a.md was deleted" in line for line in w.log_view.lines())


def test_a_missing_workspace_folder_is_reported_not_ignored(
    tmp_path: Path, make_window: Callable[..., object]
) -> None:
    from symphony.extension_host.host import ExtensionHost

    (tmp_path / "no_extensions").mkdir()
    missing = tmp_path / "no_such_workspace"
    w = _window(make_window, workspace=missing)
    w.set_host(ExtensionHost([tmp_path / "no_extensions"], w))
    w._start_workspace()  # what start_services runs once the host exists
    said = f"workspace {missing}: no such folder"
    assert any(said in line for line in w.log_view.lines())
    assert said in w.statusBar().currentMessage()
    box = w.findChild(QMessageBox, "error_box")
    assert box is not None
    assert box.text() == said  # as loud as a missing FILE on the command line
    assert w.files.workspace is None
    # the last session's folder that has gone since: a line in the Log, no dialog
    st.settings().setValue("workspace/last", str(tmp_path / "gone"))
    quiet = _window(make_window)
    quiet.set_host(ExtensionHost([tmp_path / "no_extensions"], quiet))
    quiet._start_workspace()
    assert any(
        f"the last workspace {tmp_path / 'gone'} was not reopened: no such folder" in line
        for line in quiet.log_view.lines()
    )
    assert quiet.findChild(QMessageBox, "error_box") is None


def test_a_disabled_file_explorer_is_shown_as_such_and_can_be_restarted(
    qtbot: QtBot, tmp_path: Path, make_window: Callable[..., object]
) -> None:
    import os
    import signal

    from symphony.extension_host.discovery import bundled_dir
    from symphony.extension_host.host import DISABLED, READY, ExtensionHost, HostConfig
    from symphony.ui.files_view import FILE_EXPLORER

    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "a.txt").write_text("a")
    w = _window(make_window)
    host = ExtensionHost([bundled_dir()], w, config=HostConfig(backoff_base=0.05))
    w.set_host(host)
    w.set_workspace(ws)
    qtbot.waitUntil(lambda: w.files.names("") == ["a.txt"], timeout=20_000)
    restart = w.action_map[f"extensions.restart.{FILE_EXPLORER}"]
    assert restart.text() == "Restart File Explorer"
    assert not restart.isEnabled()
    assert w.extensions_button.isHidden()
    # SIGKILLed until the breaker opens
    for _ in range(host.config.breaker_crashes):
        qtbot.waitUntil(lambda: host.state(FILE_EXPLORER) == READY, timeout=20_000)
        killed = host.pid(FILE_EXPLORER)
        assert killed is not None
        os.kill(killed, signal.SIGKILL)

        def gone(old: int = killed) -> bool:
            return host.pid(FILE_EXPLORER) != old

        qtbot.waitUntil(gone, timeout=20_000)
    qtbot.waitUntil(lambda: host.state(FILE_EXPLORER) == DISABLED, timeout=20_000)
    why = f"File Explorer is disabled: {host.last_error(FILE_EXPLORER)}"
    assert "crashed 3 times" in why
    # the status bar counts it and says why; its button offers the restart
    assert "2 extensions (1 disabled)" in w.services_label.text()
    assert why in w.services_label.toolTip()
    assert not w.extensions_button.isHidden()
    assert w.extensions_button.text() == "File Explorer disabled"
    assert w.extensions_button.menu().actions() == [restart]
    assert restart.isEnabled()
    w.extensions_menu.aboutToShow.emit()
    texts = [a.text() for a in w.extensions_menu.actions()]
    assert "Restart File Explorer" in texts
    assert any(t.startswith("File Explorer is disabled: crashed 3 times") for t in texts)
    # the Files dock says so instead of an empty tree, also after the folder is opened again
    for _ in range(2):
        assert w.files.tree.isHidden()
        assert not w.files.hint.isHidden()
        assert "The File Explorer is disabled" in w.files.hint.text()
        assert "Restart File Explorer" in w.files.hint.text()
        w.set_workspace(ws)
    # restarted: it lists the folder again and watches it
    restart.trigger()
    qtbot.waitUntil(lambda: host.state(FILE_EXPLORER) == READY, timeout=20_000)
    qtbot.waitUntil(lambda: w.files.names("") == ["a.txt"], timeout=20_000)
    (ws / "b.txt").write_text("b")
    qtbot.waitUntil(lambda: w.files.names("") == ["a.txt", "b.txt"], timeout=20_000)
    assert not w.files.tree.isHidden()
    assert w.files.hint.isHidden()
    assert w.files.hint.text().startswith("No folder open")
    assert w.extensions_button.isHidden()
    assert not restart.isEnabled()
    assert "disabled" not in w.services_label.text()
    assert any("File Explorer restarted" in line for line in w.log_view.lines())


def _two_boards(w: MainWindow) -> tuple[BoardTab, BoardTab]:
    """Boards of two melodies whose nodes have the same ids (n1 → n2)."""
    from symphony.workflow import Melody
    from tests.conductor.conftest import make_registry

    w.set_registry(make_registry())
    boards = []
    for name in ("Chain", "Review"):
        m = Melody(name)
        first = m.create_node("op.template", config={"template": name})
        second = m.create_node("op.split", config={"separator": " "}, position=(200.0, 0.0))
        m.connect(first.id, "text", second.id, "text")
        board = w.board_for_run(m)
        assert board is not None
        boards.append(board)
    return boards[0], boards[1]


def test_a_run_whose_board_was_closed_paints_no_other_board(
    make_window: Callable[..., object],
) -> None:
    w = _window(make_window)
    chain, review = _two_boards(w)
    w.attach_run(chain)
    w.handle_run_event(ev.RunStateChanged("r", 1.0, ev.RUN_RUNNING))
    w.handle_run_event(ev.NodeStateChanged("r", 1.0, "n1", ev.RUNNING))
    assert w.close_tab(w.tabs.indexOf(chain), ask=False)
    assert w.current_board() is review
    for e in [
        ev.NodeStateChanged("r", 2.0, "n1", ev.SUCCEEDED),
        ev.NodeToken("r", 2.0, "n2", "tok"),
        ev.NodeProgress("r", 2.1, "n2", 0.5, "half"),
        ev.NodeStateChanged("r", 3.0, "n2", ev.SUCCEEDED),
        ev.RunStateChanged("r", 3.0, ev.RUN_SUCCEEDED),
    ]:
        w.handle_run_event(e)
    assert not review.view.board_scene.run_states
    assert w.run_label.text() == "Run succeeded"  # the run itself is still followed
    assert "n2" in w.timeline.chart.model.rows


def test_the_artifacts_node_view_follows_the_current_board_and_its_melody(
    make_window: Callable[..., object],
) -> None:
    from symphony.pit import Pit

    w = _window(make_window)
    pit = Pit.in_memory()
    store = pit.artifacts
    for melody, run in (("Chain", "r1"), ("Review", "r2")):
        for node in ("n1", "n2"):
            store.put(f"out/{melody}/{node}/text", melody.encode(), kind="text",
                      produced_by=(run, node, "op"))  # fmt: skip
    w.set_pit(pit)
    everything = w.artifacts.artifact_names()
    assert len(everything) == 4
    chain, review = _two_boards(w)
    assert w.current_board() is review
    assert review.select_node("n2")
    assert w.artifacts.artifact_names() == ["out/Review/n2/text"]  # not Chain's n2
    assert not w.artifacts.scope.isHidden()
    w.tabs.setCurrentWidget(chain)  # nothing selected there
    assert w.artifacts.artifact_names() == everything
    assert w.artifacts.scope.isHidden()
    assert chain.select_node("n1")
    assert w.artifacts.artifact_names() == ["out/Chain/n1/text"]
    w.tabs.setCurrentWidget(review)  # its own selection again
    assert w.artifacts.artifact_names() == ["out/Review/n2/text"]
    w.tabs.setCurrentWidget(chain)
    assert w.close_tab(w.tabs.indexOf(chain), ask=False)
    assert w.artifacts.artifact_names() == ["out/Review/n2/text"]
    assert w.close_tab(w.tabs.indexOf(review), ask=False)
    assert w.artifacts.artifact_names() == everything


def test_what_is_opened_takes_the_keyboard_focus(
    qtbot: QtBot, make_window: Callable[..., object], tmp_path: Path
) -> None:
    from symphony.registry import default_registry

    w = _window(make_window)
    w.set_registry(default_registry())
    with qtbot.waitExposed(w):
        w.show()
    w.artifacts.filter.setFocus()  # as at start-up: a dock's box has the focus
    board = w.new_melody()
    assert isinstance(board, BoardTab)
    # Edit ▸ Delete and Select All act on the focused widget: that is now the new board
    assert w.focusWidget() is board.view
    text = tmp_path / "notes.txt"
    text.write_text("hello\n")
    tab = w.open_path(text)
    assert isinstance(tab, TextEditorTab)
    assert w.focusWidget() is tab.editor


def test_problems_and_timeline_select_nodes_on_the_board_they_are_about(
    make_window: Callable[..., object],
) -> None:
    w = _window(make_window)
    chain, review = _two_boards(w)  # both have nodes n1 → n2
    w.attach_run(chain)
    w.handle_run_event(ev.RunStateChanged("r", 1.0, ev.RUN_RUNNING))
    w.handle_run_event(ev.NodeStateChanged("r", 1.0, "n2", ev.RUNNING))
    w.handle_run_event(ev.NodeStateChanged("r", 2.0, "n2", ev.FAILED, 1, "", "boom"))
    w.tabs.setCurrentWidget(review)
    # a run failure's row: the run's board, though another melody is in front
    row = next(
        item
        for item in (w.problems.topLevelItem(i) for i in range(w.problems.topLevelItemCount()))
        if item is not None and "boom" in item.text(1)
    )
    w.problems.itemDoubleClicked.emit(row, 1)
    assert w.current_board() is chain
    assert chain.selected_node_ids() == ["n2"]
    # a validation row: the melody that was validated, the board in front
    w.tabs.setCurrentWidget(review)
    w.select_node("n1")
    assert w.current_board() is review
    assert review.selected_node_ids() == ["n1"]
    # the run's board closed: a timeline bar selects nothing elsewhere, and says why
    review.editor.set_selection([])
    assert w.close_tab(w.tabs.indexOf(chain), ask=False)
    w.timeline.chart.sig_node_activated.emit("n2")
    assert review.selected_node_ids() == []
    assert any("the board the run was shown on is closed" in x for x in w.log_view.lines())
