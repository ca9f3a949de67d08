"""The Files dock: the workspace tree, served by the File Explorer extension.

Every listing and change goes through the extension child (``files.list`` paged,
``files.rename``/``files.write``/``files.mkdir``/``files.delete``); the tree stays current through
``files.watch`` and the ``files.changed`` notifications it pushes. Folders are listed when first
expanded, so a huge workspace costs nothing until it is browsed.
"""

from __future__ import annotations

import bisect
import logging
import posixpath
import unicodedata
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from PySide6.QtCore import QModelIndex, QPoint, Qt, Signal
from PySide6.QtGui import QAction, QStandardItem, QStandardItemModel
from PySide6.QtWidgets import (
    QInputDialog,
    QLabel,
    QMenu,
    QMessageBox,
    QStyle,
    QTreeView,
    QVBoxLayout,
    QWidget,
)

if TYPE_CHECKING:
    # Only for types: the host module pulls the protocol stack in (~100 ms), which the window
    # does not need before the extension host exists.
    from symphony.extension_host.host import CallFuture, CallResult, ExtensionHost

FILE_EXPLORER: Final = "symphony.file_explorer"
PAGE: Final = 500
#: What the dock says with no folder open.
NO_FOLDER: Final = "No folder open.\nFile → Open Workspace Folder…"
_PATH = Qt.ItemDataRole.UserRole
_KIND = Qt.ItemDataRole.UserRole + 1
_LOADED = Qt.ItemDataRole.UserRole + 2
_LINK = Qt.ItemDataRole.UserRole + 3
_PLACEHOLDER = "…"

_log = logging.getLogger("symphony.ui.files")


class FilesView(QWidget):
    """A lazily listed, live-updating tree of the workspace.

    Signals
    -------
    sig_open_file(str)
        A file was activated; carries its absolute path.
    sig_error(str)
        An operation failed; the message names the path and the problem.
    sig_listed(str)
        A folder's listing (relative path, ``""`` for the root) was applied.
    sig_renamed(str, str)
        A file or folder was renamed here (old and new absolute paths): open tabs follow it.
    sig_deleted(str)
        A file or folder was deleted here (its absolute path): open tabs of it say so.
    """

    sig_open_file = Signal(str)
    sig_error = Signal(str)
    sig_renamed = Signal(str, str)
    sig_deleted = Signal(str)
    sig_listed = Signal(str)

    def __init__(self, host: ExtensionHost | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.host: ExtensionHost | None = None
        self.workspace: Path | None = None
        self.model = QStandardItemModel(self)
        self.model.setHorizontalHeaderLabels(["Name"])
        self.tree = QTreeView(self)
        self.tree.setModel(self.model)
        self.tree.setHeaderHidden(True)
        self.tree.setUniformRowHeights(True)
        self.tree.setEditTriggers(QTreeView.EditTrigger.NoEditTriggers)
        self.tree.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        #: why the folder cannot be shown (the File Explorer is disabled), or None
        self.unavailable: str | None = None
        self.hint = QLabel(NO_FOLDER, self)
        self.hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.hint.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.hint)
        layout.addWidget(self.tree)
        self.tree.hide()
        self.tree.expanded.connect(self._on_expanded)
        self.tree.activated.connect(self._on_activated)
        self.tree.doubleClicked.connect(self._on_activated)
        self.tree.customContextMenuRequested.connect(self._context_menu)
        style = self.style()
        self._dir_icon = style.standardIcon(QStyle.StandardPixmap.SP_DirIcon)
        self._file_icon = style.standardIcon(QStyle.StandardPixmap.SP_FileIcon)
        self._pending: set[str] = set()
        if host is not None:
            self.set_host(host)

    # ---------------------------------------------------------------- setup

    def set_host(self, host: ExtensionHost) -> None:
        """Use ``host``'s File Explorer child (and listen to its change notifications)."""
        self.host = host
        host.sig_notification.connect(self._on_notification)
        if self.workspace is not None:
            self.set_workspace(self.workspace)

    def set_unavailable(self, reason: str | None) -> None:
        """Say why the folder cannot be shown instead of the tree (``None``: show it again).

        While the File Explorer is disabled, an empty tree would look like an empty folder.
        """
        self.unavailable = reason
        self._show_state()

    def _gone(self) -> str:
        return (
            f"The workspace folder {self.workspace} no longer exists: it was deleted or moved."
            "\nFile → Open Workspace Folder…"
        )

    def _show_state(self) -> None:
        if self.unavailable is not None:
            self.hint.setText(self.unavailable)
            shown = False
        else:
            self.hint.setText(NO_FOLDER)
            shown = self.workspace is not None
        self.tree.setVisible(shown)
        self.hint.setVisible(not shown)

    def set_workspace(self, folder: str | Path) -> None:
        """Show ``folder``: restart the extension on it, list its top level and watch it."""
        path = Path(folder).expanduser().resolve()
        if not path.is_dir():
            raise NotADirectoryError(f"workspace: {path} is not a folder")
        self.workspace = path
        self.model.removeRows(0, self.model.rowCount())
        self._pending.clear()
        self._show_state()
        host = self.host
        if host is None:
            return
        if host.workspace != path:
            from symphony.extension_host.host import NOT_STARTED

            host.forget(FILE_EXPLORER, "files.watch", {"path": ""})
            host.workspace = path
            if host.state(FILE_EXPLORER) != NOT_STARTED:
                host.stop(FILE_EXPLORER)
        self.refresh("")
        self._call("files.watch", {"path": ""}, replay=True)

    # ---------------------------------------------------------------- items

    def _root(self) -> QStandardItem:
        return self.model.invisibleRootItem()

    def item_for(self, rel: str) -> QStandardItem | None:
        """Return the tree item of ``rel`` (``""``: the invisible root), if it is listed."""
        item = self._root()
        if not rel:
            return item
        for part in rel.split("/"):
            found = None
            for row in range(item.rowCount()):
                child = item.child(row)
                if child is not None and child.text() == part and child.data(_KIND) is not None:
                    found = child
                    break
            if found is None:
                return None
            item = found
        return item

    def names(self, rel: str = "") -> list[str]:
        """Names listed under folder ``rel`` (tests, accessibility)."""
        item = self.item_for(rel)
        if item is None:
            return []
        return [
            c.text()
            for r in range(item.rowCount())
            if (c := item.child(r)) is not None and c.data(_KIND) is not None
        ]

    def is_loaded(self, rel: str) -> bool:
        """Whether folder ``rel`` has been listed."""
        item = self.item_for(rel)
        return item is not None and (not rel or bool(item.data(_LOADED)))

    # ---------------------------------------------------------------- listing

    def refresh(self, rel: str = "") -> None:
        """List folder ``rel`` again (all pages) and update its rows in place."""
        if self.host is None or rel in self._pending:
            return
        self._pending.add(rel)
        entries: list[dict[str, Any]] = []
        self._page(rel, None, entries)

    def _page(self, rel: str, cursor: str | None, acc: list[dict[str, Any]]) -> None:
        def done(result: CallResult) -> None:
            res = result.result
            acc.extend(res.get("entries", []))
            nxt = res.get("next_cursor")
            if nxt:
                self._page(rel, nxt, acc)
            else:
                self._pending.discard(rel)
                if not rel and self.unavailable is not None and self.unavailable == self._gone():
                    self.set_unavailable(None)  # the folder is back
                self._apply(rel, acc)

        def failed(err: BaseException) -> None:
            self._pending.discard(rel)
            if not rel and "not_found" in str(getattr(err, "data", "")):
                # the workspace itself is gone: its old rows would look like files still there
                root = self._root()
                root.removeRows(0, root.rowCount())
                self.set_unavailable(self._gone())

        self._call(
            "files.list", {"path": rel, "cursor": cursor, "limit": PAGE}, done, failed, quiet=True
        )

    def _apply(self, rel: str, entries: list[dict[str, Any]]) -> None:
        parent = self.item_for(rel)
        if parent is None:
            return  # the folder vanished from the tree meanwhile
        if rel:
            parent.setData(True, _LOADED)
        wanted = {e["name"]: e for e in entries}
        stale: list[int] = []
        for row in range(parent.rowCount()):
            child = parent.child(row)
            e = None if child is None else wanted.pop(child.text(), None)
            if (
                child is None
                or e is None
                or child.data(_KIND) is None
                or (e["kind"] == "dir") != (child.data(_KIND) == "dir")
            ):
                stale.append(row)
                if child is not None and e is not None:
                    wanted[child.text()] = e  # a file that became a folder (or back): new row
            else:
                self._describe(child, e)  # its size or kind (file → dangling link) may differ
        _remove_rows(parent, stale)
        self._insert(parent, list(wanted.values()))
        self.sig_listed.emit(rel)

    def _describe(self, item: QStandardItem, e: dict[str, Any]) -> None:
        """Set the row's path, kind and tooltip from listing entry ``e`` (where they differ)."""
        tip = _tooltip(e)
        if item.data(_KIND) != e["kind"] or item.toolTip() != tip or item.data(_PATH) != e["path"]:
            item.setData(e["path"], _PATH)
            item.setData(e["kind"], _KIND)
            item.setData(bool(e.get("link")), _LINK)
            item.setToolTip(tip)

    def _insert(self, parent: QStandardItem, entries: list[dict[str, Any]]) -> None:
        """Add rows for ``entries`` under ``parent``, keeping folders first, then files by name.

        The new rows are sorted once and inserted in runs (one ``insertRows`` per gap between
        existing rows): a 5,000-file folder is one insertion, not 5,000 scans of the rows.
        """
        if not entries:
            return
        new: list[tuple[tuple[bool, str], QStandardItem]] = []
        for e in entries:
            is_dir = e["kind"] == "dir"
            item = QStandardItem(self._dir_icon if is_dir else self._file_icon, e["name"])
            self._describe(item, e)
            if is_dir:
                item.appendRow([QStandardItem(_PLACEHOLDER)])
            new.append(((not is_dir, e["name"].lower()), item))
        new.sort(key=lambda pair: pair[0])
        # The service pages by name only; the existing rows are already in this order.
        existing = [
            (c.data(_KIND) != "dir", c.text().lower())
            for r in range(parent.rowCount())
            if (c := parent.child(r)) is not None
        ]
        runs: list[tuple[int, list[QStandardItem]]] = []
        for key, item in new:
            row = bisect.bisect_right(existing, key)
            if runs and runs[-1][0] == row:
                runs[-1][1].append(item)
            else:
                runs.append((row, [item]))
        # From the last gap backwards, so the earlier row numbers stay valid.
        for row, items in reversed(runs):
            parent.insertRows(row, items)

    def _on_expanded(self, index: QModelIndex) -> None:
        item = self.model.itemFromIndex(index)
        if item is not None and item.data(_KIND) == "dir" and not item.data(_LOADED):
            self.refresh(str(item.data(_PATH)))

    def expand(self, rel: str) -> None:
        """Expand (and list) folder ``rel``."""
        item = self.item_for(rel)
        if item is not None and rel:
            self.tree.expand(item.index())
            if not item.data(_LOADED):
                self.refresh(rel)

    def _on_notification(self, ext: str, method: str, params: Any, _body: bytes) -> None:
        if ext != FILE_EXPLORER or method != "files.changed" or not isinstance(params, dict):
            return
        folders: set[str] = set()
        for change in params.get("changes", []):
            if change.get("kind") == "overflow":
                folders |= {"", *self._loaded_folders()}
                continue
            for p in (change.get("path"), change.get("new_path")):
                if p:
                    folders.add(posixpath.dirname(p))
        for folder in sorted(folders):
            if self.is_loaded(folder):
                self.refresh(folder)

    def _loaded_folders(self) -> list[str]:
        out: list[str] = []

        def walk(item: QStandardItem) -> None:
            for r in range(item.rowCount()):
                c = item.child(r)
                if c is not None and c.data(_KIND) == "dir" and c.data(_LOADED):
                    out.append(str(c.data(_PATH)))
                    walk(c)

        walk(self._root())
        return out

    # ---------------------------------------------------------------- operations

    def _call(
        self,
        method: str,
        params: dict[str, Any],
        on_done: Callable[[CallResult], None] | None = None,
        on_error: Callable[[BaseException], None] | None = None,
        *,
        replay: bool = False,
        quiet: bool = False,
        report: bool = True,
    ) -> CallFuture | None:
        if self.host is None:
            self.sig_error.emit("the file service is not running yet")
            return None
        fut = self.host.request(FILE_EXPLORER, method, params, replay=replay)

        def finished(f: Any) -> None:
            err = f.exception()
            if err is None:
                if on_done is not None:
                    on_done(f.result())
                return
            if on_error is not None:
                on_error(err)
            if not report:
                return  # on_error tells the user itself
            if quiet and "not_found" in str(getattr(err, "data", "")):
                return  # a folder removed while it was being listed
            if type(err).__name__ == "ShuttingDownError":
                return  # the application is closing: nobody is waiting for the answer
            msg = f"{method} {params.get('path') or params.get('src', '')}: {err}"
            _log.warning(msg)
            self.sig_error.emit(msg)

        fut.add_done_callback(finished)
        return fut

    def open_path(self, rel: str) -> None:
        """Ask to open workspace file ``rel`` in an editor."""
        if self.workspace is not None:
            self.sig_open_file.emit(str(self.workspace / rel))

    def _create(self, method: str, folder: str, name: str, **extra: Any) -> CallFuture | None:
        err = _check_name(name)
        if err:
            self.sig_error.emit(err)
            return None
        rel = posixpath.join(folder, name) if folder else name
        return self._call(method, {"path": rel, **extra})

    def new_file(self, folder: str, name: str) -> CallFuture | None:
        """Create an empty file ``name`` in ``folder`` (refused if it exists)."""
        return self._create("files.write", folder, name, overwrite=False)

    def new_folder(self, folder: str, name: str) -> CallFuture | None:
        """Create folder ``name`` in ``folder``."""
        return self._create("files.mkdir", folder, name)

    def rename(self, rel: str, new_name: str) -> CallFuture | None:
        """Rename ``rel`` to ``new_name`` in the same folder (refused if the name is taken)."""
        err = _check_name(new_name)
        if err:
            self.sig_error.emit(err)
            return None
        dst = posixpath.join(posixpath.dirname(rel), new_name)
        root = self.workspace
        return self._call(
            "files.rename",
            {"src": rel, "dst": dst},
            None if root is None else lambda _r: self.sig_renamed.emit(str(root / rel),
                                                                       str(root / dst)),
        )  # fmt: skip

    def delete(self, rel: str, *, is_dir: bool, confirm: bool = True) -> CallFuture | None:
        """Delete ``rel`` (a folder with everything in it) after the user confirms.

        A symbolic link is removed as a link and what it points to is kept (the service never
        follows a link it deletes), and the question says so rather than "the folder and
        everything in it".
        """
        if confirm:
            row = self.item_for(rel)
            if row is not None and (row.data(_LINK) or row.data(_KIND) == "symlink"):
                what = f"the link {rel!r} (what it points to is kept)"
            elif is_dir:
                what = f"the folder {rel!r} and everything in it"
            else:
                what = f"{rel!r}"
            answer = QMessageBox.question(
                self,
                "Delete",
                f"Delete {what}? This cannot be undone.",
                QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
                QMessageBox.StandardButton.No,
            )
            if answer != QMessageBox.StandardButton.Yes:
                return None
        root = self.workspace
        return self._call(
            "files.delete",
            {"path": rel, "recursive": is_dir},
            None if root is None else lambda _r: self.sig_deleted.emit(str(root / rel)),
        )

    def _on_activated(self, index: QModelIndex) -> None:
        item = self.model.itemFromIndex(index)
        if item is None:
            return
        kind, rel = item.data(_KIND), str(item.data(_PATH))
        if kind == "file":
            self.open_path(rel)
        elif kind == "symlink":
            self._explain_link(rel)
        elif kind == "other":
            self.sig_error.emit(
                f"cannot open {rel}: it is not a regular file (a device, pipe or socket)"
            )

    def _explain_link(self, rel: str) -> None:
        """Say why link ``rel`` cannot be opened (the service names the reason), or open it."""

        def done(result: CallResult) -> None:
            # The link was repaired since the listing: open it, or list it anew.
            if isinstance(result.result, dict) and result.result.get("kind") == "file":
                self.open_path(rel)
            else:
                self.refresh(posixpath.dirname(rel))

        def failed(err: BaseException) -> None:
            if type(err).__name__ != "ShuttingDownError":  # closing: nobody is waiting
                self.sig_error.emit(f"cannot open {rel}: {err}")

        self._call("files.stat", {"path": rel}, done, failed, report=False)

    def _selected(self, pos: QPoint) -> tuple[str, str | None]:
        item = self.model.itemFromIndex(self.tree.indexAt(pos))
        if item is None or item.data(_KIND) is None:
            return "", None
        return str(item.data(_PATH)), str(item.data(_KIND))

    def _context_menu(self, pos: QPoint) -> None:
        rel, kind = self._selected(pos)
        folder = rel if kind == "dir" else posixpath.dirname(rel)
        menu = QMenu(self)

        def ask(title: str, label: str, text: str = "") -> str | None:
            value, ok = QInputDialog.getText(self, title, label, text=text)
            return value if ok and value else None

        actions: list[tuple[str, Callable[[], object]]] = []
        if kind == "file":
            actions.append(("Open", lambda: self.open_path(rel)))
        actions.append(
            ("New File…", lambda: (n := ask("New File", "Name:")) and self.new_file(folder, n))
        )
        actions.append(
            (
                "New Folder…",
                lambda: (n := ask("New Folder", "Name:")) and self.new_folder(folder, n),
            )
        )
        if kind is not None:
            name = posixpath.basename(rel)
            actions.append(
                ("Rename…", lambda: (n := ask("Rename", "New name:", name)) and self.rename(rel, n))
            )
            actions.append(("Delete…", lambda: self.delete(rel, is_dir=kind == "dir")))
        actions.append(("Refresh", lambda: self.refresh(folder)))
        for text, fn in actions:
            act = QAction(text, menu)
            act.triggered.connect(lambda _checked=False, f=fn: f())
            menu.addAction(act)
        menu.exec(self.tree.viewport().mapToGlobal(pos))


def _tooltip(e: dict[str, Any]) -> str:
    kind, path = e["kind"], e["path"]
    if e.get("link") and kind in ("dir", "file"):
        what = "folder" if kind == "dir" else "file"
        return f"{path} — a symbolic link to a {what} in the workspace"
    if kind == "dir":
        return str(path)
    if kind == "symlink":
        return f"{path} — a symbolic link to something missing or outside the workspace"
    if kind == "other":
        return f"{path} — not a regular file (a device, pipe or socket)"
    return f"{path} — {e['size']:,} bytes"


def _remove_rows(parent: QStandardItem, rows: list[int]) -> None:
    """Remove ``rows`` (ascending) of ``parent``, one ``removeRows`` per contiguous run."""
    end = len(rows)
    while end:
        start = end - 1
        while start and rows[start - 1] == rows[start] - 1:
            start -= 1
        parent.removeRows(rows[start], end - start)
        end = start


#: Characters that make a name unusable in most tools and dialogs, by what users call them.
_CONTROL_NAMES: Final = {
    "\0": "a NUL character",
    "\t": "a tab",
    "\n": "a line break",
    "\r": "a carriage return",
    "\x1b": "an escape character",
    "\x7f": "a delete character",
    "\u2028": "a line separator",
    "\u2029": "a paragraph separator",
}


def _check_name(name: str) -> str:
    """Return the problem with a new file or folder name (empty if it is fine)."""
    for ch in name:
        if ch in _CONTROL_NAMES or unicodedata.category(ch) == "Cc":
            what = _CONTROL_NAMES.get(ch, "a control character")
            return (
                f"name: {name!r} contains {what} (U+{ord(ch):04X}); "
                "file and folder names must not contain control characters"
            )
    if not name.strip():
        return "name: must not be empty"
    if "/" in name or "\\" in name or name in (".", ".."):
        return f"name: {name!r} must be a single file or folder name (no '/' or '..')"
    return ""
