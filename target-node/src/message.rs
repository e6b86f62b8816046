//! Messages between nodes (`POST /peer`): oplog replication, votes and
//! pings. Each request gets exactly one reply of the same kind.

use serde::{Deserialize, Serialize};

use crate::api::{LogPosition, NodeId, Role};
use crate::oplog::Entry;

/// Push part of the sender's oplog (also the primary's heartbeat).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AppendRequest {
    /// Sender's term (0 in multi-primary topology).
    pub term: u64,
    /// The sender: the primary, or in multi-primary the entries' origin.
    pub leader: NodeId,
    /// Index of the entry just before `entries`.
    pub prev_index: u64,
    /// Term of that entry.
    pub prev_term: u64,
    /// Origin of that entry (`None` for index 0).
    pub prev_origin: Option<NodeId>,
    /// The entries, consecutive from `prev_index + 1`; empty for a heartbeat.
    pub entries: Vec<Entry>,
    /// The sender's commit index.
    pub leader_commit: u64,
    /// Leadership confirmation round (for linearizable reads), echoed back.
    pub round: u64,
    /// Request number, echoed back so the sender can match replies.
    pub seq: u64,
}

/// Answer to an [`AppendRequest`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AppendReply {
    /// Replier's term.
    pub term: u64,
    /// The replier.
    pub from: NodeId,
    /// Whether the entries were appended.
    pub success: bool,
    /// On success: the replier holds the sender's oplog up to this index.
    pub match_index: u64,
    /// On failure: where the sender should resume (the start of the
    /// replier's divergent run, or its last index + 1).
    pub conflict_index: u64,
    /// On failure: term and origin of the replier's entry at `prev_index`.
    pub conflict_author: Option<(u64, NodeId)>,
    /// The primary the replier believes in.
    pub primary: Option<NodeId>,
    /// Echo of the request's round.
    pub round: u64,
    /// Echo of the request's seq.
    pub seq: u64,
}

/// A candidate asks for a vote (majority election).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VoteRequest {
    /// The term the candidate runs for.
    pub term: u64,
    /// The candidate.
    pub candidate: NodeId,
    /// Position of the candidate's last entry.
    pub last: LogPosition,
}

/// Answer to a [`VoteRequest`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VoteReply {
    /// Replier's term.
    pub term: u64,
    /// The replier.
    pub from: NodeId,
    /// Whether it voted for the candidate.
    pub granted: bool,
}

/// Reachability probe of the bully election; also the reply to one.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Ping {
    /// Sender's term.
    pub term: u64,
    /// The sender.
    pub from: NodeId,
    /// Sender's role.
    pub role: Role,
    /// The primary the sender believes in.
    pub primary: Option<NodeId>,
}

/// Body of `POST /peer`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "type")]
pub enum PeerRequest {
    /// Replicate entries.
    Append(AppendRequest),
    /// Ask for a vote.
    Vote(VoteRequest),
    /// Probe reachability.
    Ping(Ping),
}

/// Answer of `POST /peer`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "type")]
pub enum PeerReply {
    /// Answer to an append.
    Append(AppendReply),
    /// Answer to a vote request.
    Vote(VoteReply),
    /// Answer to a ping.
    Ping(Ping),
}
