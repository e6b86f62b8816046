//! Multi-primary last-write-wins, and crashes with and without fsync.

use serde_json::json;
use std::time::Duration;

use crate::support::{eventually, Cluster, SERIAL};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_primary_drops_acknowledged_writes_from_a_slow_clock() {
    let _serial = SERIAL.lock().await;
    let flags = [
        "--topology",
        "multi-primary",
        "--write-concern",
        "one",
        "--admin",
    ];
    let cluster = Cluster::start(3, &flags, false).await;
    let clients: Vec<_> = (0..3).map(|i| cluster.client(i)).collect();
    eventually("every node answers", Duration::from_secs(5), || async {
        (cluster.statuses().await.len() == 3).then_some(())
    })
    .await;
    clients[0].put("k", &json!(1)).await.expect("put on n1");
    clients[1].set_clock_offset(-60_000).await.expect("skew n2");
    clients[1]
        .put("k", &json!(2))
        .await
        .expect("acknowledged on n2");
    clients[2].put("other", &json!(3)).await.expect("put on n3");
    for client in &clients {
        eventually("n3's write everywhere", Duration::from_secs(5), || async {
            (client.get("other").await.ok()? == json!(3)).then_some(())
        })
        .await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    for client in &clients {
        assert_eq!(
            client.get("k").await.unwrap(),
            json!(1),
            "n2's write has an older timestamp and loses"
        );
    }
    clients[1].set_clock_offset(0).await.expect("reset n2");
    clients[1].put("k", &json!(4)).await.expect("put on n2");
    for client in &clients {
        eventually(
            "n2's new write everywhere",
            Duration::from_secs(5),
            || async { (client.get("k").await.ok()? == json!(4)).then_some(()) },
        )
        .await;
    }
}

async fn crash_and_restart(fsync: &str) -> serde_json::Value {
    let flags = [
        "--fsync",
        fsync,
        "--flush-interval-ms",
        "60000",
        "--write-concern",
        "one",
        "--admin",
    ];
    let mut cluster = Cluster::start(1, &flags, false).await;
    let client = cluster.client(cluster.wait_primary(None).await);
    client.put("a", &json!(1)).await.expect("put");
    client.crash().await.expect("crash");
    let exit = cluster.nodes[0]
        .wait_exit(Duration::from_secs(5))
        .expect("the node exits");
    assert!(!exit.success());
    cluster.nodes[0].start();
    cluster.wait_primary(None).await;
    client.get("a").await.expect("read after restart")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_loses_unflushed_writes_with_fsync_never() {
    let _serial = SERIAL.lock().await;
    assert_eq!(crash_and_restart("never").await, json!(null));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_keeps_synced_writes_with_fsync_always() {
    let _serial = SERIAL.lock().await;
    assert_eq!(crash_and_restart("always").await, json!(1));
}
