//! The remote-host options of a test: `hosts`, `ssh-key`, `ssh-user`,
//! `ssh-option`, `keep-remote` (keys of `--test` files and `test.json`,
//! [`RemoteOptions`]) and the flags of `faultline run` ([`RemoteArgs`]).
//! Without hosts a run stays on this machine; every key is left out of
//! `test.json` then.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::ssh::{Host, SshOptions};

/// Where the nodes run when not here, and how to reach those hosts.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", default)]
pub struct RemoteOptions {
    /// One host per node, `[user@]host[:port]`, node `nI` on the I-th.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<String>,
    /// The identity file every ssh uses.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ssh_key: Option<PathBuf>,
    /// The login user for hosts that name none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ssh_user: Option<String>,
    /// Further ssh options (`-o`), as given.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ssh_option: Vec<String>,
    /// Keep each host's per-run directory after the run.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub keep_remote: bool,
}

impl RemoteOptions {
    /// Whether the nodes run on remote hosts.
    pub fn is_remote(&self) -> bool {
        !self.hosts.is_empty()
    }

    /// The hosts, parsed; `nodes` must be their count.
    pub fn parsed_hosts(&self, nodes: usize) -> Result<Vec<Host>, String> {
        if self.hosts.len() != nodes {
            return Err(format!(
                "hosts names {} host(s) but nodes is {nodes}: one node runs on each host",
                self.hosts.len()
            ));
        }
        self.hosts
            .iter()
            .map(|h| h.parse::<Host>().map_err(|e| e.to_string()))
            .collect()
    }

    /// How every connection is made.
    pub fn ssh(&self) -> SshOptions {
        SshOptions {
            key: self.ssh_key.clone(),
            user: self.ssh_user.clone(),
            options: self.ssh_option.clone(),
        }
    }
}

/// The remote-host flags of `faultline run`.
#[derive(Clone, Debug, Default, clap::Args)]
pub struct RemoteArgs {
    /// Run node nI on the I-th of these hosts over OpenSSH, a comma list
    /// of `[user@]host[:port]`, one per node (without it, nodes run here).
    #[arg(long, value_delimiter = ',')]
    pub hosts: Option<Vec<String>>,
    /// The identity file for ssh (`ssh -i`).
    #[arg(long)]
    pub ssh_key: Option<PathBuf>,
    /// The login user for hosts that name none.
    #[arg(long)]
    pub ssh_user: Option<String>,
    /// An ssh option, passed as `-o OPTION` (repeatable):
    /// `--ssh-option StrictHostKeyChecking=no`.
    #[arg(long)]
    pub ssh_option: Vec<String>,
    /// Keep each host's per-run directory (/tmp/faultline/RUN) after the run.
    #[arg(long)]
    pub keep_remote: bool,
}

impl RemoteArgs {
    /// Overrides `options` with the flags given.
    pub fn apply(&self, options: &mut RemoteOptions) {
        if let Some(hosts) = &self.hosts {
            options.hosts = hosts.clone();
        }
        if self.ssh_key.is_some() {
            options.ssh_key = self.ssh_key.clone();
        }
        if self.ssh_user.is_some() {
            options.ssh_user = self.ssh_user.clone();
        }
        if !self.ssh_option.is_empty() {
            options.ssh_option = self.ssh_option.clone();
        }
        if self.keep_remote {
            options.keep_remote = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_host_per_node_or_a_clear_error() {
        let options = RemoteOptions {
            hosts: vec!["root@10.0.0.2".into(), "10.0.0.3:2222".into()],
            ..RemoteOptions::default()
        };
        assert_eq!(options.parsed_hosts(2).unwrap()[1].port, Some(2222));
        let err = options.parsed_hosts(3).unwrap_err();
        assert!(err.contains("2 host(s) but nodes is 3"), "{err}");
        let bad = RemoteOptions {
            hosts: vec!["@x".into()],
            ..RemoteOptions::default()
        };
        assert!(bad.parsed_hosts(1).unwrap_err().contains("empty user"));
    }

    #[test]
    fn without_hosts_nothing_is_written_to_test_json() {
        let json = serde_json::to_value(RemoteOptions::default()).unwrap();
        assert_eq!(json, serde_json::json!({}));
    }
}
