//! The list-append checker against a brute-force oracle, on small random
//! histories.
//!
//! - a serializable execution (random txns applied in a random serial
//!   order, each with an interval around its point in that order) is never
//!   flagged, even as strict serializable;
//! - with one read swapped for a stale version (a strict prefix of what it
//!   read), the checker never calls it non-serializable when some serial
//!   order explains every read (soundness), and calls it so in at least 95%
//!   of the cases where none does (brute force over all serial orders).

use checker::history::{Op, OpType};
use checker::txn::{check_list_append, TxnOptions};
use checker::Validity;
use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

/// One micro-op: append `elem` to `key`, or read `key` (the list it saw).
#[derive(Clone, Debug)]
enum Mop {
    Append(usize, i64),
    Read(usize, Vec<i64>),
}

/// Random txns over `keys` keys, applied in a random serial order; returns
/// the txns in that order, reads filled in.
fn serial(rng: &mut StdRng, txns: usize, keys: usize) -> Vec<Vec<Mop>> {
    let mut state = vec![Vec::new(); keys];
    let mut next = 0;
    (0..txns)
        .map(|_| {
            (0..rng.gen_range(1..=3))
                .map(|_| {
                    let k = rng.gen_range(0..keys);
                    if rng.gen_bool(0.5) {
                        next += 1;
                        state[k].push(next);
                        Mop::Append(k, next)
                    } else {
                        Mop::Read(k, state[k].clone())
                    }
                })
                .collect()
        })
        .collect()
}

/// Whether some serial order of `txns` reproduces every read.
fn serializable(txns: &[Vec<Mop>], keys: usize) -> bool {
    fn search(txns: &[Vec<Mop>], used: &mut Vec<bool>, state: &mut Vec<Vec<i64>>) -> bool {
        if used.iter().all(|&u| u) {
            return true;
        }
        for t in 0..txns.len() {
            if used[t] {
                continue;
            }
            let saved = state.clone();
            let fits = txns[t].iter().all(|m| match m {
                Mop::Append(k, e) => {
                    state[*k].push(*e);
                    true
                }
                Mop::Read(k, l) => state[*k] == *l,
            });
            used[t] = true;
            if fits && search(txns, used, state) {
                return true;
            }
            used[t] = false;
            *state = saved;
        }
        false
    }
    search(
        txns,
        &mut vec![false; txns.len()],
        &mut vec![Vec::new(); keys],
    )
}

/// The history: txn i (in serial order) on process i, its interval around
/// time 10·i reaching up to 25 either side, so intervals overlap but never
/// contradict the serial order.
fn history(rng: &mut StdRng, txns: &[Vec<Mop>]) -> Vec<Op> {
    let mut events: Vec<(u64, bool, Op)> = Vec::new();
    for (i, txn) in txns.iter().enumerate() {
        let value = |complete: bool| -> Value {
            txn.iter()
                .map(|m| match m {
                    Mop::Append(k, e) => json!(["append", k, e]),
                    Mop::Read(k, l) if complete => json!(["r", k, l]),
                    Mop::Read(k, _) => json!(["r", k, null]),
                })
                .collect()
        };
        let at = 100 + 10 * i as u64;
        let inv = Op::invoke(i as u64, "txn", value(false));
        let done = inv.completed(OpType::Ok, value(true));
        events.push((at - rng.gen_range(0..25), true, inv));
        events.push((at + rng.gen_range(1..25), false, done));
    }
    events.sort_by_key(|e| (e.0, !e.1));
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

/// Replaces one non-empty read with a strict prefix of it; whether it could.
fn make_one_read_stale(rng: &mut StdRng, txns: &mut [Vec<Mop>]) -> bool {
    let reads: Vec<(usize, usize)> = txns
        .iter()
        .enumerate()
        .flat_map(|(t, txn)| {
            txn.iter()
                .enumerate()
                .filter(|(_, m)| matches!(m, Mop::Read(_, l) if !l.is_empty()))
                .map(move |(i, _)| (t, i))
        })
        .collect();
    if reads.is_empty() {
        return false;
    }
    let (t, i) = reads[rng.gen_range(0..reads.len())];
    if let Mop::Read(_, l) = &mut txns[t][i] {
        let keep = rng.gen_range(0..l.len());
        l.truncate(keep);
    }
    true
}

fn verdict(ops: &[Op], model: &str) -> Validity {
    let options = TxnOptions {
        consistency_models: vec![model.to_string()],
        ..TxnOptions::default()
    };
    check_list_append(ops, &options).unwrap().valid
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn a_serial_execution_is_never_flagged(seed in any::<u64>(), n in 1usize..7, keys in 1usize..4) {
        let mut rng = StdRng::seed_from_u64(seed);
        let txns = serial(&mut rng, n, keys);
        let ops = history(&mut rng, &txns);
        // Never invalid; unknown only when no dependency could be inferred.
        let options = TxnOptions {
            consistency_models: vec!["strict-serializable".to_string()],
            ..TxnOptions::default()
        };
        let r = check_list_append(&ops, &options).unwrap();
        let expected = if r.stats.edges == 0 { Validity::Unknown } else { Validity::Valid };
        prop_assert_eq!(r.valid, expected, "{:#?}", r.anomalies);
    }
}

#[test]
fn a_stale_read_is_flagged_whenever_brute_force_finds_no_serial_order() {
    let (mut not_serializable, mut flagged, mut false_alarms) = (0, 0, Vec::new());
    for seed in 0..600u64 {
        let mut rng = StdRng::seed_from_u64(seed);
        let keys = rng.gen_range(1..4);
        let n = rng.gen_range(2..6);
        let mut txns = serial(&mut rng, n, keys);
        if !make_one_read_stale(&mut rng, &mut txns) {
            continue;
        }
        let ops = history(&mut rng, &txns);
        let invalid = verdict(&ops, "serializable") == Validity::Invalid;
        if serializable(&txns, keys) {
            if invalid {
                false_alarms.push(seed);
            }
        } else {
            not_serializable += 1;
            flagged += usize::from(invalid);
        }
    }
    println!("flagged {flagged} of {not_serializable} non-serializable histories");
    assert!(
        false_alarms.is_empty(),
        "flagged serializable histories: seeds {false_alarms:?}"
    );
    assert!(
        not_serializable >= 200,
        "only {not_serializable} non-serializable cases"
    );
    assert!(
        flagged * 100 >= 95 * not_serializable,
        "flagged only {flagged} of {not_serializable}"
    );
}
