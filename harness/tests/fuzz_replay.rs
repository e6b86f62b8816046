//! Every input the TOML fuzz target kept (`fuzz/corpus/test_spec/`) and
//! every one that ever crashed it (`fuzz/artifacts/test_spec/`), replayed
//! through `harness::fuzz::test_spec` on stable Rust.

use std::path::Path;

#[test]
fn the_test_and_campaign_parsers_take_every_kept_input() {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    let mut files = Vec::new();
    for dir in ["corpus", "artifacts"] {
        if let Ok(entries) = std::fs::read_dir(fuzz.join(dir).join("test_spec")) {
            files.extend(entries.map(|e| e.unwrap().path()).filter(|p| p.is_file()));
        }
    }
    assert!(!files.is_empty(), "fuzz/corpus/test_spec holds no input");
    for file in &files {
        let data = std::fs::read(file).unwrap();
        let run = std::panic::catch_unwind(|| harness::fuzz::test_spec(&data));
        assert!(run.is_ok(), "{} panicked", file.display());
    }
}
