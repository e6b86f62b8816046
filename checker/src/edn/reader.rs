//! The EDN reader: bytes to [`Node`]s (forms with the line where each
//! starts), borrowing from the input wherever it can, and their conversion
//! to JSON (see the parent module for the mapping).

use std::borrow::Cow;
use std::fmt;

use serde_json::Value;

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

pub(super) fn err<T>(line: usize, message: impl Into<String>) -> Result<T, EdnError> {
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

pub(super) struct Reader<'a> {
    text: &'a str,
    bytes: &'a [u8],
    pub(super) pos: usize,
    pub(super) line: usize,
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
    pub(super) fn new(text: &'a str) -> Self {
        Reader {
            text,
            bytes: text.as_bytes(),
            pos: 0,
            line: 1,
            depth: 0,
        }
    }

    #[inline]
    pub(super) fn at_end(&self) -> bool {
        self.pos >= self.bytes.len()
    }

    #[inline]
    pub(super) fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    #[inline]
    fn peek_at(&self, offset: usize) -> Option<u8> {
        self.bytes.get(self.pos + offset).copied()
    }

    /// Skips whitespace, commas, `;` comments and `#_` discarded forms.
    pub(super) fn skip_atmosphere(&mut self) -> Result<(), EdnError> {
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
    pub(super) fn read_form(&mut self) -> Result<Node<'a>, EdnError> {
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
    pub(super) fn read_elements(
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
pub(super) struct Short<'n, 'a>(pub(super) &'n Node<'a>);

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
    pub(super) fn name(&self) -> Option<&str> {
        match &self.value {
            Edn::Keyword(k) | Edn::Symbol(k) => Some(k),
            Edn::Str(s) => Some(s),
            _ => None,
        }
    }

    /// Whether this can serve as an independent key when auto-detecting.
    pub(super) fn is_key_like(&self) -> bool {
        matches!(
            self.value,
            Edn::Int(_) | Edn::BigInt(_) | Edn::Str(_) | Edn::Keyword(_) | Edn::Symbol(_)
        )
    }
}
