"""The board's graphics items: nodes (with their ports), links and sticky notes.

A :class:`NodeItem` paints its ports itself (one item per node, not one per port) and answers
port hit tests from precomputed geometry shared by every node of the same type
(:class:`TypeLayout`). Painting reads run state from the scene's store, never from the item, so
re-creating an item (undo of a delete) keeps what the run showed. Level of detail: below
``SIMPLE_LOD`` a node drops port labels, preview and status text; below the scene's overview
threshold items paint nothing at all and the scene draws them in batches.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QFocusEvent, QPainter, QPainterPath, QPainterPathStroker, QPen
from PySide6.QtWidgets import (
    QGraphicsItem,
    QGraphicsPathItem,
    QGraphicsTextItem,
    QStyleOptionGraphicsItem,
    QWidget,
)

from symphony.canvas.geometry import (
    CORNER,
    HEADER_HEIGHT,
    NODE_WIDTH,
    NOTE_MIN_SIZE,
    PADDING,
    PORT_RADIUS,
    PORT_ROW,
    PREVIEW_HEIGHT,
    STATUS_HEIGHT,
    node_height,
    port_y,
)
from symphony.registry.descriptions import NodeTypeDescription, PortSpec
from symphony.registry.types import PortType

if TYPE_CHECKING:
    from symphony.canvas.scene import BoardScene, RunState
    from symphony.document.editor import Note
    from symphony.workflow.model import Link, Node

__all__ = ["LinkItem", "NodeItem", "NoteItem", "TypeLayout", "link_path"]

SIMPLE_LOD: Final = 0.6
GRIP: Final = 14.0
PORT_HIT: Final = 11.0
NODE_Z: Final = 2.0
LINK_Z: Final = 1.0
NOTE_Z: Final = 0.0
_AlignLeft = Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter
_AlignRight = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
_AlignCenter = Qt.AlignmentFlag.AlignCenter


@dataclass(frozen=True, slots=True)
class PortGeometry:
    """Where one port sits on a node of some type."""

    spec: PortSpec
    is_output: bool
    center: QPointF
    label_rect: QRectF


class TypeLayout:
    """Port geometry and fixed texts shared by every node of one type."""

    def __init__(self, desc: NodeTypeDescription | None, type_id: str) -> None:
        self.desc = desc
        self.type_id = type_id
        n_in = len(desc.inputs) if desc else 0
        n_out = len(desc.outputs) if desc else 0
        self.height = node_height(n_in, n_out)
        self.rect = QRectF(0.0, 0.0, NODE_WIDTH, self.height)
        margin = PORT_RADIUS + 3.0
        self.bounds = self.rect.adjusted(-margin, -margin, margin, margin)
        half = NODE_WIDTH / 2 - PADDING
        self.inputs: dict[str, PortGeometry] = {}
        self.outputs: dict[str, PortGeometry] = {}
        if desc is not None:
            full = NODE_WIDTH - 2 * (PORT_RADIUS + 5.0)
            for i, spec in enumerate(desc.inputs):
                y = port_y(i)
                # a row with no port opposite lends its label the whole width
                width = half if i < n_out else full
                self.inputs[spec.name] = PortGeometry(
                    spec,
                    False,
                    QPointF(0.0, y),
                    QRectF(PORT_RADIUS + 5.0, y - PORT_ROW / 2, width, PORT_ROW),
                )
            for i, spec in enumerate(desc.outputs):
                y = port_y(i)
                width = half - PORT_RADIUS if i < n_in else full
                self.outputs[spec.name] = PortGeometry(
                    spec,
                    True,
                    QPointF(NODE_WIDTH, y),
                    QRectF(
                        NODE_WIDTH - PORT_RADIUS - 5.0 - width, y - PORT_ROW / 2, width, PORT_ROW
                    ),
                )
        self.category = desc.category.value if desc else ""
        self.subtitle = desc.title if desc else f"unknown type {type_id}"
        self.header_rect = QRectF(0.0, 0.0, NODE_WIDTH, HEADER_HEIGHT)
        self.accent_rect = QRectF(0.0, 0.0, 4.0, self.height)
        body_bottom = self.height - PREVIEW_HEIGHT - STATUS_HEIGHT
        self.preview_rect = QRectF(
            PADDING, body_bottom, NODE_WIDTH - 2 * PADDING, PREVIEW_HEIGHT - 4.0
        )
        self.status_rect = QRectF(
            PADDING, self.height - STATUS_HEIGHT, NODE_WIDTH - 2 * PADDING, STATUS_HEIGHT - 4.0
        )
        self.title_rect = QRectF(14.0, 4.0, NODE_WIDTH - 24.0, 18.0)
        self.subtitle_rect = QRectF(14.0, 21.0, NODE_WIDTH - 24.0, 14.0)
        self.badge_rect = QRectF(NODE_WIDTH - 78.0, 6.0, 70.0, 15.0)
        self.breakpoint_center = QPointF(-1.0, HEADER_HEIGHT / 2)
        self.port_labels = {
            name: f"{name} · {g.spec.type.value}" for name, g in self.inputs.items()
        } | {f">{name}": f"{g.spec.type.value} · {name}" for name, g in self.outputs.items()}

    def port_at(self, local: QPointF) -> PortGeometry | None:
        """Return the port whose hit area contains ``local`` (item coordinates)."""
        ports = self.inputs if local.x() < NODE_WIDTH / 2 else self.outputs
        for g in ports.values():
            if abs(local.x() - g.center.x()) <= PORT_HIT and abs(local.y() - g.center.y()) <= (
                PORT_ROW / 2
            ):
                return g
        return None


class NodeItem(QGraphicsItem):
    """One node: header, typed ports, state badge, progress, elapsed time, preview, breakpoint."""

    def __init__(self, board: BoardScene, node: Node, layout: TypeLayout) -> None:
        super().__init__()
        self._board = board
        self.node = node
        self.layout = layout
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIsSelectable)
        self.setZValue(NODE_Z)
        self.setPos(node.position[0], node.position[1])
        self._elided_title = ""
        self._subtitle = ""
        self.set_node(node)

    @property
    def node_id(self) -> str:
        """The id of the node drawn."""
        return self.node.id

    def set_node(self, node: Node) -> None:
        """Show a new value of the node (renamed, breakpoint, config, policy)."""
        self.node = node
        self._elided_title = self._board.board_style.title_metrics.elidedText(
            node.name, Qt.TextElideMode.ElideRight, self.layout.title_rect.width() - 78.0
        )
        desc = self.layout.desc
        if desc is None:
            self._subtitle = self.layout.subtitle
        elif node.name != desc.title:
            self._subtitle = f"{desc.title} · {node.type_id}"
        else:
            self._subtitle = node.type_id
        tip = desc.description if desc else self.layout.subtitle
        self.setToolTip(f"<b>{node.name}</b> ({node.type_id})<br>{tip}")
        self.update()

    def boundingRect(self) -> QRectF:  # noqa: D102, N802 - Qt API
        return self.layout.bounds

    def shape(self) -> QPainterPath:  # noqa: D102 - Qt API
        path = QPainterPath()
        path.addRect(self.layout.bounds)
        return path

    def input_pos(self, port: str) -> QPointF:
        """Return the scene position of input ``port`` (the node's left edge if unknown)."""
        g = self.layout.inputs.get(port)
        return self.pos() + (g.center if g else QPointF(0.0, HEADER_HEIGHT / 2))

    def output_pos(self, port: str) -> QPointF:
        """Return the scene position of output ``port`` (the node's right edge if unknown)."""
        g = self.layout.outputs.get(port)
        return self.pos() + (g.center if g else QPointF(NODE_WIDTH, HEADER_HEIGHT / 2))

    def port_at_scene(self, scene_pos: QPointF) -> PortGeometry | None:
        """Return the port under ``scene_pos``, or ``None``."""
        return self.layout.port_at(scene_pos - self.pos())

    # ------------------------------------------------------------------ painting

    def paint(  # noqa: D102 - Qt API
        self,
        painter: QPainter,
        option: QStyleOptionGraphicsItem,
        widget: QWidget | None = None,
    ) -> None:
        board = self._board
        s = board.board_style
        lay = self.layout
        lod = option.levelOfDetailFromTransform(painter.worldTransform())
        run = board.run_states.get(self.node.id)
        state = run.state if run is not None else "idle"
        selected = self.isSelected()
        painter.setPen(
            s.node_selected
            if selected
            else (s.state_pens[state] if state != "idle" else s.node_border)
        )
        if state == "running" and not selected:
            painter.setOpacity(0.55 + 0.45 * board.pulse)
        painter.setBrush(s.node_brush)
        painter.drawRoundedRect(lay.rect, CORNER, CORNER)
        painter.setOpacity(1.0)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(s.category_brushes[lay.category])
        painter.drawRect(lay.accent_rect.adjusted(0.5, CORNER, 0, -CORNER))
        if self.node.breakpoint:
            painter.setPen(s.breakpoint_pen)
            painter.setBrush(s.breakpoint_brush)
            painter.drawEllipse(lay.breakpoint_center, 6.0, 6.0)
        if lod < SIMPLE_LOD:
            painter.setPen(s.text_pen)
            painter.setFont(s.title_font)
            painter.drawText(lay.title_rect.adjusted(0, 0, 0, 10), _AlignLeft, self._elided_title)
            self._paint_ports(painter, lod)
            if run is not None and state != "idle":
                painter.setPen(Qt.PenStyle.NoPen)
                painter.setBrush(s.state_brushes[state])
                painter.drawRoundedRect(lay.badge_rect, 7.0, 7.0)
            return
        painter.setPen(s.text_pen)
        painter.setFont(s.title_font)
        painter.drawText(lay.title_rect, _AlignLeft, self._elided_title)
        painter.setPen(s.muted_pen)
        painter.setFont(s.small_font)
        painter.drawText(lay.subtitle_rect, _AlignLeft, self._subtitle)
        painter.setPen(s.node_border)
        painter.drawLine(QPointF(4.0, HEADER_HEIGHT), QPointF(NODE_WIDTH, HEADER_HEIGHT))
        self._paint_badge(painter, state)
        self._paint_ports(painter, lod)
        self._paint_run(painter, run)

    def _paint_badge(self, painter: QPainter, state: str) -> None:
        if state == "idle":
            return
        s = self._board.board_style
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(s.state_brushes[state])
        painter.drawRoundedRect(self.layout.badge_rect, 7.5, 7.5)
        painter.setPen(s.badge_text_pen)
        painter.setFont(s.small_font)
        painter.drawText(self.layout.badge_rect, _AlignCenter, state)

    def _paint_ports(self, painter: QPainter, lod: float) -> None:
        s = self._board.board_style
        drag = self._board.link_drag
        labels = lod >= SIMPLE_LOD
        for group in (self.layout.inputs, self.layout.outputs):
            for name, g in group.items():
                port_type = g.spec.type
                state = 0 if drag is None else drag.fit(self.node.id, g)
                painter.setPen(s.port_hot_pen if state == 1 else s.port_ring_pen)
                painter.setBrush(
                    s.port_dim_brushes[port_type] if state == -1 else s.port_brushes[port_type]
                )
                r = PORT_RADIUS + (1.5 if state == 1 else 0.0)
                painter.drawEllipse(g.center, r, r)
                if labels:
                    painter.setPen(s.muted_pen if state == -1 else s.text_pen)
                    painter.setFont(s.small_font)
                    key = f">{name}" if g.is_output else name
                    painter.drawText(
                        g.label_rect,
                        _AlignRight if g.is_output else _AlignLeft,
                        self.layout.port_labels[key],
                    )

    def _paint_run(self, painter: QPainter, run: RunState | None) -> None:
        s = self._board.board_style
        lay = self.layout
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(s.preview_brush)
        painter.drawRoundedRect(lay.preview_rect, 4.0, 4.0)
        painter.setFont(s.mono_font)
        if run is not None and run.preview_lines:
            painter.setPen(s.preview_pen)
            painter.drawText(
                lay.preview_rect.adjusted(5.0, 2.0, -5.0, -2.0),
                Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignBottom,
                run.preview_lines,
            )
        else:
            painter.setPen(s.muted_pen)
            painter.drawText(lay.preview_rect, _AlignCenter, "no output yet")
        if run is None or run.state == "idle":
            return
        status = lay.status_rect
        bar = QRectF(status.x(), status.center().y() - 2.5, status.width() * 0.45, 5.0)
        with_bar = run.progress is not None or run.state == "running"
        if with_bar:
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(s.progress_track)
            painter.drawRoundedRect(bar, 2.5, 2.5)
            painter.setBrush(s.state_brushes[run.state])
            if run.progress is not None:
                done = QRectF(bar.x(), bar.y(), bar.width() * max(0.0, min(run.progress, 1.0)), 5.0)
            else:  # indeterminate: a segment sweeping with the scene's animation phase
                seg = bar.width() * 0.3
                done = QRectF(bar.x() + (bar.width() - seg) * self._board.pulse, bar.y(), seg, 5.0)
            painter.drawRoundedRect(done, 2.5, 2.5)
        painter.setPen(s.muted_pen)
        painter.setFont(s.small_font)
        painter.drawText(
            status.adjusted(status.width() * 0.5 if with_bar else 0.0, 0, 0, 0),
            _AlignRight,
            run.status_text if with_bar else run.status_text_wide,
        )


def link_path(start: QPointF, end: QPointF) -> QPainterPath:
    """Return the bezier curve from an output at ``start`` to an input at ``end``."""
    dx = max(abs(end.x() - start.x()) * 0.5, 40.0)
    path = QPainterPath(start)
    path.cubicTo(start.x() + dx, start.y(), end.x() - dx, end.y(), end.x(), end.y())
    return path


class LinkItem(QGraphicsPathItem):
    """A bezier link coloured by its source port's type; dashed when the dependency is weak."""

    _stroker = QPainterPathStroker()
    _stroker.setWidth(10.0)

    def __init__(self, board: BoardScene, link: Link, port_type: PortType) -> None:
        super().__init__()
        self._board = board
        self.link = link
        self.port_type = port_type
        self._shape: QPainterPath | None = None
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIsSelectable)
        self.setZValue(LINK_Z)
        self.set_link(link)

    @property
    def link_id(self) -> str:
        """The id of the link drawn."""
        return self.link.id

    def set_link(self, link: Link) -> None:
        """Show a new value of the link (kind or condition changed)."""
        self.link = link
        pen = QPen(self._board.board_style.link_pens[self.port_type])
        if link.kind.value in ("soft", "optional"):
            pen.setStyle(Qt.PenStyle.DashLine)
        elif link.kind.value == "parallel":
            pen.setStyle(Qt.PenStyle.DotLine)
        self.setPen(pen)
        tip = f"{link.source_node}.{link.source_port} → {link.target_node}.{link.target_port}"
        self.setToolTip(
            f"{tip} ({link.kind.value})" + (f"<br>if {link.condition}" if link.condition else "")
        )

    def set_ends(self, start: QPointF, end: QPointF) -> None:
        """Re-route the curve between two port positions."""
        self._shape = None
        self.setPath(link_path(start, end))

    def shape(self) -> QPainterPath:  # noqa: D102 - Qt API
        if self._shape is None:
            self._shape = self._stroker.createStroke(self.path())
        return self._shape

    def paint(  # noqa: D102 - Qt API
        self,
        painter: QPainter,
        option: QStyleOptionGraphicsItem,
        widget: QWidget | None = None,
    ) -> None:
        painter.setPen(
            self._board.board_style.link_selected_pen if self.isSelected() else self.pen()
        )
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawPath(self.path())


class NoteItem(QGraphicsItem):
    """A sticky note: a coloured card with wrapped text, edited in place on double-click."""

    def __init__(self, board: BoardScene, note: Note) -> None:
        super().__init__()
        self._board = board
        self.note = note
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIsSelectable)
        self.setZValue(NOTE_Z)
        self._text = _NoteText(self)
        self._text.setPos(6.0, 4.0)
        self._text.setDefaultTextColor(board.board_style.note_text)
        self._text.setFont(board.board_style.small_font)
        self.set_note(note)

    @property
    def note_id(self) -> str:
        """The id of the note drawn."""
        return self.note.id

    def set_note(self, note: Note) -> None:
        """Show a new value of the note."""
        self.prepareGeometryChange()
        self.note = note
        self.setPos(note.position[0], note.position[1])
        self._rect = QRectF(0.0, 0.0, note.size[0], note.size[1])
        self._text.setTextWidth(note.size[0] - 12.0)
        if not self.is_editing() and self._text.toPlainText() != note.text:
            self._text.setPlainText(note.text or "Double-click to write a note")
        self.update()

    def is_editing(self) -> bool:
        """Return whether the text is being edited in place."""
        return bool(
            self._text.textInteractionFlags() & Qt.TextInteractionFlag.TextEditorInteraction
        )

    def start_editing(self) -> None:
        """Let the user type into the note; :meth:`finish_editing` commits."""
        if not self.note.text:
            self._text.setPlainText("")
        self._text.setTextInteractionFlags(Qt.TextInteractionFlag.TextEditorInteraction)
        self._text.setFocus(Qt.FocusReason.MouseFocusReason)

    def finish_editing(self) -> str:
        """Stop editing; return the typed text."""
        self._text.setTextInteractionFlags(Qt.TextInteractionFlag.NoTextInteraction)
        self._text.clearFocus()
        return self._text.toPlainText()

    def boundingRect(self) -> QRectF:  # noqa: D102, N802 - Qt API
        return self._rect.adjusted(-2.0, -2.0, 2.0, 2.0)

    def text_edited(self) -> None:
        """Commit the typed text when the in-place editor loses focus."""
        if self.is_editing():
            self._board.note_text_edited(self.note.id, self.finish_editing())

    def paint(  # noqa: D102 - Qt API
        self,
        painter: QPainter,
        option: QStyleOptionGraphicsItem,
        widget: QWidget | None = None,
    ) -> None:
        s = self._board.board_style
        painter.setPen(s.node_selected if self.isSelected() else s.note_pen)
        painter.setBrush(s.note_brush)
        painter.drawRoundedRect(self._rect, 4.0, 4.0)
        # the resize grip: three short diagonal strokes in the bottom-right corner
        r = self._rect
        painter.setPen(s.note_pen)
        for k in (4.0, 8.0, 12.0):
            painter.drawLine(
                QPointF(r.right() - k, r.bottom() - 2.0), QPointF(r.right() - 2.0, r.bottom() - k)
            )

    def grip_contains(self, scene_pos: QPointF) -> bool:
        """Return whether ``scene_pos`` is on the resize grip."""
        local = self.mapFromScene(scene_pos)
        return (
            self._rect.right() - GRIP <= local.x() <= self._rect.right() + 2.0
            and self._rect.bottom() - GRIP <= local.y() <= self._rect.bottom() + 2.0
        )

    def preview_size(self, width: float, height: float) -> None:
        """Show the note at a size being dragged (committed by the scene on release)."""
        self.prepareGeometryChange()
        self._rect = QRectF(0.0, 0.0, max(width, NOTE_MIN_SIZE[0]), max(height, NOTE_MIN_SIZE[1]))
        self._text.setTextWidth(self._rect.width() - 12.0)

    def current_size(self) -> tuple[float, float]:
        """Return the size shown (the note's, or the one being dragged)."""
        return (self._rect.width(), self._rect.height())


class _NoteText(QGraphicsTextItem):
    """The note's text; tells its note when in-place editing ends."""

    def focusOutEvent(self, event: QFocusEvent) -> None:  # noqa: N802 - Qt API
        super().focusOutEvent(event)
        parent = self.parentItem()
        if isinstance(parent, NoteItem):
            parent.text_edited()
