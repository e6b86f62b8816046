//! Every input the HTTP fuzz target kept (`fuzz/corpus/node_http/`) and
//! every one that ever crashed it (`fuzz/artifacts/node_http/`), replayed
//! through `target_node::fuzz::http` on stable Rust. A panic on any thread
//! (a handler, the node's ticker, its writer) fails the test, as it aborts
//! the fuzzer.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

#[test]
fn the_node_answers_every_kept_request_without_panicking() {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    let mut files = Vec::new();
    for dir in ["corpus", "artifacts"] {
        if let Ok(entries) = std::fs::read_dir(fuzz.join(dir).join("node_http")) {
            files.extend(entries.map(|e| e.unwrap().path()).filter(|p| p.is_file()));
        }
    }
    assert!(!files.is_empty(), "fuzz/corpus/node_http holds no input");
    let panicked = Arc::new(AtomicBool::new(false));
    let seen = panicked.clone();
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        seen.store(true, Ordering::SeqCst);
        report(info);
    }));
    files.sort();
    for file in &files {
        let data = std::fs::read(file).unwrap();
        let _ = target_node::fuzz::http(&data);
        assert!(
            !panicked.load(Ordering::SeqCst),
            "{} made the node panic",
            file.display()
        );
    }
}
