//! Live processes that mention a path: a run's nodes have their data dirs
//! in the store, so a store's name in a command line marks its nodes.

use std::path::Path;
use std::time::{Duration, Instant};

/// Pids of live (not zombie) processes whose command line mentions `needle`.
pub fn processes_mentioning(needle: &Path) -> Vec<u32> {
    let needle = needle.to_string_lossy().to_string();
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        let zombie = stat
            .rsplit(')')
            .next()
            .is_some_and(|s| s.trim_start().starts_with('Z'));
        if !zombie && String::from_utf8_lossy(&cmdline).contains(&needle) {
            pids.push(pid);
        }
    }
    pids
}

/// Waits up to `limit` for every process mentioning `store` to be gone;
/// returns those still left.
pub fn wait_until_gone(store: &Path, limit: Duration) -> Vec<u32> {
    let deadline = Instant::now() + limit;
    loop {
        let left = processes_mentioning(store);
        if left.is_empty() || Instant::now() > deadline {
            return left;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// No live process mentions the store (every node's data dir is in it)
/// within 10 s.
pub fn assert_no_node_left(store: &Path) {
    let left = wait_until_gone(store, Duration::from_secs(10));
    assert!(left.is_empty(), "node processes left: {left:?}");
}
