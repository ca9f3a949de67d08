"""The fallback channel: a random socket name in a private 0700 folder, one accepted connection."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from symphony.extension_host import launcher
from symphony.extension_host.host import DISABLED, READY, CallResult, HostConfig
from symphony.extension_host.launcher import ChannelError, PrivateListener
from symphony.protocol import ExtensionCrashedError

from .conftest import MISBEHAVE, HostFactory

DIRECTORY = HostConfig(channel="directory")


@pytest.fixture
def made_dirs(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The folders the launcher makes (the real ``mkdtemp``, recorded)."""
    made: list[str] = []
    real = launcher._make_private_dir

    def spy() -> str:
        made.append(real())
        return made[-1]

    monkeypatch.setattr(launcher, "_make_private_dir", spy)
    return made


def test_a_child_connects_through_the_private_folder(
    make_host: HostFactory, made_dirs: list[str]
) -> None:
    host, _ = make_host(config=DIRECTORY)
    reply = host.request(MISBEHAVE, "echo", {"a": 1}, body=b"\x01").wait()
    assert reply == CallResult({"a": 1}, b"\x01")
    assert host.state(MISBEHAVE) == READY
    [folder] = made_dirs
    assert not os.path.exists(folder)  # single accept: the path and folder are gone at once
    pid = host.pid(MISBEHAVE)
    assert pid is not None
    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    assert b"--connect" in cmdline
    assert b"--fd" not in cmdline


def test_the_folder_is_private_and_the_name_random() -> None:
    a, b = PrivateListener(), PrivateListener()
    try:
        assert os.stat(a.dir).st_mode & 0o777 == 0o700
        assert a.dir != b.dir
        assert os.path.basename(a.path) != os.path.basename(b.path)
    finally:
        a.close()
        b.close()
    assert not os.path.exists(a.dir)


def test_a_loose_folder_is_refused(
    make_host: HostFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    squatted = tmp_path / "squatted"
    squatted.mkdir(mode=0o755)
    squatted.chmod(0o755)
    monkeypatch.setattr(launcher, "_make_private_dir", lambda: str(squatted))
    host, rec = make_host(config=DIRECTORY)
    with pytest.raises(ExtensionCrashedError, match=r"is not private: mode 0o755, expected 0o700"):
        host.request(MISBEHAVE, "echo", 1).wait()
    assert host.state(MISBEHAVE) == DISABLED
    assert "is not private" in host.last_error(MISBEHAVE)
    assert rec.breakers
    assert "is not private" in rec.breakers[0][1]


def test_a_symlinked_folder_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = tmp_path / "real"
    real.mkdir(mode=0o700)
    link = tmp_path / "link"
    link.symlink_to(real)
    monkeypatch.setattr(launcher, "_make_private_dir", lambda: str(link))
    with pytest.raises(ChannelError, match="is not a plain folder"):
        PrivateListener()


def test_a_path_bound_by_another_process_is_refused(
    make_host: HostFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "private"
    folder.mkdir(mode=0o700)
    path = folder / "taken.sock"
    squatter = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import socket, sys, time\n"
            "s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.listen(1)\n"
            "print('bound', flush=True); time.sleep(60)",
            str(path),
        ],
        stdout=subprocess.PIPE,
    )
    try:
        assert squatter.stdout is not None
        assert squatter.stdout.readline() == b"bound\n"
        monkeypatch.setattr(launcher, "_make_private_dir", lambda: str(folder))
        monkeypatch.setattr(launcher, "_socket_name", lambda: "taken.sock")
        host, _ = make_host(config=DIRECTORY)
        with pytest.raises(
            ExtensionCrashedError, match=r"cannot bind the channel socket .*taken\.sock"
        ):
            host.request(MISBEHAVE, "echo", 1).wait()
        assert host.state(MISBEHAVE) == DISABLED
        assert path.exists()  # the squatter's socket is left alone, never reused
    finally:
        squatter.kill()
        squatter.wait()
        if squatter.stdout is not None:
            squatter.stdout.close()


def test_a_folder_swapped_while_binding_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "private"
    folder.mkdir(mode=0o700)
    monkeypatch.setattr(launcher, "_make_private_dir", lambda: str(folder))
    real_bind = launcher._bind

    def swap_then_bind(sock: socket.socket, path: str) -> None:
        # Another process renames our folder away and puts its own (also 0700) in its place.
        folder.rename(tmp_path / "moved")
        folder.mkdir(mode=0o700)
        real_bind(sock, path)

    monkeypatch.setattr(launcher, "_bind", swap_then_bind)
    with pytest.raises(ChannelError, match="was replaced while binding"):
        PrivateListener()


def test_a_rogue_first_connection_is_refused_and_nobody_else_gets_in() -> None:
    listener = PrivateListener()
    rogue = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    rogue.connect(listener.path)
    child_pid = os.getpid() + 1_000_000  # not us: the connection above comes from our pid
    try:
        with pytest.raises(ChannelError, match=r"came from pid \d+ .* not the extension"):
            listener.accept(child_pid)
        assert not os.path.exists(listener.path)
        late = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        with pytest.raises(FileNotFoundError):
            late.connect(listener.path)
        late.close()
    finally:
        rogue.close()
        listener.close()


def test_accept_takes_the_expected_peer() -> None:
    listener = PrivateListener()
    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    client.connect(listener.path)
    conn = listener.accept(os.getpid())
    try:
        client.sendall(b"x")
        assert conn.getblocking() is False
        assert not os.path.exists(listener.dir)
    finally:
        conn.close()
        client.close()


def test_unknown_channel_kind_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown channel 'pipe'"):
        launcher.launch(tmp_path, None, channel="pipe")
