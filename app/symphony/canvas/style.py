"""Colours, pens, brushes and fonts of the board, made once from the application palette.

Everything a paint call needs is prepared here, so painting allocates no fonts, pens or brushes.
Structural colours (canvas, node body, text, selection) come from the :class:`QPalette`, so the
board follows a light or dark theme; the semantic colours (port types, run states, categories) are
fixed hues whose lightness is adjusted to stay readable on either.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from PySide6.QtCore import Qt
from PySide6.QtGui import QBrush, QColor, QFont, QFontMetricsF, QPalette, QPen

from symphony.registry.types import PortType

__all__ = ["RUN_STATES", "BoardStyle"]

RUN_STATES: Final = (
    "idle",
    "queued",
    "running",
    "paused",
    "succeeded",
    "failed",
    "skipped",
    "cached",
    "cancelled",
)

_PORT_HUES: Final = {
    PortType.ANY: "#9e9e9e",
    PortType.TEXT: "#42a5f5",
    PortType.JSON: "#ffa726",
    PortType.CODE: "#66bb6a",
    PortType.MARKDOWN: "#26c6da",
    PortType.FILE_PATH: "#d4b106",
    PortType.FILE_LIST: "#ef8a3c",
    PortType.EMBEDDING: "#ec407a",
}
_STATE_HUES: Final = {
    "idle": "#8a8f98",
    "queued": "#7e8cc7",
    "running": "#2f81f7",
    "paused": "#e3a008",
    "succeeded": "#2ea043",
    "failed": "#e5534b",
    "skipped": "#8a8f98",
    "cached": "#a371f7",
    "cancelled": "#6e7681",
}
_CATEGORY_HUES: Final = {
    "Instruments": "#8e6cf0",
    "Operators": "#1f9e8e",
    "Files": "#c98a1b",
}
_UNKNOWN_HUE: Final = "#b0413e"


def _pen(color: QColor, width: float, style: Qt.PenStyle = Qt.PenStyle.SolidLine) -> QPen:
    pen = QPen(color, width, style)
    pen.setCosmetic(False)
    pen.setCapStyle(Qt.PenCapStyle.RoundCap)
    pen.setJoinStyle(Qt.PenJoinStyle.RoundJoin)
    return pen


def _with_alpha(color: QColor, alpha: int) -> QColor:
    c = QColor(color)
    c.setAlpha(alpha)
    return c


def _mix(a: QColor, b: QColor, t: float) -> QColor:
    return QColor(
        round(a.red() + (b.red() - a.red()) * t),
        round(a.green() + (b.green() - a.green()) * t),
        round(a.blue() + (b.blue() - a.blue()) * t),
    )


@dataclass
class BoardStyle:
    """The prepared drawing resources; build with :meth:`from_palette`."""

    dark: bool
    canvas: QBrush
    grid_pen: QPen
    grid_major_pen: QPen
    node_brush: QBrush
    node_header_brush: QBrush
    node_border: QPen
    node_selected: QPen
    text_pen: QPen
    muted_pen: QPen
    preview_brush: QBrush
    preview_pen: QPen
    title_font: QFont
    small_font: QFont
    mono_font: QFont
    title_metrics: QFontMetricsF
    small_metrics: QFontMetricsF
    mono_metrics: QFontMetricsF
    highlight: QColor
    note_brush: QBrush
    note_pen: QPen
    note_text: QColor
    breakpoint_brush: QBrush
    breakpoint_pen: QPen
    port_colors: dict[PortType, QColor] = field(default_factory=dict)
    port_brushes: dict[PortType, QBrush] = field(default_factory=dict)
    port_dim_brushes: dict[PortType, QBrush] = field(default_factory=dict)
    link_pens: dict[PortType, QPen] = field(default_factory=dict)
    link_selected_pen: QPen = field(default_factory=QPen)
    link_drag_pen: QPen = field(default_factory=QPen)
    port_ring_pen: QPen = field(default_factory=QPen)
    port_hot_pen: QPen = field(default_factory=QPen)
    state_colors: dict[str, QColor] = field(default_factory=dict)
    state_brushes: dict[str, QBrush] = field(default_factory=dict)
    state_pens: dict[str, QPen] = field(default_factory=dict)
    category_brushes: dict[str, QBrush] = field(default_factory=dict)
    category_colors: dict[str, QColor] = field(default_factory=dict)
    overview_link_pen: QPen = field(default_factory=QPen)
    overview_node_pen: QPen = field(default_factory=QPen)
    overview_selected_brush: QBrush = field(default_factory=QBrush)
    minimap_view_pen: QPen = field(default_factory=QPen)
    minimap_view_brush: QBrush = field(default_factory=QBrush)
    badge_text_pen: QPen = field(default_factory=QPen)
    progress_track: QBrush = field(default_factory=QBrush)

    @classmethod
    def from_palette(cls, palette: QPalette, base_font: QFont | None = None) -> BoardStyle:
        """Return the style for ``palette`` (light or dark is read from its window colour)."""
        role = QPalette.ColorRole
        window = palette.color(role.Window)
        base = palette.color(role.Base)
        text = palette.color(role.WindowText)
        dark = window.lightness() < 128
        canvas = _mix(window, QColor("black"), 0.18) if dark else _mix(window, base, 0.5)
        grid = _mix(canvas, text, 0.07 if dark else 0.06)
        grid_major = _mix(canvas, text, 0.13 if dark else 0.11)
        body = _mix(base, window, 0.35) if dark else base
        header = _mix(body, text, 0.07)
        muted = _mix(text, canvas, 0.45)
        highlight = palette.color(role.Highlight)
        border = _mix(body, text, 0.25)
        font = QFont(base_font) if base_font is not None else QFont()
        title_font = QFont(font)
        title_font.setPointSizeF(9.5)
        title_font.setBold(True)
        small_font = QFont(font)
        small_font.setPointSizeF(7.8)
        mono_font = QFont("monospace")
        mono_font.setStyleHint(QFont.StyleHint.Monospace)
        mono_font.setPointSizeF(7.8)
        note = QColor("#4b4528") if dark else QColor("#fff4b8")
        style = cls(
            dark=dark,
            canvas=QBrush(canvas),
            grid_pen=_pen(grid, 1.0),
            grid_major_pen=_pen(grid_major, 1.0),
            node_brush=QBrush(body),
            node_header_brush=QBrush(header),
            node_border=_pen(border, 1.0),
            node_selected=_pen(highlight, 2.2),
            text_pen=_pen(text, 1.0),
            muted_pen=_pen(muted, 1.0),
            preview_brush=QBrush(_mix(body, canvas, 0.6)),
            preview_pen=_pen(_mix(text, body, 0.2), 1.0),
            title_font=title_font,
            small_font=small_font,
            mono_font=mono_font,
            title_metrics=QFontMetricsF(title_font),
            small_metrics=QFontMetricsF(small_font),
            mono_metrics=QFontMetricsF(mono_font),
            highlight=highlight,
            note_brush=QBrush(note),
            note_pen=_pen(_mix(note, text, 0.25), 1.0),
            note_text=_mix(text, note, 0.1) if dark else QColor("#3b3420"),
            breakpoint_brush=QBrush(QColor("#e5534b")),
            breakpoint_pen=_pen(_mix(QColor("#e5534b"), body, 0.3), 1.5),
        )
        for port_type, hue in _PORT_HUES.items():
            c = QColor(hue)
            if not dark:
                c = c.darker(118)
            style.port_colors[port_type] = c
            style.port_brushes[port_type] = QBrush(c)
            style.port_dim_brushes[port_type] = QBrush(_with_alpha(c, 50))
            style.link_pens[port_type] = _pen(_mix(c, canvas, 0.15), 2.0)
        style.link_selected_pen = _pen(highlight, 3.4)
        style.link_drag_pen = _pen(highlight, 2.2, Qt.PenStyle.DashLine)
        style.port_ring_pen = _pen(body, 1.6)
        style.port_hot_pen = _pen(highlight, 2.4)
        for state, hue in _STATE_HUES.items():
            c = QColor(hue)
            style.state_colors[state] = c
            style.state_brushes[state] = QBrush(c)
            style.state_pens[state] = _pen(c, 2.4)
        for category, hue in {**_CATEGORY_HUES, "": _UNKNOWN_HUE}.items():
            c = QColor(hue)
            style.category_colors[category] = c
            style.category_brushes[category] = QBrush(c)
        style.overview_link_pen = _pen(_mix(canvas, text, 0.35), 0.0)
        style.overview_link_pen.setCosmetic(True)
        style.overview_node_pen = QPen(Qt.PenStyle.NoPen)
        style.overview_selected_brush = QBrush(highlight)
        style.minimap_view_pen = _pen(highlight, 1.0)
        style.minimap_view_pen.setCosmetic(True)
        style.minimap_view_brush = QBrush(_with_alpha(highlight, 40))
        style.badge_text_pen = _pen(QColor("white"), 1.0)
        style.progress_track = QBrush(_mix(body, text, 0.12))
        return style

    def port_color(self, port_type: PortType) -> QColor:
        """Return the colour of ``port_type``."""
        return self.port_colors[port_type]
