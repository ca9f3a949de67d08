"""The Artifacts dock: the Pit's artifacts by name and version, with quality, lineage, preview.

Selecting a version shows its details, its lineage (ancestors it was derived from, descendants
derived from it — click one to jump there) and a preview of its content. Opening a version puts it
in a text editor tab; saving there stores a *new* version derived from it (see
:class:`symphony.ui.text_editor.ArtifactSource`), so nothing stored is ever overwritten.
"""

from __future__ import annotations

import time
from html import escape
from typing import TYPE_CHECKING, Final

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPlainTextEdit,
    QPushButton,
    QSplitter,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

if TYPE_CHECKING:
    from symphony.pit import Pit

PREVIEW_BYTES: Final = 8192
_ID = Qt.ItemDataRole.UserRole


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
        self.filter = QLineEdit(self)
        self.filter.setPlaceholderText("Filter by name, kind or node…")
        self.filter.setClearButtonEnabled(True)
        self.tree = QTreeWidget(self)
        self.tree.setHeaderLabels(["Artifact", "Kind", "Quality", "Size"])
        self.tree.setColumnWidth(0, 150)
        self.tree.setColumnWidth(1, 64)
        self.tree.setColumnWidth(2, 56)
        self.tree.setUniformRowHeights(True)
        self.details = QLabel(self)
        self.details.setWordWrap(True)
        self.details.setTextFormat(Qt.TextFormat.RichText)
        self.details.setAlignment(Qt.AlignmentFlag.AlignTop)
        self.lineage = QListWidget(self)
        self.lineage.setMaximumHeight(110)
        self.preview = QPlainTextEdit(self)
        self.preview.setReadOnly(True)
        self.preview.setPlaceholderText("Select a version to preview it")
        self.open_button = QPushButton("Open in Editor", self)
        self.open_button.setEnabled(False)
        bottom = QWidget(self)
        bl = QVBoxLayout(bottom)
        bl.setContentsMargins(0, 0, 0, 0)
        bl.addWidget(self.details)
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
        layout.addWidget(self.filter)
        layout.addWidget(split)
        self.filter.textChanged.connect(lambda _t: self.refresh())
        self.tree.currentItemChanged.connect(self._on_current)
        self.tree.itemDoubleClicked.connect(self._on_double_click)
        self.lineage.itemDoubleClicked.connect(
            lambda item: self.select_artifact(int(item.data(_ID)))
        )
        self.open_button.clicked.connect(self._open_current)
        self.refresh()

    def set_pit(self, pit: Pit | None) -> None:
        """Browse ``pit`` (``None``: nothing)."""
        self.pit = pit
        self.refresh()

    def show_node(self, node_id: str) -> None:
        """Show only artifacts produced by node ``node_id`` (empty: all)."""
        self._node_filter = node_id
        self.refresh()

    # ---------------------------------------------------------------- listing

    def refresh(self) -> None:
        """Rebuild the list from the store, keeping the current selection."""
        keep = self.current_artifact()
        self.tree.clear()
        if self.pit is None or self.pit.closed:
            self.details.setText("<i>The Pit is not open yet.</i>")
            return
        store = self.pit.artifacts
        text = self.filter.text().strip().lower()
        for name in store.names():
            if name.startswith("cache/"):  # the conductor's cache index, not user data
                continue
            versions = []
            for vid in store.versions(name):
                info = store.info(vid)
                node = info.produced_by[1] if info.produced_by else ""
                if self._node_filter and node != self._node_filter:
                    continue
                hay = f"{name} {info.kind} {node}".lower()
                if text and text not in hay:
                    continue
                versions.append(info)
            if not versions:
                continue
            top = QTreeWidgetItem([name, versions[-1].kind, "", f"{len(versions)} versions"])
            top.setData(0, _ID, versions[-1].id)
            for info in reversed(versions):  # newest first
                q = store.quality(info.id)
                child = QTreeWidgetItem(
                    [
                        f"v{info.version}  (#{info.id})",
                        info.kind,
                        _score(q.structure),
                        f"{info.size:,} B",
                    ]
                )
                child.setData(0, _ID, info.id)
                if info.archived:
                    child.setToolTip(0, "archived: content not stored locally")
                top.addChild(child)
            self.tree.addTopLevelItem(top)
        if keep is not None:
            self.select_artifact(keep)
        else:
            empty = self.tree.topLevelItemCount() == 0
            self.details.setText(
                "<i>No artifacts yet: run a melody to create some.</i>"
                if empty
                else "<i>Select a version to see its lineage and content.</i>"
            )
            self.preview.clear()
            self.lineage.clear()

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
        for i in range(self.tree.topLevelItemCount()):
            top = self.tree.topLevelItem(i)
            if top is None:
                continue
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
            f"{info.size:,} bytes{' · ' + flags if flags else ''}<br>"
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
