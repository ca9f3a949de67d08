"""Error codes and exceptions of the extension protocol.

Codes follow JSON-RPC 2.0 (``-32700`` … ``-32603``) plus Symphony's own in the JSON-RPC server range
(``-32000`` … ``-32099``) and LSP's ``RequestCancelled`` (``-32800``). The table is written down in
``docs/protocol.md``; :func:`error_for_code` turns a received error back into the matching class.

Every exception carries ``code`` (an :class:`ErrorCode` or an extension-defined integer), the
message, and ``data`` (any JSON value or ``None``) for the error response.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Any


class ErrorCode(IntEnum):
    """Error codes carried by ``error`` frames.

    Codes not listed here are allowed: an extension may use any integer outside
    ``-32899 … -32000`` and ``-32768 … -32600`` for its own errors.
    """

    PARSE_ERROR = -32700
    INVALID_REQUEST = -32600
    METHOD_NOT_FOUND = -32601
    INVALID_PARAMS = -32602
    INTERNAL_ERROR = -32603
    REQUEST_FAILED = -32000
    DEADLINE_EXCEEDED = -32001
    EXTENSION_CRASHED = -32002
    PROTOCOL_VIOLATION = -32003
    RESOURCE_LIMIT = -32004
    UNAUTHORIZED = -32005
    INCOMPATIBLE_PROTOCOL = -32006
    SHUTTING_DOWN = -32007
    REQUEST_CANCELLED = -32800


#: Codes after which the host must not restart the extension (a restart would fail the same way).
FATAL_CODES = frozenset({ErrorCode.UNAUTHORIZED, ErrorCode.INCOMPATIBLE_PROTOCOL})


def is_fatal(code: int) -> bool:
    """Tell whether an error code means "do not restart this extension".

    Parameters
    ----------
    code
        The code of an error frame (or of a :class:`ProtocolError`).

    Returns
    -------
    bool
        ``True`` for :attr:`ErrorCode.UNAUTHORIZED` and :attr:`ErrorCode.INCOMPATIBLE_PROTOCOL`.
    """
    return code in FATAL_CODES


class ProtocolError(Exception):
    """Base of every protocol error; also raised for a remote error with an unknown code.

    Parameters
    ----------
    message
        What went wrong.
    code
        The wire code; defaults to the class's :attr:`default_code`.
    data
        Extra JSON-serialisable detail for the peer, or ``None``.
    """

    default_code: int = ErrorCode.REQUEST_FAILED
    code: int
    data: Any

    def __init__(self, message: str, code: int | None = None, data: Any = None) -> None:
        super().__init__(message)
        self.code = self.default_code if code is None else int(code)
        self.data = data

    @property
    def message(self) -> str:
        """The message given at construction."""
        return str(self.args[0]) if self.args else ""

    @property
    def fatal(self) -> bool:
        """Whether the host must not restart the extension after this error."""
        return is_fatal(self.code)

    def __reduce__(self) -> tuple[type[ProtocolError], tuple[str, int, Any]]:
        return (type(self), (self.message, self.code, self.data))


class RequestError(ProtocolError):
    """A handler failed in a way it wants the caller to see (code ``-32000`` unless given)."""


class ProtocolViolation(ProtocolError):
    """The peer broke the protocol: a malformed or oversized frame, a message out of place.

    The connection cannot be trusted afterwards and is closed.
    """

    default_code = ErrorCode.PROTOCOL_VIOLATION


class ResourceLimitError(ProtocolError):
    """A negotiated limit would be exceeded (frame size, pending requests, credit)."""

    default_code = ErrorCode.RESOURCE_LIMIT


class HandshakeError(ProtocolError):
    """The hello/welcome exchange failed."""

    default_code = ErrorCode.PROTOCOL_VIOLATION


class AuthenticationError(HandshakeError):
    """The ``hello`` or ``welcome`` MAC did not verify (wrong token, replayed or forged hello)."""

    default_code = ErrorCode.UNAUTHORIZED


class IncompatibleProtocolError(HandshakeError):
    """The two sides share no protocol version. Fatal: restarting would fail the same way."""

    default_code = ErrorCode.INCOMPATIBLE_PROTOCOL


class MethodNotFoundError(ProtocolError):
    """No handler is registered for the method."""

    default_code = ErrorCode.METHOD_NOT_FOUND


class InvalidParamsError(ProtocolError):
    """The parameters do not fit the method."""

    default_code = ErrorCode.INVALID_PARAMS


class InternalError(ProtocolError):
    """A handler raised an unexpected exception; ``data`` names its type."""

    default_code = ErrorCode.INTERNAL_ERROR


class RequestCancelledError(ProtocolError):
    """The request was cancelled by its caller."""

    default_code = ErrorCode.REQUEST_CANCELLED


class DeadlineExceededError(ProtocolError, TimeoutError):
    """The request's deadline passed before it completed."""

    default_code = ErrorCode.DEADLINE_EXCEEDED


class ExtensionCrashedError(ProtocolError):
    """The extension process died with the request in flight (synthesised by the host)."""

    default_code = ErrorCode.EXTENSION_CRASHED


class ShuttingDownError(ProtocolError):
    """The peer is shutting down and takes no new requests."""

    default_code = ErrorCode.SHUTTING_DOWN


class ConnectionClosedError(ProtocolError, ConnectionError):
    """The connection closed (end of stream) while a reply was still expected."""

    default_code = ErrorCode.EXTENSION_CRASHED


_BY_CODE: dict[int, type[ProtocolError]] = {
    ErrorCode.PARSE_ERROR: ProtocolViolation,
    ErrorCode.INVALID_REQUEST: ProtocolViolation,
    ErrorCode.METHOD_NOT_FOUND: MethodNotFoundError,
    ErrorCode.INVALID_PARAMS: InvalidParamsError,
    ErrorCode.INTERNAL_ERROR: InternalError,
    ErrorCode.REQUEST_FAILED: RequestError,
    ErrorCode.DEADLINE_EXCEEDED: DeadlineExceededError,
    ErrorCode.EXTENSION_CRASHED: ExtensionCrashedError,
    ErrorCode.PROTOCOL_VIOLATION: ProtocolViolation,
    ErrorCode.RESOURCE_LIMIT: ResourceLimitError,
    ErrorCode.UNAUTHORIZED: AuthenticationError,
    ErrorCode.INCOMPATIBLE_PROTOCOL: IncompatibleProtocolError,
    ErrorCode.SHUTTING_DOWN: ShuttingDownError,
    ErrorCode.REQUEST_CANCELLED: RequestCancelledError,
}


def error_for_code(code: int, message: str, data: Any = None) -> ProtocolError:
    """Build the exception matching a received error code.

    Parameters
    ----------
    code
        The ``code`` of an error frame.
    message
        Its ``message``.
    data
        Its ``data``.

    Returns
    -------
    ProtocolError
        An instance of the class registered for ``code``, :class:`RequestError` for any other.
    """
    cls = _BY_CODE.get(code, RequestError)
    return cls(message, code, data)


__all__ = [
    "FATAL_CODES",
    "AuthenticationError",
    "ConnectionClosedError",
    "DeadlineExceededError",
    "ErrorCode",
    "ExtensionCrashedError",
    "HandshakeError",
    "IncompatibleProtocolError",
    "InternalError",
    "InvalidParamsError",
    "MethodNotFoundError",
    "ProtocolError",
    "ProtocolViolation",
    "RequestCancelledError",
    "RequestError",
    "ResourceLimitError",
    "ShuttingDownError",
    "error_for_code",
    "is_fatal",
]
