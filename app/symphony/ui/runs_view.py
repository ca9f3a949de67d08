"""The Runs dock: every run the Pit remembers, newest first, and what became of its nodes.

A run stopped by closing the window, a crash or ``kill -9`` is listed as *interrupted*; while its
progress is kept it can be resumed from here (the melody it ran opens on a board and the run
goes on from its checkpoint), as can failed and stopped runs. *Show on Board* opens the melody
as it ran with each node's last state painted on it. Selecting a run lists its nodes;
double-clicking a node with outputs selects its newest output in the Artifacts dock.

Rows are read from the run records (:mod:`symphony.conductor.history`), the newest
:data:`MAX_LISTED` when the Pit opens; afterwards only the run a conductor event names is read
again, so a long run history costs one listing, not one per event.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Final

from PySide6.QtCore import QPoint, Qt, QTimer, Signal
from PySide6.QtGui import QBrush, QColor, QGuiApplication
from PySide6.QtWidgets import (
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMenu,
    QPushButton,
    QSplitter,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from symphony.conductor import events as ev
from symphony.conductor import history
from symphony.conductor.history import format_duration
from symphony.conductor.run_cli import resume_command
from symphony.pit import PitError

if TYPE_CHECKING:
    from symphony.pit import Pit

#: How many runs are listed (the most recently active); older ones stay in the Pit.
MAX_LISTED: Final = 500
_ID = Qt.ItemDataRole.UserRole
_COLUMNS: Final = ("Started", "Melody", "Status", "Took", "Nodes", "Cost", "Run")
# Status hues that read on light and dark backgrounds alike.
_HUES: Final = {
    ev.RUN_SUCCEEDED: "#2e9d4f",
    ev.RUN_FAILED: "#d64541",
    ev.RUN_INTERRUPTED: "#d08a1e",
    ev.RUN_CANCELLED: "#8a8a8a",
    ev.RUN_RUNNING: "#3b7dd8",
    ev.RUN_PAUSED: "#3b7dd8",
    history.DAMAGED: "#b5179e",  # not a failure of the run: its record cannot be read
}


def format_when(t: float, now: float | None = None) -> str:
    """Return a start time as a person scans a list: the time today, else the date too."""
    now = time.time() if now is None else now
    lt, ln = time.localtime(t), time.localtime(now)
    if lt[:3] == ln[:3]:
        return time.strftime("%H:%M:%S", lt)
    if lt.tm_year == ln.tm_year:
        return time.strftime("%d %b %H:%M", lt)
    return time.strftime("%Y-%m-%d %H:%M", lt)


class RunsView(QWidget):
    """Browse one Pit's run history; resume or show a run.

    Signals
    -------
    sig_resume(str)
        Resume this run (its progress is kept and it stopped short).
    sig_show(str)
        Open the melody this run ran and show its nodes' states.
    sig_artifact_activated(int)
        Show this artifact (a node's output) in the Artifacts dock.
    """

    sig_resume = Signal(str)
    sig_show = Signal(str)
    sig_artifact_activated = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.pit: Pit | None = None
        #: the Pit's key file, named in Copy Resume Command (``None``: the key is in the keyring)
        self.key_file: str | None = None
        #: ids of the runs going on in this process → their state (set by the window)
        self.live: Callable[[], Mapping[str, str]] = dict
        #: whether a new run may start now (Resume is offered only then)
        self.can_start: Callable[[], bool] = lambda: True
        self._items: dict[str, QTreeWidgetItem] = {}
        self._summaries: dict[str, history.RunSummary] = {}
        # The selected run's nodes are read again at most every 300 ms while it runs: reading
        # them at every node event would cost a 1,000-node run a million reads.
        self._nodes_timer = QTimer(self)
        self._nodes_timer.setSingleShot(True)
        self._nodes_timer.setInterval(300)
        self._nodes_timer.timeout.connect(self._current_changed)
        self.resume_button = QPushButton("Resume", self)
        self.resume_button.setToolTip(
            "Continue the selected run from its checkpoint: nodes that succeeded keep their "
            "outputs, the rest run again"
        )
        self.show_button = QPushButton("Show on Board", self)
        self.show_button.setToolTip("Open the melody this run ran, with each node's last state")
        self.refresh_button = QPushButton("Refresh", self)
        self.filter = QLineEdit(self)
        self.filter.setPlaceholderText("Filter by melody, status or id…")
        self.filter.setClearButtonEnabled(True)
        self.count_label = QLabel(self)
        self.tree = QTreeWidget(self)
        self.tree.setHeaderLabels(list(_COLUMNS))
        self.tree.setRootIsDecorated(False)
        self.tree.setUniformRowHeights(True)
        self.tree.setAlternatingRowColors(True)
        header = self.tree.header()
        header.setStretchLastSection(False)
        for col, width in enumerate((112, 150, 112, 70, 54, 56, 190)):
            self.tree.setColumnWidth(col, width)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        self.heading = QLabel(self)
        self.heading.setWordWrap(True)
        self.heading.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.nodes = QTreeWidget(self)
        self.nodes.setHeaderLabels(["Node", "State", "Took", "Attempts", "Cost", "Outputs"])
        self.nodes.setRootIsDecorated(False)
        self.nodes.setUniformRowHeights(True)
        self.nodes.setColumnWidth(0, 140)
        self.nodes.setColumnWidth(1, 80)
        self.nodes.setColumnWidth(2, 64)
        self.nodes.setColumnWidth(3, 110)
        self.nodes.setColumnWidth(4, 56)
        self.nodes.setToolTip("Double-click a node with outputs to show them in Artifacts")
        left = QWidget(self)
        ll = QVBoxLayout(left)
        ll.setContentsMargins(0, 0, 0, 0)
        buttons = QHBoxLayout()
        buttons.setContentsMargins(0, 0, 0, 0)
        for b in (self.resume_button, self.show_button, self.refresh_button):
            buttons.addWidget(b)
        buttons.addWidget(self.filter, 1)
        buttons.addWidget(self.count_label)
        ll.addLayout(buttons)
        ll.addWidget(self.tree)
        right = QWidget(self)
        rl = QVBoxLayout(right)
        rl.setContentsMargins(0, 0, 0, 0)
        rl.addWidget(self.heading)
        rl.addWidget(self.nodes)
        split = QSplitter(Qt.Orientation.Horizontal, self)
        split.addWidget(left)
        split.addWidget(right)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 2)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(split)
        self.resume_button.clicked.connect(self._resume_current)
        self.show_button.clicked.connect(self._show_current)
        self.refresh_button.clicked.connect(self.refresh)
        self.tree.currentItemChanged.connect(lambda *_a: self._current_changed())
        self.tree.itemDoubleClicked.connect(lambda *_a: self._show_current())
        self.tree.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.tree.customContextMenuRequested.connect(self._context_menu)
        self.filter.textChanged.connect(lambda _t: self._apply_filter())
        self.nodes.itemDoubleClicked.connect(self._node_activated)
        self.set_pit(None)

    # ---------------------------------------------------------------- data

    def set_pit(self, pit: Pit | None, error: str = "") -> None:
        """List ``pit``'s runs (``None``: none, saying ``error`` if it failed to open)."""
        self.pit = pit
        self._error = error
        self.refresh()

    def refresh(self) -> None:
        """Read the newest :data:`MAX_LISTED` runs again, keeping the selection."""
        current = self.current_run_id()
        self.tree.clear()
        self._items.clear()
        self._summaries.clear()
        runs: list[history.RunSummary] = []
        if self.pit is not None:
            try:
                runs = history.list_runs(self.pit, live=self.live(), limit=MAX_LISTED)
            except PitError as e:
                self._error = str(e)
        for run in runs:
            self._items[run.run_id] = self._item(run)
        self.tree.addTopLevelItems(list(self._items.values()))
        self._apply_filter()
        if current is not None:
            self.select_run(current)
        self._current_changed()

    def run_changed(self, run_id: str) -> None:
        """Read one run again (a conductor event named it): update its row, or add it on top."""
        if self.pit is None:
            return
        try:
            run = history.read_run(self.pit, run_id, live=self.live())
        except (KeyError, ValueError, PitError):
            return
        old = self._items.get(run_id)
        if old is not None:
            self._summaries[run_id] = run
            self._fill(old, run)
            self._apply_filter()  # its status may now match the filter, or no longer
        else:
            self._items[run_id] = item = self._item(run)
            self.tree.insertTopLevelItem(0, item)
            self._apply_filter()
            if self.tree.currentItem() is None:  # nothing chosen yet: follow the new run
                self.tree.setCurrentItem(item)
        if run_id == self.current_run_id():
            self._current_changed()
        else:
            self._update_buttons()

    def node_changed(self, run_id: str) -> None:
        """Follow a node state change of ``run_id`` in the node list, if that run is shown."""
        if run_id == self.current_run_id() and not self._nodes_timer.isActive():
            self._nodes_timer.start()

    def summary(self, run_id: str) -> history.RunSummary | None:
        """Return the listed summary of ``run_id`` (``None`` if it is not listed)."""
        return self._summaries.get(run_id)

    def run_ids(self) -> list[str]:
        """Return the listed runs, top to bottom."""
        items = (self.tree.topLevelItem(i) for i in range(self.tree.topLevelItemCount()))
        return [str(item.data(0, _ID)) for item in items if item is not None]

    def resumable(self) -> list[history.RunSummary]:
        """Return the listed runs that can be resumed, top to bottom."""
        listed = (self._summaries.get(run_id) for run_id in self.run_ids())
        return [s for s in listed if s is not None and s.resumable]

    # ---------------------------------------------------------------- selection

    def current_run_id(self) -> str | None:
        """Return the selected run's id, if any."""
        item = self.tree.currentItem()
        return None if item is None else str(item.data(0, _ID))

    def select_run(self, run_id: str) -> bool:
        """Select ``run_id`` if it is listed."""
        item = self._items.get(run_id)
        if item is None:
            return False
        self.tree.setCurrentItem(item)
        self.tree.scrollToItem(item)
        return True

    def _current_changed(self) -> None:
        run_id = self.current_run_id()
        run = None if run_id is None else self._summaries.get(run_id)
        self.nodes.clear()
        self._update_buttons()
        if run is None:
            self.heading.setText("Select a run to see its nodes")
            return
        words = [f"<b>{run.melody or '(unreadable melody)'}</b> · {run.status}"]
        if run.detail:
            words.append(run.detail)
        if run.resumable:
            words.append("resumable")
        elif run.status in history.RESUMABLE and not run.kept:
            words.append("no longer resumable: its progress was pruned from the run history")
        self.heading.setText(" — ".join(words))
        if self.pit is None or self.pit.closed:
            return
        try:  # once pruned, from what its event log kept
            steps = history.node_steps(self.pit, run.run_id)
        except (PitError, KeyError, ValueError):  # gone since it was listed
            return
        for step in steps:
            item = QTreeWidgetItem(
                [
                    step.node_id,
                    step.label,
                    format_duration(step.took) if step.took is not None else "",
                    step.attempts_text,
                    "" if step.cost is None else f"{step.cost:.4g}",
                    ", ".join(f"#{a}" for a in step.outputs),
                ]
            )
            if step.model:
                item.setToolTip(0, f"{step.node_id}: model {step.model}")
            item.setData(0, _ID, list(step.outputs))
            self.nodes.addTopLevelItem(item)

    def _update_buttons(self) -> None:
        run_id = self.current_run_id()
        run = None if run_id is None else self._summaries.get(run_id)
        self.resume_button.setEnabled(run is not None and run.resumable and self.can_start())
        self.show_button.setEnabled(run is not None and bool(run.melody))

    def update_actions(self) -> None:
        """Follow the window's run state (Resume waits while a run goes on)."""
        self._update_buttons()

    # ---------------------------------------------------------------- filter and menu

    def _apply_filter(self) -> None:
        words = self.filter.text().casefold().split()
        for run_id, item in self._items.items():
            run = self._summaries[run_id]
            hay = f"{run.melody} {run.status} {run_id} {run.detail}".casefold()
            item.setHidden(not all(w in hay for w in words))
        self._update_count()

    def visible_run_ids(self) -> list[str]:
        """Return the listed runs the filter lets through, top to bottom."""
        return [r for r in self.run_ids() if not self._items[r].isHidden()]

    def resume_command(self, run_id: str) -> str:
        """Return the shell command that resumes ``run_id`` on this Pit, from any folder.

        It names this Pit's data folder and key file unless they are the defaults; the run's
        workspace comes from its record.
        """
        data_dir = None if self.pit is None else self.pit.data_dir
        return resume_command(run_id, data_dir=data_dir, key_file=self.key_file)

    def menu_for(self, run_id: str) -> QMenu:
        """Return the context menu of run ``run_id``'s row."""
        self.select_run(run_id)
        menu = QMenu(self)
        resume = menu.addAction("Resume", self._resume_current)
        resume.setEnabled(self.resume_button.isEnabled())
        show = menu.addAction("Show on Board", self._show_current)
        show.setEnabled(self.show_button.isEnabled())
        menu.addSeparator()
        clipboard = QGuiApplication.clipboard()
        menu.addAction("Copy Run ID", lambda: clipboard.setText(run_id))
        menu.addAction(
            "Copy Resume Command", lambda: clipboard.setText(self.resume_command(run_id))
        ).setEnabled(self._summaries[run_id].resumable)
        return menu

    def _context_menu(self, pos: QPoint) -> None:
        item = self.tree.itemAt(pos)
        if item is not None:
            self.menu_for(str(item.data(0, _ID))).exec(self.tree.viewport().mapToGlobal(pos))

    # ---------------------------------------------------------------- actions

    def _resume_current(self) -> None:
        run_id = self.current_run_id()
        if run_id is not None and self.resume_button.isEnabled():
            self.sig_resume.emit(run_id)

    def _show_current(self) -> None:
        run_id = self.current_run_id()
        if run_id is not None and self.show_button.isEnabled():
            self.sig_show.emit(run_id)

    def _node_activated(self, item: QTreeWidgetItem, _column: int) -> None:
        outputs = item.data(0, _ID) or []
        if outputs:
            self.sig_artifact_activated.emit(int(outputs[-1]))

    # ---------------------------------------------------------------- rows

    def _item(self, run: history.RunSummary) -> QTreeWidgetItem:
        self._summaries[run.run_id] = run
        item = QTreeWidgetItem()
        item.setData(0, _ID, run.run_id)
        self._fill(item, run)
        return item

    def _fill(self, item: QTreeWidgetItem, run: history.RunSummary) -> None:
        status = run.status + (" ↻" if run.resumable else "")
        texts = (
            format_when(run.started),
            run.melody or "(unreadable)",
            status,
            format_duration(run.duration),
            f"{run.done_nodes}/{run.total_nodes}" if run.nodes else "—",
            "—" if run.cost is None else f"{run.cost:.4g}",
            run.run_id,
        )
        for col, text in enumerate(texts):
            item.setText(col, text)
        item.setToolTip(0, time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(run.started)))
        tip = run.detail or run.status
        if run.resumable:
            tip += "\nResumable: select it and press Resume"
        item.setToolTip(2, tip)
        item.setForeground(2, QBrush(QColor(_HUES.get(run.status, "#8a8a8a"))))
        for col in (3, 4, 5):
            item.setTextAlignment(col, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)

    def _update_count(self) -> None:
        n = self.tree.topLevelItemCount()
        shown = sum(1 for item in self._items.values() if not item.isHidden())
        if self.pit is None:
            self.count_label.setText(f"No runs: {self._error}" if self._error else "No Pit yet")
        elif n == 0:
            self.count_label.setText("No runs yet")
        elif shown < n:
            self.count_label.setText(f"{shown} of {n} runs")
        else:
            more = " (the newest)" if n >= MAX_LISTED else ""
            self.count_label.setText(f"{n} run{'s' if n != 1 else ''}{more}")
        self.count_label.setToolTip(self._error if self.pit is None else "")
