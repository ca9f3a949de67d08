r"""The wire protocol between Symphony and its extension processes. No Qt, no I/O of its own.

>>> from symphony.protocol import FrameDecoder, Request, encode
>>> frame = encode(Request(1, "echo", {"text": "hi"}, body=bytes(3)))
>>> [msg] = FrameDecoder().feed(frame)
>>> msg.method, msg.params, msg.body
('echo', {'text': 'hi'}, b'\x00\x00\x00')

Modules: :mod:`~symphony.protocol.messages` (one dataclass per frame type),
:mod:`~symphony.protocol.codec` (framing and the incremental decoder),
:mod:`~symphony.protocol.handshake` (token, challenge/hello/welcome, version negotiation),
:mod:`~symphony.protocol.flow` (stream credit, log token bucket),
:mod:`~symphony.protocol.channel` (a blocking socket channel), :mod:`~symphony.protocol.errors`.
The format is written down in ``docs/protocol.md``.
"""

from __future__ import annotations

from symphony.protocol.channel import SocketChannel
from symphony.protocol.codec import (
    ABSOLUTE_MAX_FRAME,
    DEFAULT_MAX_FRAME,
    HANDSHAKE_MAX_FRAME,
    MIN_MAX_FRAME,
    FrameDecoder,
    decode_frame,
    encode,
)
from symphony.protocol.errors import *  # noqa: F403  (the errors are part of this package's API)
from symphony.protocol.errors import __all__ as _errors_all
from symphony.protocol.flow import CreditGranter, CreditWindow, TokenBucket
from symphony.protocol.handshake import (
    PROTOCOL_VERSION,
    SUPPORTED_PROTOCOLS,
    TOKEN_SIZE,
    ChildHandshake,
    HostHandshake,
    Session,
    new_token,
    read_token,
    write_token,
)
from symphony.protocol.messages import (
    MAX_CREDIT,
    MAX_ID,
    Cancel,
    Challenge,
    Credit,
    ErrorResponse,
    Exit,
    FrameType,
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
    Welcome,
)

__all__ = [
    "ABSOLUTE_MAX_FRAME",
    "DEFAULT_MAX_FRAME",
    "HANDSHAKE_MAX_FRAME",
    "MAX_CREDIT",
    "MAX_ID",
    "MIN_MAX_FRAME",
    "PROTOCOL_VERSION",
    "SUPPORTED_PROTOCOLS",
    "TOKEN_SIZE",
    "Cancel",
    "Challenge",
    "ChildHandshake",
    "Credit",
    "CreditGranter",
    "CreditWindow",
    "ErrorResponse",
    "Exit",
    "FrameDecoder",
    "FrameType",
    "Hello",
    "HostHandshake",
    "Log",
    "Message",
    "Notification",
    "Ping",
    "Pong",
    "Progress",
    "Request",
    "Response",
    "Session",
    "Shutdown",
    "SocketChannel",
    "StreamData",
    "TokenBucket",
    "Welcome",
    "decode_frame",
    "encode",
    "new_token",
    "read_token",
    "write_token",
    *_errors_all,
]
