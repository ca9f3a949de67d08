"""The Runs dock: the run history of the window's Pit, resuming and showing past runs."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QMessageBox
from pytestqt.qtbot import QtBot

from symphony.conductor import events as ev
from symphony.conductor.conductor import RunOptions
from symphony.conductor.history import format_duration
from symphony.extension_host.host import ExtensionHost
from symphony.pit import Pit
from symphony.ui.main_window import MainWindow, build_registry
from symphony.ui.runs_view import format_when
from symphony.workflow import Melody
from tests.conductor.conftest import Script, ScriptedExecutor, conductor_for, make_registry
from tests.conftest import TEST_KEY
from tests.ui.test_run import in_qt, states, until


def _chain(name: str, types: list[str]) -> Melody:
    m = Melody(name)
    prev = None
    for i, t in enumerate(types):
        node = m.create_node(t, position=(200.0 * i, 0.0))
        if prev is not None:
            m.connect(prev.id, "out", node.id, "x")
        prev = node
    return m


def _ops() -> Melody:
    m = Melody("ops")
    greet = m.create_node("op.template", config={"template": "hello world"})
    split = m.create_node("op.split", config={"separator": " "}, position=(200.0, 0.0))
    m.connect(greet.id, "text", split.id, "text")
    return m


def _history(path: Path) -> tuple[str, str, str]:
    """A Pit with three runs: one that succeeded, one stopped halfway, one stopped at once."""
    pit = Pit.open(path, key=TEST_KEY)
    registry = make_registry()
    ex = ScriptedExecutor(registry)
    ex.scripts["n2"] = Script(delay=5.0)
    c = conductor_for(pit, registry, ex)

    async def go() -> tuple[str, str, str]:
        done = await c.run(_chain("done", ["t.inline", "t.inline"]), RunOptions())
        r = c.start(_chain("halfway", ["t.inline", "t.work", "t.inline"]), RunOptions())
        while not r.reports() or r.reports()[0].state not in (ev.SUCCEEDED, ev.CACHED):
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.1)  # n2 has started its 5 s
        r.cancel(interrupted=True)
        await r.wait()
        early = c.start(_ops(), RunOptions())
        early.cancel(interrupted=True)  # before any node ran
        await early.wait()
        return done.run_id, r.run_id, early.run_id

    try:
        return asyncio.run(go())
    finally:
        pit.close()


def test_the_dock_lists_runs_announces_interrupted_ones_and_shows_one_on_a_board(
    make_window: Callable[..., object], tmp_path: Path, qtbot: QtBot
) -> None:
    done, halfway, early = _history(tmp_path / "pit")
    w = make_window()
    assert isinstance(w, MainWindow)
    w.set_registry(make_registry())
    w.set_pit(Pit.open(tmp_path / "pit", key=TEST_KEY))
    view = w.runs_view
    assert view.run_ids() == [early, halfway, done]
    assert view.count_label.text() == "3 runs"
    assert "2 interrupted runs can be resumed" in w.statusBar().currentMessage()
    assert any("halfway" in m and "ops" in m for m in w.log_view.lines())

    item = view.tree.topLevelItem(1)
    assert item is not None
    assert [item.text(c) for c in (1, 2, 4)] == ["halfway", "interrupted ↻", "1/3"]
    assert view.select_run(halfway)
    assert view.resume_button.isEnabled()
    assert view.show_button.isEnabled()
    assert "interrupted" in view.heading.text()
    assert "resumable" in view.heading.text()
    rows = [
        (r.text(0), r.text(1))
        for r in (view.nodes.topLevelItem(i) for i in range(view.nodes.topLevelItemCount()))
        if r is not None
    ]
    # n1 came from the store (the "done" run made the same output), as its event log tells;
    # n2 was stopped while it ran; what hangs on it was not run (the log says so; the DAG
    # Tracker holds it skipped until a resume re-arms it)
    assert rows == [("n1", "cached"), ("n2", "cancelled"), ("n3", "cancelled")]

    # a node's output is a double-click away in the Artifacts dock
    first = view.nodes.topLevelItem(0)
    assert first is not None
    output = int(first.text(5).lstrip("#"))
    w.artifacts.filter.setText("no such thing")  # even when the filter hides it
    view.nodes.itemDoubleClicked.emit(first, 0)
    assert w.artifacts.current_artifact() == output

    # the filter matches melody, status, id and detail; the count says how many it shows
    view.filter.setText("INTERRUPTED")
    assert view.visible_run_ids() == [early, halfway]
    assert view.count_label.text() == "2 of 3 runs"
    view.filter.setText("done succeeded")
    assert view.visible_run_ids() == [done]
    view.filter.clear()
    assert view.count_label.text() == "3 runs"
    # the context menu offers what the buttons do, and the id for a terminal
    menu = view.menu_for(halfway)
    actions = {a.text(): a for a in menu.actions() if a.text()}
    assert list(actions) == ["Resume", "Show on Board", "Copy Run ID", "Copy Resume Command"]
    assert actions["Resume"].isEnabled()
    actions["Copy Resume Command"].trigger()
    copied = QGuiApplication.clipboard().text()
    assert copied == f"symphony run --resume {halfway} --data-dir {tmp_path / 'pit'}"
    assert not view.menu_for(done).actions()[0].isEnabled()  # nothing to resume

    assert view.select_run(done)
    assert not view.resume_button.isEnabled()  # it succeeded: nothing to continue
    assert view.tree.currentItem() is not None
    assert view.tree.currentItem().text(2) == "succeeded"  # type: ignore[union-attr]

    view.select_run(halfway)
    view.show_button.click()
    board = w.current_board()
    assert board is not None
    assert board.title == "halfway"
    assert not board.is_modified()
    assert states(board) == {"n1": "cached", "n2": "cancelled", "n3": "cancelled"}
    # a node's preview shows the end of its output, as it did when the run streamed it
    assert board.view.board_scene.run_states["n1"].preview.startswith('["n1"')
    # the timeline draws the run as the Pit kept it
    model = w.timeline.chart.model
    assert (model.run_id, model.run_state) == (halfway, "interrupted")
    assert [model.rows[n].state for n in ("n1", "n2", "n3")] == [
        "cached",
        "cancelled",
        "cancelled",
    ]
    # showing it again reuses the board of the same melody
    view.tree.itemDoubleClicked.emit(view.tree.currentItem(), 0)
    assert w.tabs.count() == 1


def test_a_past_run_is_drawn_attempt_by_attempt_even_once_it_is_pruned(
    make_window: Callable[..., object], tmp_path: Path
) -> None:
    pit = Pit.open(tmp_path / "pit", key=TEST_KEY)
    registry = make_registry()
    ex = ScriptedExecutor(registry)
    ex.scripts["n2"] = Script(fail=2)  # two transient failures, then it works
    c = conductor_for(pit, registry, ex)
    r = asyncio.run(c.run(_chain("flaky", ["t.inline", "t.work", "t.inline"]),
                          RunOptions(retry_backoff=0.0)))  # fmt: skip
    assert r.status == "succeeded"
    assert c.prune_runs(0) == [r.run_id]  # its progress is gone: only record and log remain
    pit.close()

    w = make_window()
    assert isinstance(w, MainWindow)
    w.set_registry(make_registry())
    w.set_pit(Pit.open(tmp_path / "pit", key=TEST_KEY))
    view = w.runs_view
    assert view.select_run(r.run_id)
    rows = [
        (x.text(0), x.text(1), x.text(3))
        for x in (view.nodes.topLevelItem(i) for i in range(view.nodes.topLevelItemCount()))
        if x is not None
    ]
    assert rows == [("n1", "succeeded", "1"), ("n2", "succeeded", "3: retry, retry"),
                    ("n3", "succeeded", "1")]  # fmt: skip

    view.show_button.click()
    board = w.current_board()
    assert board is not None
    assert states(board) == {"n1": "succeeded", "n2": "succeeded", "n3": "succeeded"}
    model = w.timeline.chart.model
    assert (model.run_id, model.run_state) == (r.run_id, "succeeded")
    n2 = model.rows["n2"]
    running = [sp for sp in n2.spans if sp.kind == ev.RUNNING]
    assert [(sp.attempt, sp.outcome) for sp in running] == [
        (1, "failed"),
        (2, "failed"),
        (3, "succeeded"),
    ]
    assert [m.strategy for m in n2.markers] == ["retry", "retry"]
    assert n2.measured  # its cost per attempt came with it
    assert not any("pruned" in line for line in w.log_view.lines())


def test_a_run_is_shown_on_its_own_file_not_on_a_look_alike_and_outputs_preview_live(
    make_window: Callable[..., object], tmp_path: Path
) -> None:
    w = make_window()
    assert isinstance(w, MainWindow)
    w.set_host(ExtensionHost(None, w, workspace=tmp_path))
    w.set_registry(make_registry())
    w.set_pit(Pit.open(tmp_path / "pit", key=TEST_KEY))
    fruit = w.board_for_run(_ops())  # "ops": hello world → split
    assert fruit is not None
    assert w.save_tab(fruit, tmp_path / "fruit.melody")

    async def scenario() -> Any:
        w.action_map["run.all"].trigger()
        assert w.runs.run is not None
        return await w.runs.run.wait()

    result = in_qt(scenario)
    assert result.status == "succeeded"
    # operators stream nothing: their boxes show the end of their output, not "no output yet"
    shown = fruit.view.board_scene.run_states
    assert shown["n1"].preview == "hello world"
    assert shown["n2"].preview.startswith('["hello"')
    w.close_tab(w.tabs.indexOf(fruit), ask=False)

    # a look-alike in another file: same name (a copy) and node ids
    twin = w.board_for_run(_ops())
    assert twin is not None
    assert w.save_tab(twin, tmp_path / "vehicles.melody")
    twin.editor.melody.set_name("fruit")  # (its first save named it "vehicles")
    shown_on = w.show_run(result.run_id)
    assert shown_on is not None
    assert shown_on is not twin
    assert shown_on.path == tmp_path / "fruit.melody"  # the file the run was started from
    assert states(shown_on) == {"n1": "succeeded", "n2": "succeeded"}
    assert not twin.view.board_scene.run_states


def test_old_interrupted_runs_are_listed_but_not_announced_at_every_start(
    make_window: Callable[..., object], tmp_path: Path
) -> None:
    _done, halfway, early = _history(tmp_path / "pit")
    pit = Pit.open(tmp_path / "pit", key=TEST_KEY)
    registry = make_registry()
    later = asyncio.run(
        conductor_for(pit, registry, ScriptedExecutor(registry)).run(_chain("later", ["t.inline"]))
    )
    pit.close()
    w = make_window()
    assert isinstance(w, MainWindow)
    w.set_pit(Pit.open(tmp_path / "pit", key=TEST_KEY))
    assert w.runs_view.run_ids()[0] == later.run_id
    assert [s.run_id for s in w.runs_view.resumable()] == [early, halfway]
    assert "interrupted" not in w.statusBar().currentMessage()
    assert not any("can be resumed" in line for line in w.log_view.lines())


def test_resume_from_the_dock_runs_on_to_the_end_and_the_row_follows(
    ops_window: Callable[[], MainWindow], tmp_path: Path, qtbot: QtBot
) -> None:
    _done, _halfway, early = _history(tmp_path / "pit")
    w = ops_window()
    view = w.runs_view
    seen: list[tuple[str, str, bool]] = []

    async def scenario() -> Any:
        w.show_run_history()
        assert view.select_run(early)
        view.resume_button.click()
        assert w.runs.run is not None
        assert w.runs.run.run_id == early
        assert w.runs.resume_run(early) is None  # one run at a time
        assert w.runs.conductor is not None

        def row(e: ev.RunEvent) -> None:  # after the window has seen the event
            if isinstance(e, ev.RunStateChanged):
                s = view.summary(early)
                assert s is not None
                seen.append((e.state, s.status, view.resume_button.isEnabled()))

        w.runs.conductor.subscribe(row)
        await until(lambda: w.runs.last_result is not None, timeout=60)
        return w.runs.last_result

    result = in_qt(scenario)
    assert result.status == "succeeded", result.detail
    assert seen == [("running", "running", False), ("succeeded", "succeeded", False)]
    summary = view.summary(early)
    assert summary is not None
    assert summary.status == "succeeded"
    assert not summary.resumable
    # the selected run's nodes followed it (read again at most every 300 ms)
    qtbot.waitUntil(lambda: view.nodes.topLevelItemCount() == 2, timeout=3000)
    listed = [view.nodes.topLevelItem(i).text(1) for i in range(2)]  # type: ignore[union-attr]
    assert listed == ["succeeded", "succeeded"]
    assert view.tree.topLevelItem(0).text(2) == "succeeded"  # type: ignore[union-attr]
    board = w.current_board()
    assert board is not None
    assert board.title == "ops"
    assert states(board) == {"n1": "succeeded", "n2": "succeeded"}
    assert w.run_state == ev.RUN_SUCCEEDED


def test_a_pit_that_failed_to_open_is_named(make_window: Callable[..., object]) -> None:
    w = make_window()
    assert isinstance(w, MainWindow)
    w._on_pit_opened(None, "the key file is world-readable")
    assert w.runs_view.count_label.text() == "No runs: the key file is world-readable"
    assert w.runs_view.run_ids() == []


def test_times_read_as_a_person_scans_a_list() -> None:
    now = 1_790_000_000.0  # 2026-09-21
    assert len(format_when(now - 60, now)) == 8  # today: the time only
    assert format_when(now - 40 * 86400, now)[2] == " "  # this year: day and month
    assert format_when(now - 400 * 86400, now).startswith("2025-")
    assert [format_duration(s) for s in (None, 0.25, 12.34, 185, 7300)] == [
        "—",
        "250 ms",
        "12.3 s",
        "3 min 05 s",
        "2 h 01 min",
    ]


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_run_cut_short_by_closing_the_window_is_resumed_in_the_next_one(
    make_window: Callable[..., object],
    tmp_path: Path,
    qtbot: QtBot,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The user quits during a run; the next start offers it, and Resume finishes it."""
    ws = tmp_path / "ws"
    (ws / "src").mkdir(parents=True)
    (ws / "src" / "main.py").write_text("def mean(xs):\n    return sum(xs) / len(xs)\n")

    def window() -> tuple[MainWindow, ExtensionHost]:
        w = make_window()
        assert isinstance(w, MainWindow)
        host = ExtensionHost(None, w, workspace=ws)
        registry, errors = build_registry(host.manifests.values())
        assert errors == []
        w.set_host(host)
        w.set_registry(registry)
        w.set_pit(Pit.open(tmp_path / "pit", key=TEST_KEY))
        return w, host

    first, _ = window()
    board = first.new_from_template("review_file")
    assert board is not None
    first.save_tab(board, ws / "review.melody")  # saved: quitting asks nothing

    async def quit_mid_run() -> str:
        first.action_map["run.all"].trigger()
        run = first.runs.run
        assert run is not None
        await until(lambda: states(board).get("review") == "running", timeout=120)
        asked: list[str] = []

        def answer(button: QMessageBox.StandardButton) -> Callable[..., object]:
            return lambda _parent, _title, text, *_a: asked.append(text) or button

        monkeypatch.setattr(QMessageBox, "question", answer(QMessageBox.StandardButton.Cancel))
        assert not first.close()  # the user thinks again: the run goes on
        assert not run.done
        monkeypatch.setattr(QMessageBox, "question", answer(QMessageBox.StandardButton.Yes))
        assert first.close()  # File → Quit, confirmed: the Pit closes with the run unfinished
        assert len(asked) == 2
        # (its first save named the melody after its file)
        assert "A run of “review” is in progress" in asked[0]
        await until(lambda: run.done, timeout=30)  # its cancelled tasks wind down
        return run.run_id

    run_id = in_qt(quit_mid_run)
    assert not (ws / "REVIEW.md").exists()

    second, host = window()
    view = second.runs_view
    assert view.run_ids()[0] == run_id
    summary = view.summary(run_id)
    assert summary is not None
    assert (summary.status, summary.resumable) == ("interrupted", True)
    assert summary.source == str(ws / "review.melody")
    assert "1 interrupted run can be resumed" in second.statusBar().currentMessage()

    async def resume() -> Any:
        assert view.select_run(run_id)
        view.resume_button.click()
        await until(lambda: second.runs.last_result is not None)
        return second.runs.last_result

    try:
        result = in_qt(resume)
    finally:
        host.shutdown()
    assert result.status == "succeeded", result.detail
    assert result.node("read").attempts == 0  # done before the quit: not run again
    assert (ws / "REVIEW.md").read_text().strip()
    resumed = second.current_board()
    assert resumed is not None
    assert resumed.path == ws / "review.melody"  # the file the run started from
    assert set(states(resumed).values()) == {"succeeded"}


def test_a_file_edited_since_the_run_is_not_shown_as_the_melody_as_it_ran(
    ops_window: Callable[[], MainWindow], tmp_path: Path
) -> None:
    import json

    w = ops_window()
    board = w.board_for_run(_ops())
    assert board is not None
    path = tmp_path / "ops.melody"
    assert w.save_tab(board, path)

    async def scenario() -> Any:
        w.action_map["run.all"].trigger()
        assert w.runs.run is not None
        return await w.runs.run.wait()

    result = in_qt(scenario)
    assert result.status == "succeeded", result.detail
    w.close_tab(w.tabs.indexOf(board), ask=False)

    def edit_file(change: Callable[[dict[str, Any]], None]) -> None:
        doc = json.loads(path.read_text())
        change(next(n for n in doc["nodes"] if n["id"] == "n1"))
        path.write_text(json.dumps(doc))

    # moved and retitled only: still the melody that ran, so its file is opened
    edit_file(lambda n1: n1.update(position=[0.0, 300.0], name="Greeting"))
    shown = w.show_run(result.run_id)
    assert shown is not None
    assert shown.path == path
    w.close_tab(w.tabs.indexOf(shown), ask=False)
    # same node ids, other config: not the melody as it ran
    edit_file(lambda n1: n1["config"].update(template="good bye"))
    shown = w.show_run(result.run_id)
    assert shown is not None
    assert shown.path is None  # an unsaved copy of the melody as it ran
    assert shown.melody.node("n1").config["template"] == "hello world"
    assert states(shown) == {"n1": "succeeded", "n2": "succeeded"}
    assert json.loads(path.read_text())["nodes"][0]["config"]["template"] == "good bye"
    # and an open board of the edited file is not taken for it either
    w.close_tab(w.tabs.indexOf(shown), ask=False)
    edited = w.open_path(path)
    assert edited is not None
    shown = w.show_run(result.run_id)
    assert shown is not edited
    assert not edited.view.board_scene.run_states  # type: ignore[attr-defined]


def test_the_resume_command_names_this_pit_and_its_key_file(qtbot: QtBot, tmp_path: Path) -> None:
    import shlex

    from symphony.ui.runs_view import RunsView

    key_file = tmp_path / "my key"
    key_file.write_text(TEST_KEY.hex())
    key_file.chmod(0o600)
    pit = Pit.open(tmp_path / "a pit", key=TEST_KEY)
    view = RunsView()
    qtbot.addWidget(view)
    view.set_pit(pit)
    view.key_file = str(key_file)
    # pasted in a terminal in any folder, it resumes the run on this Pit, not the default one
    words = shlex.split(view.resume_command("20261122-1"))
    assert words[:4] == ["symphony", "run", "--resume", "20261122-1"]
    assert words[words.index("--data-dir") + 1] == str(tmp_path / "a pit")
    assert words[words.index("--key-file") + 1] == str(key_file)
    view.set_pit(None)
    pit.close()
