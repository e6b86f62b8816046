//! Per-node network namespaces through the placement layer, end to end:
//! three node namespaces (`nemesis::net::nodes::NodeNet`), a real TCP
//! server (`python3 -m http.server` bound to the node's address) started in
//! each through `NodeNamespaces`, the harness reaching every node, every
//! node reaching every other, a grudge cutting exactly its directions
//! (UDP datagrams: one packet, one direction), heal restoring them, and
//! teardown leaving no veth, bridge or namespace.
//!
//! The test re-executes itself inside a private network namespace
//! (`unshare -n`, or `unshare -Urn` without root), so nothing touches the
//! host's network; it is skipped, saying what is missing, without
//! `unshare`, `ip`, `nsenter`, nft/iptables or `python3`.
#![cfg(target_os = "linux")]

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use harness::placement::{NodeNamespaces, Placement};
use nemesis::net::netns;
use nemesis::net::nodes::{NodeNet, BRIDGE};
use nemesis::{Grudge, Net, NetError};

const HTTP_PORT: u16 = 8000;
const UDP_PORT: u16 = 9000;

fn names() -> Vec<String> {
    ["n1", "n2", "n3"].map(String::from).to_vec()
}

fn python() -> Option<PathBuf> {
    ["/usr/bin/python3", "/usr/local/bin/python3", "/bin/python3"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
}

/// Runs `body` in a private network namespace: directly when already in
/// one, otherwise by re-executing this test there and asserting it passed.
fn in_private_netns(test: &str, body: impl FnOnce(&Path)) {
    if netns::in_private_netns() {
        netns::bring_up_loopback().expect("bring up loopback");
        body(&python().expect("checked before re-executing"));
        return;
    }
    let probe = netns::probe();
    let nsenter = Path::new("/usr/bin/nsenter").is_file();
    let missing: Vec<&str> = [
        (probe.firewall().is_none(), "nft or iptables"),
        (probe.ip.is_none(), "ip"),
        (probe.unshare.is_none(), "unshare"),
        (!nsenter, "nsenter"),
        (python().is_none(), "python3"),
    ]
    .into_iter()
    .filter_map(|(gone, name)| gone.then_some(name))
    .collect();
    if !missing.is_empty() {
        eprintln!(
            "skipped {test}: missing {} (install with `{} python3`)",
            missing.join(", "),
            netns::INSTALL_HINT
        );
        return;
    }
    let exe = std::env::current_exe().expect("current exe");
    let args: Vec<OsString> = [test, "--exact", "--nocapture"]
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

/// Processes that are killed and reaped when dropped.
struct Processes(Vec<Child>);

impl Drop for Processes {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// `python3 ARGS...` where `node` runs.
fn python_in(placement: &dyn Placement, python: &Path, node: &str, args: &[&str]) -> Command {
    let mut command = Command::new(python);
    command.args(args);
    let mut placed = placement.command(node, command).unwrap();
    placed
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    placed
}

fn serve(placement: &dyn Placement, python: &Path, node: &str) -> Child {
    let addr = placement.address(node).unwrap().to_string();
    let port = HTTP_PORT.to_string();
    let args = ["-m", "http.server", "--bind", &addr, &port];
    python_in(placement, python, node, &args).spawn().unwrap()
}

/// A TCP connection from the harness (in the run's namespace) to `addr`.
fn harness_reaches(addr: IpAddr) -> bool {
    let to = SocketAddr::new(addr, HTTP_PORT);
    TcpStream::connect_timeout(&to, Duration::from_secs(2)).is_ok()
}

const CONNECT: &str = "import socket, sys\n\
socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=3)\n";

/// A TCP connection from inside `from` to `to`'s server.
fn node_reaches(placement: &dyn Placement, python: &Path, from: &str, to: &str) -> bool {
    let addr = placement.address(to).unwrap().to_string();
    let port = HTTP_PORT.to_string();
    let mut command = python_in(placement, python, from, &["-c", CONNECT, &addr, &port]);
    command.status().is_ok_and(|s| s.success())
}

const RECEIVE: &str = "import socket, sys\n\
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n\
s.bind((sys.argv[1], int(sys.argv[2])))\n\
s.settimeout(4.0)\n\
s.recv(16)\n";

const SEND: &str = "import socket, sys, time\n\
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n\
for _ in range(15): s.sendto(b'x', (sys.argv[1], int(sys.argv[2]))); time.sleep(0.1)\n";

/// Which directed pairs `(from, to)` a datagram crosses, all pairs at once:
/// a receiver in `to`, then a sender in `from`, per pair.
fn datagram_links(placement: &dyn Placement, python: &Path) -> BTreeSet<(String, String)> {
    let pairs: Vec<(String, String)> = names()
        .into_iter()
        .flat_map(|a| names().into_iter().map(move |b| (a.clone(), b)))
        .filter(|(a, b)| a != b)
        .collect();
    let mut receivers = Vec::new();
    for (k, (_, to)) in pairs.iter().enumerate() {
        let addr = placement.address(to).unwrap().to_string();
        let port = (UDP_PORT + k as u16).to_string();
        let args = ["-c", RECEIVE, &addr, &port];
        receivers.push(python_in(placement, python, to, &args).spawn().unwrap());
    }
    std::thread::sleep(Duration::from_millis(300));
    let mut senders = Processes(Vec::new());
    for (k, (from, to)) in pairs.iter().enumerate() {
        let addr = placement.address(to).unwrap().to_string();
        let port = (UDP_PORT + k as u16).to_string();
        let args = ["-c", SEND, &addr, &port];
        senders
            .0
            .push(python_in(placement, python, from, &args).spawn().unwrap());
    }
    let crossed = pairs
        .into_iter()
        .zip(receivers)
        .filter_map(|(pair, mut receiver)| receiver.wait().unwrap().success().then_some(pair))
        .collect();
    drop(senders);
    crossed
}

fn all_pairs_but(cut: &[(&str, &str)]) -> BTreeSet<(String, String)> {
    let cut: BTreeSet<(String, String)> = cut
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    names()
        .into_iter()
        .flat_map(|a| names().into_iter().map(move |b| (a.clone(), b)))
        .filter(|(a, b)| a != b && !cut.contains(&(a.clone(), b.clone())))
        .collect()
}

/// The names of the links in this namespace (`ip -o link`).
fn links() -> String {
    let out = Command::new("ip").args(["-o", "link"]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Live processes in any of these network namespaces (`net:[INODE]`).
fn processes_in(namespaces: &[PathBuf]) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_link(format!("/proc/{pid}/ns/net"))
                .is_ok_and(|link| namespaces.contains(&link))
        })
        .collect()
}

fn eventually(within: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    while !check() {
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    true
}

#[test]
fn node_namespaces_reach_each_other_until_a_grudge_cuts_exactly_its_directions() {
    in_private_netns(
        "node_namespaces_reach_each_other_until_a_grudge_cuts_exactly_its_directions",
        |python| {
            let mut net = NodeNet::new(&names()).expect("node namespaces");
            let placement = NodeNamespaces::new(&net);
            let namespaces: Vec<PathBuf> = names()
                .iter()
                .map(|n| std::fs::read_link(net.namespace_path(n).unwrap()).unwrap())
                .collect();
            let servers = Processes(
                names()
                    .iter()
                    .map(|n| serve(&placement, python, n))
                    .collect(),
            );
            for node in names() {
                let addr = placement.address(&node).unwrap();
                assert!(
                    eventually(Duration::from_secs(15), || harness_reaches(addr)),
                    "the harness reaches {node} at {addr}"
                );
            }
            for (from, to) in all_pairs_but(&[]) {
                assert!(
                    node_reaches(&placement, python, &from, &to),
                    "{from} reaches {to} over TCP"
                );
            }
            assert_eq!(datagram_links(&placement, python), all_pairs_but(&[]));

            // n1 drops n2's packets, n3 drops n1's: exactly n2→n1 and n1→n3 cut.
            let grudge: Grudge = [
                ("n1".to_string(), ["n2".to_string()].into()),
                ("n3".to_string(), ["n1".to_string()].into()),
            ]
            .into();
            net.partition(&grudge).unwrap();
            assert_eq!(
                datagram_links(&placement, python),
                all_pairs_but(&[("n2", "n1"), ("n1", "n3")])
            );
            for node in names() {
                let addr = placement.address(&node).unwrap();
                assert!(
                    harness_reaches(addr),
                    "client traffic to {node} is never cut"
                );
            }
            net.heal().unwrap();
            assert_eq!(datagram_links(&placement, python), all_pairs_but(&[]));
            assert!(matches!(
                net.slow(Duration::from_millis(5), Duration::ZERO),
                Err(NetError::Unsupported(_))
            ));

            drop(servers);
            net.teardown().unwrap();
            let left = links();
            assert!(!left.contains(BRIDGE), "the bridge is gone: {left}");
            assert!(!left.contains("flh"), "the veths are gone: {left}");
            assert!(
                eventually(Duration::from_secs(5), || processes_in(&namespaces)
                    .is_empty()),
                "nothing holds a node namespace: {:?}",
                processes_in(&namespaces)
            );
        },
    );
}
