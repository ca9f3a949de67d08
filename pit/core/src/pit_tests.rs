//! Tests of the Pit as a whole: checkpoints and close racing writers, replay after a crash,
//! close semantics and open-time checks.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use crate::arbitration::Submit;
use crate::pool::{ModelSpec, Outcome, Request};
use crate::{Classify, Clock, ErrorKind, Pit, PitOptions, SECOND};

fn options() -> PitOptions {
    PitOptions {
        key: Some([7; 32]),
        clock: Clock::manual(1_000 * SECOND),
        ..PitOptions::default()
    }
}

fn spec(id: &str, slots: u32) -> ModelSpec {
    ModelSpec {
        id: id.into(),
        slots,
        memory: 0,
        price_per_call: 0.0,
        price_per_token: 0.0,
        fallbacks: Vec::new(),
        keep_alive: 300 * SECOND,
    }
}

fn submit<'a>(owner: &'a str, model: &'a str, cost: f64) -> Submit<'a> {
    Submit {
        owner,
        workflow: "wf",
        model,
        priority: 0,
        value: 0.5,
        impact: 0.5,
        cost,
        deadline: None,
    }
}

/// Bug 1: a checkpoint racing a writer left the current journal segment named after a later LSN
/// than its first record; after a crash the data directory would not open.
#[test]
fn checkpoints_racing_a_writer_leave_a_readable_journal() {
    let dir = tempfile::tempdir().unwrap();
    let opts = options();
    let last = {
        let pit = Pit::open(dir.path(), &opts).unwrap();
        let stop = AtomicBool::new(false);
        let last = AtomicU64::new(0);
        std::thread::scope(|s| {
            s.spawn(|| {
                // A journaled change of constant-size state, as fast as possible.
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    i += 1;
                    pit.pool
                        .set_owner_budget("o", Some(i as f64), false)
                        .unwrap();
                }
                last.store(i, Ordering::Relaxed);
            });
            for _ in 0..200 {
                pit.checkpoint().unwrap();
            }
            stop.store(true, Ordering::Relaxed);
        });
        pit.sync().unwrap();
        drop(pit); // a crash: no close, so no healing checkpoint
        last.load(Ordering::Relaxed)
    };
    let pit = Pit::open(dir.path(), &opts).unwrap();
    assert_eq!(pit.pool.owner_spend("o").2, Some(last as f64));
    pit.close().unwrap();
}

/// Bug 1 (close): `close()` racing a writer must leave a directory that opens, with every change
/// that was acknowledged.
#[test]
fn close_racing_a_writer_loses_nothing_acknowledged() {
    for _ in 0..10 {
        let dir = tempfile::tempdir().unwrap();
        let opts = options();
        let acked = {
            let pit = Pit::open(dir.path(), &opts).unwrap();
            pit.dag.create_workflow("w", false).unwrap();
            let n = AtomicU64::new(0);
            std::thread::scope(|s| {
                s.spawn(|| {
                    for i in 0.. {
                        let name = format!("n{i}");
                        match pit.dag.add_nodes("w", &[name.as_str()], None, None, false) {
                            Ok(_) => n.store(i + 1, Ordering::Relaxed),
                            Err(e) => {
                                assert_eq!(e.kind(), ErrorKind::Closed, "{e}");
                                break;
                            }
                        }
                    }
                });
                while n.load(Ordering::Relaxed) < 500 {
                    std::thread::yield_now();
                }
                pit.close().unwrap();
            });
            n.load(Ordering::Relaxed) as usize
        };
        let pit = Pit::open(dir.path(), &opts).unwrap();
        assert_eq!(pit.dag.nodes("w").unwrap().len(), acked);
        pit.close().unwrap();
    }
}

/// Bug 4: decide(acquire) that stops early (a pool budget refuses an acquire) must still journal
/// the decisions it returns, or a crash makes them pending again (granted twice).
#[test]
fn decisions_of_a_batch_stopped_early_are_journaled() {
    let dir = tempfile::tempdir().unwrap();
    let opts = options();
    {
        let pit = Pit::open(dir.path(), &opts).unwrap();
        pit.pool.register(spec("m", 8), false).unwrap();
        pit.pool.set_owner_budget("o", Some(1.0), false).unwrap();
        let reqs = [
            submit("o", "m", 0.6),
            submit("o", "m", 0.6),
            submit("o", "m", 0.6),
        ];
        pit.arbitration.submit(&reqs, false).unwrap();
        let out = pit.arbitration.decide(3, true).unwrap();
        assert_eq!(out.len(), 2);
        assert_eq!(pit.arbitration.pending(), 1);
        pit.sync().unwrap();
        drop(pit); // crash
    }
    let pit = Pit::open(dir.path(), &opts).unwrap();
    assert_eq!(pit.arbitration.pending(), 1);
    let next = pit.arbitration.decide(1, false).unwrap();
    assert_eq!(next[0].id, 3, "decision ids 1 and 2 were already used");
    pit.close().unwrap();
}

/// Bug 5: a lease from before a reopen must not release a lease of the new session.
#[test]
fn a_lease_from_before_a_reopen_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let opts = options();
    let old = {
        let pit = Pit::open(dir.path(), &opts).unwrap();
        pit.pool.register(spec("m", 1), false).unwrap();
        let l = pit.pool.try_acquire(&Request::new("m", "a")).unwrap();
        pit.close().unwrap();
        l
    };
    let pit = Pit::open(dir.path(), &opts).unwrap();
    let new = pit.pool.try_acquire(&Request::new("m", "b")).unwrap();
    assert_ne!(old.id, new.id);
    let err = pit
        .pool
        .release(old.id, Outcome::default(), false)
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::LeaseNotFound);
    assert_eq!(pit.pool.leases(), 1);
    pit.pool.release(new.id, Outcome::default(), false).unwrap();
    pit.close().unwrap();
}

/// Bug 8: `close()` wakes a thread blocked in acquire with `PitClosedError`.
#[test]
fn close_wakes_a_blocked_acquire() {
    let dir = tempfile::tempdir().unwrap();
    let pit = Pit::open(dir.path(), &options()).unwrap();
    pit.pool.register(spec("m", 1), false).unwrap();
    let _held = pit.pool.try_acquire(&Request::new("m", "")).unwrap();
    let waiter = {
        let pool = Arc::clone(&pit.pool);
        std::thread::spawn(move || pool.acquire(&Request::new("m", ""), None))
    };
    while pit.pool.info("m").unwrap().waiting == 0 {
        std::thread::yield_now();
    }
    pit.close().unwrap();
    assert_eq!(
        waiter.join().unwrap().unwrap_err().kind(),
        ErrorKind::Closed
    );
}

/// Bug 15: mutations of an in-memory Pit after `close()` raise `PitClosedError`.
#[test]
fn in_memory_mutations_after_close_are_refused() {
    let pit = Pit::in_memory(&options()).unwrap();
    pit.pool.register(spec("m", 1), false).unwrap();
    pit.dag.create_workflow("w", false).unwrap();
    pit.dag.add_nodes("w", &["a"], None, None, false).unwrap();
    pit.arbitration
        .submit(&[submit("o", "m", 0.0)], false)
        .unwrap();
    pit.close().unwrap();
    let kinds = [
        pit.pool.register(spec("m2", 1), false).map(drop),
        pit.pool.try_acquire(&Request::new("m", "")).map(drop),
        pit.dag.create_workflow("w2", false).map(drop),
        pit.dag.add_nodes("w", &["b"], None, None, false).map(drop),
        pit.dag
            .transition_batch("w", &[0], crate::dag::NodeState::Running, false)
            .map(drop),
        pit.arbitration
            .submit(&[submit("o", "m", 0.0)], false)
            .map(drop),
        pit.arbitration.decide(1, false).map(drop),
        pit.stale.sweep(false, None, false).map(drop),
        pit.checkpoint(),
    ]
    .map(|r| r.unwrap_err().kind());
    assert!(kinds.iter().all(|k| *k == ErrorKind::Closed), "{kinds:?}");
    assert_eq!(pit.dag.nodes("w").unwrap(), vec!["a".to_string()]);
}

/// Bug 7: an archive directory inside the data directory (or equal to it) is refused at open,
/// before anything is created.
#[test]
fn an_archive_dir_inside_the_data_dir_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    for archive in [
        data.clone(),
        data.join("journal"),
        data.join("x/y"),
        data.join("journal/../other"),
    ] {
        let opts = PitOptions {
            archive_dir: Some(archive.clone()),
            ..options()
        };
        let err = Pit::open(&data, &opts).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{archive:?}: {err}");
        assert!(err.to_string().contains("archive_dir"), "{err}");
        assert!(!data.exists(), "nothing is created");
    }
    // Outside it, or the default location given explicitly, is fine.
    for archive in [dir.path().join("archive"), data.join("archive")] {
        let opts = PitOptions {
            archive_dir: Some(archive),
            ..options()
        };
        Pit::open(&data, &opts).unwrap().close().unwrap();
    }
}

/// Bug 6: deleting under storage pressure must give the space back (small objects sit in the
/// active segment), so that the next sweep is not still under pressure and deleting more.
#[test]
fn a_sweep_under_pressure_gives_space_back() {
    use rand::RngCore;
    let dir = tempfile::tempdir().unwrap();
    let pit = Pit::open(dir.path(), &options()).unwrap();
    let opts = crate::artifacts::PutOptions::default();
    let mut rng = rand::thread_rng();
    for i in 0..10 {
        let mut data = vec![0u8; 5000];
        rng.fill_bytes(&mut data);
        let id = pit
            .artifacts
            .put(&format!("low{i}"), &data, &opts, false)
            .unwrap();
        pit.artifacts
            .set_quality(id, Some(0.0), Some(0.0), Some(0.0), false)
            .unwrap();
    }
    pit.clock().advance(31 * 86_400 * SECOND);
    pit.stale
        .update_settings(false, |s| {
            s.watermarks = Some((20_000, 10_000));
            Ok(())
        })
        .unwrap();
    let before = pit.artifacts.local_bytes();
    assert!(before > 50_000);
    let rep = pit.stale.sweep(false, None, false).unwrap();
    assert!(rep.pressure);
    assert!(!rep.deleted.is_empty() && rep.deleted.len() < 10, "{rep:?}");
    assert!(rep.local_bytes_after <= 10_000, "{rep:?}");
    assert_eq!(pit.artifacts.local_bytes(), rep.local_bytes_after);
    // The next sweep is under no pressure and deletes nothing more.
    let again = pit.stale.sweep(false, None, false).unwrap();
    assert!(!again.pressure && again.deleted.is_empty(), "{again:?}");
    let left = pit.artifacts.len();
    pit.close().unwrap();
    let pit = Pit::open(dir.path(), &options()).unwrap();
    assert_eq!(pit.artifacts.len(), left);
    assert!(pit.artifacts.local_bytes() <= 10_000);
    for id in 1..=10 {
        if let Ok(v) = pit.artifacts.get(id, "test") {
            assert_eq!(v.len(), 5000);
        }
    }
    pit.close().unwrap();
}

/// Bug 11: a removed `snapshot.bin` is named as the problem, not blamed on a journal record.
#[test]
fn a_missing_snapshot_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let opts = options();
    {
        let pit = Pit::open(dir.path(), &opts).unwrap();
        pit.dag.create_workflow("w", false).unwrap();
        pit.checkpoint().unwrap();
        pit.dag.add_nodes("w", &["a"], None, None, false).unwrap();
        pit.close().unwrap();
    }
    std::fs::remove_file(dir.path().join("snapshot.bin")).unwrap();
    let before: Vec<_> = std::fs::read_dir(dir.path().join("journal"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    let err = Pit::open(dir.path(), &opts).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::DataDirCorrupt);
    let msg = err.to_string();
    assert!(
        msg.contains("snapshot.bin") && msg.contains("snapshot is missing"),
        "{msg}"
    );
    let after: Vec<_> = std::fs::read_dir(dir.path().join("journal"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(before, after, "nothing is created");
}

/// Bug 12 (in part): journal segments removed behind a snapshot are refused, not silently
/// restarted at LSN 1 (whose records replay would then skip as covered).
#[test]
fn a_journal_behind_the_snapshot_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let opts = options();
    {
        let pit = Pit::open(dir.path(), &opts).unwrap();
        pit.dag.create_workflow("w", false).unwrap();
        pit.dag
            .add_nodes("w", &["a", "b"], None, None, false)
            .unwrap();
        pit.close().unwrap();
    }
    std::fs::remove_dir_all(dir.path().join("journal")).unwrap();
    let err = Pit::open(dir.path(), &opts).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::DataDirCorrupt);
    assert!(
        err.to_string().contains("journal segments are missing"),
        "{err}"
    );
    assert!(!dir.path().join("journal").exists(), "nothing is created");
}
