"""P13: start-up of the desktop app until its main window is interactive.

``symphony``: ``python -m symphony --smoke-test`` in a fresh process, offscreen: imports, the
main window with every dock, the staged services (extension host, node-type registry with the
canvas and palette, workspace) — until the event loop is idle with the window exposed. The
process prints ``startup_ms`` (from process start to interactive) and ``services_ms``; the
wall time also includes waiting for the Pit to open on its worker thread and shutting down.
``baseline:bare-qt``: a process that imports QtWidgets, shows an empty ``QMainWindow`` and
waits the same way — the floor any PySide6 window pays.

Target (judged in docs, never asserted): interactive ≤ 1.0 s.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from pytest_benchmark.fixture import BenchmarkFixture

ROUNDS = 5

BARE_QT = r"""
import os, sys, time
from pathlib import Path
def since_start():
    stat = Path("/proc/self/stat").read_text()
    ticks = int(stat.rsplit(")", 1)[1].split()[19])
    return time.clock_gettime(time.CLOCK_BOOTTIME) - ticks / os.sysconf("SC_CLK_TCK")
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QMainWindow
app = QApplication(sys.argv)
w = QMainWindow()
w.resize(1400, 860)
w.show()
def idle():
    h = w.windowHandle()
    if h is not None and h.isExposed():
        print(f"startup_ms={since_start() * 1000:.0f}")
        app.quit()
    else:
        QTimer.singleShot(1, idle)
QTimer.singleShot(0, idle)
app.exec()
"""


def _command(case: str) -> list[str]:
    if case == "symphony":
        return [sys.executable, "-m", "symphony", "--smoke-test"]
    return [sys.executable, "-c", BARE_QT]


@pytest.mark.benchmark(group="P13-startup")
@pytest.mark.parametrize("case", ["symphony", "baseline:bare-qt"])
def test_p13_startup(benchmark: BenchmarkFixture, case: str) -> None:
    startup: list[int] = []
    with tempfile.TemporaryDirectory(prefix="p13-") as tmp:
        env = dict(os.environ)
        env["QT_QPA_PLATFORM"] = "offscreen"
        env["XDG_CONFIG_HOME"] = str(Path(tmp) / "config")
        env["XDG_DATA_HOME"] = str(Path(tmp) / "data")

        def run() -> None:
            out = subprocess.run(
                _command(case), capture_output=True, text=True, env=env, timeout=120, check=True
            )
            m = re.search(r"^startup_ms=(\d+)$", out.stdout, re.M)
            assert m is not None, out.stdout + out.stderr
            startup.append(int(m.group(1)))

        benchmark.pedantic(run, rounds=ROUNDS, iterations=1, warmup_rounds=1)
    startup.sort()
    stats = {
        "startup_ms_p50": startup[len(startup) // 2],
        "startup_ms_min": startup[0],
        "startup_ms_max": startup[-1],
    }
    benchmark.extra_info["target"] = "main window interactive <= 1000 ms after process start"
    benchmark.extra_info.update(stats)
    print(f"\nP13 {case}: {stats}")
