//! Client ops as intervals: each invocation paired with its completion.
//!
//! Decisions:
//! - Pairing is [`checker::pair::pairs`], as in [`mod@crate::stats`]: a
//!   process has at most one op outstanding, so its next completion is its
//!   op's.
//! - An invocation never completed is an `info` op with no completion time:
//!   its outcome is unknown, as the checkers treat it.
//! - Nemesis ops are not client ops; they become fault windows
//!   ([`crate::faults`]).

use std::collections::HashMap;

use checker::history::{Op, OpType, Process};
use checker::pair::{pairs, Pair};
use serde_json::Value;

/// One client op: an invocation and its completion.
#[derive(Clone, Debug, PartialEq)]
pub struct ClientOp {
    /// History index of the invocation.
    pub index: u64,
    /// History index of the completion, if it completed.
    pub complete_index: Option<u64>,
    /// The client process.
    pub process: u64,
    /// The function of the invocation.
    pub f: String,
    /// The key, when the history is over keys.
    pub key: Option<String>,
    /// `Ok`, `Fail` or `Info` (never completed counts as `Info`).
    pub outcome: OpType,
    /// Invocation time, ns since the test started.
    pub invoke_ns: u64,
    /// Completion time, ns since the test started, if it completed.
    pub complete_ns: Option<u64>,
    /// The invocation's value.
    pub invoke_value: Value,
    /// The completion's value (the invocation's if it never completed).
    pub value: Value,
    /// The node that answered, when known.
    pub node: Option<String>,
}

impl ClientOp {
    /// Completion minus invocation time, in ns, when it completed.
    pub fn latency_ns(&self) -> Option<u64> {
        self.complete_ns.map(|c| c.saturating_sub(self.invoke_ns))
    }

    /// A short text: `write 3`, `read → [1,2]`, `cas [1,2]`.
    pub fn describe(&self) -> String {
        let (asked, got) = (compact(&self.invoke_value), compact(&self.value));
        match (asked.is_empty(), got.is_empty()) {
            _ if asked == got && !asked.is_empty() => format!("{} {asked}", self.f),
            (true, true) => self.f.clone(),
            (true, false) => format!("{} → {got}", self.f),
            (false, true) => format!("{} {asked}", self.f),
            (false, false) if self.outcome != OpType::Ok => format!("{} {asked}", self.f),
            (false, false) => format!("{} {asked} → {got}", self.f),
        }
    }
}

/// A JSON value in at most 40 characters (`null` is empty).
pub fn compact(value: &Value) -> String {
    let text = match value {
        Value::Null => return String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    if text.chars().count() > 40 {
        let cut: String = text.chars().take(39).collect();
        format!("{cut}…")
    } else {
        text
    }
}

/// The client ops of `history`, in invocation order. Ops without times get
/// the time of the last timed event before them (or 0).
pub fn client_ops(history: &[Op]) -> Vec<ClientOp> {
    // The time of each event: its own, or the last one recorded before it.
    let mut last_time = 0u64;
    let times: Vec<u64> = history
        .iter()
        .map(|event| {
            last_time = event.time.unwrap_or(last_time);
            last_time
        })
        .collect();
    pairs(history)
        .pairs
        .into_iter()
        .filter(|pair| !history[pair.invoke].is_nemesis())
        .map(|pair| client_op(history, &times, pair))
        .collect()
}

fn client_op(history: &[Op], times: &[u64], pair: Pair) -> ClientOp {
    let invocation = &history[pair.invoke];
    let Process::Client(process) = invocation.process else {
        unreachable!("nemesis ops are filtered out")
    };
    let invoke_ns = times[pair.invoke];
    let mut op = ClientOp {
        index: invocation.index,
        complete_index: None,
        process,
        f: invocation.f.clone(),
        key: invocation.key.clone(),
        outcome: OpType::Info,
        invoke_ns,
        complete_ns: None,
        invoke_value: invocation.value.clone(),
        value: invocation.value.clone(),
        node: None,
    };
    if let Some(c) = pair.complete {
        let completion = &history[c];
        op.complete_index = Some(completion.index);
        op.outcome = completion.op_type;
        op.complete_ns = Some(times[c].max(invoke_ns));
        op.value = completion.value.clone();
        op.node = completion.node.clone();
    }
    op
}

/// Finds client ops by the history index of their invocation or completion.
pub struct OpIndex<'a> {
    ops: &'a [ClientOp],
    by_completion: HashMap<u64, usize>,
}

impl<'a> OpIndex<'a> {
    /// Over `ops` (in invocation order, as [`crate::ops::client_ops`] gives them).
    pub fn new(ops: &'a [ClientOp]) -> OpIndex<'a> {
        let by_completion = ops
            .iter()
            .enumerate()
            .filter_map(|(at, op)| Some((op.complete_index?, at)))
            .collect();
        OpIndex { ops, by_completion }
    }

    /// The op invoked or completed at history index `index`.
    pub fn get(&self, index: u64) -> Option<&'a ClientOp> {
        let at = self.ops.partition_point(|op| op.index < index);
        match self.ops.get(at) {
            Some(op) if op.index == index => Some(op),
            _ => self.by_completion.get(&index).map(|&at| &self.ops[at]),
        }
    }
}

/// The latest time in `history` (0 when it has none).
pub fn end_ns(history: &[Op]) -> u64 {
    history.iter().filter_map(|op| op.time).max().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pairs_invocations_with_completions_by_process() {
        let w = Op::invoke(1, "write", json!(3));
        let r = Op::invoke(2, "read", json!(null));
        let mut history = vec![
            w.clone(),
            r.clone(),
            r.completed(OpType::Ok, json!(3)),
            w.completed(OpType::Info, json!(3)),
            Op::invoke(3, "read", json!(null)),
        ];
        for (i, op) in history.iter_mut().enumerate() {
            op.index = i as u64;
            op.time = Some(i as u64 * 10);
        }
        let ops = client_ops(&history);
        assert_eq!(ops.len(), 3);
        assert_eq!(ops[0].outcome, OpType::Info);
        assert_eq!(ops[0].complete_index, Some(3));
        assert_eq!(ops[1].latency_ns(), Some(10));
        assert_eq!(ops[1].describe(), "read → 3");
        assert_eq!(ops[2].complete_ns, None);
        assert_eq!(end_ns(&history), 40);
    }
}
