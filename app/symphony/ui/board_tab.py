"""A central tab holding one Harmony Board (a ``BoardView`` over one ``MelodyEditor``).

This is the one module of :mod:`symphony.ui` that imports the canvas and document packages (and
the palette and properties widgets built on them); the main window imports it lazily, the first
time a melody is opened, so start-up does not pay for the canvas.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QRectF, Signal
from PySide6.QtGui import QUndoStack
from PySide6.QtWidgets import QVBoxLayout, QWidget

from symphony.canvas.view import BoardView
from symphony.document.editor import EditError, MelodyEditor
from symphony.registry import NodeTypeRegistry
from symphony.ui.palette import PaletteWidget
from symphony.ui.properties import PropertiesPanel
from symphony.workflow import Melody, MelodyEvent

ZOOM_STEP = 1.25
#: The name of a new melody until its first save names it after its file.
UNTITLED = "Untitled melody"


def make_palette(registry: NodeTypeRegistry, parent: QWidget | None = None) -> QWidget:
    """Return the node palette of the Palette dock."""
    return PaletteWidget(registry, parent)


def make_properties(parent: QWidget | None = None) -> PropertiesPanel:
    """Return the Properties dock's panel (its ``set_editor`` follows the current tab)."""
    return PropertiesPanel(parent)


class BoardTab(QWidget):
    """One open melody: its editor (model + undo stack) and its board view.

    Signals
    -------
    sig_modified_changed(bool)
    sig_title_changed(str)
    sig_selection_changed(list)
        Selected node ids.
    sig_melody_changed()
        Any edit of the melody (the main window revalidates, debounced).
    """

    sig_modified_changed = Signal(bool)
    sig_title_changed = Signal(str)
    sig_selection_changed = Signal(list)
    sig_melody_changed = Signal()

    def __init__(self, editor: MelodyEditor, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.editor = editor
        editor.setParent(self)  # the tab owns its document: closing the tab frees both
        self.view = BoardView(editor, self)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.view)
        editor.sig_modified_changed.connect(self.sig_modified_changed)
        editor.sig_path_changed.connect(lambda _p: self.sig_title_changed.emit(self.title))
        editor.sig_selection_changed.connect(self.sig_selection_changed)
        self._listener: Callable[[MelodyEvent], None] = lambda _e: self.sig_melody_changed.emit()
        editor.melody.events.subscribe(self._listener)

    # ---------------------------------------------------------------- construction

    @classmethod
    def open(cls, path: str | Path, registry: NodeTypeRegistry) -> BoardTab:
        """Open a ``.melody`` file (raises ``MelodyFormatError``/``OSError`` naming it)."""
        return cls(MelodyEditor.open(Path(path), registry))

    @classmethod
    def from_template(cls, template_id: str, registry: NodeTypeRegistry) -> BoardTab:
        """Return a new, unsaved melody from a shipped template."""
        return cls(MelodyEditor.from_template(template_id, registry))

    @classmethod
    def from_melody(cls, melody: Melody, registry: NodeTypeRegistry) -> BoardTab:
        """Return an unsaved board over ``melody`` (e.g. the melody a past run ran)."""
        return cls(MelodyEditor(melody, registry))

    @classmethod
    def new(cls, registry: NodeTypeRegistry, name: str = UNTITLED) -> BoardTab:
        """Return a new, empty, unsaved melody called ``name``."""
        return cls(MelodyEditor(Melody(name), registry))

    def dispose(self) -> None:
        """Stop listening to the melody (the tab is closing)."""
        self.editor.melody.events.unsubscribe(self._listener)

    # ---------------------------------------------------------------- document

    @property
    def melody(self) -> Melody:
        """The melody being edited."""
        return self.editor.melody

    @property
    def undo_stack(self) -> QUndoStack:
        """The editor's undo stack (the Edit menu's Undo/Redo follow it)."""
        return self.editor.undo_stack

    @property
    def path(self) -> Path | None:
        """The file, or ``None`` while unsaved."""
        p = self.editor.path
        return Path(p) if p else None

    @property
    def title(self) -> str:
        """The file name, or the melody's name for an unsaved one."""
        p = self.path
        return p.name if p is not None else self.melody.name or UNTITLED

    def is_modified(self) -> bool:
        """Whether there are unsaved edits."""
        return bool(self.editor.is_modified())

    def save(self, path: str | Path | None = None) -> None:
        """Save to ``path`` (or the current file)."""
        self.editor.save(Path(path) if path is not None else None)

    def selected_node_ids(self) -> list[str]:
        """Return the selected nodes."""
        return list(self.editor.selected_node_ids())

    # ---------------------------------------------------------------- view

    def select_all(self) -> None:
        """Select every node."""
        self.view.select_all()

    def select_node(self, node_id: str) -> bool:
        """Select only ``node_id`` and bring it into view (False if the melody has no such node).

        A node already in full view stays where it is (picking a row in Problems or the
        Timeline must not make the board jump); one that is not is centred, by its middle
        (:meth:`BoardView.reveal`).
        """
        node = self.melody.nodes.get(node_id)
        if node is None:
            return False
        self.editor.set_selection([node_id])
        item = self.view.board_scene.node_items.get(node_id)
        self.view.reveal(
            item.sceneBoundingRect() if item is not None else QRectF(*node.position, 0, 0)
        )
        return True

    def cut(self) -> None:
        """Copy the selected nodes to the clipboard, then delete them (one undo step)."""
        self.view.cut_selection()

    def copy(self) -> None:
        """Copy the selected nodes (and the links among them) to the clipboard."""
        self.editor.copy()

    def paste(self) -> str:
        """Paste the clipboard's nodes; return why nothing was pasted (empty on success)."""
        try:
            self.editor.paste()
        except EditError as e:
            return str(e)
        return ""

    def delete(self) -> None:
        """Delete the selected nodes, links and notes."""
        self.view.delete_selection()

    def toggle_breakpoints(self) -> None:
        """Toggle the breakpoint of each selected node (undoable)."""
        self.view.toggle_breakpoints()

    def zoom(self) -> float:
        """Return the view's scale factor (1.0 = 100 %)."""
        return float(self.view.zoom())

    def set_zoom(self, factor: float) -> None:
        """Zoom to ``factor`` (the view clamps it)."""
        self.view.set_zoom(factor)

    def zoom_in(self) -> None:
        """Zoom in one step."""
        self.set_zoom(self.zoom() * ZOOM_STEP)

    def zoom_out(self) -> None:
        """Zoom out one step."""
        self.set_zoom(self.zoom() / ZOOM_STEP)

    def fit(self) -> None:
        """Fit the whole melody in view."""
        self.view.fit_all()
