//! Load benchmark: starts 3- and 5-node clusters on 127.0.0.1 (this same
//! executable, `loadgen node ...`, which embeds `target_node::NodeArgs` the
//! way `faultline node` does), drives a bounded closed loop of writes then
//! reads at the primary, and prints ops/s and p50/p99 latency per cluster
//! size, fsync mode and write concern as a markdown table (medians of
//! `--runs` runs).
//!
//! `cargo run --release -p target-node --example loadgen -- --runs 3`

use clap::{Parser, Subcommand};
use serde_json::json;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use target_node::client::{primary_among, Client};

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    command: Option<Cmd>,
    /// Cluster sizes.
    #[arg(long, value_delimiter = ',', default_value = "3,5")]
    nodes: Vec<usize>,
    /// Fsync modes.
    #[arg(long, value_delimiter = ',', default_value = "never,always")]
    fsync: Vec<String>,
    /// Write concerns.
    #[arg(long, value_delimiter = ',', default_value = "one,majority,all")]
    write_concern: Vec<String>,
    /// Read mode of the nodes.
    #[arg(long, default_value = "linearizable")]
    reads: String,
    /// Concurrent client loops.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Seconds of each measured phase (writes, then reads).
    #[arg(long, default_value_t = 3.0)]
    seconds: f64,
    /// Runs per configuration; the table shows medians.
    #[arg(long, default_value_t = 3)]
    runs: usize,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run one node (what the benchmark launches).
    Node(target_node::NodeArgs),
}

/// Kills the cluster's processes when dropped.
struct Processes(Vec<Child>);

impl Drop for Processes {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[derive(Clone, Copy, Default)]
struct Phase {
    ops_per_s: f64,
    p50_ms: f64,
    p99_ms: f64,
    errors: usize,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start_cluster(
    dir: &std::path::Path,
    n: usize,
    fsync: &str,
    wc: &str,
    reads: &str,
) -> (Processes, Vec<u16>) {
    let ports: Vec<u16> = (0..n).map(|_| free_port()).collect();
    let exe = std::env::current_exe().expect("own path");
    let children = (0..n)
        .map(|i| {
            let peers: Vec<String> = (0..n)
                .filter(|j| *j != i)
                .map(|j| format!("n{}=http://127.0.0.1:{}", j + 1, ports[j]))
                .collect();
            let mut command = Command::new(&exe);
            command.args([
                "node",
                "--id",
                &format!("n{}", i + 1),
                "--listen",
                &format!("127.0.0.1:{}", ports[i]),
            ]);
            command.args([
                "--data-dir",
                &dir.join(format!("n{}", i + 1)).display().to_string(),
            ]);
            command.args([
                "--peers",
                &peers.join(","),
                "--fsync",
                fsync,
                "--write-concern",
                wc,
                "--reads",
                reads,
            ]);
            command.args(["--election", "majority", "--request-timeout-ms", "5000"]);
            command
                .env("RUST_LOG", "warn")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            command.spawn().expect("spawn node")
        })
        .collect();
    (Processes(children), ports)
}

async fn find_primary(ports: &[u16]) -> Client {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let mut statuses = Vec::new();
        for port in ports {
            let client = Client::new(format!("http://127.0.0.1:{port}"), Duration::from_secs(1));
            if let Ok(status) = client.status().await {
                statuses.push((status, *port));
            }
        }
        let all: Vec<_> = statuses.iter().map(|(s, _)| s.clone()).collect();
        if let Some(primary) = primary_among(&all) {
            if statuses.len() == ports.len()
                && all.iter().all(|s| s.primary.as_ref() == Some(&primary.id))
            {
                let port = statuses.iter().find(|(s, _)| s.id == primary.id).unwrap().1;
                return Client::new(format!("http://127.0.0.1:{port}"), Duration::from_secs(10));
            }
        }
        assert!(Instant::now() < deadline, "no primary");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A closed loop of `concurrency` workers for `seconds` (at most 1e7 ops).
async fn phase(client: &Client, concurrency: usize, seconds: f64, write: bool) -> Phase {
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let client = Arc::new(client.clone());
    let started = Instant::now();
    let workers: Vec<_> = (0..concurrency)
        .map(|w| {
            let client = client.clone();
            tokio::spawn(async move {
                let (mut latencies, mut errors) = (Vec::new(), 0usize);
                for i in 0..10_000_000usize / concurrency {
                    if Instant::now() >= deadline {
                        break;
                    }
                    let key = format!("k{}", (w * 7919 + i) % 1000);
                    let begin = Instant::now();
                    let ok = if write {
                        client.put(&key, &json!(i)).await.is_ok()
                    } else {
                        client.get(&key).await.is_ok()
                    };
                    latencies.push(begin.elapsed().as_micros() as u32);
                    errors += usize::from(!ok);
                }
                (latencies, errors)
            })
        })
        .collect();
    let mut latencies = Vec::new();
    let mut errors = 0;
    for worker in workers {
        let (l, e) = worker.await.unwrap();
        latencies.extend(l);
        errors += e;
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort_unstable();
    let pct = |p: f64| {
        latencies
            .get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1)))
    };
    Phase {
        ops_per_s: (latencies.len() - errors) as f64 / elapsed,
        p50_ms: pct(0.5).map_or(0.0, |v| *v as f64 / 1000.0),
        p99_ms: pct(0.99).map_or(0.0, |v| *v as f64 / 1000.0),
        errors,
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(|a, b| a.total_cmp(b));
    values[values.len() / 2]
}

fn median_phase(runs: &[Phase]) -> Phase {
    Phase {
        ops_per_s: median(runs.iter().map(|p| p.ops_per_s).collect()),
        p50_ms: median(runs.iter().map(|p| p.p50_ms).collect()),
        p99_ms: median(runs.iter().map(|p| p.p99_ms).collect()),
        errors: runs.iter().map(|p| p.errors).sum(),
    }
}

async fn bench(cli: &Cli) {
    println!(
        "| nodes | fsync | write concern | writes/s | write p50 ms | write p99 ms | reads/s ({}) | read p50 ms | read p99 ms | errors |",
        cli.reads
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for &n in &cli.nodes {
        for fsync in &cli.fsync {
            for wc in &cli.write_concern {
                let (mut writes, mut reads) = (Vec::new(), Vec::new());
                for _ in 0..cli.runs.max(1) {
                    let dir = tempfile::tempdir().expect("tempdir");
                    let (_processes, ports) = start_cluster(dir.path(), n, fsync, wc, &cli.reads);
                    let primary = find_primary(&ports).await;
                    phase(&primary, cli.concurrency, 0.5, true).await; // warm-up
                    let before = primary.status().await.expect("status").oplog.index;
                    let written = phase(&primary, cli.concurrency, cli.seconds, true).await;
                    let after = primary.status().await.expect("status").oplog.index;
                    let acked = (written.ops_per_s * cli.seconds * 0.99) as u64;
                    assert!(
                        after - before >= acked,
                        "oplog grew by {} < {acked} acked",
                        after - before
                    );
                    writes.push(written);
                    reads.push(phase(&primary, cli.concurrency, cli.seconds, false).await);
                }
                let (w, r) = (median_phase(&writes), median_phase(&reads));
                println!(
                    "| {n} | {fsync} | {wc} | {:.0} | {:.2} | {:.2} | {:.0} | {:.2} | {:.2} | {} |",
                    w.ops_per_s,
                    w.p50_ms,
                    w.p99_ms,
                    r.ops_per_s,
                    r.p50_ms,
                    r.p99_ms,
                    w.errors + r.errors
                );
            }
        }
    }
}

fn main() {
    let cli = Cli::parse();
    if let Some(Cmd::Node(args)) = cli.command {
        if let Err(e) = target_node::run_blocking(args) {
            eprintln!("node: {e}");
            std::process::exit(i32::from(e.exit_code()));
        }
        return;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(bench(&cli));
}
