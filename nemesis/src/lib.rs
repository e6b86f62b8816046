//! The nemesis: faults as data, from the schedule to the report, and the
//! backends that apply them.
//!
//! The vocabulary is one [`Fault`] per name `--nemesis` accepts; a fault
//! starts with an [`Action`] (what the schedule asks) and is undone by the
//! action its [`Verb`] pairs it with ([`Verb::undo`], the one table of
//! pairs); applying an action yields a [`FaultOp`] (what was done), which is
//! the op recorded in the history. A [`Schedule`] draws the actions from a
//! seeded rng. Grudges come from pure [`grudge`] topologies; a backend
//! ([`net::Net`]) applies them, and the network guard ([`net::HealGuard`])
//! undoes them on drop.
//!
//! # Layout
//! - [`fault`]: the fault vocabulary ([`Fault`]), each fault's start and undo
//!   actions and the abilities it needs.
//! - [`verb`]: the history `f` of nemesis ops ([`Verb`]) and the fault/undo pairs.
//! - [`action`]: what the schedule asks ([`Action`]) and its choices
//!   ([`Target`], [`Shape`], [`Skew`]).
//! - [`op`]: what was applied ([`FaultOp`]), as recorded in the history.
//! - [`schedule`]: the fault schedule over an rng, and the final undos.
//! - [`grudge`]: grudges (node → nodes whose traffic it drops) and the pure topology functions.
//! - [`net`]: the [`net::Net`] trait, its error, the heal-on-drop guard.
//! - `net::proxy` (feature `backends`): the default backend, a TCP proxy on every directed node-to-node link.
//! - `net::netns` (feature `backends`, Linux only): kernel DROP rules between per-node loopback addresses or namespaces.
//! - `net::nodes` (feature `backends`, Linux only): a network namespace and address per node, bridged, partitioned by DROP rules.
//!
//! # Features
//! - `backends` (default): the network backends and their dependencies
//!   (tokio, nix). Without it the crate is the vocabulary alone, as the
//!   results crate uses it to read fault windows.
#![deny(missing_docs)]

pub mod action;
pub mod fault;
pub mod grudge;
mod history;
pub mod net;
pub mod op;
pub mod schedule;
pub mod verb;

pub use action::{Action, Shape, Skew, Stopped, Target};
pub use fault::{Ability, Fault, UnknownFault};
pub use grudge::{Grudge, Node, Partition};
pub use net::{Net, NetError};
pub use op::{FaultOp, Links};
pub use schedule::{final_actions, Schedule, Step};
pub use verb::Verb;
