//! The proxy backend against echo servers on loopback.
//!
//! Each node is an echo server; a test opens a connection on a link as the
//! node `from` would and watches which bytes cross. Only lower bounds are
//! asserted on time (this machine is noisy); "nothing arrives" means nothing
//! within `SILENCE`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use nemesis::grudge::{isolate, one_way};
use nemesis::net::proxy::ProxyNet;
use nemesis::net::{HealGuard, Net};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::timeout;

const SILENCE: Duration = Duration::from_millis(300);
const PATIENCE: Duration = Duration::from_secs(5);

async fn echo_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (mut read, mut write) = stream.split();
                let _ = tokio::io::copy(&mut read, &mut write).await;
            });
        }
    });
    addr
}

/// Two echo nodes `a` and `b` behind a proxy.
async fn two_nodes() -> ProxyNet {
    let nodes = BTreeMap::from([
        ("a".to_string(), echo_server().await),
        ("b".to_string(), echo_server().await),
    ]);
    ProxyNet::start(&nodes).await.unwrap()
}

fn nodes(names: &[&str]) -> Vec<String> {
    names.iter().map(|n| n.to_string()).collect()
}

async fn connect(net: &ProxyNet, from: &str, to: &str) -> TcpStream {
    let addr = net.link_addr(from, to).unwrap();
    timeout(PATIENCE, TcpStream::connect(addr))
        .await
        .unwrap()
        .unwrap()
}

/// Reads exactly `expected.len()` bytes within `within` and checks them.
async fn expect_echo(stream: &mut TcpStream, expected: &[u8], within: Duration) {
    let mut buf = vec![0u8; expected.len()];
    timeout(within, stream.read_exact(&mut buf))
        .await
        .expect("echo did not arrive in time")
        .expect("read failed");
    assert_eq!(buf, expected);
}

async fn round_trip(stream: &mut TcpStream, msg: &[u8]) {
    stream.write_all(msg).await.unwrap();
    expect_echo(stream, msg, PATIENCE).await;
}

async fn assert_silent(stream: &mut TcpStream) {
    let mut buf = [0u8; 64];
    let read = timeout(SILENCE, stream.read(&mut buf)).await;
    assert!(read.is_err(), "expected no bytes, got {read:?}");
}

/// True when the connection fails (error or EOF) within `within`.
async fn fails_within(stream: &mut TcpStream, within: Duration) -> bool {
    let _ = stream.write_all(b"probe").await;
    let mut buf = [0u8; 16];
    matches!(
        timeout(within, stream.read(&mut buf)).await,
        Ok(Err(_)) | Ok(Ok(0))
    )
}

async fn wait_until(mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < PATIENCE, "condition not reached in time");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_connection_is_blackholed_both_ways_and_resumes_after_heal() {
    let mut net = two_nodes().await;
    let mut open = connect(&net, "a", "b").await;
    round_trip(&mut open, b"before").await;

    net.partition(&isolate(&nodes(&["a", "b"]), "b")).unwrap();
    let before = net.bytes("a", "b").unwrap();
    open.write_all(b"during").await.unwrap();
    assert_silent(&mut open).await;
    let mut fresh = connect(&net, "a", "b").await;
    fresh.write_all(b"fresh").await.unwrap();
    assert_silent(&mut fresh).await;
    assert_eq!(
        net.bytes("a", "b").unwrap(),
        before,
        "bytes crossed a blackholed link"
    );

    net.heal().unwrap();
    expect_echo(&mut open, b"during", PATIENCE).await;
    expect_echo(&mut fresh, b"fresh", PATIENCE).await;
    round_trip(&mut open, b"after").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_way_grudge_holds_only_the_bytes_towards_the_dropper() {
    let mut net = two_nodes().await;
    let mut a_to_b = connect(&net, "a", "b").await;
    let mut b_to_a = connect(&net, "b", "a").await;
    round_trip(&mut a_to_b, b"warm").await;
    round_trip(&mut b_to_a, b"warm").await;

    // a drops b's traffic: bytes b → a are held, bytes a → b flow.
    net.partition(&one_way("a", "b")).unwrap();
    let ab = net.bytes("a", "b").unwrap();
    let ba = net.bytes("b", "a").unwrap();

    // On a's connection to b the request reaches b, b's echo never comes back.
    a_to_b.write_all(b"request").await.unwrap();
    wait_until(|| net.bytes("a", "b").unwrap().forward == ab.forward + 7).await;
    assert_silent(&mut a_to_b).await;
    assert_eq!(net.bytes("a", "b").unwrap().backward, ab.backward);

    // On b's connection to a the request itself is held.
    b_to_a.write_all(b"request").await.unwrap();
    assert_silent(&mut b_to_a).await;
    assert_eq!(net.bytes("b", "a").unwrap(), ba);

    net.heal().unwrap();
    expect_echo(&mut a_to_b, b"request", PATIENCE).await;
    expect_echo(&mut b_to_a, b"request", PATIENCE).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reject_resets_open_and_new_connections_fast() {
    let mut net = two_nodes().await;
    let mut open = connect(&net, "a", "b").await;
    round_trip(&mut open, b"before").await;

    net.reject(&isolate(&nodes(&["a", "b"]), "a")).unwrap();
    let start = Instant::now();
    assert!(
        fails_within(&mut open, Duration::from_secs(1)).await,
        "open connection survived reject"
    );
    // The RST may come before or after connect() returns.
    let fresh = timeout(
        PATIENCE,
        TcpStream::connect(net.link_addr("a", "b").unwrap()),
    )
    .await
    .unwrap();
    if let Ok(mut fresh) = fresh {
        assert!(
            fails_within(&mut fresh, Duration::from_secs(1)).await,
            "new connection survived reject"
        );
    }
    assert!(start.elapsed() < Duration::from_secs(2));

    net.heal().unwrap();
    let mut healed = connect(&net, "a", "b").await;
    round_trip(&mut healed, b"after").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_adds_at_least_the_asked_latency_each_way() {
    let mut net = two_nodes().await;
    let mut open = connect(&net, "a", "b").await;
    round_trip(&mut open, b"warm").await;

    let delay = Duration::from_millis(150);
    net.slow(delay, Duration::ZERO).unwrap();
    let start = Instant::now();
    round_trip(&mut open, b"slow").await;
    assert!(
        start.elapsed() >= 2 * delay,
        "round trip took only {:?}",
        start.elapsed()
    );

    net.slow(delay, Duration::from_millis(50)).unwrap();
    let start = Instant::now();
    round_trip(&mut open, b"jitter").await;
    assert!(start.elapsed() >= 2 * Duration::from_millis(100));

    net.fast().unwrap();
    round_trip(&mut open, b"fast").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flaky_with_full_loss_breaks_every_connection_until_fast() {
    let mut net = two_nodes().await;
    assert!(net.flaky(1.5).is_err());
    let mut open = connect(&net, "a", "b").await;
    round_trip(&mut open, b"warm").await;

    net.flaky(1.0).unwrap();
    assert!(
        !delivers(&mut open).await,
        "open connection slipped through"
    );
    for _ in 0..4 {
        let mut fresh = connect(&net, "a", "b").await;
        assert!(
            !delivers(&mut fresh).await,
            "new connection slipped through"
        );
    }

    net.fast().unwrap();
    let mut healed = connect(&net, "a", "b").await;
    round_trip(&mut healed, b"after").await;
}

/// True when an echo comes back within `SILENCE` (stalled or reset: false).
async fn delivers(stream: &mut TcpStream) -> bool {
    if stream.write_all(b"x").await.is_err() {
        return false;
    }
    let mut buf = [0u8; 1];
    matches!(timeout(SILENCE, stream.read(&mut buf)).await, Ok(Ok(1)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heal_guard_heals_when_dropped() {
    let mut net = two_nodes().await;
    let mut open = connect(&net, "a", "b").await;
    {
        let _guard = HealGuard::partition(&mut net, &isolate(&nodes(&["a", "b"]), "a")).unwrap();
        open.write_all(b"held").await.unwrap();
        assert_silent(&mut open).await;
    }
    expect_echo(&mut open, b"held", PATIENCE).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peer_urls_name_one_proxy_per_directed_pair() {
    let mut nodes = BTreeMap::new();
    for name in ["n1", "n2", "n3"] {
        nodes.insert(name.to_string(), echo_server().await);
    }
    let mut net = ProxyNet::start(&nodes).await.unwrap();
    let urls = net.peer_urls();
    assert_eq!(urls.len(), 3);
    let mut all = Vec::new();
    for (from, peers) in &urls {
        assert_eq!(peers.len(), 2);
        assert!(!peers.contains_key(from));
        for (to, url) in peers {
            assert_eq!(*url, format!("http://{}", net.link_addr(from, to).unwrap()));
            all.push(url.clone());
        }
    }
    all.sort();
    all.dedup();
    assert_eq!(all.len(), 6);
    assert!(
        net.partition(&one_way("n1", "zz")).is_err(),
        "a grudge naming an unknown node"
    );
}

fn listeners(net: &ProxyNet) -> Vec<SocketAddr> {
    [("a", "b"), ("b", "a")]
        .iter()
        .map(|(f, t)| net.link_addr(f, t).unwrap())
        .collect()
}

async fn refused(addr: SocketAddr) -> bool {
    matches!(
        timeout(PATIENCE, TcpStream::connect(addr)).await,
        Ok(Err(_))
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_leaves_no_listener() {
    let net = two_nodes().await;
    let addrs = listeners(&net);
    let mut open = connect(&net, "a", "b").await;
    round_trip(&mut open, b"warm").await;
    net.shutdown().await;
    for addr in addrs {
        assert!(refused(addr).await, "{addr} still accepts");
    }
    assert!(
        fails_within(&mut open, Duration::from_secs(1)).await,
        "open connection outlived the proxy"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn teardown_and_drop_leave_no_listener() {
    for use_teardown in [true, false] {
        let mut net = two_nodes().await;
        let addrs = listeners(&net);
        if use_teardown {
            net.teardown().unwrap();
        } else {
            drop(net);
        }
        // Aborted tasks release their listeners moments later.
        let start = Instant::now();
        for addr in addrs {
            while !refused(addr).await {
                assert!(start.elapsed() < PATIENCE, "{addr} still accepts");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowing_chosen_links_delays_only_those_links() {
    let mut net = two_nodes().await;
    let mut a_to_b = connect(&net, "a", "b").await;
    let mut b_to_a = connect(&net, "b", "a").await;
    round_trip(&mut a_to_b, b"warm").await;
    round_trip(&mut b_to_a, b"warm").await;

    let delay = Duration::from_millis(400);
    let chosen: std::collections::BTreeSet<(String, String)> =
        [("a".to_string(), "b".to_string())].into();
    net.slow_links(&chosen, delay, Duration::ZERO).unwrap();
    let start = Instant::now();
    round_trip(&mut a_to_b, b"slow").await;
    assert!(
        start.elapsed() >= 2 * delay,
        "the chosen link took only {:?}",
        start.elapsed()
    );
    let start = Instant::now();
    round_trip(&mut b_to_a, b"fast").await;
    assert!(
        start.elapsed() < delay,
        "the other link was slowed: {:?}",
        start.elapsed()
    );
    let unknown: std::collections::BTreeSet<(String, String)> =
        [("a".to_string(), "z".to_string())].into();
    assert!(net.slow_links(&unknown, delay, Duration::ZERO).is_err());
    net.fast().unwrap();
}
