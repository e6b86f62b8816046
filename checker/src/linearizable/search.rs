//! Linearizability search for one partition (one key's operations).
//!
//! Wing & Gong's depth-first search with Lowe's memoization, over the list of
//! call and return events in history order:
//! - walk the list; at a call, try to linearize its op now (the model must
//!   accept it, and the resulting (linearized set, state) must be new), then
//!   lift the op out of the list and restart from the head;
//! - at a return whose op is not linearized yet, the current prefix cannot be
//!   extended: undo the last linearization and try the next candidate;
//! - the history is linearizable once every `ok` op is linearized.
//!   Indeterminate ops have no return event, so they may be linearized at any
//!   point after their call, or never.
//!
//! The linearized set is a bitset; `ok` ops are numbered by return order, so
//! the set is always "every op below `lo`, plus a small window" and is stored
//! compactly in the memo. Its hash is updated incrementally (Zobrist: one
//! random word per op, XORed in and out). The loop allocates only when the
//! memo arena grows, and never reads a clock: budgets arrive as an atomic flag.
//!
//! The memo also prunes by *dominance* over indeterminate ops: a configuration
//! with the same `ok` ops and state as a recorded one, and a superset of its
//! indeterminate ops, can do nothing the recorded one could not (those extra
//! ops may simply never take effect there), so it is not explored again.

mod memo;

use std::hash::{BuildHasher, Hash};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use rustc_hash::FxBuildHasher;

use crate::model::Model;
use memo::{Insert, Memo};

const NONE: u32 = u32::MAX;
const HEAD: u32 = 0;

/// One operation of a partition, as the search sees it.
#[derive(Clone, Debug)]
pub struct SearchOp<O> {
    /// The compiled op.
    pub op: O,
    /// Position of the call event in the history (orders events).
    pub call_at: usize,
    /// Position of the return event; `None` for indeterminate ops.
    pub return_at: Option<usize>,
}

/// When to give up.
pub struct Budget<'a> {
    /// Set (by a watchdog or a sibling that found a violation) to stop searching.
    pub stop: &'a AtomicBool,
    /// The search stops when this drops below `partition`.
    pub cutoff: &'a AtomicUsize,
    /// This partition's position in the check order.
    pub partition: usize,
    /// Maximum bytes for the memo table.
    pub memo_bytes: usize,
    /// Maximum configurations explored (steps of the search, each trying
    /// one op in one configuration, revisits included).
    pub max_explored: u64,
    /// Set by the caller (Ctrl-C) to stop every search.
    pub interrupt: Option<&'a AtomicBool>,
}

impl Budget<'_> {
    fn exhausted(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
            || self.cutoff.load(Ordering::Relaxed) < self.partition
            || self.interrupted()
    }

    fn interrupted(&self) -> bool {
        self.interrupt.is_some_and(|i| i.load(Ordering::Relaxed))
    }

    /// Why the search stopped early, and how far it had got.
    fn why_stopped(&self, explored: u64, prefix: usize, ok_ops: usize) -> String {
        let why = if explored > self.max_explored {
            format!("explored {} configurations, its budget", self.max_explored)
        } else if self.interrupted() {
            "interrupted".to_string()
        } else {
            "stopped: time limit reached or another key failed".to_string()
        };
        format!("{why}; the furthest linearizable prefix held {prefix} of {ok_ops} completed ops")
    }
}

/// How the search ended.
#[derive(Debug)]
pub enum Search<S> {
    /// A linearization exists.
    Valid,
    /// None exists; the furthest point the search reached.
    Invalid(Failure<S>),
    /// The budget ran out.
    Unknown(String),
}

/// Where the search got furthest before failing.
#[derive(Debug, Clone)]
pub struct Failure<S> {
    /// The op (index into the input ops) whose return could not be passed.
    pub op: usize,
    /// The longest linearizable prefix found: op indices in linearization order.
    pub prefix: Vec<usize>,
    /// Distinct states in which the op was refused at that point (at most 8).
    pub states: Vec<S>,
}

/// Statistics of one search.
#[derive(Debug, Clone, Copy, Default)]
pub struct SearchStats {
    /// Configurations recorded in the memo table.
    pub configurations: usize,
    /// Bytes the memo table held at the end.
    pub memo_bytes: usize,
    /// Steps of the search (what [`Budget::max_explored`] bounds).
    pub explored: u64,
}

/// What an entry of the event list is, for the walk looking for candidates.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A return (or the list's end).
    Return,
    /// The call of an `ok` op.
    OkCall,
    /// The call of an indeterminate op that may need to take effect.
    InfoCall,
    /// The call of a pure indeterminate op: never needs to take effect.
    Inert,
}

/// One entry of the event list.
#[derive(Clone, Copy)]
struct Entry {
    next: u32,
    prev: u32,
    /// The op id (ids, not input indices); NONE for the head and the end.
    op: u32,
    kind: Kind,
}

/// The event list: a doubly linked list over call/return entries in one
/// allocation, entry 0 the head and the last entry an end marker (a return
/// of no op), so walks and links test no bounds; with the return entry of
/// each op id.
struct Events {
    entries: Vec<Entry>,
    /// Per op id: its return entry, or NONE.
    return_entry: Vec<u32>,
}

impl Events {
    /// The list of `events` (position, op id, is a call), already in order;
    /// ids from `n_ok` on are indeterminate, and `pure` says which ops are.
    fn new(events: &[(usize, u32, bool)], n_ok: usize, pure: &[bool]) -> Events {
        let mut entries = Vec::with_capacity(events.len() + 2);
        let end = |next, prev| Entry {
            next,
            prev,
            op: NONE,
            kind: Kind::Return,
        };
        entries.push(end(1, NONE));
        let mut return_entry = vec![NONE; pure.len()];
        for (k, &(_, id, is_call)) in events.iter().enumerate() {
            let at = (k + 1) as u32;
            let kind = match (is_call, (id as usize) < n_ok) {
                (false, _) => Kind::Return,
                (true, true) => Kind::OkCall,
                (true, false) if pure[id as usize] => Kind::Inert,
                (true, false) => Kind::InfoCall,
            };
            entries.push(Entry {
                next: at + 1,
                prev: at - 1,
                op: id,
                kind,
            });
            if !is_call {
                return_entry[id as usize] = at;
            }
        }
        let last = entries.len() as u32;
        entries.push(end(NONE, last - 1));
        Events {
            entries,
            return_entry,
        }
    }

    #[inline]
    fn next(&self, e: u32) -> u32 {
        self.entries[e as usize].next
    }

    #[inline]
    fn op(&self, e: u32) -> u32 {
        self.entries[e as usize].op
    }

    /// Unlinks `e`, which is neither the head nor the end.
    #[inline]
    fn unlink(&mut self, e: u32) {
        let Entry { prev, next, .. } = self.entries[e as usize];
        self.entries[prev as usize].next = next;
        self.entries[next as usize].prev = prev;
    }

    #[inline]
    fn relink(&mut self, e: u32) {
        let Entry { prev, next, .. } = self.entries[e as usize];
        self.entries[prev as usize].next = e;
        self.entries[next as usize].prev = e;
    }

    /// Removes a call entry and its return, if any.
    #[inline(always)]
    fn lift(&mut self, call: u32) {
        self.unlink(call);
        let ret = self.return_entry[self.op(call) as usize];
        if ret != NONE {
            self.unlink(ret);
        }
    }

    /// Undoes [`Events::lift`] (in reverse order, as dancing links require).
    #[inline(always)]
    fn unlift(&mut self, call: u32) {
        let ret = self.return_entry[self.op(call) as usize];
        if ret != NONE {
            self.relink(ret);
        }
        self.relink(call);
    }
}

/// The linearized set: `ok` op ids `0..n_ok` in one bitset, indeterminate op
/// ids after them in another, with the bounds that make its encoding compact.
struct Linearized {
    ok: Vec<u64>,
    info: Vec<u64>,
    n_ok: usize,
    /// First word of `ok` that is not full.
    lo: usize,
    /// One past the last non-zero word of `ok`.
    hi: usize,
    /// XOR of [`zobrist`] over the `ok` ops in the set.
    hash: u64,
}

/// The Zobrist word of `ok` op `id`: splitmix64 of it, computed rather than
/// looked up, so a search sets up no table.
#[inline]
fn zobrist(id: usize) -> u64 {
    let mut z = (id as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Linearized {
    fn new(n_ok: usize, n_info: usize) -> Self {
        Linearized {
            ok: vec![0; n_ok.div_ceil(64)],
            info: vec![0; n_info.div_ceil(64)],
            n_ok,
            lo: 0,
            hi: 0,
            hash: 0,
        }
    }

    fn full_word(&self, w: usize) -> u64 {
        let bits = self.n_ok - w * 64;
        if bits >= 64 {
            u64::MAX
        } else {
            (1u64 << bits) - 1
        }
    }

    #[inline]
    fn contains(&self, id: usize) -> bool {
        if id >= self.n_ok {
            let i = id - self.n_ok;
            self.info[i / 64] & (1 << (i % 64)) != 0
        } else {
            self.ok[id / 64] & (1 << (id % 64)) != 0
        }
    }

    #[inline]
    fn set(&mut self, id: usize) {
        if id >= self.n_ok {
            let i = id - self.n_ok;
            self.info[i / 64] |= 1 << (i % 64);
            return;
        }
        self.hash ^= zobrist(id);
        let w = id / 64;
        self.ok[w] |= 1 << (id % 64);
        self.hi = self.hi.max(w + 1);
        while self.lo < self.ok.len() && self.ok[self.lo] == self.full_word(self.lo) {
            self.lo += 1;
        }
    }

    #[inline]
    fn clear(&mut self, id: usize) {
        if id >= self.n_ok {
            let i = id - self.n_ok;
            self.info[i / 64] &= !(1 << (i % 64));
            return;
        }
        self.hash ^= zobrist(id);
        let w = id / 64;
        self.ok[w] &= !(1 << (id % 64));
        self.lo = self.lo.min(w);
        while self.hi > 0 && self.ok[self.hi - 1] == 0 {
            self.hi -= 1;
        }
    }

    /// Writes the canonical encoding of the `ok` part of the set into `key`.
    #[inline]
    fn encode_ok(&self, key: &mut Vec<u64>) {
        key.clear();
        key.push(self.lo as u64);
        if self.hi > self.lo {
            key.extend_from_slice(&self.ok[self.lo..self.hi]);
        }
    }
}

/// Searches for a linearization of `ops` from the model's initial state.
///
/// Two reductions keep the search small without changing its answer:
/// - a *pure* op (a read) that is legal now is linearized now, and if that
///   fails the configuration fails: placing it later can only give the same
///   states, since it changes nothing;
/// - equal indeterminate ops are interchangeable, so they are linearized in
///   invocation order: one is tried only once its equal predecessor is in.
///
/// Long (about 140 lines) on purpose: it is the search loop, whose state
/// (stack, memo, linearized set, hash) stays in locals so the hot path
/// makes no calls it cannot inline; split, it measured slower.
pub fn search<M: Model>(
    model: &M,
    ops: &[SearchOp<M::Op>],
    budget: &Budget,
) -> (Search<M::State>, SearchStats) {
    let (order, n_ok, event_list) = number_ops(ops);
    let by_id: Vec<&M::Op> = order.iter().map(|&i| &ops[i].op).collect();
    let pure: Vec<bool> = by_id.iter().map(|op| model.pure(op)).collect();
    let mut events = Events::new(&event_list, n_ok, &pure);
    let twin = twins(&by_id, n_ok);
    let mut lin = Linearized::new(n_ok, ops.len() - n_ok);
    let mut memo: Memo<M::State> = Memo::new(budget.memo_bytes, lin.info.len(), ops.len());
    let mut key = Vec::new();
    let hasher = FxBuildHasher;

    let mut state = model.init();
    let mut stack: Vec<Frame<M::State>> = Vec::with_capacity(ops.len());
    // Each configuration's candidates are tried in two passes over the list:
    // ok ops first, then indeterminate ones, so that configurations with few
    // indeterminate ops are recorded first and dominate the rest.
    let mut info_pass = false;
    let mut remaining_ok = n_ok;
    let mut entry = events.next(HEAD);
    let mut furthest = Furthest::default();
    // Candidates tried (the budget's steps).
    let mut iterations: u64 = 0;

    let outcome = 'search: loop {
        if remaining_ok == 0 {
            break Search::Valid;
        }
        // Walk to the next candidate of this pass, or to a return. Each pass
        // considers its own kind of op; an indeterminate op waits for its
        // equal predecessor.
        let wanted = if info_pass {
            Kind::InfoCall
        } else {
            Kind::OkCall
        };
        let found = loop {
            let e = events.entries[entry as usize];
            if e.kind == Kind::Return {
                break e;
            }
            if e.kind == wanted {
                let twin = twin[e.op as usize];
                if !info_pass || twin == NONE || lin.contains(twin as usize) {
                    break e;
                }
            }
            entry = e.next;
        };
        'step: {
            if found.kind == Kind::Return {
                if !info_pass {
                    // Every ok candidate was tried; now the indeterminate ones.
                    info_pass = true;
                    entry = events.next(HEAD);
                    continue 'search;
                }
                if found.op != NONE {
                    // A return whose op is not linearized: note how far we got.
                    let id = found.op as usize;
                    furthest.observe(entry, id, &state, &stack, &events, || {
                        model.step(&state, by_id[id]).is_none()
                    });
                }
                break 'step;
            }
            iterations += 1;
            if (iterations & 0x3FF == 0 && budget.exhausted()) || iterations > budget.max_explored {
                let reason = budget.why_stopped(iterations, furthest.prefix.len(), n_ok);
                break 'search Search::Unknown(reason);
            }
            let id = found.op as usize;
            if let Some(next_state) = model.step(&state, by_id[id]) {
                lin.set(id);
                lin.encode_ok(&mut key);
                let hash = lin.hash ^ hasher.hash_one(&next_state);
                match memo.insert(hash, &key, &lin.info, &next_state) {
                    Insert::New => {
                        let previous = std::mem::replace(&mut state, next_state);
                        stack.push(Frame {
                            call: entry,
                            previous,
                            forced: pure[id],
                            info_pass,
                        });
                        events.lift(entry);
                        if id < n_ok {
                            remaining_ok -= 1;
                        }
                        entry = events.next(HEAD);
                        info_pass = false;
                        continue 'search;
                    }
                    // A forced op whose result already failed fails this configuration.
                    Insert::Seen if pure[id] => {
                        lin.clear(id);
                        break 'step;
                    }
                    Insert::Seen => lin.clear(id),
                    Insert::Full => {
                        break 'search Search::Unknown(format!(
                            "memo table reached its cap of {} MiB after {} configurations",
                            budget.memo_bytes >> 20,
                            memo.len()
                        ))
                    }
                }
            }
            entry = found.next;
            continue 'search;
        }
        // Backtrack: undo linearizations until one that was a free choice.
        loop {
            let Some(frame) = stack.pop() else {
                break 'search Search::Invalid(furthest.failure(&order));
            };
            furthest.kept = furthest.kept.min(stack.len());
            let id = events.op(frame.call) as usize;
            lin.clear(id);
            if id < n_ok {
                remaining_ok += 1;
            }
            state = frame.previous;
            events.unlift(frame.call);
            if !frame.forced {
                entry = events.next(frame.call);
                info_pass = frame.info_pass;
                break;
            }
        }
    };
    let stats = SearchStats {
        configurations: memo.len(),
        memo_bytes: memo.bytes(),
        explored: iterations,
    };
    (outcome, stats)
}

/// Numbers the ops — `ok` ops by return order, then indeterminate ops by call
/// order — and lists the call and return events in history order (a call
/// before a return at the same position). Returns (input index by id, number
/// of ok ops, events).
#[allow(clippy::type_complexity)]
fn number_ops<O>(ops: &[SearchOp<O>]) -> (Vec<usize>, usize, Vec<(usize, u32, bool)>) {
    let mut by_call: Vec<usize> = (0..ops.len()).collect();
    if !ops.is_sorted_by_key(|o| o.call_at) {
        by_call.sort_unstable_by_key(|&i| ops[i].call_at);
    }
    let mut by_return: Vec<(usize, usize)> = ops
        .iter()
        .enumerate()
        .filter_map(|(i, o)| o.return_at.map(|at| (at, i)))
        .collect();
    by_return.sort_unstable();
    let n_ok = by_return.len();
    let mut order: Vec<usize> = by_return.iter().map(|&(_, i)| i).collect();
    order.extend(
        by_call
            .iter()
            .copied()
            .filter(|&i| ops[i].return_at.is_none()),
    );
    let mut id_of = vec![0u32; ops.len()];
    for (id, &i) in order.iter().enumerate() {
        id_of[i] = id as u32;
    }
    let mut events = Vec::with_capacity(ops.len() + n_ok);
    let mut returns = by_return.iter().peekable();
    for &i in &by_call {
        while let Some(&&(at, r)) = returns.peek() {
            if at >= ops[i].call_at {
                break;
            }
            events.push((at, id_of[r], false));
            returns.next();
        }
        events.push((ops[i].call_at, id_of[i], true));
    }
    events.extend(returns.map(|&(at, r)| (at, id_of[r], false)));
    (order, n_ok, events)
}

/// One linearization on the search path.
struct Frame<S> {
    /// The op's call entry.
    call: u32,
    /// The state before it.
    previous: S,
    /// It was pure and legal, so linearized without trying alternatives.
    forced: bool,
    /// It was chosen in the pass over indeterminate ops.
    info_pass: bool,
}

/// For each indeterminate op id, the previous indeterminate op (by call order)
/// that is equal to it, or NONE.
fn twins<O: Eq + Hash>(by_id: &[&O], n_ok: usize) -> Vec<u32> {
    let mut last: rustc_hash::FxHashMap<&O, u32> = Default::default();
    let mut twin = vec![NONE; by_id.len()];
    for id in n_ok..by_id.len() {
        if let Some(prev) = last.insert(by_id[id], id as u32) {
            twin[id] = prev;
        }
    }
    twin
}

/// The furthest return the search could not pass, with what it knew there.
struct Furthest<S> {
    rank: u32,
    op: u32,
    prefix: Vec<u32>,
    /// How much of `prefix` is still the bottom of the stack: the least
    /// depth the stack fell to since `prefix` was taken. Only the rest is
    /// copied when the furthest point moves (often, in a failing search).
    kept: usize,
    states: Vec<S>,
}

impl<S> Default for Furthest<S> {
    fn default() -> Self {
        Furthest {
            rank: 0,
            op: NONE,
            prefix: Vec::new(),
            kept: 0,
            states: Vec::new(),
        }
    }
}

impl<S: Clone + Eq + Hash> Furthest<S> {
    #[inline]
    fn observe(
        &mut self,
        rank: u32,
        id: usize,
        state: &S,
        stack: &[Frame<S>],
        events: &Events,
        refused: impl FnOnce() -> bool,
    ) {
        if rank < self.rank || (rank == self.rank && self.states.len() >= 8) {
            return;
        }
        if rank > self.rank || self.op == NONE {
            self.rank = rank;
            self.op = id as u32;
            self.prefix.truncate(self.kept);
            let taken = stack[self.kept..].iter().map(|f| events.op(f.call));
            self.prefix.extend(taken);
            self.kept = stack.len();
            self.states.clear();
        }
        if refused() && !self.states.contains(state) {
            self.states.push(state.clone());
        }
    }

    fn failure(self, order: &[usize]) -> Failure<S> {
        Failure {
            op: order[self.op as usize],
            prefix: self.prefix.iter().map(|&id| order[id as usize]).collect(),
            states: self.states,
        }
    }
}
