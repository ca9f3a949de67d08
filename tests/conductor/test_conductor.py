"""The conductor over a real Pit: order, dependency kinds, branching, parallelism, recovery,
caching across restarts, breakpoints and step mode, edit-and-resume, events."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from symphony.conductor import OUTPUT_PREFIX, history
from symphony.conductor.conductor import (
    Conductor,
    InvalidMelodyError,
    RunNotFoundError,
    RunOptions,
    apply_inputs,
)
from symphony.conductor.events import (
    STOPPED_BEFORE_START,
    ArtifactStored,
    NodeStateChanged,
    RecoveryChosen,
    RunEvent,
    RunStateChanged,
)
from symphony.conductor.models import ModelCatalog
from symphony.conductor.policy import HEURISTICS, TRACE_PREFIX, ErrorKind, Strategy, read_traces
from symphony.pit import Pit
from symphony.registry import NodeTypeRegistry
from symphony.workflow import DependencyKind, Importance, Melody, NodePolicy
from tests.conductor.conftest import FixedPolicy, Script, ScriptedExecutor, conductor_for

FAST = RunOptions(retry_backoff=0.0, durable=False)


def chain(types: list[str], kinds: list[DependencyKind] | None = None) -> Melody:
    m = Melody("chain")
    prev = None
    for i, t in enumerate(types):
        n = m.create_node(t, name=f"n{i + 1}")
        if prev is not None:
            kind = kinds[i - 1] if kinds else DependencyKind.HARD
            m.connect(prev.id, "out", n.id, "x", kind=kind)
        prev = n
    return m


def run(conductor: Conductor, melody: Melody, options: RunOptions = FAST) -> Any:
    return asyncio.run(conductor.run(melody, options))


def states(result: Any) -> dict[str, str]:
    return {n.id: n.state for n in result.nodes}


def test_runs_in_dependency_order_and_passes_values(
    mem_pit: Pit, registry: NodeTypeRegistry, executor: ScriptedExecutor
) -> None:
    m = chain(["t.inline", "t.work", "t.inline"])
    result = run(conductor_for(mem_pit, registry, executor), m)
    assert result.status == "succeeded"
    assert states(result) == {"n1": "succeeded", "n2": "succeeded", "n3": "succeeded"}
    assert result.outputs["n3.out"] == ["n3", {"x": ["n2", {"x": ["n1", {}]}]}]
    # every output is stored with lineage
    a1 = result.node("n1").artifacts["out"]
    a3 = result.node("n3").artifacts["out"]
    assert a1 in mem_pit.artifacts.ancestors(a3)
    info = mem_pit.artifacts.info(a3)
    assert info.produced_by[:2] == (result.run_id, "n3")
    assert mem_pit.dag.state(result.run_id, "n3") == "succeeded"


def test_an_ended_run_is_let_go(
    mem_pit: Pit, registry: NodeTypeRegistry, executor: ScriptedExecutor
) -> None:
    import gc
    import weakref

    conductor = conductor_for(mem_pit, registry, executor)
    m = chain(["t.inline", "t.work"])

    async def main() -> tuple[weakref.ref[Any], str, bool]:
        run = conductor.start(m, FAST)
        held = conductor.runs.get(run.run_id) is run  # while it runs
        await run.wait()
        return weakref.ref(run), run.run_id, held

    ref, run_id, held = asyncio.run(main())
    gc.collect()
    assert held
    # the record stays in the Pit; the run's node states are not held for the conductor's life
    assert run_id not in conductor.runs
    assert ref() is None
    assert conductor.record(run_id)["status"] == "succeeded"


@pytest.mark.parametrize("kind", list(DependencyKind))
@pytest.mark.parametrize("outcome", ["succeeded", "failed", "skipped"])
def test_dependency_kind_by_outcome(
    mem_pit: Pit,
    registry: NodeTypeRegistry,
    executor: ScriptedExecutor,
    kind: DependencyKind,
    outcome: str,
) -> None:
    """Every dependency kind x source outcome cell: what the target does."""
    m = Melody("cells")
    src = m.create_node("t.work", name="src")
    dst = m.create_node("t.work", name="dst")
    m.connect(src.id, "out", dst.id, "x", kind=kind)
    if outcome == "failed":
        executor.scripts[src.id] = Script(fail=99, kind=ErrorKind.PERSISTENT)
        strategy = Strategy.ABORT
    elif outcome == "skipped":
        executor.scripts[src.id] = Script(fail=99, kind=ErrorKind.PERSISTENT)
        m.set_node_policy(src.id, NodePolicy(skippable=True))
        strategy = Strategy.SKIP
    else:
        strategy = Strategy.RETRY
    result = run(conductor_for(mem_pit, registry, executor, strategy=strategy), m)
    got = result.node(dst.id)
    if kind is DependencyKind.HARD and outcome != "succeeded":
        assert got.state == "skipped"
        assert executor.calls[dst.id] == 0
        return
    assert got.state == "succeeded"
    value = result.outputs[f"{dst.id}.out"]
    fed = value[1].get("x")
    if outcome == "succeeded" and kind in (DependencyKind.HARD, DependencyKind.SOFT):
        assert fed == [src.id, {}]  # waited for the source and got its value
    elif outcome != "succeeded":
        assert fed is None  # ran without the input
    assert result.status == ("failed" if outcome == "failed" else "succeeded")


def test_quality_gate_branching(
    mem_pit: Pit, registry: NodeTypeRegistry, executor: ScriptedExecutor
) -> None:
    m = Melody("branch")
    src = m.create_node("t.work", name="src")
    good = m.create_node("t.work", name="good")
    bad = m.create_node("t.work", name="bad")
    m.connect(src.id, "out", good.id, "x", condition="length >= 2")
    m.connect(src.id, "out", bad.id, "x", condition="length < 2")
    result = run(conductor_for(mem_pit, registry, executor), m)
    assert result.node(good.id).state == "succeeded"
    assert result.node(bad.id).state == "skipped"
    assert executor.calls[bad.id] == 0
    assert result.status == "succeeded"


def test_parallel_branches_stay_within_capacity(
    mem_pit: Pit, registry: NodeTypeRegistry, executor: ScriptedExecutor
) -> None:
    m = Melody("fan")
    root = m.create_node("t.inline", name="root")
    for i in range(8):
        n = m.create_node("t.work", name=f"w{i}")
        m.connect(root.id, "out", n.id, "x")
        executor.scripts[n.id] = Script(delay=0.05)
    result = run(
        conductor_for(mem_pit, registry, executor), m, RunOptions(max_parallel=3, durable=False)
    )
    assert result.status == "succeeded"
    assert executor.max_running == 3


def test_a_finishing_node_task_runs_the_next_node_itself(
    mem_pit: Pit,
    registry: NodeTypeRegistry,
    executor: ScriptedExecutor,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # a chain of task nodes runs in one task (no task and no loop turn per node); a fan-out
    # still runs its branches in parallel, each in a task of its own
    tasks: dict[str, asyncio.Task[Any] | None] = {}
    scripted_run = executor.run

    async def recording_run(task: Any, sink: Any) -> Any:
        tasks[task.node_id] = asyncio.current_task()
        return await scripted_run(task, sink)

    monkeypatch.setattr(executor, "run", recording_run)
    m = chain(["t.work"] * 4)
    fan = [m.create_node("t.work", name=f"f{i}") for i in range(3)]
    for f in fan:
        m.connect("n4", "out", f.id, "x")
        executor.scripts[f.id] = Script(delay=0.05)
    result = run(
        conductor_for(mem_pit, registry, executor), m, RunOptions(max_parallel=4, durable=False)
    )
    assert result.status == "succeeded"
    assert len({id(tasks[f"n{i}"]) for i in range(1, 5)}) == 1
    assert len({id(tasks[f.id]) for f in fan}) == 3
    assert executor.max_running == 3


def test_model_nodes_share_pool_slots(
    mem_pit: Pit, registry: NodeTypeRegistry, executor: ScriptedExecutor, catalog: ModelCatalog
) -> None:
    m = Melody("models")
    for i in range(4):
        n = m.create_node("t.model", name=f"m{i}", config={"model": "tiny"})
        executor.scripts[n.id] = Script(delay=0.03)
    result = run(conductor_for(mem_pit, registry, executor, catalog), m, RunOptions(max_parallel=4))
    assert result.status == "succeeded"
    assert executor.max_running == 1  # "tiny" has one slot in the Pool Manager
    info = mem_pit.pool.info("tiny")
    assert info.calls == 4
    assert info.in_use == 0
    assert result.node("n1").cost == pytest.approx(0.5)


def test_retry_recovers_a_transient_failure(
    mem_pit: Pit, registry: NodeTypeRegistry, executor: ScriptedExecutor
) -> None:
    m = chain(["t.work"])
    executor.scripts["n1"] = Script(fail=2, kind=ErrorKind.TRANSIENT)
    events: list[RunEvent] = []
    c = conductor_for(mem_pit, registry, executor)
    c.subscribe(events.append)
    result = run(c, m)
    assert result.status == "succeeded"
    assert result.node("n1").attempts == 3
    recoveries = [e for e in events if isinstance(e, RecoveryChosen)]
    assert [r.strategy for r in recoveries] == ["retry", "retry"]
    assert recoveries[0].error == "scripted failure 1"
    assert recoveries[0].error_kind == "transient"


def test_a_timed_out_attempt_is_retried(
    mem_pit: Pit, registry: NodeTypeRegistry, executor: ScriptedExecutor
) -> None:
    m = chain(["t.work"])
    m.set_node_policy("n1", NodePolicy(timeout_s=0.05, max_retries=1))
    executor.scripts["n1"] = Script(delay=10)
    events: list[RunEvent] = []
    c = conductor_for(mem_pit, registry, executor)
    c.subscribe(events.append)
    result = run(c, m)
    assert result.status == "failed"
    assert result.node("n1").attempts == 2
    assert result.node("n1").error == "timed out after 0.05 s"
    kinds = [e.error_kind for e in events if isinstance(e, RecoveryChosen)]
    assert kinds == ["transient", "transient"]


def test_retries_stop_at_the_node_policy(
    mem_pit: Pit, registry: NodeTypeRegistry, executor: ScriptedExecutor
) -> None:
    m = chain(["t.work"])
    m.set_node_policy("n1", NodePolicy(max_retries=1))
    executor.scripts["n1"] = Script(fail=5)
    result = run(conductor_for(mem_pit, registry, executor), m)
    assert result.status == "failed"
    assert result.node("n1").attempts == 2
    assert result.node("n1").error == "scripted failure 2"


@pytest.mark.parametrize("code", [-32602, 4003])
def test_a_refusal_that_would_repeat_is_not_retried(
    mem_pit: Pit, registry: NodeTypeRegistry, executor: ScriptedExecutor, code: int
) -> None:
    # invalid params (an empty prompt) or an unknown model: the same call gets the same answer
    m = chain(["t.work"])
    executor.scripts["n1"] = Script(fail=1, kind=ErrorKind.PERSISTENT, code=code)
    policy = FixedPolicy(Strategy.RETRY)
    result = run(Conductor(mem_pit, registry, executor, policy=policy), m)
    (ctx,) = policy.seen
    assert ctx.max_retries == 0  # a retry is not on offer: the policy's fallback to abort
    assert result.node("n1").state == "failed"
    assert result.node("n1").attempts == 1


def test_fallback_model(
    mem_pit: Pit, registry: NodeTypeRegistry, executor: ScriptedExecutor, catalog: ModelCatalog
) -> None:
    m = Melody("fb")
    n = m.create_node(
        "t.model",
        config={"model": "big"},
        policy=NodePolicy(fallback_models=("small", "tiny")),
    )
    executor.scripts[n.id] = Script(fail_models=frozenset({"big", "small"}))
    c = conductor_for(mem_pit, registry, executor, catalog, Strategy.FALLBACK)
    result = run(c, m)
    assert result.status == "succeeded"
    assert [model for _, model in executor.models] == ["big", "small", "tiny"]
    assert result.node(n.id).model == "tiny"
    assert mem_pit.pool.info("big").errors == 1


def test_graceful_skip_keeps_the_melody_going(
    mem_pit: Pit, registry: NodeTypeRegistry, executor: ScriptedExecutor
) -> None:
    m = Melody("skip")
    a = m.create_node("t.work", name="optional step", policy=NodePolicy(skippable=True))
    b = m.create_node("t.work", name="main")
    m.connect(a.id, "out", b.id, "x", kind=DependencyKind.SOFT)
    executor.scripts[a.id] = Script(fail=99, kind=ErrorKind.PERSISTENT)
    result = run(conductor_for(mem_pit, registry, executor, strategy=Strategy.SKIP), m)
    assert result.status == "succeeded"
    assert result.node(a.id).state == "skipped"
    assert "scripted failure" in result.node(a.id).error  # kept for review
    assert result.node(b.id).state == "succeeded"


def test_abort_fails_the_run_and_skips_hard_dependants(
    mem_pit: Pit, registry: NodeTypeRegistry, executor: ScriptedExecutor
) -> None:
    m = chain(["t.work", "t.work"])
    executor.scripts["n1"] = Script(fail=99)
    result = run(conductor_for(mem_pit, registry, executor, strategy=Strategy.ABORT), m)
    assert result.status == "failed"
    assert states(result) == {"n1": "failed", "n2": "skipped"}
    assert result.detail == "failed: n1"


def test_reverse_reconstruction_from_a_later_artifact(
    mem_pit: Pit, registry: NodeTypeRegistry, executor: ScriptedExecutor, catalog: ModelCatalog
) -> None:
    m = Melody("rev")
    a = m.create_node("t.work", name="extract")
    b = m.create_node("t.model", name="generate", config={"model": "tiny"})
    m.connect(a.id, "out", b.id, "x")
    c = conductor_for(mem_pit, registry, executor, catalog, Strategy.RECONSTRUCT)
    first = run(c, m)
    assert first.status == "succeeded"
    # The extractor now fails for good; the generator's earlier output still exists.
    executor.scripts[a.id] = Script(fail=99, kind=ErrorKind.PERSISTENT)
    executor.reverse = True
    second = run(c, m, RunOptions(retry_backoff=0.0, use_cache=False))
    assert second.node(a.id).state == "succeeded"
    assert executor.calls[f"reverse:{b.id}"] == 1
    rebuilt = mem_pit.artifacts.info(second.node(a.id).artifacts["out"])
    assert rebuilt.produced_by[2] == "reverse:t.model"
    assert first.node(b.id).artifacts["out"] in rebuilt.inputs
    assert second.status == "succeeded"


def test_reconstruction_is_not_offered_without_a_later_artifact(
    mem_pit: Pit, registry: NodeTypeRegistry, executor: ScriptedExecutor, catalog: ModelCatalog
) -> None:
    m = Melody("rev2")
    a = m.create_node("t.work")
    b = m.create_node("t.model", config={"model": "tiny"})
    m.connect(a.id, "out", b.id, "x")
    executor.scripts[a.id] = Script(fail=99, kind=ErrorKind.PERSISTENT)
    policy = FixedPolicy(Strategy.RECONSTRUCT)
    c = Conductor(mem_pit, registry, executor, catalog=catalog, policy=policy)
    result = run(c, m)
    assert result.status == "failed"
    assert not policy.seen[0].can_reconstruct


def test_failure_context_features(
    mem_pit: Pit, registry: NodeTypeRegistry, executor: ScriptedExecutor, catalog: ModelCatalog
) -> None:
    m = Melody("ctx")
    n = m.create_node(
        "t.model",
        config={"model": "big"},
        policy=NodePolicy(
            max_retries=4, fallback_models=("small",), skippable=True, importance="critical"
        ),  # fmt: skip
    )
    executor.scripts[n.id] = Script(fail=1, kind=ErrorKind.RESOURCE)
    policy = FixedPolicy(Strategy.RETRY)
    c = Conductor(mem_pit, registry, executor, catalog=catalog, policy=policy)
    asyncio.run(c.run(m, RunOptions(budget=10.0, retry_backoff=0.0, risk_tolerance=0.2)))
    ctx = policy.seen[0]
    assert ctx.importance == 1.0
    assert ctx.error_kind is ErrorKind.RESOURCE
    assert (ctx.attempt, ctx.max_retries, ctx.fallbacks_left) == (1, 4, 1)
    assert ctx.skippable
    assert ctx.risk_tolerance == 0.2
    assert ctx.cost_retry == pytest.approx(0.1)  # big costs 1.0 of a 10.0 budget
    assert ctx.cost_fallback == pytest.approx(0.01)
    assert (ctx.model_failures, ctx.previous_kind, ctx.last_strategy) == (1, None, None)
    assert not ctx.inputs_skipped


def test_failure_history_reaches_the_policy(
    mem_pit: Pit, registry: NodeTypeRegistry, executor: ScriptedExecutor, catalog: ModelCatalog
) -> None:
    m = Melody("history")
    n = m.create_node(
        "t.model",
        config={"model": "big"},
        policy=NodePolicy(max_retries=5, fallback_models=("small",)),
    )
    later = m.create_node("t.model", config={"model": "tiny"})
    m.connect(n.id, "out", later.id, "x")
    executor.scripts[n.id] = Script(fail=2, fail_models=frozenset({"small"}))
    # retry, retry... on "big"; scripted: 2 failures then success
    policy = FixedPolicy(Strategy.RETRY)
    c = Conductor(mem_pit, registry, executor, catalog=catalog, policy=policy)
    asyncio.run(c.run(m, RunOptions(budget=10.0, retry_backoff=0.0)))
    first, second = policy.seen
    assert (first.model_failures, first.previous_kind, first.last_strategy) == (1, None, None)
    assert second.model_failures == 2
    assert second.previous_kind is ErrorKind.TRANSIENT
    assert second.last_strategy is Strategy.RETRY
    assert first.cost_rest == pytest.approx(0.001)  # "tiny" at 0.01 of a 10.0 budget


def test_traces_are_recorded_for_training(
    mem_pit: Pit, registry: NodeTypeRegistry, executor: ScriptedExecutor
) -> None:
    m = chain(["t.work"])
    executor.scripts["n1"] = Script(fail=1)
    result = run(conductor_for(mem_pit, registry, executor), m)
    assert TRACE_PREFIX + result.run_id in mem_pit.artifacts.names()
    traces = read_traces(mem_pit)
    assert len(traces) == 1
    assert traces[0].strategy is Strategy.RETRY
    assert traces[0].success


def test_operator_failure_is_not_retried(mem_pit: Pit, registry: NodeTypeRegistry) -> None:
    m = Melody("op")
    m.create_node("op.json_extract", config={"path": "$.a"})
    ex = ScriptedExecutor(registry)
    policy = FixedPolicy(Strategy.RETRY)
    c = Conductor(mem_pit, registry, ex, policy=policy)
    with pytest.raises(InvalidMelodyError, match="required input 'data'"):
        asyncio.run(c.run(m, FAST))


def test_invalid_melody_names_every_problem(
    mem_pit: Pit, registry: NodeTypeRegistry, executor: ScriptedExecutor
) -> None:
    m = Melody("bad")
    m.create_node("t.model", config={"model": "nope"})
    m.create_node("no.such_type")
    with pytest.raises(InvalidMelodyError) as info:
        run(conductor_for(mem_pit, registry, executor), m)
    text = str(info.value)
    assert "unknown model 'nope'" in text
    assert "no.such_type" in text


# ------------------------------------------------------------------------------ caching


def test_unchanged_nodes_are_served_from_the_store_across_restarts(
    open_pit: Any, registry: NodeTypeRegistry, tmp_path: Path
) -> None:
    m = chain(["t.inline", "t.work", "t.work"])
    ex1 = ScriptedExecutor(registry)
    with open_pit(tmp_path / "pit") as pit:
        first = run(conductor_for(pit, registry, ex1), m)
    assert first.status == "succeeded"
    ex2 = ScriptedExecutor(registry)
    with open_pit(tmp_path / "pit") as pit:
        second = run(conductor_for(pit, registry, ex2), m)
        assert [n.cached for n in second.nodes] == [True, True, True]
        assert sum(ex2.calls.values()) == 0
        assert second.outputs == first.outputs
        # change the middle node's config: it runs again; its output is the same as before
        # (the scripted work ignores "seed"), so its dependant is served from the store
        m.set_node_config("n2", {"seed": 7})
        third = run(conductor_for(pit, registry, ex2), m)
        assert [n.cached for n in third.nodes] == [True, False, True]
        assert dict(ex2.calls) == {"n2": 1}
        # change the first node: everything downstream of a changed output runs
        ex2.scripts["n1"] = Script(output="new")
        m.set_node_config("n1", {"seed": 1})
        fourth = run(conductor_for(pit, registry, ex2), m)
    assert [n.cached for n in fourth.nodes] == [False, False, False]


def test_types_touching_the_world_are_never_cached(
    mem_pit: Pit, registry: NodeTypeRegistry, executor: ScriptedExecutor
) -> None:
    m = chain(["t.work", "t.world"])
    run(conductor_for(mem_pit, registry, executor), m)
    second = run(conductor_for(mem_pit, registry, executor), m)
    assert [n.cached for n in second.nodes] == [True, False]
    assert dict(executor.calls) == {"n1": 1, "n2": 2}


def test_no_cache_option_runs_everything(
    mem_pit: Pit, registry: NodeTypeRegistry, executor: ScriptedExecutor
) -> None:
    m = chain(["t.work", "t.work"])
    run(conductor_for(mem_pit, registry, executor), m)
    run(conductor_for(mem_pit, registry, executor), m, RunOptions(use_cache=False))
    assert dict(executor.calls) == {"n1": 2, "n2": 2}


# ------------------------------------------------------------------------------ control


def test_breakpoint_pauses_and_step_continues(
    mem_pit: Pit, registry: NodeTypeRegistry, executor: ScriptedExecutor
) -> None:
    m = chain(["t.work", "t.work", "t.work"])
    m.set_breakpoint("n2", True)
    events: list[RunEvent] = []

    async def scenario() -> Any:
        c = conductor_for(mem_pit, registry, executor)
        c.subscribe(events.append)
        r = c.start(m, FAST)
        while r.state != "paused":
            await asyncio.sleep(0.005)
        assert dict(executor.calls) == {"n1": 1}
        paused = [e for e in events if isinstance(e, NodeStateChanged) and e.state == "paused"]
        assert [(e.node_id, e.detail) for e in paused] == [("n2", "breakpoint")]
        r.step()  # runs n2 only, then pauses before n3
        while executor.calls["n2"] == 0 or r.state != "paused":
            await asyncio.sleep(0.005)
        assert executor.calls["n3"] == 0
        r.resume()
        return await r.wait()

    result = asyncio.run(scenario())
    assert result.status == "succeeded"
    run_states = [e.state for e in events if isinstance(e, RunStateChanged)]
    assert run_states == ["running", "paused", "running", "paused", "running", "succeeded"]


def test_edits_during_a_run_wait_for_the_next_run_but_breakpoints_count_now(
    mem_pit: Pit, registry: NodeTypeRegistry, executor: ScriptedExecutor
) -> None:
    m = chain(["t.work", "t.work", "t.work", "t.work"])
    m.set_breakpoint("n2", True)

    async def scenario() -> Any:
        c = conductor_for(mem_pit, registry, executor)
        r = c.start(m, FAST)
        while r.state != "paused":
            await asyncio.sleep(0.005)
        # the board's melody is edited while the run waits at n2
        m.set_breakpoint("n3", True)
        m.remove_node("n4")
        (l12,) = m.outgoing("n1")
        m.remove_link(l12.id)
        m.set_name("renamed")
        r.resume()
        while executor.calls["n2"] == 0 or r.state != "paused":
            await asyncio.sleep(0.005)
        assert executor.calls["n3"] == 0  # the breakpoint set during the run held it
        r.resume()
        return await r.wait()

    result = asyncio.run(scenario())
    assert result.status == "succeeded"
    # the run is the melody as it started, as its record says: n2 got n1's output, n4 ran
    assert states(result) == dict.fromkeys(("n1", "n2", "n3", "n4"), "succeeded")
    assert result.outputs["n4.out"] == ["n4", {"x": ["n3", {"x": ["n2", {"x": ["n1", {}]}]}]}]
    mem_pit.artifacts.resolve(f"{OUTPUT_PREFIX}chain/n4/out")  # stored under the name it ran as


def test_step_mode_pauses_before_every_node(
    mem_pit: Pit, registry: NodeTypeRegistry, executor: ScriptedExecutor
) -> None:
    m = chain(["t.work", "t.work"])

    async def scenario() -> Any:
        r = conductor_for(mem_pit, registry, executor).start(
            m, RunOptions(step=True, durable=False)
        )
        for expected in (0, 1):
            while r.state != "paused":
                await asyncio.sleep(0.005)
            assert sum(executor.calls.values()) == expected
            r.step()
            await asyncio.sleep(0)
        return await r.wait()

    assert asyncio.run(scenario()).status == "succeeded"


@pytest.mark.parametrize("slow", ["n1", "n3"], ids=["own-task", "handed-on-task"])
def test_cancel_stops_running_nodes(
    mem_pit: Pit, registry: NodeTypeRegistry, executor: ScriptedExecutor, slow: str
) -> None:
    # n3 runs in the task n1 started (a chain is handed on): cancelling reaches it there too
    m = chain(["t.work", "t.work", "t.work", "t.work"])
    executor.scripts[slow] = Script(delay=10)

    events: list[RunEvent] = []

    async def scenario() -> Any:
        c = conductor_for(mem_pit, registry, executor)
        c.subscribe(events.append)
        r = c.start(m, FAST)
        while not (r.run_id in mem_pit.dag and mem_pit.dag.state(r.run_id, slow) == "running"):
            await asyncio.sleep(0.005)
        r.cancel()
        return await r.wait()

    result = asyncio.run(scenario())
    assert result.status == "cancelled"
    assert states(result)[slow] == "cancelled"
    assert mem_pit.dag.state(result.run_id, slow) == "cancelled"
    # what hangs on the stopped node was not run (not "skipped": a resume runs it)
    assert states(result)["n4"] == "cancelled"
    last = [e for e in events if isinstance(e, NodeStateChanged) and e.node_id == "n4"][-1]
    assert last.detail == STOPPED_BEFORE_START
    assert "n4" not in executor.calls


def test_edit_an_output_and_resume_downstream(
    mem_pit: Pit, registry: NodeTypeRegistry, executor: ScriptedExecutor
) -> None:
    m = chain(["t.work", "t.work", "t.work"])
    c = conductor_for(mem_pit, registry, executor)
    first = run(c, m)
    old = first.node("n2").artifacts["out"]
    new = c.edit_output(first.run_id, "n2", "out", "edited by hand")
    assert old in mem_pit.artifacts.info(new).inputs
    assert mem_pit.dag.state(first.run_id, "n3") == "ready"  # reset: it runs again

    async def resume() -> Any:
        return await c.resume(first.run_id, FAST).wait()

    result = asyncio.run(resume())
    assert result.status == "succeeded"
    assert dict(executor.calls) == {"n1": 1, "n2": 1, "n3": 2}
    assert result.outputs["n3.out"] == ["n3", {"x": "edited by hand"}]


def test_resume_unknown_run(
    mem_pit: Pit, registry: NodeTypeRegistry, executor: ScriptedExecutor
) -> None:
    c = conductor_for(mem_pit, registry, executor)
    with pytest.raises(RunNotFoundError, match="no run 'nope'"):
        c.resume("nope")


def test_events_describe_the_run(
    mem_pit: Pit, registry: NodeTypeRegistry, executor: ScriptedExecutor
) -> None:
    m = chain(["t.work", "t.inline"])
    events: list[RunEvent] = []
    c = conductor_for(mem_pit, registry, executor)
    c.subscribe(events.append)
    result = run(c, m, RunOptions(durable=True))
    kinds = [(type(e).__name__, getattr(e, "node_id", ""), getattr(e, "state", "")) for e in events]
    assert kinds[0] == ("RunStateChanged", "", "running")
    assert kinds[-1] == ("RunStateChanged", "", "succeeded")
    assert ("NodeStateChanged", "n1", "queued") in kinds
    assert ("NodeToken", "n1", "") in kinds
    assert ("NodeProgress", "n1", "") in kinds
    stored = [e for e in events if isinstance(e, ArtifactStored)]
    assert [(e.node_id, e.port) for e in stored] == [("n1", "out"), ("n2", "out")]
    assert all(e.run_id == result.run_id for e in events)
    # a success is announced after its artifact
    i_art = kinds.index(("ArtifactStored", "n1", ""))
    assert kinds.index(("NodeStateChanged", "n1", "succeeded")) > i_art


def test_apply_inputs_by_alias_and_node_field() -> None:
    m = Melody("in", metadata={"inputs": {"idea": "n1.prompt"}})
    m.create_node("t.work")
    apply_inputs(m, {"idea": "a game", "n1.max": "3"})
    assert m.node("n1").config == {"prompt": "a game", "max": 3}
    with pytest.raises(InvalidMelodyError, match=r"--input nope: not an input .*idea"):
        apply_inputs(m, {"nope": "x"})


def test_run_record_holds_the_melody(
    mem_pit: Pit, registry: NodeTypeRegistry, executor: ScriptedExecutor
) -> None:
    m = chain(["t.work"])
    c = conductor_for(mem_pit, registry, executor)
    result = run(c, m)
    record = c.record(result.run_id)
    assert record["status"] == "succeeded"
    assert list(c.melody_of(record).nodes) == ["n1"]
    assert c.run_ids() == [result.run_id]
    # the melody is stored once per revision, not once per run
    assert c.record(run(c, m).run_id)["melody"] == record["melody"]
    json.dumps(result.to_json())


def test_a_bug_in_an_executor_fails_the_node_not_the_conductor(
    mem_pit: Pit, registry: NodeTypeRegistry, executor: ScriptedExecutor
) -> None:
    m = chain(["t.work", "t.work"])

    async def broken(task: Any, sink: Any) -> Any:
        raise RuntimeError("executor bug")

    executor.run = broken  # type: ignore[method-assign]
    result = run(conductor_for(mem_pit, registry, executor), m)
    assert result.status == "failed"
    assert result.node("n1").error == "internal error: RuntimeError: executor bug"
    assert result.node("n2").state == "skipped"


def test_run_selected_and_run_from_here(
    mem_pit: Pit, registry: NodeTypeRegistry, executor: ScriptedExecutor
) -> None:
    # n1 → n2 → n3, and n4 on its own
    m = chain(["t.work", "t.work", "t.work"])
    m.create_node("t.work")
    c = conductor_for(mem_pit, registry, executor)
    run(c, m)
    assert dict(executor.calls) == {"n1": 1, "n2": 1, "n3": 1, "n4": 1}
    # run selected: n2 runs again; n1 (what it needs) comes from the store; n3, n4 are left
    sel = run(c, m, RunOptions.selected(m, ["n2"], retry_backoff=0.0))
    assert states(sel) == {"n1": "cached", "n2": "succeeded", "n3": "skipped", "n4": "skipped"}
    assert dict(executor.calls) == {"n1": 1, "n2": 2, "n3": 1, "n4": 1}
    # run from here: n2 and everything downstream run again
    here = run(c, m, RunOptions.from_here(m, ["n2"], retry_backoff=0.0))
    assert states(here) == {"n1": "cached", "n2": "succeeded", "n3": "succeeded",
                            "n4": "cached"}  # fmt: skip
    assert dict(executor.calls) == {"n1": 1, "n2": 3, "n3": 2, "n4": 1}
    with pytest.raises(InvalidMelodyError, match="no node 'n9'"):
        run(c, m, RunOptions.selected(m, ["n9"]))


def test_stored_values_are_the_json_of_the_value() -> None:
    import json

    from symphony.conductor.conductor import _decode, _encode

    for value in (0, -7, 2**63 + 1, True, False, None, 1.5, "text", [1, "a"], {"k": 2}):
        data, kind = _encode(value, None)
        assert kind == "json"
        assert data == json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()
        assert _decode(data, kind) == value
        assert type(_decode(data, kind)) is type(value)


# ------------------------------------------------------------------------------ run history

KEEP_ALL = RunOptions(retry_backoff=0.0, durable=False, use_cache=False)


def test_pruning_keeps_the_newest_runs_progress_and_every_runs_record(
    mem_pit: Pit, registry: NodeTypeRegistry, executor: ScriptedExecutor
) -> None:
    c = Conductor(mem_pit, registry, executor, policy=FixedPolicy(Strategy.RETRY), keep_runs=None)
    m = chain(["t.work", "t.work"])
    ids = [run(c, m, KEEP_ALL).run_id for _ in range(5)]
    assert sorted(mem_pit.dag.workflows()) == sorted(ids)
    assert c.prune_runs(2) == ids[:3]  # oldest first
    assert sorted(mem_pit.dag.workflows()) == sorted(ids[3:])
    assert c.prune_runs(2) == []
    for run_id in ids:  # records and outputs stay
        assert c.record(run_id)["status"] == "succeeded"
    for verb, call in [
        ("resumed", lambda: c.resume(ids[0])),
        ("edited", lambda: c.edit_output(ids[0], "n1", "out", "x")),
        ("edited", lambda: c.adopt_output(ids[0], "n1", 1)),
    ]:
        with pytest.raises(RunNotFoundError, match=f"cannot be {verb}: its progress was pruned"):
            call()
    # a kept run can still be edited and resumed
    c.edit_output(ids[3], "n1", "out", "edited")

    async def resume() -> Any:
        return await c.resume(ids[3], KEEP_ALL).wait()

    assert asyncio.run(resume()).outputs["n2.out"] == ["n2", {"x": "edited"}]
    # a resume is activity: the resumed run is now the newest
    assert c.prune_runs(1) == [ids[4]]


def test_pruning_ranks_runs_other_conductors_ended_and_workflows_others_dropped(
    mem_pit: Pit, registry: NodeTypeRegistry
) -> None:
    def conductor() -> Conductor:
        executor = ScriptedExecutor(registry)
        return Conductor(mem_pit, registry, executor, policy=FixedPolicy(Strategy.RETRY))

    c1, c2 = conductor(), conductor()
    m = chain(["t.work"])
    mine = [run(c1, m, KEEP_ALL).run_id for _ in range(3)]
    assert c1.prune_runs(3) == []  # ranked now
    theirs = [run(c2, m, KEEP_ALL).run_id for _ in range(2)]
    assert c1.prune_runs(3) == mine[:2]  # not mine[2] and theirs[0]: theirs are newer
    mem_pit.dag.drop_workflow(theirs[0])
    mem_pit.dag.create_workflow("someone-elses")
    assert c1.prune_runs(1) == [mine[2]]
    assert sorted(mem_pit.dag.workflows()) == sorted(["someone-elses", theirs[1]])


def test_pruned_runs_outputs_are_left_to_the_stale_manager(
    mem_pit: Pit, registry: NodeTypeRegistry, executor: ScriptedExecutor
) -> None:
    import time

    c = Conductor(mem_pit, registry, executor, policy=FixedPolicy(Strategy.RETRY), keep_runs=None)
    m = chain(["t.work", "t.work"])
    results = [run(c, m, KEEP_ALL) for _ in range(3)]
    outputs = {aid for r in results[:2] for n in r.nodes for aid in n.artifacts.values()}
    later = time.time() + 90 * 86_400  # cold by then

    def curatable() -> set[int]:
        report = mem_pit.stale.sweep(dry_run=True, now=later)
        return set(report.archive_candidates) | set(report.delete_candidates)

    assert not outputs & curatable()  # bound to a run's progress: referenced
    c.prune_runs(1)
    assert outputs <= curatable()
    kept = {aid for n in results[2].nodes for aid in n.artifacts.values()}
    assert not kept & curatable()


def test_runs_in_progress_and_workflows_without_a_run_are_never_pruned(
    mem_pit: Pit, registry: NodeTypeRegistry, executor: ScriptedExecutor
) -> None:
    c = Conductor(mem_pit, registry, executor, policy=FixedPolicy(Strategy.RETRY), keep_runs=None)
    mem_pit.dag.create_workflow("someone-elses")
    executor.scripts["n1"] = Script(delay=0.05)
    m = chain(["t.work"])

    async def main() -> tuple[list[str], str]:
        r = c.start(m, KEEP_ALL)
        await asyncio.sleep(0.01)
        pruned = c.prune_runs(0)  # while it runs
        await r.wait()
        return pruned, r.run_id

    pruned, run_id = asyncio.run(main())
    assert pruned == []
    assert c.prune_runs(0) == [run_id]
    assert mem_pit.dag.workflows() == ["someone-elses"]


@pytest.mark.parametrize("keep", [2, None])
def test_ended_runs_prune_the_history_back_to_keep_runs(
    mem_pit: Pit, registry: NodeTypeRegistry, executor: ScriptedExecutor, keep: int | None
) -> None:
    c = Conductor(mem_pit, registry, executor, policy=FixedPolicy(Strategy.RETRY), keep_runs=keep)
    m = chain(["t.inline"])
    ids = [run(c, m, KEEP_ALL).run_id for _ in range(9)]
    assert len(mem_pit.dag) == 9  # below keep + 8: no prune yet
    ids.append(run(c, m, KEEP_ALL).run_id)
    if keep is None:
        assert len(mem_pit.dag) == 10
    else:
        assert sorted(mem_pit.dag.workflows()) == sorted(ids[-2:])


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "3"])
def test_keep_runs_must_be_a_positive_whole_number(
    mem_pit: Pit, registry: NodeTypeRegistry, bad: Any
) -> None:
    with pytest.raises(ValueError, match=f"keep_runs must be .* not {bad!r}"):
        Conductor(mem_pit, registry, keep_runs=bad)
    c = Conductor(mem_pit, registry)
    if bad != 0:
        with pytest.raises(ValueError, match="keep must be a whole number"):
            c.prune_runs(bad)


# ------------------------------------------------------------------------------ session 12


def _priced_chain() -> Melody:
    """Two model nodes on "big" (1.0 a call; the scripted executor reports 0.5 spent)."""
    m = chain(["t.model", "t.model"])
    for nid in ("n1", "n2"):
        m.set_node_config(nid, {"model": "big"})
    return m


def test_a_call_over_the_budget_is_a_resource_failure_the_policy_decides(
    mem_pit: Pit, registry: NodeTypeRegistry, executor: ScriptedExecutor, catalog: ModelCatalog
) -> None:
    m = _priced_chain()
    m.set_node_policy("n2", NodePolicy(skippable=True, importance=Importance.LOW))
    policy = FixedPolicy(Strategy.SKIP)
    c = Conductor(mem_pit, registry, executor, catalog=catalog, policy=policy)
    # n1: 1.0 fits 1.2 and spends 0.5; n2: 0.5 spent + 1.0 asked does not fit, refused when
    # it is submitted to the Arbitration Engine (before, an internal error no policy saw)
    result = run(c, m, RunOptions(budget=1.2, retry_backoff=0.0, durable=False))
    assert result.status == "succeeded"
    n2 = result.node("n2")
    assert n2.state == "skipped"
    assert "internal error" not in n2.error
    assert n2.error.startswith("the run's budget of 1.2 does not cover a call to 'big'")
    assert "estimated at 1" in n2.error
    assert "0.5 spent" in n2.error
    assert [ctx.error_kind for ctx in policy.seen] == [ErrorKind.RESOURCE]
    assert "n2" not in executor.calls


@pytest.mark.parametrize("strategy", [Strategy.RETRY, Strategy.RECONSTRUCT, Strategy.FALLBACK])
def test_a_call_over_the_budget_is_not_retried_but_may_fall_back_to_a_cheaper_model(
    mem_pit: Pit,
    registry: NodeTypeRegistry,
    executor: ScriptedExecutor,
    catalog: ModelCatalog,
    strategy: Strategy,
) -> None:
    m = _priced_chain()
    m.set_node_policy("n2", NodePolicy(fallback_models=("small",)))
    policy = FixedPolicy(strategy)
    c = Conductor(mem_pit, registry, executor, catalog=catalog, policy=policy)
    result = run(c, m, RunOptions(budget=1.2, retry_backoff=0.0, durable=False))
    # the run only spends more: the same call cannot fit later, nor after rebuilding inputs
    (ctx,) = policy.seen
    assert (ctx.max_retries, ctx.can_reconstruct, ctx.fallbacks_left) == (0, False, 1)
    if strategy is Strategy.FALLBACK:  # "small" at 0.1 fits what is left
        assert result.status == "succeeded"
        assert executor.models[-1] == ("n2", "small")
    else:  # neither is on offer: the policy's fallback to abort
        assert result.node("n2").state == "failed"
        assert "n2" not in executor.calls


def test_a_models_token_price_counts_the_prompt_too(
    mem_pit: Pit, registry: NodeTypeRegistry
) -> None:
    from symphony.conductor.executor import NodeResult, NodeTask
    from symphony.conductor.models import ModelSpec

    class Metered(ScriptedExecutor):
        def _result(self, task: NodeTask) -> NodeResult:
            usage = {"prompt_tokens": 80, "completion_tokens": 20}
            return replace(super()._result(task), cost=0.0, tokens=20, extra={"usage": usage})

    catalog = ModelCatalog()
    catalog.add(ModelSpec("metered", {"kind": "openai"}, slots=1, price_per_token=0.001))
    m = chain(["t.model"])
    m.set_node_config("n1", {"model": "metered"})
    c = Conductor(mem_pit, registry, Metered(registry), catalog=catalog)
    result = run(c, m, RunOptions(durable=False))
    assert result.status == "succeeded"
    assert result.node("n1").cost == pytest.approx(0.1)  # (80 + 20) tokens × 0.001


def test_a_resume_with_a_bigger_budget_uses_it(
    mem_pit: Pit, registry: NodeTypeRegistry, executor: ScriptedExecutor, catalog: ModelCatalog
) -> None:
    m = _priced_chain()
    c = Conductor(mem_pit, registry, executor, catalog=catalog,
                  policy=FixedPolicy(Strategy.ABORT))  # fmt: skip
    first = run(c, m, RunOptions(budget=1.2, retry_backoff=0.0, durable=False))
    assert (first.status, first.node("n2").state) == ("failed", "failed")
    # another conductor on the same Pit (the Arbitration Engine keeps the run's 1.2 budget)
    again = Conductor(mem_pit, registry, executor, catalog=catalog,
                      policy=FixedPolicy(Strategy.ABORT))  # fmt: skip

    async def resume() -> Any:
        return await again.resume(first.run_id, RunOptions(budget=10.0, durable=False)).wait()

    result = asyncio.run(resume())
    assert result.status == "succeeded", result.node("n2").error
    assert executor.calls["n2"] == 1
    assert again.record(first.run_id)["options"]["budget"] == 10.0
    # n1 succeeded in the first session: the resumed run's report still tells what it cost
    # (no attempt in this session: it was not run again)
    n1 = result.node("n1")
    assert (n1.state, n1.attempts, n1.cost, n1.model) == ("succeeded", 0, 0.5, "big")


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("budget", float("nan"), "budget must be a number ≥ 0 or None, not nan"),
        ("budget", float("inf"), "budget must be a number ≥ 0 or None, not inf"),
        ("budget", -1.0, "budget must be a number ≥ 0 or None, not -1.0"),
        ("deadline", 0, "deadline must be a number of seconds > 0 or None, not 0"),
        ("max_parallel", 0, "max_parallel must be a whole number ≥ 1, not 0"),
        ("max_parallel", 2.5, "max_parallel must be a whole number ≥ 1, not 2.5"),
    ],
)
def test_run_options_refuse_values_a_record_cannot_hold(
    option: str, value: Any, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        RunOptions(**{option: value})


def test_stored_options_keep_the_runs_own_and_take_changes(
    mem_pit: Pit, registry: NodeTypeRegistry, executor: ScriptedExecutor
) -> None:
    c = conductor_for(mem_pit, registry, executor)
    first = run(c, chain(["t.work"]), RunOptions(use_cache=False, budget=0.5, max_parallel=1,
                                                 durable=False))  # fmt: skip
    stored = c.stored_options(first.run_id)
    assert (stored.use_cache, stored.budget, stored.max_parallel) == (False, 0.5, 1)
    changed = c.stored_options(first.run_id, budget=2.0)
    assert (changed.use_cache, changed.budget, changed.max_parallel) == (False, 2.0, 1)
    # a record from before session 12 could hold NaN: named, and replaceable
    record = c.record(first.run_id)
    record["options"]["budget"] = float("nan")
    with pytest.raises(InvalidMelodyError, match="its stored options: budget must be"):
        c.stored_options(first.run_id, record)
    assert c.stored_options(first.run_id, record, budget=None).budget is None
    with pytest.raises(TypeError, match="no run option 'budgte'"):
        c.stored_options(first.run_id, budgte=1.0)


def test_the_record_keeps_the_workspace_and_a_resume_may_change_it(
    mem_pit: Pit,
    registry: NodeTypeRegistry,
    executor: ScriptedExecutor,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    c = conductor_for(mem_pit, registry, executor)
    m = chain(["t.work", "t.work"])
    executor.scripts["n2"] = Script(fail=99)

    async def start() -> Any:
        return await c.start(m, FAST, workspace="ws").wait()

    first = asyncio.run(start())
    assert c.record(first.run_id)["workspace"] == str(tmp_path / "ws")  # made absolute
    assert history.read_run(mem_pit, first.run_id).workspace == str(tmp_path / "ws")
    executor.scripts["n2"] = Script()

    async def resume() -> Any:
        return await c.resume(first.run_id, workspace=tmp_path / "other").wait()

    assert asyncio.run(resume()).status == "succeeded"
    assert c.record(first.run_id)["workspace"] == str(tmp_path / "other")


def test_a_run_stopped_while_paused_reports_its_unstarted_nodes_as_not_run(
    mem_pit: Pit, registry: NodeTypeRegistry, executor: ScriptedExecutor
) -> None:
    m = chain(["t.work", "t.work", "t.work"])
    m.set_breakpoint("n2", True)
    events: list[RunEvent] = []
    c = conductor_for(mem_pit, registry, executor)
    c.subscribe(events.append)

    async def scenario() -> Any:
        r = c.start(m, FAST)
        while r.state != "paused":
            await asyncio.sleep(0.005)
        r.cancel()
        return await r.wait()

    result = asyncio.run(scenario())
    assert result.status == "cancelled"
    assert states(result) == {"n1": "succeeded", "n2": "cancelled", "n3": "cancelled"}
    last = {e.node_id: e for e in events if isinstance(e, NodeStateChanged)}
    assert (last["n2"].state, last["n2"].detail) == ("cancelled", STOPPED_BEFORE_START)
    assert last["n3"].state == "cancelled"
    # the DAG Tracker still has them to do: a resume runs them
    assert mem_pit.dag.state(result.run_id, "n2") == "ready"

    async def resume() -> Any:
        return await c.resume(result.run_id, replace(FAST, breakpoints=False)).wait()

    again = asyncio.run(resume())
    assert states(again) == {"n1": "succeeded", "n2": "succeeded", "n3": "succeeded"}
    assert dict(executor.calls) == {"n1": 1, "n2": 1, "n3": 1}


def test_a_recovery_names_its_strategy_once(
    mem_pit: Pit, registry: NodeTypeRegistry, executor: ScriptedExecutor
) -> None:
    executor.scripts["n1"] = Script(fail=1)
    c = Conductor(mem_pit, registry, executor, policy=HEURISTICS["retry-3-then-fail"])
    result = run(c, chain(["t.work"]))
    assert result.status == "succeeded"
    (recovery,) = result.node("n1").recoveries
    assert recovery.startswith("retry: transient error")
    assert "retry: retry" not in recovery


def test_a_pruned_runs_message_does_not_guess_how_many_runs_are_kept(
    mem_pit: Pit, registry: NodeTypeRegistry, executor: ScriptedExecutor
) -> None:
    c = Conductor(mem_pit, registry, executor, keep_runs=3)
    done = run(c, chain(["t.work"]))
    Conductor(mem_pit, registry, keep_runs=1).prune_runs(0)  # someone else pruned it
    with pytest.raises(RunNotFoundError) as e:
        c.resume(done.run_id)
    assert "its progress was pruned from the run history" in str(e.value)
    assert "3" not in str(e.value).replace(done.run_id, "")
