"""Light and dark themes: a Fusion QPalette plus a small stylesheet from ``resources/themes``."""

from __future__ import annotations

from importlib import resources

from PySide6.QtGui import QColor, QIcon, QPalette
from PySide6.QtWidgets import QApplication

_DARK: dict[QPalette.ColorRole, str] = {
    QPalette.ColorRole.Window: "#2b2d31",
    QPalette.ColorRole.WindowText: "#e3e5e8",
    QPalette.ColorRole.Base: "#1e1f22",
    QPalette.ColorRole.AlternateBase: "#26282c",
    QPalette.ColorRole.ToolTipBase: "#1e1f22",
    QPalette.ColorRole.ToolTipText: "#e3e5e8",
    QPalette.ColorRole.PlaceholderText: "#80848e",
    QPalette.ColorRole.Text: "#e3e5e8",
    QPalette.ColorRole.Button: "#33353a",
    QPalette.ColorRole.ButtonText: "#e3e5e8",
    QPalette.ColorRole.BrightText: "#ff6b6b",
    QPalette.ColorRole.Link: "#6ea8fe",
    QPalette.ColorRole.Highlight: "#3d6fd9",
    QPalette.ColorRole.HighlightedText: "#ffffff",
    QPalette.ColorRole.Mid: "#404249",
    QPalette.ColorRole.Dark: "#18191c",
    QPalette.ColorRole.Light: "#4a4d55",
}
_DISABLED_DARK = "#6d717a"


def palette_for(theme: str) -> QPalette:
    """Return the QPalette of ``theme`` (``light`` or ``dark``)."""
    if theme == "light":
        return QApplication.style().standardPalette()
    if theme != "dark":
        raise ValueError(f"unknown theme {theme!r} (light or dark)")
    pal = QPalette()
    for role, color in _DARK.items():
        pal.setColor(role, QColor(color))
    for role in (
        QPalette.ColorRole.WindowText,
        QPalette.ColorRole.Text,
        QPalette.ColorRole.ButtonText,
    ):
        pal.setColor(QPalette.ColorGroup.Disabled, role, QColor(_DISABLED_DARK))
    return pal


def stylesheet_for(theme: str) -> str:
    """Return the small stylesheet shipped for ``theme``."""
    return resources.files("symphony.resources").joinpath(f"themes/{theme}.qss").read_text("utf-8")


def apply_theme(app: QApplication, theme: str) -> None:
    """Switch ``app`` to ``theme``: Fusion style, palette and stylesheet."""
    app.setStyle("Fusion")
    app.setPalette(palette_for(theme))
    app.setStyleSheet(stylesheet_for(theme))
    app.setProperty("symphony_theme", theme)


def current_theme(app: QApplication) -> str:
    """Return the theme last applied with :func:`apply_theme` (``light`` before any)."""
    value = app.property("symphony_theme")
    return str(value) if value else "light"


def app_icon() -> QIcon:
    """Return the application icon (SVG)."""
    path = resources.files("symphony.resources").joinpath("icons/symphony.svg")
    return QIcon(str(path))
