//! Hosts of our own for the remote-host tests: network namespaces on this
//! machine, each running Debian's `sshd`, joined by a bridge that lives in
//! a private controller namespace of its own. Every address the test uses
//! exists only inside these namespaces, so no traffic can leave the test.
//!
//! ```text
//!   controller ns:  br0 10.77.0.1 ── v1 ─┬─ host ns 1: eth0 10.77.0.2, sshd
//!                                  v2 ─┼─ host ns 2: eth0 10.77.0.3, sshd
//!                                  v3 ─┴─ host ns 3: eth0 10.77.0.4, sshd
//! ```
//!
//! The hosts share this machine's file system and process table; what the
//! tests check per host is what the harness put under the host's own
//! directories and the processes it started in the host's namespace.

use std::fs;
use std::net::Ipv4Addr;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

static NEXT: AtomicUsize = AtomicUsize::new(0);

/// The programs the fixture needs, and where Debian puts them.
const NEEDS: [&str; 4] = [
    "/usr/sbin/sshd",
    "/usr/bin/ssh",
    "/usr/bin/ssh-keygen",
    "/usr/bin/scp",
];

/// Why the hosts cannot be built here, or `None` when they can.
pub fn missing() -> Option<String> {
    if !nix::unistd::geteuid().is_root() {
        return Some("not root: network namespaces and sshd need root".into());
    }
    let absent: Vec<&str> = NEEDS
        .iter()
        .copied()
        .filter(|p| !Path::new(p).exists())
        .collect();
    if !absent.is_empty() {
        return Some(format!(
            "{} not installed (Debian: apt-get install -y openssh-server openssh-client)",
            absent.join(", ")
        ));
    }
    if !ip(&["netns", "list"]).is_ok_and(|o| o.status.success()) {
        return Some("`ip netns` does not work here (iproute2 missing?)".into());
    }
    None
}

/// Skips the calling test (returns from it) with a message when the hosts
/// cannot be built here; fails instead when `CI=true`.
#[macro_export]
macro_rules! hosts_or_skip {
    ($n:expr) => {
        match support::hosts::missing() {
            None => support::hosts::TestHosts::start($n),
            Some(why) if std::env::var("CI").as_deref() == Ok("true") => {
                panic!("CI needs the ssh hosts: {why}")
            }
            Some(why) => {
                eprintln!("skipped: {why}");
                return;
            }
        }
    };
}

/// The controller namespace, the hosts' namespaces and their sshd.
pub struct TestHosts {
    prefix: String,
    dir: tempfile::TempDir,
    /// The private key every host accepts (for root).
    pub key: PathBuf,
    /// Each host's address, in order.
    pub addrs: Vec<Ipv4Addr>,
    sshd: Vec<Child>,
}

impl TestHosts {
    /// Builds `n` hosts (at most 200) and waits until each sshd answers.
    pub fn start(n: usize) -> TestHosts {
        assert!((1..=200).contains(&n));
        let prefix = format!(
            "flh{}x{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        );
        let dir = tempfile::tempdir().expect("temp dir");
        let key = dir.path().join("id_ed25519");
        keygen(&key);
        keygen(&dir.path().join("host_key"));
        fs::create_dir_all("/run/sshd").expect("sshd's privilege separation directory");
        let mut hosts = TestHosts {
            prefix,
            dir,
            key,
            addrs: Vec::new(),
            sshd: Vec::new(),
        };
        hosts.controller();
        for i in 0..n {
            hosts.host(i);
        }
        hosts.wait_sshd();
        hosts
    }

    /// The controller's namespace name.
    pub fn controller_ns(&self) -> String {
        format!("{}c", self.prefix)
    }

    /// Host `i`'s namespace name.
    pub fn host_ns(&self, i: usize) -> String {
        format!("{}h{i}", self.prefix)
    }

    /// The `--ssh-option`s the tests pass: the hosts' keys are new each run.
    pub fn ssh_options(&self) -> Vec<String> {
        [
            "StrictHostKeyChecking=no",
            "UserKnownHostsFile=/dev/null",
            "LogLevel=ERROR",
        ]
        .map(String::from)
        .to_vec()
    }

    /// `command` run inside the controller namespace.
    pub fn in_controller(&self, command: &Command) -> Command {
        in_netns(&self.controller_ns(), command)
    }

    /// `command` run inside host `i`'s namespace (as if logged in there).
    pub fn on_host(&self, i: usize, command: &Command) -> Command {
        in_netns(&self.host_ns(i), command)
    }

    /// Moves the calling thread into the controller namespace: every
    /// process it forks from now on is there.
    pub fn enter_controller(&self) {
        let path = format!("/run/netns/{}", self.controller_ns());
        let file = fs::File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        nix::sched::setns(file.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET)
            .unwrap_or_else(|e| panic!("setns {path}: {e}"));
    }

    fn controller(&mut self) {
        let ns = self.controller_ns();
        must(&["netns", "add", &ns]);
        must(&["-n", &ns, "link", "set", "lo", "up"]);
        must(&["-n", &ns, "link", "add", "br0", "type", "bridge"]);
        must(&["-n", &ns, "addr", "add", "10.77.0.1/24", "dev", "br0"]);
        must(&["-n", &ns, "link", "set", "br0", "up"]);
    }

    fn host(&mut self, i: usize) {
        let (ctl, ns) = (self.controller_ns(), self.host_ns(i));
        let addr = Ipv4Addr::new(10, 77, 0, 2 + i as u8);
        let veth = format!("v{i}");
        must(&["netns", "add", &ns]);
        must(&["-n", &ns, "link", "set", "lo", "up"]);
        must(&[
            "-n", &ctl, "link", "add", &veth, "type", "veth", "peer", "name", "eth0", "netns", &ns,
        ]);
        must(&["-n", &ctl, "link", "set", &veth, "master", "br0", "up"]);
        must(&[
            "-n",
            &ns,
            "addr",
            "add",
            &format!("{addr}/24"),
            "dev",
            "eth0",
        ]);
        must(&["-n", &ns, "link", "set", "eth0", "up"]);
        let config = self.sshd_config(i, addr);
        let log = fs::File::create(self.dir.path().join(format!("sshd{i}.log"))).unwrap();
        let sshd = self
            .on_host(
                i,
                Command::new("/usr/sbin/sshd")
                    .args(["-D", "-e", "-f"])
                    .arg(&config),
            )
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("starting sshd");
        self.sshd.push(sshd);
        self.addrs.push(addr);
    }

    fn sshd_config(&self, i: usize, addr: Ipv4Addr) -> PathBuf {
        let d = self.dir.path();
        let path = d.join(format!("sshd{i}.conf"));
        let text = format!(
            "Port 22\nListenAddress {addr}\nHostKey {}\nAuthorizedKeysFile {}\n\
             PidFile {}\nPermitRootLogin prohibit-password\nPasswordAuthentication no\n\
             KbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\n\
             Subsystem sftp /usr/lib/openssh/sftp-server\n",
            d.join("host_key").display(),
            d.join("id_ed25519.pub").display(),
            d.join(format!("sshd{i}.pid")).display(),
        );
        fs::write(&path, text).unwrap();
        path
    }

    /// Waits (≤ 10 s) until every host's port 22 accepts from the
    /// controller namespace.
    fn wait_sshd(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        for addr in &self.addrs {
            loop {
                let mut probe = Command::new("bash");
                probe.arg("-c").arg(format!("exec 3<>/dev/tcp/{addr}/22"));
                if self
                    .in_controller(&probe)
                    .status()
                    .is_ok_and(|s| s.success())
                {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "sshd on {addr} did not come up: {}",
                    self.sshd_logs()
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }

    /// Every sshd's log, for a failing assertion.
    pub fn sshd_logs(&self) -> String {
        (0..self.sshd.len())
            .map(|i| {
                fs::read_to_string(self.dir.path().join(format!("sshd{i}.log"))).unwrap_or_default()
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for TestHosts {
    fn drop(&mut self) {
        for sshd in &mut self.sshd {
            let _ = sshd.kill();
            let _ = sshd.wait();
        }
        for i in 0..self.addrs.len() {
            let _ = ip(&["netns", "del", &self.host_ns(i)]);
        }
        let _ = ip(&["netns", "del", &self.controller_ns()]);
    }
}

/// `ip netns exec NS COMMAND`, keeping the command's environment and dir.
fn in_netns(ns: &str, command: &Command) -> Command {
    let mut outer = Command::new("ip");
    outer
        .args(["netns", "exec", ns])
        .arg(command.get_program())
        .args(command.get_args());
    for (k, v) in command.get_envs() {
        match v {
            Some(v) => outer.env(k, v),
            None => outer.env_remove(k),
        };
    }
    if let Some(dir) = command.get_current_dir() {
        outer.current_dir(dir);
    }
    outer
}

fn ip(args: &[&str]) -> std::io::Result<std::process::Output> {
    Command::new("ip").args(args).output()
}

fn must(args: &[&str]) {
    let out = ip(args).unwrap_or_else(|e| panic!("ip {args:?}: {e}"));
    assert!(
        out.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn keygen(path: &Path) {
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(path)
        .output()
        .expect("ssh-keygen");
    assert!(
        out.status.success(),
        "ssh-keygen: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
