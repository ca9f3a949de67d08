//! The one clock every component reads.
//!
//! Time is microseconds since the Unix epoch (`Micros`). A manual clock lets tests and simulations
//! move time forward (30-day retention, cooldowns, health windows, fairness decay) without sleeping.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// Microseconds since the Unix epoch.
pub type Micros = u64;

/// One second in [`Micros`].
pub const SECOND: Micros = 1_000_000;

/// A shared clock: the system's, or a manual one that only moves when told to.
#[derive(Debug, Clone)]
pub struct Clock {
    manual: Option<Arc<AtomicU64>>,
}

impl Default for Clock {
    fn default() -> Self {
        Self::system()
    }
}

impl Clock {
    /// The system wall clock.
    pub fn system() -> Self {
        Self { manual: None }
    }

    /// A manual clock starting at `start`.
    pub fn manual(start: Micros) -> Self {
        Self {
            manual: Some(Arc::new(AtomicU64::new(start))),
        }
    }

    /// Whether this clock only moves when advanced.
    pub fn is_manual(&self) -> bool {
        self.manual.is_some()
    }

    /// The current time.
    #[inline]
    pub fn now(&self) -> Micros {
        match &self.manual {
            Some(t) => t.load(Ordering::Acquire),
            None => SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_micros() as Micros),
        }
    }

    /// Move a manual clock forward by `by`; returns the new time. A system clock is unaffected and
    /// `false` is returned as the second element.
    pub fn advance(&self, by: Micros) -> (Micros, bool) {
        match &self.manual {
            Some(t) => (t.fetch_add(by, Ordering::AcqRel) + by, true),
            None => (self.now(), false),
        }
    }

    /// Set a manual clock to `to` (it may not go backwards). Returns `false` for a system clock or
    /// a backwards move.
    pub fn set(&self, to: Micros) -> bool {
        match &self.manual {
            Some(t) => t.fetch_max(to, Ordering::AcqRel) <= to,
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_forward() {
        let c = Clock::manual(10);
        assert_eq!(c.now(), 10);
        assert_eq!(c.advance(5), (15, true));
        assert!(c.set(20));
        assert!(!c.set(3));
        assert_eq!(c.now(), 20);
    }

    #[test]
    fn system_clock_is_recent() {
        let c = Clock::system();
        assert!(c.now() > 1_700_000_000 * SECOND);
        assert!(!c.advance(1).1);
    }
}
