//! [`TargetNodeDb`]: a cluster of the target-node faultline ships.
//!
//! Node `nI` runs as `faultline node --id nI --listen 127.0.0.1:PORT
//! --peers nJ=URL,... --data-dir RUN/nodes/nI/data <modes> --admin
//! <extra args>` (or the same flags to another binary), with its stdout and
//! stderr appended to `LOGS/nI.log` (`LOGS` defaults to `RUN/nodes`).

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use clap::Parser;
use nix::sys::signal::Signal;
use target_node::api::Status;
use target_node::mode::{Election, Fsync, Modes, Reads, Topology, WriteConcern};

use super::api::NodeApi;
use super::status::{self, StatusError};
use crate::system::db::{
    check_peer_urls, held_nodes, peers_of, probe_runtime, Clock, Crash, Db, DbError, Kill,
    LogFiles, NodeInfo, Pause, PeerUrls, Primary, Settled,
};
use crate::system::process::{io_error, log_path, signal_node, HeldPort, Processes, LISTEN_FD};

/// How long one readiness probe waits for a node's status.
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);
/// Pause between readiness probes.
const PROBE_INTERVAL: Duration = Duration::from_millis(100);

/// Which executable runs the nodes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NodeBinary {
    /// This executable, as `faultline node ...` (the default: one build
    /// gives everything).
    CurrentExe,
    /// `--node-bin PATH`: a binary that takes target-node's flags directly.
    Path(PathBuf),
    /// A program given `leading_args` before the node's flags, e.g. another
    /// faultline build with `["node"]`.
    WithArgs {
        /// The program.
        program: PathBuf,
        /// Arguments before the node's flags.
        leading_args: Vec<String>,
    },
}

impl NodeBinary {
    /// The program and the arguments that precede the node's flags.
    fn resolve(&self) -> Result<(PathBuf, Vec<String>), DbError> {
        match self {
            NodeBinary::CurrentExe => {
                let exe = std::env::current_exe().map_err(|e| {
                    DbError::Config(format!("cannot find this executable to run nodes: {e}"))
                })?;
                Ok((exe, vec!["node".to_string()]))
            }
            NodeBinary::Path(path) => Ok((path.clone(), Vec::new())),
            NodeBinary::WithArgs {
                program,
                leading_args,
            } => Ok((program.clone(), leading_args.clone())),
        }
    }
}

/// How to run a target-node cluster.
#[derive(Clone, Debug)]
pub struct TargetNodeConfig {
    /// Number of nodes (`n1`..`nN`).
    pub nodes: usize,
    /// The modes every node runs with.
    pub modes: Modes,
    /// The executable.
    pub binary: NodeBinary,
    /// The run directory; data dirs are `RUN/nodes/<id>/data`.
    pub run_dir: PathBuf,
    /// Where `<id>.log` files go; `RUN/nodes` when `None`.
    pub log_dir: Option<PathBuf>,
    /// Extra flags for every node (`--heartbeat-ms 20`, ...).
    pub extra_args: Vec<String>,
    /// Peer URLs per node (`from → to → url`) instead of the client URLs;
    /// the nemesis's proxies go there. Unlisted pairs use client URLs.
    pub peer_urls: Option<PeerUrls>,
    /// How long [`Db::setup`] and [`Kill::start`] wait for the nodes.
    pub ready_timeout: Duration,
    /// How long a stop waits after SIGTERM before SIGKILL.
    pub stop_grace: Duration,
    /// Put node `nI` on its own loopback address `127.0.0.(10+I)` and have it
    /// make its peer connections from there (`--peer-source`), so kernel
    /// rules can tell the nodes apart (the netns backend). The nodes must
    /// then run in a network namespace where those addresses are up.
    pub distinct_addresses: bool,
}

impl TargetNodeConfig {
    /// `nodes` nodes of this executable in the strong modes
    /// (`majority`/`majority`/`linearizable`, single primary, fsync
    /// always), ready within 30 s, stopped with a 5 s grace.
    pub fn new(nodes: usize, run_dir: impl Into<PathBuf>) -> TargetNodeConfig {
        TargetNodeConfig {
            nodes,
            modes: Modes {
                write_concern: WriteConcern::Majority,
                election: Election::Majority,
                reads: Reads::Linearizable,
                topology: Topology::Primary,
                fsync: Fsync::Always,
            },
            binary: NodeBinary::CurrentExe,
            run_dir: run_dir.into(),
            log_dir: None,
            extra_args: Vec::new(),
            peer_urls: None,
            ready_timeout: Duration::from_secs(30),
            stop_grace: Duration::from_secs(5),
            distinct_addresses: false,
        }
    }
}

/// Node `nI`'s own loopback address when nodes get distinct addresses.
fn distinct_host(index: usize) -> String {
    format!("127.0.0.{}", 11 + index)
}

/// The nodes on loopback, all on 127.0.0.1 or each on its own address, on
/// ports picked and held now (see [`HeldPort`]).
fn place_nodes(config: &TargetNodeConfig) -> Result<(Vec<NodeInfo>, Vec<HeldPort>), DbError> {
    if config.distinct_addresses && config.nodes > 244 {
        return Err(DbError::Config(
            "distinct addresses allow at most 244 nodes".into(),
        ));
    }
    held_nodes(config.nodes, |i| match config.distinct_addresses {
        true => distinct_host(i).parse().expect("a literal IPv4 address"),
        false => Ipv4Addr::LOCALHOST.into(),
    })
}

/// Parses the flags we are about to pass, so a bad extra flag is a
/// configuration error here rather than a node dying at start.
#[derive(Parser)]
#[command(name = "node")]
struct NodeCommand {
    #[command(flatten)]
    node: target_node::NodeArgs,
}

/// A cluster of target-node processes on loopback. Stops every node when
/// dropped.
pub struct TargetNodeDb {
    config: TargetNodeConfig,
    nodes: Vec<NodeInfo>,
    program: PathBuf,
    leading_args: Vec<String>,
    processes: Processes,
    /// The ports of the nodes not running, held until they start.
    held: BTreeMap<String, HeldPort>,
    api: NodeApi,
}

impl TargetNodeDb {
    /// Checks the configuration and picks the nodes' ports; starts nothing.
    pub fn new(config: TargetNodeConfig) -> Result<TargetNodeDb, DbError> {
        let (program, leading_args) = config.binary.resolve()?;
        let (nodes, held) = place_nodes(&config)?;
        if let Some(overrides) = &config.peer_urls {
            check_peer_urls(overrides, &nodes)?;
        }
        let held = nodes.iter().map(|n| n.id.clone()).zip(held).collect();
        let db = TargetNodeDb {
            processes: Processes::new(config.stop_grace)?,
            held,
            api: NodeApi::new(&nodes),
            config,
            nodes,
            program,
            leading_args,
        };
        for node in &db.nodes {
            db.node_args(&node.id)?;
        }
        Ok(db)
    }

    /// Sets the peer URLs (`from → to → url`) the nodes get from their next
    /// start on, e.g. once proxies listen in front of [`Db::nodes`]' ports.
    pub fn set_peer_urls(&mut self, peer_urls: Option<PeerUrls>) -> Result<(), DbError> {
        if let Some(overrides) = &peer_urls {
            check_peer_urls(overrides, &self.nodes)?;
        }
        self.config.peer_urls = peer_urls;
        Ok(())
    }

    /// The configuration.
    pub fn config(&self) -> &TargetNodeConfig {
        &self.config
    }

    /// `node`'s data dir.
    pub fn data_dir(&self, node: &str) -> PathBuf {
        self.config.run_dir.join("nodes").join(node).join("data")
    }

    /// `node`'s log file.
    pub fn log_file(&self, node: &str) -> PathBuf {
        let dir = self
            .config
            .log_dir
            .clone()
            .unwrap_or_else(|| self.config.run_dir.join("nodes"));
        log_path(&dir, node)
    }

    /// The pid of `node`'s process (its process group id too), if started.
    pub fn pid(&self, node: &str) -> Option<u32> {
        self.processes.pid(node)
    }

    /// The node's flags, as passed after the leading arguments.
    pub fn node_args(&self, node: &str) -> Result<Vec<String>, DbError> {
        let info = self.node(node)?;
        let index = self.nodes.iter().position(|n| n.id == node).unwrap_or(0);
        let host = match self.config.distinct_addresses {
            true => distinct_host(index),
            false => "127.0.0.1".to_string(),
        };
        let modes = self.config.modes;
        let mut flags = vec![
            "--id".to_string(),
            info.id.clone(),
            "--listen".into(),
            format!("{host}:{}", info.port),
            "--data-dir".into(),
            self.data_dir(node).display().to_string(),
            "--write-concern".into(),
            flag_value(modes.write_concern),
            "--election".into(),
            flag_value(modes.election),
            "--reads".into(),
            flag_value(modes.reads),
            "--topology".into(),
            flag_value(modes.topology),
            "--fsync".into(),
            flag_value(modes.fsync),
            "--admin".into(),
        ];
        let peers = peers_of(node, &self.nodes, self.config.peer_urls.as_ref());
        if !peers.is_empty() {
            let list: Vec<String> = peers
                .iter()
                .map(|(id, url)| format!("{id}={url}"))
                .collect();
            flags.extend(["--peers".to_string(), list.join(",")]);
        }
        if self.config.distinct_addresses {
            flags.extend(["--peer-source".to_string(), host]);
        }
        flags.extend(["--listen-fd".to_string(), LISTEN_FD.to_string()]);
        flags.extend(self.config.extra_args.iter().cloned());
        let parsed = NodeCommand::try_parse_from(std::iter::once("node".to_string()).chain(flags))
            .map_err(|e| DbError::Config(format!("node flags for {node}: {e}")))?;
        Ok(parsed.node.to_args())
    }

    fn node(&self, node: &str) -> Result<&NodeInfo, DbError> {
        self.nodes
            .iter()
            .find(|n| n.id == node)
            .ok_or_else(|| DbError::UnknownNode(node.to_string()))
    }

    fn spawn(&mut self, node: &str) -> Result<(), DbError> {
        let data_dir = self.data_dir(node);
        std::fs::create_dir_all(&data_dir).map_err(|e| io_error(&data_dir, e))?;
        let mut command = Command::new(&self.program);
        command.args(&self.leading_args).args(self.node_args(node)?);
        let log = self.log_file(node);
        let port = self.take_port(node)?;
        self.processes
            .start_with_socket(node, command, &log, Some(port.into_fd()))?;
        Ok(())
    }

    /// `node`'s held port, or its port held again now (after a crash of
    /// its own, nothing held it).
    fn take_port(&mut self, node: &str) -> Result<HeldPort, DbError> {
        if let Some(port) = self.held.remove(node) {
            return Ok(port);
        }
        let addr = self.listen_addr(node)?;
        HeldPort::bind(addr).map_err(|source| DbError::PortTaken {
            node: node.to_string(),
            addr,
            source,
        })
    }

    /// Holds `node`'s port while it is down (best effort: a failure shows
    /// at its restart, in [`TargetNodeDb::take_port`]).
    fn hold_port(&mut self, node: &str) {
        if let Ok(port) = self.listen_addr(node).and_then(|addr| {
            HeldPort::bind(addr).map_err(|source| DbError::PortTaken {
                node: node.to_string(),
                addr,
                source,
            })
        }) {
            self.held.insert(node.to_string(), port);
        }
    }

    fn listen_addr(&self, node: &str) -> Result<SocketAddr, DbError> {
        let info = self.node(node)?;
        let url = info.url.trim_start_matches("http://");
        url.parse()
            .map_err(|_| DbError::Config(format!("{node}'s URL {url:?} is not host:port")))
    }

    fn start_all_and_wait(&mut self) -> Result<(), DbError> {
        let ids: Vec<String> = self.nodes.iter().map(|n| n.id.clone()).collect();
        for id in &ids {
            self.spawn(id)?;
        }
        self.wait_until_answering(&ids, true)
    }

    /// Waits until every node in `ids` answers `/status` (and, with
    /// `need_primary`, a primary is known), failing early when one exits.
    fn wait_until_answering(&mut self, ids: &[String], need_primary: bool) -> Result<(), DbError> {
        let started = Instant::now();
        let deadline = started + self.config.ready_timeout;
        let waited_for: Vec<NodeInfo> = self
            .nodes
            .iter()
            .filter(|n| ids.contains(&n.id))
            .cloned()
            .collect();
        let runtime = probe_runtime()?;
        loop {
            self.fail_if_exited(ids)?;
            let answers = runtime.block_on(status::statuses(&waited_for, PROBE_TIMEOUT));
            if status::all_ready(&answers, need_primary) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(self.not_ready(&waited_for, &answers, started.elapsed(), need_primary));
            }
            thread::sleep(PROBE_INTERVAL);
        }
    }

    fn fail_if_exited(&mut self, ids: &[String]) -> Result<(), DbError> {
        for id in ids {
            let exited = self.processes.get_mut(id).and_then(|p| p.exit_status());
            if let Some(status) = exited {
                return Err(DbError::Exited {
                    node: id.clone(),
                    status,
                    log: self.log_file(id),
                });
            }
        }
        Ok(())
    }

    fn not_ready(
        &self,
        nodes: &[NodeInfo],
        answers: &[Result<Status, StatusError>],
        waited: Duration,
        need_primary: bool,
    ) -> DbError {
        let mut detail = status::describe(nodes, answers);
        if need_primary && answers.iter().all(Result::is_ok) {
            detail.push_str("; no primary");
        }
        DbError::NotReady {
            nodes: nodes
                .iter()
                .map(|n| n.id.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            waited,
            detail,
            logs: nodes.iter().map(|n| self.log_file(&n.id)).collect(),
        }
    }
}

/// A mode's name on the command line.
fn flag_value<T: clap::ValueEnum>(value: T) -> String {
    value
        .to_possible_value()
        .map(|v| v.get_name().to_string())
        .unwrap_or_default()
}

impl Db for TargetNodeDb {
    fn nodes(&self) -> &[NodeInfo] {
        &self.nodes
    }

    /// Starts every node and waits for a primary. Each node's port has been
    /// held since it was picked, so no other process can have taken it.
    fn setup(&mut self) -> Result<(), DbError> {
        let started = self.start_all_and_wait();
        if started.is_err() {
            self.processes.stop_all();
        }
        started
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

    fn as_crash(&self) -> Option<&dyn Crash> {
        Some(&self.api)
    }

    fn as_clock(&self) -> Option<&dyn Clock> {
        Some(&self.api)
    }

    fn as_primary(&self) -> Option<&dyn Primary> {
        Some(&self.api)
    }

    fn as_settled(&self) -> Option<&dyn Settled> {
        Some(&self.api)
    }

    fn as_log_files(&self) -> Option<&dyn LogFiles> {
        Some(self)
    }

    fn pids(&self) -> Vec<(String, u32)> {
        self.processes.pids()
    }
}

impl Kill for TargetNodeDb {
    fn kill(&mut self, node: &str) -> Result<(), DbError> {
        self.node(node)?;
        if self.processes.pid(node).is_some() {
            self.processes.kill(node);
            self.hold_port(node);
        }
        Ok(())
    }

    fn start(&mut self, node: &str) -> Result<(), DbError> {
        self.node(node)?;
        if self.processes.is_alive(node) {
            return Ok(());
        }
        // It died on its own (say, an admin crash): reap it first.
        self.processes.kill(node);
        self.spawn(node)?;
        self.wait_until_answering(&[node.to_string()], false)
    }
}

impl Pause for TargetNodeDb {
    fn pause(&mut self, node: &str) -> Result<(), DbError> {
        self.node(node)?;
        signal_node(&mut self.processes, node, Signal::SIGSTOP, true)
    }

    fn resume(&mut self, node: &str) -> Result<(), DbError> {
        self.node(node)?;
        signal_node(&mut self.processes, node, Signal::SIGCONT, false)
    }
}

impl LogFiles for TargetNodeDb {
    fn log_files(&self) -> Vec<(String, PathBuf)> {
        self.nodes
            .iter()
            .map(|n| (n.id.clone(), self.log_file(&n.id)))
            .collect()
    }
}

impl Drop for TargetNodeDb {
    fn drop(&mut self) {
        self.processes.stop_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_carry_modes_peers_admin_and_extras() {
        let mut config = TargetNodeConfig::new(3, "/tmp/run");
        config.binary = NodeBinary::Path("/bin/true".into());
        config.modes.write_concern = WriteConcern::One;
        config.extra_args = vec!["--heartbeat-ms".into(), "20".into()];
        let db = TargetNodeDb::new(config).unwrap();
        let args = db.node_args("n2").unwrap().join(" ");
        assert!(args.contains("--id n2"), "{args}");
        assert!(args.contains("--write-concern one"), "{args}");
        assert!(args.contains("--heartbeat-ms 20"), "{args}");
        assert!(args.contains("--admin"), "{args}");
        assert!(args.contains("--data-dir /tmp/run/nodes/n2/data"), "{args}");
        let peers = format!("n1={},n3={}", db.nodes()[0].url, db.nodes()[2].url);
        assert!(args.contains(&peers), "{args}");
        assert_eq!(db.log_file("n2"), PathBuf::from("/tmp/run/nodes/n2.log"));
    }

    #[test]
    fn a_bad_extra_flag_is_a_config_error() {
        let mut config = TargetNodeConfig::new(3, "/tmp/run");
        config.extra_args = vec!["--no-such-flag".into()];
        let err = TargetNodeDb::new(config).err().unwrap();
        assert!(matches!(err, DbError::Config(_)), "{err}");
        assert!(err.to_string().contains("--no-such-flag"), "{err}");
    }
}
