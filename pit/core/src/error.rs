//! The Pit's error type.
//!
//! Every component owns an error enum (`PoolError`, `DagError`, …). [`Error`] wraps them and the
//! storage layer's [`StorageError`]. Each variant reports an [`ErrorKind`], which names exactly one
//! Python exception class in `symphony/pit/errors.py`; the binding maps kinds, never variants, so a
//! component can add a variant without touching the binding.

use std::fmt;

use crate::arbitration::ArbitrationError;
use crate::artifacts::ArtifactError;
use crate::dag::DagError;
use crate::pool::PoolError;
use crate::stale::StaleError;

/// `Result` with the Pit's [`Error`] by default.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The Python exception class an error becomes. One variant per class in `errors.py`.
///
/// The names are the Python class names without the `Error` suffix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// `PitError`: an internal failure (a panic caught at the boundary, an invariant broken).
    Internal,
    /// `PitClosedError`: the Pit was closed.
    Closed,
    /// `InvalidArgumentError`: an argument has the right type but a bad value.
    InvalidArgument,
    /// `AlreadyExistsError`: an id that must be new is taken.
    AlreadyExists,
    /// `ModelNotFoundError`.
    ModelNotFound,
    /// `LeaseNotFoundError`: an unknown or already released slot lease.
    LeaseNotFound,
    /// `WorkflowNotFoundError`.
    WorkflowNotFound,
    /// `NodeNotFoundError`.
    NodeNotFound,
    /// `ArtifactNotFoundError`.
    ArtifactNotFound,
    /// `RequestNotFoundError`: an unknown arbitration request.
    RequestNotFound,
    /// `IllegalTransitionError`: a lifecycle or node-state transition that is not allowed.
    IllegalTransition,
    /// `PoolExhaustedError`: no slot free right now (non-blocking acquire).
    PoolExhausted,
    /// `AcquireTimeoutError`: waited for a slot until the timeout.
    AcquireTimeout,
    /// `ModelUnavailableError`: the model and every fallback are down.
    ModelUnavailable,
    /// `MemoryLimitError`: the model cannot fit under the memory limit even after eviction.
    MemoryLimit,
    /// `BudgetExceededError`: the owner's or model's budget does not cover the request.
    BudgetExceeded,
    /// `DagCycleError`: adding an edge would close a cycle; the detail names the cycle.
    DagCycle,
    /// `ArtifactIntegrityError`: a blob or record failed its hash or authentication check.
    ArtifactIntegrity,
    /// `AuditChainError`: the audit trail's hash chain is broken (tampering).
    AuditChain,
    /// `LegalHoldError`: the artifact is under legal hold and cannot be deleted.
    LegalHold,
    /// `RetentionError`: a retention policy keeps the artifact; it cannot be deleted yet.
    Retention,
    /// `EncryptionKeyError`: the key is missing, malformed or not the one the store was made with.
    EncryptionKey,
    /// `StorageError`: an I/O failure.
    Storage,
    /// `DataDirCorruptError`: the data directory is damaged; nothing was overwritten.
    DataDirCorrupt,
    /// `ForeignDataDirError`: the directory holds files that are not a Pit's.
    ForeignDataDir,
    /// `DataDirLockedError`: another process has the data directory open.
    DataDirLocked,
    /// `ArchiveError`: the archive backend failed or its copy did not verify.
    Archive,
    /// `ReadOnlyError`: a mutation of a Pit opened read-only.
    ReadOnly,
}

impl ErrorKind {
    /// Every kind, for exhaustive mapping tests.
    pub const ALL: &'static [ErrorKind] = &[
        Self::Internal,
        Self::Closed,
        Self::InvalidArgument,
        Self::AlreadyExists,
        Self::ModelNotFound,
        Self::LeaseNotFound,
        Self::WorkflowNotFound,
        Self::NodeNotFound,
        Self::ArtifactNotFound,
        Self::RequestNotFound,
        Self::IllegalTransition,
        Self::PoolExhausted,
        Self::AcquireTimeout,
        Self::ModelUnavailable,
        Self::MemoryLimit,
        Self::BudgetExceeded,
        Self::DagCycle,
        Self::ArtifactIntegrity,
        Self::AuditChain,
        Self::LegalHold,
        Self::Retention,
        Self::EncryptionKey,
        Self::Storage,
        Self::DataDirCorrupt,
        Self::ForeignDataDir,
        Self::DataDirLocked,
        Self::Archive,
        Self::ReadOnly,
    ];

    /// The Python class name this kind maps to.
    pub fn class_name(self) -> &'static str {
        match self {
            Self::Internal => "PitError",
            Self::Closed => "PitClosedError",
            Self::InvalidArgument => "InvalidArgumentError",
            Self::AlreadyExists => "AlreadyExistsError",
            Self::ModelNotFound => "ModelNotFoundError",
            Self::LeaseNotFound => "LeaseNotFoundError",
            Self::WorkflowNotFound => "WorkflowNotFoundError",
            Self::NodeNotFound => "NodeNotFoundError",
            Self::ArtifactNotFound => "ArtifactNotFoundError",
            Self::RequestNotFound => "RequestNotFoundError",
            Self::IllegalTransition => "IllegalTransitionError",
            Self::PoolExhausted => "PoolExhaustedError",
            Self::AcquireTimeout => "AcquireTimeoutError",
            Self::ModelUnavailable => "ModelUnavailableError",
            Self::MemoryLimit => "MemoryLimitError",
            Self::BudgetExceeded => "BudgetExceededError",
            Self::DagCycle => "DagCycleError",
            Self::ArtifactIntegrity => "ArtifactIntegrityError",
            Self::AuditChain => "AuditChainError",
            Self::LegalHold => "LegalHoldError",
            Self::Retention => "RetentionError",
            Self::EncryptionKey => "EncryptionKeyError",
            Self::Storage => "StorageError",
            Self::DataDirCorrupt => "DataDirCorruptError",
            Self::ForeignDataDir => "ForeignDataDirError",
            Self::DataDirLocked => "DataDirLockedError",
            Self::Archive => "ArchiveError",
            Self::ReadOnly => "ReadOnlyError",
        }
    }
}

/// What an error names, for the Python exception's attributes (`subject`, and `cycle` on
/// `DagCycleError`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Detail {
    /// Nothing beyond the message.
    #[default]
    None,
    /// The id the error is about (a model, workflow, node, artifact, lease or request).
    Subject(String),
    /// Several ids in order (the nodes of a cycle, closing on the first).
    Items(Vec<String>),
}

/// Implemented by every component error enum.
pub trait Classify {
    /// The Python class this error becomes.
    fn kind(&self) -> ErrorKind;
    /// Ids the error names, for exception attributes.
    fn detail(&self) -> Detail {
        Detail::None
    }
}

/// Failures of the storage layer shared by all components: the data directory, its journal and
/// snapshots.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// An operating-system I/O error, with what was being done.
    #[error("{context}: {source}")]
    Io {
        /// What the Pit was doing, e.g. "writing journal segment /x/y".
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The directory is a Pit's, but a file in it is damaged.
    #[error("data directory {path} is corrupt: {reason}; nothing in it was changed")]
    Corrupt {
        /// The damaged file.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The directory is not empty and is not a Pit data directory.
    #[error("{path} is not a Pit data directory (it is not empty and has no PIT manifest); refusing to write into it")]
    Foreign {
        /// The directory.
        path: String,
    },
    /// The directory was written by a newer format.
    #[error(
        "data directory {path} has format version {found}; this build reads up to {supported}"
    )]
    UnsupportedVersion {
        /// The directory.
        path: String,
        /// Its version.
        found: u32,
        /// The newest this build reads.
        supported: u32,
    },
    /// Another process holds the directory's lock.
    #[error("data directory {path} is in use by another process")]
    Locked {
        /// The directory.
        path: String,
    },
    /// The encryption key is wrong for this directory, or malformed.
    #[error("{0}")]
    Key(String),
    /// The Pit has been closed.
    #[error("the Pit is closed")]
    Closed,
    /// A write to a Pit opened read-only; names what was refused.
    #[error("the Pit was opened read-only: {0} is refused")]
    ReadOnly(String),
}

impl StorageError {
    /// The refusal of `what` (a write) by a Pit opened read-only.
    #[cold]
    pub fn read_only(what: impl Into<String>) -> Self {
        Self::ReadOnly(what.into())
    }
}

impl StorageError {
    /// Wrap an I/O error with context.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Self::Io {
            context: context.into(),
            source,
        }
    }
}

impl Classify for StorageError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::Io { .. } => ErrorKind::Storage,
            Self::Corrupt { .. } | Self::UnsupportedVersion { .. } => ErrorKind::DataDirCorrupt,
            Self::Foreign { .. } => ErrorKind::ForeignDataDir,
            Self::Locked { .. } => ErrorKind::DataDirLocked,
            Self::Key(_) => ErrorKind::EncryptionKey,
            Self::Closed => ErrorKind::Closed,
            Self::ReadOnly(_) => ErrorKind::ReadOnly,
        }
    }

    fn detail(&self) -> Detail {
        match self {
            Self::Corrupt { path, .. }
            | Self::Foreign { path }
            | Self::UnsupportedVersion { path, .. }
            | Self::Locked { path } => Detail::Subject(path.clone()),
            _ => Detail::None,
        }
    }
}

/// Any failure of the Pit.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Pool Manager.
    #[error(transparent)]
    Pool(#[from] PoolError),
    /// DAG Tracker.
    #[error(transparent)]
    Dag(#[from] DagError),
    /// Artifact Store.
    #[error(transparent)]
    Artifact(#[from] ArtifactError),
    /// Arbitration Engine.
    #[error(transparent)]
    Arbitration(#[from] ArbitrationError),
    /// Stale Manager.
    #[error(transparent)]
    Stale(#[from] StaleError),
    /// Data directory, journal, snapshots.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// An invariant was broken (a caught panic, a bug). The message says where.
    #[error("internal error: {0}")]
    Internal(String),
}

impl Classify for Error {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::Pool(e) => e.kind(),
            Self::Dag(e) => e.kind(),
            Self::Artifact(e) => e.kind(),
            Self::Arbitration(e) => e.kind(),
            Self::Stale(e) => e.kind(),
            Self::Storage(e) => e.kind(),
            Self::Internal(_) => ErrorKind::Internal,
        }
    }

    fn detail(&self) -> Detail {
        match self {
            Self::Pool(e) => e.detail(),
            Self::Dag(e) => e.detail(),
            Self::Artifact(e) => e.detail(),
            Self::Arbitration(e) => e.detail(),
            Self::Stale(e) => e.detail(),
            Self::Storage(e) => e.detail(),
            Self::Internal(_) => Detail::None,
        }
    }
}

impl From<std::io::Error> for StorageError {
    fn from(source: std::io::Error) -> Self {
        Self::io("I/O", source)
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.class_name())
    }
}
