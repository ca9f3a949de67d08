"""Exceptions raised by the Pit.

They are defined here, in Python, so the application can catch them without importing the native
module; the binding imports these classes and raises them. Every error kind of the Rust core maps
to exactly one class (``tests/pit/test_errors.py`` checks each mapping).

Each exception carries the message and, in ``subject``, the id it is about (a model, workflow,
node, artifact, lease, request or path), or for :class:`DagCycleError` the nodes of the cycle.
"""

from __future__ import annotations

from collections.abc import Sequence


class PitError(Exception):
    """Base of every Pit error; raised as itself for internal failures (a caught panic).

    Parameters
    ----------
    message
        What went wrong, naming the problem.
    subject
        The id or path the error is about, a sequence of ids, or ``None``.
    """

    subject: str | tuple[str, ...] | None

    def __init__(self, message: str, subject: str | Sequence[str] | None = None) -> None:
        super().__init__(message)
        if subject is None or isinstance(subject, str):
            self.subject = subject
        else:
            self.subject = tuple(subject)

    def __reduce__(self) -> tuple[type[PitError], tuple[str, str | tuple[str, ...] | None]]:
        return (type(self), (str(self), self.subject))


class PitClosedError(PitError):
    """The Pit was closed."""


class InvalidArgumentError(PitError, ValueError):
    """An argument has the right type but a value the Pit refuses."""


class AlreadyExistsError(PitError):
    """An id that must be new is already taken."""


class NotFoundError(PitError, LookupError):
    """An id the Pit does not know."""


class ModelNotFoundError(NotFoundError):
    """No model is registered under this id."""


class LeaseNotFoundError(NotFoundError):
    """The slot lease is unknown or was already released."""


class WorkflowNotFoundError(NotFoundError):
    """No workflow has this id."""


class NodeNotFoundError(NotFoundError):
    """The workflow has no node with this id."""


class ArtifactNotFoundError(NotFoundError):
    """No artifact (version) has this id or name."""


class RequestNotFoundError(NotFoundError):
    """No pending arbitration request has this id."""


class IllegalTransitionError(PitError):
    """A lifecycle or node-state transition that is not allowed from the current state."""


class PoolExhaustedError(PitError):
    """No slot is free right now (non-blocking acquire)."""


class AcquireTimeoutError(PitError, TimeoutError):
    """No slot became free before the timeout."""


class ModelUnavailableError(PitError):
    """The model and every model in its fallback chain are down."""


class MemoryLimitError(PitError):
    """The model cannot fit under the memory limit even after evicting idle models."""


class BudgetExceededError(PitError):
    """The request would exceed an owner's or model's hard budget."""


class DagCycleError(PitError):
    """Adding the edge would close a cycle; ``cycle`` names its nodes in order."""

    @property
    def cycle(self) -> tuple[str, ...]:
        """The nodes of the cycle, first node repeated at the end."""
        s = self.subject
        if s is None:
            return ()
        return (s,) if isinstance(s, str) else s


class IntegrityError(PitError):
    """Stored data failed a hash or authentication check."""


class ArtifactIntegrityError(IntegrityError):
    """An artifact's blob or record does not match its hash; ``subject`` names the artifact."""


class AuditChainError(IntegrityError):
    """The audit trail's hash chain is broken: a record was changed, removed or inserted."""


class LegalHoldError(PitError):
    """The artifact is under legal hold and cannot be deleted by anyone."""


class RetentionError(PitError):
    """A retention policy keeps the artifact until a later time; it cannot be deleted before."""


class EncryptionKeyError(PitError):
    """The encryption key is missing, malformed, unavailable, or not this data directory's."""


class StorageError(PitError):
    """An I/O failure of the data directory."""


class DataDirCorruptError(StorageError):
    """A file of the data directory is damaged; nothing in it was overwritten."""


class ForeignDataDirError(StorageError):
    """The directory is not empty and is not a Pit data directory; nothing was written to it."""


class DataDirLockedError(StorageError):
    """Another process has the data directory open."""


class ArchiveError(PitError):
    """The archive backend failed, or an archived copy did not verify."""


class ReadOnlyError(PitError):
    """A mutation of a Pit opened with ``read_only=True``; nothing was written."""


__all__ = [
    "AcquireTimeoutError",
    "AlreadyExistsError",
    "ArchiveError",
    "ArtifactIntegrityError",
    "ArtifactNotFoundError",
    "AuditChainError",
    "BudgetExceededError",
    "DagCycleError",
    "DataDirCorruptError",
    "DataDirLockedError",
    "EncryptionKeyError",
    "ForeignDataDirError",
    "IllegalTransitionError",
    "IntegrityError",
    "InvalidArgumentError",
    "LeaseNotFoundError",
    "LegalHoldError",
    "MemoryLimitError",
    "ModelNotFoundError",
    "ModelUnavailableError",
    "NodeNotFoundError",
    "NotFoundError",
    "PitClosedError",
    "PitError",
    "PoolExhaustedError",
    "ReadOnlyError",
    "RequestNotFoundError",
    "RetentionError",
    "StorageError",
    "WorkflowNotFoundError",
]
