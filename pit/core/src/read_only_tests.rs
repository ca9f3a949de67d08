//! Tests of [`Pit::open_read_only`]: it writes nothing to the data directory, replays the
//! journal in memory, refuses every mutation and shares the directory lock with other readers.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::time::SystemTime;

use crate::artifacts::PutOptions;
use crate::pool::ModelSpec;
use crate::{Classify, Clock, Error, ErrorKind, Pit, PitOptions, SECOND};

fn options() -> PitOptions {
    PitOptions {
        key: Some([9; 32]),
        clock: Clock::manual(1_000 * SECOND),
        ..PitOptions::default()
    }
}

fn spec(id: &str) -> ModelSpec {
    ModelSpec {
        id: id.into(),
        slots: 1,
        memory: 0,
        price_per_call: 0.0,
        price_per_token: 0.0,
        fallbacks: Vec::new(),
        keep_alive: 300 * SECOND,
    }
}

/// Every entry under `root`: (size, mtime, BLAKE3 of the bytes) for files, `None` for folders.
type Listing = BTreeMap<String, Option<(u64, SystemTime, String)>>;

fn listing(root: &Path) -> Listing {
    fn walk(root: &Path, dir: &Path, out: &mut Listing) {
        for e in fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            let rel = p.strip_prefix(root).unwrap().display().to_string();
            let m = fs::metadata(&p).unwrap();
            if m.is_dir() {
                out.insert(rel, None);
                walk(root, &p, out);
            } else {
                let hash = blake3::hash(&fs::read(&p).unwrap()).to_hex().to_string();
                out.insert(rel, Some((m.len(), m.modified().unwrap(), hash)));
            }
        }
    }
    let mut out = Listing::new();
    walk(root, root, &mut out);
    out
}

fn kind(e: &Error) -> ErrorKind {
    e.kind()
}

/// A Pit with a checkpoint and journal records after it, left as by a crash (no close).
fn crashed_pit(dir: &Path) -> u64 {
    let opts = options();
    let pit = Pit::open(dir, &opts).unwrap();
    pit.pool.register(spec("m1"), false).unwrap();
    pit.artifacts
        .put("a", b"first", &PutOptions::default(), false)
        .unwrap();
    pit.checkpoint().unwrap();
    pit.pool.register(spec("m2"), false).unwrap();
    // After the checkpoint: small objects inlined in the journal, replayed on open.
    for i in 0..20u32 {
        pit.artifacts
            .put(
                &format!("b{i}"),
                &i.to_le_bytes(),
                &PutOptions::default(),
                false,
            )
            .unwrap();
    }
    pit.artifacts
        .put("big", &vec![5u8; 3 << 20], &PutOptions::default(), false)
        .unwrap();
    pit.sync().unwrap();
    let n = pit.artifacts.len() as u64;
    drop(pit); // a crash: no close, no checkpoint
    n
}

#[test]
fn a_read_only_open_writes_nothing_and_replays_in_memory() {
    let d = tempfile::tempdir().unwrap();
    let live = crashed_pit(d.path());
    // As left by a Pit that never made them (or a folder copied without them).
    fs::remove_file(d.path().join("pit.lock")).unwrap();
    fs::remove_dir_all(d.path().join("archive")).unwrap();
    let before = listing(d.path());
    {
        let pit = Pit::open_read_only(d.path(), &options()).unwrap();
        assert!(pit.is_read_only());
        assert_eq!(pit.pool.len(), 2);
        assert_eq!(pit.artifacts.len() as u64, live);
        // Every blob, the replayed (inlined) ones included, reads back and verifies.
        assert_eq!(pit.artifacts.verify().unwrap() as u64, live);
        let refused = [
            pit.pool.register(spec("m3"), false).unwrap_err(),
            pit.artifacts
                .put("c", b"new", &PutOptions::default(), false)
                .unwrap_err(),
            pit.artifacts
                .put("huge", &vec![1u8; 3 << 20], &PutOptions::default(), true)
                .unwrap_err(),
            pit.artifacts.delete(1, "me").unwrap_err(),
            pit.checkpoint().unwrap_err(),
        ];
        for e in &refused {
            assert_eq!(kind(e), ErrorKind::ReadOnly, "{e}");
            assert!(e.to_string().contains("opened read-only"), "{e}");
        }
        // Nothing to move here: a no-op; with work to do it is refused at the segment write.
        match pit.artifacts.compact() {
            Ok(n) => assert_eq!(n, 0),
            Err(e) => assert_eq!(kind(&e), ErrorKind::ReadOnly, "{e}"),
        }
        assert_eq!(pit.pool.len(), 2);
        pit.sync().unwrap();
        pit.close().unwrap();
    }
    assert_eq!(listing(d.path()), before, "the folder changed");
    // The writer still opens it and sees the same state.
    let pit = Pit::open(d.path(), &options()).unwrap();
    assert_eq!(pit.artifacts.len() as u64, live);
    pit.close().unwrap();
}

#[test]
fn a_torn_tail_is_skipped_in_memory_not_cut_off() {
    let d = tempfile::tempdir().unwrap();
    let live = crashed_pit(d.path());
    let journal = d.path().join("journal");
    let seg = fs::read_dir(&journal)
        .unwrap()
        .map(|e| e.unwrap().path())
        .max()
        .unwrap();
    let mut bytes = fs::read(&seg).unwrap();
    bytes.extend_from_slice(&[0x33, 0, 0, 0, 1, 2, 3]); // a torn record header
    fs::write(&seg, &bytes).unwrap();
    let before = listing(d.path());
    let pit = Pit::open_read_only(d.path(), &options()).unwrap();
    assert_eq!(pit.artifacts.len() as u64, live);
    pit.close().unwrap();
    assert_eq!(listing(d.path()), before);
    assert_eq!(fs::read(&seg).unwrap(), bytes, "the torn tail was cut");
    // A writable open repairs it as before.
    let pit = Pit::open(d.path(), &options()).unwrap();
    assert_eq!(pit.artifacts.len() as u64, live);
    pit.close().unwrap();
}

#[test]
fn readers_share_the_lock_and_exclude_a_writer() {
    let d = tempfile::tempdir().unwrap();
    let opts = options();
    let writer = Pit::open(d.path(), &opts).unwrap();
    let e = Pit::open_read_only(d.path(), &opts).unwrap_err();
    assert_eq!(kind(&e), ErrorKind::DataDirLocked, "{e}");
    writer.close().unwrap();
    let r1 = Pit::open_read_only(d.path(), &opts).unwrap();
    let r2 = Pit::open_read_only(d.path(), &opts).unwrap();
    let e = Pit::open(d.path(), &opts).unwrap_err();
    assert_eq!(kind(&e), ErrorKind::DataDirLocked, "{e}");
    r1.close().unwrap();
    r2.close().unwrap();
    Pit::open(d.path(), &opts).unwrap().close().unwrap();
}

#[test]
fn a_read_only_open_needs_an_existing_pit_and_its_key() {
    let d = tempfile::tempdir().unwrap();
    let missing = d.path().join("nope");
    let e = Pit::open_read_only(&missing, &options()).unwrap_err();
    assert_eq!(kind(&e), ErrorKind::Storage, "{e}");
    assert!(e.to_string().contains("no Pit there"), "{e}");
    assert!(!missing.exists());
    let empty = d.path().join("empty");
    fs::create_dir(&empty).unwrap();
    let e = Pit::open_read_only(&empty, &options()).unwrap_err();
    assert_eq!(kind(&e), ErrorKind::Storage, "{e}");
    assert_eq!(fs::read_dir(&empty).unwrap().count(), 0);
    fs::write(empty.join("notes.txt"), "mine").unwrap();
    let e = Pit::open_read_only(&empty, &options()).unwrap_err();
    assert_eq!(kind(&e), ErrorKind::ForeignDataDir, "{e}");
    let pit_dir = d.path().join("pit");
    Pit::open(&pit_dir, &options()).unwrap().close().unwrap();
    let wrong = PitOptions {
        key: Some([1; 32]),
        ..options()
    };
    let e = Pit::open_read_only(&pit_dir, &wrong).unwrap_err();
    assert_eq!(kind(&e), ErrorKind::EncryptionKey, "{e}");
}
