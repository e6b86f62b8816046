//! Remote hosts: a node per host over the real OpenSSH, as Jepsen runs its
//! nodes. The seam's placement layer for hosts that are not this machine.
//!
//! # On each host
//! - `/tmp/faultline/bin/faultline-<sha256 prefix>`: this executable,
//!   uploaded by hash (sent once, kept as a cache between runs).
//! - `/tmp/faultline/<run>/<node>/`: the node's data, `node.log` and
//!   `pid` (its process group while it runs); fetched back into the run
//!   dir and removed at teardown (unless `--keep-remote`).
//! - the nft table `inet faultline_<run>` while a partition is in force.
//!
//! # Layout
//! - [`options`]: the test keys and flags (`hosts`, `ssh-key`, ...).
//! - [`session`]: a node started on its host under a watchdog that kills
//!   it when the controller's connection dies.
//! - [`members`]: a cluster's nodes on their hosts: start, kill, signal,
//!   and the end of a run (stop, fetch back, clean).
//! - [`rules`]: partitions as nft rules in the run's own table.
//! - [`RemoteHosts`]: one master per host, setup (upload, directories,
//!   clock offsets), signals, fetches and cleanup; a [`Placement`].

pub mod members;
pub mod options;
pub mod rules;
pub mod session;

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::net::{IpAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

pub use options::{RemoteArgs, RemoteOptions};

use crate::placement::{Placement, PlacementError};
use crate::ssh::{quote, Control, Host, SshError, SshOptions};
use crate::system::process::Spawner;

/// Where everything faultline puts on a host lives.
pub const REMOTE_ROOT: &str = "/tmp/faultline";
/// How long a host's master may take to come up.
const CONNECT_LIMIT: Duration = Duration::from_secs(15);
/// The bound of every short remote command (mkdir, kill, nft, rm).
pub const COMMAND_LIMIT: Duration = Duration::from_secs(15);
/// The bound of an upload or a fetch.
const COPY_LIMIT: Duration = Duration::from_secs(120);

/// Why the hosts could not be used.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    /// ssh or scp failed.
    #[error(transparent)]
    Ssh(#[from] SshError),
    /// A host name does not resolve to an address.
    #[error("host {host}: cannot resolve its address: {reason}")]
    Resolve {
        /// The host.
        host: String,
        /// Why.
        reason: String,
    },
    /// A local file or directory could not be used.
    #[error("{path}: {source}")]
    Local {
        /// The path.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A node that is not on any host.
    #[error("no host for node {0:?}")]
    UnknownNode(String),
}

/// What `faultline cleanup` needs to clean the hosts of a killed run
/// (kept in the run's `state.json`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteState {
    /// The run's name on the hosts (`/tmp/faultline/<run>`).
    pub run: String,
    /// Node → its host.
    pub hosts: BTreeMap<String, Host>,
    /// `--ssh-key`.
    pub ssh_key: Option<PathBuf>,
    /// `--ssh-user`.
    pub ssh_user: Option<String>,
    /// `--ssh-option`s.
    pub ssh_options: Vec<String>,
}

impl RemoteState {
    /// The state of a run on `options`' hosts, nodes `n1`.. in order.
    pub fn new(run: String, options: &RemoteOptions, nodes: usize) -> Result<RemoteState, String> {
        let hosts = options.parsed_hosts(nodes)?;
        Ok(RemoteState {
            run,
            hosts: crate::system::db::node_ids(nodes)
                .into_iter()
                .zip(hosts)
                .collect(),
            ssh_key: options.ssh_key.clone(),
            ssh_user: options.ssh_user.clone(),
            ssh_options: options.ssh_option.clone(),
        })
    }

    fn ssh(&self) -> SshOptions {
        SshOptions {
            key: self.ssh_key.clone(),
            user: self.ssh_user.clone(),
            options: self.ssh_options.clone(),
        }
    }
}

/// The run's name on the hosts: its run directory's name (a timestamp) and
/// this harness's pid, in characters safe in a path and an nft table name.
pub fn run_name(run_dir: &Path) -> String {
    run_name_of(run_dir, std::process::id())
}

/// [`run_name`] of the harness with pid `pid` (for tests and tools that
/// look at a run from outside).
pub fn run_name_of(run_dir: &Path, pid: u32) -> String {
    let stamp = run_dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let clean: String = stamp
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    format!("{clean}_{pid}")
}

/// One node's host: its master and its address.
struct Site {
    control: Control,
    address: IpAddr,
}

/// The hosts of a run, one per node, each behind one master connection.
/// Dropping it closes the masters (it does not clean the hosts: see
/// [`RemoteHosts::clean`]).
pub struct RemoteHosts {
    state: RemoteState,
    keep: bool,
    sites: BTreeMap<String, Site>,
    exe: Mutex<Option<String>>,
    offsets: Mutex<BTreeMap<String, i64>>,
    log: Arc<Mutex<File>>,
    log_path: PathBuf,
    sockets: PathBuf,
    // Forks the masters and the node sessions; last to go (fields drop in
    // order), so the masters die with the harness even on SIGKILL.
    spawner: Spawner,
}

impl RemoteHosts {
    /// Opens a master to every host in `state`, logging to `log_path`.
    pub fn connect(
        state: RemoteState,
        keep: bool,
        log_path: &Path,
    ) -> Result<RemoteHosts, RemoteError> {
        let local = |path: &Path| {
            let path = path.to_path_buf();
            move |source| RemoteError::Local { path, source }
        };
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(log_path)
            .map_err(local(log_path))?;
        let log = Arc::new(Mutex::new(file));
        // A unix socket path has at most 108 bytes: a short directory.
        let sockets = std::env::temp_dir().join(format!("fl-ssh-{}", state.run));
        // A killed run's sockets are stale (its masters died with it).
        let _ = std::fs::remove_dir_all(&sockets);
        std::fs::create_dir_all(&sockets).map_err(local(&sockets))?;
        let spawner = Spawner::new().map_err(|e| RemoteError::Local {
            path: sockets.clone(),
            source: std::io::Error::other(e.to_string()),
        })?;
        let mut hosts = RemoteHosts {
            keep,
            sites: BTreeMap::new(),
            exe: Mutex::new(None),
            offsets: Mutex::new(BTreeMap::new()),
            log,
            log_path: log_path.to_path_buf(),
            sockets,
            spawner,
            state,
        };
        for (node, host) in hosts.state.hosts.clone() {
            let address = resolve(&host)?;
            let control = Control::connect(
                host,
                hosts.state.ssh(),
                &hosts.sockets,
                hosts.log.clone(),
                CONNECT_LIMIT,
                |c| hosts.spawner.spawn(c),
            )?;
            hosts.sites.insert(node, Site { control, address });
        }
        Ok(hosts)
    }

    /// What `state.json` keeps of these hosts.
    pub fn state(&self) -> &RemoteState {
        &self.state
    }

    /// The run's control log.
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    fn site(&self, node: &str) -> Result<&Site, RemoteError> {
        self.sites
            .get(node)
            .ok_or_else(|| RemoteError::UnknownNode(node.to_string()))
    }

    /// `node`'s master connection.
    pub fn control(&self, node: &str) -> Result<&Control, RemoteError> {
        Ok(&self.site(node)?.control)
    }

    /// The nodes, in order, with their hosts' addresses.
    pub fn addresses(&self) -> BTreeMap<String, IpAddr> {
        self.sites
            .iter()
            .map(|(node, site)| (node.clone(), site.address))
            .collect()
    }

    /// The run's directory on every host.
    pub fn run_dir(&self) -> String {
        format!("{REMOTE_ROOT}/{}", self.state.run)
    }

    /// `node`'s directory on its host.
    pub fn node_dir(&self, node: &str) -> String {
        format!("{}/{node}", self.run_dir())
    }

    /// The run's own nft table name on every host.
    pub fn table(&self) -> String {
        format!("faultline_{}", self.state.run)
    }

    /// Setup on every host for a system installed there: each node's
    /// directory made and the host's clock offset measured.
    pub fn prepare_dirs(&self) -> Result<(), RemoteError> {
        for (node, site) in &self.sites {
            site.control.run(
                &format!("mkdir -p {}", quote(&self.node_dir(node))),
                COMMAND_LIMIT,
            )?;
            self.measure_clock(node, &site.control)?;
        }
        Ok(())
    }

    fn measure_clock(&self, node: &str, control: &Control) -> Result<(), RemoteError> {
        let offset = clock_offset(control)?;
        control.note(&format!(
            "clock offset of {node}'s host: {offset} ns (host − controller)"
        ));
        if let Ok(mut offsets) = self.offsets.lock() {
            offsets.insert(node.to_string(), offset);
        }
        Ok(())
    }

    /// Setup on every host: this executable uploaded by hash, each node's
    /// directory made, and the host's clock offset measured. Returns the
    /// executable's remote path.
    pub fn prepare(&self) -> Result<String, RemoteError> {
        let exe = std::env::current_exe().map_err(|source| RemoteError::Local {
            path: PathBuf::from("/proc/self/exe"),
            source,
        })?;
        let hash = crate::ssh::sha256_file(&exe)?;
        let remote_exe = format!("{REMOTE_ROOT}/bin/faultline-{}", &hash[..16]);
        for (node, site) in &self.sites {
            let dirs = format!(
                "mkdir -p {} {} && chmod 700 {REMOTE_ROOT}/bin",
                quote(&format!("{REMOTE_ROOT}/bin")),
                quote(&self.node_dir(node))
            );
            site.control.run(&dirs, COMMAND_LIMIT)?;
            // Named by its hash: a copy already there is this one, and is
            // never overwritten while a node runs it.
            site.control
                .upload_hashed(&exe, &hash, &remote_exe, COPY_LIMIT)?;
            self.measure_clock(node, &site.control)?;
        }
        *self.exe.lock().expect("not poisoned") = Some(remote_exe.clone());
        Ok(remote_exe)
    }

    /// Each host's clock minus the controller's, in nanoseconds, as
    /// measured at [`RemoteHosts::prepare`] (the midpoint of a round trip).
    pub fn clock_offsets(&self) -> BTreeMap<String, i64> {
        self.offsets.lock().map(|o| o.clone()).unwrap_or_default()
    }

    /// `signal` (`KILL`, `STOP`, `CONT`, `TERM`) to `node`'s process
    /// group on its host, if it runs; `false` when it was not running.
    pub fn signal(&self, node: &str, signal: &str) -> Result<bool, RemoteError> {
        let pid = format!("{}/pid", self.node_dir(node));
        let line = format!(
            "g=$(cat {} 2>/dev/null) || exit 0; [ -n \"$g\" ] || exit 0; kill -{signal} -\"$g\" 2>/dev/null && echo sent || true",
            quote(&pid)
        );
        let out = self.control(node)?.run(&line, COMMAND_LIMIT)?;
        Ok(out.stdout.contains("sent"))
    }

    /// Copies `remote` (a file or directory) from `node`'s host to `local`.
    pub fn fetch(&self, node: &str, remote: &str, local: &Path) -> Result<(), RemoteError> {
        self.control(node)?.download(remote, local, COPY_LIMIT)?;
        Ok(())
    }

    /// Cleans every host of this run: its node groups killed, its nft
    /// table deleted, and its directory removed unless kept. Every host is
    /// tried; the first error is returned.
    pub fn clean(&self) -> Result<(), RemoteError> {
        let mut first = None;
        for site in self.sites.values() {
            let line = clean_line(&self.state.run, self.keep);
            if let Err(e) = site.control.run(&line, COMMAND_LIMIT) {
                first.get_or_insert(RemoteError::from(e));
            }
        }
        first.map_or(Ok(()), Err)
    }

    /// The spawner every local ssh of this run is forked on.
    pub(crate) fn spawner(&self) -> &Spawner {
        &self.spawner
    }

    /// The control log as a child's stdout or stderr.
    pub(crate) fn log_stdio(&self) -> Stdio {
        self.log
            .lock()
            .ok()
            .and_then(|f| f.try_clone().ok())
            .map_or_else(Stdio::null, Stdio::from)
    }
}

impl Drop for RemoteHosts {
    fn drop(&mut self) {
        self.sites.clear();
        let _ = std::fs::remove_dir_all(&self.sockets);
    }
}

impl Placement for RemoteHosts {
    fn name(&self) -> &'static str {
        "remote hosts"
    }

    fn address(&self, node: &str) -> Result<IpAddr, PlacementError> {
        self.sites
            .get(node)
            .map(|s| s.address)
            .ok_or_else(|| PlacementError::UnknownNode(node.to_string()))
    }

    /// `ssh HOST -- [cd DIR &&] env K=V... PROGRAM ARGS` over the master.
    fn command(&self, node: &str, command: Command) -> Result<Command, PlacementError> {
        let site = self
            .sites
            .get(node)
            .ok_or_else(|| PlacementError::UnknownNode(node.to_string()))?;
        Ok(site.control.command(&remote_line(&command)))
    }
}

/// The test's hosts connected for run `run` (a system's deploy step),
/// logging to the run's `control.log`.
pub fn connect_for(
    spec: &crate::test_spec::TestSpec,
    run: &results::RunDir,
) -> Result<Arc<RemoteHosts>, crate::system::SystemError> {
    let state = RemoteState::new(run_name(run.path()), &spec.remote, spec.nodes)
        .map_err(|e| crate::system::SystemError::Db(crate::system::db::DbError::Config(e)))?;
    let log = run.path().join("control.log");
    let hosts =
        tokio::task::block_in_place(|| RemoteHosts::connect(state, spec.remote.keep_remote, &log))
            .map_err(|e| {
                crate::system::SystemError::Db(crate::system::db::DbError::Remote(e.to_string()))
            })?;
    Ok(Arc::new(hosts))
}

/// The partitions between the hosts, when the test's faults need them.
pub fn rules_for(
    spec: &crate::test_spec::TestSpec,
    hosts: Arc<RemoteHosts>,
) -> Option<Box<dyn nemesis::net::Net>> {
    crate::package::needs_net(&spec.nemesis)
        .then(|| Box::new(rules::HostRules::new(hosts)) as Box<dyn nemesis::net::Net>)
}

/// `command` as one line for the remote shell, every word quoted.
pub fn remote_line(command: &Command) -> String {
    let mut words: Vec<String> = Vec::new();
    let envs: Vec<String> = command
        .get_envs()
        .filter_map(|(k, v)| Some(format!("{}={}", k.to_str()?, v?.to_str()?)))
        .collect();
    if !envs.is_empty() {
        words.push("env".into());
        words.extend(envs);
    }
    words.push(command.get_program().to_string_lossy().into_owned());
    words.extend(command.get_args().map(|a| a.to_string_lossy().into_owned()));
    let line: Vec<String> = words.iter().map(|w| quote(w)).collect();
    match command.get_current_dir() {
        Some(dir) => format!("cd {} && {}", quote(&dir.to_string_lossy()), line.join(" ")),
        None => line.join(" "),
    }
}

/// The shell line that cleans run `run` from a host: each node's group
/// killed (resumed first: a paused group dies only once resumed), the
/// run's nft table deleted (only ours: never a flush), the run's
/// directory removed unless `keep`.
pub fn clean_line(run: &str, keep: bool) -> String {
    let dir = format!("{REMOTE_ROOT}/{run}");
    let mut line = format!(
        "for p in {dir}/*/pid; do [ -f \"$p\" ] || continue; g=$(cat \"$p\"); \
         [ -n \"$g\" ] && kill -CONT -\"$g\" 2>/dev/null; [ -n \"$g\" ] && kill -KILL -\"$g\" 2>/dev/null; rm -f \"$p\"; done; {}",
        rules::delete_line(&format!("faultline_{run}"))
    );
    if !keep {
        line.push_str(&format!("; rm -rf {}", quote(&dir)));
    }
    line
}

/// `host`'s address: itself when it is one, else the first it resolves to.
fn resolve(host: &Host) -> Result<IpAddr, RemoteError> {
    if let Ok(address) = host.host.parse() {
        return Ok(address);
    }
    let fail = |reason: String| RemoteError::Resolve {
        host: host.to_string(),
        reason,
    };
    (host.host.as_str(), host.port.unwrap_or(22))
        .to_socket_addrs()
        .map_err(|e| fail(e.to_string()))?
        .next()
        .map(|a| a.ip())
        .ok_or_else(|| fail("no address".into()))
}

/// How many clock readings a host gives; the one with the shortest round
/// trip counts.
const CLOCK_SAMPLES: usize = 8;

/// The host's wall clock minus ours, in nanoseconds, NTP's way: over one
/// session (so no session setup sits inside a round trip), the host reads
/// its clock each time we ask; the reading with the shortest round trip,
/// against that round trip's midpoint here. Bounded: the host ends the
/// session after 20 s, and each answer is waited for at most 5 s.
fn clock_offset(control: &Control) -> Result<i64, RemoteError> {
    use std::io::{BufRead, BufReader, Write};
    let now = || {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as i128)
    };
    let bad = |what: String| {
        RemoteError::Ssh(SshError::Local {
            path: PathBuf::from("date +%s%N"),
            source: std::io::Error::other(what),
        })
    };
    let mut command =
        control.command("timeout -s KILL 20 sh -c 'while read -r _; do date +%s%N; done'");
    command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut child = command.spawn().map_err(|e| bad(e.to_string()))?;
    let (mut ask, out) = match (child.stdin.take(), child.stdout.take()) {
        (Some(ask), Some(out)) => (ask, out),
        _ => return Err(bad("no pipes to the clock probe".into())),
    };
    let (send, answers) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if send.send(line).is_err() {
                break;
            }
        }
    });
    let mut best: Option<(i128, i128)> = None;
    for _ in 0..CLOCK_SAMPLES {
        let before = now();
        let answer = writeln!(ask, "t")
            .and_then(|()| ask.flush())
            .ok()
            .and_then(|()| answers.recv_timeout(Duration::from_secs(5)).ok());
        let after = now();
        let Some(remote) = answer.and_then(|a| a.trim().parse::<i128>().ok()) else {
            break;
        };
        let round_trip = after - before;
        if best.is_none_or(|(rtt, _)| round_trip < rtt) {
            best = Some((round_trip, remote - (before + after) / 2));
        }
    }
    drop(ask);
    let _ = child.kill();
    let _ = child.wait();
    let (round_trip, offset) = best.ok_or_else(|| bad("the host gave no clock reading".into()))?;
    control.note(&format!(
        "clock: best of {CLOCK_SAMPLES} readings, round trip {round_trip} ns"
    ));
    Ok(offset as i64)
}

/// Cleans the hosts of a killed run from its state file's record: for
/// `faultline cleanup`. Returns what was done, or the problem per host.
pub fn clean_killed_run(state: &RemoteState, log_path: &Path) -> Vec<Result<String, String>> {
    let hosts = match RemoteHosts::connect(state.clone(), false, log_path) {
        Ok(hosts) => hosts,
        Err(e) => return vec![Err(format!("connecting to the run's hosts: {e}"))],
    };
    hosts
        .sites
        .iter()
        .map(|(node, site)| {
            site.control
                .run(&clean_line(&state.run, false), COMMAND_LIMIT)
                .map(|_| {
                    format!(
                        "{node}'s host {}: run {} cleaned",
                        site.control.host(),
                        state.run
                    )
                })
                .map_err(|e| e.to_string())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_command_becomes_one_quoted_remote_line_with_its_env_and_dir() {
        let mut command = Command::new("my db");
        command
            .arg("--name")
            .arg("it's")
            .env("A", "1")
            .current_dir("/d x");
        let line = remote_line(&command);
        assert!(
            line.starts_with("cd '/d x' && env 'A=1' 'my db' --name "),
            "{line}"
        );
        let out = Command::new("sh")
            .arg("-c")
            .arg(remote_line(&{
                let mut c = Command::new("printf");
                c.args(["%s|", "a b", "$HOME"]);
                c
            }))
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "a b|$HOME|");
    }

    #[test]
    fn the_run_name_is_safe_in_paths_and_nft_names() {
        let name = run_name(Path::new("/store/t/20261205T160000.123Z"));
        assert!(name.starts_with("20261205T160000_123Z_"), "{name}");
        assert!(name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'));
    }

    #[test]
    fn cleaning_deletes_only_the_runs_own_table_and_directory() {
        let line = clean_line("R1", false);
        assert!(line.contains("delete table inet faultline_R1"), "{line}");
        assert!(!line.contains("flush"), "{line}");
        assert!(line.contains("rm -rf /tmp/faultline/R1"), "{line}");
        assert!(!clean_line("R1", true).contains("rm -rf"));
    }
}
