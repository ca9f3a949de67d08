//! Per-model health from call outcomes: healthy / degraded / down, with a half-open probe.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use crate::{Micros, SECOND};

/// Health of a model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Health {
    /// Serving normally.
    #[default]
    Healthy,
    /// Serving, but its error rate or latency is above the degraded threshold.
    Degraded,
    /// Not served: requests route to fallbacks; after `probe_after` one probe is let through.
    Down,
}

impl Health {
    /// Lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Healthy => "healthy",
            Self::Degraded => "degraded",
            Self::Down => "down",
        }
    }
}

/// Thresholds of the health tracker.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct HealthPolicy {
    /// Outcomes considered (sliding window).
    pub window: u32,
    /// Outcomes needed before the state can change.
    pub min_samples: u32,
    /// Error rate at or above which the model is degraded.
    pub degraded_error_rate: f64,
    /// Error rate at or above which the model is down.
    pub down_error_rate: f64,
    /// Mean latency (seconds) above which the model is degraded (`f64::INFINITY`: never).
    pub degraded_latency: f64,
    /// How long a down model waits before a probe is let through.
    pub probe_after: Micros,
}

impl Default for HealthPolicy {
    fn default() -> Self {
        Self {
            window: 20,
            min_samples: 5,
            degraded_error_rate: 0.2,
            down_error_rate: 0.5,
            degraded_latency: f64::INFINITY,
            probe_after: 30 * SECOND,
        }
    }
}

/// Sliding-window health tracker.
#[derive(Debug, Clone, Default)]
pub struct Tracker {
    pub(crate) policy: HealthPolicy,
    outcomes: VecDeque<(bool, f64)>,
    errors: u32,
    latency_sum: f64,
    pub(crate) state: Health,
    pub(crate) down_since: Micros,
    /// A probe lease is in flight.
    pub(crate) probing: bool,
}

impl Tracker {
    /// A tracker with `policy`.
    pub fn new(policy: HealthPolicy) -> Self {
        Self {
            policy,
            ..Self::default()
        }
    }

    /// Whether a down model may be probed at `now`.
    pub fn probe_due(&self, now: Micros) -> bool {
        self.state == Health::Down
            && !self.probing
            && now.saturating_sub(self.down_since) >= self.policy.probe_after
    }

    /// Record an outcome at `now`; `probe` says whether it is the result of the probe.
    pub fn record(&mut self, ok: bool, latency: f64, probe: bool, now: Micros) {
        if probe {
            self.probing = false;
            self.outcomes.clear();
            self.errors = 0;
            self.latency_sum = 0.0;
            if ok {
                self.state = Health::Healthy;
            } else {
                self.down_since = now;
                return;
            }
        }
        self.outcomes.push_back((ok, latency));
        self.errors += u32::from(!ok);
        self.latency_sum += latency;
        while self.outcomes.len() > self.policy.window.max(1) as usize {
            if let Some((o, l)) = self.outcomes.pop_front() {
                self.errors -= u32::from(!o);
                self.latency_sum -= l;
            }
        }
        if self.state == Health::Down || probe {
            return;
        }
        let n = self.outcomes.len() as u32;
        if n < self.policy.min_samples {
            return;
        }
        let rate = f64::from(self.errors) / f64::from(n);
        let mean_latency = self.latency_sum / f64::from(n);
        self.state = if rate >= self.policy.down_error_rate {
            self.down_since = now;
            Health::Down
        } else if rate >= self.policy.degraded_error_rate
            || mean_latency > self.policy.degraded_latency
        {
            Health::Degraded
        } else {
            Health::Healthy
        };
    }

    /// Error rate over the window.
    pub fn error_rate(&self) -> f64 {
        if self.outcomes.is_empty() {
            0.0
        } else {
            f64::from(self.errors) / self.outcomes.len() as f64
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn goes_down_and_probes_back() {
        let mut t = Tracker::new(HealthPolicy::default());
        for _ in 0..4 {
            t.record(false, 0.1, false, 0);
        }
        assert_eq!(t.state, Health::Healthy, "below min_samples");
        t.record(false, 0.1, false, 0);
        assert_eq!(t.state, Health::Down);
        assert!(!t.probe_due(SECOND));
        assert!(t.probe_due(30 * SECOND));
        t.probing = true;
        t.record(true, 0.1, true, 31 * SECOND);
        assert_eq!(t.state, Health::Healthy);
    }

    #[test]
    fn degraded_by_latency() {
        let mut t = Tracker::new(HealthPolicy {
            degraded_latency: 1.0,
            ..HealthPolicy::default()
        });
        for _ in 0..5 {
            t.record(true, 2.0, false, 0);
        }
        assert_eq!(t.state, Health::Degraded);
        for _ in 0..20 {
            t.record(true, 0.1, false, 0);
        }
        assert_eq!(t.state, Health::Healthy);
    }
}
