"""The command palette (Ctrl+Shift+P): a fuzzy filter over every QAction of the window."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtGui import QAction, QKeyEvent
from PySide6.QtWidgets import (
    QDialog,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QVBoxLayout,
    QWidget,
)


def fuzzy_score(query: str, text: str) -> int | None:
    """Score ``text`` against ``query`` (higher is better), or ``None`` if it does not match.

    Every query character must appear in order (case-insensitive). Matches at word starts and
    consecutive runs score higher; a shorter text wins ties.
    """
    q = query.lower().replace(" ", "")
    t = text.lower()
    if not q:
        return 0
    score = 0
    pos = 0
    prev = -2
    for ch in q:
        found = t.find(ch, pos)
        if found < 0:
            return None
        score += 10
        if found == prev + 1:
            score += 15
        if found == 0 or not t[found - 1].isalnum():
            score += 20
        score -= min(found - pos, 10)
        prev = found
        pos = found + 1
    return score * 100 - len(t)


def action_label(action: QAction) -> str:
    """Return the action's text without mnemonics or the trailing ellipsis."""
    return action.text().replace("&&", "\0").replace("&", "").replace("\0", "&").rstrip(".…")


class CommandPalette(QDialog):
    """A frameless popup listing the matching enabled actions; Enter triggers the chosen one."""

    def __init__(
        self, actions: Callable[[], Iterable[QAction]], parent: QWidget | None = None
    ) -> None:
        super().__init__(parent, Qt.WindowType.Popup)
        self.setObjectName("command_palette")
        self._actions = actions
        self.edit = QLineEdit(self)
        self.edit.setPlaceholderText("Type a command…")
        self.list = QListWidget(self)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addWidget(self.edit)
        layout.addWidget(self.list)
        self.resize(520, 360)
        self.edit.textChanged.connect(self.refilter)
        self.edit.installEventFilter(self)
        self.list.itemActivated.connect(self._trigger)

    def open_palette(self) -> None:
        """Show the palette centred at the top of the parent window, with an empty filter."""
        parent = self.parentWidget()
        if parent is not None:
            geo = parent.geometry()
            self.move(geo.x() + (geo.width() - self.width()) // 2, geo.y() + 60)
        self.edit.clear()
        self.refilter("")
        self.show()
        self.edit.setFocus()

    def refilter(self, text: str) -> None:
        """Show the enabled actions matching ``text``, best first."""
        self.list.clear()
        ranked: list[tuple[int, str, QAction]] = []
        seen: set[int] = set()
        for action in self._actions():
            if action.isSeparator() or action.menu() is not None or not action.text():
                continue
            if not action.isEnabled() or id(action) in seen:
                continue
            seen.add(id(action))
            label = action_label(action)
            score = fuzzy_score(text, label)
            if score is not None:
                ranked.append((score, label, action))
        ranked.sort(key=lambda r: (-r[0], r[1]))
        for _score, label, action in ranked:
            shortcut = action.shortcut().toString()
            item = QListWidgetItem(f"{label}    {shortcut}" if shortcut else label)
            item.setData(Qt.ItemDataRole.UserRole, action)
            item.setToolTip(action.statusTip() or label)
            self.list.addItem(item)
        if self.list.count():
            self.list.setCurrentRow(0)

    def labels(self) -> list[str]:
        """Return the labels currently listed (tests, accessibility)."""
        return [
            action_label(self.list.item(i).data(Qt.ItemDataRole.UserRole))
            for i in range(self.list.count())
        ]

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt override
        """Handle arrow keys and Enter in the filter field."""
        if watched is self.edit and isinstance(event, QKeyEvent):
            if event.type() != QEvent.Type.KeyPress:
                return False
            key = event.key()
            if key in (Qt.Key.Key_Down, Qt.Key.Key_Up):
                step = 1 if key == Qt.Key.Key_Down else -1
                row = max(0, min(self.list.count() - 1, self.list.currentRow() + step))
                self.list.setCurrentRow(row)
                return True
            if key in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
                item = self.list.currentItem()
                if item is not None:
                    self._trigger(item)
                return True
        return super().eventFilter(watched, event)

    def _trigger(self, item: QListWidgetItem) -> None:
        action = item.data(Qt.ItemDataRole.UserRole)
        self.hide()
        if isinstance(action, QAction) and action.isEnabled():
            action.trigger()
