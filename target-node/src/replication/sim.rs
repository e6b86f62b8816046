//! Unit tests of the replication state machines on a simulated network:
//! messages are queued and delivered in order, links can be cut, time is a
//! number. Every loop here is bounded.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use super::multi::MultiPrimary;
use super::primary::Replica;
use super::{Meta, Output, ReadState, ReplicaConfig, Replication};
use crate::api::{LogPosition, NodeId, Role};
use crate::message::{PeerReply, PeerRequest, VoteRequest};
use crate::mode::{Election, WriteConcern};
use crate::oplog::{Entry, Op};
use serde_json::Value;

enum Message {
    Request(PeerRequest),
    Reply(PeerReply),
}

struct Sim {
    nodes: BTreeMap<NodeId, Box<dyn Replication>>,
    now: u64,
    queue: VecDeque<(NodeId, NodeId, Message)>,
    /// Directed links (from, to) that drop everything.
    cut: BTreeSet<(NodeId, NodeId)>,
}

fn ids(n: usize) -> Vec<NodeId> {
    (1..=n).map(|i| NodeId(format!("n{i}"))).collect()
}

fn config(id: &NodeId, all: &[NodeId], election: Election) -> ReplicaConfig {
    ReplicaConfig {
        id: id.clone(),
        peers: all.iter().filter(|p| *p != id).cloned().collect(),
        election,
        heartbeat_ms: 10,
        election_timeout_ms: 100,
        rpc_timeout_ms: 50,
        max_batch: 4,
    }
}

fn put(key: &str, value: i64) -> Op {
    Op::Put {
        key: key.into(),
        value: value.into(),
    }
}

impl Sim {
    fn primary_topology(n: usize, election: Election) -> Sim {
        let all = ids(n);
        let nodes = (all.iter())
            .map(|id| {
                let replica =
                    Replica::new(config(id, &all, election), Meta::default(), Vec::new(), 0);
                (id.clone(), Box::new(replica) as Box<dyn Replication>)
            })
            .collect();
        Sim {
            nodes,
            now: 0,
            queue: VecDeque::new(),
            cut: BTreeSet::new(),
        }
    }

    fn multi_primary(n: usize) -> Sim {
        let all = ids(n);
        let nodes = (all.iter())
            .map(|id| {
                let replica = MultiPrimary::new(config(id, &all, Election::Majority), Vec::new());
                (id.clone(), Box::new(replica) as Box<dyn Replication>)
            })
            .collect();
        Sim {
            nodes,
            now: 0,
            queue: VecDeque::new(),
            cut: BTreeSet::new(),
        }
    }

    fn node(&mut self, id: &str) -> &mut Box<dyn Replication> {
        self.nodes.get_mut(&NodeId::from(id)).expect("no such node")
    }

    /// Carries out a node's outputs: persists are durable at once, sends
    /// are queued.
    fn flush(&mut self, id: &NodeId) {
        for _ in 0..100 {
            let outputs = self.nodes.get_mut(id).unwrap().drain();
            if outputs.is_empty() {
                return;
            }
            for output in outputs {
                match output {
                    Output::Send { to, request } => {
                        self.queue
                            .push_back((id.clone(), to, Message::Request(request)))
                    }
                    Output::Persist { seq, .. } => self.nodes.get_mut(id).unwrap().on_durable(seq),
                    Output::SaveMeta(_) => {}
                }
            }
        }
        panic!("outputs did not settle");
    }

    fn deliver_all(&mut self) {
        for _ in 0..100_000 {
            let Some((from, to, message)) = self.queue.pop_front() else {
                return;
            };
            let now = self.now;
            if self.cut.contains(&(from.clone(), to.clone())) {
                if let Message::Request(request) = message {
                    self.nodes
                        .get_mut(&from)
                        .unwrap()
                        .send_failed(&to, &request, now);
                    self.flush(&from);
                }
                continue;
            }
            match message {
                Message::Request(request) => {
                    let reply = self
                        .nodes
                        .get_mut(&to)
                        .unwrap()
                        .handle_request(request, now);
                    self.flush(&to);
                    self.queue.push_back((to, from, Message::Reply(reply)));
                }
                Message::Reply(reply) => {
                    self.nodes.get_mut(&to).unwrap().handle_reply(reply, now);
                    self.flush(&to);
                }
            }
        }
        panic!("messages did not settle");
    }

    fn run(&mut self, ms: u64) {
        for _ in 0..ms / 5 {
            self.now += 5;
            let ids: Vec<NodeId> = self.nodes.keys().cloned().collect();
            for id in &ids {
                let now = self.now;
                self.nodes.get_mut(id).unwrap().tick(now);
                self.flush(id);
            }
            self.deliver_all();
        }
    }

    fn primaries(&self) -> Vec<(NodeId, u64)> {
        (self.nodes.iter())
            .filter_map(|(id, n)| {
                let (role, term, _) = n.role();
                (role == Role::Primary).then(|| (id.clone(), term))
            })
            .collect()
    }

    fn primary(&self) -> NodeId {
        let primaries = self.primaries();
        let top = primaries
            .iter()
            .max_by_key(|(_, term)| *term)
            .expect("no primary");
        top.0.clone()
    }

    fn propose(&mut self, id: &str, op: Op) -> LogPosition {
        let now = self.now;
        let position = self.node(id).propose(op, now, now).expect("not primary");
        self.flush(&NodeId::from(id));
        position
    }

    fn isolate(&mut self, id: &str) {
        let id = NodeId::from(id);
        for other in self.nodes.keys() {
            if *other != id {
                self.cut.insert((id.clone(), other.clone()));
                self.cut.insert((other.clone(), id.clone()));
            }
        }
    }

    fn heal(&mut self) {
        self.cut.clear();
    }

    fn value(&mut self, id: &str, key: &str) -> Value {
        self.node(id).kv().get(key)
    }
}

#[test]
fn majority_election_elects_one_primary_whose_writes_commit_everywhere() {
    let mut sim = Sim::primary_topology(3, Election::Majority);
    sim.run(600);
    assert_eq!(sim.primaries().len(), 1);
    let primary = sim.primary();
    for i in 0..10 {
        sim.propose(&primary.0, put(&format!("k{i}"), i));
    }
    sim.run(100);
    for id in ["n1", "n2", "n3"] {
        assert_eq!(sim.value(id, "k9"), Value::from(9));
        assert_eq!(
            sim.node(id).positions().1,
            11,
            "{id} commit index: 10 writes + the no-op"
        );
    }
}

#[test]
fn bully_election_picks_the_highest_reachable_id() {
    let mut sim = Sim::primary_topology(3, Election::Bully);
    sim.run(300);
    assert_eq!(sim.primaries(), vec![(NodeId::from("n3"), 1)]);
    sim.isolate("n3");
    sim.run(300);
    let primaries = sim.primaries();
    assert!(
        primaries.contains(&(NodeId::from("n2"), 2)),
        "{primaries:?}"
    );
    assert!(
        primaries.contains(&(NodeId::from("n3"), 1)),
        "split brain: n3 stays primary alone"
    );
}

#[test]
fn async_writes_are_lost_when_primary_is_isolated() {
    let mut sim = Sim::primary_topology(3, Election::Bully);
    sim.run(300);
    sim.propose("n3", put("kept", 1));
    sim.run(50);
    sim.isolate("n3");
    for i in 0..3 {
        let position = sim.propose("n3", put(&format!("lost{i}"), i));
        assert!(
            sim.node("n3").ack_index(WriteConcern::One) >= position.index,
            "acked at once"
        );
    }
    sim.run(300);
    sim.propose("n2", put("new", 2));
    sim.heal();
    sim.run(200);
    assert_eq!(sim.primary(), NodeId::from("n2"));
    assert_eq!(sim.value("n3", "lost0"), Value::Null);
    assert_eq!(sim.value("n3", "new"), Value::from(2));
    assert_eq!(sim.value("n3", "kept"), Value::from(1));
    assert_eq!(sim.node("n3").counters().entries_rolled_back, 3);
    assert_eq!(sim.node("n3").positions().0, sim.node("n2").positions().0);
}

#[test]
fn majority_writes_do_not_commit_in_a_minority_and_its_primary_steps_down() {
    let mut sim = Sim::primary_topology(3, Election::Majority);
    sim.run(600);
    let old = sim.primary();
    sim.isolate(&old.0);
    let position = sim.propose(&old.0, put("x", 1));
    sim.run(50);
    assert!(sim.node(&old.0).ack_index(WriteConcern::Majority) < position.index);
    sim.run(600);
    assert_ne!(sim.node(&old.0).role().0, Role::Primary, "stepped down");
    let new = sim.primary();
    assert_ne!(new, old);
    sim.heal();
    sim.run(300);
    assert_eq!(
        sim.value(&old.0, "x"),
        Value::Null,
        "the uncommitted write was rolled back"
    );
    assert!(!sim.node(&old.0).holds(position));
}

#[test]
fn lagging_secondary_receives_only_the_missing_entries() {
    let mut sim = Sim::primary_topology(3, Election::Majority);
    sim.run(600);
    let primary = sim.primary();
    let lagging = if primary.0 == "n1" { "n2" } else { "n1" };
    sim.isolate(lagging);
    // Reconnect the others (isolate cut them from the lagging node only).
    for i in 0..10 {
        sim.propose(&primary.0, put(&format!("k{i}"), i));
    }
    sim.run(50);
    let before = sim.node(lagging).counters().entries_received;
    sim.heal();
    sim.run(200);
    assert_eq!(sim.node(lagging).counters().entries_received - before, 10);
    assert_eq!(sim.value(lagging, "k9"), Value::from(9));
}

#[test]
fn votes_go_once_per_term_and_only_to_up_to_date_logs() {
    let all = ids(3);
    let entries: Vec<Entry> = (1..=5)
        .map(|index| Entry {
            term: 2,
            index,
            origin: "n3".into(),
            ts_ms: 0,
            op: Op::Noop,
        })
        .collect();
    let meta = Meta {
        term: 2,
        voted_for: None,
    };
    let mut replica = Replica::new(config(&all[0], &all, Election::Majority), meta, entries, 0);
    let vote = |candidate: &str, term, last_term, last_index| {
        PeerRequest::Vote(VoteRequest {
            term,
            candidate: candidate.into(),
            last: LogPosition {
                term: last_term,
                index: last_index,
            },
        })
    };
    let granted = |reply: PeerReply| matches!(reply, PeerReply::Vote(v) if v.granted);
    assert!(
        !granted(replica.handle_request(vote("n2", 3, 1, 9), 0)),
        "older last term"
    );
    assert!(
        !granted(replica.handle_request(vote("n2", 3, 2, 4), 0)),
        "shorter log"
    );
    assert!(granted(replica.handle_request(vote("n2", 3, 2, 5), 0)));
    assert!(
        !granted(replica.handle_request(vote("n3", 3, 2, 6), 0)),
        "already voted in term 3"
    );
    assert!(
        granted(replica.handle_request(vote("n2", 3, 2, 5), 0)),
        "same candidate again"
    );
}

#[test]
fn linearizable_read_waits_for_a_majority_to_confirm() {
    let mut sim = Sim::primary_topology(3, Election::Majority);
    sim.run(600);
    let primary = sim.primary();
    let now = sim.now;
    let ticket = sim.node(&primary.0).begin_read(now).unwrap();
    assert_eq!(sim.node(&primary.0).read_state(&ticket), ReadState::Waiting);
    sim.flush(&primary);
    sim.deliver_all();
    assert_eq!(sim.node(&primary.0).read_state(&ticket), ReadState::Ready);

    sim.isolate(&primary.0);
    let now = sim.now;
    let ticket = sim.node(&primary.0).begin_read(now).unwrap();
    sim.flush(&primary);
    sim.deliver_all();
    assert_eq!(sim.node(&primary.0).read_state(&ticket), ReadState::Waiting);
    sim.run(600);
    assert_eq!(sim.node(&primary.0).read_state(&ticket), ReadState::Lost);
}

#[test]
fn multi_primary_converges_by_last_write_wins() {
    let mut sim = Sim::multi_primary(3);
    sim.now = 1000;
    sim.propose("n1", put("k", 1));
    sim.now = 1001;
    sim.propose("n2", put("k", 2));
    sim.now = 1000;
    sim.propose("n3", put("k", 3)); // an older timestamp: loses everywhere
    sim.run(50);
    for id in ["n1", "n2", "n3"] {
        assert_eq!(sim.value(id, "k"), Value::from(2), "{id}");
    }
    assert!(sim.node("n3").ack_index(WriteConcern::All) >= 1);
}
