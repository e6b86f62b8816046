//! With write concern `one`, an isolated primary keeps acknowledging
//! writes that the rest of the cluster never sees; after heal it rolls them
//! back. This is the bug the harness must find.

use serde_json::json;
use std::time::Duration;
use target_node::api::Role;

use crate::support::{eventually, follows, Cluster, SERIAL};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_writes_are_lost_when_primary_is_isolated() {
    let _serial = SERIAL.lock().await;
    let flags = [
        "--write-concern",
        "one",
        "--election",
        "bully",
        "--reads",
        "local",
        "--fsync",
        "never",
    ];
    let cluster = Cluster::start(3, &flags, true).await;
    let p = cluster.wait_primary(None).await;
    let old = cluster.client(p);
    old.put("before", &json!(0)).await.expect("put");
    let old_status = old.status().await.unwrap();
    for i in 0..3 {
        let client = cluster.client(i);
        eventually("replicated", Duration::from_secs(5), || async {
            (client.get("before").await.ok()? == json!(0)).then_some(())
        })
        .await;
    }

    cluster.isolate(p);
    for i in 0..5 {
        old.put(&format!("lost{i}"), &json!(i))
            .await
            .expect("acknowledged by the isolated primary");
    }
    let (new, new_id) = eventually(
        "a second primary on the majority side",
        Duration::from_secs(5),
        || async {
            for i in (0..3).filter(|i| *i != p) {
                let status = cluster.client(i).status().await.ok()?;
                if status.role == Role::Primary && status.term > old_status.term {
                    return Some((i, status.id.0));
                }
            }
            None
        },
    )
    .await;
    let new_client = cluster.client(new);
    new_client
        .put("after", &json!(1))
        .await
        .expect("put on the new primary");

    cluster.heal();
    let status = eventually(
        "the old primary follows the new one",
        Duration::from_secs(10),
        || async {
            let status = old.status().await.ok()?;
            let target = new_client.status().await.ok()?.oplog;
            (follows(&status, &new_id) && status.oplog == target).then_some(status)
        },
    )
    .await;
    assert_eq!(status.counters.entries_rolled_back, 5);
    for i in 0..5 {
        assert_eq!(
            old.get(&format!("lost{i}")).await.unwrap(),
            json!(null),
            "lost{i} on the old primary"
        );
        assert_eq!(
            new_client.get(&format!("lost{i}")).await.unwrap(),
            json!(null)
        );
    }
    assert_eq!(old.get("after").await.unwrap(), json!(1));
    let log = cluster.nodes[p].log();
    assert_eq!(
        log.matches("rollback: discarding entry").count(),
        5,
        "each discarded entry is logged:\n{log}"
    );
}
