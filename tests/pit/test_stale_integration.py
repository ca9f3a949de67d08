"""Stale Manager through the real Artifact Store (runs once the store is merged).

The store's Python calls used here (``put``, ``get`` and a legal-hold call) are the ones the
Artifact Store exposes after the merge; ``_put`` and ``_hold`` are the only places that name them.
"""

from __future__ import annotations

import gc
from pathlib import Path
from typing import Any

import pytest

from symphony.pit import ArchiveError, Pit

DAY = 86_400.0
TEST_KEY = bytes(range(32))


def _store_is_real() -> bool:
    import symphony.pit as pit_module

    return hasattr(pit_module.ArtifactStore, "put")


needs_store = pytest.mark.skipif(
    not _store_is_real(), reason="needs the real Artifact Store (merged separately)"
)


def _put(pit: Any, data: bytes, kind: str) -> int:
    return int(pit.artifacts.put(data, kind=kind))


def _hold(pit: Any, aid: int) -> None:
    for name in ("hold", "legal_hold", "set_legal_hold", "place_hold"):
        f = getattr(pit.artifacts, name, None)
        if f is not None:
            try:
                f(aid, True)
            except TypeError:
                f(aid)
            return
    pytest.fail("the Artifact Store has no legal-hold call this test knows")


def _two_kinds(pit: Any) -> tuple[int, int]:
    # Two kinds: diversity 0.5 each, value 0.05 (no quality, reuse or runs yet).
    a = _put(pit, b"a" * 5000, "prompt")
    b = _put(pit, b"b" * 7000, "code")
    return a, b


@needs_store
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


@needs_store
def test_pressure_deletes_low_value_and_skips_held(pit: Any) -> None:
    a, b = _two_kinds(pit)
    c = _put(pit, b"c" * 9000, "prompt")
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


@needs_store
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


@needs_store
def test_in_memory_archive_dir(tmp_path: Path) -> None:
    with Pit.in_memory(archive_dir=tmp_path / "arch", manual_clock=1e6) as p:
        a, _ = _two_kinds(p)
        p.stale.configure(medium_value=0.04, high_value=0.5)
        p.advance_clock(31 * DAY)
        assert a in p.stale.sweep().archived
        assert any(k == p.stale.archive_key(a) for k, _ in p.stale.archive_objects("artifacts/"))
