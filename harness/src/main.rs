//! `faultline`: a Jepsen-style consistency testing harness.
//!
//! # Layout
//! - [`cli`]: the command line (clap) and the shared duration syntax.
//! - [`exit`]: the exit codes of DESIGN's shared vocabulary, and error mapping.
//! - [`check`]: `faultline check`: check a recorded history.

mod check;
mod cli;
mod exit;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return exit::clap_error(e),
    };
    let outcome = match cli.command {
        cli::Command::Check(args) => check::run(args),
    };
    exit::finish(outcome)
}
