//! The run report on hand-made run directories.
//!
//! Modules: fixtures below build run directories with `results::Store`; the
//! tests check the files exist, parse and say what the run found:
//! - a register run, valid and invalid (banner, plots, linearizability window);
//! - a set run with lost and stale elements (their tables);
//! - an append run with G-single and G2-item cycles (their drawings);
//! - node-log excerpts aligned to the recorded start of the run.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use checker::history::{Op, OpType, Process};
use checker::Validity;
use results::{write_report, Anomaly, AnomalyEdge, CheckerResult, Results, RunDir, Store};
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

    /// A keyless client event answered by `node` (completions only).
    fn on(self, ms: u64, process: u64, op_type: OpType, f: &str, value: Value, node: &str) -> Self {
        let mut op = Op::invoke(process, f, value);
        op.op_type = op_type;
        if op_type != OpType::Invoke {
            op.node = Some(node.into());
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
        "states": [2],
        "core": [
            {"index": 0, "complete_index": 1, "process": 0, "type": "ok", "f": "write", "value": 1, "time": 0, "complete_time": 5_000_000},
            {"index": 3, "complete_index": 4, "process": 1, "type": "ok", "f": "write", "value": 2, "time": 20_000_000, "complete_time": 25_000_000},
            {"index": 5, "complete_index": 6, "process": 2, "type": "ok", "f": "read", "value": 1, "time": 30_000_000, "complete_time": 35_000_000}
        ]
    });
    let linearizable = CheckerResult::new(Validity::Invalid)
        .with_anomalies("not-linearizable", 1)
        .with_details(json!({"valid": false, "model": "register", "keys": {"k1": {"valid": "invalid", "explanation": explanation}}}));
    let set = CheckerResult::new(Validity::Invalid).with_anomalies("lost-write", 1);
    // Built as an older harness wrote them: no `element` or `node` on the lost write.
    let anomalies = vec![
        Anomaly::new(
            "not-linearizable",
            "linearizable",
            "can't read 1: register holds 2 <after> the write",
        )
        .with_key(Some("k1".into()))
        .with_ops(vec![3, 4, 5, 6], Some(30_000_000)),
        Anomaly::new(
            "lost-write",
            "set",
            "element 9 was acknowledged by n1 at 0.041 s and is missing from the final read",
        )
        .with_ops(vec![7, 8, 12, 13], Some(40_000_000)),
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
    // The core first: only its three ops, said to prove the history wrong.
    let core_start = html.find("<svg").expect("an inline SVG");
    let core_end = html[core_start..].find("</svg>").unwrap() + core_start + "</svg>".len();
    let core = &html[core_start..core_end];
    assert_well_formed(core, "the core");
    assert!(
        core.contains("the core: 3 ops that alone are not linearizable"),
        "{core}"
    );
    assert!(
        core.contains("cannot make a history non-linearizable"),
        "{core}"
    );
    // Then the linearizability window: an inline SVG naming the failing op and the state it was refused from.
    let svg_start = core_end + html[core_end..].find("<svg").expect("the window's SVG");
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

// ---------------------------------------------------------------------------
// Set runs: lost and stale elements.

/// Results as the harness composes them, from the set checker's result with
/// at most `listed` anomalies per kind written out.
fn set_results(history: &[Op], listed: usize) -> Results {
    use checker::set::{check_set_with, SetOptions};
    let options = SetOptions {
        max_listed: listed,
        ..SetOptions::default()
    };
    let found = check_set_with(history, &options).unwrap().outcome("set");
    Results::compose(
        [("set".to_string(), found.result)].into(),
        found.anomalies,
        results::stats(history),
    )
}

/// A set run: element 2 is stable; 1 is acknowledged by n1 during a
/// partition that cuts n1 off, missed by a read on n2 and seen again after
/// the heal (stale); 3 and 4 are acknowledged by n1 during the partition and
/// never read again (lost). `results.json` lists one anomaly per kind, as a
/// checker's sample would.
fn set_run(store: &Store) -> RunDir {
    let run = store.create_run("set-lost").unwrap();
    use OpType::*;
    let history = History::default()
        .on(0, 0, Invoke, "add", json!(2), "n2")
        .on(2, 0, Ok, "add", json!(2), "n2")
        .nemesis(
            10,
            "partition",
            json!({"n1": ["n2", "n3"], "n2": ["n1"], "n3": ["n1"]}),
        )
        .on(20, 1, Invoke, "add", json!(1), "n1")
        .on(21, 1, Ok, "add", json!(1), "n1")
        .on(30, 2, Invoke, "read", json!(null), "n2")
        .on(31, 2, Ok, "read", json!([2]), "n2")
        .on(40, 1, Invoke, "add", json!(3), "n1")
        .on(41, 1, Ok, "add", json!(3), "n1")
        .on(42, 1, Invoke, "add", json!(4), "n1")
        .on(43, 1, Ok, "add", json!(4), "n1")
        .nemesis(50, "heal", json!(null))
        .on(60, 2, Invoke, "read", json!(null), "n1")
        .on(61, 2, Ok, "read", json!([1, 2]), "n1")
        .on(80, 3, Invoke, "read", json!(null), "n2")
        .on(81, 3, Ok, "read", json!([1, 2]), "n2")
        .on(90, 4, Invoke, "read", json!(null), "n3")
        .on(91, 4, Ok, "read", json!([2, 1]), "n3");
    history.write(&run);
    run.write_test_json(&json!({"workload": "set", "seed": 1}))
        .unwrap();
    run.write_results(&set_results(&history.0, 1)).unwrap();
    run
}

/// The rows (`<tr>`s after the header) of the first table after `anchor`.
fn table_rows<'h>(html: &'h str, anchor: &str) -> Vec<&'h str> {
    let at = html
        .find(anchor)
        .unwrap_or_else(|| panic!("no {anchor:?} in report.html"));
    let start = at + html[at..].find("<table").expect("a table after it");
    let end = start + html[start..].find("</table>").unwrap();
    html[start..end].split("<tr>").skip(2).collect()
}

#[test]
fn a_set_run_tables_lost_and_stale_elements_with_their_node_and_fault() {
    let temp = TempStore::new("set");
    let run = set_run(&Store::new(&temp.0));
    let html = read(&write_report(run.path()).unwrap().report_html);
    let fault = "<span class=\"fault\">partition n1 | n2,n3</span>";

    // results.json lists only element 3; the table comes from the rows the checker stored.
    let lost = table_rows(&html, "id=\"kind-lost-write\"");
    assert_eq!(lost.len(), 2, "{lost:#?}");
    for (row, element, acked) in [(lost[0], 3, "0.041 s"), (lost[1], 4, "0.043 s")] {
        assert!(
            row.contains(&format!("<td class=\"element\">{element}</td>")),
            "{row}"
        );
        assert!(
            row.contains(&format!("<td>{acked}</td><td>n1</td><td>{fault}</td>")),
            "acked by n1 during the partition: {row}"
        );
        // Never seen; first missed by the read that began at 0.060 s on n1 (op 12).
        assert!(
            row.contains(
                "<td>—</td><td><a href=\"timeline.html\" title=\"op 12\">0.060 s on n1</a></td>"
            ),
            "{row}"
        );
    }

    let stale = table_rows(&html, "id=\"kind-stale-read\"");
    assert_eq!(stale.len(), 1, "{stale:#?}");
    let row = stale[0];
    assert!(row.contains("<td class=\"element\">1</td>"), "{row}");
    assert!(
        row.contains("title=\"op 3\">0.020 s</a></td><td>0.021 s</td><td>n1</td>"),
        "{row}"
    );
    // The read that missed it (op 5: began 0.030 s on n2, during the
    // partition), and the one that saw it again (op 12, after the heal).
    assert!(
        row.contains(&format!(
            "<td>{fault}</td><td><a href=\"timeline.html\" title=\"op 5\">0.030 s on n2</a></td><td>{fault}</td><td><a href=\"timeline.html\" title=\"op 12\">0.060 s on n1</a></td></tr>"
        )),
        "{row}"
    );
}

// ---------------------------------------------------------------------------
// Append runs: transactional cycles.

/// Results as the harness composes them from the list-append checker.
fn txn_results(history: &[Op], with_edges: bool) -> Results {
    use checker::txn::{check_list_append, TxnOptions};
    let found = check_list_append(history, &TxnOptions::default()).unwrap();
    let mut checker =
        CheckerResult::new(found.valid).with_details(serde_json::to_value(&found).unwrap());
    for (kind, count) in &found.counts {
        checker = checker.with_anomalies(kind, *count);
    }
    let anomalies = found
        .anomalies
        .iter()
        .map(|a| {
            let time = a.txns.first().and_then(|&i| history[i as usize].time);
            let mut anomaly = Anomaly::new(&a.kind, "list-append", &a.explanation)
                .with_key(a.keys.first().cloned())
                .with_ops(a.txns.clone(), time);
            if with_edges {
                anomaly.edges = a
                    .edges
                    .iter()
                    .map(|e| AnomalyEdge {
                        from: e.from,
                        to: e.to,
                        kind: e.kind.clone(),
                        key: e.key.clone(),
                    })
                    .collect();
            }
            anomaly
        })
        .collect();
    Results::compose(
        [("list-append".to_string(), checker)].into(),
        anomalies,
        results::stats(history),
    )
}

/// An append run with a write skew (G2-item: T0 and T1 each read the key the
/// other appends to, missing the append), a stale read after a completed
/// append (G-single-realtime: T8 misses T6's append to z) and a lost update
/// (T12 and T13 both read w empty and append to it).
fn append_run(store: &Store, with_edges: bool) -> RunDir {
    let run = store.create_run("append-cycles").unwrap();
    use OpType::*;
    let txn = |m: Value| m;
    let history = History::default()
        .on(
            0,
            0,
            Invoke,
            "txn",
            txn(json!([["r", "x", null], ["append", "y", 1]])),
            "n1",
        )
        .on(
            1,
            1,
            Invoke,
            "txn",
            txn(json!([["r", "y", null], ["append", "x", 1]])),
            "n2",
        )
        .on(
            5,
            0,
            Ok,
            "txn",
            txn(json!([["r", "x", []], ["append", "y", 1]])),
            "n1",
        )
        .on(
            6,
            1,
            Ok,
            "txn",
            txn(json!([["r", "y", []], ["append", "x", 1]])),
            "n2",
        )
        .on(
            10,
            2,
            Invoke,
            "txn",
            txn(json!([["r", "x", null], ["r", "y", null]])),
            "n3",
        )
        .on(
            11,
            2,
            Ok,
            "txn",
            txn(json!([["r", "x", [1]], ["r", "y", [1]]])),
            "n3",
        )
        .on(20, 0, Invoke, "txn", txn(json!([["append", "z", 1]])), "n1")
        .on(21, 0, Ok, "txn", txn(json!([["append", "z", 1]])), "n1")
        .on(30, 1, Invoke, "txn", txn(json!([["r", "z", null]])), "n2")
        .on(31, 1, Ok, "txn", txn(json!([["r", "z", []]])), "n2")
        .on(40, 2, Invoke, "txn", txn(json!([["r", "z", null]])), "n3")
        .on(41, 2, Ok, "txn", txn(json!([["r", "z", [1]]])), "n3")
        .on(
            50,
            0,
            Invoke,
            "txn",
            txn(json!([["r", "w", null], ["append", "w", 1]])),
            "n1",
        )
        .on(
            51,
            1,
            Invoke,
            "txn",
            txn(json!([["r", "w", null], ["append", "w", 2]])),
            "n2",
        )
        .on(
            55,
            0,
            Ok,
            "txn",
            txn(json!([["r", "w", []], ["append", "w", 1]])),
            "n1",
        )
        .on(
            56,
            1,
            Ok,
            "txn",
            txn(json!([["r", "w", []], ["append", "w", 2]])),
            "n2",
        )
        .on(60, 2, Invoke, "txn", txn(json!([["r", "w", null]])), "n3")
        .on(61, 2, Ok, "txn", txn(json!([["r", "w", [1, 2]]])), "n3");
    history.write(&run);
    run.write_test_json(&json!({"workload": "append", "seed": 1}))
        .unwrap();
    run.write_results(&txn_results(&history.0, with_edges))
        .unwrap();
    run
}

/// The SVGs under the heading of `kind`, up to the next heading.
fn svgs_of<'h>(html: &'h str, kind: &str) -> Vec<&'h str> {
    let anchor = format!("id=\"kind-{kind}\"");
    let at = html
        .find(&anchor)
        .unwrap_or_else(|| panic!("no {kind} heading in report.html"));
    let section = &html[at..];
    let section = &section[..section[4..].find("<h3").map_or(section.len(), |e| e + 4)];
    section
        .match_indices("<svg")
        .map(|(start, _)| {
            let end = start + section[start..].find("</svg>").unwrap() + "</svg>".len();
            &section[start..end]
        })
        .collect()
}

#[test]
fn an_append_run_draws_its_cycles_with_txn_and_edge_labels() {
    for with_edges in [true, false] {
        // Without edges on the anomalies (an older results.json) they come
        // from the checker's details.
        let temp = TempStore::new("append");
        let run = append_run(&Store::new(&temp.0), with_edges);
        let files = write_report(run.path()).unwrap();
        // To look at it: FAULTLINE_REPORT_KEEP_APPEND=<file> keeps a copy of report.html.
        if let (Some(keep), true) = (std::env::var_os("FAULTLINE_REPORT_KEEP_APPEND"), with_edges) {
            std::fs::copy(&files.report_html, keep).unwrap();
        }
        let html = read(&files.report_html);

        let g2 = svgs_of(&html, "G2-item");
        assert_eq!(g2.len(), 1, "one G2-item drawing (with_edges {with_edges})");
        assert_well_formed(g2[0], "the G2-item drawing");
        for label in [
            "T0 p0 n1: r x []; append y 1",
            "T1 p1 n2: r y []; append x 1",
            "rw x",
            "rw y",
        ] {
            assert!(
                g2[0].contains(label),
                "G2-item drawing lacks {label:?}: {}",
                g2[0]
            );
        }

        let single = svgs_of(&html, "G-single-realtime");
        assert_eq!(single.len(), 1, "one G-single-realtime drawing");
        assert_well_formed(single[0], "the G-single drawing");
        for label in ["T6 p0 n1: append z 1", "T8 p1 n2: r z []", "rw z", "rt"] {
            assert!(
                single[0].contains(label),
                "G-single drawing lacks {label:?}: {}",
                single[0]
            );
        }
        // The explanation follows the drawing.
        let after = &html[html.find(single[0]).unwrap() + single[0].len()..];
        assert!(after.starts_with("</div><p>"), "{}", &after[..80]);
        assert!(after.contains("precedes itself"));

        // Not a cycle: a table row with both txns.
        let lost_update = table_rows(&html, "id=\"kind-lost-update\"");
        assert_eq!(lost_update.len(), 1, "{lost_update:#?}");
        for label in [
            "T12 p0 n1: r w []; append w 1",
            "T13 p1 n2: r w []; append w 2",
        ] {
            assert!(
                lost_update[0].contains(label),
                "lost-update row lacks {label:?}: {}",
                lost_update[0]
            );
        }
    }
}

// ---------------------------------------------------------------------------
// Node logs, aligned to the run's recorded start.

/// Unix ns of history time 0: to the nanosecond, so a log's microseconds
/// cannot land on it by chance.
const START_UNIX_NS: u64 = 1_795_669_864_678_000_500;

/// A run whose one anomaly has ops at 2 s and 3 s (window 1 s to 4 s), and a
/// node log with lines just outside and just inside that window.
fn logged_run(store: &Store, record_start: bool) -> RunDir {
    let run = store.create_run("logs").unwrap();
    let history = History::default()
        .client(1_000, 0, OpType::Invoke, "write", "k", json!(1))
        .client(2_000, 0, OpType::Ok, "write", "k", json!(1))
        .client(3_000, 1, OpType::Invoke, "read", "k", json!(null))
        .client(3_000, 1, OpType::Ok, "read", "k", json!(0));
    history.write(&run);
    let anomaly = Anomaly::new("not-linearizable", "linearizable", "read 0 after write 1")
        .with_key(Some("k".into()))
        .with_ops(vec![1, 2], Some(2_000_000_000));
    let checker = CheckerResult::new(Validity::Invalid).with_anomalies("not-linearizable", 1);
    let mut results = Results::compose(
        [("linearizable".to_string(), checker)].into(),
        vec![anomaly],
        results::stats(&history.0),
    );
    if record_start {
        results = results
            .with_start(std::time::UNIX_EPOCH + std::time::Duration::from_nanos(START_UNIX_NS));
    }
    run.write_results(&results).unwrap();
    // START_UNIX_NS is 2026-11-26T05:11:04.678000500Z.
    let log = "\
== faultline: starting n1 at unix 1795669864.000: target-node ...
2026-11-26T05:11:04.700000Z  INFO n1 secondary t1 too early
2026-11-26T05:11:05.678000Z  INFO n1 secondary t1 500 ns before the window
  continuation of a line outside
2026-11-26T05:11:05.678001Z  INFO n1 secondary t1 first inside
  continuation of a line inside
== faultline: starting n1 at unix 1795669866.500: target-node ...
2026-11-26T05:11:08.678000Z  WARN n1 primary t2 last inside
2026-11-26T05:11:08.678001Z  INFO n1 primary t2 1 µs after the window
";
    std::fs::write(run.node_log_path("n1"), log).unwrap();
    std::fs::write(
        run.node_log_path("n2"),
        "2026-11-26T05:11:20.000000Z  INFO n2 secondary t2 much later\n",
    )
    .unwrap();
    run
}

/// The text of the `<pre class="log">` of `node`, labels and all.
fn log_excerpt(html: &str, node: &str) -> Option<String> {
    let summary = html.find(&format!("<summary>{node} ("))?;
    let pre = summary + html[summary..].find("<pre class=\"log\">")? + "<pre class=\"log\">".len();
    let end = pre + html[pre..].find("</pre>")?;
    Some(html[pre..end].to_string())
}

#[test]
fn log_excerpts_are_exactly_the_lines_within_a_second_of_the_anomaly() {
    let temp = TempStore::new("logs");
    let run = logged_run(&Store::new(&temp.0), true);
    let html = read(&write_report(run.path()).unwrap().report_html);
    assert!(
        html.contains("from the run's recorded start"),
        "exact alignment announced"
    );
    let excerpt = log_excerpt(&html, "n1").expect("an n1 excerpt");
    let lines: Vec<&str> = excerpt.lines().collect();
    assert_eq!(
        lines,
        [
            "    +1.000 s │ 2026-11-26T05:11:05.678001Z  INFO n1 secondary t1 first inside",
            &format!("{:12} │   continuation of a line inside", ""),
            "    +1.822 s │ == faultline: starting n1 at unix 1795669866.500: target-node ...",
            "    +4.000 s │ 2026-11-26T05:11:08.678000Z  WARN n1 primary t2 last inside",
        ]
    );
    assert_eq!(
        log_excerpt(&html, "n2"),
        None,
        "n2 logged nothing in the window"
    );
}

#[test]
fn without_a_recorded_start_log_excerpts_fall_back_to_the_directory_time() {
    use results::walltime::{rfc3339, run_dir_start_ns};
    let temp = TempStore::new("logs-old");
    let run = logged_run(&Store::new(&temp.0), false);
    // The anomaly is at 2 s; the fallback shows 1.5 s either side of it,
    // counted from the moment in the directory's name.
    let dir_ns = run_dir_start_ns(run.timestamp()).unwrap() as u64;
    let at = |ms: u64| rfc3339(dir_ns + ms * 1_000_000);
    let log = format!(
        "{} INFO n1 before\n{} INFO n1 inside\n{} INFO n1 after\n",
        at(400),
        at(2_100),
        at(3_600)
    );
    std::fs::write(run.node_log_path("n1"), log).unwrap();
    let html = read(&write_report(run.path()).unwrap().report_html);
    assert!(
        html.contains("approximate"),
        "approximate alignment announced"
    );
    let excerpt = log_excerpt(&html, "n1").expect("an n1 excerpt");
    let lines: Vec<&str> = excerpt.lines().collect();
    assert_eq!(lines.len(), 1, "{excerpt}");
    assert!(lines[0].starts_with("    +2.100 s │ ") && lines[0].ends_with("INFO n1 inside"));
}

/// Report generation time for a 100k-op set history over 100 keys with 2%
/// of the elements lost and 2% stale (`FAULTLINE_BENCH_OPS` to change the
/// size), where `results.json` lists one anomaly per kind and key, so the
/// report tables the rows the set checker stored. `FAULTLINE_BENCH_KEEP=1`
/// keeps the run directory (to report it with another version).
#[test]
#[ignore = "a benchmark: run with --release -- --ignored --nocapture"]
fn report_of_a_100k_op_set_history_with_lost_writes_is_fast() {
    let n: u64 = std::env::var("FAULTLINE_BENCH_OPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let temp = TempStore::new("bench-set");
    let run = Store::new(&temp.0).create_run("bench-set").unwrap();
    let keys = 100u64;
    let mut added: Vec<Vec<u64>> = vec![Vec::new(); keys as usize];
    let mut unseen_stale: Vec<Vec<u64>> = vec![Vec::new(); keys as usize];
    let mut history = History::default();
    for i in 0..n {
        let (t, key) = (i * 2, (i / 10) % keys);
        let k = key as usize;
        let name = format!("s{key}");
        let node = format!("n{}", i % 3 + 1);
        let mut op = |ms: u64, op_type: OpType, f: &str, value: Value| {
            let mut op = Op::invoke(i % 10, f, value).with_key(&name);
            op.op_type = op_type;
            op.node = (op_type != OpType::Invoke).then(|| node.clone());
            history = std::mem::take(&mut history).push(ms, op);
        };
        if i % 10 == 9 {
            let present: Vec<u64> = added[k]
                .iter()
                .copied()
                .filter(|e| e % 50 != 0 && !unseen_stale[k].contains(e))
                .collect();
            unseen_stale[k].clear();
            op(t, OpType::Invoke, "read", Value::Null);
            op(t + 1, OpType::Ok, "read", json!(present));
        } else {
            op(t, OpType::Invoke, "add", json!(i));
            op(t + 1, OpType::Ok, "add", json!(i));
            added[k].push(i);
            if i % 50 == 25 {
                unseen_stale[k].push(i);
            }
        }
        if i % 20_000 == 10_000 {
            history = history.nemesis(t + 1, "partition", json!({"n1": ["n2"], "n2": ["n1"]}));
        } else if i % 20_000 == 15_000 {
            history = history.nemesis(t + 1, "heal", json!(null));
        }
    }
    // A final read of every key.
    for key in 0..keys {
        let present: Vec<u64> = added[key as usize]
            .iter()
            .copied()
            .filter(|e| e % 50 != 0)
            .collect();
        let t = n * 2 + key * 2;
        history = history
            .client(
                t,
                10 + key,
                OpType::Invoke,
                "read",
                &format!("s{key}"),
                json!(null),
            )
            .client(
                t + 1,
                10 + key,
                OpType::Ok,
                "read",
                &format!("s{key}"),
                json!(present),
            );
    }
    history.write(&run);
    run.write_test_json(&json!({"workload": "set", "seed": 1}))
        .unwrap();
    let results = set_results(&history.0, 1);
    run.write_results(&results).unwrap();
    let start = std::time::Instant::now();
    let files = write_report(run.path()).unwrap();
    let elapsed = start.elapsed();
    let counts = results.anomaly_counts();
    println!(
        "{n}-op set report: {elapsed:?}; {} lost, {} stale; report.html {} bytes; run {}",
        counts.get("lost-write").unwrap_or(&0),
        counts.get("stale-read").unwrap_or(&0),
        std::fs::metadata(&files.report_html).map_or(0, |m| m.len()),
        run.path().display()
    );
    if std::env::var_os("FAULTLINE_BENCH_KEEP").is_some() {
        std::mem::forget(temp);
    }
}

#[test]
fn a_full_disk_under_any_report_file_is_an_error_naming_that_file() {
    // /dev/full fails every write with ENOSPC, as a full store does.
    if !Path::new("/dev/full").exists() {
        eprintln!("skipped: no /dev/full on this machine");
        return;
    }
    for name in [
        "latency-raw.png",
        "rate.svg",
        "timeline.html",
        "junit.xml",
        "report.html",
    ] {
        let temp = TempStore::new("full");
        let run = valid_run(&Store::new(&temp.0));
        std::os::unix::fs::symlink("/dev/full", run.path().join(name)).unwrap();
        let err = write_report(run.path()).expect_err(name).to_string();
        assert!(err.contains(name), "{name}: {err}");
        assert!(err.contains("No space left on device"), "{name}: {err}");
    }
}
