"""The Qt side of out-of-process extensions: launch, channel, supervision, limits.

One :class:`ExtensionHost` owns every extension child. It lives on the GUI thread and uses QtCore
only (``QSocketNotifier`` over plain non-blocking sockets and pipes, one ``QTimer``), so nothing in
it blocks: reads happen in bounded chunks when a notifier fires, writes go through a capped queue.
See ``docs/extensions.md`` for the design and ``docs/protocol.md`` for the wire format.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import os
import random
import signal
import sys
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Protocol, cast

from PySide6.QtCore import (
    QCoreApplication,
    QEventLoop,
    QObject,
    QSocketNotifier,
    QTimer,
    Signal,
)

from symphony.extension_host.cgroups import CgroupSupport, ChildCgroup
from symphony.extension_host.discovery import discover
from symphony.extension_host.launcher import (
    Launched,
    ProcessLimits,
    kill_group,
    launch,
    rss_bytes,
    set_undumpable,
)
from symphony.extension_host.manifest import Manifest, ManifestError
from symphony.protocol.codec import HANDSHAKE_MAX_FRAME, FrameDecoder, encode
from symphony.protocol.errors import (
    AuthenticationError,
    DeadlineExceededError,
    ErrorCode,
    ExtensionCrashedError,
    IncompatibleProtocolError,
    MethodNotFoundError,
    ProtocolError,
    ProtocolViolation,
    RequestCancelledError,
    ResourceLimitError,
    ShuttingDownError,
    error_for_code,
    is_fatal,
)
from symphony.protocol.flow import CreditGranter, CreditWindow, TokenBucket
from symphony.protocol.handshake import SUPPORTED_PROTOCOLS, HostHandshake, new_token
from symphony.protocol.messages import (
    Cancel,
    Credit,
    ErrorResponse,
    Exit,
    Hello,
    Log,
    Message,
    Notification,
    Ping,
    Pong,
    Progress,
    Request,
    Response,
    Shutdown,
    StreamData,
)

_log = logging.getLogger("symphony.extension_host")

NOT_STARTED: Final = "not-started"
STARTING: Final = "starting"
READY: Final = "ready"
UNRESPONSIVE: Final = "unresponsive"
STOPPING: Final = "stopping"
EXITED: Final = "exited"
CRASHED: Final = "crashed"
DISABLED: Final = "disabled"
STATES: Final = (NOT_STARTED, STARTING, READY, UNRESPONSIVE, STOPPING, EXITED, CRASHED, DISABLED)

#: Exit codes of the runner that mean "do not restart" (unauthorized, incompatible protocol).
FATAL_EXIT_CODES: Final = {77: ErrorCode.UNAUTHORIZED, 78: ErrorCode.INCOMPATIBLE_PROTOCOL}
#: Keyring service under which the host looks up the secrets extensions may ask for.
KEYRING_SERVICE: Final = "symphony-aide"
#: Lines of a child's stderr kept per start (:meth:`ExtensionHost.stderr_tail`), and the
#: characters kept of each: a child that exits with an error says why there (the runner's
#: "cannot load …", a traceback's last line), and the crash reason quotes it.
STDERR_TAIL_LINES: Final = 20
STDERR_LINE_MAX: Final = 1000
#: Exits that come from outside (a SIGKILL, a SIGTERM): what the child wrote before is not why.
_EXTERNAL_SIGNALS: Final = frozenset({-signal.SIGKILL, -signal.SIGTERM})
_RUNNER_PREFIX: Final = "symphony extension runner: "


class ExtensionDisabledError(ExtensionCrashedError):
    """The extension is disabled (breaker open, fatal handshake error, or unknown entry)."""


@dataclass(frozen=True, slots=True)
class HostConfig:
    """Timings and caps of the supervisor (defaults per the design; tests shorten some).

    Attributes
    ----------
    ping_interval
        Seconds between pings to a ready child.
    unresponsive_after
        A ping unanswered this long makes the child *unresponsive*.
    kill_unresponsive_after
        Further seconds before an unresponsive child is killed.
    start_timeout
        Spawn → ready budget before the child is killed as a failed start.
    cancel_grace
        Seconds a child has to answer a request after its deadline's ``cancel`` before it is
        killed.
    default_timeout
        Deadline of a request given none.
    backoff_base, backoff_max
        Restart delays: 0, base, 2·base, … capped at max, each with ±20 % jitter.
    breaker_crashes, breaker_window
        This many crashes within the window open the breaker (state *disabled*).
    queue_max
        Requests queued while a child starts (beyond it: ``-32004`` at once).
    write_max
        Bytes queued for a child that does not read (beyond it: ``-32004``).
    read_chunk, read_budget
        Bytes per ``recv`` and per notifier wake-up; anything left waits for the next turn.
    output_rate, output_burst
        Lines per second (token bucket) of child stdout/stderr and log records passed to
        :attr:`ExtensionHost.sig_log`; the rest is dropped and counted.
    shutdown_grace
        Seconds children get to exit after ``shutdown`` at :meth:`ExtensionHost.shutdown`.
    channel
        ``"socketpair"`` (inherited and pre-connected; the default where it exists) or
        ``"directory"`` (a random socket name in a private ``0700`` folder, one accepted
        connection from the child's pid; the fallback elsewhere, selectable for tests).
    cgroups
        Give each child a cgroup v2 with its memory cap and CPU share when the host's cgroup is
        delegated to it (see :mod:`.cgroups`); rlimits and the RSS watchdog apply regardless.
    linger
        Seconds the host keeps reading a child's socket, after handling what arrived, while the
        child still owes answers — so that an answer coming back at once (a fast handler, a
        chain of nodes) is taken without the thread going to sleep in the event loop and being
        woken again. ``0`` turns it off. 1 ms by default: a round trip that misses once gets
        slower (the child's own linger may then miss too), so a short linger tips a chain into a
        slow mode; 200 µs did, in about half the P9 runs. Adaptive: a linger that catches
        nothing makes the next ones skip, 1, 2, 4 … up to 64 wake-ups, until one catches
        something again or an answer wakes the host within ``linger`` of the last request.
    linger_budget
        The most one wake-up spends handling and lingering before it returns to the event loop
        (painting, input, timers), however fast the answers keep coming. A linger the budget
        cuts short goes on after that turn (from a zero-time timer, so the turn does not sleep)
        until the end it would have had.
    """

    ping_interval: float = 1.0
    unresponsive_after: float = 3.0
    kill_unresponsive_after: float = 2.0
    start_timeout: float = 10.0
    cancel_grace: float = 2.0
    default_timeout: float = 30.0
    backoff_base: float = 0.25
    backoff_max: float = 30.0
    breaker_crashes: int = 3
    breaker_window: float = 300.0
    queue_max: int = 256
    write_max: int = 64 << 20
    read_chunk: int = 64 << 10
    read_budget: int = 1 << 20
    output_rate: float = 50.0
    output_burst: float = 200.0
    shutdown_grace: float = 3.0
    tick: float = 0.1
    channel: str = "socketpair" if os.name == "posix" else "directory"
    cgroups: bool = True
    linger: float = 1e-3
    linger_budget: float = 2e-3


@dataclass(frozen=True, slots=True)
class CallResult:
    """A successful answer: the JSON ``result`` and the raw ``body``."""

    result: Any
    body: bytes = b""


class CallFuture(concurrent.futures.Future[CallResult]):
    """The pending answer of :meth:`ExtensionHost.request`.

    It is a :class:`concurrent.futures.Future` (``add_done_callback``, ``result``,
    ``asyncio.wrap_future``), completed on the host's thread. :meth:`wait` spins the Qt event loop
    until it is done (tests, scripts); GUI code uses callbacks or ``await``.
    """

    def wait(self, timeout: float = 60.0) -> CallResult:
        """Run the Qt event loop until the answer arrives and return it (or raise its error)."""
        end = time.monotonic() + timeout
        wake = QTimer()
        wake.start(20)
        try:
            while not self.done():
                if time.monotonic() > end:
                    raise TimeoutError(f"no answer within {timeout} s")
                QCoreApplication.processEvents(QEventLoop.ProcessEventsFlag.WaitForMoreEvents)
        finally:
            wake.stop()
        return self.result(0)


#: What an answer completes: :meth:`ExtensionHost.request`'s future or :meth:`ExtensionHost.call`'s.
_Answer = CallFuture | asyncio.Future[CallResult]


#: The messages that end a request (a tuple: ``isinstance`` with a ``|`` union builds the union
#: on every call).
_ENDS: Final = (Response, ErrorResponse)


@dataclass(eq=False, slots=True)
class _Call:
    method: str
    params: Any
    body: bytes
    deadline: float
    future: _Answer | None
    idempotent: bool | None = None
    retried: bool = False
    notification: bool = False
    cancel_sent: float = 0.0
    on_item: Callable[[Any, bytes], object] | None = None
    on_progress: Callable[[Progress], object] | None = None
    window: int = 0
    credit: CreditWindow | None = None
    granter: CreditGranter | None = None


@dataclass(eq=False, slots=True)
class _Stream:
    notifier: QSocketNotifier
    fd: int
    name: str
    partial: bytearray = field(default_factory=bytearray)


@dataclass(eq=False)
class _Child:
    """Everything the host knows about one extension (across its restarts)."""

    manifest: Manifest
    state: str = NOT_STARTED
    launched: Launched | None = None
    token: bytes = b""
    handshake: HostHandshake | None = None
    decoder: FrameDecoder = field(default_factory=lambda: FrameDecoder(HANDSHAKE_MAX_FRAME))
    ready: bool = False
    capabilities: Mapping[str, Any] = field(default_factory=dict)
    session_limits: Mapping[str, int] = field(default_factory=dict)
    max_frame: int = HANDSHAKE_MAX_FRAME
    reader: QSocketNotifier | None = None
    writer: QSocketNotifier | None = None
    writer_on: bool = False  # whether ``writer`` is enabled (mirrored: see _flush)
    exit_notifier: QSocketNotifier | None = None
    pidfd: int = -1
    streams: list[_Stream] = field(default_factory=list)
    next_id: int = 1
    pending: dict[int, _Call] = field(default_factory=dict)
    queue: deque[_Call] = field(default_factory=deque)
    wbuf: deque[memoryview] = field(default_factory=deque)
    wbytes: int = 0
    started_at: float = 0.0
    ping_id: int = 0
    ping_sent: float = 0.0
    ping_outstanding: bool = False
    last_ping: float = 0.0
    kill_at: float = 0.0
    kill_reason: str = ""
    killed: bool = False  # the host itself killed this start (its kill_reason is why)
    stderr_tail: deque[str] = field(default_factory=lambda: deque(maxlen=STDERR_TAIL_LINES))
    stop_requested: bool = False
    fatal: ProtocolError | None = None
    last_error: str = ""
    crashes: deque[float] = field(default_factory=deque)
    restart_timer: QTimer | None = None
    events: list[str] = field(default_factory=list)
    replay: dict[str, tuple[str, Any, bytes]] = field(default_factory=dict)
    output: TokenBucket | None = None
    dropped: int = 0
    spawn_to_ready: float = 0.0
    shutdown_id: int = -1
    starts: int = 0
    linger_skip: int = 0  # wake-ups left without lingering (after lingers that caught nothing)
    sent_at: float = 0.0  # perf_counter() when the last request was written
    linger_misses: int = 0  # lingers in a row that caught nothing
    linger_until: float = 0.0  # the end of a linger the budget cut short (0: none)


class ExtensionHost(QObject):
    """Runs the discovered extensions as supervised child processes.

    Parameters
    ----------
    roots
        Folders holding extension folders (default: bundled, then user; see
        :func:`~symphony.extension_host.discovery.discover`).
    parent
        The owning QObject.
    workspace
        Passed to each child's ``initialize`` request (if it has one) on every start.
    config
        Supervisor timings and caps.
    limits
        Per-extension overrides of the manifest's process limits.
    python
        The interpreter for children.
    protocols
        The protocol range the host speaks (tests of a version mismatch).
    commands
        Per-extension argv overrides (a frozen bundle's runner, tests); ``{fd}`` is replaced by
        the socket's number.

    Signals
    -------
    sig_state_changed(extension_id, state)
    sig_log(extension_id, level, message)
        Child log records and stdout/stderr lines, rate-limited.
    sig_notification(extension_id, method, params, body)
    sig_breaker_opened(extension_id, reason)
        The extension crashed too often and is now disabled; tell the user.
    """

    sig_state_changed = Signal(str, str)
    sig_log = Signal(str, str, str)
    sig_notification = Signal(str, str, object, bytes)
    sig_breaker_opened = Signal(str, str)
    #: Internal: a keyring lookup finished on the worker thread (queued to the host's thread).
    sig_secret_ready = Signal(object)

    def __init__(
        self,
        roots: Sequence[Path] | None = None,
        parent: QObject | None = None,
        *,
        workspace: Path | None = None,
        config: HostConfig | None = None,
        limits: Mapping[str, ProcessLimits] | None = None,
        python: str = sys.executable,
        protocols: tuple[int, int] = SUPPORTED_PROTOCOLS,
        commands: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        super().__init__(parent)
        self.config = config or HostConfig()
        self.workspace = workspace
        self.undumpable = set_undumpable()
        self._python = python
        self._protocols = protocols
        self._limits = dict(limits or {})
        self._commands = dict(commands or {})
        found = discover(roots)
        self.errors: list[ManifestError] = list(found.errors)
        self._children: dict[str, _Child] = {
            ext_id: _Child(m) for ext_id, m in found.manifests.items()
        }
        self._closing = False
        self._graveyard: list[QSocketNotifier] = []
        self._cgroups: CgroupSupport | None = None
        self._stale_cgroups: list[ChildCgroup] = []
        self._secrets = concurrent.futures.ThreadPoolExecutor(1, "symphony-keyring")
        self.sig_secret_ready.connect(self._on_secret_ready)
        self._timer = QTimer(self)
        self._timer.setInterval(int(self.config.tick * 1000))
        self._timer.timeout.connect(self._on_tick)
        # lingers cut short by their budget go on after the event loop's turn (see _linger)
        self._linger_on: dict[str, _Child] = {}
        self._linger_timer = QTimer(self)
        self._linger_timer.setSingleShot(True)
        self._linger_timer.setInterval(0)
        self._linger_timer.timeout.connect(self._on_linger_timer)

    # ---------------------------------------------------------------- public API

    @property
    def manifests(self) -> dict[str, Manifest]:
        """The loadable extensions by id."""
        return {k: c.manifest for k, c in self._children.items()}

    def state(self, extension_id: str) -> str:
        """Return the state of ``extension_id`` (one of :data:`STATES`)."""
        return self._child(extension_id).state

    def last_error(self, extension_id: str) -> str:
        """Why the extension last crashed or was disabled (empty if it never did)."""
        return self._child(extension_id).last_error

    def stderr_tail(self, extension_id: str) -> list[str]:
        """Return the last lines the child wrote to stderr since its latest start.

        At most :data:`STDERR_TAIL_LINES` non-empty lines of :data:`STDERR_LINE_MAX` characters,
        kept whatever the log's rate limit dropped; after a crash, what it said before dying.
        """
        return list(self._child(extension_id).stderr_tail)

    def pid(self, extension_id: str) -> int | None:
        """Return the running child's pid, if any."""
        launched = self._child(extension_id).launched
        return launched.proc.pid if launched is not None else None

    def spawn_to_ready(self, extension_id: str) -> float:
        """Seconds from spawn to ready of the last start (``0`` before the first)."""
        return self._child(extension_id).spawn_to_ready

    def starts(self, extension_id: str) -> int:
        """How many times the child has been started."""
        return self._child(extension_id).starts

    def activate(self, event: str) -> list[str]:
        """Deliver an activation event; start the extensions that declare it if needed.

        Returns
        -------
        list of str
            The ids of the extensions the event concerns.
        """
        hit = []
        for ext_id, c in self._children.items():
            if (
                event not in c.manifest.activation_events
                and "*" not in c.manifest.activation_events
            ):
                continue
            hit.append(ext_id)
            if event not in c.events:
                c.events.append(event)
            if c.state in (NOT_STARTED, EXITED):
                self._start(c)
            elif c.ready:
                self._send_activate(c, event)
        return hit

    def start(self, extension_id: str) -> None:
        """Start ``extension_id`` now if it is not running."""
        c = self._child(extension_id)
        if c.state in (NOT_STARTED, EXITED):
            self._start(c)

    def enable(self, extension_id: str) -> None:
        """Close the breaker of a disabled extension; it starts again on its next use."""
        c = self._child(extension_id)
        if c.state == DISABLED:
            c.crashes.clear()
            c.fatal = None
            self._set_state(c, NOT_STARTED)

    def request(
        self,
        extension_id: str,
        method: str,
        params: Any = None,
        body: bytes = b"",
        timeout: float | None = None,
        *,
        idempotent: bool | None = None,
        replay: bool = False,
        on_item: Callable[[Any, bytes], object] | None = None,
        window: int | None = None,
        on_progress: Callable[[Progress], object] | None = None,
    ) -> CallFuture:
        """Send a request; the answer completes the returned future.

        Parameters
        ----------
        extension_id
            Which extension (started on demand).
        method, params, body
            The request.
        timeout
            Seconds until the deadline (default :attr:`HostConfig.default_timeout`); it runs
            while the child starts too.
        idempotent
            Whether it may be retried once after a crash (default: what the child announced or
            the manifest's ``idempotent_methods`` say).
        replay
            Remember it and send it again after every restart (subscriptions such as
            ``files.watch``); :meth:`forget` stops that.
        on_item
            Accept a stream: called on the host's thread with each ``(item, body)`` in order.
            Credit is granted back (``CreditGranter``) as each call returns, so a slow consumer
            holds the producer back. A streaming request is never retried. Ignored for a method
            the child announced with ``stream: false`` (the request is then a plain one).
        window
            Initial stream credit (default: the session's ``stream_window``).
        on_progress
            Called with each :class:`~symphony.protocol.messages.Progress` of the request.

        Returns
        -------
        CallFuture
            Completed with a :class:`CallResult` or a :class:`ProtocolError` subclass
            (``ExtensionCrashedError``, ``DeadlineExceededError``, the child's own error, …).
        """
        fut = CallFuture()
        fut.set_running_or_notify_cancel()
        self._send_call(
            extension_id, method, params, body, timeout, fut, idempotent, replay, on_item, window,
            on_progress,
        )  # fmt: skip
        return fut

    async def call(
        self,
        extension_id: str,
        method: str,
        params: Any = None,
        body: bytes = b"",
        timeout: float | None = None,
        *,
        idempotent: bool | None = None,
        replay: bool = False,
        on_item: Callable[[Any, bytes], object] | None = None,
        window: int | None = None,
        on_progress: Callable[[Progress], object] | None = None,
        cancel_reason: str = "cancelled by the caller",
    ) -> CallResult:
        """``await`` form of :meth:`request`, for an asyncio loop running on the host's thread.

        The answer completes an asyncio future of the running loop directly — no
        :class:`CallFuture` in between (its lock and condition cost ~6 µs a call). Cancelling the
        awaiting task cancels the request (:meth:`cancel`, with ``cancel_reason``).

        Raises
        ------
        KeyError
            For an unknown extension.
        ProtocolError
            As :meth:`request`'s future would.
        """
        fut: asyncio.Future[CallResult] = asyncio.get_running_loop().create_future()
        self._send_call(
            extension_id, method, params, body, timeout, fut, idempotent, replay, on_item, window,
            on_progress,
        )  # fmt: skip
        try:
            return await fut
        except asyncio.CancelledError:
            self.cancel(fut, cancel_reason)
            raise

    def _send_call(
        self,
        extension_id: str,
        method: str,
        params: Any,
        body: bytes,
        timeout: float | None,
        fut: _Answer,
        idempotent: bool | None,
        replay: bool,
        on_item: Callable[[Any, bytes], object] | None,
        window: int | None,
        on_progress: Callable[[Progress], object] | None,
    ) -> None:
        c = self._child(extension_id)
        if replay:
            c.replay[_replay_key(method, params)] = (method, params, bytes(body))
        deadline = time.monotonic() + (self.config.default_timeout if timeout is None else timeout)
        call = _Call(method, params, bytes(body), deadline, fut, idempotent)
        call.on_progress = on_progress
        if on_item is not None:
            call.on_item = on_item
            call.window = window or 0
        self._submit(c, call)

    def cancel(self, future: _Answer, reason: str = "cancelled by the caller") -> bool:
        """Cancel a request made with :meth:`request`.

        A request still queued (its child starting) is dropped; one in flight gets a ``cancel``
        sent to the child, which must stop within ``cancel_grace`` seconds or be killed (as for
        a missed deadline). The future fails at once with ``RequestCancelledError``.

        Returns
        -------
        bool
            Whether the request was still open.
        """
        error = RequestCancelledError(reason)
        for c in self._children.values():
            for call in c.queue:
                if call.future is future:
                    c.queue.remove(call)
                    self._fail(call, error)
                    return True
            for rid, call in c.pending.items():
                if call.future is future and not call.cancel_sent:
                    call.cancel_sent = time.monotonic()
                    self._fail(call, error)
                    with contextlib.suppress(ProtocolError):
                        self._write(c, Cancel(rid))
                    return True
        return False

    def forget(self, extension_id: str, method: str, params: Any = None) -> None:
        """Stop replaying a request made with ``replay=True``."""
        self._child(extension_id).replay.pop(_replay_key(method, params), None)

    def notify(self, extension_id: str, method: str, params: Any = None, body: bytes = b"") -> None:
        """Send a notification (queued while the child starts; dropped if it is disabled)."""
        c = self._child(extension_id)
        if c.state == DISABLED:
            return
        call = _Call(method, params, bytes(body), time.monotonic() + 60, None, notification=True)
        self._submit(c, call)

    def stop(self, extension_id: str, grace: float | None = None) -> None:
        """Ask one child to stop (``shutdown``, then ``exit``); SIGKILL after ``grace`` seconds.

        Does not block: the state becomes *stopping*, then *exited*. Queued and in-flight requests
        fail with :class:`ShuttingDownError`. The next request or activation starts it again.
        """
        c = self._child(extension_id)
        grace = self.config.shutdown_grace if grace is None else grace
        if c.restart_timer is not None:
            c.restart_timer.stop()
            c.restart_timer = None
            if c.state == CRASHED:
                self._set_state(c, EXITED)
        self._fail_queue(c, ShuttingDownError(f"{extension_id} is stopping"))
        if c.launched is None or c.stop_requested:
            return
        c.stop_requested = True
        self._set_state(c, STOPPING)
        c.kill_at = time.monotonic() + grace
        c.kill_reason = "did not exit within the shutdown grace period"
        if c.ready:
            c.shutdown_id = c.next_id
            c.next_id += 1
            with contextlib.suppress(ProtocolError):
                self._write(c, Shutdown(c.shutdown_id))
        else:
            self._kill(c, "stopped while starting")

    def shutdown(self, grace: float | None = None) -> None:
        """Stop every child and refuse new work; called at application exit.

        Blocks (spinning the Qt event loop) until every child is gone: each gets ``shutdown``
        and ``exit``, and SIGKILL (with its process group) after ``grace`` seconds.
        """
        self._closing = True
        for ext_id in self._children:
            self.stop(ext_id, grace)
        wake = QTimer()
        wake.start(20)
        try:
            while any(c.launched is not None for c in self._children.values()):
                QCoreApplication.processEvents(QEventLoop.ProcessEventsFlag.WaitForMoreEvents)
                self._on_tick()
        finally:
            wake.stop()
        self._timer.stop()
        self._linger_timer.stop()
        self._linger_on.clear()
        self._secrets.shutdown(wait=False, cancel_futures=True)

    # ---------------------------------------------------------------- submission

    def _child(self, extension_id: str) -> _Child:
        try:
            return self._children[extension_id]
        except KeyError:
            raise KeyError(f"no extension {extension_id!r}") from None

    def _submit(self, c: _Child, call: _Call) -> None:
        if self._closing:
            self._fail(call, ShuttingDownError("the application is shutting down"))
            return
        if c.state == DISABLED:
            self._fail(call, ExtensionDisabledError(f"{c.manifest.id} is disabled: {c.last_error}"))
            return
        if c.ready and not c.stop_requested:
            self._dispatch(c, call)
            return
        if len(c.queue) >= self.config.queue_max:
            self._fail(call, ResourceLimitError(f"{c.manifest.id}: too many queued requests"))
            return
        c.queue.append(call)
        if c.state in (NOT_STARTED, EXITED):
            self._start(c)

    def _dispatch(self, c: _Child, call: _Call) -> None:
        try:
            if call.notification:
                self._write(c, Notification(call.method, call.params, call.body))
                return
            methods = c.capabilities.get("methods")
            info = methods.get(call.method) if isinstance(methods, dict) else None
            if not isinstance(info, dict):
                info = {}
            if call.on_item is not None:
                if info.get("stream") is False:
                    # the child said this method never streams: a plain request (no credit
                    # window on either side, and retried after a crash if idempotent)
                    call.on_item = None
                else:
                    call.idempotent = False  # a stream is never replayed
            if call.idempotent is None:
                call.idempotent = bool(
                    info.get("idempotent") or call.method in c.manifest.idempotent_methods
                )
            rid = c.next_id
            c.next_id += 1
            left = max(1, int((call.deadline - time.monotonic()) * 1000))
            credit = None
            if call.on_item is not None:
                credit = call.window or int(c.session_limits.get("stream_window", 32))
                call.credit = CreditWindow(credit)
                call.granter = CreditGranter(credit)
            self._write(
                c,
                Request(rid, call.method, call.params, call.body, deadline_ms=left, credit=credit),
            )
            c.pending[rid] = call
            c.sent_at = time.perf_counter()
        except (ProtocolError, TypeError, ValueError) as e:
            err = (
                e
                if isinstance(e, ProtocolError)
                else ProtocolError(str(e), ErrorCode.INVALID_PARAMS)
            )
            self._fail(call, err)

    @staticmethod
    def _fail(call: _Call, error: BaseException) -> None:
        if call.future is not None and not call.future.done():
            call.future.set_exception(error)

    def _fail_queue(self, c: _Child, error: ProtocolError) -> None:
        while c.queue:
            self._fail(c.queue.popleft(), error)

    # ---------------------------------------------------------------- lifecycle

    def _set_state(self, c: _Child, state: str) -> None:
        if c.state != state:
            c.state = state
            _log.debug("%s: %s", c.manifest.id, state)
            self.sig_state_changed.emit(c.manifest.id, state)

    def _start(self, c: _Child) -> None:
        if self._closing or c.launched is not None:
            return
        c.restart_timer = None
        m = c.manifest
        limits = self._limits.get(m.id) or ProcessLimits(
            memory_mb=m.limits.memory_mb,
            cpu_seconds=m.limits.cpu_seconds,
            cpu_percent=m.limits.cpu_percent,
        )
        if self.config.cgroups and self._cgroups is None:
            self._cgroups = CgroupSupport()
            if not self._cgroups.available:
                _log.info("no per-extension cgroups: %s", self._cgroups.reason)
        c.token = new_token()
        c.handshake = HostHandshake(
            c.token, protocols=self._protocols, max_frame=m.limits.frame_max_mb << 20
        )
        c.decoder = FrameDecoder(HANDSHAKE_MAX_FRAME)
        c.ready = False
        c.capabilities = {}
        c.max_frame = HANDSHAKE_MAX_FRAME
        c.next_id = 1
        c.wbuf.clear()
        c.wbytes = 0
        c.kill_at = 0.0
        c.kill_reason = ""
        c.killed = False
        c.stderr_tail.clear()
        c.stop_requested = False
        c.shutdown_id = -1
        c.ping_outstanding = False
        c.output = TokenBucket(self.config.output_rate, self.config.output_burst)
        c.started_at = time.monotonic()
        c.starts += 1
        self._set_state(c, STARTING)
        try:
            launched = launch(
                m.folder,
                c.token,
                python=self._python,
                limits=limits,
                command=self._commands.get(m.id),
                identity=(m.id, m.version, m.entry),
                channel=self.config.channel,
                cgroups=self._cgroups if self.config.cgroups else None,
            )
        except OSError as e:
            c.last_error = f"cannot start: {e}"
            self._set_state(c, DISABLED)
            self.sig_breaker_opened.emit(m.id, c.last_error)
            self._fail_queue(c, ExtensionDisabledError(c.last_error))
            return
        c.launched = launched
        if launched.listener is None:
            problem = _check_peer(launched.sock)
            if problem is not None:
                c.fatal = AuthenticationError(problem)
                self._kill(c, problem)
        else:  # the fallback channel: wait for the child to connect, then attach
            c.reader = QSocketNotifier(launched.sock.fileno(), QSocketNotifier.Type.Read)
            c.reader.activated.connect(lambda *_: self._on_connect(c))
        self._watch_process(c)
        if launched.listener is None:
            self._attach(c)

    def _on_connect(self, c: _Child) -> None:
        launched = c.launched
        if launched is None or launched.listener is None:
            return
        listener, launched.listener = launched.listener, None
        if c.reader is not None:
            c.reader.setEnabled(False)
            self._graveyard.append(c.reader)
            c.reader = None
        try:
            launched.sock = listener.accept(launched.proc.pid)
        except BlockingIOError:  # a spurious wake-up: keep waiting
            launched.listener = listener
            c.reader = QSocketNotifier(listener.sock.fileno(), QSocketNotifier.Type.Read)
            c.reader.activated.connect(lambda *_: self._on_connect(c))
            return
        except OSError as e:
            launched.sock = listener.sock
            reason = f"channel refused: {e}"
            c.fatal = AuthenticationError(reason)
            self._kill(c, reason)
            return
        self._attach(c)

    def _attach(self, c: _Child) -> None:
        """Watch the connected channel and send the challenge."""
        assert c.launched is not None
        sock = c.launched.sock
        c.reader = QSocketNotifier(sock.fileno(), QSocketNotifier.Type.Read)
        c.reader.activated.connect(lambda *_: self._on_readable(c))
        c.writer = QSocketNotifier(sock.fileno(), QSocketNotifier.Type.Write)
        c.writer.setEnabled(False)
        c.writer_on = False
        c.writer.activated.connect(lambda *_: self._flush(c))
        assert c.handshake is not None
        self._write(c, c.handshake.challenge())

    def _watch_process(self, c: _Child) -> None:
        """Watch the child's exit and drain its stdout/stderr."""
        launched = c.launched
        assert launched is not None
        pidfd_open = getattr(os, "pidfd_open", None)
        if pidfd_open is not None:
            try:
                c.pidfd = pidfd_open(launched.proc.pid)
                c.exit_notifier = QSocketNotifier(c.pidfd, QSocketNotifier.Type.Read)
                c.exit_notifier.activated.connect(lambda *_: self._check_exit(c))
            except OSError:
                c.pidfd = -1
        for pipe, name in ((launched.proc.stdout, "stdout"), (launched.proc.stderr, "stderr")):
            if pipe is None:
                continue
            fd = pipe.fileno()
            os.set_blocking(fd, False)
            n = QSocketNotifier(fd, QSocketNotifier.Type.Read)
            stream = _Stream(n, fd, name)
            n.activated.connect(lambda *_, s=stream: self._on_output(c, s))
            c.streams.append(stream)
        if not self._timer.isActive():
            self._timer.start()

    def _on_ready(self, c: _Child) -> None:
        c.ready = True
        c.spawn_to_ready = time.monotonic() - c.started_at
        c.last_ping = time.monotonic()
        self._set_state(c, READY)
        methods = c.capabilities.get("methods", {})
        if isinstance(methods, dict) and "initialize" in methods:
            # absolute: the child's working folder is not the host's
            init = {"workspace": str(self.workspace.absolute()) if self.workspace else None}
            init["events"] = list(c.events)  # type: ignore[assignment]
            deadline = time.monotonic() + self.config.default_timeout
            self._dispatch(c, _Call("initialize", init, b"", deadline, None, idempotent=False))
        else:
            for ev in c.events:
                self._send_activate(c, ev)
        for method, params, body in list(c.replay.values()):
            deadline = time.monotonic() + self.config.default_timeout
            self._dispatch(c, _Call(method, params, body, deadline, None, idempotent=False))
        while c.queue and c.ready:
            self._dispatch(c, c.queue.popleft())

    def _send_activate(self, c: _Child, event: str) -> None:
        notes = c.capabilities.get("notifications", [])
        if isinstance(notes, list) and "activate" in notes:
            with contextlib.suppress(ProtocolError):
                self._write(c, Notification("activate", {"event": event}))

    def _kill(self, c: _Child, reason: str) -> None:
        if c.launched is None:
            return
        if not c.kill_reason or c.stop_requested:
            c.kill_reason = reason
        c.kill_at = 0.0
        c.killed = True
        _log.warning("%s: killing pid %d: %s", c.manifest.id, c.launched.proc.pid, reason)
        kill_group(c.launched.proc)

    def _check_exit(self, c: _Child) -> None:
        launched = c.launched
        if launched is None or launched.proc.poll() is None:
            return
        self._on_exit(c, launched.proc.returncode)

    def _teardown(self, c: _Child) -> None:
        launched = c.launched
        if launched is None:
            return
        kill_group(launched.proc)  # grandchildren die with their parent
        if launched.cgroup is not None:
            if launched.cgroup.oom_kills() and not c.kill_reason:
                c.kill_reason = "memory limit exceeded (cgroup memory.max)"
            launched.cgroup.kill()  # also grandchildren that left the process group
            self._stale_cgroups.append(launched.cgroup)
        for n in (c.reader, c.writer, c.exit_notifier, *(s.notifier for s in c.streams)):
            if n is not None:
                n.setEnabled(False)
                self._graveyard.append(n)  # dropped on the next tick, outside its own signal
        c.reader = c.writer = c.exit_notifier = None
        for s in c.streams:
            self._drain_output(c, s, final=True)
        c.streams.clear()
        if c.pidfd >= 0:
            os.close(c.pidfd)
            c.pidfd = -1
        launched.sock.close()
        if launched.listener is not None:
            launched.listener.close()
        for pipe in (launched.proc.stdout, launched.proc.stderr):
            if pipe is not None:
                pipe.close()
        c.launched = None
        c.ready = False
        c.wbuf.clear()
        c.wbytes = 0

    def _on_exit(self, c: _Child, code: int) -> None:
        self._teardown(c)
        if c.dropped:
            self.sig_log.emit(c.manifest.id, "warning", f"{c.dropped} output lines dropped")
            c.dropped = 0
        how = _describe_exit(code)
        if c.stop_requested:
            self._fail_pending(c, ShuttingDownError(f"{c.manifest.id} was stopped"), retry=False)
            c.last_error = "" if code == 0 else f"{how} while stopping"
            self._set_state(c, EXITED)
            if c.queue and not self._closing:  # requests that arrived while it was stopping
                self._start(c)
            return
        fatal = c.fatal
        if fatal is None and code in FATAL_EXIT_CODES:
            fatal = error_for_code(FATAL_EXIT_CODES[code], f"{c.manifest.id}: {how}")
        if fatal is not None:
            c.last_error = f"{_fatal_text(fatal)} ({how}); not restarted"
            _log.error("%s: %s", c.manifest.id, c.last_error)
            self.sig_log.emit(c.manifest.id, "error", c.last_error)
            err = error_for_code(fatal.code, c.last_error, fatal.data)
            self._fail_pending(c, err, retry=False)
            self._fail_queue(c, err)
            self._set_state(c, DISABLED)
            return
        reason = _crash_reason(c, code, how)
        c.last_error = reason
        _log.warning("%s crashed: %s", c.manifest.id, reason)
        self.sig_log.emit(c.manifest.id, "error", f"crashed: {reason}")
        now = time.monotonic()
        c.crashes.append(now)
        while c.crashes and now - c.crashes[0] > self.config.breaker_window:
            c.crashes.popleft()
        self._fail_pending(c, ExtensionCrashedError(f"{c.manifest.id} crashed: {reason}"))
        self._set_state(c, CRASHED)
        if len(c.crashes) >= self.config.breaker_crashes:
            window = f"{self.config.breaker_window:g} s"
            c.last_error = f"crashed {len(c.crashes)} times in {window}; last: {reason}"
            self._fail_queue(
                c, ExtensionDisabledError(f"{c.manifest.id} is disabled: {c.last_error}")
            )
            self._set_state(c, DISABLED)
            self.sig_breaker_opened.emit(c.manifest.id, c.last_error)
            return
        if self._closing:
            return
        delay = self._backoff(len(c.crashes) - 1)
        timer = QTimer(self)
        timer.setSingleShot(True)
        timer.timeout.connect(lambda: self._restart(c, timer))
        c.restart_timer = timer
        timer.start(int(delay * 1000))

    def _restart(self, c: _Child, timer: QTimer) -> None:
        timer.deleteLater()
        if c.restart_timer is timer and c.state == CRASHED:
            self._start(c)

    def _backoff(self, n: int) -> float:
        if n <= 0:
            return 0.0
        base = min(self.config.backoff_max, self.config.backoff_base * 2.0 ** (n - 1))
        return min(self.config.backoff_max, base * random.uniform(0.8, 1.2))

    def _fail_pending(self, c: _Child, error: ProtocolError, *, retry: bool = True) -> None:
        pending = list(c.pending.values())
        c.pending.clear()
        again = []
        for call in pending:
            if call.future is None or call.future.done():
                continue
            if retry and call.idempotent and not call.retried:
                call.retried = True
                again.append(call)
            else:
                self._fail(call, error)
        c.queue.extendleft(reversed(again))

    # ---------------------------------------------------------------- I/O

    def _write(self, c: _Child, msg: Message) -> None:
        if c.launched is None:
            raise ExtensionCrashedError(f"{c.manifest.id} is not running")
        data = encode(msg, c.max_frame if c.ready else HANDSHAKE_MAX_FRAME)
        if c.wbytes + len(data) > self.config.write_max:
            raise ResourceLimitError(f"{c.manifest.id} is not reading: write queue full")
        if not c.wbuf:
            # nothing queued before it (the usual case): straight to the socket, and only what
            # the socket did not take is queued
            try:
                n = c.launched.sock.send(data)
            except BlockingIOError:
                n = 0
            except OSError as e:
                self._lost(c, f"connection lost while writing: {e}")
                return
            if n == len(data):
                return
        else:
            n = 0
        rest = memoryview(data)[n:]  # a view: a large frame's remainder is not copied
        c.wbuf.append(rest)
        c.wbytes += len(rest)
        self._flush(c)

    def _flush(self, c: _Child) -> None:
        launched = c.launched
        if launched is None:
            return
        try:
            while c.wbuf:
                head = c.wbuf[0]
                n = launched.sock.send(head)
                c.wbytes -= n
                if n == len(head):
                    c.wbuf.popleft()
                else:
                    c.wbuf[0] = head[n:]
        except BlockingIOError:
            pass
        except OSError as e:
            c.wbuf.clear()
            c.wbytes = 0
            self._lost(c, f"connection lost while writing: {e}")
        waiting = bool(c.wbuf)
        if c.writer is not None and waiting is not c.writer_on:
            # a Qt call per request otherwise (~1 µs), almost always to say "still off"
            c.writer.setEnabled(waiting)
            c.writer_on = waiting

    def _lost(self, c: _Child, reason: str) -> None:
        if c.reader is not None:
            c.reader.setEnabled(False)
        if c.launched is None:
            return
        if c.launched.proc.poll() is not None:
            self._on_exit(c, c.launched.proc.returncode)
            return
        # The runner closes before exiting with its code (77/78 …): give it a moment.
        if not c.kill_reason:
            c.kill_reason = reason
        if not c.kill_at:
            c.kill_at = time.monotonic() + 1.0

    def _on_readable(self, c: _Child) -> None:
        start = time.perf_counter()
        if (c.linger_skip or c.linger_misses) and start - c.sent_at < self.config.linger:
            # woken within what a linger would have waited: the child answers fast again
            c.linger_skip = c.linger_misses = 0
        self._read_and_linger(c, start)

    def _read_and_linger(self, c: _Child, start: float) -> None:
        loop = _drain_loop()
        if loop is None:
            self._read(c)
            if self.config.linger > 0:
                self._linger(c, start, None)
            return
        # replies read here complete futures (call_soon); the loop runs them right after each
        # read, so it need not arm its timer for them
        loop.hold()
        try:
            try:
                self._read(c)
            finally:
                loop.run_ready()
            if self.config.linger > 0:
                self._linger(c, start, loop)
        finally:
            loop.release()

    def _linger(self, c: _Child, start: float, loop: _DrainLoop | None) -> None:
        """Keep reading ``c`` while it owes answers (see :attr:`HostConfig.linger`).

        In this VM a thread that sleeps in the event loop's ``poll`` and is woken by an answer
        loses ~30–100 µs to the wake-up and then runs with cold caches (a 49-byte answer took
        20 µs to decode instead of 5); a child that answers within the linger is read by a thread
        that never slept. Called after ``loop`` ran what the read before made ready, and runs it
        after each read, so what it reads resumes its awaiting coroutines exactly as a fresh
        wake-up would.

        A linger that the budget cuts short is not over: it goes on from a zero-time timer, after
        the event loop has had its turn (painting, input, other sockets) — a turn that does not
        sleep, since the timer is due. Returning to ``poll`` with a request in flight instead
        would put the thread to sleep until the answer wakes it, once every budget.
        """
        launched = c.launched
        linger, budget = self.config.linger, self.config.linger_budget
        while c.pending and c.launched is launched and launched is not None:
            if c.linger_skip:
                c.linger_skip -= 1
                return
            now = time.perf_counter()
            # a linger the budget cut short goes on to the end it had
            end = c.linger_until if c.linger_until > now else now + linger
            c.linger_until = 0.0
            if now - start >= budget:
                self._linger_later(c, end)
                return
            until = min(end, start + budget)
            got: bool | None = False
            while got is False and time.perf_counter() < until:
                try:
                    got = self._read(c)
                finally:
                    if got is not False and loop is not None:
                        loop.run_ready()
            if got is None:
                return
            if not got:
                if until < end:  # cut short by the budget: not a miss yet
                    self._linger_later(c, end)
                    return
                c.linger_misses += 1
                c.linger_skip = 1 << min(c.linger_misses - 1, 6)
                return
            c.linger_misses = 0

    def _linger_later(self, c: _Child, end: float) -> None:
        """Go on lingering on ``c`` until ``end`` after the event loop's next turn."""
        c.linger_until = end
        self._linger_on[c.manifest.id] = c
        if not self._linger_timer.isActive():
            self._linger_timer.start()

    def _on_linger_timer(self) -> None:
        children, self._linger_on = self._linger_on, {}
        for c in children.values():
            # linger_until is 0 when a wake-up has read the child since (and lingered itself)
            if c.linger_until and c.pending and c.reader is not None and c.reader.isEnabled():
                self._read_and_linger(c, time.perf_counter())

    def _read(self, c: _Child) -> bool | None:
        """Read and handle what ``c`` sent.

        Returns
        -------
        bool or None
            Whether anything came; ``None`` once the connection is over (end of file, an error,
            a protocol violation, the child replaced).
        """
        launched = c.launched
        if launched is None:
            return None
        budget = self.config.read_budget
        got = False
        while budget > 0 and c.launched is launched:
            want = min(self.config.read_chunk, budget)
            try:
                data = launched.sock.recv(want)
            except BlockingIOError:
                return got if c.launched is launched else None
            except OSError as e:
                self._lost(c, f"connection error: {e}")
                return None
            got = True
            if not data:
                self._lost(c, "closed the connection")
                return None
            budget -= len(data)
            try:
                messages = c.decoder.feed(data)
            except ProtocolViolation as e:
                self._violation(c, e)
                return None
            for msg in messages:
                if c.launched is not launched:
                    return None
                self._handle(c, msg)
            if len(data) < want:
                # drained: the level-triggered notifier fires again for anything later (an
                # end of stream included), which saves a recv that would only say EAGAIN
                return True
        return got if c.launched is launched else None

    def _violation(self, c: _Child, e: ProtocolError) -> None:
        with contextlib.suppress(ProtocolError, OSError):
            self._write(c, ErrorResponse(None, e.code, e.message, e.data))
        if e.fatal:
            c.fatal = e
        self._kill(c, f"protocol violation: {e.message}")

    def _handle(self, c: _Child, msg: Message) -> None:
        if not c.ready:
            self._handle_handshake(c, msg)
            return
        if isinstance(msg, _ENDS):
            if msg.id is None:
                assert isinstance(msg, ErrorResponse)
                err = error_for_code(msg.code, msg.message, msg.data)
                if err.fatal:
                    c.fatal = err
                self._lost(c, f"connection error from the child: {msg.message}")
                return
            if msg.id == c.shutdown_id and c.stop_requested:
                with contextlib.suppress(ProtocolError):
                    self._write(c, Exit())
                return
            call = c.pending.pop(msg.id, None)
            if call is None or call.future is None or call.future.done():
                if call is not None and call.future is None and isinstance(msg, ErrorResponse):
                    text = f"{call.method} failed: {msg.message}"
                    if call.method == "initialize":
                        # Nobody waits on initialize; without this its reason would only be a
                        # log line while every later request fails for it.
                        c.last_error = text
                    self.sig_log.emit(c.manifest.id, "error", text)
                return
            if isinstance(msg, Response):
                call.future.set_result(CallResult(msg.result, msg.body))
            else:
                call.future.set_exception(error_for_code(msg.code, msg.message, msg.data))
        elif isinstance(msg, Pong):
            if msg.id == c.ping_id:
                c.ping_outstanding = False
                if c.state == UNRESPONSIVE:
                    self._set_state(c, READY)
        elif isinstance(msg, Notification):
            self.sig_notification.emit(c.manifest.id, msg.method, msg.params, msg.body)
        elif isinstance(msg, Log):
            self._emit_log(c, msg.level, msg.message, msg.dropped)
        elif isinstance(msg, Request):
            self._serve(c, msg)
        elif isinstance(msg, StreamData):
            self._on_stream_data(c, msg)
        elif isinstance(msg, Progress):
            call = c.pending.get(msg.id)
            if call is not None and call.on_progress is not None and not call.cancel_sent:
                self._callback(c, call.on_progress, msg)
        # cancel, credit: nothing the host asked for; ignored.

    def _on_stream_data(self, c: _Child, msg: StreamData) -> None:
        call = c.pending.get(msg.id)
        if call is None or call.credit is None or call.granter is None:
            self._violation(c, ProtocolViolation(f"stream_data for request {msg.id} (no stream)"))
            return
        try:
            call.credit.consume()
        except ProtocolViolation as e:
            self._violation(c, e)
            return
        if call.cancel_sent or call.on_item is None:
            return
        self._callback(c, call.on_item, msg.item, msg.body)
        grant = call.granter.consumed()
        if grant and msg.id in c.pending and c.launched is not None:
            call.credit.grant(grant)
            with contextlib.suppress(ProtocolError):
                self._write(c, Credit(msg.id, grant))

    def _callback(self, c: _Child, fn: Callable[..., object], *args: Any) -> None:
        try:
            fn(*args)
        except Exception:
            _log.exception("%s: stream/progress callback failed", c.manifest.id)

    def _handle_handshake(self, c: _Child, msg: Message) -> None:
        hs = c.handshake
        assert hs is not None
        if isinstance(msg, ErrorResponse) and msg.id is None:
            err = error_for_code(msg.code, msg.message, msg.data)
            if err.fatal:
                c.fatal = err
            self._lost(c, f"handshake failed: {msg.message}")
            return
        try:
            welcome = hs.accept(msg)
        except ProtocolError as e:
            with contextlib.suppress(ProtocolError, OSError):
                self._write(c, hs.reject(e))
            if e.fatal or isinstance(e, AuthenticationError | IncompatibleProtocolError):
                c.fatal = e
            self._lost(c, f"handshake failed: {e.message}")
            return
        assert hs.session is not None
        assert isinstance(msg, Hello)
        if msg.extension_id != c.manifest.id:
            e2 = AuthenticationError(
                f"child says it is {msg.extension_id!r}, not {c.manifest.id!r}"
            )
            with contextlib.suppress(ProtocolError, OSError):
                self._write(c, hs.reject(e2))
            c.fatal = e2
            self._lost(c, e2.message)
            return
        self._write(c, welcome)
        c.max_frame = hs.session.max_frame
        c.decoder.max_frame = hs.session.max_frame
        c.capabilities = hs.session.extension_capabilities
        c.session_limits = hs.session.limits
        self._on_ready(c)

    def _on_secret_ready(self, item: tuple[Any, ...]) -> None:
        c, gen, rid, name, fut = item
        if c.starts != gen or c.launched is None:
            return
        reply: Message
        try:
            reply = Response(rid, {"name": name, "value": fut.result()})
        except Exception as e:  # keyring backends raise their own errors
            reply = ErrorResponse(
                rid, ErrorCode.REQUEST_FAILED, f"keyring: {type(e).__name__}", {"name": name}
            )
        with contextlib.suppress(ProtocolError):
            self._write(c, reply)

    def _serve(self, c: _Child, req: Request) -> None:
        reply: Message
        if req.method == "secrets.get":
            name = req.params.get("name") if isinstance(req.params, dict) else None
            if not isinstance(name, str) or not c.manifest.permissions.allows_secret(name):
                reply = ErrorResponse(
                    req.id,
                    ErrorCode.UNAUTHORIZED,
                    f"secret {name!r} is not listed in permissions.secrets",
                )
            else:
                # The keyring may block (a D-Bus unlock prompt): ask it on a worker thread and
                # answer on this one, unless the child restarted in the meantime.
                gen = c.starts
                fut = self._secrets.submit(_keyring_get, name)
                fut.add_done_callback(
                    lambda f: self.sig_secret_ready.emit((c, gen, req.id, name, f))
                )
                return
        else:
            err = MethodNotFoundError(f"the host has no method {req.method!r}")
            reply = ErrorResponse(req.id, err.code, err.message)
        with contextlib.suppress(ProtocolError):
            self._write(c, reply)

    # ---------------------------------------------------------------- output and logs

    def _emit_log(self, c: _Child, level: str, message: str, dropped: int = 0) -> None:
        if c.output is not None and not c.output.try_take():
            c.dropped += 1
            return
        if c.dropped or dropped:
            message = f"{message} [{c.dropped + dropped} earlier lines dropped]"
            c.dropped = 0
        self.sig_log.emit(c.manifest.id, level, message[:8192])

    def _on_output(self, c: _Child, s: _Stream) -> None:
        self._drain_output(c, s, final=False)

    def _drain_output(self, c: _Child, s: _Stream, *, final: bool) -> None:
        budget = self.config.read_chunk
        level = "info" if s.name == "stdout" else "warning"
        while budget > 0:
            try:
                data = os.read(s.fd, budget)
            except BlockingIOError:
                break
            except OSError:
                data = b""
            if not data:
                s.notifier.setEnabled(False)
                final = True
                break
            budget -= len(data)
            s.partial += data
            *lines, rest = s.partial.split(b"\n")
            s.partial = bytearray(rest[-8192:])
            for line in lines:
                text = line.decode("utf-8", "replace").rstrip("\r")
                self._keep_tail(c, s, text)
                self._emit_log(c, level, f"[{s.name}] {text}")
        if final and s.partial:
            text = s.partial.decode("utf-8", "replace")
            self._keep_tail(c, s, text)
            self._emit_log(c, level, f"[{s.name}] {text}")
            s.partial.clear()

    @staticmethod
    def _keep_tail(c: _Child, s: _Stream, text: str) -> None:
        # Before the log's rate limit: the line that says why a child died is often the last of
        # a flood (a traceback after a burst of warnings).
        if s.name == "stderr" and text.strip():
            c.stderr_tail.append(text.strip()[:STDERR_LINE_MAX])

    # ---------------------------------------------------------------- supervision tick

    def _on_tick(self) -> None:
        self._graveyard.clear()
        self._stale_cgroups = [g for g in self._stale_cgroups if not g.remove()]
        now = time.monotonic()
        cfg = self.config
        alive = False
        for c in list(self._children.values()):
            launched = c.launched
            self._expire_queue(c, now)
            if launched is None:
                continue
            alive = True
            if c.pidfd < 0 and launched.proc.poll() is not None:
                self._on_exit(c, launched.proc.returncode)
                continue
            if c.kill_at and now >= c.kill_at:
                self._kill(c, c.kill_reason or "killed")
                continue
            if c.state == STARTING and now - c.started_at > cfg.start_timeout:
                self._kill(c, f"not ready within {cfg.start_timeout:g} s")
                continue
            limit = (self._limits.get(c.manifest.id) or c.manifest.limits).memory_mb
            rss = rss_bytes(launched.proc.pid)
            if limit and rss > limit << 20:
                self._kill(c, f"memory limit exceeded: {rss >> 20} MB > {limit} MB")
                continue
            if not c.ready or c.stop_requested:
                continue
            if c.ping_outstanding:
                late = now - c.ping_sent
                if late > cfg.unresponsive_after + cfg.kill_unresponsive_after:
                    self._kill(c, f"unresponsive: no pong for {late:.1f} s")
                    continue
                if late > cfg.unresponsive_after and c.state == READY:
                    self._set_state(c, UNRESPONSIVE)
            elif now - c.last_ping >= cfg.ping_interval:
                c.ping_id += 1
                c.ping_sent = c.last_ping = now
                c.ping_outstanding = True
                with contextlib.suppress(ProtocolError):
                    self._write(c, Ping(c.ping_id))
            for rid, call in list(c.pending.items()):
                if call.cancel_sent:
                    if now - call.cancel_sent > cfg.cancel_grace:
                        self._kill(c, f"request {call.method!r} ignored its cancel")
                        break
                elif now >= call.deadline:
                    call.cancel_sent = now
                    self._fail(call, DeadlineExceededError(f"{call.method}: deadline exceeded"))
                    with contextlib.suppress(ProtocolError):
                        self._write(c, Cancel(rid))
        if not alive and not any(c.queue for c in self._children.values()):
            self._timer.stop()

    def _expire_queue(self, c: _Child, now: float) -> None:
        if not c.queue:
            return
        keep: deque[_Call] = deque()
        for call in c.queue:
            if now >= call.deadline and not call.notification:
                self._fail(call, DeadlineExceededError(f"{call.method}: deadline exceeded"))
            else:
                keep.append(call)
        c.queue = keep


def _check_peer(sock: Any) -> str | None:
    """Check our end of the socketpair: its peer credentials must be this process's own.

    For a socketpair the kernel records the creator on both ends, so anything else means the
    socket is not the pair we made.
    """
    import socket
    import struct

    opt = getattr(socket, "SO_PEERCRED", None)
    if opt is None:
        return None
    try:
        pid, uid, _gid = struct.unpack("3i", sock.getsockopt(socket.SOL_SOCKET, opt, 12))
    except OSError as e:
        return f"cannot read the socket's peer credentials: {e}"
    if (pid, uid) != (os.getpid(), os.getuid()):
        return f"unexpected socket peer pid {pid} uid {uid}"
    return None


def _replay_key(method: str, params: Any) -> str:
    import json

    return method + "\0" + json.dumps(params, sort_keys=True, default=str)


def _describe_exit(code: int) -> str:
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        extra = " (CPU time limit)" if -code == getattr(signal, "SIGXCPU", -1) else ""
        return f"killed by {name}{extra}"
    return f"exit code {code}"


def _crash_reason(c: _Child, code: int, how: str) -> str:
    """Why a child that exited unasked is gone, in the user's terms.

    A child that failed by itself (a non-zero exit the host did not cause, not an outside
    SIGKILL/SIGTERM) said why on stderr: an extension that raises at import exits 1 after the
    runner's "cannot load …" line, and the host only sees the connection drop — "connection
    reset by peer" would name the symptom, not the cause.
    """
    said = ""
    if not c.killed and code != 0 and code not in _EXTERNAL_SIGNALS and c.stderr_tail:
        said = c.stderr_tail[-1].removeprefix(_RUNNER_PREFIX)
    if said:
        return f"{said} ({how})"
    if c.kill_reason:
        return f"{c.kill_reason} ({how})"
    return f"exited unexpectedly ({how})"


def _fatal_text(e: ProtocolError) -> str:
    if (
        isinstance(e, IncompatibleProtocolError)
        or is_fatal(e.code)
        and e.code == ErrorCode.INCOMPATIBLE_PROTOCOL
    ):
        return f"incompatible protocol version: {e.message}"
    if e.code == ErrorCode.UNAUTHORIZED:
        return f"unauthorized: {e.message}"
    return e.message


def _keyring_get(name: str) -> str | None:
    import keyring

    value: str | None = keyring.get_password(KEYRING_SERVICE, name)
    return value


class _DrainLoop(Protocol):
    """What :class:`symphony.qtloop.QtEventLoop` offers the host (see :func:`_drain_loop`)."""

    def hold(self) -> None: ...  # noqa: D102

    def release(self) -> None: ...  # noqa: D102

    def run_ready(self) -> None: ...  # noqa: D102


def _drain_loop() -> _DrainLoop | None:
    """Return the running loop if it can resume coroutines now, on demand (else ``None``).

    :class:`symphony.qtloop.QtEventLoop` runs its ready callbacks in :meth:`run_ready`: a
    coroutine awaiting a reply (:meth:`ExtensionHost.call`) then goes on inside the Qt callback that
    read the reply — after the host is done with what it read, so nothing it runs can re-enter
    the read — instead of after every other ready Qt source (a 1 ms paint, P11-busy-gui) and a
    timer event of its own (P9). Other loops are left alone.
    """
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return None
    if hasattr(loop, "run_ready") and hasattr(loop, "hold"):
        return cast(_DrainLoop, loop)
    return None


#: Signature of a callback passed to ``CallFuture.add_done_callback``.
DoneCallback = Callable[[CallFuture], object]

__all__ = [
    "CRASHED",
    "DISABLED",
    "EXITED",
    "KEYRING_SERVICE",
    "NOT_STARTED",
    "READY",
    "STARTING",
    "STATES",
    "STDERR_LINE_MAX",
    "STDERR_TAIL_LINES",
    "STOPPING",
    "UNRESPONSIVE",
    "CallFuture",
    "CallResult",
    "DoneCallback",
    "ExtensionDisabledError",
    "ExtensionHost",
    "HostConfig",
]
