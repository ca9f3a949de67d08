//! Tests of the Stale Manager against a fake store (the real one is exercised from Python after
//! the components are merged).

use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use rand::rngs::StdRng;

use super::*;
use crate::clock::Clock;
use crate::journal::{Journal, JournalOptions};

#[derive(Debug, Clone, Default)]
struct Art {
    size: u64,
    kind: u32,
    created: Micros,
    last_read: Micros,
    quality: f32,
    reuse: u32,
    successes: u32,
    held: bool,
    archived: Option<String>,
    blob: Vec<u8>,
}

/// Fault injection shared by the fake store and the fake backend: operation number `crash_at`
/// fails (error) or "crashes" (panics).
#[derive(Debug, Default)]
struct Chaos {
    ops: AtomicU64,
    crash_at: AtomicU64,
    panic: AtomicBool,
    /// The backend stores damaged bytes.
    corrupt_puts: AtomicBool,
    /// `verify_stored` refuses everything.
    refuse_verify: AtomicBool,
}

impl Chaos {
    fn step(&self, what: &str) -> Result<()> {
        let n = self.ops.fetch_add(1, Ordering::SeqCst) + 1;
        if n == self.crash_at.load(Ordering::SeqCst) {
            assert!(
                !self.panic.load(Ordering::SeqCst),
                "injected crash at {what}"
            );
            return Err(StaleError::Archive(format!("injected failure at {what}")).into());
        }
        Ok(())
    }
    fn calm(&self) {
        self.crash_at.store(0, Ordering::SeqCst);
        self.corrupt_puts.store(false, Ordering::SeqCst);
        self.refuse_verify.store(false, Ordering::SeqCst);
    }
}

#[derive(Default)]
struct FakeState {
    arts: BTreeMap<ArtifactId, Art>,
    refs: Vec<ArtifactId>,
    violations: Vec<String>,
    deleted: Vec<ArtifactId>,
    released: Vec<ArtifactId>,
    /// Settings and time the invariants are judged with.
    settings: Settings,
    now: Micros,
}

#[derive(Default)]
struct Fake {
    st: Mutex<FakeState>,
    observer: Mutex<Option<Weak<dyn ArtifactObserver>>>,
    chaos: Arc<Chaos>,
    backend: Arc<MemoryArchive>,
    /// Where `release_local` looks for the copy, if not `backend`.
    checker: Option<Arc<dyn ArchiveBackend>>,
}

fn emit(obs: &Mutex<Option<Weak<dyn ArtifactObserver>>>, e: &ArtifactEvent) {
    if let Some(o) = obs.lock().as_ref().and_then(Weak::upgrade) {
        o.on_event(e);
    }
}

fn describe(id: ArtifactId, a: &Art) -> Vec<ArtifactEvent> {
    let mut v = vec![
        ArtifactEvent::Stored {
            id,
            size: a.size,
            kind: a.kind,
            created: a.created,
        },
        ArtifactEvent::Quality {
            id,
            structure: a.quality,
            semantics: a.quality,
            utility: a.quality,
        },
        ArtifactEvent::Reused { id, count: a.reuse },
        ArtifactEvent::RunOutcome {
            id,
            successes: a.successes,
        },
        ArtifactEvent::Read {
            id,
            at: a.last_read,
        },
    ];
    if a.held {
        v.push(ArtifactEvent::Held { id, held: true });
    }
    if a.archived.is_some() {
        v.push(ArtifactEvent::Archived { id, archived: true });
    }
    v
}

impl Fake {
    fn add(&self, id: ArtifactId, a: Art) {
        let mut st = self.st.lock();
        for e in describe(id, &a) {
            emit(&self.observer, &e);
        }
        st.arts.insert(id, a);
    }

    fn set_held(&self, id: ArtifactId, held: bool) {
        let mut st = self.st.lock();
        if let Some(a) = st.arts.get_mut(&id) {
            a.held = held;
            emit(&self.observer, &ArtifactEvent::Held { id, held });
        }
    }

    /// The value of `id` per the documented formula, from the fake's own state.
    fn value_of(st: &FakeState, id: ArtifactId) -> f32 {
        let a = &st.arts[&id];
        let same = st.arts.values().filter(|b| b.kind == a.kind).count() as u32;
        let d = classify::diversity(same, st.arts.len());
        classify::value(a.quality, a.reuse, a.successes, d)
    }

    fn violations(&self) -> Vec<String> {
        self.st.lock().violations.clone()
    }
}

impl StaleTarget for Fake {
    fn set_observer(&self, observer: Weak<dyn ArtifactObserver>) {
        let st = self.st.lock();
        *self.observer.lock() = Some(observer);
        for (id, a) in &st.arts {
            for e in describe(*id, a) {
                emit(&self.observer, &e);
            }
        }
    }

    fn export_stored(&self, id: ArtifactId) -> Result<Vec<u8>> {
        self.chaos.step("export_stored")?;
        let st = self.st.lock();
        let a = st
            .arts
            .get(&id)
            .ok_or(crate::artifacts::ArtifactError::NotFound(id))?;
        if a.archived.is_some() {
            return Err(StaleError::Archive("blob not local".into()).into());
        }
        Ok(a.blob.clone())
    }

    fn verify_stored(&self, id: ArtifactId, stored: &[u8]) -> Result<()> {
        self.chaos.step("verify_stored")?;
        let st = self.st.lock();
        let a = st
            .arts
            .get(&id)
            .ok_or(crate::artifacts::ArtifactError::NotFound(id))?;
        if self.chaos.refuse_verify.load(Ordering::SeqCst) || a.blob != stored {
            return Err(StaleError::Archive(format!("copy of {id} does not verify")).into());
        }
        Ok(())
    }

    fn release_local(&self, id: ArtifactId, archive_ref: &str) -> Result<()> {
        self.chaos.step("release_local")?;
        let mut st = self.st.lock();
        let Some(a) = st.arts.get(&id) else {
            return Err(crate::artifacts::ArtifactError::NotFound(id).into());
        };
        // Invariant: a verified archive copy exists under the reference.
        let copy_ok = match &self.checker {
            Some(c) => c.get(archive_ref),
            None => self.backend.get(archive_ref),
        }
        .is_ok_and(|b| b == a.blob);
        let referenced = st.refs.contains(&id);
        if !copy_ok {
            st.violations
                .push(format!("released {id} without a verified archive copy"));
        }
        if referenced {
            st.violations.push(format!("archived referenced {id} away"));
        }
        let a = st.arts.get_mut(&id).expect("checked");
        a.archived = Some(archive_ref.to_string());
        st.released.push(id);
        emit(
            &self.observer,
            &ArtifactEvent::Archived { id, archived: true },
        );
        Ok(())
    }

    fn restore_local(&self, id: ArtifactId, stored: &[u8]) -> Result<()> {
        self.chaos.step("restore_local")?;
        let mut st = self.st.lock();
        let a = st
            .arts
            .get_mut(&id)
            .ok_or(crate::artifacts::ArtifactError::NotFound(id))?;
        if a.blob != stored {
            return Err(StaleError::Archive("restored copy differs".into()).into());
        }
        a.archived = None;
        emit(
            &self.observer,
            &ArtifactEvent::Archived {
                id,
                archived: false,
            },
        );
        Ok(())
    }

    fn delete(&self, id: ArtifactId, actor: &str) -> Result<DeleteOutcome> {
        self.chaos.step("delete")?;
        assert_eq!(actor, ACTOR);
        let mut st = self.st.lock();
        let Some(a) = st.arts.get(&id) else {
            return Ok(DeleteOutcome::Gone);
        };
        if a.held {
            return Ok(DeleteOutcome::Held);
        }
        let v = Self::value_of(&st, id);
        let a = &st.arts[&id];
        let mut bad = Vec::new();
        if v >= st.settings.high_value {
            bad.push(format!("deleted high-value {id} ({v})"));
        }
        if v >= st.settings.medium_value && a.archived.is_none() {
            bad.push(format!("deleted medium-value {id} before archiving ({v})"));
        }
        if st.now.saturating_sub(a.created) < st.settings.retention.max(MIN_DELETE_AGE) {
            bad.push(format!("deleted {id} younger than retention or 30 days"));
        }
        if st.refs.contains(&id) {
            bad.push(format!("deleted referenced {id}"));
        }
        st.violations.extend(bad);
        st.arts.remove(&id);
        st.deleted.push(id);
        emit(&self.observer, &ArtifactEvent::Deleted { id });
        Ok(DeleteOutcome::Deleted)
    }

    fn local_bytes(&self) -> u64 {
        self.st
            .lock()
            .arts
            .values()
            .filter(|a| a.archived.is_none())
            .map(|a| a.size)
            .sum()
    }
}

impl ReferenceSource for Fake {
    fn referenced_artifacts(&self) -> Vec<ArtifactId> {
        let mut r = self.st.lock().refs.clone();
        r.sort_unstable();
        r.dedup();
        r
    }
}

/// Backend wrapper sharing one [`MemoryArchive`] across manager instances, with faults.
#[derive(Debug)]
struct ChaosBackend {
    inner: Arc<MemoryArchive>,
    chaos: Arc<Chaos>,
}

impl ArchiveBackend for ChaosBackend {
    fn put(&self, key: &str, bytes: &[u8]) -> Result<ArchiveObject> {
        self.chaos.step("put")?;
        let o = self.inner.put(key, bytes)?;
        if self.chaos.corrupt_puts.load(Ordering::SeqCst) {
            self.inner.corrupt(key);
        }
        Ok(o)
    }
    fn get(&self, key: &str) -> Result<Vec<u8>> {
        self.chaos.step("get")?;
        self.inner.get(key)
    }
    fn verify(&self, key: &str) -> Result<ArchiveObject> {
        self.inner.verify(key)
    }
    fn delete(&self, key: &str) -> Result<bool> {
        self.inner.delete(key)
    }
    fn list(&self, prefix: &str) -> Result<Vec<ArchiveObject>> {
        self.inner.list(prefix)
    }
    fn describe(&self) -> String {
        "chaos".into()
    }
}

const NOW: Micros = 1_000 * DAY;

fn manager_over(fake: &Arc<Fake>, journal: Journal) -> StaleManager {
    let ctx = Ctx {
        journal,
        clock: Clock::manual(NOW),
        data_dir: None,
    };
    StaleManager::with_target(
        &ctx,
        Arc::clone(fake) as Arc<dyn StaleTarget>,
        Arc::clone(fake) as Arc<dyn ReferenceSource>,
        Box::new(ChaosBackend {
            inner: Arc::clone(&fake.backend),
            chaos: Arc::clone(&fake.chaos),
        }),
    )
}

fn manager(fake: &Arc<Fake>) -> StaleManager {
    manager_over(fake, Journal::in_memory())
}

fn art(size: u64, kind: u32, age_days: u64, quality: f32, successes: u32) -> Art {
    let created = NOW - age_days * DAY;
    Art {
        size,
        kind,
        created,
        last_read: created,
        quality,
        successes,
        blob: format!("blob-{size}-{kind}-{age_days}-{quality}").into_bytes(),
        ..Art::default()
    }
}

#[test]
fn archives_cold_valuable_artifacts_after_verifying_the_copy() {
    let fake = Arc::new(Fake::default());
    fake.add(1, art(100, 0, 40, 1.0, 2)); // high, cold
    fake.add(2, art(100, 1, 40, 0.9, 0)); // medium, cold
    fake.add(3, art(100, 2, 10, 1.0, 2)); // high, warm: too young
    fake.add(4, art(100, 3, 40, 0.0, 0)); // low, cold: kept without pressure
    let mut hot = art(100, 4, 40, 1.0, 2);
    hot.last_read = NOW - DAY; // read yesterday: hot
    fake.add(5, hot);
    let m = manager(&fake);
    assert_eq!(m.len(), 5);
    assert!(!m.is_empty());
    let dry = m.sweep(true, None, false).unwrap();
    assert_eq!(dry.archive_candidates, vec![1, 2]);
    assert!(dry.archived.is_empty() && dry.deleted.is_empty());
    assert_eq!(dry.local_bytes_after, 300);
    assert_eq!(
        fake.st.lock().released.len(),
        0,
        "a dry run changes nothing"
    );
    assert!(m.history().is_empty());
    let rep = m.sweep(false, None, false).unwrap();
    assert_eq!(rep.archived, vec![1, 2]);
    assert_eq!(rep.tiers, [1, 1, 3]);
    assert_eq!(rep.local_bytes_before, 500);
    assert_eq!(rep.local_bytes_after, 300);
    assert!(fake.violations().is_empty(), "{:?}", fake.violations());
    let rec = m.archive_record(1).unwrap();
    assert_eq!(rec.key, archive_key(1));
    assert_eq!(
        fake.backend.get(&rec.key).unwrap(),
        fake.st.lock().arts[&1].blob
    );
    assert!(m.classify(1, None).unwrap().archived);
    assert_eq!(m.archive_records().len(), 2);
    assert_eq!(m.history().len(), 1);
    // Nothing left to do: a second sweep archives nothing more.
    let again = m.sweep(false, None, false).unwrap();
    assert!(again.archive_candidates.is_empty());
    // Notifications: candidates then archived, oldest first.
    let notes = m.take_notifications(None);
    let kinds: Vec<_> = notes.iter().map(|n| (n.kind.as_str(), n.id)).collect();
    assert_eq!(
        kinds,
        vec![
            ("archive-candidate", 1),
            ("archive-candidate", 2),
            ("archive-candidate", 1),
            ("archive-candidate", 2),
            ("archived", 1),
            ("archived", 2),
        ]
    );
    assert!(notes[4].reason.contains("artifacts/"));
    // Restore brings the blob back locally.
    m.restore_from_archive(1).unwrap();
    assert!(!m.classify(1, None).unwrap().archived);
    assert!(fake.st.lock().arts[&1].archived.is_none());
    let e = m.restore_from_archive(3).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ArtifactNotFound);
    assert_eq!(e.detail(), Detail::Subject("3".into()));
    // A damaged archive copy is refused on restore.
    fake.backend.corrupt(&archive_key(2));
    assert_eq!(
        m.restore_from_archive(2).unwrap_err().kind(),
        ErrorKind::Archive
    );
    assert!(format!("{m:?}").contains("archive=chaos"));
    assert_eq!(m.archive().describe(), "chaos");
}

#[test]
fn a_failure_at_any_archive_step_keeps_the_local_copy() {
    // Steps per archive: export, put, get, verify, release.
    for step in 1..=5u64 {
        let fake = Arc::new(Fake::default());
        fake.add(1, art(100, 0, 40, 1.0, 2));
        fake.chaos.crash_at.store(step, Ordering::SeqCst);
        let m = manager(&fake);
        let rep = m.sweep(false, None, false).unwrap();
        assert!(rep.archived.is_empty(), "step {step}");
        assert!(
            matches!(&rep.skipped[..], [(1, SkipReason::ArchiveFailed(m))] if m.contains("injected")),
            "step {step}: {:?}",
            rep.skipped
        );
        assert!(fake.st.lock().arts[&1].archived.is_none());
        assert!(fake.violations().is_empty());
        // The archive record is written only once the copy verified (before release).
        assert_eq!(m.archive_record(1).is_some(), step == 5, "step {step}");
        // The next sweep finishes the job.
        let rep = m.sweep(false, None, false).unwrap();
        assert_eq!(rep.archived, vec![1]);
    }
    // A damaged copy (backend) or a copy the store refuses: no release.
    for corrupt in [true, false] {
        let fake = Arc::new(Fake::default());
        fake.add(1, art(100, 0, 40, 1.0, 2));
        fake.chaos.corrupt_puts.store(corrupt, Ordering::SeqCst);
        fake.chaos.refuse_verify.store(!corrupt, Ordering::SeqCst);
        let m = manager(&fake);
        let rep = m.sweep(false, None, false).unwrap();
        assert!(rep.archived.is_empty());
        let (_, reason) = &rep.skipped[0];
        let text = reason.text();
        assert!(
            text.contains(if corrupt {
                "checksum"
            } else {
                "does not verify"
            }),
            "{text}"
        );
        assert!(fake.st.lock().arts[&1].archived.is_none());
        assert!(fake.violations().is_empty());
    }
}

#[test]
fn deletes_only_under_pressure_lowest_value_first_down_to_the_low_watermark() {
    let fake = Arc::new(Fake::default());
    // Low-value cold artifacts, values rising with id (quality 0.00 .. 0.05).
    for id in 1..=6u64 {
        fake.add(id, art(100, 0, 40, (id as f32 - 1.0) * 0.01, 0));
    }
    fake.add(7, art(100, 0, 10, 0.0, 0)); // low but young
    let mut held = art(100, 0, 40, 0.0, 0);
    held.held = true;
    fake.add(8, held); // lowest value but held
    fake.add(9, art(100, 0, 40, 0.0, 0)); // referenced
    fake.st.lock().refs.push(9);
    fake.add(10, art(100, 0, 40, 0.7, 3)); // high value
    {
        let mut st = fake.st.lock();
        st.now = NOW;
        st.settings = Settings::default();
    }
    let m = manager(&fake);
    // No watermarks: nothing deleted.
    let rep = m.sweep(false, None, false).unwrap();
    assert!(rep.deleted.is_empty() && !rep.pressure);
    assert_eq!(rep.archived, vec![10]);
    // local = 900 bytes now. Below the high watermark: nothing deleted.
    m.update_settings(false, |s| {
        s.watermarks = Some((900, 500));
        Ok(())
    })
    .unwrap();
    let rep = m.sweep(false, None, false).unwrap();
    assert!(rep.deleted.is_empty() && !rep.pressure);
    // Above it: delete down to 500, lowest value first (1, 2, 3, 4).
    m.update_settings(false, |s| {
        s.watermarks = Some((800, 500));
        Ok(())
    })
    .unwrap();
    let dry = m.sweep(true, None, false).unwrap();
    assert!(dry.pressure);
    assert_eq!(dry.delete_candidates, vec![1, 2, 3, 4]);
    assert_eq!(dry.local_bytes_after, 500);
    assert!(dry
        .skipped
        .iter()
        .any(|(id, r)| *id == 8 && *r == SkipReason::Held));
    assert!(dry
        .skipped
        .iter()
        .any(|(id, r)| *id == 9 && *r == SkipReason::Referenced));
    let rep = m.sweep(false, None, false).unwrap();
    assert_eq!(rep.deleted, vec![1, 2, 3, 4]);
    assert_eq!(rep.local_bytes_after, 500);
    assert!(fake.violations().is_empty(), "{:?}", fake.violations());
    assert_eq!(m.len(), 6);
    let h = m.history();
    assert_eq!((h[2].deleted, h[2].pressure), (4, true));
    let notes = m.take_notifications(None);
    assert!(notes
        .iter()
        .any(|n| n.kind == NoteKind::DeleteCandidate && n.id == 1));
    assert!(notes
        .iter()
        .any(|n| n.kind == NoteKind::Deleted && n.id == 4));
}

#[test]
fn nothing_younger_than_30_days_is_deleted_even_with_a_short_retention() {
    let fake = Arc::new(Fake::default());
    fake.add(1, art(100, 0, 20, 0.0, 0)); // low, 20 days
    fake.add(2, art(100, 1, 20, 1.0, 2)); // high, 20 days
    fake.add(3, art(100, 0, 31, 0.0, 0)); // low, 31 days
    let m = manager(&fake);
    m.update_settings(false, |s| {
        s.retention = 10 * DAY;
        s.watermarks = Some((1, 0));
        Ok(())
    })
    .unwrap();
    {
        let mut st = fake.st.lock();
        st.settings = m.settings();
        st.now = NOW;
    }
    let rep = m.sweep(false, None, false).unwrap();
    assert_eq!(
        rep.archived,
        vec![2],
        "archiving follows the retention setting"
    );
    assert_eq!(rep.deleted, vec![3]);
    assert!(fake.st.lock().arts.contains_key(&1));
    assert_eq!(
        m.delete_one(1, NOW, &m.settings()),
        Err(SkipReason::TooYoung)
    );
    assert_eq!(SkipReason::TooYoung.text(), "too-young");
    assert!(fake.violations().is_empty(), "{:?}", fake.violations());
}

#[test]
fn the_stores_refusal_of_a_held_artifact_is_a_skip_not_a_crash() {
    let fake = Arc::new(Fake::default());
    fake.add(1, art(100, 0, 40, 0.0, 0));
    fake.add(2, art(100, 0, 40, 0.01, 0));
    // The store holds 1 but the manager has not heard of it (an event raced the sweep).
    fake.st.lock().arts.get_mut(&1).unwrap().held = true;
    let m = manager(&fake);
    m.update_settings(false, |s| {
        s.watermarks = Some((100, 0));
        Ok(())
    })
    .unwrap();
    let rep = m.sweep(false, None, false).unwrap();
    assert_eq!(rep.deleted, vec![2]);
    assert_eq!(rep.skipped, vec![(1, SkipReason::Held)]);
    assert!(fake.st.lock().arts.contains_key(&1));
}

#[test]
fn action_time_rechecks_catch_changes_after_selection() {
    let fake = Arc::new(Fake::default());
    fake.add(1, art(100, 0, 40, 0.0, 0));
    fake.add(2, art(100, 0, 40, 0.0, 0));
    fake.add(3, art(100, 0, 40, 0.0, 0));
    fake.add(4, art(100, 1, 40, 0.9, 0));
    let m = manager(&fake);
    m.update_settings(false, |s| {
        s.watermarks = Some((10, 0));
        Ok(())
    })
    .unwrap();
    let s = m.settings();
    // After selection: 1 is held, 2 referenced, 3 gone, 4 read (hot again).
    fake.set_held(1, true);
    fake.st.lock().refs.push(2);
    assert_eq!(m.delete_one(1, NOW, &s), Err(SkipReason::Held));
    assert_eq!(m.delete_one(2, NOW, &s), Err(SkipReason::Referenced));
    assert_eq!(m.delete_one(99, NOW, &s), Err(SkipReason::Gone));
    assert_eq!(m.delete_one(4, NOW, &s), Err(SkipReason::NotLowValue));
    assert_eq!(
        m.delete_one(3, NOW - 20 * DAY, &s),
        Err(SkipReason::NotCold)
    );
    assert_eq!(
        m.archive_one(4, NOW - 20 * DAY, &s),
        Err(SkipReason::NotCold)
    );
    assert_eq!(m.archive_one(99, NOW, &s), Err(SkipReason::Gone));
    fake.st.lock().refs.push(4);
    assert_eq!(m.archive_one(4, NOW, &s), Err(SkipReason::Referenced));
    fake.st.lock().refs.clear();
    assert_eq!(m.archive_one(4, NOW, &s), Ok(()));
    assert_eq!(m.archive_one(4, NOW, &s), Err(SkipReason::Gone));
    assert_eq!(m.delete_one(4, NOW, &s), Err(SkipReason::Gone));
    assert!(fake.violations().is_empty());
}

#[test]
fn notifications_are_bounded_and_drop_the_oldest() {
    let fake = Arc::new(Fake::default());
    for id in 1..=10 {
        fake.add(id, art(10, id as u32, 40, 1.0, 2));
    }
    let m = manager(&fake);
    m.update_settings(false, |s| {
        s.notification_capacity = 4;
        Ok(())
    })
    .unwrap();
    let rep = m.sweep(true, None, false).unwrap();
    assert_eq!((rep.archive_candidates.len(), rep.notifications), (10, 10));
    assert_eq!(m.notification_counts().0, 4);
    m.sweep(true, None, false).unwrap();
    assert_eq!(m.notification_counts(), (4, 16));
    let first = m.take_notifications(Some(1));
    assert_eq!(first[0].id, 7);
    assert_eq!(m.take_notifications(None).len(), 3);
    assert_eq!(m.notification_counts().0, 0);
}

type Case = (fn(&mut Settings), &'static str);

#[test]
fn settings_are_validated() {
    let fake = Arc::new(Fake::default());
    let m = manager(&fake);
    let cases: [Case; 6] = [
        (|s| s.medium_value = 0.0, "medium_value"),
        (|s| s.medium_value = f32::NAN, "medium_value"),
        (|s| s.high_value = 0.2, "high_value"),
        (|s| s.high_value = 1.5, "high_value"),
        (|s| s.watermarks = Some((5, 5)), "watermarks"),
        (|s| s.notification_capacity = 0, "notification_capacity"),
    ];
    for (f, name) in cases {
        let e = m
            .update_settings(false, |s| {
                f(s);
                Ok(())
            })
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidArgument);
        assert_eq!(e.detail(), Detail::Subject(name.into()), "{e}");
    }
    assert_eq!(m.settings(), Settings::default());
    assert!(days_to_micros("retention_days", -1.0).is_err());
    assert!(days_to_micros("retention_days", f64::INFINITY).is_err());
    assert_eq!(days_to_micros("retention_days", 1.5).unwrap(), DAY * 3 / 2);
    let e = m.classify(42, None).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ArtifactNotFound);
    assert!(e.to_string().contains("42"));
    let k = StaleError::InvalidKey("a/..".into());
    assert_eq!(k.kind(), ErrorKind::InvalidArgument);
    assert_eq!(k.detail(), Detail::Subject("a/..".into()));
    assert_eq!(StaleError::Archive("x".into()).detail(), Detail::None);
}

#[test]
fn state_survives_snapshot_and_journal_replay() {
    let dir = tempfile::tempdir().unwrap();
    let fake = Arc::new(Fake::default());
    fake.add(1, art(100, 0, 40, 1.0, 2));
    let (journal, _) = Journal::open(dir.path(), JournalOptions::default()).unwrap();
    let m = manager_over(&fake, journal.clone());
    m.update_settings(false, |s| {
        s.retention = 20 * DAY;
        s.watermarks = Some((1000, 10));
        Ok(())
    })
    .unwrap();
    m.sweep(false, None, true).unwrap();
    let (_, snap) = m.snapshot().unwrap();
    journal.close().unwrap();
    drop(m);
    // Replay of the journal alone.
    let (journal, records) = Journal::open(dir.path(), JournalOptions::default()).unwrap();
    let fake2 = Arc::new(Fake::default());
    let m2 = manager_over(&fake2, journal.clone());
    for r in &records {
        assert_eq!(r.tag, Tag::Stale);
        m2.replay(r.lsn, &r.payload).unwrap();
    }
    assert_eq!(m2.settings().retention, 20 * DAY);
    assert_eq!(m2.settings().watermarks, Some((1000, 10)));
    assert_eq!(m2.archive_record(1).unwrap().key, archive_key(1));
    assert_eq!(m2.history().len(), 1);
    // Restore from the snapshot.
    let m3 = manager(&fake2);
    m3.restore(&snap).unwrap();
    assert_eq!(m3.settings(), m2.settings());
    assert_eq!(m3.archive_records(), m2.archive_records());
    assert_eq!(m3.history(), m2.history());
    assert!(m3.restore(b"\xff\xff").is_err());
    assert!(m3.replay(1, b"\xff\xff").is_err());
    assert_eq!(m3.tag(), Tag::Stale);
    journal.close().unwrap();
}

#[test]
fn synthetic_load_feeds_the_event_path() {
    let fake = Arc::new(Fake::default());
    let m = manager(&fake);
    assert_eq!(m.load_synthetic_for_benchmark(10_000, 7), 1);
    assert_eq!(m.load_synthetic_for_benchmark(10, 7), 10_001);
    assert_eq!(m.len(), 10_010);
    let p = m.plan(NOW);
    assert_eq!(p.examined, 10_010);
    assert!(p.archive_len() > 0 && !p.pool.is_empty());
    assert!(p.classes.iter().all(|c| *c > 0), "{:?}", p.classes);
    assert!(p.pool.windows(2).all(|w| w[0].value <= w[1].value));
    // A real sweep over artifacts the store does not have skips them as gone.
    let rep = m.sweep(false, None, false).unwrap();
    assert!(rep.archived.is_empty());
    assert!(rep.skipped.iter().any(|(_, r)| *r == SkipReason::Gone));
}

fn random_scenario(rng: &mut StdRng, fake: &Fake) -> Settings {
    let medium = rng.gen_range(0.1f32..0.5);
    let high = rng.gen_range(medium + 0.05..0.9);
    let n = rng.gen_range(5..40u64);
    let mut total = 0;
    for id in 1..=n {
        let mut a = art(
            rng.gen_range(1..1000),
            rng.gen_range(0..4),
            rng.gen_range(0..80),
            rng.gen(),
            if rng.gen_bool(0.3) {
                rng.gen_range(1..4)
            } else {
                0
            },
        );
        a.reuse = if rng.gen_bool(0.3) {
            rng.gen_range(1..5)
        } else {
            0
        };
        a.held = rng.gen_bool(0.15);
        if rng.gen_bool(0.2) {
            a.last_read = NOW - rng.gen_range(0..10) * DAY;
        }
        total += a.size;
        fake.add(id, a);
        if rng.gen_bool(0.15) {
            fake.st.lock().refs.push(id);
        }
    }
    let high_wm = rng.gen_range(0..=total);
    let settings = Settings {
        medium_value: medium,
        high_value: high,
        watermarks: rng
            .gen_bool(0.8)
            .then(|| (high_wm, rng.gen_range(0..=high_wm.max(1) - 1))),
        notification_capacity: rng.gen_range(1..50),
        retention: rng.gen_range(5..45) * DAY,
        ..Settings::default()
    };
    let mut st = fake.st.lock();
    st.settings = settings.clone();
    st.now = NOW;
    settings
}

/// Run one scenario: a sweep that crashes or fails at a random step, then a fresh manager
/// rebuilt from the store's events and the old manager's journaled state (snapshot, or the
/// journal records when `journal_dir` is given) finishes the work.
// One scenario reads best as one story: set up, crash, rebuild, check.
#[allow(clippy::too_many_lines)]
fn run_scenario(seed: u64, journal_dir: Option<&std::path::Path>) -> [u64; 4] {
    let mut rng = StdRng::seed_from_u64(seed);
    let fake = Arc::new(Fake::default());
    let settings = random_scenario(&mut rng, &fake);
    let journal = match journal_dir {
        Some(d) => Journal::open(d, JournalOptions::default()).unwrap().0,
        None => Journal::in_memory(),
    };
    let m = manager_over(&fake, journal.clone());
    let s2 = settings.clone();
    m.update_settings(false, move |s| {
        *s = s2;
        Ok(())
    })
    .unwrap();
    fake.chaos
        .crash_at
        .store(rng.gen_range(1..60), Ordering::SeqCst);
    fake.chaos.panic.store(rng.gen_bool(0.5), Ordering::SeqCst);
    fake.chaos
        .corrupt_puts
        .store(rng.gen_bool(0.1), Ordering::SeqCst);
    let dry = rng.gen_bool(0.1);
    let first = catch_unwind(AssertUnwindSafe(|| m.sweep(dry, None, false)));
    let mut stats = [
        u64::from(first.is_err()),
        u64::from(
            fake.chaos.ops.load(Ordering::SeqCst) >= fake.chaos.crash_at.load(Ordering::SeqCst),
        ),
        0,
        0,
    ];
    if let Ok(Ok(rep)) = &first {
        // Whatever happened, the report is consistent with the store.
        for id in &rep.archived {
            assert!(fake.st.lock().arts[id].archived.is_some(), "seed {seed}");
        }
        for id in &rep.deleted {
            assert!(!fake.st.lock().arts.contains_key(id), "seed {seed}");
        }
    }
    // "Crash": rebuild a fresh manager from what was journaled.
    let (_, snap) = m.snapshot().unwrap();
    drop(m);
    let m2 = if let Some(d) = journal_dir {
        journal.close().unwrap();
        let (j, records) = Journal::open(d, JournalOptions::default()).unwrap();
        let m2 = manager_over(&fake, j);
        for r in &records {
            m2.replay(r.lsn, &r.payload).unwrap();
        }
        m2
    } else {
        let m2 = manager(&fake);
        m2.restore(&snap).unwrap();
        m2
    };
    assert_eq!(m2.settings(), settings, "seed {seed}");
    // Every artifact the store released has a journaled archive record (written before release).
    for (id, a) in &fake.st.lock().arts {
        if let Some(key) = &a.archived {
            let rec = m2.archive_record(*id);
            assert_eq!(rec.map(|r| r.key), Some(key.clone()), "seed {seed}");
        }
    }
    // Things change between sweeps: holds, references.
    let ids: Vec<ArtifactId> = fake.st.lock().arts.keys().copied().collect();
    for id in &ids {
        if rng.gen_bool(0.1) {
            fake.set_held(*id, rng.gen_bool(0.5));
        }
    }
    fake.chaos.calm();
    let rep = m2.sweep(false, None, false).unwrap();
    // After a calm sweep, no cold valuable unreferenced local artifact is left unarchived.
    let st = fake.st.lock();
    for id in rep.archive_candidates {
        assert!(st.arts[&id].archived.is_some(), "seed {seed}: {id}");
    }
    let local: u64 = st
        .arts
        .values()
        .filter(|a| a.archived.is_none())
        .map(|a| a.size)
        .sum();
    assert!(st.violations.is_empty(), "seed {seed}: {:?}", st.violations);
    drop(st);
    if let Some((_, low)) = settings.watermarks {
        if rep.pressure && local > low {
            // Stopped above the low watermark only because the candidates ran out.
            for c in m2.plan(NOW).pool {
                assert!(
                    rep.delete_candidates.contains(&c.id),
                    "seed {seed}: {}",
                    c.id
                );
            }
        }
    }
    let st = fake.st.lock();
    stats[2] = st.deleted.len() as u64;
    stats[3] = st.released.len() as u64;
    drop(st);
    if let Some(d) = journal_dir {
        drop(m2);
        let _ = std::fs::remove_dir_all(d);
    }
    stats
}

fn quiet_injected_panics() -> Box<dyn Fn(&std::panic::PanicHookInfo<'_>) + Sync + Send + 'static> {
    let prev = std::panic::take_hook();
    std::panic::set_hook(Box::new(|info| {
        let msg = info.to_string();
        if !msg.contains("injected crash") {
            eprintln!("{msg}");
        }
    }));
    prev
}

#[test]
fn randomized_crashes_never_break_the_safety_rules() {
    let prev = quiet_injected_panics();
    let mut total = [0u64; 4];
    for seed in 0..3000 {
        let s = run_scenario(seed, None);
        for i in 0..4 {
            total[i] += s[i];
        }
    }
    std::panic::set_hook(prev);
    // The scenarios exercise what they claim: panics, injected failures, deletions, archives.
    let [panics, faults, deleted, released] = total;
    assert!(panics > 500 && faults > 1000, "{total:?}");
    assert!(deleted > 5000 && released > 5000, "{total:?}");
}

#[test]
fn randomized_crashes_with_journal_replay() {
    let dir = tempfile::tempdir().unwrap();
    let prev = quiet_injected_panics();
    let mut released = 0;
    for seed in 10_000..10_060 {
        released += run_scenario(seed, Some(&dir.path().join(seed.to_string())))[3];
    }
    std::panic::set_hook(prev);
    assert!(released > 100, "{released}");
}

#[test]
fn local_dir_archive_under_the_manager() {
    let dir = tempfile::tempdir().unwrap();
    let local = Arc::new(LocalDirArchive::open(dir.path()).unwrap());
    let fake = Arc::new(Fake {
        checker: Some(Arc::clone(&local) as Arc<dyn ArchiveBackend>),
        ..Fake::default()
    });
    fake.add(1, art(100, 0, 40, 1.0, 2));
    let ctx = Ctx::in_memory(Clock::manual(NOW));
    let m = StaleManager::with_target(
        &ctx,
        Arc::clone(&fake) as Arc<dyn StaleTarget>,
        Arc::clone(&fake) as Arc<dyn ReferenceSource>,
        Box::new(Arc::clone(&local)),
    );
    let rep = m.sweep(false, None, false).unwrap();
    assert_eq!(rep.archived, vec![1]);
    assert!(fake.violations().is_empty(), "{:?}", fake.violations());
    let objs = m.archive().list("artifacts/").unwrap();
    assert_eq!(objs.len(), 1);
    assert_eq!(objs[0].key, archive_key(1));
    assert_eq!(m.archive().verify(&objs[0].key).unwrap().size, objs[0].size);
    m.restore_from_archive(1).unwrap();
    assert!(fake.st.lock().arts[&1].archived.is_none());
}
