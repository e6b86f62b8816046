//! `faultline check FILE`: read a history, check it, print the verdict, exit
//! with its code.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

use checker::history::Op;
use checker::import::{read_history_file, Format};
use checker::linearizable::{
    check, partition_count, CheckError, CheckResult, Explanation, KeyVerdict, OpRef, Options,
};
use checker::model::{ModelKind, ModelSpec, NilRead};
use checker::txn::{RegisterOrder, TxnHistory, TxnOptions, TxnWorkload};
use serde_json::Value;

use harness::workload::{workload, WorkloadKind, WorkloadOptions};

use crate::cli::{CheckArgs, FormatArg, NilReadArg};
use crate::exit::{self, Failure};

/// Runs the command; returns the exit code of the verdict.
pub fn run(args: CheckArgs) -> Result<u8, Failure> {
    if args.workload != WorkloadKind::Register {
        return run_workload_checker(&args);
    }
    let spec = spec(&args)?;
    let format = match args.format {
        FormatArg::Auto => None,
        FormatArg::Jsonl => Some(Format::Jsonl),
        FormatArg::Edn => Some(Format::Edn),
    };
    let history =
        read_history_file(&args.file, format).map_err(|e| Failure::BadInput(e.to_string()))?;
    let progress = Arc::new(AtomicUsize::new(0));
    let options = Options {
        time_limit: args.time_limit,
        memo_bytes: args.memory_limit_mb.saturating_mul(1 << 20),
        all_keys: args.all_keys,
        threads: args.threads.unwrap_or_else(|| Options::default().threads),
        progress: Some(progress.clone()),
    };
    let keys = partition_count(&history) as u64;
    let result = with_progress(keys, &progress, || check(&history, &spec, &options)).map_err(
        |e| match e {
            CheckError::Pair(_) | CheckError::Model(_) => {
                Failure::BadInput(format!("{}: {e}", args.file.display()))
            }
            CheckError::Spec(msg) => Failure::Usage(msg),
        },
    )?;
    if args.json {
        let mut out = serde_json::to_value(&result).map_err(anyhow::Error::from)?;
        out["file"] = Value::String(args.file.display().to_string());
        println!("{out}");
    } else {
        print!("{}", render(&result, &args));
    }
    if let Some(dir) = &args.out {
        let (checker, anomalies) =
            results::CheckerResult::from_linearizable("linearizable", &result);
        let checkers = std::collections::BTreeMap::from([("linearizable".to_string(), checker)]);
        write_run_dir(&args, dir, &history, checkers, anomalies)?;
    }
    Ok(exit::verdict(result.valid))
}

/// `--out DIR`: the history as `history.jsonl` (the file itself when it is
/// JSONL, converted when it is EDN), `results.json`, and the report. An
/// existing non-empty directory is refused, so nothing is overwritten.
fn write_run_dir(
    args: &CheckArgs,
    dir: &Path,
    history: &[Op],
    checkers: std::collections::BTreeMap<String, results::CheckerResult>,
    anomalies: Vec<results::Anomaly>,
) -> Result<(), Failure> {
    let fail = |what: &str, e: &dyn std::fmt::Display| {
        Failure::Internal(anyhow::anyhow!("--out {}: {what}: {e}", dir.display()))
    };
    if std::fs::read_dir(dir).is_ok_and(|mut entries| entries.next().is_some()) {
        return Err(Failure::Usage(format!(
            "--out {}: the directory exists and is not empty; give a new one",
            dir.display()
        )));
    }
    std::fs::create_dir_all(dir).map_err(|e| fail("creating it", &e))?;
    let history_path = dir.join("history.jsonl");
    let is_jsonl = match args.format {
        FormatArg::Jsonl => true,
        FormatArg::Edn => false,
        FormatArg::Auto => {
            use std::io::Read as _;
            let mut head = Vec::new();
            std::fs::File::open(&args.file)
                .and_then(|f| f.take(64 * 1024).read_to_end(&mut head))
                .map_err(|e| fail("reading the history", &e))?;
            checker::import::detect_format(&String::from_utf8_lossy(&head)) == Format::Jsonl
        }
    };
    if is_jsonl {
        std::fs::copy(&args.file, &history_path).map_err(|e| fail("copying the history", &e))?;
    } else {
        let mut out = std::io::BufWriter::new(
            std::fs::File::create(&history_path).map_err(|e| fail("history.jsonl", &e))?,
        );
        for op in history {
            serde_json::to_writer(&mut out, op).map_err(|e| fail("history.jsonl", &e))?;
            out.write_all(b"\n")
                .map_err(|e| fail("history.jsonl", &e))?;
        }
        out.flush().map_err(|e| fail("history.jsonl", &e))?;
    }
    let test = serde_json::json!({
        "name": args.file.file_stem().map(|s| s.to_string_lossy().into_owned()),
        "workload": harness::test_spec::mode_name(args.workload),
        "checked-from": args.file.display().to_string(),
    });
    let results = results::Results::compose(checkers, anomalies, results::stats(history))
        .with_test(test)
        .with_run_dir(dir.to_path_buf());
    let run = results::RunDir::open(dir).map_err(|e| fail("opening it", &e))?;
    run.write_results(&results)
        .map_err(|e| fail("results.json", &e))?;
    let files = results::write_report(dir).map_err(|e| fail("the report", &e))?;
    eprintln!("report: {}", files.report_html.display());
    Ok(())
}

/// Runs `work` while a progress bar on stderr counts checked keys (hidden when
/// stderr is not a terminal, or when there is only one key).
fn with_progress<T: Send>(keys: u64, done: &AtomicUsize, work: impl FnOnce() -> T + Send) -> T {
    if keys < 2 {
        return work();
    }
    let bar = ProgressBar::new(keys).with_style(
        ProgressStyle::with_template(
            "checking {bar:40} {pos}/{len} keys, {elapsed} elapsed, eta {eta}",
        )
        .expect("a valid progress template"),
    );
    let finished = AtomicBool::new(false);
    let result = std::thread::scope(|scope| {
        scope.spawn(|| {
            while !finished.load(Ordering::Relaxed) {
                bar.set_position(done.load(Ordering::Relaxed) as u64);
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        let result = work();
        finished.store(true, Ordering::Relaxed);
        result
    });
    bar.finish_and_clear();
    result
}

/// `--workload set|append|rw-register`: the workload's own checker, as
/// `faultline run` uses it (verdict, anomalies one per line; `--json` for
/// the whole result). Transactional histories in JSONL are read straight
/// into the checker's compact form, never as generic ops.
fn run_workload_checker(args: &CheckArgs) -> Result<u8, Failure> {
    let format = match args.format {
        FormatArg::Auto => None,
        FormatArg::Jsonl => Some(Format::Jsonl),
        FormatArg::Edn => Some(Format::Edn),
    };
    let (outcomes, ops) = match args.workload {
        WorkloadKind::Append | WorkloadKind::RwRegister => {
            let options = txn_options(args)?;
            let kind = match args.workload {
                WorkloadKind::Append => TxnWorkload::ListAppend,
                _ => TxnWorkload::RwRegister,
            };
            let history = TxnHistory::read_file(&args.file, format, kind)
                .map_err(|e| Failure::BadInput(e.to_string()))?;
            let outcome = harness::workload::append::check_txn(&history, &options);
            (vec![outcome], history.ops())
        }
        _ => {
            let history = read_history_file(&args.file, format)
                .map_err(|e| Failure::BadInput(e.to_string()))?;
            let outcomes = workload(args.workload, WorkloadOptions::default()).check(&history);
            (outcomes, history.len())
        }
    };
    let mut verdict = checker::Validity::Valid;
    for outcome in &outcomes {
        verdict = verdict.and(outcome.result.valid);
        if args.json {
            let mut out = serde_json::to_value(&outcome.result).map_err(anyhow::Error::from)?;
            out["checker"] = Value::String(outcome.checker.clone());
            out["file"] = Value::String(args.file.display().to_string());
            out["anomalies_found"] =
                serde_json::to_value(&outcome.anomalies).map_err(anyhow::Error::from)?;
            println!("{out}");
            continue;
        }
        println!(
            "{}: {} ops, checker {}",
            args.file.display(),
            ops,
            outcome.checker
        );
        for anomaly in &outcome.anomalies {
            println!("anomaly {}: {}", anomaly.kind, anomaly.explanation);
        }
        if let Some(reason) = outcome.result.details.get("reason").and_then(Value::as_str) {
            println!("unknown: {reason}");
        }
    }
    if !args.json {
        println!("verdict: {verdict}");
    }
    if let Some(dir) = &args.out {
        let history =
            read_history_file(&args.file, format).map_err(|e| Failure::BadInput(e.to_string()))?;
        let mut checkers = std::collections::BTreeMap::new();
        let mut anomalies = Vec::new();
        for outcome in outcomes {
            anomalies.extend(outcome.anomalies);
            checkers.insert(outcome.checker, outcome.result);
        }
        write_run_dir(args, dir, &history, checkers, anomalies)?;
    }
    Ok(exit::verdict(verdict))
}

/// The transactional checker's options from `--consistency-models`,
/// `--anomalies`, `--register-order` and `--time-limit`.
fn txn_options(args: &CheckArgs) -> Result<TxnOptions, Failure> {
    let register_order = match args.register_order.as_str() {
        "inferred" => RegisterOrder::Inferred,
        "process" => RegisterOrder::Process,
        "realtime" => RegisterOrder::Realtime,
        other => {
            return Err(Failure::Usage(format!(
                "--register-order {other:?}: expected inferred, process or realtime"
            )))
        }
    };
    // `--anomalies` alone checks only those; neither flag: the default model.
    let consistency_models = if args.consistency_models.is_empty() && args.anomalies.is_empty() {
        TxnOptions::default().consistency_models
    } else {
        args.consistency_models.clone()
    };
    let options = TxnOptions {
        consistency_models,
        anomalies: args.anomalies.clone(),
        time_limit: args.time_limit.or(TxnOptions::default().time_limit),
        register_order,
        ..TxnOptions::default()
    };
    match checker::txn::check_list_append(&[], &options) {
        Err(e @ checker::txn::TxnError::UnknownModel(_)) => {
            return Err(Failure::Usage(format!("--consistency-models: {e}")))
        }
        Err(e @ checker::txn::TxnError::UnknownAnomaly(_)) => {
            return Err(Failure::Usage(format!("--anomalies: {e}")))
        }
        _ => {}
    }
    Ok(options)
}

fn spec(args: &CheckArgs) -> Result<ModelSpec, Failure> {
    let kind: ModelKind = args.model.parse().map_err(Failure::Usage)?;
    let init: Value = serde_json::from_str(&args.init)
        .map_err(|e| Failure::Usage(format!("--init {:?} is not JSON: {e}", args.init)))?;
    let nil_read = match args.nil_read {
        NilReadArg::Value => NilRead::Value,
        NilReadArg::Unknown => NilRead::Unknown,
    };
    Ok(ModelSpec {
        kind,
        init,
        nil_read,
    })
}

/// The human-readable report.
fn render(result: &CheckResult, args: &CheckArgs) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{}: {} ops, model {}, init {}, checked in {:.1} ms",
        args.file.display(),
        result.ops,
        result.model,
        args.init,
        result.elapsed_ms
    );
    if !result.keys.is_empty() {
        let count = |v: KeyVerdict| result.keys.values().filter(|k| k.valid == v).count();
        let _ = writeln!(
            out,
            "keys: {} valid, {} invalid, {} unknown, {} skipped",
            count(KeyVerdict::Valid),
            count(KeyVerdict::Invalid),
            count(KeyVerdict::Unknown),
            count(KeyVerdict::Skipped)
        );
    }
    if let Some(reason) = &result.reason {
        let _ = writeln!(out, "unknown: {reason}");
    }
    if let Some(explanation) = &result.explanation {
        if let Some(key) = &result.first_invalid_key {
            let _ = writeln!(out, "key {key} is not linearizable");
        }
        render_explanation(&mut out, explanation);
    }
    let _ = writeln!(out, "verdict: {}", result.valid);
    out
}

fn render_explanation(out: &mut String, e: &Explanation) {
    let _ = writeln!(out, "{}", e.message);
    let _ = writeln!(out, "  cannot linearize: {}", describe(&e.op));
    if let Some(last) = &e.last_ok {
        let _ = writeln!(out, "  last ok op before it: {}", describe(last));
    }
    let _ = writeln!(
        out,
        "  longest linearizable prefix found: {} ops",
        e.prefix.len()
    );
    let tail = e.prefix.len().saturating_sub(5);
    for op in &e.prefix[tail..] {
        let _ = writeln!(out, "    ... {}", describe(op));
    }
}

fn describe(op: &OpRef) -> String {
    let completed = op
        .complete_index
        .map_or("never completed".to_string(), |i| {
            format!("completed at {i}")
        });
    format!(
        "process {} {} {} {} (invoked at {}, {})",
        op.process,
        op.op_type,
        op.f,
        op.value.to_string().replace("null", "nil"),
        op.index,
        completed
    )
}
