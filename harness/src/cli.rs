//! The command line.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// A Jepsen-style consistency testing harness.
#[derive(Debug, Parser)]
#[command(name = "faultline", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check a recorded history (JSONL or Jepsen EDN) for linearizability.
    Check(CheckArgs),
    /// Run one replica of the key-value store faultline ships (target-node).
    Node(target_node::NodeArgs),
}

/// History file formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FormatArg {
    /// Detect from the content.
    Auto,
    /// faultline's history.jsonl.
    Jsonl,
    /// Jepsen / Knossos / Elle EDN.
    Edn,
}

/// How to read an ok read of nil.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum NilReadArg {
    /// Nil is a value: the key holds nothing.
    Value,
    /// Knossos's convention: the read tells nothing.
    Unknown,
}

/// `faultline check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The history file.
    pub file: PathBuf,
    /// The model: register, cas-register, multi-register, mutex, set,
    /// fifo-queue, unordered-queue, counter.
    #[arg(long, default_value = "cas-register")]
    pub model: String,
    /// The initial value, as JSON: 0, null, {"x":0,"y":0}.
    #[arg(long, default_value = "null")]
    pub init: String,
    /// How to read an ok read that returned nil.
    #[arg(long, value_enum, default_value = "value")]
    pub nil_read: NilReadArg,
    /// The file's format.
    #[arg(long, value_enum, default_value = "auto")]
    pub format: FormatArg,
    /// Give up with verdict unknown after this long: 30s, 500ms, 2m, or seconds.
    #[arg(long, value_parser = parse_duration)]
    pub time_limit: Option<Duration>,
    /// Cap on the search's memo tables in MiB, shared by the worker threads;
    /// past it the verdict is unknown.
    #[arg(long, default_value_t = 4096)]
    pub memory_limit_mb: usize,
    /// Check every key, even after one is found invalid.
    #[arg(long)]
    pub all_keys: bool,
    /// Worker threads (default: one per core).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Parses DESIGN's durations: `30s`, `500ms`, `2m`, `1h`, or a bare number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let n: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration (try 30s, 500ms, 2m or 10)"))?;
    let seconds = match unit {
        "" | "s" => n,
        "ms" => n / 1e3,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        other => {
            return Err(format!(
                "{text:?}: unknown unit {other:?} (use ms, s, m or h)"
            ))
        }
    };
    Ok(Duration::from_secs_f64(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_take_units_or_bare_seconds() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("10"), Ok(Duration::from_secs(10)));
        assert!(parse_duration("ten").is_err());
        assert!(parse_duration("5d").unwrap_err().contains("unknown unit"));
    }
}
