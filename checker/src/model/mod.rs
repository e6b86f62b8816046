//! Consistency models: pure step functions over hashable states.
//!
//! A model first *compiles* each [`Call`] of one partition into its own compact
//! op (values interned to small integers, so states are cheap to hash, compare
//! and clone), then the search only calls [`Model::step`]: `None` means the op
//! is illegal in that state.
//!
//! - [`register`]: `register` (read/write) and `cas-register` (read/write/cas).
//! - [`multi_register`]: `txn`s of reads and writes over several registers.
//! - [`mutex`]: a lock with acquire and release.
//! - [`set`]: add an element, read the whole set.
//! - [`queue`]: `fifo-queue` and `unordered-queue` (enqueue/dequeue).
//! - [`counter`]: add to a count, read it.
//! - [`kv`]: a string per key with get, put and append (Porcupine's `kv`).

pub mod counter;
pub mod kv;
pub mod multi_register;
pub mod mutex;
pub mod queue;
pub mod register;
pub mod set;

use rustc_hash::FxHashMap;
use std::fmt::Debug;
use std::hash::Hash;
use std::str::FromStr;

use serde_json::Value;

use crate::pair::{Call, Outcome};

/// A sequential specification that the search linearizes against.
pub trait Model: Send + Sync {
    /// The model's state; compared in full whenever a memo lookup hits.
    type State: Clone + Eq + Hash + Send + Debug;
    /// A compiled operation (input and observed output together). Equal ops
    /// are interchangeable, which the search uses to skip symmetric orders.
    type Op: Clone + Send + Sync + Debug + Eq + Hash;

    /// Compiles a call. `Ok(None)` drops it: it constrains nothing (an
    /// indeterminate read, or a read of nil under [`NilRead::Unknown`]).
    fn compile(&mut self, call: &Call) -> Result<Option<Self::Op>, ModelError>;
    /// The initial state; called after every call has been compiled.
    fn init(&self) -> Self::State;
    /// The state after `op`, or `None` when `op` is illegal in `state`.
    fn step(&self, state: &Self::State, op: &Self::Op) -> Option<Self::State>;
    /// Whether `op` never changes the state when it is legal (a read). The
    /// search linearizes such an op as soon as it is legal, without trying
    /// the orders that place it later: they can only be equivalent.
    fn pure(&self, _op: &Self::Op) -> bool {
        false
    }
    /// Whether an indeterminate `op` can be left out: no op of the history
    /// could observe its effect (a write of a value nobody reads), so a
    /// linearization never needs it. Asked after every call is compiled.
    fn droppable(&self, _op: &Self::Op) -> bool {
        false
    }
    /// Whether `op` may be dropped from a history, `rest` staying, without
    /// making a linearizable history non-linearizable (what makes a shrunk
    /// counterexample sound: see `linearizable::shrink`). A pure op always
    /// may: taken out of a linearization, every state stays the same.
    fn removable(&self, op: &Self::Op, _rest: &[&Self::Op]) -> bool {
        self.pure(op)
    }
    /// The state as JSON, for explanations.
    fn state_json(&self, state: &Self::State) -> Value;
    /// The op in words, e.g. `read 3`, `cas 1 -> 2`.
    fn show_op(&self, op: &Self::Op) -> String;
    /// The subject and verb that precede a state in explanations, e.g.
    /// `register holds` in "can't read 3: register holds 1 or 4".
    fn noun(&self) -> &'static str;
}

/// An op the model cannot interpret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("op {index} ({f} {value}): {message}")]
pub struct ModelError {
    /// History index of the invocation.
    pub index: usize,
    /// The op's function.
    pub f: String,
    /// The op's value, as JSON text.
    pub value: String,
    /// What is wrong.
    pub message: String,
}

impl ModelError {
    /// An error about `call`.
    pub fn new(call: &Call, message: impl Into<String>) -> Self {
        ModelError {
            index: call.invoke_index,
            f: call.f.to_string(),
            value: call.value.to_string(),
            message: message.into(),
        }
    }
}

/// How to read an `ok` read that returned nil.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum NilRead {
    /// Nil is a value: the register holds nothing (our own histories).
    #[default]
    Value,
    /// Knossos's convention: the client learned nothing; legal in any state.
    Unknown,
}

impl FromStr for NilRead {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "value" => Ok(NilRead::Value),
            "unknown" => Ok(NilRead::Unknown),
            _ => Err(format!("nil-read must be value or unknown, got {s:?}")),
        }
    }
}

/// The models the checker offers, by their command-line names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ModelKind {
    /// Read/write register.
    Register,
    /// Read/write/cas register.
    CasRegister,
    /// Transactions over several registers.
    MultiRegister,
    /// Acquire/release lock.
    Mutex,
    /// Add/read set.
    Set,
    /// FIFO queue.
    FifoQueue,
    /// Unordered queue (a multiset).
    UnorderedQueue,
    /// Add/read counter.
    Counter,
    /// A string with get, put and append.
    Kv,
}

impl ModelKind {
    /// Every model, in the order `--help` lists them.
    pub const ALL: [ModelKind; 9] = [
        ModelKind::Register,
        ModelKind::CasRegister,
        ModelKind::MultiRegister,
        ModelKind::Mutex,
        ModelKind::Set,
        ModelKind::FifoQueue,
        ModelKind::UnorderedQueue,
        ModelKind::Counter,
        ModelKind::Kv,
    ];

    /// The command-line name.
    pub fn name(self) -> &'static str {
        match self {
            ModelKind::Register => "register",
            ModelKind::CasRegister => "cas-register",
            ModelKind::MultiRegister => "multi-register",
            ModelKind::Mutex => "mutex",
            ModelKind::Set => "set",
            ModelKind::FifoQueue => "fifo-queue",
            ModelKind::UnorderedQueue => "unordered-queue",
            ModelKind::Counter => "counter",
            ModelKind::Kv => "kv",
        }
    }
}

impl FromStr for ModelKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        ModelKind::ALL
            .into_iter()
            .find(|m| m.name() == s)
            .ok_or_else(|| {
                let names: Vec<_> = ModelKind::ALL.iter().map(|m| m.name()).collect();
                format!("unknown model {s:?}; expected one of {}", names.join(", "))
            })
    }
}

/// A model with its parameters, as chosen by the user.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelSpec {
    /// Which model.
    pub kind: ModelKind,
    /// The initial value (`null` when not given).
    pub init: Value,
    /// How to read a nil read.
    pub nil_read: NilRead,
}

impl ModelSpec {
    /// A spec with a nil initial value and nil read as a value.
    pub fn new(kind: ModelKind) -> Self {
        ModelSpec {
            kind,
            init: Value::Null,
            nil_read: NilRead::Value,
        }
    }
}

/// Interns JSON values to dense ids, so model states are small integers.
#[derive(Clone, Debug, Default)]
pub struct Interner {
    ids: FxHashMap<String, u32>,
    /// Ids of nil and the small non-negative integers, the common values.
    small: Vec<u32>,
    values: Vec<Value>,
}

const SMALL: u64 = 64;

impl Interner {
    /// The id of `value`, adding it if new. Equal JSON values share an id.
    pub fn intern(&mut self, value: &Value) -> u32 {
        let slot = match value {
            Value::Null => Some(0),
            Value::Number(n) => n.as_u64().filter(|&n| n < SMALL).map(|n| n as usize + 1),
            _ => None,
        };
        if let Some(slot) = slot {
            if self.small.is_empty() {
                self.small = vec![u32::MAX; SMALL as usize + 1];
            }
            if self.small[slot] == u32::MAX {
                self.small[slot] = self.values.len() as u32;
                self.values.push(value.clone());
            }
            return self.small[slot];
        }
        let text = value.to_string();
        if let Some(&id) = self.ids.get(&text) {
            return id;
        }
        let id = self.values.len() as u32;
        self.ids.insert(text, id);
        self.values.push(value.clone());
        id
    }

    /// The value of `id`.
    pub fn value(&self, id: u32) -> &Value {
        &self.values[id as usize]
    }

    /// How many distinct values there are.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether no value was interned.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}

/// Whether `call` is an `ok` read that returned nil under Knossos's convention,
/// or an indeterminate read: either way it constrains nothing.
pub(crate) fn read_is_unconstrained(call: &Call, nil_read: NilRead) -> bool {
    call.outcome == Outcome::Indeterminate || (nil_read == NilRead::Unknown && call.value.is_null())
}

/// The `[a, b]` pair of a cas value.
pub(crate) fn pair_of<'a>(
    call: &'a Call,
    what: &str,
) -> Result<(&'a Value, &'a Value), ModelError> {
    match call.value.as_array().map(Vec::as_slice) {
        Some([a, b]) => Ok((a, b)),
        _ => Err(ModelError::new(call, format!("expected {what}"))),
    }
}
