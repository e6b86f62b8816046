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
use crate::remote::session::Session;
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
    sessions: BTreeMap<String, Session>,
    api: NodeApi,
    log_dir: PathBuf,
    ready_timeout: Duration,
    stop_grace: Duration,
    torn_down: bool,
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
            hosts,
            nodes,
            modes,
            exe: None,
            sessions: BTreeMap::new(),
            log_dir,
            ready_timeout: Duration::from_secs(30),
            stop_grace: Duration::from_secs(5),
            torn_down: false,
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
        let session = Session::start(&self.hosts, node, &argv).map_err(remote)?;
        self.sessions.insert(node.to_string(), session);
        Ok(())
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
                if let Some(status) = self.sessions.get_mut(id).and_then(|s| s.exit_status()) {
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

    /// Stops every node, fetches logs and data, and cleans the hosts.
    fn stop_and_clean(&mut self) -> Result<(), DbError> {
        if self.torn_down {
            return Ok(());
        }
        self.torn_down = true;
        for (_, session) in std::mem::take(&mut self.sessions) {
            session.stop(&self.hosts, self.stop_grace);
        }
        if self.exe.is_some() {
            self.fetch_back();
        }
        self.hosts.clean().map_err(remote)
    }

    /// Each node's log and data dir, copied into the run dir (best effort:
    /// what fails is noted in the control log).
    fn fetch_back(&self) {
        for node in self.nodes.iter().map(|n| n.id.clone()) {
            let dir = self.hosts.node_dir(&node);
            let log = self.log_dir.join(format!("{node}.log"));
            let data = self.log_dir.join(&node);
            let _ = std::fs::create_dir_all(&data);
            for (from, to) in [
                (format!("{dir}/node.log"), log),
                (format!("{dir}/data"), data),
            ] {
                if let Err(e) = self.hosts.fetch(&node, &from, &to) {
                    if let Ok(control) = self.hosts.control(&node) {
                        control.note(&format!("fetching {from}: {e}"));
                    }
                }
            }
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
            let _ = self.stop_and_clean();
        }
        started
    }

    fn teardown(&mut self) -> Result<(), DbError> {
        self.stop_and_clean()
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
        if let Some(mut session) = self.sessions.remove(node) {
            session.kill(&self.hosts);
        }
        Ok(())
    }

    fn start(&mut self, node: &str) -> Result<(), DbError> {
        let alive = self
            .sessions
            .get_mut(node)
            .is_some_and(|s| s.exit_status().is_none());
        if alive {
            return Ok(());
        }
        self.sessions.remove(node);
        self.spawn(node)?;
        self.wait_until_answering(&[node.to_string()], false)
    }
}

impl Pause for RemoteTargetNodeDb {
    fn pause(&mut self, node: &str) -> Result<(), DbError> {
        match self.hosts.signal(node, "STOP").map_err(remote)? {
            true => Ok(()),
            false => Err(DbError::NotRunning(node.to_string())),
        }
    }

    fn resume(&mut self, node: &str) -> Result<(), DbError> {
        self.hosts.signal(node, "CONT").map_err(remote)?;
        Ok(())
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

impl Drop for RemoteTargetNodeDb {
    fn drop(&mut self) {
        let _ = self.stop_and_clean();
    }
}
