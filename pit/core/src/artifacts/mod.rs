//! Artifact Store. SKELETON — replaced wholesale by the component implementation, which keeps the
//! items marked CONTRACT (the Stale Manager is built against them).

use std::sync::Weak;

use crate::clock::Micros;
use crate::error::{Classify, ErrorKind, Result};
use crate::{ArtifactId, Ctx, Lsn, Persistent, Tag};

/// Artifact Store failures.
#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    /// Unknown artifact.
    #[error("unknown artifact {0}")]
    NotFound(ArtifactId),
}

impl Classify for ArtifactError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::NotFound(_) => ErrorKind::ArtifactNotFound,
        }
    }
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
        /// The version's id.
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

/// Content-addressed, compressed, encrypted artifacts with versions, lineage and audit.
#[derive(Debug)]
pub struct ArtifactStore {
    ctx: Ctx,
}

impl ArtifactStore {
    /// Open the store of `ctx.data_dir/artifacts` (or an in-memory one), encrypting with `key`.
    pub fn open(ctx: &Ctx, _key: [u8; 32]) -> Result<Self> {
        Ok(Self { ctx: ctx.clone() })
    }

    /// CONTRACT: set the observer; the store immediately emits `Stored` (and the other events
    /// describing current state) for every live artifact, then every later change.
    pub fn set_observer(&self, _observer: Weak<dyn ArtifactObserver>) {}

    /// CONTRACT: the stored (encrypted) bytes of an artifact's blob, self-describing per
    /// `docs/artifact-format.md`, for copying to an archive.
    pub fn export_stored(&self, id: ArtifactId) -> Result<Vec<u8>> {
        Err(ArtifactError::NotFound(id).into())
    }

    /// CONTRACT: check that `stored` (an archive copy) decrypts with this store's key and hashes
    /// to artifact `id`'s content hash.
    pub fn verify_stored(&self, id: ArtifactId, _stored: &[u8]) -> Result<()> {
        Err(ArtifactError::NotFound(id).into())
    }

    /// CONTRACT: the blob is now kept in the archive under `archive_ref`; drop the local copy
    /// (space is reclaimed once no local version shares the blob). Refused while held? No: an
    /// archived held artifact stays held and undeletable.
    pub fn release_local(&self, id: ArtifactId, _archive_ref: &str) -> Result<()> {
        Err(ArtifactError::NotFound(id).into())
    }

    /// CONTRACT: put an archived artifact's blob back locally from its archive copy (verified).
    pub fn restore_local(&self, id: ArtifactId, _stored: &[u8]) -> Result<()> {
        Err(ArtifactError::NotFound(id).into())
    }

    /// CONTRACT: delete an artifact version as `actor` (audited). Fails with `LegalHoldError`
    /// while held, whoever asks.
    pub fn delete(&self, id: ArtifactId, _actor: &str) -> Result<()> {
        Err(ArtifactError::NotFound(id).into())
    }

    /// CONTRACT: bytes the store occupies locally (segment files and large-blob files).
    pub fn local_bytes(&self) -> u64 {
        0
    }

    /// Close files; later calls fail with `PitClosedError`.
    pub fn close(&self) -> Result<()> {
        Ok(())
    }
}

impl Persistent for ArtifactStore {
    fn tag(&self) -> Tag {
        Tag::Artifacts
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
