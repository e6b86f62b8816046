//! Replication as pure state machines: messages and ticks in, state change
//! and [`Output`]s (messages to send, data to persist) out. No sockets, no
//! files, no clocks: the caller passes the time in (`now`, milliseconds on a
//! monotonic clock) and carries the outputs out, so the logic is tested
//! without I/O.
//!
//! - [`primary`]: one primary replicating its oplog (write concerns, bully
//!   and majority elections, rollback, linearizable read confirmation).
//! - [`multi`]: every node a primary, last-write-wins.

pub mod multi;
pub mod primary;
#[cfg(test)]
mod sim;

use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

use crate::api::{Counters, LogPosition, NodeId, Role};
use crate::kv::Store;
use crate::message::{PeerReply, PeerRequest};
use crate::mode::{Election, WriteConcern};
use crate::oplog::{Entry, Op};

/// Settings of a replica.
#[derive(Clone, Debug)]
pub struct ReplicaConfig {
    /// This node.
    pub id: NodeId,
    /// The other nodes.
    pub peers: Vec<NodeId>,
    /// How a primary is chosen.
    pub election: Election,
    /// Heartbeat (and ping) interval.
    pub heartbeat_ms: u64,
    /// How long without a primary before an election; in majority election
    /// a random extra of up to the same amount is added.
    pub election_timeout_ms: u64,
    /// How long a request to a peer may stay unanswered.
    pub rpc_timeout_ms: u64,
    /// Most entries in one append request.
    pub max_batch: usize,
}

/// The state a node keeps on disk besides its oplog.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Meta {
    /// Current term.
    pub term: u64,
    /// Whom it voted for in that term.
    pub voted_for: Option<NodeId>,
}

/// A change to the oplog on disk.
#[derive(Clone, Debug, PartialEq)]
pub enum PersistOp {
    /// Append these entries.
    Append(Vec<Entry>),
    /// Replace the whole oplog by these entries (after a rollback).
    Rewrite(Vec<Entry>),
}

/// What a state machine asks its driver to do.
#[derive(Clone, Debug, PartialEq)]
pub enum Output {
    /// Send a request to a peer; feed the reply back with `handle_reply`,
    /// or a failure with `send_failed`.
    Send {
        /// The peer.
        to: NodeId,
        /// The request.
        request: PeerRequest,
    },
    /// Persist an oplog change; report it with `on_durable(seq)` once it is
    /// durable. Changes must reach the disk in `seq` order.
    Persist {
        /// Sequence number of the change.
        seq: u64,
        /// The change.
        op: PersistOp,
    },
    /// Write the term and vote to disk before answering anyone.
    SaveMeta(Meta),
}

/// A write or read was sent to a node that is not the primary.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NotPrimary {
    /// The primary the node believes in.
    pub primary: Option<NodeId>,
}

/// A linearizable read waiting for leadership confirmation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadTicket {
    /// Term the read arrived in.
    pub term: u64,
    /// Confirmation round that started after the read arrived.
    pub round: u64,
    /// Commit index the read must see.
    pub read_index: u64,
}

/// Where a linearizable read stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadState {
    /// Confirmed: serve it from committed state.
    Ready,
    /// Not confirmed yet.
    Waiting,
    /// The node lost its primacy: the read cannot be confirmed.
    Lost,
}

/// What both replication state machines offer their driver.
pub trait Replication: Send {
    /// Fails unless this node accepts writes now.
    fn check_primary(&self) -> Result<(), NotPrimary>;
    /// The latest state (all of this node's oplog applied).
    fn kv(&self) -> &Store;
    /// Appends a client write to the oplog.
    fn propose(&mut self, op: Op, ts_ms: u64, now: u64) -> Result<LogPosition, NotPrimary>;
    /// Highest index acknowledged under `concern`.
    fn ack_index(&self, concern: WriteConcern) -> u64;
    /// Whether the entry this node proposed at `position` is still in its oplog.
    fn holds(&self, position: LogPosition) -> bool;
    /// Handles a request from a peer and returns the reply.
    fn handle_request(&mut self, request: PeerRequest, now: u64) -> PeerReply;
    /// Handles a peer's reply to an earlier [`Output::Send`].
    fn handle_reply(&mut self, reply: PeerReply, now: u64);
    /// An earlier [`Output::Send`] got no reply.
    fn send_failed(&mut self, to: &NodeId, request: &PeerRequest, now: u64);
    /// Time passes: heartbeats, elections, retries.
    fn tick(&mut self, now: u64);
    /// Persist changes up to `seq` are durable.
    fn on_durable(&mut self, seq: u64);
    /// Takes the outputs produced so far.
    fn drain(&mut self) -> Vec<Output>;
    /// Role, term and the primary this node believes in.
    fn role(&self) -> (Role, u64, Option<NodeId>);
    /// Last oplog position, commit index, durable index.
    fn positions(&self) -> (LogPosition, u64, u64);
    /// Replication counters.
    fn counters(&self) -> Counters;
    /// Starts a linearizable read (primary topology only).
    fn begin_read(&mut self, now: u64) -> Result<ReadTicket, NotPrimary>;
    /// Where a linearizable read stands.
    fn read_state(&self, ticket: &ReadTicket) -> ReadState;
    /// The committed state (what linearizable reads see).
    fn committed_kv(&self) -> &Store;
}

/// Maps persist sequence numbers to the oplog index that is durable once
/// they are: the durable index is the oplog prefix the disk holds, capped
/// by any rollback still on its way to the disk.
#[derive(Clone, Debug, Default)]
pub(crate) struct Durability {
    next_seq: u64,
    /// (seq, last index after the change, lowest index kept by it).
    pending: VecDeque<(u64, u64, u64)>,
    pub(crate) durable_index: u64,
}

impl Durability {
    pub(crate) fn new(durable_index: u64) -> Self {
        Durability {
            next_seq: 0,
            pending: VecDeque::new(),
            durable_index,
        }
    }

    /// Records a change leaving the oplog at `last_index`; `kept` is the
    /// highest index untouched by it (== `last_index` for a plain append).
    pub(crate) fn record(&mut self, last_index: u64, kept: u64) -> u64 {
        self.next_seq += 1;
        self.durable_index = self.durable_index.min(kept);
        self.pending.push_back((self.next_seq, last_index, kept));
        self.next_seq
    }

    /// Changes up to `seq` are durable; returns whether the index moved.
    pub(crate) fn on_durable(&mut self, seq: u64) -> bool {
        let mut reached = None;
        while self.pending.front().is_some_and(|(s, _, _)| *s <= seq) {
            reached = self.pending.pop_front().map(|(_, last, _)| last);
        }
        let Some(reached) = reached else { return false };
        let cap = self
            .pending
            .iter()
            .map(|(_, _, kept)| *kept)
            .min()
            .unwrap_or(u64::MAX);
        let before = self.durable_index;
        self.durable_index = self.durable_index.max(reached.min(cap));
        self.durable_index != before
    }
}

/// Number of nodes that make a majority of `cluster_size`.
pub fn majority(cluster_size: usize) -> usize {
    cluster_size / 2 + 1
}

/// A small deterministic xorshift generator for election jitter.
pub(crate) fn next_random(state: &mut u64) -> u64 {
    let mut x = *state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *state = x;
    x
}

/// The append a node has in flight to a peer: `(seq, sent at ms)`. Each
/// replication state machine keeps one per peer; these are its transitions.
pub(crate) type InFlight = Option<(u64, u64)>;

/// Forgets the append in flight if it is `seq` (its answer came, or sending
/// it failed); returns whether it was.
pub(crate) fn settle(in_flight: &mut InFlight, seq: u64) -> bool {
    let current = in_flight.is_some_and(|(s, _)| s == seq);
    if current {
        *in_flight = None;
    }
    current
}

/// Forgets an append in flight for `timeout_ms` or more, so it is resent.
pub(crate) fn expire(in_flight: &mut InFlight, now: u64, timeout_ms: u64) {
    if in_flight.is_some_and(|(_, sent)| sent + timeout_ms <= now) {
        *in_flight = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durability_is_capped_by_a_pending_rollback() {
        let mut durability = Durability::new(0);
        let a = durability.record(5, 5);
        let b = durability.record(3, 2); // rollback to 2, then up to 3
        assert!(durability.on_durable(a));
        assert_eq!(durability.durable_index, 2);
        durability.on_durable(b);
        assert_eq!(durability.durable_index, 3);
    }

    #[test]
    fn majorities() {
        assert_eq!(majority(1), 1);
        assert_eq!(majority(3), 2);
        assert_eq!(majority(4), 3);
        assert_eq!(majority(5), 3);
    }
}
