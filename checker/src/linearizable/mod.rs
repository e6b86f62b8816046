//! The linearizability checker: pairs a history, splits it by key
//! (P-compositionality: a history is linearizable iff each key's is), searches
//! the keys in parallel under a time and memory budget, and explains the
//! first failure.
//!
//! Keys are checked in a fixed order (numbers numerically, then strings), in
//! rounds that bound each key's search (see [`run_partitions`]): after the
//! first round in which a key is proven invalid, the first such key is the
//! one reported, and the keys still undecided, or after it in that order,
//! are not needed for the verdict: they are reported `skipped` (even if a
//! worker had finished one). Whether a key is decided within a round's bound
//! does not depend on threads or timing, so the result is the same on every
//! run. `all_keys` checks every key to the end.
//!
//! # Layout
//! - [`search`]: the search over one partition, with its memo table
//!   (`search::memo`).
//! - `shrink`: an invalid key's core, the fewest ops still not
//!   linearizable (delta debugging; only ops whose absence cannot create a
//!   violation are dropped, so the core proves the history wrong).
//! - here: partitioning, the parallel driver, budgets, explanations, and the
//!   stored outcome ([`CheckResult::outcome`]).

pub mod search;
mod shrink;

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::Value;

use self::search::{search, Budget, Failure, Search, SearchOp, SearchStats};
use crate::history::Op;
use crate::model::counter::Counter;
use crate::model::kv::Kv;
use crate::model::multi_register::MultiRegister;
use crate::model::mutex::Mutex;
use crate::model::queue::Queue;
use crate::model::register::Register;
use crate::model::set::Set;
use crate::model::{Model, ModelError, ModelKind, ModelSpec};
use crate::outcome::{details_of, Anomaly, CheckOutcome, CheckerResult};
use crate::pair::{pair, Call, Outcome, PairError};
use crate::verdict::Validity;

/// Budgets and parallelism of a check.
#[derive(Clone, Debug)]
pub struct Options {
    /// Give up (verdict unknown) after this long.
    pub time_limit: Option<Duration>,
    /// Cap on the memo tables, in bytes, shared by the worker threads (each
    /// key's search may use `memo_bytes / threads`).
    pub memo_bytes: usize,
    /// Check every key even after one is invalid.
    pub all_keys: bool,
    /// Worker threads (at least 1).
    pub threads: usize,
    /// Counts keys as their search finishes, for a caller's progress display.
    pub progress: Option<Arc<AtomicUsize>>,
    /// Give up (verdict unknown) on a key after exploring this many
    /// configurations: a bound on the work, where `memo_bytes` bounds only
    /// the memory (a search can revisit its memo for ever).
    pub max_configurations: Option<u64>,
    /// Set (by a Ctrl-C handler) to stop the check: unknown, with how far
    /// each key's search had got.
    pub interrupt: Option<Arc<AtomicBool>>,
    /// Shrink each invalid key to its core ([`Explanation::core`]) for at
    /// most this long; `None` does not shrink.
    pub shrink: Option<Duration>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            time_limit: None,
            memo_bytes: 4 << 30,
            all_keys: false,
            threads: cores(),
            progress: None,
            max_configurations: None,
            interrupt: None,
            shrink: None,
        }
    }
}

/// The machine's cores, asked once: the answer costs file reads (cgroups).
fn cores() -> usize {
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// A history the checker cannot interpret (as opposed to a verdict).
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// Invocations and completions do not pair up.
    #[error(transparent)]
    Pair(#[from] PairError),
    /// An op the model does not understand.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// The model's parameters are wrong (e.g. a bad initial value).
    #[error("{0}")]
    Spec(String),
}

impl CheckError {
    /// The history index of the op at fault, if one is.
    pub fn index(&self) -> Option<usize> {
        match self {
            CheckError::Pair(e) => Some(e.index()),
            CheckError::Model(e) => Some(e.index),
            CheckError::Spec(_) => None,
        }
    }
}

/// One op, as reported in results and explanations.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct OpRef {
    /// History index of the invocation.
    pub index: usize,
    /// History index of the completion, if it completed.
    pub complete_index: Option<usize>,
    /// The process.
    pub process: u64,
    /// `ok`, or `info` for indeterminate ops.
    #[serde(rename = "type")]
    pub op_type: &'static str,
    /// The function: borrowed for the common names, so explaining a long
    /// prefix allocates no string per op.
    pub f: Cow<'static, str>,
    /// The value.
    pub value: Value,
    /// Invocation time (ns), when recorded.
    pub time: Option<u64>,
    /// Completion time (ns), when recorded.
    pub complete_time: Option<u64>,
}

impl OpRef {
    fn of(call: &Call) -> OpRef {
        OpRef {
            index: call.invoke_index,
            complete_index: call.complete_index,
            process: call.process,
            op_type: match call.outcome {
                Outcome::Ok => "ok",
                Outcome::Indeterminate => "info",
            },
            f: function_name(call.f),
            value: call.value.clone(),
            time: call.invoke_time,
            complete_time: call.complete_time,
        }
    }
}

/// `f` as a name that allocates nothing when it is one the models know.
fn function_name(f: &str) -> Cow<'static, str> {
    const KNOWN: [&str; 12] = [
        "read", "write", "cas", "acquire", "release", "add", "enqueue", "dequeue", "get", "put",
        "append", "txn",
    ];
    match KNOWN.iter().find(|&&k| k == f) {
        Some(&k) => Cow::Borrowed(k),
        None => Cow::Owned(f.to_string()),
    }
}

/// Why a key is not linearizable: the furthest the search got.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Explanation {
    /// In words: "can't read 3: register holds 1 or 4".
    pub message: String,
    /// The first op that cannot be linearized.
    pub op: OpRef,
    /// The last `ok` op to complete before it did.
    pub last_ok: Option<OpRef>,
    /// The longest linearizable prefix found, in linearization order.
    pub prefix: Vec<OpRef>,
    /// The model states from which the op was refused.
    pub states: Vec<Value>,
    /// The key's core, when shrunk: the fewest of its ops (in history
    /// order) that are still not linearizable. Every op left out is one
    /// whose absence cannot create a violation, so this sub-history alone
    /// proves the key is not linearizable.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub core: Vec<OpRef>,
}

/// A key's verdict, or `skipped` when an earlier key already decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyVerdict {
    /// Linearizable.
    Valid,
    /// Not linearizable.
    Invalid,
    /// Budget ran out.
    Unknown,
    /// Not needed: another key was proven invalid first (see the module
    /// docs for which).
    Skipped,
}

/// One key's result.
#[derive(Clone, Debug, Serialize)]
pub struct KeyResult {
    /// The verdict.
    pub valid: KeyVerdict,
    /// Ops of this key that the search considered.
    pub ops: usize,
    /// Why it is unknown (or why a key stopped part-way was not needed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Why it is invalid.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub explanation: Option<Explanation>,
    /// Configurations the search recorded.
    pub configurations: usize,
}

/// The result of a linearizability check.
#[derive(Clone, Debug, Serialize)]
pub struct CheckResult {
    /// The overall verdict: the worst of the keys'.
    pub valid: Validity,
    /// The model's name.
    pub model: String,
    /// Client operations (invocations) in the history, failed ones included.
    pub ops: usize,
    /// Per key, for histories over keys (empty otherwise).
    pub keys: BTreeMap<String, KeyResult>,
    /// The first invalid key in check order, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_invalid_key: Option<String>,
    /// Why the verdict is unknown.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The explanation of the first invalid key (or of the whole history).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub explanation: Option<Explanation>,
    /// Wall time of the check, in milliseconds.
    pub elapsed_ms: f64,
}

/// How many partitions (keys) `history` has: the total behind [`Options::progress`].
pub fn partition_count(history: &[Op]) -> usize {
    let keys: std::collections::HashSet<Option<&str>> = history
        .iter()
        .filter(|o| !o.is_nemesis())
        .map(|o| o.key.as_deref())
        .collect();
    keys.len()
}

/// The anomaly kind of a failed linearizability check.
pub const NOT_LINEARIZABLE: &str = "not-linearizable";

impl CheckResult {
    /// The stored outcome of this result, named `checker`: one
    /// `not-linearizable` anomaly per invalid key (or one for the whole
    /// history when it has no keys), whose ops are the op that could not be
    /// linearized and the last `ok` op before it; the result itself in the
    /// details.
    pub fn outcome(&self, checker: &str) -> CheckOutcome {
        let mut anomalies = Vec::new();
        for (key, key_result) in &self.keys {
            if key_result.valid == KeyVerdict::Invalid {
                let explanation = key_result.explanation.as_ref();
                anomalies.push(not_linearizable(checker, Some(key), explanation));
            }
        }
        if anomalies.is_empty() && self.valid == Validity::Invalid {
            let key = self.first_invalid_key.as_ref();
            anomalies.push(not_linearizable(checker, key, self.explanation.as_ref()));
        }
        let mut result =
            CheckerResult::new(self.valid).with_details(details_of(self, "linearizability"));
        if !anomalies.is_empty() {
            result = result.with_anomalies(NOT_LINEARIZABLE, anomalies.len());
        }
        CheckOutcome {
            checker: checker.to_string(),
            result,
            anomalies,
        }
    }
}

fn not_linearizable(
    checker: &str,
    key: Option<&String>,
    explanation: Option<&Explanation>,
) -> Anomaly {
    let mut anomaly =
        Anomaly::new(NOT_LINEARIZABLE, checker, "not linearizable").with_key(key.cloned());
    if let Some(explanation) = explanation {
        let culprit = &explanation.op;
        anomaly.ops.push(culprit.index as u64);
        anomaly.ops.extend(culprit.complete_index.map(|i| i as u64));
        if let Some(last_ok) = &explanation.last_ok {
            anomaly.ops.push(last_ok.index as u64);
            anomaly.ops.extend(last_ok.complete_index.map(|i| i as u64));
        }
        anomaly.ops.sort_unstable();
        anomaly.ops.dedup();
        anomaly.time = culprit.time;
        anomaly.explanation = explanation.message.clone();
    }
    anomaly
}

/// Checks `history` against `spec`.
pub fn check(
    history: &[Op],
    spec: &ModelSpec,
    options: &Options,
) -> Result<CheckResult, CheckError> {
    let started = Instant::now();
    let ops = history
        .iter()
        .filter(|o| !o.is_nemesis() && o.op_type == crate::history::OpType::Invoke)
        .count();
    let calls = pair(history)?;
    let partitions = partition(calls);
    check_from(&partitions, ops, spec, options, started)
}

/// Checks calls already paired and split by key, in check order (numeric
/// keys by value, then the others; calls without a key first), each key's
/// in invocation order, as [`check`] splits a history; `ops` counts the
/// client invocations, failed ones included. The streamed reader
/// ([`crate::history::stream::KeyedHistory::partitions`]) builds them.
pub fn check_partitions(
    partitions: &[Partition],
    ops: usize,
    spec: &ModelSpec,
    options: &Options,
) -> Result<CheckResult, CheckError> {
    check_from(partitions, ops, spec, options, Instant::now())
}

fn check_from(
    partitions: &[Partition],
    ops: usize,
    spec: &ModelSpec,
    options: &Options,
    started: Instant,
) -> Result<CheckResult, CheckError> {
    let keyed = partitions.iter().any(|(k, _)| k.is_some());

    let stop = AtomicBool::new(false);
    let cutoff = AtomicUsize::new(usize::MAX);
    let results = with_watchdog(&stop, options.time_limit, || {
        run_partitions(partitions, spec, options, &stop, &cutoff)
    });

    let mut result = CheckResult {
        valid: if ops == 0 {
            Validity::Unknown
        } else {
            Validity::Valid
        },
        model: spec.kind.name().to_string(),
        ops,
        keys: BTreeMap::new(),
        first_invalid_key: None,
        reason: (ops == 0).then(|| crate::verdict::NO_OPERATIONS.to_string()),
        explanation: None,
        elapsed_ms: 0.0,
    };
    let decided_at = if options.all_keys {
        usize::MAX
    } else {
        cutoff.load(Ordering::SeqCst)
    };
    for (i, ((key, calls), outcome)) in partitions.iter().zip(results).enumerate() {
        let mut key_result = if i > decided_at {
            KeyResult {
                valid: KeyVerdict::Skipped,
                ops: calls.len(),
                reason: None,
                explanation: None,
                configurations: 0,
            }
        } else {
            outcome.ok_or_else(|| CheckError::Spec("a partition was not checked".into()))??
        };
        match key_result.valid {
            KeyVerdict::Invalid if result.valid != Validity::Invalid => {
                result.valid = Validity::Invalid;
                result.first_invalid_key = key.map(str::to_string);
                result.explanation = match keyed {
                    true => key_result.explanation.clone(),
                    false => key_result.explanation.take(),
                };
            }
            KeyVerdict::Unknown => {
                result.valid = result.valid.and(Validity::Unknown);
                if result.reason.is_none() {
                    result.reason = key_result.reason.clone();
                }
            }
            _ => {}
        }
        if keyed {
            result
                .keys
                .insert(key.unwrap_or_default().to_string(), key_result);
        }
    }
    result.elapsed_ms = started.elapsed().as_secs_f64() * 1e3;
    Ok(result)
}

/// One key's calls: the key (`None` for calls without one) and its calls.
pub type Partition<'a> = (Option<&'a str>, Vec<Call<'a>>);

/// Groups calls by key, in check order: numeric keys by value, then others.
fn partition(calls: Vec<Call<'_>>) -> Vec<Partition<'_>> {
    if calls.iter().all(|c| c.key.is_none()) {
        return vec![(None, calls)];
    }
    let mut by_key: BTreeMap<(u8, i128, Option<&str>), Vec<Call>> = BTreeMap::new();
    for call in calls {
        let order = match call.key.map(str::parse::<i128>) {
            None => (0, 0),
            Some(Ok(n)) => (1, n),
            Some(Err(_)) => (2, 0),
        };
        by_key
            .entry((order.0, order.1, call.key))
            .or_default()
            .push(call);
    }
    by_key.into_iter().map(|((_, _, k), v)| (k, v)).collect()
}

/// Runs `work`; if a limit is given, a watchdog thread sets `stop` when it passes.
fn with_watchdog<T>(stop: &AtomicBool, limit: Option<Duration>, work: impl FnOnce() -> T) -> T {
    let Some(limit) = limit else { return work() };
    std::thread::scope(|scope| {
        let (done, wait) = mpsc::channel::<()>();
        scope.spawn(move || {
            if wait.recv_timeout(limit) == Err(mpsc::RecvTimeoutError::Timeout) {
                stop.store(true, Ordering::SeqCst);
            }
        });
        let out = work();
        drop(done);
        out
    })
}

type PartitionOutcome = Option<Result<KeyResult, CheckError>>;

/// Steps of the search each key may take in the first round of
/// [`run_partitions`]; each later round allows [`ROUND_GROWTH`] times more.
const FIRST_ROUND: u64 = 1 << 16;
const ROUND_GROWTH: u64 = 8;

/// Checks the partitions in rounds, so that one hard key cannot hold up the
/// verdict when another is quickly proven invalid, and the answer does not
/// depend on thread timing:
/// - each round runs every undecided key with the same bound on its steps
///   (the first [`FIRST_ROUND`]); whether a key is decided within a bound is
///   a property of the key alone;
/// - after a round in which some key was proven invalid, the keys left
///   undecided are not needed: they are skipped, and the invalid key
///   reported is the first (in check order) of that round;
/// - otherwise the undecided keys run again, from scratch, with
///   [`ROUND_GROWTH`] times the bound (so the repeated work is at most a
///   seventh), until the bound is the caller's `max_configurations`. A lone
///   undecided key, or any key under `all_keys`, gets that bound at once.
///
/// Valid keys are always searched to the end, so a valid history's verdict
/// is what one unbounded search would give.
fn run_partitions(
    partitions: &[Partition],
    spec: &ModelSpec,
    options: &Options,
    stop: &AtomicBool,
    cutoff: &AtomicUsize,
) -> Vec<PartitionOutcome> {
    let limit = options.max_configurations.unwrap_or(u64::MAX);
    let mut outcomes: Vec<PartitionOutcome> = (0..partitions.len()).map(|_| None).collect();
    let mut pending: Vec<usize> = (0..partitions.len()).collect();
    let mut bound = FIRST_ROUND.min(limit);
    while !pending.is_empty() {
        if options.all_keys || pending.len() == 1 {
            bound = limit;
        }
        let round = Round {
            partitions,
            pending: &pending,
            bound,
            limit,
        };
        let mut again = Vec::new();
        for (i, outcome) in round.run(spec, options, stop, cutoff) {
            match outcome {
                Ok(Checked {
                    cut_short: Some(explored),
                    ..
                }) => again.push((i, explored)),
                outcome => outcomes[i] = Some(outcome.map(|c| c.result)),
            }
        }
        again.sort_unstable();
        if cutoff.load(Ordering::SeqCst) != usize::MAX {
            for (i, explored) in again {
                outcomes[i] = Some(Ok(not_needed(&partitions[i].1, explored)));
            }
            break;
        }
        pending = again.into_iter().map(|(i, _)| i).collect();
        bound = bound.saturating_mul(ROUND_GROWTH).min(limit);
    }
    outcomes
}

/// A key left undecided when another key of its round was proven invalid.
fn not_needed(calls: &[Call], explored: u64) -> KeyResult {
    KeyResult {
        valid: KeyVerdict::Skipped,
        ops: calls.len(),
        reason: Some(format!(
            "not needed: another key was proven invalid while this one's search \
             was stopped after {explored} steps"
        )),
        explanation: None,
        configurations: 0,
    }
}

/// One round of [`run_partitions`]: the `pending` keys, each bounded to
/// `bound` steps of its search.
struct Round<'a, 'h> {
    partitions: &'a [Partition<'h>],
    pending: &'a [usize],
    bound: u64,
    limit: u64,
}

impl Round<'_, '_> {
    fn run(
        &self,
        spec: &ModelSpec,
        options: &Options,
        stop: &AtomicBool,
        cutoff: &AtomicUsize,
    ) -> Vec<(usize, Result<Checked, CheckError>)> {
        let next = AtomicUsize::new(0);
        let threads = options.threads.clamp(1, self.pending.len().max(1));
        let worker = || {
            let mut done = Vec::new();
            loop {
                let Some(&i) = self.pending.get(next.fetch_add(1, Ordering::SeqCst)) else {
                    break done;
                };
                if !options.all_keys && cutoff.load(Ordering::SeqCst) < i {
                    continue;
                }
                let outcome = self.check(i, spec, options, stop, cutoff, threads);
                if let Ok(Checked {
                    result:
                        KeyResult {
                            valid: KeyVerdict::Invalid,
                            ..
                        },
                    ..
                })
                | Err(_) = outcome
                {
                    cutoff.fetch_min(i, Ordering::SeqCst);
                }
                if let (
                    Some(progress),
                    Ok(Checked {
                        cut_short: None, ..
                    }),
                ) = (&options.progress, &outcome)
                {
                    progress.fetch_add(1, Ordering::Relaxed);
                }
                done.push((i, outcome));
            }
        };
        if threads == 1 {
            return worker();
        }
        std::thread::scope(|scope| {
            let handles: Vec<_> = (0..threads).map(|_| scope.spawn(worker)).collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().expect("a checker worker panicked"))
                .collect()
        })
    }

    fn check(
        &self,
        i: usize,
        spec: &ModelSpec,
        options: &Options,
        stop: &AtomicBool,
        cutoff: &AtomicUsize,
        threads: usize,
    ) -> Result<Checked, CheckError> {
        let budget = Budget {
            stop,
            cutoff: if options.all_keys { &NEVER_CUT } else { cutoff },
            partition: i,
            memo_bytes: options.memo_bytes / threads,
            max_explored: self.bound,
            interrupt: options.interrupt.as_deref(),
        };
        let mut checked = check_partition(spec, &self.partitions[i].1, &budget, options.shrink)?;
        let over_bound = checked
            .cut_short
            .is_some_and(|explored| explored > self.bound);
        if !(over_bound && self.bound < self.limit) {
            checked.cut_short = None;
        }
        Ok(checked)
    }
}

/// One key's result, and whether its search was stopped by its round's
/// bound (after this many steps) rather than finished.
struct Checked {
    result: KeyResult,
    cut_short: Option<u64>,
}

static NEVER_CUT: AtomicUsize = AtomicUsize::new(usize::MAX);

/// Checks one key's calls with a fresh instance of the chosen model.
fn check_partition(
    spec: &ModelSpec,
    calls: &[Call],
    budget: &Budget,
    shrink: Option<Duration>,
) -> Result<Checked, CheckError> {
    let nil = spec.nil_read;
    match spec.kind {
        ModelKind::Register => {
            check_with(Register::new(&spec.init, false, nil), calls, budget, shrink)
        }
        ModelKind::CasRegister => {
            check_with(Register::new(&spec.init, true, nil), calls, budget, shrink)
        }
        ModelKind::MultiRegister => {
            let model = MultiRegister::new(&spec.init, nil).map_err(CheckError::Spec)?;
            check_with(model, calls, budget, shrink)
        }
        ModelKind::Mutex => check_with(Mutex, calls, budget, shrink),
        ModelKind::Set => check_with(Set::default(), calls, budget, shrink),
        ModelKind::FifoQueue => check_with(Queue::new(true), calls, budget, shrink),
        ModelKind::UnorderedQueue => check_with(Queue::new(false), calls, budget, shrink),
        ModelKind::Kv => check_with(
            Kv::new(&spec.init).map_err(CheckError::Spec)?,
            calls,
            budget,
            shrink,
        ),
        ModelKind::Counter => check_with(
            Counter::new(&spec.init).map_err(CheckError::Spec)?,
            calls,
            budget,
            shrink,
        ),
    }
}

fn check_with<M: Model>(
    mut model: M,
    calls: &[Call],
    budget: &Budget,
    shrink: Option<Duration>,
) -> Result<Checked, CheckError> {
    let mut ops = Vec::with_capacity(calls.len());
    let mut origin = Vec::with_capacity(calls.len());
    for (i, call) in calls.iter().enumerate() {
        if let Some(op) = model.compile(call)? {
            ops.push(SearchOp {
                op,
                call_at: call.invoke_index,
                return_at: match call.outcome {
                    Outcome::Ok => call.complete_index,
                    Outcome::Indeterminate => None,
                },
            });
            origin.push(i);
        }
    }
    // Indeterminate ops whose effect nothing could observe are never needed.
    let mut kept = 0;
    for i in 0..ops.len() {
        if !(ops[i].return_at.is_none() && model.droppable(&ops[i].op)) {
            ops.swap(kept, i);
            origin.swap(kept, i);
            kept += 1;
        }
    }
    ops.truncate(kept);
    origin.truncate(kept);
    let (
        outcome,
        SearchStats {
            configurations,
            explored,
            ..
        },
    ) = search(&model, &ops, budget);
    let mut result = KeyResult {
        valid: KeyVerdict::Valid,
        ops: ops.len(),
        reason: None,
        explanation: None,
        configurations,
    };
    match outcome {
        Search::Valid => {}
        Search::Unknown(reason) => {
            result.valid = KeyVerdict::Unknown;
            result.reason = Some(reason);
        }
        Search::Invalid(failure) => {
            result.valid = KeyVerdict::Invalid;
            let mut explanation = explain(&model, &ops, &origin, calls, failure);
            if let Some(limit) = shrink {
                let budget = shrink::ShrinkBudget {
                    limit,
                    explored: configurations as u64,
                    interrupt: budget.interrupt,
                };
                explanation.core = core_of(&model, &ops, &origin, calls, &budget);
            }
            result.explanation = Some(explanation);
        }
    }
    let cut_short = (result.valid == KeyVerdict::Unknown).then_some(explored);
    Ok(Checked { result, cut_short })
}

/// The key's core as ops, in history order (empty when nothing could be
/// dropped in time).
fn core_of<M: Model>(
    model: &M,
    ops: &[SearchOp<M::Op>],
    origin: &[usize],
    calls: &[Call],
    budget: &shrink::ShrinkBudget,
) -> Vec<OpRef> {
    let Some(core) = shrink::shrink(model, ops, budget) else {
        return Vec::new();
    };
    let mut core: Vec<OpRef> = core.iter().map(|&i| OpRef::of(&calls[origin[i]])).collect();
    core.sort_by_key(|o| o.index);
    core
}

fn explain<M: Model>(
    model: &M,
    ops: &[SearchOp<M::Op>],
    origin: &[usize],
    calls: &[Call],
    failure: Failure<M::State>,
) -> Explanation {
    let failed = &calls[origin[failure.op]];
    let states: Vec<Value> = failure.states.iter().map(|s| model.state_json(s)).collect();
    let shown: Vec<String> = states
        .iter()
        .map(|v| v.to_string().replace("null", "nil"))
        .collect();
    let op_text = model.show_op(&ops[failure.op].op);
    let message = if shown.is_empty() {
        format!("can't {op_text}: no order of the concurrent ops allows it")
    } else {
        format!("can't {op_text}: {} {}", model.noun(), shown.join(" or "))
    };
    let failed_return = failed.complete_index.unwrap_or(usize::MAX);
    let last_ok = calls
        .iter()
        .filter(|c| c.outcome == Outcome::Ok && c.complete_index < Some(failed_return))
        .max_by_key(|c| c.complete_index)
        .map(OpRef::of);
    Explanation {
        message,
        op: OpRef::of(failed),
        last_ok,
        prefix: failure
            .prefix
            .iter()
            .map(|&i| OpRef::of(&calls[origin[i]]))
            .collect(),
        states,
        core: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::OpType;
    use crate::model::ModelKind;
    use serde_json::json;

    #[test]
    fn a_stale_register_read_becomes_a_not_linearizable_anomaly() {
        // write 1 completes, then a read that starts later returns 0.
        let write = Op::invoke(1, "write", json!(1)).with_key("k1");
        let read = Op::invoke(2, "read", json!(null)).with_key("k1");
        let history: Vec<Op> = [
            write.clone(),
            write.completed(OpType::Ok, json!(1)),
            read.clone(),
            read.completed(OpType::Ok, json!(0)),
        ]
        .into_iter()
        .enumerate()
        .map(|(i, mut op)| {
            op.index = i as u64;
            op.time = Some(i as u64 * 1_000);
            op
        })
        .collect();
        let spec = ModelSpec {
            init: json!(0),
            ..ModelSpec::new(ModelKind::Register)
        };
        let result = check(&history, &spec, &Options::default()).unwrap();
        let outcome = result.outcome("linearizable");
        assert_eq!(outcome.result.valid, Validity::Invalid);
        assert_eq!(outcome.result.anomalies[NOT_LINEARIZABLE], 1);
        assert_eq!(outcome.anomalies.len(), 1);
        let anomaly = &outcome.anomalies[0];
        assert_eq!(anomaly.key.as_deref(), Some("k1"));
        assert!(anomaly.ops.contains(&2), "{anomaly:?}");
        assert_eq!(anomaly.time, Some(2_000));
        assert!(!anomaly.explanation.is_empty());
    }
}
