//! The store: one directory per run, grouped by test.
//!
//! # Layout
//!
//! ```text
//! <root>/
//!   latest -> <test-name>/<timestamp>        the newest run of any test
//!   <test-name>/
//!     latest -> <timestamp>                  the newest run of this test
//!     <timestamp>/                           e.g. 20261126T041503.123Z
//!       test.json                            the resolved test (a valid --test file)
//!       history.jsonl                        the history, streamed during the run
//!       results.json                         see crate::summary
//!       nodes/<node>.log                     one log per node
//! ```
//!
//! Decisions:
//! - Timestamps are UTC with millisecond precision, so names sort in time
//!   order. Two runs of one test started in the same millisecond get distinct
//!   directories: the second gets a `-1` suffix (then `-2`, ...). The
//!   directory is claimed with `create_dir`, which fails if it exists, so two
//!   harnesses sharing a store never share a run directory.
//! - Test names are sanitized to `[A-Za-z0-9._-]` (anything else becomes
//!   `-`), so a name can never escape the store or nest directories.
//! - The `latest` links are relative symlinks (the store can be moved or
//!   copied) and are replaced atomically: a new link is made under a temporary
//!   name and renamed over the old one, so a reader always sees either the
//!   old run or the new one, never a missing link.
//! - JSON files are written to a temporary file and renamed into place, so a
//!   reader (or a crash) never sees half a `results.json`.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::summary::Results;

/// The name of the links to the newest run.
pub const LATEST: &str = "latest";

/// Something went wrong reading or writing the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A file or directory could not be created, read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// A JSON file could not be encoded or decoded.
    #[error("{path}: {source}")]
    Json {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: serde_json::Error,
    },
    /// A test name that cannot name a directory of the store, even sanitized.
    #[error("test name {0:?} cannot name a run directory (empty, only dots, or \"latest\")")]
    BadTestName(String),
    /// A path that is not a run directory.
    #[error("{0}: not a run directory")]
    NotARun(PathBuf),
}

impl StoreError {
    fn io(path: &Path, source: io::Error) -> StoreError {
        StoreError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// The store: a root directory holding every run.
#[derive(Clone, Debug)]
pub struct Store {
    root: PathBuf,
}

impl Store {
    /// The store rooted at `root` (created on the first run).
    pub fn new(root: impl Into<PathBuf>) -> Store {
        Store { root: root.into() }
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Creates a new run directory for `test_name` (with its `nodes/`
    /// subdirectory) and points both `latest` links at it.
    pub fn create_run(&self, test_name: &str) -> Result<RunDir, StoreError> {
        self.create_run_at(test_name, SystemTime::now())
    }

    fn create_run_at(&self, test_name: &str, now: SystemTime) -> Result<RunDir, StoreError> {
        let name = sanitize_test_name(test_name)?;
        let test_dir = self.root.join(&name);
        fs::create_dir_all(&test_dir).map_err(|e| StoreError::io(&test_dir, e))?;
        let base = timestamp(now);
        let mut suffix = 0u32;
        let (timestamp, path) = loop {
            let candidate = match suffix {
                0 => base.clone(),
                n => format!("{base}-{n}"),
            };
            let path = test_dir.join(&candidate);
            match fs::create_dir(&path) {
                Ok(()) => break (candidate, path),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => suffix += 1,
                Err(e) => return Err(StoreError::io(&path, e)),
            }
        };
        let run = RunDir {
            path,
            test_name: name.clone(),
            timestamp: timestamp.clone(),
        };
        let nodes = run.nodes_dir();
        fs::create_dir(&nodes).map_err(|e| StoreError::io(&nodes, e))?;
        point_link(&test_dir, Path::new(&timestamp))?;
        point_link(&self.root, &Path::new(&name).join(&timestamp))?;
        Ok(run)
    }

    /// Every run in the store, newest first (ties broken by test name).
    /// Entries that are not run directories are ignored; a missing root is an
    /// empty store.
    pub fn list_runs(&self) -> Result<Vec<RunDir>, StoreError> {
        let mut runs = Vec::new();
        for test_name in subdirectories(&self.root)? {
            let test_dir = self.root.join(&test_name);
            for timestamp in subdirectories(&test_dir)? {
                if parse_run_name(&timestamp).is_some() {
                    runs.push(RunDir {
                        path: test_dir.join(&timestamp),
                        test_name: test_name.clone(),
                        timestamp,
                    });
                }
            }
        }
        runs.sort_by(|a, b| {
            parse_run_name(&b.timestamp)
                .cmp(&parse_run_name(&a.timestamp))
                .then_with(|| a.test_name.cmp(&b.test_name))
        });
        Ok(runs)
    }

    /// The run `<root>/latest` points at, if any.
    pub fn latest(&self) -> Result<Option<RunDir>, StoreError> {
        let link = self.root.join(LATEST);
        match fs::read_link(&link) {
            Ok(target) => RunDir::open(self.root.join(target)).map(Some),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(StoreError::io(&link, e)),
        }
    }
}

/// The directory of one run, and the names of the files in it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunDir {
    path: PathBuf,
    test_name: String,
    timestamp: String,
}

impl RunDir {
    /// An existing run directory (e.g. one named on a command line). Its test
    /// name and timestamp are taken from the last two path components.
    pub fn open(path: impl Into<PathBuf>) -> Result<RunDir, StoreError> {
        let path: PathBuf = path.into();
        let meta = fs::metadata(&path).map_err(|e| StoreError::io(&path, e))?;
        if !meta.is_dir() {
            return Err(StoreError::NotARun(path));
        }
        let canonical = fs::canonicalize(&path).map_err(|e| StoreError::io(&path, e))?;
        let component = |p: Option<&Path>| {
            p.and_then(Path::file_name)
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        };
        Ok(RunDir {
            timestamp: component(Some(&canonical)),
            test_name: component(canonical.parent()),
            path,
        })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The (sanitized) test name: the parent directory's name.
    pub fn test_name(&self) -> &str {
        &self.test_name
    }

    /// The directory's name: the run's start time, e.g. `20261126T041503.123Z`.
    pub fn timestamp(&self) -> &str {
        &self.timestamp
    }

    /// `history.jsonl`.
    pub fn history_path(&self) -> PathBuf {
        self.path.join("history.jsonl")
    }

    /// `test.json`.
    pub fn test_json_path(&self) -> PathBuf {
        self.path.join("test.json")
    }

    /// `results.json`.
    pub fn results_json_path(&self) -> PathBuf {
        self.path.join("results.json")
    }

    /// `nodes/`.
    pub fn nodes_dir(&self) -> PathBuf {
        self.path.join("nodes")
    }

    /// `nodes/<id>.log`; `id` is sanitized like a test name.
    pub fn node_log_path(&self, id: &str) -> PathBuf {
        self.nodes_dir().join(format!("{}.log", sanitize(id)))
    }

    /// Writes `test.json` (pretty-printed).
    pub fn write_test_json(&self, test: &serde_json::Value) -> Result<(), StoreError> {
        write_json(&self.test_json_path(), test)
    }

    /// Reads `test.json`.
    pub fn read_test_json(&self) -> Result<serde_json::Value, StoreError> {
        read_json(&self.test_json_path())
    }

    /// Writes `results.json` (pretty-printed).
    pub fn write_results(&self, results: &Results) -> Result<(), StoreError> {
        write_json(&self.results_json_path(), results)
    }

    /// Reads `results.json`.
    pub fn read_results(&self) -> Result<Results, StoreError> {
        read_json(&self.results_json_path())
    }
}

/// `name` with every character outside `[A-Za-z0-9._-]` replaced by `-`.
fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| match c {
            'A'..='Z' | 'a'..='z' | '0'..='9' | '.' | '_' | '-' => c,
            _ => '-',
        })
        .collect()
}

/// The directory name for a test, or an error if even sanitized it would be
/// empty, `.`/`..`, or collide with the `latest` link.
pub fn sanitize_test_name(test_name: &str) -> Result<String, StoreError> {
    let name = sanitize(test_name);
    if name.is_empty() || name.chars().all(|c| c == '.') || name == LATEST {
        return Err(StoreError::BadTestName(test_name.to_string()));
    }
    Ok(name)
}

/// `now` as `YYYYMMDDTHHMMSS.mmmZ` in UTC.
fn timestamp(now: SystemTime) -> String {
    let since_epoch = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since_epoch.as_secs();
    let millis = since_epoch.subsec_millis();
    let (year, month, day) = civil_date(secs / 86_400);
    let secs_of_day = secs % 86_400;
    format!(
        "{year:04}{month:02}{day:02}T{:02}{:02}{:02}.{millis:03}Z",
        secs_of_day / 3600,
        secs_of_day / 60 % 60,
        secs_of_day % 60
    )
}

/// (year, month 1–12, day 1–31) of the day `days` after 1970-01-01.
fn civil_date(mut days: u64) -> (u64, u64, u64) {
    let leap = |y: u64| (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let mut year = 1970;
    loop {
        let in_year = if leap(year) { 366 } else { 365 };
        if days < in_year {
            break;
        }
        days -= in_year;
        year += 1;
    }
    let february = if leap(year) { 29 } else { 28 };
    let lengths = [31, february, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    let mut month = 1;
    for length in lengths {
        if days < length {
            break;
        }
        days -= length;
        month += 1;
    }
    (year, month, days + 1)
}

/// The sort key of a run directory's name (timestamp, collision suffix), or
/// `None` if the name is not one `create_run` makes.
fn parse_run_name(name: &str) -> Option<(&str, u32)> {
    let (stamp, suffix) = match name.split_once("Z-") {
        Some((stamp, n)) => (&name[..=stamp.len()], n.parse().ok()?),
        None => (name, 0),
    };
    let shape_ok = stamp.len() == 20
        && stamp.ends_with('Z')
        && stamp.as_bytes()[8] == b'T'
        && stamp.as_bytes()[15] == b'.';
    shape_ok.then_some((stamp, suffix))
}

/// Names of the real (not symlinked) subdirectories of `dir`, skipping
/// hidden ones; a missing `dir` has none.
fn subdirectories(dir: &Path) -> Result<Vec<String>, StoreError> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(StoreError::io(dir, e)),
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| StoreError::io(dir, e))?;
        let is_dir = entry
            .file_type()
            .map_err(|e| StoreError::io(dir, e))?
            .is_dir();
        let name = entry.file_name().to_string_lossy().into_owned();
        if is_dir && !name.starts_with('.') {
            names.push(name);
        }
    }
    Ok(names)
}

/// Points `<dir>/latest` at `target` (relative to `dir`), atomically.
fn point_link(dir: &Path, target: &Path) -> Result<(), StoreError> {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let temp = dir.join(format!(
        ".{LATEST}.tmp-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = fs::remove_file(&temp);
    make_link(target, &temp).map_err(|e| StoreError::io(&temp, e))?;
    let link = dir.join(LATEST);
    fs::rename(&temp, &link).map_err(|e| {
        let _ = fs::remove_file(&temp);
        StoreError::io(&link, e)
    })
}

#[cfg(unix)]
fn make_link(target: &Path, link: &Path) -> io::Result<()> {
    std::os::unix::fs::symlink(target, link)
}

/// Without symlinks, `latest` is a text file holding the relative path.
#[cfg(not(unix))]
fn make_link(target: &Path, link: &Path) -> io::Result<()> {
    fs::write(link, target.to_string_lossy().as_bytes())
}

fn write_json<T: serde::Serialize + ?Sized>(path: &Path, value: &T) -> Result<(), StoreError> {
    let mut text = serde_json::to_vec_pretty(value).map_err(|source| StoreError::Json {
        path: path.to_path_buf(),
        source,
    })?;
    text.push(b'\n');
    let temp = path.with_extension("json.tmp");
    let write = || -> io::Result<()> {
        let mut file = fs::File::create(&temp)?;
        file.write_all(&text)?;
        file.sync_data()?;
        fs::rename(&temp, path)
    };
    write().map_err(|e| {
        let _ = fs::remove_file(&temp);
        StoreError::io(path, e)
    })
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, StoreError> {
    let text = fs::read(path).map_err(|e| StoreError::io(path, e))?;
    serde_json::from_slice(&text).map_err(|source| StoreError::Json {
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testdir::TestDir;
    use std::time::Duration;

    fn at(millis: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(millis)
    }

    #[test]
    fn timestamps_are_utc_with_milliseconds() {
        assert_eq!(timestamp(at(0)), "19700101T000000.000Z");
        assert_eq!(timestamp(at(1_795_666_503_123)), "20261126T041503.123Z");
        // The last second of a leap day.
        assert_eq!(timestamp(at(951_868_799_000)), "20000229T235959.000Z");
    }

    #[test]
    fn create_run_lays_out_the_run_and_points_latest_at_it() {
        let dir = TestDir::new("layout");
        let store = Store::new(dir.path().join("store"));
        let run = store.create_run("register majority/x").unwrap();
        assert_eq!(run.test_name(), "register-majority-x");
        assert_eq!(
            run.path(),
            store
                .root()
                .join("register-majority-x")
                .join(run.timestamp())
        );
        assert!(parse_run_name(run.timestamp()).is_some(), "{run:?}");
        assert!(run.nodes_dir().is_dir());
        assert_eq!(run.node_log_path("n1"), run.path().join("nodes/n1.log"));
        assert_eq!(run.history_path(), run.path().join("history.jsonl"));

        let root_link = fs::read_link(store.root().join(LATEST)).unwrap();
        assert!(root_link.is_relative());
        assert_eq!(
            root_link,
            Path::new("register-majority-x").join(run.timestamp())
        );
        let test_link = fs::read_link(store.root().join("register-majority-x/latest")).unwrap();
        assert_eq!(test_link, Path::new(run.timestamp()));
        assert_eq!(
            fs::canonicalize(store.root().join("latest")).unwrap(),
            fs::canonicalize(run.path()).unwrap()
        );
        assert_eq!(
            store.latest().unwrap().unwrap().timestamp(),
            run.timestamp()
        );
    }

    #[test]
    fn two_runs_of_one_test_in_the_same_millisecond_get_distinct_dirs() {
        let dir = TestDir::new("distinct");
        let store = Store::new(dir.path());
        let now = at(1_795_666_503_123);
        let first = store.create_run_at("set", now).unwrap();
        let second = store.create_run_at("set", now).unwrap();
        let third = store.create_run("set").unwrap();
        assert_ne!(first.path(), second.path());
        assert_eq!(second.timestamp(), "20261126T041503.123Z-1");
        let latest = fs::read_link(dir.path().join("set/latest")).unwrap();
        assert_eq!(latest, Path::new(third.timestamp()));
        // No temporary links are left behind.
        let leftovers: Vec<_> = fs::read_dir(dir.path().join("set"))
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().starts_with('.'))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }

    #[test]
    fn list_runs_is_newest_first_across_tests() {
        let dir = TestDir::new("list");
        let store = Store::new(dir.path());
        let a = store.create_run_at("a", at(1_000)).unwrap();
        let b = store.create_run_at("b", at(3_000)).unwrap();
        let a2 = store.create_run_at("a", at(3_000)).unwrap();
        let a3 = store.create_run_at("a", at(3_000)).unwrap();
        let runs = store.list_runs().unwrap();
        assert_eq!(runs, vec![a3, a2, b, a]);
        assert_eq!(store.latest().unwrap().unwrap().test_name(), "a");
        assert!(Store::new(dir.path().join("missing"))
            .list_runs()
            .unwrap()
            .is_empty());
    }

    #[test]
    fn names_that_cannot_be_directories_are_rejected() {
        for bad in ["", "..", ".", "latest"] {
            assert!(
                matches!(sanitize_test_name(bad), Err(StoreError::BadTestName(_))),
                "{bad:?}"
            );
        }
        assert_eq!(sanitize_test_name("../etc").unwrap(), "..-etc");
        assert_eq!(sanitize_test_name("ok_name-1.2").unwrap(), "ok_name-1.2");
    }

    #[test]
    fn test_json_and_results_round_trip() {
        let dir = TestDir::new("json");
        let run = Store::new(dir.path()).create_run("t").unwrap();
        let test = serde_json::json!({"nodes": 5, "workload": "register"});
        run.write_test_json(&test).unwrap();
        assert_eq!(run.read_test_json().unwrap(), test);
        let text = fs::read_to_string(run.test_json_path()).unwrap();
        assert!(text.contains("\n  \"nodes\": 5"), "not pretty: {text}");

        let results = Results::compose(Default::default(), Vec::new(), Default::default());
        run.write_results(&results).unwrap();
        assert_eq!(run.read_results().unwrap(), results);
        let reopened = RunDir::open(run.path()).unwrap();
        assert_eq!(reopened.test_name(), "t");
        assert_eq!(reopened.timestamp(), run.timestamp());
    }
}
