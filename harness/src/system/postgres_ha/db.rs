//! [`PatroniDb`]: an etcd member and a Patroni (with the PostgreSQL it
//! forks) on every node, each node in a network namespace of its own.
//!
//! # Files
//! - `RUN/dcs/`: the etcd cluster Patroni keeps its state in (one member
//!   per node, in the node's namespace: [`crate::system::etcd::EtcdDb`]),
//!   its members' data dirs and logs `RUN/dcs/nodes/nI.log`;
//! - `RUN/nodes/nI/` (owned by the server's user, mode 0700):
//!   `patroni.yml` ([`super::patroni`]), the data dir `data/` (made by
//!   Patroni: `initdb` on the node that wins the bootstrap race, which
//!   faultline makes `n1` by starting it first, `pg_basebackup` from the
//!   leader on the others), the unix socket, `pgpass`;
//! - `RUN/nodes/nI.log`: Patroni's log and its PostgreSQL's output.
//!
//! # Containment
//! Patroni runs wrapped as [`crate::system::postgres::launch`] says (as
//! the server's user, its own IPC and mount namespaces) inside the node's
//! PID namespace, whose init it is; every PostgreSQL process it forks
//! (postmaster, backends, `pg_basebackup`, `pg_rewind`) is in that
//! namespace too, and dies with it: when the node is killed, when Patroni
//! exits, when the harness dies.
//!
//! # Faults
//! A kill SIGKILLs the node's Patroni and its PostgreSQL (the etcd member
//! beside them keeps running); a start runs Patroni again on the same data
//! dir, which starts PostgreSQL as a standby of whoever leads now
//! (rewinding it first if it diverged). A pause stops both. Partitions are
//! the network backend's, between node addresses: they cut replication,
//! Patroni's REST traffic and etcd's peer traffic alike.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use super::patroni::{self, PatroniConfig, Timing, PG_PORT, REST_PORT};
use crate::client::BoxFuture;
use crate::placement::Placement;
use crate::system::db::{node_ids, Db, DbError, Kill, LogFiles, NodeInfo, Pause, Primary, Settled};
use crate::system::etcd::{EtcdConfig, EtcdDb};
use crate::system::postgres::client;
use crate::system::postgres::launch::{self, Proc, ServerUser};
use crate::system::postgres::options::PgDcs;
use crate::system::process::{io_error, log_path, signal_node, Processes};

/// Debian's `patroni`.
pub const PATRONI_BIN: &str = "/usr/bin/patroni";
/// How long one probe of a Patroni or a server may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);
/// Pause between readiness probes.
const PROBE_INTERVAL: Duration = Duration::from_millis(250);
/// The longest unix socket path (`sun_path` holds 108 bytes with its NUL).
const MAX_SOCKET_PATH: usize = 107;

/// How to run the cluster.
#[derive(Clone, Debug)]
pub struct PatroniDbConfig {
    /// Number of nodes.
    pub nodes: usize,
    /// The run directory (absolute).
    pub run_dir: PathBuf,
    /// `patroni`.
    pub patroni: PathBuf,
    /// PostgreSQL's programs.
    pub bin_dir: PathBuf,
    /// Strict synchronous mode.
    pub synchronous: bool,
    /// The etcd API Patroni uses.
    pub dcs: PgDcs,
    /// Patroni's timing.
    pub timing: Timing,
    /// The etcd cluster's `--initial-cluster-token`.
    pub etcd_token: String,
    /// How long setup and a restart wait.
    pub ready_timeout: Duration,
    /// How long a stop waits after SIGTERM before SIGKILL.
    pub stop_grace: Duration,
}

impl PatroniDbConfig {
    /// `nodes` nodes of Debian's Patroni and PostgreSQL 15, ready within
    /// 120 s, stopped with a 10 s grace.
    pub fn new(nodes: usize, run_dir: &Path, etcd_token: String) -> Result<Self, DbError> {
        let run_dir = std::path::absolute(run_dir).map_err(|e| io_error(run_dir, e))?;
        Ok(PatroniDbConfig {
            nodes,
            run_dir,
            patroni: PathBuf::from(PATRONI_BIN),
            bin_dir: PathBuf::from(launch::BIN_DIR),
            synchronous: false,
            dcs: PgDcs::default(),
            timing: Timing::default(),
            etcd_token,
            ready_timeout: Duration::from_secs(120),
            stop_grace: Duration::from_secs(10),
        })
    }
}

/// The PostgreSQL address in a node's URL
/// (`postgresql://postgres@ADDR/postgres`).
pub fn pg_addr(node: &NodeInfo) -> Option<SocketAddr> {
    let rest = node.url.strip_prefix("postgresql://postgres@")?;
    rest.split('/').next()?.parse().ok()
}

/// The address of the Patroni REST API beside a node's PostgreSQL.
pub fn rest_addr(node: &NodeInfo) -> Option<SocketAddr> {
    pg_addr(node).map(|a| SocketAddr::new(a.ip(), REST_PORT))
}

/// Patroni, PostgreSQL and etcd on every node. Stops them all when dropped.
pub struct PatroniDb {
    config: PatroniDbConfig,
    nodes: Vec<NodeInfo>,
    addresses: Vec<IpAddr>,
    placement: Arc<dyn Placement>,
    etcd: EtcdDb,
    user: Option<ServerUser>,
    processes: Processes,
}

impl PatroniDb {
    /// Checks the programs, picks the server's user and places every node
    /// by `placement` (per-node namespaces); starts nothing.
    pub fn new(config: PatroniDbConfig, placement: Box<dyn Placement>) -> Result<Self, DbError> {
        let postgres = config.bin_dir.join("postgres");
        for (program, package) in [(&config.patroni, "patroni"), (&postgres, "postgresql")] {
            if !program.is_file() {
                return Err(DbError::Config(format!(
                    "{} not found: install it (apt-get install {package} etcd-server)",
                    program.display()
                )));
            }
        }
        let placement: Arc<dyn Placement> = Arc::from(placement);
        let mut addresses = Vec::new();
        for id in node_ids(config.nodes) {
            let address = placement.address(&id);
            addresses.push(address.map_err(|e| DbError::Config(e.to_string()))?);
        }
        let nodes = node_ids(config.nodes)
            .into_iter()
            .zip(&addresses)
            .map(|(id, ip)| NodeInfo {
                id,
                url: format!(
                    "postgresql://postgres@{}/postgres",
                    SocketAddr::new(*ip, PG_PORT)
                ),
                port: PG_PORT,
            })
            .collect();
        let mut dcs = EtcdConfig::new(
            config.nodes,
            config.run_dir.join("dcs"),
            config.etcd_token.clone(),
        );
        dcs.enable_v2 = config.dcs == PgDcs::Etcd2;
        let etcd = EtcdDb::in_namespaces(dcs, Box::new(placement.clone()))?;
        let db = PatroniDb {
            user: ServerUser::pick()?,
            processes: Processes::new(config.stop_grace)?,
            config,
            nodes,
            addresses,
            placement,
            etcd,
        };
        db.check_socket_paths()?;
        Ok(db)
    }

    fn node_dir(&self, node: &str) -> PathBuf {
        self.config.run_dir.join("nodes").join(node)
    }

    /// `node`'s log: Patroni's and its PostgreSQL's output.
    pub fn log_file(&self, node: &str) -> PathBuf {
        log_path(&self.config.run_dir.join("nodes"), node)
    }

    fn check_socket_paths(&self) -> Result<(), DbError> {
        for node in &self.nodes {
            let socket = self.node_dir(&node.id).join(format!(".s.PGSQL.{PG_PORT}"));
            let length = socket.as_os_str().len();
            if length > MAX_SOCKET_PATH {
                return Err(DbError::Config(format!(
                    "the unix socket path {} is {length} bytes, longer than the \
                     {MAX_SOCKET_PATH} a socket address holds: give the test a shorter name \
                     (--name) or the store a shorter path",
                    socket.display()
                )));
            }
        }
        Ok(())
    }

    fn index(&self, node: &str) -> Result<usize, DbError> {
        self.nodes
            .iter()
            .position(|n| n.id == node)
            .ok_or_else(|| DbError::UnknownNode(node.to_string()))
    }

    fn patroni_config(&self) -> PatroniConfig {
        PatroniConfig {
            bin_dir: self.config.bin_dir.clone(),
            addresses: self.addresses.clone(),
            synchronous: self.config.synchronous,
            dcs: self.config.dcs,
            timing: self.config.timing,
        }
    }

    /// Makes every node's directory (the server's user's) and writes its
    /// `patroni.yml`.
    fn write_configs(&self) -> Result<(), DbError> {
        let shared = self.patroni_config();
        for (node, address) in self.nodes.iter().zip(&self.addresses) {
            let dir = self.node_dir(&node.id);
            launch::own_dir(&dir, self.user.as_ref())?;
            launch::check_reachable(&dir, self.user.as_ref())?;
            let file = dir.join("patroni.yml");
            let text = shared.file(&node.id, *address, &dir).to_string();
            std::fs::write(&file, text).map_err(|e| io_error(&file, e))?;
        }
        Ok(())
    }

    fn spawn(&mut self, node: &str) -> Result<(), DbError> {
        let file = self.node_dir(node).join("patroni.yml");
        let args = [file.display().to_string()];
        let user = self.user.as_ref();
        let command = launch::wrapped(&self.config.patroni, &args, user, None, Proc::Own);
        let command: Command = self
            .placement
            .command(node, command)
            .map_err(|e| DbError::Config(e.to_string()))?;
        let log = self.log_file(node);
        self.processes.start(node, command, &log)?;
        Ok(())
    }

    /// Waits until `ready` holds, failing early when one of `keys` exits.
    fn wait_until(
        &mut self,
        keys: &[String],
        what: &str,
        ready: impl Fn(&PatroniDb) -> BoxFuture<'static, Result<(), String>>,
    ) -> Result<(), DbError> {
        let started = Instant::now();
        let runtime = crate::system::db::probe_runtime()?;
        loop {
            for key in keys {
                let exited = self.processes.get_mut(key).and_then(|p| p.exit_status());
                if let Some(status) = exited {
                    let log = self.log_file(key);
                    return Err(DbError::Exited {
                        node: key.clone(),
                        status,
                        log,
                    });
                }
            }
            let Err(detail) = runtime.block_on(ready(self)) else {
                return Ok(());
            };
            if started.elapsed() >= self.config.ready_timeout {
                return Err(DbError::NotReady {
                    nodes: format!("{} (waiting for {what})", keys.join(", ")),
                    waited: started.elapsed(),
                    detail,
                    logs: keys.iter().map(|k| self.log_file(k)).collect(),
                });
            }
            std::thread::sleep(PROBE_INTERVAL);
        }
    }

    /// `n1` leads a running primary; `Err` says what is not so yet.
    fn first_primary(&self) -> BoxFuture<'static, Result<(), String>> {
        let first = self.nodes[0].clone();
        Box::pin(async move {
            let rest = rest_addr(&first).ok_or("n1 has no address")?;
            match patroni::is_primary(rest, PROBE_TIMEOUT).await? {
                true => Ok(()),
                false => Err("n1 is not the running primary yet".into()),
            }
        })
    }

    /// The cluster is healthy and the tables are made on its leader (only
    /// then: in strict synchronous mode a primary without a standby takes
    /// no commit); each try bounded.
    fn healthy_with_tables(&self) -> BoxFuture<'static, Result<(), String>> {
        let healthy = self.healthy();
        let first = pg_addr(&self.nodes[0]);
        Box::pin(async move {
            healthy.await?;
            let pg = first.ok_or("n1 has no address")?;
            let limit = PROBE_TIMEOUT * 5;
            let create = tokio::time::timeout(limit, client::create_tables_at(pg, limit));
            create
                .await
                .map_err(|_| format!("creating the tables took over {limit:?}"))?
        })
    }

    /// Every node's Patroni shows the same healthy cluster
    /// ([`patroni::ClusterView::healthy`]); `Err` says what is not so.
    fn healthy(&self) -> BoxFuture<'static, Result<(), String>> {
        let rests: Vec<SocketAddr> = self.nodes.iter().filter_map(rest_addr).collect();
        let synchronous = self.config.synchronous;
        Box::pin(async move {
            let mut leaders = Vec::new();
            for rest in &rests {
                let view = patroni::cluster(*rest, PROBE_TIMEOUT).await?;
                view.healthy(rests.len(), synchronous)
                    .map_err(|e| format!("Patroni {rest}: {e}"))?;
                leaders.push(view.leader().map(String::from));
            }
            match leaders.windows(2).all(|w| w[0] == w[1]) {
                true => Ok(()),
                false => Err(format!("the Patronis name different leaders: {leaders:?}")),
            }
        })
    }

    fn start_all_and_wait(&mut self) -> Result<(), DbError> {
        self.etcd.setup()?;
        self.write_configs()?;
        let ids: Vec<String> = self.nodes.iter().map(|n| n.id.clone()).collect();
        self.spawn(&ids[0])?;
        self.wait_until(&ids[..1], "n1 to bootstrap the cluster", |db| {
            db.first_primary()
        })?;
        for id in &ids[1..] {
            self.spawn(id)?;
        }
        self.wait_until(&ids, "every standby to stream from n1", |db| {
            db.healthy_with_tables()
        })
    }

    fn stop_all(&mut self) {
        self.processes.stop_all();
        let _ = self.etcd.teardown();
    }
}

impl Db for PatroniDb {
    fn nodes(&self) -> &[NodeInfo] {
        &self.nodes
    }

    /// Starts the etcd cluster, then `n1`'s Patroni (which runs `initdb`),
    /// then the other Patronis (each cloning `n1` with `pg_basebackup`),
    /// waits until every standby has caught up, and makes the tables.
    fn setup(&mut self) -> Result<(), DbError> {
        let outcome = self.start_all_and_wait();
        if outcome.is_err() {
            self.stop_all();
        }
        outcome
    }

    fn teardown(&mut self) -> Result<(), DbError> {
        self.stop_all();
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

    /// Each node's Patroni, then each etcd member (`nI-etcd`).
    fn pids(&self) -> Vec<(String, u32)> {
        let etcd = self
            .etcd
            .pids()
            .into_iter()
            .map(|(n, p)| (format!("{n}-etcd"), p));
        self.processes.pids().into_iter().chain(etcd).collect()
    }
}

impl Kill for PatroniDb {
    /// SIGKILLs `node`'s Patroni and every PostgreSQL process it forked.
    fn kill(&mut self, node: &str) -> Result<(), DbError> {
        self.index(node)?;
        self.processes.kill(node);
        Ok(())
    }

    /// Starts `node`'s Patroni again and waits until its REST API answers.
    fn start(&mut self, node: &str) -> Result<(), DbError> {
        let index = self.index(node)?;
        if self.processes.is_alive(node) {
            return Ok(());
        }
        self.processes.kill(node);
        self.spawn(node)?;
        let rest = rest_addr(&self.nodes[index]).expect("a node's URL holds its address");
        self.wait_until(&[node.to_string()], "its Patroni to answer", move |_| {
            Box::pin(async move { patroni::cluster(rest, PROBE_TIMEOUT).await.map(|_| ()) })
        })
    }
}

impl Pause for PatroniDb {
    /// SIGSTOPs `node`'s Patroni and its PostgreSQL.
    fn pause(&mut self, node: &str) -> Result<(), DbError> {
        self.index(node)?;
        signal_node(&mut self.processes, node, Signal::SIGSTOP, true)
    }

    fn resume(&mut self, node: &str) -> Result<(), DbError> {
        self.index(node)?;
        signal_node(&mut self.processes, node, Signal::SIGCONT, false)
    }
}

impl Primary for PatroniDb {
    /// The leader most answering Patronis name (`GET /cluster`).
    fn primary(&self) -> BoxFuture<'static, Option<String>> {
        let rests: Vec<SocketAddr> = self.nodes.iter().filter_map(rest_addr).collect();
        Box::pin(async move {
            let mut named: Vec<String> = Vec::new();
            for rest in rests {
                if let Ok(view) = patroni::cluster(rest, PROBE_TIMEOUT).await {
                    named.extend(view.leader().map(String::from));
                }
            }
            most_named(&named)
        })
    }
}

/// The name that occurs most often (the first of those tied).
fn most_named(named: &[String]) -> Option<String> {
    let count = |name: &String| named.iter().filter(|n| *n == name).count();
    let mut best: Option<&String> = None;
    for name in named {
        if best.is_none_or(|b| count(name) > count(b)) {
            best = Some(name);
        }
    }
    best.cloned()
}

impl Settled for PatroniDb {
    /// Every Patroni names one leader, every member runs, every standby
    /// has caught up, and in synchronous mode one is the synchronous
    /// standby.
    fn settled(&self) -> BoxFuture<'static, bool> {
        let healthy = self.healthy();
        Box::pin(async move { healthy.await.is_ok() })
    }
}

impl LogFiles for PatroniDb {
    /// Each node's Patroni log, then each etcd member's.
    fn log_files(&self) -> Vec<(String, PathBuf)> {
        let nodes = self
            .nodes
            .iter()
            .map(|n| (n.id.clone(), self.log_file(&n.id)));
        let etcd = self.nodes.iter().map(|n| {
            let log = self.etcd.log_file(&n.id);
            (format!("{}-etcd", n.id), log)
        });
        nodes.chain(etcd).collect()
    }
}

impl Drop for PatroniDb {
    fn drop(&mut self) {
        self.stop_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_most_named_leader_wins_and_ties_go_to_the_first() {
        let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(most_named(&names(&["n2", "n1", "n1"])), Some("n1".into()));
        assert_eq!(most_named(&names(&["n2", "n1"])), Some("n2".into()));
        assert_eq!(most_named(&[]), None);
    }

    #[test]
    fn a_node_url_gives_its_server_and_its_patroni() {
        let node = NodeInfo {
            id: "n1".into(),
            url: "postgresql://postgres@198.18.0.11:5432/postgres".into(),
            port: PG_PORT,
        };
        assert_eq!(pg_addr(&node), Some(([198, 18, 0, 11], 5432).into()));
        assert_eq!(rest_addr(&node), Some(([198, 18, 0, 11], 8008).into()));
    }
}
