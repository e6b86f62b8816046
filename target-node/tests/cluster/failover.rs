//! A killed primary is replaced, and the new primary has every
//! majority-acknowledged write.

use serde_json::json;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::support::{Cluster, SERIAL};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_primary_is_replaced_and_keeps_every_majority_acked_write() {
    let _serial = SERIAL.lock().await;
    let flags = [
        "--write-concern",
        "majority",
        "--election",
        "majority",
        "--reads",
        "linearizable",
    ];
    let mut cluster = Cluster::start(5, &flags, false).await;
    let old = cluster.wait_primary(None).await;
    let clients: Vec<_> = (0..5).map(|i| cluster.client(i)).collect();
    let target = Arc::new(AtomicUsize::new(old));
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(Mutex::new(Vec::new()));
    let writer = {
        let (clients, target, stop, acked) =
            (clients.clone(), target.clone(), stop.clone(), acked.clone());
        tokio::spawn(async move {
            for i in 0..2_000 {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                let to = target.load(Ordering::SeqCst);
                match clients[to].put(&format!("w{i}"), &json!(i)).await {
                    Ok(_) => acked.lock().unwrap().push(i),
                    Err(e) => {
                        let hint = e
                            .primary_hint()
                            .and_then(|p| p.0[1..].parse::<usize>().ok());
                        target.store(hint.map_or((to + 1) % 5, |n| n - 1), Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(400)).await;
    let acked_before_kill = acked.lock().unwrap().len();
    cluster.nodes[old].kill();
    let old_id = cluster.nodes[old].id.clone();
    let new = cluster.wait_primary(Some(&old_id)).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    stop.store(true, Ordering::SeqCst);
    writer.await.unwrap();
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked_before_kill >= 5,
        "only {acked_before_kill} writes before the kill"
    );
    assert!(
        acked.len() > acked_before_kill,
        "no write acknowledged after the failover"
    );
    for i in acked {
        assert_eq!(
            clients[new].get(&format!("w{i}")).await.unwrap(),
            json!(i),
            "acknowledged write w{i} lost"
        );
    }
}
