"""BoardView: items follow the melody, gestures go through the editor, run state survives undo."""

from __future__ import annotations

import pytest
import shiboken6
from PySide6.QtCore import QEvent, QMimeData, QPoint, QPointF, Qt
from PySide6.QtGui import QDropEvent, QImage, QPainter, QPainterPath, QWheelEvent
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QGraphicsItem, QWidget
from pytestqt.qtbot import QtBot

from symphony.canvas.items import LinkItem, NodeItem, NoteItem
from symphony.canvas.view import NODE_TYPE_MIME, OVERVIEW_LOD, BoardView
from symphony.document.editor import MelodyEditor
from symphony.registry import NodeTypeRegistry
from symphony.workflow import Melody, dumps


@pytest.fixture
def view(qtbot: QtBot, registry: NodeTypeRegistry) -> BoardView:
    board = BoardView(MelodyEditor.from_template("idea_to_plan", registry))
    qtbot.addWidget(board)
    board.resize(1200, 700)
    board.show()
    board.resetTransform()
    board.centerOn(500, 100)
    return board


def _port_point(view: BoardView, node_id: str, port: str, output: bool) -> QPoint:
    item = view.board_scene.node_items[node_id]
    pos = item.output_pos(port) if output else item.input_pos(port)
    return view.mapFromScene(pos)


def _render(view: BoardView) -> QImage:
    image = QImage(400, 300, QImage.Format.Format_ARGB32_Premultiplied)
    painter = QPainter(image)
    view.board_scene.render(painter)
    painter.end()
    return image


def test_items_mirror_the_melody_and_follow_undo(view: BoardView) -> None:
    scene = view.board_scene
    melody = view.editor.melody
    assert set(scene.node_items) == set(melody.nodes)
    assert set(scene.link_items) == set(melody.links)
    view.editor.remove_nodes(["features"])
    assert "features" not in scene.node_items
    assert set(scene.link_items) == set(melody.links)
    view.editor.undo_stack.undo()
    assert set(scene.link_items) == set(melody.links)
    assert "features" in scene.node_items
    view.editor.rename_node("code", "Coder")
    assert scene.node_items["code"].node.name == "Coder"
    view.editor.move_nodes({"code": (600.0, 50.0)})
    assert scene.node_items["code"].pos() == QPointF(600.0, 50.0)
    link = next(li for li in scene.link_items.values() if li.link.target_node == "code")
    assert link.path().elementAt(link.path().elementCount() - 1).y == pytest.approx(
        scene.node_items["code"].input_pos(link.link.target_port).y()
    )


def test_drop_from_the_palette_creates_a_node_where_dropped(view: BoardView) -> None:
    data = QMimeData()
    data.setData(NODE_TYPE_MIME, b"ai.summarizer")
    at = QPointF(300.0, 200.0)
    event = QDropEvent(
        at, Qt.DropAction.CopyAction, data, Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier
    )
    before = set(view.editor.melody.nodes)
    view.dropEvent(event)
    (new,) = set(view.editor.melody.nodes) - before
    node = view.editor.melody.nodes[new]
    assert node.type_id == "ai.summarizer"
    item = view.board_scene.node_items[new]
    assert item.sceneBoundingRect().contains(view.mapToScene(at.toPoint()))
    assert view.editor.selected_node_ids() == [new]
    data.setData(NODE_TYPE_MIME, b"ai.poet")
    view.dropEvent(
        QDropEvent(
            at,
            Qt.DropAction.CopyAction,
            data,
            Qt.MouseButton.NoButton,
            Qt.KeyboardModifier.NoModifier,
        )
    )
    assert "unknown node type 'ai.poet'" in view.last_status_message
    assert view.editor.undo_stack.count() == 1


def test_dragging_a_link_between_compatible_ports_connects_them(view: BoardView) -> None:
    editor = view.editor
    summ = editor.add_node("ai.summarizer", (900.0, 250.0))
    start = _port_point(view, "code", "code", output=True)
    end = _port_point(view, summ, "text", output=False)
    QTest.mousePress(view.viewport(), Qt.MouseButton.LeftButton, pos=start)
    drag = view.board_scene.link_drag
    assert drag is not None
    target = view.board_scene.node_items[summ].layout.inputs["text"]
    assert drag.fit(summ, target) == 1  # code fits text: highlighted
    QTest.mouseMove(view.viewport(), end)
    QTest.mouseRelease(view.viewport(), Qt.MouseButton.LeftButton, pos=end)
    assert editor.melody.find_link("code", "code", summ, "text") is not None
    assert view.board_scene.link_drag is None
    assert "Linked code.code" in view.last_status_message


def test_dropping_a_link_on_an_incompatible_port_is_refused_naming_both_types(
    view: BoardView,
) -> None:
    editor = view.editor
    enh = editor.add_node("ai.prompt_enhancer", (0.0, 300.0))
    before = dumps(editor.melody)
    scene = view.board_scene
    start = _port_point(view, enh, "enhanced", output=True)
    QTest.mousePress(view.viewport(), Qt.MouseButton.LeftButton, pos=start)
    drag = scene.link_drag
    assert drag is not None
    code_inputs = scene.node_items["code"].layout.inputs
    assert drag.fit("code", code_inputs["features"]) == -1  # text cannot feed json: dimmed
    assert drag.fit("code", code_inputs["context"]) == 1
    end = _port_point(view, "code", "features", output=False)
    QTest.mouseRelease(view.viewport(), Qt.MouseButton.LeftButton, pos=end)
    assert dumps(editor.melody) == before
    message = view.last_status_message
    assert "(text)" in message
    assert "(json)" in message
    assert "type mismatch" in message


def test_dragging_a_selection_moves_it_as_one_undo_step(view: BoardView) -> None:
    editor = view.editor
    editor.set_selection(["code", "docs"])
    item = view.board_scene.node_items["code"]
    grab = view.mapFromScene(item.pos() + QPointF(60.0, 12.0))
    QTest.mousePress(view.viewport(), Qt.MouseButton.LeftButton, pos=grab)
    for step in range(1, 5):
        QTest.mouseMove(view.viewport(), grab + QPoint(10 * step, 5 * step))
    QTest.mouseRelease(view.viewport(), Qt.MouseButton.LeftButton, pos=grab + QPoint(40, 20))
    assert editor.melody.nodes["code"].position == (600.0, 20.0)
    assert editor.melody.nodes["docs"].position == (880.0, 20.0)
    assert editor.undo_stack.count() == 1
    assert sorted(editor.selected_node_ids()) == ["code", "docs"]
    editor.undo_stack.undo()
    assert editor.melody.nodes["code"].position == (560.0, 0.0)


def test_run_state_is_view_state_and_survives_undo_redo(view: BoardView) -> None:
    editor = view.editor
    view.set_node_run_state("code", "succeeded", elapsed=2.5, detail="ok")
    view.set_node_run_state("docs", "running", progress=0.5, elapsed=1.0)
    view.append_node_preview("docs", "# Title\nstreamed tokens")
    editor.remove_nodes(["code"])
    editor.undo_stack.undo()
    editor.undo_stack.redo()
    editor.undo_stack.undo()
    scene = view.board_scene
    assert scene.run_states["code"].state == "succeeded"
    assert "2.5 s" in scene.run_states["code"].status_text
    assert scene.run_states["docs"].preview_lines == "# Title\nstreamed tokens"
    assert "50 %" in scene.run_states["docs"].status_text
    assert not _render(view).isNull()
    with pytest.raises(ValueError, match="unknown run state 'done' .known: idle, queued"):
        view.set_node_run_state("code", "done")
    view.clear_run_states()
    assert scene.run_states == {}


def test_zooming_out_switches_to_batched_overview_painting(view: BoardView) -> None:
    scene = view.board_scene
    no_contents = QGraphicsItem.GraphicsItemFlag.ItemHasNoContents
    view.set_zoom(OVERVIEW_LOD / 2)
    assert scene.overview
    assert all(i.flags() & no_contents for i in scene.node_items.values())
    assert all(i.flags() & no_contents for i in scene.link_items.values())
    view.editor.set_selection(["code"])
    assert not view.viewport().grab().isNull()
    view.set_zoom(1.0)
    assert not scene.overview
    assert not any(i.flags() & no_contents for i in scene.node_items.values())


def test_wheel_zoom_and_fit_all_and_middle_button_pan(view: BoardView) -> None:
    view.set_zoom(2.0)
    view.fit_all()
    rect = view.mapToScene(view.viewport().rect()).boundingRect()
    assert rect.contains(view.board_scene.content_rect())
    assert view.zoom() <= 1.0
    h = view.horizontalScrollBar().value()
    vp = view.viewport()
    QTest.mousePress(vp, Qt.MouseButton.MiddleButton, pos=QPoint(300, 300))
    QTest.mouseMove(vp, QPoint(200, 300))
    QTest.mouseRelease(vp, Qt.MouseButton.MiddleButton, pos=QPoint(200, 300))
    assert view.horizontalScrollBar().value() > h
    assert view.editor.undo_stack.count() == 0  # panning is not an edit


def test_keyboard_shortcuts(view: BoardView, qtbot: QtBot) -> None:
    editor = view.editor
    view.setFocus()
    editor.set_selection(["docs"])
    QTest.keyClick(view, Qt.Key.Key_C, Qt.KeyboardModifier.ControlModifier)
    QTest.keyClick(view, Qt.Key.Key_V, Qt.KeyboardModifier.ControlModifier)
    assert len(editor.melody) == 5
    QTest.keyClick(view, Qt.Key.Key_D, Qt.KeyboardModifier.ControlModifier)
    assert len(editor.melody) == 6
    QTest.keyClick(view, Qt.Key.Key_Delete)
    assert len(editor.melody) == 5
    QTest.keyClick(view, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert len(editor.melody) == 6
    view.set_zoom(3.0)
    QTest.keyClick(view, Qt.Key.Key_0, Qt.KeyboardModifier.ControlModifier)
    assert view.zoom() <= 1.0
    QTest.keyClick(view, Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier)
    assert len(editor.selected_node_ids()) == 6


def test_quick_add_creates_the_chosen_type_at_the_position(view: BoardView) -> None:
    popup = view.open_quick_add(QPointF(100.0, 500.0))
    assert popup.isVisible()
    QTest.keyClicks(popup.search, "summar")
    assert popup.type_ids() == ["ai.summarizer"]
    QTest.keyClick(popup.search, Qt.Key.Key_Return)
    assert not popup.isVisible()
    (node_id,) = view.editor.selected_node_ids()
    node = view.editor.melody.nodes[node_id]
    assert node.type_id == "ai.summarizer"
    assert view.board_scene.node_items[node_id].sceneBoundingRect().contains(QPointF(100.0, 500.0))


def test_tab_and_double_click_on_empty_canvas_open_quick_add(view: BoardView) -> None:
    view.setFocus()
    QTest.keyClick(view, Qt.Key.Key_Tab)
    assert view._quick_add is not None
    assert view._quick_add.isVisible()
    view._quick_add.hide()
    empty = view.mapFromScene(QPointF(500.0, 600.0))
    QTest.mouseDClick(view.viewport(), Qt.MouseButton.LeftButton, pos=empty)
    assert view._quick_add.isVisible()
    view._quick_add.hide()


def test_rubber_band_selection_reaches_the_editor(view: BoardView) -> None:
    path = QPainterPath()
    path.addRect(view.board_scene.node_items["code"].sceneBoundingRect().adjusted(-5, -5, 300, 5))
    view.board_scene.setSelectionArea(path)
    assert sorted(view.editor.selected_node_ids()) == ["code", "docs"]
    view.editor.set_selection(["enhance"])
    selected = [i for i in view.board_scene.selectedItems() if isinstance(i, NodeItem)]
    assert [i.node_id for i in selected] == ["enhance"]


def test_deleting_a_selected_link_and_a_note(view: BoardView) -> None:
    editor = view.editor
    note = editor.add_note((0.0, 400.0), "hello")
    assert isinstance(view.board_scene.note_items[note], NoteItem)
    link_id = next(iter(editor.melody.links))
    view.board_scene.link_items[link_id].setSelected(True)
    view.board_scene.note_items[note].setSelected(True)
    view.delete_selection()
    assert link_id not in editor.melody.links
    assert link_id not in view.board_scene.link_items
    assert editor.notes() == []
    assert view.board_scene.note_items == {}
    while editor.undo_stack.canUndo():
        editor.undo_stack.undo()
    assert isinstance(view.board_scene.link_items[link_id], LinkItem)


def test_editing_a_note_in_place_is_undoable(view: BoardView) -> None:
    editor = view.editor
    note = editor.add_note((0.0, 400.0))
    item = view.board_scene.note_items[note]
    item.start_editing()
    assert item.is_editing()
    item._text.setPlainText("typed")
    item.text_edited()
    assert editor.note(note).text == "typed"
    editor.undo_stack.undo()
    assert editor.note(note).text == ""


def test_minimap_click_moves_the_view(view: BoardView) -> None:
    view.minimap.refresh()
    before = view.mapToScene(view.viewport().rect().center())
    QTest.mouseClick(view.minimap, Qt.MouseButton.LeftButton, pos=QPoint(190, 120))
    after = view.mapToScene(view.viewport().rect().center())
    assert after != before


def test_a_thousand_node_board_builds_and_renders(qtbot: QtBot, registry: NodeTypeRegistry) -> None:
    from tests.benchmarks.test_p14_board import big_melody

    melody: Melody = big_melody(1000, 1500)
    view = BoardView(MelodyEditor(melody, registry))
    qtbot.addWidget(view)
    assert len(view.board_scene.node_items) == 1000
    assert len(view.board_scene.link_items) == 1500
    view.resize(1280, 800)
    view.fit_all()
    assert view.board_scene.overview
    assert not view.viewport().grab().isNull()


def test_wheel_zooms_around_the_cursor_and_space_drag_pans(view: BoardView) -> None:
    vp = view.viewport()
    at = QPoint(400, 300)
    anchor = view.mapToScene(at)
    wheel = QWheelEvent(
        QPointF(at),
        QPointF(vp.mapToGlobal(at)),
        QPoint(0, 0),
        QPoint(0, 240),
        Qt.MouseButton.NoButton,
        Qt.KeyboardModifier.NoModifier,
        Qt.ScrollPhase.NoScrollPhase,
        False,
    )
    QApplication.sendEvent(vp, wheel)
    assert view.zoom() == pytest.approx(1.15**2)
    assert view.mapFromScene(anchor) == at
    view.setFocus()
    QTest.keyPress(view, Qt.Key.Key_Space)
    v = view.verticalScrollBar().value()
    QTest.mousePress(vp, Qt.MouseButton.LeftButton, pos=QPoint(300, 300))
    QTest.mouseMove(vp, QPoint(300, 200))
    QTest.mouseRelease(vp, Qt.MouseButton.LeftButton, pos=QPoint(300, 200))
    QTest.keyRelease(view, Qt.Key.Key_Space)
    assert view.verticalScrollBar().value() > v
    assert view.editor.undo_stack.count() == 0


def test_a_closed_board_stops_following_its_melody(
    qtbot: QtBot, registry: NodeTypeRegistry
) -> None:
    editor = MelodyEditor.from_template("idea_to_plan", registry)
    board = BoardView(editor)
    board.deleteLater()
    QApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete.value)
    assert not shiboken6.isValid(board)
    editor.add_node("op.merge")  # would raise if the deleted scene were still called
    editor.add_node("op.merge")
    assert len(editor.melody) == 6


def test_dragging_a_note_grip_resizes_it_in_one_undo_step(view: BoardView) -> None:
    editor = view.editor
    note = editor.add_note((0.0, 300.0), "resize me")
    item = view.board_scene.note_items[note]
    corner = item.sceneBoundingRect().bottomRight() - QPointF(6.0, 6.0)
    assert item.grip_contains(corner)
    start = view.mapFromScene(corner)
    vp = view.viewport()
    QTest.mousePress(vp, Qt.MouseButton.LeftButton, pos=start)
    QTest.mouseMove(vp, start + QPoint(30, 10))
    QTest.mouseMove(vp, start + QPoint(60, 40))
    QTest.mouseRelease(vp, Qt.MouseButton.LeftButton, pos=start + QPoint(60, 40))
    assert editor.note(note).size == (280.0, 160.0)
    assert editor.note(note).position == (0.0, 300.0)
    assert editor.undo_stack.count() == 2
    editor.undo_stack.undo()
    assert item.current_size() == (220.0, 120.0)


def test_fit_all_before_showing_fits_again_once_shown(
    qtbot: QtBot, registry: NodeTypeRegistry
) -> None:
    board = BoardView(MelodyEditor.from_template("idea_to_plan", registry))
    qtbot.addWidget(board)
    board.fit_all()  # the view is 100x30 or so: everything gets tiny
    board.resize(1200, 700)
    board.show()
    qtbot.waitUntil(lambda: board.zoom() == 1.0)
    visible = board.mapToScene(board.viewport().rect()).boundingRect()
    assert visible.contains(board.board_scene.content_rect())


@pytest.mark.parametrize("first", [(50.0, 0.0), (50.0, 300.0), (0.0, 0.0)])
def test_a_board_opens_wherever_its_nodes_are(
    qtbot: QtBot, registry: NodeTypeRegistry, first: tuple[float, float]
) -> None:
    # setting the scene may scroll the view at once (it did for these two layouts), and
    # scrolling updates the minimap: the view must have one by then
    melody = Melody("ops")
    a = melody.create_node("op.template", config={"template": "x"}, position=first)
    b = melody.create_node("op.split", config={"separator": " "}, position=(200.0, 0.0))
    melody.connect(a.id, "text", b.id, "text")
    tab = QWidget()  # as in a board tab: a view with a parent scrolled when its scene was set
    qtbot.addWidget(tab)
    board = BoardView(MelodyEditor(melody, registry), tab)
    assert board.minimap.parent() is board
    assert {item.node_id for item in board.items() if isinstance(item, NodeItem)} == {a.id, b.id}
