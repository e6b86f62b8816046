//! The checker: what a history means and whether it is consistent.
//!
//! It never knows how a history was produced, so it checks a history recorded
//! by Jepsen as well as one of ours.
//!
//! # Layout
//! - [`history`]: the op, the JSONL format, a streaming writer and a reader.
//! - [`edn`]: an importer for Jepsen / Knossos / Elle EDN histories.
//! - [`import`]: format detection and one entry point for reading any history file.
//! - [`pair`]: invocations paired with completions, the one place it is done: strict
//!   calls with intervals for the checkers, a lenient pairing for statistics and reports.
//! - [`model`]: consistency models as pure step functions over hashable states.
//! - [`linearizable`]: the linearizability checker: per-key partitioning, parallel search,
//!   budgets, explanations; its search over one partition (with its memo table) is
//!   [`linearizable::search`].
//! - [`set`]: the set checker: lost, stale, unexpected and duplicated elements (Jepsen's set-full).
//! - [`txn`]: the transactional checker (after Elle): list-append and rw-register version orders, dependency cycles G0 ... G2-item, Elle's model hierarchy.
//! - [`outcome`]: what every checker returns and a run stores: verdict, anomaly counts,
//!   anomalies with op indices ([`CheckOutcome`]).
//! - [`verdict`]: valid / invalid / unknown and how verdicts compose.
//! - [`fuzz`]: the entry points of the fuzz targets (`fuzz/`) and their replay tests.
#![deny(missing_docs)]

pub mod edn;
pub mod fuzz;
pub mod history;
pub mod import;
pub mod linearizable;
pub mod model;
pub mod outcome;
pub mod pair;
pub mod set;
pub mod txn;
pub mod verdict;

pub use outcome::{Anomaly, AnomalyEdge, CheckOutcome, CheckerResult};
pub use verdict::Validity;
