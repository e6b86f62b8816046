//! The transactional workloads: `append`, list-append transactions (Elle's
//! `list-append`), and `rw-register`, register read/write transactions
//! (Elle's `rw-register`), for the transactional checker.
//!
//! # Ops
//! `txn`, value a list of 1 to 4 micro-ops, each `["append", k, v]` (or
//! `["w", k, v]` for rw-register) or `["r", k, null]` (half and half), sent
//! to `POST /txn`. An `ok` completion's value is the node's list, with every
//! read filled in with what the key held: the list (append), the last value
//! written (rw-register), `null` when missing. Keys are `"0"` to
//! `"{keys - 1}"` ([`WorkloadOptions::keys`]), skewed so that conflicts
//! happen: key `0` is eight times and key `1` four times as likely as each
//! other key. Appended (written) values count up per key from 1, so every
//! value is unique within its key and a read's order says which append came
//! first.
//!
//! Keys do not rotate: lists grow for the whole run (about half the appends
//! land on key `0`), which a long, fast run will feel in read sizes.
//!
//! # Where txns go
//! A `txn` with a write goes to the primary (any node in multi-primary
//! topology). A read-only `txn` (only `r` micro-ops) is a read to the node
//! and follows `--reads` like the other workloads' reads: with `local` it
//! goes to the worker's bound node and sees that node's state, so a
//! lagging or partitioned node's stale reads show up as realtime cycles
//! (`G-single-realtime`, `G2-item-realtime`); with `primary` it goes to the
//! believed primary, which answers without confirming it still is one;
//! with `linearizable` the primary confirms first. Every op records the
//! node that answered in `node`.
//!
//! # Final reads
//! One read-only `txn` of every key, pinned to each node in turn. With
//! local reads (or in multi-primary topology) every node answers from its
//! own state; otherwise only the primary's succeeds (the others `fail` with
//! `not-primary`).
//!
//! # Check
//! `checker::txn`: version orders from the reads, a dependency graph
//! (ww/wr/rw, process, realtime), cycles classified G0 ... G2-item, plus the
//! anomalies that need no graph; the verdict is against strict
//! serializability. rw-register histories prove less (see `checker::txn`'s
//! rw-register section): the version order comes only from the initial nil
//! and from txns that read a key and then wrote it.

use rand::rngs::StdRng;
use rand::Rng;
use serde_json::{json, Value};

use super::{
    read_on_every_node, CheckFailure, CheckInput, CheckOptions, CheckOutcome, HistoryForm,
    Workload, WorkloadOptions,
};
use crate::generator::{BoxGen, Context, Generator, Invocation, Next};
use crate::system::db::NodeInfo;

use checker::txn::{TxnHistory, TxnOptions, TxnWorkload};

/// The list-append checker's name in results.
pub const CHECKER: &str = "list-append";

/// The append and rw-register workloads: see the module docs.
#[derive(Clone, Debug)]
pub struct AppendWorkload {
    options: WorkloadOptions,
    kind: TxnWorkload,
}

impl AppendWorkload {
    /// List-append, with these options.
    pub fn new(options: WorkloadOptions) -> Self {
        AppendWorkload {
            options,
            kind: TxnWorkload::ListAppend,
        }
    }

    /// rw-register, with these options.
    pub fn rw_register(options: WorkloadOptions) -> Self {
        AppendWorkload {
            options,
            kind: TxnWorkload::RwRegister,
        }
    }

    fn keys(&self) -> usize {
        self.options.keys.max(1)
    }

    /// The checker's options: the test's consistency models.
    fn txn_options(&self) -> TxnOptions {
        TxnOptions {
            consistency_models: self.options.consistency_models.clone(),
            ..TxnOptions::default()
        }
    }
}

/// Draws the transactions; remembers the next value to append per key.
struct Transactions {
    next_value: Vec<u64>,
    /// `append` or `w`.
    write: &'static str,
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
        json!([self.write, k.to_string(), self.next_value[k]])
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
    fn checker_name(&self) -> &'static str {
        self.kind.name()
    }

    fn name(&self) -> &'static str {
        match self.kind {
            TxnWorkload::ListAppend => "append",
            TxnWorkload::RwRegister => "rw-register",
        }
    }

    fn generator(&self) -> BoxGen {
        Box::new(Transactions {
            next_value: vec![0; self.keys()],
            write: match self.kind {
                TxnWorkload::ListAppend => "append",
                TxnWorkload::RwRegister => "w",
            },
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

    fn check_with(
        &self,
        history: CheckInput<'_>,
        options: &CheckOptions,
    ) -> Result<Vec<CheckOutcome>, CheckFailure> {
        let checker = self.kind.name();
        let outcome = match history {
            CheckInput::Txn(h) => try_check_txn(h, &options.txn)?,
            CheckInput::Ops(ops) => {
                let h = TxnHistory::from_ops(ops, self.kind)
                    .map_err(|e| CheckFailure::malformed(checker, &e, e.index()))?;
                try_check_txn(&h, &options.txn)?
            }
        };
        Ok(vec![outcome])
    }

    fn history_form(&self) -> HistoryForm {
        HistoryForm::Txn(self.kind)
    }

    fn check_options(&self) -> CheckOptions {
        CheckOptions {
            txn: self.txn_options(),
            ..CheckOptions::default()
        }
    }
}

/// The list-append (Elle-style) analysis of a history, as a checker
/// outcome, invalid when it rules out strict serializability.
pub fn check_list_append(history: &[checker::history::Op]) -> CheckOutcome {
    match TxnHistory::from_ops(history, TxnWorkload::ListAppend) {
        Ok(h) => check_txn(&h, &TxnOptions::default()),
        Err(e) => CheckOutcome::unknown(CHECKER, format!("malformed history: {e}")),
    }
}

/// The transactional analysis of a history (list-append or rw-register, as
/// it was read) with chosen options, as a checker outcome.
pub fn check_txn(history: &TxnHistory, options: &TxnOptions) -> CheckOutcome {
    try_check_txn(history, options).unwrap_or_else(|failure| {
        CheckOutcome::unknown(
            failure.checker(),
            format!("malformed history: {}", failure.message()),
        )
    })
}

/// [`check_txn`], a history or options it cannot take being the failure.
fn try_check_txn(history: &TxnHistory, options: &TxnOptions) -> Result<CheckOutcome, CheckFailure> {
    let checker = history.workload().name();
    match checker::txn::check(history, options) {
        Ok(result) => Ok(result.outcome(checker, history)),
        Err(e @ checker::txn::TxnError::Malformed { .. }) => {
            Err(CheckFailure::malformed(checker, &e, e.index()))
        }
        Err(e) => Err(CheckFailure::Usage {
            checker,
            message: e.to_string(),
        }),
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
    fn a_read_that_misses_a_completed_append_is_a_realtime_anomaly() {
        use checker::history::{Op, OpType};
        // T0 appends 1 to "0" and completes; T1 starts later and reads [];
        // T2 reads [1], which orders the versions.
        let append = Op::invoke(0, "txn", json!([["append", "0", 1]]));
        let read = Op::invoke(1, "txn", json!([["r", "0", null]]));
        let later = Op::invoke(2, "txn", json!([["r", "0", null]]));
        let mut history = vec![
            append.clone(),
            append.completed(OpType::Ok, json!([["append", "0", 1]])),
            read.clone(),
            read.completed(OpType::Ok, json!([["r", "0", []]])),
            later.clone(),
            later.completed(OpType::Ok, json!([["r", "0", [1]]])),
        ];
        for (i, op) in history.iter_mut().enumerate() {
            op.index = i as u64;
        }
        let outcome = &workload(8).check(&history)[0];
        assert_eq!(
            outcome.result.valid,
            Validity::Invalid,
            "{}",
            outcome.result.details
        );
        let cycle = outcome
            .anomalies
            .iter()
            .find(|a| a.kind.starts_with("G-single"))
            .unwrap_or_else(|| panic!("no G-single in {:?}", outcome.anomalies));
        // The cycle's dependencies reach results.json: T2 -rw-> T0 -realtime-> T2.
        let edges: Vec<(u64, u64, &str)> = cycle
            .edges
            .iter()
            .map(|e| (e.from, e.to, e.kind.as_str()))
            .collect();
        assert!(edges.contains(&(2, 0, "rw")), "{edges:?}");
        assert!(edges.contains(&(0, 2, "realtime")), "{edges:?}");
        let rw = cycle.edges.iter().find(|e| e.kind == "rw").unwrap();
        assert_eq!(rw.key.as_deref(), Some("0"));
    }

    #[test]
    fn the_consistency_models_of_the_test_reach_the_checker() {
        use checker::history::{Op, OpType};
        // The history above: its only anomaly needs a realtime edge, which
        // serializability does not honour.
        let append = Op::invoke(0, "txn", json!([["append", "0", 1]]));
        let read = Op::invoke(1, "txn", json!([["r", "0", null]]));
        let later = Op::invoke(2, "txn", json!([["r", "0", null]]));
        let mut history = vec![
            append.clone(),
            append.completed(OpType::Ok, json!([["append", "0", 1]])),
            read.clone(),
            read.completed(OpType::Ok, json!([["r", "0", []]])),
            later.clone(),
            later.completed(OpType::Ok, json!([["r", "0", [1]]])),
        ];
        for (i, op) in history.iter_mut().enumerate() {
            op.index = i as u64;
        }
        let serializable = AppendWorkload::new(WorkloadOptions {
            keys: 8,
            consistency_models: vec!["serializable".into()],
            ..WorkloadOptions::default()
        });
        let outcome = &serializable.check(&history)[0];
        assert_eq!(
            outcome.result.valid,
            Validity::Valid,
            "{}",
            outcome.result.details
        );
    }
}
