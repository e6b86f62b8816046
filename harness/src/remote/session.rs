//! A node on its host, started under a watchdog.
//!
//! # The wrapper
//! The local `ssh` of a session runs this on the host (POSIX `sh`):
//!
//! ```text
//! exec 3<&0                                 # the channel's stdin, kept
//! setsid PROGRAM ARGS 3<&- </dev/null >>DIR/node.log 2>&1 &
//! n=$!; echo $n >DIR/pid                    # the node leads its own group
//! ( cat <&3 >/dev/null; [ -e DIR/pid ] && kill -KILL -$n ) >/dev/null 2>&1 &
//! wait $n; s=$?; rm -f DIR/pid; exit $s
//! ```
//!
//! The harness holds the write end of the session's stdin and never writes
//! to it. The watchdog (`cat`) sees end of file only when the channel
//! closes: the harness closed it at teardown, or the harness, its `ssh`
//! or the connection died (a SIGKILLed harness takes its `ssh`s with it:
//! parent-death signal). Then it kills the node's whole group. The node's
//! group holds only the node and what it forks, so `SIGSTOP` to it (pause)
//! never stops the watchdog. When the node exits on its own, the wrapper
//! removes `pid` first, so a later end of file kills nothing (no pid is
//! ever signalled after its process is gone), and exits, which ends the
//! local `ssh`: its exit is the node's.

use std::io::Write;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use super::{RemoteError, RemoteHosts};
use crate::ssh::quote;

/// How often a session's exit is polled.
const POLL: Duration = Duration::from_millis(20);

/// One node running on its host, seen through its local `ssh`.
pub struct Session {
    node: String,
    ssh: Child,
    // Held open and never written: its end of file is the watchdog's cue.
    stdin: Option<ChildStdin>,
}

/// The wrapper line that starts `argv` on the host with `dir` as the
/// node's directory (see the module docs).
pub fn wrapper(dir: &str, argv: &[String]) -> String {
    let words: Vec<String> = argv.iter().map(|w| quote(w)).collect();
    let d = quote(dir);
    let script = format!(
        "exec 3<&0; setsid {} 3<&- </dev/null >>{d}/node.log 2>&1 & n=$!; echo $n >{d}/pid; \
         ( cat <&3 >/dev/null; [ -e {d}/pid ] && kill -KILL -$n ) >/dev/null 2>&1 & \
         wait $n; s=$?; rm -f {d}/pid; exit $s",
        words.join(" ")
    );
    format!("exec sh -c {}", quote(&script))
}

impl Session {
    /// Starts `argv` for `node` on its host under the watchdog.
    pub fn start(hosts: &RemoteHosts, node: &str, argv: &[String]) -> Result<Session, RemoteError> {
        let control = hosts.control(node)?;
        let line = wrapper(&hosts.node_dir(node), argv);
        control.note(&format!("{node}: starting `{}`", argv.join(" ")));
        let mut command: Command = control.command(&line);
        command
            .stdin(Stdio::piped())
            .stdout(hosts.log_stdio())
            .stderr(hosts.log_stdio());
        let mut ssh = hosts.spawner().spawn(command).map_err(|source| {
            RemoteError::Ssh(crate::ssh::SshError::Spawn {
                program: "ssh",
                host: control.host().to_string(),
                source,
            })
        })?;
        let stdin = ssh.stdin.take();
        Ok(Session {
            node: node.to_string(),
            ssh,
            stdin,
        })
    }

    /// The pid of the local `ssh` that carries the session.
    pub fn ssh_pid(&self) -> u32 {
        self.ssh.id()
    }

    /// How it ended, if the node has exited.
    pub fn exit_status(&mut self) -> Option<String> {
        self.ssh.try_wait().ok().flatten().map(|s| s.to_string())
    }

    /// Waits up to `limit` for the node to exit; whether it did.
    pub fn wait_exit(&mut self, limit: Duration) -> bool {
        let start = Instant::now();
        while start.elapsed() < limit {
            if self.exit_status().is_some() {
                return true;
            }
            thread::sleep(POLL);
        }
        self.exit_status().is_some()
    }

    /// Stops the node: `SIGTERM` to its group, `SIGKILL` after `grace`,
    /// and the session closed (its watchdog ends). Bounded.
    pub fn stop(mut self, hosts: &RemoteHosts, grace: Duration) {
        if self.exit_status().is_none() {
            let _ = hosts.signal(&self.node, "CONT");
            let _ = hosts.signal(&self.node, "TERM");
            if !self.wait_exit(grace) {
                self.kill(hosts);
            }
        }
        self.close();
    }

    /// Kills the node's group on its host and waits (bounded) for the
    /// session to end.
    pub fn kill(&mut self, hosts: &RemoteHosts) {
        let _ = hosts.signal(&self.node, "KILL");
        if !self.wait_exit(Duration::from_secs(5)) {
            if let Ok(control) = hosts.control(&self.node) {
                control.note(&format!(
                    "{}: session still open after SIGKILL; closing it",
                    self.node
                ));
            }
        }
    }

    /// Closes the session: stdin's end of file reaches the watchdog, and
    /// the local `ssh` is reaped (killed if it lingers).
    fn close(&mut self) {
        if let Some(mut stdin) = self.stdin.take() {
            let _ = stdin.flush();
        }
        if !self.wait_exit(Duration::from_secs(2)) {
            let _ = self.ssh.kill();
        }
        let _ = self.ssh.wait();
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wrapper_runs_the_node_in_its_own_group_and_kills_it_at_end_of_file() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_str().unwrap();
        let line = wrapper(d, &["sleep".into(), "30".into()]);
        let mut sh = Command::new("sh")
            .arg("-c")
            .arg(&line)
            .stdin(Stdio::piped())
            .spawn()
            .unwrap();
        let pid_file = dir.path().join("pid");
        let start = Instant::now();
        while !pid_file.exists() && start.elapsed() < Duration::from_secs(5) {
            thread::sleep(POLL);
        }
        let pid: i32 = std::fs::read_to_string(&pid_file)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let group = nix::unistd::getpgid(Some(nix::unistd::Pid::from_raw(pid))).unwrap();
        assert_eq!(group.as_raw(), pid, "the node leads its own group");
        drop(sh.stdin.take());
        let status = sh.wait().unwrap();
        assert!(!status.success(), "the node was killed: {status}");
        assert!(!pid_file.exists());
        assert!(
            !std::path::Path::new(&format!("/proc/{pid}")).exists() || {
                let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
                stat.contains(") Z")
            }
        );
    }
}
