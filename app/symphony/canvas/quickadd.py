"""The quick-add popup: type a few letters, press Enter, and a node appears at the cursor."""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, QPoint, Qt, Signal
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import QFrame, QLineEdit, QListWidget, QListWidgetItem, QVBoxLayout, QWidget

from symphony.registry.registry import NodeTypeRegistry

__all__ = ["QuickAddPopup"]

_TYPE_ROLE = Qt.ItemDataRole.UserRole


class QuickAddPopup(QFrame):
    """A search box over the registry's node types; emits the chosen type id.

    Parameters
    ----------
    registry
        The node types to offer.
    parent
        Qt parent (the board view).
    """

    sig_chosen = Signal(str)

    def __init__(self, registry: NodeTypeRegistry, parent: QWidget | None = None) -> None:
        super().__init__(parent, Qt.WindowType.Popup)
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self._registry = registry
        self.search = QLineEdit(self)
        self.search.setPlaceholderText("Add a node…")
        self.search.setClearButtonEnabled(True)
        self.list = QListWidget(self)
        self.list.setUniformItemSizes(True)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.setSpacing(4)
        layout.addWidget(self.search)
        layout.addWidget(self.list)
        self.resize(300, 320)
        self.search.textChanged.connect(self._refill)
        self.search.installEventFilter(self)
        self.list.itemActivated.connect(self._choose_item)
        self.list.itemClicked.connect(self._choose_item)
        self._refill("")

    def popup(self, global_pos: QPoint) -> None:
        """Show the popup at ``global_pos`` with an empty search."""
        self.search.clear()
        self.move(global_pos)
        self.show()
        self.search.setFocus()

    def type_ids(self) -> list[str]:
        """Return the type ids currently listed."""
        return [self.list.item(i).data(_TYPE_ROLE) for i in range(self.list.count())]

    def _refill(self, text: str) -> None:
        self.list.clear()
        for desc in self._registry.search(text):
            item = QListWidgetItem(f"{desc.title}   ·  {desc.category.value}")
            item.setData(_TYPE_ROLE, desc.type_id)
            item.setToolTip(f"{desc.type_id}: {desc.description}")
            self.list.addItem(item)
        if self.list.count():
            self.list.setCurrentRow(0)

    def choose_current(self) -> None:
        """Choose the highlighted type (what Enter does)."""
        item = self.list.currentItem()
        if item is not None:
            self._choose_item(item)

    def _choose_item(self, item: QListWidgetItem) -> None:
        type_id = item.data(_TYPE_ROLE)
        self.hide()
        self.sig_chosen.emit(type_id)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: D102, N802
        if watched is self.search and isinstance(event, QKeyEvent):
            if event.type() == QEvent.Type.KeyPress:
                key = event.key()
                if key in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
                    self.choose_current()
                    return True
                if key in (Qt.Key.Key_Down, Qt.Key.Key_Up):
                    step = 1 if key == Qt.Key.Key_Down else -1
                    row = max(0, min(self.list.count() - 1, self.list.currentRow() + step))
                    self.list.setCurrentRow(row)
                    return True
                if key == Qt.Key.Key_Escape:
                    self.hide()
                    return True
        return super().eventFilter(watched, event)
