"""The run history: summaries read from run records and the DAG Tracker, live and dead runs."""

from __future__ import annotations

import asyncio
import json
from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest

from symphony.conductor import EVENTS_PREFIX, RUN_PREFIX, history
from symphony.conductor import events as ev
from symphony.conductor.conductor import Conductor, RunOptions, RunResult
from symphony.conductor.models import ModelCatalog
from symphony.conductor.policy import Strategy
from symphony.pit import Pit
from symphony.registry import NodeTypeRegistry
from symphony.workflow import Melody, Node
from tests.conductor.conftest import Script, ScriptedExecutor, conductor_for, damage_artifact

KEY = bytes(range(32))


def chain(name: str, types: list[str]) -> Melody:
    """A chain n1 → n2 → … whose board positions run right to left (not dependency order)."""
    m = Melody(name)
    prev = None
    for i, t in enumerate(types):
        node = m.create_node(t, position=(1000.0 - 100 * i, 0.0))
        if prev is not None:
            m.connect(prev.id, "out", node.id, "x")
        prev = node
    return m


def run(c: Conductor, m: Melody, **options: Any) -> RunResult:
    async def go() -> RunResult:
        return await c.run(m, RunOptions(retry_backoff=0.0, **options))

    return asyncio.run(go())


def test_runs_are_listed_most_recent_first_with_what_became_of_them(
    mem_pit: Pit, registry: NodeTypeRegistry, executor: ScriptedExecutor, catalog: ModelCatalog
) -> None:
    c = conductor_for(mem_pit, registry, executor, catalog)
    good = chain("good", ["t.inline", "t.model", "t.work"])
    good.set_node_config("n2", {"model": "tiny"})
    ok = run(c, good)
    bad = chain("bad", ["t.inline", "t.work", "t.work"])
    executor.scripts["n2"] = Script(fail=99)
    failed = run(c, bad)
    assert (ok.status, failed.status) == ("succeeded", "failed")

    runs = history.list_runs(mem_pit)
    assert [r.run_id for r in runs] == [failed.run_id, ok.run_id]
    f, s = runs
    assert (s.melody, s.status, s.detail) == ("good", "succeeded", "")
    assert s.nodes == {"succeeded": 3}
    assert (s.done_nodes, s.total_nodes) == (3, 3)
    assert s.cost == pytest.approx(sum(n.cost for n in ok.nodes))
    assert s.cost > 0
    assert s.duration is not None
    assert s.finished is not None
    assert 0 <= s.duration <= s.finished - s.started + 1e-6
    assert not s.resumable  # it succeeded: nothing to continue
    assert (f.melody, f.status, f.detail) == ("bad", "failed", "failed: n2")
    # n1 came from the store (the first run made the same output); n3 never ran
    assert f.nodes == {"cached": 1, "failed": 1, "skipped": 1}
    assert (f.done_nodes, f.total_nodes) == (1, 3)
    assert f.kept
    assert f.resumable
    assert history.read_run(mem_pit, f.run_id) == f
    assert [r.run_id for r in history.list_runs(mem_pit, limit=1)] == [failed.run_id]
    assert history.list_runs(mem_pit, skip={failed.run_id}) == [s]
    as_json = f.to_json()
    assert as_json["resumable"] is True
    assert as_json["nodes"]["failed"] == 1
    json.dumps(as_json)


def test_a_live_run_shows_its_state_and_is_not_resumable(
    mem_pit: Pit, registry: NodeTypeRegistry, executor: ScriptedExecutor
) -> None:
    c = conductor_for(mem_pit, registry, executor)
    m = chain("slow", ["t.work", "t.work"])
    executor.scripts["n1"] = Script(delay=0.2)
    seen: dict[str, history.RunSummary] = {}

    async def go() -> None:
        r = c.start(m, RunOptions())
        await asyncio.sleep(0.05)
        seen["live"] = history.read_run(mem_pit, r.run_id, live={r.run_id: ev.RUN_PAUSED})
        seen["dead"] = history.read_run(mem_pit, r.run_id)  # as another process sees it
        await r.wait()

    asyncio.run(go())
    live, dead = seen["live"], seen["dead"]
    assert (live.status, live.live, live.finished, live.resumable) == ("paused", True, None, False)
    # its record says "running" but no live run owns it: its process died
    assert (dead.status, dead.detail, dead.duration) == ("interrupted", history.DIED, None)
    assert dead.resumable


def test_an_interrupted_run_resumed_later_adds_up_its_cost_and_running_time(
    mem_pit: Pit, registry: NodeTypeRegistry, executor: ScriptedExecutor, catalog: ModelCatalog
) -> None:
    c = conductor_for(mem_pit, registry, executor, catalog)
    m = chain("long", ["t.model", "t.work", "t.model"])
    m.set_node_config("n1", {"model": "tiny"})
    m.set_node_config("n3", {"model": "tiny"})
    executor.scripts["n2"] = Script(delay=0.3)

    async def go() -> tuple[RunResult, RunResult]:
        r = c.start(m, RunOptions(retry_backoff=0.0))
        while not r.reports() or r.reports()[0].state != ev.SUCCEEDED:
            await asyncio.sleep(0.01)
        r.cancel(interrupted=True)
        first = await r.wait()
        await asyncio.sleep(0.4)  # it lies stopped: that is not running time
        return first, await c.resume(r.run_id).wait()

    first, second = asyncio.run(go())
    assert (first.status, second.status) == ("interrupted", "succeeded")
    s = history.read_run(mem_pit, first.run_id)
    assert s.status == "succeeded"
    assert s.nodes == {"succeeded": 3}
    assert s.cost == pytest.approx(first.node("n1").cost + second.node("n3").cost)
    assert s.duration is not None
    assert s.finished is not None
    assert s.duration < s.finished - s.started - 0.3


def test_a_pruned_run_keeps_its_summary_but_cannot_be_resumed(
    mem_pit: Pit, registry: NodeTypeRegistry, executor: ScriptedExecutor
) -> None:
    c = conductor_for(mem_pit, registry, executor)
    executor.scripts["n2"] = Script(fail=99)
    r = run(c, chain("p", ["t.inline", "t.inline"]))
    assert c.prune_runs(0) == [r.run_id]
    s = history.read_run(mem_pit, r.run_id)
    assert (s.status, s.kept, s.resumable) == ("failed", False, False)
    assert s.nodes == {"succeeded": 1, "failed": 1}
    # the nodes, as the run's event log tells them (n2 failed, so the run logged)
    steps = history.node_steps(mem_pit, r.run_id)
    assert [(x.node_id, x.state, x.attempts) for x in steps] == [
        ("n1", "succeeded", 1),
        ("n2", "failed", 1),
    ]
    assert steps[0].outputs == tuple(r.node("n1").artifacts.values())
    assert steps[1].recoveries == ("abort",)
    assert steps[0].started is not None
    assert steps[0].took is not None
    # a run whose operators all succeeded at once logs nothing: once pruned, no nodes are known
    executor.scripts.clear()
    plain = run(c, chain("q", ["t.inline", "t.inline"]), use_cache=False)
    assert history.read_events(mem_pit, plain.run_id) == []
    assert c.prune_runs(0) == [plain.run_id]
    assert history.node_steps(mem_pit, plain.run_id) == []


def test_a_run_served_from_the_cache_logs_its_last_nodes(
    mem_pit: Pit, registry: NodeTypeRegistry, executor: ScriptedExecutor, catalog: ModelCatalog
) -> None:
    # durable runs tell a success only after its commit, and the last commit comes after the
    # log is written: the log must not wait for it, or a run's last nodes go missing from it
    c = conductor_for(mem_pit, registry, executor, catalog)
    run(c, chain("first", ["t.model", "t.work"]))
    again = run(c, chain("again", ["t.model", "t.work"]))
    assert [n.state for n in again.nodes] == ["cached", "cached"]
    assert again.run_id in c.prune_runs(0)
    steps = history.node_steps(mem_pit, again.run_id)
    assert [(x.node_id, x.shown_state, x.cached) for x in steps] == [
        ("n1", "cached", True),
        ("n2", "cached", True),
    ]
    assert steps[1].outputs == tuple(again.node("n2").artifacts.values())


def test_a_record_from_before_the_summary_counts_nodes_from_the_dag_tracker(
    mem_pit: Pit, registry: NodeTypeRegistry, executor: ScriptedExecutor
) -> None:
    c = conductor_for(mem_pit, registry, executor)
    r = run(c, chain("old", ["t.inline", "t.inline"]))
    record = json.loads(mem_pit.artifacts.get(RUN_PREFIX + r.run_id))
    for key in ("summary", "detail"):  # what session 9's conductor wrote
        del record[key]
    mem_pit.artifacts.put(RUN_PREFIX + r.run_id, json.dumps(record).encode(), kind="json")
    s = history.read_run(mem_pit, r.run_id)
    assert s.nodes == {"succeeded": 2}
    assert s.cost is None
    assert s.duration == pytest.approx(record["finished"] - record["started"])


def test_an_unreadable_record_is_named_and_left_out_of_the_list(
    mem_pit: Pit, registry: NodeTypeRegistry, executor: ScriptedExecutor
) -> None:
    c = conductor_for(mem_pit, registry, executor)
    good = run(c, chain("g", ["t.inline"]))
    mem_pit.artifacts.put(RUN_PREFIX + "junk", b"[1, 2]", kind="json")
    mem_pit.artifacts.put(RUN_PREFIX + "half", b'{"status": "running"}', kind="json")
    with pytest.raises(ValueError, match="run 'junk': its record is not readable"):
        history.read_run(mem_pit, "junk")
    with pytest.raises(ValueError, match="run 'half'.*started"):
        history.read_run(mem_pit, "half")
    with pytest.raises(history.RunNotFoundError, match="no run 'nope' in this data directory"):
        history.read_run(mem_pit, "nope")
    assert [s.run_id for s in history.list_runs(mem_pit)] == [good.run_id]


def test_node_steps_follow_the_dependencies_not_the_names(
    mem_pit: Pit, registry: NodeTypeRegistry, executor: ScriptedExecutor
) -> None:
    c = conductor_for(mem_pit, registry, executor)
    m = Melody("order")
    for nid in ("b", "a", "c"):  # the chain runs c → a → b
        m.add_node(Node(nid, "t.inline", nid))
    m.connect("c", "out", "a", "x")
    m.connect("a", "out", "b", "x")
    r = run(c, m)
    assert mem_pit.dag.nodes(r.run_id) != ["c", "a", "b"]
    steps = history.node_steps(mem_pit, r.run_id)
    assert [s.node_id for s in steps] == ["c", "a", "b"]
    assert all(s.state == "succeeded" and s.outputs for s in steps)
    assert all(s.started is not None and s.finished is not None for s in steps)


def test_run_order_puts_parallel_nodes_left_to_right() -> None:
    m = Melody("shape")
    root = m.create_node("op.template", position=(0.0, 0.0))
    right = m.create_node("op.split", position=(300.0, 0.0))
    left = m.create_node("op.split", position=(100.0, 0.0))
    m.connect(root.id, "text", right.id, "text")
    m.connect(root.id, "text", left.id, "text")
    assert history.run_order(m) == [root.id, left.id, right.id]


def test_replay_events_draw_a_kept_run_one_span_per_node(
    mem_pit: Pit, registry: NodeTypeRegistry, executor: ScriptedExecutor
) -> None:
    c = conductor_for(mem_pit, registry, executor)
    executor.scripts["n2"] = Script(fail=99)
    r = run(c, chain("replay", ["t.work", "t.work", "t.work"]))
    s = history.read_run(mem_pit, r.run_id)
    events = history.replay_events(s, history.node_steps(mem_pit, r.run_id))
    first, last = events[0], events[-1]
    assert isinstance(first, ev.RunStateChanged)
    assert first.state == "running"
    assert isinstance(last, ev.RunStateChanged)
    assert (last.state, last.detail, last.at) == ("failed", "failed: n2", s.finished)
    nodes = [(e.node_id, e.state) for e in events if isinstance(e, ev.NodeStateChanged)]
    assert nodes == [
        ("n1", "running"),
        ("n1", "succeeded"),
        ("n2", "running"),
        ("n2", "failed"),
        ("n3", "skipped"),
    ]
    assert [e.at for e in events] == sorted(e.at for e in events)


def _key(e: ev.RunEvent) -> tuple[Any, ...]:
    """An event without its time (the log keeps whole microseconds)."""
    return (type(e).__name__, *[getattr(e, f.name) for f in fields(e) if f.name != "at"])


def test_the_event_log_keeps_each_attempt_recovery_and_cost_as_they_went(
    mem_pit: Pit, registry: NodeTypeRegistry, executor: ScriptedExecutor, catalog: ModelCatalog
) -> None:
    c = conductor_for(mem_pit, registry, executor, catalog)
    live: list[ev.RunEvent] = []
    c.subscribe(live.append)
    m = chain("log", ["t.work", "t.model", "t.inline"])
    m.set_node_config("n2", {"model": "tiny"})
    executor.scripts["n2"] = Script(fail=2)
    r = run(c, m)
    assert r.status == "succeeded"

    logged = history.read_events(mem_pit, r.run_id)
    wanted = [e for e in live if type(e) in ev.LOGGED.values()]
    # What the run told its listeners, in the same order — but n3, an operator that succeeded
    # at once, comes at the end (it is only written down when the log is).
    assert [_key(e) for e in logged if getattr(e, "node_id", "") != "n3"] == [
        _key(e) for e in wanted if getattr(e, "node_id", "") != "n3"
    ]
    not_n3 = [e for e in wanted if getattr(e, "node_id", "") != "n3"]
    logged_not_n3 = [e for e in logged if getattr(e, "node_id", "") != "n3"]
    for got, sent in zip(logged_not_n3, not_n3, strict=True):
        assert got.at == pytest.approx(sent.at, abs=2e-6)
    n3 = [
        (type(e).__name__, getattr(e, "state", ""))
        for e in logged
        if getattr(e, "node_id", "") == "n3"
    ]
    assert n3 == [
        ("NodeStateChanged", "running"),
        ("ArtifactStored", ""),
        ("NodeStateChanged", "succeeded"),
    ]

    steps = {x.node_id: x for x in history.node_steps(mem_pit, r.run_id)}
    n2 = steps["n2"]
    assert (n2.state, n2.attempts, n2.recoveries, n2.model) == (
        "succeeded",
        3,
        ("retry", "retry"),
        "tiny",
    )
    assert n2.attempts_text == "3: retry, retry"
    assert n2.cost == pytest.approx(r.node("n2").cost)
    assert steps["n1"].attempts == 1
    assert steps["n1"].attempts_text == "1"

    # The replay draws each attempt and decision, as the live run did.
    s = history.read_run(mem_pit, r.run_id)
    replay = history.replay_events(s, list(steps.values()), logged)
    assert [e.at for e in replay] == sorted(e.at for e in replay)

    def story(events: list[ev.RunEvent], node: str) -> list[tuple[Any, ...]]:
        return [
            _key(e)
            for e in events
            if getattr(e, "node_id", "") == node and type(e) in ev.LOGGED.values()
        ]

    assert story(replay, "n2") == story(live, "n2")
    assert sum(isinstance(e, ev.RecoveryChosen) for e in replay) == 2
    last = replay[-1]
    assert isinstance(last, ev.RunStateChanged)
    assert last.state == "succeeded"


def test_a_resumed_run_logs_each_session_and_a_node_done_before_shows_once(
    mem_pit: Pit, registry: NodeTypeRegistry, executor: ScriptedExecutor
) -> None:
    c = conductor_for(mem_pit, registry, executor)
    m = chain("twice", ["t.work", "t.work"])
    executor.scripts["n2"] = Script(delay=0.3)

    async def go() -> RunResult:
        r = c.start(m, RunOptions(retry_backoff=0.0))
        while not r.reports() or r.reports()[0].state != ev.SUCCEEDED:
            await asyncio.sleep(0.01)
        r.cancel(interrupted=True)
        await r.wait()
        return await c.resume(r.run_id).wait()

    r = asyncio.run(go())
    data = mem_pit.artifacts.get(EVENTS_PREFIX + r.run_id)
    assert len(data.splitlines()) == 2  # one line per session
    logged = history.read_events(mem_pit, r.run_id)
    runs = [e.state for e in logged if isinstance(e, ev.RunStateChanged)]
    assert runs == ["running", "interrupted", "running", "succeeded"]
    s = history.read_run(mem_pit, r.run_id)
    replay = history.replay_events(s, history.node_steps(mem_pit, r.run_id), logged)
    n1 = [e.state for e in replay if isinstance(e, ev.NodeStateChanged) and e.node_id == "n1"]
    assert n1 == ["queued", "running", "succeeded"]  # not again at the resume
    n2 = [e.state for e in replay if isinstance(e, ev.NodeStateChanged) and e.node_id == "n2"]
    assert n2 == ["queued", "running", "cancelled", "queued", "running", "succeeded"]


def test_attempts_add_up_across_a_resume(
    mem_pit: Pit, registry: NodeTypeRegistry, executor: ScriptedExecutor
) -> None:
    c = conductor_for(mem_pit, registry, executor, strategy=Strategy.ABORT)
    executor.scripts["n1"] = Script(fail=1)  # fails once, then works
    first = run(c, chain("again", ["t.work"]))
    assert first.status == "failed"

    async def resume() -> RunResult:
        return await c.resume(first.run_id).wait()

    assert asyncio.run(resume()).status == "succeeded"
    (step,) = history.node_steps(mem_pit, first.run_id)
    # each session counts its attempts from 1: the log's highest said 1, for 2 attempts
    assert (step.state, step.attempts, step.recoveries) == ("succeeded", 2, ("abort",))
    assert step.attempts_text == "2: abort"


def test_a_damaged_record_is_named_as_damaged_and_listed(
    tmp_path: Path, registry: NodeTypeRegistry, executor: ScriptedExecutor
) -> None:
    data = tmp_path / "pit"
    with Pit.open(data, key=KEY) as pit:
        c = conductor_for(pit, registry, executor)
        victim = run(c, chain("victim", ["t.inline"]))
        fine = run(c, chain("fine", ["t.inline"]))
        record = pit.artifacts.versions(RUN_PREFIX + victim.run_id)[-1]
    damage_artifact(data, record, key=KEY)
    with Pit.open(data, key=KEY) as pit:
        with pytest.raises(history.RunRecordDamagedError) as e:
            history.read_run(pit, victim.run_id)
        message = str(e.value)
        assert message.startswith(f"run {victim.run_id!r}: its record in this data directory is")
        assert f"artifact {record} failed its integrity check" in message
        assert isinstance(e.value, history.RunNotFoundError)  # who cannot use it: not found
        # an unknown run is still just not found
        with pytest.raises(history.RunNotFoundError) as none:
            history.read_record(pit, "nope")
        assert not isinstance(none.value, history.RunRecordDamagedError)
        listed = {r.run_id: r for r in history.list_runs(pit)}
        assert set(listed) == {victim.run_id, fine.run_id}
        damaged = listed[victim.run_id]
        assert (damaged.status, damaged.resumable, damaged.detail) == (
            history.DAMAGED,
            False,
            message,
        )
        assert damaged.started > 0
        assert listed[fine.run_id].status == "succeeded"


def test_nodes_a_stopped_run_never_started_are_logged_as_not_run(
    mem_pit: Pit, registry: NodeTypeRegistry, executor: ScriptedExecutor
) -> None:
    c = conductor_for(mem_pit, registry, executor)
    m = chain("stopped", ["t.work", "t.work", "t.work"])
    m.set_breakpoint("n2", True)

    async def stop_at_the_breakpoint() -> RunResult:
        r = c.start(m, RunOptions(retry_backoff=0.0))
        while r.state != ev.RUN_PAUSED:
            await asyncio.sleep(0.005)
        r.cancel()
        return await r.wait()

    r = asyncio.run(stop_at_the_breakpoint())
    mem_pit.dag.drop_workflow(r.run_id)  # pruned: the log alone tells its nodes
    steps = {s.node_id: s for s in history.node_steps(mem_pit, r.run_id)}
    assert {n: s.state for n, s in steps.items()} == {
        "n1": "succeeded",
        "n2": "cancelled",
        "n3": "cancelled",
    }
    # they never ran: no span, no attempt
    assert [(s.took, s.attempts) for s in (steps["n2"], steps["n3"])] == [(None, 0), (None, 0)]
