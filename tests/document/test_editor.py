"""MelodyEditor: every edit is one undoable command; undo all returns to the saved snapshot."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pytestqt.qtbot import QtBot

from symphony.document.editor import EditError, MelodyEditor
from symphony.registry import NodeTypeRegistry
from symphony.workflow import Melody, MelodyFormatError, dumps


@pytest.fixture
def editor(qtbot: QtBot, registry: NodeTypeRegistry) -> MelodyEditor:
    return MelodyEditor.from_template("idea_to_plan", registry)


def _undo_all(editor: MelodyEditor) -> None:
    stack = editor.undo_stack
    while stack.canUndo():
        stack.undo()


def _redo_all(editor: MelodyEditor) -> None:
    stack = editor.undo_stack
    while stack.canRedo():
        stack.redo()


def test_undo_all_returns_to_the_saved_snapshot_and_redo_all_to_the_edited_one(
    editor: MelodyEditor, tmp_path: Path
) -> None:
    path = tmp_path / "plan.melody"
    editor.save(path)
    saved = dumps(editor.melody)

    summ = editor.add_node("ai.summarizer", (100, 400))
    editor.connect("docs", "docs", summ, "text")
    drag = editor.begin_drag()
    for step in range(1, 6):  # one drag = one undo step
        editor.move_nodes({summ: (100 + 10 * step, 400), "enhance": (-5 * step, 0)}, drag=drag)
    editor.set_config("code", "temperature", 0.7)
    editor.set_config("code", "language", "rust")
    editor.rename_node("features", "Features")
    editor.set_policy("code", max_retries=5, skippable=True)
    editor.set_breakpoint("docs", True)
    editor.remove_nodes(["features"])
    editor.auto_layout()
    editor.copy([summ, "docs"])
    pasted = editor.paste()
    duplicated = editor.duplicate(["code"])
    note = editor.add_note((0, 600), "remember")
    editor.edit_note(note, text="remember the tests")
    editor.move_nodes({note: (50, 650)})
    editor.disconnect(next(iter(editor.melody.links)))

    assert editor.undo_stack.count() == 16
    assert len(pasted) == 2
    assert len(duplicated) == 1
    assert editor.is_modified()
    edited = dumps(editor.melody)
    assert edited != saved

    _undo_all(editor)
    assert dumps(editor.melody) == saved
    assert not editor.is_modified()
    _redo_all(editor)
    assert dumps(editor.melody) == edited
    _undo_all(editor)
    assert dumps(editor.melody) == saved


def test_a_drag_merges_into_one_step_but_separate_moves_do_not(editor: MelodyEditor) -> None:
    start = editor.melody.nodes["code"].position
    drag = editor.begin_drag()
    editor.move_nodes({"code": (1, 1)}, drag=drag)
    editor.move_nodes({"code": (2, 2), "docs": (9, 9)}, drag=drag)
    assert editor.undo_stack.count() == 1
    editor.move_nodes({"code": (3, 3)}, drag=editor.begin_drag())
    editor.move_nodes({"code": (4, 4)})
    assert editor.undo_stack.count() == 3
    _undo_all(editor)
    assert editor.melody.nodes["code"].position == start


def test_links_are_checked_and_refusals_name_the_problem(editor: MelodyEditor) -> None:
    text_out = editor.add_node("ai.prompt_enhancer", (0, 300))
    before = dumps(editor.melody)
    with pytest.raises(EditError, match=r"type mismatch.*\(text\).*\(json\)"):
        editor.connect(text_out, "enhanced", "code", "features")
    with pytest.raises(EditError, match="already linked"):
        editor.connect("enhance", "enhanced", "features", "prompt")
    with pytest.raises(EditError, match="close a cycle"):
        editor.connect("docs", "docs", "enhance", "prompt")
    with pytest.raises(EditError, match="no output port 'nope'"):
        editor.connect("enhance", "nope", "features", "prompt")
    with pytest.raises(EditError, match="unknown dependency kind 'weird'"):
        editor.connect(text_out, "enhanced", "code", "context", kind="weird")
    assert dumps(editor.melody) == before
    link = editor.connect(text_out, "enhanced", "code", "context", kind="soft")
    assert editor.melody.links[link].kind.value == "soft"


def test_config_edits_are_validated_against_the_schema(editor: MelodyEditor) -> None:
    before = dumps(editor.melody)
    with pytest.raises(EditError, match=r"config 'temperature': 5 is above the maximum 2"):
        editor.set_config("code", "temperature", 5)
    with pytest.raises(EditError, match=r"config 'language': 'cobol' is not one of"):
        editor.set_config("code", "language", "cobol")
    with pytest.raises(EditError, match=r"has no config field 'colour' \(fields: model, language"):
        editor.set_config("code", "colour", "red")
    with pytest.raises(EditError, match="no node 'ghost'"):
        editor.set_config("ghost", "temperature", 1)
    with pytest.raises(EditError, match="max_retries must be a whole number"):
        editor.set_policy("code", max_retries=-1)
    with pytest.raises(EditError, match="unexpected keyword argument 'retries'"):
        editor.set_policy("code", retries=1)
    with pytest.raises(EditError, match="a name must not be empty"):
        editor.rename_node("code", "  ")
    assert dumps(editor.melody) == before
    assert editor.undo_stack.count() == 0
    editor.set_config("code", "temperature", None)  # unset
    assert "temperature" not in editor.melody.nodes["code"].config


def test_unknown_types_and_templates_are_refused(
    registry: NodeTypeRegistry, editor: MelodyEditor
) -> None:
    with pytest.raises(EditError, match="unknown node type 'ai.poet'"):
        editor.add_node("ai.poet")
    with pytest.raises(KeyError, match="no template 'nope' .known: idea_to_plan"):
        MelodyEditor.from_template("nope", registry)


def test_save_and_open_round_trip(
    editor: MelodyEditor, registry: NodeTypeRegistry, tmp_path: Path
) -> None:
    modified: list[bool] = []
    paths: list[str] = []
    editor.sig_modified_changed.connect(modified.append)
    editor.sig_path_changed.connect(paths.append)
    with pytest.raises(EditError, match="never been saved"):
        editor.save()
    editor.add_node("op.merge", (10, 500))
    editor.add_note((0, 0), "a note")
    assert modified == [True]
    path = tmp_path / "x.melody"
    editor.save(path)
    assert modified == [True, False]
    assert paths == [str(path)]
    assert editor.path == path
    assert not editor.is_modified()
    opened = MelodyEditor.open(path, registry)
    assert dumps(opened.melody) == dumps(editor.melody)
    assert [n.text for n in opened.notes()] == ["a note"]
    assert opened.path == path
    assert not opened.is_modified()


def test_a_melody_takes_its_file_name_when_first_saved_and_keeps_it_after(
    editor: MelodyEditor, tmp_path: Path
) -> None:
    assert editor.melody.name != "fruit"
    editor.save(tmp_path / "fruit.melody")
    assert editor.melody.name == "fruit"
    assert '"name": "fruit"' in (tmp_path / "fruit.melody").read_text()
    # a melody that has a file keeps its name under another file name (Save As)
    editor.save(tmp_path / "copy.melody")
    assert editor.melody.name == "fruit"
    # a failed first save renames nothing
    fresh = MelodyEditor(Melody("Untitled melody"), editor.registry)
    with pytest.raises(FileNotFoundError, match="no such folder"):
        fresh.save(tmp_path / "no such folder" / "x.melody")
    assert fresh.melody.name == "Untitled melody"
    assert fresh.path is None


def test_a_tab_follows_its_file_when_it_is_moved_or_deleted(
    editor: MelodyEditor, tmp_path: Path
) -> None:
    paths: list[str] = []
    editor.sig_path_changed.connect(paths.append)
    editor.save(tmp_path / "a.melody")
    editor.move_to(tmp_path / "b.melody")
    assert editor.path == tmp_path / "b.melody"
    assert paths == [str(tmp_path / "a.melody"), str(tmp_path / "b.melody")]
    assert not editor.is_modified()  # moving writes nothing and changes nothing
    editor.mark_unsaved()
    assert editor.is_modified()
    editor.save()
    assert (tmp_path / "b.melody").is_file()
    assert not editor.is_modified()


def test_opening_a_broken_file_names_line_and_field(
    registry: NodeTypeRegistry, tmp_path: Path, qtbot: QtBot
) -> None:
    path = tmp_path / "bad.melody"
    melody = Melody("bad")
    melody.create_node("op.merge")
    path.write_text(dumps(melody).replace('"position": [0, 0]', '"position": "left"'))
    with pytest.raises(MelodyFormatError, match=r"bad.melody:\d+:\d+: nodes\[0\].position"):
        MelodyEditor.open(path, registry)


def test_paste_gives_fresh_ids_keeps_inner_links_and_selects(editor: MelodyEditor) -> None:
    text = editor.copy(["enhance", "features"])
    ids = editor.paste()
    assert len(ids) == 2
    assert not set(ids) & {"enhance", "features"}
    inner = [
        link
        for link in editor.melody.links.values()
        if link.source_node in ids and link.target_node in ids
    ]
    assert len(inner) == 1
    assert editor.selected_node_ids() == ids
    first = editor.melody.nodes[ids[0]].position
    again = editor.paste(text, at=(1000.0, 1000.0))
    assert min(editor.melody.nodes[i].position for i in again) == (1000.0, 1000.0)
    assert first != (1000.0, 1000.0)
    with pytest.raises(EditError, match="the clipboard holds no nodes"):
        editor.paste("not a melody")


def test_auto_layout_orders_columns_along_the_links(
    registry: NodeTypeRegistry, qtbot: QtBot
) -> None:
    editor = MelodyEditor(Melody(), registry)
    a = editor.add_node("ai.prompt_enhancer")
    b = editor.add_node("ai.feature_extractor")
    c = editor.add_node("ai.code_generator")
    d = editor.add_node("op.merge")
    editor.connect(a, "enhanced", b, "prompt")
    editor.connect(b, "features", c, "features")
    count = editor.undo_stack.count()
    assert editor.auto_layout()
    assert editor.undo_stack.count() == count + 1
    x = {n: editor.melody.nodes[n].position[0] for n in (a, b, c, d)}
    assert x[a] < x[b] < x[c]
    assert x[d] == x[a]
    assert not editor.auto_layout()  # already laid out: nothing to do
    editor.undo_stack.undo()
    assert {editor.melody.nodes[n].position for n in (a, b, c, d)} == {(0.0, 0.0)}


def test_selection_drops_removed_nodes(editor: MelodyEditor) -> None:
    seen: list[list[str]] = []
    editor.sig_selection_changed.connect(seen.append)
    editor.set_selection(["code", "docs", "ghost"])
    assert editor.selected_node_ids() == ["code", "docs"]
    editor.remove_nodes(["code"])
    assert editor.selected_node_ids() == ["docs"]
    assert seen == [["code", "docs"], ["docs"]]


def test_notes_are_undoable_and_unknown_ones_refused(editor: MelodyEditor) -> None:
    note = editor.add_note((1, 2), "hi", size=(10, 10))
    assert editor.note(note).size == (80.0, 40.0)  # clamped to the minimum
    editor.edit_note(note, text="hello", size=(300, 200))
    editor.remove_notes([note])
    assert editor.notes() == []
    with pytest.raises(EditError, match="no note 'note9'"):
        editor.edit_note("note9", text="x")
    with pytest.raises(EditError, match="no node or note 'zz' to move"):
        editor.move_nodes({"zz": (0, 0)})
    editor.undo_stack.undo()
    assert editor.note(note).text == "hello"
    _undo_all(editor)
    assert editor.notes() == []


_UNREADABLE = [
    {"id": "note1", "text": "hand-edited", "position": "top-left"},
    {"id": "note5", "text": "bad size", "position": [0, 0], "size": ["a", "b"]},
    "not even an object",
]


def _with_unreadable_notes(editor: MelodyEditor) -> None:
    good = {"id": "note2", "text": "ok", "position": [10, 20], "size": [200, 120]}
    editor.melody.set_metadata({"notes": [_UNREADABLE[0], good, *_UNREADABLE[1:]]})


def test_notes_it_cannot_read_are_kept_through_edits_of_the_others(
    editor: MelodyEditor,
) -> None:
    _with_unreadable_notes(editor)
    assert [n.id for n in editor.notes()] == ["note2"]  # shown: only the readable one
    new = editor.add_note((5, 5), "new")
    assert new not in ("note1", "note2", "note5")  # the unreadable notes' ids stay theirs
    editor.move_nodes({"note2": (50, 60)})
    editor.edit_note(new, text="newer")
    editor.remove_notes(["note2"])
    stored = editor.melody.metadata["notes"]
    assert stored[0] == _UNREADABLE[0]
    assert stored[1:3] == _UNREADABLE[1:]
    assert [n["id"] for n in stored[3:]] == [new]
    _undo_all(editor)
    assert [n.id for n in editor.notes()] == ["note2"]
    assert len(editor.melody.metadata["notes"]) == 4


def test_notes_that_are_not_a_list_are_not_replaced(editor: MelodyEditor) -> None:
    editor.melody.set_metadata({"notes": {"note1": "mine"}})
    with pytest.raises(EditError, match="holds dict data under 'notes'"):
        editor.add_note((0, 0), "x")
    assert editor.melody.metadata["notes"] == {"note1": "mine"}


def test_a_file_with_an_unreadable_note_opens_without_it(
    tmp_path: Path, registry: NodeTypeRegistry
) -> None:
    path = tmp_path / "notes.melody"
    path.write_text(
        '{"format_version": 2, "metadata": {"notes": [{"id": "note1", "text": "x", '
        '"position": [0, 0], "size": ["a", "b"]}]}, "nodes": []}',
        encoding="utf-8",
    )
    opened = MelodyEditor.open(path, registry)
    assert opened.notes() == []
    assert opened.melody.metadata["notes"][0]["size"] == ["a", "b"]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"importance": "urgent"},
            "node 'enhance' policy: importance must be one of low, normal, high, critical, "
            "got 'urgent'",
        ),
        (
            {"fallback_models": "abc"},
            "node 'enhance' policy: fallback_models is a list of model ids, got the text 'abc'",
        ),
    ],
)
def test_policy_refusals_are_edit_errors(
    editor: MelodyEditor, changes: dict[str, Any], message: str
) -> None:
    before = editor.melody.nodes["enhance"].policy
    with pytest.raises(EditError) as info:
        editor.set_policy("enhance", **changes)
    assert str(info.value) == message
    assert editor.melody.nodes["enhance"].policy == before
    assert editor.undo_stack.count() == 0


def test_text_that_could_not_be_saved_is_refused_before_the_edit(editor: MelodyEditor) -> None:
    with pytest.raises(EditError, match="lone surrogate"):
        editor.set_config("enhance", "prompt", "idea \ud83d")
    with pytest.raises(EditError, match="lone surrogate"):
        editor.rename_node("enhance", "\udc00")
    with pytest.raises(EditError, match="lone surrogate"):
        editor.add_note((0, 0), "\ud83d")
    assert editor.undo_stack.count() == 0
    dumps(editor.melody).encode("utf-8")  # still savable


def test_link_kind_and_condition_are_checked_and_undoable(editor: MelodyEditor) -> None:
    link_id = next(iter(editor.melody.links))
    before = dumps(editor.melody)
    with pytest.raises(EditError, match="unknown dependency kind 'loose'"):
        editor.set_link_kind(link_id, "loose")
    with pytest.raises(EditError, match="no link 'l99'"):
        editor.set_link_kind("l99", "soft")
    with pytest.raises(EditError, match=r"condition: .*column"):
        editor.set_link_condition(link_id, "score >")
    with pytest.raises(EditError, match="uses unknown name 'mood'"):
        editor.set_link_condition(link_id, "mood == 'good'")
    assert dumps(editor.melody) == before
    editor.set_link_kind(link_id, "optional")
    editor.set_link_condition(link_id, "score >= 0.7")
    link = editor.melody.links[link_id]
    assert link.kind.value == "optional"
    assert link.condition == "score >= 0.7"
    _undo_all(editor)
    assert dumps(editor.melody) == before
