//! Bad requests get a 4xx with a reason and change nothing.

use reqwest::Method;
use serde_json::json;
use target_node::api::{ErrorBody, ErrorKind};

use crate::support::{Cluster, SERIAL};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_a_reason_and_change_nothing() {
    let _serial = SERIAL.lock().await;
    let cluster = Cluster::start(1, &[], false).await;
    let client = cluster.client(cluster.wait_primary(None).await);
    client.put("k", &json!(1)).await.expect("put");
    let before = client.status().await.unwrap();
    let base = client.base_url().to_string();
    let huge = format!("\"{}\"", "x".repeat(2 << 20));
    let cases: Vec<(Method, &str, String, u16, ErrorKind)> = vec![
        (
            Method::PUT,
            "/kv/k",
            "{bad".into(),
            400,
            ErrorKind::BadRequest,
        ),
        (Method::PUT, "/kv/k", huge, 413, ErrorKind::BadRequest),
        (
            Method::PUT,
            "/kv/a%2Fb",
            "1".into(),
            400,
            ErrorKind::BadRequest,
        ),
        (
            Method::PUT,
            "/kv/a%20b",
            "1".into(),
            400,
            ErrorKind::BadRequest,
        ),
        (
            Method::GET,
            "/nope",
            String::new(),
            404,
            ErrorKind::BadRequest,
        ),
        (
            Method::DELETE,
            "/kv/k",
            String::new(),
            405,
            ErrorKind::BadRequest,
        ),
        (
            Method::POST,
            "/kv/k/cas",
            r#"{"from":1}"#.into(),
            400,
            ErrorKind::BadRequest,
        ),
        (
            Method::POST,
            "/kv/k/cas",
            r#"[1,2]"#.into(),
            400,
            ErrorKind::BadRequest,
        ),
        (
            Method::POST,
            "/kv/k/cas",
            r#"{"from":2,"to":3}"#.into(),
            409,
            ErrorKind::CasMismatch,
        ),
        (
            Method::POST,
            "/kv/k/append",
            "5".into(),
            400,
            ErrorKind::BadRequest,
        ),
        (
            Method::POST,
            "/txn",
            r#"[["append","k",1]]"#.into(),
            409,
            ErrorKind::TxnConflict,
        ),
        (
            Method::POST,
            "/txn",
            r#"[["w","j",1],["append","k",1]]"#.into(),
            409,
            ErrorKind::TxnConflict,
        ),
        (
            Method::POST,
            "/txn",
            r#"[["r","k",1]]"#.into(),
            400,
            ErrorKind::BadRequest,
        ),
        (
            Method::POST,
            "/txn",
            r#"[["x","k",1]]"#.into(),
            400,
            ErrorKind::BadRequest,
        ),
        (
            Method::POST,
            "/txn",
            "[]".into(),
            400,
            ErrorKind::BadRequest,
        ),
        (
            Method::POST,
            "/admin/crash",
            String::new(),
            404,
            ErrorKind::BadRequest,
        ),
        (
            Method::POST,
            "/peer",
            r#"{"type":"append"}"#.into(),
            400,
            ErrorKind::BadRequest,
        ),
    ];
    let http = reqwest::Client::new();
    for (method, path, body, status, kind) in cases {
        // A server that refuses a huge body without reading it may reset the
        // connection before the client reads the answer: retry a few times.
        let mut response = None;
        for _ in 0..5 {
            let sent = http
                .request(method.clone(), format!("{base}{path}"))
                .body(body.clone())
                .send()
                .await;
            if let Ok(answer) = sent {
                response = Some(answer);
                break;
            }
        }
        let response = response.expect("an answer");
        assert_eq!(response.status().as_u16(), status, "{method} {path}");
        let error: ErrorBody = response.json().await.expect("an error body");
        assert_eq!(error.error, kind, "{method} {path}: {error}");
        assert!(!error.message.is_empty());
    }
    let after = client.status().await.unwrap();
    assert_eq!(after.oplog, before.oplog, "no entry was added");
    assert_eq!(client.get("k").await.unwrap(), json!(1));
    assert_eq!(
        client.get("j").await.unwrap(),
        json!(null),
        "the failed transaction left nothing"
    );
}
