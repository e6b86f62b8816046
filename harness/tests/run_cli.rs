//! `faultline run` end to end, with real nodes on loopback:
//! - the strong mode without faults is valid, and the run leaves a
//!   well-formed store (test.json that reads back, a history that checks,
//!   results.json, node logs) and no node process;
//! - a harness SIGKILLed mid-run leaves no node process behind, and its
//!   partial history still checks;
//! - unknown faults, bad flags and bad test files are usage (3) and
//!   bad-input (4) errors.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use harness::test_spec::TestSpec;
use support::processes::{processes_mentioning, wait_until_gone};
use support::{faultline, faultline_in, latest_run, spawn_in, stderr, stdout, temp_store};

/// The latest run's history, once it holds at least `lines` lines (30 s at most).
fn wait_for_history(store: &Path, lines: usize) -> PathBuf {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        assert!(
            Instant::now() < deadline,
            "the run never recorded {lines} lines"
        );
        if let Ok(run) = std::fs::canonicalize(store.join("latest")) {
            let path = run.join("history.jsonl");
            if std::fs::read_to_string(&path).map_or(0, |t| t.lines().count()) >= lines {
                return path;
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn strong_mode_without_faults_is_valid_and_leaves_a_well_formed_store() {
    let (_dir, store) = temp_store();
    let out = faultline_in(
        &store,
        &[
            "run",
            "--nodes",
            "3",
            "--time-limit",
            "5s",
            "--rate",
            "200",
            "--seed",
            "11",
        ],
    );
    let stdout = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{}", stderr(&out));
    assert!(stdout.contains("verdict: valid"), "{stdout}");
    assert!(stdout.contains("run directory: "), "{stdout}");

    let run = latest_run(&store);
    let spec = TestSpec::load(&run.join("test.json")).expect("test.json is a valid --test file");
    assert_eq!(spec.seed, Some(11));
    assert_eq!(spec.nodes, 3);
    let results: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("results.json")).unwrap()).unwrap();
    assert_eq!(results["valid"], serde_json::json!(true));
    assert!(
        results["stats"]["ops"]["ok"].as_u64().unwrap() > 100,
        "{results}"
    );
    // The wall clock of history time 0: after the run directory was made
    // (its name is that moment, to the millisecond), within a minute of it.
    let start = results["start_unix_ns"].as_u64().expect("start_unix_ns");
    let made = results::walltime::run_dir_start_ns(&run.file_name().unwrap().to_string_lossy())
        .expect("a run directory name") as u64;
    assert!(
        (made..made + 60_000_000_000).contains(&start),
        "start {start}, directory made {made}"
    );
    assert_eq!(
        results["start_time"].as_str(),
        Some(results::walltime::rfc3339(start).as_str())
    );
    for node in ["n1", "n2", "n3"] {
        let log = std::fs::read_to_string(run.join("nodes").join(format!("{node}.log"))).unwrap();
        assert!(!log.is_empty(), "{node}'s log is empty");
    }
    let check = faultline()
        .arg("check")
        .arg(run.join("history.jsonl"))
        .args(["--model", "cas-register"])
        .output()
        .unwrap();
    assert_eq!(check.status.code(), Some(0), "{}", support::stdout(&check));
    assert_eq!(
        wait_until_gone(&store, Duration::from_secs(5)),
        Vec::<u32>::new()
    );
}

#[test]
fn a_sigkilled_harness_leaves_no_nodes_and_a_history_that_checks() {
    let (_dir, store) = temp_store();
    let mut harness = spawn_in(
        &store,
        &[
            "run",
            "--nodes",
            "3",
            "--time-limit",
            "60s",
            "--rate",
            "300",
            "--seed",
            "5",
        ],
        Stdio::null(),
    );
    // Wait until the run is well under way: some hundreds of ops recorded.
    let history = wait_for_history(&store, 400);
    harness.kill().unwrap(); // SIGKILL: no teardown code runs in the harness.
    harness.wait().unwrap();

    let left = wait_until_gone(&store, Duration::from_secs(10));
    assert!(
        left.is_empty(),
        "node processes survived the harness: {left:?}"
    );
    let run_dir = history.parent().unwrap().to_path_buf();
    assert!(
        run_dir.join("state.json").exists(),
        "a killed run keeps its state file"
    );
    let cleanup = faultline()
        .arg("cleanup")
        .arg("--store")
        .arg(&store)
        .output()
        .unwrap();
    assert_eq!(cleanup.status.code(), Some(0));
    assert!(
        !run_dir.join("state.json").exists(),
        "cleanup forgets the run"
    );
    let check = faultline()
        .arg("check")
        .arg(&history)
        .args(["--model", "cas-register"])
        .output()
        .unwrap();
    assert_eq!(
        check.status.code(),
        Some(0),
        "the partial history should check valid: {}{}",
        stdout(&check),
        stderr(&check)
    );
}

#[test]
fn unknown_faults_and_bad_flags_are_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        vec!["run", "--nemesis", "meteor"],
        vec!["run", "--nodes", "0"],
        vec!["run", "--time-limit", "soon"],
        vec!["run", "--write-concern", "most"],
    ] {
        let out = faultline()
            .args(&args)
            .arg("--store")
            .arg(dir.path())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(3), "{args:?}: {}", stderr(&out));
    }
    assert!(
        std::fs::read_dir(dir.path()).unwrap().next().is_none(),
        "no run was started"
    );
}

#[test]
fn remote_hosts_that_cannot_run_the_test_are_usage_errors_naming_why() {
    let dir = tempfile::tempdir().unwrap();
    for (args, says) in [
        (
            vec!["run", "--nodes", "3", "--hosts", "h1,h2"],
            "2 host(s) but nodes is 3",
        ),
        (
            vec!["run", "--nodes", "1", "--hosts", "h1", "--nemesis", "slow"],
            "unsupported with --hosts",
        ),
        (
            vec!["run", "--nodes", "1", "--hosts", "h1", "--system", "redis"],
            "--hosts runs target-node and etcd only",
        ),
        (vec!["run", "--nodes", "1", "--hosts", "@h1"], "empty user"),
    ] {
        let out = faultline()
            .args(&args)
            .arg("--store")
            .arg(dir.path())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(3), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(says), "{args:?}: {}", stderr(&out));
    }
    assert!(
        std::fs::read_dir(dir.path()).unwrap().next().is_none(),
        "no run was started"
    );
}

#[test]
fn a_bad_test_file_is_bad_input_naming_the_key_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("test.toml");
    std::fs::write(&file, "nodes = 3\nwrite-concerns = \"one\"\n").unwrap();
    let out = faultline()
        .arg("run")
        .arg("--test")
        .arg(&file)
        .output()
        .unwrap();
    let stderr = stderr(&out);
    assert_eq!(out.status.code(), Some(4), "{stderr}");
    assert!(
        stderr.contains("write-concerns") && stderr.contains("line 2"),
        "{stderr}"
    );
}

#[test]
fn ctrl_c_stops_the_run_tears_the_nodes_down_and_keeps_the_history() {
    use nix::sys::signal::{kill, Signal};
    use nix::unistd::Pid;

    let (_dir, store) = temp_store();
    let harness = spawn_in(
        &store,
        &[
            "run",
            "--nodes",
            "3",
            "--time-limit",
            "60s",
            "--rate",
            "300",
            "--seed",
            "6",
        ],
        Stdio::piped(),
    );
    let history = wait_for_history(&store, 200);
    kill(Pid::from_raw(harness.id() as i32), Signal::SIGINT).unwrap();
    let out = harness.wait_with_output().unwrap();
    let stderr = stderr(&out);
    assert_eq!(out.status.code(), Some(5), "{stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");
    assert!(
        processes_mentioning(&store).is_empty(),
        "nodes left after Ctrl-C"
    );
    let text = std::fs::read_to_string(&history).unwrap();
    assert!(
        text.ends_with('\n'),
        "the history ends with a complete line"
    );
    assert!(text.lines().count() >= 200);
}

#[test]
fn an_external_system_from_command_templates_runs_like_the_shipped_node() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let test = dir.path().join("external.toml");
    std::fs::write(
        &test,
        format!(
            "name = \"external\"\nnodes = 3\ntime-limit = \"3s\"\nrate = 200\nseed = 9\n\
             [db]\nstart = \"{{bin}} node --id {{id}} --listen 127.0.0.1:{{port}} --peers {{peers}} --data-dir {{data_dir}}\"\n\
             vars = {{ bin = \"{}\" }}\n",
            support::FAULTLINE
        ),
    )
    .unwrap();
    let out = faultline()
        .arg("run")
        .arg("--test")
        .arg(&test)
        .arg("--store")
        .arg(&store)
        .output()
        .unwrap();
    let stdout = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{}", stderr(&out));
    assert!(stdout.contains("verdict: valid"), "{stdout}");
    let run = latest_run(&store);
    let spec = TestSpec::load(&run.join("test.json")).unwrap();
    assert!(spec.db.is_some(), "test.json keeps the [db] table");
    assert_eq!(
        wait_until_gone(&store, Duration::from_secs(5)),
        Vec::<u32>::new()
    );
}

#[test]
fn cleanup_kills_what_a_killed_run_left_and_forgets_the_run() {
    use std::os::unix::process::CommandExt;

    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let run = store.join("left-behind").join("20261126T000000.000Z");
    std::fs::create_dir_all(&run).unwrap();
    // A stand-in for a node that outlived its harness: its command line
    // names its data dir in the run directory, and it leads its own group.
    let data_dir = run.join("nodes/n1/data");
    let mut node = Command::new("sh")
        .arg("-c")
        .arg("sleep 60; echo \"$0\"")
        .arg(&data_dir)
        .process_group(0)
        .spawn()
        .unwrap();
    let state =
        serde_json::json!({"harness_pid": 999_999_999u32, "nodes": {"n1": node.id()}, "net": null});
    std::fs::write(run.join("state.json"), state.to_string()).unwrap();

    let out = faultline()
        .arg("cleanup")
        .arg("--store")
        .arg(&store)
        .output()
        .unwrap();
    let stdout = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", stderr(&out));
    assert!(stdout.contains("killed n1"), "{stdout}");
    let status = node.wait().unwrap();
    assert!(!status.success(), "the leftover node was killed");
    assert!(!run.join("state.json").exists(), "the run is forgotten");
    let again = faultline()
        .arg("cleanup")
        .arg("--store")
        .arg(&store)
        .output()
        .unwrap();
    assert!(support::stdout(&again).contains("nothing to clean up"));
}

#[test]
fn a_run_that_ends_normally_leaves_no_state_file() {
    let (_dir, store) = temp_store();
    let out = faultline_in(
        &store,
        &[
            "run",
            "--nodes",
            "3",
            "--time-limit",
            "2s",
            "--rate",
            "100",
            "--seed",
            "3",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(!latest_run(&store).join("state.json").exists());
}

#[test]
fn systems_lists_every_system_with_its_workloads_faults_and_options() {
    let out = faultline().arg("systems").output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    for expected in [
        "target-node:",
        "custom:",
        "workloads: register, set, append, rw-register",
        "partition-ring",
        "--write-concern",
        "one|majority|all",
        "--node-bin",
    ] {
        assert!(stdout.contains(expected), "{expected}: {stdout}");
    }
}

#[test]
fn an_unknown_or_unfit_system_is_a_usage_error_naming_what_there_is() {
    let dir = tempfile::tempdir().unwrap();
    for (args, says) in [
        (
            vec!["run", "--system", "no-such-system"],
            "target-node, custom",
        ),
        (
            vec!["run", "--system", "etcd", "--nemesis", "clock"],
            "does not support fault \"clock\"",
        ),
        (vec!["run", "--system", "custom"], "[db]"),
        (
            vec![
                "run",
                "--workload",
                "append",
                "--consistency-models",
                "bogus",
            ],
            "bogus",
        ),
        (vec!["run", "--op-timeout", "0s"], "op-timeout"),
    ] {
        let out = faultline()
            .args(&args)
            .arg("--store")
            .arg(dir.path())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "{args:?}: {stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
    assert!(
        std::fs::read_dir(dir.path()).unwrap().next().is_none(),
        "no run was started"
    );
}
