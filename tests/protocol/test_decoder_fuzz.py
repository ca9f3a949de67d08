"""Property tests: random, mutated and truncated byte streams never crash the decoder or make it
allocate past its maximum; valid streams round-trip whatever the chunking."""

from __future__ import annotations

import json
import struct
import tracemalloc
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from symphony.protocol import (
    MAX_ID,
    Cancel,
    Credit,
    ErrorResponse,
    FrameDecoder,
    Log,
    Message,
    Notification,
    Ping,
    Progress,
    ProtocolViolation,
    Request,
    Response,
    StreamData,
    encode,
)

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SMALL_MAX = 4096

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
ids = st.integers(0, MAX_ID)
bodies = st.binary(max_size=300)
methods = st.text(min_size=1, max_size=30)

messages: st.SearchStrategy[Message] = st.one_of(
    st.builds(
        Request,
        ids,
        methods,
        json_values,
        bodies,
        st.none() | st.integers(0, 10**6),
        st.none() | st.integers(0, 1000),
    ),
    st.builds(Response, ids, json_values, bodies),
    st.builds(
        ErrorResponse, st.none() | ids, st.integers(-(2**31), 2**31 - 1), st.text(), json_values
    ),
    st.builds(Notification, methods, json_values, bodies),
    st.builds(Cancel, ids),
    st.builds(Credit, ids, st.integers(1, 1000)),
    st.builds(Ping, ids),
    st.builds(StreamData, ids, ids, json_values, bodies),
    st.builds(
        Progress,
        ids,
        st.sampled_from(["begin", "report", "end"]),
        st.none() | st.text(),
        st.none() | st.text(),
        st.none() | st.floats(0, 100),
    ),
    st.builds(
        Log,
        st.sampled_from(["debug", "info", "warning", "error"]),
        st.text(),
        st.text(max_size=10),
        st.dictionaries(st.text(max_size=5), json_values, max_size=3),
        st.integers(0, 1000),
        st.none() | ids,
    ),
)


def chunked(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in zip(points, points[1:], strict=False)]


def feed_all(dec: FrameDecoder, chunks: list[bytes]) -> tuple[list[Message], bool]:
    """Feed every chunk; return the messages and whether a violation stopped the stream."""
    out: list[Message] = []
    for chunk in chunks:
        try:
            out.extend(dec.feed(chunk))
        except ProtocolViolation:
            return out, True
        assert dec.buffered <= dec.max_frame
    return out, False


@FUZZ
@given(st.lists(messages, max_size=8), st.lists(st.integers(0, 10**6), max_size=12))
def test_valid_streams_round_trip_under_any_chunking(msgs: list[Message], cuts: list[int]) -> None:
    data = b"".join(encode(m) for m in msgs)
    got, violated = feed_all(FrameDecoder(), chunked(data, cuts))
    assert not violated
    assert got == msgs


@FUZZ
@given(st.binary(max_size=5000), st.lists(st.integers(0, 10**6), max_size=8))
def test_random_bytes_never_crash(data: bytes, cuts: list[int]) -> None:
    dec = FrameDecoder(SMALL_MAX)
    feed_all(dec, chunked(data, cuts))


@FUZZ
@given(
    st.lists(messages, min_size=1, max_size=5),
    st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), min_size=1, max_size=6),
    st.sampled_from(["flip", "insert", "delete"]),
    st.lists(st.integers(0, 10**6), max_size=6),
)
def test_mutated_streams_fail_cleanly(
    msgs: list[Message], edits: list[tuple[int, int]], how: str, cuts: list[int]
) -> None:
    data = bytearray(b"".join(encode(m) for m in msgs))
    for pos, byte in edits:
        i = pos % len(data)
        if how == "flip":
            data[i] ^= byte or 1
        elif how == "insert":
            data.insert(i, byte)
        elif len(data) > 1:
            del data[i]
    got, _ = feed_all(FrameDecoder(), chunked(bytes(data), cuts))
    assert all(isinstance(m, Message) for m in got)


@FUZZ
@given(st.lists(messages, min_size=1, max_size=5), st.data())
def test_half_frames_yield_complete_prefix_only(msgs: list[Message], data: Any) -> None:
    frames = [encode(m) for m in msgs]
    stream = b"".join(frames)
    cut = data.draw(st.integers(0, len(stream) - 1))
    dec = FrameDecoder()
    got = dec.feed(stream[:cut])
    complete = 0
    total = 0
    for f in frames:
        if total + len(f) > cut:
            break
        total += len(f)
        complete += 1
    assert got == msgs[:complete]
    assert dec.at_boundary == (cut == total)
    assert dec.feed(stream[cut:]) == msgs[complete:]


@FUZZ
@given(st.integers(SMALL_MAX + 1, 0xFFFF_FFFF), st.binary(max_size=64), st.integers(0, 3))
def test_oversized_length_prefix_is_refused_at_once(length: int, rest: bytes, split: int) -> None:
    prefix = struct.pack("<I", length)
    dec = FrameDecoder(SMALL_MAX)
    assert dec.feed(prefix[:split]) == []
    with pytest.raises(ProtocolViolation) as info:
        dec.feed(prefix[split:] + rest)
    assert info.value.data == {"size": length, "max_frame": SMALL_MAX}
    assert dec.buffered == 0


def test_claimed_4_gib_frame_allocates_nothing() -> None:
    dec = FrameDecoder()  # 16 MiB default
    tracemalloc.start()
    try:
        for length in (0xFFFF_FFFF, 16 * 1024 * 1024 + 1, 1 << 30):
            d = FrameDecoder()
            try:
                d.feed(struct.pack("<I", length) + b"\x04" * 100)
            except ProtocolViolation:
                pass
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 64 * 1024
    assert dec.buffered == 0


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(min_size=1, max_size=20000), st.lists(st.integers(0, 10**6), max_size=20))
def test_memory_stays_under_the_maximum(data: bytes, cuts: list[int]) -> None:
    chunks = chunked(data, cuts)
    dec = FrameDecoder(SMALL_MAX)
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base, _ = tracemalloc.get_traced_memory()
        feed_all(dec, chunks)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak - base < 4 * SMALL_MAX + 32 * 1024


garbage_frames = st.builds(
    lambda ftype, hlen, content: (
        struct.pack("<IBI", 5 + len(content), ftype, hlen % (len(content) + 2)) + content
    ),
    st.integers(0, 20),
    st.integers(0, 2**32 - 1),
    st.one_of(
        st.binary(max_size=200),
        json_values.map(lambda v: json.dumps(v).encode()),
        st.dictionaries(st.sampled_from(["id", "method", "seq", "grant", "kind", "level"]),
                        json_values, max_size=4).map(lambda v: json.dumps(v).encode()),
    ),
)  # fmt: skip


@FUZZ
@given(st.lists(garbage_frames, max_size=6), st.lists(st.integers(0, 10**6), max_size=8))
def test_well_framed_garbage_never_crashes(frames: list[bytes], cuts: list[int]) -> None:
    feed_all(FrameDecoder(SMALL_MAX), chunked(b"".join(frames), cuts))
