//! Entry points of the fuzz targets (`fuzz/`, `cargo +nightly fuzz`) and
//! of the stable tests that replay their corpus (`tests/fuzz_replay.rs`):
//! each takes arbitrary bytes and must return, whatever they hold, without
//! a panic, a hang or a memory blow-up. Errors are fine; they are answers.
//!
//! The readers get the bytes as text. The checkers get a small history
//! decoded from the bytes ([`decode`]): four bytes per event, the pairing
//! kept well-formed on most events (so the search is reached) and broken
//! on purpose by the rest (so the errors are reached too).

use std::path::Path;
use std::time::Duration;

use serde_json::{json, Value};

use crate::history::{parse_jsonl, read_jsonl, Op, OpType, Process};
use crate::linearizable::{check, Options};
use crate::model::{ModelKind, ModelSpec, NilRead};
use crate::txn::{
    check_list_append, check_rw_register, RegisterOrder, TxnHistory, TxnOptions, TxnWorkload,
};

/// The name errors give the fuzzed input.
const NAME: &str = "fuzz-input";

/// The JSONL history reader, whole-text and streaming, and the
/// transactional checker's own JSONL reader for both workloads.
pub fn jsonl(data: &[u8]) {
    let path = Path::new(NAME);
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = parse_jsonl(text, path);
        let _ = crate::import::op_lines(text, Some(crate::import::Format::Jsonl));
        for workload in [TxnWorkload::ListAppend, TxnWorkload::RwRegister] {
            let _ = TxnHistory::parse_jsonl(text, path, workload);
        }
    }
    let _ = read_jsonl(data, path);
}

/// The EDN reader and importer, and format detection.
pub fn edn(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = crate::import::detect_format(text);
    let _ = crate::edn::parse_edn_history(text, Path::new(NAME));
    let _ = crate::import::op_lines(text, Some(crate::import::Format::Edn));
}

/// The linearizability checker, under the model the first byte picks,
/// with budgets small enough that no input runs long.
pub fn linearizable(data: &[u8]) {
    let Some((&head, rest)) = data.split_first() else {
        return;
    };
    let kind = ModelKind::ALL[head as usize % ModelKind::ALL.len()];
    let init = match (head >> 3) % 3 {
        0 => Value::Null,
        1 => json!(0),
        _ => json!({"0": 0, "1": 1}),
    };
    let nil_read = if head & 0x80 == 0 {
        NilRead::Value
    } else {
        NilRead::Unknown
    };
    let spec = ModelSpec {
        kind,
        init,
        nil_read,
    };
    // No time limit: its watchdog is a thread, and a thread's exit looks
    // like a leak to LeakSanitizer; the configuration budget bounds the
    // work instead, and the shrink's re-checks with it.
    let options = Options {
        time_limit: None,
        memo_bytes: 16 << 20,
        threads: 1,
        max_configurations: Some(200_000),
        all_keys: head & 0x40 != 0,
        shrink: Some(Duration::from_millis(100)),
        ..Options::default()
    };
    let history = decode(rest, &Shape::Ops);
    let _ = check(&history, &spec, &options);
}

/// The set checker, on one thread (a worker thread's exit looks like a
/// leak to LeakSanitizer; the keys' work is the same on any thread).
pub fn set(data: &[u8]) {
    let history = decode(data, &Shape::Set);
    let options = crate::set::SetOptions {
        threads: 1,
        ..crate::set::SetOptions::default()
    };
    let _ = crate::set::check_set_with(&history, &options);
}

/// The list-append checker, under the models the first byte picks.
pub fn list_append(data: &[u8]) {
    txn(data, TxnWorkload::ListAppend);
}

/// The rw-register checker, under the models and version-order sources
/// the first byte picks.
pub fn rw_register(data: &[u8]) {
    txn(data, TxnWorkload::RwRegister);
}

fn txn(data: &[u8], workload: TxnWorkload) {
    let Some((&head, rest)) = data.split_first() else {
        return;
    };
    const MODELS: [&str; 4] = [
        "strict-serializable",
        "serializable",
        "snapshot-isolation",
        "read-committed",
    ];
    let options = TxnOptions {
        consistency_models: vec![MODELS[head as usize % 4].to_string()],
        time_limit: Some(Duration::from_millis(200)),
        register_order: match (head >> 2) % 3 {
            0 => RegisterOrder::Inferred,
            1 => RegisterOrder::Process,
            _ => RegisterOrder::Realtime,
        },
        anomalies: if head & 0x80 != 0 {
            vec!["G1".to_string()]
        } else {
            Vec::new()
        },
        ..TxnOptions::default()
    };
    let history = decode(rest, &Shape::Txn(workload));
    let _ = match workload {
        TxnWorkload::ListAppend => check_list_append(&history, &options),
        TxnWorkload::RwRegister => check_rw_register(&history, &options),
    };
}

/// What the decoded ops look like.
enum Shape {
    /// Register, queue, set, mutex and counter ops over three keys.
    Ops,
    /// Set adds and reads.
    Set,
    /// Transactions of up to three micro-ops.
    Txn(TxnWorkload),
}

/// A history from four bytes per event: `[who, f, key, value]`. The low
/// bits of `who` pick one of four processes (or the nemesis); a process
/// with an invocation outstanding completes it (ok, fail or info) unless
/// the `0x40` bit asks for a malformed event instead.
fn decode(data: &[u8], shape: &Shape) -> Vec<Op> {
    let mut ops = Vec::new();
    let mut outstanding: [Option<Op>; 4] = Default::default();
    for (i, chunk) in data.chunks_exact(4).take(64).enumerate() {
        let [who, f, key, value] = [chunk[0], chunk[1], chunk[2], chunk[3]];
        let mut op = if who & 7 == 7 {
            let mut op = Op::invoke(
                0,
                ["kill", "start-partition", "stop-partition"][f as usize % 3],
                Value::Null,
            );
            op.process = Process::Nemesis;
            op.op_type = OpType::Info;
            op
        } else {
            let p = (who & 3) as usize;
            let malformed = who & 0x40 != 0;
            match outstanding[p].take() {
                Some(invoke) if !malformed => {
                    let op_type = [OpType::Ok, OpType::Ok, OpType::Fail, OpType::Info]
                        [(who >> 4) as usize & 3];
                    let value = completion_value(shape, &invoke, f, value);
                    invoke.completed(op_type, value)
                }
                _ => {
                    let invoke = invocation(shape, p as u64, f, key, value);
                    outstanding[p] = Some(invoke.clone());
                    invoke
                }
            }
        };
        op.index = i as u64;
        op.time = (who & 0x20 == 0).then_some(i as u64 * 1000);
        ops.push(op);
    }
    ops
}

fn invocation(shape: &Shape, process: u64, f: u8, key: u8, value: u8) -> Op {
    let v = i64::from(value % 6);
    match shape {
        Shape::Ops => {
            const FS: [&str; 9] = [
                "read", "write", "cas", "add", "acquire", "release", "enqueue", "dequeue", "txn",
            ];
            let name = FS[f as usize % FS.len()];
            let value = match name {
                "read" | "dequeue" | "acquire" | "release" => Value::Null,
                "cas" => json!([v, (v + 1) % 6]),
                "txn" => json!([["w", "0", v], ["r", "1", null]]),
                _ => json!(v),
            };
            let op = Op::invoke(process, name, value);
            match key % 4 {
                3 => op,
                k => op.with_key(k.to_string()),
            }
        }
        Shape::Set => {
            let name = if f & 1 == 0 { "add" } else { "read" };
            let value = if name == "add" { json!(v) } else { Value::Null };
            let op = Op::invoke(process, name, value);
            if key & 1 == 0 {
                op
            } else {
                op.with_key((key % 3).to_string())
            }
        }
        Shape::Txn(workload) => Op::invoke(process, "txn", mops(*workload, f, key, value)),
    }
}

/// Up to three micro-ops over three keys; reads' values unknown (null).
fn mops(workload: TxnWorkload, f: u8, key: u8, value: u8) -> Value {
    let write = match workload {
        TxnWorkload::ListAppend => "append",
        TxnWorkload::RwRegister => "w",
    };
    let n = 1 + f as usize % 3;
    let list: Vec<Value> = (0..n)
        .map(|i| {
            let k = ((key >> (2 * i)) % 3).to_string();
            if (f >> (2 + i)) & 1 == 0 {
                json!(["r", k, null])
            } else {
                json!([write, k, i64::from(value) * 3 + i as i64])
            }
        })
        .collect();
    Value::Array(list)
}

/// What a completion returns: reads get values from the bytes (lists for
/// list-append and set reads), everything else echoes its invocation.
fn completion_value(shape: &Shape, invoke: &Op, f: u8, value: u8) -> Value {
    let v = i64::from(value % 6);
    match shape {
        Shape::Ops if matches!(invoke.f.as_str(), "read" | "dequeue") => {
            if f & 0x80 != 0 {
                Value::Null
            } else {
                json!(v)
            }
        }
        Shape::Set if invoke.f == "read" => Value::Array(
            (0..value % 5)
                .map(|e| json!((i64::from(e) + v) % 6))
                .collect(),
        ),
        Shape::Txn(workload) => {
            let Value::Array(mops) = &invoke.value else {
                return invoke.value.clone();
            };
            let filled = mops
                .iter()
                .enumerate()
                .map(|(i, m)| {
                    if m[0] != "r" {
                        return m.clone();
                    }
                    let seen = (value >> i) & 3;
                    let read = match (workload, seen) {
                        (_, 0) => Value::Null,
                        (TxnWorkload::ListAppend, s) => {
                            Value::Array((0..s).map(|e| json!(i64::from(e + f % 4) * 3)).collect())
                        }
                        (TxnWorkload::RwRegister, s) => json!(i64::from(s + f % 4) * 3),
                    };
                    json!([m[0], m[1], read])
                })
                .collect();
            Value::Array(filled)
        }
        _ => invoke.value.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decoded_histories_mostly_pair_up_and_reach_the_checkers() {
        let data: Vec<u8> = (0..=255u8).cycle().take(256).collect();
        let history = decode(&data, &Shape::Txn(TxnWorkload::ListAppend));
        assert_eq!(history.len(), 64);
        let ok = history.iter().filter(|o| o.op_type == OpType::Ok).count();
        assert!(ok > 5, "{ok} ok ops");
        for entry in [jsonl, edn, linearizable, set, list_append, rw_register] {
            entry(&data);
            entry(&[]);
        }
    }
}
