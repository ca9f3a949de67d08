"""A child dies with its host even when the host is SIGKILLed (``PR_SET_PDEATHSIG``, Linux)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"

# A host process: starts the misbehave extension, prints the child's pid, makes the child stop
# itself (SIGSTOP: it can no longer notice the closed socket and exit on its own), says so, and
# keeps its event loop running until it is killed.
HOST = r"""
import sys, time
from pathlib import Path
from PySide6.QtCore import QCoreApplication, QEventLoop
from symphony.extension_host.host import ExtensionHost, HostConfig

app = QCoreApplication([])
host = ExtensionHost([Path(sys.argv[1])], config=HostConfig(unresponsive_after=600))
host.request("test.misbehave", "echo", 1).wait(60)
pid = host.pid("test.misbehave")
print(pid, flush=True)
host.request("test.misbehave", "sigstop")
while True:
    with open(f"/proc/{pid}/stat", "rb") as f:
        if f.read().split(b") ")[1][:1] == b"T":
            break
    app.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 20)
print("stopped", flush=True)
while True:
    app.processEvents(QEventLoop.ProcessEventsFlag.WaitForMoreEvents, 1000)
"""


def _state(pid: int) -> bytes:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().split(b") ")[1][:1]
    except (OSError, IndexError):
        return b""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux")
def test_a_stopped_child_dies_with_a_sigkilled_host() -> None:
    host = subprocess.Popen(
        [sys.executable, "-c", HOST, str(FIXTURES)],
        stdout=subprocess.PIPE,
        env={**os.environ, "QT_QPA_PLATFORM": "offscreen"},
    )
    try:
        assert host.stdout is not None
        child = int(host.stdout.readline())
        assert host.stdout.readline() == b"stopped\n"
        assert _state(child) == b"T"
        host.send_signal(signal.SIGKILL)
        host.wait(30)
        end = time.monotonic() + 30
        while _state(child) not in (b"", b"Z", b"X"):
            assert time.monotonic() < end, f"child {child} outlived its host ({_state(child)!r})"
            time.sleep(0.02)
    finally:
        if host.poll() is None:
            host.kill()
            host.wait()
        if host.stdout is not None:
            host.stdout.close()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux")
def test_die_with_parent_sets_the_signal() -> None:
    probe = (
        "import ctypes, sys\n"
        "from symphony.sdk.runner import die_with_parent\n"
        "assert die_with_parent()\n"
        "libc = ctypes.CDLL(None); sig = ctypes.c_int()\n"
        "libc.prctl(2, ctypes.byref(sig), 0, 0, 0)\n"  # PR_GET_PDEATHSIG
        "print(sig.value)\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, check=True)
    assert out.stdout.strip() == str(int(signal.SIGKILL)).encode()
