//! A crashing node reports nothing more durable: between `POST /admin/crash`
//! and the exit, the writer thread drops what it is given, and an ack for it
//! would let a primary commit an entry the crash takes away (found by the CI
//! campaign: a strong-mode append acknowledged during a whole-cluster crash
//! and missing after the restart).
//!
//! Its own test binary: the crash flag is process-wide.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use target_node::mode::Fsync;
use target_node::oplog::{Entry, Op};
use target_node::replication::PersistOp;
use target_node::storage::{recover, Writer, CRASHING};

fn entry(index: u64) -> Entry {
    Entry {
        term: 1,
        index,
        origin: "n1".into(),
        ts_ms: 0,
        op: Op::Noop,
    }
}

#[test]
fn a_crashing_writer_reports_nothing_durable_that_it_did_not_write() {
    for fsync in [Fsync::Always, Fsync::Never] {
        CRASHING.store(false, Ordering::SeqCst);
        let dir = tempfile::tempdir().unwrap();
        let durable = Arc::new(Mutex::new(Vec::new()));
        let seen = durable.clone();
        let mut writer = Writer::spawn(
            dir.path().into(),
            fsync,
            Duration::from_millis(1),
            move |seq| seen.lock().unwrap().push(seq),
        )
        .unwrap();
        writer.submit(1, PersistOp::Append(vec![entry(1)]));
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while durable.lock().unwrap().is_empty() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        CRASHING.store(true, Ordering::SeqCst);
        writer.submit(2, PersistOp::Append(vec![entry(2)]));
        writer.close();
        assert_eq!(
            *durable.lock().unwrap(),
            vec![1],
            "{fsync:?}: seq 2 was reported durable"
        );
        let on_disk = recover(dir.path(), true).unwrap().entries;
        if fsync == Fsync::Always {
            assert_eq!(on_disk, vec![entry(1)]);
        }
        assert!(
            !on_disk.contains(&entry(2)),
            "{fsync:?}: a crashing writer wrote"
        );
    }
}
