"""What a run tells its observers (the CLI's progress, the Harmony Board, the timeline).

Events are small frozen values delivered in order on the thread that runs the conductor (the GUI
thread under qasync). ``at`` is wall-clock seconds (``time.time()``), so a timeline can place
spans of one run recorded across a restart (``--resume``) on one axis.
"""

from __future__ import annotations

import json
import operator
from dataclasses import dataclass
from typing import Any, Final, cast

#: Node states, in the order a node normally passes through them.
QUEUED: Final = "queued"
RUNNING: Final = "running"
PAUSED: Final = "paused"
SUCCEEDED: Final = "succeeded"
FAILED: Final = "failed"
SKIPPED: Final = "skipped"
CACHED: Final = "cached"
CANCELLED: Final = "cancelled"
NODE_STATES: Final = (QUEUED, RUNNING, PAUSED, SUCCEEDED, FAILED, SKIPPED, CACHED, CANCELLED)

#: The detail of a node a resumed run found done before it (not run again).
DONE_BEFORE_RESUME: Final = "done before the resume"
#: The detail of a node a stopped run never started (it was pending, or paused before it);
#: its state is ``cancelled``, and a resume runs it.
STOPPED_BEFORE_START: Final = "not run: the run was stopped before it started"

#: Run states. ``interrupted``: the process died or was stopped before the run ended; resumable.
RUN_RUNNING: Final = "running"
RUN_PAUSED: Final = "paused"
RUN_SUCCEEDED: Final = "succeeded"
RUN_FAILED: Final = "failed"
RUN_CANCELLED: Final = "cancelled"
RUN_INTERRUPTED: Final = "interrupted"
RUN_STATES: Final = (
    RUN_RUNNING,
    RUN_PAUSED,
    RUN_SUCCEEDED,
    RUN_FAILED,
    RUN_CANCELLED,
    RUN_INTERRUPTED,
)


@dataclass(frozen=True, slots=True)
class RunEvent:
    """Base of every event: which run, and when."""

    run_id: str
    at: float


@dataclass(frozen=True, slots=True)
class RunStateChanged(RunEvent):
    """The run changed state (one of :data:`RUN_STATES`); ``detail`` says why if it ended badly."""

    state: str
    detail: str = ""


@dataclass(frozen=True, slots=True)
class NodeStateChanged(RunEvent):
    """A node changed state (one of :data:`NODE_STATES`).

    ``attempt`` counts from 1 for the attempt this state belongs to; ``model`` is the model the
    attempt uses (after a fallback, the fallback's); ``detail`` carries the error of a failure.
    """

    node_id: str
    state: str
    attempt: int = 1
    model: str = ""
    detail: str = ""


@dataclass(frozen=True, slots=True)
class NodeProgress(RunEvent):
    """Progress reported by a running node; ``fraction`` is ``None`` when the total is unknown."""

    node_id: str
    fraction: float | None
    message: str = ""


@dataclass(frozen=True, slots=True)
class NodeToken(RunEvent):
    """A piece of streamed output (model tokens) of a running node."""

    node_id: str
    text: str


@dataclass(frozen=True, slots=True)
class ArtifactStored(RunEvent):
    """A node output was stored in the Artifact Store (or reused from it, ``cached=True``).

    ``quality`` is the output's score as it was stored, told to listeners; an event log leaves
    it ``None`` (the Artifact Store keeps the score, by ``artifact_id``).
    """

    node_id: str
    port: str
    artifact_id: int
    kind: str
    quality: float | None = None
    cached: bool = False


@dataclass(frozen=True, slots=True)
class RecoveryChosen(RunEvent):
    """A node failed and the conductor chose a recovery strategy.

    ``strategy`` is a :class:`symphony.conductor.policy.Strategy` value (``"retry"``,
    ``"fallback"``, ``"reconstruct"``, ``"skip"``, ``"abort"``); ``reason`` is one sentence.
    """

    node_id: str
    error: str
    error_kind: str
    strategy: str
    reason: str
    attempt: int

    @property
    def why(self) -> str:
        """Return the reason without the strategy a policy names first ("retry: …")."""
        return self.reason.removeprefix(f"{self.strategy}: ")


@dataclass(frozen=True, slots=True)
class NodeCost(RunEvent):
    """What a finished attempt cost: seconds, model tokens, peak memory of its process."""

    node_id: str
    attempt: int
    seconds: float
    cost: float = 0.0
    tokens: int = 0
    memory_bytes: int = 0


# ------------------------------------------------------------------------------ the event log

#: The events a run keeps in its event log (``run.events/<run_id>``), by the tag they are
#: stored under. Tokens and progress are left out: they are many, and a past run's timeline
#: needs neither.
LOGGED: Final[dict[str, type[RunEvent]]] = {
    "run": RunStateChanged,
    "node": NodeStateChanged,
    "artifact": ArtifactStored,
    "recovery": RecoveryChosen,
    "cost": NodeCost,
}
#: Each logged type's fields after ``run_id`` and ``at``, in the order a row holds them, with
#: the JSON types a row may hold there (a float field takes an integer too).
_FIELDS: Final[dict[type[RunEvent], tuple[tuple[str, tuple[type, ...]], ...]]] = {
    RunStateChanged: (("state", (str,)), ("detail", (str,))),
    NodeStateChanged: (
        ("node_id", (str,)),
        ("state", (str,)),
        ("attempt", (int,)),
        ("model", (str,)),
        ("detail", (str,)),
    ),
    ArtifactStored: (
        ("node_id", (str,)),
        ("port", (str,)),
        ("artifact_id", (int,)),
        ("kind", (str,)),
        ("quality", (float, int, type(None))),
        ("cached", (bool,)),
    ),
    RecoveryChosen: (
        ("node_id", (str,)),
        ("error", (str,)),
        ("error_kind", (str,)),
        ("strategy", (str,)),
        ("reason", (str,)),
        ("attempt", (int,)),
    ),
    NodeCost: (
        ("node_id", (str,)),
        ("attempt", (int,)),
        ("seconds", (float, int)),
        ("cost", (float, int)),
        ("tokens", (int,)),
        ("memory_bytes", (int,)),
    ),
}
#: The version of the log's line format (a reader refuses a newer one by name).
LOG_VERSION: Final = 1

#: Per logged type: its tag, and one getter for ``at`` and its fields (one C call per event
#: rather than a getattr per field: encoding is on the run's own clock).
_ROW: Final = {
    cls: (tag, operator.attrgetter("at", *(f for f, _ in _FIELDS[cls])))
    for tag, cls in LOGGED.items()
}


class EventLogError(ValueError):
    """An event log that cannot be read; the message names the line, the event and the field."""


def encode_session(events: list[RunEvent], started: float) -> bytes:
    """Return one line of a run's event log: the events one process saw of it, in order.

    A line is a JSON object ``{"v": 1, "t0": started, "events": [[tag, µs, field, …], …]}``:
    each event is a row of its tag (a key of :data:`LOGGED`), its time in whole microseconds
    after ``t0`` and its fields in declaration order. Rows, not objects, and integer times: a
    1,000-node run logs 4,000 events, and encoding them is on the run's own clock.
    """
    rows: list[tuple[Any, ...]] = []
    add = rows.append
    for e in events:
        tag, get = _ROW[type(e)]
        values = get(e)
        add((tag, round((values[0] - started) * 1e6), *values[1:]))
    line = json.dumps({"v": LOG_VERSION, "t0": started, "events": rows}, separators=(",", ":"))
    return line.encode() + b"\n"


def decode_log(data: bytes, run_id: str, name: str = "event log") -> list[RunEvent]:
    """Return the events of a run's event log, every line's in turn.

    Raises
    ------
    EventLogError
        Naming ``name``, the line, the event and the field that cannot be read.
    """
    out: list[RunEvent] = []
    for number, raw in enumerate(data.splitlines(), 1):
        if not raw.strip():
            continue
        where = f"{name}, line {number}"
        try:
            line = json.loads(raw)
        except ValueError as e:
            raise EventLogError(f"{where}: not JSON ({e})") from None
        if not isinstance(line, dict):
            raise EventLogError(f"{where}: not an object")
        version = line.get("v")
        if version != LOG_VERSION:
            raise EventLogError(f"{where}: format version {version!r} (this build reads 1)")
        t0, rows = line.get("t0"), line.get("events")
        if isinstance(t0, bool) or not isinstance(t0, int | float):
            raise EventLogError(f"{where}: field 't0' must be a number, got {t0!r}")
        if not isinstance(rows, list):
            raise EventLogError(f"{where}: field 'events' must be a list")
        for index, row in enumerate(rows):
            out.append(_decode_row(row, run_id, float(t0), f"{where}, event {index}"))
    return out


def _decode_row(row: object, run_id: str, t0: float, where: str) -> RunEvent:
    if not isinstance(row, list) or len(row) < 2:
        raise EventLogError(f"{where}: not a row [tag, time, …]")
    tag, us = row[0], row[1]
    cls = LOGGED.get(tag) if isinstance(tag, str) else None
    if cls is None:
        raise EventLogError(f"{where}: unknown event {tag!r}")
    if isinstance(us, bool) or not isinstance(us, int):
        raise EventLogError(f"{where}: its time must be whole microseconds, got {us!r}")
    fields = _FIELDS[cls]
    values = row[2:]
    if len(values) != len(fields):
        raise EventLogError(f"{where}: a {tag!r} event has {len(fields)} fields, not {len(values)}")
    for (fieldname, types), value in zip(fields, values, strict=True):
        # bool is an int in Python; only a bool field takes one
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            raise EventLogError(f"{where}: field {fieldname!r} of a {tag!r} event is {value!r}")
    return cast("RunEvent", cast(Any, cls)(run_id, t0 + us / 1e6, *values))
