"""Application entry points: :func:`run_gui` (the desktop app) and :func:`smoke_test`.

The window is shown before anything slow happens: the registry, the extension host and the Pit
start from ``QTimer.singleShot(0)`` after the first paint (the Pit opens on a worker thread), the
canvas is imported when a melody is first opened and torch only by the conductor's policy.
"""

from __future__ import annotations

import asyncio
import gc
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

_T0 = time.perf_counter()


def _seconds_since_process_start() -> float:
    """Return the seconds since this process started (Linux: from /proc; else since import)."""
    try:
        stat = Path("/proc/self/stat").read_text()
        # Field 22 (starttime, in clock ticks since boot) follows the parenthesised command.
        start_ticks = int(stat.rsplit(")", 1)[1].split()[19])
        ticks = os.sysconf("SC_CLK_TCK")
        return time.clock_gettime(time.CLOCK_BOOTTIME) - start_ticks / ticks
    except (OSError, ValueError, IndexError, AttributeError):
        return time.perf_counter() - _T0


def _settle_heap() -> None:
    """Collect once, then leave what start-up made out of later collections (``gc.freeze``).

    A full collection walks every object the collector tracks: ~45,000 once the window and its
    services are up (modules, Qt wrappers, the registry), 21–25 ms on the reference machine, and
    Python runs one whenever long-lived objects have grown by a quarter — a dropped frame or two
    in the middle of a melody's run. Frozen, start-up's objects are never walked again; what
    becomes garbage among them later is not freed (start-up's objects live as long as the app).
    """
    gc.collect()
    gc.freeze()


def _make_app(argv: Sequence[str]) -> object:
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QGuiApplication
    from PySide6.QtWidgets import QApplication

    QGuiApplication.setHighDpiScaleFactorRoundingPolicy(
        Qt.HighDpiScaleFactorRoundingPolicy.PassThrough
    )
    app = QApplication.instance()
    if app is None:
        app = QApplication(list(argv) or ["symphony"])
    assert isinstance(app, QApplication)
    app.setOrganizationName("Symphony")
    app.setApplicationName("Symphony AIDE")
    app.setApplicationDisplayName("Symphony AIDE")
    app.setDesktopFileName("symphony-aide")
    return app


def run_gui(
    argv: Sequence[str],
    *,
    workspace: str | None = None,
    files: Sequence[str] = (),
    data_dir: str | None = None,
    key_file: str | None = None,
) -> int:
    """Start the desktop app and run it until the window closes; return the exit code.

    Parameters
    ----------
    argv
        Passed to QApplication (Qt options such as ``-platform``).
    workspace
        A folder for the Files dock.
    files
        Melodies or text files to open.
    data_dir, key_file
        The Pit's data folder (default: the settings' or ``~/.local/share/symphony/pit``) and
        key file (default: the OS keyring).
    """
    from PySide6.QtWidgets import QApplication

    from symphony.qtloop import QtEventLoop
    from symphony.ui.main_window import MainWindow
    from symphony.ui.settings import Preferences
    from symphony.ui.theme import apply_theme

    app = _make_app(argv)
    assert isinstance(app, QApplication)
    apply_theme(app, Preferences.load().theme)
    window = MainWindow(workspace=workspace, data_dir=data_dir, key_file=key_file)
    window.sig_services_started.connect(_settle_heap)
    window.show()
    for f in files:
        window.open_path(Path(f))
    loop = QtEventLoop(app)
    asyncio.set_event_loop(loop)
    closed = asyncio.Event()
    app.aboutToQuit.connect(closed.set)
    with loop:
        loop.run_until_complete(closed.wait())
    return 0


def smoke_test(data_dir: str | None = None, key_file: str | None = None) -> int:
    """Open the main window offscreen, wait until it is interactive, print ``startup_ms=<n>``.

    "Interactive" means: the window is exposed, it has been painted and the event loop has run
    until idle (a zero-time timer fired after the first paint), so a click would be handled now.
    The time is measured from the start of the process. Exit code 0 on success, 1 if
    the window never became interactive or the Pit did not open within 10 s.
    """
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    import tempfile

    from PySide6.QtCore import QEventLoop, QTimer
    from PySide6.QtWidgets import QApplication

    from symphony.ui.main_window import MainWindow

    app = _make_app([sys.argv[0] if sys.argv else "symphony"])
    assert isinstance(app, QApplication)
    with tempfile.TemporaryDirectory(prefix="symphony-smoke-") as tmp:
        # The smoke test must not touch the user's Pit or need a keyring: a throw-away folder.
        # Services start exactly as in the app: from a zero-time timer queued before show().
        window = MainWindow(
            data_dir=data_dir or Path(tmp) / "pit",
            key_file=key_file or str(Path(tmp) / "pit.key"),
            remember_layout=False,
        )
        pit_state: dict[str, bool] = {}
        window.sig_pit_ready.connect(lambda p: pit_state.setdefault("opened", p is not None))
        window.show()
        loop = QEventLoop()
        state = {"idle": False}

        def idle() -> None:
            handle = window.windowHandle()
            if handle is not None and handle.isExposed():
                state["idle"] = True
                loop.quit()
            else:
                QTimer.singleShot(1, idle)

        # Queued after the services' timer and the show: when it fires with the window exposed,
        # the loop has nothing left to do before handling input.
        QTimer.singleShot(0, idle)
        QTimer.singleShot(10_000, loop.quit)
        loop.exec()
        ok = state["idle"]
        elapsed_ms = _seconds_since_process_start() * 1000
        # The remaining start-up steps (registry, palette, workspace) and the Pit (on a worker
        # thread) finish in the background while the window already takes input; wait for them
        # to check that they work and report when the event loop was idle for good.
        done = QEventLoop()
        started: dict[str, float] = {}

        def check() -> bool:
            if "services" not in started and window.registry is not None:
                started["services"] = _seconds_since_process_start() * 1000
            finished = "services" in started and "opened" in pit_state
            if finished:
                done.quit()
            return finished

        window.sig_services_started.connect(check)
        window.sig_pit_ready.connect(lambda _p: check())
        QTimer.singleShot(10_000, done.quit)
        if not check():
            done.exec()
        pit_ok = pit_state.get("opened", False)
        _settle_heap()  # what the app does once its services are up
        log = window.log_view.lines()
        window.close()
        app.processEvents()
    if not ok:
        print("symphony: the main window did not become interactive", file=sys.stderr)
        return 1
    if not pit_ok:
        errors = [line for line in log if " ERROR " in line]
        print("symphony: the Pit did not open: " + "; ".join(errors), file=sys.stderr)
        return 1
    print(f"startup_ms={elapsed_ms:.0f}")
    print(f"services_ms={started.get('services', float('nan')):.0f}")
    print(f"heap_frozen={gc.get_freeze_count()}")
    return 0
