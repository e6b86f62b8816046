//! Hand-made histories, one per anomaly class, and valid ones.

use serde_json::{json, Value};

use super::*;
use crate::history::{Op, OpType};

/// A history built event by event: `inv` then `ok` / `fail` / `info` per
/// process (shared with `register_tests.rs`).
#[derive(Default)]
pub(super) struct H {
    pub(super) ops: Vec<Op>,
}

impl H {
    pub(super) fn inv(mut self, p: u64, v: Value) -> Self {
        self.ops.push(Op::invoke(p, "txn", v));
        self
    }
    pub(super) fn done(mut self, p: u64, t: OpType, v: Value) -> Self {
        let mut op = Op::invoke(p, "txn", v);
        op.op_type = t;
        self.ops.push(op);
        self
    }
    pub(super) fn ok(self, p: u64, v: Value) -> Self {
        self.done(p, OpType::Ok, v)
    }
    /// A txn invoked and completed ok at once (reads null in the invocation).
    pub(super) fn txn(self, p: u64, v: Value) -> Self {
        let invoked = invocation(&v);
        self.inv(p, invoked).ok(p, v)
    }
    fn check_with(&self, models: &[&str]) -> TxnResult {
        let options = TxnOptions {
            consistency_models: models.iter().map(|m| m.to_string()).collect(),
            ..TxnOptions::default()
        };
        check_list_append(&self.ops, &options).expect("well-formed history")
    }
    fn check(&self) -> TxnResult {
        self.check_with(&["strict-serializable"])
    }
}

fn invocation(v: &Value) -> Value {
    let mops = v.as_array().cloned().unwrap_or_default();
    mops.into_iter()
        .map(|m| {
            if m[0] == "r" {
                json!(["r", m[1], null])
            } else {
                m
            }
        })
        .collect()
}

pub(super) fn kinds(r: &TxnResult) -> Vec<&str> {
    r.counts.keys().map(String::as_str).collect()
}

/// The kinds found that `model` forbids (what Elle reports when asked for it).
pub(super) fn forbidden_kinds<'r>(r: &'r TxnResult, model: &str) -> Vec<&'r str> {
    let models = BTreeSet::from([model]);
    kinds(r)
        .into_iter()
        .filter(|k| consistency::forbidden(k, &models, &BTreeSet::new()))
        .collect()
}

pub(super) fn the<'r>(r: &'r TxnResult, kind: &str) -> &'r TxnAnomaly {
    r.anomalies
        .iter()
        .find(|a| a.kind == kind)
        .unwrap_or_else(|| panic!("no {kind} in {:#?}", r.anomalies))
}

#[test]
fn a_serial_history_is_valid_and_strict_serializable() {
    let r = H::default()
        .txn(0, json!([["append", "x", 1], ["r", "x", [1]]]))
        .txn(1, json!([["r", "x", [1]], ["append", "y", 1]]))
        .txn(0, json!([["r", "y", [1]], ["r", "x", [1]]]))
        .check();
    assert_eq!(r.valid, Validity::Valid, "{r:#?}");
    assert!(r.anomalies.is_empty());
    assert_eq!(r.may_satisfy, vec!["strict-serializable"]);
    assert_eq!(r.stats.txns, 3);
}

#[test]
fn write_cycle_is_g0() {
    // T0 and T2 interleave appends to x and y: x = [1 2], y = [1 2] with
    // opposite writers.
    let r = H::default()
        .inv(0, json!([["append", "x", 1], ["append", "y", 2]]))
        .inv(1, json!([["append", "x", 2], ["append", "y", 1]]))
        .ok(0, json!([["append", "x", 1], ["append", "y", 2]]))
        .ok(1, json!([["append", "x", 2], ["append", "y", 1]]))
        .txn(2, json!([["r", "x", [1, 2]], ["r", "y", [1, 2]]]))
        .check();
    assert_eq!(kinds(&r), vec!["G0"], "{r:#?}");
    let g0 = the(&r, "G0");
    assert_eq!(g0.txns.len(), 2);
    assert!(
        g0.explanation.contains("(ww)") && g0.explanation.contains("a cycle"),
        "{}",
        g0.explanation
    );
    assert_eq!(r.not, vec!["read-uncommitted"]);
    assert_eq!(r.valid, Validity::Invalid);
    assert!(r.may_satisfy.is_empty());
}

#[test]
fn circular_information_flow_is_g1c() {
    let r = H::default()
        .inv(0, json!([["append", "x", 1], ["r", "y", null]]))
        .inv(1, json!([["append", "y", 1], ["r", "x", null]]))
        .ok(0, json!([["append", "x", 1], ["r", "y", [1]]]))
        .ok(1, json!([["append", "y", 1], ["r", "x", [1]]]))
        .check();
    assert_eq!(kinds(&r), vec!["G1c"], "{r:#?}");
    let a = the(&r, "G1c");
    assert!(
        a.explanation
            .contains("T0 read key x and saw 1, which T1 appended")
            || a.explanation
                .contains("T1 read key x and saw 1, which T0 appended"),
        "{}",
        a.explanation
    );
    assert_eq!(r.not, vec!["read-committed"]);
    assert_eq!(r.may_satisfy, vec!["read-uncommitted"]);
}

#[test]
fn one_antidependency_cycle_is_g_single() {
    // T0 saw T1's append to y but not its append to x.
    let r = H::default()
        .inv(0, json!([["r", "x", null], ["r", "y", null]]))
        .inv(1, json!([["append", "x", 1], ["append", "y", 1]]))
        .ok(1, json!([["append", "x", 1], ["append", "y", 1]]))
        .ok(0, json!([["r", "x", []], ["r", "y", [1]]]))
        .txn(2, json!([["r", "x", [1]]]))
        .check();
    assert_eq!(kinds(&r), vec!["G-single"], "{r:#?}");
    let a = the(&r, "G-single");
    assert!(
        a.explanation.contains(
            "T1 appended 1 to key x and T0's read of key x did not see it, so T0 precedes T1 (rw)"
        ),
        "{}",
        a.explanation
    );
    assert_eq!(a.edges.iter().filter(|e| e.kind == "rw").count(), 1);
    assert_eq!(r.not, vec!["repeatable-read", "snapshot-isolation"]);
    assert_eq!(r.may_satisfy, vec!["read-committed"]);
}

#[test]
fn write_skew_is_g2_item_and_allowed_by_snapshot_isolation() {
    let h = H::default()
        .inv(0, json!([["r", "x", null], ["append", "y", 1]]))
        .inv(1, json!([["r", "y", null], ["append", "x", 1]]))
        .ok(0, json!([["r", "x", []], ["append", "y", 1]]))
        .ok(1, json!([["r", "y", []], ["append", "x", 1]]))
        .txn(2, json!([["r", "x", [1]], ["r", "y", [1]]]));
    let r = h.check();
    assert_eq!(kinds(&r), vec!["G2-item"], "{r:#?}");
    assert_eq!(
        the(&r, "G2-item")
            .edges
            .iter()
            .filter(|e| e.kind == "rw")
            .count(),
        2
    );
    assert_eq!(r.not, vec!["repeatable-read"]);
    assert!(r.also_not.contains(&"serializable".to_string()));
    // T2 began after both committed: strong snapshot isolation still holds.
    assert_eq!(r.may_satisfy, vec!["strong-snapshot-isolation"]);
    assert_eq!(h.check_with(&["snapshot-isolation"]).valid, Validity::Valid);
    assert_eq!(h.check_with(&["serializable"]).valid, Validity::Invalid);
}

#[test]
fn reading_a_failed_append_is_g1a() {
    let r = H::default()
        .inv(0, json!([["append", "x", 1]]))
        .done(0, OpType::Fail, json!([["append", "x", 1]]))
        .txn(1, json!([["r", "x", [1]]]))
        .check();
    assert_eq!(kinds(&r), vec!["G1a"], "{r:#?}");
    assert!(the(&r, "G1a")
        .explanation
        .contains("T0 appended but then aborted"));
    assert_eq!(the(&r, "G1a").txns, vec![0, 2]);
}

#[test]
fn an_append_after_an_aborted_one_is_a_dirty_update() {
    let r = H::default()
        .inv(0, json!([["append", "x", 1]]))
        .done(0, OpType::Fail, json!([["append", "x", 1]]))
        .txn(1, json!([["append", "x", 2]]))
        .txn(2, json!([["r", "x", [1, 2]]]))
        .check();
    assert_eq!(kinds(&r), vec!["G1a", "dirty-update"], "{r:#?}");
    assert!(the(&r, "dirty-update")
        .explanation
        .contains("T2 appended 2 after it"));
}

#[test]
fn reading_an_intermediate_append_is_g1b() {
    let r = H::default()
        .inv(0, json!([["append", "x", 1], ["append", "x", 2]]))
        .txn(1, json!([["r", "x", [1]]]))
        .ok(0, json!([["append", "x", 1], ["append", "x", 2]]))
        .txn(1, json!([["r", "x", [1, 2]]]))
        .check();
    assert!(kinds(&r).contains(&"G1b"), "{r:#?}");
    assert!(the(&r, "G1b")
        .explanation
        .contains("intermediate append of T0"));
    assert_eq!(r.not, vec!["read-committed"]);
}

#[test]
fn not_reading_your_own_append_is_internal() {
    let r = H::default()
        .txn(0, json!([["append", "x", 1], ["r", "x", []]]))
        .check();
    assert_eq!(kinds(&r), vec!["internal"], "{r:#?}");
    assert!(the(&r, "internal")
        .explanation
        .contains("imply a list ending in [1]"));
    let r = H::default()
        .txn(0, json!([["append", "x", 5]]))
        .txn(
            0,
            json!([["r", "x", [5]], ["append", "x", 6], ["r", "x", [5, 6]]]),
        )
        .check();
    assert!(r.anomalies.is_empty(), "{r:#?}");
}

#[test]
fn reads_that_diverge_are_incompatible_orders() {
    let r = H::default()
        .txn(0, json!([["append", "x", 1]]))
        .txn(1, json!([["append", "x", 2]]))
        .txn(2, json!([["r", "x", [1, 2]]]))
        .txn(3, json!([["r", "x", [2]]]))
        .check();
    assert_eq!(kinds(&r), vec!["incompatible-order"], "{r:#?}");
    assert!(the(&r, "incompatible-order")
        .explanation
        .contains("[2], which is not a prefix of its longest read [1 2]"));
}

#[test]
fn an_element_read_twice_is_a_duplicate() {
    let r = H::default()
        .txn(0, json!([["append", "x", 1]]))
        .txn(2, json!([["r", "x", [1, 1]]]))
        .check();
    assert_eq!(kinds(&r), vec!["duplicate-elements"], "{r:#?}");
}

#[test]
fn two_appends_on_one_read_version_are_a_lost_update() {
    let r = H::default()
        .inv(0, json!([["r", "x", null], ["append", "x", 1]]))
        .inv(1, json!([["r", "x", null], ["append", "x", 2]]))
        .ok(0, json!([["r", "x", []], ["append", "x", 1]]))
        .ok(1, json!([["r", "x", []], ["append", "x", 2]]))
        .txn(2, json!([["r", "x", [1, 2]]]))
        .check();
    assert_eq!(kinds(&r), vec!["G-single", "lost-update"], "{r:#?}");
    assert_eq!(the(&r, "lost-update").txns, vec![0, 1]);
}

#[test]
fn a_stale_read_after_a_completed_append_is_g_single_realtime() {
    let h = H::default()
        .txn(0, json!([["append", "x", 1]]))
        .txn(1, json!([["r", "x", []]]))
        .txn(2, json!([["r", "x", [1]]]));
    let r = h.check();
    assert_eq!(kinds(&r), vec!["G-single-realtime"], "{r:#?}");
    assert!(the(&r, "G-single-realtime")
        .explanation
        .contains("(realtime)"));
    // Elle's hierarchy: strict serializability implies strong snapshot
    // isolation, which a realtime G-single already rules out; serializable
    // implies snapshot isolation.
    assert_eq!(r.not, vec!["strong-snapshot-isolation"]);
    assert!(r.also_not.contains(&"strict-serializable".to_string()));
    assert_eq!(r.may_satisfy, vec!["strong-session-serializable"]);
    assert_eq!(h.check_with(&["serializable"]).valid, Validity::Valid);
}

#[test]
fn one_process_seeing_its_appends_reordered_is_g0_process() {
    let r = H::default()
        .txn(0, json!([["append", "x", 1]]))
        .txn(0, json!([["append", "x", 2]]))
        .txn(1, json!([["r", "x", [2, 1]]]))
        .check();
    assert!(kinds(&r).contains(&"G0-process"), "{r:#?}");
    assert!(the(&r, "G0-process")
        .explanation
        .contains("ran on process 0"));
}

#[test]
fn indeterminate_txns_make_no_false_cycles() {
    // An info append that nobody saw, an info append that was seen, and an
    // info txn whose reads are unknown.
    let r = H::default()
        .inv(0, json!([["append", "x", 1], ["r", "y", null]]))
        .done(0, OpType::Info, Value::Null)
        .inv(1, json!([["append", "y", 1]]))
        .done(1, OpType::Info, Value::Null)
        .inv(2, json!([["append", "x", 2]]))
        .txn(3, json!([["r", "y", []], ["r", "x", [2]]]))
        .txn(3, json!([["r", "x", [2]], ["append", "y", 3]]))
        .check();
    assert_eq!(r.valid, Validity::Valid, "{r:#?}");
    assert_eq!(r.stats.info, 3);
}

#[test]
fn unknown_models_are_an_error() {
    let options = TxnOptions {
        consistency_models: vec!["eventual".into()],
        ..TxnOptions::default()
    };
    assert_eq!(
        check_list_append(&[], &options),
        Err(TxnError::UnknownModel("eventual".into()))
    );
}

#[test]
fn read_and_append_spellings_both_parse() {
    let r = H::default()
        .txn(0, json!([["a", 3, 1], ["read", 3, [1]]]))
        .txn(1, json!([["r", 3, [1]]]))
        .check();
    assert_eq!(r.valid, Validity::Valid, "{r:#?}");
    assert_eq!(r.stats.keys, 1);
}

#[test]
fn an_expired_budget_leaves_classes_unknown_but_an_scc_proves_a_cycle() {
    let h = H::default()
        .txn(0, json!([["append", "x", 1]]))
        .txn(1, json!([["r", "x", []]]))
        .txn(2, json!([["r", "x", [1]]]));
    let options = TxnOptions {
        time_limit: Some(Duration::ZERO),
        ..TxnOptions::default()
    };
    let r = check_list_append(&h.ops, &options).unwrap();
    assert!(r.unknown.iter().any(|u| u.kind == "G-single-realtime"
        && u.scc_sizes == vec![2]
        && u.reason.contains("ran past the time limit")));
    // As Elle's cycle-search-timeout: the SCC over every edge kind proves a
    // cycle strict serializability forbids, though not which one.
    assert_eq!(r.valid, Validity::Invalid, "{r:#?}");
    assert_eq!(kinds(&r), vec!["strong-snapshot-isolation-cycle-exists"]);
    assert_eq!(
        the(&r, "strong-snapshot-isolation-cycle-exists").txns,
        vec![0, 2]
    );
    let serializable = TxnOptions {
        consistency_models: vec!["serializable".into()],
        ..options
    };
    // No cycle of data edges exists, so nothing serializability forbids
    // was left unsearched.
    let r = check_list_append(&h.ops, &serializable).unwrap();
    assert_eq!(r.valid, Validity::Valid, "{r:#?}");
}

#[test]
fn an_interrupted_search_leaves_classes_unknown_saying_so() {
    let h = H::default()
        .txn(0, json!([["append", "x", 1]]))
        .txn(1, json!([["r", "x", []]]))
        .txn(2, json!([["r", "x", [1]]]));
    let options = TxnOptions {
        interrupt: Some(std::sync::Arc::new(std::sync::atomic::AtomicBool::new(
            true,
        ))),
        ..TxnOptions::default()
    };
    let r = check_list_append(&h.ops, &options).unwrap();
    assert!(!r.unknown.is_empty(), "{r:#?}");
    assert!(
        r.unknown
            .iter()
            .all(|u| u.reason.contains("was interrupted (Ctrl-C)")),
        "{r:#?}"
    );
    // What the SCC proves still stands, as for an expired time limit.
    assert_eq!(r.valid, Validity::Invalid, "{r:#?}");
    let calm = TxnOptions {
        interrupt: Some(std::sync::Arc::new(std::sync::atomic::AtomicBool::new(
            false,
        ))),
        ..TxnOptions::default()
    };
    let r = check_list_append(&h.ops, &calm).unwrap();
    assert!(r.unknown.is_empty(), "an unset flag stops nothing: {r:#?}");
}

#[test]
fn a_process_reading_its_own_append_late_is_g1c_process() {
    // Process 0 read an append that it only made in its next txn.
    let r = H::default()
        .txn(0, json!([["r", "x", [1]]]))
        .txn(0, json!([["append", "x", 1]]))
        .check();
    assert!(kinds(&r).contains(&"G1c-process"), "{r:#?}");
    assert!(the(&r, "G1c-process").explanation.contains("(wr)"));
}

#[test]
fn results_serialize_with_jepsen_style_validity() {
    let r = H::default()
        .txn(0, json!([["append", "x", 1], ["r", "x", []]]))
        .check();
    let v = serde_json::to_value(&r).unwrap();
    assert_eq!(v["valid"], json!(false));
    assert_eq!(v["counts"]["internal"], json!(1));
    assert_eq!(v["anomalies"][0]["txns"], json!([0]));
    assert!(v["stats"]["txns"].is_number());
}

#[test]
fn write_skew_without_any_later_read_is_g2_item() {
    // T0 appends x and reads y empty; T1 appends y and reads x empty. No
    // read ever shows x or y, yet each single append must follow the empty
    // read of its key.
    let h = H::default()
        .inv(0, json!([["append", "x", 1], ["r", "y", null]]))
        .inv(1, json!([["append", "y", 1], ["r", "x", null]]))
        .ok(0, json!([["append", "x", 1], ["r", "y", []]]))
        .ok(1, json!([["append", "y", 1], ["r", "x", []]]));
    let r = h.check_with(&["serializable"]);
    assert_eq!(r.valid, Validity::Invalid, "{r:#?}");
    assert_eq!(kinds(&r), vec!["G2-item"]);
    assert!(
        the(&r, "G2-item")
            .explanation
            .contains("T1 read key x as empty and T0 appended 1 to it"),
        "{}",
        the(&r, "G2-item").explanation
    );
    assert_eq!(h.check_with(&["snapshot-isolation"]).valid, Validity::Valid);
}

/// A transcription of the cycle in Elle's `histories/si-without-g-single.edn`.
fn si_without_g_single() -> H {
    H::default()
        .txn(2, json!([["append", 9, 2]]))
        .txn(4, json!([["append", 8, 1], ["r", 9, []]]))
        .txn(7, json!([["r", 6, []], ["r", 8, []], ["append", 9, 5]]))
        .txn(9, json!([["append", 6, 2], ["r", 9, [2]]]))
}

#[test]
fn elle_si_without_g_single_is_g2_item_through_unread_appends() {
    let h = si_without_g_single();
    for model in ["serializable", "repeatable-read"] {
        let r = h.check_with(&[model]);
        assert_eq!(r.valid, Validity::Invalid, "{model}: {r:#?}");
        assert_eq!(forbidden_kinds(&r, model), vec!["G2-item"], "{r:#?}");
        assert!(r.not.contains(&"repeatable-read".to_string()), "{r:#?}");
    }
    // Elle: snapshot isolation allows it (no G-single, no G-nonadjacent).
    assert_eq!(h.check_with(&["snapshot-isolation"]).valid, Validity::Valid);
    let g2 = the(&h.check_with(&["serializable"]), "G2-item").clone();
    assert!(
        g2.explanation.contains("which no read saw"),
        "{}",
        g2.explanation
    );
}

#[test]
fn an_unread_append_follows_the_longest_read() {
    // Elle's unobserved-write test: y's longest read [2] leaves 1 unread, so
    // T0's append of 1 to y follows T1's 2: ww T1 -> T0 on y, while x says
    // T0 -> T1. And T4 read y = [2] without 1: rw T4 -> T0.
    let r = H::default()
        .inv(0, json!([["append", "x", 1], ["append", "y", 1]]))
        .inv(1, json!([["append", "x", 2], ["append", "y", 2]]))
        .inv(2, json!([["append", "x", 3], ["append", "y", 3]]))
        .inv(3, json!([["r", "x", null]]))
        .inv(4, json!([["r", "y", null]]))
        .ok(0, json!([["append", "x", 1], ["append", "y", 1]]))
        .ok(1, json!([["append", "x", 2], ["append", "y", 2]]))
        .ok(2, json!([["append", "x", 3], ["append", "y", 3]]))
        .ok(3, json!([["r", "x", [1, 2]]]))
        .ok(4, json!([["r", "y", [2]]]))
        .check_with(&["serializable"]);
    assert_eq!(kinds(&r), vec!["G-single", "G0"], "{r:#?}");
}

#[test]
fn an_unread_append_of_an_unconfirmed_info_txn_makes_no_edges() {
    let r = H::default()
        .inv(0, json!([["append", "x", 1], ["r", "y", null]]))
        .ok(0, json!([["append", "x", 1], ["r", "y", []]]))
        .inv(1, json!([["append", "y", 1], ["r", "x", null]]))
        .done(1, OpType::Info, Value::Null)
        .check();
    assert_eq!(r.valid, Validity::Valid, "{r:#?}");
}

#[test]
fn two_nonadjacent_antidependencies_are_g_nonadjacent() {
    // Elle's G-nonadjacent test: rw wr rw wr, never two rw in a row.
    let h = H::default()
        .txn(0, json!([["append", "x", 1]]))
        .txn(1, json!([["r", "x", [1]], ["r", "y", []]]))
        .txn(2, json!([["append", "y", 1]]))
        .txn(3, json!([["r", "y", [1]], ["r", "x", []]]));
    let r = h.check_with(&["serializable"]);
    assert!(kinds(&r).contains(&"G-nonadjacent"), "{r:#?}");
    assert!(!kinds(&r).contains(&"G2-item"), "implied: {r:#?}");
    assert_eq!(r.not, vec!["repeatable-read", "snapshot-isolation"]);
    assert_eq!(
        h.check_with(&["snapshot-isolation"]).valid,
        Validity::Invalid
    );
}

#[test]
fn elles_rw_rw_wr_rw_wr_history_is_snapshot_isolated() {
    // From Elle's G-nonadjacent test: not a G-nonadjacent cycle.
    let h = H::default()
        .txn(0, json!([["r", "x", [5]], ["append", "y", 1]]))
        .txn(1, json!([["r", "y", []], ["append", "z", 2]]))
        .txn(2, json!([["r", "z", []], ["append", "t", 3]]))
        .txn(3, json!([["r", "t", [3]], ["append", "u", 4]]))
        .txn(4, json!([["r", "u", []], ["append", "x", 5]]));
    assert_eq!(h.check_with(&["snapshot-isolation"]).valid, Validity::Valid);
}

#[test]
fn requested_anomalies_alone_decide_validity() {
    let h = H::default()
        .inv(0, json!([["append", "x", 1], ["r", "y", null]]))
        .inv(1, json!([["append", "y", 1], ["r", "x", null]]))
        .ok(0, json!([["append", "x", 1], ["r", "y", []]]))
        .ok(1, json!([["append", "y", 1], ["r", "x", []]]));
    let with = |anomalies: &[&str]| {
        let options = TxnOptions {
            consistency_models: Vec::new(),
            anomalies: anomalies.iter().map(|a| a.to_string()).collect(),
            ..TxnOptions::default()
        };
        check_list_append(&h.ops, &options).unwrap().valid
    };
    assert_eq!(with(&["G0", "G1"]), Validity::Valid);
    assert_eq!(with(&["G2"]), Validity::Invalid);
    assert_eq!(with(&["G2-item"]), Validity::Invalid);
    let options = TxnOptions {
        anomalies: vec!["G9".into()],
        ..TxnOptions::default()
    };
    assert_eq!(
        check_list_append(&h.ops, &options),
        Err(TxnError::UnknownAnomaly("G9".into()))
    );
}

#[test]
fn a_read_of_the_txns_own_later_append_is_a_future_read() {
    let r = H::default()
        .txn(0, json!([["r", "x", [1]], ["append", "x", 1]]))
        .check_with(&["read-committed"]);
    assert_eq!(kinds(&r), vec!["future-read"], "{r:#?}");
    assert_eq!(r.not, vec!["read-committed"]);
}

#[test]
fn the_readme_table_is_the_hierarchy_in_code() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"))
        .expect("README.md");
    assert!(
        readme.contains(&hierarchy_table()),
        "README.md's table differs from the code; put this there:\n{}",
        hierarchy_table()
    );
}
