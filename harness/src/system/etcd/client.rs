//! [`EtcdClient`]: a register worker's client over etcd's v3 JSON gateway
//! (`/v3/kv/range`, `/v3/kv/put`, `/v3/kv/txn`; keys and values base64),
//! plain HTTP through reqwest, so no gRPC dependency.
//!
//! # Values
//! A register value is the JSON text of the integer (`3` is stored as the
//! bytes `3`); a missing key reads as `null`.
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

use std::time::Duration;

use serde_json::{json, Value};

use super::options::EtcdReads;
use crate::client::{BoxFuture, Client, Completion, Timeout};
use crate::generator::Invocation;
use crate::system::db::NodeInfo;
use crate::workload::is_read_only;

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
        match outcome {
            Ok(true) => Completion::ok(value),
            Ok(false) => Completion::fail(value, "cas-mismatch"),
            Err(e @ (CallError::NotSent(_) | CallError::Rejected(_))) => {
                Completion::fail(value, describe(&e))
            }
            Err(e @ CallError::Indefinite(_)) => Completion::info(value, describe(&e)),
        }
    }
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
