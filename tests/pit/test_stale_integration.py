"""The Stale Manager through the real Artifact Store and DAG Tracker."""

from __future__ import annotations

import gc
import random
from pathlib import Path
from typing import Any

import pytest

from symphony.pit import ArchiveError, Pit

DAY = 86_400.0
TEST_KEY = bytes(range(32))


def _put(pit: Any, data: bytes, kind: str) -> int:
    # Each artifact gets its own name: the store keeps one version history per name.
    name = f"{kind}-{len(pit.artifacts)}"
    return int(pit.artifacts.put(name, data, kind=kind, actor="test"))


def _hold(pit: Any, aid: int) -> None:
    pit.artifacts.hold(aid, actor="legal", reason="investigation")


def _two_kinds(pit: Any) -> tuple[int, int]:
    # Two kinds: diversity 0.5 each, value 0.05 (no quality, reuse or runs yet).
    a = _put(pit, b"a" * 5000, "prompt")
    b = _put(pit, b"b" * 7000, "code")
    return a, b


def test_archive_flow_verifies_then_releases_and_restores(pit: Any) -> None:
    a, b = _two_kinds(pit)
    assert len(pit.stale) == 2
    pit.stale.configure(medium_value=0.04, high_value=0.5)
    young = pit.stale.sweep()
    assert young.archive_candidates == []
    assert young.archived == []
    pit.advance_clock(31 * DAY)
    dry = pit.stale.sweep(dry_run=True)
    assert sorted(dry.archive_candidates) == [a, b]
    assert pit.stale.archived() == []
    rep = pit.stale.sweep()
    assert sorted(rep.archived) == [a, b]
    key = pit.stale.archive_key(a)
    assert key is not None
    size, checksum = pit.stale.verify_archive_object(key)
    assert size > 0
    assert len(checksum) == 64
    assert pit.stale.classify(a).archived
    kinds = [n.kind for n in pit.stale.notifications()]
    assert kinds.count("archived") == 2
    pit.stale.restore(a)
    assert not pit.stale.classify(a).archived
    assert pit.artifacts.get(a) == b"a" * 5000


def test_pressure_deletes_low_value_and_skips_held(pit: Any) -> None:
    # Incompressible data: the manager estimates freed space from plaintext sizes (erring on
    # the side of deleting less), so compressible test data would stop it after one deletion.
    rng = random.Random(5)
    a = _put(pit, rng.randbytes(5000), "prompt")
    b = _put(pit, rng.randbytes(7000), "code")
    c = _put(pit, rng.randbytes(9000), "prompt")
    _hold(pit, c)
    pit.advance_clock(31 * DAY)
    pit.stale.set_watermarks(1, 0)
    rep = pit.stale.sweep()
    assert rep.pressure
    assert a in rep.deleted
    assert b in rep.deleted
    assert c not in rep.deleted
    assert (c, "held") in rep.skipped
    assert len(pit.stale) == 1


def test_archive_records_and_facts_survive_reopen(tmp_path: Path) -> None:
    data = tmp_path / "pit"
    p = Pit.open(data, key=TEST_KEY, manual_clock=1e6)
    a, _ = _two_kinds(p)
    p.stale.configure(medium_value=0.04, high_value=0.5)
    p.advance_clock(31 * DAY)
    assert a in p.stale.sweep().archived
    key = p.stale.archive_key(a)
    p.close()
    del p
    gc.collect()  # the data directory's lock goes with the last reference to the Pit
    with Pit.open(data, key=TEST_KEY, manual_clock=1e6 + 31 * DAY) as q:
        assert q.stale.archive_key(a) == key
        assert q.stale.classify(a).archived
        assert len(q.stale) == 2
        # A damaged archive copy is refused on restore.
        path = data / "archive" / str(key)
        raw = bytearray(path.read_bytes())
        raw[-1] ^= 0xFF
        path.write_bytes(bytes(raw))
        with pytest.raises(ArchiveError):
            q.stale.restore(a)


def test_in_memory_archive_dir(tmp_path: Path) -> None:
    with Pit.in_memory(archive_dir=tmp_path / "arch", manual_clock=1e6) as p:
        a, _ = _two_kinds(p)
        p.stale.configure(medium_value=0.04, high_value=0.5)
        p.advance_clock(31 * DAY)
        assert a in p.stale.sweep().archived
        assert any(k == p.stale.archive_key(a) for k, _ in p.stale.archive_objects("artifacts/"))


def test_artifacts_referenced_by_a_workflow_are_never_deleted(pit: Any) -> None:
    rng = random.Random(9)
    kept = _put(pit, rng.randbytes(6000), "prompt")
    loose = _put(pit, rng.randbytes(6000), "prompt")
    pit.dag.create_workflow("wf")
    pit.dag.add_node("wf", "summarize")
    assert pit.dag.bind_artifact("wf", "summarize", kept)
    pit.advance_clock(31 * DAY)
    pit.stale.set_watermarks(1, 0)
    rep = pit.stale.sweep()
    assert loose in rep.deleted
    assert kept not in rep.deleted
    assert (kept, "referenced") in rep.skipped
    assert len(pit.artifacts.get(kept)) == 6000  # a read makes it hot for 7 days
    pit.dag.drop_workflow("wf")  # the reference ends with the workflow
    assert kept not in pit.stale.sweep().deleted
    pit.advance_clock(8 * DAY)
    assert kept in pit.stale.sweep().deleted
