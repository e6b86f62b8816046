//! The run report on hand-made run directories.
//!
//! Modules: fixtures below build run directories with `results::Store`; the
//! tests check the files exist, parse and say what the run found.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use checker::history::{Op, OpType, Process};
use checker::Validity;
use results::{write_report, Anomaly, CheckerResult, Results, RunDir, Store};
use serde_json::{json, Value};

/// A store under the temp dir, removed on drop.
struct TempStore(PathBuf);

impl TempStore {
    fn new(label: &str) -> TempStore {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!(
            "faultline-report-{label}-{}-{n}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&path);
        TempStore(path)
    }
}

impl Drop for TempStore {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Builds a history with indices and times (ms → ns) in line order.
#[derive(Default)]
struct History(Vec<Op>);

impl History {
    fn client(
        self,
        ms: u64,
        process: u64,
        op_type: OpType,
        f: &str,
        key: &str,
        value: Value,
    ) -> Self {
        let mut op = Op::invoke(process, f, value).with_key(key);
        op.op_type = op_type;
        if op_type != OpType::Invoke {
            op.node = Some("n1".into());
        }
        self.push(ms, op)
    }

    fn nemesis(self, ms: u64, f: &str, value: Value) -> Self {
        let mut op = Op::invoke(0, f, value);
        op.process = Process::Nemesis;
        op.op_type = OpType::Info;
        self.push(ms, op)
    }

    fn push(mut self, ms: u64, mut op: Op) -> Self {
        op.index = self.0.len() as u64;
        op.time = Some(ms * 1_000_000);
        self.0.push(op);
        self
    }

    fn write(&self, run: &RunDir) {
        let lines: Vec<String> = self
            .0
            .iter()
            .map(|op| serde_json::to_string(op).unwrap())
            .collect();
        std::fs::write(run.history_path(), lines.join("\n") + "\n").unwrap();
    }
}

fn test_json() -> Value {
    json!({"workload": "register", "nodes": 3, "seed": 7, "nemesis": ["partition"], "time-limit": "1s"})
}

/// A valid register run: two processes, no faults.
fn valid_run(store: &Store) -> RunDir {
    let run = store.create_run("register-valid").unwrap();
    let mut history = History::default();
    for i in 0..20u64 {
        let t = i * 10;
        history = history
            .client(t, 0, OpType::Invoke, "write", "k1", json!(i))
            .client(t + 1, 1, OpType::Invoke, "read", "k1", json!(null))
            .client(t + 3, 0, OpType::Ok, "write", "k1", json!(i))
            .client(t + 4, 1, OpType::Ok, "read", "k1", json!(i));
    }
    history.write(&run);
    run.write_test_json(&test_json()).unwrap();
    let checkers = [(
        "linearizable".to_string(),
        CheckerResult::new(Validity::Valid),
    )]
    .into();
    let results = Results::compose(checkers, Vec::new(), results::stats(&history.0)).with_seed(7);
    run.write_results(&results).unwrap();
    run
}

/// An invalid run: a partition, a stale read on k1 that is not linearizable,
/// and a lost write of a set.
fn invalid_run(store: &Store) -> RunDir {
    let run = store.create_run("register-invalid").unwrap();
    let history = History::default()
        .client(0, 0, OpType::Invoke, "write", "k1", json!(1))
        .client(5, 0, OpType::Ok, "write", "k1", json!(1))
        .nemesis(
            10,
            "partition",
            json!({"n1": ["n3"], "n2": ["n3"], "n3": ["n1", "n2"]}),
        )
        .client(20, 1, OpType::Invoke, "write", "k1", json!(2))
        .client(25, 1, OpType::Ok, "write", "k1", json!(2))
        .client(30, 2, OpType::Invoke, "read", "k1", json!(null))
        .client(35, 2, OpType::Ok, "read", "k1", json!(1))
        .client(40, 3, OpType::Invoke, "add", "s", json!(9))
        .client(41, 3, OpType::Ok, "add", "s", json!(9))
        .client(45, 4, OpType::Invoke, "write", "k1", json!(3))
        .client(60, 4, OpType::Info, "write", "k1", json!(3))
        .nemesis(70, "heal", json!(null))
        .client(80, 3, OpType::Invoke, "read", "s", json!(null))
        .client(82, 3, OpType::Ok, "read", "s", json!([]))
        .client(84, 2, OpType::Invoke, "read", "k1", json!(null))
        .client(86, 2, OpType::Fail, "read", "k1", json!(null));
    history.write(&run);
    run.write_test_json(&test_json()).unwrap();
    let explanation = json!({
        "message": "can't read 1: register holds 2",
        "op": {"index": 5, "complete_index": 6, "process": 2, "type": "ok", "f": "read", "value": 1, "time": 30_000_000, "complete_time": 35_000_000},
        "last_ok": {"index": 3, "complete_index": 4, "process": 1, "type": "ok", "f": "write", "value": 2, "time": 20_000_000, "complete_time": 25_000_000},
        "prefix": [
            {"index": 0, "complete_index": 1, "process": 0, "type": "ok", "f": "write", "value": 1, "time": 0, "complete_time": 5_000_000},
            {"index": 3, "complete_index": 4, "process": 1, "type": "ok", "f": "write", "value": 2, "time": 20_000_000, "complete_time": 25_000_000}
        ],
        "states": [2]
    });
    let linearizable = CheckerResult::new(Validity::Invalid)
        .with_anomalies("not-linearizable", 1)
        .with_details(json!({"valid": false, "model": "register", "keys": {"k1": {"valid": "invalid", "explanation": explanation}}}));
    let set = CheckerResult::new(Validity::Invalid).with_anomalies("lost-write", 1);
    let anomalies = vec![
        Anomaly {
            kind: "not-linearizable".into(),
            checker: "linearizable".into(),
            key: Some("k1".into()),
            ops: vec![3, 4, 5, 6],
            time: Some(30_000_000),
            explanation: "can't read 1: register holds 2 <after> the write".into(),
        },
        Anomaly {
            kind: "lost-write".into(),
            checker: "set".into(),
            key: None,
            ops: vec![7, 8, 12, 13],
            time: Some(40_000_000),
            explanation:
                "element 9 was acknowledged by n1 at 0.041 s and is missing from the final read"
                    .into(),
        },
    ];
    let checkers = [
        ("linearizable".to_string(), linearizable),
        ("set".to_string(), set),
    ]
    .into();
    let results = Results::compose(checkers, anomalies, results::stats(&history.0)).with_seed(7);
    run.write_results(&results).unwrap();
    std::fs::write(
        run.node_log_path("n1"),
        "== faultline: starting n1\n2026-01-01T00:00:00.000000Z INFO n1 too early\n",
    )
    .unwrap();
    run
}

/// Whether `text` is well-formed XML (quick-xml reads it to the end).
fn assert_well_formed(text: &str, what: &str) {
    let mut reader = quick_xml::Reader::from_str(text);
    reader.config_mut().check_end_names = true;
    let mut depth = 0i64;
    loop {
        match reader.read_event() {
            Ok(quick_xml::events::Event::Eof) => break,
            Ok(quick_xml::events::Event::Start(_)) => depth += 1,
            Ok(quick_xml::events::Event::End(_)) => depth -= 1,
            Ok(_) => {}
            Err(e) => panic!(
                "{what} is not well-formed at {}: {e}",
                reader.error_position()
            ),
        }
    }
    assert_eq!(depth, 0, "{what}: unclosed elements");
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn a_valid_run_gets_a_report_with_a_valid_banner() {
    let temp = TempStore::new("valid");
    let run = valid_run(&Store::new(&temp.0));
    let files = write_report(run.path()).unwrap();
    let html = read(&files.report_html);
    assert!(html.contains("banner valid"), "no valid banner");
    assert!(html.contains("faultline run --test"), "no rerun command");
    assert!(html.contains("No fault was injected"));
    assert!(
        !html.contains("<script"),
        "report.html must not need scripts"
    );
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "report.html must not reach the network"
    );
    for plot in &files.plots {
        assert!(plot.png.exists() && plot.svg.exists());
        assert_well_formed(&read(&plot.svg), &plot.svg.display().to_string());
    }
    let junit = read(&files.junit_xml);
    assert_well_formed(&junit, "junit.xml");
    assert_eq!(junit.matches("<testcase ").count(), 1);
    assert!(!junit.contains("<failure"));
    assert_eq!(files.timeline_pages.len(), 1);
}

#[test]
fn an_invalid_run_shows_its_anomalies_under_the_partition() {
    let temp = TempStore::new("invalid");
    let run = invalid_run(&Store::new(&temp.0));
    let files = write_report(run.path()).unwrap();
    let html = read(&files.report_html);
    // To look at it: FAULTLINE_REPORT_KEEP=<file> keeps a copy of report.html.
    if let Some(keep) = std::env::var_os("FAULTLINE_REPORT_KEEP") {
        std::fs::copy(&files.report_html, keep).unwrap();
    }
    assert!(html.contains("banner invalid"));
    assert!(html.contains("INVALID"));
    for needle in [
        "not-linearizable",
        "lost-write",
        "partition n1,n2 | n3",
        "during <span class=\"fault\">partition n1,n2 | n3</span>",
    ] {
        assert!(html.contains(needle), "report.html lacks {needle:?}");
    }
    assert!(html.contains("&lt;after&gt;"), "explanations are escaped");
    assert!(
        html.contains("data:image/png;base64,"),
        "plots are embedded"
    );
    // The linearizability window: an inline SVG naming the failing op and the state it was refused from.
    let svg_start = html.find("<svg").expect("an inline SVG");
    let svg_end = html[svg_start..].find("</svg>").unwrap() + svg_start + "</svg>".len();
    let svg = &html[svg_start..svg_end];
    assert_well_formed(svg, "the linearizability window");
    assert!(
        svg.contains("✗ read → 1") || svg.contains("✗ read"),
        "failing op labelled"
    );
    assert!(svg.contains("#2 write 2"), "prefix ops numbered");
    assert!(svg.contains("refused from"), "states shown");
    for plot in &files.plots {
        assert_well_formed(&read(&plot.svg), &plot.svg.display().to_string());
        assert!(
            read(&plot.svg).contains("partition n1,n2 | n3"),
            "{} lacks the fault label",
            plot.svg.display()
        );
    }
    let junit = read(&files.junit_xml);
    assert_well_formed(&junit, "junit.xml");
    assert_eq!(junit.matches("<testcase ").count(), 2);
    assert_eq!(junit.matches("<failure ").count(), 2);
    assert!(junit.contains("1 lost-write"));
    let timeline = read(&files.timeline_pages[0]);
    assert!(timeline.contains("process 4") && timeline.contains("partition n1,n2 | n3"));
}

#[test]
fn a_run_without_results_json_still_gets_a_report() {
    let temp = TempStore::new("no-results");
    let run = valid_run(&Store::new(&temp.0));
    std::fs::remove_file(run.results_json_path()).unwrap();
    let files = write_report(run.path()).unwrap();
    assert!(read(&files.report_html).contains("banner unknown"));
    assert_eq!(read(&files.junit_xml).matches("<testcase ").count(), 0);
}

#[test]
fn a_missing_history_is_an_error() {
    let temp = TempStore::new("no-history");
    let run = Store::new(&temp.0).create_run("empty").unwrap();
    assert!(write_report(run.path()).is_err());
}

/// A copy of a real run directory, reported: `FAULTLINE_REPORT_RUN=<run dir>
/// cargo test -p results --test report -- --ignored report_on_a_real_run`.
#[test]
#[ignore = "needs a run directory in FAULTLINE_REPORT_RUN"]
fn report_on_a_real_run() {
    let Some(dir) = std::env::var_os("FAULTLINE_REPORT_RUN") else {
        return;
    };
    let start = std::time::Instant::now();
    let files = write_report(Path::new(&dir)).unwrap();
    println!(
        "report of {} in {:?}: {files:#?}",
        Path::new(&dir).display(),
        start.elapsed()
    );
}

/// Report generation time for a 100k-op history (target: under 2 s in
/// release); `FAULTLINE_BENCH_OPS=1000000` for the 1M-op one (under 15 s).
#[test]
#[ignore = "a benchmark: run with --release -- --ignored --nocapture"]
fn report_of_a_100k_op_history_is_fast() {
    let temp = TempStore::new("bench");
    let run = Store::new(&temp.0).create_run("bench-100k").unwrap();
    let mut history = History::default();
    let mut t = 0u64;
    let n: u64 = std::env::var("FAULTLINE_BENCH_OPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    for i in 0..n {
        let p = i % 10;
        let outcome = if i % 997 == 0 {
            OpType::Info
        } else if i % 101 == 0 {
            OpType::Fail
        } else {
            OpType::Ok
        };
        history = history
            .client(
                t,
                p + 10 * (i / 50_000),
                OpType::Invoke,
                if i % 3 == 0 { "read" } else { "write" },
                &format!("k{}", i % 7),
                json!(i),
            )
            .client(
                t + 1 + i % 5,
                p + 10 * (i / 50_000),
                outcome,
                if i % 3 == 0 { "read" } else { "write" },
                &format!("k{}", i % 7),
                json!(i),
            );
        t += 1;
        if i % 20_000 == 10_000 {
            history = history.nemesis(t, "partition", json!({"n1": ["n2"], "n2": ["n1"]}));
        } else if i % 20_000 == 15_000 {
            history = history.nemesis(t, "heal", json!(null));
        }
    }
    history.write(&run);
    run.write_test_json(&test_json()).unwrap();
    let checkers = [(
        "linearizable".to_string(),
        CheckerResult::new(Validity::Valid),
    )]
    .into();
    run.write_results(&Results::compose(
        checkers,
        Vec::new(),
        results::stats(&history.0),
    ))
    .unwrap();
    let start = std::time::Instant::now();
    let files = write_report(run.path()).unwrap();
    let elapsed = start.elapsed();
    let size = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    println!(
        "{n}-op report: {elapsed:?}; report.html {} bytes, {} timeline pages, latency-raw.svg {} bytes",
        size(&files.report_html),
        files.timeline_pages.len(),
        size(&files.plots[0].svg)
    );
}
