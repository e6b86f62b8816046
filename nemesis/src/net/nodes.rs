//! Per-node network namespaces: every node gets a network namespace and an
//! address of its own, joined to the others by a bridge, and a partition is
//! DROP rules between node addresses — so a system needs no option to pick
//! its source address (etcd, PostgreSQL, Patroni and Redis have none).
//!
//! # The picture
//! ```text
//!  run's private namespace (private_netns_command)     node namespaces
//!  ┌─────────────────────────────────────────────┐    ┌──────────────┐
//!  │ harness, clients   flbr0 198.18.0.1/24      │    │ n1  fln1     │
//!  │                     ├─ flh1 ══ veth ═══════════════ 198.18.0.11 │
//!  │                     ├─ flh2 ══ veth ═════════ n2 198.18.0.12    │
//!  │                     └─ flh3 ══ veth ═════════ n3 198.18.0.13    │
//!  └─────────────────────────────────────────────┘    └──────────────┘
//! ```
//! The harness stays in the run's private namespace and reaches every node
//! from the bridge's address ([`HARNESS_ADDR`]); node `k` (in the order
//! given) has `198.18.0.(10+k)` ([`node_address`]) in its own namespace,
//! where it listens and from where it connects to its peers.
//!
//! # Why 198.18.0.0/24
//! Every address lives only inside the run's private namespace, so no range
//! can clash with the host's; 198.18.0.0/15 is still the safest pick: it is
//! reserved for network benchmarking (RFC 2544), so it is no real host's
//! address, appears on no LAN or VPN, and an address in a node's log is
//! plainly one of ours. Loopback addresses would not do: `127.0.0.0/8` is
//! on every namespace's own `lo` and never leaves it.
//!
//! # Where the rules live
//! Each node's namespace has one nft table `inet faultline` (or, with the
//! iptables fallback, a chain `FAULTLINE` jumped to from `INPUT`) whose
//! input hook drops the packets of the senders the node holds a grudge
//! against: `a: {b}` drops packets with source b arriving at a, the meaning
//! of the parent module. The harness's address is never in a rule, so
//! client traffic is never cut. ARP is not IP and passes, as in Jepsen's
//! iptables partitions.
//!
//! # Lifetime: nothing outlives the run
//! No namespace is named (`ip netns add` would bind-mount it under
//! `/run/netns`, where it would outlive a SIGKILLed run): each is held by a
//! small process (`unshare --net -- cat`) reading a pipe only this
//! [`NodeNet`] writes to. When the harness dies, the pipe closes, the
//! holders exit, and the namespaces go with their last process; the bridge
//! and the host ends of the veths go with the run's private namespace.
//! [`Net::teardown`] (also run on drop) removes veths, bridge and holders
//! at once. The processes a system runs in a node's namespace (through a
//! placement) are the system's to stop.
//!
//! # What it cannot do
//! Delay and loss need `tc netem`, which this kernel lacks: `slow` and
//! `flaky` answer [`NetError::Unsupported`] (the proxy backend does them).

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::io::Write as _;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tracing::warn;

use super::netns::{self, Firewall, INSTALL_HINT, NO_NETEM};
use super::{Net, NetError};
use crate::grudge::Grudge;

/// The bridge joining the node namespaces, in the run's private namespace.
pub const BRIDGE: &str = "flbr0";

/// The harness's address: the bridge's, in the run's private namespace.
pub const HARNESS_ADDR: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);

/// The prefix length of the nodes' subnet, `198.18.0.0/24`.
pub const PREFIX: u8 = 24;

/// The nft table (family `inet`) in each node's namespace.
pub const NFT_TABLE: &str = "faultline";

/// The iptables chain in each node's namespace, with the iptables fallback.
pub const IPTABLES_CHAIN: &str = "FAULTLINE";

/// How long a holder may take to enter its new namespace.
const HOLDER_WAIT: Duration = Duration::from_secs(2);

/// The address of the `k`th node (1-based): `198.18.0.(10+k)`, up to 244
/// nodes.
pub fn node_address(k: usize) -> Result<Ipv4Addr, NetError> {
    match u8::try_from(k + 10) {
        Ok(last) if k >= 1 && last < 255 => Ok(Ipv4Addr::new(198, 18, 0, last)),
        _ => Err(NetError::Invalid(format!(
            "node number {k} does not fit in 198.18.0.11..=198.18.0.254"
        ))),
    }
}

/// One node's namespace: its address, the process holding it open, and the
/// veth pair joining it to the bridge.
#[derive(Debug)]
struct NodeNamespace {
    addr: Ipv4Addr,
    holder: Child,
    /// The veth end on the bridge, in the run's private namespace.
    bridge_end: String,
    /// The veth end in the node's namespace.
    node_end: String,
}

impl NodeNamespace {
    fn path(&self) -> PathBuf {
        PathBuf::from(format!("/proc/{}/ns/net", self.holder.id()))
    }
}

/// The tools this backend runs.
#[derive(Debug)]
struct Tools {
    ip: PathBuf,
    unshare: PathBuf,
    nsenter: PathBuf,
    firewall: Firewall,
    firewall_program: PathBuf,
}

impl Tools {
    fn find() -> Result<Tools, NetError> {
        let probe = netns::probe();
        let missing = |what: &str| {
            NetError::Unsupported(format!("`{what}` not found; install with `{INSTALL_HINT}`"))
        };
        let firewall = probe.firewall().ok_or_else(|| missing("nft"))?;
        let firewall_program = match firewall {
            Firewall::Nft => probe.nft.clone(),
            Firewall::Iptables => probe.iptables.clone(),
        }
        .ok_or_else(|| missing(firewall.program()))?;
        Ok(Tools {
            ip: probe.ip.ok_or_else(|| missing("ip"))?,
            unshare: probe.unshare.ok_or_else(|| missing("unshare"))?,
            nsenter: find_nsenter().ok_or_else(|| missing("nsenter"))?,
            firewall,
            firewall_program,
        })
    }
}

fn find_nsenter() -> Option<PathBuf> {
    ["/usr/bin/nsenter", "/bin/nsenter", "/usr/sbin/nsenter"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
}

/// A network namespace and an address per node, joined by a bridge in the
/// run's private namespace; partitions as DROP rules in each node's
/// namespace. See the module docs.
#[derive(Debug)]
pub struct NodeNet {
    tools: Tools,
    nodes: BTreeMap<String, NodeNamespace>,
    up: bool,
}

impl NodeNet {
    /// Creates the bridge and one namespace per node (`nodes[k-1]` gets
    /// [`node_address`]`(k)`), each with loopback and its veth up and an
    /// empty rule table. Only inside the run's private network namespace
    /// ([`netns::in_private_netns`]), so nothing is ever added to the
    /// host's network.
    pub fn new(nodes: &[String]) -> Result<NodeNet, NetError> {
        if !netns::in_private_netns() {
            return Err(NetError::Unsupported(
                "per-node namespaces are made only inside the run's private network \
                 namespace (netns::private_netns_command)"
                    .into(),
            ));
        }
        let mut net = NodeNet {
            tools: Tools::find()?,
            nodes: BTreeMap::new(),
            up: true,
        };
        net.ip(&["link", "add", BRIDGE, "type", "bridge"])?;
        let bridge_addr = format!("{HARNESS_ADDR}/{PREFIX}");
        net.ip(&["addr", "add", &bridge_addr, "dev", BRIDGE])?;
        net.ip(&["link", "set", BRIDGE, "up"])?;
        for (k, node) in nodes.iter().enumerate() {
            let namespace = net.add_node(k + 1)?;
            net.nodes.insert(node.clone(), namespace);
        }
        for node in net.nodes.keys() {
            net.install_rules(node)?;
        }
        Ok(net)
    }

    /// Makes the `k`th node's namespace: holder, veth pair, addresses.
    fn add_node(&self, k: usize) -> Result<NodeNamespace, NetError> {
        let addr = node_address(k)?;
        let holder = self.spawn_holder()?;
        let namespace = NodeNamespace {
            addr,
            holder,
            bridge_end: format!("flh{k}"),
            node_end: format!("fln{k}"),
        };
        let (bridge_end, node_end) = (&namespace.bridge_end, &namespace.node_end);
        let holder_pid = namespace.holder.id().to_string();
        self.ip(&[
            "link", "add", bridge_end, "type", "veth", "peer", "name", node_end,
        ])?;
        self.ip(&["link", "set", node_end, "netns", &holder_pid])?;
        self.ip(&["link", "set", bridge_end, "master", BRIDGE, "up"])?;
        let path = namespace.path();
        let node_addr = format!("{addr}/{PREFIX}");
        self.ip_in(&path, &["link", "set", "lo", "up"])?;
        self.ip_in(&path, &["addr", "add", &node_addr, "dev", node_end])?;
        self.ip_in(&path, &["link", "set", node_end, "up"])?;
        Ok(namespace)
    }

    /// `unshare --net -- cat`, reading a pipe only we hold: it lives until
    /// we close the pipe (teardown, or the harness's death).
    fn spawn_holder(&self) -> Result<Child, NetError> {
        let ours = std::fs::read_link("/proc/self/ns/net")
            .map_err(|e| NetError::io("reading /proc/self/ns/net", e))?;
        let mut holder = Command::new(&self.tools.unshare)
            .args(["--net", "--", "cat"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| NetError::io("starting a namespace holder (unshare --net)", e))?;
        let link = format!("/proc/{}/ns/net", holder.id());
        let deadline = Instant::now() + HOLDER_WAIT;
        while Instant::now() < deadline {
            match std::fs::read_link(&link) {
                Ok(ns) if ns != ours => return Ok(holder),
                Ok(_) => std::thread::sleep(Duration::from_millis(1)),
                Err(_) => break,
            }
        }
        let _ = holder.kill();
        let _ = holder.wait();
        Err(NetError::Unsupported(
            "`unshare --net` could not make a node namespace (no privilege?)".into(),
        ))
    }

    /// The node's address, if it is one of ours.
    pub fn address(&self, node: &str) -> Option<IpAddr> {
        self.nodes.get(node).map(|n| IpAddr::V4(n.addr))
    }

    /// Every node's address.
    pub fn addresses(&self) -> BTreeMap<String, IpAddr> {
        self.nodes
            .iter()
            .map(|(node, n)| (node.clone(), IpAddr::V4(n.addr)))
            .collect()
    }

    /// The file naming the node's network namespace
    /// (`/proc/HOLDER/ns/net`), for `nsenter --net=PATH` or `setns(2)`;
    /// valid while this [`NodeNet`] is up.
    pub fn namespace_path(&self, node: &str) -> Option<PathBuf> {
        self.up
            .then(|| self.nodes.get(node).map(NodeNamespace::path))
            .flatten()
    }

    /// `nsenter` found on this machine, to run commands in a node's namespace.
    pub fn nsenter(&self) -> &Path {
        &self.tools.nsenter
    }

    fn ip(&self, args: &[&str]) -> Result<(), NetError> {
        run(&self.tools.ip, args, None)
    }

    /// `ip ARGS` inside the namespace at `path`.
    fn ip_in(&self, path: &Path, args: &[&str]) -> Result<(), NetError> {
        let net = format!("--net={}", path.display());
        let ip = self.tools.ip.to_string_lossy().into_owned();
        let full: Vec<&str> = [net.as_str(), "--", ip.as_str()]
            .into_iter()
            .chain(args.iter().copied())
            .collect();
        run(&self.tools.nsenter, &full, None)
    }

    /// The firewall in `node`'s namespace, with `stdin` as its script.
    fn firewall_in(&self, node: &str, args: &[&str], stdin: Option<&str>) -> Result<(), NetError> {
        let path = self
            .namespace_path(node)
            .ok_or_else(|| NetError::UnknownNode(node.to_string()))?;
        let net = format!("--net={}", path.display());
        let program = self.tools.firewall_program.to_string_lossy().into_owned();
        let full: Vec<&str> = [net.as_str(), "--", program.as_str()]
            .into_iter()
            .chain(args.iter().copied())
            .collect();
        run(&self.tools.nsenter, &full, stdin)
    }

    fn install_rules(&self, node: &str) -> Result<(), NetError> {
        match self.tools.firewall {
            Firewall::Nft => self.firewall_in(node, &["-f", "-"], Some(&nft_setup_script())),
            Firewall::Iptables => {
                self.firewall_in(node, &["-w", "-N", IPTABLES_CHAIN], None)?;
                self.firewall_in(
                    node,
                    &["-w", "-I", "INPUT", "1", "-j", IPTABLES_CHAIN],
                    None,
                )
            }
        }
    }

    /// Replaces `node`'s drop rules by "drop packets from `senders`".
    fn set_drops(&self, node: &str, senders: &[Ipv4Addr]) -> Result<(), NetError> {
        match self.tools.firewall {
            Firewall::Nft => self.firewall_in(node, &["-f", "-"], Some(&nft_drop_script(senders))),
            Firewall::Iptables => {
                self.firewall_in(node, &["-w", "-F", IPTABLES_CHAIN], None)?;
                for sender in senders {
                    let from = sender.to_string();
                    let rule = ["-w", "-A", IPTABLES_CHAIN, "-s", &from, "-j", "DROP"];
                    self.firewall_in(node, &rule, None)?;
                }
                Ok(())
            }
        }
    }

    /// Each node's senders to drop, checked against the known nodes; a
    /// node's grudge against itself is ignored.
    fn drops(&self, grudge: &Grudge) -> Result<BTreeMap<String, Vec<Ipv4Addr>>, NetError> {
        let addr = |node: &String| {
            self.nodes
                .get(node)
                .map(|n| n.addr)
                .ok_or_else(|| NetError::UnknownNode(node.clone()))
        };
        let mut drops: BTreeMap<String, Vec<Ipv4Addr>> =
            self.nodes.keys().map(|n| (n.clone(), Vec::new())).collect();
        for (receiver, senders) in grudge {
            addr(receiver)?;
            for sender in senders.iter().filter(|s| *s != receiver) {
                let from = addr(sender)?;
                drops.entry(receiver.clone()).or_default().push(from);
            }
        }
        Ok(drops)
    }
}

/// The table afresh, with an empty grudge chain the input hook jumps to.
fn nft_setup_script() -> String {
    format!(
        "table inet {NFT_TABLE}\n\
         delete table inet {NFT_TABLE}\n\
         table inet {NFT_TABLE} {{\n\
         \tchain grudge {{\n\t}}\n\
         \tchain input {{\n\
         \t\ttype filter hook input priority 0; policy accept;\n\
         \t\tjump grudge\n\
         \t}}\n\
         }}\n"
    )
}

/// Replaces the grudge chain's rules atomically.
fn nft_drop_script(senders: &[Ipv4Addr]) -> String {
    let mut script = format!("flush chain inet {NFT_TABLE} grudge\n");
    if !senders.is_empty() {
        let set: Vec<String> = senders.iter().map(Ipv4Addr::to_string).collect();
        script.push_str(&format!(
            "add rule inet {NFT_TABLE} grudge ip saddr {{ {} }} drop\n",
            set.join(", ")
        ));
    }
    script
}

impl Net for NodeNet {
    fn partition(&mut self, grudge: &Grudge) -> Result<(), NetError> {
        let drops = self.drops(grudge)?;
        if !self.up {
            return Err(NetError::Unsupported(
                "the node namespaces are torn down".into(),
            ));
        }
        for (node, senders) in &drops {
            self.set_drops(node, senders)?;
        }
        Ok(())
    }

    fn heal(&mut self) -> Result<(), NetError> {
        if !self.up {
            return Ok(());
        }
        for node in self.nodes.keys() {
            self.set_drops(node, &[])?;
        }
        Ok(())
    }

    fn slow(&mut self, _delay: Duration, _jitter: Duration) -> Result<(), NetError> {
        Err(NetError::Unsupported(NO_NETEM.into()))
    }

    fn flaky(&mut self, _loss: f64) -> Result<(), NetError> {
        Err(NetError::Unsupported(NO_NETEM.into()))
    }

    /// Nothing to undo: this backend never slows a link.
    fn fast(&mut self) -> Result<(), NetError> {
        Ok(())
    }

    /// Deletes every veth pair and the bridge, and ends the holders. Every
    /// step is tried; the first failure is returned.
    fn teardown(&mut self) -> Result<(), NetError> {
        if !self.up {
            return Ok(());
        }
        self.up = false;
        let mut first_error = None;
        for namespace in self.nodes.values_mut() {
            let deleted = run(
                &self.tools.ip,
                &["link", "del", &namespace.bridge_end],
                None,
            );
            if let Err(e) = deleted {
                first_error.get_or_insert(e);
            }
            // Closing the pipe ends `cat`; kill in case it is stopped.
            drop(namespace.holder.stdin.take());
            let _ = namespace.holder.kill();
            let _ = namespace.holder.wait();
        }
        if let Err(e) = run(&self.tools.ip, &["link", "del", BRIDGE], None) {
            first_error.get_or_insert(e);
        }
        first_error.map_or(Ok(()), Err)
    }
}

impl Drop for NodeNet {
    fn drop(&mut self) {
        if let Err(error) = self.teardown() {
            warn!(%error, "could not tear down the node namespaces");
        }
    }
}

/// Runs `program args`, feeding `stdin` if given; an error names the
/// command, its exit status and what it wrote to stderr.
fn run(program: &Path, args: &[&str], stdin: Option<&str>) -> Result<(), NetError> {
    let shown = std::iter::once(program.as_os_str())
        .chain(args.iter().map(OsStr::new))
        .map(|a| a.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ");
    let spawn_error = |e| NetError::io(format!("running `{shown}`"), e);
    let mut child = Command::new(program)
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(spawn_error)?;
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(text.as_bytes()).map_err(spawn_error)?;
    }
    let output = child.wait_with_output().map_err(spawn_error)?;
    if output.status.success() {
        return Ok(());
    }
    Err(NetError::Command {
        command: shown,
        status: output.status.to_string(),
        stderr: String::from_utf8_lossy(&output.stderr).trim().to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodes_get_consecutive_addresses_from_198_18_0_11() {
        assert_eq!(node_address(1).unwrap(), Ipv4Addr::new(198, 18, 0, 11));
        assert_eq!(node_address(244).unwrap(), Ipv4Addr::new(198, 18, 0, 254));
        assert!(node_address(245).is_err());
        assert!(node_address(0).is_err());
    }

    #[test]
    fn a_drop_script_flushes_then_drops_the_senders_in_one_rule() {
        let senders = [Ipv4Addr::new(198, 18, 0, 12), Ipv4Addr::new(198, 18, 0, 13)];
        assert_eq!(
            nft_drop_script(&senders),
            "flush chain inet faultline grudge\n\
             add rule inet faultline grudge ip saddr { 198.18.0.12, 198.18.0.13 } drop\n"
        );
        assert_eq!(nft_drop_script(&[]), "flush chain inet faultline grudge\n");
    }

    #[test]
    fn outside_a_private_namespace_nothing_is_made() {
        if netns::in_private_netns() {
            return;
        }
        let err = NodeNet::new(&["n1".to_string()]).unwrap_err();
        assert!(matches!(err, NetError::Unsupported(_)), "{err}");
    }
}
