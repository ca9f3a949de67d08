"""The messages of the extension protocol, one frozen dataclass per frame type.

Each message knows its :class:`FrameType`, turns itself into a JSON header (:meth:`Message.header`)
plus an optional raw binary ``body``, and is rebuilt from a received header by
:func:`message_from_header`, which validates every field and raises
:class:`~symphony.protocol.errors.ProtocolViolation` for anything out of place.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Any, ClassVar, Literal

from symphony.protocol._record import field, record
from symphony.protocol.errors import ProtocolViolation

#: Largest id (request, ping, stream) either side may use: exact in a JSON double.
MAX_ID = (1 << 53) - 1
#: Largest credit grant or outstanding credit on one stream.
MAX_CREDIT = 1 << 20
#: Protocol versions are small positive integers.
MAX_VERSION = 0xFFFF

ProgressKind = Literal["begin", "report", "end"]
LogLevel = Literal["debug", "info", "warning", "error"]
PROGRESS_KINDS: tuple[ProgressKind, ...] = ("begin", "report", "end")
LOG_LEVELS: tuple[LogLevel, ...] = ("debug", "info", "warning", "error")


class FrameType(IntEnum):
    """The ``u8`` frame type that follows the length prefix."""

    CHALLENGE = 1
    HELLO = 2
    WELCOME = 3
    REQUEST = 4
    RESPONSE = 5
    ERROR = 6
    NOTIFICATION = 7
    CANCEL = 8
    PROGRESS = 9
    STREAM_DATA = 10
    CREDIT = 11
    PING = 12
    PONG = 13
    SHUTDOWN = 14
    EXIT = 15
    LOG = 16


class Message:
    """Base of every message: a frame type, a JSON header and a binary body."""

    __slots__ = ()
    FRAME_TYPE: ClassVar[FrameType]

    @property
    def payload(self) -> bytes:
        """The raw binary body sent after the header (empty unless the message carries one)."""
        return b""

    def header(self) -> dict[str, Any]:
        """Return the JSON header of this message.

        Returns
        -------
        dict
            A JSON-serialisable mapping; see ``docs/protocol.md`` for the keys of each type.
        """
        raise NotImplementedError


# --- handshake --------------------------------------------------------------------------------


@record(frozen=True)
class Challenge(Message):
    """Host → child, first frame: the host's fresh nonce and its protocol range."""

    FRAME_TYPE: ClassVar[FrameType] = FrameType.CHALLENGE
    nonce: bytes
    protocol_min: int
    protocol_max: int

    def header(self) -> dict[str, Any]:  # noqa: D102
        return {"nonce": self.nonce.hex(), "protocol": [self.protocol_min, self.protocol_max]}


@record(frozen=True)
class Hello(Message):
    """Child → host: who the extension is, what it offers, and the MAC proving the token."""

    FRAME_TYPE: ClassVar[FrameType] = FrameType.HELLO
    protocol_min: int
    protocol_max: int
    extension_id: str
    extension_version: str
    capabilities: dict[str, Any]
    limits: dict[str, int]
    nonce: bytes
    mac: bytes = b""

    def header(self) -> dict[str, Any]:  # noqa: D102
        h = self.signed_fields()
        h["mac"] = self.mac.hex()
        return h

    def signed_fields(self) -> dict[str, Any]:
        """Return the header without ``mac``: the part the MAC covers."""
        return {
            "protocol": [self.protocol_min, self.protocol_max],
            "extension": {"id": self.extension_id, "version": self.extension_version},
            "capabilities": self.capabilities,
            "limits": self.limits,
            "nonce": self.nonce.hex(),
        }


@record(frozen=True)
class Welcome(Message):
    """Host → child: the chosen protocol version, the negotiated limits, the host's own MAC."""

    FRAME_TYPE: ClassVar[FrameType] = FrameType.WELCOME
    protocol: int
    capabilities: dict[str, Any]
    limits: dict[str, int]
    mac: bytes = b""

    def header(self) -> dict[str, Any]:  # noqa: D102
        h = self.signed_fields()
        h["mac"] = self.mac.hex()
        return h

    def signed_fields(self) -> dict[str, Any]:
        """Return the header without ``mac``: the part the MAC covers."""
        return {
            "protocol": self.protocol,
            "capabilities": self.capabilities,
            "limits": self.limits,
        }


# --- calls ------------------------------------------------------------------------------------


@record(frozen=True)
class Request(Message):
    """A call expecting exactly one :class:`Response` or :class:`ErrorResponse` with the same id.

    ``credit`` present means the caller accepts a stream of :class:`StreamData` before the final
    response and grants that initial window; ``deadline_ms`` is the caller's time budget.
    """

    FRAME_TYPE: ClassVar[FrameType] = FrameType.REQUEST
    id: int
    method: str
    params: Any = None
    body: bytes = b""
    deadline_ms: int | None = None
    credit: int | None = None

    @property
    def payload(self) -> bytes:  # noqa: D102
        return self.body

    def header(self) -> dict[str, Any]:  # noqa: D102
        h: dict[str, Any] = {"id": self.id, "method": self.method}
        if self.params is not None:
            h["params"] = self.params
        if self.deadline_ms is not None:
            h["deadline_ms"] = self.deadline_ms
        if self.credit is not None:
            h["credit"] = self.credit
        return h


@record(frozen=True)
class Response(Message):
    """The successful end of request ``id`` (and of its stream, if any)."""

    FRAME_TYPE: ClassVar[FrameType] = FrameType.RESPONSE
    id: int
    result: Any = None
    body: bytes = b""

    @property
    def payload(self) -> bytes:  # noqa: D102
        return self.body

    def header(self) -> dict[str, Any]:  # noqa: D102
        h: dict[str, Any] = {"id": self.id}
        if self.result is not None:
            h["result"] = self.result
        return h


@record(frozen=True)
class ErrorResponse(Message):
    """The failed end of request ``id``; ``id`` is ``None`` for a connection-level error."""

    FRAME_TYPE: ClassVar[FrameType] = FrameType.ERROR
    id: int | None
    code: int
    message: str
    data: Any = None

    def header(self) -> dict[str, Any]:  # noqa: D102
        err: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.data is not None:
            err["data"] = self.data
        return {"id": self.id, "error": err}


@record(frozen=True)
class Notification(Message):
    """A one-way message; no reply."""

    FRAME_TYPE: ClassVar[FrameType] = FrameType.NOTIFICATION
    method: str
    params: Any = None
    body: bytes = b""

    @property
    def payload(self) -> bytes:  # noqa: D102
        return self.body

    def header(self) -> dict[str, Any]:  # noqa: D102
        h: dict[str, Any] = {"method": self.method}
        if self.params is not None:
            h["params"] = self.params
        return h


@record(frozen=True)
class Cancel(Message):
    """The caller no longer wants request ``id``; the callee still answers it (usually -32800)."""

    FRAME_TYPE: ClassVar[FrameType] = FrameType.CANCEL
    id: int

    def header(self) -> dict[str, Any]:  # noqa: D102
        return {"id": self.id}


@record(frozen=True)
class Progress(Message):
    """Progress of request ``id``: one ``begin``, any ``report``, one ``end``."""

    FRAME_TYPE: ClassVar[FrameType] = FrameType.PROGRESS
    id: int
    kind: ProgressKind
    title: str | None = None
    message: str | None = None
    percentage: float | None = None

    def header(self) -> dict[str, Any]:  # noqa: D102
        h: dict[str, Any] = {"id": self.id, "kind": self.kind}
        if self.title is not None:
            h["title"] = self.title
        if self.message is not None:
            h["message"] = self.message
        if self.percentage is not None:
            h["percentage"] = self.percentage
        return h


@record(frozen=True)
class StreamData(Message):
    """One item of request ``id``'s stream; costs one credit. ``seq`` counts from 0."""

    FRAME_TYPE: ClassVar[FrameType] = FrameType.STREAM_DATA
    id: int
    seq: int
    item: Any = None
    body: bytes = b""

    @property
    def payload(self) -> bytes:  # noqa: D102
        return self.body

    def header(self) -> dict[str, Any]:  # noqa: D102
        h: dict[str, Any] = {"id": self.id, "seq": self.seq}
        if self.item is not None:
            h["item"] = self.item
        return h


@record(frozen=True)
class Credit(Message):
    """The stream's receiver allows ``grant`` more items of request ``id``'s stream."""

    FRAME_TYPE: ClassVar[FrameType] = FrameType.CREDIT
    id: int
    grant: int

    def header(self) -> dict[str, Any]:  # noqa: D102
        return {"id": self.id, "grant": self.grant}


# --- liveness and lifecycle -------------------------------------------------------------------


@record(frozen=True)
class Ping(Message):
    """Liveness probe; the child answers :class:`Pong` from the thread that runs handlers."""

    FRAME_TYPE: ClassVar[FrameType] = FrameType.PING
    id: int

    def header(self) -> dict[str, Any]:  # noqa: D102
        return {"id": self.id}


@record(frozen=True)
class Pong(Message):
    """Answer to :class:`Ping` ``id``."""

    FRAME_TYPE: ClassVar[FrameType] = FrameType.PONG
    id: int

    def header(self) -> dict[str, Any]:  # noqa: D102
        return {"id": self.id}


@record(frozen=True)
class Shutdown(Message):
    """Host → child: finish queued work, take no new requests, then answer ``Response(id)``."""

    FRAME_TYPE: ClassVar[FrameType] = FrameType.SHUTDOWN
    id: int

    def header(self) -> dict[str, Any]:  # noqa: D102
        return {"id": self.id}


@record(frozen=True)
class Exit(Message):
    """Host → child: close the connection and exit the process (code 0 after a shutdown)."""

    FRAME_TYPE: ClassVar[FrameType] = FrameType.EXIT

    def header(self) -> dict[str, Any]:  # noqa: D102
        return {}


@record(frozen=True)
class Log(Message):
    """Child → host structured log record; ``dropped`` counts records rate-limited before it."""

    FRAME_TYPE: ClassVar[FrameType] = FrameType.LOG
    level: LogLevel
    message: str
    logger: str = ""
    fields: dict[str, Any] = field(default_factory=dict)
    dropped: int = 0
    request: int | None = None

    def header(self) -> dict[str, Any]:  # noqa: D102
        h: dict[str, Any] = {"level": self.level, "message": self.message}
        if self.logger:
            h["logger"] = self.logger
        if self.fields:
            h["fields"] = self.fields
        if self.dropped:
            h["dropped"] = self.dropped
        if self.request is not None:
            h["request"] = self.request
        return h


# --- decoding ---------------------------------------------------------------------------------


def _int(h: dict[str, Any], key: str, lo: int = 0, hi: int = MAX_ID) -> int:
    v = h.get(key)
    if type(v) is not int or not lo <= v <= hi:
        raise ProtocolViolation(f"{key!r} must be an integer in [{lo}, {hi}], got {v!r:.40}")
    return v


def _opt_int(h: dict[str, Any], key: str, lo: int = 0, hi: int = MAX_ID) -> int | None:
    return None if h.get(key) is None else _int(h, key, lo, hi)


def _str(h: dict[str, Any], key: str) -> str:
    v = h.get(key)
    if type(v) is not str:
        raise ProtocolViolation(f"{key!r} must be a string, got {v!r:.40}")
    return v


def _opt_str(h: dict[str, Any], key: str) -> str | None:
    return None if h.get(key) is None else _str(h, key)


def _obj(h: dict[str, Any], key: str) -> dict[str, Any]:
    v = h.get(key, {})
    if type(v) is not dict:
        raise ProtocolViolation(f"{key!r} must be an object, got {v!r:.40}")
    return v


def _hex(h: dict[str, Any], key: str, size: int) -> bytes:
    s = _str(h, key)
    if len(s) != 2 * size:
        raise ProtocolViolation(f"{key!r} must be {size} bytes in hex")
    try:
        return bytes.fromhex(s)
    except ValueError:
        raise ProtocolViolation(f"{key!r} must be {size} bytes in hex") from None


def _range(h: dict[str, Any]) -> tuple[int, int]:
    v = h.get("protocol")
    if (
        type(v) is not list
        or len(v) != 2
        or any(type(x) is not int or not 1 <= x <= MAX_VERSION for x in v)
        or v[0] > v[1]
    ):
        raise ProtocolViolation(f"'protocol' must be [min, max] versions, got {v!r:.40}")
    return v[0], v[1]


def _limits(h: dict[str, Any]) -> dict[str, int]:
    lim = _obj(h, "limits")
    for k, v in lim.items():
        if type(v) is not int or v < 0:
            raise ProtocolViolation(f"limit {k!r} must be a non-negative integer")
    return lim


NONCE_SIZE = 32
MAC_SIZE = 32


def _challenge(h: dict[str, Any], body: bytes) -> Message:
    lo, hi = _range(h)
    return Challenge(_hex(h, "nonce", NONCE_SIZE), lo, hi)


def _hello(h: dict[str, Any], body: bytes) -> Message:
    lo, hi = _range(h)
    ext = _obj(h, "extension")
    return Hello(
        lo,
        hi,
        _str(ext, "id"),
        _str(ext, "version"),
        _obj(h, "capabilities"),
        _limits(h),
        _hex(h, "nonce", NONCE_SIZE),
        _hex(h, "mac", MAC_SIZE),
    )


def _welcome(h: dict[str, Any], body: bytes) -> Message:
    return Welcome(
        _int(h, "protocol", 1, MAX_VERSION),
        _obj(h, "capabilities"),
        _limits(h),
        _hex(h, "mac", MAC_SIZE),
    )


def _request(h: dict[str, Any], body: bytes) -> Message:
    return Request(
        _int(h, "id"),
        _str(h, "method"),
        h.get("params"),
        body,
        _opt_int(h, "deadline_ms"),
        _opt_int(h, "credit", 0, MAX_CREDIT),
    )


def _response(h: dict[str, Any], body: bytes) -> Message:
    return Response(_int(h, "id"), h.get("result"), body)


def _error(h: dict[str, Any], body: bytes) -> Message:
    err = h.get("error")
    if type(err) is not dict:
        raise ProtocolViolation("'error' must be an object")
    code = err.get("code")
    if type(code) is not int or not -(1 << 31) <= code < (1 << 31):
        raise ProtocolViolation("'error.code' must be a 32-bit integer")
    return ErrorResponse(_opt_int(h, "id"), code, _str(err, "message"), err.get("data"))


def _notification(h: dict[str, Any], body: bytes) -> Message:
    return Notification(_str(h, "method"), h.get("params"), body)


def _progress(h: dict[str, Any], body: bytes) -> Message:
    kind = h.get("kind")
    if kind not in PROGRESS_KINDS:
        raise ProtocolViolation(f"'kind' must be one of {PROGRESS_KINDS}")
    pct = h.get("percentage")
    if pct is not None and (type(pct) not in (int, float) or not 0 <= pct <= 100):
        raise ProtocolViolation("'percentage' must be a number in [0, 100]")
    return Progress(
        _int(h, "id"),
        kind,
        _opt_str(h, "title"),
        _opt_str(h, "message"),
        None if pct is None else float(pct),
    )


def _stream_data(h: dict[str, Any], body: bytes) -> Message:
    return StreamData(_int(h, "id"), _int(h, "seq"), h.get("item"), body)


def _credit(h: dict[str, Any], body: bytes) -> Message:
    return Credit(_int(h, "id"), _int(h, "grant", 1, MAX_CREDIT))


def _log(h: dict[str, Any], body: bytes) -> Message:
    level = h.get("level")
    if level not in LOG_LEVELS:
        raise ProtocolViolation(f"'level' must be one of {LOG_LEVELS}")
    return Log(
        level,
        _str(h, "message"),
        _opt_str(h, "logger") or "",
        _obj(h, "fields"),
        _opt_int(h, "dropped") or 0,
        _opt_int(h, "request"),
    )


_PARSERS: dict[int, Any] = {
    FrameType.CHALLENGE: _challenge,
    FrameType.HELLO: _hello,
    FrameType.WELCOME: _welcome,
    FrameType.REQUEST: _request,
    FrameType.RESPONSE: _response,
    FrameType.ERROR: _error,
    FrameType.NOTIFICATION: _notification,
    FrameType.CANCEL: lambda h, b: Cancel(_int(h, "id")),
    FrameType.PROGRESS: _progress,
    FrameType.STREAM_DATA: _stream_data,
    FrameType.CREDIT: _credit,
    FrameType.PING: lambda h, b: Ping(_int(h, "id")),
    FrameType.PONG: lambda h, b: Pong(_int(h, "id")),
    FrameType.SHUTDOWN: lambda h, b: Shutdown(_int(h, "id")),
    FrameType.EXIT: lambda h, b: Exit(),
    FrameType.LOG: _log,
}
_BODY_TYPES = frozenset(
    {FrameType.REQUEST, FrameType.RESPONSE, FrameType.NOTIFICATION, FrameType.STREAM_DATA}
)


def message_from_header(frame_type: int, header: dict[str, Any], body: bytes) -> Message:
    """Build and validate the message of one received frame.

    Parameters
    ----------
    frame_type
        The frame's ``u8`` type.
    header
        The decoded JSON header (an object).
    body
        The frame's binary body.

    Returns
    -------
    Message
        The typed message.

    Raises
    ------
    ProtocolViolation
        For an unknown frame type, a missing or mistyped field, or a body on a type without one.
    """
    parser = _PARSERS.get(frame_type)
    if parser is None:
        raise ProtocolViolation(f"unknown frame type {frame_type}")
    if body and frame_type not in _BODY_TYPES:
        raise ProtocolViolation(f"frame type {FrameType(frame_type).name} carries no body")
    msg: Message = parser(header, body)
    return msg


__all__ = [
    "LOG_LEVELS",
    "MAC_SIZE",
    "MAX_CREDIT",
    "MAX_ID",
    "MAX_VERSION",
    "NONCE_SIZE",
    "PROGRESS_KINDS",
    "Cancel",
    "Challenge",
    "Credit",
    "ErrorResponse",
    "Exit",
    "FrameType",
    "Hello",
    "Log",
    "LogLevel",
    "Message",
    "Notification",
    "Ping",
    "Pong",
    "Progress",
    "ProgressKind",
    "Request",
    "Response",
    "Shutdown",
    "StreamData",
    "Welcome",
    "message_from_header",
]
