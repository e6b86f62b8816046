//! Primary/secondary replication of one oplog.
//!
//! The primary pushes its oplog to each secondary with [`AppendRequest`]s,
//! one in flight per secondary, each carrying every entry from that
//! secondary's `next_index` (up to a batch); a secondary that fails the
//! (term, origin) check at `prev_index` answers where to resume, so catch-up
//! after a partition or restart sends only the missing entries, and a
//! deposed primary discards (rolls back) the entries the new primary does
//! not have. Empty appends are heartbeats. Every append carries the current
//! confirmation round: a linearizable read waits until a majority has
//! answered a round that started after it arrived (the read-index scheme).
//!
//! Elections: `bully` — a node that has not heard from a primary for an
//! election timeout, and has not heard from any node with a higher id
//! either, claims the next term on its own. `majority` — a candidate needs
//! votes from a majority; a node votes once per term and only for an oplog
//! at least as up to date as its own; a primary steps down once it has not
//! heard from a majority for an election timeout. Either way a new primary
//! first appends a no-op so that it can commit in its term.

use std::collections::{BTreeMap, BTreeSet};
use tracing::{info, warn};

use super::{
    majority, next_random, Durability, Meta, NotPrimary, Output, PersistOp, ReadState, ReadTicket,
    ReplicaConfig, Replication,
};
use crate::api::{Counters, LogPosition, NodeId, Role};
use crate::kv::Store;
use crate::message::{
    AppendReply, AppendRequest, PeerReply, PeerRequest, Ping, VoteReply, VoteRequest,
};
use crate::mode::{Election, WriteConcern};
use crate::oplog::{Entry, Op, Oplog};

/// What the primary knows about one secondary.
#[derive(Clone, Debug)]
struct Progress {
    /// Next index to send.
    next_index: u64,
    /// Highest index known to be on the secondary.
    match_index: u64,
    /// (seq, sent at) of the append in flight.
    in_flight: super::InFlight,
    last_sent_ms: u64,
    sent_round: u64,
    /// Last time it answered in this term.
    last_ack_ms: u64,
    /// Highest confirmation round it answered in this term.
    acked_round: u64,
}

/// The replication state of one node in primary topology.
pub struct Replica {
    cfg: ReplicaConfig,
    term: u64,
    voted_for: Option<NodeId>,
    log: Oplog,
    kv: Store,
    committed: Store,
    commit_index: u64,
    durability: Durability,
    role: Role,
    primary: Option<NodeId>,
    progress: BTreeMap<NodeId, Progress>,
    votes: BTreeSet<NodeId>,
    election_deadline_ms: u64,
    last_seen_ms: BTreeMap<NodeId, u64>,
    last_ping_ms: u64,
    round: u64,
    term_start_index: u64,
    rng: u64,
    next_seq: u64,
    counters: Counters,
    out: Vec<Output>,
}

impl Replica {
    /// A replica recovered from `meta` and the oplog `entries` (numbered
    /// from 1), starting as a secondary.
    pub fn new(cfg: ReplicaConfig, meta: Meta, entries: Vec<Entry>, now: u64) -> Self {
        let log = Oplog::from_entries(entries);
        let mut kv = Store::default();
        log.entries().iter().for_each(|e| kv.apply(e));
        let rng = cfg
            .id
            .0
            .bytes()
            .fold(0x9E37_79B9_7F4A_7C15u64 ^ now, |h, b| {
                h.rotate_left(5) ^ u64::from(b)
            })
            | 1;
        let entries_recovered = log.last_index();
        let mut replica = Replica {
            durability: Durability::new(log.last_index()),
            term: meta.term,
            voted_for: meta.voted_for,
            log,
            kv,
            committed: Store::default(),
            commit_index: 0,
            role: Role::Secondary,
            primary: None,
            progress: BTreeMap::new(),
            votes: BTreeSet::new(),
            election_deadline_ms: 0,
            last_seen_ms: BTreeMap::new(),
            last_ping_ms: 0,
            round: 0,
            term_start_index: 0,
            rng,
            next_seq: 0,
            counters: Counters {
                entries_recovered,
                ..Counters::default()
            },
            out: Vec::new(),
            cfg,
        };
        replica.reset_election_deadline(now);
        replica
    }

    /// The oplog.
    pub fn log(&self) -> &Oplog {
        &self.log
    }

    fn majority(&self) -> usize {
        majority(self.cfg.peers.len() + 1)
    }

    fn reset_election_deadline(&mut self, now: u64) {
        let timeout = self.cfg.election_timeout_ms.max(1);
        let jitter = match self.cfg.election {
            Election::Majority => next_random(&mut self.rng) % timeout,
            Election::Bully => 0,
        };
        self.election_deadline_ms = now + timeout + jitter;
    }

    fn save_meta(&mut self) {
        self.out.push(Output::SaveMeta(Meta {
            term: self.term,
            voted_for: self.voted_for.clone(),
        }));
    }

    fn persist(&mut self, op: PersistOp, kept: u64) {
        let seq = self.durability.record(self.log.last_index(), kept);
        self.out.push(Output::Persist { seq, op });
    }

    /// Adopts a higher term seen in any message, stepping down.
    fn observe_term(&mut self, term: u64, now: u64) {
        if term > self.term {
            self.term = term;
            self.voted_for = None;
            self.save_meta();
            self.become_secondary(None, now);
        }
    }

    fn become_secondary(&mut self, primary: Option<NodeId>, now: u64) {
        if self.role == Role::Primary {
            warn!(term = self.term, new_primary = ?primary, "stepping down");
        }
        self.role = Role::Secondary;
        self.primary = primary;
        self.votes.clear();
        self.reset_election_deadline(now);
    }

    fn become_primary(&mut self, now: u64) {
        info!(
            term = self.term,
            last = self.log.last_index(),
            "became primary"
        );
        self.role = Role::Primary;
        self.primary = Some(self.cfg.id.clone());
        self.votes.clear();
        self.counters.elections_won += 1;
        let next_index = self.log.last_index() + 1;
        self.progress = (self.cfg.peers.iter())
            .map(|peer| {
                let progress = Progress {
                    next_index,
                    match_index: 0,
                    in_flight: None,
                    last_sent_ms: 0,
                    sent_round: 0,
                    last_ack_ms: now,
                    acked_round: 0,
                };
                (peer.clone(), progress)
            })
            .collect();
        self.append_local(Op::Noop, 0);
        self.term_start_index = self.log.last_index();
        self.advance_commit();
        self.replicate_all(now);
    }

    fn start_election(&mut self, now: u64) {
        self.term += 1;
        self.role = Role::Candidate;
        self.primary = None;
        self.voted_for = Some(self.cfg.id.clone());
        self.votes = BTreeSet::from([self.cfg.id.clone()]);
        self.save_meta();
        self.reset_election_deadline(now);
        info!(term = self.term, "starting election");
        if self.votes.len() >= self.majority() {
            return self.become_primary(now);
        }
        let request = VoteRequest {
            term: self.term,
            candidate: self.cfg.id.clone(),
            last: self.log.last_position(),
        };
        for peer in &self.cfg.peers {
            self.out.push(Output::Send {
                to: peer.clone(),
                request: PeerRequest::Vote(request.clone()),
            });
        }
    }

    /// Bully: claim the next term unless a higher node is reachable.
    fn bully_claim(&mut self, now: u64) {
        let horizon = now.saturating_sub(self.cfg.election_timeout_ms);
        let higher_reachable = (self.cfg.peers.iter()).any(|peer| {
            *peer > self.cfg.id && self.last_seen_ms.get(peer).is_some_and(|t| *t >= horizon)
        });
        if higher_reachable {
            return self.reset_election_deadline(now);
        }
        self.term += 1;
        self.voted_for = Some(self.cfg.id.clone());
        self.save_meta();
        self.become_primary(now);
    }

    fn append_local(&mut self, op: Op, ts_ms: u64) -> LogPosition {
        let index = self.log.last_index() + 1;
        let entry = Entry {
            term: self.term,
            index,
            origin: self.cfg.id.clone(),
            ts_ms,
            op,
        };
        self.kv.apply(&entry);
        self.log.push(entry.clone());
        self.persist(PersistOp::Append(vec![entry]), index);
        LogPosition {
            term: self.term,
            index,
        }
    }

    fn advance_commit_to(&mut self, index: u64) {
        let index = index.min(self.log.last_index());
        while self.commit_index < index {
            self.commit_index += 1;
            if let Some(entry) = self.log.get(self.commit_index) {
                self.committed.apply(entry);
            }
        }
    }

    /// Primary: commit the highest index a majority holds durably, if it is
    /// of the current term (earlier terms' entries commit with it).
    fn advance_commit(&mut self) {
        if self.role != Role::Primary {
            return;
        }
        let mut matches: Vec<u64> = self.progress.values().map(|p| p.match_index).collect();
        matches.push(self.durability.durable_index);
        matches.sort_unstable_by(|a, b| b.cmp(a));
        let candidate = matches[self.majority() - 1];
        if candidate > self.commit_index && self.log.term_at(candidate) == self.term {
            self.advance_commit_to(candidate);
        }
    }

    fn replicate_all(&mut self, now: u64) {
        let peers: Vec<NodeId> = self.progress.keys().cloned().collect();
        for peer in peers {
            self.maybe_send(&peer, now);
        }
    }

    /// Sends the next append to `peer` if none is in flight and there is
    /// something to send: entries, a confirmation round, or a heartbeat due.
    fn maybe_send(&mut self, peer: &NodeId, now: u64) {
        if self.role != Role::Primary {
            return;
        }
        let Some(progress) = self.progress.get_mut(peer) else {
            return;
        };
        let due = progress.next_index <= self.log.last_index()
            || progress.sent_round < self.round
            || now >= progress.last_sent_ms + self.cfg.heartbeat_ms;
        if progress.in_flight.is_some() || !due {
            return;
        }
        let prev_index = progress.next_index - 1;
        let prev = self.log.get(prev_index);
        let entries = self
            .log
            .slice(progress.next_index, self.cfg.max_batch)
            .to_vec();
        self.next_seq += 1;
        progress.in_flight = Some((self.next_seq, now));
        progress.last_sent_ms = now;
        progress.sent_round = self.round;
        self.counters.entries_sent += entries.len() as u64;
        let request = AppendRequest {
            term: self.term,
            leader: self.cfg.id.clone(),
            prev_index,
            prev_term: prev.map_or(0, |e| e.term),
            prev_origin: prev.map(|e| e.origin.clone()),
            entries,
            leader_commit: self.commit_index,
            round: self.round,
            seq: self.next_seq,
        };
        self.out.push(Output::Send {
            to: peer.clone(),
            request: PeerRequest::Append(request),
        });
    }

    /// Whether `leader` may lead this node in the current term. Two primaries
    /// can share a term only under the bully election; the higher id wins.
    fn accept_leader(&mut self, leader: &NodeId, now: u64) -> bool {
        let accept = match (self.role, &self.primary) {
            (Role::Primary, _) => leader > &self.cfg.id,
            (_, Some(current)) => current == leader || leader > current,
            (_, None) => true,
        };
        if accept {
            if self.primary.as_ref() != Some(leader) || self.role != Role::Secondary {
                info!(term = self.term, primary = %leader, "following");
            }
            self.become_secondary(Some(leader.clone()), now);
        }
        accept
    }

    fn on_append(&mut self, request: AppendRequest, now: u64) -> AppendReply {
        self.last_seen_ms.insert(request.leader.clone(), now);
        self.observe_term(request.term, now);
        let mut reply = AppendReply {
            term: self.term,
            from: self.cfg.id.clone(),
            success: false,
            match_index: 0,
            conflict_index: 0,
            conflict_author: None,
            primary: self.primary.clone(),
            round: request.round,
            seq: request.seq,
        };
        if request.term < self.term || !self.accept_leader(&request.leader, now) {
            reply.primary = self.primary.clone();
            return reply;
        }
        reply.primary = self.primary.clone();
        if request.prev_index > self.log.last_index() {
            reply.conflict_index = self.log.last_index() + 1;
            return reply;
        }
        if let Some(prev) = self.log.get(request.prev_index) {
            let same = request
                .prev_origin
                .as_ref()
                .is_some_and(|o| prev.same_author(request.prev_term, o));
            if !same {
                reply.conflict_author = Some((prev.term, prev.origin.clone()));
                reply.conflict_index = self.log.first_of_run(request.prev_index);
                return reply;
            }
        }
        let match_index = request.prev_index + request.entries.len() as u64;
        self.append_from_leader(request.entries);
        self.advance_commit_to(request.leader_commit.min(match_index));
        reply.success = true;
        reply.match_index = match_index;
        reply
    }

    /// Appends a primary's entries, rolling back any divergent suffix.
    fn append_from_leader(&mut self, entries: Vec<Entry>) {
        let mut new_entries = Vec::new();
        let mut kept = u64::MAX;
        for entry in entries {
            match self.log.get(entry.index) {
                Some(existing) if existing.same_author(entry.term, &entry.origin) => continue,
                Some(_) => {
                    kept = kept.min(entry.index - 1);
                    self.rollback_from(entry.index);
                }
                None => {}
            }
            self.kv.apply(&entry);
            self.log.push(entry.clone());
            new_entries.push(entry);
        }
        self.counters.entries_received += new_entries.len() as u64;
        if kept != u64::MAX {
            self.persist(PersistOp::Rewrite(self.log.entries().to_vec()), kept);
        } else if !new_entries.is_empty() {
            let last = self.log.last_index();
            self.persist(PersistOp::Append(new_entries), last);
        }
    }

    /// Discards the entries from `index` on, logging each.
    fn rollback_from(&mut self, index: u64) {
        let removed = self.log.truncate_from(index);
        for entry in &removed {
            let op = serde_json::to_string(&entry.op).unwrap_or_default();
            warn!(
                term = self.term,
                "rollback: discarding entry term={} index={} origin={} {op}",
                entry.term,
                entry.index,
                entry.origin
            );
        }
        self.counters.entries_rolled_back += removed.len() as u64;
        if index <= self.commit_index {
            // Only possible without majority elections: "committed" was never safe.
            warn!(
                commit_index = self.commit_index,
                "rollback below the commit index"
            );
            self.commit_index = 0;
            self.committed = Store::default();
            self.advance_commit_to(index - 1);
        }
        self.kv = self.committed.clone();
        let from = self.commit_index + 1;
        for entry in self.log.slice(from, usize::MAX) {
            self.kv.apply(entry);
        }
    }

    fn on_append_reply(&mut self, reply: AppendReply, now: u64) {
        self.last_seen_ms.insert(reply.from.clone(), now);
        self.observe_term(reply.term, now);
        let Some(progress) = self.progress.get_mut(&reply.from) else {
            return;
        };
        let current = super::settle(&mut progress.in_flight, reply.seq);
        if self.role != Role::Primary || reply.term != self.term {
            return;
        }
        progress.last_ack_ms = now;
        progress.acked_round = progress.acked_round.max(reply.round);
        if reply.success {
            progress.match_index = progress.match_index.max(reply.match_index);
            if current {
                progress.next_index = reply.match_index + 1;
            }
            self.advance_commit();
        } else if reply.primary.as_ref().is_some_and(|p| *p > self.cfg.id) {
            warn!(term = self.term, other = ?reply.primary, "another primary in the same term has a higher id");
            return self.become_secondary(reply.primary, now);
        } else if current {
            let next = self.resume_index(&reply);
            let progress = self.progress.get_mut(&reply.from).expect("checked above");
            progress.next_index = next.clamp(1, progress.next_index.saturating_sub(1).max(1));
            progress.match_index = progress.match_index.min(progress.next_index - 1);
        }
        self.maybe_send(&reply.from, now);
    }

    /// Where to resume sending after a failed append: just past this log's
    /// last entry by the secondary's conflicting author, else the start of
    /// the secondary's conflicting run (or its end).
    fn resume_index(&self, reply: &AppendReply) -> u64 {
        let Some((term, origin)) = &reply.conflict_author else {
            return reply.conflict_index;
        };
        let top = self
            .progress
            .get(&reply.from)
            .map_or(0, |p| p.next_index.saturating_sub(1));
        let mut index = top.min(self.log.last_index());
        while index >= reply.conflict_index.max(1) {
            if self
                .log
                .get(index)
                .is_some_and(|e| e.same_author(*term, origin))
            {
                return index + 1;
            }
            index -= 1;
        }
        reply.conflict_index
    }

    fn on_vote(&mut self, request: VoteRequest, now: u64) -> VoteReply {
        self.last_seen_ms.insert(request.candidate.clone(), now);
        self.observe_term(request.term, now);
        let free = self
            .voted_for
            .as_ref()
            .is_none_or(|v| *v == request.candidate);
        let up_to_date = request.last >= self.log.last_position();
        let granted = self.cfg.election == Election::Majority
            && request.term == self.term
            && free
            && up_to_date;
        if granted {
            self.voted_for = Some(request.candidate.clone());
            self.save_meta();
            self.reset_election_deadline(now);
        }
        VoteReply {
            term: self.term,
            from: self.cfg.id.clone(),
            granted,
        }
    }

    fn on_vote_reply(&mut self, reply: VoteReply, now: u64) {
        self.last_seen_ms.insert(reply.from.clone(), now);
        self.observe_term(reply.term, now);
        if self.role == Role::Candidate && reply.term == self.term && reply.granted {
            self.votes.insert(reply.from);
            if self.votes.len() >= self.majority() {
                self.become_primary(now);
            }
        }
    }

    fn on_ping(&mut self, ping: &Ping, now: u64) {
        self.last_seen_ms.insert(ping.from.clone(), now);
        self.observe_term(ping.term, now);
        let rival = ping.role == Role::Primary && ping.term == self.term && ping.from > self.cfg.id;
        if rival && self.role == Role::Primary {
            warn!(term = self.term, other = %ping.from, "another primary in the same term has a higher id");
            self.become_secondary(Some(ping.from.clone()), now);
        }
    }

    fn ping(&self) -> Ping {
        Ping {
            term: self.term,
            from: self.cfg.id.clone(),
            role: self.role,
            primary: self.primary.clone(),
        }
    }

    fn has_majority_contact(&self, now: u64) -> bool {
        let horizon = now.saturating_sub(self.cfg.election_timeout_ms);
        let reached = self
            .progress
            .values()
            .filter(|p| p.last_ack_ms >= horizon)
            .count();
        reached + 1 >= self.majority()
    }

    fn confirmed_round(&self) -> u64 {
        let mut rounds: Vec<u64> = self.progress.values().map(|p| p.acked_round).collect();
        rounds.push(u64::MAX);
        rounds.sort_unstable_by(|a, b| b.cmp(a));
        rounds[self.majority() - 1]
    }
}

impl Replication for Replica {
    fn check_primary(&self) -> Result<(), NotPrimary> {
        match self.role {
            Role::Primary => Ok(()),
            _ => Err(NotPrimary {
                primary: self.primary.clone(),
            }),
        }
    }

    fn kv(&self) -> &Store {
        &self.kv
    }

    fn propose(&mut self, op: Op, ts_ms: u64, now: u64) -> Result<LogPosition, NotPrimary> {
        self.check_primary()?;
        let position = self.append_local(op, ts_ms);
        self.advance_commit();
        self.replicate_all(now);
        Ok(position)
    }

    fn ack_index(&self, concern: WriteConcern) -> u64 {
        match concern {
            WriteConcern::One => self.durability.durable_index,
            WriteConcern::Majority => self.commit_index,
            WriteConcern::All if self.role == Role::Primary => (self.progress.values())
                .map(|p| p.match_index)
                .fold(self.durability.durable_index, u64::min),
            WriteConcern::All => 0,
        }
    }

    fn holds(&self, position: LogPosition) -> bool {
        self.log
            .get(position.index)
            .is_some_and(|e| e.same_author(position.term, &self.cfg.id))
    }

    fn handle_request(&mut self, request: PeerRequest, now: u64) -> PeerReply {
        match request {
            PeerRequest::Append(request) => PeerReply::Append(self.on_append(request, now)),
            PeerRequest::Vote(request) => PeerReply::Vote(self.on_vote(request, now)),
            PeerRequest::Ping(ping) => {
                self.on_ping(&ping, now);
                PeerReply::Ping(self.ping())
            }
        }
    }

    fn handle_reply(&mut self, reply: PeerReply, now: u64) {
        match reply {
            PeerReply::Append(reply) => self.on_append_reply(reply, now),
            PeerReply::Vote(reply) => self.on_vote_reply(reply, now),
            PeerReply::Ping(ping) => self.on_ping(&ping, now),
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
        match self.role {
            Role::Primary
                if self.cfg.election == Election::Majority && !self.has_majority_contact(now) =>
            {
                warn!(
                    term = self.term,
                    "no contact with a majority for an election timeout"
                );
                self.become_secondary(None, now);
            }
            Role::Primary => self.replicate_all(now),
            _ if now >= self.election_deadline_ms => match self.cfg.election {
                Election::Majority => self.start_election(now),
                Election::Bully => self.bully_claim(now),
            },
            _ => {}
        }
        if self.cfg.election == Election::Bully && now >= self.last_ping_ms + self.cfg.heartbeat_ms
        {
            self.last_ping_ms = now;
            let ping = self.ping();
            for peer in &self.cfg.peers {
                self.out.push(Output::Send {
                    to: peer.clone(),
                    request: PeerRequest::Ping(ping.clone()),
                });
            }
        }
    }

    fn on_durable(&mut self, seq: u64) {
        if self.durability.on_durable(seq) {
            self.advance_commit();
        }
    }

    fn drain(&mut self) -> Vec<Output> {
        std::mem::take(&mut self.out)
    }

    fn role(&self) -> (Role, u64, Option<NodeId>) {
        (self.role, self.term, self.primary.clone())
    }

    fn positions(&self) -> (LogPosition, u64, u64) {
        (
            self.log.last_position(),
            self.commit_index,
            self.durability.durable_index,
        )
    }

    fn counters(&self) -> Counters {
        self.counters
    }

    fn begin_read(&mut self, now: u64) -> Result<ReadTicket, NotPrimary> {
        self.check_primary()?;
        self.round += 1;
        let ticket = ReadTicket {
            term: self.term,
            round: self.round,
            read_index: self.commit_index.max(self.term_start_index),
        };
        self.replicate_all(now);
        Ok(ticket)
    }

    fn read_state(&self, ticket: &ReadTicket) -> ReadState {
        if self.role != Role::Primary || self.term != ticket.term {
            ReadState::Lost
        } else if self.confirmed_round() >= ticket.round && self.commit_index >= ticket.read_index {
            ReadState::Ready
        } else {
            ReadState::Waiting
        }
    }

    fn committed_kv(&self) -> &Store {
        &self.committed
    }
}
