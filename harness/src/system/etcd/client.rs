//! [`EtcdClient`]: a worker's client over etcd's v3 JSON gateway
//! (`/v3/kv/range`, `/v3/kv/put`, `/v3/kv/txn`; keys and values base64),
//! plain HTTP through reqwest, so no gRPC dependency.
//!
//! # Values
//! A register value is the JSON text of the integer (`3` is stored as the
//! bytes `3`); a missing key reads as `null`.
//!
//! # Workloads
//! - register: `read` (a range), `write` (a put), `cas` (a txn comparing
//!   the value).
//! - set: one key per element under [`SET_PREFIX`]; `add` puts the
//!   element's key, `read` ranges over the prefix (an element once added
//!   stays: etcd never drops a committed key).
//! - append (list-append transactions), optimistically: one txn of ranges
//!   reads every key the transaction touches, at one revision, with their
//!   mod revisions; a transaction that only reads is done. Otherwise the
//!   micro-ops are applied to what was read, and a second txn writes the
//!   appended lists only if every touched key's mod revision is still the
//!   one read — so the whole transaction takes effect at that commit, as
//!   if run there alone (strict serializable, as etcd's txns are). A
//!   compare that fails changed nothing: `fail` with `txn-conflict`.
//!
//! # Errors: definite or indefinite
//! - connection refused, or any error before the request was sent: `fail`
//!   (etcd never saw it);
//! - a `read` that fails in any way: `fail` (a read changes nothing);
//! - a `write` or `cas` whose request was sent but whose answer was lost
//!   (timeout, connection reset, a 5xx such as etcd's `etcdserver: request
//!   timed out` or `leader changed`): `info`, it may have been applied;
//! - a `cas` txn answering `succeeded: false` (the compare failed): `fail`
//!   with `cas-mismatch`;
//! - a 4xx answer (a malformed request, which etcd rejects before
//!   proposing it): `fail`.
//! - etcd's "no leader" and "leader changed" come back as 5xx answers to a
//!   request already sent, which may have been proposed: `info`, never
//!   `fail`. The client asks for no leader before sending, so the "no
//!   leader known before sending" case that would be a definite `fail`
//!   does not arise.

use std::time::Duration;

use serde_json::{json, Value};

use super::options::EtcdReads;
use crate::client::{BoxFuture, Client, Completion, Timeout};
use crate::generator::Invocation;
use crate::system::db::NodeInfo;
use crate::workload::is_read_only;

/// The key prefix of the set workload's elements.
pub const SET_PREFIX: &str = "set/";

/// One worker's client, bound to one member.
pub struct EtcdClient {
    http: reqwest::Client,
    node: NodeInfo,
    reads: EtcdReads,
}

/// Why a request got no usable answer.
#[derive(Debug)]
enum CallError {
    /// It never reached etcd (refused, could not connect).
    NotSent(String),
    /// It was sent; the answer was lost or was a server error.
    Indefinite(String),
    /// etcd rejected it outright.
    Rejected(String),
}

impl EtcdClient {
    /// Worker `worker`'s client, bound to node `worker % nodes.len()`.
    pub fn new(worker: usize, nodes: &[NodeInfo], reads: EtcdReads, timeout: Duration) -> Self {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .expect("a reqwest client with a timeout builds");
        EtcdClient {
            http,
            node: nodes[worker % nodes.len()].clone(),
            reads,
        }
    }

    /// The same client, cut off after `limit` (reads as `fail`, the rest
    /// as `info`).
    pub fn timed(self, limit: Duration) -> Timeout<EtcdClient> {
        Timeout::new(self, limit, is_read_only)
    }

    async fn call(&self, path: &str, body: Value) -> Result<Value, CallError> {
        let url = format!("{}{path}", self.node.url);
        let response = self
            .http
            .post(url)
            .body(body.to_string())
            .send()
            .await
            .map_err(|e| match e.is_connect() {
                true => CallError::NotSent(e.to_string()),
                false => CallError::Indefinite(e.to_string()),
            })?;
        let status = response.status();
        let text = response
            .text()
            .await
            .map_err(|e| CallError::Indefinite(e.to_string()))?;
        if status.is_server_error() {
            return Err(CallError::Indefinite(format!("{status}: {text}")));
        }
        if !status.is_success() {
            return Err(CallError::Rejected(format!("{status}: {text}")));
        }
        serde_json::from_str(&text).map_err(|e| CallError::Indefinite(format!("{e}: {text}")))
    }

    async fn read(&self, key: &str) -> Result<Value, CallError> {
        let mut body = json!({"key": encode(key.as_bytes())});
        if self.reads == EtcdReads::Serializable {
            body["serializable"] = json!(true);
        }
        let answer = self.call("/v3/kv/range", body).await?;
        let Some(kv) = answer.pointer("/kvs/0") else {
            return Ok(Value::Null);
        };
        let raw = kv.get("value").and_then(Value::as_str).unwrap_or("");
        let bytes =
            decode(raw).ok_or_else(|| CallError::Indefinite(format!("bad base64 {raw}")))?;
        serde_json::from_slice(&bytes).map_err(|e| CallError::Indefinite(e.to_string()))
    }

    async fn write(&self, key: &str, value: &Value) -> Result<(), CallError> {
        let body = json!({"key": encode(key.as_bytes()), "value": encode_value(value)});
        self.call("/v3/kv/put", body).await.map(|_| ())
    }

    /// Whether the compare held (and the put was applied).
    async fn cas(&self, key: &str, from: &Value, to: &Value) -> Result<bool, CallError> {
        let key = encode(key.as_bytes());
        let body = json!({
            "compare": [{"key": key, "target": "VALUE", "result": "EQUAL",
                         "value": encode_value(from)}],
            "success": [{"requestPut": {"key": key, "value": encode_value(to)}}],
        });
        let answer = self.call("/v3/kv/txn", body).await?;
        Ok(answer.get("succeeded").and_then(Value::as_bool) == Some(true))
    }

    async fn perform(&self, op: &Invocation) -> Completion {
        let value = op.value.clone();
        match (op.f.as_str(), op.key.as_deref()) {
            ("txn", _) => return self.txn(&value).await,
            ("read", None) => {
                return match self.read_set().await {
                    Ok(elements) => Completion::ok(elements),
                    Err(e) => Completion::fail(value, describe(&e)),
                }
            }
            ("add", _) => {
                let key = format!("{SET_PREFIX}{value}");
                return definite_or_not(self.write(&key, &value).await.map(|()| true), value);
            }
            _ => {}
        }
        let Some(key) = op.key.as_deref() else {
            return Completion::fail(value, "no key");
        };
        let outcome = match op.f.as_str() {
            "read" => match self.read(key).await {
                Ok(read) => return Completion::ok(read),
                // A read changes nothing: any failure is definite.
                Err(e) => return Completion::fail(value, describe(&e)),
            },
            "write" => self.write(key, &value).await.map(|()| true),
            "cas" => match value.as_array().map(Vec::as_slice) {
                Some([from, to]) => self.cas(key, from, to).await,
                _ => return Completion::fail(value, "cas needs [from, to]"),
            },
            other => return Completion::fail(value, format!("unknown op {other}")),
        };
        definite_or_not(outcome, value)
    }

    /// Every element under [`SET_PREFIX`], in order.
    async fn read_set(&self) -> Result<Value, CallError> {
        let mut body = json!({
            "key": encode(SET_PREFIX.as_bytes()),
            "range_end": encode(&prefix_end(SET_PREFIX.as_bytes())),
        });
        if self.reads == EtcdReads::Serializable {
            body["serializable"] = json!(true);
        }
        let answer = self.call("/v3/kv/range", body).await?;
        let mut elements = Vec::new();
        for kv in answer
            .get("kvs")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            elements.push(value_of(kv)?);
        }
        elements.sort_by_key(|e| e.as_i64());
        Ok(Value::Array(elements))
    }

    /// A list-append transaction (see the module docs).
    async fn txn(&self, value: &Value) -> Completion {
        let Some(micro_ops) = value.as_array() else {
            return Completion::fail(value.clone(), "txn needs micro-ops");
        };
        let Some(keys) = txn_keys(micro_ops) else {
            return Completion::fail(value.clone(), "micro-ops are [f, key, value]");
        };
        let read = match self.read_keys(&keys).await {
            Ok(read) => read,
            // Nothing was written yet: definite.
            Err(e) => return Completion::fail(value.clone(), describe(&e)),
        };
        let (done, lists) = apply(micro_ops, &keys, &read);
        if is_read_only_txn(micro_ops) {
            return Completion::ok(done);
        }
        let compare: Vec<Value> = keys
            .iter()
            .zip(&read)
            .map(|(k, (_, revision))| {
                json!({"key": encode(k.as_bytes()), "target": "MOD", "result": "EQUAL",
                       "mod_revision": revision.to_string()})
            })
            .collect();
        let success: Vec<Value> = lists
            .iter()
            .map(|(k, list)| json!({"requestPut": {"key": encode(k.as_bytes()), "value": encode_value(list)}}))
            .collect();
        let body = json!({"compare": compare, "success": success});
        match self.call("/v3/kv/txn", body).await {
            Ok(answer) if answer.get("succeeded").and_then(Value::as_bool) == Some(true) => {
                Completion::ok(done)
            }
            Ok(_) => Completion::fail(value.clone(), "txn-conflict"),
            Err(e) => definite_or_not(Err(e), value.clone()),
        }
    }

    /// Each key's list (`[]` when missing) and mod revision (0 when
    /// missing), read together in one txn of ranges, at one revision.
    async fn read_keys(&self, keys: &[String]) -> Result<Vec<(Value, i64)>, CallError> {
        let serializable = self.reads == EtcdReads::Serializable;
        let success: Vec<Value> = keys
            .iter()
            .map(|k| json!({"requestRange": {"key": encode(k.as_bytes()), "serializable": serializable}}))
            .collect();
        let answer = self.call("/v3/kv/txn", json!({"success": success})).await?;
        let responses = answer.get("responses").and_then(Value::as_array);
        let responses = responses.ok_or_else(|| {
            CallError::Indefinite(format!("a txn answer without responses: {answer}"))
        })?;
        let mut out = Vec::new();
        for response in responses {
            let range = response
                .get("response_range")
                .or_else(|| response.get("responseRange"))
                .ok_or_else(|| CallError::Indefinite(format!("not a range: {response}")))?;
            let Some(kv) = range.pointer("/kvs/0") else {
                out.push((json!([]), 0));
                continue;
            };
            let revision = kv
                .get("mod_revision")
                .or_else(|| kv.get("modRevision"))
                .and_then(|r| {
                    r.as_str()
                        .and_then(|s| s.parse().ok())
                        .or_else(|| r.as_i64())
                })
                .ok_or_else(|| CallError::Indefinite(format!("no mod revision: {kv}")))?;
            out.push((value_of(kv)?, revision));
        }
        Ok(out)
    }
}

/// `ok`, or by the definite/indefinite rule: a compare that failed or a
/// request never sent or rejected is `fail`, a lost answer `info`.
fn definite_or_not(outcome: Result<bool, CallError>, value: Value) -> Completion {
    match outcome {
        Ok(true) => Completion::ok(value),
        Ok(false) => Completion::fail(value, "cas-mismatch"),
        Err(e @ (CallError::NotSent(_) | CallError::Rejected(_))) => {
            Completion::fail(value, describe(&e))
        }
        Err(e @ CallError::Indefinite(_)) => Completion::info(value, describe(&e)),
    }
}

/// A kv's value, decoded (base64, then JSON).
fn value_of(kv: &Value) -> Result<Value, CallError> {
    let raw = kv.get("value").and_then(Value::as_str).unwrap_or("");
    let bytes = decode(raw).ok_or_else(|| CallError::Indefinite(format!("bad base64 {raw}")))?;
    serde_json::from_slice(&bytes).map_err(|e| CallError::Indefinite(e.to_string()))
}

/// The end of the range of keys starting with `prefix`: the prefix with its
/// last byte incremented (etcd's `--prefix`).
fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

/// The distinct keys of a transaction's micro-ops, in first-use order.
fn txn_keys(micro_ops: &[Value]) -> Option<Vec<String>> {
    let mut keys: Vec<String> = Vec::new();
    for m in micro_ops {
        let key = match m.get(1)? {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        if !keys.contains(&key) {
            keys.push(key);
        }
    }
    Some(keys)
}

fn is_read_only_txn(micro_ops: &[Value]) -> bool {
    micro_ops
        .iter()
        .all(|m| m.get(0).and_then(Value::as_str) == Some("r"))
}

/// The micro-ops run on the lists read: the completed micro-ops (reads
/// filled in) and each appended key's new list.
fn apply(
    micro_ops: &[Value],
    keys: &[String],
    read: &[(Value, i64)],
) -> (Value, Vec<(String, Value)>) {
    let mut lists: Vec<Value> = read.iter().map(|(list, _)| list.clone()).collect();
    let mut appended = vec![false; keys.len()];
    let mut done = Vec::new();
    for m in micro_ops {
        let key = match &m[1] {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let at = keys.iter().position(|k| *k == key).unwrap_or(0);
        match m.get(0).and_then(Value::as_str) {
            Some("append") => {
                if let Value::Array(list) = &mut lists[at] {
                    list.push(m[2].clone());
                }
                appended[at] = true;
                done.push(m.clone());
            }
            _ => done.push(json!(["r", m[1].clone(), lists[at].clone()])),
        }
    }
    let writes = keys
        .iter()
        .zip(lists)
        .zip(appended)
        .filter(|(_, appended)| *appended)
        .map(|((k, list), _)| (k.clone(), list))
        .collect();
    (Value::Array(done), writes)
}

fn describe(error: &CallError) -> String {
    match error {
        CallError::NotSent(e) => format!("not sent: {e}"),
        CallError::Indefinite(e) => format!("indefinite: {e}"),
        CallError::Rejected(e) => format!("rejected: {e}"),
    }
}

impl Client for EtcdClient {
    fn invoke<'a>(&'a mut self, op: &'a Invocation) -> BoxFuture<'a, Completion> {
        Box::pin(async move {
            let node = self.node.id.clone();
            self.perform(op).await.from_node(node)
        })
    }
}

/// A register value as stored: its JSON text, base64.
fn encode_value(value: &Value) -> String {
    encode(value.to_string().as_bytes())
}

/// Standard base64 whose padding may be left out on decoding.
const BASE64: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    base64::engine::GeneralPurposeConfig::new()
        .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
);

/// Standard base64 with padding, as the gateway expects bytes.
pub fn encode(bytes: &[u8]) -> String {
    base64::Engine::encode(&BASE64, bytes)
}

/// Decodes standard base64 (padding optional); `None` when malformed.
pub fn decode(text: &str) -> Option<Vec<u8>> {
    base64::Engine::decode(&BASE64, text).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trips_and_matches_the_gateway_s_examples() {
        assert_eq!(encode(b"foo"), "Zm9v");
        assert_eq!(encode(b"1"), "MQ==");
        assert_eq!(encode(b"12"), "MTI=");
        for text in ["", "a", "ab", "abc", "abcd", "[1,2]", "\"0\""] {
            assert_eq!(decode(&encode(text.as_bytes())).unwrap(), text.as_bytes());
        }
        assert_eq!(decode("MQ").unwrap(), b"1");
        assert!(decode("M").is_none());
        assert!(decode("*!").is_none());
    }

    #[test]
    fn a_txn_reads_its_own_appends_and_writes_the_lists_it_appended() {
        let ops = json!([
            ["r", "x", null],
            ["append", "x", 3],
            ["r", "x", null],
            ["r", "y", null]
        ]);
        let micro_ops = ops.as_array().unwrap();
        let keys = txn_keys(micro_ops).unwrap();
        assert_eq!(keys, ["x", "y"]);
        let read = vec![(json!([1, 2]), 7), (json!([]), 0)];
        let (done, writes) = apply(micro_ops, &keys, &read);
        assert_eq!(
            done,
            json!([
                ["r", "x", [1, 2]],
                ["append", "x", 3],
                ["r", "x", [1, 2, 3]],
                ["r", "y", []]
            ])
        );
        assert_eq!(writes, vec![("x".to_string(), json!([1, 2, 3]))]);
        assert!(!is_read_only_txn(micro_ops));
        assert!(is_read_only_txn(&micro_ops[3..]));
    }

    #[test]
    fn a_prefix_range_ends_past_every_key_with_the_prefix() {
        assert_eq!(prefix_end(b"set/"), b"set0");
        assert_eq!(prefix_end(b"a\xff"), b"b");
        assert_eq!(prefix_end(b"\xff"), [0]);
    }

    #[tokio::test]
    async fn an_unreachable_member_fails_reads_and_writes_definitely() {
        let nodes = crate::system::db::loopback_nodes(1).unwrap();
        let mut client =
            EtcdClient::new(0, &nodes, EtcdReads::Linearizable, Duration::from_secs(1));
        let write = Invocation::new("write", json!(1)).on_key("0");
        let done = client.invoke(&write).await;
        assert_eq!(done.op_type, checker::history::OpType::Fail, "{done:?}");
        let read = Invocation::new("read", Value::Null).on_key("0");
        let done = client.invoke(&read).await;
        assert_eq!(done.op_type, checker::history::OpType::Fail, "{done:?}");
        assert_eq!(done.node.as_deref(), Some("n1"));
    }
}
