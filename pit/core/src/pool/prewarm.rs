//! Predictive pre-warming: a per-model idle-time histogram (the hybrid histogram policy of
//! "Serverless in the Wild", Shahrad et al., ATC'20, with a memory-budgeted window) plus a
//! successor model ("A is usually followed by B after about t").
//!
//! After every invocation of model `m` at `t` the [`Predictor`] plans *warm intervals*:
//!
//! * **own window**: from `m`'s idle-time histogram, the window `[t + a, t + b)` of length at most
//!   `window` (default 5 min, the fixed keep-alive's own cost per idle period) that holds the most
//!   idle times, shrunk while it keeps 95 % of that mass. `a > 0` means "unload now, pre-warm
//!   at `t + a`"; `a = 0` is an adaptive keep-alive. With fewer than `min_samples` idle times the
//!   plan is the plain keep-alive `[t, t + window)`; when the best window holds less than
//!   `min_mass` of the idle times the model is not kept warm at all.
//! * **successor windows**: for each model `B` that followed `m` within `succ_horizon` in at
//!   least `succ_min_prob` of `m`'s invocations at delays concentrated in a window of length at
//!   most `succ_window`, the interval `[t + d_lo, t + d_hi)` is planned for `B`.
//!
//! An invocation of `m` at `t` truncates `m`'s intervals that started at or before `t` and drops
//! its own intervals that had not started yet (they were superseded); successor intervals in the
//! future stay.

use serde::{Deserialize, Serialize};

use crate::Micros;
use crate::SECOND;

/// Tuning of the [`Predictor`].
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct PredictorConfig {
    /// Width of an idle-time histogram bin.
    pub bin: Micros,
    /// Number of bins (idle times beyond `bin * bins` are out of bounds).
    pub bins: usize,
    /// Longest own warm window (the fixed keep-alive it competes with).
    pub window: Micros,
    /// Idle times needed before the histogram is trusted.
    pub min_samples: u32,
    /// Least share of idle times the best window must hold to be worth keeping warm.
    pub min_mass: f64,
    /// How long after `A` a model counts as its successor.
    pub succ_horizon: Micros,
    /// Width of a successor-delay bin.
    pub succ_bin: Micros,
    /// Longest successor warm window.
    pub succ_window: Micros,
    /// Least probability that `B` follows `A` within the window.
    pub succ_min_prob: f64,
    /// Observations of `A` needed before predicting its successors.
    pub succ_min_samples: u32,
}

impl Default for PredictorConfig {
    fn default() -> Self {
        Self {
            bin: 30 * SECOND,
            bins: 480,
            window: 300 * SECOND,
            min_samples: 5,
            min_mass: 0.2,
            succ_horizon: 600 * SECOND,
            succ_bin: 5 * SECOND,
            succ_window: 120 * SECOND,
            succ_min_prob: 0.5,
            succ_min_samples: 3,
        }
    }
}

/// A planned warm interval `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interval {
    /// Start.
    pub start: Micros,
    /// End (exclusive).
    pub end: Micros,
    /// Planned from the model's own histogram (`false`: from a predecessor).
    pub own: bool,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Succ {
    model: usize,
    count: u32,
    hist: Vec<u32>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Stats {
    last: Option<Micros>,
    invocations: u32,
    idle: Vec<u32>,
    idle_n: u32,
    succ: Vec<Succ>,
    /// Successors already recorded since this model's last invocation.
    #[serde(skip)]
    seen: Vec<usize>,
    #[serde(skip)]
    intervals: Vec<Interval>,
    /// Cached own window (recomputed on every sample up to 32, then every 8th).
    #[serde(skip)]
    own_cache: Option<(Micros, Micros)>,
    #[serde(skip)]
    own_fresh: bool,
    /// Cached successor windows (same refresh rule, on this model's invocations).
    #[serde(skip)]
    succ_cache: Option<Vec<(usize, Micros, Micros)>>,
}

/// Whether statistics with `n` samples should be re-read (cheap amortized planning).
fn refresh(n: u32) -> bool {
    n < 32 || n.is_multiple_of(8)
}

/// Learns which model follows which and when, and plans warm intervals.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Predictor {
    cfg: PredictorConfig,
    models: Vec<Stats>,
    /// Finished intervals, kept only when `record` is on (the simulation measures them).
    #[serde(skip)]
    finished: Vec<(usize, Interval)>,
    #[serde(skip)]
    record: bool,
}

/// Find the window of at most `max_bins` consecutive bins holding the most counts, shrunk
/// while it keeps 95 % of that mass. Returns `(first bin, last bin + 1, mass)`.
fn best_window(hist: &[u32], max_bins: usize) -> Option<(usize, usize, u32)> {
    if hist.is_empty() || max_bins == 0 {
        return None;
    }
    let k = max_bins.min(hist.len());
    let mut sum: u32 = hist[..k].iter().sum();
    let (mut best, mut best_i) = (sum, 0);
    for i in k..hist.len() {
        sum = sum + hist[i] - hist[i - k];
        if sum > best {
            best = sum;
            best_i = i + 1 - k;
        }
    }
    if best == 0 {
        return None;
    }
    let (mut lo, mut hi, mut mass) = (best_i, best_i + k, best);
    let keep = (f64::from(best) * 0.95).ceil() as u32;
    loop {
        if hi - lo > 1 && mass - hist[lo] >= keep && hist[lo] <= hist[hi - 1] {
            mass -= hist[lo];
            lo += 1;
        } else if hi - lo > 1 && mass - hist[hi - 1] >= keep {
            mass -= hist[hi - 1];
            hi -= 1;
        } else if hi - lo > 1 && mass - hist[lo] >= keep {
            mass -= hist[lo];
            lo += 1;
        } else {
            break;
        }
    }
    Some((lo, hi, mass))
}

impl Predictor {
    /// A predictor with `cfg`.
    pub fn new(cfg: PredictorConfig) -> Self {
        Self {
            cfg,
            models: Vec::new(),
            finished: Vec::new(),
            record: false,
        }
    }

    /// Keep finished intervals for [`Predictor::warm_measure`] (simulation).
    pub fn record_intervals(&mut self) {
        self.record = true;
    }

    /// The configuration.
    pub fn config(&self) -> &PredictorConfig {
        &self.cfg
    }

    fn ensure(&mut self, m: usize) {
        while self.models.len() <= m {
            self.models.push(Stats {
                idle: vec![0; self.cfg.bins + 1],
                ..Stats::default()
            });
        }
    }

    /// The own window `(a, b)` after an invocation of `m`, relative to it; `None`: keep nothing.
    pub fn own_window(&self, m: usize) -> Option<(Micros, Micros)> {
        let Some(s) = self.models.get(m) else {
            return Some((0, self.cfg.window));
        };
        if s.idle_n < self.cfg.min_samples {
            return Some((0, self.cfg.window));
        }
        let max_bins = (self.cfg.window / self.cfg.bin).max(1) as usize;
        let (lo, hi, mass) = best_window(&s.idle[..self.cfg.bins], max_bins)?;
        if f64::from(mass) / f64::from(s.idle_n) < self.cfg.min_mass {
            return None;
        }
        Some((lo as Micros * self.cfg.bin, hi as Micros * self.cfg.bin))
    }

    /// Successor windows `(model, d_lo, d_hi)` after an invocation of `m`.
    pub fn successor_windows(&self, m: usize) -> Vec<(usize, Micros, Micros)> {
        let Some(s) = self.models.get(m) else {
            return Vec::new();
        };
        if s.invocations < self.cfg.succ_min_samples {
            return Vec::new();
        }
        let max_bins = (self.cfg.succ_window / self.cfg.succ_bin).max(1) as usize;
        let mut out = Vec::new();
        for succ in &s.succ {
            if succ.count < self.cfg.succ_min_samples {
                continue;
            }
            if let Some((lo, hi, mass)) = best_window(&succ.hist, max_bins) {
                if f64::from(mass) / f64::from(s.invocations) >= self.cfg.succ_min_prob {
                    out.push((
                        succ.model,
                        lo as Micros * self.cfg.succ_bin,
                        hi as Micros * self.cfg.succ_bin,
                    ));
                }
            }
        }
        out
    }

    /// Record an invocation of `m` at `t` (times must not go backwards per model) and plan the
    /// warm intervals that follow it.
    pub fn observe(&mut self, m: usize, t: Micros) {
        self.ensure(m);
        let cfg = self.cfg;
        // Successor statistics: m follows every model invoked within the horizon before t.
        for a in 0..self.models.len() {
            if a == m {
                continue;
            }
            let sa = &mut self.models[a];
            let Some(last) = sa.last else { continue };
            if t < last || t - last >= cfg.succ_horizon || sa.seen.contains(&m) {
                continue;
            }
            sa.seen.push(m);
            let bin = ((t - last) / cfg.succ_bin) as usize;
            let nbins = (cfg.succ_horizon / cfg.succ_bin) as usize;
            let idx = if let Some(i) = sa.succ.iter().position(|x| x.model == m) {
                i
            } else {
                sa.succ.push(Succ {
                    model: m,
                    count: 0,
                    hist: vec![0; nbins],
                });
                sa.succ.len() - 1
            };
            sa.succ[idx].count += 1;
            sa.succ[idx].hist[bin.min(nbins - 1)] += 1;
        }
        let s = &mut self.models[m];
        if let Some(last) = s.last {
            let bin = (t.saturating_sub(last) / cfg.bin) as usize;
            s.idle[bin.min(cfg.bins)] += 1;
            s.idle_n += 1;
        }
        s.last = Some(t);
        s.invocations += 1;
        s.seen.clear();
        if refresh(s.idle_n) {
            s.own_fresh = false;
        }
        if refresh(s.invocations) {
            s.succ_cache = None;
        }
        // Truncate what started, drop own plans that had not started.
        let record = self.record;
        let mut done = Vec::new();
        s.intervals.retain_mut(|iv| {
            if iv.start <= t {
                let end = iv.end.min(t);
                if record && end > iv.start {
                    done.push(Interval { end, ..*iv });
                }
                false
            } else {
                !iv.own
            }
        });
        self.finished.extend(done.into_iter().map(|iv| (m, iv)));
        if !self.models[m].own_fresh {
            let c = self.own_window(m);
            self.models[m].own_cache = c;
            self.models[m].own_fresh = true;
        }
        let own = self.models[m].own_cache;
        if let Some((a, b)) = own {
            self.models[m].intervals.push(Interval {
                start: t + a,
                end: t + b,
                own: true,
            });
        }
        let succ = self.models[m]
            .succ_cache
            .take()
            .unwrap_or_else(|| self.successor_windows(m));
        for &(b, lo, hi) in &succ {
            self.ensure(b);
            self.models[b].intervals.push(Interval {
                start: t + lo,
                end: t + hi,
                own: false,
            });
        }
        self.models[m].succ_cache = Some(succ);
    }

    /// Whether `m` is planned to be warm at `t`.
    pub fn warm_at(&self, m: usize, t: Micros) -> bool {
        self.models
            .get(m)
            .is_some_and(|s| s.intervals.iter().any(|iv| iv.start <= t && t < iv.end))
    }

    /// The end of the latest planned interval of `m` that contains `t` or starts later.
    pub fn planned_until(&self, m: usize, t: Micros) -> Option<Micros> {
        self.models
            .get(m)?
            .intervals
            .iter()
            .filter(|iv| iv.end > t)
            .map(|iv| iv.end)
            .max()
    }

    /// Drop intervals that ended before `t` (bounded memory in a long-running pool).
    pub fn prune(&mut self, t: Micros) {
        let record = self.record;
        for (m, s) in self.models.iter_mut().enumerate() {
            s.intervals.retain(|iv| {
                if iv.end <= t {
                    if record {
                        self.finished.push((m, *iv));
                    }
                    false
                } else {
                    true
                }
            });
        }
    }

    /// Total warm time per model (union of finished and planned intervals, clipped to
    /// `[0, horizon)`), in micros. Needs [`Predictor::record_intervals`].
    pub fn warm_measure(&self, models: usize, horizon: Micros) -> Vec<Micros> {
        let mut per: Vec<Vec<(Micros, Micros)>> = vec![Vec::new(); models];
        for (m, iv) in &self.finished {
            if *m < models {
                per[*m].push((iv.start, iv.end));
            }
        }
        for (m, s) in self.models.iter().enumerate().take(models) {
            per[m].extend(s.intervals.iter().map(|iv| (iv.start, iv.end)));
        }
        per.into_iter()
            .map(|mut v| union_len(&mut v, horizon))
            .collect()
    }
}

/// Length of the union of `[s, e)` intervals clipped to `[0, horizon)`.
pub(crate) fn union_len(v: &mut [(Micros, Micros)], horizon: Micros) -> Micros {
    v.sort_unstable();
    let mut total = 0;
    let mut cur: Option<(Micros, Micros)> = None;
    for &(s, e) in v.iter() {
        let (s, e) = (s.min(horizon), e.min(horizon));
        if e <= s {
            continue;
        }
        match cur {
            Some((cs, ce)) if s <= ce => cur = Some((cs, ce.max(e))),
            Some((cs, ce)) => {
                total += ce - cs;
                cur = Some((s, e));
            }
            None => cur = Some((s, e)),
        }
    }
    if let Some((cs, ce)) = cur {
        total += ce - cs;
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn best_window_finds_the_peak_and_shrinks() {
        let mut h = vec![0u32; 40];
        h[20] = 10;
        h[21] = 10;
        h[3] = 1;
        let (lo, hi, mass) = best_window(&h, 10).unwrap();
        assert_eq!((lo, hi, mass), (20, 22, 20));
        assert!(best_window(&[0, 0, 0], 2).is_none());
    }

    #[test]
    fn periodic_model_gets_a_prewarm_window() {
        let mut p = Predictor::new(PredictorConfig::default());
        for i in 0..10 {
            p.observe(0, i * 600 * SECOND);
        }
        let (a, b) = p.own_window(0).unwrap();
        assert!(a <= 600 * SECOND && b > 600 * SECOND && b - a <= 300 * SECOND);
        let t = 9 * 600 * SECOND;
        assert!(!p.warm_at(0, t + 10 * SECOND));
        assert!(p.warm_at(0, t + 600 * SECOND));
    }

    #[test]
    fn successor_is_learned() {
        let mut p = Predictor::new(PredictorConfig::default());
        for i in 0..6 {
            let t = i * 3600 * SECOND;
            p.observe(0, t);
            p.observe(1, t + 30 * SECOND);
        }
        let w = p.successor_windows(0);
        assert_eq!(w.len(), 1);
        assert_eq!(w[0].0, 1);
        p.observe(0, 7 * 3600 * SECOND);
        assert!(p.warm_at(1, 7 * 3600 * SECOND + 32 * SECOND));
    }

    #[test]
    fn union_len_merges() {
        let mut v = vec![(0, 10), (5, 15), (20, 30), (25, 40)];
        assert_eq!(union_len(&mut v, 35), 15 + 15);
    }
}
