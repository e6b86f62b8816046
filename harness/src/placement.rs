//! Placement: where a node runs and how a command reaches it.
//!
//! A system is written once against [`Placement`]: it asks for the address
//! a node listens on (and that peers and clients use), and has every
//! command for a node — its start command, a `pg_ctl`, a `redis-cli` —
//! rewritten to run where the node runs. Containment (`crate::containment`)
//! is applied after placement, at spawn, so every placement is contained.
//!
//! - [`Loopback`]: today's placement; every node on `127.0.0.1` in the
//!   harness's own network namespace (target-node, `custom`), the proxy
//!   backend cutting links; commands run unchanged.
//! - [`NodeNamespaces`] (Linux): every node in its own network namespace
//!   with its own address (`nemesis::net::nodes`), commands entered there
//!   with `nsenter --net`; partitions are DROP rules between the node
//!   addresses, so a system needs no source-address option.
//! - `crate::remote::RemoteHosts`: a remote host per node (`--hosts`): the
//!   address is the host's, and a command becomes `ssh HOST -- COMMAND`
//!   (quoted) over the host's master. The trait asks nothing a remote host
//!   cannot answer: no pids, no paths of this machine. (target-node's
//!   nodes there are started as watched sessions, `crate::remote::session`.)

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
#[cfg(target_os = "linux")]
use std::path::PathBuf;
use std::process::Command;

/// Why a placement cannot answer for a node.
#[derive(Debug, thiserror::Error)]
pub enum PlacementError {
    /// The placement has no site for this node.
    #[error("no place for node {0:?}")]
    UnknownNode(String),
}

/// Where each node runs and how a command reaches it.
pub trait Placement: Send + Sync {
    /// A short name for logs and errors: `loopback`, `node namespaces`.
    fn name(&self) -> &'static str;

    /// The address `node` listens on, and that peers and clients reach it at.
    fn address(&self, node: &str) -> Result<IpAddr, PlacementError>;

    /// `command` rewritten to run where `node` runs (same program,
    /// arguments, environment changes and working directory). Set stdio on
    /// the result, not before.
    fn command(&self, node: &str, command: Command) -> Result<Command, PlacementError>;
}

/// One placement shared by several parts of a system (a database and the
/// store its HA manager keeps state in, on the same nodes).
impl<P: Placement + ?Sized> Placement for std::sync::Arc<P> {
    fn name(&self) -> &'static str {
        (**self).name()
    }

    fn address(&self, node: &str) -> Result<IpAddr, PlacementError> {
        (**self).address(node)
    }

    fn command(&self, node: &str, command: Command) -> Result<Command, PlacementError> {
        (**self).command(node, command)
    }
}

/// Every node on `127.0.0.1`, here; commands unchanged.
#[derive(Clone, Copy, Debug, Default)]
pub struct Loopback;

impl Placement for Loopback {
    fn name(&self) -> &'static str {
        "loopback"
    }

    fn address(&self, _node: &str) -> Result<IpAddr, PlacementError> {
        Ok(IpAddr::V4(Ipv4Addr::LOCALHOST))
    }

    fn command(&self, _node: &str, command: Command) -> Result<Command, PlacementError> {
        Ok(command)
    }
}

/// One node's network namespace: its address and the file naming it.
#[cfg(target_os = "linux")]
#[derive(Clone, Debug)]
struct Site {
    address: IpAddr,
    netns: PathBuf,
}

/// Every node in its own network namespace, from a
/// [`nemesis::net::nodes::NodeNet`]; commands enter it with `nsenter --net`.
/// Valid while that `NodeNet` is up (the namespace files are its holders').
#[cfg(target_os = "linux")]
#[derive(Clone, Debug)]
pub struct NodeNamespaces {
    sites: BTreeMap<String, Site>,
    nsenter: PathBuf,
}

#[cfg(target_os = "linux")]
impl NodeNamespaces {
    /// The placement of `net`'s nodes.
    pub fn new(net: &nemesis::net::nodes::NodeNet) -> NodeNamespaces {
        let sites = net
            .addresses()
            .into_iter()
            .filter_map(|(node, address)| {
                let netns = net.namespace_path(&node)?;
                Some((node, Site { address, netns }))
            })
            .collect();
        NodeNamespaces {
            sites,
            nsenter: net.nsenter().to_path_buf(),
        }
    }

    fn site(&self, node: &str) -> Result<&Site, PlacementError> {
        self.sites
            .get(node)
            .ok_or_else(|| PlacementError::UnknownNode(node.to_string()))
    }
}

#[cfg(target_os = "linux")]
impl Placement for NodeNamespaces {
    fn name(&self) -> &'static str {
        "node namespaces"
    }

    fn address(&self, node: &str) -> Result<IpAddr, PlacementError> {
        Ok(self.site(node)?.address)
    }

    fn command(&self, node: &str, command: Command) -> Result<Command, PlacementError> {
        let net = format!("--net={}", self.site(node)?.netns.display());
        Ok(crate::containment::prefixed(
            &self.nsenter,
            &[net.as_str(), "--"],
            &command,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_puts_every_node_on_127_0_0_1_and_leaves_commands_alone() {
        assert_eq!(
            Loopback.address("n7").unwrap(),
            IpAddr::V4(Ipv4Addr::LOCALHOST)
        );
        let command = Loopback.command("n1", Command::new("mydb")).unwrap();
        assert_eq!(command.get_program(), "mydb");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_node_namespace_command_enters_the_node_through_nsenter() {
        let placement = NodeNamespaces {
            sites: [(
                "n1".to_string(),
                Site {
                    address: IpAddr::V4(Ipv4Addr::new(198, 18, 0, 11)),
                    netns: PathBuf::from("/proc/42/ns/net"),
                },
            )]
            .into(),
            nsenter: PathBuf::from("/usr/bin/nsenter"),
        };
        let mut inner = Command::new("mydb");
        inner.arg("--listen").env("X", "1");
        let command = placement.command("n1", inner).unwrap();
        let args: Vec<_> = command.get_args().map(|a| a.to_str().unwrap()).collect();
        assert_eq!(args, ["--net=/proc/42/ns/net", "--", "mydb", "--listen"]);
        assert!(command.get_envs().any(|(k, _)| k == "X"));
        assert!(matches!(
            placement.address("n9"),
            Err(PlacementError::UnknownNode(_))
        ));
    }
}
