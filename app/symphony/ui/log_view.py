"""The Log and Problems panes.

:class:`LogView` shows extension log lines (``ExtensionHost.sig_log``) and Python ``logging``
records (through :class:`QtLogHandler`, safe from any thread). :class:`ProblemsView` lists the
validation issues of the current melody and the run's failures with the recovery the conductor
chose and why; double-clicking a row asks to select its node.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QIcon, QTextCursor
from PySide6.QtWidgets import (
    QHeaderView,
    QPlainTextEdit,
    QTreeWidget,
    QTreeWidgetItem,
    QWidget,
)

from symphony.conductor import events as ev

if TYPE_CHECKING:
    from symphony.workflow import Issue

MAX_LOG_LINES = 5000


class LogView(QPlainTextEdit):
    """Read-only, capped log: ``HH:MM:SS level source: message``."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setReadOnly(True)
        self.setMaximumBlockCount(MAX_LOG_LINES)
        self.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self.setPlaceholderText("Log messages from Symphony and its extensions appear here")

    def append_line(self, source: str, level: str, message: str) -> None:
        """Add one line at the end (and keep it in view if the view was at the end)."""
        bar = self.verticalScrollBar()
        at_end = bar.value() >= bar.maximum() - 2
        stamp = time.strftime("%H:%M:%S")
        self.appendPlainText(f"{stamp} {level.upper():<7} {source}: {message}")
        if at_end:
            self.moveCursor(QTextCursor.MoveOperation.End)

    def lines(self) -> list[str]:
        """Every line shown."""
        return self.toPlainText().splitlines()


class _Bridge(QObject):
    sig_record = Signal(str, str, str)


class QtLogHandler(logging.Handler):
    """A logging handler forwarding records to a :class:`LogView` through a queued signal."""

    def __init__(self, view: LogView, level: int = logging.INFO) -> None:
        super().__init__(level)
        self._bridge = _Bridge()
        self._bridge.sig_record.connect(view.append_line, Qt.ConnectionType.QueuedConnection)

    def emit(self, record: logging.LogRecord) -> None:
        """Forward ``record`` to the view."""
        try:
            self._bridge.sig_record.emit(record.name, record.levelname, self.format(record))
        except RuntimeError:  # the view is gone (window closed while a thread still logs)
            pass


_NODE_ROLE = Qt.ItemDataRole.UserRole


class ProblemsView(QTreeWidget):
    """Validation issues and run failures; double-click selects the node.

    Signals
    -------
    sig_node_activated(str)
        A validation issue's node (of the melody that was validated: the board in front).
    sig_run_node_activated(str, str)
        A run failure's run id and node (of the board that run is shown on).
    """

    sig_node_activated = Signal(str)
    sig_run_node_activated = Signal(str, str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setColumnCount(3)
        self.setHeaderLabels(["", "Problem", "Node"])
        self.setRootIsDecorated(False)
        self.setUniformRowHeights(True)
        self.setColumnWidth(0, 70)
        # The problem's text gets the width; the node column only what its ids need.
        header = self.header()
        header.setStretchLastSection(False)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.Interactive)
        self.setColumnWidth(2, 160)
        self._validation: list[QTreeWidgetItem] = []
        self._run: list[QTreeWidgetItem] = []
        # One row per failed attempt: (run, node, attempt) -> its row, which the recovery decision
        # for that attempt completes (it may come before or after the failure itself).
        self._attempts: dict[tuple[str, str, int], QTreeWidgetItem] = {}
        self.itemDoubleClicked.connect(self._activated)

    def set_validation(self, issues: Iterable[Issue]) -> None:
        """Replace the validation rows with ``issues``."""
        for item in self._validation:
            self.takeTopLevelItem(self.indexOfTopLevelItem(item))
        self._validation = []
        for issue in issues:
            sev = "error" if issue.severity == "error" else "warning"  # Severity is a StrEnum
            item = self._item(sev, issue.message, issue.node_ids)
            self._validation.append(item)
            self.insertTopLevelItem(len(self._validation) - 1, item)

    def clear_run(self) -> None:
        """Drop the rows of the previous run."""
        for item in self._run:
            self.takeTopLevelItem(self.indexOfTopLevelItem(item))
        self._run = []
        self._attempts = {}

    def add_event(self, event: ev.RunEvent) -> None:
        """Record a failure (``NodeStateChanged`` failed) or a recovery decision."""
        if isinstance(event, ev.RunStateChanged) and event.state == ev.RUN_RUNNING:
            if self._run and self._run[0].data(0, _NODE_ROLE + 1) != event.run_id:
                self.clear_run()
            return
        if isinstance(event, ev.RecoveryChosen):
            text = (
                f"{event.node_id} failed (attempt {event.attempt}, {event.error_kind}): "
                f"{event.error} — recovery: {event.strategy}, because {event.why}"
            )
            # A recovered attempt is a warning; the run goes on.
            sev = "error" if event.strategy == "abort" else "warning"
            key = (event.run_id, event.node_id, event.attempt)
            row = self._attempts.get(key)
            if row is None:
                self._attempts[key] = self._add_run(sev, text, event)
            else:
                self._describe(row, sev, text)
        elif isinstance(event, ev.NodeStateChanged) and event.state == ev.FAILED:
            key = (event.run_id, event.node_id, event.attempt)
            if key in self._attempts:  # its recovery was decided first and says more
                return
            text = (
                f"{event.node_id} failed (attempt {event.attempt}): {event.detail or 'no detail'}"
            )
            self._attempts[key] = self._add_run("error", text, event)

    def _add_run(self, sev: str, text: str, event: ev.RunEvent) -> QTreeWidgetItem:
        node = getattr(event, "node_id", "")
        item = self._item(sev, text, (node,) if node else ())
        item.setData(0, _NODE_ROLE + 1, event.run_id)
        self._run.append(item)
        self.addTopLevelItem(item)
        return item

    def _describe(self, item: QTreeWidgetItem, sev: str, text: str) -> None:
        item.setText(0, sev)
        item.setText(1, text)
        item.setToolTip(1, text)
        item.setIcon(0, self._icon(sev))

    def _item(self, sev: str, text: str, nodes: tuple[str, ...]) -> QTreeWidgetItem:
        item = QTreeWidgetItem([sev, text, ", ".join(nodes)])
        item.setToolTip(1, text)
        item.setData(0, _NODE_ROLE, nodes[0] if nodes else "")
        item.setIcon(0, self._icon(sev))
        return item

    def _icon(self, sev: str) -> QIcon:
        return self.style().standardIcon(
            self.style().StandardPixmap.SP_MessageBoxCritical
            if sev == "error"
            else self.style().StandardPixmap.SP_MessageBoxWarning
        )

    def messages(self) -> list[str]:
        """Return the problem texts, top to bottom."""
        items = (self.topLevelItem(i) for i in range(self.topLevelItemCount()))
        return [item.text(1) for item in items if item is not None]

    def _activated(self, item: QTreeWidgetItem, _column: int) -> None:
        node = item.data(0, _NODE_ROLE)
        if not node:
            return
        run_id = item.data(0, _NODE_ROLE + 1)
        if run_id:
            self.sig_run_node_activated.emit(str(run_id), str(node))
        else:
            self.sig_node_activated.emit(str(node))
