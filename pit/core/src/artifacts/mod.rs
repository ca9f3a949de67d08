//! Artifact Store: content-addressed (BLAKE3), deduplicated, zstd-compressed, AES-256-GCM
//! encrypted blobs with named versions, lineage, quality scores, an append-only hash-chained audit
//! trail, retention policies and legal hold.
//!
//! Layout and promises are described in `docs/pit.md` (Artifact Store); the stored blob format in
//! `docs/artifact-format.md`.
//!
//! * Metadata (versions, names, lineage, quality, holds, retention, audit, the blob and chunk
//!   index) lives in one state under one lock, journaled (`Tag::Artifacts`) and snapshotted.
//! * Blob bytes live in segment files under `data_dir/artifacts/` ([`segs`]); objects of at most
//!   64 KiB are also inlined in their journal record, so a small durable put costs one journal
//!   `fdatasync`. Larger objects are synced by the journal's pre-sync hook before the record.
//! * Blobs of 1 MiB or more are split with `FastCDC` (256 KiB / 1 MiB / 4 MiB) into chunks that
//!   dedup on their own and are compressed and encrypted in parallel (rayon), into dedicated
//!   segments.

mod auditlog;
mod format;
mod quality;
mod segs;

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};

use aes_gcm::aead::KeyInit;
use aes_gcm::Aes256Gcm;
use parking_lot::{Mutex, RwLock};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use self::auditlog::{AuditLog, Mark};
pub use self::format::Hash;
use self::segs::{Loc, SegInfo, Segs, Src, INLINE_MAX, SEG_MAX};
use crate::clock::Micros;
use crate::error::{Classify, Detail, ErrorKind, Result, StorageError};
use crate::{ArtifactId, Ctx, Lsn, Persistent, Tag};

/// Blobs of this size or more are chunked and take the parallel path.
pub const LARGE_MIN: usize = 1 << 20;
const CDC_MIN: u32 = 256 << 10;
const CDC_AVG: u32 = 1 << 20;
const CDC_MAX: u32 = 4 << 20;
/// Chunking regions (parallel `FastCDC`); a multiple of nothing in particular, fixed forever
/// because chunk boundaries (and so dedup across versions) depend on it.
const CDC_REGION: usize = 32 << 20;
const LEVEL_SMALL: i32 = 3;
const LEVEL_LARGE: i32 = 1;
const DAY: f64 = 86_400.0;
/// Chunks of a large blob sealed together before they are written.
const LARGE_GROUP: usize = 16;
/// Batches at least this long are prepared on several threads.
const PAR_BATCH: usize = 4096;

/// Artifact Store failures.
#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    /// Unknown artifact id.
    #[error("unknown artifact {0}")]
    NotFound(ArtifactId),
    /// No artifact has this name.
    #[error("no artifact is named '{0}'")]
    NameNotFound(String),
    /// The name has no such version.
    #[error("artifact '{name}' has no version {version}")]
    VersionNotFound {
        /// The name.
        name: String,
        /// The version asked for.
        version: u32,
    },
    /// The version was deleted.
    #[error("artifact {0} was deleted")]
    Deleted(ArtifactId),
    /// The blob is only in the archive.
    #[error("artifact {id} is archived ({archive_ref}); restore it first")]
    Archived {
        /// The version.
        id: ArtifactId,
        /// Where the archive keeps it.
        archive_ref: String,
    },
    /// A transition that is not allowed (archive an archived artifact, restore a local one).
    #[error("artifact {id}: {reason}")]
    Illegal {
        /// The version.
        id: ArtifactId,
        /// Why.
        reason: String,
    },
    /// Stored bytes failed their authentication or hash check.
    #[error("artifact {id} failed its integrity check: {reason}")]
    Integrity {
        /// The artifact whose bytes are damaged.
        id: ArtifactId,
        /// What failed.
        reason: String,
    },
    /// The audit trail's hash chain is broken.
    #[error("audit trail is broken at record {seq}: {reason}")]
    AuditChain {
        /// The first record that does not verify.
        seq: u64,
        /// What is wrong.
        reason: String,
    },
    /// Legal hold forbids deleting.
    #[error("artifact {id} is under legal hold and cannot be deleted (asked by '{actor}')")]
    Held {
        /// The held artifact.
        id: ArtifactId,
        /// Who asked.
        actor: String,
    },
    /// A retention policy keeps the artifact until a later time.
    #[error("artifact {id} is retained by policy until {until:.0} (Unix seconds); it cannot be deleted before")]
    Retained {
        /// The artifact.
        id: ArtifactId,
        /// Until when (seconds since the epoch).
        until: f64,
    },
    /// A bad argument value.
    #[error("{0}")]
    Invalid(String),
}

impl Classify for ArtifactError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::NotFound(_)
            | Self::NameNotFound(_)
            | Self::VersionNotFound { .. }
            | Self::Deleted(_)
            | Self::Archived { .. } => ErrorKind::ArtifactNotFound,
            Self::Illegal { .. } => ErrorKind::IllegalTransition,
            Self::Integrity { .. } => ErrorKind::ArtifactIntegrity,
            Self::AuditChain { .. } => ErrorKind::AuditChain,
            Self::Held { .. } => ErrorKind::LegalHold,
            Self::Retained { .. } => ErrorKind::Retention,
            Self::Invalid(_) => ErrorKind::InvalidArgument,
        }
    }

    fn detail(&self) -> Detail {
        match self {
            Self::NotFound(id)
            | Self::Deleted(id)
            | Self::Archived { id, .. }
            | Self::Illegal { id, .. }
            | Self::Integrity { id, .. }
            | Self::Held { id, .. }
            | Self::Retained { id, .. } => Detail::Subject(id.to_string()),
            Self::NameNotFound(n) | Self::VersionNotFound { name: n, .. } => {
                Detail::Subject(n.clone())
            }
            Self::AuditChain { seq, .. } => Detail::Subject(seq.to_string()),
            Self::Invalid(_) => Detail::None,
        }
    }
}

fn invalid(msg: impl Into<String>) -> crate::Error {
    ArtifactError::Invalid(msg.into()).into()
}

/// CONTRACT: what the store tells its observer (the Stale Manager) about each artifact version.
///
/// Events are emitted for live changes *and* while restoring a snapshot or replaying the journal,
/// so an observer rebuilds its view on open without persisting it. They are emitted while the
/// store holds its lock: an observer must be quick and must not call back into the store.
#[derive(Debug, Clone, PartialEq)]
pub enum ArtifactEvent {
    /// A new artifact version. `kind` is an interned id of its kind string (for diversity);
    /// `size` is the plaintext size in bytes.
    Stored {
        /// The version's id.
        id: ArtifactId,
        /// Plaintext size.
        size: u64,
        /// Interned kind.
        kind: u32,
        /// When it was stored.
        created: Micros,
    },
    /// It was read (by `get`).
    Read {
        /// The version's id.
        id: ArtifactId,
        /// When.
        at: Micros,
    },
    /// Its quality scores changed (each in `0.0..=1.0`).
    Quality {
        /// Structure score.
        id: ArtifactId,
        /// Structure score.
        structure: f32,
        /// Semantics score.
        semantics: f32,
        /// Utility score.
        utility: f32,
    },
    /// It was used as an input of another artifact (lineage edge added); `count` is the new total.
    Reused {
        /// The version's id.
        id: ArtifactId,
        /// Times it has been used as an input.
        count: u32,
    },
    /// A run in its lineage (it, or something derived from it) finished; `successes` is the new
    /// number of successful runs it contributed to.
    RunOutcome {
        /// The version's id.
        id: ArtifactId,
        /// Successful runs it contributed to.
        successes: u32,
    },
    /// Legal hold placed (`true`) or lifted (`false`).
    Held {
        /// The version's id.
        id: ArtifactId,
        /// Whether it is now held.
        held: bool,
    },
    /// Its blob now lives only in the archive (`archived = true`) or is local again.
    Archived {
        /// The version's id.
        id: ArtifactId,
        /// Whether it is archived.
        archived: bool,
    },
    /// It was deleted.
    Deleted {
        /// The version's id.
        id: ArtifactId,
    },
}

/// CONTRACT: receives [`ArtifactEvent`]s.
pub trait ArtifactObserver: Send + Sync {
    /// Called under the store's lock; quick, no calls back into the store.
    fn on_event(&self, event: &ArtifactEvent);
}

/// Who produced an artifact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Producer {
    /// The run (melody execution).
    pub run: String,
    /// The node in the workflow.
    pub node: String,
    /// The model.
    pub model: String,
}

/// What `put` is told besides the name and bytes.
#[derive(Debug, Clone, Default)]
pub struct PutOptions {
    /// Kind (`json`, `python`, `text`, `markdown`, `binary`, …); empty means `binary`.
    pub kind: String,
    /// Producer, if known.
    pub produced_by: Option<Producer>,
    /// Input artifacts it was derived from.
    pub inputs: Vec<ArtifactId>,
    /// Who stores it (audited); empty means `system`.
    pub actor: String,
    /// Structure score supplied by the caller (else computed for known kinds).
    pub structure: Option<f32>,
}

/// Audited actions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[repr(u8)]
pub enum Action {
    /// A version was stored (or an unchanged put was acknowledged).
    Put = 1,
    /// A version was read.
    Get = 2,
    /// A version was deleted.
    Delete = 3,
    /// Legal hold placed.
    Hold = 4,
    /// Legal hold lifted.
    ReleaseHold = 5,
    /// Blob moved to the archive.
    Archive = 6,
    /// Blob brought back from the archive.
    Restore = 7,
    /// Retention policies changed.
    Retention = 8,
}

impl Action {
    /// Lowercase name for Python.
    pub fn name(self) -> &'static str {
        match self {
            Self::Put => "put",
            Self::Get => "get",
            Self::Delete => "delete",
            Self::Hold => "hold",
            Self::ReleaseHold => "release_hold",
            Self::Archive => "archive",
            Self::Restore => "restore",
            Self::Retention => "retention",
        }
    }
}

/// One record of the audit trail.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Position, from 0.
    pub seq: u64,
    /// When.
    pub at: Micros,
    /// Who.
    pub actor: String,
    /// What.
    pub action: Action,
    /// On which artifact.
    pub artifact: Option<ArtifactId>,
    /// Free text (e.g. hold reason, "unchanged").
    pub detail: String,
    /// BLAKE3 over the previous record's hash and this record's fields.
    pub hash: Hash,
}

fn audit_hash(
    prev: &Hash,
    seq: u64,
    at: Micros,
    action: Action,
    artifact: Option<ArtifactId>,
    actor: &str,
    detail: &str,
) -> Hash {
    let mut h = blake3::Hasher::new();
    h.update(b"symphony-pit audit v1");
    h.update(prev);
    h.update(&seq.to_le_bytes());
    h.update(&at.to_le_bytes());
    h.update(&[action as u8]);
    match artifact {
        Some(id) => h.update(&[1]).update(&id.to_le_bytes()),
        None => h.update(&[0]),
    };
    h.update(&(actor.len() as u64).to_le_bytes());
    h.update(actor.as_bytes());
    h.update(&(detail.len() as u64).to_le_bytes());
    h.update(detail.as_bytes());
    *h.finalize().as_bytes()
}

/// What a retention policy applies to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Scope {
    /// Every version of one name.
    Name(String),
    /// Every version of one kind.
    Kind(String),
}

/// Keep matching versions for `keep` after creation; with `expire`, the retention sweep deletes
/// them once that time has passed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Policy {
    /// What it applies to.
    pub scope: Scope,
    /// Minimum age before deletion is allowed.
    pub keep: Micros,
    /// Whether the sweep deletes after `keep`.
    pub expire: bool,
}

/// Quality of a version.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Quality {
    /// Valid for its kind (computed or supplied); `None` when unscored.
    pub structure: Option<f32>,
    /// Supplied by an instrument; `None` when unscored.
    pub semantics: Option<f32>,
    /// Reuse and downstream acceptance (or a pinned value).
    pub utility: f32,
}

/// Everything known about one version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Version {
    /// Id.
    pub id: ArtifactId,
    /// Name.
    pub name: String,
    /// Version number within the name (from 1).
    pub number: u32,
    /// Kind id (index into the interned kinds).
    pub kind: u32,
    /// BLAKE3 of the content.
    pub blob: Hash,
    /// Plaintext size.
    pub size: u64,
    /// Creation time.
    pub created: Micros,
    /// Who stored it.
    pub actor: String,
    /// Producer.
    pub producer: Option<Producer>,
    /// Inputs.
    pub inputs: Vec<ArtifactId>,
    /// Structure score.
    pub structure: Option<f32>,
    /// Semantics score.
    pub semantics: Option<f32>,
    /// Pinned utility.
    pub utility_pin: Option<f32>,
    /// Times used as an input.
    pub reuses: u32,
    /// Successful runs it contributed to.
    pub successes: u32,
    /// Failed runs it contributed to.
    pub failures: u32,
    /// Under legal hold.
    pub held: bool,
    /// Archive reference when the blob is only in the archive.
    pub archive: Option<String>,
    /// Deletion time.
    pub deleted: Option<Micros>,
}

impl Version {
    fn quality(&self) -> Quality {
        Quality {
            structure: self.structure,
            semantics: self.semantics,
            utility: self
                .utility_pin
                .unwrap_or_else(|| quality::utility(self.reuses, self.successes, self.failures)),
        }
    }
    fn local(&self) -> bool {
        self.archive.is_none() && self.deleted.is_none()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Blob {
    size: u64,
    chunks: Vec<Hash>,
    refs: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Chunk {
    loc: Loc,
    plain: u64,
    refs: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct NewObj {
    hash: Hash,
    loc: Loc,
    plain: u64,
    large: bool,
    inline: Option<Vec<u8>>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct PutRec {
    id: ArtifactId,
    name: String,
    kind: String,
    created: Micros,
    producer: Option<Producer>,
    inputs: Vec<ArtifactId>,
    structure: Option<f32>,
    blob: Hash,
    size: u64,
    new_objs: Vec<NewObj>,
    blob_chunks: Option<Vec<Hash>>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
enum Rec {
    Put(PutRec, AuditEntry),
    Audit(AuditEntry),
    Get(ArtifactId, AuditEntry),
    Delete(ArtifactId, AuditEntry),
    Hold(ArtifactId, bool, AuditEntry),
    Quality {
        id: ArtifactId,
        structure: Option<f32>,
        semantics: Option<f32>,
        utility: Option<f32>,
    },
    RunOutcome {
        run: String,
        success: bool,
    },
    Archive(ArtifactId, String, AuditEntry),
    Restore {
        id: ArtifactId,
        new_objs: Vec<NewObj>,
        blob_chunks: Option<Vec<Hash>>,
        audit: AuditEntry,
    },
    Retention(Vec<Policy>, AuditEntry),
    /// Compaction: live objects copied (bytes unchanged) to new places.
    Move(Vec<NewObj>),
}

/// Every version ever stored, indexed by id (ids are dense: 1, 2, 3, … in storing order, and
/// versions are never removed — deletion leaves a tombstone), so a lookup is one index.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(transparent)]
struct Versions(Vec<Version>);

// `&ArtifactId` keeps call sites identical to the map this replaced (`get(&id)`).
#[allow(clippy::trivially_copy_pass_by_ref)] // why: see above
impl Versions {
    fn get(&self, id: &ArtifactId) -> Option<&Version> {
        id.checked_sub(1).and_then(|i| self.0.get(i as usize))
    }
    fn get_mut(&mut self, id: &ArtifactId) -> Option<&mut Version> {
        id.checked_sub(1).and_then(|i| self.0.get_mut(i as usize))
    }
    fn insert(&mut self, id: ArtifactId, v: Version) -> Result<()> {
        if id != self.0.len() as u64 + 1 {
            return Err(crate::Error::Internal(format!(
                "artifact id {id} out of sequence (expected {})",
                self.0.len() + 1
            )));
        }
        self.0.push(v);
        Ok(())
    }
    fn values(&self) -> std::slice::Iter<'_, Version> {
        self.0.iter()
    }
}

impl std::ops::Index<&ArtifactId> for Versions {
    type Output = Version;
    fn index(&self, id: &ArtifactId) -> &Version {
        self.get(id).expect("indexed version exists")
    }
}

/// Hasher for maps keyed by BLAKE3 hashes: the keys are uniformly distributed already (and
/// cannot be steered without breaking BLAKE3), so their first eight bytes are the hash.
#[derive(Default)]
struct PrefixHasher(u64);

impl std::hash::Hasher for PrefixHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        let mut b = [0u8; 8];
        let n = bytes.len().min(8);
        b[..n].copy_from_slice(&bytes[..n]);
        self.0 = self.0.rotate_left(5) ^ u64::from_le_bytes(b);
    }
    fn write_usize(&mut self, _: usize) {}
}

type ByHash<V> = HashMap<Hash, V, std::hash::BuildHasherDefault<PrefixHasher>>;

/// The Fx hash (as in rustc) for the in-memory indexes keyed by names and ids: several times
/// faster than `SipHash` on short keys. Keys come from the local user's own melodies, so hash
/// flooding is not a concern here.
#[derive(Default)]
struct FxHasher(u64);

impl std::hash::Hasher for FxHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.add(u64::from_le_bytes(c.try_into().expect("8 bytes")));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut b = [0u8; 8];
            b[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(b));
        }
    }
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }
}

impl FxHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

type Fx<K, V> = HashMap<K, V, std::hash::BuildHasherDefault<FxHasher>>;

#[derive(Debug, Default, Serialize, Deserialize)]
struct State {
    next_id: ArtifactId,
    versions: Versions,
    kinds: Vec<String>,
    blobs: ByHash<Blob>,
    chunks: ByHash<Chunk>,
    segs: BTreeMap<u32, SegInfo>,
    policies: Vec<Policy>,
    /// The audit records after `audit_mark` (not yet in the audit trail's file).
    audit: Vec<AuditEntry>,
    outcomes: HashMap<String, bool>,
    /// How much of the audit trail is in its file (a snapshot stores it after the state).
    #[serde(skip)]
    audit_mark: Mark,
    #[serde(skip)]
    audit_log: AuditLog,
    #[serde(skip)]
    names: Fx<String, Vec<ArtifactId>>,
    #[serde(skip)]
    children: Fx<ArtifactId, Vec<ArtifactId>>,
    #[serde(skip)]
    runs: Fx<String, Vec<ArtifactId>>,
    #[serde(skip)]
    kind_ids: Fx<String, u32>,
    #[serde(skip)]
    live: usize,
}

struct Em(Option<Arc<dyn ArtifactObserver>>);

impl Em {
    #[inline]
    #[allow(clippy::needless_pass_by_value)] // why: every call site builds the event in place
    fn ev(&self, e: ArtifactEvent) {
        if let Some(o) = &self.0 {
            o.on_event(&e);
        }
    }
    fn quality(&self, v: &Version) {
        if self.0.is_some() {
            let q = v.quality();
            self.ev(ArtifactEvent::Quality {
                id: v.id,
                structure: q.structure.unwrap_or(0.5),
                semantics: q.semantics.unwrap_or(0.5),
                utility: q.utility,
            });
        }
    }
    /// Every event describing `v`'s current state (observer registration, restore).
    fn describe(&self, v: &Version) {
        if self.0.is_none() || v.deleted.is_some() {
            return;
        }
        self.ev(ArtifactEvent::Stored {
            id: v.id,
            size: v.size,
            kind: v.kind,
            created: v.created,
        });
        self.quality(v);
        if v.reuses > 0 {
            self.ev(ArtifactEvent::Reused {
                id: v.id,
                count: v.reuses,
            });
        }
        if v.successes > 0 {
            self.ev(ArtifactEvent::RunOutcome {
                id: v.id,
                successes: v.successes,
            });
        }
        if v.held {
            self.ev(ArtifactEvent::Held {
                id: v.id,
                held: true,
            });
        }
        if v.archive.is_some() {
            self.ev(ArtifactEvent::Archived {
                id: v.id,
                archived: true,
            });
        }
    }
}

impl State {
    fn rebuild(&mut self) {
        self.names.clear();
        self.children.clear();
        self.runs.clear();
        self.kind_ids = self
            .kinds
            .iter()
            .enumerate()
            .map(|(i, k)| (k.clone(), i as u32))
            .collect();
        self.live = 0;
        for v in self.versions.values() {
            self.names.entry(v.name.clone()).or_default().push(v.id);
            for i in &v.inputs {
                self.children.entry(*i).or_default().push(v.id);
            }
            if let Some(p) = &v.producer {
                self.runs.entry(p.run.clone()).or_default().push(v.id);
            }
            if v.deleted.is_none() {
                self.live += 1;
            }
        }
    }

    fn intern(&mut self, kind: &str) -> u32 {
        if let Some(k) = self.kind_ids.get(kind) {
            return *k;
        }
        let k = self.kinds.len() as u32;
        self.kinds.push(kind.to_string());
        self.kind_ids.insert(kind.to_string(), k);
        k
    }

    fn audit_entry(
        &self,
        at: Micros,
        actor: &str,
        action: Action,
        artifact: Option<ArtifactId>,
        detail: &str,
    ) -> AuditEntry {
        let seq = self.audit_mark.count + self.audit.len() as u64;
        let prev = self.audit.last().map_or(self.audit_mark.tail, |a| a.hash);
        AuditEntry {
            seq,
            at,
            actor: actor.to_string(),
            action,
            artifact,
            detail: detail.to_string(),
            hash: audit_hash(&prev, seq, at, action, artifact, actor, detail),
        }
    }

    fn push_audit(&mut self, a: AuditEntry, live: bool) {
        self.audit.push(a);
        // Best effort: a failed write keeps the records in memory and is retried
        // `FLUSH_EVERY` records later; the next checkpoint reports it.
        if live && self.audit.len().is_multiple_of(auditlog::FLUSH_EVERY) {
            let _ = self.flush_audit();
        }
    }

    /// Move the audit records held in memory to the audit trail's file (none in memory).
    fn flush_audit(&mut self) -> Result<()> {
        if self.audit.is_empty() || self.audit_log.dir().is_none() {
            return Ok(());
        }
        self.audit_log.append(&mut self.audit_mark, &self.audit)?;
        self.audit.clear();
        // Replay may have gathered far more than a flush's worth; give that memory back.
        self.audit.shrink_to(auditlog::FLUSH_EVERY);
        Ok(())
    }

    fn version(&self, id: ArtifactId) -> Result<&Version> {
        self.versions
            .get(&id)
            .ok_or_else(|| ArtifactError::NotFound(id).into())
    }

    fn live_version(&self, id: ArtifactId) -> Result<&Version> {
        let v = self.version(id)?;
        if v.deleted.is_some() {
            return Err(ArtifactError::Deleted(id).into());
        }
        Ok(v)
    }

    fn resolve(&self, name: &str, number: Option<u32>) -> Result<ArtifactId> {
        let ids = self
            .names
            .get(name)
            .ok_or_else(|| ArtifactError::NameNotFound(name.to_string()))?;
        match number {
            Some(n) => {
                let id = ids
                    .iter()
                    .find(|id| self.versions[id].number == n)
                    .ok_or_else(|| ArtifactError::VersionNotFound {
                        name: name.to_string(),
                        version: n,
                    })?;
                Ok(*id)
            }
            None => ids
                .iter()
                .rev()
                .find(|id| self.versions[id].deleted.is_none())
                .copied()
                .ok_or_else(|| ArtifactError::NameNotFound(name.to_string()).into()),
        }
    }

    fn add_objs(&mut self, objs: &[NewObj], segs: Option<&mut Segs>) -> Result<()> {
        if let Some(segs) = segs {
            for o in objs {
                if let Some(b) = &o.inline {
                    segs.write_at(o.loc, b)?;
                }
            }
        }
        for o in objs {
            if self.chunks.contains_key(&o.hash) {
                continue;
            }
            self.chunks.insert(
                o.hash,
                Chunk {
                    loc: o.loc,
                    plain: o.plain,
                    refs: 0,
                },
            );
            let s = self.segs.entry(o.loc.seg).or_default();
            s.end = s.end.max(o.loc.off + u64::from(o.loc.len));
            s.live += 1;
            s.live_bytes += u64::from(o.loc.len);
            s.large |= o.large;
        }
        Ok(())
    }

    fn ref_blob(&mut self, blob: &Hash) {
        let b = self
            .blobs
            .get_mut(blob)
            .expect("referenced blob is indexed");
        b.refs += 1;
        if b.refs == 1 {
            for c in &b.chunks {
                if let Some(ch) = self.chunks.get_mut(c) {
                    ch.refs += 1;
                }
            }
        }
    }

    fn unref_blob(&mut self, blob: &Hash, dead: &mut Vec<u32>) {
        let Some(b) = self.blobs.get_mut(blob) else {
            return;
        };
        b.refs -= 1;
        if b.refs > 0 {
            return;
        }
        let b = self.blobs.remove(blob).expect("present above");
        for c in &b.chunks {
            let Some(ch) = self.chunks.get_mut(c) else {
                continue;
            };
            ch.refs -= 1;
            if ch.refs == 0 {
                let loc = ch.loc;
                self.chunks.remove(c);
                if let Some(s) = self.segs.get_mut(&loc.seg) {
                    s.live -= 1;
                    s.live_bytes -= u64::from(loc.len);
                    if s.live == 0 {
                        dead.push(loc.seg);
                    }
                }
            }
        }
    }

    fn credit_reuse(&mut self, inputs: &[ArtifactId], id: ArtifactId, em: &Em) {
        for i in inputs {
            self.children.entry(*i).or_default().push(id);
            if let Some(v) = self.versions.get_mut(i) {
                v.reuses += 1;
                em.ev(ArtifactEvent::Reused {
                    id: *i,
                    count: v.reuses,
                });
                em.quality(v);
            }
        }
    }

    /// Apply a record (live or replayed). `segs` is given on replay (inlined objects are written
    /// back). Returns segments that became dead.
    #[allow(clippy::too_many_lines)] // why: one arm per record kind reads best as one match
    fn apply(&mut self, rec: Rec, segs: Option<&mut Segs>, em: &Em) -> Result<Vec<u32>> {
        let mut dead = Vec::new();
        // Replay (segs given) must not write the audit file: opening writes nothing until the
        // whole journal has been read back.
        let live = segs.is_none();
        match rec {
            Rec::Put(p, audit) => {
                self.add_objs(&p.new_objs, segs)?;
                if let Some(chunks) = p.blob_chunks {
                    self.blobs.entry(p.blob).or_insert(Blob {
                        size: p.size,
                        chunks,
                        refs: 0,
                    });
                }
                let kind = self.intern(&p.kind);
                let number = if let Some(ids) = self.names.get_mut(&p.name) {
                    ids.push(p.id);
                    ids.len() as u32
                } else {
                    self.names.insert(p.name.clone(), vec![p.id]);
                    1
                };
                if let Some(pr) = &p.producer {
                    self.runs.entry(pr.run.clone()).or_default().push(p.id);
                }
                self.credit_reuse(&p.inputs, p.id, em);
                let v = Version {
                    id: p.id,
                    name: p.name,
                    number,
                    kind,
                    blob: p.blob,
                    size: p.size,
                    created: p.created,
                    actor: audit.actor.clone(),
                    producer: p.producer,
                    inputs: p.inputs,
                    structure: p.structure,
                    semantics: None,
                    utility_pin: None,
                    reuses: 0,
                    successes: 0,
                    failures: 0,
                    held: false,
                    archive: None,
                    deleted: None,
                };
                self.ref_blob(&p.blob);
                self.next_id = self.next_id.max(p.id + 1);
                self.live += 1;
                em.ev(ArtifactEvent::Stored {
                    id: v.id,
                    size: v.size,
                    kind,
                    created: v.created,
                });
                em.quality(&v);
                self.versions.insert(p.id, v)?;
                self.push_audit(audit, live);
            }
            Rec::Audit(a) => self.push_audit(a, live),
            Rec::Get(id, a) => {
                em.ev(ArtifactEvent::Read { id, at: a.at });
                self.push_audit(a, live);
            }
            Rec::Delete(id, a) => {
                let v = self.versions.get_mut(&id).expect("deleted version exists");
                let was_local = v.local();
                let blob = v.blob;
                v.deleted = Some(a.at);
                self.live -= 1;
                if was_local {
                    self.unref_blob(&blob, &mut dead);
                }
                em.ev(ArtifactEvent::Deleted { id });
                self.push_audit(a, live);
            }
            Rec::Hold(id, held, a) => {
                let v = self.versions.get_mut(&id).expect("held version exists");
                if v.held != held {
                    v.held = held;
                    em.ev(ArtifactEvent::Held { id, held });
                }
                self.push_audit(a, live);
            }
            Rec::Quality {
                id,
                structure,
                semantics,
                utility,
            } => {
                let v = self.versions.get_mut(&id).expect("scored version exists");
                if structure.is_some() {
                    v.structure = structure;
                }
                if semantics.is_some() {
                    v.semantics = semantics;
                }
                if utility.is_some() {
                    v.utility_pin = utility;
                }
                em.quality(v);
            }
            Rec::RunOutcome { run, success } => {
                for id in self.run_lineage(&run) {
                    let v = self.versions.get_mut(&id).expect("lineage version exists");
                    if success {
                        v.successes += 1;
                    } else {
                        v.failures += 1;
                    }
                    em.ev(ArtifactEvent::RunOutcome {
                        id,
                        successes: v.successes,
                    });
                    em.quality(v);
                }
                self.outcomes.insert(run, success);
            }
            Rec::Archive(id, r, a) => {
                let v = self.versions.get_mut(&id).expect("archived version exists");
                v.archive = Some(r);
                let blob = v.blob;
                self.unref_blob(&blob, &mut dead);
                em.ev(ArtifactEvent::Archived { id, archived: true });
                self.push_audit(a, live);
            }
            Rec::Restore {
                id,
                new_objs,
                blob_chunks,
                audit,
            } => {
                self.add_objs(&new_objs, segs)?;
                let v = self.versions.get_mut(&id).expect("restored version exists");
                v.archive = None;
                let (blob, size) = (v.blob, v.size);
                if let Some(chunks) = blob_chunks {
                    self.blobs.entry(blob).or_insert(Blob {
                        size,
                        chunks,
                        refs: 0,
                    });
                }
                self.ref_blob(&blob);
                em.ev(ArtifactEvent::Archived {
                    id,
                    archived: false,
                });
                self.push_audit(audit, live);
            }
            Rec::Retention(p, a) => {
                self.policies = p;
                self.push_audit(a, live);
            }
            Rec::Move(objs) => {
                if let Some(segs) = segs {
                    for o in &objs {
                        if let Some(b) = &o.inline {
                            segs.write_at(o.loc, b)?;
                        }
                    }
                }
                for o in objs {
                    let Some(ch) = self.chunks.get_mut(&o.hash) else {
                        continue;
                    };
                    let old = std::mem::replace(&mut ch.loc, o.loc);
                    if let Some(s) = self.segs.get_mut(&old.seg) {
                        s.live -= 1;
                        s.live_bytes -= u64::from(old.len);
                        if s.live == 0 {
                            dead.push(old.seg);
                        }
                    }
                    let s = self.segs.entry(o.loc.seg).or_default();
                    s.end = s.end.max(o.loc.off + u64::from(o.loc.len));
                    s.live += 1;
                    s.live_bytes += u64::from(o.loc.len);
                }
            }
        }
        Ok(dead)
    }

    /// The outputs of `run` and everything they were derived from, ascending.
    fn run_lineage(&self, run: &str) -> Vec<ArtifactId> {
        let Some(outs) = self.runs.get(run) else {
            return Vec::new();
        };
        let mut seen: HashSet<ArtifactId> = HashSet::new();
        let mut q: VecDeque<ArtifactId> = outs.iter().copied().collect();
        while let Some(id) = q.pop_front() {
            if !seen.insert(id) {
                continue;
            }
            if let Some(v) = self.versions.get(&id) {
                q.extend(v.inputs.iter().copied());
            }
        }
        let mut out: Vec<ArtifactId> = seen
            .into_iter()
            .filter(|id| self.versions.get(id).is_some_and(|v| v.deleted.is_none()))
            .collect();
        out.sort_unstable();
        out
    }

    fn walk(&self, start: ArtifactId, down: bool) -> Vec<ArtifactId> {
        let mut seen = HashSet::new();
        let mut q = VecDeque::from([start]);
        while let Some(id) = q.pop_front() {
            let next: &[ArtifactId] = if down {
                self.children.get(&id).map_or(&[], Vec::as_slice)
            } else {
                self.versions.get(&id).map_or(&[], |v| v.inputs.as_slice())
            };
            for n in next {
                if seen.insert(*n) {
                    q.push_back(*n);
                }
            }
        }
        seen.remove(&start);
        let mut out: Vec<_> = seen.into_iter().collect();
        out.sort_unstable();
        out
    }

    fn retained_until(&self, v: &Version) -> Option<(Micros, bool)> {
        let kind = &self.kinds[v.kind as usize];
        let mut best: Option<(Micros, bool)> = None;
        for p in &self.policies {
            let hit = match &p.scope {
                Scope::Name(n) => *n == v.name,
                Scope::Kind(k) => k == kind,
            };
            if hit {
                let until = v.created.saturating_add(p.keep);
                best = Some(match best {
                    None => (until, p.expire),
                    Some((u, e)) => (u.max(until), e || p.expire),
                });
            }
        }
        best
    }

    fn sources(&self, segs: &mut Segs, blob: &Hash, id: ArtifactId) -> Result<Vec<(Hash, Src)>> {
        let b = self
            .blobs
            .get(blob)
            .ok_or_else(|| ArtifactError::Integrity {
                id,
                reason: "its blob is missing from the index".into(),
            })?;
        b.chunks
            .iter()
            .map(|c| {
                let ch = self.chunks.get(c).ok_or_else(|| ArtifactError::Integrity {
                    id,
                    reason: "a chunk is missing from the index".into(),
                })?;
                let src = segs
                    .source(ch.loc)
                    .map_err(|reason| ArtifactError::Integrity { id, reason })?;
                Ok((*c, src))
            })
            .collect()
    }
}

fn read_objects(
    cipher: &Aes256Gcm,
    id: ArtifactId,
    srcs: Vec<(Hash, Src)>,
    want_plain: bool,
) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
    let one = |(h, src): (Hash, Src)| -> Result<(Vec<u8>, Vec<u8>)> {
        let obj = src
            .read()
            .map_err(|reason| ArtifactError::Integrity { id, reason })?;
        let raw = if want_plain { Vec::new() } else { obj.clone() };
        let (head, plain) =
            format::open(cipher, obj).map_err(|b| ArtifactError::Integrity { id, reason: b.0 })?;
        if head.hash != h {
            return Err(ArtifactError::Integrity {
                id,
                reason: "a stored object belongs to other content (swapped)".into(),
            }
            .into());
        }
        Ok((raw, if want_plain { plain } else { Vec::new() }))
    };
    if srcs.len() > 1 {
        srcs.into_par_iter().map(one).collect()
    } else {
        srcs.into_iter().map(one).collect()
    }
}

struct Inner {
    ctx: Ctx,
    cipher: Aes256Gcm,
    state: Mutex<State>,
    segs: Mutex<Segs>,
    observer: RwLock<Option<Weak<dyn ArtifactObserver>>>,
    closed: AtomicBool,
}

/// Follows the audit trail's hash chain from its first record.
#[derive(Default)]
struct Chain {
    next: u64,
    prev: Hash,
}

impl Chain {
    fn check(&mut self, a: &AuditEntry) -> Result<()> {
        let i = self.next;
        if a.seq != i {
            return Err(ArtifactError::AuditChain {
                seq: i,
                reason: format!("record {i} carries sequence number {}", a.seq),
            }
            .into());
        }
        let h = audit_hash(
            &self.prev, a.seq, a.at, a.action, a.artifact, &a.actor, &a.detail,
        );
        if h != a.hash {
            return Err(ArtifactError::AuditChain {
                seq: a.seq,
                reason: "its hash does not match its contents and predecessor".into(),
            }
            .into());
        }
        self.prev = h;
        self.next += 1;
        Ok(())
    }
}

/// Content-addressed, compressed, encrypted artifacts with versions, lineage and audit.
pub struct ArtifactStore {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for ArtifactStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ArtifactStore({} live)", self.len())
    }
}

fn check_name(what: &str, s: &str) -> Result<()> {
    if s.is_empty() || s.len() > 1024 || s.contains('\0') {
        return Err(invalid(format!(
            "argument '{what}': expected 1 to 1024 characters without NUL, got {s:?}"
        )));
    }
    Ok(())
}

fn check_score(what: &str, s: Option<f32>) -> Result<()> {
    match s {
        Some(x) if !(0.0..=1.0).contains(&x) => Err(invalid(format!(
            "argument '{what}': expected a score in 0.0..=1.0, got {x}"
        ))),
        _ => Ok(()),
    }
}

/// Content-defined chunk boundaries `(offset, length)`. The data is first split at fixed
/// [`CDC_REGION`] offsets so regions are chunked in parallel; within a region `FastCDC` decides.
fn cut(data: &[u8]) -> Vec<(usize, usize)> {
    let regions: Vec<usize> = (0..data.len()).step_by(CDC_REGION).collect();
    regions
        .par_iter()
        .map(|&start| {
            let end = (start + CDC_REGION).min(data.len());
            fastcdc::v2020::FastCDC::new(&data[start..end], CDC_MIN, CDC_AVG, CDC_MAX)
                .map(|c| (start + c.offset, c.length))
                .collect::<Vec<_>>()
        })
        .flatten()
        .collect()
}

/// A put prepared outside the lock.
struct Prepared {
    blob: Hash,
    size: u64,
    structure: Option<f32>,
    /// The object, when sealed ahead (batch puts seal in parallel outside the lock).
    sealed: Option<Vec<u8>>,
    /// Where the object was already written (durable batch puts: not inlined in the journal).
    written: Option<Loc>,
}

impl ArtifactStore {
    /// Open the store of `ctx.data_dir/artifacts` (or an in-memory one), encrypting with `key`.
    pub fn open(ctx: &Ctx, key: [u8; 32]) -> Result<Self> {
        let dir = ctx.data_dir.as_ref().map(|d| d.join("artifacts"));
        let (audit_log, segs) = match dir {
            Some(d) if ctx.journal.is_read_only() => {
                (AuditLog::new_read_only(d.clone()), Segs::new_read_only(d))
            }
            dir => (AuditLog::new(dir.clone()), Segs::new(dir)?),
        };
        let inner = Arc::new(Inner {
            ctx: ctx.clone(),
            cipher: Aes256Gcm::new_from_slice(&key).expect("32-byte key"),
            state: Mutex::new(State {
                next_id: 1,
                audit_log,
                ..State::default()
            }),
            segs: Mutex::new(segs),
            observer: RwLock::new(None),
            closed: AtomicBool::new(false),
        });
        let weak = Arc::downgrade(&inner);
        ctx.journal.add_pre_sync_hook(Box::new(move || {
            let Some(inner) = weak.upgrade() else {
                return Ok(());
            };
            let (files, dir) = inner.segs.lock().take_unsynced();
            if files.is_empty() && dir.is_none() {
                return Ok(());
            }
            let r = segs::sync_files(&files, dir.as_deref());
            if r.is_err() {
                inner.segs.lock().put_back_unsynced(files, dir.is_some());
            }
            r
        }));
        Ok(Self { inner })
    }

    fn em(&self) -> Em {
        Em(self.inner.observer.read().as_ref().and_then(Weak::upgrade))
    }

    fn check_open(&self) -> Result<()> {
        if self.inner.closed.load(Ordering::Acquire) {
            return Err(StorageError::Closed.into());
        }
        Ok(())
    }

    fn now(&self) -> Micros {
        self.inner.ctx.clock.now()
    }

    /// Make sure segment files were reconciled; returns dead segments found.
    fn ensure_init(&self, st: &State) -> Result<Vec<u32>> {
        let mut segs = self.inner.segs.lock();
        if segs.initialized() {
            return Ok(Vec::new());
        }
        Ok(segs.init(&st.segs)?)
    }

    /// After a record that killed segments: make it durable, then remove their files.
    fn reclaim(&self, dead: &[u32], lsn: Lsn) -> Result<()> {
        if dead.is_empty() {
            return Ok(());
        }
        self.inner.ctx.journal.sync(lsn)?;
        let st = self.inner.state.lock();
        let still: Vec<u32> = dead
            .iter()
            .copied()
            .filter(|n| st.segs.get(n).is_none_or(|s| s.live == 0))
            .collect();
        self.inner.segs.lock().remove(&still)?;
        Ok(())
    }

    fn finish(&self, lsn: Lsn, durable: bool, dead: &[u32]) -> Result<()> {
        if !dead.is_empty() {
            self.reclaim(dead, lsn.max(self.inner.ctx.journal.last_lsn()))?;
        } else if durable {
            self.inner.ctx.journal.sync(lsn)?;
        }
        Ok(())
    }

    fn prepare(opts: &PutOptions, data: &[u8]) -> Result<Prepared> {
        check_name("kind", Self::kind_of(opts))?;
        check_name("actor", Self::actor_of(opts))?;
        check_score("structure", opts.structure)?;
        let structure = opts
            .structure
            .or_else(|| quality::structure(Self::kind_of(opts), data));
        Ok(Prepared {
            blob: format::hash(data),
            size: data.len() as u64,
            structure,
            sealed: None,
            written: None,
        })
    }

    fn kind_of(opts: &PutOptions) -> &str {
        if opts.kind.is_empty() {
            "binary"
        } else {
            &opts.kind
        }
    }

    fn actor_of(opts: &PutOptions) -> &str {
        if opts.actor.is_empty() {
            "system"
        } else {
            &opts.actor
        }
    }

    /// If the name's newest version is this content with the same kind and lineage, its id.
    fn unchanged(st: &State, name: &str, blob: &Hash, opts: &PutOptions) -> Option<ArtifactId> {
        let id = st.resolve(name, None).ok()?;
        let v = &st.versions[&id];
        (v.blob == *blob
            && v.local()
            && st.kinds[v.kind as usize] == Self::kind_of(opts)
            && v.producer == opts.produced_by
            && v.inputs == opts.inputs)
            .then_some(id)
    }

    /// The locked part of a small put. Returns (id, lsn, dead segments from init).
    fn put_small_locked(
        &self,
        st: &mut State,
        em: &Em,
        name: &str,
        data: &[u8],
        opts: &PutOptions,
        prep: Prepared,
    ) -> Result<(ArtifactId, Lsn, Vec<u32>)> {
        let dead = self.ensure_init(st)?;
        for i in &opts.inputs {
            st.live_version(*i)?;
        }
        let now = self.now();
        let actor = Self::actor_of(opts);
        if let Some(id) = Self::unchanged(st, name, &prep.blob, opts) {
            let a = st.audit_entry(now, actor, Action::Put, Some(id), "unchanged");
            let rec = Rec::Audit(a);
            let lsn = self.inner.ctx.journal.append(Tag::Artifacts, &rec)?;
            st.apply(rec, None, em)?;
            return Ok((id, lsn, dead));
        }
        let (new_objs, blob_chunks) = if st.blobs.contains_key(&prep.blob) {
            (Vec::new(), None)
        } else if st.chunks.contains_key(&prep.blob) {
            (Vec::new(), Some(vec![prep.blob]))
        } else if let Some(loc) = prep.written {
            (
                vec![NewObj {
                    hash: prep.blob,
                    loc,
                    plain: prep.size,
                    large: false,
                    inline: None,
                }],
                Some(vec![prep.blob]),
            )
        } else {
            let obj = prep
                .sealed
                .unwrap_or_else(|| format::seal(&self.inner.cipher, data, &prep.blob, LEVEL_SMALL));
            let inline = obj.len() <= INLINE_MAX;
            let loc = self.inner.segs.lock().append_small(&obj, inline)?;
            (
                vec![NewObj {
                    hash: prep.blob,
                    loc,
                    plain: data.len() as u64,
                    large: false,
                    inline: inline.then_some(obj),
                }],
                Some(vec![prep.blob]),
            )
        };
        let id = st.next_id;
        let audit = st.audit_entry(now, actor, Action::Put, Some(id), "");
        let rec = Rec::Put(
            PutRec {
                id,
                name: name.to_string(),
                kind: Self::kind_of(opts).to_string(),
                created: now,
                producer: opts.produced_by.clone(),
                inputs: opts.inputs.clone(),
                structure: prep.structure,
                blob: prep.blob,
                size: prep.size,
                new_objs,
                blob_chunks,
            },
            audit,
        );
        let lsn = self.inner.ctx.journal.append(Tag::Artifacts, &rec)?;
        st.apply(rec, None, em)?;
        Ok((id, lsn, dead))
    }

    /// Store `data` as a new version of `name`. Acknowledged in memory; with `durable`, on disk
    /// when it returns. An unchanged put (same content, kind and lineage as the name's newest
    /// version) returns that version's id and stores nothing new (it is still audited).
    pub fn put(
        &self,
        name: &str,
        data: &[u8],
        opts: &PutOptions,
        durable: bool,
    ) -> Result<ArtifactId> {
        self.check_open()?;
        check_name("name", name)?;
        if data.len() >= LARGE_MIN {
            return self.put_large(name, data, opts, durable, None);
        }
        let prep = Self::prepare(opts, data)?;
        let em = self.em();
        let (id, lsn, dead) = {
            let mut st = self.inner.state.lock();
            self.put_small_locked(&mut st, &em, name, data, opts, prep)?
        };
        self.finish(lsn, durable, &dead)?;
        Ok(id)
    }

    /// Store many small artifacts under one lock and (with `durable`) one `fdatasync`.
    pub fn put_many(
        &self,
        items: &[(&str, &[u8])],
        opts: &PutOptions,
        durable: bool,
    ) -> Result<Vec<ArtifactId>> {
        let (ids, lsn) = self.put_many_unsynced(items, opts, durable)?;
        if durable {
            self.sync_to(lsn)?;
        }
        Ok(ids)
    }

    /// The newest journal position (for [`Self::sync_to`]).
    pub fn last_lsn(&self) -> Lsn {
        self.inner.ctx.journal.last_lsn()
    }

    /// Make every record up to `lsn` durable (the second half of [`Self::put_many_unsynced`]).
    pub fn sync_to(&self, lsn: Lsn) -> Result<()> {
        self.inner.ctx.journal.sync(lsn)
    }

    /// [`Self::put_many`] without its final `fdatasync`: returns the ids and the LSN to pass to
    /// [`Self::sync_to`] (lets a binding do the CPU part with its interpreter lock held and release
    /// it only for the sync). With `durable`, the objects are laid out for one sync (written to
    /// the segment, not inlined in the journal), so the caller must call `sync_to` before it
    /// acknowledges.
    pub fn put_many_unsynced(
        &self,
        items: &[(&str, &[u8])],
        opts: &PutOptions,
        durable: bool,
    ) -> Result<(Vec<ArtifactId>, Lsn)> {
        self.check_open()?;
        for (name, data) in items {
            check_name("name", name)?;
            if data.len() >= LARGE_MIN {
                return Err(invalid(format!(
                    "put_many takes artifacts below {LARGE_MIN} bytes; '{name}' has {}",
                    data.len()
                )));
            }
        }
        // Hash and seal before taking the lock (on another core when one is free).
        let cipher = &self.inner.cipher;
        let prep_one = |data: &[u8]| -> Result<Prepared> {
            let mut p = Self::prepare(opts, data)?;
            p.sealed = Some(format::seal(cipher, data, &p.blob, LEVEL_SMALL));
            Ok(p)
        };
        let preps: Vec<Prepared> = if items.len() >= PAR_BATCH {
            items
                .par_iter()
                .with_min_len(PAR_BATCH / 2)
                .map(|(_, d)| prep_one(d))
                .collect::<Result<_>>()?
        } else {
            items
                .iter()
                .map(|(_, d)| prep_one(d))
                .collect::<Result<_>>()?
        };
        let em = self.em();
        let mut ids = Vec::with_capacity(items.len());
        let mut lsn = 0;
        let mut dead = Vec::new();
        let mut preps = preps;
        {
            let mut st = self.inner.state.lock();
            if durable && self.inner.ctx.journal.is_persistent() {
                // Write the batch's new objects first (one write), not inlined in the journal:
                // half the bytes written; the pre-sync hook syncs the segment before the records.
                dead.extend(self.ensure_init(&st)?);
                let mut segs = self.inner.segs.lock();
                let mut seen = HashSet::new();
                for p in &mut preps {
                    if st.blobs.contains_key(&p.blob)
                        || st.chunks.contains_key(&p.blob)
                        || !seen.insert(p.blob)
                    {
                        continue;
                    }
                    if let Some(obj) = p.sealed.take() {
                        p.written = Some(segs.append_buffered(&obj)?);
                    }
                }
                segs.flush()?;
            }
            for ((name, data), prep) in items.iter().zip(preps) {
                let (id, l, d) = self.put_small_locked(&mut st, &em, name, data, opts, prep)?;
                ids.push(id);
                lsn = l;
                dead.extend(d);
            }
        }
        self.finish(lsn, false, &dead)?;
        Ok((ids, lsn))
    }

    /// A put of content whose blob is already stored: a new version (or nothing, if unchanged)
    /// without touching the bytes. `None` when the blob is not stored.
    fn try_put_known(
        &self,
        name: &str,
        blob: &Hash,
        opts: &PutOptions,
        durable: bool,
    ) -> Result<Option<ArtifactId>> {
        let em = self.em();
        let mut st = self.inner.state.lock();
        let Some(size) = st.blobs.get(blob).map(|b| b.size) else {
            return Ok(None);
        };
        let kind = Self::kind_of(opts);
        let structure = opts.structure.or_else(|| {
            st.versions
                .values()
                .rev()
                .find(|v| v.blob == *blob && st.kinds[v.kind as usize] == kind)
                .and_then(|v| v.structure)
                .or_else(|| quality::structure(kind, b"").filter(|_| kind == "binary"))
        });
        let prep = Prepared {
            blob: *blob,
            size,
            structure,
            sealed: None,
            written: None,
        };
        let (id, lsn, dead) = self.put_small_locked(&mut st, &em, name, &[], opts, prep)?;
        drop(st);
        self.finish(lsn, durable, &dead)?;
        Ok(Some(id))
    }

    #[allow(clippy::too_many_lines)] // why: the pipeline's stages share many locals; see the comments
    fn put_large(
        &self,
        name: &str,
        data: &[u8],
        opts: &PutOptions,
        durable: bool,
        known: Option<Hash>,
    ) -> Result<ArtifactId> {
        check_name("kind", Self::kind_of(opts))?;
        check_name("actor", Self::actor_of(opts))?;
        check_score("structure", opts.structure)?;
        {
            // Refuse bad inputs before any byte is written.
            let st = self.inner.state.lock();
            for i in &opts.inputs {
                st.live_version(*i)?;
            }
        }
        let blob = known.unwrap_or_else(|| format::hash(data));
        if let Some(id) = self.try_put_known(name, &blob, opts, durable)? {
            return Ok(id);
        }
        let em = self.em();
        let structure = opts
            .structure
            .or_else(|| quality::structure(Self::kind_of(opts), data));
        let cuts = cut(data);
        let hashes: Vec<Hash> = cuts
            .par_iter()
            .map(|(o, l)| *blake3::hash(&data[*o..*o + *l]).as_bytes())
            .collect();
        let (need, mut dead) = {
            let st = self.inner.state.lock();
            let dead = self.ensure_init(&st)?;
            let mut seen = HashSet::new();
            let need = (0..cuts.len())
                .filter(|&i| !st.chunks.contains_key(&hashes[i]) && seen.insert(hashes[i]))
                .collect::<Vec<usize>>();
            (need, dead)
        };
        let cipher = &self.inner.cipher;
        let mut new_objs = Vec::with_capacity(need.len());
        {
            let mut seg: Option<segs::LargeSeg> = None;
            // Seal a group of chunks in parallel, write it, and let the next group reuse the
            // memory (fewer fresh pages than sealing the whole blob at once).
            for group in need.chunks(LARGE_GROUP) {
                let objs: Vec<Vec<u8>> = group
                    .par_iter()
                    .map(|&i| {
                        let (o, l) = cuts[i];
                        format::seal(cipher, &data[o..o + l], &hashes[i], LEVEL_LARGE)
                    })
                    .collect();
                for (&i, obj) in group.iter().zip(&objs) {
                    if seg
                        .as_ref()
                        .is_none_or(|s| s.len + obj.len() as u64 > SEG_MAX)
                    {
                        let mut segs = self.inner.segs.lock();
                        if let Some(done) = seg.take() {
                            segs.finish_large(done);
                        }
                        seg = Some(segs.alloc_large()?);
                    }
                    let loc = seg.as_mut().expect("segment allocated above").write(obj)?;
                    new_objs.push(NewObj {
                        hash: hashes[i],
                        loc,
                        plain: cuts[i].1 as u64,
                        large: true,
                        inline: None,
                    });
                }
            }
            if let Some(done) = seg {
                self.inner.segs.lock().finish_large(done);
            }
        }
        let (id, lsn) = {
            let mut st = self.inner.state.lock();
            for i in &opts.inputs {
                st.live_version(*i)?;
            }
            // Chunks relied on may have died meanwhile; store them again (rare).
            let mut have: HashSet<Hash> = new_objs.iter().map(|o| o.hash).collect();
            for (i, h) in hashes.iter().enumerate() {
                if have.contains(h) || st.chunks.contains_key(h) {
                    continue;
                }
                let (o, l) = cuts[i];
                let obj = format::seal(cipher, &data[o..o + l], h, LEVEL_LARGE);
                let inline = obj.len() <= INLINE_MAX;
                let loc = self.inner.segs.lock().append_small(&obj, inline)?;
                new_objs.push(NewObj {
                    hash: *h,
                    loc,
                    plain: l as u64,
                    large: false,
                    inline: inline.then_some(obj),
                });
                have.insert(*h);
            }
            new_objs.retain(|o| !st.chunks.contains_key(&o.hash));
            let blob_chunks = (!st.blobs.contains_key(&blob)).then(|| hashes.clone());
            let now = self.now();
            let id = st.next_id;
            let audit = st.audit_entry(now, Self::actor_of(opts), Action::Put, Some(id), "");
            let rec = Rec::Put(
                PutRec {
                    id,
                    name: name.to_string(),
                    kind: Self::kind_of(opts).to_string(),
                    created: now,
                    producer: opts.produced_by.clone(),
                    inputs: opts.inputs.clone(),
                    structure,
                    blob,
                    size: data.len() as u64,
                    new_objs,
                    blob_chunks,
                },
                audit,
            );
            let lsn = self.inner.ctx.journal.append(Tag::Artifacts, &rec)?;
            dead.extend(st.apply(rec, None, &em)?);
            (id, lsn)
        };
        self.finish(lsn, durable, &dead)?;
        Ok(id)
    }

    /// Ingest a file: its whole-file BLAKE3 is computed first over a memory map (multithreaded);
    /// known content is not read again. Else the file is read and stored like [`Self::put`].
    pub fn ingest_file(
        &self,
        name: &str,
        path: &Path,
        opts: &PutOptions,
        durable: bool,
    ) -> Result<ArtifactId> {
        self.check_open()?;
        check_name("name", name)?;
        let io = |e: std::io::Error| StorageError::io(format!("reading {}", path.display()), e);
        let mut hasher = blake3::Hasher::new();
        hasher.update_mmap_rayon(path).map_err(io)?;
        let blob = *hasher.finalize().as_bytes();
        if let Some(id) = self.try_put_known(name, &blob, opts, durable)? {
            return Ok(id);
        }
        let data = std::fs::read(path).map_err(io)?;
        if data.len() >= LARGE_MIN {
            self.put_large(name, &data, opts, durable, None)
        } else {
            self.put(name, &data, opts, durable)
        }
    }

    /// Resolve a name (and version number, default newest live) to an id.
    pub fn resolve(&self, name: &str, version: Option<u32>) -> Result<ArtifactId> {
        self.inner.state.lock().resolve(name, version)
    }

    /// Read a version's bytes as `actor` (audited; emits `Read`). Verifies every chunk's
    /// authentication tag and hash.
    pub fn get(&self, id: ArtifactId, actor: &str) -> Result<Vec<u8>> {
        self.check_open()?;
        check_name("actor", actor)?;
        let em = self.em();
        let (srcs, size) = {
            let mut st = self.inner.state.lock();
            let v = st.live_version(id)?;
            if let Some(r) = &v.archive {
                return Err(ArtifactError::Archived {
                    id,
                    archive_ref: r.clone(),
                }
                .into());
            }
            let (blob, size) = (v.blob, v.size);
            let a = st.audit_entry(self.now(), actor, Action::Get, Some(id), "");
            let rec = Rec::Get(id, a);
            self.inner.ctx.journal.append(Tag::Artifacts, &rec)?;
            st.apply(rec, None, &em)?;
            let mut segs = self.inner.segs.lock();
            (st.sources(&mut segs, &blob, id)?, size)
        };
        let parts = read_objects(&self.inner.cipher, id, srcs, true)?;
        if parts.len() == 1 {
            return Ok(parts.into_iter().next().expect("one part").1);
        }
        let mut out = Vec::with_capacity(size as usize);
        for (_, p) in parts {
            out.extend_from_slice(&p);
        }
        Ok(out)
    }

    /// A live version's plaintext size.
    pub fn size_of(&self, id: ArtifactId) -> Result<u64> {
        Ok(self.inner.state.lock().live_version(id)?.size)
    }

    /// A version's metadata.
    pub fn info(&self, id: ArtifactId) -> Result<(Version, String)> {
        let st = self.inner.state.lock();
        let v = st.version(id)?;
        Ok((v.clone(), st.kinds[v.kind as usize].clone()))
    }

    /// Ids of the live versions of `name`, oldest first.
    pub fn versions(&self, name: &str) -> Result<Vec<ArtifactId>> {
        let st = self.inner.state.lock();
        let ids = st
            .names
            .get(name)
            .ok_or_else(|| ArtifactError::NameNotFound(name.to_string()))?;
        Ok(ids
            .iter()
            .copied()
            .filter(|id| st.versions[id].deleted.is_none())
            .collect())
    }

    /// Ids of the live versions stored after version `after`, oldest first (ids grow with every
    /// put): what a view that has seen everything up to `after` has not seen yet.
    pub fn ids_after(&self, after: ArtifactId) -> Vec<ArtifactId> {
        let st = self.inner.state.lock();
        let all = &st.versions.0;
        let from = usize::try_from(after).map_or(all.len(), |a| a.min(all.len()));
        all[from..]
            .iter()
            .filter(|v| v.deleted.is_none())
            .map(|v| v.id)
            .collect()
    }

    /// Every name with at least one live version, sorted.
    pub fn names(&self) -> Vec<String> {
        self.names_with_prefix("", &[])
    }

    /// Every name starting with `prefix` and with none of `exclude` that has a live version,
    /// sorted.
    ///
    /// Filtering here spares a caller that wants one family of names (`run/…`), or all but the
    /// bookkeeping ones (`cache/…`), a copy of every name: a data directory used for months
    /// holds hundreds of thousands.
    pub fn names_with_prefix(&self, prefix: &str, exclude: &[String]) -> Vec<String> {
        let st = self.inner.state.lock();
        let mut n: Vec<String> = st
            .names
            .iter()
            .filter(|(k, _)| k.starts_with(prefix) && !exclude.iter().any(|e| k.starts_with(e)))
            .filter(|(_, ids)| ids.iter().any(|id| st.versions[id].deleted.is_none()))
            .map(|(k, _)| k.clone())
            .collect();
        n.sort_unstable();
        n
    }

    /// Everything `id` was derived from, transitively (deleted versions included: lineage is
    /// history), ascending.
    pub fn ancestors(&self, id: ArtifactId) -> Result<Vec<ArtifactId>> {
        let st = self.inner.state.lock();
        st.version(id)?;
        Ok(st.walk(id, false))
    }

    /// Everything derived from `id`, transitively, ascending.
    pub fn descendants(&self, id: ArtifactId) -> Result<Vec<ArtifactId>> {
        let st = self.inner.state.lock();
        st.version(id)?;
        Ok(st.walk(id, true))
    }

    /// A version's quality.
    pub fn quality(&self, id: ArtifactId) -> Result<Quality> {
        Ok(self.inner.state.lock().live_version(id)?.quality())
    }

    /// Set quality scores (`None` leaves one unchanged); a utility given pins it.
    pub fn set_quality(
        &self,
        id: ArtifactId,
        structure: Option<f32>,
        semantics: Option<f32>,
        utility: Option<f32>,
        durable: bool,
    ) -> Result<Quality> {
        self.check_open()?;
        check_score("structure", structure)?;
        check_score("semantics", semantics)?;
        check_score("utility", utility)?;
        let em = self.em();
        let (q, lsn) = {
            let mut st = self.inner.state.lock();
            st.live_version(id)?;
            let rec = Rec::Quality {
                id,
                structure,
                semantics,
                utility,
            };
            let lsn = self.inner.ctx.journal.append(Tag::Artifacts, &rec)?;
            st.apply(rec, None, &em)?;
            (st.versions[&id].quality(), lsn)
        };
        self.finish(lsn, durable, &[])?;
        Ok(q)
    }

    /// Record that run `run` succeeded or failed: every live artifact it produced and everything
    /// they derive from is credited. Returns how many were credited. A run's outcome is recorded
    /// once.
    pub fn record_run_outcome(&self, run: &str, success: bool, durable: bool) -> Result<usize> {
        self.check_open()?;
        check_name("run", run)?;
        let em = self.em();
        let (n, lsn) = {
            let mut st = self.inner.state.lock();
            if st.outcomes.contains_key(run) {
                return Err(invalid(format!("run '{run}' already has an outcome")));
            }
            let n = st.run_lineage(run).len();
            let rec = Rec::RunOutcome {
                run: run.to_string(),
                success,
            };
            let lsn = self.inner.ctx.journal.append(Tag::Artifacts, &rec)?;
            st.apply(rec, None, &em)?;
            (n, lsn)
        };
        self.finish(lsn, durable, &[])?;
        Ok(n)
    }

    fn set_hold(&self, id: ArtifactId, held: bool, actor: &str, reason: &str) -> Result<()> {
        self.check_open()?;
        check_name("actor", actor)?;
        let em = self.em();
        let lsn = {
            let mut st = self.inner.state.lock();
            st.live_version(id)?;
            let action = if held {
                Action::Hold
            } else {
                Action::ReleaseHold
            };
            let a = st.audit_entry(self.now(), actor, action, Some(id), reason);
            let rec = Rec::Hold(id, held, a);
            let lsn = self.inner.ctx.journal.append(Tag::Artifacts, &rec)?;
            st.apply(rec, None, &em)?;
            lsn
        };
        // Holds are compliance actions: always durable.
        self.inner.ctx.journal.sync(lsn)
    }

    /// Place a legal hold (durable, audited). Idempotent.
    pub fn hold(&self, id: ArtifactId, actor: &str, reason: &str) -> Result<()> {
        self.set_hold(id, true, actor, reason)
    }

    /// Lift a legal hold (durable, audited). Idempotent.
    pub fn release_hold(&self, id: ArtifactId, actor: &str) -> Result<()> {
        self.set_hold(id, false, actor, "")
    }

    /// Whether `id` is held.
    pub fn is_held(&self, id: ArtifactId) -> Result<bool> {
        Ok(self.inner.state.lock().live_version(id)?.held)
    }

    /// Set (replace) the retention policy for `scope`; `keep_days = None` removes it.
    pub fn set_retention(
        &self,
        scope: Scope,
        keep_days: Option<f64>,
        expire: bool,
        actor: &str,
    ) -> Result<()> {
        self.check_open()?;
        check_name("actor", actor)?;
        match &scope {
            Scope::Name(s) => check_name("name", s)?,
            Scope::Kind(s) => check_name("kind", s)?,
        }
        if let Some(d) = keep_days {
            if !(d.is_finite() && d >= 0.0) {
                return Err(invalid(format!(
                    "argument 'keep_days': expected a non-negative number, got {d}"
                )));
            }
        }
        let em = self.em();
        let lsn = {
            let mut st = self.inner.state.lock();
            let mut p = st.policies.clone();
            p.retain(|x| x.scope != scope);
            let detail = match &scope {
                Scope::Name(n) => format!("name={n}"),
                Scope::Kind(k) => format!("kind={k}"),
            };
            let detail = match keep_days {
                Some(d) => {
                    p.push(Policy {
                        scope,
                        keep: (d * DAY * 1e6) as Micros,
                        expire,
                    });
                    format!("{detail} keep_days={d} expire={expire}")
                }
                None => format!("{detail} removed"),
            };
            let a = st.audit_entry(self.now(), actor, Action::Retention, None, &detail);
            let rec = Rec::Retention(p, a);
            let lsn = self.inner.ctx.journal.append(Tag::Artifacts, &rec)?;
            st.apply(rec, None, &em)?;
            lsn
        };
        self.inner.ctx.journal.sync(lsn)
    }

    /// The retention policies.
    pub fn retention_policies(&self) -> Vec<Policy> {
        self.inner.state.lock().policies.clone()
    }

    fn delete_locked(
        &self,
        st: &mut State,
        em: &Em,
        id: ArtifactId,
        actor: &str,
        sweep: bool,
    ) -> Result<(Lsn, Vec<u32>)> {
        let v = st.live_version(id)?;
        if v.held {
            return Err(ArtifactError::Held {
                id,
                actor: actor.to_string(),
            }
            .into());
        }
        let now = self.now();
        if let Some((until, _)) = st.retained_until(v) {
            if now < until && !sweep {
                return Err(ArtifactError::Retained {
                    id,
                    until: until as f64 / 1e6,
                }
                .into());
            }
        }
        let detail = if sweep { "retention sweep" } else { "" };
        let a = st.audit_entry(now, actor, Action::Delete, Some(id), detail);
        let rec = Rec::Delete(id, a);
        let lsn = self.inner.ctx.journal.append(Tag::Artifacts, &rec)?;
        let dead = st.apply(rec, None, em)?;
        Ok((lsn, dead))
    }

    /// Compact small-object segments that are less than half live: copy their live objects
    /// (bytes unchanged, still encrypted) into the active segment, then remove the old files once
    /// the move is durable. Runs after deletes and archiving; returns bytes given back.
    pub fn compact(&self) -> Result<u64> {
        self.compact_with(false)
    }

    /// [`ArtifactStore::compact`], and with `include_active` the active segment too when it is
    /// less than half live: it is closed (a new one started) and compacted like the others. The
    /// Stale Manager calls this after deleting under storage pressure, so that deletions give
    /// space back at once instead of when the active segment rolls.
    pub fn compact_with(&self, include_active: bool) -> Result<u64> {
        self.check_open()?;
        let before = self.local_bytes();
        let em = self.em();
        let (lsn, dead) = {
            let mut st = self.inner.state.lock();
            let mut dead = self.ensure_init(&st)?;
            let mut segs = self.inner.segs.lock();
            if include_active {
                let sparse = segs
                    .active_num()
                    .and_then(|n| st.segs.get(&n))
                    .is_some_and(|s| s.end > 0 && s.live_bytes * 2 < s.end);
                if sparse {
                    if let Some(old) = segs.roll()? {
                        if st.segs.get(&old).is_some_and(|s| s.live == 0) {
                            dead.push(old);
                        }
                    }
                }
            }
            let active = segs.active_num();
            let victims: HashSet<u32> = st
                .segs
                .iter()
                .filter(|(n, s)| {
                    !s.large && Some(**n) != active && s.live > 0 && s.live_bytes * 2 < s.end
                })
                .map(|(n, _)| *n)
                .take(8)
                .collect();
            if victims.is_empty() {
                drop(segs);
                drop(st);
                if !dead.is_empty() {
                    self.finish(self.inner.ctx.journal.last_lsn(), true, &dead)?;
                }
                return Ok(before.saturating_sub(self.local_bytes()));
            }
            let mut moves = Vec::new();
            for (h, ch) in st
                .chunks
                .iter()
                .filter(|(_, c)| victims.contains(&c.loc.seg))
            {
                let obj = segs
                    .source(ch.loc)
                    .and_then(Src::read)
                    .map_err(|e| StorageError::io("compacting", std::io::Error::other(e)))?;
                let inline = obj.len() <= INLINE_MAX;
                let loc = if inline {
                    segs.append_small(&obj, true)?
                } else {
                    segs.append_buffered(&obj)?
                };
                moves.push(NewObj {
                    hash: *h,
                    loc,
                    plain: ch.plain,
                    large: false,
                    inline: inline.then_some(obj),
                });
            }
            segs.flush()?;
            drop(segs);
            let rec = Rec::Move(moves);
            let lsn = self.inner.ctx.journal.append(Tag::Artifacts, &rec)?;
            dead.extend(st.apply(rec, None, &em)?);
            (lsn, dead)
        };
        self.finish(lsn, true, &dead)?;
        Ok(before.saturating_sub(self.local_bytes()))
    }

    /// CONTRACT: delete an artifact version as `actor` (audited, durable). Fails with
    /// `LegalHoldError` while held, whoever asks, and with `RetentionError` before its retention
    /// period has passed.
    pub fn delete(&self, id: ArtifactId, actor: &str) -> Result<()> {
        self.check_open()?;
        check_name("actor", actor)?;
        let em = self.em();
        let (lsn, dead) = {
            let mut st = self.inner.state.lock();
            self.delete_locked(&mut st, &em, id, actor, false)?
        };
        self.finish(lsn, true, &dead)?;
        self.compact().map(|_| ())
    }

    /// Delete every unheld version whose expiring retention policy has run out. Returns the ids.
    pub fn sweep_retention(&self, actor: &str) -> Result<Vec<ArtifactId>> {
        self.check_open()?;
        check_name("actor", actor)?;
        let em = self.em();
        let now = self.now();
        let mut out = Vec::new();
        let mut dead = Vec::new();
        let mut lsn = 0;
        {
            let mut st = self.inner.state.lock();
            let due: Vec<ArtifactId> = st
                .versions
                .values()
                .filter(|v| v.deleted.is_none() && !v.held)
                .filter(|v| {
                    st.retained_until(v)
                        .is_some_and(|(until, expire)| expire && until <= now)
                })
                .map(|v| v.id)
                .collect();
            for id in due {
                let (l, d) = self.delete_locked(&mut st, &em, id, actor, true)?;
                lsn = l;
                dead.extend(d);
                out.push(id);
            }
        }
        self.finish(lsn, true, &dead)?;
        if !out.is_empty() {
            self.compact()?;
        }
        Ok(out)
    }

    /// The audit trail (optionally of one artifact), oldest first. Older records are read from
    /// the trail's file; one that cannot be read back raises `AuditChainError` naming it.
    pub fn audit(&self, artifact: Option<ArtifactId>) -> Result<Vec<AuditEntry>> {
        let wanted = |a: &AuditEntry| artifact.is_none() || a.artifact == artifact;
        let (dir, mark, newest) = {
            let st = self.inner.state.lock();
            let newest: Vec<AuditEntry> = st.audit.iter().filter(|a| wanted(a)).cloned().collect();
            (
                st.audit_log.dir().map(Path::to_path_buf),
                st.audit_mark,
                newest,
            )
        };
        let mut out = Vec::new();
        if let Some(dir) = dir {
            auditlog::read(&dir, &mark, |a| {
                if wanted(&a) {
                    out.push(a);
                }
                Ok(())
            })?;
        }
        out.extend(newest);
        Ok(out)
    }

    /// Re-hash every local blob (decrypting each chunk) and check the audit chain. Returns the
    /// number of live local versions verified. The first damaged blob raises
    /// `ArtifactIntegrityError` naming the (lowest) artifact id using it.
    pub fn verify(&self) -> Result<usize> {
        self.check_open()?;
        let (dir, mark, newest) = {
            let st = self.inner.state.lock();
            (
                st.audit_log.dir().map(Path::to_path_buf),
                st.audit_mark,
                st.audit.clone(),
            )
        };
        let mut chain = Chain::default();
        if let Some(dir) = dir {
            auditlog::read(&dir, &mark, |a| chain.check(&a))?;
        }
        if (chain.next, chain.prev) != (mark.count, mark.tail) {
            return Err(ArtifactError::AuditChain {
                seq: chain.next.min(mark.count),
                reason: "the audit trail's file does not end with the record the snapshot names"
                    .into(),
            }
            .into());
        }
        for a in &newest {
            chain.check(a)?;
        }
        let (jobs, count) = {
            let st = self.inner.state.lock();
            let mut first: BTreeMap<Hash, ArtifactId> = BTreeMap::new();
            let mut count = 0;
            for v in st.versions.values().filter(|v| v.local()) {
                first.entry(v.blob).or_insert(v.id);
                count += 1;
            }
            let mut segs = self.inner.segs.lock();
            let mut jobs = Vec::with_capacity(first.len());
            for (blob, id) in first {
                jobs.push((id, blob, st.sources(&mut segs, &blob, id)?));
            }
            (jobs, count)
        };
        let cipher = &self.inner.cipher;
        let mut results: Vec<(ArtifactId, Result<()>)> = jobs
            .into_par_iter()
            .map(|(id, blob, srcs)| {
                let r = (|| {
                    let n = srcs.len();
                    let parts = read_objects(cipher, id, srcs, true)?;
                    if n > 1 {
                        let mut h = blake3::Hasher::new();
                        for (_, p) in &parts {
                            h.update(p);
                        }
                        if *h.finalize().as_bytes() != blob {
                            return Err(ArtifactError::Integrity {
                                id,
                                reason: "its chunks do not hash to its content hash".into(),
                            }
                            .into());
                        }
                    } else if format::hash(&parts[0].1) != blob {
                        return Err(ArtifactError::Integrity {
                            id,
                            reason: "its content does not hash to its content hash".into(),
                        }
                        .into());
                    }
                    Ok(())
                })();
                (id, r)
            })
            .collect();
        results.sort_by_key(|r| r.0);
        for (_, r) in results {
            r?;
        }
        Ok(count)
    }

    /// CONTRACT: set the observer; the store immediately emits `Stored` (and the other events
    /// describing current state) for every live artifact, then every later change.
    pub fn set_observer(&self, observer: Weak<dyn ArtifactObserver>) {
        let st = self.inner.state.lock();
        *self.inner.observer.write() = Some(observer);
        let em = self.em();
        for v in st.versions.values() {
            em.describe(v);
        }
    }

    fn stored_objects(&self, id: ArtifactId) -> Result<(Hash, u64, Vec<Vec<u8>>)> {
        let (srcs, blob, size) = {
            let st = self.inner.state.lock();
            let v = st.live_version(id)?;
            if !st.blobs.contains_key(&v.blob) {
                return Err(ArtifactError::Archived {
                    id,
                    archive_ref: v.archive.clone().unwrap_or_default(),
                }
                .into());
            }
            let (blob, size) = (v.blob, v.size);
            let mut segs = self.inner.segs.lock();
            (st.sources(&mut segs, &blob, id)?, blob, size)
        };
        let objs = read_objects(&self.inner.cipher, id, srcs, false)?;
        Ok((blob, size, objs.into_iter().map(|o| o.0).collect()))
    }

    /// CONTRACT: the stored (encrypted) bytes of an artifact's blob, self-describing per
    /// `docs/artifact-format.md`, for copying to an archive.
    pub fn export_stored(&self, id: ArtifactId) -> Result<Vec<u8>> {
        self.check_open()?;
        let (blob, size, mut objs) = self.stored_objects(id)?;
        if objs.len() == 1 {
            return Ok(objs.pop().expect("one object"));
        }
        Ok(format::container(&blob, size, &objs))
    }

    /// Decode an export for version `id`: its objects with their plaintext hashes, checked.
    fn check_stored(&self, id: ArtifactId, stored: &[u8]) -> Result<Vec<(Hash, Vec<u8>, u64)>> {
        let (blob, size) = {
            let st = self.inner.state.lock();
            let v = st.live_version(id)?;
            (v.blob, v.size)
        };
        let integ = |reason: String| ArtifactError::Integrity { id, reason };
        let (h, total, objs) = format::split_export(stored).map_err(|b| integ(b.0))?;
        if h != blob || total != size {
            return Err(integ("the stored copy is of other content".into()).into());
        }
        let cipher = &self.inner.cipher;
        let plains: Vec<(Hash, Vec<u8>)> = objs
            .par_iter()
            .map(|o| {
                format::open(cipher, o.to_vec())
                    .map(|(hd, p)| (hd.hash, p))
                    .map_err(|b| integ(b.0))
            })
            .collect::<std::result::Result<_, _>>()?;
        let mut hasher = blake3::Hasher::new();
        let mut len = 0u64;
        for (_, p) in &plains {
            hasher.update(p);
            len += p.len() as u64;
        }
        if *hasher.finalize().as_bytes() != blob || len != size {
            return Err(
                integ("the stored copy does not hash to the artifact's content".into()).into(),
            );
        }
        Ok(objs
            .iter()
            .zip(plains)
            .map(|(o, (hh, p))| (hh, o.to_vec(), p.len() as u64))
            .collect())
    }

    /// CONTRACT: check that `stored` (an archive copy) decrypts with this store's key and hashes
    /// to artifact `id`'s content hash.
    pub fn verify_stored(&self, id: ArtifactId, stored: &[u8]) -> Result<()> {
        self.check_open()?;
        self.check_stored(id, stored).map(|_| ())
    }

    /// CONTRACT: the blob is now kept in the archive under `archive_ref`; drop the local copy
    /// (space is reclaimed once no local version shares the blob). A held artifact may be
    /// archived; it stays held and undeletable.
    pub fn release_local(&self, id: ArtifactId, archive_ref: &str) -> Result<()> {
        self.check_open()?;
        check_name("archive_ref", archive_ref)?;
        let em = self.em();
        let (lsn, dead) = {
            let mut st = self.inner.state.lock();
            let v = st.live_version(id)?;
            if let Some(r) = &v.archive {
                return Err(ArtifactError::Illegal {
                    id,
                    reason: format!("already archived ({r})"),
                }
                .into());
            }
            let a = st.audit_entry(
                self.now(),
                "stale-manager",
                Action::Archive,
                Some(id),
                archive_ref,
            );
            let rec = Rec::Archive(id, archive_ref.to_string(), a);
            let lsn = self.inner.ctx.journal.append(Tag::Artifacts, &rec)?;
            let dead = st.apply(rec, None, &em)?;
            (lsn, dead)
        };
        self.finish(lsn, true, &dead)?;
        self.compact().map(|_| ())
    }

    /// CONTRACT: put an archived artifact's blob back locally from its archive copy (verified).
    pub fn restore_local(&self, id: ArtifactId, stored: &[u8]) -> Result<()> {
        self.check_open()?;
        {
            let st = self.inner.state.lock();
            if st.live_version(id)?.archive.is_none() {
                return Err(ArtifactError::Illegal {
                    id,
                    reason: "it is not archived".into(),
                }
                .into());
            }
        }
        let objs = self.check_stored(id, stored)?;
        let em = self.em();
        let (lsn, dead) = {
            let mut st = self.inner.state.lock();
            let dead = self.ensure_init(&st)?;
            let v = st.live_version(id)?;
            if v.archive.is_none() {
                return Err(ArtifactError::Illegal {
                    id,
                    reason: "it is not archived".into(),
                }
                .into());
            }
            let blob = v.blob;
            let mut new_objs = Vec::new();
            let blob_chunks = if st.blobs.contains_key(&blob) {
                None
            } else {
                let mut seen = HashSet::new();
                for (h, obj, plain) in &objs {
                    if st.chunks.contains_key(h) || !seen.insert(*h) {
                        continue;
                    }
                    let inline = obj.len() <= INLINE_MAX;
                    let loc = self.inner.segs.lock().append_small(obj, inline)?;
                    new_objs.push(NewObj {
                        hash: *h,
                        loc,
                        plain: *plain,
                        large: false,
                        inline: inline.then(|| obj.clone()),
                    });
                }
                Some(objs.iter().map(|o| o.0).collect())
            };
            let a = st.audit_entry(self.now(), "stale-manager", Action::Restore, Some(id), "");
            let rec = Rec::Restore {
                id,
                new_objs,
                blob_chunks,
                audit: a,
            };
            let lsn = self.inner.ctx.journal.append(Tag::Artifacts, &rec)?;
            st.apply(rec, None, &em)?;
            (lsn, dead)
        };
        self.finish(lsn, true, &dead)
    }

    /// CONTRACT: bytes the store occupies locally (segment files and large-blob files).
    ///
    /// The first call after opening reconciles the segment files with the metadata (files of
    /// segments that died during replay are removed once the journal is durable).
    pub fn local_bytes(&self) -> u64 {
        if !self.inner.closed.load(Ordering::Acquire) && !self.inner.segs.lock().initialized() {
            let dead = {
                let st = self.inner.state.lock();
                self.ensure_init(&st)
            };
            if let Ok(dead) = dead {
                // Best effort: a failure leaves the files for the next write to remove.
                let _ = self.reclaim(&dead, self.inner.ctx.journal.last_lsn());
            }
        }
        self.inner.segs.lock().bytes()
    }

    /// Number of live (not deleted) versions.
    pub fn len(&self) -> usize {
        self.inner.state.lock().live
    }

    /// Whether no live version exists.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Close files; later calls fail with `PitClosedError`.
    pub fn close(&self) -> Result<()> {
        if self.inner.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        let (files, dir) = self.inner.segs.lock().take_dirty()?;
        segs::sync_files(&files, dir.as_deref())?;
        self.inner.segs.lock().close();
        Ok(())
    }
}

impl Persistent for ArtifactStore {
    fn tag(&self) -> Tag {
        Tag::Artifacts
    }

    fn snapshot(&self) -> Result<(Lsn, Vec<u8>)> {
        let (lsn, bytes, audit_sync) = {
            let mut st = self.inner.state.lock();
            st.flush_audit()?;
            let lsn = self.inner.ctx.journal.last_lsn();
            let encode = |e: postcard::Error| {
                crate::Error::Internal(format!("encoding artifact state: {e}"))
            };
            let mut bytes = postcard::to_stdvec(&*st).map_err(encode)?;
            bytes = postcard::to_extend(&st.audit_mark, bytes).map_err(encode)?;
            (lsn, bytes, st.audit_log.take_unsynced())
        };
        // Every object and audit record the snapshot refers to must be on disk before it is.
        let (files, dir) = self.inner.segs.lock().take_dirty()?;
        segs::sync_files(&files, dir.as_deref())?;
        if let Some(set) = audit_sync {
            if let Err(e) = auditlog::sync(&set) {
                self.inner.state.lock().audit_log.put_back(&set);
                return Err(e);
            }
        }
        Ok((lsn, bytes))
    }

    fn restore(&self, bytes: &[u8]) -> Result<()> {
        let decode =
            |e: postcard::Error| crate::Error::Internal(format!("decoding artifact state: {e}"));
        let (mut st, rest): (State, &[u8]) = postcard::take_from_bytes(bytes).map_err(decode)?;
        // Snapshots written before the audit trail had a file end here: all their records are
        // in `audit`, and the first checkpoint moves them to the file.
        if !rest.is_empty() {
            st.audit_mark = postcard::from_bytes(rest).map_err(decode)?;
        }
        {
            let mut cur = self.inner.state.lock();
            cur.audit_log.check(&st.audit_mark)?;
            st.audit_log = std::mem::take(&mut cur.audit_log);
        }
        st.rebuild();
        let em = self.em();
        for v in st.versions.values() {
            em.describe(v);
        }
        *self.inner.state.lock() = st;
        Ok(())
    }

    fn replay(&self, _lsn: Lsn, payload: &[u8]) -> Result<()> {
        let rec: Rec = postcard::from_bytes(payload)
            .map_err(|e| crate::Error::Internal(format!("decoding artifact record: {e}")))?;
        let em = self.em();
        let mut st = self.inner.state.lock();
        let mut segs = self.inner.segs.lock();
        st.apply(rec, Some(&mut *segs), &em)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
