"""Arbitration Engine through Python: strategies, fairness, budgets, rationale, feedback."""

from __future__ import annotations

import shutil
from typing import Any

import pytest

from symphony.pit import (
    BudgetExceededError,
    InvalidArgumentError,
    ModelNotFoundError,
    PoolExhaustedError,
    RequestNotFoundError,
)

Pit = Any


def _setup(pit: Pit, **slots: int) -> Any:
    for name, n in slots.items():
        pit.pool.register(name, slots=n)
    return pit.arbitration


def test_weighted_decision_has_a_readable_rationale(pit: Pit) -> None:
    arb = _setup(pit, m=4)
    low = arb.submit("alice", "m", workflow="wf", priority=1)
    high = arb.submit("bob", "m", workflow="wf", priority=9, business_value=0.9)
    assert len(arb) == 2
    d = arb.decide()
    assert d is not None
    assert (d.request, d.owner, d.model, d.wanted, d.workflow) == (high, "bob", "m", "m", "wf")
    assert d.granted
    assert d.strategy == "weighted"
    assert d.reason == "strategy"
    names = [f.name for f in d.factors]
    assert names == [
        "priority",
        "business_value",
        "user_impact",
        "urgency",
        "cost_efficiency",
        "fairness",
        "warm",
        "wait",
    ]
    assert sum(f.contribution for f in d.factors) == pytest.approx(d.score)
    prio = d.factors[0]
    assert (prio.value, prio.contribution) == (0.9, pytest.approx(prio.weight * 0.9))
    again = arb.rationale(d.id)
    assert (again.id, again.score, again.request) == (d.id, d.score, d.request)
    assert "Decision(id=" in repr(again)
    assert "Factor(" in repr(prio)
    assert arb.decide().request == low
    assert arb.decide() is None


def test_starvation_bound_under_constant_high_priority_load(pit: Pit) -> None:
    # One slot, a stream of priority-10 requests, one priority-0 request: it is granted within
    # `starvation_bound` decisions (N = 32 by default; docs/pit.md, Arbitration Engine).
    arb = _setup(pit, m=1)
    n = arb.starvation_bound
    assert n == 32
    low = arb.submit("batch-job", "m", priority=0, business_value=0.0, user_impact=0.0)
    for i in range(10 * n):
        arb.submit("interactive", "m", priority=10, business_value=1.0, user_impact=1.0)
        d = arb.decide(acquire=True)
        assert d is not None
        assert d.lease is not None
        pit.pool.release(d.lease)
        if d.request == low:
            assert d.reason == "starvation_bound"
            assert i <= n
            break
    else:
        pytest.fail("the low-priority request starved")
    stats = {o.owner: o for o in arb.owners()}
    assert stats["batch-job"].max_waited <= n


def test_no_owner_waits_beyond_the_bound(pit: Pit) -> None:
    # Two heavy high-priority owners keep the queue full; a low-priority owner with a backlog
    # still gets a grant at least once every N + 1 decisions.
    arb = _setup(pit, m=1)
    n = arb.starvation_bound
    for _ in range(200):
        arb.submit("low", "m", priority=0, business_value=0.0, user_impact=0.0)
    gaps, last = [], -1
    for i in range(20 * n):
        for owner in ("hi-a", "hi-b"):
            arb.submit(owner, "m", priority=10, business_value=1.0, user_impact=1.0)
        d = arb.decide(acquire=True)
        pit.pool.release(d.lease)
        if d.owner == "low":
            gaps.append(i - last)
            last = i
    assert len(gaps) >= 19
    assert max(gaps) <= n + 1


def test_prioritization_and_round_robin(pit: Pit) -> None:
    arb = _setup(pit, m=10)
    arb.configure(strategy="prioritization")
    soon = arb.submit("a", "m", priority=5, deadline=pit.now() + 10)
    late = arb.submit("a", "m", priority=5, deadline=pit.now() + 1000)
    top = arb.submit("b", "m", priority=8)
    assert arb.decide_batch(3).requests() == [top, soon, late]
    arb.configure(strategy="round_robin")
    assert arb.strategy == "round_robin"
    ids = [arb.submit(o, "m", priority=p) for o, p in [("a", 9), ("a", 9), ("b", 0), ("b", 0)]]
    batch = arb.decide_batch(4)
    assert [batch[i].owner for i in range(4)] == ["a", "b", "a", "b"]
    assert sorted(batch.requests()) == ids


def test_collaborative_batches_requests_on_a_loaded_model(pit: Pit) -> None:
    arb = _setup(pit, cold=1, warm=1)
    pit.pool.prewarm("warm")
    arb.configure(strategy="collaborative", batch_size=3)
    arb.submit("a", "cold", priority=10)
    ids = [arb.submit(o, "warm") for o in ("b", "c", "d", "e")]
    d = arb.decide(acquire=True)
    assert d.model == "warm"
    assert d.lease is not None
    assert [d.request, *d.batch] == ids[:3]
    assert len(arb) == 2


def test_specialization_routes_to_best_suited_model(pit: Pit) -> None:
    arb = _setup(pit, general=2, coder=1)
    arb.configure(strategy="specialization")
    arb.set_skill("refactor", "coder", 0.95)
    arb.set_skill("refactor", "general", 0.3)
    arb.submit("a", "general", workflow="refactor")
    arb.submit("a", "general", workflow="refactor")
    arb.submit("a", "general", workflow="chat")
    models = [(d.model, d.wanted) for d in (arb.decide(acquire=True) for _ in range(3))]
    assert models == [("coder", "general"), ("general", "general"), ("general", "general")]


def test_prefers_warm_model_and_reads_pool_occupancy(pit: Pit) -> None:
    arb = _setup(pit, x=1, y=1)
    pit.pool.prewarm("y")
    rx = arb.submit("a", "x")
    ry = arb.submit("b", "y")
    d = arb.decide()
    assert d.request == ry  # same factors otherwise: the warm model wins
    lease = pit.pool.try_acquire("x")  # the pool is full for x
    assert arb.decide() is None
    pit.pool.release(lease)
    assert arb.decide().request == rx


def test_fairness_decays_with_half_life(pit: Pit) -> None:
    arb = _setup(pit, m=100)
    arb.configure(half_life=10.0)
    for _ in range(4):
        arb.submit("heavy", "m")
    arb.decide_batch(4)
    share = next(o.share for o in arb.owners() if o.owner == "heavy")
    pit.advance_clock(10.0)
    later = next(o.share for o in arb.owners() if o.owner == "heavy")
    assert later == pytest.approx(share / 2)
    # The heavy user's next request loses to a fresh owner's otherwise identical one.
    arb.submit("heavy", "m")
    fresh = arb.submit("fresh", "m")
    d = arb.decide()
    assert d.request == fresh
    assert d.factors[5].value == 1.0


def test_budgets_and_spending_policies(pit: Pit) -> None:
    arb = _setup(pit, m=10)
    arb.set_policy("team", budget=2.0, max_cost=1.5)
    with pytest.raises(BudgetExceededError, match="caps a request") as e:
        arb.submit("team", "m", cost=1.6)
    assert e.value.subject == "team"
    arb.submit("team", "m", cost=1.0)
    arb.submit("team", "m", cost=1.0)
    with pytest.raises(BudgetExceededError, match="budget"):
        arb.submit("team", "m", cost=0.5)
    d1, d2 = arb.decide(), arb.decide()
    arb.report(d1.id, ok=True, cost=1.5)  # costlier than estimated
    arb.set_policy("team", budget=2.0)
    stats = next(o for o in arb.owners() if o.owner == "team")
    assert (stats.spent, stats.committed, stats.budget) == (1.5, 1.0, 2.0)
    arb.report(d2.id, cost=1.0)


def test_rejected_at_decision_when_budget_is_gone(pit: Pit) -> None:
    arb = _setup(pit, m=10)
    arb.submit("team", "m", cost=1.0)
    arb.set_policy("team", budget=0.5)
    d = arb.decide()
    assert (d.granted, d.reason, d.model) == (False, "budget", None)
    with pytest.raises(InvalidArgumentError, match="rejected"):
        arb.report(d.id)


def test_outcomes_feed_back_into_weights(pit: Pit) -> None:
    arb = _setup(pit, m=100)
    before = arb.weights()
    for _ in range(20):
        arb.submit("a", "m", priority=10, business_value=0.0, user_impact=0.0)
    batch = arb.decide_batch(20)
    for i in range(len(batch)):
        arb.report(batch[i].id, ok=True)
    after = arb.weights()
    assert after["priority"] > before["priority"]
    assert after["business_value"] < before["business_value"]
    assert sum(after.values()) == pytest.approx(sum(before.values()))


def test_batch_api_and_latency_quantiles(pit: Pit) -> None:
    arb = _setup(pit, m=1_000_000)
    reqs = [(f"o{i % 8}", "wf", "m", i % 11, 0.5, 0.5, 0.01, None) for i in range(5000)]
    ids = arb.submit_batch(reqs)
    assert ids == list(range(ids[0], ids[0] + 5000))
    batch = arb.decide_batch(10_000)
    assert len(batch) == 5000
    assert batch.granted() == 5000
    assert sorted(batch.requests()) == ids
    assert 0 < batch.latency_quantile_ns(0.5) <= batch.latency_quantile_ns(0.99)
    assert batch[-1].id == batch.ids()[-1]
    with pytest.raises(IndexError):
        batch[5000]
    assert "DecisionBatch(5000" in repr(batch)


def test_history_is_bounded(pit: Pit) -> None:
    arb = _setup(pit, m=100)
    arb.configure(history=3)
    for _ in range(5):
        arb.submit("a", "m")
    ids = arb.decide_batch(5).ids()
    arb.rationale(ids[-1])
    with pytest.raises(RequestNotFoundError, match="last 3 decisions") as e:
        arb.rationale(ids[0])
    assert e.value.subject == str(ids[0])


def test_every_error_variant_from_python(pit: Pit) -> None:
    arb = _setup(pit, m=1)
    with pytest.raises(RequestNotFoundError) as e1:
        arb.cancel(999)
    assert e1.value.subject == "999"
    with pytest.raises(RequestNotFoundError):
        arb.rationale(999)
    with pytest.raises(ModelNotFoundError) as e2:
        arb.submit("a", "ghost")
    assert e2.value.subject == "ghost"
    with pytest.raises(InvalidArgumentError, match="business_value"):
        arb.submit("a", "m", business_value=2.0)
    with pytest.raises(InvalidArgumentError, match="strategy"):
        arb.configure(strategy="lottery")
    with pytest.raises(InvalidArgumentError, match="unknown factor"):
        arb.configure(weights={"luck": 1.0})
    with pytest.raises(InvalidArgumentError, match="positive"):
        arb.configure(starvation_bound=0)
    arb.set_policy("p", max_cost=0.0)
    with pytest.raises(BudgetExceededError):
        arb.submit("p", "m", cost=1.0)
    d = arb.decide() if len(arb) else None
    assert d is None
    r = arb.submit("a", "m")
    d = arb.decide()
    arb.report(d.id)
    with pytest.raises(InvalidArgumentError, match="already reported"):
        arb.report(d.id)
    arb.cancel(arb.submit("a", "m"))
    assert len(arb) == 0
    assert r > 0
    # decide(acquire=True) surfaces the pool's error and keeps the request.
    pit.pool.try_acquire("m")
    arb.submit("a", "m")
    pit.pool.set_owner_budget("a", 0.0)
    pit.pool.register("n", price_per_call=1.0)
    arb.submit("a", "n", cost=1.0)
    with pytest.raises(BudgetExceededError):
        arb.decide(acquire=True)
    assert len(arb) == 2
    with pytest.raises(PoolExhaustedError):
        pit.pool.try_acquire("m")


def test_wrong_types_raise_type_error(pit: Pit) -> None:
    arb = _setup(pit, m=1)
    with pytest.raises(TypeError, match="priority"):
        arb.submit("a", "m", priority="high")
    with pytest.raises(TypeError, match="requests"):
        arb.submit_batch([("a", "wf", "m", "x", 0.5, 0.5, 0.0, None)])


def test_reopen_restores_queue_config_and_spend(open_pit: Any, tmp_path: Any) -> None:
    p = open_pit(manual_clock=1000.0)
    p.pool.register("m", slots=5)
    arb = p.arbitration
    arb.configure(strategy="prioritization", starvation_bound=7, half_life=30.0)
    arb.set_policy("team", budget=10.0)
    arb.set_skill("wf", "m", 0.5)
    a = arb.submit("team", "m", priority=1, cost=1.0)
    b = arb.submit("team", "m", priority=9, cost=2.0)
    c = arb.submit_batch([("solo", "wf", "m", 5, 0.5, 0.5, 0.0, None)])[0]
    d = arb.decide()
    assert d.request == b
    arb.report(d.id, cost=2.5, durable=True)
    p.close()
    shutil.copytree(tmp_path / "pit", tmp_path / "closed")  # the closed Pit keeps its lock
    q = open_pit(tmp_path / "closed", manual_clock=1000.0)
    arb = q.arbitration
    assert arb.strategy == "prioritization"
    assert arb.starvation_bound == 7
    assert len(arb) == 2
    team = next(o for o in arb.owners() if o.owner == "team")
    assert (team.spent, team.committed, team.budget, team.pending) == (2.5, 0.0, 10.0, 1)
    assert arb.decide_batch(2).requests() == [c, a]  # prioritization survived the reopen


def test_reopen_replays_journal_without_checkpoint(open_pit: Any, tmp_path: Any) -> None:
    p = open_pit(manual_clock=1000.0)
    p.pool.register("m", slots=5)
    arb = p.arbitration
    ids = arb.submit_batch([("o", "wf", "m", i, 0.5, 0.5, 0.0, None) for i in range(5)])
    first = arb.decide_batch(2).requests()
    p.sync()
    shutil.copytree(tmp_path / "pit", tmp_path / "copy")
    q = open_pit(tmp_path / "copy", manual_clock=1000.0)
    rest = q.arbitration.decide_batch(10).requests()
    assert sorted(first + rest) == ids
    assert q.arbitration.decide_batch(1).requests() == []
