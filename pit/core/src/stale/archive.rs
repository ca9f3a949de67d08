//! Archive backends: where the Stale Manager copies artifacts before releasing their local copy.
//!
//! [`ArchiveBackend`] is the interface an object store (S3, GCS, Azure Blob) would implement:
//! put / get / verify / delete / list of opaque objects addressed by a key. Every object carries
//! a BLAKE3 checksum of its bytes; `get` and `verify` recompute it, so a damaged copy is reported
//! (`ArchiveError`) instead of being handed back.
//!
//! Two implementations: [`LocalDirArchive`] (a directory, durable writes) and [`MemoryArchive`]
//! (in-memory Pits and tests).

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use parking_lot::Mutex;

use super::StaleError;
use crate::error::{Result, StorageError};
use crate::journal::sync_dir;

/// What the archive knows about one stored object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveObject {
    /// Its key.
    pub key: String,
    /// Size of the object's bytes.
    pub size: u64,
    /// BLAKE3 of the object's bytes.
    pub checksum: [u8; 32],
}

/// Where archived artifacts go: a local directory now, an object store later.
///
/// Keys are 1..=512 characters of `[A-Za-z0-9._/-]`, not starting with `/`, without empty, `.`
/// or `..` path segments ([`check_key`]). `put` replaces an existing object atomically and is
/// durable when it returns; `get` returns the bytes only if their checksum matches.
pub trait ArchiveBackend: Send + Sync + std::fmt::Debug {
    /// Store `bytes` under `key` (replacing any previous object), durably.
    fn put(&self, key: &str, bytes: &[u8]) -> Result<ArchiveObject>;
    /// The bytes under `key`, checksum-verified. Missing or damaged objects are `ArchiveError`s.
    fn get(&self, key: &str) -> Result<Vec<u8>>;
    /// Re-read the object and check its checksum, without returning the bytes.
    fn verify(&self, key: &str) -> Result<ArchiveObject>;
    /// Remove the object; `false` if there was none.
    fn delete(&self, key: &str) -> Result<bool>;
    /// Every object whose key starts with `prefix`, sorted by key (checksums as recorded, not
    /// re-verified).
    fn list(&self, prefix: &str) -> Result<Vec<ArchiveObject>>;
    /// A short description (`"dir:/path"`, `"memory"`).
    fn describe(&self) -> String;
}

/// A shared backend is a backend.
impl<T: ArchiveBackend + ?Sized> ArchiveBackend for std::sync::Arc<T> {
    fn put(&self, key: &str, bytes: &[u8]) -> Result<ArchiveObject> {
        (**self).put(key, bytes)
    }
    fn get(&self, key: &str) -> Result<Vec<u8>> {
        (**self).get(key)
    }
    fn verify(&self, key: &str) -> Result<ArchiveObject> {
        (**self).verify(key)
    }
    fn delete(&self, key: &str) -> Result<bool> {
        (**self).delete(key)
    }
    fn list(&self, prefix: &str) -> Result<Vec<ArchiveObject>> {
        (**self).list(prefix)
    }
    fn describe(&self) -> String {
        (**self).describe()
    }
}

/// A backend of a read-only Pit: reads go to the wrapped backend, `put` and `delete` are refused
/// with `ReadOnlyError`.
#[derive(Debug)]
pub struct ReadOnlyArchive<T>(pub T);

impl<T: ArchiveBackend> ArchiveBackend for ReadOnlyArchive<T> {
    fn put(&self, _key: &str, _bytes: &[u8]) -> Result<ArchiveObject> {
        Err(StorageError::read_only("writing to the archive").into())
    }
    fn get(&self, key: &str) -> Result<Vec<u8>> {
        self.0.get(key)
    }
    fn verify(&self, key: &str) -> Result<ArchiveObject> {
        self.0.verify(key)
    }
    fn delete(&self, _key: &str) -> Result<bool> {
        Err(StorageError::read_only("deleting from the archive").into())
    }
    fn list(&self, prefix: &str) -> Result<Vec<ArchiveObject>> {
        self.0.list(prefix)
    }
    fn describe(&self) -> String {
        format!("{} (read-only)", self.0.describe())
    }
}

/// Refuse keys an object store or a file system would interpret (absolute, `..`, odd bytes).
pub fn check_key(key: &str) -> Result<()> {
    let ok_chars = key
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'/'));
    let ok_segments = key
        .split('/')
        .all(|s| !s.is_empty() && s != "." && s != ".." && !s.ends_with(TMP_SUFFIX));
    if key.is_empty() || key.len() > 512 || !ok_chars || !ok_segments {
        return Err(StaleError::InvalidKey(key.to_string()).into());
    }
    Ok(())
}

fn archive_err(msg: String) -> crate::Error {
    StaleError::Archive(msg).into()
}

const MAGIC: &[u8; 8] = b"PITARCH1";
/// Magic, payload length (u64 LE), BLAKE3 of the payload.
const HEADER: usize = 8 + 8 + 32;
const TMP_SUFFIX: &str = ".partial";

/// An archive in a local directory: one file per object at `dir/<key>`, holding a 48-byte header
/// (`b"PITARCH1"`, payload length u64 LE, BLAKE3 of the payload) and the payload.
///
/// `put` writes `<key>.partial`, fsyncs it, renames it over `<key>` and fsyncs the directory:
/// after a crash the object is either the old one or the new one, never a torn mix. Leftover
/// `.partial` files are removed on open.
#[derive(Debug)]
pub struct LocalDirArchive {
    dir: PathBuf,
}

fn io(context: String) -> impl FnOnce(std::io::Error) -> crate::Error {
    move |e| StorageError::io(context, e).into()
}

impl LocalDirArchive {
    /// Open (creating) the archive directory; removes partial writes left by a crash.
    pub fn open(dir: &Path) -> Result<Self> {
        fs::create_dir_all(dir).map_err(io(format!("creating archive {}", dir.display())))?;
        let me = Self {
            dir: dir.to_path_buf(),
        };
        let mut files = Vec::new();
        Self::walk(&me.dir, &mut files)?;
        for f in files {
            if f.to_string_lossy().ends_with(TMP_SUFFIX) {
                fs::remove_file(&f).map_err(io(format!("removing {}", f.display())))?;
            }
        }
        Ok(me)
    }

    /// An archive in `dir` for a read-only Pit: nothing is created or removed (`dir` may be
    /// missing: then it is empty). Wrap it in [`ReadOnlyArchive`] so that writes are refused.
    pub fn open_read_only(dir: &Path) -> Self {
        Self {
            dir: dir.to_path_buf(),
        }
    }

    /// The archive directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, key: &str) -> Result<PathBuf> {
        check_key(key)?;
        Ok(self.dir.join(key))
    }

    fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
        let rd = match fs::read_dir(dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(io(format!("listing {}", dir.display()))(e)),
        };
        for entry in rd {
            let entry = entry.map_err(io(format!("listing {}", dir.display())))?;
            let ft = entry
                .file_type()
                .map_err(io(format!("reading {}", entry.path().display())))?;
            if ft.is_dir() {
                Self::walk(&entry.path(), out)?;
            } else if ft.is_file() {
                out.push(entry.path());
            }
        }
        Ok(())
    }

    fn read_header(key: &str, f: &mut File) -> Result<(u64, [u8; 32])> {
        let mut h = [0u8; HEADER];
        f.read_exact(&mut h)
            .map_err(|e| archive_err(format!("archive object '{key}' is truncated: {e}")))?;
        if &h[..8] != MAGIC {
            return Err(archive_err(format!(
                "archive object '{key}' is not a Pit archive object"
            )));
        }
        let len = u64::from_le_bytes(h[8..16].try_into().unwrap_or_default());
        let mut sum = [0u8; 32];
        sum.copy_from_slice(&h[16..48]);
        Ok((len, sum))
    }

    fn read_checked(&self, key: &str) -> Result<(Vec<u8>, [u8; 32])> {
        let path = self.path(key)?;
        let mut f = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(archive_err(format!("no archive object '{key}'")));
            }
            Err(e) => return Err(io(format!("opening {}", path.display()))(e)),
        };
        let (len, sum) = Self::read_header(key, &mut f)?;
        let mut data = Vec::with_capacity(usize::try_from(len).unwrap_or(0).min(1 << 30));
        f.read_to_end(&mut data)
            .map_err(io(format!("reading {}", path.display())))?;
        if data.len() as u64 != len {
            return Err(archive_err(format!(
                "archive object '{key}' has {} bytes, its header says {len}",
                data.len()
            )));
        }
        if *blake3::hash(&data).as_bytes() != sum {
            return Err(archive_err(format!(
                "archive object '{key}' fails its checksum (damaged copy)"
            )));
        }
        Ok((data, sum))
    }
}

impl ArchiveBackend for LocalDirArchive {
    fn put(&self, key: &str, bytes: &[u8]) -> Result<ArchiveObject> {
        let path = self.path(key)?;
        let parent = path.parent().unwrap_or(&self.dir).to_path_buf();
        fs::create_dir_all(&parent).map_err(io(format!("creating {}", parent.display())))?;
        let tmp = PathBuf::from(format!("{}{TMP_SUFFIX}", path.display()));
        let sum = *blake3::hash(bytes).as_bytes();
        {
            let mut f = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .open(&tmp)
                .map_err(io(format!("creating {}", tmp.display())))?;
            let mut header = Vec::with_capacity(HEADER);
            header.extend_from_slice(MAGIC);
            header.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
            header.extend_from_slice(&sum);
            f.write_all(&header)
                .and_then(|()| f.write_all(bytes))
                .and_then(|()| f.sync_all())
                .map_err(io(format!("writing {}", tmp.display())))?;
        }
        fs::rename(&tmp, &path).map_err(io(format!(
            "renaming {} to {}",
            tmp.display(),
            path.display()
        )))?;
        sync_dir(&parent)?;
        Ok(ArchiveObject {
            key: key.to_string(),
            size: bytes.len() as u64,
            checksum: sum,
        })
    }

    fn get(&self, key: &str) -> Result<Vec<u8>> {
        self.read_checked(key).map(|(d, _)| d)
    }

    fn verify(&self, key: &str) -> Result<ArchiveObject> {
        let (data, checksum) = self.read_checked(key)?;
        Ok(ArchiveObject {
            key: key.to_string(),
            size: data.len() as u64,
            checksum,
        })
    }

    fn delete(&self, key: &str) -> Result<bool> {
        let path = self.path(key)?;
        match fs::remove_file(&path) {
            Ok(()) => {
                sync_dir(path.parent().unwrap_or(&self.dir))?;
                Ok(true)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(io(format!("removing {}", path.display()))(e)),
        }
    }

    fn list(&self, prefix: &str) -> Result<Vec<ArchiveObject>> {
        let mut files = Vec::new();
        Self::walk(&self.dir, &mut files)?;
        let mut out = Vec::new();
        for f in files {
            let Ok(rel) = f.strip_prefix(&self.dir) else {
                continue;
            };
            let key = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join("/");
            if !key.starts_with(prefix) || check_key(&key).is_err() {
                continue;
            }
            let mut file = File::open(&f).map_err(io(format!("opening {}", f.display())))?;
            let (size, checksum) = Self::read_header(&key, &mut file)?;
            out.push(ArchiveObject {
                key,
                size,
                checksum,
            });
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    fn describe(&self) -> String {
        format!("dir:{}", self.dir.display())
    }
}

/// Key → (bytes, checksum).
type Objects = BTreeMap<String, (Vec<u8>, [u8; 32])>;

/// Archive in memory (in-memory Pits, tests). Same checks as [`LocalDirArchive`].
#[derive(Debug, Default)]
pub struct MemoryArchive {
    objects: Mutex<Objects>,
}

impl MemoryArchive {
    /// Overwrite the bytes of an object without updating its checksum (tests of damage
    /// detection). Returns `false` if there is no such object.
    pub fn corrupt(&self, key: &str) -> bool {
        match self.objects.lock().get_mut(key) {
            Some((data, _)) => {
                match data.first_mut() {
                    Some(b) => *b ^= 0xFF,
                    None => data.push(0),
                }
                true
            }
            None => false,
        }
    }
}

impl ArchiveBackend for MemoryArchive {
    fn put(&self, key: &str, bytes: &[u8]) -> Result<ArchiveObject> {
        check_key(key)?;
        let sum = *blake3::hash(bytes).as_bytes();
        self.objects
            .lock()
            .insert(key.to_string(), (bytes.to_vec(), sum));
        Ok(ArchiveObject {
            key: key.to_string(),
            size: bytes.len() as u64,
            checksum: sum,
        })
    }

    fn get(&self, key: &str) -> Result<Vec<u8>> {
        check_key(key)?;
        let objects = self.objects.lock();
        let (data, sum) = objects
            .get(key)
            .ok_or_else(|| archive_err(format!("no archive object '{key}'")))?;
        if blake3::hash(data).as_bytes() != sum {
            return Err(archive_err(format!(
                "archive object '{key}' fails its checksum (damaged copy)"
            )));
        }
        Ok(data.clone())
    }

    fn verify(&self, key: &str) -> Result<ArchiveObject> {
        let data = self.get(key)?;
        Ok(ArchiveObject {
            key: key.to_string(),
            size: data.len() as u64,
            checksum: *blake3::hash(&data).as_bytes(),
        })
    }

    fn delete(&self, key: &str) -> Result<bool> {
        check_key(key)?;
        Ok(self.objects.lock().remove(key).is_some())
    }

    fn list(&self, prefix: &str) -> Result<Vec<ArchiveObject>> {
        Ok(self
            .objects
            .lock()
            .range(prefix.to_string()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, (d, s))| ArchiveObject {
                key: k.clone(),
                size: d.len() as u64,
                checksum: *s,
            })
            .collect())
    }

    fn describe(&self) -> String {
        "memory".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    fn roundtrip(a: &dyn ArchiveBackend) {
        let o = a.put("artifacts/1", b"hello").unwrap();
        assert_eq!(o.size, 5);
        assert_eq!(a.get("artifacts/1").unwrap(), b"hello");
        assert_eq!(a.verify("artifacts/1").unwrap(), o);
        a.put("artifacts/1", b"world!").unwrap();
        assert_eq!(a.get("artifacts/1").unwrap(), b"world!");
        a.put("artifacts/2", b"").unwrap();
        a.put("other/3", b"x").unwrap();
        let keys: Vec<_> = a
            .list("artifacts/")
            .unwrap()
            .into_iter()
            .map(|o| o.key)
            .collect();
        assert_eq!(keys, vec!["artifacts/1", "artifacts/2"]);
        assert_eq!(a.list("").unwrap().len(), 3);
        assert!(a.delete("artifacts/1").unwrap());
        assert!(!a.delete("artifacts/1").unwrap());
        let e = a.get("artifacts/1").unwrap_err();
        assert_eq!(crate::Classify::kind(&e), ErrorKind::Archive);
        for bad in ["", "/abs", "a/../b", "a//b", "sp ace", "x.partial", "./a"] {
            let e = a.put(bad, b"x").unwrap_err();
            assert_eq!(
                crate::Classify::kind(&e),
                ErrorKind::InvalidArgument,
                "{bad}"
            );
        }
    }

    #[test]
    fn memory_archive_roundtrip_and_damage() {
        let a = MemoryArchive::default();
        roundtrip(&a);
        a.put("k", b"abc").unwrap();
        assert!(a.corrupt("k"));
        assert!(!a.corrupt("missing"));
        assert!(a.get("k").unwrap_err().to_string().contains("checksum"));
        assert!(a.verify("k").is_err());
        assert_eq!(a.describe(), "memory");
    }

    #[test]
    fn local_dir_archive_roundtrip_damage_and_partial_cleanup() {
        let d = tempfile::tempdir().unwrap();
        let a = LocalDirArchive::open(d.path()).unwrap();
        roundtrip(&a);
        a.put("k/x", b"abcdef").unwrap();
        // Flip a payload byte on disk: get and verify must refuse it.
        let p = d.path().join("k/x");
        let mut raw = fs::read(&p).unwrap();
        raw[HEADER] ^= 1;
        fs::write(&p, &raw).unwrap();
        assert!(a.get("k/x").unwrap_err().to_string().contains("checksum"));
        assert!(a.verify("k/x").is_err());
        // Truncated and foreign files are refused too.
        fs::write(&p, &raw[..HEADER - 1]).unwrap();
        assert!(a.get("k/x").unwrap_err().to_string().contains("truncated"));
        fs::write(&p, b"NOTMAGIC-and-some-more-bytes-to-fill-the-header-x").unwrap();
        assert!(a.get("k/x").is_err());
        let mut short = raw.clone();
        short.pop();
        fs::write(&p, &short).unwrap();
        assert!(a
            .get("k/x")
            .unwrap_err()
            .to_string()
            .contains("header says"));
        // A partial write left by a crash is removed on open, the committed object kept.
        a.put("k/y", b"kept").unwrap();
        fs::write(d.path().join("k/y.partial"), b"torn").unwrap();
        let b = LocalDirArchive::open(d.path()).unwrap();
        assert!(!d.path().join("k/y.partial").exists());
        assert_eq!(b.get("k/y").unwrap(), b"kept");
        assert!(b.describe().starts_with("dir:"));
        assert_eq!(b.dir(), d.path());
    }
}
