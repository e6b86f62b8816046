//! Golden transactional histories after Elle's own unit tests
//! (jepsen-io/elle `test/elle/list_append_test.clj`, `rw_register_test.clj`):
//! each file in `tests/golden/elle/` is our transcription of a case those
//! tests describe, checked with the options the Elle test used, against the
//! verdict and anomaly types Elle's test expects.
//!
//! Claims: every case agrees with Elle except the ones listed in
//! [`DISAGREE`], each with the reason; BENCHMARKS.md states the count. We
//! compare what Elle reports: the verdict, and the anomaly types the
//! options forbid (Elle's `:anomaly-types`, without its
//! `empty-transaction-graph`, which we do not have).

use std::path::Path;

use checker::history::parse_jsonl;
use checker::txn::{check_list_append, check_rw_register, forbids, RegisterOrder, TxnOptions};
use checker::Validity;

/// One Elle test case: file, models (`None`: Elle's `nil`), anomalies,
/// register order, Elle's verdict, Elle's anomaly types (our names).
struct Case {
    file: &'static str,
    models: Option<&'static [&'static str]>,
    anomalies: &'static [&'static str],
    order: RegisterOrder,
    valid: Validity,
    types: &'static [&'static str],
}

const fn case(
    file: &'static str,
    models: Option<&'static [&'static str]>,
    anomalies: &'static [&'static str],
    valid: Validity,
    types: &'static [&'static str],
) -> Case {
    Case {
        file,
        models,
        anomalies,
        order: RegisterOrder::Inferred,
        valid,
        types,
    }
}

use Validity::{Invalid as BAD, Unknown as UNKNOWN, Valid as OK};
const NIL: Option<&[&str]> = None;
const STRICT: Option<&[&str]> = Some(&["strict-serializable"]);
const SER: Option<&[&str]> = Some(&["serializable"]);

const CASES: &[Case] = &[
    // list_append_test.clj, checker-test
    case("list-append.g0", NIL, &["G0"], BAD, &["G0"]),
    case("list-append.g0", NIL, &["G1"], BAD, &["G0"]),
    case("list-append.g0", NIL, &["G2"], OK, &[]),
    case(
        "list-append.g1a",
        Some(&["read-uncommitted"]),
        &[],
        UNKNOWN,
        &[],
    ),
    case(
        "list-append.g1a",
        Some(&["read-committed"]),
        &[],
        BAD,
        &["G1a"],
    ),
    case("list-append.g1a", NIL, &["G2"], UNKNOWN, &[]),
    case(
        "list-append.g1a",
        Some(&["repeatable-read"]),
        &[],
        BAD,
        &["G1a"],
    ),
    case("list-append.g1b", NIL, &["G0"], OK, &[]),
    case("list-append.g1b", NIL, &["G1"], BAD, &["G1b"]),
    case("list-append.g1b", NIL, &["G2"], BAD, &["G-single"]),
    case("list-append.g1b", STRICT, &[], BAD, &["G-single", "G1b"]),
    case("list-append.g1c", NIL, &["G0"], OK, &[]),
    case("list-append.g1c", NIL, &["G1"], BAD, &["G1c"]),
    case("list-append.g1c", NIL, &["G2"], OK, &[]),
    case("list-append.g-single", NIL, &["G0"], OK, &[]),
    case("list-append.g-single", NIL, &["G1"], OK, &[]),
    case(
        "list-append.g-single",
        NIL,
        &["G-single"],
        BAD,
        &["G-single"],
    ),
    case("list-append.g-single", NIL, &["G2"], BAD, &["G-single"]),
    case("list-append.g2", NIL, &["G0"], OK, &[]),
    case("list-append.g2", NIL, &["G1"], OK, &[]),
    case("list-append.g2", Some(&["read-committed"]), &[], OK, &[]),
    case("list-append.g2", NIL, &["G2"], BAD, &["G2-item"]),
    case("list-append.g2", SER, &[], BAD, &["G2-item"]),
    case(
        "list-append.g2",
        Some(&["repeatable-read"]),
        &[],
        BAD,
        &["G2-item"],
    ),
    case("list-append.strong-si-violation", NIL, &["G2"], OK, &[]),
    case("list-append.strong-si-violation", SER, &[], OK, &[]),
    case(
        "list-append.strong-si-violation",
        STRICT,
        &[],
        BAD,
        &["G-single-realtime"],
    ),
    case("list-append.strong-session-si-violation", SER, &[], OK, &[]),
    case(
        "list-append.strong-session-si-violation",
        Some(&["strong-session-snapshot-isolation"]),
        &[],
        BAD,
        &["G-single-process"],
    ),
    case("list-append.g-nonadjacent-process", SER, &[], OK, &[]),
    case(
        "list-append.g-nonadjacent-process",
        Some(&["strong-session-snapshot-isolation"]),
        &[],
        BAD,
        &["G-nonadjacent-process"],
    ),
    case(
        "list-append.contradictory-read-orders",
        NIL,
        &["G1"],
        BAD,
        &["G1c", "incompatible-order"],
    ),
    case(
        "list-append.dirty-update-direct",
        NIL,
        &["dirty-update"],
        BAD,
        &["dirty-update"],
    ),
    case(
        "list-append.dirty-update-indirect",
        NIL,
        &["dirty-update"],
        BAD,
        &["dirty-update"],
    ),
    case(
        "list-append.duplicated-elements",
        Some(&["read-committed"]),
        &[],
        BAD,
        &["G1c", "duplicate-elements"],
    ),
    case(
        "list-append.internal",
        NIL,
        &["internal"],
        BAD,
        &["internal"],
    ),
    // unobserved-write-test
    case(
        "list-append.unobserved-write",
        SER,
        &[],
        BAD,
        &["G-single", "G0"],
    ),
    // repeatable-read-test
    case(
        "list-append.rxay1-ryax1",
        Some(&["read-committed"]),
        &[],
        OK,
        &[],
    ),
    case(
        "list-append.rxay1-ryax1",
        Some(&["repeatable-read"]),
        &[],
        BAD,
        &["G2-item"],
    ),
    // G-nonadjacent-test
    case(
        "list-append.g-nonadjacent",
        STRICT,
        &[],
        BAD,
        &["G-nonadjacent"],
    ),
    case(
        "list-append.rw-rw-wr-rw-wr",
        Some(&["snapshot-isolation"]),
        &[],
        OK,
        &[],
    ),
    // lost-update-test
    case(
        "list-append.lost-update",
        STRICT,
        &[],
        BAD,
        &["G2-item", "lost-update"],
    ),
    case("list-append.one-txn-double-write", STRICT, &[], OK, &[]),
    // wr-process-test, rr-g-single-item-test, rr-g-nonadjacent-item-test
    case(
        "list-append.wr-process",
        Some(&["strong-session-snapshot-isolation"]),
        &[],
        BAD,
        &["G1c-process"],
    ),
    case(
        "list-append.rr-g-single-item",
        Some(&["repeatable-read"]),
        &[],
        BAD,
        &["G-single"],
    ),
    case(
        "list-append.rr-g-nonadjacent-item",
        Some(&["repeatable-read"]),
        &[],
        BAD,
        &["G-nonadjacent"],
    ),
    // future-read-test, internal-cases-test
    case(
        "list-append.future-read",
        Some(&["read-committed"]),
        &[],
        BAD,
        &["future-read"],
    ),
    case(
        "list-append.future-read-internal",
        NIL,
        &["future-read"],
        BAD,
        &["future-read"],
    ),
    case(
        "list-append.internal-faunadb",
        NIL,
        &["internal"],
        BAD,
        &["internal"],
    ),
    // intermediate-sequential-extension-test
    case(
        "list-append.si-without-g-single",
        Some(&["snapshot-isolation", "repeatable-read"]),
        &[],
        BAD,
        &["G2-item"],
    ),
    // g1a-cases-test, g1b-cases-test (through the checker, asking for G1)
    // (Elle's test calls g1a-cases alone; its whole checker also finds the
    // dirty update: 2 was appended after the aborted 1.)
    case(
        "list-append.g1a-cases",
        NIL,
        &["G1"],
        BAD,
        &["G1a", "dirty-update"],
    ),
    case("list-append.g1b-cases", NIL, &["G1"], BAD, &["G1b"]),
    // graph-test: "single appends without reads", "info reads"
    case("list-append.single-append-without-reads", SER, &[], OK, &[]),
    case("list-append.info-reads", SER, &[], OK, &[]),
    // rw_register_test.clj, checker-test
    Case {
        order: RegisterOrder::Process,
        ..case("rw-register.g0-sequential-keys", NIL, &["G0"], BAD, &["G0"])
    },
    case("rw-register.g1a", NIL, &["G1"], BAD, &["G1a"]),
    case("rw-register.g1b", NIL, &["G0"], UNKNOWN, &[]),
    case("rw-register.g1b", NIL, &["G1"], BAD, &["G1b"]),
    case(
        "rw-register.g1b",
        Some(&["repeatable-read"]),
        &[],
        BAD,
        &["G1b"],
    ),
    case("rw-register.g-single-without-txn-order", SER, &[], OK, &[]),
    case("rw-register.g2-item-without-txn-order", SER, &[], OK, &[]),
    case("rw-register.g1c", NIL, &["G0"], OK, &[]),
    case("rw-register.g1c", Some(&["read-uncommitted"]), &[], OK, &[]),
    case("rw-register.g1c", NIL, &["G1"], BAD, &["G1c"]),
    case(
        "rw-register.g1c",
        Some(&["read-committed"]),
        &[],
        BAD,
        &["G1c"],
    ),
    case("rw-register.g1c", NIL, &["G2"], OK, &[]),
    case("rw-register.g1c", SER, &[], BAD, &["G1c"]),
    case(
        "rw-register.internal",
        NIL,
        &["internal"],
        BAD,
        &["internal"],
    ),
    case("rw-register.initial-state", SER, &[], BAD, &["G-single"]),
    case("rw-register.wfr", SER, &[], OK, &[]),
    case(
        "rw-register.lost-update",
        STRICT,
        &[],
        BAD,
        &["lost-update"],
    ),
    Case {
        order: RegisterOrder::Realtime,
        ..case(
            "rw-register.write-then-read-other-value",
            STRICT,
            &[],
            OK,
            &[],
        )
    },
];

/// Cases where we differ from Elle's test, and why.
const DISAGREE: &[(&str, &str)] = &[
    ("list-append.g-nonadjacent [strict-serializable]", "we also find G-single-realtime: T4 began after T1's append to x completed, yet read x empty; Elle's test lists only the G-nonadjacent"),
    ("list-append.lost-update [strict-serializable]", "we also find G-single-realtime (T1 completed before T2 began, yet T2 missed T1's unread append), which Elle's test does not list"),
    ("rw-register.g0-sequential-keys [] [G0]", "Elle's sequential keys also order versions by a process's reads; ours orders only a process's writes"),
    ("rw-register.g1b [] [G0]", "Elle says unknown for its empty transaction graph; ours is not empty: it has the wr edge of T1's read of T0's intermediate write, so valid"),
    ("rw-register.wfr [serializable]", "we always order a txn's write of a key after its own read of it (Elle's wfr-keys, off in this case): T0 read y = 1 and wrote y = 2, T1 read y = 1 and saw T0's x = 1, so G-single"),
    ("rw-register.lost-update [strict-serializable]", "with writes after reads ordered (wfr), each txn read x = 0 before the other's overwrite: we also find the G2-item cycle"),
];

fn label(c: &Case) -> String {
    let models = c.models.map_or(String::new(), |m| m.join(","));
    if c.anomalies.is_empty() {
        format!("{} [{models}]", c.file)
    } else {
        format!("{} [{models}] [{}]", c.file, c.anomalies.join(","))
    }
}

/// Our verdict and the anomaly types the case's options forbid.
fn ours(c: &Case) -> (Validity, Vec<String>) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden/elle")
        .join(format!("{}.jsonl", c.file));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let ops = parse_jsonl(&text, &path).unwrap_or_else(|e| panic!("{e}"));
    let options = TxnOptions {
        consistency_models: c
            .models
            .unwrap_or(&[])
            .iter()
            .map(|m| m.to_string())
            .collect(),
        anomalies: c.anomalies.iter().map(|a| a.to_string()).collect(),
        register_order: c.order,
        ..TxnOptions::default()
    };
    let r = if c.file.starts_with("rw-register.") {
        check_rw_register(&ops, &options)
    } else {
        check_list_append(&ops, &options)
    }
    .unwrap_or_else(|e| panic!("{}: {e}", c.file));
    let types = r
        .counts
        .keys()
        .filter(|k| forbids(&options, k).unwrap())
        .cloned()
        .collect();
    (r.valid, types)
}

#[test]
fn elle_unit_test_cases_agree_with_elle_except_where_documented() {
    let mut disagree = Vec::new();
    for c in CASES {
        let (valid, types) = ours(c);
        if valid != c.valid || types != c.types {
            disagree.push(format!(
                "{}: Elle {} {:?}, ours {valid} {types:?}",
                label(c),
                c.valid,
                c.types
            ));
        }
    }
    println!(
        "{} of {} Elle unit-test cases agree ({} files)",
        CASES.len() - disagree.len(),
        CASES.len(),
        CASES
            .iter()
            .map(|c| c.file)
            .collect::<std::collections::BTreeSet<_>>()
            .len()
    );
    let documented: Vec<&str> = DISAGREE.iter().map(|d| d.0).collect();
    let undocumented: Vec<&String> = disagree
        .iter()
        .filter(|d| !documented.iter().any(|l| d.starts_with(&format!("{l}:"))))
        .collect();
    assert!(
        undocumented.is_empty(),
        "new disagreements:\n{}",
        disagree.join("\n")
    );
    assert_eq!(
        disagree.len(),
        DISAGREE.len(),
        "documented disagreements that now agree:\n{}",
        disagree.join("\n")
    );
}

#[test]
fn every_elle_golden_file_is_a_case() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/elle");
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|x| x != "jsonl") {
            continue;
        }
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        assert!(CASES.iter().any(|c| c.file == name), "{name} is in no case");
    }
}
