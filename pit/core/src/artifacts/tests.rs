// Short names (a, b, c for artifacts; s for the store) keep these scenarios readable.
#![allow(clippy::many_single_char_names)]

use std::sync::Mutex as StdMutex;

use super::*;
use crate::clock::{Clock, SECOND};
use crate::journal::{Journal, JournalOptions};

fn mem_store() -> ArtifactStore {
    ArtifactStore::open(&Ctx::in_memory(Clock::manual(1_000 * SECOND)), [3u8; 32]).unwrap()
}

fn opts(kind: &str) -> PutOptions {
    PutOptions {
        kind: kind.into(),
        actor: "tester".into(),
        ..PutOptions::default()
    }
}

fn err_kind(e: &crate::Error) -> ErrorKind {
    e.kind()
}

#[derive(Default)]
struct Rec(StdMutex<Vec<ArtifactEvent>>);

impl ArtifactObserver for Rec {
    fn on_event(&self, e: &ArtifactEvent) {
        self.0.lock().unwrap().push(e.clone());
    }
}

#[test]
fn put_get_dedup_versions() {
    let s = mem_store();
    let a = s.put("doc", b"{\"a\": 1}", &opts("json"), false).unwrap();
    assert_eq!(s.get(a, "tester").unwrap(), b"{\"a\": 1}");
    // Unchanged put returns the same version.
    assert_eq!(
        s.put("doc", b"{\"a\": 1}", &opts("json"), false).unwrap(),
        a
    );
    let b = s.put("doc", b"{\"a\": 2}", &opts("json"), false).unwrap();
    assert_eq!(s.versions("doc").unwrap(), vec![a, b]);
    assert_eq!(s.resolve("doc", None).unwrap(), b);
    assert_eq!(s.resolve("doc", Some(1)).unwrap(), a);
    // Same content under another name shares the blob.
    let before = s.local_bytes();
    let c = s.put("copy", b"{\"a\": 2}", &opts("json"), false).unwrap();
    assert_eq!(s.local_bytes(), before);
    assert_eq!(s.get(c, "t").unwrap(), b"{\"a\": 2}");
    assert_eq!(s.quality(a).unwrap().structure, Some(1.0));
    let bad = s.put("bad", b"{nope", &opts("json"), false).unwrap();
    assert_eq!(s.quality(bad).unwrap().structure, Some(0.0));
    assert_eq!(s.len(), 4);
    assert_eq!(s.verify().unwrap(), 4);
}

#[test]
fn ids_after_lists_what_was_stored_since_without_the_deleted() {
    let s = mem_store();
    assert!(s.ids_after(0).is_empty());
    let a = s.put("a", b"1", &opts("text"), false).unwrap();
    let b = s.put("b", b"2", &opts("text"), false).unwrap();
    let c = s.put("a", b"3", &opts("text"), false).unwrap();
    assert_eq!(s.ids_after(0), vec![a, b, c]);
    assert_eq!(s.ids_after(a), vec![b, c]);
    assert!(s.ids_after(c).is_empty());
    assert!(s.ids_after(u64::MAX).is_empty());
    s.delete(b, "t").unwrap();
    assert_eq!(s.ids_after(0), vec![a, c]);
}

#[test]
fn large_blobs_chunk_and_dedup() {
    let s = mem_store();
    let mut data = Vec::new();
    let mut x: u64 = 1;
    while data.len() < 6 << 20 {
        x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        if (x >> 60) < 8 {
            data.extend_from_slice(&x.to_le_bytes());
        } else {
            data.extend_from_slice(b"lorem ipsum dolor sit amet ");
        }
    }
    let a = s.put("big", &data, &opts("binary"), false).unwrap();
    let used = s.local_bytes();
    assert_eq!(s.get(a, "t").unwrap(), data);
    // An edit in the middle re-stores only the touched chunks.
    let mut edited = data.clone();
    edited[3 << 20] ^= 0xff;
    let b = s.put("big", &edited, &opts("binary"), false).unwrap();
    assert!(s.local_bytes() - used < used / 2);
    assert_eq!(s.get(b, "t").unwrap(), edited);
    let exported = s.export_stored(b).unwrap();
    s.verify_stored(b, &exported).unwrap();
    assert!(s.verify_stored(a, &exported).is_err());
    s.release_local(b, "arch://b").unwrap();
    assert_eq!(
        err_kind(&s.get(b, "t").unwrap_err()),
        ErrorKind::ArtifactNotFound
    );
    s.restore_local(b, &exported).unwrap();
    assert_eq!(s.get(b, "t").unwrap(), edited);
    assert_eq!(s.verify().unwrap(), 2);
}

#[test]
fn lineage_quality_and_events() {
    let s = mem_store();
    let obs: Arc<Rec> = Arc::new(Rec::default());
    let weak: Weak<dyn ArtifactObserver> =
        Arc::downgrade(&(obs.clone() as Arc<dyn ArtifactObserver>));
    s.set_observer(weak);
    let prod = |run: &str| PutOptions {
        produced_by: Some(Producer {
            run: run.into(),
            node: "n".into(),
            model: "m".into(),
        }),
        ..opts("text")
    };
    let a = s.put("prompt", b"hello", &prod("r1"), false).unwrap();
    let b = s
        .put(
            "plan",
            b"plan",
            &PutOptions {
                inputs: vec![a],
                ..prod("r2")
            },
            false,
        )
        .unwrap();
    let c = s
        .put(
            "code",
            b"x = 1",
            &PutOptions {
                inputs: vec![b],
                ..prod("r3")
            },
            false,
        )
        .unwrap();
    assert_eq!(s.ancestors(c).unwrap(), vec![a, b]);
    assert_eq!(s.descendants(a).unwrap(), vec![b, c]);
    assert_eq!(s.record_run_outcome("r3", true, false).unwrap(), 3);
    assert!(s.record_run_outcome("r3", true, false).is_err());
    let q = s.quality(a).unwrap();
    assert!(q.utility > 0.0);
    let q = s.set_quality(a, None, Some(0.9), None, false).unwrap();
    assert_eq!(q.semantics, Some(0.9));
    let ev = obs.0.lock().unwrap().clone();
    assert!(ev.contains(&ArtifactEvent::Reused { id: a, count: 1 }));
    assert!(ev.contains(&ArtifactEvent::RunOutcome {
        id: a,
        successes: 1
    }));
    assert!(ev
        .iter()
        .any(|e| matches!(e, ArtifactEvent::Stored { id, .. } if *id == c)));
    s.get(c, "t").unwrap();
    assert!(obs
        .0
        .lock()
        .unwrap()
        .iter()
        .any(|e| matches!(e, ArtifactEvent::Read { id, .. } if *id == c)));
}

#[test]
fn hold_retention_delete_and_audit() {
    let clock = Clock::manual(1_000 * SECOND);
    let s = ArtifactStore::open(&Ctx::in_memory(clock.clone()), [1u8; 32]).unwrap();
    let a = s.put("a", b"aaaa", &opts("text"), false).unwrap();
    s.hold(a, "legal", "case 42").unwrap();
    let e = s.delete(a, "admin").unwrap_err();
    assert_eq!(err_kind(&e), ErrorKind::LegalHold);
    s.release_hold(a, "legal").unwrap();
    s.set_retention(Scope::Kind("text".into()), Some(1.0), true, "admin")
        .unwrap();
    assert_eq!(
        err_kind(&s.delete(a, "admin").unwrap_err()),
        ErrorKind::Retention
    );
    assert!(s.sweep_retention("sweeper").unwrap().is_empty());
    clock.advance(2 * 86_400 * SECOND);
    assert_eq!(s.sweep_retention("sweeper").unwrap(), vec![a]);
    assert_eq!(
        err_kind(&s.get(a, "x").unwrap_err()),
        ErrorKind::ArtifactNotFound
    );
    let trail = s.audit(Some(a)).unwrap();
    let actions: Vec<Action> = trail.iter().map(|t| t.action).collect();
    assert_eq!(
        actions,
        vec![
            Action::Put,
            Action::Hold,
            Action::ReleaseHold,
            Action::Delete
        ]
    );
    s.verify().unwrap();
    // Tamper with the audit trail in memory: verify notices.
    s.inner.state.lock().audit[1].actor = "mallory".into();
    assert_eq!(err_kind(&s.verify().unwrap_err()), ErrorKind::AuditChain);
}

#[test]
fn tampered_segment_names_the_artifact() {
    let s = mem_store();
    let a = s.put("a", b"first artifact", &opts("text"), false).unwrap();
    let b = s
        .put("b", b"second artifact", &opts("text"), false)
        .unwrap();
    let loc = {
        let st = s.inner.state.lock();
        st.chunks[&st.versions[&b].blob].loc
    };
    let mut segs = s.inner.segs.lock();
    let Src::Bytes(mut obj) = segs.source(loc).unwrap() else {
        panic!("memory segments are bytes")
    };
    obj[OBJ_TAMPER] ^= 1;
    segs.write_at(loc, &obj).unwrap();
    drop(segs);
    let e = s.verify().unwrap_err();
    assert_eq!(err_kind(&e), ErrorKind::ArtifactIntegrity);
    assert_eq!(e.detail(), Detail::Subject(b.to_string()));
    assert!(s.get(a, "t").is_ok());
    assert_eq!(
        err_kind(&s.get(b, "t").unwrap_err()),
        ErrorKind::ArtifactIntegrity
    );
}

const OBJ_TAMPER: usize = 70;

#[test]
fn deletes_compact_small_segments() {
    let s = mem_store();
    let mut ids = Vec::new();
    let mut x: u64 = 7;
    // Incompressible 60 KiB objects: about 4.5 (test-sized, 4 MiB) segments' worth.
    for i in 0..300u32 {
        let data: Vec<u8> = (0..60_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        ids.push((
            s.put(&format!("n{i}"), &data, &opts("binary"), false)
                .unwrap(),
            data,
        ));
    }
    let full = s.local_bytes();
    let keep: Vec<_> = ids.iter().step_by(10).cloned().collect();
    for (i, (id, _)) in ids.iter().enumerate() {
        if i % 10 != 0 {
            s.delete(*id, "t").unwrap();
        }
    }
    assert!(
        s.local_bytes() < full / 2,
        "{} of {full} bytes left",
        s.local_bytes()
    );
    for (id, data) in keep {
        assert_eq!(s.get(id, "t").unwrap(), data);
    }
    assert_eq!(s.verify().unwrap(), 30);
}

#[test]
fn persistent_store_survives_replay_and_snapshot() {
    let d = tempfile::tempdir().unwrap();
    let jdir = d.path().join("journal");
    let clock = Clock::manual(5 * SECOND);
    let key = [9u8; 32];
    let big: Vec<u8> = (0..(3u32 << 20)).map(|i| (i % 251) as u8).collect();
    let (ids, snap) = {
        let (j, _) = Journal::open(&jdir, JournalOptions::default()).unwrap();
        let ctx = Ctx {
            journal: j.clone(),
            clock: clock.clone(),
            data_dir: Some(d.path().to_path_buf()),
        };
        let s = ArtifactStore::open(&ctx, key).unwrap();
        let a = s.put("a", b"alpha", &opts("text"), true).unwrap();
        let (_, snap) = s.snapshot().unwrap();
        let b = s.put("b", &big, &opts("binary"), true).unwrap();
        let c = s.put("c", b"gamma", &opts("text"), false).unwrap();
        j.sync_all().unwrap();
        // No close: the buffered segment bytes of "c" are lost; the journal has them.
        (vec![a, b, c], snap)
    };
    let (j, recs) = Journal::open(&jdir, JournalOptions::default()).unwrap();
    let ctx = Ctx {
        journal: j.clone(),
        clock,
        data_dir: Some(d.path().to_path_buf()),
    };
    let s = ArtifactStore::open(&ctx, key).unwrap();
    s.restore(&snap).unwrap();
    for r in recs.iter().filter(|r| r.tag == Tag::Artifacts).skip(1) {
        s.replay(r.lsn, &r.payload).unwrap();
    }
    assert_eq!(s.get(ids[0], "t").unwrap(), b"alpha");
    assert_eq!(s.get(ids[1], "t").unwrap(), big);
    assert_eq!(s.get(ids[2], "t").unwrap(), b"gamma");
    assert_eq!(s.verify().unwrap(), 3);
    s.delete(ids[1], "t").unwrap();
    s.close().unwrap();
    j.close().unwrap();
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(24))]
    #[test]
    fn any_sequence_of_puts_reads_back(items in proptest::collection::vec(
        (0u8..4, proptest::collection::vec(proptest::num::u8::ANY, 0..2000)), 1..20)) {
        let s = mem_store();
        let mut ids = Vec::new();
        for (n, data) in &items {
            let id = s.put(&format!("n{n}"), data, &opts("binary"), false).unwrap();
            ids.push((id, data.clone()));
        }
        for (id, data) in ids {
            proptest::prop_assert_eq!(s.get(id, "t").unwrap(), data);
        }
        proptest::prop_assert!(s.verify().is_ok());
    }
}

#[test]
#[ignore = "timing probe, run with --release --ignored --nocapture"]
fn timing_probe() {
    let s = mem_store();
    let data: Vec<Vec<u8>> = (0..20_000)
        .map(|i| format!("{i:016}").repeat(8).into_bytes())
        .collect();
    let names: Vec<String> = (0..20_000).map(|i| format!("n{i}")).collect();
    for round in 0..3 {
        let items: Vec<(&str, &[u8])> = names
            .iter()
            .zip(&data)
            .map(|(n, d)| (n.as_str(), d.as_slice()))
            .collect();
        let mut d2 = data.clone();
        for d in &mut d2 {
            d[0] = b'a' + round;
        }
        let items2: Vec<(&str, &[u8])> = names
            .iter()
            .zip(&d2)
            .map(|(n, d)| (n.as_str(), d.as_slice()))
            .collect();
        let t = std::time::Instant::now();
        s.put_many(&items2, &opts("binary"), false).unwrap();
        eprintln!("put_many {:?}/item", t.elapsed() / 20_000);
        let t = std::time::Instant::now();
        for (n, d) in &items {
            s.put(n, &d[..], &opts("binary"), false).unwrap();
        }
        eprintln!("put {:?}/item", t.elapsed() / 20_000);
        let t = std::time::Instant::now();
        for i in 1..20_000 {
            s.set_quality(i, None, Some(0.5), None, false).unwrap();
        }
        eprintln!("set_quality {:?}/item", t.elapsed() / 20_000);
        let h = format::hash(&data[0]);
        let t = std::time::Instant::now();
        for d in &data {
            std::hint::black_box(format::seal(&s.inner.cipher, d, &h, 3));
        }
        eprintln!("seal {:?}/item", t.elapsed() / 20_000);
    }
}

#[test]
fn concurrent_puts_gets_deletes_snapshots_and_syncs() {
    let d = tempfile::tempdir().unwrap();
    let (j, _) = Journal::open(&d.path().join("journal"), JournalOptions::default()).unwrap();
    let ctx = Ctx {
        journal: j.clone(),
        clock: Clock::manual(SECOND),
        data_dir: Some(d.path().to_path_buf()),
    };
    let s = Arc::new(ArtifactStore::open(&ctx, [5u8; 32]).unwrap());
    std::thread::scope(|scope| {
        for t in 0..4u32 {
            let s = Arc::clone(&s);
            scope.spawn(move || {
                for i in 0..150u32 {
                    let data = format!("thread {t} item {i} ").repeat(1 + (i as usize % 50));
                    let id = s
                        .put(
                            &format!("t{t}"),
                            data.as_bytes(),
                            &opts("text"),
                            i % 10 == 0,
                        )
                        .unwrap();
                    assert_eq!(s.get(id, "reader").unwrap(), data.as_bytes());
                    if i % 3 == 0 {
                        s.delete(id, "cleaner").unwrap();
                    }
                }
            });
        }
        let s2 = Arc::clone(&s);
        scope.spawn(move || {
            let big: Vec<u8> = (0..(3u32 << 20)).map(|i| (i % 253) as u8).collect();
            let id = s2.put("big", &big, &opts("binary"), true).unwrap();
            assert_eq!(s2.get(id, "reader").unwrap(), big);
        });
        let s3 = Arc::clone(&s);
        let j2 = j.clone();
        scope.spawn(move || {
            for _ in 0..20 {
                s3.snapshot().unwrap();
                j2.sync_all().unwrap();
            }
        });
    });
    assert_eq!(s.len(), 4 * 100 + 1);
    assert_eq!(s.verify().unwrap(), 401);
    s.close().unwrap();
    j.close().unwrap();
}

fn persistent_ctx(dir: &std::path::Path) -> Ctx {
    let (j, _) = Journal::open(&dir.join("journal"), JournalOptions::default()).unwrap();
    Ctx {
        journal: j,
        clock: Clock::manual(7 * SECOND),
        data_dir: Some(dir.to_path_buf()),
    }
}

/// A store reopened the way `Pit::open` does: the snapshot, then the journal after it.
fn reopen(dir: &std::path::Path, snap: &[u8], covered: Lsn) -> (ArtifactStore, Journal) {
    let (j, recs) = Journal::open(&dir.join("journal"), JournalOptions::default()).unwrap();
    let ctx = Ctx {
        journal: j.clone(),
        clock: Clock::manual(9 * SECOND),
        data_dir: Some(dir.to_path_buf()),
    };
    let s = ArtifactStore::open(&ctx, [4u8; 32]).unwrap();
    s.restore(snap).unwrap();
    for r in recs
        .iter()
        .filter(|r| r.tag == Tag::Artifacts && r.lsn > covered)
    {
        s.replay(r.lsn, &r.payload).unwrap();
    }
    (s, j)
}

/// A persistent store holding one artifact, read `reads` times by `reader-00`, `reader-01`, ….
fn read_often(dir: &std::path::Path, reads: usize) -> (Ctx, ArtifactStore, ArtifactId) {
    let ctx = persistent_ctx(dir);
    let s = ArtifactStore::open(&ctx, [4u8; 32]).unwrap();
    let a = s.put("a", b"alpha", &opts("text"), false).unwrap();
    for i in 0..reads {
        s.get(a, &format!("reader-{i:02}")).unwrap();
    }
    (ctx, s, a)
}

/// The process dies: what reached the journal stays, nothing else is written.
fn crash(ctx: &Ctx, s: ArtifactStore) {
    ctx.journal.sync_all().unwrap();
    ctx.journal.close().unwrap();
    drop(s);
}

fn in_memory_records(s: &ArtifactStore) -> usize {
    s.inner.state.lock().audit.len()
}

#[test]
fn the_audit_trail_lives_in_its_file_not_in_memory() {
    let d = tempfile::tempdir().unwrap();
    let ctx = persistent_ctx(d.path());
    let s = ArtifactStore::open(&ctx, [4u8; 32]).unwrap();
    let a = s.put("a", b"alpha", &opts("text"), false).unwrap();
    let b = s.put("b", b"beta", &opts("text"), false).unwrap();
    let reads = auditlog::FLUSH_EVERY * 2 + 10;
    for i in 0..reads {
        s.get(if i % 3 == 0 { b } else { a }, &format!("reader-{}", i % 7))
            .unwrap();
    }
    // Two flushes happened; only the records after the last one are in memory.
    assert_eq!(in_memory_records(&s), reads + 2 - 2 * auditlog::FLUSH_EVERY);
    let file = d.path().join("artifacts").join(auditlog::FILE);
    assert!(std::fs::metadata(&file).unwrap().len() > 0);
    let trail = s.audit(None).unwrap();
    assert_eq!(trail.len(), reads + 2);
    assert!(trail.iter().enumerate().all(|(i, r)| r.seq == i as u64));
    assert_eq!(trail[2].actor, "reader-0");
    assert_eq!(trail[reads + 1].action, Action::Get);
    let of_b = s.audit(Some(b)).unwrap();
    assert_eq!(of_b.len(), 1 + reads.div_ceil(3));
    assert!(of_b.iter().all(|r| r.artifact == Some(b)));
    assert_eq!(s.verify().unwrap(), 2);
    // A checkpoint moves the rest to the file and covers it; reopening reads nothing back.
    let (lsn, snap) = s.snapshot().unwrap();
    assert_eq!(in_memory_records(&s), 0);
    s.get(a, "after").unwrap();
    crash(&ctx, s);
    let (s, j) = reopen(d.path(), &snap, lsn);
    assert_eq!(in_memory_records(&s), 1);
    let again = s.audit(None).unwrap();
    assert_eq!(&again[..trail.len()], &trail[..]);
    assert_eq!(again.len(), trail.len() + 1);
    assert_eq!(again.last().unwrap().actor, "after");
    assert_eq!(s.verify().unwrap(), 2);
    j.close().unwrap();
}

#[test]
fn records_written_after_the_snapshot_are_replayed_and_rewritten() {
    let d = tempfile::tempdir().unwrap();
    let ctx = persistent_ctx(d.path());
    let s = ArtifactStore::open(&ctx, [4u8; 32]).unwrap();
    let a = s.put("a", b"alpha", &opts("text"), false).unwrap();
    let (lsn, snap) = s.snapshot().unwrap();
    // An early flush writes records the snapshot does not cover; then the process dies.
    for i in 0..auditlog::FLUSH_EVERY + 5 {
        s.get(a, &format!("r{i}")).unwrap();
    }
    let before = s.audit(None).unwrap();
    let file = d.path().join("artifacts").join(auditlog::FILE);
    let flushed_len = std::fs::metadata(&file).unwrap().len();
    crash(&ctx, s);
    let (s, j) = reopen(d.path(), &snap, lsn);
    // The tail past the snapshot's mark is not read; the journal gives those records back.
    assert_eq!(in_memory_records(&s), auditlog::FLUSH_EVERY + 5);
    assert_eq!(s.audit(None).unwrap(), before);
    assert_eq!(s.verify().unwrap(), 1);
    // The next write cuts the stale tail off before appending: the file holds every record once.
    let (lsn2, snap2) = s.snapshot().unwrap();
    let mark = s.inner.state.lock().audit_mark;
    assert_eq!(mark.count, before.len() as u64);
    assert_eq!(std::fs::metadata(&file).unwrap().len(), mark.bytes);
    assert!(mark.bytes > flushed_len);
    j.sync_all().unwrap();
    j.close().unwrap();
    drop(s);
    let (s, j) = reopen(d.path(), &snap2, lsn2);
    assert_eq!(in_memory_records(&s), 0);
    assert_eq!(s.audit(None).unwrap(), before);
    assert_eq!(s.verify().unwrap(), 1);
    j.close().unwrap();
}

#[test]
fn a_snapshot_from_before_the_audit_file_loads_and_moves_its_records() {
    let d = tempfile::tempdir().unwrap();
    let (ctx, s, _) = read_often(d.path(), 20);
    let before = s.audit(None).unwrap();
    // Format 1 encoded the state alone, every audit record in it.
    let lsn = ctx.journal.last_lsn();
    let (files, dir) = s.inner.segs.lock().take_dirty().unwrap();
    segs::sync_files(&files, dir.as_deref()).unwrap();
    let old = postcard::to_stdvec(&*s.inner.state.lock()).unwrap();
    crash(&ctx, s);
    let (s, j) = reopen(d.path(), &old, lsn);
    assert_eq!(in_memory_records(&s), 21);
    assert_eq!(s.audit(None).unwrap(), before);
    s.snapshot().unwrap();
    assert_eq!(in_memory_records(&s), 0);
    assert_eq!(s.audit(None).unwrap(), before);
    assert_eq!(s.verify().unwrap(), 1);
    j.close().unwrap();
}

#[test]
fn a_damaged_audit_file_is_reported() {
    let d = tempfile::tempdir().unwrap();
    let (ctx, s, _) = read_often(d.path(), 30);
    let (lsn, snap) = s.snapshot().unwrap();
    crash(&ctx, s);
    let file = d.path().join("artifacts").join(auditlog::FILE);
    let good = std::fs::read(&file).unwrap();

    // A record changed in place: the chain breaks at it.
    let at = good.windows(9).position(|w| w == b"reader-17").unwrap();
    let mut edited = good.clone();
    edited[at + 8] = b'8';
    std::fs::write(&file, &edited).unwrap();
    let (s, j) = reopen(d.path(), &snap, lsn);
    let e = s.verify().unwrap_err();
    assert_eq!(err_kind(&e), ErrorKind::AuditChain);
    assert!(e.to_string().contains("record 18"), "{e}");
    j.close().unwrap();
    drop(s);

    // Records cut off the end: restoring the snapshot refuses the directory.
    std::fs::write(&file, &good[..good.len() - 10]).unwrap();
    let (j, _) = Journal::open(&d.path().join("journal"), JournalOptions::default()).unwrap();
    let ctx = Ctx {
        journal: j.clone(),
        clock: Clock::manual(SECOND),
        data_dir: Some(d.path().to_path_buf()),
    };
    let s = ArtifactStore::open(&ctx, [4u8; 32]).unwrap();
    let e = s.restore(&snap).unwrap_err();
    assert_eq!(err_kind(&e), ErrorKind::DataDirCorrupt);
    let msg = e.to_string();
    assert!(
        msg.contains("audit.log") && msg.contains("31 records"),
        "{msg}"
    );
    std::fs::remove_file(&file).unwrap();
    let e = s.restore(&snap).unwrap_err();
    assert!(e.to_string().contains("file is missing"), "{e}");
    j.close().unwrap();
}

#[test]
#[ignore = "timing probe, run with --release --ignored --nocapture"]
fn audit_flush_timing_probe() {
    let d = tempfile::tempdir().unwrap();
    let mut log = AuditLog::new(Some(d.path().to_path_buf()));
    let mut mark = Mark::default();
    let entries: Vec<AuditEntry> = (0..auditlog::FLUSH_EVERY as u64)
        .map(|i| AuditEntry {
            seq: i,
            at: 1_700_000_000_000_000 + i,
            actor: format!("20261122-020000-{i:08x}"),
            action: Action::Get,
            artifact: Some(i),
            detail: String::new(),
            hash: [7; 32],
        })
        .collect();
    for _ in 0..3 {
        let t = std::time::Instant::now();
        for _ in 0..20 {
            log.append(&mut mark, &entries).unwrap();
        }
        let el = t.elapsed().as_secs_f64() / 20.0;
        println!(
            "flush of {} records: {:.0} us, {:.0} ns/record",
            entries.len(),
            el * 1e6,
            el * 1e9 / entries.len() as f64
        );
    }
}
