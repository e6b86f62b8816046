//! The picture of a linearizability failure: the window of the history
//! around the op that cannot be placed, as an SVG.
//!
//! One row per process; each op is a bar from its invocation to its
//! completion, labelled with its function and values. Ops of the longest
//! linearizable prefix are green and numbered in linearization order; the
//! op that cannot be placed is red; the model states it was refused from are
//! written under the rows. Everything is text, so nothing needs hovering.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use checker::history::OpType;
use serde::Deserialize;
use serde_json::Value;

use crate::markup::escape;
use crate::ops::{compact, ClientOp};

/// The most ops drawn around the failing op.
const MAX_OPS: usize = 40;
const WIDTH: f64 = 1100.0;
const LEFT: f64 = 80.0;
const ROW: f64 = 36.0;
const TOP: f64 = 40.0;

/// One op of an explanation, as `results.json` holds it.
#[derive(Clone, Debug, Deserialize)]
pub struct ExplainedOp {
    /// History index of the invocation.
    pub index: u64,
    /// History index of the completion.
    #[serde(default)]
    pub complete_index: Option<u64>,
    /// The process.
    pub process: u64,
    /// The function.
    pub f: String,
    /// The value.
    #[serde(default)]
    pub value: Value,
}

/// A linearizability checker's explanation, read back from `results.json`
/// (`details.keys.<key>.explanation`, or `details.explanation`).
#[derive(Clone, Debug, Deserialize)]
pub struct Explanation {
    /// In words.
    pub message: String,
    /// The op that cannot be linearized.
    pub op: ExplainedOp,
    /// The last `ok` op to complete before it.
    #[serde(default)]
    pub last_ok: Option<ExplainedOp>,
    /// The longest linearizable prefix, in linearization order.
    #[serde(default)]
    pub prefix: Vec<ExplainedOp>,
    /// The model states the op was refused from.
    #[serde(default)]
    pub states: Vec<Value>,
    /// The key's core, when shrunk: the few ops that alone are not
    /// linearizable.
    #[serde(default)]
    pub core: Vec<ExplainedOp>,
}

impl Explanation {
    /// The explanation for `key` in a linearizability checker's `details`.
    pub fn from_details(details: &Value, key: Option<&str>) -> Option<Explanation> {
        let by_key = key.and_then(|k| details.get("keys")?.get(k)?.get("explanation"));
        let found = by_key.or_else(|| details.get("explanation"))?;
        serde_json::from_value(found.clone()).ok()
    }
}

/// The SVG of the window around `explanation`'s op, drawn from the client
/// ops of its key (`ops` may hold other keys; they are left out).
pub fn window_svg(explanation: &Explanation, ops: &[ClientOp], key: Option<&str>) -> String {
    let window = select(explanation, ops, key);
    let order: BTreeMap<u64, usize> = explanation
        .prefix
        .iter()
        .enumerate()
        .map(|(i, op)| (op.index, i + 1))
        .collect();
    let title = format!("{} ops around op {}", window.len(), explanation.op.index);
    draw(explanation, &window, &order, &title, notes(explanation))
}

/// The SVG of the key's core, when it was shrunk: only its ops, which
/// alone are not linearizable; `None` when there is no core.
pub fn core_svg(explanation: &Explanation, ops: &[ClientOp], key: Option<&str>) -> Option<String> {
    let indices: BTreeSet<u64> = explanation.core.iter().map(|op| op.index).collect();
    let window: Vec<&ClientOp> = ops
        .iter()
        .filter(|op| (key.is_none() || op.key.as_deref() == key) && indices.contains(&op.index))
        .collect();
    if window.is_empty() {
        return None;
    }
    let title = format!(
        "the core: {} ops that alone are not linearizable",
        window.len()
    );
    let notes = vec![(
        "#333",
        "every op left out of the core is a read, or a write whose value no op kept observes; \
         leaving such ops out cannot make a history non-linearizable, so the full one is not either"
            .to_string(),
    )];
    Some(draw(explanation, &window, &BTreeMap::new(), &title, notes))
}

/// One row per process of `window`'s ops, titled, with `notes` below.
fn draw(
    explanation: &Explanation,
    window: &[&ClientOp],
    order: &BTreeMap<u64, usize>,
    title: &str,
    notes: Vec<(&'static str, String)>,
) -> String {
    let t0 = window.iter().map(|op| op.invoke_ns).min().unwrap_or(0);
    let t1 = window
        .iter()
        .map(|op| op.complete_ns.unwrap_or(op.invoke_ns))
        .max()
        .unwrap_or(t0);
    let span = (t1.saturating_sub(t0)).max(1) as f64 * 1.08;
    let x = |t: u64| LEFT + (t.saturating_sub(t0)) as f64 / span * (WIDTH - LEFT - 10.0);
    let processes: BTreeSet<u64> = window.iter().map(|op| op.process).collect();
    let row_of: BTreeMap<u64, usize> = processes.iter().enumerate().map(|(i, p)| (*p, i)).collect();
    let rows_h = TOP + ROW * processes.len() as f64;
    let height = rows_h + 40.0 + 18.0 * notes.len() as f64;
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="DejaVu Sans, Verdana, sans-serif" font-size="12">"#
    );
    svg.push_str(r##"<rect width="100%" height="100%" fill="#fff"/>"##);
    let _ = writeln!(
        svg,
        r##"<text x="8" y="18" font-weight="bold">{} (time in ms from {:.3} s)</text>"##,
        escape(title),
        t0 as f64 / 1e9
    );
    time_axis(&mut svg, t0, span, rows_h, &x);
    process_labels(&mut svg, &row_of);
    let mut by_row: BTreeMap<usize, Vec<&ClientOp>> = BTreeMap::new();
    for op in window {
        by_row.entry(row_of[&op.process]).or_default().push(op);
    }
    for (row, row_ops) in by_row {
        let y = TOP + ROW * row as f64;
        for (i, op) in row_ops.iter().enumerate() {
            let next_x = row_ops.get(i + 1).map_or(WIDTH, |n| x(n.invoke_ns));
            bar(
                &mut svg,
                op,
                explanation,
                order,
                (x(op.invoke_ns), x(op.complete_ns.unwrap_or(t1)), next_x),
                y,
            );
        }
    }
    notes_and_legend(&mut svg, notes, rows_h + 22.0);
    svg.push_str("</svg>\n");
    svg
}

/// Six time ticks across the rows, labelled in ms from `t0`.
fn time_axis(svg: &mut String, t0: u64, span: f64, rows_h: f64, x: &dyn Fn(u64) -> f64) {
    for tick in 0..=5 {
        let t = t0 + ((span / 1.08) * f64::from(tick) / 5.0) as u64;
        let tx = x(t);
        let _ = writeln!(
            svg,
            r##"<line x1="{tx:.1}" y1="{TOP}" x2="{tx:.1}" y2="{rows_h}" stroke="#ddd"/><text x="{tx:.1}" y="{:.1}" fill="#666" text-anchor="middle">{:.2}</text>"##,
            TOP - 6.0,
            (t - t0) as f64 / 1e6
        );
    }
}

/// Each row's process, at the left.
fn process_labels(svg: &mut String, row_of: &BTreeMap<u64, usize>) {
    for (p, row) in row_of {
        let y = TOP + ROW * *row as f64;
        let _ = writeln!(
            svg,
            r##"<text x="8" y="{:.1}" fill="#333">process {p}</text>"##,
            y + 24.0
        );
    }
}

/// The notes under the rows, one a line from `y`, then the legend.
fn notes_and_legend(svg: &mut String, notes: Vec<(&'static str, String)>, mut y: f64) {
    for (colour, note) in notes {
        let _ = writeln!(
            svg,
            r##"<text x="8" y="{y:.1}" fill="{colour}">{}</text>"##,
            escape(&note)
        );
        y += 18.0;
    }
    let legend = "green #n = in the longest linearizable prefix, in order · red = cannot be placed · grey = other ops · dashed = info (may or may not have happened)";
    let _ = writeln!(
        svg,
        r##"<text x="8" y="{y:.1}" fill="#666">{legend}</text>"##
    );
}

/// The ops to draw: those of the key closest (in invocation order) to the
/// failing op, up to [`MAX_OPS`], and never past shortly after it.
fn select<'a>(
    explanation: &Explanation,
    ops: &'a [ClientOp],
    key: Option<&str>,
) -> Vec<&'a ClientOp> {
    let keyed: Vec<&ClientOp> = ops
        .iter()
        .filter(|op| key.is_none() || op.key.as_deref() == key)
        .collect();
    let at = keyed
        .iter()
        .position(|op| op.index == explanation.op.index)
        .unwrap_or(keyed.len().saturating_sub(1));
    let start = at.saturating_sub(MAX_OPS * 3 / 4);
    let end = (at + MAX_OPS / 4 + 1).min(keyed.len());
    keyed[start..end].to_vec()
}

fn bar(
    svg: &mut String,
    op: &ClientOp,
    explanation: &Explanation,
    order: &BTreeMap<u64, usize>,
    (x0, x1, next_x): (f64, f64, f64),
    y: f64,
) {
    let failing = op.index == explanation.op.index;
    let (fill, stroke) = if failing {
        ("#f4a6a6", "#c00000")
    } else if order.contains_key(&op.index) {
        ("#b7e1b0", "#2a8a2a")
    } else if op.outcome == OpType::Fail {
        ("#f2f2f2", "#bbb")
    } else {
        ("#dde3ea", "#889")
    };
    let dash = if op.outcome == OpType::Info {
        r#" stroke-dasharray="4 3""#
    } else {
        ""
    };
    let width = (x1 - x0).max(3.0);
    let stroke_w = if failing { 2.5 } else { 1.0 };
    let _ = writeln!(
        svg,
        r#"<rect x="{x0:.1}" y="{:.1}" width="{width:.1}" height="14" rx="2" fill="{fill}" stroke="{stroke}" stroke-width="{stroke_w}"{dash}><title>{}</title></rect>"#,
        y + 16.0,
        escape(&format!(
            "op {} process {} {} ({})",
            op.index,
            op.process,
            op.describe(),
            op.outcome
        ))
    );
    let mut text = op.describe();
    if op.outcome != OpType::Ok {
        text.push_str(&format!(" ({})", op.outcome));
    }
    if let Some(n) = order.get(&op.index) {
        text = format!("#{n} {text}");
    }
    if failing {
        text = format!("✗ {text}");
    }
    // Cut the label where the next op of the row starts (about 7 px a character).
    let room = (((next_x - x0) / 7.0) as usize).max(4);
    if text.chars().count() > room {
        text = text.chars().take(room - 1).collect::<String>() + "…";
    }
    let weight = if failing {
        r#" font-weight="bold""#
    } else {
        ""
    };
    let _ = writeln!(
        svg,
        r##"<text x="{:.1}" y="{:.1}" fill="{stroke}"{weight}>{}</text>"##,
        x0 + 1.0,
        y + 12.0,
        escape(&text)
    );
}

fn notes(explanation: &Explanation) -> Vec<(&'static str, String)> {
    let op = &explanation.op;
    let mut notes = vec![(
        "#c00000",
        format!(
            "✗ op {} (process {}): {} {} cannot be placed: {}",
            op.index,
            op.process,
            op.f,
            compact(&op.value),
            explanation.message
        ),
    )];
    let states: Vec<String> = explanation
        .states
        .iter()
        .map(|s| {
            let text = compact(s);
            if text.is_empty() {
                "null (nothing)".to_string()
            } else {
                text
            }
        })
        .collect();
    if !states.is_empty() {
        notes.push((
            "#c00000",
            format!(
                "model states it was refused from (it would have needed another): {}",
                states.join(", ")
            ),
        ));
    }
    notes.push((
        "#2a8a2a",
        format!(
            "longest linearizable prefix: {} ops",
            explanation.prefix.len()
        ),
    ));
    if let Some(last) = &explanation.last_ok {
        notes.push((
            "#333",
            format!(
                "last ok op to complete before it: op {} (process {}) {} {}",
                last.index,
                last.process,
                last.f,
                compact(&last.value)
            ),
        ));
    }
    notes
}
