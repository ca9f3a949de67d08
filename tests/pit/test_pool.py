"""Pool Manager through Python: lifecycle, slots, health, cost, memory, pre-warming, errors."""

from __future__ import annotations

import shutil
import threading
import time
from typing import Any

import pytest

from symphony.pit import (
    AcquireTimeoutError,
    AlreadyExistsError,
    BudgetExceededError,
    IllegalTransitionError,
    InvalidArgumentError,
    LeaseNotFoundError,
    MemoryLimitError,
    ModelNotFoundError,
    ModelUnavailableError,
    PoolExhaustedError,
)

Pit = Any


def test_register_and_read_back(pit: Pit) -> None:
    pool = pit.pool
    pool.register("base", slots=2, memory=1 << 30, price_per_call=0.01, price_per_token=1e-5)
    pool.register("big", slots=1, fallbacks=["base"], keep_alive=60.0)
    assert len(pool) == 2
    assert "big" in pool
    assert "nope" not in pool
    assert pool.models() == ["base", "big"]
    info = pool.info("big")
    assert (info.model, info.slots, info.fallbacks, info.keep_alive) == ("big", 1, ["base"], 60.0)
    assert (info.state, info.health, info.in_use) == ("idle", "healthy", 0)
    assert "ModelInfo(" in repr(info)
    assert "PoolManager(2 models" in repr(pool)


def test_lifecycle_driven_by_acquire_release(pit: Pit) -> None:
    pool = pit.pool
    pool.register("m", slots=2, price_per_call=0.5)
    t0 = pit.now()
    a = pool.try_acquire("m", owner="alice")
    assert a.cold_start
    assert a.model == "m"
    assert a.requested == "m"
    assert pool.state("m") == "active"
    b = pool.acquire("m", owner="bob", timeout=0.0)
    assert not b.cold_start
    assert {a.slot, b.slot} == {0, 1}
    assert "Lease(id=" in repr(a)
    with pytest.raises(PoolExhaustedError) as e:
        pool.try_acquire("m")
    assert e.value.subject == "m"
    pit.advance_clock(2.0)
    assert pool.release(a, latency=0.2, tokens=10) == 0.5
    assert pool.release(int(b), ok=True, cost=0.25) == 0.25
    assert pool.state("m") == "cooldown"
    assert pool.info("m").state_since == t0 + 2.0
    assert pool.owner_spend("alice") == (0.5, 0.0, None)
    pit.advance_clock(299.0)
    assert pool.sweep() == []
    pit.advance_clock(1.0)
    assert pool.sweep() == ["m"]
    states = [(f, t) for f, t, _ in pool.history("m")]
    assert states == [
        ("idle", "loading"),
        ("loading", "warm"),
        ("warm", "active"),
        ("active", "cooldown"),
        ("cooldown", "idle"),
    ]
    assert pool.info("m").cold_starts == 1


def test_explicit_transitions_from_extension_host(pit: Pit) -> None:
    pool = pit.pool
    pool.register("m")
    with pytest.raises(IllegalTransitionError, match="idle → warm") as e:
        pool.transition("m", "warm")
    assert e.value.subject == "m"
    assert pool.transition("m", "loading") == []
    assert pool.transition("m", "warm") == []
    lease = pool.try_acquire("m")
    assert not lease.cold_start
    with pytest.raises(IllegalTransitionError, match="leased slots"):
        pool.transition("m", "idle")
    with pytest.raises(IllegalTransitionError, match="acquiring"):
        pool.transition("m", "active")
    pool.release(lease)
    pool.transition("m", "idle")
    with pytest.raises(InvalidArgumentError, match="idle, loading, warm, active, cooldown"):
        pool.transition("m", "asleep")


def test_waiters_are_served_by_priority(pit: Pit) -> None:
    pool = pit.pool
    pool.register("m", slots=1)
    held = pool.try_acquire("m")
    order: list[int] = []

    def wait(prio: int) -> None:
        lease = pool.acquire("m", priority=prio, timeout=10.0)
        order.append(prio)
        pool.release(lease)

    threads = []
    for n, prio in enumerate([1, 5, 3], start=1):
        t = threading.Thread(target=wait, args=(prio,))
        t.start()
        threads.append(t)
        while pool.info("m").waiting < n:
            time.sleep(0.001)
    # A non-waiting caller does not jump a queue of equal or higher priority.
    with pytest.raises(PoolExhaustedError):
        pool.try_acquire("m", priority=0)
    pool.release(held)
    for t in threads:
        t.join()
    assert order == [5, 3, 1]


def test_acquire_times_out(pit: Pit) -> None:
    pool = pit.pool
    pool.register("m", slots=1)
    held = pool.try_acquire("m")
    with pytest.raises(AcquireTimeoutError) as e:
        pool.acquire("m", timeout=0.02)
    assert e.value.subject == "m"
    assert pool.info("m").waiting == 0
    pool.release(held)


def _fail(pool: Any, model: str, n: int) -> None:
    for _ in range(n):
        pool.release(pool.try_acquire(model), ok=False, latency=0.1)


def test_health_fallback_and_half_open_probe(pit: Pit) -> None:
    pool = pit.pool
    pool.register("small", slots=2)
    pool.register("large", slots=2, fallbacks=["small"])
    pool.set_health_policy("large", min_samples=4, probe_after=10.0)
    _fail(pool, "large", 2)
    pool.release(pool.try_acquire("large"), ok=True)
    assert pool.health("large") == "healthy"
    _fail(pool, "large", 1)
    assert pool.health("large") == "down"  # 3 errors of 4 ≥ 50 %
    lease = pool.try_acquire("large")
    assert (lease.model, lease.requested, lease.probe) == ("small", "large", False)
    pool.release(lease)
    pit.advance_clock(10.0)
    probe = pool.try_acquire("large")
    assert probe.probe
    assert probe.model == "large"
    pool.release(probe, ok=False)
    assert pool.health("large") == "down"
    assert pool.try_acquire("large").model == "small"
    pit.advance_clock(10.0)
    probe = pool.try_acquire("large")
    pool.release(probe, ok=True)
    assert pool.health("large") == "healthy"


def test_degraded_by_latency_and_unavailable(pit: Pit) -> None:
    pool = pit.pool
    pool.register("m", slots=1)
    pool.set_health_policy("m", degraded_latency=1.0, min_samples=2)
    for _ in range(2):
        pool.release(pool.try_acquire("m"), latency=3.0)
    assert pool.health("m") == "degraded"
    assert pool.info("m").error_rate == 0.0
    _fail(pool, "m", 2)
    with pytest.raises(ModelUnavailableError) as e:
        pool.try_acquire("m")
    assert e.value.subject == "m"


def test_owner_and_model_budgets(pit: Pit) -> None:
    pool = pit.pool
    pool.register("m", slots=8, price_per_call=1.0)
    pool.set_owner_budget("team", 2.5)
    leases = []
    for _ in range(3):
        leases.append(pool.try_acquire("m", owner="team"))
    with pytest.raises(BudgetExceededError) as e:
        pool.try_acquire("m", owner="team")
    assert e.value.subject == "team"
    assert len(leases) == 3  # admitted while spent + in flight < budget
    for lease in leases:
        pool.release(lease)
    spent, in_flight, budget = pool.owner_spend("team")
    assert (spent, in_flight, budget) == (3.0, 0.0, 2.5)
    assert spent - budget <= 1.0  # overspend ≤ one request
    pool.set_owner_budget("team", None)
    pool.set_model_budget("m", 3.5)
    pool.release(pool.try_acquire("m", owner="team"))
    with pytest.raises(BudgetExceededError, match="model 'm'|model \"m\""):
        pool.try_acquire("m", owner="other")
    pool.set_model_budget("m", None)
    with pytest.raises(BudgetExceededError, match="budget is 0.5"):
        pool.try_acquire("m", budget=0.5)


def test_memory_limit_evicts_lru_warm_never_active(pit: Pit) -> None:
    pool = pit.pool
    for name in ("a", "b", "c"):
        pool.register(name, memory=100)
    pool.set_memory_limit(250)
    assert pool.prewarm("a") == []
    pit.advance_clock(1.0)
    assert pool.prewarm("b") == []
    pit.advance_clock(1.0)
    active = pool.try_acquire("b")
    assert pool.prewarm("c") == ["a"]  # a is least recently used; b is active
    assert pool.memory() == (200, 250, 1)
    pool.register("huge", memory=300)
    with pytest.raises(MemoryLimitError) as e:
        pool.prewarm("huge")
    assert e.value.subject == "huge"
    pool.release(active)


def test_predictive_keep_alive_and_prewarm_recommendation(pit: Pit) -> None:
    pool = pit.pool
    pool.register("nightly", slots=1)
    pool.set_keep_alive_policy("predictive")
    assert pool.keep_alive_policy() == "predictive"
    for _ in range(8):
        pool.release(pool.try_acquire("nightly"))
        pit.advance_clock(900.0)
        pool.sweep()
    own, successors = pool.predicted_windows("nightly")
    assert own is not None
    assert own[0] > 600.0
    assert own[1] >= 900.0
    assert successors == []
    pool.release(pool.try_acquire("nightly"))
    pit.advance_clock(5.0)
    assert pool.sweep() == ["nightly"]  # not needed again for ~15 minutes
    pit.advance_clock(895.0)
    assert pool.recommend_prewarm() == ["nightly"]
    pool.prewarm("nightly")
    assert not pool.try_acquire("nightly").cold_start


def test_successor_prediction(pit: Pit) -> None:
    pool = pit.pool
    pool.register("embed")
    pool.register("rerank")
    for _ in range(5):
        pool.release(pool.try_acquire("embed"))
        pit.advance_clock(20.0)
        pool.release(pool.try_acquire("rerank"))
        pit.advance_clock(3600.0)
    _, successors = pool.predicted_windows("embed")
    assert [s[0] for s in successors] == ["rerank"]
    _, lo, hi = successors[0]
    assert lo <= 20.0 < hi


def test_every_error_variant_from_python(pit: Pit) -> None:
    pool = pit.pool
    pool.register("m", slots=1)
    with pytest.raises(AlreadyExistsError) as e1:
        pool.register("m")
    assert e1.value.subject == "m"
    with pytest.raises(InvalidArgumentError, match="slots"):
        pool.register("z", slots=0)
    with pytest.raises(InvalidArgumentError, match="price_per_call"):
        pool.register("z", price_per_call=-1.0)
    with pytest.raises(ModelNotFoundError) as e2:
        pool.try_acquire("ghost")
    assert e2.value.subject == "ghost"
    with pytest.raises(ModelNotFoundError):
        pool.register("z", fallbacks=["ghost"])
    with pytest.raises(LeaseNotFoundError) as e3:
        pool.release(12345)
    assert e3.value.subject == "12345"
    with pytest.raises(InvalidArgumentError, match="latency"):
        pool.release(pool.try_acquire("m"), latency=-1.0)
    with pytest.raises(InvalidArgumentError, match="keep-alive policy"):
        pool.set_keep_alive_policy("sometimes")
    with pytest.raises(InvalidArgumentError, match="error rates"):
        pool.set_health_policy("m", down_error_rate=2.0)
    with pytest.raises(InvalidArgumentError, match="trace"):
        pool.simulate_prewarm("weekly")
    with pytest.raises(InvalidArgumentError, match="timeout"):
        pool.acquire("m", timeout=-1.0)


def test_wrong_types_raise_type_error(pit: Pit) -> None:
    pool = pit.pool
    with pytest.raises(TypeError, match="slots"):
        pool.register("m", slots="two")
    with pytest.raises(TypeError, match="model"):
        pool.try_acquire(3)
    with pytest.raises(TypeError, match="lease"):
        pool.release("x")
    with pytest.raises(TypeError, match="fallbacks"):
        pool.register("m", fallbacks="abc")


def test_reopen_restores_models_budgets_spend(open_pit: Any, tmp_path: Any) -> None:
    p = open_pit(manual_clock=1000.0)
    pool = p.pool
    pool.register("a", slots=3, memory=10, price_per_call=0.5)
    pool.register("b", fallbacks=["a"], durable=True)
    pool.set_owner_budget("o", 10.0)
    pool.set_model_budget("a", 20.0)
    pool.set_memory_limit(1000)
    pool.set_keep_alive_policy("predictive")
    pool.set_health_policy("a", window=7)
    pool.release(pool.try_acquire("a", owner="o"), tokens=3)
    pool.release(pool.try_acquire("a", owner="o"), ok=False, durable=True)
    p.close()
    shutil.copytree(tmp_path / "pit", tmp_path / "closed")  # the closed Pit keeps its lock
    q = open_pit(tmp_path / "closed", manual_clock=2000.0)
    pool = q.pool
    assert pool.models() == ["a", "b"]
    info = pool.info("a")
    assert (info.slots, info.spent, info.calls, info.errors, info.budget) == (3, 1.0, 2, 1, 20.0)
    assert info.state == "idle"  # runtime state is not persisted: nothing is loaded
    assert pool.owner_spend("o") == (1.0, 0.0, 10.0)
    assert pool.memory()[1] == 1000
    assert pool.keep_alive_policy() == "predictive"
    assert pool.info("b").fallbacks == ["a"]
    # Journal replay without close: sync, drop, reopen a copy.
    pool.release(pool.try_acquire("a", owner="o"))
    q.sync()
    shutil.copytree(tmp_path / "closed", tmp_path / "copy")
    r = open_pit(tmp_path / "copy", manual_clock=3000.0)
    assert r.pool.owner_spend("o")[0] == 1.5


_CHILD = """
import sys
from symphony.pit import Pit
pit = Pit.open(sys.argv[1], key=bytes(range(32)), manual_clock=1000.0)
pool = pit.pool
pool.register("m", slots=2, price_per_call=0.25, durable=True)
pool.set_owner_budget("o", 5.0, durable=True)
for _ in range(4):
    pool.release(pool.try_acquire("m", owner="o"), durable=True)
print("ready", flush=True)
sys.stdin.read()
"""


def test_durable_spend_survives_sigkill(tmp_path: Any, open_pit: Any) -> None:
    import signal
    import subprocess
    import sys

    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(tmp_path / "pit")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "ready"
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)
    assert child.stdin is not None
    child.stdin.close()
    child.stdout.close()
    p = open_pit(manual_clock=2000.0)
    assert p.pool.owner_spend("o") == (1.0, 0.0, 5.0)
    assert p.pool.info("m").calls == 4
