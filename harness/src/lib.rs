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
//! - [`package`]: the nemesis package of a test (Jepsen's term): the fault
//!   schedule and the client that applies faults (network backend,
//!   kill/pause, clock, crash).
//! - [`cleanup`]: the run's state file and `faultline cleanup`.
//! - `containment`: a PID namespace per node, so every descendant dies with its node and the run.
//! - [`test_spec`]: the test: flags, TOML keys, `test.json`, durations.
//! - [`placement`]: where a node runs and how a command reaches it (loopback, per-node namespaces).
//! - [`remote`]: nodes on remote hosts (`--hosts`): the hosts' setup,
//!   node sessions under a watchdog, partitions as the run's own nft table.
//! - [`ssh`]: remote hosts over OpenSSH: one multiplexed master per host,
//!   bounded and logged remote commands, uploads checked by hash.
//! - [`run`]: the life of a test, from setup to stored results.
//! - [`campaign`]: campaigns: cells of tests with expectations, their
//!   verdicts and documents.
//! - [`serve`]: `faultline serve`, the read-only web view of the store.
//! - [`fuzz`]: the entry point of the TOML fuzz target and its replay test.

#![deny(missing_docs)]

pub mod campaign;
pub mod cleanup;
pub mod client;
pub(crate) mod containment;
pub mod fuzz;
pub mod generator;
pub mod interpreter;
pub mod package;
pub mod placement;
pub mod remote;
pub mod run;
pub mod serve;
pub mod ssh;
pub mod system;
pub mod test_spec;
pub mod workload;

pub use containment::supervise;
