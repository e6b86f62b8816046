//! Shrinking a non-linearizable key to its core: the fewest ops that are
//! still not linearizable, found by delta debugging (Zeller's ddmin over
//! complements), each candidate re-checked by the search.
//!
//! # Why the core proves the whole history wrong
//! Dropping an arbitrary op can *create* a violation (drop the write a read
//! returned, and the read becomes impossible), so a sub-history that fails
//! proves nothing by itself. Only ops the model calls removable
//! ([`Model::removable`]) are ever dropped: those whose absence keeps any
//! linearizable history linearizable — a pure op (a read: take it out of
//! the linearization and every state stays the same), or a register write
//! whose value no op left observes (in a linearization, until the next
//! write, only writes can follow it, and they do not care what they
//! overwrite). Each step drops only ops removable with respect to what
//! stays, so by induction: if the full history were linearizable, so would
//! be the core. The core fails; so does the history.
//!
//! The shrink is bounded by a time limit and, per re-check, by a number of
//! configurations; a re-check that runs out counts as "not shown invalid",
//! so the core is always one the search proved non-linearizable.

use std::sync::atomic::{AtomicBool, AtomicUsize};
use std::time::{Duration, Instant};

use super::search::{search, Budget, Search, SearchOp};
use crate::model::Model;

/// The most configurations one re-check may explore: a few times what the
/// search of the whole key took (a sub-history is rarely harder), within
/// these bounds.
const RECHECK_CONFIGURATIONS: std::ops::RangeInclusive<u64> = 20_000..=2_000_000;
/// The memo cap of one re-check.
const RECHECK_MEMO_BYTES: usize = 256 << 20;

/// How a shrink is bounded.
pub(crate) struct ShrinkBudget<'a> {
    /// Stop dropping ops after this long.
    pub limit: Duration,
    /// Configurations the search of the whole key explored.
    pub explored: u64,
    /// The check's Ctrl-C flag.
    pub interrupt: Option<&'a AtomicBool>,
}

/// The indices into `ops` of a core of these non-linearizable ops, in
/// order; `None` when nothing could be dropped within the budget.
pub(crate) fn shrink<M: Model>(
    model: &M,
    ops: &[SearchOp<M::Op>],
    budget: &ShrinkBudget,
) -> Option<Vec<usize>> {
    let deadline = Instant::now() + budget.limit;
    let interrupt = budget.interrupt;
    let recheck = budget.explored.saturating_mul(4).clamp(
        *RECHECK_CONFIGURATIONS.start(),
        *RECHECK_CONFIGURATIONS.end(),
    );
    let mut keep: Vec<usize> = (0..ops.len()).collect();
    let mut parts = 2;
    while Instant::now() < deadline
        && !interrupt.is_some_and(|i| i.load(std::sync::atomic::Ordering::Relaxed))
    {
        let candidates = removable(model, ops, &keep);
        if candidates.is_empty() {
            break;
        }
        let size = candidates.len().div_ceil(parts);
        let mut dropped = false;
        for chunk in candidates.chunks(size) {
            if Instant::now() >= deadline {
                break;
            }
            let trial: Vec<usize> = keep
                .iter()
                .copied()
                .filter(|i| !chunk.contains(i))
                .collect();
            if fails(model, ops, &trial, recheck, interrupt) {
                keep = trial;
                dropped = true;
            }
        }
        if dropped {
            parts = (parts - 1).max(2);
        } else if size == 1 {
            break;
        } else {
            parts = (parts * 2).min(candidates.len());
        }
    }
    (keep.len() < ops.len()).then_some(keep)
}

/// The kept ops that may be dropped with every other kept op staying.
fn removable<M: Model>(model: &M, ops: &[SearchOp<M::Op>], keep: &[usize]) -> Vec<usize> {
    keep.iter()
        .copied()
        .filter(|&i| {
            let rest: Vec<&M::Op> = keep
                .iter()
                .filter(|&&j| j != i)
                .map(|&j| &ops[j].op)
                .collect();
            model.removable(&ops[i].op, &rest)
        })
        .collect()
}

/// Whether the search proves the ops at `keep` non-linearizable.
fn fails<M: Model>(
    model: &M,
    ops: &[SearchOp<M::Op>],
    keep: &[usize],
    max_explored: u64,
    interrupt: Option<&AtomicBool>,
) -> bool {
    let sub: Vec<SearchOp<M::Op>> = keep.iter().map(|&i| ops[i].clone()).collect();
    let stop = AtomicBool::new(false);
    let never = AtomicUsize::new(usize::MAX);
    let budget = Budget {
        stop: &stop,
        cutoff: &never,
        partition: 0,
        memo_bytes: RECHECK_MEMO_BYTES,
        max_explored,
        interrupt,
    };
    matches!(search(model, &sub, &budget).0, Search::Invalid(_))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::register::{Register, RegisterOp};
    use crate::model::NilRead;
    use serde_json::json;

    /// An `ok` call of `f` with `value` (only what `compile` reads matters).
    fn call<'a>(f: &'a str, value: &'a serde_json::Value) -> crate::pair::Call<'a> {
        crate::pair::Call {
            process: 0,
            f,
            key: None,
            value,
            outcome: crate::pair::Outcome::Ok,
            invoke_index: 0,
            complete_index: Some(1),
            invoke_time: None,
            complete_time: None,
        }
    }

    fn op(o: RegisterOp, call: usize, ret: usize) -> SearchOp<RegisterOp> {
        SearchOp {
            op: o,
            call_at: call,
            return_at: Some(ret),
        }
    }

    #[test]
    fn a_stale_read_among_many_shrinks_to_the_writes_it_needs() {
        let mut model = Register::new(&json!(0), false, NilRead::Value);
        // Intern values 1..=40 in order, so value id v is the number v.
        let ids: Vec<u32> = (0..=40)
            .map(
                |v| match model.compile(&call("write", &json!(v))).unwrap() {
                    Some(RegisterOp::Write(id)) => id,
                    other => panic!("{other:?}"),
                },
            )
            .collect();
        // Sequential: write v, read v for v in 1..=40, then a read of 5.
        let mut ops = Vec::new();
        let mut t = 0;
        for &id in &ids[1..] {
            ops.push(op(RegisterOp::Write(id), t, t + 1));
            ops.push(op(RegisterOp::Read(id), t + 2, t + 3));
            t += 4;
        }
        ops.push(op(RegisterOp::Read(ids[5]), t, t + 1));
        let budget = ShrinkBudget {
            limit: Duration::from_secs(5),
            explored: 0,
            interrupt: None,
        };
        let core = shrink(&model, &ops, &budget).expect("it shrinks");
        let kept: Vec<&RegisterOp> = core.iter().map(|&i| &ops[i].op).collect();
        // The write of 5, one later write (which makes 5 stale), and the read.
        assert_eq!(kept.len(), 3, "{kept:?}");
        assert_eq!(kept[0], &RegisterOp::Write(ids[5]));
        assert!(matches!(kept[1], RegisterOp::Write(_)));
        assert_eq!(kept[2], &RegisterOp::Read(ids[5]));
        assert!(
            fails(&model, &ops, &core, 1 << 20, None),
            "the core is not linearizable"
        );
    }

    /// A random sequential-ish register execution: `n` ops on 3 processes,
    /// each applied to a real register at a moment inside its interval, so
    /// the history is linearizable by construction.
    fn linearizable_history(
        model: &mut Register,
        seed: &[(u8, u8, u8)],
    ) -> Vec<SearchOp<RegisterOp>> {
        let mut state = 0u64;
        let mut ops = Vec::new();
        for (i, &(kind, value, width)) in seed.iter().enumerate() {
            let f = if kind % 3 == 0 { "read" } else { "write" };
            let v = if f == "read" {
                state
            } else {
                u64::from(value % 5) + 1
            };
            if f == "write" {
                state = v;
            }
            if let Some(op) = model.compile(&call(f, &json!(v))).unwrap() {
                // The op took effect at 10*i; its interval is around that.
                let w = usize::from(width % 4);
                ops.push(SearchOp {
                    op,
                    call_at: (10 * i).saturating_sub(w * 7),
                    return_at: Some(10 * i + 1 + w * 7),
                });
            }
        }
        ops
    }

    proptest::proptest! {
        /// The soundness lemma the core rests on: dropping, one after the
        /// other, ops removable with respect to what stays never makes a
        /// linearizable history non-linearizable.
        #[test]
        fn dropping_removable_ops_keeps_a_linearizable_history_linearizable(
            seed in proptest::collection::vec((0u8..255, 0u8..255, 0u8..255), 1..14),
            picks in proptest::collection::vec(0usize..1000, 0..14),
        ) {
            let mut model = Register::new(&json!(0), false, NilRead::Value);
            let ops = linearizable_history(&mut model, &seed);
            let all: Vec<usize> = (0..ops.len()).collect();
            proptest::prop_assert!(!fails(&model, &ops, &all, 1 << 20, None), "the generator is wrong");
            let mut keep = all;
            for pick in picks {
                let candidates = removable(&model, &ops, &keep);
                if candidates.is_empty() {
                    break;
                }
                let drop = candidates[pick % candidates.len()];
                keep.retain(|&i| i != drop);
                proptest::prop_assert!(
                    !fails(&model, &ops, &keep, 1 << 20, None),
                    "dropping op {} made {:?} non-linearizable", drop, keep
                );
            }
        }
    }
}
