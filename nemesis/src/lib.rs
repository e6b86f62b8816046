//! The nemesis: faults as data, and the backends that apply them.
//!
//! A fault is a value ([`fault::FaultOp`]) built from pure functions
//! ([`grudge`] topologies, [`fault::Target`] picks); a backend ([`net::Net`])
//! applies it; every fault has a fixed undo ([`fault::FaultOp::undo`]) and
//! the network guard ([`net::HealGuard`]) undoes it on drop.
//!
//! # Layout
//! - [`grudge`]: grudges (node → nodes whose traffic it drops) and the pure topology functions.
//! - [`fault`]: fault ops as data with their history names, undo pairs and targets.
//! - [`net`]: the [`net::Net`] trait, its error, the heal-on-drop guard.
//! - [`net::proxy`]: the default backend, a TCP proxy on every directed node-to-node link.
//! - `net::netns` (Linux only): kernel DROP rules between per-node loopback addresses or namespaces.
//! - `net::nodes` (Linux only): a network namespace and address per node, bridged, partitioned by DROP rules.
#![deny(missing_docs)]

pub mod fault;
pub mod grudge;
pub mod net;

pub use fault::{FaultOp, Target};
pub use grudge::{Grudge, Node, Topology};
pub use net::{Net, NetError};
