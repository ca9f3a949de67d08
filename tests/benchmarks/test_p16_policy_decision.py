"""P16: one recovery decision of the trained policy ≤ 100 µs.

A decision is ``policy.decide(ctx)`` on a fresh :class:`FailureContext`: features, the forward
pass, masking of illegal strategies, argmax, scores and the one-sentence reason. The contexts are
1,000 real failures of Function Quest Game puzzles, cycled. Cases: the shipped policy with its
numpy forward pass (``symphony``), the same weights run through ``torch.nn``
(``baseline:torch-forward``: why the app does not use it per call), and the cheapest fixed rule
(``baseline:heuristic``, ``fallback-first``).
"""

from __future__ import annotations

import random

import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from symphony.conductor.fqg.game import Run, generate
from symphony.conductor.policy import HEURISTICS, FailureContext, Policy, load_policy

TARGET_US = 100
DECISIONS = 1_000


def _contexts() -> list[FailureContext]:
    out: list[FailureContext] = []
    seed = 0
    while len(out) < DECISIONS:
        run = Run(generate(seed), random.Random(seed))
        ctx = run.advance()
        if ctx is not None:
            out.append(ctx)
        seed += 1
    return out


@pytest.mark.benchmark(group="P16-policy-decision")
@pytest.mark.parametrize("case", ["symphony", "baseline:torch-forward", "baseline:heuristic"])
def test_p16(benchmark: BenchmarkFixture, case: str) -> None:
    policy: Policy
    if case == "symphony":
        policy = load_policy()
    elif case == "baseline:torch-forward":
        policy = load_policy(backend="torch")
    else:
        policy = HEURISTICS["fallback-first"]
    contexts = _contexts()
    decide = policy.decide

    def run() -> int:
        n = 0
        for c in contexts:
            n += len(decide(c).reason)
        return n

    benchmark.pedantic(run, rounds=10, iterations=1, warmup_rounds=1)
    per_decision_us = benchmark.stats.stats.median / DECISIONS * 1e6
    benchmark.extra_info.update(
        target=f"<= {TARGET_US} us per decision",
        per_decision_us=round(per_decision_us, 2),
        decisions=DECISIONS,
    )
