//! The results of a run: what `results.json` holds.
//!
//! # Format (`results.json`)
//!
//! One pretty-printed JSON object ([`Results`]):
//!
//! | field | type | meaning |
//! |---|---|---|
//! | `valid` | `true` / `false` / `"unknown"` | the run's verdict: the worst of the checkers' (invalid > unknown > valid); `"unknown"` when no checker ran |
//! | `checkers` | object: name → checker result | one entry per checker that ran (e.g. `"linearizable"`, `"set"`) |
//! | `checkers.*.valid` | `true` / `false` / `"unknown"` | that checker's verdict |
//! | `checkers.*.anomalies` | object: kind → count | how many anomalies of each kind it found (complete counts) |
//! | `checkers.*.details` | any JSON | the checker's own result, as it reports it (`null` if none) |
//! | `anomalies` | array of anomaly | the anomalies found, with evidence (may be fewer than the counts: a checker may report a sample) |
//! | `anomalies[].kind` | string | the anomaly kind, in DESIGN's names: `not-linearizable`, `lost-write`, `stale-read`, `G1c`, ... |
//! | `anomalies[].checker` | string | the checker that found it (a key of `checkers`) |
//! | `anomalies[].key` | string, optional | the key it concerns, for histories over independent keys |
//! | `anomalies[].ops` | array of integers | history indices (`index` in `history.jsonl`) of the ops involved |
//! | `anomalies[].time` | integer, optional | when it happened, in ns since the test started (the time of its first op) |
//! | `anomalies[].explanation` | string | what is wrong, in words |
//! | `stats` | object | see [`Stats`]: `ops` and `by_f` (`{ok, fail, info}` counts), `latency_ms` (per f: `count`, `p50`, `p90`, `p95`, `p99`, `max`), `throughput` (`ok_per_s`, `completed_per_s`), `duration_s`, `nemesis_ops` |
//! | `test` | object, optional | the test as run (the contents of `test.json`) |
//! | `run_dir` | string, optional | the run directory |
//! | `seed` | integer, optional | the seed of the run, to repeat it |
//!
//! Maps are written with sorted keys (`BTreeMap`), so the same run gives the
//! same file.

use std::collections::BTreeMap;
use std::path::PathBuf;

use checker::linearizable::{CheckResult, KeyVerdict};
use checker::Validity;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::stats::Stats;

/// The anomaly kind of a failed linearizability check.
pub const NOT_LINEARIZABLE: &str = "not-linearizable";

/// Everything a run concluded; the schema of `results.json` (module docs).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Results {
    /// The worst of the checkers' verdicts; unknown when none ran.
    pub valid: Validity,
    /// Each checker's result, by checker name.
    pub checkers: BTreeMap<String, CheckerResult>,
    /// The anomalies found, with their evidence.
    #[serde(default)]
    pub anomalies: Vec<Anomaly>,
    /// Statistics of the history.
    #[serde(default)]
    pub stats: Stats,
    /// The test as run (`test.json`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test: Option<Value>,
    /// The run directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_dir: Option<PathBuf>,
    /// The run's seed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
}

/// One checker's verdict and what it found.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CheckerResult {
    /// Its verdict.
    pub valid: Validity,
    /// How many anomalies of each kind (DESIGN's names) it found.
    #[serde(default)]
    pub anomalies: BTreeMap<String, usize>,
    /// The checker's own result, as it reports it.
    #[serde(default)]
    pub details: Value,
}

/// One anomaly, tied to the ops of the history that show it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Anomaly {
    /// Its kind: `not-linearizable`, `lost-write`, `G1c`, ...
    pub kind: String,
    /// The checker that found it.
    pub checker: String,
    /// The key it concerns, if the history is over keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// History indices of the ops involved.
    #[serde(default)]
    pub ops: Vec<u64>,
    /// When it happened (ns since the test started), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<u64>,
    /// What is wrong, in words.
    pub explanation: String,
}

impl Results {
    /// Results from the checkers' verdicts: `valid` is the worst of them
    /// (invalid > unknown > valid), or unknown when there are none. `test`,
    /// `run_dir` and `seed` start empty (see the `with_` methods).
    pub fn compose(
        checkers: BTreeMap<String, CheckerResult>,
        anomalies: Vec<Anomaly>,
        stats: Stats,
    ) -> Results {
        let valid = checkers
            .values()
            .map(|c| c.valid)
            .reduce(Validity::and)
            .unwrap_or(Validity::Unknown);
        Results {
            valid,
            checkers,
            anomalies,
            stats,
            test: None,
            run_dir: None,
            seed: None,
        }
    }

    /// With the test as run.
    pub fn with_test(mut self, test: Value) -> Results {
        self.test = Some(test);
        self
    }

    /// With the run directory.
    pub fn with_run_dir(mut self, run_dir: impl Into<PathBuf>) -> Results {
        self.run_dir = Some(run_dir.into());
        self
    }

    /// With the seed.
    pub fn with_seed(mut self, seed: u64) -> Results {
        self.seed = Some(seed);
        self
    }

    /// Anomaly counts by kind, summed over the checkers.
    pub fn anomaly_counts(&self) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for checker in self.checkers.values() {
            for (kind, n) in &checker.anomalies {
                *counts.entry(kind.clone()).or_default() += n;
            }
        }
        counts
    }
}

impl CheckerResult {
    /// A verdict with no anomalies and no details.
    pub fn new(valid: Validity) -> CheckerResult {
        CheckerResult {
            valid,
            anomalies: BTreeMap::new(),
            details: Value::Null,
        }
    }

    /// With `count` anomalies of `kind` (added to any already counted).
    pub fn with_anomalies(mut self, kind: impl Into<String>, count: usize) -> CheckerResult {
        *self.anomalies.entry(kind.into()).or_default() += count;
        self
    }

    /// With the checker's own result.
    pub fn with_details(mut self, details: Value) -> CheckerResult {
        self.details = details;
        self
    }

    /// The result of the linearizability checker, named `checker`, and one
    /// `not-linearizable` anomaly per invalid key (or one for the whole
    /// history when it has no keys). The anomaly's ops are the op that could
    /// not be linearized and the last `ok` op before it.
    pub fn from_linearizable(checker: &str, result: &CheckResult) -> (CheckerResult, Vec<Anomaly>) {
        let mut anomalies = Vec::new();
        for (key, key_result) in &result.keys {
            if key_result.valid == KeyVerdict::Invalid {
                let explanation = key_result.explanation.as_ref();
                anomalies.push(not_linearizable(checker, Some(key), explanation));
            }
        }
        if anomalies.is_empty() && result.valid == Validity::Invalid {
            let key = result.first_invalid_key.as_ref();
            anomalies.push(not_linearizable(checker, key, result.explanation.as_ref()));
        }
        let details = serde_json::to_value(result).unwrap_or_else(|e| {
            Value::String(format!("the checker's result did not serialize: {e}"))
        });
        let mut checker_result = CheckerResult::new(result.valid).with_details(details);
        if !anomalies.is_empty() {
            checker_result = checker_result.with_anomalies(NOT_LINEARIZABLE, anomalies.len());
        }
        (checker_result, anomalies)
    }
}

fn not_linearizable(
    checker: &str,
    key: Option<&String>,
    explanation: Option<&checker::linearizable::Explanation>,
) -> Anomaly {
    let mut anomaly = Anomaly {
        kind: NOT_LINEARIZABLE.to_string(),
        checker: checker.to_string(),
        key: key.cloned(),
        ops: Vec::new(),
        time: None,
        explanation: "not linearizable".to_string(),
    };
    if let Some(explanation) = explanation {
        let culprit = &explanation.op;
        anomaly.ops.push(culprit.index as u64);
        anomaly.ops.extend(culprit.complete_index.map(|i| i as u64));
        if let Some(last_ok) = &explanation.last_ok {
            anomaly.ops.push(last_ok.index as u64);
            anomaly.ops.extend(last_ok.complete_index.map(|i| i as u64));
        }
        anomaly.ops.sort_unstable();
        anomaly.ops.dedup();
        anomaly.time = culprit.time;
        anomaly.explanation = explanation.message.clone();
    }
    anomaly
}

#[cfg(test)]
mod tests {
    use super::*;
    use checker::history::{Op, OpType};
    use checker::linearizable::{check, Options};
    use checker::model::{ModelKind, ModelSpec};
    use serde_json::json;
    use Validity::*;

    fn checkers(verdicts: &[(&str, Validity)]) -> BTreeMap<String, CheckerResult> {
        verdicts
            .iter()
            .map(|(name, v)| (name.to_string(), CheckerResult::new(*v)))
            .collect()
    }

    fn verdict_of(verdicts: &[(&str, Validity)]) -> Validity {
        Results::compose(checkers(verdicts), Vec::new(), Stats::default()).valid
    }

    #[test]
    fn compose_takes_the_worst_verdict() {
        assert_eq!(verdict_of(&[("a", Valid), ("b", Valid)]), Valid);
        assert_eq!(verdict_of(&[("a", Valid), ("b", Unknown)]), Unknown);
        assert_eq!(verdict_of(&[("a", Invalid), ("b", Unknown)]), Invalid);
        assert_eq!(verdict_of(&[("a", Valid), ("b", Invalid)]), Invalid);
    }

    #[test]
    fn compose_without_checkers_is_unknown() {
        assert_eq!(verdict_of(&[]), Unknown);
    }

    #[test]
    fn results_json_has_the_documented_shape() {
        let set = CheckerResult::new(Invalid)
            .with_anomalies("lost-write", 2)
            .with_details(json!({"lost": [3, 7]}));
        let register = CheckerResult::new(Unknown).with_anomalies("lost-write", 1);
        let anomaly = Anomaly {
            kind: "lost-write".into(),
            checker: "set".into(),
            key: None,
            ops: vec![12, 40],
            time: Some(3_100_000),
            explanation: "3 was acknowledged by n2 and is missing from every final read".into(),
        };
        let results = Results::compose(
            [("set".to_string(), set), ("register".to_string(), register)].into(),
            vec![anomaly],
            Stats::default(),
        )
        .with_seed(42)
        .with_run_dir("store/set/20261126T041503.123Z")
        .with_test(json!({"workload": "set"}));
        assert_eq!(results.anomaly_counts()["lost-write"], 3);

        let value = serde_json::to_value(&results).unwrap();
        assert_eq!(value["valid"], json!(false));
        assert_eq!(value["checkers"]["register"]["valid"], json!("unknown"));
        assert_eq!(
            value["checkers"]["set"]["anomalies"]["lost-write"],
            json!(2)
        );
        assert_eq!(value["anomalies"][0]["ops"], json!([12, 40]));
        assert!(value["anomalies"][0].get("key").is_none());
        assert_eq!(value["seed"], json!(42));
        assert!(value["stats"]["latency_ms"].is_object());
        let back: Results = serde_json::from_value(value).unwrap();
        assert_eq!(back, results);
    }

    #[test]
    fn a_stale_register_read_becomes_a_not_linearizable_anomaly() {
        // write 1 completes, then a read that starts later returns 0.
        let write = Op::invoke(1, "write", json!(1)).with_key("k1");
        let read = Op::invoke(2, "read", json!(null)).with_key("k1");
        let history: Vec<Op> = [
            write.clone(),
            write.completed(OpType::Ok, json!(1)),
            read.clone(),
            read.completed(OpType::Ok, json!(0)),
        ]
        .into_iter()
        .enumerate()
        .map(|(i, mut op)| {
            op.index = i as u64;
            op.time = Some(i as u64 * 1_000);
            op
        })
        .collect();
        let spec = ModelSpec {
            init: json!(0),
            ..ModelSpec::new(ModelKind::Register)
        };
        let result = check(&history, &spec, &Options::default()).unwrap();
        let (checker_result, anomalies) = CheckerResult::from_linearizable("linearizable", &result);
        assert_eq!(checker_result.valid, Invalid);
        assert_eq!(checker_result.anomalies[NOT_LINEARIZABLE], 1);
        assert_eq!(anomalies.len(), 1);
        let anomaly = &anomalies[0];
        assert_eq!(anomaly.key.as_deref(), Some("k1"));
        assert!(anomaly.ops.contains(&2), "{anomaly:?}");
        assert_eq!(anomaly.time, Some(2_000));
        assert!(!anomaly.explanation.is_empty());
    }
}
