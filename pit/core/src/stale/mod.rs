//! Stale Manager: training-value tiers, archive and pressure-driven cleanup of artifacts.
//!
//! The manager keeps its own columnar view of artifact facts ([`facts::Facts`]), fed by the
//! Artifact Store's [`ArtifactEvent`]s (it never reads the store's tables). A [`StaleManager::sweep`]
//! classifies every live artifact (value class and tier, formula in [`classify`]), then:
//!
//! 1. **archives** cold medium- and high-value local artifacts that no workflow references:
//!    `export_stored` → backend `put` → backend `get` (checksum) + `verify_stored` → journal the
//!    archive record → `release_local`. A failure at any step keeps the local copy;
//! 2. under **storage pressure** (the store's `local_bytes()` above the high watermark) **deletes**
//!    cold low-value artifacts that are unreferenced and not held, lowest value first, until the
//!    low watermark is reached. Each deletion re-checks hold, value, tier and references at
//!    action time; the store's own refusal of a held artifact is reported as "skipped: held".
//!
//! High- and medium-value artifacts are never deleted; nothing is released locally without a
//! verified archive copy; nothing younger than the retention period is touched.
//!
//! Persistent state (journal tag `Stale`): settings, archive records (artifact id → archive key,
//! size, checksum) and the history of real sweeps. The facts are not persisted: the store emits
//! its events again while it restores, which rebuilds them.

pub mod archive;
pub mod classify;
pub mod facts;

use std::borrow::Cow;
use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Weak};
use std::time::Instant;

use parking_lot::Mutex;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

pub use self::archive::{
    check_key, ArchiveBackend, ArchiveObject, LocalDirArchive, MemoryArchive, ReadOnlyArchive,
};
pub use self::classify::{
    Candidate, Plan, Settings, SkipReason, Tier, ValueClass, DAY, MIN_DELETE_AGE,
};
use self::facts::{Facts, ARCHIVED, HELD};
use crate::artifacts::{ArtifactEvent, ArtifactObserver, ArtifactStore};
use crate::dag::DagTracker;
use crate::error::{Classify, Detail, Error, ErrorKind, Result};
use crate::{ArtifactId, Ctx, Lsn, Micros, Persistent, Tag};

/// Stale Manager failures.
#[derive(Debug, thiserror::Error)]
pub enum StaleError {
    /// The archive backend failed, or its copy did not verify.
    #[error("archive: {0}")]
    Archive(String),
    /// An archive key an object store or file system would misread.
    #[error("invalid archive key {0:?}: use 1-512 characters of [A-Za-z0-9._/-] in non-empty segments without '.', '..' or a '.partial' suffix")]
    InvalidKey(String),
    /// A setting with a value out of range.
    #[error("invalid setting {name}: {reason}")]
    InvalidSetting {
        /// The setting.
        name: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The manager has no facts about this artifact (unknown or deleted).
    #[error("unknown artifact {0} (the Stale Manager has no facts about it)")]
    UnknownArtifact(ArtifactId),
    /// The artifact has no archive copy recorded.
    #[error("artifact {0} has no archive copy")]
    NotArchived(ArtifactId),
}

impl Classify for StaleError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::Archive(_) => ErrorKind::Archive,
            Self::InvalidKey(_) | Self::InvalidSetting { .. } => ErrorKind::InvalidArgument,
            Self::UnknownArtifact(_) | Self::NotArchived(_) => ErrorKind::ArtifactNotFound,
        }
    }

    fn detail(&self) -> Detail {
        match self {
            Self::UnknownArtifact(id) | Self::NotArchived(id) => Detail::Subject(id.to_string()),
            Self::InvalidKey(k) => Detail::Subject(k.clone()),
            Self::InvalidSetting { name, .. } => Detail::Subject((*name).to_string()),
            Self::Archive(_) => Detail::None,
        }
    }
}

/// The artifact operations the manager uses: implemented by [`ArtifactStore`] (delegating to its
/// contract methods) and by test fakes.
pub trait StaleTarget: Send + Sync {
    /// Register the observer that receives every artifact event.
    fn set_observer(&self, observer: Weak<dyn ArtifactObserver>);
    /// The stored (encrypted) bytes of an artifact's blob.
    fn export_stored(&self, id: ArtifactId) -> Result<Vec<u8>>;
    /// Check an archive copy against the artifact.
    fn verify_stored(&self, id: ArtifactId, stored: &[u8]) -> Result<()>;
    /// Drop the local copy; the blob now lives under `archive_ref`.
    fn release_local(&self, id: ArtifactId, archive_ref: &str) -> Result<()>;
    /// Put an archived blob back locally.
    fn restore_local(&self, id: ArtifactId, stored: &[u8]) -> Result<()>;
    /// Delete the artifact version as `actor`. A refusal because of a legal hold is
    /// `Ok(DeleteOutcome::Held)`, an unknown id `Ok(DeleteOutcome::Gone)`.
    fn delete(&self, id: ArtifactId, actor: &str) -> Result<DeleteOutcome>;
    /// Bytes the store occupies locally.
    fn local_bytes(&self) -> u64;
    /// Give back the space of deleted objects now (compaction, the active segment included);
    /// returns the bytes given back. Fakes with nothing to compact keep the default.
    fn reclaim_space(&self) -> Result<u64> {
        Ok(0)
    }
}

impl StaleTarget for ArtifactStore {
    fn set_observer(&self, observer: Weak<dyn ArtifactObserver>) {
        ArtifactStore::set_observer(self, observer);
    }
    fn export_stored(&self, id: ArtifactId) -> Result<Vec<u8>> {
        ArtifactStore::export_stored(self, id)
    }
    fn verify_stored(&self, id: ArtifactId, stored: &[u8]) -> Result<()> {
        ArtifactStore::verify_stored(self, id, stored)
    }
    fn release_local(&self, id: ArtifactId, archive_ref: &str) -> Result<()> {
        ArtifactStore::release_local(self, id, archive_ref)
    }
    fn restore_local(&self, id: ArtifactId, stored: &[u8]) -> Result<()> {
        ArtifactStore::restore_local(self, id, stored)
    }
    fn delete(&self, id: ArtifactId, actor: &str) -> Result<DeleteOutcome> {
        match ArtifactStore::delete(self, id, actor) {
            Ok(()) => Ok(DeleteOutcome::Deleted),
            Err(e) => match e.kind() {
                ErrorKind::LegalHold => Ok(DeleteOutcome::Held),
                ErrorKind::ArtifactNotFound => Ok(DeleteOutcome::Gone),
                _ => Err(e),
            },
        }
    }
    fn local_bytes(&self) -> u64 {
        ArtifactStore::local_bytes(self)
    }
    fn reclaim_space(&self) -> Result<u64> {
        ArtifactStore::compact_with(self, true)
    }
}

/// What became of a deletion request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeleteOutcome {
    /// Deleted.
    Deleted,
    /// Refused: under legal hold.
    Held,
    /// No such artifact (already deleted).
    Gone,
}

/// Who holds references to artifacts (the DAG Tracker).
pub trait ReferenceSource: Send + Sync {
    /// Every referenced artifact id, sorted and deduplicated.
    fn referenced_artifacts(&self) -> Vec<ArtifactId>;
}

impl ReferenceSource for DagTracker {
    fn referenced_artifacts(&self) -> Vec<ArtifactId> {
        DagTracker::referenced_artifacts(self)
    }
}

/// The actor the manager deletes as (in the store's audit trail).
pub const ACTOR: &str = "stale-manager";

/// The archive key of an artifact.
pub fn archive_key(id: ArtifactId) -> String {
    format!("artifacts/{id:020}")
}

/// Kind of a notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NoteKind {
    /// A sweep selected it for archiving.
    ArchiveCandidate,
    /// A sweep selected it for deletion (storage pressure).
    DeleteCandidate,
    /// Archived, local copy released.
    Archived,
    /// Deleted.
    Deleted,
}

impl NoteKind {
    /// Lowercase name (`archive-candidate`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ArchiveCandidate => "archive-candidate",
            Self::DeleteCandidate => "delete-candidate",
            Self::Archived => "archived",
            Self::Deleted => "deleted",
        }
    }
}

/// A notification for the user.
#[derive(Debug, Clone, PartialEq)]
pub struct Notification {
    /// What happened.
    pub kind: NoteKind,
    /// The artifact.
    pub id: ArtifactId,
    /// Its training value.
    pub value: f32,
    /// Why.
    pub reason: Cow<'static, str>,
    /// When (the sweep's time).
    pub at: Micros,
}

#[derive(Debug, Default)]
struct Notes {
    queue: VecDeque<Notification>,
    dropped: u64,
}

impl Notes {
    fn push(&mut self, n: Notification, cap: usize) {
        while self.queue.len() >= cap.max(1) {
            self.queue.pop_front();
            self.dropped += 1;
        }
        self.queue.push_back(n);
    }
}

const ARCHIVE_WHY: &str =
    "cold, medium or high value, unreferenced: archive, then release the local copy";
const DELETE_WHY: &str = "storage pressure: cold, low value, unreferenced, not held";
const DELETED_WHY: &str = "deleted under storage pressure";

/// Notifications of one sweep; keeps only the last `cap` (the queue would drop the others).
struct NoteSink {
    cap: usize,
    now: Micros,
    generated: u64,
    notes: VecDeque<Notification>,
}

impl NoteSink {
    fn note(&mut self, kind: NoteKind, id: ArtifactId, value: f32, reason: Cow<'static, str>) {
        self.generated += 1;
        if self.notes.len() >= self.cap.max(1) {
            self.notes.pop_front();
        }
        self.notes.push_back(Notification {
            kind,
            id,
            value,
            reason,
            at: self.now,
        });
    }
}

/// A recorded archive copy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArchiveRecord {
    /// The artifact.
    pub id: ArtifactId,
    /// Its key in the backend.
    pub key: String,
    /// Bytes archived.
    pub size: u64,
    /// BLAKE3 of the archived bytes.
    pub checksum: [u8; 32],
    /// When archived.
    pub at: Micros,
}

/// Summary of a real (not dry-run) sweep, kept in the history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SweepSummary {
    /// When.
    pub at: Micros,
    /// Artifacts examined.
    pub examined: u64,
    /// Archived.
    pub archived: u64,
    /// Deleted.
    pub deleted: u64,
    /// Skipped.
    pub skipped: u64,
    /// Local bytes before.
    pub local_bytes_before: u64,
    /// Local bytes after.
    pub local_bytes_after: u64,
    /// Whether the high watermark was exceeded after archiving.
    pub pressure: bool,
}

/// How many sweep summaries the history keeps.
pub const HISTORY: usize = 100;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Persisted {
    settings: Settings,
    archives: BTreeMap<ArtifactId, ArchiveRecord>,
    history: VecDeque<SweepSummary>,
}

#[derive(Debug, Serialize, Deserialize)]
enum Record {
    Settings(Settings),
    Archived(ArchiveRecord),
    Sweep(SweepSummary),
}

impl Persisted {
    fn apply(&mut self, rec: Record) {
        match rec {
            Record::Settings(s) => self.settings = s,
            Record::Archived(a) => {
                self.archives.insert(a.id, a);
            }
            Record::Sweep(s) => {
                while self.history.len() >= HISTORY {
                    self.history.pop_front();
                }
                self.history.push_back(s);
            }
        }
    }
}

/// What a sweep did (or, in a dry run, would do).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SweepReport {
    /// The sweep's time.
    pub at: Micros,
    /// Whether nothing was changed.
    pub dry_run: bool,
    /// Live artifacts examined.
    pub examined: u64,
    /// Count per tier: hot, warm, cold.
    pub tiers: [u64; 3],
    /// Count per value class: low, medium, high.
    pub classes: [u64; 3],
    /// The store's `local_bytes()` before.
    pub local_bytes_before: u64,
    /// After (measured; estimated from sizes in a dry run).
    pub local_bytes_after: u64,
    /// Whether the high watermark was exceeded once archiving was done (estimated in a dry run).
    pub pressure: bool,
    /// Selected for archiving.
    pub archive_candidates: Vec<ArtifactId>,
    /// Selected for deletion.
    pub delete_candidates: Vec<ArtifactId>,
    /// Archived (always empty in a dry run).
    pub archived: Vec<ArtifactId>,
    /// Deleted (always empty in a dry run).
    pub deleted: Vec<ArtifactId>,
    /// Held back, with the reason.
    pub skipped: Vec<(ArtifactId, SkipReason)>,
    /// Notifications queued by this sweep.
    pub notifications: u64,
    /// Time spent classifying and selecting, in µs.
    pub plan_micros: u64,
}

/// Facts about one artifact, as the manager sees them.
#[derive(Debug, Clone, PartialEq)]
pub struct ArtifactValue {
    /// The artifact.
    pub id: ArtifactId,
    /// Training value.
    pub value: f32,
    /// Its class.
    pub class: ValueClass,
    /// Its tier at the time asked.
    pub tier: Tier,
    /// Mean quality score.
    pub quality: f32,
    /// Reuse count.
    pub reuse: u32,
    /// Successful runs in its lineage.
    pub successes: u32,
    /// Diversity term.
    pub diversity: f32,
    /// Under legal hold.
    pub held: bool,
    /// Blob only in the archive.
    pub archived: bool,
    /// Plaintext size.
    pub size: u64,
    /// When stored.
    pub created: Micros,
    /// Last read.
    pub last_access: Micros,
}

#[derive(Debug, Default)]
struct Shared {
    facts: Mutex<Facts>,
}

impl ArtifactObserver for Shared {
    fn on_event(&self, event: &ArtifactEvent) {
        self.facts.lock().apply(event);
    }
}

/// Tiers, archive and cleanup of artifacts by training value.
pub struct StaleManager {
    ctx: Ctx,
    target: Arc<dyn StaleTarget>,
    refs: Arc<dyn ReferenceSource>,
    archive: Box<dyn ArchiveBackend>,
    shared: Arc<Shared>,
    state: Mutex<Persisted>,
    notes: Mutex<Notes>,
    sweep_lock: Mutex<()>,
}

impl std::fmt::Debug for StaleManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "StaleManager(artifacts={}, archived={}, archive={})",
            self.len(),
            self.state.lock().archives.len(),
            self.archive.describe()
        )
    }
}

fn invalid(name: &'static str, reason: impl Into<String>) -> Error {
    StaleError::InvalidSetting {
        name,
        reason: reason.into(),
    }
    .into()
}

/// Check settings; the error names the first bad one.
pub fn validate(s: &Settings) -> Result<()> {
    let t = |x: f32| x.is_finite() && (0.0..=1.0).contains(&x);
    if !t(s.medium_value) || s.medium_value <= 0.0 {
        return Err(invalid(
            "medium_value",
            format!("expected a number in (0, 1], got {}", s.medium_value),
        ));
    }
    if !t(s.high_value) || s.high_value <= s.medium_value {
        return Err(invalid(
            "high_value",
            format!(
                "expected a number in ({}, 1] (above medium_value), got {}",
                s.medium_value, s.high_value
            ),
        ));
    }
    if let Some((high, low)) = s.watermarks {
        if low >= high {
            return Err(invalid(
                "watermarks",
                format!("the low watermark ({low}) must be below the high one ({high})"),
            ));
        }
    }
    if s.notification_capacity == 0 || s.notification_capacity > 1_000_000 {
        return Err(invalid(
            "notification_capacity",
            format!("expected 1..=1000000, got {}", s.notification_capacity),
        ));
    }
    Ok(())
}

/// Days (float) to µs, refusing negative or non-finite values.
pub fn days_to_micros(name: &'static str, days: f64) -> Result<Micros> {
    if !(days.is_finite() && (0.0..=36_500.0).contains(&days)) {
        return Err(invalid(
            name,
            format!("expected a number of days in 0..=36500, got {days}"),
        ));
    }
    Ok((days * DAY as f64).round() as Micros)
}

/// Why the archive of one artifact did not happen.
fn archive_failed(e: &Error) -> SkipReason {
    if e.kind() == ErrorKind::ArtifactNotFound {
        SkipReason::Gone
    } else {
        SkipReason::ArchiveFailed(e.to_string())
    }
}

impl StaleManager {
    /// A manager over `artifacts`, honouring references held by `dag`.
    pub fn new(
        ctx: &Ctx,
        artifacts: Arc<ArtifactStore>,
        dag: Arc<DagTracker>,
        archive: Box<dyn ArchiveBackend>,
    ) -> Self {
        Self::with_target(ctx, artifacts, dag, archive)
    }

    /// A manager over any [`StaleTarget`] and [`ReferenceSource`] (tests, simulations).
    pub fn with_target(
        ctx: &Ctx,
        target: Arc<dyn StaleTarget>,
        refs: Arc<dyn ReferenceSource>,
        archive: Box<dyn ArchiveBackend>,
    ) -> Self {
        let shared = Arc::new(Shared::default());
        let weak: Weak<Shared> = Arc::downgrade(&shared);
        let weak: Weak<dyn ArtifactObserver> = weak;
        target.set_observer(weak);
        Self {
            ctx: ctx.clone(),
            target,
            refs,
            archive,
            shared,
            state: Mutex::new(Persisted::default()),
            notes: Mutex::new(Notes::default()),
            sweep_lock: Mutex::new(()),
        }
    }

    /// Live artifacts the manager has facts about.
    pub fn len(&self) -> usize {
        self.shared.facts.lock().len()
    }

    /// Whether it has none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The archive backend.
    pub fn archive(&self) -> &dyn ArchiveBackend {
        self.archive.as_ref()
    }

    /// The current settings.
    pub fn settings(&self) -> Settings {
        self.state.lock().settings.clone()
    }

    /// Change the settings with `f`, validate, journal. Acknowledged; durable with `durable`.
    pub fn update_settings(
        &self,
        durable: bool,
        f: impl FnOnce(&mut Settings) -> Result<()>,
    ) -> Result<Settings> {
        let lsn = {
            let mut st = self.state.lock();
            let mut s = st.settings.clone();
            f(&mut s)?;
            validate(&s)?;
            let lsn = self
                .ctx
                .journal
                .append(Tag::Stale, &Record::Settings(s.clone()))?;
            st.settings = s;
            lsn
        };
        if durable {
            self.ctx.journal.sync(lsn)?;
        }
        Ok(self.settings())
    }

    /// Value, class and tier of one artifact at `now` (default: the clock).
    pub fn classify(&self, id: ArtifactId, now: Option<Micros>) -> Result<ArtifactValue> {
        let now = now.unwrap_or_else(|| self.ctx.clock.now());
        let settings = self.settings();
        let f = self.shared.facts.lock();
        let r = f.row(id).ok_or(StaleError::UnknownArtifact(id))?;
        let d = classify::diversity(
            f.kind_counts.get(f.kind[r] as usize).copied().unwrap_or(0),
            f.len(),
        );
        let v = classify::value(f.quality[r], f.reuse[r], f.successes[r], d);
        Ok(ArtifactValue {
            id,
            value: v,
            class: classify::class(v, &settings),
            tier: classify::tier(f.created[r], f.last_access[r], now, &settings),
            quality: f.quality[r],
            reuse: f.reuse[r],
            successes: f.successes[r],
            diversity: d,
            held: f.has(r, HELD),
            archived: f.has(r, ARCHIVED),
            size: f.size[r],
            created: f.created[r],
            last_access: f.last_access[r],
        })
    }

    /// The recorded archive copy of `id`.
    pub fn archive_record(&self, id: ArtifactId) -> Option<ArchiveRecord> {
        self.state.lock().archives.get(&id).cloned()
    }

    /// Every recorded archive copy, by artifact id.
    pub fn archive_records(&self) -> Vec<ArchiveRecord> {
        self.state.lock().archives.values().cloned().collect()
    }

    /// Summaries of the last real sweeps, oldest first.
    pub fn history(&self) -> Vec<SweepSummary> {
        self.state.lock().history.iter().cloned().collect()
    }

    /// Take up to `max` queued notifications (all if `None`), oldest first.
    pub fn take_notifications(&self, max: Option<usize>) -> Vec<Notification> {
        let mut n = self.notes.lock();
        let k = max.unwrap_or(usize::MAX).min(n.queue.len());
        n.queue.drain(..k).collect()
    }

    /// Notifications queued, and how many were dropped because the queue was full.
    pub fn notification_counts(&self) -> (usize, u64) {
        let n = self.notes.lock();
        (n.queue.len(), n.dropped)
    }

    /// Bring an archived artifact's blob back locally from its (verified) archive copy.
    pub fn restore_from_archive(&self, id: ArtifactId) -> Result<()> {
        let rec = self.archive_record(id).ok_or(StaleError::NotArchived(id))?;
        let bytes = self.archive.get(&rec.key)?;
        if *blake3::hash(&bytes).as_bytes() != rec.checksum {
            return Err(StaleError::Archive(format!(
                "archive copy '{}' of artifact {id} differs from the one recorded",
                rec.key
            ))
            .into());
        }
        self.target.restore_local(id, &bytes)
    }

    /// Classify and select: the plan a sweep at `now` would start from.
    pub fn plan(&self, now: Micros) -> Plan {
        self.plan_with(now, &self.settings())
    }

    fn plan_with(&self, now: Micros, settings: &Settings) -> Plan {
        let refs = self.refs.referenced_artifacts();
        let f = self.shared.facts.lock();
        let mut marks = vec![false; f.len()];
        for id in &refs {
            if let Some(r) = f.row(*id) {
                marks[r] = true;
            }
        }
        classify::plan(&f, &marks, now, settings)
    }

    fn is_referenced(&self, id: ArtifactId) -> bool {
        let refs = self.refs.referenced_artifacts();
        refs.binary_search(&id).is_ok() || (!refs.is_sorted() && refs.contains(&id))
    }

    /// Archive one artifact; on success the local copy has been released.
    fn archive_one(&self, id: ArtifactId, now: Micros, s: &Settings) -> Result<(), SkipReason> {
        {
            let f = self.shared.facts.lock();
            let Some(r) = f.row(id) else {
                return Err(SkipReason::Gone);
            };
            if f.has(r, ARCHIVED) {
                return Err(SkipReason::Gone);
            }
            if classify::tier(f.created[r], f.last_access[r], now, s) != Tier::Cold {
                return Err(SkipReason::NotCold);
            }
        }
        if self.is_referenced(id) {
            return Err(SkipReason::Referenced);
        }
        let key = archive_key(id);
        let bytes = self
            .target
            .export_stored(id)
            .map_err(|e| archive_failed(&e))?;
        let obj = self
            .archive
            .put(&key, &bytes)
            .map_err(|e| archive_failed(&e))?;
        let back = self.archive.get(&key).map_err(|e| archive_failed(&e))?;
        let sum = *blake3::hash(&bytes).as_bytes();
        if back != bytes || obj.checksum != sum {
            return Err(SkipReason::ArchiveFailed(format!(
                "the archive copy '{key}' read back differs from what was written"
            )));
        }
        self.target
            .verify_stored(id, &back)
            .map_err(|e| archive_failed(&e))?;
        {
            let rec = ArchiveRecord {
                id,
                key: key.clone(),
                size: bytes.len() as u64,
                checksum: sum,
                at: now,
            };
            let mut st = self.state.lock();
            self.ctx
                .journal
                .append(Tag::Stale, &Record::Archived(rec.clone()))
                .map_err(|e| archive_failed(&e))?;
            st.archives.insert(id, rec);
        }
        self.target
            .release_local(id, &key)
            .map_err(|e| archive_failed(&e))
    }

    /// Delete one low-value artifact after re-checking every guard.
    fn delete_one(&self, id: ArtifactId, now: Micros, s: &Settings) -> Result<(), SkipReason> {
        {
            let f = self.shared.facts.lock();
            let Some(r) = f.row(id) else {
                return Err(SkipReason::Gone);
            };
            if f.has(r, HELD) {
                return Err(SkipReason::Held);
            }
            if f.has(r, ARCHIVED) {
                return Err(SkipReason::Gone);
            }
            if classify::class(classify::row_value(&f, r), s) != ValueClass::Low {
                return Err(SkipReason::NotLowValue);
            }
            if classify::tier(f.created[r], f.last_access[r], now, s) != Tier::Cold {
                return Err(SkipReason::NotCold);
            }
            if !classify::deletable_age(f.created[r], now, s) {
                return Err(SkipReason::TooYoung);
            }
        }
        if self.is_referenced(id) {
            return Err(SkipReason::Referenced);
        }
        match self.target.delete(id, ACTOR) {
            Ok(DeleteOutcome::Deleted) => Ok(()),
            Ok(DeleteOutcome::Held) => Err(SkipReason::Held),
            Ok(DeleteOutcome::Gone) => Err(SkipReason::Gone),
            Err(e) => Err(SkipReason::DeleteFailed(e.to_string())),
        }
    }

    /// Classify every artifact and archive / delete per the rules (module docs). With `dry_run`
    /// nothing changes except that candidate notifications are queued. `now` defaults to the
    /// clock. A real sweep journals its archive records and a summary (acknowledged; durable
    /// with `durable`).
    pub fn sweep(&self, dry_run: bool, now: Option<Micros>, durable: bool) -> Result<SweepReport> {
        if !dry_run {
            self.ctx.journal.check_open()?;
        }
        let _one_at_a_time = self.sweep_lock.lock();
        let now = now.unwrap_or_else(|| self.ctx.clock.now());
        let settings = self.settings();
        let t0 = Instant::now();
        let plan = self.plan_with(now, &settings);
        let plan_micros = t0.elapsed().as_micros() as u64;
        let before = self.target.local_bytes();
        let mut rep = SweepReport {
            at: now,
            dry_run,
            examined: plan.examined,
            tiers: plan.tiers,
            classes: plan.classes,
            local_bytes_before: before,
            skipped: plan
                .skipped
                .iter()
                .map(|(id, r, _)| (*id, r.clone()))
                .collect(),
            plan_micros,
            ..SweepReport::default()
        };
        let mut notes = NoteSink {
            cap: settings.notification_capacity as usize,
            now,
            generated: 0,
            notes: VecDeque::new(),
        };
        // Candidate notifications that the queue's capacity would drop at once are only counted.
        let unseen = plan.archive_len().saturating_sub(notes.cap.max(1));
        notes.generated += unseen as u64;
        for (id, value) in plan.archive().skip(unseen) {
            notes.note(
                NoteKind::ArchiveCandidate,
                id,
                value,
                Cow::Borrowed(ARCHIVE_WHY),
            );
        }
        if dry_run {
            let mut est = before.saturating_sub(plan.archive_bytes);
            if let Some((high, low)) = settings.watermarks {
                rep.pressure = est > high;
                if rep.pressure {
                    for c in &plan.pool {
                        if est <= low {
                            break;
                        }
                        est = est.saturating_sub(c.size);
                        rep.delete_candidates.push(c.id);
                        notes.note(
                            NoteKind::DeleteCandidate,
                            c.id,
                            c.value,
                            Cow::Borrowed(DELETE_WHY),
                        );
                    }
                }
            }
            rep.local_bytes_after = est;
        } else {
            self.act(&plan, &settings, &mut rep, &mut notes);
            let summary = SweepSummary {
                at: now,
                examined: rep.examined,
                archived: rep.archived.len() as u64,
                deleted: rep.deleted.len() as u64,
                skipped: rep.skipped.len() as u64,
                local_bytes_before: before,
                local_bytes_after: rep.local_bytes_after,
                pressure: rep.pressure,
            };
            let lsn = {
                let mut st = self.state.lock();
                let lsn = self
                    .ctx
                    .journal
                    .append(Tag::Stale, &Record::Sweep(summary.clone()))?;
                st.apply(Record::Sweep(summary));
                lsn
            };
            if durable {
                self.ctx.journal.sync(lsn)?;
            }
        }
        rep.notifications = notes.generated;
        rep.archive_candidates = plan.archive_ids;
        let mut q = self.notes.lock();
        q.dropped += notes.generated - notes.notes.len() as u64;
        for n in notes.notes {
            q.push(n, notes.cap);
        }
        Ok(rep)
    }

    /// The actions of a real sweep: archive, then delete under pressure.
    fn act(&self, plan: &Plan, s: &Settings, rep: &mut SweepReport, notes: &mut NoteSink) {
        let now = rep.at;
        for (id, value) in plan.archive() {
            match self.archive_one(id, now, s) {
                Ok(()) => {
                    rep.archived.push(id);
                    let why = Cow::Owned(format!("archived as '{}'", archive_key(id)));
                    notes.note(NoteKind::Archived, id, value, why);
                }
                Err(r) => rep.skipped.push((id, r)),
            }
        }
        if s.watermarks.is_some() && !rep.archived.is_empty() {
            // Archived local copies give their space back only once compacted.
            self.reclaim();
        }
        let mut bytes = self.target.local_bytes();
        if let Some((high, low)) = s.watermarks {
            rep.pressure = bytes > high;
            if rep.pressure {
                // Stop at the low watermark, measured. Deleting frees space only once it is
                // compacted, so delete until the estimate (sizes deleted) reaches the low
                // watermark, then compact and measure; when that gave nothing back (shared
                // chunks, objects the store cannot move yet), stop: deleting more would free
                // nothing either.
                let mut est = bytes;
                let mut pending = false;
                for c in &plan.pool {
                    if bytes <= low {
                        break;
                    }
                    if est <= low {
                        let freed = self.reclaim();
                        pending = false;
                        bytes = self.target.local_bytes();
                        if bytes <= low || freed == 0 {
                            break;
                        }
                        est = bytes;
                    }
                    rep.delete_candidates.push(c.id);
                    notes.note(
                        NoteKind::DeleteCandidate,
                        c.id,
                        c.value,
                        Cow::Borrowed(DELETE_WHY),
                    );
                    match self.delete_one(c.id, now, s) {
                        Ok(()) => {
                            rep.deleted.push(c.id);
                            est = est.saturating_sub(c.size);
                            pending = true;
                            notes.note(
                                NoteKind::Deleted,
                                c.id,
                                c.value,
                                Cow::Borrowed(DELETED_WHY),
                            );
                        }
                        Err(r) => rep.skipped.push((c.id, r)),
                    }
                }
                if pending {
                    self.reclaim();
                }
            }
        }
        rep.local_bytes_after = self.target.local_bytes();
    }

    /// Compact after archiving or deleting. A failure gives back nothing (so deleting stops);
    /// the deletions stand and their space comes back at a later compaction, and a storage
    /// failure is reported by the store's next write.
    fn reclaim(&self) -> u64 {
        self.target.reclaim_space().unwrap_or(0)
    }

    /// FOR BENCHMARKS AND TESTS ONLY: feed `count` synthetic artifacts (seeded) through the same
    /// event path the store uses, with ids after the largest known one. They do not exist in the
    /// store: a real sweep over them reports them as skipped ("gone"). Returns the first id.
    pub fn load_synthetic_for_benchmark(&self, count: usize, seed: u64) -> ArtifactId {
        let now = self.ctx.clock.now();
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let mut f = self.shared.facts.lock();
        let first = f.ids.iter().max().map_or(1, |m| m + 1);
        f.reserve(count);
        for i in 0..count as u64 {
            let id = first + i;
            let r: f32 = rng.gen();
            let kind = (r * r * 24.0) as u32;
            let created = now.saturating_sub(rng.gen_range(0..120 * DAY));
            f.apply(&ArtifactEvent::Stored {
                id,
                size: rng.gen_range(1_000..1_000_000),
                kind,
                created,
            });
            f.apply(&ArtifactEvent::Quality {
                id,
                structure: rng.gen(),
                semantics: rng.gen(),
                utility: rng.gen(),
            });
            if rng.gen_bool(0.4) {
                f.apply(&ArtifactEvent::Reused {
                    id,
                    count: rng.gen_range(1..10),
                });
            }
            if rng.gen_bool(0.3) {
                f.apply(&ArtifactEvent::RunOutcome {
                    id,
                    successes: rng.gen_range(1..5),
                });
            }
            if rng.gen_bool(0.2) {
                f.apply(&ArtifactEvent::Read {
                    id,
                    at: now.saturating_sub(rng.gen_range(0..60 * DAY)),
                });
            }
            if rng.gen_bool(0.01) {
                f.apply(&ArtifactEvent::Held { id, held: true });
            }
        }
        first
    }
}

impl Persistent for StaleManager {
    fn tag(&self) -> Tag {
        Tag::Stale
    }
    fn snapshot(&self) -> Result<(Lsn, Vec<u8>)> {
        let st = self.state.lock();
        let lsn = self.ctx.journal.last_lsn();
        let bytes = postcard::to_stdvec(&*st)
            .map_err(|e| Error::Internal(format!("encoding the Stale Manager snapshot: {e}")))?;
        Ok((lsn, bytes))
    }
    fn restore(&self, bytes: &[u8]) -> Result<()> {
        let p: Persisted = postcard::from_bytes(bytes)
            .map_err(|e| Error::Internal(format!("decoding the Stale Manager snapshot: {e}")))?;
        *self.state.lock() = p;
        Ok(())
    }
    fn replay(&self, _lsn: Lsn, payload: &[u8]) -> Result<()> {
        let rec: Record = postcard::from_bytes(payload)
            .map_err(|e| Error::Internal(format!("decoding a Stale Manager record: {e}")))?;
        self.state.lock().apply(rec);
        Ok(())
    }
}

#[cfg(test)]
mod tests;
