//! The database under test: node lifecycle and the optional abilities the
//! nemesis asks for, as in jepsen's `db.clj`.
//!
//! [`Db`] is the lifecycle every system has (nodes known before setup, set
//! up, tear down); what only some systems can do are separate small traits,
//! reached through `Db::as_*` (jepsen's `satisfies?`):
//!
//! - [`Kill`] (kill/start) and [`Pause`] (pause/resume): the node's process.
//! - [`Crash`]: the node exits at once by its own hand, losing unflushed
//!   writes.
//! - [`Clock`]: shift and reset a node's wall clock.
//! - [`Primary`]: which node is primary now.
//! - [`Settled`]: whether the cluster has settled after the faults healed.
//! - [`LogFiles`]: each node's log file.
//!
//! The lifecycle, [`Kill`] and [`Pause`] block (for up to a ready timeout,
//! 30 s by default); async callers run them with
//! `tokio::task::block_in_place` or `spawn_blocking`. That is safe: every
//! fork happens on the database's own spawner thread (the `process`
//! module). The other abilities are async and return futures that own what
//! they need, so a caller holding the database behind a lock lets go of it
//! before it waits.

use std::path::PathBuf;
use std::time::Duration;

use crate::client::BoxFuture;

use super::process;

/// One node of the cluster, as clients reach it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeInfo {
    /// Its id: `n1`, `n2`, ...
    pub id: String,
    /// Its base URL for clients, `http://127.0.0.1:PORT`.
    pub url: String,
    /// The port it listens on.
    pub port: u16,
}

/// A database under test: a cluster of nodes that can be set up and torn
/// down.
pub trait Db: Send {
    /// The nodes, in id order (`n1` first). Known before [`Db::setup`].
    fn nodes(&self) -> &[NodeInfo];

    /// Starts every node and waits, bounded in time, until the cluster
    /// answers (for nodes that speak target-node's API: until a primary is
    /// known). On error, whatever was started is stopped again.
    fn setup(&mut self) -> Result<(), DbError>;

    /// Stops every node: SIGTERM, then SIGKILL after a grace period.
    /// Idempotent; also done when the database is dropped.
    fn teardown(&mut self) -> Result<(), DbError>;

    /// This database's [`Kill`] ability, if it has one.
    fn as_kill(&mut self) -> Option<&mut dyn Kill> {
        None
    }

    /// This database's [`Pause`] ability, if it has one.
    fn as_pause(&mut self) -> Option<&mut dyn Pause> {
        None
    }

    /// This database's [`Crash`] ability, if it has one.
    fn as_crash(&self) -> Option<&dyn Crash> {
        None
    }

    /// This database's [`Clock`] ability, if it has one.
    fn as_clock(&self) -> Option<&dyn Clock> {
        None
    }

    /// This database's [`Primary`] ability, if it has one.
    fn as_primary(&self) -> Option<&dyn Primary> {
        None
    }

    /// This database's [`Settled`] ability, if it has one.
    fn as_settled(&self) -> Option<&dyn Settled> {
        None
    }

    /// This database's [`LogFiles`] ability, if it has one.
    fn as_log_files(&self) -> Option<&dyn LogFiles> {
        None
    }

    /// The pid of each running node (each leads its own process group), for
    /// the run's state file that `faultline cleanup` reads.
    fn pids(&self) -> Vec<(String, u32)> {
        Vec::new()
    }

    /// Each node's host clock minus the controller's, in nanoseconds, when
    /// the nodes run on remote hosts (measured at setup).
    fn clock_offsets(&self) -> std::collections::BTreeMap<String, i64> {
        std::collections::BTreeMap::new()
    }
}

/// Databases whose nodes can be killed (SIGKILL, or the system's own kill
/// command) and started again on the same data dir and port.
pub trait Kill {
    /// Kills `node` and waits until it is gone. A node that is not running
    /// is left as it is.
    fn kill(&mut self, node: &str) -> Result<(), DbError>;

    /// Starts `node` again with the same data dir, port and flags, and
    /// waits until it answers. A node that is running is left as it is.
    fn start(&mut self, node: &str) -> Result<(), DbError>;
}

/// Databases whose nodes can be paused (SIGSTOP) and resumed (SIGCONT).
pub trait Pause {
    /// Pauses `node`: it keeps its sockets but answers nothing.
    fn pause(&mut self, node: &str) -> Result<(), DbError>;

    /// Resumes `node`. A node that is not running is left as it is.
    fn resume(&mut self, node: &str) -> Result<(), DbError>;
}

/// Databases that write a log file per node.
pub trait LogFiles {
    /// `(node, path)` of every node's log file, in node order.
    fn log_files(&self) -> Vec<(String, PathBuf)>;
}

/// Databases whose nodes can be made to crash: exit at once by their own
/// hand (no clean shutdown), losing what they had not made durable. A
/// crashed node is started again through [`Kill::start`].
pub trait Crash {
    /// Crashes `node`; `Err` says why it could not be asked to.
    fn crash(&self, node: &str) -> BoxFuture<'static, Result<(), String>>;
}

/// Databases whose nodes' wall clocks can be shifted.
pub trait Clock {
    /// Shifts `node`'s wall clock by `offset_ms` (negative: back).
    fn shift(&self, node: &str, offset_ms: i64) -> BoxFuture<'static, Result<(), String>>;

    /// An endless task that flips `node`'s offset between `offset_ms` and
    /// none every `period`, if this clock can be strobed.
    fn strobe(
        &self,
        node: &str,
        offset_ms: i64,
        period: Duration,
    ) -> Option<BoxFuture<'static, ()>>;

    /// Puts `node`'s clock back; `down` says the node is not running (a
    /// clock whose offset lives in the node has lost it then).
    fn reset(&self, node: &str, down: bool) -> BoxFuture<'static, Result<(), String>>;
}

/// Databases that can say which node is primary.
pub trait Primary {
    /// The primary the cluster reports now, if any node knows one; bounded
    /// in time.
    fn primary(&self) -> BoxFuture<'static, Option<String>>;
}

/// Databases that can say whether the cluster has settled after the faults
/// healed, so that final reads see the state it keeps.
pub trait Settled {
    /// Whether it has settled now; bounded in time.
    fn settled(&self) -> BoxFuture<'static, bool>;
}

/// Why a lifecycle action failed.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The configuration makes no sense (bad node count, flags, template).
    #[error("bad database configuration: {0}")]
    Config(String),
    /// A node id that is not in this cluster.
    #[error("no node {0:?} in this cluster")]
    UnknownNode(String),
    /// The action needs a running node.
    #[error("{0} is not running")]
    NotRunning(String),
    /// Free ports could not be picked.
    #[error("cannot pick free ports on 127.0.0.1: {0}")]
    Ports(std::io::Error),
    /// A stopped node's port could not be held again for its restart.
    #[error("cannot hold {addr} for {node} again (another process took the port while {node} was down?): {source}")]
    PortTaken {
        /// The node.
        node: String,
        /// Its address.
        addr: std::net::SocketAddr,
        /// The error.
        source: std::io::Error,
    },
    /// A data dir or log file could not be created.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The runtime that asks the nodes whether they are ready could not be
    /// started.
    #[error("cannot start a runtime for the readiness probes: {0}")]
    Runtime(std::io::Error),
    /// The thread that forks the nodes could not be started.
    #[error("cannot start the spawner thread: {0}")]
    Spawner(std::io::Error),
    /// A node's program could not be started at all.
    #[error("cannot start {node} ({program}): {source}; see {}", log.display())]
    Spawn {
        /// The node.
        node: String,
        /// The program.
        program: String,
        /// Its log file.
        log: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// A node exited while it was expected to come up.
    #[error("{node} exited while starting ({status}); see {}", log.display())]
    Exited {
        /// The node.
        node: String,
        /// How it exited.
        status: String,
        /// Its log file.
        log: PathBuf,
    },
    /// The nodes did not come up in time.
    #[error(
        "{nodes} not ready after {waited:?}: {detail}; see the logs: {}",
        show_paths(logs)
    )]
    NotReady {
        /// The nodes waited for, e.g. `n1, n2, n3`.
        nodes: String,
        /// How long it waited.
        waited: Duration,
        /// What each node answered last.
        detail: String,
        /// Their log files.
        logs: Vec<PathBuf>,
    },
    /// A signal could not be sent.
    #[error("cannot send {signal} to {node}: {source}")]
    Signal {
        /// The node.
        node: String,
        /// The signal.
        signal: String,
        /// The error.
        source: nix::Error,
    },
    /// A remote host (`--hosts`) could not do what the node needed.
    #[error("remote host: {0}")]
    Remote(String),
    /// A kill/pause/resume command of an external system failed.
    #[error("{command:?} for {node} failed: {reason}")]
    Command {
        /// The node.
        node: String,
        /// The command line.
        command: String,
        /// Why.
        reason: String,
    },
}

fn show_paths(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// `n1`, `n2`, ... for `count` nodes.
pub fn node_ids(count: usize) -> Vec<String> {
    (1..=count).map(|i| format!("n{i}")).collect()
}

/// The `--peers` value for node `from`: every other node as `id=url`,
/// with `overrides[from][to]` in place of `to`'s client URL where given
/// (the nemesis puts proxies there).
pub fn peers_of(
    from: &str,
    nodes: &[NodeInfo],
    overrides: Option<&PeerUrls>,
) -> Vec<(String, String)> {
    let mine = overrides.and_then(|o| o.get(from));
    nodes
        .iter()
        .filter(|n| n.id != from)
        .map(|n| {
            let url = mine
                .and_then(|m| m.get(&n.id))
                .unwrap_or(&n.url)
                .to_string();
            (n.id.clone(), url)
        })
        .collect()
}

/// Per-node peer URLs: `from → to → url` node `from` uses to reach `to`.
pub type PeerUrls = std::collections::BTreeMap<String, std::collections::BTreeMap<String, String>>;

/// Checks that every node named in `overrides` exists.
pub(crate) fn check_peer_urls(overrides: &PeerUrls, nodes: &[NodeInfo]) -> Result<(), DbError> {
    let known = |id: &String| nodes.iter().any(|n| &n.id == id);
    for (from, tos) in overrides {
        for id in std::iter::once(from).chain(tos.keys()) {
            if !known(id) {
                return Err(DbError::Config(format!(
                    "peer URL override names unknown node {id:?}"
                )));
            }
        }
    }
    Ok(())
}

/// A runtime for the readiness probes of one wait: a blocking lifecycle
/// call asks its nodes over async clients on it.
pub(crate) fn probe_runtime() -> Result<tokio::runtime::Runtime, DbError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(DbError::Runtime)
}

/// `NodeInfo`s for `count` nodes, node `i` on address `host(i)`, on ports
/// picked and held now (see [`process::HeldPort`]): one per node, in order.
pub(crate) fn held_nodes(
    count: usize,
    host: impl Fn(usize) -> std::net::IpAddr,
) -> Result<(Vec<NodeInfo>, Vec<process::HeldPort>), DbError> {
    if count == 0 {
        return Err(DbError::Config("a cluster needs at least one node".into()));
    }
    let mut nodes = Vec::new();
    let mut held = Vec::new();
    for (i, id) in node_ids(count).into_iter().enumerate() {
        let port = process::HeldPort::bind(std::net::SocketAddr::new(host(i), 0))
            .map_err(DbError::Ports)?;
        let addr = port.addr();
        nodes.push(NodeInfo {
            id,
            url: format!("http://{addr}"),
            port: addr.port(),
        });
        held.push(port);
    }
    Ok((nodes, held))
}

/// `NodeInfo`s for `count` nodes on loopback ports picked now.
pub(crate) fn loopback_nodes(count: usize) -> Result<Vec<NodeInfo>, DbError> {
    if count == 0 {
        return Err(DbError::Config("a cluster needs at least one node".into()));
    }
    let ports = process::free_ports(count)?;
    Ok(node_ids(count)
        .into_iter()
        .zip(ports)
        .map(|(id, port)| NodeInfo {
            id,
            url: format!("http://127.0.0.1:{port}"),
            port,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peers_use_overrides_where_given() {
        let nodes = loopback_nodes(3).unwrap();
        let mut overrides = PeerUrls::new();
        overrides
            .entry("n1".into())
            .or_default()
            .insert("n2".into(), "http://127.0.0.1:1".into());
        let peers = peers_of("n1", &nodes, Some(&overrides));
        assert_eq!(peers[0], ("n2".into(), "http://127.0.0.1:1".into()));
        assert_eq!(peers[1], ("n3".into(), nodes[2].url.clone()));
        assert_eq!(peers_of("n2", &nodes, Some(&overrides))[0].1, nodes[0].url);
        assert!(check_peer_urls(&overrides, &nodes).is_ok());
        overrides.insert("n9".into(), Default::default());
        assert!(check_peer_urls(&overrides, &nodes).is_err());
    }
}
