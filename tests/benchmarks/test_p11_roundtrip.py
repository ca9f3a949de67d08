"""P11: request/response round trip between two processes over a socketpair.

``symphony``: the host side of :mod:`symphony.protocol` talking to a real extension child
(``python -m symphony.sdk.runner tests/sdk/fixtures/demo_ext``): a ``Request`` frame, the child's
runtime (whose reading thread runs the echo handler itself, see :mod:`symphony.sdk.runtime`), the
``Response`` frame back. ``baseline:raw-json-echo``: a child that reads u32-length-prefixed JSON and
writes it back on one thread, no framing types. The Qt host is measured by ``test_p11_host.py``.

Targets (judged in docs, never asserted): p50 ≤ 60 µs, p99 ≤ 300 µs.

Group ``P11-messages``: messages per second with requests pipelined (a window of ``WINDOW``
requests written at once, then their replies read), same two cases.
"""

from __future__ import annotations

import socket
import struct
import subprocess
import sys
import time
from collections.abc import Callable, Generator
from pathlib import Path

import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from symphony.protocol import HostHandshake, Request, Response, SocketChannel, new_token
from symphony.protocol.handshake import write_token

DEMO = Path(__file__).parents[1] / "sdk" / "fixtures" / "demo_ext"
TARGET = {"p50_us": 60, "p99_us": 300}
SAMPLES = 3000
WINDOW = 64
BATCHES = 20

RAW_ECHO = r"""
import json, socket, struct, sys
s = socket.socket(fileno=int(sys.argv[1]))
buf = b""
def read(n):
    global buf
    while len(buf) < n:
        chunk = s.recv(65536)
        if not chunk:
            sys.exit(0)
        buf += chunk
    out, buf = buf[:n], buf[n:]
    return out
while True:
    (n,) = struct.unpack("<I", read(4))
    msg = json.loads(read(n))
    data = json.dumps({"id": msg["id"], "result": msg["params"]}).encode()
    s.sendall(struct.pack("<I", len(data)) + data)
"""


def _spawn(args: list[str], fd: int, stdin: int | None = None) -> subprocess.Popen[bytes]:
    return subprocess.Popen(args, pass_fds=(fd,), stdin=stdin)


def _symphony() -> Generator[tuple[Callable[[int], None], Callable[[int], None]], None, None]:
    parent, child = socket.socketpair()
    token = new_token()
    proc = _spawn(
        [sys.executable, "-m", "symphony.sdk.runner", str(DEMO), "--fd", str(child.fileno())],
        child.fileno(),
        subprocess.PIPE,
    )
    child.close()
    assert proc.stdin is not None
    write_token(proc.stdin, token)
    proc.stdin.close()
    proc.stdin = None
    ch = SocketChannel(parent)
    hs = HostHandshake(token)
    ch.send(hs.challenge())
    hello = ch.recv(10)
    assert hello is not None
    ch.send(hs.accept(hello))
    assert hs.session is not None
    ch.set_max_frame(hs.session.max_frame)

    def roundtrip(i: int) -> None:
        ch.send(Request(i, "echo", {"n": i}))
        reply = ch.recv()
        assert isinstance(reply, Response)
        assert reply.id == i

    def batch(i: int) -> None:
        ids = range(i, i + WINDOW)
        ch.send_many(Request(j, "echo", {"n": j}) for j in ids)
        for j in ids:
            reply = ch.recv()
            assert isinstance(reply, Response)
            assert reply.id == j

    try:
        yield roundtrip, batch
    finally:
        ch.close()
        proc.wait(10)


def _raw() -> Generator[tuple[Callable[[int], None], Callable[[int], None]], None, None]:
    import json

    parent, child = socket.socketpair()
    proc = _spawn([sys.executable, "-c", RAW_ECHO, str(child.fileno())], child.fileno())
    child.close()

    def roundtrip(i: int) -> None:
        data = json.dumps({"id": i, "method": "echo", "params": {"n": i}}).encode()
        parent.sendall(struct.pack("<I", len(data)) + data)
        head = parent.recv(4, socket.MSG_WAITALL)
        (n,) = struct.unpack("<I", head)
        reply = json.loads(parent.recv(n, socket.MSG_WAITALL))
        assert reply["id"] == i

    def batch(i: int) -> None:
        frames = []
        for j in range(i, i + WINDOW):
            data = json.dumps({"id": j, "method": "echo", "params": {"n": j}}).encode()
            frames.append(struct.pack("<I", len(data)) + data)
        parent.sendall(b"".join(frames))
        for j in range(i, i + WINDOW):
            (n,) = struct.unpack("<I", parent.recv(4, socket.MSG_WAITALL))
            assert json.loads(parent.recv(n, socket.MSG_WAITALL))["id"] == j

    try:
        yield roundtrip, batch
    finally:
        parent.close()
        proc.wait(10)


CASES = {"symphony": _symphony, "baseline:raw-json-echo": _raw}


def percentiles(roundtrip: Callable[[int], None], n: int = SAMPLES) -> dict[str, float]:
    """Time ``n`` round trips one by one; return p50/p99/max in microseconds."""
    for i in range(200):  # warm up
        roundtrip(i)
    samples = []
    for i in range(n):
        t0 = time.perf_counter_ns()
        roundtrip(1000 + i)
        samples.append(time.perf_counter_ns() - t0)
    samples.sort()
    return {
        "p50_us": round(samples[n // 2] / 1000, 1),
        "p99_us": round(samples[(n * 99) // 100] / 1000, 1),
        "max_us": round(samples[-1] / 1000, 1),
    }


@pytest.mark.benchmark(group="P11")
@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_p11_roundtrip(benchmark: BenchmarkFixture, case: str) -> None:
    gen = CASES[case]()
    roundtrip, _ = next(gen)
    try:
        stats = percentiles(roundtrip)
        counter = iter(range(10**6, 10**9))
        benchmark(lambda: roundtrip(next(counter)))
    finally:
        gen.close()
    if case == "symphony":
        benchmark.extra_info["target"] = "p50 <= 60 us, p99 <= 300 us (Qt host not included)"
    benchmark.extra_info.update(stats)
    print(f"\nP11 {case}: {stats}")


@pytest.mark.benchmark(group="P11-messages")
@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_p11_messages_per_second(benchmark: BenchmarkFixture, case: str) -> None:
    gen = CASES[case]()
    _, batch = next(gen)
    counter = iter(range(10**6, 10**9, WINDOW))
    try:
        batch(0)  # warm up
        t0 = time.perf_counter()
        for _ in range(BATCHES):
            batch(next(counter))
        elapsed = time.perf_counter() - t0
        benchmark(lambda: batch(next(counter)))
    finally:
        gen.close()
    # One request and one reply per echo: 2 messages.
    rate = round(2 * WINDOW * BATCHES / elapsed)
    benchmark.extra_info["messages_per_s"] = rate
    benchmark.extra_info["window"] = WINDOW
    if case == "symphony":
        benchmark.extra_info["target"] = "messages/s (no target; recorded)"
    print(f"\nP11-messages {case}: {rate} messages/s")
