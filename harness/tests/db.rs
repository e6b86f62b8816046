//! The node lifecycle layer (`harness::db`) against real processes on
//! loopback, with the `faultline` binary as the node:
//! - target-node clusters: setup finds a primary; kill/start on the same
//!   data dir; pause/resume; teardown and drop leave no process;
//! - nodes that cannot start: clear errors naming the nodes and logs;
//! - an external system described by command templates;
//! - nodes die with a SIGKILLed harness (parent-death signal).

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use harness::system::custom::{ExternalConfig, ExternalDb};
use harness::system::db::{Db, DbError, Kill, Pause};
use harness::system::target_node::db::{NodeBinary, TargetNodeConfig, TargetNodeDb};
use harness::system::target_node::status::{block_on, fetch_status, StatusError};
use nix::sys::signal::Signal;
use nix::unistd::Pid;
use serde_json::json;
use target_node::client::Client;

const QUICK: Duration = Duration::from_millis(500);

fn config(nodes: usize, run_dir: &Path) -> TargetNodeConfig {
    let mut config = TargetNodeConfig::new(nodes, run_dir);
    config.binary = NodeBinary::WithArgs {
        program: PathBuf::from(support::FAULTLINE),
        leading_args: vec!["node".into()],
    };
    config.ready_timeout = Duration::from_secs(20);
    config.stop_grace = Duration::from_secs(3);
    config
}

/// `(state, pgrp)` of `pid` from `/proc/PID/stat`, if it exists.
fn state_and_group(pid: u32) -> Option<(String, u32)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    Some((fields.first()?.to_string(), fields.get(2)?.parse().ok()?))
}

/// Whether `pid` runs: it exists and is not a zombie whose threads are all
/// gone (a multi-threaded process's main thread turns zombie first).
fn alive(pid: u32) -> bool {
    let Some((state, _)) = state_and_group(pid) else {
        return false;
    };
    let threads = std::fs::read_dir(format!("/proc/{pid}/task")).map_or(0, |d| d.count());
    !matches!(state.as_str(), "Z" | "X") || threads > 1
}

/// The live processes in process group `group`.
fn live_members(group: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| state_and_group(pid).is_some_and(|(_, g)| g == group) && alive(pid))
        .collect()
}

/// Waits (bounded) until `check` holds.
fn eventually(what: &str, within: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !check() {
        assert!(Instant::now() < deadline, "{what}: not within {within:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn pids(db: &TargetNodeDb) -> Vec<u32> {
    db.nodes()
        .iter()
        .map(|n| db.pid(&n.id).expect("started"))
        .collect()
}

/// The primary `db` reports now, through its `Primary` ability.
fn primary_of(db: &dyn Db) -> Option<String> {
    let ask = db
        .as_primary()
        .expect("the database can find its primary")
        .primary();
    block_on(ask).unwrap()
}

fn oplog_index(url: &str) -> Option<u64> {
    fetch_status(url, QUICK).ok().map(|s| s.oplog.index)
}

#[test]
fn three_nodes_come_up_with_a_primary_and_teardown_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = TargetNodeDb::new(config(3, dir.path())).unwrap();
    // Set up from a thread that ends at once: the nodes were forked by the
    // db's own spawner thread, so their parent-death signal stays quiet.
    let mut db = std::thread::spawn(move || {
        let mut db = db;
        db.setup().expect("cluster comes up");
        db
    })
    .join()
    .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let primary = primary_of(&db).expect("a primary is known");
    assert!(db.nodes().iter().any(|n| n.id == primary));
    let pids = pids(&db);
    assert!(
        pids.iter().all(|&p| alive(p)),
        "every node outlived the setup thread"
    );
    let logs = db.as_log_files().expect("target-node has logs").log_files();
    assert_eq!(logs.len(), 3);
    for (id, log) in logs {
        let text = std::fs::read_to_string(&log).unwrap();
        assert!(
            text.starts_with(&format!("== faultline: starting {id}")),
            "{text}"
        );
        assert!(
            text.contains("serving"),
            "the node's own output is in {log:?}"
        );
        assert!(db.data_dir(&id).is_dir());
    }
    db.teardown().unwrap();
    assert!(pids.iter().all(|&p| !alive(p)), "teardown stops every node");
    db.teardown().expect("teardown is idempotent");
    assert!(primary_of(&db).is_none());
}

#[test]
fn a_killed_secondary_restarts_on_its_data_dir_and_catches_up() {
    let dir = tempfile::tempdir().unwrap();
    let mut db = TargetNodeDb::new(config(3, dir.path())).unwrap();
    db.setup().unwrap();
    let primary = primary_of(&db).unwrap();
    let primary_url = db
        .nodes()
        .iter()
        .find(|n| n.id == primary)
        .unwrap()
        .url
        .clone();
    let secondary = db.nodes().iter().find(|n| n.id != primary).unwrap().clone();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let client = Client::new(&primary_url, Duration::from_secs(3));
    let write = |key: &str, value: i64| {
        runtime
            .block_on(client.put(key, &json!(value)))
            .expect("the primary takes a write");
    };
    for i in 0..5 {
        write(&format!("k{i}"), i);
    }
    let acked = oplog_index(&primary_url).unwrap();
    eventually("the secondary replicates", Duration::from_secs(10), || {
        oplog_index(&secondary.url).is_some_and(|i| i >= acked)
    });

    let old_pid = db.pid(&secondary.id).unwrap();
    db.kill(&secondary.id).unwrap();
    assert!(!alive(old_pid), "kill waits until the node is gone");
    assert!(matches!(
        fetch_status(&secondary.url, QUICK),
        Err(StatusError::Unreachable(_))
    ));
    db.kill(&secondary.id)
        .expect("killing a dead node is a no-op");
    for i in 5..10 {
        write(&format!("k{i}"), i);
    }
    let acked = oplog_index(&primary_url).unwrap();

    db.start(&secondary.id).unwrap();
    assert_ne!(db.pid(&secondary.id), Some(old_pid));
    let recovered = oplog_index(&secondary.url).expect("start waits until it answers");
    assert!(recovered >= 5, "it recovered its oplog from its data dir");
    eventually(
        "the restarted node catches up",
        Duration::from_secs(10),
        || oplog_index(&secondary.url).is_some_and(|i| i >= acked),
    );
    db.start(&secondary.id)
        .expect("starting a running node is a no-op");
    let log = std::fs::read_to_string(db.log_file(&secondary.id)).unwrap();
    assert_eq!(log.matches("== faultline: starting").count(), 2, "{log}");
    assert!(matches!(db.kill("n9"), Err(DbError::UnknownNode(_))));
}

#[test]
fn a_paused_node_stops_answering_until_resumed() {
    let dir = tempfile::tempdir().unwrap();
    let mut db = TargetNodeDb::new(config(3, dir.path())).unwrap();
    db.setup().unwrap();
    let node = db.nodes()[0].clone();
    // Through the trait object, as a runner holding a `Box<dyn Db>` would.
    let dynamic: &mut dyn Db = &mut db;
    dynamic
        .as_pause()
        .expect("target-node can pause")
        .pause(&node.id)
        .unwrap();
    assert!(matches!(
        fetch_status(&node.url, QUICK),
        Err(StatusError::NoAnswer(_))
    ));
    db.resume(&node.id).unwrap();
    eventually("the resumed node answers", Duration::from_secs(5), || {
        fetch_status(&node.url, QUICK).is_ok()
    });

    // Pause and teardown: a paused node still stops (SIGCONT follows SIGTERM).
    db.kill(&node.id).unwrap();
    assert!(matches!(db.pause(&node.id), Err(DbError::NotRunning(_))));
    db.resume(&node.id)
        .expect("resuming a dead node is a no-op");
    let other = db.nodes()[1].id.clone();
    db.pause(&other).unwrap();
    let pids: Vec<u32> = db.nodes().iter().filter_map(|n| db.pid(&n.id)).collect();
    let started = Instant::now();
    db.teardown().unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "paused node took the grace period"
    );
    assert!(pids.iter().all(|&p| !alive(p)));
}

#[test]
fn dropping_the_db_without_teardown_stops_every_node() {
    let dir = tempfile::tempdir().unwrap();
    let mut db = TargetNodeDb::new(config(3, dir.path())).unwrap();
    db.setup().unwrap();
    let pids = pids(&db);
    assert!(pids.iter().all(|&p| alive(p)));
    drop(db);
    assert!(pids.iter().all(|&p| !alive(p)));
}

#[test]
fn a_node_that_exits_at_start_is_an_error_naming_its_log() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(3, dir.path());
    config.binary = NodeBinary::Path("/bin/false".into());
    let mut db = TargetNodeDb::new(config).unwrap();
    let err = db.setup().unwrap_err();
    assert!(matches!(err, DbError::Exited { .. }), "{err}");
    let text = err.to_string();
    assert!(text.contains("exit code 1"), "{text}");
    assert!(
        text.contains(&*dir.path().join("nodes").to_string_lossy()),
        "{text}"
    );
}

#[test]
fn nodes_that_never_answer_time_out_naming_nodes_and_logs() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(2, dir.path());
    // `sh -c 'sleep 30' sh <node flags>`: runs, never listens.
    config.binary = NodeBinary::WithArgs {
        program: "sh".into(),
        leading_args: vec!["-c".into(), "sleep 30".into(), "sh".into()],
    };
    config.ready_timeout = Duration::from_millis(800);
    let mut db = TargetNodeDb::new(config).unwrap();
    let started = Instant::now();
    let err = db.setup().unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(5));
    let text = err.to_string();
    assert!(matches!(err, DbError::NotReady { .. }), "{text}");
    assert!(text.contains("n1, n2 not ready"), "{text}");
    assert!(text.contains("unreachable"), "{text}");
    assert!(text.contains("n2.log"), "{text}");
    assert!(
        db.pid("n1").is_none(),
        "a failed setup stops what it started"
    );
}

/// Not a test by itself: a "node" that `a_node_answering_garbage_...`
/// starts. It listens on the socket it inherits (fd 3, as target-node's
/// `--listen-fd`) and answers every request with bytes that are not HTTP.
#[test]
#[ignore = "run by a_node_answering_garbage_is_not_ready_naming_what_it_said"]
#[allow(unsafe_code)]
fn garbage_node() {
    use std::io::{Read, Write};
    use std::os::fd::FromRawFd;
    let fd3 = std::fs::read_link("/proc/self/fd/3").unwrap_or_default();
    if !fd3.to_string_lossy().starts_with("socket:") {
        return;
    }
    // SAFETY: the harness passed this process a bound socket as fd 3
    // (through `sh`'s exec); nothing else here owns it.
    let socket = unsafe { socket2::Socket::from_raw_fd(3) };
    socket.listen(16).unwrap();
    let listener = std::net::TcpListener::from(socket);
    for stream in listener.incoming().take(200) {
        let Ok(mut stream) = stream else { continue };
        let mut request = [0u8; 1024];
        let _ = stream.read(&mut request);
        let _ = stream.write_all(b"\x00\xffgarbage, not HTTP\r\n\r\n");
    }
}

/// A node binary that runs this test binary's [`garbage_node`].
fn garbage_binary() -> NodeBinary {
    let exe = std::env::current_exe().unwrap().display().to_string();
    NodeBinary::WithArgs {
        program: "sh".into(),
        leading_args: vec![
            "-c".into(),
            format!("exec '{exe}' --exact garbage_node --ignored --nocapture"),
            "sh".into(),
        ],
    }
}

#[test]
fn a_node_answering_garbage_is_not_ready_naming_what_it_said() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(2, dir.path());
    config.binary = garbage_binary();
    config.ready_timeout = Duration::from_millis(1500);
    let mut db = TargetNodeDb::new(config).unwrap();
    let started = Instant::now();
    let err = db.setup().unwrap_err();
    let text = err.to_string();
    assert!(started.elapsed() < Duration::from_secs(6), "{text}");
    assert!(matches!(err, DbError::NotReady { .. }), "{text}");
    assert!(text.contains("n1, n2 not ready"), "{text}");
    assert!(
        text.contains("no answer") || text.contains("not a target-node status"),
        "{text}"
    );
    assert!(db.pid("n1").is_none() && db.pid("n2").is_none());
}

/// Runs `ops` outgoing connections and `bind(0)`s on loopback, as a busy
/// machine's other programs would, until `stop` is set.
fn churn_ephemeral_ports(stop: &std::sync::atomic::AtomicBool) {
    use std::sync::atomic::Ordering;
    let server = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = server.local_addr().unwrap();
    server.set_nonblocking(true).unwrap();
    for _ in 0..200_000 {
        if stop.load(Ordering::Relaxed) {
            return;
        }
        let _client = std::net::TcpStream::connect(addr);
        let _bound = std::net::TcpListener::bind("127.0.0.1:0");
        while server.accept().is_ok() {}
    }
}

#[test]
fn twenty_cluster_starts_back_to_back_need_no_retry() {
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|scope| {
        scope.spawn(|| churn_ephemeral_ports(&stop));
        for round in 0..20 {
            let dir = tempfile::tempdir().unwrap();
            let mut config = config(3, dir.path());
            config.extra_args = ["--heartbeat-ms", "20", "--election-timeout-ms", "150"]
                .map(String::from)
                .to_vec();
            let mut db = TargetNodeDb::new(config).unwrap();
            if let Err(e) = db.setup() {
                stop.store(true, std::sync::atomic::Ordering::Relaxed);
                panic!("start {round} failed: {e}");
            }
            for node in db.nodes() {
                let log = std::fs::read_to_string(db.log_file(&node.id)).unwrap();
                assert_eq!(log.matches("== faultline: starting").count(), 1, "{log}");
            }
            db.teardown().unwrap();
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
    });
}

fn template() -> String {
    "{bin} node --id {id} --listen 127.0.0.1:{port} --peers {peers} \
     --data-dir {data_dir} --admin"
        .to_string()
}

#[test]
fn an_external_system_runs_from_templates() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = ExternalConfig::new(3, template(), dir.path());
    config
        .vars
        .insert("bin".into(), support::FAULTLINE.to_string());
    config.pause = Some("echo pausing {id} at {url}".into());
    config.ready_timeout = Duration::from_secs(20);
    config.stop_grace = Duration::from_secs(3);
    let mut db = ExternalDb::new(config).unwrap();
    db.setup().unwrap();
    assert!(primary_of(&db).is_some(), "setup waited for a primary");
    let groups: Vec<u32> = db.nodes().iter().map(|n| db.pid(&n.id).unwrap()).collect();

    let node = db.nodes()[2].clone();
    db.kill(&node.id).unwrap();
    let after_kill = fetch_status(&node.url, QUICK);
    assert!(
        matches!(after_kill, Err(StatusError::Unreachable(_))),
        "{after_kill:?}"
    );
    db.start(&node.id).unwrap();
    assert!(fetch_status(&node.url, Duration::from_secs(2)).is_ok());

    db.pause(&node.id).unwrap();
    let log = std::fs::read_to_string(db.log_file(&node.id)).unwrap();
    assert!(
        log.contains(&format!("pausing {} at {}", node.id, node.url)),
        "{log}"
    );
    db.resume(&node.id).expect("default resume: SIGCONT");

    let mut groups = groups;
    groups.push(db.pid(&node.id).unwrap());
    db.teardown().unwrap();
    // `sh` and the node it forked: no live process is left in any group
    // (an orphan's zombie may wait a moment for init to reap it).
    eventually(
        "every process group is empty",
        Duration::from_secs(2),
        || groups.iter().all(|&g| live_members(g).is_empty()),
    );
}

const HOST_ENV: &str = "FAULTLINE_DB_TEST_HOST_DIR";

/// Not a test by itself: the process that `nodes_die_with_a_killed_harness`
/// starts and SIGKILLs. Sets up a cluster, writes the nodes' pids, waits.
#[test]
#[ignore = "run by nodes_die_with_a_killed_harness"]
fn host_a_cluster_until_killed() {
    let Some(dir) = std::env::var_os(HOST_ENV) else {
        return;
    };
    let dir = PathBuf::from(dir);
    let mut db = TargetNodeDb::new(config(3, &dir)).unwrap();
    db.setup().unwrap();
    let pids: Vec<String> = pids(&db).iter().map(u32::to_string).collect();
    std::fs::write(dir.join("pids.tmp"), pids.join("\n")).unwrap();
    std::fs::rename(dir.join("pids.tmp"), dir.join("pids")).unwrap();
    std::thread::sleep(Duration::from_secs(30));
}

#[test]
fn nodes_die_with_a_killed_harness() {
    let dir = tempfile::tempdir().unwrap();
    let mut host = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "host_a_cluster_until_killed", "--ignored"])
        .env(HOST_ENV, dir.path())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pids_file = dir.path().join("pids");
    let deadline = Instant::now() + Duration::from_secs(25);
    while !pids_file.exists() && Instant::now() < deadline {
        if let Ok(Some(status)) = host.try_wait() {
            panic!("the host exited early: {status}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let text = std::fs::read_to_string(&pids_file);
    host.kill().unwrap();
    host.wait().unwrap();
    let pids: Vec<u32> = text
        .expect("the host set up a cluster")
        .lines()
        .map(|l| l.parse().unwrap())
        .collect();
    assert_eq!(pids.len(), 3);
    let deadline = Instant::now() + Duration::from_secs(5);
    while pids.iter().any(|&p| alive(p)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let survivors: Vec<u32> = pids.into_iter().filter(|&p| alive(p)).collect();
    for &pid in &survivors {
        let _ = nix::sys::signal::kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
    }
    assert!(
        survivors.is_empty(),
        "nodes outlived the harness: {survivors:?}"
    );
}

/// The `Date` header of an HTTP answer from `port`, as Unix seconds.
fn server_date(port: u16) -> Option<i64> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    stream.write_all(b"HEAD / HTTP/1.0\r\n\r\n").ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok()?;
    let date = answer.lines().find_map(|l| l.strip_prefix("Date: "))?;
    let out = Command::new("date")
        .args(["-d", date, "+%s"])
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout).trim().parse().ok()
}

#[test]
fn an_external_nodes_wall_clock_is_shifted_through_libfaketime() {
    let Some(lib) = harness::system::custom::libfaketime() else {
        eprintln!("skipped: libfaketime is not installed (apt-get install -y libfaketime)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    // A system whose answers carry its wall clock: Python's HTTP server.
    let mut cfg = ExternalConfig::new(
        1,
        "exec python3 -m http.server {port} --bind 127.0.0.1 --directory {data_dir}",
        dir.path(),
    );
    cfg.faketime = Some(lib);
    let mut db = ExternalDb::new(cfg).unwrap();
    db.setup().unwrap();
    let port = db.nodes()[0].port;
    let real = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64
    };
    let before = server_date(port).expect("the server answers with a Date");
    assert!(
        (before - real()).abs() <= 2,
        "no skew yet: {before} vs {}",
        real()
    );
    let file = db.clock_file("n1").expect("a libfaketime file");
    std::fs::write(&file, "+3600\n").unwrap();
    let skewed = server_date(port).unwrap();
    assert!(
        (skewed - real() - 3600).abs() <= 2,
        "skewed by an hour: {skewed} vs {}",
        real()
    );
    std::fs::write(&file, "+0\n").unwrap();
    assert!((server_date(port).unwrap() - real()).abs() <= 2, "reset");
    db.teardown().unwrap();
}
