"""``Pit.open(..., read_only=True)``: inspect a Pit without writing anything to its folder."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from symphony.pit import (
    DataDirLockedError,
    ForeignDataDirError,
    Pit,
    PitError,
    ReadOnlyError,
    StorageError,
)
from tests.conftest import TEST_KEY
from tests.conftest import folder_listing as listing


def make_pit(d: Path) -> None:
    """A Pit with a model and a few artifacts, some only in the journal (no checkpoint)."""
    pit = Pit.open(d, key=TEST_KEY)
    pit.pool.register("m1")
    pit.artifacts.put("a", b"first")
    pit.checkpoint()
    for i in range(5):
        pit.artifacts.put(f"b{i}", bytes([i]) * 100)
    pit.close()


@contextmanager
def immutable(d: Path) -> Iterator[None]:
    """``chattr +i`` on ``d`` and everything in it for the duration; skips when unavailable."""
    chattr = shutil.which("chattr")
    if chattr is None:
        pytest.skip("chattr is not available")
    r = subprocess.run([chattr, "-R", "+i", str(d)], capture_output=True, text=True, check=False)
    try:
        if r.returncode != 0:
            pytest.skip(f"chattr +i failed: {r.stderr.strip()}")
        yield
    finally:
        subprocess.run([chattr, "-R", "-i", str(d)], capture_output=True, check=False)


def test_read_only_open_leaves_every_byte_and_refuses_mutations(tmp_path: Path) -> None:
    d = tmp_path / "pit"
    make_pit(d)
    # as left by a folder copied without them: a read-only open must not make them
    (d / "pit.lock").unlink()
    shutil.rmtree(d / "archive")
    before = listing(d)
    with Pit.open(d, key=TEST_KEY, read_only=True) as pit:
        assert pit.read_only
        assert len(pit.pool) == 1
        assert len(pit.artifacts) == 6
        assert pit.artifacts.verify() == 6
        with pytest.raises(ReadOnlyError, match="opened read-only"):
            pit.pool.register("m2")
        with pytest.raises(ReadOnlyError, match="opened read-only"):
            pit.artifacts.put("c", b"new")
        with pytest.raises(ReadOnlyError, match="opened read-only"):
            pit.artifacts.put("big", b"x" * (2 << 20), durable=True)
        with pytest.raises(ReadOnlyError):
            pit.checkpoint()
        assert len(pit.pool) == 1
        assert len(pit.artifacts) == 6
    assert issubclass(ReadOnlyError, PitError)
    assert listing(d) == before
    with Pit.open(d, key=TEST_KEY) as pit:  # a normal open is unaffected
        assert not pit.read_only
        assert len(pit.artifacts) == 6


def test_read_only_open_of_an_immutable_folder(tmp_path: Path) -> None:
    d = tmp_path / "pit"
    make_pit(d)
    before = listing(d)
    with immutable(d):
        with Pit.open(d, key=TEST_KEY, read_only=True) as pit:
            assert len(pit.artifacts) == 6
            with pytest.raises(ReadOnlyError):
                pit.artifacts.put("c", b"new")
    assert listing(d) == before


def test_read_only_open_needs_an_existing_pit_and_creates_no_key(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    key_file = tmp_path / "k"
    with pytest.raises(StorageError, match="no Pit there"):
        Pit.open(missing, key_file=key_file, read_only=True)
    assert not missing.exists()
    assert not key_file.exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(StorageError, match="no Pit there"):
        Pit.open(empty, key_file=key_file, read_only=True)
    assert list(empty.iterdir()) == []
    (empty / "notes.txt").write_text("mine")
    with pytest.raises(ForeignDataDirError):
        Pit.open(empty, key_file=key_file, read_only=True)
    assert not key_file.exists()


def test_read_only_open_is_refused_while_a_writer_has_the_pit(tmp_path: Path) -> None:
    d = tmp_path / "pit"
    make_pit(d)
    with Pit.open(d, key=TEST_KEY):
        with pytest.raises(DataDirLockedError, match="in use by another process"):
            Pit.open(d, key=TEST_KEY, read_only=True)
    with Pit.open(d, key=TEST_KEY, read_only=True), Pit.open(d, key=TEST_KEY, read_only=True):
        # readers share the lock, a writer waits for them
        with pytest.raises(DataDirLockedError):
            Pit.open(d, key=TEST_KEY)
