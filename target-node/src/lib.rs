//! `target-node`: the replicated key-value node faultline ships as its
//! system under test. Weak modes (asynchronous replication, bully election,
//! local reads, last-write-wins multi-primary, unsynced writes) lose or
//! misorder data under the right faults; `--write-concern majority
//! --election majority --reads linearizable` must stay linearizable.
//!
//! # Layout
//! - [`api`]: client-facing wire types (bodies, [`api::Status`], errors).
//! - [`client`]: a typed async client of a node.
//! - [`mode`]: the mode enums (`--write-concern`, `--election`, ...).
//! - [`oplog`]: oplog entries and the in-memory oplog.
//! - [`kv`]: the store an oplog is applied to; transactions, cas, appends.
//! - [`message`]: node-to-node messages (`POST /peer`).
//! - [`replication`]: the pure replication state machines (primary and
//!   multi-primary), unit-tested without sockets.
//! - [`storage`]: the data dir (oplog file, `meta.json`), recovery, the
//!   group-commit writer thread.
//! - [`clock`]: the node's offsettable wall clock.
//! - [`node`]: the driver that runs a state machine over HTTP and disk.
//! - [`server`]: the axum routes, one file per command.
//! - `logging`: log lines with time, node, role and term.
//! - [`fuzz`]: the entry point of the HTTP fuzz target.
//! - `listener`: the listening socket, bound here or inherited
//!   (`--listen-fd`).
//!
//! # Running
//! `target-node --id n1 --listen 127.0.0.1:7001 --peers
//! n2=http://127.0.0.1:7002,n3=http://127.0.0.1:7003 --data-dir /tmp/n1
//! --write-concern majority --election majority --reads linearizable`.
//! The harness embeds [`NodeArgs`] in its own subcommand (`faultline node
//! ...`) and calls [`run_blocking`].
//!
//! For kernel-level partitions (nft/iptables rules that match addresses),
//! give each node its own loopback address and make it connect to its peers
//! from that address: `--listen 127.0.0.11:7001 --peer-source 127.0.0.11`.
//!
//! # HTTP API
//! | request | body | answer |
//! |---|---|---|
//! | `GET /kv/{key}` | | the value, `null` when missing |
//! | `PUT /kv/{key}` | the value | [`api::WriteAck`] |
//! | `POST /kv/{key}/cas` | `{"from":..,"to":..}` | [`api::WriteAck`] |
//! | `POST /kv/{key}/append` | the element | [`api::WriteAck`] |
//! | `POST /txn` | `[["r","k",null],["append","k",1],["w","j",2]]` | the list, reads filled in |
//! | `GET /status` | | [`api::Status`] |
//! | `POST /admin/clock` (`--admin`) | `{"offset_ms":N}` | the same |
//! | `POST /admin/crash` (`--admin`) | | `202`, then the process exits (code 137) |
//!
//! Keys are 1 to 256 bytes of `A-Z a-z 0-9 _ - . :`; client bodies are
//! limited to 1 MiB. Writes (put, cas, append, and a txn with any `append`
//! or `w`) go to the primary; in multi-primary topology to any node. A write
//! transaction is one oplog entry, executed on the primary's latest state
//! and acknowledged by the write concern like any write.
//!
//! Reads — `GET /kv/{key}` and a read-only txn (only `r` micro-ops) alike —
//! follow `--reads`, and a read-only txn logs nothing:
//!
//! | `--reads` | served by | from |
//! |---|---|---|
//! | `local` | any node, whatever its role | its latest applied state (may be stale, or hold entries that will be rolled back) |
//! | `primary` | a node that believes it is primary, without asking anyone | its latest state (a deposed primary that has not noticed yet answers stale) |
//! | `linearizable` | the primary, once a majority confirms it still is | the committed state |
//!
//! Elsewhere the answer is `not-primary`, naming the primary the node
//! believes in. In multi-primary topology every read is `local`. All reads
//! of one read-only txn see one state of one node.
//!
//! # Errors
//! Every error answer has the body [`api::ErrorBody`]
//! `{"error":KIND,"message":..,"primary":..}`.
//!
//! | `error` | HTTP | definite? | meaning |
//! |---|---|---|---|
//! | `not-primary` | 421 | yes | this node does not take this request in its role; `primary` names the primary it believes in, if any |
//! | `cas-mismatch` | 409 | yes | the key did not hold `from` (a missing key holds `null`) |
//! | `bad-request` | 400, 404, 405, 413 | yes | malformed JSON, invalid key, body too large, unknown route or method, append to a non-list; nothing changed |
//! | `txn-conflict` | 409 | yes | a micro-op could not apply (append to a non-list); none of the transaction applied |
//! | `timeout` | 504 | **no** | the write was logged but its write concern was not met in time (or it was replaced on this node by another primary's entry), or a linearizable read was not confirmed: a write may still commit later |
//!
//! Definite means the operation certainly did not take effect (Jepsen
//! `fail`); an indefinite error or no answer at all means it may have, now
//! or later (Jepsen `info`). A failed read never changes anything.
//!
//! # Finding the primary
//! `GET /status` on every node; the primary is the node whose `role` is
//! `primary` in the highest `term` ([`client::primary_among`]). A
//! `not-primary` answer names the primary the node believes in.

#![deny(missing_docs)]

pub mod api;
pub mod client;
pub mod clock;
pub mod fuzz;
pub mod kv;
mod listener;
mod logging;
pub mod message;
pub mod mode;
pub mod node;
pub mod oplog;
pub mod replication;
pub mod server;
pub mod storage;

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tracing::info;

use api::NodeId;
use mode::{Election, Fsync, Modes, Reads, Topology, WriteConcern};
use node::{DriverConfig, Node};
use replication::multi::MultiPrimary;
use replication::primary::Replica;
use replication::{ReplicaConfig, Replication};

/// The node's command line. Embed it with `#[command(flatten)]` (or as a
/// subcommand's args) and pass it to [`run_blocking`].
#[derive(Clone, Debug, PartialEq, Eq, clap::Args)]
pub struct NodeArgs {
    /// This node's id, e.g. `n1` (ids compare by their number).
    #[arg(long)]
    pub id: String,
    /// Address to serve HTTP on, e.g. `127.0.0.1:7001`.
    #[arg(long)]
    pub listen: SocketAddr,
    /// The other nodes: `n2=http://127.0.0.1:7002,n3=http://127.0.0.1:7003`.
    #[arg(long, value_delimiter = ',', value_parser = parse_peer)]
    pub peers: Vec<Peer>,
    /// Directory for the oplog and `meta.json` (created if missing).
    #[arg(long)]
    pub data_dir: PathBuf,
    /// When writes are acknowledged.
    #[arg(long, value_enum, default_value = "majority")]
    pub write_concern: WriteConcern,
    /// How a primary is chosen.
    #[arg(long, value_enum, default_value = "majority")]
    pub election: Election,
    /// Which node serves reads and what it checks first.
    #[arg(long, value_enum, default_value = "linearizable")]
    pub reads: Reads,
    /// Single primary or every node a primary (last-write-wins).
    #[arg(long, value_enum, default_value = "primary")]
    pub topology: Topology,
    /// Whether oplog writes are fsynced before they count.
    #[arg(long, value_enum, default_value = "always")]
    pub fsync: Fsync,
    /// Serve `/admin/clock` and `/admin/crash`.
    #[arg(long)]
    pub admin: bool,
    /// Heartbeat interval of the primary (and bully pings), ms.
    #[arg(long, default_value_t = 50)]
    pub heartbeat_ms: u64,
    /// Time without a primary before an election, ms (majority election
    /// adds a random extra of up to the same).
    #[arg(long, default_value_t = 500)]
    pub election_timeout_ms: u64,
    /// Time a request to a peer may take, ms.
    #[arg(long, default_value_t = 300)]
    pub rpc_timeout_ms: u64,
    /// Time a client request may wait for replication or confirmation
    /// before answering `timeout`, ms.
    #[arg(long, default_value_t = 1500)]
    pub request_timeout_ms: u64,
    /// With `--fsync never`: how often the write buffer is flushed, ms.
    #[arg(long, default_value_t = 200)]
    pub flush_interval_ms: u64,
    /// Most entries per replication request.
    #[arg(long, default_value_t = 512)]
    pub max_batch: usize,
    /// Local address that connections to peers are made from, e.g.
    /// `127.0.0.11`. Give each node its own loopback address (and `--listen`
    /// on it) so kernel firewall rules can tell the nodes' traffic apart;
    /// by default the kernel picks the source address.
    #[arg(long)]
    pub peer_source: Option<IpAddr>,
    /// Serve on the socket inherited as this file descriptor, already bound
    /// to `--listen`'s address, instead of binding it: a launcher that holds
    /// the port from the moment it picks it leaves no window in which
    /// another process can take it.
    #[arg(long)]
    pub listen_fd: Option<i32>,
}

/// One `--peers` item: `id=url`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Peer {
    /// The peer's id.
    pub id: NodeId,
    /// Its base URL, e.g. `http://127.0.0.1:7002`.
    pub url: String,
}

fn parse_peer(text: &str) -> Result<Peer, String> {
    let (id, url) = text
        .split_once('=')
        .ok_or_else(|| format!("expected id=url, got {text:?}"))?;
    if id.is_empty() || !url.starts_with("http://") {
        return Err(format!("expected id=http://host:port, got {text:?}"));
    }
    Ok(Peer {
        id: NodeId(id.to_string()),
        url: url.trim_end_matches('/').to_string(),
    })
}

/// Why a node could not run.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The arguments do not make sense together.
    #[error("bad arguments: {0}")]
    BadArgs(String),
    /// The data dir could not be read or written.
    #[error("data dir {dir}: {source}")]
    DataDir {
        /// The data dir.
        dir: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The listen address could not be bound or served.
    #[error("serving on {addr}: {source}")]
    Serve {
        /// The address.
        addr: SocketAddr,
        /// The error.
        source: std::io::Error,
    },
    /// The async runtime could not start.
    #[error("cannot start the runtime: {0}")]
    Runtime(std::io::Error),
}

impl NodeError {
    /// Process exit code: 3 for bad arguments, 5 otherwise (the shared
    /// vocabulary's "usage error" and "failed").
    pub fn exit_code(&self) -> u8 {
        match self {
            NodeError::BadArgs(_) => 3,
            _ => 5,
        }
    }
}

impl NodeArgs {
    fn check(&self) -> Result<(), NodeError> {
        let bad = |m: String| Err(NodeError::BadArgs(m));
        if self.id.is_empty() {
            return bad("--id must not be empty".into());
        }
        if self.peers.iter().any(|p| p.id.0 == self.id) {
            return bad(format!("--peers lists this node ({})", self.id));
        }
        let mut ids: Vec<&NodeId> = self.peers.iter().map(|p| &p.id).collect();
        ids.sort();
        ids.dedup();
        if ids.len() != self.peers.len() {
            return bad("--peers lists a node twice".into());
        }
        if self.heartbeat_ms == 0 || self.election_timeout_ms <= self.heartbeat_ms {
            return bad("need 0 < --heartbeat-ms < --election-timeout-ms".into());
        }
        if self.max_batch == 0 {
            return bad("--max-batch must be at least 1".into());
        }
        if self.listen_fd.is_some_and(|fd| fd < 0) {
            return bad("--listen-fd must be a file descriptor (0 or more)".into());
        }
        Ok(())
    }

    /// These arguments as command-line flags (what a launcher passes to
    /// `target-node` or `faultline node`); parsing them gives `self` back.
    pub fn to_args(&self) -> Vec<String> {
        fn name<T: clap::ValueEnum>(value: T) -> String {
            value
                .to_possible_value()
                .map(|v| v.get_name().to_string())
                .unwrap_or_default()
        }
        let mut args = vec![
            "--id".to_string(),
            self.id.clone(),
            "--listen".into(),
            self.listen.to_string(),
            "--data-dir".into(),
            self.data_dir.display().to_string(),
        ];
        if !self.peers.is_empty() {
            let peers: Vec<String> = self
                .peers
                .iter()
                .map(|p| format!("{}={}", p.id, p.url))
                .collect();
            args.extend(["--peers".into(), peers.join(",")]);
        }
        let flags = [
            ("--write-concern", name(self.write_concern)),
            ("--election", name(self.election)),
            ("--reads", name(self.reads)),
            ("--topology", name(self.topology)),
            ("--fsync", name(self.fsync)),
            ("--heartbeat-ms", self.heartbeat_ms.to_string()),
            (
                "--election-timeout-ms",
                self.election_timeout_ms.to_string(),
            ),
            ("--rpc-timeout-ms", self.rpc_timeout_ms.to_string()),
            ("--request-timeout-ms", self.request_timeout_ms.to_string()),
            ("--flush-interval-ms", self.flush_interval_ms.to_string()),
            ("--max-batch", self.max_batch.to_string()),
        ];
        for (flag, value) in flags {
            args.extend([flag.to_string(), value]);
        }
        if self.admin {
            args.push("--admin".into());
        }
        if let Some(source) = self.peer_source {
            args.extend(["--peer-source".into(), source.to_string()]);
        }
        if let Some(fd) = self.listen_fd {
            args.extend(["--listen-fd".into(), fd.to_string()]);
        }
        args
    }

    /// The modes these arguments select.
    pub fn modes(&self) -> Modes {
        Modes {
            write_concern: self.write_concern,
            election: self.election,
            reads: self.reads,
            topology: self.topology,
            fsync: self.fsync,
        }
    }
}

/// Runs a node until SIGTERM or SIGINT, on a runtime of its own; flushes
/// buffered writes before returning.
pub fn run_blocking(args: NodeArgs) -> Result<(), NodeError> {
    args.check()?;
    logging::init(&args.id);
    // A panic in any task means the replica's state can no longer be
    // trusted: crash the whole process (after the message and backtrace
    // reach the log), as a database's failed assertion would, rather than
    // keep serving from half-updated state.
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        report(info);
        std::process::abort();
    }));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(NodeError::Runtime)?;
    runtime.block_on(serve(args))
}

async fn serve(args: NodeArgs) -> Result<(), NodeError> {
    let (node, recovered_entries) = open_node(&args)?;
    let serve_error = |source| NodeError::Serve {
        addr: args.listen,
        source,
    };
    let listener = listener::open(args.listen, args.listen_fd).map_err(serve_error)?;
    info!(listen = %args.listen, recovered_entries, modes = ?args.modes(), "serving");
    let ticker = tokio::spawn(tick_forever(node.clone(), tick_period(&args)));
    let served = axum::serve(listener, server::router(node.clone()))
        .with_graceful_shutdown(shutdown_signal())
        .await;
    ticker.abort();
    node.close();
    info!("stopped");
    served.map_err(serve_error)
}

/// How often a node's state machine is ticked.
fn tick_period(args: &NodeArgs) -> Duration {
    Duration::from_millis((args.heartbeat_ms / 4).max(2))
}

/// The node `args` describe, recovered from its data dir and with its
/// writer attached, on the current runtime; and how many oplog entries it
/// recovered.
fn open_node(args: &NodeArgs) -> Result<(Arc<Node>, usize), NodeError> {
    let data_dir = |source| NodeError::DataDir {
        dir: args.data_dir.clone(),
        source,
    };
    let recovered =
        storage::recover(&args.data_dir, args.topology == Topology::Primary).map_err(data_dir)?;
    let recovered_entries = recovered.entries.len();
    let cfg = ReplicaConfig {
        id: NodeId(args.id.clone()),
        peers: args.peers.iter().map(|p| p.id.clone()).collect(),
        election: args.election,
        heartbeat_ms: args.heartbeat_ms,
        election_timeout_ms: args.election_timeout_ms,
        rpc_timeout_ms: args.rpc_timeout_ms,
        max_batch: args.max_batch,
    };
    let replication: Box<dyn Replication> = match args.topology {
        Topology::Primary => Box::new(Replica::new(cfg, recovered.meta, recovered.entries, 0)),
        Topology::MultiPrimary => Box::new(MultiPrimary::new(cfg, recovered.entries)),
    };
    let driver = DriverConfig {
        id: NodeId(args.id.clone()),
        peer_urls: args
            .peers
            .iter()
            .map(|p| (p.id.clone(), p.url.clone()))
            .collect::<BTreeMap<_, _>>(),
        modes: args.modes(),
        admin: args.admin,
        data_dir: args.data_dir.clone(),
        request_timeout: Duration::from_millis(args.request_timeout_ms),
        rpc_timeout: Duration::from_millis(args.rpc_timeout_ms),
        peer_source: args.peer_source,
    };
    let node = Node::new(driver, replication, tokio::runtime::Handle::current());
    node.attach_writer(Duration::from_millis(args.flush_interval_ms))
        .map_err(data_dir)?;
    Ok((node, recovered_entries))
}

async fn tick_forever(node: Arc<Node>, period: Duration) {
    let mut interval = tokio::time::interval(period);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        node.tick();
    }
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let terminate = async {
        match signal(SignalKind::terminate()) {
            Ok(mut stream) => {
                stream.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate => {}
    }
    info!("shutting down");
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        node: NodeArgs,
    }

    #[test]
    fn parses_the_documented_flags() {
        let cli = Cli::try_parse_from([
            "t",
            "--id",
            "n1",
            "--listen",
            "127.0.0.1:7001",
            "--peers",
            "n2=http://127.0.0.1:7002,n3=http://127.0.0.1:7003/",
            "--data-dir",
            "/tmp/x",
            "--write-concern",
            "one",
            "--election",
            "bully",
            "--reads",
            "local",
            "--topology",
            "multi-primary",
            "--fsync",
            "never",
            "--admin",
            "--peer-source",
            "127.0.0.11",
        ])
        .unwrap();
        assert_eq!(cli.node.peers.len(), 2);
        assert_eq!(cli.node.peers[1].url, "http://127.0.0.1:7003");
        assert_eq!(cli.node.topology, Topology::MultiPrimary);
        assert_eq!(cli.node.peer_source, Some([127, 0, 0, 11].into()));
        assert!(cli.node.check().is_ok());
        assert!(
            Cli::try_parse_from(["t", "--id", "n1", "--listen", "x", "--data-dir", "d"]).is_err()
        );
        let again = Cli::try_parse_from(std::iter::once("t".to_string()).chain(cli.node.to_args()));
        assert_eq!(again.unwrap().node, cli.node, "to_args round-trips");
    }
}
