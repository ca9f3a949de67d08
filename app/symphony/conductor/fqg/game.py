"""The Function Quest Game: seeded recovery puzzles and a simulator that plays policies on them.

A *puzzle* is a random melody (a DAG of typed steps, listed in topological order) with, per step,
an importance, whether it may be skipped, a retry cap, a primary model and 0-2 fallback models
(cost, latency, reliability), and whether its input can be reconstructed from downstream; plus a
budget, a deadline and a risk tolerance for the whole run.

The simulator runs the steps; a step whose attempt fails has a hidden *cause*, which decides what
can fix it, and shows the policy an error kind, which is mostly but not always the cause (a model
that cannot handle a prompt sometimes shows up as timeouts). What works, per cause (see
``docs/policy.md`` for the reasoning):

========== ============= ============================= ================================
cause      retry         fallback (next model)         reconstruct (regenerate input)
========== ============= ============================= ================================
transient  0.75          the fallback's reliability    rerun: as a retry
persistent 0.03          the fallback's reliability    rerun: as a retry
resource   0.5 (backoff) the fallback's reliability    rerun: as a retry
missing    0             0 (the input is still gone)   0.9 x the model's reliability
invalid    0.1           0.35 x its reliability        0.85 x the model's reliability
========== ============= ============================= ================================

Every attempt costs its model's price and takes its latency (a retry also waits an exponential
backoff). A run *succeeds* when every step has produced its output or was skipped with an
importance within the risk tolerance; it *fails* on abort, on an unacceptable skip, when an
attempt would overrun the budget, or when a step would finish after the deadline.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from symphony.conductor.policy.context import (
    ErrorKind,
    FailureContext,
    Policy,
    Strategy,
    legal_mask,
)

STEP_TYPES: tuple[str, ...] = (
    "enhance-prompt",
    "extract-features",
    "generate-code",
    "write-docs",
    "summarize",
    "review",
    "translate",
    "classify",
)

IMPORTANCE_LEVELS: tuple[float, ...] = (0.25, 0.5, 0.75, 1.0)

_T, _P, _I, _R, _M = (
    ErrorKind.TRANSIENT,
    ErrorKind.PERSISTENT,
    ErrorKind.INVALID_INPUT,
    ErrorKind.RESOURCE,
    ErrorKind.MISSING_INPUT,
)

#: Chance that a retry of the same model succeeds, per hidden cause.
RETRY_SUCCESS: dict[ErrorKind, float] = {_T: 0.75, _P: 0.03, _R: 0.5, _M: 0.0, _I: 0.1}
#: Chance factor of a fallback model on an input problem (model problems: its reliability).
FALLBACK_INPUT_FACTOR: dict[ErrorKind, float] = {_M: 0.0, _I: 0.35}
#: Chance that reconstructing the input fixes an input problem.
RECONSTRUCT_FIX: dict[ErrorKind, float] = {_M: 0.9, _I: 0.85}

# Causes of a first failure (steps with an upstream input can also have input problems) and of
# a failure of a freshly used model.
_FIRST_CAUSES = ((_T, 0.42), (_P, 0.30), (_R, 0.12), (_M, 0.07), (_I, 0.09))
_MODEL_CAUSES = ((_T, 0.55), (_P, 0.30), (_R, 0.15))
# What the conductor sees, per cause: (kind, chance). The rest of the mass shows the cause itself.
# The conductor's kinds come from protocol error codes (``executor._KIND_BY_CODE``): refusals,
# provider errors, bad keys, unknown models and unauthorised calls each carry a persistent code;
# only the model that cannot handle a prompt and runs into the deadline looks transient, one
# persistent mode among several, hence 10 % (docs/policy.md, "What changed in the game").
_DISGUISE: dict[ErrorKind, tuple[tuple[ErrorKind, float], ...]] = {
    _T: ((_P, 0.10),),
    _P: ((_T, 0.10),),
    _R: ((_T, 0.10),),
    _I: ((_P, 0.20),),
    _M: (),
}

BACKOFF_BASE_S = 1.0
BACKOFF_CAP_S = 16.0
SKIPPED_PARENT_PENALTY = 0.15  # extra failure chance of a step that runs on a gap


@dataclass(frozen=True, slots=True)
class Model:
    """A model a step can run on (cost in credits, latency in seconds)."""

    name: str
    cost: float
    latency: float
    reliability: float


@dataclass(frozen=True, slots=True)
class Step:
    """One step of a puzzle's melody."""

    name: str
    type: str
    parents: tuple[int, ...]
    importance: float
    skippable: bool
    max_retries: int
    models: tuple[Model, ...]  # primary first, then the fallbacks in order
    can_reconstruct: bool
    reconstruct_cost: float
    reconstruct_latency: float
    downstream: int


@dataclass(frozen=True, slots=True)
class Puzzle:
    """A melody with its run's budget, deadline and risk tolerance."""

    seed: int
    steps: tuple[Step, ...]
    budget: float
    deadline: float
    risk_tolerance: float

    @property
    def nominal_cost(self) -> float:
        """Cost when every step succeeds at once on its primary model."""
        return sum(s.models[0].cost for s in self.steps)


def puzzle_seed(stream: int, seed: int, index: int) -> int:
    """Return the seed of puzzle ``index`` of ``stream`` (1 training, 2 evaluation) and ``seed``.

    Streams never share puzzles, so any evaluation seed is held out from every training seed.
    """
    x = (stream * 0x9E3779B97F4A7C15 + seed * 0xBF58476D1CE4E5B9 + index) & (2**64 - 1)
    # splitmix64 finaliser: neighbouring inputs give unrelated seeds.
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & (2**64 - 1)
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & (2**64 - 1)
    return x ^ (x >> 31)


def _pick(rng: random.Random, table: tuple[tuple[ErrorKind, float], ...]) -> ErrorKind:
    r = rng.random() * sum(w for _, w in table)
    for kind, w in table:
        r -= w
        if r < 0.0:
            return kind
    return table[-1][0]


def generate(seed: int) -> Puzzle:
    """Generate the puzzle of ``seed`` (deterministic).

    Parameters
    ----------
    seed
        Any non-negative integer.

    Returns
    -------
    Puzzle
        The puzzle.
    """
    rng = random.Random(seed)
    n = rng.randint(4, 9)
    parents: list[tuple[int, ...]] = [()]
    for i in range(1, n):
        # Mostly chains, sometimes a branch off an earlier step or a join of two.
        first = i - 1 if rng.random() < 0.7 else rng.randrange(i)
        ps: set[int] = {first}
        if i >= 2 and rng.random() < 0.25:
            ps.add(rng.randrange(i))
        parents.append(tuple(sorted(ps)))
    children: list[list[int]] = [[] for _ in range(n)]
    for i, pars in enumerate(parents):
        for p in pars:
            children[p].append(i)
    downstream = [0] * n
    reach: list[set[int]] = [set() for _ in range(n)]
    for i in reversed(range(n)):
        for c in children[i]:
            reach[i].add(c)
            reach[i] |= reach[c]
        downstream[i] = len(reach[i])

    steps: list[Step] = []
    for i in range(n):
        kind = rng.choice(STEP_TYPES)
        importance = rng.choices(IMPORTANCE_LEVELS, weights=(0.3, 0.35, 0.2, 0.15))[0]
        skippable = rng.random() < {0.25: 0.7, 0.5: 0.5, 0.75: 0.2, 1.0: 0.0}[importance]
        primary = Model(
            f"{kind}/primary",
            cost=rng.uniform(1.0, 5.0),
            latency=rng.uniform(1.0, 8.0),
            reliability=rng.uniform(0.75, 0.95),
        )
        models = [primary]
        for k in range(rng.choices((0, 1, 2), weights=(0.1, 0.45, 0.45))[0]):
            if rng.random() < 0.7:  # a bigger (remote) model: dearer, more reliable
                fb = Model(
                    f"{kind}/fallback-{k + 1}",
                    cost=primary.cost * rng.uniform(1.5, 4.0),
                    latency=primary.latency * rng.uniform(1.0, 2.0),
                    reliability=rng.uniform(0.8, 0.97),
                )
            else:  # a smaller (local) one: cheaper, less reliable
                fb = Model(
                    f"{kind}/fallback-{k + 1}",
                    cost=primary.cost * rng.uniform(0.4, 0.9),
                    latency=primary.latency * rng.uniform(0.8, 1.5),
                    reliability=rng.uniform(0.55, 0.8),
                )
            models.append(fb)
        can_reconstruct = bool(parents[i]) and rng.random() < 0.6
        upstream_cost = max((steps[p].models[0].cost for p in parents[i]), default=0.0)
        upstream_latency = max((steps[p].models[0].latency for p in parents[i]), default=0.0)
        steps.append(
            Step(
                name=f"s{i}",
                type=kind,
                parents=parents[i],
                importance=importance,
                skippable=skippable,
                max_retries=rng.randint(2, 5),
                models=tuple(models),
                can_reconstruct=can_reconstruct,
                reconstruct_cost=upstream_cost * rng.uniform(0.8, 1.5) if can_reconstruct else 0.0,
                reconstruct_latency=upstream_latency * rng.uniform(0.8, 1.5)
                if can_reconstruct
                else 0.0,
                downstream=downstream[i],
            )
        )
    nominal = sum(s.models[0].cost for s in steps)
    finish = [0.0] * n
    for i, s in enumerate(steps):
        finish[i] = max((finish[p] for p in s.parents), default=0.0) + s.models[0].latency
    return Puzzle(
        seed=seed,
        steps=tuple(steps),
        budget=nominal * rng.uniform(1.4, 2.8),
        deadline=max(finish) * rng.uniform(2.0, 4.0),
        risk_tolerance=rng.uniform(0.1, 0.8),
    )


@dataclass(frozen=True, slots=True)
class Outcome:
    """How a run ended: success, credits spent, makespan in seconds, and why it failed."""

    success: bool
    cost: float
    time: float
    reason: str
    decisions: int


class Run:
    """One play of a puzzle; :meth:`advance` to the next failure, :meth:`apply` a strategy.

    A run can be :meth:`copy`-ed with a new random stream, which is how training estimates the
    value of each strategy at a failure (rollouts with common random numbers).
    """

    __slots__ = (
        "attempt",
        "cause",
        "clock",
        "decisions",
        "failure",
        "finish",
        "i",
        "last",
        "model",
        "model_failures",
        "observed",
        "previous",
        "puzzle",
        "rng",
        "skipped",
        "spent",
    )

    def __init__(self, puzzle: Puzzle, rng: random.Random) -> None:
        self.puzzle = puzzle
        self.rng = rng
        self.i = 0
        self.spent = 0.0
        self.finish = [0.0] * len(puzzle.steps)
        self.skipped = [False] * len(puzzle.steps)
        self.model = 0
        self.attempt = 0
        self.clock = 0.0
        self.cause: ErrorKind | None = None
        self.observed: ErrorKind | None = None
        self.previous: ErrorKind | None = None
        self.last: Strategy | None = None
        self.model_failures = 0
        self.failure: str | None = None
        self.decisions = 0

    def copy(self, rng: random.Random) -> Run:
        """Copy this run's state; the copy that draws from ``rng`` from now on."""
        r = Run.__new__(Run)
        r.puzzle = self.puzzle
        r.rng = rng
        r.i = self.i
        r.spent = self.spent
        r.finish = self.finish.copy()
        r.skipped = self.skipped.copy()
        r.model = self.model
        r.attempt = self.attempt
        r.clock = self.clock
        r.cause = self.cause
        r.observed = self.observed
        r.previous = self.previous
        r.last = self.last
        r.model_failures = self.model_failures
        r.failure = self.failure
        r.decisions = self.decisions
        return r

    @property
    def done(self) -> bool:
        """Whether the run has ended."""
        return self.failure is not None or self.i >= len(self.puzzle.steps)

    def outcome(self) -> Outcome:
        """Return the outcome of an ended run."""
        return Outcome(
            success=self.failure is None,
            cost=self.spent,
            time=max(self.finish, default=0.0) if self.failure is None else self.clock,
            reason=self.failure or "ok",
            decisions=self.decisions,
        )

    def _pay(self, cost: float, seconds: float) -> bool:
        if self.spent + cost > self.puzzle.budget + 1e-9:
            self.failure = f"budget exceeded at {self.puzzle.steps[self.i].name}"
            return False
        self.spent += cost
        self.clock += seconds
        if self.clock > self.puzzle.deadline:
            self.failure = f"deadline passed at {self.puzzle.steps[self.i].name}"
            return False
        return True

    def _succeed(self) -> None:
        self.finish[self.i] = self.clock
        self.i += 1
        self.cause = None
        self.observed = None

    def _fail(self, cause: ErrorKind) -> None:
        self.cause = cause
        self.previous = self.observed
        self.model_failures += 1
        observed = cause
        r = self.rng.random()
        for kind, chance in _DISGUISE[cause]:
            if r < chance:
                observed = kind
                break
            r -= chance
        self.observed = observed

    def advance(self) -> FailureContext | None:
        """Run steps until one fails (its context is returned) or the run ends (``None``)."""
        steps = self.puzzle.steps
        if self.failure is not None:
            return None
        while self.cause is None:
            if self.failure is not None or self.i >= len(steps):
                return None
            step = steps[self.i]
            self.clock = max((self.finish[p] for p in step.parents), default=0.0)
            self.model = 0
            self.attempt = 1
            self.model_failures = 0
            self.previous = None
            self.last = None
            m = step.models[0]
            if not self._pay(m.cost, m.latency):
                return None
            p_fail = 1.0 - m.reliability
            if any(self.skipped[p] for p in step.parents):
                p_fail += SKIPPED_PARENT_PENALTY
            if self.rng.random() < p_fail:
                self._fail(_pick(self.rng, _FIRST_CAUSES if step.parents else _MODEL_CAUSES))
            else:
                self._succeed()
        return self.context()

    def context(self) -> FailureContext:
        """Return the failure context of the current failed step."""
        p = self.puzzle
        step = p.steps[self.i]
        assert self.observed is not None
        nxt = self.model + 1
        current = step.models[self.model]
        rest = sum(s.models[0].cost for s in p.steps[self.i + 1 :])
        return FailureContext(
            importance=step.importance,
            error_kind=self.observed,
            attempt=self.attempt,
            max_retries=step.max_retries,
            fallbacks_left=len(step.models) - nxt,
            can_reconstruct=step.can_reconstruct,
            skippable=step.skippable,
            budget_left=max(0.0, 1.0 - self.spent / p.budget),
            time_left=max(0.0, 1.0 - self.clock / p.deadline),
            risk_tolerance=p.risk_tolerance,
            cost_retry=current.cost / p.budget,
            cost_fallback=step.models[nxt].cost / p.budget if nxt < len(step.models) else 0.0,
            cost_reconstruct=(step.reconstruct_cost + current.cost) / p.budget
            if step.can_reconstruct
            else 0.0,
            downstream=step.downstream,
            model_failures=self.model_failures,
            previous_kind=self.previous,
            last_strategy=self.last,
            cost_rest=rest / p.budget,
            inputs_skipped=any(self.skipped[q] for q in step.parents),
        )

    def legal(self) -> tuple[bool, bool, bool, bool, bool]:
        """Legality of each strategy (in :data:`~symphony.conductor.policy.STRATEGIES` order)."""
        step = self.puzzle.steps[self.i]
        return (
            self.attempt <= step.max_retries,
            self.model + 1 < len(step.models),
            step.can_reconstruct,
            step.skippable,
            True,
        )

    def apply(self, strategy: Strategy) -> None:
        """Carry out ``strategy`` at the current failure.

        Raises
        ------
        ValueError
            If the strategy is not legal here.
        """
        if self.cause is None or self.done:
            raise ValueError("apply() needs a failed step: call advance() first")
        legal = self.legal()
        index = _STRATEGY_INDEX[strategy]
        if not legal[index]:
            raise ValueError(
                f"{strategy.value} is not legal at step {self.puzzle.steps[self.i].name}"
            )
        self.decisions += 1
        step = self.puzzle.steps[self.i]
        cause = self.cause
        rng = self.rng
        if strategy is Strategy.ABORT:
            self.failure = f"aborted at {step.name}"
            return
        if strategy is Strategy.SKIP:
            if step.importance > self.puzzle.risk_tolerance:
                self.failure = f"skipped {step.name}, importance above the risk tolerance"
                return
            self.skipped[self.i] = True
            self._succeed()
            return
        self.last = strategy
        if strategy is Strategy.RETRY:
            m = step.models[self.model]
            backoff = min(BACKOFF_BASE_S * 2.0 ** (self.attempt - 1), BACKOFF_CAP_S)
            self.attempt += 1
            if not self._pay(m.cost, backoff + m.latency):
                return
            if rng.random() < RETRY_SUCCESS[cause]:
                self._succeed()
            else:
                self._fail(cause)
            return
        if strategy is Strategy.FALLBACK:
            self.model += 1
            self.model_failures = 0
            m = step.models[self.model]
            self.attempt += 1
            if not self._pay(m.cost, m.latency):
                return
            factor = FALLBACK_INPUT_FACTOR.get(cause)
            if factor is None:  # a model problem: a fresh model starts afresh
                if rng.random() < m.reliability:
                    self._succeed()
                else:
                    self._fail(_pick(rng, _MODEL_CAUSES))
            elif rng.random() < factor * m.reliability:
                self._succeed()
            else:
                self._fail(cause)
            return
        # RECONSTRUCT: regenerate the input, then rerun the current model.
        m = step.models[self.model]
        self.attempt += 1
        if not self._pay(step.reconstruct_cost + m.cost, step.reconstruct_latency + m.latency):
            return
        fix = RECONSTRUCT_FIX.get(cause)
        if fix is None:  # the input was fine: the rerun is just another try of the same model
            if rng.random() < RETRY_SUCCESS[cause]:
                self._succeed()
            else:
                self._fail(cause)
        elif rng.random() < fix:
            if rng.random() < m.reliability:
                self._succeed()
            else:
                self._fail(_pick(rng, _MODEL_CAUSES))
        else:
            self._fail(cause)


_STRATEGY_INDEX = {s: i for i, s in enumerate(Strategy)}

#: Picks a strategy for a run at a failure (a policy's decide, or a cheaper array-level one).
Chooser = Callable[[Run, FailureContext], Strategy]


def policy_chooser(policy: Policy) -> Chooser:
    """Make a :data:`Chooser` that asks ``policy`` and checks its answer is legal."""

    def choose(run: Run, ctx: FailureContext) -> Strategy:
        strategy = policy.decide(ctx).strategy
        if not legal_mask(ctx)[_STRATEGY_INDEX[strategy]]:
            raise ValueError(f"policy {policy.name!r} chose illegal {strategy.value}")
        return strategy

    return choose


def play(puzzle: Puzzle, choose: Chooser, rng: random.Random) -> Outcome:
    """Play ``puzzle`` to the end, asking ``choose`` at every failure."""
    run = Run(puzzle, rng)
    finish(run, choose)
    return run.outcome()


def finish(run: Run, choose: Chooser) -> None:
    """Play ``run`` from its current state to the end."""
    ctx = run.advance()
    while ctx is not None:
        run.apply(choose(run, ctx))
        ctx = run.advance()


def puzzles(stream: int, seed: int, count: int) -> Iterator[Puzzle]:
    """``count`` puzzles of ``stream`` and ``seed`` (see :func:`puzzle_seed`)."""
    for i in range(count):
        yield generate(puzzle_seed(stream, seed, i))


@dataclass(frozen=True, slots=True)
class Score:
    """Aggregate outcome of a policy over many puzzles."""

    success_rate: float
    mean_cost: float
    mean_time: float
    episodes: int

    def to_json(self) -> dict[str, float]:
        """Return the three numbers ``fqg eval --json`` prints."""
        return {
            "success_rate": self.success_rate,
            "mean_cost": self.mean_cost,
            "mean_time": self.mean_time,
        }


EVAL_STREAM = 2
TRAIN_STREAM = 1


def evaluate(choose: Chooser, *, episodes: int, seed: int, stream: int = EVAL_STREAM) -> Score:
    """Play ``episodes`` puzzles of ``seed`` and average the outcomes.

    The runs' random streams depend only on the puzzle, so every policy meets the same puzzles
    and the same luck (common random numbers).

    Parameters
    ----------
    choose
        The chooser under test.
    episodes
        How many puzzles (at least 1).
    seed
        The evaluation seed.
    stream
        Puzzle stream (:data:`EVAL_STREAM` unless testing on training puzzles).

    Returns
    -------
    Score
        Success rate, mean cost (credits) and mean time (simulated seconds).
    """
    if episodes < 1:
        raise ValueError(f"episodes must be at least 1, got {episodes}")
    wins = 0
    cost = 0.0
    time = 0.0
    for puzzle in puzzles(stream, seed, episodes):
        out = play(puzzle, choose, random.Random(puzzle.seed ^ 0x5F3759DF))
        wins += out.success
        cost += out.cost
        time += out.time
    return Score(wins / episodes, cost / episodes, time / episodes, episodes)


def reward(out: Outcome, puzzle: Puzzle, cost_weight: float, time_weight: float) -> float:
    """Return the training reward: success, less a share of the budget and deadline used."""
    return (
        (1.0 if out.success else 0.0)
        - cost_weight * out.cost / puzzle.budget
        - time_weight * min(out.time / puzzle.deadline, 1.0)
    )


__all__ = [
    "EVAL_STREAM",
    "TRAIN_STREAM",
    "Model",
    "Outcome",
    "Puzzle",
    "Run",
    "Score",
    "Step",
    "evaluate",
    "finish",
    "generate",
    "play",
    "policy_chooser",
    "puzzle_seed",
    "puzzles",
    "reward",
]
