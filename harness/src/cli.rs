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
// Parsed once per process and matched at once: the size of `run`'s flags
// costs nothing worth a box.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check a recorded history (JSONL or Jepsen EDN) for linearizability.
    Check(CheckArgs),
    /// Run a test: launch nodes, drive the workload, record, check, store.
    Run(RunArgs),
    /// Run one replica of the key-value store faultline ships (target-node).
    Node(harness::system::NodeArgs),
    /// List the systems a test can run on, with the workloads, faults,
    /// network backends and options each supports.
    Systems,
    /// Remove what killed runs left behind: node processes, kernel rules.
    Cleanup(CleanupArgs),
    /// Write (again) a run's report: report.html, plots, timeline, junit.xml.
    Report(ReportArgs),
    /// Run a campaign: a matrix of tests, each run several times with an
    /// expectation (valid, or anomaly kinds to detect). With no file, the
    /// built-in demo (about 3 minutes).
    Campaign(CampaignArgs),
    /// Browse the store in a web browser (read-only): runs, verdicts, reports.
    Serve(ServeArgs),
}

/// `faultline campaign`.
#[derive(Debug, Args)]
pub struct CampaignArgs {
    /// The campaign file (TOML); the built-in demo when not given.
    pub file: Option<PathBuf>,
    /// Run every cell this many times (min-detections scales with it).
    #[arg(long)]
    pub runs_per_cell: Option<usize>,
    /// Length of every run's main phase: 20s, 2m, ...
    #[arg(long, value_parser = parse_duration)]
    pub time_limit: Option<Duration>,
    /// The campaign's seed; every run's seed derives from it (random when
    /// not given; printed and stored).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Where runs are stored; the campaign goes in <store>/campaigns/.
    #[arg(long, default_value = "store")]
    pub store: PathBuf,
    /// Only the cells whose name contains one of these (a comma list).
    #[arg(long, value_delimiter = ',')]
    pub only: Vec<String>,
    /// Print the cells and exit.
    #[arg(long)]
    pub list: bool,
}

/// `faultline serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The store to show.
    #[arg(long, default_value = "store")]
    pub store: PathBuf,
    /// The port to listen on; 0 picks a free one (the URL printed says which).
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// The address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    pub bind: std::net::IpAddr,
}

/// `faultline report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The run directory (with history.jsonl, results.json, test.json).
    pub run_dir: PathBuf,
}

/// `faultline cleanup`.
#[derive(Debug, Args)]
pub struct CleanupArgs {
    /// The store the runs were in.
    #[arg(long, default_value = "store")]
    pub store: PathBuf,
}

/// `faultline run`. Every flag has a TOML key of the same name in `--test`;
/// flags override the file.
#[derive(Debug, Args, Default)]
pub struct RunArgs {
    /// A test file (TOML, or a run's test.json) to start from.
    #[arg(long)]
    pub test: Option<PathBuf>,
    /// The test's name (its directory in the store).
    #[arg(long)]
    pub name: Option<String>,
    /// The system under test: target-node, etcd, redis, postgres, postgres-ha, or custom (the --test
    /// file's `[db]` command templates); `faultline systems` lists them
    /// [default: target-node].
    #[arg(long)]
    pub system: Option<String>,
    /// How many nodes [default: 5].
    #[arg(long)]
    pub nodes: Option<usize>,
    /// register, set, append or rw-register [default: register].
    #[arg(long, value_enum)]
    pub workload: Option<harness::workload::WorkloadKind>,
    /// target-node's options.
    #[command(flatten)]
    pub node: harness::system::TargetNodeArgs,
    /// etcd's options.
    #[command(flatten)]
    pub etcd: harness::system::EtcdArgs,
    /// Redis's options.
    #[command(flatten)]
    pub redis: harness::system::RedisArgs,
    /// PostgreSQL's options.
    #[command(flatten)]
    pub postgres: harness::system::PostgresArgs,
    /// Remote hosts over OpenSSH, one node on each.
    #[command(flatten)]
    pub remote: harness::remote::RemoteArgs,
    /// Faults, a comma list: none, partition, kill, pause, clock, ... [default: none].
    #[arg(long, value_delimiter = ',')]
    pub nemesis: Option<Vec<String>>,
    /// Time between fault actions [default: 5s].
    #[arg(long, value_parser = parse_duration)]
    pub nemesis_interval: Option<Duration>,
    /// How network faults are applied: proxy, or netns (kernel rules in a
    /// private network namespace) [default: proxy].
    #[arg(long, value_enum)]
    pub net: Option<harness::test_spec::NetBackend>,
    /// Client workers [default: 10].
    #[arg(long)]
    pub concurrency: Option<usize>,
    /// Target client ops per second, 0 for no limit [default: 500].
    #[arg(long)]
    pub rate: Option<f64>,
    /// Length of the main phase: 30s, 2m, ... [default: 30s].
    #[arg(long, value_parser = parse_duration)]
    pub time_limit: Option<Duration>,
    /// Keys in use at once (register workload) [default: 10].
    #[arg(long)]
    pub keys: Option<usize>,
    /// A client call that takes longer completes as info (fail when it
    /// changes nothing): 2s, 500ms, ... [default: 2s].
    #[arg(long, value_parser = parse_duration)]
    pub op_timeout: Option<Duration>,
    /// With --workload append or rw-register: the consistency models the
    /// history must satisfy, a comma list (read-uncommitted, read-committed,
    /// repeatable-read, snapshot-isolation, serializable,
    /// strong-session-serializable, strict-serializable)
    /// [default: what the system promises: strict-serializable; postgres:
    /// its --pg-isolation level's model].
    #[arg(long, value_delimiter = ',')]
    pub consistency_models: Option<Vec<String>>,
    /// The seed (random when not given; printed and stored).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Run the test this many times; the exit code is the worst verdict [default: 1].
    #[arg(long)]
    pub test_count: Option<usize>,
    /// Where runs are stored [default: store].
    #[arg(long)]
    pub store: Option<PathBuf>,
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
    /// fifo-queue, unordered-queue, counter, kv (get/put/append strings).
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
    /// Give up on a key (verdict unknown) after its search explored this
    /// many configurations: a bound on the work, which the memory limit is
    /// not (a search can revisit its memo for ever)
    #[arg(long)]
    pub max_configurations: Option<u64>,
    /// Shrink an invalid key to its core (the fewest ops still not
    /// linearizable, shown first) for at most this long; 0 does not shrink.
    #[arg(long, value_parser = parse_duration, default_value = "2s")]
    pub shrink_time: Duration,
    /// Check every key, even after one is found invalid.
    #[arg(long)]
    pub all_keys: bool,
    /// Worker threads (default: one per core).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
    /// Also write a run directory for the history here (history.jsonl,
    /// results.json, report.html, plots, timeline, junit.xml), as
    /// `faultline run` does; the directory must not exist or be empty.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// The workload that recorded the history, which picks the checker:
    /// `register` (linearizability against `--model`), `set` (lost, stale,
    /// unexpected elements), `append` and `rw-register` (Elle-style
    /// transactional anomalies).
    #[arg(long, value_enum, default_value = "register")]
    pub workload: harness::workload::WorkloadKind,
    /// With `--workload append` or `rw-register`: the consistency models the history must
    /// satisfy, a comma list (read-uncommitted, read-committed,
    /// repeatable-read, snapshot-isolation, strong-session-snapshot-isolation,
    /// strong-snapshot-isolation, serializable, strong-session-serializable,
    /// strict-serializable). Default strict-serializable, unless
    /// `--anomalies` is given.
    #[arg(long, value_delimiter = ',')]
    pub consistency_models: Vec<String>,
    /// With `--workload append` or `rw-register`: anomalies that make the
    /// history invalid besides the models' (G0, G1, G1c, G-single, G2,
    /// lost-update, ...; an anomaly implying one counts too).
    #[arg(long, value_delimiter = ',')]
    pub anomalies: Vec<String>,
    /// With `--workload rw-register`: where each key's version order may
    /// come from besides the reads: `inferred` (only what the history
    /// proves), `process` (also each process's writes of a key in order:
    /// sequential keys), `realtime` (also writes ordered in real time:
    /// linearizable keys).
    #[arg(long, default_value = "inferred")]
    pub register_order: String,
}

pub use harness::test_spec::parse_duration;
