"""Branches and what a run tells of them: gates, scores, conditions, skips, parallel links, step.

The QA findings of session 13 (qa3): a quality gate's branch not taken, the ``score`` a link
condition reads, a condition that cannot be evaluated, the reason of a graceful skip, the value of
a parallel link, ``step()`` on a running run, option checks and ``--input`` aliases.
"""

from __future__ import annotations

import asyncio
import math
from typing import Any

import pytest

from symphony.conductor.conductor import (
    Conductor,
    InvalidMelodyError,
    RunOptions,
    _semantic_score,
    apply_inputs,
)
from symphony.conductor.events import NodeStateChanged, RecoveryChosen
from symphony.conductor.executor import NodeResult, NodeTask
from symphony.conductor.policy import ErrorKind, Strategy
from symphony.pit import Pit
from symphony.registry import NodeTypeRegistry, description_from_dict
from symphony.workflow import DependencyKind, Melody
from tests.conductor.conftest import Script, ScriptedExecutor, conductor_for

FAST = RunOptions(retry_backoff=0.0, durable=False)


def run(conductor: Conductor, melody: Melody, options: RunOptions = FAST) -> Any:
    return asyncio.run(conductor.run(melody, options))


def states(result: Any) -> dict[str, str]:
    return {n.id: n.state for n in result.nodes}


class ReviewExecutor(ScriptedExecutor):
    """Runs ``t.review`` (outputs ``findings`` and ``score``) with the score each test sets."""

    def __init__(self, registry: NodeTypeRegistry) -> None:
        super().__init__(registry)
        self.review: dict[str, Any] = {}

    async def run(self, task: NodeTask, sink: Any) -> NodeResult:
        if task.type_id == "t.review":
            self.calls[task.node_id] += 1
            return NodeResult(dict(self.review))
        return await super().run(task, sink)


@pytest.fixture
def review_registry(registry: NodeTypeRegistry) -> NodeTypeRegistry:
    registry.register(
        description_from_dict(
            {
                "id": "t.review",
                "version": "1.0.0",
                "title": "Review",
                "category": "Instruments",
                "inputs": [{"name": "x", "type": "any"}],
                "outputs": [
                    {"name": "findings", "type": "markdown"},
                    {"name": "score", "type": "json"},
                ],
            },
            source="tests",
        )
    )
    return registry


def _review_branches(cond_hi: str, cond_lo: str) -> tuple[Melody, str, str, str]:
    m = Melody("review")
    rev = m.create_node("t.review", name="review")
    hi = m.create_node("t.work", name="hi")
    lo = m.create_node("t.work", name="lo")
    m.connect(rev.id, "findings", hi.id, "x", condition=cond_hi)
    m.connect(rev.id, "findings", lo.id, "x", condition=cond_lo)
    return m, rev.id, hi.id, lo.id


# ------------------------------------------------------------------------------ bug 1


@pytest.mark.parametrize(("value", "taken", "not_taken"), [("long enough", 0, 1), ("hi", 1, 0)])
def test_quality_gate_port_not_produced_skips_its_branch(
    mem_pit: Pit,
    registry: NodeTypeRegistry,
    executor: ScriptedExecutor,
    value: str,
    taken: int,
    not_taken: int,
) -> None:
    m = Melody("gate")
    src = m.create_node("op.template", name="src", config={"template": value})
    gate = m.create_node("op.quality_gate", name="gate", config={"condition": "length > 3"})
    ok = m.create_node("op.template", name="ok", config={"template": "PASSED: {input}"})
    bad = m.create_node("t.work", name="bad")
    after = m.create_node("t.work", name="after")
    m.connect(src.id, "text", gate.id, "value")
    m.connect(gate.id, "passed", ok.id, "input")
    m.connect(gate.id, "failed", bad.id, "x")
    m.connect(bad.id, "out", after.id, "x")
    events: list[NodeStateChanged] = []
    c = conductor_for(mem_pit, registry, executor)
    c.subscribe(lambda e: events.append(e) if isinstance(e, NodeStateChanged) else None)
    result = run(c, m)
    branches = [ok.id, bad.id]
    assert result.status == "succeeded", result.detail
    assert result.node(branches[taken]).state == "succeeded"
    assert result.node(branches[not_taken]).state == "skipped"
    port = ("passed", "failed")[not_taken]
    detail = next(e.detail for e in events if e.node_id == branches[not_taken])
    assert detail == (
        f"branch not taken: {gate.id!r} produced no {port!r} output "
        f"(link {m.incoming(branches[not_taken])[0].id!r})"
    )
    # what hangs on the branch not taken goes with it
    assert result.node(after.id).state == ("skipped" if not_taken else "succeeded")
    assert executor.calls[bad.id] == (0 if not_taken else 1)


def test_a_soft_link_from_a_port_not_produced_leaves_the_input_empty(
    mem_pit: Pit, registry: NodeTypeRegistry, executor: ScriptedExecutor
) -> None:
    m = Melody("gate")
    src = m.create_node("op.template", name="src", config={"template": "long enough"})
    gate = m.create_node("op.quality_gate", name="gate", config={"condition": "length > 3"})
    either = m.create_node("t.work", name="either")
    m.connect(src.id, "text", gate.id, "value")
    m.connect(gate.id, "failed", either.id, "x", kind=DependencyKind.SOFT)
    result = run(conductor_for(mem_pit, registry, executor), m)
    assert result.node(either.id).state == "succeeded"
    assert result.outputs[f"{either.id}.out"] == [either.id, {}]


# ------------------------------------------------------------------------------ bug 2


@pytest.mark.parametrize(
    ("score", "branch", "quality"),
    [
        (0.1, "lo", 0.1),
        (0.9, "hi", 0.9),
        (9, "hi", 0.9),
        (85, "hi", 0.85),
        (6.9, "lo", 0.69),
        (0.7, "hi", 0.7),  # at the threshold, though the store keeps 0.69999998
        (7, "hi", 0.7),
    ],
)
def test_score_in_a_condition_is_the_nodes_own_score(
    mem_pit: Pit, review_registry: NodeTypeRegistry, score: float, branch: str, quality: float
) -> None:
    ex = ReviewExecutor(review_registry)
    ex.review = {"findings": "fine", "score": score}
    m, rev, hi, lo = _review_branches("score >= 0.7", "score < 0.7")
    result = run(conductor_for(mem_pit, review_registry, ex), m)
    assert result.status == "succeeded"
    taken, other = (hi, lo) if branch == "hi" else (lo, hi)
    assert (result.node(taken).state, result.node(other).state) == ("succeeded", "skipped")
    # the store keeps it as the outputs' semantic quality, normalised to 0..1
    for aid in result.node(rev).artifacts.values():
        q = mem_pit.artifacts.quality(aid)
        assert q.semantics is not None
        assert math.isclose(q.semantics, quality, rel_tol=1e-6)  # kept in single precision


def test_score_is_null_without_a_score_not_the_structure_score(
    mem_pit: Pit, review_registry: NodeTypeRegistry
) -> None:
    ex = ReviewExecutor(review_registry)
    ex.review = {"findings": "the model gave no score", "score": None}
    m, rev, hi, lo = _review_branches("score != null and score >= 0.8", "score == null")
    result = run(conductor_for(mem_pit, review_registry, ex), m)
    assert states(result) == {rev: "succeeded", hi: "skipped", lo: "succeeded"}
    aid = result.node(rev).artifacts["findings"]
    assert mem_pit.artifacts.quality(aid).structure == 1.0  # well-formed: not what score reads
    assert mem_pit.artifacts.quality(aid).semantics is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0, 0.0),
        (1, 1.0),
        (0.5, 0.5),
        (10, 1.0),
        (55.0, 0.55),
        (100, 1.0),
        (101, None),
        (-0.1, None),
        (True, None),
        ("0.9", None),
        (None, None),
        (math.nan, None),
        (math.inf, None),
    ],
)
def test_semantic_score_normalisation(value: Any, expected: float | None) -> None:
    got = _semantic_score(value)
    if expected is None:
        assert got is None
    else:
        assert got is not None
        assert math.isclose(got, expected)


# ------------------------------------------------------------------------------ bug 3


def test_a_condition_that_cannot_be_evaluated_fails_its_target_with_the_error(
    mem_pit: Pit, registry: NodeTypeRegistry, executor: ScriptedExecutor
) -> None:
    m = Melody("ce")
    src = m.create_node("t.work", name="review")
    hi = m.create_node("t.work", name="hi")
    soft = m.create_node("t.work", name="soft")
    executor.scripts[src.id] = Script(output={"findings": "no score given"})
    l1 = m.connect(src.id, "out", hi.id, "x", condition="value.score >= 0.8")
    l2 = m.connect(
        src.id, "out", soft.id, "x", condition="value.score < 0.8", kind=DependencyKind.SOFT
    )
    events: list[NodeStateChanged] = []
    c = conductor_for(mem_pit, registry, executor)
    c.subscribe(lambda e: events.append(e) if isinstance(e, NodeStateChanged) else None)
    result = run(c, m)
    assert result.status == "failed"
    assert result.detail == f"failed: {hi.id}, {soft.id}"
    for node, link, op in ((hi, l1, ">="), (soft, l2, "<")):
        error = (
            f"condition of link {link.id!r} cannot be evaluated: cannot compare null with a "
            f"number (null {op} 0.8)"
        )
        assert (result.node(node.id).state, result.node(node.id).error) == ("failed", error)
        assert [(e.state, e.detail) for e in events if e.node_id == node.id] == [("failed", error)]
    assert executor.calls[hi.id] == executor.calls[soft.id] == 0


# ------------------------------------------------------------------------------ bug 4


def test_a_graceful_skip_says_it_was_not_needed(
    mem_pit: Pit, registry: NodeTypeRegistry, executor: ScriptedExecutor
) -> None:
    m = Melody("opt")
    a = m.create_node("t.work", name="A")
    b = m.create_node("t.work", name="B")
    c = m.create_node("t.work", name="C")
    m.connect(a.id, "out", b.id, "x")
    m.connect(b.id, "out", c.id, "x", kind=DependencyKind.OPTIONAL)
    executor.scripts[a.id] = Script(delay=0.2)
    events: list[NodeStateChanged] = []
    cond = conductor_for(mem_pit, registry, executor)
    cond.subscribe(lambda e: events.append(e) if isinstance(e, NodeStateChanged) else None)
    result = run(cond, m)
    assert states(result) == {a.id: "succeeded", b.id: "skipped", c.id: "succeeded"}
    (skip,) = [e for e in events if e.node_id == b.id]
    assert skip.detail == (
        f"not needed: {c.id!r} took its optional input without waiting for it, so it was not run"
    )


def test_a_cascaded_skip_names_the_upstream_node(
    mem_pit: Pit, registry: NodeTypeRegistry, executor: ScriptedExecutor
) -> None:
    m = Melody("chain")
    a = m.create_node("t.work", name="A")
    b = m.create_node("t.work", name="B")
    m.connect(a.id, "out", b.id, "x")
    executor.scripts[a.id] = Script(fail=9, kind=ErrorKind.PERSISTENT)
    events: list[NodeStateChanged] = []
    cond = conductor_for(mem_pit, registry, executor, strategy=Strategy.ABORT)
    cond.subscribe(lambda e: events.append(e) if isinstance(e, NodeStateChanged) else None)
    result = run(cond, m)
    assert states(result) == {a.id: "failed", b.id: "skipped"}
    (skip,) = [e for e in events if e.node_id == b.id]
    assert skip.detail == f"upstream node {a.id!r} failed"


# ------------------------------------------------------------------------------ bug 5


def test_a_parallel_link_delivers_a_value_ready_before_the_target_starts(
    mem_pit: Pit, registry: NodeTypeRegistry, executor: ScriptedExecutor
) -> None:
    m = Melody("par")
    src = m.create_node("t.inline", name="S")
    dst = m.create_node("t.work", name="D")
    m.connect(src.id, "out", dst.id, "x", kind=DependencyKind.PARALLEL)
    result = run(conductor_for(mem_pit, registry, executor), m)
    assert result.outputs[f"{dst.id}.out"] == [dst.id, {"x": [src.id, {}]}]


# ------------------------------------------------------------------------------ bug 9 (operator)


def test_an_operator_abort_does_not_blame_retries(
    mem_pit: Pit, registry: NodeTypeRegistry, executor: ScriptedExecutor
) -> None:
    m = Melody("op")
    bad = m.create_node("op.json_extract", name="bad", config={"path": "$"})
    src = m.create_node("op.template", name="src", config={"template": "not json"})
    m.connect(src.id, "text", bad.id, "data")
    chosen: list[RecoveryChosen] = []
    cond = conductor_for(mem_pit, registry, executor, strategy=Strategy.ABORT)
    cond.subscribe(lambda e: chosen.append(e) if isinstance(e, RecoveryChosen) else None)
    result = run(cond, m)
    assert result.node(bad.id).state == "failed"
    (event,) = chosen
    assert event.reason == (
        "abort: persistent error in an operator: operators are never retried (the same inputs "
        "fail the same way), and the step may not be skipped"
    )
    assert "retries left" not in result.node(bad.id).recoveries[0]


# ------------------------------------------------------------------------------ bug 10


def test_an_input_alias_to_a_missing_node_says_so() -> None:
    m = Melody("in", metadata={"inputs": {"bad": "nosuch.template", "nodot": "x"}})
    m.create_node("op.template", name="t", config={"template": "x"})
    with pytest.raises(InvalidMelodyError) as e:
        apply_inputs(m, {"bad": "1"})
    assert str(e.value) == (
        "--input bad: the melody's named input 'bad' (metadata.inputs) refers to "
        "'nosuch.template': node 'nosuch', which is not in the melody"
    )
    with pytest.raises(InvalidMelodyError, match="refers to 'x': no NODE.FIELD"):
        apply_inputs(m, {"nodot": "1"})
    with pytest.raises(InvalidMelodyError, match=r"--input zz: not an input of this melody"):
        apply_inputs(m, {"zz": "1"})


# ------------------------------------------------------------------------------ bug 11


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("risk_tolerance", math.nan),
        ("risk_tolerance", math.inf),
        ("risk_tolerance", -0.1),
        ("risk_tolerance", 1.5),
        ("risk_tolerance", True),
        ("retry_backoff", math.nan),
        ("retry_backoff", -1.0),
        ("retry_backoff", math.inf),
        ("default_timeout", -5.0),
        ("default_timeout", 0),
        ("default_timeout", math.nan),
        ("default_timeout", "600"),
    ],
)
def test_run_options_refuse_bad_numbers_naming_the_option(option: str, value: Any) -> None:
    with pytest.raises(ValueError, match=f"^{option} must be"):
        RunOptions(**{option: value})


def test_run_options_accept_the_edges() -> None:
    RunOptions(risk_tolerance=0, retry_backoff=0, default_timeout=None)
    RunOptions(risk_tolerance=1.0, retry_backoff=30, default_timeout=0.5)


# ------------------------------------------------------------------------------ bug 12


def test_step_on_a_running_run_pauses_after_the_next_node(
    mem_pit: Pit, registry: NodeTypeRegistry, executor: ScriptedExecutor
) -> None:
    m = Melody("chain")
    prev = None
    for i in range(4):
        n = m.create_node("t.work", name=f"n{i}")
        if prev is not None:
            m.connect(prev.id, "out", n.id, "x")
        prev = n
    gate, entered = asyncio.Event(), asyncio.Event()

    class Held(ScriptedExecutor):
        async def run(self, task: NodeTask, sink: Any) -> NodeResult:
            if task.node_id == "n1":
                entered.set()
                await gate.wait()  # n1 runs until the test has called step()
            return await super().run(task, sink)

    ex = Held(registry)
    cond = conductor_for(mem_pit, registry, ex)
    paused = asyncio.Event()
    cond.subscribe(
        lambda e: paused.set() if isinstance(e, NodeStateChanged) and e.state == "paused" else None
    )

    async def go() -> tuple[dict[str, str], Any]:
        r = cond.start(m, FAST)
        await entered.wait()
        r.step()  # a running run: one more node (n2), then a pause before n3
        gate.set()
        ended = asyncio.ensure_future(r.wait())
        stopped = asyncio.ensure_future(paused.wait())
        await asyncio.wait({ended, stopped}, return_when=asyncio.FIRST_COMPLETED)
        seen = {n.id: n.state for n in r.reports()}
        r.resume()
        stopped.cancel()
        return seen, await ended

    seen, result = asyncio.run(go())
    assert seen == {"n1": "succeeded", "n2": "succeeded", "n3": "paused", "n4": "pending"}
    assert result.status == "succeeded"


# ------------------------------------------------------------------------------ qa4 bugs 2 and 3
# An edited output keeps its node's score; an edited ``score`` output scores the node anew.

KEPT = RunOptions(retry_backoff=0.0)  # a recorded run, which edit_output and resume need


def _reviewed(
    pit: Pit, registry: NodeTypeRegistry, score: Any
) -> tuple[Conductor, Any, str, str, str]:
    ex = ReviewExecutor(registry)
    ex.review = {"findings": "fine", "score": score}
    conductor = conductor_for(pit, registry, ex)
    m, rev, hi, lo = _review_branches("score >= 0.8", "score < 0.8")
    result = run(conductor, m, KEPT)
    assert states(result) == {rev: "succeeded", hi: "succeeded", lo: "skipped"}
    return conductor, result, rev, hi, lo


def _resume(conductor: Conductor, run_id: str) -> Any:
    async def go() -> Any:
        return await conductor.resume(run_id).wait()

    return asyncio.run(go())


def _semantics(pit: Pit, aid: int) -> float | None:
    s = pit.artifacts.quality(aid).semantics
    return None if s is None else round(s, 6)


def test_an_edited_output_keeps_the_nodes_score(
    mem_pit: Pit, review_registry: NodeTypeRegistry
) -> None:
    conductor, first, rev, hi, lo = _reviewed(mem_pit, review_registry, 0.9)
    aid = conductor.edit_output(first.run_id, rev, "findings", "edited findings")
    assert _semantics(mem_pit, aid) == 0.9
    again = _resume(conductor, first.run_id)
    assert again.status == "succeeded"
    assert states(again)[hi] == "succeeded"
    assert states(again)[lo] == "skipped"
    assert again.node(rev).artifacts["findings"] == aid


def test_an_adopted_version_from_the_editor_keeps_the_nodes_score(
    mem_pit: Pit, review_registry: NodeTypeRegistry
) -> None:
    conductor, first, rev, hi, lo = _reviewed(mem_pit, review_registry, 0.9)
    old = first.node(rev).artifacts["findings"]
    store = mem_pit.artifacts
    # as the IDE saves it: same name, the old version as input, no produced_by
    aid = store.put(store.info(old).name, b"saved in the editor", kind="markdown", inputs=[old])
    assert conductor.adopt_output(first.run_id, rev, aid)
    assert _semantics(mem_pit, aid) == 0.9
    assert states(_resume(conductor, first.run_id))[hi] == "succeeded"


@pytest.mark.parametrize(("edited", "taken", "quality"), [(0.2, "lo", 0.2), (3, "lo", 0.3)])
def test_an_edited_score_takes_the_branch_it_says(
    mem_pit: Pit, review_registry: NodeTypeRegistry, edited: Any, taken: str, quality: float
) -> None:
    conductor, first, rev, hi, lo = _reviewed(mem_pit, review_registry, 0.9)
    old_findings = first.node(rev).artifacts["findings"]
    conductor.edit_output(first.run_id, rev, "score", edited)
    again = _resume(conductor, first.run_id)
    assert again.status == "succeeded"
    assert states(again)[hi] == "skipped"
    assert states(again)[lo] in ("succeeded", "cached")
    # every output of the node has the new score; the run's old output keeps the one it had
    for aid in again.node(rev).artifacts.values():
        assert _semantics(mem_pit, aid) == quality
    new_findings = again.node(rev).artifacts["findings"]
    assert new_findings != old_findings
    assert _semantics(mem_pit, old_findings) == 0.9
    assert mem_pit.artifacts.get(new_findings) == mem_pit.artifacts.get(old_findings)
    assert list(mem_pit.artifacts.info(new_findings).inputs) == [old_findings]


def test_editing_the_score_back_takes_the_first_branch_again(
    mem_pit: Pit, review_registry: NodeTypeRegistry
) -> None:
    conductor, first, rev, hi, lo = _reviewed(mem_pit, review_registry, 0.9)
    conductor.edit_output(first.run_id, rev, "score", 0.2)
    assert states(_resume(conductor, first.run_id))[hi] == "skipped"
    conductor.edit_output(first.run_id, rev, "score", 0.95)
    again = _resume(conductor, first.run_id)
    assert states(again)[hi] in ("succeeded", "cached")  # the same input: may come from cache
    assert states(again)[lo] == "skipped"


@pytest.mark.parametrize(
    ("edited", "says"),
    [("great", "'great' is not a number"), (1.05, "1.05 is ambiguous"), (None, "None is not")],
)
def test_an_edited_score_that_is_no_score_is_refused_and_nothing_changes(
    mem_pit: Pit, review_registry: NodeTypeRegistry, edited: Any, says: str
) -> None:
    conductor, first, rev, hi, lo = _reviewed(mem_pit, review_registry, 0.9)
    bound = dict(first.node(rev).artifacts)
    with pytest.raises(InvalidMelodyError, match="score of node") as caught:
        conductor.edit_output(first.run_id, rev, "score", edited)
    assert says in str(caught.value)
    assert "cannot be removed" in str(caught.value)
    assert sorted(mem_pit.dag.node(first.run_id, rev).artifacts) == sorted(bound.values())
    assert mem_pit.dag.state(first.run_id, hi) == "succeeded"  # nothing reset
    for aid in bound.values():
        assert _semantics(mem_pit, aid) == 0.9


def test_an_unscored_node_takes_any_edited_score(
    mem_pit: Pit, review_registry: NodeTypeRegistry
) -> None:
    ex = ReviewExecutor(review_registry)
    ex.review = {"findings": "fine", "score": "n/a"}
    conductor = conductor_for(mem_pit, review_registry, ex)
    m, rev, hi, lo = _review_branches("score != null and score >= 0.8", "score == null")
    first = run(conductor, m, KEPT)
    assert states(first)[lo] == "succeeded"
    conductor.edit_output(first.run_id, rev, "score", "still none")  # nothing to clear: taken
    conductor.edit_output(first.run_id, rev, "score", 8)
    again = _resume(conductor, first.run_id)
    assert states(again)[hi] in ("succeeded", "cached")  # the same input: may come from cache
    assert states(again)[lo] == "skipped"


@pytest.mark.parametrize(
    ("value", "expected"), [(1.05, None), (1.5, None), (1.999, None), (2, 0.2), (6.9, 0.69)]
)
def test_a_score_just_above_one_is_ambiguous_not_marks(value: Any, expected: float | None) -> None:
    got = _semantic_score(value)
    assert got == expected if expected is None else got is not None and math.isclose(got, expected)


def test_a_score_that_is_no_score_is_logged_with_the_reason(
    mem_pit: Pit, review_registry: NodeTypeRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    ex = ReviewExecutor(review_registry)
    ex.review = {"findings": "fine", "score": 1.05}
    m, rev, hi, lo = _review_branches("score == null", "score != null")
    with caplog.at_level("WARNING", logger="symphony.conductor"):
        result = run(conductor_for(mem_pit, review_registry, ex), m)
    assert states(result)[hi] == "succeeded"
    assert f"node {rev} gave no usable score: 1.05 is ambiguous" in caplog.text
