//! External clients: a client that is a program in any language, which
//! faultline starts and speaks to in JSON lines over its stdin and stdout.
//! The protocol is documented in `docs/client-protocol.md`; this module is
//! its one implementation.
//!
//! # Layout
//! - [`ClientSpec`]: the test's `[client]` table (the command and its
//!   `vars`), checked by [`check`].
//! - [`ExternalClients`]: the clients of one run: the command, the nodes,
//!   the spawner thread all their programs are forked from.
//! - [`ExternalClient`]: one worker's client: its program (started at its
//!   first op, restarted after it exits, times out, or breaks the
//!   protocol), the op and init lines it writes, the answers it reads.
//! - `parse_answer`: one answer line, or the protocol error it is.
//!
//! # Why it mirrors the process rule
//! An op line carries the history's `process`, which the interpreter
//! changes after every `info` (Jepsen's rule). The client sees its own
//! completions, so it applies the same rule rather than being told.
//!
//! # Processes
//! Programs are forked like nodes (`system::process`): from one spawner
//! thread, in a PID namespace or process group of their own, armed to die
//! with the harness, so a killed harness leaves no client behind. A
//! program's stderr is appended to the run's `client.log`, after a header
//! line per start.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use checker::history::OpType;
use nix::sys::signal::Signal;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{ChildStdin, ChildStdout};

use super::{BoxFuture, Client, Completion};
use crate::generator::Invocation;
use crate::system::custom::Template;
use crate::system::db::NodeInfo;
use crate::system::process::{spawn_piped, NodeProcess, Spawner};
use crate::test_spec::TestSpec;
use crate::workload::WorkloadKind;

/// The placeholders of `[client] command` besides `vars`.
pub const PLACEHOLDERS: [&str; 3] = ["nodes", "node", "worker"];

/// Protocol errors in a row that retire a worker.
pub const PROTOCOL_ERRORS_TO_RETIRE: u32 = 3;

/// How long a program may take to exit after its stdin is closed at the
/// end of the run, before it gets SIGTERM.
pub const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// How long after SIGTERM it gets SIGKILL.
pub const TERM_GRACE: Duration = Duration::from_secs(2);

/// The run directory's file the programs' stderr goes to.
pub const LOG_FILE: &str = "client.log";

/// The least time a program has to start and answer its init line (the
/// op timeout when longer): interpreters take a while to start.
pub const MIN_INIT_TIMEOUT: Duration = Duration::from_secs(5);

/// How much of a bad line a retirement reason quotes.
const QUOTED: usize = 200;

/// The test's `[client]` table: the command that starts one worker's client
/// program (run as `sh -c LINE`, placeholders shell-quoted: `{nodes}` the
/// node URLs as a comma list, `{node}` the worker's bound node's URL,
/// `{worker}` its number from 0, and every key of `vars` and of `[db]`'s
/// `vars`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct ClientSpec {
    /// Starts one client program; it must stay in the foreground.
    pub command: String,
    /// Extra placeholders, e.g. `dir = "examples/clients/python"`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub vars: BTreeMap<String, String>,
}

/// The values of `spec`'s `vars`: `[db]`'s, then `[client]`'s over them.
fn vars_of(spec: &TestSpec, client: &ClientSpec) -> BTreeMap<String, String> {
    let mut vars = spec
        .db
        .as_ref()
        .map(|db| db.vars.clone())
        .unwrap_or_default();
    vars.extend(client.vars.clone());
    vars
}

/// The parsed command of `client`, or what is wrong with it.
fn template_of(spec: &TestSpec, client: &ClientSpec) -> Result<Template, String> {
    let mut known: std::collections::BTreeSet<String> = PLACEHOLDERS.map(String::from).into();
    for name in vars_of(spec, client).keys() {
        if !known.insert(name.clone()) {
            return Err(format!(
                "[client] vars: {name:?} would hide the built-in placeholder {{{name}}}"
            ));
        }
    }
    Template::parse(&client.command, &known)
        .map_err(|e| format!("[client] command {:?}: {e}", client.command))
}

/// Checks the test's `[client]` table, if it has one: its command parses
/// with the placeholders it may use. `Err` names the field.
pub fn check(spec: &TestSpec) -> Result<(), String> {
    match &spec.client {
        Some(client) => template_of(spec, client).map(|_| ()),
        None => Ok(()),
    }
}

/// The external clients of one run.
pub struct ExternalClients {
    template: Template,
    vars: BTreeMap<String, String>,
    nodes: Vec<NodeInfo>,
    workload: WorkloadKind,
    op_timeout: Duration,
    workers: usize,
    log: PathBuf,
    spawner: Arc<Spawner>,
}

impl ExternalClients {
    /// The clients of `spec`'s `[client]` table over `nodes`, logging to
    /// `run_dir`'s [`LOG_FILE`].
    pub fn new(
        spec: &TestSpec,
        nodes: &[NodeInfo],
        run_dir: &Path,
    ) -> Result<ExternalClients, String> {
        let client = spec
            .client
            .as_ref()
            .ok_or("the test has no [client] table")?;
        let spawner = Spawner::new().map_err(|e| e.to_string())?;
        Ok(ExternalClients {
            template: template_of(spec, client)?,
            vars: vars_of(spec, client),
            nodes: nodes.to_vec(),
            workload: spec.workload,
            op_timeout: spec.op_timeout,
            workers: spec.concurrency,
            log: run_dir.join(LOG_FILE),
            spawner: Arc::new(spawner),
        })
    }

    /// One client per worker.
    pub fn clients(&self) -> Vec<Box<dyn Client>> {
        (0..self.workers)
            .map(|w| Box::new(self.client(w)) as Box<dyn Client>)
            .collect()
    }

    /// The client of worker `worker`, bound to node `worker % nodes`.
    pub fn client(&self, worker: usize) -> ExternalClient {
        let urls: Vec<String> = self.nodes.iter().map(|n| n.url.clone()).collect();
        let bound = urls
            .get(worker % urls.len().max(1))
            .cloned()
            .unwrap_or_default();
        let mut values = self.vars.clone();
        values.insert("nodes".into(), urls.join(","));
        values.insert("node".into(), bound.clone());
        values.insert("worker".into(), worker.to_string());
        let init = InitLine {
            kind: "init",
            workload: self.workload.name(),
            node: &bound,
            nodes: &urls,
        };
        ExternalClient {
            worker,
            workers: self.workers as u64,
            process: worker as u64,
            command: self.template.render(&values),
            init: serde_json::to_string(&init).expect("an init line serializes"),
            nodes: self.nodes.clone(),
            op_timeout: self.op_timeout,
            log: self.log.clone(),
            spawner: self.spawner.clone(),
            running: None,
            next_id: 1,
            errors_in_a_row: 0,
            retired: None,
        }
    }
}

/// The line that opens every program's session.
#[derive(Serialize)]
struct InitLine<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    workload: &'static str,
    node: &'a str,
    nodes: &'a [String],
}

/// One op, as the program reads it.
#[derive(Serialize)]
struct OpLine<'a> {
    id: u64,
    process: u64,
    f: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    key: Option<&'a str>,
    value: &'a Value,
    /// The URL of the node the op is pinned to (final reads).
    #[serde(skip_serializing_if = "Option::is_none")]
    node: Option<&'a str>,
}

/// A running program and its pipes.
struct Running {
    process: NodeProcess,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

/// How an exchange with the program ended without an answer line.
enum NoAnswer {
    /// No line within the op timeout.
    Timeout,
    /// It closed its stdout (exited) or stopped reading its stdin.
    Exited,
}

/// One worker's client program: see the module docs.
pub struct ExternalClient {
    worker: usize,
    workers: u64,
    /// The history's process of this worker (see the module docs).
    process: u64,
    command: String,
    init: String,
    nodes: Vec<NodeInfo>,
    op_timeout: Duration,
    log: PathBuf,
    spawner: Arc<Spawner>,
    running: Option<Running>,
    next_id: u64,
    errors_in_a_row: u32,
    retired: Option<String>,
}

impl ExternalClient {
    /// The command line its program runs (placeholders filled in).
    pub fn command(&self) -> &str {
        &self.command
    }

    async fn perform(&mut self, op: &Invocation) -> Completion {
        if let Some(reason) = self.retired.clone() {
            return Completion::fail(op.value.clone(), json!({ "client-retired": reason }));
        }
        if self.has_exited() {
            self.note("exited between ops; restarting it");
            self.stop_now().await;
        }
        if self.running.is_none() {
            if let Err((reason, line)) = self.start().await {
                self.stop_now().await;
                let error = self.protocol_error("init", &reason, line.as_deref());
                // The op never reached the program: it certainly did not happen.
                return Completion::fail(op.value.clone(), error);
            }
        }
        let id = self.next_id;
        self.next_id += 1;
        let line = self.op_line(id, op);
        let completion = match self.exchange(line, self.op_timeout).await {
            Ok(answer) => match parse_answer(&answer, id) {
                Ok(parsed) => {
                    self.errors_in_a_row = 0;
                    parsed.completion(op, &self.nodes)
                }
                Err(reason) => {
                    self.stop_now().await;
                    Completion::info(
                        op.value.clone(),
                        self.protocol_error("op", &reason, Some(&answer)),
                    )
                }
            },
            Err(NoAnswer::Timeout) => {
                self.note(&format!(
                    "no answer to op {id} in {:?}; killing it",
                    self.op_timeout
                ));
                self.stop_now().await;
                Completion::info(op.value.clone(), "timeout")
            }
            Err(NoAnswer::Exited) => {
                let status = self.exit_status().await;
                self.note(&format!("exited ({status}) with op {id} in flight"));
                self.stop_now().await;
                Completion::info(op.value.clone(), "client-exited")
            }
        };
        if completion.op_type == OpType::Info {
            self.process += self.workers;
        }
        completion
    }

    fn op_line(&self, id: u64, op: &Invocation) -> String {
        let pinned = op.node.as_deref().map(|id| {
            self.nodes
                .iter()
                .find(|n| n.id == id)
                .map_or(id, |n| n.url.as_str())
        });
        let line = OpLine {
            id,
            process: self.process,
            f: &op.f,
            key: op.key.as_deref(),
            value: &op.value,
            node: pinned,
        };
        serde_json::to_string(&line).expect("an op line serializes")
    }

    /// Records a protocol error (`what`: in an init or an op answer):
    /// counts it, retires the worker at the third in a row, and returns the
    /// completion's error, quoting the line.
    fn protocol_error(&mut self, what: &str, reason: &str, line: Option<&str>) -> Value {
        self.errors_in_a_row += 1;
        let quoted = line.map(|l| format!(": {}", quote(l))).unwrap_or_default();
        self.note(&format!(
            "protocol error in the {what} answer: {reason}{quoted}"
        ));
        if self.errors_in_a_row >= PROTOCOL_ERRORS_TO_RETIRE {
            let reason = format!(
                "worker {} retired after {} protocol errors in a row; the last, in the {what} \
                 answer: {reason}{quoted}",
                self.worker, self.errors_in_a_row
            );
            self.note(&reason);
            self.retired = Some(reason);
        }
        json!({ "protocol-error": reason, "line": line })
    }

    /// Starts the program and exchanges the init lines; `Err` is why it is
    /// not usable, with the line it answered, if any.
    async fn start(&mut self) -> Result<(), (String, Option<String>)> {
        let spawner = self.spawner.clone();
        let log = self.log.clone();
        let command = self.command.clone();
        self.note(&format!(
            "starting the client of worker {} (process {}): {command}",
            self.worker, self.process
        ));
        let spawned = tokio::task::spawn_blocking(move || {
            let mut shell = Command::new("sh");
            shell.arg("-c").arg(&command);
            spawn_piped(&spawner, shell, &log)
        })
        .await
        .map_err(|e| (format!("the spawner task failed: {e}"), None))?;
        let (process, stdin, stdout) =
            spawned.map_err(|e| (format!("it could not be started: {e}"), None))?;
        let pipes = ChildStdin::from_std(stdin).and_then(|stdin| {
            ChildStdout::from_std(stdout).map(|stdout| (stdin, BufReader::new(stdout)))
        });
        let (stdin, stdout) = match pipes {
            Ok(pipes) => pipes,
            Err(e) => {
                tokio::task::spawn_blocking(move || process.kill())
                    .await
                    .ok();
                return Err((format!("its pipes: {e}"), None));
            }
        };
        self.running = Some(Running {
            process,
            stdin,
            stdout,
        });
        let limit = self.op_timeout.max(MIN_INIT_TIMEOUT);
        match self.exchange(self.init.clone(), limit).await {
            Ok(answer) => check_init_ok(&answer).map_err(|reason| (reason, Some(answer))),
            Err(NoAnswer::Timeout) => Err((format!("no init_ok within {limit:?}"), None)),
            Err(NoAnswer::Exited) => Err((
                format!("it exited ({}) before init_ok", self.exit_status().await),
                None,
            )),
        }
    }

    /// Writes `line` and reads one line back, within `limit`.
    async fn exchange(&mut self, mut line: String, limit: Duration) -> Result<String, NoAnswer> {
        let Some(running) = self.running.as_mut() else {
            return Err(NoAnswer::Exited);
        };
        line.push('\n');
        let talk = async {
            running
                .stdin
                .write_all(line.as_bytes())
                .await
                .map_err(|_| NoAnswer::Exited)?;
            running.stdin.flush().await.map_err(|_| NoAnswer::Exited)?;
            let mut answer = String::new();
            match running.stdout.read_line(&mut answer).await {
                Ok(0) | Err(_) => Err(NoAnswer::Exited),
                Ok(_) => {
                    let trimmed = answer.trim_end_matches(['\n', '\r']).len();
                    answer.truncate(trimmed);
                    Ok(answer)
                }
            }
        };
        tokio::time::timeout(limit, talk)
            .await
            .unwrap_or(Err(NoAnswer::Timeout))
    }

    fn has_exited(&mut self) -> bool {
        self.running
            .as_mut()
            .is_some_and(|r| r.process.exit_status().is_some())
    }

    /// How the program exited, as far as can be told within 200 ms.
    async fn exit_status(&mut self) -> String {
        for _ in 0..20 {
            if let Some(status) = self.running.as_mut().and_then(|r| r.process.exit_status()) {
                return status;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        "it closed its stdout".into()
    }

    /// SIGKILLs the program (its whole namespace or group) and reaps it.
    async fn stop_now(&mut self) {
        if let Some(running) = self.running.take() {
            let Running { process, .. } = running;
            let _ = tokio::task::spawn_blocking(move || process.kill()).await;
        }
    }

    /// A line in the client log, from faultline.
    fn note(&self, text: &str) {
        let since_epoch = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let line = format!(
            "== faultline: worker {} at unix {:.3}: {text}\n",
            self.worker,
            since_epoch.as_secs_f64()
        );
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log);
        if let Ok(mut file) = file {
            let _ = file.write_all(line.as_bytes());
        }
    }
}

impl Client for ExternalClient {
    fn invoke<'a>(&'a mut self, op: &'a Invocation) -> BoxFuture<'a, Completion> {
        Box::pin(self.perform(op))
    }

    fn retired(&self) -> Option<String> {
        self.retired.clone()
    }

    /// Closes the program's stdin; SIGTERM after [`CLOSE_GRACE`], SIGKILL
    /// [`TERM_GRACE`] later.
    fn close(&mut self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            let Some(Running {
                mut process, stdin, ..
            }) = self.running.take()
            else {
                return;
            };
            drop(stdin);
            let _ = tokio::task::spawn_blocking(move || {
                if !process.wait_exit(CLOSE_GRACE) {
                    let _ = process.signal(Signal::SIGTERM);
                    process.wait_exit(TERM_GRACE);
                }
                process.kill();
            })
            .await;
        })
    }
}

impl Drop for ExternalClient {
    fn drop(&mut self) {
        if let Some(running) = self.running.take() {
            running.process.kill();
        }
    }
}

/// `line`, cut to [`QUOTED`] characters, in quotes.
fn quote(line: &str) -> String {
    let cut: String = line.chars().take(QUOTED).collect();
    if cut.len() < line.len() {
        format!("{cut:?}...")
    } else {
        format!("{cut:?}")
    }
}

fn check_init_ok(line: &str) -> Result<(), String> {
    let value: Value = serde_json::from_str(line).map_err(|e| format!("not valid JSON ({e})"))?;
    match value.get("type").and_then(Value::as_str) {
        Some("init_ok") => Ok(()),
        Some(other) => Err(format!("type {other:?} where init_ok was due")),
        None => Err("no type where init_ok was due".into()),
    }
}

/// An answer line that keeps to the protocol.
#[derive(Debug, PartialEq)]
struct Answer {
    op_type: OpType,
    value: Option<Value>,
    error: Option<Value>,
    node: Option<String>,
}

impl Answer {
    /// The completion of `op`; a `node` given as a URL is named by its id.
    fn completion(self, op: &Invocation, nodes: &[NodeInfo]) -> Completion {
        let value = self.value.unwrap_or_else(|| op.value.clone());
        let error = match self.op_type {
            OpType::Ok => None,
            kind => Some(self.error.unwrap_or_else(|| json!(kind_name(kind)))),
        };
        let node = self.node.map(|node| {
            nodes
                .iter()
                .find(|n| n.url == node || n.id == node)
                .map_or(node, |n| n.id.clone())
        });
        Completion {
            op_type: self.op_type,
            value,
            node,
            error,
        }
    }
}

fn kind_name(kind: OpType) -> &'static str {
    match kind {
        OpType::Fail => "fail",
        _ => "info",
    }
}

/// One answer to op `id`, or the protocol error it is: not a JSON object,
/// the wrong (or no) `id`, an unknown (or no) `type`, an `ok` without a
/// `value`.
fn parse_answer(line: &str, id: u64) -> Result<Answer, String> {
    let value: Value = serde_json::from_str(line).map_err(|e| format!("not valid JSON ({e})"))?;
    let Value::Object(mut fields) = value else {
        return Err("not a JSON object".into());
    };
    match fields.get("id") {
        Some(given) if given.as_u64() == Some(id) => {}
        Some(given) => return Err(format!("wrong id {given} (the op in flight is {id})")),
        None => return Err(format!("no id (the op in flight is {id})")),
    }
    let op_type = match fields.get("type").and_then(Value::as_str) {
        Some("ok") => OpType::Ok,
        Some("fail") => OpType::Fail,
        Some("info") => OpType::Info,
        Some(other) => return Err(format!("unknown type {other:?} (ok, fail or info)")),
        None => return Err("no type (ok, fail or info)".into()),
    };
    let value = fields.remove("value");
    if op_type == OpType::Ok && value.is_none() {
        return Err("an ok answer needs a value".into());
    }
    let node = match fields.remove("node") {
        Some(Value::String(node)) => Some(node),
        Some(Value::Null) | None => None,
        Some(other) => return Err(format!("node {other} is not a string")),
    };
    Ok(Answer {
        op_type,
        value,
        error: fields.remove("error"),
        node,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_keeps_to_the_protocol_or_says_how_it_breaks_it() {
        let ok = parse_answer(r#"{"id":17,"type":"ok","value":4,"node":"n2"}"#, 17).unwrap();
        assert_eq!(ok.op_type, OpType::Ok);
        assert_eq!(ok.value, Some(json!(4)));
        let fail = parse_answer(r#"{"id":3,"type":"fail","error":"cas-mismatch"}"#, 3).unwrap();
        assert_eq!(fail.error, Some(json!("cas-mismatch")));
        for (line, says) in [
            ("not json", "not valid JSON"),
            ("[1]", "not a JSON object"),
            (r#"{"id":16,"type":"ok","value":1}"#, "wrong id 16"),
            (r#"{"type":"ok","value":1}"#, "no id"),
            (r#"{"id":17,"type":"maybe"}"#, "unknown type \"maybe\""),
            (r#"{"id":17,"type":"ok"}"#, "needs a value"),
        ] {
            let err = parse_answer(line, 17).unwrap_err();
            assert!(err.contains(says), "{line}: {err}");
        }
    }

    #[test]
    fn a_completion_names_the_node_by_id_and_fills_in_the_value_and_error() {
        let nodes = vec![NodeInfo {
            id: "n1".into(),
            url: "http://127.0.0.1:7001".into(),
            port: 7001,
        }];
        let op = Invocation::new("write", json!(3)).on_key("k");
        let answer = parse_answer(
            r#"{"id":1,"type":"info","node":"http://127.0.0.1:7001"}"#,
            1,
        )
        .unwrap();
        let done = answer.completion(&op, &nodes);
        assert_eq!(done.op_type, OpType::Info);
        assert_eq!(done.value, json!(3));
        assert_eq!(done.error, Some(json!("info")));
        assert_eq!(done.node.as_deref(), Some("n1"));
    }

    #[test]
    fn the_command_knows_its_placeholders_and_vars_and_names_the_field() {
        let spec = |command: &str| TestSpec {
            client: Some(ClientSpec {
                command: command.into(),
                vars: [("dir".to_string(), "/opt/c".to_string())].into(),
            }),
            ..TestSpec::default()
        };
        assert!(check(&spec("python3 {dir}/c.py {nodes} {node} {worker}")).is_ok());
        let err = check(&spec("python3 {dri}/c.py")).unwrap_err();
        assert!(
            err.contains("[client] command") && err.contains("{dri}"),
            "{err}"
        );
        let mut hiding = spec("c {node}");
        if let Some(c) = hiding.client.as_mut() {
            c.vars.insert("node".into(), "x".into());
        }
        let err = check(&hiding).unwrap_err();
        assert!(err.contains("[client] vars"), "{err}");
    }
}
