//! The append-only journal every component logs its mutations to, with group commit.
//!
//! Two promises, and every API says which one it gives:
//!
//! * **acknowledged** (in memory): the call returned; the record is in the journal's buffer and a
//!   background flusher hands it to the operating system within `flush_interval` (default 2 ms).
//!   It survives a crash of the process once written (≤ `flush_interval` later), not a crash of the
//!   machine.
//! * **durable**: [`Journal::sync`] returned for the record's [`Lsn`]; the record is on disk
//!   (`fdatasync`). Callers that need durability at once pass `durable=True` in the Python API.
//!
//! Group commit: the caller that needs durability takes the I/O lock, writes everything buffered
//! so far and runs one `fdatasync`; callers queued behind it usually find their record already
//! durable and return without a second sync. A single durable write therefore costs one write plus
//! one `fdatasync`, with no hand-off to another thread.
//!
//! On disk: `journal/<first-lsn, 20 digits>.log` segments, each starting with the 16-byte header
//! `b"PITJRNL1"` + first LSN (u64 LE), then records:
//!
//! ```text
//! u32 LE payload length | u32 LE CRC-32 of (lsn, tag, payload) | u64 LE lsn | u8 tag | payload
//! ```
//!
//! LSNs start at 1 and increase by one per record with no gaps. A damaged record at the very end
//! of the newest segment is a write torn by a crash (never acknowledged as durable) and is cut off
//! on open; a damaged record anywhere else is corruption and opening fails without changing
//! anything.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::Duration;

use parking_lot::{Condvar, Mutex, RwLock};
use serde::Serialize;

use crate::error::{Error, Result, StorageError};

/// Log sequence number: the position of a record in the journal. 0 means "none".
pub type Lsn = u64;

/// The component a record belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum Tag {
    /// Pool Manager.
    Pool = 1,
    /// DAG Tracker.
    Dag = 2,
    /// Artifact Store.
    Artifacts = 3,
    /// Arbitration Engine.
    Arbitration = 4,
    /// Stale Manager.
    Stale = 5,
}

impl Tag {
    /// Every tag, in replay order of snapshots.
    pub const ALL: [Tag; 5] = [
        Tag::Pool,
        Tag::Dag,
        Tag::Artifacts,
        Tag::Arbitration,
        Tag::Stale,
    ];

    /// The tag for a byte read from disk.
    pub fn from_u8(b: u8) -> Option<Tag> {
        Tag::ALL.into_iter().find(|t| *t as u8 == b)
    }
}

const SEGMENT_MAGIC: &[u8; 8] = b"PITJRNL1";
const SEGMENT_HEADER: usize = 16;
const RECORD_HEADER: usize = 17;
/// Past this many bytes the current segment is closed and a new one started.
const SEGMENT_MAX: u64 = 64 << 20;
/// Past this many buffered bytes an append wakes the flusher early.
const BUFFER_HIGH: usize = 4 << 20;
/// A record larger than this is refused (and on disk, taken as corruption).
pub const RECORD_MAX: usize = 256 << 20;

/// Tuning of a persistent journal.
#[derive(Debug, Clone)]
pub struct JournalOptions {
    /// How often the flusher hands buffered records to the OS.
    pub flush_interval: Duration,
    /// After this many bytes of journal since the last checkpoint, the flusher asks for one.
    pub checkpoint_bytes: u64,
}

impl Default for JournalOptions {
    fn default() -> Self {
        Self {
            flush_interval: Duration::from_millis(2),
            checkpoint_bytes: 128 << 20,
        }
    }
}

/// A hook run before every `fdatasync` of the journal, so that data a record points at (artifact
/// segment files) is durable no later than the record.
pub type PreSyncHook = Box<dyn Fn() -> Result<(), StorageError> + Send + Sync>;

/// Handle to the journal; cheap to clone. An in-memory journal records nothing, but it too
/// refuses appends once closed.
#[derive(Clone, Default)]
pub struct Journal {
    inner: Option<Arc<Inner>>,
    /// Set by [`Journal::close`] (in memory and on disk alike); see [`Journal::check_open`].
    closed: Arc<AtomicBool>,
    /// A journal of a Pit opened read-only ([`Journal::open_read_only`]): it has no `inner`, and
    /// every append is refused with `ReadOnlyError`.
    read_only: bool,
}

impl std::fmt::Debug for Journal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.inner {
            None if self.read_only => f.write_str("Journal(read-only)"),
            None => f.write_str("Journal(in-memory)"),
            Some(i) => write!(f, "Journal({})", i.dir.display()),
        }
    }
}

struct Buf {
    bytes: Vec<u8>,
    next_lsn: Lsn,
    /// Appends are refused: the journal was closed, or it failed (then `failed` is set too).
    /// One flag, so that the append hot path tests a single byte.
    closed: bool,
    /// Mirror of `Io::failed` that appenders can see without the I/O lock: once a write or sync
    /// failed, every later append is refused (nothing it would log could reach the disk).
    failed: bool,
}

struct Io {
    file: File,
    path: PathBuf,
    size: u64,
    since_checkpoint: u64,
    spare: Vec<u8>,
    failed: Option<String>,
}

struct Inner {
    dir: PathBuf,
    buf: Mutex<Buf>,
    io: Mutex<Io>,
    durable: AtomicU64,
    written: AtomicU64,
    pre_sync: RwLock<Vec<PreSyncHook>>,
    checkpoint_hook: Mutex<Option<Box<dyn Fn() + Send + Sync>>>,
    checkpoint_running: AtomicBool,
    wake: Condvar,
    wake_lock: Mutex<bool>,
    flusher: Mutex<Option<JoinHandle<()>>>,
    options: JournalOptions,
}

/// A record read back on open.
#[derive(Debug)]
pub struct Record {
    /// Its position.
    pub lsn: Lsn,
    /// Its component.
    pub tag: Tag,
    /// The component's encoded mutation.
    pub payload: Vec<u8>,
}

fn io_err(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> StorageError {
    let context = context.into();
    move |e| StorageError::io(context, e)
}

fn segment_path(dir: &Path, first: Lsn) -> PathBuf {
    dir.join(format!("{first:020}.log"))
}

/// Make a new directory entry durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), StorageError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(format!("syncing directory {}", dir.display())))
}

impl Journal {
    /// A journal that records nothing (for [`crate::Pit::in_memory`]).
    pub fn in_memory() -> Self {
        Self::default()
    }

    /// `PitClosedError` once [`Journal::close`] was called. For mutations that append nothing
    /// (runtime state, or records skipped in memory); appends check it themselves.
    /// For a journal opened read-only: `ReadOnlyError` (checked after "closed").
    #[inline]
    pub fn check_open(&self) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            return Err(StorageError::Closed.into());
        }
        if self.read_only {
            return Err(StorageError::read_only("writing to the journal").into());
        }
        Ok(())
    }

    /// Whether the journal was opened read-only (every append is refused).
    pub fn is_read_only(&self) -> bool {
        self.read_only
    }

    /// Whether records go to disk.
    pub fn is_persistent(&self) -> bool {
        self.inner.is_some()
    }

    /// Read every record in `dir` and open the journal for appending after them, with no check
    /// against a snapshot (tests of the journal and of single components).
    #[cfg(test)]
    pub(crate) fn open(dir: &Path, options: JournalOptions) -> Result<(Self, Vec<Record>)> {
        Self::open_checked(dir, options, None)
    }

    /// Read every record in `dir` (creating nothing but a new segment to append to) and open the
    /// journal for appending after them. Returns the journal and the records in LSN order.
    ///
    /// First checks the journal against the snapshot at `snapshot.1`, which
    /// covers records up to `snapshot.0` (`None`: there is no snapshot). Without a snapshot the
    /// journal must start at LSN 1; with one, it must reach the LSN the snapshot covers. Either
    /// failure is `DataDirCorruptError` and nothing is changed.
    pub(crate) fn open_checked(
        dir: &Path,
        options: JournalOptions,
        snapshot: Option<(Option<Lsn>, &Path)>,
    ) -> Result<(Self, Vec<Record>)> {
        let existed = dir.is_dir();
        let mut segments = if existed {
            list_segments(dir)?
        } else {
            Vec::new()
        };
        let (records, torn, next_lsn) = read_all(&segments, true)?;
        check_against_snapshot(dir, &segments, next_lsn, snapshot)?;
        if !existed {
            fs::create_dir_all(dir).map_err(io_err(format!("creating {}", dir.display())))?;
        }
        for (path, len) in torn {
            {
                // A torn tail: cut off the partial record so appends continue from a clean end.
                let f = OpenOptions::new()
                    .write(true)
                    .open(path)
                    .map_err(io_err(format!("opening {}", path.display())))?;
                f.set_len(len).map_err(io_err(format!(
                    "truncating torn tail of {}",
                    path.display()
                )))?;
                f.sync_all()
                    .map_err(io_err(format!("syncing {}", path.display())))?;
            }
        }
        // Appends always go to a new segment: an old segment is never written again.
        let path = segment_path(dir, next_lsn);
        let file = if segments.last().is_some_and(|s| s.0 == next_lsn) {
            // The newest segment is empty (no records after its header): reuse it.
            OpenOptions::new().append(true).open(&path)
        } else {
            create_segment(&path, next_lsn)
        }
        .map_err(io_err(format!(
            "opening journal segment {}",
            path.display()
        )))?;
        sync_dir(dir)?;
        if !segments.iter().any(|s| s.0 == next_lsn) {
            segments.push((next_lsn, path.clone()));
        }
        let size = file
            .metadata()
            .map_err(io_err("reading journal size"))?
            .len();
        let inner = Arc::new(Inner {
            dir: dir.to_path_buf(),
            buf: Mutex::new(Buf {
                bytes: Vec::with_capacity(64 << 10),
                next_lsn,
                closed: false,
                failed: false,
            }),
            io: Mutex::new(Io {
                file,
                path,
                size,
                since_checkpoint: 0,
                spare: Vec::with_capacity(64 << 10),
                failed: None,
            }),
            durable: AtomicU64::new(next_lsn - 1),
            written: AtomicU64::new(next_lsn - 1),
            pre_sync: RwLock::new(Vec::new()),
            checkpoint_hook: Mutex::new(None),
            checkpoint_running: AtomicBool::new(false),
            wake: Condvar::new(),
            wake_lock: Mutex::new(false),
            flusher: Mutex::new(None),
            options,
        });
        let weak = Arc::downgrade(&inner);
        let interval = inner.options.flush_interval;
        let handle = std::thread::Builder::new()
            .name("pit-journal-flusher".into())
            .spawn(move || flusher_loop(&weak, interval))
            .map_err(io_err("starting the journal flusher thread"))?;
        *inner.flusher.lock() = Some(handle);
        Ok((
            Self {
                inner: Some(inner),
                closed: Arc::default(),
                read_only: false,
            },
            records,
        ))
    }

    /// Read every record in `dir` for a Pit opened read-only, checked against the snapshot like
    /// [`Journal::open_checked`], without writing anything: a torn tail (or a newest segment whose
    /// header never reached the disk) is skipped in memory, not cut off or repaired, no segment is
    /// created and no flusher started. Files are only opened for reading. The journal returned
    /// refuses every append with `ReadOnlyError`.
    pub(crate) fn open_read_only(
        dir: &Path,
        snapshot: Option<(Option<Lsn>, &Path)>,
    ) -> Result<(Self, Vec<Record>)> {
        let segments = if dir.is_dir() {
            list_segments(dir)?
        } else {
            Vec::new()
        };
        let (records, _torn, next_lsn) = read_all(&segments, false)?;
        check_against_snapshot(dir, &segments, next_lsn, snapshot)?;
        Ok((
            Self {
                inner: None,
                closed: Arc::default(),
                read_only: true,
            },
            records,
        ))
    }

    /// Append a record serialized with postcard. Acknowledged in memory; see [`Journal::sync`].
    ///
    /// Call it while holding the lock that guards the state the record changes, so that the
    /// journal's order is the order of the changes and snapshots see a consistent LSN.
    #[inline]
    pub fn append<T: Serialize + ?Sized>(&self, tag: Tag, record: &T) -> Result<Lsn> {
        let Some(inner) = &self.inner else {
            // In memory, or read-only (refused by check_open): off the persistent hot path.
            return self.check_open().map(|()| 0);
        };
        let mut b = inner.buf.lock();
        if b.closed {
            return Err(refusal(&b));
        }
        let start = b.bytes.len();
        b.bytes.extend_from_slice(&[0u8; RECORD_HEADER]);
        let bytes = std::mem::take(&mut b.bytes);
        let bytes = match postcard::to_extend(record, bytes) {
            Ok(v) => v,
            Err(e) => return Err(Error::Internal(format!("encoding a journal record: {e}"))),
        };
        b.bytes = bytes;
        Ok(Self::seal(inner, &mut b, start, tag))
    }

    /// Append a record whose payload is already encoded.
    pub fn append_raw(&self, tag: Tag, payload: &[u8]) -> Result<Lsn> {
        let Some(inner) = &self.inner else {
            return self.check_open().map(|()| 0);
        };
        if payload.len() > RECORD_MAX {
            return Err(Error::Internal(format!(
                "journal record of {} bytes exceeds the {RECORD_MAX}-byte maximum",
                payload.len()
            )));
        }
        let mut b = inner.buf.lock();
        if b.closed {
            return Err(refusal(&b));
        }
        let start = b.bytes.len();
        b.bytes.extend_from_slice(&[0u8; RECORD_HEADER]);
        b.bytes.extend_from_slice(payload);
        Ok(Self::seal(inner, &mut b, start, tag))
    }

    #[inline]
    fn seal(inner: &Inner, b: &mut Buf, start: usize, tag: Tag) -> Lsn {
        let lsn = b.next_lsn;
        b.next_lsn += 1;
        let len = (b.bytes.len() - start - RECORD_HEADER) as u32;
        let rec = &mut b.bytes[start..];
        rec[8..16].copy_from_slice(&lsn.to_le_bytes());
        rec[16] = tag as u8;
        let crc = crc32fast::hash(&rec[8..]);
        rec[0..4].copy_from_slice(&len.to_le_bytes());
        rec[4..8].copy_from_slice(&crc.to_le_bytes());
        if b.bytes.len() > BUFFER_HIGH {
            inner.wake.notify_one();
        }
        lsn
    }

    /// The LSN of the newest record appended so far (0 for none, and always 0 in memory).
    ///
    /// A component's snapshot calls this while holding its state lock: every record of that
    /// component at or below the returned LSN is reflected in the snapshot, none above it.
    pub fn last_lsn(&self) -> Lsn {
        self.inner.as_ref().map_or(0, |i| i.buf.lock().next_lsn - 1)
    }

    /// The newest LSN known to be on disk.
    pub fn durable_lsn(&self) -> Lsn {
        self.inner
            .as_ref()
            .map_or(0, |i| i.durable.load(Ordering::Acquire))
    }

    /// Make every record up to `lsn` durable (group commit). A no-op in memory.
    pub fn sync(&self, lsn: Lsn) -> Result<()> {
        let Some(inner) = &self.inner else {
            return Ok(());
        };
        if inner.durable.load(Ordering::Acquire) >= lsn {
            return Ok(());
        }
        let mut io = inner.io.lock();
        if inner.durable.load(Ordering::Acquire) >= lsn {
            return Ok(());
        }
        inner.flush_locked(&mut io, true).map(drop)
    }

    /// Make everything appended so far durable.
    pub fn sync_all(&self) -> Result<()> {
        self.sync(self.last_lsn())
    }

    /// Hand everything buffered to the OS without waiting for the disk.
    pub fn flush(&self) -> Result<()> {
        let Some(inner) = &self.inner else {
            return Ok(());
        };
        let mut io = inner.io.lock();
        inner.flush_locked(&mut io, false).map(drop)
    }

    /// Register a hook run before each journal `fdatasync`.
    pub fn add_pre_sync_hook(&self, hook: PreSyncHook) {
        if let Some(inner) = &self.inner {
            inner.pre_sync.write().push(hook);
        }
    }

    /// Register what the flusher calls when the journal has grown by `checkpoint_bytes`.
    pub(crate) fn set_checkpoint_hook(&self, hook: Box<dyn Fn() + Send + Sync>) {
        if let Some(inner) = &self.inner {
            *inner.checkpoint_hook.lock() = Some(hook);
        }
    }

    /// Flush, sync and start a new segment. Returns the first LSN of the new segment: every record
    /// below it is in older segments.
    pub(crate) fn rotate(&self) -> Result<Lsn> {
        let Some(inner) = &self.inner else {
            return Ok(0);
        };
        let mut io = inner.io.lock();
        // The new segment starts right after the last record written here, read in the same
        // critical section that took the buffer: records appended meanwhile (appends take only
        // the buffer lock) stay buffered and go to the new segment, whose name must be theirs.
        let first = inner.flush_locked(&mut io, true)? + 1;
        inner.start_segment(&mut io, first)?;
        io.since_checkpoint = 0;
        Ok(first)
    }

    /// Delete segments whose every record is at or below `upto` (covered by a durable snapshot).
    pub(crate) fn remove_segments_through(&self, upto: Lsn) -> Result<()> {
        let Some(inner) = &self.inner else {
            return Ok(());
        };
        let io = inner.io.lock();
        let segments = list_segments(&inner.dir)?;
        for pair in segments.windows(2) {
            let (_, path) = &pair[0];
            let next_first = pair[1].0;
            if next_first.saturating_sub(1) <= upto && *path != io.path {
                fs::remove_file(path).map_err(io_err(format!("removing {}", path.display())))?;
            }
        }
        Ok(())
    }

    /// Flush and sync everything, stop the flusher; later appends fail with `PitClosedError`.
    pub(crate) fn close(&self) -> Result<()> {
        self.closed.store(true, Ordering::Release);
        let Some(inner) = &self.inner else {
            return Ok(());
        };
        let result = {
            let mut io = inner.io.lock();
            // Refuse appends first, then write what is buffered: an append racing close() is
            // either refused or written, never acknowledged and dropped.
            inner.buf.lock().closed = true;
            inner.flush_locked(&mut io, true).map(drop)
        };
        *inner.wake_lock.lock() = true;
        inner.wake.notify_all();
        if let Some(h) = inner.flusher.lock().take() {
            if h.thread().id() != std::thread::current().id() {
                let _ = h.join();
            }
        }
        result
    }
}

/// Appended to the message of the failure that stops the journal.
const FAILED: &str = " (the journal now refuses every write: changes not yet durable, this \
                      one included, are not on disk and will be gone after reopening)";

/// The error for an append refused by a closed or failed journal.
#[cold]
fn refusal(b: &Buf) -> Error {
    if b.failed {
        StorageError::io(
            "the journal failed earlier and refuses further writes",
            std::io::Error::other("a journal write or sync failed; reopen the Pit"),
        )
        .into()
    } else {
        StorageError::Closed.into()
    }
}

impl Inner {
    /// Make the journal refuse every later write and append (sticky: what was buffered when a
    /// write or sync failed can no longer be ordered safely behind it).
    #[cold]
    fn fail(&self, io: &mut Io, msg: String) {
        io.failed = Some(msg);
        let mut b = self.buf.lock();
        b.failed = true;
        b.closed = true;
    }

    /// Write what is buffered (and `fdatasync` when `sync`). Returns the LSN of the newest
    /// record now written: the buffer was taken and that LSN read in one critical section.
    fn flush_locked(&self, io: &mut Io, sync: bool) -> Result<Lsn> {
        if let Some(msg) = &io.failed {
            return Err(StorageError::io(
                "the journal failed earlier and refuses further writes",
                std::io::Error::other(msg.clone()),
            )
            .into());
        }
        let last = {
            let mut b = self.buf.lock();
            std::mem::swap(&mut b.bytes, &mut io.spare);
            b.next_lsn - 1
        };
        if !io.spare.is_empty() {
            let n = io.spare.len() as u64;
            if let Err(e) = io.file.write_all(&io.spare) {
                // What was handed to us can no longer be ordered safely behind a partial write.
                self.fail(io, e.to_string());
                return Err(
                    StorageError::io(format!("writing {}{FAILED}", io.path.display()), e).into(),
                );
            }
            io.spare.clear();
            io.size += n;
            io.since_checkpoint += n;
            self.written.store(last, Ordering::Release);
        }
        if sync {
            for hook in self.pre_sync.read().iter() {
                if let Err(e) = hook() {
                    self.fail(io, e.to_string());
                    return Err(e.into());
                }
            }
            if let Err(e) = io.file.sync_data() {
                self.fail(io, e.to_string());
                return Err(
                    StorageError::io(format!("syncing {}{FAILED}", io.path.display()), e).into(),
                );
            }
            self.durable.fetch_max(last, Ordering::AcqRel);
        }
        if io.size >= SEGMENT_MAX {
            if !sync {
                // The old segment's records become durable here, so what they point at (artifact
                // segments) must be too: a durable put racing a rotation would otherwise find its
                // LSN already durable and return before its blob bytes are synced.
                for hook in self.pre_sync.read().iter() {
                    if let Err(e) = hook() {
                        self.fail(io, e.to_string());
                        return Err(e.into());
                    }
                }
                if let Err(e) = io.file.sync_data() {
                    self.fail(io, e.to_string());
                    return Err(StorageError::io(
                        format!("syncing {}{FAILED}", io.path.display()),
                        e,
                    )
                    .into());
                }
                self.durable.fetch_max(last, Ordering::AcqRel);
            }
            self.start_segment(io, last + 1)?;
        }
        Ok(last)
    }

    fn start_segment(&self, io: &mut Io, first: Lsn) -> Result<()> {
        let path = segment_path(&self.dir, first);
        if path == io.path {
            return Ok(());
        }
        let file = create_segment(&path, first).map_err(io_err(format!(
            "creating journal segment {}",
            path.display()
        )))?;
        sync_dir(&self.dir)?;
        io.file = file;
        io.path = path;
        io.size = SEGMENT_HEADER as u64;
        Ok(())
    }
}

fn flusher_loop(weak: &Weak<Inner>, interval: Duration) {
    loop {
        let Some(inner) = weak.upgrade() else { return };
        {
            let mut stop = inner.wake_lock.lock();
            if *stop {
                return;
            }
            inner.wake.wait_for(&mut stop, interval);
            if *stop {
                return;
            }
        }
        let want_checkpoint = {
            let mut io = inner.io.lock();
            // A failed flush is sticky in `io.failed` and reported to the next caller that syncs.
            let _ = inner.flush_locked(&mut io, false);
            io.since_checkpoint >= inner.options.checkpoint_bytes
        };
        if want_checkpoint && !inner.checkpoint_running.swap(true, Ordering::AcqRel) {
            if let Some(hook) = inner.checkpoint_hook.lock().as_ref() {
                hook();
            }
            inner.checkpoint_running.store(false, Ordering::Release);
        }
    }
}

/// The journal against the snapshot (see [`Journal::open_checked`]).
fn check_against_snapshot(
    dir: &Path,
    segments: &[(Lsn, PathBuf)],
    next_lsn: Lsn,
    snapshot: Option<(Option<Lsn>, &Path)>,
) -> Result<()> {
    match snapshot {
        Some((None, snap)) => {
            if let Some(&(first, _)) = segments.first().filter(|s| s.0 > 1) {
                return Err(corrupt(
                    snap,
                    format!(
                        "the snapshot is missing, but the journal starts at LSN {first} \
                         (the records before it were covered by a snapshot)"
                    ),
                ));
            }
        }
        Some((Some(covered), snap)) if next_lsn - 1 < covered => {
            return Err(corrupt(
                dir,
                format!(
                    "journal segments are missing: the journal ends at LSN {} but {} covers \
                     records up to LSN {covered}",
                    next_lsn - 1,
                    snap.display()
                ),
            ));
        }
        _ => {}
    }
    Ok(())
}

fn create_segment(path: &Path, first: Lsn) -> std::io::Result<File> {
    let mut f = OpenOptions::new()
        .create_new(true)
        .append(true)
        .open(path)?;
    let mut header = [0u8; SEGMENT_HEADER];
    header[..8].copy_from_slice(SEGMENT_MAGIC);
    header[8..].copy_from_slice(&first.to_le_bytes());
    f.write_all(&header)?;
    f.sync_data()?;
    Ok(f)
}

fn list_segments(dir: &Path) -> Result<Vec<(Lsn, PathBuf)>> {
    let mut out = Vec::new();
    let rd = fs::read_dir(dir).map_err(io_err(format!("listing {}", dir.display())))?;
    for entry in rd {
        let entry = entry.map_err(io_err(format!("listing {}", dir.display())))?;
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let Some(stem) = name.strip_suffix(".log") else {
            return Err(StorageError::Corrupt {
                path: path.display().to_string(),
                reason: "unexpected file in the journal directory".into(),
            }
            .into());
        };
        let first: Lsn = stem.parse().map_err(|_| StorageError::Corrupt {
            path: path.display().to_string(),
            reason: "journal segment name is not an LSN".into(),
        })?;
        out.push((first, path));
    }
    out.sort();
    Ok(out)
}

fn corrupt(path: &Path, reason: impl Into<String>) -> Error {
    StorageError::Corrupt {
        path: path.display().to_string(),
        reason: reason.into(),
    }
    .into()
}

/// Read every segment's records in order. Returns the records, the torn tails to cut off
/// (`(path, valid length)`) and the next LSN. `repair`: rewrite a newest segment's missing header
/// (false for a read-only open, which writes nothing).
#[allow(clippy::type_complexity)]
fn read_all(
    segments: &[(Lsn, PathBuf)],
    repair: bool,
) -> Result<(Vec<Record>, Vec<(&PathBuf, u64)>, Lsn)> {
    let mut records = Vec::new();
    let mut expect: Option<Lsn> = None;
    let n = segments.len();
    let mut torn = Vec::new();
    for (i, (first, path)) in segments.iter().enumerate() {
        let last_segment = i + 1 == n;
        let valid_len = read_segment(
            path,
            *first,
            last_segment,
            repair,
            &mut expect,
            &mut records,
        )?;
        if let Some(len) = valid_len {
            torn.push((path, len));
        }
    }
    let next_lsn = records
        .last()
        .map_or_else(|| segments.last().map_or(1, |s| s.0), |r| r.lsn + 1);
    Ok((records, torn, next_lsn))
}

/// Read one segment's records into `out`. Returns `Some(valid_len)` when the segment ends in a
/// torn record that must be cut off (only allowed for the newest segment).
fn read_segment(
    path: &Path,
    first: Lsn,
    last_segment: bool,
    repair: bool,
    expect: &mut Option<Lsn>,
    out: &mut Vec<Record>,
) -> Result<Option<u64>> {
    let mut data = Vec::new();
    File::open(path)
        .and_then(|mut f| f.read_to_end(&mut data))
        .map_err(io_err(format!("reading {}", path.display())))?;
    if data.len() < SEGMENT_HEADER {
        if last_segment && SEGMENT_MAGIC.starts_with(&data[..data.len().min(8)]) {
            // Created, but the crash came before its header reached the disk: rewrite the header
            // (read-only: take it as empty and leave it).
            if repair {
                rewrite_segment_header(path, first)?;
            }
            *expect = Some(first);
            return Ok(None);
        }
        return Err(corrupt(path, "journal segment shorter than its header"));
    }
    if &data[..8] != SEGMENT_MAGIC {
        return Err(corrupt(path, "journal segment has a foreign header"));
    }
    let header_first = Lsn::from_le_bytes(data[8..16].try_into().expect("8 bytes"));
    if header_first != first {
        return Err(corrupt(
            path,
            format!("segment header says LSN {header_first}, name says {first}"),
        ));
    }
    if let Some(e) = *expect {
        if e != first {
            return Err(corrupt(
                path,
                format!("journal gap: expected LSN {e}, segment starts at {first}"),
            ));
        }
    }
    let mut pos = SEGMENT_HEADER;
    let mut next = first;
    while pos < data.len() {
        match parse_record(&data[pos..], next) {
            Ok((rec, used)) => {
                out.push(rec);
                pos += used;
                next += 1;
            }
            Err(reason) => {
                // A torn tail has no valid record after it; anything else is corruption.
                if last_segment && !has_valid_record_after(&data[pos..], next) {
                    *expect = Some(next);
                    return Ok(Some(pos as u64));
                }
                return Err(corrupt(path, format!("record at byte {pos}: {reason}")));
            }
        }
    }
    *expect = Some(next);
    Ok(None)
}

fn rewrite_segment_header(path: &Path, first: Lsn) -> Result<()> {
    let mut f = OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(path)
        .map_err(io_err(format!("repairing {}", path.display())))?;
    let mut header = [0u8; SEGMENT_HEADER];
    header[..8].copy_from_slice(SEGMENT_MAGIC);
    header[8..].copy_from_slice(&first.to_le_bytes());
    f.write_all(&header)
        .and_then(|()| f.sync_all())
        .map_err(io_err(format!("repairing {}", path.display())))?;
    Ok(())
}

fn parse_record(buf: &[u8], expect_lsn: Lsn) -> std::result::Result<(Record, usize), String> {
    if buf.len() < RECORD_HEADER {
        return Err("truncated record header".into());
    }
    let len = u32::from_le_bytes(buf[0..4].try_into().expect("4 bytes")) as usize;
    let crc = u32::from_le_bytes(buf[4..8].try_into().expect("4 bytes"));
    if len > RECORD_MAX {
        return Err(format!("record length {len} exceeds the maximum"));
    }
    if buf.len() < RECORD_HEADER + len {
        return Err("truncated record".into());
    }
    let body = &buf[8..RECORD_HEADER + len];
    if crc32fast::hash(body) != crc {
        return Err("checksum mismatch".into());
    }
    let lsn = Lsn::from_le_bytes(buf[8..16].try_into().expect("8 bytes"));
    if lsn != expect_lsn {
        return Err(format!("expected LSN {expect_lsn}, found {lsn}"));
    }
    let tag = Tag::from_u8(buf[16]).ok_or_else(|| format!("unknown component tag {}", buf[16]))?;
    Ok((
        Record {
            lsn,
            tag,
            payload: buf[RECORD_HEADER..RECORD_HEADER + len].to_vec(),
        },
        RECORD_HEADER + len,
    ))
}

/// Whether a well-formed record with a later LSN starts anywhere in `rest` (a sign that the damage
/// is not a torn tail).
fn has_valid_record_after(rest: &[u8], from_lsn: Lsn) -> bool {
    (1..rest.len()).any(|off| {
        let tail = &rest[off..];
        if tail.len() < RECORD_HEADER {
            return false;
        }
        let lsn = Lsn::from_le_bytes(tail[8..16].try_into().expect("8 bytes"));
        lsn > from_lsn && lsn < from_lsn + (1 << 32) && parse_record(tail, lsn).is_ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(dir: &Path) -> (Journal, Vec<Record>) {
        Journal::open(dir, JournalOptions::default()).unwrap()
    }

    #[test]
    fn records_survive_reopen_in_order() {
        let d = tempfile::tempdir().unwrap();
        let (j, recs) = open(d.path());
        assert!(recs.is_empty());
        for i in 0..100u32 {
            assert_eq!(j.append(Tag::Dag, &i).unwrap(), u64::from(i) + 1);
        }
        j.sync_all().unwrap();
        j.close().unwrap();
        let (j2, recs) = open(d.path());
        assert_eq!(recs.len(), 100);
        for (i, r) in recs.iter().enumerate() {
            assert_eq!(r.lsn, i as u64 + 1);
            assert_eq!(r.tag, Tag::Dag);
            assert_eq!(postcard::from_bytes::<u32>(&r.payload).unwrap(), i as u32);
        }
        assert_eq!(j2.append(Tag::Pool, &7u8).unwrap(), 101);
        j2.close().unwrap();
    }

    #[test]
    fn torn_tail_is_cut_and_appends_continue() {
        let d = tempfile::tempdir().unwrap();
        let (j, _) = open(d.path());
        for i in 0..10u64 {
            j.append(Tag::Pool, &i).unwrap();
        }
        j.close().unwrap();
        let seg = list_segments(d.path()).unwrap().pop().unwrap().1;
        let len = fs::metadata(&seg).unwrap().len();
        // Tear the last record in half.
        OpenOptions::new()
            .write(true)
            .open(&seg)
            .unwrap()
            .set_len(len - 3)
            .unwrap();
        let (j, recs) = open(d.path());
        assert_eq!(recs.len(), 9);
        assert_eq!(j.append(Tag::Pool, &1u8).unwrap(), 10);
        j.close().unwrap();
        let (_, recs) = open(d.path());
        assert_eq!(recs.len(), 10);
    }

    #[test]
    fn damage_before_valid_records_is_corruption_and_nothing_changes() {
        let d = tempfile::tempdir().unwrap();
        let (j, _) = open(d.path());
        for i in 0..10u64 {
            j.append(Tag::Pool, &i).unwrap();
        }
        j.close().unwrap();
        let seg = list_segments(d.path()).unwrap().pop().unwrap().1;
        let mut bytes = fs::read(&seg).unwrap();
        bytes[SEGMENT_HEADER + RECORD_HEADER] ^= 0xff;
        fs::write(&seg, &bytes).unwrap();
        let before = fs::read(&seg).unwrap();
        let err = Journal::open(d.path(), JournalOptions::default()).unwrap_err();
        assert!(
            matches!(err, Error::Storage(StorageError::Corrupt { .. })),
            "{err}"
        );
        assert_eq!(fs::read(&seg).unwrap(), before);
    }

    #[test]
    fn rotation_and_removal_keep_later_records() {
        let d = tempfile::tempdir().unwrap();
        let (j, _) = open(d.path());
        for i in 0..5u64 {
            j.append(Tag::Dag, &i).unwrap();
        }
        let first = j.rotate().unwrap();
        assert_eq!(first, 6);
        for i in 5..8u64 {
            j.append(Tag::Dag, &i).unwrap();
        }
        j.remove_segments_through(5).unwrap();
        j.close().unwrap();
        let (_, recs) = open(d.path());
        assert_eq!(
            recs.iter().map(|r| r.lsn).collect::<Vec<_>>(),
            vec![6, 7, 8]
        );
    }

    #[test]
    fn concurrent_syncs_group_commit() {
        let d = tempfile::tempdir().unwrap();
        let (j, _) = open(d.path());
        std::thread::scope(|s| {
            for t in 0..8u64 {
                let j = j.clone();
                s.spawn(move || {
                    for i in 0..50u64 {
                        let lsn = j.append(Tag::Artifacts, &(t, i)).unwrap();
                        j.sync(lsn).unwrap();
                        assert!(j.durable_lsn() >= lsn);
                    }
                });
            }
        });
        j.close().unwrap();
        let (_, recs) = open(d.path());
        assert_eq!(recs.len(), 400);
    }

    #[test]
    fn rotation_racing_appenders_names_segments_by_their_first_record() {
        const PER_THREAD: u64 = 200_000;
        // Bug: rotate() read next_lsn after the flush released the buffer lock, so records
        // appended in between went into a segment named after a later LSN (unreadable on open).
        let d = tempfile::tempdir().unwrap();
        let (j, _) = open(d.path());
        let done = AtomicU64::new(0);
        let mut rotations = 0;
        std::thread::scope(|s| {
            for t in 0..2u64 {
                let (j, done) = (j.clone(), &done);
                s.spawn(move || {
                    for i in 0..PER_THREAD {
                        j.append(Tag::Dag, &(t, i)).unwrap();
                    }
                    done.fetch_add(1, Ordering::Release);
                });
            }
            while done.load(Ordering::Acquire) < 2 || rotations == 0 {
                // What counts is read back below: every segment must start at the LSN it is
                // named after. (Comparing `first` with the written count here would race the
                // flusher, which may already be writing the new segment.)
                j.rotate().unwrap();
                rotations += 1;
            }
        });
        assert!(rotations > 0);
        j.close().unwrap();
        let (j2, recs) = open(d.path());
        assert_eq!(recs.len() as u64, 2 * PER_THREAD);
        for (i, r) in recs.iter().enumerate() {
            assert_eq!(r.lsn, i as u64 + 1);
        }
        j2.close().unwrap();
    }

    #[test]
    fn close_racing_appenders_loses_no_acknowledged_record() {
        // Bug: close() flushed, then marked the buffer closed in a second critical section;
        // appends in between were acknowledged and never written.
        for _ in 0..20 {
            let d = tempfile::tempdir().unwrap();
            let (j, _) = open(d.path());
            let acked = AtomicU64::new(0);
            std::thread::scope(|s| {
                for t in 0..2u64 {
                    let (j, acked) = (j.clone(), &acked);
                    s.spawn(move || {
                        for i in 0.. {
                            if j.append(Tag::Pool, &(t, i)).is_err() {
                                break;
                            }
                            acked.fetch_add(1, Ordering::Relaxed);
                        }
                    });
                }
                while acked.load(Ordering::Relaxed) < 1000 {
                    std::thread::yield_now();
                }
                j.close().unwrap();
            });
            let (j2, recs) = open(d.path());
            assert_eq!(recs.len() as u64, acked.load(Ordering::Relaxed));
            j2.close().unwrap();
        }
    }

    #[test]
    fn a_failed_write_makes_every_later_append_fail() {
        let d = tempfile::tempdir().unwrap();
        let (j, _) = open(d.path());
        j.append(Tag::Pool, &1u8).unwrap();
        j.sync_all().unwrap();
        {
            // A real write failure: swap the segment handle for a read-only one.
            let inner = j.inner.as_ref().unwrap();
            let mut io = inner.io.lock();
            io.file = File::open(&io.path).unwrap();
        }
        let lsn = j.append(Tag::Pool, &2u8).unwrap();
        assert!(j.sync(lsn).is_err());
        let err = j.append(Tag::Pool, &3u8).unwrap_err();
        assert!(err.to_string().contains("failed earlier"), "{err}");
        assert!(j.append_raw(Tag::Pool, b"x").is_err());
        assert!(j.sync_all().is_err());
        assert!(j.close().is_err());
        let (_, recs) = open(d.path());
        assert_eq!(recs.len(), 1);
    }

    #[test]
    fn in_memory_journal_records_nothing() {
        let j = Journal::in_memory();
        assert_eq!(j.append(Tag::Pool, &1u8).unwrap(), 0);
        j.sync_all().unwrap();
        assert!(!j.is_persistent());
    }
}
