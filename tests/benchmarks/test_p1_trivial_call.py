"""P1: a trivial Pit call in-process vs the same call as a round trip to another process.

The seeds claim in-process calls are thousands of times cheaper than IPC; this measures it here.
The call is ``len(pit.pool)`` (a read of the Pool Manager's model count). Per-call time is the
round's time divided by ``CALLS``; each loop iteration makes ten calls so Python's loop overhead
is amortized (it is included, honestly, at a tenth of its cost).
"""

from __future__ import annotations

import socket
import struct
import subprocess
import sys
from collections.abc import Iterator

import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from symphony.pit import Pit

CALLS = 100_000
TARGET_NS = 40

SERVER = r"""
import socket, struct, sys
from symphony.pit import Pit
pit = Pit.in_memory()
s = socket.socket(fileno=int(sys.argv[1]))
pack = struct.Struct("<Q").pack
sys.stdout.write("ready\n"); sys.stdout.flush()
while s.recv(1):
    s.sendall(pack(len(pit.pool)))
"""


@pytest.fixture
def remote() -> Iterator[socket.socket]:
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    proc = subprocess.Popen(
        [sys.executable, "-c", SERVER, str(theirs.fileno())],
        pass_fds=[theirs.fileno()],
        stdout=subprocess.PIPE,
        text=True,
    )
    theirs.close()
    assert proc.stdout is not None
    assert proc.stdout.readline() == "ready\n"
    yield ours
    ours.close()
    proc.wait(timeout=10)
    proc.stdout.close()


def _in_process(benchmark: BenchmarkFixture) -> None:
    pit = Pit.in_memory()
    pool = pit.pool
    loops = range(CALLS // 10)

    def run() -> int:
        n = 0
        for _ in loops:
            n += len(pool) + len(pool) + len(pool) + len(pool) + len(pool)
            n += len(pool) + len(pool) + len(pool) + len(pool) + len(pool)
        return n

    benchmark.pedantic(run, rounds=20, iterations=1, warmup_rounds=2)
    per_call_ns = benchmark.stats.stats.median / CALLS * 1e9
    benchmark.extra_info.update(
        target=f"<= {TARGET_NS} ns per call", per_call_ns=round(per_call_ns, 1), calls=CALLS
    )
    pit.close()


def _over_socket(benchmark: BenchmarkFixture, remote: socket.socket) -> None:
    calls = 2_000
    unpack = struct.Struct("<Q").unpack

    def run() -> int:
        n = 0
        for _ in range(calls):
            remote.sendall(b"?")
            n += unpack(remote.recv(8))[0]
        return n

    benchmark.pedantic(run, rounds=10, iterations=1, warmup_rounds=1)
    per_call_ns = benchmark.stats.stats.median / calls * 1e9
    benchmark.extra_info.update(per_call_ns=round(per_call_ns, 1), calls=calls)


@pytest.mark.benchmark(group="P1")
@pytest.mark.parametrize("case", ["symphony", "baseline:ipc-socket"])
def test_p1(benchmark: BenchmarkFixture, case: str, request: pytest.FixtureRequest) -> None:
    if case == "symphony":
        _in_process(benchmark)
    else:
        _over_socket(benchmark, request.getfixturevalue("remote"))
