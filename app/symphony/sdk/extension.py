"""What an extension author writes against: :class:`Extension`, :class:`RequestContext`.

A minimal extension module (the ``entry`` of its folder's ``extension.toml``)::

    from symphony.sdk import Extension, Reply

    extension = Extension()

    @extension.request("echo", idempotent=True)
    def echo(ctx):
        return Reply(ctx.params, body=ctx.body)

    @extension.request("count", stream=True)
    def count(ctx):
        with ctx.progress("Counting") as p:
            for i in range(ctx.params["n"]):
                ctx.check_cancelled()
                ctx.emit(i)  # blocks while the host withholds credit
                p.report(percentage=100 * (i + 1) / ctx.params["n"])
        return {"done": ctx.params["n"]}

Handlers run one at a time on the extension's handler thread, the same thread that answers the
host's pings: a handler that never returns (and never calls into its context) shows the extension
as unresponsive, which is the point.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

from symphony.protocol._record import record
from symphony.protocol.messages import LogLevel

if TYPE_CHECKING:
    from symphony.sdk.runtime import ExtensionRuntime, _Call

RequestHandler = Callable[["RequestContext"], Any]
NotificationHandler = Callable[[Any, bytes], None]


@record(frozen=True)
class Reply:
    """A handler result with a binary body (sent raw, never base64).

    Parameters
    ----------
    result
        The JSON result.
    body
        Raw bytes sent after the header.
    """

    result: Any = None
    body: bytes = b""


@record(frozen=True)
class MethodSpec:
    """A registered request method and its metadata (announced to the host in ``hello``)."""

    name: str
    handler: RequestHandler
    idempotent: bool = False
    stream: bool = False


class Extension:
    """The registry of one extension's handlers.

    Parameters
    ----------
    id
        The extension id; the runner fills it from ``extension.toml`` when omitted.
    version
        The extension version; likewise.
    """

    def __init__(self, id: str | None = None, version: str | None = None) -> None:
        self.id = id
        self.version = version
        self.methods: dict[str, MethodSpec] = {}
        self.notifications: dict[str, NotificationHandler] = {}
        self.shutdown_hooks: list[Callable[[], None]] = []
        self._runtime: ExtensionRuntime | None = None

    def request(
        self, method: str, *, idempotent: bool = False, stream: bool = False
    ) -> Callable[[RequestHandler], RequestHandler]:
        """Register the decorated function as the handler of request ``method``.

        Parameters
        ----------
        method
            The method name.
        idempotent
            Whether running the request twice is harmless; the host may then retry it once after
            the extension crashed.
        stream
            Whether the handler emits stream items (:meth:`RequestContext.emit`).

        Returns
        -------
        Callable
            The decorator; it returns the function unchanged.
        """

        def register(fn: RequestHandler) -> RequestHandler:
            if method in self.methods:
                raise ValueError(f"method {method!r} is already registered")
            self.methods[method] = MethodSpec(method, fn, idempotent, stream)
            return fn

        return register

    def notification(self, method: str) -> Callable[[NotificationHandler], NotificationHandler]:
        """Register the decorated ``fn(params, body)`` for notification ``method``."""

        def register(fn: NotificationHandler) -> NotificationHandler:
            self.notifications[method] = fn
            return fn

        return register

    def on_shutdown(self, fn: Callable[[], None]) -> Callable[[], None]:
        """Register ``fn`` to run on the handler thread when the host asks for shutdown."""
        self.shutdown_hooks.append(fn)
        return fn

    def capabilities(self) -> dict[str, Any]:
        """Return what ``hello`` announces: each method with its ``idempotent``/``stream`` flags."""
        return {
            "methods": {
                m.name: {"idempotent": m.idempotent, "stream": m.stream}
                for m in self.methods.values()
            },
            "notifications": sorted(self.notifications),
        }

    @property
    def max_frame(self) -> int:
        """The largest frame the session allows, in bytes (header and body together).

        A reply larger than this is refused with ``-32004``, so size limits that promise a reply
        (a read of at most N bytes) must leave room for the header below it. Before the
        extension is connected, the protocol's default.
        """
        if self._runtime is None:
            from symphony.protocol.codec import DEFAULT_MAX_FRAME

            return DEFAULT_MAX_FRAME
        return self._runtime.session.max_frame

    def _require_runtime(self) -> ExtensionRuntime:
        if self._runtime is None:
            raise RuntimeError("the extension is not connected to a host")
        return self._runtime

    def log(self, level: LogLevel, message: str, **fields: Any) -> None:
        """Send a structured log record to the host (rate-limited; drops are counted)."""
        self._require_runtime().logger.log(level, message, fields=fields)

    def notify(self, method: str, params: Any = None, body: bytes = b"") -> None:
        """Send a notification to the host."""
        self._require_runtime().notify(method, params, body)

    def call(
        self, method: str, params: Any = None, body: bytes = b"", timeout: float | None = None
    ) -> Reply:
        """Send a request to the host (e.g. for a secret it brokers) and wait for the reply.

        Pings are answered while waiting when called on the handler thread.

        Parameters
        ----------
        method, params, body
            The request.
        timeout
            Seconds to wait; sent to the host as ``deadline_ms``. On expiry the request is
            cancelled and :class:`TimeoutError` raised.

        Returns
        -------
        Reply
            The host's result and binary body.

        Raises
        ------
        ProtocolError
            The host's error reply, as its class (:func:`~symphony.protocol.error_for_code`).
        ConnectionClosedError
            The connection closed while waiting.
        """
        return self._require_runtime().call_host(method, params, body, timeout)


class RequestContext:
    """One request as its handler sees it. Create none yourself: the runtime passes it in.

    Attributes
    ----------
    id
        The request id.
    method
        The method name.
    params
        The JSON parameters (``None`` if absent).
    body
        The raw binary body (``b""`` if absent).
    deadline
        ``time.monotonic()`` value after which the caller has given up, or ``None``.
    """

    def __init__(
        self,
        runtime: ExtensionRuntime,
        call: _Call,
        method: str,
        params: Any,
        body: bytes,
        deadline: float | None,
    ) -> None:
        self._runtime = runtime
        self._call = call
        self.id = call.id
        self.method = method
        self.params = params
        self.body = body
        self.deadline = deadline

    @property
    def cancelled(self) -> bool:
        """Whether the caller cancelled the request or its deadline passed."""
        self._runtime.service_pings()
        return self._call.cancelled or self._expired()

    @property
    def streaming(self) -> bool:
        """Whether the caller accepts stream items (it sent an initial credit)."""
        return self._call.window is not None

    def _expired(self) -> bool:
        return self.deadline is not None and time.monotonic() >= self.deadline

    def remaining(self) -> float | None:
        """Seconds left before the deadline (may be negative), or ``None`` without one."""
        return None if self.deadline is None else self.deadline - time.monotonic()

    def check_cancelled(self) -> None:
        """Raise if the request was cancelled or timed out; answers pending pings first.

        Raises
        ------
        RequestCancelledError
            The caller sent ``cancel`` (answered with ``-32800``).
        DeadlineExceededError
            The deadline passed (answered with ``-32001``).
        """
        self._runtime.check_call(self._call, self.deadline)

    def wait_cancelled(self, timeout: float | None = None) -> bool:
        """Sleep until cancelled, the deadline, or ``timeout``; pings are answered meanwhile.

        Returns
        -------
        bool
            Whether the request is cancelled (or expired).
        """
        return self._runtime.wait_cancelled(self._call, self.deadline, timeout)

    def emit(self, item: Any = None, body: bytes = b"", timeout: float | None = None) -> None:
        """Send one stream item, waiting for credit first.

        Parameters
        ----------
        item
            A JSON value.
        body
            Raw bytes (e.g. a chunk of tokens or a file slice).
        timeout
            Longest wait for credit in seconds; ``None`` waits until credit, cancel or deadline.

        Raises
        ------
        RequestError
            The caller sent the request without ``credit`` (it does not accept a stream).
        RequestCancelledError, DeadlineExceededError
            While waiting or before sending.
        TimeoutError
            No credit within ``timeout``.
        """
        self._runtime.emit(self._call, self.deadline, item, body, timeout)

    def progress(
        self, title: str, message: str | None = None, percentage: float | None = None
    ) -> ProgressReporter:
        """Begin reporting progress of this request; use as a context manager or call ``end``."""
        return ProgressReporter(self._runtime, self.id, title, message, percentage)

    def log(self, level: LogLevel, message: str, **fields: Any) -> None:
        """Send a structured log record tied to this request (rate-limited)."""
        self._runtime.logger.log(level, message, fields=fields, request=self.id)

    def notify(self, method: str, params: Any = None, body: bytes = b"") -> None:
        """Send a notification to the host."""
        self._runtime.notify(method, params, body)

    def call(
        self, method: str, params: Any = None, body: bytes = b"", timeout: float | None = None
    ) -> Reply:
        """Send a request to the host and wait, like :meth:`Extension.call`.

        A ``cancel`` of this request also abandons the wait (raising ``RequestCancelledError``),
        and so does its deadline (raising ``DeadlineExceededError``).
        """
        return self._runtime.call_host(method, params, body, timeout, self._call, self.deadline)


class ProgressReporter:
    """Progress of one request: ``begin`` on creation, then :meth:`report`, then :meth:`end`."""

    def __init__(
        self,
        runtime: ExtensionRuntime,
        request_id: int,
        title: str,
        message: str | None,
        percentage: float | None,
    ) -> None:
        self._runtime = runtime
        self._id = request_id
        self._ended = False
        runtime.progress(request_id, "begin", title, message, percentage)

    def report(self, message: str | None = None, percentage: float | None = None) -> None:
        """Report intermediate progress (``percentage`` in 0…100)."""
        if self._ended:
            raise RuntimeError("progress already ended")
        self._runtime.progress(self._id, "report", None, message, percentage)

    def end(self, message: str | None = None) -> None:
        """End the progress (idempotent)."""
        if not self._ended:
            self._ended = True
            self._runtime.progress(self._id, "end", None, message, None)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.end()


__all__ = [
    "Extension",
    "MethodSpec",
    "NotificationHandler",
    "ProgressReporter",
    "Reply",
    "RequestContext",
    "RequestHandler",
]
