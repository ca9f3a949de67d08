//! The Stale Manager's columnar view of artifact facts, fed by [`ArtifactEvent`]s.
//!
//! One row per live artifact version, stored as a struct of arrays (one `Vec` per fact) so a
//! sweep streams through contiguous memory. Rows are dense: a deletion moves the last row into
//! the hole (`swap_remove`) and fixes the id index.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use crate::artifacts::ArtifactEvent;
use crate::{ArtifactId, Micros};

/// Row flag: under legal hold.
pub const HELD: u8 = 1;
/// Row flag: the blob lives only in the archive.
pub const ARCHIVED: u8 = 2;

/// A fast hasher for `u64` ids (Fibonacci multiply, high bits folded down).
#[derive(Default, Clone, Copy)]
pub struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(*b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
    fn write_u64(&mut self, n: u64) {
        let h = n.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        self.0 = h ^ (h >> 29);
    }
}

/// Map keyed by artifact id.
pub type IdMap<V> = HashMap<ArtifactId, V, BuildHasherDefault<IdHasher>>;

/// Facts about every live artifact version, column by column.
#[derive(Debug, Default, Clone)]
pub struct Facts {
    /// Artifact id of each row.
    pub ids: Vec<ArtifactId>,
    /// Plaintext size.
    pub size: Vec<u64>,
    /// Interned kind.
    pub kind: Vec<u32>,
    /// When stored.
    pub created: Vec<Micros>,
    /// Last read (or `created` if never read).
    pub last_access: Vec<Micros>,
    /// Mean of the structure, semantics and utility scores (0 until scored).
    pub quality: Vec<f32>,
    /// Times used as an input.
    pub reuse: Vec<u32>,
    /// Successful runs in its lineage.
    pub successes: Vec<u32>,
    /// [`HELD`] | [`ARCHIVED`].
    pub flags: Vec<u8>,
    /// Row of each id.
    pub index: IdMap<u32>,
    /// Live rows per kind (diversity).
    pub kind_counts: Vec<u32>,
}

impl Facts {
    /// Number of live artifacts.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// The row of `id`.
    pub fn row(&self, id: ArtifactId) -> Option<usize> {
        self.index.get(&id).map(|r| *r as usize)
    }

    /// Reserve room for `n` more rows.
    pub fn reserve(&mut self, n: usize) {
        self.ids.reserve(n);
        self.size.reserve(n);
        self.kind.reserve(n);
        self.created.reserve(n);
        self.last_access.reserve(n);
        self.quality.reserve(n);
        self.reuse.reserve(n);
        self.successes.reserve(n);
        self.flags.reserve(n);
        self.index.reserve(n);
    }

    fn count_kind(&mut self, kind: u32, up: bool) {
        let k = kind as usize;
        if k >= self.kind_counts.len() {
            self.kind_counts.resize(k + 1, 0);
        }
        if up {
            self.kind_counts[k] += 1;
        } else {
            self.kind_counts[k] = self.kind_counts[k].saturating_sub(1);
        }
    }

    /// Apply one event. Events about unknown ids (other than `Stored`) are ignored.
    pub fn apply(&mut self, event: &ArtifactEvent) {
        match *event {
            ArtifactEvent::Stored {
                id,
                size,
                kind,
                created,
            } => {
                if let Some(r) = self.row(id) {
                    let old = self.kind[r];
                    self.count_kind(old, false);
                    self.count_kind(kind, true);
                    self.size[r] = size;
                    self.kind[r] = kind;
                    self.created[r] = created;
                    self.last_access[r] = self.last_access[r].max(created);
                    return;
                }
                self.index.insert(id, self.ids.len() as u32);
                self.ids.push(id);
                self.size.push(size);
                self.kind.push(kind);
                self.created.push(created);
                self.last_access.push(created);
                self.quality.push(0.0);
                self.reuse.push(0);
                self.successes.push(0);
                self.flags.push(0);
                self.count_kind(kind, true);
            }
            ArtifactEvent::Read { id, at } => {
                if let Some(r) = self.row(id) {
                    self.last_access[r] = self.last_access[r].max(at);
                }
            }
            ArtifactEvent::Quality {
                id,
                structure,
                semantics,
                utility,
            } => {
                if let Some(r) = self.row(id) {
                    let q = (clamp01(structure) + clamp01(semantics) + clamp01(utility)) / 3.0;
                    self.quality[r] = q;
                }
            }
            ArtifactEvent::Reused { id, count } => {
                if let Some(r) = self.row(id) {
                    self.reuse[r] = count;
                }
            }
            ArtifactEvent::RunOutcome { id, successes } => {
                if let Some(r) = self.row(id) {
                    self.successes[r] = successes;
                }
            }
            ArtifactEvent::Held { id, held } => self.set_flag(id, HELD, held),
            ArtifactEvent::Archived { id, archived } => self.set_flag(id, ARCHIVED, archived),
            ArtifactEvent::Deleted { id } => self.remove(id),
        }
    }

    fn set_flag(&mut self, id: ArtifactId, flag: u8, on: bool) {
        if let Some(r) = self.row(id) {
            if on {
                self.flags[r] |= flag;
            } else {
                self.flags[r] &= !flag;
            }
        }
    }

    fn remove(&mut self, id: ArtifactId) {
        let Some(r) = self.index.remove(&id) else {
            return;
        };
        let r = r as usize;
        let kind = self.kind[r];
        self.count_kind(kind, false);
        let last = self.ids.len() - 1;
        self.ids.swap_remove(r);
        self.size.swap_remove(r);
        self.kind.swap_remove(r);
        self.created.swap_remove(r);
        self.last_access.swap_remove(r);
        self.quality.swap_remove(r);
        self.reuse.swap_remove(r);
        self.successes.swap_remove(r);
        self.flags.swap_remove(r);
        if r != last {
            self.index.insert(self.ids[r], r as u32);
        }
    }

    /// Whether row `r` has `flag`.
    #[inline]
    pub fn has(&self, r: usize, flag: u8) -> bool {
        self.flags[r] & flag != 0
    }
}

fn clamp01(x: f32) -> f32 {
    if x.is_nan() {
        0.0
    } else {
        x.clamp(0.0, 1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(id: u64, kind: u32) -> ArtifactEvent {
        ArtifactEvent::Stored {
            id,
            size: id * 10,
            kind,
            created: 100,
        }
    }

    #[test]
    fn events_build_rows_and_deletes_keep_the_index_dense() {
        let mut f = Facts::default();
        for id in 1..=5 {
            f.apply(&stored(id, (id % 2) as u32));
        }
        assert_eq!(f.kind_counts, vec![2, 3]);
        f.apply(&ArtifactEvent::Quality {
            id: 2,
            structure: 1.0,
            semantics: 0.5,
            utility: f32::NAN,
        });
        f.apply(&ArtifactEvent::Reused { id: 2, count: 4 });
        f.apply(&ArtifactEvent::RunOutcome {
            id: 2,
            successes: 3,
        });
        f.apply(&ArtifactEvent::Read { id: 2, at: 50 });
        f.apply(&ArtifactEvent::Read { id: 2, at: 500 });
        f.apply(&ArtifactEvent::Held { id: 2, held: true });
        f.apply(&ArtifactEvent::Archived {
            id: 2,
            archived: true,
        });
        f.apply(&ArtifactEvent::Deleted { id: 1 });
        f.apply(&ArtifactEvent::Deleted { id: 99 });
        f.apply(&ArtifactEvent::Read { id: 99, at: 1 });
        assert_eq!(f.len(), 4);
        assert_eq!(f.kind_counts, vec![2, 2]);
        let r = f.row(2).unwrap();
        assert!((f.quality[r] - 0.5).abs() < 1e-6);
        assert_eq!((f.reuse[r], f.successes[r], f.last_access[r]), (4, 3, 500));
        assert!(f.has(r, HELD) && f.has(r, ARCHIVED));
        f.apply(&ArtifactEvent::Held { id: 2, held: false });
        assert!(!f.has(r, HELD));
        for (i, id) in f.ids.iter().enumerate() {
            assert_eq!(f.row(*id), Some(i));
        }
        // Stored again for a known id updates the row in place.
        f.apply(&stored(3, 7));
        assert_eq!(f.len(), 4);
        assert_eq!(f.kind_counts[7], 1);
        assert!(!f.is_empty());
        let mut h = IdHasher::default();
        h.write(b"ab");
        assert_ne!(h.finish(), 0);
    }
}

#[cfg(test)]
mod props {
    use proptest::prelude::*;

    use super::*;
    use crate::stale::classify;

    fn event() -> impl Strategy<Value = ArtifactEvent> {
        let id = 0u64..20;
        prop_oneof![
            (id.clone(), 0u64..1000, 0u32..5, 0u64..100).prop_map(|(id, size, kind, created)| {
                ArtifactEvent::Stored {
                    id,
                    size,
                    kind,
                    created,
                }
            }),
            (id.clone(), 0u64..200).prop_map(|(id, at)| ArtifactEvent::Read { id, at }),
            (id.clone(), -1.0f32..2.0, 0.0f32..1.0, 0.0f32..1.0).prop_map(|(id, a, b, c)| {
                ArtifactEvent::Quality {
                    id,
                    structure: a,
                    semantics: b,
                    utility: c,
                }
            }),
            (id.clone(), any::<u32>()).prop_map(|(id, count)| ArtifactEvent::Reused { id, count }),
            (id.clone(), any::<u32>())
                .prop_map(|(id, successes)| ArtifactEvent::RunOutcome { id, successes }),
            (id.clone(), any::<bool>()).prop_map(|(id, held)| ArtifactEvent::Held { id, held }),
            (id.clone(), any::<bool>())
                .prop_map(|(id, archived)| ArtifactEvent::Archived { id, archived }),
            id.prop_map(|id| ArtifactEvent::Deleted { id }),
        ]
    }

    proptest! {
        /// Any event sequence keeps the columns aligned, the index exact, the kind counts equal
        /// to a recount, and every value inside 0..=1.
        #[test]
        fn facts_stay_consistent(events in proptest::collection::vec(event(), 0..200)) {
            let mut f = Facts::default();
            for e in &events {
                f.apply(e);
            }
            let n = f.len();
            for col in [f.size.len(), f.kind.len(), f.created.len(), f.last_access.len(),
                        f.quality.len(), f.reuse.len(), f.successes.len(), f.flags.len()] {
                prop_assert_eq!(col, n);
            }
            prop_assert_eq!(f.index.len(), n);
            for (r, id) in f.ids.iter().enumerate() {
                prop_assert_eq!(f.row(*id), Some(r));
                prop_assert!(f.last_access[r] >= f.created[r]);
                let v = classify::row_value(&f, r);
                prop_assert!((0.0..=1.0 + 1e-6).contains(&v), "{}", v);
            }
            for (k, c) in f.kind_counts.iter().enumerate() {
                let recount = f.kind.iter().filter(|x| **x as usize == k).count();
                prop_assert_eq!(*c as usize, recount);
            }
        }
    }
}
