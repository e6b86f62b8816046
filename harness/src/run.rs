//! The life of a test (docs/DESIGN.md): set up the nodes, run the workload while the
//! nemesis runs its schedule, heal, recover, run the final reads, tear down,
//! check, and store the results.
//!
//! Teardown always happens: on success, on error, and when the future is
//! dropped (Ctrl-C), because the database and the recorder undo themselves on
//! drop; if the harness is SIGKILLed, the nodes die with it (parent-death
//! signal) and the history holds every op recorded up to the last flush.

use std::io::IsTerminal;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use checker::history::{parse_jsonl, Op};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rand::rngs::StdRng;
use rand::SeedableRng;
use results::{stats, Recorder, Results, RunDir, Store};

use crate::cleanup::RunState;
use crate::client::external::ExternalClients;
use crate::client::Client;
use crate::generator::{Empty, Stagger, TimeLimit};
use crate::interpreter::{Interpreter, Progress};
use crate::package::{final_generator, NemesisClient, Schedule};
use crate::system::db::{Db, DbError, NodeInfo};
use crate::system::{Deployment, System, SystemError};
use crate::test_spec::{format_duration, TestSpec};
use crate::workload::{workload, Workload, WorkloadOptions};
use nemesis::Fault;

/// How long the final phase (final reads) may take.
const FINAL_PHASE_LIMIT: Duration = Duration::from_secs(30);
/// How long to wait for the cluster to elect a primary after healing.
const RECOVERY_LIMIT: Duration = Duration::from_secs(30);

/// A run that could not be carried out (not a verdict).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The store could not be written.
    #[error(transparent)]
    Store(#[from] results::StoreError),
    /// The nodes could not be managed.
    #[error(transparent)]
    Db(#[from] DbError),
    /// The system could not be deployed.
    #[error(transparent)]
    System(#[from] SystemError),
    /// The interpreter failed.
    #[error(transparent)]
    Interpreter(#[from] crate::interpreter::InterpreterError),
    /// Anything else.
    #[error("{0}")]
    Other(String),
}

/// What one run produced.
#[derive(Debug)]
pub struct RunOutcome {
    /// The run directory.
    pub run: RunDir,
    /// The results, as written to `results.json`.
    pub results: Results,
}

/// Runs `spec` once (its seed must be resolved) and stores everything.
pub async fn run_once(spec: &TestSpec) -> Result<RunOutcome, RunError> {
    let spec = &spec.with_checked_models();
    let seed = spec
        .seed
        .ok_or_else(|| RunError::Other("the seed must be resolved before a run".into()))?;
    let (run, test_json) = create_run(spec, seed)?;
    let system = crate::system::by_name(spec.system_name()).map_err(RunError::Other)?;
    let Deployment { db, net } = set_up(system, spec, &run, seed).await?;
    let nodes = db.nodes().to_vec();
    let db: Arc<Mutex<Box<dyn Db>>> = Arc::new(Mutex::new(db));
    let faults = Fault::parse_list(&spec.nemesis).map_err(|e| RunError::Other(e.to_string()))?;
    let nemesis_client: Option<Box<dyn Client>> = if faults.is_empty() {
        None
    } else {
        Some(Box::new(NemesisClient::new(
            db.clone(),
            net,
            nodes.clone(),
            seed,
        )))
    };

    let recorder =
        Arc::new(Recorder::create(run.history_path()).map_err(|e| RunError::Other(e.to_string()))?);
    let options = WorkloadOptions {
        keys: spec.keys,
        consistency_models: spec.consistency_models.clone(),
        ..WorkloadOptions::default()
    };
    let work = workload(spec.workload, options);
    let clients: Vec<Box<dyn Client>> = match &spec.client {
        Some(_) => ExternalClients::new(spec, &nodes, run.path())
            .map_err(RunError::Other)?
            .clients(),
        None => (0..spec.concurrency)
            .map(|w| system.client(spec, w, &nodes))
            .collect(),
    };
    let progress = Arc::new(Progress::default());
    // History time 0 is `start`; its wall-clock twin, read right after,
    // lets the report place node-log lines on the history's time axis.
    let start = Instant::now();
    let start_wall = SystemTime::now();
    let mut interpreter = Interpreter::new(
        clients,
        nemesis_client,
        recorder.clone(),
        start,
        StdRng::seed_from_u64(seed),
        progress.clone(),
    );
    let bar = progress_bar(spec.time_limit, progress.clone(), start);
    run_main_phase(&mut interpreter, spec, work.as_ref(), &faults).await?;
    run_final_phase(&mut interpreter, &db, work.as_ref(), &faults, &nodes, &bar).await?;
    let retired = interpreter.retired().map(str::to_string);
    interpreter.finish().await;
    bar.finish_and_clear();

    tear_down(&db, &run, recorder)?;
    let offsets = db.lock().map(|db| db.clock_offsets()).unwrap_or_default();
    let mut results = match &retired {
        None => check(&run, work.as_ref(), test_json, seed, start_wall)?,
        Some(reason) => {
            eprintln!("faultline: the run ended early, every client worker retired: {reason}");
            retired_results(&run, reason, test_json, seed, start_wall)?
        }
    };
    results.clock_offsets_ns = offsets;
    store(&run, &results)?;
    Ok(RunOutcome { run, results })
}

/// Creates the run's directory in the store and writes `test.json` there;
/// returns the directory and the test as JSON (for `results.json`).
fn create_run(spec: &TestSpec, seed: u64) -> Result<(RunDir, serde_json::Value), RunError> {
    let store = Store::new(&spec.store);
    let run = store.create_run(&spec.name())?;
    let test_json = serde_json::to_value(spec).map_err(|e| RunError::Other(e.to_string()))?;
    run.write_test_json(&test_json)?;
    println!("run {} (seed {seed})", run.path().display());
    Ok((run, test_json))
}

/// Deploys the system and starts its nodes ([`set_up_db`]), then writes the
/// run's state file so that `faultline cleanup` can find what a killed
/// harness left behind.
async fn set_up(
    system: &dyn System,
    spec: &TestSpec,
    run: &RunDir,
    seed: u64,
) -> Result<Deployment, RunError> {
    let remote = match spec.remote.is_remote() {
        true => Some(
            crate::remote::RemoteState::new(
                crate::remote::run_name(run.path()),
                &spec.remote,
                spec.nodes,
            )
            .map_err(RunError::Other)?,
        ),
        false => None,
    };
    let written = |state: &RunState| {
        state
            .write(run.path())
            .map_err(|e| RunError::Other(format!("writing the run's state file: {e}")))
    };
    if remote.is_some() {
        // Before anything is put on the hosts: a harness killed during
        // setup leaves them to `faultline cleanup` too.
        written(&RunState {
            harness_pid: std::process::id(),
            remote: remote.clone(),
            ..RunState::default()
        })?;
    }
    let deployment = match set_up_db(system, spec, run, seed).await {
        Ok(deployment) => deployment,
        Err(e) => {
            // What setup put on the hosts was undone as it failed.
            RunState::remove(run.path());
            return Err(e);
        }
    };
    let state = RunState {
        harness_pid: std::process::id(),
        nodes: deployment.db.pids().into_iter().collect(),
        net: deployment
            .net
            .as_ref()
            .map(|_| format!("{:?}", spec.net).to_lowercase()),
        remote,
    };
    written(&state)?;
    Ok(deployment)
}

/// The main phase: the workload's generator, staggered to the spec's rate,
/// while the nemesis runs its schedule, both for the spec's time limit.
async fn run_main_phase(
    interpreter: &mut Interpreter,
    spec: &TestSpec,
    work: &dyn Workload,
    faults: &[Fault],
) -> Result<(), RunError> {
    let main = TimeLimit::new(spec.time_limit, Stagger::rate(spec.rate, work.generator()));
    let schedule = TimeLimit::new(
        spec.time_limit,
        Box::new(Schedule::new(faults, spec.nemesis_interval)),
    );
    interpreter
        .run_phase(Box::new(main), Box::new(schedule))
        .await?;
    Ok(())
}

/// The final phase: heal everything, wait until the cluster has a primary
/// again, then run the workload's final reads (if it has any).
async fn run_final_phase(
    interpreter: &mut Interpreter,
    db: &Mutex<Box<dyn Db>>,
    work: &dyn Workload,
    faults: &[Fault],
    nodes: &[NodeInfo],
    bar: &ProgressBar,
) -> Result<(), RunError> {
    bar.set_message("healing and recovering");
    interpreter
        .run_phase(Box::new(Empty), Box::new(final_generator(faults)))
        .await?;
    if interpreter.retired().is_some() {
        // No client is left to read anything.
        return Ok(());
    }
    wait_for_recovery(db).await;
    if let Some(final_reads) = work.final_generator(nodes) {
        bar.set_message("final reads");
        let final_phase = TimeLimit::new(FINAL_PHASE_LIMIT, final_reads);
        interpreter
            .run_phase(Box::new(final_phase), Box::new(Empty))
            .await?;
    }
    Ok(())
}

/// Tears the nodes down, removes the run's state file and flushes the
/// history to disk.
fn tear_down(
    db: &Mutex<Box<dyn Db>>,
    run: &RunDir,
    recorder: Arc<Recorder>,
) -> Result<(), RunError> {
    tokio::task::block_in_place(|| db.lock().map(|mut db| db.teardown()))
        .map_err(|_| RunError::Other("the database lock is poisoned".into()))??;
    RunState::remove(run.path());
    let recorder = Arc::try_unwrap(recorder)
        .map_err(|_| RunError::Other("the history recorder is still in use".into()))?;
    recorder
        .finish()
        .map_err(|e| RunError::Other(format!("finishing the history: {e}")))?;
    Ok(())
}

/// Reads the stored history back and runs the workload's checkers on it.
fn check(
    run: &RunDir,
    work: &dyn Workload,
    test_json: serde_json::Value,
    seed: u64,
    start_wall: SystemTime,
) -> Result<Results, RunError> {
    let history = read_history(run)?;
    let mut checkers = std::collections::BTreeMap::new();
    let mut anomalies = Vec::new();
    for outcome in tokio::task::block_in_place(|| work.check(&history)) {
        anomalies.extend(outcome.anomalies);
        checkers.insert(outcome.checker, outcome.result);
    }
    Ok(Results::compose(checkers, anomalies, stats(&history))
        .with_test(test_json)
        .with_run_dir(run.path().to_path_buf())
        .with_seed(seed)
        .with_start(start_wall))
}

/// The results of a run whose client workers all retired: verdict
/// `unknown`, the reason under the `client-protocol` checker, the history
/// as recorded (its statistics included) but not checked.
fn retired_results(
    run: &RunDir,
    reason: &str,
    test_json: serde_json::Value,
    seed: u64,
    start_wall: SystemTime,
) -> Result<Results, RunError> {
    let history = read_history(run)?;
    let mut result = checker::CheckerResult::new(checker::Validity::Unknown);
    result.details = serde_json::json!({ "reason": reason });
    let checkers = [("client-protocol".to_string(), result)].into();
    Ok(Results::compose(checkers, Vec::new(), stats(&history))
        .with_test(test_json)
        .with_run_dir(run.path().to_path_buf())
        .with_seed(seed)
        .with_start(start_wall))
}

/// Writes `results.json`, then the report. The verdict is stored first;
/// a report that could not be written (a full disk) is still a failed run,
/// naming the file: a CI job must never see green for missing evidence.
fn store(run: &RunDir, results: &Results) -> Result<(), RunError> {
    run.write_results(results)?;
    tokio::task::block_in_place(|| results::write_report(run.path()))
        .map_err(|e| RunError::Other(format!("the report could not be written: {e}")))?;
    Ok(())
}

/// The system deployed ([`System::deploy`]), then the nodes started and a
/// primary elected. A node that exits while starting fails the run with
/// its log: ports are held from the moment they are picked (target-node
/// inherits its listening socket), so there is nothing to retry.
async fn set_up_db(
    system: &dyn System,
    spec: &TestSpec,
    run: &RunDir,
    seed: u64,
) -> Result<Deployment, RunError> {
    let mut deployment = system.deploy(spec, run, seed).await?;
    tokio::task::block_in_place(|| deployment.db.setup())?;
    Ok(deployment)
}

/// Waits (at most [`RECOVERY_LIMIT`]) until the cluster has a primary and
/// has settled: one primary everyone follows, every oplog caught up. Final
/// reads taken before that would read a deposed primary's or a lagging
/// node's state, and an acknowledged write still on its way to them would
/// look lost. A cluster that never settles is read as it is, and said so.
async fn wait_for_recovery(db: &Mutex<Box<dyn Db>>) {
    let deadline = Instant::now() + RECOVERY_LIMIT;
    while Instant::now() < deadline {
        if has_settled(db).await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!(
        "faultline: the cluster had not settled {} after healing (no single primary, or oplogs not caught up); the final reads see it as it is",
        format_duration(RECOVERY_LIMIT)
    );
}

/// Whether the cluster has a primary and has settled, as far as the
/// database can tell (one without these abilities counts as settled).
async fn has_settled(db: &Mutex<Box<dyn Db>>) -> bool {
    let asks = db.lock().ok().map(|db| {
        (
            db.as_primary().map(|p| p.primary()),
            db.as_settled().map(|s| s.settled()),
        )
    });
    let Some((primary, settled)) = asks else {
        return false;
    };
    if let Some(primary) = primary {
        if primary.await.is_none() {
            return false;
        }
    }
    match settled {
        Some(settled) => settled.await,
        None => true,
    }
}

fn read_history(run: &RunDir) -> Result<Vec<Op>, RunError> {
    let path = run.history_path();
    let text = std::fs::read_to_string(&path)
        .map_err(|e| RunError::Other(format!("{}: {e}", path.display())))?;
    parse_jsonl(&text, &path).map_err(|e| RunError::Other(e.to_string()))
}

/// Elapsed/total, ops so far, ok/fail/info, current fault; hidden when stdout
/// is not a terminal.
fn progress_bar(total: Duration, progress: Arc<Progress>, start: Instant) -> ProgressBar {
    let bar = ProgressBar::new(total.as_secs().max(1));
    if !std::io::stdout().is_terminal() {
        bar.set_draw_target(ProgressDrawTarget::hidden());
        return bar;
    }
    bar.set_style(
        ProgressStyle::with_template("{prefix} [{bar:30}] {msg}")
            .expect("a valid progress template")
            .progress_chars("=> "),
    );
    let ticker = bar.clone();
    tokio::spawn(async move {
        while !ticker.is_finished() {
            let elapsed = start.elapsed();
            ticker.set_position(elapsed.as_secs().min(total.as_secs()));
            ticker.set_prefix(format!(
                "{}/{}",
                format_duration(Duration::from_secs(elapsed.as_secs())),
                format_duration(total)
            ));
            let fault = progress.fault.lock().map(|f| f.clone()).unwrap_or_default();
            ticker.set_message(format!(
                "{} ops, {} ok, {} fail, {} info, fault: {}",
                progress.invoked.load(Ordering::Relaxed),
                progress.ok.load(Ordering::Relaxed),
                progress.fail.load(Ordering::Relaxed),
                progress.info.load(Ordering::Relaxed),
                if fault.is_empty() { "none" } else { &fault }
            ));
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
    bar
}
