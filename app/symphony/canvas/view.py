"""The Harmony Board view: zoom, pan, fit, keyboard, drops from the palette, minimap, run states.

:class:`BoardView` shows one :class:`~symphony.document.editor.MelodyEditor`'s melody. The main
window embeds it and, while the conductor runs, calls :meth:`BoardView.set_node_run_state` and
:meth:`BoardView.append_node_preview`; those are view state (never saved, never undone).

Performance: nodes paint themselves with cached pens and fonts and drop detail when small; below
``OVERVIEW_LOD`` the scene paints all nodes and links in a handful of batched path fills instead
of one Python call per item; the background (grid) is cached by the view; streamed preview text
repaints only the preview strip of its node.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from PySide6.QtCore import QEvent, QPoint, QPointF, QRectF, Qt, QTimer, Signal
from PySide6.QtGui import (
    QContextMenuEvent,
    QCursor,
    QDragEnterEvent,
    QDragMoveEvent,
    QDropEvent,
    QKeyEvent,
    QKeySequence,
    QMouseEvent,
    QPainter,
    QResizeEvent,
    QShowEvent,
    QWheelEvent,
)
from PySide6.QtWidgets import QGraphicsView, QInputDialog, QMenu, QWidget

from symphony.canvas.geometry import HEADER_HEIGHT, NODE_WIDTH, node_height
from symphony.canvas.minimap import Minimap
from symphony.canvas.quickadd import QuickAddPopup
from symphony.canvas.scene import BoardScene
from symphony.canvas.style import BoardStyle
from symphony.document.editor import EditError, MelodyEditor
from symphony.workflow.model import DependencyKind

__all__ = ["NODE_TYPE_MIME", "OVERVIEW_LOD", "BoardView"]

NODE_TYPE_MIME: Final = "application/x-symphony-node-type"
OVERVIEW_LOD: Final = 0.35
MIN_SCALE: Final = 0.04
MAX_SCALE: Final = 3.0
ZOOM_STEP: Final = 1.15
SCENE_MARGIN: Final = 4000.0
ANIMATION_MS: Final = 60
FREE_SPOT_GAP: Final = 24.0  # room kept around a node added from the palette
FREE_SPOT_RINGS: Final = 4  # how far from the middle of the view such a node looks for room


class BoardView(QGraphicsView):
    """The Harmony Board of one melody.

    Parameters
    ----------
    editor
        The melody's controller; every edit made on the board goes through it.
    parent
        Qt parent.
    """

    sig_status_message = Signal(str)
    sig_zoom_changed = Signal(float)
    sig_node_activated = Signal(str)

    def __init__(self, editor: MelodyEditor, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._editor = editor
        self.board_style = BoardStyle.from_palette(self.palette(), self.font())
        self._scene = BoardScene(editor, self.board_style, self)
        # before the scene: setting it may scroll the view, and scrolling updates the minimap
        self.minimap = Minimap(self)
        self.setScene(self._scene)
        self.setRenderHints(QPainter.RenderHint.Antialiasing | QPainter.RenderHint.TextAntialiasing)
        self.setCacheMode(QGraphicsView.CacheModeFlag.CacheBackground)
        self.setViewportUpdateMode(QGraphicsView.ViewportUpdateMode.MinimalViewportUpdate)
        self.setOptimizationFlag(QGraphicsView.OptimizationFlag.DontAdjustForAntialiasing)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        self.setResizeAnchor(QGraphicsView.ViewportAnchor.AnchorViewCenter)
        self.setDragMode(QGraphicsView.DragMode.RubberBandDrag)
        self.setRubberBandSelectionMode(Qt.ItemSelectionMode.IntersectsItemShape)
        self.setAcceptDrops(True)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self._last_status = ""
        self._pan_from: QPoint | None = None
        self._space_down = False
        self._quick_add: QuickAddPopup | None = None
        self._quick_add_pos = QPointF()
        self._animation = QTimer(self)
        self._animation.setInterval(ANIMATION_MS)
        self._animation.timeout.connect(self._animate)
        self._phase = 0
        self._fit_on_show = False
        self._settle = QTimer(self)
        self._settle.setSingleShot(True)
        self._settle.setInterval(250)
        self._settle.timeout.connect(self._settled)
        self._scene.sig_status_message.connect(self._show_status)
        self._scene.sig_quick_add_requested.connect(self.open_quick_add)
        self._scene.sig_node_activated.connect(self.sig_node_activated)
        self._scene.changed.connect(self._on_scene_changed)
        self._update_scene_rect()
        self.minimap.refresh()

    # ------------------------------------------------------------------ properties

    @property
    def editor(self) -> MelodyEditor:
        """The controller of the shown melody."""
        return self._editor

    @property
    def board_scene(self) -> BoardScene:
        """The scene holding the items."""
        return self._scene

    @property
    def last_status_message(self) -> str:
        """The last message the board showed (refused links, drops of unknown types)."""
        return self._last_status

    def zoom(self) -> float:
        """Return the current scale (1.0: one scene unit per pixel)."""
        return self.transform().m11()

    # ------------------------------------------------------------------ zoom and pan

    def set_zoom(self, scale: float, anchor: QPointF | None = None) -> None:
        """Zoom to ``scale`` (clamped), keeping ``anchor`` (scene coordinates) in place."""
        scale = max(MIN_SCALE, min(MAX_SCALE, scale))
        factor = scale / self.zoom()
        if abs(factor - 1.0) < 1e-9:
            return
        if anchor is None:
            anchor = self.mapToScene(self.viewport().rect().center())
        before = self.mapFromScene(anchor)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.NoAnchor)
        self.scale(factor, factor)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        # put the anchor back under the same viewport pixel
        drift = anchor - self.mapToScene(before)
        self.translate_scene(drift.x(), drift.y())
        self._after_zoom()

    def translate_scene(self, dx: float, dy: float) -> None:
        """Pan by ``(dx, dy)`` scene units (positive moves the content left/up)."""
        s = self.zoom()
        h, v = self.horizontalScrollBar(), self.verticalScrollBar()
        h.setValue(h.value() + round(dx * s))
        v.setValue(v.value() + round(dy * s))

    def fit_all(self) -> None:
        """Zoom and pan so every node and note is visible (never above 100 %).

        Called before the view is shown, it fits again once the view has its real size.
        """
        self._fit_on_show = not self.isVisible()
        rect = self._scene.content_rect()
        if rect.isEmpty():
            self.resetTransform()
            self.centerOn(0.0, 0.0)
            self._after_zoom()
            return
        self._update_scene_rect()
        rect = rect.adjusted(-40.0, -40.0, 40.0, 40.0)
        self.fitInView(rect, Qt.AspectRatioMode.KeepAspectRatio)
        if self.zoom() > 1.0:
            self.resetTransform()
            self.centerOn(rect.center())
        elif self.zoom() < MIN_SCALE:
            self.set_zoom(MIN_SCALE)
            self.centerOn(rect.center())
        self._after_zoom()

    def reveal(self, rect: QRectF) -> None:
        """Bring ``rect`` (scene coordinates) into view, centred, unless it is in full view.

        Left alone when already visible, so picking something on the board from a list
        does not make the board jump.
        """
        if self.mapToScene(self.viewport().rect()).boundingRect().contains(rect):
            return
        if not self.sceneRect().contains(rect):
            self._update_scene_rect()  # a node just added far out: the view may not go there yet
        self.centerOn(rect.center())

    def _after_zoom(self) -> None:
        self._scene.set_overview(self.zoom() < OVERVIEW_LOD)
        self.minimap.update()
        self.sig_zoom_changed.emit(self.zoom())

    def wheelEvent(self, event: QWheelEvent) -> None:  # noqa: D102, N802
        delta = event.angleDelta().y()
        if delta == 0:
            return
        anchor = self.mapToScene(event.position().toPoint())
        self.set_zoom(self.zoom() * ZOOM_STEP ** (delta / 120.0), anchor)
        event.accept()

    def scrollContentsBy(self, dx: int, dy: int) -> None:  # noqa: D102, N802
        super().scrollContentsBy(dx, dy)
        self.minimap.update()

    def _update_scene_rect(self) -> None:
        rect = self._scene.content_rect()
        if rect.isEmpty():
            rect = QRectF(-400.0, -300.0, 800.0, 600.0)
        m = SCENE_MARGIN
        self.setSceneRect(rect.adjusted(-m, -m, m, m))

    def _on_scene_changed(self, _regions: object) -> None:
        # changes come in bursts (a drag, a run); look at the whole board at most every 250 ms
        if not self._settle.isActive():
            self._settle.start()

    def _settled(self) -> None:
        self.minimap.refresh()
        content = self._scene.content_rect()
        half = SCENE_MARGIN / 2
        if not self.sceneRect().adjusted(half, half, -half, -half).contains(content):
            self._update_scene_rect()

    def showEvent(self, event: QShowEvent) -> None:  # noqa: D102, N802
        super().showEvent(event)
        if self._fit_on_show:
            QTimer.singleShot(0, self.fit_all)

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: D102, N802
        super().resizeEvent(event)
        self.minimap.move(
            self.width() - self.minimap.width() - 10, self.height() - self.minimap.height() - 10
        )

    # ------------------------------------------------------------------ mouse and keyboard

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: D102, N802
        if event.button() == Qt.MouseButton.MiddleButton or (
            self._space_down and event.button() == Qt.MouseButton.LeftButton
        ):
            self._pan_from = event.position().toPoint()
            self.viewport().setCursor(Qt.CursorShape.ClosedHandCursor)
            event.accept()
            return
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:  # noqa: D102, N802
        if self._pan_from is not None:
            pos = event.position().toPoint()
            delta = pos - self._pan_from
            self._pan_from = pos
            s = self.zoom()
            self.translate_scene(-delta.x() / s, -delta.y() / s)
            event.accept()
            return
        super().mouseMoveEvent(event)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:  # noqa: D102, N802
        if self._pan_from is not None:
            self._pan_from = None
            self.viewport().setCursor(
                Qt.CursorShape.OpenHandCursor if self._space_down else Qt.CursorShape.ArrowCursor
            )
            event.accept()
            return
        super().mouseReleaseEvent(event)

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: D102, N802
        if self._handle_key(event):
            event.accept()
            return
        super().keyPressEvent(event)

    def keyReleaseEvent(self, event: QKeyEvent) -> None:  # noqa: D102, N802
        if event.key() == Qt.Key.Key_Space and not event.isAutoRepeat() and self._space_down:
            self._space_down = False
            self.viewport().unsetCursor()
            event.accept()
            return
        super().keyReleaseEvent(event)

    def focusNextPrevChild(self, next: bool) -> bool:  # noqa: A002, D102, N802
        # Tab opens quick-add instead of moving the focus away from the board
        return False

    def _editing_text(self) -> bool:
        focus = self._scene.focusItem()
        return focus is not None and bool(focus.flags() & focus.GraphicsItemFlag.ItemIsFocusable)

    def _handle_key(self, event: QKeyEvent) -> bool:
        if self._editing_text():
            return False
        key = event.key()
        if key == Qt.Key.Key_Space and not event.isAutoRepeat():
            self._space_down = True
            self.viewport().setCursor(Qt.CursorShape.OpenHandCursor)
            return True
        if key == Qt.Key.Key_Tab:
            self.open_quick_add()
            return True
        if key in (Qt.Key.Key_Delete, Qt.Key.Key_Backspace):
            self.delete_selection()
            return True
        ctrl = bool(event.modifiers() & Qt.KeyboardModifier.ControlModifier)
        if ctrl and key == Qt.Key.Key_0:
            self.fit_all()
            return True
        if ctrl and key in (Qt.Key.Key_Plus, Qt.Key.Key_Equal):
            self.set_zoom(self.zoom() * ZOOM_STEP)
            return True
        if ctrl and key == Qt.Key.Key_Minus:
            self.set_zoom(self.zoom() / ZOOM_STEP)
            return True
        actions = {
            QKeySequence.StandardKey.Copy: lambda: self._editor.copy(),
            QKeySequence.StandardKey.Paste: lambda: self._guard(self._editor.paste),
            QKeySequence.StandardKey.Cut: self.cut_selection,
            QKeySequence.StandardKey.SelectAll: self.select_all,
            QKeySequence.StandardKey.Undo: self._editor.undo_stack.undo,
            QKeySequence.StandardKey.Redo: self._editor.undo_stack.redo,
        }
        for standard, action in actions.items():
            if event.matches(standard):
                action()
                return True
        if ctrl and key == Qt.Key.Key_D:
            self._guard(self._editor.duplicate)
            return True
        if ctrl and key == Qt.Key.Key_L:
            self._editor.auto_layout()
            return True
        return False

    def _guard(self, action: object) -> None:
        try:
            action()  # type: ignore[operator]
        except EditError as exc:
            self._show_status(str(exc))

    def contextMenuEvent(self, event: QContextMenuEvent) -> None:  # noqa: D102, N802
        scene_pos = self.mapToScene(event.pos())
        menu = QMenu(self)
        menu.addAction("Add node…", lambda: self.open_quick_add(scene_pos))
        menu.addAction(
            "Add sticky note", lambda: self._editor.add_note((scene_pos.x(), scene_pos.y()))
        )
        menu.addSeparator()
        nodes, links, notes = self._scene.selected_ids()
        if nodes:
            menu.addAction("Toggle breakpoint", self.toggle_breakpoints)
            menu.addAction("Duplicate", lambda: self._guard(self._editor.duplicate))
            menu.addAction("Copy", lambda: self._editor.copy())
        menu.addAction(
            "Paste",
            lambda: self._guard(lambda: self._editor.paste(at=(scene_pos.x(), scene_pos.y()))),
        )
        if links:
            kinds = menu.addMenu("Dependency")
            for kind in DependencyKind:
                kinds.addAction(kind.value.capitalize(), self._kind_setter(links, kind))
            menu.addAction("Set condition…", lambda: self._ask_condition(links))
        if nodes or links or notes:
            menu.addAction("Delete", self.delete_selection)
        menu.addSeparator()
        menu.addAction("Auto-layout", self._editor.auto_layout)
        menu.addAction("Fit all", self.fit_all)
        menu.exec(event.globalPos())

    # ------------------------------------------------------------------ edits of the selection

    def _for_links(self, links: list[str], action: Callable[[str], None]) -> None:
        stack = self._editor.undo_stack
        stack.beginMacro("Change links")
        try:
            for link_id in links:
                action(link_id)
        except EditError as exc:
            self._show_status(str(exc))
        finally:
            stack.endMacro()

    def _kind_setter(self, links: list[str], kind: DependencyKind) -> Callable[[], None]:
        def apply() -> None:
            self._for_links(links, lambda i: self._editor.set_link_kind(i, kind))

        return apply

    def _ask_condition(self, links: list[str]) -> None:
        current = self._editor.melody.links[links[0]].condition or ""
        text, ok = QInputDialog.getText(
            self, "Link condition", "Follow the link only if (e.g. score >= 0.7):", text=current
        )
        if ok:
            self._for_links(links, lambda i: self._editor.set_link_condition(i, text))

    def delete_selection(self) -> None:
        """Delete the selected nodes, links and notes (one undo step for nodes and links)."""
        nodes, links, notes = self._scene.selected_ids()
        if nodes or links:
            self._editor.delete(nodes, links)
        if notes:
            self._editor.remove_notes(notes)

    def cut_selection(self) -> None:
        """Copy the selected nodes, then delete them."""
        nodes, _, _ = self._scene.selected_ids()
        if nodes:
            self._editor.copy(nodes)
            self._editor.remove_nodes(nodes)

    def select_all(self) -> None:
        """Select every node."""
        self._editor.set_selection(list(self._editor.melody.nodes))

    def toggle_breakpoints(self) -> None:
        """Toggle the breakpoint of each selected node."""
        stack = self._editor.undo_stack
        ids = self._editor.selected_node_ids()
        if not ids:
            return
        stack.beginMacro("Toggle breakpoints")
        try:
            for node_id in ids:
                node = self._editor.melody.nodes[node_id]
                self._editor.set_breakpoint(node_id, not node.breakpoint)
        finally:
            stack.endMacro()

    # ------------------------------------------------------------------ quick add and drops

    def open_quick_add(self, scene_pos: QPointF | None = None) -> QuickAddPopup:
        """Show the quick-add search; the chosen type goes to ``scene_pos`` (default: cursor)."""
        if scene_pos is None:
            local = self.viewport().mapFromGlobal(QCursor.pos())
            if not self.viewport().rect().contains(local):
                local = self.viewport().rect().center()
            scene_pos = self.mapToScene(local)
        self._quick_add_pos = QPointF(scene_pos)
        if self._quick_add is None:
            self._quick_add = QuickAddPopup(self._editor.registry, self)
            self._quick_add.sig_chosen.connect(self._add_from_quick_add)
        self._quick_add.popup(self.viewport().mapToGlobal(self.mapFromScene(scene_pos)))
        return self._quick_add

    def _add_from_quick_add(self, type_id: str) -> None:
        self.add_node_at(type_id, self._quick_add_pos)

    def add_node_at(self, type_id: str, scene_pos: QPointF) -> str | None:
        """Add a node of ``type_id`` centred under ``scene_pos``; select and return it."""
        try:
            node_id = self._editor.add_node(
                type_id, (scene_pos.x() - NODE_WIDTH / 2, scene_pos.y() - HEADER_HEIGHT / 2)
            )
        except EditError as exc:
            self._show_status(str(exc))
            return None
        self._editor.set_selection([node_id])
        self.setFocus()
        return node_id

    def add_node_in_view(self, type_id: str) -> str | None:
        """Add a node of ``type_id`` in the middle of the view, or at the free spot nearest it.

        What a palette entry's double-click or Enter does: a node added again and again goes
        beside or below the others, never over their ports; when the view has no room left,
        the view moves to show it.
        """
        desc = self._editor.registry.get(type_id)
        height = node_height(len(desc.inputs), len(desc.outputs)) if desc else HEADER_HEIGHT
        taken = [
            item.sceneBoundingRect().adjusted(-FREE_SPOT_GAP, -FREE_SPOT_GAP, FREE_SPOT_GAP,
                                              FREE_SPOT_GAP)
            for item in self._scene.node_items.values()
        ]  # fmt: skip
        centre = self.mapToScene(self.viewport().rect().center())
        x0, y0 = centre.x() - NODE_WIDTH / 2, centre.y() - height / 2
        step_x, step_y = NODE_WIDTH + FREE_SPOT_GAP, height + FREE_SPOT_GAP
        # rings of spots around the middle, nearest first: the first that overlaps no node
        spots = sorted(
            ((i, j) for i in range(-FREE_SPOT_RINGS, FREE_SPOT_RINGS + 1)
             for j in range(-FREE_SPOT_RINGS, FREE_SPOT_RINGS + 1)),
            key=lambda ij: (max(abs(ij[0]), abs(ij[1])), abs(ij[1]), abs(ij[0]), -ij[0], -ij[1]),
        )  # fmt: skip
        rects = [QRectF(x0 + i * step_x, y0 + j * step_y, NODE_WIDTH, height) for i, j in spots]
        free = [r for r in rects if not any(r.intersects(t) for t in taken)]
        # one the user sees first; off screen only when the view has no room left
        shown = self.mapToScene(self.viewport().rect()).boundingRect()
        spot = next((r for r in free if shown.contains(r)), free[0] if free else rects[0])
        node_id = self.add_node_at(
            type_id, QPointF(spot.x() + NODE_WIDTH / 2, spot.y() + HEADER_HEIGHT / 2)
        )
        if node_id is not None:
            margin = int(FREE_SPOT_GAP)
            self.ensureVisible(spot, margin, margin)  # the view follows it there
        return node_id

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: D102, N802
        if event.mimeData().hasFormat(NODE_TYPE_MIME):
            event.acceptProposedAction()
        else:
            super().dragEnterEvent(event)

    def dragMoveEvent(self, event: QDragMoveEvent) -> None:  # noqa: D102, N802
        if event.mimeData().hasFormat(NODE_TYPE_MIME):
            event.acceptProposedAction()
        else:
            super().dragMoveEvent(event)

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: D102, N802
        data = event.mimeData()
        if not data.hasFormat(NODE_TYPE_MIME):
            super().dropEvent(event)
            return
        type_id = bytes(data.data(NODE_TYPE_MIME).data()).decode("utf-8", "replace").strip()
        pos = self.mapToScene(event.position().toPoint())
        if self.add_node_at(type_id, pos) is not None:
            event.acceptProposedAction()
        else:
            event.ignore()

    # ------------------------------------------------------------------ run visualization

    def set_node_run_state(
        self,
        node_id: str,
        state: str,
        *,
        progress: float | None = None,
        elapsed: float | None = None,
        detail: str = "",
    ) -> None:
        """Show a node's run state with optional progress (0–1), elapsed seconds and detail.

        States: idle, queued, running (animated), paused, succeeded, failed, skipped, cached,
        cancelled. Kept across undo/redo and across deleting and restoring the node.

        Raises
        ------
        ValueError
            For an unknown state (the message lists the known ones).
        """
        self._scene.set_run_state(node_id, state, progress, elapsed, detail)
        if state == "running" and not self._animation.isActive():
            self._animation.start()
        self._on_scene_changed(None)

    def append_node_preview(self, node_id: str, text: str) -> None:
        """Append streamed tokens to the node's live preview."""
        self._scene.append_preview(node_id, text)

    def clear_run_states(self) -> None:
        """Forget every node's run state and preview (a new run starts)."""
        self._scene.clear_run_states()
        self._animation.stop()
        self._on_scene_changed(None)

    def _animate(self) -> None:
        running = self._scene.running_items()
        if not running:
            self._animation.stop()
            self._scene.pulse = 0.0
            return
        self._phase = (self._phase + 1) % 32
        self._scene.pulse = abs(16 - self._phase) / 16.0
        for item in running:
            item.update()

    def _show_status(self, message: str) -> None:
        self._last_status = message
        self.sig_status_message.emit(message)

    def event(self, event: QEvent) -> bool:  # noqa: D102
        if event.type() == QEvent.Type.PaletteChange:
            self._restyle()
        return super().event(event)

    def _restyle(self) -> None:
        style = BoardStyle.from_palette(self.palette(), self.font())
        self.board_style = style
        self._scene.board_style = style
        for item in self._scene.link_items.values():
            item.set_link(item.link)
        self._scene.update()
        self.resetCachedContent()
        self.minimap.refresh()
