//! Read-only transactions are reads: they follow `--reads` exactly as
//! `GET /kv/{key}` does, so a secondary with local reads answers a
//! transaction from its own (possibly stale) state, and a secondary with
//! primary or linearizable reads refuses it, naming the primary.

use serde_json::{json, Value};
use std::time::Duration;
use target_node::api::{ErrorKind, MicroOp};
use target_node::client::{Client, OpError};

use crate::support::{eventually, Cluster, SERIAL};

fn txn(text: &str) -> Vec<MicroOp> {
    serde_json::from_str(text).expect("micro-ops")
}

/// What a read-only txn of key `k` on `client` says `k` holds.
async fn txn_read(client: &Client) -> Result<Value, OpError> {
    let done = client.txn(&txn(r#"[["r","k",null]]"#)).await?;
    Ok(done[0].2.clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_txn_on_an_isolated_secondary_with_local_reads_returns_its_stale_state() {
    let _serial = SERIAL.lock().await;
    let flags = [
        "--write-concern",
        "majority",
        "--election",
        "majority",
        "--reads",
        "local",
    ];
    let cluster = Cluster::start(3, &flags, true).await;
    let p = cluster.wait_primary(None).await;
    let primary = cluster.client(p);
    let s = (p + 1) % 3;
    let secondary = cluster.client(s);

    primary
        .txn(&txn(r#"[["append","k",1]]"#))
        .await
        .expect("append 1 acknowledged");
    eventually(
        "the secondary applies 1",
        Duration::from_secs(5),
        || async { (txn_read(&secondary).await.ok()? == json!([1])).then_some(()) },
    )
    .await;

    cluster.isolate(s);
    let done = primary
        .txn(&txn(r#"[["append","k",2],["r","k",null]]"#))
        .await
        .expect("append 2 acknowledged by the primary and the other secondary");
    assert_eq!(done[1].2, json!([1, 2]));
    let oplog_before = primary.status().await.expect("status").oplog;
    assert_eq!(
        txn_read(&primary).await.expect("read on primary"),
        json!([1, 2])
    );
    assert_eq!(
        primary.status().await.expect("status").oplog,
        oplog_before,
        "a read-only txn logs nothing"
    );

    assert_eq!(
        txn_read(&secondary).await.expect("served by the secondary"),
        json!([1]),
        "the isolated secondary answers from its own state, missing the acknowledged 2"
    );
    assert_eq!(
        secondary.get("k").await.expect("plain local read"),
        json!([1]),
        "the same state a plain local read sees"
    );
    let write = secondary
        .txn(&txn(r#"[["r","k",null],["append","k",3]]"#))
        .await;
    let refused = write.expect_err("a txn with a write still needs the primary");
    assert_eq!(refused.body().map(|b| b.error), Some(ErrorKind::NotPrimary));

    cluster.heal();
    eventually(
        "the secondary catches up",
        Duration::from_secs(5),
        || async { (txn_read(&secondary).await.ok()? == json!([1, 2])).then_some(()) },
    )
    .await;
}

/// With `--reads reads`, a read-only txn on a secondary is refused with the
/// same `not-primary` (and hint) as a plain read, and served on the primary.
async fn read_only_txn_needs_the_primary(reads: &str) {
    let flags = ["--reads", reads];
    let cluster = Cluster::start(3, &flags, false).await;
    let p = cluster.wait_primary(None).await;
    let primary = cluster.client(p);
    let primary_id = cluster.nodes[p].id.clone();
    primary
        .txn(&txn(r#"[["append","k",1]]"#))
        .await
        .expect("append acknowledged");
    assert_eq!(txn_read(&primary).await.expect("served"), json!([1]));

    for s in (0..3).filter(|i| *i != p) {
        let secondary = cluster.client(s);
        let by_txn = txn_read(&secondary).await.expect_err("refused");
        let by_get = secondary.get("k").await.expect_err("refused");
        for refused in [&by_txn, &by_get] {
            let body = refused.body().expect("an error answer");
            assert_eq!(body.error, ErrorKind::NotPrimary, "{reads}: {refused:?}");
            assert_eq!(
                body.primary.as_ref().map(|id| id.0.as_str()),
                Some(primary_id.as_str()),
                "{reads}: the refusal names the primary"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_txn_on_a_secondary_is_refused_with_linearizable_reads() {
    let _serial = SERIAL.lock().await;
    read_only_txn_needs_the_primary("linearizable").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_txn_on_a_secondary_is_refused_with_primary_reads() {
    let _serial = SERIAL.lock().await;
    read_only_txn_needs_the_primary("primary").await;
}
