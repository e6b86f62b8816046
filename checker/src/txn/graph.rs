//! The dependency graph: one node per txn (node index = txn number), data
//! edges from [`super::infer`], plus process and realtime orders as their
//! transitive reductions.
//!
//! Realtime (after Elle): sweep the history's events keeping a *frontier* of
//! committed txns none of which is known to precede another. A txn invoked
//! now follows each txn of the frontier (an edge each); when it completes it
//! replaces in the frontier every txn that was there at its invocation (they
//! precede it, so they now precede anything after it through it). The edges
//! per txn are bounded by the concurrency, never O(n²).

use std::collections::VecDeque;

use petgraph::graph::{DiGraph, NodeIndex};

use super::parse::{Status, Txn};
use super::{Dep, PROCESS, REALTIME};

/// The dependency graph.
pub(crate) type DepGraph = DiGraph<(), Dep, u32>;

/// Builds the graph. Failed txns are isolated nodes; info txns have no
/// outgoing process or realtime edges (they never completed).
pub(crate) fn build(txns: &[Txn], data: &[(u32, u32, Dep)]) -> DepGraph {
    let mut g = DepGraph::with_capacity(txns.len(), data.len() + 3 * txns.len());
    for _ in txns {
        g.add_node(());
    }
    let e = |g: &mut DepGraph, a: u32, b: u32, d: Dep| {
        g.add_edge(NodeIndex::new(a as usize), NodeIndex::new(b as usize), d);
    };
    for &(a, b, d) in data {
        e(&mut g, a, b, d);
    }
    let mut last_by_process: rustc_hash::FxHashMap<u64, u32> = Default::default();
    let mut events: Vec<(usize, u32, bool)> = Vec::with_capacity(2 * txns.len());
    for (t, txn) in txns.iter().enumerate() {
        if txn.status == Status::Fail {
            continue;
        }
        if let Some(p) = last_by_process.insert(txn.process, t as u32) {
            e(
                &mut g,
                p,
                t as u32,
                Dep {
                    kind: PROCESS,
                    key: 0,
                },
            );
        }
        events.push((txn.invoke, t as u32, true));
        if let (Status::Ok, Some(c)) = (txn.status, txn.complete) {
            events.push((c, t as u32, false));
        }
    }
    events.sort_unstable();
    // (txn, sequence number at which it joined the frontier)
    let mut frontier: VecDeque<(u32, usize)> = VecDeque::new();
    let mut invoked_at = vec![0usize; txns.len()];
    for (seq, &(_, t, invoke)) in events.iter().enumerate() {
        if invoke {
            invoked_at[t as usize] = seq;
            for &(f, _) in &frontier {
                e(
                    &mut g,
                    f,
                    t,
                    Dep {
                        kind: REALTIME,
                        key: 0,
                    },
                );
            }
        } else {
            while frontier
                .front()
                .is_some_and(|&(_, s)| s < invoked_at[t as usize])
            {
                frontier.pop_front();
            }
            frontier.push_back((t, seq));
        }
    }
    g
}
