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


def test_editing_a_paused_run_says_the_run_is_the_melody_as_it_started(
    window: MainWindow,
) -> None:
    board = window.new_from_template("review_file")
    assert board is not None
    board.melody.set_breakpoint("review", True)

    async def scenario() -> Any:
        window.action_map["run.all"].trigger()
        await until(lambda: window.run_state == ev.RUN_PAUSED)
        board.melody.set_breakpoint("write", True)  # counts at once, and is no edit to warn of
        assert window.statusBar().currentMessage() == ""
        assert board.select_node("write")
        window.action_map["edit.delete"].trigger()
        assert "write" not in board.melody.nodes
        message = window.statusBar().currentMessage()
        assert "goes on with the melody as it started" in message
        window.action_map["run.continue"].trigger()
        await until(lambda: window.run_state == ev.RUN_PAUSED and states(board)["review"] ==
                    "succeeded")  # fmt: skip
        window.action_map["run.continue"].trigger()
        await until(lambda: window.runs.last_result is not None)
        await asyncio.sleep(0.05)
        # "goes on" would be false now: the notice goes with the run
        assert "goes on with the melody" not in window.statusBar().currentMessage()
        return window.runs.last_result

    result = in_qt(scenario)
    assert result.status == "succeeded", result.detail
    assert result.node("write").state == "succeeded"  # it ran: it was in the melody that started


def test_a_resumed_run_follows_the_breakpoints_of_the_board_that_shows_it(
    window: MainWindow,
) -> None:
    board = window.new_from_template("review_file")
    assert board is not None
    board.melody.set_breakpoint("review", True)

    async def scenario() -> Any:
        window.action_map["run.all"].trigger()
        await until(lambda: window.run_state == ev.RUN_PAUSED)
        first = window.runs.run
        assert first is not None
        window.action_map["run.stop"].trigger()
        await until(lambda: first.done)
        run = window.runs.resume_run(first.run_id)
        assert run is not None
        assert run.melody is not window.current_board().melody  # type: ignore[union-attr]
        await until(lambda: window.run_state == ev.RUN_PAUSED)  # at review again
        shown = window.current_board()
        assert shown is not None
        shown.melody.set_breakpoint("write", True)  # on the board, while the run waits
        window.action_map["run.continue"].trigger()
        await until(lambda: window.run_state == ev.RUN_PAUSED and states(shown).get("review")
                    == "succeeded")  # fmt: skip
        assert states(shown)["write"] == "paused"
        shown.melody.set_name("renamed")  # an edit of the resumed run's board is noticed too
        assert "goes on with the melody as it started" in window.statusBar().currentMessage()
        window.action_map["run.continue"].trigger()
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


def test_the_embedded_model_setting_decides_whether_runs_may_use_it() -> None:
    from symphony.conductor.models import EMBEDDED_MODEL
    from symphony.ui import settings as st
    from symphony.ui.run_controller import catalog_from

    remote = st.Endpoint("remote", "http://127.0.0.1:8080/v1", "qwen", "openai_api_key.r")
    on = catalog_from(st.Preferences(embedded_model=True, endpoints=[remote]))
    assert on.resolve("").id == EMBEDDED_MODEL
    off = catalog_from(st.Preferences(embedded_model=False, endpoints=[remote]))
    assert sorted(s.id for s in off) == ["remote"]
    assert "" not in off
    assert EMBEDDED_MODEL not in off
    with pytest.raises(KeyError, match=r"turned off in the Settings .*known: remote"):
        off.resolve("")


def test_an_endpoint_named_like_the_embedded_model_never_takes_its_place() -> None:
    from symphony.conductor.models import EMBEDDED_MODEL
    from symphony.ui import settings as st
    from symphony.ui.run_controller import catalog_from

    # Refused by the Settings; an older or hand-edited settings file may still hold one.
    clash = st.Endpoint(EMBEDDED_MODEL, "http://127.0.0.1:8080/v1", "qwen", "openai_api_key.c")
    assert catalog_from(st.Preferences(endpoints=[clash])).resolve("").provider is None
    off = catalog_from(st.Preferences(embedded_model=False, endpoints=[clash]))
    assert list(off) == []


def test_settings_changes_replace_the_models_of_the_runs(window: MainWindow) -> None:
    from symphony.conductor.models import EMBEDDED_MODEL
    from symphony.ui import settings as st

    conductor = window.runs._conductor()
    assert conductor is not None
    catalog = conductor.catalog
    remote = st.Endpoint("remote", "http://127.0.0.1:1/v1", "m", "openai_api_key.remote")
    window._settings_applied(dataclasses.replace(window.prefs, endpoints=[remote]))
    assert conductor.catalog.resolve("remote").provider["api_key_secret"] == (  # type: ignore[index]
        "openai_api_key.remote"
    )
    # renamed: only the new name is a model
    renamed = dataclasses.replace(remote, name="renamed")
    window._settings_applied(dataclasses.replace(window.prefs, endpoints=[renamed]))
    assert "renamed" in conductor.catalog
    assert "remote" not in conductor.catalog
    # removed: nothing resolves to its server or its key entry any more
    window._settings_applied(dataclasses.replace(window.prefs, endpoints=[]))
    assert [s.id for s in conductor.catalog] == [EMBEDDED_MODEL]
    with pytest.raises(KeyError, match="unknown model 'renamed'"):
        conductor.catalog.resolve("renamed")
    # the embedded model comes and goes with its check box
    window._settings_applied(dataclasses.replace(window.prefs, embedded_model=False))
    assert "" not in conductor.catalog
    window._settings_applied(dataclasses.replace(window.prefs, embedded_model=True))
    assert "" in conductor.catalog
    # one catalog throughout: the model tracker and the broker see the same models
    assert conductor.catalog is catalog
    assert window.runs._tracker.catalog is catalog


def test_with_the_embedded_model_off_a_run_that_needs_it_does_not_start(
    window: MainWindow,
) -> None:
    from symphony.conductor.models import EMBEDDED_MODEL

    board = window.new_from_template("review_file")  # its reviewer uses the default model
    assert board is not None
    window._settings_applied(dataclasses.replace(window.prefs, embedded_model=False))

    async def go() -> Any:
        window.action_map["run.all"].trigger()
        await asyncio.sleep(0)
        return window.runs.run

    assert in_qt(go) is None
    assert window.run_state == ev.RUN_FAILED
    message = window.statusBar().currentMessage()
    assert "node 'review'" in message, message
    assert "turned off in the Settings" in message, message
    assert window.pit is not None
    assert EMBEDDED_MODEL not in window.pit.pool  # the embedded model was never asked for


def test_a_live_run_shown_again_after_its_board_was_closed_paints_there(
    window: MainWindow,
) -> None:
    board = window.new_from_template("review_file")
    assert board is not None
    assert board.select_node("review")
    window.action_map["run.toggle_breakpoint"].trigger()

    async def scenario() -> BoardTab:
        window.action_map["run.all"].trigger()
        await until(lambda: window.run_state == ev.RUN_PAUSED)
        run_id = window.runs.run.run_id
        assert window.close_tab(window.tabs.indexOf(board), ask=False)
        again = window.show_run(run_id)  # Runs dock → Show on Board, while it is paused
        assert again is not None
        assert again is not board
        assert states(again)["read"] == "succeeded"
        window.action_map["run.continue"].trigger()
        await until(lambda: window.runs.last_result is not None)
        return again

    again = in_qt(scenario)
    assert window.runs.last_result.status == "succeeded"
    # the rest of the run was painted on the board it was shown on
    assert states(again)["write"] == "succeeded"


def test_settings_prices_become_the_models_prices() -> None:
    from symphony.ui import settings as st
    from symphony.ui.run_controller import catalog_from

    paid = st.Endpoint("paid", "https://api.example.com/v1", "m", "openai_api_key.p", 0.01, 0.6)
    free = st.Endpoint("free", "http://127.0.0.1:8080/v1", "m", "openai_api_key.f")
    catalog = catalog_from(st.Preferences(endpoints=[paid, free]))
    spec = catalog.resolve("paid")
    assert spec.price_per_call == 0.01
    assert spec.price_per_token == pytest.approx(0.6 / 1_000_000)
    assert (catalog.resolve("free").price_per_call, catalog.resolve("free").price_per_token) == (
        0.0,
        0.0,
    )
    embedded = catalog.resolve("")
    assert (embedded.price_per_call, embedded.price_per_token) == (0.0, 0.0)  # runs locally


def test_the_settings_budget_stops_calls_to_a_paid_endpoint_and_a_resume_takes_a_new_one(
    window: MainWindow,
) -> None:
    """Two calls at 0.3 against a budget of 0.5: the second never reaches the server."""
    import keyring

    from symphony.extension_host.host import KEYRING_SERVICE
    from symphony.ui import settings as st
    from symphony.workflow import Melody
    from tests.extensions.ai_instrument.peers import Scripted, ScriptedServer, sse

    answers = [Scripted(200, sse("A clear prompt.")), Scripted(200, sse("A summary."))]
    peer = ScriptedServer(answers)  # a loopback HTTP server: the provider's real sockets

    class _ListsItsModel(peer.server.RequestHandlerClass):  # type: ignore[name-defined,misc]
        def do_GET(self) -> None:  # noqa: N802 - the provider checks GET /models first
            body = b'{"data": [{"id": "peer-model"}]}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    peer.server.RequestHandlerClass = _ListsItsModel
    with peer as server:
        keyring.set_password(KEYRING_SERVICE, "openai_api_key.paid", "sk-test-budget")
        paid = st.Endpoint("paid", server.base_url, "peer-model", "openai_api_key.paid", 0.3)
        window._settings_applied(dataclasses.replace(window.prefs, endpoints=[paid], budget=0.5))
        m = Melody("paid chain")
        enh = m.create_node("ai.prompt_enhancer", config={"prompt": "a todo app", "model": "paid"})
        summ = m.create_node("ai.summarizer", config={"model": "paid"}, position=(240.0, 0.0))
        m.connect(enh.id, "enhanced", summ.id, "text")
        board = window.board_for_run(m)
        assert board is not None

        result = _run_action(window, "run.all")
        assert result.status == "failed", result.detail
        assert result.node(enh.id).state == "succeeded", result.node(enh.id).error
        assert result.node(enh.id).cost == pytest.approx(0.3)
        failed = result.node(summ.id)
        assert failed.state == "failed"
        assert "the run's budget of 0.5 does not cover a call to 'paid'" in failed.error, (
            failed.error
        )
        assert "internal error" not in failed.error
        assert len(server.received) == 1  # refused before any request left
        assert window.run_state == ev.RUN_FAILED
        assert window.runs.budget_label.text() == "Budget: 0.3 of 0.5 spent"
        assert states(board)[summ.id] == "failed"

        # Raised in the Settings, a resume from the Runs dock runs on under it
        window._settings_applied(dataclasses.replace(window.prefs, budget=2.0))

        async def resume() -> Any:
            run = window.runs.resume_run(result.run_id)
            assert run is not None
            return await run.wait()

        resumed = in_qt(resume)
        assert resumed.status == "succeeded", resumed.detail
        assert resumed.node(summ.id).state == "succeeded"
        assert len(server.received) == 2
        assert window.runs.budget_label.text() == "Budget: 0.6 of 2 spent"


def test_a_run_resumes_in_its_own_workspace_after_asking(
    window: MainWindow, workspace: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from PySide6.QtWidgets import QMessageBox

    board = window.new_from_template("review_file")
    assert board is not None
    assert board.select_node("review")
    window.action_map["run.toggle_breakpoint"].trigger()

    async def stopped_at_the_breakpoint() -> str:
        window.action_map["run.all"].trigger()
        await until(lambda: window.run_state == ev.RUN_PAUSED)
        run_id = window.runs.run.run_id
        window.action_map["run.stop"].trigger()
        await until(lambda: window.runs.last_result is not None)
        return run_id

    run_id = in_qt(stopped_at_the_breakpoint)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    window.set_workspace(elsewhere)  # the user has opened another folder since
    asked: list[str] = []
    answer = [QMessageBox.StandardButton.Cancel]

    def question(*args: Any, **_kw: Any) -> QMessageBox.StandardButton:
        asked.append(args[2])
        return answer[0]

    monkeypatch.setattr(QMessageBox, "question", question)
    assert window.close_tab(window.tabs.indexOf(board), ask=False)
    assert window.runs.resume_run(run_id) is None  # cancelled: nothing runs, nothing written
    assert window.tabs.count() == 0  # asked before its melody was opened: no tab left behind
    assert str(workspace.resolve()) in asked[0]
    assert str(elsewhere.resolve()) in asked[0]
    answer[0] = QMessageBox.StandardButton.Open

    async def resumed() -> Any:
        window.runs.last_result = None
        assert window.runs.resume_run(run_id) is not None
        await until(lambda: window.run_state == ev.RUN_PAUSED)  # the breakpoint again
        window.action_map["run.continue"].trigger()
        await until(lambda: window.runs.last_result is not None)
        return window.runs.last_result

    result = in_qt(resumed)
    assert result.status == "succeeded", result.detail
    assert window.files.workspace == workspace.resolve()  # the run's folder was opened
    assert (workspace / "REVIEW.md").read_text().strip()
    assert not (elsewhere / "REVIEW.md").exists()
