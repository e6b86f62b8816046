//! `faultline run`: assemble the test from the file and the flags, run it
//! `test-count` times, print the verdicts, exit with the worst.

use checker::Validity;
use harness::run::{run_once, RunOutcome};
use harness::test_spec::{NetBackend, TestSpec};
use rand::Rng;

use crate::cli::RunArgs;
use crate::exit::{self, Failure};

/// Runs the command; returns the exit code of the worst verdict.
pub fn run(args: RunArgs) -> Result<u8, Failure> {
    let mut spec = assemble(args)?;
    if spec.net == NetBackend::Netns {
        if let Some(code) = enter_private_netns(&spec)? {
            return Ok(code);
        }
    }
    let seed = *spec.seed.get_or_insert_with(|| rand::thread_rng().gen());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::Internal(e.into()))?;
    let mut worst = Validity::Valid;
    for i in 0..spec.test_count {
        let mut this = spec.clone();
        this.seed = Some(seed.wrapping_add(i as u64));
        this.test_count = 1;
        if spec.test_count > 1 {
            println!("== run {} of {}", i + 1, spec.test_count);
        }
        let outcome = runtime
            .block_on(interruptible(&this))
            .map_err(Stop::into_failure)?;
        report(&outcome);
        worst = worst.and(outcome.results.valid);
    }
    Ok(exit::verdict(worst))
}

/// With the netns backend the whole run (harness and nodes) lives in a
/// private network namespace, so its rules can never touch the host and
/// vanish with it, even on SIGKILL. Outside one: re-executes this command
/// inside a new one and returns its exit code. Inside: brings up loopback.
pub(crate) fn enter_private_netns(spec: &TestSpec) -> Result<Option<u8>, Failure> {
    use nemesis::net::netns;
    let system = harness::system::by_name(spec.system_name()).map_err(Failure::Usage)?;
    harness::system::check_support(system, spec).map_err(Failure::Usage)?;
    if netns::in_private_netns() {
        netns::bring_up_loopback().map_err(|e| Failure::Internal(anyhow::anyhow!("{e}")))?;
        return Ok(None);
    }
    let probe = netns::probe();
    if let Some(missing) = probe.missing() {
        return Err(Failure::Usage(format!(
            "--net netns cannot run here: {missing}"
        )));
    }
    let exe = std::env::current_exe().map_err(|e| Failure::Internal(e.into()))?;
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    let status = harness::supervise(netns::private_netns_command(&exe, &args))
        .map_err(|e| Failure::Internal(anyhow::anyhow!("starting unshare: {e}")))?;
    Ok(Some(status.code().map_or(exit::INTERNAL, |c| c as u8)))
}

/// Defaults, then the `--test` file, then the flags.
fn assemble(args: RunArgs) -> Result<TestSpec, Failure> {
    let mut spec = match &args.test {
        Some(path) => TestSpec::load(path).map_err(|e| Failure::BadInput(e.to_string()))?,
        None => TestSpec::default(),
    };
    macro_rules! set {
        ($($field:ident),*) => {
            $(if let Some(v) = args.$field { spec.$field = v; })*
        };
    }
    set!(
        nodes,
        workload,
        nemesis,
        nemesis_interval,
        net,
        concurrency,
        rate,
        time_limit,
        keys,
        op_timeout,
        consistency_models,
        test_count,
        store
    );
    args.node.apply(&mut spec.node);
    args.etcd.apply(&mut spec.etcd);
    args.redis.apply(&mut spec.redis);
    args.postgres.apply(&mut spec.postgres);
    args.remote.apply(&mut spec.remote);
    if args.name.is_some() {
        spec.name = args.name;
    }
    if args.seed.is_some() {
        spec.seed = args.seed;
    }
    if args.system.is_some() {
        spec.system = args.system;
    }
    spec.validate().map_err(|e| Failure::Usage(e.to_string()))?;
    // test.json names the system even when the test file did not.
    spec.system = Some(spec.system_name().to_string());
    Ok(spec)
}

/// Why a run did not give results.
pub(crate) enum Stop {
    /// Ctrl-C (`SIGINT`) or `SIGTERM`: the run was torn down.
    Signal(&'static str),
    /// The run itself failed.
    Failed(Failure),
}

impl Stop {
    /// The error to exit with.
    pub(crate) fn into_failure(self) -> Failure {
        match self {
            Stop::Signal(signal) => Failure::Internal(anyhow::anyhow!(
                "interrupted by {signal}: nodes stopped; the partial history is in the run directory"
            )),
            Stop::Failed(failure) => failure,
        }
    }
}

/// Runs once; Ctrl-C or SIGTERM stops the run, tears the nodes down (the
/// run's future is dropped, and its parts undo themselves) and fails.
pub(crate) async fn interruptible(spec: &TestSpec) -> Result<RunOutcome, Stop> {
    let internal = |e: anyhow::Error| Stop::Failed(Failure::Internal(e));
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| internal(e.into()))?;
    // The run is a task on the runtime's workers (not on this thread), so
    // the interpreter shares the cores with the clients rather than adding a
    // third busy thread. Aborting it drops its future: everything undoes itself.
    let spec = spec.clone();
    let mut run = tokio::spawn(async move { run_once(&spec).await });
    let stopped = tokio::select! {
        outcome = &mut run => {
            return match outcome {
                Ok(outcome) => outcome.map_err(|e| internal(e.into())),
                Err(e) => Err(internal(anyhow::anyhow!("the run panicked: {e}"))),
            };
        }
        _ = tokio::signal::ctrl_c() => "SIGINT",
        _ = term.recv() => "SIGTERM",
    };
    run.abort();
    let _ = run.await;
    Err(Stop::Signal(stopped))
}

/// The last lines: the verdict per checker, one line per anomaly, the run dir.
pub(crate) fn report(outcome: &RunOutcome) {
    let results = &outcome.results;
    let s = &results.stats;
    println!(
        "{} ops: {} ok, {} fail, {} info; {:.0} ok/s",
        s.ops.total(),
        s.ops.ok,
        s.ops.fail,
        s.ops.info,
        s.throughput.ok_per_s
    );
    for (name, checker) in &results.checkers {
        println!("checker {name}: {}", checker.valid);
    }
    const SHOWN: usize = 20;
    for anomaly in results.anomalies.iter().take(SHOWN) {
        let key = anomaly
            .key
            .as_deref()
            .map(|k| format!(" key {k}"))
            .unwrap_or_default();
        println!("anomaly {}{key}: {}", anomaly.kind, anomaly.explanation);
    }
    if results.anomalies.len() > SHOWN {
        println!(
            "... and {} more anomalies (results.json)",
            results.anomalies.len() - SHOWN
        );
    }
    println!("verdict: {}", results.valid);
    println!("run directory: {}", outcome.run.path().display());
}
