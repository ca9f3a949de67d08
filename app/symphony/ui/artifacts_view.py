"""The Artifacts dock: the Pit's artifacts by name and version, with quality, lineage, preview.

Selecting a version shows its details, its lineage (ancestors it was derived from, descendants
derived from it — click one to jump there) and a preview of its content. Opening a version puts it
in a text editor tab; saving there stores a *new* version derived from it (see
:class:`symphony.ui.text_editor.ArtifactSource`), so nothing stored is ever overwritten.
"""

from __future__ import annotations

import bisect
import time
from collections.abc import Callable
from html import escape
from typing import TYPE_CHECKING, Final

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QFrame,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPlainTextEdit,
    QPushButton,
    QScrollArea,
    QSplitter,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from symphony.conductor import (
    CACHE_PREFIX,
    EVENTS_PREFIX,
    MELODY_PREFIX,
    OUTPUT_PREFIX,
    RUN_PREFIX,
    TRACE_PREFIX,
)
from symphony.pit import PitError

if TYPE_CHECKING:
    from symphony.pit import Pit

PREVIEW_BYTES: Final = 8192
# The conductor's cache index is bookkeeping, not user data.
HIDDEN_PREFIXES: Final = (CACHE_PREFIX,)
# What the conductor keeps of every run (its record, the melody it ran, its decision traces and
# event log): listed only on request, or a few hundred runs bury the outputs.
RUN_RECORD_PREFIXES: Final = (RUN_PREFIX, MELODY_PREFIX, TRACE_PREFIX, EVENTS_PREFIX)
_ID = Qt.ItemDataRole.UserRole
_SELECT_HINT: Final = "<i>Select a version to see its lineage and content.</i>"


def _score(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"


class ArtifactsView(QWidget):
    """Browse one Pit's Artifact Store.

    Signals
    -------
    sig_open_artifact(int)
        Open this version in an editor tab.
    """

    sig_open_artifact = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.pit: Pit | None = None
        self._node_filter = ""
        self._node_melody: str | None = None
        self._seen = 0  # the newest version id the list has taken into account
        self._pit_error = ""
        self._tops: dict[str, QTreeWidgetItem] = {}
        self._names: list[str] = []  # listed, in the tree's (sorted) order
        # The versions listed per name (those the filters let through), oldest first.
        self._listed: dict[str, list[int]] = {}
        self.filter = QLineEdit(self)
        self.filter.setPlaceholderText("Filter by name, kind or node…")
        self.filter.setClearButtonEnabled(True)
        self.show_records = QCheckBox("Run records", self)
        self.show_records.setToolTip(
            "Also list what the conductor keeps of every run: its record (run/…), the melody it "
            "ran (melody/…) and its recovery decisions (fqg.trace/…)"
        )
        self.tree = QTreeWidget(self)
        self.tree.setHeaderLabels(["Artifact", "Kind", "Quality", "Size"])
        for col, width in enumerate((150, 72, 52, 76)):
            self.tree.setColumnWidth(col, width)
        # the name takes what the dock can spare; when it must be cut, the middle goes, not the
        # node and port at its end that tell one output from another
        header = self.tree.header()
        header.setStretchLastSection(False)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.tree.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.tree.setUniformRowHeights(True)
        # The dock shares its side with Properties: the list keeps room for a few names, and the
        # details scroll rather than squeeze it.
        self.tree.setMinimumHeight(96)
        self.details = QLabel(self)
        self.details.setWordWrap(True)
        self.details.setTextFormat(Qt.TextFormat.RichText)
        self.details.setAlignment(Qt.AlignmentFlag.AlignTop)
        details_area = QScrollArea(self)
        details_area.setWidget(self.details)
        details_area.setWidgetResizable(True)
        details_area.setFrameShape(QFrame.Shape.NoFrame)
        details_area.setMinimumHeight(40)
        details_area.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.lineage = QListWidget(self)
        self.lineage.setMaximumHeight(110)
        self.lineage.setMinimumHeight(36)
        self.preview = QPlainTextEdit(self)
        self.preview.setMinimumHeight(36)
        self.preview.setReadOnly(True)
        self.preview.setPlaceholderText("Select a version to preview it")
        self.open_button = QPushButton("Open in Editor", self)
        self.open_button.setEnabled(False)
        bottom = QWidget(self)
        bl = QVBoxLayout(bottom)
        bl.setContentsMargins(0, 0, 0, 0)
        bl.addWidget(details_area)
        bl.addWidget(QLabel("Lineage (double-click to go there):", bottom))
        bl.addWidget(self.lineage)
        bl.addWidget(self.preview, 1)
        bl.addWidget(self.open_button)
        split = QSplitter(Qt.Orientation.Vertical, self)
        split.addWidget(self.tree)
        split.addWidget(bottom)
        split.setSizes([200, 300])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        top_row = QHBoxLayout()
        top_row.setContentsMargins(0, 0, 0, 0)
        top_row.addWidget(self.filter, 1)
        top_row.addWidget(self.show_records)
        layout.addLayout(top_row)
        # The selected node's view says so: a list that quietly leaves out most of the store
        # looks as if artifacts were lost.
        self.scope = QLabel(self)
        self.scope.setObjectName("artifacts_scope")
        self.scope.setWordWrap(True)
        self.scope.setTextFormat(Qt.TextFormat.RichText)
        self.scope.hide()
        layout.addWidget(self.scope)
        layout.addWidget(split)
        self.filter.textChanged.connect(lambda _t: self.refresh())
        self.show_records.toggled.connect(lambda _on: self.refresh())
        self.tree.currentItemChanged.connect(self._on_current)
        self.tree.itemExpanded.connect(self._populate)
        self.tree.itemDoubleClicked.connect(self._on_double_click)
        self.lineage.itemDoubleClicked.connect(
            lambda item: self.select_artifact(int(item.data(_ID)))
        )
        self.open_button.clicked.connect(self._open_current)
        self.refresh()

    def set_pit(self, pit: Pit | None, error: str = "") -> None:
        """Browse ``pit`` (``None``: nothing, because of ``error`` if given)."""
        self.pit = pit
        self._pit_error = error
        self._seen = 0
        self.refresh()

    def show_node(self, node_id: str, melody: str | None = None) -> None:
        """Show only artifacts produced by node ``node_id`` (empty: all).

        Parameters
        ----------
        node_id
            The node whose outputs are listed; ``""`` lists everything again.
        melody
            The name of the melody the node belongs to: only that melody's outputs of the
            node (``out/<melody>/<node>/…``, versions edited in the IDE included) are listed.
            Node ids repeat across melodies (most have an ``n1``, many a ``write``), so
            without it the outputs of every melody's node of that id are listed.
        """
        melody = melody if node_id else None
        self._node_filter = node_id
        self._node_melody = melody
        if node_id:
            where = f" of {melody}" if melody is not None else ""
            self.scope.setText(
                f"Only what node <b>{escape(node_id)}</b>{escape(where)} produced; select no "
                "node on the board to see all"
            )
        self.scope.setVisible(bool(node_id))
        self.refresh()

    @property
    def node_view(self) -> tuple[str, str | None]:
        """Return ``(node_id, melody)`` of :meth:`show_node` (``("", None)``: everything)."""
        return self._node_filter, self._node_melody

    # ---------------------------------------------------------------- listing
    #
    # A long-lived Pit holds tens of thousands of versions, so the list is built by name: one row
    # per name (its newest version's kind and the version count), with the versions themselves
    # made only when a name is expanded or one of them is selected; and a version stored during
    # a run is added where it belongs instead of rebuilding the list.

    def refresh(self) -> None:
        """Rebuild the list from the store, keeping the current selection."""
        keep = self.current_artifact()
        self.tree.clear()
        self._tops.clear()
        self._listed.clear()
        self._names.clear()
        if self.pit is None or self.pit.closed:
            if self.pit is None and self._pit_error:
                self.details.setText(f"<i>No artifacts:</i> {escape(self._pit_error)}")
            else:
                self.details.setText("<i>The Pit is not open yet.</i>")
            return
        store = self.pit.artifacts
        # Read first: anything stored while the list is built is caught by the next catch_up().
        self._seen = max(store.ids_after(self._seen), default=self._seen)
        matches = self._matcher()
        # the hidden families (a cache entry per node and run) are left out in Rust, uncopied
        for name in store.names(exclude=self._hidden()):
            ids = store.versions(name)
            if matches is not None and not (ids := [a for a in ids if matches(name, a)]):
                continue
            if ids:
                self._listed[name] = ids
                self._names.append(name)
                self.tree.addTopLevelItem(self._make_top(name))
        if keep is not None and self.select_artifact(keep):
            return
        empty = self.tree.topLevelItemCount() == 0
        self.details.setText(
            "<i>No artifacts yet: run a melody to create some.</i>" if empty else _SELECT_HINT
        )
        self.preview.clear()
        self.lineage.clear()

    def catch_up(self) -> None:
        """List the versions stored since the list was built or last caught up."""
        if self.pit is None or self.pit.closed:
            return
        new = self.pit.artifacts.ids_after(self._seen)
        if new:
            self._seen = new[-1]
            self.add_versions(new)

    def add_versions(self, artifact_ids: list[int]) -> None:
        """List newly stored versions (those the filters let through) without a rebuild."""
        if self.pit is None or self.pit.closed:
            return
        store = self.pit.artifacts
        matches = self._matcher()
        hidden = self._hidden()
        for aid in artifact_ids:
            try:
                name = store.info(aid).name
            except PitError:  # the Pit closed meanwhile, or an id from another Pit: not ours
                continue
            if name.startswith(hidden):
                continue
            if matches is not None and not matches(name, aid):
                continue
            listed = self._listed.setdefault(name, [])
            if listed and aid <= listed[-1]:  # a name's versions are listed in id order
                continue
            listed.append(aid)
            top = self._tops.get(name)
            if top is None:
                i = bisect.bisect(self._names, name)
                self._names.insert(i, name)
                self.tree.insertTopLevelItem(i, self._make_top(name))
                continue
            self._describe_top(top, name)
            if top.childCount():
                top.insertChild(0, self._make_version(aid))
        if self.tree.topLevelItemCount() and self.current_artifact() is None:
            # the first outputs of a run replace "No artifacts yet"
            self.details.setText(_SELECT_HINT)

    def _hidden(self) -> tuple[str, ...]:
        if self.show_records.isChecked():
            return HIDDEN_PREFIXES
        return HIDDEN_PREFIXES + RUN_RECORD_PREFIXES

    def _matcher(self) -> Callable[[str, int], bool] | None:
        """Return the test a version must pass to be listed (``None``: no filter)."""
        text = self.filter.text().strip().lower()
        node_filter = self._node_filter
        if not text and not node_filter:
            return None
        assert self.pit is not None
        info_of = self.pit.artifacts.info
        if node_filter and self._node_melody is not None:
            prefix = f"{OUTPUT_PREFIX}{self._node_melody}/{node_filter}/"

            def in_melody(name: str, artifact_id: int) -> bool:
                if not name.startswith(prefix):
                    return False
                info = info_of(artifact_id)
                # An edit made in the IDE names no producer; a name that only looks alike
                # (melody "a/b" and node "c" vs melody "a" and node "b") names another node.
                if info.produced_by and info.produced_by[1] != node_filter:
                    return False
                return not text or text in f"{name} {info.kind} {node_filter}".lower()

            return in_melody

        def matches(name: str, artifact_id: int) -> bool:
            if not node_filter and text in name.lower():
                return True
            info = info_of(artifact_id)
            node = info.produced_by[1] if info.produced_by else ""
            if node_filter and node != node_filter:
                return False
            return not text or text in f"{name} {info.kind} {node}".lower()

        return matches

    def _make_top(self, name: str) -> QTreeWidgetItem:
        top = QTreeWidgetItem([name, "", "", ""])
        top.setChildIndicatorPolicy(QTreeWidgetItem.ChildIndicatorPolicy.ShowIndicator)
        self._tops[name] = top
        self._describe_top(top, name)
        return top

    def _describe_top(self, top: QTreeWidgetItem, name: str) -> None:
        assert self.pit is not None
        ids = self._listed[name]
        top.setText(1, self.pit.artifacts.info(ids[-1]).kind)
        top.setText(3, f"{len(ids)} version" + ("s" if len(ids) != 1 else ""))
        top.setToolTip(0, name)
        top.setData(0, _ID, ids[-1])

    def _make_version(self, artifact_id: int) -> QTreeWidgetItem:
        assert self.pit is not None
        store = self.pit.artifacts
        info = store.info(artifact_id)
        q = store.quality(artifact_id)
        # a node's own score (what `score` conditions read) says more than well-formedness
        scored = q.semantics is not None
        child = QTreeWidgetItem(
            [
                f"v{info.version}  (#{info.id})",
                info.kind,
                _score(q.semantics if scored else q.structure),
                f"{info.size:,} B",
            ]
        )
        child.setToolTip(
            2,
            "the node's own score (what score conditions read)"
            if scored
            else "structure: how well-formed the content is (the node gave no score)",
        )
        child.setData(0, _ID, info.id)
        if info.archived:
            child.setToolTip(0, "archived: content not stored locally")
        return child

    def _populate(self, top: QTreeWidgetItem) -> None:
        """Make the version rows of a name (newest first), once."""
        if top.childCount() or self.pit is None or self.pit.closed:
            return
        ids = self._listed.get(top.text(0), [])
        top.addChildren([self._make_version(aid) for aid in reversed(ids)])

    def artifact_names(self) -> list[str]:
        """Return the names listed (tests, accessibility)."""
        items = (self.tree.topLevelItem(i) for i in range(self.tree.topLevelItemCount()))
        return [item.text(0) for item in items if item is not None]

    def current_artifact(self) -> int | None:
        """Return the id of the selected version, if any."""
        item = self.tree.currentItem()
        if item is None or item.data(0, _ID) is None:
            return None
        return int(item.data(0, _ID))

    def select_artifact(self, artifact_id: int) -> bool:
        """Select version ``artifact_id`` in the list (False if it is not listed)."""
        if self.pit is None or self.pit.closed:
            return False
        try:
            name = self.pit.artifacts.info(artifact_id).name
        except PitError:
            return False
        if name.startswith(RUN_RECORD_PREFIXES) and not self.show_records.isChecked():
            self.show_records.setChecked(True)  # asked for by id: show what it belongs to
        top = self._tops.get(name)
        if top is None or artifact_id not in self._listed[name]:
            return False
        self._populate(top)
        for j in range(top.childCount()):
            child = top.child(j)
            if child is not None and child.data(0, _ID) == artifact_id:
                top.setExpanded(True)
                self.tree.setCurrentItem(child)
                return True
        return False

    # ---------------------------------------------------------------- details

    def _on_current(self, item: QTreeWidgetItem | None, _prev: QTreeWidgetItem | None) -> None:
        artifact = self.current_artifact()
        self.open_button.setEnabled(artifact is not None)
        if artifact is None or self.pit is None:
            return
        self.show_details(artifact)

    def show_details(self, artifact_id: int) -> None:
        """Fill the details, lineage and preview of version ``artifact_id``."""
        assert self.pit is not None
        store = self.pit.artifacts
        info = store.info(artifact_id)
        q = store.quality(artifact_id)
        producer = " / ".join(p for p in info.produced_by if p) if info.produced_by else "—"
        flags = ", ".join(f for f, on in (("held", info.held), ("archived", info.archived)) if on)
        created = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(info.created))
        self.details.setText(
            f"<b>{escape(info.name)}</b> v{info.version} (#{info.id}) · {escape(info.kind)} · "
            f"{info.size:,} byte{'' if info.size == 1 else 's'}{' · ' + flags if flags else ''}<br>"
            f"created {created} by {escape(info.actor)} · produced by {escape(producer)}<br>"
            f"quality: structure {_score(q.structure)} · semantics {_score(q.semantics)} · "
            f"utility {_score(q.utility)} · used {info.reuses}× "
            f"({info.successes} ok / {info.failures} failed runs)<br>"
            f"<span style='font-family:monospace'>{info.content_hash[:16]}…</span>"
        )
        self.lineage.clear()
        for label, ids in (
            ("↑ from", store.ancestors(artifact_id)),
            ("↓ to", store.descendants(artifact_id)),
        ):
            for aid in ids:
                other = store.info(aid)
                item = QListWidgetItem(f"{label} {other.name} v{other.version} (#{aid})")
                item.setData(_ID, aid)
                self.lineage.addItem(item)
        if self.lineage.count() == 0:
            self.lineage.addItem("no lineage: not derived from or into anything")
        self.preview.setPlainText(self._preview_text(artifact_id, info.kind, info.archived))

    def _preview_text(self, artifact_id: int, kind: str, archived: bool) -> str:
        assert self.pit is not None
        if archived:
            return "(archived: restore it to preview)"
        try:
            data = self.pit.artifacts.get(artifact_id, actor="ui")
        except Exception as e:  # a damaged blob must not break the dock; show why
            return f"(cannot read: {e})"
        head = data[:PREVIEW_BYTES]
        if kind == "binary" or b"\0" in head:
            return " ".join(f"{b:02x}" for b in head[:512]) + (" …" if len(data) > 512 else "")
        text = head.decode("utf-8", errors="replace")
        if len(data) > PREVIEW_BYTES:
            text += f"\n… ({len(data) - PREVIEW_BYTES:,} more bytes)"
        return text

    def _on_double_click(self, item: QTreeWidgetItem, _column: int) -> None:
        if item.parent() is not None and item.data(0, _ID) is not None:
            self.sig_open_artifact.emit(int(item.data(0, _ID)))

    def _open_current(self) -> None:
        artifact = self.current_artifact()
        if artifact is not None:
            self.sig_open_artifact.emit(artifact)
