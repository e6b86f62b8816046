//! Writes replicate; a restarted secondary catches up incrementally.

use serde_json::json;
use std::time::Duration;
use target_node::api::MicroOp;

use crate::support::{eventually, Cluster, SERIAL};

const MAJORITY: &[&str] = &[
    "--write-concern",
    "majority",
    "--election",
    "majority",
    "--reads",
    "local",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_replicate_to_every_node() {
    let _serial = SERIAL.lock().await;
    let cluster = Cluster::start(3, MAJORITY, false).await;
    let primary = cluster.client(cluster.wait_primary(None).await);
    for i in 0..20 {
        primary.put(&format!("k{i}"), &json!(i)).await.expect("put");
    }
    primary.append("list", &json!(1)).await.expect("append");
    primary
        .cas("k0", &json!(0), &json!("zero"))
        .await
        .expect("cas");
    let txn: Vec<MicroOp> =
        serde_json::from_value(json!([["append", "list", 2], ["r", "list", null]])).unwrap();
    let done = primary.txn(&txn).await.expect("txn");
    assert_eq!(done[1].2, json!([1, 2]));
    for i in 0..3 {
        let client = cluster.client(i);
        eventually(
            "the last write on every node",
            Duration::from_secs(5),
            || async { (client.get("list").await.ok()? == json!([1, 2])).then_some(()) },
        )
        .await;
        assert_eq!(client.get("k0").await.unwrap(), json!("zero"));
        for j in 1..20 {
            assert_eq!(
                client.get(&format!("k{j}")).await.unwrap(),
                json!(j),
                "k{j} on n{}",
                i + 1
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarted_secondary_fetches_only_the_missing_entries() {
    let _serial = SERIAL.lock().await;
    let mut cluster = Cluster::start(3, MAJORITY, false).await;
    let p = cluster.wait_primary(None).await;
    let primary = cluster.client(p);
    for i in 0..20 {
        primary.put(&format!("a{i}"), &json!(i)).await.expect("put");
    }
    let s = (p + 1) % 3;
    let secondary = cluster.client(s);
    let last = primary.status().await.unwrap().oplog.index;
    eventually(
        "the secondary has everything on disk",
        Duration::from_secs(5),
        || async { (secondary.status().await.ok()?.durable_index == last).then_some(()) },
    )
    .await;
    cluster.nodes[s].kill();
    for i in 0..30 {
        primary
            .put(&format!("b{i}"), &json!(i))
            .await
            .expect("put with one node down");
    }
    let target = primary.status().await.unwrap().oplog;
    cluster.nodes[s].start();
    let status = eventually(
        "the restarted secondary catches up",
        Duration::from_secs(10),
        || async {
            let status = secondary.status().await.ok()?;
            (status.oplog == target).then_some(status)
        },
    )
    .await;
    assert_eq!(
        status.counters.entries_recovered, last,
        "recovered from its own disk"
    );
    assert_eq!(
        status.counters.entries_received, 30,
        "fetched only the 30 missing entries"
    );
    assert_eq!(secondary.get("b29").await.unwrap(), json!(29));
    assert_eq!(secondary.get("a0").await.unwrap(), json!(0));
}
