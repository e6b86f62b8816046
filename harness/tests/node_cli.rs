//! `faultline node` runs the shipped target-node inside the faultline
//! executable: three of them on loopback elect one primary, take a write
//! through it and replicate it. (The node itself is tested in depth in
//! `target-node/tests`; this proves the embedding the harness relies on.)

mod support;

use std::net::TcpListener;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;
use support::faultline;
use target_node::client::{primary_among, Client};

/// Child processes killed when the test ends, however it ends.
struct Cluster(Vec<Child>);

impl Drop for Cluster {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_faultline_nodes_elect_a_primary_and_replicate_a_write() {
    let dir = tempfile::tempdir().unwrap();
    let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let url = |i: usize| format!("http://127.0.0.1:{}", ports[i]);
    let mut cluster = Cluster(Vec::new());
    for (i, port) in ports.iter().enumerate() {
        let peers: Vec<String> = (0..3)
            .filter(|&j| j != i)
            .map(|j| format!("n{}={}", j + 1, url(j)))
            .collect();
        let child = faultline()
            .args(["node", "--id", &format!("n{}", i + 1)])
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .args(["--peers", &peers.join(",")])
            .arg("--data-dir")
            .arg(dir.path().join(format!("n{}", i + 1)))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("faultline node starts");
        cluster.0.push(child);
    }
    let clients: Vec<Client> = (0..3)
        .map(|i| Client::new(url(i), Duration::from_secs(2)))
        .collect();

    let deadline = Instant::now() + Duration::from_secs(20);
    let primary = loop {
        assert!(Instant::now() < deadline, "no primary elected within 20 s");
        let mut statuses = Vec::new();
        for c in &clients {
            if let Ok(s) = c.status().await {
                statuses.push(s);
            }
        }
        if let Some(p) = primary_among(&statuses) {
            break p.id.to_string();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let index: usize = primary.trim_start_matches('n').parse::<usize>().unwrap() - 1;
    clients[index]
        .put("k", &json!(42))
        .await
        .expect("the primary takes a write");
    assert_eq!(clients[index].get("k").await.unwrap(), json!(42));

    // Every node's oplog reaches the write (majority concern acked it on two).
    let acked = clients[index].status().await.unwrap().oplog.index;
    let deadline = Instant::now() + Duration::from_secs(10);
    for c in &clients {
        loop {
            assert!(
                Instant::now() < deadline,
                "{} did not catch up",
                c.base_url()
            );
            if c.status()
                .await
                .map(|s| s.oplog.index >= acked)
                .unwrap_or(false)
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

#[test]
fn bad_node_flag_is_a_usage_error() {
    let out = faultline()
        .args([
            "node",
            "--id",
            "n1",
            "--listen",
            "nope",
            "--data-dir",
            "/tmp/x",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--listen"));
}
