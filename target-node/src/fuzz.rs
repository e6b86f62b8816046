//! The entry point of the HTTP fuzz target (`fuzz/`, `cargo +nightly
//! fuzz run node_http`) and of the stable test that replays its corpus:
//! arbitrary bytes become one HTTP request to a live single-node cluster's
//! router, which must answer (any status) without a panic, a hang or a
//! memory blow-up.
//!
//! The node is real (its replication state machine, its oplog writer thread
//! and its data dir under the system's temporary directory), elects itself
//! primary on its ticker, and is opened afresh every [`NODE_LIFETIME`]
//! requests so its oplog stays small. Admin endpoints are off: one of them
//! ends the process by design.
//!
//! An input is `[method, route, path..., b'\n', body...]`: the first byte
//! picks the method, the second a route prefix (so every route is reached)
//! and whether the body is declared JSON; the path bytes up to the first
//! newline follow the prefix; the rest is the body.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, Method, Request};
use clap::Parser;
use tower::ServiceExt;

use crate::node::Node;
use crate::NodeArgs;

/// Requests one node serves before it is replaced by a fresh one.
const NODE_LIFETIME: u64 = 5_000;
/// The most of an answer's body that is read.
const ANSWER_LIMIT: usize = 4 << 20;

const METHODS: [Method; 7] = [
    Method::GET,
    Method::PUT,
    Method::POST,
    Method::DELETE,
    Method::PATCH,
    Method::HEAD,
    Method::OPTIONS,
];

const ROUTES: [&str; 8] = [
    "/kv/", "/kv/k/", "/txn", "/status", "/peer", "/admin/", "/", "",
];

/// The node's flags, parsed as `faultline node` parses them.
#[derive(Parser)]
struct Flags {
    #[command(flatten)]
    node: NodeArgs,
}

/// The live node the requests go to.
struct Target {
    runtime: tokio::runtime::Runtime,
    node: Option<(Arc<Node>, tokio::task::JoinHandle<()>)>,
    served: u64,
    data_dir: PathBuf,
}

/// One request decoded from `data`, sent to the node, its answer read;
/// the answer's status code, or `None` when `data` decodes to no request.
pub fn http(data: &[u8]) -> Option<u16> {
    let request = decode(data)?;
    static TARGET: OnceLock<Mutex<Target>> = OnceLock::new();
    let target = TARGET.get_or_init(|| Mutex::new(Target::new()));
    let mut target = target.lock().unwrap_or_else(|e| e.into_inner());
    let node = target.node();
    target.runtime.block_on(async move {
        let Ok(answer) = crate::server::router(node).oneshot(request).await;
        let status = answer.status().as_u16();
        let _ = axum::body::to_bytes(answer.into_body(), ANSWER_LIMIT).await;
        Some(status)
    })
}

/// The request `data` describes, or `None` when its path is no URI.
fn decode(data: &[u8]) -> Option<Request<Body>> {
    let (&method, rest) = data.split_first()?;
    let (&route, rest) = rest.split_first()?;
    let (path, body) = match rest.iter().position(|&b| b == b'\n') {
        Some(at) => (&rest[..at], &rest[at + 1..]),
        None => (rest, &[][..]),
    };
    let mut uri = ROUTES[route as usize % ROUTES.len()].as_bytes().to_vec();
    uri.extend_from_slice(path);
    let mut builder = Request::builder()
        .method(METHODS[method as usize % METHODS.len()].clone())
        .uri(axum::http::Uri::try_from(uri).ok()?);
    if route & 0x80 != 0 {
        builder = builder.header(header::CONTENT_TYPE, "application/json");
    }
    builder.body(Body::from(body.to_vec())).ok()
}

impl Target {
    fn new() -> Target {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("a runtime for the fuzzed node");
        let data_dir =
            std::env::temp_dir().join(format!("faultline-fuzz-node-{}", std::process::id()));
        Target {
            runtime,
            node: None,
            served: 0,
            data_dir,
        }
    }

    /// The node to send the next request to: the current one, or a fresh
    /// one on an empty data dir when there is none or it has served its
    /// [`NODE_LIFETIME`].
    fn node(&mut self) -> Arc<Node> {
        self.served += 1;
        if self.served.is_multiple_of(NODE_LIFETIME) {
            self.close();
        }
        if self.node.is_none() {
            self.node = Some(self.open());
        }
        let (node, _) = self.node.as_ref().expect("opened above");
        node.clone()
    }

    fn open(&self) -> (Arc<Node>, tokio::task::JoinHandle<()>) {
        let _ = std::fs::remove_dir_all(&self.data_dir);
        let dir = self.data_dir.display().to_string();
        let args = Flags::try_parse_from([
            "node",
            "--id",
            "n1",
            "--listen",
            "127.0.0.1:1",
            "--data-dir",
            &dir,
            "--fsync",
            "never",
            "--flush-interval-ms",
            "1",
            "--heartbeat-ms",
            "2",
            "--election-timeout-ms",
            "5",
            "--request-timeout-ms",
            "300",
        ])
        .expect("the fuzzed node's flags parse")
        .node;
        let _entered = self.runtime.enter();
        let (node, _) = crate::open_node(&args).expect("the fuzzed node opens");
        let ticker = self
            .runtime
            .spawn(crate::tick_forever(node.clone(), Duration::from_millis(1)));
        (node, ticker)
    }

    fn close(&mut self) {
        if let Some((node, ticker)) = self.node.take() {
            ticker.abort();
            node.close();
        }
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        self.close();
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_decoded_request_names_its_method_route_path_and_body() {
        let request = decode(b"\x01\x80abc\n[1]").unwrap();
        assert_eq!(request.method(), Method::PUT);
        assert_eq!(request.uri().path(), "/kv/abc");
        assert_eq!(request.headers()[header::CONTENT_TYPE], "application/json");
        assert!(decode(b"\x00\x02 bad path\n").is_none());
        assert!(decode(b"\x00").is_none());
    }

    #[test]
    fn requests_reach_a_live_node_and_are_answered() {
        assert_eq!(http(b"\x00\x03"), Some(200), "GET /status");
        assert_eq!(http(b"\x02\x82\n\xff\xfe{["), Some(400), "a txn of garbage");
        assert_eq!(http(b"\x00\x06nothing"), Some(404), "no route at /nothing");
        // The node elects itself within a few ticks; then it takes writes.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while http(b"\x01\x80k1\n42") != Some(200) {
            assert!(std::time::Instant::now() < deadline, "never took a write");
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(http(b"\x00\x00k1"), Some(200), "GET /kv/k1");
    }
}
