//! Stale Manager. SKELETON — replaced wholesale by the component implementation.

use std::path::Path;
use std::sync::Arc;

use crate::artifacts::ArtifactStore;
use crate::dag::DagTracker;
use crate::error::{Classify, ErrorKind, Result};
use crate::{Ctx, Lsn, Persistent, Tag};

/// Stale Manager failures.
#[derive(Debug, thiserror::Error)]
pub enum StaleError {
    /// The archive failed.
    #[error("archive: {0}")]
    Archive(String),
}

impl Classify for StaleError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::Archive(_) => ErrorKind::Archive,
        }
    }
}

/// Where archived artifacts go: a local directory now, an object store later.
pub trait ArchiveBackend: Send + Sync + std::fmt::Debug {}

/// Archive in a local directory.
#[derive(Debug)]
pub struct LocalDirArchive;

impl LocalDirArchive {
    /// Open (creating) the archive directory.
    pub fn open(_dir: &Path) -> Result<Self> {
        Ok(Self)
    }
}

impl ArchiveBackend for LocalDirArchive {}

/// Archive in memory (in-memory Pits).
#[derive(Debug, Default)]
pub struct MemoryArchive {
    _objects: Vec<u8>,
}

impl ArchiveBackend for MemoryArchive {}

/// Tiers, archive and cleanup of artifacts by training value.
#[derive(Debug)]
pub struct StaleManager {
    ctx: Ctx,
}

impl StaleManager {
    /// A manager over `artifacts`, honouring references held by `dag`.
    pub fn new(
        ctx: &Ctx,
        _artifacts: Arc<ArtifactStore>,
        _dag: Arc<DagTracker>,
        _archive: Box<dyn ArchiveBackend>,
    ) -> Self {
        Self { ctx: ctx.clone() }
    }
}

impl Persistent for StaleManager {
    fn tag(&self) -> Tag {
        Tag::Stale
    }
    fn snapshot(&self) -> Result<(Lsn, Vec<u8>)> {
        Ok((self.ctx.journal.last_lsn(), Vec::new()))
    }
    fn restore(&self, _bytes: &[u8]) -> Result<()> {
        Ok(())
    }
    fn replay(&self, _lsn: Lsn, _payload: &[u8]) -> Result<()> {
        Ok(())
    }
}
