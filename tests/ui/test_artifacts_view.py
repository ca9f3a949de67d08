"""The Artifacts dock over a real Pit, and editing an artifact into a new version."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pytestqt.qtbot import QtBot

from symphony.ui.artifacts_view import _ID, ArtifactsView
from symphony.ui.main_window import MainWindow
from symphony.ui.text_editor import ArtifactSource, TextEditorTab


def _fill(pit: Any) -> tuple[int, int, int]:
    store = pit.artifacts
    idea = store.put("idea", b"a todo app", kind="text", produced_by=("r1", "n1", "smollm2"))
    plan1 = store.put("plan", b'{"steps": 1}', kind="json", inputs=(idea,))
    plan2 = store.put("plan", b'{"steps": 2}', kind="json", inputs=(idea,))
    return idea, plan1, plan2


def test_lists_names_versions_quality_lineage_preview(qtbot: QtBot, pit: Any) -> None:
    idea, plan1, plan2 = _fill(pit)
    view = ArtifactsView()
    qtbot.addWidget(view)
    view.set_pit(pit)
    assert view.artifact_names() == ["idea", "plan"]
    top = view.tree.topLevelItem(1)
    assert top is not None
    assert top.text(3) == "2 versions"
    single = view.tree.topLevelItem(0)
    assert single is not None
    assert single.text(3) == "1 version"
    # Versions are made when their name is expanded (a Pit may hold tens of thousands).
    assert top.childCount() == 0
    top.setExpanded(True)
    assert top.childCount() == 2
    newest = top.child(0)
    assert newest is not None
    assert newest.text(0).startswith("v2")
    assert newest.text(2) == "1.00"  # no score given: the structure score
    assert "structure" in newest.toolTip(2)
    pit.artifacts.set_quality(plan1, semantics=0.25)  # a node's own score, as the conductor sets
    view.set_pit(pit)
    top = view.tree.topLevelItem(1)
    assert top is not None
    top.setExpanded(True)
    oldest = top.child(1)
    assert oldest is not None
    assert (oldest.text(2), oldest.toolTip(2)) == (
        "0.25",
        "the node's own score (what score conditions read)",
    )
    assert view.select_artifact(plan1)
    assert "plan</b> v1" in view.details.text()
    assert view.preview.toPlainText() == '{"steps": 1}'
    lineage = [view.lineage.item(i).text() for i in range(view.lineage.count())]
    assert lineage == [f"↑ from idea v1 (#{idea})"]
    assert view.select_artifact(idea)
    lineage = [view.lineage.item(i).text() for i in range(view.lineage.count())]
    assert lineage == [f"↓ to plan v1 (#{plan1})", f"↓ to plan v2 (#{plan2})"]
    # Jump along the lineage.
    item = view.lineage.item(1)
    assert item is not None
    view.lineage.itemDoubleClicked.emit(item)
    assert view.current_artifact() == plan2


def test_filters_by_text_and_by_node(qtbot: QtBot, pit: Any) -> None:
    _fill(pit)
    view = ArtifactsView()
    qtbot.addWidget(view)
    view.set_pit(pit)
    view.filter.setText("json")
    assert view.artifact_names() == ["plan"]
    view.filter.clear()
    view.show_node("n1")
    assert view.artifact_names() == ["idea"]
    view.show_node("")
    assert view.artifact_names() == ["idea", "plan"]


def test_binary_and_closed_pit(qtbot: QtBot, open_pit: Callable[..., Any]) -> None:
    p = open_pit()
    blob = p.artifacts.put("weights", bytes(range(256)) * 4, kind="binary")
    view = ArtifactsView()
    qtbot.addWidget(view)
    view.set_pit(p)
    view.select_artifact(blob)
    assert view.preview.toPlainText().startswith("00 01 02 03")
    p.close()
    view.refresh()
    assert view.artifact_names() == []
    assert "not open" in view.details.text()


def test_edit_an_artifact_stores_a_new_version(
    qtbot: QtBot, pit: Any, make_window: Callable[..., object]
) -> None:
    idea, plan1, plan2 = _fill(pit)
    w = make_window()
    assert isinstance(w, MainWindow)
    w.set_pit(pit)
    with qtbot.waitSignal(w.artifacts.sig_open_artifact):
        w.artifacts.select_artifact(plan2)
        w.artifacts.open_button.click()
    tab = w.current_tab()
    assert isinstance(tab, TextEditorTab)
    assert isinstance(tab.source, ArtifactSource)
    assert tab.editor.language == "json"
    assert w.tabs.tabText(w.tabs.currentIndex()) == "plan v2"
    tab.editor.selectAll()
    tab.editor.insertPlainText('{"steps": 3}')
    assert w.save_current()
    new_id = tab.source.artifact_id
    assert new_id not in (idea, plan1, plan2)
    info = pit.artifacts.info(new_id)
    assert (info.name, info.version, info.kind, list(info.inputs)) == ("plan", 3, "json", [plan2])
    assert pit.artifacts.get(new_id) == b'{"steps": 3}'
    assert pit.artifacts.get(plan2) == b'{"steps": 2}'  # the old version is untouched
    assert plan2 in pit.artifacts.ancestors(new_id)
    assert w.tabs.tabText(w.tabs.currentIndex()) == "plan v3"
    assert w.artifacts.current_artifact() == new_id


def test_catch_up_adds_what_was_stored_since_in_place(qtbot: QtBot, pit: Any) -> None:
    idea, plan1, plan2 = _fill(pit)
    store = pit.artifacts
    view = ArtifactsView()
    qtbot.addWidget(view)
    view.set_pit(pit)
    plan_row = view.tree.topLevelItem(1)
    assert plan_row is not None
    plan_row.setExpanded(True)
    assert view.select_artifact(plan1)
    plan3 = store.put("plan", b'{"steps": 3}', kind="json", inputs=(idea,))
    alpha = store.put("alpha", b"first by name", kind="text")
    store.put("cache/abc", b"{}", kind="json")  # the conductor's index: never listed
    view.catch_up()
    assert view.artifact_names() == ["alpha", "idea", "plan"]
    # The same row objects, updated: the selection and the expansion survive.
    assert view.tree.topLevelItem(2) is plan_row
    assert plan_row.text(3) == "3 versions"
    assert plan_row.isExpanded()
    assert [plan_row.child(i).data(0, _ID) for i in range(3)] == [plan3, plan2, plan1]
    assert view.current_artifact() == plan1
    assert view.select_artifact(alpha)
    view.catch_up()  # nothing new: nothing changes
    assert plan_row.text(3) == "3 versions"
    # The filters apply to what is added, as to what is listed.
    view.filter.setText("json")
    assert view.artifact_names() == ["plan"]
    store.put("notes", b"plain", kind="text")
    store.put("spec", b"{}", kind="json")
    view.catch_up()
    assert view.artifact_names() == ["plan", "spec"]


def test_the_first_outputs_replace_the_empty_store_message(qtbot: QtBot, pit: Any) -> None:
    view = ArtifactsView()
    qtbot.addWidget(view)
    view.set_pit(pit)
    assert "No artifacts yet" in view.details.text()
    pit.artifacts.put("cache/abc", b"{}", kind="json")  # not listed: still nothing to show
    view.catch_up()
    assert "No artifacts yet" in view.details.text()
    pit.artifacts.put("out/m/n/text", b"hello", kind="text")
    view.catch_up()
    assert view.details.text() == "<i>Select a version to see its lineage and content.</i>"


def test_selecting_a_version_of_a_collapsed_name_makes_its_rows(qtbot: QtBot, pit: Any) -> None:
    idea, plan1, plan2 = _fill(pit)
    view = ArtifactsView()
    qtbot.addWidget(view)
    view.set_pit(pit)
    assert view.select_artifact(plan1)
    assert "plan</b> v1" in view.details.text()
    assert not view.select_artifact(10_000)
    pit.artifacts.delete(plan2, actor="tester")
    view.refresh()
    assert not view.select_artifact(plan2)
    assert view.current_artifact() == plan1  # kept across the rebuild
    one = pit.artifacts.put("one", b"x", kind="text")
    view.catch_up()
    assert view.select_artifact(one)
    assert "text · 1 byte<br>" in view.details.text()


def test_run_records_are_listed_on_request(qtbot: QtBot, pit: Any) -> None:
    _fill(pit)
    store = pit.artifacts
    record = store.put("run/20261122-0000-ab", b'{"status": "succeeded"}', kind="json")
    store.put("melody/Idea", b"{}", kind="json")
    view = ArtifactsView()
    qtbot.addWidget(view)
    view.set_pit(pit)
    assert view.artifact_names() == ["idea", "plan"]
    store.put("fqg.trace/20261122-0000-ab", b"{}\n", kind="jsonl")
    view.catch_up()
    assert view.artifact_names() == ["idea", "plan"]
    view.show_records.setChecked(True)
    assert view.artifact_names() == [
        "fqg.trace/20261122-0000-ab",
        "idea",
        "melody/Idea",
        "plan",
        "run/20261122-0000-ab",
    ]
    view.show_records.setChecked(False)
    assert view.artifact_names() == ["idea", "plan"]
    # Asking for a record by id shows the records.
    assert view.select_artifact(record)
    assert view.show_records.isChecked()


def test_a_long_name_keeps_its_end_in_a_narrow_dock(qtbot: QtBot, pit: Any) -> None:
    name = "outputs/summarise-the-quarterly-report/" + "x" * 40 + "/n12.result"
    pit.artifacts.put(name, b"text", kind="text")
    view = ArtifactsView()
    qtbot.addWidget(view)
    view.set_pit(pit)
    view.resize(420, 400)
    view.show()
    qtbot.waitExposed(view)
    top = view.tree.topLevelItem(0)
    assert top is not None
    shown = view.tree.fontMetrics().elidedText(
        name, view.tree.textElideMode(), view.tree.columnWidth(0) - 30
    )
    # the name column takes the room the other columns leave, and a cut name still ends
    # with the node and port that tell it from its neighbours
    assert view.tree.columnWidth(0) > 150
    assert shown != name
    assert shown.endswith("n12.result")
    view.resize(900, 400)
    qtbot.waitUntil(lambda: view.tree.columnWidth(0) > 600)


def test_a_node_of_one_melody_lists_its_outputs_only_and_says_so(qtbot: QtBot, pit: Any) -> None:
    store = pit.artifacts
    chain = store.put("out/Chain/write/path", b"out/chain.md", kind="text",
                      produced_by=("r1", "write", "files.write"))  # fmt: skip
    review = store.put("out/Review/write/path", b"REVIEW.md", kind="text",
                       produced_by=("r2", "write", "files.write"))  # fmt: skip
    # an edit saved in the IDE names no producer: it is still a version of that output
    edited = store.put("out/Review/write/path", b"OTHER.md", kind="text", inputs=(review,))
    # a melody named "Review/write" whose node "path" would share the name's start
    store.put("out/Review/write/path/x", b"", kind="text", produced_by=("r3", "path", "op"))
    view = ArtifactsView()
    qtbot.addWidget(view)
    view.set_pit(pit)
    assert view.scope.isHidden()
    view.show_node("write", "Review")
    assert view.artifact_names() == ["out/Review/write/path"]
    assert view.select_artifact(edited)
    assert view.select_artifact(review)
    assert not view.select_artifact(chain)
    assert not view.scope.isHidden()
    assert "write" in view.scope.text()
    assert "Review" in view.scope.text()
    view.filter.setText("chain")  # the text filter narrows the node's view, never widens it
    assert view.artifact_names() == []
    view.filter.clear()
    view.show_node("write")  # no melody named: every melody's node of that id
    assert view.artifact_names() == ["out/Chain/write/path", "out/Review/write/path"]
    view.show_node("")
    assert view.scope.isHidden()
    assert len(view.artifact_names()) == 3
