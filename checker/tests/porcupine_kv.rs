//! Porcupine's public kv histories (anishathalye/porcupine,
//! `test_data/kv/c{01,10,50}-{ok,bad}.txt`: EDN op maps with `:key`) get
//! Porcupine's verdicts under our `kv` model: `ok` valid, `bad` invalid.
//! Nothing of Porcupine's is kept here: point `FAULTLINE_PORCUPINE_DIR` at
//! a checkout of it and run `cargo test --release -p checker --test
//! porcupine_kv -- --ignored --nocapture`. Numbers: BENCHMARKS.md.
//!
//! The invalid ones also get the same answer on one thread as on two: the
//! same first invalid key and the same verdict for every key (the check's
//! rounds make that answer independent of timing; see
//! `checker::linearizable`).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use checker::import::{read_history_file, Format};
use checker::linearizable::{check, Options};
use checker::model::{ModelKind, ModelSpec};
use checker::Validity;

#[test]
#[ignore = "needs a Porcupine checkout in FAULTLINE_PORCUPINE_DIR"]
fn porcupines_kv_histories_get_porcupines_verdicts() {
    let Some(root) = std::env::var_os("FAULTLINE_PORCUPINE_DIR") else {
        eprintln!("skipped: FAULTLINE_PORCUPINE_DIR is not set");
        return;
    };
    let dir = PathBuf::from(root).join("test_data/kv");
    let spec = ModelSpec::new(ModelKind::Kv);
    let options = Options {
        time_limit: Some(Duration::from_secs(120)),
        ..Options::default()
    };
    let mut checked = 0;
    for name in [
        "c01-ok", "c01-bad", "c10-ok", "c10-bad", "c50-ok", "c50-bad",
    ] {
        let path = dir.join(format!("{name}.txt"));
        let history = read_history_file(&path, Some(Format::Edn))
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let started = Instant::now();
        let result = check(&history, &spec, &options).unwrap();
        let expected = match name.ends_with("-ok") {
            true => Validity::Valid,
            false => Validity::Invalid,
        };
        println!(
            "{name}: {} ops, {:?} in {:.1} ms (Porcupine: {expected:?}){}",
            result.ops,
            result.valid,
            started.elapsed().as_secs_f64() * 1e3,
            result
                .first_invalid_key
                .as_ref()
                .map_or(String::new(), |k| format!(", first invalid key {k}"))
        );
        assert_eq!(result.valid, expected, "{name}");
        if expected == Validity::Invalid {
            for threads in [1, 2] {
                let again = check(
                    &history,
                    &spec,
                    &Options {
                        threads,
                        ..options.clone()
                    },
                )
                .unwrap();
                assert_eq!(
                    again.first_invalid_key, result.first_invalid_key,
                    "{name}, {threads} threads"
                );
                let verdicts = |r: &checker::linearizable::CheckResult| {
                    r.keys
                        .iter()
                        .map(|(k, v)| (k.clone(), v.valid))
                        .collect::<Vec<_>>()
                };
                assert_eq!(
                    verdicts(&again),
                    verdicts(&result),
                    "{name}, {threads} threads"
                );
            }
        }
        checked += 1;
    }
    assert_eq!(checked, 6);
}
