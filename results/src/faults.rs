//! Fault windows: when the nemesis had a fault in force, and which.
//!
//! A window runs from the completion (`info`) of a fault action
//! (`partition`, `kill`, `crash`, `pause`, `clock`, `slow`, `flaky`) to the
//! completion of its undo (`heal`; `start` for `kill`/`crash`; `resume`;
//! `reset`; `fast` for `slow`/`flaky`), as docs/DESIGN.md's history format says. The
//! verbs and their pairs are the nemesis crate's ([`Verb::undo`]); a
//! completion's value is read as the [`FaultOp`] applied, or, for a failed
//! action, shown as it was asked. An undo closes every open window of the
//! actions it undoes; a window still open when the history ends runs to its
//! end (`end_ns` is `None`). Nemesis ops of other verbs (imported histories)
//! open and close nothing.

use std::collections::{BTreeMap, BTreeSet};

use checker::history::{Op, OpType, Process};
use nemesis::{FaultOp, Grudge, Verb};
use serde_json::Value;

use crate::ops::compact;

/// One fault in force over an interval of the test.
#[derive(Clone, Debug, PartialEq)]
pub struct FaultWindow {
    /// The fault action: `partition`, `kill`, `crash`, ...
    pub fault: String,
    /// What it did, in words: `partition n1,n2 | n3`, `kill n2`, ...
    pub label: String,
    /// When it was applied, ns since the test started.
    pub start_ns: u64,
    /// When it was undone, if it was.
    pub end_ns: Option<u64>,
    /// History index of the action's completion.
    pub index: u64,
}

impl FaultWindow {
    /// Whether `time_ns` falls in the window (an open window never ends).
    pub fn contains(&self, time_ns: u64) -> bool {
        time_ns >= self.start_ns
            && match self.end_ns {
                Some(end) => time_ns <= end,
                None => true,
            }
    }
}

/// The undo of a fault action, or `None` if `f` is not a fault action.
pub fn undo_of(f: &str) -> Option<&'static str> {
    f.parse::<Verb>().ok()?.undo().map(Verb::name)
}

/// The fault windows of `history`, in the order they started.
pub fn fault_windows(history: &[Op]) -> Vec<FaultWindow> {
    let mut windows: Vec<FaultWindow> = Vec::new();
    // The windows still open, with the verb that undoes each.
    let mut open: Vec<(usize, Verb)> = Vec::new();
    let mut last_time = 0u64;
    for op in history {
        last_time = op.time.unwrap_or(last_time);
        if op.process != Process::Nemesis || op.op_type == OpType::Invoke {
            continue;
        }
        let Ok(verb) = op.f.parse::<Verb>() else {
            continue;
        };
        match verb.undo() {
            Some(_) if op.op_type == OpType::Fail => {}
            Some(undo) => {
                open.push((windows.len(), undo));
                windows.push(FaultWindow {
                    fault: verb.name().to_string(),
                    label: label(&op.f, &op.value),
                    start_ns: last_time,
                    end_ns: None,
                    index: op.index,
                });
            }
            None => open.retain(|&(at, undo)| {
                let undone = undo == verb;
                if undone {
                    windows[at].end_ns = Some(last_time);
                }
                !undone
            }),
        }
    }
    windows
}

/// A nemesis op's value in words: what was applied when `value` is the
/// [`FaultOp`] `fault` records, else the value as it is (a failed action's
/// request).
pub fn label(fault: &str, value: &Value) -> String {
    let what = match FaultOp::from_history(fault, value) {
        Ok(op) => applied_label(&op, value),
        Err(_) => value_label(value),
    };
    if what.is_empty() {
        fault.to_string()
    } else {
        format!("{fault} {what}")
    }
}

/// An applied op in words (`value` is its recorded form).
fn applied_label(op: &FaultOp, value: &Value) -> String {
    match op {
        FaultOp::Partition(grudge) => partition_label(grudge),
        FaultOp::Kill(nodes)
        | FaultOp::Start(nodes)
        | FaultOp::Pause(nodes)
        | FaultOp::Resume(nodes)
        | FaultOp::Crash(nodes) => nodes.join(","),
        // No sign on positive offsets: the labels have always read so.
        FaultOp::Clock { offsets_ms } => offsets_ms
            .iter()
            .map(|(node, ms)| format!("{node} {ms}ms"))
            .collect::<Vec<_>>()
            .join(", "),
        FaultOp::Flaky { links, loss } => {
            format!("{:.0}% loss on {} links", loss * 100.0, links.len())
        }
        FaultOp::Slow { .. } | FaultOp::Heal | FaultOp::ResetClock | FaultOp::Fast => {
            compact(value)
        }
    }
}

/// A value that is no applied op: a list of nodes, or the value as text.
fn value_label(value: &Value) -> String {
    match value {
        Value::Array(nodes) if nodes.iter().all(Value::is_string) => nodes
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(","),
        _ => compact(value),
    }
}

/// A grudge (node → nodes whose traffic it drops) as its sides, `n1,n2 | n3`,
/// when the nodes that still talk form groups; else the cut links.
fn partition_label(grudge: &Grudge) -> String {
    let mut nodes: BTreeSet<&str> = grudge.keys().map(String::as_str).collect();
    let mut cut: BTreeSet<(&str, &str)> = BTreeSet::new();
    for (node, dropped) in grudge {
        for other in dropped.iter().map(String::as_str) {
            nodes.insert(other);
            let pair = if node.as_str() < other {
                (node.as_str(), other)
            } else {
                (other, node.as_str())
            };
            cut.insert(pair);
        }
    }
    // Groups: the connected components of the "still talks" graph.
    let mut group_of: BTreeMap<&str, usize> = BTreeMap::new();
    let mut groups: Vec<Vec<&str>> = Vec::new();
    for &start in &nodes {
        if group_of.contains_key(start) {
            continue;
        }
        let id = groups.len();
        let mut members = vec![start];
        group_of.insert(start, id);
        let mut next = 0;
        while next < members.len() {
            let a = members[next];
            next += 1;
            for &b in &nodes {
                let pair = if a < b { (a, b) } else { (b, a) };
                if a != b && !cut.contains(&pair) && !group_of.contains_key(b) {
                    group_of.insert(b, id);
                    members.push(b);
                }
            }
        }
        members.sort_unstable();
        groups.push(members);
    }
    // Clean sides: no cut link inside a group, every cross-group link cut.
    let clean = groups.len() > 1
        && cut.iter().all(|(a, b)| group_of[a] != group_of[b])
        && groups.iter().map(Vec::len).sum::<usize>() == nodes.len()
        && cut.len() == cross_pairs(&groups);
    if clean {
        groups
            .iter()
            .map(|g| g.join(","))
            .collect::<Vec<_>>()
            .join(" | ")
    } else {
        let links: Vec<String> = cut.iter().map(|(a, b)| format!("{a}×{b}")).collect();
        format!("cut {}", links.join(" "))
    }
}

fn cross_pairs(groups: &[Vec<&str>]) -> usize {
    let total: usize = groups.iter().map(Vec::len).sum();
    let within: usize = groups
        .iter()
        .map(|g| g.len() * g.len().saturating_sub(1) / 2)
        .sum();
    total * total.saturating_sub(1) / 2 - within
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn nemesis(index: u64, time: u64, f: &str, value: Value) -> Op {
        Op {
            index,
            time: Some(time),
            process: Process::Nemesis,
            op_type: OpType::Info,
            f: f.into(),
            key: None,
            value,
            node: None,
            error: None,
        }
    }

    #[test]
    fn a_window_runs_from_the_fault_to_its_undo() {
        let history = vec![
            nemesis(
                0,
                10,
                "partition",
                json!({"n1":["n3"],"n2":["n3"],"n3":["n1","n2"]}),
            ),
            nemesis(1, 20, "kill", json!(["n2"])),
            nemesis(2, 30, "heal", json!(null)),
            nemesis(3, 40, "clock", json!({"offsets_ms": {"n4": -3978}})),
        ];
        let windows = fault_windows(&history);
        assert_eq!(windows.len(), 3);
        assert_eq!(windows[0].label, "partition n1,n2 | n3");
        assert_eq!(windows[0].end_ns, Some(30));
        assert_eq!(windows[1].label, "kill n2");
        assert_eq!(windows[1].end_ns, None);
        assert_eq!(windows[2].label, "clock n4 -3978ms");
        assert!(windows[1].contains(1_000));
    }

    #[test]
    fn a_partition_without_clean_sides_is_labelled_by_its_cut_links() {
        let sides = json!({"n1":["n3","n4"],"n3":["n1","n5"],"n4":["n1","n5"],"n5":["n3","n4"]});
        assert_eq!(label("partition", &sides), "partition n1,n5 | n3,n4");
        let bridge = json!({"n1":["n2"],"n2":["n1"],"n3":[]});
        assert_eq!(label("partition", &bridge), "partition cut n1×n2");
    }

    /// Labels of every kind of recorded op, pinned before the windows were
    /// read through the nemesis crate's types.
    #[test]
    fn every_recorded_op_has_this_label() {
        let links = json!([["n1", "n2"], ["n2", "n1"]]);
        let cases = [
            ("heal", json!(null), "heal"),
            ("kill", json!(["n1", "n3"]), "kill n1,n3"),
            ("start", json!([]), "start"),
            ("pause", json!(["n2"]), "pause n2"),
            ("resume", json!(["n2"]), "resume n2"),
            ("crash", json!(["n3"]), "crash n3"),
            (
                "clock",
                json!({"offsets_ms": {"n1": 250, "n2": -3}}),
                "clock n1 250ms, n2 -3ms",
            ),
            ("reset", json!(null), "reset"),
            (
                "slow",
                json!({"delay_ms": 50, "jitter_ms": 25, "links": links}),
                "slow {\"delay_ms\":50,\"jitter_ms\":25,\"links\":[…",
            ),
            (
                "flaky",
                json!({"links": links, "loss": 0.3}),
                "flaky 30% loss on 2 links",
            ),
            ("fast", json!(null), "fast"),
            ("kill", json!("random"), "kill random"),
            (
                "partition",
                json!("partition-ring"),
                "partition partition-ring",
            ),
            (
                "start-partition",
                json!("majority"),
                "start-partition majority",
            ),
        ];
        for (f, value, expected) in cases {
            assert_eq!(label(f, &value), expected, "{f} {value}");
        }
    }

    #[test]
    fn a_failed_fault_opens_a_window_and_unknown_nemesis_ops_change_nothing() {
        let mut failed = nemesis(0, 10, "kill", json!("random"));
        failed.error = Some(json!("this database cannot kill nodes"));
        let history = vec![
            failed,
            nemesis(1, 15, "start-partition", json!("majority")),
            nemesis(2, 20, "stop-partition", json!(null)),
            nemesis(3, 30, "start", json!([])),
        ];
        let windows = fault_windows(&history);
        assert_eq!(windows.len(), 1);
        assert_eq!(windows[0].label, "kill random");
        assert_eq!(windows[0].end_ns, Some(30));
    }
}
