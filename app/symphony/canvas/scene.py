"""The board's scene: items kept in step with the melody's events, and the mouse gestures.

The scene never changes the melody itself: moving a selection, drawing a link, deleting or
editing a note all call the :class:`~symphony.document.editor.MelodyEditor`, whose commands change
the melody, whose events come back here and move, add or remove items. Run states live in
:attr:`BoardScene.run_states` — view state keyed by node id, outside the melody and its undo
stack — so undo and redo never wipe what a run showed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from PySide6.QtCore import QPointF, QRect, QRectF, Qt, Signal
from PySide6.QtGui import QBrush, QPainter, QPainterPath, QTransform
from PySide6.QtWidgets import (
    QGraphicsItem,
    QGraphicsPathItem,
    QGraphicsScene,
    QGraphicsSceneMouseEvent,
    QWidget,
)

from symphony.canvas.items import LinkItem, NodeItem, NoteItem, PortGeometry, TypeLayout, link_path
from symphony.canvas.style import RUN_STATES, BoardStyle
from symphony.document.editor import EditError, MelodyEditor
from symphony.document.listeners import weak_listener
from symphony.registry.types import PortType, is_compatible
from symphony.workflow.events import (
    BreakpointChanged,
    LinkAdded,
    LinkChanged,
    LinkRemoved,
    MelodyEvent,
    MelodyPropertiesChanged,
    NodeAdded,
    NodeConfigChanged,
    NodeMoved,
    NodePolicyChanged,
    NodeRemoved,
    NodeRenamed,
)
from symphony.workflow.model import Node

__all__ = ["BoardScene", "LinkDrag", "RunState"]

PREVIEW_KEEP: Final = 4000
GRID: Final = 24.0
GRID_MAJOR: Final = 5


@dataclass(slots=True)
class RunState:
    """What a run shows on one node (view state, never saved or undone)."""

    state: str = "idle"
    progress: float | None = None
    elapsed: float | None = None
    detail: str = ""
    preview: str = ""
    preview_lines: str = ""
    status_text: str = ""
    status_text_wide: str = ""


@dataclass(slots=True)
class LinkDrag:
    """A link being drawn from a port; decides how every port is shown meanwhile."""

    node_id: str
    port: PortGeometry

    @property
    def type(self) -> PortType:
        """The type of the port the drag started from."""
        return self.port.spec.type

    def fit(self, node_id: str, g: PortGeometry) -> int:
        """Return 1 if ``g`` on ``node_id`` can end this link, -1 if not, 0 for the start port."""
        if node_id == self.node_id:
            return 0 if g is self.port else -1
        if g.is_output == self.port.is_output:
            return -1
        if self.port.is_output:
            return 1 if is_compatible(self.port.spec.type, g.spec.type) else -1
        return 1 if is_compatible(g.spec.type, self.port.spec.type) else -1


class BoardScene(QGraphicsScene):
    """The items of one melody; see the module docstring.

    Parameters
    ----------
    editor
        The controller whose melody is shown and through which every edit goes.
    style
        Prepared colours and fonts.
    parent
        Qt parent.
    """

    sig_status_message = Signal(str)
    sig_quick_add_requested = Signal(QPointF)
    sig_node_activated = Signal(str)

    def __init__(self, editor: MelodyEditor, style: BoardStyle, parent: QWidget | None = None):
        super().__init__(parent)
        self.editor = editor
        self.board_style = style
        self.run_states: dict[str, RunState] = {}
        self.link_drag: LinkDrag | None = None
        self.pulse = 0.0
        self.node_items: dict[str, NodeItem] = {}
        self.link_items: dict[str, LinkItem] = {}
        self.note_items: dict[str, NoteItem] = {}
        self._layouts: dict[str, TypeLayout] = {}
        self._syncing_selection = False
        self._overview = False
        self._overview_dirty = True
        self._overview_links = QPainterPath()
        self._overview_nodes: list[tuple[QBrush, QPainterPath]] = []
        self._drag_token: int | None = None
        self._resizing: NoteItem | None = None
        self._drag_start: dict[str, tuple[float, float]] = {}
        self._drag_origin = QPointF()
        self._temp_link: QGraphicsPathItem | None = None
        self._hot: tuple[NodeItem, PortGeometry] | None = None
        self.setItemIndexMethod(QGraphicsScene.ItemIndexMethod.BspTreeIndex)
        self._handlers: dict[type[MelodyEvent], Callable[[Any], None]] = {
            NodeAdded: self._on_node_added,
            NodeRemoved: self._on_node_removed,
            NodeMoved: self._on_node_moved,
            NodeRenamed: self._on_node_changed,
            NodeConfigChanged: self._on_node_changed,
            NodePolicyChanged: self._on_node_changed,
            BreakpointChanged: self._on_node_changed,
            LinkAdded: self._on_link_added,
            LinkRemoved: self._on_link_removed,
            LinkChanged: self._on_link_changed,
            MelodyPropertiesChanged: self._on_properties_changed,
        }
        melody = editor.melody
        for node in melody.nodes.values():
            self._add_node_item(node)
        for link in melody.links.values():
            self._on_link_added(LinkAdded(link))
        self._sync_notes()
        self._listener = weak_listener(
            self, BoardScene._on_event, lambda fn: melody.events.unsubscribe(fn)
        )
        melody.events.subscribe(self._listener)
        self.selectionChanged.connect(self._on_scene_selection)
        editor.sig_selection_changed.connect(self._on_editor_selection)

    def detach(self) -> None:
        """Stop following the melody (before the scene is thrown away)."""
        self.editor.melody.events.unsubscribe(self._listener)

    # ------------------------------------------------------------------ model events

    def _on_event(self, event: MelodyEvent) -> None:
        handler = self._handlers.get(type(event))
        if handler is not None:
            handler(event)

    def type_layout(self, type_id: str) -> TypeLayout:
        """Return the shared geometry of nodes of ``type_id``."""
        lay = self._layouts.get(type_id)
        if lay is None:
            lay = TypeLayout(self.editor.registry.get(type_id), type_id)
            self._layouts[type_id] = lay
        return lay

    def _add_node_item(self, node: Node) -> None:
        item = NodeItem(self, node, self.type_layout(node.type_id))
        if self._overview:
            item.setFlag(QGraphicsItem.GraphicsItemFlag.ItemHasNoContents, True)
        self.node_items[node.id] = item
        self.addItem(item)
        self._overview_dirty = True

    def _on_node_added(self, event: NodeAdded) -> None:
        self._add_node_item(event.node)
        if event.node.id in self.editor.selected_node_ids():
            self._on_editor_selection(self.editor.selected_node_ids())

    def _on_node_removed(self, event: NodeRemoved) -> None:
        item = self.node_items.pop(event.node.id, None)
        if item is not None:
            self.removeItem(item)
        self._overview_dirty = True

    def _on_node_moved(self, event: NodeMoved) -> None:
        item = self.node_items.get(event.node_id)
        if item is None:
            return
        item.setPos(event.new[0], event.new[1])
        for link in self.editor.melody.links_of(event.node_id):
            link_item = self.link_items.get(link.id)
            if link_item is not None:
                self._route(link_item)
        self._overview_dirty = True

    def _on_node_changed(self, event: Any) -> None:
        item = self.node_items.get(event.node_id)
        if item is not None:
            item.set_node(self.editor.melody.nodes[event.node_id])

    def _on_link_added(self, event: LinkAdded) -> None:
        link = event.link
        source = self.node_items.get(link.source_node)
        spec = source.layout.outputs.get(link.source_port) if source is not None else None
        item = LinkItem(self, link, spec.spec.type if spec is not None else PortType.ANY)
        if self._overview:
            item.setFlag(QGraphicsItem.GraphicsItemFlag.ItemHasNoContents, True)
        self._route(item)
        self.link_items[link.id] = item
        self.addItem(item)
        self._overview_dirty = True

    def _on_link_removed(self, event: LinkRemoved) -> None:
        item = self.link_items.pop(event.link.id, None)
        if item is not None:
            self.removeItem(item)
        self._overview_dirty = True

    def _on_link_changed(self, event: LinkChanged) -> None:
        item = self.link_items.get(event.new.id)
        if item is not None:
            item.set_link(event.new)

    def _on_properties_changed(self, event: MelodyPropertiesChanged) -> None:
        if event.field == "metadata":
            self._sync_notes()

    def _route(self, item: LinkItem) -> None:
        link = item.link
        src = self.node_items.get(link.source_node)
        dst = self.node_items.get(link.target_node)
        if src is not None and dst is not None:
            item.set_ends(src.output_pos(link.source_port), dst.input_pos(link.target_port))

    def _sync_notes(self) -> None:
        notes = {n.id: n for n in self.editor.notes()}
        for note_id in [i for i in self.note_items if i not in notes]:
            self.removeItem(self.note_items.pop(note_id))
        for note_id, note in notes.items():
            item = self.note_items.get(note_id)
            if item is None:
                item = NoteItem(self, note)
                self.note_items[note_id] = item
                self.addItem(item)
            elif item.note != note:
                item.set_note(note)

    def note_text_edited(self, note_id: str, text: str) -> None:
        """Commit a note's text typed in place (undoable)."""
        if note_id in self.note_items:
            try:
                self.editor.edit_note(note_id, text=text)
            except EditError as exc:
                self.sig_status_message.emit(str(exc))

    # ------------------------------------------------------------------ selection

    def _on_scene_selection(self) -> None:
        if self._syncing_selection:
            return
        ids = [i.node_id for i in self.selectedItems() if isinstance(i, NodeItem)]
        self._syncing_selection = True
        try:
            self.editor.set_selection(ids)
        finally:
            self._syncing_selection = False
        self._overview_dirty = True

    def _on_editor_selection(self, ids: list[str]) -> None:
        if self._syncing_selection:
            return
        wanted = set(ids)
        self._syncing_selection = True
        try:
            for selected in self.selectedItems():
                if not isinstance(selected, NodeItem) or selected.node_id not in wanted:
                    selected.setSelected(False)
            for node_id in ids:
                item = self.node_items.get(node_id)
                if item is not None and not item.isSelected():
                    item.setSelected(True)
        finally:
            self._syncing_selection = False
        self._overview_dirty = True

    def selected_ids(self) -> tuple[list[str], list[str], list[str]]:
        """Return the selected node, link and note ids."""
        nodes: list[str] = []
        links: list[str] = []
        notes: list[str] = []
        for item in self.selectedItems():
            if isinstance(item, NodeItem):
                nodes.append(item.node_id)
            elif isinstance(item, LinkItem):
                links.append(item.link_id)
            elif isinstance(item, NoteItem):
                notes.append(item.note_id)
        return nodes, links, notes

    # ------------------------------------------------------------------ run state

    def set_run_state(
        self,
        node_id: str,
        state: str,
        progress: float | None,
        elapsed: float | None,
        detail: str,
    ) -> None:
        """Record and show a node's run state (see :meth:`BoardView.set_node_run_state`)."""
        if state not in RUN_STATES:
            raise ValueError(f"unknown run state {state!r} (known: {', '.join(RUN_STATES)})")
        run = self.run_states.get(node_id)
        if run is None:
            run = self.run_states[node_id] = RunState()
        changed_colour = run.state != state
        run.state, run.progress, run.elapsed, run.detail = state, progress, elapsed, detail
        parts = []
        if progress is not None and state == "running":
            parts.append(f"{round(progress * 100)} %")
        if elapsed is not None:
            parts.append(
                f"{elapsed:.1f} s"
                if elapsed < 60
                else f"{int(elapsed // 60)}m{int(elapsed % 60):02d}s"
            )
        if detail:
            parts.append(detail)
        text = "  ".join(parts)
        metrics = self.board_style.small_metrics
        run.status_text = metrics.elidedText(text, Qt.TextElideMode.ElideRight, 108.0)
        run.status_text_wide = metrics.elidedText(text, Qt.TextElideMode.ElideRight, 215.0)
        item = self.node_items.get(node_id)
        if item is not None:
            item.setToolTip(
                item.toolTip().split("<hr>")[0] + (f"<hr>{state}: {detail}" if detail else "")
            )
            item.update()
        if changed_colour:
            self._overview_dirty = True

    def append_preview(self, node_id: str, text: str) -> None:
        """Append streamed output to a node's preview; repaint only the preview strip."""
        run = self.run_states.get(node_id)
        if run is None:
            run = self.run_states[node_id] = RunState()
        run.preview = (run.preview + text)[-PREVIEW_KEEP:]
        item = self.node_items.get(node_id)
        width = (item.layout.preview_rect.width() if item is not None else 220.0) - 10.0
        metrics = self.board_style.mono_metrics
        lines = [ln for ln in run.preview.replace("\r", "").split("\n") if ln.strip()][-2:]
        # wrap the tail of the last line so the newest tokens stay visible
        if lines and metrics.horizontalAdvance(lines[-1]) > width:
            lines[-1] = metrics.elidedText(lines[-1], Qt.TextElideMode.ElideLeft, width)
        if len(lines) == 2:
            lines[0] = metrics.elidedText(lines[0], Qt.TextElideMode.ElideRight, width)
        run.preview_lines = "\n".join(lines)
        if item is not None:
            item.update(item.layout.preview_rect)

    def clear_run_states(self) -> None:
        """Forget every node's run state and preview."""
        states = self.run_states
        self.run_states = {}
        for node_id in states:
            item = self.node_items.get(node_id)
            if item is not None:
                item.update()
        self._overview_dirty = True

    def running_items(self) -> list[NodeItem]:
        """Return the items of nodes whose state is ``running``."""
        return [
            item
            for node_id, run in self.run_states.items()
            if run.state == "running" and (item := self.node_items.get(node_id)) is not None
        ]

    # ------------------------------------------------------------------ level of detail

    @property
    def overview(self) -> bool:
        """Whether items are drawn in batches by the scene (zoomed far out)."""
        return self._overview

    def set_overview(self, on: bool) -> None:
        """Switch batched overview painting on or off (the view decides from its zoom)."""
        if on == self._overview:
            return
        self._overview = on
        flag = QGraphicsItem.GraphicsItemFlag.ItemHasNoContents
        for node_item in self.node_items.values():
            node_item.setFlag(flag, on)
        for link_item in self.link_items.values():
            link_item.setFlag(flag, on)
        self._overview_dirty = True
        self.update()

    def _rebuild_overview(self) -> None:
        links = QPainterPath()
        for link_item in self.link_items.values():
            links.addPath(link_item.path())
        s = self.board_style
        groups: dict[int, tuple[QBrush, QPainterPath]] = {}
        runs = self.run_states
        for node_id, item in self.node_items.items():
            if item.isSelected():
                key, brush = 0, s.overview_selected_brush
            else:
                run = runs.get(node_id)
                if run is not None and run.state != "idle":
                    key, brush = 1 + RUN_STATES.index(run.state), s.state_brushes[run.state]
                else:
                    category = item.layout.category
                    key, brush = 100 + hash(category) % 1000, s.category_brushes[category]
            group = groups.get(key)
            if group is None:
                group = groups[key] = (brush, QPainterPath())
            group[1].addRect(item.layout.rect.translated(item.pos()))
        self._overview_links = links
        self._overview_nodes = list(groups.values())
        self._overview_dirty = False

    def drawForeground(self, painter: QPainter, rect: QRectF | QRect) -> None:  # noqa: D102, N802
        if not self._overview:
            return
        if self._overview_dirty:
            self._rebuild_overview()
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, False)
        painter.setPen(self.board_style.overview_link_pen)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawPath(self._overview_links)
        painter.setPen(Qt.PenStyle.NoPen)
        for brush, path in self._overview_nodes:
            painter.setBrush(brush)
            painter.drawPath(path)
        painter.restore()

    def drawBackground(self, painter: QPainter, rect: QRectF | QRect) -> None:  # noqa: D102, N802
        s = self.board_style
        rect = QRectF(rect)
        painter.fillRect(rect, s.canvas)
        lod = QTransform(painter.worldTransform()).m11()
        step = GRID if lod >= 0.5 else GRID * GRID_MAJOR
        if lod < 0.12:
            return
        left = int(rect.left() // step)
        top = int(rect.top() // step)
        right = int(rect.right() // step) + 1
        bottom = int(rect.bottom() // step) + 1
        minor: list[tuple[QPointF, QPointF]] = []
        major: list[tuple[QPointF, QPointF]] = []
        for i in range(left, right):
            x = i * step
            (major if i % GRID_MAJOR == 0 or step > GRID else minor).append(
                (QPointF(x, rect.top()), QPointF(x, rect.bottom()))
            )
        for j in range(top, bottom):
            y = j * step
            (major if j % GRID_MAJOR == 0 or step > GRID else minor).append(
                (QPointF(rect.left(), y), QPointF(rect.right(), y))
            )
        painter.setPen(s.grid_pen)
        for a, b in minor:
            painter.drawLine(a, b)
        painter.setPen(s.grid_major_pen)
        for a, b in major:
            painter.drawLine(a, b)

    def content_rect(self) -> QRectF:
        """Return the rectangle around every node and note (empty for an empty board)."""
        rect = QRectF()
        for item in self.node_items.values():
            rect = rect.united(item.layout.rect.translated(item.pos()))
        for note in self.note_items.values():
            rect = rect.united(note.sceneBoundingRect())
        return rect

    # ------------------------------------------------------------------ mouse gestures

    def _node_at(self, pos: QPointF) -> NodeItem | None:
        for item in self.items(pos):
            if isinstance(item, NodeItem):
                return item
        return None

    def _port_at(self, pos: QPointF) -> tuple[NodeItem, PortGeometry] | None:
        hit = QRectF(pos.x() - 12.0, pos.y() - 12.0, 24.0, 24.0)
        for item in self.items(hit):
            if isinstance(item, NodeItem):
                g = item.port_at_scene(pos)
                if g is not None:
                    return item, g
        return None

    def mousePressEvent(self, event: QGraphicsSceneMouseEvent) -> None:  # noqa: D102, N802
        if event.button() == Qt.MouseButton.LeftButton:
            port = self._port_at(event.scenePos())
            if port is not None:
                self.start_link_drag(port[0], port[1])
                event.accept()
                return
            for hit in self.items(event.scenePos()):
                if isinstance(hit, NoteItem) and hit.grip_contains(event.scenePos()):
                    self._resizing = hit
                    self._drag_origin = event.scenePos()
                    event.accept()
                    return
        super().mousePressEvent(event)
        if event.button() != Qt.MouseButton.LeftButton:
            return
        top = next(
            (i for i in self.items(event.scenePos()) if isinstance(i, NodeItem | NoteItem)), None
        )
        if top is not None and top.isSelected():
            self._drag_origin = event.scenePos()
            self._drag_start = {}
            for item in self.selectedItems():
                if isinstance(item, NodeItem):
                    self._drag_start[item.node_id] = (item.pos().x(), item.pos().y())
                elif isinstance(item, NoteItem) and not item.is_editing():
                    self._drag_start[item.note_id] = (item.pos().x(), item.pos().y())
            self._drag_token = self.editor.begin_drag() if self._drag_start else None

    def mouseMoveEvent(self, event: QGraphicsSceneMouseEvent) -> None:  # noqa: D102, N802
        if self.link_drag is not None:
            self.update_link_drag(event.scenePos())
            return
        if self._resizing is not None:
            delta = event.scenePos() - self._drag_origin
            w, h = self._resizing.note.size
            self._resizing.preview_size(w + delta.x(), h + delta.y())
            return
        if self._drag_token is not None:
            delta = event.scenePos() - self._drag_origin
            self.editor.move_nodes(
                {k: (x + delta.x(), y + delta.y()) for k, (x, y) in self._drag_start.items()},
                drag=self._drag_token,
            )
            return
        super().mouseMoveEvent(event)

    def mouseReleaseEvent(self, event: QGraphicsSceneMouseEvent) -> None:  # noqa: D102, N802
        if self.link_drag is not None:
            self.finish_link_drag(event.scenePos())
            return
        if self._resizing is not None:
            note, self._resizing = self._resizing, None
            size = note.current_size()
            if size != note.note.size:
                self.editor.edit_note(note.note_id, size=size)
            return
        self._drag_token = None
        self._drag_start = {}
        super().mouseReleaseEvent(event)

    def mouseDoubleClickEvent(self, event: QGraphicsSceneMouseEvent) -> None:  # noqa: D102, N802
        for item in self.items(event.scenePos()):
            if isinstance(item, NoteItem):
                item.start_editing()
                return
            if isinstance(item, NodeItem):
                self.sig_node_activated.emit(item.node_id)
                return
        self.sig_quick_add_requested.emit(event.scenePos())

    # ------------------------------------------------------------------ drawing a link

    def start_link_drag(self, item: NodeItem, port: PortGeometry) -> None:
        """Begin drawing a link from ``port`` of ``item``; ports show whether they fit."""
        self.link_drag = LinkDrag(item.node_id, port)
        self._temp_link = QGraphicsPathItem()
        self._temp_link.setPen(self.board_style.link_drag_pen)
        self._temp_link.setZValue(10.0)
        self.addItem(self._temp_link)
        self._hot = None
        self.update()

    def update_link_drag(self, pos: QPointF) -> None:
        """Follow the cursor; snap to a port that fits."""
        drag = self.link_drag
        if drag is None or self._temp_link is None:
            return
        start = self.node_items[drag.node_id].pos() + drag.port.center
        hit = self._port_at(pos)
        end = pos
        if hit is not None and drag.fit(hit[0].node_id, hit[1]) == 1:
            end = hit[0].pos() + hit[1].center
        self._hot = hit
        a, b = (start, end) if drag.port.is_output else (end, start)
        self._temp_link.setPath(link_path(a, b))

    def finish_link_drag(self, pos: QPointF) -> str | None:
        """End the drag at ``pos``: link to the port there, or refuse with a status message.

        Returns
        -------
        str or None
            The new link's id, or ``None`` if no link was made.
        """
        drag = self.link_drag
        self.link_drag = None
        if self._temp_link is not None:
            self.removeItem(self._temp_link)
            self._temp_link = None
        self.update()
        if drag is None:
            return None
        hit = self._port_at(pos)
        if hit is None:
            return None
        item, g = hit
        if item.node_id == drag.node_id and g is drag.port:
            return None
        if g.is_output == drag.port.is_output:
            side = "output" if g.is_output else "input"
            self.sig_status_message.emit(
                f"Cannot link {drag.node_id}.{drag.port.spec.name} ({drag.type}) to "
                f"{item.node_id}.{g.spec.name} ({g.spec.type}): both are {side}s"
            )
            return None
        if drag.port.is_output:
            src, src_port, dst, dst_port = drag.node_id, drag.port, item.node_id, g
        else:
            src, src_port, dst, dst_port = item.node_id, g, drag.node_id, drag.port
        problem = self.editor.check_connection(src, src_port.spec.name, dst, dst_port.spec.name)
        if problem is not None:
            self.sig_status_message.emit(
                f"Cannot link output {src}.{src_port.spec.name} ({src_port.spec.type}) to "
                f"input {dst}.{dst_port.spec.name} ({dst_port.spec.type}): {problem}"
            )
            return None
        link_id = self.editor.connect(src, src_port.spec.name, dst, dst_port.spec.name)
        self.sig_status_message.emit(
            f"Linked {src}.{src_port.spec.name} → {dst}.{dst_port.spec.name}"
        )
        return link_id
