//! Arbitration Engine. SKELETON — replaced wholesale by the component implementation.

use std::sync::Arc;

use crate::error::{Classify, ErrorKind, Result};
use crate::pool::PoolManager;
use crate::{Ctx, Lsn, Persistent, Tag};

/// Arbitration failures.
#[derive(Debug, thiserror::Error)]
pub enum ArbitrationError {
    /// Unknown request.
    #[error("unknown request {0}")]
    RequestNotFound(u64),
}

impl Classify for ArbitrationError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::RequestNotFound(_) => ErrorKind::RequestNotFound,
        }
    }
}

/// Decides who gets scarce slots.
#[derive(Debug)]
pub struct ArbitrationEngine {
    ctx: Ctx,
    #[allow(dead_code)]
    pool: Arc<PoolManager>,
}

impl ArbitrationEngine {
    /// An engine reading `pool`'s occupancy.
    pub fn new(ctx: &Ctx, pool: Arc<PoolManager>) -> Self {
        Self {
            ctx: ctx.clone(),
            pool,
        }
    }
}

impl Persistent for ArbitrationEngine {
    fn tag(&self) -> Tag {
        Tag::Arbitration
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
