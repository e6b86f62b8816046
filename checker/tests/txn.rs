//! The transactional (list-append) checker on generated histories.
//!
//! - serial executions with overlapping intervals are strict serializable;
//! - injected faults (a reordered read, an append dropped after it was seen)
//!   are found;
//! - the same for rw-register: serial executions are valid even assuming
//!   linearizable keys; a read of a write whose txn is then marked failed is
//!   found;
//! - Elle's EDN histories of both kinds import and check;
//! - an `#[ignore]`d timing test: 1,000,000 txns over 10,000 keys, in
//!   process and (with `TXN_BENCH_OUT`) read back from its JSONL file.

use std::time::Instant;

use checker::history::{Op, OpType};
use checker::txn::{
    check, check_list_append, check_rw_register, RegisterOrder, TxnHistory, TxnOptions, TxnWorkload,
};
use checker::Validity;
use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

/// What to break in a generated history.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fault {
    None,
    /// Swap the last two elements of one read (not the final reads).
    ReorderRead,
    /// The database drops an append right after the first read that saw it.
    DropSeenAppend,
}

struct Shape {
    txns: usize,
    keys: u64,
    /// How far (in txn slots) an interval reaches either side of its serialization point.
    spread: u64,
    info_percent: u32,
}

struct Generated {
    ops: Vec<Op>,
    injected: bool,
}

/// Runs random txns serially (txn i at time 1000·i), each with an interval
/// around its serialization point, then final reads of every key.
fn generate(seed: u64, shape: &Shape, fault: Fault) -> Generated {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut state: Vec<Vec<i64>> = vec![Vec::new(); shape.keys as usize];
    let mut next = 0i64;
    let mut dropped: Option<(usize, i64)> = None;
    let mut injected = false;
    let mut spans: Vec<(u64, u64, Value, Value, bool)> = Vec::new();
    let reach = 1000 * shape.spread;
    let mut latest = 0;
    for i in 0..=shape.txns {
        let last = i == shape.txns;
        let info = !last && rng.gen_range(0..100) < shape.info_percent;
        let applied = !info || rng.gen_bool(0.5);
        let mut mops = Vec::new();
        let ops: Vec<(bool, usize)> = if last {
            (0..shape.keys as usize).map(|k| (false, k)).collect()
        } else {
            (0..rng.gen_range(1..=4))
                .map(|_| (rng.gen_bool(0.5), rng.gen_range(0..shape.keys as usize)))
                .collect()
        };
        for (append, k) in ops {
            if append {
                next += 1;
                if applied {
                    state[k].push(next);
                    if fault == Fault::DropSeenAppend
                        && dropped.is_none()
                        && !injected
                        && rng.gen_bool(0.2)
                    {
                        dropped = Some((k, next));
                    }
                }
                mops.push(json!(["append", k, next]));
            } else {
                mops.push(json!(["r", k, state[k].clone()]));
                if let Some((dk, de)) = dropped {
                    if dk == k && !last && !info && state[k].contains(&de) {
                        state[k].retain(|&e| e != de);
                        dropped = None;
                        injected = true;
                    }
                }
            }
        }
        let at = 1000 * (i as u64 + shape.spread + 1);
        // The final reads begin once everything else has completed.
        let (lo, hi) = if last {
            (latest + 1, latest + 2)
        } else {
            (at - rng.gen_range(1..reach), at + rng.gen_range(1..reach))
        };
        latest = latest.max(hi);
        let invoked: Value = mops
            .iter()
            .map(|m| {
                if m[0] == "r" {
                    json!(["r", m[1], null])
                } else {
                    m.clone()
                }
            })
            .collect();
        spans.push((lo, hi, invoked, Value::Array(mops), info));
    }
    if fault == Fault::ReorderRead {
        let reads: Vec<(usize, usize)> = spans[..shape.txns]
            .iter()
            .enumerate()
            .filter(|(_, s)| !s.4)
            .flat_map(|(t, s)| {
                s.3.as_array()
                    .into_iter()
                    .flatten()
                    .enumerate()
                    .map(move |(m, v)| (t, m, v))
            })
            .filter(|(_, _, v)| v[0] == "r" && v[2].as_array().is_some_and(|l| l.len() >= 2))
            .map(|(t, m, _)| (t, m))
            .collect();
        if !reads.is_empty() {
            let (t, m) = reads[rng.gen_range(0..reads.len())];
            if let Some(l) = spans[t].3[m][2].as_array_mut() {
                let n = l.len();
                l.swap(n - 1, n - 2);
                injected = true;
            }
        }
    }
    Generated {
        ops: assemble(spans),
        injected,
    }
}

/// Events in time order, with process ids: a process is reused once its last
/// op completed; an `info` op retires it.
fn assemble(spans: Vec<(u64, u64, Value, Value, bool)>) -> Vec<Op> {
    let mut order: Vec<usize> = (0..spans.len()).collect();
    order.sort_by_key(|&t| spans[t].0);
    let mut free_at: Vec<(u64, u64)> = Vec::new(); // (process, busy until)
    let mut next_process = 0;
    let mut events: Vec<(u64, bool, Op)> = Vec::new();
    for t in order {
        let (lo, hi, invoked, completed, info) = &spans[t];
        let p = match free_at.iter().position(|&(_, until)| until < *lo) {
            Some(i) => free_at.swap_remove(i).0,
            None => {
                next_process += 1;
                next_process - 1
            }
        };
        if !info {
            free_at.push((p, *hi));
        }
        let inv = Op::invoke(p, "txn", invoked.clone());
        let done = if *info {
            inv.completed(OpType::Info, Value::Null)
        } else {
            inv.completed(OpType::Ok, completed.clone())
        };
        events.push((*lo, true, inv));
        events.push((*hi, false, done));
    }
    events.sort_by_key(|e| (e.0, e.1));
    events
        .into_iter()
        .enumerate()
        .map(|(i, (time, _, mut op))| {
            op.index = i as u64;
            op.time = Some(time);
            op
        })
        .collect()
}

fn small(txns: usize) -> Shape {
    Shape {
        txns,
        keys: 4,
        spread: 3,
        info_percent: 5,
    }
}

/// Runs random register txns serially (as [`generate`]): reads see the
/// latest write (the txn's own included), every written value is unique.
fn generate_register(seed: u64, shape: &Shape) -> Vec<Op> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut state: Vec<Option<i64>> = vec![None; shape.keys as usize];
    let mut next = 0i64;
    let mut spans = Vec::new();
    let reach = 1000 * shape.spread;
    for i in 0..shape.txns {
        let info = rng.gen_range(0..100) < shape.info_percent;
        let applied = !info || rng.gen_bool(0.5);
        let mut own = state.clone();
        let mut mops = Vec::new();
        for _ in 0..rng.gen_range(1..=4) {
            let k = rng.gen_range(0..shape.keys as usize);
            if rng.gen_bool(0.5) {
                next += 1;
                own[k] = Some(next);
                mops.push(json!(["w", k, next]));
            } else {
                mops.push(json!(["r", k, own[k]]));
            }
        }
        if applied {
            state = own;
        }
        let at = 1000 * (i as u64 + shape.spread + 1);
        let (lo, hi) = (at - rng.gen_range(1..reach), at + rng.gen_range(1..reach));
        let invoked: Value = mops
            .iter()
            .map(|m| {
                if m[0] == "r" {
                    json!(["r", m[1], null])
                } else {
                    m.clone()
                }
            })
            .collect();
        spans.push((lo, hi, invoked, Value::Array(mops), info));
    }
    assemble(spans)
}

/// Marks failed the first committed txn one of whose writes a later
/// committed txn read; whether there was one.
fn fail_a_seen_write(ops: &mut [Op]) -> bool {
    let read = |op: &Op, k: &Value, v: &Value| {
        op.op_type == OpType::Ok
            && op
                .value
                .as_array()
                .is_some_and(|m| m.iter().any(|m| m[0] == "r" && &m[1] == k && &m[2] == v))
    };
    for i in 0..ops.len() {
        if ops[i].op_type != OpType::Ok {
            continue;
        }
        let writes: Vec<(Value, Value)> = ops[i]
            .value
            .as_array()
            .into_iter()
            .flatten()
            .filter(|m| m[0] == "w")
            .map(|m| (m[1].clone(), m[2].clone()))
            .collect();
        let seen = writes.iter().any(|(k, v)| {
            ops.iter()
                .enumerate()
                .any(|(j, op)| j != i && op.process != ops[i].process && read(op, k, v))
        });
        if seen {
            ops[i].op_type = OpType::Fail;
            return true;
        }
    }
    false
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn serial_executions_with_overlapping_intervals_are_strict_serializable(seed in any::<u64>(), n in 1usize..60) {
        let g = generate(seed, &small(n), Fault::None);
        let r = check_list_append(&g.ops, &TxnOptions::default()).unwrap();
        // As Elle: a history whose transactions form no edge at all (one
        // txn, say) has an empty transaction graph, and is unknown.
        let expected = match r.stats.edges {
            0 => Validity::Unknown,
            _ => Validity::Valid,
        };
        prop_assert_eq!(r.valid, expected, "{:#?}", r.anomalies);
        prop_assert!(r.anomalies.is_empty());
    }

    #[test]
    fn a_reordered_read_is_found(seed in any::<u64>(), n in 2usize..60) {
        let g = generate(seed, &small(n), Fault::ReorderRead);
        let r = check_list_append(&g.ops, &TxnOptions::default()).unwrap();
        if g.injected {
            prop_assert_eq!(r.valid, Validity::Invalid);
            prop_assert!(r.counts.contains_key("incompatible-order"), "{:?}", r.counts);
        }
    }

    #[test]
    fn an_append_dropped_after_it_was_seen_is_found(seed in any::<u64>(), n in 2usize..60) {
        let g = generate(seed, &small(n), Fault::DropSeenAppend);
        let r = check_list_append(&g.ops, &TxnOptions::default()).unwrap();
        if g.injected {
            prop_assert_eq!(r.valid, Validity::Invalid, "{:#?}", r);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn serial_register_executions_are_valid_even_assuming_linearizable_keys(seed in any::<u64>(), n in 1usize..60) {
        let ops = generate_register(seed, &small(n));
        for order in [RegisterOrder::Inferred, RegisterOrder::Process, RegisterOrder::Realtime] {
            let options = TxnOptions { register_order: order, ..TxnOptions::default() };
            let r = check_rw_register(&ops, &options).unwrap();
            // With no dependency inferred there is nothing to check: unknown.
            let expected = if r.stats.edges == 0 { Validity::Unknown } else { Validity::Valid };
            prop_assert_eq!(r.valid, expected, "{:?}: {:#?}", order, r.anomalies);
            prop_assert!(r.anomalies.is_empty());
        }
    }

    #[test]
    fn a_read_of_a_write_whose_txn_failed_is_found(seed in any::<u64>(), n in 2usize..60) {
        let mut ops = generate_register(seed, &small(n));
        if fail_a_seen_write(&mut ops) {
            let r = check_rw_register(&ops, &TxnOptions::default()).unwrap();
            prop_assert_eq!(r.valid, Validity::Invalid);
            prop_assert!(r.counts.contains_key("G1a"), "{:?}", r.counts);
        }
    }
}

#[test]
fn the_failed_write_fault_is_injected_in_a_typical_history() {
    let injected = (0..20)
        .filter(|&seed| fail_a_seen_write(&mut generate_register(seed, &small(40))))
        .count();
    assert!(injected >= 10, "injected in {injected} of 20 histories");
}

#[test]
fn elle_edn_rw_register_histories_import_and_check() {
    // Write skew: each txn read the other's key as nil and wrote its own.
    let edn = r#"[{:type :invoke, :f :txn, :value [[:r :x nil] [:w :y 1]], :process 0, :index 0}
{:type :invoke, :f :txn, :value [[:r :y nil] [:w :x 1]], :process 1, :index 1}
{:type :ok, :f :txn, :value [[:r :x nil] [:w :y 1]], :process 0, :index 2}
{:type :ok, :f :txn, :value [[:r :y nil] [:w :x 1]], :process 1, :index 3}]
"#;
    let dir = std::env::temp_dir().join(format!("txn-rw-edn-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("history.edn");
    std::fs::write(&path, edn).unwrap();
    let h = TxnHistory::read_file(&path, None, TxnWorkload::RwRegister).unwrap();
    let r = check(&h, &TxnOptions::default()).unwrap();
    assert_eq!(
        r.counts.keys().collect::<Vec<_>>(),
        vec!["G2-item"],
        "{r:#?}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn elle_edn_list_append_histories_import_and_check() {
    let edn = r#"{:type :invoke, :f :txn, :value [[:append :x 1] [:r :y nil]], :process 0, :index 0}
{:type :invoke, :f :txn, :value [[:append :y 1] [:r :x nil]], :process 1, :index 1}
{:type :ok, :f :txn, :value [[:append :x 1] [:r :y [1]]], :process 0, :index 2}
{:type :ok, :f :txn, :value [[:append :y 1] [:r :x [1]]], :process 1, :index 3}
"#;
    let dir = std::env::temp_dir().join(format!("txn-edn-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("history.edn");
    std::fs::write(&path, edn).unwrap();
    let ops = checker::import::read_history_file(&path, None).unwrap();
    let r = check_list_append(&ops, &TxnOptions::default()).unwrap();
    assert_eq!(r.counts.keys().collect::<Vec<_>>(), vec!["G1c"], "{r:#?}");
    std::fs::remove_dir_all(&dir).ok();
}

/// `cargo test --release -p checker --test txn -- --ignored --nocapture`
#[test]
#[ignore]
fn a_million_txns_over_ten_thousand_keys_check_in_under_five_seconds() {
    // TXN_BENCH_TXNS overrides the size, for quicker looks.
    let txns = std::env::var("TXN_BENCH_TXNS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_000_000);
    let shape = Shape {
        txns,
        keys: 10_000,
        spread: 10,
        info_percent: 1,
    };
    let started = Instant::now();
    let g = generate(1, &shape, Fault::None);
    let generated = started.elapsed();
    // TXN_BENCH_OUT=FILE also writes the history, to measure `faultline check`.
    if let Ok(out) = std::env::var("TXN_BENCH_OUT") {
        let mut writer = checker::history::HistoryWriter::new(std::io::BufWriter::new(
            std::fs::File::create(&out).unwrap(),
        ));
        for op in &g.ops {
            writer.append(&mut op.clone()).unwrap();
        }
    }
    let started = Instant::now();
    let h = TxnHistory::from_ops(&g.ops, TxnWorkload::ListAppend).unwrap();
    let converted = started.elapsed();
    drop(g.ops);
    let started = Instant::now();
    let r = check(&h, &TxnOptions::default()).unwrap();
    let took = started.elapsed();
    println!(
        "generated {} ops in {generated:?}, read them into txns in {converted:?}; checked {} txns ({} edges, {} keys) in {took:?}: {:.0} txns/s",
        h.ops(), r.stats.txns, r.stats.edges, r.stats.keys, r.stats.txns as f64 / took.as_secs_f64()
    );
    assert_eq!(r.valid, Validity::Valid, "{:?}", r.counts);
    if let Ok(out) = std::env::var("TXN_BENCH_OUT") {
        let started = Instant::now();
        let from_file =
            TxnHistory::read_file(std::path::Path::new(&out), None, TxnWorkload::ListAppend)
                .unwrap();
        println!("read {out} into txns in {:?}", started.elapsed());
        assert_eq!(from_file.ops(), h.ops());
    }
    assert!(took.as_secs_f64() < 5.0 * txns as f64 / 1e6);
}
