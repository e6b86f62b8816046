//! What a campaign's runs showed, and whether each cell met its expectation.
//!
//! A run detects when its results list (by complete count, not the sample)
//! an anomaly of one of the kinds its cell expects. A `valid` cell is met
//! when every run is valid, unmet when one is invalid, and unknown when
//! none is invalid but one is unknown or could not be carried out. A
//! detection cell is met with at least `min-detections` detecting runs,
//! unknown when the runs that ended unknown could still have made up the
//! difference, unmet otherwise.

use std::collections::BTreeMap;
use std::path::PathBuf;

use checker::Validity;
use results::Results;
use serde::{Deserialize, Serialize};

use super::spec::{Cell, Expect};

/// One run of a cell.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// Its seed.
    pub seed: u64,
    /// Its run directory (absent if it could not start).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_dir: Option<PathBuf>,
    /// `valid`, `invalid`, `unknown`; `error` when the run failed.
    pub verdict: String,
    /// Anomaly counts by kind.
    #[serde(default)]
    pub anomalies: BTreeMap<String, usize>,
    /// Whether it found one of the kinds its cell expects.
    pub detected: bool,
    /// Seconds into the run of the first op of an expected anomaly (of any
    /// anomaly for a `valid` cell), when the checkers place it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_anomaly_s: Option<f64>,
    /// Wall-clock seconds the whole run took.
    pub duration_s: f64,
    /// Why the run failed, if it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl RunRecord {
    /// The record of a run that ended with results.
    pub fn from_results(
        expect: &Expect,
        seed: u64,
        run_dir: PathBuf,
        results: &Results,
        duration_s: f64,
    ) -> RunRecord {
        let anomalies = results.anomaly_counts();
        let wanted = |kind: &str| match expect {
            Expect::Valid => true,
            Expect::Detect(kinds) => kinds.iter().any(|k| k == kind),
        };
        let detected = match expect {
            Expect::Valid => false,
            Expect::Detect(_) => anomalies.iter().any(|(k, n)| *n > 0 && wanted(k)),
        };
        let first_anomaly_s = results
            .anomalies
            .iter()
            .filter(|a| wanted(&a.kind))
            .filter_map(|a| a.time)
            .min()
            .map(|ns| ns as f64 / 1e9);
        RunRecord {
            seed,
            run_dir: Some(run_dir),
            verdict: results.valid.to_string(),
            anomalies,
            detected,
            first_anomaly_s,
            duration_s,
            error: None,
        }
    }

    /// The record of a run the harness could not carry out.
    pub fn failed(
        seed: u64,
        run_dir: Option<PathBuf>,
        error: String,
        duration_s: f64,
    ) -> RunRecord {
        RunRecord {
            seed,
            run_dir,
            verdict: "error".into(),
            anomalies: BTreeMap::new(),
            detected: false,
            first_anomaly_s: None,
            duration_s,
            error: Some(error),
        }
    }

    fn verdict(&self) -> Option<Validity> {
        match self.verdict.as_str() {
            "valid" => Some(Validity::Valid),
            "invalid" => Some(Validity::Invalid),
            "unknown" => Some(Validity::Unknown),
            _ => None,
        }
    }
}

/// Whether a cell met its expectation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CellVerdict {
    /// It did.
    Met,
    /// Some runs could not be decided, and they decide it.
    Unknown,
    /// It did not.
    Unmet,
}

impl std::fmt::Display for CellVerdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            CellVerdict::Met => "met",
            CellVerdict::Unknown => "unknown",
            CellVerdict::Unmet => "UNMET",
        })
    }
}

/// A cell with its runs so far.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CellOutcome {
    /// The cell's name.
    pub name: String,
    /// The test each run performed (seed aside), as a `--test` file holds it.
    pub test: serde_json::Value,
    /// What it expects: `valid` or a list of kinds.
    pub expect: Expect,
    /// With a detection expectation: how many runs must detect.
    pub min_detections: usize,
    /// How many runs were planned.
    pub runs_planned: usize,
    /// The runs carried out.
    pub runs: Vec<RunRecord>,
}

impl CellOutcome {
    /// A cell before its first run.
    pub fn new(cell: &Cell) -> CellOutcome {
        let mut test = cell.test.clone();
        test.seed = None;
        CellOutcome {
            name: cell.name.clone(),
            test: serde_json::to_value(&test).unwrap_or_default(),
            expect: cell.expect.clone(),
            min_detections: cell.min_detections,
            runs_planned: cell.runs,
            runs: Vec::new(),
        }
    }

    /// How many runs detected an expected anomaly.
    pub fn detections(&self) -> usize {
        self.runs.iter().filter(|r| r.detected).count()
    }

    /// Detections over runs carried out.
    pub fn detection_rate(&self) -> Option<f64> {
        (!self.runs.is_empty()).then(|| self.detections() as f64 / self.runs.len() as f64)
    }

    /// The median time to the first expected anomaly over detecting runs.
    pub fn median_first_anomaly_s(&self) -> Option<f64> {
        let mut times: Vec<f64> = self
            .runs
            .iter()
            .filter(|r| r.detected)
            .filter_map(|r| r.first_anomaly_s)
            .collect();
        median(&mut times)
    }

    /// Counts of verdicts: `3 invalid, 1 valid`.
    pub fn verdict_counts(&self) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for run in &self.runs {
            *counts.entry(run.verdict.clone()).or_insert(0) += 1;
        }
        counts
    }

    /// Whether the runs carried out meet the expectation (runs not carried
    /// out, after an interruption, count as undecided).
    pub fn verdict(&self) -> CellVerdict {
        let undecided = self
            .runs
            .iter()
            .filter(|r| !matches!(r.verdict(), Some(Validity::Valid | Validity::Invalid)))
            .count()
            + self.runs_planned.saturating_sub(self.runs.len());
        match &self.expect {
            Expect::Valid => {
                if self
                    .runs
                    .iter()
                    .any(|r| r.verdict() == Some(Validity::Invalid))
                {
                    CellVerdict::Unmet
                } else if undecided > 0 {
                    CellVerdict::Unknown
                } else {
                    CellVerdict::Met
                }
            }
            Expect::Detect(_) => {
                let detections = self.detections();
                if detections >= self.min_detections {
                    CellVerdict::Met
                } else if detections + undecided >= self.min_detections {
                    CellVerdict::Unknown
                } else {
                    CellVerdict::Unmet
                }
            }
        }
    }
}

/// The median of `values` (sorted in place), if any.
pub fn median(values: &mut [f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let n = values.len();
    Some(if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    })
}

/// The probability that a cell with `runs` runs, each detecting with
/// probability `p`, has fewer than `min` detections (so fails): how often a
/// campaign in CI would fail for want of luck.
pub fn miss_probability(p: f64, runs: usize, min: usize) -> f64 {
    (0..min.min(runs + 1))
        .map(|k| binomial(runs, k) * p.powi(k as i32) * (1.0 - p).powi((runs - k) as i32))
        .sum()
}

fn binomial(n: usize, k: usize) -> f64 {
    (0..k).fold(1.0, |acc, i| acc * (n - i) as f64 / (i + 1) as f64)
}

/// The campaign's verdict: unmet if any cell is, else unknown if any is,
/// else met.
pub fn campaign_verdict(cells: &[CellOutcome]) -> CellVerdict {
    cells
        .iter()
        .map(CellOutcome::verdict)
        .max()
        .unwrap_or(CellVerdict::Met)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(verdict: &str, detected: bool, first: Option<f64>) -> RunRecord {
        RunRecord {
            seed: 1,
            run_dir: None,
            verdict: verdict.into(),
            anomalies: BTreeMap::new(),
            detected,
            first_anomaly_s: first,
            duration_s: 1.0,
            error: None,
        }
    }

    fn cell(expect: Expect, min: usize, planned: usize, runs: Vec<RunRecord>) -> CellOutcome {
        CellOutcome {
            name: "c".into(),
            test: serde_json::Value::Null,
            expect,
            min_detections: min,
            runs_planned: planned,
            runs,
        }
    }

    #[test]
    fn a_valid_cell_fails_on_one_invalid_run_and_is_unknown_on_an_unknown_one() {
        let ok = cell(Expect::Valid, 1, 2, vec![run("valid", false, None); 2]);
        assert_eq!(ok.verdict(), CellVerdict::Met);
        let bad = cell(
            Expect::Valid,
            1,
            3,
            vec![
                run("valid", false, None),
                run("unknown", false, None),
                run("invalid", false, None),
            ],
        );
        assert_eq!(bad.verdict(), CellVerdict::Unmet);
        let unsure = cell(
            Expect::Valid,
            1,
            2,
            vec![run("valid", false, None), run("error", false, None)],
        );
        assert_eq!(unsure.verdict(), CellVerdict::Unknown);
        let interrupted = cell(Expect::Valid, 1, 2, vec![run("valid", false, None)]);
        assert_eq!(interrupted.verdict(), CellVerdict::Unknown);
    }

    #[test]
    fn a_detection_cell_needs_min_detections_and_says_unknown_only_when_it_could_have_passed() {
        let kinds = Expect::Detect(vec!["lost-write".into()]);
        let met = cell(
            kinds.clone(),
            2,
            3,
            vec![
                run("invalid", true, Some(3.0)),
                run("valid", false, None),
                run("invalid", true, Some(5.0)),
            ],
        );
        assert_eq!(met.verdict(), CellVerdict::Met);
        assert_eq!(met.median_first_anomaly_s(), Some(4.0));
        assert!((met.detection_rate().unwrap() - 2.0 / 3.0).abs() < 1e-9);
        let unmet = cell(
            kinds.clone(),
            2,
            3,
            vec![
                run("valid", false, None),
                run("unknown", false, None),
                run("valid", false, None),
            ],
        );
        assert_eq!(unmet.verdict(), CellVerdict::Unmet);
        let unknown = cell(
            kinds,
            2,
            3,
            vec![
                run("invalid", true, None),
                run("unknown", false, None),
                run("valid", false, None),
            ],
        );
        assert_eq!(unknown.verdict(), CellVerdict::Unknown);
        assert_eq!(
            campaign_verdict(&[met, unknown.clone()]),
            CellVerdict::Unknown
        );
        assert_eq!(campaign_verdict(&[unknown, unmet]), CellVerdict::Unmet);
    }

    #[test]
    fn miss_probability_is_the_binomial_tail() {
        // Four runs detecting 9 times in 10, at least one needed: 0.1^4.
        assert!((miss_probability(0.9, 4, 1) - 1e-4).abs() < 1e-12);
        // Three runs: 0.1^3, not below one in a thousand.
        assert!((miss_probability(0.9, 3, 1) - 1e-3).abs() < 1e-12);
        // Six runs, two needed: 0.1^6 + 6 * 0.9 * 0.1^5.
        let expected = 1e-6 + 6.0 * 0.9 * 1e-5;
        assert!((miss_probability(0.9, 6, 2) - expected).abs() < 1e-12);
    }

    #[test]
    fn the_median_of_an_even_count_is_the_mean_of_the_middle_two() {
        assert_eq!(median(&mut []), None);
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&mut [4.0, 1.0, 3.0, 2.0]), Some(2.5));
    }
}
