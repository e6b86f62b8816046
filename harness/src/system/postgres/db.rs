//! [`PostgresDb`]: one PostgreSQL server of our own, as a child process.
//!
//! Node `n1`'s directory `RUN/nodes/n1/` (owned by the server's user, mode
//! 0700) holds the cluster `data/`, made by `initdb -D data -U postgres
//! --auth=trust -E UTF8 --locale=C --no-sync`, and the server's unix
//! socket. The server runs as `postgres -D data -c
//! listen_addresses=127.0.0.1 -c port=P -c unix_socket_directories=RUN/nodes/n1`
//! (and `max_connections=200`, `dynamic_shared_memory_type=sysv`,
//! `deadlock_timeout=100ms`),
//! both programs wrapped as [`super::launch`] says; their output is
//! appended to `RUN/nodes/n1.log`.
//!
//! # The port
//! PostgreSQL binds its own listening socket and cannot inherit one, so the
//! port is held ([`HeldPort`]: bound, not listening) from the moment it is
//! picked until just before the postmaster is started, and held again
//! while a killed server is down, so no other process can take it in
//! between; the postmaster binds it with `SO_REUSEADDR` beside what the
//! hold left. The window between our release and its bind is a few
//! milliseconds of `exec`; a server that lost the port in it exits with
//! "could not bind", and is started again on the same port, up to three
//! times.
//!
//! # Kill and restart
//! A kill SIGKILLs the postmaster and every backend (the whole PID
//! namespace: a machine crash, as far as the server can tell); a start
//! runs the postmaster again on the same data dir, which replays its WAL
//! (crash recovery) before it accepts connections, and waits until it does.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use super::client;
use super::launch::{self, Faketime, ServerUser};
use crate::system::custom::FaketimeClock;
use crate::system::db::{Clock, Db, DbError, Kill, LogFiles, NodeInfo, Pause};
use crate::system::process::{io_error, log_path, signal_node, HeldPort, Processes};

/// The only node's id.
pub const NODE: &str = "n1";
/// How long one readiness probe may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// Pause between readiness probes.
const PROBE_INTERVAL: Duration = Duration::from_millis(100);
/// How long `initdb` may run.
const INITDB_TIMEOUT: Duration = Duration::from_secs(120);
/// The longest unix socket path (`sun_path` holds 108 bytes with its NUL).
const MAX_SOCKET_PATH: usize = 107;

/// How to run the server.
#[derive(Clone, Debug)]
pub struct PostgresConfig {
    /// Where `initdb` and `postgres` are.
    pub bin_dir: PathBuf,
    /// The run directory (made absolute: the server changes into its data
    /// dir).
    pub run_dir: PathBuf,
    /// libfaketime, when the test has clock faults.
    pub faketime: Option<PathBuf>,
    /// How long setup and a restart (with crash recovery) wait.
    pub ready_timeout: Duration,
    /// How long a stop waits after SIGTERM before SIGKILL.
    pub stop_grace: Duration,
}

impl PostgresConfig {
    /// Debian's PostgreSQL 15, ready within 60 s, stopped with a 10 s grace.
    pub fn new(run_dir: &Path) -> Result<PostgresConfig, DbError> {
        let run_dir = std::path::absolute(run_dir).map_err(|e| io_error(run_dir, e))?;
        Ok(PostgresConfig {
            bin_dir: PathBuf::from(launch::BIN_DIR),
            run_dir,
            faketime: None,
            ready_timeout: Duration::from_secs(60),
            stop_grace: Duration::from_secs(10),
        })
    }
}

/// One PostgreSQL server. Stops it when dropped.
pub struct PostgresDb {
    config: PostgresConfig,
    nodes: Vec<NodeInfo>,
    /// The port, held while no postmaster has it.
    held: Option<HeldPort>,
    user: Option<ServerUser>,
    clock: FaketimeClock,
    processes: Processes,
}

impl PostgresDb {
    /// Checks that the programs exist, picks the user (creating it if need
    /// be) and holds a port; starts nothing.
    pub fn new(config: PostgresConfig) -> Result<PostgresDb, DbError> {
        for program in ["initdb", "postgres"] {
            let path = config.bin_dir.join(program);
            if !path.is_file() {
                return Err(DbError::Config(format!(
                    "{} not found: install PostgreSQL 15 (apt-get install postgresql)",
                    path.display()
                )));
            }
        }
        let held = HeldPort::bind(([127, 0, 0, 1], 0).into()).map_err(DbError::Ports)?;
        let port = held.addr().port();
        let node = NodeInfo {
            id: NODE.to_string(),
            url: format!("postgresql://postgres@127.0.0.1:{port}/postgres"),
            port,
        };
        let clock = FaketimeClock::in_dir(config.run_dir.join("nodes"));
        let db = PostgresDb {
            user: ServerUser::pick()?,
            processes: Processes::new(config.stop_grace)?,
            held: Some(held),
            nodes: vec![node],
            clock,
            config,
        };
        db.check_socket_path()?;
        Ok(db)
    }

    /// The server's port.
    pub fn port(&self) -> u16 {
        self.nodes[0].port
    }

    /// The node's directory.
    fn node_dir(&self) -> PathBuf {
        self.config.run_dir.join("nodes").join(NODE)
    }

    /// The cluster's data dir.
    pub fn data_dir(&self) -> PathBuf {
        self.node_dir().join("data")
    }

    /// The unix socket directory: the node's own (unix socket paths are
    /// short, so no deeper).
    pub fn socket_dir(&self) -> PathBuf {
        self.node_dir()
    }

    /// The server's log file.
    pub fn log_file(&self) -> PathBuf {
        log_path(&self.config.run_dir.join("nodes"), NODE)
    }

    fn check_socket_path(&self) -> Result<(), DbError> {
        let socket = self.socket_dir().join(format!(".s.PGSQL.{}", self.port()));
        let length = socket.as_os_str().len();
        if length > MAX_SOCKET_PATH {
            return Err(DbError::Config(format!(
                "the unix socket path {} is {length} bytes, longer than the {MAX_SOCKET_PATH} \
                 a socket address holds: give the test a shorter name (--name) or the store a \
                 shorter path",
                socket.display()
            )));
        }
        Ok(())
    }

    /// The postmaster's flags.
    pub fn server_args(&self) -> Vec<String> {
        let port = self.port().to_string();
        let socket_dir = self.socket_dir().display().to_string();
        let settings = [
            ("listen_addresses", "127.0.0.1".to_string()),
            ("port", port),
            ("unix_socket_directories", socket_dir),
            ("max_connections", "200".to_string()),
            // In the server's own IPC namespace, gone with it (launch).
            ("dynamic_shared_memory_type", "sysv".to_string()),
            // A deadlock is found (and one side fails with 40P01) well
            // inside an op timeout, rather than after the default 1 s.
            ("deadlock_timeout", "100ms".to_string()),
        ];
        let mut args = vec!["-D".to_string(), self.data_dir().display().to_string()];
        for (name, value) in settings {
            args.extend(["-c".to_string(), format!("{name}={value}")]);
        }
        args
    }

    fn faketime(&self) -> Option<Faketime> {
        self.config.faketime.as_ref().map(|library| Faketime {
            library: library.clone(),
            file: self.clock.file(NODE),
        })
    }

    /// Runs `initdb` (contained, as the server's user) unless the data dir
    /// already holds a cluster.
    fn initdb(&mut self) -> Result<(), DbError> {
        launch::own_dir(&self.node_dir(), self.user.as_ref())?;
        launch::check_reachable(&self.node_dir(), self.user.as_ref())?;
        if self.data_dir().join("PG_VERSION").is_file() {
            return Ok(());
        }
        let data_dir = self.data_dir().display().to_string();
        let args: Vec<String> = ["-D", &data_dir, "-U", "postgres", "--auth=trust"]
            .into_iter()
            .chain(["-E", "UTF8", "--locale=C", "--no-sync"])
            .map(String::from)
            .collect();
        let command = launch::command(
            &self.config.bin_dir,
            "initdb",
            &args,
            self.user.as_ref(),
            None,
        );
        let name = format!("{NODE}-initdb");
        let log = self.log_file();
        self.processes.start(&name, command, &log)?;
        let deadline = Instant::now() + INITDB_TIMEOUT;
        let status = loop {
            let status = self.processes.get_mut(&name).and_then(|p| p.exit_status());
            if let Some(status) = status {
                break status;
            }
            if Instant::now() >= deadline {
                break format!("still running after {INITDB_TIMEOUT:?}");
            }
            std::thread::sleep(PROBE_INTERVAL);
        };
        self.processes.kill(&name);
        match status.as_str() {
            "exit code 0" => Ok(()),
            _ => Err(DbError::Exited {
                node: name,
                status: format!(
                    "initdb: {status}; the run directory must be reachable by the server's user"
                ),
                log,
            }),
        }
    }

    /// Starts the postmaster on the held port (released just before).
    fn spawn(&mut self) -> Result<(), DbError> {
        if let Some(faketime) = self.faketime() {
            if !faketime.file.exists() {
                std::fs::write(&faketime.file, "+0\n").map_err(|e| io_error(&faketime.file, e))?;
            }
        }
        let command = launch::command(
            &self.config.bin_dir,
            "postgres",
            &self.server_args(),
            self.user.as_ref(),
            self.faketime().as_ref(),
        );
        let log = self.log_file();
        drop(self.held.take());
        self.processes.start(NODE, command, &log)?;
        Ok(())
    }

    /// Waits until the server answers a query, failing early if it exits.
    fn wait_ready(&mut self) -> Result<(), DbError> {
        let started = Instant::now();
        let deadline = started + self.config.ready_timeout;
        let runtime = crate::system::db::probe_runtime()?;
        let port = self.port();
        loop {
            let exited = self.processes.get_mut(NODE).and_then(|p| p.exit_status());
            if let Some(status) = exited {
                return Err(DbError::Exited {
                    node: NODE.to_string(),
                    status,
                    log: self.log_file(),
                });
            }
            let answer = runtime.block_on(client::probe(port, PROBE_TIMEOUT));
            let Err(last) = answer else { return Ok(()) };
            if Instant::now() >= deadline {
                return Err(DbError::NotReady {
                    nodes: NODE.to_string(),
                    waited: started.elapsed(),
                    detail: last,
                    logs: vec![self.log_file()],
                });
            }
            std::thread::sleep(PROBE_INTERVAL);
        }
    }

    /// Creates the workloads' tables.
    fn create_tables(&self) -> Result<(), DbError> {
        let runtime = crate::system::db::probe_runtime()?;
        runtime
            .block_on(client::create_tables(self.port(), PROBE_TIMEOUT))
            .map_err(|e| DbError::Config(format!("creating the tables on {NODE}: {e}")))
    }

    fn check_node(&self, node: &str) -> Result<(), DbError> {
        match node == NODE {
            true => Ok(()),
            false => Err(DbError::UnknownNode(node.to_string())),
        }
    }

    /// Holds the port again after the postmaster is gone.
    fn hold_again(&mut self) -> Result<(), DbError> {
        if self.held.is_some() {
            return Ok(());
        }
        let addr = ([127, 0, 0, 1], self.port()).into();
        let held = HeldPort::bind(addr).map_err(|source| DbError::PortTaken {
            node: NODE.to_string(),
            addr,
            source,
        })?;
        self.held = Some(held);
        Ok(())
    }
}

/// How many times a postmaster that lost its port is started again.
const BIND_RETRIES: usize = 3;

impl PostgresDb {
    /// Starts the postmaster and waits until it answers. One that exits
    /// because another process bound its port in the moment it was free
    /// (an outgoing connection's ephemeral port, say) is started again, on
    /// the same port (clients know it), after holding it again.
    fn spawn_and_wait(&mut self) -> Result<(), DbError> {
        let mut tries = 0;
        loop {
            self.spawn()?;
            let outcome = self.wait_ready();
            let lost_port = matches!(outcome, Err(DbError::Exited { .. }))
                && std::fs::read_to_string(self.log_file())
                    .is_ok_and(|log| last_start_lost_port(&log));
            tries += 1;
            if !lost_port || tries > BIND_RETRIES {
                return outcome;
            }
            self.processes.kill(NODE);
            std::thread::sleep(PROBE_INTERVAL);
            let _ = self.hold_again();
        }
    }
}

/// Whether a server log's last start failed for want of its port.
fn last_start_lost_port(log: &str) -> bool {
    let last_start = log.rfind("== faultline: starting").unwrap_or(0);
    log[last_start..].contains("could not create any TCP/IP sockets")
}

impl Db for PostgresDb {
    fn nodes(&self) -> &[NodeInfo] {
        &self.nodes
    }

    /// `initdb`, start, wait until it answers, create the tables.
    fn setup(&mut self) -> Result<(), DbError> {
        let outcome = self
            .initdb()
            .and_then(|()| self.spawn_and_wait())
            .and_then(|()| self.create_tables());
        if outcome.is_err() {
            self.processes.stop_all();
        }
        outcome
    }

    fn teardown(&mut self) -> Result<(), DbError> {
        self.processes.stop_all();
        Ok(())
    }

    fn as_kill(&mut self) -> Option<&mut dyn Kill> {
        Some(self)
    }

    fn as_pause(&mut self) -> Option<&mut dyn Pause> {
        Some(self)
    }

    /// Through libfaketime, when the server runs under it.
    fn as_clock(&self) -> Option<&dyn Clock> {
        self.config
            .faketime
            .as_ref()
            .map(|_| &self.clock as &dyn Clock)
    }

    fn as_log_files(&self) -> Option<&dyn LogFiles> {
        Some(self)
    }

    fn pids(&self) -> Vec<(String, u32)> {
        self.processes.pids()
    }
}

impl Kill for PostgresDb {
    fn kill(&mut self, node: &str) -> Result<(), DbError> {
        self.check_node(node)?;
        self.processes.kill(NODE);
        self.hold_again()
    }

    fn start(&mut self, node: &str) -> Result<(), DbError> {
        self.check_node(node)?;
        if self.processes.is_alive(NODE) {
            return Ok(());
        }
        self.processes.kill(NODE);
        self.hold_again()?;
        self.spawn_and_wait()
    }
}

impl Pause for PostgresDb {
    /// SIGSTOP to every process of the server (postmaster and backends).
    fn pause(&mut self, node: &str) -> Result<(), DbError> {
        self.check_node(node)?;
        signal_node(&mut self.processes, NODE, Signal::SIGSTOP, true)
    }

    fn resume(&mut self, node: &str) -> Result<(), DbError> {
        self.check_node(node)?;
        signal_node(&mut self.processes, NODE, Signal::SIGCONT, false)
    }
}

impl LogFiles for PostgresDb {
    fn log_files(&self) -> Vec<(String, PathBuf)> {
        vec![(NODE.to_string(), self.log_file())]
    }
}

impl Drop for PostgresDb {
    fn drop(&mut self) {
        self.processes.stop_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(bin_dir: &str) -> PostgresConfig {
        let mut config = PostgresConfig::new(Path::new("/tmp/run")).unwrap();
        config.bin_dir = PathBuf::from(bin_dir);
        config
    }

    #[test]
    fn missing_programs_say_what_to_install() {
        let err = PostgresDb::new(config("/no/such/dir")).err().unwrap();
        assert!(
            err.to_string().contains("apt-get install postgresql"),
            "{err}"
        );
    }

    #[test]
    fn only_a_last_start_that_could_not_bind_counts_as_a_lost_port() {
        let lost = "== faultline: starting n1\nLOG: could not bind IPv4 address\n\
                    FATAL:  could not create any TCP/IP sockets\n";
        assert!(last_start_lost_port(lost));
        let recovered = format!("{lost}== faultline: starting n1\nLOG: ready\n");
        assert!(!last_start_lost_port(&recovered));
        assert!(!last_start_lost_port(
            "== faultline: starting n1\nFATAL: bad\n"
        ));
    }

    #[test]
    fn a_relative_run_dir_is_made_absolute() {
        let config = PostgresConfig::new(Path::new("store/x")).unwrap();
        assert!(config.run_dir.is_absolute(), "{:?}", config.run_dir);
    }
}
