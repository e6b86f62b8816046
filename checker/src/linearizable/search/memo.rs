//! The memo table of the search: the configurations (linearized set, model
//! state) already explored, or being explored on the current path.
//!
//! A linearized set comes in two parts: the encoded `ok` ops (`key`) and a
//! bitset of indeterminate ops (`info`, the same length for every entry).
//! Entries are grouped by (`key`, state): the hash of those chooses the
//! bucket, and a group is found only when its `key` words and state are equal
//! in full, so a hash collision can never prune a branch. Within a group, a
//! new configuration is pruned when a recorded `info` set is a subset of its
//! own: that configuration dominates it (see `super`).
//!
//! Keys, info sets and states live back to back in arenas: inserting
//! allocates only when an arena grows (amortised), and a lookup never does.

use std::mem::size_of;

const EMPTY: u32 = u32::MAX;

/// What [`Memo::insert`] did.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Insert {
    /// The configuration is new and is now recorded.
    New,
    /// It, or a configuration that dominates it, was recorded before.
    Seen,
    /// Recording it would pass the memory cap.
    Full,
}

/// One (`key`, state) group.
struct Group {
    key_start: u32,
    key_len: u32,
    /// Head of the group's list of info sets (an index into `info_next`).
    first_info: u32,
}

pub(crate) struct Memo<S> {
    /// Open addressing, linear probing: (hash, group) per slot.
    slots: Vec<(u64, u32)>,
    groups: Vec<Group>,
    states: Vec<S>,
    keys: Vec<u64>,
    /// Info sets, `info_words` each, and the next set of the same group.
    infos: Vec<u64>,
    info_next: Vec<u32>,
    info_words: usize,
    cap_bytes: usize,
}

impl<S: Eq + Clone> Memo<S> {
    pub(crate) fn new(cap_bytes: usize, info_words: usize, expected: usize) -> Self {
        let expected = expected.clamp(16, 1 << 16);
        Memo {
            slots: vec![(0, EMPTY); (expected * 2).next_power_of_two()],
            groups: Vec::with_capacity(expected),
            states: Vec::with_capacity(expected),
            keys: Vec::with_capacity(expected * 2),
            infos: Vec::with_capacity(expected * info_words),
            info_next: Vec::with_capacity(expected),
            info_words,
            cap_bytes,
        }
    }

    /// Number of configurations recorded.
    pub(crate) fn len(&self) -> usize {
        self.info_next.len()
    }

    /// Bytes held by the table, its arenas and the states' inline parts.
    pub(crate) fn bytes(&self) -> usize {
        self.slots.capacity() * size_of::<(u64, u32)>()
            + self.groups.capacity() * size_of::<Group>()
            + self.states.capacity() * size_of::<S>()
            + (self.keys.capacity() + self.infos.capacity()) * size_of::<u64>()
            + self.info_next.capacity() * size_of::<u32>()
    }

    /// Records (`key`, `info`, `state`) unless it or a dominating entry is there.
    #[inline]
    pub(crate) fn insert(&mut self, hash: u64, key: &[u64], info: &[u64], state: &S) -> Insert {
        debug_assert_eq!(info.len(), self.info_words);
        let mask = self.slots.len() - 1;
        let mut i = bucket(hash, mask);
        loop {
            let (h, group) = self.slots[i];
            if group == EMPTY {
                break;
            }
            if h == hash && self.same_group(group, key, state) {
                if self.dominated(group, info) {
                    return Insert::Seen;
                }
                if self.arena_full(0) && !self.fits(0, 0) {
                    return Insert::Full;
                }
                self.push_info(group, info);
                return Insert::New;
            }
            i = (i + 1) & mask;
        }
        if (self.groups.len() + 1) * 4 > self.slots.len() * 3 {
            if !self.fits(self.slots.len() * size_of::<(u64, u32)>(), key.len()) {
                return Insert::Full;
            }
            self.grow();
            return self.insert(hash, key, info, state);
        }
        if self.arena_full(key.len()) && !self.fits(0, key.len()) {
            return Insert::Full;
        }
        let group = self.groups.len() as u32;
        self.groups.push(Group {
            key_start: self.keys.len() as u32,
            key_len: key.len() as u32,
            first_info: EMPTY,
        });
        self.keys.extend_from_slice(key);
        self.states.push(state.clone());
        self.push_info(group, info);
        self.slots[i] = (hash, group);
        Insert::New
    }

    #[inline]
    fn same_group(&self, group: u32, key: &[u64], state: &S) -> bool {
        let g = &self.groups[group as usize];
        let start = g.key_start as usize;
        g.key_len as usize == key.len()
            && self.keys[start..start + key.len()] == *key
            && self.states[group as usize] == *state
    }

    /// Whether some recorded info set of `group` is a subset of `info`.
    #[inline]
    fn dominated(&self, group: u32, info: &[u64]) -> bool {
        let mut at = self.groups[group as usize].first_info;
        while at != EMPTY {
            let start = at as usize * self.info_words;
            let recorded = &self.infos[start..start + self.info_words];
            if recorded.iter().zip(info).all(|(r, i)| r & !i == 0) {
                return true;
            }
            at = self.info_next[at as usize];
        }
        false
    }

    fn push_info(&mut self, group: u32, info: &[u64]) {
        let at = self.info_next.len() as u32;
        self.infos.extend_from_slice(info);
        let g = &mut self.groups[group as usize];
        self.info_next.push(g.first_info);
        g.first_info = at;
    }

    /// Whether recording one more entry (with a new group of `key_words`
    /// key words when `key_words > 0`) grows an arena. While none grows,
    /// the table stays at its size, which was within the cap.
    #[inline]
    fn arena_full(&self, key_words: usize) -> bool {
        fn full<T>(v: &Vec<T>, more: usize) -> bool {
            v.len() + more > v.capacity()
        }
        let new_group = usize::from(key_words > 0);
        full(&self.groups, new_group)
            || full(&self.states, new_group)
            || full(&self.keys, key_words)
            || full(&self.infos, self.info_words)
            || full(&self.info_next, 1)
    }

    /// Whether one more entry (a new group with `key_words` key words when
    /// `key_words > 0`), plus `extra` bytes, stays within the cap, counting
    /// the doubling of any arena that is full.
    fn fits(&self, extra: usize, key_words: usize) -> bool {
        fn after<T>(v: &Vec<T>, more: usize) -> usize {
            if v.len() + more <= v.capacity() {
                v.capacity()
            } else {
                (v.capacity() * 2).max(v.len() + more)
            }
        }
        let new_group = usize::from(key_words > 0);
        let projected = self.slots.capacity() * size_of::<(u64, u32)>()
            + after(&self.groups, new_group) * size_of::<Group>()
            + after(&self.states, new_group) * size_of::<S>()
            + (after(&self.keys, key_words) + after(&self.infos, self.info_words))
                * size_of::<u64>()
            + after(&self.info_next, 1) * size_of::<u32>();
        projected + extra <= self.cap_bytes
    }

    fn grow(&mut self) {
        let new_len = self.slots.len() * 2;
        let mask = new_len - 1;
        let mut slots = vec![(0, EMPTY); new_len];
        for &(hash, group) in self.slots.iter().filter(|s| s.1 != EMPTY) {
            let mut i = bucket(hash, mask);
            while slots[i].1 != EMPTY {
                i = (i + 1) & mask;
            }
            slots[i] = (hash, group);
        }
        self.slots = slots;
    }
}

#[inline]
fn bucket(hash: u64, mask: usize) -> usize {
    (hash.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32) as usize & mask
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_hashes_with_different_keys_are_both_recorded() {
        let mut memo = Memo::new(1 << 20, 0, 0);
        assert_eq!(memo.insert(7, &[1, 2], &[], &0u32), Insert::New);
        assert_eq!(
            memo.insert(7, &[1, 3], &[], &0u32),
            Insert::New,
            "collision must not prune"
        );
        assert_eq!(
            memo.insert(7, &[1, 2], &[], &1u32),
            Insert::New,
            "same set, other state"
        );
        assert_eq!(memo.insert(7, &[1, 2], &[], &0u32), Insert::Seen);
        assert_eq!(memo.len(), 3);
    }

    #[test]
    fn a_recorded_entry_dominates_supersets_of_its_indeterminate_ops_only() {
        let mut memo = Memo::new(1 << 20, 1, 0);
        assert_eq!(memo.insert(7, &[1], &[0b0101], &0u32), Insert::New);
        assert_eq!(
            memo.insert(7, &[1], &[0b0111], &0u32),
            Insert::Seen,
            "superset"
        );
        assert_eq!(
            memo.insert(7, &[1], &[0b0001], &0u32),
            Insert::New,
            "subset"
        );
        assert_eq!(
            memo.insert(7, &[1], &[0b1000], &0u32),
            Insert::New,
            "disjoint"
        );
        assert_eq!(
            memo.insert(7, &[1], &[0b1111], &1u32),
            Insert::New,
            "other state"
        );
        assert_eq!(
            memo.insert(7, &[2], &[0b1111], &0u32),
            Insert::New,
            "other ok set"
        );
    }

    #[test]
    fn grows_past_its_first_size_and_keeps_every_entry() {
        let mut memo = Memo::new(1 << 30, 0, 0);
        for i in 0..10_000u64 {
            assert_eq!(memo.insert(i % 17, &[i], &[], &(i as u32)), Insert::New);
        }
        for i in 0..10_000u64 {
            assert_eq!(memo.insert(i % 17, &[i], &[], &(i as u32)), Insert::Seen);
        }
    }

    #[test]
    fn refuses_to_pass_its_memory_cap() {
        let mut memo = Memo::new(64 * 1024, 1, 0);
        let full = (0..100_000u64).find(|&i| memo.insert(i, &[i; 8], &[0], &0u32) == Insert::Full);
        assert!(full.is_some());
        assert!(memo.bytes() <= 64 * 1024);
    }
}
