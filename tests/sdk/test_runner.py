"""The runner's entry: usage, token on stdin, handshake failures and their exit codes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from symphony.protocol import (
    AuthenticationError,
    ErrorCode,
    ErrorResponse,
    HostHandshake,
    IncompatibleProtocolError,
    Response,
    new_token,
)
from symphony.sdk.runner import ExtensionLoadError, load_extension

from .host import DEMO, ChildHost


def test_usage_error() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "symphony.sdk.runner", str(DEMO)],
        capture_output=True,
        timeout=30,
        check=False,
    )
    assert proc.returncode == 2
    assert b"usage" in proc.stderr
    assert proc.stdout == b""


def test_missing_token_on_stdin() -> None:
    c = ChildHost(send_token=False)
    try:
        assert c.wait() == 77
        assert b"no launch token" in c.stderr
    finally:
        c.close()


def test_wrong_token_is_rejected_fatally() -> None:
    c = ChildHost(child_token=new_token())
    try:
        with pytest.raises(AuthenticationError) as info:
            c.handshake()
        assert info.value.fatal
        assert c.wait() == 77
        assert b"unauthorized" in c.stderr
    finally:
        c.close()


def test_version_mismatch_is_a_distinct_fatal_error() -> None:
    c = ChildHost()
    try:
        with pytest.raises(IncompatibleProtocolError) as info:
            c.handshake(protocols=(2, 3))
        assert info.value.code == ErrorCode.INCOMPATIBLE_PROTOCOL
        assert info.value.fatal
        assert c.wait() == 78
        assert b"incompatible protocol" in c.stderr
    finally:
        c.close()


def test_child_rejects_a_host_that_does_not_know_the_token() -> None:
    """A welcome MACed with another token fails on the child side too (mutual authentication)."""
    c = ChildHost()
    try:
        c.token, real = new_token(), c.token
        # the host "accepts" without checking (it cannot verify with the wrong token): forge it
        from symphony.protocol import Welcome

        hs = HostHandshake(c.token)
        c.channel.send(hs.challenge())
        hello = c.channel.recv(10)
        assert hello is not None
        forged = Welcome(1, {}, {"max_frame": 1 << 20}, mac=bytes(32))
        c.channel.send(forged)
        assert c.wait() == 77
        assert real != c.token
    finally:
        c.close()


def _toml(entry: str) -> str:
    return f'id = "test.x"\nname = "X"\nversion = "1.0.0"\nentry = "{entry}"\n'


def test_load_extension_errors(tmp_path: Path) -> None:
    with pytest.raises(ExtensionLoadError, match=r"no extension\.toml"):
        load_extension(tmp_path)
    (tmp_path / "extension.toml").write_text(_toml("../evil"))
    with pytest.raises(ExtensionLoadError, match="entry"):
        load_extension(tmp_path)
    outside = tmp_path.parent / f"{tmp_path.name}-outside.py"
    outside.write_text("extension = 1\n")
    (tmp_path / "evil.py").symlink_to(outside)
    (tmp_path / "extension.toml").write_text(_toml("evil"))
    with pytest.raises(ExtensionLoadError, match="not a file inside"):
        load_extension(tmp_path)
    (tmp_path / "extension.toml").write_text(_toml("main"))
    (tmp_path / "main.py").write_text("extension = 42\n")
    with pytest.raises(ExtensionLoadError, match="no `extension"):
        load_extension(tmp_path)
    (tmp_path / "extension.toml").write_text(_toml("no_such_module_anywhere.main"))
    with pytest.raises(ExtensionLoadError, match="no such module"):
        load_extension(tmp_path)


def test_entry_is_a_module_path_in_the_folder(tmp_path: Path) -> None:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "main.py").write_text(
        "from symphony.sdk import Extension\nextension = Extension()\n"
    )
    (tmp_path / "extension.toml").write_text(_toml("pkg.main"))
    ext = load_extension(tmp_path)
    assert (ext.id, ext.version) == ("test.x", "1.0.0")


def test_peer_check_refuses_a_socket_not_made_by_the_parent() -> None:
    import socket

    from symphony.sdk.runner import check_peer

    a, b = socket.socketpair()  # made by this process, which is not our parent
    try:
        problem = check_peer(a)
        if hasattr(socket, "SO_PEERCRED"):
            assert problem is not None
            assert "not the parent" in problem
    finally:
        a.close()
        b.close()


def test_error_frame_for_unknown_handshake(child: ChildHost) -> None:
    """A host that answers the hello with an error frame makes the child exit with its code."""
    hs = HostHandshake(child.token)
    child.channel.send(hs.challenge())
    assert child.channel.recv(10) is not None
    child.channel.send(ErrorResponse(None, ErrorCode.RESOURCE_LIMIT, "too many extensions"))
    assert child.wait() == 76


def test_hello_recorded_from_a_real_child_cannot_be_replayed() -> None:
    """Record a real child's hello bytes, then replay them on a new connection: refused."""
    import socket

    from symphony.protocol import FrameDecoder, SocketChannel, encode

    c = ChildHost()
    try:
        first = HostHandshake(c.token)
        c.channel.send(first.challenge())
        hello = c.channel.recv(10)
        assert hello is not None
        recorded = encode(hello)
        c.channel.send(first.accept(hello))  # the genuine session works
        assert c.ping(5.0)
    finally:
        c.close()
    host_sock, attacker = socket.socketpair()
    host = SocketChannel(host_sock)
    second = HostHandshake(c.token)  # even if the token were reused
    host.send(second.challenge())
    assert FrameDecoder().feed(attacker.recv(4096))  # the attacker sees the new challenge
    attacker.sendall(recorded)
    replayed = host.recv(5)
    assert replayed is not None
    with pytest.raises(AuthenticationError):
        second.accept(replayed)
    host.close()
    attacker.close()


def test_logging_imported_only_inside_a_handler_still_reaches_the_host(tmp_path: Path) -> None:
    # The runner defers `import logging` when the extension has not imported it; a handler that
    # imports and uses it later must still be forwarded as structured records.
    (tmp_path / "main.py").write_text(
        "import sys\n"
        "from symphony.sdk import Extension\n"
        "extension = Extension()\n"
        "assert 'logging' not in sys.modules\n"
        "@extension.request('log')\n"
        "def log(ctx):\n"
        "    import logging, time\n"
        "    root = logging.getLogger()\n"
        "    end = time.monotonic() + 10\n"
        "    while not root.handlers and time.monotonic() < end:\n"
        "        time.sleep(0.01)\n"
        "    logging.getLogger('late').warning('late %s', 'hello')\n"
    )
    (tmp_path / "extension.toml").write_text(_toml("main"))
    host = ChildHost(tmp_path)
    try:
        host.handshake()
        reply = host.call("log")
        assert reply == Response(1)
        assert [(r.level, r.logger, r.message) for r in host.logs] == [
            ("warning", "late", "late hello")
        ]
    finally:
        host.close()
    assert b"late hello" not in host.stderr


# Starts a grandchild, then (maybe with another thread running) the reaper; prints both pids and
# exits normally once stdin is closed.
REAPER_PROBE = r"""
import subprocess, sys, threading
from symphony.sdk.runner import start_reaper

grandchild = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
if sys.argv[1] == "thread":
    threading.Thread(target=threading.Event().wait, daemon=True).start()
print(start_reaper(), grandchild.pid, flush=True)
sys.stdin.read()
"""


def _dead(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b") ", 1)[1][:1] in (b"Z", b"X")  # zombie: dead, not reaped
    except OSError:
        return True


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the reaper is Linux only")
@pytest.mark.parametrize(
    ("session", "mode", "expected"),
    [
        (True, "plain", True),
        (False, "plain", False),  # the group may be a shell's or pytest's: never kill it
        (True, "thread", False),  # fork with threads running is not safe
    ],
    ids=["own-session", "not-a-session-leader", "thread-running"],
)
def test_start_reaper(session: bool, mode: str, expected: bool) -> None:
    import os
    import signal
    import time

    proc = subprocess.Popen(
        [sys.executable, "-c", REAPER_PROBE, mode],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=session,
    )
    grandchild = 0
    try:
        assert proc.stdin is not None
        assert proc.stdout is not None
        assert proc.stderr is not None
        reaper, grandchild_pid = proc.stdout.readline().split()
        grandchild = int(grandchild_pid)
        if not expected:
            assert reaper == b"None"
            proc.stdin.close()
            proc.wait(30)
            os.kill(grandchild, signal.SIGKILL)  # it holds the stderr pipe open
            grandchild = 0
            stderr = proc.stderr.read()
            if mode == "thread":  # the host's log says why there is none
                assert b"no reaper (grandchildren may outlive a killed host)" in stderr
            else:
                assert stderr == b""
            return
        assert not _dead(int(reaper))
        assert not _dead(grandchild)
        proc.stdin.close()  # the probe exits normally: its reaper kills what it left behind
        assert proc.wait(30) == 0  # the reaper does not change the runner's exit code
        end = time.monotonic() + 30
        while not (_dead(grandchild) and _dead(int(reaper))):
            assert time.monotonic() < end, "the grandchild or the reaper outlived the runner"
            time.sleep(0.02)
        grandchild = 0  # dead: its pid may belong to another process by now
    finally:
        if grandchild:
            try:
                os.kill(grandchild, signal.SIGKILL)
            except OSError:
                pass
        if proc.poll() is None:
            proc.kill()
        proc.wait(30)
        for pipe in (proc.stdin, proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the reaper is Linux only")
def test_start_reaper_when_fork_fails_says_so_and_goes_on() -> None:
    probe = (
        "import errno, os\n"
        "def fork():\n"
        "    raise OSError(errno.EAGAIN, os.strerror(errno.EAGAIN))\n"
        "os.fork = fork  # the fault: no process left\n"
        "from symphony.sdk.runner import start_reaper\n"
        "print(start_reaper())\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        start_new_session=True,
        timeout=30,
        check=True,
    )
    assert out.stdout.strip() == b"None"
    assert b"no reaper" in out.stderr
    assert b"cannot fork" in out.stderr
    assert b"Resource temporarily unavailable" in out.stderr
