//! The history importer: EDN op maps to [`Op`]s, one op map at a time, with
//! Jepsen's independent `[key value]` tuples split into keys.

use std::path::Path;

use serde_json::Value;

use super::reader::{err, Edn, EdnError, Node, Reader, Short};
use crate::history::{HistoryError, Op, OpType, Process};

/// Whether plain two-element vector values `[k v]` are Jepsen independent
/// `[key value]` tuples. `#jepsen.independent.Tuple{...}` records are split
/// in every mode.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Independent {
    /// Split `[k v]` values only if every client op's value is a two-element
    /// vector whose first element is an integer, string, keyword or symbol,
    /// and at least one op is a `read` (a read of a plain register carries a
    /// scalar or `nil`, so a cas-register history with `[from to]` values is
    /// never split).
    #[default]
    Auto,
    /// Every client op's value must be a `[key value]` pair; it is split.
    Yes,
    /// Never split plain vectors.
    No,
}

/// The shape of an op's value, as far as independent keys are concerned.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// Anything else.
    Other,
    /// A two-element vector with a key-like first element.
    Pair,
    /// A two-element vector with some other first element.
    OddPair,
    /// A `jepsen.independent.Tuple`: already split.
    Tuple,
}

const TUPLE_TAG: &str = "jepsen.independent.Tuple";

/// Parses an EDN history, auto-detecting independent keys
/// ([`Independent::Auto`]). `path` names the source in errors.
pub fn parse_edn_history(text: &str, path: &Path) -> Result<Vec<Op>, HistoryError> {
    parse_edn_history_with(text, path, Independent::Auto)
}

/// Parses an EDN history: one vector or list of op maps, or a stream of op
/// maps. Ops are numbered in file order. `path` names the source in errors,
/// which carry the line of the offending form.
pub fn parse_edn_history_with(
    text: &str,
    path: &Path,
    independent: Independent,
) -> Result<Vec<Op>, HistoryError> {
    parse_ops(text, independent).map_err(|e| HistoryError::malformed(path, e.line, e.message))
}

/// Ops as read, with what the independent-key pass needs about each.
#[derive(Default)]
struct Collected {
    ops: Vec<Op>,
    lines: Vec<usize>,
    shapes: Vec<Shape>,
}

impl Collected {
    fn push(&mut self, node: Node) -> Result<(), EdnError> {
        let (op, shape) = op_from_node(node.line, node.value, self.ops.len() as u64)?;
        self.ops.push(op);
        self.lines.push(node.line);
        self.shapes.push(shape);
        Ok(())
    }
}

/// The line each op of an EDN history starts on, in order; empty if the
/// text does not parse.
pub(crate) fn op_lines(text: &str) -> Vec<usize> {
    collect(text).map_or_else(|_| Vec::new(), |c| c.lines)
}

fn parse_ops(text: &str, independent: Independent) -> Result<Vec<Op>, EdnError> {
    let mut c = collect(text)?;
    split_independent(&mut c, independent)?;
    Ok(c.ops)
}

/// Every op form of `text`, with its line.
fn collect(text: &str) -> Result<Collected, EdnError> {
    let mut r = Reader::new(text);
    let mut c = Collected::default();
    r.skip_atmosphere()?;
    match r.peek() {
        None => {}
        Some(open @ (b'[' | b'(')) => {
            let line = r.line;
            r.pos += 1;
            let (close, what) = if open == b'[' {
                (b']', "history vector")
            } else {
                (b')', "history list")
            };
            r.read_elements(close, line, what, |n| c.push(n))?;
            r.skip_atmosphere()?;
            if !r.at_end() {
                return err(
                    r.line,
                    format!(
                        "unexpected form after the {what} that ends before it \
                         (a history is one vector of op maps, or a stream of op maps)"
                    ),
                );
            }
        }
        Some(_) => loop {
            r.skip_atmosphere()?;
            if r.at_end() {
                break;
            }
            let node = r.read_form()?;
            c.push(node)?;
        },
    }
    Ok(c)
}

/// Splits `[k v]` values into key + value when `independent` says so.
fn split_independent(c: &mut Collected, independent: Independent) -> Result<(), EdnError> {
    let client = |i: &usize| !c.ops[*i].is_nemesis();
    let split_odd = match independent {
        Independent::No => return Ok(()),
        Independent::Auto => {
            let mut any_pair = false;
            for i in (0..c.ops.len()).filter(client) {
                match c.shapes[i] {
                    Shape::Pair => any_pair = true,
                    Shape::Tuple => {}
                    Shape::Other | Shape::OddPair => return Ok(()),
                }
            }
            if !any_pair || !c.ops.iter().any(|op| op.f == "read") {
                return Ok(());
            }
            false
        }
        Independent::Yes => {
            if let Some(i) = (0..c.ops.len())
                .filter(client)
                .find(|&i| c.shapes[i] == Shape::Other)
            {
                return err(
                    c.lines[i],
                    format!(
                        "independent history: the value of a client op must be a [key value] \
                         pair, got {}",
                        short_json(&c.ops[i].value)
                    ),
                );
            }
            true
        }
    };
    for (i, op) in c.ops.iter_mut().enumerate() {
        let split = match c.shapes[i] {
            Shape::Pair => true,
            Shape::OddPair => split_odd,
            Shape::Tuple | Shape::Other => false,
        };
        if !split || op.is_nemesis() {
            continue;
        }
        if let Value::Array(mut pair) = op.value.take() {
            let value = pair.pop().unwrap_or(Value::Null);
            let key = pair.pop().unwrap_or(Value::Null);
            op.key = Some(json_key_string(key));
            op.value = value;
        }
    }
    Ok(())
}

/// An independent key from its JSON form: strings (and keywords) as they
/// are, numbers in decimal, anything else as compact JSON.
fn json_key_string(key: Value) -> String {
    match key {
        Value::String(s) => s,
        Value::Number(n) => n.to_string(),
        other => other.to_string(),
    }
}

fn short_json(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() <= 60 {
        s
    } else {
        let cut: String = s.chars().take(60).collect();
        format!("{cut}...")
    }
}

fn describe(value: &Edn) -> &'static str {
    match value {
        Edn::Nil => "nil",
        Edn::Bool(_) => "a boolean",
        Edn::Int(_) | Edn::BigInt(_) => "an integer",
        Edn::Float(_) => "a float",
        Edn::Str(_) => "a string",
        Edn::Char(_) => "a character",
        Edn::Keyword(_) => "a keyword",
        Edn::Symbol(_) => "a symbol",
        Edn::Vector(_) => "a vector",
        Edn::List(_) => "a list",
        Edn::Set(_) => "a set",
        Edn::Map(_) => "a map",
        Edn::Tagged(..) => "a tagged literal",
    }
}

/// Builds an op (numbered `index`) from an op map form starting at `line`.
/// Fields are checked in a fixed order (process, type, f, time, node), so
/// the error names the first bad one.
fn op_from_node(line: usize, value: Edn, index: u64) -> Result<(Op, Shape), EdnError> {
    let fields = OpFields::of(line, value)?;
    let process = process_of(line, fields.process)?;
    let op_type = op_type_of(line, fields.op_type)?;
    let f = f_of(line, fields.f)?;
    let time = time_of(line, fields.time)?;
    let node = node_of(line, fields.node)?;
    let error = match fields.error {
        None => None,
        Some(Node {
            value: Edn::Nil, ..
        }) => None,
        Some(v) => Some(v.into_json()?),
    };
    // An op naming its key (`:key`, as Porcupine's kv histories and our
    // JSONL do) is already split: its value is kept whole.
    let explicit_key = key_of(line, fields.key)?;
    let (key, value, shape) = match (explicit_key, fields.value) {
        (Some(key), None) => (Some(key), Value::Null, Shape::Tuple),
        (Some(key), Some(v)) => (Some(key), v.into_json()?, Shape::Tuple),
        (None, None) => (None, Value::Null, Shape::Other),
        (None, Some(v)) => split_value(v)?,
    };
    let op = Op {
        index,
        time,
        process,
        op_type,
        f,
        key,
        value,
        node,
        error,
    };
    Ok((op, shape))
}

/// The entries of an op map that make an op (the others are ignored).
#[derive(Default)]
struct OpFields<'a> {
    process: Option<Node<'a>>,
    op_type: Option<Node<'a>>,
    f: Option<Node<'a>>,
    value: Option<Node<'a>>,
    time: Option<Node<'a>>,
    node: Option<Node<'a>>,
    error: Option<Node<'a>>,
    key: Option<Node<'a>>,
}

impl<'a> OpFields<'a> {
    /// The fields of an op map (or a tagged record of one) at `line`.
    fn of(line: usize, value: Edn<'a>) -> Result<OpFields<'a>, EdnError> {
        let entries = match value {
            Edn::Map(entries) => entries,
            Edn::Tagged(tag, inner) => match inner.value {
                Edn::Map(entries) => entries,
                other => {
                    return err(
                        line,
                        format!("expected an op map, found #{tag} {}", describe(&other)),
                    )
                }
            },
            other => {
                return err(
                    line,
                    format!("expected an op map, found {}", describe(&other)),
                )
            }
        };
        let mut fields = OpFields::default();
        for (k, v) in entries {
            let slot = match k.name() {
                Some("process") => &mut fields.process,
                Some("type") => &mut fields.op_type,
                Some("f") => &mut fields.f,
                Some("value") => &mut fields.value,
                Some("time") => &mut fields.time,
                Some("node") => &mut fields.node,
                Some("error") => &mut fields.error,
                Some("key") => &mut fields.key,
                _ => continue,
            };
            *slot = Some(v);
        }
        Ok(fields)
    }
}

fn process_of(line: usize, v: Option<Node>) -> Result<Process, EdnError> {
    let Some(v) = v else {
        return err(line, "op map has no :process");
    };
    Ok(match &v.value {
        Edn::Int(p) if *p >= 0 => Process::Client(*p as u64),
        Edn::BigInt(t) if t.parse::<u64>().is_ok() => Process::Client(t.parse().unwrap_or(0)),
        _ if v.name() == Some("nemesis") => Process::Nemesis,
        _ => {
            return err(
                line,
                format!(
                    ":process must be a non-negative integer or :nemesis, got {}",
                    Short(&v)
                ),
            )
        }
    })
}

fn op_type_of(line: usize, v: Option<Node>) -> Result<OpType, EdnError> {
    let Some(v) = v else {
        return err(line, "op map has no :type");
    };
    Ok(match v.name() {
        Some("invoke") => OpType::Invoke,
        Some("ok") => OpType::Ok,
        Some("fail") => OpType::Fail,
        Some("info") => OpType::Info,
        _ => {
            return err(
                line,
                format!(
                    ":type must be :invoke, :ok, :fail or :info, got {}",
                    Short(&v)
                ),
            )
        }
    })
}

fn f_of(line: usize, v: Option<Node>) -> Result<String, EdnError> {
    let Some(v) = v else {
        return err(line, "op map has no :f");
    };
    match v.name() {
        Some(name) => Ok(name.to_string()),
        None => err(
            line,
            format!(":f must be a keyword or a string, got {}", Short(&v)),
        ),
    }
}

fn time_of(line: usize, v: Option<Node>) -> Result<Option<u64>, EdnError> {
    let Some(v) = v else { return Ok(None) };
    match &v.value {
        Edn::Nil => Ok(None),
        Edn::Int(t) if *t >= 0 => Ok(Some(*t as u64)),
        Edn::BigInt(t) if t.parse::<u64>().is_ok() => Ok(t.parse().ok()),
        _ => err(
            line,
            format!(
                ":time must be a non-negative integer (nanoseconds), got {}",
                Short(&v)
            ),
        ),
    }
}

fn node_of(line: usize, v: Option<Node>) -> Result<Option<String>, EdnError> {
    name_of(line, v, ":node must be a string or a keyword")
}

/// An op's `:key`: a string, keyword, symbol or integer (nil: none).
fn key_of(line: usize, v: Option<Node>) -> Result<Option<String>, EdnError> {
    name_of(line, v, ":key must be a string, keyword or integer")
}

/// A name-like entry (string, keyword, symbol, integer) as a string; nil
/// or absent is none, anything else the error `what`.
fn name_of(line: usize, v: Option<Node>, what: &str) -> Result<Option<String>, EdnError> {
    let Some(v) = v else { return Ok(None) };
    match v.value {
        Edn::Nil => Ok(None),
        Edn::Str(_) | Edn::Keyword(_) | Edn::Symbol(_) | Edn::Int(_) | Edn::BigInt(_) => {
            Ok(Some(v.into_key_string()))
        }
        _ => err(line, format!("{what}, got {}", Short(&v))),
    }
}

/// Converts an op's value; a `jepsen.independent.Tuple` becomes key + value.
fn split_value(v: Node) -> Result<(Option<String>, Value, Shape), EdnError> {
    let line = v.line;
    match v.value {
        Edn::Tagged(tag, inner) if tag == TUPLE_TAG => {
            let (k, val) = match inner.value {
                Edn::Map(entries) => {
                    let mut k = None;
                    let mut val = None;
                    for (ek, ev) in entries {
                        match ek.name() {
                            Some("key") => k = Some(ev),
                            Some("value") => val = Some(ev),
                            _ => {}
                        }
                    }
                    match k {
                        Some(k) => (k, val),
                        None => return err(line, format!("#{TUPLE_TAG} without :key")),
                    }
                }
                Edn::Vector(mut items) if items.len() == 2 => {
                    let val = items.pop();
                    (items.pop().expect("two elements"), val)
                }
                _ => {
                    return err(
                        line,
                        format!("#{TUPLE_TAG} must tag a map with :key and :value"),
                    )
                }
            };
            let value = match val {
                Some(val) => val.into_json()?,
                None => Value::Null,
            };
            Ok((Some(k.into_key_string()), value, Shape::Tuple))
        }
        Edn::Vector(items) if items.len() == 2 => {
            let shape = if items[0].is_key_like() {
                Shape::Pair
            } else {
                Shape::OddPair
            };
            let json = Node {
                line,
                value: Edn::Vector(items),
            }
            .into_json()?;
            Ok((None, json, shape))
        }
        other => Ok((None, Node { line, value: other }.into_json()?, Shape::Other)),
    }
}
