//! The register workload: `read`, `write` and `cas` over independent keys,
//! checked for linearizability per key (Jepsen's linearizable-register
//! test).
//!
//! # Ops
//! - `read`, value `null`; an `ok` read's value is what the key held
//!   (`null` when missing);
//! - `write`, value a random integer `0..=4`;
//! - `cas`, value `[from, to]`, both random `0..=4`; `fail` with
//!   `cas-mismatch` when the key did not hold `from`.
//!
//! About half the ops are reads, a quarter writes, a quarter cas. Keys are
//! `"0"`, `"1"`, ...: [`WorkloadOptions::keys`] of them active at a time,
//! each retired after [`WorkloadOptions::per_key_limit`] ops for a fresh
//! one ([`KeyRotation`]), so no key's history grows too long or too
//! concurrent to check.
//!
//! # No final reads
//! Each key is checked on its own, and a final read adds no evidence a
//! linearizability check needs (a lost write shows up as a later read that
//! misses it, during the run). The keys still active at the end are known
//! only to the generator, so the workload has no final phase.
//!
//! # Check
//! The `linearizable` checker with the `cas-register` model: initial value
//! `null`, a `null` read meaning the key holds nothing (our node's
//! convention), within a 60 s budget (beyond it: `unknown`).

use std::time::Duration;

use checker::linearizable::{check, CheckError};
use rand::rngs::StdRng;
use rand::Rng;
use serde_json::{json, Value};

use super::{CheckFailure, CheckInput, CheckOptions, CheckOutcome, Workload, WorkloadOptions};
use crate::generator::{BoxGen, Invocation, KeyRotation};
use crate::system::db::NodeInfo;

/// The checker's name in results.
pub const CHECKER: &str = "linearizable";

/// How long the linearizability search may take before it answers `unknown`.
pub const CHECK_TIME_LIMIT: Duration = Duration::from_secs(60);

/// How long a run's check shrinks an invalid key to its core.
pub const SHRINK_TIME_LIMIT: Duration = Duration::from_secs(2);

/// The register workload: see the module docs.
#[derive(Clone, Debug)]
pub struct RegisterWorkload {
    options: WorkloadOptions,
}

impl RegisterWorkload {
    /// With these options.
    pub fn new(options: WorkloadOptions) -> Self {
        RegisterWorkload { options }
    }
}

/// One register op without a key: 50% read, 25% write, 25% cas.
pub fn draw_op(rng: &mut StdRng) -> Invocation {
    match rng.gen_range(0..4) {
        0 | 1 => Invocation::new("read", Value::Null),
        2 => Invocation::new("write", json!(rng.gen_range(0..5))),
        _ => Invocation::new("cas", json!([rng.gen_range(0..5), rng.gen_range(0..5)])),
    }
}

impl Workload for RegisterWorkload {
    fn checker_name(&self) -> &'static str {
        CHECKER
    }

    fn name(&self) -> &'static str {
        "register"
    }

    fn generator(&self) -> BoxGen {
        let (keys, per_key) = (self.options.keys, self.options.per_key_limit);
        Box::new(KeyRotation::new(keys, per_key, draw_op))
    }

    fn final_generator(&self, _nodes: &[NodeInfo]) -> Option<BoxGen> {
        None
    }

    fn check_with(
        &self,
        history: CheckInput<'_>,
        options: &CheckOptions,
    ) -> Result<Vec<CheckOutcome>, CheckFailure> {
        let CheckInput::Ops(history) = history else {
            return Err(CheckFailure::Usage {
                checker: CHECKER,
                message: "the linearizability checker reads ops, not transactions".into(),
            });
        };
        Ok(vec![check_linearizable(history, options)?])
    }
}

/// The `linearizable` outcome of `history` under `options.model`.
pub fn check_linearizable(
    history: &[checker::history::Op],
    options: &CheckOptions,
) -> Result<CheckOutcome, CheckFailure> {
    match check(history, &options.model, &options.linearizable) {
        Ok(result) => Ok(result.outcome(CHECKER)),
        Err(e @ CheckError::Spec(_)) => Err(CheckFailure::Usage {
            checker: CHECKER,
            message: e.to_string(),
        }),
        Err(e) => Err(CheckFailure::malformed(CHECKER, &e, e.index())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generator::{Context, Next};
    use checker::history::{Op, OpType, Process};
    use checker::Validity;
    use rand::SeedableRng;
    use std::collections::BTreeMap;

    fn ctx() -> Context {
        Context {
            time: Duration::ZERO,
            worker: 0,
            workers: 3,
        }
    }

    fn ops(seed: u64, options: WorkloadOptions, n: usize) -> Vec<Invocation> {
        let mut g = RegisterWorkload::new(options).generator();
        let mut rng = StdRng::seed_from_u64(seed);
        (0..n)
            .map(|_| match g.next(&ctx(), &mut rng) {
                Next::Op(op) => op,
                other => panic!("the register generator is endless, got {other:?}"),
            })
            .collect()
    }

    #[test]
    fn the_same_seed_draws_the_same_register_ops() {
        let options = WorkloadOptions::default();
        assert_eq!(ops(5, options.clone(), 300), ops(5, options.clone(), 300));
        assert_ne!(ops(5, options.clone(), 300), ops(6, options, 300));
    }

    #[test]
    fn the_mix_is_half_reads_and_values_stay_small() {
        let drawn = ops(1, WorkloadOptions::default(), 4000);
        let mut by_f: BTreeMap<&str, usize> = BTreeMap::new();
        for op in &drawn {
            *by_f.entry(op.f.as_str()).or_default() += 1;
            let small = |v: &Value| v.as_u64().is_some_and(|v| v <= 4);
            match op.f.as_str() {
                "read" => assert_eq!(op.value, Value::Null),
                "write" => assert!(small(&op.value)),
                "cas" => assert!(op.value.as_array().unwrap().iter().all(small)),
                f => panic!("unexpected f {f}"),
            }
        }
        assert!((1800..2200).contains(&by_f["read"]), "{by_f:?}");
        assert!((800..1200).contains(&by_f["write"]), "{by_f:?}");
        assert!((800..1200).contains(&by_f["cas"]), "{by_f:?}");
    }

    #[test]
    fn keys_rotate_after_their_op_limit() {
        let options = WorkloadOptions {
            keys: 3,
            per_key_limit: 10,
            ..WorkloadOptions::default()
        };
        let drawn = ops(2, options, 300);
        let mut per_key: BTreeMap<u64, usize> = BTreeMap::new();
        for op in &drawn {
            let key = op.key.as_deref().expect("register ops carry a key");
            *per_key.entry(key.parse().unwrap()).or_default() += 1;
        }
        assert!(per_key.values().all(|&n| n <= 10), "{per_key:?}");
        assert!(per_key.len() >= 30, "{per_key:?}");
        let first: Vec<_> = drawn[..3].iter().map(|o| o.key.clone().unwrap()).collect();
        assert!(first.iter().all(|k| ["0", "1", "2"].contains(&k.as_str())));
    }

    /// Builds a history from `(process, f, key, invoke value, type, completion value)`.
    fn history(events: &[(u64, &str, &str, Value, OpType, Value)]) -> Vec<Op> {
        let mut out = Vec::new();
        for (process, f, key, value, op_type, done) in events {
            let invoke = Op::invoke(*process, f, value.clone()).with_key(*key);
            let completion = invoke.completed(*op_type, done.clone());
            out.extend([invoke, completion]);
        }
        renumber(out)
    }

    fn renumber(mut ops: Vec<Op>) -> Vec<Op> {
        for (i, op) in ops.iter_mut().enumerate() {
            op.index = i as u64;
        }
        ops
    }

    #[test]
    fn a_read_of_a_value_never_written_is_not_linearizable() {
        let workload = RegisterWorkload::new(WorkloadOptions::default());
        let good = history(&[
            (0, "write", "0", json!(2), OpType::Ok, json!(2)),
            (1, "cas", "0", json!([2, 3]), OpType::Ok, json!([2, 3])),
            (0, "cas", "0", json!([2, 4]), OpType::Fail, json!([2, 4])),
            (1, "read", "0", Value::Null, OpType::Ok, json!(3)),
            (0, "read", "1", Value::Null, OpType::Ok, Value::Null),
        ]);
        let outcomes = workload.check(&good);
        assert_eq!(outcomes.len(), 1);
        assert_eq!(outcomes[0].checker, "linearizable");
        assert_eq!(outcomes[0].result.valid, Validity::Valid);

        let mut bad = good.clone();
        bad[7].value = json!(4);
        let mut nemesis = Op::invoke(0, "partition", json!({"n1": ["n2"]}));
        nemesis.process = Process::Nemesis;
        bad.insert(0, nemesis.completed(OpType::Info, Value::Null));
        let bad = renumber(bad);
        let outcome = &workload.check(&bad)[0];
        assert_eq!(outcome.result.valid, Validity::Invalid);
        assert_eq!(outcome.anomalies[0].kind, "not-linearizable");
        assert_eq!(outcome.anomalies[0].key.as_deref(), Some("0"));
    }

    #[test]
    fn a_malformed_history_is_unknown_with_the_reason() {
        let workload = RegisterWorkload::new(WorkloadOptions::default());
        let orphan = Op::invoke(0, "read", Value::Null).completed(OpType::Ok, json!(1));
        let outcome = &workload.check(&[orphan])[0];
        assert_eq!(outcome.result.valid, Validity::Unknown);
        let reason = outcome.result.details["reason"].as_str().unwrap();
        assert!(reason.starts_with("malformed history"), "{reason}");
    }
}
