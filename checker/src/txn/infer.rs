//! Version orders, the anomalies visible without a graph, and the data
//! dependency edges (ww, wr, rw) they imply.
//!
//! # What is inferred, and why it is sound
//!
//! With appends only, each state of a key is a list that every later state
//! extends, and each committed read shows one state. What Elle's
//! `list-append` infers, and no more:
//!
//! 1. **Version order**: a key's longest committed read. Sound: every other
//!    read of a correct system is one of its prefixes (a read that is not is
//!    `incompatible-order`).
//! 2. **ww**: the writers of consecutive elements of that order. Sound: the
//!    later element was appended to the state holding the earlier one.
//! 3. **wr**: the writer of a read's last element, to the reader. Sound: the
//!    reader saw the state that append created.
//! 4. **rw**: a reader of a prefix of length n, to the writer of element n.
//!    Sound: the read saw the state before that append. n = 0 is a read of
//!    the empty list, which precedes the writer of the first element.
//! 5. **Unread appends**: a committed append whose element is not in the
//!    longest read came after every element of it (the longest read's state
//!    does not hold it, and an append is never undone), so: ww from the
//!    writer of the order's last element, and rw from every reader of the
//!    whole order (of the empty list, if no read saw anything). Sound for
//!    each such append on its own; two of them stay unordered. This covers
//!    the single unread append to a key (Elle's "single appends without
//!    reads") and an unread first append after an empty read. An edge to an
//!    append that is not the very next version stands for a chain through
//!    the versions between (one rw then ww edges), which is the same cycle
//!    class. "Committed" is `ok`, or `info` with another append some read
//!    saw (then it committed); an unread append of an `info` txn that
//!    nothing else shows committed gets no edges.
//!
//! Failed writers get no edges (their anomalies are G1a and dirty-update).

use rustc_hash::FxHashMap;

use super::parse::{ListRef, Mop, Status, TxnHistory};
use super::{Dep, TxnAnomaly, TxnEdge, RW, WR, WW};

/// No writer is known for an element.
pub(crate) const NONE: u32 = u32::MAX;

/// Who appended an element, whether it was that txn's last append to the
/// key, and whether the element is in the key's version order.
#[derive(Clone, Copy)]
struct Writer {
    txn: u32,
    last_of_txn: bool,
    placed: bool,
    /// The txn is indeterminate (`info`).
    info: bool,
}

/// A key's version order and the writer of each of its elements.
#[derive(Default, Clone)]
pub(crate) struct KeyOrder {
    pub elems: Vec<i64>,
    pub writers: Vec<u32>,
    /// Per element: its writer appended to the key again later in its txn
    /// (false where `writers` is NONE). With `writers`, what G1b asks of a
    /// read that is a prefix of the order, without a hash lookup.
    intermediate: Vec<bool>,
    /// Whether some element was appended by a failed txn.
    pub any_failed: bool,
    /// Committed appends no read saw, as (element, writer): after every
    /// element of the order, unordered among themselves (rule 5).
    pub unplaced: Vec<(i64, u32)>,
    /// The read list it came from, when it is that list exactly (no
    /// duplicates): a read of the same list no longer than it is a prefix.
    source: Option<ListRef>,
}

/// The result of inference: orders, non-cycle anomalies, data edges.
pub(crate) struct Inferred {
    pub orders: Vec<KeyOrder>,
    pub anomalies: Vec<TxnAnomaly>,
    pub edges: Vec<(u32, u32, Dep)>,
}

/// Names txns and keys in explanations.
#[derive(Clone, Copy)]
pub(crate) struct Namer<'a> {
    pub h: &'a TxnHistory,
}

impl Namer<'_> {
    pub fn t(&self, t: u32) -> String {
        format!("T{}", self.h.txns[t as usize].invoke)
    }
    pub fn k(&self, k: u32) -> String {
        self.h.keys[k as usize].clone()
    }
    pub fn idx(&self, t: u32) -> u64 {
        self.h.txns[t as usize].invoke as u64
    }
    pub fn status(&self, t: u32) -> Status {
        self.h.txns[t as usize].status
    }
}

pub(crate) fn anomaly(
    n: &Namer,
    kind: &str,
    txns: &[u32],
    key: u32,
    explanation: String,
) -> TxnAnomaly {
    TxnAnomaly {
        kind: kind.to_string(),
        txns: txns.iter().map(|&t| n.idx(t)).collect(),
        keys: vec![n.k(key)],
        explanation,
        edges: Vec::<TxnEdge>::new(),
    }
}

/// Infers version orders and data edges; reports duplicate-elements,
/// incompatible-order, G1a, G1b, internal, lost-update and dirty-update.
pub(crate) fn infer(h: &TxnHistory) -> Inferred {
    let n = Namer { h };
    let txns = &h.txns;
    let nkeys = h.keys.len();
    // Sized for every append up front: it is the largest table here, and
    // growing it rehashes every entry again.
    let appends = txns
        .iter()
        .flat_map(|txn| h.mops(txn))
        .filter(|m| matches!(m, Mop::Append { .. }))
        .count();
    let mut writers: FxHashMap<(u32, i64), Writer> =
        FxHashMap::with_capacity_and_hasher(appends, Default::default());
    let mut longest: Vec<Option<ListRef>> = vec![None; nkeys];
    // Info txns with an append some read saw: they committed.
    let mut seen_info: rustc_hash::FxHashSet<u32> = rustc_hash::FxHashSet::default();
    for (t, txn) in txns.iter().enumerate() {
        let mops = h.mops(txn);
        for (i, m) in mops.iter().enumerate() {
            match *m {
                Mop::Append { key, elem } => {
                    let last_of_txn = !mops[i + 1..]
                        .iter()
                        .any(|m| matches!(m, Mop::Append { key: k, .. } if *k == key));
                    writers.entry((key, elem)).or_insert(Writer {
                        txn: t as u32,
                        last_of_txn,
                        placed: false,
                        info: txn.status == Status::Info,
                    });
                }
                Mop::Read {
                    key,
                    list: Some(list),
                } if txn.status == Status::Ok => {
                    let slot = &mut longest[key as usize];
                    if slot.is_none_or(|l| l.len < list.len) {
                        *slot = Some(list);
                    }
                }
                _ => {}
            }
        }
    }
    let mut out = Inferred {
        orders: vec![KeyOrder::default(); nkeys],
        anomalies: Vec::new(),
        edges: Vec::new(),
    };
    for (key, list) in longest.iter().enumerate() {
        let mut order = KeyOrder::default();
        let mut seen = rustc_hash::FxHashSet::default();
        for &e in list.map_or(&[][..], |l| h.list(l)) {
            if seen.insert(e) {
                order.elems.push(e);
                let w = writers.get_mut(&(key as u32, e));
                order
                    .intermediate
                    .push(w.as_ref().is_some_and(|w| !w.last_of_txn));
                order.writers.push(w.map_or(NONE, |w| {
                    w.placed = true;
                    if w.info {
                        seen_info.insert(w.txn);
                    }
                    w.txn
                }));
            }
        }
        order.any_failed = order
            .writers
            .iter()
            .any(|&w| w != NONE && txns[w as usize].status == Status::Fail);
        order.source = list.filter(|l| l.len as usize == order.elems.len());
        version_anomalies(&n, key as u32, &order, &mut out);
        out.orders[key] = order;
    }
    unplaced(&n, &writers, &seen_info, &mut out);
    for (t, txn) in txns.iter().enumerate() {
        if txn.status == Status::Ok {
            reads(&n, t as u32, txn, &writers, &mut out);
            internal(&n, t as u32, txn, &mut out.anomalies);
        }
    }
    lost_updates(&n, &mut out.anomalies);
    out
}

/// Rule 5: each committed append no read saw goes after its key's order,
/// with a ww edge from the writer of the order's last element.
fn unplaced(
    n: &Namer,
    writers: &FxHashMap<(u32, i64), Writer>,
    seen_info: &rustc_hash::FxHashSet<u32>,
    out: &mut Inferred,
) {
    let txns = &n.h.txns;
    let mut found: Vec<(u32, i64, u32)> = writers
        .iter()
        .filter(|(_, w)| !w.placed)
        .filter(|(_, w)| match txns[w.txn as usize].status {
            Status::Ok => true,
            Status::Info => seen_info.contains(&w.txn),
            Status::Fail => false,
        })
        .map(|(&(key, elem), w)| (key, elem, w.txn))
        .collect();
    found.sort_unstable();
    for (key, elem, w) in found {
        let order = &mut out.orders[key as usize];
        if let Some(&last) = order.writers.last() {
            if last != NONE && last != w && n.status(last) != Status::Fail {
                out.edges.push((last, w, Dep { kind: WW, key }));
            }
        }
        order.unplaced.push((elem, w));
    }
}

/// ww edges and dirty updates along one key's version order.
fn version_anomalies(n: &Namer, key: u32, order: &KeyOrder, out: &mut Inferred) {
    let status = |t: u32| (t != NONE).then(|| n.status(t));
    let mut aborted: Option<usize> = None;
    let mut reported = false;
    for (i, &w) in order.writers.iter().enumerate() {
        match (status(w), aborted) {
            (Some(Status::Fail), _) => {
                aborted.get_or_insert(i);
            }
            (Some(_), Some(a)) if !reported => {
                let fw = order.writers[a];
                out.anomalies.push(anomaly(n, super::DIRTY_UPDATE, &[fw, w], key, format!(
                    "{} appended {} to key {} and aborted, yet {} appended {} after it in the version order: a committed update built on an aborted one",
                    n.t(fw), order.elems[a], n.k(key), n.t(w), order.elems[i]
                )));
                reported = true;
            }
            _ => {}
        }
        if i > 0 {
            let p = order.writers[i - 1];
            let live = |t| matches!(status(t), Some(Status::Ok | Status::Info));
            if p != w && live(p) && live(w) {
                out.edges.push((p, w, Dep { kind: WW, key }));
            }
        }
    }
}

/// Checks each read of an ok txn against the version order; adds wr/rw edges.
fn reads(
    n: &Namer,
    t: u32,
    txn: &super::parse::Txn,
    writers: &FxHashMap<(u32, i64), Writer>,
    out: &mut Inferred,
) {
    for m in n.h.mops(txn) {
        let Mop::Read {
            key,
            list: Some(read),
        } = *m
        else {
            continue;
        };
        let list = n.h.list(read);
        let order = &out.orders[key as usize];
        let same_list = order
            .source
            .is_some_and(|s| s.list == read.list && read.len <= s.len);
        let prefix = same_list
            || (list.len() <= order.elems.len()
                && list.iter().zip(&order.elems).all(|(v, e)| v == e));
        let read = Read { t, key, list };
        if !prefix {
            out.anomalies.push(not_a_prefix(n, &read, order));
        }
        let aborted = aborted_elements(n, &read, order, prefix, writers);
        for (e, w) in aborted {
            out.anomalies.push(aborted_read(n, &read, e, w));
        }
        // For a prefix, the writer of its last element is the order's at
        // that place (the same entry of `writers`), found without hashing.
        let last_writer = match read.list.len() {
            len if prefix && len > 0 => {
                let order = &out.orders[key as usize];
                let txn = order.writers[len - 1];
                (txn != NONE).then(|| (txn, !order.intermediate[len - 1]))
            }
            _ => read
                .list
                .last()
                .and_then(|&last| writers.get(&(key, last)))
                .map(|w| (w.txn, w.last_of_txn)),
        };
        if let Some(anomaly) = intermediate_read(n, &read, last_writer) {
            out.anomalies.push(anomaly);
        }
        if prefix {
            let order = &out.orders[key as usize];
            out.edges.extend(read_edges(n, &read, order));
            // Rule 5: a read of the whole order precedes every unread append.
            if read.list.len() == order.elems.len() {
                let unread = order.unplaced.iter().filter(|&&(_, w)| w != t);
                out.edges
                    .extend(unread.map(|&(_, w)| (t, w, Dep { kind: RW, key })));
            }
        }
    }
}

/// One read micro-op of txn `t`: its key and the list it returned.
struct Read<'h> {
    t: u32,
    key: u32,
    list: &'h [i64],
}

/// A list as Elle writes it: `[1 2 3]`.
fn shown(l: &[i64]) -> String {
    let v: Vec<String> = l.iter().map(|v| v.to_string()).collect();
    format!("[{}]", v.join(" "))
}

/// A read that is not a prefix of the key's version order: incompatible
/// orders, or duplicate elements when it lists one twice.
fn not_a_prefix(n: &Namer, r: &Read, order: &KeyOrder) -> TxnAnomaly {
    let mut seen = rustc_hash::FxHashSet::default();
    let kind = if r.list.iter().all(|v| seen.insert(*v)) {
        super::INCOMPATIBLE_ORDER
    } else {
        super::DUPLICATE_ELEMENTS
    };
    let e = format!(
        "{} read key {} as {}, which is not a prefix of its longest read {}",
        n.t(r.t),
        n.k(r.key),
        shown(r.list),
        shown(&order.elems)
    );
    anomaly(n, kind, &[r.t], r.key, e)
}

/// The elements of the read that failed txns appended (with those txns).
/// A prefix holds only the order's aborted elements; any other read is
/// looked up element by element.
fn aborted_elements(
    n: &Namer,
    r: &Read,
    order: &KeyOrder,
    prefix: bool,
    writers: &FxHashMap<(u32, i64), Writer>,
) -> Vec<(i64, u32)> {
    if prefix {
        let failed = |&(_, w): &(i64, u32)| w != NONE && n.status(w) == Status::Fail;
        match order.any_failed {
            true => order.elems[..r.list.len()]
                .iter()
                .copied()
                .zip(order.writers.iter().copied())
                .filter(failed)
                .collect(),
            false => Vec::new(),
        }
    } else {
        r.list
            .iter()
            .filter_map(|&v| writers.get(&(r.key, v)).map(|w| (v, w.txn)))
            .filter(|&(_, w)| n.status(w) == Status::Fail)
            .collect()
    }
}

/// G1a: the read saw element `e`, appended by the failed txn `w`.
fn aborted_read(n: &Namer, r: &Read, e: i64, w: u32) -> TxnAnomaly {
    let text = format!(
        "{} read {} from key {}, which {} appended but then aborted (fail)",
        n.t(r.t),
        e,
        n.k(r.key),
        n.t(w)
    );
    anomaly(n, super::G1A, &[w, r.t], r.key, text)
}

/// G1b: the read ends in an append that its txn followed with another.
/// `last_writer`: the txn that appended the read's last element and whether
/// that was its last append to the key.
fn intermediate_read(n: &Namer, r: &Read, last_writer: Option<(u32, bool)>) -> Option<TxnAnomaly> {
    let last = r.list.last()?;
    let (txn, last_of_txn) = last_writer?;
    if txn == r.t || last_of_txn || n.status(txn) == Status::Fail {
        return None;
    }
    let text = format!(
        "{} read key {} as {}, ending in {}, an intermediate append of {} which appended to key {} again later",
        n.t(r.t), n.k(r.key), shown(r.list), last, n.t(txn), n.k(r.key)
    );
    Some(anomaly(n, super::G1B, &[txn, r.t], r.key, text))
}

/// The wr edge from the writer of the read's last element, and the rw edge
/// to the writer of the next one, for a read that is a prefix of the order.
fn read_edges(n: &Namer, r: &Read, order: &KeyOrder) -> impl Iterator<Item = (u32, u32, Dep)> {
    let (t, key, len) = (r.t, r.key, r.list.len());
    let live = |w: u32| w != NONE && w != t && n.status(w) != Status::Fail;
    let wr = (len > 0 && live(order.writers[len - 1]))
        .then(|| (order.writers[len - 1], t, Dep { kind: WR, key }));
    let rw = (len < order.elems.len() && live(order.writers[len]))
        .then(|| (t, order.writers[len], Dep { kind: RW, key }));
    wr.into_iter().chain(rw)
}

/// A txn's reads must agree with its own earlier reads and appends of the key.
fn internal(n: &Namer, t: u32, txn: &super::parse::Txn, out: &mut Vec<TxnAnomaly>) {
    let mops = n.h.mops(txn);
    if mops.len() < 2 {
        return;
    }
    // Per key: the full list when read before (`Some`), and appends since.
    let mut state: Vec<(u32, Option<Vec<i64>>, Vec<i64>)> = Vec::new();
    for m in mops {
        let key = m.key();
        let i = match state.iter().position(|s| s.0 == key) {
            Some(i) => i,
            None => {
                state.push((key, None, Vec::new()));
                state.len() - 1
            }
        };
        let (_, known, since) = &mut state[i];
        match *m {
            Mop::Append { elem, .. } => {
                // Elle's future read: an earlier read already held this
                // txn's own, later, append.
                if known.as_ref().is_some_and(|k| k.contains(&elem)) {
                    out.push(anomaly(
                        n,
                        super::FUTURE_READ,
                        &[t],
                        key,
                        format!(
                            "{} read key {} as {:?}, holding {}, which it appended only afterwards",
                            n.t(t),
                            n.k(key),
                            known.as_deref().unwrap_or_default(),
                            elem
                        ),
                    ));
                }
                since.push(elem);
            }
            Mop::Read { list, .. } => {
                let got: Vec<i64> = list.map_or(&[][..], |l| n.h.list(l)).to_vec();
                let ok = match known {
                    Some(k) => {
                        got.len() == k.len() + since.len()
                            && got.starts_with(k)
                            && got.ends_with(since)
                    }
                    None => got.ends_with(since),
                };
                if !ok {
                    let expected = match known {
                        Some(k) => format!("{:?}", [k.as_slice(), since.as_slice()].concat()),
                        None => format!("a list ending in {since:?}"),
                    };
                    out.push(anomaly(
                        n,
                        super::INTERNAL,
                        &[t],
                        key,
                        format!(
                            "{} read key {} as {:?}, but its own earlier micro-ops imply {}",
                            n.t(t),
                            n.k(key),
                            got,
                            expected
                        ),
                    ));
                }
                *known = Some(got);
                since.clear();
            }
            Mop::Write { .. } | Mop::Get { .. } => {}
        }
    }
}

/// Two committed txns that read the same version of a key and both appended
/// to it: each update was made without seeing the other's (Elle's lost update).
fn lost_updates(n: &Namer, out: &mut Vec<TxnAnomaly>) {
    let mut by_version: FxHashMap<(u32, usize), Vec<u32>> = FxHashMap::default();
    for (t, txn) in n.h.txns.iter().enumerate() {
        if txn.status != Status::Ok {
            continue;
        }
        let mut first_reads: Vec<(u32, usize)> = Vec::new();
        let mut touched: Vec<u32> = Vec::new();
        for m in n.h.mops(txn) {
            match *m {
                Mop::Read { key, list: Some(l) } if !touched.contains(&key) => {
                    touched.push(key);
                    first_reads.push((key, l.len as usize));
                }
                Mop::Append { key, .. } => {
                    touched.push(key);
                    if let Some(r) = first_reads.iter().position(|r| r.0 == key) {
                        by_version
                            .entry(first_reads.swap_remove(r))
                            .or_default()
                            .push(t as u32);
                    }
                }
                Mop::Read { key, .. } => touched.push(key),
                Mop::Write { .. } | Mop::Get { .. } => {}
            }
        }
    }
    let mut groups: Vec<_> = by_version
        .into_iter()
        .filter(|(_, ts)| ts.len() > 1)
        .collect();
    groups.sort_unstable();
    for ((key, len), ts) in groups {
        let names: Vec<String> = ts.iter().map(|&t| n.t(t)).collect();
        out.push(anomaly(n, super::LOST_UPDATE, &ts, key, format!(
            "{} all read key {} at the same version (length {}) and each appended to it: each update was made without seeing the others",
            names.join(", "), n.k(key), len
        )));
    }
}
