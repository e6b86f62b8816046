//! Reading a history file straight into a [`TxnHistory`].
//!
//! JSONL is streamed: the file is read in blocks of whole lines, each block
//! split among the cores, each part parsed by one thread into a
//! [`Piece`] (micro-ops go straight into its arenas, read lists into shared
//! canonical lists; no `serde_json::Value` per op), and the parts merged in
//! order; then the block's text is dropped. Memory is the compact history
//! plus one block, not the text and a tree of JSON values per op.
//!
//! The same rules as [`crate::history::parse_jsonl`]: blank lines are
//! skipped, a last line without a newline that ends in the middle of its
//! JSON is a write cut short by a crash and is dropped, and every other bad
//! line is an error naming the file, the line and the field.
//!
//! EDN histories go through [`crate::import`] and [`TxnHistory::from_ops`].

use std::fmt;
use std::fs::File;
use std::io::Read;
use std::path::Path;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::parse::{MopKind, Piece, Seen, TxnHistory, TxnWorkload, Val};
use crate::history::{split_at_lines, strip_position, HistoryError, OpType, Process};
use crate::import::{detect_format, op_lines, parse_history, read_text, Format};

/// Bytes of text read (and parsed) at a time.
const BLOCK: usize = 32 << 20;

impl TxnHistory {
    /// Reads a history file in `format` (detected when `None`) as a
    /// `workload` history. Errors name the file and line (the op, for EDN).
    pub fn read_file(
        path: &Path,
        format: Option<Format>,
        workload: TxnWorkload,
    ) -> Result<TxnHistory, HistoryError> {
        let io = |source| HistoryError::Io {
            path: path.to_path_buf(),
            source,
        };
        let mut file = File::open(path).map_err(io)?;
        let mut head = vec![0u8; 4096];
        let n = read_full(&mut file, &mut head).map_err(io)?;
        head.truncate(n);
        let format = format.unwrap_or_else(|| detect_format(&String::from_utf8_lossy(&head)));
        if format == Format::Edn {
            let text = read_text(path)?;
            let ops = parse_history(&text, path, Some(Format::Edn))?;
            return TxnHistory::from_ops(&ops, workload).map_err(|e| {
                let index = e.index().unwrap_or(0);
                let message = match e {
                    super::TxnError::Malformed { message, .. } => message,
                    other => other.to_string(),
                };
                match op_lines(&text, Some(Format::Edn)).get(index) {
                    Some(&line) => HistoryError::malformed(path, line, message),
                    None => HistoryError::Op {
                        path: path.to_path_buf(),
                        index,
                        message,
                    },
                }
            });
        }
        let mut pending = head;
        let mut whole = Piece::new(workload, 1);
        loop {
            let start = pending.len();
            pending.resize(start + BLOCK, 0);
            let n = read_full(&mut file, &mut pending[start..]).map_err(io)?;
            pending.truncate(start + n);
            let at_end = n == 0;
            let cut = match pending.iter().rposition(|&b| b == b'\n') {
                _ if at_end => pending.len(),
                Some(i) => i + 1,
                None => continue,
            };
            let rest = pending.split_off(cut);
            let block = std::mem::replace(&mut pending, rest);
            parse_block(&block, path, &mut whole, at_end)?;
            if at_end {
                break;
            }
        }
        finish(whole, path)
    }

    /// Parses JSONL text (as [`TxnHistory::read_file`] does a file); `path`
    /// names it in errors.
    pub fn parse_jsonl(
        text: &str,
        path: &Path,
        workload: TxnWorkload,
    ) -> Result<TxnHistory, HistoryError> {
        let mut whole = Piece::new(workload, 1);
        parse_block(text.as_bytes(), path, &mut whole, true)?;
        finish(whole, path)
    }
}

fn finish(whole: Piece, path: &Path) -> Result<TxnHistory, HistoryError> {
    whole
        .finish()
        .map_err(|(e, message)| HistoryError::malformed(path, e.line, message))
}

fn read_full(file: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// Parses whole lines (the last one unterminated only when `last`) in
/// parallel parts and merges them into `whole`.
fn parse_block(
    bytes: &[u8],
    path: &Path,
    whole: &mut Piece,
    last: bool,
) -> Result<(), HistoryError> {
    let first_line = whole.next_line;
    let text = std::str::from_utf8(bytes).map_err(|e| {
        let (line, column) = crate::import::position_of(bytes, e.valid_up_to());
        HistoryError::malformed(
            path,
            first_line + line - 1,
            crate::import::invalid_utf8(column),
        )
    })?;
    // A last line cut short by a crash: parsed alone, dropped if it ends early.
    let (text, tail) = match last && !text.is_empty() && !text.ends_with('\n') {
        true => {
            let cut = text.rfind('\n').map_or(0, |i| i + 1);
            (&text[..cut], Some(&text[cut..]))
        }
        false => (text, None),
    };
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let parts = if text.len() < (1 << 20) || threads == 1 {
        vec![(first_line, text)]
    } else {
        split_at_lines(text, threads, first_line)
    };
    let workload = whole.workload();
    let parsed: Vec<Result<Piece, HistoryError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = parts
            .iter()
            .map(|&(line, part)| scope.spawn(move || parse_part(part, path, line, workload)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a history parser thread panicked"))
            .collect()
    });
    for part in parsed {
        whole.absorb(part?);
    }
    if let Some(tail) = tail {
        let line = whole.next_line;
        match parse_part(tail, path, line, workload) {
            Ok(piece) => whole.absorb(piece),
            Err(_) if cut_short(tail) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Whether a line's JSON ends before it is complete.
fn cut_short(line: &str) -> bool {
    serde_json::from_str::<IgnoredAny>(line).is_err_and(|e| e.is_eof())
}

fn parse_part(
    text: &str,
    path: &Path,
    first_line: usize,
    workload: TxnWorkload,
) -> Result<Piece, HistoryError> {
    let mut piece = Piece::new(workload, first_line);
    for line in text.lines() {
        let line_no = piece.next_line;
        piece.next_line += 1;
        if line.trim().is_empty() {
            continue;
        }
        let mut de = serde_json::Deserializer::from_str(line);
        LineSeed {
            piece: &mut piece,
            line: line_no,
        }
        .deserialize(&mut de)
        .and_then(|()| de.end())
        .map_err(|e| {
            let column = e.column();
            HistoryError::malformed(
                path,
                line_no,
                format!("{} (column {column})", strip_position(&e.to_string())),
            )
        })?;
    }
    Ok(piece)
}

/// One line: an op object whose `txn` micro-ops go into the piece.
struct LineSeed<'p> {
    piece: &'p mut Piece,
    line: usize,
}

/// The fields the checker reads.
enum Field {
    Process,
    Type,
    F,
    Time,
    Value,
    Other,
}

impl<'de> de::Deserialize<'de> for Field {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Field;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a field name")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Field, E> {
                Ok(match s {
                    "process" => Field::Process,
                    "type" => Field::Type,
                    "f" => Field::F,
                    "time" => Field::Time,
                    "value" => Field::Value,
                    _ => Field::Other,
                })
            }
        }
        d.deserialize_identifier(V)
    }
}

/// Whether `f` is `"txn"`: `None` if it is, the name it is otherwise.
struct IsTxn(Option<String>);

impl<'de> de::Deserialize<'de> for IsTxn {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = IsTxn;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a function name (string)")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<IsTxn, E> {
                Ok(IsTxn((s != "txn").then(|| s.to_string())))
            }
        }
        d.deserialize_str(V)
    }
}

/// The `value` field, however far the line had been read when it came.
enum ValueField {
    Absent,
    /// Parsed as micro-ops (`f` was already known to be `txn`).
    Parsed,
    /// Came before `f`: kept generic until `f` is known.
    Deferred(serde_json::Value),
}

fn prefixed<E: de::Error>(prefix: &str, e: impl fmt::Display) -> E {
    E::custom(format!("{prefix}{}", strip_position(&e.to_string())))
}

impl<'de> DeserializeSeed<'de> for LineSeed<'_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for LineSeed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an op (a JSON object)")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let (mut process, mut op_type, mut is_txn, mut time) = (None, None, None, None);
        let mut value = ValueField::Absent;
        let start = self.piece.mops_len();
        while let Some(field) = map.next_key::<Field>()? {
            match field {
                Field::Process => {
                    process = Some(
                        map.next_value::<Process>()
                            .map_err(|e| prefixed::<A::Error>("field `process`: ", e))?,
                    )
                }
                Field::Type => {
                    op_type = Some(
                        map.next_value::<OpType>()
                            .map_err(|e| prefixed::<A::Error>("field `type`: ", e))?,
                    )
                }
                Field::F => {
                    is_txn = Some(
                        map.next_value::<IsTxn>()
                            .map_err(|e| prefixed::<A::Error>("field `f`: ", e))?
                            .0,
                    )
                }
                Field::Time => {
                    time = map
                        .next_value::<Option<u64>>()
                        .map_err(|e| prefixed::<A::Error>("field `time`: ", e))?
                }
                // A fail or info completion's value is never used (the
                // invocation's is): it may be anything, null included.
                Field::Value => match is_txn.as_ref().map(Option::is_none) {
                    Some(true) if matches!(op_type, Some(OpType::Info | OpType::Fail)) => {
                        map.next_value::<IgnoredAny>()?;
                    }
                    Some(true) if op_type.is_some() => {
                        self.piece.truncate_mops(start);
                        map.next_value_seed(MopsSeed {
                            piece: &mut *self.piece,
                        })
                        .map_err(|e| prefixed::<A::Error>("field `value`: ", e))?;
                        value = ValueField::Parsed;
                    }
                    Some(false) => {
                        map.next_value::<IgnoredAny>()?;
                    }
                    Some(true) | None => value = ValueField::Deferred(map.next_value()?),
                },
                Field::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        let process = process.ok_or_else(|| de::Error::missing_field("process"))?;
        let op_type = op_type.ok_or_else(|| de::Error::missing_field("type"))?;
        let is_txn = is_txn.ok_or_else(|| de::Error::missing_field("f"))?;
        let index = self.piece.ops;
        self.piece.ops += 1;
        let Process::Client(process) = process else {
            self.piece.truncate_mops(start);
            return Ok(());
        };
        if let Some(f) = is_txn {
            return Err(de::Error::custom(super::parse::not_a_txn(&f)));
        }
        match value {
            _ if matches!(op_type, OpType::Info | OpType::Fail) => {}
            ValueField::Parsed => {}
            ValueField::Deferred(v) => self.piece.value_mops(&v).map_err(de::Error::custom)?,
            ValueField::Absent => self
                .piece
                .value_mops(&serde_json::Value::Null)
                .map_err(de::Error::custom)?,
        }
        self.piece
            .push_event(index, self.line, process, op_type, time, start);
        Ok(())
    }
}

/// A txn's micro-op list.
struct MopsSeed<'p> {
    piece: &'p mut Piece,
}

impl<'de> DeserializeSeed<'de> for MopsSeed<'_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for MopsSeed<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of micro-ops")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut i = 1;
        loop {
            let seed = MopSeed {
                piece: &mut *self.piece,
            };
            match seq.next_element_seed(seed) {
                Ok(Some(())) => i += 1,
                Ok(None) => return Ok(()),
                Err(e) => return Err(prefixed(&format!("micro-op {i}: "), e)),
            }
        }
    }
}

/// One micro-op `[f, key, value]`.
struct MopSeed<'p> {
    piece: &'p mut Piece,
}

impl<'de> DeserializeSeed<'de> for MopSeed<'_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

const MOP_SHAPE: &str = "a micro-op is [f, key, value]";

impl<'de> Visitor<'de> for MopSeed<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(MOP_SHAPE)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let shape = || de::Error::custom(MOP_SHAPE);
        let kind = seq
            .next_element_seed(KindSeed(self.piece))?
            .ok_or_else(shape)?;
        let key = seq
            .next_element_seed(KeySeed(&mut *self.piece))?
            .ok_or_else(shape)?;
        match kind {
            MopKind::Append => {
                let elem: i64 = seq
                    .next_element()
                    .map_err(|e| prefixed::<A::Error>("appended values must be integers: ", e))?
                    .ok_or_else(shape)?;
                self.piece.push_append(key, elem);
            }
            MopKind::Read if self.piece.workload() == TxnWorkload::ListAppend => {
                let mut scratch = std::mem::take(&mut self.piece.scratch);
                scratch.clear();
                let read = seq.next_element_seed(ListSeed(&mut scratch));
                match read? {
                    Some(true) => self.piece.push_read_list(key, &scratch),
                    Some(false) => self.piece.push_read_null(key),
                    None => return Err(shape()),
                }
                self.piece.scratch = scratch;
            }
            MopKind::Read => match seq.next_element_seed(RegSeed(&mut *self.piece))? {
                Some(Some(v)) => self.piece.push_get(key, Seen::Value(v)),
                Some(None) => self.piece.push_read_null(key),
                None => return Err(shape()),
            },
            MopKind::Write => match seq.next_element_seed(RegSeed(&mut *self.piece))? {
                Some(Some(v)) => self.piece.push_write(key, v),
                Some(None) => {
                    return Err(de::Error::custom("a write of null: registers hold values"))
                }
                None => return Err(shape()),
            },
        }
        if seq.next_element::<IgnoredAny>()?.is_some() {
            return Err(de::Error::custom(
                "a micro-op has three elements [f, key, value]",
            ));
        }
        Ok(())
    }
}

/// A micro-op's function name.
struct KindSeed<'p>(&'p Piece);

impl<'de> DeserializeSeed<'de> for KindSeed<'_> {
    type Value = MopKind;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<MopKind, D::Error> {
        d.deserialize_str(self)
    }
}

impl Visitor<'_> for KindSeed<'_> {
    type Value = MopKind;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a micro-op name (\"r\", \"append\", \"w\")")
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<MopKind, E> {
        self.0.mop_kind(s).map_err(E::custom)
    }
}

/// A key: a string or an integer, interned.
struct KeySeed<'p>(&'p mut Piece);

impl<'de> DeserializeSeed<'de> for KeySeed<'_> {
    type Value = u32;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<u32, D::Error> {
        d.deserialize_any(self)
    }
}

impl Visitor<'_> for KeySeed<'_> {
    type Value = u32;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a key (string or integer)")
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<u32, E> {
        Ok(self.0.key_str(s))
    }
    fn visit_i64<E: de::Error>(self, i: i64) -> Result<u32, E> {
        Ok(self.0.key_int(i))
    }
    fn visit_u64<E: de::Error>(self, u: u64) -> Result<u32, E> {
        Ok(match i64::try_from(u) {
            Ok(i) => self.0.key_int(i),
            Err(_) => self.0.key_str(&u.to_string()),
        })
    }
}

/// A list-append read: `null` (false) or a list of integers into the
/// scratch buffer (true).
struct ListSeed<'s>(&'s mut Vec<i64>);

impl<'de> DeserializeSeed<'de> for ListSeed<'_> {
    type Value = bool;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ListSeed<'_> {
    type Value = bool;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a read's value: a list of integers, or null")
    }
    fn visit_unit<E: de::Error>(self) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<bool, A::Error> {
        while let Some(e) = seq
            .next_element::<i64>()
            .map_err(|e| prefixed::<A::Error>("read elements must be integers: ", e))?
        {
            self.0.push(e);
        }
        Ok(true)
    }
}

/// A register value: an integer, another scalar (interned by its JSON
/// text), or `null` (`None`).
struct RegSeed<'p>(&'p mut Piece);

impl<'de> DeserializeSeed<'de> for RegSeed<'_> {
    type Value = Option<Val>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Option<Val>, D::Error> {
        d.deserialize_any(self)
    }
}

impl Visitor<'_> for RegSeed<'_> {
    type Value = Option<Val>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a register value (a scalar) or null")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Option<Val>, E> {
        Ok(None)
    }
    fn visit_i64<E: de::Error>(self, i: i64) -> Result<Option<Val>, E> {
        Ok(Some(Val::Int(i)))
    }
    fn visit_u64<E: de::Error>(self, u: u64) -> Result<Option<Val>, E> {
        Ok(Some(match i64::try_from(u) {
            Ok(i) => Val::Int(i),
            Err(_) => self.0.val_text(&u.to_string()),
        }))
    }
    fn visit_f64<E: de::Error>(self, x: f64) -> Result<Option<Val>, E> {
        Ok(Some(
            self.0.val_text(&serde_json::Value::from(x).to_string()),
        ))
    }
    fn visit_bool<E: de::Error>(self, b: bool) -> Result<Option<Val>, E> {
        Ok(Some(self.0.val_text(if b { "true" } else { "false" })))
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<Option<Val>, E> {
        Ok(Some(
            self.0.val_text(&serde_json::Value::from(s).to_string()),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const AP: TxnWorkload = TxnWorkload::ListAppend;

    fn err(text: &str, w: TxnWorkload) -> String {
        TxnHistory::parse_jsonl(text, Path::new("h.jsonl"), w)
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn fields_in_any_order_and_other_ops_are_read() {
        let text = concat!(
            "{\"value\":[[\"append\",\"x\",1],[\"r\",\"y\",null]],\"f\":\"txn\",\"type\":\"invoke\",\"process\":0}\n",
            "\n",
            "{\"process\":\"nemesis\",\"type\":\"info\",\"f\":\"partition\",\"value\":{\"n1\":[\"n2\"]}}\n",
            "{\"process\":0,\"type\":\"ok\",\"f\":\"txn\",\"value\":[[\"append\",\"x\",1],[\"r\",\"y\",[]]],\"time\":5}\n",
        );
        let h = TxnHistory::parse_jsonl(text, Path::new("h"), AP).unwrap();
        assert_eq!(h.ops(), 3);
        assert_eq!(h.txns.len(), 1);
        assert_eq!(h.txns[0].complete, Some(2));
        assert_eq!(h.mops(&h.txns[0]).len(), 2);
    }

    #[test]
    fn bad_lines_name_file_line_and_field() {
        let ok =
            "{\"process\":0,\"type\":\"invoke\",\"f\":\"txn\",\"value\":[[\"append\",\"x\",1]]}\n";
        let e = err(&format!("{ok}{}", ok.replace("1]]", "\"a\"]]")), AP);
        assert!(
            e.starts_with("h.jsonl:2: field `value`: micro-op 1: appended values must be integers"),
            "{e}"
        );
        let e = err(&ok.replace("\"type\":\"invoke\",", ""), AP);
        assert!(e.starts_with("h.jsonl:1: missing field `type`"), "{e}");
        let e = err(&ok.replace("\"process\":0", "\"process\":-2"), AP);
        assert!(
            e.contains("field `process`") && e.contains("negative"),
            "{e}"
        );
        let e = err(&ok.replace("[[\"append\"", "[[\"w\""), AP);
        assert!(
            e.contains("micro-op 1: \"w\" is not a list-append micro-op"),
            "{e}"
        );
        let e = err(
            "{\"process\":0,\"type\":\"invoke\",\"f\":\"txn\",\"value\":[[\"w\",\"x\",null]]}\n",
            TxnWorkload::RwRegister,
        );
        assert!(e.contains("micro-op 1: a write of null"), "{e}");
        let e = err(&format!("{ok}{ok}"), AP);
        assert!(
            e.starts_with("h.jsonl:2: process 0 invoked a second txn"),
            "{e}"
        );
    }

    #[test]
    fn a_last_line_cut_short_is_dropped() {
        let ok =
            "{\"process\":0,\"type\":\"invoke\",\"f\":\"txn\",\"value\":[[\"append\",\"x\",1]]}\n";
        let h = TxnHistory::parse_jsonl(&format!("{ok}{{\"process\":0,\"ty"), Path::new("h"), AP)
            .unwrap();
        assert_eq!(h.ops(), 1);
        assert!(err(&format!("{ok}{{\"process\":0,\"ty\n"), AP).starts_with("h.jsonl:2:"));
    }
}
