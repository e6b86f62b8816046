//! [`EtcdDb`]: a cluster of etcd members as child processes.
//!
//! Member `nI` runs as `etcd --name nI --data-dir RUN/nodes/nI/data
//! --listen-client-urls URL --advertise-client-urls URL
//! --listen-peer-urls PEER --initial-advertise-peer-urls PEER
//! --initial-cluster n1=PEER1,... --initial-cluster-state new
//! --initial-cluster-token TOKEN`, its output appended to `RUN/nodes/nI.log`,
//! on loopback ports picked free (a client and a peer port per member), or,
//! placed in per-node network namespaces ([`EtcdDb::in_namespaces`]), on
//! its own address with etcd's usual ports 2379 and 2380 — the placement
//! partitions need, since etcd cannot choose the source address of its peer
//! connections. A killed member restarts on the same data dir and flags
//! (etcd ignores the initial-cluster flags once its data dir holds a
//! member). On remote hosts ([`EtcdDb::on_hosts`], `--hosts`) each member
//! runs on its host's address, ports 2379 and 2380, its data and log in
//! `/tmp/faultline/<run>/nI/` there, fetched back at teardown.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use super::status;
use crate::client::BoxFuture;
use crate::placement::Placement;
use crate::system::db::{
    loopback_nodes, node_ids, Db, DbError, Kill, LogFiles, NodeInfo, Pause, Primary, Settled,
};
use crate::system::members::Members;
use crate::system::process::{free_ports, io_error, log_path, Processes};

/// The etcd server binary Debian's `etcd-server` installs.
pub const ETCD_BIN: &str = "/usr/bin/etcd";
/// How long one readiness probe waits for a member's status.
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);
/// Pause between readiness probes.
const PROBE_INTERVAL: Duration = Duration::from_millis(100);

/// How to run an etcd cluster.
#[derive(Clone, Debug)]
pub struct EtcdConfig {
    /// Number of members (`n1`..`nN`).
    pub nodes: usize,
    /// The etcd executable.
    pub binary: PathBuf,
    /// The run directory: data dirs `RUN/nodes/<id>/data`, logs
    /// `RUN/nodes/<id>.log`.
    pub run_dir: PathBuf,
    /// The `--initial-cluster-token`, distinct per run.
    pub token: String,
    /// How long [`Db::setup`] and [`Kill::start`] wait for the members.
    pub ready_timeout: Duration,
    /// How long a stop waits after SIGTERM before SIGKILL.
    pub stop_grace: Duration,
    /// Serve the v2 API beside v3 (`--enable-v2`), for clients that speak
    /// only v2 (Patroni's `etcd` store).
    pub enable_v2: bool,
}

impl EtcdConfig {
    /// `nodes` members of [`ETCD_BIN`], ready within 30 s, stopped with a 5 s
    /// grace.
    pub fn new(nodes: usize, run_dir: impl Into<PathBuf>, token: String) -> EtcdConfig {
        EtcdConfig {
            nodes,
            binary: PathBuf::from(ETCD_BIN),
            run_dir: run_dir.into(),
            token,
            ready_timeout: Duration::from_secs(30),
            stop_grace: Duration::from_secs(5),
            enable_v2: false,
        }
    }
}

/// etcd's client port, used on a member's own address.
const CLIENT_PORT: u16 = 2379;
/// etcd's peer port, used on a member's own address.
const PEER_PORT: u16 = 2380;

/// A cluster of etcd members. Stops every member when dropped.
pub struct EtcdDb {
    config: EtcdConfig,
    nodes: Vec<NodeInfo>,
    peer_urls: Vec<String>,
    processes: Members,
    /// Where the members run, when not on loopback.
    placement: Option<Box<dyn Placement>>,
    /// Members paused and not resumed since.
    paused: BTreeSet<String>,
}

impl EtcdDb {
    /// Checks that the binary exists and picks the ports; starts nothing.
    pub fn new(config: EtcdConfig) -> Result<EtcdDb, DbError> {
        if !config.binary.is_file() {
            return Err(DbError::Config(format!(
                "{} not found: install etcd (apt-get install etcd-server etcd-client)",
                config.binary.display()
            )));
        }
        let (nodes, peer_urls) = place(config.nodes)?;
        Ok(EtcdDb {
            processes: Members::Local(Processes::new(config.stop_grace)?),
            config,
            nodes,
            peer_urls,
            placement: None,
            paused: BTreeSet::new(),
        })
    }

    /// The members placed by `placement` (per-node network namespaces):
    /// each on its own address, ports 2379 and 2380.
    pub fn in_namespaces(
        config: EtcdConfig,
        placement: Box<dyn Placement>,
    ) -> Result<EtcdDb, DbError> {
        let mut db = EtcdDb::new(config)?;
        let mut nodes = Vec::new();
        let mut peers = Vec::new();
        for id in node_ids(db.config.nodes) {
            let addr = placement
                .address(&id)
                .map_err(|e| DbError::Config(e.to_string()))?;
            let client = SocketAddr::new(addr, CLIENT_PORT);
            nodes.push(NodeInfo {
                id,
                url: format!("http://{client}"),
                port: CLIENT_PORT,
            });
            peers.push(format!("http://{}", SocketAddr::new(addr, PEER_PORT)));
        }
        (db.nodes, db.peer_urls) = (nodes, peers);
        db.placement = Some(placement);
        Ok(db)
    }

    /// The members on remote hosts (`--hosts`), one per host, each on the
    /// host's address with etcd's usual ports; `config.binary` must be
    /// installed on every host.
    pub fn on_hosts(
        config: EtcdConfig,
        hosts: std::sync::Arc<crate::remote::RemoteHosts>,
    ) -> Result<EtcdDb, DbError> {
        let grace = config.stop_grace;
        let logs = config.run_dir.join("nodes");
        let mut db = EtcdDb::in_namespaces(config, Box::new(HostAddresses(hosts.clone())))?;
        db.placement = None;
        db.processes = Members::Remote(crate::remote::members::RemoteMembers::new(
            hosts, grace, logs,
        ));
        Ok(db)
    }

    /// `node`'s data dir (on its host, for remote members).
    pub fn data_dir(&self, node: &str) -> PathBuf {
        match &self.processes {
            Members::Remote(r) => PathBuf::from(format!("{}/data", r.hosts().node_dir(node))),
            Members::Local(_) => self.config.run_dir.join("nodes").join(node).join("data"),
        }
    }

    /// `node`'s log file.
    pub fn log_file(&self, node: &str) -> PathBuf {
        log_path(&self.config.run_dir.join("nodes"), node)
    }

    /// The flags of member `node`.
    pub fn member_args(&self, node: &str) -> Result<Vec<String>, DbError> {
        let index = self.index(node)?;
        let client = &self.nodes[index].url;
        let peer = &self.peer_urls[index];
        let cluster: Vec<String> = self
            .nodes
            .iter()
            .zip(&self.peer_urls)
            .map(|(n, p)| format!("{}={p}", n.id))
            .collect();
        let data_dir = self.data_dir(node).display().to_string();
        let pairs = [
            ("--name", node.to_string()),
            ("--data-dir", data_dir),
            ("--listen-client-urls", client.clone()),
            ("--advertise-client-urls", client.clone()),
            ("--listen-peer-urls", peer.clone()),
            ("--initial-advertise-peer-urls", peer.clone()),
            ("--initial-cluster", cluster.join(",")),
            ("--initial-cluster-state", "new".into()),
            ("--initial-cluster-token", self.config.token.clone()),
        ];
        let mut args: Vec<String> = pairs
            .into_iter()
            .flat_map(|(k, v)| [k.to_string(), v])
            .collect();
        if self.config.enable_v2 {
            args.push("--enable-v2=true".into());
        }
        Ok(args)
    }

    fn index(&self, node: &str) -> Result<usize, DbError> {
        self.nodes
            .iter()
            .position(|n| n.id == node)
            .ok_or_else(|| DbError::UnknownNode(node.to_string()))
    }

    fn spawn(&mut self, node: &str) -> Result<(), DbError> {
        let data_dir = self.data_dir(node);
        if !self.processes.is_remote() {
            ensure_dir(&data_dir)?;
        }
        let mut command = Command::new(&self.config.binary);
        command.args(self.member_args(node)?);
        if let Some(placement) = &self.placement {
            command = placement
                .command(node, command)
                .map_err(|e| DbError::Config(e.to_string()))?;
        }
        let log = self.log_file(node);
        self.processes.start(node, command, &log)?;
        Ok(())
    }

    /// Waits until every member in `ids` answers its status (and, with
    /// `need_leader`, all of them know one leader), failing early when one
    /// exits.
    fn wait_until_answering(&mut self, ids: &[String], need_leader: bool) -> Result<(), DbError> {
        let started = Instant::now();
        let deadline = started + self.config.ready_timeout;
        let waited_for: Vec<NodeInfo> = self
            .nodes
            .iter()
            .filter(|n| ids.contains(&n.id))
            .cloned()
            .collect();
        let runtime = crate::system::db::probe_runtime()?;
        loop {
            self.fail_if_exited(ids)?;
            let answers = runtime.block_on(status::statuses(&waited_for, PROBE_TIMEOUT));
            let ready = match need_leader {
                true => status::one_leader(&answers).is_some(),
                false => answers.iter().all(Result::is_ok),
            };
            if ready {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(DbError::NotReady {
                    nodes: ids.join(", "),
                    waited: started.elapsed(),
                    detail: status::describe(&waited_for, &answers),
                    logs: ids.iter().map(|id| self.log_file(id)).collect(),
                });
            }
            thread::sleep(PROBE_INTERVAL);
        }
    }

    fn fail_if_exited(&mut self, ids: &[String]) -> Result<(), DbError> {
        for id in ids {
            let exited = self.processes.exit_status(id);
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

    fn start_all_and_wait(&mut self) -> Result<(), DbError> {
        let ids: Vec<String> = self.nodes.iter().map(|n| n.id.clone()).collect();
        for id in &ids {
            self.spawn(id)?;
        }
        self.wait_until_answering(&ids, true)
    }
}

/// The members' client nodes and peer URLs, on free loopback ports.
fn place(count: usize) -> Result<(Vec<NodeInfo>, Vec<String>), DbError> {
    let nodes = loopback_nodes(count)?;
    let peers = free_ports(count)?
        .into_iter()
        .map(|p| format!("http://127.0.0.1:{p}"))
        .collect();
    Ok((nodes, peers))
}

fn ensure_dir(dir: &Path) -> Result<(), DbError> {
    std::fs::create_dir_all(dir).map_err(|e| io_error(dir, e))
}

impl Db for EtcdDb {
    fn nodes(&self) -> &[NodeInfo] {
        &self.nodes
    }

    /// Starts every member and waits for a leader they all know. On
    /// loopback, on a member exiting while starting (a port taken since it
    /// was picked: etcd cannot inherit a held socket), starts once more on
    /// fresh ports and fresh data dirs; in namespaces every member has its
    /// own address, so there is nothing to retry.
    fn setup(&mut self) -> Result<(), DbError> {
        if let Members::Remote(r) = &self.processes {
            r.hosts()
                .prepare_dirs()
                .map_err(|e| DbError::Remote(e.to_string()))?;
        }
        let first = self.start_all_and_wait();
        let Err(error) = first else { return Ok(()) };
        let _ = self.processes.stop_all();
        let placed = self.placement.is_some() || self.processes.is_remote();
        if !matches!(error, DbError::Exited { .. }) || placed {
            return Err(error);
        }
        for node in &self.nodes {
            let dir = self.data_dir(&node.id);
            let _ = std::fs::remove_dir_all(&dir);
        }
        (self.nodes, self.peer_urls) = place(self.config.nodes)?;
        let second = self.start_all_and_wait();
        if second.is_err() {
            let _ = self.processes.stop_all();
        }
        second
    }

    fn teardown(&mut self) -> Result<(), DbError> {
        self.processes.stop_all()
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

impl Kill for EtcdDb {
    fn kill(&mut self, node: &str) -> Result<(), DbError> {
        self.index(node)?;
        self.processes.kill(node);
        self.paused.remove(node);
        Ok(())
    }

    fn start(&mut self, node: &str) -> Result<(), DbError> {
        self.index(node)?;
        if self.processes.is_alive(node) {
            return Ok(());
        }
        self.processes.kill(node);
        self.spawn(node)?;
        // A member answers clients only once it has published itself
        // through a quorum: with most members down or paused, waiting for
        // it would wait for ever (the nemesis starts the others after it),
        // so it is only started then.
        let ids: Vec<String> = self.nodes.iter().map(|n| n.id.clone()).collect();
        let working = ids
            .iter()
            .filter(|id| self.processes.is_alive(id) && !self.paused.contains(*id))
            .count();
        if working <= self.nodes.len() / 2 {
            return Ok(());
        }
        self.wait_until_answering(&[node.to_string()], false)
    }
}

impl Pause for EtcdDb {
    fn pause(&mut self, node: &str) -> Result<(), DbError> {
        self.index(node)?;
        self.processes.signal(node, Signal::SIGSTOP, true)?;
        self.paused.insert(node.to_string());
        Ok(())
    }

    fn resume(&mut self, node: &str) -> Result<(), DbError> {
        self.index(node)?;
        self.paused.remove(node);
        self.processes.signal(node, Signal::SIGCONT, false)
    }
}

impl Primary for EtcdDb {
    /// The leader, as the members that answer report it (any of them).
    fn primary(&self) -> BoxFuture<'static, Option<String>> {
        let nodes = self.nodes.clone();
        Box::pin(async move {
            let answers = status::statuses(&nodes, PROBE_TIMEOUT).await;
            status::reported_leader(&nodes, &answers)
        })
    }
}

impl Settled for EtcdDb {
    /// Every member answers and all name the same leader.
    fn settled(&self) -> BoxFuture<'static, bool> {
        let nodes = self.nodes.clone();
        Box::pin(async move {
            let answers = status::statuses(&nodes, PROBE_TIMEOUT).await;
            status::one_leader(&answers).is_some()
        })
    }
}

impl LogFiles for EtcdDb {
    fn log_files(&self) -> Vec<(String, PathBuf)> {
        self.nodes
            .iter()
            .map(|n| (n.id.clone(), self.log_file(&n.id)))
            .collect()
    }
}

impl Drop for EtcdDb {
    fn drop(&mut self) {
        let _ = self.processes.stop_all();
    }
}

/// The hosts' addresses as a placement, for [`EtcdDb::on_hosts`]'s
/// member URLs (commands reach the hosts through the members' sessions).
struct HostAddresses(std::sync::Arc<crate::remote::RemoteHosts>);

impl Placement for HostAddresses {
    fn name(&self) -> &'static str {
        "remote hosts"
    }

    fn address(&self, node: &str) -> Result<std::net::IpAddr, crate::placement::PlacementError> {
        self.0.address(node)
    }

    fn command(
        &self,
        node: &str,
        command: Command,
    ) -> Result<Command, crate::placement::PlacementError> {
        self.0.command(node, command)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_flags_name_every_member_in_the_initial_cluster() {
        let mut config = EtcdConfig::new(3, "/tmp/run", "tok".into());
        config.binary = PathBuf::from("/bin/true");
        let db = EtcdDb::new(config).unwrap();
        let args = db.member_args("n2").unwrap().join(" ");
        assert!(args.contains("--name n2"), "{args}");
        assert!(args.contains("--data-dir /tmp/run/nodes/n2/data"), "{args}");
        assert!(args.contains("--initial-cluster-state new"), "{args}");
        assert!(args.contains("--initial-cluster-token tok"), "{args}");
        assert!(args.contains(&format!("n1={}", db.peer_urls[0])), "{args}");
        assert!(args.contains(&format!("n3={}", db.peer_urls[2])), "{args}");
        assert!(args.contains(&db.nodes()[1].url), "{args}");
    }

    #[test]
    fn a_missing_binary_says_what_to_install() {
        let mut config = EtcdConfig::new(3, "/tmp/run", "tok".into());
        config.binary = PathBuf::from("/no/such/etcd");
        let err = EtcdDb::new(config).err().unwrap().to_string();
        assert!(err.contains("apt-get install etcd-server"), "{err}");
    }
}
