//! Property tests of the linearizability checker.
//!
//! Claims:
//! - (a) a history produced by *running* a sequential model — cas-register,
//!   set, counter, FIFO queue — with 2–6 processes, overlapping intervals,
//!   each op taking effect at a point inside its interval, `info` ops that
//!   take effect at some point after their invocation (even after their
//!   `info` line) or never, `fail` ops that never take effect, and ops left
//!   uncompleted at the end, is judged valid;
//! - (b) small random register / cas-register histories (≤ 8 ops, ≤ 4
//!   processes, random interleaving, values 0..3 and nil, random `ok` / `fail`
//!   / `info` / never-completed outcomes) get the verdict of a brute-force
//!   oracle written here, under both nil-read conventions;
//! - (c) a simulated history with one `ok` read's value changed gets the
//!   oracle's verdict too (and the unmutated one is valid for both).
//!
//! Times are random and unordered throughout: only line order may matter.
//! Proptest prints the minimal failing input; the message carries the history
//! as JSONL.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::time::Duration;

use std::path::Path;

use checker::history::{parse_jsonl, Op, OpType, Process};
use checker::linearizable::{check, Options};
use checker::model::{ModelKind, ModelSpec, NilRead};
use checker::Validity;
use proptest::collection::vec;
use proptest::prelude::*;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

// ---------------------------------------------------------------------------
// Shared helpers

fn jsonl(history: &[Op]) -> String {
    history
        .iter()
        .map(|op| serde_json::to_string(op).unwrap() + "\n")
        .collect()
}

/// The checker's verdict. A budget far beyond what these small histories
/// need turns a runaway search into `unknown`, which every property refuses.
fn verdict(history: &[Op], spec: &ModelSpec) -> Validity {
    let options = Options {
        threads: 1,
        time_limit: Some(Duration::from_secs(5)),
        memo_bytes: 256 << 20,
        ..Options::default()
    };
    check(history, spec, &options)
        .unwrap_or_else(|e| panic!("{e}\n{}", jsonl(history)))
        .valid
}

/// An event line with a deliberately meaningless time.
fn line(process: u64, op_type: OpType, f: &str, value: Value, time: u32) -> Op {
    let mut op = Op::invoke(process, f, Value::Null).completed(op_type, value);
    op.time = Some(u64::from(time % 1000));
    op
}

// ---------------------------------------------------------------------------
// (a) Simulating a sequential model

/// A sequential specification the simulator runs; its own code, independent
/// of the checker's models.
trait Sequential {
    type State: Clone;
    fn spec(&self) -> ModelSpec;
    fn init(&self) -> Self::State;
    /// A new op's `f` and invocation value, from random bits.
    fn generate(&self, bits: u32) -> (&'static str, Value);
    /// The state after the op and the value its `ok` completion carries, or
    /// `None` if the op cannot take effect in `state` (it fails).
    fn apply(&self, state: &Self::State, f: &str, value: &Value) -> Option<(Self::State, Value)>;
    /// Whether an op with this `f` may end indeterminate: `info`, or never
    /// completed (some checker models cannot express every indeterminate op;
    /// see the unordered-queue test).
    fn may_be_info(&self, _f: &str) -> bool {
        true
    }
}

struct CasRegisterSim {
    init: Value,
    values: u32,
}

impl Sequential for CasRegisterSim {
    type State = Value;
    fn spec(&self) -> ModelSpec {
        ModelSpec {
            init: self.init.clone(),
            ..ModelSpec::new(ModelKind::CasRegister)
        }
    }
    fn init(&self) -> Value {
        self.init.clone()
    }
    fn generate(&self, bits: u32) -> (&'static str, Value) {
        let (a, b) = ((bits >> 2) % self.values, (bits >> 8) % self.values);
        match bits % 3 {
            0 => ("read", Value::Null),
            1 => ("write", json!(a)),
            _ => ("cas", json!([a, b])),
        }
    }
    fn apply(&self, state: &Value, f: &str, value: &Value) -> Option<(Value, Value)> {
        match f {
            "read" => Some((state.clone(), state.clone())),
            "write" => Some((value.clone(), value.clone())),
            _ => (*state == value[0]).then(|| (value[1].clone(), value.clone())),
        }
    }
}

/// A grow-only set over elements `0..elements`.
struct SetSim {
    elements: u32,
    /// Whether adds may end indeterminate.
    info_adds: bool,
}

impl Sequential for SetSim {
    type State = BTreeSet<u32>;
    fn spec(&self) -> ModelSpec {
        ModelSpec::new(ModelKind::Set)
    }
    fn init(&self) -> BTreeSet<u32> {
        BTreeSet::new()
    }
    fn generate(&self, bits: u32) -> (&'static str, Value) {
        match bits % 2 {
            0 => ("read", Value::Null),
            _ => ("add", json!((bits >> 1) % self.elements)),
        }
    }
    fn apply(&self, set: &BTreeSet<u32>, f: &str, value: &Value) -> Option<(BTreeSet<u32>, Value)> {
        let mut next = set.clone();
        match f {
            "read" => Some((next, json!(set.iter().rev().collect::<Vec<_>>()))),
            _ => {
                next.insert(value.as_u64().unwrap() as u32);
                Some((next, value.clone()))
            }
        }
    }
    fn may_be_info(&self, f: &str) -> bool {
        self.info_adds || f != "add"
    }
}

struct CounterSim;

impl Sequential for CounterSim {
    type State = i64;
    fn spec(&self) -> ModelSpec {
        ModelSpec::new(ModelKind::Counter)
    }
    fn init(&self) -> i64 {
        0
    }
    fn generate(&self, bits: u32) -> (&'static str, Value) {
        match bits % 2 {
            0 => ("read", Value::Null),
            _ => ("add", json!(i64::from((bits >> 1) % 6) - 2)),
        }
    }
    fn apply(&self, count: &i64, f: &str, value: &Value) -> Option<(i64, Value)> {
        match f {
            "read" => Some((*count, json!(count))),
            _ => Some((count + value.as_i64().unwrap(), value.clone())),
        }
    }
}

/// A FIFO queue; every FIFO execution is also an unordered-queue execution.
/// With `unique_values`, every enqueued value is (almost surely) distinct, as
/// queue workloads make them: the unordered model needs that to place
/// indeterminate dequeues exactly (see `checker::model::queue`).
struct QueueSim {
    kind: ModelKind,
    info_dequeues: bool,
    unique_values: bool,
}

impl Sequential for QueueSim {
    type State = VecDeque<u32>;
    fn spec(&self) -> ModelSpec {
        ModelSpec::new(self.kind)
    }
    fn init(&self) -> VecDeque<u32> {
        VecDeque::new()
    }
    fn generate(&self, bits: u32) -> (&'static str, Value) {
        match bits % 2 {
            0 => ("dequeue", Value::Null),
            _ if self.unique_values => ("enqueue", json!(bits >> 1)),
            _ => ("enqueue", json!((bits >> 1) % 6)),
        }
    }
    fn apply(
        &self,
        queue: &VecDeque<u32>,
        f: &str,
        value: &Value,
    ) -> Option<(VecDeque<u32>, Value)> {
        let mut next = queue.clone();
        match f {
            "dequeue" => {
                let head = next.pop_front().map_or(Value::Null, |e| json!(e));
                Some((next, head))
            }
            _ => {
                next.push_back(value.as_u64().unwrap() as u32);
                Some((next, value.clone()))
            }
        }
    }
    fn may_be_info(&self, f: &str) -> bool {
        self.info_dequeues || f != "dequeue"
    }
}

/// What the simulator decided, at invocation, about how an op ends.
#[derive(Clone, Copy, PartialEq)]
enum Fate {
    Ok,
    Fail,
    Info { takes_effect: bool },
}

struct InFlight {
    f: &'static str,
    value: Value,
    fate: Fate,
    /// `None` until it took effect; then the completion value, or `None`
    /// inside if the model refused it (a cas whose `from` did not match).
    effect: Option<Option<Value>>,
}

/// Runs `model` with `processes` workers, driven by `tape` (one word per
/// step), invoking at most `max_ops` ops. Each step either applies a pending
/// `info` effect, or moves one worker: invoke, take effect, or complete.
fn simulate<M: Sequential>(model: &M, processes: usize, max_ops: usize, tape: &[u32]) -> Vec<Op> {
    let mut state = model.init();
    let mut workers: Vec<(u64, Option<InFlight>)> =
        (0..processes as u64).map(|p| (p, None)).collect();
    let mut detached: Vec<(&'static str, Value)> = Vec::new();
    let mut history = Vec::new();
    let mut invoked = 0;
    for &word in tape {
        let time = word >> 20;
        if word % 8 == 0 && !detached.is_empty() {
            let (f, value) = detached.swap_remove((word as usize >> 3) % detached.len());
            if let Some((next, _)) = model.apply(&state, f, &value) {
                state = next;
            }
            continue;
        }
        let (process, slot) = &mut workers[(word as usize >> 3) % processes];
        match slot.take() {
            None if invoked < max_ops => {
                invoked += 1;
                let (f, value) = model.generate(word >> 11);
                let fate = match (word >> 6) % 8 {
                    0 | 1 if model.may_be_info(f) => Fate::Info {
                        takes_effect: word & (1 << 9) != 0,
                    },
                    2 => Fate::Fail,
                    _ => Fate::Ok,
                };
                history.push(line(*process, OpType::Invoke, f, value.clone(), time));
                *slot = Some(InFlight {
                    f,
                    value,
                    fate,
                    effect: None,
                });
            }
            None => {}
            Some(mut op)
                if op.effect.is_none() && op.fate != Fate::Fail && word & (1 << 10) == 0 =>
            {
                let takes_effect = !matches!(
                    op.fate,
                    Fate::Info {
                        takes_effect: false
                    }
                );
                if takes_effect {
                    op.effect = Some(take_effect(model, &mut state, &op));
                }
                *slot = Some(op);
            }
            Some(op) => {
                let completion = complete(model, &mut state, op, &mut detached, *process, time);
                if completion.op_type == OpType::Info {
                    *process += processes as u64; // Jepsen retires a process after info.
                }
                history.push(completion);
            }
        }
    }
    // Ops that may not end indeterminate cannot be left uncompleted either.
    for (process, slot) in &mut workers {
        if let Some(op) = slot.take().filter(|op| !model.may_be_info(op.f)) {
            history.push(complete(model, &mut state, op, &mut detached, *process, 0));
        }
    }
    history
}

fn take_effect<M: Sequential>(model: &M, state: &mut M::State, op: &InFlight) -> Option<Value> {
    let (next, observed) = model.apply(state, op.f, &op.value)?;
    *state = next;
    Some(observed)
}

/// The completion line of `op`; an `ok` op takes effect now if it has not yet.
fn complete<M: Sequential>(
    model: &M,
    state: &mut M::State,
    op: InFlight,
    detached: &mut Vec<(&'static str, Value)>,
    process: u64,
    time: u32,
) -> Op {
    match op.fate {
        Fate::Fail => line(process, OpType::Fail, op.f, op.value, time),
        Fate::Info { takes_effect } => {
            if takes_effect && op.effect.is_none() {
                detached.push((op.f, op.value.clone()));
            }
            line(process, OpType::Info, op.f, op.value, time)
        }
        Fate::Ok => {
            let effect = op
                .effect
                .clone()
                .unwrap_or_else(|| take_effect(model, state, &op));
            match effect {
                Some(observed) => line(process, OpType::Ok, op.f, observed, time),
                None => line(process, OpType::Fail, op.f, op.value, time),
            }
        }
    }
}

fn assert_simulation_valid<M: Sequential>(
    model: &M,
    processes: usize,
    tape: &[u32],
) -> Result<(), TestCaseError> {
    let history = simulate(model, processes, usize::MAX, tape);
    let got = verdict(&history, &model.spec());
    prop_assert_eq!(
        got,
        unless_empty(&history, Validity::Valid),
        "simulated history judged {}:\n{}",
        got,
        jsonl(&history)
    );
    Ok(())
}

/// Up to `steps` simulation steps. Queues get fewer: a FIFO queue with many
/// indeterminate enqueues and dequeues is exponential for any checker (a
/// 62-line one with 17 indeterminate ops takes the release build 3.4 s).
fn tape(steps: usize) -> impl Strategy<Value = Vec<u32>> {
    vec(any::<u32>(), 0..steps)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn simulated_cas_register_histories_are_linearizable(
        processes in 2usize..=6,
        nil_init in any::<bool>(),
        tape in tape(160),
    ) {
        let init = if nil_init { Value::Null } else { json!(0) };
        assert_simulation_valid(&CasRegisterSim { init, values: 5 }, processes, &tape)?;
    }

    #[test]
    fn simulated_set_histories_are_linearizable(processes in 2usize..=6, tape in tape(160)) {
        assert_simulation_valid(&SetSim { elements: 8, info_adds: true }, processes, &tape)?;
    }

    #[test]
    fn simulated_counter_histories_are_linearizable(processes in 2usize..=6, tape in tape(160)) {
        assert_simulation_valid(&CounterSim, processes, &tape)?;
    }

    #[test]
    fn simulated_fifo_queue_histories_are_linearizable(processes in 2usize..=6, tape in tape(80)) {
        let model = QueueSim { kind: ModelKind::FifoQueue, info_dequeues: true, unique_values: false };
        assert_simulation_valid(&model, processes, &tape)?;
    }

    #[test]
    fn simulated_fifo_histories_without_info_dequeues_are_valid_unordered_queue_histories(
        processes in 2usize..=6,
        tape in tape(80),
    ) {
        let model = QueueSim { kind: ModelKind::UnorderedQueue, info_dequeues: false, unique_values: false };
        assert_simulation_valid(&model, processes, &tape)?;
    }

    #[test]
    fn simulated_fifo_histories_with_unique_values_are_valid_unordered_queue_histories(
        processes in 2usize..=6,
        tape in tape(80),
    ) {
        let model = QueueSim { kind: ModelKind::UnorderedQueue, info_dequeues: true, unique_values: true };
        assert_simulation_valid(&model, processes, &tape)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]

    /// Long enough for well over 64 `ok` ops and 64 indeterminate ones, so the
    /// linearized set and the memo keys span several words.
    #[test]
    fn long_simulated_cas_register_histories_are_linearizable(
        processes in 2usize..=6,
        nil_init in any::<bool>(),
        tape in vec(any::<u32>(), 1000..1500),
    ) {
        let init = if nil_init { Value::Null } else { json!(0) };
        assert_simulation_valid(&CasRegisterSim { init, values: 5 }, processes, &tape)?;
    }

    /// Adds of (almost always) distinct elements, more than 64 of them in most
    /// cases: the set model's bitset spans words. No indeterminate adds: with
    /// many of them a long set history gets slow (see
    /// `set_history_with_many_info_adds_is_valid`).
    #[test]
    fn long_simulated_set_histories_over_many_elements_are_linearizable(
        processes in 2usize..=6,
        tape in vec(any::<u32>(), 400..600),
    ) {
        assert_simulation_valid(&SetSim { elements: 1000, info_adds: false }, processes, &tape)?;
    }
}

/// A 374-line set history simulated with 6 processes, 1000 elements and
/// indeterminate adds (46 of them `info`, many never taking effect): valid,
/// and checked in well under a second now that adds no read could observe are
/// left out (it took seconds before).
#[test]
fn set_history_with_many_info_adds_is_valid() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/slow/set-many-info-adds-ok.jsonl");
    let history = parse_jsonl(&std::fs::read_to_string(&path).unwrap(), &path).unwrap();
    let started = std::time::Instant::now();
    let options = Options {
        time_limit: Some(Duration::from_secs(120)),
        ..Options::default()
    };
    let result = check(&history, &ModelSpec::new(ModelKind::Set), &options).unwrap();
    println!("checked in {:?}", started.elapsed());
    assert_eq!(result.valid, Validity::Valid, "{:?}", result.reason);
}

// ---------------------------------------------------------------------------
// The brute-force oracle

/// A register op as the oracle sees it.
#[derive(Clone, Debug)]
enum RegisterCall {
    /// An `ok` read that observed this value.
    Read(Value),
    Write(Value),
    Cas(Value, Value),
}

#[derive(Clone, Debug)]
struct OracleOp {
    call: RegisterCall,
    invoke_line: usize,
    /// The `ok` line; `None` for `info` and never-completed ops, which may
    /// take effect at any point after their invocation, or never.
    ok_line: Option<usize>,
}

/// Pairs lines by process, on its own: `ok` ops keep the completion's value,
/// `fail` ops are dropped, `info` and unfinished ops keep the invocation's,
/// reads that did not complete `ok` constrain nothing and are dropped.
fn oracle_ops(history: &[Op]) -> Vec<OracleOp> {
    let mut open: HashMap<Process, usize> = HashMap::new();
    let mut done = Vec::new();
    for (i, op) in history.iter().enumerate() {
        if op.op_type == OpType::Invoke {
            open.insert(op.process, i);
            continue;
        }
        let invoke_line = open.remove(&op.process).expect("completion of an open op");
        match op.op_type {
            OpType::Ok => done.push((invoke_line, Some(i), op.value.clone())),
            OpType::Info => done.push((invoke_line, None, history[invoke_line].value.clone())),
            _ => {}
        }
    }
    done.extend(
        open.into_values()
            .map(|i| (i, None, history[i].value.clone())),
    );
    done.into_iter()
        .filter_map(|(invoke_line, ok_line, value)| {
            let call = match history[invoke_line].f.as_str() {
                "read" if ok_line.is_none() => return None,
                "read" => RegisterCall::Read(value),
                "write" => RegisterCall::Write(value),
                _ => RegisterCall::Cas(value[0].clone(), value[1].clone()),
            };
            Some(OracleOp {
                call,
                invoke_line,
                ok_line,
            })
        })
        .collect()
}

/// Whether some order of all `ok` ops and any subset of the others, that
/// respects real time (an op that completed before another was invoked comes
/// first), is a legal sequential register history from `init`.
fn oracle_linearizable(history: &[Op], init: &Value, nil_read: NilRead) -> bool {
    let ops = oracle_ops(history);
    let mut placed = vec![false; ops.len()];
    extend(&ops, &mut placed, init, nil_read)
}

fn extend(ops: &[OracleOp], placed: &mut [bool], state: &Value, nil_read: NilRead) -> bool {
    let unplaced_ok_lines: Vec<usize> = (0..ops.len())
        .filter(|&j| !placed[j])
        .filter_map(|j| ops[j].ok_line)
        .collect();
    if unplaced_ok_lines.is_empty() {
        return true; // The rest took effect after the end, or never.
    }
    for i in 0..ops.len() {
        if placed[i] {
            continue;
        }
        // Any unplaced ok op that completed before `i` was invoked must come first.
        if unplaced_ok_lines
            .iter()
            .any(|&ok_line| ok_line < ops[i].invoke_line)
        {
            continue;
        }
        let next = match &ops[i].call {
            RegisterCall::Read(v) if v.is_null() && nil_read == NilRead::Unknown => {
                Some(state.clone())
            }
            RegisterCall::Read(v) => (v == state).then(|| state.clone()),
            RegisterCall::Write(v) => Some(v.clone()),
            RegisterCall::Cas(from, to) => (from == state).then(|| to.clone()),
        };
        if let Some(next) = next {
            placed[i] = true;
            let found = extend(ops, placed, &next, nil_read);
            placed[i] = false;
            if found {
                return true;
            }
        }
    }
    false
}

// ---------------------------------------------------------------------------
// (b) Small random histories

/// One generated op: worker, function, two value codes, read result, outcome.
type OpSpec = (u8, u8, u8, u8, u8, u8);

/// Value codes 0..=3: 0, 1, 2, nil.
fn value_of(code: u8) -> Value {
    match code % 4 {
        3 => Value::Null,
        n => json!(n),
    }
}

/// Interleaves the ops of `workers` workers as `schedule` says. Outcome codes:
/// 0 `info` (the process is retired), 1 `fail`, 2 never completed (the worker
/// stops), otherwise `ok`.
fn random_history(workers: usize, cas: bool, specs: &[OpSpec], schedule: &[u32]) -> Vec<Op> {
    let mut queues: Vec<VecDeque<OpSpec>> = vec![VecDeque::new(); workers];
    for spec in specs {
        queues[spec.0 as usize % workers].push_back(*spec);
    }
    let mut process: Vec<u64> = (0..workers as u64).collect();
    let mut in_flight: Vec<Option<(OpSpec, &'static str, Value)>> = vec![None; workers];
    let mut history = Vec::new();
    let mut draws = schedule.iter().cycle();
    loop {
        let ready: Vec<usize> = (0..workers)
            .filter(|&w| in_flight[w].is_some() || !queues[w].is_empty())
            .collect();
        let Some(&draw) = draws.next().filter(|_| !ready.is_empty()) else {
            break;
        };
        let w = ready[draw as usize % ready.len()];
        let time = draw >> 16;
        match in_flight[w].take() {
            None => {
                let spec = queues[w].pop_front().unwrap();
                let (f, value) = match spec.1 % if cas { 3 } else { 2 } {
                    0 => ("read", Value::Null),
                    1 => ("write", value_of(spec.2 % 3)),
                    _ => ("cas", json!([value_of(spec.2), value_of(spec.3 % 3)])),
                };
                history.push(line(process[w], OpType::Invoke, f, value.clone(), time));
                in_flight[w] = Some((spec, f, value));
            }
            Some((spec, f, value)) => match spec.5 % 6 {
                0 => {
                    history.push(line(process[w], OpType::Info, f, value, time));
                    process[w] += workers as u64;
                }
                1 => history.push(line(process[w], OpType::Fail, f, value, time)),
                2 => queues[w].clear(),
                _ => {
                    let value = if f == "read" { value_of(spec.4) } else { value };
                    history.push(line(process[w], OpType::Ok, f, value, time));
                }
            },
        }
    }
    history
}

fn register_spec(cas: bool, init: Value, nil_read: NilRead) -> ModelSpec {
    let kind = if cas {
        ModelKind::CasRegister
    } else {
        ModelKind::Register
    };
    ModelSpec {
        kind,
        init,
        nil_read,
    }
}

fn nil_read_of(unknown: bool) -> NilRead {
    if unknown {
        NilRead::Unknown
    } else {
        NilRead::Value
    }
}

/// `verdict`, or `unknown` for a history without a client op: an empty
/// history proves nothing.
fn unless_empty(history: &[Op], verdict: Validity) -> Validity {
    if history.iter().any(|o| !o.is_nemesis()) {
        verdict
    } else {
        Validity::Unknown
    }
}

fn agree_with_oracle(history: &[Op], spec: &ModelSpec) -> Result<(), TestCaseError> {
    let oracle = if oracle_linearizable(history, &spec.init, spec.nil_read) {
        Validity::Valid
    } else {
        Validity::Invalid
    };
    let expected = unless_empty(history, oracle);
    let got = verdict(history, spec);
    prop_assert_eq!(
        got,
        expected,
        "checker and oracle disagree ({:?}, init {}, nil-read {:?}):\n{}",
        spec.kind,
        spec.init,
        spec.nil_read,
        jsonl(history)
    );
    Ok(())
}

fn op_spec() -> impl Strategy<Value = OpSpec> {
    (0u8..4, 0u8..3, 0u8..4, 0u8..4, 0u8..4, 0u8..6)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn small_random_histories_agree_with_the_brute_force_oracle(
        workers in 1usize..=4,
        cas in any::<bool>(),
        nil_init in any::<bool>(),
        nil_unknown in any::<bool>(),
        specs in vec(op_spec(), 0..=8),
        schedule in vec(any::<u32>(), 1..24),
    ) {
        let history = random_history(workers, cas, &specs, &schedule);
        let init = if nil_init { Value::Null } else { json!(0) };
        agree_with_oracle(&history, &register_spec(cas, init, nil_read_of(nil_unknown)))?;
    }

    #[test]
    fn mutated_simulated_histories_agree_with_the_brute_force_oracle(
        processes in 2usize..=4,
        nil_init in any::<bool>(),
        nil_unknown in any::<bool>(),
        tape in vec(any::<u32>(), 0..60),
        which in any::<usize>(),
        new_value in 0u8..4,
    ) {
        let init = if nil_init { Value::Null } else { json!(0) };
        let model = CasRegisterSim { init: init.clone(), values: 3 };
        let mut history = simulate(&model, processes, 8, &tape);
        let spec = ModelSpec { nil_read: nil_read_of(nil_unknown), ..model.spec() };
        prop_assert!(oracle_linearizable(&history, &init, spec.nil_read), "oracle refuses a simulated history:\n{}", jsonl(&history));
        agree_with_oracle(&history, &spec)?;
        let ok_reads: Vec<usize> = (0..history.len())
            .filter(|&i| history[i].op_type == OpType::Ok && history[i].f == "read")
            .collect();
        prop_assume!(!ok_reads.is_empty());
        let read = &mut history[ok_reads[which % ok_reads.len()]];
        let mut replacement = value_of(new_value);
        if replacement == read.value {
            replacement = value_of(new_value + 1);
        }
        read.value = replacement;
        agree_with_oracle(&history, &spec)?;
    }
}

/// Guards against a vacuous comparison: the random histories of (b) must
/// include plenty of both verdicts. Seed printed; override with
/// `FAULTLINE_TEST_SEED`.
#[test]
fn random_histories_include_both_verdicts() {
    let seed = std::env::var("FAULTLINE_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed);
    println!("seed {seed}");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let (mut valid, total) = (0, 400);
    for _ in 0..total {
        let specs: Vec<OpSpec> = (0..rng.gen_range(1..=8))
            .map(|_| {
                (
                    rng.gen_range(0..4),
                    rng.gen_range(0..3),
                    rng.gen_range(0..4),
                    rng.gen_range(0..4),
                    rng.gen_range(0..4),
                    rng.gen_range(0..6),
                )
            })
            .collect();
        let schedule: Vec<u32> = (0..16).map(|_| rng.gen()).collect();
        let history = random_history(rng.gen_range(1..=4), true, &specs, &schedule);
        if oracle_linearizable(&history, &json!(0), NilRead::Value) {
            valid += 1;
        }
    }
    assert!(
        valid > total / 5 && valid < total * 4 / 5,
        "seed {seed}: {valid} of {total} valid"
    );
}
