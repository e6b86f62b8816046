//! Porcupine's public kv histories (anishathalye/porcupine,
//! `test_data/kv/c{01,10,50}-{ok,bad}.txt`: EDN op maps with `:key`) get
//! Porcupine's verdicts under our `kv` model: `ok` valid, `bad` invalid.
//! Nothing of Porcupine's is kept here: point `FAULTLINE_PORCUPINE_DIR` at
//! a checkout of it and run `cargo test --release -p checker --test
//! porcupine_kv -- --ignored --nocapture`. Numbers: BENCHMARKS.md.

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
            "{name}: {} ops, {:?} in {:.1} ms (Porcupine: {expected:?})",
            result.ops,
            result.valid,
            started.elapsed().as_secs_f64() * 1e3
        );
        assert_eq!(result.valid, expected, "{name}");
        checked += 1;
    }
    assert_eq!(checked, 6);
}
