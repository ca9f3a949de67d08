"""The palette: every node type by category (Instruments, Operators, Files), with search.

Drag an entry onto a Harmony Board to add a node there (MIME ``application/x-symphony-node-type``
holding the type id), or double-click it or press Enter on it (:attr:`PaletteWidget.sig_activated`;
the main window adds the node in the middle of the current board's view). The palette
follows the registry: types contributed or withdrawn by extensions appear and disappear.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from PySide6.QtCore import QMimeData, QSize, Qt, Signal
from PySide6.QtGui import QColor, QIcon, QPainter, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QLabel,
    QLineEdit,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from symphony.canvas.view import NODE_TYPE_MIME
from symphony.document.listeners import weak_listener
from symphony.registry.descriptions import Category, NodeTypeDescription
from symphony.registry.registry import NodeTypeRegistry, RegistryChanged

__all__ = ["NODE_TYPE_MIME", "PaletteWidget"]

TYPE_ROLE: Final = Qt.ItemDataRole.UserRole
_CATEGORY_COLORS: Final = {
    Category.INSTRUMENTS: "#8e6cf0",
    Category.OPERATORS: "#1f9e8e",
    Category.FILES: "#c98a1b",
}


def _dot(color: str) -> QIcon:
    pixmap = QPixmap(14, 14)
    pixmap.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setPen(Qt.PenStyle.NoPen)
    painter.setBrush(QColor(color))
    painter.drawRoundedRect(2, 2, 10, 10, 3, 3)
    painter.end()
    return QIcon(pixmap)


def _tooltip(desc: NodeTypeDescription) -> str:
    ins = ", ".join(f"{p.name}: {p.type}" for p in desc.inputs) or "none"
    outs = ", ".join(f"{p.name}: {p.type}" for p in desc.outputs) or "none"
    source = "built-in" if desc.source == "builtin" else f"from {desc.source}"
    return (
        f"<b>{desc.title}</b> <i>({desc.type_id}, {source})</i><br>{desc.description}"
        f"<br><br>inputs: {ins}<br>outputs: {outs}"
    )


def _children(group: QTreeWidgetItem) -> list[QTreeWidgetItem]:
    return [c for i in range(group.childCount()) if (c := group.child(i)) is not None]


class _TypeTree(QTreeWidget):
    """The tree; a drag carries the type id."""

    def mimeTypes(self) -> list[str]:  # noqa: D102, N802 - Qt API
        return [NODE_TYPE_MIME]

    def mimeData(self, items: Sequence[QTreeWidgetItem]) -> QMimeData:  # noqa: D102, N802
        data = QMimeData()
        for item in items:
            type_id = item.data(0, TYPE_ROLE)
            if type_id:
                data.setData(NODE_TYPE_MIME, str(type_id).encode("utf-8"))
                data.setText(str(type_id))
                break
        return data


class PaletteWidget(QWidget):
    """Node types by category with a search box.

    Parameters
    ----------
    registry
        The node types to list (followed live).
    parent
        Qt parent.
    """

    sig_activated = Signal(str)

    def __init__(self, registry: NodeTypeRegistry, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._registry = registry
        self.search = QLineEdit(self)
        self.search.setPlaceholderText("Search node types…")
        self.search.setClearButtonEnabled(True)
        self.tree = _TypeTree(self)
        self.tree.setHeaderHidden(True)
        self.tree.setDragEnabled(True)
        self.tree.setDragDropMode(QAbstractItemView.DragDropMode.DragOnly)
        self.tree.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.tree.setIconSize(QSize(14, 14))
        self.tree.setUniformRowHeights(True)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.setSpacing(4)
        # a search that matches nothing says so, rather than leaving an empty list
        self.empty = QLabel(self)
        self.empty.setWordWrap(True)
        self.empty.setAlignment(Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop)
        self.empty.setEnabled(False)  # the palette's muted text colour
        self.empty.hide()
        layout.addWidget(self.search)
        layout.addWidget(self.empty)
        layout.addWidget(self.tree)
        self._icons = {c: _dot(color) for c, color in _CATEGORY_COLORS.items()}
        self._categories: dict[Category, QTreeWidgetItem] = {}
        self.search.textChanged.connect(self._apply_filter)
        # itemActivated alone: it comes on a double-click and on Enter (or a single click where
        # the platform activates that way); itemDoubleClicked as well made a double-click add
        # two nodes.
        self.tree.itemActivated.connect(self._on_activated)
        self.rebuild()
        registry.subscribe(
            weak_listener(self, PaletteWidget._on_registry_changed, registry.unsubscribe)
        )

    def _on_registry_changed(self, _event: RegistryChanged) -> None:
        self.rebuild()

    def rebuild(self) -> None:
        """Refill the tree from the registry, keeping the search."""
        self.tree.clear()
        self._categories = {}
        for category, descs in self._registry.by_category().items():
            group = QTreeWidgetItem([category.value])
            group.setFlags(Qt.ItemFlag.ItemIsEnabled)
            font = group.font(0)
            font.setBold(True)
            group.setFont(0, font)
            self._categories[category] = group
            self.tree.addTopLevelItem(group)
            for desc in descs:
                item = QTreeWidgetItem([desc.title])
                item.setData(0, TYPE_ROLE, desc.type_id)
                item.setToolTip(0, _tooltip(desc))
                item.setIcon(0, self._icons[category])
                item.setFlags(
                    Qt.ItemFlag.ItemIsEnabled
                    | Qt.ItemFlag.ItemIsSelectable
                    | Qt.ItemFlag.ItemIsDragEnabled
                )
                group.addChild(item)
        self.tree.expandAll()
        self._apply_filter(self.search.text())

    def visible_type_ids(self) -> dict[str, list[str]]:
        """Return the listed (not filtered out) type ids by category name."""
        shown: dict[str, list[str]] = {}
        for category, group in self._categories.items():
            if group.isHidden():
                continue
            ids = [c.data(0, TYPE_ROLE) for c in _children(group) if not c.isHidden()]
            shown[category.value] = ids
        return shown

    def item_for(self, type_id: str) -> QTreeWidgetItem | None:
        """Return the tree item of ``type_id``, or ``None``."""
        for group in self._categories.values():
            for child in _children(group):
                if child.data(0, TYPE_ROLE) == type_id:
                    return child
        return None

    def mime_data_for(self, type_id: str) -> QMimeData:
        """Return what dragging ``type_id`` carries (for drops made without a mouse)."""
        item = self.item_for(type_id)
        if item is None:
            raise KeyError(f"unknown node type {type_id!r}")
        return self.tree.mimeData([item])

    def _apply_filter(self, text: str) -> None:
        matches = {d.type_id for d in self._registry.search(text)}
        shown = 0
        for group in self._categories.values():
            visible = 0
            for child in _children(group):
                hidden = child.data(0, TYPE_ROLE) not in matches
                child.setHidden(hidden)
                visible += not hidden
            group.setHidden(visible == 0)
            shown += visible
        self.empty.setText(f"No node type matches “{text.strip()}”." if text.strip() else "")
        self.empty.setVisible(shown == 0 and bool(text.strip()))

    def _on_activated(self, item: QTreeWidgetItem, _column: int = 0) -> None:
        type_id = item.data(0, TYPE_ROLE)
        if type_id:
            self.sig_activated.emit(str(type_id))
