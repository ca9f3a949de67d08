"""Framing: messages to bytes and an incremental, sans-I/O decoder with a hard size cap.

A frame is::

    u32 LE  length      bytes that follow this field (5 + header length + body length)
    u8      type        a FrameType
    u32 LE  header len  bytes of the JSON header (0 means an empty object)
    ...     header      UTF-8 JSON object
    ...     body        raw binary payload (the rest of the frame; never base64)

:func:`encode` builds one frame; :class:`FrameDecoder` is fed bytes as they arrive (from a blocking
``recv`` loop or a Qt ``readyRead`` slot alike) and returns the complete messages. Neither does I/O.
"""

from __future__ import annotations

import struct
from _json import encode_basestring, encode_basestring_ascii, make_encoder, make_scanner
from collections.abc import Callable
from typing import Any, Final

from symphony.protocol.errors import ProtocolViolation, ResourceLimitError
from symphony.protocol.messages import Message, message_from_header

#: Default hard maximum of one frame (the ``length`` field), 16 MiB.
DEFAULT_MAX_FRAME: Final = 16 * 1024 * 1024
#: Cap on frames before the handshake completes (challenge, hello, welcome, handshake error).
HANDSHAKE_MAX_FRAME: Final = 64 * 1024
#: Smallest cap a side may negotiate.
MIN_MAX_FRAME: Final = 4096
#: Largest cap the u32 length allows.
ABSOLUTE_MAX_FRAME: Final = 0xFFFF_FFFF

_PREFIX = struct.Struct("<I")
_HEAD = struct.Struct("<IBI")
_TYPE_HLEN = struct.Struct("<BI")
_HEAD_AFTER_LEN = 5  # type byte + header length


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _encoder_default(o: Any) -> Any:
    raise TypeError(f"Object of type {type(o).__name__} is not JSON serializable")


class _ScanContext:
    """The settings ``json.JSONDecoder`` hands its C scanner (``_json.make_scanner`` reads them)."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = staticmethod(_reject_constant)


# The C halves of `json`, used directly: the `json` package (its regexes compiled at import)
# costs ~2 ms of every extension child's start, and JSONEncoder.encode would build its C encoder
# afresh on every call (~1.5 µs, a third of encoding a small header). `json` is imported only to
# word an error (see `_loads`).
_SCAN: Any = make_scanner(_ScanContext())  # type: ignore[arg-type]  # any object with those fields


def json_encoder(*, sort_keys: bool = False, ensure_ascii: bool = False) -> Callable[[Any], str]:
    """Return a compact, strict JSON encoder (no NaN or infinities, no whitespace).

    What ``json.dumps(obj, separators=(",", ":"), allow_nan=False, sort_keys=sort_keys,
    ensure_ascii=ensure_ascii)`` returns, from one C encoder built here. It keeps no
    circular-reference markers (a shared dict is not safe across threads): a cycle ends in
    ``RecursionError``, reported as ``ValueError`` like any other value JSON cannot carry.
    """
    quote = encode_basestring_ascii if ensure_ascii else encode_basestring
    c_encode = make_encoder(None, _encoder_default, quote, None, ":", ",", sort_keys, False, False)

    def dumps(obj: Any) -> str:
        try:
            return "".join(c_encode(obj, 0))
        except RecursionError:
            raise ValueError("value is circular or nested too deeply") from None

    return dumps


_dumps = json_encoder()


def _loads(text: str) -> Any:
    # The C scanner directly (what JSONDecoder.decode wraps with two regex matches); anything it
    # does not take whole (whitespace around, trailing data, bad JSON) gets the full decoder's
    # verdict and message.
    try:
        value, end = _SCAN(text, 0)
    except StopIteration:
        return _full_decode(text)
    if end != len(text):
        return _full_decode(text)
    return value


def _full_decode(text: str) -> Any:
    import json  # noqa: PLC0415  (only here: see `_SCAN`)

    return json.JSONDecoder(parse_constant=_reject_constant).decode(text)


def encode(message: Message, max_frame: int = DEFAULT_MAX_FRAME) -> bytes:
    """Encode one message as a frame.

    Parameters
    ----------
    message
        The message.
    max_frame
        The negotiated maximum; a larger frame is refused rather than sent.

    Returns
    -------
    bytes
        The frame, length prefix included.

    Raises
    ------
    ResourceLimitError
        If the frame would exceed ``max_frame``.
    TypeError, ValueError
        If the header holds something JSON cannot carry (bytes, NaN, arbitrary objects).
    """
    h = message.header()
    head = _dumps(h).encode() if h else b""
    body = message.payload
    length = _HEAD_AFTER_LEN + len(head) + len(body)
    if length > max_frame:
        raise ResourceLimitError(
            f"{type(message).__name__} frame of {length} bytes exceeds the maximum of {max_frame}",
            data={"size": length, "max_frame": max_frame},
        )
    return b"".join((_HEAD.pack(length, message.FRAME_TYPE, len(head)), head, body))


def decode_frame(frame: bytes | bytearray | memoryview) -> Message:
    """Decode the part of one frame after its length prefix.

    Parameters
    ----------
    frame
        ``type | header length | header | body`` of exactly one frame.

    Returns
    -------
    Message
        The validated message.

    Raises
    ------
    ProtocolViolation
        For any malformed content.
    """
    n = len(frame)
    if n < _HEAD_AFTER_LEN:
        raise ProtocolViolation(f"frame of {n} bytes is shorter than its fixed fields")
    ftype, hlen = _TYPE_HLEN.unpack_from(frame)
    if hlen > n - _HEAD_AFTER_LEN:
        raise ProtocolViolation(f"header length {hlen} exceeds the frame")
    header: Any
    if hlen == 0:
        header = {}
    else:
        try:
            header = _loads(str(frame[5 : 5 + hlen], "utf-8"))
        except (ValueError, RecursionError) as e:  # UnicodeDecodeError is a ValueError
            raise ProtocolViolation(f"header is not UTF-8 JSON: {e}"[:200]) from None
        if type(header) is not dict:
            raise ProtocolViolation("header must be a JSON object")
    return message_from_header(ftype, header, bytes(frame[5 + hlen :]))


class FrameDecoder:
    """Incremental frame decoder: ``feed(bytes) -> [messages]``, no I/O, capped memory.

    The decoder keeps at most one incomplete frame (never more than ``max_frame`` bytes). A length
    prefix above the cap raises :class:`ProtocolViolation` as soon as its four bytes are seen,
    before anything is allocated for it. After any violation the decoder is *poisoned*: every
    later :meth:`feed` raises the same error, since a byte stream cannot be resynchronised.

    Parameters
    ----------
    max_frame
        The hard maximum of the ``length`` field; may be changed later through :attr:`max_frame`
        (for instance from :data:`HANDSHAKE_MAX_FRAME` to the negotiated value).
    """

    __slots__ = ("_buf", "_error", "_expected", "_max_frame")

    def __init__(self, max_frame: int = DEFAULT_MAX_FRAME) -> None:
        self._max_frame = 0
        self.max_frame = max_frame
        self._buf = bytearray()
        self._expected = -1  # -1: reading the length prefix
        self._error: ProtocolViolation | None = None

    @property
    def max_frame(self) -> int:
        """The hard maximum of one frame's ``length`` field."""
        return self._max_frame

    @max_frame.setter
    def max_frame(self, value: int) -> None:
        if not _HEAD_AFTER_LEN <= value <= ABSOLUTE_MAX_FRAME:
            raise ValueError(f"max_frame must be in [{_HEAD_AFTER_LEN}, {ABSOLUTE_MAX_FRAME}]")
        self._max_frame = value

    @property
    def buffered(self) -> int:
        """Bytes held for the incomplete frame (``0`` between frames)."""
        return len(self._buf)

    @property
    def at_boundary(self) -> bool:
        """Whether the bytes fed so far end exactly at a frame boundary."""
        return self._expected < 0 and not self._buf

    def feed(self, data: bytes | bytearray | memoryview) -> list[Message]:
        """Consume received bytes and return every message they complete.

        Parameters
        ----------
        data
            The next bytes of the stream, any length (an empty chunk is a no-op, not an EOF).

        Returns
        -------
        list of Message
            The messages completed by ``data``, in order; often empty.

        Raises
        ------
        ProtocolViolation
            If the stream is malformed or a frame exceeds :attr:`max_frame`. Messages completed
            earlier in the same chunk are lost with the connection.
        """
        if self._error is not None:
            raise self._error
        view = memoryview(data).cast("B")
        try:
            if self._expected < 0 and not self._buf and len(view) > 4:
                # the common case, one whole frame and nothing before it: no bookkeeping
                length = _PREFIX.unpack_from(view)[0]
                if len(view) - 4 == length and _HEAD_AFTER_LEN <= length <= self._max_frame:
                    return [decode_frame(view[4:])]
            return self._feed(view)
        except ProtocolViolation as e:
            self._error = e
            self._buf = bytearray()
            raise

    def _feed(self, view: memoryview) -> list[Message]:
        out: list[Message] = []
        buf = self._buf
        pos = 0
        end = len(view)
        while pos < end:
            if self._expected < 0:
                if not buf and end - pos >= 4:
                    length = _PREFIX.unpack_from(view, pos)[0]
                    pos += 4
                else:
                    take = min(4 - len(buf), end - pos)
                    buf += view[pos : pos + take]
                    pos += take
                    if len(buf) < 4:
                        break
                    length = _PREFIX.unpack(buf)[0]
                    buf.clear()
                if length > self._max_frame:
                    raise ProtocolViolation(
                        f"frame length {length} exceeds the maximum of {self._max_frame}",
                        data={"size": length, "max_frame": self._max_frame},
                    )
                if length < _HEAD_AFTER_LEN:
                    raise ProtocolViolation(f"frame length {length} is below the minimum of 5")
                self._expected = length
            need = self._expected - len(buf)
            if not buf and end - pos >= need:
                out.append(decode_frame(view[pos : pos + need]))
                pos += need
            else:
                take = min(need, end - pos)
                buf += view[pos : pos + take]
                pos += take
                if len(buf) < self._expected:
                    break
                out.append(decode_frame(buf))
                buf.clear()
            self._expected = -1
        return out


__all__ = [
    "ABSOLUTE_MAX_FRAME",
    "DEFAULT_MAX_FRAME",
    "HANDSHAKE_MAX_FRAME",
    "MIN_MAX_FRAME",
    "FrameDecoder",
    "decode_frame",
    "encode",
    "json_encoder",
]
