"""The child-side loop: two threads, one reading and one running handlers.

The *reader* only decodes frames and files them: requests, notifications and shutdown go to a
capped inbox; pings to a ping queue; ``cancel`` and ``credit`` update the call they name at once.
The *handler* answers pings and runs handlers one at a time. Pongs come only from the handler, so
a stuck handler (one that does not call into its context) leaves pings unanswered and the host
sees the extension as unresponsive. While a handler waits inside the SDK (for credit, in
``wait_cancelled``) or calls ``cancelled``, ``check_cancelled``, ``emit`` or progress, pending
pings are answered from that same thread.

The two roles move between the two threads: a request that arrives while the handler is idle
and nothing is queued is run at once by the thread that read it. Nobody reads meanwhile until the
handler needs it — the first time it looks at its context for what only reading brings (cancel,
credit, a reply from the host, pings to answer) the idle thread is woken to read, and when the
request is done the two threads have swapped roles. A handler that never does (an echo, a quick
lookup) answers without any thread being woken: handing each request to a sleeping handler thread
put that thread's wake-up (~30–100 µs on a VM whose idle vCPUs halt) between every request and
its handler. What a handler could observe is unchanged; what differs is that requests arriving
while such a handler runs wait in the socket, not in the inbox, so ``max_pending`` refuses extra
ones only once reading resumes. Handlers still run one at a time, in the order their requests
came.
"""

from __future__ import annotations

import threading
import time
from _queue import SimpleQueue  # what `queue` re-exports, without its import
from collections import deque
from collections.abc import Mapping
from typing import Any, Final

from symphony.protocol._record import record
from symphony.protocol.channel import SocketChannel
from symphony.protocol.errors import (
    ConnectionClosedError,
    DeadlineExceededError,
    ErrorCode,
    InternalError,
    MethodNotFoundError,
    ProtocolError,
    ProtocolViolation,
    RequestCancelledError,
    RequestError,
    ResourceLimitError,
    ShuttingDownError,
    error_for_code,
)
from symphony.protocol.flow import CreditWindow, TokenBucket
from symphony.protocol.handshake import Session
from symphony.protocol.messages import (
    Cancel,
    Credit,
    ErrorResponse,
    Exit,
    Log,
    LogLevel,
    Message,
    Notification,
    Ping,
    Pong,
    Progress,
    ProgressKind,
    Request,
    Response,
    Shutdown,
    StreamData,
)
from symphony.sdk.extension import Extension, Reply, RequestContext

#: Exit codes of the extension process (the host maps them; 76-78 are fatal, do not restart).
EXIT_OK: Final = 0
EXIT_FAILURE: Final = 1
EXIT_USAGE: Final = 2
EXIT_HOST_GONE: Final = 75
EXIT_PROTOCOL: Final = 76
EXIT_UNAUTHORIZED: Final = 77
EXIT_INCOMPATIBLE: Final = 78

#: Put in the inbox to make the idle handler thread the reader (see the module docs).
_READ: Final = object()

#: Unanswered pings kept; older ones are dropped (the host sees them unanswered anyway).
MAX_PENDING_PINGS: Final = 64
#: Longest log message sent; longer ones are truncated.
MAX_LOG_MESSAGE: Final = 8192


@record(eq=False)
class _Call:
    id: int
    window: CreditWindow | None
    cancelled: bool = False
    started: bool = False


class RateLimitedLogger:
    """Structured log records to the host through a token bucket; drops are counted and reported.

    The first record that passes after some were dropped carries ``dropped`` (how many were lost
    since the last record sent); :meth:`flush` reports a trailing count.

    Parameters
    ----------
    channel
        Where records go.
    rate, burst
        Records per second and bucket capacity (negotiated ``log_rate``/``log_burst``).
    """

    def __init__(self, channel: SocketChannel, rate: float, burst: float) -> None:
        self._channel = channel
        self._bucket = TokenBucket(rate, burst)
        self._lock = threading.Lock()
        self.dropped = 0
        self.dropped_total = 0

    def log(
        self,
        level: LogLevel,
        message: str,
        *,
        logger: str = "",
        fields: Mapping[str, Any] | None = None,
        request: int | None = None,
    ) -> bool:
        """Send one record unless rate-limited.

        Returns
        -------
        bool
            Whether the record was sent (``False``: dropped and counted).
        """
        with self._lock:
            if not self._bucket.try_take():
                self.dropped += 1
                self.dropped_total += 1
                return False
            dropped, self.dropped = self.dropped, 0
        self._send(level, message, logger, dict(fields or {}), dropped, request)
        return True

    def flush(self) -> None:
        """Report records dropped since the last one sent, bypassing the bucket."""
        with self._lock:
            dropped, self.dropped = self.dropped, 0
        if dropped:
            self._send(
                "warning", f"{dropped} log records dropped by the rate limit", "", {}, dropped
            )

    def _send(
        self,
        level: LogLevel,
        message: str,
        logger: str,
        fields: dict[str, Any],
        dropped: int,
        request: int | None = None,
    ) -> None:
        msg = Log(level, message[:MAX_LOG_MESSAGE], logger, fields, dropped, request)
        try:
            self._channel.send(msg)
        except (TypeError, ValueError):  # fields that JSON cannot carry: send their repr
            fields = {k: repr(v)[:1024] for k, v in fields.items()}
            self._channel.send(Log(level, msg.message, logger, fields, dropped, request))
        except ProtocolError:  # frame too large: drop the fields
            self._channel.send(Log(level, msg.message[:1024], logger, {}, dropped, request))


class ExtensionRuntime:
    """Serve one extension over an established session.

    Parameters
    ----------
    extension
        The handlers.
    channel
        The connected channel (handshake done, frame cap raised).
    session
        The agreed session (limits).
    """

    def __init__(self, extension: Extension, channel: SocketChannel, session: Session) -> None:
        self.extension = extension
        self.channel = channel
        self.session = session
        self.logger = RateLimitedLogger(
            channel, session.limits["log_rate"], session.limits["log_burst"]
        )
        self._max_pending = max(1, session.limits["max_pending"])
        # held as `with self._lock`, the condition's own lock entered in C (a Condition's
        # __enter__ and __exit__ are Python frames: ~0.3 µs, and a request takes it 4 times);
        # `_cv` waits and notifies
        self._lock = threading.RLock()
        self._cv = threading.Condition(self._lock)
        # hand-off to the handler thread: messages to run, or None to wake it (ping, close)
        self._inbox: SimpleQueue[Message | object | None] = SimpleQueue()
        self._queued = 0
        # a thread runs a handler (or is about to: the reader taking a request itself)
        self._busy = False
        # the call the reading thread runs while nobody reads (see _hand_over_reading)
        self._handover: _Call | None = None
        self._worker_ident: int | None = None  # the thread waiting for work, if one is
        self._exit_code = EXIT_HOST_GONE
        self._pings: deque[int] = deque(maxlen=MAX_PENDING_PINGS)
        self._wake_pending = False
        self._calls: dict[int, _Call] = {}
        self._closing = False
        self._shutdown_seen = False
        self._ident: int | None = None
        self._outgoing: dict[int, _Outgoing] = {}
        self._next_id = 1
        self._worker = threading.Thread(
            target=self._run_roles, args=(False,), name="symphony-extension", daemon=True
        )
        extension._runtime = self

    # --- reader (the thread calling serve) --------------------------------------------------

    def serve(self) -> int:
        """Run until ``exit`` or end of stream; return the process exit code.

        Returns
        -------
        int
            ``EXIT_OK`` after exit or end of stream following a shutdown, ``EXIT_FAILURE`` for an
            exit without shutdown, ``EXIT_HOST_GONE`` if the host vanished, ``EXIT_PROTOCOL`` if
            it broke the protocol.
        """
        self._worker.start()
        self._run_roles(True)  # this thread reads first; the other one handles
        self._worker.join(timeout=1.0)
        return self._exit_code

    def _run_roles(self, reading: bool) -> None:
        """Read or handle, switching as requests are taken over, until the session ends."""
        while True:
            if reading:
                if not self._read():
                    return
            elif not self._work():
                return
            reading = not reading

    def _read(self) -> bool:
        """Read until the session ends (``False``) or this thread ran a request itself."""
        code: int | None = EXIT_HOST_GONE  # what an unexpected exception ends with
        try:
            code = self._read_loop()
        except ProtocolViolation as e:
            try:
                self.channel.send(ErrorResponse(None, e.code, e.message, e.data))
            except OSError:
                pass
            code = EXIT_PROTOCOL
        except OSError:
            code = EXIT_HOST_GONE
        finally:
            if code is not None:  # the end of the session
                self._exit_code = code
                with self._lock:
                    self._closing = True
                    for call in self._calls.values():
                        call.cancelled = True
                    self._cv.notify_all()
                self._inbox.put(None)
        return code is None

    def _read_loop(self) -> int | None:
        """Read and file messages; an exit code at the end, ``None`` after running a request."""
        recv = self.channel.recv
        while True:
            try:
                msg = recv()
            except ConnectionClosedError:
                return EXIT_HOST_GONE
            if msg is None:
                return EXIT_OK if self._shutdown_seen else EXIT_HOST_GONE
            if isinstance(msg, Request):
                if self._on_request(msg):
                    return None
            elif isinstance(msg, Ping):
                with self._lock:
                    self._pings.append(msg.id)  # bounded: the oldest unanswered ping falls off
                    self._cv.notify_all()
                    wake = not self._wake_pending
                    self._wake_pending = True
                if wake:
                    self._inbox.put(None)
            elif isinstance(msg, Cancel):
                with self._lock:
                    call = self._calls.get(msg.id)
                    if call is not None:
                        call.cancelled = True
                        self._cv.notify_all()
            elif isinstance(msg, Credit):
                with self._lock:
                    call = self._calls.get(msg.id)
                    if call is not None and call.window is not None:
                        call.window.grant(msg.grant)
                        self._cv.notify_all()
            elif isinstance(msg, Notification):
                if not self._enqueue(msg):
                    self.logger.log("warning", f"notification {msg.method!r} dropped: queue full")
            elif isinstance(msg, Shutdown):
                with self._lock:
                    self._shutdown_seen = True
                    self._queued += 1
                self._inbox.put(msg)
            elif isinstance(msg, Response | ErrorResponse):
                with self._lock:
                    if msg.id is None or not 1 <= msg.id < self._next_id:
                        raise ProtocolViolation(f"reply to unknown request id {msg.id}")
                    waiter = self._outgoing.pop(msg.id, None)
                    if waiter is not None:  # None: a late reply to a request given up on
                        waiter.reply = msg
                        self._cv.notify_all()
            elif isinstance(msg, Exit):
                return EXIT_OK if self._shutdown_seen else EXIT_FAILURE
            else:
                raise ProtocolViolation(f"unexpected {type(msg).__name__} from the host")

    def _enqueue(self, msg: Message) -> bool:
        with self._lock:
            if self._queued >= self._max_pending:
                return False
            self._queued += 1
        self._inbox.put(msg)
        return True

    def _on_request(self, req: Request) -> bool:
        """File ``req``, or run it here when the handler is idle (see the module docs).

        Returns whether this thread is the handler now: it ran ``req`` and the other thread took
        over reading meanwhile.
        """
        err: ProtocolError | None = None
        now: _Call | None = None
        with self._lock:
            if self._shutdown_seen:
                err = ShuttingDownError("the extension is shutting down")
            elif req.id in self._calls:
                err = RequestError(f"request id {req.id} is in use", ErrorCode.INVALID_REQUEST)
            elif self._queued >= self._max_pending:
                err = ResourceLimitError(
                    f"more than {self._max_pending} requests pending",
                    data={"max_pending": self._max_pending},
                )
            else:
                window = None if req.credit is None else CreditWindow(req.credit)
                call = self._calls[req.id] = _Call(req.id, window)
                if self._busy or self._queued:
                    self._queued += 1
                else:  # nothing before it: run it here (nobody reads until it needs that)
                    self._busy = True
                    self._handover = now = call
                    self._ident = threading.get_ident()
        if err is not None:
            self.channel.send(ErrorResponse(req.id, err.code, err.message, err.data))
            return False
        if now is None:
            self._inbox.put(req)
            return False
        try:
            self._run_item(req)
            # A ping read just before ``req`` woke the other thread, which could not answer it
            # (this thread was the handler by then) and sent no pong; the host sends no new
            # ping while one is outstanding, so unanswered here it would stay unanswered.
            self._answer_pings()
        except OSError:
            pass  # the connection is gone: reading finds out and ends the session
        with self._lock:
            if self._handover is now:  # the handler never needed the socket read: read on
                self._handover = None
                self._ident = self._worker_ident
                return False
        return True  # the other thread reads now: this one is the handler

    def _hand_over_reading(self) -> None:
        """Let the idle thread read while a request taken by the reading thread runs.

        Called where a handler waits for or looks at what only reading brings (cancel, credit,
        a reply from the host, pings to answer). A handler that never does runs with nobody
        reading, which changes nothing it could observe, and its reply goes out without any
        thread being woken.
        """
        if self._handover is not None:
            with self._lock:
                if self._handover is not None:
                    self._handover = None
                    self._inbox.put(_READ)

    # --- handler thread --------------------------------------------------------------------

    def _work(self) -> bool:
        """Handle queued work until told to read (``True``) or the session ends (``False``)."""
        me = threading.get_ident()
        with self._lock:
            self._worker_ident = me
            if not self._busy:  # (the reading thread may be running a request right now)
                self._ident = me
        get = self._inbox.get
        while True:
            item = get()
            if self._closing:
                return False
            if item is _READ:
                return True
            if item is None:
                with self._lock:
                    self._wake_pending = False
            try:
                if self._pings:
                    self.service_pings()
                if item is not None:
                    with self._lock:
                        self._queued -= 1
                        self._busy = True
                        self._ident = me
                    self._run_item(item)  # type: ignore[arg-type]  # not _READ or None here
            except OSError:
                return False

    def _run_item(self, msg: Message) -> None:
        try:
            self._dispatch(msg)
        finally:
            with self._lock:
                self._busy = False

    def _dispatch(self, msg: Message) -> None:
        if isinstance(msg, Request):
            self._run_request(msg)
        elif isinstance(msg, Notification):
            handler = self.extension.notifications.get(msg.method)
            if handler is None:
                return
            try:
                handler(msg.params, msg.body)
            except Exception as e:
                self._log_exception(f"notification {msg.method!r} failed", e, None)
        elif isinstance(msg, Shutdown):
            for hook in self.extension.shutdown_hooks:
                try:
                    hook()
                except Exception as e:
                    self._log_exception("shutdown hook failed", e, None)
            self.logger.flush()
            self.channel.send(Response(msg.id))

    def _run_request(self, req: Request) -> None:
        # No lock: a dict read and a flag store are atomic, and the entry goes only below.
        call = self._calls[req.id]
        call.started = True
        reply: Message
        try:
            if call.cancelled:
                raise RequestCancelledError("cancelled before it started")
            spec = self.extension.methods.get(req.method)
            if spec is None:
                raise MethodNotFoundError(f"no method {req.method!r}")
            deadline = (
                None if req.deadline_ms is None else time.monotonic() + req.deadline_ms / 1000.0
            )
            ctx = RequestContext(self, call, req.method, req.params, req.body, deadline)
            result = spec.handler(ctx)
            if isinstance(result, Reply):
                reply = Response(req.id, result.result, result.body)
            else:
                reply = Response(req.id, result)
            self._send_reply(reply)
        except ProtocolError as e:
            self._send_reply(ErrorResponse(req.id, e.code, e.message, e.data))
        except Exception as e:
            self._log_exception(f"request {req.method!r} failed", e, req.id)
            err = InternalError(f"{type(e).__name__}: {e}"[:1024], data={"type": type(e).__name__})
            self._send_reply(ErrorResponse(req.id, err.code, err.message, err.data))
        finally:
            with self._lock:
                self._calls.pop(req.id, None)

    def _send_reply(self, reply: Message) -> None:
        try:
            self.channel.send(reply)
        except ProtocolError as e:  # the result is larger than the negotiated frame
            rid = getattr(reply, "id", None)
            self.channel.send(ErrorResponse(rid, e.code, e.message, e.data))
        except (TypeError, ValueError) as e:  # the result is not JSON
            rid = getattr(reply, "id", None)
            msg = f"result is not JSON: {e}"[:1024]
            self.channel.send(ErrorResponse(rid, ErrorCode.INTERNAL_ERROR, msg))

    def _log_exception(self, what: str, e: Exception, request: int | None) -> None:
        import traceback  # only on a handler crash: not worth its import at every start

        tb = "".join(traceback.format_exception(e))[-4000:]
        self.logger.log(
            "error", f"{what}: {type(e).__name__}: {e}", fields={"traceback": tb}, request=request
        )

    # --- called from handlers (RequestContext) --------------------------------------------------

    def _on_handler_thread(self) -> bool:
        return threading.get_ident() == self._ident

    def service_pings(self) -> None:
        """Answer pending pings if called on the handler thread (a no-op elsewhere)."""
        self._hand_over_reading()
        self._answer_pings()

    def _answer_pings(self) -> None:
        if not self._pings or not self._on_handler_thread():
            return
        with self._lock:
            pings = list(self._pings)
            self._pings.clear()
        for pid in pings:
            self.channel.send(Pong(pid))

    def check_call(self, call: _Call, deadline: float | None) -> None:
        """Raise the error matching a cancelled or expired call."""
        self._hand_over_reading()
        self.service_pings()
        if call.cancelled:
            raise RequestCancelledError("request cancelled")
        if deadline is not None and time.monotonic() >= deadline:
            raise DeadlineExceededError("request deadline exceeded")

    def wait_cancelled(self, call: _Call, deadline: float | None, timeout: float | None) -> bool:
        """Wait until ``call`` is cancelled or expires, or ``timeout``; answer pings meanwhile."""
        self._hand_over_reading()
        end = _earliest(deadline, None if timeout is None else time.monotonic() + timeout)
        while True:
            self.service_pings()
            with self._lock:
                if call.cancelled or self._closing:
                    return True
                now = time.monotonic()
                if deadline is not None and now >= deadline:
                    return True
                if end is not None and now >= end:
                    return False
                if not (self._pings and self._on_handler_thread()):
                    self._cv.wait(None if end is None else end - now)

    def emit(
        self,
        call: _Call,
        deadline: float | None,
        item: Any,
        body: bytes,
        timeout: float | None,
    ) -> None:
        """Send one stream item of ``call`` once credit allows (see RequestContext.emit)."""
        window = call.window
        if window is None:
            raise RequestError(
                "the request was sent without credit, so it accepts no stream",
                ErrorCode.INVALID_REQUEST,
            )
        end = _earliest(deadline, None if timeout is None else time.monotonic() + timeout)
        while True:
            self.check_call(call, deadline)
            with self._lock:
                if self._closing:
                    raise ConnectionClosedError("connection closed")
                if window.available > 0:
                    seq = window.consume()
                    break
                now = time.monotonic()
                if end is not None and now >= end:
                    if deadline is not None and now >= deadline:
                        raise DeadlineExceededError("request deadline exceeded")
                    raise TimeoutError("no stream credit within the timeout")
                if not ((self._pings and self._on_handler_thread()) or call.cancelled):
                    self._cv.wait(None if end is None else end - now)
        self.channel.send(StreamData(call.id, seq, item, body))

    def progress(
        self,
        request_id: int,
        kind: ProgressKind,
        title: str | None,
        message: str | None,
        percentage: float | None,
    ) -> None:
        """Send a progress frame of ``request_id``."""
        self.service_pings()
        if percentage is not None:
            percentage = min(100.0, max(0.0, float(percentage)))
        self.channel.send(Progress(request_id, kind, title, message, percentage))

    def notify(self, method: str, params: Any, body: bytes) -> None:
        """Send a notification to the host."""
        self.channel.send(Notification(method, params, body))

    def call_host(
        self,
        method: str,
        params: Any,
        body: bytes,
        timeout: float | None,
        call: _Call | None = None,
        deadline: float | None = None,
    ) -> Reply:
        """Send a request to the host and wait for its reply (see ``Extension.call``)."""
        self._hand_over_reading()
        waiter = _Outgoing()
        with self._lock:
            if self._closing:
                raise ConnectionClosedError("connection closed")
            rid = self._next_id
            self._next_id += 1
            self._outgoing[rid] = waiter
        deadline_ms = None if timeout is None else max(0, int(timeout * 1000))
        self.channel.send(Request(rid, method, params, body, deadline_ms))
        end = _earliest(deadline, None if timeout is None else time.monotonic() + timeout)
        reason: ProtocolError | TimeoutError | None = None
        while True:
            self.service_pings()
            with self._lock:
                if waiter.reply is not None:
                    break
                if self._closing:
                    self._outgoing.pop(rid, None)
                    raise ConnectionClosedError("connection closed while waiting for the host")
                now = time.monotonic()
                if call is not None and call.cancelled:
                    reason = RequestCancelledError("request cancelled")
                elif deadline is not None and now >= deadline:
                    reason = DeadlineExceededError("request deadline exceeded")
                elif end is not None and now >= end:
                    reason = TimeoutError(f"host did not answer {method!r} in time")
                if reason is not None:
                    self._outgoing.pop(rid, None)
                    break
                if not (self._pings and self._on_handler_thread()):
                    self._cv.wait(None if end is None else end - now)
        if reason is not None:
            self.channel.send(Cancel(rid))
            raise reason
        reply = waiter.reply
        if isinstance(reply, ErrorResponse):
            raise error_for_code(reply.code, reply.message, reply.data)
        assert isinstance(reply, Response)
        return Reply(reply.result, reply.body)


@record(eq=False)
class _Outgoing:
    reply: Response | ErrorResponse | None = None


def _earliest(a: float | None, b: float | None) -> float | None:
    if a is None:
        return b
    if b is None:
        return a
    return min(a, b)


__all__ = [
    "EXIT_FAILURE",
    "EXIT_HOST_GONE",
    "EXIT_INCOMPATIBLE",
    "EXIT_OK",
    "EXIT_PROTOCOL",
    "EXIT_UNAUTHORIZED",
    "EXIT_USAGE",
    "ExtensionRuntime",
    "RateLimitedLogger",
]
