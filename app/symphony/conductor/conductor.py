"""The conductor: runs a melody over the Pit and the extensions, and recovers from failures.

One :class:`Conductor` per open Pit. :meth:`Conductor.start` turns a melody into a DAG Tracker
workflow named by the run id and returns a :class:`Run`, an asyncio task that

1. asks the DAG Tracker which nodes are ready, and evaluates their links' quality-gate
   conditions (a hard link whose condition fails skips the node: that branch is not taken);
2. serves a node from the Artifact Store when its type version, config and input hashes match a
   stored result (across runs and restarts), else runs it: built-in operators inline on this
   thread, extension types as asyncio tasks — up to ``max_parallel`` at once, each model node
   first granted a slot by the Arbitration Engine and a lease by the Pool Manager;
3. stores every output in the Artifact Store with its lineage (the input artifacts) and binds it
   to the node in the DAG Tracker, so a killed run resumes from the Pit alone (:meth:`resume`);
4. on a failure, asks the recovery policy (:mod:`symphony.conductor.policy`) for a strategy —
   retry with backoff, fallback model, reverse reconstruction, graceful skip or abort — and
   records the decision and its outcome as a trace for ``symphony fqg train --from-traces``.

Observers (:meth:`Conductor.subscribe`) receive :mod:`symphony.conductor.events` in order on the
loop's thread. With ``durable=True`` every node reported succeeded is on disk: successes are
group-committed (one ``fdatasync`` for all nodes finished since the last one) before their events
go out, so a crash can only lose work nobody was told about.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import math
import os
import random
import time
import uuid
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Final

from symphony.conductor import (
    CACHE_PREFIX,
    DEFAULT_KEEP_RUNS,
    EVENTS_PREFIX,
    MELODY_PREFIX,
    OUTPUT_PREFIX,
    RUN_PREFIX,
)
from symphony.conductor.events import (
    CACHED,
    CANCELLED,
    DONE_BEFORE_RESUME,
    FAILED,
    PAUSED,
    QUEUED,
    RUN_CANCELLED,
    RUN_FAILED,
    RUN_INTERRUPTED,
    RUN_PAUSED,
    RUN_RUNNING,
    RUN_SUCCEEDED,
    RUNNING,
    SKIPPED,
    STOPPED_BEFORE_START,
    SUCCEEDED,
    ArtifactStored,
    NodeCost,
    NodeProgress,
    NodeStateChanged,
    NodeToken,
    RecoveryChosen,
    RunEvent,
    RunStateChanged,
    encode_session,
)
from symphony.conductor.executor import Executor, LocalExecutor, NodeError, NodeResult, NodeTask
from symphony.conductor.history import RunNotFoundError, load_melody, read_events, read_record
from symphony.conductor.models import ModelCatalog
from symphony.conductor.policy import (
    TRACE_PREFIX,
    Decision,
    ErrorKind,
    FailureContext,
    Policy,
    Strategy,
    Trace,
)
from symphony.pit import BudgetExceededError, Pit, PitError
from symphony.registry import NodeTypeDescription, NodeTypeRegistry, PortType
from symphony.workflow import (
    BreakpointChanged,
    DependencyKind,
    Importance,
    Link,
    Melody,
    MelodyError,
    Node,
    Severity,
    condition_holds,
    to_document,
    validate,
)

__all__ = [
    "DEFAULT_KEEP_RUNS",
    "Conductor",
    "InvalidMelodyError",
    "NodeReport",
    "Run",
    "RunOptions",
    "RunResult",
    "RunNotFoundError",
]

_log = logging.getLogger("symphony.conductor")

_IMPORTANCE: Final = {
    Importance.LOW: 0.25,
    Importance.NORMAL: 0.5,
    Importance.HIGH: 0.75,
    Importance.CRITICAL: 1.0,
}
#: Arbitration priority (0-10) by importance.
_PRIORITY: Final = {
    Importance.LOW: 2,
    Importance.NORMAL: 5,
    Importance.HIGH: 7,
    Importance.CRITICAL: 9,
}
#: When two links join the same pair of nodes, the DAG gets the strongest kind.
_KIND_RANK: Final = {
    DependencyKind.HARD: 3,
    DependencyKind.SOFT: 2,
    DependencyKind.OPTIONAL: 1,
    DependencyKind.PARALLEL: 0,
}
#: Artifact kinds by port type, for values that are text.
_TEXT_KINDS: Final = {
    PortType.TEXT: "text",
    PortType.CODE: "text",
    PortType.MARKDOWN: "markdown",
    PortType.FILE_PATH: "text",
}
#: How many inline nodes may finish before their successes are committed and announced.
_COMMIT_EVERY: Final = 256


def _is_number(value: object) -> bool:
    """Whether ``value`` is a finite int or float (not a bool, NaN or infinity)."""
    return not isinstance(value, bool) and isinstance(value, int | float) and math.isfinite(value)


#: The output port whose number a node's outputs are scored by (``ai.reviewer``'s ``score``).
SCORE_PORT: Final = "score"


def _semantic_score(value: object) -> float | None:
    """Return a node's ``score`` output as a quality from 0 to 1, or ``None`` if it is none.

    A number from 0 to 1 is taken as it is; one from 2 up to 10 is read as marks out of 10,
    above 10 up to 100 as a percentage (models asked for a score often answer ``7`` or ``85``).
    A number above 1 and below 2 is no score: ``1.05`` may be a 0..1 score run over (very
    good) or one mark out of 10 (very bad), and guessing would take a branch silently. Any
    other value (text, ``null``, a negative number, more than 100) is no score either;
    :func:`_not_a_score` says why.
    """
    if not _is_number(value):
        return None
    score = float(value)  # type: ignore[arg-type]
    if 0.0 <= score <= 1.0:
        return score
    if 2.0 <= score <= 10.0:
        return score / 10.0
    if 10.0 < score <= 100.0:
        return score / 100.0
    return None


def _not_a_score(value: object) -> str:
    """Say why ``value`` (for which :func:`_semantic_score` gives ``None``) is no score."""
    shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:37] + "..."
    if _is_number(value) and 1.0 < float(value) < 2.0:  # type: ignore[arg-type]
        return (
            f"{shown} is ambiguous (a score from 0 to 1 run over, or marks out of 10?): "
            "give 0 to 1, marks from 2 to 10 or a percentage"
        )
    return f"{shown} is not a number from 0 to 1, marks out of 10 or a percentage"


def _inline_abort_reason(ctx: FailureContext) -> str:
    """Say why a failed in-process operator is aborted (its retries are not the reason)."""
    kind = ctx.error_kind.value.replace("_", " ")
    why = "operators are never retried (the same inputs fail the same way)"
    if not ctx.skippable:
        why += ", and the step may not be skipped"
    elif ctx.importance > ctx.risk_tolerance:
        why += (
            f", and its importance {ctx.importance:.2f} is above the risk tolerance "
            f"{ctx.risk_tolerance:.2f}"
        )
    return f"abort: {kind} error in an operator: {why}"


class InvalidMelodyError(ValueError):
    """The melody cannot run; ``issues`` are the validation errors, each naming its place."""

    def __init__(self, message: str, issues: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.issues = tuple(issues)


@dataclass(frozen=True, slots=True)
class RunOptions:
    """How a run behaves.

    Attributes
    ----------
    durable
        Commit each success to disk before announcing it (see the module docstring).
    use_cache
        Serve unchanged nodes from the Artifact Store.
    max_parallel
        Nodes running at once (extension calls; inline operators run one at a time anyway).
    budget
        Money the run may spend (``None``: unlimited); the Pool Manager enforces it.
    deadline
        Seconds the run may take (``None``: none); informs recovery (time pressure).
    risk_tolerance
        0..1; higher lets the policy skip more readily.
    step
        Pause before every node (step mode).
    breakpoints
        Pause before nodes with a breakpoint.
    default_timeout
        Seconds an extension attempt may take when the node's policy sets none.
    retry_backoff
        Base delay of retry backoff (doubling, ±20 % jitter, capped at 30 s).
    only
        Run just these nodes and what they need (the rest is skipped); ``None``: all.
    force
        Nodes run even when the store holds their result (run selected / run from here).

    Raises
    ------
    ValueError
        If ``budget`` or ``retry_backoff`` is not a finite number ≥ 0, ``deadline`` or
        ``default_timeout`` not a finite number > 0, ``risk_tolerance`` not a number from 0 to 1,
        or ``max_parallel`` not a whole number ≥ 1 (the message names the option). They are
        stored in the run record, which must stay strict JSON (no NaN).
    """

    durable: bool = True
    use_cache: bool = True
    max_parallel: int = 4
    budget: float | None = None
    deadline: float | None = None
    risk_tolerance: float = 0.5
    step: bool = False
    breakpoints: bool = True
    default_timeout: float | None = 600.0
    retry_backoff: float = 0.25
    only: frozenset[str] | None = None
    force: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        mp = self.max_parallel
        if isinstance(mp, bool) or not isinstance(mp, int) or mp < 1:
            raise ValueError(f"max_parallel must be a whole number ≥ 1, not {mp!r}")
        budget, deadline = self.budget, self.deadline
        if budget is not None and not (_is_number(budget) and budget >= 0):
            raise ValueError(f"budget must be a number ≥ 0 or None, not {budget!r}")
        if deadline is not None and not (_is_number(deadline) and deadline > 0):
            raise ValueError(f"deadline must be a number of seconds > 0 or None, not {deadline!r}")
        # Checked here, not at the first failure: the policy refuses them there (an internal
        # error of the node), and the run record would already hold a NaN.
        risk = self.risk_tolerance
        if not (_is_number(risk) and 0 <= risk <= 1):
            raise ValueError(f"risk_tolerance must be a number from 0 to 1, not {risk!r}")
        backoff = self.retry_backoff
        if not (_is_number(backoff) and backoff >= 0):
            raise ValueError(f"retry_backoff must be a number of seconds ≥ 0, not {backoff!r}")
        timeout = self.default_timeout
        if timeout is not None and not (_is_number(timeout) and timeout > 0):
            raise ValueError(
                f"default_timeout must be a number of seconds > 0 or None, not {timeout!r}"
            )

    def to_json(self) -> dict[str, Any]:
        """Return the options as JSON (stored in the run record)."""
        return {
            "only": None if self.only is None else sorted(self.only),
            "force": sorted(self.force),
            "durable": self.durable,
            "use_cache": self.use_cache,
            "max_parallel": self.max_parallel,
            "budget": self.budget,
            "deadline": self.deadline,
            "risk_tolerance": self.risk_tolerance,
            "step": self.step,
            "breakpoints": self.breakpoints,
            "default_timeout": self.default_timeout,
            "retry_backoff": self.retry_backoff,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RunOptions:
        """Read options written by :meth:`to_json` (unknown keys are ignored).

        Raises
        ------
        ValueError
            If a value is not a valid option (e.g. ``"budget": NaN``, which runs recorded
            by older builds could store); the message names it.
        """
        known = cls.__dataclass_fields__
        values = {k: v for k, v in data.items() if k in known}
        if values.get("only") is not None:
            values["only"] = frozenset(values["only"])
        values["force"] = frozenset(values.get("force", ()))
        return cls(**values)

    @classmethod
    def selected(cls, melody: Melody, nodes: Iterable[str], **kw: Any) -> RunOptions:
        """Options to run only ``nodes`` again (what they need is served from the store)."""
        chosen = frozenset(nodes)
        return cls(only=chosen, force=chosen, **kw)

    @classmethod
    def from_here(cls, melody: Melody, nodes: Iterable[str], **kw: Any) -> RunOptions:
        """Options to run ``nodes`` and everything downstream of them again."""
        todo, seen = list(nodes), set()
        while todo:
            nid = todo.pop()
            if nid in seen:
                continue
            seen.add(nid)
            todo.extend(link.target_node for link in melody.outgoing(nid))
        return cls(force=frozenset(seen), **kw)


@dataclass(slots=True)
class NodeReport:
    """How one node fared in a run (``symphony run --json``'s ``nodes`` items)."""

    id: str
    type: str
    state: str = "pending"
    attempts: int = 0
    cached: bool = False
    started: float | None = None
    finished: float | None = None
    cost: float = 0.0
    artifacts: dict[str, int] = field(default_factory=dict)
    model: str = ""
    error: str = ""
    recoveries: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """Return the report as JSON."""
        return {
            "id": self.id,
            "type": self.type,
            "state": self.state,
            "attempts": self.attempts,
            "cached": self.cached,
            "started": self.started,
            "finished": self.finished,
            "cost": self.cost,
            "artifacts": dict(self.artifacts),
            "model": self.model,
            "error": self.error,
            "recoveries": list(self.recoveries),
        }


@dataclass(slots=True)
class RunResult:
    """The end of a run."""

    run_id: str
    status: str
    nodes: list[NodeReport]
    outputs: dict[str, Any]
    detail: str = ""

    def __repr__(self) -> str:
        # Short on purpose: asyncio formats the finished run task (and this result) in
        # ``asyncio.run``'s signal-handler check; a full dataclass repr of 1,000 reports costs ms.
        return f"<RunResult {self.run_id} {self.status}: {len(self.nodes)} nodes>"

    def to_json(self) -> dict[str, Any]:
        """Return ``{"run_id", "status", "nodes", "outputs", "detail"}``."""
        return {
            "run_id": self.run_id,
            "status": self.status,
            "nodes": [n.to_json() for n in self.nodes],
            "outputs": self.outputs,
            "detail": self.detail,
        }

    def node(self, node_id: str) -> NodeReport:
        """Return the report of ``node_id``."""
        for n in self.nodes:
            if n.id == node_id:
                return n
        raise KeyError(f"no node {node_id!r} in run {self.run_id!r}")


# ------------------------------------------------------------------------------ value encoding


#: One encoder for every value (``json.dumps`` with options builds a new one per call).
_JSON: Final = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def _encode(value: Any, port: PortType | None) -> tuple[bytes, str]:
    if isinstance(value, str) and port in _TEXT_KINDS:
        return value.encode("utf-8"), _TEXT_KINDS[port]
    if type(value) is int:  # not bool; an int's JSON is its decimal digits (half the encoder)
        return str(value).encode("ascii"), "json"
    return _JSON.encode(value).encode("utf-8"), "json"


def _decode(data: bytes, kind: str) -> Any:
    if kind == "json":
        return json.loads(data)
    return data.decode("utf-8")


def _canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode()


def cache_key(
    desc: NodeTypeDescription, config: Mapping[str, Any], inputs: Mapping[str, Any], model: str
) -> str:
    """Return the cache key of running ``desc`` with this config, inputs and model."""
    h = hashlib.blake2b(digest_size=20)
    h.update(f"{desc.type_id}\0{desc.version}\0{desc.method}\0{model}\0".encode())
    h.update(_canonical(config))
    h.update(b"\0")
    h.update(_canonical(inputs))
    return h.hexdigest()


# ------------------------------------------------------------------------------ resources


def _prompt_tokens(result: NodeResult) -> int:
    """Return the prompt tokens a model call's usage reports (0 when it reports none)."""
    usage = result.extra.get("usage")
    n = usage.get("prompt_tokens") if isinstance(usage, Mapping) else None
    return n if type(n) is int and n > 0 else 0


#: Protocol error codes a retry of the same call would only get again (invalid params such as
#: an empty prompt, a method or model that does not exist, a bad API key, a request the
#: provider calls malformed, an incompatible protocol). The game retries an "invalid input"
#: with some luck, as a model may stumble over an input; these are refusals before any model
#: ran. A fallback model or rebuilt inputs are still offered.
_SAME_ANSWER_CODES = frozenset({-32602, -32601, -32006, 4002, 4003, 4007})


class OverBudgetError(NodeError):
    """A model call the rest of its run's budget does not cover (kind ``resource``).

    A run only spends more, so the same call will not fit later and rebuilding the node's inputs
    does not make it cheaper: the recovery policy is offered a cheaper fallback model, a skip or
    an abort, never a retry or a reconstruction.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message, ErrorKind.RESOURCE)


class _Broker:
    """Model slots: Arbitration Engine decisions, Pool Manager leases, one per model attempt."""

    def __init__(self, pit: Pit, catalog: ModelCatalog) -> None:
        self.pit = pit
        self.catalog = catalog
        self._waiting: dict[int, tuple[asyncio.Future[tuple[int, str, int]], str, float]] = {}
        #: the budget set for each run in progress (a resume may bring a new one)
        self._budgets: dict[str, float | None] = {}

    def forget(self, owner: str) -> None:
        """Drop what is known of ``owner``'s budget (its run ended here)."""
        self._budgets.pop(owner, None)

    def ensure(self, model: str) -> None:
        pool = self.pit.pool
        if model in pool:
            return
        spec = self.catalog.resolve(model)
        pool.register(
            spec.id,
            slots=spec.slots,
            memory=spec.memory,
            price_per_call=spec.price_per_call,
            price_per_token=spec.price_per_token,
        )

    async def acquire(
        self, owner: str, model: str, priority: int, estimate: float, budget: float | None
    ) -> tuple[int, str, int]:
        """Wait for a slot on ``model``; return ``(lease, serving model, decision)``."""
        self.ensure(model)
        arb = self.pit.arbitration
        # Set at a run's first call here, and again when it changed: a resume may bring a
        # bigger (or no) budget, and the Arbitration Engine keeps the owner's old one.
        if owner not in self._budgets or self._budgets[owner] != budget:
            arb.set_policy(owner, budget=budget)
            self._budgets[owner] = budget
        try:
            rid = arb.submit(owner, model, workflow=owner, priority=priority, cost=estimate)
        except BudgetExceededError:
            # refused at submission: a node failure of kind "resource", for the policy to
            # decide on (a skippable node is skipped), not an error inside the conductor
            raise OverBudgetError(self._over_budget(owner, model, estimate)) from None
        fut: asyncio.Future[tuple[int, str, int]] = asyncio.get_running_loop().create_future()
        self._waiting[rid] = (fut, owner, estimate)
        self.pump()
        try:
            return await fut
        except asyncio.CancelledError:
            if self._waiting.pop(rid, None) is not None:
                with contextlib.suppress(PitError):
                    arb.cancel(rid)
            raise

    def _over_budget(self, owner: str, model: str, estimate: float) -> str:
        """Say which budget a call to ``model`` estimated at ``estimate`` does not fit."""
        budget = self._budgets.get(owner)
        stats = next((o for o in self.pit.arbitration.owners() if o.owner == owner), None)
        used = ""
        if stats is not None:
            used = f" ({stats.spent:.4g} spent, {stats.committed:.4g} held by calls under way)"
        limit = "the run's budget" if budget is None else f"the run's budget of {budget:.4g}"
        return f"{limit} does not cover a call to {model!r} estimated at {estimate:.4g}{used}"

    def release(
        self, lease: int, decision: int, *, ok: bool, latency: float, tokens: int, cost: float
    ) -> None:
        with contextlib.suppress(PitError):
            self.pit.pool.release(lease, ok=ok, latency=latency, tokens=tokens, cost=cost)
        with contextlib.suppress(PitError):
            self.pit.arbitration.report(decision, ok=ok, cost=cost)
        self.pump()

    def pump(self) -> None:
        """Grant what the Arbitration Engine decides, until it has nothing grantable."""
        arb, pool = self.pit.arbitration, self.pit.pool
        while True:
            decision = arb.decide()
            if decision is None:
                return
            waiter = self._waiting.pop(decision.request, None)
            if waiter is None:  # a request of a run that died before it was granted
                with contextlib.suppress(PitError):
                    arb.report(decision.id, ok=False)
                continue
            fut, owner, estimate = waiter
            if fut.done():
                continue
            if not decision.granted:
                wanted = decision.model or decision.wanted
                if decision.reason == "budget":
                    fut.set_exception(OverBudgetError(self._over_budget(owner, wanted, estimate)))
                else:
                    why = f"the call was refused ({decision.reason})"
                    fut.set_exception(NodeError(why, ErrorKind.RESOURCE))
                continue
            model = decision.model or decision.wanted
            try:
                lease = pool.try_acquire(model, owner=owner, estimate=estimate)
            except PitError as e:
                with contextlib.suppress(PitError):
                    arb.report(decision.id, ok=False)
                fut.set_exception(NodeError(str(e), ErrorKind.RESOURCE))
                continue
            fut.set_result((int(lease), lease.model, decision.id))


# ------------------------------------------------------------------------------ runs


class _Sink:
    __slots__ = ("node_id", "run")

    def __init__(self, run: Run, node_id: str) -> None:
        self.run = run
        self.node_id = node_id

    def progress(self, fraction: float | None, message: str = "") -> None:
        if self.run.conductor._listeners:  # nobody to tell: not even built
            self.run._tell(
                NodeProgress(self.run.run_id, time.time(), self.node_id, fraction, message)
            )

    def token(self, text: str) -> None:
        if self.run.conductor._listeners:
            self.run._tell(NodeToken(self.run.run_id, time.time(), self.node_id, text))


@dataclass(frozen=True, slots=True)
class _NodePlan:
    """What a run needs to know of a node that does not change while the melody does not."""

    node: Node
    desc: NodeTypeDescription
    config: dict[str, Any]
    needs_model: bool
    incoming: tuple[Link, ...]
    outgoing: tuple[Link, ...]
    out_specs: tuple[tuple[str, PortType, str], ...]


@dataclass(frozen=True, slots=True)
class _Plan:
    """A validated melody, ready to run: made once per revision of the melody.

    A run reads only its plan, never the melody object: the board's melody may be edited
    while the run goes on (a node deleted, a link removed, the melody renamed), and the run
    must still be the one its record stores (breakpoints are the exception: see
    :meth:`Run._watch_breakpoints`).
    """

    name: str
    nodes: tuple[_NodePlan, ...]
    edges: tuple[tuple[str, tuple[tuple[str, str], ...]], ...]
    document: bytes


def _make_plan(melody: Melody, registry: NodeTypeRegistry) -> _Plan:
    nodes = []
    for node in melody.nodes.values():
        desc = registry[node.type_id]
        nodes.append(
            _NodePlan(
                node,
                desc,
                {**desc.default_config(), **node.config},
                desc.config_field("model") is not None and desc.source != "builtin",
                tuple(melody.incoming(node.id)),
                tuple(melody.outgoing(node.id)),
                tuple(
                    (p.name, p.type, f"{OUTPUT_PREFIX}{melody.name}/{node.id}/{p.name}")
                    for p in desc.outputs
                ),
            )
        )
    strongest: dict[tuple[str, str], DependencyKind] = {}
    for link in melody.links.values():
        pair = (link.source_node, link.target_node)
        old = strongest.get(pair)
        if old is None or _KIND_RANK[link.kind] > _KIND_RANK[old]:
            strongest[pair] = link.kind
    by_kind: dict[str, list[tuple[str, str]]] = {}
    for pair, kind in strongest.items():
        by_kind.setdefault(kind.value, []).append(pair)
    edges = tuple((k, tuple(v)) for k, v in by_kind.items())
    document = json.dumps(to_document(melody), ensure_ascii=False).encode()
    return _Plan(melody.name, tuple(nodes), edges, document)


@dataclass(slots=True)
class _NodeRun:
    """Mutable per-node state during a run."""

    node: Node
    desc: NodeTypeDescription
    report: NodeReport
    #: the node's config over its type's defaults
    config: dict[str, Any] = field(default_factory=dict)
    #: whether attempts need a model (Pool Manager lease, provider)
    needs_model: bool = False
    #: links into the node, and out of it
    incoming: tuple[Link, ...] = ()
    outgoing: tuple[Link, ...] = ()
    #: (port, port type, artifact name) of each output
    out_specs: tuple[tuple[str, PortType, str], ...] = ()
    #: pause before the node (the melody's breakpoint, followed while the run goes on)
    breakpoint: bool = False
    outputs: dict[str, Any] = field(default_factory=dict)
    output_ids: dict[str, int] = field(default_factory=dict)
    fallbacks_used: int = 0
    #: failed attempts in a row of the current model; the previous failure's kind and answer
    model_failures: int = 0
    previous_kind: ErrorKind | None = None
    last_strategy: Strategy | None = None
    traces: list[tuple[FailureContext, Decision, float, float]] = field(default_factory=list)
    #: left out of the run's event log: an in-process operator that succeeded at once, whose
    #: whole story (one span, its outputs) the DAG Tracker keeps
    unlogged: bool = False


class Run:
    """One execution of a melody; made by :meth:`Conductor.start` or :meth:`Conductor.resume`.

    Control it with :meth:`pause`, :meth:`resume`, :meth:`step` and :meth:`cancel`; ``await
    run.wait()`` for its :class:`RunResult`.
    """

    def __init__(
        self,
        conductor: Conductor,
        run_id: str,
        melody: Melody,
        options: RunOptions,
        *,
        resumed: bool,
    ) -> None:
        self.conductor = conductor
        self.run_id = run_id
        self.melody = melody
        #: what runs: the melody as it was now (validated by the caller, so a cache hit)
        self._plan = conductor._plan(melody)
        self._name = self._plan.name
        self.options = options
        self.state = RUN_RUNNING
        #: the run record as stored (melody artifact, options, start time, status)
        self.record: dict[str, Any] = {}
        self._resumed = resumed
        self._pit = conductor.pit
        self._dag = conductor.pit.dag
        self._store = conductor.pit.artifacts
        self._registry = conductor.registry
        self._executor = conductor.executor
        self._nodes: dict[str, _NodeRun] = {}
        self._gate = asyncio.Event()
        self._gate.set()
        self._stepping = False
        self._pause_next = False
        self._cancelled = False
        self._interrupted = False
        self._pending_events: list[RunEvent] = []
        #: what this run's event log keeps of this session (None: the conductor keeps none)
        self._log: list[RunEvent] | None = [] if conductor.keep_event_log else None
        self._uncommitted = 0
        self._spent = 0.0
        self._started = time.time()
        self._tasks: dict[str, asyncio.Task[None]] = {}
        # a node a finishing node task runs next (see _start_task), and whether one may be taken
        self._handoff: tuple[_NodeRun, dict[str, Any], NodeTask | None] | None = None
        self._handing_off = False
        self._limit = max(1, options.max_parallel)
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[RunResult] = asyncio.get_running_loop().create_task(
            self._main(), name=f"symphony-run-{run_id}"
        )
        self._unwatch: Callable[..., None] | None = None
        self._breakpoints_of = melody
        self.follow_breakpoints(melody)

    def follow_breakpoints(self, melody: Melody) -> None:
        """Take the breakpoints of ``melody``, now and as they are set or cleared on it.

        Every other edit waits for the next run (the run is its plan), but a breakpoint is how
        a user stops a run that is under way before a node, as in a debugger. By default the
        run follows the melody it was given; a resumed run, whose melody comes from its
        record, is pointed at the board that shows it (same node ids).
        """
        if self._unwatch is not None:
            self._unwatch()
        self._breakpoints_of = melody
        for nid, nr in self._nodes.items():  # already prepared: take the board's now
            node = melody.nodes.get(nid)
            if node is not None:
                nr.breakpoint = node.breakpoint

        def changed(event: BreakpointChanged) -> None:
            nr = self._nodes.get(event.node_id)
            if nr is not None:
                nr.breakpoint = event.enabled

        events = melody.events
        events.subscribe(changed, BreakpointChanged)

        def unwatch(_task: object = None) -> None:
            events.unsubscribe(changed, BreakpointChanged)

        self._unwatch = unwatch
        self._task.add_done_callback(unwatch)

    # ---------------------------------------------------------------- control

    def pause(self) -> None:
        """Start no further node until :meth:`resume` or :meth:`step` (running ones go on)."""
        if self.state == RUN_RUNNING:
            self._gate.clear()
            self._set_state(RUN_PAUSED)

    def resume(self) -> None:
        """Leave pause or step mode and run on."""
        self._stepping = False
        self._pause_next = False
        self.options = replace(self.options, step=False)
        if self.state == RUN_PAUSED:
            self._set_state(RUN_RUNNING)
        self._gate.set()

    def step(self) -> None:
        """Start exactly one more node, then pause again."""
        self._stepping = True
        if self.state == RUN_PAUSED:
            self._set_state(RUN_RUNNING)
        self._gate.set()

    def cancel(self, *, interrupted: bool = False) -> None:
        """Stop the run: running nodes are cancelled; ``interrupted`` leaves it resumable."""
        self._cancelled = True
        self._interrupted = interrupted
        self._gate.set()
        self._wakeup.set()
        for t in self._tasks.values():
            t.cancel()

    @property
    def done(self) -> bool:
        """Whether the run has ended."""
        return self._task.done()

    async def wait(self) -> RunResult:
        """Wait for the end of the run and return its result."""
        return await asyncio.shield(self._task)

    def reports(self) -> list[NodeReport]:
        """Return the node reports so far, in melody order."""
        return [n.report for n in self._nodes.values()]

    # ---------------------------------------------------------------- events

    def _wants(self, nr: _NodeRun) -> bool:
        """Whether events of ``nr`` are wanted: someone listens, or the log keeps them.

        When neither, they are not even built: on a chain of no-op operators building them
        would double the conductor's cost per node (P8).
        """
        return bool(self.conductor._listeners) or (self._log is not None and not nr.unlogged)

    def _emit(self, event: RunEvent, nr: _NodeRun | None = None) -> None:
        """Keep ``event`` in the log (unless ``nr`` runs unlogged) and tell the listeners.

        Only the kinds of :data:`~symphony.conductor.events.LOGGED` come here; tokens and
        progress go to :meth:`_tell` alone.
        """
        log = self._log
        if log is not None and (nr is None or not nr.unlogged):
            log.append(event)
        if self.conductor._listeners:
            self.conductor._emit(event)

    def _tell(self, event: RunEvent) -> None:
        if self.conductor._listeners:
            self.conductor._emit(event)

    def _announce(self, event: RunEvent, nr: _NodeRun) -> None:
        """Emit a success-related event; when durable, tell it after the next commit.

        The log keeps it at once, in the order it happened; only telling waits, so that no
        listener sees a success that a crash could still undo.
        """
        if self.options.durable:
            if self._log is not None and not nr.unlogged:
                self._log.append(event)
            self._pending_events.append(event)
        else:
            self._emit(event, nr)

    def _commit(self) -> None:
        if self._pending_events or self._uncommitted:
            if self.options.durable:
                self._pit.sync()
            self._uncommitted = 0
            events, self._pending_events = self._pending_events, []
            for e in events:
                self._tell(e)

    def _set_state(self, state: str, detail: str = "") -> None:
        self.state = state
        self._emit(RunStateChanged(self.run_id, time.time(), state, detail))

    def _node_state(self, nr: _NodeRun, state: str, detail: str = "") -> None:
        nr.report.state = state
        if not self._wants(nr):  # nobody to tell: skip building the event
            return
        event = NodeStateChanged(
            self.run_id, time.time(), nr.node.id, state, max(nr.report.attempts, 1),
            nr.report.model, detail,
        )  # fmt: skip
        if state in (SUCCEEDED, CACHED):
            self._announce(event, nr)
        else:
            self._commit()
            self._emit(event, nr)

    # ---------------------------------------------------------------- setup

    def _prepare(self) -> None:
        plan = self._plan
        bps = self._breakpoints_of.nodes
        for p in plan.nodes:
            nid = p.node.id
            self._nodes[nid] = _NodeRun(
                p.node, p.desc, NodeReport(nid, p.node.type_id), p.config, p.needs_model,
                p.incoming, p.outgoing, p.out_specs,
                breakpoint=getattr(bps.get(nid), "breakpoint", p.node.breakpoint),
            )  # fmt: skip
        if self._resumed:
            self._restore()
            return
        dag, run_id = self._dag, self.run_id
        dag.create_workflow(run_id)
        dag.add_nodes(run_id, list(self._nodes))
        for kind, pairs in plan.edges:
            dag.add_edges(run_id, pairs, kind)
        only = self.options.only
        if only is not None:
            needed, todo = set(), list(only)
            while todo:  # the chosen nodes and everything upstream of them
                nid = todo.pop()
                if nid not in needed:
                    needed.add(nid)
                    todo.extend(link.source_node for link in self._nodes[nid].incoming)
            for nid, nr in self._nodes.items():
                if nid not in needed and dag.state(run_id, nid) in ("pending", "ready"):
                    dag.transition(run_id, nid, "skipped")
                    nr.report.state = SKIPPED

    def _restore(self) -> None:
        """Pick a resumed run up from the DAG Tracker and the Artifact Store."""
        dag, store = self._dag, self._store
        if self.run_id not in dag:
            raise RunNotFoundError(f"run {self.run_id!r} has no workflow in this Pit")
        earlier = self._earlier_sessions()
        for nid, nr in self._nodes.items():
            info = dag.node(self.run_id, nid)
            if info.state == "succeeded":
                try:
                    for aid in info.artifacts:
                        a = store.info(aid)
                        port = a.name.rsplit("/", 1)[-1]
                        nr.output_ids[port] = aid
                        nr.outputs[port] = _decode(store.get(aid, actor=self.run_id), a.kind)
                except PitError as e:  # an output is gone or damaged: run the node again
                    _log.warning("run %s: node %s is run again: %s", self.run_id, nid, e)
                    nr.outputs.clear()
                    nr.output_ids.clear()
                    dag.reset(self.run_id, nid)
                    continue
                nr.report.artifacts = dict(nr.output_ids)
                nr.report.finished = info.finished_at
                nr.report.started = info.started_at
                # what it cost then and on which model, so that the resumed run's report tells
                # the node's cost right; its attempts stay this session's (none: not run again)
                _, nr.report.cost, model = earlier.get(nid, (0, 0.0, ""))
                nr.report.model = model or nr.report.model
                self._node_state(nr, SUCCEEDED, DONE_BEFORE_RESUME)
        # Work that was running, failed or cancelled when the run stopped is tried again
        # (``reset`` also re-arms everything downstream of it).
        for nid in list(self._nodes):
            if dag.state(self.run_id, nid) in ("running", "failed", "cancelled"):
                dag.reset(self.run_id, nid)
        for nid, nr in self._nodes.items():
            state = dag.state(self.run_id, nid)
            if state == "skipped":
                nr.report.state = SKIPPED

    def _earlier_sessions(self) -> dict[str, tuple[int, float, str]]:
        """Return per node the attempts, cost and last model of the sessions before this one.

        A resumed run's :class:`NodeReport` of a node done before keeps its cost and model;
        its ``attempts`` count this session's (``symphony runs RUN_ID`` adds them up).

        Read from the run's event log; a node it does not name (no log, a session cut short by
        ``kill -9``) is not there, and an unreadable log gives nothing (the run resumes anyway).
        """
        try:
            logged = read_events(self.conductor.pit, self.run_id)
        except (ValueError, PitError) as error:
            _log.warning("run %s: its event log is not readable: %s", self.run_id, error)
            return {}
        seen: dict[str, tuple[int, float, str]] = {}
        for event in logged:
            if isinstance(event, NodeStateChanged) and event.state == RUNNING:
                attempts, cost, model = seen.get(event.node_id, (0, 0.0, ""))
                seen[event.node_id] = (attempts + 1, cost, event.model or model)
            elif isinstance(event, NodeCost):
                attempts, cost, model = seen.get(event.node_id, (0, 0.0, ""))
                seen[event.node_id] = (attempts, cost + event.cost, model)
        return seen

    # ---------------------------------------------------------------- main loop

    async def _main(self) -> RunResult:
        status, detail = RUN_FAILED, ""
        try:
            self._prepare()
            self._set_state(RUN_RUNNING)
            await self._loop()
            self._sync_skips()
            if self._cancelled:
                status = RUN_INTERRUPTED if self._interrupted else RUN_CANCELLED
                detail = "stopped" if not self._interrupted else "interrupted; resumable"
                self._stopped_before_start()
            else:
                failed = [n.node.id for n in self._nodes.values() if n.report.state == FAILED]
                status = RUN_FAILED if failed else RUN_SUCCEEDED
                if failed:
                    detail = "failed: " + ", ".join(failed)
        except asyncio.CancelledError:
            status, detail = RUN_INTERRUPTED, "interrupted; resumable"
            self._commit()
            raise
        except (PitError, InvalidMelodyError, RunNotFoundError) as e:
            status, detail = RUN_FAILED, str(e)
            raise
        finally:
            await self._finish(status, detail)
        return self._result(status, detail)

    def _stopped_before_start(self) -> None:
        """Report the nodes a stopped run never started as cancelled, not run.

        Left alone, the node the run waited at would still read *paused* (on the board too)
        and the ones after it *pending*, as if the run could still get to them. The DAG
        Tracker keeps them pending or ready: a resume runs them.
        """
        for nr in self._nodes.values():
            if nr.report.state in ("pending", QUEUED, PAUSED):
                self._node_state(nr, CANCELLED, STOPPED_BEFORE_START)

    async def _loop(self) -> None:
        dag, run_id = self._dag, self.run_id
        while not self._cancelled:
            progressed = self._dispatch_now()
            if self._uncommitted >= _COMMIT_EVERY:
                self._commit()
            if progressed:
                continue
            ready = self._ready()
            if ready and len(self._tasks) < self._limit:
                # the next node waits at a pause, a step or a breakpoint
                nr = self._nodes[ready[0]]
                if await self._gate_open(nr) and not self._cancelled:
                    self._start_node(nr)
                continue
            if not self._tasks:
                if dag.ready(run_id):
                    continue
                return  # the end: _finish commits once for the last nodes and the record
            self._commit()
            self._wakeup.clear()
            await self._wakeup.wait()
        # cancelled: let running tasks finish their cancellation
        if self._tasks:
            await asyncio.gather(*self._tasks.values(), return_exceptions=True)

    def _ready(self) -> list[str]:
        ready = self._dag.ready(self.run_id)
        if not self._tasks:  # inline nodes only (or none running): nothing to leave out
            return ready
        return [n for n in ready if n not in self._tasks]

    def _dispatch_now(self) -> bool:
        """Start the ready nodes that need no pause, within capacity; return whether any."""
        progressed = False
        for nid in self._ready():
            if self._cancelled or len(self._tasks) >= self._limit:
                break
            nr = self._nodes[nid]
            if self._pause_next or self.options.step or nr.breakpoint or not self._gate.is_set():
                break  # the loop pauses there
            self._start_node(nr)
            progressed = True
            if self._stepping:  # step() on a running run: this was the one more node
                self._pause_next = True
        return progressed

    def _start_node(self, nr: _NodeRun) -> None:
        """Skip, serve from the cache, run inline, or start the task of one ready node."""
        inputs = self._gather(nr)
        if inputs is None or self._try_cache(nr, inputs):
            return  # skipped (a branch not taken) or cached
        if nr.needs_model:  # its model is resolved (and may be unknown) in its attempts
            self._start_task(nr, inputs, None)
            return
        task = self._task_for(nr, inputs, "")
        if self._executor.runs_inline(task):
            self._run_inline(nr, task)
        else:
            self._start_task(nr, inputs, task)

    async def _gate_open(self, nr: _NodeRun) -> bool:
        """Honour pause, step mode and breakpoints before starting ``nr``.

        Returns whether ``nr`` may start now (``False``: the run was stopped, or the node is no
        longer ready — something upstream changed while the run was paused).
        """
        stop = (
            self._pause_next
            or self.options.step
            or (self.options.breakpoints and nr.breakpoint)
            or not self._gate.is_set()
        )
        if stop:
            self._gate.clear()
            self._commit()
            why = "breakpoint" if nr.breakpoint else "step" if self._stepping else "paused"
            self._node_state(nr, PAUSED, why)
            if self.state != RUN_PAUSED:
                self._set_state(RUN_PAUSED, f"before {nr.node.id}")
            await self._gate.wait()
            if self._cancelled or self._dag.state(self.run_id, nr.node.id) != "ready":
                return False
        self._pause_next = self._stepping
        return True

    # ---------------------------------------------------------------- inputs

    def _gather(self, nr: _NodeRun) -> dict[str, Any] | None:
        """Return the node's inputs, or ``None`` after skipping or failing it.

        The node is skipped when a hard link's condition does not hold or its source did not
        produce the linked port (a branch not taken: ``op.quality_gate`` produces ``passed`` or
        ``failed``); it fails when a link's condition cannot be evaluated, whatever the link's
        kind: that is a mistake in the melody the user must see, not a branch.
        """
        inputs: dict[str, Any] = {}
        for link in nr.incoming:
            src = self._nodes[link.source_node]
            state = src.report.state
            has = link.source_port in src.outputs
            value = src.outputs.get(link.source_port)
            if link.condition is not None and state in (SUCCEEDED, CACHED, FAILED, SKIPPED):
                status = "succeeded" if state in (SUCCEEDED, CACHED) else state
                score = self._score(src, link.source_port)
                try:
                    holds = condition_holds(link.condition, value, score, status)
                except ValueError as e:
                    self._finish_failed(
                        nr, f"condition of link {link.id!r} cannot be evaluated: {e}"
                    )
                    return None
                if not holds:
                    if link.kind == DependencyKind.HARD:
                        self._skip(nr, f"condition of link {link.id!r} does not hold")
                        return None
                    continue
            if not has:
                if link.kind == DependencyKind.HARD and state in (SUCCEEDED, CACHED):
                    self._skip(
                        nr,
                        f"branch not taken: {link.source_node!r} produced no "
                        f"{link.source_port!r} output (link {link.id!r})",
                    )
                    return None
                continue
            port = nr.desc.input(link.target_port)
            if port is not None and port.multiple:
                inputs.setdefault(link.target_port, []).append(value)
            else:
                inputs[link.target_port] = value
        return inputs

    def _score(self, nr: _NodeRun, port: str) -> float | None:
        """Return the quality score a link condition reads: the output's semantic quality.

        Not its structure score, which is 1.0 for any well-formed value and would take the
        high branch of every ``score >= 0.8`` gate; ``None`` until a node scores its output
        (see :func:`_semantic_score`).
        """
        aid = nr.output_ids.get(port)
        if aid is None:
            return None
        score = self._store.quality(aid).semantics
        # The store keeps single precision: 0.7 comes back as 0.69999998, which would fail
        # ``score >= 0.7``. Six decimals give back the number that was set.
        return None if score is None else round(score, 6)

    def _skip(self, nr: _NodeRun, why: str) -> None:
        self._dag.transition(self.run_id, nr.node.id, "skipped")
        self._node_state(nr, SKIPPED, why)
        self._sync_skips()

    def _sync_skips(self) -> None:
        """Report nodes the DAG Tracker skipped on its own (cascades, graceful skips)."""
        for nid, state in zip(
            self._dag.nodes(self.run_id), self._dag.states(self.run_id), strict=True
        ):
            nr = self._nodes[nid]
            if state == "skipped" and nr.report.state not in (SKIPPED, CANCELLED):
                if self._cancelled:
                    # what hangs on a node the stop cut short was not run, not skipped: a
                    # resume runs it
                    self._node_state(nr, CANCELLED, STOPPED_BEFORE_START)
                else:
                    self._node_state(nr, SKIPPED, self._why_skipped(nr))

    def _why_skipped(self, nr: _NodeRun) -> str:
        """Say why the DAG Tracker skipped ``nr``: which upstream node, or that none needed it.

        A hard link from a node that did not succeed cascades the skip (pit.md's table). With
        every such source fine, the skip is the graceful one: each dependant reaches ``nr``
        through an optional link only and started without waiting for it.
        """
        for link in nr.incoming:
            if link.kind is not DependencyKind.HARD:
                continue
            state = self._dag.state(self.run_id, link.source_node)
            if state in ("failed", "skipped", "cancelled"):
                verb = "failed" if state == "failed" else f"was {state}"
                return f"upstream node {link.source_node!r} {verb}"
        if nr.outgoing and all(link.kind is DependencyKind.OPTIONAL for link in nr.outgoing):
            users = ", ".join(sorted({repr(link.target_node) for link in nr.outgoing}))
            return (
                f"not needed: {users} took its optional input without waiting for it, "
                "so it was not run"
            )
        return "an upstream node did not succeed"

    # ---------------------------------------------------------------- tasks

    def _task_for(self, nr: _NodeRun, inputs: Mapping[str, Any], model: str) -> NodeTask:
        desc = nr.desc
        config = nr.config
        provider = None
        if nr.needs_model:
            config = dict(config)
            spec = self.conductor.catalog.resolve(model)
            model = spec.id
            config["model"] = model
            provider = spec.provider
        else:
            model = ""
        timeout = nr.node.policy.timeout_s
        if timeout is None and desc.source != "builtin":
            timeout = self.options.default_timeout
        return NodeTask(
            self.run_id, nr.node.id, desc.type_id, desc.version, desc.source, desc.method or
            desc.type_id, inputs, config, model, provider, nr.report.attempts + 1, timeout,
        )  # fmt: skip

    def _try_cache(self, nr: _NodeRun, inputs: Mapping[str, Any]) -> bool:
        if not self.options.use_cache or not nr.desc.cacheable or nr.node.id in self.options.force:
            return False
        model = ""
        config = nr.config
        if nr.needs_model:
            try:
                model = self.conductor.catalog.resolve(nr.node.config.get("model", "")).id
            except KeyError:
                return False
            config = {**config, "model": model}
        key = cache_key(nr.desc, config, inputs, model)
        store = self._store
        try:
            index = json.loads(store.get(CACHE_PREFIX + key, actor=self.run_id))
            ids = {str(p): int(a) for p, a in index["outputs"].items()}
            values = {}
            for port, aid in ids.items():
                info = store.info(aid)
                if info.deleted or info.archived:
                    return False
                values[port] = _decode(store.get(aid, actor=self.run_id), info.kind)
        except (PitError, KeyError, TypeError, ValueError):
            return False
        now = time.time()
        nr.report.cached = True
        nr.report.model = model
        nr.report.started = nr.report.finished = now
        dag, run_id, nid = self._dag, self.run_id, nr.node.id
        dag.transition(run_id, nid, "running")
        for port, aid in ids.items():
            dag.bind_artifact(run_id, nid, aid)
            self._announce(ArtifactStored(run_id, now, nid, port, aid, "", None, cached=True), nr)
        nr.outputs = values
        nr.output_ids = ids
        nr.report.artifacts = dict(ids)
        dag.transition(run_id, nid, "succeeded", duration=0.0)
        self._uncommitted += 1
        self._node_state(nr, CACHED)
        return True

    def _store_outputs(self, nr: _NodeRun, result: NodeResult, key: str | None) -> None:
        store, dag, run_id, nid = self._store, self._dag, self.run_id, nr.node.id
        inputs = self._input_ids(nr)
        produced = (run_id, nid, result.model or nr.desc.type_id)
        now = time.time()
        ids: dict[str, int] = {}
        outputs = result.outputs
        observed = self._wants(nr)
        # A node that scores its own work (a reviewer's ``score``) gives every output it made
        # that semantic quality: what link conditions read as ``score``.
        semantics = _semantic_score(outputs[SCORE_PORT]) if SCORE_PORT in outputs else None
        if semantics is None and outputs.get(SCORE_PORT) is not None:
            # links reading ``score`` will say "null": the log tells what the node gave instead
            _log.warning("run %s: node %s gave no usable score: %s", run_id, nid,
                         _not_a_score(outputs[SCORE_PORT]))  # fmt: skip
        for port, port_type, name in nr.out_specs:
            if port not in outputs:
                continue
            value = outputs[port]
            data, kind = _encode(value, port_type)
            aid = store.put(name, data, kind=kind, produced_by=produced, inputs=inputs,
                            actor=run_id)  # fmt: skip
            if semantics is not None:
                store.set_quality(aid, semantics=semantics)
            ids[port] = aid
            nr.outputs[port] = value
            dag.bind_artifact(run_id, nid, aid)
            if observed:
                # the score is for whoever watches; the log leaves it out (the store keeps it)
                score = self._score_of(aid) if self.conductor._listeners else None
                self._announce(ArtifactStored(run_id, now, nid, port, aid, kind, score), nr)
        nr.output_ids = ids
        nr.report.artifacts = dict(ids)
        if key is not None:
            store.put(CACHE_PREFIX + key, _canonical({"outputs": ids}), kind="json",
                      actor=run_id)  # fmt: skip

    def _score_of(self, aid: int) -> float | None:
        q = self._store.quality(aid)
        return q.semantics if q.semantics is not None else q.structure

    def _input_ids(self, nr: _NodeRun) -> list[int]:
        ids: list[int] = []
        for link in nr.incoming:
            aid = self._nodes[link.source_node].output_ids.get(link.source_port)
            if aid is not None and aid not in ids:
                ids.append(aid)
        return ids

    def _succeed(self, nr: _NodeRun, result: NodeResult, task: NodeTask, seconds: float) -> None:
        key = None
        if self.options.use_cache and nr.desc.cacheable:
            key = cache_key(nr.desc, task.config, task.inputs, task.model)
        self._store_outputs(nr, result, key)
        nr.report.finished = time.time()
        nr.report.model = result.model or task.model
        nr.report.cost += result.cost
        self._spent += result.cost
        self._dag.transition(self.run_id, nr.node.id, "succeeded", duration=seconds)
        self._uncommitted += 1
        if self._wants(nr) and (result.cost or result.tokens or nr.desc.source != "builtin"):
            self._announce(
                NodeCost(
                    self.run_id,
                    time.time(),
                    nr.node.id,
                    nr.report.attempts,
                    seconds,
                    result.cost,
                    result.tokens,
                    result.memory_bytes,
                ),  # fmt: skip
                nr,
            )
        self._node_state(nr, SUCCEEDED)

    def _run_inline(self, nr: _NodeRun, task: NodeTask) -> None:
        """Run a built-in operator now.

        Operators are deterministic, so a failure is final unless the policy skips the node.
        """
        nid = nr.node.id
        nr.report.attempts += 1
        nr.report.started = time.time()
        self._dag.transition(self.run_id, nid, "running")
        nr.unlogged = True
        t0 = time.perf_counter()
        try:
            result = self._executor.run_inline(task)
        except NodeError as e:
            nr.unlogged = False
            self._commit()
            self._emit(NodeStateChanged(self.run_id, nr.report.started, nid, RUNNING, 1), nr)
            self._inline_failure(nr, e)
            return
        if self._wants(nr):
            self._announce(NodeStateChanged(self.run_id, nr.report.started, nid, RUNNING, 1), nr)
        self._succeed(nr, result, task, time.perf_counter() - t0)

    def _inline_failure(self, nr: _NodeRun, error: NodeError) -> None:
        # An operator is deterministic: the same inputs fail the same way, so retrying,
        # switching model or rebuilding cannot help; only skip or abort are on the table.
        nr.model_failures += 1
        ctx = replace(
            self._context(nr, error), max_retries=0, fallbacks_left=0, can_reconstruct=False
        )
        decision = self._decide(nr, ctx, error, inline=True)
        if decision.strategy is Strategy.SKIP:
            self._finish_skipped(nr, str(error))
        else:
            self._finish_failed(nr, str(error))
        nr.traces.append((ctx, decision, self._spent, time.monotonic()))
        self._close_traces(nr, success=decision.strategy is Strategy.SKIP)

    def _start_task(self, nr: _NodeRun, inputs: dict[str, Any], first: NodeTask | None) -> None:
        if self._wants(nr):
            self._emit(NodeStateChanged(self.run_id, time.time(), nr.node.id, QUEUED, 1), nr)
        nr.report.state = QUEUED
        task: asyncio.Task[None] | None
        if self._handing_off:
            # a node task is finishing (this is its _node_done): it runs this node next, in the
            # same step — no new task, and no event-loop turn before the node's request goes out
            self._handing_off = False
            self._handoff = (nr, inputs, first)
            task = asyncio.current_task()
            assert task is not None
            task.set_name(f"symphony-node-{nr.node.id}")
        else:
            task = asyncio.get_running_loop().create_task(
                self._node_task(nr, inputs, first), name=f"symphony-node-{nr.node.id}"
            )
        self._tasks[nr.node.id] = task
        self._dag.transition(self.run_id, nr.node.id, "running")

    async def _node_task(
        self, nr: _NodeRun, inputs: dict[str, Any], first: NodeTask | None
    ) -> None:
        """Run a node, then each node handed to this task as it finished (see _start_task)."""
        await self._attempts(nr, inputs, first)
        while self._handoff is not None:
            (nr, inputs, first), self._handoff = self._handoff, None
            await self._attempts(nr, inputs, first)

    async def _attempts(self, nr: _NodeRun, inputs: dict[str, Any], first: NodeTask | None) -> None:
        """Run one node through its attempts and recoveries (``first``: its first task, if made)."""
        nid = nr.node.id
        model = str(nr.node.config.get("model", "")) if first is None else ""
        fallbacks: list[str] | None = None  # read at the first failure
        ended = True  # False while a cancellation (or an interrupt) goes through
        try:
            while True:
                error: NodeError | None
                task: NodeTask | None
                try:
                    task, first = first or self._task_for(nr, inputs, model), None
                except KeyError as e:  # unknown model
                    error = NodeError(str(e.args[0]), ErrorKind.INVALID_INPUT)
                    task = None
                else:
                    error = None
                if task is not None:
                    nr.report.attempts += 1
                    if nr.report.started is None:
                        nr.report.started = time.time()
                    try:
                        result, seconds = await self._attempt(nr, task)
                    except NodeError as e:
                        error = e
                    else:
                        self._succeed(nr, result, task, seconds)
                        self._commit()
                        self._close_traces(nr, success=True)
                        return
                assert error is not None
                nr.model_failures += 1
                if fallbacks is None:
                    fallbacks = list(nr.node.policy.fallback_models)
                ctx = self._context(nr, error, fallbacks=len(fallbacks) - nr.fallbacks_used)
                if isinstance(error, OverBudgetError):
                    ctx = replace(ctx, max_retries=0, can_reconstruct=False)
                elif error.code in _SAME_ANSWER_CODES:
                    ctx = replace(ctx, max_retries=0)
                decision = self._decide(nr, ctx, error)
                nr.traces.append((ctx, decision, self._spent, time.monotonic()))
                s = decision.strategy
                nr.previous_kind, nr.last_strategy = error.kind, s
                if s is Strategy.RETRY:
                    await asyncio.sleep(self._backoff(nr.report.attempts))
                    continue
                if s is Strategy.FALLBACK and nr.fallbacks_used < len(fallbacks):
                    model = fallbacks[nr.fallbacks_used]
                    nr.fallbacks_used += 1
                    nr.model_failures = 0  # a new model starts a new count
                    continue
                if s is Strategy.RECONSTRUCT and await self._reconstruct(nr):
                    self._close_traces(nr, success=True)
                    return
                if s is Strategy.SKIP:
                    self._finish_skipped(nr, str(error))
                    self._close_traces(nr, success=True)
                    return
                self._finish_failed(nr, str(error))
                self._close_traces(nr, success=False)
                return
        except asyncio.CancelledError:
            ended = False
            if self._dag.state(self.run_id, nid) == "running":
                self._dag.transition(self.run_id, nid, "cancelled")
            nr.report.finished = time.time()
            self._node_state(nr, CANCELLED, "the run was stopped")
            raise
        except Exception as e:  # a bug or a closed Pit: the node fails, the run reports it
            _log.exception("run %s: node %s failed inside the conductor", self.run_id, nid)
            nr.report.state = FAILED
            nr.report.error = f"internal error: {type(e).__name__}: {e}"
            with contextlib.suppress(Exception):
                self._finish_failed(nr, nr.report.error)
        except BaseException:
            ended = False
            raise
        finally:
            self._node_done(nid, hand_off=ended)

    def _node_done(self, nid: str, *, hand_off: bool) -> None:
        """Start what a finished node made ready, in this loop turn.

        The main loop is woken only when it has something to decide (nothing left running,
        the next node waits at a pause or breakpoint, the run was stopped, commits are due):
        under qasync every loop turn is a Qt timer event, and waking the loop for each node
        would cost two more. With ``hand_off`` (the node's task ends normally), the first node
        this starts as a task runs on in the finishing task instead of a new one.
        """
        self._tasks.pop(nid, None)
        if self._cancelled:
            self._wakeup.set()
            return
        self._handing_off = hand_off
        try:
            self._dispatch_now()
        except Exception:  # e.g. the Pit closed under the run: the main loop reports it
            self._wakeup.set()
            raise
        finally:
            self._handing_off = False
        if (
            not self._tasks
            or self._uncommitted >= _COMMIT_EVERY
            or (self._ready() and len(self._tasks) < self._limit)
        ):
            self._wakeup.set()

    async def _attempt(self, nr: _NodeRun, task: NodeTask) -> tuple[NodeResult, float]:
        nid = nr.node.id
        lease = None
        if nr.needs_model:
            spec = self.conductor.catalog.resolve(task.model)
            lease = await self.conductor._broker.acquire(
                self.run_id, spec.id, _PRIORITY[nr.node.policy.importance],
                spec.price_per_call, self.options.budget,
            )  # fmt: skip
            if lease[1] != spec.id:  # the pool routed around a down model
                task = self._task_for(nr, task.inputs, lease[1])
        nr.report.model = task.model
        if self._wants(nr):
            self._emit(NodeStateChanged(self.run_id, time.time(), nid, RUNNING, task.attempt,
                                        task.model), nr)  # fmt: skip
        t0 = time.perf_counter()
        ok, tokens, cost = False, 0, 0.0
        try:
            # The executor enforces task.timeout (the extension host runs each request's
            # deadline); an asyncio.wait_for here would cost a task and a timer per attempt.
            result = await self._executor.run(task, _Sink(self, nid))
            ok, tokens, cost = True, result.tokens, result.cost
            if not cost and lease is not None:
                spec = self.conductor.catalog.resolve(task.model)
                # providers bill the prompt's tokens as well as the generated ones
                billed = tokens + _prompt_tokens(result)
                cost = spec.price_per_call + billed * spec.price_per_token
                result = replace(result, cost=cost)
            return result, time.perf_counter() - t0
        finally:
            seconds = time.perf_counter() - t0
            if lease is not None:
                self.conductor._broker.release(
                    lease[0], lease[2], ok=ok, latency=seconds, tokens=tokens, cost=cost
                )
            if not ok:
                self._emit(NodeCost(self.run_id, time.time(), nid, task.attempt, seconds), nr)

    def _backoff(self, attempt: int) -> float:
        base = self.options.retry_backoff
        if base <= 0:
            return 0.0
        delay: float = min(30.0, base * 2.0 ** max(0, attempt - 1))
        return delay * random.uniform(0.8, 1.2)  # noqa: S311 - jitter, not security

    # ---------------------------------------------------------------- recovery

    def _context(self, nr: _NodeRun, error: NodeError, fallbacks: int = 0) -> FailureContext:
        budget = self.options.budget
        spent = self._spent + nr.report.cost

        def frac(cost: float) -> float:
            return 0.0 if not budget else min(1.0, cost / budget)

        price_now = price_fb = 0.0
        if nr.needs_model:
            with contextlib.suppress(KeyError):
                price_now = self.conductor.catalog.resolve(nr.report.model).price_per_call
            fbs = nr.node.policy.fallback_models
            if nr.fallbacks_used < len(fbs):
                with contextlib.suppress(KeyError):
                    price_fb = self.conductor.catalog.resolve(fbs[nr.fallbacks_used]).price_per_call
        deadline = self.options.deadline
        elapsed = time.time() - self._started
        return FailureContext(
            importance=_IMPORTANCE[nr.node.policy.importance],
            error_kind=error.kind,
            attempt=max(1, nr.report.attempts),
            max_retries=nr.node.policy.max_retries,
            fallbacks_left=max(0, fallbacks),
            can_reconstruct=self._reconstructor(nr) is not None,
            skippable=nr.node.policy.skippable,
            budget_left=1.0 if not budget else max(0.0, 1.0 - spent / budget),
            time_left=1.0 if not deadline else max(0.0, 1.0 - elapsed / deadline),
            risk_tolerance=self.options.risk_tolerance,
            cost_retry=frac(price_now),
            cost_fallback=frac(price_fb),
            cost_reconstruct=frac(price_now),
            downstream=len(nr.outgoing),
            model_failures=max(1, nr.model_failures),
            previous_kind=nr.previous_kind,
            last_strategy=(
                nr.last_strategy
                if nr.last_strategy in (Strategy.RETRY, Strategy.FALLBACK, Strategy.RECONSTRUCT)
                else None
            ),
            cost_rest=frac(self._cost_of_rest()),
            inputs_skipped=any(
                self._nodes[link.source_node].report.state == SKIPPED for link in nr.incoming
            ),
        )

    def _cost_of_rest(self) -> float:
        """Return the expected cost of the nodes not started yet (each once, at its price)."""
        total = 0.0
        catalog = self.conductor.catalog
        for other in self._nodes.values():
            if (
                other.needs_model
                and other.report.started is None
                and other.report.state
                in (
                    "pending",
                    QUEUED,
                )
            ):
                with contextlib.suppress(KeyError):
                    total += catalog.resolve(str(other.node.config.get("model", ""))).price_per_call
        return total

    def _decide(
        self, nr: _NodeRun, ctx: FailureContext, error: NodeError, *, inline: bool = False
    ) -> Decision:
        decision = self.conductor.policy_for_run().decide(ctx)
        if inline and decision.strategy is Strategy.ABORT:
            # The policy saw max_retries=0 and would say "no retries left" of a node whose
            # policy allows retries: say why an operator is never retried instead.
            decision = replace(decision, reason=_inline_abort_reason(ctx))
        chosen = RecoveryChosen(
            self.run_id,
            time.time(),
            nr.node.id,
            str(error),
            error.kind.value,
            decision.strategy.value,
            decision.reason,
            ctx.attempt,
        )
        # policies start their reason with the strategy ("retry: …"): say it once
        nr.report.recoveries.append(f"{chosen.strategy}: {chosen.why}")
        self._commit()
        self._emit(chosen, nr)
        return decision

    def _reconstructor(self, nr: _NodeRun) -> tuple[_NodeRun, dict[str, int]] | None:
        """Find a dependant whose type can rebuild its inputs and whose outputs exist.

        Returns the dependant and its newest stored outputs (from an earlier run of this
        melody), or ``None``.
        """
        if getattr(self._executor, "reconstruct", None) is None:
            return None  # this executor cannot ask a type to rebuild its inputs
        for link in nr.outgoing:
            d = self._nodes[link.target_node]
            if not d.desc.reverse_reconstruction:
                continue
            found: dict[str, int] = {}
            for spec in d.desc.outputs:
                name = f"{OUTPUT_PREFIX}{self._name}/{d.node.id}/{spec.name}"
                with contextlib.suppress(PitError):
                    found[spec.name] = self._store.resolve(name)
            if found:
                return d, found
        return None

    async def _reconstruct(self, nr: _NodeRun) -> bool:
        """Rebuild ``nr``'s outputs from a dependant's stored outputs (reverse reconstruction)."""
        found = self._reconstructor(nr)
        if found is None:
            return False
        d, ids = found
        outputs = {}
        for port, aid in ids.items():
            outputs[port] = _decode(self._store.get(aid, actor=self.run_id),
                                    self._store.info(aid).kind)  # fmt: skip
        task = self._task_for(d, {}, str(d.node.config.get("model", "")))
        reconstruct = getattr(self._executor, "reconstruct", None)
        if reconstruct is None:
            return False
        try:
            rebuilt = await reconstruct(task, outputs, task.timeout)
        except NodeError as e:
            _log.warning("run %s: reverse reconstruction of %s failed: %s", self.run_id,
                         nr.node.id, e)  # fmt: skip
            return False
        # The dependant's inputs fed from ``nr`` are ``nr``'s outputs.
        result: dict[str, Any] = {}
        for link in nr.outgoing:
            if link.target_node == d.node.id and link.target_port in rebuilt:
                result[link.source_port] = rebuilt[link.target_port]
        if not result:
            return False
        store = self._store
        now = time.time()
        ids_out: dict[str, int] = {}
        for spec in nr.desc.outputs:
            if spec.name not in result:
                continue
            data, kind = _encode(result[spec.name], spec.type)
            name = f"{OUTPUT_PREFIX}{self._name}/{nr.node.id}/{spec.name}"
            aid = store.put(
                name,
                data,
                kind=kind,
                inputs=list(ids.values()),
                actor=self.run_id,
                produced_by=(self.run_id, nr.node.id, "reverse:" + d.desc.type_id),
            )
            ids_out[spec.name] = aid
            nr.outputs[spec.name] = result[spec.name]
            self._dag.bind_artifact(self.run_id, nr.node.id, aid)
            self._announce(ArtifactStored(self.run_id, now, nr.node.id, spec.name, aid, kind), nr)
        nr.output_ids = ids_out
        nr.report.artifacts = dict(ids_out)
        nr.report.finished = now
        self._dag.transition(self.run_id, nr.node.id, "succeeded")
        self._uncommitted += 1
        self._node_state(nr, SUCCEEDED, f"reconstructed from {d.node.id}")
        self._commit()
        return True

    def _finish_failed(self, nr: _NodeRun, error: str) -> None:
        dag, nid = self._dag, nr.node.id
        if dag.state(self.run_id, nid) == "ready":
            dag.transition(self.run_id, nid, "running")
        dag.transition(self.run_id, nid, "failed")
        nr.report.finished = time.time()
        nr.report.error = error
        self._node_state(nr, FAILED, error)
        self._sync_skips()

    def _finish_skipped(self, nr: _NodeRun, error: str) -> None:
        """Skip a failed node gracefully, keeping the error for review.

        The DAG records a started node as cancelled (its hard dependants are skipped).
        """
        dag, nid = self._dag, nr.node.id
        if dag.state(self.run_id, nid) == "running":
            dag.transition(self.run_id, nid, "cancelled")
        else:
            dag.transition(self.run_id, nid, "skipped")
        nr.report.finished = time.time()
        nr.report.error = error
        self._node_state(nr, SKIPPED, f"skipped after: {error}")
        self._sync_skips()

    def _close_traces(self, nr: _NodeRun, *, success: bool) -> None:
        if not nr.traces:  # no failure at this node: nothing to close
            return
        now = time.monotonic()
        spent = self._spent
        closed = [(ctx, d, spent - s0, now - t0) for ctx, d, s0, t0 in nr.traces]
        self.conductor._traces.setdefault(self.run_id, []).extend(
            Trace(ctx, d.strategy, success, cost, seconds) for ctx, d, cost, seconds in closed
        )
        nr.traces.clear()

    # ---------------------------------------------------------------- end

    async def _finish(self, status: str, detail: str) -> None:
        for nr in self._nodes.values():
            if nr.traces:
                self._close_traces(nr, success=False)
        final = RunStateChanged(self.run_id, time.time(), status, detail)
        with contextlib.suppress(PitError):
            self.conductor._write_traces(self.run_id)
            self.conductor._write_log(self, final)
            self.conductor._write_record(self, status, detail)
            if status in (RUN_SUCCEEDED, RUN_FAILED):
                with contextlib.suppress(PitError):
                    self._store.record_run_outcome(self.run_id, status == RUN_SUCCEEDED)
        # One commit (one fdatasync when durable) covers the last nodes, the traces, the
        # record and the outcome; the final events go out after it.
        self._uncommitted += 1
        with contextlib.suppress(PitError):
            self._commit()
        if self.conductor.runs.get(self.run_id) is self:
            # an ended run lives on in the Pit (record(), resume()); holding it here would keep
            # every run's node states for the life of the conductor
            del self.conductor.runs[self.run_id]
        self.state = status
        self.conductor._emit(final)  # the very event the log ends with
        # after the end is announced: a prune (rarely, a few ms) need not delay it
        self.conductor._run_ended(self.run_id)

    def _result(self, status: str, detail: str) -> RunResult:
        outputs: dict[str, Any] = {}
        sinks = [nid for nid, nr in self._nodes.items() if not nr.outgoing]
        for nid in sinks:
            for port, value in self._nodes[nid].outputs.items():
                outputs[f"{nid}.{port}"] = value
        return RunResult(self.run_id, status, self.reports(), outputs, detail)


# ------------------------------------------------------------------------------ conductor


class Conductor:
    """Runs melodies over one Pit.

    Parameters
    ----------
    pit
        The open Pit (persistent for resumable runs).
    registry
        Node types (built-ins plus the extensions' types).
    executor
        Does the work (default: :class:`LocalExecutor` without extensions).
    catalog
        Models nodes may use.
    policy
        Recovery policy (default: the trained policy, loaded on the first failure).
    keep_runs
        How many ended runs keep their progress (their DAG Tracker workflows): once the Pit
        holds ``keep_runs`` plus an eighth (at least 8) more, an ended run prunes it back to the
        newest ``keep_runs`` (:meth:`prune_runs`). ``None`` keeps every run's progress.
    keep_event_log
        Store each run's events (``run.events/<run_id>``: node states per attempt, recoveries,
        costs, outputs) so that a past run's timeline can be drawn as it went, also once its
        progress is pruned (:func:`symphony.conductor.history.read_events`). It costs about
        2 µs per node (docs/benchmarks.md, P8).

    Raises
    ------
    ValueError
        If ``keep_runs`` is not a positive whole number or ``None``.
    """

    def __init__(
        self,
        pit: Pit,
        registry: NodeTypeRegistry,
        executor: Executor | None = None,
        *,
        catalog: ModelCatalog | None = None,
        policy: Policy | None = None,
        keep_runs: int | None = DEFAULT_KEEP_RUNS,
        keep_event_log: bool = True,
    ) -> None:
        if keep_runs is not None and (
            isinstance(keep_runs, bool) or not isinstance(keep_runs, int) or keep_runs < 1
        ):
            raise ValueError(f"keep_runs must be a whole number ≥ 1 or None, not {keep_runs!r}")
        self.keep_runs = keep_runs
        self.keep_event_log = keep_event_log
        self.pit = pit
        self.registry = registry
        self.executor: Executor = executor or LocalExecutor(registry)
        self.catalog = catalog or ModelCatalog()
        self._policy = policy
        self._listeners: list[Callable[[RunEvent], None]] = []
        self._broker = _Broker(pit, self.catalog)
        self._traces: dict[str, list[Trace]] = {}
        self._plans: weakref.WeakKeyDictionary[Melody, _Plan] = weakref.WeakKeyDictionary()
        registry.subscribe(lambda _e: self._plans.clear())
        #: the runs in progress by id (an ended one is dropped: its record stays in the Pit)
        self.runs: dict[str, Run] = {}
        #: ended runs with progress in the Pit, least recently active first (see _ranked_runs;
        #: None until the first prune ranks them)
        self._history: dict[str, None] | None = None
        #: workflows in the DAG Tracker that no run record names
        self._foreign: set[str] = set()

    # ---------------------------------------------------------------- events

    def subscribe(self, listener: Callable[[RunEvent], None]) -> None:
        """Call ``listener`` with every event of every run, in order."""
        self._listeners.append(listener)

    def unsubscribe(self, listener: Callable[[RunEvent], None]) -> None:
        """Stop calling ``listener``."""
        with contextlib.suppress(ValueError):
            self._listeners.remove(listener)

    def _emit(self, event: RunEvent) -> None:
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:
                _log.exception("run event listener failed on %r", event)

    # ---------------------------------------------------------------- policy

    def policy_for_run(self) -> Policy:
        """Return the recovery policy, loading the trained one on first use."""
        if self._policy is None:
            from symphony.conductor.policy import HEURISTICS, load_policy

            try:
                self._policy = load_policy()
            except Exception as e:  # noqa: BLE001 - any load failure falls back, loudly
                _log.error("the trained recovery policy could not be loaded (%s); "
                           "using the retry-3-then-fail heuristic", e)  # fmt: skip
                self._policy = HEURISTICS["retry-3-then-fail"]
        return self._policy

    # ---------------------------------------------------------------- runs

    def check(self, melody: Melody) -> None:
        """Raise :class:`InvalidMelodyError` if ``melody`` cannot run (naming every problem)."""
        plan = self._plan(melody)
        problems = self._model_problems(p.node for p in plan.nodes if p.needs_model)
        if problems:
            raise InvalidMelodyError(
                f"melody {melody.name!r} cannot run: " + "; ".join(problems), problems
            )

    def _model_problems(self, nodes: Iterable[Node]) -> list[str]:
        problems = []
        for node in nodes:
            for m in (str(node.config.get("model", "")), *node.policy.fallback_models):
                problem = self.catalog.problem(m)
                if problem is not None:
                    problems.append(f"node {node.id!r}: {problem}")
        return problems

    def _plan(self, melody: Melody) -> _Plan:
        """Validate ``melody`` and plan it, once per revision (edits drop the plan)."""
        plan = self._plans.get(melody)
        if plan is not None:
            return plan
        issues = [i for i in validate(melody, self.registry) if i.severity is Severity.ERROR]
        if issues:
            problems = [str(i) for i in issues]
            problems += self._model_problems(
                n
                for n in melody.nodes.values()
                if (d := self.registry.get(n.type_id)) is not None
                and d.source != "builtin"
                and d.config_field("model") is not None
            )
            raise InvalidMelodyError(
                f"melody {melody.name!r} cannot run: " + "; ".join(problems), problems
            )
        plan = _make_plan(melody, self.registry)
        self._plans[melody] = plan
        plans = self._plans
        ref = weakref.ref(melody)

        def changed(_event: object) -> None:
            m = ref()
            if m is not None and plans.pop(m, None) is not None:
                m.events.unsubscribe(changed)

        melody.events.subscribe(changed)
        return plan

    def start(
        self,
        melody: Melody,
        options: RunOptions | None = None,
        *,
        run_id: str | None = None,
        source: str | None = None,
        workspace: str | os.PathLike[str] | None = None,
    ) -> Run:
        """Validate ``melody`` and start running it; return its :class:`Run`.

        Must be called with the asyncio loop running. ``source`` is the file the melody was
        opened from, if any: the run record keeps it, so a resume can open that file again.
        ``workspace`` is the folder the extensions resolve the melody's paths against (the
        File Explorer's): the record keeps it, made absolute, so that a resume reads and writes
        the same files wherever it is started from (``symphony run --resume``).

        Raises
        ------
        InvalidMelodyError
            If the melody does not validate (naming every problem).
        """
        self.check(melody)
        options = options or RunOptions()
        unknown = sorted((options.only or frozenset()) - melody.nodes.keys())
        if unknown:
            raise InvalidMelodyError(f"no node {unknown[0]!r} in melody {melody.name!r}")
        run_id = run_id or new_run_id()
        record = {
            "melody": self._store_melody(melody),
            "options": options.to_json(),
            "started": time.time(),
            "status": RUN_RUNNING,
        }
        if source:
            record["source"] = source
        if workspace:
            record["workspace"] = os.path.abspath(workspace)
        self.pit.artifacts.put(RUN_PREFIX + run_id, _canonical(record), kind="json",
                               actor=run_id)  # fmt: skip
        # Not durable yet on purpose: the first commit (before anything is announced) syncs it.
        run = Run(self, run_id, melody, options, resumed=False)
        run.record = record
        self.runs[run_id] = run
        return run

    async def run(
        self, melody: Melody, options: RunOptions | None = None, *, run_id: str | None = None
    ) -> RunResult:
        """Run ``melody`` to its end and return the result."""
        return await self.start(melody, options, run_id=run_id).wait()

    def record(self, run_id: str) -> dict[str, Any]:
        """Return a run's stored record (melody document, options, status).

        Raises
        ------
        RunNotFoundError
            If this Pit holds no such run.
        """
        record: dict[str, Any] = json.loads(read_record(self.pit, run_id))
        return record

    def stored_options(
        self, run_id: str, record: Mapping[str, Any] | None = None, **changes: Any
    ) -> RunOptions:
        """Return the options run ``run_id`` was recorded with, ``changes`` applied.

        What :meth:`resume` uses when given no options; ``symphony run --resume`` passes the
        options given on its command line as ``changes`` (``budget=2.0``). ``record`` spares
        reading the record again.

        Raises
        ------
        RunNotFoundError
            If this Pit holds no such run.
        InvalidMelodyError
            If the stored options, with ``changes``, are not valid (naming the option): a run
            recorded by an older build may hold ``"budget": NaN``; a change can replace it.
        TypeError
            If ``changes`` names no option of :class:`RunOptions`.
        """
        unknown = sorted(set(changes) - set(RunOptions.__dataclass_fields__))
        if unknown:
            raise TypeError(f"no run option {unknown[0]!r}")
        if record is None:
            record = self.record(run_id)
        stored = record.get("options")
        # merged before reading, so that a bad stored value can be the very one replaced
        merged = dict(stored) if isinstance(stored, Mapping) else {}
        for name, value in changes.items():
            merged[name] = sorted(value) if isinstance(value, frozenset | set) else value
        try:
            return RunOptions.from_json(merged)
        except (ValueError, TypeError) as e:
            raise InvalidMelodyError(f"run {run_id!r}: its stored options: {e}") from None

    def resume(
        self,
        run_id: str,
        options: RunOptions | None = None,
        *,
        workspace: str | os.PathLike[str] | None = None,
    ) -> Run:
        """Continue a stopped or killed run from its checkpoint in the Pit.

        Succeeded nodes keep their outputs and are not run again; nodes that were running,
        failed or were cancelled run again (with everything downstream of them). ``options``
        default to the ones the run record keeps (:meth:`stored_options`); given, they are
        recorded as the run's. ``workspace``, given, replaces the one the record keeps (the
        caller resumes it in another folder).

        Raises
        ------
        RunNotFoundError
            If the run is unknown here.
        InvalidMelodyError
            If the stored melody no longer validates (e.g. an extension is missing), or the
            stored options are not valid and none are given.
        """
        existing = self.runs.get(run_id)
        if existing is not None and not existing.done:
            raise InvalidMelodyError(f"run {run_id!r} is still running")
        record = self.record(run_id)
        self._check_progress(run_id, "resumed")
        melody = self.melody_of(record)
        self.check(melody)
        if options is None:
            options = self.stored_options(run_id, record)
        else:
            record["options"] = options.to_json()
        if workspace:
            record["workspace"] = os.path.abspath(workspace)
        self._credit_dead_session(run_id, record)
        run = Run(self, run_id, melody, options, resumed=True)
        run.record = record
        self.runs[run_id] = run
        return run

    def _credit_dead_session(self, run_id: str, record: dict[str, Any]) -> None:
        """Add the seconds of a session that died (``kill -9``) to the record's summary.

        A session adds its seconds when it ends; one that never ended left its record
        ``running`` (or ``paused``). Its time is then taken from the DAG Tracker: from the
        session's start to the last node start or end it recorded (before this resume resets
        what was running). The record is written back with this session's start, so a resume
        that dies in turn is credited from there, not from the run's first start.
        """
        now = time.time()
        if record.get("status") in (RUN_RUNNING, RUN_PAUSED):
            started = record.get("session_started", record.get("started"))
            start = float(started) if isinstance(started, int | float) else None
            last: float | None = None
            dag = self.pit.dag
            for nid in dag.nodes(run_id):
                info = dag.node(run_id, nid)
                for t in (info.started_at, info.finished_at):
                    if t is not None and (last is None or t > last):
                        last = t
            if start is not None and last is not None and last > start:
                summary = record.get("summary")
                summary = dict(summary) if isinstance(summary, dict) else {}
                before = summary.get("seconds", 0.0)
                summary["seconds"] = (float(before) if _is_number(before) else 0.0) + (last - start)
                summary.setdefault("cost", 0.0)
                record["summary"] = summary
        record["status"] = RUN_RUNNING
        record["session_started"] = now
        self.pit.artifacts.put(RUN_PREFIX + run_id, _canonical(record), kind="json",
                               actor=run_id)  # fmt: skip

    def edit_output(self, run_id: str, node_id: str, port: str, value: Any) -> int:
        """Replace a finished node's output with an edited value.

        Downstream nodes run again on :meth:`resume`.

        The new version keeps the old one as its input (lineage), is bound to the node, and
        everything downstream of the node is reset to pending. It keeps the node's score (the
        semantic quality link conditions read as ``score``); an edited ``score`` output scores
        all the node's outputs anew (see :meth:`adopt_output`).

        Returns
        -------
        int
            The new artifact id.
        """
        dag, store = self.pit.dag, self.pit.artifacts
        melody = self.melody_of(self.record(run_id))
        self._check_progress(run_id, "edited")
        node = melody.node(node_id)
        desc = self.registry[node.type_id]
        spec = desc.output(port)
        if spec is None:
            raise KeyError(f"node {node_id!r} ({node.type_id}) has no output port {port!r}")
        info = dag.node(run_id, node_id)
        if info.state != "succeeded":
            raise InvalidMelodyError(f"node {node_id!r} has not succeeded (it is {info.state})")
        name = f"{OUTPUT_PREFIX}{melody.name}/{node_id}/{port}"
        old = [a for a in info.artifacts if store.info(a).name == name]
        data, kind = _encode(value, spec.type)
        aid = store.put(name, data, kind=kind, inputs=old, actor="user",
                        produced_by=(run_id, node_id, "user"), durable=True)  # fmt: skip
        self.adopt_output(run_id, node_id, aid)
        return aid

    def adopt_output(self, run_id: str, node_id: str, artifact_id: int) -> list[str]:
        """Make a stored version (e.g. edited in the IDE) a finished node's output.

        It replaces the bound version of the same name; the node's dependants are reset, so
        :meth:`resume` runs them (and what follows) again on the new value.

        The node's score follows: a new version of an output gets the semantic quality its
        siblings have, and a new version of the ``score`` output gives its score (normalised
        as when the node ran) to every output of the node, so a resume takes the branch the
        edited score says. A run's output whose score changes is not changed in place (another
        run may use it): a copy with the new score takes its place.

        Returns
        -------
        list of str
            The nodes that will run again.

        Raises
        ------
        InvalidMelodyError
            The node is not finished, the version is not one of its outputs, or it is a
            ``score`` that is no score while the node has one (a score cannot be removed).
        """
        dag, store = self.pit.dag, self.pit.artifacts
        melody = self.melody_of(self.record(run_id))
        self._check_progress(run_id, "edited")
        melody.node(node_id)  # KeyError names an unknown node
        name = store.info(artifact_id).name
        prefix = f"{OUTPUT_PREFIX}{melody.name}/{node_id}/"
        if not name.startswith(prefix):
            raise InvalidMelodyError(f"artifact {name!r} is not an output of node {node_id!r}")
        info = dag.node(run_id, node_id)
        if info.state != "succeeded":
            raise InvalidMelodyError(f"node {node_id!r} has not succeeded (it is {info.state})")
        outputs = [a for a in info.artifacts if store.info(a).name.startswith(prefix)]
        # every output of a scored node carries the same semantic quality: any one tells it
        score = next((s for a in outputs if (s := store.quality(a).semantics) is not None), None)
        if name == prefix + SCORE_PORT:
            value = self._stored_value(artifact_id)
            new_score = _semantic_score(value)
            if new_score is None and score is not None:
                # the store cannot clear a semantic quality: refuse rather than keep a stale one
                raise InvalidMelodyError(
                    f"the edited score of node {node_id!r} is no score: {_not_a_score(value)} "
                    f"(its score stays {round(score, 6)}; a score cannot be removed)"
                )
            score = new_score
        for a in outputs:
            if a != artifact_id and store.info(a).name == name:
                dag.unbind_artifact(run_id, node_id, a)
        if score is not None:
            artifact_id = self._scored(run_id, node_id, artifact_id, score)
            for a in outputs:
                if store.info(a).name == name:
                    continue
                if (b := self._scored(run_id, node_id, a, score)) != a:
                    dag.unbind_artifact(run_id, node_id, a)
                    dag.bind_artifact(run_id, node_id, b)
        dag.bind_artifact(run_id, node_id, artifact_id)
        again: list[str] = []
        for link in melody.outgoing(node_id):
            if dag.state(run_id, link.target_node) != "pending":
                again += dag.reset(run_id, link.target_node)
        self.pit.sync()
        return again

    def _stored_value(self, artifact_id: int) -> Any:
        """Return a stored version's value, or the reason it has none (a text, never a score)."""
        store = self.pit.artifacts
        try:
            return _decode(store.get(artifact_id, actor="user"), store.info(artifact_id).kind)
        except ValueError as e:  # not JSON or not UTF-8: say so where the score is refused
            return f"<not readable: {e}>"

    def _scored(self, run_id: str, node_id: str, artifact_id: int, score: float) -> int:
        """Return a version of ``artifact_id`` whose semantic quality is ``score``.

        The version itself if it has that score, or has none and is the user's (an edit,
        which no other run holds); else a copy of it (its lineage) with that score, so that a
        run's output another run may hold keeps the score it was given.
        """
        store = self.pit.artifacts
        have = store.quality(artifact_id).semantics
        # the store keeps single precision: 0.7 comes back as 0.69999998
        if have is not None and math.isclose(have, score, abs_tol=1e-6):
            return artifact_id
        info = store.info(artifact_id)
        if have is None and (info.produced_by is None or info.produced_by[2] == "user"):
            store.set_quality(artifact_id, semantics=score)
            return artifact_id
        copy = store.put(info.name, store.get(artifact_id, actor="user"), kind=info.kind,
                         inputs=[artifact_id], actor="user", produced_by=(run_id, node_id, "user"),
                         durable=True)  # fmt: skip
        store.set_quality(copy, semantics=score)
        return copy

    def run_ids(self) -> list[str]:
        """Return the ids of the runs recorded in this Pit, oldest first."""
        names = self.pit.artifacts.names(RUN_PREFIX)
        names.sort(key=lambda n: self.pit.artifacts.info(n).created)
        return [n[len(RUN_PREFIX) :] for n in names]

    # ---------------------------------------------------------------- run history

    def prune_runs(self, keep: int) -> list[str]:
        """Forget the progress of all but the newest ``keep`` ended runs.

        A run's progress is its DAG Tracker workflow: node states and the outputs bound to them.
        It is what :meth:`resume` and :meth:`edit_output` need, it costs memory for as long as
        the Pit is open (about 450 bytes per node) and time whenever it is opened, and while it
        exists every output of the run counts as referenced, so the Stale Manager may never
        archive or delete one. Pruning drops the workflow; the run's record, outputs, traces and
        cache entries stay in the Artifact Store (for :meth:`record`, for cache hits, and for the
        Stale Manager to curate). Runs are ranked by their last record write (start, end, or the
        end of a resume); runs in progress here are never pruned, nor are workflows that no
        run record names (not the conductor's).

        Returns
        -------
        list of str
            The pruned run ids, oldest first.

        Raises
        ------
        ValueError
            If ``keep`` is not a whole number ≥ 0.
        """
        if isinstance(keep, bool) or not isinstance(keep, int) or keep < 0:
            raise ValueError(f"keep must be a whole number ≥ 0, not {keep!r}")
        dag = self.pit.dag
        ranked = self._ranked_runs()
        pruned = ranked[: max(0, len(ranked) - keep)]
        history = self._history
        for run_id in pruned:
            # not synced: a drop lost to a crash is pruned again by the next prune
            dag.drop_workflow(run_id)
            if history is not None:
                del history[run_id]
        if pruned:
            _log.info("pruned the progress of %d old runs (kept %d)", len(pruned), keep)
        return pruned

    def _ranked_runs(self) -> list[str]:
        """Return the ended runs that have progress in the Pit, least recently active first.

        Ranking reads every run's record (3 µs each on a quiet machine, 8 loaded), so it is done
        once: after it, runs that end here are moved to the end of :attr:`_history` as they end.
        It is done again when the DAG Tracker holds workflows that the history, the runs in
        progress and the foreign workflows do not account for (someone else created or dropped
        one).
        """
        dag, runs, history = self.pit.dag, self.runs, self._history
        if history is not None:
            present = [r for r in history if r not in runs and r in dag]
            others = sum(1 for r in runs if r in dag) + sum(1 for w in self._foreign if w in dag)
            if len(present) + others == len(dag):
                if len(present) < len(history):
                    self._history = dict.fromkeys(present)
                return present
        store = self.pit.artifacts
        ended: list[tuple[float, str]] = []
        foreign: set[str] = set()
        for run_id in dag.workflows():
            if run_id in runs:
                continue
            try:
                ended.append((store.info(RUN_PREFIX + run_id).created, run_id))
            except PitError:
                foreign.add(run_id)  # no run record: a workflow someone else made
        ended.sort()
        self._history = dict.fromkeys(run_id for _, run_id in ended)
        self._foreign = foreign
        return list(self._history)

    def _run_ended(self, run_id: str) -> None:
        self._broker.forget(run_id)
        history = self._history
        if history is not None:  # it is now the most recently active run
            history.pop(run_id, None)
            history[run_id] = None
        self._prune_if_due()

    def _prune_if_due(self) -> None:
        keep = self.keep_runs
        # pruning in batches of an eighth keeps even its cheap checks off the path of most runs
        if keep is not None and len(self.pit.dag) >= keep + max(8, keep // 8):
            try:
                self.prune_runs(keep)
            except PitError as e:
                _log.warning("pruning old runs failed: %s", e)

    def _check_progress(self, run_id: str, verb: str) -> None:
        if run_id not in self.pit.dag:
            # Not this conductor's keep_runs: whoever pruned it may have kept another number.
            raise RunNotFoundError(
                f"run {run_id!r} cannot be {verb}: its progress was pruned from the run history "
                "(only the most recently active runs keep theirs); its record and outputs are "
                "still stored"
            )

    # ---------------------------------------------------------------- records

    def _store_melody(self, melody: Melody) -> int:
        """Store the melody document (an unchanged document stores nothing new)."""
        data = self._plan(melody).document
        return self.pit.artifacts.put(MELODY_PREFIX + melody.name, data, kind="json",
                                      actor="conductor")  # fmt: skip

    def melody_of(self, record: Mapping[str, Any]) -> Melody:
        """Return the melody a run record refers to."""
        return load_melody(self.pit, record)

    def _write_record(self, run: Run, status: str, detail: str = "") -> None:
        record = dict(run.record)
        record["status"] = status
        record["finished"] = time.time()
        record["detail"] = detail
        # What the run history shows after the run's progress is pruned (history.py): the
        # nodes by state, the money spent and the seconds it ran (not the wall time from its
        # start: a run resumed the next day did not take a day), a resume's added to before.
        counts: dict[str, int] = {}
        for nr in run._nodes.values():
            state = nr.report.state
            counts[state] = counts.get(state, 0) + 1
        before = record.get("summary") if run._resumed else None
        if not isinstance(before, dict):
            before = {}
        record["summary"] = {
            "nodes": counts,
            "cost": float(before.get("cost", 0.0)) + run._spent,
            "seconds": float(before.get("seconds", 0.0)) + (record["finished"] - run._started),
        }
        self.pit.artifacts.put(RUN_PREFIX + run.run_id, _canonical(record), kind="json",
                               actor=run.run_id)  # fmt: skip

    def _write_log(self, run: Run, final: RunStateChanged) -> None:
        events, run._log = run._log, None
        # a session whose nodes all ran in-process at once adds nothing to the record and the
        # DAG Tracker: no log write (P10's melodies)
        if events is None or all(type(e) is RunStateChanged for e in events):
            return
        # the operators left out while it ran go in now, so that the log tells the whole run
        # (once its progress is pruned, it is all there is)
        store = self.pit.artifacts
        for nr in run._nodes.values():
            report = nr.report
            if not nr.unlogged or report.state != SUCCEEDED or report.started is None:
                continue
            nid, end = nr.node.id, report.finished or report.started
            events.append(NodeStateChanged(run.run_id, report.started, nid, RUNNING))
            for port, aid in report.artifacts.items():
                with contextlib.suppress(PitError):
                    kind = store.info(aid).kind
                    events.append(ArtifactStored(run.run_id, end, nid, port, aid, kind))
            events.append(NodeStateChanged(run.run_id, end, nid, SUCCEEDED, 1, report.model))
        events.append(final)
        line = encode_session(events, run._started)
        name = EVENTS_PREFIX + run.run_id
        if run._resumed:  # the sessions before this one come first
            with contextlib.suppress(PitError):
                line = self.pit.artifacts.get(name, actor=run.run_id) + line
        self.pit.artifacts.put(name, line, kind="jsonl", actor=run.run_id)

    def _write_traces(self, run_id: str) -> None:
        traces = self._traces.pop(run_id, [])
        if not traces:
            return
        lines = "\n".join(json.dumps(t.to_json(), sort_keys=True) for t in traces) + "\n"
        name = TRACE_PREFIX + run_id
        with contextlib.suppress(PitError):  # earlier traces of a resumed run come first
            lines = self.pit.artifacts.get(name).decode() + lines
        self.pit.artifacts.put(name, lines.encode(), kind="jsonl", actor=run_id)


def new_run_id() -> str:
    """Return a fresh run id: sortable by start time, unique."""
    return time.strftime("%Y%m%d-%H%M%S-", time.gmtime()) + uuid.uuid4().hex[:8]


def apply_inputs(melody: Melody, inputs: Mapping[str, str]) -> None:
    """Set node config from ``name=value`` pairs (``symphony run --input``).

    ``name`` is ``node.field``, or an alias the melody declares in ``metadata.inputs``
    (``{"idea": "enhance.prompt"}``). ``value`` is parsed as JSON when it is a JSON number,
    boolean, null, array or object, else taken as text.

    Raises
    ------
    InvalidMelodyError
        Naming the unknown input, node or field.
    """
    aliases = melody.metadata.get("inputs", {})
    aliases = aliases if isinstance(aliases, Mapping) else {}
    for name, raw in inputs.items():
        target = str(aliases.get(name, name))
        node_id, dot, fieldname = target.partition(".")
        if name in aliases and (not dot or not fieldname or node_id not in melody.nodes):
            # the melody's own mistake: its named input points nowhere
            where = (
                f"node {node_id!r}, which is not in the melody"
                if dot and fieldname
                else "no NODE.FIELD"
            )
            raise InvalidMelodyError(
                f"--input {name}: the melody's named input {name!r} (metadata.inputs) refers "
                f"to {target!r}: {where}"
            )
        if not dot or node_id not in melody.nodes:
            known = ", ".join(sorted(aliases)) or "none"
            raise InvalidMelodyError(
                f"--input {name}: not an input of this melody (its named inputs: {known}; "
                "or use NODE.FIELD)"
            )
        value: Any = raw
        with contextlib.suppress(ValueError):
            parsed = json.loads(raw, parse_constant=_refuse_constant)
            if not isinstance(parsed, str):
                value = parsed
        if isinstance(value, float) and not math.isfinite(value):  # 1e400 parses as inf
            raise InvalidMelodyError(f"--input {name}: {raw} is not a finite number")
        config = dict(melody.node(node_id).config)
        config[fieldname] = value
        try:
            melody.set_node_config(node_id, config)
        except MelodyError as e:  # a value no melody file can hold
            raise InvalidMelodyError(f"--input {name}: {e}") from None


def _refuse_constant(name: str) -> Any:
    # NaN and ±Infinity are not JSON: taken as text they would read as the number they spell
    raise ValueError(f"{name} is not a finite number")
