//! [`RedisDb`]: a primary, its replicas and the Sentinels watching them, as
//! child processes.
//!
//! Node `nI` runs `redis-server RUN/nodes/nI/redis.conf` (written at setup:
//! its address, `dir RUN/nodes/nI/data`, an append-only file synced every
//! second, `min-replicas-to-write`, and for every node but `n1`
//! `replicaof` n1), its log `RUN/nodes/nI.log`. The first
//! `--redis-sentinels` nodes each have a Sentinel beside them:
//! `redis-sentinel RUN/nodes/nI/sentinel.conf` (monitoring n1 as
//! [`MASTER_NAME`] with a quorum of a majority of the Sentinels, the test's
//! down-after and failover timeouts), its log `RUN/nodes/nI-sentinel.log`,
//! in the node's network namespace when placed in one, so a partition cuts
//! the node and its Sentinel together. Both rewrite their config files
//! (Sentinel records what it learnt; a failover rewrites the nodes'
//! `replicaof`), so a killed node restarts with the role it last had.
//!
//! On loopback every node and Sentinel gets a port picked free (Redis
//! cannot inherit a held socket, so a port taken meanwhile means one more
//! try on fresh ports); in per-node namespaces ([`RedisDb::in_namespaces`])
//! each uses its own address and Redis's usual ports 6379 and 26379 — inside
//! namespaces of the run's own, never the machine's.
//!
//! A node's URL (`NodeInfo::url`) is `redis://ADDR` and, for a node with a
//! Sentinel beside it, `redis://ADDR/?sentinel=ADDR`: the clients find every
//! Sentinel there ([`node_addr`], [`sentinel_addr`]).

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use super::status::{self, MASTER_NAME};
use crate::client::BoxFuture;
use crate::placement::Placement;
use crate::system::db::{node_ids, Db, DbError, Kill, LogFiles, NodeInfo, Pause, Primary, Settled};
use crate::system::process::{free_ports, io_error, log_path, signal_node, Processes};

/// Debian's `redis-server`.
pub const REDIS_SERVER_BIN: &str = "/usr/bin/redis-server";
/// Debian's `redis-sentinel`.
pub const REDIS_SENTINEL_BIN: &str = "/usr/bin/redis-sentinel";
/// Redis's port, on a node's own address.
const NODE_PORT: u16 = 6379;
/// Sentinel's port, on its node's own address.
const SENTINEL_PORT: u16 = 26379;
/// Redis renames its processes; keeping the config file's path (in the
/// run dir) in the name lets `faultline cleanup` and the tests find them.
const PROC_TITLE: &str =
    "proc-title-template \"{title} {listen-addr} {server-mode} {config-file}\"";
/// How long one readiness probe waits for an answer.
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);
/// Pause between readiness probes.
const PROBE_INTERVAL: Duration = Duration::from_millis(100);

/// How to run a Redis cluster with Sentinel.
#[derive(Clone, Debug)]
pub struct RedisConfig {
    /// Number of nodes (`n1`..`nN`); `n1` starts as the primary.
    pub nodes: usize,
    /// Number of Sentinels, beside `n1`, `n2`, ...
    pub sentinels: usize,
    /// The primaries' `min-replicas-to-write`.
    pub min_replicas: usize,
    /// Sentinel's `down-after-milliseconds`.
    pub down_after: Duration,
    /// Sentinel's `failover-timeout`.
    pub failover_timeout: Duration,
    /// `redis-server`.
    pub server: PathBuf,
    /// `redis-sentinel`.
    pub sentinel: PathBuf,
    /// The run directory: files under `RUN/nodes/`.
    pub run_dir: PathBuf,
    /// How long [`Db::setup`] and [`Kill::start`] wait.
    pub ready_timeout: Duration,
    /// How long a stop waits after SIGTERM before SIGKILL.
    pub stop_grace: Duration,
}

impl RedisConfig {
    /// `nodes` nodes and `sentinels` Sentinels of Debian's binaries, with
    /// the default options, ready within 30 s, stopped with a 5 s grace.
    pub fn new(nodes: usize, sentinels: usize, run_dir: impl Into<PathBuf>) -> RedisConfig {
        let defaults = super::RedisOptions::default();
        RedisConfig {
            nodes,
            sentinels,
            min_replicas: defaults.redis_min_replicas,
            down_after: defaults.redis_down_after,
            failover_timeout: defaults.redis_failover_timeout,
            server: PathBuf::from(REDIS_SERVER_BIN),
            sentinel: PathBuf::from(REDIS_SENTINEL_BIN),
            run_dir: run_dir.into(),
            ready_timeout: Duration::from_secs(30),
            stop_grace: Duration::from_secs(5),
        }
    }
}

/// A node's Redis address, from its URL.
pub fn node_addr(node: &NodeInfo) -> Option<SocketAddr> {
    let rest = node.url.strip_prefix("redis://")?;
    rest.split('/').next()?.parse().ok()
}

/// The address of the Sentinel beside `node`, if it has one.
pub fn sentinel_addr(node: &NodeInfo) -> Option<SocketAddr> {
    node.url.split_once("?sentinel=")?.1.parse().ok()
}

/// Nodes on the given addresses, the first `sentinels` with a Sentinel on
/// the matching address.
fn nodes_at(addrs: &[SocketAddr], sentinels: &[SocketAddr]) -> Vec<NodeInfo> {
    node_ids(addrs.len())
        .into_iter()
        .zip(addrs)
        .enumerate()
        .map(|(i, (id, addr))| {
            let url = match sentinels.get(i) {
                Some(s) => format!("redis://{addr}/?sentinel={s}"),
                None => format!("redis://{addr}"),
            };
            NodeInfo {
                id,
                url,
                port: addr.port(),
            }
        })
        .collect()
}

/// A primary, replicas and Sentinels. Stops them all when dropped.
pub struct RedisDb {
    config: RedisConfig,
    nodes: Vec<NodeInfo>,
    processes: Processes,
    /// Where the nodes run, when not on loopback.
    placement: Option<Box<dyn Placement>>,
    /// Nodes paused and not resumed since.
    paused: BTreeSet<String>,
}

impl RedisDb {
    /// Checks the binaries and the counts and picks loopback ports; starts
    /// nothing.
    pub fn new(config: RedisConfig) -> Result<RedisDb, DbError> {
        for binary in [&config.server, &config.sentinel] {
            if !binary.is_file() {
                return Err(DbError::Config(format!(
                    "{} not found: install Redis (apt-get install redis-server redis-sentinel)",
                    binary.display()
                )));
            }
        }
        if config.nodes == 0 || config.sentinels == 0 || config.sentinels > config.nodes {
            return Err(DbError::Config(format!(
                "{} Sentinels for {} nodes: each Sentinel sits beside one node, and there must be one at least",
                config.sentinels, config.nodes
            )));
        }
        let nodes = loopback_placement(config.nodes, config.sentinels)?;
        Ok(RedisDb {
            processes: Processes::new(config.stop_grace)?,
            config,
            nodes,
            placement: None,
            paused: BTreeSet::new(),
        })
    }

    /// The nodes and Sentinels placed by `placement` (per-node network
    /// namespaces), each on its node's own address, ports 6379 and 26379.
    pub fn in_namespaces(
        config: RedisConfig,
        placement: Box<dyn Placement>,
    ) -> Result<RedisDb, DbError> {
        let mut db = RedisDb::new(config)?;
        let mut addrs = Vec::new();
        for id in node_ids(db.config.nodes) {
            let ip = placement
                .address(&id)
                .map_err(|e| DbError::Config(e.to_string()))?;
            addrs.push(ip);
        }
        let nodes: Vec<SocketAddr> = addrs.iter().map(|ip| (*ip, NODE_PORT).into()).collect();
        let sentinels: Vec<SocketAddr> = addrs[..db.config.sentinels]
            .iter()
            .map(|ip| (*ip, SENTINEL_PORT).into())
            .collect();
        db.nodes = nodes_at(&nodes, &sentinels);
        db.placement = Some(placement);
        Ok(db)
    }

    /// The directory of `node`'s files.
    fn node_dir(&self, node: &str) -> PathBuf {
        self.config.run_dir.join("nodes").join(node)
    }

    /// `node`'s Redis log file.
    pub fn log_file(&self, node: &str) -> PathBuf {
        log_path(&self.config.run_dir.join("nodes"), node)
    }

    /// The log file of the Sentinel beside `node`.
    pub fn sentinel_log_file(&self, node: &str) -> PathBuf {
        log_path(&self.config.run_dir.join("nodes"), &sentinel_key(node))
    }

    fn index(&self, node: &str) -> Result<usize, DbError> {
        self.nodes
            .iter()
            .position(|n| n.id == node)
            .ok_or_else(|| DbError::UnknownNode(node.to_string()))
    }

    fn addr(&self, index: usize) -> SocketAddr {
        node_addr(&self.nodes[index]).expect("a node's URL holds its address")
    }

    /// The text of `node`'s `redis.conf`.
    pub fn server_config(&self, node: &str) -> Result<String, DbError> {
        let index = self.index(node)?;
        let addr = self.addr(index);
        let data = self.node_dir(node).join("data");
        let mut lines = vec![
            format!("bind {}", addr.ip()),
            format!("port {}", addr.port()),
            format!("dir {}", data.display()),
            "daemonize no".into(),
            "protected-mode no".into(),
            "logfile \"\"".into(),
            PROC_TITLE.into(),
            "save \"\"".into(),
            "appendonly yes".into(),
            "appendfsync everysec".into(),
            // Replicas sync at once rather than after Redis's 5 s default.
            "repl-diskless-sync-delay 0".into(),
            format!("min-replicas-to-write {}", self.config.min_replicas),
        ];
        if index > 0 {
            let primary = self.addr(0);
            lines.push(format!("replicaof {} {}", primary.ip(), primary.port()));
        }
        Ok(lines.join("\n") + "\n")
    }

    /// The text of the `sentinel.conf` of the Sentinel beside `node`.
    pub fn sentinel_config(&self, node: &str) -> Result<String, DbError> {
        let index = self.index(node)?;
        let addr = sentinel_addr(&self.nodes[index])
            .ok_or_else(|| DbError::Config(format!("{node} has no Sentinel beside it")))?;
        let primary = self.addr(0);
        let quorum = self.config.sentinels / 2 + 1;
        let lines = [
            format!("bind {}", addr.ip()),
            format!("port {}", addr.port()),
            format!("dir {}", self.node_dir(node).display()),
            "daemonize no".into(),
            "protected-mode no".into(),
            "logfile \"\"".into(),
            PROC_TITLE.into(),
            format!(
                "sentinel monitor {MASTER_NAME} {} {} {quorum}",
                primary.ip(),
                primary.port()
            ),
            format!(
                "sentinel down-after-milliseconds {MASTER_NAME} {}",
                self.config.down_after.as_millis()
            ),
            format!(
                "sentinel failover-timeout {MASTER_NAME} {}",
                self.config.failover_timeout.as_millis()
            ),
            format!("sentinel parallel-syncs {MASTER_NAME} 1"),
        ];
        Ok(lines.join("\n") + "\n")
    }

    /// Writes every node's and Sentinel's config file afresh.
    fn write_configs(&self) -> Result<(), DbError> {
        for (i, node) in self.nodes.iter().enumerate() {
            let dir = self.node_dir(&node.id);
            let data = dir.join("data");
            std::fs::create_dir_all(&data).map_err(|e| io_error(&data, e))?;
            write(&dir.join("redis.conf"), &self.server_config(&node.id)?)?;
            if i < self.config.sentinels {
                write(&dir.join("sentinel.conf"), &self.sentinel_config(&node.id)?)?;
            }
        }
        Ok(())
    }

    fn spawn(&mut self, key: &str, node: &str, program: &Path, conf: &str) -> Result<(), DbError> {
        let mut command = Command::new(program);
        command.arg(self.node_dir(node).join(conf));
        if let Some(placement) = &self.placement {
            command = placement
                .command(node, command)
                .map_err(|e| DbError::Config(e.to_string()))?;
        }
        let log = log_path(&self.config.run_dir.join("nodes"), key);
        self.processes.start(key, command, &log)?;
        Ok(())
    }

    fn spawn_node(&mut self, node: &str) -> Result<(), DbError> {
        let server = self.config.server.clone();
        self.spawn(node, node, &server, "redis.conf")
    }

    fn spawn_sentinel(&mut self, node: &str) -> Result<(), DbError> {
        let sentinel = self.config.sentinel.clone();
        self.spawn(&sentinel_key(node), node, &sentinel, "sentinel.conf")
    }

    fn start_all_and_wait(&mut self) -> Result<(), DbError> {
        self.write_configs()?;
        let ids: Vec<String> = self.nodes.iter().map(|n| n.id.clone()).collect();
        for id in &ids {
            self.spawn_node(id)?;
        }
        for id in &ids[..self.config.sentinels] {
            self.spawn_sentinel(id)?;
        }
        let everything: Vec<String> = self.processes.pids().into_iter().map(|p| p.0).collect();
        self.wait_until(
            &everything,
            "the Sentinels to know every replica and each other",
            |db| db.fully_known(),
        )
    }

    /// Waits until `ready` holds, failing early when one of `keys` exits.
    fn wait_until(
        &mut self,
        keys: &[String],
        what: &str,
        ready: impl Fn(&RedisDb) -> BoxFuture<'static, Result<(), String>>,
    ) -> Result<(), DbError> {
        let started = Instant::now();
        let runtime = crate::system::db::probe_runtime()?;
        loop {
            self.fail_if_exited(keys)?;
            let last = runtime.block_on(ready(self));
            let Err(detail) = last else { return Ok(()) };
            if started.elapsed() >= self.config.ready_timeout {
                return Err(DbError::NotReady {
                    nodes: format!("{} (waiting for {what})", keys.join(", ")),
                    waited: started.elapsed(),
                    detail,
                    logs: keys
                        .iter()
                        .map(|k| log_path(&self.config.run_dir.join("nodes"), k))
                        .collect(),
                });
            }
            thread::sleep(PROBE_INTERVAL);
        }
    }

    fn fail_if_exited(&mut self, keys: &[String]) -> Result<(), DbError> {
        for key in keys {
            let exited = self.processes.get_mut(key).and_then(|p| p.exit_status());
            if let Some(status) = exited {
                return Err(DbError::Exited {
                    node: key.clone(),
                    status,
                    log: log_path(&self.config.run_dir.join("nodes"), key),
                });
            }
        }
        Ok(())
    }

    /// Settled, and every Sentinel knows every replica and every other
    /// Sentinel (before that, a fault could not start a failover).
    fn fully_known(&self) -> BoxFuture<'static, Result<(), String>> {
        let settled = self.settled_detail();
        let sentinels = self.sentinels();
        let (replicas, others) = (self.nodes.len() - 1, sentinels.len() - 1);
        Box::pin(async move {
            settled.await?;
            for sentinel in sentinels {
                let view = status::sentinel_view(sentinel, PROBE_TIMEOUT).await?;
                if view.replicas < replicas || view.other_sentinels < others {
                    return Err(format!(
                        "Sentinel {sentinel} knows {} of {replicas} replicas and {} of {others} other Sentinels",
                        view.replicas, view.other_sentinels
                    ));
                }
            }
            Ok(())
        })
    }

    fn sentinels(&self) -> Vec<SocketAddr> {
        self.nodes.iter().filter_map(sentinel_addr).collect()
    }

    /// Every Sentinel names one primary, which says it is one, and every
    /// other node replicates from it with its link up; `Err` says what is
    /// not so yet.
    fn settled_detail(&self) -> BoxFuture<'static, Result<(), String>> {
        let sentinels = self.sentinels();
        let nodes: Vec<SocketAddr> = self.nodes.iter().filter_map(node_addr).collect();
        Box::pin(async move {
            let mut named = Vec::new();
            for sentinel in &sentinels {
                named.push(status::named_primary(*sentinel, PROBE_TIMEOUT).await);
            }
            let primary = status::agreed(&named)
                .ok_or_else(|| format!("the Sentinels do not agree on a primary: {named:?}"))?;
            let mut roles = Vec::new();
            for node in nodes {
                roles.push((node, status::role(node, PROBE_TIMEOUT).await));
            }
            match status::replicas_follow(primary, &roles) {
                true => Ok(()),
                false => Err(format!("primary {primary}; nodes: {roles:?}")),
            }
        })
    }

    /// The node at `addr`.
    fn node_at(nodes: &[NodeInfo], addr: SocketAddr) -> Option<String> {
        nodes
            .iter()
            .find(|n| node_addr(n) == Some(addr))
            .map(|n| n.id.clone())
    }
}

/// The process key (and log name) of the Sentinel beside `node`.
fn sentinel_key(node: &str) -> String {
    format!("{node}-sentinel")
}

/// Nodes on loopback ports picked now, a Sentinel port each for the first
/// `sentinels`.
fn loopback_placement(nodes: usize, sentinels: usize) -> Result<Vec<NodeInfo>, DbError> {
    let ports = free_ports(nodes + sentinels)?;
    let at = |p: &u16| SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), *p);
    let addrs: Vec<SocketAddr> = ports[..nodes].iter().map(at).collect();
    let sentinel_addrs: Vec<SocketAddr> = ports[nodes..].iter().map(at).collect();
    Ok(nodes_at(&addrs, &sentinel_addrs))
}

fn write(path: &Path, text: &str) -> Result<(), DbError> {
    std::fs::write(path, text).map_err(|e| io_error(path, e))
}

impl Db for RedisDb {
    fn nodes(&self) -> &[NodeInfo] {
        &self.nodes
    }

    /// Starts every node and Sentinel and waits until the Sentinels agree
    /// on `n1`, know every replica and each other, and every replica's
    /// link is up. On loopback, on one exiting while starting (a port taken
    /// since it was picked), tries once more on fresh ports and files.
    fn setup(&mut self) -> Result<(), DbError> {
        let first = self.start_all_and_wait();
        let Err(error) = first else { return Ok(()) };
        self.processes.stop_all();
        if !matches!(error, DbError::Exited { .. }) || self.placement.is_some() {
            return Err(error);
        }
        for node in &self.nodes {
            let _ = std::fs::remove_dir_all(self.node_dir(&node.id));
        }
        self.nodes = loopback_placement(self.config.nodes, self.config.sentinels)?;
        let second = self.start_all_and_wait();
        if second.is_err() {
            self.processes.stop_all();
        }
        second
    }

    fn teardown(&mut self) -> Result<(), DbError> {
        self.processes.stop_all();
        Ok(())
    }

    fn as_kill(&mut self) -> Option<&mut dyn Kill> {
        Some(self)
    }

    fn as_pause(&mut self) -> Option<&mut dyn Pause> {
        Some(self)
    }

    fn as_primary(&self) -> Option<&dyn Primary> {
        Some(self)
    }

    fn as_settled(&self) -> Option<&dyn Settled> {
        Some(self)
    }

    fn as_log_files(&self) -> Option<&dyn LogFiles> {
        Some(self)
    }

    fn pids(&self) -> Vec<(String, u32)> {
        self.processes.pids()
    }
}

impl Kill for RedisDb {
    /// SIGKILLs `node`'s Redis; the Sentinel beside it keeps running.
    fn kill(&mut self, node: &str) -> Result<(), DbError> {
        self.index(node)?;
        self.processes.kill(node);
        self.paused.remove(node);
        Ok(())
    }

    /// Starts `node`'s Redis on its config file (as last rewritten) and
    /// waits until it answers.
    fn start(&mut self, node: &str) -> Result<(), DbError> {
        let index = self.index(node)?;
        if self.processes.is_alive(node) {
            return Ok(());
        }
        self.processes.kill(node);
        self.spawn_node(node)?;
        let addr = self.addr(index);
        self.wait_until(&[node.to_string()], "it to answer", move |_| {
            Box::pin(async move { status::role(addr, PROBE_TIMEOUT).await.map(|_| ()) })
        })
    }
}

impl Pause for RedisDb {
    /// SIGSTOPs `node`'s Redis; the Sentinel beside it keeps running.
    fn pause(&mut self, node: &str) -> Result<(), DbError> {
        self.index(node)?;
        signal_node(&mut self.processes, node, Signal::SIGSTOP, true)?;
        self.paused.insert(node.to_string());
        Ok(())
    }

    fn resume(&mut self, node: &str) -> Result<(), DbError> {
        self.index(node)?;
        self.paused.remove(node);
        signal_node(&mut self.processes, node, Signal::SIGCONT, false)
    }
}

impl Primary for RedisDb {
    /// The node most answering Sentinels name
    /// (`SENTINEL get-master-addr-by-name`).
    fn primary(&self) -> BoxFuture<'static, Option<String>> {
        let sentinels = self.sentinels();
        let nodes = self.nodes.clone();
        Box::pin(async move {
            let mut named = Vec::new();
            for sentinel in sentinels {
                named.push(status::named_primary(sentinel, PROBE_TIMEOUT).await);
            }
            RedisDb::node_at(&nodes, status::most_named(&named)?)
        })
    }
}

impl Settled for RedisDb {
    /// Every Sentinel names the same primary, it says it is the primary,
    /// and every other node replicates from it with
    /// `master_link_status:up`.
    fn settled(&self) -> BoxFuture<'static, bool> {
        let detail = self.settled_detail();
        Box::pin(async move { detail.await.is_ok() })
    }
}

impl LogFiles for RedisDb {
    /// Each node's Redis log, then each Sentinel's.
    fn log_files(&self) -> Vec<(String, PathBuf)> {
        let nodes = self
            .nodes
            .iter()
            .map(|n| (n.id.clone(), self.log_file(&n.id)));
        let sentinels = self.nodes[..self.config.sentinels]
            .iter()
            .map(|n| (sentinel_key(&n.id), self.sentinel_log_file(&n.id)));
        nodes.chain(sentinels).collect()
    }
}

impl Drop for RedisDb {
    fn drop(&mut self) {
        self.processes.stop_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db(nodes: usize, sentinels: usize) -> Result<RedisDb, DbError> {
        let mut config = RedisConfig::new(nodes, sentinels, "/tmp/run");
        config.server = PathBuf::from("/bin/true");
        config.sentinel = PathBuf::from("/bin/true");
        RedisDb::new(config)
    }

    #[test]
    fn replicas_follow_n1_and_sentinels_monitor_it_with_a_majority_quorum() {
        let db = db(5, 3).unwrap();
        let primary = node_addr(&db.nodes()[0]).unwrap();
        assert!(!db.server_config("n1").unwrap().contains("replicaof"));
        let replica = db.server_config("n3").unwrap();
        let follow = format!("replicaof {} {}", primary.ip(), primary.port());
        assert!(replica.contains(&follow), "{replica}");
        assert!(replica.contains("dir /tmp/run/nodes/n3/data"), "{replica}");
        let sentinel = db.sentinel_config("n2").unwrap();
        let monitor = format!("monitor faultline {} {} 2", primary.ip(), primary.port());
        assert!(sentinel.contains(&monitor), "{sentinel}");
        assert!(
            sentinel.contains("down-after-milliseconds faultline 2000"),
            "{sentinel}"
        );
        assert!(db.sentinel_config("n4").is_err(), "n4 has no Sentinel");
        let with: Vec<bool> = db
            .nodes()
            .iter()
            .map(|n| sentinel_addr(n).is_some())
            .collect();
        assert_eq!(with, [true, true, true, false, false]);
    }

    #[test]
    fn more_sentinels_than_nodes_or_none_is_a_configuration_error() {
        assert!(db(3, 4).is_err());
        assert!(db(3, 0).is_err());
        let mut config = RedisConfig::new(3, 3, "/tmp/run");
        config.server = PathBuf::from("/no/such/redis-server");
        let err = RedisDb::new(config).err().unwrap().to_string();
        assert!(
            err.contains("apt-get install redis-server redis-sentinel"),
            "{err}"
        );
    }
}
