"""The ``symphony`` entry: the smoke test in a fresh process, and the start-up staging."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from pytestqt.qtbot import QtBot

from symphony.ui.main_window import MainWindow


def _env(tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["QT_QPA_PLATFORM"] = "offscreen"
    env["XDG_CONFIG_HOME"] = str(tmp_path / "config")  # QSettings of the child
    env["XDG_DATA_HOME"] = str(tmp_path / "data")
    return env


def test_smoke_test_exits_0_and_prints_startup_ms(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "symphony", "--smoke-test"],
        capture_output=True,
        text=True,
        timeout=120,
        env=_env(tmp_path),
        check=False,
    )
    assert out.returncode == 0, out.stderr
    m = re.search(r"^startup_ms=(\d+)$", out.stdout, re.M)
    assert m is not None, out.stdout
    assert int(m.group(1)) > 0
    assert re.search(r"^services_ms=\d+$", out.stdout, re.M)
    # once its services are up, start-up's objects leave later full collections (gc.freeze)
    frozen = re.search(r"^heap_frozen=(\d+)$", out.stdout, re.M)
    assert frozen is not None, out.stdout
    assert int(frozen.group(1)) > 10_000
    # The smoke test uses a throw-away Pit: nothing is left in the user's data folder.
    assert not (tmp_path / "data" / "symphony" / "pit").exists()


def test_smoke_test_names_a_pit_that_cannot_open(tmp_path: Path) -> None:
    not_a_pit = tmp_path / "foreign"
    not_a_pit.mkdir()
    (not_a_pit / "somebody-elses.txt").write_text("x")
    code = subprocess.run(
        [sys.executable, "-c",
         "import sys; from symphony.ui.app import smoke_test; "
         f"sys.exit(smoke_test({str(not_a_pit)!r}, {str(tmp_path / 'k')!r}))"],
        capture_output=True, text=True, timeout=120, env=_env(tmp_path), check=False,
    )  # fmt: skip
    assert code.returncode == 1
    assert "the Pit did not open" in code.stderr
    assert str(not_a_pit) in code.stderr
    assert (not_a_pit / "somebody-elses.txt").read_text() == "x"


def test_services_start_in_stages_after_show(
    qtbot: QtBot, make_window: Callable[..., object], tmp_path: Path
) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "a.txt").write_text("a")
    w = make_window(workspace=ws, data_dir=tmp_path / "pit", key_file=str(tmp_path / "pit.key"))
    assert isinstance(w, MainWindow)
    with qtbot.waitSignal(w.sig_services_started, timeout=30_000):
        w.start_services()
        # Staged: the first step ran, the rest wait for the event loop.
        assert w.host is not None
        assert w.registry is None
    assert w.registry is not None
    assert "ai.code_generator" in w.registry
    assert w.palette_widget is not None
    qtbot.waitUntil(lambda: w.pit is not None, timeout=30_000)
    assert "Pit open" in w.services_label.text()
    qtbot.waitUntil(lambda: w.files.names("") == ["a.txt"], timeout=30_000)


def test_a_pit_that_cannot_open_says_why_where_the_user_looks(
    qtbot: QtBot, make_window: Callable[..., object], tmp_path: Path
) -> None:
    key = tmp_path / "pit.key"
    key.write_bytes(bytes(range(32)))
    key.chmod(0o644)  # readable by others: refused, never used
    w = make_window(workspace=tmp_path, data_dir=tmp_path / "pit", key_file=str(key))
    assert isinstance(w, MainWindow)
    with qtbot.waitSignal(w.sig_pit_ready, timeout=30_000) as ready:
        w.start_services(staged=False)
        assert "Pit opening…" in w.services_label.text()
    assert ready.args == [None]
    assert "chmod 600" in w.pit_error
    assert "Pit failed to open" in w.services_label.text()
    assert w.services_label.toolTip() == w.pit_error
    assert "chmod 600" in w.artifacts.details.text()
    assert "not open yet" not in w.artifacts.details.text()
    w.statusBar().clearMessage()
    w.runs._conductor()
    assert w.statusBar().currentMessage() == f"The run cannot start: {w.pit_error}"


def test_run_gui_runs_the_asyncio_loop_until_the_window_closes(tmp_path: Path) -> None:
    f = tmp_path / "notes.md"
    f.write_text("# hi\n")
    script = f"""
import asyncio, sys
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication
from symphony.ui.app import run_gui
app = QApplication(sys.argv)
seen = []
async def probe():  # runs on the Qt asyncio loop: proof that asyncio works on the GUI thread
    seen.append(type(asyncio.get_running_loop()).__name__)
def check_and_close():
    w = [w for w in app.topLevelWidgets() if w.objectName() == "main_window"][0]
    seen.append(w.tabs.tabText(0))
    asyncio.ensure_future(probe())
    QTimer.singleShot(200, app.closeAllWindows)
QTimer.singleShot(1500, check_and_close)
code = run_gui(sys.argv, files=[{str(f)!r}], data_dir={str(tmp_path / "pit")!r},
               key_file={str(tmp_path / "pit.key")!r})
print(code, seen)
"""
    out = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        env=_env(tmp_path),
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "0 ['notes.md', 'QtEventLoop']"
