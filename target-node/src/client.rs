//! A typed async client for a node's HTTP API, for the harness and tests.
//!
//! Every call returns `Result<_, OpError>`; [`OpError::is_definite`] says
//! whether the operation certainly did not happen (Jepsen `fail`) or might
//! have (`info`). To find the primary, ask every node for its
//! [`Client::status`] and take [`primary_among`] them.

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use std::fmt;
use std::time::Duration;

use crate::api::{CasBody, ClockBody, ErrorBody, MicroOp, NodeId, Role, Status, WriteAck};

/// Why a client call did not succeed.
#[derive(Clone, Debug, PartialEq)]
pub enum OpError {
    /// The node answered with an error; definite unless its kind is
    /// `timeout`.
    Node(ErrorBody),
    /// The connection could not be made: the request was never sent
    /// (definite).
    Unreachable(String),
    /// The request was sent but no answer came (timeout, reset): indefinite.
    NoAnswer(String),
    /// An answer came that could not be read: indefinite.
    Malformed(String),
}

impl OpError {
    /// Whether the operation certainly did not take effect.
    pub fn is_definite(&self) -> bool {
        match self {
            OpError::Node(body) => body.error.is_definite(),
            OpError::Unreachable(_) => true,
            OpError::NoAnswer(_) | OpError::Malformed(_) => false,
        }
    }

    /// The node's error, if it answered with one.
    pub fn body(&self) -> Option<&ErrorBody> {
        match self {
            OpError::Node(body) => Some(body),
            _ => None,
        }
    }

    /// For `not-primary`: the primary the node named.
    pub fn primary_hint(&self) -> Option<&NodeId> {
        self.body().and_then(|b| b.primary.as_ref())
    }
}

impl fmt::Display for OpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OpError::Node(body) => write!(f, "{body}"),
            OpError::Unreachable(e) => write!(f, "unreachable: {e}"),
            OpError::NoAnswer(e) => write!(f, "no answer: {e}"),
            OpError::Malformed(e) => write!(f, "malformed answer: {e}"),
        }
    }
}

impl std::error::Error for OpError {}

/// A client of one node.
#[derive(Clone, Debug)]
pub struct Client {
    base_url: String,
    http: reqwest::Client,
}

impl Client {
    /// A client of the node at `base_url` (`http://127.0.0.1:PORT`) whose
    /// calls give up after `timeout`.
    pub fn new(base_url: impl Into<String>, timeout: Duration) -> Client {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .tcp_nodelay(true)
            .build()
            .unwrap_or_default();
        Client::with_http(base_url, http)
    }

    /// A client sharing an existing connection pool (and its timeout).
    pub fn with_http(base_url: impl Into<String>, http: reqwest::Client) -> Client {
        Client {
            base_url: base_url.into().trim_end_matches('/').to_string(),
            http,
        }
    }

    /// The node's base URL.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// `GET /kv/{key}`: the value, `null` when missing.
    pub async fn get(&self, key: &str) -> Result<Value, OpError> {
        self.call(self.http.get(self.url(&format!("/kv/{key}"))))
            .await
    }

    /// `PUT /kv/{key}`.
    pub async fn put(&self, key: &str, value: &Value) -> Result<WriteAck, OpError> {
        self.call(self.http.put(self.url(&format!("/kv/{key}"))).json(value))
            .await
    }

    /// `POST /kv/{key}/cas`.
    pub async fn cas(&self, key: &str, from: &Value, to: &Value) -> Result<WriteAck, OpError> {
        let body = CasBody {
            from: from.clone(),
            to: to.clone(),
        };
        self.post(&format!("/kv/{key}/cas"), &body).await
    }

    /// `POST /kv/{key}/append`.
    pub async fn append(&self, key: &str, element: &Value) -> Result<WriteAck, OpError> {
        self.post(&format!("/kv/{key}/append"), element).await
    }

    /// `POST /txn`: the micro-ops with reads filled in.
    pub async fn txn(&self, ops: &[MicroOp]) -> Result<Vec<MicroOp>, OpError> {
        self.post("/txn", &ops).await
    }

    /// `GET /status`.
    pub async fn status(&self) -> Result<Status, OpError> {
        self.call(self.http.get(self.url("/status"))).await
    }

    /// `POST /admin/clock`: set the node's clock offset (0 resets).
    pub async fn set_clock_offset(&self, offset_ms: i64) -> Result<(), OpError> {
        self.post::<ClockBody, _>("/admin/clock", &ClockBody { offset_ms })
            .await
            .map(|_| ())
    }

    /// `POST /admin/crash`: the node exits at once, losing unflushed writes.
    pub async fn crash(&self) -> Result<(), OpError> {
        match self.http.post(self.url("/admin/crash")).send().await {
            Ok(response) if response.status().is_success() => Ok(()),
            Ok(response) => Err(read_error(response).await),
            // The node may be gone before its answer leaves.
            Err(e) if !e.is_connect() => Ok(()),
            Err(e) => Err(transport_error(e)),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    async fn post<T: DeserializeOwned, B: Serialize + ?Sized>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, OpError> {
        self.call(self.http.post(self.url(path)).json(body)).await
    }

    async fn call<T: DeserializeOwned>(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<T, OpError> {
        let response = request.send().await.map_err(transport_error)?;
        if !response.status().is_success() {
            return Err(read_error(response).await);
        }
        let bytes = response
            .bytes()
            .await
            .map_err(|e| OpError::NoAnswer(e.to_string()))?;
        serde_json::from_slice(&bytes).map_err(|e| OpError::Malformed(e.to_string()))
    }
}

fn transport_error(e: reqwest::Error) -> OpError {
    if e.is_connect() {
        OpError::Unreachable(e.to_string())
    } else {
        OpError::NoAnswer(e.to_string())
    }
}

async fn read_error(response: reqwest::Response) -> OpError {
    let status = response.status();
    match response.bytes().await {
        Ok(bytes) => serde_json::from_slice::<ErrorBody>(&bytes)
            .map(OpError::Node)
            .unwrap_or_else(|_| {
                OpError::Malformed(format!(
                    "HTTP {status}: {}",
                    String::from_utf8_lossy(&bytes)
                ))
            }),
        Err(e) => OpError::NoAnswer(e.to_string()),
    }
}

/// The node that is primary in the highest term among `statuses`, if any
/// (in multi-primary topology every node is; this picks the highest id).
pub fn primary_among(statuses: &[Status]) -> Option<&Status> {
    statuses
        .iter()
        .filter(|s| s.role == Role::Primary)
        .max_by(|a, b| (a.term, &a.id).cmp(&(b.term, &b.id)))
}
