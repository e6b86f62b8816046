//! The custom system ([`Custom`]): any system whose nodes are started by a
//! command line, the test's `[db]` table ([`ExternalSpec`]), run as an
//! [`ExternalDb`].
//!
//! ```toml
//! start  = "mydb --id {id} --port {port} --peers {peers} --data-dir {data_dir}"
//! kill   = "mydb-ctl kill {id}"      # optional: SIGKILL to the node's process group
//! pause  = "mydb-ctl freeze {id}"    # optional: SIGSTOP to the group
//! resume = "mydb-ctl thaw {id}"      # optional: SIGCONT to the group
//! ```
//!
//! # Placeholders
//! | placeholder | value |
//! |---|---|
//! | `{id}` | `n1`, `n2`, ... |
//! | `{port}` | the node's port on 127.0.0.1, picked free at start |
//! | `{url}` | `http://127.0.0.1:{port}` |
//! | `{peers}` | the other nodes, `n2=http://127.0.0.1:P2,n3=...` (empty for one node) |
//! | `{data_dir}` | `RUN/nodes/{id}/data`, created before the start |
//! | `{log}` | the node's log file (its stdout and stderr already go there) |
//! | `{NAME}` | a value from [`ExternalConfig::vars`] |
//!
//! `{{` and `}}` are literal braces (for the shell's `${{HOME}}`). Values
//! are inserted shell-quoted. An unknown placeholder is an error when the
//! database is created, not when it first runs.
//!
//! Each command runs as `sh -c LINE` in its own process group, armed to die
//! with the harness. The start command must stay in the foreground (no
//! daemonizing): the node lives as long as that process group does.
//!
//! # Readiness
//! Every node's port must accept TCP connections. If nodes then answer
//! `GET /status` with target-node's status JSON, setup also waits until a
//! primary is known; any other answer (or none) means the system does not
//! speak that API, and accepting connections is enough.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use nemesis::net::Net;
use nix::sys::signal::Signal;
use results::RunDir;
use serde::{Deserialize, Serialize};

use super::db::{
    check_peer_urls, held_nodes, peers_of, Clock, Crash, Db, DbError, Kill, LogFiles, NodeInfo,
    Pause, PeerUrls, Primary, Settled,
};
use super::net::proxy_for;
use super::process::{io_error, log_path, signal_node, HeldPort, Processes};
use super::target_node::api::NodeApi;
use super::target_node::{self, status};
use super::{Deployment, System, SystemError, SystemOption};
use crate::client::{BoxFuture, Client};
use crate::package::needs_net;
use crate::test_spec::{NetBackend, TestSpec};
use crate::workload::WorkloadKind;
use nemesis::Fault;

/// The placeholders every template may use.
pub const BUILTIN_PLACEHOLDERS: [&str; 6] = ["id", "port", "url", "peers", "data_dir", "log"];

const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);
const PROBE_INTERVAL: Duration = Duration::from_millis(100);

/// A command line with `{placeholders}`, parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Template {
    text: String,
    parts: Vec<Part>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Part {
    Literal(String),
    Placeholder(String),
}

impl Template {
    /// Parses `text`, accepting only the placeholders in `known`.
    pub fn parse(text: &str, known: &BTreeSet<String>) -> Result<Template, String> {
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '{' if chars.peek() == Some(&'{') => {
                    chars.next();
                    literal.push('{');
                }
                '}' if chars.peek() == Some(&'}') => {
                    chars.next();
                    literal.push('}');
                }
                '{' => {
                    let mut name = String::new();
                    let mut closed = false;
                    for c in chars.by_ref() {
                        if c == '}' {
                            closed = true;
                            break;
                        }
                        name.push(c);
                    }
                    if !closed {
                        return Err(format!(
                            "`{{{name}` is not closed (write `{{{{` for a literal brace)"
                        ));
                    }
                    check_placeholder(&name, known)?;
                    parts.push(Part::Literal(std::mem::take(&mut literal)));
                    parts.push(Part::Placeholder(name));
                }
                '}' => return Err("a lone `}` (write `}}` for a literal brace)".into()),
                c => literal.push(c),
            }
        }
        parts.push(Part::Literal(literal));
        parts.retain(|p| p != &Part::Literal(String::new()));
        if text.trim().is_empty() {
            return Err("the command is empty".into());
        }
        Ok(Template {
            text: text.to_string(),
            parts,
        })
    }

    /// The text it was parsed from.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The command line, each placeholder replaced by its shell-quoted
    /// value (a missing value renders empty).
    pub fn render(&self, values: &BTreeMap<String, String>) -> String {
        self.parts
            .iter()
            .map(|p| match p {
                Part::Literal(text) => text.clone(),
                Part::Placeholder(name) => {
                    shell_quote(values.get(name).map(String::as_str).unwrap_or(""))
                }
            })
            .collect()
    }
}

fn check_placeholder(name: &str, known: &BTreeSet<String>) -> Result<(), String> {
    if !known.contains(name) {
        let known: Vec<String> = known.iter().map(|k| format!("{{{k}}}")).collect();
        return Err(format!(
            "unknown placeholder {{{name}}} (known: {})",
            known.join(" ")
        ));
    }
    Ok(())
}

/// `value` as one shell word: unchanged when it is plainly safe, otherwise
/// in single quotes.
pub fn shell_quote(value: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "_-./:=,@%+".contains(c);
    if !value.is_empty() && value.chars().all(safe) {
        value.to_string()
    } else {
        format!("'{}'", value.replace('\'', r"'\''"))
    }
}

/// How to run an external system.
#[derive(Clone, Debug)]
pub struct ExternalConfig {
    /// Number of nodes (`n1`..`nN`).
    pub nodes: usize,
    /// Starts one node in the foreground.
    pub start: String,
    /// Kills one node; SIGKILL to its process group when `None`.
    pub kill: Option<String>,
    /// Pauses one node; SIGSTOP to its process group when `None`.
    pub pause: Option<String>,
    /// Resumes one node; SIGCONT to its process group when `None`.
    pub resume: Option<String>,
    /// Extra placeholders, e.g. `bin → /usr/local/bin/mydb` for `{bin}`.
    pub vars: BTreeMap<String, String>,
    /// The run directory; data dirs are `RUN/nodes/<id>/data`.
    pub run_dir: PathBuf,
    /// Where `<id>.log` files go; `RUN/nodes` when `None`.
    pub log_dir: Option<PathBuf>,
    /// Peer URLs per node (`from → to → url`) for `{peers}`.
    pub peer_urls: Option<PeerUrls>,
    /// How long setup and start wait for the nodes.
    pub ready_timeout: Duration,
    /// How long a stop (and a kill command) waits before SIGKILL.
    pub stop_grace: Duration,
    /// How long a kill/pause/resume command may run.
    pub command_timeout: Duration,
    /// Run every node under this libfaketime library (see [`libfaketime`]),
    /// so clock faults can shift its wall clock through its
    /// [`ExternalDb::clock_file`] (the database's [`Clock`] ability).
    /// Binaries that read the clock without libc (Go's, like etcd) ignore
    /// it.
    pub faketime: Option<PathBuf>,
}

/// Where Debian-like systems install multi-threaded libfaketime, if present
/// (`apt-get install libfaketime`).
pub fn libfaketime() -> Option<PathBuf> {
    [
        "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1",
        "/usr/lib/aarch64-linux-gnu/faketime/libfaketimeMT.so.1",
        "/usr/lib/faketime/libfaketimeMT.so.1",
        "/usr/local/lib/faketime/libfaketimeMT.so.1",
    ]
    .iter()
    .map(PathBuf::from)
    .find(|p| p.is_file())
}

impl ExternalConfig {
    /// `nodes` nodes started by `start`, with signals for the rest; ready
    /// within 30 s, stopped with a 5 s grace, commands limited to 10 s.
    pub fn new(nodes: usize, start: impl Into<String>, run_dir: impl Into<PathBuf>) -> Self {
        ExternalConfig {
            nodes,
            start: start.into(),
            kill: None,
            pause: None,
            resume: None,
            vars: BTreeMap::new(),
            run_dir: run_dir.into(),
            log_dir: None,
            peer_urls: None,
            ready_timeout: Duration::from_secs(30),
            stop_grace: Duration::from_secs(5),
            command_timeout: Duration::from_secs(10),
            faketime: None,
        }
    }
}

/// The parsed commands.
struct Templates {
    start: Template,
    kill: Option<Template>,
    pause: Option<Template>,
    resume: Option<Template>,
}

impl Templates {
    fn parse(config: &ExternalConfig) -> Result<Templates, DbError> {
        let mut known: BTreeSet<String> = BUILTIN_PLACEHOLDERS.map(String::from).into();
        for name in config.vars.keys() {
            if !known.insert(name.clone()) {
                return Err(DbError::Config(format!(
                    "variable {name:?} would hide the built-in placeholder {{{name}}}"
                )));
            }
        }
        let parse = |what: &str, text: &str| {
            Template::parse(text, &known)
                .map_err(|e| DbError::Config(format!("{what} command {text:?}: {e}")))
        };
        let optional =
            |what: &str, text: &Option<String>| text.as_deref().map(|t| parse(what, t)).transpose();
        Ok(Templates {
            start: parse("start", &config.start)?,
            kill: optional("kill", &config.kill)?,
            pause: optional("pause", &config.pause)?,
            resume: optional("resume", &config.resume)?,
        })
    }
}

/// A cluster of an external system's nodes on loopback, driven by command
/// templates. Stops every node when dropped.
pub struct ExternalDb {
    config: ExternalConfig,
    templates: Templates,
    nodes: Vec<NodeInfo>,
    /// Each node's port, held from the moment it was picked until just
    /// before its first start (the start command binds it by number).
    held: BTreeMap<String, HeldPort>,
    processes: Processes,
    /// Primary discovery, settling, crashes and (without libfaketime) clock
    /// offsets: through target-node's API, until custom systems get a
    /// client protocol of their own.
    api: NodeApi,
    faketime: FaketimeClock,
}

impl ExternalDb {
    /// Parses the templates and picks the nodes' ports; starts nothing.
    pub fn new(config: ExternalConfig) -> Result<ExternalDb, DbError> {
        let templates = Templates::parse(&config)?;
        let (nodes, held) = held_nodes(config.nodes, |_| Ipv4Addr::LOCALHOST.into())?;
        if let Some(overrides) = &config.peer_urls {
            check_peer_urls(overrides, &nodes)?;
        }
        let held = nodes.iter().map(|n| n.id.clone()).zip(held).collect();
        Ok(ExternalDb {
            held,
            processes: Processes::new(config.stop_grace)?,
            api: NodeApi::new(&nodes),
            faketime: FaketimeClock {
                dir: config.run_dir.join("nodes"),
            },
            config,
            templates,
            nodes,
        })
    }

    /// Sets the peer URLs used for `{peers}` from the next start on.
    pub fn set_peer_urls(&mut self, peer_urls: Option<PeerUrls>) -> Result<(), DbError> {
        if let Some(overrides) = &peer_urls {
            check_peer_urls(overrides, &self.nodes)?;
        }
        self.config.peer_urls = peer_urls;
        Ok(())
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

    /// The pid of the `sh` that runs `node`'s start command (its process
    /// group id), if started.
    pub fn pid(&self, node: &str) -> Option<u32> {
        self.processes.pid(node)
    }

    /// The start command line of `node`, placeholders filled in.
    pub fn start_command(&self, node: &str) -> Result<String, DbError> {
        Ok(self.templates.start.render(&self.values(node)?))
    }

    fn node(&self, node: &str) -> Result<&NodeInfo, DbError> {
        self.nodes
            .iter()
            .find(|n| n.id == node)
            .ok_or_else(|| DbError::UnknownNode(node.to_string()))
    }

    fn values(&self, node: &str) -> Result<BTreeMap<String, String>, DbError> {
        let info = self.node(node)?;
        let peers: Vec<String> = peers_of(node, &self.nodes, self.config.peer_urls.as_ref())
            .into_iter()
            .map(|(id, url)| format!("{id}={url}"))
            .collect();
        let mut values = self.config.vars.clone();
        let builtins = [
            ("id", info.id.clone()),
            ("port", info.port.to_string()),
            ("url", info.url.clone()),
            ("peers", peers.join(",")),
            ("data_dir", self.data_dir(node).display().to_string()),
            ("log", self.log_file(node).display().to_string()),
        ];
        values.extend(builtins.map(|(k, v)| (k.to_string(), v)));
        Ok(values)
    }

    fn shell(line: String) -> Command {
        let mut command = Command::new("sh");
        command.arg("-c").arg(line);
        command
    }

    fn spawn(&mut self, node: &str) -> Result<(), DbError> {
        let data_dir = self.data_dir(node);
        std::fs::create_dir_all(&data_dir).map_err(|e| io_error(&data_dir, e))?;
        let mut command = Self::shell(self.start_command(node)?);
        if let Some(lib) = &self.config.faketime {
            let file = self.faketime_file(node);
            if !file.exists() {
                std::fs::write(&file, "+0\n").map_err(|e| io_error(&file, e))?;
            }
            command
                .env("LD_PRELOAD", lib)
                .env("FAKETIME_TIMESTAMP_FILE", &file)
                .env("FAKETIME_NO_CACHE", "1")
                // Skew the wall clock only; timers keep real time.
                .env("FAKETIME_DONT_FAKE_MONOTONIC", "1");
        }
        let log = self.log_file(node);
        drop(self.held.remove(node));
        self.processes.start(node, command, &log)?;
        Ok(())
    }

    /// The libfaketime timestamp file of `node` (beside its data dir).
    fn faketime_file(&self, node: &str) -> PathBuf {
        self.faketime.file(node)
    }

    /// A libfaketime timestamp file through which `node`'s wall clock can be
    /// shifted (write `+2.5` or `-10`: seconds), when the nodes run under
    /// libfaketime.
    pub fn clock_file(&self, node: &str) -> Option<PathBuf> {
        self.config
            .faketime
            .as_ref()
            .map(|_| self.faketime_file(node))
    }

    /// Runs `template` for `node` to completion.
    fn run(&self, template: &Template, node: &str) -> Result<(), DbError> {
        let command = Self::shell(template.render(&self.values(node)?));
        let log = self.log_file(node);
        self.processes
            .run_to_completion(node, command, &log, self.config.command_timeout)
    }

    /// Waits until every node in `ids` accepts connections and, if they
    /// speak target-node's API, answers `/status` (with `need_primary`: until
    /// a primary is known).
    fn wait_ready(&mut self, ids: &[String], need_primary: bool) -> Result<(), DbError> {
        let started = Instant::now();
        let deadline = started + self.config.ready_timeout;
        let waited_for: Vec<NodeInfo> = self
            .nodes
            .iter()
            .filter(|n| ids.contains(&n.id))
            .cloned()
            .collect();
        let runtime = super::db::probe_runtime()?;
        loop {
            self.fail_if_exited(ids)?;
            let (ready, detail) = probe(&runtime, &waited_for, need_primary);
            if ready {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(DbError::NotReady {
                    nodes: ids.join(", "),
                    waited: started.elapsed(),
                    detail,
                    logs: ids.iter().map(|id| self.log_file(id)).collect(),
                });
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
}

/// One readiness probe: whether `nodes` are ready, and what was seen.
fn probe(
    runtime: &tokio::runtime::Runtime,
    nodes: &[NodeInfo],
    need_primary: bool,
) -> (bool, String) {
    let closed: Vec<&str> = nodes
        .iter()
        .filter(|n| !status::accepts_connections(&n.url, CONNECT_TIMEOUT))
        .map(|n| n.id.as_str())
        .collect();
    if !closed.is_empty() {
        return (
            false,
            format!("not accepting connections: {}", closed.join(", ")),
        );
    }
    let answers = runtime.block_on(status::statuses(nodes, PROBE_TIMEOUT));
    let detail = status::describe(nodes, &answers);
    if answers.iter().all(Result::is_err) {
        // Not target-node's API: an open port is all we can check.
        return (true, detail);
    }
    (status::all_ready(&answers, need_primary), detail)
}

impl Db for ExternalDb {
    fn nodes(&self) -> &[NodeInfo] {
        &self.nodes
    }

    fn setup(&mut self) -> Result<(), DbError> {
        let ids: Vec<String> = self.nodes.iter().map(|n| n.id.clone()).collect();
        let started = ids
            .iter()
            .try_for_each(|id| self.spawn(id))
            .and_then(|()| self.wait_ready(&ids, true));
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

    /// Through libfaketime when the nodes run under it, else target-node's
    /// admin endpoint.
    fn as_clock(&self) -> Option<&dyn Clock> {
        match self.config.faketime {
            Some(_) => Some(&self.faketime),
            None => Some(&self.api),
        }
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

/// Wall clocks shifted through libfaketime timestamp files, one per node in
/// `dir`: libfaketime reads the offset, in seconds, from the file.
#[derive(Clone, Debug)]
pub(crate) struct FaketimeClock {
    dir: PathBuf,
}

impl FaketimeClock {
    /// The clocks of nodes whose timestamp files are `dir/<node>.faketime`.
    pub(crate) fn in_dir(dir: PathBuf) -> FaketimeClock {
        FaketimeClock { dir }
    }

    /// `node`'s timestamp file.
    pub(crate) fn file(&self, node: &str) -> PathBuf {
        self.dir.join(format!("{node}.faketime"))
    }

    fn write(&self, node: &str, text: String) -> BoxFuture<'static, Result<(), std::io::Error>> {
        let file = self.file(node);
        Box::pin(async move { std::fs::write(&file, text) })
    }
}

impl Clock for FaketimeClock {
    fn shift(&self, node: &str, offset_ms: i64) -> BoxFuture<'static, Result<(), String>> {
        let file = self.file(node);
        let write = self.write(node, format!("{:+.3}\n", offset_ms as f64 / 1e3));
        Box::pin(async move { write.await.map_err(|e| format!("{}: {e}", file.display())) })
    }

    /// Not strobed: the offset is written once.
    fn strobe(&self, _: &str, _: i64, _: std::time::Duration) -> Option<BoxFuture<'static, ()>> {
        None
    }

    /// The file outlives the node, so a node that is down is reset too.
    fn reset(&self, node: &str, _down: bool) -> BoxFuture<'static, Result<(), String>> {
        let write = self.write(node, "+0\n".to_string());
        Box::pin(async move { write.await.map_err(|e| e.to_string()) })
    }
}

impl Kill for ExternalDb {
    fn kill(&mut self, node: &str) -> Result<(), DbError> {
        self.node(node)?;
        if !self.processes.is_alive(node) {
            self.processes.kill(node);
            return Ok(());
        }
        let outcome = match &self.templates.kill {
            Some(kill) => self.run(kill, node),
            None => Ok(()),
        };
        if let Some(process) = self.processes.get_mut(node) {
            if outcome.is_ok() && self.templates.kill.is_some() {
                process.wait_exit(self.config.stop_grace);
            }
        }
        // Whatever the command did, the node's group is gone afterwards.
        self.processes.kill(node);
        outcome
    }

    fn start(&mut self, node: &str) -> Result<(), DbError> {
        self.node(node)?;
        if self.processes.is_alive(node) {
            return Ok(());
        }
        self.processes.kill(node);
        self.spawn(node)?;
        self.wait_ready(&[node.to_string()], false)
    }
}

impl Pause for ExternalDb {
    fn pause(&mut self, node: &str) -> Result<(), DbError> {
        self.node(node)?;
        match &self.templates.pause {
            Some(pause) if self.processes.is_alive(node) => self.run(pause, node),
            Some(_) => Err(DbError::NotRunning(node.to_string())),
            None => signal_node(&mut self.processes, node, Signal::SIGSTOP, true),
        }
    }

    fn resume(&mut self, node: &str) -> Result<(), DbError> {
        self.node(node)?;
        match &self.templates.resume {
            Some(resume) if self.processes.is_alive(node) => self.run(resume, node),
            Some(_) => Ok(()),
            None => signal_node(&mut self.processes, node, Signal::SIGCONT, false),
        }
    }
}

impl LogFiles for ExternalDb {
    fn log_files(&self) -> Vec<(String, PathBuf)> {
        self.nodes
            .iter()
            .map(|n| (n.id.clone(), self.log_file(&n.id)))
            .collect()
    }
}

impl Drop for ExternalDb {
    fn drop(&mut self) {
        self.processes.stop_all();
    }
}

/// A custom system's `[db]` table: how to start (and optionally kill,
/// pause, resume) one node. Placeholders: `{id}`, `{port}`, `{url}`,
/// `{peers}` (`n2=http://127.0.0.1:P,...`), `{data_dir}`, `{log}`, and
/// every key of `vars`. Kill, pause and resume default to SIGKILL, SIGSTOP
/// and SIGCONT to the node's process group.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct ExternalSpec {
    /// Starts one node, in the foreground.
    pub start: String,
    /// Kills one node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kill: Option<String>,
    /// Pauses one node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pause: Option<String>,
    /// Resumes one node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resume: Option<String>,
    /// Extra placeholders, e.g. `bin = "/usr/local/bin/mydb"` for `{bin}`.
    #[serde(default)]
    pub vars: BTreeMap<String, String>,
}

/// The custom system: nodes started by the test's `[db]` command templates.
/// Its clients (unless the test's `[client]` names a program,
/// docs/client-protocol.md), primary discovery, crashes and clock offsets
/// speak target-node's HTTP API;
/// with libfaketime installed, clock faults shift the nodes' wall clocks
/// through it instead.
#[derive(Clone, Copy, Debug, Default)]
pub struct Custom;

impl System for Custom {
    fn name(&self) -> &'static str {
        "custom"
    }

    fn about(&self) -> &'static str {
        "any system started by the test's [db] command templates; clients speak target-node's HTTP API, or are the [client] program"
    }

    fn workloads(&self) -> &'static [WorkloadKind] {
        &WorkloadKind::ALL
    }

    fn faults(&self) -> &'static [Fault] {
        &Fault::ALL
    }

    fn net_backends(&self) -> &'static [NetBackend] {
        &[NetBackend::Proxy]
    }

    fn options(&self) -> &'static [SystemOption] {
        &[]
    }

    fn check(&self, spec: &TestSpec) -> Result<(), String> {
        match spec.db {
            Some(_) => Ok(()),
            None => Err(
                "system custom needs a [db] table of command templates in the --test \
                 file (start = \"mydb --id {id} --port {port} --peers {peers}\")"
                    .into(),
            ),
        }
    }

    fn deploy<'a>(
        &'a self,
        spec: &'a TestSpec,
        run: &'a RunDir,
        seed: u64,
    ) -> BoxFuture<'a, Result<Deployment, SystemError>> {
        Box::pin(async move {
            let templates = spec.db.as_ref().ok_or_else(|| {
                SystemError::Db(DbError::Config("no [db] table of command templates".into()))
            })?;
            let mut db = ExternalDb::new(config_of(spec, templates, run))?;
            let mut net = None;
            if needs_net(&spec.nemesis) {
                let proxy = proxy_for(db.nodes(), seed).await?;
                db.set_peer_urls(Some(proxy.peer_urls()))?;
                net = Some(Box::new(proxy) as Box<dyn Net>);
            }
            Ok(Deployment {
                db: Box::new(db),
                net,
            })
        })
    }

    fn client(&self, spec: &TestSpec, worker: usize, nodes: &[NodeInfo]) -> Box<dyn Client> {
        target_node::client_for(
            spec.workload,
            &target_node::client_options(spec),
            worker,
            nodes,
        )
    }
}

/// The database configuration of a test's `[db]` table; says how clock
/// faults will be applied when the test has them.
fn config_of(spec: &TestSpec, templates: &ExternalSpec, run: &RunDir) -> ExternalConfig {
    let mut config = ExternalConfig::new(spec.nodes, templates.start.clone(), run.path());
    config.kill = templates.kill.clone();
    config.pause = templates.pause.clone();
    config.resume = templates.resume.clone();
    config.vars = templates.vars.clone();
    config.log_dir = Some(run.nodes_dir());
    if spec.nemesis.iter().any(|f| f == "clock") {
        config.faketime = libfaketime();
        match &config.faketime {
            Some(lib) => println!(
                "clock faults through libfaketime ({}); programs that read the clock \
                 without libc, like Go binaries, ignore it",
                lib.display()
            ),
            None => println!(
                "clock faults need libfaketime for an external system and it is not \
                 installed (apt-get install libfaketime): they will fail, and be recorded so"
            ),
        }
    }
    config
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known() -> BTreeSet<String> {
        BUILTIN_PLACEHOLDERS
            .iter()
            .map(|s| s.to_string())
            .chain(["bin".to_string()])
            .collect()
    }

    #[test]
    fn renders_placeholders_quoted_and_literal_braces() {
        let t = Template::parse("{bin} --id {id} --dir {data_dir} ${{HOME}}", &known()).unwrap();
        let values: BTreeMap<String, String> = [
            ("bin", "/opt/my db/bin"),
            ("id", "n1"),
            ("data_dir", "/tmp/it's"),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .into();
        assert_eq!(
            t.render(&values),
            r"'/opt/my db/bin' --id n1 --dir '/tmp/it'\''s' ${HOME}"
        );
    }

    #[test]
    fn unknown_or_unclosed_placeholders_are_clear_errors() {
        let err = Template::parse("mydb --port {prot}", &known()).unwrap_err();
        assert!(err.contains("unknown placeholder {prot}"), "{err}");
        assert!(err.contains("{port}"), "lists the known ones: {err}");
        let err = Template::parse("mydb --port {port", &known()).unwrap_err();
        assert!(err.contains("not closed"), "{err}");
        let err = Template::parse("mydb }", &known()).unwrap_err();
        assert!(err.contains("lone"), "{err}");
        assert!(Template::parse("  ", &known()).is_err());
    }

    #[test]
    fn a_bad_template_fails_at_creation_naming_the_command() {
        let mut config = ExternalConfig::new(3, "mydb --port {port}", "/tmp/run");
        config.pause = Some("mydb-ctl pause {node}".into());
        let err = ExternalDb::new(config).err().unwrap().to_string();
        assert!(err.contains("pause command"), "{err}");
        assert!(err.contains("unknown placeholder {node}"), "{err}");
    }

    #[test]
    fn peers_list_the_other_nodes() {
        let config = ExternalConfig::new(3, "mydb --peers {peers} --url {url}", "/tmp/run");
        let db = ExternalDb::new(config).unwrap();
        let line = db.start_command("n2").unwrap();
        let n = db.nodes();
        let expected = format!(
            "mydb --peers n1={},n3={} --url {}",
            n[0].url, n[2].url, n[1].url
        );
        assert_eq!(line, expected);
    }
}
