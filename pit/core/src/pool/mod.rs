//! Pool Manager. SKELETON — replaced wholesale by the component implementation.

use crate::error::{Classify, ErrorKind, Result};
use crate::{Ctx, Lsn, Persistent, Tag};

/// Pool Manager failures.
#[derive(Debug, thiserror::Error)]
pub enum PoolError {
    /// Unknown model.
    #[error("unknown model {0:?}")]
    ModelNotFound(String),
}

impl Classify for PoolError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::ModelNotFound(_) => ErrorKind::ModelNotFound,
        }
    }
}

/// Models, slots and their lifecycle.
#[derive(Debug)]
pub struct PoolManager {
    ctx: Ctx,
}

impl PoolManager {
    /// A pool with no models.
    pub fn new(ctx: &Ctx) -> Self {
        Self { ctx: ctx.clone() }
    }
}

impl Persistent for PoolManager {
    fn tag(&self) -> Tag {
        Tag::Pool
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
