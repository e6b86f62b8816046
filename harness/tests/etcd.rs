//! etcd as a system under test (`--system etcd`), end to end. Each test is
//! `#[ignore]`d (they start real etcd members): run them with
//! `cargo test -p harness --test etcd -- --ignored`.
//!
//! - 3 members, the register workload with linearizable reads, under kill
//!   and pause: valid.
//! - a harness SIGKILLed mid-run leaves no etcd member behind.
//!
//! Without `/usr/bin/etcd` every test skips, saying what to install; with
//! `CI=true` a missing etcd is a failure.

mod support;

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use support::processes::wait_until_gone;
use support::{faultline_in, spawn_in, stderr, stdout, temp_store};

/// Whether etcd is installed; panics in CI when it is not.
fn etcd_installed() -> bool {
    if Path::new(harness::system::etcd::ETCD_BIN).is_file() {
        return true;
    }
    let message = "etcd is not installed (/usr/bin/etcd missing): \
                   apt-get install etcd-server etcd-client";
    assert!(std::env::var("CI").as_deref() != Ok("true"), "{message}");
    eprintln!("SKIP: {message}");
    false
}

#[test]
#[ignore]
fn linearizable_reads_under_kill_and_pause_are_valid() {
    if !etcd_installed() {
        return;
    }
    let (_dir, store) = temp_store();
    let out = faultline_in(
        &store,
        &[
            "run",
            "--system",
            "etcd",
            "--nodes",
            "3",
            "--time-limit",
            "10s",
            "--rate",
            "100",
            "--concurrency",
            "6",
            "--nemesis",
            "kill,pause",
            "--nemesis-interval",
            "2s",
            "--etcd-reads",
            "linearizable",
            "--seed",
            "7",
        ],
    );
    let stdout = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{}", stderr(&out));
    assert!(stdout.contains("verdict: valid"), "{stdout}");
    assert!(wait_until_gone(&store, Duration::from_secs(10)).is_empty());
}

#[test]
#[ignore]
fn a_sigkilled_harness_leaves_no_etcd_member() {
    if !etcd_installed() {
        return;
    }
    let (_dir, store) = temp_store();
    let mut harness = spawn_in(
        &store,
        &[
            "run",
            "--system",
            "etcd",
            "--nodes",
            "3",
            "--time-limit",
            "60s",
            "--rate",
            "100",
            "--seed",
            "5",
        ],
        Stdio::null(),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        assert!(Instant::now() < deadline, "the run never recorded ops");
        let history = std::fs::canonicalize(store.join("latest"))
            .map(|run| run.join("history.jsonl"))
            .ok()
            .and_then(|path| std::fs::read_to_string(path).ok());
        if history.is_some_and(|t| t.lines().count() >= 100) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    harness.kill().unwrap(); // SIGKILL: no teardown code runs in the harness.
    harness.wait().unwrap();
    let left = wait_until_gone(&store, Duration::from_secs(10));
    assert!(
        left.is_empty(),
        "etcd members survived the harness: {left:?}"
    );
}
