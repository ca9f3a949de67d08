"""Artifact Store: API, semantics, errors, persistence and tamper detection."""

from __future__ import annotations

import gc
import json
import struct
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest

from symphony.pit import (
    ArtifactIntegrityError,
    ArtifactNotFoundError,
    AuditChainError,
    DataDirCorruptError,
    IllegalTransitionError,
    InvalidArgumentError,
    LegalHoldError,
    Pit,
    PitClosedError,
    RetentionError,
)

TEST_KEY = bytes(range(32))  # the key the open_pit fixture uses

DAY = 86_400.0


def test_put_get_versions_and_dedup(pit: Pit) -> None:
    a = pit.artifacts
    v1 = a.put("plan.json", b'{"steps": [1, 2]}', kind="json", actor="alice")
    assert isinstance(v1, int)
    assert a.get(v1) == b'{"steps": [1, 2]}'
    assert a.get("plan.json") == b'{"steps": [1, 2]}'
    # Unchanged content, kind and lineage: no new version.
    assert a.put("plan.json", b'{"steps": [1, 2]}', kind="json") == v1
    v2 = a.put("plan.json", b'{"steps": [1, 2, 3]}', kind="json")
    assert v2 > v1
    assert a.versions("plan.json") == [v1, v2]
    assert a.resolve("plan.json") == v2
    assert a.resolve("plan.json", 1) == v1
    assert a.get("plan.json", version=1) == b'{"steps": [1, 2]}'
    info = a.info(v2)
    assert (info.name, info.version, info.kind, info.size) == ("plan.json", 2, "json", 20)
    assert info.actor == "system"
    assert a.info(v1).actor == "alice"
    assert len(info.content_hash) == 64
    # The same bytes under another name share the blob: no new local bytes.
    before = a.local_bytes()
    v3 = a.put("copy.json", b'{"steps": [1, 2, 3]}', kind="json")
    assert a.local_bytes() == before
    assert a.info(v3).content_hash == info.content_hash
    assert a.names() == ["copy.json", "plan.json"]
    assert a.names("p") == ["plan.json"]
    assert a.names("plan.json") == ["plan.json"]
    assert a.names("x") == []
    assert a.names(exclude=("plan",)) == ["copy.json"]
    assert a.names("p", exclude=("plan.json", "zzz")) == []
    assert len(a) == 3
    assert "ArtifactStore(3" in repr(a)
    assert "plan.json" in repr(info)


def test_compression_is_skipped_for_incompressible_data(pit: Pit) -> None:
    import os

    a = pit.artifacts
    text = b"the quick brown fox jumps over the lazy dog\n" * 2000
    before = a.local_bytes()
    a.put("text", text, kind="text")
    grew = a.local_bytes() - before
    assert grew < len(text) // 10
    noise = os.urandom(50_000)
    before = a.local_bytes()
    i = a.put("noise", noise)
    grew = a.local_bytes() - before
    assert len(noise) < grew < len(noise) + 200
    assert a.get(i) == noise


def test_large_blobs_are_chunked_and_deduplicated(pit: Pit) -> None:
    import random

    rng = random.Random(7)
    data = bytearray()
    while len(data) < 6 << 20:
        if rng.random() < 0.5:
            data += rng.randbytes(4096)
        else:
            data += b"line %d of some log output\n" % rng.randrange(1000) * 100
    a = pit.artifacts
    a.put("big", bytes(data))
    used = a.local_bytes()
    data[3 << 20] ^= 0xFF
    v2 = a.put("big", bytes(data))
    assert a.local_bytes() - used < used // 2  # only the touched chunks were stored again
    assert a.get(v2) == bytes(data)
    assert a.verify() == 2


def test_structure_scores_by_kind(pit: Pit) -> None:
    a = pit.artifacts
    cases = [
        ("json", b'{"a": [1, 2.5, null]}', 1.0),
        ("json", b"{a: 1}", 0.0),
        ("python", b"def f(x):\n    return x + 1\n", 1.0),
        ("python", b"def f(x:\n", 0.0),
        ("python", b"x = '\\d'\n", 1.0),  # a SyntaxWarning is not a failure
        ("text", "héllo".encode(), 1.0),
        ("text", b"\xff\xfe", 0.0),
        ("markdown", b"# Title\n```py\nx\n```\n", 1.0),
        ("markdown", b"```\nopen fence\n", 0.5),
        ("binary", b"\x00\x01", 1.0),
    ]
    for i, (kind, data, want) in enumerate(cases):
        q = a.quality(a.put(f"s{i}", data, kind=kind))
        assert q.structure == want, (kind, data)
    q = a.quality(a.put("custom", b"whatever", kind="diagram"))
    assert q.structure is None
    q = a.quality(a.put("given", b"x", kind="diagram", structure=0.25))
    assert q.structure == 0.25
    assert q.semantics is None
    assert "Quality(" in repr(q)


def test_quality_update_reuse_and_run_outcome(pit: Pit) -> None:
    a = pit.artifacts
    prompt = a.put("prompt", b"write a parser", kind="text", produced_by=("r1", "enhance", "m1"))
    plan = a.put("plan", b"1. lex 2. parse", kind="text", inputs=[prompt])
    code = a.put(
        "code.py",
        b"def parse(s):\n    return s\n",
        kind="python",
        produced_by=("r2", "coder", "m2"),
        inputs=[plan],
    )
    assert a.ancestors(code) == [prompt, plan]
    assert a.descendants(prompt) == [plan, code]
    assert a.descendants("code.py") == []
    assert a.info(plan).inputs == [prompt]
    assert a.info(code).produced_by == ("r2", "coder", "m2")
    u0 = a.quality(prompt).utility
    assert a.info(prompt).reuses == 1
    assert a.record_run_outcome("r2", True) == 3
    assert a.quality(prompt).utility > u0
    assert a.info(code).successes == 1
    with pytest.raises(InvalidArgumentError, match="already has an outcome"):
        a.record_run_outcome("r2", False)
    assert a.record_run_outcome("r-unknown", False) == 0
    q = a.set_quality(code, semantics=0.8)
    assert (q.structure, q.semantics) == (1.0, pytest.approx(0.8))
    q = a.set_quality(code, utility=0.1)
    assert q.utility == pytest.approx(0.1)
    with pytest.raises(InvalidArgumentError, match="semantics"):
        a.set_quality(code, semantics=1.5)


def test_legal_hold_blocks_every_actor(pit: Pit) -> None:
    a = pit.artifacts
    i = a.put("evidence", b"log")
    a.hold(i, actor="legal", reason="case 7")
    assert a.is_held(i)
    for actor in ("alice", "admin", "root", "stale-manager"):
        with pytest.raises(LegalHoldError) as e:
            a.delete(i, actor=actor)
        assert e.value.subject == str(i)
    a.release_hold(i, actor="legal")
    assert not a.is_held(i)
    a.delete(i, actor="admin")
    with pytest.raises(ArtifactNotFoundError, match="deleted"):
        a.get(i)
    actions = [r.action for r in a.audit(i)]
    assert actions == ["put", "hold", "release_hold", "delete"]
    assert a.audit(i)[1].detail == "case 7"
    assert len(a) == 0


def test_retention_refuses_early_delete_and_sweeps(pit: Pit) -> None:
    a = pit.artifacts
    keep = a.put("report", b"q3", kind="text")
    other = a.put("scratch", b"tmp", kind="binary")
    a.set_retention(kind="text", keep_days=30, expire=True, actor="compliance")
    a.set_retention(name="scratch", keep_days=1)
    assert {(p.scope, p.value, p.keep_days, p.expire) for p in a.retention_policies()} == {
        ("kind", "text", 30.0, True),
        ("name", "scratch", 1.0, False),
    }
    with pytest.raises(RetentionError) as e:
        a.delete(keep, actor="admin")
    assert e.value.subject == str(keep)
    pit.advance_clock(2 * DAY)
    a.delete(other, actor="admin")  # its 1-day retention has passed
    assert a.sweep_retention() == []
    held = a.put("report2", b"q4", kind="text")
    a.hold(held, actor="legal")
    pit.advance_clock(31 * DAY)
    assert a.sweep_retention(actor="sweeper") == [keep]
    assert a.audit(keep)[-1].detail == "retention sweep"
    pit.advance_clock(31 * DAY)
    assert a.sweep_retention() == []  # held: never swept
    a.set_retention(kind="text", keep_days=None)
    assert [p.value for p in a.retention_policies()] == ["scratch"]
    with pytest.raises(InvalidArgumentError, match="exactly one"):
        a.set_retention(name="a", kind="b", keep_days=1)
    with pytest.raises(InvalidArgumentError, match="keep_days"):
        a.set_retention(name="a", keep_days=-1)


def test_ids_after_lists_live_versions_stored_since(pit: Pit) -> None:
    a = pit.artifacts
    assert a.ids_after(0) == []
    x = a.put("x", b"1")
    y = a.put("y", b"2")
    z = a.put("x", b"3")
    assert a.ids_after(0) == [x, y, z]
    assert a.ids_after(x) == [y, z]
    assert a.ids_after(z) == []
    a.delete(y, actor="tester")
    assert a.ids_after(x) == [z]
    # Right type, refused value (QA bug 16: was a bare OverflowError).
    with pytest.raises(InvalidArgumentError, match="expected an integer"):
        a.ids_after(-1)


def test_audit_trail_is_hash_chained(pit: Pit) -> None:
    a = pit.artifacts
    i = a.put("x", b"1", actor="alice")
    a.get(i, actor="bob")
    a.get("x", actor="carol")
    trail = a.audit()
    assert [(r.seq, r.action, r.actor, r.artifact) for r in trail] == [
        (0, "put", "alice", i),
        (1, "get", "bob", i),
        (2, "get", "carol", i),
    ]
    assert trail[0].at == pytest.approx(pit.now())
    assert len({r.hash for r in trail}) == 3
    assert "AuditRecord(seq=0" in repr(trail[0])
    assert a.verify() == 1


def test_archive_round_trip(pit: Pit) -> None:
    a = pit.artifacts
    i = a.put("old", b"valuable training data " * 100, kind="text")
    stored = a.export_stored(i)
    a.verify_stored(i, stored)
    a.release_local(i, "archive://old")
    info = a.info(i)
    assert info.archived
    assert info.archive_ref == "archive://old"
    with pytest.raises(ArtifactNotFoundError, match="archived"):
        a.get(i)
    with pytest.raises(IllegalTransitionError):
        a.release_local(i, "archive://again")
    with pytest.raises(ArtifactIntegrityError):
        a.restore_local(i, stored[:-1] + bytes([stored[-1] ^ 1]))
    a.restore_local(i, stored)
    assert a.get(i) == b"valuable training data " * 100
    with pytest.raises(IllegalTransitionError):
        a.restore_local(i, stored)
    assert [r.action for r in a.audit(i)] == ["put", "archive", "restore", "get"]


def test_every_error_variant_maps_to_its_class(pit: Pit) -> None:
    a = pit.artifacts
    i = a.put("n", b"data")
    with pytest.raises(ArtifactNotFoundError) as e:
        a.get(999)
    assert e.value.subject == "999"
    with pytest.raises(ArtifactNotFoundError) as e:
        a.get("nope")
    assert e.value.subject == "nope"
    with pytest.raises(ArtifactNotFoundError) as e:
        a.get("n", version=5)
    assert e.value.subject == "n"
    j = a.put("gone", b"bye")
    a.delete(j, actor="x")
    with pytest.raises(ArtifactNotFoundError, match="deleted") as e:
        a.info(j) and a.get(j)
    assert e.value.subject == str(j)
    a.release_local(i, "ref")
    with pytest.raises(ArtifactNotFoundError, match="archived") as e:
        a.get(i)
    with pytest.raises(IllegalTransitionError) as e:
        a.release_local(i, "ref")
    assert e.value.subject == str(i)
    with pytest.raises(ArtifactIntegrityError) as e:
        a.verify_stored(i, b"not a blob")
    assert e.value.subject == str(i)
    k = a.put("held", b"h")
    a.hold(k, actor="legal")
    with pytest.raises(LegalHoldError):
        a.delete(k, actor="x")
    a.set_retention(name="kept", keep_days=5)
    with pytest.raises(RetentionError):
        a.delete(a.put("kept", b"k"), actor="x")
    with pytest.raises(InvalidArgumentError, match="name"):
        a.put("", b"x")
    with pytest.raises(InvalidArgumentError, match="actor"):
        a.put("x", b"x", actor="")
    with pytest.raises(InvalidArgumentError, match="structure"):
        a.put("x", b"x", structure=2.0)
    with pytest.raises(InvalidArgumentError, match="non-negative"):
        a.get(-1)
    with pytest.raises(InvalidArgumentError, match="version"):
        a.get(1, version=1)
    with pytest.raises(ArtifactNotFoundError):
        a.put("x", b"x", inputs=[12345])
    # Wrong types are TypeErrors naming the argument.
    with pytest.raises(TypeError, match="name"):
        a.put(1, b"x")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="data"):
        a.put("x", "text")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="artifact"):
        a.get(1.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="items"):
        a.put_many([("x", "text")])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="items"):
        a.put_many([b"x"])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="items"):
        a.put_many(5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="inputs"):
        a.put("x", b"x", inputs="ab")  # type: ignore[arg-type]


def test_closed_store_refuses(open_pit: Callable[..., Pit]) -> None:
    p = open_pit()
    i = p.artifacts.put("a", b"b")
    p.close()
    with pytest.raises(PitClosedError):
        p.artifacts.put("a", b"c")
    with pytest.raises(PitClosedError):
        p.artifacts.get(i)


def test_reopen_restores_everything(tmp_path: Path) -> None:
    d = tmp_path / "pit"
    p = Pit.open(d, key=TEST_KEY)
    a = p.artifacts
    big = bytes(range(256)) * (12 << 12)  # 3 MiB, chunked
    x = a.put("x", b"one", kind="text", actor="alice", produced_by=("r", "n", "m"))
    y = a.put("y", big, inputs=[x], durable=True)
    z = a.put("x", b"two", kind="text")
    a.set_quality(x, semantics=0.5)
    a.hold(y, actor="legal")
    a.record_run_outcome("r", True)
    a.set_retention(kind="text", keep_days=3)
    gone = a.put("gone", b"soon")
    a.delete(gone, actor="admin")
    audit_before = [(r.seq, r.hash) for r in a.audit()]
    p.close()
    del a, p
    gc.collect()
    for _ in range(2):  # the second reopen restores the snapshot the first close wrote
        p = Pit.open(d, key=TEST_KEY)
        a = p.artifacts
        assert a.get(x) == b"one"
        assert a.get(y) == big
        assert a.get("x") == b"two"
        assert a.versions("x") == [x, z]
        assert a.ancestors(y) == [x]
        assert a.quality(x).semantics == 0.5
        assert a.info(x).successes == 1
        assert a.is_held(y)
        assert [r.value for r in a.retention_policies()] == ["text"]
        with pytest.raises(ArtifactNotFoundError):
            a.get(gone)
        assert [(r.seq, r.hash) for r in a.audit()][: len(audit_before)] == audit_before
        assert a.verify() == 3
        p.close()
        del a, p
        gc.collect()


def test_reopen_after_sync_without_close(tmp_path: Path) -> None:
    d = tmp_path / "pit"
    p = Pit.open(d, key=TEST_KEY)
    a = p.artifacts
    ids = [a.put(f"n{i}", b"payload %d" % i * 20) for i in range(50)]
    big = a.put("big", bytes(range(256)) * 8192)
    p.sync()
    del a, p
    gc.collect()
    p = Pit.open(d, key=TEST_KEY)
    try:
        for i, n in enumerate(ids):
            assert p.artifacts.get(n) == b"payload %d" % i * 20
        assert p.artifacts.get(big) == bytes(range(256)) * 8192
        assert p.artifacts.verify() == 51
    finally:
        p.close()


def _segment_objects(path: Path) -> list[tuple[int, int]]:
    """(offset, length) of each object in a segment file."""
    data = path.read_bytes()
    out, pos = [], 0
    while pos + 68 <= len(data) and data[pos : pos + 8] == b"PITOBJ01":
        (n,) = struct.unpack_from("<I", data, pos + 12)
        out.append((pos, 68 + n))
        pos += 68 + n
    return out


def test_tampered_byte_is_detected_and_names_the_artifact(tmp_path: Path) -> None:
    d = tmp_path / "pit"
    p = Pit.open(d, key=TEST_KEY)
    first = p.artifacts.put("first", b"first artifact " * 10)
    victim = p.artifacts.put("victim", b"second artifact " * 10)
    p.close()
    del p
    gc.collect()
    seg = d / "artifacts" / "seg-00000001.dat"
    objs = _segment_objects(seg)
    assert len(objs) == 2
    raw = bytearray(seg.read_bytes())
    raw[objs[1][0] + 100] ^= 0x01
    seg.write_bytes(bytes(raw))
    p = Pit.open(d, key=TEST_KEY)
    try:
        with pytest.raises(ArtifactIntegrityError) as e:
            p.artifacts.verify()
        assert e.value.subject == str(victim)
        assert str(victim) in str(e.value)
        with pytest.raises(ArtifactIntegrityError):
            p.artifacts.get(victim)
        assert p.artifacts.get(first) == b"first artifact " * 10
    finally:
        p.close()


def _patch_journal(journal_dir: Path, old: bytes, new: bytes) -> int:
    """Replace `old` by `new` inside journal record payloads, fixing each record's CRC."""
    patched = 0
    for seg in sorted(journal_dir.glob("*.log")):
        data = bytearray(seg.read_bytes())
        pos = 16
        while pos + 17 <= len(data):
            length, _crc = struct.unpack_from("<II", data, pos)
            end = pos + 17 + length
            body = bytes(data[pos + 8 : end])
            if old in body:
                body = body.replace(old, new)
                data[pos + 8 : end] = body
                struct.pack_into("<I", data, pos + 4, zlib.crc32(body))
                patched += 1
            pos = end
        seg.write_bytes(bytes(data))
    return patched


def test_tampered_audit_record_breaks_the_chain(tmp_path: Path) -> None:
    d = tmp_path / "pit"
    p = Pit.open(d, key=TEST_KEY)
    i = p.artifacts.put("doc", b"contents", actor="auditor-AAAA")
    p.artifacts.get(i, actor="reader")
    p.sync()
    del p
    gc.collect()
    assert _patch_journal(d / "journal", b"auditor-AAAA", b"auditor-BBBB") == 1
    p = Pit.open(d, key=TEST_KEY)
    try:
        assert p.artifacts.audit()[0].actor == "auditor-BBBB"
        with pytest.raises(AuditChainError) as e:
            p.artifacts.verify()
        assert e.value.subject == "0"
    finally:
        p.close()


def test_tampered_audit_file_breaks_the_chain_and_a_cut_one_is_refused(tmp_path: Path) -> None:
    d = tmp_path / "pit"
    with Pit.open(d, key=TEST_KEY) as p:
        i = p.artifacts.put("doc", b"contents", actor="auditor-AAAA")
        p.artifacts.get(i, actor="reader")
    # Closing checkpointed: the records left the journal for the trail's file.
    log = d / "artifacts" / "audit.log"
    good = log.read_bytes()
    log.write_bytes(good.replace(b"auditor-AAAA", b"auditor-BBBB"))
    with Pit.open(d, key=TEST_KEY) as p:
        assert p.artifacts.audit()[0].actor == "auditor-BBBB"
        with pytest.raises(AuditChainError) as e:
            p.artifacts.verify()
        assert e.value.subject == "0"
    log.write_bytes(good[:-3])
    with pytest.raises(DataDirCorruptError, match=r"audit\.log.*2 records"):
        Pit.open(d, key=TEST_KEY)


def test_a_long_audit_trail_reads_back_across_flushes_and_reopening(tmp_path: Path) -> None:
    d = tmp_path / "pit"
    reads = 9_000  # past two of the 4,096-record flushes to the trail's file
    with Pit.open(d, key=TEST_KEY) as p:
        a = p.artifacts
        x = a.put("x", b"1", actor="writer")
        y = a.put("y", b"2", actor="writer")
        for n in range(reads):
            a.get(x if n % 2 else y, actor=f"reader-{n % 5}")
        trail = [(r.seq, r.action, r.actor, r.artifact, r.hash) for r in a.audit()]
        assert [t[0] for t in trail] == list(range(reads + 2))
        assert a.verify() == 2
    with Pit.open(d, key=TEST_KEY) as p:
        again = [(r.seq, r.action, r.actor, r.artifact, r.hash) for r in p.artifacts.audit()]
        assert again == trail
        assert [r.seq for r in p.artifacts.audit(x)] == [t[0] for t in trail if t[3] == x]
        assert p.artifacts.verify() == 2


def test_json_kind_round_trip_through_get(pit: Pit) -> None:
    doc = {"name": "x", "values": list(range(100))}
    i = pit.artifacts.put("doc", json.dumps(doc).encode(), kind="json")
    assert json.loads(pit.artifacts.get(i)) == doc
    assert pit.artifacts.quality(i).structure == 1.0


def test_ingest_file_hashes_first(pit: Pit, tmp_path: Path) -> None:
    f = tmp_path / "data.bin"
    f.write_bytes(b"abc" * (1 << 20))
    a = pit.artifacts
    i = a.ingest_file("data", f)
    assert a.get(i) == b"abc" * (1 << 20)
    assert a.ingest_file("data", f) == i  # unchanged
    j = a.ingest_file("copy", str(f))
    assert j != i
    assert a.info(j).content_hash == a.info(i).content_hash
    small = tmp_path / "s.py"
    small.write_text("print('hi')\n")
    k = a.ingest_file("s.py", small, kind="python")
    assert a.quality(k).structure == 1.0
    with pytest.raises(Exception, match="missing"):
        a.ingest_file("m", tmp_path / "missing")


def test_put_many_batches(open_pit: Callable[..., Pit]) -> None:
    p = open_pit()
    a = p.artifacts
    items = [(f"k{i}", b"value %d" % i) for i in range(1000)]
    ids = a.put_many(items, kind="text", durable=True)
    assert len(ids) == 1000
    assert a.get(ids[500]) == b"value 500"
    ids2 = a.put_many([("p1", b"x = 1"), ("p2", b"x = (")], kind="python", durable=True)
    assert [a.quality(i).structure for i in ids2] == [1.0, 0.0]
    with pytest.raises(InvalidArgumentError):
        a.put_many([("big", b"x" * (2 << 20))])


def test_deletes_give_space_back_and_survive_reopen(tmp_path: Path) -> None:
    import os

    d = tmp_path / "pit"
    p = Pit.open(d, key=TEST_KEY)
    a = p.artifacts
    blobs = [os.urandom(30_000 if i % 2 else 120_000) for i in range(900)]  # ~67 MiB: 2 segments
    ids = [a.put(f"n{i}", b) for i, b in enumerate(blobs)]
    full = a.local_bytes()
    for i, n in enumerate(ids):
        if i % 10:
            a.delete(n, actor="cleaner")
    assert a.local_bytes() < full * 0.6  # the active segment keeps its dead bytes until it rolls
    a.compact()  # nothing left to do, or a little more
    p.sync()
    del a, p
    gc.collect()
    p = Pit.open(d, key=TEST_KEY)
    try:
        for i in range(0, 900, 10):
            assert p.artifacts.get(ids[i]) == blobs[i]
        assert p.artifacts.verify() == 90
        assert p.artifacts.local_bytes() < full * 0.6
    finally:
        p.close()
