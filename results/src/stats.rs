//! Statistics of a history: what was done, how it ended, how long it took.
//!
//! Decisions:
//! - An *op* is one invocation and its completion. Ops are counted by how
//!   they completed; an invocation never completed counts as `info` (its
//!   outcome is unknown, exactly as the checkers treat it). A completion with
//!   no invocation (a truncated history) still counts, by its own type.
//! - Invocations are paired with completions by [`checker::pair::pairs`]
//!   (by process: a process has at most one op outstanding, so its next
//!   completion is its op's). An op's `f` is its invocation's.
//! - Nemesis ops are counted apart (`nemesis_ops`), never in `ops`, `by_f`,
//!   latencies or throughput.
//! - Latency is completion `time` minus invocation `time`, over every
//!   completed client op (ok, fail and info completions) whose two events both
//!   carry a time. Quantiles use the nearest-rank method: `p` is the smallest
//!   latency with at least `p`% of the latencies at or below it.
//! - The run's duration is the span of the times in the history (earliest to
//!   latest, nemesis ops included; times may be out of order in imported
//!   histories). Throughput over a zero-length run is 0.

use std::collections::BTreeMap;

use checker::history::{Op, OpType};
use checker::pair::pairs;
use serde::{Deserialize, Serialize};

/// Statistics of a history; see the module docs for what each number means.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    /// Client ops by how they completed.
    pub ops: Counts,
    /// Client ops by function, then by how they completed.
    pub by_f: BTreeMap<String, Counts>,
    /// Latency quantiles per function, in milliseconds (functions with no
    /// timed completion are absent).
    pub latency_ms: BTreeMap<String, Latency>,
    /// Completed client ops per second.
    pub throughput: Throughput,
    /// Seconds from the earliest to the latest time in the history.
    pub duration_s: f64,
    /// Nemesis ops (fault actions), counted like client ops.
    pub nemesis_ops: usize,
}

/// Ops by how they completed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// They happened.
    pub ok: usize,
    /// They certainly did not happen.
    pub fail: usize,
    /// Unknown: an `info` completion, or never completed.
    pub info: usize,
}

impl Counts {
    /// All of them.
    pub fn total(&self) -> usize {
        self.ok + self.fail + self.info
    }

    fn count(&mut self, outcome: OpType) {
        match outcome {
            OpType::Ok => self.ok += 1,
            OpType::Fail => self.fail += 1,
            OpType::Info | OpType::Invoke => self.info += 1,
        }
    }
}

/// Latency quantiles of one function, in milliseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    /// How many latencies these are computed over.
    pub count: usize,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
    /// The slowest.
    pub max: f64,
}

/// Client throughput over the run's duration.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Throughput {
    /// `ok` completions per second.
    pub ok_per_s: f64,
    /// Completions of any type (ok, fail, info) per second.
    pub completed_per_s: f64,
}

/// Computes the statistics of `history`.
pub fn stats(history: &[Op]) -> Stats {
    let mut stats = Stats::default();
    let mut latencies_ns: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    let mut completions = 0usize;
    let paired = pairs(history);
    for pair in &paired.pairs {
        let invoke = &history[pair.invoke];
        let Some(completion) = pair.complete.map(|c| &history[c]) else {
            // Never completed (or superseded by its process's next invocation).
            stats.count(invoke, OpType::Info);
            continue;
        };
        stats.count(invoke, completion.op_type);
        if invoke.is_nemesis() {
            continue;
        }
        completions += 1;
        if let Some((start, end)) = invoke.time.zip(completion.time) {
            let latencies = latencies_ns.entry(invoke.f.clone()).or_default();
            latencies.push(end.saturating_sub(start));
        }
    }
    for &orphan in &paired.orphans {
        let op = &history[orphan];
        stats.count(op, op.op_type);
        completions += usize::from(!op.is_nemesis());
    }
    stats.latency_ms = latencies_ns
        .into_iter()
        .map(|(f, mut ns)| (f, latency(&mut ns)))
        .collect();
    stats.duration_s = duration_s(history);
    if stats.duration_s > 0.0 {
        stats.throughput = Throughput {
            ok_per_s: stats.ops.ok as f64 / stats.duration_s,
            completed_per_s: completions as f64 / stats.duration_s,
        };
    }
    stats
}

impl Stats {
    /// Counts `op` (an invocation, or a completion without one) as `outcome`.
    fn count(&mut self, op: &Op, outcome: OpType) {
        if op.is_nemesis() {
            self.nemesis_ops += 1;
            return;
        }
        self.ops.count(outcome);
        self.by_f.entry(op.f.clone()).or_default().count(outcome);
    }
}

/// The quantiles of `ns` (sorted here), in milliseconds; `ns` is not empty.
fn latency(ns: &mut [u64]) -> Latency {
    ns.sort_unstable();
    // Integer ranks: ceil(percent * n / 100), so no float rounding moves a rank.
    let rank = |percent: usize| {
        let at = (percent * ns.len()).div_ceil(100).clamp(1, ns.len());
        ns[at - 1] as f64 / 1e6
    };
    Latency {
        count: ns.len(),
        p50: rank(50),
        p90: rank(90),
        p95: rank(95),
        p99: rank(99),
        max: ns[ns.len() - 1] as f64 / 1e6,
    }
}

fn duration_s(history: &[Op]) -> f64 {
    let times = history.iter().filter_map(|op| op.time);
    match times.clone().min().zip(times.max()) {
        Some((first, last)) => (last - first) as f64 / 1e9,
        None => 0.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use checker::history::Process;
    use serde_json::json;

    const MS: u64 = 1_000_000;

    /// A history builder: `at(ms)` stamps the next events.
    #[derive(Default)]
    struct History(Vec<Op>);

    impl History {
        fn invoke(mut self, ms: u64, process: u64, f: &str) -> Self {
            let mut op = Op::invoke(process, f, json!(null));
            op.time = Some(ms * MS);
            op.index = self.0.len() as u64;
            self.0.push(op);
            self
        }

        fn complete(mut self, ms: u64, process: u64, outcome: OpType) -> Self {
            let invoke = self
                .0
                .iter()
                .rev()
                .find(|op| op.process == Process::Client(process))
                .expect("an invocation to complete");
            let mut op = invoke.completed(outcome, json!(null));
            op.time = Some(ms * MS);
            op.index = self.0.len() as u64;
            self.0.push(op);
            self
        }

        fn nemesis(mut self, ms: u64, op_type: OpType, f: &str) -> Self {
            let mut op = Op::invoke(0, f, json!(null));
            op.process = Process::Nemesis;
            op.op_type = op_type;
            op.time = Some(ms * MS);
            self.0.push(op);
            self
        }
    }

    #[test]
    fn quantiles_are_nearest_rank_over_completed_ops() {
        // Ten writes on one process, taking 1, 2, ..., 10 ms, back to back.
        let mut h = History::default();
        let mut now = 0;
        for latency in 1..=10 {
            h = h
                .invoke(now, 1, "write")
                .complete(now + latency, 1, OpType::Ok);
            now += latency;
        }
        let s = stats(&h.0);
        let w = s.latency_ms["write"];
        assert_eq!(w.count, 10);
        assert_eq!(
            (w.p50, w.p90, w.p95, w.p99, w.max),
            (5.0, 9.0, 10.0, 10.0, 10.0)
        );
        assert_eq!(
            s.ops,
            Counts {
                ok: 10,
                fail: 0,
                info: 0
            }
        );
        assert_eq!(s.duration_s, 0.055);
        assert!((s.throughput.ok_per_s - 10.0 / 0.055).abs() < 1e-9);
    }

    #[test]
    fn counts_by_type_and_f_with_dangling_invocations_as_info() {
        // Two processes, interleaved, plus a partition and its heal:
        //   p1 read ok (0→4 ms), p2 write fail (1→3), p1 write info (5→10),
        //   p3 cas invoked at 6 and never completed, p2 read ok (7→8).
        let h = History::default()
            .invoke(0, 1, "read")
            .invoke(1, 2, "write")
            .nemesis(2, OpType::Invoke, "partition")
            .complete(3, 2, OpType::Fail)
            .complete(4, 1, OpType::Ok)
            .nemesis(4, OpType::Info, "partition")
            .invoke(5, 1, "write")
            .invoke(6, 3, "cas")
            .invoke(7, 2, "read")
            .complete(8, 2, OpType::Ok)
            .nemesis(9, OpType::Invoke, "heal")
            .complete(10, 1, OpType::Info)
            .nemesis(12, OpType::Info, "heal");
        let s = stats(&h.0);
        assert_eq!(
            s.ops,
            Counts {
                ok: 2,
                fail: 1,
                info: 2
            }
        );
        assert_eq!(
            s.by_f["read"],
            Counts {
                ok: 2,
                fail: 0,
                info: 0
            }
        );
        assert_eq!(
            s.by_f["write"],
            Counts {
                ok: 0,
                fail: 1,
                info: 1
            }
        );
        assert_eq!(
            s.by_f["cas"],
            Counts {
                ok: 0,
                fail: 0,
                info: 1
            }
        );
        assert_eq!(s.nemesis_ops, 2);
        assert_eq!(s.latency_ms["read"].count, 2);
        assert_eq!(s.latency_ms["read"].max, 4.0);
        assert_eq!(s.latency_ms["read"].p50, 1.0);
        assert_eq!(s.latency_ms["write"].count, 2);
        assert_eq!(s.latency_ms["write"].max, 5.0);
        assert!(!s.latency_ms.contains_key("cas"));
        assert!(!s.latency_ms.contains_key("partition"));
        assert_eq!(s.duration_s, 0.012);
        assert!((s.throughput.completed_per_s - 4.0 / 0.012).abs() < 1e-9);
        assert!((s.throughput.ok_per_s - 2.0 / 0.012).abs() < 1e-9);
    }

    #[test]
    fn a_history_without_times_has_counts_but_no_latencies() {
        let inv = Op::invoke(1, "read", json!(null));
        let history = vec![inv.clone(), inv.completed(OpType::Ok, json!(3))];
        let s = stats(&history);
        assert_eq!(s.ops.total(), 1);
        assert!(s.latency_ms.is_empty());
        assert_eq!(s.duration_s, 0.0);
        assert_eq!(s.throughput, Throughput::default());
        assert_eq!(stats(&[]), Stats::default());
    }
}
