//! The key-value store an oplog is applied to, and the evaluation of
//! client operations against it (cas checks, appends, transactions).

use serde_json::Value;
use std::collections::HashMap;

use crate::api::{MicroF, MicroOp, NodeId};
use crate::oplog::{Entry, Op, TxnWrite};

/// A value with the version that wrote it (used by last-write-wins).
#[derive(Clone, Debug, PartialEq)]
pub struct Versioned {
    /// The value.
    pub value: Value,
    /// Timestamp of the entry that wrote it.
    pub ts_ms: u64,
    /// Origin of the entry that wrote it.
    pub origin: NodeId,
}

/// Keys to values. A missing key holds `null`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Store {
    keys: HashMap<String, Versioned>,
}

/// What executing a transaction against a store gives.
#[derive(Clone, Debug, PartialEq)]
pub struct TxnOutcome {
    /// The micro-ops with reads filled in.
    pub completed: Vec<MicroOp>,
    /// The writes, for the oplog.
    pub writes: Vec<TxnWrite>,
    /// The value of each written key after the transaction, in order of
    /// first write (what a last-write-wins replica logs).
    pub final_values: Vec<TxnWrite>,
}

impl Store {
    /// The value at `key` (`null` when missing).
    pub fn get(&self, key: &str) -> Value {
        self.keys.get(key).map_or(Value::Null, |v| v.value.clone())
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether the store holds no key.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Applies an entry in oplog order (primary topology).
    pub fn apply(&mut self, entry: &Entry) {
        for (key, append, value) in writes_of(&entry.op) {
            let new_value = if append {
                appended(&self.get(key), value)
            } else {
                Some(value.clone())
            };
            if let Some(new_value) = new_value {
                self.set(key, new_value, entry);
            }
        }
    }

    /// Applies an entry by last-write-wins (multi-primary topology): each
    /// write lands only if (timestamp, origin) is newer than the key's.
    pub fn apply_lww(&mut self, entry: &Entry) {
        for (key, append, value) in writes_of(&entry.op) {
            let newer = self
                .keys
                .get(key)
                .is_none_or(|old| (entry.ts_ms, &entry.origin) > (old.ts_ms, &old.origin));
            let new_value = if append {
                appended(&self.get(key), value)
            } else {
                Some(value.clone())
            };
            if let (true, Some(new_value)) = (newer, new_value) {
                self.set(key, new_value, entry);
            }
        }
    }

    fn set(&mut self, key: &str, value: Value, entry: &Entry) {
        let versioned = Versioned {
            value,
            ts_ms: entry.ts_ms,
            origin: entry.origin.clone(),
        };
        self.keys.insert(key.to_string(), versioned);
    }

    /// The list `key` holds after appending `element`, or why it cannot.
    pub fn append_result(&self, key: &str, element: &Value) -> Result<Value, String> {
        appended(&self.get(key), element)
            .ok_or_else(|| format!("key {key} holds a value that is not a list"))
    }

    /// Runs a transaction's micro-ops in order against this store (reads see
    /// the transaction's own earlier writes), without changing the store.
    pub fn execute_txn(&self, ops: &[MicroOp]) -> Result<TxnOutcome, String> {
        let mut overlay: HashMap<&str, Value> = HashMap::new();
        let mut outcome = TxnOutcome {
            completed: Vec::with_capacity(ops.len()),
            writes: Vec::new(),
            final_values: Vec::new(),
        };
        for MicroOp(f, key, value) in ops {
            let current = overlay
                .get(key.as_str())
                .cloned()
                .unwrap_or_else(|| self.get(key));
            match f {
                MicroF::Read => outcome.completed.push(MicroOp(*f, key.clone(), current)),
                MicroF::Write | MicroF::Append => {
                    let append = *f == MicroF::Append;
                    let new_value = if append {
                        appended(&current, value)
                            .ok_or_else(|| format!("append to non-list value at key {key}"))?
                    } else {
                        value.clone()
                    };
                    if overlay.insert(key, new_value).is_none() {
                        outcome.final_values.push(TxnWrite {
                            key: key.clone(),
                            append: false,
                            value: Value::Null,
                        });
                    }
                    outcome.writes.push(TxnWrite {
                        key: key.clone(),
                        append,
                        value: value.clone(),
                    });
                    outcome
                        .completed
                        .push(MicroOp(*f, key.clone(), value.clone()));
                }
            }
        }
        for write in &mut outcome.final_values {
            write.value = overlay[write.key.as_str()].clone();
        }
        Ok(outcome)
    }
}

/// `list` with `element` appended, if `list` is a list or `null`.
fn appended(list: &Value, element: &Value) -> Option<Value> {
    match list {
        Value::Null => Some(Value::Array(vec![element.clone()])),
        Value::Array(items) => {
            let mut items = items.clone();
            items.push(element.clone());
            Some(Value::Array(items))
        }
        _ => None,
    }
}

/// The (key, is append, value) writes of an op.
fn writes_of(op: &Op) -> Vec<(&str, bool, &Value)> {
    match op {
        Op::Noop => Vec::new(),
        Op::Put { key, value } => vec![(key.as_str(), false, value)],
        Op::Append { key, value } => vec![(key.as_str(), true, value)],
        Op::Txn { writes } => writes
            .iter()
            .map(|w| (w.key.as_str(), w.append, &w.value))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(origin: &str, ts_ms: u64, value: i64) -> Entry {
        let op = Op::Put {
            key: "k".into(),
            value: value.into(),
        };
        Entry {
            term: 0,
            index: 1,
            origin: origin.into(),
            ts_ms,
            op,
        }
    }

    #[test]
    fn last_write_wins_by_timestamp_then_node() {
        let mut store = Store::default();
        store.apply_lww(&put("n1", 10, 1));
        store.apply_lww(&put("n2", 5, 2));
        assert_eq!(store.get("k"), Value::from(1));
        store.apply_lww(&put("n2", 10, 3));
        assert_eq!(
            store.get("k"),
            Value::from(3),
            "same timestamp: higher node id wins"
        );
    }

    #[test]
    fn transactions_read_their_own_writes_and_fail_whole() {
        let store = Store::default();
        let ops: Vec<MicroOp> =
            serde_json::from_str(r#"[["append","x",1],["r","x",null],["w","y",2],["r","y",null]]"#)
                .unwrap();
        let outcome = store.execute_txn(&ops).unwrap();
        assert_eq!(outcome.completed[1].2, serde_json::json!([1]));
        assert_eq!(outcome.completed[3].2, Value::from(2));
        assert_eq!(outcome.writes.len(), 2);
        let bad: Vec<MicroOp> = serde_json::from_str(r#"[["w","x",1],["append","x",2]]"#).unwrap();
        assert!(store.execute_txn(&bad).is_err());
    }
}
