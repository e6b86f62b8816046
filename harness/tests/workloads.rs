//! The workloads' clients against a real 3-node target-node cluster (the
//! `faultline` binary as the node, strong modes: majority writes, majority
//! election, linearizable reads), driven by their own generators in a plain
//! sequential loop — no interpreter:
//! - register: every op completes `ok` (or `fail` with `cas-mismatch`), and
//!   the recorded history checks linearizable;
//! - set: every add is acknowledged, the primary's final read holds them
//!   all, the secondaries refuse theirs, and the set checks valid;
//! - append: transactions come back with their reads filled in, and the
//!   history checks strict serializable;
//! - a client bound to a secondary follows the `not-primary` hint.

mod support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use checker::history::{Op, OpType};
use checker::Validity;
use harness::client::{Client, Completion};
use harness::generator::{BoxGen, Context, Invocation, Next};
use harness::system::db::{Db, NodeInfo};
use harness::system::target_node::client::{ClientOptions, NodeClient};
use harness::system::target_node::db::{NodeBinary, TargetNodeConfig, TargetNodeDb};
use harness::system::target_node::{client_for, status};
use harness::workload::{workload, Workload, WorkloadKind, WorkloadOptions};
use rand::rngs::StdRng;
use rand::SeedableRng;
use serde_json::{json, Value};

const WORKERS: usize = 3;

fn config(run_dir: &Path) -> TargetNodeConfig {
    let mut config = TargetNodeConfig::new(3, run_dir);
    config.binary = NodeBinary::WithArgs {
        program: PathBuf::from(support::FAULTLINE),
        leading_args: vec!["node".into()],
    };
    config.ready_timeout = Duration::from_secs(20);
    config.stop_grace = Duration::from_secs(3);
    config
}

/// A running cluster, torn down when dropped.
struct Cluster {
    db: TargetNodeDb,
    _dir: tempfile::TempDir,
    runtime: tokio::runtime::Runtime,
}

impl Cluster {
    fn start() -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        let mut db = TargetNodeDb::new(config(dir.path())).unwrap();
        db.setup().expect("the cluster comes up");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        Cluster {
            db,
            _dir: dir,
            runtime,
        }
    }

    fn nodes(&self) -> Vec<NodeInfo> {
        self.db.nodes().to_vec()
    }

    fn primary(&self) -> String {
        let ask = self.db.as_primary().expect("target-node knows").primary();
        status::block_on(ask).unwrap().expect("a primary is known")
    }
}

/// A history recorded by hand: invoke, then completion, one op at a time.
struct History {
    ops: Vec<Op>,
    started: Instant,
}

impl History {
    fn new() -> History {
        History {
            ops: Vec::new(),
            started: Instant::now(),
        }
    }

    fn push(&mut self, mut op: Op) {
        op.index = self.ops.len() as u64;
        op.time = Some(self.started.elapsed().as_nanos() as u64);
        self.ops.push(op);
    }

    /// Invokes `op` on `client` as `process` and records both events.
    async fn run(&mut self, process: u64, client: &mut dyn Client, op: &Invocation) -> Completion {
        let mut invoke = Op::invoke(process, &op.f, op.value.clone());
        invoke.key = op.key.clone();
        self.push(invoke.clone());
        let done = client.invoke(op).await;
        let mut completion = invoke.completed(done.op_type, done.value.clone());
        completion.node = done.node.clone();
        completion.error = done.error.clone();
        self.push(completion);
        done
    }
}

/// Drives `n` ops of the workload's generator (round-robin over the
/// workers, each its own process), then its final phase on worker 0.
async fn drive(w: &dyn Workload, nodes: &[NodeInfo], n: usize) -> (History, Vec<Completion>) {
    let kind: WorkloadKind = w.name().parse().unwrap();
    let options = ClientOptions::default();
    let mut clients: Vec<Box<dyn Client>> = (0..WORKERS)
        .map(|i| client_for(kind, &options, i, nodes))
        .collect();
    let mut rng = StdRng::seed_from_u64(42);
    let mut history = History::new();
    let mut main = w.generator();
    for i in 0..n {
        let worker = i % WORKERS;
        let op = next_op(&mut main, worker, &mut rng).expect("main phase is endless");
        let done = history
            .run(worker as u64, clients[worker].as_mut(), &op)
            .await;
        assert_ne!(
            done.op_type,
            OpType::Info,
            "{op:?} on a healthy cluster: {done:?}"
        );
    }
    let mut finals = Vec::new();
    if let Some(mut last) = w.final_generator(nodes) {
        while let Some(op) = next_op(&mut last, 0, &mut rng) {
            finals.push(history.run(0, clients[0].as_mut(), &op).await);
        }
    }
    (history, finals)
}

fn next_op(g: &mut BoxGen, worker: usize, rng: &mut StdRng) -> Option<Invocation> {
    let ctx = Context {
        time: Duration::ZERO,
        worker,
        workers: WORKERS,
    };
    match g.next(&ctx, rng) {
        Next::Op(op) => Some(op),
        Next::Exhausted => None,
        Next::Pending(at) => panic!("a workload generator waits ({at:?}) with no clock"),
    }
}

fn completions(history: &History) -> impl Iterator<Item = &Op> {
    history.ops.iter().filter(|o| o.op_type != OpType::Invoke)
}

#[test]
fn register_ops_on_a_healthy_cluster_check_linearizable() {
    let cluster = Cluster::start();
    let options = WorkloadOptions {
        keys: 3,
        per_key_limit: 30,
        ..WorkloadOptions::default()
    };
    let w = workload(WorkloadKind::Register, options);
    let nodes = cluster.nodes();
    let (history, finals) = cluster.runtime.block_on(drive(w.as_ref(), &nodes, 120));
    assert!(
        finals.is_empty(),
        "the register workload has no final reads"
    );
    let primary = cluster.primary();
    for op in completions(&history) {
        match op.op_type {
            OpType::Ok => assert_eq!(op.node.as_deref(), Some(primary.as_str()), "{op:?}"),
            OpType::Fail => assert_eq!(op.error, Some(json!("cas-mismatch")), "{op:?}"),
            _ => panic!("{op:?}"),
        }
    }
    let reads_ok = completions(&history)
        .filter(|o| o.f == "read" && o.op_type == OpType::Ok)
        .count();
    assert!(reads_ok > 30, "{reads_ok} reads");
    let keys: std::collections::BTreeSet<_> = history.ops.iter().map(|o| o.key.clone()).collect();
    assert!(keys.len() >= 4, "keys rotated: {keys:?}");

    let outcomes = w.check(&history.ops);
    assert_eq!(outcomes.len(), 1);
    assert_eq!(outcomes[0].checker, "linearizable");
    assert_eq!(
        outcomes[0].result.valid,
        Validity::Valid,
        "{:?}",
        outcomes[0]
    );
}

#[test]
fn set_adds_survive_and_the_final_reads_go_to_every_node() {
    let cluster = Cluster::start();
    let w = workload(WorkloadKind::Set, WorkloadOptions::default());
    let nodes = cluster.nodes();
    let (history, finals) = cluster.runtime.block_on(drive(w.as_ref(), &nodes, 100));
    let added: Vec<Value> = completions(&history)
        .filter(|o| o.f == "add")
        .inspect(|o| assert_eq!(o.op_type, OpType::Ok, "{o:?}"))
        .map(|o| o.value.clone())
        .collect();
    assert!(added.len() > 70);

    let primary = cluster.primary();
    assert_eq!(finals.len(), 3);
    for (node, done) in nodes.iter().zip(&finals) {
        assert_eq!(
            done.node.as_ref(),
            Some(&node.id),
            "pinned reads are not redirected"
        );
        if node.id == primary {
            assert_eq!(done.op_type, OpType::Ok, "{done:?}");
            assert_eq!(done.value, json!(added), "every add, in order");
        } else {
            assert_eq!(done.op_type, OpType::Fail, "{done:?}");
            assert_eq!(done.error, Some(json!("not-primary")));
        }
    }

    let outcome = &w.check(&history.ops)[0];
    assert_eq!(outcome.checker, "set");
    assert_eq!(outcome.result.valid, Validity::Valid, "{outcome:?}");
    assert!(outcome.anomalies.is_empty());
}

#[test]
fn append_transactions_come_back_with_reads_filled_in() {
    let cluster = Cluster::start();
    let options = WorkloadOptions {
        keys: 4,
        ..WorkloadOptions::default()
    };
    let w = workload(WorkloadKind::Append, options);
    let nodes = cluster.nodes();
    let (history, finals) = cluster.runtime.block_on(drive(w.as_ref(), &nodes, 100));
    // The main phase; the final reads follow.
    for op in completions(&history).take(100) {
        assert_eq!(op.op_type, OpType::Ok, "{op:?}");
        let micro_ops = op.value.as_array().unwrap();
        for m in micro_ops.iter().filter(|m| m[0] == "r") {
            assert!(
                m[2].is_null() || m[2].is_array(),
                "a read returns a list: {m}"
            );
        }
    }
    let primary = cluster.primary();
    let read_all = finals
        .iter()
        .find(|d| d.node.as_deref() == Some(primary.as_str()))
        .expect("a final read on the primary");
    assert_eq!(read_all.op_type, OpType::Ok, "{read_all:?}");
    assert_eq!(read_all.value.as_array().unwrap().len(), 4);
    assert!(
        read_all.value[0][2].is_array(),
        "the hot key was appended to"
    );

    // One client, one primary, no faults: strict serializable.
    let outcome = &w.check(&history.ops)[0];
    assert_eq!(
        outcome.result.valid,
        Validity::Valid,
        "{}",
        outcome.result.details
    );
}

#[test]
fn a_client_bound_to_a_secondary_follows_the_primary_hint() {
    let cluster = Cluster::start();
    let nodes = cluster.nodes();
    let primary = cluster.primary();
    let secondary = nodes.iter().position(|n| n.id != primary).unwrap();
    let options = ClientOptions::default();
    let mut client = NodeClient::new(secondary, &nodes, &options);
    assert_eq!(client.bound_node(), Some(nodes[secondary].id.as_str()));
    cluster.runtime.block_on(async {
        let write = Invocation::new("write", json!(1)).on_key("r");
        let done = client.invoke(&write).await;
        assert_eq!(done.op_type, OpType::Ok, "{done:?}");
        assert_eq!(done.node.as_deref(), Some(primary.as_str()));
        assert_eq!(client.believed_primary(), Some(primary.as_str()));

        let read = client
            .invoke(&Invocation::new("read", Value::Null).on_key("r"))
            .await;
        assert_eq!((read.op_type, read.value), (OpType::Ok, json!(1)));
        assert_eq!(
            read.node.as_deref(),
            Some(primary.as_str()),
            "straight to the primary now"
        );

        let pinned = Invocation::new("read", Value::Null)
            .on_key("r")
            .on_node(&nodes[secondary].id);
        let refused = client.invoke(&pinned).await;
        assert_eq!(refused.op_type, OpType::Fail);
        assert_eq!(refused.error, Some(json!("not-primary")));
    });
}
