"""DAG Tracker from Python: semantics table, states, cycles, alternatives, checkpoints, planning,
artifact references, errors and persistence."""

from __future__ import annotations

import array
import gc
import random
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import networkx as nx
import pytest

from symphony.pit import (
    AlreadyExistsError,
    DagCycleError,
    IllegalTransitionError,
    InvalidArgumentError,
    NodeNotFoundError,
    Pit,
    PitClosedError,
    WorkflowNotFoundError,
)

TEST_KEY = bytes(range(32))
OUTCOMES = ["succeeded", "failed", "skipped", "cancelled"]
KINDS = ["hard", "soft", "optional", "parallel"]


def finish(dag: Any, wf: str, node: str, outcome: str) -> None:
    """Bring ``node`` to ``outcome`` (through running when the outcome needs a run)."""
    if outcome in ("succeeded", "failed"):
        dag.transition(wf, node, "running")
    dag.transition(wf, node, outcome)


def make(dag: Any, wf: str, nodes: list[str], edges: list[tuple[str, str, str]]) -> None:
    dag.create_workflow(wf)
    dag.add_nodes(wf, nodes)
    for s, t, k in edges:
        dag.add_edge(wf, s, t, k)


# ----- the semantics table: every cell ----------------------------------------------------------

# What the dependant d of x → d does, by edge kind and x's state.
TABLE = {
    # kind:     (x not finished, succeeded, failed, skipped, cancelled)
    "hard": ("pending", "ready", "skipped", "skipped", "skipped"),
    "soft": ("pending", "ready", "ready", "ready", "ready"),
    "optional": ("ready", "ready", "ready", "ready", "ready"),
    "parallel": ("ready", "ready", "ready", "ready", "ready"),
}


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("x_state", ["pending", "ready", "running"])
def test_table_while_dependency_unfinished(pit: Any, kind: str, x_state: str) -> None:
    dag = pit.dag
    make(dag, "w", ["up", "x", "d"], [("x", "d", kind)])
    if x_state == "pending":
        dag.add_edge("w", "up", "x")
    elif x_state == "running":
        dag.transition("w", "x", "running")
    assert dag.state("w", "x") == x_state
    assert dag.state("w", "d") == TABLE[kind][0]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("outcome", OUTCOMES)
def test_table_after_dependency_finished(pit: Any, kind: str, outcome: str) -> None:
    dag = pit.dag
    # `keep` needs x for real, so x is never skipped as unneeded.
    make(dag, "w", ["x", "d", "keep"], [("x", "d", kind), ("x", "keep", "hard")])
    finish(dag, "w", "x", outcome)
    assert dag.state("w", "d") == TABLE[kind][1 + OUTCOMES.index(outcome)]
    # The dependant can then run to completion whenever it is ready.
    if dag.state("w", "d") == "ready":
        finish(dag, "w", "d", "succeeded")
        assert dag.state("w", "d") == "succeeded"


def test_hard_failure_cascades_soft_edge_stops_it(pit: Any) -> None:
    dag = pit.dag
    make(
        dag,
        "w",
        ["a", "b", "c", "d"],
        [("a", "b", "hard"), ("b", "c", "hard"), ("c", "d", "soft")],
    )
    finish(dag, "w", "a", "failed")
    assert dag.states("w") == ["failed", "skipped", "skipped", "ready"]
    assert dag.is_complete("w") is False
    finish(dag, "w", "d", "succeeded")
    assert dag.is_complete("w") is True
    assert dag.counts("w") == {
        "pending": 0,
        "ready": 0,
        "running": 0,
        "succeeded": 1,
        "failed": 1,
        "skipped": 2,
        "cancelled": 0,
    }


def test_optional_dependency_is_skipped_gracefully(pit: Any) -> None:
    dag = pit.dag
    make(dag, "w", ["slow", "x", "d"], [("slow", "x", "hard"), ("x", "d", "optional")])
    assert dag.state("w", "d") == "ready"  # d does not wait for x
    dag.transition("w", "d", "running")
    # Nobody waits for x any more: it is skipped instead of run late for nothing.
    assert dag.state("w", "x") == "skipped"
    assert dag.state("w", "slow") == "ready"


def test_optional_dependency_taken_when_available(pit: Any) -> None:
    dag = pit.dag
    make(dag, "w", ["x", "d"], [("x", "d", "optional")])
    finish(dag, "w", "x", "succeeded")
    assert dag.node("w", "x").outcome == "succeeded"
    dag.transition("w", "d", "running")
    assert dag.state("w", "x") == "succeeded"


def test_parallel_groups(pit: Any) -> None:
    dag = pit.dag
    make(dag, "w", ["a", "b", "c", "d"], [("a", "b", "parallel"), ("c", "b", "parallel")])
    assert dag.parallel_groups("w") == [["a", "b", "c"]]
    assert ("b", "parallel") in dag.dependants("w", "a")
    assert ("a", "parallel") in dag.dependencies("w", "b")
    assert dag.ready("w") == ["a", "b", "c", "d"]


# ----- states and transitions --------------------------------------------------------------------

ALLOWED = {
    ("pending", "skipped"),
    ("pending", "cancelled"),
    ("ready", "running"),
    ("ready", "skipped"),
    ("ready", "cancelled"),
    ("running", "succeeded"),
    ("running", "failed"),
    ("running", "cancelled"),
}
STATES = ["pending", "ready", "running", "succeeded", "failed", "skipped", "cancelled"]


def put_in(dag: Any, wf: str, state: str) -> str:
    """A fresh node in ``state``."""
    node = f"n{len(dag.nodes(wf))}"
    dag.add_node(wf, node)
    if state == "pending":
        blocker = node + "-blocker"
        dag.add_node(wf, blocker)
        dag.add_edge(wf, blocker, node)
    elif state != "ready":
        if state in ("running", "succeeded", "failed"):
            dag.transition(wf, node, "running")
        if state != "running":
            dag.transition(wf, node, state)
    assert dag.state(wf, node) == state
    return node


@pytest.mark.parametrize("source", STATES)
@pytest.mark.parametrize("target", STATES)
def test_every_transition_allowed_or_rejected(pit: Any, source: str, target: str) -> None:
    dag = pit.dag
    dag.create_workflow("w")
    node = put_in(dag, "w", source)
    before = dag.states("w")
    if (source, target) in ALLOWED:
        dag.transition("w", node, target)
        assert dag.state("w", node) == target
    else:
        with pytest.raises(IllegalTransitionError) as e:
            dag.transition("w", node, target)
        assert e.value.subject == node
        assert f"{source} → {target}" in str(e.value)
        assert dag.states("w") == before


def test_ready_set_and_index_paths(pit: Any) -> None:
    dag = pit.dag
    make(dag, "w", ["a", "b", "c"], [("a", "c", "hard"), ("b", "c", "hard")])
    assert dag.ready("w") == ["a", "b"]
    assert dag.ready_idx("w") == [0, 1]
    h = dag.workflow_handle("w")
    assert dag.node_index("w", "b") == 1
    assert dag.node_name("w", 2) == "c"
    dag.transition_idx(h, 0, "running")
    dag.transition_idx(h, 0, "succeeded", duration=2.5)
    assert dag.node("w", "a").duration == 2.5
    assert dag.ready("w") == ["b"]
    assert dag.transition_batch("w", [1], "running") == 1
    assert dag.transition_batch("w", array.array("I", [1]), "succeeded") == 1
    assert dag.ready("w") == ["c"]
    assert dag.transition_batch("w", (2).to_bytes(4, "little"), "running") == 1
    assert dag.transition_batch("w", memoryview(array.array("I", [2])), "succeeded") == 1
    assert dag.is_complete("w")


def test_batch_stops_at_first_illegal_transition(pit: Any) -> None:
    dag = pit.dag
    make(dag, "w", ["a", "b", "c"], [("a", "c", "hard")])
    dag.transition_batch("w", [0, 1], "running")
    with pytest.raises(IllegalTransitionError, match="the 1 before it were applied") as e:
        dag.transition_batch("w", [0, 2, 1], "succeeded")
    assert e.value.subject == "c"
    assert dag.states("w") == ["succeeded", "running", "ready"]
    with pytest.raises(NodeNotFoundError):
        dag.transition_batch("w", [1, 7], "succeeded")
    assert dag.state("w", "b") == "running"  # unknown indexes refuse the whole batch
    with pytest.raises(InvalidArgumentError):
        dag.transition_batch("w", b"\x01\x00\x00", "succeeded")
    with pytest.raises(TypeError, match="nodes"):
        dag.transition_batch("w", "ab", "succeeded")


def test_cycle_detection_names_the_cycle_and_changes_nothing(pit: Any) -> None:
    dag = pit.dag
    make(dag, "w", ["a", "b", "c", "d"], [("a", "b", "hard"), ("b", "c", "soft")])
    with pytest.raises(DagCycleError) as e:
        dag.add_edge("w", "c", "a", "optional")
    assert e.value.cycle == ("c", "a", "b", "c")
    assert e.value.subject == ("c", "a", "b", "c")
    assert "c → a → b → c" in str(e.value)
    assert dag.dependants("w", "c") == []
    with pytest.raises(DagCycleError) as e:
        dag.add_edge("w", "d", "d")
    assert e.value.cycle == ("d", "d")
    with pytest.raises(DagCycleError):
        dag.add_edges("w", [("c", "d"), ("d", "a")])
    assert dag.dependants("w", "c") == []  # the batch is all or nothing
    assert dag.dependencies("w", "a") == []
    dag.add_edge("w", "c", "a", "parallel")  # no order, no cycle


def test_edges_only_into_unstarted_nodes(pit: Any) -> None:
    dag = pit.dag
    make(dag, "w", ["a", "b"], [])
    dag.transition("w", "b", "running")
    with pytest.raises(InvalidArgumentError, match="pending or ready"):
        dag.add_edge("w", "a", "b")
    # Adding a dependency to a ready node makes it wait again.
    dag.add_node("w", "c")
    assert dag.state("w", "c") == "ready"
    dag.add_edge("w", "a", "c")
    assert dag.state("w", "c") == "pending"


# ----- alternatives, re-execution, checkpoints ---------------------------------------------------


def test_alternative_paths(pit: Any) -> None:
    dag = pit.dag
    make(dag, "w", ["x", "y", "z", "d"], [("x", "d", "hard")])
    dag.add_alternative("w", "x", "y")
    dag.add_alternative("w", "x", "z")
    assert dag.alternatives("w", "x") == ["y", "z"]
    assert dag.state("w", "y") == "pending"
    finish(dag, "w", "x", "failed")
    assert dag.ready("w") == ["y"]
    finish(dag, "w", "y", "failed")
    assert dag.ready("w") == ["z"]
    finish(dag, "w", "z", "succeeded")
    assert dag.state("w", "d") == "ready"
    assert dag.node("w", "x").outcome == "succeeded"
    assert dag.node("w", "x").state == "failed"


def test_alternatives_skipped_when_primary_succeeds(pit: Any) -> None:
    dag = pit.dag
    make(dag, "w", ["x", "y", "d"], [("x", "d", "hard")])
    dag.add_alternative("w", "x", "y")
    finish(dag, "w", "x", "succeeded")
    assert dag.states("w") == ["succeeded", "skipped", "ready"]
    dag.add_node("w", "late")
    with pytest.raises(InvalidArgumentError, match="already decided"):
        dag.add_alternative("w", "x", "late")


def test_alternative_that_would_deadlock_is_a_cycle(pit: Any) -> None:
    dag = pit.dag
    make(dag, "w", ["x", "y", "d"], [("x", "d", "hard"), ("d", "y", "hard")])
    with pytest.raises(DagCycleError):
        dag.add_alternative("w", "x", "y")
    assert dag.alternatives("w", "x") == []


def test_partial_re_execution(pit: Any) -> None:
    dag = pit.dag
    make(
        dag,
        "w",
        ["a", "b", "c", "side"],
        [("a", "b", "hard"), ("b", "c", "hard")],
    )
    for n in ("a", "b"):
        finish(dag, "w", n, "succeeded")
    finish(dag, "w", "c", "failed")
    finish(dag, "w", "side", "succeeded")
    assert dag.reset("w", "b") == ["b", "c"]
    assert dag.states("w") == ["succeeded", "ready", "pending", "succeeded"]
    assert dag.node("w", "b").started_at is None


def test_checkpoint_and_rollback(pit: Any) -> None:
    dag = pit.dag
    make(dag, "w", ["a", "b"], [("a", "b", "hard")])
    cp = dag.checkpoint("w")
    finish(dag, "w", "a", "succeeded")
    dag.add_node("w", "c")
    cp2 = dag.checkpoint("w")
    assert dag.checkpoints("w") == [cp, cp2]
    dag.rollback("w", cp)
    assert dag.nodes("w") == ["a", "b"]
    assert dag.states("w") == ["ready", "pending"]
    dag.rollback("w", cp2)
    assert dag.states("w") == ["succeeded", "ready", "ready"]
    dag.drop_checkpoint("w", cp)
    assert dag.checkpoints("w") == [cp2]
    with pytest.raises(InvalidArgumentError, match="no checkpoint"):
        dag.rollback("w", cp)


# ----- planning ----------------------------------------------------------------------------------


def test_learned_estimates_and_critical_path(pit: Any) -> None:
    dag = pit.dag
    dag.create_workflow("w")
    dag.add_nodes("w", ["a", "b"], node_type="llm")
    dag.add_node("w", "c", estimate=5.0)
    dag.add_edges("w", [("a", "b"), ("b", "c")])
    assert dag.type_estimate("llm") is None
    dag.transition("w", "a", "running")
    pit.advance_clock(4.0)
    dag.transition("w", "a", "succeeded")
    assert dag.type_estimate("llm") == (4.0, 1)
    info = dag.node("w", "a")
    assert info.duration == 4.0
    assert info.finished_at is not None
    assert info.started_at is not None
    assert info.finished_at - info.started_at == pytest.approx(4.0)
    assert info.node_type == "llm"
    assert "NodeInfo(" in repr(info)
    dag.transition("w", "b", "running")
    dag.transition("w", "b", "succeeded", duration=8.0)
    assert dag.type_estimate("llm") == (5.0, 2)  # EWMA, alpha 0.25
    assert dag.node("w", "b").effective_estimate == 5.0
    length, path = dag.critical_path("w")
    assert length == pytest.approx(15.0)
    assert path == ["a", "b", "c"]
    assert dag.critical_path_idx("w") == (pytest.approx(15.0), [0, 1, 2])
    dag.set_estimate("w", "c", 1.0)
    assert dag.critical_path("w")[0] == pytest.approx(11.0)


def test_critical_path_and_slack_match_networkx(pit: Any) -> None:
    rng = random.Random(7)
    dag = pit.dag
    dag.create_workflow("w")
    n = 300
    weights = [rng.uniform(0.1, 10.0) for _ in range(n)]
    for i, w in enumerate(weights):
        dag.add_node("w", f"n{i}", estimate=w)
    edges = {(rng.randrange(j), j) for j in range(1, n) for _ in range(2)}
    dag.add_edges_idx("w", sorted(edges))
    length, path = dag.critical_path("w")
    g = nx.DiGraph()
    g.add_node("src")
    for i in range(n):
        g.add_edge("src", i, weight=weights[i])
    for s, t in edges:
        g.add_edge(s, t, weight=weights[t])
    expect = nx.dag_longest_path_length(g)
    assert length == pytest.approx(expect)
    assert sum(weights[int(p[1:])] for p in path) == pytest.approx(expect)
    slacks = dag.slacks("w")
    for p in path:
        assert dag.slack("w", p) == pytest.approx(0.0)
    # Slack by definition: longest path through the node vs the whole.
    rev = g.reverse()
    to_end = {v: 0.0 for v in range(n)}
    for v in reversed(list(nx.topological_sort(g))):
        if v == "src":
            continue
        to_end[v] = weights[v] + max((to_end[s] for s in g.successors(v)), default=0.0)
    del rev
    start = {v: 0.0 for v in range(n)}
    for v in nx.topological_sort(g):
        if v == "src":
            continue
        for s in g.successors(v):
            start[s] = max(start[s], start[v] + weights[v])
    for v in range(n):
        assert slacks[v] == pytest.approx(expect - start[v] - to_end[v], abs=1e-9)
    # The cached plan follows structural changes.
    dag.add_node("w", "tail", estimate=100.0)
    dag.add_edge("w", path[-1], "tail")
    assert dag.critical_path("w")[0] == pytest.approx(expect + 100.0)


def _expected_path(dag: Any, wf: str) -> tuple[float, list[str]]:
    """The critical path named through ``critical_path_idx`` and ``nodes`` (no cached names)."""
    length, idx = dag.critical_path_idx(wf)
    names = dag.nodes(wf)
    return length, [names[i] for i in idx]


def test_critical_path_names_follow_changes(pit: Any) -> None:
    """The binding caches node-id strings: they follow added nodes and edges, a workflow dropped
    and recreated under the same name, and rollbacks that give indexes to other nodes."""
    dag = pit.dag
    dag.create_workflow("w")
    assert dag.critical_path("w") == (0.0, [])
    dag.add_nodes("w", ["a", "b", "c"], estimate=1.0)
    dag.add_edges("w", [("a", "b"), ("b", "c")])
    assert dag.critical_path("w") == (pytest.approx(3.0), ["a", "b", "c"])
    assert dag.critical_path("w") == _expected_path(dag, "w")  # now from the cache
    # Nodes and edges added: new indexes get names, the old ones keep theirs.
    dag.add_nodes("w", ["d", "e"], estimate=5.0)
    dag.add_edges("w", [("c", "d"), ("d", "e")])
    assert dag.critical_path("w") == (pytest.approx(13.0), ["a", "b", "c", "d", "e"])
    # Dropped and recreated with the same name: same indexes, other ids.
    dag.drop_workflow("w")
    dag.create_workflow("w")
    dag.add_nodes("w", ["x", "y", "z", "u", "v"], estimate=2.0)
    dag.add_edges("w", [("x", "z"), ("z", "v")])
    assert dag.critical_path("w") == (pytest.approx(6.0), ["x", "z", "v"])
    assert dag.critical_path("w") == _expected_path(dag, "w")
    # Rollback: an index comes to name another node.
    cp = dag.checkpoint("w")
    dag.add_node("w", "old", estimate=50.0)
    assert dag.critical_path("w") == (pytest.approx(50.0), ["old"])
    dag.rollback("w", cp)
    dag.add_node("w", "new", estimate=60.0)
    assert dag.critical_path("w") == (pytest.approx(60.0), ["new"])
    assert dag.node_index("w", "new") == 5
    # Several workflows side by side.
    dag.create_workflow("w2")
    dag.add_nodes("w2", ["new", "p"], estimate=1.0)
    dag.add_edge("w2", "new", "p")
    assert dag.critical_path("w2") == (pytest.approx(2.0), ["new", "p"])
    assert dag.critical_path("w") == (pytest.approx(60.0), ["new"])


def test_critical_path_names_from_threads(pit: Any) -> None:
    """Readers naming paths while a writer adds nodes, drops and recreates the workflow."""
    dag = pit.dag
    dag.create_workflow("w")
    dag.add_nodes("w", [f"n{i}" for i in range(200)], estimate=1.0)
    dag.add_edges_idx("w", [(i, i + 1) for i in range(199)])
    stop = threading.Event()
    errors: list[BaseException] = []

    def reader() -> None:
        try:
            while not stop.is_set():
                try:
                    _, path = dag.critical_path("w")
                except WorkflowNotFoundError:
                    continue
                if not path:
                    continue
                prefix = path[0][0]
                assert path == [f"{prefix}{i}" for i in range(len(path))], path[:3]
        except BaseException as e:  # noqa: BLE001 - reported by the main thread
            errors.append(e)

    threads = [threading.Thread(target=reader) for _ in range(3)]
    for t in threads:
        t.start()
    try:
        for round_ in range(30):
            prefix = "mn"[round_ % 2]
            dag.drop_workflow("w")
            dag.create_workflow("w")
            dag.add_nodes("w", [f"{prefix}{i}" for i in range(150)], estimate=1.0)
            dag.add_edges_idx("w", [(i, i + 1) for i in range(149)])
            cp = dag.checkpoint("w")
            dag.add_node("w", f"{prefix}150", estimate=1.0)
            dag.add_edge("w", f"{prefix}149", f"{prefix}150")
            dag.rollback("w", cp)
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert not errors, errors
    assert dag.critical_path("w") == _expected_path(dag, "w")


# ----- artifacts ---------------------------------------------------------------------------------


def test_artifact_references(pit: Any) -> None:
    dag = pit.dag
    make(dag, "w", ["a", "b"], [])
    make(dag, "v", ["a"], [])
    assert dag.bind_artifact("w", "a", 5) is True
    assert dag.bind_artifact("w", "a", 5) is False
    dag.bind_artifact("w", "b", 3)
    dag.bind_artifact("v", "a", 5)
    assert dag.referenced_artifacts() == [3, 5]
    assert dag.node("w", "a").artifacts == [5]
    assert dag.unbind_artifact("w", "b", 3) is True
    assert dag.unbind_artifact("w", "b", 3) is False
    assert dag.referenced_artifacts() == [5]
    cp = dag.checkpoint("v")
    dag.unbind_artifact("v", "a", 5)
    dag.drop_workflow("w")
    assert dag.referenced_artifacts() == [5]  # still in v's checkpoint
    dag.drop_checkpoint("v", cp)
    assert dag.referenced_artifacts() == []
    dag.bind_artifact("v", "a", 9)
    dag.drop_workflow("v")
    assert dag.referenced_artifacts() == []


# ----- workflows, errors, types -------------------------------------------------------------------


def test_workflows_len_contains_repr(pit: Any) -> None:
    dag = pit.dag
    assert len(dag) == 0
    h1 = dag.create_workflow("b")
    h2 = dag.create_workflow("a")
    assert h1 != h2
    assert dag.workflows() == ["a", "b"]
    assert len(dag) == 2
    assert "a" in dag
    assert "zz" not in dag
    assert 3 not in dag
    assert repr(dag) == "DagTracker(2 workflows)"
    dag.drop_workflow("a")
    with pytest.raises(WorkflowNotFoundError):
        dag.transition_idx(h2, 0, "running")
    h3 = dag.create_workflow("a")
    assert h3 not in (h1, h2)  # handles are never reused


def test_every_error_variant(pit: Any) -> None:
    dag = pit.dag
    make(dag, "w", ["a", "b"], [("a", "b", "hard")])
    # WorkflowNotFound
    with pytest.raises(WorkflowNotFoundError) as wnf:
        dag.state("nope", "a")
    assert wnf.value.subject == "nope"
    # WorkflowExists
    with pytest.raises(AlreadyExistsError) as we:
        dag.create_workflow("w")
    assert we.value.subject == "w"
    # NodeNotFound
    with pytest.raises(NodeNotFoundError) as nnf:
        dag.transition("w", "zz", "running")
    assert nnf.value.subject == "zz"
    # NodeExists
    with pytest.raises(AlreadyExistsError) as ne:
        dag.add_nodes("w", ["c", "a"])
    assert ne.value.subject == "a"
    assert dag.nodes("w") == ["a", "b"]  # all or none
    # EdgeExists
    with pytest.raises(AlreadyExistsError) as ee:
        dag.add_edge("w", "a", "b", "soft")
    assert ee.value.subject == "b"
    # Cycle
    with pytest.raises(DagCycleError):
        dag.add_edge("w", "b", "a")
    # IllegalTransition
    with pytest.raises(IllegalTransitionError):
        dag.transition("w", "b", "running")
    # BatchStopped
    with pytest.raises(IllegalTransitionError):
        dag.transition_batch("w", [1], "running")
    # NodeStarted
    dag.transition("w", "a", "running")
    dag.add_node("w", "c")
    with pytest.raises(InvalidArgumentError):
        dag.add_edge("w", "c", "a")
    # CheckpointNotFound
    with pytest.raises(InvalidArgumentError) as cnf:
        dag.rollback("w", 42)
    assert cnf.value.subject == "w"
    # Invalid (bad values)
    for bad in (
        lambda: dag.transition("w", "a", "done"),
        lambda: dag.add_edge("w", "a", "c", "sometimes"),
        lambda: dag.add_node("w", "x", estimate=-1.0),
        lambda: dag.add_node("w", "x", estimate=float("nan")),
        lambda: dag.add_node("w", ""),
        lambda: dag.add_node("w", "x", node_type=""),
        lambda: dag.create_workflow(""),
        lambda: dag.add_alternative("w", "c", "c"),
        lambda: dag.transition("w", "a", "succeeded", duration=-2.0),
        lambda: dag.add_edge("w", "c", "c", "parallel"),
    ):
        with pytest.raises(InvalidArgumentError):
            bad()
    with pytest.raises(InvalidArgumentError, match="expected one of pending, ready"):
        dag.transition("w", "a", "done")


def test_wrong_argument_types_raise_type_error(pit: Any) -> None:
    dag = pit.dag
    make(dag, "w", ["a"], [])
    bad: list[tuple[str, Callable[[], object]]] = [
        ("workflow", lambda: dag.create_workflow(1)),
        ("node", lambda: dag.transition("w", 1, "running")),
        ("handle", lambda: dag.transition_idx("w", 0, "running")),
        ("nodes", lambda: dag.add_nodes("w", [1, 2])),
        ("edges", lambda: dag.add_edges("w", [("a", 1)])),
        ("artifact_id", lambda: dag.bind_artifact("w", "a", "x")),
        ("estimate", lambda: dag.set_estimate("w", "a", "slow")),
        ("state", lambda: dag.transition("w", "a", None)),
    ]
    for arg, f in bad:
        with pytest.raises(TypeError, match=arg):
            f()


# ----- persistence -------------------------------------------------------------------------------


def populate(dag: Any) -> int:
    dag.create_workflow("w")
    dag.add_nodes("w", ["a", "b", "c", "d", "e"], node_type="tool")
    dag.add_edges("w", [("a", "b"), ("b", "c")])
    dag.add_edge("w", "a", "d", "soft")
    dag.add_edge("w", "d", "e", "optional")
    dag.add_alternative("w", "b", "e")
    dag.bind_artifact("w", "a", 11)
    finish(dag, "w", "a", "succeeded")
    cp: int = dag.checkpoint("w")
    finish(dag, "w", "b", "failed")
    dag.transition_batch("w", [4], "running")
    return cp


def snapshot(dag: Any) -> tuple[object, ...]:
    return (
        dag.workflows(),
        dag.nodes("w"),
        dag.states("w"),
        dag.ready("w"),
        dag.checkpoints("w"),
        dag.alternatives("w", "b"),
        dag.referenced_artifacts(),
        dag.type_estimate("tool"),
        dag.dependencies("w", "c"),
        dag.critical_path("w"),
    )


def reopen(path: Path) -> Any:
    gc.collect()  # the data directory's lock goes with the last reference to the Pit
    return Pit.open(path, key=TEST_KEY, manual_clock=1e6)


def test_reopen_after_close(tmp_path: Path) -> None:
    p = reopen(tmp_path / "a")
    populate(p.dag)
    before = snapshot(p.dag)
    p.close()
    with pytest.raises(PitClosedError):
        p.dag.transition("w", "e", "succeeded")
    del p
    p2 = reopen(tmp_path / "a")
    try:
        assert snapshot(p2.dag) == before
    finally:
        p2.close()


def test_reopen_without_close_after_sync(tmp_path: Path) -> None:
    p = reopen(tmp_path / "b")
    cp = populate(p.dag)
    p.dag.transition("w", "e", "succeeded", durable=True)
    before = snapshot(p.dag)
    p.sync()
    # Dropped without close: no snapshot is written, reopening replays the journal.
    del p
    p2 = reopen(tmp_path / "b")
    try:
        assert snapshot(p2.dag) == before
        p2.dag.rollback("w", cp)
        assert p2.dag.states("w")[:2] == ["succeeded", "ready"]
    finally:
        p2.close()


def test_reopen_after_checkpoint_and_more_transitions(tmp_path: Path) -> None:
    p = reopen(tmp_path / "c")
    cp = populate(p.dag)
    p.checkpoint()  # snapshot of every component; later changes come from the journal
    p.dag.rollback("w", cp, durable=True)
    finish(p.dag, "w", "b", "succeeded")
    p.dag.drop_checkpoint("w", cp)
    cp2 = p.dag.checkpoint("w")
    p.dag.transition("w", "c", "running")
    before = snapshot(p.dag)
    p.sync()
    del p  # no close: snapshot + journal replay
    p2 = reopen(tmp_path / "c")
    try:
        assert snapshot(p2.dag) == before
        assert p2.dag.states("w")[:3] == ["succeeded", "succeeded", "running"]
        assert p2.dag.checkpoints("w") == [cp2]
    finally:
        p2.close()


def test_concurrent_transitions_from_threads(pit: Any) -> None:
    dag = pit.dag
    n = 4000
    dag.create_workflow("w")
    dag.add_nodes("w", [f"n{i}" for i in range(n)])
    dag.add_node("w", "sink")
    dag.add_edges_idx("w", [(i, n) for i in range(n)], "soft")
    errors: list[BaseException] = []

    def worker(k: int) -> None:
        try:
            mine = list(range(k, n, 4))
            half = len(mine) // 2
            for i in mine[:half]:
                dag.transition("w", f"n{i}", "running")
                dag.transition("w", f"n{i}", "succeeded")
            dag.transition_batch("w", mine[half:], "running")
            dag.transition_batch("w", array.array("I", mine[half:]), "failed")
        except BaseException as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    counts = dag.counts("w")
    assert counts["succeeded"] + counts["failed"] == n
    assert dag.ready("w") == ["sink"]  # released exactly once, by the last soft dependency
