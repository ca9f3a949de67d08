"""What a recovery policy sees at a failure, what it may answer, and what it answers.

Nothing here imports torch or numpy at import time: the conductor imports this module on every
start, and a decision must cost microseconds.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt


class Strategy(enum.Enum):
    """A recovery strategy (seed 004, "Adaptive Failure Handling")."""

    RETRY = "retry"
    """Run the same model again (after a backoff)."""
    FALLBACK = "fallback"
    """Switch to the next fallback model of the node."""
    RECONSTRUCT = "reconstruct"
    """Regenerate the node's missing or damaged input from a downstream artifact, then rerun."""
    SKIP = "skip"
    """Continue without this node's output; the gap is marked for review."""
    ABORT = "abort"
    """Stop the run."""


#: The strategies in the fixed order of a policy's output vector.
STRATEGIES: tuple[Strategy, ...] = tuple(Strategy)


class ErrorKind(enum.Enum):
    """What kind of failure the conductor observed."""

    TRANSIENT = "transient"
    """Timeout, rate limit, crashed child, 5xx: likely to pass on its own."""
    PERSISTENT = "persistent"
    """The model keeps failing: bad output, refusal, 4xx."""
    INVALID_INPUT = "invalid_input"
    """The node's input is malformed for it."""
    RESOURCE = "resource"
    """Budget, pool or memory exhausted."""
    MISSING_INPUT = "missing_input"
    """An upstream artifact is gone or damaged."""


ERROR_KINDS: tuple[ErrorKind, ...] = tuple(ErrorKind)

#: Names of :meth:`FailureContext.features`, in order.
FEATURE_NAMES: tuple[str, ...] = (
    "importance",
    *(f"error_{k.value}" for k in ERROR_KINDS),
    "attempt",  # attempts so far / 10, capped at 1
    "retries_left",  # (max_retries - attempt + 1) / 5, in [0, 1]
    "fallbacks_left",  # / 3, capped at 1
    "can_reconstruct",
    "skippable",
    "budget_left",
    "time_left",
    "risk_tolerance",
    "skip_acceptable",  # 1 when importance <= risk_tolerance
    "cost_retry",
    "cost_fallback",
    "cost_reconstruct",
    "retry_share",  # cost_retry / budget_left, capped at 2, halved: > 0.5 means unaffordable
    "fallback_share",
    "reconstruct_share",
    "downstream",  # / 10, capped at 1
    "model_failures",  # failed attempts in a row of the current model on this node / 5, capped at 1
    *(f"previous_{k.value}" for k in ERROR_KINDS),  # kind of this node's previous failure
    "last_retry",  # what was done at this node's previous failure (all 0: first failure)
    "last_fallback",
    "last_reconstruct",
    "cost_rest",  # nodes not started yet, at their model's price, as a fraction of the budget
    "rest_share",  # (cost_retry + cost_rest) / budget_left, capped at 2, halved
    "inputs_skipped",
)

_KIND_INDEX = {k: i for i, k in enumerate(ERROR_KINDS)}
_LAST_INDEX = {Strategy.RETRY: 0, Strategy.FALLBACK: 1, Strategy.RECONSTRUCT: 2}


def _share(cost: float, left: float) -> float:
    if left <= 0.0:
        return 1.0
    return min(cost / left, 2.0) / 2.0


@dataclass(frozen=True, slots=True)
class FailureContext:
    """The situation at one failure of one node.

    Parameters
    ----------
    importance
        The node's importance, 0..1 (low 0.25, normal 0.5, high 0.75, critical 1).
    error_kind
        The kind of the failure just observed.
    attempt
        Attempts made on this node so far (at least 1).
    max_retries
        The node's retry cap: RETRY is illegal once ``attempt > max_retries``.
    fallbacks_left
        Fallback models not tried yet; FALLBACK is legal only when positive.
    can_reconstruct
        Whether the node's missing input can be regenerated from a downstream artifact.
    skippable
        Whether the melody allows running on without this node.
    budget_left
        Fraction of the run's budget left, 0..1 (1.0 when unlimited).
    time_left
        Fraction of the deadline left, 0..1 (1.0 when none).
    risk_tolerance
        The run's risk tolerance, 0..1: a skip is acceptable for importance at most this.
    cost_retry, cost_fallback, cost_reconstruct
        Expected cost of each option as a fraction of the budget.
    downstream
        Number of nodes that depend on this one.
    model_failures
        Failed attempts in a row of the node's current model, this one included (a fallback
        starts a new count; a reconstruct reruns the same model and does not).
    previous_kind
        The error kind of this node's previous failure (``None`` at its first).
    last_strategy
        What was done at this node's previous failure (``None`` at its first).
    cost_rest
        Expected cost of the nodes not started yet (each at its model's price), as a fraction of
        the budget.
    inputs_skipped
        Whether one of the node's inputs comes from a skipped node (it runs on a gap).
    """

    importance: float
    error_kind: ErrorKind
    attempt: int
    max_retries: int
    fallbacks_left: int
    can_reconstruct: bool
    skippable: bool
    budget_left: float
    time_left: float
    risk_tolerance: float
    cost_retry: float
    cost_fallback: float
    cost_reconstruct: float
    downstream: int
    model_failures: int = 1
    previous_kind: ErrorKind | None = None
    last_strategy: Strategy | None = None
    cost_rest: float = 0.0
    inputs_skipped: bool = False

    def __post_init__(self) -> None:
        for name in (
            "importance",
            "budget_left",
            "time_left",
            "risk_tolerance",
            "cost_retry",
            "cost_fallback",
            "cost_reconstruct",
            "cost_rest",
        ):
            value = getattr(self, name)
            if not isinstance(value, int | float) or isinstance(value, bool):
                raise TypeError(f"FailureContext.{name}: expected a number, got {value!r}")
            if not math.isfinite(value) or value < 0.0:
                raise ValueError(
                    f"FailureContext.{name}: expected a finite number >= 0, got {value}"
                )
        for name in ("importance", "budget_left", "time_left", "risk_tolerance"):
            if getattr(self, name) > 1.0:
                raise ValueError(f"FailureContext.{name}: expected 0..1, got {getattr(self, name)}")
        if not isinstance(self.error_kind, ErrorKind):
            raise TypeError(
                f"FailureContext.error_kind: expected an ErrorKind, got {self.error_kind!r}"
            )
        if self.previous_kind is not None and not isinstance(self.previous_kind, ErrorKind):
            raise TypeError(
                f"FailureContext.previous_kind: expected an ErrorKind or None, "
                f"got {self.previous_kind!r}"
            )
        if self.last_strategy is not None and self.last_strategy not in _LAST_INDEX:
            raise TypeError(
                f"FailureContext.last_strategy: expected retry, fallback, reconstruct or None, "
                f"got {self.last_strategy!r}"
            )
        if not isinstance(self.inputs_skipped, bool):
            raise TypeError(
                f"FailureContext.inputs_skipped: expected a bool, got {self.inputs_skipped!r}"
            )
        for name in ("attempt", "max_retries", "fallbacks_left", "downstream", "model_failures"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool):
                raise TypeError(f"FailureContext.{name}: expected an int, got {value!r}")
        for name in ("attempt", "model_failures"):
            if getattr(self, name) < 1:
                raise ValueError(f"FailureContext.{name}: expected >= 1, got {getattr(self, name)}")
        for name in ("max_retries", "fallbacks_left", "downstream"):
            if getattr(self, name) < 0:
                raise ValueError(f"FailureContext.{name}: expected >= 0, got {getattr(self, name)}")

    @property
    def retries_left(self) -> int:
        """Retries still allowed by the node's cap."""
        return max(0, self.max_retries - self.attempt + 1)

    def feature_list(self) -> list[float]:
        """Return the features as a plain list, in the order of :data:`FEATURE_NAMES`."""
        kinds = [0.0, 0.0, 0.0, 0.0, 0.0]
        kinds[_KIND_INDEX[self.error_kind]] = 1.0
        previous = [0.0, 0.0, 0.0, 0.0, 0.0]
        if self.previous_kind is not None:
            previous[_KIND_INDEX[self.previous_kind]] = 1.0
        last = [0.0, 0.0, 0.0]
        if self.last_strategy is not None:
            last[_LAST_INDEX[self.last_strategy]] = 1.0
        left = self.budget_left
        return [
            self.importance,
            *kinds,
            min(self.attempt / 10.0, 1.0),
            min(self.retries_left / 5.0, 1.0),
            min(self.fallbacks_left / 3.0, 1.0),
            1.0 if self.can_reconstruct else 0.0,
            1.0 if self.skippable else 0.0,
            left,
            self.time_left,
            self.risk_tolerance,
            1.0 if self.importance <= self.risk_tolerance else 0.0,
            min(self.cost_retry, 1.0),
            min(self.cost_fallback, 1.0),
            min(self.cost_reconstruct, 1.0),
            _share(self.cost_retry, left),
            _share(self.cost_fallback, left),
            _share(self.cost_reconstruct, left),
            min(self.downstream / 10.0, 1.0),
            min(self.model_failures / 5.0, 1.0),
            *previous,
            *last,
            min(self.cost_rest, 1.0),
            _share(self.cost_retry + self.cost_rest, left),
            1.0 if self.inputs_skipped else 0.0,
        ]

    def features(self) -> npt.NDArray[np.float32]:
        """Return the policy's input vector (float32, order :data:`FEATURE_NAMES`).

        Returns
        -------
        numpy.ndarray
            Shape ``(len(FEATURE_NAMES),)``.
        """
        import numpy as np

        return np.asarray(self.feature_list(), dtype=np.float32)


def legal_strategies(ctx: FailureContext) -> frozenset[Strategy]:
    """Return the strategies the node's policy allows in this situation (ABORT always).

    Parameters
    ----------
    ctx
        The failure.

    Returns
    -------
    frozenset of Strategy
        The legal strategies.
    """
    legal = [Strategy.ABORT]
    if ctx.attempt <= ctx.max_retries:
        legal.append(Strategy.RETRY)
    if ctx.fallbacks_left > 0:
        legal.append(Strategy.FALLBACK)
    if ctx.can_reconstruct:
        legal.append(Strategy.RECONSTRUCT)
    if ctx.skippable:
        legal.append(Strategy.SKIP)
    return frozenset(legal)


def legal_mask(ctx: FailureContext) -> tuple[bool, bool, bool, bool, bool]:
    """Legality of each strategy in :data:`STRATEGIES` order (cheaper than a frozenset)."""
    return (
        ctx.attempt <= ctx.max_retries,
        ctx.fallbacks_left > 0,
        ctx.can_reconstruct,
        ctx.skippable,
        True,
    )


@dataclass(frozen=True, slots=True)
class Decision:
    """A policy's answer.

    Parameters
    ----------
    strategy
        The chosen (always legal) strategy.
    reason
        One human sentence, e.g. ``"retry: transient error, 2 retries left, cheap"``.
    scores
        The policy's score of every legal strategy (higher is better).
    """

    strategy: Strategy
    reason: str
    scores: Mapping[Strategy, float]


class Policy(Protocol):
    """Anything that picks a recovery strategy."""

    name: str

    def decide(self, ctx: FailureContext) -> Decision:
        """Choose a legal strategy for ``ctx``."""
        ...


def describe(strategy: Strategy, ctx: FailureContext) -> str:
    """One sentence saying why ``strategy`` fits ``ctx`` (the facts the choice rests on)."""
    kind = ctx.error_kind.value.replace("_", " ")
    if strategy is Strategy.RETRY:
        left = ctx.retries_left
        price = "cheap" if ctx.cost_retry <= 0.5 * ctx.budget_left else "costly"
        return f"retry: {kind} error, {left} retr{'y' if left == 1 else 'ies'} left, {price}"
    if strategy is Strategy.FALLBACK:
        return (
            f"fallback: {kind} error, {ctx.fallbacks_left} fallback model"
            f"{'' if ctx.fallbacks_left == 1 else 's'} left, costs {ctx.cost_fallback:.0%} "
            f"of the budget with {ctx.budget_left:.0%} left"
        )
    if strategy is Strategy.RECONSTRUCT:
        return (
            f"reconstruct: {kind} error, the input can be regenerated from downstream "
            f"for {ctx.cost_reconstruct:.0%} of the budget"
        )
    if strategy is Strategy.SKIP:
        verdict = "within" if ctx.importance <= ctx.risk_tolerance else "above"
        return (
            f"skip: {kind} error on a skippable step of importance {ctx.importance:.2f}, "
            f"{verdict} the risk tolerance {ctx.risk_tolerance:.2f}"
        )
    return (
        f"abort: {kind} error after {ctx.attempt} attempt{'' if ctx.attempt == 1 else 's'}: "
        + ", ".join(_against_going_on(ctx))
    )


def _against_going_on(ctx: FailureContext) -> list[str]:
    """Return the facts that leave no good way on (an abort names those that hold)."""
    why = []
    if ctx.retries_left <= 0:
        why.append("no retries left")
    elif ctx.error_kind is ErrorKind.PERSISTENT:
        why.append("a retry rarely clears a persistent error")
    elif ctx.error_kind is ErrorKind.MISSING_INPUT:
        why.append("a retry cannot bring a missing input back")
    elif ctx.cost_retry > ctx.budget_left:
        why.append("a retry costs more than the budget left")
    if ctx.fallbacks_left <= 0:
        why.append("no fallback model")
    elif ctx.cost_fallback > ctx.budget_left:
        why.append("the fallback model costs more than the budget left")
    if not ctx.can_reconstruct:
        why.append("the input cannot be regenerated")
    if not ctx.skippable:
        why.append("the step may not be skipped")
    elif ctx.importance > ctx.risk_tolerance:
        why.append(
            f"its importance {ctx.importance:.2f} is above the risk tolerance "
            f"{ctx.risk_tolerance:.2f}"
        )
    if ctx.time_left <= 0.05:
        why.append(f"{ctx.time_left:.0%} of the time is left")
    # Every option is legal and affordable: the policy judged each unlikely to see the run through.
    return why or ["no option is likely to see the run through"]
