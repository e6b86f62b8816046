//! Integration tests: real `target-node` processes on 127.0.0.1.
//!
//! - `support`: cluster processes (killed on drop), proxies, polling.
//! - `replication`: writes replicate; a restarted secondary catches up
//!   incrementally.
//! - `failover`: a killed primary is replaced and keeps every
//!   majority-acknowledged write.
//! - `rollback`: with write concern `one`, an isolated primary's
//!   acknowledged writes are rolled back after heal.
//! - `bad_input`: bad requests get a 4xx with a reason and change nothing.
//! - `modes`: multi-primary last-write-wins, crash with `--fsync never`.
//! - `txn_reads`: read-only transactions follow `--reads` like plain reads
//!   (stale on an isolated secondary with local reads, refused on a
//!   secondary otherwise).

mod bad_input;
mod failover;
mod modes;
mod replication;
mod rollback;
mod support;
mod txn_reads;
