//! [`Members`]: a cluster's node processes, here (child processes, see
//! `process`) or on remote hosts ([`crate::remote::members`]), behind
//! the few calls a system's database makes on them.

use std::path::Path;
use std::process::Command;

use nix::sys::signal::Signal;

use super::db::DbError;
use super::process::{signal_node, Processes};
use crate::remote::members::RemoteMembers;

/// Where a cluster's nodes run.
pub(crate) enum Members {
    /// Child processes of the harness.
    Local(Processes),
    /// One node per remote host.
    Remote(RemoteMembers),
}

impl Members {
    /// Starts `command` as `node`; here its output goes to `log`, on a host
    /// to the node's `node.log` there (fetched back at the end).
    pub(crate) fn start(
        &mut self,
        node: &str,
        command: Command,
        log: &Path,
    ) -> Result<(), DbError> {
        match self {
            Members::Local(p) => p.start(node, command, log).map(|_| ()),
            Members::Remote(r) => r.start(node, &command),
        }
    }

    /// How `node` ended, if it has exited.
    pub(crate) fn exit_status(&mut self, node: &str) -> Option<String> {
        match self {
            Members::Local(p) => p.get_mut(node).and_then(|p| p.exit_status()),
            Members::Remote(r) => r.exit_status(node),
        }
    }

    /// Whether `node` runs.
    pub(crate) fn is_alive(&mut self, node: &str) -> bool {
        match self {
            Members::Local(p) => p.is_alive(node),
            Members::Remote(r) => r.is_alive(node),
        }
    }

    /// Kills `node` (its whole group) and waits until it is gone.
    pub(crate) fn kill(&mut self, node: &str) {
        match self {
            Members::Local(p) => p.kill(node),
            Members::Remote(r) => r.kill(node),
        }
    }

    /// `signal` (SIGSTOP, SIGCONT) to `node`'s group; a node not running is
    /// an error when `must_run`.
    pub(crate) fn signal(
        &mut self,
        node: &str,
        signal: Signal,
        must_run: bool,
    ) -> Result<(), DbError> {
        match self {
            Members::Local(p) => signal_node(p, node, signal, must_run),
            Members::Remote(r) => {
                let name = signal.as_str().trim_start_matches("SIG");
                r.signal(node, name, must_run)
            }
        }
    }

    /// Stops every node; on remote hosts also fetches logs and data back
    /// and cleans the hosts.
    pub(crate) fn stop_all(&mut self) -> Result<(), DbError> {
        match self {
            Members::Local(p) => {
                p.stop_all();
                Ok(())
            }
            Members::Remote(r) => r.finish(),
        }
    }

    /// Every local node's pid (none for remote nodes: `state.json` names
    /// their hosts instead).
    pub(crate) fn pids(&self) -> Vec<(String, u32)> {
        match self {
            Members::Local(p) => p.pids(),
            Members::Remote(_) => Vec::new(),
        }
    }

    /// Whether the nodes run on remote hosts.
    pub(crate) fn is_remote(&self) -> bool {
        matches!(self, Members::Remote(_))
    }
}
