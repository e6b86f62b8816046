//! Node-log excerpts around an anomaly, aligned to history time.
//!
//! Decisions:
//! - **Exact alignment**: a run records in `results.json` the wall-clock
//!   instant of its history's time 0 (`start_unix_ns`). A log line written at
//!   Unix time `u` then happened at history time `u - start_unix_ns`: both
//!   clocks are the machine's, so the only error is the log's own resolution
//!   (target-node writes microseconds). The excerpt of an anomaly is every
//!   line whose history time is in [first op − 1 s, last op + 1 s], the ops
//!   being the anomaly's (their invocation and completion times), per node.
//! - **Approximate alignment** (runs without `start_unix_ns`): the run
//!   directory's name, the moment it was made to the millisecond, stands in
//!   for time 0 (it is a little earlier: the nodes start in between), and the
//!   window is [`APPROXIMATE_WINDOW_NS`] either side of the anomaly's time.
//!   The report says which it used.
//! - A line without a time of its own (a wrapped message, a backtrace)
//!   belongs to the timed line before it, and is in an excerpt when that line
//!   is; lines before the first timed one are in none.
//! - Clock faults skew a node's clock for its replication logic only;
//!   target-node logs with the machine's clock, so alignment holds through
//!   them. (A database run under libfaketime would log skewed times.)

use std::fmt::Write as _;

use checker::history::Op;

use crate::summary::Anomaly;
use crate::walltime::{log_line_ns, run_dir_start_ns};

/// How far either side of an anomaly's ops an exact excerpt reaches.
pub const MARGIN_NS: i64 = 1_000_000_000;
/// How far either side of an anomaly's time an approximate excerpt reaches.
pub const APPROXIMATE_WINDOW_NS: i64 = 1_500_000_000;

/// How log times are mapped to history times.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Alignment {
    /// The Unix ns of history time 0.
    pub start_unix_ns: i64,
    /// Whether that is the recorded start (else the run directory's name).
    pub exact: bool,
}

impl Alignment {
    /// From the recorded start, else from the run directory's name
    /// (`timestamp`); `None` if neither is known.
    pub fn of(start_unix_ns: Option<u64>, timestamp: &str) -> Option<Alignment> {
        match start_unix_ns.and_then(|ns| i64::try_from(ns).ok()) {
            Some(start_unix_ns) => Some(Alignment {
                start_unix_ns,
                exact: true,
            }),
            None => run_dir_start_ns(timestamp).map(|start_unix_ns| Alignment {
                start_unix_ns,
                exact: false,
            }),
        }
    }

    /// The history-time window to excerpt for `anomaly` (closed, ns).
    pub fn window(&self, anomaly: &Anomaly, history: &[Op]) -> Option<(i64, i64)> {
        if !self.exact {
            let t = anomaly.time? as i64;
            return Some((t - APPROXIMATE_WINDOW_NS, t + APPROXIMATE_WINDOW_NS));
        }
        let times = anomaly.ops.iter().filter_map(|&i| time_of(history, i));
        let (first, last) =
            times
                .chain(anomaly.time)
                .fold(None, |span: Option<(u64, u64)>, t| match span {
                    None => Some((t, t)),
                    Some((a, b)) => Some((a.min(t), b.max(t))),
                })?;
        Some((first as i64 - MARGIN_NS, last as i64 + MARGIN_NS))
    }
}

/// The time of the op with history index `index`.
fn time_of(history: &[Op], index: u64) -> Option<u64> {
    match history.get(index as usize) {
        Some(op) if op.index == index => op.time,
        _ => {
            let at = history.partition_point(|op| op.index < index);
            history.get(at).filter(|op| op.index == index)?.time
        }
    }
}

/// A node's log with each line's Unix ns (a line without a time of its own
/// takes that of the timed line before it, flagged as a continuation).
pub struct NodeLog {
    /// The node.
    pub node: String,
    lines: Vec<LogLine>,
}

struct LogLine {
    unix_ns: Option<i64>,
    continuation: bool,
    text: String,
}

impl NodeLog {
    /// Parses `text`, the log of `node`.
    pub fn parse(node: &str, text: &str) -> NodeLog {
        let mut last = None;
        let lines = text
            .lines()
            .map(|line| {
                let own = log_line_ns(line);
                if own.is_some() {
                    last = own;
                }
                LogLine {
                    unix_ns: own.or(last),
                    continuation: own.is_none(),
                    text: line.to_string(),
                }
            })
            .collect();
        NodeLog {
            node: node.to_string(),
            lines,
        }
    }

    /// The lines whose history time, under `alignment`, lies in
    /// `[from_ns, to_ns]`: (history ns, whether a continuation, the line).
    pub fn excerpt(
        &self,
        alignment: &Alignment,
        from_ns: i64,
        to_ns: i64,
    ) -> Vec<(i64, bool, &str)> {
        self.lines
            .iter()
            .filter_map(|l| {
                let t = l.unix_ns? - alignment.start_unix_ns;
                (from_ns..=to_ns)
                    .contains(&t)
                    .then_some((t, l.continuation, l.text.as_str()))
            })
            .collect()
    }
}

/// An excerpt as the text (not yet escaped) of a `<pre>`: each line labelled with its
/// history time (`   +12.345 s │ `), continuation lines with a blank label;
/// past `max_lines`, the first and last halves with a count between.
pub fn excerpt_text(lines: &[(i64, bool, &str)], max_lines: usize) -> String {
    let line = |(t, continuation, text): &(i64, bool, &str)| {
        if *continuation {
            format!("{:>12} │ {text}\n", "")
        } else {
            let sign = if *t < 0 { '-' } else { '+' };
            // To the nearest millisecond, as the rest of the report shows times.
            let ms = (t.unsigned_abs() + 500_000) / 1_000_000;
            let time = format!("{sign}{}.{:03}", ms / 1_000, ms % 1_000);
            format!("{time:>10} s │ {text}\n")
        }
    };
    if lines.len() <= max_lines {
        return lines.iter().map(line).collect();
    }
    let half = max_lines / 2;
    let mut out: String = lines[..half].iter().map(line).collect();
    let _ = writeln!(
        out,
        "{:>12} │ … {} more lines in the window (see the whole log) …",
        "",
        lines.len() - 2 * half
    );
    out.extend(lines[lines.len() - half..].iter().map(line));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continuation_lines_follow_their_timed_line() {
        let log = NodeLog::parse(
            "n1",
            "preamble\n\
             1970-01-01T00:00:01.000000Z INFO a\n\
             \x20 wrapped a\n\
             1970-01-01T00:00:03.000000Z INFO b\n\
             \x20 wrapped b\n",
        );
        let alignment = Alignment {
            start_unix_ns: 0,
            exact: true,
        };
        let lines = log.excerpt(&alignment, 0, 2_000_000_000);
        let texts: Vec<&str> = lines.iter().map(|l| l.2).collect();
        assert_eq!(texts, ["1970-01-01T00:00:01.000000Z INFO a", "  wrapped a"]);
        assert_eq!(lines[1], (1_000_000_000, true, "  wrapped a"));
        let text = excerpt_text(&lines, 10);
        assert!(text.starts_with("    +1.000 s │ 1970"), "{text}");
    }

    #[test]
    fn long_excerpts_keep_both_ends() {
        let lines: Vec<(i64, bool, &str)> = (0..10).map(|i| (i, false, "x")).collect();
        let text = excerpt_text(&lines, 4);
        assert_eq!(text.lines().count(), 5, "{text}");
        assert!(text.contains("6 more lines"), "{text}");
    }
}
