"""P4: Artifact Store metadata and small puts.

Targets:

* ``P4-ack``: an acknowledged (not yet durable) artifact metadata update <= 2 us. ``symphony``
  is a metadata-only update (``set_quality``: validated, journaled, applied, observer notified)
  on a persistent Pit; ``symphony:put`` is a whole small-artifact put (128 bytes: BLAKE3,
  AES-256-GCM with a fresh nonce, segment append, journal record with the object inlined,
  version + audit record). Baseline: ``baseline:sqlite-wal`` — one autocommit UPDATE of a row's
  score in SQLite WAL mode with ``synchronous=NORMAL`` (no fsync per commit, like ours), and
  ``baseline:sqlite-wal-insert`` — one autocommit INSERT of a 128-byte blob row.
* ``P4-batch-durable``: >= 300k small artifacts/s durable in batches. Each round stores 10,000
  artifacts of 128 bytes with one ``put_many(..., durable=True)`` (one fdatasync). Baseline:
  SQLite WAL, ``synchronous=NORMAL``, ``executemany`` of the same rows in one transaction and
  commit.
* ``P4-single-durable``: a single durable put <= 1.3x one fdatasync measured in the same run.
  ``symphony`` is ``put(..., durable=True)`` of one 128-byte artifact; ``baseline:fdatasync``
  writes a 128-byte record to a file in the same directory and calls ``os.fdatasync``;
  ``baseline:sqlite-full`` is one INSERT + commit with ``synchronous=FULL``. ``extra_info``
  records the per-call cost and its ratio to an fdatasync timed in the same test.

Per-operation costs are reported in ``extra_info`` (``us_per_op``, ``ops_per_s``).
"""

from __future__ import annotations

import gc
import os
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from symphony.pit import Pit

TEST_KEY = bytes(range(32))
REC = 128
N_ACK = 5_000
N_BATCH = 10_000
N_DURABLE = 40

TARGET_ACK = "P4: acknowledged artifact metadata update <= 2 us"
TARGET_BATCH = "P4: >= 300k artifacts/s durable, batched (one sync per batch)"
TARGET_SINGLE = "P4: single durable put <= 1.3x one fdatasync (same run)"


def payloads(n: int, salt: int) -> list[bytes]:
    return [(b"%08d-%08d:" % (salt, i)).ljust(REC, b"x") for i in range(n)]


@pytest.fixture
def pit(tmp_path: Path) -> Iterator[Pit]:
    p = Pit.open(tmp_path / "pit", key=TEST_KEY)
    yield p
    p.close()


@pytest.fixture
def sqlite_db(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    db = sqlite3.connect(tmp_path / "baseline.db", isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("CREATE TABLE artifacts (id INTEGER PRIMARY KEY, name TEXT, data BLOB, score REAL)")
    yield db
    db.close()


def fdatasync_cost(directory: Path, n: int = 20) -> float:
    """Seconds per (write 128 bytes + fdatasync) in `directory`."""
    path = directory / "fdatasync.probe"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        t = time.perf_counter()
        for _ in range(n):
            os.write(fd, b"r" * REC)
            os.fdatasync(fd)
        return (time.perf_counter() - t) / n
    finally:
        os.close(fd)


def per_op(benchmark: pytest.FixtureRequest, n: int) -> None:
    stats = benchmark.stats.stats  # type: ignore[attr-defined]
    benchmark.extra_info["us_per_op"] = stats.min / n * 1e6  # type: ignore[attr-defined]
    benchmark.extra_info["us_per_op_mean"] = stats.mean / n * 1e6  # type: ignore[attr-defined]
    benchmark.extra_info["ops_per_s"] = n / stats.min  # type: ignore[attr-defined]


@pytest.mark.benchmark(group="P4-ack")
@pytest.mark.parametrize(
    "case", ["symphony", "symphony:put", "baseline:sqlite-wal", "baseline:sqlite-wal-insert"]
)
def test_p4_ack(
    benchmark: pytest.FixtureRequest, case: str, pit: Pit, sqlite_db: sqlite3.Connection
) -> None:
    a = pit.artifacts
    benchmark.extra_info["target"] = TARGET_ACK  # type: ignore[attr-defined]
    benchmark.extra_info["record_bytes"] = REC  # type: ignore[attr-defined]
    salt = iter(range(1_000_000))
    if case == "symphony":
        ids = a.put_many([(f"q{i}", d) for i, d in enumerate(payloads(N_ACK, 0))])
        scores = [((i % 100) / 100.0) for i in range(N_ACK)]
        set_quality = a.set_quality

        def run() -> None:
            for i, s in zip(ids, scores, strict=True):
                set_quality(i, semantics=s)

        benchmark.pedantic(run, rounds=10, iterations=1)  # type: ignore[attr-defined]
    elif case == "symphony:put":
        put = a.put

        def setup() -> tuple[tuple[list[bytes]], dict[str, object]]:
            return (payloads(N_ACK, next(salt)),), {}

        def run_put(data: list[bytes]) -> None:
            for d in data:
                put("small", d)

        benchmark.pedantic(run_put, setup=setup, rounds=10, iterations=1)  # type: ignore[attr-defined]
    elif case == "baseline:sqlite-wal":
        sqlite_db.executemany(
            "INSERT INTO artifacts (id, name, data, score) VALUES (?, ?, ?, 0)",
            [(i, f"q{i}", d) for i, d in enumerate(payloads(N_ACK, 0))],
        )
        ex = sqlite_db.execute

        def run_sql() -> None:
            for i in range(N_ACK):
                ex("UPDATE artifacts SET score = ? WHERE id = ?", ((i % 100) / 100.0, i))

        benchmark.pedantic(run_sql, rounds=10, iterations=1)  # type: ignore[attr-defined]
    else:
        ex = sqlite_db.execute

        def setup_sql() -> tuple[tuple[list[bytes]], dict[str, object]]:
            return (payloads(N_ACK, next(salt)),), {}

        def run_ins(data: list[bytes]) -> None:
            for d in data:
                ex("INSERT INTO artifacts (name, data, score) VALUES ('small', ?, 0)", (d,))

        benchmark.pedantic(run_ins, setup=setup_sql, rounds=10, iterations=1)  # type: ignore[attr-defined]
    per_op(benchmark, N_ACK)


@pytest.mark.benchmark(group="P4-batch-durable")
@pytest.mark.parametrize("case", ["symphony", "baseline:sqlite-wal"])
def test_p4_batch_durable(
    benchmark: pytest.FixtureRequest, case: str, pit: Pit, sqlite_db: sqlite3.Connection
) -> None:
    benchmark.extra_info["target"] = TARGET_BATCH  # type: ignore[attr-defined]
    benchmark.extra_info["record_bytes"] = REC  # type: ignore[attr-defined]
    benchmark.extra_info["batch"] = N_BATCH  # type: ignore[attr-defined]
    salt = iter(range(1_000_000))

    def setup() -> tuple[tuple[list[tuple[str, bytes]]], dict[str, object]]:
        s = next(salt)
        gc.collect()
        return ([(f"b{s}-{i}", d) for i, d in enumerate(payloads(N_BATCH, s))],), {}

    if case == "symphony":
        put_many = pit.artifacts.put_many

        def run(items: list[tuple[str, bytes]]) -> None:
            put_many(items, durable=True)

    else:

        def run(items: list[tuple[str, bytes]]) -> None:
            sqlite_db.execute("BEGIN")
            sqlite_db.executemany(
                "INSERT INTO artifacts (name, data, score) VALUES (?, ?, 0)", items
            )
            sqlite_db.execute("COMMIT")

    benchmark.pedantic(run, setup=setup, rounds=10, iterations=1)  # type: ignore[attr-defined]
    per_op(benchmark, N_BATCH)


@pytest.mark.benchmark(group="P4-single-durable")
@pytest.mark.parametrize("case", ["symphony", "baseline:fdatasync", "baseline:sqlite-full"])
def test_p4_single_durable(
    benchmark: pytest.FixtureRequest,
    case: str,
    pit: Pit,
    sqlite_db: sqlite3.Connection,
    tmp_path: Path,
) -> None:
    benchmark.extra_info["target"] = TARGET_SINGLE  # type: ignore[attr-defined]
    benchmark.extra_info["record_bytes"] = REC  # type: ignore[attr-defined]
    salt = iter(range(1_000_000))

    def setup() -> tuple[tuple[list[bytes]], dict[str, object]]:
        return (payloads(N_DURABLE, next(salt)),), {}

    if case == "symphony":
        put = pit.artifacts.put

        def run(data: list[bytes]) -> None:
            for d in data:
                put("durable", d, durable=True)

    elif case == "baseline:fdatasync":
        fd = os.open(tmp_path / "pit" / "probe.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND)

        def run(data: list[bytes]) -> None:
            for d in data:
                os.write(fd, d)
                os.fdatasync(fd)

    else:
        sqlite_db.execute("PRAGMA synchronous=FULL")

        def run(data: list[bytes]) -> None:
            for d in data:
                sqlite_db.execute(
                    "INSERT INTO artifacts (name, data, score) VALUES ('d', ?, 0)", (d,)
                )

    before = fdatasync_cost(tmp_path / "pit")
    benchmark.pedantic(run, setup=setup, rounds=8, iterations=1)  # type: ignore[attr-defined]
    after = fdatasync_cost(tmp_path / "pit")
    if case == "baseline:fdatasync":
        os.close(fd)
    per_op(benchmark, N_DURABLE)
    sync = (before + after) / 2
    stats = benchmark.stats.stats  # type: ignore[attr-defined]
    benchmark.extra_info["fdatasync_us_same_run"] = sync * 1e6  # type: ignore[attr-defined]
    benchmark.extra_info["ratio_to_fdatasync"] = stats.median / N_DURABLE / sync  # type: ignore[attr-defined]
