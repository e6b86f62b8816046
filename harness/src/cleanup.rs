//! What a run leaves behind if the harness dies, and `faultline cleanup`,
//! which removes it.
//!
//! While a run has nodes up it keeps `state.json` in its run directory: the
//! harness's pid, each node's pid (every node leads its own process group)
//! and the network backend. A run that ends normally removes the file, so a
//! state file in the store means a run that was killed. Nodes normally die
//! with the harness anyway (parent-death signal; each node's PID namespace,
//! see `containment`, takes its daemons too: a node's recorded pid is its
//! `unshare`, whose death ends the namespace) and the proxy backend lives
//! in the harness's own process; `faultline cleanup` is for what that cannot
//! cover: nodes of external systems that daemonize or outlive their parent,
//! and kernel rules (the nft table `inet faultline` or the iptables chain
//! `FAULTLINE`) left in the current network namespace, and, for a run on
//! remote hosts (`--hosts`), what it left on each host (its node groups,
//! its own nft table, its directory), over ssh with the run's options.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};

/// The state file's name in a run directory.
pub const STATE_FILE: &str = "state.json";

/// What a live run has created.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RunState {
    /// The harness process.
    pub harness_pid: u32,
    /// Node id → pid (and process group) of the running node.
    pub nodes: BTreeMap<String, u32>,
    /// The network backend in use: `proxy`, or none.
    pub net: Option<String>,
    /// With nodes on remote hosts: the hosts, how to reach them and the
    /// run's name there, so cleanup can clean them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote: Option<crate::remote::RemoteState>,
}

impl RunState {
    /// Writes the state file into `run_dir` (atomically: temp file + rename).
    pub fn write(&self, run_dir: &Path) -> std::io::Result<()> {
        let tmp = run_dir.join(format!("{STATE_FILE}.tmp"));
        std::fs::write(&tmp, serde_json::to_vec_pretty(self)?)?;
        std::fs::rename(tmp, run_dir.join(STATE_FILE))
    }

    /// Removes the state file: the run ended and undid everything.
    pub fn remove(run_dir: &Path) {
        let _ = std::fs::remove_file(run_dir.join(STATE_FILE));
    }
}

/// What `faultline cleanup` did.
#[derive(Debug, Default)]
pub struct Report {
    /// Run directories whose state file was found.
    pub runs: Vec<PathBuf>,
    /// Process groups killed.
    pub killed: Vec<(String, u32)>,
    /// Kernel rules removed.
    pub rules: Vec<String>,
    /// Things that could not be undone, with why.
    pub problems: Vec<String>,
}

/// Cleans up after every killed run under `store`, and removes faultline's
/// kernel rules from the current network namespace.
pub fn cleanup(store: &Path) -> Report {
    let mut report = Report::default();
    for state_path in state_files(store) {
        let run_dir = state_path.parent().unwrap_or(store).to_path_buf();
        let state: RunState = match std::fs::read(&state_path)
            .map_err(|e| e.to_string())
            .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))
        {
            Ok(state) => state,
            Err(e) => {
                report
                    .problems
                    .push(format!("{}: {e}", state_path.display()));
                continue;
            }
        };
        if state.harness_pid != std::process::id()
            && alive(state.harness_pid)
            && is_faultline(state.harness_pid)
        {
            report.problems.push(format!(
                "{}: its harness (pid {}) is still running; not touching it",
                run_dir.display(),
                state.harness_pid
            ));
            continue;
        }
        // The recorded nodes, and any other process that mentions the run
        // (a node restarted by the nemesis has a new pid; its data dir is
        // still in the run directory).
        let mut groups: BTreeMap<u32, String> = state
            .nodes
            .iter()
            .filter(|(_, pid)| alive(**pid) && mentions(**pid, &run_dir))
            .map(|(node, pid)| (*pid, node.clone()))
            .collect();
        for pid in processes_mentioning(&run_dir) {
            let group = process_group(pid).unwrap_or(pid);
            groups.entry(group).or_insert_with(|| format!("pid {pid}"));
        }
        for (group, node) in groups {
            // SIGCONT first: a paused group would not die until resumed.
            let pgid = Pid::from_raw(group as i32);
            let _ = killpg(pgid, Signal::SIGCONT);
            match killpg(pgid, Signal::SIGKILL) {
                Ok(()) => report.killed.push((node, group)),
                Err(e) => report
                    .problems
                    .push(format!("kill {node} (group {group}): {e}")),
            }
        }
        if let Some(remote) = &state.remote {
            clean_hosts(remote, &run_dir, &mut report);
        }
        RunState::remove(&run_dir);
        report.runs.push(run_dir);
    }
    remove_kernel_rules(&mut report);
    report
}

/// Cleans the remote hosts of a killed run: its node groups killed, its
/// own nft table deleted, its directory on each host removed.
fn clean_hosts(remote: &crate::remote::RemoteState, run_dir: &Path, report: &mut Report) {
    let log = run_dir.join("control.log");
    for outcome in crate::remote::clean_killed_run(remote, &log) {
        match outcome {
            Ok(done) => report.rules.push(done),
            Err(problem) => report.problems.push(problem),
        }
    }
}

fn state_files(store: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let Ok(tests) = std::fs::read_dir(store) else {
        return found;
    };
    for test in tests
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
    {
        let Ok(runs) = std::fs::read_dir(test.path()) else {
            continue;
        };
        for run in runs.flatten() {
            let path = run.path().join(STATE_FILE);
            if path.is_file() && !run.file_type().is_ok_and(|t| t.is_symlink()) {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

fn alive(pid: u32) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    !stat.is_empty()
        && !stat
            .rsplit(')')
            .next()
            .is_some_and(|s| s.trim_start().starts_with('Z'))
}

/// Whether the process's command line mentions `dir` (a node's data dir is
/// inside its run dir), so a recycled pid is never killed.
fn mentions(pid: u32, dir: &Path) -> bool {
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let text = String::from_utf8_lossy(&cmdline).replace('\0', " ");
    let canonical = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    text.contains(&*dir.to_string_lossy()) || text.contains(&*canonical.to_string_lossy())
}

fn processes_mentioning(dir: &Path) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_string_lossy().parse::<u32>().ok())
        .filter(|&pid| pid != std::process::id() && alive(pid) && mentions(pid, dir))
        .collect()
}

/// The process group of `pid` (field 5 of /proc/PID/stat).
fn process_group(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit(')')
        .next()?
        .split_whitespace()
        .nth(2)?
        .parse()
        .ok()
}

fn is_faultline(pid: u32) -> bool {
    std::fs::read_link(format!("/proc/{pid}/exe"))
        .map(|exe| {
            exe.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("faultline"))
        })
        .unwrap_or(false)
}

/// Deletes `inet faultline` (nft) and the `FAULTLINE` chain (iptables) from
/// the current network namespace, if present.
fn remove_kernel_rules(report: &mut Report) {
    let ran = |program: &str, args: &[&str]| {
        Command::new(program)
            .args(args)
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false)
    };
    if ran("nft", &["list", "table", "inet", "faultline"]) {
        if ran("nft", &["delete", "table", "inet", "faultline"]) {
            report.rules.push("nft table inet faultline".into());
        } else {
            report
                .problems
                .push("could not delete nft table inet faultline".into());
        }
    }
    if ran("iptables", &["-w", "-n", "-L", "FAULTLINE"]) {
        let _ = ran("iptables", &["-w", "-D", "INPUT", "-j", "FAULTLINE"]);
        let flushed = ran("iptables", &["-w", "-F", "FAULTLINE"]);
        if flushed && ran("iptables", &["-w", "-X", "FAULTLINE"]) {
            report.rules.push("iptables chain FAULTLINE".into());
        } else {
            report
                .problems
                .push("could not remove iptables chain FAULTLINE".into());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_state_file_round_trips_and_is_found_in_the_store() {
        let dir = std::env::temp_dir().join(format!("faultline-state-{}", std::process::id()));
        let run = dir.join("some-test").join("20261126T000000.000Z");
        std::fs::create_dir_all(&run).unwrap();
        let state = RunState {
            harness_pid: 1,
            nodes: [("n1".to_string(), 4_000_000)].into(),
            net: Some("proxy".into()),
            remote: None,
        };
        state.write(&run).unwrap();
        let read: RunState =
            serde_json::from_slice(&std::fs::read(run.join(STATE_FILE)).unwrap()).unwrap();
        assert_eq!(read, state);
        assert_eq!(state_files(&dir), vec![run.join(STATE_FILE)]);
        RunState::remove(&run);
        assert!(state_files(&dir).is_empty());
        std::fs::remove_dir_all(&dir).ok();
    }
}
