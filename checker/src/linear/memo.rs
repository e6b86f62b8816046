//! The memo table of the search: the set of (linearized set, model state)
//! configurations already explored.
//!
//! A configuration's hash only chooses the bucket. A hit needs the stored key
//! words (the encoded linearized set) and the state to be equal in full, so a
//! hash collision can never prune a branch. Keys live back to back in one
//! arena of words and states in one vector: inserting allocates only when an
//! arena grows (amortised), and a lookup never allocates.

use std::mem::size_of;

const EMPTY: u32 = u32::MAX;

/// What [`Memo::insert`] did.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Insert {
    /// The configuration is new and is now recorded.
    New,
    /// It was explored before.
    Seen,
    /// Recording it would pass the memory cap.
    Full,
}

pub(crate) struct Memo<S> {
    /// Open addressing, linear probing: (hash, entry) per slot.
    slots: Vec<(u64, u32)>,
    len: usize,
    words: Vec<u64>,
    spans: Vec<(u32, u32)>,
    states: Vec<S>,
    cap_bytes: usize,
}

impl<S: Eq> Memo<S> {
    pub(crate) fn new(cap_bytes: usize) -> Self {
        Memo {
            slots: vec![(0, EMPTY); 1024],
            len: 0,
            words: Vec::new(),
            spans: Vec::new(),
            states: Vec::new(),
            cap_bytes,
        }
    }

    /// Number of configurations recorded.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Bytes held by the table, its arenas and the states' inline parts.
    pub(crate) fn bytes(&self) -> usize {
        self.slots.capacity() * size_of::<(u64, u32)>()
            + self.words.capacity() * size_of::<u64>()
            + self.spans.capacity() * size_of::<(u32, u32)>()
            + self.states.capacity() * size_of::<S>()
    }

    /// Records (`key`, `state`) unless it is already there.
    #[inline]
    pub(crate) fn insert(&mut self, hash: u64, key: &[u64], state: &S) -> Insert
    where
        S: Clone,
    {
        let mask = self.slots.len() - 1;
        let mut i = bucket(hash, mask);
        loop {
            let (h, entry) = self.slots[i];
            if entry == EMPTY {
                break;
            }
            if h == hash && self.equal(entry, key, state) {
                return Insert::Seen;
            }
            i = (i + 1) & mask;
        }
        if (self.len + 1) * 4 > self.slots.len() * 3 {
            if self.bytes() + self.slots.len() * size_of::<(u64, u32)>() * 2 > self.cap_bytes {
                return Insert::Full;
            }
            self.grow();
            return self.insert(hash, key, state);
        }
        if !self.reserve(key.len()) {
            return Insert::Full;
        }
        let entry = self.states.len() as u32;
        self.spans.push((self.words.len() as u32, key.len() as u32));
        self.words.extend_from_slice(key);
        self.states.push(state.clone());
        self.slots[i] = (hash, entry);
        self.len += 1;
        Insert::New
    }

    /// Makes room for one more entry of `words` key words, doubling arenas as
    /// `Vec` would, unless that would pass the cap.
    fn reserve(&mut self, words: usize) -> bool {
        fn grown<T>(v: &Vec<T>, extra: usize) -> usize {
            if v.len() + extra <= v.capacity() {
                v.capacity()
            } else {
                (v.capacity() * 2).max(v.len() + extra).max(64)
            }
        }
        let (w, sp, st) = (
            grown(&self.words, words),
            grown(&self.spans, 1),
            grown(&self.states, 1),
        );
        let projected = self.slots.capacity() * size_of::<(u64, u32)>()
            + w * size_of::<u64>()
            + sp * size_of::<(u32, u32)>()
            + st * size_of::<S>();
        if projected > self.cap_bytes {
            return false;
        }
        self.words.reserve_exact(w - self.words.len());
        self.spans.reserve_exact(sp - self.spans.len());
        self.states.reserve_exact(st - self.states.len());
        true
    }

    #[inline]
    fn equal(&self, entry: u32, key: &[u64], state: &S) -> bool {
        let (start, len) = self.spans[entry as usize];
        let stored = &self.words[start as usize..(start + len) as usize];
        stored == key && self.states[entry as usize] == *state
    }

    fn grow(&mut self) {
        let new_len = self.slots.len() * 2;
        let mask = new_len - 1;
        let mut slots = vec![(0, EMPTY); new_len];
        for &(hash, entry) in self.slots.iter().filter(|s| s.1 != EMPTY) {
            let mut i = bucket(hash, mask);
            while slots[i].1 != EMPTY {
                i = (i + 1) & mask;
            }
            slots[i] = (hash, entry);
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
        let mut memo = Memo::new(1 << 20);
        assert_eq!(memo.insert(7, &[1, 2], &0u32), Insert::New);
        assert_eq!(
            memo.insert(7, &[1, 3], &0u32),
            Insert::New,
            "collision must not prune"
        );
        assert_eq!(
            memo.insert(7, &[1, 2], &1u32),
            Insert::New,
            "same set, other state"
        );
        assert_eq!(memo.insert(7, &[1, 2], &0u32), Insert::Seen);
        assert_eq!(memo.len(), 3);
    }

    #[test]
    fn grows_past_its_first_size_and_keeps_every_entry() {
        let mut memo = Memo::new(1 << 30);
        for i in 0..10_000u64 {
            assert_eq!(memo.insert(i % 17, &[i], &(i as u32)), Insert::New);
        }
        for i in 0..10_000u64 {
            assert_eq!(memo.insert(i % 17, &[i], &(i as u32)), Insert::Seen);
        }
    }

    #[test]
    fn refuses_to_pass_its_memory_cap() {
        let mut memo = Memo::new(64 * 1024);
        let full = (0..100_000u64).find(|&i| memo.insert(i, &[i; 8], &0u32) == Insert::Full);
        assert!(full.is_some());
        assert!(memo.bytes() <= 64 * 1024);
    }
}
