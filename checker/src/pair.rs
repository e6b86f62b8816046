//! Pairing invocations with their completions into operations.
//!
//! A [`Call`] is one client operation with its interval in the history:
//! - `ok`: it happened, somewhere inside `[invoke, complete]`;
//! - `info`, or an invocation never completed: it may have happened anywhere
//!   after its invocation, or never ([`Outcome::Indeterminate`]);
//! - `fail`: it certainly did not happen, so it is dropped here.
//!
//! Nemesis events are not calls and are skipped.

use rustc_hash::FxHashMap;

use serde_json::Value;

use crate::history::{Op, OpType, Process};

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

/// Pairs the client ops of `history` into calls, ordered by invocation.
/// `fail` calls are dropped; calls never completed are indeterminate.
pub fn pair(history: &[Op]) -> Result<Vec<Call<'_>>, PairError> {
    let mut calls: Vec<Option<Call>> = Vec::with_capacity(history.len() / 2 + 1);
    let mut outstanding: FxHashMap<u64, usize> = FxHashMap::default();
    for (index, op) in history.iter().enumerate() {
        let Process::Client(process) = op.process else {
            continue;
        };
        if op.op_type == OpType::Invoke {
            if let Some(&slot) = outstanding.get(&process) {
                let prior = calls[slot].as_ref().map_or(0, |c| c.invoke_index);
                return Err(PairError::ConcurrentInvoke {
                    index,
                    process,
                    f: op.f.clone(),
                    outstanding: prior,
                });
            }
            outstanding.insert(process, calls.len());
            calls.push(Some(Call {
                process,
                f: &op.f,
                key: op.key.as_deref(),
                value: &op.value,
                outcome: Outcome::Indeterminate,
                invoke_index: index,
                complete_index: None,
                invoke_time: op.time,
                complete_time: None,
            }));
            continue;
        }
        let Some(slot) = outstanding.remove(&process) else {
            return Err(PairError::CompletionWithoutInvoke {
                index,
                process,
                f: op.f.clone(),
            });
        };
        complete(&mut calls[slot], op, index, process)?;
    }
    Ok(calls.into_iter().flatten().collect())
}

fn complete<'a>(
    slot: &mut Option<Call<'a>>,
    op: &'a Op,
    index: usize,
    process: u64,
) -> Result<(), PairError> {
    let call = slot.as_mut().expect("outstanding slots hold calls");
    if call.f != op.f {
        return Err(PairError::MismatchedCompletion {
            index,
            process,
            invoked: call.f.to_string(),
            got: op.f.clone(),
        });
    }
    call.complete_index = Some(index);
    call.complete_time = op.time;
    match op.op_type {
        OpType::Ok => {
            call.outcome = Outcome::Ok;
            call.value = &op.value;
            if call.key.is_none() {
                call.key = op.key.as_deref();
            }
        }
        OpType::Fail => *slot = None,
        // An info completion tells us nothing about the value.
        OpType::Info | OpType::Invoke => {}
    }
    Ok(())
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
}
