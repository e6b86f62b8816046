//! Asking nodes for `GET /status` through target-node's own async client,
//! and what the harness reads from the answers: the primary, whether the
//! cluster has settled, whether the nodes are ready.
//!
//! The lifecycle layer is synchronous (the runner calls it from
//! `block_in_place` or a plain thread); it waits for the nodes with
//! [`block_on`], a current-thread runtime of its own for the duration of
//! the wait. That is allowed on a plain thread and inside `block_in_place`,
//! not on a runtime's worker thread otherwise.

use std::future::Future;
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

use target_node::api::{Role, Status};
use target_node::client::{primary_among, Client, OpError};
use target_node::mode::Topology;

use crate::system::db::NodeInfo;

/// How long [`primary_of`] and [`settled`] wait for each node's status.
pub const STATUS_TIMEOUT: Duration = Duration::from_secs(1);

/// Why a node's status could not be had.
#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    /// No connection could be made (not listening yet, or dead).
    #[error("unreachable: {0}")]
    Unreachable(String),
    /// Connected, but no complete answer in time (paused, overloaded).
    #[error("no answer: {0}")]
    NoAnswer(String),
    /// It answered, but not with target-node's status JSON.
    #[error("not a target-node status: {0}")]
    NotStatus(String),
}

impl From<OpError> for StatusError {
    fn from(e: OpError) -> StatusError {
        match e {
            OpError::Unreachable(e) => StatusError::Unreachable(e),
            OpError::NoAnswer(e) => StatusError::NoAnswer(e),
            OpError::Malformed(e) => StatusError::NotStatus(e),
            OpError::Node(body) => {
                StatusError::NotStatus(format!("{}: {}", body.error, body.message))
            }
        }
    }
}

/// `GET {url}/status`, parsed as target-node's [`Status`], within `timeout`.
pub async fn status_of(url: &str, timeout: Duration) -> Result<Status, StatusError> {
    Ok(Client::new(url, timeout).status().await?)
}

/// [`status_of`] for synchronous callers (see the module docs).
pub fn fetch_status(url: &str, timeout: Duration) -> Result<Status, StatusError> {
    block_on(status_of(url, timeout))
        .unwrap_or_else(|e| Err(StatusError::NoAnswer(format!("no runtime: {e}"))))
}

/// Runs `future` to completion on a current-thread runtime of its own.
pub fn block_on<F: Future>(future: F) -> std::io::Result<F::Output> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    Ok(runtime.block_on(future))
}

/// Every node's status, asked in parallel (a paused node costs one
/// `timeout`, not one per node), in the order of `nodes`.
pub async fn statuses(nodes: &[NodeInfo], timeout: Duration) -> Vec<Result<Status, StatusError>> {
    let asks: Vec<_> = nodes
        .iter()
        .map(|n| {
            let url = n.url.clone();
            tokio::spawn(async move { status_of(&url, timeout).await })
        })
        .collect();
    let mut answers = Vec::with_capacity(asks.len());
    for ask in asks {
        answers.push(
            ask.await
                .unwrap_or_else(|e| Err(StatusError::NoAnswer(format!("status task: {e}")))),
        );
    }
    answers
}

/// The primary in the highest term among the nodes that answer within
/// `timeout` ([`primary_among`]), by id.
pub async fn primary_of(nodes: &[NodeInfo], timeout: Duration) -> Option<String> {
    let answered: Vec<Status> = statuses(nodes, timeout)
        .await
        .into_iter()
        .filter_map(Result::ok)
        .collect();
    primary_among(&answered).map(|s| s.id.0.clone())
}

/// Whether the cluster has settled after the faults healed: every node
/// answers; in the primary topology exactly one node is primary, every node
/// is in its term and follows it, and every oplog has caught up with the
/// primary's (same last position). In multi-primary topology: every node
/// answers.
pub async fn settled(nodes: &[NodeInfo], timeout: Duration) -> bool {
    let answered: Vec<Status> = match statuses(nodes, timeout).await.into_iter().collect() {
        Ok(all) => all,
        Err(_) => return false,
    };
    let Some(first) = answered.first() else {
        return true;
    };
    if first.mode.topology == Topology::MultiPrimary {
        // Every node is primary and writes its own oplog: positions are not
        // comparable across nodes, so answering is all that can be asked.
        return true;
    }
    let primaries: Vec<&Status> = answered
        .iter()
        .filter(|s| s.role == Role::Primary)
        .collect();
    let [primary] = primaries[..] else {
        return false;
    };
    answered.iter().all(|s| {
        s.term == primary.term
            && s.primary.as_ref() == Some(&primary.id)
            && s.oplog == primary.oplog
    })
}

/// Whether every answer is a status and, when `need_primary`, a primary is
/// known among them.
pub fn all_ready(answers: &[Result<Status, StatusError>], need_primary: bool) -> bool {
    let statuses: Vec<Status> = answers
        .iter()
        .filter_map(|a| a.as_ref().ok())
        .cloned()
        .collect();
    statuses.len() == answers.len() && (!need_primary || primary_among(&statuses).is_some())
}

/// Whether some answer is a status and a primary is known among them.
pub fn knows_primary(answers: &[Result<Status, StatusError>]) -> bool {
    let statuses: Vec<Status> = answers
        .iter()
        .filter_map(|a| a.as_ref().ok())
        .cloned()
        .collect();
    primary_among(&statuses).is_some()
}

/// Whether a TCP connection to `url`'s host and port succeeds within `timeout`.
pub fn accepts_connections(url: &str, timeout: Duration) -> bool {
    address(url).is_ok_and(|addr| TcpStream::connect_timeout(&addr, timeout).is_ok())
}

/// One line per node for error messages: `n1: primary in term 3`.
pub fn describe(nodes: &[NodeInfo], answers: &[Result<Status, StatusError>]) -> String {
    nodes
        .iter()
        .zip(answers)
        .map(|(n, a)| match a {
            Ok(s) => format!("{}: {} in term {}", n.id, s.role, s.term),
            Err(e) => format!("{} ({}): {e}", n.id, n.url),
        })
        .collect::<Vec<_>>()
        .join("; ")
}

fn address(url: &str) -> Result<SocketAddr, StatusError> {
    let bad = || StatusError::Unreachable(format!("{url:?} is not http://host:port"));
    let rest = url.strip_prefix("http://").ok_or_else(bad)?;
    let host_port = rest.split('/').next().unwrap_or_default();
    host_port
        .to_socket_addrs()
        .map_err(|e| StatusError::Unreachable(format!("{host_port}: {e}")))?
        .next()
        .ok_or_else(bad)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn a_closed_port_is_unreachable_and_a_silent_one_gives_no_answer() {
        let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = silent.local_addr().unwrap().port();
        let url = format!("http://127.0.0.1:{port}");
        let started = Instant::now();
        let err = fetch_status(&url, Duration::from_millis(200)).unwrap_err();
        assert!(matches!(err, StatusError::NoAnswer(_)), "{err}");
        assert!(started.elapsed() < Duration::from_secs(2));
        assert!(accepts_connections(&url, Duration::from_millis(200)));
        drop(silent);
        let err = fetch_status(&url, Duration::from_millis(200)).unwrap_err();
        assert!(matches!(err, StatusError::Unreachable(_)), "{err}");
    }

    #[test]
    fn an_answer_that_is_not_a_status_says_so() {
        let server = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", server.local_addr().unwrap());
        let answer = std::thread::spawn(move || {
            use std::io::{Read, Write};
            let (mut stream, _) = server.accept().unwrap();
            let mut request = [0u8; 1024];
            let _ = stream.read(&mut request);
            let body = "-ERR unknown command";
            let reply = format!(
                "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            stream.write_all(reply.as_bytes()).unwrap();
        });
        let err = fetch_status(&url, Duration::from_secs(2)).unwrap_err();
        assert!(matches!(err, StatusError::NotStatus(_)), "{err}");
        answer.join().unwrap();
    }
}
