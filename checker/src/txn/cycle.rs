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
use std::sync::atomic::{AtomicBool, Ordering};
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
    /// Two or more rw edges, no two of them adjacent (cyclically).
    Nonadjacent,
    /// Two or more rw edges, two of them adjacent.
    Adjacent,
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

/// Every cycle class, in Elle's order of severity: G0, G1c, G-single,
/// G-nonadjacent, G2-item, then their -process variants, then -realtime
/// (a -realtime cycle may also use process edges). Elle's cycle
/// classifier: a cycle with one rw edge is G-single, with two or more none
/// adjacent G-nonadjacent, otherwise G2-item; with a realtime edge it is the
/// -realtime variant, else with a process edge the -process one.
pub(crate) fn classes() -> Vec<Class> {
    let base = [
        ("G0", WW, WW, RwRule::NoRw { need_wr: false }),
        ("G1c", WW | WR, WR, RwRule::NoRw { need_wr: true }),
        ("G-single", WW | WR | RW, RW, RwRule::One),
        ("G-nonadjacent", WW | WR | RW, RW, RwRule::Nonadjacent),
        ("G2-item", WW | WR | RW, RW, RwRule::Adjacent),
    ];
    let names = [
        ["G0", "G0-process", "G0-realtime"],
        ["G1c", "G1c-process", "G1c-realtime"],
        ["G-single", "G-single-process", "G-single-realtime"],
        [
            "G-nonadjacent",
            "G-nonadjacent-process",
            "G-nonadjacent-realtime",
        ],
        ["G2-item", "G2-item-process", "G2-item-realtime"],
    ];
    let mut out = Vec::new();
    for (variant, (extra, need)) in [(0, 0), (PROCESS, PROCESS), (PROCESS | REALTIME, REALTIME)]
        .into_iter()
        .enumerate()
    {
        for ((_, mask, start, rule), names) in base.iter().zip(&names) {
            out.push(Class {
                name: names[variant],
                mask: mask | extra,
                start: if need == 0 { *start } else { need },
                rule: *rule,
                need,
            });
        }
    }
    out
}

// State bits: rw count (0..=2) in bits 0-1, then wr, process, realtime seen,
// the last edge was rw, two adjacent rw edges seen.
const SEEN_WR: u8 = 4;
const SEEN_PROCESS: u8 = 8;
const SEEN_REALTIME: u8 = 16;
const LAST_RW: u8 = 32;
const ADJACENT_RW: u8 = 64;

fn step(state: u8, kind: u8) -> u8 {
    let rw = (state & 3) + u8::from(kind == RW && state & 3 < 2);
    let mut flags = state & !3 & !LAST_RW;
    flags |= match kind {
        WR => SEEN_WR,
        PROCESS => SEEN_PROCESS,
        REALTIME => SEEN_REALTIME,
        RW if state & LAST_RW != 0 => LAST_RW | ADJACENT_RW,
        RW => LAST_RW,
        _ => 0,
    };
    flags | rw
}

impl Class {
    fn pruned(&self, state: u8) -> bool {
        match self.rule {
            RwRule::One => state & 3 > 1,
            RwRule::Nonadjacent => state & ADJACENT_RW != 0,
            _ => false,
        }
    }
    /// Whether a path from the start edge back to its source, ending in
    /// `state`, is a cycle of this class.
    fn accepts(&self, state: u8, first_rw: bool) -> bool {
        let rw = state & 3;
        // The closing edge and the first one are adjacent too.
        let wraps = first_rw && state & LAST_RW != 0 && rw >= 2;
        let rule = match self.rule {
            RwRule::NoRw { need_wr } => !need_wr || state & SEEN_WR != 0,
            RwRule::One => rw == 1,
            RwRule::Nonadjacent => rw >= 2 && !wraps && state & ADJACENT_RW == 0,
            RwRule::Adjacent => rw >= 2 && (wraps || state & ADJACENT_RW != 0),
        };
        let need = match self.need {
            PROCESS => state & SEEN_PROCESS != 0,
            REALTIME => state & SEEN_REALTIME != 0,
            _ => true,
        };
        rule && need
    }
}

/// A cycle: (from, to, dependency) in cycle order.
pub(crate) type Cycle = Vec<(u32, u32, Dep)>;

/// The search's budget ran out.
#[derive(Debug)]
struct OutOfTime;

/// When a cycle search must stop: past a deadline, or once an interrupt
/// flag (Ctrl-C) is set.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Budget<'a> {
    /// Stop after this instant.
    pub deadline: Option<Instant>,
    /// Stop once this is set.
    pub interrupt: Option<&'a AtomicBool>,
}

impl Budget<'_> {
    /// Whether the search must stop now.
    pub(crate) fn spent(&self) -> bool {
        self.deadline.is_some_and(|d| Instant::now() > d) || self.interrupted()
    }

    /// Whether it stopped (or must) because of the interrupt.
    pub(crate) fn interrupted(&self) -> bool {
        self.interrupt.is_some_and(|i| i.load(Ordering::Relaxed))
    }
}

/// What the search found for one class.
#[derive(Default, Debug)]
pub(crate) struct ClassOutcome {
    /// One cycle per SCC where one was found: (from, to, dep) in cycle order.
    pub cycles: Vec<Cycle>,
    /// Sizes of the SCCs the search could not finish within its budget.
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

/// Searches `class` in every non-trivial SCC of its edge kinds, except those
/// containing a node for which `skip` holds.
pub(crate) fn search(
    g: &DepGraph,
    class: &Class,
    budget: Budget,
    skip: &dyn Fn(usize) -> bool,
) -> ClassOutcome {
    let mut out = ClassOutcome::default();
    let components = sccs(g, class.mask);
    let mut comp = vec![u32::MAX; g.node_count()];
    for (i, c) in components.iter().enumerate() {
        for n in c {
            comp[n.index()] = i as u32;
        }
    }
    for (i, c) in components.iter().enumerate() {
        if skip(c[0].index()) {
            continue;
        }
        if budget.spent() {
            out.unfinished.push(c.len());
            continue;
        }
        match in_component(g, class, c, &comp, i as u32, budget) {
            Ok(Some(cycle)) => out.cycles.push(cycle),
            Ok(None) => {}
            Err(OutOfTime) => out.unfinished.push(c.len()),
        }
    }
    out
}

/// Tries each start edge of the component; `Err` when the budget ran out.
fn in_component(
    g: &DepGraph,
    class: &Class,
    nodes: &[NodeIndex<u32>],
    comp: &[u32],
    id: u32,
    budget: Budget,
) -> Result<Option<Cycle>, OutOfTime> {
    for &u in nodes {
        for e in g.edges(u) {
            if e.weight().kind != class.start || comp[e.target().index()] != id {
                continue;
            }
            if let Some(c) = bfs(g, class, e.id(), comp, id, budget)? {
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
    budget: Budget,
) -> Result<Option<Cycle>, OutOfTime> {
    let Some((u, v)) = g.edge_endpoints(start) else {
        return Ok(None);
    };
    let s0 = step(0, g[start].kind);
    let first_rw = g[start].kind == RW;
    // (node, state) -> the edge that reached it and the previous state.
    let mut parent: FxHashMap<(u32, u8), (EdgeIndex<u32>, u8)> = FxHashMap::default();
    parent.insert((v.index() as u32, s0), (start, 0));
    let mut queue = VecDeque::from([(v, s0)]);
    let mut popped = 0u32;
    while let Some((x, s)) = queue.pop_front() {
        popped += 1;
        if popped.is_multiple_of(1024) && budget.spent() {
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
                if class.accepts(ns, first_rw) {
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

/// A strongly connected component that proves a cycle some model forbids
/// exists (Elle's `X-cycle-exists`).
pub(crate) struct CycleExists {
    /// Elle's anomaly kind (`PL-3-cycle-exists`, ...).
    pub kind: &'static str,
    /// The model it rules out.
    pub model: &'static str,
    /// The edge kinds of the subgraph, in words.
    pub edges: &'static str,
    /// The txns of the smallest such component.
    pub txns: Vec<u32>,
}

/// Elle's cycle-existence specs for our models, weakest first: a subgraph
/// (edge kinds, and for the snapshot isolation models rw edges each right
/// after one of the others: Elle's sequential extension) whose every
/// non-trivial SCC holds a cycle the model forbids. A spec whose model is
/// already ruled out by an earlier one is skipped, as in Elle.
const CYCLE_EXISTS: [(&str, &str, u8, bool, &str); 9] = [
    ("PL-1-cycle-exists", "read-uncommitted", WW, false, "ww"),
    (
        "PL-2-cycle-exists",
        "read-committed",
        WW | WR,
        false,
        "ww, wr",
    ),
    (
        "PL-SI-cycle-exists",
        "snapshot-isolation",
        WW | WR,
        true,
        "ww, wr and (each after one of those) rw",
    ),
    (
        "PL-2.99-cycle-exists",
        "repeatable-read",
        WW | WR | RW,
        false,
        "ww, wr, rw",
    ),
    (
        "PL-3-cycle-exists",
        "serializable",
        WW | WR | RW,
        false,
        "ww, wr, rw",
    ),
    (
        "strong-session-snapshot-isolation-cycle-exists",
        "strong-session-snapshot-isolation",
        WW | WR | PROCESS,
        true,
        "ww, wr, process and (each after one of those) rw",
    ),
    (
        "strong-session-serializable-cycle-exists",
        "strong-session-serializable",
        WW | WR | RW | PROCESS,
        false,
        "ww, wr, rw, process",
    ),
    (
        "strong-snapshot-isolation-cycle-exists",
        "strong-snapshot-isolation",
        WW | WR | PROCESS | REALTIME,
        true,
        "ww, wr, process, realtime and (each after one of those) rw",
    ),
    (
        "PL-SS-cycle-exists",
        "strict-serializable",
        WW | WR | RW | PROCESS | REALTIME,
        false,
        "ww, wr, rw, process, realtime",
    ),
];

/// The cycle-existence proofs the graph holds (see [`CYCLE_EXISTS`]).
pub(crate) fn cycle_exists(g: &DepGraph) -> Vec<CycleExists> {
    let mut out: Vec<CycleExists> = Vec::new();
    for (kind, model, mask, extension, edges) in CYCLE_EXISTS {
        if out
            .iter()
            .any(|p| super::consistency::implies_model(model, p.model))
        {
            continue;
        }
        let smallest = if extension {
            extension_sccs(g, mask)
        } else {
            sccs(g, mask)
                .into_iter()
                .map(|c| c.into_iter().map(|n| n.index() as u32).collect())
                .min_by_key(Vec::len)
        };
        if let Some(mut txns) = smallest {
            txns.sort_unstable();
            out.push(CycleExists {
                kind,
                model,
                edges,
                txns,
            });
        }
    }
    out
}

/// The smallest non-trivial SCC of the product graph over (txn, last edge
/// was rw): edges of `mask` lead to state 0, rw edges only leave state 0.
/// Its closed walks are exactly the cycles of Elle's sequential extension.
fn extension_sccs(g: &DepGraph, mask: u8) -> Option<Vec<u32>> {
    let n = g.node_count();
    let mut product: petgraph::graph::DiGraph<(), (), u32> =
        petgraph::graph::DiGraph::with_capacity(2 * n, 2 * g.edge_count());
    for _ in 0..2 * n {
        product.add_node(());
    }
    let at = |t: usize, s: usize| NodeIndex::new(2 * t + s);
    for e in g.edge_references() {
        let (a, b, kind) = (e.source().index(), e.target().index(), e.weight().kind);
        if kind & mask != 0 {
            product.add_edge(at(a, 0), at(b, 0), ());
            product.add_edge(at(a, 1), at(b, 0), ());
        } else if kind == RW {
            product.add_edge(at(a, 0), at(b, 1), ());
        }
    }
    kosaraju_scc(&product)
        .into_iter()
        .filter(|c| c.len() > 1)
        .map(|c| {
            let mut txns: Vec<u32> = c.iter().map(|p| (p.index() / 2) as u32).collect();
            txns.sort_unstable();
            txns.dedup();
            txns
        })
        .min_by_key(Vec::len)
}
