//! An importer for Jepsen / Knossos / Elle histories written in EDN.
//!
//! Two layers:
//! - a small EDN reader ([`parse_edn`]) that works on bytes, borrows from the
//!   input wherever it can, and records the 1-based line where every form
//!   starts, so that errors say `file:line: what is wrong`;
//! - the history importer ([`parse_edn_history`]) that turns op maps into
//!   [`Op`]s, streaming one op map at a time.
//!
//! # Accepted history shapes
//!
//! One vector (or list) of op maps, or a stream of op maps; an op map may be
//! a tagged record such as `#jepsen.history.Op{...}`:
//!
//! ```text
//! ; a comment
//! [{:process 0, :type :invoke, :f :cas, :value [1 2], :time 1843211}
//!  {:process 0, :type :ok,     :f :cas, :value [1 2]}
//!  {:process :nemesis, :type :info, :f :partition, :value {:n1 [:n3]}}]
//! ```
//!
//! | key | meaning |
//! |---|---|
//! | `:process` | a non-negative integer, or `:nemesis` (required) |
//! | `:type` | `:invoke`, `:ok`, `:fail` or `:info` (required) |
//! | `:f` | a keyword, symbol or string (required) |
//! | `:value` | anything (absent reads as `nil`) |
//! | `:time` | nanoseconds, a non-negative integer (optional) |
//! | `:index` | ignored: ops are renumbered in file order |
//! | `:error` | anything, kept as JSON (optional) |
//! | `:node` | a string or keyword (optional) |
//!
//! Other keys are ignored.
//!
//! # EDN to JSON
//!
//! Keywords and symbols become strings without the colon (`:x` → `"x"`,
//! `:ns/x` → `"ns/x"`), `nil` → `null`, vectors, lists and sets → arrays,
//! maps → objects (keys that are not strings are rendered as text), integers
//! → numbers (an integer outside the `i64`/`u64` range is an error), tagged
//! literals → their form with the tag dropped (`#inst "..."` → the string).
//!
//! # Independent keys
//!
//! Jepsen's `jepsen.independent` workloads put a `[key value]` tuple in each
//! client op's value. A `#jepsen.independent.Tuple{:key k, :value v}` record
//! always becomes [`Op::key`] + [`Op::value`]. A plain two-element vector
//! `[k v]` is split only when the whole history is independent — see
//! [`Independent`].

use std::borrow::Cow;
use std::fmt;
use std::path::Path;

use serde_json::Value;

use crate::history::{HistoryError, Op, OpType, Process};

// ---------------------------------------------------------------------------
// EDN values
// ---------------------------------------------------------------------------

/// An EDN form together with the 1-based line where it starts.
#[derive(Clone, Debug, PartialEq)]
pub struct Node<'a> {
    /// 1-based line of the form's first character.
    pub line: usize,
    /// The form.
    pub value: Edn<'a>,
}

/// An EDN value. Text is borrowed from the input where possible.
#[derive(Clone, Debug, PartialEq)]
pub enum Edn<'a> {
    /// `nil`.
    Nil,
    /// `true` or `false`.
    Bool(bool),
    /// An integer that fits in `i64`.
    Int(i64),
    /// An integer that does not fit in `i64` (or carries the `N` suffix and
    /// does not fit): its decimal text with sign, without the `N`.
    BigInt(&'a str),
    /// A floating-point number (including `M` decimals and `##Inf`/`##NaN`).
    Float(f64),
    /// A string, escapes resolved.
    Str(Cow<'a, str>),
    /// A character literal such as `\a` or `\newline`.
    Char(char),
    /// A keyword, without its leading colon: `:ns/x` is `Keyword("ns/x")`.
    Keyword(&'a str),
    /// A symbol other than `nil`, `true` and `false`.
    Symbol(&'a str),
    /// `[...]`.
    Vector(Vec<Node<'a>>),
    /// `(...)`.
    List(Vec<Node<'a>>),
    /// `#{...}`, in file order.
    Set(Vec<Node<'a>>),
    /// `{...}`, entries in file order.
    Map(Vec<(Node<'a>, Node<'a>)>),
    /// `#tag form`, e.g. a record `#jepsen.independent.Tuple{:key 1, :value 2}`.
    Tagged(&'a str, Box<Node<'a>>),
}

/// A syntax or conversion error in EDN text: where, and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct EdnError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

fn err<T>(line: usize, message: impl Into<String>) -> Result<T, EdnError> {
    Err(EdnError {
        line,
        message: message.into(),
    })
}

/// Parses every top-level form of `text`.
pub fn parse_edn(text: &str) -> Result<Vec<Node<'_>>, EdnError> {
    let mut r = Reader::new(text);
    let mut forms = Vec::new();
    loop {
        r.skip_atmosphere()?;
        if r.at_end() {
            return Ok(forms);
        }
        forms.push(r.read_form()?);
    }
}

// ---------------------------------------------------------------------------
// The reader
// ---------------------------------------------------------------------------

/// Deepest nesting accepted (real histories nest a handful of levels).
const MAX_DEPTH: usize = 256;

const fn delimiter_table() -> [bool; 256] {
    let mut t = [false; 256];
    let delims = b" \t\n\r\x0c,()[]{}\";";
    let mut i = 0;
    while i < delims.len() {
        t[delims[i] as usize] = true;
        i += 1;
    }
    t
}

/// Bytes that end a token (symbol, keyword, number, tag).
static DELIMITER: [bool; 256] = delimiter_table();

struct Reader<'a> {
    text: &'a str,
    bytes: &'a [u8],
    pos: usize,
    line: usize,
    depth: usize,
}

fn closer_name(b: u8) -> &'static str {
    match b {
        b']' => "`]`",
        b')' => "`)`",
        _ => "`}`",
    }
}

impl<'a> Reader<'a> {
    fn new(text: &'a str) -> Self {
        Reader {
            text,
            bytes: text.as_bytes(),
            pos: 0,
            line: 1,
            depth: 0,
        }
    }

    #[inline]
    fn at_end(&self) -> bool {
        self.pos >= self.bytes.len()
    }

    #[inline]
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    #[inline]
    fn peek_at(&self, offset: usize) -> Option<u8> {
        self.bytes.get(self.pos + offset).copied()
    }

    /// Skips whitespace, commas, `;` comments and `#_` discarded forms.
    fn skip_atmosphere(&mut self) -> Result<(), EdnError> {
        let bytes = self.bytes;
        while let Some(&b) = bytes.get(self.pos) {
            match b {
                b'\n' => {
                    self.line += 1;
                    self.pos += 1;
                }
                b' ' | b'\t' | b'\r' | b',' | b'\x0c' => self.pos += 1,
                b';' => self.skip_line(),
                b'#' if self.peek_at(1) == Some(b'!') => self.skip_line(),
                b'#' if self.peek_at(1) == Some(b'_') => {
                    let line = self.line;
                    self.pos += 2;
                    self.skip_atmosphere()?;
                    match self.peek() {
                        None | Some(b']' | b')' | b'}') => {
                            return err(line, "`#_` with no form after it to discard")
                        }
                        Some(_) => {
                            self.read_form()?;
                        }
                    }
                }
                _ => break,
            }
        }
        Ok(())
    }

    /// Skips to the next newline (not consuming it).
    fn skip_line(&mut self) {
        match self.bytes[self.pos..].iter().position(|&c| c == b'\n') {
            Some(n) => self.pos += n,
            None => self.pos = self.bytes.len(),
        }
    }

    /// Reads a token (symbol, keyword body, number, tag) up to a delimiter.
    #[inline]
    fn token(&mut self) -> &'a str {
        let start = self.pos;
        let bytes = self.bytes;
        let mut end = start;
        while end < bytes.len() && !DELIMITER[bytes[end] as usize] {
            end += 1;
        }
        self.pos = end;
        // Delimiters are ASCII, so both ends are char boundaries.
        &self.text[start..end]
    }

    /// Reads one form. Atmosphere must have been skipped and input remain.
    fn read_form(&mut self) -> Result<Node<'a>, EdnError> {
        let line = self.line;
        let Some(b) = self.peek() else {
            return err(line, "unexpected end of input, expected a form");
        };
        let value = match b {
            b'[' => {
                self.pos += 1;
                let mut items = Vec::new();
                self.read_elements(b']', line, "vector", |n| {
                    items.push(n);
                    Ok(())
                })?;
                Edn::Vector(items)
            }
            b'(' => {
                self.pos += 1;
                let mut items = Vec::new();
                self.read_elements(b')', line, "list", |n| {
                    items.push(n);
                    Ok(())
                })?;
                Edn::List(items)
            }
            b'{' => {
                self.pos += 1;
                Edn::Map(self.read_map_entries(line)?)
            }
            b'"' => Edn::Str(self.read_string()?),
            b':' => {
                self.pos += 1;
                let name = self.token();
                if name.is_empty() {
                    return err(line, "keyword with no name after `:`");
                }
                Edn::Keyword(name)
            }
            b'\\' => Edn::Char(self.read_char()?),
            b'#' => return self.read_dispatch(line),
            b']' | b')' | b'}' => {
                return err(line, format!("unexpected {}", closer_name(b)));
            }
            _ => {
                let tok = self.token();
                if tok.is_empty() {
                    // Only reachable for a delimiter not handled above.
                    return err(line, format!("unexpected character {:?}", b as char));
                }
                atom(tok, line)?
            }
        };
        Ok(Node { line, value })
    }

    /// After the opening delimiter: reads forms up to `close`, handing each to
    /// `each`. `open_line` and `what` describe the collection for errors.
    fn read_elements(
        &mut self,
        close: u8,
        open_line: usize,
        what: &str,
        mut each: impl FnMut(Node<'a>) -> Result<(), EdnError>,
    ) -> Result<(), EdnError> {
        self.enter(open_line)?;
        loop {
            self.skip_atmosphere()?;
            match self.peek() {
                None => {
                    return err(
                        open_line,
                        format!(
                            "unterminated {what}: no closing {} before the end of the input",
                            closer_name(close)
                        ),
                    )
                }
                Some(c) if c == close => {
                    self.pos += 1;
                    self.depth -= 1;
                    return Ok(());
                }
                Some(c @ (b']' | b')' | b'}')) => {
                    return err(
                        self.line,
                        format!(
                            "expected {} to close the {what} opened at line {open_line}, found {}",
                            closer_name(close),
                            closer_name(c)
                        ),
                    )
                }
                Some(_) => each(self.read_form()?)?,
            }
        }
    }

    fn enter(&mut self, line: usize) -> Result<(), EdnError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return err(line, format!("forms nested deeper than {MAX_DEPTH} levels"));
        }
        Ok(())
    }

    /// After `{`: reads key/value pairs up to `}`.
    fn read_map_entries(
        &mut self,
        open_line: usize,
    ) -> Result<Vec<(Node<'a>, Node<'a>)>, EdnError> {
        let mut entries = Vec::new();
        let mut pending: Option<Node<'a>> = None;
        self.read_elements(b'}', open_line, "map", |n| {
            match pending.take() {
                None => pending = Some(n),
                Some(k) => entries.push((k, n)),
            }
            Ok(())
        })?;
        if let Some(k) = pending {
            return err(
                open_line,
                format!(
                    "map has an odd number of forms: key {} (line {}) has no value",
                    Short(&k),
                    k.line
                ),
            );
        }
        Ok(entries)
    }

    /// At `"`: reads a string, resolving escapes; borrows when there are none.
    fn read_string(&mut self) -> Result<Cow<'a, str>, EdnError> {
        let start_line = self.line;
        self.pos += 1;
        let bytes = self.bytes;
        let start = self.pos;
        // Fast path: no escapes.
        let mut i = start;
        while i < bytes.len() {
            match bytes[i] {
                b'"' => {
                    self.pos = i + 1;
                    return Ok(Cow::Borrowed(&self.text[start..i]));
                }
                b'\\' => break,
                b'\n' => self.line += 1,
                _ => {}
            }
            i += 1;
        }
        if i >= bytes.len() {
            return err(
                start_line,
                "unterminated string: no closing `\"` before the end of the input",
            );
        }
        // Slow path: copy, resolving escapes.
        let mut out = String::with_capacity(i - start + 16);
        out.push_str(&self.text[start..i]);
        let mut chunk = i;
        while i < bytes.len() {
            match bytes[i] {
                b'"' => {
                    out.push_str(&self.text[chunk..i]);
                    self.pos = i + 1;
                    return Ok(Cow::Owned(out));
                }
                b'\n' => {
                    self.line += 1;
                    i += 1;
                }
                b'\\' => {
                    out.push_str(&self.text[chunk..i]);
                    let Some(&e) = bytes.get(i + 1) else { break };
                    i += 2;
                    match e {
                        b'n' => out.push('\n'),
                        b't' => out.push('\t'),
                        b'r' => out.push('\r'),
                        b'b' => out.push('\u{8}'),
                        b'f' => out.push('\u{c}'),
                        b'"' => out.push('"'),
                        b'\\' => out.push('\\'),
                        b'/' => out.push('/'),
                        b'u' => {
                            self.pos = i;
                            let c = self.read_unicode_escape()?;
                            out.push(c);
                            i = self.pos;
                        }
                        _ => {
                            let shown = self.text[i - 1..].chars().next().unwrap_or('?');
                            return err(self.line, format!("invalid escape `\\{shown}` in string"));
                        }
                    }
                    chunk = i;
                }
                _ => i += 1,
            }
        }
        err(
            start_line,
            "unterminated string: no closing `\"` before the end of the input",
        )
    }

    /// After `\u`: four hex digits (a surrogate pair as two escapes).
    fn read_unicode_escape(&mut self) -> Result<char, EdnError> {
        let hi = self.hex4()?;
        if (0xD800..0xDC00).contains(&hi)
            && self.peek() == Some(b'\\')
            && self.peek_at(1) == Some(b'u')
        {
            let save = self.pos;
            self.pos += 2;
            let lo = self.hex4()?;
            if (0xDC00..0xE000).contains(&lo) {
                let c = 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00);
                return Ok(char::from_u32(c).unwrap_or('\u{FFFD}'));
            }
            self.pos = save;
        }
        Ok(char::from_u32(hi).unwrap_or('\u{FFFD}'))
    }

    fn hex4(&mut self) -> Result<u32, EdnError> {
        let digits = self.bytes.get(self.pos..self.pos + 4);
        let parsed = digits
            .and_then(|d| std::str::from_utf8(d).ok())
            .and_then(|d| u32::from_str_radix(d, 16).ok());
        match parsed {
            Some(v) => {
                self.pos += 4;
                Ok(v)
            }
            None => err(self.line, "`\\u` must be followed by four hex digits"),
        }
    }

    /// At `\`: a character literal.
    fn read_char(&mut self) -> Result<char, EdnError> {
        let line = self.line;
        self.pos += 1;
        // The first character is taken whatever it is (`\(`, `\;`, ...).
        let Some(first) = self.text[self.pos..].chars().next() else {
            return err(line, "`\\` at the end of the input");
        };
        let start = self.pos;
        self.pos += first.len_utf8();
        let rest = self.token();
        if rest.is_empty() {
            if first == '\n' {
                self.line += 1;
            }
            return Ok(first);
        }
        let name = &self.text[start..self.pos];
        let c = match name {
            "newline" => Some('\n'),
            "space" => Some(' '),
            "tab" => Some('\t'),
            "return" => Some('\r'),
            "formfeed" => Some('\u{c}'),
            "backspace" => Some('\u{8}'),
            _ if name.len() == 5 && name.starts_with('u') => u32::from_str_radix(&name[1..], 16)
                .ok()
                .and_then(char::from_u32),
            _ => None,
        };
        match c {
            Some(c) => Ok(c),
            None => err(line, format!("unknown character literal `\\{name}`")),
        }
    }

    /// At `#`: sets, `##Inf`-style values and tagged literals.
    fn read_dispatch(&mut self, line: usize) -> Result<Node<'a>, EdnError> {
        let value = match self.peek_at(1) {
            Some(b'{') => {
                self.pos += 2;
                let mut items = Vec::new();
                self.read_elements(b'}', line, "set", |n| {
                    items.push(n);
                    Ok(())
                })?;
                Edn::Set(items)
            }
            Some(b'_') => {
                // A discard before a form: skip it, then read what follows.
                self.skip_atmosphere()?;
                return match self.peek() {
                    None | Some(b']' | b')' | b'}') => {
                        err(line, "expected a form after the discarded one")
                    }
                    Some(_) => self.read_form(),
                };
            }
            Some(b'#') => {
                self.pos += 2;
                let name = self.token();
                Edn::Float(match name {
                    "Inf" => f64::INFINITY,
                    "-Inf" => f64::NEG_INFINITY,
                    "NaN" => f64::NAN,
                    _ => return err(line, format!("unknown symbolic value `##{name}`")),
                })
            }
            Some(b'"') => return err(line, "regular expressions (`#\"...\"`) are not EDN"),
            Some(c) if !DELIMITER[c as usize] => {
                self.pos += 1;
                let tag = self.token();
                self.skip_atmosphere()?;
                match self.peek() {
                    None | Some(b']' | b')' | b'}') => {
                        return err(line, format!("tag `#{tag}` with no form after it"))
                    }
                    Some(_) => {}
                }
                self.enter(line)?;
                let inner = self.read_form()?;
                self.depth -= 1;
                Edn::Tagged(tag, Box::new(inner))
            }
            _ => return err(line, "`#` must be followed by `{`, `_` or a tag"),
        };
        Ok(Node { line, value })
    }
}

/// Interprets a token that is not a keyword: number, `nil`, `true`, `false`
/// or symbol.
fn atom(tok: &str, line: usize) -> Result<Edn<'_>, EdnError> {
    let b = tok.as_bytes();
    let numeric = b[0].is_ascii_digit()
        || (matches!(b[0], b'+' | b'-') && b.len() > 1 && b[1].is_ascii_digit());
    if !numeric {
        return Ok(match tok {
            "nil" => Edn::Nil,
            "true" => Edn::Bool(true),
            "false" => Edn::Bool(false),
            _ => Edn::Symbol(tok),
        });
    }
    number(tok, line)
}

fn number(tok: &str, line: usize) -> Result<Edn<'_>, EdnError> {
    let invalid = || err(line, format!("invalid number `{tok}`"));
    let b = tok.as_bytes();
    let digits_from = usize::from(matches!(b[0], b'+' | b'-'));
    let (body, big) = match tok.strip_suffix('N') {
        Some(body) => (body, true),
        None => (tok, false),
    };
    if body.as_bytes()[digits_from..]
        .iter()
        .all(|c| c.is_ascii_digit())
    {
        if let Ok(v) = body.parse::<i64>() {
            return Ok(Edn::Int(v));
        }
        // Out of i64 range: keep the text; conversion decides.
        let text = body.strip_prefix('+').unwrap_or(body);
        return Ok(Edn::BigInt(text));
    }
    if big {
        return invalid();
    }
    if tok.contains('/') {
        return err(line, format!("ratios such as `{tok}` are not supported"));
    }
    let float_text = tok.strip_suffix('M').unwrap_or(tok);
    let ok_chars = float_text.as_bytes()[digits_from..]
        .iter()
        .all(|&c| c.is_ascii_digit() || matches!(c, b'.' | b'e' | b'E' | b'+' | b'-'));
    match float_text.parse::<f64>() {
        Ok(v) if ok_chars => Ok(Edn::Float(v)),
        _ => invalid(),
    }
}

// ---------------------------------------------------------------------------
// Printing (for messages and non-string map keys)
// ---------------------------------------------------------------------------

impl fmt::Display for Node<'_> {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        self.value.fmt(f)
    }
}

fn write_seq(f: &mut fmt::Formatter, open: &str, items: &[Node], close: &str) -> fmt::Result {
    f.write_str(open)?;
    for (i, n) in items.iter().enumerate() {
        if i > 0 {
            f.write_str(" ")?;
        }
        write!(f, "{n}")?;
    }
    f.write_str(close)
}

impl fmt::Display for Edn<'_> {
    /// Prints EDN text that reads back as the same value.
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Edn::Nil => f.write_str("nil"),
            Edn::Bool(b) => write!(f, "{b}"),
            Edn::Int(i) => write!(f, "{i}"),
            Edn::BigInt(t) => write!(f, "{t}N"),
            Edn::Float(x) if x.is_nan() => f.write_str("##NaN"),
            Edn::Float(x) if x.is_infinite() => {
                f.write_str(if *x > 0.0 { "##Inf" } else { "##-Inf" })
            }
            Edn::Float(x) => write!(f, "{x:?}"),
            Edn::Str(s) => {
                f.write_str("\"")?;
                for c in s.chars() {
                    match c {
                        '"' => f.write_str("\\\"")?,
                        '\\' => f.write_str("\\\\")?,
                        '\n' => f.write_str("\\n")?,
                        '\t' => f.write_str("\\t")?,
                        '\r' => f.write_str("\\r")?,
                        c => write!(f, "{c}")?,
                    }
                }
                f.write_str("\"")
            }
            Edn::Char(c) => match c {
                '\n' => f.write_str("\\newline"),
                ' ' => f.write_str("\\space"),
                '\t' => f.write_str("\\tab"),
                '\r' => f.write_str("\\return"),
                c => write!(f, "\\{c}"),
            },
            Edn::Keyword(k) => write!(f, ":{k}"),
            Edn::Symbol(s) => f.write_str(s),
            Edn::Vector(v) => write_seq(f, "[", v, "]"),
            Edn::List(v) => write_seq(f, "(", v, ")"),
            Edn::Set(v) => write_seq(f, "#{", v, "}"),
            Edn::Map(entries) => {
                f.write_str("{")?;
                for (i, (k, v)) in entries.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{k} {v}")?;
                }
                f.write_str("}")
            }
            Edn::Tagged(tag, inner) => write!(f, "#{tag} {inner}"),
        }
    }
}

/// A form printed for an error message, cut short when long.
struct Short<'n, 'a>(&'n Node<'a>);

impl fmt::Display for Short<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        const MAX: usize = 60;
        let text = self.0.to_string();
        if text.chars().count() <= MAX {
            f.write_str(&text)
        } else {
            let cut: String = text.chars().take(MAX).collect();
            write!(f, "{cut}...")
        }
    }
}

// ---------------------------------------------------------------------------
// Conversion to JSON
// ---------------------------------------------------------------------------

impl<'a> Node<'a> {
    /// Converts to JSON (see the module docs for the mapping). Fails, naming
    /// the line, on an integer outside the `i64`/`u64` range.
    pub fn into_json(self) -> Result<Value, EdnError> {
        let line = self.line;
        Ok(match self.value {
            Edn::Nil => Value::Null,
            Edn::Bool(b) => Value::Bool(b),
            Edn::Int(i) => Value::from(i),
            Edn::BigInt(t) => match t.parse::<u64>() {
                Ok(u) => Value::from(u),
                Err(_) => {
                    return err(
                        line,
                        format!("integer {t} is too large (outside the 64-bit range)"),
                    )
                }
            },
            // NaN and infinities have no JSON form: `Value::from` gives null.
            Edn::Float(x) => Value::from(x),
            Edn::Str(s) => Value::String(s.into_owned()),
            Edn::Char(c) => Value::String(c.to_string()),
            Edn::Keyword(k) | Edn::Symbol(k) => Value::String(k.to_string()),
            Edn::Vector(items) | Edn::List(items) | Edn::Set(items) => {
                let mut out = Vec::with_capacity(items.len());
                for n in items {
                    out.push(n.into_json()?);
                }
                Value::Array(out)
            }
            Edn::Map(entries) => {
                let mut out = serde_json::Map::new();
                for (k, v) in entries {
                    out.insert(k.into_key_string(), v.into_json()?);
                }
                Value::Object(out)
            }
            Edn::Tagged(_, inner) => inner.into_json()?,
        })
    }

    /// The text of a map key or an independent key: strings as they are,
    /// keywords and symbols without the colon, integers in decimal, anything
    /// else as EDN text.
    pub fn into_key_string(self) -> String {
        match self.value {
            Edn::Str(s) => s.into_owned(),
            Edn::Keyword(k) | Edn::Symbol(k) => k.to_string(),
            Edn::Int(i) => i.to_string(),
            Edn::BigInt(t) => t.to_string(),
            other => other.to_string(),
        }
    }

    /// The name of a keyword, symbol or string.
    fn name(&self) -> Option<&str> {
        match &self.value {
            Edn::Keyword(k) | Edn::Symbol(k) => Some(k),
            Edn::Str(s) => Some(s),
            _ => None,
        }
    }

    /// Whether this can serve as an independent key when auto-detecting.
    fn is_key_like(&self) -> bool {
        matches!(
            self.value,
            Edn::Int(_) | Edn::BigInt(_) | Edn::Str(_) | Edn::Keyword(_) | Edn::Symbol(_)
        )
    }
}

// ---------------------------------------------------------------------------
// The history importer
// ---------------------------------------------------------------------------

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

fn parse_ops(text: &str, independent: Independent) -> Result<Vec<Op>, EdnError> {
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
    split_independent(&mut c, independent)?;
    Ok(c.ops)
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
fn op_from_node(line: usize, value: Edn, index: u64) -> Result<(Op, Shape), EdnError> {
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
    let mut process = None;
    let mut op_type = None;
    let mut f = None;
    let mut value = None;
    let mut time = None;
    let mut node = None;
    let mut error = None;
    for (k, v) in entries {
        match k.name() {
            Some("process") => process = Some(v),
            Some("type") => op_type = Some(v),
            Some("f") => f = Some(v),
            Some("value") => value = Some(v),
            Some("time") => time = Some(v),
            Some("node") => node = Some(v),
            Some("error") => error = Some(v),
            _ => {}
        }
    }

    let process = match process {
        None => return err(line, "op map has no :process"),
        Some(v) => match &v.value {
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
        },
    };
    let op_type = match op_type {
        None => return err(line, "op map has no :type"),
        Some(v) => match v.name() {
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
        },
    };
    let f = match f {
        None => return err(line, "op map has no :f"),
        Some(v) => match v.name() {
            Some(name) => name.to_string(),
            None => {
                return err(
                    line,
                    format!(":f must be a keyword or a string, got {}", Short(&v)),
                )
            }
        },
    };
    let time = match time {
        None => None,
        Some(v) => match &v.value {
            Edn::Nil => None,
            Edn::Int(t) if *t >= 0 => Some(*t as u64),
            Edn::BigInt(t) if t.parse::<u64>().is_ok() => t.parse().ok(),
            _ => {
                return err(
                    line,
                    format!(
                        ":time must be a non-negative integer (nanoseconds), got {}",
                        Short(&v)
                    ),
                )
            }
        },
    };
    let node = match node {
        None => None,
        Some(v) => match v.value {
            Edn::Nil => None,
            Edn::Str(_) | Edn::Keyword(_) | Edn::Symbol(_) | Edn::Int(_) | Edn::BigInt(_) => {
                Some(v.into_key_string())
            }
            _ => {
                return err(
                    line,
                    format!(":node must be a string or a keyword, got {}", Short(&v)),
                )
            }
        },
    };
    let error = match error {
        None => None,
        Some(Node {
            value: Edn::Nil, ..
        }) => None,
        Some(v) => Some(v.into_json()?),
    };
    let (key, value, shape) = match value {
        None => (None, Value::Null, Shape::Other),
        Some(v) => split_value(v)?,
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(text: &str) -> Vec<Op> {
        parse_edn_history(text, Path::new("h.edn")).unwrap()
    }

    fn parse_err(text: &str) -> String {
        parse_edn_history(text, Path::new("h.edn"))
            .unwrap_err()
            .to_string()
    }

    fn json_of(text: &str) -> Value {
        let mut forms = parse_edn(text).unwrap();
        assert_eq!(forms.len(), 1, "{text}");
        forms.pop().unwrap().into_json().unwrap()
    }

    #[test]
    fn scalars_and_keywords_convert_to_json() {
        assert_eq!(json_of("nil"), Value::Null);
        assert_eq!(json_of("true"), json!(true));
        assert_eq!(json_of("false"), json!(false));
        assert_eq!(json_of("-42"), json!(-42));
        assert_eq!(json_of("+7"), json!(7));
        assert_eq!(json_of("12N"), json!(12));
        assert_eq!(json_of("18446744073709551615N"), json!(u64::MAX));
        assert_eq!(json_of("1.5"), json!(1.5));
        assert_eq!(json_of("-2e3"), json!(-2000.0));
        assert_eq!(json_of("2.5M"), json!(2.5));
        assert_eq!(json_of(":x"), json!("x"));
        assert_eq!(json_of(":ns/x"), json!("ns/x"));
        assert_eq!(json_of("foo.bar/baz"), json!("foo.bar/baz"));
        assert_eq!(json_of(r#""a\"b\\c\nd\u0041""#), json!("a\"b\\c\ndA"));
        assert_eq!(json_of(r"\a"), json!("a"));
        assert_eq!(json_of(r"\newline"), json!("\n"));
        assert_eq!(json_of(r"\u00e9"), json!("é"));
        assert_eq!(json_of("#{1 2}"), json!([1, 2]));
        assert_eq!(json_of("(1 :a)"), json!([1, "a"]));
        assert_eq!(json_of("#inst \"2020-01-01\""), json!("2020-01-01"));
        assert_eq!(
            json_of("{:a 1, \"b\" 2, 3 4, [1 2] nil}"),
            json!({"a": 1, "b": 2, "3": 4, "[1 2]": null})
        );
        assert_eq!(json_of("[1 #_ 2 #_#_ 3 4 5]"), json!([1, 5]));
    }

    #[test]
    fn nested_txn_vectors_convert() {
        assert_eq!(
            json_of("[[:read :x nil] [:write :y 2]]"),
            json!([["read", "x", null], ["write", "y", 2]])
        );
        let ops = parse(
            "[{:process 0, :type :invoke, :f :txn, :value [[:read :x nil] [:write :y 2]]}\n\
              {:process 0, :type :ok, :f :txn, :value [[:read :x 1] [:write :y 2]]}]",
        );
        assert_eq!(
            ops[0].value,
            json!([["read", "x", null], ["write", "y", 2]])
        );
        assert_eq!(ops[1].value, json!([["read", "x", 1], ["write", "y", 2]]));
        assert_eq!(ops[0].key, None);
    }

    #[test]
    fn reads_all_op_fields() {
        let ops = parse(
            "[{:type :invoke, :f :write, :value 3, :process 1, :time 99, :index 7, \
               :node \"n1\", :extra {:a 1}}\n\
              {:type :fail, :f :write, :value 3, :process 1, :error [:timeout \"slow\"]}]",
        );
        assert_eq!(ops.len(), 2);
        let a = &ops[0];
        assert_eq!(a.index, 0);
        assert_eq!(a.time, Some(99));
        assert_eq!(a.process, Process::Client(1));
        assert_eq!(a.op_type, OpType::Invoke);
        assert_eq!(a.f, "write");
        assert_eq!(a.value, json!(3));
        assert_eq!(a.node.as_deref(), Some("n1"));
        assert_eq!(a.error, None);
        let b = &ops[1];
        assert_eq!(b.index, 1);
        assert_eq!(b.op_type, OpType::Fail);
        assert_eq!(b.time, None);
        assert_eq!(b.error, Some(json!(["timeout", "slow"])));
    }

    #[test]
    fn comments_and_commas_are_whitespace() {
        let ops = parse(
            "; a history\n\
             [{:process 0, :type :invoke, :f :read, :value nil} ; trailing\n\
              ; between ops\n\
              #_{:process 9, :type :invoke, :f :read}\n\
              {:process 0,,, :type :ok :f :read :value 4}]\n\
             ; after\n",
        );
        assert_eq!(ops.len(), 2);
        assert_eq!(ops[1].value, json!(4));
    }

    #[test]
    fn stream_vector_and_list_give_the_same_ops() {
        let body = "{:process 0, :type :invoke, :f :read, :value nil}\n\
                    {:process 0, :type :ok, :f :read, :value 1}\n";
        let stream = parse(body);
        let vector = parse(&format!("[{body}]"));
        let list = parse(&format!("({body})"));
        assert_eq!(stream.len(), 2);
        assert_eq!(stream, vector);
        assert_eq!(stream, list);
        assert!(parse("").is_empty());
        assert!(parse("; nothing\n[]").is_empty());
    }

    #[test]
    fn records_are_op_maps() {
        let ops = parse(
            "#jepsen.history.Op{:index 0, :time 5, :type :invoke, :process 2, :f :read, :value nil}\n\
             #jepsen.history.Op{:index 1, :time 6, :type :ok, :process 2, :f :read, :value 0}",
        );
        assert_eq!(ops.len(), 2);
        assert_eq!(ops[1].value, json!(0));
        assert_eq!(ops[1].time, Some(6));
    }

    #[test]
    fn nemesis_process() {
        let ops = parse(
            "[{:process :nemesis, :type :info, :f :partition, :value {:n1 [:n3] :n2 #{:n4}}}\n\
              {:process \"nemesis\", :type :info, :f \"start\", :value \"fully connected\"}]",
        );
        assert!(ops.iter().all(Op::is_nemesis));
        assert_eq!(ops[0].f, "partition");
        assert_eq!(ops[0].value, json!({"n1": ["n3"], "n2": ["n4"]}));
        assert_eq!(ops[1].value, json!("fully connected"));
    }

    const INDEPENDENT: &str = "\
        [{:process 0, :type :invoke, :f :write, :value [1 3]}\n\
         {:process 0, :type :ok, :f :write, :value [1 3]}\n\
         {:process :nemesis, :type :info, :f :kill, :value nil}\n\
         {:process 1, :type :invoke, :f :read, :value [:k2 nil]}\n\
         {:process 1, :type :ok, :f :read, :value [:k2 nil]}\n\
         {:process 2, :type :invoke, :f :cas, :value [\"k3\" [0 1]]}]";

    #[test]
    fn independent_vectors_split_when_every_client_op_is_a_pair_and_there_is_a_read() {
        let ops = parse(INDEPENDENT);
        assert_eq!(ops[0].key.as_deref(), Some("1"));
        assert_eq!(ops[0].value, json!(3));
        assert_eq!(ops[2].key, None);
        assert_eq!(ops[2].value, Value::Null);
        assert_eq!(ops[3].key.as_deref(), Some("k2"));
        assert_eq!(ops[3].value, Value::Null);
        assert_eq!(ops[5].key.as_deref(), Some("k3"));
        assert_eq!(ops[5].value, json!([0, 1]));

        let unsplit = parse_edn_history_with(INDEPENDENT, Path::new("h"), Independent::No).unwrap();
        assert!(unsplit.iter().all(|op| op.key.is_none()));
        assert_eq!(unsplit[0].value, json!([1, 3]));
    }

    #[test]
    fn cas_register_values_are_not_split() {
        // Reads carry nil, so the [from to] cas values stay whole.
        let text = "[{:process 0, :type :invoke, :f :cas, :value [1 2]}\n\
                     {:process 0, :type :ok, :f :cas, :value [1 2]}\n\
                     {:process 1, :type :invoke, :f :read, :value nil}\n\
                     {:process 1, :type :ok, :f :read, :value 2}]";
        let ops = parse(text);
        assert!(ops.iter().all(|op| op.key.is_none()));
        assert_eq!(ops[0].value, json!([1, 2]));

        // Only cas ops (no read at all): still not split.
        let only_cas = "[{:process 0, :type :invoke, :f :cas, :value [1 2]}\n\
                         {:process 0, :type :ok, :f :cas, :value [1 2]}]";
        assert!(parse(only_cas).iter().all(|op| op.key.is_none()));
        // ...unless the caller says it is independent.
        let forced = parse_edn_history_with(only_cas, Path::new("h"), Independent::Yes).unwrap();
        assert_eq!(forced[0].key.as_deref(), Some("1"));
        assert_eq!(forced[0].value, json!(2));
    }

    #[test]
    fn forced_independence_rejects_a_value_that_is_not_a_pair() {
        let text = "[{:process 0, :type :invoke, :f :write, :value [1 3]}\n\
                     {:process 1, :type :invoke, :f :read, :value nil}]";
        let err = parse_edn_history_with(text, Path::new("h.edn"), Independent::Yes)
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("h.edn:2: "), "{err}");
        assert!(err.contains("[key value]"), "{err}");
    }

    #[test]
    fn tuples_always_split() {
        let text = "[{:process 0, :type :invoke, :f :write, \
                        :value #jepsen.independent.Tuple{:key 5, :value 1}}\n\
                     {:process 0, :type :ok, :f :cas, \
                        :value #jepsen.independent.Tuple{:key :a, :value [1 2]}}]";
        for mode in [Independent::Auto, Independent::Yes, Independent::No] {
            let ops = parse_edn_history_with(text, Path::new("h"), mode).unwrap();
            assert_eq!(ops[0].key.as_deref(), Some("5"));
            assert_eq!(ops[0].value, json!(1));
            assert_eq!(ops[1].key.as_deref(), Some("a"));
            assert_eq!(ops[1].value, json!([1, 2]));
        }
    }

    #[test]
    fn errors_name_file_line_and_problem() {
        let e = parse_err("[{:process 0, :type :invoke, :f :read}\n{:process 0, :type :ok,\n :f :read, :value \"abc]\n\n");
        assert!(e.starts_with("h.edn:3: unterminated string"), "{e}");

        let e = parse_err("[{:process 0, :type :invoke, :f :read}\n]]");
        assert_eq!(e, "h.edn:2: unexpected form after the history vector that ends before it (a history is one vector of op maps, or a stream of op maps)");

        let e = parse_err("{:process 0, :type :invoke, :f :read}\n]");
        assert_eq!(e, "h.edn:2: unexpected `]`");

        let e = parse_err("[{:process 0, :type :invoke, :f :read\n]");
        assert!(
            e.starts_with("h.edn:2: expected `}` to close the map opened at line 1, found `]`"),
            "{e}"
        );

        let e = parse_err("\n[{:process 0, :type :invoke, :f :read}\n");
        assert!(e.starts_with("h.edn:2: unterminated history vector"), "{e}");

        let e = parse_err("[\n{:process 0, :type :invoke :f}]");
        assert!(
            e.starts_with("h.edn:2: map has an odd number of forms"),
            "{e}"
        );

        let e = parse_err("[{:process 0, :type :invoke, :f :read}\n {:type :ok, :f :read}]");
        assert_eq!(e, "h.edn:2: op map has no :process");

        let e = parse_err("[{:process -1, :type :invoke, :f :read}]");
        assert_eq!(
            e,
            "h.edn:1: :process must be a non-negative integer or :nemesis, got -1"
        );

        let e = parse_err("\n\n{:process 1, :type :okay, :f :read}");
        assert_eq!(
            e,
            "h.edn:3: :type must be :invoke, :ok, :fail or :info, got :okay"
        );

        let e = parse_err("{:process 1, :type :ok, :f 3}");
        assert_eq!(e, "h.edn:1: :f must be a keyword or a string, got 3");

        let e = parse_err("{:process 1, :type :ok}");
        assert_eq!(e, "h.edn:1: op map has no :f");

        let e = parse_err("[{:process 1, :type :ok, :f :read}\n [1 2]]");
        assert_eq!(e, "h.edn:2: expected an op map, found a vector");

        let e =
            parse_err("{:process 1, :type :ok, :f :read,\n :value 123456789012345678901234567890}");
        assert_eq!(
            e,
            "h.edn:2: integer 123456789012345678901234567890 is too large (outside the 64-bit range)"
        );

        let e = parse_err("{:process 1, :type :ok, :f :read, :value 12abc}");
        assert_eq!(e, "h.edn:1: invalid number `12abc`");

        let e = parse_err("{:process 1, :type :ok, :f :read, :value \"a\\qb\"}");
        assert_eq!(e, "h.edn:1: invalid escape `\\q` in string");
    }

    #[test]
    fn edn_reader_rejects_bad_forms() {
        assert_eq!(parse_edn("[1 2").unwrap_err().line, 1);
        assert_eq!(
            parse_edn("\n\n)").unwrap_err().to_string(),
            "line 3: unexpected `)`"
        );
        assert!(parse_edn("#_").is_err());
        assert!(parse_edn("#foo").is_err());
        assert!(parse_edn(&"[".repeat(10_000)).is_err());
    }

    #[test]
    fn printing_reads_back() {
        let text = r#"{:a [1 -2 3.5 nil true "q\"s" \x #{:k} (sym) 9999999999999999999999N], "k" #t {:x 1}}"#;
        let forms = parse_edn(text).unwrap();
        let printed = forms[0].to_string();
        let again = parse_edn(&printed).unwrap();
        // Lines are all 1 in both.
        assert_eq!(forms, again);
    }

    /// Every history in `../shared/corpus/knossos` parses, with one op per
    /// `:process` key in the file and plausible invoke/completion pairing.
    #[test]
    #[ignore = "needs ../shared/corpus; run with --ignored"]
    fn parses_the_whole_knossos_corpus() {
        let root = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/corpus"));
        let knossos = root.join("knossos");
        assert!(
            knossos.is_dir(),
            "the shared corpus is missing: expected a directory at {} \
             (the corpus lives outside the repository, in ../shared/corpus)",
            knossos.display()
        );
        let mut files = Vec::new();
        let mut dirs = vec![knossos];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let p = entry.unwrap().path();
                if p.is_dir() {
                    dirs.push(p);
                } else if p.extension().is_some_and(|e| e == "edn") {
                    files.push(p);
                }
            }
        }
        files.sort();
        assert!(files.len() >= 100, "only {} .edn files found", files.len());
        let mut total = 0;
        for file in &files {
            let text = std::fs::read_to_string(file).unwrap();
            let ops = parse_edn_history(&text, file).unwrap_or_else(|e| panic!("{e}"));
            let expected = text.matches(":process").count();
            assert_eq!(ops.len(), expected, "{}: op count", file.display());
            assert!(!ops.is_empty(), "{}: no ops", file.display());
            let mut outstanding = std::collections::HashSet::new();
            for op in ops.iter().filter(|op| !op.is_nemesis()) {
                assert!(op.key.is_none(), "{}: unexpected key", file.display());
                if op.op_type == OpType::Invoke {
                    assert!(
                        outstanding.insert(op.process),
                        "{}: op {} invokes on a busy process",
                        file.display(),
                        op.index
                    );
                } else {
                    assert!(
                        outstanding.remove(&op.process),
                        "{}: op {} completes nothing",
                        file.display(),
                        op.index
                    );
                }
            }
            total += ops.len();
        }
        assert!(total > 40_000, "only {total} ops in the corpus");
    }
}
