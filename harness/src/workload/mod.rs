//! Workloads: what a test does to the system and how its history is judged
//! (Jepsen's `workload` maps). Each is an endless generator for the main
//! phase, final reads after the faults heal, and its checkers; the client
//! that performs the ops comes from the system under test
//! ([`crate::system::System::client`]).
//!
//! - `register`: read/write/cas over independent keys that rotate after a
//!   per-key op limit; the linearizability checker (`cas-register`) per key.
//! - `set`: unique integers added to one set, read throughout and once on
//!   every node at the end; the set checker (lost, stale, unexpected,
//!   duplicated elements).
//! - `append`: list-append transactions over a few hot keys; the
//!   transactional checker (Elle's list-append analysis).
//! - `rw-register`: register read/write transactions over the same keys; the
//!   transactional checker's rw-register analysis (proves less: see
//!   `checker::txn`).
//!
//! # Layout
//! - [`register`], [`set`], [`append`] (append and rw-register): the workloads.

pub mod append;
pub mod register;
pub mod set;

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::generator::{BoxGen, Invocation};
use crate::system::db::NodeInfo;

/// The knobs a workload needs from the test.
#[derive(Clone, Debug, PartialEq)]
pub struct WorkloadOptions {
    /// Keys in use at a time (`--keys`): the register's active keys, the
    /// append workload's key space.
    pub keys: usize,
    /// Ops on one register key before it retires and a fresh key replaces it.
    pub per_key_limit: u64,
    /// The consistency models an append or rw-register history must
    /// satisfy (`--consistency-models`).
    pub consistency_models: Vec<String>,
}

impl Default for WorkloadOptions {
    /// 10 keys, 200 ops per key, strict serializability.
    fn default() -> Self {
        WorkloadOptions {
            keys: 10,
            per_key_limit: 200,
            consistency_models: vec!["strict-serializable".to_string()],
        }
    }
}

/// Which workload (`--workload`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum WorkloadKind {
    /// Read/write/cas registers, checked for linearizability.
    Register,
    /// A grow-only set, checked for lost and stale elements.
    Set,
    /// List-append transactions (Elle).
    Append,
    /// Read/write register transactions (Elle's rw-register).
    RwRegister,
}

impl WorkloadKind {
    /// Every workload, in the order `--help` lists them.
    pub const ALL: [WorkloadKind; 4] = [
        WorkloadKind::Register,
        WorkloadKind::Set,
        WorkloadKind::Append,
        WorkloadKind::RwRegister,
    ];

    /// The name on the command line, in TOML and in `test.json`.
    pub fn name(self) -> &'static str {
        match self {
            WorkloadKind::Register => "register",
            WorkloadKind::Set => "set",
            WorkloadKind::Append => "append",
            WorkloadKind::RwRegister => "rw-register",
        }
    }
}

impl fmt::Display for WorkloadKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for WorkloadKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        WorkloadKind::ALL
            .into_iter()
            .find(|w| w.name() == s)
            .ok_or_else(|| {
                format!("unknown workload {s:?}; expected register, set, append or rw-register")
            })
    }
}

/// A workload: generators and checkers (module docs).
pub trait Workload: Send + Sync {
    /// Its name (`register`, `set`, `append`).
    fn name(&self) -> &'static str;

    /// The name its checker's outcome is stored under (`linearizable`,
    /// `set`, `list-append`, `rw-register`).
    fn checker_name(&self) -> &'static str;

    /// The main phase: an endless generator (the runner adds the time limit
    /// and rate).
    fn generator(&self) -> BoxGen;

    /// The final phase after faults heal (finite), e.g. reads on every node;
    /// `None` if none.
    fn final_generator(&self, nodes: &[NodeInfo]) -> Option<BoxGen>;

    /// Checks a complete history as `faultline run` does (nemesis ops are
    /// ignored): [`Workload::check_with`] under [`Workload::check_options`],
    /// a history the checkers cannot read becoming an unknown verdict. One
    /// entry per checker.
    fn check(&self, history: &[checker::history::Op]) -> Vec<CheckOutcome> {
        match check_safe(self, CheckInput::Ops(history), &self.check_options()) {
            Ok(outcomes) => outcomes,
            Err(failure) => vec![CheckOutcome::unknown(
                failure.checker(),
                format!("malformed history: {}", failure.message()),
            )],
        }
    }

    /// The options `faultline run` checks with: [`CheckOptions::default`],
    /// with what the test set for this workload (its consistency models).
    fn check_options(&self) -> CheckOptions {
        CheckOptions::default()
    }

    /// Runs this workload's checkers on `history` with `options`: the one
    /// path from a workload to its checkers, for `faultline run` and
    /// `faultline check` alike. One entry per checker.
    fn check_with(
        &self,
        history: CheckInput<'_>,
        options: &CheckOptions,
    ) -> Result<Vec<CheckOutcome>, CheckFailure>;

    /// The form its checkers read a history in most cheaply (`faultline
    /// check` reads a file straight into it).
    fn history_form(&self) -> HistoryForm {
        HistoryForm::Ops
    }
}

/// One checker's verdict on a history, with the anomalies it found: the
/// checker's own stored outcome.
pub use checker::outcome::CheckOutcome;

/// How a history reaches the checkers.
#[derive(Clone, Copy, Debug)]
pub enum CheckInput<'h> {
    /// Generic ops, as recorded or imported.
    Ops(&'h [checker::history::Op]),
    /// The transactional checker's compact form, read straight from a file.
    Txn(&'h checker::txn::TxnHistory),
}

/// What [`CheckInput`] a workload's checkers read most cheaply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HistoryForm {
    /// Generic ops.
    Ops,
    /// Transactions of this workload.
    Txn(checker::txn::TxnWorkload),
}

/// The checkers' knobs: `faultline run` uses the defaults, `faultline
/// check` sets them from its flags.
#[derive(Clone, Debug)]
pub struct CheckOptions {
    /// The linearizability checker's model (the register workload).
    pub model: checker::model::ModelSpec,
    /// The linearizability checker's budgets and progress counter.
    pub linearizable: checker::linearizable::Options,
    /// The transactional checker's options (append, rw-register).
    pub txn: checker::txn::TxnOptions,
}

impl Default for CheckOptions {
    /// A cas-register from nil within [`register::CHECK_TIME_LIMIT`]; the
    /// transactional checker's defaults.
    fn default() -> Self {
        CheckOptions {
            model: checker::model::ModelSpec {
                kind: checker::model::ModelKind::CasRegister,
                init: Value::Null,
                nil_read: checker::model::NilRead::Value,
            },
            linearizable: checker::linearizable::Options {
                time_limit: Some(register::CHECK_TIME_LIMIT),
                shrink: Some(register::SHRINK_TIME_LIMIT),
                ..checker::linearizable::Options::default()
            },
            txn: checker::txn::TxnOptions::default(),
        }
    }
}

/// A check that could not give a verdict, as opposed to an unknown one.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CheckFailure {
    /// The history does not pair up or the model cannot read an op.
    #[error("{checker}: {message}")]
    Malformed {
        /// The checker that refused it.
        checker: &'static str,
        /// Why, naming the op.
        message: String,
        /// The history index of the op at fault, when one is.
        op: Option<usize>,
    },
    /// The options are wrong (e.g. a bad initial value for the model).
    #[error("{checker}: {message}")]
    Usage {
        /// The checker that refused them.
        checker: &'static str,
        /// Why.
        message: String,
    },
}

impl CheckFailure {
    /// A history `checker` cannot read, because of `error` (at op `op`).
    pub fn malformed(
        checker: &'static str,
        error: &impl std::fmt::Display,
        op: Option<usize>,
    ) -> CheckFailure {
        CheckFailure::Malformed {
            checker,
            message: error.to_string(),
            op,
        }
    }

    /// The checker that failed.
    pub fn checker(&self) -> &'static str {
        match self {
            CheckFailure::Malformed { checker, .. } | CheckFailure::Usage { checker, .. } => {
                checker
            }
        }
    }

    /// Why, without the checker's name.
    pub fn message(&self) -> &str {
        match self {
            CheckFailure::Malformed { message, .. } | CheckFailure::Usage { message, .. } => {
                message
            }
        }
    }
}

/// [`Workload::check_with`], a panic in a checker caught at this boundary
/// (Jepsen's `check-safe`): it becomes an `unknown` verdict saying what
/// panicked and asking for a report, never a lost run.
pub fn check_safe<W: Workload + ?Sized>(
    work: &W,
    history: CheckInput<'_>,
    options: &CheckOptions,
) -> Result<Vec<CheckOutcome>, CheckFailure> {
    let checked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        work.check_with(history, options)
    }));
    checked.unwrap_or_else(|payload| {
        let what = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic without a message".to_string());
        let checker = work.checker_name();
        Ok(vec![CheckOutcome::unknown(
            checker,
            panic_reason(checker, &what),
        )])
    })
}

/// The reason stored for a checker that panicked.
pub fn panic_reason(checker: &str, what: &str) -> String {
    format!(
        "the {checker} checker crashed ({what}), so this history was not judged: this is a bug in faultline; please report it with the history file"
    )
}

/// The workload `kind` with `options`.
pub fn workload(kind: WorkloadKind, options: WorkloadOptions) -> Box<dyn Workload> {
    match kind {
        WorkloadKind::Register => Box::new(register::RegisterWorkload::new(options)),
        WorkloadKind::Set => Box::new(set::SetWorkload::new(options)),
        WorkloadKind::Append => Box::new(append::AppendWorkload::new(options)),
        WorkloadKind::RwRegister => Box::new(append::AppendWorkload::rw_register(options)),
    }
}

/// Whether `op` changes nothing: a `read`, or a `txn` of reads only. Such an
/// op that fails in any way, timeouts included, completes as `fail`.
pub fn is_read_only(op: &Invocation) -> bool {
    match op.f.as_str() {
        "read" => true,
        "txn" => op.value.as_array().is_some_and(|micro_ops| {
            micro_ops
                .iter()
                .all(|m| m.get(0).and_then(Value::as_str) == Some("r"))
        }),
        _ => false,
    }
}

/// The final phase of one read per node, each pinned to its node (in node
/// order).
fn read_on_every_node(nodes: &[NodeInfo], read: impl Fn() -> Invocation) -> BoxGen {
    let reads = nodes.iter().map(|n| read().on_node(n.id.clone()));
    Box::new(crate::generator::Sequence(reads.collect()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn workload_names_round_trip_through_every_spelling() {
        for kind in WorkloadKind::ALL {
            assert_eq!(kind.name().parse::<WorkloadKind>().unwrap(), kind);
            assert_eq!(serde_json::to_value(kind).unwrap(), json!(kind.name()));
            let value = clap::ValueEnum::to_possible_value(&kind).unwrap();
            assert_eq!(value.get_name(), kind.name());
            assert_eq!(
                workload(kind, WorkloadOptions::default()).name(),
                kind.name()
            );
        }
        assert!("queue".parse::<WorkloadKind>().is_err());
    }

    #[test]
    fn reads_and_read_only_txns_are_read_only() {
        assert!(is_read_only(&Invocation::new("read", Value::Null)));
        assert!(!is_read_only(&Invocation::new("write", json!(1))));
        let reads = json!([["r", "0", null], ["r", "1", null]]);
        assert!(is_read_only(&Invocation::new("txn", reads)));
        let mixed = json!([["r", "0", null], ["append", "1", 3]]);
        assert!(!is_read_only(&Invocation::new("txn", mixed)));
    }

    /// The register workload, with a checker that panics on every history.
    struct Crashing(Box<dyn Workload>);

    impl Workload for Crashing {
        fn name(&self) -> &'static str {
            self.0.name()
        }
        fn checker_name(&self) -> &'static str {
            self.0.checker_name()
        }
        fn generator(&self) -> BoxGen {
            self.0.generator()
        }
        fn final_generator(&self, nodes: &[NodeInfo]) -> Option<BoxGen> {
            self.0.final_generator(nodes)
        }
        fn check_with(
            &self,
            _: CheckInput<'_>,
            _: &CheckOptions,
        ) -> Result<Vec<CheckOutcome>, CheckFailure> {
            let index: Vec<usize> = Vec::new();
            Ok(vec![CheckOutcome::unknown(
                "never",
                format!("{}", index[3]),
            )])
        }
    }

    #[test]
    fn a_checker_that_panics_gives_unknown_with_the_reason_not_a_lost_run() {
        let work = Crashing(workload(WorkloadKind::Register, WorkloadOptions::default()));
        let outcomes = work.check(&[]);
        assert_eq!(outcomes.len(), 1);
        let outcome = &outcomes[0];
        assert_eq!(outcome.checker, "linearizable");
        assert_eq!(outcome.result.valid, checker::Validity::Unknown);
        let reason = outcome.result.details["reason"].as_str().unwrap();
        assert!(
            reason.contains("the linearizable checker crashed (index out of bounds"),
            "{reason}"
        );
        assert!(reason.contains("please report it"), "{reason}");
    }
}
