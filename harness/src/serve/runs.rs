//! What the index shows of the store: one [`RunRow`] per run directory and
//! one [`CampaignRow`] per campaign directory, read afresh on every request.
//!
//! Decisions:
//! - A run is listed whatever state its files are in. Without
//!   `results.json` it is [`Status::Running`] while its harness is alive
//!   (its `state.json` names a live pid) and [`Status::Incomplete`]
//!   otherwise; an unreadable `results.json` is incomplete too, with the
//!   reason kept for a tooltip. Nothing a run directory holds can fail the
//!   page.
//! - `test.json` is read leniently (unknown keys ignored, every key
//!   optional), so runs written by older or newer versions still show their
//!   modes; when it is missing the copy inside `results.json` is used.
//! - A campaign is any directory under `campaigns/` holding a
//!   `campaign.html`; only its path is relied on, never `campaign.json`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use checker::Validity;
use results::{RunDir, Store, StoreError};
use serde::Deserialize;

use crate::cleanup::{RunState, STATE_FILE};

/// The directory of the store campaigns are written under.
pub const CAMPAIGNS_DIR: &str = "campaigns";

/// The file that makes a directory under [`CAMPAIGNS_DIR`] a campaign.
pub const CAMPAIGN_HTML: &str = "campaign.html";

/// How deep under [`CAMPAIGNS_DIR`] a `campaign.html` is looked for
/// (`campaigns/<name>/<timestamp>/` is depth 2).
const CAMPAIGN_DEPTH: usize = 3;

/// Where a run stands, as the index shows and filters it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Status {
    /// Checked: every checker valid.
    Valid,
    /// Checked: some checker invalid.
    Invalid,
    /// Checked: no checker invalid, some unknown.
    Unknown,
    /// No results yet, and the run's harness is alive.
    Running,
    /// No (readable) results, and nothing is running: killed or crashed.
    Incomplete,
}

impl Status {
    /// Every status, in the order the filter offers them.
    pub const ALL: [Status; 5] = [
        Status::Valid,
        Status::Invalid,
        Status::Unknown,
        Status::Running,
        Status::Incomplete,
    ];

    /// Its name in the page and in `?verdict=`.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Valid => "valid",
            Status::Invalid => "invalid",
            Status::Unknown => "unknown",
            Status::Running => "running",
            Status::Incomplete => "incomplete",
        }
    }
}

impl From<Validity> for Status {
    fn from(validity: Validity) -> Status {
        match validity {
            Validity::Valid => Status::Valid,
            Validity::Invalid => Status::Invalid,
            Validity::Unknown => Status::Unknown,
        }
    }
}

/// One run, as a row of the index.
#[derive(Clone, Debug, PartialEq)]
pub struct RunRow {
    /// The test's directory name.
    pub test_name: String,
    /// The run directory's name, e.g. `20261126T041503.123Z`.
    pub timestamp: String,
    /// The node modes, `write-concern/election/reads/topology/fsync`, or
    /// `external` for a system described by command templates; empty when
    /// unknown.
    pub mode: String,
    /// The workload; empty when unknown.
    pub workload: String,
    /// The faults, as `--nemesis` lists them.
    pub faults: Vec<String>,
    /// Where the run stands.
    pub status: Status,
    /// Why the run is incomplete, when something could not be read.
    pub note: Option<String>,
    /// Anomaly counts by kind, summed over the checkers.
    pub anomalies: BTreeMap<String, usize>,
    /// Whether `report.html` exists.
    pub has_report: bool,
}

impl RunRow {
    /// The total of [`RunRow::anomalies`].
    pub fn anomaly_total(&self) -> usize {
        self.anomalies.values().sum()
    }
}

/// One campaign, as a row of the index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CampaignRow {
    /// Its directory relative to `campaigns/`, but for the last component
    /// (e.g. `nightly`).
    pub name: String,
    /// The last component of its directory, e.g. `20261126T041503.123Z`.
    pub timestamp: String,
    /// Its directory relative to the store root, `/`-separated.
    pub path: String,
}

/// Everything the index lists.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StoreListing {
    /// Every run, newest first.
    pub runs: Vec<RunRow>,
    /// Every campaign, newest first.
    pub campaigns: Vec<CampaignRow>,
}

/// Reads the listing of the store at `root`; a missing store is empty.
/// Fails only if a directory of the store itself cannot be listed.
pub fn scan(root: &Path) -> Result<StoreListing, StoreError> {
    let runs = Store::new(root).list_runs()?.iter().map(read_run).collect();
    let mut campaigns = Vec::new();
    find_campaigns(&root.join(CAMPAIGNS_DIR), &[], &mut campaigns);
    campaigns.sort_by(|a, b| {
        b.timestamp
            .cmp(&a.timestamp)
            .then_with(|| a.name.cmp(&b.name))
    });
    Ok(StoreListing { runs, campaigns })
}

/// The keys of `test.json` the index shows, every one optional.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case", default)]
struct TestSummary {
    workload: Option<String>,
    write_concern: Option<String>,
    election: Option<String>,
    reads: Option<String>,
    topology: Option<String>,
    fsync: Option<String>,
    nemesis: Vec<String>,
    db: Option<serde_json::Value>,
}

impl TestSummary {
    fn mode(&self) -> String {
        if self.db.is_some() {
            return "external".to_string();
        }
        let parts = [
            &self.write_concern,
            &self.election,
            &self.reads,
            &self.topology,
            &self.fsync,
        ];
        if parts.iter().all(|p| p.is_none()) {
            return String::new();
        }
        parts
            .iter()
            .map(|p| p.as_deref().unwrap_or("?"))
            .collect::<Vec<_>>()
            .join("/")
    }
}

fn read_run(run: &RunDir) -> RunRow {
    let results = run.read_results();
    let test = run
        .read_test_json()
        .ok()
        .or_else(|| results.as_ref().ok().and_then(|r| r.test.clone()));
    let summary: TestSummary = test
        .and_then(|t| serde_json::from_value(t).ok())
        .unwrap_or_default();
    let (status, note, anomalies) = match results {
        Ok(results) => (results.valid.into(), None, results.anomaly_counts()),
        Err(StoreError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            let status = if harness_alive(run.path()) {
                Status::Running
            } else {
                Status::Incomplete
            };
            (status, None, BTreeMap::new())
        }
        Err(e) => (Status::Incomplete, Some(e.to_string()), BTreeMap::new()),
    };
    RunRow {
        test_name: run.test_name().to_string(),
        timestamp: run.timestamp().to_string(),
        mode: summary.mode(),
        workload: summary.workload.clone().unwrap_or_default(),
        faults: summary.nemesis,
        status,
        note,
        anomalies,
        has_report: run.path().join("report.html").is_file(),
    }
}

/// Whether the run directory's state file names a harness process that is
/// still alive (a killed harness leaves its state file behind).
fn harness_alive(run_dir: &Path) -> bool {
    let Ok(text) = std::fs::read(run_dir.join(STATE_FILE)) else {
        return false;
    };
    let Ok(state) = serde_json::from_slice::<RunState>(&text) else {
        return false;
    };
    Path::new("/proc")
        .join(state.harness_pid.to_string())
        .exists()
}

/// Adds every directory under `dir` (at most [`CAMPAIGN_DEPTH`] deep) that
/// holds a `campaign.html`; `components` is `dir` relative to `campaigns/`.
/// Unreadable directories are skipped: campaigns may be being written.
fn find_campaigns(dir: &Path, components: &[String], found: &mut Vec<CampaignRow>) {
    if let Some((last, parents)) = components.split_last() {
        if dir.join(CAMPAIGN_HTML).is_file() {
            // `campaigns/<name>/<timestamp>/`, or a bare `campaigns/<name>/`.
            let (name, timestamp) = match parents {
                [] => (last.clone(), String::new()),
                _ => (parents.join("/"), last.clone()),
            };
            let mut path = PathBuf::from(CAMPAIGNS_DIR);
            path.extend(components);
            found.push(CampaignRow {
                name,
                timestamp,
                path: path.to_string_lossy().into_owned(),
            });
        }
    }
    if components.len() >= CAMPAIGN_DEPTH {
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut names: Vec<String> = entries
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| !name.starts_with('.'))
        .collect();
    names.sort();
    for name in names {
        let mut deeper = components.to_vec();
        deeper.push(name.clone());
        find_campaigns(&dir.join(&name), &deeper, found);
    }
}
