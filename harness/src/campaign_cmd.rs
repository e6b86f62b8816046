//! `faultline campaign`: run every cell of a campaign (each run a full
//! `faultline run` with its own run directory), one after another; print
//! the summary table; write `campaign.json`, `campaign.html` and
//! `junit.xml` after every run; exit 0 when every expectation is met, 1
//! when one is not, 2 when some cell is undecided and none unmet.

use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime};

use harness::campaign::{
    run_seed,
    spec::{Cell, DEMO},
    Campaign, CampaignRecord, CellOutcome, CellVerdict, RunRecord,
};
use harness::test_spec::NetBackend;
use rand::Rng;
use results::Store;

use crate::cli::CampaignArgs;
use crate::exit::{self, Failure};
use crate::run_cmd::{enter_private_netns, interruptible, Stop};

/// Runs the command.
pub fn run(args: CampaignArgs) -> Result<u8, Failure> {
    let campaign = load(&args)?;
    if args.list {
        list_cells(&campaign);
        return Ok(exit::VALID);
    }
    if let Some(cell) = campaign
        .cells
        .iter()
        .find(|c| c.test.net == NetBackend::Netns)
    {
        if let Some(code) = enter_private_netns(&cell.test)? {
            return Ok(code);
        }
    }
    let seed = args
        .seed
        .or(campaign.seed)
        .unwrap_or_else(|| rand::thread_rng().gen());
    let store_root = &args.store;
    let dir = campaign_dir(store_root, &campaign.name)?;
    let mut record = CampaignRecord {
        name: campaign.name.clone(),
        source: campaign.source.clone(),
        seed,
        started: now(),
        finished: None,
        status: "running".into(),
        command: repeat_command(&args, seed),
        cells: campaign.cells.iter().map(CellOutcome::new).collect(),
    };
    write_record(&record, &dir, store_root)?;
    let planned: usize = campaign.cells.iter().map(|c| c.runs).sum();
    println!(
        "campaign {} (seed {seed}): {} cells, {planned} runs; {}",
        campaign.name,
        campaign.cells.len(),
        dir.display()
    );
    run_cells(&campaign, &mut record, &dir, store_root)?;
    record.status = "complete".into();
    record.finished = Some(now());
    write_record(&record, &dir, store_root)?;
    Ok(print_verdict(&record, &dir))
}

/// The campaign file named on the command line (or the built-in demo), with
/// the flags applied over it.
fn load(args: &CampaignArgs) -> Result<Campaign, Failure> {
    let mut campaign = match &args.file {
        Some(path) => Campaign::load(path).map_err(|e| Failure::BadInput(e.to_string()))?,
        None => Campaign::parse(DEMO, "built-in demo (campaigns/demo.toml)", "demo")
            .map_err(|e| Failure::Internal(e.into()))?,
    };
    apply_flags(&mut campaign, args)?;
    Ok(campaign)
}

/// `--list`: one line per cell.
fn list_cells(campaign: &Campaign) {
    for cell in &campaign.cells {
        println!(
            "{}  runs {}  expect {}  (line {})",
            cell.name,
            cell.runs,
            cell.expect.describe(),
            cell.line
        );
    }
}

/// Writes `campaign.json`, `campaign.html` and `junit.xml` in `dir`.
fn write_record(record: &CampaignRecord, dir: &Path, store_root: &Path) -> Result<(), Failure> {
    record
        .write(dir, store_root)
        .map_err(|e| Failure::Internal(anyhow::anyhow!("writing {}: {e}", dir.display())))
}

/// Runs every cell's runs in order, recording (and writing) each run's
/// outcome as it ends. A signal stops the campaign: the record is written
/// as interrupted and the error says where it is.
fn run_cells(
    campaign: &Campaign,
    record: &mut CampaignRecord,
    dir: &Path,
    store_root: &Path,
) -> Result<(), Failure> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::Internal(e.into()))?;
    let planned: usize = campaign.cells.iter().map(|c| c.runs).sum();
    let mut done = 0;
    for (index, cell) in campaign.cells.iter().enumerate() {
        for i in 0..cell.runs {
            done += 1;
            let run_seed = run_seed(record.seed, &cell.name, i);
            println!(
                "== [{done}/{planned}] cell {} run {} of {} (expect {})",
                cell.name,
                i + 1,
                cell.runs,
                cell.expect.describe()
            );
            let run = match run_one(&runtime, cell, run_seed) {
                Ok(run) => run,
                Err(signal) => return Err(interrupted(record, dir, store_root, signal)),
            };
            println!("{}", run_line(&run));
            record.cells[index].runs.push(run);
            write_record(record, dir, store_root)?;
        }
        let outcome = &record.cells[index];
        println!("cell {}: {}", outcome.name, outcome.verdict());
    }
    Ok(())
}

/// One run of `cell` with `run_seed`: its record, failed or not, or the
/// signal that stopped it.
fn run_one(
    runtime: &tokio::runtime::Runtime,
    cell: &Cell,
    run_seed: u64,
) -> Result<RunRecord, &'static str> {
    let mut spec = cell.test.clone();
    spec.seed = Some(run_seed);
    let started = Instant::now();
    match runtime.block_on(interruptible(&spec)) {
        Ok(outcome) => Ok(RunRecord::from_results(
            &cell.expect,
            run_seed,
            outcome.run.path().to_path_buf(),
            &outcome.results,
            started.elapsed().as_secs_f64(),
        )),
        Err(Stop::Signal(signal)) => Err(signal),
        Err(Stop::Failed(failure)) => {
            eprintln!("faultline: run failed: {failure:#}");
            Ok(RunRecord::failed(
                run_seed,
                None,
                format!("{failure:#}"),
                started.elapsed().as_secs_f64(),
            ))
        }
    }
}

/// Marks the campaign interrupted by `signal`, writes it, prints the table
/// so far, and returns the failure to exit with.
fn interrupted(
    record: &mut CampaignRecord,
    dir: &Path,
    store_root: &Path,
    signal: &'static str,
) -> Failure {
    record.status = "interrupted".into();
    record.finished = Some(now());
    if let Err(failure) = write_record(record, dir, store_root) {
        return failure;
    }
    print!("{}", record.summary_table());
    Failure::Internal(anyhow::anyhow!(
        "interrupted by {signal}: the run's nodes are stopped; what was done is in {}",
        dir.join("campaign.json").display()
    ))
}

/// Prints the summary table, the verdict and where the reports are; returns
/// the exit code: 0 every expectation met, 1 one unmet, 2 some undecided.
fn print_verdict(record: &CampaignRecord, dir: &Path) -> u8 {
    println!();
    print!("{}", record.summary_table());
    let verdict = record.verdict();
    println!(
        "campaign {}: {}",
        record.name,
        match verdict {
            CellVerdict::Met => "every expectation met",
            CellVerdict::Unknown => "some cells undecided",
            CellVerdict::Unmet => "some expectations NOT met",
        }
    );
    println!("report: {}", dir.join("campaign.html").display());
    println!("junit:  {}", dir.join("junit.xml").display());
    match verdict {
        CellVerdict::Met => exit::VALID,
        CellVerdict::Unmet => 1,
        CellVerdict::Unknown => 2,
    }
}

/// `--runs-per-cell`, `--time-limit`, `--store` and `--only` over the file.
fn apply_flags(campaign: &mut Campaign, args: &CampaignArgs) -> Result<(), Failure> {
    if !args.only.is_empty() {
        campaign
            .cells
            .retain(|c| args.only.iter().any(|o| c.name.contains(o.as_str())));
        if campaign.cells.is_empty() {
            return Err(Failure::Usage(format!(
                "--only {}: no cell's name contains that",
                args.only.join(",")
            )));
        }
    }
    for cell in &mut campaign.cells {
        if let Some(runs) = args.runs_per_cell {
            if runs == 0 {
                return Err(Failure::Usage("--runs-per-cell must be at least 1".into()));
            }
            // Keep the cell's proportion of detecting runs.
            let scaled = (cell.min_detections * runs).div_ceil(cell.runs);
            cell.min_detections = scaled.clamp(1, runs);
            cell.runs = runs;
        }
        if let Some(limit) = args.time_limit {
            if limit.is_zero() {
                return Err(Failure::Usage("--time-limit must be longer than 0".into()));
            }
            cell.test.time_limit = limit;
        }
        cell.test.store = args.store.clone();
    }
    Ok(())
}

/// `store/campaigns/<name>/<time>/`, made through the store so it is named
/// like a run directory (its empty `nodes/` removed).
fn campaign_dir(store: &Path, name: &str) -> Result<PathBuf, Failure> {
    let run = Store::new(store.join("campaigns"))
        .create_run(name)
        .map_err(|e| Failure::Internal(e.into()))?;
    let _ = std::fs::remove_dir(run.nodes_dir());
    Ok(run.path().to_path_buf())
}

fn now() -> String {
    humantime::format_rfc3339_seconds(SystemTime::now()).to_string()
}

/// The command that repeats this campaign exactly.
fn repeat_command(args: &CampaignArgs, seed: u64) -> String {
    let mut parts = vec!["faultline".to_string(), "campaign".to_string()];
    if let Some(file) = &args.file {
        parts.push(file.display().to_string());
    }
    if let Some(n) = args.runs_per_cell {
        parts.push(format!("--runs-per-cell {n}"));
    }
    if let Some(t) = args.time_limit {
        parts.push(format!(
            "--time-limit {}",
            harness::test_spec::format_duration(t)
        ));
    }
    if !args.only.is_empty() {
        parts.push(format!("--only {}", args.only.join(",")));
    }
    if args.store != Path::new("store") {
        parts.push(format!("--store {}", args.store.display()));
    }
    parts.push(format!("--seed {seed}"));
    parts.join(" ")
}

/// One line per run: verdict, anomalies, detection, time.
fn run_line(run: &RunRecord) -> String {
    let anomalies: Vec<String> = run
        .anomalies
        .iter()
        .map(|(k, n)| format!("{n} {k}"))
        .collect();
    let what = match &run.error {
        Some(e) => format!("error: {e}"),
        None if anomalies.is_empty() => "no anomalies".into(),
        None => anomalies.join(", "),
    };
    let first = run
        .first_anomaly_s
        .map(|s| format!(", first at {s:.1} s"))
        .unwrap_or_default();
    format!(
        "   {}{} — {what}{first}; took {:.1} s",
        run.verdict,
        if run.detected { " (detected)" } else { "" },
        run.duration_s
    )
}
