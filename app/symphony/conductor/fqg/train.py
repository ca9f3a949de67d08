"""Training the recovery policy in the Function Quest Game (imports torch).

Method: *rollout policy iteration with imitation* (approximate policy iteration). Each round
plays training puzzles with the current policy (plus some random exploration); at every failure
it estimates the value of each legal strategy by ``rollouts`` simulated continuations that share
their random numbers across strategies (so the comparison is not drowned in luck), continuing with
the current policy; the network is then fitted to prefer the best strategy (cross-entropy against
a sharp softmax of the estimated values). Round 0 continues with the best fixed rule. Why not
REINFORCE/PPO: with a handful of decisions per episode and a reward that is mostly success, a
policy gradient needs far more episodes for the same quality; the rollout estimates give a
low-variance label per situation, and the whole thing is deterministic from the seed.

``fine_tune`` adapts a trained network to recorded traces of real runs (see ``docs/policy.md``).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import torch

from symphony.conductor.fqg.game import (
    TRAIN_STREAM,
    Chooser,
    Run,
    finish,
    generate,
    policy_chooser,
    puzzle_seed,
    reward,
)
from symphony.conductor.policy.context import FEATURE_NAMES, STRATEGIES, FailureContext, Strategy
from symphony.conductor.policy.heuristics import HEURISTICS
from symphony.conductor.policy.learned import LearnedPolicy, Weights
from symphony.conductor.policy.traces import Trace

# Success dominates the value; cost and time only break near-ties (the goal is success at no
# higher cost than the fixed rules: 0.1/0.02 traded about half a point of success for ~0.3 credits).
COST_WEIGHT = 0.03
TIME_WEIGHT = 0.005
HIDDEN = 128


@dataclass(frozen=True)
class TrainConfig:
    """Knobs of :func:`train` (defaults: the shipped weights)."""

    seed: int = 0
    episodes: int = 12000
    rounds: int = 6
    rollouts: int = 48
    explore: float = 0.15
    epochs: int = 400
    lr: float = 3e-3
    temperature: float = 0.02
    objective: str = "q"
    hidden: int = HIDDEN
    cost_weight: float = COST_WEIGHT
    time_weight: float = TIME_WEIGHT


def _net(hidden: int = HIDDEN) -> torch.nn.Sequential:
    return torch.nn.Sequential(
        torch.nn.Linear(len(FEATURE_NAMES), hidden),
        torch.nn.ReLU(),
        torch.nn.Linear(hidden, hidden),
        torch.nn.ReLU(),
        torch.nn.Linear(hidden, len(STRATEGIES)),
    )


def to_weights(net: torch.nn.Sequential, meta: dict[str, object]) -> Weights:
    """Export a torch network's linear layers."""
    layers = tuple(
        (
            m.weight.detach().numpy().astype(np.float32).copy(),
            m.bias.detach().numpy().astype(np.float32).copy(),
        )
        for m in net
        if isinstance(m, torch.nn.Linear)
    )
    return Weights(layers, dict(meta))


def from_weights(weights: Weights) -> torch.nn.Sequential:
    """Make a torch network holding ``weights`` (to continue training them)."""
    net = _net(weights.layers[0][0].shape[0])
    linears = [m for m in net if isinstance(m, torch.nn.Linear)]
    if len(linears) != len(weights.layers) or any(
        tuple(m.weight.shape) != w.shape for m, (w, _) in zip(linears, weights.layers, strict=True)
    ):
        raise ValueError("the weights do not fit the network this version trains")
    with torch.no_grad():
        for m, (w, b) in zip(linears, weights.layers, strict=True):
            m.weight.copy_(torch.from_numpy(w))
            m.bias.copy_(torch.from_numpy(b))
    return net


def _legal_array(run: Run) -> list[bool]:
    return list(run.legal())


@dataclass
class _Data:
    x: list[list[float]]
    mask: list[list[bool]]
    q: list[list[float]]


def _label(
    run: Run,
    continuation: Chooser,
    rollouts: int,
    seed: int,
    weights: tuple[float, float] = (COST_WEIGHT, TIME_WEIGHT),
) -> list[float]:
    puzzle = run.puzzle
    legal = run.legal()
    values = [0.0] * len(STRATEGIES)
    for a, ok in enumerate(legal):
        if not ok:
            continue
        total = 0.0
        for k in range(rollouts):
            r = run.copy(random.Random(seed * 7919 + k))
            r.apply(STRATEGIES[a])
            finish(r, continuation)
            total += reward(r.outcome(), puzzle, *weights)
        values[a] = total / rollouts
    return values


def collect(
    behaviour: Chooser,
    continuation: Chooser,
    *,
    seed: int,
    first: int,
    count: int,
    rollouts: int,
    explore: float,
    weights: tuple[float, float] = (COST_WEIGHT, TIME_WEIGHT),
    progress: Callable[[int], None] | None = None,
) -> _Data:
    """Play training puzzles ``first .. first+count`` and label every failure by rollouts."""
    data = _Data([], [], [])
    for e in range(first, first + count):
        ps = puzzle_seed(TRAIN_STREAM, seed, e)
        puzzle = generate(ps)
        rng = random.Random(ps ^ 0x2545F491)
        explore_rng = random.Random(ps ^ 0x9E3779B9)
        run = Run(puzzle, rng)
        ctx = run.advance()
        d = 0
        while ctx is not None:
            data.x.append(ctx.feature_list())
            data.mask.append(_legal_array(run))
            data.q.append(_label(run, continuation, rollouts, (ps & 0xFFFFFFF) * 31 + d, weights))
            if explore_rng.random() < explore:
                choices = [s for s, ok in zip(STRATEGIES, run.legal(), strict=True) if ok]
                strategy = explore_rng.choice(choices)
            else:
                strategy = behaviour(run, ctx)
            run.apply(strategy)
            d += 1
            ctx = run.advance()
        if progress is not None:
            progress(e - first + 1)
    return data


def fit(
    net: torch.nn.Sequential,
    x: npt.NDArray[np.float32],
    mask: npt.NDArray[np.bool_],
    target: npt.NDArray[np.float32],
    *,
    epochs: int,
    lr: float,
    weight: npt.NDArray[np.float32] | None = None,
    anchor: Sequence[torch.Tensor] | None = None,
    anchor_weight: float = 0.0,
    regression: bool = False,
) -> float:
    """Full-batch Adam; the last loss.

    With ``regression`` the outputs are fitted to ``target`` values by squared error on the legal
    strategies (a Q-function: the mean over the situations that look alike, which is what a
    policy that cannot see the hidden cause should maximise); otherwise by masked cross-entropy
    against ``target`` distributions.
    """
    xt = torch.from_numpy(x)
    mt = torch.from_numpy(mask)
    tt = torch.from_numpy(target)
    wt = torch.ones(len(x)) if weight is None else torch.from_numpy(weight)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    loss = torch.tensor(0.0)
    for _ in range(epochs):
        opt.zero_grad()
        if regression:
            err = (net(xt) - tt).masked_fill(~mt, 0.0)
            per = (err * err).sum(dim=1)
        else:
            logits = net(xt).masked_fill(~mt, -1e9)
            logp = torch.log_softmax(logits, dim=1)
            per = -(tt * logp.masked_fill(~mt, 0.0)).sum(dim=1)
        loss = (wt * per).sum() / wt.sum()
        if anchor is not None and anchor_weight > 0.0:
            reg = sum(((p - a) ** 2).sum() for p, a in zip(net.parameters(), anchor, strict=True))
            loss = loss + anchor_weight * reg
        loss.backward()
        opt.step()
    return float(loss.detach())


def _targets(data: _Data, temperature: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x = np.asarray(data.x, dtype=np.float32)
    mask = np.asarray(data.mask, dtype=np.bool_)
    q = np.asarray(data.q, dtype=np.float64)
    z = np.where(mask, q / temperature, -np.inf)
    z -= z.max(axis=1, keepdims=True)
    p = np.exp(z)
    p /= p.sum(axis=1, keepdims=True)
    return x, mask, p.astype(np.float32)


class _NetChooser:
    """A chooser over the torch net's current weights, run in numpy (fast rollouts)."""

    def __init__(self, net: torch.nn.Sequential) -> None:
        self.policy = LearnedPolicy(to_weights(net, {}))

    def __call__(self, run: Run, ctx: FailureContext) -> Strategy:
        return STRATEGIES[self.policy.choose_index(ctx)]


def _seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True)


def train(
    config: TrainConfig,
    *,
    log: Callable[[str], None] | None = None,
) -> Weights:
    """Train a policy from scratch (deterministic from ``config.seed``).

    Parameters
    ----------
    config
        Seed, episode count, rounds, rollouts per strategy, ...
    log
        Called with one line per round.

    Returns
    -------
    Weights
        The trained network with its training metadata.
    """
    if config.episodes < config.rounds or config.rounds < 1:
        raise ValueError(
            f"episodes ({config.episodes}) must be at least rounds ({config.rounds}) >= 1"
        )
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        _seed_everything(config.seed)
        if config.objective not in ("q", "imitation"):
            raise ValueError(f"objective must be 'q' or 'imitation', got {config.objective!r}")
        net = _net(config.hidden)
        base = policy_chooser(HEURISTICS["fallback-first"])
        behaviour: Chooser = base
        continuation: Chooser = base
        per_round = config.episodes // config.rounds
        data = _Data([], [], [])
        for r in range(config.rounds):
            new = collect(
                behaviour,
                continuation,
                seed=config.seed,
                first=r * per_round,
                count=per_round,
                rollouts=config.rollouts,
                explore=config.explore,
                weights=(config.cost_weight, config.time_weight),
            )
            # Aggregate (DAgger): earlier rounds' situations stay in the training set.
            data.x += new.x
            data.mask += new.mask
            data.q += new.q
            if data.x:
                regression = config.objective == "q"
                if regression:
                    x = np.asarray(data.x, dtype=np.float32)
                    mask = np.asarray(data.mask, dtype=np.bool_)
                    target = np.asarray(data.q, dtype=np.float32)
                else:
                    x, mask, target = _targets(data, config.temperature)
                loss = fit(
                    net,
                    x,
                    mask,
                    target,
                    epochs=config.epochs,
                    lr=config.lr,
                    regression=regression,
                )
            else:
                loss = None
            if log is not None:
                log(
                    f"round {r + 1}/{config.rounds}: {len(data.x)} situations, "
                    + ("nothing to learn yet" if loss is None else f"loss {loss:.4f}")
                )
            chooser = _NetChooser(net)
            behaviour = continuation = chooser
        return to_weights(
            net,
            {
                "seed": config.seed,
                "episodes": config.episodes,
                "rounds": config.rounds,
                "rollouts": config.rollouts,
                "situations": len(data.x),
                "hidden": config.hidden,
                "objective": config.objective,
                "method": "rollout policy iteration, Q-regression"
                if config.objective == "q"
                else "rollout policy iteration + imitation",
            },
        )
    finally:
        torch.set_num_threads(threads)


def fine_tune(
    weights: Weights,
    traces: Sequence[Trace],
    *,
    seed: int = 0,
    epochs: int = 200,
    lr: float = 1e-3,
    anchor_weight: float = 1e-3,
) -> Weights:
    """Adapt a trained policy to recorded traces of real runs.

    The network's outputs are value estimates (see :func:`train`), so each trace teaches the
    value of the strategy it took: 1 when the node then produced its output (or was skipped
    acceptably), 0 when not, less ``COST_WEIGHT`` times what the recovery cost (a fraction of the
    budget). The other strategies' outputs are left to the L2 anchor to the starting weights,
    which keeps the game's knowledge where the traces say nothing.

    Raises
    ------
    ValueError
        No traces, or none with a legal strategy.
    """
    if not traces:
        raise ValueError("no traces to fine-tune on")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        _seed_everything(seed)
        net = from_weights(weights)
        anchor = [p.detach().clone() for p in net.parameters()]
        from symphony.conductor.policy.context import legal_mask

        xs, masks, targets = [], [], []
        for t in traces:
            a = STRATEGIES.index(t.strategy)
            if not legal_mask(t.context)[a]:
                continue  # an illegal choice teaches nothing about legal ones
            mask = [False] * len(STRATEGIES)
            mask[a] = True
            target = [0.0] * len(STRATEGIES)
            target[a] = (1.0 if t.success else 0.0) - COST_WEIGHT * min(t.cost, 1.0)
            xs.append(t.context.feature_list())
            masks.append(mask)
            targets.append(target)
        if not xs:
            raise ValueError("no trace has a legal strategy to learn from")
        fit(
            net,
            np.asarray(xs, dtype=np.float32),
            np.asarray(masks, dtype=np.bool_),
            np.asarray(targets, dtype=np.float32),
            epochs=epochs,
            lr=lr,
            anchor=anchor,
            anchor_weight=anchor_weight,
            regression=True,
        )
        meta = dict(weights.meta)
        meta["fine_tuned_on"] = len(xs)
        return to_weights(net, meta)
    finally:
        torch.set_num_threads(threads)
