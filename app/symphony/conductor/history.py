"""The run history: what a Pit remembers of every run (``symphony runs``, the Runs dock).

Every run leaves a record (``run/<id>``: the melody it ran, its options, start, end, status and,
since session 10, a summary of its nodes and cost) that outlives its *progress* (the DAG
Tracker's workflow, which pruning drops; ``docs/conductor.md``, Run history), and, since session
11, an event log (``run.events/<id>``: each attempt's span, model and cost, each recovery, each
output) from which a past run's timeline is drawn as it went. This module reads them without a
:class:`~symphony.conductor.conductor.Conductor`, so listing runs costs neither the registry nor
the extension host.

A record still saying *running* or *paused* whose run is not going on in this process belongs
to a process that died (``kill -9``, a crash, a closed window): it is shown as *interrupted*.
"""

from __future__ import annotations

import heapq
import json
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Final

from symphony.conductor import EVENTS_PREFIX, MELODY_PREFIX, RUN_PREFIX
from symphony.conductor import events as ev
from symphony.pit import (
    ArtifactNotFoundError,
    InvalidArgumentError,
    NotFoundError,
    Pit,
    PitClosedError,
    PitError,
)

if TYPE_CHECKING:
    from symphony.workflow import Melody

__all__ = [
    "NodeStep",
    "RunNotFoundError",
    "RunRecordDamagedError",
    "RunSummary",
    "format_duration",
    "list_runs",
    "load_melody",
    "node_steps",
    "read_events",
    "read_record",
    "read_run",
    "replay_events",
    "run_order",
]

#: What a record of a dead process is shown as, and why.
DIED: Final = "its process ended before the run did: killed, crashed or closed"

#: Statuses a run can be resumed from (its progress permitting).
RESUMABLE: Final = frozenset({ev.RUN_FAILED, ev.RUN_CANCELLED, ev.RUN_INTERRUPTED})

#: The status :func:`list_runs` gives a run whose record cannot be read (``detail`` says why).
DAMAGED: Final = "damaged"


class RunNotFoundError(KeyError):
    """No run with that id in this Pit (or its record is damaged)."""

    def __str__(self) -> str:
        return str(self.args[0])


class RunRecordDamagedError(RunNotFoundError):
    """The Pit holds a record of the run, but it cannot be read back.

    The store refused it (e.g. it failed its integrity check); the message names the run and
    the store's error. A :class:`RunNotFoundError`, so that whoever can do nothing with an
    unreadable run treats it as one it does not have; ``symphony run``/``runs`` tell it apart
    (exit code 4).
    """


@dataclass(frozen=True, slots=True)
class RunSummary:
    """One run as its record and the DAG Tracker tell it.

    Attributes
    ----------
    run_id, melody
        The run's id and the name of the melody it ran (``""`` if that is unreadable).
    status
        A ``RUN_*`` value of :mod:`symphony.conductor.events`; a dead process's run is
        ``interrupted`` (``detail`` says so).
    started, finished
        Wall-clock seconds; ``finished`` is ``None`` while it runs or if its process died.
    detail
        Why it ended as it did (``"failed: review"``), if known.
    cost
        What it spent, for runs recorded since the summary existed; else ``None``.
    seconds
        How long it ran, its resumes' time added, without the time it lay stopped (for runs
        recorded since the summary existed; else ``None``).
    nodes
        How many nodes ended in each state (record summary, else the DAG Tracker's states).
    live
        Whether it is going on in this process.
    kept
        Whether its progress is still in the Pit (see :attr:`resumable`).
    source
        The file the melody was opened from when the run started (``""``: none recorded).
    workspace
        The absolute folder its files were read and written in, which a resume uses (``""``:
        none recorded, as for runs of older builds).
    """

    run_id: str
    melody: str
    status: str
    started: float
    finished: float | None = None
    detail: str = ""
    cost: float | None = None
    seconds: float | None = None
    nodes: Mapping[str, int] = field(default_factory=dict)
    live: bool = False
    kept: bool = False
    source: str = ""
    workspace: str = ""

    @property
    def duration(self) -> float | None:
        """How long it ran (``None`` if it has not ended, or its process died)."""
        if self.finished is None:
            return None
        if self.seconds is not None:
            return self.seconds
        return max(0.0, self.finished - self.started)

    @property
    def resumable(self) -> bool:
        """Whether ``Conductor.resume`` can continue it: it stopped short and is still kept."""
        return self.kept and not self.live and self.status in RESUMABLE

    @property
    def total_nodes(self) -> int:
        """How many nodes the run has."""
        return sum(self.nodes.values())

    @property
    def done_nodes(self) -> int:
        """How many nodes produced their outputs (ran or came from the store)."""
        return self.nodes.get(ev.SUCCEEDED, 0) + self.nodes.get(ev.CACHED, 0)

    def to_json(self) -> dict[str, Any]:
        """Return the summary as JSON (``symphony runs --json``'s items)."""
        return {
            "run_id": self.run_id,
            "melody": self.melody,
            "status": self.status,
            "started": self.started,
            "finished": self.finished,
            "duration": self.duration,
            "detail": self.detail,
            "cost": self.cost,
            "nodes": dict(self.nodes),
            "resumable": self.resumable,
            "source": self.source,
            "workspace": self.workspace,
        }


@dataclass(frozen=True, slots=True)
class NodeStep:
    """One node of a past run: its state as the DAG Tracker holds it, the rest from its log.

    ``attempts``, ``cost`` and ``model`` come from the run's event log (0, ``None`` and ``""``
    when it kept none of the node); ``recoveries`` are the strategies chosen at its failures;
    ``cached``: it succeeded by being served from the store (the DAG Tracker says succeeded).
    """

    node_id: str
    state: str
    started: float | None
    finished: float | None
    outputs: tuple[int, ...]
    attempts: int = 0
    cost: float | None = None
    model: str = ""
    recoveries: tuple[str, ...] = ()
    cached: bool = False

    @property
    def shown_state(self) -> str | None:
        """Return the node state (``events``) a board and a timeline show it in, if any."""
        if self.cached and self.state == "succeeded":
            return ev.CACHED
        return SHOWN_STATE.get(self.state)

    @property
    def label(self) -> str:
        """Return its state in words: the DAG Tracker's, or ``"cached"``."""
        return ev.CACHED if self.shown_state == ev.CACHED else self.state

    @property
    def took(self) -> float | None:
        """Seconds from its first start to its end (``None`` if either is not known)."""
        if self.started is None or self.finished is None:
            return None
        return max(0.0, self.finished - self.started)

    @property
    def attempts_text(self) -> str:
        """``"3: retry, fallback"``: attempts and the recoveries between them (``""``: unknown)."""
        if not self.attempts:
            return ""
        return (
            f"{self.attempts}: {', '.join(self.recoveries)}"
            if self.recoveries
            else str(self.attempts)
        )


def read_run(pit: Pit, run_id: str, *, live: Mapping[str, str] | None = None) -> RunSummary:
    """Return the summary of one run.

    ``live`` maps the ids of runs going on in this process to their current state.

    Raises
    ------
    RunNotFoundError
        If the Pit holds no record of ``run_id`` (the message names it).
    ValueError
        If the record is not a run record this version can read (the message names it).
    """
    return _summary(pit, run_id, read_record(pit, run_id), live or {})


def read_record(pit: Pit, run_id: str) -> bytes:
    """Return a run's stored record (JSON).

    Raises
    ------
    RunNotFoundError
        If the Pit holds no record of ``run_id``.
    RunRecordDamagedError
        If it holds one that cannot be read back (naming the store's reason).
    PitClosedError
        If the Pit is closed.
    """
    try:
        return pit.artifacts.get(RUN_PREFIX + run_id)
    except (NotFoundError, InvalidArgumentError):  # an id that cannot be a name is none either
        raise RunNotFoundError(f"no run {run_id!r} in this data directory") from None
    except PitClosedError:
        raise
    except PitError as e:
        raise RunRecordDamagedError(
            f"run {run_id!r}: its record in this data directory is damaged and cannot be read "
            f"({e}); its outputs may still be stored"
        ) from None


def load_melody(pit: Pit, record: Mapping[str, Any]) -> Melody:
    """Return the melody a run record refers to, as the run ran it.

    Raises
    ------
    RunNotFoundError
        If the melody the record names is gone or unreadable (the message says why).
    """
    from symphony.workflow import loads  # not at import: the window lists runs at start-up

    try:
        data = pit.artifacts.get(int(record["melody"]))
    except (PitError, KeyError, TypeError, ValueError) as e:
        raise RunNotFoundError(f"the run's melody is not readable: {e}") from None
    return loads(data)


def list_runs(
    pit: Pit,
    *,
    live: Mapping[str, str] | None = None,
    limit: int | None = None,
    skip: Collection[str] = (),
) -> list[RunSummary]:
    """Return the recorded runs, the most recently active first.

    Runs are ordered by their record's last write (start, end, or the end of a resume), which
    the store knows without reading the records; only the ``limit`` newest are read. A record
    the store cannot give back (it failed its integrity check) is listed with status
    :data:`DAMAGED`, the store's reason in its ``detail`` and its last write as its start: the
    run is there, and leaving it out would hide the damage. A record that is not one this
    version can read is left out. ``skip`` leaves out runs the caller already has.
    """
    store = pit.artifacts
    named = []
    for name in store.names(RUN_PREFIX):
        run_id = name[len(RUN_PREFIX) :]
        if run_id not in skip:
            # version ids grow with every write: the newest one ranks the record's last write
            named.append((store.versions(name)[-1], run_id))
    named.sort(reverse=True)
    if limit is not None:
        named = named[: max(0, limit)]
    out = []
    for _, run_id in named:
        try:
            out.append(read_run(pit, run_id, live=live))
        except RunRecordDamagedError as e:
            out.append(_damaged(pit, run_id, str(e)))
        except (KeyError, ValueError):
            continue  # deleted since it was named, or not a record this version wrote
    return out


def _damaged(pit: Pit, run_id: str, why: str) -> RunSummary:
    """Return the summary of a run whose record cannot be read."""
    try:  # the index knows when it was written, even when its bytes are damaged
        when = pit.artifacts.info(RUN_PREFIX + run_id).created
    except PitError:
        when = 0.0
    return RunSummary(run_id, "", DAMAGED, when, detail=why, kept=False)


def read_events(pit: Pit, run_id: str) -> list[ev.RunEvent]:
    """Return what a run's event log kept, in the order it happened (``[]``: it kept nothing).

    A run logs nothing when all its nodes ran in-process and succeeded at once (the DAG
    Tracker and the record tell all of it), when its conductor keeps no log, and before session
    11. A session cut short by ``kill -9`` logs nothing of itself.

    Raises
    ------
    symphony.conductor.events.EventLogError
        If the log cannot be read (naming it, the line, the event and the field).
    PitError
        If the store cannot give it back (a damaged artifact, a closed Pit).
    """
    name = EVENTS_PREFIX + run_id
    try:
        data = pit.artifacts.get(name)
    except ArtifactNotFoundError:
        return []
    return ev.decode_log(data, run_id, name)


def node_steps(pit: Pit, run_id: str, events: list[ev.RunEvent] | None = None) -> list[NodeStep]:
    """Return the nodes of a run in dependency order.

    While the run's progress is kept, the DAG Tracker gives each node's state, span and
    outputs, and the event log (``events``, else read) its attempts, cost and model. Once the
    progress is pruned, the log alone: ``[]`` if it kept nothing.

    Raises
    ------
    RunNotFoundError
        If the Pit holds no record of ``run_id``.
    """
    dag = pit.dag
    record = read_record(pit, run_id)
    if events is None:
        try:
            events = read_events(pit, run_id)
        except (ev.EventLogError, PitError):
            events = []  # what the DAG Tracker keeps is still worth showing
    logged = _logged_nodes(events)
    if run_id in dag:
        names = dag.nodes(run_id)
        infos = {n: dag.node(run_id, n) for n in names}
        base = {
            n: NodeStep(n, i.state, i.started_at, i.finished_at, tuple(i.artifacts))
            for n, i in infos.items()
        }
    else:
        base = {n: step for n, step in logged.items() if step.state}
    try:  # the DAG Tracker lists nodes by name; dependency order reads as the run went
        order = {n: i for i, n in enumerate(run_order(load_melody(pit, json.loads(record))))}
    except (RunNotFoundError, ValueError, TypeError):
        order = {}
    names = sorted(base, key=lambda n: order.get(n, len(order)))
    steps = []
    for name in names:
        step, log = base[name], logged.get(name)
        if log is not None and log is not step:
            # the DAG Tracker holds what hung on a stopped node as skipped until a resume
            # re-arms it; the log says what it was to the run: not run
            stopped = step.state == "skipped" and log.state == "cancelled"
            step = replace(
                step,
                state=log.state if stopped else step.state,
                attempts=log.attempts,
                cost=log.cost,
                model=log.model,
                recoveries=log.recoveries,
                cached=log.cached,
            )
        steps.append(step)
    return steps


#: Node states of the log, as the DAG Tracker names them (a cached node succeeded).
_LOGGED_STATE: Final = {
    ev.SUCCEEDED: "succeeded",
    ev.CACHED: "succeeded",
    ev.FAILED: "failed",
    ev.SKIPPED: "skipped",
    ev.CANCELLED: "cancelled",
    ev.QUEUED: "running",
    ev.RUNNING: "running",
    ev.PAUSED: "running",
}


def _logged_nodes(events: list[ev.RunEvent]) -> dict[str, NodeStep]:
    """Return what the log tells of each node, as a step (``state`` ``""``: none known)."""
    state: dict[str, str] = {}
    started: dict[str, float] = {}
    finished: dict[str, float] = {}
    outputs: dict[str, dict[str, int]] = {}
    attempts: dict[str, int] = {}
    cost: dict[str, float] = {}
    model: dict[str, str] = {}
    recoveries: dict[str, list[str]] = {}
    cached: set[str] = set()
    for e in events:
        if isinstance(e, ev.NodeStateChanged):
            n = e.node_id
            if e.detail == ev.DONE_BEFORE_RESUME and n in state:
                continue  # the session that ran it logged it already
            state[n] = _LOGGED_STATE.get(e.state, "")
            if e.state == ev.CACHED:
                cached.add(n)
            else:
                cached.discard(n)
            if e.state == ev.RUNNING:
                started.setdefault(n, e.at)
                # one running event per attempt; ``attempt`` restarts at 1 in each session (a
                # resume), so counting them, not the highest, tells every session's attempts
                attempts[n] = attempts.get(n, 0) + 1
            elif (
                e.state in _LOGGED_STATE
                and state[n] != "running"
                and e.detail != ev.STOPPED_BEFORE_START  # never started: no span
            ):
                finished[n] = e.at
                started.setdefault(n, e.at)
            if e.model:
                model[n] = e.model
        elif isinstance(e, ev.ArtifactStored):
            outputs.setdefault(e.node_id, {})[e.port] = e.artifact_id
        elif isinstance(e, ev.NodeCost):
            cost[e.node_id] = cost.get(e.node_id, 0.0) + e.cost
        elif isinstance(e, ev.RecoveryChosen):
            recoveries.setdefault(e.node_id, []).append(e.strategy)
    return {
        n: NodeStep(
            n,
            s,
            started.get(n),
            finished.get(n),
            tuple(outputs.get(n, {}).values()),
            attempts.get(n, 0),
            cost.get(n),
            model.get(n, ""),
            tuple(recoveries.get(n, ())),
            n in cached,
        )
        for n, s in state.items()
    }


def run_order(melody: Melody) -> list[str]:
    """Return the melody's nodes in dependency order, left to right on the board among equals.

    A cycle (a melody that would not validate) leaves its nodes at the end, by position.
    """

    def key(nid: str) -> tuple[float, float, str]:
        x, y = melody.nodes[nid].position
        return (x, y, nid)

    waiting = {
        nid: len({link.source_node for link in melody.incoming(nid)}) for nid in melody.nodes
    }
    ready = [key(nid) for nid, n in waiting.items() if n == 0]
    heapq.heapify(ready)
    out: list[str] = []
    while ready:
        nid = heapq.heappop(ready)[2]
        out.append(nid)
        for target in {link.target_node for link in melody.outgoing(nid)}:
            waiting[target] -= 1
            if waiting[target] == 0:
                heapq.heappush(ready, key(target))
    placed = set(out)
    out += sorted((nid for nid in melody.nodes if nid not in placed), key=key)
    return out


#: A kept run's DAG Tracker node states as the board and timeline show them (pending ones: none).
SHOWN_STATE: Final = {
    "succeeded": ev.SUCCEEDED,
    "failed": ev.FAILED,
    "skipped": ev.SKIPPED,
    "cancelled": ev.CANCELLED,
    "running": ev.CANCELLED,  # running when its process died
}
#: The detail of a node that was running when its run stopped for good.
STOPPED_WHILE_RUNNING: Final = "the run stopped while it ran"


def replay_events(
    run: RunSummary, steps: list[NodeStep], logged: list[ev.RunEvent] | None = None
) -> list[ev.RunEvent]:
    """Return events that draw a past run on a timeline, in time order.

    ``logged`` is the run's event log (:func:`read_events`): each attempt's span and model,
    each recovery decision, each cost, as they happened. Where the log says nothing of a node,
    or less than the DAG Tracker knows (a session cut short by ``kill -9`` logs nothing), the
    node's one span as the DAG Tracker keeps it (``steps``) stands in: a node that was running
    when its process died ends where it started, as when it died is not known.
    """
    out: list[ev.RunEvent] = [ev.RunStateChanged(run.run_id, run.started, ev.RUN_RUNNING)]
    last_logged: dict[str, float] = {}
    for e in logged or ():
        node_id = getattr(e, "node_id", None)
        if node_id is not None:
            if isinstance(e, ev.NodeStateChanged) and e.detail == ev.DONE_BEFORE_RESUME:
                continue  # its span is in the session that ran it, or in the DAG Tracker
            last_logged[node_id] = max(last_logged.get(node_id, e.at), e.at)
        out.append(e)
    end = max((e.at for e in out), default=run.started)
    for step in steps:
        state = step.shown_state
        if state is None:
            continue
        start = step.started if step.started is not None else step.finished
        at = step.finished if step.finished is not None else start
        at = run.started if at is None else at
        seen = last_logged.get(step.node_id)
        # 1 ms of slack: the DAG Tracker and the event take their clocks a moment apart
        if seen is not None and (start if start is not None else at) <= seen + 1e-3:
            continue  # the log has it, attempt by attempt
        if step.started is not None:
            out.append(ev.NodeStateChanged(run.run_id, step.started, step.node_id, ev.RUNNING))
        detail = STOPPED_WHILE_RUNNING if step.state == "running" else ""
        out.append(ev.NodeStateChanged(run.run_id, at, step.node_id, state, detail=detail))
        end = max(end, at)
    out.sort(key=lambda e: e.at)  # stable: a node's own events keep their order
    final = run.status if run.status not in (ev.RUN_RUNNING, ev.RUN_PAUSED) else ev.RUN_INTERRUPTED
    out.append(ev.RunStateChanged(run.run_id, max(run.finished or end, end), final, run.detail))
    return out


def format_duration(seconds: float | None) -> str:
    """Return a duration in the unit that suits it (``"—"`` when unknown)."""
    if seconds is None:
        return "—"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds // 60:.0f} min {seconds % 60:02.0f} s"
    return f"{seconds // 3600:.0f} h {seconds % 3600 // 60:02.0f} min"


def _summary(pit: Pit, run_id: str, data: bytes, live: Mapping[str, str]) -> RunSummary:
    try:
        record = json.loads(data)
        if not isinstance(record, dict):
            raise TypeError("not an object")
        started = float(record["started"])
        status = str(record["status"])
    except (ValueError, TypeError, KeyError) as e:
        raise ValueError(f"run {run_id!r}: its record is not readable ({e})") from None
    finished = _number(record.get("finished"))
    detail = str(record.get("detail", ""))
    is_live = run_id in live
    if is_live:
        status, finished, detail = live[run_id], None, ""
    elif status in (ev.RUN_RUNNING, ev.RUN_PAUSED):
        status, finished, detail = ev.RUN_INTERRUPTED, None, DIED
    kept = run_id in pit.dag
    summary = record.get("summary")
    counts: dict[str, int] = {}
    if isinstance(summary, dict) and isinstance(summary.get("nodes"), dict):
        counts = {str(k): int(v) for k, v in summary["nodes"].items() if isinstance(v, int)}
    elif kept:
        for state in pit.dag.states(run_id):
            counts[state] = counts.get(state, 0) + 1
    cost = seconds = None
    if isinstance(summary, dict):
        cost, seconds = _number(summary.get("cost")), _number(summary.get("seconds"))
    return RunSummary(
        run_id=run_id,
        melody=_melody_name(pit, record.get("melody")),
        status=status,
        started=started,
        finished=finished,
        detail=detail,
        cost=cost,
        seconds=seconds,
        nodes=counts,
        live=is_live,
        kept=kept,
        source=str(record.get("source") or ""),
        workspace=str(record.get("workspace") or ""),
    )


def _melody_name(pit: Pit, artifact: object) -> str:
    if isinstance(artifact, bool) or not isinstance(artifact, int):
        return ""
    try:
        name = pit.artifacts.info(artifact).name
    except PitError:
        return ""
    return name[len(MELODY_PREFIX) :] if name.startswith(MELODY_PREFIX) else name


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)
