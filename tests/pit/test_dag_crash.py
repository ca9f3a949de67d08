"""Crash consistency of the DAG Tracker: a child process is killed with SIGKILL at random points.

The child opens a persistent Pit, builds a workflow, then runs a seeded policy of transitions,
batches, checkpoints, rollbacks and resets. After each step it makes the step durable
(``durable=True`` or ``pit.sync()``) and only then prints ``ack <n>``. The parent kills it,
reopens the data directory and replays the same policy in memory: the recovered workflow must
equal the state after exactly ``n`` or ``n + 1`` steps (the step in flight may or may not have
reached the log), so every acknowledged transition is there and nothing beyond the log is
invented.
"""

from __future__ import annotations

import gc
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from symphony.pit import Pit

TEST_KEY = bytes(range(32))

# Shared by the child (as a script) and the parent (exec'd): the workload, deterministic given the
# seed and the tracker's state.
POLICY = """
import random

from symphony.pit import IllegalTransitionError

N = 40


def setup(dag, seed, durable):
    rng = random.Random(seed)
    dag.create_workflow("w", durable=durable)
    dag.add_nodes("w", [f"n{i}" for i in range(N)], node_type="job", durable=durable)
    kinds = ["hard", "hard", "soft", "optional", "parallel"]
    for j in range(1, N):
        for i in rng.sample(range(j), min(j, 2)):
            if rng.random() < 0.6:
                dag.add_edges_idx("w", [(i, j)], rng.choice(kinds), durable=durable)
    for j in range(3, N - 5, 9):
        try:
            dag.add_alternative("w", f"n{j}", f"n{j + rng.randrange(1, 5)}", durable=durable)
        except Exception:  # a cycle through the alternative: refused, nothing changed
            pass


def step(dag, rng, durable):
    try:
        _step(dag, rng, durable)
    except IllegalTransitionError:
        # A batch can stop early: starting a node may gracefully skip another node of the same
        # batch. The applied prefix is kept (and journaled) in the child and the replay alike.
        pass


def _step(dag, rng, durable):
    states = dag.states("w")
    ready = dag.ready_idx("w")
    running = [i for i, s in enumerate(states) if s == "running"]
    r = rng.random()
    if r < 0.05:
        dag.checkpoint("w", durable=durable)
    elif r < 0.08 and dag.checkpoints("w"):
        dag.rollback("w", rng.choice(dag.checkpoints("w")), durable=durable)
    elif r < 0.11:
        dag.reset("w", f"n{rng.randrange(N)}", durable=durable)
    elif r < 0.30 and ready:
        some = rng.sample(ready, min(len(ready), 4))
        dag.transition_batch("w", some, "running", durable=durable)
    elif r < 0.40 and len(running) > 1:
        to = rng.choice(["succeeded", "failed"])
        dag.transition_batch("w", running[:2], to, durable=durable)
    elif running and r < 0.75:
        end = rng.choice(["succeeded", "succeeded", "failed", "cancelled"])
        dag.transition("w", f"n{rng.choice(running)}", end, durable=durable)
    elif ready:
        to = rng.choice(["running", "running", "skipped"])
        dag.transition("w", f"n{rng.choice(ready)}", to, durable=durable)
    else:
        dag.reset("w", "n0", durable=durable)


def observe(dag):
    return (dag.states("w"), dag.checkpoints("w"), dag.ready("w"))
"""

CHILD = """
import os, random, sys
from symphony.pit import Pit
exec(POLICY)
seed = int(sys.argv[2])
pit = Pit.open(sys.argv[1], key=bytes.fromhex(os.environ["DAG_CRASH_KEY"]), manual_clock=1e6)
dag = pit.dag
setup(dag, seed, durable=False)
pit.sync()
print("setup", flush=True)
rng = random.Random(seed + 1)
n = 0
while True:
    n += 1
    durable = n % 2 == 0
    step(dag, rng, durable)
    if not durable:
        pit.sync()
    print(f"ack {n}", flush=True)
"""


def policy() -> dict[str, Any]:
    ns: dict[str, Any] = {}
    exec(POLICY, ns)
    return ns


def expected_states(seed: int, upto: int) -> list[tuple[object, ...]]:
    """The observed state after 0, 1, …, ``upto`` steps, replayed in memory."""
    ns = policy()
    p = Pit.in_memory(manual_clock=1e6)
    try:
        dag = p.dag
        ns["setup"](dag, seed, False)
        rng = random.Random(seed + 1)
        out = [ns["observe"](dag)]
        for _ in range(upto):
            ns["step"](dag, rng, False)
            out.append(ns["observe"](dag))
        return out
    finally:
        p.close()


def run_child(script: Path, data: Path, seed: int, kill_after: float) -> tuple[bool, int]:
    """Run the child until ``kill_after`` seconds past its setup, SIGKILL it; return whether the
    setup was acknowledged and the number of acknowledged steps."""
    env = dict(os.environ, DAG_CRASH_KEY=TEST_KEY.hex())
    proc = subprocess.Popen(
        [sys.executable, str(script), str(data), str(seed)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        bufsize=0,  # no read-ahead: communicate() must see every line after "setup"
    )
    assert proc.stdout is not None
    first = proc.stdout.readline()
    if first != b"setup\n":
        proc.kill()
        _, err = proc.communicate(timeout=30)
        pytest.fail(f"child did not finish setup: {first!r} {err.decode()[-2000:]}")
    time.sleep(kill_after)
    os.kill(proc.pid, signal.SIGKILL)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL, err.decode()[-3000:]
    acked = 0
    for line in out.split(b"\n")[:-1]:  # a torn last line was not acknowledged
        assert line == f"ack {acked + 1}".encode(), line
        acked += 1
    return True, acked


@pytest.mark.slow
def test_sigkill_at_random_points_keeps_every_acknowledged_transition(tmp_path: Path) -> None:
    script = tmp_path / "child.py"
    script.write_text(f"POLICY = {POLICY!r}\n{CHILD}")
    rng = random.Random(2026)
    deadline = time.monotonic() + 60.0
    trials = 0
    total_acked = 0
    while trials < 12 and time.monotonic() < deadline:
        trials += 1
        seed = rng.randrange(1 << 30)
        data = tmp_path / f"pit{trials}"
        _, acked = run_child(script, data, seed, kill_after=rng.uniform(0.0, 0.4))
        total_acked += acked
        gc.collect()
        p = Pit.open(data, key=TEST_KEY, manual_clock=1e6)
        try:
            got = policy()["observe"](p.dag)
            candidates = expected_states(seed, acked + 1)
            assert got in (candidates[acked], candidates[acked + 1]), (
                f"trial {trials} (seed {seed}): recovered state is not the state after "
                f"{acked} or {acked + 1} steps"
            )
            # The recovered journal takes new records and survives a clean reopen.
            p.dag.create_workflow("after", durable=True)
            p.dag.add_node("after", "x")
            after = policy()["observe"](p.dag)
            p.close()
            del p
            gc.collect()
            p = Pit.open(data, key=TEST_KEY, manual_clock=1e6)
            assert policy()["observe"](p.dag) == after
            assert p.dag.nodes("after") == ["x"]
        finally:
            p.close()
            del p
    assert trials >= 3
    assert total_acked > 0
