"""Render the main window into PNG files: ``python -m symphony.ui.screenshots OUT_DIR``.

Used by ``make screenshots`` (under Xvfb, so fonts and styles are those of a real X11 session).
The window shows a shipped template on the board after a real run with the embedded model (node
states, outputs, the timeline, the artifacts), the repository's ``docs`` folder in the Files dock
(listed by the real File Explorer extension) and a fresh Pit in a temporary folder; one image
per theme.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from PySide6.QtCore import QCoreApplication, QEventLoop, QSettings, QTimer
from PySide6.QtWidgets import QApplication

TEMPLATE = "idea_to_plan"
SIZE = (1440, 900)


def _spin(seconds: float, until: object = None) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if until is not None and until():  # type: ignore[operator]
            return
        loop = QEventLoop()
        QTimer.singleShot(20, loop.quit)
        loop.exec()


def render(out_dir: Path, workspace: Path) -> list[Path]:
    """Write ``main-light.png`` and ``main-dark.png`` into ``out_dir``; return their paths."""
    from symphony.ui.app import _make_app
    from symphony.ui.main_window import MainWindow
    from symphony.ui.theme import apply_theme

    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    with tempfile.TemporaryDirectory(prefix="symphony-shots-") as tmp:
        # A clean layout and no user preferences: the pictures show the defaults.
        QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, tmp)
        app = _make_app(["symphony"])
        assert isinstance(app, QApplication)
        apply_theme(app, "light")
        window = MainWindow(
            workspace=workspace,
            data_dir=Path(tmp) / "pit",
            key_file=str(Path(tmp) / "pit.key"),
        )
        window.resize(*SIZE)
        window.show()
        _spin(30, lambda: window.pit is not None and window.registry is not None)
        board = window.new_from_template(TEMPLATE)
        if board is None:
            raise RuntimeError(f"the template {TEMPLATE!r} did not open")
        _spin(15, lambda: bool(window.files.names("")))
        _run(window, board)
        nodes = list(board.melody.nodes)
        if nodes:
            board.select_node(nodes[1] if len(nodes) > 1 else nodes[0])
        _spin(1.0)
        board.fit()
        for theme in ("light", "dark"):
            apply_theme(app, theme)
            window.set_theme(theme)
            _spin(0.8)
            target = out_dir / f"main-{theme}.png"
            if not window.grab().save(str(target)):
                raise OSError(f"could not write {target}")
            written.append(target)
        window.close()
        QCoreApplication.processEvents()
    return written


def _run(window: object, board: object) -> None:
    """Run the board's melody on a qasync loop, as the app does, until it ends."""
    import asyncio

    from symphony.qtloop import QtEventLoop
    from symphony.ui.main_window import MainWindow

    assert isinstance(window, MainWindow)
    loop = QtEventLoop(QApplication.instance())
    asyncio.set_event_loop(loop)

    async def go() -> None:
        window.runs.start("all", board)  # type: ignore[arg-type]
        while window.runs.last_result is None:
            await asyncio.sleep(0.1)

    loop.run_until_complete(asyncio.wait_for(go(), 600))
    window.timeline.raise_()


def main(argv: list[str] | None = None) -> int:
    """Command line: ``OUT_DIR [WORKSPACE]``."""
    args = sys.argv[1:] if argv is None else argv
    if not args:
        print("usage: python -m symphony.ui.screenshots OUT_DIR [WORKSPACE]", file=sys.stderr)
        return 2
    out = Path(args[0])
    workspace = Path(args[1]) if len(args) > 1 else Path.cwd() / "docs"
    for path in render(out, workspace):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
