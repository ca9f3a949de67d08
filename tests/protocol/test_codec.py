"""Codec round trips for every message type, framing edge cases, size limits."""

from __future__ import annotations

import json
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from symphony.protocol import (
    Cancel,
    Challenge,
    Credit,
    ErrorResponse,
    Exit,
    FrameDecoder,
    FrameType,
    Hello,
    Log,
    Message,
    Notification,
    Ping,
    Pong,
    Progress,
    ProtocolViolation,
    Request,
    ResourceLimitError,
    Response,
    Shutdown,
    StreamData,
    Welcome,
    decode_frame,
    encode,
)
from symphony.protocol.codec import json_encoder

ALL_MESSAGES: list[Message] = [
    Challenge(bytes(range(32)), 1, 3),
    Hello(
        1,
        2,
        "ext.id",
        "1.0.0",
        {"methods": {"m": {"idempotent": True}}},
        {"max_frame": 4096},
        b"\x01" * 32,
        b"\x02" * 32,
    ),  # fmt: skip
    Welcome(1, {"secrets": True}, {"max_frame": 1 << 20, "stream_window": 8}, b"\x03" * 32),
    Request(1, "echo"),
    Request(2, "echo", {"x": [1, 2.5, "é", None, True]}, b"\x00\xff" * 10, 1500, 16),
    Response(1),
    Response(2, {"ok": True}, b"raw bytes \x00"),
    ErrorResponse(3, -32601, "no method"),
    ErrorResponse(None, -32006, "incompatible", {"host": [1, 1]}),
    Notification("changed"),
    Notification("changed", ["a"], b"\x01"),
    Cancel(7),
    Progress(4, "begin", "Indexing", None, 0.0),
    Progress(4, "report", None, "half", 50.0),
    Progress(4, "end", None, "done"),
    StreamData(5, 0),
    StreamData(5, 1, {"token": "hi"}, b"\x00" * 100),
    Credit(5, 16),
    Ping(9),
    Pong(9),
    Shutdown(10),
    Exit(),
    Log("info", "hello", "ext.mod", {"k": 1}, 3, 4),
    Log("error", "bad"),
]


@pytest.mark.parametrize("msg", ALL_MESSAGES, ids=lambda m: type(m).__name__)
def test_round_trip(msg: Message) -> None:
    frame = encode(msg)
    assert FrameDecoder().feed(frame) == [msg]
    assert decode_frame(frame[4:]) == msg


def test_every_frame_type_is_covered() -> None:
    assert {m.FRAME_TYPE for m in ALL_MESSAGES} == set(FrameType)


def test_frame_layout() -> None:
    frame = encode(Response(1, "x", b"BODY"))
    length, ftype, hlen = struct.unpack_from("<IBI", frame)
    assert length == len(frame) - 4
    assert ftype == FrameType.RESPONSE
    assert json.loads(frame[9 : 9 + hlen]) == {"id": 1, "result": "x"}
    assert frame[9 + hlen :] == b"BODY"  # binary travels raw, never base64


def test_empty_header_is_an_empty_object() -> None:
    assert encode(Exit()) == struct.pack("<IBI", 5, FrameType.EXIT, 0)


def test_byte_by_byte_and_coalesced_feeding() -> None:
    stream = b"".join(encode(m) for m in ALL_MESSAGES)
    dec = FrameDecoder()
    got: list[Message] = []
    for i in range(len(stream)):
        got.extend(dec.feed(stream[i : i + 1]))
    assert got == ALL_MESSAGES
    assert dec.at_boundary
    assert FrameDecoder().feed(stream) == ALL_MESSAGES
    assert FrameDecoder().feed(memoryview(bytearray(stream))) == ALL_MESSAGES


def test_half_frame_is_buffered_until_complete() -> None:
    frame = encode(Request(1, "m", None, b"x" * 1000))
    dec = FrameDecoder()
    assert dec.feed(frame[:2]) == []
    assert dec.feed(frame[2:500]) == []
    assert dec.buffered == 500 - 4
    assert not dec.at_boundary
    assert dec.feed(frame[500:] + frame[:3]) == [Request(1, "m", None, b"x" * 1000)]
    assert dec.buffered == 3


def test_oversized_length_prefix_raises_before_allocating() -> None:
    dec = FrameDecoder(max_frame=4096)
    with pytest.raises(ProtocolViolation, match="exceeds the maximum") as info:
        dec.feed(struct.pack("<I", 0xFFFF_FFFF))
    assert info.value.data == {"size": 0xFFFF_FFFF, "max_frame": 4096}
    assert dec.buffered == 0
    # poisoned: the stream cannot be resynchronised
    with pytest.raises(ProtocolViolation):
        dec.feed(encode(Ping(1)))


def test_frame_exactly_at_the_maximum() -> None:
    msg = Request(1, "m", None, b"")
    overhead = len(encode(msg)) - 4
    big = Request(1, "m", None, b"z" * (4096 - overhead))
    frame = encode(big, max_frame=4096)
    assert len(frame) == 4 + 4096
    assert FrameDecoder(4096).feed(frame) == [big]
    with pytest.raises(ResourceLimitError):
        encode(Request(1, "m", None, b"z" * (4097 - overhead)), max_frame=4096)


@pytest.mark.parametrize(
    ("raw", "match"),
    [
        (struct.pack("<I", 3) + b"abc", "below the minimum"),
        (struct.pack("<IBI", 5, 99, 0), "unknown frame type"),
        (struct.pack("<IBI", 7, FrameType.PING, 9) + b"{}", "header length"),
        (struct.pack("<IBI", 7, FrameType.PING, 2) + b"[]", "JSON object"),
        (struct.pack("<IBI", 7, FrameType.PING, 2) + b"\xff\xfe", "UTF-8 JSON"),
        (struct.pack("<IBI", 7, FrameType.PING, 2) + b"{}", "'id'"),
        (struct.pack("<IBI", 6, FrameType.EXIT, 0) + b"x", "carries no body"),
        (struct.pack("<IBI", 5 + 11, FrameType.PING, 11) + b'{"id":true}', "'id'"),
        (struct.pack("<IBI", 5 + 9, FrameType.PING, 9) + b'{"id":-1}', "'id'"),
        (struct.pack("<IBI", 5 + 10, FrameType.PING, 10) + b'{"id":NaN}', "UTF-8 JSON"),
    ],
)
def test_malformed_frames(raw: bytes, match: str) -> None:
    with pytest.raises(ProtocolViolation, match=match):
        FrameDecoder().feed(raw)


def test_deeply_nested_header_is_a_violation_not_a_crash() -> None:
    head = b"[" * 100_000 + b"]" * 100_000
    raw = struct.pack("<IBI", 5 + len(head), FrameType.NOTIFICATION, len(head)) + head
    with pytest.raises(ProtocolViolation):
        FrameDecoder().feed(raw)


def test_field_validation() -> None:
    def frame(ftype: FrameType, header: object) -> bytes:
        h = json.dumps(header).encode()
        return struct.pack("<IBI", 5 + len(h), ftype, len(h)) + h

    bad = [
        frame(FrameType.REQUEST, {"id": 1}),
        frame(FrameType.REQUEST, {"id": 1, "method": "m", "credit": -1}),
        frame(FrameType.ERROR, {"id": 1, "error": "x"}),
        frame(FrameType.ERROR, {"id": 1, "error": {"code": 1.5, "message": "m"}}),
        frame(FrameType.PROGRESS, {"id": 1, "kind": "middle"}),
        frame(FrameType.PROGRESS, {"id": 1, "kind": "report", "percentage": 101}),
        frame(FrameType.CREDIT, {"id": 1, "grant": 0}),
        frame(FrameType.LOG, {"level": "loud", "message": "m"}),
        frame(FrameType.CHALLENGE, {"nonce": "00", "protocol": [1, 1]}),
        frame(FrameType.CHALLENGE, {"nonce": "zz" * 32, "protocol": [1, 1]}),
        frame(FrameType.CHALLENGE, {"nonce": "00" * 32, "protocol": [2, 1]}),
        frame(FrameType.WELCOME, {"protocol": 1, "limits": {"max_frame": -1}, "mac": "00" * 32}),
        frame(FrameType.HELLO, {"protocol": [1, 1], "extension": []}),
    ]
    for raw in bad:
        with pytest.raises(ProtocolViolation):
            FrameDecoder().feed(raw)


def test_max_frame_setter_validates() -> None:
    dec = FrameDecoder()
    with pytest.raises(ValueError, match="max_frame"):
        dec.max_frame = 2
    dec.max_frame = 5000
    assert dec.max_frame == 5000


def test_unencodable_header_raises() -> None:
    with pytest.raises(TypeError):
        encode(Response(1, b"bytes are not JSON"))
    with pytest.raises(ValueError, match="JSON"):
        encode(Response(1, float("nan")))


# --- the C JSON halves used directly --------------------------------------------------------

_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(value=_JSON, sort_keys=st.booleans(), ensure_ascii=st.booleans())
def test_json_encoder_writes_what_json_dumps_writes(
    value: object, sort_keys: bool, ensure_ascii: bool
) -> None:
    dumps = json_encoder(sort_keys=sort_keys, ensure_ascii=ensure_ascii)
    expected = json.dumps(
        value,
        separators=(",", ":"),
        allow_nan=False,
        sort_keys=sort_keys,
        ensure_ascii=ensure_ascii,
    )
    assert dumps(value) == expected


def test_json_encoder_refuses_what_json_cannot_carry() -> None:
    dumps = json_encoder()
    for bad in (float("nan"), float("inf"), [float("-inf")]):
        with pytest.raises(ValueError, match="JSON compliant"):
            dumps(bad)
    with pytest.raises(TypeError, match="bytes is not JSON serializable"):
        dumps({"a": b"x"})
    loop: list[object] = []
    loop.append(loop)
    with pytest.raises(ValueError, match="circular"):
        dumps(loop)


@settings(max_examples=300, deadline=None)
@given(value=_JSON)
def test_headers_decode_as_json_loads_reads_them(value: object) -> None:
    text = json.dumps({"id": 1, "result": value}, separators=(",", ":"))
    frame = struct.pack("<BI", FrameType.RESPONSE, len(text.encode())) + text.encode()
    msg = decode_frame(frame)
    assert isinstance(msg, Response)
    assert msg.result == json.loads(text)["result"]


@pytest.mark.parametrize(
    ("header", "why"),
    [
        (b' {"id":1}', None),  # whitespace around: the full decoder takes it
        (b'{"id":1} ', None),
        (b'{"id":1}x', "Extra data"),
        (b'{"id":Infinity}', "not JSON"),
        (b'{"id":', "Expecting value"),
    ],
)
def test_header_json_edges(header: bytes, why: str | None) -> None:
    frame = struct.pack("<BI", FrameType.PING, len(header)) + header
    if why is None:
        assert decode_frame(frame) == Ping(1)
    else:
        with pytest.raises(ProtocolViolation, match=why):
            decode_frame(frame)
