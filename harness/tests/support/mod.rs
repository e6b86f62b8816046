//! What the harness's test binaries share (each one does `mod support;`):
//! - [`faultline`], [`FAULTLINE`]: the binary under test, and
//!   [`faultline_in`] / [`spawn_in`] to run it on a store;
//! - [`code`], [`stdout`], [`stderr`]: what a finished run said;
//! - [`temp_store`]: a store path in a fresh temporary directory, and
//!   [`latest_run`]: the run directory `store/latest` points at;
//! - [`processes`]: the live processes that mention a path, and waiting
//!   for them to be gone;
//! - [`server`]: a running `faultline serve`;
//! - [`hosts`]: ssh hosts of our own (namespaces running sshd) for the
//!   remote-host tests;
//! - [`flags`]: flag lists that more than one test binary runs.

// Each test binary uses a part of this module; what one leaves unused,
// another uses, so unused items here are not dead code.
#![allow(dead_code)]

pub mod flags;
pub mod hosts;
pub mod processes;
pub mod server;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

/// The path of the `faultline` binary cargo built for these tests.
pub const FAULTLINE: &str = env!("CARGO_BIN_EXE_faultline");

/// A command running the `faultline` binary.
pub fn faultline() -> Command {
    Command::new(FAULTLINE)
}

/// `faultline ARGS --store STORE`, waited for.
pub fn faultline_in(store: &Path, args: &[&str]) -> Output {
    faultline()
        .args(args)
        .arg("--store")
        .arg(store)
        .output()
        .unwrap_or_else(|e| panic!("running faultline {args:?}: {e}"))
}

/// `faultline ARGS --store STORE`, started with stdout discarded and
/// stderr as given.
pub fn spawn_in(store: &Path, args: &[&str], stderr: Stdio) -> Child {
    faultline()
        .args(args)
        .arg("--store")
        .arg(store)
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .unwrap_or_else(|e| panic!("starting faultline {args:?}: {e}"))
}

/// The exit code of a finished `faultline`.
pub fn code(output: &Output) -> i32 {
    output
        .status
        .code()
        .expect("faultline exits with a code, not a signal")
}

/// What a finished `faultline` printed on stdout.
pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// What a finished `faultline` printed on stderr.
pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The run directory `store/latest` points at.
pub fn latest_run(store: &Path) -> PathBuf {
    std::fs::canonicalize(store.join("latest")).expect("store/latest points at the run")
}

/// A fresh temporary directory (removed when the first value drops) and a
/// store path inside it that does not exist yet.
pub fn temp_store() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    (dir, store)
}
