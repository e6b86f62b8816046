//! The history: every invocation and completion of a test, in the order they
//! happened.
//!
//! # Format (`history.jsonl`)
//!
//! One JSON object per line, in the order the events happened:
//!
//! ```text
//! {"index":0,"time":1843211,"process":3,"type":"invoke","f":"write","key":"k7","value":4}
//! {"index":1,"time":2954112,"process":3,"type":"ok","f":"write","key":"k7","value":4,"node":"n2"}
//! {"index":2,"time":3100000,"process":"nemesis","type":"info","f":"partition","value":{"n1":["n3"]}}
//! ```
//!
//! | field | meaning |
//! |---|---|
//! | `index` | position in the history, 0-based (optional on input: the line order is what counts) |
//! | `time` | nanoseconds since the test started, monotonic (optional; informational only) |
//! | `process` | a client process number, or `"nemesis"` |
//! | `type` | `invoke`, then one of `ok` (it happened), `fail` (it certainly did not happen), `info` (unknown) |
//! | `f` | the operation: `read`, `write`, `cas`, `add`, `txn`, ... |
//! | `key` | optional; ops on different keys are checked independently |
//! | `value` | the workload's value: `[from,to]` for `cas`, micro-ops for `txn`; `null` reads "holds nothing" |
//! | `node` | optional; the node that answered |
//! | `error` | optional; why an op failed or is indeterminate |
//!
//! Semantics, which every checker relies on:
//! - An operation occupies the closed interval from its `invoke` to its
//!   completion. Two operations whose intervals overlap are concurrent.
//! - `info` means the outcome is unknown: the operation may take effect at any
//!   point after its invocation, or never. An invocation that is never
//!   completed is treated exactly like `info`.
//! - A process that got `info` is retired: its next invocation comes from a new
//!   process id. A process has at most one operation outstanding.
//! - The order of lines is the order of events; `time` is not trusted for
//!   ordering (real Jepsen histories carry out-of-order times).
//!
//! # Layout
//! - here: [`Op`], the whole-history readers ([`parse_jsonl`],
//!   [`read_jsonl`]) and the writer ([`HistoryWriter`]);
//! - [`stream`]: a JSONL file read streamed straight into each key's calls,
//!   for the linearizability checker on histories too big to hold as ops.

pub mod stream;

use std::fmt;
use std::io::{self, BufRead, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Who performed an operation: a client process, or the nemesis.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Process {
    /// A client worker's process id.
    Client(u64),
    /// The fault injector.
    Nemesis,
}

impl Serialize for Process {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Process::Client(p) => s.serialize_u64(*p),
            Process::Nemesis => s.serialize_str("nemesis"),
        }
    }
}

impl<'de> Deserialize<'de> for Process {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Process;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a non-negative process number or \"nemesis\"")
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Process, E> {
                Ok(Process::Client(v))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Process, E> {
                u64::try_from(v)
                    .map(Process::Client)
                    .map_err(|_| E::custom(format!("process must not be negative, got {v}")))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Process, E> {
                if v == "nemesis" {
                    Ok(Process::Nemesis)
                } else {
                    Err(E::custom(format!(
                        "process must be a number or \"nemesis\", got {v:?}"
                    )))
                }
            }
        }
        d.deserialize_any(V)
    }
}

impl fmt::Display for Process {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Process::Client(p) => write!(f, "{p}"),
            Process::Nemesis => f.write_str("nemesis"),
        }
    }
}

/// The kind of event: an invocation or one of the three completions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OpType {
    /// The operation started.
    Invoke,
    /// The operation happened.
    Ok,
    /// The operation certainly did not happen.
    Fail,
    /// Unknown: it may happen at any later time, or never.
    Info,
}

impl fmt::Display for OpType {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(match self {
            OpType::Invoke => "invoke",
            OpType::Ok => "ok",
            OpType::Fail => "fail",
            OpType::Info => "info",
        })
    }
}

/// One event of a history: see the module docs for the format.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Op {
    /// Position in the history (0-based). Readers renumber by line order.
    #[serde(default)]
    pub index: u64,
    /// Nanoseconds since the test started, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<u64>,
    /// Who performed it.
    pub process: Process,
    /// Invocation or completion.
    #[serde(rename = "type")]
    pub op_type: OpType,
    /// The function: `read`, `write`, `cas`, ...
    pub f: String,
    /// The key, for histories over independent keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// The workload's value.
    #[serde(default)]
    pub value: Value,
    /// The node that answered, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// Why it failed or is indeterminate, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<Value>,
}

impl Op {
    /// A client invocation with no key, time or index (for building histories by hand).
    pub fn invoke(process: u64, f: &str, value: Value) -> Op {
        Op {
            index: 0,
            time: None,
            process: Process::Client(process),
            op_type: OpType::Invoke,
            f: f.to_string(),
            key: None,
            value,
            node: None,
            error: None,
        }
    }

    /// The same op with another type (a completion of an invocation).
    pub fn completed(&self, op_type: OpType, value: Value) -> Op {
        Op {
            op_type,
            value,
            ..self.clone()
        }
    }

    /// The same op on `key`.
    pub fn with_key(mut self, key: impl Into<String>) -> Op {
        self.key = Some(key.into());
        self
    }

    /// Whether the nemesis performed it.
    pub fn is_nemesis(&self) -> bool {
        self.process == Process::Nemesis
    }
}

/// A malformed history: where, and what is wrong.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// A line or form is not a valid op.
    #[error("{path}:{line}: {message}")]
    Malformed {
        /// The file (or `<input>`).
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// An op is wrong where only its position is known (an EDN form).
    #[error("{path}: op {index}: {message}")]
    Op {
        /// The file.
        path: PathBuf,
        /// Its index in the history (0-based).
        index: usize,
        /// What is wrong.
        message: String,
    },
}

impl HistoryError {
    pub(crate) fn malformed(path: &Path, line: usize, message: impl Into<String>) -> Self {
        HistoryError::Malformed {
            path: path.to_path_buf(),
            line,
            message: message.into(),
        }
    }
}

/// Parses JSONL text. `path` names the source in errors. Blank lines are skipped;
/// ops are renumbered in line order. Large inputs are parsed by several threads
/// (one chunk of whole lines each); the first malformed line is reported.
///
/// A last line that has no newline and ends in the middle of its JSON is a
/// write cut short by a crash of the recorder: it is dropped, so the history of a killed run
/// still reads (every complete line is kept). Anywhere else, or ending in a
/// newline, a bad line is an error.
pub fn parse_jsonl(text: &str, path: &Path) -> Result<Vec<Op>, HistoryError> {
    if !text.is_empty() && !text.ends_with('\n') {
        let cut = text.rfind('\n').map_or(0, |i| i + 1);
        let last = &text[cut..];
        if serde_json::from_str::<Op>(last).is_err_and(|e| e.is_eof()) {
            return parse_jsonl(&text[..cut], path);
        }
    }
    const PARALLEL_ABOVE: usize = 4 << 20;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    if text.len() < PARALLEL_ABOVE || threads == 1 {
        return parse_jsonl_chunk(text, path, 1);
    }
    let chunks = split_at_lines(text, threads, 1);
    let parsed: Vec<Result<Vec<Op>, HistoryError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = chunks
            .iter()
            .map(|&(first_line, chunk)| {
                scope.spawn(move || parse_jsonl_chunk(chunk, path, first_line))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a history parser thread panicked"))
            .collect()
    });
    let mut ops = Vec::new();
    for chunk in parsed {
        ops.extend(chunk?);
    }
    for (i, op) in ops.iter_mut().enumerate() {
        op.index = i as u64;
    }
    Ok(ops)
}

/// Splits `text` into about `n` pieces that end at line ends, each with the
/// 1-based number of its first line (`text` starting at line `first_line`).
pub(crate) fn split_at_lines(text: &str, n: usize, first_line: usize) -> Vec<(usize, &str)> {
    let mut pieces = Vec::with_capacity(n);
    let (mut start, mut line) = (0, first_line);
    let target = text.len().div_ceil(n);
    while start < text.len() {
        let mut end = (start + target).min(text.len());
        end = text[end..].find('\n').map_or(text.len(), |i| end + i + 1);
        let piece = &text[start..end];
        pieces.push((line, piece));
        line += piece.bytes().filter(|&b| b == b'\n').count();
        start = end;
    }
    pieces
}

fn parse_jsonl_chunk(text: &str, path: &Path, first_line: usize) -> Result<Vec<Op>, HistoryError> {
    let mut ops = Vec::with_capacity(text.len() / 80);
    for (i, line) in text.lines().enumerate() {
        push_jsonl_line(&mut ops, line, path, first_line + i)?;
    }
    Ok(ops)
}

/// Reads a JSONL history from any reader, streaming.
pub fn read_jsonl(reader: impl BufRead, path: &Path) -> Result<Vec<Op>, HistoryError> {
    let mut ops = Vec::new();
    for (i, line) in reader.lines().enumerate() {
        let line = line.map_err(|source| HistoryError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        push_jsonl_line(&mut ops, &line, path, i + 1)?;
    }
    Ok(ops)
}

fn push_jsonl_line(
    ops: &mut Vec<Op>,
    line: &str,
    path: &Path,
    line_no: usize,
) -> Result<(), HistoryError> {
    if line.trim().is_empty() {
        return Ok(());
    }
    let mut op: Op = serde_json::from_str(line)
        .map_err(|e| HistoryError::malformed(path, line_no, describe_json_error(&e)))?;
    if has_float(&op.value) {
        if let Some((column, digits)) = oversized_integer(line) {
            return Err(HistoryError::malformed(
                path,
                line_no,
                format!("integer {digits} is too large (outside the 64-bit range) (column {column}): values must compare exactly"),
            ));
        }
    }
    op.index = ops.len() as u64;
    ops.push(op);
    Ok(())
}

/// Whether a value holds a number that is not a 64-bit integer: only then
/// can a too-large integer literal have been rounded into it.
fn has_float(v: &Value) -> bool {
    match v {
        Value::Number(n) => n.is_f64(),
        Value::Array(items) => items.iter().any(has_float),
        Value::Object(fields) => fields.values().any(has_float),
        _ => false,
    }
}

/// The first integer literal of a JSON line (outside strings) that no
/// 64-bit integer holds, with its 1-based column: serde_json would round it
/// to a float, so 10^20 and 10^20 + 1 would compare equal.
fn oversized_integer(line: &str) -> Option<(usize, &str)> {
    let bytes = line.as_bytes();
    let (mut i, mut in_string) = (0, false);
    while i < bytes.len() {
        let b = bytes[i];
        if in_string {
            match b {
                b'\\' => i += 1,
                b'"' => in_string = false,
                _ => {}
            }
            i += 1;
            continue;
        }
        if b == b'"' {
            in_string = true;
            i += 1;
            continue;
        }
        if b == b'-' || b.is_ascii_digit() {
            let start = i;
            i += 1;
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                i += 1;
            }
            let fraction = i < bytes.len() && matches!(bytes[i], b'.' | b'e' | b'E');
            let digits = &line[start..i];
            if !fraction && digits.parse::<i64>().is_err() && digits.parse::<u64>().is_err() {
                return Some((start + 1, digits));
            }
            while i < bytes.len()
                && (bytes[i].is_ascii_alphanumeric() || matches!(bytes[i], b'.' | b'+' | b'-'))
            {
                i += 1;
            }
            continue;
        }
        i += 1;
    }
    None
}

fn describe_json_error(e: &serde_json::Error) -> String {
    // serde_json appends " at line 1 column N"; the line is ours, keep the column.
    let msg = e.to_string();
    match msg.rfind(" at line ") {
        Some(pos) => format!("{} (column {})", &msg[..pos], e.column()),
        None => msg,
    }
}

/// A serde_json message without the " at line L column C" it appends.
pub(crate) fn strip_position(msg: &str) -> &str {
    match msg.rfind(" at line ") {
        Some(pos) if msg[pos..].contains(" column ") => &msg[..pos],
        _ => msg,
    }
}

/// Appends ops to a JSONL history as they happen: the format's one writer.
/// It numbers each op and writes it as one whole line, then flushes `out`;
/// over a file, a crash of the writer loses nothing already recorded. Over
/// a `Vec<u8>` (flushing does nothing) it is the line encoder of a buffered
/// recorder, which moves the bytes on itself (`results::Recorder`).
pub struct HistoryWriter<W: Write> {
    out: W,
    next_index: u64,
    /// The line being encoded, reused from op to op.
    line: Vec<u8>,
}

impl<W: Write> HistoryWriter<W> {
    /// A writer whose first op gets index 0.
    pub fn new(out: W) -> Self {
        HistoryWriter {
            out,
            next_index: 0,
            line: Vec::new(),
        }
    }

    /// Numbers `op` and appends it as one flushed line; returns the index given.
    ///
    /// The line is serialized in full first and handed to the writer in one
    /// `write_all`, so a failed serialization writes nothing (and uses no
    /// index) and a file written directly (not through a `BufWriter`) gets
    /// each line in one go.
    pub fn append(&mut self, op: &mut Op) -> io::Result<u64> {
        op.index = self.next_index;
        self.line.clear();
        serde_json::to_writer(&mut self.line, op)?;
        self.line.push(b'\n');
        self.out.write_all(&self.line)?;
        self.out.flush()?;
        self.next_index += 1;
        Ok(op.index)
    }

    /// The index the next op gets (so also how many were appended).
    pub fn next_index(&self) -> u64 {
        self.next_index
    }

    /// The underlying writer.
    pub fn get_ref(&self) -> &W {
        &self.out
    }

    /// The underlying writer, mutably (a buffered recorder takes its bytes).
    pub fn get_mut(&mut self) -> &mut W {
        &mut self.out
    }

    /// The underlying writer.
    pub fn into_inner(self) -> W {
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn round_trips_through_the_writer_and_reader() {
        let mut w = HistoryWriter::new(Vec::new());
        let inv = Op::invoke(3, "write", json!(4)).with_key("k7");
        let mut a = inv.clone();
        let mut b = inv.completed(OpType::Ok, json!(4));
        b.node = Some("n2".into());
        let mut c = Op {
            process: Process::Nemesis,
            ..Op::invoke(0, "partition", json!({"n1": ["n3"]}))
        };
        c.op_type = OpType::Info;
        for op in [&mut a, &mut b, &mut c] {
            w.append(op).unwrap();
        }
        let text = String::from_utf8(w.into_inner()).unwrap();
        let back = parse_jsonl(&text, Path::new("h.jsonl")).unwrap();
        assert_eq!(back, vec![a, b, c]);
        assert!(text.contains("\"process\":\"nemesis\""));
    }

    #[test]
    fn malformed_line_reports_file_line_and_field() {
        let text = "{\"process\":1,\"type\":\"invoke\",\"f\":\"read\"}\n\n{\"process\":1,\"type\":\"okay\",\"f\":\"read\"}\n";
        let err = parse_jsonl(text, Path::new("h.jsonl")).unwrap_err();
        let msg = err.to_string();
        assert!(msg.starts_with("h.jsonl:3: "), "{msg}");
        assert!(msg.contains("okay"), "{msg}");
    }

    #[test]
    fn an_integer_beyond_64_bits_is_refused_with_its_line_not_rounded() {
        let text = concat!(
            "{\"process\":0,\"type\":\"invoke\",\"f\":\"write\",\"value\":100000000000000000000}\n",
            "{\"process\":0,\"type\":\"ok\",\"f\":\"write\",\"value\":[\"k\",100000000000000000001]}\n",
        );
        let msg = parse_jsonl(text, Path::new("h.jsonl"))
            .unwrap_err()
            .to_string();
        assert!(
            msg.starts_with("h.jsonl:1: integer 100000000000000000000 is too large"),
            "{msg}"
        );
        // Floats, the 64-bit extremes and digits inside strings still read.
        let fine = "{\"process\":0,\"type\":\"invoke\",\"f\":\"write\",\"value\":[1.5e300,-9223372036854775808,18446744073709551615,\"100000000000000000000\"]}\n";
        assert_eq!(parse_jsonl(fine, Path::new("h.jsonl")).unwrap().len(), 1);
    }

    #[test]
    fn large_input_parses_in_chunks_with_global_line_numbers() {
        let line = "{\"process\":1,\"type\":\"invoke\",\"f\":\"read\",\"value\":null}\n";
        let mut text = line.repeat(100_000);
        let ops = parse_jsonl(&text, Path::new("big")).unwrap();
        assert_eq!(ops.len(), 100_000);
        assert!(ops.iter().enumerate().all(|(i, op)| op.index == i as u64));
        text.push_str("{\"process\":1}\n");
        let err = parse_jsonl(&text, Path::new("big"))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("big:100001: "), "{err}");
    }

    #[test]
    fn a_last_line_cut_short_by_a_crash_is_dropped_but_a_bad_complete_line_is_not() {
        let good = "{\"process\":1,\"type\":\"invoke\",\"f\":\"read\"}\n";
        let cut = format!("{good}{{\"process\":1,\"ty");
        assert_eq!(parse_jsonl(&cut, Path::new("h")).unwrap().len(), 1);
        let bad = format!("{good}{{\"process\":1,\"ty\n");
        assert!(parse_jsonl(&bad, Path::new("h")).is_err());
        let unterminated_good = good.trim_end();
        assert_eq!(
            parse_jsonl(unterminated_good, Path::new("h"))
                .unwrap()
                .len(),
            1
        );
    }

    #[test]
    fn negative_process_is_rejected_with_a_reason() {
        let err = parse_jsonl(
            "{\"process\":-1,\"type\":\"invoke\",\"f\":\"read\"}",
            Path::new("x"),
        )
        .unwrap_err();
        assert!(err.to_string().contains("negative"), "{err}");
    }
}
