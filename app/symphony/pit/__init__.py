"""The Pit: Symphony's five infrastructure components, in Rust, in this process.

>>> from symphony.pit import Pit
>>> pit = Pit.in_memory()
>>> pit.pool, pit.dag, pit.artifacts, pit.arbitration, pit.stale  # doctest: +ELLIPSIS
(...)
>>> pit.close()

``Pit.open(data_dir)`` is persistent: reopening restores every acknowledged change. Durability
promises are spelled out per call in ``docs/pit.md``: a call that returns has been *acknowledged*
(in memory, handed to the OS within ``flush_interval_ms``); ``pit.sync()`` or ``durable=True``
makes it *durable* (on disk).
"""

from __future__ import annotations

import os
from types import TracebackType
from typing import Self

from symphony.pit import _native
from symphony.pit._native import (
    ArbitrationEngine,
    ArtifactStore,
    DagTracker,
    PoolManager,
    StaleManager,
)
from symphony.pit.errors import *  # noqa: F403  (the errors are part of this package's API)
from symphony.pit.errors import ForeignDataDirError, PitClosedError, PitError, StorageError
from symphony.pit.errors import __all__ as _errors_all
from symphony.pit.keys import resolve_key


class Pit:
    """The five components over one shared state.

    Use :meth:`open` (persistent) or :meth:`in_memory`; close with :meth:`close` or a ``with``
    block. The components are plain attributes: ``pit.pool``, ``pit.dag``, ``pit.artifacts``,
    ``pit.arbitration``, ``pit.stale``.
    """

    __slots__ = ("_native", "arbitration", "artifacts", "dag", "pool", "stale")

    pool: PoolManager
    dag: DagTracker
    artifacts: ArtifactStore
    arbitration: ArbitrationEngine
    stale: StaleManager

    def __init__(self, native: _native.Pit) -> None:
        if not isinstance(native, _native.Pit):
            raise TypeError(
                "use Pit.open(data_dir) or Pit.in_memory() to make a Pit, "
                f"not Pit({type(native).__name__})"
            )
        self._native = native
        self.pool = native.pool
        self.dag = native.dag
        self.artifacts = native.artifacts
        self.arbitration = native.arbitration
        self.stale = native.stale

    @classmethod
    def open(
        cls,
        data_dir: str | os.PathLike[str],
        *,
        key: bytes | None = None,
        key_file: str | os.PathLike[str] | None = None,
        archive_dir: str | os.PathLike[str] | None = None,
        manual_clock: float | None = None,
        flush_interval_ms: float = 2.0,
        checkpoint_mib: int = 128,
        read_only: bool = False,
    ) -> Self:
        """Open (or create) a persistent Pit in ``data_dir``.

        Parameters
        ----------
        data_dir
            The data directory. It is created when missing; an existing one must be a Pit's
            (else :class:`ForeignDataDirError`) and undamaged (else :class:`DataDirCorruptError`);
            in both cases nothing in it is written. A path that is not a folder is refused
            before anything else (see :func:`check_data_dir`).
        key
            The artifact encryption key (32 bytes). Default: ``key_file``, then the
            ``SYMPHONY_PIT_KEY_FILE`` environment variable, then the OS keyring.
        key_file
            A key file (64 hex characters, mode 0600), created when missing.
        archive_dir
            Where the Stale Manager archives artifacts (default ``data_dir/archive``).
        manual_clock
            Start a manual clock at this time (seconds since the epoch) instead of the system
            clock; for simulations and tests (:meth:`advance_clock`).
        flush_interval_ms
            How often acknowledged changes are handed to the OS.
        checkpoint_mib
            Journal growth after which a checkpoint is written in the background.
        read_only
            Inspect an existing Pit without writing anything to ``data_dir``: no lock file,
            archive folder, journal repair or checkpoint, and no key file or keyring entry is
            created. Files are opened for reading only (an immutable folder works). A folder
            with no Pit is refused (:class:`StorageError`, or :class:`ForeignDataDirError`);
            while another process has the Pit open it is refused
            (:class:`DataDirLockedError`). Every mutation raises :class:`ReadOnlyError`.

        Returns
        -------
        Pit
            The open Pit.
        """
        if not isinstance(data_dir, str | os.PathLike):
            raise TypeError(f"argument 'data_dir': expected a path, got {type(data_dir).__name__}")
        check_data_dir(data_dir)
        if read_only and key is None and not os.path.isfile(os.path.join(data_dir, "PIT")):
            # No Pit there: the native open refuses it before the key is used, and resolving
            # one would create a key (file or keyring entry) for a folder a read-only open
            # must leave alone.
            resolved = bytes(32)
        else:
            resolved = resolve_key(data_dir, key, key_file)
        return cls(
            _native.Pit.open(
                os.fspath(data_dir),
                resolved,
                archive_dir=None if archive_dir is None else os.fspath(archive_dir),
                manual_clock=manual_clock,
                flush_interval_ms=flush_interval_ms,
                checkpoint_mib=checkpoint_mib,
                read_only=bool(read_only),
            )
        )

    @classmethod
    def in_memory(
        cls,
        *,
        key: bytes | None = None,
        archive_dir: str | os.PathLike[str] | None = None,
        manual_clock: float | None = None,
    ) -> Self:
        """Make a Pit with no disk (tests, benchmarks, throw-away runs).

        Parameters
        ----------
        key
            Encryption key; random by default.
        archive_dir
            A directory for the Stale Manager's archive; in memory by default.
        manual_clock
            Start a manual clock at this time (seconds since the epoch).

        Returns
        -------
        Pit
            The Pit.
        """
        return cls(
            _native.Pit.in_memory(
                key=key,
                archive_dir=None if archive_dir is None else os.fspath(archive_dir),
                manual_clock=manual_clock,
            )
        )

    @property
    def data_dir(self) -> str | None:
        """The data directory, or ``None`` for an in-memory Pit."""
        d = self._native.data_dir
        return None if d is None else os.fspath(d)

    @property
    def read_only(self) -> bool:
        """Whether the Pit was opened with ``read_only=True`` (every mutation is refused)."""
        return self._native.read_only

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._native.closed

    def now(self) -> float:
        """Return the Pit clock's time in seconds since the epoch."""
        return self._native.now()

    def advance_clock(self, seconds: float) -> float:
        """Move a manual clock forward; return the new time.

        Parameters
        ----------
        seconds
            How far to move it.

        Returns
        -------
        float
            The new time.
        """
        return self._native.advance_clock(seconds)

    def sync(self) -> None:
        """Make every acknowledged change durable (one group-committed ``fdatasync``)."""
        self._check_open()
        self._native.sync()

    def checkpoint(self) -> None:
        """Snapshot every component and drop the journal segments the snapshot covers."""
        self._check_open()
        self._native.checkpoint()

    def close(self) -> None:
        """Flush, checkpoint and close; later mutations raise :class:`PitClosedError`."""
        self._native.close()

    def _check_open(self) -> None:
        if self._native.closed:
            raise PitClosedError("the Pit is closed")

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return repr(self._native)


def check_data_dir(data_dir: str | os.PathLike[str]) -> None:
    """Refuse a data directory path that is not, and cannot become, a folder.

    :meth:`Pit.open` calls it before it looks for the key, so a file given as the data directory
    is named as such (not "File exists" or "not a Pit data directory") and nothing is created.
    Callers that prepare the folder themselves call it first for the same message.

    Parameters
    ----------
    data_dir
        The data directory; a missing one passes if it can be created (its nearest existing
        parent is a folder).

    Raises
    ------
    ForeignDataDirError
        ``data_dir`` exists and is not a folder (a file, a broken symbolic link, …).
    StorageError
        A parent of ``data_dir`` is not a folder, so it cannot be created.
    """
    path = os.fspath(data_dir)
    if os.path.lexists(path):
        if not os.path.isdir(path):
            raise ForeignDataDirError(f"{path} {_not_a_folder(path)}", path)
        return
    parent = os.path.dirname(os.path.abspath(path))
    while not os.path.lexists(parent):
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent):
        raise StorageError(f"{path} cannot be created: {parent} {_not_a_folder(parent)}", path)


def _not_a_folder(path: str) -> str:
    if os.path.isfile(path):
        return "is a file, not a folder"
    if os.path.islink(path) and not os.path.exists(path):
        return "is a broken symbolic link, not a folder"
    return "is not a folder"


__all__ = [
    "ArbitrationEngine",
    "ArtifactStore",
    "DagTracker",
    "Pit",
    "PitError",
    "PoolManager",
    "StaleManager",
    "check_data_dir",
    *_errors_all,
]
