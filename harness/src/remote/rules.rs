//! Partitions on remote hosts: nft rules in a table of the run's own,
//! `inet faultline_<run>`, on each host. A host that drops traffic from
//! some nodes gets the table with one input rule dropping their
//! addresses; healing deletes that table and nothing else (Jepsen's lesson
//! from jepsen#600: never flush the host's own rules). `slow` and `flaky`
//! need the proxy, which cannot sit between remote hosts: unsupported.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use nemesis::grudge::Grudge;
use nemesis::net::{Net, NetError};

use super::{RemoteHosts, COMMAND_LIMIT};
use crate::ssh::quote;

/// `nft`, through `sudo -n` unless the login is root.
const NFT: &str = "if [ \"$(id -u)\" = 0 ]; then nft \"$@\"; else sudo -n nft \"$@\"; fi";

/// A shell line that runs `nft ARGS` as root on the host.
fn nft(args: &str) -> String {
    format!("sh -c {} nft {args}", quote(NFT))
}

/// The line that deletes `table` if it exists (and only it).
pub fn delete_line(table: &str) -> String {
    let table = quote(table);
    format!(
        "if {} >/dev/null 2>&1; then {}; fi",
        nft(&format!("list table inet {table}")),
        nft(&format!("delete table inet {table}"))
    )
}

/// The nft script that makes `table` drop input from `from`, replacing
/// whatever the table held (atomically: one transaction).
pub fn partition_script(table: &str, from: &BTreeSet<IpAddr>) -> String {
    let list = |v6: bool| {
        from.iter()
            .filter(|a| a.is_ipv6() == v6)
            .map(|a| a.to_string())
            .collect::<Vec<_>>()
    };
    let mut rules = String::new();
    for (family, addrs) in [("ip", list(false)), ("ip6", list(true))] {
        if !addrs.is_empty() {
            rules.push_str(&format!(
                "    {family} saddr {{ {} }} drop\n",
                addrs.join(", ")
            ));
        }
    }
    format!(
        "table inet {table} {{}}\ndelete table inet {table}\ntable inet {table} {{\n  chain input {{\n    type filter hook input priority -10; policy accept;\n{rules}  }}\n}}\n"
    )
}

/// Partitions between the run's hosts.
pub struct HostRules {
    hosts: Arc<RemoteHosts>,
    addresses: BTreeMap<String, IpAddr>,
    table: String,
}

impl HostRules {
    /// Rules between `hosts`' nodes, in the run's own table.
    pub fn new(hosts: Arc<RemoteHosts>) -> HostRules {
        HostRules {
            addresses: hosts.addresses(),
            table: hosts.table(),
            hosts,
        }
    }

    fn on_host(&self, node: &str, line: &str) -> Result<(), NetError> {
        let control = self
            .hosts
            .control(node)
            .map_err(|_| NetError::UnknownNode(node.to_string()))?;
        control
            .run(line, COMMAND_LIMIT)
            .map(|_| ())
            .map_err(|e| NetError::Command {
                command: line.to_string(),
                status: "on the host".into(),
                stderr: e.to_string(),
            })
    }

    fn unsupported(what: &str) -> NetError {
        NetError::Unsupported(format!(
            "{what} needs the proxy between nodes, which cannot sit between remote hosts (--hosts)"
        ))
    }
}

impl Net for HostRules {
    fn partition(&mut self, grudge: &Grudge) -> Result<(), NetError> {
        for (node, dropped) in grudge {
            if !self.addresses.contains_key(node) {
                return Err(NetError::UnknownNode(node.clone()));
            }
            if let Some(unknown) = dropped.iter().find(|d| !self.addresses.contains_key(*d)) {
                return Err(NetError::UnknownNode(unknown.clone()));
            }
        }
        let nodes: Vec<String> = self.addresses.keys().cloned().collect();
        for node in nodes {
            let from: BTreeSet<IpAddr> = grudge
                .get(&node)
                .into_iter()
                .flatten()
                .filter_map(|d| self.addresses.get(d).copied())
                .collect();
            let line = match from.is_empty() {
                true => delete_line(&self.table),
                false => format!(
                    "printf '%s' {} | {}",
                    quote(&partition_script(&self.table, &from)),
                    nft("-f -")
                ),
            };
            self.on_host(&node, &line)?;
        }
        Ok(())
    }

    fn heal(&mut self) -> Result<(), NetError> {
        let mut first = None;
        let nodes: Vec<String> = self.addresses.keys().cloned().collect();
        for node in nodes {
            if let Err(e) = self.on_host(&node, &delete_line(&self.table)) {
                first.get_or_insert(e);
            }
        }
        first.map_or(Ok(()), Err)
    }

    fn slow(&mut self, _delay: Duration, _jitter: Duration) -> Result<(), NetError> {
        Err(Self::unsupported("slow"))
    }

    fn flaky(&mut self, _loss: f64) -> Result<(), NetError> {
        Err(Self::unsupported("flaky"))
    }

    fn fast(&mut self) -> Result<(), NetError> {
        Ok(())
    }

    fn teardown(&mut self) -> Result<(), NetError> {
        self.heal()
    }
}

impl Drop for HostRules {
    fn drop(&mut self) {
        let _ = self.heal();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_partition_replaces_the_runs_table_in_one_script() {
        let from: BTreeSet<IpAddr> = ["10.0.0.3".parse().unwrap(), "fd00::4".parse().unwrap()]
            .into_iter()
            .collect();
        let script = partition_script("faultline_R", &from);
        assert!(script.starts_with("table inet faultline_R {}\ndelete table inet faultline_R\n"));
        assert!(script.contains("ip saddr { 10.0.0.3 } drop"), "{script}");
        assert!(script.contains("ip6 saddr { fd00::4 } drop"), "{script}");
        assert!(!script.contains("flush"));
    }

    #[test]
    fn deleting_touches_only_the_named_table() {
        let line = delete_line("faultline_R");
        assert!(line.contains("delete table inet faultline_R"), "{line}");
        assert!(!line.contains("flush"), "{line}");
    }
}
