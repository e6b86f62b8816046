//! `faultline`'s library half: the parts of the harness that tests (and,
//! later, other front ends) use directly. The `faultline` binary
//! (`src/main.rs`) holds the command line.
//!
//! # Layout
//! - [`db`]: the database under test: node lifecycle ([`db::Db`]) and the
//!   optional abilities [`db::Kill`], [`db::Pause`], [`db::LogFiles`], for
//!   the shipped target-node ([`db::TargetNodeDb`]) and for external systems
//!   described by command templates ([`db::ExternalDb`]).

#![deny(missing_docs)]

pub mod db;
