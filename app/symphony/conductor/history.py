"""The run history: what a Pit remembers of every run (``symphony runs``, the Runs dock).

Every run leaves a record (``run/<id>``: the melody it ran, its options, start, end, status and,
since session 10, a summary of its nodes and cost) that outlives its *progress* (the DAG
Tracker's workflow, which pruning drops; ``docs/conductor.md``, Run history). This module reads
records without a :class:`~symphony.conductor.conductor.Conductor`, so listing runs costs
neither the registry nor the extension host.

A record still saying *running* or *paused* whose run is not going on in this process belongs
to a process that died (``kill -9``, a crash, a closed window): it is shown as *interrupted*.
"""

from __future__ import annotations

import heapq
import json
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from symphony.conductor import MELODY_PREFIX, RUN_PREFIX
from symphony.conductor import events as ev
from symphony.pit import Pit, PitError

if TYPE_CHECKING:
    from symphony.workflow import Melody

__all__ = [
    "NodeStep",
    "RunNotFoundError",
    "RunSummary",
    "format_duration",
    "list_runs",
    "load_melody",
    "node_steps",
    "read_record",
    "read_run",
    "replay_events",
    "run_order",
]

#: What a record of a dead process is shown as, and why.
DIED: Final = "its process ended before the run did: killed, crashed or closed"

#: Statuses a run can be resumed from (its progress permitting).
RESUMABLE: Final = frozenset({ev.RUN_FAILED, ev.RUN_CANCELLED, ev.RUN_INTERRUPTED})


class RunNotFoundError(KeyError):
    """No run with that id in this Pit (or its record is damaged)."""

    def __str__(self) -> str:
        return str(self.args[0])


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
        }


@dataclass(frozen=True, slots=True)
class NodeStep:
    """One node of a kept run, as the DAG Tracker holds it."""

    node_id: str
    state: str
    started: float | None
    finished: float | None
    outputs: tuple[int, ...]


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
    """
    try:
        return pit.artifacts.get(RUN_PREFIX + run_id)
    except PitError:
        raise RunNotFoundError(f"no run {run_id!r} in this data directory") from None


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
    that cannot be read is left out (it is not a run this version wrote); ``skip`` leaves out
    runs the caller already has.
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
        except (KeyError, ValueError):
            continue
    return out


def node_steps(pit: Pit, run_id: str) -> list[NodeStep]:
    """Return the nodes of a run whose progress is kept, in melody order (else ``[]``).

    Raises
    ------
    RunNotFoundError
        If the Pit holds no record of ``run_id``.
    """
    dag = pit.dag
    record = read_record(pit, run_id)
    if run_id not in dag:
        return []
    names = dag.nodes(run_id)
    try:  # the DAG Tracker lists nodes by name; dependency order reads as the run went
        order = {n: i for i, n in enumerate(run_order(load_melody(pit, json.loads(record))))}
        names.sort(key=lambda n: order.get(n, len(order)))
    except (RunNotFoundError, ValueError, TypeError):
        pass
    steps = []
    for name in names:
        info = dag.node(run_id, name)
        steps.append(
            NodeStep(name, info.state, info.started_at, info.finished_at, tuple(info.artifacts))
        )
    return steps


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


def replay_events(run: RunSummary, steps: list[NodeStep]) -> list[ev.RunEvent]:
    """Return events that draw a past run on a timeline: each node's span, as kept.

    What the DAG Tracker keeps is one start and one end per node (not each attempt, recovery or
    cost), so that is what the replay shows. A node that was running when its process died ends
    where it started: when the process died is not known.
    """
    out: list[ev.RunEvent] = [ev.RunStateChanged(run.run_id, run.started, ev.RUN_RUNNING)]
    end = run.started
    for step in steps:
        state = SHOWN_STATE.get(step.state)
        if state is None:
            continue
        start = step.started if step.started is not None else step.finished
        if step.started is not None:
            out.append(ev.NodeStateChanged(run.run_id, step.started, step.node_id, ev.RUNNING))
        at = step.finished if step.finished is not None else start
        at = run.started if at is None else at
        detail = STOPPED_WHILE_RUNNING if step.state == "running" else ""
        out.append(ev.NodeStateChanged(run.run_id, at, step.node_id, state, detail=detail))
        end = max(end, at)
    final = run.status if run.status not in (ev.RUN_RUNNING, ev.RUN_PAUSED) else ev.RUN_INTERRUPTED
    out.append(ev.RunStateChanged(run.run_id, run.finished or end, final, run.detail))
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
