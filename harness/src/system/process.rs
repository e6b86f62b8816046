//! Node processes: how they are forked, signalled, stopped and reaped.
//!
//! # Why one spawner thread
//! Every node is a child process in its own process group (so a signal to
//! the group reaches a node and anything it forked, and the terminal's
//! Ctrl-C reaches only the harness, which then tears down), and it carries
//! `PR_SET_PDEATHSIG(SIGKILL)` so that it dies when the harness is
//! SIGKILLed; a started node also runs in a PID namespace of its own, so
//! that whatever it forks dies with it ([`crate::containment`]). The kernel delivers that signal when the *thread* that forked
//! the child exits, not the process: a node forked from a tokio
//! blocking-pool thread would be killed when that thread idles out ten
//! seconds later. So every fork goes through a [`Spawner`]: one dedicated
//! thread that lives as long as the database that owns it, receives
//! commands over a channel and hands back the children. Callers may be on
//! any thread.
//!
//! # Reaping
//! A process group id stays reserved while its leader exists, even as a
//! zombie. So a node's leader is only reaped after the last signal to its
//! group (`SIGKILL` before `wait`): a group signal can never reach an
//! unrelated process that reused the number. Exits are observed without
//! reaping (`waitid(.., WNOWAIT)`), and a stop or kill waits until no
//! process of the group runs any more (`/proc/*/stat`), since a node
//! started through `sh -c` may be the shell's child and hold its port
//! after the shell is gone.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::net::{SocketAddr, TcpListener};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;

use super::db::DbError;
use crate::containment::{self, Namespace};

/// How often exits are polled while waiting for them.
const EXIT_POLL: Duration = Duration::from_millis(10);
/// How long a SIGKILLed group may take to disappear before we move on.
const KILL_WAIT: Duration = Duration::from_secs(2);

/// The file descriptor a node inherits its held listening socket as
/// (target-node's `--listen-fd`): the first after stdin, stdout, stderr.
pub(crate) const LISTEN_FD: i32 = 3;

/// A fork request: the command, the socket the child inherits as
/// [`LISTEN_FD`] (if any), and where to send the child back.
struct SpawnRequest {
    command: Command,
    socket: Option<OwnedFd>,
    reply: mpsc::Sender<io::Result<Child>>,
}

/// The thread that performs every fork of one database (see the module
/// docs for why). Dropping it ends the thread; any child still alive then
/// receives `SIGKILL` from the kernel.
pub(crate) struct Spawner {
    requests: Option<mpsc::Sender<SpawnRequest>>,
    thread: Option<JoinHandle<()>>,
}

impl Spawner {
    /// Starts the spawner thread.
    pub(crate) fn new() -> Result<Spawner, DbError> {
        let (requests, inbox) = mpsc::channel::<SpawnRequest>();
        let thread = thread::Builder::new()
            .name("faultline-spawner".into())
            .spawn(move || {
                for request in inbox {
                    let SpawnRequest {
                        mut command,
                        socket,
                        reply,
                    } = request;
                    command.process_group(0);
                    die_with_parent(&mut command, Signal::SIGKILL);
                    if let Some(socket) = &socket {
                        inherit_as(&mut command, socket.as_raw_fd(), LISTEN_FD);
                    }
                    let _ = reply.send(command.spawn());
                    // The child has its copy; ours closes here.
                    drop(socket);
                }
            })
            .map_err(DbError::Spawner)?;
        Ok(Spawner {
            requests: Some(requests),
            thread: Some(thread),
        })
    }

    /// Forks `command` on the spawner thread, in a new process group, set
    /// to die with the harness.
    pub(crate) fn spawn(&self, command: Command) -> io::Result<Child> {
        self.spawn_with_socket(command, None)
    }

    /// [`Spawner::spawn`], the child inheriting `socket` as [`LISTEN_FD`];
    /// our copy of it is closed once the child has forked.
    pub(crate) fn spawn_with_socket(
        &self,
        command: Command,
        socket: Option<OwnedFd>,
    ) -> io::Result<Child> {
        let gone = || io::Error::other("the spawner thread is gone");
        let (reply, answer) = mpsc::channel();
        self.requests
            .as_ref()
            .ok_or_else(gone)?
            .send(SpawnRequest {
                command,
                socket,
                reply,
            })
            .map_err(|_| gone())?;
        answer.recv().map_err(|_| gone())?
    }
}

impl Drop for Spawner {
    fn drop(&mut self) {
        self.requests.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Makes the child get `signal` when the harness dies (Linux:
/// `PR_SET_PDEATHSIG`; the forking *thread*'s exit counts, see the module
/// docs), and refuse to start if the harness already died while it was
/// being forked.
#[cfg(target_os = "linux")]
// The workspace denies unsafe code; this and `inherit_as` are its uses in
// the harness.
#[allow(unsafe_code)]
pub(crate) fn die_with_parent(command: &mut Command, signal: Signal) {
    use nix::errno::Errno;
    use nix::sys::prctl::set_pdeathsig;
    use nix::unistd::getppid;
    let parent = Pid::this();
    // SAFETY: `pre_exec` runs in the forked child before exec, where only
    // async-signal-safe calls are sound. The closure makes two plain system
    // calls (prctl(2), getppid(2)), allocates nothing, takes no lock, and
    // touches only `parent` and `signal`, copied values. Its errors are built from a
    // raw errno (no allocation either).
    unsafe {
        command.pre_exec(move || {
            set_pdeathsig(signal)?;
            // The harness died between fork and prctl: the signal was
            // never armed, so do not start at all.
            if getppid() != parent {
                return Err(Errno::ESRCH.into());
            }
            Ok(())
        });
    }
}

/// Makes the child find `fd` (ours) as its descriptor `target`, open across
/// `exec`.
#[allow(unsafe_code)]
fn inherit_as(command: &mut Command, fd: RawFd, target: RawFd) {
    use nix::libc;
    // SAFETY: as in `die_with_parent`: the closure runs between fork and
    // exec and makes only async-signal-safe system calls (dup2(2),
    // fcntl(2)) on two copied integers, allocating nothing. `fd` stays
    // open in the parent until the spawn returns, so it is open in the
    // child.
    unsafe {
        command.pre_exec(move || {
            let result = if fd == target {
                libc::fcntl(fd, libc::F_SETFD, 0)
            } else {
                libc::dup2(fd, target)
            };
            match result {
                -1 => Err(io::Error::last_os_error()),
                _ => Ok(()),
            }
        });
    }
}

/// Elsewhere there is no parent-death signal; teardown and `Drop` still
/// stop every node, but a SIGKILLed harness leaves them behind.
#[cfg(not(target_os = "linux"))]
pub(crate) fn die_with_parent(_command: &mut Command, _signal: Signal) {}

/// One running node process (the leader of its own process group) and,
/// when contained, its PID namespace (see [`crate::containment`]).
pub(crate) struct NodeProcess {
    child: Child,
    namespace: Option<Namespace>,
}

impl NodeProcess {
    /// Its process id (also its process group id).
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    fn group(&self) -> Pid {
        Pid::from_raw(self.child.id() as i32)
    }

    /// Sends `signal` to the node's process group or, when contained, to
    /// every process of its PID namespace (and SIGKILL, SIGSTOP and SIGCONT
    /// to `unshare` too).
    pub(crate) fn signal(&self, signal: Signal) -> nix::Result<()> {
        if let Some(namespace) = &self.namespace {
            if matches!(signal, Signal::SIGKILL | Signal::SIGSTOP | Signal::SIGCONT) {
                let _ = nix::sys::signal::kill(self.group(), signal);
            }
            namespace.signal(signal);
            return Ok(());
        }
        match killpg(self.group(), signal) {
            // Everyone in the group has exited already.
            Err(nix::errno::Errno::ESRCH) => Ok(()),
            other => other,
        }
    }

    /// How it exited, if it has; does not reap it (see the module docs).
    #[cfg(target_os = "linux")]
    pub(crate) fn exit_status(&mut self) -> Option<String> {
        use nix::sys::wait::{waitid, Id, WaitPidFlag, WaitStatus};
        let flags = WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG | WaitPidFlag::WNOWAIT;
        match waitid(Id::Pid(self.group()), flags) {
            Ok(WaitStatus::StillAlive) => None,
            Ok(WaitStatus::Exited(_, code)) => Some(format!("exit code {code}")),
            Ok(WaitStatus::Signaled(_, signal, _)) => Some(format!("killed by {signal}")),
            // Stopped/continued are not exits; WEXITED does not report them.
            Ok(_) => None,
            Err(e) => Some(format!("cannot be waited for: {e}")),
        }
    }

    /// How it exited, if it has (this platform has no `WNOWAIT`: reaps).
    #[cfg(not(target_os = "linux"))]
    pub(crate) fn exit_status(&mut self) -> Option<String> {
        match self.child.try_wait() {
            Ok(Some(status)) => Some(status.to_string()),
            Ok(None) => None,
            Err(e) => Some(format!("cannot be waited for: {e}")),
        }
    }

    /// SIGKILLs the whole group, waits (bounded) until every member is
    /// gone, then reaps the leader.
    pub(crate) fn kill(mut self) {
        let _ = self.signal(Signal::SIGKILL);
        self.wait_exit(KILL_WAIT);
        let _ = self.child.wait();
    }

    /// Waits up to `timeout` until every process of the group has exited
    /// (the leader stays unreaped); whether they all did.
    pub(crate) fn wait_exit(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if !self.group_alive() {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            thread::sleep(EXIT_POLL);
        }
    }

    /// Whether any process of the group still runs (zombies do not count).
    /// A node run through `sh -c` may be the shell's child rather than the
    /// shell itself, and holds its port until it is really gone.
    #[cfg(target_os = "linux")]
    fn group_alive(&mut self) -> bool {
        if let Some(namespace) = &self.namespace {
            namespace.settle();
            if namespace.any_alive() {
                return true;
            }
        }
        if self.exit_status().is_none() {
            return true;
        }
        let group = self.pid().to_string();
        let Ok(entries) = std::fs::read_dir("/proc") else {
            return false;
        };
        entries
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|name| name.bytes().all(|b| b.is_ascii_digit()))
            .any(|pid| live_member_of(&pid, &group))
    }

    /// Whether the leader still runs (no portable way to list a group).
    #[cfg(not(target_os = "linux"))]
    fn group_alive(&mut self) -> bool {
        self.exit_status().is_none()
    }
}

/// Whether process `pid` runs (is not a zombie) in process group `group`,
/// from `/proc/PID/stat`: `pid (comm) state ppid pgrp ...`.
#[cfg(target_os = "linux")]
fn live_member_of(pid: &str, group: &str) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let Some((_, after_comm)) = stat.rsplit_once(')') else {
        return false;
    };
    let mut fields = after_comm.split_whitespace();
    let state = fields.next();
    let pgrp = fields.nth(1);
    if pgrp != Some(group) {
        return false;
    }
    // The stat is the main thread's: in a multi-threaded process it turns
    // zombie before the other threads have exited and the last of them
    // has closed the process's files (its listening socket).
    let threads = std::fs::read_dir(format!("/proc/{pid}/task")).map_or(0, |d| d.count());
    !matches!(state, Some("Z" | "X")) || threads > 1
}

/// Stops every process: SIGTERM (and SIGCONT, so a paused node can act on
/// it), up to `grace` for all of them together to exit, then SIGKILL to
/// every group, and reap.
pub(crate) fn stop_all(processes: Vec<NodeProcess>, grace: Duration) {
    let mut processes = processes;
    for p in &processes {
        let _ = p.signal(Signal::SIGTERM);
        let _ = p.signal(Signal::SIGCONT);
    }
    let deadline = Instant::now() + grace;
    for p in &mut processes {
        p.wait_exit(deadline.saturating_duration_since(Instant::now()));
    }
    for p in processes {
        p.kill();
    }
}

/// The processes of one database: its spawner thread and its running
/// nodes. Stops them all when dropped.
pub(crate) struct Processes {
    running: BTreeMap<String, NodeProcess>,
    grace: Duration,
    // Declared last: dropped after every child above is gone.
    spawner: Spawner,
}

impl Processes {
    /// No processes yet; `grace` is how long a stop waits before SIGKILL.
    pub(crate) fn new(grace: Duration) -> Result<Processes, DbError> {
        Ok(Processes {
            running: BTreeMap::new(),
            grace,
            spawner: Spawner::new()?,
        })
    }

    /// Starts `command` as `node`, appending its stdout and stderr to `log`
    /// (after a line saying what was started, and when).
    pub(crate) fn start(
        &mut self,
        node: &str,
        command: Command,
        log: &Path,
    ) -> Result<u32, DbError> {
        self.start_with_socket(node, command, log, None)
    }

    /// [`Processes::start`], the node inheriting `socket` (a [`HeldPort`]'s)
    /// as [`LISTEN_FD`].
    pub(crate) fn start_with_socket(
        &mut self,
        node: &str,
        command: Command,
        log: &Path,
        socket: Option<OwnedFd>,
    ) -> Result<u32, DbError> {
        let program = command.get_program().to_string_lossy().into_owned();
        let spawn_error = |source| DbError::Spawn {
            node: node.to_string(),
            program,
            log: log.to_path_buf(),
            source,
        };
        let described = describe(&command);
        let mut command = containment::contain(command);
        let out = open_log(log)?;
        let mut header = &out;
        let since_epoch = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let _ = writeln!(
            header,
            "== faultline: starting {node} at unix {:.3}: {}",
            since_epoch.as_secs_f64(),
            described
        );
        let err = out.try_clone().map_err(|e| io_error(log, e))?;
        command
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err));
        let child = self
            .spawner
            .spawn_with_socket(command, socket)
            .map_err(spawn_error)?;
        let namespace = Namespace::of_spawned(child.id());
        let process = NodeProcess { child, namespace };
        let pid = process.pid();
        if let Some(old) = self.running.insert(node.to_string(), process) {
            old.kill();
        }
        Ok(pid)
    }

    /// The running process of `node`, if any (it may have exited unreaped).
    pub(crate) fn get_mut(&mut self, node: &str) -> Option<&mut NodeProcess> {
        self.running.get_mut(node)
    }

    /// Whether `node` has a live process.
    pub(crate) fn is_alive(&mut self, node: &str) -> bool {
        self.running
            .get_mut(node)
            .is_some_and(|p| p.exit_status().is_none())
    }

    /// The pid of `node`'s process, if it has one.
    pub(crate) fn pid(&self, node: &str) -> Option<u32> {
        self.running.get(node).map(NodeProcess::pid)
    }

    /// Every started node's pid (each leads its own process group).
    pub(crate) fn pids(&self) -> Vec<(String, u32)> {
        self.running
            .iter()
            .map(|(node, p)| (node.clone(), p.pid()))
            .collect()
    }

    /// SIGKILLs `node` (its whole group) and reaps it; no-op when not running.
    pub(crate) fn kill(&mut self, node: &str) {
        if let Some(p) = self.running.remove(node) {
            p.kill();
        }
    }

    /// Stops every node (SIGTERM, grace, SIGKILL) and reaps them.
    pub(crate) fn stop_all(&mut self) {
        let all = std::mem::take(&mut self.running).into_values().collect();
        stop_all(all, self.grace);
    }

    /// Runs a short helper command (a kill or pause template) to
    /// completion on the spawner thread, its output appended to `log`;
    /// SIGKILLed after `timeout`.
    pub(crate) fn run_to_completion(
        &self,
        node: &str,
        mut command: Command,
        log: &Path,
        timeout: Duration,
    ) -> Result<(), DbError> {
        let described = describe(&command);
        let failed = |reason: String| DbError::Command {
            node: node.to_string(),
            command: described.clone(),
            reason,
        };
        let out = open_log(log)?;
        let err = out.try_clone().map_err(|e| io_error(log, e))?;
        command
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err));
        let child = self
            .spawner
            .spawn(command)
            .map_err(|e| failed(e.to_string()))?;
        let mut helper = NodeProcess {
            child,
            namespace: None,
        };
        if !helper.wait_exit(timeout) {
            helper.kill();
            return Err(failed(format!("still running after {timeout:?}")));
        }
        let status = helper.child.wait().map_err(|e| failed(e.to_string()))?;
        // Anything it left in its group goes with it.
        let _ = killpg(helper.group(), Signal::SIGKILL);
        if status.success() {
            Ok(())
        } else {
            Err(failed(status.to_string()))
        }
    }
}

/// A program spawned by `spawner` with its stdin and stdout piped to the
/// harness and its stderr appended to `log`: contained like a node (its
/// own PID namespace, or process group, dying with the harness). An
/// external client's process (`crate::client::external`).
pub(crate) fn spawn_piped(
    spawner: &Spawner,
    command: Command,
    log: &Path,
) -> io::Result<(
    NodeProcess,
    std::process::ChildStdin,
    std::process::ChildStdout,
)> {
    let mut command = containment::contain(command);
    let err = open_log(log).map_err(|e| io::Error::other(e.to_string()))?;
    command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(err));
    let mut child = spawner.spawn(command)?;
    let pipes = child.stdin.take().zip(child.stdout.take());
    let namespace = Namespace::of_spawned(child.id());
    let process = NodeProcess { child, namespace };
    match pipes {
        Some((stdin, stdout)) => Ok((process, stdin, stdout)),
        None => {
            process.kill();
            Err(io::Error::other("the child's pipes are missing"))
        }
    }
}

impl Drop for Processes {
    fn drop(&mut self) {
        self.stop_all();
    }
}

fn open_log(log: &Path) -> Result<File, DbError> {
    if let Some(dir) = log.parent() {
        std::fs::create_dir_all(dir).map_err(|e| io_error(dir, e))?;
    }
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .map_err(|e| io_error(log, e))
}

pub(crate) fn io_error(path: &Path, source: io::Error) -> DbError {
    DbError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// A command as a line for logs and errors.
fn describe(command: &Command) -> String {
    std::iter::once(command.get_program())
        .chain(command.get_args())
        .map(|a| a.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// `count` distinct free ports on 127.0.0.1: bound all at once (so they
/// differ), read, and released for the nodes to bind.
pub(crate) fn free_ports(count: usize) -> Result<Vec<u16>, DbError> {
    let listeners = (0..count)
        .map(|_| TcpListener::bind("127.0.0.1:0"))
        .collect::<io::Result<Vec<_>>>()
        .map_err(DbError::Ports)?;
    listeners
        .iter()
        .map(|l| l.local_addr().map(|a| a.port()))
        .collect::<io::Result<Vec<_>>>()
        .map_err(DbError::Ports)
}

/// A port held for a node from the moment it is picked until the node takes
/// it over: a socket bound to the node's address, not listening (so a
/// connection to it is refused, as to a stopped node), with `SO_REUSEADDR`
/// (so it can be bound again beside the connections a killed node left in
/// `TIME_WAIT`). While it is held, no other process's `bind` or outgoing
/// connection gets the port. The node inherits the socket and listens on it
/// (target-node's `--listen-fd`).
#[derive(Debug)]
pub(crate) struct HeldPort {
    socket: socket2::Socket,
    addr: SocketAddr,
}

impl HeldPort {
    /// Holds `addr`; port 0 holds a free port, picked by the kernel.
    pub(crate) fn bind(addr: SocketAddr) -> io::Result<HeldPort> {
        use socket2::{Domain, Socket, Type};
        let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
        socket.set_reuse_address(true)?;
        socket.bind(&addr.into())?;
        let addr = socket
            .local_addr()?
            .as_socket()
            .ok_or_else(|| io::Error::other("a bound TCP socket without an address"))?;
        Ok(HeldPort { socket, addr })
    }

    /// The address held.
    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The socket, for the node to inherit.
    pub(crate) fn into_fd(self) -> OwnedFd {
        self.socket.into()
    }
}

/// `dir/<node>.log`.
pub(crate) fn log_path(dir: &Path, node: &str) -> PathBuf {
    dir.join(format!("{node}.log"))
}

/// Sends `signal` to `node`'s process group. A node that is not running is
/// an error when `must_run`, and left alone otherwise.
pub(crate) fn signal_node(
    processes: &mut Processes,
    node: &str,
    signal: Signal,
    must_run: bool,
) -> Result<(), DbError> {
    if !processes.is_alive(node) {
        return if must_run {
            Err(DbError::NotRunning(node.to_string()))
        } else {
            Ok(())
        };
    }
    let Some(process) = processes.get_mut(node) else {
        return Ok(());
    };
    process.signal(signal).map_err(|source| DbError::Signal {
        node: node.to_string(),
        signal: signal.to_string(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_ports_are_distinct() {
        let mut ports = free_ports(8).unwrap();
        ports.sort();
        ports.dedup();
        assert_eq!(ports.len(), 8);
    }

    #[test]
    fn a_stopped_process_is_reaped_and_its_group_is_empty() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("sleep.log");
        let mut processes = Processes::new(Duration::from_secs(2)).unwrap();
        let mut command = Command::new("sh");
        command.args(["-c", "sleep 30 & sleep 30; echo never"]);
        let pid = processes.start("n1", command, &log).unwrap();
        assert!(processes.is_alive("n1"));
        processes.stop_all();
        // Orphaned zombies may still wait for init; none may run.
        let live: Vec<String> = std::fs::read_dir("/proc")
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|p| live_member_of(p, &pid.to_string()))
            .collect();
        assert!(live.is_empty(), "still running in the group: {live:?}");
        let text = std::fs::read_to_string(&log).unwrap();
        assert!(text.starts_with("== faultline: starting n1"), "{text}");
    }

    #[test]
    fn a_helper_that_fails_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let processes = Processes::new(Duration::from_secs(1)).unwrap();
        let mut command = Command::new("sh");
        command.args(["-c", "exit 7"]);
        let log = dir.path().join("h.log");
        let err = processes
            .run_to_completion("n2", command, &log, Duration::from_secs(5))
            .unwrap_err();
        assert!(err.to_string().contains("exit 7"), "{err}");
        assert!(err.to_string().contains("n2"), "{err}");
    }
}
