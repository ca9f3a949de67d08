"""Run events: what views read off them."""

from __future__ import annotations

from symphony.conductor import events as ev


def test_why_drops_the_strategy_a_policy_names_first() -> None:
    def chosen(strategy: str, reason: str) -> ev.RecoveryChosen:
        return ev.RecoveryChosen("r", 1.0, "n", "boom", "transient", strategy, reason, 1)

    assert chosen("retry", "retry: transient error, 2 retries left").why == (
        "transient error, 2 retries left"
    )
    assert chosen("abort", "no retries left").why == "no retries left"
    # Only the chosen strategy's own name is dropped, and only at the start.
    assert chosen("skip", "retry: not allowed").why == "retry: not allowed"
