//! Kernel-level partitions on Linux: nft (or iptables) DROP rules between
//! loopback addresses, the faults Jepsen applies with iptables.
//!
//! # How nodes are told apart
//! Every node gets its own loopback address ([`node_addresses`]: n1 =
//! `127.0.0.11`, n2 = `127.0.0.12`, ...), listens on it and connects to its
//! peers *from* it (`target-node --peer-source`), so a packet's source and
//! destination addresses name the link it travels on. A grudge entry
//! `a: {b}` becomes the rule "drop packets with source b and destination a",
//! the same meaning as the proxy backend (see the parent module).
//!
//! # Where the rules live
//! [`NftNet`] owns one nft table, `inet faultline` (or, with the iptables
//! fallback, one chain `FAULTLINE` jumped to from `INPUT`), in the *current*
//! network namespace, and removes it on teardown and on drop. To make sure
//! no rule can ever leak to the host — not even when the run is SIGKILLed —
//! run the whole harness in a private network namespace:
//! [`private_netns_command`] re-executes a program under `unshare -n` (as
//! root) or `unshare -Urn` (rootless, in a user namespace); the namespace
//! and every rule in it vanish with the last process inside. In a fresh
//! namespace the loopback interface is down: call [`bring_up_loopback`]
//! first; after that every `127.x.y.z` address works.
//!
//! # Only the input hook
//! Rules sit at the `input` hook. On loopback every packet passes `output`
//! and then `input`, so dropping at `input` is enough; dropping at `output`
//! would instead make the *sender's* `connect`/`send` fail at once with
//! `EPERM`, a fast failure no real network produces. A dropped packet is
//! simply never delivered: connections that are already open stall, new
//! ones hang in the handshake.
//!
//! # What it cannot do
//! Delay and loss need `tc netem`, which this kernel lacks: [`NftNet`]
//! answers [`Net::slow`] and [`Net::flaky`] with [`NetError::Unsupported`];
//! the proxy backend does those.

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::fmt::Write as _;
use std::io::Write as _;
use std::net::{IpAddr, Ipv4Addr};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use tracing::warn;

use super::{Net, NetError};
use crate::grudge::Grudge;

/// The environment variable that marks a process as running inside the
/// private network namespace made by [`private_netns_command`].
pub const NETNS_ENV: &str = "FAULTLINE_NETNS";

/// The nft table (family `inet`) that [`NftNet`] owns.
pub const NFT_TABLE: &str = "faultline";

/// The iptables chain that [`NftNet`] owns with the iptables fallback.
pub const IPTABLES_CHAIN: &str = "FAULTLINE";

/// How to install every tool this module uses, on Debian and Ubuntu.
pub const INSTALL_HINT: &str = "apt-get install -y nftables iptables iproute2 util-linux";

/// Why [`NftNet`] cannot slow links or lose packets.
pub const NO_NETEM: &str =
    "this kernel has no tc netem; use the proxy backend (--net proxy) for delay and loss";

/// The nft chain holding the grudge's rules; the base chain jumps to it, so
/// replacing a partition is one atomic flush-and-add.
const NFT_GRUDGE_CHAIN: &str = "grudge";

/// The tool that installs the rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Firewall {
    /// `nft` (nftables): one table, rules replaced atomically.
    Nft,
    /// `iptables`: one chain jumped to from `INPUT`; IPv4 only.
    Iptables,
}

impl Firewall {
    /// The name of the binary.
    pub fn program(self) -> &'static str {
        match self {
            Firewall::Nft => "nft",
            Firewall::Iptables => "iptables",
        }
    }
}

/// What this machine offers for kernel-level faults; see [`probe`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Probe {
    /// The `nft` binary, if found.
    pub nft: Option<PathBuf>,
    /// The `iptables` binary, if found.
    pub iptables: Option<PathBuf>,
    /// The `ip` binary (iproute2), if found; brings up loopback.
    pub ip: Option<PathBuf>,
    /// The `unshare` binary (util-linux), if found; makes private namespaces.
    pub unshare: Option<PathBuf>,
    /// Whether we run as root (effective uid 0). Without root, private
    /// namespaces need a user namespace (`unshare -Urn`).
    pub root: bool,
}

impl Probe {
    /// The firewall [`NftNet::new`] would use: nft when present, else iptables.
    pub fn firewall(&self) -> Option<Firewall> {
        if self.nft.is_some() {
            Some(Firewall::Nft)
        } else if self.iptables.is_some() {
            Some(Firewall::Iptables)
        } else {
            None
        }
    }

    /// What is missing for the netns backend and how to install it, or `None`
    /// when everything is there.
    pub fn missing(&self) -> Option<String> {
        let mut missing = Vec::new();
        if self.firewall().is_none() {
            missing.push("nft or iptables (packages nftables, iptables)");
        }
        if self.ip.is_none() {
            missing.push("ip (package iproute2)");
        }
        if self.unshare.is_none() {
            missing.push("unshare (package util-linux)");
        }
        if missing.is_empty() {
            return None;
        }
        let root = if self.root {
            ""
        } else {
            " (as root, or rootless through user namespaces)"
        };
        Some(format!(
            "missing {}; install with `{INSTALL_HINT}` on Debian/Ubuntu{root}",
            missing.join(", ")
        ))
    }
}

/// Looks for the tools this module uses, in `PATH` and the usual sbin
/// directories (which a non-root `PATH` often lacks).
pub fn probe() -> Probe {
    Probe {
        nft: find_program("nft"),
        iptables: find_program("iptables"),
        ip: find_program("ip"),
        unshare: find_program("unshare"),
        root: nix::unistd::geteuid().is_root(),
    }
}

fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let usual = ["/usr/local/sbin", "/usr/sbin", "/sbin", "/usr/bin", "/bin"];
    std::env::split_paths(&path)
        .chain(usual.iter().map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|candidate| {
            candidate
                .metadata()
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// Whether this process runs inside the private network namespace made by
/// [`private_netns_command`] (the [`NETNS_ENV`] marker is set).
pub fn in_private_netns() -> bool {
    std::env::var_os(NETNS_ENV).is_some_and(|v| v == "1")
}

/// `program args...` in a new, private network namespace: `unshare -n` as
/// root, `unshare -Urn` (a user namespace mapping us to root) otherwise, with
/// [`NETNS_ENV`] set so the program knows. `unshare` execs the program, so
/// its pid, exit status and signals are the program's own, and the
/// namespace (with every rule in it) is gone when its last process exits.
pub fn private_netns_command(program: &Path, args: &[OsString]) -> Command {
    let unshare = find_program("unshare").unwrap_or_else(|| PathBuf::from("unshare"));
    let mut command = Command::new(unshare);
    if nix::unistd::geteuid().is_root() {
        command.arg("--net");
    } else {
        command.args(["--map-root-user", "--net"]);
    }
    command
        .arg("--")
        .arg(program)
        .args(args)
        .env(NETNS_ENV, "1");
    command
}

/// Brings up the loopback interface (`ip link set lo up`); a fresh network
/// namespace starts with it down. Idempotent.
pub fn bring_up_loopback() -> Result<(), NetError> {
    let ip = find_program("ip").ok_or_else(|| {
        NetError::Unsupported(format!("`ip` not found; install with `{INSTALL_HINT}`"))
    })?;
    run(&ip, ["link", "set", "lo", "up"], None)
}

/// Loopback addresses for `nodes`, in order: the first gets `127.0.0.11`,
/// the second `127.0.0.12`, and so on (up to 244 nodes).
pub fn node_addresses(nodes: &[String]) -> Result<BTreeMap<String, IpAddr>, NetError> {
    if nodes.len() > 244 {
        return Err(NetError::Invalid(format!(
            "{} nodes do not fit in 127.0.0.11..=127.0.0.254",
            nodes.len()
        )));
    }
    Ok(nodes
        .iter()
        .zip(11u8..)
        .map(|(node, last)| (node.clone(), IpAddr::V4(Ipv4Addr::new(127, 0, 0, last))))
        .collect())
}

/// Partitions with kernel DROP rules between the nodes' addresses, in the
/// current network namespace. One per namespace: the table (or chain) name
/// is fixed, so that `nft list ruleset` shows plainly what faultline did.
/// Removes its rules on [`Net::teardown`] and on drop.
#[derive(Debug)]
pub struct NftNet {
    firewall: Firewall,
    program: PathBuf,
    addrs: BTreeMap<String, IpAddr>,
    installed: bool,
}

impl NftNet {
    /// Installs an empty table (nft, preferred) or chain (iptables) for the
    /// nodes at `addrs`, replacing one a killed run left behind.
    pub fn new(addrs: BTreeMap<String, IpAddr>) -> Result<NftNet, NetError> {
        let probe = probe();
        let firewall = probe.firewall().ok_or_else(|| {
            NetError::Unsupported(format!(
                "neither nft nor iptables found; install with `{INSTALL_HINT}`"
            ))
        })?;
        NftNet::with_firewall(addrs, firewall)
    }

    /// Like [`NftNet::new`] with a chosen firewall.
    pub fn with_firewall(
        addrs: BTreeMap<String, IpAddr>,
        firewall: Firewall,
    ) -> Result<NftNet, NetError> {
        let program = find_program(firewall.program()).ok_or_else(|| {
            NetError::Unsupported(format!(
                "`{}` not found; install with `{INSTALL_HINT}`",
                firewall.program()
            ))
        })?;
        if firewall == Firewall::Iptables && addrs.values().any(IpAddr::is_ipv6) {
            return Err(NetError::Unsupported(
                "the iptables fallback handles IPv4 addresses only; install nftables".into(),
            ));
        }
        let mut net = NftNet {
            firewall,
            program,
            addrs,
            installed: false,
        };
        net.install()?;
        Ok(net)
    }

    /// The firewall in use.
    pub fn firewall(&self) -> Firewall {
        self.firewall
    }

    /// The node addresses this backend knows.
    pub fn addrs(&self) -> &BTreeMap<String, IpAddr> {
        &self.addrs
    }

    fn install(&mut self) -> Result<(), NetError> {
        match self.firewall {
            Firewall::Nft => self.nft(&nft_setup_script())?,
            Firewall::Iptables => {
                self.remove_iptables_chain()?;
                self.iptables(["-N", IPTABLES_CHAIN])?;
                self.iptables(["-I", "INPUT", "1", "-j", IPTABLES_CHAIN])?;
            }
        }
        self.installed = true;
        Ok(())
    }

    /// Each drop rule as (source, destination), checked against the known
    /// nodes. A node's grudge against itself is ignored: a node always hears
    /// itself.
    fn drops(&self, grudge: &Grudge) -> Result<Vec<DropRule>, NetError> {
        let addr = |node: &String| {
            self.addrs
                .get(node)
                .copied()
                .ok_or_else(|| NetError::UnknownNode(node.clone()))
        };
        let mut drops = Vec::new();
        for (receiver, senders) in grudge {
            let to = addr(receiver)?;
            for sender in senders.iter().filter(|s| *s != receiver) {
                let from = addr(sender)?;
                if from.is_ipv4() != to.is_ipv4() {
                    return Err(NetError::Invalid(format!(
                        "{sender} ({from}) and {receiver} ({to}) are of different address families"
                    )));
                }
                drops.push(DropRule {
                    receiver: receiver.clone(),
                    sender: sender.clone(),
                    from,
                    to,
                });
            }
        }
        Ok(drops)
    }

    fn nft(&self, script: &str) -> Result<(), NetError> {
        run(&self.program, ["-f", "-"], Some(script))
    }

    fn iptables<const N: usize>(&self, args: [&str; N]) -> Result<(), NetError> {
        run(&self.program, iptables_args(&args), None)
    }

    fn iptables_succeeds<const N: usize>(&self, args: [&str; N]) -> Result<bool, NetError> {
        succeeds(&self.program, iptables_args(&args))
    }

    /// Removes the jump and the chain if they exist; idempotent.
    fn remove_iptables_chain(&self) -> Result<(), NetError> {
        while self.iptables_succeeds(["-C", "INPUT", "-j", IPTABLES_CHAIN])? {
            self.iptables(["-D", "INPUT", "-j", IPTABLES_CHAIN])?;
        }
        if self.iptables_succeeds(["-n", "-L", IPTABLES_CHAIN])? {
            self.iptables(["-F", IPTABLES_CHAIN])?;
            self.iptables(["-X", IPTABLES_CHAIN])?;
        }
        Ok(())
    }
}

/// One rule: `receiver` drops packets `from` → `to`.
struct DropRule {
    receiver: String,
    sender: String,
    from: IpAddr,
    to: IpAddr,
}

/// Creates the table afresh: declaring it first makes the delete succeed
/// even when there is nothing to delete, and nft applies the whole script
/// atomically.
fn nft_setup_script() -> String {
    format!(
        "table inet {NFT_TABLE}\n\
         delete table inet {NFT_TABLE}\n\
         table inet {NFT_TABLE} {{\n\
         \tchain {NFT_GRUDGE_CHAIN} {{\n\t}}\n\
         \tchain input {{\n\
         \t\ttype filter hook input priority 0; policy accept;\n\
         \t\tjump {NFT_GRUDGE_CHAIN}\n\
         \t}}\n\
         }}\n"
    )
}

fn nft_teardown_script() -> String {
    format!("table inet {NFT_TABLE}\ndelete table inet {NFT_TABLE}\n")
}

/// Replaces the rules in force with `drops`, atomically.
fn nft_partition_script(drops: &[DropRule]) -> String {
    let mut script = format!("flush chain inet {NFT_TABLE} {NFT_GRUDGE_CHAIN}\n");
    for drop in drops {
        let family = if drop.from.is_ipv4() { "ip" } else { "ip6" };
        // Node names go into a quoted comment; keep them printable.
        let comment: String = format!("{} drops {}", drop.receiver, drop.sender)
            .chars()
            .filter(|c| (c.is_ascii_graphic() && *c != '"') || *c == ' ')
            .collect();
        let _ = writeln!(
            script,
            "add rule inet {NFT_TABLE} {NFT_GRUDGE_CHAIN} {family} saddr {} {family} daddr {} drop comment \"{comment}\"",
            drop.from, drop.to
        );
    }
    script
}

/// `-w` waits for the xtables lock instead of failing when another
/// iptables runs.
fn iptables_args<'a>(args: &[&'a str]) -> Vec<&'a str> {
    std::iter::once("-w").chain(args.iter().copied()).collect()
}

impl Net for NftNet {
    fn partition(&mut self, grudge: &Grudge) -> Result<(), NetError> {
        let drops = self.drops(grudge)?;
        if !self.installed {
            self.install()?;
        }
        match self.firewall {
            Firewall::Nft => self.nft(&nft_partition_script(&drops)),
            Firewall::Iptables => {
                self.iptables(["-F", IPTABLES_CHAIN])?;
                for drop in &drops {
                    let (from, to) = (drop.from.to_string(), drop.to.to_string());
                    self.iptables(["-A", IPTABLES_CHAIN, "-s", &from, "-d", &to, "-j", "DROP"])?;
                }
                Ok(())
            }
        }
    }

    fn heal(&mut self) -> Result<(), NetError> {
        if !self.installed {
            return Ok(());
        }
        match self.firewall {
            Firewall::Nft => self.nft(&format!(
                "flush chain inet {NFT_TABLE} {NFT_GRUDGE_CHAIN}\n"
            )),
            Firewall::Iptables => self.iptables(["-F", IPTABLES_CHAIN]),
        }
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

    fn teardown(&mut self) -> Result<(), NetError> {
        match self.firewall {
            Firewall::Nft => self.nft(&nft_teardown_script())?,
            Firewall::Iptables => self.remove_iptables_chain()?,
        }
        self.installed = false;
        Ok(())
    }
}

impl std::ops::Drop for NftNet {
    fn drop(&mut self) {
        if self.installed {
            if let Err(error) = self.teardown() {
                warn!(%error, "could not remove the partition rules");
            }
        }
    }
}

/// The command line as text, for error messages.
fn command_line<I, S>(program: &Path, args: I) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    std::iter::once(program.as_os_str().to_owned())
        .chain(args.into_iter().map(|a| a.as_ref().to_owned()))
        .map(|a| a.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Runs `program args`, feeding `stdin` if given; an error names the
/// command, its exit status and what it wrote to stderr.
fn run<I, S>(program: &Path, args: I, stdin: Option<&str>) -> Result<(), NetError>
where
    I: IntoIterator<Item = S> + Clone,
    S: AsRef<OsStr>,
{
    let shown = command_line(program, args.clone());
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
    let shown = match stdin {
        Some(text) => format!("{shown} <<EOF\n{text}EOF"),
        None => shown,
    };
    Err(NetError::Command {
        command: shown,
        status: output.status.to_string(),
        stderr: String::from_utf8_lossy(&output.stderr).trim().to_string(),
    })
}

/// Whether `program args` exits with status 0 (a query such as
/// `iptables -C`); only failing to run it at all is an error.
fn succeeds<I, S>(program: &Path, args: I) -> Result<bool, NetError>
where
    I: IntoIterator<Item = S> + Clone,
    S: AsRef<OsStr>,
{
    Command::new(program)
        .args(args.clone())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|status| status.success())
        .map_err(|e| NetError::io(format!("running `{}`", command_line(program, args)), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(last: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(127, 0, 0, last))
    }

    #[test]
    fn nodes_get_consecutive_loopback_addresses_from_11() {
        let nodes: Vec<String> = ["n1", "n2", "n3"].map(String::from).to_vec();
        let addrs = node_addresses(&nodes).unwrap();
        assert_eq!(addrs["n1"], v4(11));
        assert_eq!(addrs["n3"], v4(13));
        let too_many: Vec<String> = (0..245).map(|i| format!("n{i}")).collect();
        assert!(node_addresses(&too_many).is_err());
    }

    #[test]
    fn partition_script_flushes_then_drops_traffic_from_sender_to_receiver() {
        let drops = [DropRule {
            receiver: "n1".into(),
            sender: "n2\"x".into(),
            from: v4(12),
            to: v4(11),
        }];
        let script = nft_partition_script(&drops);
        assert_eq!(
            script,
            "flush chain inet faultline grudge\n\
             add rule inet faultline grudge ip saddr 127.0.0.12 ip daddr 127.0.0.11 drop comment \"n1 drops n2x\"\n"
        );
    }

    #[test]
    fn missing_names_each_tool_and_how_to_install_it() {
        let nothing = Probe {
            nft: None,
            iptables: None,
            ip: None,
            unshare: None,
            root: true,
        };
        let message = nothing.missing().unwrap();
        for needle in [
            "nft or iptables",
            "ip (package iproute2)",
            "unshare",
            INSTALL_HINT,
        ] {
            assert!(message.contains(needle), "{message:?} lacks {needle:?}");
        }
        let iptables_only = Probe {
            iptables: Some("/usr/sbin/iptables".into()),
            ip: Some("/usr/sbin/ip".into()),
            unshare: Some("/usr/bin/unshare".into()),
            ..nothing
        };
        assert_eq!(iptables_only.firewall(), Some(Firewall::Iptables));
        assert_eq!(iptables_only.missing(), None);
    }

    #[test]
    fn private_netns_command_unshares_the_network_and_sets_the_marker() {
        let command = private_netns_command(Path::new("/bin/prog"), &["a".into(), "b".into()]);
        let args: Vec<_> = command.get_args().collect();
        assert!(args.contains(&OsStr::new("--net")));
        assert_eq!(args[args.len() - 4..], ["--", "/bin/prog", "a", "b"]);
        let marker = command.get_envs().find(|(k, _)| *k == NETNS_ENV);
        assert_eq!(marker, Some((OsStr::new(NETNS_ENV), Some(OsStr::new("1")))));
    }
}
