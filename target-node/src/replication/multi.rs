//! Multi-primary replication: every node accepts writes into its own oplog
//! (term 0, its id as origin) and pushes that oplog to every peer, which
//! applies each origin's entries in order and resolves conflicting writes by
//! last-write-wins on (timestamp, origin id). Nothing is ever rolled back and
//! nothing orders writes across nodes: concurrent writes are lost by design.

use std::collections::BTreeMap;

use super::{
    majority, Durability, NotPrimary, Output, PersistOp, ReadState, ReadTicket, ReplicaConfig,
    Replication,
};
use crate::api::{Counters, LogPosition, NodeId, Role};
use crate::kv::Store;
use crate::message::{AppendReply, AppendRequest, PeerReply, PeerRequest};
use crate::mode::WriteConcern;
use crate::oplog::{Entry, Op, Oplog};

#[derive(Clone, Debug, Default)]
struct Progress {
    next_index: u64,
    match_index: u64,
    in_flight: super::InFlight,
    last_sent_ms: u64,
}

/// The replication state of one node in multi-primary topology.
pub struct MultiPrimary {
    cfg: ReplicaConfig,
    own: Oplog,
    /// Per other origin: the last of its entries applied here.
    applied: BTreeMap<NodeId, u64>,
    kv: Store,
    durability: Durability,
    progress: BTreeMap<NodeId, Progress>,
    next_seq: u64,
    counters: Counters,
    out: Vec<Output>,
}

impl MultiPrimary {
    /// A replica recovered from its oplog file's `entries` (own and others',
    /// each origin's in order).
    pub fn new(cfg: ReplicaConfig, entries: Vec<Entry>) -> Self {
        let entries_recovered = entries.len() as u64;
        let mut kv = Store::default();
        let mut own = Vec::new();
        let mut applied = BTreeMap::new();
        for entry in entries {
            kv.apply_lww(&entry);
            if entry.origin == cfg.id {
                own.push(entry);
            } else {
                let last = applied.entry(entry.origin.clone()).or_insert(0);
                *last = (*last).max(entry.index);
            }
        }
        let own = Oplog::from_entries(own);
        let progress = (cfg.peers.iter())
            .map(|p| {
                (
                    p.clone(),
                    Progress {
                        next_index: own.last_index() + 1,
                        ..Progress::default()
                    },
                )
            })
            .collect();
        MultiPrimary {
            durability: Durability::new(own.last_index()),
            own,
            applied,
            kv,
            progress,
            next_seq: 0,
            counters: Counters {
                entries_recovered,
                ..Counters::default()
            },
            out: Vec::new(),
            cfg,
        }
    }

    fn maybe_send(&mut self, peer: &NodeId, now: u64) {
        let Some(progress) = self.progress.get_mut(peer) else {
            return;
        };
        let due = progress.next_index <= self.own.last_index()
            || now >= progress.last_sent_ms + self.cfg.heartbeat_ms;
        if progress.in_flight.is_some() || !due {
            return;
        }
        let prev_index = progress.next_index - 1;
        let entries = self
            .own
            .slice(progress.next_index, self.cfg.max_batch)
            .to_vec();
        self.next_seq += 1;
        progress.in_flight = Some((self.next_seq, now));
        progress.last_sent_ms = now;
        self.counters.entries_sent += entries.len() as u64;
        let request = AppendRequest {
            term: 0,
            leader: self.cfg.id.clone(),
            prev_index,
            prev_term: 0,
            prev_origin: Some(self.cfg.id.clone()),
            entries,
            leader_commit: 0,
            round: 0,
            seq: self.next_seq,
        };
        self.out.push(Output::Send {
            to: peer.clone(),
            request: PeerRequest::Append(request),
        });
    }

    fn on_append(&mut self, request: AppendRequest) -> AppendReply {
        let applied = self.applied.entry(request.leader.clone()).or_insert(0);
        let mut reply = AppendReply {
            term: 0,
            from: self.cfg.id.clone(),
            success: false,
            match_index: *applied,
            conflict_index: *applied + 1,
            conflict_author: None,
            primary: None,
            round: request.round,
            seq: request.seq,
        };
        if request.prev_index > *applied {
            return reply;
        }
        let fresh: Vec<Entry> = request
            .entries
            .into_iter()
            .filter(|e| e.index > *applied)
            .collect();
        if let Some(last) = fresh.last() {
            *applied = last.index;
        }
        reply.success = true;
        reply.match_index = *applied;
        if !fresh.is_empty() {
            fresh.iter().for_each(|e| self.kv.apply_lww(e));
            self.counters.entries_received += fresh.len() as u64;
            let seq = self
                .durability
                .record(self.own.last_index(), self.own.last_index());
            self.out.push(Output::Persist {
                seq,
                op: PersistOp::Append(fresh),
            });
        }
        reply
    }

    fn on_append_reply(&mut self, reply: AppendReply, now: u64) {
        let Some(progress) = self.progress.get_mut(&reply.from) else {
            return;
        };
        let current = super::settle(&mut progress.in_flight, reply.seq);
        if reply.success {
            progress.match_index = progress.match_index.max(reply.match_index);
        }
        if current {
            // The peer says how much of our oplog it has applied.
            progress.next_index = reply.match_index.min(self.own.last_index()) + 1;
        }
        self.maybe_send(&reply.from, now);
    }
}

impl Replication for MultiPrimary {
    fn check_primary(&self) -> Result<(), NotPrimary> {
        Ok(())
    }

    fn kv(&self) -> &Store {
        &self.kv
    }

    fn propose(&mut self, op: Op, ts_ms: u64, now: u64) -> Result<LogPosition, NotPrimary> {
        let index = self.own.last_index() + 1;
        let entry = Entry {
            term: 0,
            index,
            origin: self.cfg.id.clone(),
            ts_ms,
            op,
        };
        self.kv.apply_lww(&entry);
        self.own.push(entry.clone());
        let seq = self.durability.record(index, index);
        self.out.push(Output::Persist {
            seq,
            op: PersistOp::Append(vec![entry]),
        });
        let peers: Vec<NodeId> = self.progress.keys().cloned().collect();
        for peer in peers {
            self.maybe_send(&peer, now);
        }
        Ok(LogPosition { term: 0, index })
    }

    fn ack_index(&self, concern: WriteConcern) -> u64 {
        let mut matches: Vec<u64> = self.progress.values().map(|p| p.match_index).collect();
        matches.push(self.durability.durable_index);
        matches.sort_unstable_by(|a, b| b.cmp(a));
        match concern {
            WriteConcern::One => self.durability.durable_index,
            WriteConcern::Majority => matches[majority(matches.len()) - 1],
            WriteConcern::All => matches.last().copied().unwrap_or(0),
        }
    }

    fn holds(&self, position: LogPosition) -> bool {
        position.index <= self.own.last_index()
    }

    fn handle_request(&mut self, request: PeerRequest, _now: u64) -> PeerReply {
        match request {
            PeerRequest::Append(request) => PeerReply::Append(self.on_append(request)),
            PeerRequest::Vote(_) => PeerReply::Vote(crate::message::VoteReply {
                term: 0,
                from: self.cfg.id.clone(),
                granted: false,
            }),
            PeerRequest::Ping(_) => PeerReply::Ping(crate::message::Ping {
                term: 0,
                from: self.cfg.id.clone(),
                role: Role::Primary,
                primary: Some(self.cfg.id.clone()),
            }),
        }
    }

    fn handle_reply(&mut self, reply: PeerReply, now: u64) {
        if let PeerReply::Append(reply) = reply {
            self.on_append_reply(reply, now);
        }
    }

    fn send_failed(&mut self, to: &NodeId, request: &PeerRequest, _now: u64) {
        if let (PeerRequest::Append(request), Some(progress)) = (request, self.progress.get_mut(to))
        {
            super::settle(&mut progress.in_flight, request.seq);
        }
    }

    fn tick(&mut self, now: u64) {
        let rpc_timeout = self.cfg.rpc_timeout_ms;
        for progress in self.progress.values_mut() {
            super::expire(&mut progress.in_flight, now, rpc_timeout);
        }
        let peers: Vec<NodeId> = self.progress.keys().cloned().collect();
        for peer in peers {
            self.maybe_send(&peer, now);
        }
    }

    fn on_durable(&mut self, seq: u64) {
        self.durability.on_durable(seq);
    }

    fn drain(&mut self) -> Vec<Output> {
        std::mem::take(&mut self.out)
    }

    fn role(&self) -> (Role, u64, Option<NodeId>) {
        (Role::Primary, 0, Some(self.cfg.id.clone()))
    }

    fn positions(&self) -> (LogPosition, u64, u64) {
        let commit = self.ack_index(WriteConcern::Majority);
        (
            self.own.last_position(),
            commit,
            self.durability.durable_index,
        )
    }

    fn counters(&self) -> Counters {
        self.counters
    }

    fn begin_read(&mut self, _now: u64) -> Result<ReadTicket, NotPrimary> {
        Ok(ReadTicket {
            term: 0,
            round: 0,
            read_index: 0,
        })
    }

    fn read_state(&self, _ticket: &ReadTicket) -> ReadState {
        ReadState::Ready
    }

    fn committed_kv(&self) -> &Store {
        &self.kv
    }
}
