//! The nemesis package of a test: which faults, when, and how they are
//! applied (Jepsen's `nemesis/combined` packages).
//!
//! - [`Schedule`] is the generator: every `--nemesis-interval` it starts a
//!   fault drawn (seeded) from the test's fault names, holds it for one
//!   interval, then undoes it. [`final_generator`] undoes everything the
//!   package may have done, before recovery and the final reads.
//! - [`NemesisClient`] applies those ops to the cluster: partitions and link
//!   faults through a [`Net`] backend, kill/start and pause/resume through
//!   the database's abilities; `slow` and `flaky` hit every link to and
//!   from one random node (all links where the backend cannot choose); (`kill` and `pause` hit one node, a minority, a
//!   majority or all, drawn each time; `-primary` variants hit the primary),
//!   clock skew (a bump of ±0.5–20 s, or a strobe flipping it every 100 ms)
//!   and crashes through the database's [`Clock`](crate::system::db::Clock) and [`Crash`](crate::system::db::Crash) abilities.
//!
//! Each op is recorded as a `nemesis` invocation naming what was asked
//! (`partition-halves`, `primary`, ...) and an `info` completion carrying what
//! was applied (the grudge, the nodes, the offsets), so fault windows can be
//! shaded and anomalies attributed.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nemesis::fault::{FaultOp, Target};
use nemesis::grudge::{Node, Topology};
use nemesis::net::Net;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

use crate::client::{BoxFuture, Client, Completion};
use crate::generator::{Context, Generator, Invocation, Next, Sequence};
use crate::system::db::{Db, NodeInfo};

/// How long a clock skew may be: up to this many ms either way.
const MAX_SKEW_MS: i64 = 20_000;
/// Added latency for `slow`.
const SLOW_DELAY: Duration = Duration::from_millis(50);
/// Its jitter.
const SLOW_JITTER: Duration = Duration::from_millis(25);
/// How often a clock strobe flips.
const STROBE_PERIOD: Duration = Duration::from_millis(100);
/// Fraction of connections hit by `flaky`.
const FLAKY_LOSS: f64 = 0.3;

/// Whether the faults need a network backend between the nodes.
pub fn needs_net(faults: &[String]) -> bool {
    faults
        .iter()
        .any(|f| f.starts_with("partition") || f == "slow" || f == "flaky")
}

/// The op that starts `fault` (a name from DESIGN's vocabulary), and the op
/// that undoes it. `None` for `none`.
fn fault_ops(fault: &str) -> Option<(Invocation, Invocation)> {
    let op = |f: &str, v: Value| Invocation::new(f, v);
    Some(match fault {
        "none" => return None,
        "partition" => (op("partition", json!("partition")), op("heal", Value::Null)),
        p if p.starts_with("partition-") => (op("partition", json!(p)), op("heal", Value::Null)),
        "kill" => (op("kill", json!("random")), op("start", json!("all"))),
        "kill-primary" => (op("kill", json!("primary")), op("start", json!("all"))),
        "pause" => (op("pause", json!("random")), op("resume", json!("all"))),
        "pause-primary" => (op("pause", json!("primary")), op("resume", json!("all"))),
        "clock" => (op("clock", json!("random")), op("reset", Value::Null)),
        "crash" => (op("crash", json!("random")), op("start", json!("all"))),
        "slow" => (op("slow", Value::Null), op("fast", Value::Null)),
        "flaky" => (op("flaky", Value::Null), op("fast", Value::Null)),
        _ => return None,
    })
}

/// Start a fault, hold it one interval, undo it, wait one interval; repeat.
pub struct Schedule {
    faults: Vec<(Invocation, Invocation)>,
    interval: Duration,
    next_at: Option<Duration>,
    undo: Option<Invocation>,
}

impl Schedule {
    /// A schedule over these fault names, one action every `interval`.
    pub fn new(faults: &[String], interval: Duration) -> Self {
        Schedule {
            faults: faults.iter().filter_map(|f| fault_ops(f)).collect(),
            interval,
            next_at: None,
            undo: None,
        }
    }
}

impl Generator for Schedule {
    fn next(&mut self, ctx: &Context, rng: &mut StdRng) -> Next {
        if self.faults.is_empty() {
            return Next::Exhausted;
        }
        let due = *self.next_at.get_or_insert(ctx.time + self.interval);
        if ctx.time < due {
            return Next::Pending(Some(due));
        }
        self.next_at = Some(ctx.time + self.interval);
        match self.undo.take() {
            Some(undo) => Next::Op(undo),
            None => {
                let (start, undo) = self.faults[rng.gen_range(0..self.faults.len())].clone();
                self.undo = Some(undo);
                Next::Op(start)
            }
        }
    }
}

/// Undoes everything the faults may have done: heal, fast, resume, start,
/// reset, in that order.
pub fn final_generator(faults: &[String]) -> Sequence {
    let mut undos: Vec<Invocation> = Vec::new();
    for (_, undo) in faults.iter().filter_map(|f| fault_ops(f)) {
        if !undos.contains(&undo) {
            undos.push(undo);
        }
    }
    let rank = |op: &Invocation| {
        ["heal", "fast", "resume", "start", "reset"]
            .iter()
            .position(|f| *f == op.f)
    };
    undos.sort_by_key(rank);
    Sequence(VecDeque::from(undos))
}

/// Applies fault ops to the cluster.
pub struct NemesisClient {
    db: Arc<Mutex<Box<dyn Db>>>,
    net: Option<Box<dyn Net>>,
    nodes: Vec<NodeInfo>,
    rng: StdRng,
    /// Nodes killed or crashed and not started since.
    down: BTreeSet<Node>,
    /// Nodes paused and not resumed since.
    paused: BTreeSet<Node>,
    /// Clock strobes running until the next reset.
    strobes: Vec<tokio::task::JoinHandle<()>>,
}

impl NemesisClient {
    /// A nemesis over `db`'s nodes, cutting links through `net` when given.
    pub fn new(
        db: Arc<Mutex<Box<dyn Db>>>,
        net: Option<Box<dyn Net>>,
        nodes: Vec<NodeInfo>,
        seed: u64,
    ) -> Self {
        NemesisClient {
            db,
            net,
            nodes,
            rng: StdRng::seed_from_u64(seed ^ 0x6e65_6d65_7369_7321),
            down: BTreeSet::new(),
            paused: BTreeSet::new(),
            strobes: Vec::new(),
        }
    }

    fn node_ids(&self) -> Vec<Node> {
        self.nodes.iter().map(|n| n.id.clone()).collect()
    }

    /// The primary, if the database can tell and knows one. (The futures
    /// these helpers return own what they need: `self` holds the network
    /// backend, which is not `Sync`, so it must not be borrowed across an
    /// await.)
    fn primary(&self) -> impl Future<Output = Option<String>> + Send + 'static {
        let ask = self.ability(
            |db| db.as_primary().map(|p| p.primary()),
            "find the primary",
        );
        async move { ask.ok()?.await }
    }

    /// The nodes `value` names: a [`Target`], or `random` for one drawn
    /// (seeded) from one node, a minority, a majority and all nodes.
    async fn target(&mut self, value: &Value) -> Result<Vec<Node>, String> {
        let target: Target = if value == "random" {
            [Target::One, Target::Minority, Target::Majority, Target::All][self.rng.gen_range(0..4)]
        } else {
            serde_json::from_value(value.clone())
                .map_err(|e| format!("unknown target {value}: {e}"))?
        };
        let primary = if target == Target::Primary {
            self.primary().await
        } else {
            None
        };
        let nodes = self.node_ids();
        Ok(target.pick(&nodes, primary.as_deref(), &mut self.rng))
    }

    fn net(&mut self) -> Result<&mut Box<dyn Net>, String> {
        self.net
            .as_mut()
            .ok_or_else(|| "no network backend: this test has no network faults".to_string())
    }

    /// Every directed link to and from one random node: a slow or flaky node.
    fn links_of_random_node(&mut self) -> BTreeSet<(Node, Node)> {
        let nodes = self.node_ids();
        let victim = nodes[self.rng.gen_range(0..nodes.len())].clone();
        nodes
            .iter()
            .filter(|n| **n != victim)
            .flat_map(|n| [(victim.clone(), n.clone()), (n.clone(), victim.clone())])
            .collect()
    }

    /// Applies one op; returns what was applied, as recorded in the history.
    async fn apply(&mut self, op: &Invocation) -> Result<Value, String> {
        let applied = match op.f.as_str() {
            "partition" => {
                let name = op.value.as_str().unwrap_or("partition");
                let topology = if name == "partition" {
                    Topology::random(&mut self.rng)
                } else {
                    name.parse::<Topology>().map_err(|e| e.to_string())?
                };
                let primary = if topology == Topology::Primary {
                    self.primary().await
                } else {
                    None
                };
                let grudge = topology.grudge(&self.node_ids(), primary.as_deref(), &mut self.rng);
                self.net()?.partition(&grudge).map_err(|e| e.to_string())?;
                FaultOp::Partition(grudge)
            }
            "heal" => {
                self.net()?.heal().map_err(|e| e.to_string())?;
                FaultOp::Heal
            }
            "slow" => {
                let links = self.links_of_random_node();
                let net = self.net()?;
                net.slow_links(&links, SLOW_DELAY, SLOW_JITTER)
                    .or_else(|_| net.slow(SLOW_DELAY, SLOW_JITTER))
                    .map_err(|e| e.to_string())?;
                return Ok(json!({
                    "delay_ms": SLOW_DELAY.as_millis() as u64,
                    "jitter_ms": SLOW_JITTER.as_millis() as u64,
                    "links": links,
                }));
            }
            "flaky" => {
                let links = self.links_of_random_node();
                let net = self.net()?;
                net.flaky_links(&links, FLAKY_LOSS)
                    .or_else(|_| net.flaky(FLAKY_LOSS))
                    .map_err(|e| e.to_string())?;
                return Ok(json!({ "loss": FLAKY_LOSS, "links": links }));
            }
            "fast" => {
                self.net()?.fast().map_err(|e| e.to_string())?;
                FaultOp::Fast
            }
            "kill" => {
                let nodes = self.target(&op.value).await?;
                self.with_db(|db| {
                    let kill = db.as_kill().ok_or("this database cannot kill nodes")?;
                    nodes
                        .iter()
                        .try_for_each(|n| kill.kill(n).map_err(|e| e.to_string()))
                })?;
                self.down.extend(nodes.iter().cloned());
                FaultOp::Kill(nodes)
            }
            "crash" => {
                let nodes = self.target(&op.value).await?;
                for node in &nodes {
                    self.crash(node)
                        .await
                        .map_err(|e| format!("crash {node}: {e}"))?;
                }
                self.down.extend(nodes.iter().cloned());
                if nodes.is_empty() {
                    return Err("no node to crash".into());
                }
                FaultOp::Crash(nodes)
            }
            "start" => {
                let nodes: Vec<Node> = std::mem::take(&mut self.down).into_iter().collect();
                self.with_db(|db| {
                    let kill = db.as_kill().ok_or("this database cannot start nodes")?;
                    nodes
                        .iter()
                        .try_for_each(|n| kill.start(n).map_err(|e| e.to_string()))
                })?;
                FaultOp::Start(nodes)
            }
            "pause" => {
                let nodes = self.target(&op.value).await?;
                self.with_db(|db| {
                    let pause = db.as_pause().ok_or("this database cannot pause nodes")?;
                    nodes
                        .iter()
                        .try_for_each(|n| pause.pause(n).map_err(|e| e.to_string()))
                })?;
                self.paused.extend(nodes.iter().cloned());
                FaultOp::Pause(nodes)
            }
            "resume" => {
                let nodes: Vec<Node> = std::mem::take(&mut self.paused).into_iter().collect();
                self.with_db(|db| {
                    let pause = db.as_pause().ok_or("this database cannot resume nodes")?;
                    nodes
                        .iter()
                        .try_for_each(|n| pause.resume(n).map_err(|e| e.to_string()))
                })?;
                FaultOp::Resume(nodes)
            }
            "clock" => {
                let strobe = match op.value.as_str() {
                    Some("strobe") => true,
                    Some("bump") => false,
                    _ => self.rng.gen_bool(0.5),
                };
                let nodes = self.target(&json!("one")).await?;
                let mut offsets_ms = BTreeMap::new();
                for node in nodes {
                    let magnitude = self.rng.gen_range(500..=MAX_SKEW_MS);
                    let offset = if self.rng.gen_bool(0.5) {
                        magnitude
                    } else {
                        -magnitude
                    };
                    self.shift_clock(&node, offset)
                        .await
                        .map_err(|e| format!("clock {node}: {e}"))?;
                    if strobe {
                        self.strobe_clock(&node, offset);
                    }
                    offsets_ms.insert(node, offset);
                }
                FaultOp::Clock { offsets_ms }
            }
            "reset" => {
                for strobe in self.strobes.drain(..) {
                    strobe.abort();
                }
                for node in self.node_ids() {
                    let down = self.down.contains(&node);
                    self.reset_clock(&node, down)
                        .await
                        .map_err(|e| format!("reset {node}: {e}"))?;
                }
                FaultOp::ResetClock
            }
            other => return Err(format!("unknown nemesis op {other:?}")),
        };
        Ok(applied.value())
    }

    /// Crashes `node` through the database's [`Crash`](crate::system::db::Crash) ability.
    fn crash(&self, node: &str) -> impl Future<Output = Result<(), String>> + Send + 'static {
        let ask = self.ability(|db| db.as_crash().map(|c| c.crash(node)), "crash nodes");
        async move { ask?.await }
    }

    /// Shifts `node`'s clock through the database's [`Clock`](crate::system::db::Clock) ability.
    fn shift_clock(
        &self,
        node: &str,
        offset_ms: i64,
    ) -> impl Future<Output = Result<(), String>> + Send + 'static {
        let ask = self.ability(
            |db| db.as_clock().map(|c| c.shift(node, offset_ms)),
            "shift clocks",
        );
        async move { ask?.await }
    }

    /// Flips `node`'s clock between `offset_ms` and none until reset, where
    /// the clock can be strobed.
    fn strobe_clock(&mut self, node: &str, offset_ms: i64) {
        let strobe = self
            .ability(
                |db| {
                    db.as_clock()
                        .map(|c| c.strobe(node, offset_ms, STROBE_PERIOD))
                },
                "strobe clocks",
            )
            .ok()
            .flatten();
        if let Some(strobe) = strobe {
            self.strobes.push(tokio::spawn(strobe));
        }
    }

    /// Puts `node`'s clock back through the database's [`Clock`](crate::system::db::Clock) ability.
    fn reset_clock(
        &self,
        node: &str,
        down: bool,
    ) -> impl Future<Output = Result<(), String>> + Send + 'static {
        let ask = self.ability(
            |db| db.as_clock().map(|c| c.reset(node, down)),
            "reset clocks",
        );
        async move { ask?.await }
    }

    /// What `ask` takes from the database (a future that owns what it
    /// needs, so the lock is released before it runs); `Err` when the
    /// database has not the ability to `what`.
    fn ability<T>(&self, ask: impl FnOnce(&dyn Db) -> Option<T>, what: &str) -> Result<T, String> {
        let db = self
            .db
            .lock()
            .map_err(|_| "the database lock is poisoned".to_string())?;
        ask(db.as_ref()).ok_or_else(|| format!("this database cannot {what}"))
    }

    fn with_db<T>(&self, f: impl FnOnce(&mut dyn Db) -> Result<T, String>) -> Result<T, String> {
        tokio::task::block_in_place(|| {
            let mut db = self
                .db
                .lock()
                .map_err(|_| "the database lock is poisoned".to_string())?;
            f(db.as_mut())
        })
    }

    /// Undoes every fault still in force (for teardown after an error).
    pub fn teardown(&mut self) {
        for strobe in self.strobes.drain(..) {
            strobe.abort();
        }
        if let Some(net) = self.net.as_mut() {
            let _ = net.teardown();
        }
    }
}

impl Client for NemesisClient {
    fn invoke<'a>(&'a mut self, op: &'a Invocation) -> BoxFuture<'a, Completion> {
        Box::pin(async move {
            match self.apply(op).await {
                Ok(applied) => Completion {
                    error: None,
                    ..Completion::info(applied, Value::Null)
                },
                Err(reason) => {
                    tracing::warn!("nemesis {} failed: {reason}", op.f);
                    Completion::info(op.value.clone(), reason)
                }
            }
        })
    }
}

impl Drop for NemesisClient {
    fn drop(&mut self) {
        self.teardown();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(ms: u64) -> Context {
        Context {
            time: Duration::from_millis(ms),
            worker: 0,
            workers: 1,
        }
    }

    #[test]
    fn the_schedule_alternates_a_fault_and_its_undo_every_interval() {
        let faults = vec!["partition".to_string(), "kill".to_string()];
        let mut g = Schedule::new(&faults, Duration::from_secs(1));
        let mut rng = StdRng::seed_from_u64(4);
        assert_eq!(
            g.next(&ctx(0), &mut rng),
            Next::Pending(Some(Duration::from_secs(1)))
        );
        let Next::Op(start) = g.next(&ctx(1000), &mut rng) else {
            panic!()
        };
        assert!(["partition", "kill"].contains(&start.f.as_str()));
        assert_eq!(
            g.next(&ctx(1500), &mut rng),
            Next::Pending(Some(Duration::from_secs(2)))
        );
        let Next::Op(undo) = g.next(&ctx(2000), &mut rng) else {
            panic!()
        };
        assert_eq!(
            undo.f,
            if start.f == "partition" {
                "heal"
            } else {
                "start"
            }
        );
    }

    #[test]
    fn the_same_seed_gives_the_same_fault_schedule() {
        let faults: Vec<String> = ["partition", "kill", "pause", "clock"]
            .map(String::from)
            .to_vec();
        let draw = |seed| {
            let mut g = Schedule::new(&faults, Duration::from_millis(10));
            let mut rng = StdRng::seed_from_u64(seed);
            (0..40)
                .filter_map(|i| match g.next(&ctx(i * 10), &mut rng) {
                    Next::Op(op) => Some(op.f),
                    _ => None,
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(draw(1), draw(1));
        assert_ne!(draw(1), draw(2));
    }

    #[test]
    fn the_final_generator_undoes_every_kind_of_fault_once_healing_first() {
        let faults: Vec<String> = ["kill", "partition-ring", "pause", "crash", "clock"]
            .map(String::from)
            .to_vec();
        let fs: Vec<String> = final_generator(&faults)
            .0
            .into_iter()
            .map(|op| op.f)
            .collect();
        assert_eq!(fs, ["heal", "resume", "start", "reset"]);
        assert!(Schedule::new(&["none".to_string()], Duration::from_secs(1))
            .faults
            .is_empty());
    }

    #[test]
    fn network_faults_need_a_backend_and_process_faults_do_not() {
        assert!(needs_net(&["partition-one".into()]));
        assert!(needs_net(&["slow".into()]));
        assert!(!needs_net(&["kill".into(), "clock".into()]));
    }
}
