//! Containment: every process a node starts — and every descendant, even a
//! daemon that double-forks and calls `setsid` — dies with the node, and
//! every node dies with the run, even when the harness is SIGKILLed.
//!
//! # How: one PID namespace per node
//! Each node's command runs as
//! `unshare --pid --fork --kill-child -- PROGRAM ARGS...` (rootless: with
//! `--user --map-current-user` in front, so the node keeps its own uid:
//! PostgreSQL refuses to run as root). The chain of deaths:
//! - the harness dies → the kernel SIGKILLs `unshare` (parent-death signal,
//!   armed by the spawner, see `db::process`);
//! - `unshare` dies → `--kill-child` SIGKILLs the node's first process, the
//!   *init* of the node's PID namespace;
//! - an init dies → the kernel SIGKILLs every other process of its PID
//!   namespace, wherever it double-forked to. Nothing can leave a PID
//!   namespace, so nothing escapes.
//!
//! So does a nemesis kill (SIGKILL to `unshare` and to every process of the
//! namespace), and so does the node's own main process exiting: whatever it
//! left behind goes with it ("the node lives as long as its start
//! command", as external systems are documented).
//!
//! # Why per node, not one namespace per run
//! A run-wide PID namespace (the harness as init) also makes a SIGKILLed
//! run take everything with it, but a nemesis kill of *one* node must find
//! that node's daemons too, which parentage no longer tells once they
//! re-parent to the init. A namespace per node answers both questions with
//! one mechanism: its members are the node ([`Namespace::members`], from
//! `/proc/*/ns/pid`), and killing its init kills them all. It also needs
//! no re-execution of the harness and no change to how a run starts.
//!
//! # Signals and the init
//! The kernel delivers to a namespace's init only the signals it has a
//! handler for (SIGKILL and SIGSTOP excepted). [`Namespace::signal`] sends
//! a signal to every member (pause and resume stop and continue them all,
//! not only the process group) and, for a terminating signal the init does
//! not catch, emulates its default action: the init is SIGKILLed once the
//! members signalled with it are gone ([`Namespace::settle`]), so they get
//! their graceful shutdown first and a shell init (`sh -c`) is not cut
//! short; the exit then reads "killed by SIGKILL". A node whose init catches the signal (target-node, etcd,
//! Redis, PostgreSQL, Patroni) sees no difference.
//!
//! # What a node sees
//! Inside its namespace the node's pids are namespace-local (its init is
//! pid 1), but `/proc` is still the host's. A pid *file* written inside a
//! node (`postmaster.pid`) therefore holds a namespace-local pid: a kill or
//! pause template that reads one must run inside the node, not beside it.
//!
//! # Cleanup
//! The pid recorded for a node (in the run's state file, for `faultline
//! cleanup`) is `unshare`'s, which leads the node's process group:
//! `cleanup`'s SIGKILL to that group kills `unshare`, whose `--kill-child`
//! takes the namespace down. Normally there is nothing left to clean: the
//! parent-death chain above already ran.
//!
//! # Fallback
//! Without `unshare` (util-linux), or where PID namespaces are refused (no
//! user namespaces for a non-root user, a seccomp profile), nodes run as
//! before — each in its own process group, armed to die with the harness —
//! and one warning says that double-forked daemons may outlive the run.
//! `FAULTLINE_NO_PID_NAMESPACE=1` forces the fallback (to compare).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// How long a freshly spawned `unshare` may take to create its namespace
/// and fork the init.
const NAMESPACE_WAIT: Duration = Duration::from_secs(2);
/// How often that is polled.
const NAMESPACE_POLL: Duration = Duration::from_millis(1);

/// How this machine contains node processes; probed once per process.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    /// A PID namespace per node through `unshare`; `user` adds a user
    /// namespace (needed without root).
    PidNamespace {
        /// The `unshare` binary.
        unshare: PathBuf,
        /// Whether a user namespace is needed too.
        user: bool,
    },
    /// Today's fallback: a process group per node.
    ProcessGroup,
}

/// The containment mode, probed on first use: a trial
/// `unshare ... --pid --fork --kill-child true`. The fallback is announced
/// once, on stderr and in the log.
pub(crate) fn mode() -> &'static Mode {
    static MODE: OnceLock<Mode> = OnceLock::new();
    MODE.get_or_init(|| {
        let mode = probe();
        if mode == Mode::ProcessGroup {
            let warning = "warning: no PID namespaces here (`unshare --pid` from util-linux \
                           failed or is missing): nodes run in process groups, and a daemon \
                           that double-forks may outlive the run";
            eprintln!("{warning}");
            tracing::warn!("{warning}");
        }
        mode
    })
}

fn probe() -> Mode {
    if std::env::var_os("FAULTLINE_NO_PID_NAMESPACE").is_some() {
        return Mode::ProcessGroup;
    }
    let Some(unshare) = find_unshare() else {
        return Mode::ProcessGroup;
    };
    let user = !nix::unistd::geteuid().is_root();
    let works = Command::new(&unshare)
        .args(unshare_args(user))
        .arg("true")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if works {
        Mode::PidNamespace { unshare, user }
    } else {
        Mode::ProcessGroup
    }
}

fn find_unshare() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/bin", "/bin"].map(PathBuf::from))
        .map(|dir| dir.join("unshare"))
        .find(|candidate| candidate.is_file())
}

fn unshare_args(user: bool) -> Vec<&'static str> {
    let mut args = Vec::new();
    if user {
        args.extend(["--user", "--map-current-user"]);
    }
    args.extend(["--pid", "--fork", "--kill-child", "--"]);
    args
}

/// `command` wrapped to run in a PID namespace of its own (see the module
/// docs), with its program, arguments, environment changes and working
/// directory; unchanged in the fallback mode. Call it before setting the
/// command's stdio, which a wrapper cannot copy.
pub(crate) fn contain(command: Command) -> Command {
    match mode() {
        Mode::PidNamespace { unshare, user } => prefixed(unshare, &unshare_args(*user), &command),
        Mode::ProcessGroup => command,
    }
}

/// `program args... INNER-PROGRAM INNER-ARGS...`: `inner` run through a
/// wrapper (`unshare`, `nsenter`, later `ssh`), with `inner`'s environment
/// changes and working directory. Stdio is not copied (a `Command` does
/// not reveal it): set it on the result.
pub(crate) fn prefixed(program: &Path, args: &[&str], inner: &Command) -> Command {
    let mut outer = Command::new(program);
    outer
        .args(args)
        .arg(inner.get_program())
        .args(inner.get_args());
    for (key, value) in inner.get_envs() {
        match value {
            Some(value) => outer.env(key, value),
            None => outer.env_remove(key),
        };
    }
    if let Some(dir) = inner.get_current_dir() {
        outer.current_dir(dir);
    }
    outer
}

/// The PID namespace of one contained node.
#[derive(Debug)]
pub(crate) struct Namespace {
    /// `pid:[INODE]`, as `/proc/PID/ns/pid` reads.
    id: String,
    /// The `unshare` that made it (outside it; its init's parent).
    unshare: u32,
    /// After a terminating signal its init does not catch: the init and
    /// the other members that were signalled with it, for
    /// [`Namespace::settle`] to end the init once those are gone.
    pending: Mutex<Option<Pending>>,
}

impl Namespace {
    /// The namespace that `unshare` (pid `pid`, just spawned by
    /// [`contain`]) creates; waits until it exists. `None` in the fallback
    /// mode or when `unshare` failed before creating it.
    pub(crate) fn of_spawned(pid: u32) -> Option<Namespace> {
        if *mode() == Mode::ProcessGroup {
            return None;
        }
        let ours = std::fs::read_link("/proc/self/ns/pid").ok()?;
        let deadline = Instant::now() + NAMESPACE_WAIT;
        while Instant::now() < deadline {
            let link = std::fs::read_link(format!("/proc/{pid}/ns/pid_for_children"));
            match link {
                Ok(id) if id != ours => {
                    return Some(Namespace {
                        id: id.to_string_lossy().into_owned(),
                        unshare: pid,
                        pending: Mutex::new(None),
                    })
                }
                // Gone (or a zombie) before it made the namespace.
                Err(_) if !running(pid) => return None,
                // Not yet unshared, or unreadable while it changes its
                // credentials (entering a user namespace).
                _ => thread::sleep(NAMESPACE_POLL),
            }
        }
        None
    }

    /// Every process of the namespace that has not exited (zombies do not
    /// count), found through `/proc/*/ns/pid`.
    pub(crate) fn members(&self) -> Vec<u32> {
        let Ok(entries) = std::fs::read_dir("/proc") else {
            return Vec::new();
        };
        entries
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
            .filter(|pid| {
                std::fs::read_link(format!("/proc/{pid}/ns/pid"))
                    .is_ok_and(|link| link.as_os_str() == self.id.as_str())
            })
            .filter(|pid| running(*pid))
            .collect()
    }

    /// Whether any process of the namespace still runs.
    pub(crate) fn any_alive(&self) -> bool {
        !self.members().is_empty()
    }

    /// Sends `signal` to every member; see the module docs for the init.
    pub(crate) fn signal(&self, signal: Signal) {
        let members = self.members();
        for pid in &members {
            let _ = kill(Pid::from_raw(*pid as i32), signal);
        }
        let init = members.iter().copied().find(|pid| is_init(*pid));
        if let Some(init) = init {
            if terminates(signal) && !handles(init, signal) {
                let others = members.into_iter().filter(|p| *p != init).collect();
                *self.lock_pending() = Some(Pending { init, others });
            }
        }
        self.settle();
    }

    /// Emulates a pending default action (see [`Namespace::signal`]): once
    /// every member signalled with the init is gone, the init is SIGKILLed
    /// (taking anything started since), and `unshare` with it (so `unshare`
    /// does not report its child's death as its own failure).
    pub(crate) fn settle(&self) {
        let mut pending = self.lock_pending();
        let Some(Pending { init, others }) = pending.as_ref() else {
            return;
        };
        if others.iter().any(|pid| running(*pid)) {
            return;
        }
        let _ = kill(Pid::from_raw(self.unshare as i32), Signal::SIGKILL);
        let _ = kill(Pid::from_raw(*init as i32), Signal::SIGKILL);
        *pending = None;
    }

    fn lock_pending(&self) -> std::sync::MutexGuard<'_, Option<Pending>> {
        self.pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A default action being emulated for a namespace's init.
#[derive(Debug)]
struct Pending {
    init: u32,
    others: Vec<u32>,
}

/// Whether `pid` is the init (pid 1) of its PID namespace: the last field
/// of `NSpid:` in `/proc/PID/status`.
fn is_init(pid: u32) -> bool {
    status_field(pid, "NSpid:").is_some_and(|v| v.split_whitespace().last() == Some("1"))
}

/// Whether `pid` has a handler for (or ignores) `signal`, from the
/// `SigCgt:` and `SigIgn:` masks.
fn handles(pid: u32, signal: Signal) -> bool {
    let bit = 1u64 << (signal as i32 - 1);
    ["SigCgt:", "SigIgn:"].iter().any(|field| {
        status_field(pid, field)
            .and_then(|mask| u64::from_str_radix(mask.trim(), 16).ok())
            .is_some_and(|mask| mask & bit != 0)
    })
}

fn status_field(pid: u32, name: &str) -> Option<String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(name).map(str::to_string))
}

/// Whether `signal`'s default action ends the process.
fn terminates(signal: Signal) -> bool {
    !matches!(
        signal,
        Signal::SIGKILL
            | Signal::SIGSTOP
            | Signal::SIGCONT
            | Signal::SIGCHLD
            | Signal::SIGURG
            | Signal::SIGWINCH
            | Signal::SIGTSTP
            | Signal::SIGTTIN
            | Signal::SIGTTOU
    )
}

/// Whether `pid` runs: not a zombie, or a zombie main thread whose other
/// threads have not exited yet (they may still hold its sockets).
fn running(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().next().map(str::to_string));
    let threads = std::fs::read_dir(format!("/proc/{pid}/task")).map_or(0, |d| d.count());
    !matches!(state.as_deref(), Some("Z" | "X")) || threads > 1
}

/// Runs `command` — this harness re-executed, in a private network
/// namespace (`--net netns`) — as part of this process: it gets SIGTERM
/// when this process dies (even by SIGKILL), and every SIGINT and SIGTERM
/// this process gets is passed on to it, so it tears its run down
/// whichever of the two is signalled. Returns its exit status.
pub fn supervise(mut command: Command) -> std::io::Result<std::process::ExitStatus> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    crate::system::process::die_with_parent(&mut command, Signal::SIGTERM);
    let received = Arc::new(AtomicUsize::new(0));
    for signal in [Signal::SIGINT, Signal::SIGTERM] {
        // Replaces the default action (exit): we stay to pass it on.
        let _ = signal_hook::flag::register_usize(signal as i32, received.clone(), signal as usize);
    }
    let mut child = command.spawn()?;
    let pid = Pid::from_raw(child.id() as i32);
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(status);
        }
        let pending = received.swap(0, Ordering::SeqCst);
        if let Ok(signal) = Signal::try_from(pending as i32) {
            let _ = kill(pid, signal);
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wrapped_command_keeps_program_arguments_environment_and_directory() {
        let mut inner = Command::new("mydb");
        inner
            .args(["--port", "1"])
            .env("A", "1")
            .env_remove("B")
            .current_dir("/tmp");
        let outer = prefixed(Path::new("/usr/bin/unshare"), &unshare_args(true), &inner);
        let args: Vec<_> = outer.get_args().map(|a| a.to_str().unwrap()).collect();
        assert_eq!(
            args,
            [
                "--user",
                "--map-current-user",
                "--pid",
                "--fork",
                "--kill-child",
                "--",
                "mydb",
                "--port",
                "1"
            ]
        );
        let envs: Vec<_> = outer.get_envs().collect();
        assert!(envs.contains(&("A".as_ref(), Some("1".as_ref()))));
        assert!(envs.contains(&("B".as_ref(), None)));
        assert_eq!(outer.get_current_dir(), Some(Path::new("/tmp")));
    }

    #[test]
    fn only_signals_whose_default_ends_a_process_are_emulated_for_an_init() {
        assert!(terminates(Signal::SIGTERM));
        assert!(terminates(Signal::SIGHUP));
        assert!(!terminates(Signal::SIGSTOP));
        assert!(!terminates(Signal::SIGCONT));
    }

    #[test]
    fn a_double_forked_daemon_is_a_member_and_dies_with_the_init() {
        if *mode() == Mode::ProcessGroup {
            eprintln!("skipped: no PID namespaces here");
            return;
        }
        let mut command = contain({
            let mut c = Command::new("sh");
            c.args(["-c", "setsid sh -c 'sleep 60; true' & exec sleep 60"]);
            c
        });
        let mut child = command.spawn().unwrap();
        let namespace = Namespace::of_spawned(child.id()).expect("a namespace");
        let deadline = Instant::now() + Duration::from_secs(5);
        while namespace.members().len() < 3 && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(
            namespace.members().len(),
            3,
            "sleep, sh and the daemon's sleep"
        );
        // `sleep` as init catches no SIGTERM: emulated, it still ends.
        namespace.signal(Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(5);
        while namespace.any_alive() && Instant::now() < deadline {
            namespace.settle();
            thread::sleep(Duration::from_millis(10));
        }
        assert!(!namespace.any_alive(), "left: {:?}", namespace.members());
        child.wait().unwrap();
    }
}
