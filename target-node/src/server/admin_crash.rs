//! `POST /admin/crash` (only with `--admin`): exit at once without flushing
//! the oplog buffer, as on power loss. Answers `202` just before exiting.

use axum::http::StatusCode;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tracing::warn;

use crate::storage::CRASHING;

/// Exit status of a crashed node.
const CRASH_EXIT_CODE: i32 = 137;

pub(super) async fn handle() -> StatusCode {
    CRASHING.store(true, Ordering::SeqCst);
    warn!("crash requested: exiting without flushing buffered writes");
    tokio::spawn(async {
        // Just long enough for the answer to leave; nothing is written meanwhile.
        tokio::time::sleep(Duration::from_millis(5)).await;
        std::process::exit(CRASH_EXIT_CODE);
    });
    StatusCode::ACCEPTED
}
