"""Opening, closing and protecting a Pit data directory."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from symphony.pit import (
    DataDirCorruptError,
    DataDirLockedError,
    EncryptionKeyError,
    ForeignDataDirError,
    InvalidArgumentError,
    Pit,
    PitClosedError,
)
from tests.conftest import TEST_KEY


def tree_digest(root: Path) -> dict[str, str]:
    """Every file under ``root`` with the hash of its bytes (to prove nothing was written)."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_in_memory_has_the_five_components() -> None:
    with Pit.in_memory() as pit:
        names = [
            type(c).__name__ for c in (pit.pool, pit.dag, pit.artifacts, pit.arbitration, pit.stale)
        ]
        assert names == [
            "PoolManager",
            "DagTracker",
            "ArtifactStore",
            "ArbitrationEngine",
            "StaleManager",
        ]
        assert pit.data_dir is None
        assert not pit.closed
    assert pit.closed


def test_open_creates_a_marked_directory_and_reopens(tmp_path: Path) -> None:
    d = tmp_path / "data"
    with Pit.open(d, key=TEST_KEY) as pit:
        assert pit.data_dir == str(d)
        pit.sync()
        pit.checkpoint()
    manifest = (d / "PIT").read_text()
    assert manifest.startswith("symphony-pit\nformat=2\nkey_id=")
    assert TEST_KEY.hex() not in manifest
    with Pit.open(d, key=TEST_KEY):
        pass


def test_a_format_1_directory_opens_and_is_marked_format_2(tmp_path: Path) -> None:
    d = tmp_path / "data"
    with Pit.open(d, key=TEST_KEY) as pit:
        x = pit.artifacts.put("x", b"kept", actor="alice")
    # Format 1 differs only in where the audit trail lives, which a format-2 build reads either
    # way; what matters is that the manifest is upgraded once the directory has opened.
    manifest = d / "PIT"
    manifest.write_text(manifest.read_text().replace("format=2", "format=1"))
    with Pit.open(d, key=TEST_KEY) as pit:
        assert pit.artifacts.get(x) == b"kept"
        assert manifest.read_text().startswith("symphony-pit\nformat=2\n")


def test_close_is_idempotent_and_later_calls_fail(tmp_path: Path) -> None:
    pit = Pit.open(tmp_path / "p", key=TEST_KEY)
    pit.close()
    pit.close()
    with pytest.raises(PitClosedError):
        pit.sync()
    with pytest.raises(PitClosedError):
        pit.checkpoint()


def test_foreign_directory_is_refused_untouched(tmp_path: Path) -> None:
    d = tmp_path / "photos"
    d.mkdir()
    (d / "holiday.jpg").write_bytes(b"\xff\xd8 not ours")
    before = tree_digest(d)
    with pytest.raises(ForeignDataDirError, match="not a Pit data directory") as info:
        Pit.open(d, key=TEST_KEY)
    assert info.value.subject == str(d)
    assert tree_digest(d) == before


def test_a_file_where_the_directory_should_be_is_refused(tmp_path: Path) -> None:
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(ForeignDataDirError):
        Pit.open(f, key=TEST_KEY)
    assert f.read_text() == "x"


@pytest.mark.parametrize(
    ("name", "damage", "match"),
    [
        ("PIT", lambda b: b"not a manifest\n", "does not start with 'symphony-pit'"),
        ("PIT", lambda b: b.replace(b"format=2", b"format=x"), "format is not a number"),
        ("PIT", lambda b: b.replace(b"format=2", b"format=99"), "format version 99"),
        ("PIT", lambda b: b.replace(b"format=2", b"format=0"), "format 0 does not exist"),
        ("snapshot.bin", lambda b: b[:-1] + bytes([b[-1] ^ 1]), "checksum"),
        ("snapshot.bin", lambda b: b"garbage", "not a Pit snapshot"),
    ],
)
def test_damaged_directory_is_refused_untouched(
    tmp_path: Path, name: str, damage: object, match: str
) -> None:
    d = tmp_path / "p"
    Pit.open(d, key=TEST_KEY).close()  # close() writes a snapshot
    target = d / name
    target.write_bytes(damage(target.read_bytes()))  # type: ignore[operator]
    before = tree_digest(d)
    with pytest.raises(DataDirCorruptError, match=match):
        Pit.open(d, key=TEST_KEY)
    assert tree_digest(d) == before


def test_damaged_journal_is_refused_untouched(tmp_path: Path) -> None:
    d = tmp_path / "p"
    Pit.open(d, key=TEST_KEY).close()
    seg = next((d / "journal").iterdir())
    # A stray file in the journal directory is not silently ignored.
    (d / "journal" / "notes.txt").write_text("hello")
    before = tree_digest(d)
    with pytest.raises(DataDirCorruptError, match="unexpected file in the journal directory"):
        Pit.open(d, key=TEST_KEY)
    assert tree_digest(d) == before
    (d / "journal" / "notes.txt").unlink()
    seg.write_bytes(b"XXXXXXXX" + seg.read_bytes()[8:])
    before = tree_digest(d)
    with pytest.raises(DataDirCorruptError, match="foreign header"):
        Pit.open(d, key=TEST_KEY)
    assert tree_digest(d) == before


def test_wrong_key_is_refused(tmp_path: Path) -> None:
    d = tmp_path / "p"
    Pit.open(d, key=TEST_KEY).close()
    with pytest.raises(EncryptionKeyError, match="does not match data directory"):
        Pit.open(d, key=bytes(32))


def test_second_opener_is_refused_while_the_first_holds_it(tmp_path: Path) -> None:
    d = tmp_path / "p"
    with Pit.open(d, key=TEST_KEY):
        with pytest.raises(DataDirLockedError, match="in use by another process"):
            Pit.open(d, key=TEST_KEY)
        code = (
            "import sys\n"
            "from symphony.pit import Pit, DataDirLockedError\n"
            "try:\n"
            f"    Pit.open({str(d)!r}, key=bytes(range(32)))\n"
            "except DataDirLockedError:\n"
            "    sys.exit(3)\n"
        )
        assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 3
    with Pit.open(d, key=TEST_KEY):
        pass


def test_argument_types_and_values_are_checked(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="argument 'data_dir'"):
        Pit.open(42, key=TEST_KEY)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="argument 'key'"):
        Pit.open(tmp_path / "a", key="not bytes")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match="expected 32 bytes, got 3"):
        Pit.open(tmp_path / "b", key=b"abc")
    with pytest.raises(InvalidArgumentError, match="flush_interval_ms"):
        Pit.open(tmp_path / "c", key=TEST_KEY, flush_interval_ms=0)
    with pytest.raises(InvalidArgumentError, match="manual_clock"):
        Pit.in_memory(manual_clock=-1.0)
    with pytest.raises(TypeError, match="Pit.open"):
        Pit(object())  # type: ignore[arg-type]


def test_manual_clock() -> None:
    with Pit.in_memory(manual_clock=100.0) as pit:
        assert pit.now() == 100.0
        assert pit.advance_clock(2.5) == 102.5
        with pytest.raises(InvalidArgumentError, match="non-negative"):
            pit.advance_clock(-1)
    with Pit.in_memory() as pit:
        with pytest.raises(InvalidArgumentError, match="manual_clock"):
            pit.advance_clock(1)


def test_open_leaves_no_temporary_files(tmp_path: Path) -> None:
    d = tmp_path / "p"
    with Pit.open(d, key=TEST_KEY) as pit:
        pit.checkpoint()
    leftovers = [p.name for p in d.rglob("*.tmp")]
    assert leftovers == []
    assert {"PIT", "journal", "pit.lock", "snapshot.bin"} <= {p.name for p in d.iterdir()}
    assert os.stat(d / "PIT").st_size > 0


def test_undecodable_snapshot_section_is_named_as_corruption(tmp_path: Path) -> None:
    import struct
    import zlib

    d = tmp_path / "p"
    with Pit.open(d, key=TEST_KEY) as pit:
        pit.artifacts.put("a", b"hello", actor="t")
    snap = d / "snapshot.bin"
    body = snap.read_bytes()[:-4]
    # Rewrite the Artifact Store's section (tag 3) as an empty one, keeping the checksum valid.
    out = bytearray(body[:12])
    pos = 12
    for _ in range(struct.unpack_from("<I", body, 8)[0]):
        tag, lsn, n = struct.unpack_from("<BQQ", body, pos)
        section = body[pos + 17 : pos + 17 + n]
        if tag == 3:
            section = b""
        out += struct.pack("<BQQ", tag, lsn, len(section)) + section
        pos += 17 + n
    snap.write_bytes(bytes(out) + struct.pack("<I", zlib.crc32(bytes(out))))
    before = tree_digest(d)
    with pytest.raises(DataDirCorruptError, match="Artifacts section cannot be restored"):
        Pit.open(d, key=TEST_KEY)
    assert tree_digest(d) == before
