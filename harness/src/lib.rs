//! `faultline`'s library half: the parts of the harness that tests (and,
//! later, other front ends) use directly. The `faultline` binary
//! (`src/main.rs`) holds the command line.
//!
//! # Layout
//! - [`db`]: the database under test: node lifecycle ([`db::Db`]) and the
//!   optional abilities [`db::Kill`], [`db::Pause`], [`db::LogFiles`], for
//!   the shipped target-node ([`db::TargetNodeDb`]) and for external systems
//!   described by command templates ([`db::ExternalDb`]).
//! - [`generator`]: the ops a test performs, as composable values.
//! - [`client`]: how a worker performs an op; the timeout wrapper.
//! - [`workload`]: register, set and append: client, generator, final
//!   reads and checkers of each.
//! - [`interpreter`]: runs generators against clients concurrently and
//!   records the history.
//! - [`nemesis`]: the fault schedule of a test and the client that applies
//!   faults (network backend, kill/pause, clock, crash).
//! - [`cleanup`]: the run's state file and `faultline cleanup`.
//! - [`test_spec`]: the test: flags, TOML keys, `test.json`, durations.
//! - [`run`]: the life of a test, from setup to stored results.
//! - [`campaign`]: campaigns: cells of tests with expectations, their
//!   verdicts and documents.
//! - [`serve`]: `faultline serve`, the read-only web view of the store.

#![deny(missing_docs)]

pub mod campaign;
pub mod cleanup;
pub mod client;
pub mod generator;
pub mod interpreter;
pub mod nemesis;
pub mod run;
pub mod serve;
pub mod system;
pub mod test_spec;
pub mod workload;
