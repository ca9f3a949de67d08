"""The Run menu over a real conductor, with operator melodies (no model, no extension child).

Resume After Edit must continue the run whose output the user saw and edited, and show it on a
board of that run's melody, whatever tab is in front.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from symphony.conductor.conductor import RunResult
from symphony.ui.main_window import MainWindow
from symphony.ui.text_editor import ArtifactSource, TextEditorTab
from symphony.workflow import Melody
from tests.ui.test_run import in_qt, states


def _melody(name: str, template: str) -> Melody:
    m = Melody(name)
    greet = m.create_node("op.template", config={"template": template})
    split = m.create_node("op.split", config={"separator": " "}, position=(200.0, 0.0))
    m.connect(greet.id, "text", split.id, "text")
    return m


@pytest.fixture
def window(ops_window: Callable[[], MainWindow]) -> MainWindow:
    return ops_window()


def _run(window: MainWindow, action: str) -> RunResult:
    async def go() -> RunResult:
        window.action_map[action].trigger()
        run = window.runs.run
        assert run is not None
        return await run.wait()

    return in_qt(go)


def _saved(tab: TextEditorTab) -> int:
    """The version a tab opened from the Artifacts dock saved last."""
    assert isinstance(tab.source, ArtifactSource)
    return tab.source.artifact_id


def _edit(window: MainWindow, artifact_id: int, text: str) -> TextEditorTab:
    tab = window.open_artifact(artifact_id)
    assert tab is not None
    tab.editor.setPlainText(text)
    tab.save()
    return tab


def test_an_output_served_from_the_cache_is_resumed_in_the_run_that_showed_it(
    window: MainWindow,
) -> None:
    board = window.board_for_run(_melody("ops", "hello world"))
    assert board is not None
    first = _run(window, "run.all")
    assert first.status == "succeeded", first.detail
    shown = _run(window, "run.all")  # the template's output now comes from the store
    assert shown.status == "succeeded", shown.detail
    assert shown.node("n1").cached
    text = shown.node("n1").artifacts["text"]
    assert text == first.node("n1").artifacts["text"]  # whose produced_by names the first run
    conductor = window.runs.conductor
    assert conductor is not None
    first_record = conductor.record(first.run_id)

    _edit(window, text, "hello edited world")
    assert any(shown.run_id in line for line in window.log_view.lines()[-3:])
    resumed = _run(window, "run.resume")
    assert resumed.status == "succeeded", resumed.detail
    assert resumed.run_id == shown.run_id
    assert resumed.node("n2").attempts == 1
    assert window.pit is not None
    parts = window.pit.artifacts.get(resumed.node("n2").artifacts["parts"], actor="test")
    assert b"edited" in parts
    # the run that first computed the output keeps its history
    assert conductor.record(first.run_id) == first_record


def test_a_later_save_of_an_edit_goes_to_the_run_shown_last(window: MainWindow) -> None:
    board = window.board_for_run(_melody("ops", "hello world"))
    assert board is not None
    first = _run(window, "run.all")
    second = _run(window, "run.all")
    assert second.node("n1").cached
    tab = _edit(window, second.node("n1").artifacts["text"], "once edited")
    once = _saved(tab)
    assert _run(window, "run.resume").run_id == second.run_id
    window.tabs.setCurrentWidget(board)
    third = _run(window, "run.all")  # served the original from the store again
    assert third.node("n1").cached
    tab.editor.setPlainText("twice edited")  # from the first edit's tab: an edit of an edit
    tab.save()
    resumed = _run(window, "run.resume")
    # the board shows the third run, whose output the edit traces back to; the runs before
    # keep what they held
    assert resumed.run_id == third.run_id
    assert resumed.node("n1").artifacts["text"] == _saved(tab)
    assert window.pit is not None
    dag = window.pit.dag
    assert dag.node(second.run_id, "n1").artifacts == [once]
    assert dag.node(first.run_id, "n1").artifacts == [first.node("n1").artifacts["text"]]


def test_resume_after_edit_with_the_run_board_closed_shows_the_run_on_its_own_melody(
    window: MainWindow,
) -> None:
    board = window.board_for_run(_melody("ops", "hello world"))
    assert board is not None
    result = _run(window, "run.all")
    assert result.status == "succeeded", result.detail
    window.close_tab(window.tabs.indexOf(board), ask=False)
    # another melody, with the same node ids, is in front
    other = window.board_for_run(_melody("other", "good bye"))
    assert other is not None
    _edit(window, result.node("n1").artifacts["text"], "hello again")
    window.tabs.setCurrentWidget(other)

    resumed = _run(window, "run.resume")
    assert resumed.run_id == result.run_id
    assert resumed.status == "succeeded", resumed.detail
    assert not other.view.board_scene.run_states
    shown_on = window.run_board
    assert shown_on is not None
    assert shown_on is not other
    assert shown_on.melody.name == "ops"
    assert window.current_board() is shown_on
    assert states(shown_on)["n2"] == "succeeded"


def test_resume_after_edit_of_a_pruned_run_says_so_and_keeps_the_edit(
    window: MainWindow,
) -> None:
    assert window.board_for_run(_melody("ops", "hello world")) is not None
    result = _run(window, "run.all")
    conductor = window.runs.conductor
    assert conductor is not None
    tab = _edit(window, result.node("n1").artifacts["text"], "kept")
    conductor.prune_runs(0)
    assert window.runs.resume_after_edit() is None
    assert "cannot be resumed" in window.statusBar().currentMessage()
    assert not window.action_map["run.resume"].isEnabled()
    assert window.pit is not None
    assert window.pit.artifacts.get(_saved(tab), actor="test") == b"kept"


def test_runs_get_the_settings_budget_and_the_status_bar_shows_it(window: MainWindow) -> None:
    import dataclasses

    from symphony.ui.run_controller import RunController

    board = window.board_for_run(_melody("ops", "hello world"))
    assert board is not None
    label = window.runs.budget_label
    assert label.isHidden()  # no run yet
    window._settings_applied(dataclasses.replace(window.prefs, budget=1.5))
    first = _run(window, "run.all")
    assert first.status == "succeeded", first.detail
    conductor = window.runs.conductor
    assert conductor is not None
    assert window.runs.run is not None
    assert window.runs.run.options.budget == 1.5
    assert conductor.record(first.run_id)["options"]["budget"] == 1.5
    assert not label.isHidden()
    assert label.text() == "Budget: 0 of 1.5 spent"  # operators cost nothing
    # Run Selected and Run From Here carry it too
    board.select_node("n1")
    for what in ("selected", "from_here"):
        assert RunController.options_for(what, board, budget=2.0).budget == 2.0

    # Raised in the Settings, it is the budget of a resume from the app
    window._settings_applied(dataclasses.replace(window.prefs, budget=3.0))
    _edit(window, first.node("n1").artifacts["text"], "hello again")
    resumed = _run(window, "run.resume")
    assert resumed.run_id == first.run_id
    assert resumed.status == "succeeded", resumed.detail
    assert window.runs.run.options.budget == 3.0
    assert conductor.record(first.run_id)["options"]["budget"] == 3.0
    assert label.text() == "Budget: 0 of 3 spent"

    # No limit: the run has none and the label goes
    window._settings_applied(dataclasses.replace(window.prefs, budget=None))
    window.tabs.setCurrentWidget(board)
    unlimited = _run(window, "run.all")
    assert conductor.record(unlimited.run_id)["options"]["budget"] is None
    assert label.isHidden()
