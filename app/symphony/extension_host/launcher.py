"""Starting an extension child: socketpair, allowlisted environment, rlimits, token on stdin.

No Qt here (the host wires the results into Qt notifiers). The child is started with
:class:`subprocess.Popen`, whose fork/exec path runs no Python in the child, so it is safe in a
threaded host. Limits are applied from the host with ``prlimit(2)`` *before* the token is written:
the runner blocks on reading the token before it imports the extension, so no extension code ever
runs unlimited. The child gets its own session (``setsid``), so the host can kill it together with
every grandchild through the process group.
"""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import socket
import stat
import struct
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from symphony.extension_host.cgroups import CgroupSupport, ChildCgroup
from symphony.protocol.handshake import write_token

#: Environment variables a child inherits; everything else (API keys, tokens, …) stays out.
ENV_ALLOWLIST: Final = (
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "LANG",
    "LANGUAGE",
    "LC_ALL",
    "LC_CTYPE",
    "LC_MESSAGES",
    "TZ",
    "TMPDIR",
    "SYSTEMROOT",
)
#: Address space granted beyond ``memory_mb`` (thread stacks and allocator arenas are reserved,
#: not used); the host's RSS watchdog enforces ``memory_mb`` itself.
ADDRESS_SPACE_SLACK_MB: Final = 512

_PR_SET_DUMPABLE: Final = 4


def child_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """Return the environment for a child: the allowlisted variables of ours, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if k in ENV_ALLOWLIST}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.update(extra or {})
    return env


def set_undumpable() -> bool:
    """Make this process non-dumpable (Linux ``PR_SET_DUMPABLE=0``).

    A same-uid child then cannot open ``/proc/<host>/mem`` or ptrace the host.

    Returns
    -------
    bool
        Whether the flag is now set.
    """
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return bool(libc.prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0) == 0)
    except (OSError, AttributeError):
        return False


@dataclass(frozen=True, slots=True)
class ProcessLimits:
    """What the host enforces on one child.

    Attributes
    ----------
    memory_mb
        Resident memory the host allows (watchdog); the address space is capped at this plus
        :data:`ADDRESS_SPACE_SLACK_MB`.
    cpu_seconds
        ``RLIMIT_CPU`` (total CPU time; ``SIGXCPU`` then ``SIGKILL``); ``0`` is unlimited.
    cpu_percent
        Share of one core (cgroup v2 ``cpu.max``, where available); ``0`` is unlimited.
    """

    memory_mb: int = 512
    cpu_seconds: int = 0
    cpu_percent: int = 0


class ChannelError(OSError):
    """The fallback channel's directory or socket is not private to us (squatted, swapped, …)."""


def _make_private_dir() -> str:
    # mkdtemp: a random name, created with mkdir(…, 0o700), failing rather than reusing a name.
    return tempfile.mkdtemp(prefix="symphony-ext-")


def _socket_name() -> str:
    return os.urandom(8).hex() + ".sock"


def _bind(sock: socket.socket, path: str) -> None:
    sock.bind(path)


def _check_private_dir(path: str) -> os.stat_result:
    st = os.lstat(path)
    if stat.S_ISLNK(st.st_mode) or not stat.S_ISDIR(st.st_mode):
        raise ChannelError(f"channel directory {path} is not a plain folder (a symbolic link?)")
    if st.st_uid != os.getuid():
        raise ChannelError(f"channel directory {path} belongs to uid {st.st_uid}, not us")
    if stat.S_IMODE(st.st_mode) != 0o700:
        raise ChannelError(
            f"channel directory {path} is not private: mode {oct(stat.S_IMODE(st.st_mode))}, "
            "expected 0o700"
        )
    return st


class PrivateListener:
    """The fallback channel: a socket with a random name in a private ``0700`` folder.

    For platforms without an inheritable socketpair (and, behind ``HostConfig.channel =
    "directory"``, anywhere). The folder is made with a random name and checked (a plain folder,
    ours, mode ``0700``) before and after the socket is bound in it — a folder swapped or
    loosened in between is refused — and the bound path must be the socket we made. Exactly one
    connection is accepted, from the expected child (``SO_PEERCRED`` pid and uid, where the
    platform has it); then the socket path and the folder are removed.

    Raises
    ------
    ChannelError
        If the folder or the path is not private to us (the message names what is wrong).
    """

    def __init__(self) -> None:
        self.dir = _make_private_dir()
        self.path = ""
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            before = _check_private_dir(self.dir)
            path = os.path.join(self.dir, _socket_name())
            try:
                _bind(self.sock, path)
            except OSError as e:
                raise ChannelError(f"cannot bind the channel socket {path}: {e.strerror}") from e
            self.path = path
            after = _check_private_dir(self.dir)
            if (before.st_dev, before.st_ino) != (after.st_dev, after.st_ino):
                raise ChannelError(f"channel directory {self.dir} was replaced while binding")
            st = os.lstat(path)
            if not stat.S_ISSOCK(st.st_mode) or st.st_uid != os.getuid():
                raise ChannelError(f"channel socket {path} is not the socket we bound")
            self.sock.listen(1)
            self.sock.setblocking(False)
        except BaseException:
            self.close()
            raise

    def accept(self, expected_pid: int) -> socket.socket:
        """Accept the one connection and check it comes from ``expected_pid``; then clean up.

        Returns
        -------
        socket.socket
            The connection (non-blocking).

        Raises
        ------
        BlockingIOError
            If nobody has connected yet.
        ChannelError
            If the peer is another process or another user.
        """
        conn, _ = self.sock.accept()
        self.close()  # single accept: nobody else gets in, and nothing stays on disk
        opt = getattr(socket, "SO_PEERCRED", None)
        if opt is not None:
            pid, uid, _gid = struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, opt, 12))
            if (pid, uid) != (expected_pid, os.getuid()):
                conn.close()
                raise ChannelError(
                    f"the channel's first connection came from pid {pid} uid {uid}, "
                    f"not the extension (pid {expected_pid}); refused"
                )
        conn.setblocking(False)
        return conn

    def close(self) -> None:
        """Close the listening socket and remove the path and the folder (idempotent)."""
        self.sock.close()
        if self.path:
            with contextlib.suppress(OSError):
                os.unlink(self.path)
        with contextlib.suppress(OSError):
            os.rmdir(self.dir)


@dataclass(slots=True)
class Launched:
    """A started child: the process and the host's end of the channel.

    With the fallback channel, ``sock`` is the listener's socket until the child connects
    (``listener`` is then closed and ``sock`` replaced by the connection).
    """

    proc: subprocess.Popen[bytes]
    sock: socket.socket
    listener: PrivateListener | None = None
    cgroup: ChildCgroup | None = None


def runner_command(
    python: str, folder: Path, fd: int | str, identity: tuple[str, str, str] | None = None
) -> list[str]:
    """Return the argv that starts the runner on ``folder`` with the socket as ``fd``.

    ``fd`` is a number (the inherited socketpair end) or, for the fallback channel, the path of
    the socket to connect to (``--connect``). ``identity`` is the manifest's ``(id, version,
    entry)``: passed on, the child skips parsing ``extension.toml`` again (none of it is secret).
    """
    # -I: no user site, no PYTHON* variables, no script directory on sys.path.
    where = ["--fd", str(fd)] if isinstance(fd, int) else ["--connect", fd]
    argv = [python, "-I", "-m", "symphony.sdk.runner", str(folder), *where]
    if identity is not None:
        ext_id, version, entry = identity
        argv += ["--id", ext_id, "--version", version, "--entry", entry]
    return argv


def apply_limits(pid: int, limits: ProcessLimits) -> None:
    """Apply ``limits`` to process ``pid`` (``prlimit``; a no-op where unsupported)."""
    prlimit = getattr(resource, "prlimit", None)
    if prlimit is None:
        return
    with contextlib.suppress(OSError, ValueError):
        prlimit(pid, resource.RLIMIT_CORE, (0, 0))
    if limits.memory_mb:
        cap = (limits.memory_mb + ADDRESS_SPACE_SLACK_MB) << 20
        with contextlib.suppress(OSError, ValueError):
            prlimit(pid, resource.RLIMIT_AS, (cap, cap))
    if limits.cpu_seconds:
        with contextlib.suppress(OSError, ValueError):
            prlimit(pid, resource.RLIMIT_CPU, (limits.cpu_seconds, limits.cpu_seconds + 1))


def launch(
    folder: Path,
    token: bytes | None,
    *,
    python: str = sys.executable,
    limits: ProcessLimits = ProcessLimits(),
    env: Mapping[str, str] | None = None,
    command: Sequence[str] | None = None,
    identity: tuple[str, str, str] | None = None,
    channel: str = "socketpair",
    cgroups: CgroupSupport | None = None,
) -> Launched:
    """Start the runner for ``folder`` on a fresh socketpair and hand it ``token`` on stdin.

    Parameters
    ----------
    folder
        The extension folder.
    token
        The launch token (``None`` writes nothing: tests of a child without a token).
    python
        The interpreter.
    limits
        Resource limits, applied before the token is written.
    env
        The child's complete environment (default :func:`child_env`).
    command
        Override of the argv (tests); ``{fd}`` in an item is replaced by the socket's number.
    identity
        The manifest's ``(id, version, entry)``, handed to the runner (see :func:`runner_command`).
    channel
        ``"socketpair"`` (inherited, pre-connected) or ``"directory"`` (:class:`PrivateListener`;
        the caller accepts the child's connection with ``launched.listener.accept(pid)``).
    cgroups
        Where the host can make cgroups: the child gets one with ``limits`` (memory, CPU share)
        before the token is written; ``None`` or unavailable: rlimits only.

    Returns
    -------
    Launched
        The process (stdout/stderr are pipes for the host to drain) and the host's socket end.
    """
    folder = Path(folder).resolve()
    if channel == "directory":
        listener = PrivateListener()
        try:
            argv = (
                [a.replace("{fd}", listener.path) for a in command]
                if command is not None
                else runner_command(python, folder, listener.path, identity)
            )
            proc = _popen(argv, (), env, folder)
        except BaseException:
            listener.close()
            raise
        launched = Launched(proc, listener.sock, listener)
    elif channel == "socketpair":
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            fd = child.fileno()
            argv = (
                [a.replace("{fd}", str(fd)) for a in command]
                if command is not None
                else runner_command(python, folder, fd, identity)
            )
            proc = _popen(argv, (fd,), env, folder)
        except BaseException:
            parent.close()
            raise
        finally:
            child.close()
        parent.setblocking(False)
        launched = Launched(proc, parent)
    else:
        raise ValueError(f"unknown channel {channel!r} (socketpair or directory)")
    apply_limits(proc.pid, limits)
    if cgroups is not None:
        launched.cgroup = cgroups.create(proc.pid, limits.memory_mb, limits.cpu_percent)
    assert proc.stdin is not None
    try:
        if token is not None:
            write_token(proc.stdin, token)
        proc.stdin.close()
    except OSError:  # the child died at once; the host sees the exit
        pass
    return launched


def _popen(
    argv: Sequence[str], fds: tuple[int, ...], env: Mapping[str, str] | None, folder: Path
) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        argv,
        pass_fds=fds,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=dict(env) if env is not None else child_env(),
        cwd=str(folder),
        start_new_session=True,
    )


def kill_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL the child's whole process group (the child and its grandchildren)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        with contextlib.suppress(OSError):
            proc.kill()


def rss_bytes(pid: int) -> int:
    """Resident set size of ``pid`` in bytes (``0`` when unknown)."""
    try:
        with open(f"/proc/{pid}/statm", "rb") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


__all__ = [
    "ADDRESS_SPACE_SLACK_MB",
    "ENV_ALLOWLIST",
    "ChannelError",
    "Launched",
    "PrivateListener",
    "ProcessLimits",
    "apply_limits",
    "child_env",
    "kill_group",
    "launch",
    "rss_bytes",
    "runner_command",
    "set_undumpable",
]
