//! The shared corpus: 122 real Jepsen histories with the verdict Knossos
//! asserts for each (`../shared/corpus/VERDICTS.tsv`). Every one must get
//! its expected verdict with the listed model, initial state and nil-read
//! convention, except that a history without client ops (one, all nemesis)
//! is `unknown` rather than Knossos's vacuous `valid`.
//!
//! This is its own group, ignored by `cargo test --workspace` so a fresh
//! clone without `../shared` passes; `.ci/run` runs it on purpose:
//! `cargo test -p checker --test corpus -- --ignored`.

use std::path::{Path, PathBuf};

use checker::history::stream::KeyedHistory;
use checker::import::read_history_file;
use checker::linearizable::{check, check_partitions, Options};
use checker::model::{ModelKind, ModelSpec, NilRead};
use checker::Validity;

fn corpus_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus");
    assert!(
        dir.join("VERDICTS.tsv").is_file(),
        "the shared corpus is missing: expected {} (a checkout of this workspace beside shared/)",
        dir.display()
    );
    dir
}

struct Case {
    file: String,
    spec: ModelSpec,
    expected: Validity,
}

fn cases(dir: &Path) -> Vec<Case> {
    let table =
        std::fs::read_to_string(dir.join("VERDICTS.tsv")).expect("VERDICTS.tsv is readable");
    table
        .lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let cols: Vec<&str> = line.split('\t').collect();
            let [file, model, init, nil_read, expected] = cols[..] else {
                panic!("VERDICTS.tsv: malformed line {line:?}");
            };
            let kind: ModelKind = model.parse().unwrap();
            let init = if init == "-" {
                serde_json::Value::Null
            } else {
                serde_json::from_str(init).unwrap()
            };
            let nil_read = if nil_read == "unknown" {
                NilRead::Unknown
            } else {
                NilRead::Value
            };
            let expected = match expected {
                "valid" => Validity::Valid,
                "invalid" => Validity::Invalid,
                other => panic!("VERDICTS.tsv: unknown verdict {other:?}"),
            };
            Case {
                file: file.to_string(),
                spec: ModelSpec {
                    kind,
                    init,
                    nil_read,
                },
                expected,
            }
        })
        .collect()
}

#[test]
#[ignore = "needs ../shared/corpus; run with: cargo test -p checker --test corpus -- --ignored"]
fn every_corpus_history_gets_the_verdict_knossos_asserts() {
    let dir = corpus_dir();
    let cases = cases(&dir);
    assert_eq!(cases.len(), 122, "VERDICTS.tsv should list 122 histories");
    let options = Options {
        time_limit: Some(std::time::Duration::from_secs(60)),
        ..Options::default()
    };
    let (mut wrong, mut vacuous) = (Vec::new(), 0);
    for case in &cases {
        let history = read_history_file(&dir.join(&case.file), None).unwrap();
        let result = check(&history, &case.spec, &options).unwrap();
        // Knossos calls a history without client ops valid; it proves
        // nothing, and we say unknown ("no operations"), as Elle does.
        let expected = if history.iter().any(|o| !o.is_nemesis()) {
            case.expected
        } else {
            vacuous += 1;
            Validity::Unknown
        };
        if result.valid != expected {
            wrong.push(format!(
                "{}: expected {}, got {}",
                case.file, expected, result.valid
            ));
        }
        if case.expected == Validity::Invalid {
            let e = result
                .explanation
                .as_ref()
                .expect("an invalid verdict comes with an explanation");
            assert!(
                e.message.starts_with("can't "),
                "{}: {}",
                case.file,
                e.message
            );
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {} wrong:\n{}",
        wrong.len(),
        cases.len(),
        wrong.join("\n")
    );
    println!(
        "{} of {} as Knossos says; {vacuous} without client ops unknown",
        cases.len() - vacuous,
        cases.len()
    );
}

#[test]
#[ignore = "needs ../shared/corpus; run with: cargo test -p checker --test corpus -- --ignored"]
fn every_corpus_history_read_streamed_as_jsonl_gets_the_same_result() {
    let dir = corpus_dir();
    let options = Options {
        time_limit: Some(std::time::Duration::from_secs(60)),
        ..Options::default()
    };
    let mut wrong = Vec::new();
    for case in &cases(&dir) {
        let history = read_history_file(&dir.join(&case.file), None).unwrap();
        let whole = check(&history, &case.spec, &options).unwrap();
        let text: String = history
            .iter()
            .map(|op| serde_json::to_string(op).unwrap() + "\n")
            .collect();
        let keyed = KeyedHistory::parse_jsonl(&text, Path::new(&case.file)).unwrap();
        let streamed =
            check_partitions(&keyed.partitions(), keyed.ops(), &case.spec, &options).unwrap();
        let keys = |r: &checker::linearizable::CheckResult| {
            let verdicts: Vec<String> = r
                .keys
                .iter()
                .map(|(k, v)| format!("{k}:{:?}:{}", v.valid, v.ops))
                .collect();
            (
                r.valid,
                r.ops,
                verdicts,
                r.explanation.as_ref().map(|e| e.message.clone()),
            )
        };
        if keys(&whole) != keys(&streamed) {
            wrong.push(format!(
                "{}: {:?} streamed, {:?} whole",
                case.file,
                keys(&streamed),
                keys(&whole)
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
