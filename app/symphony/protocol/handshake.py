r"""The authenticated, versioned handshake: challenge → hello → welcome (sans-I/O).

1. The host writes a fresh 256-bit token to the child's stdin (:func:`write_token`; never argv or
   the environment) and sends :class:`~symphony.protocol.messages.Challenge` with a fresh 256-bit
   nonce and its protocol range.
2. The child answers :class:`~symphony.protocol.messages.Hello`: its protocol range, id, version,
   capabilities, limits, its own nonce, and ``mac = HMAC-SHA256(token, "symphony-ipc hello v1\0"
   ‖ canonical(challenge) ‖ canonical(hello without mac))``. The MAC binds the token to this
   connection's host nonce, so a hello recorded from any other connection fails.
3. The host verifies (``compare_digest``), picks the highest common version and the limits,
   and answers :class:`~symphony.protocol.messages.Welcome` whose ``mac = HMAC-SHA256(token,
   "symphony-ipc welcome v1\0" ‖ hello.mac ‖ canonical(welcome without mac))`` proves the host
   knows the token too; or an ``error`` frame with id ``null`` (``-32005`` unauthorized,
   ``-32006`` incompatible protocol: both fatal, do not restart) and closes.

:class:`HostHandshake` and :class:`ChildHandshake` hold the state of each side; both are single-use.
"""

from __future__ import annotations

import os
from _operator import _compare_digest as compare_digest  # what `hmac.compare_digest` is
from collections.abc import Mapping
from typing import IO, TYPE_CHECKING, Any, Final

from symphony.protocol._record import field, record
from symphony.protocol.codec import DEFAULT_MAX_FRAME, MIN_MAX_FRAME, json_encoder
from symphony.protocol.errors import (
    AuthenticationError,
    HandshakeError,
    IncompatibleProtocolError,
    ProtocolError,
    ProtocolViolation,
    error_for_code,
)
from symphony.protocol.messages import (
    MAX_CREDIT,
    NONCE_SIZE,
    Challenge,
    ErrorResponse,
    Hello,
    Message,
    Welcome,
)

if TYPE_CHECKING:
    from hashlib import sha256 as _sha256
else:  # SHA-256 in C without OpenSSL: `hashlib`/`hmac` load libcrypto, ≈ 3 ms of a child's start
    try:
        from _sha256 import sha256 as _sha256  # CPython ≤ 3.11
    except ImportError:  # pragma: no cover - other Pythons
        try:
            from _sha2 import sha256 as _sha256  # 3.12+
        except ImportError:
            from hashlib import sha256 as _sha256

#: The protocol version this code speaks best.
PROTOCOL_VERSION: Final = 1
#: The range of versions this code can speak.
SUPPORTED_PROTOCOLS: Final = (1, 1)
#: Bytes of the per-launch token.
TOKEN_SIZE: Final = 32

DEFAULT_STREAM_WINDOW: Final = 32
DEFAULT_MAX_PENDING: Final = 256
DEFAULT_LOG_RATE: Final = 50
DEFAULT_LOG_BURST: Final = 200

_HELLO_LABEL = b"symphony-ipc hello v1\x00"
_WELCOME_LABEL = b"symphony-ipc welcome v1\x00"


def new_token() -> bytes:
    """Return a fresh 256-bit launch token (``os.urandom``, what ``secrets.token_bytes`` uses)."""
    return os.urandom(TOKEN_SIZE)


def write_token(stream: IO[bytes], token: bytes) -> None:
    """Write the launch token to the child's stdin: 64 lowercase hex digits and a newline.

    Parameters
    ----------
    stream
        The child's stdin pipe (binary); flushed, not closed.
    token
        The :data:`TOKEN_SIZE`-byte token.
    """
    if len(token) != TOKEN_SIZE:
        raise ValueError(f"the token must be {TOKEN_SIZE} bytes")
    stream.write(token.hex().encode("ascii") + b"\n")
    stream.flush()


def read_token(stream: IO[bytes]) -> bytes:
    """Read the launch token the host wrote to stdin.

    Parameters
    ----------
    stream
        The child's binary stdin.

    Returns
    -------
    bytes
        The :data:`TOKEN_SIZE`-byte token.

    Raises
    ------
    AuthenticationError
        If stdin does not start with a well-formed token line.
    """
    line = stream.readline(2 * TOKEN_SIZE + 2).rstrip(b"\r\n")
    try:
        if len(line) != 2 * TOKEN_SIZE:
            raise ValueError
        return bytes.fromhex(line.decode("ascii"))
    except ValueError:
        raise AuthenticationError("no launch token on stdin") from None


_BLOCK: Final = 64  # SHA-256's block size
_IPAD: Final = bytes(b ^ 0x36 for b in range(256))
_OPAD: Final = bytes(b ^ 0x5C for b in range(256))


def hmac_sha256(key: bytes, message: bytes) -> bytes:
    """Return HMAC-SHA256 of ``message`` under ``key`` (RFC 2104; as ``hmac.new(…).digest()``).

    Written out (five lines) so a child's start does not import ``hashlib``/``hmac``; tested
    against the standard library and RFC 4231's vectors.
    """
    if len(key) > _BLOCK:
        key = _sha256(key).digest()
    key = key.ljust(_BLOCK, b"\0")
    inner = _sha256(key.translate(_IPAD))
    inner.update(message)
    mac: bytes = _sha256(key.translate(_OPAD) + inner.digest()).digest()
    return mac


_canonical_json = json_encoder(sort_keys=True, ensure_ascii=True)


def canonical(obj: Any) -> bytes:
    """Serialise ``obj`` canonically (sorted keys, no spaces, ASCII) for MAC transcripts."""
    return _canonical_json(obj).encode("ascii")


def hello_mac(token: bytes, challenge: Challenge, hello: Hello) -> bytes:
    """Compute the MAC of ``hello`` answering ``challenge`` (HMAC-SHA256 keyed by the token)."""
    transcript = _HELLO_LABEL + canonical(challenge.header()) + canonical(hello.signed_fields())
    return hmac_sha256(token, transcript)


def welcome_mac(token: bytes, hello_mac_: bytes, welcome: Welcome) -> bytes:
    """Compute the MAC of ``welcome``, chained to the hello's MAC."""
    transcript = _WELCOME_LABEL + hello_mac_ + canonical(welcome.signed_fields())
    return hmac_sha256(token, transcript)


@record(frozen=True)
class Session:
    """What both sides agreed on; identical on host and child after a successful handshake.

    Attributes
    ----------
    protocol
        The chosen protocol version.
    extension_id, extension_version
        As the child announced them.
    limits
        ``max_frame`` (bytes, both directions), ``stream_window`` (default initial credit),
        ``max_pending`` (requests queued in the child), ``log_rate`` (records per second) and
        ``log_burst``.
    extension_capabilities
        What the child announced (``methods`` with ``idempotent``/``stream`` flags, …).
    host_capabilities
        What the host announced.
    """

    protocol: int
    extension_id: str
    extension_version: str
    limits: Mapping[str, int]
    extension_capabilities: Mapping[str, Any] = field(default_factory=dict)
    host_capabilities: Mapping[str, Any] = field(default_factory=dict)

    @property
    def max_frame(self) -> int:
        """The negotiated maximum frame length."""
        return self.limits["max_frame"]


def _check_token(token: bytes) -> bytes:
    if len(token) != TOKEN_SIZE:
        raise ValueError(f"the token must be {TOKEN_SIZE} bytes")
    return bytes(token)


class HostHandshake:
    """The host's side of one handshake.

    Parameters
    ----------
    token
        The launch token written to this child's stdin.
    protocols
        The ``(min, max)`` protocol versions the host speaks.
    max_frame
        The host's maximum frame for this extension (the per-extension override).
    limits
        Overrides of ``stream_window``, ``max_pending``, ``log_rate``, ``log_burst``.
    capabilities
        What the host offers, sent in ``welcome``.
    """

    def __init__(
        self,
        token: bytes,
        *,
        protocols: tuple[int, int] = SUPPORTED_PROTOCOLS,
        max_frame: int = DEFAULT_MAX_FRAME,
        limits: Mapping[str, int] | None = None,
        capabilities: Mapping[str, Any] | None = None,
    ) -> None:
        self._token = _check_token(token)
        self._protocols = protocols
        self._max_frame = max(MIN_MAX_FRAME, max_frame)
        self._limits = {
            "stream_window": DEFAULT_STREAM_WINDOW,
            "max_pending": DEFAULT_MAX_PENDING,
            "log_rate": DEFAULT_LOG_RATE,
            "log_burst": DEFAULT_LOG_BURST,
            **(limits or {}),
        }
        self._capabilities = dict(capabilities or {})
        self._challenge = Challenge(os.urandom(NONCE_SIZE), *protocols)
        self._done = False
        self.session: Session | None = None

    def challenge(self) -> Challenge:
        """Return the first frame to send: this connection's fresh nonce and protocol range."""
        return self._challenge

    def accept(self, hello: Message) -> Welcome:
        """Verify the child's ``hello`` and build the ``welcome`` answer.

        Parameters
        ----------
        hello
            The first message received from the child.

        Returns
        -------
        Welcome
            The frame to send; :attr:`session` is set.

        Raises
        ------
        AuthenticationError
            The MAC does not verify (wrong token, a hello replayed from another connection).
        IncompatibleProtocolError
            No common protocol version (fatal: do not restart).
        ProtocolViolation
            Not a hello, or a second one.

        Notes
        -----
        On an error, send :meth:`reject` of it and close the connection.
        """
        if self._done:
            raise ProtocolViolation("handshake already completed")
        self._done = True
        if not isinstance(hello, Hello):
            raise ProtocolViolation(f"expected hello, got {type(hello).__name__}")
        expected = hello_mac(self._token, self._challenge, hello)
        if not compare_digest(expected, hello.mac):
            raise AuthenticationError("hello MAC does not verify (wrong token or replayed hello)")
        lo = max(self._protocols[0], hello.protocol_min)
        hi = min(self._protocols[1], hello.protocol_max)
        if lo > hi:
            raise IncompatibleProtocolError(
                f"no common protocol version: host speaks {self._protocols[0]}..."
                f"{self._protocols[1]}, extension {hello.protocol_min}...{hello.protocol_max}",
                data={
                    "host": list(self._protocols),
                    "extension": [hello.protocol_min, hello.protocol_max],
                },
            )
        limits = dict(self._limits)
        child_frame = hello.limits.get("max_frame", DEFAULT_MAX_FRAME)
        limits["max_frame"] = max(MIN_MAX_FRAME, min(self._max_frame, child_frame))
        if "max_pending" in hello.limits:
            limits["max_pending"] = max(1, min(limits["max_pending"], hello.limits["max_pending"]))
        limits["stream_window"] = max(1, min(limits["stream_window"], MAX_CREDIT))
        welcome = Welcome(hi, self._capabilities, limits)
        mac = welcome_mac(self._token, hello.mac, welcome)
        welcome = Welcome(hi, self._capabilities, limits, mac)
        self.session = Session(
            hi,
            hello.extension_id,
            hello.extension_version,
            limits,
            hello.capabilities,
            self._capabilities,
        )
        return welcome

    @staticmethod
    def reject(error: ProtocolError) -> ErrorResponse:
        """Return the connection-level ``error`` frame (id ``null``) that reports ``error``."""
        return ErrorResponse(None, error.code, error.message, error.data)


class ChildHandshake:
    """The child's side of one handshake.

    Parameters
    ----------
    token
        The launch token read from stdin.
    extension_id, extension_version
        Who this extension is.
    capabilities
        What it offers (the SDK sends ``{"methods": {name: {"idempotent": …, "stream": …}}}``).
    protocols
        The ``(min, max)`` protocol versions the child speaks.
    max_frame
        The largest frame the child accepts.
    max_pending
        How many requests the child queues before refusing with ``-32004``.
    """

    def __init__(
        self,
        token: bytes,
        extension_id: str,
        extension_version: str,
        *,
        capabilities: Mapping[str, Any] | None = None,
        protocols: tuple[int, int] = SUPPORTED_PROTOCOLS,
        max_frame: int = DEFAULT_MAX_FRAME,
        max_pending: int = DEFAULT_MAX_PENDING,
    ) -> None:
        self._token = _check_token(token)
        self._id = extension_id
        self._version = extension_version
        self._capabilities = dict(capabilities or {})
        self._protocols = protocols
        self._limits = {"max_frame": max_frame, "max_pending": max_pending}
        self._hello: Hello | None = None
        self.session: Session | None = None

    def hello(self, challenge: Message) -> Hello:
        """Answer the host's challenge.

        The hello is sent even when the ranges do not overlap, so the host can report the fatal
        ``-32006`` itself.

        Raises
        ------
        ProtocolViolation
            If ``challenge`` is not a challenge, or a hello was already made.
        """
        if self._hello is not None:
            raise ProtocolViolation("hello already sent")
        if not isinstance(challenge, Challenge):
            raise ProtocolViolation(f"expected challenge, got {type(challenge).__name__}")
        unsigned = Hello(
            self._protocols[0],
            self._protocols[1],
            self._id,
            self._version,
            self._capabilities,
            self._limits,
            os.urandom(NONCE_SIZE),
        )
        mac = hello_mac(self._token, challenge, unsigned)
        self._hello = Hello(
            unsigned.protocol_min,
            unsigned.protocol_max,
            self._id,
            self._version,
            self._capabilities,
            self._limits,
            unsigned.nonce,
            mac,
        )
        return self._hello

    def finish(self, reply: Message) -> Session:
        """Check the host's answer to the hello.

        Returns
        -------
        Session
            The agreed session (also kept in :attr:`session`).

        Raises
        ------
        ProtocolError
            The host's error frame as its class (:class:`IncompatibleProtocolError`,
            :class:`AuthenticationError`, …).
        AuthenticationError
            The welcome's MAC does not verify: the peer does not know the token.
        IncompatibleProtocolError
            The host chose a version outside the child's range.
        """
        if self._hello is None or self.session is not None:
            raise ProtocolViolation("unexpected handshake reply")
        if isinstance(reply, ErrorResponse):
            raise error_for_code(reply.code, reply.message, reply.data)
        if not isinstance(reply, Welcome):
            raise ProtocolViolation(f"expected welcome, got {type(reply).__name__}")
        expected = welcome_mac(self._token, self._hello.mac, reply)
        if not compare_digest(expected, reply.mac):
            raise AuthenticationError("welcome MAC does not verify")
        if not self._protocols[0] <= reply.protocol <= self._protocols[1]:
            raise IncompatibleProtocolError(
                f"host chose protocol {reply.protocol}, outside {self._protocols}"
            )
        limits = dict(reply.limits)
        if not MIN_MAX_FRAME <= limits.get("max_frame", 0) <= self._limits["max_frame"]:
            raise HandshakeError(f"host chose max_frame {limits.get('max_frame')} out of range")
        for k, v in (
            ("stream_window", DEFAULT_STREAM_WINDOW),
            ("max_pending", DEFAULT_MAX_PENDING),
            ("log_rate", DEFAULT_LOG_RATE),
            ("log_burst", DEFAULT_LOG_BURST),
        ):
            limits.setdefault(k, v)
        self.session = Session(
            reply.protocol,
            self._id,
            self._version,
            limits,
            self._capabilities,
            reply.capabilities,
        )
        return self.session


__all__ = [
    "DEFAULT_LOG_BURST",
    "DEFAULT_LOG_RATE",
    "DEFAULT_MAX_PENDING",
    "DEFAULT_STREAM_WINDOW",
    "PROTOCOL_VERSION",
    "SUPPORTED_PROTOCOLS",
    "TOKEN_SIZE",
    "ChildHandshake",
    "HostHandshake",
    "Session",
    "canonical",
    "hello_mac",
    "new_token",
    "read_token",
    "welcome_mac",
    "write_token",
]
