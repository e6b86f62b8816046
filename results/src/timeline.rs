//! `timeline.html`: the ops of each process over time, like Jepsen's
//! timeline, in pages of [`OPS_PER_PAGE`] ops (`timeline.html` is the first
//! page, `timeline-2.html`, ... the others), so a 100k-op history stays a
//! set of small pages rather than one huge one.
//!
//! One column per process; time runs down in event order (each invocation
//! and completion is one step), so concurrent ops sit side by side. The
//! fault windows in force are drawn in a column of their own.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use checker::history::OpType;

use crate::faults::FaultWindow;
use crate::html::Html;
use crate::markup::seconds;
use crate::ops::ClientOp;

/// Ops per page.
pub const OPS_PER_PAGE: usize = 2_000;
const STEP_PX: usize = 14;
const COLUMN_PX: usize = 150;

/// The file name of page `page` (1-based).
pub fn page_name(page: usize) -> String {
    if page <= 1 {
        "timeline.html".to_string()
    } else {
        format!("timeline-{page}.html")
    }
}

/// Writes the timeline pages into `dir`; returns their paths, first page first.
pub fn write_timeline(
    dir: &Path,
    title: &str,
    ops: &[ClientOp],
    windows: &[FaultWindow],
) -> std::io::Result<Vec<PathBuf>> {
    let pages = ops.len().div_ceil(OPS_PER_PAGE).max(1);
    let mut paths = Vec::with_capacity(pages);
    for page in 1..=pages {
        let start = (page - 1) * OPS_PER_PAGE;
        let chunk = &ops[start.min(ops.len())..(start + OPS_PER_PAGE).min(ops.len())];
        let html = page_html(title, page, pages, chunk, windows);
        let path = dir.join(page_name(page));
        std::fs::write(&path, html)?;
        paths.push(path);
    }
    Ok(paths)
}

fn nav(page: usize, pages: usize) -> Html {
    let mut nav = Html::new();
    nav.tags("<nav><a href=\"report.html\">report</a> · page ");
    let shown: BTreeSet<usize> = [
        1,
        page.saturating_sub(2),
        page.saturating_sub(1),
        page,
        page + 1,
        page + 2,
        pages,
    ]
    .into_iter()
    .filter(|p| (1..=pages).contains(p))
    .collect();
    let mut last = 0;
    for p in shown {
        if p > last + 1 {
            nav.tags(" … ");
        }
        nav.tags(" ");
        if p == page {
            nav.element("b", p);
        } else {
            nav.open("a", &[("href", &page_name(p))]).text(p).close("a");
        }
        last = p;
    }
    nav.text(format_args!(" of {pages}")).tags("</nav>");
    nav
}

fn page_html(
    title: &str,
    page: usize,
    pages: usize,
    ops: &[ClientOp],
    windows: &[FaultWindow],
) -> String {
    let events = page_events(ops);
    let processes: BTreeSet<u64> = ops.iter().map(|op| op.process).collect();
    let column: BTreeMap<u64, usize> = processes
        .iter()
        .enumerate()
        .map(|(i, p)| (*p, i + 1))
        .collect();
    let height = (events.len() + 1) * STEP_PX;
    let mut html = Html::new();
    let nav = nav(page, pages);
    html.tags("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">")
        .element("title", format_args!("timeline {page}/{pages}: {title}"))
        .tags("\n<style>")
        .tags(CSS)
        .tags("</style></head><body>\n")
        .element("h1", format_args!("timeline: {title}"))
        .tags("\n")
        .append(&nav)
        .tags("\n");
    extent(&mut html, page, ops);
    html.open(
        "div",
        &[
            ("class", &"tl"),
            (
                "style",
                &format_args!(
                    "height:{height}px;width:{}px",
                    (processes.len() + 1) * COLUMN_PX + 10
                ),
            ),
        ],
    )
    .tags("<div class=\"head\" style=\"left:0\">faults</div>");
    for (p, c) in &column {
        html.open(
            "div",
            &[
                ("class", &"head"),
                ("style", &format_args!("left:{}px", c * COLUMN_PX)),
            ],
        )
        .text(format_args!("process {p}"))
        .close("div");
    }
    fault_divs(&mut html, &events, windows);
    op_divs(&mut html, &events, ops, &column);
    html.tags("</div>\n")
        .append(&nav)
        .tags("\n</body></html>\n");
    html.into_string()
}

/// Every event of the page's `ops` in history order: (history index, time).
fn page_events(ops: &[ClientOp]) -> Vec<(u64, u64)> {
    let mut events: Vec<(u64, u64)> = Vec::with_capacity(ops.len() * 2);
    for op in ops {
        events.push((op.index, op.invoke_ns));
        if let (Some(i), Some(t)) = (op.complete_index, op.complete_ns) {
            events.push((i, t));
        }
    }
    events.sort_unstable();
    events
}

/// Which ops of the history the page shows, and when they ran.
fn extent(html: &mut Html, page: usize, ops: &[ClientOp]) {
    if let (Some(first), Some(last)) = (ops.first(), ops.last()) {
        html.element(
            "p",
            format_args!(
                "ops {}–{} of the history (indices {}–{}), {} to {}",
                (page - 1) * OPS_PER_PAGE + 1,
                (page - 1) * OPS_PER_PAGE + ops.len(),
                first.index,
                last.index,
                seconds(first.invoke_ns),
                seconds(last.complete_ns.unwrap_or(last.invoke_ns))
            ),
        )
        .tags("\n");
    }
}

/// The fault windows that overlap the page's `events`, in the faults column.
fn fault_divs(html: &mut Html, events: &[(u64, u64)], windows: &[FaultWindow]) {
    let step_at_time = |t: u64| {
        events
            .iter()
            .position(|(_, et)| *et >= t)
            .unwrap_or(events.len())
    };
    let (page_t0, page_t1) = (
        events.first().map_or(0, |e| e.1),
        events.last().map_or(0, |e| e.1),
    );
    for w in windows
        .iter()
        .filter(|w| w.start_ns <= page_t1 && w.end_ns.is_none_or_le(page_t0))
    {
        let top = step_at_time(w.start_ns) * STEP_PX + 20;
        let bottom = w.end_ns.map_or(events.len(), step_at_time) * STEP_PX + 20;
        html.open(
            "div",
            &[
                ("class", &"op fault"),
                (
                    "style",
                    &format_args!(
                        "left:0;top:{top}px;height:{}px",
                        bottom.saturating_sub(top).max(STEP_PX)
                    ),
                ),
                (
                    "title",
                    &format_args!("{} from {}", w.label, seconds(w.start_ns)),
                ),
            ],
        )
        .text(&w.label)
        .close("div");
    }
}

/// Each op of the page in its process's column, from its invocation's step
/// to its completion's.
fn op_divs(
    html: &mut Html,
    events: &[(u64, u64)],
    ops: &[ClientOp],
    column: &BTreeMap<u64, usize>,
) {
    let step_of = |index: u64| events.partition_point(|(i, _)| *i < index);
    for op in ops {
        let top = step_of(op.index) * STEP_PX + 20;
        let bottom_step = op.complete_index.map_or(events.len(), step_of);
        let h = ((bottom_step + 1) * STEP_PX + 20).saturating_sub(top + 2);
        let class = match op.outcome {
            OpType::Ok => "ok",
            OpType::Fail => "fail",
            _ => "info",
        };
        let latency = op.latency_ns().map_or("never completed".to_string(), |ns| {
            format!("{:.3} ms", ns as f64 / 1e6)
        });
        let node = op
            .node
            .as_deref()
            .map(|n| format!(" node {n}"))
            .unwrap_or_default();
        let key = op
            .key
            .as_deref()
            .map(|k| format!("[{k}] "))
            .unwrap_or_default();
        let describe = op.describe();
        html.open(
            "div",
            &[
                ("class", &format_args!("op {class}")),
                (
                    "style",
                    &format_args!(
                        "left:{}px;top:{top}px;height:{h}px",
                        column[&op.process] * COLUMN_PX
                    ),
                ),
                (
                    "title",
                    &format_args!(
                        "op {} at {}: {key}{describe} → {class}, {latency}{node}",
                        op.index,
                        seconds(op.invoke_ns)
                    ),
                ),
            ],
        )
        .text(format_args!("{key}{describe}"))
        .close("div");
    }
}

/// `end.map_or(true, |e| e >= t)`, named for the window filter above.
trait OpenOrEndsAfter {
    fn is_none_or_le(&self, t: u64) -> bool;
}

impl OpenOrEndsAfter for Option<u64> {
    fn is_none_or_le(&self, t: u64) -> bool {
        match self {
            Some(end) => *end >= t,
            None => true,
        }
    }
}

const CSS: &str = "body{font:13px/1.3 'DejaVu Sans',Verdana,sans-serif;margin:16px;color:#222}\
h1{font-size:18px}nav{margin:8px 0}\
.tl{position:relative}.head{position:absolute;top:0;width:146px;font-weight:bold}\
.op{position:absolute;width:144px;overflow:hidden;white-space:nowrap;text-overflow:ellipsis;\
font-size:11px;padding:0 2px;box-sizing:border-box;border-radius:2px;min-height:12px}\
.ok{background:#cfe3f6;border:1px solid #1f77b4}.fail{background:#f8d3d3;border:1px solid #d62728}\
.info{background:#ffe2c2;border:1px dashed #ff7f0e}.fault{background:#f6e7b2;border:1px solid #c9a400}";
