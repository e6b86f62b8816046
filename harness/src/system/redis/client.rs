//! [`RedisClient`]: a worker's client, through the `redis` crate (tokio).
//!
//! # Finding the primary
//! The client asks the Sentinels for the primary
//! (`SENTINEL get-master-addr-by-name`), the one beside its own node first,
//! then the others in node order, and keeps a connection to the node the
//! first answer names. It forgets that primary on any error (`READONLY`
//! from a demoted one, a refused or broken connection, a timeout) and asks
//! again before its next op — and not otherwise, as Redis clients do: a
//! primary cut off from the Sentinels goes on taking this client's writes
//! while it answers.
//!
//! # Workloads
//! - set: `SADD set E` / `SMEMBERS set`.
//! - register: `GET k` / `SET k v`, values as the JSON text of the
//!   integer; cas is a Lua script ([`CAS`]) that sets the key only if it
//!   holds the expected value.
//! - append: one Lua script per transaction ([`txn_script`]): `RPUSH` for
//!   an append, `LRANGE` for a read, run in order. Redis runs a script
//!   alone, with no command of another client in between, and keeps its
//!   writes even if it fails halfway (no rollback); on one primary that is
//!   serializable (a single thread executes everything in one order), and
//!   Redis claims no more than that across a failover — replication is
//!   asynchronous, so a new primary may never have seen a transaction the
//!   old one acknowledged.
//!
//! Reads go to the primary; with `--redis-reads replica` to the worker's
//! own node (a read-only script, `flags=no-writes`, for read-only
//! transactions, which Redis runs on replicas).
//!
//! # WAIT
//! With `--redis-wait N` every write is followed by `WAIT N T` on the same
//! connection (T: half the op timeout). A write acknowledged by fewer than
//! N replicas in time is `info`: it is on the primary and may well survive.
//!
//! # Errors: definite or indefinite
//! - no Sentinel names a primary, or the connection to it cannot be made
//!   (refused, connect timeout): `fail`, nothing was sent;
//! - an error reply (`READONLY` from a replica, `NOREPLICAS` under
//!   `min-replicas-to-write`, `LOADING`, `MASTERDOWN`, a script error):
//!   `fail` — Redis checked the command and did not run it. Scripts are
//!   flagged (`#!lua`), so Redis refuses a writing script on a replica or
//!   without enough replicas before it starts; once started, our scripts'
//!   calls cannot fail (the keys never hold another type), so an error
//!   reply never follows a write;
//! - a read that fails in any way: `fail` (a read changes nothing; one
//!   whose answer was lost is first tried once more on a fresh connection);
//! - a write whose connection broke, was refused on a reused connection,
//!   or timed out after sending: `info` — it may have been applied;
//! - a write applied but whose WAIT got fewer replicas than asked, or whose
//!   WAIT failed: `info`.

use std::net::SocketAddr;
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::{FromRedisValue, RedisError};
use serde_json::{json, Value};

use super::db::{node_addr, sentinel_addr};
use super::options::RedisReads;
use super::status;
use crate::client::{BoxFuture, Client, Completion, Timeout};
use crate::generator::Invocation;
use crate::system::db::NodeInfo;
use crate::workload::is_read_only;

/// The set workload's key.
pub const SET_KEY: &str = "set";

/// Compare-and-set: `SET KEYS[1] ARGV[2]` if it holds `ARGV[1]`; 1 if set.
pub const CAS: &str = "#!lua\n\
if redis.call('GET', KEYS[1]) == ARGV[1] then\n\
  redis.call('SET', KEYS[1], ARGV[2])\n\
  return 1\n\
end\n\
return 0\n";

/// The body of a transaction script: ARGV holds (f, key index, value)
/// triples; an append `RPUSH`es and answers nil, a read answers the list.
const TXN_BODY: &str = "local out = {}\n\
for i = 1, #ARGV, 3 do\n\
  local key = KEYS[tonumber(ARGV[i + 1])]\n\
  if ARGV[i] == 'append' then\n\
    redis.call('RPUSH', key, ARGV[i + 2])\n\
    out[#out + 1] = false\n\
  else\n\
    out[#out + 1] = redis.call('LRANGE', key, 0, -1)\n\
  end\n\
end\n\
return out\n";

/// The transaction script, flagged as writing or not (a read-only one runs
/// on replicas).
pub fn txn_script(read_only: bool) -> String {
    match read_only {
        true => format!("#!lua flags=no-writes\n{TXN_BODY}"),
        false => format!("#!lua\n{TXN_BODY}"),
    }
}

/// Why a command got no usable answer.
#[derive(Debug)]
enum CallError {
    /// It never reached Redis.
    NotSent(String),
    /// Redis answered with an error: it did not run it.
    Rejected(String),
    /// It was sent; the answer was lost.
    Indefinite(String),
}

/// A `redis` error sorted by the rule in the module docs.
fn classify(error: RedisError) -> CallError {
    if error.code().is_some() {
        return CallError::Rejected(error.to_string());
    }
    CallError::Indefinite(error.to_string())
}

/// One worker's client, bound to one node.
pub struct RedisClient {
    node: NodeInfo,
    nodes: Vec<NodeInfo>,
    /// The Sentinels, the bound node's first.
    sentinels: Vec<SocketAddr>,
    reads: RedisReads,
    wait: usize,
    timeout: Duration,
    /// The primary in use and a connection to it.
    primary: Option<(String, MultiplexedConnection)>,
    /// A connection to the bound node, for replica reads.
    own: Option<MultiplexedConnection>,
}

impl RedisClient {
    /// Worker `worker`'s client, bound to node `worker % nodes.len()`,
    /// `WAIT`ing for `wait` replicas after each write (0: never).
    pub fn new(
        worker: usize,
        nodes: &[NodeInfo],
        reads: RedisReads,
        wait: usize,
        timeout: Duration,
    ) -> Self {
        let node = nodes[worker % nodes.len()].clone();
        let own = sentinel_addr(&node);
        let mut sentinels: Vec<SocketAddr> = own.into_iter().collect();
        let others = nodes.iter().filter_map(sentinel_addr);
        sentinels.extend(others.filter(|s| Some(*s) != own));
        RedisClient {
            node,
            nodes: nodes.to_vec(),
            sentinels,
            reads,
            wait,
            timeout,
            primary: None,
            own: None,
        }
    }

    /// The same client, cut off after `limit` (reads as `fail`, the rest
    /// as `info`).
    pub fn timed(self, limit: Duration) -> Timeout<RedisClient> {
        Timeout::new(self, limit, is_read_only)
    }

    /// The primary in use, asking the Sentinels when there is none.
    async fn primary(&mut self) -> Result<(String, MultiplexedConnection), CallError> {
        if let Some((id, conn)) = &self.primary {
            return Ok((id.clone(), conn.clone()));
        }
        let probe = self.timeout.min(Duration::from_millis(500));
        let mut why = Vec::new();
        for sentinel in self.sentinels.clone() {
            let addr = match status::named_primary(sentinel, probe).await {
                Ok(addr) => addr,
                Err(e) => {
                    why.push(format!("Sentinel {sentinel}: {e}"));
                    continue;
                }
            };
            let Some(node) = self.nodes.iter().find(|n| node_addr(n) == Some(addr)) else {
                why.push(format!("Sentinel {sentinel} names {addr}, no node of ours"));
                continue;
            };
            let id = node.id.clone();
            let conn = status::connect(addr, self.timeout)
                .await
                .map_err(|e| CallError::NotSent(format!("primary {id} ({addr}): {e}")))?;
            self.primary = Some((id.clone(), conn.clone()));
            return Ok((id, conn));
        }
        Err(CallError::NotSent(format!(
            "no primary known: {}",
            why.join("; ")
        )))
    }

    /// `command` on the primary: its answer and the primary's id.
    async fn on_primary<T: FromRedisValue>(
        &mut self,
        command: &redis::Cmd,
    ) -> Result<(T, String), CallError> {
        let (id, mut conn) = self.primary().await?;
        match command.query_async::<T>(&mut conn).await {
            Ok(answer) => Ok((answer, id)),
            Err(e) => {
                self.primary = None;
                Err(classify(e))
            }
        }
    }

    /// `command` where reads go: the primary, or the bound node.
    async fn on_reader<T: FromRedisValue>(
        &mut self,
        command: &redis::Cmd,
    ) -> Result<(T, String), CallError> {
        if self.reads == RedisReads::Primary {
            return self.on_primary(command).await;
        }
        let mut conn = match &self.own {
            Some(conn) => conn.clone(),
            None => {
                let addr = node_addr(&self.node).expect("a node's URL holds its address");
                let conn = status::connect(addr, self.timeout)
                    .await
                    .map_err(|e| CallError::NotSent(e.to_string()))?;
                self.own = Some(conn.clone());
                conn
            }
        };
        match command.query_async::<T>(&mut conn).await {
            Ok(answer) => Ok((answer, self.node.id.clone())),
            Err(e) => {
                self.own = None;
                Err(classify(e))
            }
        }
    }

    /// A read where reads go, once more on a fresh connection (to the
    /// primary named anew) when the first had no answer: a read changes
    /// nothing, and a failover's Sentinel closes every client connection
    /// of the nodes it reconfigures.
    async fn read<T: FromRedisValue>(
        &mut self,
        command: &redis::Cmd,
    ) -> Result<(T, String), CallError> {
        match self.on_reader::<T>(command).await {
            Err(CallError::NotSent(_) | CallError::Indefinite(_)) => {
                self.on_reader::<T>(command).await
            }
            answered => answered,
        }
    }

    /// A write on the primary, then its `WAIT` when asked for.
    async fn write<T: FromRedisValue>(&mut self, command: &redis::Cmd) -> Written<T> {
        let (answer, id) = match self.on_primary::<T>(command).await {
            Ok(done) => done,
            Err(e) => return Written::Not(e),
        };
        if self.wait == 0 {
            return Written::Done(answer, id);
        }
        let millis = (self.timeout / 2).as_millis() as u64;
        let wait = redis::cmd("WAIT").arg(self.wait).arg(millis).clone();
        match self.on_primary::<usize>(&wait).await {
            Ok((acks, _)) if acks >= self.wait => Written::Done(answer, id),
            Ok((acks, _)) => Written::Unsure(
                answer,
                id,
                format!("WAIT: {acks} of {} replicas acknowledged", self.wait),
            ),
            Err(e) => Written::Unsure(answer, id, format!("WAIT: {}", describe(&e))),
        }
    }

    async fn perform(&mut self, op: &Invocation) -> Completion {
        let value = op.value.clone();
        match (op.f.as_str(), op.key.as_deref()) {
            ("txn", _) => self.txn(&value).await,
            ("add", _) => {
                let sadd = redis::cmd("SADD")
                    .arg(SET_KEY)
                    .arg(value.to_string())
                    .clone();
                self.write::<i64>(&sadd).await.completion(value, |_| None)
            }
            ("read", None) => {
                let smembers = redis::cmd("SMEMBERS").arg(SET_KEY).clone();
                match self.read::<Vec<String>>(&smembers).await {
                    Ok((members, id)) => {
                        Completion::ok(Value::Array(sorted(&members))).from_node(id)
                    }
                    Err(e) => self.read_failed(value, &e),
                }
            }
            (_, Some(key)) => {
                let key = key.to_string();
                self.register(op.f.as_str(), &key, value).await
            }
            (other, None) => Completion::fail(value, format!("{other} needs a key")),
        }
    }

    async fn register(&mut self, f: &str, key: &str, value: Value) -> Completion {
        match f {
            "read" => {
                let get = redis::cmd("GET").arg(key).clone();
                match self.read::<Option<String>>(&get).await {
                    Ok((text, id)) => {
                        let read = text.map_or(Value::Null, |t| parse_element(&t));
                        Completion::ok(read).from_node(id)
                    }
                    Err(e) => self.read_failed(value, &e),
                }
            }
            "write" => {
                let set = redis::cmd("SET").arg(key).arg(value.to_string()).clone();
                self.write::<String>(&set).await.completion(value, |_| None)
            }
            "cas" => {
                let Some([from, to]) = value.as_array().map(Vec::as_slice) else {
                    return Completion::fail(value, "cas needs [from, to]");
                };
                let eval = redis::cmd("EVAL")
                    .arg(CAS)
                    .arg(1)
                    .arg(key)
                    .arg(from.to_string())
                    .arg(to.to_string())
                    .clone();
                let mismatch = |set: &i64| (*set != 1).then_some("cas-mismatch");
                self.write::<i64>(&eval).await.completion(value, mismatch)
            }
            other => Completion::fail(value, format!("unknown op {other}")),
        }
    }

    /// A list-append transaction as one script (see the module docs).
    async fn txn(&mut self, value: &Value) -> Completion {
        let Some(micro_ops) = value.as_array() else {
            return Completion::fail(value.clone(), "txn needs micro-ops");
        };
        let Some((keys, args)) = script_args(micro_ops) else {
            return Completion::fail(value.clone(), "micro-ops are [f, key, value]");
        };
        let read_only = micro_ops
            .iter()
            .all(|m| m.get(0).and_then(Value::as_str) == Some("r"));
        let mut eval = redis::cmd("EVAL");
        eval.arg(txn_script(read_only))
            .arg(keys.len())
            .arg(&keys)
            .arg(&args);
        if read_only {
            return match self.read::<Vec<Option<Vec<String>>>>(&eval).await {
                Ok((reads, id)) => Completion::ok(fill_reads(micro_ops, &reads)).from_node(id),
                Err(e) => self.read_failed(value.clone(), &e),
            };
        }
        let filled = |reads: &Vec<Option<Vec<String>>>| fill_reads(micro_ops, reads);
        match self.write::<Vec<Option<Vec<String>>>>(&eval).await {
            Written::Done(reads, id) => Completion::ok(filled(&reads)).from_node(id),
            Written::Unsure(_, id, why) => Completion::info(value.clone(), why).from_node(id),
            Written::Not(e) => not_written(value.clone(), &e),
        }
    }

    /// A read that failed: `fail`, whatever the error (it changed nothing).
    fn read_failed(&self, value: Value, error: &CallError) -> Completion {
        Completion::fail(value, describe(error)).from_node(self.node.id.clone())
    }
}

/// What became of a write.
enum Written<T> {
    /// Applied (and, when asked, acknowledged by enough replicas).
    Done(T, String),
    /// Applied on the primary, but WAIT got too few replicas or failed.
    Unsure(T, String, String),
    /// Not applied, or unknown (see the error).
    Not(CallError),
}

impl<T> Written<T> {
    /// The completion of a write whose answer `refused` may turn into a
    /// definite failure (a cas that did not match).
    fn completion(self, value: Value, refused: impl Fn(&T) -> Option<&'static str>) -> Completion {
        match self {
            Written::Done(answer, id) => match refused(&answer) {
                Some(why) => Completion::fail(value, why).from_node(id),
                None => Completion::ok(value).from_node(id),
            },
            // A cas that did not match changed nothing, WAIT or not.
            Written::Unsure(answer, id, why) => match refused(&answer) {
                Some(refusal) => Completion::fail(value, refusal).from_node(id),
                None => Completion::info(value, why).from_node(id),
            },
            Written::Not(e) => not_written(value, &e),
        }
    }
}

/// A write that got no answer: `fail` if it was not sent or was refused,
/// `info` if its answer was lost.
fn not_written(value: Value, error: &CallError) -> Completion {
    match error {
        CallError::NotSent(_) | CallError::Rejected(_) => Completion::fail(value, describe(error)),
        CallError::Indefinite(_) => Completion::info(value, describe(error)),
    }
}

fn describe(error: &CallError) -> String {
    match error {
        CallError::NotSent(e) => format!("not sent: {e}"),
        CallError::Rejected(e) => format!("rejected: {e}"),
        CallError::Indefinite(e) => format!("indefinite: {e}"),
    }
}

/// A stored element or register value: the JSON it was written as (a
/// string when it is none).
fn parse_element(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_string()))
}

/// Set members as numbers, in order.
fn sorted(members: &[String]) -> Vec<Value> {
    let mut elements: Vec<Value> = members.iter().map(|m| parse_element(m)).collect();
    elements.sort_by_key(|e| e.as_i64());
    elements
}

/// The script's KEYS (distinct keys in first-use order) and ARGV (f, key
/// index from 1, value per micro-op).
fn script_args(micro_ops: &[Value]) -> Option<(Vec<String>, Vec<String>)> {
    let mut keys: Vec<String> = Vec::new();
    let mut args = Vec::new();
    for m in micro_ops {
        let f = m.get(0)?.as_str()?;
        let key = match m.get(1)? {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let index = match keys.iter().position(|k| *k == key) {
            Some(i) => i + 1,
            None => {
                keys.push(key);
                keys.len()
            }
        };
        args.extend([f.to_string(), index.to_string(), m.get(2)?.to_string()]);
    }
    Some((keys, args))
}

/// The micro-ops with each read's list filled in from the script's answer.
fn fill_reads(micro_ops: &[Value], answers: &[Option<Vec<String>>]) -> Value {
    let done = micro_ops
        .iter()
        .zip(answers)
        .map(|(m, answer)| match answer {
            Some(list) => {
                let list: Vec<Value> = list.iter().map(|e| parse_element(e)).collect();
                json!([m[0].clone(), m[1].clone(), list])
            }
            None => m.clone(),
        });
    Value::Array(done.collect())
}

impl Client for RedisClient {
    fn invoke<'a>(&'a mut self, op: &'a Invocation) -> BoxFuture<'a, Completion> {
        Box::pin(self.perform(op))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_txn_becomes_keys_and_triples_and_its_reads_are_filled_in() {
        let ops = json!([
            ["r", "x", null],
            ["append", "x", 3],
            ["append", "y", 4],
            ["r", "x", null]
        ]);
        let micro_ops = ops.as_array().unwrap();
        let (keys, args) = script_args(micro_ops).unwrap();
        assert_eq!(keys, ["x", "y"]);
        assert_eq!(
            args,
            ["r", "1", "null", "append", "1", "3", "append", "2", "4", "r", "1", "null"]
        );
        let answers = vec![
            Some(vec!["1".to_string()]),
            None,
            None,
            Some(vec!["1".into(), "3".into()]),
        ];
        assert_eq!(
            fill_reads(micro_ops, &answers),
            json!([
                ["r", "x", [1]],
                ["append", "x", 3],
                ["append", "y", 4],
                ["r", "x", [1, 3]]
            ])
        );
        assert!(txn_script(true).starts_with("#!lua flags=no-writes\n"));
        assert!(txn_script(false).starts_with("#!lua\n"));
    }

    #[test]
    fn the_bound_node_s_sentinel_is_asked_first() {
        let nodes: Vec<NodeInfo> = (1..=3)
            .map(|i| NodeInfo {
                id: format!("n{i}"),
                url: format!("redis://10.0.0.{i}:6379/?sentinel=10.0.0.{i}:26379"),
                port: 6379,
            })
            .collect();
        let client = RedisClient::new(1, &nodes, RedisReads::Primary, 0, Duration::from_secs(1));
        let first: Vec<String> = client.sentinels.iter().map(|s| s.to_string()).collect();
        assert_eq!(
            first,
            ["10.0.0.2:26379", "10.0.0.1:26379", "10.0.0.3:26379"]
        );
    }

    #[tokio::test]
    async fn with_no_sentinel_answering_writes_and_reads_fail_definitely() {
        let ports = crate::system::process::free_ports(2).unwrap();
        let nodes = vec![NodeInfo {
            id: "n1".into(),
            url: format!(
                "redis://127.0.0.1:{}/?sentinel=127.0.0.1:{}",
                ports[0], ports[1]
            ),
            port: ports[0],
        }];
        let mut client =
            RedisClient::new(0, &nodes, RedisReads::Primary, 0, Duration::from_secs(1));
        for op in [
            Invocation::new("add", json!(1)),
            Invocation::new("read", Value::Null),
        ] {
            let done = client.invoke(&op).await;
            assert_eq!(done.op_type, checker::history::OpType::Fail, "{done:?}");
        }
    }
}
