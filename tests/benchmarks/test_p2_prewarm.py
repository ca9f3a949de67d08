"""Pre-warming simulation: predictor vs fixed 5-minute keep-alive (numbers in extra_info).

The claim (>= 50 % fewer cold starts at no more warm memory·minutes on the periodic, bursty and
random traces) is asserted in ``tests/pit/test_prewarm_sim.py``; this benchmark records the
numbers of one run (seed 0) and the simulation's own run time.
"""

from __future__ import annotations

from typing import Any

import pytest

from symphony.pit import Pit

TRACES = ("periodic", "bursty", "random", "poisson")


@pytest.mark.benchmark(group="P2-prewarm")
@pytest.mark.parametrize("impl", ["symphony", "baseline:fixed-5min-keep-alive"])
def test_p2_prewarm_simulation(benchmark: Any, impl: str) -> None:
    pit = Pit.in_memory()
    sim = pit.pool.simulate_prewarm
    results: dict[str, Any] = {}

    def run() -> None:
        for trace in TRACES:
            results[trace] = sim(trace, 0)

    benchmark.extra_info["target"] = (
        ">= 50% fewer cold starts than a fixed 5-minute keep-alive at no more warm "
        "memory-minutes (periodic, bursty, random)"
    )
    benchmark.pedantic(run, rounds=3, iterations=1)
    for trace, r in results.items():
        if impl == "symphony":
            cold, mem = r.predictive_cold_starts, r.predictive_memory_minutes
            benchmark.extra_info[f"{trace}_cold_start_reduction"] = round(r.cold_start_reduction, 3)
        else:
            cold, mem = r.baseline_cold_starts, r.baseline_memory_minutes
        benchmark.extra_info[f"{trace}_invocations"] = r.invocations
        benchmark.extra_info[f"{trace}_cold_starts"] = cold
        benchmark.extra_info[f"{trace}_memory_gb_minutes"] = round(mem, 1)
