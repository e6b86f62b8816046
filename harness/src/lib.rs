//! `faultline`'s library half: the parts of the harness that tests (and,
//! later, other front ends) use directly. The `faultline` binary
//! (`src/main.rs`) holds the command line.
//!
//! # Layout
//! - [`system`]: the systems under test ([`system::System`]): what each
//!   brings (node lifecycle [`system::db::Db`] with optional abilities the
//!   nemesis asks for, a client per workload, network backend, supported
//!   workloads and faults, its own options): the shipped target-node (the
//!   default) and [`system::custom`] (command templates).
//! - [`generator`]: the ops a test performs, as composable values.
//! - [`client`]: how a worker performs an op; the timeout wrapper.
//! - [`workload`]: register, set and append: generator, final reads and
//!   checkers of each (the client comes from the system).
//! - [`interpreter`]: runs generators against clients concurrently and
//!   records the history.
//! - [`nemesis`]: the fault schedule of a test and the client that applies
//!   faults through the network backend and the system's abilities.
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
