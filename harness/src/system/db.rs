//! The database under test: node lifecycle, as in jepsen's `db.clj`.
//!
//! [`Db`] is the lifecycle every system has (set up, tear down); what only
//! some systems can do are separate small traits: [`Kill`] (kill/start),
//! [`Pause`] (pause/resume) and [`LogFiles`]. Two implementations:
//!
//! - [`TargetNodeDb`]: the target-node faultline ships, launched as
//!   `faultline node ...` (this executable) or another binary.
//! - [`ExternalDb`]: any system described by command templates
//!   (`start = "mydb --port {port} --peers {peers}"`).
//!
//! Both start every node as a child process in its own process group,
//! armed to die with the harness (Linux `PR_SET_PDEATHSIG(SIGKILL)`), and
//! stop them all on [`Db::teardown`] and again when dropped, so an early
//! return or a panic leaves no node behind. The kernel sends the
//! parent-death signal when the *thread* that forked a child exits, not the
//! process; so every fork of a database happens on one dedicated spawner
//! thread that lives as long as the database (the `process` module).
//!
//! The calls block (for up to the configured ready timeout, 30 s by
//! default); async callers run them with `tokio::task::spawn_blocking`.
//! That is safe: no fork happens on the calling thread.
//!
//! # Layout
//! - `process`: the spawner thread, process groups, signals, stop/reap.
//! - [`status`]: blocking, bounded `GET /status`, and finding the primary.
//! - [`target`]: [`TargetNodeDb`] and its [`TargetNodeConfig`].
//! - [`external`]: [`ExternalDb`], its [`ExternalConfig`] and [`Template`].

use std::path::PathBuf;
use std::time::Duration;

use super::process;
use crate::system::target_node::status;

/// How long [`Db::primary`] waits for each node's status.
pub const STATUS_TIMEOUT: Duration = Duration::from_secs(1);

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

    /// The primary the cluster reports now (`GET /status` on every node;
    /// the primary of the highest term), if any node knows one. Blocks for
    /// at most [`STATUS_TIMEOUT`].
    fn primary(&self) -> Option<String> {
        status::primary_of(self.nodes(), STATUS_TIMEOUT)
    }

    /// Whether the cluster has settled after the faults healed (one primary
    /// everyone follows, every oplog caught up: [`status::converged`]), so
    /// the final reads see the state it keeps. Blocks for at most
    /// [`STATUS_TIMEOUT`].
    fn converged(&self) -> bool {
        status::converged(self.nodes(), STATUS_TIMEOUT)
    }

    /// This database's [`Kill`] ability, if it has one (for callers that
    /// hold a `Box<dyn Db>`, like jepsen's `satisfies?`).
    fn as_kill(&mut self) -> Option<&mut dyn Kill> {
        None
    }

    /// This database's [`Pause`] ability, if it has one.
    fn as_pause(&mut self) -> Option<&mut dyn Pause> {
        None
    }

    /// This database's [`LogFiles`] ability, if it has one.
    fn as_log_files(&self) -> Option<&dyn LogFiles> {
        None
    }

    /// A libfaketime timestamp file through which `node`'s wall clock can be
    /// shifted (write `+2.5` or `-10`: seconds), when the node runs under
    /// libfaketime; `None` when its clock is shifted another way (the shipped
    /// node's admin endpoint) or not at all.
    fn clock_file(&self, _node: &str) -> Option<PathBuf> {
        None
    }

    /// The pid of each running node (each leads its own process group), for
    /// the run's state file that `faultline cleanup` reads.
    fn pids(&self) -> Vec<(String, u32)> {
        Vec::new()
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
    /// A data dir or log file could not be created.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
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
