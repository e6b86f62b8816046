//! `faultline check FILE`: read a history, check it, print the verdict, exit
//! with its code.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

use checker::history::stream::KeyedHistory;
use checker::history::Op;
use checker::import::{op_line_in_file, read_history_file, Format};
use checker::linearizable::{check_partitions, partition_count, CheckError, Options};
use checker::model::{ModelKind, ModelSpec, NilRead};
use checker::txn::{RegisterOrder, TxnHistory, TxnOptions};
use serde_json::Value;

use harness::workload::register::CHECKER as LINEARIZABLE;
use harness::workload::{
    check_safe, panic_reason, workload, CheckFailure, CheckInput, CheckOptions, CheckOutcome,
    HistoryForm, Workload, WorkloadKind, WorkloadOptions,
};

use crate::cli::{CheckArgs, FormatArg, NilReadArg};
use crate::exit::{self, Failure};

/// Runs the command; returns the exit code of the verdict. Every workload
/// reaches its checkers as `faultline run` does: the workload's
/// [`Workload::check_with`], here with the options from the flags.
pub fn run(args: CheckArgs) -> Result<u8, Failure> {
    let work = workload(args.workload, WorkloadOptions::default());
    let options = check_options(&args, work.as_ref())?;
    let format = match args.format {
        FormatArg::Auto => None,
        FormatArg::Jsonl => Some(Format::Jsonl),
        FormatArg::Edn => Some(Format::Edn),
    };
    let checked = match work.history_form() {
        // Transactional histories in JSONL are read straight into the
        // checker's compact form, never as generic ops.
        HistoryForm::Txn(kind) => {
            let history = TxnHistory::read_file(&args.file, format, kind)
                .map_err(|e| Failure::BadInput(e.to_string()))?;
            let outcomes = check_safe(work.as_ref(), CheckInput::Txn(&history), &options);
            Checked {
                outcomes,
                ops: history.ops(),
                history: None,
            }
        }
        // The linearizability checker reads JSONL streamed, straight into
        // each key's calls; `--out` needs the ops themselves.
        HistoryForm::Ops
            if args.workload == WorkloadKind::Register
                && args.out.is_none()
                && is_jsonl(&args)? =>
        {
            return check_streamed(&args, &options);
        }
        HistoryForm::Ops => {
            let history = read_history_file(&args.file, format)
                .map_err(|e| Failure::BadInput(e.to_string()))?;
            let progress = options.linearizable.progress.clone().unwrap_or_default();
            // Only the linearizability checker counts keys as it goes.
            let keys = match args.workload {
                WorkloadKind::Register => partition_count(&history) as u64,
                _ => 0,
            };
            let outcomes = with_progress(keys, &progress, || {
                check_safe(work.as_ref(), CheckInput::Ops(&history), &options)
            });
            Checked {
                outcomes,
                ops: history.len(),
                history: Some(history),
            }
        }
    };
    let outcomes = checked.outcomes.map_err(|failure| match failure {
        CheckFailure::Malformed { message, op, .. } => {
            let line = op.and_then(|i| op_line_in_file(&args.file, format, i));
            match line {
                Some(line) => {
                    Failure::BadInput(format!("{}:{line}: {message}", args.file.display()))
                }
                None => Failure::BadInput(format!("{}: {message}", args.file.display())),
            }
        }
        CheckFailure::Usage { message, .. } => Failure::Usage(message),
    })?;
    let verdict = print_outcomes(&outcomes, checked.ops, &args)?;
    if let Some(dir) = &args.out {
        let history = match checked.history {
            Some(history) => history,
            None => read_history_file(&args.file, format)
                .map_err(|e| Failure::BadInput(e.to_string()))?,
        };
        let mut checkers = std::collections::BTreeMap::new();
        let mut anomalies = Vec::new();
        for outcome in outcomes {
            anomalies.extend(outcome.anomalies);
            checkers.insert(outcome.checker, outcome.result);
        }
        write_run_dir(&args, dir, &history, checkers, anomalies)?;
    }
    Ok(exit::verdict(verdict))
}

/// The checkers' outcomes on the file, how many ops it holds, and the
/// history as generic ops when it was read so.
struct Checked {
    outcomes: Result<Vec<CheckOutcome>, CheckFailure>,
    ops: usize,
    history: Option<Vec<Op>>,
}

/// The flag a Ctrl-C sets: the first stops the search, which then answers
/// unknown with how far it got; a second, with the flag already set, exits
/// at once.
fn interrupt_on_ctrl_c() -> Arc<AtomicBool> {
    use signal_hook::consts::SIGINT;
    let flag = Arc::new(AtomicBool::new(false));
    let registered = signal_hook::flag::register_conditional_shutdown(SIGINT, 130, flag.clone())
        .and_then(|_| signal_hook::flag::register(SIGINT, flag.clone()));
    if let Err(e) = registered {
        eprintln!("faultline: Ctrl-C will not stop the check gracefully: {e}");
    }
    flag
}

/// The checkers' options from the flags; only the flags of the checkers
/// `work` runs are validated.
fn check_options(args: &CheckArgs, work: &dyn Workload) -> Result<CheckOptions, Failure> {
    let defaults = CheckOptions::default();
    let model = match args.workload {
        WorkloadKind::Register => spec(args)?,
        _ => defaults.model,
    };
    let txn = match work.history_form() {
        HistoryForm::Txn(_) => txn_options(args)?,
        HistoryForm::Ops => defaults.txn,
    };
    let linearizable = Options {
        time_limit: args.time_limit,
        memo_bytes: args.memory_limit_mb.saturating_mul(1 << 20),
        all_keys: args.all_keys,
        threads: args.threads.unwrap_or_else(|| Options::default().threads),
        progress: Some(Arc::new(AtomicUsize::new(0))),
        max_configurations: args.max_configurations,
        interrupt: (args.workload == WorkloadKind::Register).then(interrupt_on_ctrl_c),
        shrink: (!args.shrink_time.is_zero()).then_some(args.shrink_time),
    };
    let txn = TxnOptions {
        interrupt: matches!(work.history_form(), HistoryForm::Txn(_)).then(interrupt_on_ctrl_c),
        ..txn
    };
    Ok(CheckOptions {
        model,
        linearizable,
        txn,
    })
}

/// Prints each outcome (the linearizability checker's as its own report,
/// the others' verdict and anomalies one per line; `--json` for the whole
/// result); returns the worst verdict.
fn print_outcomes(
    outcomes: &[CheckOutcome],
    ops: usize,
    args: &CheckArgs,
) -> Result<checker::Validity, Failure> {
    if let [outcome] = outcomes {
        if outcome.checker == LINEARIZABLE {
            let details = &outcome.result.details;
            if args.json {
                let mut out = details.clone();
                out["file"] = Value::String(args.file.display().to_string());
                println!("{out}");
            } else {
                print!("{}", render(details, &args.init, &args.file));
            }
            return Ok(outcome.result.valid);
        }
    }
    let mut verdict = checker::Validity::Valid;
    for outcome in outcomes {
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
    Ok(verdict)
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
    if is_jsonl(args)? {
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

/// Whether the history file is JSONL: `--format`, or detected from its
/// first 64 KiB (a file that cannot be read is left to the reader, which
/// names the error).
fn is_jsonl(args: &CheckArgs) -> Result<bool, Failure> {
    use std::io::Read as _;
    Ok(match args.format {
        FormatArg::Jsonl => true,
        FormatArg::Edn => false,
        FormatArg::Auto => {
            let mut head = Vec::new();
            let read = std::fs::File::open(&args.file)
                .and_then(|f| f.take(64 * 1024).read_to_end(&mut head));
            read.is_ok()
                && checker::import::detect_format(&String::from_utf8_lossy(&head)) == Format::Jsonl
        }
    })
}

/// `--workload register` on JSONL: the history read streamed into each
/// key's calls ([`KeyedHistory`]: no whole-file text, no op per event),
/// then checked as [`harness::workload::register::check_linearizable`]
/// checks ops, a panic caught as `check_safe` does.
fn check_streamed(args: &CheckArgs, options: &CheckOptions) -> Result<u8, Failure> {
    let history =
        KeyedHistory::read_file(&args.file).map_err(|e| Failure::BadInput(e.to_string()))?;
    let partitions = history.partitions();
    let progress = options.linearizable.progress.clone().unwrap_or_default();
    let checked = with_progress(partitions.len() as u64, &progress, || {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            check_partitions(
                &partitions,
                history.ops(),
                &options.model,
                &options.linearizable,
            )
        }))
    });
    let outcome = match checked {
        Ok(Ok(result)) => result.outcome(LINEARIZABLE),
        Ok(Err(e @ CheckError::Spec(_))) => return Err(Failure::Usage(e.to_string())),
        Ok(Err(e)) => {
            let file = args.file.display();
            return Err(Failure::BadInput(
                match e.index().and_then(|i| history.line_of(i)) {
                    Some(line) => format!("{file}:{line}: {e}"),
                    None => format!("{file}: {e}"),
                },
            ));
        }
        Err(payload) => {
            let what = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic without a message".to_string());
            CheckOutcome::unknown(LINEARIZABLE, panic_reason(LINEARIZABLE, &what))
        }
    };
    let verdict = print_outcomes(&[outcome], history.len(), args)?;
    Ok(exit::verdict(verdict))
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

/// The linearizability checker's report, from its result (the outcome's
/// details, `checker::linearizable::CheckResult` as JSON).
fn render(result: &Value, init: &str, file: &Path) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{}: {} ops, model {}, init {}, checked in {:.1} ms",
        file.display(),
        result["ops"],
        text(&result["model"]),
        init,
        result["elapsed_ms"].as_f64().unwrap_or_default()
    );
    if let Some(keys) = result["keys"].as_object().filter(|keys| !keys.is_empty()) {
        let count = |v: &str| keys.values().filter(|k| k["valid"] == v).count();
        let _ = writeln!(
            out,
            "keys: {} valid, {} invalid, {} unknown, {} skipped",
            count("valid"),
            count("invalid"),
            count("unknown"),
            count("skipped")
        );
    }
    if let Some(reason) = result["reason"].as_str() {
        let _ = writeln!(out, "unknown: {reason}");
    }
    let explanation = &result["explanation"];
    if explanation.is_object() {
        if let Some(key) = result["first_invalid_key"].as_str() {
            let _ = writeln!(out, "key {key} is not linearizable");
        }
        render_explanation(&mut out, explanation);
    }
    let valid: checker::Validity =
        serde_json::from_value(result["valid"].clone()).unwrap_or(checker::Validity::Unknown);
    let _ = writeln!(out, "verdict: {valid}");
    out
}

/// A JSON string's text (other values as JSON).
fn text(value: &Value) -> String {
    value
        .as_str()
        .map_or_else(|| value.to_string(), str::to_string)
}

fn render_explanation(out: &mut String, e: &Value) {
    let _ = writeln!(out, "{}", text(&e["message"]));
    render_core(out, e);
    let _ = writeln!(out, "  cannot linearize: {}", describe(&e["op"]));
    if e["last_ok"].is_object() {
        let _ = writeln!(out, "  last ok op before it: {}", describe(&e["last_ok"]));
    }
    let prefix = e["prefix"].as_array().map_or(&[][..], Vec::as_slice);
    let _ = writeln!(
        out,
        "  longest linearizable prefix found: {} ops",
        prefix.len()
    );
    let tail = prefix.len().saturating_sub(5);
    for op in &prefix[tail..] {
        let _ = writeln!(out, "    ... {}", describe(op));
    }
}

/// The key's core, when it was shrunk: the few ops that alone are not
/// linearizable, in history order.
fn render_core(out: &mut String, e: &Value) {
    let Some(core) = e["core"].as_array().filter(|c| !c.is_empty()) else {
        return;
    };
    let these = match core.len() {
        1 => "this op alone is".to_string(),
        n => format!("these {n} ops alone are"),
    };
    let _ = writeln!(
        out,
        "  core: {these} not linearizable (every op left out is a read, or a write no kept op observes):"
    );
    for op in core {
        let _ = writeln!(out, "    {}", describe(op));
    }
}

/// One op of an explanation (`checker::linearizable::OpRef` as JSON).
fn describe(op: &Value) -> String {
    let completed = op["complete_index"]
        .as_u64()
        .map_or("never completed".to_string(), |i| {
            format!("completed at {i}")
        });
    format!(
        "process {} {} {} {} (invoked at {}, {})",
        op["process"],
        text(&op["type"]),
        text(&op["f"]),
        op["value"].to_string().replace("null", "nil"),
        op["index"],
        completed
    )
}
