//! DAG Tracker. SKELETON — replaced wholesale by the component implementation.

use crate::error::{Classify, ErrorKind, Result};
use crate::{ArtifactId, Ctx, Lsn, Persistent, Tag};

/// DAG Tracker failures.
#[derive(Debug, thiserror::Error)]
pub enum DagError {
    /// Unknown workflow.
    #[error("unknown workflow {0:?}")]
    WorkflowNotFound(String),
}

impl Classify for DagError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::WorkflowNotFound(_) => ErrorKind::WorkflowNotFound,
        }
    }
}

/// Workflows, their dependencies and node states.
#[derive(Debug)]
pub struct DagTracker {
    ctx: Ctx,
}

impl DagTracker {
    /// A tracker with no workflows.
    pub fn new(ctx: &Ctx) -> Self {
        Self { ctx: ctx.clone() }
    }

    /// CONTRACT (Stale Manager): every artifact id referenced by a node of a workflow the tracker
    /// holds, sorted and deduplicated. Such artifacts are never deleted or archived away.
    pub fn referenced_artifacts(&self) -> Vec<ArtifactId> {
        Vec::new()
    }
}

impl Persistent for DagTracker {
    fn tag(&self) -> Tag {
        Tag::Dag
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
