//! The target-node client of one worker: where each op goes, and what the
//! node's answer means for the history.
//!
//! # Routing
//! The client is bound to one node (worker `w` of a cluster of `n` to node
//! `w % n`) and believes in a primary, initially its bound node.
//!
//! - An op pinned to a node ([`Invocation::node`], e.g. a final read) goes
//!   there and is never redirected: it is about that node's state.
//! - A read — a `read`, or a `txn` of `r` micro-ops only, which the node
//!   serves as a read — goes to the bound node when the nodes read locally
//!   (`--reads local`) or every node is a primary (multi-primary): that is
//!   how stale reads of a lagging node show up in the history. Workers are
//!   spread over the nodes, so every node serves reads.
//! - Writes (`write`, `cas`, `add`, a `txn` with a write) go to the bound
//!   node in multi-primary topology.
//! - Everything else goes to the believed primary. A `not-primary` answer is
//!   definite, so when it names a primary the client believes the hint and
//!   retries once there; a second `not-primary` completes as `fail`.
//!
//! A believed primary that does not answer (unreachable, no answer, a
//! `not-primary` without a hint, or a call the [`Timeout`] wrapper cut off)
//! is forgotten: the next op tries the next node in id order, which names
//! the primary it knows of. Without that a worker whose primary died would
//! fail every write for the rest of the test.
//!
//! # Outcomes
//! - An answer: `ok`. A read's value is what the node returned (a missing key
//!   reads as [`NodeClient::reading_missing_as`]); a `txn`'s is the node's
//!   micro-op list with the reads filled in; other ops keep their value.
//! - A definite error ([`OpError::is_definite`]: `not-primary`,
//!   `cas-mismatch`, `bad-request`, `txn-conflict`, unreachable): `fail`.
//! - An indefinite one (`timeout`, no answer, a malformed answer): `info` —
//!   except for read-only ops ([`crate::workload::is_read_only`]), which change
//!   nothing and so always `fail`.
//!
//! `error` is the node's error kind (`not-primary`, `timeout`, ...) or
//! `unreachable` / `no-answer` / `malformed` for transport errors; `node` is
//! the node the (last) request went to, whether it answered or not.

use std::time::Duration;

use serde_json::Value;
use target_node::api::{ErrorKind, MicroOp};
use target_node::client::{Client as HttpClient, OpError};
use target_node::mode::{Reads, Topology};

use crate::client::{BoxFuture, Client, Completion, Timeout};
use crate::generator::Invocation;
use crate::system::db::NodeInfo;
use crate::workload::is_read_only;

/// How a worker's client routes and times its calls: target-node's read
/// mode and topology (the nodes' own modes) and the op timeout.
#[derive(Clone, Debug, PartialEq)]
pub struct ClientOptions {
    /// The nodes' read mode: decides where reads go.
    pub reads: Reads,
    /// The nodes' topology: decides where writes go.
    pub topology: Topology,
    /// A client call that takes longer completes as `info` (`fail` when it
    /// changes nothing).
    pub op_timeout: Duration,
}

impl Default for ClientOptions {
    /// The strong single-primary modes, 2 s.
    fn default() -> Self {
        ClientOptions {
            reads: Reads::Linearizable,
            topology: Topology::Primary,
            op_timeout: Duration::from_secs(2),
        }
    }
}

/// One node as this client reaches it.
#[derive(Clone, Debug)]
struct Endpoint {
    id: String,
    http: HttpClient,
}

/// A worker's client of a target-node cluster: see the module docs.
#[derive(Debug)]
pub struct NodeClient {
    nodes: Vec<Endpoint>,
    bound: usize,
    primary: usize,
    reads: Reads,
    topology: Topology,
    default_key: Option<String>,
    missing: Value,
    /// The node of a primary-routed call that has not finished: set while a
    /// call runs, so a call dropped by the timeout wrapper is noticed.
    unanswered: Option<usize>,
}

/// What an op asks of the node.
#[derive(Clone, Debug, PartialEq)]
enum Request {
    Read(String),
    Write(String, Value),
    Cas(String, Value, Value),
    Add(String, Value),
    Txn(Vec<MicroOp>),
}

impl Request {
    fn parse(op: &Invocation, default_key: Option<&str>) -> Result<Request, String> {
        let key = || {
            op.key
                .as_deref()
                .or(default_key)
                .map(str::to_string)
                .ok_or_else(|| format!("{} needs a key", op.f))
        };
        match op.f.as_str() {
            "read" => Ok(Request::Read(key()?)),
            "write" => Ok(Request::Write(key()?, op.value.clone())),
            "add" => Ok(Request::Add(key()?, op.value.clone())),
            "cas" => match op.value.as_array().map(Vec::as_slice) {
                Some([from, to]) => Ok(Request::Cas(key()?, from.clone(), to.clone())),
                _ => Err(format!("cas needs [from, to], got {}", op.value)),
            },
            "txn" => serde_json::from_value(op.value.clone())
                .map(Request::Txn)
                .map_err(|e| format!("txn needs micro-ops: {e}")),
            f => Err(format!("target-node has no op {f:?}")),
        }
    }

    /// Whether the node serves this as a read (`--reads`): a `read`, or a
    /// `txn` of `r` micro-ops only.
    fn is_read_only(&self) -> bool {
        match self {
            Request::Read(_) => true,
            Request::Txn(ops) => ops.iter().all(MicroOp::is_read),
            _ => false,
        }
    }

    async fn send(&self, http: &HttpClient) -> Result<Value, OpError> {
        match self {
            Request::Read(key) => http.get(key).await,
            Request::Write(key, value) => http.put(key, value).await.map(|_| Value::Null),
            Request::Cas(key, from, to) => http.cas(key, from, to).await.map(|_| Value::Null),
            Request::Add(key, element) => http.append(key, element).await.map(|_| Value::Null),
            Request::Txn(ops) => {
                let done = http.txn(ops).await?;
                serde_json::to_value(done).map_err(|e| OpError::Malformed(e.to_string()))
            }
        }
    }
}

impl NodeClient {
    /// The client of worker `worker`, bound to node `worker % nodes.len()`.
    /// Each HTTP call gives up after twice `options.op_timeout` (at least 1 s
    /// more), a backstop behind the [`Timeout`] wrapper of [`Self::timed`].
    pub fn new(worker: usize, nodes: &[NodeInfo], options: &ClientOptions) -> NodeClient {
        let backstop = (options.op_timeout * 2).max(options.op_timeout + Duration::from_secs(1));
        let nodes: Vec<Endpoint> = nodes
            .iter()
            .map(|n| Endpoint {
                id: n.id.clone(),
                http: HttpClient::new(&n.url, backstop),
            })
            .collect();
        let bound = worker % nodes.len().max(1);
        NodeClient {
            nodes,
            bound,
            primary: bound,
            reads: options.reads,
            topology: options.topology,
            default_key: None,
            missing: Value::Null,
            unanswered: None,
        }
    }

    /// Ops without a key use `key` (the set workload's one set).
    pub fn with_default_key(mut self, key: impl Into<String>) -> NodeClient {
        self.default_key = Some(key.into());
        self
    }

    /// A `read` of a missing key (the node answers `null`) completes with
    /// `value`, e.g. `[]` for a set.
    pub fn reading_missing_as(mut self, value: Value) -> NodeClient {
        self.missing = value;
        self
    }

    /// Wrapped so a call past `limit` completes as `info` (`fail` for
    /// read-only ops).
    pub fn timed(self, limit: Duration) -> Timeout<NodeClient> {
        Timeout::new(self, limit, is_read_only)
    }

    /// The node this client is bound to.
    pub fn bound_node(&self) -> Option<&str> {
        self.nodes.get(self.bound).map(|n| n.id.as_str())
    }

    /// The node this client believes is primary.
    pub fn believed_primary(&self) -> Option<&str> {
        self.nodes.get(self.primary).map(|n| n.id.as_str())
    }

    async fn perform(&mut self, op: &Invocation) -> Completion {
        if let Some(cut_off) = self.unanswered.take() {
            self.forget_primary(cut_off);
        }
        let request = match Request::parse(op, self.default_key.as_deref()) {
            Ok(request) => request,
            Err(reason) => return Completion::fail(op.value.clone(), reason),
        };
        let Some((mut target, follows_primary)) = self.route(op, &request) else {
            let node = op.node.as_deref().unwrap_or("any node");
            return Completion::fail(op.value.clone(), format!("no node {node}"));
        };
        let mut reply = self.send_to(target, &request, follows_primary).await;
        if follows_primary {
            if let Some(hinted) = self.redirect(target, &reply) {
                target = hinted;
                reply = self.send_to(target, &request, true).await;
                // Learn from a second refusal too, but do not chase it.
                self.redirect(target, &reply);
            }
        } else if let Err(e) = &reply {
            self.learn_hint(e);
        }
        self.complete(op, &request, reply)
            .from_node(self.nodes[target].id.clone())
    }

    async fn send_to(
        &mut self,
        target: usize,
        request: &Request,
        follows_primary: bool,
    ) -> Result<Value, OpError> {
        if follows_primary {
            self.unanswered = Some(target);
        }
        let reply = request.send(&self.nodes[target].http).await;
        self.unanswered = None;
        reply
    }

    /// Where `request` goes: the node index, and whether it went there as
    /// the believed primary. `None` for a pin to an unknown node.
    fn route(&self, op: &Invocation, request: &Request) -> Option<(usize, bool)> {
        if let Some(pinned) = &op.node {
            return self.index_of(pinned).map(|i| (i, false));
        }
        if self.nodes.is_empty() {
            return None;
        }
        let multi_primary = self.topology == Topology::MultiPrimary;
        let local = multi_primary || (request.is_read_only() && self.reads == Reads::Local);
        Some(if local {
            (self.bound, false)
        } else {
            (self.primary, true)
        })
    }

    /// After a reply from the believed primary `target`: the node to retry
    /// at, when `target` refused and named another primary. Updates the
    /// belief either way.
    fn redirect(&mut self, target: usize, reply: &Result<Value, OpError>) -> Option<usize> {
        let Err(e) = reply else {
            return None;
        };
        if let Some(hinted) = self.learn_hint(e) {
            return (hinted != target).then_some(hinted);
        }
        let refused = e.body().is_some_and(|b| b.error == ErrorKind::NotPrimary);
        if refused || !matches!(e, OpError::Node(_)) {
            self.forget_primary(target);
        }
        None
    }

    /// Believes the primary a `not-primary` answer names, if it is a node
    /// of this cluster; returns its index.
    fn learn_hint(&mut self, e: &OpError) -> Option<usize> {
        let body = e.body().filter(|b| b.error == ErrorKind::NotPrimary)?;
        let hinted = self.index_of(&body.primary.as_ref()?.0)?;
        self.primary = hinted;
        Some(hinted)
    }

    /// Stops believing in `node` as primary: the next op tries the next node.
    fn forget_primary(&mut self, node: usize) {
        if self.primary == node && !self.nodes.is_empty() {
            self.primary = (node + 1) % self.nodes.len();
        }
    }

    fn index_of(&self, id: &str) -> Option<usize> {
        self.nodes.iter().position(|n| n.id == id)
    }

    fn complete(
        &self,
        op: &Invocation,
        request: &Request,
        reply: Result<Value, OpError>,
    ) -> Completion {
        match reply {
            Ok(Value::Null) if matches!(request, Request::Read(_)) => {
                Completion::ok(self.missing.clone())
            }
            Ok(value) if matches!(request, Request::Read(_) | Request::Txn(_)) => {
                Completion::ok(value)
            }
            Ok(_) => Completion::ok(op.value.clone()),
            Err(e) if e.is_definite() || is_read_only(op) => {
                Completion::fail(op.value.clone(), error_name(&e))
            }
            Err(e) => Completion::info(op.value.clone(), error_name(&e)),
        }
    }
}

impl Client for NodeClient {
    fn invoke<'a>(&'a mut self, op: &'a Invocation) -> BoxFuture<'a, Completion> {
        Box::pin(self.perform(op))
    }
}

/// The `error` of a completion: the node's error kind, or what went wrong
/// on the way.
fn error_name(e: &OpError) -> String {
    match e {
        OpError::Node(body) => body.error.to_string(),
        OpError::Unreachable(_) => "unreachable".into(),
        OpError::NoAnswer(_) => "no-answer".into(),
        OpError::Malformed(_) => "malformed".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use checker::history::OpType;
    use serde_json::json;
    use target_node::api::ErrorBody;

    /// Nodes on ports nothing listens on (picked free, then released).
    fn dead_nodes(n: usize) -> Vec<NodeInfo> {
        (1..=n)
            .map(|i| {
                let port = std::net::TcpListener::bind("127.0.0.1:0")
                    .unwrap()
                    .local_addr()
                    .unwrap()
                    .port();
                NodeInfo {
                    id: format!("n{i}"),
                    url: format!("http://127.0.0.1:{port}"),
                    port,
                }
            })
            .collect()
    }

    fn client(worker: usize, reads: Reads, topology: Topology) -> NodeClient {
        let options = ClientOptions {
            reads,
            topology,
            ..ClientOptions::default()
        };
        NodeClient::new(worker, &dead_nodes(3), &options)
    }

    fn target(c: &NodeClient, op: &Invocation) -> Option<(String, bool)> {
        let request = Request::parse(op, Some("s")).unwrap();
        c.route(op, &request)
            .map(|(i, primary)| (c.nodes[i].id.clone(), primary))
    }

    fn read() -> Invocation {
        Invocation::new("read", Value::Null).on_key("0")
    }

    fn write() -> Invocation {
        Invocation::new("write", json!(3)).on_key("0")
    }

    fn not_primary(hint: Option<&str>) -> OpError {
        let mut body = ErrorBody::new(ErrorKind::NotPrimary, "secondary");
        body.primary = hint.map(Into::into);
        OpError::Node(body)
    }

    #[test]
    fn workers_bind_round_robin_and_start_out_believing_their_own_node() {
        let c = client(4, Reads::Primary, Topology::Primary);
        assert_eq!(c.bound_node(), Some("n2"));
        assert_eq!(c.believed_primary(), Some("n2"));
    }

    #[test]
    fn local_reads_read_only_txns_and_multi_primary_go_to_the_bound_node() {
        let local = client(2, Reads::Local, Topology::Primary);
        assert_eq!(target(&local, &read()), Some(("n3".into(), false)));
        assert_eq!(target(&local, &write()), Some(("n3".into(), true)));
        let reads = Invocation::new("txn", json!([["r", "0", null], ["r", "1", null]]));
        let mixed = Invocation::new("txn", json!([["r", "0", null], ["append", "0", 1]]));
        assert_eq!(target(&local, &reads), Some(("n3".into(), false)));
        assert_eq!(target(&local, &mixed), Some(("n3".into(), true)));
        for reads_mode in [Reads::Primary, Reads::Linearizable] {
            let c = client(2, reads_mode, Topology::Primary);
            assert_eq!(
                target(&c, &reads),
                Some(("n3".into(), true)),
                "{reads_mode:?}"
            );
        }
        let multi = client(2, Reads::Linearizable, Topology::MultiPrimary);
        assert_eq!(target(&multi, &read()), Some(("n3".into(), false)));
        assert_eq!(target(&multi, &write()), Some(("n3".into(), false)));
    }

    #[test]
    fn primary_reads_follow_the_hint_but_pinned_ops_stay_put() {
        let mut c = client(0, Reads::Linearizable, Topology::Primary);
        assert_eq!(c.redirect(0, &Err(not_primary(Some("n3")))), Some(2));
        assert_eq!(c.believed_primary(), Some("n3"));
        assert_eq!(target(&c, &read()), Some(("n3".into(), true)));
        let pinned = read().on_node("n1");
        assert_eq!(target(&c, &pinned), Some(("n1".into(), false)));
        assert_eq!(target(&c, &read().on_node("n9")), None);
    }

    #[test]
    fn a_refusal_without_a_hint_moves_on_to_the_next_node() {
        let mut c = client(2, Reads::Primary, Topology::Primary);
        assert_eq!(c.redirect(2, &Err(not_primary(None))), None);
        assert_eq!(c.believed_primary(), Some("n1"));
        let timeout = OpError::Node(ErrorBody::new(ErrorKind::Timeout, "slow"));
        assert_eq!(c.redirect(0, &Err(timeout)), None);
        assert_eq!(
            c.believed_primary(),
            Some("n1"),
            "a node that answers stays"
        );
    }

    #[test]
    fn errors_map_to_fail_or_info_by_definiteness() {
        let c = client(0, Reads::Primary, Topology::Primary);
        let complete = |op: &Invocation, reply| {
            let request = Request::parse(op, None).unwrap();
            c.complete(op, &request, reply)
        };
        let mismatch = OpError::Node(ErrorBody::new(ErrorKind::CasMismatch, "no"));
        let cas = Invocation::new("cas", json!([1, 2])).on_key("0");
        let failed = complete(&cas, Err(mismatch));
        assert_eq!(failed.op_type, OpType::Fail);
        assert_eq!(failed.error, Some(json!("cas-mismatch")));
        let lost = OpError::NoAnswer("reset".into());
        assert_eq!(complete(&write(), Err(lost.clone())).op_type, OpType::Info);
        assert_eq!(complete(&read(), Err(lost)).op_type, OpType::Fail);
        assert_eq!(complete(&read(), Ok(json!(4))).value, json!(4));
        assert_eq!(complete(&write(), Ok(Value::Null)).value, json!(3));
        let txn = Invocation::new("txn", json!([["r", "0", null]]));
        let filled = json!([["r", "0", [1, 2]]]);
        assert_eq!(complete(&txn, Ok(filled.clone())).value, filled);
    }

    #[test]
    fn requests_that_make_no_sense_are_rejected_before_sending() {
        assert!(Request::parse(&Invocation::new("read", Value::Null), None).is_err());
        assert!(Request::parse(&Invocation::new("cas", json!(1)).on_key("0"), None).is_err());
        assert!(Request::parse(&Invocation::new("txn", json!([["x", "0", 1]])), None).is_err());
        let add = Request::parse(&Invocation::new("add", json!(7)), Some("s")).unwrap();
        assert_eq!(add, Request::Add("s".into(), json!(7)));
    }

    #[tokio::test]
    async fn an_unreachable_primary_fails_the_write_and_is_forgotten() {
        let mut c = client(0, Reads::Primary, Topology::Primary).reading_missing_as(json!([]));
        let done = c.invoke(&write()).await;
        assert_eq!(done.op_type, OpType::Fail, "never sent: definite");
        assert_eq!(done.error, Some(json!("unreachable")));
        assert_eq!(done.node.as_deref(), Some("n1"));
        assert_eq!(c.believed_primary(), Some("n2"));
        let read = c.invoke(&read()).await;
        assert_eq!(read.op_type, OpType::Fail);
        assert_eq!(read.node.as_deref(), Some("n2"));
    }

    #[tokio::test]
    async fn a_call_cut_off_by_the_timeout_forgets_its_primary() {
        // Something that accepts connections but never answers.
        let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = silent.local_addr().unwrap().port();
        let mut nodes = dead_nodes(2);
        nodes[0].url = format!("http://127.0.0.1:{port}");
        let options = ClientOptions::default();
        let mut c = NodeClient::new(0, &nodes, &options).timed(Duration::from_millis(100));
        let first = c.invoke(&write()).await;
        assert_eq!(first.op_type, OpType::Info);
        assert_eq!(first.error, Some(json!("timeout")));
        let second = c.invoke(&write()).await;
        assert_eq!(second.node.as_deref(), Some("n2"), "{second:?}");
        drop(silent);
    }
}
