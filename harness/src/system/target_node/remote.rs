//! [`RemoteTargetNodeDb`]: target-node with one node per remote host
//! (`--hosts`), over [`crate::remote`].
//!
//! Node `nI` runs on its host as `/tmp/faultline/bin/faultline-<hash>
//! node --id nI --listen HOST:7411 --peers nJ=http://HOSTJ:7411,...
//! --data-dir /tmp/faultline/<run>/nI/data <modes> --admin`, under the
//! session watchdog; a fixed port, since each node has a host of its own.
//! Kill and pause are signals to its process group there; at teardown its
//! log and data come back into `RUN/nodes/` and the host is cleaned.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use target_node::mode::Modes;

use super::api::NodeApi;
use super::status;
use crate::remote::members::RemoteMembers;
use crate::remote::RemoteHosts;
use crate::system::db::{
    probe_runtime, Clock, Crash, Db, DbError, Kill, LogFiles, NodeInfo, Pause, Primary, Settled,
};

/// The port every node listens on, on its own host.
pub const NODE_PORT: u16 = 7411;
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);
const PROBE_INTERVAL: Duration = Duration::from_millis(100);

/// A target-node cluster on remote hosts. Stops every node and cleans
/// the hosts when torn down or dropped.
pub struct RemoteTargetNodeDb {
    hosts: Arc<RemoteHosts>,
    nodes: Vec<NodeInfo>,
    modes: Modes,
    exe: Option<String>,
    members: RemoteMembers,
    api: NodeApi,
    log_dir: PathBuf,
    ready_timeout: Duration,
}

fn remote(e: impl std::fmt::Display) -> DbError {
    DbError::Remote(e.to_string())
}

impl RemoteTargetNodeDb {
    /// The nodes on `hosts`, in `modes`; logs come back into `log_dir`.
    pub fn new(hosts: Arc<RemoteHosts>, modes: Modes, log_dir: PathBuf) -> RemoteTargetNodeDb {
        let nodes: Vec<NodeInfo> = hosts
            .addresses()
            .into_iter()
            .map(|(id, ip)| NodeInfo {
                url: format!("http://{}", std::net::SocketAddr::new(ip, NODE_PORT)),
                port: NODE_PORT,
                id,
            })
            .collect();
        RemoteTargetNodeDb {
            api: NodeApi::new(&nodes),
            members: RemoteMembers::new(hosts.clone(), Duration::from_secs(5), log_dir.clone()),
            hosts,
            nodes,
            modes,
            exe: None,
            log_dir,
            ready_timeout: Duration::from_secs(30),
        }
    }

    /// `node`'s command line on its host.
    fn argv(&self, node: &str) -> Result<Vec<String>, DbError> {
        let exe = self
            .exe
            .clone()
            .ok_or_else(|| remote("setup has not run"))?;
        let info = self
            .nodes
            .iter()
            .find(|n| n.id == node)
            .ok_or_else(|| DbError::UnknownNode(node.to_string()))?;
        let listen = info.url.trim_start_matches("http://").to_string();
        let peers: Vec<String> = self
            .nodes
            .iter()
            .filter(|n| n.id != node)
            .map(|n| format!("{}={}", n.id, n.url))
            .collect();
        let data = format!("{}/data", self.hosts.node_dir(node));
        let mut argv = vec![exe, "node".into(), "--id".into(), node.into()];
        argv.extend(["--listen".into(), listen, "--data-dir".into(), data]);
        let m = self.modes;
        for (flag, value) in [
            ("--write-concern", value_name(m.write_concern)),
            ("--election", value_name(m.election)),
            ("--reads", value_name(m.reads)),
            ("--topology", value_name(m.topology)),
            ("--fsync", value_name(m.fsync)),
        ] {
            argv.extend([flag.to_string(), value]);
        }
        argv.push("--admin".into());
        if !peers.is_empty() {
            argv.extend(["--peers".into(), peers.join(",")]);
        }
        Ok(argv)
    }

    fn spawn(&mut self, node: &str) -> Result<(), DbError> {
        let argv = self.argv(node)?;
        let mut command = std::process::Command::new(&argv[0]);
        command.args(&argv[1..]);
        self.members.start(node, &command)
    }

    /// Waits until every node in `ids` answers (and, with `need_primary`,
    /// a primary is known), failing early when one exits.
    fn wait_until_answering(&mut self, ids: &[String], need_primary: bool) -> Result<(), DbError> {
        let started = Instant::now();
        let waited: Vec<NodeInfo> = self
            .nodes
            .iter()
            .filter(|n| ids.contains(&n.id))
            .cloned()
            .collect();
        let runtime = probe_runtime()?;
        loop {
            for id in ids {
                if let Some(status) = self.members.exit_status(id) {
                    return Err(DbError::Exited {
                        node: id.clone(),
                        status,
                        log: self.hosts.log_path().to_path_buf(),
                    });
                }
            }
            let answers = runtime.block_on(status::statuses(&waited, PROBE_TIMEOUT));
            if status::all_ready(&answers, need_primary) {
                return Ok(());
            }
            if started.elapsed() >= self.ready_timeout {
                return Err(DbError::NotReady {
                    nodes: ids.join(", "),
                    waited: started.elapsed(),
                    detail: status::describe(&waited, &answers),
                    logs: vec![self.hosts.log_path().to_path_buf()],
                });
            }
            thread::sleep(PROBE_INTERVAL);
        }
    }
}

/// A mode's name on the command line.
fn value_name<T: clap::ValueEnum>(value: T) -> String {
    value
        .to_possible_value()
        .map(|v| v.get_name().to_string())
        .unwrap_or_default()
}

impl Db for RemoteTargetNodeDb {
    fn nodes(&self) -> &[NodeInfo] {
        &self.nodes
    }

    /// Uploads this executable, makes the nodes' directories, starts every
    /// node and waits for a primary.
    fn setup(&mut self) -> Result<(), DbError> {
        self.exe = Some(self.hosts.prepare().map_err(remote)?);
        let ids: Vec<String> = self.nodes.iter().map(|n| n.id.clone()).collect();
        let started = ids
            .iter()
            .try_for_each(|id| self.spawn(id))
            .and_then(|()| self.wait_until_answering(&ids, true));
        if started.is_err() {
            let _ = self.members.finish();
        }
        started
    }

    fn teardown(&mut self) -> Result<(), DbError> {
        self.members.finish()
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

    fn clock_offsets(&self) -> BTreeMap<String, i64> {
        self.hosts.clock_offsets()
    }
}

impl Kill for RemoteTargetNodeDb {
    fn kill(&mut self, node: &str) -> Result<(), DbError> {
        self.members.kill(node);
        Ok(())
    }

    fn start(&mut self, node: &str) -> Result<(), DbError> {
        if self.members.is_alive(node) {
            return Ok(());
        }
        // It died on its own (say, an admin crash): end its session first.
        self.members.kill(node);
        self.spawn(node)?;
        self.wait_until_answering(&[node.to_string()], false)
    }
}

impl Pause for RemoteTargetNodeDb {
    fn pause(&mut self, node: &str) -> Result<(), DbError> {
        self.members.signal(node, "STOP", true)
    }

    fn resume(&mut self, node: &str) -> Result<(), DbError> {
        self.members.signal(node, "CONT", false)
    }
}

impl LogFiles for RemoteTargetNodeDb {
    fn log_files(&self) -> Vec<(String, PathBuf)> {
        self.nodes
            .iter()
            .map(|n| (n.id.clone(), self.log_dir.join(format!("{}.log", n.id))))
            .collect()
    }
}
