//! Results of a test run: where they live on disk and what they say.
//!
//! A run's directory, `store/<test-name>/<timestamp>/`, holds `test.json`
//! (the resolved test, itself a valid `--test` file), `history.jsonl` (streamed
//! as the run goes), `results.json` (verdicts, anomalies, statistics) and
//! `nodes/<node>.log`. `store/latest` points at the newest run. After the
//! run, [`write_report`] adds `report.html`, the plots, `timeline.html` and
//! `junit.xml`.
//!
//! # Layout
//! - [`store`]: the store on disk: run directories, their files, the `latest` links.
//! - [`recorder`]: the history recorder the runner streams ops into, crash-safe by line.
//! - [`summary`]: the schema of `results.json`: verdicts per checker (each the
//!   checker's own stored outcome, `checker::outcome`), anomalies, stats.
//! - [`markup`]: escaping for HTML, SVG and XML, the one place it is done.
//! - [`html`]: HTML with escaping built in, the one way the pages write markup.
//! - [`walltime`]: wall-clock times: the run's start, node-log timestamps, history time.
//! - [`mod@stats`]: statistics of a history: op counts, latency quantiles, throughput.
//! - [`ops`]: client ops as intervals, each invocation paired with its completion (`checker::pair`).
//! - [`faults`]: fault windows from the nemesis ops, labelled (partition sides, kill target, ...).
//! - [`plots`]: `latency-raw`, `latency-quantiles` and `rate` plots (PNG, SVG), faults shaded.
//! - [`linear_svg`]: the SVG of the window around a linearizability failure.
//! - [`timeline`]: `timeline.html`, ops per process over time, in pages.
//! - [`junit`]: `junit.xml`, its one writer (a typed builder), one test case per checker.
//! - [`set_table`]: the lost and stale elements of a set run, one row each, for the report
//!   (from the rows the set checker stored; never by checking again).
//! - [`txn_svg`]: transactional anomalies: each cycle drawn as an SVG, the others as rows.
//! - [`logs`]: node-log excerpts around an anomaly, aligned to history time.
//! - [`report`]: `report.html` and everything above, written into a run directory.
#![deny(missing_docs)]

pub mod faults;
pub mod html;
pub mod junit;
pub mod linear_svg;
pub mod logs;
pub mod markup;
pub mod ops;
pub mod plots;
pub mod recorder;
pub mod report;
pub mod set_table;
pub mod stats;
pub mod store;
pub mod summary;
pub mod timeline;
pub mod txn_svg;
pub mod walltime;

pub use recorder::Recorder;
pub use report::{write_report, ReportError, ReportFiles};
pub use stats::{stats, Stats};
pub use store::{RunDir, Store, StoreError};
pub use summary::{Anomaly, AnomalyEdge, CheckerResult, Results};

/// A fresh, empty directory for one unit test, removed by the caller's guard.
#[cfg(test)]
pub(crate) mod testdir {
    use std::path::{Path, PathBuf};
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A directory under the system temp dir, deleted on drop.
    pub struct TestDir(PathBuf);

    impl TestDir {
        /// A new empty directory whose name includes `label`.
        pub fn new(label: &str) -> TestDir {
            static NEXT: AtomicUsize = AtomicUsize::new(0);
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let path = std::env::temp_dir().join(format!(
                "faultline-results-{label}-{}-{n}",
                std::process::id()
            ));
            let _ = std::fs::remove_dir_all(&path);
            std::fs::create_dir_all(&path).unwrap();
            TestDir(path)
        }

        /// Its path.
        pub fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for TestDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}
