//! Containment with real processes: a node whose start command double-forks
//! a daemon (`( setsid sh -c LOOP MARKER & )`, re-parented away from the
//! node and in a session of its own) loses that daemon when the harness is
//! SIGKILLed, when the nemesis kills the node, and at teardown; pausing the
//! node stops the daemon too. Each daemon carries a unique marker in its
//! argv, found through `/proc/*/cmdline`.
#![cfg(target_os = "linux")]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use harness::system::custom::{ExternalConfig, ExternalDb};
use harness::system::db::{Db, Pause};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

fn faultline() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_faultline"))
}

/// Whether this machine gives us PID namespaces (else the harness falls
/// back to process groups, and these claims do not hold).
fn pid_namespaces() -> bool {
    let mut unshare = Command::new("unshare");
    if !nix::unistd::geteuid().is_root() {
        unshare.args(["--user", "--map-current-user"]);
    }
    let works = unshare
        .args(["--pid", "--fork", "--kill-child", "true"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !works {
        eprintln!("skipped: `unshare --pid` does not work here (util-linux, user namespaces)");
    }
    works
}

fn unique_marker(test: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("faultline-daemon-{test}-{}-{nanos}", std::process::id())
}

/// A start template: the node in the foreground, after double-forking a
/// daemon named `MARKER-{id}` that loops forever.
fn start_template(marker: &str) -> String {
    format!(
        "(setsid sh -c 'while :; do sleep 1; done' {marker}-{{id}} &); \
         exec {{bin}} node --id {{id}} --listen 127.0.0.1:{{port}} --peers {{peers}} \
         --data-dir {{data_dir}}"
    )
}

/// Live (non-zombie) processes whose command line contains `needle`.
fn marked(needle: &str) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| *pid != std::process::id())
        .filter(|pid| {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            String::from_utf8_lossy(&cmdline).contains(needle)
        })
        .filter(|pid| state(*pid).is_some_and(|s| s != "Z" && s != "X"))
        .collect()
}

/// The state letter of `pid` (`R`, `S`, `T`, `Z`, ...).
fn state(pid: u32) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    rest.split_whitespace().next().map(str::to_string)
}

fn eventually(what: &str, within: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    while !check() {
        if Instant::now() >= deadline {
            eprintln!("{what}: not within {within:?}");
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    true
}

/// The live daemons whose name (last argument) starts with `marker`; the
/// `unshare` and `sh` that started them only mention it inside a longer
/// command line.
fn daemons(marker: &str) -> Vec<u32> {
    marked(marker)
        .into_iter()
        .filter(|pid| {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let text = String::from_utf8_lossy(&cmdline).into_owned();
            text.trim_end_matches('\0')
                .rsplit('\0')
                .next()
                .is_some_and(|last| last.starts_with(marker))
        })
        .collect()
}

/// SIGKILLs whatever carries `needle` (a failed test must not leave it).
fn kill_marked(needle: &str) -> Vec<u32> {
    let left = marked(needle);
    for pid in &left {
        let _ = kill(Pid::from_raw(*pid as i32), Signal::SIGKILL);
    }
    left
}

fn write_test(dir: &Path, marker: &str) -> PathBuf {
    let test = dir.join("contained.toml");
    let text = format!(
        "name = \"contained\"\nnodes = 3\ntime-limit = \"60s\"\nrate = 20\nseed = 5\n\
         [db]\nstart = '''{}'''\nvars = {{ bin = \"{}\" }}\n",
        start_template(marker),
        faultline().display()
    );
    std::fs::write(&test, text).unwrap();
    test
}

#[test]
fn a_sigkilled_run_leaves_no_double_forked_daemon_behind() {
    if !pid_namespaces() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let marker = unique_marker("sigkill");
    let store = dir.path().join("store");
    let mut run = Command::new(faultline())
        .arg("run")
        .arg("--test")
        .arg(write_test(dir.path(), &marker))
        .arg("--store")
        .arg(&store)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = eventually("three daemons run", Duration::from_secs(30), || {
        daemons(&marker).len() == 3
    });
    let store_text = store.to_string_lossy().into_owned();
    let nodes_before = marked(&store_text).len();
    run.kill().unwrap();
    run.wait().unwrap();
    assert!(started, "the daemons never started");
    assert!(
        nodes_before >= 3,
        "the nodes run with their data dirs in the store"
    );
    let gone = eventually("everything dies", Duration::from_secs(5), || {
        marked(&marker).is_empty() && marked(&store_text).is_empty()
    });
    let daemons = kill_marked(&marker);
    let nodes = kill_marked(&store_text);
    assert!(
        gone,
        "outlived the SIGKILLed harness: daemons {daemons:?}, nodes {nodes:?}"
    );
}

#[test]
fn a_killed_node_takes_its_daemon_and_a_paused_node_stops_it() {
    if !pid_namespaces() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let marker = unique_marker("kill");
    let mut config = ExternalConfig::new(3, start_template(&marker), dir.path());
    config
        .vars
        .insert("bin".into(), faultline().display().to_string());
    config.ready_timeout = Duration::from_secs(20);
    config.stop_grace = Duration::from_secs(3);
    let mut db = ExternalDb::new(config).unwrap();
    db.setup().unwrap();
    let (n1, n2) = (format!("{marker}-n1"), format!("{marker}-n2"));
    assert!(eventually(
        "three daemons run",
        Duration::from_secs(10),
        || { daemons(&marker).len() == 3 }
    ));

    // Through the trait object, as the nemesis holds it.
    let dynamic: &mut dyn Db = &mut db;
    dynamic.as_kill().expect("kill").kill("n1").unwrap();
    let n1_gone = eventually("n1's daemon dies", Duration::from_secs(5), || {
        daemons(&n1).is_empty()
    });
    assert_eq!(daemons(&n2).len(), 1, "n2's daemon is untouched");

    db.pause("n2").unwrap();
    let daemon = daemons(&n2)[0];
    let stopped = eventually("n2's daemon is stopped", Duration::from_secs(2), || {
        state(daemon).as_deref() == Some("T")
    });
    db.resume("n2").unwrap();
    let resumed = eventually("n2's daemon runs again", Duration::from_secs(2), || {
        state(daemon).as_deref() != Some("T")
    });

    db.teardown().unwrap();
    let all_gone = eventually(
        "teardown takes every daemon",
        Duration::from_secs(5),
        || marked(&marker).is_empty(),
    );
    let left = kill_marked(&marker);
    assert!(n1_gone, "the killed node's daemon survived");
    assert!(stopped, "pause did not stop the daemon");
    assert!(resumed, "resume did not continue the daemon");
    assert!(all_gone, "left after teardown: {left:?}");
}

#[test]
fn cleanup_kills_a_contained_node_and_its_daemon_that_a_killed_run_left() {
    use std::os::unix::process::CommandExt;

    if !pid_namespaces() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let run = store.join("left-behind").join("20261126T000000.000Z");
    std::fs::create_dir_all(&run).unwrap();
    let marker = unique_marker("cleanup");
    // A contained node as the harness starts one (`unshare` leading its
    // group, its command line naming its data dir), but not armed to die
    // with us: the stand-in for what a killed run left.
    let mut unshare = Command::new("unshare");
    if !nix::unistd::geteuid().is_root() {
        unshare.args(["--user", "--map-current-user"]);
    }
    let line =
        format!("(setsid sh -c 'while :; do sleep 1; done' {marker} &); sleep 60; echo \"$0\"");
    let mut node = unshare
        .args(["--pid", "--fork", "--kill-child", "--", "sh", "-c", &line])
        .arg(run.join("nodes/n1/data"))
        .process_group(0)
        .spawn()
        .unwrap();
    let started = eventually("the daemon runs", Duration::from_secs(10), || {
        daemons(&marker).len() == 1
    });
    let state =
        serde_json::json!({"harness_pid": 999_999_999u32, "nodes": {"n1": node.id()}, "net": null});
    std::fs::write(run.join("state.json"), state.to_string()).unwrap();

    let out = Command::new(faultline())
        .arg("cleanup")
        .arg("--store")
        .arg(&store)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let _ = node.wait();
    let gone = eventually("the daemon dies", Duration::from_secs(5), || {
        daemons(&marker).is_empty()
    });
    let left = kill_marked(&marker);
    assert!(started, "the daemon never started");
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("killed n1"), "{stdout}");
    assert!(gone, "cleanup left the daemon: {left:?}");
}
