"""Crash consistency: SIGKILL a process in the middle of a run, then resume from the Pit."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from symphony.conductor import events as ev
from symphony.conductor import history
from symphony.conductor.conductor import RunOptions
from symphony.registry import NodeTypeRegistry
from tests.conductor.conftest import Script, ScriptedExecutor, conductor_for
from tests.conftest import TEST_KEY

ROOT = Path(__file__).resolve().parents[2]

CHILD = """
import asyncio, sys
from symphony.conductor.conductor import RunOptions
from symphony.conductor.events import NodeStateChanged
from symphony.pit import Pit
from symphony.workflow import Melody
from tests.conductor.conftest import Script, ScriptedExecutor, conductor_for, make_registry

pit = Pit.open(sys.argv[1], key=bytes(range(32)))
registry = make_registry()
ex = ScriptedExecutor(registry)
m = Melody("crash")
prev = None
for i in range(8):
    n = m.create_node("t.work")
    ex.scripts[n.id] = Script(delay=0.15)
    if prev is not None:
        m.connect(prev.id, "out", n.id, "x")
    prev = n

def show(e):
    if isinstance(e, NodeStateChanged) and e.state == "succeeded":
        print("succeeded", e.run_id, e.node_id, flush=True)

async def main():
    c = conductor_for(pit, registry, ex)
    c.subscribe(show)
    await c.run(m, RunOptions(durable=True, retry_backoff=0.0))

asyncio.run(main())
"""


@pytest.mark.slow
@pytest.mark.parametrize("after", [1, 3, 5])
def test_kill_9_then_resume_does_not_rerun_succeeded_nodes(
    tmp_path: Path, registry: NodeTypeRegistry, open_pit: Any, after: int
) -> None:
    data = tmp_path / "pit"
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(data)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert child.stdout is not None
    done: list[str] = []
    run_id = ""
    while len(done) < after:
        line = child.stdout.readline()
        assert line, "the child ended before the kill"
        _, run_id, node = line.split()
        done.append(node)
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)
    child.stdout.close()

    pit = open_pit(data, key=TEST_KEY)
    assert all(pit.dag.state(run_id, n) == "succeeded" for n in done)
    # The run history tells the dead process's run apart and offers to resume it.
    dead = history.read_run(pit, run_id)
    assert (dead.status, dead.detail, dead.resumable) == ("interrupted", history.DIED, True)
    assert dead.done_nodes >= after
    assert dead.total_nodes == 8
    ex = ScriptedExecutor(registry)
    for i in range(8):
        ex.scripts[f"n{i + 1}"] = Script(delay=0.0)

    async def resume() -> Any:
        c = conductor_for(pit, registry, ex)
        return await c.resume(run_id, RunOptions(retry_backoff=0.0)).wait()

    result = asyncio.run(resume())
    assert result.status == "succeeded"
    ended = history.read_run(pit, run_id)
    assert (ended.status, ended.nodes, ended.resumable) == ("succeeded", {"succeeded": 8}, False)
    # The killed session's time counts too (its process never wrote it): at least from its first
    # node's start to its last node's end, as the DAG Tracker recorded them.
    infos = [pit.dag.node(run_id, n) for n in done]
    killed = max(i.finished_at or 0.0 for i in infos) - min(i.started_at or 0.0 for i in infos)
    assert ended.duration is not None
    assert ended.duration >= killed > 0
    assert not set(ex.calls) & set(done)  # nothing announced as succeeded ran again
    assert set(ex.calls) == {f"n{i + 1}" for i in range(8)} - set(done)
    # the resumed chain still carries the values computed before the crash
    out = result.outputs["n8.out"]
    depth = 0
    while isinstance(out, list):
        depth += 1
        out = out[1].get("x")
    assert depth == 8
    # Its timeline: the killed process logged nothing, so the nodes done before the kill are
    # drawn from the DAG Tracker, the rest from the resume's log; every node once, in order.
    logged = history.read_events(pit, run_id)
    ran = {
        e.node_id
        for e in logged
        if isinstance(e, ev.NodeStateChanged) and e.detail != ev.DONE_BEFORE_RESUME
    }
    assert ran == set(ex.calls)
    replay = history.replay_events(ended, history.node_steps(pit, run_id), logged)
    assert [e.at for e in replay] == sorted(e.at for e in replay)
    ends = []
    for i in range(8):
        node = f"n{i + 1}"
        states = [e for e in replay if isinstance(e, ev.NodeStateChanged) and e.node_id == node]
        assert [e.state for e in states if e.state != "queued"] == ["running", "succeeded"], node
        ends.append(states[-1].at)
    assert ends == sorted(ends)  # a chain: each ends after the one before
