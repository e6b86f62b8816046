//! Asking nodes for `GET /status`, blocking and bounded in time.
//!
//! The lifecycle layer is synchronous (the runner calls it from
//! `spawn_blocking` or a plain thread), so it does not use the async
//! [`target_node::client::Client`]: a nested runtime would panic inside the
//! runner's. A status request is one HTTP/1.1 exchange on a fresh loopback
//! connection with `Connection: close`, so a plain socket with deadlines
//! suffices.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use target_node::api::Status;
use target_node::client::primary_among;

use crate::system::db::NodeInfo;

/// Largest answer read, in bytes (a status is well under 4 KiB).
const MAX_ANSWER: usize = 1 << 20;

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

/// `GET {url}/status`, parsed as target-node's [`Status`], within `timeout`.
pub fn fetch_status(url: &str, timeout: Duration) -> Result<Status, StatusError> {
    let (code, body) = http_get(url, "/status", timeout)?;
    if code != 200 {
        return Err(StatusError::NotStatus(format!(
            "HTTP {code}: {}",
            String::from_utf8_lossy(&body[..body.len().min(200)])
        )));
    }
    serde_json::from_slice(&body).map_err(|e| StatusError::NotStatus(e.to_string()))
}

/// Every node's status, asked in parallel (a paused node costs one
/// `timeout`, not one per node), in the order of `nodes`.
pub fn statuses(nodes: &[NodeInfo], timeout: Duration) -> Vec<Result<Status, StatusError>> {
    std::thread::scope(|scope| {
        let asks: Vec<_> = nodes
            .iter()
            .map(|n| scope.spawn(move || fetch_status(&n.url, timeout)))
            .collect();
        asks.into_iter()
            .map(|ask| {
                ask.join()
                    .unwrap_or_else(|_| Err(StatusError::NoAnswer("status thread panicked".into())))
            })
            .collect()
    })
}

/// The primary in the highest term among the nodes that answer within
/// `timeout` ([`primary_among`]), by id.
pub fn primary_of(nodes: &[NodeInfo], timeout: Duration) -> Option<String> {
    let answered: Vec<Status> = statuses(nodes, timeout)
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
pub fn converged(nodes: &[NodeInfo], timeout: Duration) -> bool {
    let answered: Vec<Status> = match statuses(nodes, timeout).into_iter().collect() {
        Ok(all) => all,
        Err(_) => return false,
    };
    let Some(first) = answered.first() else {
        return true;
    };
    if first.mode.topology == target_node::mode::Topology::MultiPrimary {
        // Every node is primary and writes its own oplog: positions are not
        // comparable across nodes, so answering is all that can be asked.
        return true;
    }
    let primaries: Vec<&Status> = answered
        .iter()
        .filter(|s| s.role == target_node::api::Role::Primary)
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

/// Whether a TCP connection to `url`'s host and port succeeds within `timeout`.
pub fn accepts_connections(url: &str, timeout: Duration) -> bool {
    address(url).is_ok_and(|addr| TcpStream::connect_timeout(&addr, timeout).is_ok())
}

/// One line per node for error messages: `n1: primary in term 3`.
pub(crate) fn describe(nodes: &[NodeInfo], answers: &[Result<Status, StatusError>]) -> String {
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

/// One `GET`, returning the status code and the (de-chunked) body.
fn http_get(url: &str, path: &str, timeout: Duration) -> Result<(u16, Vec<u8>), StatusError> {
    let deadline = Instant::now() + timeout;
    let addr = address(url)?;
    let mut stream = TcpStream::connect_timeout(&addr, timeout)
        .map_err(|e| StatusError::Unreachable(e.to_string()))?;
    let no_answer = |e: std::io::Error| StatusError::NoAnswer(e.to_string());
    stream.set_write_timeout(Some(timeout)).map_err(no_answer)?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).map_err(no_answer)?;
    let mut answer = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(StatusError::NoAnswer(format!("nothing within {timeout:?}")));
        }
        stream.set_read_timeout(Some(left)).map_err(no_answer)?;
        match stream.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => answer.extend_from_slice(&buffer[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(no_answer(e)),
        }
        if answer.len() > MAX_ANSWER {
            return Err(StatusError::NotStatus("answer too large".into()));
        }
    }
    parse_response(&answer)
}

/// Splits an HTTP/1.1 response into status code and body.
fn parse_response(answer: &[u8]) -> Result<(u16, Vec<u8>), StatusError> {
    let not_http = || {
        StatusError::NotStatus(format!(
            "not an HTTP answer: {:?}",
            String::from_utf8_lossy(&answer[..answer.len().min(80)])
        ))
    };
    let split = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(not_http)?;
    let head = String::from_utf8_lossy(&answer[..split]);
    let body = &answer[split + 4..];
    let mut lines = head.split("\r\n");
    let code = lines
        .next()
        .filter(|l| l.starts_with("HTTP/1."))
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse::<u16>().ok())
        .ok_or_else(not_http)?;
    let chunked = lines.any(|l| {
        let l = l.to_ascii_lowercase();
        l.starts_with("transfer-encoding:") && l.contains("chunked")
    });
    let body = if chunked {
        dechunk(body).ok_or_else(|| StatusError::NoAnswer("truncated chunked body".into()))?
    } else {
        body.to_vec()
    };
    Ok((code, body))
}

/// Decodes a chunked body; `None` when it is cut short.
fn dechunk(mut body: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = body.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&body[..line_end]).ok()?;
        let size_text = size_text.split(';').next()?.trim();
        let size = usize::from_str_radix(size_text, 16).ok()?;
        body = &body[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(body.get(..size)?);
        body = body.get(size + 2..)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_plain_and_chunked_answers() {
        let plain = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}";
        assert_eq!(parse_response(plain).unwrap(), (200, b"{}".to_vec()));
        let chunked =
            b"HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
        assert_eq!(parse_response(chunked).unwrap(), (404, b"abcde".to_vec()));
        assert!(matches!(
            parse_response(b"-ERR unknown command\r\n"),
            Err(StatusError::NotStatus(_))
        ));
    }

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
}
