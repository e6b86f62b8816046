//! `target-node`: parse the flags, run the node until SIGTERM or SIGINT.

use clap::Parser;
use std::process::ExitCode;

/// A replica of faultline's replicated key-value store.
#[derive(Parser)]
#[command(name = "target-node", version)]
struct Cli {
    #[command(flatten)]
    node: target_node::NodeArgs,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match target_node::run_blocking(cli.node) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("target-node: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
