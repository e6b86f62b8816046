//! Golden histories: every file in `tests/golden/` gets the verdict its name
//! states, under the model, initial value and nil-read convention its name
//! chooses (`MODEL.CASE[.OPTION]...-ok|bad.jsonl`; see `golden/README.md`,
//! which says what each file shows).
//!
//! Beyond the per-file verdicts, this binary claims:
//! - the README describes every golden file;
//! - `time` never matters: equal, reversed or missing times give the same verdicts;
//! - the nil-read convention alone decides the pair of identical nil-read files;
//! - a FIFO violation is fine for an unordered queue (identical files);
//! - a multi-key history reports each key's verdict, the first invalid key in
//!   check order (numbers numerically, then strings), and `skipped` for the
//!   keys after it unless `all_keys`;
//! - every invalid verdict comes with an explanation naming the refused op.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use checker::history::{parse_jsonl, Op};
use checker::linearizable::{check, CheckResult, KeyVerdict, Options};
use checker::model::{ModelKind, ModelSpec, NilRead};
use checker::Validity;
use serde_json::Value;

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

/// One golden file, with what its name says.
struct Golden {
    name: String,
    ops: Vec<Op>,
    spec: ModelSpec,
    expected: Validity,
}

/// Reads the model, options and verdict out of `MODEL.CASE[.OPTION]...-ok|bad`.
fn parse_name(stem: &str) -> (ModelSpec, Validity) {
    let (rest, verdict) = stem
        .rsplit_once('-')
        .unwrap_or_else(|| panic!("{stem}: no -ok/-bad"));
    let expected = match verdict {
        "ok" => Validity::Valid,
        "bad" => Validity::Invalid,
        other => panic!("{stem}: verdict must be ok or bad, not {other:?}"),
    };
    let mut parts = rest.split('.');
    let kind: ModelKind = parts
        .next()
        .unwrap()
        .parse()
        .unwrap_or_else(|e| panic!("{stem}: {e}"));
    assert!(parts.next().is_some(), "{stem}: no case name");
    let mut spec = ModelSpec::new(kind);
    for option in parts {
        match option {
            "init-0" => spec.init = Value::from(0),
            "nil-unknown" => spec.nil_read = NilRead::Unknown,
            other => panic!("{stem}: unknown option {other:?}"),
        }
    }
    (spec, expected)
}

fn load(path: &Path) -> Golden {
    let name = path.file_stem().unwrap().to_str().unwrap().to_string();
    let text = std::fs::read_to_string(path).unwrap();
    let ops = parse_jsonl(&text, path).unwrap_or_else(|e| panic!("{e}"));
    let (spec, expected) = parse_name(&name);
    Golden {
        name,
        ops,
        spec,
        expected,
    }
}

fn all_golden() -> Vec<Golden> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(golden_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .collect();
    paths.sort();
    assert!(
        paths.len() >= 40,
        "expected the golden histories in {}",
        golden_dir().display()
    );
    paths.iter().map(|p| load(p)).collect()
}

fn one(name: &str) -> Golden {
    load(&golden_dir().join(format!("{name}.jsonl")))
}

fn run(ops: &[Op], spec: &ModelSpec, options: &Options) -> CheckResult {
    check(ops, spec, options).unwrap_or_else(|e| panic!("not checkable: {e}"))
}

/// Checks every golden history with `rewrite` applied; lists the files whose
/// verdict differs from their name's.
fn wrong_verdicts(rewrite: impl Fn(&mut Vec<Op>)) -> Vec<String> {
    let mut wrong = Vec::new();
    for mut g in all_golden() {
        rewrite(&mut g.ops);
        let result = run(&g.ops, &g.spec, &Options::default());
        if result.valid != g.expected {
            wrong.push(format!(
                "{}: expected {}, got {}",
                g.name, g.expected, result.valid
            ));
        }
    }
    wrong
}

#[test]
fn every_golden_history_gets_the_verdict_in_its_name() {
    let wrong = wrong_verdicts(|_| {});
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn golden_readme_describes_every_file() {
    let readme = std::fs::read_to_string(golden_dir().join("README.md")).unwrap();
    let undocumented: Vec<String> = all_golden()
        .into_iter()
        .map(|g| g.name)
        .filter(|name| !readme.contains(&format!("`{name}`")))
        .collect();
    assert!(
        undocumented.is_empty(),
        "not in golden/README.md: {undocumented:?}"
    );
}

#[test]
fn verdicts_do_not_change_when_every_time_is_equal() {
    let wrong = wrong_verdicts(|ops| ops.iter_mut().for_each(|op| op.time = Some(7)));
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn verdicts_do_not_change_when_times_run_backwards_or_are_missing() {
    let reversed = wrong_verdicts(|ops| {
        let n = ops.len() as u64;
        ops.iter_mut()
            .enumerate()
            .for_each(|(i, op)| op.time = Some((n - i as u64) * 1000));
    });
    assert!(reversed.is_empty(), "{}", reversed.join("\n"));
    let missing = wrong_verdicts(|ops| ops.iter_mut().for_each(|op| op.time = None));
    assert!(missing.is_empty(), "{}", missing.join("\n"));
}

#[test]
fn nil_read_convention_alone_decides_the_same_history() {
    let unknown = one("cas-register.read-nil-after-write.init-0.nil-unknown-ok");
    let value = one("cas-register.read-nil-after-write.init-0-bad");
    assert_eq!(
        unknown.ops, value.ops,
        "the two files must hold the same history"
    );
    assert_eq!(unknown.spec.init, value.spec.init);
    let as_unknown = run(
        &value.ops,
        &ModelSpec {
            nil_read: NilRead::Unknown,
            ..value.spec.clone()
        },
        &Options::default(),
    );
    let as_value = run(&value.ops, &value.spec, &Options::default());
    assert_eq!(as_unknown.valid, Validity::Valid);
    assert_eq!(as_value.valid, Validity::Invalid);
    let message = &as_value
        .explanation
        .expect("invalid comes with an explanation")
        .message;
    assert!(message.contains("nil"), "{message}");
}

#[test]
fn out_of_order_dequeues_are_valid_for_unordered_but_invalid_for_fifo_queue() {
    let fifo = one("fifo-queue.out-of-order-dequeue-bad");
    let unordered = one("unordered-queue.out-of-order-dequeue-ok");
    assert_eq!(
        fifo.ops, unordered.ops,
        "the two files must hold the same history"
    );
    let options = Options::default();
    assert_eq!(
        run(&fifo.ops, &ModelSpec::new(ModelKind::FifoQueue), &options).valid,
        Validity::Invalid
    );
    assert_eq!(
        run(
            &fifo.ops,
            &ModelSpec::new(ModelKind::UnorderedQueue),
            &options
        )
        .valid,
        Validity::Valid
    );
}

fn key_verdicts(result: &CheckResult) -> BTreeMap<String, KeyVerdict> {
    result
        .keys
        .iter()
        .map(|(k, r)| (k.clone(), r.valid))
        .collect()
}

fn verdicts(pairs: &[(&str, KeyVerdict)]) -> BTreeMap<String, KeyVerdict> {
    pairs.iter().map(|(k, r)| (k.to_string(), *r)).collect()
}

#[test]
fn first_invalid_key_is_first_in_numeric_order_and_later_keys_are_skipped() {
    let g = one("cas-register.keys-one-invalid-bad");
    for threads in [1, 4] {
        let result = run(
            &g.ops,
            &g.spec,
            &Options {
                threads,
                ..Options::default()
            },
        );
        assert_eq!(result.valid, Validity::Invalid);
        assert_eq!(
            result.first_invalid_key.as_deref(),
            Some("2"),
            "threads {threads}"
        );
        use KeyVerdict::*;
        let expected = verdicts(&[
            ("1", Valid),
            ("2", Invalid),
            ("10", Skipped),
            ("x", Skipped),
        ]);
        assert_eq!(key_verdicts(&result), expected, "threads {threads}");
        assert_eq!(result.keys["2"].ops, 2);
        assert!(result.keys["2"].explanation.is_some());
        assert!(result.explanation.is_some());
    }
}

#[test]
fn all_keys_checks_every_key_after_an_invalid_one() {
    let g = one("cas-register.keys-one-invalid-bad");
    let result = run(
        &g.ops,
        &g.spec,
        &Options {
            all_keys: true,
            ..Options::default()
        },
    );
    assert_eq!(result.first_invalid_key.as_deref(), Some("2"));
    use KeyVerdict::*;
    let expected = verdicts(&[("1", Valid), ("2", Invalid), ("10", Valid), ("x", Invalid)]);
    assert_eq!(key_verdicts(&result), expected);
    let explanation = result
        .explanation
        .expect("invalid comes with an explanation");
    assert_eq!(explanation.op.f, "read");
    assert_eq!(
        explanation.op.index, 10,
        "the explanation is key 2's (its read is invoked at line 11)"
    );
}

#[test]
fn independent_keys_are_checked_separately_and_each_reported() {
    let g = one("cas-register.keys-independent-ok");
    let result = run(&g.ops, &g.spec, &Options::default());
    assert_eq!(result.valid, Validity::Valid);
    use KeyVerdict::*;
    assert_eq!(
        key_verdicts(&result),
        verdicts(&[("a", Valid), ("b", Valid)])
    );
    assert_eq!(result.first_invalid_key, None);
    // Merged into one register, the same ops are not linearizable.
    let mut merged = g.ops.clone();
    merged.iter_mut().for_each(|op| op.key = None);
    assert_eq!(
        run(&merged, &g.spec, &Options::default()).valid,
        Validity::Invalid
    );
}

#[test]
fn every_invalid_verdict_explains_which_op_cannot_be_linearized() {
    for g in all_golden()
        .into_iter()
        .filter(|g| g.expected == Validity::Invalid)
    {
        let result = run(&g.ops, &g.spec, &Options::default());
        let e = result
            .explanation
            .unwrap_or_else(|| panic!("{}: no explanation", g.name));
        assert!(e.message.starts_with("can't "), "{}: {}", g.name, e.message);
        let refused = &g.ops[e.op.index];
        assert_eq!(
            refused.f, e.op.f,
            "{}: explanation names op {}",
            g.name, e.op.index
        );
    }
}

#[test]
fn stale_read_explanation_names_the_read_and_the_value_held() {
    let g = one("register.stale-read-after-completed-write.init-0-bad");
    let e = run(&g.ops, &g.spec, &Options::default())
        .explanation
        .unwrap();
    assert_eq!(e.message, "can't read 0: register holds 1");
    assert_eq!(e.op.index, 2);
    assert_eq!(
        e.last_ok.map(|o| o.index),
        Some(0),
        "the write is the last ok op before it"
    );
    assert_eq!(e.prefix.len(), 1);
    assert_eq!(e.states, vec![Value::from(1)]);
}

/// Semantically valid: the `info` dequeue may have taken the only element,
/// so the queue may be empty when the last dequeue sees nil. The FIFO model
/// accepts this history (`fifo-queue.info-dequeue-empties-queue-ok`).
#[test]
fn info_dequeue_may_empty_an_unordered_queue() {
    let g = one("fifo-queue.info-dequeue-empties-queue-ok");
    let result = run(
        &g.ops,
        &ModelSpec::new(ModelKind::UnorderedQueue),
        &Options::default(),
    );
    assert_eq!(result.valid, Validity::Valid, "{:?}", result.explanation);
}
