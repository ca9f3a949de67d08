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
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

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

#: The first argument that makes the ``symphony`` executable run an extension child instead of
#: the app (:func:`symphony.cli.main` checks it before importing anything else).
RUN_EXTENSION_FLAG: Final = "--run-extension"


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
    """

    memory_mb: int = 512
    cpu_seconds: int = 0


@dataclass(slots=True)
class Launched:
    """A started child: the process and the host's end of the socketpair."""

    proc: subprocess.Popen[bytes]
    sock: socket.socket


def runner_command(python: str, folder: Path, fd: int, *, frozen: bool | None = None) -> list[str]:
    """Return the argv that starts the runner on ``folder`` with the socket as ``fd``.

    Parameters
    ----------
    python
        The interpreter, or the frozen ``symphony`` executable.
    folder
        The extension folder.
    fd
        The child's end of the socketpair.
    frozen
        Whether ``python`` is a frozen bundle's executable (default: ``sys.frozen``). A bundle
        has no interpreter that takes ``-m``: its own entry point (:func:`symphony.cli.main`)
        dispatches on :data:`RUN_EXTENSION_FLAG` to the runner.
    """
    if getattr(sys, "frozen", False) if frozen is None else frozen:
        return [python, RUN_EXTENSION_FLAG, str(folder), "--fd", str(fd)]
    # -I: no user site, no PYTHON* variables, no script directory on sys.path.
    return [python, "-I", "-m", "symphony.sdk.runner", str(folder), "--fd", str(fd)]


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

    Returns
    -------
    Launched
        The process (stdout/stderr are pipes for the host to drain) and the host's socket end.
    """
    folder = Path(folder).resolve()
    parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        fd = child.fileno()
        argv = (
            [a.replace("{fd}", str(fd)) for a in command]
            if command is not None
            else runner_command(python, folder, fd)
        )
        proc = subprocess.Popen(
            argv,
            pass_fds=(fd,),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=dict(env) if env is not None else child_env(),
            cwd=str(folder),
            start_new_session=True,
        )
    except BaseException:
        parent.close()
        raise
    finally:
        child.close()
    apply_limits(proc.pid, limits)
    assert proc.stdin is not None
    try:
        if token is not None:
            write_token(proc.stdin, token)
        proc.stdin.close()
    except OSError:  # the child died at once; the host sees the exit
        pass
    parent.setblocking(False)
    return Launched(proc, parent)


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
    "RUN_EXTENSION_FLAG",
    "Launched",
    "ProcessLimits",
    "apply_limits",
    "child_env",
    "kill_group",
    "launch",
    "rss_bytes",
    "runner_command",
    "set_undumpable",
]
