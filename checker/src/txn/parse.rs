//! Transactions in a compact form: keys interned to `u32`, micro-ops in one
//! flat arena, read lists shared, values as integers where they are.
//!
//! A history is read into [`Piece`]s (one per thread and chunk of input: see
//! [`super::load`]; or one for a whole `&[Op]`), merged in order, and then
//! paired into transactions ([`Piece::finish`], by [`crate::pair::Pairer`]'s
//! rule). Pairing keeps failed txns (unlike [`crate::pair::pair`]) because
//! G1a and dirty-update need them.
//!
//! # Read lists
//! With appends only, the reads of one key in a correct system are prefixes
//! of one another, so each key keeps one *canonical* list: a read that is a
//! prefix of it is stored as (list, length), and a read that extends it
//! extends it in place (every earlier prefix stays a prefix). Only a read
//! that diverges gets a list of its own. A million reads of lists of
//! hundreds of elements then cost a few bytes each.
//!
//! # Nulls
//! A read's `null` means "not yet read" in an invocation and "the key holds
//! nothing" in an `ok` completion; the micro-ops are parsed before the
//! op's type is known (fields come in any order), so `null` is kept as
//! unknown and turned into the empty list / nil once the txn is known to
//! have committed.

use rustc_hash::FxHashMap;
use serde_json::Value;

use crate::history::{Op, OpType, Process};
use crate::pair::Pairer;

/// Which micro-ops a history holds, and so which analysis applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TxnWorkload {
    /// `["append", k, v]` and `["r", k, [v ...]]` (Elle's `list-append`).
    ListAppend,
    /// `["w", k, v]` and `["r", k, v]` (Elle's `rw-register`).
    RwRegister,
}

impl TxnWorkload {
    /// The checker's name: `list-append` or `rw-register`.
    pub fn name(self) -> &'static str {
        match self {
            TxnWorkload::ListAppend => "list-append",
            TxnWorkload::RwRegister => "rw-register",
        }
    }
}

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

/// A register value: an integer, or any other JSON scalar interned (its
/// JSON text is `TxnHistory::values[id]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Val {
    Int(i64),
    Other(u32),
}

/// What a register read returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Seen {
    /// Not known (an invocation's `null`).
    Unknown,
    /// The key held nothing (an `ok` completion's `null`).
    Nil,
    /// A value.
    Value(Val),
}

/// A read list: the first `len` elements of list number `list`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ListRef {
    pub list: u32,
    pub len: u32,
}

/// The empty list (any list id: a length of 0 never looks at it).
pub(crate) const EMPTY: ListRef = ListRef { list: 0, len: 0 };

/// One micro-op. `Read::list` is `None` when unknown.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Mop {
    Append { key: u32, elem: i64 },
    Read { key: u32, list: Option<ListRef> },
    Write { key: u32, value: Val },
    Get { key: u32, value: Seen },
}

impl Mop {
    pub fn key(&self) -> u32 {
        match *self {
            Mop::Append { key, .. }
            | Mop::Read { key, .. }
            | Mop::Write { key, .. }
            | Mop::Get { key, .. } => key,
        }
    }
}

/// One transaction: its interval, process, fate and micro-ops.
#[derive(Clone, Debug)]
pub(crate) struct Txn {
    pub invoke: usize,
    pub complete: Option<usize>,
    pub process: u64,
    pub status: Status,
    pub time: Option<u64>,
    mops: (u32, u32),
}

/// A transactional history, compact: what the checker analyses. Build it
/// from ops ([`TxnHistory::from_ops`]) or straight from a JSONL file
/// ([`TxnHistory::read_file`]), which never holds the generic ops.
#[derive(Debug)]
pub struct TxnHistory {
    pub(crate) workload: TxnWorkload,
    pub(crate) txns: Vec<Txn>,
    mops: Vec<Mop>,
    lists: Vec<Vec<i64>>,
    pub(crate) keys: Vec<String>,
    pub(crate) values: Vec<String>,
    ops: usize,
}

impl TxnHistory {
    /// Reads the `txn` ops of `history`.
    pub fn from_ops(history: &[Op], workload: TxnWorkload) -> Result<TxnHistory, super::TxnError> {
        let mut piece = Piece::new(workload, 1);
        for (index, op) in history.iter().enumerate() {
            piece
                .push_op(op)
                .map_err(|message| super::TxnError::Malformed { index, message })?;
        }
        piece
            .finish()
            .map_err(|(e, message)| super::TxnError::Malformed {
                index: e.index,
                message,
            })
    }

    /// Which micro-ops it holds.
    pub fn workload(&self) -> TxnWorkload {
        self.workload
    }

    /// Ops in the history (all of them, not only txns).
    pub fn ops(&self) -> usize {
        self.ops
    }

    /// The `time` of the invocation at history index `index`, if that is a
    /// txn's invocation that carried one.
    pub fn invoke_time(&self, index: u64) -> Option<u64> {
        let i = self
            .txns
            .binary_search_by_key(&(index as usize), |t| t.invoke)
            .ok()?;
        self.txns[i].time
    }

    pub(crate) fn mops(&self, t: &Txn) -> &[Mop] {
        &self.mops[t.mops.0 as usize..(t.mops.0 + t.mops.1) as usize]
    }

    pub(crate) fn list(&self, r: ListRef) -> &[i64] {
        match r.len {
            0 => &[],
            n => &self.lists[r.list as usize][..n as usize],
        }
    }

    /// A register value as written in the history.
    pub(crate) fn show(&self, v: Val) -> String {
        match v {
            Val::Int(i) => i.to_string(),
            Val::Other(id) => self.values[id as usize].clone(),
        }
    }
}

/// One txn event (invocation or completion) of a piece.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Event {
    /// History index (position among all ops).
    pub index: usize,
    /// 1-based line in the source, for errors.
    pub line: usize,
    process: u64,
    op_type: OpType,
    time: Option<u64>,
    mops: (u32, u32),
}

/// Names interned to ids; integer names skip formatting.
#[derive(Default, Debug)]
struct Interner {
    by_name: FxHashMap<String, u32>,
    by_int: FxHashMap<i64, u32>,
    names: Vec<String>,
}

impl Interner {
    fn name(&mut self, name: &str) -> u32 {
        if let Some(&id) = self.by_name.get(name) {
            return id;
        }
        let id = self.names.len() as u32;
        self.names.push(name.to_string());
        self.by_name.insert(name.to_string(), id);
        id
    }

    fn int(&mut self, i: i64) -> u32 {
        if let Some(&id) = self.by_int.get(&i) {
            return id;
        }
        let id = self.name(&i.to_string());
        self.by_int.insert(i, id);
        id
    }
}

/// Part of a history as read so far: events, micro-ops and read lists, with
/// its own key and value ids until merged ([`Piece::absorb`]).
#[derive(Debug)]
pub(crate) struct Piece {
    workload: TxnWorkload,
    pub events: Vec<Event>,
    mops: Vec<Mop>,
    keys: Interner,
    values: Interner,
    lists: Vec<Vec<i64>>,
    /// The key of each list.
    list_key: Vec<u32>,
    /// Each key's canonical list, or `u32::MAX`.
    canonical: Vec<u32>,
    /// Ops seen (txns or not).
    pub ops: usize,
    /// Line number of the next line.
    pub next_line: usize,
    /// Scratch for a read list being parsed.
    pub scratch: Vec<i64>,
}

impl Piece {
    pub fn new(workload: TxnWorkload, first_line: usize) -> Piece {
        Piece {
            workload,
            events: Vec::new(),
            mops: Vec::new(),
            keys: Interner::default(),
            values: Interner::default(),
            lists: Vec::new(),
            list_key: Vec::new(),
            canonical: Vec::new(),
            ops: 0,
            next_line: first_line,
            scratch: Vec::new(),
        }
    }

    pub fn workload(&self) -> TxnWorkload {
        self.workload
    }

    /// Records one op (the line number advances by one): a client `txn` op
    /// becomes an event with its micro-ops, a nemesis op only counts, and
    /// any other client op is an error.
    fn push_op(&mut self, op: &Op) -> Result<(), String> {
        let line = self.next_line;
        self.next_line += 1;
        let index = self.ops;
        self.ops += 1;
        let Process::Client(process) = op.process else {
            return Ok(());
        };
        if op.f != "txn" {
            return Err(not_a_txn(&op.f));
        }
        let start = self.mops.len();
        // A fail or info completion's value is never used (the invocation's is).
        if !matches!(op.op_type, OpType::Info | OpType::Fail) {
            self.value_mops(&op.value)?;
        }
        self.push_event(index, line, process, op.op_type, op.time, start);
        Ok(())
    }

    /// An event whose micro-ops are those pushed since `mops_start`.
    pub fn push_event(
        &mut self,
        index: usize,
        line: usize,
        process: u64,
        op_type: OpType,
        time: Option<u64>,
        mops_start: usize,
    ) {
        let mops = (mops_start as u32, (self.mops.len() - mops_start) as u32);
        self.events.push(Event {
            index,
            line,
            process,
            op_type,
            time,
            mops,
        });
    }

    pub fn mops_len(&self) -> usize {
        self.mops.len()
    }

    /// Drops micro-ops pushed since `start` (of a value that was not a txn's).
    pub fn truncate_mops(&mut self, start: usize) {
        self.mops.truncate(start);
    }

    /// Micro-ops of a txn value held as a generic JSON value.
    pub fn value_mops(&mut self, value: &Value) -> Result<(), String> {
        let Some(list) = value.as_array() else {
            return Err(format!(
                "field `value`: a txn value is a list of micro-ops, got {value}"
            ));
        };
        for (i, m) in list.iter().enumerate() {
            self.value_mop(m)
                .map_err(|e| format!("field `value`: micro-op {}: {e}", i + 1))?;
        }
        Ok(())
    }

    fn value_mop(&mut self, m: &Value) -> Result<(), String> {
        let shape = || format!("a micro-op is [f, key, value], got {m}");
        let Some([f, key, value]) = m.as_array().map(Vec::as_slice) else {
            return Err(shape());
        };
        let f = self.mop_kind(f.as_str().ok_or_else(shape)?)?;
        let key = match key {
            Value::String(s) => self.key_str(s),
            Value::Number(n) if n.as_i64().is_some() => self.key_int(n.as_i64().unwrap_or(0)),
            other => return Err(format!("keys are strings or integers, got {other}")),
        };
        match (f, value) {
            (MopKind::Append, v) => {
                let elem = v
                    .as_i64()
                    .ok_or_else(|| format!("appended values must be integers, got {v}"))?;
                self.push_append(key, elem);
            }
            (MopKind::Read, Value::Null) => self.push_read_null(key),
            (MopKind::Read, v) if self.workload == TxnWorkload::ListAppend => {
                let Some(items) = v.as_array() else {
                    return Err(format!("a read's value is a list or null, got {v}"));
                };
                let mut scratch = std::mem::take(&mut self.scratch);
                scratch.clear();
                for item in items {
                    scratch
                        .push(item.as_i64().ok_or_else(|| {
                            format!("read elements must be integers, got {item}")
                        })?);
                }
                self.push_read_list(key, &scratch);
                self.scratch = scratch;
            }
            (MopKind::Read, v) => {
                let value = self.json_val(v)?;
                self.push_get(key, Seen::Value(value));
            }
            (MopKind::Write, v) => {
                let value = self.json_val(v)?;
                self.push_write(key, value);
            }
        }
        Ok(())
    }

    fn json_val(&mut self, v: &Value) -> Result<Val, String> {
        match v {
            Value::Number(n) if n.as_i64().is_some() => Ok(Val::Int(n.as_i64().unwrap_or(0))),
            Value::Null => Err("a write of null: registers hold values".to_string()),
            Value::Array(_) | Value::Object(_) => {
                Err(format!("register values are scalars, got {v}"))
            }
            other => Ok(self.val_text(&other.to_string())),
        }
    }

    /// What a micro-op's function name means in this workload.
    pub fn mop_kind(&self, f: &str) -> Result<MopKind, String> {
        match (f, self.workload) {
            ("r" | "read", _) => Ok(MopKind::Read),
            ("append" | "a", TxnWorkload::ListAppend) => Ok(MopKind::Append),
            ("w" | "write", TxnWorkload::RwRegister) => Ok(MopKind::Write),
            ("append" | "a" | "w" | "write", w) => Err(format!(
                "{f:?} is not a {} micro-op (\"r\" and {})",
                w.name(),
                match w {
                    TxnWorkload::ListAppend => "\"append\"",
                    TxnWorkload::RwRegister => "\"w\"",
                }
            )),
            _ => Err(format!("unknown micro-op {f:?}")),
        }
    }

    pub fn key_str(&mut self, s: &str) -> u32 {
        self.keys.name(s)
    }

    pub fn key_int(&mut self, i: i64) -> u32 {
        self.keys.int(i)
    }

    /// A non-integer register value by its JSON text.
    pub fn val_text(&mut self, text: &str) -> Val {
        Val::Other(self.values.name(text))
    }

    pub fn push_append(&mut self, key: u32, elem: i64) {
        self.mops.push(Mop::Append { key, elem });
    }

    pub fn push_write(&mut self, key: u32, value: Val) {
        self.mops.push(Mop::Write { key, value });
    }

    pub fn push_get(&mut self, key: u32, value: Seen) {
        self.mops.push(Mop::Get { key, value });
    }

    /// A read whose value was `null`.
    pub fn push_read_null(&mut self, key: u32) {
        self.mops.push(match self.workload {
            TxnWorkload::ListAppend => Mop::Read { key, list: None },
            TxnWorkload::RwRegister => Mop::Get {
                key,
                value: Seen::Unknown,
            },
        });
    }

    /// A list read: shares the key's canonical list when it can (module docs).
    pub fn push_read_list(&mut self, key: u32, items: &[i64]) {
        let list = self.place_list(key, items);
        self.mops.push(Mop::Read {
            key,
            list: Some(ListRef {
                list,
                len: items.len() as u32,
            }),
        });
    }

    /// The id of a list that starts with `items`: the key's canonical one
    /// (extended if need be) or a new one.
    fn place_list(&mut self, key: u32, items: &[i64]) -> u32 {
        if self.canonical.len() <= key as usize {
            self.canonical.resize(key as usize + 1, u32::MAX);
        }
        let c = self.canonical[key as usize];
        if c != u32::MAX {
            let canon = &mut self.lists[c as usize];
            let shared = canon.len().min(items.len());
            if canon[..shared] == items[..shared] {
                if items.len() > canon.len() {
                    canon.extend_from_slice(&items[shared..]);
                }
                return c;
            }
        }
        let id = self.lists.len() as u32;
        self.lists.push(items.to_vec());
        self.list_key.push(key);
        if c == u32::MAX {
            self.canonical[key as usize] = id;
        }
        id
    }

    /// Appends a later piece: its ids are mapped onto this one's.
    pub fn absorb(&mut self, other: Piece) {
        let key_map: Vec<u32> = other.keys.names.iter().map(|k| self.keys.name(k)).collect();
        let value_map: Vec<u32> = other
            .values
            .names
            .iter()
            .map(|v| self.values.name(v))
            .collect();
        let mut list_map = Vec::with_capacity(other.lists.len());
        for (list, key) in other.lists.into_iter().zip(other.list_key) {
            list_map.push(self.place_list(key_map[key as usize], &list));
        }
        let mop_base = self.mops.len() as u32;
        let val = |v: Val| match v {
            Val::Other(id) => Val::Other(value_map[id as usize]),
            v => v,
        };
        self.mops.extend(other.mops.into_iter().map(|m| match m {
            Mop::Append { key, elem } => Mop::Append {
                key: key_map[key as usize],
                elem,
            },
            Mop::Read { key, list } => Mop::Read {
                key: key_map[key as usize],
                list: list.map(|l| ListRef {
                    list: list_map[l.list as usize],
                    len: l.len,
                }),
            },
            Mop::Write { key, value } => Mop::Write {
                key: key_map[key as usize],
                value: val(value),
            },
            Mop::Get { key, value } => Mop::Get {
                key: key_map[key as usize],
                value: match value {
                    Seen::Value(v) => Seen::Value(val(v)),
                    s => s,
                },
            },
        }));
        let index_base = self.ops;
        self.events.extend(other.events.into_iter().map(|e| Event {
            index: e.index + index_base,
            mops: (e.mops.0 + mop_base, e.mops.1),
            ..e
        }));
        self.ops += other.ops;
        self.next_line = other.next_line;
    }

    /// Pairs invocations with completions into txns, ordered by invocation.
    /// An error names the event at fault.
    pub fn finish(mut self) -> Result<TxnHistory, (Event, String)> {
        let mut txns: Vec<Txn> = Vec::new();
        let mut pairer = Pairer::new();
        for e in &self.events {
            if e.op_type == OpType::Invoke {
                if pairer.invoke(e.process, txns.len()).is_some() {
                    return Err((
                        *e,
                        format!(
                            "process {} invoked a second txn while one is outstanding",
                            e.process
                        ),
                    ));
                }
                txns.push(Txn {
                    invoke: e.index,
                    complete: None,
                    process: e.process,
                    status: Status::Info,
                    time: e.time,
                    mops: e.mops,
                });
                continue;
            }
            let Some(slot) = pairer.complete(e.process) else {
                return Err((
                    *e,
                    format!(
                        "a txn completion ({}) of process {} with no outstanding invocation",
                        e.op_type, e.process
                    ),
                ));
            };
            let t = &mut txns[slot];
            t.complete = Some(e.index);
            t.status = match e.op_type {
                OpType::Ok => Status::Ok,
                OpType::Fail => Status::Fail,
                OpType::Info | OpType::Invoke => Status::Info,
            };
            if t.status == Status::Ok {
                t.mops = e.mops;
            }
        }
        // A committed txn's null read saw nothing.
        for t in txns.iter().filter(|t| t.status == Status::Ok) {
            let range = t.mops.0 as usize..(t.mops.0 + t.mops.1) as usize;
            for m in &mut self.mops[range] {
                match m {
                    Mop::Read { list, .. } if list.is_none() => *list = Some(EMPTY),
                    Mop::Get { value, .. } if *value == Seen::Unknown => *value = Seen::Nil,
                    _ => {}
                }
            }
        }
        Ok(TxnHistory {
            workload: self.workload,
            txns,
            mops: self.mops,
            lists: self.lists,
            keys: self.keys.names,
            values: self.values.names,
            ops: self.ops,
        })
    }
}

/// A micro-op's function.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum MopKind {
    Append,
    Read,
    Write,
}

/// Why a client op with function `f` does not belong in a txn history.
pub(crate) fn not_a_txn(f: &str) -> String {
    format!("field `f`: {f:?} is not \"txn\": a transactional history's client ops are all txns")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_that_are_prefixes_share_one_list() {
        let mut p = Piece::new(TxnWorkload::ListAppend, 1);
        let k = p.key_str("x");
        p.push_read_list(k, &[1, 2]);
        p.push_read_list(k, &[1]);
        p.push_read_list(k, &[1, 2, 3]);
        p.push_read_list(k, &[2]);
        assert_eq!(p.lists, vec![vec![1, 2, 3], vec![2]]);
        let mut q = Piece::new(TxnWorkload::ListAppend, 5);
        let k = q.key_str("x");
        q.push_read_list(k, &[1, 2, 3, 4]);
        p.absorb(q);
        assert_eq!(p.lists, vec![vec![1, 2, 3, 4], vec![2]]);
    }

    #[test]
    fn null_reads_of_committed_txns_are_empty() {
        let ops = vec![
            Op::invoke(0, "txn", json!([["r", "x", null]])),
            Op::invoke(0, "txn", json!([["r", "x", null]]))
                .completed(OpType::Ok, json!([["r", "x", null]])),
        ];
        let h = TxnHistory::from_ops(&ops, TxnWorkload::ListAppend).unwrap();
        assert!(matches!(
            h.mops(&h.txns[0])[0],
            Mop::Read {
                list: Some(EMPTY),
                ..
            }
        ));
    }

    #[test]
    fn micro_ops_of_the_other_workload_are_named_in_the_error() {
        let ops = vec![Op::invoke(
            0,
            "txn",
            json!([["r", "x", null], ["w", "x", 1]]),
        )];
        let err = TxnHistory::from_ops(&ops, TxnWorkload::ListAppend).unwrap_err();
        assert!(
            err.to_string()
                .contains("field `value`: micro-op 2: \"w\" is not a list-append micro-op"),
            "{err}"
        );
    }
}
