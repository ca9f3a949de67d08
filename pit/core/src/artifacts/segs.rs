//! Segment files: append-only files of encrypted objects under `data_dir/artifacts/`.
//!
//! * Small objects are packed into the *active* segment through a user-space buffer (≤ 1 MiB);
//!   their bytes are also inlined in the journal record that references them, so the journal is
//!   their write-ahead log and a crash that loses the buffer loses nothing (replay writes them back).
//! * Objects above [`INLINE_MAX`] are written straight to the file and make it *unsynced*: the
//!   journal's pre-sync hook `fdatasync`s such files before the journal record is made durable.
//! * Large blobs get dedicated segments (never shared with small objects), so their space is given
//!   back as soon as the blob dies.
//!
//! In memory (`dir = None`) segments are plain vectors.

use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::StorageError;

/// A segment closes past this size (4 MiB in unit tests, to exercise rolling and compaction).
pub const SEG_MAX: u64 = if cfg!(test) { 4 << 20 } else { 64 << 20 };
/// Objects up to this size are inlined in their journal record.
pub const INLINE_MAX: usize = 64 << 10;
const BUF_MAX: usize = 1 << 20;

/// Where an object lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Loc {
    /// Segment number.
    pub seg: u32,
    /// Byte offset in the segment.
    pub off: u64,
    /// Stored object length.
    pub len: u32,
}

/// What the metadata knows about a segment.
#[derive(Debug, Clone, Copy, Default, serde::Serialize, serde::Deserialize)]
pub struct SegInfo {
    /// End of the last object ever recorded in it.
    pub end: u64,
    /// Live objects in it.
    pub live: u64,
    /// Bytes of its live objects.
    pub live_bytes: u64,
    /// Dedicated to large blobs.
    pub large: bool,
}

struct Active {
    num: u32,
    len: u64,
    flushed: u64,
    buf: Vec<u8>,
    /// The buffer holds objects not inlined in the journal: sync the file before the records.
    buf_needs_sync: bool,
    file: Option<Arc<File>>,
}

/// The segment store.
pub struct Segs {
    dir: Option<PathBuf>,
    mem: HashMap<u32, Vec<u8>>,
    files: HashMap<u32, Arc<File>>,
    active: Option<Active>,
    /// Files holding non-inlined objects not yet synced (the pre-sync hook syncs them).
    unsynced: HashMap<u32, Arc<File>>,
    /// Files with any bytes not yet synced (checkpoints sync them).
    dirty: HashMap<u32, Arc<File>>,
    next: u32,
    initialized: bool,
    /// A segment file was created since the directory was last synced.
    dir_dirty: bool,
    /// Opened read-only (a read-only Pit): files are opened for reading only, nothing is created,
    /// resized or removed, every write is refused, and objects replayed from the journal are kept
    /// in `overlay` instead of being written to their segment.
    read_only: bool,
    /// Read-only: the bytes of replayed inlined objects, by `(segment, offset)`.
    overlay: HashMap<(u32, u64), Vec<u8>>,
}

impl std::fmt::Debug for Segs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Segs({:?})", self.dir)
    }
}

/// Files to sync, and the directory when a file was created in it since its last sync.
pub type SyncSet = (Vec<(u32, Arc<File>)>, Option<PathBuf>);

/// Where to read an object's bytes from once the locks are released.
pub enum Src {
    /// Already copied.
    Bytes(Vec<u8>),
    /// Read `len` bytes at `off`.
    File(Arc<File>, u64, usize, PathBuf),
}

impl Src {
    /// The object's bytes.
    pub fn read(self) -> Result<Vec<u8>, String> {
        match self {
            Src::Bytes(b) => Ok(b),
            Src::File(f, off, len, path) => {
                let mut v = vec![0u8; len];
                f.read_exact_at(&mut v, off)
                    .map_err(|e| format!("reading {} at {off}: {e}", path.display()))?;
                Ok(v)
            }
        }
    }
}

fn io(ctx: String) -> impl FnOnce(std::io::Error) -> StorageError {
    move |e| StorageError::io(ctx, e)
}

/// The file name of segment `n`.
pub fn seg_name(n: u32) -> String {
    format!("seg-{n:08}.dat")
}

impl Segs {
    /// A segment store in `dir` (created), or in memory.
    pub fn new(dir: Option<PathBuf>) -> Result<Self, StorageError> {
        if let Some(d) = &dir {
            fs::create_dir_all(d).map_err(io(format!("creating {}", d.display())))?;
        }
        Ok(Self::empty(dir, false))
    }

    /// A read-only segment store over `dir` (see `read_only`); `dir` is not created.
    pub fn new_read_only(dir: PathBuf) -> Self {
        Self::empty(Some(dir), true)
    }

    fn empty(dir: Option<PathBuf>, read_only: bool) -> Self {
        Self {
            dir,
            mem: HashMap::new(),
            files: HashMap::new(),
            active: None,
            unsynced: HashMap::new(),
            dirty: HashMap::new(),
            next: 1,
            initialized: false,
            dir_dirty: false,
            read_only,
            overlay: HashMap::new(),
        }
    }

    /// Refuse a write of a read-only store.
    #[inline]
    fn check_writable(&self) -> Result<(), StorageError> {
        if self.read_only {
            return Err(StorageError::read_only("writing an artifact segment"));
        }
        Ok(())
    }

    fn path(&self, n: u32) -> PathBuf {
        self.dir
            .as_deref()
            .unwrap_or(Path::new(""))
            .join(seg_name(n))
    }

    fn file(&mut self, n: u32, create: bool) -> Result<Arc<File>, StorageError> {
        if let Some(f) = self.files.get(&n) {
            return Ok(Arc::clone(f));
        }
        let p = self.path(n);
        let f = OpenOptions::new()
            .read(true)
            .write(!self.read_only)
            .create(create && !self.read_only)
            .truncate(false)
            .open(&p)
            .map_err(io(format!("opening {}", p.display())))?;
        let f = Arc::new(f);
        self.files.insert(n, Arc::clone(&f));
        Ok(f)
    }

    /// Whether `init` ran.
    pub fn initialized(&self) -> bool {
        self.initialized
    }

    /// Reconcile files with the metadata (after restore and replay): drop files no record refers
    /// to, cut garbage off the reusable segment, pick the active one. Returns dead segments whose
    /// files should be removed once the journal is durable.
    pub fn init(&mut self, info: &BTreeMap<u32, SegInfo>) -> Result<Vec<u32>, StorageError> {
        self.initialized = true;
        if self.read_only {
            // Nothing to reconcile: garbage stays, no segment is made active (writes are refused).
            return Ok(Vec::new());
        }
        let mut max = info.keys().next_back().copied().unwrap_or(0);
        let mut on_disk = Vec::new();
        if let Some(d) = self.dir.clone() {
            let rd = fs::read_dir(&d).map_err(io(format!("listing {}", d.display())))?;
            for e in rd {
                let e = e.map_err(io(format!("listing {}", d.display())))?;
                let name = e.file_name();
                let name = name.to_string_lossy();
                if let Some(n) = name
                    .strip_prefix("seg-")
                    .and_then(|s| s.strip_suffix(".dat"))
                    .and_then(|s| s.parse::<u32>().ok())
                {
                    on_disk.push(n);
                    max = max.max(n);
                }
            }
        }
        let reuse = info
            .iter()
            .rev()
            .find(|(_, s)| !s.large)
            // A dead one (everything moved out or deleted) is removed, not refilled.
            .filter(|(_, s)| s.live > 0 && s.end < SEG_MAX / 2)
            .map(|(n, s)| (*n, s.end));
        let mut dead = Vec::new();
        for n in on_disk {
            if reuse.is_some_and(|r| r.0 == n) {
                continue;
            }
            match info.get(&n) {
                // Written, but no record ever referred to it: garbage of an unacknowledged put.
                None => {
                    let p = self.path(n);
                    fs::remove_file(&p).map_err(io(format!("removing {}", p.display())))?;
                }
                Some(s) if s.live == 0 => dead.push(n),
                Some(_) => {}
            }
        }
        self.next = self.next.max(max + 1);
        let (num, end) = reuse.unwrap_or_else(|| {
            let n = self.next;
            self.next += 1;
            (n, 0)
        });
        self.activate(num, end)?;
        Ok(dead)
    }

    fn activate(&mut self, num: u32, end: u64) -> Result<(), StorageError> {
        let file = if self.dir.is_some() {
            self.dir_dirty = true;
            let f = self.file(num, true)?;
            f.set_len(end)
                .map_err(io(format!("resizing {}", self.path(num).display())))?;
            self.dirty.insert(num, Arc::clone(&f));
            Some(f)
        } else {
            self.mem.entry(num).or_default();
            None
        };
        self.active = Some(Active {
            num,
            len: end,
            flushed: end,
            buf: Vec::new(),
            buf_needs_sync: false,
            file,
        });
        Ok(())
    }

    /// The active small-object segment.
    pub fn active_num(&self) -> Option<u32> {
        self.active.as_ref().map(|a| a.num)
    }

    fn flush_active(&mut self) -> Result<(), StorageError> {
        let Some(a) = self.active.as_mut() else {
            return Ok(());
        };
        if a.buf.is_empty() {
            return Ok(());
        }
        if let Some(f) = &a.file {
            f.write_all_at(&a.buf, a.flushed)
                .map_err(io(format!("writing segment {}", seg_name(a.num))))?;
            self.dirty.insert(a.num, Arc::clone(f));
        }
        a.buf.clear();
        a.flushed = a.len;
        Ok(())
    }

    /// Append a small object to the active segment. `inline`: its bytes are in the journal
    /// record too, so it need not be synced before the record.
    pub fn append_small(&mut self, obj: &[u8], inline: bool) -> Result<Loc, StorageError> {
        self.check_writable()?;
        let need_roll = self
            .active
            .as_ref()
            .is_none_or(|a| a.len + obj.len() as u64 > SEG_MAX);
        if need_roll {
            self.flush_active()?;
            let n = self.next;
            self.next += 1;
            self.activate(n, 0)?;
        }
        let a = self.active.as_mut().expect("active segment set above");
        let loc = Loc {
            seg: a.num,
            off: a.len,
            len: obj.len() as u32,
        };
        match &a.file {
            None => {
                self.mem
                    .get_mut(&a.num)
                    .expect("memory segment exists")
                    .extend_from_slice(obj);
                a.len += obj.len() as u64;
                a.flushed = a.len;
            }
            Some(f) if inline => {
                let f = Arc::clone(f);
                a.buf.extend_from_slice(obj);
                a.len += obj.len() as u64;
                if a.buf.len() >= BUF_MAX {
                    self.flush_active()?;
                } else {
                    self.dirty.insert(loc.seg, f);
                }
            }
            Some(f) => {
                let f = Arc::clone(f);
                self.flush_active()?;
                f.write_all_at(obj, loc.off)
                    .map_err(io(format!("writing segment {}", seg_name(loc.seg))))?;
                let a = self.active.as_mut().expect("active segment");
                a.len += obj.len() as u64;
                a.flushed = a.len;
                self.unsynced.insert(loc.seg, Arc::clone(&f));
                self.dirty.insert(loc.seg, f);
            }
        }
        Ok(loc)
    }

    /// Append a small object that is *not* inlined in its journal record through the buffer; the
    /// caller must call [`Segs::flush`] before appending the records that refer to it (batch
    /// puts: one write for the whole batch, synced by the pre-sync hook).
    pub fn append_buffered(&mut self, obj: &[u8]) -> Result<Loc, StorageError> {
        let loc = self.append_small(obj, true)?;
        if let Some(a) = self.active.as_mut() {
            if a.num == loc.seg && loc.off >= a.flushed {
                a.buf_needs_sync = true;
            } else if let Some(f) = &a.file {
                // Flushed already by a full buffer or a roll: only the sync is still owed.
                self.unsynced.insert(loc.seg, Arc::clone(f));
            }
        }
        Ok(loc)
    }

    /// Close the active segment and start a new one (so that compaction may move the old one's
    /// live objects out and remove it). Returns the old active segment's number.
    pub fn roll(&mut self) -> Result<Option<u32>, StorageError> {
        self.check_writable()?;
        self.flush_active()?;
        let old = self.active_num();
        let n = self.next;
        self.next += 1;
        self.activate(n, 0)?;
        Ok(old)
    }

    /// Hand the active buffer to the OS.
    pub fn flush(&mut self) -> Result<(), StorageError> {
        self.flush_active()
    }

    /// A new dedicated segment for a large blob; write it with [`LargeSeg::write`] without the
    /// lock.
    pub fn alloc_large(&mut self) -> Result<LargeSeg, StorageError> {
        self.check_writable()?;
        let n = self.next;
        self.next += 1;
        let file = if self.dir.is_some() {
            self.dir_dirty = true;
            Some(self.file(n, true)?)
        } else {
            self.mem.insert(n, Vec::new());
            None
        };
        Ok(LargeSeg {
            num: n,
            len: 0,
            file,
            path: self.path(n),
            mem: Vec::new(),
        })
    }

    /// Take a finished large segment back: memory segments hand over their bytes, files are
    /// marked for the pre-sync hook.
    pub fn finish_large(&mut self, seg: LargeSeg) {
        match seg.file {
            Some(f) => {
                self.unsynced.insert(seg.num, Arc::clone(&f));
                self.dirty.insert(seg.num, f);
            }
            None => {
                self.mem.insert(seg.num, seg.mem);
            }
        }
    }

    /// Write an object at a known place (journal replay of an inlined object, idempotent).
    pub fn write_at(&mut self, loc: Loc, obj: &[u8]) -> Result<(), StorageError> {
        if self.dir.is_none() {
            let m = self.mem.entry(loc.seg).or_default();
            let end = loc.off as usize + obj.len();
            if m.len() < end {
                m.resize(end, 0);
            }
            m[loc.off as usize..end].copy_from_slice(obj);
            return Ok(());
        }
        if self.read_only {
            // Replay of a read-only store: keep the object in memory, write nothing.
            self.overlay.insert((loc.seg, loc.off), obj.to_vec());
            return Ok(());
        }
        let f = self.file(loc.seg, true)?;
        f.write_all_at(obj, loc.off)
            .map_err(io(format!("writing segment {}", seg_name(loc.seg))))?;
        self.dirty.insert(loc.seg, f);
        Ok(())
    }

    /// Where to read the object at `loc`.
    pub fn source(&mut self, loc: Loc) -> Result<Src, String> {
        let len = loc.len as usize;
        if self.dir.is_none() {
            let m = self
                .mem
                .get(&loc.seg)
                .ok_or_else(|| format!("segment {} is missing", loc.seg))?;
            let end = loc.off as usize + len;
            return m
                .get(loc.off as usize..end)
                .map(|s| Src::Bytes(s.to_vec()))
                .ok_or_else(|| format!("segment {} is shorter than recorded", loc.seg));
        }
        if !self.overlay.is_empty() {
            if let Some(b) = self.overlay.get(&(loc.seg, loc.off)) {
                return b
                    .get(..len)
                    .map(|s| Src::Bytes(s.to_vec()))
                    .ok_or_else(|| "replayed object shorter than recorded".to_string());
            }
        }
        if let Some(a) = &self.active {
            if a.num == loc.seg && loc.off >= a.flushed {
                let start = (loc.off - a.flushed) as usize;
                return a
                    .buf
                    .get(start..start + len)
                    .map(|s| Src::Bytes(s.to_vec()))
                    .ok_or_else(|| "object beyond the end of the active segment".to_string());
            }
        }
        let f = self.file(loc.seg, false).map_err(|e| e.to_string())?;
        Ok(Src::File(f, loc.off, len, self.path(loc.seg)))
    }

    /// Files the pre-sync hook must sync (taken; put back on failure by the caller), and the
    /// directory when a segment file was created since its last sync.
    pub fn take_unsynced(&mut self) -> SyncSet {
        let dir = if std::mem::take(&mut self.dir_dirty) {
            self.dir.clone()
        } else {
            None
        };
        (self.unsynced.drain().collect(), dir)
    }

    /// Put back files whose sync failed.
    pub fn put_back_unsynced(&mut self, files: Vec<(u32, Arc<File>)>, dir: bool) {
        self.unsynced.extend(files);
        self.dir_dirty |= dir;
    }

    /// Flush the buffer and take every file with unsynced bytes (checkpoint, close).
    pub fn take_dirty(&mut self) -> Result<SyncSet, StorageError> {
        self.flush_active()?;
        self.unsynced.clear();
        let dir = if std::mem::take(&mut self.dir_dirty) {
            self.dir.clone()
        } else {
            None
        };
        Ok((self.dirty.drain().collect(), dir))
    }

    /// Remove dead segments' files (never the active one). Returns bytes freed.
    pub fn remove(&mut self, dead: &[u32]) -> Result<(), StorageError> {
        self.check_writable()?;
        for &n in dead {
            if self.active_num() == Some(n) {
                continue;
            }
            self.mem.remove(&n);
            self.files.remove(&n);
            self.unsynced.remove(&n);
            self.dirty.remove(&n);
            if self.dir.is_some() {
                let p = self.path(n);
                match fs::remove_file(&p) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(StorageError::io(format!("removing {}", p.display()), e)),
                }
            }
        }
        Ok(())
    }

    /// Bytes of every segment (files on disk, vectors in memory).
    pub fn bytes(&self) -> u64 {
        if let Some(d) = &self.dir {
            let Ok(rd) = fs::read_dir(d) else { return 0 };
            let mut total = 0;
            for e in rd.flatten() {
                if let Ok(m) = e.metadata() {
                    total += m.len();
                }
            }
            if let Some(a) = &self.active {
                total += a.buf.len() as u64;
            }
            total
        } else {
            self.mem.values().map(|v| v.len() as u64).sum()
        }
    }

    /// Drop open handles (close).
    pub fn close(&mut self) {
        self.files.clear();
        self.active = None;
        self.unsynced.clear();
        self.dirty.clear();
    }
}

/// A dedicated segment being written outside the lock.
pub struct LargeSeg {
    /// Its number.
    pub num: u32,
    /// Bytes written.
    pub len: u64,
    file: Option<Arc<File>>,
    path: PathBuf,
    mem: Vec<u8>,
}

impl LargeSeg {
    /// Append `obj`; returns its place.
    pub fn write(&mut self, obj: &[u8]) -> Result<Loc, StorageError> {
        let loc = Loc {
            seg: self.num,
            off: self.len,
            len: obj.len() as u32,
        };
        match &self.file {
            Some(f) => f
                .write_all_at(obj, self.len)
                .map_err(io(format!("writing {}", self.path.display())))?,
            None => self.mem.extend_from_slice(obj),
        }
        self.len += obj.len() as u64;
        Ok(loc)
    }
}

/// Sync files, then the directory when given (outside every lock).
pub fn sync_files(files: &[(u32, Arc<File>)], dir: Option<&Path>) -> Result<(), StorageError> {
    for (n, f) in files {
        f.sync_data()
            .map_err(io(format!("syncing segment {}", seg_name(*n))))?;
    }
    if let Some(d) = dir {
        crate::journal::sync_dir(d)?;
    }
    Ok(())
}
