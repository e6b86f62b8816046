//! The run report: everything a person looks at after a run, written into
//! the run directory from `history.jsonl`, `results.json`, `test.json` and
//! `nodes/*.log`.
//!
//! Files written: `report.html` (one self-contained page: inline CSS, plots
//! as data URIs, SVGs inline, no scripts, no network), the plots
//! ([`crate::plots`], PNG and SVG), `timeline.html` and its further pages
//! ([`crate::timeline`]) and `junit.xml` ([`crate::junit`]).
//!
//! Decisions:
//! - A run without `results.json` (checking never finished) still gets a
//!   report, with an unknown verdict and statistics from the history.
//! - Node logs are excerpted around the first anomaly of each kind, each
//!   line labelled with its history time; [`crate::logs`] says how log times
//!   are aligned to the history (exactly when `results.json` has the run's
//!   start, approximately from the run directory's name otherwise).
//! - Lost and stale elements are a table ([`crate::set_table`]);
//!   transactional cycles are drawn and the other txn anomalies tabulated
//!   ([`crate::txn_svg`]).
//! - At most [`ANOMALIES_SHOWN`] anomalies of each kind are written out; the
//!   counts are always complete.

use std::collections::BTreeMap;
use std::fs;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use checker::history::{read_jsonl, HistoryError, Op};
use checker::Validity;
use serde_json::Value;

use crate::faults::{fault_windows, FaultWindow};
use crate::html::Html;
use crate::junit::junit_xml;
use crate::linear_svg::{core_svg, window_svg, Explanation};
use crate::logs::{excerpt_text, Alignment, NodeLog};
use crate::markup::seconds;
use crate::ops::{client_ops, end_ns, ClientOp, OpIndex};
use crate::plots::{write_plots, PlotError, PlotFiles, PlotInput};
use crate::set_table::{
    is_set_kind, row as set_row, sources as set_sources, table_html as set_table_html, SetRow,
};
use crate::stats::stats;
use crate::store::{RunDir, StoreError};
use crate::summary::{Anomaly, Results, NOT_LINEARIZABLE};
use crate::timeline::{page_name, write_timeline, OPS_PER_PAGE};
use crate::txn_svg::{
    cycle_svg, edges_of, is_cycle_kind, table_html as txn_table_html, Txn, CYCLES_DRAWN,
};

/// How many anomalies of one kind the report writes out.
pub const ANOMALIES_SHOWN: usize = 25;
/// How many log lines of one node one excerpt shows (the first and last halves).
const LOG_LINES_PER_NODE: usize = 60;
/// How many anomalies get node-log excerpts (the first of each kind).
const EXCERPTED_ANOMALIES: usize = 6;
/// How many explanations of lost or stale elements follow their table.
const EXPLAINED_SET_ANOMALIES: usize = 10;

/// The report could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The run directory or one of its JSON files is missing or malformed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// `history.jsonl` is missing or malformed.
    #[error(transparent)]
    History(#[from] HistoryError),
    /// A plot could not be drawn.
    #[error(transparent)]
    Plot(#[from] PlotError),
    /// A file could not be written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
}

/// The files [`write_report`] wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReportFiles {
    /// `report.html`.
    pub report_html: PathBuf,
    /// `timeline.html` and its further pages, first page first.
    pub timeline_pages: Vec<PathBuf>,
    /// `junit.xml`.
    pub junit_xml: PathBuf,
    /// The plots, PNG and SVG each.
    pub plots: Vec<PlotFiles>,
}

/// Everything the report is made from.
struct Run {
    dir: RunDir,
    history: Vec<Op>,
    results: Results,
    test: Value,
    ops: Vec<ClientOp>,
    windows: Vec<FaultWindow>,
}

/// Writes the report of the run in `run_dir` (see the module docs).
pub fn write_report(run_dir: &Path) -> Result<ReportFiles, ReportError> {
    let run = load(run_dir)?;
    let path = run.dir.path().to_path_buf();
    let io = |p: &Path| {
        let p = p.to_path_buf();
        move |source| ReportError::Io { path: p, source }
    };
    let input = PlotInput {
        ops: &run.ops,
        windows: &run.windows,
        anomalies: &run.results.anomalies,
        end_ns: end_ns(&run.history),
    };
    let plots = write_plots(&path, &input)?;
    let title = format!("{} {}", run.dir.test_name(), run.dir.timestamp());
    let timeline_pages = write_timeline(&path, &title, &run.ops, &run.windows)
        .map_err(io(&path.join("timeline.html")))?;
    let junit_path = path.join("junit.xml");
    fs::write(&junit_path, junit_xml(run.dir.test_name(), &run.results))
        .map_err(io(&junit_path))?;
    let report_path = path.join("report.html");
    let html = report_html(&run, &plots)?;
    fs::write(&report_path, html).map_err(io(&report_path))?;
    Ok(ReportFiles {
        report_html: report_path,
        timeline_pages,
        junit_xml: junit_path,
        plots,
    })
}

fn load(run_dir: &Path) -> Result<Run, ReportError> {
    let dir = RunDir::open(run_dir)?;
    let history_path = dir.history_path();
    let file = fs::File::open(&history_path).map_err(|source| StoreError::Io {
        path: history_path.clone(),
        source,
    })?;
    let history = read_jsonl(BufReader::new(file), &history_path)?;
    let results = if dir.results_json_path().exists() {
        dir.read_results()?
    } else {
        Results::compose(BTreeMap::new(), Vec::new(), stats(&history))
    };
    let test = if dir.test_json_path().exists() {
        dir.read_test_json()?
    } else {
        Value::Null
    };
    let ops = client_ops(&history);
    let windows = fault_windows(&history);
    Ok(Run {
        dir,
        history,
        results,
        test,
        ops,
        windows,
    })
}

fn verdict_word(v: Validity) -> &'static str {
    match v {
        Validity::Valid => "valid",
        Validity::Invalid => "invalid",
        Validity::Unknown => "unknown",
    }
}

fn report_html(run: &Run, plots: &[PlotFiles]) -> Result<String, ReportError> {
    let mut html = Html::with_capacity(1 << 20);
    let title = format!("{} — {}", run.dir.test_name(), run.dir.timestamp());
    html.tags("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n")
        .element("title", &title)
        .tags("\n<style>")
        .tags(CSS)
        .tags("</style></head><body>\n");
    banner(&mut html, run, &title);
    summary(&mut html, run);
    parameters(&mut html, run);
    checkers(&mut html, run);
    faults(&mut html, run);
    plots_section(&mut html, plots)?;
    anomalies(&mut html, run);
    log_excerpts(&mut html, run);
    raw_files(&mut html, run);
    html.tags("</body></html>\n");
    Ok(html.into_string())
}

fn banner(html: &mut Html, run: &Run, title: &str) {
    let r = &run.results;
    let word = verdict_word(r.valid);
    let counts: Vec<String> = r
        .anomaly_counts()
        .iter()
        .map(|(k, n)| format!("{n} {k}"))
        .collect();
    let found = if counts.is_empty() {
        "no anomalies".to_string()
    } else {
        counts.join(", ")
    };
    html.open("header", &[("class", &format_args!("banner {word}"))])
        .open("div", &[("class", &"verdict")])
        .text(word.to_uppercase())
        .tags("</div><div>")
        .element("b", title)
        .tags("<br>")
        .text(&found)
        .text(format_args!(
            " · {} ops ({} ok, {} fail, {} info) over {:.1} s · {} faults",
            r.stats.ops.total(),
            r.stats.ops.ok,
            r.stats.ops.fail,
            r.stats.ops.info,
            r.stats.duration_s,
            run.windows.len()
        ))
        .tags("</div></header>\n");
}

/// The fault windows in force at `time`, as labels.
fn faults_at(run: &Run, time: u64) -> Vec<&str> {
    run.windows
        .iter()
        .filter(|w| w.contains(time))
        .map(|w| w.label.as_str())
        .collect()
}

fn summary(html: &mut Html, run: &Run) {
    let counts = run.results.anomaly_counts();
    if counts.is_empty() {
        return;
    }
    html.tags("<section><h2>What broke</h2><ul>\n");
    for (kind, count) in &counts {
        let listed: Vec<_> = run
            .results
            .anomalies
            .iter()
            .filter(|a| &a.kind == kind)
            .collect();
        let times: Vec<u64> = listed.iter().filter_map(|a| a.time).collect();
        let mut during: BTreeMap<String, usize> = BTreeMap::new();
        let mut outside = 0;
        for &t in &times {
            let labels = faults_at(run, t);
            if labels.is_empty() {
                outside += 1;
            }
            for label in labels {
                *during.entry(label.to_string()).or_default() += 1;
            }
        }
        html.tags("<li>")
            .open("a", &[("href", &format_args!("#kind-{kind}"))])
            .element("b", kind)
            .tags("</a> × ")
            .text(count);
        if let (Some(first), Some(last)) = (times.iter().min(), times.iter().max()) {
            html.text(format_args!(
                ", {} listed, from {} to {}",
                listed.len(),
                seconds(*first),
                seconds(*last)
            ));
        }
        for (label, n) in &during {
            html.text(format_args!("; {n} during "))
                .open("span", &[("class", &"fault")])
                .text(label)
                .close("span");
        }
        if outside > 0 {
            html.text(format_args!("; {outside} outside any fault window"));
        }
        html.tags("</li>\n");
    }
    html.tags("</ul></section>\n");
}

fn parameters(html: &mut Html, run: &Run) {
    html.tags("<section><h2>Test</h2>\n");
    let test_json = run.dir.test_json_path();
    let seed = run
        .results
        .seed
        .or_else(|| run.test.get("seed").and_then(Value::as_u64));
    if let Some(seed) = seed {
        html.tags("<p>seed ").element("b", seed).tags("</p>");
    }
    html.tags("<p>Rerun it exactly:</p><pre class=\"cmd\">faultline run --test ")
        .text(test_json.display())
        .tags("</pre>\n");
    if let Value::Object(map) = &run.test {
        html.tags("<table class=\"params\">");
        for (k, v) in map {
            let text = match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            html.tags("<tr>")
                .element("th", k)
                .element("td", &text)
                .tags("</tr>");
        }
        html.tags("</table>\n");
    } else {
        html.tags("<p>(no test.json in the run directory)</p>\n");
    }
    html.tags("</section>\n");
}

fn checkers(html: &mut Html, run: &Run) {
    html.tags("<section><h2>Checkers</h2><table><tr><th>checker</th><th>verdict</th><th>anomalies</th><th>details</th></tr>\n");
    if run.results.checkers.is_empty() {
        html.tags("<tr><td colspan=\"4\">no checker ran (no results.json)</td></tr>\n");
    }
    for (name, checker) in &run.results.checkers {
        let word = verdict_word(checker.valid);
        let counts: Vec<String> = checker
            .anomalies
            .iter()
            .map(|(k, n)| format!("{n} {k}"))
            .collect();
        let mut details = serde_json::to_string_pretty(&checker.details).unwrap_or_default();
        if details.len() > 4_000 {
            let cut = (0..=4_000)
                .rev()
                .find(|&i| details.is_char_boundary(i))
                .unwrap_or(0);
            details.truncate(cut);
            details.push_str("\n… (cut; the whole of it is in results.json)");
        }
        html.tags("<tr>")
            .element("td", name)
            .open("td", &[("class", &word)])
            .text(word)
            .close("td")
            .element("td", counts.join(", "))
            .tags("<td><details><summary>details</summary><pre>")
            .text(&details)
            .tags("</pre></details></td></tr>\n");
    }
    html.tags("</table></section>\n");
}

fn faults(html: &mut Html, run: &Run) {
    html.tags("<section><h2>Faults</h2>\n");
    if run.windows.is_empty() {
        html.tags("<p>No fault was injected.</p></section>\n");
        return;
    }
    html.tags("<table><tr><th>fault</th><th>from</th><th>to</th><th>lasted</th><th>history index</th></tr>\n");
    for w in &run.windows {
        let (to, lasted) = match w.end_ns {
            Some(end) => (seconds(end), seconds(end.saturating_sub(w.start_ns))),
            None => ("end of test".to_string(), String::new()),
        };
        html.tags("<tr>")
            .open("td", &[("class", &"fault")])
            .text(&w.label)
            .close("td")
            .element("td", seconds(w.start_ns))
            .element("td", &to)
            .element("td", &lasted)
            .element("td", w.index)
            .tags("</tr>\n");
    }
    html.tags("</table></section>\n");
}

fn plots_section(html: &mut Html, plots: &[PlotFiles]) -> Result<(), ReportError> {
    html.tags(
        "<section><h2>Performance</h2><p>Shaded: fault windows. Red ▲ and lines: anomalies.</p>\n",
    );
    for plot in plots {
        let png = fs::read(&plot.png).map_err(|source| ReportError::Io {
            path: plot.png.clone(),
            source,
        })?;
        let name = plot.plot.name();
        let png = base64::engine::general_purpose::STANDARD.encode(png);
        html.tags("<figure>")
            .open(
                "img",
                &[
                    ("alt", &name),
                    ("src", &format_args!("data:image/png;base64,{png}")),
                ],
            )
            .tags("<figcaption>")
            .text(name)
            .tags(" (")
            .open("a", &[("href", &format_args!("{name}.svg"))])
            .tags("SVG</a>, ")
            .open("a", &[("href", &format_args!("{name}.png"))])
            .tags("PNG</a>)</figcaption></figure>\n");
    }
    html.tags("</section>\n");
    Ok(())
}

/// A link to the timeline page that shows history index `index`.
fn op_link(run: &Run, index: u64) -> Html {
    let mut link = Html::new();
    link.open("a", &[("href", &op_page(run, index))])
        .text(index)
        .close("a");
    link
}

/// The timeline page that shows history index `index`.
fn op_page(run: &Run, index: u64) -> String {
    let at = run.ops.partition_point(|op| op.index < index);
    let at = match run.ops.get(at) {
        Some(op) if op.index == index => at,
        // A completion index: the op it completes started before it.
        _ => at.saturating_sub(1),
    };
    page_name(at / OPS_PER_PAGE + 1)
}

fn anomalies(html: &mut Html, run: &Run) {
    html.tags("<section><h2>Anomalies</h2>\n");
    if run.results.anomalies.is_empty() {
        html.tags("<p>None found.</p></section>\n");
        return;
    }
    let mut by_kind: BTreeMap<&str, Vec<&Anomaly>> = BTreeMap::new();
    for a in &run.results.anomalies {
        by_kind.entry(a.kind.as_str()).or_default().push(a);
    }
    let counts = run.results.anomaly_counts();
    let index = OpIndex::new(&run.ops);
    let mut cycles_drawn = 0;
    for (kind, list) in by_kind {
        let total = counts
            .get(kind)
            .copied()
            .unwrap_or(list.len())
            .max(list.len());
        html.open("h3", &[("id", &format_args!("kind-{kind}"))])
            .text(format_args!("{kind} ({total})"))
            .tags("</h3>\n");
        let txns_of = |a: &Anomaly| -> Vec<Txn> {
            a.ops
                .iter()
                .filter_map(|&id| Txn::find(&index, id))
                .collect()
        };
        if is_set_kind(kind) {
            set_anomalies(html, run, (kind, &list, total), &index);
            continue;
        }
        if is_cycle_kind(kind) {
            for a in list.iter().take(ANOMALIES_SHOWN) {
                let details = run.results.checkers.get(&a.checker).map(|c| &c.details);
                let edges = edges_of(a, details);
                let figure = (cycles_drawn < CYCLES_DRAWN && !edges.is_empty()).then(|| {
                    cycles_drawn += 1;
                    let mut figure = Html::new();
                    figure
                        .tags("<div class=\"svg\">")
                        .trusted(&cycle_svg(&txns_of(a), &a.ops, &edges))
                        .tags("</div>");
                    figure
                });
                anomaly_div(html, run, a, figure.as_ref());
            }
        } else if list.iter().all(|a| !txns_of(a).is_empty()) {
            let rows: Vec<(&Anomaly, Vec<Txn>)> = list
                .iter()
                .take(ANOMALIES_SHOWN)
                .map(|a| (*a, txns_of(a)))
                .collect();
            html.append(&txn_table_html(&rows, &|i| op_link(run, i)));
        } else {
            for a in list.iter().take(ANOMALIES_SHOWN) {
                anomaly_div(html, run, a, None);
            }
        }
        if list.len() > ANOMALIES_SHOWN || total > ANOMALIES_SHOWN {
            html.tags("<p>")
                .text(format_args!(
                    "… and {} more (all listed ones are in results.json)",
                    total - ANOMALIES_SHOWN.min(total)
                ))
                .tags("</p>\n");
        }
    }
    html.tags("</section>\n");
}

/// One anomaly: what, when, during which fault, its ops, `figure` (a
/// drawing, if any) and the explanation.
fn anomaly_div(html: &mut Html, run: &Run, a: &Anomaly, figure: Option<&Html>) {
    html.tags("<div class=\"anomaly\">");
    let time = a.time.map(seconds).unwrap_or_else(|| "time unknown".into());
    let during = a.time.map(|t| faults_at(run, t)).unwrap_or_default();
    html.tags("<p class=\"meta\">")
        .element("b", &a.kind)
        .text(format_args!(" at {time} · "));
    if during.is_empty() {
        html.tags("outside any fault window");
    } else {
        html.tags("during ")
            .open("span", &[("class", &"fault")])
            .text(during.join(" + "))
            .close("span");
    }
    if let Some(key) = a.key.as_deref() {
        html.text(format_args!(" · key {key}"));
    }
    html.text(format_args!(" · checker {} · ops ", a.checker));
    for (n, &i) in a.ops.iter().enumerate() {
        if n > 0 {
            html.tags(", ");
        }
        html.append(&op_link(run, i));
    }
    html.tags("</p>");
    if let Some(figure) = figure {
        html.append(figure);
    }
    html.element("p", &a.explanation);
    if a.kind == NOT_LINEARIZABLE {
        let details = run.results.checkers.get(&a.checker).map(|c| &c.details);
        if let Some(explanation) =
            details.and_then(|d| Explanation::from_details(d, a.key.as_deref()))
        {
            if let Some(core) = core_svg(&explanation, &run.ops, a.key.as_deref()) {
                html.tags("<div class=\"svg\">")
                    .trusted(&core)
                    .tags("</div>");
            }
            html.tags("<div class=\"svg\">")
                .trusted(&window_svg(&explanation, &run.ops, a.key.as_deref()))
                .tags("</div>");
        }
    }
    html.tags("</div>\n");
}

/// Lost or stale elements: the table (complete up to its cap), then the
/// checker's explanations of the first few.
fn set_anomalies(
    html: &mut Html,
    run: &Run,
    (kind, listed, total): (&str, &[&Anomaly], usize),
    index: &OpIndex,
) {
    let stored: Vec<&Anomaly> = run
        .results
        .checkers
        .values()
        .flat_map(|c| c.rows_of(kind))
        .collect();
    let rows: Vec<SetRow> = set_sources(listed, total, &stored)
        .into_iter()
        .map(|(key, element, ops)| set_row(kind, key, element, ops, index))
        .collect();
    html.append(&set_table_html(&rows, total, &run.windows, &|i| {
        op_page(run, i)
    }));
    let shown = listed.len().min(EXPLAINED_SET_ANOMALIES);
    html.tags("<details><summary>the checker's explanation of the first ")
        .text(shown)
        .tags("</summary>");
    for a in listed.iter().take(shown) {
        anomaly_div(html, run, a, None);
    }
    html.tags("</details>\n");
}

fn node_logs(run: &Run) -> Vec<(String, String)> {
    let Ok(entries) = fs::read_dir(run.dir.nodes_dir()) else {
        return Vec::new();
    };
    let mut logs: Vec<(String, String)> = entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let node = name.strip_suffix(".log")?.to_string();
            Some((node, fs::read_to_string(e.path()).ok()?))
        })
        .collect();
    logs.sort();
    logs
}

/// The node logs around the first anomaly of each kind (at most
/// [`EXCERPTED_ANOMALIES`]), aligned as [`crate::logs`] says.
fn log_excerpts(html: &mut Html, run: &Run) {
    let mut chosen: Vec<&Anomaly> = Vec::new();
    for a in &run.results.anomalies {
        if chosen.len() < EXCERPTED_ANOMALIES && !chosen.iter().any(|c| c.kind == a.kind) {
            chosen.push(a);
        }
    }
    let alignment = Alignment::of(run.results.start_unix_ns, run.dir.timestamp());
    let (Some(alignment), false) = (alignment, chosen.is_empty()) else {
        return;
    };
    let logs: Vec<NodeLog> = node_logs(run)
        .iter()
        .map(|(node, text)| NodeLog::parse(node, text))
        .collect();
    html.tags("<section><h2>Node logs around the anomalies</h2>\n");
    html.tags(if alignment.exact {
        "<p>Each line is labelled with its time in the history (seconds since the test started), from the run's recorded start: exact to the log's resolution. Shown: every line from 1 s before the anomaly's first op to 1 s after its last.</p>\n"
    } else {
        "<p>This run did not record its start, so log times are matched to the history by the run directory's name and are approximate (to a fraction of a second). Shown: lines within 1.5 s of the anomaly's time.</p>\n"
    });
    for a in chosen {
        let Some((from, to)) = alignment.window(a, &run.history) else {
            continue;
        };
        html.tags("<h3>")
            .text(&a.kind)
            .text(format_args!(
                " at {} (log window {} to {})",
                a.time.map(seconds).unwrap_or_else(|| "?".into()),
                signed_seconds(from),
                signed_seconds(to)
            ))
            .tags("</h3>\n");
        let mut any = false;
        for log in &logs {
            let lines = log.excerpt(&alignment, from, to);
            if lines.is_empty() {
                continue;
            }
            any = true;
            html.tags("<details open><summary>")
                .text(format_args!("{} ({} lines; ", log.node, lines.len()))
                .open("a", &[("href", &format_args!("nodes/{}.log", log.node))])
                .tags("whole log</a>)</summary><pre class=\"log\">")
                .text(excerpt_text(&lines, LOG_LINES_PER_NODE))
                .tags("</pre></details>\n");
        }
        if !any {
            html.tags("<p>No node logged anything in this window.</p>\n");
        }
    }
    html.tags("</section>\n");
}

/// A history time that may be negative, as seconds: `-0.500 s`.
fn signed_seconds(ns: i64) -> String {
    if ns < 0 {
        format!("-{}", seconds(ns.unsigned_abs()))
    } else {
        seconds(ns as u64)
    }
}

fn raw_files(html: &mut Html, run: &Run) {
    html.tags("<section><h2>Files</h2><ul>");
    let mut names = vec![
        "history.jsonl",
        "results.json",
        "test.json",
        "junit.xml",
        "timeline.html",
    ]
    .into_iter()
    .map(String::from)
    .collect::<Vec<_>>();
    names.extend(
        node_logs(run)
            .into_iter()
            .map(|(node, _)| format!("nodes/{node}.log")),
    );
    for name in names {
        html.tags("<li>")
            .open("a", &[("href", &name)])
            .text(&name)
            .tags("</a></li>");
    }
    html.tags("</ul></section>\n");
}

const CSS: &str = "body{font:14px/1.45 'DejaVu Sans',Verdana,sans-serif;margin:0 auto;max-width:1240px;padding:0 16px 40px;color:#222}\
h2{border-bottom:1px solid #ccc;padding-bottom:4px;margin-top:28px}h3{margin-bottom:6px}\
.banner{display:flex;gap:18px;align-items:center;padding:14px 18px;margin:16px 0;border-radius:6px;color:#fff}\
.banner .verdict{font-size:30px;font-weight:bold}.banner.valid{background:#2a8a2a}.banner.invalid{background:#c00000}\
.banner.unknown{background:#b07800}td.valid{color:#2a8a2a;font-weight:bold}td.invalid{color:#c00000;font-weight:bold}\
td.unknown{color:#b07800;font-weight:bold}table{border-collapse:collapse}th,td{border:1px solid #ddd;padding:3px 8px;text-align:left;vertical-align:top}\
.params th{background:#f4f4f4}pre{background:#f6f6f6;padding:8px;overflow-x:auto;font-size:12px}\
pre.cmd{background:#222;color:#eee}.fault{background:#f6e7b2;padding:0 3px;border-radius:3px}\
.anomaly{border-left:4px solid #c00000;padding:2px 10px;margin:10px 0}.anomaly .meta{color:#555;margin:0}\
figure{margin:10px 0}img{max-width:100%;border:1px solid #eee}.svg{overflow-x:auto}\
table.set td{white-space:nowrap}table.set td.element{font-weight:bold}table.txns td.txn{font-family:'DejaVu Sans Mono',monospace;font-size:12px}\
.anomaly svg.cycle{margin:6px 0}";
