"""A child and its grandchildren die with a SIGKILLed host (``PR_SET_PDEATHSIG`` and the reaper).

Linux only: the reaper (:func:`symphony.sdk.runner.start_reaper`) is forked only there.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from symphony.extension_host.launcher import Launched, kill_group, launch
from symphony.protocol import SocketChannel, new_token
from symphony.protocol.handshake import HostHandshake
from symphony.sdk.runner import REAPER_NAME

LINUX = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PDEATHSIG is Linux")
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


# A host process that makes the misbehave extension start a grandchild, prints both pids and
# keeps its event loop running until it is killed.
HOST_WITH_GRANDCHILD = r"""
import sys
from pathlib import Path
from PySide6.QtCore import QCoreApplication, QEventLoop
from symphony.extension_host.host import ExtensionHost, HostConfig

app = QCoreApplication([])
host = ExtensionHost([Path(sys.argv[1])], config=HostConfig(unresponsive_after=600))
grandchild = host.request("test.misbehave", "grandchild").wait(60).result
print(host.pid("test.misbehave"), grandchild, flush=True)
while True:
    app.processEvents(QEventLoop.ProcessEventsFlag.WaitForMoreEvents, 1000)
"""


def _stat(pid: int) -> list[bytes]:
    """``/proc/<pid>/stat`` after the command name: state, ppid, pgrp, … (empty when gone)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b") ", 1)[1].split()
    except (OSError, IndexError):
        return []


def _state(pid: int) -> bytes:
    fields = _stat(pid)
    return fields[0][:1] if fields else b""


def _gone(pid: int) -> bool:
    return _state(pid) in (b"", b"Z", b"X")  # a zombie is dead (init may not have reaped it yet)


def _wait_gone(pids: list[int], what: str, timeout: float = 30) -> None:
    end = time.monotonic() + timeout
    while not all(_gone(p) for p in pids):
        alive = {p: _state(p) for p in pids if not _gone(p)}
        assert time.monotonic() < end, f"{what} outlived their parent: {alive}"
        time.sleep(0.02)


def _wait_stopped(pid: int, what: str, timeout: float = 30) -> None:
    # a signal is delivered when its target next runs: on a loaded machine that can be a while
    end = time.monotonic() + timeout
    while _state(pid) != b"T":
        assert time.monotonic() < end, f"{what} did not stop: state {_state(pid)!r}"
        time.sleep(0.005)


def _children(pid: int) -> list[int]:
    out = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            fields = _stat(int(name))
            if len(fields) > 1 and int(fields[1]) == pid and fields[0] not in (b"Z", b"X"):
                out.append(int(name))
    return out


def _comm(pid: int) -> bytes:
    try:
        with open(f"/proc/{pid}/comm", "rb") as f:
            return f.read().strip()
    except OSError:
        return b""


def _reaper_of(pid: int) -> int:
    """Wait until the runner ``pid`` has forked its reaper (after the handshake); return it."""
    end = time.monotonic() + 30
    while True:
        reapers = [k for k in _children(pid) if _comm(k) == REAPER_NAME]
        if reapers:
            assert len(reapers) == 1, f"the runner has more than one reaper: {reapers}"
            return reapers[0]
        assert time.monotonic() < end, f"runner {pid} started no reaper"
        assert not _gone(pid), f"runner {pid} exited"
        time.sleep(0.02)


@pytest.fixture
def runner() -> Iterator[tuple[Launched, int]]:
    """A runner on the misbehave extension, started and greeted as the host does; its reaper."""
    token = new_token()
    launched = launch(
        FIXTURES / "misbehave",
        token,
        identity=("test.misbehave", "0.1.0", "main"),
    )
    try:
        # the runner forks its reaper once the handshake is done
        channel = SocketChannel(launched.sock)
        hs = HostHandshake(token)
        channel.send(hs.challenge())
        hello = channel.recv(30)
        assert hello is not None
        channel.send(hs.accept(hello))
        yield launched, _reaper_of(launched.proc.pid)
    finally:
        kill_group(launched.proc)
        launched.proc.wait(30)
        launched.sock.close()
        for pipe in (launched.proc.stdout, launched.proc.stderr):
            if pipe is not None:
                pipe.close()


@contextlib.contextmanager
def _host_process(script: str) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``script`` (a host on the fixtures) in its own process; kill it at the end."""
    host = subprocess.Popen(
        [sys.executable, "-c", script, str(FIXTURES)],
        stdout=subprocess.PIPE,
        env={**os.environ, "QT_QPA_PLATFORM": "offscreen"},
    )
    try:
        yield host
    finally:
        if host.poll() is None:
            host.kill()
            host.wait()
        if host.stdout is not None:
            host.stdout.close()


@LINUX
def test_a_stopped_child_dies_with_a_sigkilled_host() -> None:
    with _host_process(HOST) as host:
        assert host.stdout is not None
        child = int(host.stdout.readline())
        assert host.stdout.readline() == b"stopped\n"
        assert _state(child) == b"T"
        host.send_signal(signal.SIGKILL)
        host.wait(30)
        _wait_gone([child], "the child")


@LINUX
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


@LINUX
def test_grandchildren_die_with_a_sigkilled_host() -> None:
    child = 0
    try:
        with _host_process(HOST_WITH_GRANDCHILD) as host:
            assert host.stdout is not None
            child, grandchild = map(int, host.stdout.readline().split())
            assert not _gone(child)
            assert not _gone(grandchild)
            assert int(_stat(grandchild)[1]) == child
            reaper = _reaper_of(child)
            host.send_signal(signal.SIGKILL)
            host.wait(30)
            _wait_gone([child, grandchild, reaper], "the child, its grandchild or the reaper")
    finally:
        if child:  # on failure, leave no orphan behind
            with contextlib.suppress(OSError):
                os.killpg(child, signal.SIGKILL)


@LINUX
def test_the_reaper_is_the_runners_child_in_its_group_with_no_open_file(
    runner: tuple[Launched, int],
) -> None:
    launched, reaper = runner
    pid = launched.proc.pid
    assert _children(pid) == [reaper]  # nothing else: the extension started nothing
    assert os.getpgid(reaper) == pid
    assert os.listdir(f"/proc/{reaper}/fd") == []


@LINUX
def test_the_reaper_keeps_neither_the_socket_nor_the_pipes_open(
    runner: tuple[Launched, int],
) -> None:
    """With the reaper alive, the host still sees end-of-file when the runner dies."""
    launched, reaper = runner
    os.kill(reaper, signal.SIGSTOP)  # it must not kill the group before we read
    _wait_stopped(reaper, "the reaper")
    launched.proc.kill()
    launched.proc.wait(30)
    launched.sock.settimeout(30)
    assert launched.sock.recv(16) == b""
    assert launched.proc.stdout is not None
    assert launched.proc.stderr is not None
    assert launched.proc.stdout.read() == b""
    assert launched.proc.stderr.read() == b""
    assert _state(reaper) == b"T"
    os.kill(reaper, signal.SIGCONT)  # the runner's death is pending: it kills the group
    _wait_gone([reaper], "the reaper")
