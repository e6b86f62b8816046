//! Generated register histories for the benchmarks (shared by the
//! `linearizability` bench and the `genhist` example).
//!
//! Histories are produced by *simulating* a real register (or one register per
//! key) driven by concurrent clients, so they are linearizable by
//! construction:
//! - every client op gets an interval `[invoke, complete]` and takes effect at
//!   one random instant strictly inside it;
//! - an op that times out (`info`) takes effect at a random instant after its
//!   invocation (possibly after its `info` completion) or never, and its
//!   process is retired: the worker continues under process id
//!   `old + concurrency`, as Jepsen does;
//! - effects are applied in time order to the register, which decides what a
//!   read returns and whether a cas succeeds (`ok`) or not (`fail`).
//!
//! `etcd-bad` then changes the value of one `ok` read to a stale or
//! never-written value that no linearization allows (when some read admits
//! one; otherwise just another value), which makes most of them
//! non-linearizable.
//!
//! No randomness library: a SplitMix64 generator keeps every history a pure
//! function of `(kind, seed)`.
#![allow(dead_code)]

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fmt;
use std::io::{self, Write};
use std::str::FromStr;

use checker::history::{Op, OpType, Process};
use serde_json::{json, Value};

/// One millisecond in the histories' nanosecond clock.
const MS: u64 = 1_000_000;

/// A small, fast, seedable generator (SplitMix64).
pub struct Rng(u64);

impl Rng {
    /// A generator for `seed`; different seeds give unrelated streams.
    pub fn new(seed: u64) -> Self {
        let mut rng = Rng(seed.wrapping_mul(0x2545_F491_4F6C_DD1D) ^ 0x9E37_79B9_7F4A_7C15);
        rng.next_u64();
        rng
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        ((self.next_u64() >> 11) as f64) < p * (1u64 << 53) as f64
    }
}

/// The kinds of history the benchmarks use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Jepsen etcd-style cas-register history, linearizable.
    Etcd,
    /// The same with one impossible (stale or never-written) read injected:
    /// not linearizable whenever some read admits such a value.
    EtcdBad,
    /// The same with one read changed to another value at random: often
    /// still linearizable, sometimes a hard invalid case.
    EtcdBadAny,
    /// 1,000,000 ops over 1,000 keys, 20 processes, 1% info.
    Multikey,
    /// 10,000 ops on one key, 10 processes, 1% info.
    Long,
}

impl Kind {
    /// Every kind, by command-line name.
    pub const ALL: [Kind; 5] = [
        Kind::Etcd,
        Kind::EtcdBad,
        Kind::EtcdBadAny,
        Kind::Multikey,
        Kind::Long,
    ];

    /// The command-line name.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Etcd => "etcd",
            Kind::EtcdBad => "etcd-bad",
            Kind::EtcdBadAny => "etcd-bad-any",
            Kind::Multikey => "multikey",
            Kind::Long => "long",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Kind {
    type Err = String;
    fn from_str(s: &str) -> Result<Kind, String> {
        Kind::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| {
                let names: Vec<_> = Kind::ALL.iter().map(|k| k.name()).collect();
                format!("unknown kind {s:?}; expected one of {}", names.join(", "))
            })
    }
}

/// A register operation with its argument.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Func {
    /// Read the register.
    Read,
    /// Write a value.
    Write(u8),
    /// Compare-and-set `[from, to]`.
    Cas(u8, u8),
}

/// How a simulated op completed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    /// Took effect; reads carry the value read.
    Ok,
    /// A cas whose `from` did not match: no effect.
    Fail,
    /// Timed out: took effect later or never.
    Info,
}

/// One simulated client operation.
#[derive(Clone, Debug)]
pub struct SimOp {
    /// The process that ran it.
    pub process: u64,
    /// The key, for multi-key histories.
    pub key: Option<u32>,
    /// What it did.
    pub func: Func,
    /// Invocation time (ns).
    pub invoke: u64,
    /// Completion time (ns).
    pub complete: u64,
    /// When it took effect, if ever.
    pub effect: Option<u64>,
    /// How it completed.
    pub end: End,
    /// For an `ok` read: the value read (`None` = nil).
    pub read: Option<u8>,
}

/// A generated history: the simulated ops (in invocation order) and facts
/// about it.
#[derive(Clone, Debug)]
pub struct Generated {
    /// The ops.
    pub ops: Vec<SimOp>,
    /// Whether it is linearizable by construction (false for `etcd-bad`:
    /// probably not, though the injected read may happen to be explainable).
    pub valid_by_construction: bool,
    /// For `etcd-bad`: the index in `ops` of the falsified read.
    pub injected: Option<usize>,
}

/// The shape of a simulation.
struct Params {
    ops: usize,
    keys: Option<u32>,
    concurrency: u64,
    /// Exactly this many ops time out, or each with this probability.
    info: Info,
    values: u8,
    /// Duration of a completed op (ns, inclusive range).
    duration: (u64, u64),
    /// Pause between a process's ops (ns, inclusive range).
    think: (u64, u64),
    /// Time from invoke to the `info` completion (ns, inclusive range).
    timeout: (u64, u64),
    /// Probability that a timed-out op never takes effect.
    never: f64,
}

enum Info {
    Exactly(usize),
    Probability(f64),
}

/// Generates a history of `kind` for `seed`.
pub fn generate(kind: Kind, seed: u64) -> Generated {
    // The etcd kinds share their base history: `etcd-bad` seed s is `etcd`
    // seed s with one read falsified.
    let family: u64 = match kind {
        Kind::Etcd | Kind::EtcdBad | Kind::EtcdBadAny => 0,
        Kind::Multikey => 1,
        Kind::Long => 2,
    };
    let mut rng = Rng::new(seed ^ (family << 56));
    match kind {
        Kind::Etcd | Kind::EtcdBad | Kind::EtcdBadAny => {
            // 5-7 workers and 10-20 timeouts: 15-25 process ids, as in
            // Jepsen's etcd tests.
            let ops = rng.range(70, 90) as usize;
            let concurrency = rng.range(5, 7);
            let info = rng.range(10, 20.min(25 - concurrency)) as usize;
            let params = Params {
                ops,
                keys: None,
                concurrency,
                info: Info::Exactly(info),
                values: 5,
                duration: (MS, 10 * MS),
                think: (0, MS),
                timeout: (20 * MS, 100 * MS),
                never: 0.4,
            };
            let mut ops = simulate(&params, &mut rng);
            let injected = match kind {
                Kind::EtcdBad => inject_bad_read(&mut ops, params.values, &mut rng),
                Kind::EtcdBadAny => inject_other_read(&mut ops, params.values, &mut rng),
                _ => None,
            };
            Generated {
                ops,
                valid_by_construction: kind == Kind::Etcd,
                injected,
            }
        }
        Kind::Multikey => multikey_with(&mut rng, 1_000_000, 1_000),
        Kind::Long => {
            let params = Params {
                ops: 10_000,
                keys: None,
                concurrency: 10,
                info: Info::Probability(0.01),
                values: 5,
                duration: (MS, 10 * MS),
                think: (0, MS),
                timeout: (20 * MS, 100 * MS),
                never: 0.4,
            };
            Generated {
                ops: simulate(&params, &mut rng),
                valid_by_construction: true,
                injected: None,
            }
        }
    }
}

/// A `multikey` history of another size: `ops` ops over `keys` keys, with
/// the same 20 processes, 1% info and values as `multikey` (which is
/// `generate_multikey(seed, 1_000_000, 1_000)`).
#[allow(dead_code)] // Used by the genhist example, not by every includer.
pub fn generate_multikey(seed: u64, ops: usize, keys: u32) -> Generated {
    let mut rng = Rng::new(seed ^ (1 << 56));
    multikey_with(&mut rng, ops, keys)
}

fn multikey_with(rng: &mut Rng, ops: usize, keys: u32) -> Generated {
    let params = Params {
        ops,
        keys: Some(keys),
        concurrency: 20,
        info: Info::Probability(0.01),
        values: 5,
        duration: (MS, 10 * MS),
        think: (0, MS),
        timeout: (20 * MS, 100 * MS),
        never: 0.4,
    };
    Generated {
        ops: simulate(&params, rng),
        valid_by_construction: true,
        injected: None,
    }
}

/// Schedules the clients, then applies the effects in time order.
// Long on purpose: one simulation (timeouts, schedule, effects in time order) over shared per-op state.
fn simulate(p: &Params, rng: &mut Rng) -> Vec<SimOp> {
    // Which ops time out.
    let mut timed_out = vec![false; p.ops];
    match p.info {
        Info::Exactly(n) => {
            // A partial Fisher-Yates shuffle picks n distinct ops.
            let mut order: Vec<usize> = (0..p.ops).collect();
            for i in 0..n.min(p.ops) {
                let j = i + rng.below((p.ops - i) as u64) as usize;
                order.swap(i, j);
                timed_out[order[i]] = true;
            }
        }
        Info::Probability(q) => {
            for t in &mut timed_out {
                *t = rng.chance(q);
            }
        }
    }

    // Schedule: the worker that is free first invokes the next op.
    let mut free: BinaryHeap<Reverse<(u64, u64)>> =
        (0..p.concurrency).map(|w| Reverse((0, w))).collect();
    let mut process: Vec<u64> = (0..p.concurrency).collect();
    let mut ops = Vec::with_capacity(p.ops);
    for &info in &timed_out {
        let Reverse((at, worker)) = free.pop().expect("at least one worker");
        let invoke = at + rng.range(p.think.0, p.think.1);
        let func = match rng.below(3) {
            0 => Func::Read,
            1 => Func::Write(rng.below(u64::from(p.values)) as u8),
            _ => Func::Cas(
                rng.below(u64::from(p.values)) as u8,
                rng.below(u64::from(p.values)) as u8,
            ),
        };
        let key = p.keys.map(|k| rng.below(u64::from(k)) as u32);
        let (complete, effect, end) = if info {
            let complete = invoke + rng.range(p.timeout.0, p.timeout.1);
            // Effect anywhere from just after the invocation to well after
            // the timeout was reported, or never.
            let effect =
                (!rng.chance(p.never)).then(|| invoke + 1 + rng.below((complete - invoke) * 3 / 2));
            (complete, effect, End::Info)
        } else {
            let duration = rng.range(p.duration.0.max(2), p.duration.1.max(2));
            // Strictly inside the interval.
            let effect = invoke + 1 + rng.below(duration - 1);
            (invoke + duration, Some(effect), End::Ok)
        };
        ops.push(SimOp {
            process: process[worker as usize],
            key,
            func,
            invoke,
            complete,
            effect,
            end,
            read: None,
        });
        if info {
            // Jepsen's rule: a process whose op is indeterminate is retired.
            process[worker as usize] += p.concurrency;
        }
        free.push(Reverse((complete, worker)));
    }

    // The register(s): apply every effect in time order.
    let mut effects: Vec<(u64, usize)> = ops
        .iter()
        .enumerate()
        .filter_map(|(i, op)| op.effect.map(|t| (t, i)))
        .collect();
    effects.sort_unstable();
    let mut state: Vec<Option<u8>> = vec![None; p.keys.unwrap_or(1) as usize];
    for (_, i) in effects {
        let op = &mut ops[i];
        let cell = &mut state[op.key.unwrap_or(0) as usize];
        match op.func {
            Func::Read => op.read = *cell,
            Func::Write(v) => *cell = Some(v),
            Func::Cas(from, to) => {
                if *cell == Some(from) {
                    *cell = Some(to);
                } else if op.end == End::Ok {
                    op.end = End::Fail;
                } else {
                    // A timed-out cas that found another value: no effect.
                    op.effect = None;
                }
            }
        }
    }
    ops
}

/// The value an op writes if it takes effect (a write, or a cas's `to`).
fn written(op: &SimOp) -> Option<u8> {
    match (op.func, op.end) {
        (_, End::Fail) | (Func::Read, _) => None,
        (Func::Write(v), _) | (Func::Cas(_, v), _) => Some(v),
    }
}

/// Whether reading `v` in `read`'s interval is impossible in every
/// linearization: every op that may have written `v` before the read
/// completed did complete `ok`, and was certainly overwritten by another
/// `ok` op (writing something else) that began after it completed and
/// completed before the read began. (So the last write before any point of
/// the read's interval is not of `v`; nor is the initial nil.)
fn stale(ops: &[SimOp], read: &SimOp, v: u8) -> bool {
    ops.iter()
        .filter(|w| w.invoke < read.complete && written(w) == Some(v))
        .all(|w| {
            w.end == End::Ok
                && ops.iter().any(|x| {
                    x.end == End::Ok
                        && written(x).is_some_and(|u| u != v)
                        && x.invoke > w.complete
                        && x.complete < read.invoke
                })
        })
}

/// Falsifies one `ok` read, preferably in the second half of the history:
/// it now returns a stale or never-written value that no linearization
/// allows (see [`stale`]); if no read admits one, a value other than the one
/// the register held (which may still be explainable). Returns its index.
fn inject_bad_read(ops: &mut [SimOp], values: u8, rng: &mut Rng) -> Option<usize> {
    let reads: Vec<usize> = (0..ops.len())
        .filter(|&i| ops[i].func == Func::Read && ops[i].end == End::Ok)
        .collect();
    let candidates = |from: usize| -> Vec<(usize, u8)> {
        reads
            .iter()
            .filter(|&&i| i >= from)
            .flat_map(|&i| (0..values).map(move |v| (i, v)))
            .filter(|&(i, v)| ops[i].read != Some(v) && stale(ops, &ops[i], v))
            .collect()
    };
    let mut pool = candidates(ops.len() / 2);
    if pool.is_empty() {
        pool = candidates(0);
    }
    if let Some(&(i, v)) = pool.get(rng.below(pool.len().max(1) as u64) as usize) {
        ops[i].read = Some(v);
        return Some(i);
    }
    inject_other_read(ops, values, rng)
}

/// Changes one `ok` read in the second half of the history (if any, else
/// anywhere) to a value other than the one the register held. Returns its
/// index.
fn inject_other_read(ops: &mut [SimOp], values: u8, rng: &mut Rng) -> Option<usize> {
    let reads: Vec<usize> = (0..ops.len())
        .filter(|&i| ops[i].func == Func::Read && ops[i].end == End::Ok)
        .collect();
    let late: Vec<usize> = reads
        .iter()
        .copied()
        .filter(|&i| i >= ops.len() / 2)
        .collect();
    let pool = if late.is_empty() { &reads } else { &late };
    let i = *pool.get(rng.below(pool.len().max(1) as u64) as usize)?;
    let actual = ops[i].read;
    let others: Vec<u8> = (0..values).filter(|&v| Some(v) != actual).collect();
    ops[i].read = Some(others[rng.below(others.len() as u64) as usize]);
    Some(i)
}

/// One line of the history: an invocation or a completion of `ops[op]`.
#[derive(Clone, Copy)]
struct Event {
    time: u64,
    completion: bool,
    op: usize,
}

/// The events in history order: by time, completions before invocations at
/// equal times (so a process's next invocation follows its completion).
fn events(ops: &[SimOp]) -> Vec<Event> {
    let mut events = Vec::with_capacity(ops.len() * 2);
    for (i, op) in ops.iter().enumerate() {
        events.push(Event {
            time: op.invoke,
            completion: false,
            op: i,
        });
        events.push(Event {
            time: op.complete,
            completion: true,
            op: i,
        });
    }
    events.sort_unstable_by_key(|e| (e.time, !e.completion, e.op));
    events
}

fn f_name(func: Func) -> &'static str {
    match func {
        Func::Read => "read",
        Func::Write(_) => "write",
        Func::Cas(..) => "cas",
    }
}

fn op_type(op: &SimOp, e: &Event) -> OpType {
    match (e.completion, op.end) {
        (false, _) => OpType::Invoke,
        (true, End::Ok) => OpType::Ok,
        (true, End::Fail) => OpType::Fail,
        (true, End::Info) => OpType::Info,
    }
}

fn value_of(op: &SimOp, e: &Event) -> Value {
    match op.func {
        Func::Read if e.completion && op.end == End::Ok => {
            op.read.map_or(Value::Null, |v| json!(v))
        }
        Func::Read => Value::Null,
        Func::Write(v) => json!(v),
        Func::Cas(a, b) => json!([a, b]),
    }
}

impl Generated {
    /// The history as checker ops (for in-process benchmarks).
    pub fn history(&self) -> Vec<Op> {
        events(&self.ops)
            .iter()
            .enumerate()
            .map(|(index, e)| {
                let op = &self.ops[e.op];
                Op {
                    index: index as u64,
                    time: Some(e.time),
                    process: Process::Client(op.process),
                    op_type: op_type(op, e),
                    f: f_name(op.func).to_string(),
                    key: op.key.map(|k| k.to_string()),
                    value: value_of(op, e),
                    node: None,
                    error: None,
                }
            })
            .collect()
    }

    /// Writes the history as JSONL (the format of `checker::history`).
    pub fn write_jsonl(&self, out: impl Write) -> io::Result<()> {
        let mut out = io::BufWriter::with_capacity(1 << 20, out);
        for (index, e) in events(&self.ops).iter().enumerate() {
            let op = &self.ops[e.op];
            write!(
                out,
                "{{\"index\":{index},\"time\":{},\"process\":{},\"type\":\"{}\",\"f\":\"{}\"",
                e.time,
                op.process,
                op_type(op, e),
                f_name(op.func)
            )?;
            if let Some(k) = op.key {
                write!(out, ",\"key\":\"{k}\"")?;
            }
            writeln!(out, ",\"value\":{}}}", value_of(op, e))?;
        }
        out.flush()
    }

    /// Facts about the history, for a one-line summary.
    pub fn stats(&self) -> Stats {
        let mut open = 0usize;
        let mut max_open = 0usize;
        let mut sum_open = 0usize;
        let evs = events(&self.ops);
        for e in &evs {
            if e.completion {
                open -= 1;
            } else {
                open += 1;
                max_open = max_open.max(open);
                sum_open += open;
            }
        }
        let mut processes: Vec<u64> = self.ops.iter().map(|o| o.process).collect();
        processes.sort_unstable();
        processes.dedup();
        let count = |end: End| self.ops.iter().filter(|o| o.end == end).count();
        Stats {
            ops: self.ops.len(),
            processes: processes.len(),
            ok: count(End::Ok),
            fail: count(End::Fail),
            info: count(End::Info),
            max_concurrent: max_open,
            mean_concurrent_at_invoke: sum_open as f64 / self.ops.len().max(1) as f64,
        }
    }
}

/// A summary of a generated history.
#[derive(Clone, Debug)]
pub struct Stats {
    /// Client ops.
    pub ops: usize,
    /// Distinct process ids.
    pub processes: usize,
    /// Ops completed `ok`.
    pub ok: usize,
    /// Ops completed `fail` (cas whose `from` did not match).
    pub fail: usize,
    /// Ops completed `info` (timed out).
    pub info: usize,
    /// Most ops open at once (invoked, not yet completed or timed out).
    pub max_concurrent: usize,
    /// Open ops, counting the new one, averaged over invocations.
    pub mean_concurrent_at_invoke: f64,
}

impl fmt::Display for Stats {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "{} ops ({} ok, {} fail, {} info), {} processes, concurrency max {} mean {:.1}",
            self.ops,
            self.ok,
            self.fail,
            self.info,
            self.processes,
            self.max_concurrent,
            self.mean_concurrent_at_invoke
        )
    }
}
