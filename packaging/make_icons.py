"""Render ``packaging/icons/symphony.svg`` into the raster icons the installers need.

    .venv/bin/python packaging/make_icons.py            # rewrite the PNG, ICO and ICNS files

Qt renders the SVG (QSvgRenderer) and writes the formats (its ``ico`` and ``icns`` image plugins
ship with PySide6), so no other tool is needed. The outputs are committed; rerun after editing the
SVG.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ICONS = Path(__file__).resolve().parent / "icons"
SVG = ICONS / "symphony.svg"


def render(size: int) -> object:
    """Render the SVG into a transparent ``size`` × ``size`` QImage."""
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    renderer = QSvgRenderer(str(SVG))
    if not renderer.isValid():
        raise SystemExit(f"make_icons: {SVG} is not a valid SVG")
    image = QImage(size, size, QImage.Format.Format_ARGB32)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    renderer.render(painter)
    painter.end()
    return image


def main() -> int:
    """Write ``symphony.png`` (256 px), ``symphony.ico`` and ``symphony.icns``."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtGui import QGuiApplication, QImage

    _app = QGuiApplication.instance() or QGuiApplication(sys.argv[:1])
    outputs = {"symphony.png": (256, "PNG"), "symphony.ico": (256, "ICO")}
    for name, (size, fmt) in outputs.items():
        image = render(size)
        assert isinstance(image, QImage)
        if not image.save(str(ICONS / name), fmt):
            raise SystemExit(f"make_icons: Qt cannot write {name} ({fmt})")
    icns = render(512)
    assert isinstance(icns, QImage)
    if not icns.save(str(ICONS / "symphony.icns"), "ICNS"):
        raise SystemExit("make_icons: Qt cannot write symphony.icns (no icns image plugin)")
    for name in ("symphony.png", "symphony.ico", "symphony.icns"):
        print(f"{ICONS / name}: {(ICONS / name).stat().st_size} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
