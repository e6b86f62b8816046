//! Reading a JSONL history streamed: parsed line by line, paired as it
//! goes and split by key into compact per-key storage, for the
//! linearizability checker ([`crate::linearizable::check_partitions`]).
//!
//! A history of ten million ops does not fit in memory as [`Op`]s (owned
//! strings and a `serde_json::Value` each): this reader never holds more
//! than one block of text. The file is read in blocks of whole lines; each
//! block is split among the cores, and each part parsed by one thread into
//! events whose function, key and value are numbers in that part's own
//! interning tables (nothing allocated per line). The parts are then merged
//! in file order: their tables into the history's (each distinct value is
//! kept once, parsed), their events through the pairing rule
//! ([`crate::pair`]'s: a process's next completion is its outstanding
//! invocation's) into [`Slot`]s of 64 bytes, one list per key.
//!
//! The rules are those of [`crate::history::parse_jsonl`] and
//! [`crate::pair::pair`]: blank lines are skipped, a last line without a
//! newline that ends in the middle of its JSON is dropped (a crash of the
//! recorder), `fail` calls are dropped, calls never completed are
//! indeterminate, and every malformed line or pairing error names the file
//! and line. The first error in file order is the one reported.
//!
//! [`Op`]: crate::history::Op

use std::borrow::Cow;
use std::fs::File;
use std::hash::Hash;
use std::io::Read;
use std::path::Path;

use rustc_hash::FxHashMap;
use serde::de::{self, IgnoredAny, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::Value;

use super::{describe_json_error, has_float, oversized_integer, HistoryError, OpType, Process};
use crate::pair::{Call, Outcome, PairError};

/// Bytes of text read (and parsed) at a time.
const BLOCK: usize = 16 << 20;

/// No index, key or time: the sentinel of a [`Slot`]'s fields.
const NONE: u64 = u64::MAX;

/// A history read for the linearizability checker: each key's calls, in
/// check order, with every function, key and value stored once.
#[derive(Debug, Default)]
pub struct KeyedHistory {
    values: Vec<Value>,
    fs: Vec<String>,
    /// The keys in check order (`None`: ops without a key).
    keys: Vec<Option<String>>,
    /// Each key's calls (same order as `keys`), in invocation order.
    calls: Vec<Vec<Slot>>,
    /// Client invocations, failed ones included.
    ops: usize,
    /// Events (non-blank lines), the nemesis's included.
    events: usize,
    /// Where line numbers stop following indices (after blank lines):
    /// `(index, blank lines before it)`, ascending.
    shifts: Vec<(u64, u64)>,
}

/// One call, compactly: [`Call`] with its function and value as numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Slot {
    invoke_index: u64,
    /// [`NONE`]: never completed.
    complete_index: u64,
    invoke_time: Option<u64>,
    complete_time: Option<u64>,
    process: u64,
    value: u32,
    f: u32,
    ok: bool,
}

impl KeyedHistory {
    /// Reads the JSONL file at `path`, streamed. Errors name the file and
    /// line.
    pub fn read_file(path: &Path) -> Result<KeyedHistory, HistoryError> {
        Self::read_file_in_blocks(path, BLOCK)
    }

    fn read_file_in_blocks(path: &Path, block: usize) -> Result<KeyedHistory, HistoryError> {
        let io = |source| HistoryError::Io {
            path: path.to_path_buf(),
            source,
        };
        let mut file = File::open(path).map_err(io)?;
        let mut reader = Reader::new(path);
        // Two buffers reused from block to block: the block, and the start
        // of a line it cut that the next block begins with.
        let (mut buf, mut carry): (Vec<u8>, Vec<u8>) = (Vec::new(), Vec::new());
        loop {
            buf.clear();
            buf.append(&mut carry);
            let n = (&mut file)
                .take(block as u64)
                .read_to_end(&mut buf)
                .map_err(io)?;
            let at_end = n == 0;
            let cut = match buf.iter().rposition(|&b| b == b'\n') {
                _ if at_end => buf.len(),
                Some(i) => i + 1,
                None => {
                    std::mem::swap(&mut buf, &mut carry);
                    continue;
                }
            };
            carry.extend_from_slice(&buf[cut..]);
            buf.truncate(cut);
            reader.block(&buf, at_end)?;
            if at_end {
                break;
            }
        }
        reader.finish()
    }

    /// Parses JSONL text, as [`KeyedHistory::read_file`] reads a file;
    /// `path` names it in errors.
    pub fn parse_jsonl(text: &str, path: &Path) -> Result<KeyedHistory, HistoryError> {
        let mut reader = Reader::new(path);
        reader.block(text.as_bytes(), true)?;
        reader.finish()
    }

    /// Client invocations, failed ones included (the checker's `ops`).
    pub fn ops(&self) -> usize {
        self.ops
    }

    /// Events in the history (non-blank lines), the nemesis's included.
    pub fn len(&self) -> usize {
        self.events
    }

    /// Whether the history has no event.
    pub fn is_empty(&self) -> bool {
        self.events == 0
    }

    /// How many partitions [`KeyedHistory::partitions`] returns.
    pub fn partition_count(&self) -> usize {
        self.keys.len().max(1)
    }

    /// The calls of each key in check order (numeric keys by value, then
    /// the others; calls without a key first), each key's in invocation
    /// order: what [`crate::linearizable::check`] builds from a history of
    /// [`crate::history::Op`]s. A history without keys is one partition.
    pub fn partitions(&self) -> Vec<(Option<&str>, Vec<Call<'_>>)> {
        if self.keys.iter().all(Option::is_none) {
            let calls = self.calls.iter().flatten().map(|s| self.call(s, None));
            return vec![(None, calls.collect())];
        }
        self.keys
            .iter()
            .zip(&self.calls)
            .map(|(key, slots)| {
                let key = key.as_deref();
                (key, slots.iter().map(|s| self.call(s, key)).collect())
            })
            .collect()
    }

    fn call<'a>(&'a self, slot: &Slot, key: Option<&'a str>) -> Call<'a> {
        let complete_index = (slot.complete_index != NONE).then_some(slot.complete_index as usize);
        Call {
            process: slot.process,
            f: &self.fs[slot.f as usize],
            key,
            value: &self.values[slot.value as usize],
            outcome: if slot.ok {
                Outcome::Ok
            } else {
                Outcome::Indeterminate
            },
            invoke_index: slot.invoke_index as usize,
            complete_index,
            invoke_time: slot.invoke_time,
            complete_time: slot.complete_time,
        }
    }

    /// The 1-based line of the op at history index `index`.
    pub fn line_of(&self, index: usize) -> Option<usize> {
        if index >= self.events {
            return None;
        }
        let index = index as u64;
        let at = self.shifts.partition_point(|&(i, _)| i <= index);
        let blanks = at.checked_sub(1).map_or(0, |at| self.shifts[at].1);
        Some((index + blanks + 1) as usize)
    }
}

/// One line as the reader sees it: the fields of [`crate::history::Op`]
/// with the same types (so the same lines are refused, with the same
/// messages), borrowed from the text where they can be.
#[derive(Deserialize)]
struct Line<'a> {
    #[serde(default)]
    #[allow(dead_code)] // Validated, not used: ops are renumbered by line.
    index: u64,
    #[serde(default)]
    time: Option<u64>,
    process: Process,
    #[serde(rename = "type")]
    op_type: OpType,
    #[serde(borrow)]
    f: Cow<'a, str>,
    #[serde(default, borrow)]
    key: Option<Cow<'a, str>>,
    #[serde(default)]
    value: Val,
    #[serde(default, borrow)]
    #[allow(dead_code)] // Validated, not used.
    node: Option<Cow<'a, str>>,
    #[serde(default)]
    #[allow(dead_code)] // Validated, not used.
    error: Option<IgnoredAny>,
}

/// A value, read without allocating in the common cases (nil, an integer,
/// a list of up to two integers); anything else as a JSON value with its
/// text as the interning key.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
enum Val {
    #[default]
    Null,
    Int(i64),
    /// An integer above `i64::MAX`.
    Big(u64),
    /// `[]`, `[a]` or `[a, b]`.
    Ints(u8, i64, i64),
    /// Anything else.
    Json(Json),
}

/// A JSON value, equal and hashed by its text.
#[derive(Clone, Debug)]
struct Json {
    text: String,
    value: Value,
}

impl PartialEq for Json {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl Eq for Json {}

impl Hash for Json {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.text.hash(state);
    }
}

impl Val {
    /// The value as [`crate::history::parse_jsonl`] would have parsed it.
    fn to_value(&self) -> Value {
        let int = |i: i64| Value::from(i);
        match *self {
            Val::Null => Value::Null,
            Val::Int(i) => int(i),
            Val::Big(u) => Value::from(u),
            Val::Ints(n, a, b) => Value::Array([int(a), int(b)][..n as usize].to_vec()),
            Val::Json(ref json) => json.value.clone(),
        }
    }
}

impl<'de> Deserialize<'de> for Val {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ValVisitor)
    }
}

struct ValVisitor;

impl ValVisitor {
    fn json<E>(value: Value) -> Result<Val, E> {
        let text = value.to_string();
        Ok(Val::Json(Json { text, value }))
    }
}

impl<'de> Visitor<'de> for ValVisitor {
    type Value = Val;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Val, E> {
        Ok(Val::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<Val, E> {
        Ok(Val::Null)
    }
    fn visit_i64<E: de::Error>(self, i: i64) -> Result<Val, E> {
        Ok(Val::Int(i))
    }
    fn visit_u64<E: de::Error>(self, u: u64) -> Result<Val, E> {
        Ok(i64::try_from(u).map_or(Val::Big(u), Val::Int))
    }
    fn visit_f64<E: de::Error>(self, x: f64) -> Result<Val, E> {
        Self::json(Value::from(x))
    }
    fn visit_bool<E: de::Error>(self, b: bool) -> Result<Val, E> {
        Self::json(Value::Bool(b))
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<Val, E> {
        Self::json(Value::from(s))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Val, A::Error> {
        let mut ints = [0i64; 2];
        let mut n = 0;
        let mut rest: Vec<Value> = Vec::new();
        while let Some(item) = seq.next_element::<Value>()? {
            match item.as_i64() {
                Some(i) if rest.is_empty() && n < 2 => {
                    ints[n] = i;
                    n += 1;
                }
                _ => {
                    if rest.is_empty() {
                        rest.extend(ints[..n].iter().map(|&i| Value::from(i)));
                    }
                    rest.push(item);
                }
            }
        }
        if rest.is_empty() {
            Ok(Val::Ints(n as u8, ints[0], ints[1]))
        } else {
            Self::json(Value::Array(rest))
        }
    }
    fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<Val, A::Error> {
        let v = Value::deserialize(de::value::MapAccessDeserializer::new(map))?;
        Self::json(v)
    }
}

/// Numbers for distinct things, in first-seen order.
struct Interner<T> {
    ids: FxHashMap<T, u32>,
    items: Vec<T>,
}

impl<T: Hash + Eq + Clone> Interner<T> {
    fn new() -> Self {
        Interner {
            ids: FxHashMap::default(),
            items: Vec::new(),
        }
    }

    fn id(&mut self, item: T) -> u32 {
        if let Some(&id) = self.ids.get(&item) {
            return id;
        }
        let id = self.items.len() as u32;
        self.ids.insert(item.clone(), id);
        self.items.push(item);
        id
    }
}

/// One non-blank line, its function, key and value numbered in its part.
#[derive(Clone, Copy, Debug)]
struct Event {
    line: u64,
    time: Option<u64>,
    /// `None`: the nemesis.
    process: Option<u64>,
    op_type: OpType,
    f: u32,
    /// `u32::MAX`: no key.
    key: u32,
    value: u32,
}

/// The events of a run of lines (numbered from 1 within the run), how
/// many lines it has, and the first error among them with its line.
struct Part<'a> {
    events: Vec<Event>,
    fs: Interner<Cow<'a, str>>,
    keys: Interner<Cow<'a, str>>,
    values: Interner<Val>,
    lines: usize,
    error: Option<(usize, String)>,
}

/// Parses whole lines (the last may lack its newline); lines are numbered
/// from 1, the caller shifts them.
fn parse_part(bytes: &[u8]) -> Part<'_> {
    let mut part = Part {
        events: Vec::with_capacity(bytes.len() / 96),
        fs: Interner::new(),
        keys: Interner::new(),
        values: Interner::new(),
        lines: bytes.iter().filter(|&&b| b == b'\n').count(),
        error: None,
    };
    // Text up to the line of the first byte that is not UTF-8 is parsed;
    // that line is then the error, unless an earlier one is.
    let (text, bad_utf8) = match std::str::from_utf8(bytes) {
        Ok(text) => (text, None),
        Err(e) => {
            let valid = &bytes[..e.valid_up_to()];
            let cut = valid.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
            let (line, column) = crate::import::position_of(bytes, e.valid_up_to());
            let text = std::str::from_utf8(&bytes[..cut]).expect("valid up to here");
            (text, Some((line, crate::import::invalid_utf8(column))))
        }
    };
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        if let Err(message) = parse_line(&mut part, line, i + 1) {
            part.error = Some((i + 1, message));
            return part;
        }
    }
    part.error = bad_utf8;
    part
}

fn parse_line<'a>(part: &mut Part<'a>, line: &'a str, line_no: usize) -> Result<(), String> {
    let parsed: Line<'a> = serde_json::from_str(line).map_err(|e| describe_json_error(&e))?;
    if let Val::Json(json) = &parsed.value {
        if has_float(&json.value) {
            if let Some((column, digits)) = oversized_integer(line) {
                return Err(format!("integer {digits} is too large (outside the 64-bit range) (column {column}): values must compare exactly"));
            }
        }
    }
    let process = match parsed.process {
        Process::Client(p) => Some(p),
        Process::Nemesis => None,
    };
    let (f, key, value) = match process {
        Some(_) => (
            part.fs.id(parsed.f),
            parsed.key.map_or(u32::MAX, |k| part.keys.id(k)),
            part.values.id(parsed.value),
        ),
        None => (0, u32::MAX, 0),
    };
    part.events.push(Event {
        line: line_no as u64,
        time: parsed.time,
        process,
        op_type: parsed.op_type,
        f,
        key,
        value,
    });
    Ok(())
}

/// An invocation waiting for its completion.
#[derive(Clone, Copy, Debug)]
struct Outstanding {
    slot: Slot,
    /// `u32::MAX`: no key.
    key: u32,
}

/// The history being merged part by part.
struct Reader<'p> {
    path: &'p Path,
    next_line: usize,
    values: Interner<Val>,
    fs: Interner<String>,
    keys: Interner<String>,
    /// Calls by key number (keys in first-seen order), then those without.
    calls: Vec<Vec<Slot>>,
    unkeyed: Vec<Slot>,
    outstanding: FxHashMap<u64, Outstanding>,
    ops: usize,
    events: u64,
    shifts: Vec<(u64, u64)>,
}

impl<'p> Reader<'p> {
    fn new(path: &'p Path) -> Self {
        Reader {
            path,
            next_line: 1,
            values: Interner::new(),
            fs: Interner::new(),
            keys: Interner::new(),
            calls: Vec::new(),
            unkeyed: Vec::new(),
            outstanding: FxHashMap::default(),
            ops: 0,
            events: 0,
            shifts: Vec::new(),
        }
    }

    /// Parses whole lines (the last one unterminated only when `last`) in
    /// parallel parts and merges them in order.
    fn block(&mut self, bytes: &[u8], last: bool) -> Result<(), HistoryError> {
        // A last line cut short by a crash: parsed alone, dropped if it ends early.
        let (bytes, tail) = match last && !bytes.is_empty() && !bytes.ends_with(b"\n") {
            true => {
                let cut = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
                (&bytes[..cut], Some(&bytes[cut..]))
            }
            false => (bytes, None),
        };
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let pieces = if bytes.len() < (1 << 20) || threads == 1 {
            vec![bytes]
        } else {
            split_bytes_at_lines(bytes, threads)
        };
        let parts: Vec<Part> = std::thread::scope(|scope| {
            let handles: Vec<_> = pieces
                .iter()
                .map(|&piece| scope.spawn(move || parse_part(piece)))
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("a history parser thread panicked"))
                .collect()
        });
        for part in parts {
            self.absorb(part)?;
        }
        if let Some(tail) = tail {
            let part = parse_part(tail);
            let cut = part.error.is_some() && std::str::from_utf8(tail).is_ok_and(cut_short);
            if !cut {
                self.absorb(part)?;
            }
        }
        Ok(())
    }

    /// Merges a part's tables and pairs its events; then its error, if any.
    fn absorb(&mut self, part: Part) -> Result<(), HistoryError> {
        let base = self.next_line as u64 - 1;
        self.next_line += part.lines;
        let fs: Vec<u32> = part
            .fs
            .items
            .iter()
            .map(|f| self.fs.id(f.to_string()))
            .collect();
        let keys: Vec<u32> = part.keys.items.iter().map(|k| self.key_id(k)).collect();
        let values: Vec<u32> = part
            .values
            .items
            .into_iter()
            .map(|v| self.values.id(v))
            .collect();
        for event in &part.events {
            let index = self.events;
            self.events += 1;
            let line = base + event.line;
            let blanks = line - index - 1;
            if blanks != self.shifts.last().map_or(0, |s| s.1) {
                self.shifts.push((index, blanks));
            }
            let Some(process) = event.process else {
                continue;
            };
            let key = keys.get(event.key as usize).copied().unwrap_or(u32::MAX);
            let (f, value) = (fs[event.f as usize], values[event.value as usize]);
            self.pair(event, index, process, f, key, value)
                .map_err(|e| HistoryError::malformed(self.path, line as usize, e.to_string()))?;
        }
        match part.error {
            Some((line, message)) => Err(HistoryError::malformed(
                self.path,
                base as usize + line,
                message,
            )),
            None => Ok(()),
        }
    }

    fn key_id(&mut self, key: &str) -> u32 {
        if let Some(&id) = self.keys.ids.get(key) {
            return id;
        }
        self.calls.push(Vec::new());
        self.keys.id(key.to_string())
    }

    /// One client event through the pairing rule (see [`crate::pair`]).
    fn pair(
        &mut self,
        event: &Event,
        index: u64,
        process: u64,
        f: u32,
        key: u32,
        value: u32,
    ) -> Result<(), PairError> {
        let f_name = |r: &Self, f: u32| r.fs.items[f as usize].clone();
        if event.op_type == OpType::Invoke {
            self.ops += 1;
            if let Some(o) = self.outstanding.get(&process) {
                return Err(PairError::ConcurrentInvoke {
                    index: index as usize,
                    process,
                    f: f_name(self, f),
                    outstanding: o.slot.invoke_index as usize,
                });
            }
            let slot = Slot {
                invoke_index: index,
                complete_index: NONE,
                invoke_time: event.time,
                complete_time: None,
                process,
                value,
                f,
                ok: false,
            };
            self.outstanding.insert(process, Outstanding { slot, key });
            return Ok(());
        }
        let Some(Outstanding {
            mut slot,
            key: invoked_key,
        }) = self.outstanding.remove(&process)
        else {
            return Err(PairError::CompletionWithoutInvoke {
                index: index as usize,
                process,
                f: f_name(self, f),
            });
        };
        if slot.f != f {
            return Err(PairError::MismatchedCompletion {
                index: index as usize,
                process,
                invoked: f_name(self, slot.f),
                got: f_name(self, f),
            });
        }
        slot.complete_index = index;
        slot.complete_time = event.time;
        let key = match event.op_type {
            OpType::Fail => return Ok(()),
            OpType::Ok => {
                slot.ok = true;
                slot.value = value;
                if invoked_key == u32::MAX {
                    key
                } else {
                    invoked_key
                }
            }
            // An info completion tells us nothing about the value.
            OpType::Info | OpType::Invoke => invoked_key,
        };
        self.push(key, slot);
        Ok(())
    }

    fn push(&mut self, key: u32, slot: Slot) {
        match self.calls.get_mut(key as usize) {
            Some(calls) => calls.push(slot),
            None => self.unkeyed.push(slot),
        }
    }

    /// Calls never completed become indeterminate; keys go in check order.
    fn finish(mut self) -> Result<KeyedHistory, HistoryError> {
        let left: Vec<Outstanding> = self.outstanding.drain().map(|(_, o)| o).collect();
        for o in left {
            self.push(o.key, o.slot);
        }
        let mut order: Vec<(u8, i128, u32)> = (0..self.keys.items.len() as u32)
            .filter(|&k| !self.calls[k as usize].is_empty())
            .map(|k| match self.keys.items[k as usize].parse::<i128>() {
                Ok(n) => (1, n, k),
                Err(_) => (2, 0, k),
            })
            .collect();
        order.sort_unstable_by(|a, b| {
            let name = |k: u32| self.keys.items[k as usize].as_str();
            (a.0, a.1, name(a.2)).cmp(&(b.0, b.1, name(b.2)))
        });
        let mut keys: Vec<Option<String>> = Vec::with_capacity(order.len() + 1);
        let mut calls: Vec<Vec<Slot>> = Vec::with_capacity(order.len() + 1);
        if !self.unkeyed.is_empty() || order.is_empty() {
            keys.push(None);
            calls.push(std::mem::take(&mut self.unkeyed));
        }
        let mut names: Vec<Option<String>> = self.keys.items.into_iter().map(Some).collect();
        for &(_, _, k) in &order {
            keys.push(names[k as usize].take());
            calls.push(std::mem::take(&mut self.calls[k as usize]));
        }
        for slots in &mut calls {
            if !slots.is_sorted_by_key(|s| s.invoke_index) {
                slots.sort_unstable_by_key(|s| s.invoke_index);
            }
        }
        Ok(KeyedHistory {
            values: self.values.items.iter().map(Val::to_value).collect(),
            fs: self.fs.items,
            keys,
            calls,
            ops: self.ops,
            events: self.events as usize,
            shifts: self.shifts,
        })
    }
}

/// About `n` pieces of `bytes` that end at line ends.
fn split_bytes_at_lines(bytes: &[u8], n: usize) -> Vec<&[u8]> {
    let mut pieces = Vec::with_capacity(n);
    let (target, mut start) = (bytes.len().div_ceil(n), 0);
    while start < bytes.len() {
        let end = (start + target).min(bytes.len());
        let end = bytes[end..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(bytes.len(), |i| end + i + 1);
        pieces.push(&bytes[start..end]);
        start = end;
    }
    pieces
}

/// Whether a line's JSON ends before it is complete.
fn cut_short(line: &str) -> bool {
    serde_json::from_str::<IgnoredAny>(line).is_err_and(|e| e.is_eof())
}

#[cfg(test)]
mod tests;
