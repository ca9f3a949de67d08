"""Regression tests for the QA report on the Pit (bugs 1, 2, 4, 5, 6, 7, 8, 13, 14, 15)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from symphony.pit import (
    InvalidArgumentError,
    LeaseNotFoundError,
    Pit,
    PitClosedError,
)
from tests.conftest import TEST_KEY

CHECKPOINT_WRITER = """
import os, sys, threading
from symphony.pit import Pit
pit = Pit.open(sys.argv[1], key=bytes(range(32)), checkpoint_mib=1)
pit.dag.create_workflow("w")
stop = threading.Event()
count = [0]
def write():
    i = 0
    while not stop.is_set():
        pit.pool.set_owner_budget("o", float(i + 1))
        count[0] = i + 1
        i += 1
t = threading.Thread(target=write)
t.start()
for _ in range(100):
    pit.checkpoint()
stop.set()
t.join()
pit.sync()
print(count[0], flush=True)
os.kill(os.getpid(), 9)
"""


def test_checkpoints_racing_a_writer_then_a_crash_reopen(tmp_path: Path) -> None:
    """Bug 1: a checkpoint racing a writer mislabelled the journal segment; a crash bricked it."""
    d = tmp_path / "data"
    proc = subprocess.run(
        [sys.executable, "-c", CHECKPOINT_WRITER, str(d)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    last = int(proc.stdout.split()[-1])
    with Pit.open(d, key=TEST_KEY) as pit:
        assert pit.pool.owner_spend("o")[2] == float(last)


def test_close_wakes_a_blocked_acquire(tmp_path: Path) -> None:
    """Bug 8: close() wakes waiters with PitClosedError; pool calls after close raise."""
    pit = Pit.open(tmp_path / "data", key=TEST_KEY)
    pit.pool.register("m", slots=1)
    held = pit.pool.try_acquire("m")
    result: list[BaseException] = []

    def wait() -> None:
        try:
            pit.pool.acquire("m", timeout=None)
        except BaseException as e:  # noqa: BLE001 - recorded for the assertion below
            result.append(e)

    t = threading.Thread(target=wait)
    t.start()
    while pit.pool.info("m").waiting == 0:
        pass
    pit.close()
    t.join(timeout=60)
    assert not t.is_alive()
    assert len(result) == 1
    assert isinstance(result[0], PitClosedError)
    with pytest.raises(PitClosedError):
        pit.pool.try_acquire("m")
    with pytest.raises(PitClosedError):
        pit.pool.release(held)


def test_a_lease_from_another_pit_or_session_is_refused(tmp_path: Path) -> None:
    """Bug 5: lease ids carry a per-open epoch; a foreign lease frees nothing."""
    d = tmp_path / "data"
    with Pit.open(d, key=TEST_KEY) as pit:
        pit.pool.register("m", slots=1)
        old = pit.pool.try_acquire("m")
    other = Pit.in_memory()
    other.pool.register("m", slots=1)
    foreign = other.pool.try_acquire("m")
    with Pit.open(d, key=TEST_KEY) as pit:
        new = pit.pool.try_acquire("m")
        assert new.id not in (old.id, foreign.id)
        for stale in (old, foreign, old.id):
            with pytest.raises(LeaseNotFoundError, match="not granted by this Pit"):
                pit.pool.release(stale)
        assert pit.pool.leased() == 1
        pit.pool.release(new)
        with pytest.raises(LeaseNotFoundError, match="already released"):
            pit.pool.release(new)
    other.close()


def test_decisions_of_a_batch_stopped_early_survive_a_crash(tmp_path: Path) -> None:
    """Bug 4: decide_batch(acquire=True) that stops early still journals its decisions."""
    d = tmp_path / "data"
    child = f"""
import os
from symphony.pit import Pit
pit = Pit.open({str(d)!r}, key=bytes(range(32)))
pit.pool.register("m", slots=8)
pit.pool.set_owner_budget("o", 1.0)
for _ in range(3):
    pit.arbitration.submit("o", "m", cost=0.6)
b = pit.arbitration.decide_batch(3, acquire=True)
assert len(b) == 2, len(b)
pit.sync()
os.kill(os.getpid(), 9)
"""
    proc = subprocess.run(
        [sys.executable, "-c", child], capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    with Pit.open(d, key=TEST_KEY) as pit:
        assert len(pit.arbitration) == 1
        d3 = pit.arbitration.decide()
        assert d3 is not None
        assert d3.id == 3


def test_archive_dir_inside_the_data_dir_is_refused(tmp_path: Path) -> None:
    """Bug 7: an archive inside (or equal to) the data directory is refused at open."""
    d = tmp_path / "data"
    for archive in (d, d / "journal", d / "sub" / "dir"):
        with pytest.raises(InvalidArgumentError, match="archive_dir"):
            Pit.open(d, key=TEST_KEY, archive_dir=archive)
        assert not d.exists()
    with Pit.open(d, key=TEST_KEY, archive_dir=tmp_path / "archive"):
        pass


def test_in_memory_mutations_after_close_raise() -> None:
    """Bug 15: an in-memory Pit refuses mutations after close(), as a persistent one does."""
    pit = Pit.in_memory()
    pit.pool.register("m", slots=1)
    pit.dag.create_workflow("w")
    pit.arbitration.submit("o", "m")
    pit.close()
    calls: list[Callable[[], object]] = [
        lambda: pit.pool.register("m2"),
        lambda: pit.pool.try_acquire("m"),
        lambda: pit.dag.add_node("w", "n"),
        lambda: pit.dag.create_workflow("w2"),
        lambda: pit.arbitration.submit("o", "m"),
        lambda: pit.arbitration.decide(),
        lambda: pit.stale.sweep(),
        lambda: pit.artifacts.put("a", b"x"),
    ]
    for call in calls:
        with pytest.raises(PitClosedError):
            call()


def test_health_policy_min_samples_above_window_is_refused() -> None:
    """Bug 13: a model that could never be judged is refused."""
    with Pit.in_memory() as pit:
        pit.pool.register("m")
        with pytest.raises(InvalidArgumentError, match="min_samples"):
            pit.pool.set_health_policy("m", window=3, min_samples=10)


def test_eviction_leaves_models_without_memory_loaded() -> None:
    """Bug 14: unloading a model that uses no memory frees nothing, so it is not evicted."""
    with Pit.in_memory(manual_clock=1000.0) as pit:
        pool = pit.pool
        pool.register("remote", memory=0)
        pool.register("a", memory=600)
        pool.register("b", memory=600)
        pool.set_memory_limit(1000)
        for m in ("remote", "a"):
            pool.release(pool.try_acquire(m))
            pit.advance_clock(1.0)
        pool.release(pool.try_acquire("b"))
        assert pool.info("a").state == "idle"
        assert pool.info("remote").state != "idle"


def test_a_sweep_under_pressure_gives_space_back(tmp_path: Path) -> None:
    """Bug 6: deletions under pressure are compacted; the next sweep deletes nothing more."""
    with Pit.open(tmp_path / "data", key=TEST_KEY, manual_clock=1_700_000_000.0) as pit:
        ids = [pit.artifacts.put(f"low{i}", os.urandom(5000)) for i in range(10)]
        for i in ids:
            pit.artifacts.set_quality(i, structure=0, semantics=0, utility=0)
        pit.advance_clock(31 * 86400)
        pit.stale.set_watermarks(high=20_000, low=10_000)
        r = pit.stale.sweep()
        assert 0 < len(r.deleted) < 10
        assert r.local_bytes_after <= 10_000
        assert pit.artifacts.local_bytes() == r.local_bytes_after
        again = pit.stale.sweep()
        assert not again.pressure
        assert len(again.deleted) == 0


def test_release_of_an_out_of_range_id_is_an_invalid_argument() -> None:
    """Bug 16: ``release(-1)`` said "expected Lease or int, got int"."""
    with Pit.in_memory() as pit:
        with pytest.raises(InvalidArgumentError, match="argument 'lease'"):
            pit.pool.release(-1)
        with pytest.raises(TypeError, match="argument 'lease'"):
            pit.pool.release("1")  # type: ignore[arg-type]


@pytest.mark.parametrize("timeout", [float("nan"), -1.0, float("inf")])
def test_acquire_refuses_a_bad_timeout_even_when_a_slot_is_free(timeout: float) -> None:
    """Bug 16: a bad timeout was refused only when the acquire had to wait."""
    with Pit.in_memory() as pit:
        pit.pool.register("m", slots=1)
        with pytest.raises(InvalidArgumentError, match="timeout"):
            pit.pool.acquire("m", timeout=timeout)
        assert pit.pool.leased() == 0


def test_out_of_range_ints_are_invalid_arguments_naming_the_argument() -> None:
    """Bug 16: negative or too large ints raised a bare OverflowError."""
    with Pit.in_memory() as pit:
        pit.pool.register("m")
        pit.dag.create_workflow("w")
        calls: list[tuple[str, Callable[[], object]]] = [
            ("slots", lambda: pit.pool.register("x", slots=-1)),
            ("slots", lambda: pit.pool.register("x", slots=2**40)),
            ("memory", lambda: pit.pool.register("x", memory=-1)),
            ("tokens", lambda: pit.pool.release(1, tokens=-1)),
            ("limit", lambda: pit.pool.set_memory_limit(-1)),
            ("index", lambda: pit.dag.node_name("w", -1)),
            ("max", lambda: pit.arbitration.decide_batch(-1)),
            ("priority", lambda: pit.arbitration.submit("o", "m", priority=2**40)),
            ("high", lambda: pit.stale.set_watermarks(-1, 0)),
            ("max", lambda: pit.stale.notifications(-1)),
            ("after", lambda: pit.artifacts.ids_after(-1)),
        ]
        for arg, call in calls:
            with pytest.raises(InvalidArgumentError, match="expected an integer") as info:
                call()
            assert f"while processing '{arg}'" in getattr(info.value, "__notes__", [])
        pit.pool.set_memory_limit(None)
        assert pit.stale.notifications(None) == []
