//! A campaign file: a matrix of cells, each a test table plus `runs`,
//! `expect` and `min-detections` (docs/DESIGN.md's shared vocabulary).
//!
//! ```toml
//! name = "demo"
//! seed = 7                      # optional; else random, and recorded
//!
//! [defaults]                    # test keys every cell starts from
//! time-limit = "20s"
//! nodes = 5
//!
//! [[cell]]
//! name = "async-bully"          # optional; else the test's own name
//! workload = "set"
//! write-concern = "one"
//! election = "bully"
//! nemesis = ["partition"]
//! runs = 3
//! expect = ["lost-write"]       # or "valid"
//! min-detections = 1            # default 1
//! vary = { nemesis = [["partition"], ["kill"]] }   # optional matrix
//! ```
//!
//! `vary` turns one cell into the cartesian product of the values listed
//! for each key (in key order); each product cell is named after the base
//! name and the values chosen (`strong-partition`, `strong-kill`). Every
//! other key is a test key (the long flag name), checked the way `--test`
//! files are: an unknown key is an error naming the cell and its line.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::test_spec::TestSpec;

/// The anomaly kinds a detection expectation may name (docs/DESIGN.md's
/// vocabulary); the cycle kinds also with `-process` and `-realtime`.
pub const ANOMALY_KINDS: [&str; 18] = [
    "not-linearizable",
    "lost-write",
    "stale-read",
    "unexpected-element",
    "duplicate-elements",
    "incompatible-order",
    "G0",
    "G1a",
    "G1b",
    "G1c",
    "G-single",
    "G2-item",
    "lost-update",
    "dirty-update",
    "internal",
    "garbage-read",
    "future-read",
    "G-nonadjacent",
];

/// Cycle kinds that also come with `-process` / `-realtime` suffixes.
const SUFFIXED: [&str; 5] = ["G0", "G1c", "G-single", "G-nonadjacent", "G2-item"];

/// Whether `kind` is a kind of docs/DESIGN.md's vocabulary.
pub fn is_anomaly_kind(kind: &str) -> bool {
    if ANOMALY_KINDS.contains(&kind) || kind.ends_with("-cycle-exists") {
        return true;
    }
    ["-process", "-realtime"].iter().any(|suffix| {
        kind.strip_suffix(suffix)
            .is_some_and(|base| SUFFIXED.contains(&base))
    })
}

/// What a cell expects of its runs; in TOML and JSON `"valid"` or a list
/// of kinds, as written in the campaign file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Expect {
    /// Every run valid: an invalid run fails the cell, an unknown one
    /// leaves it unknown.
    Valid,
    /// At least `min-detections` runs find one of these anomaly kinds.
    Detect(Vec<String>),
}

impl Serialize for Expect {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Expect::Valid => s.serialize_str("valid"),
            Expect::Detect(kinds) => kinds.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for Expect {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Expect, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Form {
            Word(String),
            Kinds(Vec<String>),
        }
        match Form::deserialize(d)? {
            Form::Word(w) if w == "valid" => Ok(Expect::Valid),
            Form::Word(w) => Err(serde::de::Error::custom(format!(
                "{w:?}: expected \"valid\" or a list of anomaly kinds"
            ))),
            Form::Kinds(kinds) => Ok(Expect::Detect(kinds)),
        }
    }
}

impl Expect {
    /// How a person would write it: `valid`, or `lost-write | stale-read`.
    pub fn describe(&self) -> String {
        match self {
            Expect::Valid => "valid".into(),
            Expect::Detect(kinds) => kinds.join(" | "),
        }
    }
}

/// One cell of the matrix, resolved.
#[derive(Clone, Debug, PartialEq)]
pub struct Cell {
    /// Its name: unique in the campaign; also the runs' test name.
    pub name: String,
    /// The test each run performs (its seed is set per run).
    pub test: TestSpec,
    /// How many runs.
    pub runs: usize,
    /// What the runs must show.
    pub expect: Expect,
    /// With a detection expectation: how many runs must detect.
    pub min_detections: usize,
    /// The line of the campaign file the cell starts at.
    pub line: usize,
}

/// A campaign, resolved: its cells in file order.
#[derive(Clone, Debug, PartialEq)]
pub struct Campaign {
    /// The campaign's name (its directory under `store/campaigns/`).
    pub name: String,
    /// Where it came from (`built-in demo` for the default).
    pub source: String,
    /// The seed, if the file fixes one.
    pub seed: Option<u64>,
    /// What it is for, in words.
    pub description: Option<String>,
    /// The cells.
    pub cells: Vec<Cell>,
}

/// A campaign file that does not make a campaign.
#[derive(Debug, thiserror::Error)]
pub enum CampaignError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not a valid campaign: what and where.
    #[error("{source_name}: {message}")]
    Invalid {
        /// The file (or `built-in demo`).
        source_name: String,
        /// What is wrong, with the line and field.
        message: String,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    name: Option<String>,
    seed: Option<u64>,
    description: Option<String>,
    #[serde(default)]
    defaults: toml::Table,
    #[serde(default)]
    cell: Vec<toml::Spanned<toml::Table>>,
}

/// Keys of a cell that are not test keys.
const CELL_KEYS: [&str; 5] = ["name", "runs", "expect", "min-detections", "vary"];

impl Campaign {
    /// Reads a campaign file.
    pub fn load(path: &Path) -> Result<Campaign, CampaignError> {
        let text = std::fs::read_to_string(path).map_err(|source| CampaignError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "campaign".into());
        Campaign::parse(&text, &path.display().to_string(), &stem)
    }

    /// Parses campaign TOML; `source` names it in errors, `default_name`
    /// is the name when the file gives none.
    pub fn parse(text: &str, source: &str, default_name: &str) -> Result<Campaign, CampaignError> {
        let invalid = |message: String| CampaignError::Invalid {
            source_name: source.to_string(),
            message,
        };
        let file: File = toml::from_str(text).map_err(|e| invalid(e.to_string()))?;
        if file.cell.is_empty() {
            return Err(invalid(
                "no cells: add at least one [[cell]] table (a test table with runs and expect)"
                    .into(),
            ));
        }
        for key in CELL_KEYS {
            if file.defaults.contains_key(key) && key != "runs" && key != "min-detections" {
                return Err(invalid(format!(
                    "[defaults]: {key:?} belongs in a [[cell]], not in the defaults"
                )));
            }
        }
        let mut cells = Vec::new();
        for (index, spanned) in file.cell.iter().enumerate() {
            let line = line_of(text, spanned.span().start);
            let context = CellContext {
                text,
                span: spanned.span(),
                number: index + 1,
                line,
            };
            let expanded = expand(&file.defaults, spanned.get_ref(), &context)
                .map_err(|m| invalid(format!("{}: {m}", context.label())))?;
            cells.extend(expanded);
        }
        let mut seen = BTreeSet::new();
        for cell in &cells {
            if !seen.insert(cell.name.clone()) {
                return Err(invalid(format!(
                    "two cells are named {:?} (line {}): give each cell a distinct `name`",
                    cell.name, cell.line
                )));
            }
        }
        Ok(Campaign {
            name: file.name.unwrap_or_else(|| default_name.to_string()),
            source: source.to_string(),
            seed: file.seed,
            description: file.description,
            cells,
        })
    }
}

struct CellContext<'a> {
    text: &'a str,
    span: std::ops::Range<usize>,
    number: usize,
    line: usize,
}

impl CellContext<'_> {
    fn label(&self) -> String {
        format!("cell {} (line {})", self.number, self.line)
    }

    /// The line where `key` is set inside this cell, if it can be found.
    fn key_line(&self, key: &str) -> Option<usize> {
        let body = self.text.get(self.span.clone())?;
        let mut offset = 0;
        for line in body.split_inclusive('\n') {
            let trimmed = line.trim_start();
            if trimmed.starts_with(key) && trimmed[key.len()..].trim_start().starts_with('=') {
                return Some(line_of(self.text, self.span.start + offset));
            }
            offset += line.len();
        }
        None
    }
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// One `[[cell]]` table over the defaults, expanded over its `vary` keys.
fn expand(
    defaults: &toml::Table,
    table: &toml::Table,
    context: &CellContext,
) -> Result<Vec<Cell>, String> {
    let mut base = defaults.clone();
    for (k, v) in table {
        base.insert(k.clone(), v.clone());
    }
    let name = match base.remove("name") {
        Some(toml::Value::String(s)) => Some(s),
        Some(other) => return Err(format!("name must be a string, got {other}")),
        None => None,
    };
    let runs = take_count(&mut base, "runs", 1, context)?;
    let min_detections = take_count(&mut base, "min-detections", 1, context)?;
    let expect = match base.remove("expect") {
        None => return Err("missing `expect`: \"valid\" or a list of anomaly kinds".into()),
        Some(value) => parse_expect(&value).map_err(|m| at(context, "expect", m))?,
    };
    if let Expect::Detect(_) = expect {
        if min_detections > runs {
            return Err(format!(
                "min-detections ({min_detections}) is more than runs ({runs}): the cell could never pass"
            ));
        }
    }
    let vary = take_vary(&mut base, context)?;
    let combos = combinations(base, &vary, context)?;
    let mut cells = Vec::new();
    for (labels, table) in combos {
        let test = combination_test(table, &labels, name.as_deref(), context)?;
        cells.push(Cell {
            name: test.name(),
            test,
            runs,
            expect: expect.clone(),
            min_detections,
            line: context.line,
        });
    }
    Ok(cells)
}

/// Removes the cell's `vary` table (empty when absent).
fn take_vary(base: &mut toml::Table, context: &CellContext) -> Result<toml::Table, String> {
    match base.remove("vary") {
        None => Ok(toml::Table::new()),
        Some(toml::Value::Table(t)) => Ok(t),
        Some(other) => Err(at(
            context,
            "vary",
            format!("must be a table of key = [values], got {other}"),
        )),
    }
}

/// Every combination of the `vary` values over `base`, each with the labels
/// of its values (for the cell's name), in the file's order.
fn combinations(
    base: toml::Table,
    vary: &toml::Table,
    context: &CellContext,
) -> Result<Vec<(Vec<String>, toml::Table)>, String> {
    let mut combos: Vec<(Vec<String>, toml::Table)> = vec![(Vec::new(), base)];
    for (key, values) in vary {
        let toml::Value::Array(values) = values else {
            return Err(at(
                context,
                "vary",
                format!("vary.{key} must be a list of values"),
            ));
        };
        if values.is_empty() {
            return Err(at(context, "vary", format!("vary.{key} is empty")));
        }
        let mut next = Vec::new();
        for (labels, table) in &combos {
            for value in values {
                let mut table = table.clone();
                table.insert(key.clone(), value.clone());
                let mut labels = labels.clone();
                labels.push(value_label(value));
                next.push((labels, table));
            }
        }
        combos = next;
    }
    Ok(combos)
}

/// One combination's test, validated and named: the cell's `name` (or the
/// test's own name) followed by the combination's labels.
fn combination_test(
    table: toml::Table,
    labels: &[String],
    name: Option<&str>,
    context: &CellContext,
) -> Result<TestSpec, String> {
    let mut test = TestSpec::deserialize(toml::Value::Table(table)).map_err(|e| {
        let message = e.to_string();
        let line = field_in(&message).and_then(|k| context.key_line(&k));
        match line {
            Some(l) => format!("line {l}: {}", message.trim()),
            None => message.trim().to_string(),
        }
    })?;
    test.validate().map_err(|e| e.to_string())?;
    let base_name = name.map_or_else(|| test.name(), str::to_string);
    let name = if labels.is_empty() {
        base_name
    } else {
        format!("{base_name}-{}", labels.join("-"))
    };
    results::store::sanitize_test_name(&name).map_err(|e| e.to_string())?;
    test.name = Some(name);
    Ok(test)
}

fn at(context: &CellContext, key: &str, message: String) -> String {
    match context.key_line(key) {
        Some(line) => format!("line {line}: {key}: {message}"),
        None => format!("{key}: {message}"),
    }
}

fn take_count(
    table: &mut toml::Table,
    key: &str,
    default: usize,
    context: &CellContext,
) -> Result<usize, String> {
    match table.remove(key) {
        None => Ok(default),
        Some(toml::Value::Integer(n)) if n >= 1 => Ok(n as usize),
        Some(other) => Err(at(
            context,
            key,
            format!("must be a whole number of at least 1, got {other}"),
        )),
    }
}

fn parse_expect(value: &toml::Value) -> Result<Expect, String> {
    match value {
        toml::Value::String(s) if s == "valid" => Ok(Expect::Valid),
        toml::Value::String(s) => Err(format!(
            "{s:?}: expected \"valid\" or a list of anomaly kinds such as [\"lost-write\"]"
        )),
        toml::Value::Array(items) if !items.is_empty() => {
            let mut kinds = Vec::new();
            for item in items {
                let toml::Value::String(kind) = item else {
                    return Err(format!("{item} is not an anomaly kind (a string)"));
                };
                if !is_anomaly_kind(kind) {
                    return Err(format!(
                        "unknown anomaly kind {kind:?}; expected one of {} (cycle kinds also with -process or -realtime)",
                        ANOMALY_KINDS.join(", ")
                    ));
                }
                kinds.push(kind.clone());
            }
            Ok(Expect::Detect(kinds))
        }
        other => Err(format!(
            "expected \"valid\" or a non-empty list of anomaly kinds, got {other}"
        )),
    }
}

/// A short label for a varied value: `partition`, `partition+kill`, `one`.
fn value_label(value: &toml::Value) -> String {
    match value {
        toml::Value::String(s) => s.clone(),
        toml::Value::Array(items) => items.iter().map(value_label).collect::<Vec<_>>().join("+"),
        other => other.to_string(),
    }
}

/// The field a serde error names (`unknown field `x``, `missing field `x``,
/// or `... for key `x``).
fn field_in(message: &str) -> Option<String> {
    let start = message.find('`')? + 1;
    let end = start + message[start..].find('`')?;
    Some(message[start..end].to_string())
}

/// The demo campaign `faultline campaign` runs with no file: the
/// asynchronous, bully-elected design under partitions (which loses
/// acknowledged writes) and the strong mode under the same faults (which
/// must not). It is `campaigns/demo.toml`, compiled in.
pub const DEMO: &str = include_str!("../../../campaigns/demo.toml");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cell_is_a_test_table_with_runs_and_an_expectation() {
        let c = Campaign::parse(
            "name = \"t\"\n[defaults]\ntime-limit = \"5s\"\n\n[[cell]]\nname = \"weak\"\nworkload = \"set\"\nwrite-concern = \"one\"\nruns = 4\nexpect = [\"lost-write\"]\nmin-detections = 2\n\n[[cell]]\nexpect = \"valid\"\n",
            "t.toml",
            "x",
        )
        .unwrap();
        assert_eq!(c.name, "t");
        assert_eq!(c.cells.len(), 2);
        let weak = &c.cells[0];
        assert_eq!(weak.name, "weak");
        assert_eq!(weak.runs, 4);
        assert_eq!(weak.min_detections, 2);
        assert_eq!(weak.expect, Expect::Detect(vec!["lost-write".into()]));
        assert_eq!(weak.test.time_limit, std::time::Duration::from_secs(5));
        assert_eq!(weak.test.name.as_deref(), Some("weak"));
        assert_eq!(weak.line, 5);
        let strong = &c.cells[1];
        assert_eq!(strong.expect, Expect::Valid);
        assert_eq!(strong.runs, 1);
        assert_eq!(
            strong.name,
            TestSpec {
                name: None,
                ..strong.test.clone()
            }
            .name()
        );
    }

    #[test]
    fn vary_expands_into_the_product_named_by_the_values() {
        let c = Campaign::parse(
            "[[cell]]\nname = \"s\"\nexpect = \"valid\"\nvary = { nemesis = [[\"partition\"], [\"kill\", \"pause\"]], nodes = [3, 5] }\n",
            "t.toml",
            "x",
        )
        .unwrap();
        let names: Vec<&str> = c.cells.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "s-partition-3",
                "s-partition-5",
                "s-kill+pause-3",
                "s-kill+pause-5"
            ]
        );
        assert_eq!(c.cells[2].test.nemesis, ["kill", "pause"]);
        assert_eq!(c.cells[3].test.nodes, 5);
    }

    #[test]
    fn a_misspelt_test_key_names_the_cell_and_its_line() {
        let err = Campaign::parse(
            "[[cell]]\nexpect = \"valid\"\n\n[[cell]]\nexpect = \"valid\"\nwrite-concerns = \"one\"\n",
            "c.toml",
            "x",
        )
        .unwrap_err()
        .to_string();
        assert!(err.starts_with("c.toml: cell 2 (line 4)"), "{err}");
        assert!(
            err.contains("line 6") && err.contains("write-concerns"),
            "{err}"
        );
    }

    #[test]
    fn bad_expectations_say_what_is_accepted() {
        let parse = |cell: &str| {
            Campaign::parse(&format!("[[cell]]\n{cell}\n"), "c.toml", "x")
                .unwrap_err()
                .to_string()
        };
        assert!(parse("runs = 2").contains("missing `expect`"));
        let unknown = parse("expect = [\"lost-writes\"]");
        assert!(
            unknown.contains("lost-writes") && unknown.contains("stale-read"),
            "{unknown}"
        );
        assert!(parse("expect = \"invalid\"").contains("\"valid\" or a list"));
        assert!(
            parse("expect = [\"lost-write\"]\nruns = 2\nmin-detections = 3").contains("never pass")
        );
        assert!(parse("expect = \"valid\"\nruns = 0").contains("line 3: runs"));
        assert!(parse("expect = \"valid\"\nnemesis = [\"meteor\"]").contains("meteor"));
    }

    #[test]
    fn cycle_kinds_take_process_and_realtime_suffixes() {
        assert!(is_anomaly_kind("G-single-realtime"));
        assert!(is_anomaly_kind("G0-process"));
        assert!(is_anomaly_kind("lost-write"));
        assert!(!is_anomaly_kind("lost-write-realtime"));
        assert!(!is_anomaly_kind("G3"));
    }

    #[test]
    fn a_cell_names_its_system_like_any_test_table() {
        let campaign = Campaign::parse(
            "[[cell]]\nname = \"tn\"\nsystem = \"target-node\"\nexpect = \"valid\"\n\
             [[cell]]\nname = \"mine\"\nexpect = \"valid\"\n[cell.db]\nstart = \"mydb {port}\"\n",
            "c.toml",
            "x",
        )
        .unwrap();
        assert_eq!(campaign.cells[0].test.system_name(), "target-node");
        assert_eq!(campaign.cells[1].test.system_name(), "custom");
        let err = Campaign::parse(
            "[[cell]]\nsystem = \"no-such-system\"\nexpect = \"valid\"\n",
            "c.toml",
            "x",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("no-such-system") && err.contains("custom"),
            "{err}"
        );
    }

    #[test]
    fn cell_names_must_be_distinct() {
        let err = Campaign::parse(
            "[[cell]]\nname = \"a\"\nexpect = \"valid\"\n[[cell]]\nname = \"a\"\nexpect = \"valid\"\n",
            "c.toml",
            "x",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("two cells are named \"a\""), "{err}");
    }

    #[test]
    fn every_shipped_campaign_parses() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../campaigns");
        let mut names = Vec::new();
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "toml") {
                let campaign = Campaign::load(&path).unwrap_or_else(|e| panic!("{e}"));
                assert!(!campaign.cells.is_empty());
                names.push(campaign.name);
            }
        }
        names.sort();
        assert_eq!(
            names,
            [
                "ci",
                "demo",
                "etcd",
                "modes",
                "postgres",
                "postgres-ha",
                "redis"
            ]
        );
    }

    #[test]
    fn the_demo_campaign_parses() {
        let demo = Campaign::parse(DEMO, "built-in demo", "demo").unwrap();
        assert!(demo.cells.iter().any(|c| c.expect == Expect::Valid));
        assert!(demo.cells.iter().any(
            |c| matches!(&c.expect, Expect::Detect(k) if k.contains(&"lost-write".to_string()))
        ));
    }
}
