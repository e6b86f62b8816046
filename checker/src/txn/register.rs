//! rw-register inference: what a history of register reads and writes
//! proves about each key's version order, and the edges that follow.
//!
//! A register read shows one version and says nothing about the versions
//! before it, so far less is known than with list-append, where every read
//! spells out a prefix of the order. What is inferred, and why it is sound
//! (values are unique per key written; a duplicate is a malformed history):
//!
//! - **wr**: a committed txn's *external* read of `v` (its first access of
//!   the key is that read) follows the unique txn that wrote `v`.
//! - **Version order** `v < v'` of a key, from:
//!   - the initial state: nil precedes every written version;
//!   - a committed txn that read `v` and then wrote `v'` (its write builds on
//!     what it read; a txn's own writes of a key in order are versions of one
//!     txn and make no edges);
//!   - only when asked ([`RegisterOrder`]): process order of each key's
//!     writes (`Process`, Elle's sequential keys) or realtime order
//!     (`Realtime`, Elle's linearizable keys). These are assumptions about
//!     the database, not facts from the history.
//! - **ww**: the writers of `v` and `v'` for each `v < v'` above;
//!   **rw**: every committed reader of `v` precedes the writer of `v'`. (A
//!   pair need not be adjacent in the version order: then the edge stands for
//!   a chain of one rw and some ww edges, which changes no anomaly class.)
//!   From nil, only to versions with no other known predecessor: the rest
//!   follow through them.
//! - Without a graph: `G1a` (a read of a failed txn's write), `G1b` (a read
//!   of a value its writer overwrote in the same txn), `internal` (a read
//!   that disagrees with the txn's own earlier read or write of the key,
//!   or that returns the txn's own later write), `garbage-read` (a value no
//!   txn wrote), `lost-update` (two committed txns read one version of a
//!   key and both wrote it).
//! - An unrecorded initial state: when a key's reads show exactly one value
//!   no txn wrote and never nil, that value is the initial version the
//!   history left out (Elle's examples start registers at 0), not a garbage
//!   read. It orders only what a txn that read it and wrote over it proves,
//!   and precedes nothing else: nothing says which writes came after it.
//!
//! Not inferred: the order of two versions that no txn connected (two
//! blind writes are unordered), so a stale read that no later txn built on
//! goes unseen unless realtime order is assumed or the reader read the
//! initial nil; `incompatible-order`, `duplicate-elements` and
//! `dirty-update` need list reads and do not exist here. An indeterminate
//! (`info`) txn joins the graph only when a committed read saw one of its
//! writes (then it committed).

use rustc_hash::{FxHashMap, FxHashSet};

use super::infer::{anomaly, Namer};
use super::parse::{Mop, Seen, Status, TxnHistory, Val};
use super::{Dep, RegisterOrder, TxnAnomaly, TxnError, RW, WR, WW};

/// A version of a key: a written value, or `None` for the initial nil.
type Version = Option<Val>;

/// Why one version of a key precedes another.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Because {
    Initial,
    ReadThenWrote(u32),
    Process(u64),
    Realtime,
}

/// Who wrote a value, and whether it was that txn's last write of the key.
#[derive(Clone, Copy)]
struct Writer {
    txn: u32,
    last: bool,
}

/// What explanations need: why each ordered pair of versions is ordered.
pub(crate) struct Why {
    because: FxHashMap<(u32, Version, Val), Because>,
}

/// Anomalies without a graph, data edges, and their reasons.
pub(crate) type Inferred = (Vec<TxnAnomaly>, Vec<(u32, u32, Dep)>, Why);

/// Reads and writes gathered from the txns.
#[derive(Default)]
struct Scan {
    writers: FxHashMap<(u32, Val), Writer>,
    /// (txn, key, value) of each txn's last write of a key.
    finals: Vec<(u32, u32, Val)>,
    /// (txn, key, version) of each committed txn's external reads.
    reads: Vec<(u32, u32, Version)>,
    anomalies: Vec<TxnAnomaly>,
}

fn show(h: &TxnHistory, v: Version) -> String {
    v.map_or("nil".to_string(), |v| h.show(v))
}

/// Infers what it can (module docs).
pub(crate) fn infer(h: &TxnHistory, order: RegisterOrder) -> Result<Inferred, TxnError> {
    let n = Namer { h };
    let mut scan = Scan::default();
    for t in 0..h.txns.len() as u32 {
        scan_txn(&n, t, &mut scan)?;
    }
    let observed: FxHashSet<u32> = scan
        .reads
        .iter()
        .filter_map(|&(_, key, v)| scan.writers.get(&(key, v?)).map(|w| w.txn))
        .filter(|&w| n.status(w) == Status::Info)
        .collect();
    let live = |t: u32| n.status(t) == Status::Ok || observed.contains(&t);
    let initial = initial_values(&scan);
    let mut edges = Vec::new();
    let mut readers: FxHashMap<(u32, Version), Vec<u32>> = FxHashMap::default();
    for &(t, key, v) in &scan.reads {
        readers.entry((key, v)).or_default().push(t);
        if let Some(v) = v.filter(|&v| initial.get(&key) != Some(&v)) {
            read_anomalies(
                &n,
                &scan.writers,
                t,
                key,
                v,
                &mut scan.anomalies,
                &mut edges,
            );
        }
    }
    let mut anomalies = std::mem::take(&mut scan.anomalies);
    lost_updates(&n, &scan, &mut anomalies);
    let relations = version_order(h, &scan, &live, &initial, order);
    let mut why = Why {
        because: FxHashMap::default(),
    };
    for (key, from, to, because) in relations {
        if why.because.insert((key, from, to), because).is_some() {
            continue;
        }
        let later = scan.writers[&(key, to)].txn;
        if let Some(w) = from.and_then(|v| scan.writers.get(&(key, v))) {
            let earlier = w.txn;
            if earlier != later {
                edges.push((earlier, later, Dep { kind: WW, key }));
            }
        }
        for &r in readers.get(&(key, from)).map_or(&[][..], Vec::as_slice) {
            if r != later {
                edges.push((r, later, Dep { kind: RW, key }));
            }
        }
    }
    Ok((anomalies, edges, why))
}

/// Per key, the one value that was read but never written, when the key
/// has exactly one such value and no read of nil: the initial state a
/// history left unrecorded (Elle's histories often start at 0). It is a
/// version before every write that builds on it, not a garbage read; two
/// or more unwritten values of one key cannot all be initial, so then each
/// is garbage.
fn initial_values(scan: &Scan) -> FxHashMap<u32, Val> {
    let mut unwritten: FxHashMap<u32, FxHashSet<Version>> = FxHashMap::default();
    for &(_, key, v) in &scan.reads {
        if v.is_none_or(|v| !scan.writers.contains_key(&(key, v))) {
            unwritten.entry(key).or_default().insert(v);
        }
    }
    unwritten
        .into_iter()
        .filter_map(|(key, vs)| match vs.into_iter().collect::<Vec<_>>()[..] {
            [Some(v)] => Some((key, v)),
            _ => None,
        })
        .collect()
}

/// One txn's writes (all txns) and reads (committed ones), with the
/// internal anomalies.
fn scan_txn(n: &Namer, t: u32, scan: &mut Scan) -> Result<(), TxnError> {
    let h = n.h;
    let txn = &h.txns[t as usize];
    let mops = h.mops(txn);
    // Per key touched: what a read must return now (None: not yet known).
    let mut expect: Vec<(u32, Option<Version>, bool)> = Vec::new();
    for (i, m) in mops.iter().enumerate() {
        let key = m.key();
        let slot = match expect.iter().position(|e| e.0 == key) {
            Some(s) => s,
            None => {
                expect.push((key, None, false));
                expect.len() - 1
            }
        };
        match *m {
            Mop::Write { key, value } => {
                let last = !mops[i + 1..]
                    .iter()
                    .any(|m| matches!(m, Mop::Write { key: k, .. } if *k == key));
                let writer = Writer { txn: t, last };
                if let Some(first) = scan.writers.insert((key, value), writer) {
                    return Err(TxnError::Malformed {
                        index: txn.invoke,
                        message: format!(
                            "{} wrote {} to key {} again (first written by {}): rw-register needs the values written to a key to be unique",
                            n.t(t), h.show(value), n.k(key), n.t(first.txn)
                        ),
                    });
                }
                if last {
                    scan.finals.push((t, key, value));
                }
                expect[slot] = (key, Some(Some(value)), true);
            }
            Mop::Get { key, value } if txn.status == Status::Ok => {
                let got = match value {
                    Seen::Nil => None,
                    Seen::Value(v) => Some(v),
                    Seen::Unknown => continue,
                };
                match expect[slot] {
                    (_, None, _) => scan.reads.push((t, key, got)),
                    (_, Some(want), wrote) if want != got => {
                        let before = if wrote {
                            "its own write of"
                        } else {
                            "its earlier read of"
                        };
                        scan.anomalies.push(anomaly(n, super::INTERNAL, &[t], key, format!(
                            "{} read key {} = {} after {before} {}: a txn must see its own writes and read the same version twice",
                            n.t(t), n.k(key), show(h, got), show(h, want)
                        )));
                    }
                    _ => {}
                }
                expect[slot].1 = Some(got);
            }
            _ => {}
        }
    }
    Ok(())
}

/// The anomalies of one external read of `v`, and its wr edge.
fn read_anomalies(
    n: &Namer,
    writers: &FxHashMap<(u32, Val), Writer>,
    t: u32,
    key: u32,
    v: Val,
    out: &mut Vec<TxnAnomaly>,
    edges: &mut Vec<(u32, u32, Dep)>,
) {
    let (h, tt, k) = (n.h, n.t(t), n.k(key));
    let Some(&w) = writers.get(&(key, v)) else {
        out.push(anomaly(
            n,
            super::GARBAGE_READ,
            &[t],
            key,
            format!("{tt} read key {k} = {}, a value no txn wrote", h.show(v)),
        ));
        return;
    };
    let tw = n.t(w.txn);
    if w.txn == t {
        out.push(anomaly(
            n,
            super::INTERNAL,
            &[t],
            key,
            format!(
                "{tt} read key {k} = {} before it wrote that value itself",
                h.show(v)
            ),
        ));
        return;
    }
    if n.status(w.txn) == Status::Fail {
        out.push(anomaly(
            n,
            super::G1A,
            &[w.txn, t],
            key,
            format!(
                "{tt} read key {k} = {}, which {tw} wrote but then aborted (fail)",
                h.show(v)
            ),
        ));
        return;
    }
    if !w.last {
        out.push(anomaly(
            n,
            super::G1B,
            &[w.txn, t],
            key,
            format!(
            "{tt} read key {k} = {}, an intermediate write of {tw} which wrote key {k} again later",
            h.show(v)
        ),
        ));
    }
    edges.push((w.txn, t, Dep { kind: WR, key }));
}

/// Two committed txns that read one version of a key and both wrote it.
fn lost_updates(n: &Namer, scan: &Scan, out: &mut Vec<TxnAnomaly>) {
    let wrote: FxHashSet<(u32, u32)> = scan.finals.iter().map(|&(t, k, _)| (t, k)).collect();
    let mut by_version: FxHashMap<(u32, Version), Vec<u32>> = FxHashMap::default();
    for &(t, key, v) in &scan.reads {
        if wrote.contains(&(t, key)) {
            by_version.entry((key, v)).or_default().push(t);
        }
    }
    let mut groups: Vec<_> = by_version
        .into_iter()
        .filter(|(_, ts)| ts.len() > 1)
        .collect();
    groups.sort_unstable();
    for ((key, v), ts) in groups {
        let names: Vec<String> = ts.iter().map(|&t| n.t(t)).collect();
        out.push(anomaly(n, super::LOST_UPDATE, &ts, key, format!(
            "{} all read key {} = {} and each wrote it: each update was made without seeing the others",
            names.join(", "), n.k(key), show(n.h, v)
        )));
    }
}

/// Pairs of versions known to be ordered: `(key, earlier, later, why)`.
fn version_order(
    h: &TxnHistory,
    scan: &Scan,
    live: &dyn Fn(u32) -> bool,
    initial: &FxHashMap<u32, Val>,
    order: RegisterOrder,
) -> Vec<(u32, Version, Val, Because)> {
    let mut out = Vec::new();
    let live_version = |key: u32, v: Version| match v {
        None => true,
        Some(v) if initial.get(&key) == Some(&v) => true,
        Some(v) => scan
            .writers
            .get(&(key, v))
            .is_some_and(|w| w.last && live(w.txn)),
    };
    let read_of: FxHashMap<(u32, u32), Version> =
        scan.reads.iter().map(|&(t, k, v)| ((t, k), v)).collect();
    // finals are in txn order (txns are ordered by invocation).
    let finals: Vec<(u32, u32, Val)> = scan.finals.iter().copied().filter(|f| live(f.0)).collect();
    for &(t, key, v) in &finals {
        if let Some(&r) = read_of.get(&(t, key)) {
            if r.is_none_or(|r| scan.writers.get(&(key, r)).is_none_or(|w| w.txn != t))
                && live_version(key, r)
            {
                out.push((key, r, v, Because::ReadThenWrote(t)));
            }
        }
    }
    match order {
        RegisterOrder::Inferred => {}
        RegisterOrder::Process => {
            let mut last: FxHashMap<(u64, u32), Val> = FxHashMap::default();
            for &(t, key, v) in &finals {
                let p = h.txns[t as usize].process;
                if let Some(prev) = last.insert((p, key), v) {
                    out.push((key, Some(prev), v, Because::Process(p)));
                }
            }
        }
        RegisterOrder::Realtime => realtime(h, &finals, &mut out),
    }
    let has_predecessor: FxHashSet<(u32, Val)> = out
        .iter()
        .filter(|r| live_version(r.0, r.1))
        .map(|r| (r.0, r.2))
        .collect();
    for &(_, key, v) in &finals {
        if !has_predecessor.contains(&(key, v)) {
            out.push((key, None, v, Because::Initial));
        }
    }
    out
}

/// Per key, each write that completed before another was invoked precedes
/// it: the frontier sweep of [`super::graph`], per key, so the pairs are a
/// transitive reduction (bounded by the concurrency).
fn realtime(
    h: &TxnHistory,
    finals: &[(u32, u32, Val)],
    out: &mut Vec<(u32, Version, Val, Because)>,
) {
    let mut by_key: FxHashMap<u32, Vec<(usize, bool, Val)>> = FxHashMap::default();
    for &(t, key, v) in finals {
        let txn = &h.txns[t as usize];
        let events = by_key.entry(key).or_default();
        events.push((txn.invoke, true, v));
        if let (Status::Ok, Some(c)) = (txn.status, txn.complete) {
            events.push((c, false, v));
        }
    }
    let mut keys: Vec<u32> = by_key.keys().copied().collect();
    keys.sort_unstable();
    for key in keys {
        let mut events = by_key.remove(&key).unwrap_or_default();
        events.sort_unstable_by_key(|e| e.0);
        let mut frontier: Vec<(Val, usize)> = Vec::new();
        let mut invoked_at: FxHashMap<Val, usize> = FxHashMap::default();
        for (seq, &(_, invoke, v)) in events.iter().enumerate() {
            if invoke {
                invoked_at.insert(v, seq);
                out.extend(
                    frontier
                        .iter()
                        .map(|&(f, _)| (key, Some(f), v, Because::Realtime)),
                );
            } else {
                let since = invoked_at.get(&v).copied().unwrap_or(0);
                frontier.retain(|&(_, s)| s > since);
                frontier.push((v, seq));
            }
        }
    }
}

impl Why {
    /// A ww, wr or rw edge in words.
    pub(crate) fn explain_edge(&self, n: &Namer, a: u32, b: u32, d: Dep) -> String {
        let h = n.h;
        let (ta, tb, k) = (n.t(a), n.t(b), n.k(d.key));
        let mops = |t: u32| h.mops(&h.txns[t as usize]);
        let read = |t: u32| {
            mops(t)
                .iter()
                .find(|m| m.key() == d.key)
                .and_then(|m| match *m {
                    Mop::Get {
                        value: Seen::Value(v),
                        ..
                    } => Some(Some(v)),
                    Mop::Get {
                        value: Seen::Nil, ..
                    } => Some(None),
                    _ => None,
                })
        };
        let wrote = |t: u32| {
            mops(t).iter().rev().find_map(|m| match *m {
                Mop::Write { key, value } if key == d.key => Some(value),
                _ => None,
            })
        };
        let because = |from: Version, to: Option<Val>| {
            let reason = to.and_then(|to| self.because.get(&(d.key, from, to)).copied());
            match reason {
                Some(Because::Initial) | None if from.is_none() => {
                    "every written version follows the initial nil".to_string()
                }
                Some(Because::ReadThenWrote(t)) => format!("{} read it and then wrote over it", n.t(t)),
                Some(Because::Process(p)) => {
                    format!("process {p} wrote both, in that order, and keys are assumed sequential")
                }
                Some(Because::Realtime) => {
                    "the first write completed before the second began, and keys are assumed linearizable".to_string()
                }
                _ => "the version order says so".to_string(),
            }
        };
        let shown = |v: Option<Val>| v.map_or("?".to_string(), |v| h.show(v));
        match d.kind {
            WR => format!(
                "{tb} read key {k} = {}, which {ta} wrote, so {ta} precedes {tb} (wr)",
                shown(read(b).flatten())
            ),
            WW => {
                let (v, v2) = (wrote(a), wrote(b));
                format!(
                    "{ta} wrote {} to key {k} and {tb} wrote {} after it ({}), so {ta} precedes {tb} (ww)",
                    shown(v), shown(v2), because(v, v2)
                )
            }
            _ => {
                let (r, v2) = (read(a).flatten(), wrote(b));
                format!(
                    "{ta} read key {k} = {} and {tb} wrote {}, a later version ({}), so {ta} precedes {tb} (rw)",
                    show(h, r), shown(v2), because(r, v2)
                )
            }
        }
    }
}
