//! Reading `txn` ops into transactions: pairing (fails kept, unlike
//! [`crate::pair`], because G1a and dirty-update need them) and micro-ops.

use rustc_hash::FxHashMap;
use serde_json::Value;

use super::TxnError;
use crate::history::{Op, OpType, Process};

/// What we know of a transaction's fate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Status {
    /// Committed.
    Ok,
    /// Unknown (`info`, or never completed): may have committed.
    Info,
    /// Certainly aborted.
    Fail,
}

/// One micro-op. Reads borrow their list from the history; `None` is a read
/// whose result is unknown (an invocation's `null`).
#[derive(Clone, Copy, Debug)]
pub(crate) enum Mop<'h> {
    Append { key: u32, elem: i64 },
    Read { key: u32, list: Option<&'h [Value]> },
}

/// One transaction: its interval, process, fate and micro-ops.
#[derive(Clone, Debug)]
pub(crate) struct Txn<'h> {
    pub invoke: usize,
    pub complete: Option<usize>,
    pub process: u64,
    pub status: Status,
    pub mops: Vec<Mop<'h>>,
}

/// Keys interned to small ids, with their printable names.
#[derive(Default, Debug)]
pub(crate) struct Keys {
    by_name: FxHashMap<String, u32>,
    by_int: FxHashMap<i64, u32>,
    pub names: Vec<String>,
}

impl Keys {
    fn intern(&mut self, key: &Value) -> u32 {
        // Integer keys (Elle's) skip formatting and string hashing.
        if let Some(i) = key.as_i64() {
            if let Some(&id) = self.by_int.get(&i) {
                return id;
            }
            let id = self.add(i.to_string());
            self.by_int.insert(i, id);
            return id;
        }
        let name = match key {
            Value::String(s) => s.as_str(),
            _ => "",
        };
        if let Some(&id) = self.by_name.get(name) {
            return id;
        }
        let name = if name.is_empty() {
            key.to_string()
        } else {
            name.to_string()
        };
        if let Some(&id) = self.by_name.get(&name) {
            return id;
        }
        let id = self.add(name.clone());
        self.by_name.insert(name, id);
        id
    }

    fn add(&mut self, name: String) -> u32 {
        self.names.push(name);
        self.names.len() as u32 - 1
    }
}

/// An element of a read list (validated as an integer when parsed).
pub(crate) fn elem(v: &Value) -> i64 {
    v.as_i64().unwrap_or(i64::MIN)
}

/// The `txn` ops of `history` as transactions, ordered by invocation.
pub(crate) fn parse(history: &[Op]) -> Result<(Vec<Txn<'_>>, Keys), TxnError> {
    // First pair (keeping fails), then read each txn's micro-ops once: from
    // the completion when ok, from the invocation otherwise.
    let mut paired: Vec<(usize, Option<usize>, u64, Status)> = Vec::new();
    let mut outstanding: FxHashMap<u64, usize> = FxHashMap::default();
    for (index, op) in history.iter().enumerate() {
        let Process::Client(process) = op.process else {
            continue;
        };
        if op.f != "txn" {
            continue;
        }
        if op.op_type == OpType::Invoke {
            if outstanding.insert(process, paired.len()).is_some() {
                return Err(malformed(
                    index,
                    "a second txn invoked while one is outstanding",
                ));
            }
            paired.push((index, None, process, Status::Info));
            continue;
        }
        let Some(slot) = outstanding.remove(&process) else {
            return Err(malformed(
                index,
                "a txn completion with no outstanding invocation",
            ));
        };
        paired[slot].1 = Some(index);
        paired[slot].3 = match op.op_type {
            OpType::Ok => Status::Ok,
            OpType::Fail => Status::Fail,
            OpType::Info | OpType::Invoke => Status::Info,
        };
    }
    let mut keys = Keys::default();
    let mut txns = Vec::with_capacity(paired.len());
    for (invoke, complete, process, status) in paired {
        let source = match (status, complete) {
            (Status::Ok, Some(c)) => c,
            _ => invoke,
        };
        let mops = mops(
            &history[source].value,
            source,
            status == Status::Ok,
            &mut keys,
        )?;
        txns.push(Txn {
            invoke,
            complete,
            process,
            status,
            mops,
        });
    }
    Ok((txns, keys))
}

fn malformed(index: usize, message: impl Into<String>) -> TxnError {
    TxnError::Malformed {
        index,
        message: message.into(),
    }
}

/// Micro-ops of a txn value. In a completion (`ok`) a `null` read is the
/// empty list; in an invocation it is a read not yet performed.
fn mops<'h>(
    value: &'h Value,
    index: usize,
    completed: bool,
    keys: &mut Keys,
) -> Result<Vec<Mop<'h>>, TxnError> {
    let Some(list) = value.as_array() else {
        return Err(malformed(
            index,
            format!("a txn value must be a list of micro-ops, got {value}"),
        ));
    };
    list.iter()
        .map(|m| mop(m, index, completed, keys))
        .collect()
}

fn mop<'h>(
    m: &'h Value,
    index: usize,
    completed: bool,
    keys: &mut Keys,
) -> Result<Mop<'h>, TxnError> {
    let bad = || {
        malformed(
            index,
            format!("a micro-op is [\"append\"|\"r\", key, value], got {m}"),
        )
    };
    let [f, key, value] = m.as_array().map(Vec::as_slice).ok_or_else(bad)? else {
        return Err(bad());
    };
    let key = keys.intern(key);
    match f.as_str().ok_or_else(bad)? {
        "append" | "a" => {
            let elem = value.as_i64().ok_or_else(|| {
                malformed(
                    index,
                    format!("appended values must be integers, got {value}"),
                )
            })?;
            Ok(Mop::Append { key, elem })
        }
        "r" | "read" => {
            let list = match value {
                Value::Null if completed => Some(&[][..]),
                Value::Null => None,
                Value::Array(items) => {
                    if let Some(v) = items.iter().find(|v| v.as_i64().is_none()) {
                        return Err(malformed(
                            index,
                            format!("read elements must be integers, got {v}"),
                        ));
                    }
                    Some(items.as_slice())
                }
                _ => return Err(bad()),
            };
            Ok(Mop::Read { key, list })
        }
        _ => Err(bad()),
    }
}
