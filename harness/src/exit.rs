//! Exit codes, as docs/DESIGN.md's shared vocabulary fixes them for every command:
//! 0 valid, 1 invalid, 2 unknown, 3 usage error, 4 bad input, 5 the harness
//! itself failed. `anyhow` errors never leak out as clap's or Rust's own codes.

use std::process::ExitCode;

use checker::Validity;

/// The history is linearizable / every expectation met.
pub const VALID: u8 = 0;
/// Usage error: a bad flag or value (clap's own 2 remapped).
pub const USAGE: u8 = 3;
/// Bad input: an unreadable or malformed file.
pub const BAD_INPUT: u8 = 4;
/// The harness itself failed.
pub const INTERNAL: u8 = 5;

/// An error that knows its exit code.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// Bad flag or flag value.
    #[error("{0}")]
    Usage(String),
    /// Unreadable or malformed input.
    #[error("{0}")]
    BadInput(String),
    /// Anything else: the harness failed.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// The code for a verdict.
pub fn verdict(v: Validity) -> u8 {
    v.exit_code() as u8
}

/// Prints clap's message; help and version exit 0, anything else is a usage error.
pub fn clap_error(e: clap::Error) -> ExitCode {
    let _ = e.print();
    match e.kind() {
        clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => {
            ExitCode::from(VALID)
        }
        _ => ExitCode::from(USAGE),
    }
}

/// Maps a command's outcome to the process exit code, printing any error.
pub fn finish(outcome: Result<u8, Failure>) -> ExitCode {
    match outcome {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            let (code, label) = match &e {
                Failure::Usage(_) => (USAGE, "usage error"),
                Failure::BadInput(_) => (BAD_INPUT, "bad input"),
                Failure::Internal(_) => (INTERNAL, "error"),
            };
            eprintln!("faultline: {label}: {e:#}");
            ExitCode::from(code)
        }
    }
}
