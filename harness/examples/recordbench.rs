//! Recording overhead of `faultline run` (issue 4, "Benchmark"): the highest
//! sustained ops/s the harness records against a target-node cluster, and
//! what recording costs versus a bare load loop with the same client.
//!
//! ```sh
//! CARGO_TARGET_DIR=/work/target-rb cargo build --release -p harness --bin faultline
//! CARGO_TARGET_DIR=/work/target-rb cargo run --release -p harness --example recordbench -- \
//!     --runs 5 --seconds 5 --nodes 5 --concurrency 32 --workload register
//! ```
//!
//! One cluster (`faultline node`, fsync never, write concern majority,
//! linearizable reads) is started once; then `--runs` pairs of runs:
//!
//! - **A, bare loop**: `concurrency` tokio tasks, each with the workload's
//!   client (`client_for(workload, ..)`), draw ops from one shared
//!   generator of the workload (behind a mutex) and invoke them in a closed
//!   loop until the time is up, counting completions. Nothing is recorded.
//! - **B, recorded**: the same clients driven by
//!   [`harness::interpreter::Interpreter`] with a [`results::Recorder`]
//!   writing `history.jsonl`, generator `TimeLimit::new(T, generator)`
//!   (rate 0: no `Stagger`), as `faultline run` does; completions are
//!   counted from the history.
//!
//! Pairs alternate their order (B A, A B, B A, ...), so that a slow drift of
//! the shared machine's load does not favour one side. Both sides get the
//! same per-run key prefix (keyed workloads), so every run works on fresh
//! keys and every recorded register history can be checked from an empty
//! state. ops/s = completions / wall time from the first op to the last
//! completion. Afterwards: per-run numbers, medians, the median of the paired
//! ratios B/A (overhead = 1 − ratio), and the checker's verdict on the
//! recorded histories.
//!
//! `--client-command CMD` measures the client protocol instead: A is
//! recorded with the built-in client, B with `CMD`, one program per worker
//! (`harness/examples/instant_client.py` answers at once: the protocol's
//! ceiling); the report adds the harness CPU the protocol adds per op.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use checker::history::{parse_jsonl, OpType, Process};
use checker::Validity;
use clap::Parser;
use harness::client::external::{ClientSpec, ExternalClients};
use harness::client::{BoxFuture, Client, Completion};
use harness::generator::{BoxGen, Context, Empty, Generator, Invocation, Next, TimeLimit};
use harness::interpreter::{Interpreter, Progress};
use harness::system::db::{Db, NodeInfo};
use harness::system::target_node::db::{NodeBinary, TargetNodeConfig, TargetNodeDb};
use harness::system::target_node::{client_for, ClientOptions};
use harness::test_spec::TestSpec;
use harness::workload::{workload, Workload, WorkloadKind, WorkloadOptions};
use rand::rngs::StdRng;
use rand::SeedableRng;
use results::Recorder;
use target_node::mode::{Fsync, Reads, WriteConcern};

#[derive(Parser, Debug)]
#[command(about = "Recording overhead of faultline run: bare loop (A) vs recorded (B)")]
struct Args {
    /// Paired runs.
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// Seconds per run (each side).
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
    /// Nodes in the cluster.
    #[arg(long, default_value_t = 5)]
    nodes: usize,
    /// Client workers.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// The workload.
    #[arg(long, value_enum, default_value_t = WorkloadKind::Register)]
    workload: WorkloadKind,
    /// Keys in use at a time (as `faultline run --keys`).
    #[arg(long, default_value_t = 10)]
    keys: usize,
    /// Warm-up seconds (bare loop, not reported) before the first pair.
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// Base seed of the generators.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// The `faultline` binary that runs the nodes (default: next to this
    /// example's directory, i.e. `<target>/release/faultline`).
    #[arg(long)]
    faultline: Option<PathBuf>,
    /// Keep the temporary directory (node logs, histories).
    #[arg(long)]
    keep: bool,
    /// No cluster: measure the harness alone with a client that answers at
    /// once (A vs B per pair), and the recorder's cost per op.
    #[arg(long)]
    micro: bool,
    /// A client program speaking the client protocol
    /// (docs/client-protocol.md), e.g. `python3
    /// examples/clients/python/client.py`. With it, both sides are recorded:
    /// A with the built-in client (or, with `--micro`, one that answers at
    /// once), B with this program, one process per worker.
    #[arg(long)]
    client_command: Option<String>,
}

/// Completions of one side of a run.
#[derive(Clone, Copy, Debug, Default)]
struct Counts {
    ok: u64,
    fail: u64,
    info: u64,
}

impl Counts {
    fn add(&mut self, op_type: OpType) {
        match op_type {
            OpType::Ok => self.ok += 1,
            OpType::Fail => self.fail += 1,
            _ => self.info += 1,
        }
    }

    fn total(&self) -> u64 {
        self.ok + self.fail + self.info
    }

    fn merge(&mut self, other: Counts) {
        self.ok += other.ok;
        self.fail += other.fail;
        self.info += other.info;
    }
}

/// One side of one run.
#[derive(Clone, Debug)]
struct Side {
    counts: Counts,
    wall: Duration,
    /// CPU seconds of this process (all threads) during the run.
    harness_cpu: f64,
    /// CPU seconds of the node processes during the run.
    nodes_cpu: f64,
    /// Context switches of this process's threads during the run.
    switches: u64,
    load: String,
}

impl Side {
    fn ops_per_sec(&self) -> f64 {
        self.counts.total() as f64 / self.wall.as_secs_f64()
    }

    fn switches_per_op(&self) -> f64 {
        self.switches as f64 / self.counts.total().max(1) as f64
    }

    /// Harness CPU µs per completed op.
    fn cpu_per_op(&self) -> f64 {
        self.harness_cpu / self.counts.total().max(1) as f64 * 1e6
    }
}

/// The inner generator with `prefix` put before every op's key, so each run
/// works on keys nobody touched before. Ops without a key pass unchanged.
struct Prefixed {
    prefix: String,
    inner: BoxGen,
}

impl Generator for Prefixed {
    fn next(&mut self, ctx: &Context, rng: &mut StdRng) -> Next {
        match self.inner.next(ctx, rng) {
            Next::Op(mut op) => {
                if let Some(key) = &op.key {
                    op.key = Some(format!("{}{key}", self.prefix));
                }
                Next::Op(op)
            }
            other => other,
        }
    }

    fn update(&mut self, ctx: &Context, completion: &checker::history::Op) {
        self.inner.update(ctx, completion);
    }
}

// Long on purpose: the benchmark reads top to bottom as its procedure (set up, A/B runs, table).
fn main() -> Result<()> {
    let args = Args::parse();
    if args.runs == 0 || args.concurrency == 0 || args.seconds <= 0.0 {
        bail!("--runs, --concurrency and --seconds must be positive");
    }
    let tmp = tempfile::Builder::new().prefix("recordbench-").tempdir()?;
    if args.micro {
        return micro(&args, tmp.path());
    }
    let program = faultline_binary(args.faultline.as_deref())?;
    println!(
        "recordbench: {} nodes, {} workers, workload {}, {} pairs of {} s; node binary {}; dir {}",
        args.nodes,
        args.concurrency,
        args.workload,
        args.runs,
        args.seconds,
        program.display(),
        tmp.path().display()
    );
    println!(
        "machine: {} cpus, {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        cpu_model()
    );

    let mut config = TargetNodeConfig::new(args.nodes, tmp.path().join("cluster"));
    config.modes.fsync = Fsync::Never;
    config.modes.write_concern = WriteConcern::Majority;
    config.modes.reads = Reads::Linearizable;
    config.binary = NodeBinary::WithArgs {
        program,
        leading_args: vec!["node".into()],
    };
    // Stops every node when dropped: on success, on error and on panic.
    let mut db = TargetNodeDb::new(config)?;
    let started = Instant::now();
    db.setup().context("starting the cluster")?;
    println!(
        "cluster up in {:.1} s, primary {:?}",
        started.elapsed().as_secs_f64(),
        harness::system::target_node::status::block_on(
            db.as_primary().expect("target-node knows").primary()
        )?
    );
    let nodes = db.nodes().to_vec();
    let pids: Vec<u32> = nodes.iter().filter_map(|n| db.pid(&n.id)).collect();

    // Like `faultline run`: a multi-threaded runtime with one worker per CPU.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let options = WorkloadOptions {
        keys: args.keys,
        ..WorkloadOptions::default()
    };
    let work = workload(args.workload, options);
    let time = Duration::from_secs_f64(args.seconds);
    let client_options = ClientOptions::default();
    let make = |w: usize| client_for(args.workload, &client_options, w, &nodes);
    let external = external_clients(&args, &nodes, tmp.path())?;
    let make_external = external
        .as_ref()
        .map(|e| move |w: usize| Box::new(e.client(w)) as Box<dyn Client>);

    if args.warmup > 0.0 {
        let warm = Duration::from_secs_f64(args.warmup);
        let side = runtime.block_on(bare(&*work, &make, &args, warm, u64::MAX, "warm-", &pids));
        println!(
            "warm-up: {:.0} ops/s ({} ok, {} fail, {} info)",
            side.ops_per_sec(),
            side.counts.ok,
            side.counts.fail,
            side.counts.info
        );
    }

    let mut pairs: Vec<(Side, Side)> = Vec::new();
    let mut histories: Vec<PathBuf> = Vec::new();
    for run in 0..args.runs {
        let seed = args.seed.wrapping_add(run as u64);
        let b_first = run % 2 == 0;
        let mut a = None;
        let mut b = None;
        for side in if b_first { ["B", "A"] } else { ["A", "B"] } {
            let prefix = format!("r{run}{}-", side.to_lowercase());
            if side == "A" && external.is_some() {
                let history = tmp.path().join(format!("builtin{run}.jsonl"));
                a = Some(runtime.block_on(recorded(
                    &*work, &make, &args, time, seed, &prefix, &pids, &history,
                ))?);
            } else if side == "A" {
                a = Some(runtime.block_on(bare(&*work, &make, &args, time, seed, &prefix, &pids)));
            } else {
                let make: MakeClient<'_> = match &make_external {
                    Some(external) => external,
                    None => &make,
                };
                let dir = tmp.path().join(format!("run{run}"));
                std::fs::create_dir_all(&dir)?;
                let history = dir.join("history.jsonl");
                b = Some(runtime.block_on(recorded(
                    &*work, &make, &args, time, seed, &prefix, &pids, &history,
                ))?);
                histories.push(history);
            }
        }
        let (a, b) = (a.expect("ran A"), b.expect("ran B"));
        println!(
            "run {}: order {}  A {:>7.0} ops/s ({} ok {} fail {} info, harness cpu {:.2} s, nodes cpu {:.2} s, {:.2} switches/op, load {})  \
             B {:>7.0} ops/s ({} ok {} fail {} info, harness cpu {:.2} s, nodes cpu {:.2} s, {:.2} switches/op, load {})  B/A {:.3}",
            run + 1,
            if b_first { "BA" } else { "AB" },
            a.ops_per_sec(),
            a.counts.ok,
            a.counts.fail,
            a.counts.info,
            a.harness_cpu,
            a.nodes_cpu,
            a.switches_per_op(),
            a.load,
            b.ops_per_sec(),
            b.counts.ok,
            b.counts.fail,
            b.counts.info,
            b.harness_cpu,
            b.nodes_cpu,
            b.switches_per_op(),
            b.load,
            b.ops_per_sec() / a.ops_per_sec()
        );
        pairs.push((a, b));
    }
    drop(runtime);
    db.teardown()?;
    println!("cluster torn down");

    report(&pairs, &args);

    // The recorded histories, checked by the workload's checker. Keyed
    // workloads ran every pair on fresh keys, so every history starts from an
    // empty state; others share their key with earlier runs, so only the
    // first recorded run (the very first run on the fresh cluster) is
    // checked.
    let keyed = args.workload == WorkloadKind::Register;
    let to_check = if keyed {
        &histories[..]
    } else {
        &histories[..1]
    };
    let mut all_valid = true;
    for path in to_check {
        let text = std::fs::read_to_string(path)?;
        let history = parse_jsonl(&text, path)?;
        let started = Instant::now();
        for outcome in work.check(&history) {
            all_valid &= outcome.result.valid == Validity::Valid;
            println!(
                "check {}: {} {:?} ({} ops, {:.2} s)",
                path.display(),
                outcome.checker,
                outcome.result.valid,
                history.len(),
                started.elapsed().as_secs_f64()
            );
        }
    }
    if args.keep {
        println!("kept {}", tmp.keep().display());
    }
    if !all_valid {
        bail!("a recorded history did not check valid");
    }
    Ok(())
}

/// The clients of `--client-command`, one program per worker over `nodes`,
/// their stderr in `dir`'s client log; `None` without the flag.
fn external_clients(
    args: &Args,
    nodes: &[NodeInfo],
    dir: &Path,
) -> Result<Option<ExternalClients>> {
    let Some(command) = &args.client_command else {
        return Ok(None);
    };
    let spec = TestSpec {
        workload: args.workload,
        concurrency: args.concurrency,
        keys: args.keys,
        client: Some(ClientSpec {
            command: command.clone(),
            vars: Default::default(),
        }),
        ..TestSpec::default()
    };
    let clients = ExternalClients::new(&spec, nodes, dir).map_err(anyhow::Error::msg)?;
    println!(
        "B's client: {command} (one process per worker, stderr in {})",
        dir.display()
    );
    Ok(Some(clients))
}

/// The `faultline` binary for the nodes.
fn faultline_binary(given: Option<&Path>) -> Result<PathBuf> {
    let path = match given {
        Some(path) => path.to_path_buf(),
        None => {
            let exe = std::env::current_exe().context("locating this example")?;
            // <target>/release/examples/recordbench -> <target>/release/faultline
            exe.parent()
                .and_then(Path::parent)
                .map(|dir| dir.join("faultline"))
                .context("this example is not inside a target directory")?
        }
    };
    if !path.is_file() {
        bail!(
            "no faultline binary at {}: build it first with the same CARGO_TARGET_DIR \
             (`cargo build --release -p harness --bin faultline`) or pass --faultline PATH",
            path.display()
        );
    }
    Ok(path)
}

/// Makes the client of worker `w`.
type MakeClient<'a> = &'a dyn Fn(usize) -> Box<dyn Client>;

/// A client that answers at once (after yielding to the scheduler), for
/// measuring the harness alone (`--micro`).
struct NullClient;

impl Client for NullClient {
    fn invoke<'a>(&'a mut self, op: &'a Invocation) -> BoxFuture<'a, Completion> {
        Box::pin(async move {
            tokio::task::yield_now().await;
            Completion::ok(op.value.clone()).from_node("n1")
        })
    }
}

/// A: `concurrency` tasks in a closed loop over one shared generator.
async fn bare(
    work: &dyn Workload,
    make: MakeClient<'_>,
    args: &Args,
    time: Duration,
    seed: u64,
    prefix: &str,
    pids: &[u32],
) -> Side {
    let generator: BoxGen = Box::new(Prefixed {
        prefix: prefix.to_string(),
        inner: work.generator(),
    });
    let shared = Arc::new(Mutex::new((generator, StdRng::seed_from_u64(seed))));
    let clients: Vec<Box<dyn Client>> = (0..args.concurrency).map(make).collect();
    let workers = clients.len();
    let load = load_average();
    let cpu = Cpu::now(pids);
    let start = Instant::now();
    let deadline = start + time;
    let tasks: Vec<_> = clients
        .into_iter()
        .enumerate()
        .map(|(w, mut client)| {
            let shared = shared.clone();
            tokio::spawn(async move {
                let mut counts = Counts::default();
                while Instant::now() < deadline {
                    let op = {
                        let mut guard = shared.lock().expect("generator lock");
                        let (generator, rng) = &mut *guard;
                        let ctx = Context {
                            time: start.elapsed(),
                            worker: w,
                            workers,
                        };
                        match generator.next(&ctx, rng) {
                            Next::Op(op) => op,
                            _ => break,
                        }
                    };
                    let done = client.invoke(&op).await;
                    counts.add(done.op_type);
                }
                counts
            })
        })
        .collect();
    let mut counts = Counts::default();
    for task in tasks {
        counts.merge(task.await.expect("a bare-loop task panicked"));
    }
    let wall = start.elapsed();
    let (harness_cpu, nodes_cpu, switches) = cpu.since(pids);
    Side {
        counts,
        wall,
        harness_cpu,
        nodes_cpu,
        switches,
        load,
    }
}

/// B: the interpreter and the recorder, as `faultline run` drives them.
#[allow(clippy::too_many_arguments)]
async fn recorded(
    work: &dyn Workload,
    make: MakeClient<'_>,
    args: &Args,
    time: Duration,
    seed: u64,
    prefix: &str,
    pids: &[u32],
    history: &Path,
) -> Result<Side> {
    let recorder = Arc::new(Recorder::create(history)?);
    let clients: Vec<Box<dyn Client>> = (0..args.concurrency).map(make).collect();
    let progress = Arc::new(Progress::default());
    let load = load_average();
    let cpu = Cpu::now(pids);
    let start = Instant::now();
    let mut interpreter = Interpreter::new(
        clients,
        None,
        recorder.clone(),
        start,
        StdRng::seed_from_u64(seed),
        progress.clone(),
    );
    let generator = Prefixed {
        prefix: prefix.to_string(),
        inner: work.generator(),
    };
    let main = TimeLimit::new(time, Box::new(generator));
    interpreter
        .run_phase(Box::new(main), Box::new(Empty))
        .await?;
    let wall = start.elapsed();
    let (harness_cpu, nodes_cpu, switches) = cpu.since(pids);
    drop(interpreter);
    let recorder =
        Arc::try_unwrap(recorder).map_err(|_| anyhow::anyhow!("the recorder is still shared"))?;
    recorder.finish()?;

    let text = std::fs::read_to_string(history)?;
    let ops = parse_jsonl(&text, history)?;
    let mut counts = Counts::default();
    for op in &ops {
        if op.op_type != OpType::Invoke && matches!(op.process, Process::Client(_)) {
            counts.add(op.op_type);
        }
    }
    let invoked = ops.iter().filter(|o| o.op_type == OpType::Invoke).count() as u64;
    if invoked != counts.total() {
        bail!(
            "{}: {invoked} invocations but {} completions",
            history.display(),
            counts.total()
        );
    }
    Ok(Side {
        counts,
        wall,
        harness_cpu,
        nodes_cpu,
        switches,
        load,
    })
}

/// CPU time (user + system) of this process and of the nodes, from
/// `/proc/PID/stat` in clock ticks (USER_HZ = 100 on Linux).
/// Also the context switches (voluntary + involuntary) of this process's
/// threads, from `/proc/self/task/*/status`.
struct Cpu {
    harness: u64,
    nodes: u64,
    switches: u64,
}

impl Cpu {
    fn now(pids: &[u32]) -> Cpu {
        Cpu {
            harness: ticks("self"),
            nodes: pids.iter().map(|p| ticks(&p.to_string())).sum(),
            switches: context_switches(),
        }
    }

    /// (harness CPU s, nodes CPU s, harness context switches) since `self`.
    fn since(&self, pids: &[u32]) -> (f64, f64, u64) {
        let now = Cpu::now(pids);
        (
            now.harness.saturating_sub(self.harness) as f64 / 100.0,
            now.nodes.saturating_sub(self.nodes) as f64 / 100.0,
            now.switches.saturating_sub(self.switches),
        )
    }
}

fn context_switches() -> u64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0;
    };
    tasks
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("status")).ok())
        .flat_map(|status| {
            status
                .lines()
                .filter(|l| l.contains("ctxt_switches:"))
                .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
                .collect::<Vec<_>>()
        })
        .sum()
}

fn ticks(pid: &str) -> u64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0;
    };
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return 0;
    };
    // After the command: state is field 3; utime and stime are 14 and 15.
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |i: usize| fields.get(i - 3).and_then(|f| f.parse::<u64>().ok());
    field(14).unwrap_or(0) + field(15).unwrap_or(0)
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(1).collect())
        .unwrap_or_default()
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, m)| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into())
}

/// `--micro`: the harness alone. First the recorder: ops built as the
/// interpreter builds them (clones of the invocation) and recorded, one
/// invocation and one completion per op, on one thread. Then `--runs` pairs
/// of A and B with [`NullClient`], which isolates the interpreter's own cost
/// (owner task, two channel hops per op, dispatch) from the network.
// Long on purpose: each measurement is one straight block, in the order the report prints them.
fn micro(args: &Args, dir: &Path) -> Result<()> {
    let recorder = Recorder::create(dir.join("record-only.jsonl"))?;
    let invocation = Invocation::new("cas", serde_json::json!([1, 3])).on_key("r0b-17");
    let started = Instant::now();
    let mut n = 0u64;
    while started.elapsed() < Duration::from_secs(1) {
        for _ in 0..1000 {
            let mut invoke = checker::history::Op {
                index: 0,
                time: Some(started.elapsed().as_nanos() as u64),
                process: Process::Client(7),
                op_type: OpType::Invoke,
                f: invocation.f.clone(),
                key: invocation.key.clone(),
                value: invocation.value.clone(),
                node: invocation.node.clone(),
                error: None,
            };
            recorder.record(&mut invoke)?;
            let mut done = checker::history::Op {
                op_type: OpType::Fail,
                time: Some(started.elapsed().as_nanos() as u64),
                node: Some("n1".into()),
                error: Some(serde_json::json!("cas-mismatch")),
                ..invoke
            };
            recorder.record(&mut done)?;
            n += 1;
        }
    }
    let per_op = started.elapsed().as_secs_f64() / n as f64 * 1e6;
    recorder.finish()?;
    println!("recorder alone: {per_op:.2} µs per op (invocation + completion built and recorded), {n} ops");

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let work = workload(
        args.workload,
        WorkloadOptions {
            keys: args.keys,
            ..WorkloadOptions::default()
        },
    );
    let make = |_: usize| Box::new(NullClient) as Box<dyn Client>;
    let external = external_clients(args, &[], dir)?;
    let make_external = external
        .as_ref()
        .map(|e| move |w: usize| Box::new(e.client(w)) as Box<dyn Client>);
    let time = Duration::from_secs_f64(args.seconds);
    let mut pairs = Vec::new();
    for run in 0..args.runs {
        let seed = args.seed.wrapping_add(run as u64);
        let history = dir.join(format!("micro{run}.jsonl"));
        let mut a = None;
        let mut b = None;
        for side in if run % 2 == 0 { ["B", "A"] } else { ["A", "B"] } {
            if side == "A" && external.is_some() {
                let builtin = dir.join(format!("micro-builtin{run}.jsonl"));
                a = Some(runtime.block_on(recorded(
                    &*work,
                    &make,
                    args,
                    time,
                    seed,
                    "m-",
                    &[],
                    &builtin,
                ))?);
            } else if side == "A" {
                a = Some(runtime.block_on(bare(&*work, &make, args, time, seed, "m-", &[])));
            } else {
                let make: MakeClient<'_> = match &make_external {
                    Some(external) => external,
                    None => &make,
                };
                b = Some(runtime.block_on(recorded(
                    &*work,
                    &make,
                    args,
                    time,
                    seed,
                    "m-",
                    &[],
                    &history,
                ))?);
            }
        }
        let (a, b) = (a.expect("ran A"), b.expect("ran B"));
        println!(
            "micro run {}: A {:.0} ops/s ({:.2} µs CPU/op, {:.2} switches/op)  B {:.0} ops/s ({:.2} µs CPU/op, {:.2} switches/op)",
            run + 1,
            a.ops_per_sec(),
            a.cpu_per_op(),
            a.switches_per_op(),
            b.ops_per_sec(),
            b.cpu_per_op(),
            b.switches_per_op()
        );
        pairs.push((a, b));
    }
    report(&pairs, args);
    Ok(())
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

fn report(pairs: &[(Side, Side)], args: &Args) {
    println!();
    println!(
        "| run | order | load | A ops/s | B ops/s | B/A | overhead | A harness CPU s | B harness CPU s |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for (i, (a, b)) in pairs.iter().enumerate() {
        let ratio = b.ops_per_sec() / a.ops_per_sec();
        println!(
            "| {} | {} | {} / {} | {:.0} | {:.0} | {:.3} | {:.1}% | {:.2} | {:.2} |",
            i + 1,
            if i % 2 == 0 { "BA" } else { "AB" },
            a.load,
            b.load,
            a.ops_per_sec(),
            b.ops_per_sec(),
            ratio,
            (1.0 - ratio) * 100.0,
            a.harness_cpu,
            b.harness_cpu
        );
    }
    let mut a: Vec<f64> = pairs.iter().map(|(a, _)| a.ops_per_sec()).collect();
    let mut b: Vec<f64> = pairs.iter().map(|(_, b)| b.ops_per_sec()).collect();
    let mut ratios: Vec<f64> = pairs
        .iter()
        .map(|(a, b)| b.ops_per_sec() / a.ops_per_sec())
        .collect();
    let mut a_cpu: Vec<f64> = pairs.iter().map(|(a, _)| a.cpu_per_op()).collect();
    let mut b_cpu: Vec<f64> = pairs.iter().map(|(_, b)| b.cpu_per_op()).collect();
    let mut a_sw: Vec<f64> = pairs.iter().map(|(a, _)| a.switches_per_op()).collect();
    let mut b_sw: Vec<f64> = pairs.iter().map(|(_, b)| b.switches_per_op()).collect();
    let (ma, mb, mr) = (median(&mut a), median(&mut b), median(&mut ratios));
    println!(
        "| **median** | | | **{ma:.0}** | **{mb:.0}** | **{mr:.3}** | **{:.1}%** | | |",
        (1.0 - mr) * 100.0
    );
    println!();
    println!(
        "harness CPU per completed op (median): A {:.1} µs, B {:.1} µs",
        median(&mut a_cpu),
        median(&mut b_cpu)
    );
    println!(
        "harness context switches per completed op (median): A {:.2}, B {:.2}",
        median(&mut a_sw),
        median(&mut b_sw)
    );
    if args.client_command.is_some() {
        let mut added: Vec<f64> = pairs
            .iter()
            .map(|(a, b)| b.cpu_per_op() - a.cpu_per_op())
            .collect();
        let added = median(&mut added);
        println!(
            "client protocol: A = built-in client, B = {:?}; harness CPU the protocol adds per op \
             (median of B - A): {added:.1} µs (target < 20 µs: {}); B/A ops/s {mr:.3}",
            args.client_command.as_deref().unwrap_or_default(),
            if added < 20.0 { "met" } else { "MISSED" }
        );
        return;
    }
    println!(
        "verdict: recorded {mb:.0} ops/s (target >= 5000: {}); overhead {:.1}% (target < 10%: {}); \
         {} workers, {} nodes, {} s per side",
        if mb >= 5000.0 { "met" } else { "MISSED" },
        (1.0 - mr) * 100.0,
        if 1.0 - mr < 0.10 { "met" } else { "MISSED" },
        args.concurrency,
        args.nodes,
        args.seconds
    );
}
