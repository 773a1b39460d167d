//! The set of (group, string id) pairs behind `count_distinct_strings`.
//!
//! A stream's rows bring each string in a short run (an order's items, an
//! order's status events) and into few groups, so each id keeps its first
//! [`SLOTS`] groups inline, in a vector indexed by the id: checking a pair
//! reads one slot array the run has just touched. Only an id in more groups
//! than that puts the rest in a hash set. Ids are dense (interned in order),
//! so the vector has no holes.

use hashbrown::HashSet;

/// Groups kept inline per id: 16 bytes, four ids to a cache line.
const SLOTS: usize = 4;
const EMPTY: u32 = u32::MAX;

#[derive(Debug, Default)]
pub(super) struct PairSet {
    /// Each id's first groups, `EMPTY` after the last; filled front first.
    inline: Vec<[u32; SLOTS]>,
    /// `group << 32 | id` for an id's groups beyond its inline ones. An id
    /// has pairs here only while all its slots are full.
    spilled: HashSet<u64>,
}

impl PairSet {
    /// Adds (group, id); true if it was not there. `group` must be below
    /// `u32::MAX` (the caller checks).
    pub(super) fn insert(&mut self, group: u32, id: u32) -> bool {
        let at = id as usize;
        if at >= self.inline.len() {
            self.inline.resize(at + 1, [EMPTY; SLOTS]);
        }
        let slots = &mut self.inline[at];
        for slot in slots.iter_mut() {
            if *slot == group {
                return false;
            }
            if *slot == EMPTY {
                *slot = group;
                return true;
            }
        }
        self.spilled.insert(u64::from(group) << 32 | u64::from(id))
    }

    /// Room for `ids` more ids' slots.
    pub(super) fn reserve(&mut self, ids: usize) {
        self.inline.reserve(ids);
    }

    /// Every pair, as (group, id), in no particular order.
    pub(super) fn iter(&self) -> impl Iterator<Item = (u32, u32)> + '_ {
        let inline = self
            .inline
            .iter()
            .enumerate()
            .flat_map(|(id, slots)| slots.iter().take_while(|&&g| g != EMPTY).map(move |&g| (g, id as u32)));
        inline.chain(self.spilled.iter().map(|&pair| ((pair >> 32) as u32, pair as u32)))
    }

    /// Removes every pair of the groups below `emitted`, into `taken` when
    /// given, and moves the other groups down by `emitted`.
    pub(super) fn take_first(&mut self, emitted: u32, mut taken: Option<&mut Vec<(u32, u32)>>) {
        let old = std::mem::take(self);
        self.inline.reserve(old.inline.len());
        for (group, id) in old.iter() {
            if group >= emitted {
                self.insert(group - emitted, id);
            } else if let Some(taken) = taken.as_deref_mut() {
                taken.push((group, id));
            }
        }
    }

    /// Removes every pair, into `taken` when given.
    pub(super) fn take_all(&mut self, taken: Option<&mut Vec<(u32, u32)>>) {
        if let Some(taken) = taken {
            taken.extend(self.iter());
        }
        self.inline.clear();
        self.spilled.clear();
    }

    pub(super) fn size(&self) -> usize {
        self.inline.capacity() * SLOTS * 4 + self.spilled.capacity() * 9
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    fn sorted(pairs: &PairSet) -> Vec<(u32, u32)> {
        let mut all: Vec<_> = pairs.iter().collect();
        all.sort_unstable();
        all
    }

    proptest! {
        /// The same answers as a plain set, with ids in more groups than
        /// fit inline, and after the first groups are taken out.
        #[test]
        fn behaves_as_a_set(
            inserts in prop::collection::vec((0u32..9, 0u32..6), 0..120),
            more in prop::collection::vec((0u32..9, 0u32..6), 0..60),
            emitted in 0u32..10,
        ) {
            let (mut ours, mut model) = (PairSet::default(), BTreeSet::new());
            for &(group, id) in &inserts {
                prop_assert_eq!(ours.insert(group, id), model.insert((group, id)));
            }
            prop_assert_eq!(sorted(&ours), model.iter().copied().collect::<Vec<_>>());

            let mut taken = Vec::new();
            ours.take_first(emitted, Some(&mut taken));
            taken.sort_unstable();
            let expected: Vec<_> = model.iter().copied().filter(|&(g, _)| g < emitted).collect();
            prop_assert_eq!(taken, expected);
            let mut model: BTreeSet<_> =
                model.into_iter().filter(|&(g, _)| g >= emitted).map(|(g, id)| (g - emitted, id)).collect();
            prop_assert_eq!(sorted(&ours), model.iter().copied().collect::<Vec<_>>());
            for &(group, id) in &more {
                prop_assert_eq!(ours.insert(group, id), model.insert((group, id)));
            }
            prop_assert_eq!(sorted(&ours), model.iter().copied().collect::<Vec<_>>());

            let mut all = Vec::new();
            ours.take_all(Some(&mut all));
            all.sort_unstable();
            prop_assert_eq!(all, model.into_iter().collect::<Vec<_>>());
            prop_assert!(ours.iter().next().is_none());
        }
    }
}
