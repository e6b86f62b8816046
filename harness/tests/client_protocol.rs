//! The client protocol over stdin/stdout (docs/client-protocol.md), with
//! real client programs (`sh`, `python3`) that keep to it or break it on
//! purpose, against real target-nodes started as a custom system.
//! - a client that answers well gives a valid run, with its stderr in the
//!   run's client log;
//! - bad JSON, a wrong id, an unknown type are `info` ops recording the
//!   line; every worker retired ends the run early: exit 2, the line quoted;
//! - a client that dies mid-op, or hangs past `--op-timeout`, gives `info`
//!   and is restarted, the worker under a new process id;
//! - no client process is left after a run;
//! - `#[ignore]`d (`-- --ignored`): the shipped Python client, strong mode
//!   valid, `write-concern one` + `partition-primary` shows `lost-write`.

mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use support::processes::wait_until_gone;
use support::{faultline, latest_run, stderr, stdout};

fn python3() -> bool {
    let found = std::process::Command::new("python3")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        eprintln!("skipped: python3 is not installed");
    }
    found
}

/// A test file: 3 target-nodes as a custom system, `client` as the command
/// of `[client]` (with `{script}` the given script path).
fn test_file(dir: &Path, client: &str, script: &Path, extra: &str) -> PathBuf {
    let test = dir.join("test.toml");
    std::fs::write(
        &test,
        format!(
            "system = \"custom\"\nnodes = 3\nconcurrency = 3\nrate = 100\nseed = 5\n{extra}\n\
             [db]\nstart = \"{{bin}} node --id {{id}} --listen 127.0.0.1:{{port}} --peers {{peers}} --data-dir {{data_dir}}\"\n\
             vars = {{ bin = \"{}\" }}\n\
             [client]\ncommand = '''{client}'''\nvars = {{ script = \"{}\" }}\n",
            support::FAULTLINE,
            script.display()
        ),
    )
    .unwrap();
    test
}

struct Ran {
    code: Option<i32>,
    out: String,
    run: PathBuf,
    history: Vec<serde_json::Value>,
}

fn run(dir: &Path, test: &Path, args: &[&str]) -> Ran {
    let store = dir.join("store");
    let out = faultline()
        .arg("run")
        .arg("--test")
        .arg(test)
        .args(args)
        .arg("--store")
        .arg(&store)
        .output()
        .unwrap();
    let text = format!("{}\n{}", stdout(&out), stderr(&out));
    let run = latest_run(&store);
    let history = std::fs::read_to_string(run.join("history.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        wait_until_gone(&store, Duration::from_secs(5)),
        Vec::<u32>::new(),
        "processes left"
    );
    Ran {
        code: out.status.code(),
        out: text,
        run,
        history,
    }
}

fn script(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// A register client in Python that answers every op at once from its own
/// memory (a linearizable register per process is not a shared one, so
/// only reads of 1 key by 1 worker are checked as valid) and misbehaves as
/// `MODE` says: on op number `AT` of the process.
const PY: &str = r#"
import json, os, sys, time
mode, at = sys.argv[1], int(sys.argv[2])
state = {}
n = 0
for line in sys.stdin:
    m = json.loads(line)
    if m.get("type") == "init":
        print(json.dumps({"type": "init_ok"}), flush=True)
        continue
    n += 1
    sys.stderr.write("op %d process %d\n" % (m["id"], m["process"]))
    sys.stderr.flush()
    if n == at and mode == "die":
        os._exit(3)
    if n == at and mode == "hang":
        time.sleep(30)
    if n >= at and mode == "bad-json":
        print("this is not json {", flush=True); continue
    if n >= at and mode == "wrong-id":
        print(json.dumps({"id": m["id"] + 100, "type": "ok", "value": None}), flush=True); continue
    if n >= at and mode == "bad-type":
        print(json.dumps({"id": m["id"], "type": "maybe"}), flush=True); continue
    k = m.get("key")
    if m["f"] == "read":
        v = state.get(k)
        print(json.dumps({"id": m["id"], "type": "ok", "value": v}), flush=True)
    elif m["f"] == "write":
        state[k] = m["value"]
        print(json.dumps({"id": m["id"], "type": "ok", "value": m["value"]}), flush=True)
    else:
        print(json.dumps({"id": m["id"], "type": "fail", "error": "cas-mismatch"}), flush=True)
"#;

fn infos(history: &[serde_json::Value]) -> Vec<&serde_json::Value> {
    history
        .iter()
        .filter(|o| o["type"] == "info" && o["process"] != "nemesis")
        .collect()
}

#[test]
fn every_worker_sending_bad_json_retires_and_the_run_ends_early_with_exit_2_quoting_the_line() {
    if !python3() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let py = script(dir.path(), "c.py", PY);
    let test = test_file(
        dir.path(),
        "python3 {script} bad-json 1",
        &py,
        "time-limit = \"20s\"",
    );
    let started = std::time::Instant::now();
    let ran = run(dir.path(), &test, &[]);
    assert_eq!(ran.code, Some(2), "{}", ran.out);
    assert!(started.elapsed() < Duration::from_secs(15), "ended early");
    assert!(ran.out.contains("this is not json {"), "{}", ran.out);
    assert!(ran.out.contains("retired"), "{}", ran.out);
    let results: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(ran.run.join("results.json")).unwrap())
            .unwrap();
    assert_eq!(results["valid"], "unknown");
    let reason = results["checkers"]["client-protocol"]["details"]["reason"]
        .as_str()
        .unwrap();
    assert!(reason.contains("not valid JSON"), "{reason}");
    // Each worker: 3 bad lines (restarted between them), then retired.
    let bad = infos(&ran.history);
    assert_eq!(bad.len(), 9, "{bad:?}");
    for op in &bad {
        assert_eq!(op["error"]["line"], "this is not json {", "{op}");
    }
    let invoked = ran.history.iter().filter(|o| o["type"] == "invoke").count();
    assert_eq!(invoked * 2, ran.history.len(), "every op completed");
}

#[test]
fn a_wrong_id_or_an_unknown_type_is_an_info_op_recording_the_line() {
    if !python3() {
        return;
    }
    for (mode, says) in [("wrong-id", "wrong id"), ("bad-type", "unknown type")] {
        let dir = tempfile::tempdir().unwrap();
        let py = script(dir.path(), "c.py", PY);
        let command = format!("python3 {{script}} {mode} 1");
        let test = test_file(dir.path(), &command, &py, "time-limit = \"20s\"");
        let ran = run(dir.path(), &test, &[]);
        assert_eq!(ran.code, Some(2), "{mode}: {}", ran.out);
        let bad = infos(&ran.history);
        assert!(!bad.is_empty());
        for op in bad {
            let reason = op["error"]["protocol-error"].as_str().unwrap();
            assert!(reason.contains(says), "{mode}: {op}");
            assert!(op["error"]["line"].is_string(), "{op}");
        }
    }
}

#[test]
fn a_client_dying_mid_op_is_info_restarted_and_its_worker_takes_a_new_process() {
    if !python3() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let py = script(dir.path(), "c.py", PY);
    let test = test_file(
        dir.path(),
        "python3 {script} die 5",
        &py,
        "time-limit = \"3s\"\nkeys = 1",
    );
    let ran = run(dir.path(), &test, &[]);
    let bad = infos(&ran.history);
    assert!(bad.len() >= 3, "each worker's client died: {}", ran.out);
    assert!(bad.iter().all(|o| o["error"] == "client-exited"), "{bad:?}");
    // Processes 0..3 die first; their workers go on as 3, 4, 5.
    let processes: std::collections::BTreeSet<u64> = ran
        .history
        .iter()
        .filter_map(|o| o["process"].as_u64())
        .collect();
    assert!(
        processes.contains(&3) && processes.contains(&5),
        "{processes:?}"
    );
    let log = std::fs::read_to_string(ran.run.join("client.log")).unwrap();
    assert!(log.contains("exited (exit code 3)"), "{log}");
    assert!(
        log.contains("op 1 process 0"),
        "stderr in the client log: {log}"
    );
    assert!(
        log.contains("process 3\n"),
        "the new process id reaches the client: {log}"
    );
}

#[test]
fn a_client_hanging_past_the_op_timeout_is_info_and_killed() {
    if !python3() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let py = script(dir.path(), "c.py", PY);
    let test = test_file(
        dir.path(),
        "python3 {script} hang 4",
        &py,
        "time-limit = \"3s\"\nop-timeout = \"300ms\"",
    );
    let started = std::time::Instant::now();
    let ran = run(dir.path(), &test, &[]);
    assert!(started.elapsed() < Duration::from_secs(25), "{}", ran.out);
    let timeouts: Vec<_> = infos(&ran.history)
        .into_iter()
        .filter(|o| o["error"] == "timeout")
        .collect();
    assert!(timeouts.len() >= 3, "{}", ran.out);
    let log = std::fs::read_to_string(ran.run.join("client.log")).unwrap();
    assert!(log.contains("no answer to op"), "{log}");
}

#[test]
fn a_shell_client_that_keeps_to_the_protocol_gives_a_valid_run() {
    let dir = tempfile::tempdir().unwrap();
    // Answers every write as failed and every read as ok null: the
    // register never changes, which is linearizable.
    let sh = script(
        dir.path(),
        "c.sh",
        r#"while read -r line; do
  case "$line" in
    *'"type":"init"'*) echo '{"type":"init_ok"}' ;;
    *) id=${line#*\"id\":}; id=${id%%,*}
       case "$line" in
         *'"f":"read"'*) echo "{\"id\":$id,\"type\":\"ok\",\"value\":null}" ;;
         *) echo "{\"id\":$id,\"type\":\"fail\",\"error\":\"refused\"}" ;;
       esac ;;
  esac
done
"#,
    );
    let test = test_file(dir.path(), "sh {script}", &sh, "time-limit = \"2s\"");
    let ran = run(dir.path(), &test, &[]);
    assert_eq!(ran.code, Some(0), "{}", ran.out);
    assert!(ran.history.iter().any(|o| o["type"] == "ok"));
    assert!(infos(&ran.history).is_empty());
}

#[test]
fn an_unknown_placeholder_in_client_names_the_file_and_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let test = test_file(dir.path(), "python3 {scirpt}", Path::new("x"), "");
    let out = faultline()
        .arg("run")
        .arg("--test")
        .arg(&test)
        .output()
        .unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(4), "{err}");
    assert!(
        err.contains("test.toml") && err.contains("[client] command") && err.contains("{scirpt}"),
        "{err}"
    );
}

/// The shipped Python client's test file, its nodes run by this build.
fn python_example(dir: &Path, name: &str) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let example = root.join("examples/clients/python");
    let text = std::fs::read_to_string(example.join(name))
        .unwrap()
        .replace(
            "bin = \"faultline\"",
            &format!("bin = \"{}\"", support::FAULTLINE),
        )
        .replace(
            "dir = \"examples/clients/python\"",
            &format!("dir = \"{}\"", example.display()),
        );
    let test = dir.join(name);
    std::fs::write(&test, text).unwrap();
    test
}

#[test]
#[ignore = "client protocol e2e: about 15 s; run with --ignored"]
fn the_python_client_keeps_the_strong_mode_valid_under_partitions() {
    if !python3() {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "CI needs python3"
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let test = python_example(dir.path(), "register.toml");
    let ran = run(dir.path(), &test, &["--time-limit", "10s", "--seed", "3"]);
    assert_eq!(ran.code, Some(0), "{}", ran.out);
    assert!(ran.history.iter().filter(|o| o["type"] == "ok").count() > 200);
}

#[test]
#[ignore = "client protocol e2e: about 20 s (at most 6 runs); run with --ignored"]
fn the_python_client_shows_lost_writes_of_write_concern_one_when_the_primary_is_isolated() {
    if !python3() {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "CI needs python3"
        );
        return;
    }
    // Seeds 1..=10 each showed lost-write (10 of 10): a run misses with
    // probability at most 0.26 (95% upper bound), so 6 runs all miss with
    // at most 0.26^6 < 1e-3. The first detection ends the test (one run,
    // about 18 s, so far every time).
    let mut outputs = Vec::new();
    for seed in 1..=6 {
        let dir = tempfile::tempdir().unwrap();
        let test = python_example(dir.path(), "set-lost-write.toml");
        let ran = run(dir.path(), &test, &["--seed", &seed.to_string()]);
        if ran.code == Some(1) && ran.out.contains("anomaly lost-write") {
            return;
        }
        outputs.push(ran.out);
    }
    panic!("no lost-write in 6 runs:\n{}", outputs.join("\n---\n"));
}

#[test]
#[ignore = "client protocol e2e: about 10 s; run with --ignored"]
fn the_node_js_register_client_keeps_the_strong_mode_valid() {
    let node = std::process::Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !node {
        assert_ne!(std::env::var("CI").as_deref(), Ok("true"), "CI needs node");
        eprintln!("skipped: node is not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/clients/node");
    let text = std::fs::read_to_string(root.join("register.toml"))
        .unwrap()
        .replace(
            "bin = \"faultline\"",
            &format!("bin = \"{}\"", support::FAULTLINE),
        )
        .replace(
            "dir = \"examples/clients/node\"",
            &format!("dir = \"{}\"", root.display()),
        );
    let test = dir.path().join("register.toml");
    std::fs::write(&test, text).unwrap();
    let ran = run(dir.path(), &test, &["--time-limit", "6s", "--seed", "4"]);
    assert_eq!(ran.code, Some(0), "{}", ran.out);
    assert!(ran.history.iter().any(|o| o["type"] == "ok"));
}

#[test]
#[ignore = "client protocol e2e: about 10 s; run with --ignored"]
fn a_client_table_replaces_the_clients_of_a_built_in_system_too() {
    if !python3() {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "CI needs python3"
        );
        return;
    }
    // The built-in target-node system (no [db] table): its nodes, faults
    // and checker, with the Python program as every worker's client.
    let dir = tempfile::tempdir().unwrap();
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/clients/python");
    let test = dir.path().join("test.toml");
    std::fs::write(
        &test,
        format!(
            "system = \"target-node\"\nnodes = 3\nworkload = \"register\"\nnemesis = [\"partition\"]\n\
             concurrency = 3\nrate = 100\n[client]\ncommand = \"python3 {{dir}}/client.py\"\n\
             vars = {{ dir = \"{}\" }}\n",
            example.display()
        ),
    )
    .unwrap();
    let ran = run(dir.path(), &test, &["--time-limit", "6s", "--seed", "7"]);
    assert_eq!(ran.code, Some(0), "{}", ran.out);
    assert!(ran.history.iter().filter(|o| o["type"] == "ok").count() > 100);
    let log = std::fs::read_to_string(ran.run.join("client.log")).unwrap();
    assert!(log.contains("client.py"), "{log}");
}

#[test]
fn at_the_end_a_client_sees_its_stdin_closed_then_sigterm_if_it_stays() {
    let dir = tempfile::tempdir().unwrap();
    // Keeps to the protocol, then outstays the end of its stdin.
    let sh = script(
        dir.path(),
        "c.sh",
        r#"trap 'echo got-sigterm >&2; exit 0' TERM
while read -r line; do
  case "$line" in
    *'"type":"init"'*) echo '{"type":"init_ok"}' ;;
    *) id=${line#*\"id\":}; id=${id%%,*}
       echo "{\"id\":$id,\"type\":\"fail\",\"error\":\"refused\"}" ;;
  esac
done
echo stdin-closed >&2
while true; do sleep 0.1; done
"#,
    );
    let test = test_file(dir.path(), "sh {script}", &sh, "time-limit = \"1s\"");
    let ran = run(dir.path(), &test, &[]);
    assert_eq!(ran.code, Some(0), "{}", ran.out);
    let log = std::fs::read_to_string(ran.run.join("client.log")).unwrap();
    let closed = log.find("stdin-closed").expect("stdin closed at the end");
    let term = log.find("got-sigterm").expect("SIGTERM after the grace");
    assert!(closed < term, "{log}");
}
