//! The transactional checker (after Elle) for list-append and rw-register
//! histories.
//!
//! # Layout
//! - `parse`: the compact [`TxnHistory`] (interned keys, micro-ops in one
//!   arena, shared read lists) and pairing into txns.
//! - `load`: a JSONL file streamed straight into it, in parallel blocks.
//! - `infer`: list-append version orders, anomalies and edges.
//! - `register`: rw-register version orders, anomalies and edges.
//! - `graph`, `cycle`: the dependency graph and the cycle search.
//! - `consistency`: Elle's hierarchy of models and anomalies, in one table.
//!
//! # Workload
//!
//! `txn` ops whose value is a list of micro-ops: `["append", k, v]` (also
//! `"a"`) appends the integer `v` (unique per key) to the list at `k`;
//! `["r", k, list]` (also `"read"`) reads it (`null` in an `ok` completion is
//! the empty list). Elle's EDN `[:append :x 3]` / `[:r :x [1 2]]` arrive
//! through [`crate::import`] as exactly these. Keys may be strings or numbers.
//!
//! # What is inferred
//!
//! - `infer`: each key's version order (its longest committed read, then
//!   the committed appends no read saw, unordered, after it; the rules and
//!   why each is sound are in `infer`) and the anomalies visible without a
//!   graph: `incompatible-order`, `duplicate-elements`, `G1a`, `G1b`,
//!   `internal`, `future-read` (a read holding the txn's own later append),
//!   `lost-update` (two committed txns read the same version of a key and
//!   both appended to it), `dirty-update` (a committed or indeterminate
//!   append follows an aborted one in a version order); and the ww / wr /
//!   rw edges.
//! - `graph`: the dependency graph over txns with those edges, plus process
//!   and realtime orders as transitive reductions.
//! - `cycle`: SCCs and the shortest cycle of each class per SCC: `G0`,
//!   `G1c`, `G-single`, `G-nonadjacent`, `G2-item`, with `-process` and
//!   `-realtime` variants; in an SCC where a class was found, the classes
//!   it implies are not searched (Elle). A class the search could not
//!   finish before the time limit is `unknown` with the reason; then the
//!   SCCs still prove which models a cycle violates (Elle's
//!   `X-cycle-exists`, as its `cycle-search-timeout` does).
//!
//! Committed (`ok`) txns are nodes with everything they read and wrote;
//! indeterminate (`info`) txns only through their appends that some read
//! observed (their reads are unknown), so unobserved ones never close a
//! cycle; failed txns take part only in G1a / dirty-update.
//!
//! # rw-register
//!
//! `["w", k, v]` (also `"write"`) writes `v` (unique per key) and
//! `["r", k, v]` reads one value (`null` in an `ok` completion: nothing
//! written yet); Elle's `[:w :x 1]` / `[:r :x 1]` import as these. Registers
//! prove much less than lists: the only version orders are the initial nil
//! before every write, a txn's read of a key before its own write of it, and
//! on request ([`RegisterOrder`]) process or realtime order of writes. From
//! them: wr, ww and rw edges and the same cycle classes, plus `G1a`, `G1b`,
//! `internal`, `lost-update` and `garbage-read`. Two blind writes stay
//! unordered, so many stale reads that list-append would prove are not
//! anomalies here unless realtime order is assumed. Details in `register`.
//!
//! # Models
//!
//! Elle's hierarchy (`consistency`; the table is in README.md): from
//! `read-uncommitted` up through `read-committed`, `repeatable-read`,
//! `snapshot-isolation` (and its strong-session and strong variants) and
//! `serializable` (which implies snapshot isolation, as in Elle) to
//! `strong-session-serializable` and `strict-serializable`. An anomaly
//! rules out the models that proscribe it or an anomaly it implies. `not`
//! lists the weakest models ruled out, `also_not` the stronger ones that
//! follows for, and `may_satisfy` the strongest models not ruled out. A
//! history is invalid if a requested model is ruled out or a requested
//! anomaly (`TxnOptions::anomalies`) is implied by one found.

mod consistency;
mod cycle;
mod graph;
mod infer;
mod load;
mod parse;
mod register;

pub use parse::{TxnHistory, TxnWorkload};

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::history::Op;
use crate::outcome::{details_of, Anomaly, AnomalyEdge, CheckOutcome, CheckerResult};
use crate::verdict::Validity;

/// Anomaly kind: a read that is not a prefix of its key's version order.
pub const INCOMPATIBLE_ORDER: &str = "incompatible-order";
/// Anomaly kind: a read lists an element twice.
pub const DUPLICATE_ELEMENTS: &str = "duplicate-elements";
/// Anomaly kind: a committed txn read an append of an aborted txn.
pub const G1A: &str = "G1a";
/// Anomaly kind: a read of a version that was not its writer's final append.
pub const G1B: &str = "G1b";
/// Anomaly kind: a txn's read disagrees with its own earlier micro-ops.
pub const INTERNAL: &str = "internal";
/// Anomaly kind: two committed txns read one version of a key and both appended.
pub const LOST_UPDATE: &str = "lost-update";
/// Anomaly kind: a committed append ordered after an aborted one.
pub const DIRTY_UPDATE: &str = "dirty-update";
/// Anomaly kind: a read holding an element its own txn appends later.
pub const FUTURE_READ: &str = "future-read";
/// Anomaly kind (rw-register): a read of a value no txn wrote.
pub const GARBAGE_READ: &str = "garbage-read";

pub(crate) const WW: u8 = 1;
pub(crate) const WR: u8 = 2;
pub(crate) const RW: u8 = 4;
pub(crate) const PROCESS: u8 = 8;
pub(crate) const REALTIME: u8 = 16;

/// An edge's kind and the key it is about (0 for process / realtime).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Dep {
    pub kind: u8,
    pub key: u32,
}

/// Where an rw-register analysis may take each key's version order from,
/// beyond what the reads prove (see the module docs, "rw-register").
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RegisterOrder {
    /// Only what the history proves: the initial nil precedes every write,
    /// and a txn's own read precedes its write of the key.
    #[default]
    Inferred,
    /// Also: the writes of one key by one process are in process order
    /// (Elle's `sequential-keys`).
    Process,
    /// Also: a write of a key that completed before another write of it was
    /// invoked precedes it (Elle's `linearizable-keys`; implies `Process`).
    Realtime,
}

/// Options of [`check`] and [`check_list_append`].
#[derive(Clone, Debug)]
pub struct TxnOptions {
    /// The models the history must satisfy; an anomaly any of them proscribes
    /// makes it invalid. Default `["strict-serializable"]`.
    pub consistency_models: Vec<String>,
    /// Budget for the cycle search; classes not finished in time are unknown.
    pub time_limit: Option<Duration>,
    /// At most this many anomalies of each kind are listed (counts are complete).
    pub max_listed: usize,
    /// rw-register only: what each key's version order may be taken from.
    pub register_order: RegisterOrder,
    /// Anomalies that make the history invalid besides the models' (Elle's
    /// `:anomalies`): `G1` means G1a, G1b, G1c and whatever implies them.
    pub anomalies: Vec<String>,
    /// Once set (by a Ctrl-C handler), the cycle search stops: the classes
    /// not finished are unknown, saying so; what was found stands.
    pub interrupt: Option<Arc<AtomicBool>>,
}

impl Default for TxnOptions {
    fn default() -> Self {
        TxnOptions {
            consistency_models: vec!["strict-serializable".to_string()],
            time_limit: Some(Duration::from_secs(60)),
            max_listed: 32,
            register_order: RegisterOrder::Inferred,
            anomalies: Vec::new(),
            interrupt: None,
        }
    }
}

/// A history or options the transactional checker cannot interpret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TxnError {
    /// A txn op that pairs wrongly or whose micro-ops are not list-append ones.
    #[error("op {index}: {message}")]
    Malformed {
        /// History index of the op.
        index: usize,
        /// What is wrong.
        message: String,
    },
    /// A consistency model not in the hierarchy.
    #[error("unknown consistency model {0:?}")]
    UnknownModel(String),
    /// An anomaly kind not in the hierarchy.
    #[error("unknown anomaly {0:?}")]
    UnknownAnomaly(String),
}

impl TxnError {
    /// The history index of the op at fault, if one is.
    pub fn index(&self) -> Option<usize> {
        match self {
            TxnError::Malformed { index, .. } => Some(*index),
            _ => None,
        }
    }
}

/// One dependency of a cycle: `from` precedes `to`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TxnEdge {
    /// History index of the earlier txn's invocation.
    pub from: u64,
    /// History index of the later txn's invocation.
    pub to: u64,
    /// `ww`, `wr`, `rw`, `process` or `realtime`.
    pub kind: String,
    /// The key of a data dependency.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

/// One anomaly, explained.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TxnAnomaly {
    /// docs/DESIGN.md's anomaly kind (`G-single`, `lost-update`, ...).
    pub kind: String,
    /// History indices of the invocations of the txns involved (`T12` is index 12).
    pub txns: Vec<u64>,
    /// The keys involved.
    pub keys: Vec<String>,
    /// What happened, in words.
    pub explanation: String,
    /// For cycles: the dependencies, in cycle order.
    pub edges: Vec<TxnEdge>,
}

/// A cycle class the search could not finish within the time limit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct UnknownClass {
    /// The class (`G2-item`, ...).
    pub kind: String,
    /// Sizes of the SCCs not searched to the end.
    pub scc_sizes: Vec<usize>,
    /// Why, in words.
    pub reason: String,
}

/// Sizes and costs.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct TxnStats {
    /// Txns (all outcomes).
    pub txns: usize,
    /// Committed / indeterminate / failed txns.
    pub ok: usize,
    /// Indeterminate txns.
    pub info: usize,
    /// Failed txns.
    pub failed: usize,
    /// Distinct keys.
    pub keys: usize,
    /// Edges of the dependency graph.
    pub edges: usize,
    /// Non-trivial SCCs of the whole graph.
    pub scc_count: usize,
    /// Their sizes, largest first (at most `max_listed`).
    pub scc_sizes: Vec<usize>,
    /// Wall time of the check, in milliseconds.
    pub millis: u64,
}

/// The verdict with its anomalies and what they rule out.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TxnResult {
    /// Invalid if an anomaly violates a requested model; unknown if a search
    /// that might have found one ran out of time.
    pub valid: Validity,
    /// The anomalies (at most `max_listed` per kind).
    pub anomalies: Vec<TxnAnomaly>,
    /// How many anomalies of each kind were found.
    pub counts: BTreeMap<String, usize>,
    /// The weakest models the anomalies rule out.
    pub not: Vec<String>,
    /// The stronger models ruled out as a consequence.
    pub also_not: Vec<String>,
    /// The strongest models the history may still satisfy.
    pub may_satisfy: Vec<String>,
    /// Cycle classes not searched to the end.
    pub unknown: Vec<UnknownClass>,
    /// Why the verdict is unknown when nothing could be checked: no txn at
    /// all, or no dependency between txns (Elle's empty transaction graph).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Sizes and costs.
    pub stats: TxnStats,
}

/// The consistency models, what each implies and proscribes, and which
/// anomalies imply which, as the Markdown tables of README.md's
/// "Consistency models and anomalies".
pub fn hierarchy_table() -> String {
    consistency::markdown_table()
}

/// Whether an anomaly of `kind` makes a history invalid under `options`'
/// models and anomalies (what Elle calls a prohibited anomaly type).
pub fn forbids(options: &TxnOptions, kind: &str) -> Result<bool, TxnError> {
    let r = check_requested(options)?;
    Ok(consistency::forbidden(kind, &r.models, &r.anomalies))
}

impl TxnResult {
    /// The stored outcome of this result on `history`, named `checker`:
    /// each anomaly with its txns (history indices of their invocations),
    /// its first key, its cycle's edges and the time of its first txn; the
    /// complete counts; the result itself in the details.
    pub fn outcome(&self, checker: &str, history: &TxnHistory) -> CheckOutcome {
        let anomalies = self
            .anomalies
            .iter()
            .map(|a| {
                let time = a.txns.first().and_then(|&i| history.invoke_time(i));
                let mut anomaly = Anomaly::new(&a.kind, checker, &a.explanation)
                    .with_key(a.keys.first().map(|k| k.to_string()))
                    .with_ops(a.txns.clone(), time);
                anomaly.edges = a.edges.iter().map(TxnEdge::stored).collect();
                anomaly
            })
            .collect();
        let mut result = CheckerResult::new(self.valid);
        for (kind, count) in &self.counts {
            result = result.with_anomalies(kind, *count);
        }
        CheckOutcome {
            checker: checker.to_string(),
            result: result.with_details(details_of(self, checker)),
            anomalies,
        }
    }
}

impl TxnEdge {
    fn stored(&self) -> AnomalyEdge {
        AnomalyEdge {
            from: self.from,
            to: self.to,
            kind: self.kind.clone(),
            key: self.key.clone(),
        }
    }
}

/// Checks a list-append history; see the module docs.
pub fn check_list_append(history: &[Op], options: &TxnOptions) -> Result<TxnResult, TxnError> {
    check_requested(options)?;
    check(
        &TxnHistory::from_ops(history, TxnWorkload::ListAppend)?,
        options,
    )
}

/// Checks an rw-register history; see the module docs.
pub fn check_rw_register(history: &[Op], options: &TxnOptions) -> Result<TxnResult, TxnError> {
    check_requested(options)?;
    check(
        &TxnHistory::from_ops(history, TxnWorkload::RwRegister)?,
        options,
    )
}

/// What makes a history invalid: the requested models and anomalies, each
/// checked against the hierarchy.
struct Requested {
    models: BTreeSet<&'static str>,
    anomalies: BTreeSet<&'static str>,
}

fn check_requested(options: &TxnOptions) -> Result<Requested, TxnError> {
    let models = options
        .consistency_models
        .iter()
        .map(|m| consistency::known_model(m).ok_or_else(|| TxnError::UnknownModel(m.clone())))
        .collect::<Result<_, _>>()?;
    let anomalies = options
        .anomalies
        .iter()
        .map(|a| consistency::known_anomaly(a).ok_or_else(|| TxnError::UnknownAnomaly(a.clone())))
        .collect::<Result<_, _>>()?;
    Ok(Requested { models, anomalies })
}

/// Checks a transactional history with its workload's analysis.
pub fn check(h: &TxnHistory, options: &TxnOptions) -> Result<TxnResult, TxnError> {
    let started = Instant::now();
    let requested = check_requested(options)?;
    let deadline = options.time_limit.map(|l| started + l);
    let namer = infer::Namer { h };
    let (mut anomalies, edges, explainer) = match h.workload {
        TxnWorkload::ListAppend => {
            let infer::Inferred {
                orders,
                anomalies,
                edges,
            } = infer::infer(h);
            let explainer: Box<dyn Fn(u32, u32, Dep) -> String + '_> =
                Box::new(move |a, b, d| explain_edge(&namer, &orders, a, b, d));
            (anomalies, edges, explainer)
        }
        TxnWorkload::RwRegister => {
            let (anomalies, edges, why) = register::infer(h, options.register_order)?;
            let explainer: Box<dyn Fn(u32, u32, Dep) -> String + '_> = Box::new(move |a, b, d| {
                explain_order_edge(&namer, a, b, d)
                    .unwrap_or_else(|| why.explain_edge(&namer, a, b, d))
            });
            (anomalies, edges, explainer)
        }
    };
    let txns = &h.txns;
    let g = graph::build(txns, &edges);
    drop(edges);
    let all = cycle::sccs(&g, WW | WR | RW | PROCESS | REALTIME);
    let budget = cycle::Budget {
        deadline,
        interrupt: options.interrupt.as_deref(),
    };
    let (cycles, unknown) = search_cycles(&g, &all, budget, options.time_limit);
    for (kind, c) in &cycles {
        anomalies.push(explain(&namer, &*explainer, kind, c));
    }
    if !unknown.is_empty() {
        let ruled_out = consistency::ruled_out(anomalies.iter().map(|a| a.kind.as_str()));
        for proof in cycle::cycle_exists(&g) {
            if !ruled_out.contains(proof.model) {
                anomalies.push(cycle_exists_anomaly(&namer, &proof));
            }
        }
    }
    let stats = TxnStats {
        txns: txns.len(),
        ok: txns
            .iter()
            .filter(|t| t.status == parse::Status::Ok)
            .count(),
        info: txns
            .iter()
            .filter(|t| t.status == parse::Status::Info)
            .count(),
        failed: txns
            .iter()
            .filter(|t| t.status == parse::Status::Fail)
            .count(),
        keys: h.keys.len(),
        edges: g.edge_count(),
        scc_count: all.len(),
        scc_sizes: all.iter().map(Vec::len).take(options.max_listed).collect(),
        millis: 0,
    };
    let mut result = verdict(anomalies, unknown, &requested, options.max_listed, stats);
    result.stats.millis = started.elapsed().as_millis() as u64;
    Ok(result)
}

/// Every cycle class in every SCC, Elle's way: classes in order of
/// severity, and in an SCC where one class was found, the classes it
/// implies are not searched (a G-single there is not also reported as
/// G-single-realtime). Classes past the budget are unknown.
fn search_cycles(
    g: &graph::DepGraph,
    all: &[Vec<petgraph::graph::NodeIndex<u32>>],
    budget: cycle::Budget,
    time_limit: Option<Duration>,
) -> (Vec<(&'static str, cycle::Cycle)>, Vec<UnknownClass>) {
    let mut cycles = Vec::new();
    let mut unknown = Vec::new();
    if all.is_empty() {
        return (cycles, unknown);
    }
    let mut top = vec![u32::MAX; g.node_count()];
    for (i, c) in all.iter().enumerate() {
        for n in c {
            top[n.index()] = i as u32;
        }
    }
    let mut found: Vec<Vec<&'static str>> = vec![Vec::new(); all.len()];
    for class in cycle::classes() {
        let skip = |node: usize| {
            found[top[node] as usize]
                .iter()
                .any(|k| consistency::implied(k).contains(class.name))
        };
        let outcome = cycle::search(g, &class, budget, &skip);
        for c in outcome.cycles {
            let at = top[c[0].0 as usize] as usize;
            found[at].push(class.name);
            cycles.push((class.name, c));
        }
        if !outcome.unfinished.is_empty() {
            let stopped = match budget.interrupted() {
                true => "was interrupted (Ctrl-C)".to_string(),
                false => format!(
                    "ran past {}",
                    time_limit.map_or("the time limit".to_string(), |l| {
                        format!("the time limit of {l:?}")
                    })
                ),
            };
            unknown.push(UnknownClass {
                kind: class.name.to_string(),
                reason: format!(
                    "the search for {} cycles {stopped} in {} strongly connected component(s) (sizes {:?})",
                    class.name,
                    outcome.unfinished.len(),
                    outcome.unfinished
                ),
                scc_sizes: outcome.unfinished,
            });
        }
    }
    (cycles, unknown)
}

/// An SCC that proves a cycle a model forbids exists (Elle's
/// `X-cycle-exists`, reported when the search for the cycle itself ran out
/// of time).
fn cycle_exists_anomaly(n: &infer::Namer, proof: &cycle::CycleExists) -> TxnAnomaly {
    const SHOWN: usize = 32;
    TxnAnomaly {
        kind: proof.kind.to_string(),
        txns: proof.txns.iter().take(SHOWN).map(|&t| n.idx(t)).collect(),
        keys: Vec::new(),
        explanation: format!(
            "the cycle search ran out of time, but {} txns{} form a strongly connected component over {} edges: some cycle among them exists, and {} forbids every such cycle",
            proof.txns.len(),
            if proof.txns.len() > SHOWN { format!(" (the first {SHOWN} listed)") } else { String::new() },
            proof.edges,
            proof.model
        ),
        edges: Vec::new(),
    }
}

fn verdict(
    anomalies: Vec<TxnAnomaly>,
    unknown: Vec<UnknownClass>,
    requested: &Requested,
    max_listed: usize,
    stats: TxnStats,
) -> TxnResult {
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    let mut listed = Vec::new();
    for a in anomalies {
        let c = counts.entry(a.kind.clone()).or_default();
        *c += 1;
        if *c <= max_listed {
            listed.push(a);
        }
    }
    let out = consistency::ruled_out(counts.keys().map(String::as_str));
    let bad = |kind: &str| consistency::forbidden(kind, &requested.models, &requested.anomalies);
    let mut valid = if counts.keys().any(|k| bad(k)) {
        Validity::Invalid
    } else if unknown.iter().any(|u| bad(&u.kind)) {
        Validity::Unknown
    } else {
        Validity::Valid
    };
    let reason = nothing_checked(&stats).filter(|_| valid == Validity::Valid);
    if reason.is_some() {
        valid = Validity::Unknown;
    }
    // The weakest ruled out: none of the models it implies is ruled out.
    let (not, also_not): (Vec<&str>, Vec<&str>) = out.iter().partition(|m| {
        consistency::MODELS
            .iter()
            .find(|x| x.name == **m)
            .is_some_and(|x| x.implies.iter().all(|i| !out.contains(i)))
    });
    // The strongest not ruled out: no other model implying it survives.
    let may_satisfy = consistency::MODELS
        .iter()
        .map(|m| m.name)
        .filter(|m| !out.contains(m))
        .filter(|m| {
            consistency::MODELS.iter().all(|s| {
                s.name == *m || out.contains(s.name) || !consistency::implies_model(s.name, m)
            })
        })
        .map(String::from)
        .collect();
    let strings = |v: Vec<&str>| v.into_iter().map(String::from).collect();
    TxnResult {
        valid,
        anomalies: listed,
        counts,
        not: strings(not),
        also_not: strings(also_not),
        may_satisfy,
        unknown,
        reason,
        stats,
    }
}

/// Why a history with no anomaly proves nothing, if it does not: it has no
/// txn, or no dependency edge between its txns, so there was no cycle to
/// look for (Elle's `empty-transaction-graph`).
fn nothing_checked(stats: &TxnStats) -> Option<String> {
    if stats.txns == 0 {
        Some(crate::verdict::NO_OPERATIONS.to_string())
    } else if stats.edges == 0 {
        Some(format!(
            "empty transaction graph: no dependency between the {} txns could be inferred, so no cycle could be looked for",
            stats.txns
        ))
    } else {
        None
    }
}

fn kind_name(kind: u8) -> &'static str {
    match kind {
        WW => "ww",
        WR => "wr",
        RW => "rw",
        PROCESS => "process",
        _ => "realtime",
    }
}

/// A cycle as an anomaly, each edge explained in words.
fn explain(
    n: &infer::Namer,
    explain_edge: &dyn Fn(u32, u32, Dep) -> String,
    kind: &str,
    cycle: &[(u32, u32, Dep)],
) -> TxnAnomaly {
    let mut sentences = Vec::new();
    let mut keys = BTreeSet::new();
    let mut edges = Vec::new();
    for &(a, b, d) in cycle {
        sentences.push(explain_edge(a, b, d));
        let key = matches!(d.kind, WW | WR | RW).then(|| n.k(d.key));
        if let Some(k) = &key {
            keys.insert(k.clone());
        }
        edges.push(TxnEdge {
            from: n.idx(a),
            to: n.idx(b),
            kind: kind_name(d.kind).to_string(),
            key,
        });
    }
    let first = cycle.first().map_or(String::new(), |e| n.t(e.0));
    TxnAnomaly {
        kind: kind.to_string(),
        txns: cycle.iter().map(|e| n.idx(e.0)).collect(),
        keys: keys.into_iter().collect(),
        explanation: format!(
            "{}; so {first} precedes itself: a cycle",
            sentences.join("; ")
        ),
        edges,
    }
}

fn explain_edge(n: &infer::Namer, orders: &[infer::KeyOrder], a: u32, b: u32, d: Dep) -> String {
    let (ta, tb) = (n.t(a), n.t(b));
    let order = orders.get(d.key as usize);
    let elems = order.map_or(&[][..], |o| &o.elems);
    let writers = order.map_or(&[][..], |o| &o.writers);
    let read_len = |t: u32, fits: &dyn Fn(usize) -> bool| {
        let txn = &n.h.txns[t as usize];
        n.h.mops(txn).iter().find_map(|m| match *m {
            parse::Mop::Read { key, list: Some(l) } if key == d.key && fits(l.len as usize) => {
                Some(l.len as usize)
            }
            _ => None,
        })
    };
    let unread = order
        .and_then(|o| o.unplaced.iter().find(|u| u.1 == b))
        .map(|u| u.0);
    explain_order_edge(n, a, b, d).unwrap_or_else(|| match (d.kind, unread) {
        (WW, Some(e)) => format!(
            "{tb} appended {e} to key {k}, which no read saw, so it came after the longest read's last element {}, which {ta} appended, so {ta} precedes {tb} (ww)",
            elems.last().copied().unwrap_or_default(), k = n.k(d.key)
        ),
        (RW, Some(e)) if elems.is_empty() => format!(
            "{ta} read key {k} as empty and {tb} appended {e} to it, so {ta} precedes {tb} (rw)",
            k = n.k(d.key)
        ),
        (RW, Some(e)) => format!(
            "{tb} appended {e} to key {k}, which no read saw, so after the longest read of it; {ta} read that whole version and not {e}, so {ta} precedes {tb} (rw)",
            k = n.k(d.key)
        ),
        (WW, _) => {
            let i = (1..writers.len())
                .find(|&i| writers[i - 1] == a && writers[i] == b)
                .unwrap_or(1);
            format!(
                "{ta} appended {} to key {k} and {tb} appended {} right after it in key {k}'s version order, so {ta} precedes {tb} (ww)",
                elems.get(i - 1).copied().unwrap_or_default(), elems.get(i).copied().unwrap_or_default(), k = n.k(d.key)
            )
        }
        (WR, _) => {
            let len = read_len(b, &|l| l > 0 && writers.get(l - 1) == Some(&a)).unwrap_or(1);
            format!(
                "{tb} read key {} and saw {}, which {ta} appended, so {ta} precedes {tb} (wr)",
                n.k(d.key),
                elems.get(len - 1).copied().unwrap_or_default()
            )
        }
        (RW, _) => {
            let len = read_len(a, &|l| writers.get(l) == Some(&b)).unwrap_or(0);
            format!(
                "{tb} appended {} to key {k} and {ta}'s read of key {k} did not see it, so {ta} precedes {tb} (rw)",
                elems.get(len).copied().unwrap_or_default(), k = n.k(d.key)
            )
        }
        _ => String::new(),
    })
}

/// A process or realtime edge in words (`None` for a data dependency).
fn explain_order_edge(n: &infer::Namer, a: u32, b: u32, d: Dep) -> Option<String> {
    let (ta, tb) = (n.t(a), n.t(b));
    match d.kind {
        PROCESS => Some(format!(
            "{ta} and {tb} ran on process {} in that order, so {ta} precedes {tb} (process)",
            n.h.txns[a as usize].process
        )),
        REALTIME => Some(format!(
            "{ta} completed (op {}) before {tb} was invoked, so {ta} precedes {tb} (realtime)",
            n.h.txns[a as usize].complete.unwrap_or_default()
        )),
        _ => None,
    }
}

#[cfg(test)]
mod register_tests;
#[cfg(test)]
mod tests;
