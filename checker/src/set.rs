//! The set checker: lost, stale, unexpected and duplicated elements of a
//! grow-only set (after Jepsen's `set-full`).
//!
//! # Workload
//!
//! - `add` with `value` = the element (any JSON value; its JSON text is its
//!   identity, so `1` and `1.0` are different elements);
//! - `read` with an `ok` completion whose `value` is the list of elements
//!   present (`null` reads as the empty set).
//!
//! Ops may carry `key`: each key is an independent set, analysed and reported
//! separately. Ops with any other `f` are ignored (but must still pair up).
//!
//! # What each element's history means
//!
//! Order is the order of the history (indices), never `time`, which only
//! labels explanations and latencies. A read "began after" an event when its
//! invocation comes later in the history.
//!
//! An element is *known* to be in the set from the earlier of the completion
//! of an acknowledged (`ok`) add of it and the completion of the first read
//! that contains it. From then on, every `ok` read that *began* after that
//! point is evidence: present if it lists the element, absent otherwise.
//! Then each known element is exactly one of:
//!
//! - **never-read**: no read began after it was known (informational);
//! - **lost** (`lost-write`): some read that began after it was known, and
//!   after the last read that contained it had completed, does not contain it
//!   — so every read from then on, including the final read, misses it;
//! - **stale** (`stale-read`): some read that began after it was known misses
//!   it, but it is not lost: a later read (or one still running when the last
//!   read that missed it began) contains it again;
//! - **stable**: every read that began after it was known contains it.
//!
//! An element whose adds were all indeterminate (`info`, or never completed)
//! and that no read ever contained is unresolved: that is allowed. One that a
//! read did contain is also **recovered** (informational, and classified as
//! above from the first read that showed it).
//!
//! A read that lists an element for which no add was ever invoked, or whose
//! every add *failed* (a definite failure must not take effect), reports an
//! **unexpected** element (`unexpected-element`); a read listing an element
//! twice reports a **duplicated** one (`duplicate-elements`).
//!
//! # Verdict
//!
//! Invalid if any key has a lost, stale, unexpected or duplicated element.
//! Otherwise unknown if some key has no `ok` read that began after its last
//! add op (invocation or completion) — the final state was never observed, so
//! lost writes could not be ruled out — or if the history holds no set ops at
//! all; valid otherwise.
//!
//! # Latencies
//!
//! *Stable latency* (stable and stale elements): from the moment the element
//! was known to the completion of the last read that began after that and
//! missed it (0 for an element no such read missed) — after that point every
//! read that began saw it. *Lost latency* (lost elements): from the moment it
//! was known to the completion of the last read that contained it (0 if none
//! did). Both need recorded `time`s; elements without them are left out.
//!
//! # Cost
//!
//! One pass over the reads, hashing each listed element once (a second pass
//! only when some element is stale, to explain it); memory is linear in the
//! number of distinct elements and ops, never in the total size of the reads.
//! Keys are analysed in parallel.

use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use rustc_hash::FxHashMap;
use serde::Serialize;
use serde_json::Value;

use crate::history::{Op, OpType};
use crate::outcome::{details_of, Anomaly, CheckOutcome, CheckerResult};
use crate::pair::{PairError, Pairer, Step};
use crate::verdict::Validity;

/// Anomaly kind: an acknowledged element missing from the final reads.
pub const LOST_WRITE: &str = "lost-write";
/// Anomaly kind: a read missing an element known to be present before it began.
pub const STALE_READ: &str = "stale-read";
/// Anomaly kind: a read lists an element never (successfully) added.
pub const UNEXPECTED_ELEMENT: &str = "unexpected-element";
/// Anomaly kind: a read lists an element more than once.
pub const DUPLICATE_ELEMENTS: &str = "duplicate-elements";

/// Options of [`check_set_with`].
#[derive(Clone, Debug)]
pub struct SetOptions {
    /// At most this many elements per list, and anomalies per kind and key,
    /// are reported; the counts are always complete.
    pub max_listed: usize,
    /// At most this many lost, and as many stale, elements per key are
    /// kept as report rows ([`SetResult::rows`]).
    pub max_rows: usize,
    /// Worker threads over keys (at least 1).
    pub threads: usize,
}

/// How many lost (and stale) elements per key a report tabulates.
pub const ROWS_TABULATED: usize = 200;

impl Default for SetOptions {
    fn default() -> Self {
        SetOptions {
            max_listed: 32,
            max_rows: ROWS_TABULATED,
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
        }
    }
}

/// A history the set checker cannot interpret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SetError {
    /// Invocations and completions do not pair up.
    #[error(transparent)]
    Pair(#[from] PairError),
    /// An `ok` read whose value is not a list of elements.
    #[error("op {index}: a set read must return a list of elements (or null), got {got}")]
    MalformedRead {
        /// History index of the read's completion.
        index: usize,
        /// The value found, abbreviated.
        got: String,
    },
    /// A client op that is neither an add nor a read.
    #[error("op {index}: a set history's client ops are \"add\" and \"read\", got f {f:?}")]
    UnknownFunction {
        /// History index of the invocation.
        index: usize,
        /// Its function.
        f: String,
    },
}

impl SetError {
    /// The history index of the op at fault.
    pub fn index(&self) -> usize {
        match self {
            SetError::Pair(e) => e.index(),
            SetError::MalformedRead { index, .. } | SetError::UnknownFunction { index, .. } => {
                *index
            }
        }
    }
}

/// How many elements fell into each outcome.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SetCounts {
    /// Distinct elements some add was invoked for.
    pub attempted: usize,
    /// Distinct elements with an acknowledged (`ok`) add.
    pub acknowledged: usize,
    /// Distinct elements whose adds were all indeterminate (`info` or unfinished).
    pub indeterminate: usize,
    /// Known elements every later read contained.
    pub stable: usize,
    /// Known elements some later read missed, seen again afterwards.
    pub stale: usize,
    /// Known elements missing from every read from some point to the end.
    pub lost: usize,
    /// Known elements no read began after.
    pub never_read: usize,
    /// Indeterminate elements that some read contained.
    pub recovered: usize,
    /// Elements read but never (successfully) added.
    pub unexpected: usize,
    /// Elements some read listed more than once.
    pub duplicated: usize,
    /// `ok` reads.
    pub reads: usize,
}

impl SetCounts {
    fn absorb(&mut self, o: &SetCounts) {
        self.attempted += o.attempted;
        self.acknowledged += o.acknowledged;
        self.indeterminate += o.indeterminate;
        self.stable += o.stable;
        self.stale += o.stale;
        self.lost += o.lost;
        self.never_read += o.never_read;
        self.recovered += o.recovered;
        self.unexpected += o.unexpected;
        self.duplicated += o.duplicated;
        self.reads += o.reads;
    }
}

/// Some elements of an outcome: the first few (in order of their first add,
/// then of first appearance in a read) and how many there are in all.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ElementList {
    /// How many elements have this outcome.
    pub total: usize,
    /// The first `max_listed` of them.
    pub elements: Vec<Value>,
}

/// Quantiles of a latency distribution, in milliseconds.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LatencySummary {
    /// How many elements were measured.
    pub count: usize,
    /// Median.
    pub p50_ms: f64,
    /// 95th percentile.
    pub p95_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Maximum.
    pub max_ms: f64,
}

impl LatencySummary {
    /// Nearest-rank quantiles of `nanos`; `None` when empty.
    fn of(mut nanos: Vec<u64>) -> Option<LatencySummary> {
        if nanos.is_empty() {
            return None;
        }
        nanos.sort_unstable();
        let n = nanos.len();
        let q = |p: f64| {
            let rank = ((p * n as f64).ceil() as usize).clamp(1, n);
            nanos[rank - 1] as f64 / 1e6
        };
        Some(LatencySummary {
            count: n,
            p50_ms: q(0.50),
            p95_ms: q(0.95),
            p99_ms: q(0.99),
            max_ms: nanos[n - 1] as f64 / 1e6,
        })
    }
}

/// One anomaly, explained.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SetAnomaly {
    /// docs/DESIGN.md's name: `lost-write`, `stale-read`, `unexpected-element` or
    /// `duplicate-elements`.
    pub kind: &'static str,
    /// The set's key, if the history has keys.
    pub key: Option<String>,
    /// The element.
    pub element: Value,
    /// History indices that show it, ascending: the add's invocation and
    /// completion, and the reads (invocation and completion) that matter.
    pub ops: Vec<u64>,
    /// When it happened (ns): the acknowledgement of a lost element, the start
    /// of the first stale read, the start of the offending read otherwise.
    pub time: Option<u64>,
    /// The node that acknowledged the add (lost, stale), or that answered the
    /// offending read (unexpected, duplicated).
    pub node: Option<String>,
    /// What happened, in words.
    pub explanation: String,
}

/// The analysis of one key's set.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SetKeyResult {
    /// The key (`None` for a history without keys).
    pub key: Option<String>,
    /// This key's verdict.
    pub valid: Validity,
    /// Why the verdict is unknown, when it is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unknown_reason: Option<String>,
    /// Outcome counts.
    pub counts: SetCounts,
    /// Lost elements.
    pub lost: ElementList,
    /// Stale elements.
    pub stale: ElementList,
    /// Never-read elements.
    pub never_read: ElementList,
    /// Recovered elements.
    pub recovered: ElementList,
    /// Unexpected elements.
    pub unexpected: ElementList,
    /// Duplicated elements.
    pub duplicated: ElementList,
    /// Stable latency of stable and stale elements.
    pub stable_latency: Option<LatencySummary>,
    /// Lost latency of lost elements.
    pub lost_latency: Option<LatencySummary>,
}

/// The set checker's result: see the module docs.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SetResult {
    /// The verdict over all keys.
    pub valid: Validity,
    /// Counts summed over keys.
    pub counts: SetCounts,
    /// Stable latency over all keys.
    pub stable_latency: Option<LatencySummary>,
    /// Lost latency over all keys.
    pub lost_latency: Option<LatencySummary>,
    /// Why the verdict is unknown when no key was there to judge.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Per key, in key order (numbers numerically, then strings).
    pub keys: Vec<SetKeyResult>,
    /// The anomalies: per key, by kind (lost, stale, unexpected, duplicated),
    /// at most `max_listed` per kind and key.
    pub anomalies: Vec<SetAnomaly>,
    /// The lost and stale elements a report tabulates: per key, lost then
    /// stale, at most `max_rows` per kind and key. Not in the serialized
    /// result: [`SetResult::outcome`] stores them when `anomalies` lists
    /// only a sample of them.
    #[serde(skip)]
    pub rows: Vec<SetAnomaly>,
}

impl SetResult {
    /// The stored outcome of this result, named `checker`: the counts of the
    /// four anomaly kinds, the listed anomalies, the result itself in the
    /// details, and the report's rows of lost and stale elements when the
    /// listed ones are only a sample of them.
    pub fn outcome(&self, checker: &str) -> CheckOutcome {
        let counts = &self.counts;
        let mut result = CheckerResult::new(self.valid).with_details(details_of(self, "set"));
        let anomalies: Vec<Anomaly> = self.anomalies.iter().map(|a| a.anomaly(checker)).collect();
        for (kind, count) in [
            (LOST_WRITE, counts.lost),
            (STALE_READ, counts.stale),
            (UNEXPECTED_ELEMENT, counts.unexpected),
            (DUPLICATE_ELEMENTS, counts.duplicated),
        ] {
            if count == 0 {
                continue;
            }
            result = result.with_anomalies(kind, count);
            let listed = anomalies.iter().filter(|a| a.kind == kind).count();
            if count > listed {
                let rows = self.rows.iter().filter(|a| a.kind == kind);
                result.rows.extend(rows.map(|a| a.anomaly(checker)));
            }
        }
        CheckOutcome {
            checker: checker.to_string(),
            result,
            anomalies,
        }
    }
}

impl SetAnomaly {
    /// As a stored anomaly of `checker`.
    fn anomaly(&self, checker: &str) -> Anomaly {
        let mut anomaly = Anomaly::new(self.kind, checker, self.explanation.clone())
            .with_key(self.key.clone())
            .with_ops(self.ops.clone(), self.time);
        anomaly.element = Some(self.element.clone());
        anomaly.node = self.node.clone();
        anomaly
    }
}

/// Checks a set history with the default options.
pub fn check_set(history: &[Op]) -> Result<SetResult, SetError> {
    check_set_with(history, &SetOptions::default())
}

/// Checks a set history: see the module docs for the semantics.
pub fn check_set_with(history: &[Op], opts: &SetOptions) -> Result<SetResult, SetError> {
    let inputs = collect(history)?;
    let jobs: Vec<(Option<String>, KeyInput)> = inputs.into_iter().collect();
    let threads = opts.threads.max(1).min(jobs.len().max(1));
    let outputs: Vec<Mutex<Option<Result<KeyOutput, SetError>>>> =
        jobs.iter().map(|_| Mutex::new(None)).collect();
    let next = AtomicUsize::new(0);
    let work = || loop {
        let i = next.fetch_add(1, Ordering::Relaxed);
        let Some((key, input)) = jobs.get(i) else {
            break;
        };
        let out = analyse_key(history, key.clone(), input, opts);
        *outputs[i]
            .lock()
            .expect("no worker panics holding the lock") = Some(out);
    };
    if threads <= 1 {
        work();
    } else {
        std::thread::scope(|s| {
            for _ in 0..threads {
                s.spawn(work);
            }
        });
    }

    let mut valid = if jobs.is_empty() {
        Validity::Unknown
    } else {
        Validity::Valid
    };
    let mut counts = SetCounts::default();
    let (mut stable_all, mut lost_all) = (Vec::new(), Vec::new());
    let mut keys = Vec::with_capacity(jobs.len());
    let (mut anomalies, mut rows) = (Vec::new(), Vec::new());
    for slot in outputs {
        let out = slot
            .into_inner()
            .expect("no worker panics holding the lock")
            .expect("every key is analysed")?;
        valid = valid.and(out.result.valid);
        counts.absorb(&out.result.counts);
        stable_all.extend(out.stable_latencies);
        lost_all.extend(out.lost_latencies);
        keys.push(out.result);
        anomalies.extend(out.anomalies);
        rows.extend(out.rows);
    }
    let reason = jobs
        .is_empty()
        .then(|| crate::verdict::NO_OPERATIONS.to_string());
    Ok(SetResult {
        valid,
        reason,
        counts,
        stable_latency: LatencySummary::of(stable_all),
        lost_latency: LatencySummary::of(lost_all),
        keys,
        anomalies,
        rows,
    })
}

// ---------------------------------------------------------------------------
// Collecting the ops of each key.

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum AddStatus {
    Ok,
    Indeterminate,
    Failed,
}

#[derive(Clone, Copy, Debug)]
struct AddRec {
    invoke: usize,
    complete: Option<usize>,
    status: AddStatus,
}

#[derive(Clone, Copy, Debug)]
struct ReadRec {
    invoke: usize,
    complete: usize,
}

#[derive(Default)]
struct KeyInput {
    /// In invocation order.
    adds: Vec<AddRec>,
    /// `ok` reads, in invocation order.
    reads: Vec<ReadRec>,
    /// The last history index of any add op (invocation or completion).
    last_add_event: Option<usize>,
}

/// Orders keys as the linearizability checker does: none, then numbers
/// numerically, then strings.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum KeyOrder {
    None,
    Number(i64, String),
    Text(String),
}

impl KeyOrder {
    fn of(key: &Option<String>) -> KeyOrder {
        match key {
            None => KeyOrder::None,
            Some(k) => match k.parse::<i64>() {
                Ok(n) => KeyOrder::Number(n, k.clone()),
                Err(_) => KeyOrder::Text(k.clone()),
            },
        }
    }

    fn key(self) -> Option<String> {
        match self {
            KeyOrder::None => None,
            KeyOrder::Number(_, k) | KeyOrder::Text(k) => Some(k),
        }
    }
}

/// Pairs the client ops (without copying values) and groups the set ops by key.
fn collect(history: &[Op]) -> Result<BTreeMap<Option<String>, KeyInput>, SetError> {
    let mut pairer = Pairer::new();
    let mut by_key: BTreeMap<KeyOrder, KeyInput> = BTreeMap::new();
    for (index, op) in history.iter().enumerate() {
        let invoke = match pairer.strict(history, index)? {
            Step::Completed(invoke) => invoke,
            Step::Invoked(_) if !matches!(op.f.as_str(), "add" | "read") => {
                return Err(SetError::UnknownFunction {
                    index,
                    f: op.f.clone(),
                })
            }
            _ => continue,
        };
        let inv = &history[invoke];
        let key = if inv.key.is_some() { &inv.key } else { &op.key };
        match (op.f.as_str(), op.op_type) {
            ("add", t) => {
                let status = match t {
                    OpType::Ok => AddStatus::Ok,
                    OpType::Fail => AddStatus::Failed,
                    _ => AddStatus::Indeterminate,
                };
                let input = input_for(&mut by_key, key);
                input.adds.push(AddRec {
                    invoke,
                    complete: Some(index),
                    status,
                });
                input.last_add_event = Some(index);
            }
            ("read", OpType::Ok) => {
                if !matches!(op.value, Value::Array(_) | Value::Null) {
                    return Err(SetError::MalformedRead {
                        index,
                        got: abbreviate(&op.value),
                    });
                }
                input_for(&mut by_key, key).reads.push(ReadRec {
                    invoke,
                    complete: index,
                });
            }
            ("read", _) => {
                // A failed or indeterminate read shows nothing, but its key exists.
                input_for(&mut by_key, key);
            }
            _ => {}
        }
    }
    // Adds never completed are indeterminate.
    for invoke in pairer.into_outstanding() {
        let inv = &history[invoke];
        if inv.f == "add" {
            let input = input_for(&mut by_key, &inv.key);
            input.adds.push(AddRec {
                invoke,
                complete: None,
                status: AddStatus::Indeterminate,
            });
            input.last_add_event = input.last_add_event.max(Some(invoke));
        }
    }
    Ok(by_key
        .into_iter()
        .map(|(k, mut input)| {
            input.adds.sort_unstable_by_key(|a| a.invoke);
            input.reads.sort_unstable_by_key(|r| r.invoke);
            (k.key(), input)
        })
        .collect())
}

fn input_for<'m>(
    by_key: &'m mut BTreeMap<KeyOrder, KeyInput>,
    key: &Option<String>,
) -> &'m mut KeyInput {
    by_key.entry(KeyOrder::of(key)).or_default()
}

fn abbreviate(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 60 {
        format!("{}...", s.chars().take(60).collect::<String>())
    } else {
        s
    }
}

// ---------------------------------------------------------------------------
// The analysis of one key.

/// Element identities: JSON text → dense id.
#[derive(Default)]
struct Interner {
    ids: FxHashMap<Rc<str>, u32>,
    names: Vec<Rc<str>>,
    buf: Vec<u8>,
}

impl Interner {
    /// The id of `v`, and whether it is new.
    fn id(&mut self, v: &Value) -> (u32, bool) {
        self.buf.clear();
        serde_json::to_writer(&mut self.buf, v).expect("writing JSON to a Vec cannot fail");
        let text = std::str::from_utf8(&self.buf).expect("serde_json writes UTF-8");
        if let Some(&id) = self.ids.get(text) {
            return (id, false);
        }
        let id = u32::try_from(self.names.len()).expect("fewer than 2^32 elements per key");
        let name: Rc<str> = Rc::from(text);
        self.ids.insert(name.clone(), id);
        self.names.push(name);
        (id, true)
    }

    fn get(&mut self, v: &Value) -> Option<u32> {
        self.buf.clear();
        serde_json::to_writer(&mut self.buf, v).expect("writing JSON to a Vec cannot fail");
        let text = std::str::from_utf8(&self.buf).expect("serde_json writes UTF-8");
        self.ids.get(text).copied()
    }

    fn value(&self, id: u32) -> Value {
        let name = &self.names[id as usize];
        serde_json::from_str(name).unwrap_or_else(|_| Value::String(name.to_string()))
    }
}

/// What the adds and pass 1 over the reads learned about one element.
/// Read positions (`u32`) are ordinals in the invocation order of `ok` reads.
#[derive(Clone, Default)]
struct Elem {
    /// First acknowledged add.
    ok_add: Option<AddRec>,
    /// First indeterminate add.
    pending_add: Option<AddRec>,
    /// First failed add.
    failed_add: Option<AddRec>,
    /// How many reads contain it.
    present: u32,
    /// First read (by invocation) that contains it.
    first_present: Option<u32>,
    /// Earliest completion index of a read that contains it.
    min_present_complete: Option<usize>,
    /// The read containing it that completed last.
    max_present: Option<u32>,
    /// Last read (by invocation) that contains it.
    last_seen: Option<u32>,
    /// Start of the run of consecutive reads ending at `last_seen` that contain it.
    run_start: u32,
    /// Occurrences in the read `last_seen`.
    cur_mult: u32,
    /// Reads that list it more than once.
    dup_reads: u32,
    /// The first such read, and how often it lists it.
    dup_first: Option<(u32, u32)>,
}

impl Elem {
    fn add_attempted(&self) -> bool {
        self.ok_add.is_some() || self.pending_add.is_some() || self.failed_add.is_some()
    }

    /// May it legitimately be in the set?
    fn may_exist(&self) -> bool {
        self.ok_add.is_some() || self.pending_add.is_some()
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Class {
    /// Never known to be in the set (unresolved indeterminate or failed add).
    Unknown,
    Unexpected,
    NeverRead,
    Stable,
    Stale,
    Lost,
}

struct KeyOutput {
    result: SetKeyResult,
    anomalies: Vec<SetAnomaly>,
    rows: Vec<SetAnomaly>,
    stable_latencies: Vec<u64>,
    lost_latencies: Vec<u64>,
}

/// The elements of an `ok` read (validated in `collect`).
fn read_elements<'h>(history: &'h [Op], r: &ReadRec) -> &'h [Value] {
    match &history[r.complete].value {
        Value::Array(items) => items,
        _ => &[],
    }
}

/// The analysis of one key, in passes: the adds, the reads (pass 1), the
/// classification, the stale elements' details (pass 2), the counts and
/// latencies, and the anomalies explained.
fn analyse_key(
    history: &[Op],
    key: Option<String>,
    input: &KeyInput,
    opts: &SetOptions,
) -> Result<KeyOutput, SetError> {
    let mut interner = Interner::default();
    let mut elems = tally_adds(history, &input.adds, &mut interner);
    let reads = &input.reads;
    scan_reads(history, reads, &mut interner, &mut elems);
    let read_invokes: Vec<usize> = reads.iter().map(|r| r.invoke).collect();
    let classes = classify(&elems, reads, &read_invokes);
    let stale_detail = stale_details(history, reads, &mut interner, &classes, &read_invokes);
    let tally = tally(history, reads, &elems, &classes);
    let ctx = Ctx {
        history,
        reads,
        read_invokes: &read_invokes,
        key: &key,
    };
    let explained = Explained {
        ctx: &ctx,
        names: &interner,
        elems: &elems,
        classes: &classes,
        stale_detail: &stale_detail,
    };
    let (anomalies, rows) = explained.anomalies(&tally.lists, opts);
    let result = key_result(&ctx, input, &interner, &tally, opts.max_listed);
    Ok(KeyOutput {
        result,
        anomalies,
        rows,
        stable_latencies: tally.stable_latencies,
        lost_latencies: tally.lost_latencies,
    })
}

/// The elements the adds name, each with its first add of every status.
fn tally_adds(history: &[Op], adds: &[AddRec], interner: &mut Interner) -> Vec<Elem> {
    let mut elems: Vec<Elem> = Vec::new();
    for add in adds {
        let (id, new) = interner.id(&history[add.invoke].value);
        if new {
            elems.push(Elem::default());
        }
        let e = &mut elems[id as usize];
        let slot = match add.status {
            AddStatus::Ok => &mut e.ok_add,
            AddStatus::Indeterminate => &mut e.pending_add,
            AddStatus::Failed => &mut e.failed_add,
        };
        slot.get_or_insert(*add);
    }
    elems
}

/// Pass 1 over the reads, in invocation order: where each element is
/// present, its runs and its duplicates (new elements are added to `elems`).
fn scan_reads(history: &[Op], reads: &[ReadRec], interner: &mut Interner, elems: &mut Vec<Elem>) {
    for (ord, read) in reads.iter().enumerate() {
        let r = ord as u32;
        for v in read_elements(history, read) {
            let (id, new) = interner.id(v);
            if new {
                elems.push(Elem::default());
            }
            let e = &mut elems[id as usize];
            if e.last_seen == Some(r) {
                e.count_duplicate(r);
                continue;
            }
            e.cur_mult = 1;
            if e.last_seen.is_none_or(|l| l + 1 != r) {
                e.run_start = r;
            }
            e.last_seen = Some(r);
            e.present += 1;
            e.first_present.get_or_insert(r);
            if e.min_present_complete.is_none_or(|c| read.complete < c) {
                e.min_present_complete = Some(read.complete);
            }
            if e.max_present
                .is_none_or(|m| read.complete > reads[m as usize].complete)
            {
                e.max_present = Some(r);
            }
        }
    }
}

impl Elem {
    /// One more occurrence in read `r`, which already listed it.
    fn count_duplicate(&mut self, r: u32) {
        self.cur_mult += 1;
        match &mut self.dup_first {
            None => {
                self.dup_reads += 1;
                self.dup_first = Some((r, self.cur_mult));
            }
            Some((first, mult)) => {
                if *first == r {
                    *mult = self.cur_mult;
                } else if self.cur_mult == 2 {
                    self.dup_reads += 1;
                }
            }
        }
    }
}

/// Each element's class, when it became known, and the last read that missed it.
struct Classes {
    class: Vec<Class>,
    known_at: Vec<usize>,
    last_absent: Vec<Option<u32>>,
}

/// The first `ok` read (ordinal) invoked after history index `index`.
fn first_read_after(read_invokes: &[usize], index: usize) -> u32 {
    read_invokes.partition_point(|&i| i <= index) as u32
}

/// Classifies every element (see the module docs).
fn classify(elems: &[Elem], reads: &[ReadRec], read_invokes: &[usize]) -> Classes {
    let n_reads = reads.len() as u32;
    let mut classes = Classes {
        class: vec![Class::Unknown; elems.len()],
        known_at: vec![0usize; elems.len()],
        last_absent: vec![None::<u32>; elems.len()],
    };
    for (id, e) in elems.iter().enumerate() {
        if !e.may_exist() {
            if e.present > 0 {
                classes.class[id] = Class::Unexpected;
            }
            continue;
        }
        let known = match (e.ok_add.and_then(|a| a.complete), e.min_present_complete) {
            (Some(a), Some(p)) => a.min(p),
            (Some(a), None) => a,
            (None, Some(p)) => p,
            (None, None) => continue,
        };
        classes.known_at[id] = known;
        let first_after = first_read_after(read_invokes, known);
        if first_after == n_reads {
            classes.class[id] = Class::NeverRead;
            continue;
        }
        // The last read (by invocation) that does not contain it.
        let la = match e.last_seen {
            Some(l) if l + 1 == n_reads => e.run_start.checked_sub(1),
            _ => Some(n_reads - 1),
        };
        classes.last_absent[id] = la;
        classes.class[id] = match la {
            Some(la) if la >= first_after => {
                let la_invoke = reads[la as usize].invoke;
                let seen_later = e
                    .max_present
                    .is_some_and(|m| reads[m as usize].complete > la_invoke);
                if seen_later {
                    Class::Stale
                } else {
                    Class::Lost
                }
            }
            _ => Class::Stable,
        };
    }
    classes
}

/// Pass 2, only to explain stale elements: the first read after the element
/// was known that missed it, and how many did.
fn stale_details(
    history: &[Op],
    reads: &[ReadRec],
    interner: &mut Interner,
    classes: &Classes,
    read_invokes: &[usize],
) -> FxHashMap<u32, StaleDetail> {
    let mut stale_detail: FxHashMap<u32, StaleDetail> = FxHashMap::default();
    for (id, _) in classes
        .class
        .iter()
        .enumerate()
        .filter(|(_, c)| **c == Class::Stale)
    {
        let first_after = first_read_after(read_invokes, classes.known_at[id]);
        let detail = StaleDetail {
            first_after,
            next_expected: first_after,
            present_after: 0,
            stamp: None,
        };
        stale_detail.insert(id as u32, detail);
    }
    if stale_detail.is_empty() {
        return stale_detail;
    }
    for (ord, read) in reads.iter().enumerate() {
        let r = ord as u32;
        for v in read_elements(history, read) {
            let Some(id) = interner.get(v) else { continue };
            let Some(d) = stale_detail.get_mut(&id) else {
                continue;
            };
            if d.stamp == Some(r) {
                continue;
            }
            d.stamp = Some(r);
            if r >= d.first_after {
                d.present_after += 1;
            }
            if d.next_expected == r {
                d.next_expected += 1;
            }
        }
    }
    stale_detail
}

/// Which list of [`Tally::lists`] holds an outcome.
const LOST: usize = 0;
const STALE: usize = 1;
const NEVER: usize = 2;
const RECOVERED: usize = 3;
const UNEXPECTED: usize = 4;
const DUPLICATED: usize = 5;

/// The counts, the elements of each outcome (ids, in id order) and the
/// latencies of one key.
struct Tally {
    counts: SetCounts,
    lists: [Vec<u32>; 6],
    stable_latencies: Vec<u64>,
    lost_latencies: Vec<u64>,
}

/// Counts the outcomes and measures the latencies (see the module docs).
fn tally(history: &[Op], reads: &[ReadRec], elems: &[Elem], classes: &Classes) -> Tally {
    let mut t = Tally {
        counts: SetCounts {
            reads: reads.len(),
            ..SetCounts::default()
        },
        lists: Default::default(),
        stable_latencies: Vec::new(),
        lost_latencies: Vec::new(),
    };
    let time = |i: usize| history[i].time;
    for (id, e) in elems.iter().enumerate() {
        let id32 = id as u32;
        t.count_adds(e, id32);
        let known_time = time(classes.known_at[id]);
        match classes.class[id] {
            Class::Unknown => {}
            Class::Unexpected => {
                t.counts.unexpected += 1;
                t.lists[UNEXPECTED].push(id32);
            }
            Class::NeverRead => {
                t.counts.never_read += 1;
                t.lists[NEVER].push(id32);
            }
            Class::Stable => {
                t.counts.stable += 1;
                if known_time.is_some() {
                    t.stable_latencies.push(0);
                }
            }
            Class::Stale => {
                t.counts.stale += 1;
                t.lists[STALE].push(id32);
                let la = classes.last_absent[id].expect("a stale element has an absent read");
                if let (Some(k), Some(end)) = (known_time, time(reads[la as usize].complete)) {
                    t.stable_latencies.push(end.saturating_sub(k));
                }
            }
            Class::Lost => {
                t.counts.lost += 1;
                t.lists[LOST].push(id32);
                if let Some(k) = known_time {
                    let seen = e.max_present.map(|m| time(reads[m as usize].complete));
                    match seen {
                        None => t.lost_latencies.push(0),
                        Some(Some(end)) => t.lost_latencies.push(end.saturating_sub(k)),
                        Some(None) => {}
                    }
                }
            }
        }
    }
    t
}

impl Tally {
    /// Counts what the adds of `e` (element `id`) and its duplicates say.
    fn count_adds(&mut self, e: &Elem, id: u32) {
        if e.add_attempted() {
            self.counts.attempted += 1;
        }
        if e.ok_add.is_some() {
            self.counts.acknowledged += 1;
        } else if e.pending_add.is_some() {
            self.counts.indeterminate += 1;
            if e.present > 0 {
                self.counts.recovered += 1;
                self.lists[RECOVERED].push(id);
            }
        }
        if e.dup_reads > 0 {
            self.counts.duplicated += 1;
            self.lists[DUPLICATED].push(id);
        }
    }
}

/// What the explanations of one key's anomalies need.
struct Explained<'a> {
    ctx: &'a Ctx<'a>,
    names: &'a Interner,
    elems: &'a [Elem],
    classes: &'a Classes,
    stale_detail: &'a FxHashMap<u32, StaleDetail>,
}

impl Explained<'_> {
    /// The anomalies, at most `max_listed` per kind, and the report's rows:
    /// the lost and stale ones, at most `max_rows` per kind.
    fn anomalies(
        &self,
        lists: &[Vec<u32>; 6],
        opts: &SetOptions,
    ) -> (Vec<SetAnomaly>, Vec<SetAnomaly>) {
        let (mut anomalies, mut rows) = (Vec::new(), Vec::new());
        let tabulated = opts.max_listed.max(opts.max_rows);
        for (list, explain) in [
            (&lists[LOST], Self::lost as fn(&Self, u32) -> SetAnomaly),
            (&lists[STALE], Self::stale),
        ] {
            let explained: Vec<SetAnomaly> = list
                .iter()
                .take(tabulated)
                .map(|&id| explain(self, id))
                .collect();
            anomalies.extend(explained.iter().take(opts.max_listed).cloned());
            rows.extend(explained.into_iter().take(opts.max_rows));
        }
        for &id in lists[UNEXPECTED].iter().take(opts.max_listed) {
            anomalies.push(
                self.ctx
                    .unexpected(self.names, id, &self.elems[id as usize]),
            );
        }
        for &id in lists[DUPLICATED].iter().take(opts.max_listed) {
            anomalies.push(
                self.ctx
                    .duplicated(self.names, id, &self.elems[id as usize]),
            );
        }
        (anomalies, rows)
    }

    fn lost(&self, id: u32) -> SetAnomaly {
        let i = id as usize;
        self.ctx
            .lost(self.names, id, &self.elems[i], self.classes.known_at[i])
    }

    fn stale(&self, id: u32) -> SetAnomaly {
        let i = id as usize;
        let la = self.classes.last_absent[i].expect("a stale element has an absent read");
        let (e, known) = (&self.elems[i], self.classes.known_at[i]);
        self.ctx
            .stale(self.names, id, e, known, la, &self.stale_detail[&id])
    }
}

/// The key's verdict, counts and element lists (at most `max_listed` each).
fn key_result(
    ctx: &Ctx,
    input: &KeyInput,
    interner: &Interner,
    tally: &Tally,
    max_listed: usize,
) -> SetKeyResult {
    let counts = tally.counts.clone();
    let list = |ids: &[u32]| ElementList {
        total: ids.len(),
        elements: ids
            .iter()
            .take(max_listed)
            .map(|&id| interner.value(id))
            .collect(),
    };
    let invalid = counts.lost + counts.stale + counts.unexpected + counts.duplicated > 0;
    let verified = input
        .last_add_event
        .is_none_or(|last| ctx.read_invokes.last().is_some_and(|&i| i > last));
    let valid = if invalid {
        Validity::Invalid
    } else if verified {
        Validity::Valid
    } else {
        Validity::Unknown
    };
    let unknown_reason = (valid == Validity::Unknown).then(|| match input.last_add_event {
        Some(last) if !ctx.reads.is_empty() => format!(
            "no ok read began after the last add ({}), so the final state of the set was never observed",
            ctx.at(last)
        ),
        _ => "no read of the set succeeded, so nothing could be verified".to_string(),
    });
    let lists = &tally.lists;
    SetKeyResult {
        key: ctx.key.clone(),
        valid,
        unknown_reason,
        counts,
        lost: list(&lists[LOST]),
        stale: list(&lists[STALE]),
        never_read: list(&lists[NEVER]),
        recovered: list(&lists[RECOVERED]),
        unexpected: list(&lists[UNEXPECTED]),
        duplicated: list(&lists[DUPLICATED]),
        stable_latency: LatencySummary::of(tally.stable_latencies.clone()),
        lost_latency: LatencySummary::of(tally.lost_latencies.clone()),
    }
}

struct StaleDetail {
    /// First read that began after the element was known.
    first_after: u32,
    /// Ends as the first read from `first_after` on that misses it.
    next_expected: u32,
    /// Reads from `first_after` on that contain it.
    present_after: u32,
    /// The last read counted (a read may list it twice).
    stamp: Option<u32>,
}

// ---------------------------------------------------------------------------
// Explanations.

struct Ctx<'a> {
    history: &'a [Op],
    reads: &'a [ReadRec],
    read_invokes: &'a [usize],
    key: &'a Option<String>,
}

fn secs(ns: u64) -> String {
    format!("{:.3} s", ns as f64 / 1e9)
}

fn plural(n: u32, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

impl Ctx<'_> {
    /// "3.214 s (op 45)", or "op 45" without a time.
    fn at(&self, index: usize) -> String {
        match self.history[index].time {
            Some(t) => format!("{} (op {index})", secs(t)),
            None => format!("op {index}"),
        }
    }

    /// Like `at`, naming the node that answered the op completed at `index`.
    fn at_node(&self, index: usize) -> String {
        self.at_answered(index, index)
    }

    /// When read `r` began, naming the node that answered it.
    fn began(&self, r: ReadRec) -> String {
        self.at_answered(r.invoke, r.complete)
    }

    fn at_answered(&self, index: usize, completion: usize) -> String {
        let node = self.history[completion]
            .node
            .as_deref()
            .map(|n| format!(", node {n}"))
            .unwrap_or_default();
        match self.history[index].time {
            Some(t) => format!("{} (op {index}{node})", secs(t)),
            None => format!("op {index}{node}"),
        }
    }

    fn node(&self, index: usize) -> Option<String> {
        self.history[index].node.clone()
    }

    fn read(&self, ord: u32) -> ReadRec {
        self.reads[ord as usize]
    }

    /// How the element came to be known, and the add's op indices.
    fn origin(&self, e: &Elem, known: usize) -> (String, Vec<u64>, Option<String>) {
        if let Some(add) = e.ok_add {
            let complete = add.complete.expect("an ok add completed");
            let node = self.node(complete);
            let by = node
                .as_deref()
                .map(|n| format!(" by {n}"))
                .unwrap_or_default();
            let mut text = format!("was acknowledged{by} at {}", self.at(complete));
            if known < complete {
                text.push_str(&format!(
                    " (and already seen in a read that completed at {})",
                    self.at(known)
                ));
            }
            return (text, vec![add.invoke as u64, complete as u64], node);
        }
        let add = e.pending_add.expect("a known element has an add");
        let mut ops = vec![add.invoke as u64];
        ops.extend(add.complete.map(|c| c as u64));
        (
            format!(
                "was added with an indeterminate result (invoked at {}) and first seen in a read that completed at {}",
                self.at(add.invoke),
                self.at(known)
            ),
            ops,
            None,
        )
    }

    fn lost(&self, names: &Interner, id: u32, e: &Elem, known: usize) -> SetAnomaly {
        let element = names.value(id);
        let (origin, mut ops, node) = self.origin(e, known);
        let n = self.reads.len() as u32;
        let (seen, threshold) = match e.max_present {
            Some(m) => {
                let r = self.read(m);
                ops.extend([r.invoke as u64, r.complete as u64]);
                (
                    format!(
                        ", was last seen in the read that completed at {}",
                        self.at(r.complete)
                    ),
                    r.complete.max(known),
                )
            }
            None => (", was never seen in any read".to_string(), known),
        };
        let first = self.read_invokes.partition_point(|&i| i <= threshold) as u32;
        let missing = n - first;
        let last = self.read(n - 1);
        let fr = self.read(first);
        ops.extend([fr.invoke as u64, fr.complete as u64]);
        ops.extend([last.invoke as u64, last.complete as u64]);
        let tail = if missing == 1 {
            format!(
                "and is missing from the only read that began after that, the final read at {}",
                self.began(last)
            )
        } else {
            format!(
                "and is missing from all {missing} reads that began after that, from {} to the final read at {}",
                self.began(fr),
                self.began(last)
            )
        };
        ops.sort_unstable();
        ops.dedup();
        SetAnomaly {
            kind: LOST_WRITE,
            key: self.key.clone(),
            explanation: format!("element {element} {origin}{seen}, {tail}"),
            element,
            ops,
            time: self.history[known].time,
            node,
        }
    }

    fn stale(
        &self,
        names: &Interner,
        id: u32,
        e: &Elem,
        known: usize,
        la: u32,
        d: &StaleDetail,
    ) -> SetAnomaly {
        let element = names.value(id);
        let (origin, mut ops, node) = self.origin(e, known);
        let n = self.reads.len() as u32;
        let first = self.read(d.next_expected);
        let last = self.read(la);
        let after = n - d.first_after;
        let missing = after - d.present_after;
        ops.extend([first.invoke as u64, first.complete as u64]);
        ops.extend([last.invoke as u64, last.complete as u64]);
        let mut text = format!(
            "element {element} {origin}, yet the read that began at {} did not contain it",
            self.began(first)
        );
        if missing > 1 {
            text.push_str(&format!(
                "; it was missing from {missing} of the {after} reads that began after it was known, the last beginning at {}",
                self.began(last)
            ));
        }
        if la + 1 < n {
            let again = self.read(la + 1);
            ops.extend([again.invoke as u64, again.complete as u64]);
            text.push_str(&format!(
                ", and it was seen again in the read that began at {} (a stale read, not a lost write)",
                self.began(again)
            ));
        } else {
            let m = self.read(e.max_present.expect("a stale element was seen"));
            ops.extend([m.invoke as u64, m.complete as u64]);
            text.push_str(&format!(
                ", but a concurrent read that completed at {} contains it, so it may not be lost",
                self.at_node(m.complete)
            ));
        }
        ops.sort_unstable();
        ops.dedup();
        SetAnomaly {
            kind: STALE_READ,
            key: self.key.clone(),
            element,
            ops,
            time: self.history[first.invoke].time,
            node,
            explanation: text,
        }
    }

    fn unexpected(&self, names: &Interner, id: u32, e: &Elem) -> SetAnomaly {
        let element = names.value(id);
        let r = self.read(e.first_present.expect("an unexpected element was read"));
        let mut ops = Vec::new();
        let why = match e.failed_add {
            Some(add) => {
                ops.push(add.invoke as u64);
                ops.extend(add.complete.map(|c| c as u64));
                format!(
                    "its add failed at {}, so it must never be present",
                    self.at(add.complete.unwrap_or(add.invoke))
                )
            }
            None => "no add of it was ever invoked".to_string(),
        };
        ops.extend([r.invoke as u64, r.complete as u64]);
        ops.sort_unstable();
        SetAnomaly {
            kind: UNEXPECTED_ELEMENT,
            key: self.key.clone(),
            explanation: format!(
                "element {element} appears in {}, first in the read that began at {}, but {why}",
                plural(e.present, "read", "reads"),
                self.began(r)
            ),
            element,
            ops,
            time: self.history[r.invoke].time,
            node: self.node(r.complete),
        }
    }

    fn duplicated(&self, names: &Interner, id: u32, e: &Elem) -> SetAnomaly {
        let element = names.value(id);
        let (ord, mult) = e.dup_first.expect("a duplicated element has a read");
        let r = self.read(ord);
        let mut explanation = format!(
            "the read that began at {} lists element {element} {mult} times",
            self.began(r)
        );
        if e.dup_reads > 1 {
            explanation.push_str(&format!(
                "; {} list it more than once",
                plural(e.dup_reads, "read", "reads in all")
            ));
        }
        SetAnomaly {
            kind: DUPLICATE_ELEMENTS,
            key: self.key.clone(),
            element,
            ops: vec![r.invoke as u64, r.complete as u64],
            time: self.history[r.invoke].time,
            node: self.node(r.complete),
            explanation,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A hand-made history: op `i` happens at `i` × 100 ms.
    #[derive(Default)]
    struct H(Vec<Op>);

    impl H {
        fn push(&mut self, p: u64, t: OpType, f: &str, key: Option<&str>, v: Value) -> usize {
            let i = self.0.len();
            let mut op = Op::invoke(p, f, v);
            op.op_type = t;
            op.index = i as u64;
            op.time = Some(i as u64 * 100_000_000);
            op.key = key.map(str::to_string);
            if t == OpType::Ok {
                op.node = Some(format!("n{}", p % 3 + 1));
            }
            self.0.push(op);
            i
        }
        fn invoke(&mut self, p: u64, f: &str, key: Option<&str>, v: Value) -> usize {
            self.push(p, OpType::Invoke, f, key, v)
        }
        fn add(&mut self, p: u64, key: Option<&str>, e: Value, t: OpType) {
            self.invoke(p, "add", key, e.clone());
            self.push(p, t, "add", key, e);
        }
        fn read(&mut self, p: u64, key: Option<&str>, v: Value) {
            self.invoke(p, "read", key, Value::Null);
            self.push(p, OpType::Ok, "read", key, v);
        }
    }

    fn kinds(r: &SetResult) -> Vec<&'static str> {
        r.anomalies.iter().map(|a| a.kind).collect()
    }

    #[test]
    fn an_acknowledged_element_missing_from_the_final_reads_is_lost() {
        let mut h = H::default();
        h.add(0, None, json!(1), OpType::Ok); // 0, 1
        h.add(0, None, json!(2), OpType::Ok); // 2, 3
        h.read(1, None, json!([1, 2])); // 4, 5
        h.read(1, None, json!([1])); // 6, 7
        h.read(2, None, json!([1])); // 8, 9
        let r = check_set(&h.0).unwrap();
        assert_eq!(r.valid, Validity::Invalid);
        assert_eq!(r.counts.lost, 1);
        assert_eq!(r.counts.stable, 1);
        assert_eq!(r.keys[0].lost.elements, vec![json!(2)]);
        assert_eq!(kinds(&r), vec![LOST_WRITE]);
        let a = &r.anomalies[0];
        assert_eq!(a.element, json!(2));
        assert_eq!(a.node.as_deref(), Some("n1"), "the node that acked the add");
        assert_eq!(a.time, Some(300_000_000));
        assert_eq!(a.ops, vec![2, 3, 4, 5, 6, 7, 8, 9]);
        assert!(a
            .explanation
            .contains("acknowledged by n1 at 0.300 s (op 3)"));
        assert!(a
            .explanation
            .contains("last seen in the read that completed at 0.500 s"));
        assert!(
            a.explanation.contains("missing from all 2 reads"),
            "{}",
            a.explanation
        );
        // Lost 200 ms after its ack (its last sighting completed at op 5).
        let lost = r.lost_latency.unwrap();
        assert_eq!((lost.count, lost.max_ms), (1, 200.0));
    }

    #[test]
    fn an_element_missing_then_seen_again_is_stale_not_lost() {
        let mut h = H::default();
        h.add(0, None, json!(1), OpType::Ok); // 0, 1
        h.read(1, None, json!([])); // 2, 3: began after the ack, misses it
        h.read(1, None, json!([])); // 4, 5
        h.read(1, None, json!([1])); // 6, 7: back again
        let r = check_set(&h.0).unwrap();
        assert_eq!(r.valid, Validity::Invalid);
        assert_eq!((r.counts.stale, r.counts.lost, r.counts.stable), (1, 0, 0));
        assert_eq!(kinds(&r), vec![STALE_READ]);
        let a = &r.anomalies[0];
        assert_eq!(
            a.time,
            Some(200_000_000),
            "the first stale read began at op 2"
        );
        assert_eq!(a.ops, vec![0, 1, 2, 3, 4, 5, 6, 7]);
        assert!(
            a.explanation.contains("missing from 2 of the 3 reads"),
            "{}",
            a.explanation
        );
        assert!(a.explanation.contains("seen again"), "{}", a.explanation);
        // Stable once the last read missing it completed: 0.5 s - 0.1 s.
        assert_eq!(r.stable_latency.unwrap().max_ms, 400.0);
    }

    #[test]
    fn a_final_read_missing_an_element_a_concurrent_read_saw_is_stale_not_lost() {
        let mut h = H::default();
        h.add(0, None, json!(1), OpType::Ok); // 0, 1
        h.invoke(1, "read", None, Value::Null); // 2
        h.invoke(2, "read", None, Value::Null); // 3: final read
        h.push(2, OpType::Ok, "read", None, json!([])); // 4
        h.push(1, OpType::Ok, "read", None, json!([1])); // 5: completes after 3 began
        let r = check_set(&h.0).unwrap();
        assert_eq!((r.counts.stale, r.counts.lost), (1, 0));
        assert!(r.anomalies[0].explanation.contains("concurrent read"));
    }

    #[test]
    fn an_element_never_added_or_whose_add_failed_is_unexpected() {
        let mut h = H::default();
        h.add(0, None, json!(1), OpType::Ok);
        h.add(0, None, json!(2), OpType::Fail); // 2, 3
        h.read(1, None, json!([1, 2, "x"])); // 4, 5
        h.read(1, None, json!([1, "x"]));
        let r = check_set(&h.0).unwrap();
        assert_eq!(r.valid, Validity::Invalid);
        assert_eq!(r.counts.unexpected, 2);
        assert_eq!(r.keys[0].unexpected.elements, vec![json!(2), json!("x")]);
        assert_eq!(kinds(&r), vec![UNEXPECTED_ELEMENT, UNEXPECTED_ELEMENT]);
        assert_eq!(r.anomalies[0].ops, vec![2, 3, 4, 5]);
        assert!(r.anomalies[0].explanation.contains("add failed"));
        let x = &r.anomalies[1];
        assert_eq!(
            x.node.as_deref(),
            Some("n2"),
            "the node that answered the read"
        );
        assert!(
            x.explanation.contains("appears in 2 reads"),
            "{}",
            x.explanation
        );
        assert!(x.explanation.contains("no add of it was ever invoked"));
    }

    #[test]
    fn a_read_listing_an_element_twice_reports_a_duplicate() {
        let mut h = H::default();
        h.add(0, None, json!(1), OpType::Ok);
        h.read(1, None, json!([1, 1, 1])); // 2, 3
        h.read(1, None, json!([1, 1]));
        h.read(1, None, json!([1]));
        let r = check_set(&h.0).unwrap();
        assert_eq!(r.valid, Validity::Invalid);
        assert_eq!((r.counts.duplicated, r.counts.stable), (1, 1));
        assert_eq!(kinds(&r), vec![DUPLICATE_ELEMENTS]);
        let a = &r.anomalies[0];
        assert_eq!(a.ops, vec![2, 3]);
        assert!(
            a.explanation.contains("lists element 1 3 times"),
            "{}",
            a.explanation
        );
        assert!(
            a.explanation.contains("2 reads in all"),
            "{}",
            a.explanation
        );
    }

    #[test]
    fn an_indeterminate_add_that_appears_is_recovered_and_valid() {
        let mut h = H::default();
        h.add(0, None, json!(3), OpType::Info);
        h.add(1, None, json!(4), OpType::Info); // never appears: allowed
        h.invoke(2, "add", None, json!(5)); // never completes, appears
        h.read(3, None, json!([3, 5]));
        h.read(3, None, json!([3, 5]));
        let r = check_set(&h.0).unwrap();
        assert_eq!(r.valid, Validity::Valid, "{r:?}");
        assert_eq!(r.counts.recovered, 2);
        assert_eq!(r.counts.indeterminate, 3);
        assert_eq!(r.counts.stable, 2);
        assert_eq!(r.keys[0].recovered.elements, vec![json!(3), json!(5)]);
        assert!(r.anomalies.is_empty());
    }

    #[test]
    fn an_element_no_read_began_after_is_never_read_and_the_verdict_unknown() {
        let mut h = H::default();
        h.add(0, None, json!(1), OpType::Ok); // 0, 1
        h.invoke(0, "add", None, json!(2)); // 2
        h.read(1, None, json!([1])); // 3, 4: concurrent with the add of 2
        h.push(0, OpType::Ok, "add", None, json!(2)); // 5
        let r = check_set(&h.0).unwrap();
        assert_eq!(r.counts.never_read, 1);
        assert_eq!(r.keys[0].never_read.elements, vec![json!(2)]);
        assert!(r.anomalies.is_empty(), "never-read is informational");
        assert_eq!(r.valid, Validity::Unknown);
        let why = r.keys[0].unknown_reason.as_deref().unwrap();
        assert!(why.contains("no ok read began after the last add"), "{why}");
    }

    #[test]
    fn keys_are_separate_sets() {
        let mut h = H::default();
        h.add(0, Some("a"), json!(1), OpType::Ok);
        h.add(0, Some("b"), json!(1), OpType::Ok);
        h.read(1, Some("a"), json!([1]));
        h.read(1, Some("b"), json!([]));
        let r = check_set(&h.0).unwrap();
        assert_eq!(r.valid, Validity::Invalid);
        assert_eq!(r.keys.len(), 2);
        assert_eq!(r.keys[0].key.as_deref(), Some("a"));
        assert_eq!(r.keys[0].valid, Validity::Valid);
        assert_eq!(r.keys[0].counts.stable, 1);
        assert_eq!(r.keys[1].valid, Validity::Invalid);
        assert_eq!(r.keys[1].counts.lost, 1);
        assert_eq!(r.anomalies.len(), 1);
        assert_eq!(r.anomalies[0].key.as_deref(), Some("b"));
        assert_eq!(r.counts.attempted, 2, "counts are summed over keys");
    }

    #[test]
    fn without_a_read_after_the_last_add_nothing_is_verified() {
        let mut h = H::default();
        h.add(0, None, json!(1), OpType::Ok);
        let r = check_set(&h.0).unwrap();
        assert_eq!(r.valid, Validity::Unknown);
        assert_eq!(r.counts.never_read, 1);
        // A failed read proves nothing either.
        h.invoke(1, "read", None, Value::Null);
        h.push(1, OpType::Fail, "read", None, Value::Null);
        assert_eq!(check_set(&h.0).unwrap().valid, Validity::Unknown);
        // An empty history checks nothing.
        assert_eq!(check_set(&[]).unwrap().valid, Validity::Unknown);
        // One successful final read settles it.
        h.read(1, None, json!([1]));
        assert_eq!(check_set(&h.0).unwrap().valid, Validity::Valid);
    }

    #[test]
    fn malformed_reads_and_unpaired_ops_are_errors() {
        let mut h = H::default();
        h.read(1, None, json!({"a": 1}));
        assert!(matches!(
            check_set(&h.0),
            Err(SetError::MalformedRead { index: 1, .. })
        ));
        let h = vec![Op::invoke(0, "read", Value::Null).completed(OpType::Ok, json!([]))];
        assert!(matches!(
            check_set(&h),
            Err(SetError::Pair(PairError::CompletionWithoutInvoke { .. }))
        ));
    }

    #[test]
    fn lists_and_anomalies_are_capped_but_counts_are_not() {
        let mut h = H::default();
        for e in 0..50 {
            h.add(0, None, json!(e), OpType::Ok);
        }
        h.read(1, None, json!([]));
        let opts = SetOptions {
            max_listed: 5,
            threads: 1,
            ..SetOptions::default()
        };
        let r = check_set_with(&h.0, &opts).unwrap();
        assert_eq!(r.counts.lost, 50);
        assert_eq!(r.keys[0].lost.total, 50);
        assert_eq!(r.keys[0].lost.elements.len(), 5);
        assert_eq!(r.anomalies.len(), 5);
        assert!(r.anomalies[0]
            .explanation
            .contains("never seen in any read, and is missing from the only read"));
    }

    #[test]
    fn the_outcome_stores_report_rows_only_when_the_listed_anomalies_are_a_sample() {
        let mut h = H::default();
        for e in 0..50 {
            h.add(0, None, json!(e), OpType::Ok);
        }
        h.read(1, None, json!([]));
        let opts = SetOptions {
            max_listed: 5,
            max_rows: 40,
            threads: 1,
        };
        let outcome = check_set_with(&h.0, &opts).unwrap().outcome("set");
        assert_eq!(outcome.result.anomalies[LOST_WRITE], 50);
        assert_eq!(outcome.anomalies.len(), 5);
        assert_eq!(outcome.result.rows.len(), 40);
        assert_eq!(outcome.result.rows[..5], outcome.anomalies[..]);
        assert_eq!(outcome.result.rows[39].element, Some(json!(39)));

        let complete = check_set(&h.0).unwrap().outcome("set");
        assert!(complete.anomalies.len() < 50 && complete.result.rows.len() == 50);
        let small = SetOptions {
            max_listed: 50,
            ..opts
        };
        let listed_all = check_set_with(&h.0, &small).unwrap().outcome("set");
        assert_eq!(listed_all.anomalies.len(), 50);
        assert!(
            listed_all.result.rows.is_empty(),
            "nothing beyond the sample to store"
        );
    }

    #[test]
    fn serializes_with_the_shared_vocabulary() {
        let mut h = H::default();
        h.add(0, Some("7"), json!("x"), OpType::Ok);
        h.read(1, Some("7"), json!([]));
        let v = serde_json::to_value(check_set(&h.0).unwrap()).unwrap();
        assert_eq!(v["valid"], json!(false));
        assert_eq!(v["anomalies"][0]["kind"], json!("lost-write"));
        assert_eq!(v["anomalies"][0]["element"], json!("x"));
        assert_eq!(v["keys"][0]["key"], json!("7"));
        assert_eq!(v["keys"][0]["counts"]["lost"], json!(1));
    }

    /// `cargo test -p checker --release --lib set::tests::big -- --ignored --nocapture`
    #[test]
    #[ignore = "a timing run: about a million ops"]
    fn big_history_checks_in_seconds() {
        let mut h = H::default();
        let keys = ["a", "b", "c", "d"];
        let mut present: Vec<Vec<u64>> = vec![Vec::new(); keys.len()];
        let mut next = 0u64;
        while h.0.len() < 1_000_000 {
            for (k, key) in keys.iter().enumerate() {
                for _ in 0..20 {
                    h.add(0, Some(key), json!(next), OpType::Ok);
                    present[k].push(next);
                    next += 1;
                }
                // Reads of a recent window of the set (bounded so the test
                // measures the checker, not the size of the reads).
                let from = present[k].len().saturating_sub(200);
                h.read(1, Some(key), json!(present[k][from..]));
            }
        }
        for (k, key) in keys.iter().enumerate() {
            h.read(1, Some(key), json!(present[k]));
        }
        let start = std::time::Instant::now();
        let r = check_set(&h.0).unwrap();
        eprintln!("{} ops: {:?}, {:?}", h.0.len(), start.elapsed(), r.counts);
        assert_eq!(
            r.valid,
            Validity::Invalid,
            "windowed reads make elements stale"
        );
    }
}
