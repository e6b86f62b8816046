//! Every input the fuzz targets kept (`fuzz/corpus/<target>/`) and every
//! input that ever crashed one (`fuzz/artifacts/<target>/`), replayed
//! through the same entry points (`checker::fuzz`) on stable Rust: what a
//! fuzzer once found stays fixed.

use std::path::{Path, PathBuf};

/// The files kept for `target`, corpus and artifacts.
fn inputs(target: &str) -> Vec<PathBuf> {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    let mut files = Vec::new();
    for dir in ["corpus", "artifacts"] {
        if let Ok(entries) = std::fs::read_dir(fuzz.join(dir).join(target)) {
            files.extend(entries.map(|e| e.unwrap().path()).filter(|p| p.is_file()));
        }
    }
    files.sort();
    files
}

fn replay(target: &str, entry: fn(&[u8])) {
    let files = inputs(target);
    assert!(!files.is_empty(), "fuzz/corpus/{target} holds no input");
    for file in &files {
        let data = std::fs::read(file).unwrap();
        let run = std::panic::catch_unwind(|| entry(&data));
        assert!(run.is_ok(), "{} panicked", file.display());
    }
}

#[test]
fn the_jsonl_reader_takes_every_kept_input() {
    replay("jsonl", checker::fuzz::jsonl);
}

#[test]
fn the_edn_reader_takes_every_kept_input() {
    replay("edn", checker::fuzz::edn);
}

#[test]
fn the_linearizability_checker_takes_every_kept_input() {
    replay("linearizable", checker::fuzz::linearizable);
}

#[test]
fn the_set_checker_takes_every_kept_input() {
    replay("set", checker::fuzz::set);
}

#[test]
fn the_list_append_checker_takes_every_kept_input() {
    replay("list_append", checker::fuzz::list_append);
}

#[test]
fn the_rw_register_checker_takes_every_kept_input() {
    replay("rw_register", checker::fuzz::rw_register);
}
