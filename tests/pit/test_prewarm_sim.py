"""The pre-warming claim, checked on the deterministic simulation (not a timing test)."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.mark.parametrize("trace", ["periodic", "bursty", "random"])
@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
def test_predictor_halves_cold_starts_at_no_more_memory(pit: Any, trace: str, seed: int) -> None:
    r = pit.pool.simulate_prewarm(trace, seed)
    assert r.trace == trace
    assert r.seed == seed
    assert r.invocations > 500
    assert r.predictive_cold_starts <= 0.5 * r.baseline_cold_starts, repr(r)
    assert r.predictive_memory_minutes <= r.baseline_memory_minutes, repr(r)
    assert r.cold_start_reduction >= 0.5


def test_simulation_is_deterministic(pit: Any) -> None:
    a = pit.pool.simulate_prewarm("bursty", 42)
    b = pit.pool.simulate_prewarm("bursty", 42)
    assert repr(a) == repr(b)
    assert repr(a) != repr(pit.pool.simulate_prewarm("bursty", 43))


def test_memoryless_trace_is_reported_honestly(pit: Any) -> None:
    # On independent Poisson arrivals there is nothing to learn: the predictor must not claim
    # a win there, and it must not spend more warm memory than the fixed keep-alive.
    r = pit.pool.simulate_prewarm("poisson", 0)
    assert r.cold_start_reduction < 0.5
    assert r.predictive_memory_minutes <= r.baseline_memory_minutes
