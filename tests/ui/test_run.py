"""Running melodies from the window: the real conductor, extensions and embedded model.

Each test drives the Run actions as a user would (``QAction.trigger``) on the qasync loop the
app uses, and reads the outcome off the board, the timeline and Problems.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from PySide6.QtWidgets import QToolBar
from pytestqt.qtbot import QtBot

from symphony.conductor import events as ev
from symphony.extension_host.host import ExtensionHost
from symphony.pit import Pit
from symphony.ui.board_tab import BoardTab
from symphony.ui.main_window import MainWindow, build_registry

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

T = TypeVar("T")
AI = "symphony.ai_instrument"


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    (ws / "src").mkdir(parents=True)
    (ws / "src" / "main.py").write_text("def mean(xs):\n    return sum(xs) / len(xs)\n")
    return ws


@pytest.fixture
def window(
    make_window: Callable[..., object], qtbot: QtBot, workspace: Path
) -> Iterator[MainWindow]:
    w = make_window()
    assert isinstance(w, MainWindow)
    host = ExtensionHost(None, w, workspace=workspace)
    registry, errors = build_registry(host.manifests.values())
    assert errors == []
    w.set_host(host)
    w.set_registry(registry)
    w.set_pit(Pit.in_memory())
    with qtbot.waitExposed(w):
        w.show()
    yield w
    host.shutdown()


def in_qt(make: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine on a qasync loop over the test's QApplication (as the app does)."""
    from PySide6.QtWidgets import QApplication

    from symphony.qtloop import QtEventLoop

    loop = QtEventLoop(QApplication.instance())
    try:
        return loop.run_until_complete(make())
    finally:
        loop.close()
        asyncio.set_event_loop(None)


async def until(predicate: Callable[[], object], timeout: float = 300.0) -> None:
    end = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < end, "condition not met in time"
        await asyncio.sleep(0.02)


def states(board: BoardTab) -> dict[str, str]:
    scene = board.view.board_scene
    return {nid: s.state for nid, s in scene.run_states.items()}


def test_run_all_reaches_succeeded_on_the_board(window: MainWindow, workspace: Path) -> None:
    board = window.new_from_template("review_file")
    assert board is not None
    seen: list[ev.RunEvent] = []

    async def scenario() -> Any:
        window.action_map["run.all"].trigger()
        run = window.runs.run
        assert run is not None
        window.runs.conductor.subscribe(seen.append)  # type: ignore[union-attr]
        await until(lambda: window.runs.last_result is not None)
        # The Artifacts dock catches up with the run's outputs and its record by itself.
        names = window.artifacts.artifact_names
        await until(lambda: any(n.startswith("out/") for n in names()), timeout=10)
        window.artifacts.show_records.setChecked(True)
        assert f"run/{run.run_id}" in names()
        return window.runs.last_result

    result = in_qt(scenario)
    assert result.status == "succeeded", result.detail
    assert states(board) == {"read": "succeeded", "review": "succeeded", "write": "succeeded"}
    assert (workspace / "REVIEW.md").read_text().strip()
    assert window.run_state == ev.RUN_SUCCEEDED
    assert any(isinstance(e, ev.NodeToken) for e in seen)  # tokens streamed to the preview
    assert set(window.timeline.chart.model.rows) >= {"read", "review", "write"}
    # run it again: unchanged model nodes come from the store; file nodes always run
    result2 = in_qt(lambda: _run_again(window))
    assert result2.node("review").cached
    assert not result2.node("read").cached
    # the Settings' "Resumable runs" reaches the conductor, now and after a change
    conductor = window.runs.conductor
    assert conductor is not None
    assert conductor.keep_runs == window.prefs.keep_runs
    window._settings_applied(dataclasses.replace(window.prefs, keep_runs=7))
    assert conductor.keep_runs == 7


async def _run_again(window: MainWindow) -> Any:
    window.runs.last_result = None
    window.action_map["run.all"].trigger()
    await until(lambda: window.runs.last_result is not None)
    return window.runs.last_result


def test_a_breakpoint_pauses_and_step_continues(window: MainWindow) -> None:
    board = window.new_from_template("review_file")
    assert board is not None
    assert board.select_node("review")
    window.action_map["run.toggle_breakpoint"].trigger()
    assert board.melody.node("review").breakpoint

    async def scenario() -> Any:
        window.action_map["run.all"].trigger()
        await until(lambda: window.run_state == ev.RUN_PAUSED)
        assert states(board)["read"] == "succeeded"
        assert states(board)["review"] == "paused"
        assert window.action_map["run.step"].isEnabled()
        assert not window.action_map["run.pause"].isEnabled()
        window.action_map["run.step"].trigger()  # review runs, then the run pauses again
        await until(lambda: states(board).get("review") == "succeeded")
        await until(lambda: window.run_state == ev.RUN_PAUSED)
        assert states(board).get("write") == "paused"
        window.action_map["run.step"].trigger()
        await until(lambda: window.runs.last_result is not None)
        return window.runs.last_result

    result = in_qt(scenario)
    assert result.status == "succeeded", result.detail


def test_continue_after_a_breakpoint_runs_to_the_end_without_pausing(window: MainWindow) -> None:
    board = window.new_from_template("review_file")
    assert board is not None
    assert board.select_node("review")
    window.action_map["run.toggle_breakpoint"].trigger()
    cont = window.action_map["run.continue"]
    assert not cont.isEnabled()  # no run
    pauses: list[ev.RunStateChanged] = []

    def on_event(e: ev.RunEvent) -> None:
        if isinstance(e, ev.RunStateChanged) and e.state == ev.RUN_PAUSED:
            pauses.append(e)

    async def scenario() -> Any:
        window.action_map["run.all"].trigger()
        assert window.runs.conductor is not None
        window.runs.conductor.subscribe(on_event)
        await until(lambda: window.run_state == ev.RUN_PAUSED)
        assert states(board)["review"] == "paused"
        assert cont.isEnabled()
        # the palette offers it while paused (it lists the enabled actions)
        window.command_palette.refilter("continue")
        assert window.command_palette.labels()[0] == "Continue"
        seen = len(pauses)
        cont.trigger()
        assert window.run_state == ev.RUN_RUNNING
        assert not cont.isEnabled()
        await until(lambda: window.runs.last_result is not None)
        # the breakpoint pause was the only one: Continue does not step node by node
        assert len(pauses) == seen == 1
        return window.runs.last_result

    result = in_qt(scenario)
    assert result.status == "succeeded", result.detail
    assert states(board) == {"read": "succeeded", "review": "succeeded", "write": "succeeded"}
    assert not cont.isEnabled()  # the run ended


def test_continue_is_only_enabled_while_paused(window: MainWindow) -> None:
    cont = window.action_map["run.continue"]
    assert cont.shortcut().toString() == "F8"
    for state in (ev.RUN_RUNNING, ev.RUN_SUCCEEDED, ev.RUN_FAILED, ev.RUN_INTERRUPTED):
        window.set_run_state(state)
        assert not cont.isEnabled(), state
    window.set_run_state(ev.RUN_PAUSED)
    assert cont.isEnabled()
    assert window.action_map["run.step"].isEnabled()


def test_run_menu_mnemonics_are_unique_and_continue_sits_with_pause(window: MainWindow) -> None:
    from symphony.ui.main_window import menu_actions

    menus = {a.text(): a.menu() for a in window.menuBar().actions()}
    actions = [a for a in menu_actions(menus["&Run"]) if not a.isSeparator()]
    keys = [a.text().replace("&&", "").split("&")[1][0].lower() for a in actions]
    assert len(keys) == len(set(keys)), [a.text() for a in actions]
    names = [a.objectName() for a in actions]
    assert names.index("run.continue") == names.index("run.pause") + 1
    toolbar = window.findChild(QToolBar, "main_toolbar")
    assert toolbar is not None
    assert window.action_map["run.continue"] in toolbar.actions()


def test_killing_the_instrument_mid_run_retries_and_the_window_stays_responsive(
    window: MainWindow,
) -> None:
    board = window.new_from_template("review_file")
    assert board is not None
    killed: list[int] = []
    ticks: list[float] = []

    async def heartbeat() -> None:  # the GUI thread must keep turning while a node runs
        while window.runs.last_result is None:
            ticks.append(time.monotonic())
            await asyncio.sleep(0.05)

    async def scenario() -> Any:
        window.action_map["run.all"].trigger()
        beat = asyncio.ensure_future(heartbeat())
        host = window.host
        assert host is not None
        await until(lambda: states(board).get("review") == "running" and host.pid(AI))
        await asyncio.sleep(0.3)
        pid = host.pid(AI)
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        killed.append(pid)
        await until(lambda: window.runs.last_result is not None)
        await beat
        return window.runs.last_result

    result = in_qt(scenario)
    assert killed
    assert result.status == "succeeded", result.detail
    assert result.node("review").attempts == 2
    assert "retry" in result.node("review").recoveries[0]
    assert window.host is not None
    assert window.host.pid(AI) != killed[0]
    # A freeze detector, not a speed measure: the GUI thread kept turning through the crash,
    # the restart and the retry (a blocking wait anywhere would stall it for the whole run).
    gaps = [b - a for a, b in zip(ticks, ticks[1:], strict=False)]
    assert len(gaps) > 10
    assert max(gaps) < 5.0
    # the recovery is shown in Problems with the strategy and why
    assert any("retry" in text for text in window.problems.messages())


def _run_action(window: MainWindow, action: str) -> Any:
    """Trigger a run action and return the result of the run it starts, once it has ended."""

    async def go() -> Any:
        window.runs.last_result = None
        window.action_map[action].trigger()
        await until(lambda: window.runs.last_result is not None)
        return window.runs.last_result

    return in_qt(go)


def test_edit_an_output_and_resume_downstream(window: MainWindow, workspace: Path) -> None:
    board = window.new_from_template("review_file")
    assert board is not None

    result = _run_action(window, "run.all")
    assert result.status == "succeeded", result.detail
    findings = result.node("review").artifacts["findings"]
    assert not window.action_map["run.resume"].isEnabled()
    # the user opens the reviewer's findings from the Artifacts dock, edits and saves them
    tab = window.open_artifact(findings)
    assert tab is not None
    tab.editor.setPlainText("Edited by hand: check for an empty list.")
    tab.save()
    assert window.action_map["run.resume"].isEnabled()

    resumed = _run_action(window, "run.resume")
    assert resumed.status == "succeeded", resumed.detail
    assert resumed.run_id == result.run_id
    assert resumed.node("review").attempts == 0  # kept, not run again
    assert resumed.node("write").attempts == 1
    assert (workspace / "REVIEW.md").read_text() == "Edited by hand: check for an empty list."
    assert states(board)["review"] == "succeeded"


def test_resume_after_two_saves_of_an_output_uses_the_last_one(
    window: MainWindow, workspace: Path
) -> None:
    board = window.new_from_template("review_file")
    assert board is not None

    result = _run_action(window, "run.all")
    assert result.status == "succeeded", result.detail
    findings = result.node("review").artifacts["findings"]
    tab = window.open_artifact(findings)
    assert tab is not None
    tab.editor.setPlainText("First correction.")
    tab.save()
    # the second save derives from the first edit (made by the UI, not by a node)
    tab.editor.setPlainText("Second correction: the one that counts.")
    tab.save()
    assert window.pit is not None
    store = window.pit.artifacts
    second = tab.source.artifact_id
    assert store.info(store.info(second).inputs[0]).produced_by is None
    assert window.action_map["run.resume"].isEnabled()

    resumed = _run_action(window, "run.resume")
    assert resumed.status == "succeeded", resumed.detail
    assert resumed.run_id == result.run_id
    assert resumed.node("review").artifacts["findings"] == second
    assert resumed.node("write").attempts == 1
    assert (workspace / "REVIEW.md").read_text() == "Second correction: the one that counts."


def test_settings_endpoints_become_models_with_keys_in_the_keyring() -> None:
    from symphony.ui import settings as st
    from symphony.ui.run_controller import catalog_from

    prefs = st.Preferences(
        endpoints=[st.Endpoint("work", "http://127.0.0.1:8080/v1", "qwen", "openai_api_key.work")]
    )
    spec = catalog_from(prefs).resolve("work")
    assert spec.provider == {
        "kind": "openai",
        "base_url": "http://127.0.0.1:8080/v1",
        "model": "qwen",
        "api_key_secret": "openai_api_key.work",
    }
    assert "api_key" not in spec.provider  # the key itself never leaves the keyring here
    assert catalog_from(prefs).resolve("").provider is None  # the embedded default stays
