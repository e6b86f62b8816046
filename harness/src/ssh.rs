//! Remote hosts over OpenSSH, as Jepsen controls its nodes: the system
//! `ssh` client, one multiplexed master connection per host, every remote
//! command bounded in time and logged.
//!
//! # Why the system client, and why a foreground master
//! No SSH protocol of our own: every connection is `/usr/bin/ssh`. A host's
//! master (`ssh -M -N`, `ControlPersist=no`) is a child of the harness that
//! stays in the foreground, so it dies with the run (it is forked with a
//! parent-death signal by the caller's spawner, or killed on drop); every
//! other command rides on it through its control socket (`-S`), which
//! skips the key exchange. A master that daemonized itself (`-f`,
//! `ControlPersist=yes`, as wrappers do) would outlive a SIGKILLed harness.
//!
//! # Layout
//! - [`Host`]: `user@host:port` as `--hosts` spells it.
//! - [`SshOptions`]: `--ssh-key`, `--ssh-user`, `--ssh-option`.
//! - [`Control`]: one host's master; [`Control::run`] (a bounded command,
//!   its output kept in the control log), [`Control::upload`] (by `scp`
//!   over the master, skipped when the remote file's hash already matches),
//!   [`Control::download`] (the way back).
//! - [`quote`]: a word quoted for the remote shell.

use std::fmt;
use std::fs::File;
use std::io::{self, Read, Write};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::str::FromStr;
use std::sync::{mpsc, Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

/// How often a bounded command's exit is polled.
const POLL: Duration = Duration::from_millis(10);

/// Why a host cannot be reached or a remote command did not do its work.
#[derive(Debug, thiserror::Error)]
pub enum SshError {
    /// `--hosts` names a host this module cannot read.
    #[error("host {spec:?}: {reason}")]
    BadHost {
        /// The entry as written.
        spec: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The local `ssh` or `scp` could not be started.
    #[error("starting {program} for {host}: {source}")]
    Spawn {
        /// `ssh` or `scp`.
        program: &'static str,
        /// The host it was for.
        host: String,
        /// Why.
        source: io::Error,
    },
    /// The master connection did not come up in time.
    #[error("no ssh connection to {host} within {waited:?}: {detail}")]
    Connect {
        /// The host.
        host: String,
        /// How long it was given.
        waited: Duration,
        /// What ssh said, if anything.
        detail: String,
    },
    /// A remote command ran past its bound and was killed.
    #[error("on {host}: `{command}` still running after {limit:?}; killed")]
    Timeout {
        /// The host.
        host: String,
        /// The remote command.
        command: String,
        /// Its bound.
        limit: Duration,
    },
    /// A remote command exited non-zero.
    #[error("on {host}: `{command}` failed ({status}): {stderr}")]
    Failed {
        /// The host.
        host: String,
        /// The remote command.
        command: String,
        /// How it ended.
        status: ExitStatus,
        /// Its standard error, trimmed.
        stderr: String,
    },
    /// A local file (the control log, an upload's source) could not be used.
    #[error("{path}: {source}")]
    Local {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
}

/// One entry of `--hosts`: `[user@]host[:port]`, an IPv6 address in
/// brackets (`[fd00::2]:22`).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Host {
    /// The login user, if the entry names one (else `--ssh-user`, else
    /// ssh's own default).
    pub user: Option<String>,
    /// The host name or address.
    pub host: String,
    /// The port, if not ssh's default.
    pub port: Option<u16>,
}

impl FromStr for Host {
    type Err = SshError;

    fn from_str(spec: &str) -> Result<Host, SshError> {
        let bad = |reason: &str| SshError::BadHost {
            spec: spec.to_string(),
            reason: reason.to_string(),
        };
        let (user, rest) = match spec.split_once('@') {
            Some(("", _)) => return Err(bad("empty user before '@'")),
            Some((user, rest)) => (Some(user.to_string()), rest),
            None => (None, spec),
        };
        let (host, port) = split_port(rest).map_err(|reason| bad(&reason))?;
        if host.is_empty() {
            return Err(bad("no host name"));
        }
        if host.starts_with('-') || host.contains(char::is_whitespace) {
            return Err(bad("a host name cannot start with '-' or hold spaces"));
        }
        Ok(Host {
            user,
            host: host.to_string(),
            port,
        })
    }
}

/// `host`, `host:port`, `[v6]`, `[v6]:port`, or a bare IPv6 address.
fn split_port(rest: &str) -> Result<(&str, Option<u16>), String> {
    let parse = |port: &str| {
        port.parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| format!("port {port:?} is not a number in 1..=65535"))
    };
    if let Some(inner) = rest.strip_prefix('[') {
        let (host, after) = inner
            .split_once(']')
            .ok_or_else(|| "'[' without ']'".to_string())?;
        return match after {
            "" => Ok((host, None)),
            _ => match after.strip_prefix(':') {
                Some(port) => Ok((host, Some(parse(port)?))),
                None => Err(format!("unexpected {after:?} after ']'")),
            },
        };
    }
    if rest.parse::<IpAddr>().is_ok() {
        return Ok((rest, None));
    }
    match rest.split_once(':') {
        Some((host, port)) => Ok((host, Some(parse(port)?))),
        None => Ok((rest, None)),
    }
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(user) = &self.user {
            write!(f, "{user}@")?;
        }
        match (self.host.contains(':'), self.port) {
            (true, Some(port)) => write!(f, "[{}]:{port}", self.host),
            (false, Some(port)) => write!(f, "{}:{port}", self.host),
            (_, None) => write!(f, "{}", self.host),
        }
    }
}

/// How every connection is made: `--ssh-key`, `--ssh-user`, `--ssh-option`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SshOptions {
    /// The identity file (`ssh -i`).
    pub key: Option<PathBuf>,
    /// The login user for hosts that name none.
    pub user: Option<String>,
    /// Further `-o` options, passed as given (`StrictHostKeyChecking=no`).
    pub options: Vec<String>,
}

impl SshOptions {
    /// The arguments every `ssh` and `scp` to `host` takes before the
    /// destination: batch mode, identity, port, user, the given options.
    fn common_args(&self, host: &Host, port_flag: &str) -> Vec<String> {
        let mut args = vec!["-o".into(), "BatchMode=yes".into()];
        if let Some(key) = &self.key {
            args.extend(["-i".into(), key.display().to_string()]);
        }
        if let Some(port) = host.port {
            args.extend([port_flag.to_string(), port.to_string()]);
        }
        if let Some(user) = host.user.as_ref().or(self.user.as_ref()) {
            args.extend(["-o".into(), format!("User={user}")]);
        }
        for option in &self.options {
            args.extend(["-o".into(), option.clone()]);
        }
        args
    }
}

/// A word quoted for the remote POSIX shell, so `ssh host -- WORDS` runs
/// exactly these words.
pub fn quote(word: &str) -> String {
    shlex::try_quote(word)
        .map(|q| q.into_owned())
        .unwrap_or_else(|_| format!("'{}'", word.replace('\0', "")))
}

/// What a finished remote command printed.
#[derive(Clone, Debug)]
pub struct Output {
    /// Its standard output.
    pub stdout: String,
    /// Its standard error.
    pub stderr: String,
}

/// One host's master connection and the control log every command on it
/// writes to.
pub struct Control {
    host: Host,
    options: SshOptions,
    socket: PathBuf,
    master: Option<Child>,
    log: Arc<Mutex<File>>,
}

impl Control {
    /// Opens the master to `host` with its control socket in `dir` (short:
    /// a unix socket path has at most 108 bytes), waiting up to `timeout`
    /// until it answers `ssh -O check`. `spawn` forks the master (the
    /// harness passes its spawner, so the master dies with the run).
    pub fn connect(
        host: Host,
        options: SshOptions,
        dir: &Path,
        log: Arc<Mutex<File>>,
        timeout: Duration,
        spawn: impl FnOnce(Command) -> io::Result<Child>,
    ) -> Result<Control, SshError> {
        let socket = dir.join(format!("{}.sock", socket_name(&host)));
        let mut master = Command::new("ssh");
        master
            .args(["-M", "-N", "-o", "ControlPersist=no", "-S"])
            .arg(&socket)
            .args(options.common_args(&host, "-p"))
            .args(["-o", "ServerAliveInterval=2", "-o", "ServerAliveCountMax=3"])
            .arg(&host.host)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let child = spawn(master).map_err(|source| SshError::Spawn {
            program: "ssh",
            host: host.to_string(),
            source,
        })?;
        let mut control = Control {
            host,
            options,
            socket,
            master: Some(child),
            log,
        };
        control.wait_up(timeout)?;
        Ok(control)
    }

    /// Waits until the master answers on its socket, or fails with what it
    /// said if it exits or the time runs out.
    fn wait_up(&mut self, timeout: Duration) -> Result<(), SshError> {
        let start = Instant::now();
        loop {
            if self.check() {
                self.note(&format!("master to {} up", self.host));
                return Ok(());
            }
            let exited = self
                .master
                .as_mut()
                .and_then(|m| m.try_wait().ok().flatten());
            if exited.is_some() || start.elapsed() > timeout {
                let detail = self.master_stderr();
                self.note(&format!("master to {} failed: {detail}", self.host));
                return Err(SshError::Connect {
                    host: self.host.to_string(),
                    waited: start.elapsed(),
                    detail,
                });
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// Whether the master answers `ssh -O check`.
    fn check(&self) -> bool {
        Command::new("ssh")
            .arg("-S")
            .arg(&self.socket)
            .args(["-O", "check"])
            .arg(&self.host.host)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    /// The master's standard error once it is gone (killed first if not).
    fn master_stderr(&mut self) -> String {
        let Some(mut master) = self.master.take() else {
            return String::new();
        };
        let _ = master.kill();
        let _ = master.wait();
        let mut text = String::new();
        if let Some(mut err) = master.stderr.take() {
            let _ = err.read_to_string(&mut text);
        }
        text.trim().to_string()
    }

    /// The host this connection reaches.
    pub fn host(&self) -> &Host {
        &self.host
    }

    /// `ssh` over the master running `remote` (a shell command line; quote
    /// its words with [`quote`]). Set stdio on the result.
    pub fn command(&self, remote: &str) -> Command {
        let mut command = Command::new("ssh");
        command
            .arg("-S")
            .arg(&self.socket)
            .args(["-o", "ControlMaster=no"])
            .args(self.options.common_args(&self.host, "-p"))
            .arg(&self.host.host)
            .arg("--")
            .arg(remote);
        command
    }

    /// Runs `remote` on the host, killed after `limit`; its output goes to
    /// the control log. Fails on a non-zero exit.
    ///
    /// The bound holds on both sides: the host runs the command under
    /// coreutils' `timeout`, since a multiplexed session lives in the
    /// master and killing our `ssh` alone would leave it running there.
    pub fn run(&self, remote: &str, limit: Duration) -> Result<Output, SshError> {
        let bounded = format!(
            "timeout -s KILL {}s sh -c {}",
            limit.as_secs() + 1,
            quote(remote)
        );
        let mut command = self.command(&bounded);
        command.stdin(Stdio::null());
        self.bounded("ssh", remote, command, limit)
    }

    /// Runs a local `command` (an `ssh` or `scp` for `what`) to completion
    /// within `limit`, logging it and what it printed.
    fn bounded(
        &self,
        program: &'static str,
        what: &str,
        mut command: Command,
        limit: Duration,
    ) -> Result<Output, SshError> {
        command.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = command.spawn().map_err(|source| SshError::Spawn {
            program,
            host: self.host.to_string(),
            source,
        })?;
        let stdout = drain(child.stdout.take());
        let stderr = drain(child.stderr.take());
        let start = Instant::now();
        let status = loop {
            if let Ok(Some(status)) = child.try_wait() {
                break Some(status);
            }
            if start.elapsed() > limit {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            thread::sleep(POLL);
        };
        // After a kill the master may still hold the pipes until the host
        // ends the command: wait for its output only a little longer.
        let grace = match status {
            Some(_) => limit,
            None => Duration::from_secs(1),
        };
        let output = Output {
            stdout: stdout.recv_timeout(grace).unwrap_or_default(),
            stderr: stderr.recv_timeout(grace).unwrap_or_default(),
        };
        self.log_command(what, status, start.elapsed(), &output);
        self.verdict(what, status, limit, output)
    }

    /// A finished command's result: its output, or why it failed.
    fn verdict(
        &self,
        what: &str,
        status: Option<ExitStatus>,
        limit: Duration,
        output: Output,
    ) -> Result<Output, SshError> {
        match status {
            None => Err(SshError::Timeout {
                host: self.host.to_string(),
                command: what.to_string(),
                limit,
            }),
            Some(status) if !status.success() => Err(SshError::Failed {
                host: self.host.to_string(),
                command: what.to_string(),
                status,
                stderr: output.stderr.trim().to_string(),
            }),
            Some(_) => Ok(output),
        }
    }

    /// Copies `local` to `remote` on the host unless a file with the same
    /// SHA-256 is already there; `true` when it was sent. The file keeps
    /// its mode bits (an executable stays executable).
    pub fn upload(&self, local: &Path, remote: &str, limit: Duration) -> Result<bool, SshError> {
        self.upload_hashed(local, &sha256_file(local)?, remote, limit)
    }

    /// [`Control::upload`] with the local file's SHA-256 (hex) already
    /// known, as when one file goes to many hosts.
    pub fn upload_hashed(
        &self,
        local: &Path,
        want: &str,
        remote: &str,
        limit: Duration,
    ) -> Result<bool, SshError> {
        let probe = format!("sha256sum {} 2>/dev/null || true", quote(remote));
        let have = self.run(&probe, limit)?.stdout;
        if have.split_whitespace().next() == Some(want) {
            self.note(&format!("{remote} already has sha256 {want}: not sent"));
            return Ok(false);
        }
        let mut scp = Command::new("scp");
        scp.args(["-q", "-p", "-o", "ControlMaster=no", "-o"])
            .arg(format!("ControlPath={}", self.socket.display()))
            .args(self.options.common_args(&self.host, "-P"))
            .arg(local)
            .arg(format!("{}:{remote}", scp_host(&self.host.host)))
            .stdin(Stdio::null());
        let what = format!("scp {} -> {remote}", local.display());
        self.bounded("scp", &what, scp, limit)?;
        Ok(true)
    }

    /// Copies `remote` (a file, or a directory with everything in it) from
    /// the host to `local`, over the master.
    pub fn download(&self, remote: &str, local: &Path, limit: Duration) -> Result<(), SshError> {
        let mut scp = Command::new("scp");
        scp.args(["-q", "-r", "-p", "-o", "ControlMaster=no", "-o"])
            .arg(format!("ControlPath={}", self.socket.display()))
            .args(self.options.common_args(&self.host, "-P"))
            .arg(format!("{}:{remote}", scp_host(&self.host.host)))
            .arg(local)
            .stdin(Stdio::null());
        let what = format!("scp {remote} -> {}", local.display());
        self.bounded("scp", &what, scp, limit)?;
        Ok(())
    }

    /// A line in the control log, after the wall-clock time (Unix
    /// seconds) and the host.
    pub fn note(&self, line: &str) {
        if let Ok(mut log) = self.log.lock() {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default();
            let _ = writeln!(log, "{:.3} [{}] {line}", now.as_secs_f64(), self.host);
        }
    }

    /// A finished command, its exit and output in the control log.
    fn log_command(&self, what: &str, status: Option<ExitStatus>, took: Duration, out: &Output) {
        let end = match status {
            Some(status) => status.to_string(),
            None => "killed at its time limit".to_string(),
        };
        let mut text = format!("$ {what}  ({end}, {took:.2?})");
        for (name, body) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
            for line in body.lines() {
                text.push_str(&format!("\n    {name}: {line}"));
            }
        }
        self.note(&text);
    }
}

impl Drop for Control {
    /// Ends the master: `ssh -O exit`, then a kill if it is still there.
    fn drop(&mut self) {
        let _ = Command::new("ssh")
            .arg("-S")
            .arg(&self.socket)
            .args(["-O", "exit"])
            .arg(&self.host.host)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if let Some(mut master) = self.master.take() {
            let _ = master.kill();
            let _ = master.wait();
        }
        let _ = std::fs::remove_file(&self.socket);
    }
}

/// A name for `host`'s control socket: its characters that are safe in a
/// file name, and its port.
fn socket_name(host: &Host) -> String {
    let clean: String = host
        .host
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    format!("{clean}-{}", host.port.unwrap_or(22))
}

/// `scp`'s spelling of a host: an IPv6 address in brackets.
fn scp_host(host: &str) -> String {
    match host.contains(':') {
        true => format!("[{host}]"),
        false => host.to_string(),
    }
}

/// A thread reading `pipe` to its end, lossily as UTF-8; its text arrives
/// on the returned channel.
fn drain(pipe: Option<impl Read + Send + 'static>) -> mpsc::Receiver<String> {
    let (send, receive) = mpsc::channel();
    thread::spawn(move || {
        let mut bytes = Vec::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_end(&mut bytes);
        }
        let _ = send.send(String::from_utf8_lossy(&bytes).into_owned());
    });
    receive
}

/// The hex SHA-256 of a local file.
pub fn sha256_file(path: &Path) -> Result<String, SshError> {
    let local = |source| SshError::Local {
        path: path.to_path_buf(),
        source,
    };
    let mut file = File::open(path).map_err(local)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = file.read(&mut buf).map_err(local)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(spec: &str) -> Host {
        spec.parse().unwrap_or_else(|e| panic!("{spec}: {e}"))
    }

    #[test]
    fn a_host_entry_reads_user_host_and_port_in_every_spelling() {
        let cases = [
            ("n1", None, "n1", None),
            ("root@n1", Some("root"), "n1", None),
            ("root@n1:2222", Some("root"), "n1", Some(2222)),
            ("10.0.0.2:22", None, "10.0.0.2", Some(22)),
            ("[fd00::2]:2200", None, "fd00::2", Some(2200)),
            ("fd00::2", None, "fd00::2", None),
            ("admin@[::1]", Some("admin"), "::1", None),
        ];
        for (spec, user, name, port) in cases {
            let h = host(spec);
            assert_eq!(
                (h.user.as_deref(), h.host.as_str(), h.port),
                (user, name, port),
                "{spec}"
            );
            assert_eq!(host(&h.to_string()), h, "{spec} round-trips");
        }
    }

    #[test]
    fn a_bad_host_entry_says_what_is_wrong_with_it() {
        for (spec, says) in [
            ("@n1", "empty user"),
            ("n1:0", "port"),
            ("n1:ssh", "port"),
            ("[fd00::2", "without ']'"),
            ("", "no host"),
            ("-oProxyCommand=x", "cannot start with '-'"),
        ] {
            let err = spec.parse::<Host>().unwrap_err().to_string();
            assert!(err.contains(says), "{spec:?}: {err}");
            assert!(err.contains(&format!("{spec:?}")), "{spec:?}: {err}");
        }
    }

    #[test]
    fn options_give_key_port_user_and_extra_options_in_that_order() {
        let options = SshOptions {
            key: Some(PathBuf::from("/k/id")),
            user: Some("ops".into()),
            options: vec!["StrictHostKeyChecking=no".into()],
        };
        let args = options.common_args(&host("n1:2222"), "-p");
        assert_eq!(
            args,
            [
                "-o",
                "BatchMode=yes",
                "-i",
                "/k/id",
                "-p",
                "2222",
                "-o",
                "User=ops",
                "-o",
                "StrictHostKeyChecking=no"
            ]
        );
        let own = options.common_args(&host("root@n1"), "-P");
        assert!(own.contains(&"User=root".to_string()), "{own:?}");
    }

    #[test]
    fn quoting_keeps_every_word_whole_for_the_remote_shell() {
        let words = ["plain", "two words", "it's", "$HOME", "a;b", ""];
        let line: Vec<String> = words.iter().map(|w| quote(w)).collect();
        let out = Command::new("sh")
            .arg("-c")
            .arg(format!("printf '%s\\n' {}", line.join(" ")))
            .output()
            .unwrap();
        let back: Vec<&str> = std::str::from_utf8(&out.stdout).unwrap().lines().collect();
        assert_eq!(back, words);
    }
}
