"""Crash consistency of the whole Pit: SIGKILL a writer at random points, reopen, check everything.

One child process drives three components against one data directory, each step touching all of
them: it stores an artifact, adds a DAG node bound to it, and releases a pool lease with a cost.
After each step it calls ``pit.sync()`` and only then prints ``ack <step> <artifact id>``. The
parent kills it with SIGKILL at a random moment, reopens the directory and checks that every
acknowledged step is fully there (bytes, node, binding, spend), that nothing beyond the step in
flight exists, and that ``verify()`` is clean.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from symphony.pit import Pit
from tests.conftest import TEST_KEY

WRITER = r"""
import sys
from symphony.pit import Pit

pit = Pit.open(sys.argv[1], key=bytes(range(32)), flush_interval_ms=1.0)
start = int(sys.argv[2])
if "wf" not in pit.dag:
    pit.dag.create_workflow("wf")
if "m" not in pit.pool:
    pit.pool.register("m", slots=2, price_per_call=0.5)
pit.sync()
print("ready", flush=True)
for step in range(start, start + 100_000):
    payload = (f"step {step} " * (1 + step % 97)).encode() + bytes([step % 251]) * (step % 3000)
    aid = pit.artifacts.put(f"doc-{step}", payload, kind="text", actor="writer")
    pit.dag.add_node("wf", f"n{step}", node_type="summarize")
    pit.dag.bind_artifact("wf", f"n{step}", aid)
    lease = pit.pool.try_acquire("m", owner="writer")
    pit.pool.release(lease, ok=True, latency=0.01, cost=0.5)
    pit.sync()
    print(f"ack {step} {aid}", flush=True)
"""


def payload(step: int) -> bytes:
    return (f"step {step} " * (1 + step % 97)).encode() + bytes([step % 251]) * (step % 3000)


def run_and_kill(data_dir: Path, start: int, rng: random.Random) -> list[tuple[int, int]]:
    """Run the writer from ``start`` and SIGKILL it after a random delay; return its acks."""
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(data_dir), str(start)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    assert proc.stderr is not None
    first = proc.stdout.readline()
    assert first == "ready\n", first + proc.stderr.read()
    time.sleep(rng.uniform(0.0, 0.4))
    os.kill(proc.pid, signal.SIGKILL)
    # Read the rest through the same text wrappers: `readline` above may have buffered acks
    # already, which `communicate` (reading the raw pipes) would lose.
    out = proc.stdout.read()
    err = proc.stderr.read()
    proc.stdout.close()
    proc.stderr.close()
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL, err
    acks = []
    for line in out.splitlines():
        parts = line.split()
        # The kill may cut the last line short; an incomplete line was never acknowledged.
        if len(parts) == 3 and parts[0] == "ack":
            acks.append((int(parts[1]), int(parts[2])))
    return acks


@pytest.mark.slow
def test_sigkill_at_random_points_loses_no_acknowledged_change(tmp_path: Path) -> None:
    rng = random.Random(20261121)
    data_dir = tmp_path / "pit"
    acked: dict[int, int] = {}
    next_step = 0
    for trial in range(25):
        acks = run_and_kill(data_dir, next_step, rng)
        acked.update(acks)
        # The step the kill interrupted may be partly there; the next trial starts after it.
        in_flight = acks[-1][0] + 1 if acks else next_step
        next_step = in_flight + 1
        with Pit.open(data_dir, key=TEST_KEY) as pit:
            assert pit.artifacts.verify() >= len(acked)
            referenced = set(pit.dag.referenced_artifacts())
            nodes = set(pit.dag.nodes("wf"))
            for step, aid in acked.items():
                assert pit.artifacts.get(f"doc-{step}") == payload(step), step
                assert pit.artifacts.resolve(f"doc-{step}") == aid
                assert f"n{step}" in nodes
                assert aid in referenced
            spent, _in_flight_cost, _budget = pit.pool.owner_spend("writer")
            # Each acknowledged step spent 0.5; each interrupted step may have spent too.
            assert len(acked) * 0.5 <= spent <= (len(acked) + trial + 1) * 0.5
            # Nothing beyond the step in flight: the writer syncs before starting the next step.
            stored = [n for n in pit.artifacts.names() if n.startswith("doc-")]
            assert all(int(n.removeprefix("doc-")) <= in_flight for n in stored)
    assert len(acked) > 25, "the writer should get through many steps across the trials"
