//! Hand-made rw-register histories: one per anomaly the analysis can prove,
//! valid ones it must not flag, and what it cannot see without assumptions.

use serde_json::{json, Value};

use super::tests::{kinds, the, H};
use super::*;
use crate::history::OpType;

impl H {
    fn check_ordered(&self, order: RegisterOrder) -> TxnResult {
        let options = TxnOptions {
            register_order: order,
            ..TxnOptions::default()
        };
        check_rw_register(&self.ops, &options).expect("well-formed history")
    }
    fn check_register(&self) -> TxnResult {
        self.check_ordered(RegisterOrder::Inferred)
    }
}

#[test]
fn a_serial_register_history_is_strict_serializable() {
    let r = H::default()
        .txn(0, json!([["r", "x", null], ["w", "x", 1]]))
        .txn(1, json!([["r", "x", 1], ["w", "y", 2], ["r", "y", 2]]))
        .txn(0, json!([["w", "x", 3], ["r", "y", 2]]))
        .txn(2, json!([["r", "x", 3], ["r", "y", 2]]))
        .check_ordered(RegisterOrder::Realtime);
    assert_eq!(r.valid, Validity::Valid, "{r:#?}");
    assert!(r.anomalies.is_empty());
}

#[test]
fn opposite_read_then_write_orders_on_two_keys_are_g0() {
    // T0 read y = 3 (T2's) and wrote y = 4 over it; T2 read x = 1 (T0's)
    // and wrote x = 2 over it: each overwrote the other.
    let r = H::default()
        .inv(0, json!([["r", "y", null], ["w", "y", 4], ["w", "x", 1]]))
        .inv(1, json!([["r", "x", null], ["w", "x", 2], ["w", "y", 3]]))
        .ok(0, json!([["r", "y", 3], ["w", "y", 4], ["w", "x", 1]]))
        .ok(1, json!([["r", "x", 1], ["w", "x", 2], ["w", "y", 3]]))
        .check_register();
    assert!(kinds(&r).contains(&"G0"), "{r:#?}");
    let g0 = the(&r, "G0");
    assert!(
        g0.explanation.contains("read it and then wrote over it")
            && g0.explanation.contains("(ww)"),
        "{}",
        g0.explanation
    );
    assert_eq!(r.valid, Validity::Invalid);
}

#[test]
fn reading_an_aborted_write_is_g1a() {
    let r = H::default()
        .inv(0, json!([["w", "x", 1]]))
        .done(0, OpType::Fail, json!([["w", "x", 1]]))
        .txn(1, json!([["r", "x", 1]]))
        .check_register();
    assert_eq!(kinds(&r), vec!["G1a"], "{r:#?}");
    assert!(the(&r, "G1a")
        .explanation
        .contains("T2 read key x = 1, which T0 wrote but then aborted"));
    assert_eq!(r.not, vec!["read-committed"]);
}

#[test]
fn reading_an_overwritten_value_of_one_txn_is_g1b() {
    let r = H::default()
        .inv(0, json!([["w", "x", 1], ["w", "x", 2]]))
        .txn(1, json!([["r", "x", 1]]))
        .ok(0, json!([["w", "x", 1], ["w", "x", 2]]))
        .check_register();
    assert_eq!(kinds(&r), vec!["G1b"], "{r:#?}");
    assert!(the(&r, "G1b")
        .explanation
        .contains("intermediate write of T0"));
}

#[test]
fn reads_of_each_others_writes_are_g1c() {
    let r = H::default()
        .inv(0, json!([["w", "x", 1], ["r", "y", null]]))
        .inv(1, json!([["w", "y", 1], ["r", "x", null]]))
        .ok(0, json!([["w", "x", 1], ["r", "y", 1]]))
        .ok(1, json!([["w", "y", 1], ["r", "x", 1]]))
        .check_register();
    assert_eq!(kinds(&r), vec!["G1c"], "{r:#?}");
    assert!(the(&r, "G1c")
        .explanation
        .contains("which T1 wrote, so T1 precedes"));
}

#[test]
fn seeing_one_write_of_a_txn_but_the_initial_state_of_another_is_g_single() {
    // T0 saw T1's y but read x as nil: nil precedes T1's x = 1.
    let r = H::default()
        .inv(0, json!([["r", "x", null], ["r", "y", null]]))
        .inv(1, json!([["w", "x", 1], ["w", "y", 1]]))
        .ok(1, json!([["w", "x", 1], ["w", "y", 1]]))
        .ok(0, json!([["r", "x", null], ["r", "y", 1]]))
        .check_register();
    assert_eq!(kinds(&r), vec!["G-single"], "{r:#?}");
    assert!(
        the(&r, "G-single").explanation.contains(
            "T0 read key x = nil and T1 wrote 1, a later version (every written version follows the initial nil)"
        ),
        "{}",
        the(&r, "G-single").explanation
    );
    assert_eq!(r.not, vec!["repeatable-read", "snapshot-isolation"]);
}

#[test]
fn write_skew_on_registers_is_g2_item() {
    let r = H::default()
        .inv(0, json!([["r", "x", null], ["w", "y", 1]]))
        .inv(1, json!([["r", "y", null], ["w", "x", 1]]))
        .ok(0, json!([["r", "x", null], ["w", "y", 1]]))
        .ok(1, json!([["r", "y", null], ["w", "x", 1]]))
        .check_register();
    assert_eq!(kinds(&r), vec!["G2-item"], "{r:#?}");
    // Both read the initial state concurrently: strong SI still holds.
    assert_eq!(r.may_satisfy, vec!["strong-snapshot-isolation"]);
}

#[test]
fn two_txns_overwriting_the_version_they_both_read_is_a_lost_update() {
    let r = H::default()
        .txn(0, json!([["w", "x", 1]]))
        .inv(0, json!([["r", "x", null], ["w", "x", 2]]))
        .inv(1, json!([["r", "x", null], ["w", "x", 3]]))
        .ok(0, json!([["r", "x", 1], ["w", "x", 2]]))
        .ok(1, json!([["r", "x", 1], ["w", "x", 3]]))
        .check_register();
    assert!(kinds(&r).contains(&"lost-update"), "{r:#?}");
    assert_eq!(the(&r, "lost-update").txns, vec![2, 3]);
    assert!(kinds(&r).contains(&"G2-item"), "{r:#?}");
}

#[test]
fn disagreeing_with_the_txns_own_write_or_read_is_internal() {
    let r = H::default()
        .txn(0, json!([["w", "x", 1], ["r", "x", null]]))
        .check_register();
    assert_eq!(kinds(&r), vec!["internal"], "{r:#?}");
    assert!(the(&r, "internal")
        .explanation
        .contains("T0 read key x = nil after its own write of 1"));
    let r = H::default()
        .txn(0, json!([["w", "x", 1]]))
        .txn(1, json!([["w", "x", 2]]))
        .txn(2, json!([["r", "x", 1], ["r", "x", 2]]))
        .check_register();
    assert!(kinds(&r).contains(&"internal"), "{r:#?}");
}

#[test]
fn a_value_nobody_wrote_is_a_garbage_read() {
    // With a read of nil beside it, 7 cannot be the initial state.
    let r = H::default()
        .txn(0, json!([["r", "x", 7]]))
        .txn(1, json!([["r", "x", null]]))
        .check_register();
    assert_eq!(kinds(&r), vec!["garbage-read"], "{r:#?}");
    assert_eq!(r.not, vec!["read-uncommitted"]);
}

#[test]
fn a_keys_one_unwritten_value_is_its_unrecorded_initial_state() {
    let r = H::default().txn(0, json!([["r", "x", 7]])).check_register();
    assert_eq!(kinds(&r), Vec::<&str>::new(), "{r:#?}");
}

#[test]
fn a_read_of_nil_after_a_completed_write_is_g_single_realtime() {
    let h = H::default()
        .txn(0, json!([["w", "x", 1]]))
        .txn(1, json!([["r", "x", null]]));
    let r = h.check_register();
    assert_eq!(kinds(&r), vec!["G-single-realtime"], "{r:#?}");
    assert!(the(&r, "G-single-realtime")
        .explanation
        .contains("(realtime)"));
}

#[test]
fn a_stale_read_of_an_older_value_needs_the_realtime_assumption() {
    // x = 1 then x = 2, both complete before T2 reads 1. Nothing in the
    // reads orders 1 before 2; with linearizable keys it is a stale read.
    let h = H::default()
        .txn(0, json!([["w", "x", 1]]))
        .txn(1, json!([["w", "x", 2]]))
        .txn(2, json!([["r", "x", 1]]));
    assert_eq!(
        h.check_register().valid,
        Validity::Valid,
        "{:#?}",
        h.check_register()
    );
    let r = h.check_ordered(RegisterOrder::Realtime);
    assert_eq!(kinds(&r), vec!["G-single-realtime"], "{r:#?}");
    assert!(
        the(&r, "G-single-realtime")
            .explanation
            .contains("keys are assumed linearizable"),
        "{}",
        the(&r, "G-single-realtime").explanation
    );
    // Process order alone does not order writes of two processes.
    assert_eq!(
        h.check_ordered(RegisterOrder::Process).valid,
        Validity::Valid
    );
}

#[test]
fn process_order_of_writes_finds_a_read_going_back_in_time() {
    // Process 0 wrote 1 then 2; process 1 read 2 then, later, 1.
    let h = H::default()
        .inv(0, json!([["w", "x", 1]]))
        .inv(1, json!([["r", "x", null]]))
        .ok(0, json!([["w", "x", 1]]))
        .inv(0, json!([["w", "x", 2]]))
        .ok(0, json!([["w", "x", 2]]))
        .ok(1, json!([["r", "x", 2]]))
        .txn(1, json!([["r", "x", 1]]));
    assert!(h
        .check_register()
        .anomalies
        .iter()
        .all(|a| a.kind != "G-single-process"));
    let r = h.check_ordered(RegisterOrder::Process);
    assert!(kinds(&r).contains(&"G-single-process"), "{r:#?}");
}

#[test]
fn unobserved_indeterminate_writes_make_no_cycles() {
    let r = H::default()
        .inv(0, json!([["w", "x", 1]]))
        .done(0, OpType::Info, Value::Null)
        .txn(1, json!([["r", "x", null]]))
        .inv(2, json!([["w", "y", 1]]))
        .done(2, OpType::Info, Value::Null)
        .txn(3, json!([["r", "y", 1], ["r", "x", null]]))
        .check_register();
    assert_eq!(r.valid, Validity::Valid, "{r:#?}");
}

#[test]
fn a_value_written_twice_to_a_key_is_malformed() {
    let h = H::default()
        .txn(0, json!([["w", "x", 1]]))
        .txn(1, json!([["w", "x", 1]]));
    let err = check_rw_register(&h.ops, &TxnOptions::default()).unwrap_err();
    assert!(
        err.to_string()
            .contains("T2 wrote 1 to key x again (first written by T0)"),
        "{err}"
    );
}

#[test]
fn string_values_and_integer_keys_are_registers_too() {
    let r = H::default()
        .txn(0, json!([["w", 5, "a"]]))
        .txn(1, json!([["r", 5, "a"], ["w", 5, "b"]]))
        .txn(2, json!([["r", 5, "a"]]))
        .check_register();
    // T2 read "a" after T1 (read "a", wrote "b") completed: stale.
    assert_eq!(kinds(&r), vec!["G-single-realtime"], "{r:#?}");
    assert!(the(&r, "G-single-realtime").explanation.contains("\"b\""));
}

#[test]
fn overwriting_the_unrecorded_initial_value_twice_is_a_lost_update_not_a_crash() {
    // Elle's rw-register lost-update test reads 0, never written: the
    // initial state, which both txns overwrite.
    let r = H::default()
        .inv(0, json!([["r", "x", null], ["w", "x", 1]]))
        .inv(1, json!([["r", "x", null], ["w", "x", 2]]))
        .ok(0, json!([["r", "x", 0], ["w", "x", 1]]))
        .ok(1, json!([["r", "x", 0], ["w", "x", 2]]))
        .check_register();
    assert_eq!(kinds(&r), vec!["G2-item", "lost-update"], "{r:#?}");
}
