"""Launch any extension folder: ``python -m symphony.sdk.runner <folder> --fd N [--id …]``.

The host starts the child with one end of a socketpair inherited as file descriptor ``N`` (the
number is not a secret) — or, with the fallback channel, ``--connect PATH``: a socket in a
private folder that accepts one connection — and writes the launch token to the child's stdin
(64 hex digits and a newline; never argv or the environment). The runner reads the token, checks
the peer of the socket (``SO_PEERCRED`` on Linux: same uid, and the pid of the parent that made
the socketpair or listens on the path), loads the
folder's entry module (``--id``/``--version``/``--entry`` as the host read them from the
manifest; without them the runner parses ``extension.toml`` itself with
:func:`~symphony.extension_host.manifest.parse_manifest`; ``entry`` is a module path: ``main`` is
``<folder>/main.py``, ``pkg.main`` is ``<folder>/pkg/main.py``, and a module path with no file in
the folder is imported normally, e.g. ``symphony.extensions.file_explorer.main``), performs the
handshake, and serves until the host says ``exit``. Protocol traffic never touches stdout or stderr.

A frozen bundle calls :func:`main` from its own entry point behind a dispatch flag, e.g.
``symphony --run-extension <folder> --fd N`` → ``sys.exit(runner.main(argv[2:]))``.

On Linux, when the runner leads its own session (the host starts it with ``setsid``), it forks
a watchdog, the *reaper* (:func:`start_reaper`), once the handshake is done and before the SDK
starts its threads: when the runner dies for any reason — above all killed through
``PR_SET_PDEATHSIG`` because the host was SIGKILLed — the reaper SIGKILLs the runner's process
group, so the extension's grandchildren die with it.

Exit codes: 0 graceful, 1 failure, 2 usage, 75 host gone, 76 protocol violation,
77 unauthorized (fatal), 78 incompatible protocol (fatal).
"""

from __future__ import annotations

import _socket  # not `socket` (see symphony.protocol.channel)
import gc
import importlib
import importlib.util
import os
import struct
import sys
import threading
from collections.abc import Sequence
from typing import IO, TYPE_CHECKING, Any, Final

from symphony.protocol.channel import SocketChannel
from symphony.protocol.codec import DEFAULT_MAX_FRAME
from symphony.protocol.errors import (
    AuthenticationError,
    IncompatibleProtocolError,
    ProtocolError,
)
from symphony.protocol.handshake import SUPPORTED_PROTOCOLS, ChildHandshake, read_token
from symphony.protocol.messages import ErrorResponse, Message
from symphony.sdk.extension import Extension
from symphony.sdk.runtime import (
    EXIT_FAILURE,
    EXIT_HOST_GONE,
    EXIT_INCOMPATIBLE,
    EXIT_PROTOCOL,
    EXIT_UNAUTHORIZED,
    EXIT_USAGE,
    ExtensionRuntime,
)

if TYPE_CHECKING:
    import logging

#: The runner's arguments; the host passes the manifest's id, version and entry so the child
#: need not parse ``extension.toml`` again (without them it does).
USAGE: Final = (
    "<extension-folder> (--fd N | --connect SOCKET-PATH) [--id ID --version VERSION --entry MODULE]"
)
_PR_SET_PDEATHSIG: Final = 1
_PR_SET_NAME: Final = 15
_SIGKILL: Final = 9  # Linux; `signal` is not imported for one constant
#: The reaper's name in ``ps`` and ``/proc/<pid>/comm`` (at most 15 bytes).
REAPER_NAME: Final = b"symphony-reaper"
#: Seconds the child waits for each handshake frame.
HANDSHAKE_TIMEOUT: Final = 10.0
MANIFEST: Final = "extension.toml"


class ExtensionLoadError(Exception):
    """The extension folder has no usable manifest or entry module."""


def load_extension(
    folder: str | os.PathLike[str], identity: tuple[str, str, str] | None = None
) -> Extension:
    """Import an extension folder and return its :class:`Extension`.

    Parameters
    ----------
    folder
        A folder with ``extension.toml`` (``id``, ``version``, ``entry``: a module path resolved in
        the folder first, then on ``sys.path``).
    identity
        ``(id, version, entry)`` as the host read them from the manifest: given, the manifest
        is not parsed again (``tomllib`` and the validator cost several ms of every start).

    Returns
    -------
    Extension
        The module's ``extension`` object, with ``id``/``version`` filled from the manifest.

    Raises
    ------
    ExtensionLoadError
        If the manifest or the module is missing or inconsistent.
    """
    folder = os.path.realpath(folder)
    if identity is None:
        from pathlib import Path

        from symphony.extension_host.manifest import ManifestError, parse_manifest

        try:
            manifest = parse_manifest(Path(folder))
        except ManifestError as e:
            raise ExtensionLoadError(str(e)) from e
        identity = (manifest.id, manifest.version, manifest.entry)
    ext_id, version, entry = identity
    rel = os.path.join(*entry.split("."))
    candidates = (os.path.join(folder, rel + ".py"), os.path.join(folder, rel, "__init__.py"))
    path = next((os.path.realpath(c) for c in candidates if os.path.isfile(c)), None)
    sys.path.insert(0, folder)
    if path is not None:
        if not path.startswith(folder + os.sep):
            raise ExtensionLoadError(f"entry {entry!r} is not a file inside {folder}")
        name = "symphony_extension_" + "".join(c if c.isalnum() else "_" for c in ext_id)
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise ExtensionLoadError(f"cannot import {path}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    else:
        try:
            module = importlib.import_module(entry)
        except ModuleNotFoundError as e:
            raise ExtensionLoadError(f"entry {entry!r}: no such module in {folder}: {e}") from e
    ext = getattr(module, "extension", None)
    if not isinstance(ext, Extension):
        raise ExtensionLoadError(f"{entry} defines no `extension = Extension(...)`")
    if ext.id is None:
        ext.id = ext_id
    if ext.version is None:
        ext.version = version
    if (ext.id, ext.version) != (ext_id, version):
        raise ExtensionLoadError(
            f"{entry} says {ext.id} {ext.version}, the manifest {ext_id} {version}"
        )
    return ext


def _libc() -> Any:
    import ctypes  # ~3 ms; only on Linux, only here

    return ctypes.CDLL(None, use_errno=True)


def die_with_parent() -> bool:
    """Ask the kernel to SIGKILL this process when its parent (the host) dies (Linux).

    ``prctl(PR_SET_PDEATHSIG, SIGKILL)``: a host killed with SIGKILL cannot stop its children
    itself, and a child stuck in a handler (or stopped) would otherwise outlive it. Call it before
    :func:`check_peer`: if the host died before this call, the child has been re-parented, the
    peer check sees a parent that is not the socket's peer and the runner exits.

    Returns
    -------
    bool
        Whether the signal is set (``False`` off Linux or if ``prctl`` is unavailable).
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        return bool(_libc().prctl(_PR_SET_PDEATHSIG, _SIGKILL, 0, 0, 0) == 0)
    except (OSError, AttributeError):
        return False


def start_reaper() -> int | None:
    """Fork the reaper: a watchdog that SIGKILLs this process group once this process dies (Linux).

    ``PR_SET_PDEATHSIG`` takes the runner down with a SIGKILLed host, but not the processes the
    extension started: they would live on as orphans. The reaper stays in the runner's process
    group with no file descriptor at all (the host must see end-of-file on the socket and the
    output pipes when the runner dies), blocks every signal, has the kernel send it one when the
    runner dies (its own ``PR_SET_PDEATHSIG``: unlike end-of-file on a pipe, a grandchild cannot
    hold it off), then SIGKILLs the group — itself included. It runs no Python cleanup
    (``os._exit``) and imports nothing.

    Forked only when it is safe and useful: on Linux, from a process that leads its own session
    (the host's ``start_new_session=True``: the group is the extension's alone, never a shell's
    or a test runner's) and runs no other thread yet (``fork`` copies no thread, but their locks;
    an extension that starts threads at import gets no reaper, and stderr — the host's log —
    says so).

    Returns
    -------
    int or None
        The reaper's pid, or ``None`` when none was started.
    """
    if not sys.platform.startswith("linux") or os.getsid(0) != os.getpid():
        return None
    if threading.active_count() != 1:
        _err("no reaper (grandchildren may outlive a killed host): the extension runs threads")
        return None
    import signal  # ~0.3 ms: its `enum` is loaded already (`typing` imports `re`)

    try:
        libc = _libc()
        prctl = libc.prctl
    except (OSError, AttributeError):
        return None
    runner = os.getpid()
    # Every page the runner writes after the fork is copied first (≈ 1,000 pages on its way to
    # ready, ≈ 4 ms in a VM); frozen objects are no longer scanned by the collector, which spares
    # the pages of everything imported so far (≈ a fifth of the copies).
    gc.freeze()
    try:
        pid = os.fork()
    except OSError as e:  # e.g. EAGAIN: out of processes; serve anyway, as off Linux
        _err(f"no reaper (grandchildren may outlive a killed host): cannot fork: {e}")
        return None
    if pid:
        return pid
    code = 1
    try:  # the reaper: never returns into the runner's code
        every = signal.valid_signals()
        signal.pthread_sigmask(signal.SIG_BLOCK, every)
        os.closerange(0, os.sysconf("SC_OPEN_MAX"))
        prctl(_PR_SET_NAME, REAPER_NAME, 0, 0, 0)
        if prctl(_PR_SET_PDEATHSIG, signal.SIGUSR1, 0, 0, 0) == 0:
            # Checked after the prctl: a runner dead before it sends no signal.
            while os.getppid() == runner:
                try:
                    signal.sigwait(every)  # a stray signal too: check the parent again
                except OSError:
                    pass
            os.killpg(runner, signal.SIGKILL)  # the group is the runner's pid (setsid)
            code = 0
    except BaseException:
        pass
    finally:
        os._exit(code)


def check_peer(sock: _socket.socket) -> str | None:
    """Check who holds the other end of ``sock`` (Linux ``SO_PEERCRED``; elsewhere a no-op).

    For an inherited socketpair the kernel records the process that created the pair, for the
    fallback channel (``--connect``) the process that listens: either way it must be our parent
    and run as our uid.

    Returns
    -------
    str or None
        What is wrong, or ``None`` when the peer is the expected one (or cannot be checked).
    """
    opt = getattr(_socket, "SO_PEERCRED", None)
    if opt is None or sock.family != _socket.AF_UNIX:
        return None
    try:
        pid, uid, _gid = struct.unpack("3i", sock.getsockopt(_socket.SOL_SOCKET, opt, 12))
    except OSError as e:
        return f"cannot read the peer's credentials: {e}"
    if uid != os.getuid():
        return f"the socket's peer runs as uid {uid}, not {os.getuid()}"
    if pid != os.getppid():
        return f"the socket's peer is pid {pid}, not the parent {os.getppid()}"
    return None


def run(
    extension: Extension,
    sock: _socket.socket,
    token: bytes,
    *,
    max_frame: int = DEFAULT_MAX_FRAME,
    protocols: tuple[int, int] | None = None,
) -> int:
    """Handshake over ``sock`` and serve ``extension`` until the host says exit.

    Parameters
    ----------
    extension
        The extension to serve.
    sock
        The connected socket to the host.
    token
        The launch token.
    max_frame
        The largest frame this child accepts.
    protocols
        Override of the protocol range (tests only).

    Returns
    -------
    int
        The process exit code (see the module docstring).
    """
    # The child's decoder starts at its own maximum, not HANDSHAKE_MAX_FRAME: the host may pipeline
    # requests right behind its welcome, in the same read. (A host's decoder starts at the
    # handshake cap: the child sends nothing between hello and welcome.)
    channel = SocketChannel(sock, max_frame)
    hs = ChildHandshake(
        token,
        extension.id or "unnamed",
        extension.version or "0",
        capabilities=extension.capabilities(),
        max_frame=max_frame,
        protocols=protocols or SUPPORTED_PROTOCOLS,
    )
    reply: Message | None = None
    try:
        challenge = channel.recv(HANDSHAKE_TIMEOUT)
        if challenge is None:
            return EXIT_HOST_GONE
        channel.send(hs.hello(challenge))
        reply = channel.recv(HANDSHAKE_TIMEOUT)
        if reply is None:
            return EXIT_HOST_GONE
        session = hs.finish(reply)
    except ProtocolError as e:
        if not isinstance(reply, ErrorResponse):  # found here, not reported by the host: tell it
            try:
                channel.send(ErrorResponse(None, e.code, e.message, e.data))
            except (OSError, ProtocolError):
                pass
        channel.close()
        if isinstance(e, IncompatibleProtocolError):
            _err(f"incompatible protocol: {e}")
            return EXIT_INCOMPATIBLE
        if isinstance(e, AuthenticationError):
            _err(f"unauthorized: {e}")
            return EXIT_UNAUTHORIZED
        _err(f"handshake failed: {e}")
        return EXIT_PROTOCOL
    except (OSError, TimeoutError) as e:
        channel.close()
        _err(f"handshake failed: {e}")
        return EXIT_HOST_GONE
    channel.set_max_frame(session.max_frame)
    # The host has us ready; the SDK's threads do not exist yet. Forking here keeps the reaper's
    # copy-on-write faults (≈ 4 ms in this VM) off spawn → ready (P12).
    start_reaper()
    runtime = ExtensionRuntime(extension, channel, session)
    forward = _LogForwarding(runtime)
    try:
        return runtime.serve()
    finally:
        forward.stop()
        channel.close()


class _LogForwarding:
    """Send the standard ``logging`` of the extension to the host (:class:`HostLogHandler`).

    ``logging`` (with ``traceback``) costs ~5 ms to import, a tenth of the start budget: when the
    extension has not imported it by now, a background thread does, after the child is ready.
    A record logged before that goes to ``logging``'s last-resort handler (stderr), which the
    host drains into its log as well.
    """

    def __init__(self, runtime: ExtensionRuntime) -> None:
        self._runtime = runtime
        self._lock = threading.Lock()
        self._handler: logging.Handler | None = None
        self._stopped = False
        if "logging" in sys.modules:
            self._install()
        else:
            threading.Thread(target=self._install, name="symphony-logging", daemon=True).start()

    def _install(self) -> None:
        import logging

        from symphony.sdk.logs import HostLogHandler

        with self._lock:
            if self._stopped:
                return
            self._handler = HostLogHandler(self._runtime.logger)
            logging.getLogger().addHandler(self._handler)

    def stop(self) -> None:
        with self._lock:
            self._stopped = True
            if self._handler is not None:
                import logging

                logging.getLogger().removeHandler(self._handler)


def _err(text: str, stream: IO[str] | None = None) -> None:
    print(f"symphony extension runner: {text}", file=stream or sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry (:data:`USAGE`); read the token from stdin and serve.

    Returns
    -------
    int
        The process exit code.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    options = dict(zip(args[1::2], args[2::2], strict=False))
    keys = set(options) - {"--id", "--version", "--entry"}
    if (
        len(args) % 2 == 0
        or keys not in ({"--fd"}, {"--connect"})
        or not options.get("--fd", "0").isdigit()
        or len(set(options) - keys) not in (0, 3)
    ):
        _err(f"usage: python -m symphony.sdk.runner {USAGE}")
        return EXIT_USAGE
    folder = args[0]
    identity = None
    if "--id" in options:
        identity = (options["--id"], options["--version"], options["--entry"])
    try:
        token = read_token(sys.stdin.buffer)
    except AuthenticationError as e:
        _err(str(e))
        return EXIT_UNAUTHORIZED
    if "--connect" in options:
        path = options["--connect"]
        sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
        try:
            sock.connect(path)
        except OSError as e:
            _err(f"cannot connect to the host's channel {path}: {e}")
            sock.close()
            return EXIT_HOST_GONE
    else:
        fd = int(options["--fd"])
        try:
            sock = _socket.socket(fileno=fd)
        except OSError as e:
            _err(f"file descriptor {fd} is not a socket: {e}")
            return EXIT_USAGE
    die_with_parent()
    problem = check_peer(sock)
    if problem is not None:
        _err(f"unauthorized: {problem}")
        sock.close()
        return EXIT_UNAUTHORIZED
    try:
        extension = load_extension(folder, identity)
    except Exception as e:
        _err(f"cannot load {folder}: {type(e).__name__}: {e}")
        sock.close()
        return EXIT_FAILURE
    return run(extension, sock, token)


if __name__ == "__main__":
    sys.exit(main())
