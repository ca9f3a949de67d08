"""The minimap: a small overview of the whole board with the visible area outlined.

The board is drawn into a cached pixmap (node rectangles by colour) only when the view asks
(after the scene changed, at most every 250 ms); moving the view repaints just the outline.
Click or drag in the minimap to move the view there.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QMouseEvent, QPainter, QPaintEvent, QPixmap
from PySide6.QtWidgets import QWidget

if TYPE_CHECKING:
    from symphony.canvas.view import BoardView

__all__ = ["Minimap"]


class Minimap(QWidget):
    """Overview of a :class:`~symphony.canvas.view.BoardView`'s scene."""

    def __init__(self, view: BoardView) -> None:
        super().__init__(view)
        self._view = view
        self._pixmap = QPixmap()
        self._world = QRectF()
        self._scale = 1.0
        self._offset = QPointF()
        self.setFixedSize(200, 130)
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        self.setToolTip("Minimap: click or drag to move the view")

    def refresh(self) -> None:
        """Redraw the board picture now."""
        scene = self._view.board_scene
        world = scene.content_rect()
        self._world = world
        w, h = self.width() - 8, self.height() - 8
        if world.isEmpty():
            self._pixmap = QPixmap()
            self.update()
            return
        self._scale = min(w / world.width(), h / world.height())
        self._offset = QPointF(
            4 + (w - world.width() * self._scale) / 2, 4 + (h - world.height() * self._scale) / 2
        )
        ratio = self.devicePixelRatioF()
        pixmap = QPixmap(round(self.width() * ratio), round(self.height() * ratio))
        pixmap.setDevicePixelRatio(ratio)
        pixmap.fill(Qt.GlobalColor.transparent)
        painter = QPainter(pixmap)
        s = scene.board_style
        painter.setPen(s.node_border)
        painter.setBrush(s.canvas)
        painter.drawRoundedRect(QRectF(0.5, 0.5, self.width() - 1, self.height() - 1), 5, 5)
        painter.setPen(Qt.PenStyle.NoPen)
        for node_id, item in scene.node_items.items():
            run = scene.run_states.get(node_id)
            if item.isSelected():
                painter.setBrush(s.overview_selected_brush)
            elif run is not None and run.state != "idle":
                painter.setBrush(s.state_brushes[run.state])
            else:
                painter.setBrush(s.category_brushes[item.layout.category])
            painter.drawRect(self._to_map(item.sceneBoundingRect()))
        painter.setBrush(s.note_brush)
        for note in scene.note_items.values():
            painter.drawRect(self._to_map(note.sceneBoundingRect()))
        painter.end()
        self._pixmap = pixmap
        self.update()

    def _to_map(self, r: QRectF) -> QRectF:
        s = self._scale
        return QRectF(
            self._offset.x() + (r.x() - self._world.x()) * s,
            self._offset.y() + (r.y() - self._world.y()) * s,
            max(r.width() * s, 1.5),
            max(r.height() * s, 1.5),
        )

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: D102, N802
        painter = QPainter(self)
        if not self._pixmap.isNull():
            painter.drawPixmap(0, 0, self._pixmap)
            s = self._view.board_scene.board_style
            visible = self._view.mapToScene(self._view.viewport().rect()).boundingRect()
            painter.setPen(s.minimap_view_pen)
            painter.setBrush(s.minimap_view_brush)
            painter.drawRect(self._to_map(visible).intersected(QRectF(self.rect())))
        painter.end()

    def _center_at(self, pos: QPointF) -> None:
        if self._world.isEmpty() or self._scale <= 0:
            return
        x = self._world.x() + (pos.x() - self._offset.x()) / self._scale
        y = self._world.y() + (pos.y() - self._offset.y()) / self._scale
        self._view.centerOn(x, y)

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: D102, N802
        self._center_at(event.position())

    def mouseMoveEvent(self, event: QMouseEvent) -> None:  # noqa: D102, N802
        if event.buttons() & Qt.MouseButton.LeftButton:
            self._center_at(event.position())
