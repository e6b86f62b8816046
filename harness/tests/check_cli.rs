//! `faultline check` end to end: the real binary on temporary history files.
//!
//! Claims: exit code 0 for a valid history, 1 for an invalid one, 2 when the
//! time limit runs out, 3 for a bad flag or flag value, 4 for a malformed or
//! missing file (naming file:line); `--json` prints one object with `valid`,
//! `model`, `ops` and `keys`; EDN histories are read with `--format edn` or
//! detected; `--nil-read` and `--all-keys` reach the checker.

mod support;

use std::fmt::Write as _;
use std::io::Write as _;
use std::process::Output;

use serde_json::Value;
use support::{code, faultline, stderr, stdout};
use tempfile::NamedTempFile;

fn history_file(text: &str, suffix: &str) -> NamedTempFile {
    let mut file = tempfile::Builder::new().suffix(suffix).tempfile().unwrap();
    file.write_all(text.as_bytes()).unwrap();
    file.flush().unwrap();
    file
}

fn faultline_check(file: &NamedTempFile, flags: &[&str]) -> Output {
    faultline()
        .arg("check")
        .arg(file.path())
        .args(flags)
        .output()
        .expect("faultline runs")
}

/// write 1, then a read that sees 1.
const VALID: &str = r#"{"process":0,"type":"invoke","f":"write","value":1,"time":5}
{"process":0,"type":"ok","f":"write","value":1,"time":5}
{"process":1,"type":"invoke","f":"read","value":null,"time":5}
{"process":1,"type":"ok","f":"read","value":1,"time":5}
"#;

/// write 1 completes, then a read sees nothing: stale under nil-as-value,
/// fine under Knossos's convention.
const STALE_NIL: &str = r#"{"process":0,"type":"invoke","f":"write","value":1}
{"process":0,"type":"ok","f":"write","value":1}
{"process":1,"type":"invoke","f":"read","value":null}
{"process":1,"type":"ok","f":"read","value":null}
"#;

/// Keys `1` (valid), `2` (invalid) and `3` (invalid), checked in that order.
const KEYED: &str = r#"{"process":0,"type":"invoke","f":"write","key":"1","value":1}
{"process":0,"type":"ok","f":"write","key":"1","value":1}
{"process":0,"type":"invoke","f":"write","key":"2","value":1}
{"process":0,"type":"ok","f":"write","key":"2","value":1}
{"process":0,"type":"invoke","f":"write","key":"3","value":1}
{"process":0,"type":"ok","f":"write","key":"3","value":1}
{"process":1,"type":"invoke","f":"read","key":"1","value":null}
{"process":1,"type":"ok","f":"read","key":"1","value":1}
{"process":1,"type":"invoke","f":"read","key":"2","value":null}
{"process":1,"type":"ok","f":"read","key":"2","value":7}
{"process":1,"type":"invoke","f":"read","key":"3","value":null}
{"process":1,"type":"ok","f":"read","key":"3","value":7}
"#;

/// `writes` writes of distinct values, all concurrent, then two sequential
/// reads of different values with no write between them: invalid, but only
/// after trying every subset and order of the writes (millions of
/// configurations for 18 writes), so a 1 ms limit always runs out first.
fn hard_invalid_history(writes: usize) -> String {
    let mut text = String::new();
    let mut line = |p: usize, t: &str, f: &str, v: &str| {
        writeln!(
            text,
            r#"{{"process":{p},"type":"{t}","f":"{f}","value":{v}}}"#
        )
        .unwrap();
    };
    for p in 0..writes {
        line(p, "invoke", "write", &p.to_string());
    }
    for p in 0..writes {
        line(p, "ok", "write", &p.to_string());
    }
    line(writes, "invoke", "read", "null");
    line(writes, "ok", "read", "0");
    line(writes, "invoke", "read", "null");
    line(writes, "ok", "read", "1");
    text
}

#[test]
fn valid_history_exits_0_and_says_valid() {
    let file = history_file(VALID, ".jsonl");
    let out = faultline_check(&file, &["--model", "register"]);
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    assert!(stdout(&out).contains("verdict: valid"), "{}", stdout(&out));
}

#[test]
fn invalid_history_exits_1_and_explains_the_stale_read() {
    let file = history_file(STALE_NIL, ".jsonl");
    let out = faultline_check(&file, &["--model", "cas-register", "--init", "null"]);
    assert_eq!(code(&out), 1, "{}{}", stdout(&out), stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("verdict: invalid"), "{text}");
    assert!(text.contains("can't read nil: register holds 1"), "{text}");
}

#[test]
fn nil_read_unknown_flag_makes_the_stale_nil_read_valid() {
    let file = history_file(STALE_NIL, ".jsonl");
    let out = faultline_check(&file, &["--nil-read", "unknown"]);
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
}

#[test]
fn exhausted_time_limit_exits_2_with_verdict_unknown() {
    let file = history_file(&hard_invalid_history(18), ".jsonl");
    let started = std::time::Instant::now();
    let out = faultline_check(
        &file,
        &["--model", "register", "--time-limit", "1ms", "--json"],
    );
    assert_eq!(code(&out), 2, "{}{}", stdout(&out), stderr(&out));
    let json: Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(json["valid"], "unknown");
    assert!(
        json["reason"]
            .as_str()
            .is_some_and(|r| r.contains("time limit")),
        "{json}"
    );
    assert!(
        started.elapsed().as_secs() < 30,
        "the limit must stop the search promptly"
    );
}

#[test]
fn unknown_model_is_a_usage_error_exiting_3() {
    let file = history_file(VALID, ".jsonl");
    let out = faultline_check(&file, &["--model", "nope"]);
    assert_eq!(code(&out), 3, "{}{}", stdout(&out), stderr(&out));
    assert!(stderr(&out).contains("nope"), "{}", stderr(&out));
}

#[test]
fn init_that_is_not_json_is_a_usage_error_exiting_3() {
    let file = history_file(VALID, ".jsonl");
    let out = faultline_check(&file, &["--init", "notjson"]);
    assert_eq!(code(&out), 3, "{}{}", stdout(&out), stderr(&out));
    assert!(stderr(&out).contains("notjson"), "{}", stderr(&out));
}

#[test]
fn unknown_flag_and_bad_flag_values_exit_3() {
    let file = history_file(VALID, ".jsonl");
    for flags in [
        &["--frobnicate"][..],
        &["--nil-read", "maybe"],
        &["--time-limit", "soon"],
        &["--format", "yaml"],
    ] {
        let out = faultline_check(&file, flags);
        assert_eq!(code(&out), 3, "{flags:?}: {}{}", stdout(&out), stderr(&out));
    }
}

#[test]
fn init_the_model_cannot_take_exits_3() {
    let history = r#"{"process":0,"type":"invoke","f":"add","value":1}"#;
    let file = history_file(history, ".jsonl");
    let out = faultline_check(&file, &["--model", "counter", "--init", "\"x\""]);
    assert_eq!(code(&out), 3, "{}{}", stdout(&out), stderr(&out));
    assert!(stderr(&out).contains("integer"), "{}", stderr(&out));
}

#[test]
fn init_the_model_cannot_take_exits_3_even_for_an_empty_history() {
    let file = history_file("", ".jsonl");
    let out = faultline_check(&file, &["--model", "counter", "--init", "\"x\""]);
    assert_eq!(code(&out), 3, "{}{}", stdout(&out), stderr(&out));
}

#[test]
fn malformed_line_exits_4_naming_file_and_line() {
    let text = VALID.replacen(
        r#""type":"ok","f":"read""#,
        r#""type":"okay","f":"read""#,
        1,
    );
    let file = history_file(&text, ".jsonl");
    let out = faultline_check(&file, &[]);
    assert_eq!(code(&out), 4, "{}{}", stdout(&out), stderr(&out));
    let expected = format!("{}:4:", file.path().display());
    assert!(
        stderr(&out).contains(&expected),
        "wanted {expected:?} in {}",
        stderr(&out)
    );
}

#[test]
fn truncated_json_line_exits_4_naming_file_and_line() {
    let text = format!("{VALID}{{\"process\":2,\"type\":\"invoke\"\n");
    let file = history_file(&text, ".jsonl");
    let out = faultline_check(&file, &["--format", "jsonl"]);
    assert_eq!(code(&out), 4, "{}{}", stdout(&out), stderr(&out));
    let expected = format!("{}:5:", file.path().display());
    assert!(
        stderr(&out).contains(&expected),
        "wanted {expected:?} in {}",
        stderr(&out)
    );
}

#[test]
fn completion_without_invocation_exits_4() {
    let file = history_file(
        r#"{"process":0,"type":"ok","f":"read","value":1}"#,
        ".jsonl",
    );
    let out = faultline_check(&file, &[]);
    assert_eq!(code(&out), 4, "{}{}", stdout(&out), stderr(&out));
    assert!(
        stderr(&out).contains(&file.path().display().to_string()),
        "{}",
        stderr(&out)
    );
}

#[test]
fn missing_file_exits_4() {
    let file = history_file(VALID, ".jsonl");
    let path = file.path().to_path_buf();
    drop(file);
    let out = faultline().arg("check").arg(&path).output().unwrap();
    assert_eq!(code(&out), 4, "{}{}", stdout(&out), stderr(&out));
}

#[test]
fn json_output_has_valid_model_ops_and_keys() {
    let file = history_file(VALID, ".jsonl");
    let out = faultline_check(&file, &["--model", "register", "--json"]);
    assert_eq!(code(&out), 0);
    let json: Value = serde_json::from_str(stdout(&out).trim()).expect("one JSON object");
    assert_eq!(json["valid"], true);
    assert_eq!(json["model"], "register");
    assert_eq!(json["ops"], 2);
    assert!(
        json["keys"].as_object().is_some_and(|k| k.is_empty()),
        "{json}"
    );
}

#[test]
fn json_output_reports_each_key_and_the_first_invalid_one() {
    let file = history_file(KEYED, ".jsonl");
    let out = faultline_check(&file, &["--json", "--threads", "2"]);
    assert_eq!(code(&out), 1, "{}{}", stdout(&out), stderr(&out));
    let json: Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(json["valid"], false);
    assert_eq!(json["model"], "cas-register");
    assert_eq!(json["ops"], 6);
    assert_eq!(json["first_invalid_key"], "2");
    assert_eq!(json["keys"]["1"]["valid"], "valid");
    assert_eq!(json["keys"]["2"]["valid"], "invalid");
    assert_eq!(json["keys"]["3"]["valid"], "skipped");
    assert!(
        json["explanation"]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("can't read 7")),
        "{json}"
    );

    let out = faultline_check(&file, &["--json", "--all-keys"]);
    let json: Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(json["keys"]["3"]["valid"], "invalid", "{json}");
    assert_eq!(json["first_invalid_key"], "2");
}

/// A Knossos-style history: cas from nil, a read, a failed cas.
const EDN: &str = "; a Knossos-style cas-register history
[{:process 0, :type :invoke, :f :cas, :value [nil 1], :time 10}
 {:process 1, :type :invoke, :f :read, :value nil, :time 10}
 {:process 0, :type :ok, :f :cas, :value [nil 1], :time 10}
 {:process 1, :type :ok, :f :read, :value 1, :time 10}
 {:process 1, :type :invoke, :f :cas, :value [2 3]}
 {:process 1, :type :fail, :f :cas, :value [2 3]}
 {:process :nemesis, :type :info, :f :start, :value nil}]
";

#[test]
fn edn_history_is_checked_with_format_edn_and_when_detected() {
    let file = history_file(EDN, ".edn");
    for flags in [&["--format", "edn"][..], &[]] {
        let out = faultline_check(&file, flags);
        assert_eq!(code(&out), 0, "{flags:?}: {}{}", stdout(&out), stderr(&out));
    }
    let bad = history_file(&EDN.replace(":value 1, :time", ":value 2, :time"), ".edn");
    let out = faultline_check(&bad, &["--format", "edn", "--json"]);
    assert_eq!(code(&out), 1, "{}{}", stdout(&out), stderr(&out));
    let json: Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(json["ops"], 3);
}

#[test]
fn edn_file_read_as_jsonl_exits_4() {
    let file = history_file(EDN, ".edn");
    let out = faultline_check(&file, &["--format", "jsonl"]);
    assert_eq!(code(&out), 4, "{}{}", stdout(&out), stderr(&out));
}

#[test]
fn workload_append_checks_transactions_and_names_the_anomaly() {
    // T0 appends 1 to x; T1, invoked after T0 completed, reads x empty; T2
    // reads [1]. T1 missed a completed append: a G-single-realtime cycle.
    let history = history_file(
        concat!(
            "{\"process\":0,\"type\":\"invoke\",\"f\":\"txn\",\"value\":[[\"append\",\"x\",1]]}\n",
            "{\"process\":0,\"type\":\"ok\",\"f\":\"txn\",\"value\":[[\"append\",\"x\",1]]}\n",
            "{\"process\":1,\"type\":\"invoke\",\"f\":\"txn\",\"value\":[[\"r\",\"x\",null]]}\n",
            "{\"process\":1,\"type\":\"ok\",\"f\":\"txn\",\"value\":[[\"r\",\"x\",[]]]}\n",
            "{\"process\":2,\"type\":\"invoke\",\"f\":\"txn\",\"value\":[[\"r\",\"x\",null]]}\n",
            "{\"process\":2,\"type\":\"ok\",\"f\":\"txn\",\"value\":[[\"r\",\"x\",[1]]]}\n",
        ),
        ".jsonl",
    );
    let out = faultline_check(&history, &["--workload", "append"]);
    assert_eq!(code(&out), 1, "{}", stdout(&out));
    assert!(
        stdout(&out).contains("anomaly G-single"),
        "{}",
        stdout(&out)
    );
    let serial = history_file(
        concat!(
            "{\"process\":0,\"type\":\"invoke\",\"f\":\"txn\",\"value\":[[\"append\",\"x\",1]]}\n",
            "{\"process\":0,\"type\":\"ok\",\"f\":\"txn\",\"value\":[[\"append\",\"x\",1]]}\n",
            "{\"process\":1,\"type\":\"invoke\",\"f\":\"txn\",\"value\":[[\"r\",\"x\",null]]}\n",
            "{\"process\":1,\"type\":\"ok\",\"f\":\"txn\",\"value\":[[\"r\",\"x\",[1]]]}\n",
        ),
        ".jsonl",
    );
    assert_eq!(
        code(&faultline_check(&serial, &["--workload", "append"])),
        0
    );
}

#[test]
fn consistency_models_choose_what_counts_as_invalid() {
    // Two txns each read x empty, then append: a lost update, which rules out
    // snapshot isolation but not read committed.
    let history = history_file(
        concat!(
            "{\"process\":0,\"type\":\"invoke\",\"f\":\"txn\",\"value\":[[\"r\",\"x\",null],[\"append\",\"x\",1]]}\n",
            "{\"process\":1,\"type\":\"invoke\",\"f\":\"txn\",\"value\":[[\"r\",\"x\",null],[\"append\",\"x\",2]]}\n",
            "{\"process\":0,\"type\":\"ok\",\"f\":\"txn\",\"value\":[[\"r\",\"x\",[]],[\"append\",\"x\",1]]}\n",
            "{\"process\":1,\"type\":\"ok\",\"f\":\"txn\",\"value\":[[\"r\",\"x\",[]],[\"append\",\"x\",2]]}\n",
            "{\"process\":2,\"type\":\"invoke\",\"f\":\"txn\",\"value\":[[\"r\",\"x\",null]]}\n",
            "{\"process\":2,\"type\":\"ok\",\"f\":\"txn\",\"value\":[[\"r\",\"x\",[1,2]]]}\n",
        ),
        ".jsonl",
    );
    let strict = faultline_check(&history, &["--workload", "append"]);
    assert_eq!(code(&strict), 1, "{}", stdout(&strict));
    let weak = faultline_check(
        &history,
        &[
            "--workload",
            "append",
            "--consistency-models",
            "read-committed",
        ],
    );
    assert_eq!(code(&weak), 0, "{}", stdout(&weak));
    let bad = faultline_check(
        &history,
        &["--workload", "append", "--consistency-models", "bogus"],
    );
    assert_eq!(code(&bad), 3);
}

#[test]
fn workload_rw_register_finds_a_stale_nil_read_and_names_it() {
    // T0 writes x = 1 and completes; T1, invoked after, reads x as nil.
    let history = history_file(
        concat!(
            "{\"process\":0,\"type\":\"invoke\",\"f\":\"txn\",\"value\":[[\"w\",\"x\",1]]}\n",
            "{\"process\":0,\"type\":\"ok\",\"f\":\"txn\",\"value\":[[\"w\",\"x\",1]]}\n",
            "{\"process\":1,\"type\":\"invoke\",\"f\":\"txn\",\"value\":[[\"r\",\"x\",null]]}\n",
            "{\"process\":1,\"type\":\"ok\",\"f\":\"txn\",\"value\":[[\"r\",\"x\",null]]}\n",
        ),
        ".jsonl",
    );
    let out = faultline_check(&history, &["--workload", "rw-register"]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("checker rw-register"), "{text}");
    assert!(text.contains("anomaly G-single-realtime: "), "{text}");
    let bad = faultline_check(
        &history,
        &["--workload", "rw-register", "--register-order", "sideways"],
    );
    assert_eq!(code(&bad), 3, "{}", stderr(&bad));
}

#[test]
fn a_bad_micro_op_exits_4_naming_file_line_and_field() {
    let history = history_file(
        concat!(
            "{\"process\":0,\"type\":\"invoke\",\"f\":\"txn\",\"value\":[[\"append\",\"x\",1]]}\n",
            "{\"process\":0,\"type\":\"ok\",\"f\":\"txn\",\"value\":[[\"append\",\"x\",\"one\"]]}\n",
        ),
        ".jsonl",
    );
    let out = faultline_check(&history, &["--workload", "append"]);
    assert_eq!(code(&out), 4, "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "{}:2: field `value`: micro-op 1: appended values must be integers",
            history.path().display()
        )),
        "{err}"
    );
}

/// `--out DIR` turns a checked history (here imported from EDN) into a run
/// directory with the report, and never writes into a non-empty directory.
#[test]
fn out_writes_a_run_directory_with_the_report_for_an_imported_history() {
    let edn = history_file(
        "{:process 0 :type :invoke :f :write :value 1}\n{:process 0 :type :ok :f :write :value 1}\n{:process 1 :type :invoke :f :read :value nil}\n{:process 1 :type :ok :f :read :value 2}\n",
        ".edn",
    );
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("imported");
    let out_arg = out_dir.to_str().unwrap();
    let out = faultline_check(&edn, &["--model", "register", "--out", out_arg]);
    assert_eq!(code(&out), 1, "{}{}", stdout(&out), stderr(&out));
    let history = std::fs::read_to_string(out_dir.join("history.jsonl")).unwrap();
    assert_eq!(history.lines().count(), 4, "{history}");
    assert!(history
        .lines()
        .all(|l| serde_json::from_str::<Value>(l).is_ok()));
    let results: Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("results.json")).unwrap())
            .unwrap();
    assert_eq!(results["valid"], false, "Jepsen's :valid? false");
    assert_eq!(results["anomalies"][0]["kind"], "not-linearizable");
    let report = std::fs::read_to_string(out_dir.join("report.html")).unwrap();
    assert!(report.contains("not-linearizable"));
    assert!(out_dir.join("junit.xml").is_file());
    // Again into the same, now non-empty, directory: refused, nothing touched.
    let again = faultline_check(&edn, &["--model", "register", "--out", out_arg]);
    assert_eq!(code(&again), 3, "{}", stderr(&again));
    assert!(stderr(&again).contains("not empty"), "{}", stderr(&again));
    assert_eq!(
        std::fs::read_to_string(out_dir.join("history.jsonl")).unwrap(),
        history
    );
}

#[test]
fn write_skew_with_no_later_read_is_invalid_under_serializable() {
    // T0 appends x and reads y empty; T1 appends y and reads x empty,
    // concurrently. Nothing ever reads x or y again.
    let history = history_file(
        concat!(
            "{\"process\":0,\"type\":\"invoke\",\"f\":\"txn\",\"value\":[[\"append\",\"x\",1],[\"r\",\"y\",null]]}\n",
            "{\"process\":1,\"type\":\"invoke\",\"f\":\"txn\",\"value\":[[\"append\",\"y\",1],[\"r\",\"x\",null]]}\n",
            "{\"process\":0,\"type\":\"ok\",\"f\":\"txn\",\"value\":[[\"append\",\"x\",1],[\"r\",\"y\",[]]]}\n",
            "{\"process\":1,\"type\":\"ok\",\"f\":\"txn\",\"value\":[[\"append\",\"y\",1],[\"r\",\"x\",[]]]}\n",
        ),
        ".jsonl",
    );
    let flags = [
        "--workload",
        "append",
        "--consistency-models",
        "serializable",
    ];
    let out = faultline_check(&history, &flags);
    assert_eq!(code(&out), 1, "{}", stdout(&out));
    assert!(
        stdout(&out).contains("anomaly G2-item: "),
        "{}",
        stdout(&out)
    );
    let si = [
        "--workload",
        "append",
        "--consistency-models",
        "snapshot-isolation",
    ];
    assert_eq!(code(&faultline_check(&history, &si)), 0);
}

#[test]
fn elles_si_without_g_single_history_is_invalid_with_g2_item() {
    // Our own transcription of the cycle in Elle's
    // histories/si-without-g-single.edn: T3 and T4 each miss the other's
    // never-read append (keys 6 and 9).
    let history = history_file(
        concat!(
            "{:index 0, :type :invoke, :process 2, :f :txn, :value [[:append 9 2]]}\n",
            "{:index 1, :type :ok, :process 2, :f :txn, :value [[:append 9 2]]}\n",
            "{:index 2, :type :invoke, :process 4, :f :txn, :value [[:append 8 1] [:r 9 nil]]}\n",
            "{:index 3, :type :ok, :process 4, :f :txn, :value [[:append 8 1] [:r 9 nil]]}\n",
            "{:index 4, :type :invoke, :process 7, :f :txn, :value [[:r 6 nil] [:r 8 nil] [:append 9 5]]}\n",
            "{:index 5, :type :ok, :process 7, :f :txn, :value [[:r 6 nil] [:r 8 nil] [:append 9 5]]}\n",
            "{:index 6, :type :invoke, :process 9, :f :txn, :value [[:append 6 2] [:r 9 nil]]}\n",
            "{:index 7, :type :ok, :process 9, :f :txn, :value [[:append 6 2] [:r 9 [2]]]}\n",
        ),
        ".edn",
    );
    for model in ["serializable", "repeatable-read"] {
        let flags = ["--workload", "append", "--consistency-models", model];
        let out = faultline_check(&history, &flags);
        assert_eq!(code(&out), 1, "{model}: {}", stdout(&out));
        assert!(
            stdout(&out).contains("anomaly G2-item: "),
            "{}",
            stdout(&out)
        );
    }
    let si = [
        "--workload",
        "append",
        "--consistency-models",
        "snapshot-isolation",
    ];
    assert_eq!(code(&faultline_check(&history, &si)), 0);
}

#[test]
fn anomalies_flag_alone_decides_what_counts_as_invalid() {
    let history = history_file(
        concat!(
            "{\"process\":0,\"type\":\"invoke\",\"f\":\"txn\",\"value\":[[\"append\",\"x\",1],[\"r\",\"y\",null]]}\n",
            "{\"process\":1,\"type\":\"invoke\",\"f\":\"txn\",\"value\":[[\"append\",\"y\",1],[\"r\",\"x\",null]]}\n",
            "{\"process\":0,\"type\":\"ok\",\"f\":\"txn\",\"value\":[[\"append\",\"x\",1],[\"r\",\"y\",[]]]}\n",
            "{\"process\":1,\"type\":\"ok\",\"f\":\"txn\",\"value\":[[\"append\",\"y\",1],[\"r\",\"x\",[]]]}\n",
        ),
        ".jsonl",
    );
    let with = |anomalies: &str| {
        code(&faultline_check(
            &history,
            &["--workload", "append", "--anomalies", anomalies],
        ))
    };
    assert_eq!(with("G0,G1"), 0);
    assert_eq!(with("G2"), 1);
    assert_eq!(with("G-single,G2-item"), 1);
    assert_eq!(with("G7"), 3);
}

#[test]
fn elles_rw_register_lost_update_is_a_lost_update_not_a_panic() {
    // Elle's four-line example: both txns read x = 0, a value no txn wrote
    // (the unrecorded initial state), and both wrote x.
    let history = history_file(
        concat!(
            "{:index 0, :time 0, :type :invoke, :process 0, :f :txn, :value [[:r :x nil] [:w :x 1]]}\n",
            "{:index 1, :time 1, :type :ok, :process 0, :f :txn, :value [[:r :x 0] [:w :x 1]]}\n",
            "{:index 2, :time 2, :type :invoke, :process 1, :f :txn, :value [[:r :x nil] [:w :x 2]]}\n",
            "{:index 3, :time 3, :type :ok, :process 1, :f :txn, :value [[:r :x 0] [:w :x 2]]}\n",
        ),
        ".edn",
    );
    let out = faultline_check(&history, &["--workload", "rw-register"]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("anomaly lost-update: T0, T2"), "{text}");
    assert!(
        !text.contains("garbage-read"),
        "the one unwritten value of a key is its initial state: {text}"
    );
}

#[test]
fn two_unwritten_values_of_one_key_are_garbage_reads() {
    let history = history_file(
        concat!(
            "{\"process\":0,\"type\":\"invoke\",\"f\":\"txn\",\"value\":[[\"r\",\"x\",null]]}\n",
            "{\"process\":0,\"type\":\"ok\",\"f\":\"txn\",\"value\":[[\"r\",\"x\",7]]}\n",
            "{\"process\":1,\"type\":\"invoke\",\"f\":\"txn\",\"value\":[[\"r\",\"x\",null]]}\n",
            "{\"process\":1,\"type\":\"ok\",\"f\":\"txn\",\"value\":[[\"r\",\"x\",8]]}\n",
        ),
        ".jsonl",
    );
    let out = faultline_check(&history, &["--workload", "rw-register"]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("anomaly garbage-read: T0 read key x = 7"),
        "{text}"
    );
    assert!(
        text.contains("anomaly garbage-read: T2 read key x = 8"),
        "{text}"
    );
}

#[test]
fn a_history_without_client_ops_is_unknown_for_every_workload() {
    let nemesis_only = concat!(
        "{\"process\":\"nemesis\",\"type\":\"info\",\"f\":\"start-partition\",\"value\":null}\n",
        "{\"process\":\"nemesis\",\"type\":\"info\",\"f\":\"stop-partition\",\"value\":null}\n",
    );
    for text in ["", nemesis_only] {
        let history = history_file(text, ".jsonl");
        for workload in ["register", "set", "append", "rw-register"] {
            let out = faultline_check(&history, &["--workload", workload]);
            assert_eq!(code(&out), 2, "{workload}: {}", stderr(&out));
            let said = stdout(&out);
            assert!(
                said.contains("unknown: no operations"),
                "{workload}: {said}"
            );
            assert!(said.contains("verdict: unknown"), "{workload}: {said}");
        }
    }
}

#[test]
fn integers_beyond_64_bits_are_refused_alike_in_jsonl_and_edn() {
    let jsonl = history_file(
        concat!(
            "{\"process\":0,\"type\":\"invoke\",\"f\":\"write\",\"value\":100000000000000000000}\n",
            "{\"process\":0,\"type\":\"ok\",\"f\":\"write\",\"value\":100000000000000000000}\n",
            "{\"process\":0,\"type\":\"invoke\",\"f\":\"read\",\"value\":null}\n",
            "{\"process\":0,\"type\":\"ok\",\"f\":\"read\",\"value\":100000000000000000001}\n",
        ),
        ".jsonl",
    );
    let edn = history_file(
        "{:process 0, :type :invoke, :f :write, :value 100000000000000000000}\n",
        ".edn",
    );
    for file in [&jsonl, &edn] {
        let out = faultline_check(file, &[]);
        assert_eq!(code(&out), 4, "{}", stdout(&out));
        let err = stderr(&out);
        let at = format!(
            "{}:1: integer 100000000000000000000 is too large",
            file.path().display()
        );
        assert!(err.contains(&at), "{err}");
    }
}

/// Asserts `faultline check FILE --workload W` refuses `file` with exit 4
/// and a message naming the file's line `line` and containing `says`.
fn assert_refused_at(file: &NamedTempFile, workload: &str, line: usize, says: &str) {
    let out = faultline_check(file, &["--workload", workload]);
    assert_eq!(code(&out), 4, "{workload}: {}", stdout(&out));
    let err = stderr(&out);
    let at = format!("{}:{line}: ", file.path().display());
    assert!(
        err.contains(&at) && err.contains(says),
        "{workload}: want {at}…{says}, got {err}"
    );
}

#[test]
fn malformed_input_is_exit_4_with_its_line_for_every_workload() {
    // A blank line and a nemesis op first, so op index and line differ.
    let head = "\n{\"process\":\"nemesis\",\"type\":\"info\",\"f\":\"kill\",\"value\":null}\n";
    let txn = |t: &str| {
        format!("{{\"process\":0,\"type\":\"{t}\",\"f\":\"txn\",\"value\":[[\"r\",\"x\",null]]}}\n")
    };
    let twice = history_file(
        &format!("{head}{}{}", txn("invoke"), txn("invoke")),
        ".jsonl",
    );
    let orphan = history_file(&format!("{head}{}", txn("ok")), ".jsonl");
    let not_txn = history_file(
        &format!("{head}{{\"process\":0,\"type\":\"invoke\",\"f\":\"read\",\"value\":null}}\n"),
        ".jsonl",
    );
    for workload in ["append", "rw-register"] {
        assert_refused_at(&twice, workload, 4, "second txn");
        assert_refused_at(&orphan, workload, 3, "no outstanding invocation");
        assert_refused_at(&not_txn, workload, 3, "\"read\" is not \"txn\"");
    }
    assert_refused_at(&twice, "register", 4, "still outstanding");
    assert_refused_at(&twice, "set", 3, "client ops are \"add\" and \"read\"");
    assert_refused_at(&orphan, "set", 3, "no outstanding invocation");
    // EDN: a pairing error found by the checker, on the form's line.
    let edn = history_file(
        "[{:process 0, :type :invoke, :f :read, :value nil}\n\n {:process 0, :type :invoke,\n  :f :read, :value nil}]\n",
        ".edn",
    );
    assert_refused_at(&edn, "register", 3, "still outstanding");
}

#[test]
fn a_configuration_budget_bounds_the_search_whatever_the_memory_limit() {
    let file = history_file(&hard_invalid_history(18), ".jsonl");
    let out = faultline_check(
        &file,
        &[
            "--model",
            "register",
            "--max-configurations",
            "5000",
            "--memory-limit-mb",
            "4096",
        ],
    );
    assert_eq!(code(&out), 2, "{}{}", stdout(&out), stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("unknown: explored 5000 configurations, its budget"),
        "{text}"
    );
    assert!(
        text.contains("the furthest linearizable prefix held"),
        "{text}"
    );
}

#[test]
fn ctrl_c_during_a_check_gives_unknown_with_how_far_it_got() {
    let file = history_file(&hard_invalid_history(22), ".jsonl");
    let child = faultline()
        .args(["check", "--model", "register", "--time-limit", "60s"])
        .arg(file.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(700));
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(code(&out), 2, "{}{}", stdout(&out), stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("unknown: interrupted; the furthest linearizable prefix held"),
        "{text}"
    );
}

/// 200 sequential writes, each read back, then a read of the 7th value.
fn stale_read_among_many() -> String {
    let mut text = String::new();
    let mut line = |p: usize, t: &str, f: &str, v: &str| {
        writeln!(
            text,
            r#"{{"process":{p},"type":"{t}","f":"{f}","value":{v}}}"#
        )
        .unwrap();
    };
    for v in 1..=200 {
        line(0, "invoke", "write", &v.to_string());
        line(0, "ok", "write", &v.to_string());
        line(1, "invoke", "read", "null");
        line(1, "ok", "read", &v.to_string());
    }
    line(2, "invoke", "read", "null");
    line(2, "ok", "read", "7");
    text
}

#[test]
fn an_invalid_key_is_shrunk_to_its_core_and_shown_first() {
    let file = history_file(&stale_read_among_many(), ".jsonl");
    let out = faultline_check(&file, &["--model", "register"]);
    assert_eq!(code(&out), 1, "{}{}", stdout(&out), stderr(&out));
    let text = stdout(&out);
    let core = text
        .split("core: these 3 ops alone are not linearizable")
        .nth(1)
        .unwrap_or_else(|| panic!("no 3-op core in:\n{text}"));
    let lines: Vec<&str> = core.lines().skip(1).take(3).collect();
    assert!(lines[0].contains("write 7"), "{text}");
    assert!(lines[1].contains("write"), "{text}");
    assert!(lines[2].contains("read 7"), "{text}");
    assert!(
        text.find("core:") < text.find("cannot linearize"),
        "the core comes first: {text}"
    );
    let json = faultline_check(&file, &["--model", "register", "--json"]);
    let value: serde_json::Value = serde_json::from_str(stdout(&json).trim()).unwrap();
    assert_eq!(
        value["explanation"]["core"].as_array().map(Vec::len),
        Some(3)
    );
    let off = faultline_check(&file, &["--model", "register", "--shrink-time", "0"]);
    assert!(!stdout(&off).contains("core:"), "{}", stdout(&off));
}
