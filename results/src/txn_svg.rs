//! Transactional anomalies in the report: each dependency cycle drawn as a
//! small graph (an inline SVG), the other anomalies as table rows.
//!
//! A txn is named `T<index>` after the history index of its invocation, as
//! the checker names it, and labelled with its process, the node that
//! answered and its micro-ops as committed: `T12 p3 n1: append 0 4; r 1 [1 2]`.
//!
//! # Drawing
//! The txns are boxes stacked top to bottom in cycle order (following the
//! edges from the first one), so every label reads on one line however long.
//! An edge to the next box down, or the one just above, is a straight arrow
//! between them; any other edge (the one closing the cycle) is an arc on the
//! right. Edges are labelled `ww k`, `wr k`, `rw k` (with the key), `proc`
//! or `rt`, and coloured by kind. Arrowheads are drawn as polygons, not SVG
//! markers, so several drawings in one page share no ids.
//!
//! Old `results.json` files have no `edges` on their anomalies; the
//! checker's own details (`checkers.*.details.anomalies[]`, with the same
//! kind and txns) carry them, and [`edges_of`] falls back to those.

use std::fmt::Write as _;

use checker::history::OpType;
use serde_json::Value;

use crate::html::Html;
use crate::markup::escape;
use crate::ops::{ClientOp, OpIndex};
use crate::summary::{Anomaly, AnomalyEdge};

/// At most this many cycles are drawn in one report.
pub const CYCLES_DRAWN: usize = 20;
/// Labels longer than this many characters are cut.
const LABEL_CHARS: usize = 110;
/// A read's list is shown whole up to this many elements.
const LIST_SHOWN: usize = 6;

const BOX_H: f64 = 24.0;
/// The space between boxes, for an arrow and its label; less in long cycles.
const GAP: f64 = 46.0;
const GAP_LONG: f64 = 30.0;
const MARGIN: f64 = 12.0;
/// The advance of one character of 12 px DejaVu Sans Mono.
const CHAR_W: f64 = 7.3;

/// Whether `kind` is a dependency cycle (`G0`, `G1c`, `G-single`,
/// `G-nonadjacent`, `G2-item`,
/// with or without `-process` / `-realtime`).
pub fn is_cycle_kind(kind: &str) -> bool {
    let base = kind
        .strip_suffix("-process")
        .or_else(|| kind.strip_suffix("-realtime"))
        .unwrap_or(kind);
    matches!(
        base,
        "G0" | "G1c" | "G-single" | "G-nonadjacent" | "G2-item" | "G2"
    )
}

/// One txn, as the report shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct Txn {
    /// History index of its invocation.
    pub id: u64,
    /// Its process.
    pub process: u64,
    /// The node that answered.
    pub node: Option<String>,
    /// `ok`, `fail` or `info`.
    pub outcome: OpType,
    /// Its micro-ops in words: `append 0 4; r 1 [1 2]`.
    pub micro_ops: String,
}

impl Txn {
    /// The txn invoked at history index `id`, if it is a `txn` op.
    pub fn find(index: &OpIndex, id: u64) -> Option<Txn> {
        let op: &ClientOp = index.get(id).filter(|op| op.index == id)?;
        (op.f == "txn").then(|| Txn {
            id,
            process: op.process,
            node: op.node.clone(),
            outcome: op.outcome,
            micro_ops: micro_ops_text(&op.value, op.outcome == OpType::Ok),
        })
    }

    /// `T12 p3 n1: append 0 4; r 1 [1 2]`, with ` (info)` / ` (fail)` for a
    /// txn that did not commit, cut to a readable length.
    pub fn label(&self) -> String {
        let node = self
            .node
            .as_deref()
            .map(|n| format!(" {n}"))
            .unwrap_or_default();
        let outcome = match self.outcome {
            OpType::Ok => "",
            OpType::Fail => " (fail)",
            _ => " (info)",
        };
        let text = format!(
            "T{} p{}{node}{outcome}: {}",
            self.id, self.process, self.micro_ops
        );
        if text.chars().count() > LABEL_CHARS {
            let cut: String = text.chars().take(LABEL_CHARS - 1).collect();
            format!("{cut}…")
        } else {
            text
        }
    }
}

/// A txn's micro-ops in words. A read of a committed txn shows its list
/// (`null` is the empty list); one whose outcome is unknown shows `?`.
pub fn micro_ops_text(value: &Value, committed: bool) -> String {
    let Value::Array(micro_ops) = value else {
        return crate::ops::compact(value);
    };
    let words: Vec<String> = micro_ops
        .iter()
        .map(|m| {
            let parts = m.as_array().map(Vec::as_slice).unwrap_or_default();
            let f = parts.first().and_then(Value::as_str).unwrap_or("?");
            let key = parts.get(1).map_or_else(String::new, scalar);
            let v = parts.get(2).unwrap_or(&Value::Null);
            match f {
                "r" | "read" if !committed => format!("r {key} ?"),
                "r" | "read" => format!("r {key} {}", list_text(v)),
                "append" | "a" => format!("append {key} {}", scalar(v)),
                other => format!("{other} {key} {}", scalar(v)),
            }
        })
        .collect();
    words.join("; ")
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// `[1 2 3]`, or `[1 2 … 7 8 9]` past [`LIST_SHOWN`] elements.
fn list_text(v: &Value) -> String {
    let items: &[Value] = match v {
        Value::Array(items) => items,
        Value::Null => &[],
        other => return scalar(other),
    };
    let words: Vec<String> = if items.len() > LIST_SHOWN {
        let mut w: Vec<String> = items[..2].iter().map(scalar).collect();
        w.push("…".into());
        w.extend(items[items.len() - 3..].iter().map(scalar));
        w
    } else {
        items.iter().map(scalar).collect()
    };
    format!("[{}]", words.join(" "))
}

/// The dependencies of a cycle anomaly: its own `edges`, or for an older
/// `results.json` those of the same anomaly in the checker's `details`.
pub fn edges_of(anomaly: &Anomaly, details: Option<&Value>) -> Vec<AnomalyEdge> {
    if !anomaly.edges.is_empty() {
        return anomaly.edges.clone();
    }
    let Some(Value::Array(listed)) = details.and_then(|d| d.get("anomalies")) else {
        return Vec::new();
    };
    listed
        .iter()
        .find(|a| {
            a.get("kind").and_then(Value::as_str) == Some(anomaly.kind.as_str())
                && a.get("txns")
                    .and_then(|t| serde_json::from_value::<Vec<u64>>(t.clone()).ok())
                    .is_some_and(|t| t == anomaly.ops)
        })
        .and_then(|a| a.get("edges"))
        .and_then(|e| serde_json::from_value(e.clone()).ok())
        .unwrap_or_default()
}

/// An edge's label: `ww x`, `wr y`, `rw x`, `proc`, `rt`.
pub fn edge_label(edge: &AnomalyEdge) -> String {
    let kind = match edge.kind.as_str() {
        "process" => "proc",
        "realtime" => "rt",
        other => other,
    };
    match &edge.key {
        Some(key) => format!("{kind} {key}"),
        None => kind.to_string(),
    }
}

fn edge_colour(kind: &str) -> &'static str {
    match kind {
        "ww" => "#1f5fb4",
        "wr" => "#2a8a2a",
        "rw" => "#c00000",
        "process" => "#7a4fb0",
        _ => "#c06a00",
    }
}

/// The txns of a cycle in the order the drawing stacks them: along the
/// edges from the first one, then any others of `ids`.
fn stack_order(ids: &[u64], edges: &[AnomalyEdge]) -> Vec<u64> {
    let mut order: Vec<u64> = Vec::new();
    let chain = edges
        .first()
        .map(|e| e.from)
        .into_iter()
        .chain(edges.iter().map(|e| e.to))
        .chain(ids.iter().copied());
    for id in chain {
        if !order.contains(&id) {
            order.push(id);
        }
    }
    order
}

/// The SVG of one cycle: `txns` (as found in the history; a txn missing
/// from it is drawn by name only) and `edges` (see the module docs).
pub fn cycle_svg(txns: &[Txn], ids: &[u64], edges: &[AnomalyEdge]) -> String {
    let order = stack_order(ids, edges);
    let labels: Vec<String> = order
        .iter()
        .map(|id| {
            txns.iter()
                .find(|t| t.id == *id)
                .map_or_else(|| format!("T{id} (not in the history)"), Txn::label)
        })
        .collect();
    let widest = labels.iter().map(|l| l.chars().count()).max().unwrap_or(4);
    let box_w = (widest as f64 * CHAR_W + 16.0).max(120.0);
    let right = MARGIN + box_w;
    let gap = if order.len() > 8 { GAP_LONG } else { GAP };
    let top = |row: usize| MARGIN + row as f64 * (BOX_H + gap);
    let row_of = |id: u64| order.iter().position(|&o| o == id).unwrap_or(0);
    let mut body = String::new();
    let mut arcs = 0usize;
    let mut widest_arc = 0.0f64;
    for edge in edges {
        let (a, b) = (row_of(edge.from), row_of(edge.to));
        let colour = edge_colour(&edge.kind);
        let label = escape(&edge_label(edge));
        if b == a + 1 || a == b + 1 {
            // Straight, between neighbouring boxes: down on the left third,
            // up on the right third, so a pair of opposite edges never overlaps.
            let down = b > a;
            let x = MARGIN + box_w * if down { 0.3 } else { 0.6 };
            let (y1, y2) = if down {
                (top(a) + BOX_H, top(b))
            } else {
                (top(a), top(b) + BOX_H)
            };
            straight_edge(&mut body, x, (y1, y2), colour, &label);
        } else {
            let bulge = 34.0 + 26.0 * arcs as f64;
            arcs += 1;
            widest_arc = widest_arc.max(bulge);
            let (ya, yb) = (top(a) + BOX_H / 2.0, top(b) + BOX_H / 2.0);
            arc_edge(&mut body, right, bulge, (ya, yb), colour, &label);
        }
    }
    for (row, label) in labels.iter().enumerate() {
        let outcome = txns
            .iter()
            .find(|t| t.id == order[row])
            .map_or(OpType::Info, |t| t.outcome);
        txn_box(&mut body, top(row), box_w, outcome, label);
    }
    let width = right + widest_arc + 70.0 + MARGIN;
    let height = 2.0 * MARGIN + order.len() as f64 * BOX_H + (order.len().max(1) - 1) as f64 * gap;
    format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" class="cycle" width="{width:.0}" height="{height:.0}" viewBox="0 0 {width:.0} {height:.0}" font-family="DejaVu Sans Mono, monospace" font-size="12">{body}</svg>"#
    )
}

/// A straight edge at `x` from `y1` to `y2` (its arrowhead at `y2`),
/// labelled beside its middle.
fn straight_edge(body: &mut String, x: f64, (y1, y2): (f64, f64), colour: &str, label: &str) {
    let down = y2 > y1;
    let tip = if down { y2 - 8.0 } else { y2 + 8.0 };
    let _ = write!(
        body,
        r#"<line x1="{x:.1}" y1="{y1:.1}" x2="{x:.1}" y2="{tip:.1}" stroke="{colour}" stroke-width="1.6"/><polygon points="{x:.1},{y2:.1} {:.1},{tip:.1} {:.1},{tip:.1}" fill="{colour}"/><text x="{:.1}" y="{:.1}" fill="{colour}">{label}</text>"#,
        x - 4.5,
        x + 4.5,
        x + 7.0,
        (y1 + y2) / 2.0 + 4.0
    );
}

/// An edge bulging `bulge` to the right of the boxes' `right` side, from
/// `ya` to `yb` (its arrowhead at `yb`), labelled at its outermost point.
fn arc_edge(
    body: &mut String,
    right: f64,
    bulge: f64,
    (ya, yb): (f64, f64),
    colour: &str,
    label: &str,
) {
    let _ = write!(
        body,
        r#"<path d="M {right:.1} {ya:.1} C {:.1} {ya:.1}, {:.1} {yb:.1}, {:.1} {yb:.1}" fill="none" stroke="{colour}" stroke-width="1.6"/><polygon points="{right:.1},{yb:.1} {:.1},{:.1} {:.1},{:.1}" fill="{colour}"/><text x="{:.1}" y="{:.1}" fill="{colour}">{label}</text>"#,
        right + bulge,
        right + bulge,
        right + 8.0,
        right + 8.0,
        yb - 4.5,
        right + 8.0,
        yb + 4.5,
        right + bulge * 0.75 + 5.0,
        (ya + yb) / 2.0 + 4.0
    );
}

/// One txn's box at `top`, filled by its outcome (dashed when not ok).
fn txn_box(body: &mut String, top: f64, box_w: f64, outcome: OpType, label: &str) {
    let (fill, dash) = match outcome {
        OpType::Ok => ("#eef2fb", ""),
        OpType::Fail => ("#fbeaea", r#" stroke-dasharray="4 3""#),
        _ => ("#fbf6e4", r#" stroke-dasharray="4 3""#),
    };
    let _ = write!(
        body,
        r##"<rect x="{MARGIN}" y="{:.1}" width="{box_w:.1}" height="{BOX_H}" rx="4" fill="{fill}" stroke="#445"{dash}/><text x="{:.1}" y="{:.1}">{}</text>"##,
        top,
        MARGIN + 8.0,
        top + BOX_H / 2.0 + 4.0,
        escape(label)
    );
}

/// The rows of a table of non-cycle txn anomalies of one kind: each with its
/// txns (one line each), keys and explanation.
pub fn table_html(rows: &[(&Anomaly, Vec<Txn>)], link: &dyn Fn(u64) -> Html) -> Html {
    let mut html = Html::new();
    html.tags(
        "<table class=\"txns\"><tr><th>#</th><th>txns</th><th>key</th><th>explanation</th></tr>\n",
    );
    for (n, (anomaly, txns)) in rows.iter().enumerate() {
        html.tags("<tr>")
            .element("td", n + 1)
            .open("td", &[("class", &"txn")]);
        for (line, &id) in anomaly.ops.iter().enumerate() {
            if line > 0 {
                html.tags("<br>");
            }
            html.append(&link(id));
            if let Some(t) = txns.iter().find(|t| t.id == id) {
                html.tags(" ").text(t.label());
            }
        }
        html.close("td")
            .element("td", anomaly.key.as_deref().unwrap_or(""))
            .element("td", &anomaly.explanation)
            .tags("</tr>\n");
    }
    html.tags("</table>\n");
    html
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn edge(from: u64, to: u64, kind: &str, key: Option<&str>) -> AnomalyEdge {
        AnomalyEdge {
            from,
            to,
            kind: kind.into(),
            key: key.map(String::from),
        }
    }

    #[test]
    fn micro_ops_read_as_words_with_long_lists_cut() {
        let txn = json!([["append", "x", 4], ["r", "y", [1, 2]], ["r", "z", null]]);
        assert_eq!(micro_ops_text(&txn, true), "append x 4; r y [1 2]; r z []");
        assert_eq!(micro_ops_text(&txn, false), "append x 4; r y ?; r z ?");
        let long = json!([["r", "0", [1, 2, 3, 4, 5, 6, 7, 8]]]);
        assert_eq!(micro_ops_text(&long, true), "r 0 [1 2 … 6 7 8]");
    }

    #[test]
    fn cycle_kinds_are_told_from_the_rest() {
        for kind in ["G0", "G1c-process", "G-single-realtime", "G2-item"] {
            assert!(is_cycle_kind(kind), "{kind}");
        }
        for kind in [
            "G1a",
            "G1b",
            "lost-update",
            "incompatible-order",
            "internal",
        ] {
            assert!(!is_cycle_kind(kind), "{kind}");
        }
    }

    #[test]
    fn the_stack_follows_the_cycle_and_the_closing_edge_is_an_arc() {
        let edges = [
            edge(7, 3, "rw", Some("x")),
            edge(3, 9, "wr", Some("y")),
            edge(9, 7, "realtime", None),
        ];
        assert_eq!(stack_order(&[3, 7, 9], &edges), [7, 3, 9]);
        let svg = cycle_svg(&[], &[3, 7, 9], &edges);
        assert_eq!(svg.matches("<line ").count(), 2, "{svg}");
        assert_eq!(svg.matches("<path ").count(), 1, "{svg}");
        for label in ["rw x", "wr y", "rt", "T7 (not in the history)"] {
            assert!(svg.contains(label), "{label} missing: {svg}");
        }
    }
}
