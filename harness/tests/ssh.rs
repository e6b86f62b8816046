//! Remote hosts over the real OpenSSH: hosts of our own (network
//! namespaces running Debian's sshd, `support::hosts`), the controller in a
//! private namespace of its own. The group: `cargo test -p harness --test
//! ssh -- --ignored` (root, openssh-server, openssh-client).

mod support;

use std::fs::{self, File};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use harness::ssh::{Control, Host, SshError, SshOptions};

const LIMIT: Duration = Duration::from_secs(10);

fn connect(
    hosts: &support::hosts::TestHosts,
    i: usize,
    log: &Arc<Mutex<File>>,
    dir: &Path,
) -> Control {
    let host: Host = format!("root@{}", hosts.addrs[i]).parse().unwrap();
    let options = SshOptions {
        key: Some(hosts.key.clone()),
        user: None,
        options: hosts.ssh_options(),
    };
    Control::connect(host, options, dir, log.clone(), LIMIT, |mut c| c.spawn())
        .unwrap_or_else(|e| panic!("connect to host {i}: {e}\n{}", hosts.sshd_logs()))
}

#[test]
#[ignore = "ssh group: needs root, openssh-server and openssh-client"]
fn each_host_gets_one_master_that_runs_bounded_logged_commands_and_uploads_once() {
    let hosts = hosts_or_skip!(3);
    hosts.enter_controller();
    let dir = tempfile::tempdir().unwrap();
    let log_path = dir.path().join("control.log");
    let log = Arc::new(Mutex::new(File::create(&log_path).unwrap()));
    let controls: Vec<Control> = (0..3)
        .map(|i| connect(&hosts, i, &log, dir.path()))
        .collect();

    for (i, control) in controls.iter().enumerate() {
        let out = control.run("ip -4 -br addr show dev eth0", LIMIT).unwrap();
        assert!(
            out.stdout.contains(&hosts.addrs[i].to_string()),
            "host {i} answered from {}",
            out.stdout
        );
    }
    let started = std::time::Instant::now();
    let slow = controls[0].run("sleep 29.75", Duration::from_millis(500));
    assert!(matches!(slow, Err(SshError::Timeout { .. })), "{slow:?}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "bounded: {:?}",
        started.elapsed()
    );
    let lingering = controls[0]
        .run("sleep 2; pgrep -af 'sleep 29[.]75' || true", LIMIT)
        .unwrap();
    assert!(
        !lingering.stdout.contains("sleep 29.75"),
        "the host still runs it: {}",
        lingering.stdout
    );
    let failed = controls[1]
        .run("echo broken >&2; exit 3", LIMIT)
        .unwrap_err();
    assert!(failed.to_string().contains("broken"), "{failed}");

    let remote = format!("/tmp/{}-upload", hosts.host_ns(2));
    let exe = Path::new(support::FAULTLINE);
    assert!(
        controls[2].upload(exe, &remote, LIMIT).unwrap(),
        "first upload is sent"
    );
    assert!(
        !controls[2].upload(exe, &remote, LIMIT).unwrap(),
        "same hash: not sent again"
    );
    let same = controls[2].run(
        &format!("cmp {remote} {} && test -x {remote}", exe.display()),
        LIMIT,
    );
    let _ = fs::remove_file(&remote);
    same.expect("the uploaded copy is the executable, still executable");

    drop(controls);
    let text = fs::read_to_string(&log_path).unwrap();
    for needle in [
        "master to root@10.77.0.2 up",
        "$ sleep 29.75",
        "killed at its time limit",
        "stderr: broken",
        "not sent",
    ] {
        assert!(
            text.contains(needle),
            "control log lacks {needle:?}:\n{text}"
        );
    }
    let left = support::processes::processes_mentioning(dir.path());
    assert!(
        left.is_empty(),
        "ssh processes left after the masters closed: {left:?}"
    );
}

#[test]
#[ignore = "ssh group: needs root, openssh-server and openssh-client"]
fn a_host_that_refuses_our_key_fails_to_connect_saying_what_ssh_said() {
    let hosts = hosts_or_skip!(1);
    hosts.enter_controller();
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(Mutex::new(
        File::create(dir.path().join("control.log")).unwrap(),
    ));
    let stranger = dir.path().join("stranger");
    let made = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&stranger)
        .status()
        .unwrap();
    assert!(made.success());
    let host: Host = format!("root@{}", hosts.addrs[0]).parse().unwrap();
    let options = SshOptions {
        key: Some(stranger),
        user: None,
        options: hosts.ssh_options(),
    };
    let err = Control::connect(host, options, dir.path(), log, LIMIT, |mut c| c.spawn())
        .err()
        .expect("a user without the key is refused");
    let text = err.to_string();
    assert!(
        text.contains("root@10.77.0.2") && text.contains("Permission denied"),
        "{text}"
    );
}

/// One run on the hosts at a time: the hosts share this machine's file
/// system and process table, and two runs would share two cores.
static SERIAL: Mutex<()> = Mutex::new(());

/// `remote` run over ssh on host `i` (from the controller namespace, as
/// the harness reaches it); its stdout.
fn over_ssh(hosts: &support::hosts::TestHosts, i: usize, remote: &str) -> String {
    let mut ssh = std::process::Command::new("ssh");
    ssh.arg("-i").arg(&hosts.key).args(["-o", "BatchMode=yes"]);
    for option in hosts.ssh_options() {
        ssh.args(["-o", &option]);
    }
    let out = ssh
        .arg(format!("root@{}", hosts.addrs[i]))
        .arg("--")
        .arg(remote)
        .output()
        .expect("ssh");
    assert!(
        out.status.success(),
        "ssh to host {i}: `{remote}`: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The `faultline run` flags that put 3 nodes on the test's hosts.
fn host_flags(hosts: &support::hosts::TestHosts) -> Vec<String> {
    let list: Vec<String> = hosts.addrs.iter().map(|a| format!("root@{a}")).collect();
    let mut flags = vec![
        "--nodes".to_string(),
        list.len().to_string(),
        "--hosts".into(),
        list.join(","),
        "--ssh-key".into(),
        hosts.key.display().to_string(),
    ];
    for option in hosts.ssh_options() {
        flags.extend(["--ssh-option".into(), option]);
    }
    flags
}

/// What run `run` (its name on the hosts) left on host `i`: its node
/// processes, faultline's nft tables, its directory.
fn left_on_host(hosts: &support::hosts::TestHosts, i: usize, run: &str) -> Vec<String> {
    let probe = format!(
        "pgrep -af /tmp/faultline/{run} | grep -v pgrep || true; \
         nft list tables | grep faultline || true; \
         test -e /tmp/faultline/{run} && echo dir /tmp/faultline/{run} || true"
    );
    over_ssh(hosts, i, &probe)
        .lines()
        .map(str::to_string)
        .filter(|l| !l.trim().is_empty())
        .collect()
}

/// Waits (≤ `limit`) until no host has anything of `run` left; what is left.
fn wait_hosts_clean(hosts: &support::hosts::TestHosts, run: &str, limit: Duration) -> Vec<String> {
    let deadline = std::time::Instant::now() + limit;
    loop {
        let left: Vec<String> = (0..hosts.addrs.len())
            .flat_map(|i| left_on_host(hosts, i, run))
            .collect();
        if left.is_empty() || std::time::Instant::now() > deadline {
            return left;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A finished run: exit code, stdout, results.json, the run's name on
/// the hosts.
struct Ran {
    code: Option<i32>,
    out: String,
    results: serde_json::Value,
    run: String,
}

fn run_on_hosts(hosts: &support::hosts::TestHosts, store: &Path, args: &[&str]) -> Ran {
    let mut command = support::faultline();
    command
        .arg("run")
        .args(host_flags(hosts))
        .args(args)
        .arg("--store")
        .arg(store)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let child = command.spawn().expect("faultline run");
    let pid = child.id();
    let output = child.wait_with_output().unwrap();
    let out = format!(
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let dir = support::latest_run(store);
    let results = fs::read_to_string(dir.join("results.json"))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(serde_json::Value::Null);
    Ran {
        code: output.status.code(),
        out,
        results,
        run: harness::remote::run_name_of(&dir, pid),
    }
}

/// The fault kinds whose action completed in run `dir`'s history; fails
/// on a fault the hosts could not apply.
fn faults_applied(dir: &Path) -> Vec<String> {
    let history = fs::read_to_string(dir.join("history.jsonl")).unwrap();
    let mut applied = Vec::new();
    for line in history.lines().filter(|l| l.contains("\"nemesis\"")) {
        let op: serde_json::Value = serde_json::from_str(line).unwrap();
        assert!(
            !line.contains("error"),
            "a fault failed on the hosts: {line}"
        );
        let f = op["f"].as_str().unwrap_or_default().to_string();
        if op["type"] == "info" && !applied.contains(&f) {
            applied.push(f);
        }
    }
    applied
}

/// A strong-mode register run on the hosts under `nemesis`: valid, its
/// logs fetched back, its clock offsets recorded, nothing left on the
/// hosts. The fault kinds it applied.
fn strong_run(hosts: &support::hosts::TestHosts, nemesis: &str, seconds: u32) -> Vec<String> {
    let (_dir, store) = support::temp_store();
    let started = std::time::Instant::now();
    let time_limit = format!("{seconds}s");
    let ran = run_on_hosts(
        hosts,
        &store,
        &[
            "--nemesis",
            nemesis,
            "--nemesis-interval",
            "1500ms",
            "--time-limit",
            &time_limit,
            "--concurrency",
            "5",
            "--rate",
            "100",
            "--seed",
            "7",
        ],
    );
    eprintln!(
        "strong run under {nemesis}: {:?}, exit {:?}",
        started.elapsed(),
        ran.code
    );
    assert_eq!(ran.code, Some(0), "{}", ran.out);
    assert!(ran.out.contains("verdict: valid"), "{}", ran.out);
    let ok = ran.results["stats"]["ops"]["ok"].as_u64().unwrap_or(0);
    assert!(ok > 100, "only {ok} ok ops:\n{}", ran.out);
    let offsets = &ran.results["clock_offsets_ns"];
    for node in ["n1", "n2", "n3"] {
        let offset = offsets[node].as_i64().unwrap_or(i64::MAX);
        // The hosts share this machine's clock: only the round trip shows.
        assert!(offset.abs() < 50_000_000, "{node}: {offsets}");
    }
    let dir = support::latest_run(&store);
    for node in ["n1", "n2", "n3"] {
        let log =
            fs::read_to_string(dir.join("nodes").join(format!("{node}.log"))).unwrap_or_default();
        assert!(log.contains("serving"), "{node}'s log was not fetched back");
        assert!(
            dir.join("nodes").join(node).join("data").is_dir(),
            "{node}'s data"
        );
    }
    let left = wait_hosts_clean(hosts, &ran.run, Duration::from_secs(5));
    assert!(left.is_empty(), "left on the hosts: {left:?}");
    faults_applied(&dir)
}

#[test]
#[ignore = "ssh group: needs root, openssh-server and openssh-client"]
fn the_strong_mode_on_three_hosts_stays_linearizable_under_partitions_kills_pauses_crashes_and_clocks(
) {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let hosts = hosts_or_skip!(3);
    hosts.enter_controller();
    // The schedule draws each fault at random: the kinds a run did not
    // draw get a shorter run of their own (at most 3 more), so every kind
    // is applied on the hosts at least once, the strong mode valid each time.
    const KINDS: [&str; 5] = ["partition", "kill", "pause", "crash", "clock"];
    let mut missing: Vec<&str> = KINDS.to_vec();
    for seconds in [12, 6, 6, 6] {
        if missing.is_empty() {
            break;
        }
        let applied = strong_run(&hosts, &missing.join(","), seconds);
        missing.retain(|kind| !applied.iter().any(|a| a == kind));
        eprintln!("applied {applied:?}; still missing {missing:?}");
    }
    assert!(
        missing.is_empty(),
        "never applied on the hosts: {missing:?}"
    );
}

#[test]
#[ignore = "ssh group: needs root, openssh-server and openssh-client"]
fn write_concern_one_on_three_hosts_loses_writes_when_the_primary_is_isolated() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let hosts = hosts_or_skip!(3);
    hosts.enter_controller();
    let mut outputs = Vec::new();
    for seed in 1..=3 {
        let (_dir, store) = support::temp_store();
        let started = std::time::Instant::now();
        let ran = run_on_hosts(
            &hosts,
            &store,
            &[
                "--workload",
                "set",
                "--write-concern",
                "one",
                "--election",
                "bully",
                "--reads",
                "primary",
                "--nemesis",
                "partition-primary",
                "--nemesis-interval",
                "4s",
                "--time-limit",
                "16s",
                "--seed",
                &seed.to_string(),
            ],
        );
        eprintln!(
            "weak run seed {seed}: {:?}, exit {:?}",
            started.elapsed(),
            ran.code
        );
        let left = wait_hosts_clean(&hosts, &ran.run, Duration::from_secs(5));
        assert!(left.is_empty(), "left on the hosts: {left:?}");
        if ran.code == Some(1) && ran.out.contains("anomaly lost-write") {
            return;
        }
        outputs.push(ran.out);
    }
    panic!("no lost-write in 3 runs:\n{}", outputs.join("\n---\n"));
}

#[test]
#[ignore = "ssh group: needs root, openssh-server and openssh-client"]
fn a_sigkilled_harness_leaves_the_hosts_clean_after_faultline_cleanup() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let hosts = hosts_or_skip!(3);
    hosts.enter_controller();
    let (_dir, store) = support::temp_store();
    let mut command = support::faultline();
    command
        .arg("run")
        .args(host_flags(&hosts))
        .args([
            "--nemesis",
            "partition-halves",
            "--nemesis-interval",
            "1s",
            "--time-limit",
            "60s",
            "--rate",
            "100",
            "--seed",
            "3",
        ])
        .arg("--store")
        .arg(&store)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut harness = command.spawn().expect("faultline run");
    // Until a partition is in force: a table on some host to clean.
    let deadline = std::time::Instant::now() + Duration::from_secs(40);
    let dir = loop {
        assert!(
            std::time::Instant::now() < deadline,
            "no partition was applied"
        );
        let applied = fs::canonicalize(store.join("latest")).ok().filter(|run| {
            fs::read_to_string(run.join("history.jsonl")).is_ok_and(|h| {
                h.lines()
                    .any(|l| l.contains("\"info\"") && l.contains("\"partition\""))
            })
        });
        if let Some(run) = applied {
            break run;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let run = harness::remote::run_name_of(&dir, harness.id());
    let state = fs::read_to_string(dir.join("state.json")).unwrap();
    assert!(
        state.contains("10.77.0.2") && state.contains("StrictHostKeyChecking=no"),
        "state.json names the hosts and the ssh options: {state}"
    );
    // The nemesis records its invocation before the rules are in: wait
    // for the run's table to be on a host.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let before = loop {
        let before: Vec<String> = (0..3).flat_map(|i| left_on_host(&hosts, i, &run)).collect();
        let ready = before.iter().any(|l| l.contains("faultline_"))
            && before.iter().any(|l| l.contains("node"));
        if ready || std::time::Instant::now() > deadline {
            break before;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        before.iter().any(|l| l.contains("faultline_"))
            && before.iter().any(|l| l.contains("node")),
        "a table and nodes on the hosts before the kill: {before:?}"
    );
    harness.kill().unwrap(); // SIGKILL: no teardown runs in the harness.
    harness.wait().unwrap();
    // The watchdogs end the nodes on their own, once the connections die;
    // the table and the directory are left for cleanup.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let left = loop {
        let left: Vec<String> = (0..3).flat_map(|i| left_on_host(&hosts, i, &run)).collect();
        if !left.iter().any(|l| l.contains(" node ")) || std::time::Instant::now() > deadline {
            break left;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(
        !left.iter().any(|l| l.contains(" node ")),
        "nodes outlived the harness's connections: {left:?}"
    );
    let cleaned = support::faultline()
        .args(["cleanup", "--store"])
        .arg(&store)
        .output()
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&cleaned.stdout),
        String::from_utf8_lossy(&cleaned.stderr)
    );
    assert!(cleaned.status.success(), "{said}");
    assert!(
        said.contains(&run),
        "cleanup names the run it cleaned: {said}"
    );
    let left = wait_hosts_clean(&hosts, &run, Duration::from_secs(10));
    assert!(left.is_empty(), "left on the hosts after cleanup: {left:?}");
    assert!(!dir.join("state.json").exists());
    let sockets = std::env::temp_dir().join(format!("fl-ssh-{run}"));
    assert!(!sockets.exists(), "{} left here", sockets.display());
}

/// The state of process `pid` (`R`, `S`, `T`, ...), `None` once it is gone.
fn process_state(pid: u32) -> Option<char> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit(')').next()?.trim_start().chars().next()
}

#[test]
#[ignore = "ssh group: needs root, openssh-server and openssh-client"]
fn a_node_session_takes_signals_to_its_group_and_dies_with_its_connection() {
    use harness::placement::Placement;
    use harness::remote::{session::Session, RemoteHosts, RemoteOptions, RemoteState};
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let hosts = hosts_or_skip!(2);
    hosts.enter_controller();
    let dir = tempfile::tempdir().unwrap();
    let options = RemoteOptions {
        hosts: hosts.addrs.iter().map(|a| format!("root@{a}")).collect(),
        ssh_key: Some(hosts.key.clone()),
        ssh_option: hosts.ssh_options(),
        ..RemoteOptions::default()
    };
    let run = format!("session_{}", std::process::id());
    let state = RemoteState::new(run.clone(), &options, 2).unwrap();
    let remote = RemoteHosts::connect(state, false, &dir.path().join("control.log")).unwrap();
    let exe = remote.prepare().unwrap();
    assert!(exe.starts_with("/tmp/faultline/bin/faultline-"), "{exe}");

    // The placement: a command reaches the node's host.
    let mut ip = std::process::Command::new("ip");
    ip.args(["-4", "-br", "addr", "show", "dev", "eth0"]);
    let out = remote.command("n2", ip).unwrap().output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(&hosts.addrs[1].to_string()), "{text}");
    assert_eq!(
        remote.address("n2").unwrap().to_string(),
        hosts.addrs[1].to_string()
    );

    let argv: Vec<String> = ["sleep", "300"].map(String::from).to_vec();
    let mut session = Session::start(&remote, "n1", &argv).unwrap();
    let pid_file = format!("/tmp/faultline/{run}/n1/pid");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let pid: u32 = loop {
        if let Some(pid) = fs::read_to_string(&pid_file)
            .ok()
            .and_then(|t| t.trim().parse().ok())
        {
            break pid;
        }
        assert!(std::time::Instant::now() < deadline, "no pid file");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(remote.signal("n1", "STOP").unwrap());
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(process_state(pid), Some('T'), "paused");
    assert!(remote.signal("n1", "CONT").unwrap());
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(process_state(pid), Some('S'), "resumed");
    assert!(session.exit_status().is_none());

    // The connection dies (its ssh SIGKILLed; the node paused, even): the
    // watchdog kills the node's group on the host.
    assert!(remote.signal("n1", "STOP").unwrap());
    let ssh = nix::unistd::Pid::from_raw(session.ssh_pid() as i32);
    nix::sys::signal::kill(ssh, nix::sys::signal::Signal::SIGKILL).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while process_state(pid).is_some_and(|s| s != 'Z') {
        assert!(
            std::time::Instant::now() < deadline,
            "the node outlived its session"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(session.wait_exit(Duration::from_secs(5)));
    drop(session);
    remote.clean().unwrap();
    assert!(!Path::new(&format!("/tmp/faultline/{run}")).exists());
}

#[test]
#[ignore = "ssh group: needs root, openssh-server and openssh-client"]
fn etcd_on_three_hosts_with_linearizable_reads_stays_valid_under_partitions_kills_and_pauses() {
    if !Path::new("/usr/bin/etcd").exists() {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "CI needs etcd-server"
        );
        eprintln!("skipped: /usr/bin/etcd not installed (apt-get install -y etcd-server)");
        return;
    }
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let hosts = hosts_or_skip!(3);
    hosts.enter_controller();
    let (_dir, store) = support::temp_store();
    let started = std::time::Instant::now();
    let ran = run_on_hosts(
        &hosts,
        &store,
        &[
            "--system",
            "etcd",
            "--etcd-reads",
            "linearizable",
            "--nemesis",
            "partition,kill,pause",
            "--nemesis-interval",
            "2s",
            "--time-limit",
            "10s",
            "--rate",
            "200",
            "--concurrency",
            "6",
            "--seed",
            "11",
        ],
    );
    eprintln!("etcd run: {:?}, exit {:?}", started.elapsed(), ran.code);
    assert_eq!(ran.code, Some(0), "{}", ran.out);
    assert!(ran.out.contains("verdict: valid"), "{}", ran.out);
    let dir = support::latest_run(&store);
    let applied = faults_applied(&dir);
    assert!(applied.len() >= 2, "faults applied: {applied:?}");
    for node in ["n1", "n2", "n3"] {
        let log =
            fs::read_to_string(dir.join("nodes").join(format!("{node}.log"))).unwrap_or_default();
        assert!(
            log.contains("etcd"),
            "{node}'s etcd log was not fetched back"
        );
    }
    let left = wait_hosts_clean(&hosts, &ran.run, Duration::from_secs(5));
    assert!(left.is_empty(), "left on the hosts: {left:?}");
}
