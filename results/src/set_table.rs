//! The lost and stale elements of a set run, one row each: the element, when
//! its add was invoked and acknowledged, the node that acknowledged it, the
//! fault windows in force at the acknowledgement, and the reads that show the
//! anomaly (the first read that missed it; the read that last saw it, or saw
//! it again).
//!
//! Decisions:
//! - `results.json` lists a sample of each kind (the set checker lists 32
//!   per kind and key). When the counts say there are more, the set checker
//!   stored the rows of its lost and stale elements with its result (up to
//!   [`ROWS_SHOWN`] per kind and key: `checkers.set.rows`), so the table is
//!   complete up to that cap; the count of the rest is printed below it. The
//!   report never runs a checker; a `results.json` older than those rows
//!   shows its sample.
//! - A row is built from the anomaly's ops alone (history indices): the `add`
//!   among them is the element's add, and among its `ok` reads the earliest
//!   invoked one whose value lacks the element is "the read that missed it",
//!   the latest one that lists it "seen" (last seen, for a lost element; seen
//!   again, for a stale one). This is how the set checker chooses the ops it
//!   lists, so old `results.json` files without `element` work too.

use checker::history::OpType;
use checker::set::{LOST_WRITE, ROWS_TABULATED, STALE_READ};
use serde_json::Value;

use crate::faults::FaultWindow;
use crate::html::Html;
use crate::markup::seconds;
use crate::ops::{compact, ClientOp, OpIndex};
use crate::summary::Anomaly;

/// At most this many rows per kind are shown: as many as the set checker
/// stores per kind and key.
pub const ROWS_SHOWN: usize = ROWS_TABULATED;

/// Whether the report draws `kind` as a set table.
pub fn is_set_kind(kind: &str) -> bool {
    kind == LOST_WRITE || kind == STALE_READ
}

/// One client op as a table cell needs it.
#[derive(Clone, Debug, PartialEq)]
pub struct OpAt {
    /// History index of the invocation.
    pub index: u64,
    /// When it was invoked, ns since the test started.
    pub invoke_ns: u64,
    /// When it completed, if it did.
    pub complete_ns: Option<u64>,
    /// Its outcome.
    pub outcome: OpType,
    /// The node that answered.
    pub node: Option<String>,
}

/// One lost or stale element.
#[derive(Clone, Debug, PartialEq)]
pub struct SetRow {
    /// `lost-write` or `stale-read`.
    pub kind: String,
    /// The set's key, for histories over keys.
    pub key: Option<String>,
    /// The element.
    pub element: Value,
    /// Its add (the acknowledged one when there are several).
    pub add: Option<OpAt>,
    /// The earliest read among the anomaly's ops that did not list it.
    pub missed_by: Option<OpAt>,
    /// The latest read among the anomaly's ops that listed it.
    pub seen: Option<OpAt>,
    /// The anomaly's ops (history indices).
    pub ops: Vec<u64>,
}

impl SetRow {
    /// When the element was acknowledged (or its add invoked, if it never was).
    pub fn ack_ns(&self) -> Option<u64> {
        self.add
            .as_ref()
            .map(|a| a.complete_ns.unwrap_or(a.invoke_ns))
    }
}

/// The anomalies to tabulate for `kind`: the ones `results.json` lists, or,
/// when `total` says there are more, the rows the checker stored for the
/// report (`stored`, see [`crate::CheckerResult::rows`]). Each is (key,
/// element if known, ops).
pub fn sources(
    listed: &[&Anomaly],
    total: usize,
    stored: &[&Anomaly],
) -> Vec<(Option<String>, Option<Value>, Vec<u64>)> {
    // Complete already, or a file older than the stored rows: the sample is all there is.
    let rows = if total > listed.len() && !stored.is_empty() {
        stored
    } else {
        listed
    };
    rows.iter()
        .map(|a| (a.key.clone(), a.element.clone(), a.ops.clone()))
        .collect()
}

fn op_at(op: &ClientOp) -> OpAt {
    OpAt {
        index: op.index,
        invoke_ns: op.invoke_ns,
        complete_ns: op.complete_ns,
        outcome: op.outcome,
        node: op.node.clone(),
    }
}

/// The row of one anomaly (see the module docs).
pub fn row(
    kind: &str,
    key: Option<String>,
    element: Option<Value>,
    ops: Vec<u64>,
    index: &OpIndex,
) -> SetRow {
    let mut involved: Vec<&ClientOp> = ops.iter().filter_map(|&i| index.get(i)).collect();
    involved.sort_by_key(|op| op.index);
    involved.dedup_by_key(|op| op.index);
    let adds: Vec<&&ClientOp> = involved.iter().filter(|op| op.f == "add").collect();
    let add = adds
        .iter()
        .find(|op| op.outcome == OpType::Ok)
        .or(adds.first())
        .map(|op| op_at(op));
    let element = element
        .or_else(|| adds.first().map(|op| op.invoke_value.clone()))
        .unwrap_or(Value::Null);
    let lists = |op: &ClientOp| match &op.value {
        Value::Array(items) => items.contains(&element),
        _ => false,
    };
    let reads = involved
        .iter()
        .filter(|op| op.f == "read" && op.outcome == OpType::Ok);
    let missed_by = reads.clone().find(|op| !lists(op)).map(|op| op_at(op));
    let seen = reads.clone().rfind(|op| lists(op)).map(|op| op_at(op));
    SetRow {
        kind: kind.to_string(),
        key,
        element,
        add,
        missed_by,
        seen,
        ops,
    }
}

/// The fault windows in force at `time`; when none is, the next one if it
/// began within a second (an ack just before a partition is often its victim).
fn faults_at(windows: &[FaultWindow], time: u64) -> Html {
    let label = |html: &mut Html, w: &FaultWindow| {
        html.open("span", &[("class", &"fault")])
            .text(&w.label)
            .close("span");
    };
    let mut html = Html::new();
    for (n, w) in windows.iter().filter(|w| w.contains(time)).enumerate() {
        if n > 0 {
            html.tags(" ");
        }
        label(&mut html, w);
    }
    if !html.is_empty() {
        return html;
    }
    let next = windows
        .iter()
        .filter(|w| w.start_ns > time && w.start_ns - time <= 1_000_000_000)
        .min_by_key(|w| w.start_ns);
    html.tags("none");
    if let Some(w) = next {
        html.tags(" (");
        label(&mut html, w);
        html.text(format_args!(
            " began {:.1} ms later)",
            (w.start_ns - time) as f64 / 1e6
        ));
    }
    html
}

/// A link (to `page`) reading `12.345 s on n2`; `—` for no op.
fn op_cell(op: Option<&OpAt>, href: &dyn Fn(u64) -> String) -> Html {
    let mut html = Html::new();
    let Some(op) = op else {
        html.tags("—");
        return html;
    };
    html.open(
        "a",
        &[
            ("href", &href(op.index)),
            ("title", &format_args!("op {}", op.index)),
        ],
    )
    .text(seconds(op.invoke_ns));
    if let Some(node) = op.node.as_deref() {
        html.text(format_args!(" on {node}"));
    }
    html.close("a");
    html
}

/// `—`, or the fault windows at `time`.
fn faults_cell(windows: &[FaultWindow], time: Option<u64>) -> Html {
    match time {
        Some(t) => faults_at(windows, t),
        None => {
            let mut html = Html::new();
            html.tags("—");
            html
        }
    }
}

/// The table of `rows` (all of one kind); `total` is how many there are in
/// all; `href` gives the timeline page of a history index. Times are when
/// the ops began, except "acknowledged" (the add's completion); each links
/// to the op in the timeline.
pub fn table_html(
    rows: &[SetRow],
    total: usize,
    windows: &[FaultWindow],
    href: &dyn Fn(u64) -> String,
) -> Html {
    let mut html = Html::new();
    let Some(kind) = rows.first().map(|r| r.kind.as_str()) else {
        return html;
    };
    let stale = kind == STALE_READ;
    let with_keys = rows.iter().any(|r| r.key.is_some());
    html.tags("<table class=\"set\"><tr><th>#</th>");
    if with_keys {
        html.tags("<th>key</th>");
    }
    html.tags(
        "<th>element</th><th>add invoked</th><th>acknowledged</th><th>by node</th><th>faults at the ack</th>",
    );
    html.tags(if stale {
        "<th>stale read began</th><th>faults at the stale read</th><th>seen again (read began)</th></tr>\n"
    } else {
        "<th>last seen (read began)</th><th>first read without it began</th></tr>\n"
    });
    for (n, r) in rows.iter().take(ROWS_SHOWN).enumerate() {
        table_row(&mut html, (n + 1, r), (with_keys, stale), windows, href);
    }
    html.tags("</table>\n");
    let shown = rows.len().min(ROWS_SHOWN);
    if total > shown {
        html.tags("<p>")
            .text(format_args!(
                "… and {} more {kind} not shown (the counts are complete).",
                total - shown
            ))
            .tags("</p>\n");
    }
    html
}

/// Row `n` of the table: `r`.
fn table_row(
    html: &mut Html,
    (n, r): (usize, &SetRow),
    (with_keys, stale): (bool, bool),
    windows: &[FaultWindow],
    href: &dyn Fn(u64) -> String,
) {
    html.tags("<tr>").element("td", n);
    if with_keys {
        html.element("td", r.key.as_deref().unwrap_or(""));
    }
    let (acked, node) = match &r.add {
        Some(add) => (
            match (add.outcome, add.complete_ns) {
                (OpType::Ok, Some(t)) => seconds(t),
                _ => "not acknowledged (indeterminate add)".to_string(),
            },
            add.node.clone().unwrap_or_else(|| "—".into()),
        ),
        None => ("—".into(), "—".into()),
    };
    let invoked = op_cell(
        r.add
            .as_ref()
            .map(|a| OpAt {
                node: None,
                ..a.clone()
            })
            .as_ref(),
        href,
    );
    html.open("td", &[("class", &"element")])
        .text(compact(&r.element))
        .close("td")
        .tags("<td>")
        .append(&invoked)
        .tags("</td>")
        .element("td", &acked)
        .element("td", &node)
        .tags("<td>")
        .append(&faults_cell(windows, r.ack_ns()))
        .tags("</td>");
    let cells = if stale {
        [
            op_cell(r.missed_by.as_ref(), href),
            faults_cell(windows, r.missed_by.as_ref().map(|op| op.invoke_ns)),
            op_cell(r.seen.as_ref(), href),
        ]
        .to_vec()
    } else {
        [
            op_cell(r.seen.as_ref(), href),
            op_cell(r.missed_by.as_ref(), href),
        ]
        .to_vec()
    };
    for cell in &cells {
        html.tags("<td>").append(cell).tags("</td>");
    }
    html.tags("</tr>\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::client_ops;
    use checker::history::Op;
    use serde_json::json;

    /// add 5 acknowledged by n2; a read missing it; a read with it.
    fn history() -> Vec<Op> {
        let add = Op::invoke(0, "add", json!(5));
        let miss = Op::invoke(1, "read", Value::Null);
        let hit = Op::invoke(2, "read", Value::Null);
        let mut acked = add.completed(OpType::Ok, json!(5));
        acked.node = Some("n2".into());
        let mut missed = miss.completed(OpType::Ok, json!([1, 2]));
        missed.node = Some("n3".into());
        let mut out = vec![
            add,
            acked,
            miss,
            missed,
            hit.clone(),
            hit.completed(OpType::Ok, json!([5])),
        ];
        for (i, op) in out.iter_mut().enumerate() {
            op.index = i as u64;
            op.time = Some(i as u64 * 1_000_000_000);
        }
        out
    }

    #[test]
    fn a_row_names_the_add_the_read_that_missed_and_the_one_that_saw() {
        let history = history();
        let ops = client_ops(&history);
        let index = OpIndex::new(&ops);
        // Without an element (an old results.json): taken from the add.
        let r = row(STALE_READ, None, None, vec![0, 1, 2, 3, 4, 5], &index);
        assert_eq!(r.element, json!(5));
        let add = r.add.as_ref().unwrap();
        assert_eq!((add.invoke_ns, add.complete_ns), (0, Some(1_000_000_000)));
        assert_eq!(add.node.as_deref(), Some("n2"));
        let missed = r.missed_by.as_ref().unwrap();
        assert_eq!((missed.index, missed.node.as_deref()), (2, Some("n3")));
        assert_eq!(r.seen.as_ref().unwrap().index, 4);
        assert_eq!(r.ack_ns(), Some(1_000_000_000));
        // A completion index finds its op too.
        assert_eq!(index.get(3).map(|op| op.index), Some(2));
    }

    #[test]
    fn an_ack_just_before_a_fault_names_the_fault_that_followed() {
        let window = |start_ns: u64| FaultWindow {
            fault: "partition".into(),
            label: "partition n1 | n2".into(),
            start_ns,
            end_ns: Some(start_ns + 1_000),
            index: 0,
        };
        let during = "<span class=\"fault\">partition n1 | n2</span>";
        assert_eq!(faults_at(&[window(100)], 100).as_str(), during);
        assert_eq!(
            faults_at(&[window(1_000_000)], 0).as_str(),
            format!("none ({during} began 1.0 ms later)")
        );
        assert_eq!(faults_at(&[window(2_000_000_000)], 0).as_str(), "none");
    }
}
