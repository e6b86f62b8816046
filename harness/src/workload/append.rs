//! The append workload: list-append transactions (Elle's `list-append`),
//! for the transactional checker.
//!
//! # Ops
//! `txn`, value a list of 1 to 4 micro-ops, each `["append", k, v]` or
//! `["r", k, null]` (half and half), sent to `POST /txn`. An `ok`
//! completion's value is the node's list, with every read filled in with the
//! list the key held (`null` when missing). Keys are `"0"` to
//! `"{keys - 1}"` ([`WorkloadOptions::keys`]), skewed so that conflicts
//! happen: key `0` is eight times and key `1` four times as likely as each
//! other key. Appended values count up per key from 1, so every value is
//! unique within its key and a read's order says which append came first.
//!
//! Keys do not rotate: lists grow for the whole run (about half the appends
//! land on key `0`), which a long, fast run will feel in read sizes.
//!
//! # Final reads
//! One read-only `txn` of every key, pinned to each node in turn. A `txn`
//! goes to a primary, so in primary topology only the primary's succeeds
//! (the others `fail` with `not-primary`); in multi-primary topology every
//! node answers from its own state.
//!
//! # Check
//! The transactional checker does not exist yet (issue 7): the verdict is
//! always `unknown`, never `valid`.

use rand::rngs::StdRng;
use rand::Rng;
use serde_json::{json, Value};

use super::kv_client::NodeClient;
use super::{read_on_every_node, CheckOutcome, Workload, WorkloadOptions};
use crate::client::Client;
use crate::db::NodeInfo;
use crate::generator::{BoxGen, Context, Generator, Invocation, Next};

/// The checker's name in results.
pub const CHECKER: &str = "list-append";

/// Why the verdict is unknown.
pub const NOT_YET: &str = "list-append analysis not implemented yet (issue 7)";

/// The append workload: see the module docs.
#[derive(Clone, Debug)]
pub struct AppendWorkload {
    options: WorkloadOptions,
}

impl AppendWorkload {
    /// With these options.
    pub fn new(options: WorkloadOptions) -> Self {
        AppendWorkload { options }
    }

    fn keys(&self) -> usize {
        self.options.keys.max(1)
    }
}

/// Draws the transactions; remembers the next value to append per key.
struct Transactions {
    next_value: Vec<u64>,
}

impl Transactions {
    /// A hot-key-skewed key: weight 8 for key 0, 4 for key 1, 1 for the rest.
    fn key(&self, rng: &mut StdRng) -> usize {
        let weight = |k: usize| match k {
            0 => 8,
            1 => 4,
            _ => 1,
        };
        let total: usize = (0..self.next_value.len()).map(weight).sum();
        let mut draw = rng.gen_range(0..total);
        for k in 0..self.next_value.len() {
            if draw < weight(k) {
                return k;
            }
            draw -= weight(k);
        }
        unreachable!("the draw is below the total weight")
    }

    fn micro_op(&mut self, rng: &mut StdRng) -> Value {
        let k = self.key(rng);
        if rng.gen_bool(0.5) {
            return json!(["r", k.to_string(), null]);
        }
        self.next_value[k] += 1;
        json!(["append", k.to_string(), self.next_value[k]])
    }
}

impl Generator for Transactions {
    fn next(&mut self, _ctx: &Context, rng: &mut StdRng) -> Next {
        let len = rng.gen_range(1..=4);
        let micro_ops: Vec<Value> = (0..len).map(|_| self.micro_op(rng)).collect();
        Next::Op(Invocation::new("txn", Value::Array(micro_ops)))
    }
}

impl Workload for AppendWorkload {
    fn name(&self) -> &'static str {
        "append"
    }

    fn client(&self, worker: usize, nodes: &[NodeInfo]) -> Box<dyn Client> {
        let client = NodeClient::new(worker, nodes, &self.options);
        Box::new(client.timed(self.options.op_timeout))
    }

    fn generator(&self) -> BoxGen {
        Box::new(Transactions {
            next_value: vec![0; self.keys()],
        })
    }

    fn final_generator(&self, nodes: &[NodeInfo]) -> Option<BoxGen> {
        let keys = self.keys();
        let read_all = move || {
            let reads: Vec<Value> = (0..keys)
                .map(|k| json!(["r", k.to_string(), null]))
                .collect();
            Invocation::new("txn", Value::Array(reads))
        };
        Some(read_on_every_node(nodes, read_all))
    }

    fn check(&self, history: &[checker::history::Op]) -> Vec<CheckOutcome> {
        let mut outcome = CheckOutcome::unknown(CHECKER, NOT_YET);
        let ok_txns = history
            .iter()
            .filter(|op| op.f == "txn" && op.op_type == checker::history::OpType::Ok)
            .count();
        outcome.result.details["ok_txns"] = json!(ok_txns);
        vec![outcome]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::is_read_only;
    use checker::Validity;
    use rand::SeedableRng;
    use std::collections::BTreeMap;
    use std::time::Duration;

    fn ctx() -> Context {
        Context {
            time: Duration::ZERO,
            worker: 0,
            workers: 2,
        }
    }

    fn workload(keys: usize) -> AppendWorkload {
        AppendWorkload::new(WorkloadOptions {
            keys,
            ..WorkloadOptions::default()
        })
    }

    fn txns(seed: u64, n: usize) -> Vec<Value> {
        let mut g = workload(8).generator();
        let mut rng = StdRng::seed_from_u64(seed);
        (0..n)
            .map(|_| match g.next(&ctx(), &mut rng) {
                Next::Op(op) if op.f == "txn" => op.value,
                other => panic!("expected a txn, got {other:?}"),
            })
            .collect()
    }

    #[test]
    fn transactions_append_unique_increasing_values_with_hot_keys() {
        let drawn = txns(11, 2000);
        assert_eq!(drawn, txns(11, 2000), "same seed, same transactions");
        assert_ne!(drawn, txns(12, 2000));
        let mut last: BTreeMap<String, u64> = BTreeMap::new();
        let mut uses: BTreeMap<String, usize> = BTreeMap::new();
        for txn in &drawn {
            let micro_ops = txn.as_array().unwrap();
            assert!((1..=4).contains(&micro_ops.len()));
            for m in micro_ops {
                let (f, k) = (m[0].as_str().unwrap(), m[1].as_str().unwrap().to_string());
                *uses.entry(k.clone()).or_default() += 1;
                match f {
                    "r" => assert_eq!(m[2], Value::Null),
                    "append" => {
                        let v = m[2].as_u64().unwrap();
                        let prev = last.insert(k, v).unwrap_or(0);
                        assert_eq!(v, prev + 1, "values count up per key");
                    }
                    f => panic!("unexpected micro-op {f}"),
                }
            }
        }
        assert_eq!(uses.len(), 8, "{uses:?}");
        assert!(uses["0"] > 5 * uses["5"], "{uses:?}");
        assert!(uses["1"] > 2 * uses["5"], "{uses:?}");
    }

    #[test]
    fn the_final_phase_reads_every_key_once_on_every_node() {
        let nodes: Vec<NodeInfo> = (1..=3)
            .map(|i| NodeInfo {
                id: format!("n{i}"),
                url: String::new(),
                port: 0,
            })
            .collect();
        let mut g = workload(3).final_generator(&nodes).unwrap();
        let mut rng = StdRng::seed_from_u64(1);
        for id in ["n1", "n2", "n3"] {
            let Next::Op(op) = g.next(&ctx(), &mut rng) else {
                panic!()
            };
            assert_eq!(op.node.as_deref(), Some(id));
            assert_eq!(
                op.value,
                json!([["r", "0", null], ["r", "1", null], ["r", "2", null]])
            );
            assert!(is_read_only(&op));
        }
        assert_eq!(g.next(&ctx(), &mut rng), Next::Exhausted);
    }

    #[test]
    fn the_verdict_is_unknown_never_valid() {
        let outcomes = workload(8).check(&[]);
        assert_eq!(outcomes.len(), 1);
        assert_eq!(outcomes[0].result.valid, Validity::Unknown);
        assert_eq!(outcomes[0].result.details["reason"], json!(NOT_YET));
    }
}
