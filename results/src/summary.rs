//! The summary of a run: what `results.json` holds.
//!
//! A checker's part of it ([`CheckerResult`], [`Anomaly`]) is the checker's
//! own stored outcome (`checker::outcome`), re-exported here.
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
//! | `checkers.*.rows` | array of anomaly, optional | the anomalies the report tabulates when `anomalies` holds only a sample of them (the set checker's lost and stale elements, up to 200 per kind and key); absent otherwise |
//! | `anomalies` | array of anomaly | the anomalies found, with evidence (may be fewer than the counts: a checker may report a sample) |
//! | `anomalies[].kind` | string | the anomaly kind, in docs/DESIGN.md's names: `not-linearizable`, `lost-write`, `stale-read`, `G1c`, ... |
//! | `anomalies[].checker` | string | the checker that found it (a key of `checkers`) |
//! | `anomalies[].key` | string, optional | the key it concerns, for histories over independent keys |
//! | `anomalies[].ops` | array of integers | history indices (`index` in `history.jsonl`) of the ops involved |
//! | `anomalies[].time` | integer, optional | when it happened, in ns since the test started (the time of its first op) |
//! | `anomalies[].explanation` | string | what is wrong, in words |
//! | `anomalies[].element` | any JSON, optional | set anomalies: the element (`lost-write`, `stale-read`, ...) |
//! | `anomalies[].node` | string, optional | set anomalies: the node that acknowledged the element's add (lost, stale) or answered the offending read (unexpected, duplicated) |
//! | `anomalies[].edges` | array of edge, optional | transactional cycles (`G0`, `G1c`, `G-single`, `G2-item`, and their `-process` / `-realtime` variants): the dependencies in cycle order; absent otherwise |
//! | `anomalies[].edges[].from`, `.to` | integer | the txns: history indices of their invocations (`T12` is index 12; its micro-ops are in `history.jsonl`, the completion's value for a committed txn); `from` precedes `to` |
//! | `anomalies[].edges[].kind` | string | `ww`, `wr`, `rw`, `process` or `realtime` |
//! | `anomalies[].edges[].key` | string, optional | the key of a `ww` / `wr` / `rw` dependency |
//! | `stats` | object | see [`Stats`]: `ops` and `by_f` (`{ok, fail, info}` counts), `latency_ms` (per f: `count`, `p50`, `p90`, `p95`, `p99`, `max`), `throughput` (`ok_per_s`, `completed_per_s`), `duration_s`, `nemesis_ops` |
//! | `test` | object, optional | the test as run (the contents of `test.json`) |
//! | `run_dir` | string, optional | the run directory |
//! | `seed` | integer, optional | the seed of the run, to repeat it |
//! | `start_unix_ns` | integer, optional | the wall-clock instant (UTC, ns since the Unix epoch) that the history's time 0 corresponds to: a history time `t` happened at `start_unix_ns + t` |
//! | `start_time` | string, optional | the same instant in RFC 3339, UTC, to the nanosecond (`2026-11-26T05:11:04.678000123Z`) |
//!
//! Every optional field may be missing (older runs lack the later ones:
//! `element`, `node`, `edges`, `start_unix_ns`, `start_time`); readers must
//! treat a missing field as unknown.
//!
//! Maps are written with sorted keys (`BTreeMap`), so the same run gives the
//! same file.

use std::collections::BTreeMap;
use std::path::PathBuf;

pub use checker::linearizable::NOT_LINEARIZABLE;
pub use checker::outcome::{Anomaly, AnomalyEdge, CheckerResult};
use checker::Validity;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::stats::Stats;

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
    /// The wall-clock instant of the history's time 0, Unix ns (UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_unix_ns: Option<u64>,
    /// The same instant in RFC 3339 (UTC, ns).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<String>,
    /// With nodes on remote hosts: each node's host clock minus the
    /// controller's, in nanoseconds, measured at setup (the midpoint of a
    /// round trip), so node logs can be aligned with the history.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub clock_offsets_ns: BTreeMap<String, i64>,
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
            start_unix_ns: None,
            start_time: None,
            clock_offsets_ns: BTreeMap::new(),
        }
    }

    /// With the wall-clock instant of the history's time 0.
    pub fn with_start(mut self, start: std::time::SystemTime) -> Results {
        let ns = crate::walltime::unix_ns(start);
        self.start_unix_ns = Some(ns);
        self.start_time = Some(crate::walltime::rfc3339(ns));
        self
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

#[cfg(test)]
mod tests {
    use super::*;
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
        let mut anomaly = Anomaly::new(
            "lost-write",
            "set",
            "3 was acknowledged by n2 and is missing from every final read",
        )
        .with_ops(vec![12, 40], Some(3_100_000));
        anomaly.element = Some(json!(3));
        anomaly.node = Some("n2".into());
        let mut cycle = Anomaly::new("G-single", "list-append", "T4 precedes itself")
            .with_ops(vec![4, 9], Some(1_000));
        cycle.edges = vec![
            AnomalyEdge {
                from: 4,
                to: 9,
                kind: "rw".into(),
                key: Some("x".into()),
            },
            AnomalyEdge {
                from: 9,
                to: 4,
                kind: "realtime".into(),
                key: None,
            },
        ];
        let results = Results::compose(
            [("set".to_string(), set), ("register".to_string(), register)].into(),
            vec![anomaly, cycle],
            Stats::default(),
        )
        .with_seed(42)
        .with_start(
            std::time::UNIX_EPOCH + std::time::Duration::from_nanos(1_795_669_864_678_000_123),
        )
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
        assert_eq!(value["anomalies"][0]["element"], json!(3));
        assert_eq!(value["anomalies"][0]["node"], json!("n2"));
        assert!(value["anomalies"][0].get("edges").is_none());
        assert_eq!(
            value["anomalies"][1]["edges"],
            json!([{"from": 4, "to": 9, "kind": "rw", "key": "x"}, {"from": 9, "to": 4, "kind": "realtime"}])
        );
        assert_eq!(value["start_unix_ns"], json!(1_795_669_864_678_000_123u64));
        assert_eq!(value["start_time"], json!("2026-11-26T05:11:04.678000123Z"));
        assert!(value["stats"]["latency_ms"].is_object());
        let back: Results = serde_json::from_value(value).unwrap();
        assert_eq!(back, results);
    }

    #[test]
    fn results_json_without_the_later_fields_still_reads() {
        let old = json!({
            "valid": false,
            "checkers": {"set": {"valid": false, "anomalies": {"lost-write": 1}, "details": null}},
            "anomalies": [{"kind": "lost-write", "checker": "set", "ops": [1, 2], "time": 5, "explanation": "lost"}],
            "stats": Stats::default(),
            "seed": 3
        });
        let results: Results = serde_json::from_value(old).unwrap();
        assert_eq!(results.start_unix_ns, None);
        assert_eq!(results.start_time, None);
        let anomaly = &results.anomalies[0];
        assert_eq!(
            (anomaly.element.as_ref(), anomaly.node.as_ref()),
            (None, None)
        );
        assert!(anomaly.edges.is_empty());
    }
}
