//! The audit trail's file, `data_dir/artifacts/audit.log`: the trail's records in sequence order,
//! each `u32 LE length | postcard(AuditEntry)`.
//!
//! Only the newest records are kept in memory (at most [`FLUSH_EVERY`] of them between
//! checkpoints); the rest are read back from the file when asked for, so a long-lived store does
//! not hold its whole history in memory, nor write it into every snapshot. The snapshot records a
//! [`Mark`] — how many records and bytes of the file it covers, and the last one's hash:
//!
//! * bytes up to the mark are committed: a checkpoint wrote and synced them before the snapshot;
//! * bytes after it are records that are also in the journal (written early to bound memory, or
//!   by a checkpoint that never committed): reopening replays those from the journal, and the next
//!   write cuts the file back to the mark first;
//! * a file shorter than the mark has lost committed records, and opening refuses it
//!   (`DataDirCorruptError`); a record changed in place breaks the hash chain, which `verify()`
//!   follows to the mark's hash.

use std::fs::{File, OpenOptions};
use std::io::{BufReader, ErrorKind as IoKind, Read};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::{ArtifactError, AuditEntry, Hash};
use crate::error::{Result, StorageError};

/// The file's name in the store's directory.
pub const FILE: &str = "audit.log";
/// Records kept in memory before they are written to the file.
pub const FLUSH_EVERY: usize = 4096;
/// No record comes near this (actors are ≤ 1 KiB; details are short); a larger length prefix is
/// damage, and is not allocated.
const RECORD_MAX: usize = 16 << 20;

/// How much of the trail is in the file.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mark {
    /// Records.
    pub count: u64,
    /// Bytes.
    pub bytes: u64,
    /// The hash of the last of them (zero when there is none).
    pub tail: Hash,
}

/// Sync work taken out of the lock: the file, and the directory when the file was created.
pub type SyncSet = (Arc<File>, Option<PathBuf>);

/// The writer (only ever used under the store's state lock).
#[derive(Debug, Default)]
#[allow(clippy::struct_excessive_bools)] // independent flags, not a state machine
pub struct AuditLog {
    /// The store's directory (`None`: in memory, every record stays in memory).
    dir: Option<PathBuf>,
    file: Option<Arc<File>>,
    /// Whether the file may extend past the mark (true until the first write after opening).
    unchecked: bool,
    /// A read-only store: [`AuditLog::append`] is refused (records stay in memory).
    read_only: bool,
    unsynced: bool,
    created: bool,
}

fn io(context: String) -> impl FnOnce(std::io::Error) -> StorageError {
    move |e| StorageError::io(context, e)
}

impl AuditLog {
    /// The trail of the store in `dir` (`None`: in memory).
    pub fn new(dir: Option<PathBuf>) -> Self {
        Self {
            dir,
            file: None,
            unchecked: true,
            read_only: false,
            unsynced: false,
            created: false,
        }
    }

    /// The trail of a read-only store in `dir`: read, never written.
    pub fn new_read_only(dir: PathBuf) -> Self {
        Self {
            read_only: true,
            ..Self::new(Some(dir))
        }
    }

    /// The store's directory, if the trail has a file.
    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    fn path(dir: &Path) -> PathBuf {
        dir.join(FILE)
    }

    /// Check, when a snapshot is restored, that the file still holds what the snapshot covers.
    pub fn check(&self, mark: &Mark) -> Result<()> {
        let Some(dir) = &self.dir else {
            return Ok(());
        };
        if mark.bytes == 0 {
            return Ok(());
        }
        let path = Self::path(dir);
        let corrupt = |reason: String| StorageError::Corrupt {
            path: path.display().to_string(),
            reason,
        };
        let len = match std::fs::metadata(&path) {
            Ok(m) => m.len(),
            Err(e) if e.kind() == IoKind::NotFound => {
                return Err(corrupt(format!(
                    "the audit trail's file is missing; the snapshot covers {} records ({} bytes) in it",
                    mark.count, mark.bytes
                ))
                .into());
            }
            Err(e) => return Err(StorageError::io(format!("reading {}", path.display()), e).into()),
        };
        if len < mark.bytes {
            return Err(corrupt(format!(
                "the audit trail's file has {len} bytes; the snapshot covers {} records ({} bytes) in it",
                mark.count, mark.bytes
            ))
            .into());
        }
        Ok(())
    }

    /// Write `entries` (the records after `mark`) at the mark, cutting off whatever followed it,
    /// and move the mark past them. On failure the mark is unchanged.
    pub fn append(&mut self, mark: &mut Mark, entries: &[AuditEntry]) -> Result<()> {
        let (Some(dir), Some(last)) = (&self.dir, entries.last()) else {
            return Ok(());
        };
        if self.read_only {
            return Err(StorageError::read_only("writing the audit trail").into());
        }
        let path = Self::path(dir);
        let mut buf = Vec::with_capacity(entries.len() * 96);
        // Encoding into a slice is several times faster than growing a Vec byte by byte; a
        // record too long for it (a long hold reason) takes the slow path.
        let mut scratch = [0u8; 1024];
        let bad =
            |e: postcard::Error| crate::Error::Internal(format!("encoding an audit record: {e}"));
        for e in entries {
            match postcard::to_slice(e, &mut scratch) {
                Ok(used) => {
                    buf.extend_from_slice(&(used.len() as u32).to_le_bytes());
                    buf.extend_from_slice(used);
                }
                Err(postcard::Error::SerializeBufferFull) => {
                    let v = postcard::to_stdvec(e).map_err(bad)?;
                    buf.extend_from_slice(&(v.len() as u32).to_le_bytes());
                    buf.extend_from_slice(&v);
                }
                Err(other) => return Err(bad(other)),
            }
        }
        if self.file.is_none() {
            let existed = path.exists();
            let f = OpenOptions::new()
                .create(true)
                .truncate(false)
                .read(true)
                .write(true)
                .open(&path)
                .map_err(io(format!("opening {}", path.display())))?;
            self.created |= !existed;
            self.file = Some(Arc::new(f));
        }
        let f = self.file.as_ref().expect("opened above");
        if self.unchecked {
            // Records after the mark are also in the journal (see the module's comment).
            f.set_len(mark.bytes)
                .map_err(io(format!("resizing {}", path.display())))?;
            self.unchecked = false;
        }
        f.write_all_at(&buf, mark.bytes)
            .map_err(io(format!("writing {}", path.display())))?;
        self.unsynced = true;
        mark.count += entries.len() as u64;
        mark.bytes += buf.len() as u64;
        mark.tail = last.hash;
        Ok(())
    }

    /// What must be synced before a snapshot covering the current mark is written (sync it
    /// outside the lock; on failure give it back with [`AuditLog::put_back`]).
    pub fn take_unsynced(&mut self) -> Option<SyncSet> {
        if !std::mem::take(&mut self.unsynced) {
            return None;
        }
        let dir = std::mem::take(&mut self.created)
            .then(|| self.dir.clone())
            .flatten();
        self.file.as_ref().map(|f| (Arc::clone(f), dir))
    }

    /// A sync of [`AuditLog::take_unsynced`] failed: the next checkpoint retries it.
    pub fn put_back(&mut self, set: &SyncSet) {
        self.unsynced = true;
        self.created |= set.1.is_some();
    }
}

/// Sync what [`AuditLog::take_unsynced`] gave.
pub fn sync(set: &SyncSet) -> Result<()> {
    set.0
        .sync_data()
        .map_err(io(format!("syncing the audit trail's {FILE}")))?;
    if let Some(d) = &set.1 {
        crate::journal::sync_dir(d)?;
    }
    Ok(())
}

/// Read the first `mark.count` records of the file in `dir`, in order, passing each to `f`.
/// Readers need no lock: the file only grows past any mark they were given.
pub fn read(dir: &Path, mark: &Mark, mut f: impl FnMut(AuditEntry) -> Result<()>) -> Result<()> {
    if mark.count == 0 {
        return Ok(());
    }
    let path = AuditLog::path(dir);
    let file = File::open(&path).map_err(io(format!("opening {}", path.display())))?;
    let mut r = BufReader::with_capacity(1 << 16, file).take(mark.bytes);
    let mut buf = Vec::new();
    for seq in 0..mark.count {
        let broken = |reason: String| ArtifactError::AuditChain { seq, reason };
        let short = |e: std::io::Error| -> crate::Error {
            if e.kind() == IoKind::UnexpectedEof {
                broken(format!(
                    "{} ends before it, inside the {} bytes the snapshot covers",
                    path.display(),
                    mark.bytes
                ))
                .into()
            } else {
                StorageError::io(format!("reading {}", path.display()), e).into()
            }
        };
        let mut len = [0u8; 4];
        r.read_exact(&mut len).map_err(short)?;
        let n = u32::from_le_bytes(len) as usize;
        if n > RECORD_MAX {
            return Err(broken(format!("its length prefix ({n} bytes) is damaged")).into());
        }
        buf.resize(n, 0);
        r.read_exact(&mut buf).map_err(short)?;
        let entry: AuditEntry =
            postcard::from_bytes(&buf).map_err(|e| broken(format!("it cannot be decoded: {e}")))?;
        f(entry)?;
    }
    Ok(())
}
