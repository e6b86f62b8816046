//! Linearizability benchmarks: `cargo bench -p checker`.
//!
//! First a *report* (plain `Instant` loops, printed as `report:` lines, the
//! numbers `BENCHMARKS.md` quotes): the shared corpus (total and slowest
//! file), 100 + 100 generated etcd-style histories (median and worst per
//! history, suite totals), the 10,000-op single-key history and the
//! 1,000,000-op history over 1,000 keys. Then criterion groups over the same
//! inputs.
//!
//! Environment:
//! - `FAULTLINE_BENCH_RUNS=N` (default 1): repeat the report N times and end
//!   it with `summary:` lines, the median of each number over the runs (the
//!   machine is shared and noisy).
//! - `FAULTLINE_BENCH_REPORT_ONLY=1`: print the report, skip criterion.
//! - `FAULTLINE_BENCH_SKIP_1M=1`: leave out the 1M-op history.
//!
//! The shared corpus is read from `$CARGO_MANIFEST_DIR/../../shared/corpus`;
//! when it is absent its group is skipped with a note.

mod gen;

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use checker::history::Op;
use checker::import::read_history_file;
use checker::linearizable::{check, Options};
use checker::model::{ModelKind, ModelSpec, NilRead};
use checker::Validity;
use criterion::{Criterion, SamplingMode};

use gen::{generate, Kind};

/// The checker's defaults, without a time limit (no watchdog thread).
fn options() -> Options {
    Options {
        time_limit: None,
        ..Options::default()
    }
}

fn cas_register() -> ModelSpec {
    ModelSpec::new(ModelKind::CasRegister)
}

fn verdict(history: &[Op], spec: &ModelSpec) -> Validity {
    check(history, spec, &options())
        .expect("a well-formed history")
        .valid
}

/// Median wall time of `f` over up to `reps` runs (at least 3), stopping
/// early once `budget` is spent.
fn median_time(reps: usize, budget: Duration, mut f: impl FnMut()) -> Duration {
    f(); // warm-up
    let started = Instant::now();
    let mut times = Vec::with_capacity(reps);
    while times.len() < reps && (times.len() < 3 || started.elapsed() < budget) {
        let t = Instant::now();
        f();
        times.push(t.elapsed());
    }
    times.sort_unstable();
    times[times.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Named numbers (milliseconds) of the report, over several runs.
#[derive(Default)]
struct Metrics {
    /// In first-seen order: name and one value per run.
    values: Vec<(String, Vec<f64>)>,
}

impl Metrics {
    fn record(&mut self, name: impl Into<String>, value_ms: f64) {
        let name = name.into();
        match self.values.iter_mut().find(|(n, _)| *n == name) {
            Some((_, v)) => v.push(value_ms),
            None => self.values.push((name, vec![value_ms])),
        }
    }

    fn summary(&self) {
        for (name, values) in &self.values {
            let mut sorted = values.clone();
            sorted.sort_by(f64::total_cmp);
            let runs: Vec<String> = values.iter().map(|v| format!("{v:.4}")).collect();
            println!(
                "summary: {name}: median {:.4} ms over {} runs ({})",
                sorted[sorted.len() / 2],
                values.len(),
                runs.join(" ")
            );
        }
    }
}

// ---------------------------------------------------------------- corpus

struct CorpusCase {
    file: String,
    path: PathBuf,
    spec: ModelSpec,
    expected: Validity,
}

fn corpus() -> Option<Vec<CorpusCase>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus");
    let table = std::fs::read_to_string(dir.join("VERDICTS.tsv")).ok()?;
    let cases = table
        .lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let cols: Vec<&str> = line.split('\t').collect();
            let [file, model, init, nil_read, expected] = cols[..] else {
                panic!("VERDICTS.tsv: malformed line {line:?}");
            };
            let init = if init == "-" {
                serde_json::Value::Null
            } else {
                serde_json::from_str(init).expect("VERDICTS.tsv: initial state is JSON")
            };
            CorpusCase {
                file: file.to_string(),
                path: dir.join(file),
                spec: ModelSpec {
                    kind: model.parse().expect("VERDICTS.tsv: a known model"),
                    init,
                    nil_read: if nil_read == "unknown" {
                        NilRead::Unknown
                    } else {
                        NilRead::Value
                    },
                },
                expected: if expected == "valid" {
                    Validity::Valid
                } else {
                    Validity::Invalid
                },
            }
        })
        .collect();
    Some(cases)
}

fn parse_and_check(case: &CorpusCase) -> Validity {
    let history = read_history_file(&case.path, None).expect("a readable corpus file");
    verdict(&history, &case.spec)
}

/// Reports the corpus; returns the slowest case's index.
fn report_corpus(cases: &[CorpusCase], m: &mut Metrics) -> usize {
    let mut wrong = 0;
    let mut rows = Vec::new();
    for (i, case) in cases.iter().enumerate() {
        if parse_and_check(case) != case.expected {
            wrong += 1;
            println!(
                "report: corpus MISMATCH {}: expected {}",
                case.file, case.expected
            );
        }
        let history = read_history_file(&case.path, None).unwrap();
        let total = median_time(21, Duration::from_millis(200), || {
            black_box(parse_and_check(case));
        });
        let check_only = median_time(21, Duration::from_millis(200), || {
            black_box(verdict(&history, &case.spec));
        });
        rows.push((total, check_only, history.len(), i));
    }
    let sum: Duration = rows.iter().map(|r| r.0).sum();
    let sum_check: Duration = rows.iter().map(|r| r.1).sum();
    let whole = median_time(5, Duration::from_secs(5), || {
        for case in cases {
            black_box(parse_and_check(case));
        }
    });
    println!(
        "report: corpus {} files, {} wrong verdicts; parse+check all (one pass, median of runs) {:.2} ms; \
         sum of per-file medians: parse+check {:.2} ms, check only {:.2} ms",
        cases.len(),
        wrong,
        ms(whole),
        ms(sum),
        ms(sum_check)
    );
    m.record("corpus: parse+check all files, one pass", ms(whole));
    m.record("corpus: check only, sum of per-file medians", ms(sum_check));
    rows.sort_by_key(|r| std::cmp::Reverse(r.0));
    // (The file is named in the `report:` lines; it may differ between runs.)
    m.record("corpus: slowest file, parse+check", ms(rows[0].0));
    m.record("corpus: slowest file, check only", ms(rows[0].1));
    for (total, check_only, events, i) in rows.iter().take(5) {
        println!(
            "report: corpus slow file {}: parse+check {:.3} ms, check only {:.3} ms ({} events)",
            cases[*i].file,
            ms(*total),
            ms(*check_only),
            events
        );
    }
    rows[0].3
}

// ---------------------------------------------------------------- etcd

/// The generated etcd-style histories: (name, [(seed, history)]).
type EtcdSets = Vec<(&'static str, Vec<(u64, Vec<Op>)>)>;

fn etcd_sets(n: u64) -> EtcdSets {
    let spec = cas_register();
    let mut sets = Vec::new();
    for kind in [Kind::Etcd, Kind::EtcdBad, Kind::EtcdBadAny] {
        let set: Vec<(u64, Vec<Op>)> = (0..n).map(|s| (s, generate(kind, s).history())).collect();
        let verdicts: Vec<Validity> = set.iter().map(|(_, h)| verdict(h, &spec)).collect();
        let count = |v: Validity| verdicts.iter().filter(|&&x| x == v).count();
        println!(
            "report: {kind}: {n} histories, {} valid, {} invalid, {} unknown{}",
            count(Validity::Valid),
            count(Validity::Invalid),
            count(Validity::Unknown),
            match kind {
                Kind::Etcd => " (valid by construction: all must be valid)",
                Kind::EtcdBad => " (impossible read injected: all should be invalid)",
                _ => " (a read changed at random: some stay valid)",
            }
        );
        sets.push((kind.name(), set));
    }
    sets
}

/// Per-history medians (ms) with seeds, sorted ascending.
fn per_history(set: &[(u64, Vec<Op>)]) -> Vec<(f64, u64)> {
    let spec = cas_register();
    let mut out: Vec<(f64, u64)> = set
        .iter()
        .map(|(seed, h)| {
            let t = median_time(201, Duration::from_millis(100), || {
                black_box(verdict(h, &spec));
            });
            (ms(t), *seed)
        })
        .collect();
    out.sort_by(|a, b| a.0.total_cmp(&b.0));
    out
}

fn suite_time(set: &[&[Op]]) -> Duration {
    let spec = cas_register();
    median_time(51, Duration::from_secs(2), || {
        for h in set {
            black_box(verdict(h, &spec));
        }
    })
}

/// Reports the etcd histories; returns (median seed, worst seed) of each set.
fn report_etcd(sets: &EtcdSets, m: &mut Metrics) -> Vec<(u64, u64)> {
    let mut picks = Vec::new();
    for (name, hs) in sets {
        let times = per_history(hs);
        let median = times[times.len() / 2];
        let p90 = times[times.len() * 9 / 10];
        let worst = times[times.len() - 1];
        let over: usize = times.iter().filter(|t| t.0 > 5.0).count();
        println!(
            "report: {name}: {over} of {} histories took over 5 ms",
            times.len()
        );
        println!(
            "report: {name} per history ({} histories): median {:.4} ms (seed {}), p90 {:.4} ms, \
             worst {:.4} ms (seed {}), best {:.4} ms",
            times.len(),
            median.0,
            median.1,
            p90.0,
            worst.0,
            worst.1,
            times[0].0
        );
        m.record(format!("{name}: median per history"), median.0);
        m.record(format!("{name}: p90 per history"), p90.0);
        m.record(format!("{name}: worst per history"), worst.0);
        picks.push((median.1, worst.1));
    }
    let slices = |k: usize| -> Vec<&[Op]> { sets[k].1.iter().map(|(_, h)| h.as_slice()).collect() };
    let (valid, bad) = (slices(0), slices(1));
    let mixed: Vec<&[Op]> = valid[..valid.len() / 2]
        .iter()
        .chain(&bad[..bad.len() / 2])
        .copied()
        .collect();
    let suites = [
        ("etcd", valid.clone()),
        ("etcd-bad", bad.clone()),
        ("etcd-bad-any", slices(2)),
        ("etcd 50 + etcd-bad 50", mixed),
    ];
    for (name, s) in &suites {
        let t = ms(suite_time(s));
        println!("report: suite of {} ({name}): {t:.3} ms total", s.len());
        m.record(format!("suite of {} ({name})", s.len()), t);
    }
    picks
}

// ---------------------------------------------------------------- big ones

fn report_big(name: &str, kind: Kind, reps: usize, m: &mut Metrics) -> Vec<Op> {
    let t = Instant::now();
    let generated = generate(kind, 1);
    let stats = generated.stats();
    let history = generated.history();
    let made = t.elapsed();
    let spec = cas_register();
    let v = verdict(&history, &spec);
    let t = median_time(reps, Duration::from_secs(30), || {
        black_box(verdict(&history, &spec));
    });
    println!(
        "report: {name} (seed 1; {stats}): verdict {v}; check {:.1} ms (median of up to {reps}; generated in {:.0} ms)",
        ms(t),
        ms(made)
    );
    m.record(format!("{name}: check"), ms(t));
    history
}

// ---------------------------------------------------------------- main

// Long on purpose: the report reads top to bottom as its list of scenarios, one block each.
fn main() {
    // `cargo test --benches` runs this binary without `--bench`: the report
    // would take minutes in a debug build, so there is nothing to do then.
    if !std::env::args().any(|a| a == "--bench") {
        println!("linearizability: run with `cargo bench -p checker` (no --bench given; skipping)");
        return;
    }
    let report_only = std::env::var_os("FAULTLINE_BENCH_REPORT_ONLY").is_some();
    let skip_1m = std::env::var_os("FAULTLINE_BENCH_SKIP_1M").is_some();
    println!(
        "report: threads {} (Options::default), no time limit",
        options().threads
    );

    let runs: usize = std::env::var("FAULTLINE_BENCH_RUNS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(1)
        .max(1);
    let corpus = corpus();
    if corpus.is_none() {
        println!(
            "report: shared corpus absent ({}/../../shared/corpus): skipping its benchmarks",
            env!("CARGO_MANIFEST_DIR")
        );
    }
    let etcd = etcd_sets(100);
    let mut m = Metrics::default();
    let (mut slowest, mut picks, mut long, mut multikey) = (None, Vec::new(), Vec::new(), None);
    for run in 1..=runs {
        println!("report: run {run} of {runs}");
        slowest = corpus.as_ref().map(|cases| report_corpus(cases, &mut m));
        picks = report_etcd(&etcd, &mut m);
        long = report_big("long 10k single key", Kind::Long, 11, &mut m);
        multikey = (!skip_1m)
            .then(|| report_big("multikey 1M ops / 1000 keys", Kind::Multikey, 3, &mut m));
    }
    m.summary();

    if report_only {
        return;
    }
    let mut c = Criterion::default().configure_from_args();
    let spec = cas_register();

    if let (Some(cases), Some(slowest)) = (&corpus, slowest) {
        let mut g = c.benchmark_group("corpus");
        g.sample_size(10).measurement_time(Duration::from_secs(8));
        g.bench_function("parse+check all", |b| {
            b.iter(|| {
                for case in cases {
                    black_box(parse_and_check(case));
                }
            })
        });
        let parsed: Vec<Vec<Op>> = cases
            .iter()
            .map(|c| read_history_file(&c.path, None).unwrap())
            .collect();
        g.bench_function("check all (pre-parsed)", |b| {
            b.iter(|| {
                for (case, h) in cases.iter().zip(&parsed) {
                    black_box(verdict(h, &case.spec));
                }
            })
        });
        let case = &cases[slowest];
        g.bench_function(format!("parse+check slowest ({})", case.file), |b| {
            b.iter(|| black_box(parse_and_check(case)))
        });
        g.finish();
    }

    {
        let mut g = c.benchmark_group("etcd");
        g.measurement_time(Duration::from_secs(4))
            .warm_up_time(Duration::from_secs(1));
        for (name, set) in &etcd {
            g.bench_function(format!("suite of 100 ({name})"), |b| {
                b.iter(|| {
                    for (_, h) in set {
                        black_box(verdict(h, &spec));
                    }
                })
            });
        }
        for ((name, set), (median_seed, worst_seed)) in etcd.iter().zip(&picks) {
            for (what, seed) in [("median", median_seed), ("worst", worst_seed)] {
                let h = &set.iter().find(|(s, _)| s == seed).unwrap().1;
                g.bench_function(format!("{name} {what} history (seed {seed})"), |b| {
                    b.iter(|| black_box(verdict(h, &spec)))
                });
            }
        }
        g.finish();
    }

    {
        let mut g = c.benchmark_group("long");
        g.sample_size(10).measurement_time(Duration::from_secs(5));
        g.bench_function("10k ops single key", |b| {
            b.iter(|| black_box(verdict(&long, &spec)))
        });
        g.finish();
    }

    if let Some(history) = &multikey {
        let mut g = c.benchmark_group("multikey");
        g.sample_size(10)
            .sampling_mode(SamplingMode::Flat)
            .warm_up_time(Duration::from_millis(1))
            .measurement_time(Duration::from_secs(20));
        g.bench_function("1M ops 1000 keys", |b| {
            b.iter(|| black_box(verdict(history, &spec)))
        });
        g.finish();
    }

    c.final_summary();
}
