//! The Pit: Symphony's five infrastructure components in one process, sharing one state.
//!
//! * [`pool::PoolManager`]: models, slots, lifecycle, health, cost, memory, pre-warming.
//! * [`dag::DagTracker`]: workflows, dependency kinds, node states, critical path, checkpoints.
//! * [`artifacts::ArtifactStore`]: content-addressed, compressed, encrypted blobs with versions,
//!   lineage, quality scores, audit trail and legal hold.
//! * [`arbitration::ArbitrationEngine`]: who gets scarce slots, with fairness and rationale.
//! * [`stale::StaleManager`]: training-value tiers, archive and pressure-driven cleanup.
//!
//! [`Pit`] opens them together over one data directory. Every mutation is logged to the shared
//! [`journal::Journal`]; [`Pit::checkpoint`] writes a snapshot of each component and drops the
//! journal segments it covers. Reopening restores the snapshot and replays the journal after it.
#![forbid(unsafe_code)]

pub mod arbitration;
pub mod artifacts;
pub mod clock;
pub mod dag;
mod datadir;
pub mod error;
pub mod journal;
pub mod pool;
pub mod stale;

#[cfg(test)]
mod pit_tests;
#[cfg(test)]
mod read_only_tests;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

pub use clock::{Clock, Micros, SECOND};
pub use error::{Classify, Detail, Error, ErrorKind, Result, StorageError};
pub use journal::{Journal, JournalOptions, Lsn, Tag};

/// Id of an artifact version in the Artifact Store. Shared by the DAG Tracker (nodes reference
/// artifacts) and the Stale Manager (which must not delete referenced ones).
pub type ArtifactId = u64;

/// What every component is constructed with.
#[derive(Debug, Clone)]
pub struct Ctx {
    /// Where mutations are logged (records nothing for an in-memory Pit).
    pub journal: Journal,
    /// The one clock.
    pub clock: Clock,
    /// The data directory, `None` in memory. A component keeps its own files under
    /// `data_dir/<component>/`.
    pub data_dir: Option<PathBuf>,
}

impl Ctx {
    /// A context for an in-memory component (tests, benchmarks).
    pub fn in_memory(clock: Clock) -> Self {
        Self {
            journal: Journal::in_memory(),
            clock,
            data_dir: None,
        }
    }
}

/// A component whose state survives reopening: snapshot + journal replay.
///
/// Rules every component follows:
/// * a mutation changes state and appends its journal record while holding the same lock;
/// * `replay` applies a record without appending anything;
/// * `snapshot` returns the [`Journal::last_lsn`] read while holding the component's state
///   lock(s), so the snapshot reflects exactly the component's records up to that LSN.
pub trait Persistent: Send + Sync {
    /// The component's journal tag.
    fn tag(&self) -> Tag;
    /// Encode the whole state; returns the LSN it covers.
    fn snapshot(&self) -> Result<(Lsn, Vec<u8>)>;
    /// Replace the state with a decoded snapshot (called once, before any replay).
    fn restore(&self, bytes: &[u8]) -> Result<()>;
    /// Apply one journal record written by this component.
    fn replay(&self, lsn: Lsn, payload: &[u8]) -> Result<()>;
}

/// How to open a Pit.
#[derive(Debug, Clone, Default)]
pub struct PitOptions {
    /// The 256-bit key the Artifact Store encrypts with. Required for a persistent Pit (the Python
    /// side fetches it from the OS keyring or an explicit key file); random for an in-memory one.
    pub key: Option<[u8; 32]>,
    /// The clock (system by default; manual for tests and simulations).
    pub clock: Clock,
    /// Where the Stale Manager's local-directory archive backend keeps archived artifacts;
    /// default `data_dir/archive` (in memory: archive kept in memory).
    pub archive_dir: Option<PathBuf>,
    /// Journal tuning.
    pub journal: JournalOptions,
}

/// The five components over one shared state.
pub struct Pit {
    ctx: Ctx,
    /// Pool Manager.
    pub pool: Arc<pool::PoolManager>,
    /// DAG Tracker.
    pub dag: Arc<dag::DagTracker>,
    /// Artifact Store.
    pub artifacts: Arc<artifacts::ArtifactStore>,
    /// Arbitration Engine.
    pub arbitration: Arc<arbitration::ArbitrationEngine>,
    /// Stale Manager.
    pub stale: Arc<stale::StaleManager>,
    dir: Option<datadir::DataDir>,
    /// Opened with [`Pit::open_read_only`]: nothing is ever written to `dir`.
    read_only: bool,
    closed: AtomicBool,
    checkpoint_lock: parking_lot::Mutex<()>,
}

impl std::fmt::Debug for Pit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.ctx.data_dir {
            Some(d) => write!(f, "Pit({})", d.display()),
            None => f.write_str("Pit(in-memory)"),
        }
    }
}

impl Pit {
    /// A Pit with no disk: nothing is written, everything is lost on drop.
    pub fn in_memory(options: &PitOptions) -> Result<Arc<Self>> {
        let key = options.key.unwrap_or_else(rand::random);
        let ctx = Ctx::in_memory(options.clock.clone());
        let archive: Box<dyn stale::ArchiveBackend> = match &options.archive_dir {
            Some(d) => Box::new(stale::LocalDirArchive::open(d)?),
            None => Box::new(stale::MemoryArchive::default()),
        };
        Self::assemble(ctx, key, archive, None)
    }

    /// Open (or create) a persistent Pit in `dir`.
    ///
    /// A directory that is not empty and has no Pit manifest is refused (`ForeignDataDirError`), a
    /// damaged one is refused (`DataDirCorruptError`) and in both cases nothing in it is written.
    /// A wrong key is refused (`EncryptionKeyError`).
    pub fn open(dir: &Path, options: &PitOptions) -> Result<Arc<Self>> {
        let key = checked_options(dir, options)?;
        let data_dir = datadir::DataDir::open(dir, &key)?;
        let snapshots = data_dir.read_snapshot()?;
        // Without a snapshot the journal must start at LSN 1; with one, it must reach every
        // record the snapshot covers (else segments were removed or emptied).
        let covered = snapshots.iter().map(|s| s.1).max();
        let (journal, records) = Journal::open_checked(
            &dir.join("journal"),
            options.journal.clone(),
            Some((covered, &dir.join("snapshot.bin"))),
        )?;
        let ctx = Ctx {
            journal,
            clock: options.clock.clone(),
            data_dir: Some(dir.to_path_buf()),
        };
        let archive_dir = options
            .archive_dir
            .clone()
            .unwrap_or_else(|| dir.join("archive"));
        let archive: Box<dyn stale::ArchiveBackend> =
            Box::new(stale::LocalDirArchive::open(&archive_dir)?);
        let pit = Self::assemble(ctx, key, archive, Some(data_dir))?;
        pit.load(dir, &snapshots, &records)?;
        if let Some(d) = &pit.dir {
            d.upgrade_format()?;
        }
        let weak = Arc::downgrade(&pit);
        pit.ctx.journal.set_checkpoint_hook(Box::new(move || {
            if let Some(p) = weak.upgrade() {
                // A failed background checkpoint leaves the journal in place; the next one retries.
                // (After close() it is refused: close took the last one.)
                let _ = p.checkpoint();
            }
        }));
        Ok(pit)
    }

    /// Restore the snapshot's sections and replay the journal records after them.
    fn load(
        &self,
        dir: &Path,
        snapshots: &[(Tag, Lsn, Vec<u8>)],
        records: &[journal::Record],
    ) -> Result<()> {
        let components = self.components();
        let mut covered = [0 as Lsn; 256];
        for (tag, lsn, bytes) in snapshots {
            let c = components
                .iter()
                .find(|c| c.tag() == *tag)
                .ok_or_else(|| Error::Internal(format!("no component for tag {tag:?}")))?;
            c.restore(bytes).map_err(|e| match e {
                Error::Internal(m) => StorageError::Corrupt {
                    path: dir.join("snapshot.bin").display().to_string(),
                    reason: format!("the {tag:?} section cannot be restored: {m}"),
                }
                .into(),
                other => other,
            })?;
            covered[*tag as usize] = *lsn;
        }
        for rec in records {
            if rec.lsn > covered[rec.tag as usize] {
                let c = components
                    .iter()
                    .find(|c| c.tag() == rec.tag)
                    .ok_or_else(|| {
                        Error::Internal(format!("no component for tag {:?}", rec.tag))
                    })?;
                c.replay(rec.lsn, &rec.payload).map_err(|e| match e {
                    Error::Internal(m) => StorageError::Corrupt {
                        path: dir.join("journal").display().to_string(),
                        reason: format!(
                            "record {} ({:?}) cannot be applied: {m}",
                            rec.lsn, rec.tag
                        ),
                    }
                    .into(),
                    other => other,
                })?;
            }
        }
        Ok(())
    }

    /// Open an existing persistent Pit in `dir` for inspection, writing nothing at all to it.
    ///
    /// The directory must hold a Pit (its manifest); the key must be its key. Files are only
    /// opened for reading, so an immutable or read-only directory can be inspected. The journal is
    /// replayed in memory (a torn tail is skipped, not cut off); no lock file, archive directory,
    /// journal segment or snapshot is created, and [`Pit::close`] takes no checkpoint. Every
    /// mutation is refused with `ReadOnlyError` (at the journal append, and before any artifact
    /// segment, audit-trail or archive write). While another process has the Pit open for
    /// writing it is refused like a second writer (`DataDirLockedError`); see
    /// `DataDir::open_read_only` for the shared lock.
    pub fn open_read_only(dir: &Path, options: &PitOptions) -> Result<Arc<Self>> {
        let key = checked_options(dir, options)?;
        let data_dir = datadir::DataDir::open_read_only(dir, &key)?;
        let snapshots = data_dir.read_snapshot()?;
        let covered = snapshots.iter().map(|s| s.1).max();
        let (journal, records) = Journal::open_read_only(
            &dir.join("journal"),
            Some((covered, &dir.join("snapshot.bin"))),
        )?;
        let ctx = Ctx {
            journal,
            clock: options.clock.clone(),
            data_dir: Some(dir.to_path_buf()),
        };
        let archive_dir = options
            .archive_dir
            .clone()
            .unwrap_or_else(|| dir.join("archive"));
        let archive: Box<dyn stale::ArchiveBackend> = Box::new(stale::ReadOnlyArchive(
            stale::LocalDirArchive::open_read_only(&archive_dir),
        ));
        let mut pit = Self::assemble(ctx, key, archive, Some(data_dir))?;
        Arc::get_mut(&mut pit)
            .ok_or_else(|| Error::Internal("a new Pit is shared".into()))?
            .read_only = true;
        pit.load(dir, &snapshots, &records)?;
        Ok(pit)
    }

    /// Whether the Pit was opened with [`Pit::open_read_only`].
    pub fn is_read_only(&self) -> bool {
        self.read_only
    }

    fn assemble(
        ctx: Ctx,
        key: [u8; 32],
        archive: Box<dyn stale::ArchiveBackend>,
        dir: Option<datadir::DataDir>,
    ) -> Result<Arc<Self>> {
        let pool = Arc::new(pool::PoolManager::new(&ctx));
        let dag = Arc::new(dag::DagTracker::new(&ctx));
        let artifacts = Arc::new(artifacts::ArtifactStore::open(&ctx, key)?);
        let arbitration = Arc::new(arbitration::ArbitrationEngine::new(&ctx, Arc::clone(&pool)));
        let stale = Arc::new(stale::StaleManager::new(
            &ctx,
            Arc::clone(&artifacts),
            Arc::clone(&dag),
            archive,
        ));
        Ok(Arc::new(Self {
            ctx,
            pool,
            dag,
            artifacts,
            arbitration,
            stale,
            dir,
            read_only: false,
            closed: AtomicBool::new(false),
            checkpoint_lock: parking_lot::Mutex::new(()),
        }))
    }

    fn components(&self) -> [&dyn Persistent; 5] {
        [
            self.pool.as_ref(),
            self.dag.as_ref(),
            self.artifacts.as_ref(),
            self.arbitration.as_ref(),
            self.stale.as_ref(),
        ]
    }

    /// The shared clock.
    pub fn clock(&self) -> &Clock {
        &self.ctx.clock
    }

    /// The shared journal.
    pub fn journal(&self) -> &Journal {
        &self.ctx.journal
    }

    /// The data directory, `None` in memory.
    pub fn data_dir(&self) -> Option<&Path> {
        self.ctx.data_dir.as_deref()
    }

    /// Whether [`Pit::close`] was called.
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Make every acknowledged change durable (one group-committed `fdatasync`).
    pub fn sync(&self) -> Result<()> {
        self.ctx.journal.sync_all()
    }

    /// Write a snapshot of every component and drop the journal segments it covers. Bounded
    /// replay time on the next open; called by the journal's flusher as the log grows, and on
    /// close.
    pub fn checkpoint(&self) -> Result<()> {
        if self.is_closed() {
            return Err(StorageError::Closed.into());
        }
        if self.read_only {
            return Err(StorageError::read_only("a checkpoint").into());
        }
        self.checkpoint_now()
    }

    fn checkpoint_now(&self) -> Result<()> {
        let Some(dir) = self.dir.as_ref().filter(|_| !self.read_only) else {
            return Ok(());
        };
        let _guard = self.checkpoint_lock.lock();
        if self.ctx.journal.check_open().is_err() {
            // A background checkpoint that waited for close()'s: the journal is gone.
            return Err(StorageError::Closed.into());
        }
        self.ctx.journal.rotate()?;
        let mut parts = Vec::with_capacity(5);
        for c in self.components() {
            let (lsn, bytes) = c.snapshot()?;
            parts.push((c.tag(), lsn, bytes));
        }
        let min_lsn = parts.iter().map(|p| p.1).min().unwrap_or(0);
        // The snapshot must not claim records that are not yet on disk.
        self.ctx.journal.sync_all()?;
        dir.write_snapshot(&parts)?;
        self.ctx.journal.remove_segments_through(min_lsn)?;
        Ok(())
    }

    /// Flush, checkpoint and close. Later mutations fail with `PitClosedError`. Idempotent.
    pub fn close(&self) -> Result<()> {
        if self.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        // Wake threads blocked in pool.acquire() and refuse later acquires and releases.
        self.pool.close();
        let checkpointed = self.checkpoint_now();
        let closed = self.ctx.journal.close();
        let artifacts_closed = self.artifacts.close();
        if let Some(d) = &self.dir {
            d.unlock();
        }
        checkpointed.and(closed).and(artifacts_closed)
    }
}

/// `path` made absolute with symbolic links resolved, for the part of it that exists.
fn resolve(path: &Path) -> PathBuf {
    let abs = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let mut existing = abs.as_path();
    let mut rest = Vec::new();
    loop {
        if let Ok(c) = existing.canonicalize() {
            return rest.iter().rev().fold(c, |p, r| p.join(r));
        }
        match (existing.parent(), existing.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_os_string());
                existing = parent;
            }
            _ => return abs,
        }
    }
}

/// The key of a persistent Pit in `dir`, after checking the options every open needs.
fn checked_options(dir: &Path, options: &PitOptions) -> Result<[u8; 32]> {
    let key = options.key.ok_or_else(|| {
        StorageError::Key("a persistent Pit needs an encryption key (none was given)".into())
    })?;
    if let Some(a) = &options.archive_dir {
        check_archive_dir(dir, a)?;
    }
    Ok(key)
}

/// Refuse an archive directory that is the data directory or inside it: the Pit owns every file
/// there (an archive in `journal/` makes the Pit unopenable; one at the top mixes with its files).
fn check_archive_dir(dir: &Path, archive_dir: &Path) -> Result<()> {
    let (d, a) = (resolve(dir), resolve(archive_dir));
    if a.starts_with(&d) && a != d.join("archive") {
        return Err(stale::StaleError::InvalidSetting {
            name: "archive_dir",
            reason: format!(
                "{} is inside the data directory {}; the archive must live outside it (or be \
                 left unset to use {})",
                archive_dir.display(),
                dir.display(),
                dir.join("archive").display()
            ),
        }
        .into());
    }
    Ok(())
}

impl Drop for Pit {
    fn drop(&mut self) {
        if !self.closed.load(Ordering::Acquire) {
            // Best effort: what was acknowledged reaches the OS; callers wanting errors call close().
            let _ = self.ctx.journal.flush();
        }
    }
}
