//! The netns backend with real kernel rules.
//!
//! Each test re-executes this test binary, filtered to itself, inside a
//! private network namespace (`unshare -n`, or `unshare -Urn` without root),
//! so no rule ever touches the host; inside, it brings up loopback and talks
//! TCP between 127.0.0.11 (n1), 127.0.0.12 (n2) and 127.0.0.13 (n3), each
//! socket bound to its node's address. A test is skipped — with a message
//! saying what to install — only when `unshare`, `ip` or the firewall tool
//! is missing.
#![cfg(target_os = "linux")]

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::process::Command;
use std::time::Duration;

use nemesis::net::netns::{self, Firewall, NftNet, IPTABLES_CHAIN, NFT_TABLE, NO_NETEM};
use nemesis::{Grudge, Net, NetError};
use socket2::{Domain, Socket, Type};

/// How long a read must stay empty to count as "no bytes arrive".
const SILENCE: Duration = Duration::from_millis(300);
/// How long bytes may take after a heal: TCP retransmits with exponential
/// backoff, so the first retransmission after the heal can be seconds away.
const RESUME: Duration = Duration::from_secs(15);

fn addr(node: &str) -> IpAddr {
    let number: u8 = node[1..].parse().unwrap();
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, 10 + number))
}

fn addrs() -> BTreeMap<String, IpAddr> {
    ["n1", "n2", "n3"]
        .into_iter()
        .map(|n| (n.to_string(), addr(n)))
        .collect()
}

fn grudge(entries: &[(&str, &[&str])]) -> Grudge {
    entries
        .iter()
        .map(|(node, drops)| {
            let drops: BTreeSet<String> = drops.iter().map(|d| d.to_string()).collect();
            (node.to_string(), drops)
        })
        .collect()
}

/// Runs `body` in a private network namespace: directly when this process
/// already is in one, otherwise by re-executing this test (named `test`)
/// there and asserting it passed.
fn in_private_netns(test: &str, firewall: Firewall, body: impl FnOnce(Firewall)) {
    if netns::in_private_netns() {
        netns::bring_up_loopback().expect("bring up loopback");
        body(firewall);
        return;
    }
    let probe = netns::probe();
    let tool = match firewall {
        Firewall::Nft => &probe.nft,
        Firewall::Iptables => &probe.iptables,
    };
    let missing: Vec<&str> = [
        (tool.is_none(), firewall.program()),
        (probe.ip.is_none(), "ip"),
        (probe.unshare.is_none(), "unshare"),
    ]
    .into_iter()
    .filter_map(|(gone, name)| gone.then_some(name))
    .collect();
    if !missing.is_empty() {
        eprintln!(
            "skipped {test}: missing {} (install with `{}`)",
            missing.join(", "),
            netns::INSTALL_HINT
        );
        return;
    }
    let exe = std::env::current_exe().expect("current exe");
    let args: Vec<OsString> = [test, "--exact", "--nocapture", "--include-ignored"]
        .into_iter()
        .map(OsString::from)
        .collect();
    let output = netns::private_netns_command(&exe, &args)
        .output()
        .expect("run unshare");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("--- {test} in a private netns ---\n{stdout}{stderr}");
    assert!(output.status.success(), "{test} failed in its netns");
    assert!(
        stdout.contains("1 passed"),
        "the re-executed binary did not run {test}"
    );
}

/// A connection opened from `client`'s address to a listener on `server`'s.
struct Connection {
    client: TcpStream,
    server: TcpStream,
}

fn listen(node: &str) -> TcpListener {
    TcpListener::bind(SocketAddr::new(addr(node), 0)).expect("listen")
}

/// Connects from `node`'s own address, as target-node's `--peer-source` does.
fn connect_from(node: &str, to: SocketAddr, timeout: Duration) -> std::io::Result<TcpStream> {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None)?;
    socket.bind(&SocketAddr::new(addr(node), 0).into())?;
    socket.connect_timeout(&to.into(), timeout)?;
    Ok(socket.into())
}

fn open(client: &str, server: &str) -> Connection {
    let listener = listen(server);
    let client = connect_from(
        client,
        listener.local_addr().unwrap(),
        Duration::from_secs(2),
    )
    .expect("connect");
    let (server, _) = listener.accept().expect("accept");
    let mut connection = Connection { client, server };
    connection.exchange("hello");
    connection
}

impl Connection {
    /// Bytes flow both ways.
    fn exchange(&mut self, text: &str) {
        send(&mut self.client, text);
        assert_eq!(receive(&mut self.server, RESUME), text);
        send(&mut self.server, text);
        assert_eq!(receive(&mut self.client, RESUME), text);
    }
}

fn send(stream: &mut TcpStream, text: &str) {
    stream.write_all(text.as_bytes()).expect("write");
}

fn receive(stream: &mut TcpStream, timeout: Duration) -> String {
    stream.set_read_timeout(Some(timeout)).unwrap();
    let mut buffer = [0u8; 64];
    let n = stream.read(&mut buffer).expect("bytes should arrive");
    String::from_utf8_lossy(&buffer[..n]).into_owned()
}

fn assert_silent(stream: &mut TcpStream, what: &str) {
    stream.set_read_timeout(Some(SILENCE)).unwrap();
    let mut buffer = [0u8; 64];
    match stream.read(&mut buffer) {
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
        other => panic!("{what}: expected no bytes for {SILENCE:?}, got {other:?}"),
    }
}

fn assert_cannot_connect(from: &str, to: &str) {
    let listener = listen(to);
    let result = connect_from(from, listener.local_addr().unwrap(), SILENCE);
    assert!(result.is_err(), "{from} could still connect to {to}");
}

fn assert_can_connect(from: &str, to: &str) {
    open(from, to);
}

fn partition_blackholes_an_open_connection_both_ways_until_heal(firewall: Firewall) {
    let mut net = NftNet::with_firewall(addrs(), firewall).unwrap();
    let mut link = open("n2", "n1");
    net.partition(&grudge(&[("n1", &["n2"]), ("n2", &["n1"])]))
        .unwrap();
    send(&mut link.client, "ping");
    send(&mut link.server, "pong");
    assert_silent(&mut link.server, "n1 hears n2");
    assert_silent(&mut link.client, "n2 hears n1");
    assert_cannot_connect("n2", "n1");
    assert_can_connect("n3", "n1");
    net.heal().unwrap();
    assert_eq!(receive(&mut link.server, RESUME), "ping");
    assert_eq!(receive(&mut link.client, RESUME), "pong");
    link.exchange("again");
}

fn one_way_grudge_drops_only_what_the_grudged_node_sends(firewall: Firewall) {
    let mut net = NftNet::with_firewall(addrs(), firewall).unwrap();
    let mut link = open("n2", "n1");
    // n1 drops n2's traffic; n2 still hears n1.
    net.partition(&grudge(&[("n1", &["n2"])])).unwrap();
    send(&mut link.client, "from n2");
    assert_silent(&mut link.server, "n1 hears n2");
    send(&mut link.server, "from n1");
    assert_eq!(receive(&mut link.client, RESUME), "from n1");
    // No new connection either way: n2's SYN, or its SYN-ACK, never reaches n1.
    assert_cannot_connect("n2", "n1");
    assert_cannot_connect("n1", "n2");
    assert_can_connect("n3", "n1");
    assert_can_connect("n1", "n3");
    net.heal().unwrap();
    assert_eq!(receive(&mut link.server, RESUME), "from n2");
    link.exchange("healed");
}

fn heal_is_idempotent_and_a_partition_replaces_the_last(firewall: Firewall) {
    let mut net = NftNet::with_firewall(addrs(), firewall).unwrap();
    net.heal().unwrap();
    net.partition(&grudge(&[("n1", &["n2"])])).unwrap();
    net.partition(&grudge(&[("n1", &["n3"])])).unwrap();
    assert_can_connect("n2", "n1");
    assert_cannot_connect("n3", "n1");
    net.heal().unwrap();
    net.heal().unwrap();
    assert_can_connect("n3", "n1");
    net.partition(&Grudge::new()).unwrap();
    assert_can_connect("n3", "n1");
}

/// The rules this backend owns, as the firewall lists them.
fn listing(firewall: Firewall) -> String {
    let args: &[&str] = match firewall {
        Firewall::Nft => &["list", "tables"],
        Firewall::Iptables => &["-w", "-S"],
    };
    let probe = netns::probe();
    let program = match firewall {
        Firewall::Nft => probe.nft,
        Firewall::Iptables => probe.iptables,
    };
    let output = Command::new(program.expect("firewall tool"))
        .args(args)
        .output()
        .expect("list rules");
    assert!(output.status.success(), "{output:?}");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn owned_rules_present(firewall: Firewall) -> bool {
    let text = listing(firewall);
    match firewall {
        Firewall::Nft => text
            .lines()
            .any(|l| l.trim() == format!("table inet {NFT_TABLE}")),
        Firewall::Iptables => text.contains(IPTABLES_CHAIN),
    }
}

fn teardown_removes_the_rules_and_is_idempotent(firewall: Firewall) {
    let mut net = NftNet::with_firewall(addrs(), firewall).unwrap();
    net.partition(&grudge(&[("n1", &["n2"])])).unwrap();
    assert!(owned_rules_present(firewall));
    net.teardown().unwrap();
    assert!(!owned_rules_present(firewall), "{}", listing(firewall));
    assert_can_connect("n2", "n1");
    net.teardown().unwrap();
    // A partition after teardown installs the rules again; drop removes them.
    net.partition(&grudge(&[("n1", &["n2"])])).unwrap();
    assert_cannot_connect("n2", "n1");
    drop(net);
    assert!(!owned_rules_present(firewall), "{}", listing(firewall));
    assert_can_connect("n2", "n1");
    // A second backend replaces what a killed run left behind.
    let first = NftNet::with_firewall(addrs(), firewall).unwrap();
    std::mem::forget(first);
    let second = NftNet::with_firewall(addrs(), firewall).unwrap();
    drop(second);
    assert!(!owned_rules_present(firewall), "{}", listing(firewall));
}

fn refuses_delay_loss_and_unknown_nodes(firewall: Firewall) {
    let mut net = NftNet::with_firewall(addrs(), firewall).unwrap();
    for result in [
        net.slow(Duration::from_millis(50), Duration::from_millis(10)),
        net.flaky(0.2),
    ] {
        match result {
            Err(NetError::Unsupported(message)) => assert_eq!(message, NO_NETEM),
            other => panic!("expected Unsupported, got {other:?}"),
        }
    }
    net.fast().unwrap();
    match net.partition(&grudge(&[("n1", &["n9"])])) {
        Err(NetError::UnknownNode(node)) => assert_eq!(node, "n9"),
        other => panic!("expected UnknownNode, got {other:?}"),
    }
}

macro_rules! netns_tests {
    ($($name:ident: $claim:ident($firewall:expr);)*) => {$(
        #[test]
        fn $name() {
            in_private_netns(stringify!($name), $firewall, $claim);
        }
    )*};
}

netns_tests! {
    nft_partition_blackholes_an_open_connection_both_ways_until_heal:
        partition_blackholes_an_open_connection_both_ways_until_heal(Firewall::Nft);
    nft_one_way_grudge_drops_only_what_the_grudged_node_sends:
        one_way_grudge_drops_only_what_the_grudged_node_sends(Firewall::Nft);
    nft_heal_is_idempotent_and_a_partition_replaces_the_last:
        heal_is_idempotent_and_a_partition_replaces_the_last(Firewall::Nft);
    nft_teardown_removes_the_table_and_is_idempotent:
        teardown_removes_the_rules_and_is_idempotent(Firewall::Nft);
    nft_refuses_delay_loss_and_unknown_nodes:
        refuses_delay_loss_and_unknown_nodes(Firewall::Nft);
    iptables_partition_blackholes_an_open_connection_both_ways_until_heal:
        partition_blackholes_an_open_connection_both_ways_until_heal(Firewall::Iptables);
    iptables_one_way_grudge_drops_only_what_the_grudged_node_sends:
        one_way_grudge_drops_only_what_the_grudged_node_sends(Firewall::Iptables);
    iptables_heal_is_idempotent_and_a_partition_replaces_the_last:
        heal_is_idempotent_and_a_partition_replaces_the_last(Firewall::Iptables);
    iptables_teardown_removes_the_chain_and_is_idempotent:
        teardown_removes_the_rules_and_is_idempotent(Firewall::Iptables);
    iptables_refuses_delay_loss_and_unknown_nodes:
        refuses_delay_loss_and_unknown_nodes(Firewall::Iptables);
}

/// `NftNet::new` picks nft when both tools are there.
#[test]
fn new_prefers_nft() {
    in_private_netns("new_prefers_nft", Firewall::Nft, |_| {
        let net = NftNet::new(addrs()).unwrap();
        assert_eq!(net.firewall(), Firewall::Nft);
    });
}
