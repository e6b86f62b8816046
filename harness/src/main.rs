//! `faultline`: a Jepsen-style consistency testing harness.
//!
//! # Layout
//! - [`cli`]: the command line (clap) and the shared duration syntax.
//! - [`exit`]: the exit codes of docs/DESIGN.md's shared vocabulary, and error mapping.
//! - [`check`]: `faultline check`: check a recorded history.
//! - `cleanup` (in `main`): `faultline cleanup`, over the library's `cleanup`.
//! - `report` (in `main`): `faultline report RUN_DIR`, over `results::write_report`.
//! - [`run_cmd`]: `faultline run`: run a test (the life of a test is in the
//!   library's `run` module).
//! - [`campaign_cmd`]: `faultline campaign`: run a campaign's cells (the
//!   campaign file, verdicts and documents are in the library's `campaign`).
//! - `serve` (in `main`): `faultline serve`, over the library's `serve`.
//! - `systems` (in `main`): `faultline systems`, the table of the library's
//!   `system::SYSTEMS`.
//!
//! `faultline node ...` runs the shipped target-node in this executable, so
//! the harness launches itself and one build gives everything.

mod campaign_cmd;
mod check;
mod cli;
mod exit;
mod run_cmd;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return exit::clap_error(e),
    };
    let outcome = match cli.command {
        cli::Command::Check(args) => check::run(args),
        cli::Command::Run(args) => run_cmd::run(args),
        cli::Command::Node(args) => node(args),
        cli::Command::Systems => systems(),
        cli::Command::Cleanup(args) => cleanup(args),
        cli::Command::Report(args) => report(args),
        cli::Command::Campaign(args) => campaign_cmd::run(args),
        cli::Command::Serve(args) => serve(args),
    };
    exit::finish(outcome)
}

/// `faultline node`: serve until SIGTERM/SIGINT.
fn node(args: target_node::NodeArgs) -> Result<u8, exit::Failure> {
    match target_node::run_blocking(args) {
        Ok(()) => Ok(exit::VALID),
        Err(e) if e.exit_code() == 3 => Err(exit::Failure::Usage(e.to_string())),
        Err(e) => Err(exit::Failure::Internal(e.into())),
    }
}

/// `faultline systems`: the systems, with what each supports.
fn systems() -> Result<u8, exit::Failure> {
    print!("{}", harness::system::describe_all());
    Ok(exit::VALID)
}

/// `faultline cleanup`: undo what killed runs left; exit 5 if something could not be undone.
fn cleanup(args: cli::CleanupArgs) -> Result<u8, exit::Failure> {
    let report = harness::cleanup::cleanup(&args.store);
    for run in &report.runs {
        println!("run {} had not ended", run.display());
    }
    for (node, group) in &report.killed {
        println!("killed {node} (process group {group})");
    }
    for rule in &report.rules {
        println!("removed {rule}");
    }
    for problem in &report.problems {
        eprintln!("faultline: cleanup: {problem}");
    }
    if report.runs.is_empty() && report.killed.is_empty() && report.rules.is_empty() {
        println!("nothing to clean up in {}", args.store.display());
    }
    Ok(if report.problems.is_empty() {
        exit::VALID
    } else {
        exit::INTERNAL
    })
}

/// `faultline report RUN_DIR`: regenerate the run's report from its files.
fn report(args: cli::ReportArgs) -> Result<u8, exit::Failure> {
    match results::write_report(&args.run_dir) {
        Ok(files) => {
            println!("{}", files.report_html.display());
            println!("{}", files.junit_xml.display());
            Ok(exit::VALID)
        }
        Err(e @ (results::ReportError::History(_) | results::ReportError::Store(_))) => {
            Err(exit::Failure::BadInput(e.to_string()))
        }
        Err(e) => Err(exit::Failure::Internal(e.into())),
    }
}

/// `faultline serve`: print the URL, serve the store until SIGINT/SIGTERM.
fn serve(args: cli::ServeArgs) -> Result<u8, exit::Failure> {
    let internal = |e: harness::serve::ServeError| exit::Failure::Internal(e.into());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| exit::Failure::Internal(e.into()))?;
    runtime.block_on(async {
        let addr = std::net::SocketAddr::new(args.bind, args.port);
        let server = harness::serve::Server::bind(addr, &args.store)
            .await
            .map_err(internal)?;
        if !args.store.is_dir() {
            eprintln!(
                "faultline: serve: {} does not exist yet; the index stays empty until a run is stored",
                args.store.display()
            );
        }
        // Tests and scripts read the bound address (port 0) from this line.
        println!(
            "serving {} at http://{}/",
            args.store.display(),
            server.local_addr()
        );
        server.run_until(shutdown_signal()).await.map_err(internal)?;
        Ok(exit::VALID)
    })
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let interrupt = tokio::signal::ctrl_c();
    match signal(SignalKind::terminate()) {
        Ok(mut terminate) => {
            tokio::select! {
                _ = interrupt => {}
                _ = terminate.recv() => {}
            }
        }
        Err(_) => {
            let _ = interrupt.await;
        }
    }
}
