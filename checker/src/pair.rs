//! Pairing invocations with their completions: the one place it is done.
//!
//! The rule, for every reader of a history: a process has at most one op
//! outstanding, so a process's next completion is its outstanding
//! invocation's. [`Pairer`] applies that rule event by event; everything
//! else here is built on it:
//! - [`pair`]: the strict pairing of the checkers, into [`Call`]s with
//!   intervals (errors on a history that does not pair up: [`PairError`]);
//! - [`Pairer::strict`]: one step of that strict pairing, for checkers that
//!   keep their own records (the set checker);
//! - [`pairs`]: the lenient pairing of statistics and reports, which never
//!   fails: an invocation superseded by its process's next one never
//!   completed, and a completion without an invocation is an orphan.
//!
//! A [`Call`] is one client operation with its interval in the history:
//! - `ok`: it happened, somewhere inside `[invoke, complete]`;
//! - `info`, or an invocation never completed: it may have happened anywhere
//!   after its invocation, or never ([`Outcome::Indeterminate`]);
//! - `fail`: it certainly did not happen, so it is dropped here.
//!
//! Nemesis events are not calls and are skipped (except by [`pairs`], which
//! pairs the nemesis's invocations too, as one more process).

use std::hash::Hash;

use rustc_hash::FxHashMap;

use serde_json::Value;

use crate::history::{Op, OpType, Process};

/// The pairing rule, one event at a time: each process's outstanding
/// invocation (see the module docs), as a number its caller chooses: the
/// invocation's history index, or its place in the caller's own list. `P`
/// identifies a process: `u64` for client ids, [`Process`] to pair the
/// nemesis too.
///
/// Processes with small ids (the usual case: Jepsen numbers its workers
/// from 0, and a crashed worker's successor adds the concurrency) live in a
/// table indexed by id, so the common step hashes nothing; others go to a
/// hash map.
#[derive(Clone, Debug)]
pub struct Pairer<P> {
    /// Per small id ([`Slot::slot`]): the outstanding invocation, or `NO_CALL`.
    dense: Vec<usize>,
    /// How many entries of `dense` hold an invocation.
    dense_len: usize,
    outstanding: FxHashMap<P, usize>,
}

/// Marks an empty entry of [`Pairer`]'s table.
const NO_CALL: usize = usize::MAX;

/// Process ids below this are kept in [`Pairer`]'s table.
const DENSE_IDS: usize = 1 << 12;

/// A process identity that may have a small index of its own.
pub trait Slot: Hash + Eq + Copy {
    /// Its index in a table of processes, when small enough for one.
    fn slot(self) -> Option<usize>;
}

impl Slot for u64 {
    #[inline]
    fn slot(self) -> Option<usize> {
        (self < DENSE_IDS as u64).then_some(self as usize)
    }
}

impl Slot for Process {
    #[inline]
    fn slot(self) -> Option<usize> {
        match self {
            Process::Client(id) if id + 1 < DENSE_IDS as u64 => Some(id as usize + 1),
            Process::Client(_) => None,
            Process::Nemesis => Some(0),
        }
    }
}

impl<P: Slot> Default for Pairer<P> {
    fn default() -> Self {
        Pairer {
            dense: Vec::new(),
            dense_len: 0,
            outstanding: FxHashMap::default(),
        }
    }
}

impl<P: Slot> Pairer<P> {
    /// No invocation outstanding.
    pub fn new() -> Self {
        Self::default()
    }

    /// `process` invokes (the invocation known as `index`); returns the
    /// invocation it had outstanding (which therefore never completes), if any.
    #[inline]
    pub fn invoke(&mut self, process: P, index: usize) -> Option<usize> {
        let Some(slot) = process.slot() else {
            return self.outstanding.insert(process, index);
        };
        if slot >= self.dense.len() {
            self.dense
                .resize((slot + 1).next_power_of_two().max(16), NO_CALL);
        }
        let before = std::mem::replace(&mut self.dense[slot], index);
        if before == NO_CALL {
            self.dense_len += 1;
            return None;
        }
        Some(before)
    }

    /// `process` completes; returns the invocation this completes, or `None`
    /// for a completion without one.
    #[inline]
    pub fn complete(&mut self, process: P) -> Option<usize> {
        let Some(slot) = process.slot() else {
            return self.outstanding.remove(&process);
        };
        let entry = self.dense.get_mut(slot)?;
        let before = std::mem::replace(entry, NO_CALL);
        if before == NO_CALL {
            return None;
        }
        self.dense_len -= 1;
        Some(before)
    }

    /// The invocation `process` has outstanding.
    #[inline]
    pub fn outstanding(&self, process: P) -> Option<usize> {
        match process.slot() {
            Some(slot) => self.dense.get(slot).copied().filter(|&i| i != NO_CALL),
            None => self.outstanding.get(&process).copied(),
        }
    }

    /// The invocations never completed, in ascending order.
    pub fn into_outstanding(self) -> Vec<usize> {
        let mut left: Vec<usize> = self.outstanding.into_values().collect();
        left.extend(self.dense.into_iter().filter(|&i| i != NO_CALL));
        left.sort_unstable();
        left
    }
}

/// One step of the strict pairing of a history of [`Op`]s.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// A nemesis event: not paired.
    Nemesis,
    /// An invocation of this client process, now outstanding.
    Invoked(u64),
    /// A completion of the invocation at this history index.
    Completed(usize),
}

impl Pairer<u64> {
    /// Pairs `history[index]` by the strict rules of the checkers: a second
    /// invocation while one is outstanding, a completion without an
    /// invocation, or one whose `f` differs from its invocation's, is an
    /// error naming the op.
    #[inline]
    pub fn strict(&mut self, history: &[Op], index: usize) -> Result<Step, PairError> {
        let op = &history[index];
        let Process::Client(process) = op.process else {
            return Ok(Step::Nemesis);
        };
        if op.op_type == OpType::Invoke {
            if let Some(outstanding) = self.outstanding(process) {
                return Err(PairError::ConcurrentInvoke {
                    index,
                    process,
                    f: op.f.clone(),
                    outstanding,
                });
            }
            self.invoke(process, index);
            return Ok(Step::Invoked(process));
        }
        let Some(invoke) = self.complete(process) else {
            return Err(PairError::CompletionWithoutInvoke {
                index,
                process,
                f: op.f.clone(),
            });
        };
        let invoked = &history[invoke].f;
        if *invoked != op.f {
            return Err(PairError::MismatchedCompletion {
                index,
                process,
                invoked: invoked.clone(),
                got: op.f.clone(),
            });
        }
        Ok(Step::Completed(invoke))
    }
}

/// An invocation and, if it completed, its completion (history indices),
/// from the lenient pairing [`pairs`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pair {
    /// History index of the invocation.
    pub invoke: usize,
    /// History index of its completion; `None` if it never completed.
    pub complete: Option<usize>,
}

/// The lenient pairing of a whole history (see the module docs).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Pairs {
    /// Every invocation (the nemesis's included), in history order, with its
    /// completion.
    pub pairs: Vec<Pair>,
    /// Completions without an invocation (a truncated history), in order.
    pub orphans: Vec<usize>,
}

/// Pairs every invocation of `history` with its completion, never failing:
/// an invocation its process supersedes never completed, and a completion
/// without an invocation is an orphan. Nemesis events pair among themselves.
pub fn pairs(history: &[Op]) -> Pairs {
    let mut pairer: Pairer<Process> = Pairer::new();
    let mut out = Pairs {
        pairs: Vec::with_capacity(history.len() / 2 + 1),
        orphans: Vec::new(),
    };
    for (index, op) in history.iter().enumerate() {
        if op.op_type == OpType::Invoke {
            // A superseded invocation keeps `complete: None`.
            pairer.invoke(op.process, out.pairs.len());
            out.pairs.push(Pair {
                invoke: index,
                complete: None,
            });
            continue;
        }
        match pairer.complete(op.process) {
            Some(slot) => out.pairs[slot].complete = Some(index),
            None => out.orphans.push(index),
        }
    }
    out
}

/// What we know about whether a call took effect.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// It took effect, within its interval.
    Ok,
    /// It may take effect at any point after its invocation, or never.
    Indeterminate,
}

/// A client operation with its interval; see the module docs. It borrows
/// its function, key and value from the history.
#[derive(Clone, Debug, PartialEq)]
pub struct Call<'a> {
    /// The client process.
    pub process: u64,
    /// The function (`read`, `write`, `cas`, ...).
    pub f: &'a str,
    /// The key, if the history is over independent keys.
    pub key: Option<&'a str>,
    /// The value: the completion's for `ok` calls, the invocation's otherwise.
    pub value: &'a Value,
    /// Whether it certainly happened.
    pub outcome: Outcome,
    /// Index in the history of the invocation.
    pub invoke_index: usize,
    /// Index in the history of the completion (`None` if never completed).
    pub complete_index: Option<usize>,
    /// Time of the invocation, when recorded.
    pub invoke_time: Option<u64>,
    /// Time of the completion, when recorded.
    pub complete_time: Option<u64>,
}

/// A history whose invocations and completions do not pair up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PairError {
    /// A completion with no outstanding invocation for its process.
    #[error("op {index}: process {process} completes {f:?} but has no outstanding invocation")]
    CompletionWithoutInvoke {
        /// History index of the completion.
        index: usize,
        /// Its process.
        process: u64,
        /// Its function.
        f: String,
    },
    /// An invocation while the process still has one outstanding.
    #[error(
        "op {index}: process {process} invokes {f:?} while its op {outstanding} is still outstanding"
    )]
    ConcurrentInvoke {
        /// History index of the second invocation.
        index: usize,
        /// Its process.
        process: u64,
        /// Its function.
        f: String,
        /// History index of the outstanding invocation.
        outstanding: usize,
    },
    /// A completion whose function differs from its invocation's.
    #[error("op {index}: process {process} completes {got:?} but invoked {invoked:?}")]
    MismatchedCompletion {
        /// History index of the completion.
        index: usize,
        /// Its process.
        process: u64,
        /// The invoked function.
        invoked: String,
        /// The completed function.
        got: String,
    },
}

impl PairError {
    /// The history index of the op at fault.
    pub fn index(&self) -> usize {
        match self {
            PairError::CompletionWithoutInvoke { index, .. }
            | PairError::ConcurrentInvoke { index, .. }
            | PairError::MismatchedCompletion { index, .. } => *index,
        }
    }
}

/// Pairs the client ops of `history` into calls, ordered by invocation.
/// `fail` calls are dropped; calls never completed are indeterminate.
pub fn pair(history: &[Op]) -> Result<Vec<Call<'_>>, PairError> {
    let mut calls: Vec<Call> = Vec::with_capacity(history.len() / 2 + 1);
    // The strict rules of [`Pairer::strict`], with each process's
    // outstanding call kept as its place in `calls`.
    let mut pairer: Pairer<u64> = Pairer::new();
    let mut failed = 0usize;
    for (index, op) in history.iter().enumerate() {
        let Process::Client(process) = op.process else {
            continue;
        };
        if op.op_type == OpType::Invoke {
            if let Some(slot) = pairer.invoke(process, calls.len()) {
                return Err(PairError::ConcurrentInvoke {
                    index,
                    process,
                    f: op.f.clone(),
                    outstanding: calls[slot].invoke_index,
                });
            }
            calls.push(Call {
                process,
                f: &op.f,
                key: op.key.as_deref(),
                value: &op.value,
                outcome: Outcome::Indeterminate,
                invoke_index: index,
                complete_index: None,
                invoke_time: op.time,
                complete_time: None,
            });
            continue;
        }
        let Some(slot) = pairer.complete(process) else {
            return Err(PairError::CompletionWithoutInvoke {
                index,
                process,
                f: op.f.clone(),
            });
        };
        let call = &mut calls[slot];
        if call.f != op.f {
            return Err(PairError::MismatchedCompletion {
                index,
                process,
                invoked: call.f.to_string(),
                got: op.f.clone(),
            });
        }
        failed += usize::from(complete(call, op, index));
    }
    if failed > 0 {
        calls.retain(|c| c.complete_index != Some(FAILED));
    }
    Ok(calls)
}

/// The `complete_index` of a call that failed, until [`pair`] drops it.
const FAILED: usize = usize::MAX;

/// Completes `call` with `op` (already checked by [`Pairer::strict`]);
/// returns whether it failed (then it is marked for dropping).
fn complete<'a>(call: &mut Call<'a>, op: &'a Op, index: usize) -> bool {
    call.complete_index = Some(index);
    call.complete_time = op.time;
    match op.op_type {
        OpType::Ok => {
            call.outcome = Outcome::Ok;
            call.value = &op.value;
            if call.key.is_none() {
                call.key = op.key.as_deref();
            }
            false
        }
        OpType::Fail => {
            call.complete_index = Some(FAILED);
            true
        }
        // An info completion tells us nothing about the value.
        OpType::Info | OpType::Invoke => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pairs_ok_drops_fail_and_keeps_info_and_unfinished_as_indeterminate() {
        let r = Op::invoke(0, "read", Value::Null);
        let w = Op::invoke(1, "write", json!(3));
        let c = Op::invoke(2, "cas", json!([1, 2]));
        let w2 = Op::invoke(3, "write", json!(5));
        let h = vec![
            r.clone(),
            w.clone(),
            c.clone(),
            w2.clone(),
            r.completed(OpType::Ok, json!(3)),
            w.completed(OpType::Info, Value::Null),
            c.completed(OpType::Fail, json!([1, 2])),
        ];
        let calls = pair(&h).unwrap();
        assert_eq!(calls.len(), 3);
        assert_eq!(*calls[0].value, json!(3));
        assert_eq!(calls[0].outcome, Outcome::Ok);
        assert_eq!(calls[1].outcome, Outcome::Indeterminate);
        assert_eq!(*calls[1].value, json!(3), "info keeps the invoked value");
        assert_eq!(calls[2].complete_index, None);
        assert_eq!(calls[2].outcome, Outcome::Indeterminate);
    }

    #[test]
    fn completion_without_invoke_is_an_error_naming_the_op() {
        let h = vec![Op::invoke(0, "read", Value::Null).completed(OpType::Ok, json!(1))];
        let err = pair(&h).unwrap_err();
        assert_eq!(
            err.to_string(),
            "op 0: process 0 completes \"read\" but has no outstanding invocation"
        );
    }

    #[test]
    fn two_outstanding_invokes_on_one_process_is_an_error() {
        let h = vec![
            Op::invoke(0, "read", Value::Null),
            Op::invoke(0, "write", json!(1)),
        ];
        assert!(matches!(
            pair(&h),
            Err(PairError::ConcurrentInvoke { index: 1, .. })
        ));
    }

    #[test]
    fn a_completion_of_another_function_is_an_error() {
        let h = vec![
            Op::invoke(0, "read", Value::Null),
            Op::invoke(0, "write", json!(1)).completed(OpType::Ok, json!(1)),
        ];
        assert!(matches!(
            pair(&h),
            Err(PairError::MismatchedCompletion { index: 1, .. })
        ));
    }

    #[test]
    fn lenient_pairs_keep_superseded_invocations_uncompleted_and_orphans_apart() {
        let h = vec![
            Op::invoke(0, "read", Value::Null),
            Op::invoke(0, "write", json!(1)),
            Op::invoke(1, "read", Value::Null).completed(OpType::Ok, json!(1)),
            Op::invoke(0, "write", json!(1)).completed(OpType::Info, Value::Null),
        ];
        let found = pairs(&h);
        assert_eq!(
            found.pairs,
            [
                Pair {
                    invoke: 0,
                    complete: None
                },
                Pair {
                    invoke: 1,
                    complete: Some(3)
                },
            ]
        );
        assert_eq!(found.orphans, [2]);
    }
}
