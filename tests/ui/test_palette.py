"""PaletteWidget: categories, search, drag MIME, activation, live registry updates."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QDropEvent
from pytestqt.qtbot import QtBot

from symphony.canvas.view import NODE_TYPE_MIME, BoardView
from symphony.document.editor import MelodyEditor
from symphony.registry import NodeTypeRegistry
from symphony.ui.palette import PaletteWidget
from symphony.workflow import Melody
from tests.document.conftest import full_registry


@pytest.fixture
def registry() -> NodeTypeRegistry:
    return full_registry()


def test_types_are_grouped_by_category_with_the_extensions(
    qtbot: QtBot, registry: NodeTypeRegistry
) -> None:
    palette = PaletteWidget(registry)
    qtbot.addWidget(palette)
    shown = palette.visible_type_ids()
    assert list(shown) == ["Instruments", "Operators", "Files"]
    assert "ai.summarizer" in shown["Instruments"]
    assert "op.template" in shown["Operators"]
    assert "files.read" in shown["Files"]
    assert sum(len(v) for v in shown.values()) == len(registry)


def test_search_filters_and_hides_empty_categories(
    qtbot: QtBot, registry: NodeTypeRegistry
) -> None:
    palette = PaletteWidget(registry)
    qtbot.addWidget(palette)
    qtbot.keyClicks(palette.search, "summar")
    assert palette.visible_type_ids() == {"Instruments": ["ai.summarizer"]}
    assert palette.empty.isHidden()
    palette.search.setText("no such thing")
    assert palette.visible_type_ids() == {}
    assert not palette.empty.isHidden()  # a blank list would look broken: it says why
    assert palette.empty.text() == "No node type matches “no such thing”."
    palette.search.clear()
    assert sum(len(v) for v in palette.visible_type_ids().values()) == len(registry)
    assert palette.empty.isHidden()


def test_dragging_carries_the_type_id_and_dropping_it_on_a_board_adds_the_node(
    qtbot: QtBot, registry: NodeTypeRegistry
) -> None:
    palette = PaletteWidget(registry)
    board = BoardView(MelodyEditor(Melody(), registry))
    qtbot.addWidget(palette)
    qtbot.addWidget(board)
    board.resize(800, 600)
    data = palette.mime_data_for("files.read")
    assert bytes(data.data(NODE_TYPE_MIME).data()) == b"files.read"
    category = palette.tree.topLevelItem(0)
    assert category is not None
    assert not category.flags() & Qt.ItemFlag.ItemIsDragEnabled
    board.dropEvent(
        QDropEvent(
            QPointF(400, 300),
            Qt.DropAction.CopyAction,
            data,
            Qt.MouseButton.LeftButton,
            Qt.KeyboardModifier.NoModifier,
        )
    )
    (node,) = board.editor.melody.nodes.values()
    assert node.type_id == "files.read"
    assert node.name == registry["files.read"].title
    with pytest.raises(KeyError, match="unknown node type 'nope'"):
        palette.mime_data_for("nope")


def test_double_click_and_enter_activate_once(qtbot: QtBot, registry: NodeTypeRegistry) -> None:
    palette = PaletteWidget(registry)
    qtbot.addWidget(palette)
    with qtbot.waitExposed(palette):
        palette.show()
    item = palette.item_for("op.merge")
    assert item is not None
    palette.tree.scrollToItem(item)
    activated: list[str] = []
    palette.sig_activated.connect(activated.append)
    at = palette.tree.visualItemRect(item).center()
    viewport = palette.tree.viewport()
    qtbot.mouseClick(viewport, Qt.MouseButton.LeftButton, pos=at)
    qtbot.mouseDClick(viewport, Qt.MouseButton.LeftButton, pos=at)
    assert activated == ["op.merge"]  # one node for one double-click, not two
    palette.tree.setCurrentItem(item)
    qtbot.keyClick(palette.tree, Qt.Key.Key_Return)
    assert activated == ["op.merge", "op.merge"]


def test_follows_extensions_coming_and_going(qtbot: QtBot, registry: NodeTypeRegistry) -> None:
    palette = PaletteWidget(registry)
    qtbot.addWidget(palette)
    registry.unregister_source("symphony.file_explorer")
    assert "Files" not in palette.visible_type_ids()
    registry.register_from_manifest(
        "demo",
        [{"id": "files.zip", "version": "1.0.0", "title": "Zip", "category": "Files"}],
    )
    assert palette.visible_type_ids()["Files"] == ["files.zip"]
