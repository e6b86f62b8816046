//! Reading a history in any supported format: our JSONL ([`crate::history`])
//! or Jepsen EDN ([`crate::edn`]), detected from the content unless the
//! caller says which.

use std::fmt;
use std::path::Path;
use std::str::FromStr;

use crate::edn::parse_edn_history;
use crate::history::{parse_jsonl, HistoryError, Op};

/// A history file format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    /// One JSON object per line (`history.jsonl`).
    Jsonl,
    /// Jepsen / Knossos EDN: a vector of op maps or a stream of them.
    Edn,
}

impl Format {
    /// The format's name as given on the command line: `jsonl` or `edn`.
    pub fn name(self) -> &'static str {
        match self {
            Format::Jsonl => "jsonl",
            Format::Edn => "edn",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Format {
    type Err = String;

    /// Accepts `jsonl` (or `json`) and `edn`, in any case.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "jsonl" | "json" => Ok(Format::Jsonl),
            "edn" => Ok(Format::Edn),
            _ => Err(format!(
                "unknown history format {s:?}: expected jsonl or edn"
            )),
        }
    }
}

/// Guesses the format from the first non-whitespace characters: a JSON
/// object (`{"` or `{` then `"` after whitespace, or `{}`) is JSONL; `[`,
/// `(`, `;`, `#` and `{` followed by anything else (`{:process ...`) are
/// EDN. Empty text counts as JSONL (an empty history either way).
pub fn detect_format(text: &str) -> Format {
    let is_ws = |b: &u8| b.is_ascii_whitespace();
    let bytes = text.as_bytes();
    let bytes = bytes.strip_prefix("\u{feff}".as_bytes()).unwrap_or(bytes);
    let mut rest = bytes.iter().skip_while(|b| is_ws(b));
    match rest.next() {
        None => Format::Jsonl,
        Some(b'{') => match rest.find(|b| !is_ws(b)) {
            Some(b'"' | b'}') => Format::Jsonl,
            _ => Format::Edn,
        },
        Some(_) => Format::Edn,
    }
}

/// Parses a history in `format`, or in the detected format when `None`.
/// `path` names the source in errors.
pub fn parse_history(
    text: &str,
    path: &Path,
    format: Option<Format>,
) -> Result<Vec<Op>, HistoryError> {
    match format.unwrap_or_else(|| detect_format(text)) {
        Format::Jsonl => parse_jsonl(text, path),
        Format::Edn => parse_edn_history(text, path),
    }
}

/// Reads and parses a history file (see [`parse_history`]).
pub fn read_history_file(path: &Path, format: Option<Format>) -> Result<Vec<Op>, HistoryError> {
    let text = read_text(path)?;
    parse_history(&text, path, format)
}

/// A history file's text; bytes that are not UTF-8 are an error naming
/// the line they are on.
pub fn read_text(path: &Path) -> Result<String, HistoryError> {
    let bytes = std::fs::read(path).map_err(|source| HistoryError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    String::from_utf8(bytes).map_err(|e| {
        let (line, column) = position_of(e.as_bytes(), e.utf8_error().valid_up_to());
        HistoryError::malformed(path, line, invalid_utf8(column))
    })
}

/// The message of a history's invalid UTF-8 at `column` of a line.
pub(crate) fn invalid_utf8(column: usize) -> String {
    format!("invalid UTF-8 at column {column}: a history is UTF-8 text")
}

/// The 1-based line and column (in bytes) of byte `offset` of `bytes`.
pub(crate) fn position_of(bytes: &[u8], offset: usize) -> (usize, usize) {
    let before = &bytes[..offset.min(bytes.len())];
    let line_start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    let line = 1 + before.iter().filter(|&&b| b == b'\n').count();
    (line, offset - line_start + 1)
}

/// The 1-based line each op of a history starts on, in history order (the
/// order of [`parse_history`]'s ops); empty if the text does not parse.
/// Checkers name ops by history index; this turns an index into the line
/// a person can open.
pub fn op_lines(text: &str, format: Option<Format>) -> Vec<usize> {
    match format.unwrap_or_else(|| detect_format(text)) {
        Format::Jsonl => text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
            .map(|(i, _)| i + 1)
            .collect(),
        Format::Edn => crate::edn::import::op_lines(text),
    }
}

/// The line of the op at history index `index` in the file at `path`, if
/// the file still reads.
pub fn op_line_in_file(path: &Path, format: Option<Format>, index: usize) -> Option<usize> {
    let text = read_text(path).ok()?;
    op_lines(&text, format).get(index).copied()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::Process;
    use serde_json::json;

    #[test]
    fn detects_jsonl_and_edn() {
        assert_eq!(detect_format("{\"process\":1}"), Format::Jsonl);
        assert_eq!(detect_format("\n  { \"process\":1}"), Format::Jsonl);
        assert_eq!(detect_format(""), Format::Jsonl);
        assert_eq!(detect_format("[{:process 1}]"), Format::Edn);
        assert_eq!(detect_format("{:process 1}"), Format::Edn);
        assert_eq!(detect_format("  ({:process 1})"), Format::Edn);
        assert_eq!(detect_format("; comment\n[]"), Format::Edn);
        assert_eq!(detect_format("#jepsen.history.Op{}"), Format::Edn);
    }

    #[test]
    fn parse_history_dispatches() {
        let jsonl = "{\"process\":1,\"type\":\"invoke\",\"f\":\"read\"}\n";
        let edn = "[{:process 1, :type :invoke, :f :read}]";
        let a = parse_history(jsonl, Path::new("a"), None).unwrap();
        let b = parse_history(edn, Path::new("b"), None).unwrap();
        assert_eq!(a, b);
        assert_eq!(a[0].process, Process::Client(1));
        assert_eq!(a[0].value, json!(null));
        // An explicit format wins over detection.
        let err = parse_history(edn, Path::new("b"), Some(Format::Jsonl)).unwrap_err();
        assert!(err.to_string().starts_with("b:1: "), "{err}");
    }

    #[test]
    fn format_names_round_trip() {
        for f in [Format::Jsonl, Format::Edn] {
            assert_eq!(f.name().parse::<Format>(), Ok(f));
        }
        assert!("yaml".parse::<Format>().is_err());
    }

    #[test]
    fn op_lines_skip_blank_lines_and_follow_edn_forms() {
        let jsonl = "{\"process\":1,\"type\":\"invoke\",\"f\":\"read\"}\n\n{\"process\":1,\"type\":\"ok\",\"f\":\"read\"}\n";
        assert_eq!(op_lines(jsonl, None), vec![1, 3]);
        let edn =
            "[{:process 1, :type :invoke,\n  :f :read}\n\n {:process 1, :type :ok, :f :read}]";
        assert_eq!(op_lines(edn, None), vec![1, 4]);
    }

    #[test]
    fn invalid_utf8_names_its_line_and_column() {
        let dir = std::env::temp_dir().join(format!("faultline-utf8-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("h.jsonl");
        std::fs::write(&path, b"{\"process\":1}\n{\"f\":\"r\xffad\"}\n").unwrap();
        let err = read_history_file(&path, None).unwrap_err().to_string();
        assert!(
            err.ends_with(":2: invalid UTF-8 at column 8: a history is UTF-8 text"),
            "{err}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn missing_file_is_an_io_error() {
        let err = read_history_file(Path::new("/nonexistent/h.edn"), None).unwrap_err();
        assert!(matches!(err, HistoryError::Io { .. }), "{err}");
        assert!(err.to_string().starts_with("/nonexistent/h.edn: "), "{err}");
    }
}
