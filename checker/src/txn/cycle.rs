//! Cycle search: strongly connected components of the graph restricted to
//! each anomaly class's edge kinds, then in each component a shortest cycle
//! of that class through one of its edges.
//!
//! A class is a set of allowed edge kinds, the kind of the edge the search
//! starts from, and a rule the cycle must satisfy (at least one wr, exactly
//! one rw, two or more rw, at least one process/realtime edge). From a start
//! edge `u → v` a breadth-first search over (txn, state) pairs, where the
//! state counts the kinds seen so far, finds the shortest path back to `u`
//! whose state the class accepts: the shortest such cycle through that edge.
//!
//! SCCs use petgraph's Kosaraju, which is iterative: its `tarjan_scc` is
//! recursive and a realtime chain of a million txns would overflow the stack.

use std::collections::VecDeque;
use std::time::Instant;

use petgraph::algo::kosaraju_scc;
use petgraph::graph::{EdgeIndex, NodeIndex};
use petgraph::visit::{EdgeFiltered, EdgeRef};
use rustc_hash::FxHashMap;

use super::graph::DepGraph;
use super::{Dep, PROCESS, REALTIME, RW, WR, WW};

/// What a cycle of a class must contain, beyond its allowed kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RwRule {
    /// No rw edges allowed (not in the mask); at least one wr if `need_wr`.
    NoRw { need_wr: bool },
    /// Exactly one rw edge.
    One,
    /// Two or more rw edges.
    TwoOrMore,
}

/// An anomaly class for the cycle search.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Class {
    pub name: &'static str,
    pub mask: u8,
    pub start: u8,
    pub rule: RwRule,
    /// A kind the cycle must contain besides the rule (`PROCESS`, `REALTIME`), or 0.
    pub need: u8,
}

/// Every cycle class: G0, G1c, G-single, G2-item and their -process and
/// -realtime variants (a -realtime cycle may also use process edges).
pub(crate) fn classes() -> Vec<Class> {
    let base = [
        ("G0", WW, WW, RwRule::NoRw { need_wr: false }),
        ("G1c", WW | WR, WR, RwRule::NoRw { need_wr: true }),
        ("G-single", WW | WR | RW, RW, RwRule::One),
        ("G2-item", WW | WR | RW, RW, RwRule::TwoOrMore),
    ];
    let names = [
        ["G0", "G0-process", "G0-realtime"],
        ["G1c", "G1c-process", "G1c-realtime"],
        ["G-single", "G-single-process", "G-single-realtime"],
        ["G2-item", "G2-item-process", "G2-item-realtime"],
    ];
    let mut out = Vec::new();
    for ((_, mask, start, rule), names) in base.into_iter().zip(names) {
        out.push(Class {
            name: names[0],
            mask,
            start,
            rule,
            need: 0,
        });
        out.push(Class {
            name: names[1],
            mask: mask | PROCESS,
            start: PROCESS,
            rule,
            need: PROCESS,
        });
        out.push(Class {
            name: names[2],
            mask: mask | PROCESS | REALTIME,
            start: REALTIME,
            rule,
            need: REALTIME,
        });
    }
    out
}

// State bits: rw count (0..=2) in bits 0-1, then wr, process, realtime seen.
fn step(state: u8, kind: u8) -> u8 {
    let rw = (state & 3) + u8::from(kind == RW && state & 3 < 2);
    let flags = state & !3;
    let flag = match kind {
        WR => 4,
        PROCESS => 8,
        REALTIME => 16,
        _ => 0,
    };
    flags | flag | rw
}

impl Class {
    fn pruned(&self, state: u8) -> bool {
        self.rule == RwRule::One && state & 3 > 1
    }
    fn accepts(&self, state: u8) -> bool {
        let rw = state & 3;
        let rule = match self.rule {
            RwRule::NoRw { need_wr } => !need_wr || state & 4 != 0,
            RwRule::One => rw == 1,
            RwRule::TwoOrMore => rw >= 2,
        };
        let need = match self.need {
            PROCESS => state & 8 != 0,
            REALTIME => state & 16 != 0,
            _ => true,
        };
        rule && need
    }
}

/// A cycle: (from, to, dependency) in cycle order.
pub(crate) type Cycle = Vec<(u32, u32, Dep)>;

/// The deadline passed.
#[derive(Debug)]
struct OutOfTime;

/// What the search found for one class.
#[derive(Default, Debug)]
pub(crate) struct ClassOutcome {
    /// One cycle per SCC where one was found: (from, to, dep) in cycle order.
    pub cycles: Vec<Cycle>,
    /// Sizes of the SCCs the search could not finish before the deadline.
    pub unfinished: Vec<usize>,
}

/// Sizes (descending) of the non-trivial SCCs of the graph over `mask`.
pub(crate) fn sccs(g: &DepGraph, mask: u8) -> Vec<Vec<NodeIndex<u32>>> {
    let filtered = EdgeFiltered::from_fn(g, |e| e.weight().kind & mask != 0);
    let mut c: Vec<_> = kosaraju_scc(&filtered)
        .into_iter()
        .filter(|c| c.len() > 1)
        .collect();
    c.sort_by_key(|c| std::cmp::Reverse(c.len()));
    c
}

/// Searches `class` in every non-trivial SCC of its edge kinds.
pub(crate) fn search(g: &DepGraph, class: &Class, deadline: Option<Instant>) -> ClassOutcome {
    let mut out = ClassOutcome::default();
    let components = sccs(g, class.mask);
    let mut comp = vec![u32::MAX; g.node_count()];
    for (i, c) in components.iter().enumerate() {
        for n in c {
            comp[n.index()] = i as u32;
        }
    }
    for (i, c) in components.iter().enumerate() {
        if deadline.is_some_and(|d| Instant::now() > d) {
            out.unfinished.push(c.len());
            continue;
        }
        match in_component(g, class, c, &comp, i as u32, deadline) {
            Ok(Some(cycle)) => out.cycles.push(cycle),
            Ok(None) => {}
            Err(OutOfTime) => out.unfinished.push(c.len()),
        }
    }
    out
}

/// Tries each start edge of the component; `Err` when the deadline passed.
fn in_component(
    g: &DepGraph,
    class: &Class,
    nodes: &[NodeIndex<u32>],
    comp: &[u32],
    id: u32,
    deadline: Option<Instant>,
) -> Result<Option<Cycle>, OutOfTime> {
    for &u in nodes {
        for e in g.edges(u) {
            if e.weight().kind != class.start || comp[e.target().index()] != id {
                continue;
            }
            if let Some(c) = bfs(g, class, e.id(), comp, id, deadline)? {
                return Ok(Some(c));
            }
        }
    }
    Ok(None)
}

/// The shortest cycle of `class` through `start`, if any.
fn bfs(
    g: &DepGraph,
    class: &Class,
    start: EdgeIndex<u32>,
    comp: &[u32],
    id: u32,
    deadline: Option<Instant>,
) -> Result<Option<Cycle>, OutOfTime> {
    let Some((u, v)) = g.edge_endpoints(start) else {
        return Ok(None);
    };
    let s0 = step(0, g[start].kind);
    // (node, state) -> the edge that reached it and the previous state.
    let mut parent: FxHashMap<(u32, u8), (EdgeIndex<u32>, u8)> = FxHashMap::default();
    parent.insert((v.index() as u32, s0), (start, 0));
    let mut queue = VecDeque::from([(v, s0)]);
    let mut popped = 0u32;
    while let Some((x, s)) = queue.pop_front() {
        popped += 1;
        if popped.is_multiple_of(1024) && deadline.is_some_and(|d| Instant::now() > d) {
            return Err(OutOfTime);
        }
        for e in g.edges(x) {
            let kind = e.weight().kind;
            let y = e.target();
            if kind & class.mask == 0 || comp[y.index()] != id {
                continue;
            }
            let ns = step(s, kind);
            if class.pruned(ns) {
                continue;
            }
            if y == u {
                if class.accepts(ns) {
                    return Ok(Some(unwind(g, &parent, start, (x, s), e.id())));
                }
                continue;
            }
            if let std::collections::hash_map::Entry::Vacant(slot) =
                parent.entry((y.index() as u32, ns))
            {
                slot.insert((e.id(), s));
                queue.push_back((y, ns));
            }
        }
    }
    Ok(None)
}

fn unwind(
    g: &DepGraph,
    parent: &FxHashMap<(u32, u8), (EdgeIndex<u32>, u8)>,
    start: EdgeIndex<u32>,
    mut at: (NodeIndex<u32>, u8),
    last: EdgeIndex<u32>,
) -> Cycle {
    let edge = |e: EdgeIndex<u32>| {
        let (a, b) = g.edge_endpoints(e).unwrap_or_default();
        (a.index() as u32, b.index() as u32, g[e])
    };
    let mut path = vec![edge(last)];
    while let Some(&(e, prev)) = parent.get(&(at.0.index() as u32, at.1)) {
        if e == start {
            break;
        }
        path.push(edge(e));
        let (a, _) = g.edge_endpoints(e).unwrap_or_default();
        at = (a, prev);
    }
    path.push(edge(start));
    path.reverse();
    path
}
