"""What a run tells its observers (the CLI's progress, the Harmony Board, the timeline).

Events are small frozen values delivered in order on the thread that runs the conductor (the GUI
thread under qasync). ``at`` is wall-clock seconds (``time.time()``), so a timeline can place
spans of one run recorded across a restart (``--resume``) on one axis.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

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
    """A node output was stored in the Artifact Store (or reused from it, ``cached=True``)."""

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
