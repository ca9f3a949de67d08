//! The data directory: its manifest, its lock, and the snapshot file.
//!
//! ```text
//! <dir>/PIT            manifest: "symphony-pit\nformat=2\nkey_id=<hex>\n"
//! <dir>/pit.lock       held (flock) by the process that has the Pit open
//! <dir>/snapshot.bin   newest checkpoint, replaced atomically (write tmp, fsync, rename, fsync dir)
//! <dir>/journal/       journal segments (see `journal`)
//! <dir>/artifacts/     the Artifact Store's segment files
//! <dir>/archive/       the default local-directory archive of the Stale Manager
//! ```
//!
//! `snapshot.bin`: `b"PITSNAP1"`, u32 LE count, then per component `u8 tag, u64 LE lsn, u64 LE
//! length, bytes`, and finally a u32 LE CRC-32 of everything before it.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Result, StorageError};
use crate::journal::{sync_dir, Lsn, Tag};

const MANIFEST: &str = "PIT";
const MANIFEST_MAGIC: &str = "symphony-pit";
/// The newest on-disk format this build reads and writes. 2: the Artifact Store keeps its audit
/// trail in `artifacts/audit.log` (format 1 kept it all in the snapshot; it is read as is, and the
/// manifest is upgraded once the directory has opened).
pub const FORMAT_VERSION: u32 = 2;
const SNAPSHOT: &str = "snapshot.bin";
const SNAPSHOT_MAGIC: &[u8; 8] = b"PITSNAP1";

/// An open, locked data directory.
#[derive(Debug)]
pub(crate) struct DataDir {
    path: PathBuf,
    /// The format the manifest names.
    format: u32,
    key_id: String,
    // Held until the Pit is closed; the OS releases the lock when the file is closed.
    lock: parking_lot::Mutex<Option<File>>,
}

fn io(context: String) -> impl FnOnce(std::io::Error) -> StorageError {
    move |e| StorageError::io(context, e)
}

/// The id stored in the manifest that tells whether a key is the directory's, without revealing
/// the key.
pub(crate) fn key_id(key: &[u8; 32]) -> String {
    let h = blake3::keyed_hash(key, b"symphony-pit key-id v1");
    h.to_hex()[..16].to_string()
}

impl DataDir {
    pub(crate) fn open(path: &Path, key: &[u8; 32]) -> Result<Self> {
        let shown = path.display().to_string();
        if path.exists() && !path.is_dir() {
            return Err(StorageError::Foreign { path: shown }.into());
        }
        let manifest_path = path.join(MANIFEST);
        let mut format = FORMAT_VERSION;
        let is_new = if manifest_path.exists() {
            let text = fs::read_to_string(&manifest_path).map_err(|e| StorageError::Corrupt {
                path: manifest_path.display().to_string(),
                reason: format!("unreadable manifest: {e}"),
            })?;
            format = check_manifest(&manifest_path, path, &text, key)?;
            false
        } else if path.is_dir()
            && fs::read_dir(path)
                .map_err(io(format!("listing {shown}")))?
                .next()
                .is_some()
        {
            return Err(StorageError::Foreign { path: shown }.into());
        } else {
            fs::create_dir_all(path).map_err(io(format!("creating {shown}")))?;
            true
        };
        let lock_path = path.join("pit.lock");
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io(format!("opening {}", lock_path.display())))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                return Err(StorageError::Locked { path: shown }.into());
            }
            Err(fs::TryLockError::Error(e)) => {
                return Err(StorageError::io(format!("locking {}", lock_path.display()), e).into());
            }
        }
        let dd = Self {
            path: path.to_path_buf(),
            format,
            key_id: key_id(key),
            lock: parking_lot::Mutex::new(Some(lock)),
        };
        if is_new {
            dd.write_manifest()?;
        }
        Ok(dd)
    }

    /// Open an existing Pit directory for reading only: nothing is created or written. Refuses a
    /// directory without a manifest (missing or empty: `StorageError`, else `ForeignDataDirError`).
    ///
    /// The lock: when `pit.lock` exists it is opened for reading and a *shared* lock is taken
    /// (held until close). A writer holds it exclusively, so a read-only open is refused while a
    /// writer has the Pit open (`DataDirLockedError`) and a writer is refused while a reader has it,
    /// but any number of readers may share it. Without a lock file no writer can have the Pit open
    /// (every writable open creates it), and none is created.
    pub(crate) fn open_read_only(path: &Path, key: &[u8; 32]) -> Result<Self> {
        let shown = path.display().to_string();
        if path.exists() && !path.is_dir() {
            return Err(StorageError::Foreign { path: shown }.into());
        }
        let manifest_path = path.join(MANIFEST);
        let text = match fs::read_to_string(&manifest_path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let empty = fs::read_dir(path).map_or(true, |mut rd| rd.next().is_none());
                if !empty {
                    return Err(StorageError::Foreign { path: shown }.into());
                }
                return Err(StorageError::io(
                    format!("opening {shown} read-only: there is no Pit there (no PIT manifest; a read-only open creates nothing)"),
                    e,
                )
                .into());
            }
            Err(e) => {
                return Err(StorageError::Corrupt {
                    path: manifest_path.display().to_string(),
                    reason: format!("unreadable manifest: {e}"),
                }
                .into());
            }
        };
        let format = check_manifest(&manifest_path, path, &text, key)?;
        let lock_path = path.join("pit.lock");
        let lock = match File::open(&lock_path) {
            Ok(f) => Some(f),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => {
                return Err(StorageError::io(format!("opening {}", lock_path.display()), e).into());
            }
        };
        if let Some(f) = &lock {
            match f.try_lock_shared() {
                Ok(()) => {}
                Err(fs::TryLockError::WouldBlock) => {
                    return Err(StorageError::Locked { path: shown }.into());
                }
                Err(fs::TryLockError::Error(e)) => {
                    return Err(
                        StorageError::io(format!("locking {}", lock_path.display()), e).into(),
                    );
                }
            }
        }
        Ok(Self {
            path: path.to_path_buf(),
            format,
            key_id: key_id(key),
            lock: parking_lot::Mutex::new(lock),
        })
    }

    fn write_manifest(&self) -> Result<()> {
        let text = format!(
            "{MANIFEST_MAGIC}\nformat={FORMAT_VERSION}\nkey_id={}\n",
            self.key_id
        );
        write_atomic(&self.path, MANIFEST, text.as_bytes())
    }

    /// Name the current format in the manifest of a directory written by an older one, once it
    /// has opened (so a damaged directory is still left untouched), and before anything in the
    /// new format is written: an older build then refuses the directory instead of misreading it.
    pub(crate) fn upgrade_format(&self) -> Result<()> {
        if self.format < FORMAT_VERSION {
            self.write_manifest()?;
        }
        Ok(())
    }

    /// Release the directory lock (on close): another Pit may open the directory afterwards.
    pub(crate) fn unlock(&self) {
        self.lock.lock().take();
    }

    /// Read the snapshot, if any: `(tag, covered lsn, bytes)` per component.
    pub(crate) fn read_snapshot(&self) -> Result<Vec<(Tag, Lsn, Vec<u8>)>> {
        let p = self.path.join(SNAPSHOT);
        if !p.exists() {
            return Ok(Vec::new());
        }
        let data = fs::read(&p).map_err(io(format!("reading {}", p.display())))?;
        parse_snapshot(&data).map_err(|reason| {
            StorageError::Corrupt {
                path: p.display().to_string(),
                reason,
            }
            .into()
        })
    }

    pub(crate) fn write_snapshot(&self, parts: &[(Tag, Lsn, Vec<u8>)]) -> Result<()> {
        let mut out = Vec::with_capacity(parts.iter().map(|p| p.2.len() + 17).sum::<usize>() + 16);
        out.extend_from_slice(SNAPSHOT_MAGIC);
        out.extend_from_slice(&(parts.len() as u32).to_le_bytes());
        for (tag, lsn, bytes) in parts {
            out.push(*tag as u8);
            out.extend_from_slice(&lsn.to_le_bytes());
            out.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
            out.extend_from_slice(bytes);
        }
        let crc = crc32fast::hash(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        write_atomic(&self.path, SNAPSHOT, &out)
    }
}

/// Check the manifest; returns the format it names.
fn check_manifest(manifest: &Path, dir: &Path, text: &str, key: &[u8; 32]) -> Result<u32> {
    let corrupt = |reason: &str| StorageError::Corrupt {
        path: manifest.display().to_string(),
        reason: reason.to_string(),
    };
    let mut lines = text.lines();
    if lines.next() != Some(MANIFEST_MAGIC) {
        return Err(corrupt("the manifest does not start with 'symphony-pit'").into());
    }
    let mut format = None;
    let mut kid = None;
    for line in lines {
        match line.split_once('=') {
            Some(("format", v)) => {
                format = Some(
                    v.parse::<u32>()
                        .map_err(|_| corrupt("format is not a number"))?,
                );
            }
            Some(("key_id", v)) => kid = Some(v.to_string()),
            _ => {}
        }
    }
    let format = format.ok_or_else(|| corrupt("the manifest has no format line"))?;
    if format == 0 {
        return Err(corrupt("format 0 does not exist").into());
    }
    if format > FORMAT_VERSION {
        return Err(StorageError::UnsupportedVersion {
            path: dir.display().to_string(),
            found: format,
            supported: FORMAT_VERSION,
        }
        .into());
    }
    let kid = kid.ok_or_else(|| corrupt("the manifest has no key_id line"))?;
    let given = key_id(key);
    if kid != given {
        return Err(StorageError::Key(format!(
            "the encryption key does not match data directory {} (it was created with key id {kid}; the key given has id {given})",
            dir.display()
        ))
        .into());
    }
    Ok(format)
}

fn parse_snapshot(data: &[u8]) -> std::result::Result<Vec<(Tag, Lsn, Vec<u8>)>, String> {
    if data.len() < 16 || &data[..8] != SNAPSHOT_MAGIC {
        return Err("not a Pit snapshot (bad header)".into());
    }
    let (body, crc) = data.split_at(data.len() - 4);
    if crc32fast::hash(body) != u32::from_le_bytes(crc.try_into().expect("4 bytes")) {
        return Err("snapshot checksum mismatch".into());
    }
    let count = u32::from_le_bytes(body[8..12].try_into().expect("4 bytes")) as usize;
    let mut pos = 12;
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        if body.len() < pos + 17 {
            return Err("snapshot truncated".into());
        }
        let tag = Tag::from_u8(body[pos]).ok_or("unknown component tag in snapshot")?;
        let lsn = Lsn::from_le_bytes(body[pos + 1..pos + 9].try_into().expect("8 bytes"));
        let len = u64::from_le_bytes(body[pos + 9..pos + 17].try_into().expect("8 bytes")) as usize;
        pos += 17;
        if body.len() < pos + len {
            return Err("snapshot truncated".into());
        }
        out.push((tag, lsn, body[pos..pos + len].to_vec()));
        pos += len;
    }
    Ok(out)
}

/// Replace `dir/name` atomically and durably.
pub(crate) fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> Result<()> {
    let tmp = dir.join(format!("{name}.tmp"));
    let dst = dir.join(name);
    let mut f = File::create(&tmp).map_err(io(format!("creating {}", tmp.display())))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(io(format!("writing {}", tmp.display())))?;
    fs::rename(&tmp, &dst).map_err(io(format!(
        "renaming {} to {}",
        tmp.display(),
        dst.display()
    )))?;
    sync_dir(dir)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_round_trip_and_checksum() {
        let d = tempfile::tempdir().unwrap();
        let dd = DataDir::open(d.path(), &[1; 32]).unwrap();
        assert!(dd.read_snapshot().unwrap().is_empty());
        let parts = vec![(Tag::Pool, 5, vec![1, 2, 3]), (Tag::Stale, 9, vec![])];
        dd.write_snapshot(&parts).unwrap();
        assert_eq!(dd.read_snapshot().unwrap(), parts);
        let p = d.path().join(SNAPSHOT);
        let mut bytes = fs::read(&p).unwrap();
        bytes[14] ^= 1;
        fs::write(&p, bytes).unwrap();
        assert!(dd.read_snapshot().is_err());
    }

    #[test]
    fn foreign_locked_and_wrong_key_are_refused() {
        let d = tempfile::tempdir().unwrap();
        fs::write(d.path().join("notes.txt"), "mine").unwrap();
        let err = DataDir::open(d.path(), &[1; 32]).unwrap_err();
        assert!(matches!(
            err,
            crate::Error::Storage(StorageError::Foreign { .. })
        ));
        assert_eq!(
            fs::read_dir(d.path()).unwrap().count(),
            1,
            "nothing written"
        );

        let d = tempfile::tempdir().unwrap();
        let first = DataDir::open(d.path(), &[1; 32]).unwrap();
        let err = DataDir::open(d.path(), &[1; 32]).unwrap_err();
        assert!(matches!(
            err,
            crate::Error::Storage(StorageError::Locked { .. })
        ));
        drop(first);
        let err = DataDir::open(d.path(), &[2; 32]).unwrap_err();
        assert!(matches!(err, crate::Error::Storage(StorageError::Key(_))));
        DataDir::open(d.path(), &[1; 32]).unwrap();
    }
}
