"""The fixed recovery rules the learned policy is measured against.

Each is the natural rule its name says, written to play as well as a fixed rule can: none picks
an option whose expected cost exceeds the budget left (the run would fail on the spot), and none
skips a step whose importance is above the run's risk tolerance (the seed's "risk tolerance
influences skip decisions"); when a rule runs out of options it skips if that is acceptable,
else aborts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType

from symphony.conductor.policy.context import (
    Decision,
    FailureContext,
    Policy,
    Strategy,
    describe,
)


def _affordable(ctx: FailureContext, strategy: Strategy) -> bool:
    if strategy is Strategy.RETRY:
        return ctx.attempt <= ctx.max_retries and ctx.cost_retry <= ctx.budget_left
    if strategy is Strategy.FALLBACK:
        return ctx.fallbacks_left > 0 and ctx.cost_fallback <= ctx.budget_left
    if strategy is Strategy.RECONSTRUCT:
        return ctx.can_reconstruct and ctx.cost_reconstruct <= ctx.budget_left
    if strategy is Strategy.SKIP:
        return ctx.skippable and ctx.importance <= ctx.risk_tolerance
    return True


def _decide(ctx: FailureContext, order: Sequence[Strategy]) -> Decision:
    chosen = Strategy.ABORT
    for strategy in order:
        if _affordable(ctx, strategy):
            chosen = strategy
            break
    # Scores rank the rule's order: the choice first, then the rest as the rule would try them.
    ranked = [s for s in order if _affordable(ctx, s)] + [Strategy.ABORT]
    scores = {s: float(len(ranked) - i) for i, s in enumerate(dict.fromkeys(ranked))}
    return Decision(chosen, describe(chosen, ctx), scores)


class RetryThenFail:
    """Retry up to three times (within the node's cap), then skip if acceptable, else abort."""

    name = "retry-3-then-fail"

    def __init__(self, retries: int = 3) -> None:
        self.retries = retries

    def decide(self, ctx: FailureContext) -> Decision:
        """Choose a strategy (see the class)."""
        if ctx.attempt <= self.retries:
            return _decide(ctx, (Strategy.RETRY, Strategy.SKIP))
        return _decide(ctx, (Strategy.SKIP,))


class FallbackFirst:
    """Next fallback model first; then retry, reconstruct, skip if acceptable, abort."""

    name = "fallback-first"

    def decide(self, ctx: FailureContext) -> Decision:
        """Choose a strategy (see the class)."""
        return _decide(
            ctx, (Strategy.FALLBACK, Strategy.RETRY, Strategy.RECONSTRUCT, Strategy.SKIP)
        )


class CheapestFirst:
    """The cheapest affordable option that still tries to produce the output; else skip or abort.

    Ties go to retry, then fallback, then reconstruct.
    """

    name = "cheapest-first"

    def decide(self, ctx: FailureContext) -> Decision:
        """Choose a strategy (see the class)."""
        options = sorted(
            (Strategy.RETRY, Strategy.FALLBACK, Strategy.RECONSTRUCT),
            key=lambda s: (
                ctx.cost_retry
                if s is Strategy.RETRY
                else ctx.cost_fallback
                if s is Strategy.FALLBACK
                else ctx.cost_reconstruct
            ),
        )
        return _decide(ctx, (*options, Strategy.SKIP))


HEURISTICS: Mapping[str, Policy] = MappingProxyType(
    {p.name: p for p in (RetryThenFail(), FallbackFirst(), CheapestFirst())}
)
"""The fixed rules by name."""
