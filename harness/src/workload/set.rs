//! The set workload: unique elements added to one grow-only set, read
//! throughout the run and once on every node after the faults heal
//! (Jepsen's `set-full`).
//!
//! # Ops
//! - `add`, value the element: `0`, `1`, `2`, ... from a counter in the
//!   generator, so every element is added exactly once;
//! - `read`, value `null`; an `ok` read's value is the list of elements the
//!   node holds (`[]` when the set does not exist yet).
//!
//! About one read per ten adds. Ops carry no key: the client appends to and
//! reads the key [`SET_KEY`] (`POST /kv/s/append`, `GET /kv/s`), and the
//! checker sees one keyless set.
//!
//! # Final reads
//! One `read` pinned to each node, in node order. Pinned reads are not
//! redirected, so with `--reads primary|linearizable` the secondaries refuse
//! theirs (`fail`, `not-primary`) and the primary's read is the one that
//! counts; with local reads every node's state is read.
//!
//! # Check
//! The `set` checker ([`checker::set`]): an acknowledged element missing
//! from every read from some point on is a `lost-write`; one missing from a
//! read that began after it was known, but seen again later, a
//! `stale-read`; elements never added are `unexpected-element`, listed
//! twice `duplicate-elements`. The anomaly counts are complete; the listed
//! anomalies are a sample (32 per kind).

use checker::set::check_set;
use rand::rngs::StdRng;
use rand::Rng;
use serde_json::{json, Value};

use super::{
    read_on_every_node, CheckFailure, CheckInput, CheckOptions, CheckOutcome, Workload,
    WorkloadOptions,
};
use crate::generator::{BoxGen, Context, FromFn, Invocation};
use crate::system::db::NodeInfo;

/// The checker's name in results.
pub const CHECKER: &str = "set";

/// The key the set lives under on the nodes.
pub const SET_KEY: &str = "s";

/// The set workload: see the module docs.
#[derive(Clone, Debug)]
pub struct SetWorkload;

impl SetWorkload {
    /// With these options (the set needs none of them: it has one key).
    pub fn new(_options: WorkloadOptions) -> Self {
        SetWorkload
    }
}

fn read() -> Invocation {
    Invocation::new("read", Value::Null)
}

impl Workload for SetWorkload {
    fn checker_name(&self) -> &'static str {
        CHECKER
    }

    fn name(&self) -> &'static str {
        "set"
    }

    fn generator(&self) -> BoxGen {
        let mut next_element: u64 = 0;
        Box::new(FromFn(move |_: &Context, rng: &mut StdRng| {
            if rng.gen_ratio(1, 11) {
                return read();
            }
            next_element += 1;
            Invocation::new("add", json!(next_element - 1))
        }))
    }

    fn final_generator(&self, nodes: &[NodeInfo]) -> Option<BoxGen> {
        Some(read_on_every_node(nodes, read))
    }

    /// A malformed set history is a failure naming the op (`faultline
    /// check` exits 4; `faultline run` stores an unknown verdict).
    fn check_with(
        &self,
        history: CheckInput<'_>,
        _options: &CheckOptions,
    ) -> Result<Vec<CheckOutcome>, CheckFailure> {
        let CheckInput::Ops(history) = history else {
            return Err(CheckFailure::Usage {
                checker: CHECKER,
                message: "the set checker reads ops, not transactions".into(),
            });
        };
        match check_set(history) {
            Ok(result) => Ok(vec![result.outcome(CHECKER)]),
            Err(e) => Err(CheckFailure::malformed(CHECKER, &e, Some(e.index()))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generator::Next;
    use checker::history::{Op, OpType};
    use checker::Validity;
    use rand::SeedableRng;
    use std::time::Duration;

    fn ctx() -> Context {
        Context {
            time: Duration::ZERO,
            worker: 1,
            workers: 3,
        }
    }

    fn drain(g: &mut BoxGen, seed: u64, n: usize) -> Vec<Next> {
        let mut rng = StdRng::seed_from_u64(seed);
        (0..n).map(|_| g.next(&ctx(), &mut rng)).collect()
    }

    fn nodes(n: usize) -> Vec<NodeInfo> {
        (1..=n)
            .map(|i| NodeInfo {
                id: format!("n{i}"),
                url: format!("http://127.0.0.1:{}", 7000 + i),
                port: 7000 + i as u16,
            })
            .collect()
    }

    #[test]
    fn adds_are_unique_and_increasing_with_a_read_every_ten_or_so() {
        let workload = SetWorkload::new(WorkloadOptions::default());
        let drawn = drain(&mut workload.generator(), 3, 2200);
        assert_eq!(
            drawn,
            drain(&mut workload.generator(), 3, 2200),
            "same seed, same ops"
        );
        let mut elements = Vec::new();
        let mut reads = 0;
        for next in drawn {
            let Next::Op(op) = next else {
                panic!("endless")
            };
            assert_eq!(op.key, None);
            match op.f.as_str() {
                "add" => elements.push(op.value.as_u64().unwrap()),
                "read" => reads += 1,
                f => panic!("unexpected f {f}"),
            }
        }
        assert_eq!(elements, (0..elements.len() as u64).collect::<Vec<_>>());
        assert!((150..250).contains(&reads), "{reads} reads in 2200 ops");
    }

    #[test]
    fn the_final_phase_reads_once_on_every_node() {
        let workload = SetWorkload::new(WorkloadOptions::default());
        let mut g = workload.final_generator(&nodes(3)).unwrap();
        let drawn = drain(&mut g, 1, 4);
        let targets: Vec<_> = drawn[..3]
            .iter()
            .map(|n| match n {
                Next::Op(op) if op.f == "read" => op.node.clone().unwrap(),
                other => panic!("expected a read, got {other:?}"),
            })
            .collect();
        assert_eq!(targets, ["n1", "n2", "n3"]);
        assert_eq!(drawn[3], Next::Exhausted);
    }

    fn history(events: &[(u64, &str, Value, OpType, Value)]) -> Vec<Op> {
        let mut out = Vec::new();
        for (process, f, value, op_type, done) in events {
            let invoke = Op::invoke(*process, f, value.clone());
            let completion = invoke.completed(*op_type, done.clone());
            out.extend([invoke, completion]);
        }
        for (i, op) in out.iter_mut().enumerate() {
            op.index = i as u64;
            op.time = Some(i as u64 * 1_000_000);
        }
        out
    }

    #[test]
    fn an_acknowledged_element_missing_from_the_final_read_is_a_lost_write() {
        let workload = SetWorkload::new(WorkloadOptions::default());
        let good = history(&[
            (0, "add", json!(0), OpType::Ok, json!(0)),
            (1, "add", json!(1), OpType::Ok, json!(1)),
            (0, "read", Value::Null, OpType::Ok, json!([0, 1])),
        ]);
        let outcome = &workload.check(&good)[0];
        assert_eq!(outcome.checker, "set");
        assert_eq!(outcome.result.valid, Validity::Valid);
        assert!(outcome.anomalies.is_empty());

        let mut bad = good;
        bad[5].value = json!([0]);
        let outcome = &workload.check(&bad)[0];
        assert_eq!(outcome.result.valid, Validity::Invalid);
        assert_eq!(outcome.result.anomalies["lost-write"], 1);
        let lost = &outcome.anomalies[0];
        assert_eq!(
            (lost.kind.as_str(), lost.checker.as_str()),
            ("lost-write", "set")
        );
        assert!(lost.ops.contains(&2) && lost.ops.contains(&3), "{lost:?}");
        assert_eq!(lost.element, Some(json!(1)));
        assert!(!lost.explanation.is_empty());
    }

    #[test]
    fn a_malformed_set_history_is_unknown() {
        let workload = SetWorkload::new(WorkloadOptions::default());
        let bad_read = history(&[(0, "read", Value::Null, OpType::Ok, json!(3))]);
        let outcome = &workload.check(&bad_read)[0];
        assert_eq!(outcome.result.valid, Validity::Unknown);
        assert!(outcome.result.details["reason"].is_string());
    }
}
