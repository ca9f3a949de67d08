//! Training value, tiers and the selection of archive and delete candidates.
//!
//! ```text
//! quality   q = (structure + semantics + utility) / 3          (0 until the store scores it)
//! reuse     r = reuse_count / (reuse_count + 2)                 (half at 2 uses)
//! lineage   s = successes / (successes + 1)                     (half at 1 successful run)
//! diversity d = 1 - live_of_same_kind / live_total               (rarer kinds score higher)
//! value     v = 0.40 q + 0.20 r + 0.30 s + 0.10 d                (in 0..=1)
//! class       high if v >= high_value (0.60), medium if v >= medium_value (0.30), else low
//! tier        hot  if now - last_access < hot_window (7 days)
//!             cold if not hot and now - created >= retention (30 days)
//!             warm otherwise
//! ```

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::facts::{Facts, ARCHIVED, HELD};
use crate::{ArtifactId, Micros, SECOND};

/// One day in [`Micros`].
pub const DAY: Micros = 86_400 * SECOND;

/// Nothing younger than this is ever deleted, whatever `retention` says (the spec's 30 days).
pub const MIN_DELETE_AGE: Micros = 30 * DAY;

/// Whether an artifact stored at `created` is old enough to be deleted at `now`.
#[inline]
pub fn deletable_age(created: Micros, now: Micros, s: &Settings) -> bool {
    now.saturating_sub(created) >= s.retention.max(MIN_DELETE_AGE)
}

/// Weight of quality in the value.
pub const W_QUALITY: f32 = 0.40;
/// Weight of reuse.
pub const W_REUSE: f32 = 0.20;
/// Weight of successful-run lineage.
pub const W_LINEAGE: f32 = 0.30;
/// Weight of diversity.
pub const W_DIVERSITY: f32 = 0.10;
/// Reuse count at which the reuse term is one half.
pub const REUSE_HALF: f32 = 2.0;
/// Successful runs at which the lineage term is one half.
pub const LINEAGE_HALF: f32 = 1.0;

/// The Stale Manager's settings (journaled; survive reopening).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    /// Minimum time an artifact stays local after it was stored (default 30 days).
    pub retention: Micros,
    /// Read within this window → hot (default 7 days).
    pub hot_window: Micros,
    /// Storage-pressure watermarks `(high, low)` in bytes of the store's `local_bytes()`;
    /// `None`: never delete.
    pub watermarks: Option<(u64, u64)>,
    /// Value at or above which an artifact is high-value (default 0.6).
    pub high_value: f32,
    /// Value at or above which an artifact is medium-value (default 0.3).
    pub medium_value: f32,
    /// Capacity of the notification queue (default 1000; oldest dropped first).
    pub notification_capacity: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            retention: 30 * DAY,
            hot_window: 7 * DAY,
            watermarks: None,
            high_value: 0.6,
            medium_value: 0.3,
            notification_capacity: 1000,
        }
    }
}

/// Value class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ValueClass {
    /// Below `medium_value`.
    Low,
    /// At least `medium_value`.
    Medium,
    /// At least `high_value`.
    High,
}

impl ValueClass {
    /// Lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Low => "low",
            Self::Medium => "medium",
            Self::High => "high",
        }
    }
}

/// Storage tier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Tier {
    /// Read recently.
    Hot,
    /// Neither hot nor past retention.
    Warm,
    /// Past retention and not read recently: candidate for archive (or deletion if low-value).
    Cold,
}

impl Tier {
    /// Lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Hot => "hot",
            Self::Warm => "warm",
            Self::Cold => "cold",
        }
    }
}

/// The training value from its parts (see the module docs).
#[inline]
pub fn value(quality: f32, reuse: u32, successes: u32, diversity: f32) -> f32 {
    combine(
        quality,
        saturate(reuse, REUSE_HALF),
        saturate(successes, LINEAGE_HALF),
        diversity,
    )
}

#[inline]
fn saturate(x: u32, half: f32) -> f32 {
    x as f32 / (x as f32 + half)
}

#[inline]
fn combine(quality: f32, r: f32, s: f32, diversity: f32) -> f32 {
    W_QUALITY * quality + W_REUSE * r + W_LINEAGE * s + W_DIVERSITY * diversity
}

/// Precomputed reuse and lineage terms for small counts (the common case): a sweep computes
/// exactly what [`value`] computes, without two divisions per artifact.
struct Terms {
    reuse: [f32; 64],
    lineage: [f32; 64],
}

impl Terms {
    fn new() -> Self {
        let mut t = Self {
            reuse: [0.0; 64],
            lineage: [0.0; 64],
        };
        for i in 0..64u32 {
            t.reuse[i as usize] = saturate(i, REUSE_HALF);
            t.lineage[i as usize] = saturate(i, LINEAGE_HALF);
        }
        t
    }

    #[inline]
    fn value(&self, quality: f32, reuse: u32, successes: u32, diversity: f32) -> f32 {
        let r = match self.reuse.get(reuse as usize) {
            Some(r) => *r,
            None => saturate(reuse, REUSE_HALF),
        };
        let s = match self.lineage.get(successes as usize) {
            Some(s) => *s,
            None => saturate(successes, LINEAGE_HALF),
        };
        combine(quality, r, s, diversity)
    }
}

/// Diversity of a kind with `count` live artifacts out of `total`.
#[inline]
pub fn diversity(count: u32, total: usize) -> f32 {
    if total == 0 {
        return 0.0;
    }
    1.0 - (count as f32 / total as f32).min(1.0)
}

/// Class of a value.
#[inline]
pub fn class(v: f32, s: &Settings) -> ValueClass {
    if v >= s.high_value {
        ValueClass::High
    } else if v >= s.medium_value {
        ValueClass::Medium
    } else {
        ValueClass::Low
    }
}

/// Tier of an artifact.
#[inline]
pub fn tier(created: Micros, last_access: Micros, now: Micros, s: &Settings) -> Tier {
    if now.saturating_sub(last_access) < s.hot_window {
        Tier::Hot
    } else if now.saturating_sub(created) >= s.retention {
        Tier::Cold
    } else {
        Tier::Warm
    }
}

/// The value of row `r` with the current kind counts.
pub fn row_value(f: &Facts, r: usize) -> f32 {
    let k = f.kind[r] as usize;
    let d = diversity(f.kind_counts.get(k).copied().unwrap_or(0), f.len());
    value(f.quality[r], f.reuse[r], f.successes[r], d)
}

/// Why an artifact that could have been acted on was not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SkipReason {
    /// A workflow references it.
    Referenced,
    /// Under legal hold.
    Held,
    /// Its value rose to medium or high since selection.
    NotLowValue,
    /// It is no longer cold (read since, or retention changed).
    NotCold,
    /// Younger than the deletion floor ([`MIN_DELETE_AGE`]).
    TooYoung,
    /// It was deleted or archived meanwhile.
    Gone,
    /// Export, archive put, read-back or verification failed; the local copy is kept.
    ArchiveFailed(String),
    /// The store refused the deletion for another reason.
    DeleteFailed(String),
}

impl SkipReason {
    /// Short text for reports and notifications.
    pub fn text(&self) -> String {
        match self {
            Self::Referenced => "referenced".into(),
            Self::Held => "held".into(),
            Self::NotLowValue => "not-low-value".into(),
            Self::NotCold => "not-cold".into(),
            Self::TooYoung => "too-young".into(),
            Self::Gone => "gone".into(),
            Self::ArchiveFailed(m) => format!("archive-failed: {m}"),
            Self::DeleteFailed(m) => format!("delete-failed: {m}"),
        }
    }
}

/// An artifact selected for an action.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Candidate {
    /// Its id.
    pub id: ArtifactId,
    /// Its value at selection.
    pub value: f32,
    /// Its size.
    pub size: u64,
    /// When it was stored (tie-break of the deletion order).
    pub created: Micros,
}

impl Candidate {
    /// Deletion order: lowest value first, then older, then lower id (non-negative floats
    /// order like their bits).
    fn order(&self) -> (u32, Micros, ArtifactId) {
        (self.value.to_bits(), self.created, self.id)
    }
}

/// What a sweep would do, computed from a consistent view of the facts.
#[derive(Debug, Default, Clone)]
pub struct Plan {
    /// Live artifacts examined.
    pub examined: u64,
    /// Count per tier (hot, warm, cold).
    pub tiers: [u64; 3],
    /// Count per class (low, medium, high).
    pub classes: [u64; 3],
    /// Cold, medium- or high-value, local, unreferenced: to archive (in row order).
    pub archive_ids: Vec<ArtifactId>,
    /// Their values.
    pub archive_values: Vec<f32>,
    /// The sum of their sizes.
    pub archive_bytes: u64,
    /// Cold, low-value, local, unreferenced, not held: the deletion pool, lowest value first
    /// (ties: older first, then lower id). Deleted only under pressure, from the front.
    pub pool: Vec<Candidate>,
    /// Cold candidates held back by a guard (references; holds of low-value ones).
    pub skipped: Vec<(ArtifactId, SkipReason, f32)>,
}

impl Plan {
    /// The archive candidates in row order: `(id, value)`.
    pub fn archive(&self) -> impl Iterator<Item = (ArtifactId, f32)> + '_ {
        self.archive_ids
            .iter()
            .copied()
            .zip(self.archive_values.iter().copied())
    }

    /// How many archive candidates.
    pub fn archive_len(&self) -> usize {
        self.archive_ids.len()
    }
}

#[derive(Default)]
struct Part {
    tiers: [u64; 3],
    classes: [u64; 3],
    archive_ids: Vec<ArtifactId>,
    archive_values: Vec<f32>,
    archive_bytes: u64,
    pool: Vec<Candidate>,
    skipped: Vec<(ArtifactId, SkipReason, f32)>,
}

const CHUNK: usize = 1 << 15;

/// Classify every row and select candidates. `referenced[r]` marks rows a workflow references.
pub fn plan(f: &Facts, referenced: &[bool], now: Micros, settings: &Settings) -> Plan {
    let rows = f.len();
    let total = rows;
    let div: Vec<f32> = f.kind_counts.iter().map(|c| diversity(*c, total)).collect();
    let terms = Terms::new();
    let chunk = |start: usize| -> Part {
        let end = (start + CHUNK).min(rows);
        // Capacity is reserved, not touched: no regrowth copies, no pages faulted in for nothing.
        let mut part = Part {
            archive_ids: Vec::with_capacity(end - start),
            archive_values: Vec::with_capacity(end - start),
            pool: Vec::with_capacity(end - start),
            ..Part::default()
        };
        // Counters in locals (registers), not an indexed array: no store-to-load stalls.
        let (mut hot, mut warm, mut low, mut medium) = (0u64, 0u64, 0u64, 0u64);
        for r in start..end {
            let val = terms.value(
                f.quality[r],
                f.reuse[r],
                f.successes[r],
                div[f.kind[r] as usize],
            );
            let c = class(val, settings);
            let t = tier(f.created[r], f.last_access[r], now, settings);
            low += u64::from(c == ValueClass::Low);
            medium += u64::from(c == ValueClass::Medium);
            hot += u64::from(t == Tier::Hot);
            warm += u64::from(t == Tier::Warm);
            if t != Tier::Cold || f.flags[r] & ARCHIVED != 0 {
                continue;
            }
            let id = f.ids[r];
            if referenced[r] {
                part.skipped.push((id, SkipReason::Referenced, val));
            } else if c == ValueClass::Low {
                if !deletable_age(f.created[r], now, settings) {
                    // Cold under a retention below the deletion floor: kept, not a candidate.
                } else if f.flags[r] & HELD != 0 {
                    part.skipped.push((id, SkipReason::Held, val));
                } else {
                    part.pool.push(Candidate {
                        id,
                        value: val,
                        size: f.size[r],
                        created: f.created[r],
                    });
                }
            } else {
                part.archive_ids.push(id);
                part.archive_values.push(val);
                part.archive_bytes += f.size[r];
            }
        }
        let n = (end - start) as u64;
        part.classes = [low, medium, n - low - medium];
        part.tiers = [hot, warm, n - hot - warm];
        part
    };
    let starts: Vec<usize> = (0..rows).step_by(CHUNK).collect();
    let parts: Vec<Part> = starts.into_par_iter().map(chunk).collect();
    let mut out = Plan {
        examined: rows as u64,
        archive_ids: Vec::with_capacity(parts.iter().map(|p| p.archive_ids.len()).sum()),
        archive_values: Vec::with_capacity(parts.iter().map(|p| p.archive_ids.len()).sum()),
        ..Plan::default()
    };
    let mut pool = Vec::with_capacity(parts.iter().map(|p| p.pool.len()).sum());
    for mut p in parts {
        for i in 0..3 {
            out.tiers[i] += p.tiers[i];
            out.classes[i] += p.classes[i];
        }
        out.archive_ids.append(&mut p.archive_ids);
        out.archive_values.append(&mut p.archive_values);
        out.archive_bytes += p.archive_bytes;
        out.skipped.append(&mut p.skipped);
        pool.append(&mut p.pool);
    }
    out.pool = sort_pool(&pool);
    out
}

/// Sort the deletion pool by [`Candidate::order`]: a parallel sort of 8-byte keys (value bits,
/// position), a gather, then the rare runs of equal values re-sorted by (created, id).
fn sort_pool(pool: &[Candidate]) -> Vec<Candidate> {
    let mut keys: Vec<u64> = pool
        .iter()
        .enumerate()
        .map(|(i, c)| (u64::from(c.value.to_bits()) << 32) | i as u64)
        .collect();
    keys.par_sort_unstable();
    let mut sorted: Vec<Candidate> = keys
        .iter()
        .map(|k| pool[(k & 0xFFFF_FFFF) as usize])
        .collect();
    let mut i = 0;
    while i < sorted.len() {
        let bits = sorted[i].value.to_bits();
        let mut j = i + 1;
        while j < sorted.len() && sorted[j].value.to_bits() == bits {
            j += 1;
        }
        if j - i > 1 {
            sorted[i..j].sort_unstable_by_key(Candidate::order);
        }
        i = j;
    }
    sorted
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::artifacts::ArtifactEvent;

    #[test]
    fn formula_matches_the_documented_weights() {
        assert!((value(1.0, 0, 0, 0.0) - 0.4).abs() < 1e-6);
        assert!((value(0.0, 2, 0, 0.0) - 0.1).abs() < 1e-6);
        assert!((value(0.0, 0, 1, 0.0) - 0.15).abs() < 1e-6);
        assert!((value(0.0, 0, 0, 1.0) - 0.1).abs() < 1e-6);
        assert!(value(1.0, u32::MAX, u32::MAX, 1.0) <= 1.0 + 1e-6);
        assert!((diversity(1, 4) - 0.75).abs() < 1e-6);
        assert!(diversity(0, 0).abs() < f32::EPSILON);
        let s = Settings::default();
        assert_eq!(class(0.6, &s), ValueClass::High);
        assert_eq!(class(0.59, &s), ValueClass::Medium);
        assert_eq!(class(0.3, &s), ValueClass::Medium);
        assert_eq!(class(0.29, &s), ValueClass::Low);
        assert_eq!(tier(0, 30 * DAY - 1, 30 * DAY, &s), Tier::Hot);
        assert_eq!(tier(0, 0, 30 * DAY, &s), Tier::Cold);
        assert_eq!(tier(DAY, DAY, 30 * DAY, &s), Tier::Warm);
        assert_eq!(tier(10, 10, 5, &s), Tier::Hot);
        assert_eq!(ValueClass::High.as_str(), "high");
        assert_eq!(Tier::Warm.as_str(), "warm");
        assert_eq!(
            SkipReason::ArchiveFailed("x".into()).text(),
            "archive-failed: x"
        );
    }

    #[test]
    fn pool_sort_matches_the_documented_order() {
        let mut rng = 0x1234_5678_u64;
        let mut next = move || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        let pool: Vec<Candidate> = (0..5000u64)
            .map(|i| Candidate {
                id: next() % 100_000 + i * 100_000,
                value: (next() % 7) as f32 / 10.0,
                size: 1,
                created: next() % 5,
            })
            .collect();
        let mut want = pool.clone();
        want.sort_by_key(Candidate::order);
        assert_eq!(sort_pool(&pool), want);
        assert!(sort_pool(&[]).is_empty());
    }

    #[test]
    fn the_sweep_tables_compute_exactly_the_formula() {
        let t = Terms::new();
        for reuse in [0, 1, 2, 7, 63, 64, 65, 1000, u32::MAX] {
            for succ in [0, 1, 3, 63, 64, 99] {
                for q in [0.0, 0.33, 1.0] {
                    let a = t.value(q, reuse, succ, 0.25);
                    let b = value(q, reuse, succ, 0.25);
                    assert_eq!(a.to_bits(), b.to_bits());
                }
            }
        }
    }

    #[test]
    fn plan_selects_by_tier_value_and_guards() {
        let mut f = Facts::default();
        let now = 100 * DAY;
        // id, kind, created, quality, successes
        let rows: [(u64, u32, Micros, f32, u32); 7] = [
            (1, 0, 0, 1.0, 3),        // high, cold → archive
            (2, 0, 0, 0.0, 0),        // low, cold → pool
            (3, 0, 0, 0.0, 0),        // low, cold, held → skipped
            (4, 0, 90 * DAY, 0.0, 0), // low, warm → nothing
            (5, 0, 0, 0.9, 0),        // medium, cold, referenced → skipped
            (6, 0, 0, 0.1, 0),        // low, cold → pool (after 2)
            (7, 0, 0, 0.9, 0),        // medium, cold, archived → nothing
        ];
        for (id, kind, created, q, succ) in rows {
            f.apply(&ArtifactEvent::Stored {
                id,
                size: 10,
                kind,
                created,
            });
            f.apply(&ArtifactEvent::Quality {
                id,
                structure: q,
                semantics: q,
                utility: q,
            });
            f.apply(&ArtifactEvent::RunOutcome {
                id,
                successes: succ,
            });
        }
        f.apply(&ArtifactEvent::Held { id: 3, held: true });
        f.apply(&ArtifactEvent::Archived {
            id: 7,
            archived: true,
        });
        let refs: Vec<bool> = f.ids.iter().map(|id| *id == 5).collect();
        let p = plan(&f, &refs, now, &Settings::default());
        assert_eq!(p.examined, 7);
        assert_eq!(p.archive().map(|c| c.0).collect::<Vec<_>>(), vec![1]);
        assert_eq!(p.archive_bytes, 10);
        assert_eq!(p.archive_len(), 1);
        assert_eq!(p.pool.iter().map(|c| c.id).collect::<Vec<_>>(), vec![2, 6]);
        let sk: Vec<_> = p
            .skipped
            .iter()
            .map(|(id, r, _)| (*id, r.clone()))
            .collect();
        assert!(sk.contains(&(3, SkipReason::Held)));
        assert!(sk.contains(&(5, SkipReason::Referenced)));
        assert_eq!(p.tiers, [0, 1, 6]);
        assert_eq!(p.classes.iter().sum::<u64>(), 7);
        assert_eq!(p.classes[2], 1);
    }
}
