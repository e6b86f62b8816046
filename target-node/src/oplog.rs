//! The oplog: every accepted write becomes one [`Entry`] at a (term, index)
//! position, and a node's state is its oplog applied in order.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::api::{LogPosition, NodeId};

/// One write inside a transaction entry.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TxnWrite {
    /// The key written.
    pub key: String,
    /// True for an append of `value` to the list at `key`, false for a write.
    pub append: bool,
    /// The value written or appended.
    pub value: Value,
}

/// What an entry does to the store.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "op")]
pub enum Op {
    /// Written by a new primary at the start of its term, so that it can
    /// commit (and confirm reads) in that term.
    Noop,
    /// Set the key to the value (also what a successful cas becomes).
    Put {
        /// The key.
        key: String,
        /// The value.
        value: Value,
    },
    /// Append the value to the list at the key (a missing key is `[]`).
    Append {
        /// The key.
        key: String,
        /// The element.
        value: Value,
    },
    /// The writes of one transaction, applied together.
    Txn {
        /// The writes, in order.
        writes: Vec<TxnWrite>,
    },
}

/// One oplog entry.
///
/// `origin` is the node that created it; two primaries of the same term
/// (possible with the bully election) create entries with different
/// origins, so (term, origin) identifies who wrote an entry at an index.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// Term of the primary that created it (0 in multi-primary topology).
    pub term: u64,
    /// Position in the oplog of its origin, from 1.
    pub index: u64,
    /// The node that created it.
    pub origin: NodeId,
    /// The origin's clock when it was created (ms since the Unix epoch); the
    /// last-write-wins timestamp in multi-primary topology.
    pub ts_ms: u64,
    /// What it does.
    pub op: Op,
}

impl Entry {
    /// Whether `self` and `other` were written by the same primary in the
    /// same term (and so, at one index, are the same entry).
    pub fn same_author(&self, term: u64, origin: &NodeId) -> bool {
        self.term == term && &self.origin == origin
    }
}

/// An in-memory oplog whose first entry has index 1.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Oplog {
    entries: Vec<Entry>,
}

impl Oplog {
    /// An oplog holding `entries`, which must be numbered 1, 2, 3...
    pub fn from_entries(entries: Vec<Entry>) -> Self {
        debug_assert!(entries
            .iter()
            .enumerate()
            .all(|(i, e)| e.index == i as u64 + 1));
        Oplog { entries }
    }

    /// Index of the last entry (0 when empty).
    pub fn last_index(&self) -> u64 {
        self.entries.len() as u64
    }

    /// Position of the last entry.
    pub fn last_position(&self) -> LogPosition {
        self.entries
            .last()
            .map(|e| LogPosition {
                term: e.term,
                index: e.index,
            })
            .unwrap_or_default()
    }

    /// The entry at `index`, if any.
    pub fn get(&self, index: u64) -> Option<&Entry> {
        index
            .checked_sub(1)
            .and_then(|i| self.entries.get(i as usize))
    }

    /// Term of the entry at `index` (0 for index 0 or past the end).
    pub fn term_at(&self, index: u64) -> u64 {
        self.get(index).map_or(0, |e| e.term)
    }

    /// Up to `max` entries starting at `from`.
    pub fn slice(&self, from: u64, max: usize) -> &[Entry] {
        let start = (from.max(1) - 1) as usize;
        if start >= self.entries.len() {
            return &[];
        }
        let end = start.saturating_add(max).min(self.entries.len());
        &self.entries[start..end]
    }

    /// All entries.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// Appends an entry; its index must be `last_index() + 1`.
    pub fn push(&mut self, entry: Entry) {
        debug_assert_eq!(entry.index, self.last_index() + 1);
        self.entries.push(entry);
    }

    /// Removes and returns the entries from `index` on.
    pub fn truncate_from(&mut self, index: u64) -> Vec<Entry> {
        let keep = (index.max(1) - 1) as usize;
        if keep >= self.entries.len() {
            return Vec::new();
        }
        self.entries.split_off(keep)
    }

    /// The first index of the run of entries by the same author that
    /// contains `index` (used as a hint to skip a divergent run at once).
    pub fn first_of_run(&self, index: u64) -> u64 {
        let Some(entry) = self.get(index) else {
            return index;
        };
        let mut first = index;
        while first > 1
            && self
                .get(first - 1)
                .is_some_and(|e| e.same_author(entry.term, &entry.origin))
        {
            first -= 1;
        }
        first
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(term: u64, index: u64) -> Entry {
        Entry {
            term,
            index,
            origin: "n1".into(),
            ts_ms: 0,
            op: Op::Noop,
        }
    }

    #[test]
    fn slices_and_truncates() {
        let mut log = Oplog::from_entries(
            (1..=5)
                .map(|i| entry(if i < 3 { 1 } else { 2 }, i))
                .collect(),
        );
        assert_eq!(log.slice(4, 10).len(), 2);
        assert_eq!(log.slice(6, 10).len(), 0);
        // `usize::MAX` means "to the end" (a rollback rebuilds the state from
        // the commit index that way); it must not overflow.
        assert_eq!(log.slice(4, usize::MAX).len(), 2);
        assert_eq!(log.slice(1, usize::MAX).len(), 5);
        assert_eq!(log.first_of_run(5), 3);
        assert_eq!(log.term_at(0), 0);
        let removed = log.truncate_from(4);
        assert_eq!(removed.len(), 2);
        assert_eq!(log.last_position(), LogPosition { term: 2, index: 3 });
    }
}
