//! [`RemoteMembers`]: a cluster's node processes on their remote hosts,
//! one [`Session`] each, and what a run does with them at the end: every
//! node stopped, its log and data fetched back, the hosts cleaned.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use super::session::Session;
use super::RemoteHosts;
use crate::system::db::DbError;

fn remote(e: impl std::fmt::Display) -> DbError {
    DbError::Remote(e.to_string())
}

/// The nodes running on `hosts`, by node id.
pub struct RemoteMembers {
    hosts: Arc<RemoteHosts>,
    sessions: BTreeMap<String, Session>,
    grace: Duration,
    /// Where logs (`<node>.log`) and data (`<node>/data`) come back to.
    log_dir: PathBuf,
    finished: bool,
}

impl RemoteMembers {
    /// No node started yet; stops wait `grace` after SIGTERM.
    pub fn new(hosts: Arc<RemoteHosts>, grace: Duration, log_dir: PathBuf) -> RemoteMembers {
        RemoteMembers {
            hosts,
            sessions: BTreeMap::new(),
            grace,
            log_dir,
            finished: false,
        }
    }

    /// The hosts.
    pub fn hosts(&self) -> &Arc<RemoteHosts> {
        &self.hosts
    }

    /// Starts `command` (program and arguments, as the host names them)
    /// as `node` on its host, under the session watchdog.
    pub fn start(&mut self, node: &str, command: &Command) -> Result<(), DbError> {
        let argv: Vec<String> = std::iter::once(command.get_program())
            .chain(command.get_args())
            .map(|w| w.to_string_lossy().into_owned())
            .collect();
        let session = Session::start(&self.hosts, node, &argv).map_err(remote)?;
        if let Some(mut old) = self.sessions.insert(node.to_string(), session) {
            old.kill(&self.hosts);
        }
        self.finished = false;
        Ok(())
    }

    /// How `node` ended, if it has exited.
    pub fn exit_status(&mut self, node: &str) -> Option<String> {
        self.sessions.get_mut(node).and_then(Session::exit_status)
    }

    /// Whether `node` runs.
    pub fn is_alive(&mut self, node: &str) -> bool {
        self.sessions.contains_key(node) && self.exit_status(node).is_none()
    }

    /// SIGKILLs `node`'s group on its host and waits (bounded) until it is
    /// gone; no-op when not started.
    pub fn kill(&mut self, node: &str) {
        if let Some(mut session) = self.sessions.remove(node) {
            session.kill(&self.hosts);
        }
    }

    /// `signal` (`STOP`, `CONT`) to `node`'s group. A node that is not
    /// running is an error when `must_run`, and left alone otherwise.
    pub fn signal(&mut self, node: &str, signal: &str, must_run: bool) -> Result<(), DbError> {
        let sent = self.is_alive(node) && self.hosts.signal(node, signal).map_err(remote)?;
        match (sent, must_run) {
            (false, true) => Err(DbError::NotRunning(node.to_string())),
            _ => Ok(()),
        }
    }

    /// Stops every node (SIGTERM, grace, SIGKILL), fetches each node's log
    /// and data back, and cleans the hosts. Idempotent.
    pub fn finish(&mut self) -> Result<(), DbError> {
        for (_, session) in std::mem::take(&mut self.sessions) {
            session.stop(&self.hosts, self.grace);
        }
        if self.finished {
            return Ok(());
        }
        self.finished = true;
        self.fetch_back();
        self.hosts.clean().map_err(remote)
    }

    /// Each node's log and data dir, copied into the log dir (best effort:
    /// what fails is noted in the control log).
    fn fetch_back(&self) {
        for node in self.hosts.addresses().into_keys() {
            let dir = self.hosts.node_dir(&node);
            let log = self.log_dir.join(format!("{node}.log"));
            let data = self.log_dir.join(&node);
            let _ = std::fs::create_dir_all(&data);
            for (from, to) in [
                (format!("{dir}/node.log"), log),
                (format!("{dir}/data"), data),
            ] {
                if let Err(e) = self.hosts.fetch(&node, &from, &to) {
                    if let Ok(control) = self.hosts.control(&node) {
                        control.note(&format!("fetching {from}: {e}"));
                    }
                }
            }
        }
    }
}

impl Drop for RemoteMembers {
    fn drop(&mut self) {
        let _ = self.finish();
    }
}
