//! End to end with faults (the slow group; `.ci/run` runs it with
//! `cargo test -p harness --test e2e -- --ignored`): real nodes, a real
//! nemesis, the real checkers.
//! - the asynchronous, bully-elected design loses acknowledged writes when
//!   its primary is isolated, and `faultline run` reports them (exit 1,
//!   `lost-write` anomalies);
//! - the strong mode (majority writes, majority election, linearizable
//!   reads) stays valid under partitions, kills and pauses;
//! - after every run, no node process is left;
//! - a store that fills up mid-run stops it with exit 5 naming the file,
//!   nodes torn down, the history so far still checkable.

mod support;

use std::path::Path;
use std::process::Command;

use support::flags::weak_set_under_primary_isolation;
use support::processes::assert_no_node_left;
use support::{code, faultline, faultline_in, latest_run, stderr, temp_store};

/// The weak set design under primary isolation, long enough to lose writes.
fn weak_set_flags() -> Vec<&'static str> {
    weak_set_under_primary_isolation("4s", "16s")
}

fn run(store: &Path, args: &[&str]) -> (Option<i32>, String, serde_json::Value) {
    let out = faultline_in(store, &[&["run"], args].concat());
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let run = latest_run(store);
    let results = std::fs::read_to_string(run.join("results.json")).expect("results.json");
    (
        out.status.code(),
        stdout,
        serde_json::from_str(&results).unwrap(),
    )
}

#[test]
#[ignore = "e2e: about 25 s; run with --ignored"]
fn async_bully_loses_acknowledged_writes_when_the_primary_is_isolated() {
    let (_dir, store) = temp_store();
    let (code, stdout, results) = run(&store, &weak_set_flags());
    assert_eq!(code, Some(1), "{stdout}");
    let kinds: Vec<&str> = results["anomalies"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a["kind"].as_str())
        .collect();
    assert!(
        kinds.contains(&"lost-write"),
        "anomalies {kinds:?}\n{stdout}"
    );
    assert!(stdout.contains("anomaly lost-write"), "{stdout}");
    assert_no_node_left(&store);
}

#[test]
#[ignore = "e2e: about 25 s; run with --ignored"]
fn the_strong_mode_stays_linearizable_under_partitions_kills_and_pauses() {
    let (_dir, store) = temp_store();
    let (code, stdout, results) = run(
        &store,
        &[
            "--workload",
            "register",
            "--nodes",
            "5",
            "--nemesis",
            "partition,kill,pause",
            "--nemesis-interval",
            "3s",
            "--time-limit",
            "18s",
            "--seed",
            "2",
        ],
    );
    assert_eq!(code, Some(0), "{stdout}");
    assert_eq!(results["valid"], serde_json::json!(true));
    let run = latest_run(&store);
    let history = std::fs::read_to_string(run.join("history.jsonl")).unwrap();
    let nemesis_ops = history
        .lines()
        .filter(|l| l.contains("\"process\":\"nemesis\""))
        .count();
    assert!(nemesis_ops >= 8, "the nemesis acted ({nemesis_ops} ops)");
    assert!(history.contains("\"f\":\"heal\""), "partitions were healed");
    // The cluster recovers: ops succeed again after nodes are started or resumed.
    let lines: Vec<serde_json::Value> = history
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let undo = lines.iter().position(|op| {
        op["process"] == "nemesis"
            && op["type"] == "info"
            && (op["f"] == "start" || op["f"] == "resume")
    });
    let undo = undo.expect("the nemesis killed or paused nodes and brought them back");
    let ok_after = lines[undo..].iter().filter(|op| op["type"] == "ok").count();
    assert!(
        ok_after > 50,
        "only {ok_after} ops succeeded after the first recovery"
    );
    assert_no_node_left(&store);
}

#[test]
#[ignore = "e2e: about 20 s; run with --ignored"]
fn kernel_rules_in_a_private_namespace_also_make_the_async_design_lose_writes() {
    let probe = nemesis::net::netns::probe();
    if let Some(missing) = probe.missing() {
        eprintln!("skipped: {missing}");
        return;
    }
    let (_dir, store) = temp_store();
    let (code, stdout, results) = run(&store, &[weak_set_flags(), vec!["--net", "netns"]].concat());
    assert_eq!(code, Some(1), "{stdout}");
    assert_eq!(results["test"]["net"], serde_json::json!("netns"));
    assert!(results["anomalies"]
        .as_array()
        .unwrap()
        .iter()
        .any(|a| a["kind"] == "lost-write"));
    // The rules lived in the run's own namespace: nothing on the host.
    let tables = Command::new("nft").args(["list", "tables"]).output();
    if let Ok(tables) = tables {
        assert!(!String::from_utf8_lossy(&tables.stdout).contains("faultline"));
    }
    assert_no_node_left(&store);
}

/// The anomaly kinds of a run's results.json.
fn kinds(results: &serde_json::Value) -> std::collections::BTreeSet<String> {
    results["anomalies"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a["kind"].as_str().map(str::to_string))
        .collect()
}

#[test]
#[ignore = "e2e: about 10 s; run with --ignored"]
fn the_strong_mode_shows_no_transactional_anomalies_without_faults() {
    let (_dir, store) = temp_store();
    let (code, stdout, results) = run(
        &store,
        &[
            "--workload",
            "append",
            "--nodes",
            "3",
            "--time-limit",
            "6s",
            "--seed",
            "3",
        ],
    );
    assert_eq!(code, Some(0), "{stdout}");
    assert!(kinds(&results).is_empty(), "{:?}", kinds(&results));
    assert!(results["stats"]["ops"]["ok"].as_u64().unwrap() > 500);
    assert_no_node_left(&store);
}

#[test]
#[ignore = "e2e: about 15 s; run with --ignored"]
fn split_brain_in_the_weak_mode_shows_transactional_anomalies() {
    let (_dir, store) = temp_store();
    let (code, stdout, results) = run(
        &store,
        &[
            "--workload",
            "append",
            "--nodes",
            "3",
            "--write-concern",
            "one",
            "--election",
            "bully",
            "--reads",
            "local",
            "--nemesis",
            "partition",
            "--nemesis-interval",
            "2s",
            "--time-limit",
            "10s",
            "--seed",
            "5",
        ],
    );
    assert_eq!(code, Some(1), "{stdout}");
    let found = kinds(&results);
    // Which anomalies split brain shows (recorded in the closing note): the
    // rolled-back and diverged appends break the version orders and the
    // cycles between them.
    eprintln!("anomaly kinds: {found:?}");
    let expected = [
        "incompatible-order",
        "lost-update",
        "G-single-realtime",
        "G1c",
        "G0",
        "G-single",
        "G2-item",
        "G1c-realtime",
        "G0-realtime",
        "G2-item-realtime",
    ];
    assert!(
        found.iter().any(|k| expected.contains(&k.as_str())),
        "{found:?}"
    );
    assert_no_node_left(&store);
}

/// A tmpfs of `size` mounted at `dir`, unmounted on drop.
struct SmallDisk(std::path::PathBuf);

impl SmallDisk {
    /// `None` (with the reason printed) where mounting needs a root this
    /// test does not have.
    fn mount(dir: &Path, size: &str) -> Option<SmallDisk> {
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .status();
        match status {
            Ok(s) if s.success() => Some(SmallDisk(dir.to_path_buf())),
            other => {
                eprintln!(
                    "skipped: cannot mount a tmpfs at {} ({other:?}); needs root",
                    dir.display()
                );
                None
            }
        }
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
#[ignore = "e2e: about 5 s; needs root to mount a tmpfs; run with --ignored"]
fn a_full_store_stops_the_run_with_exit_5_naming_the_file_and_leaves_a_readable_history() {
    let dir = tempfile::tempdir().unwrap();
    let Some(_disk) = SmallDisk::mount(dir.path(), "1m") else {
        return;
    };
    let store = dir.path().join("store");
    let out = faultline_in(&store, &["run", "--time-limit", "60s", "--rate", "2000"]);
    let err = stderr(&out);
    assert_eq!(code(&out), 5, "{err}");
    assert!(err.contains("No space left on device"), "{err}");
    let run = latest_run(&store);
    let history = run.join("history.jsonl");
    assert!(err.contains(&history.display().to_string()), "{err}");
    assert_no_node_left(&store);
    // What was written before the disk filled still checks.
    let check = faultline().arg("check").arg(&history).output().unwrap();
    assert!(matches!(code(&check), 0..=2), "{}", stderr(&check));
}
