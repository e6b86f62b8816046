//! What every checker returns and a run stores: a verdict, anomaly counts,
//! and the anomalies themselves, tied to the history by op indices.
//!
//! Each checker's own result turns into a [`CheckOutcome`] beside it
//! (`linearizable::CheckResult::outcome`, `set::SetResult::outcome`,
//! `txn::TxnResult::outcome`); `results.json` stores the outcome's parts
//! (`checkers.<name>` is a [`CheckerResult`], `anomalies` the [`Anomaly`]s),
//! and the report draws only from what is stored. An anomaly names ops by
//! history index and its time; which faults were in force is the report's
//! business (it joins the indices with the fault windows), never a checker's.
//!
//! The serde field names are the `results.json` schema (see `results`): a
//! field added later has a default, so older files still read.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::verdict::Validity;

/// One checker's verdict on a history, with the anomalies it found.
#[derive(Clone, Debug, PartialEq)]
pub struct CheckOutcome {
    /// The checker's name, a key of `results.json`'s `checkers`.
    pub checker: String,
    /// Its verdict, anomaly counts, details and report rows.
    pub result: CheckerResult,
    /// The anomalies, with the ops that show them (may be a sample: the
    /// counts in `result` are complete).
    pub anomalies: Vec<Anomaly>,
}

impl CheckOutcome {
    /// An `unknown` verdict of `checker`, with `reason` in the details: for
    /// a checker that could not judge (malformed history, no checker yet).
    pub fn unknown(checker: &str, reason: impl Into<String>) -> CheckOutcome {
        let details = json!({ "reason": reason.into() });
        CheckOutcome {
            checker: checker.to_string(),
            result: CheckerResult::new(Validity::Unknown).with_details(details),
            anomalies: Vec::new(),
        }
    }
}

/// One checker's verdict and what it found (`results.json`'s `checkers.*`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CheckerResult {
    /// Its verdict.
    pub valid: Validity,
    /// How many anomalies of each kind (docs/DESIGN.md's names) it found.
    #[serde(default)]
    pub anomalies: BTreeMap<String, usize>,
    /// The checker's own result, as it reports it.
    #[serde(default)]
    pub details: Value,
    /// The anomalies the report tabulates one row each, when the run's
    /// `anomalies` hold only a sample of them (the set checker's lost and
    /// stale elements, up to its row cap per kind and key); empty otherwise,
    /// and in files written before it existed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rows: Vec<Anomaly>,
}

impl CheckerResult {
    /// A verdict with no anomalies and no details.
    pub fn new(valid: Validity) -> CheckerResult {
        CheckerResult {
            valid,
            anomalies: BTreeMap::new(),
            details: Value::Null,
            rows: Vec::new(),
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

    /// The rows of `kind` that the report tabulates, if the checker stored
    /// them (see [`CheckerResult::rows`]).
    pub fn rows_of<'r>(&'r self, kind: &'r str) -> impl Iterator<Item = &'r Anomaly> + 'r {
        self.rows.iter().filter(move |a| a.kind == kind)
    }
}

/// The JSON of a checker's own result, or a note that it did not serialize.
pub(crate) fn details_of(result: &impl Serialize, checker: &str) -> Value {
    serde_json::to_value(result).unwrap_or_else(|e| {
        Value::String(format!(
            "the {checker} checker's result did not serialize: {e}"
        ))
    })
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
    /// Set anomalies: the element.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub element: Option<Value>,
    /// Set anomalies: the node that acknowledged the add (lost, stale) or
    /// answered the offending read (unexpected, duplicated).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// Transactional cycles: the dependencies, in cycle order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub edges: Vec<AnomalyEdge>,
}

/// One dependency of a transactional cycle: txn `from` precedes txn `to`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnomalyEdge {
    /// History index of the earlier txn's invocation.
    pub from: u64,
    /// History index of the later txn's invocation.
    pub to: u64,
    /// `ww`, `wr`, `rw`, `process` or `realtime`.
    pub kind: String,
    /// The key of a data dependency (`ww`, `wr`, `rw`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

impl Anomaly {
    /// An anomaly of `kind` found by `checker`, with nothing but its
    /// explanation; fill in the rest with the `with_` methods or directly.
    pub fn new(
        kind: impl Into<String>,
        checker: impl Into<String>,
        explanation: impl Into<String>,
    ) -> Anomaly {
        Anomaly {
            kind: kind.into(),
            checker: checker.into(),
            key: None,
            ops: Vec::new(),
            time: None,
            explanation: explanation.into(),
            element: None,
            node: None,
            edges: Vec::new(),
        }
    }

    /// With the key it concerns.
    pub fn with_key(mut self, key: Option<String>) -> Anomaly {
        self.key = key;
        self
    }

    /// With the history indices of its ops and when it happened.
    pub fn with_ops(mut self, ops: Vec<u64>, time: Option<u64>) -> Anomaly {
        self.ops = ops;
        self.time = time;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_outcome_gives_its_reason_in_the_details() {
        let outcome = CheckOutcome::unknown("set", "malformed history: op 3");
        assert_eq!(outcome.result.valid, Validity::Unknown);
        assert_eq!(outcome.result.details["reason"], "malformed history: op 3");
        assert!(outcome.anomalies.is_empty());
    }

    #[test]
    fn a_checker_result_without_rows_serializes_as_before_and_reads_back() {
        let result = CheckerResult::new(Validity::Invalid).with_anomalies("lost-write", 2);
        let value = serde_json::to_value(&result).unwrap();
        assert_eq!(
            value,
            json!({"valid": false, "anomalies": {"lost-write": 2}, "details": null})
        );
        let back: CheckerResult = serde_json::from_value(value).unwrap();
        assert_eq!(back, result);
    }
}
