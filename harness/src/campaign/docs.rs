//! A campaign's documents, in its directory `store/campaigns/<name>/<time>/`:
//! `campaign.json` (rewritten after every run, so an interrupted campaign
//! keeps what it did), `campaign.html` (the summary table with links to each
//! run's report), `junit.xml` (one test case per cell), and the summary
//! table printed at the end.
//!
//! # `campaign.json`
//! `{ name, source, seed, started, finished, status, verdict, cells }`:
//! `status` is `running`, `complete` or `interrupted`; `verdict` is `met`,
//! `unmet` or `unknown`; each cell is a [`CellOutcome`] (its test table,
//! expectation, runs with seed, run directory, verdict, anomaly counts,
//! detection and time to first anomaly) plus its `verdict`, `detections`,
//! `detection_rate` and `median_first_anomaly_s`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use results::html::Html;
use results::junit::{Outcome, TestCase, TestSuite, TestSuites};
use serde::{Deserialize, Serialize};

use super::outcome::{campaign_verdict, CellOutcome, CellVerdict};
use super::spec::Expect;

/// A campaign in progress or done: what `campaign.json` holds.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CampaignRecord {
    /// The campaign's name.
    pub name: String,
    /// The file it came from.
    pub source: String,
    /// Its seed: every run's seed derives from it and the cell's name.
    pub seed: u64,
    /// When it started (RFC 3339, UTC).
    pub started: String,
    /// When it ended, if it has.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished: Option<String>,
    /// `running`, `complete` or `interrupted`.
    pub status: String,
    /// The command line that repeats it.
    pub command: String,
    /// The cells, in order.
    pub cells: Vec<CellOutcome>,
}

impl CampaignRecord {
    /// The verdict over the cells.
    pub fn verdict(&self) -> CellVerdict {
        campaign_verdict(&self.cells)
    }

    /// `campaign.json`'s content, with each cell's derived figures.
    pub fn to_json(&self) -> serde_json::Value {
        let mut value = serde_json::to_value(self).unwrap_or_default();
        value["verdict"] = serde_json::json!(self.verdict());
        if let Some(cells) = value["cells"].as_array_mut() {
            for (json, cell) in cells.iter_mut().zip(&self.cells) {
                json["verdict"] = serde_json::json!(cell.verdict());
                json["detections"] = serde_json::json!(cell.detections());
                json["detection_rate"] = serde_json::json!(cell.detection_rate());
                json["median_first_anomaly_s"] = serde_json::json!(cell.median_first_anomaly_s());
            }
        }
        value
    }

    /// Writes `campaign.json`, `campaign.html` and `junit.xml` into `dir`
    /// (each through a temporary file, so a reader never sees half of one);
    /// `store_root` is where the runs' directories are, for the links.
    pub fn write(&self, dir: &Path, store_root: &Path) -> std::io::Result<()> {
        let json = serde_json::to_string_pretty(&self.to_json()).map_err(std::io::Error::other)?;
        write_atomically(&dir.join("campaign.json"), &json)?;
        write_atomically(&dir.join("campaign.html"), &self.html(dir, store_root))?;
        write_atomically(&dir.join("junit.xml"), &self.junit_xml())
    }

    /// The summary table, as printed at the end.
    pub fn summary_table(&self) -> String {
        let header = [
            "cell",
            "runs",
            "expect",
            "detections",
            "rate",
            "first anomaly",
            "verdicts",
            "result",
        ];
        let rows: Vec<[String; 8]> = self
            .cells
            .iter()
            .map(|c| {
                [
                    c.name.clone(),
                    format!("{}/{}", c.runs.len(), c.runs_planned),
                    expect_text(c),
                    match c.expect {
                        Expect::Valid => "-".into(),
                        Expect::Detect(_) => c.detections().to_string(),
                    },
                    rate_text(c),
                    c.median_first_anomaly_s()
                        .map_or("-".into(), |s| format!("{s:.1} s")),
                    verdicts_text(c),
                    c.verdict().to_string(),
                ]
            })
            .collect();
        let mut widths = header.map(str::len);
        for row in &rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let mut out = String::new();
        let line = |out: &mut String, cells: &[String]| {
            let parts: Vec<String> = cells
                .iter()
                .zip(widths)
                .map(|(c, w)| format!("{c:<w$}"))
                .collect();
            let _ = writeln!(out, "{}", parts.join("  ").trim_end());
        };
        line(&mut out, &header.map(String::from));
        for row in &rows {
            line(&mut out, row);
        }
        out
    }

    fn html(&self, dir: &Path, store_root: &Path) -> String {
        let verdict = self.verdict();
        let mut h = Html::new();
        h.tags("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">")
            .element("title", format_args!("campaign {} — {verdict}", self.name))
            .tags("<style>")
            .tags(CSS)
            .tags("</style></head><body>")
            .open(
                "div",
                &[
                    ("class", &format_args!("banner {}", verdict_class(verdict))),
                    ("id", &"verdict"),
                ],
            )
            .text(format_args!(
                "campaign {}: {}",
                self.name,
                match verdict {
                    CellVerdict::Met => "every expectation met",
                    CellVerdict::Unknown => "some cells undecided (unknown runs)",
                    CellVerdict::Unmet => "some expectations NOT met",
                }
            ))
            .close("div")
            .tags("<p>From ")
            .element("code", &self.source)
            .text(format_args!(
                ", seed {}, started {}",
                self.seed, self.started
            ));
        if let Some(finished) = &self.finished {
            h.text(format_args!(", finished {finished}"));
        }
        h.text(format_args!("; status {}.", self.status))
            .tags("</p><p>Repeat it: ")
            .element("code", &self.command)
            .tags("</p>");
        h.tags("<table id=\"cells\"><thead><tr><th>cell</th><th>mode</th><th>workload</th><th>faults</th><th>expect</th><th>runs</th><th>detections</th><th>rate</th><th>median first anomaly</th><th>verdicts</th><th>result</th></tr></thead><tbody>");
        for cell in &self.cells {
            cell_row(&mut h, cell);
        }
        h.tags("</tbody></table><h2>Runs</h2>");
        for cell in &self.cells {
            runs_table(&mut h, cell, dir, store_root);
        }
        h.tags("</body></html>\n");
        h.into_string()
    }

    /// `junit.xml`: one test case per cell; an unmet cell is a failure, an
    /// undecided one an error.
    pub fn junit_xml(&self) -> String {
        let time: f64 = self
            .cells
            .iter()
            .flat_map(|c| &c.runs)
            .map(|r| r.duration_s)
            .sum();
        let mut suite = TestSuite::new(&self.name, time);
        for cell in &self.cells {
            let took: f64 = cell.runs.iter().map(|r| r.duration_s).sum();
            let classname = format!("faultline.campaign.{}", self.name);
            suite =
                suite.case(TestCase::new(classname, &cell.name, junit_outcome(cell)).took(took));
        }
        TestSuites::new("faultline campaign").suite(suite).to_xml()
    }
}

/// A cell as a JUnit test case's outcome: met passes, unmet fails,
/// undecided is an error; the message says what was expected and seen, the
/// body lists the runs.
fn junit_outcome(cell: &CellOutcome) -> Outcome {
    let message = format!(
        "expected {}; {} runs of {}: {}{}",
        expect_text(cell),
        cell.runs.len(),
        cell.runs_planned,
        verdicts_text(cell),
        match cell.expect {
            Expect::Valid => String::new(),
            Expect::Detect(_) => format!(", {} detecting", cell.detections()),
        }
    );
    let body: Vec<String> = cell
        .runs
        .iter()
        .map(|r| {
            format!(
                "seed {}: {} {}{}",
                r.seed,
                r.verdict,
                r.run_dir
                    .as_ref()
                    .map(|d| d.display().to_string())
                    .unwrap_or_default(),
                r.error
                    .as_ref()
                    .map(|e| format!(" ({e})"))
                    .unwrap_or_default()
            )
        })
        .collect();
    let body = body.join("\n");
    match cell.verdict() {
        CellVerdict::Met => Outcome::Pass,
        CellVerdict::Unmet => Outcome::Failure {
            message,
            kind: "unmet".into(),
            body,
        },
        CellVerdict::Unknown => Outcome::Error {
            message,
            kind: "unknown".into(),
            body: Some(body),
        },
    }
}

fn verdict_class(verdict: CellVerdict) -> &'static str {
    match verdict {
        CellVerdict::Met => "met",
        CellVerdict::Unknown => "unknown",
        CellVerdict::Unmet => "unmet",
    }
}

/// A cell's row of the page's summary table.
fn cell_row(h: &mut Html, cell: &CellOutcome) {
    let t = &cell.test;
    let text = |key: &str| {
        t.get(key)
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .to_string()
    };
    let faults = t
        .get("nemesis")
        .and_then(|v| v.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|f| f.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default();
    let mode = format!(
        "write {} · election {} · reads {} · {} · fsync {}",
        text("write-concern"),
        text("election"),
        text("reads"),
        text("topology"),
        text("fsync")
    );
    let v = cell.verdict();
    h.open("tr", &[("class", &verdict_class(v))])
        .element("td", &cell.name)
        .element("td", &mode)
        .element("td", text("workload"))
        .element("td", &faults)
        .element("td", expect_text(cell))
        .element("td", cell.runs.len())
        .element(
            "td",
            match cell.expect {
                Expect::Valid => "-".into(),
                Expect::Detect(_) => cell.detections().to_string(),
            },
        )
        .element("td", rate_text(cell))
        .element(
            "td",
            cell.median_first_anomaly_s()
                .map_or("-".into(), |s| format!("{s:.1} s")),
        )
        .element("td", verdicts_text(cell))
        .open("td", &[("class", &"result")])
        .text(v)
        .tags("</td></tr>");
}

/// A cell's runs, a row each, with links to their reports.
fn runs_table(h: &mut Html, cell: &CellOutcome, dir: &Path, store_root: &Path) {
    h.element("h3", &cell.name).tags("<table class=\"runs\"><thead><tr><th>#</th><th>seed</th><th>verdict</th><th>anomalies</th><th>first anomaly</th><th>took</th><th>report</th></tr></thead><tbody>");
    for (i, run) in cell.runs.iter().enumerate() {
        let anomalies: Vec<String> = run
            .anomalies
            .iter()
            .map(|(k, n)| format!("{n} {k}"))
            .collect();
        h.open(
            "tr",
            &[("class", &if run.detected { "detected" } else { "" })],
        )
        .element("td", i + 1)
        .element("td", run.seed)
        .element("td", &run.verdict)
        .element(
            "td",
            match &run.error {
                Some(e) => format!("error: {e}"),
                None => anomalies.join(", "),
            },
        )
        .element(
            "td",
            run.first_anomaly_s
                .map_or("-".into(), |s| format!("{s:.1} s")),
        )
        .element("td", format_args!("{:.1} s", run.duration_s))
        .tags("<td>");
        if let Some(run_dir) = &run.run_dir {
            let href = relative_link(dir, store_root, run_dir);
            h.open("a", &[("href", &format_args!("{href}/report.html"))])
                .tags("report</a> · ")
                .open("a", &[("href", &format_args!("{href}/"))])
                .tags("files</a>");
        }
        h.tags("</td></tr>");
    }
    h.tags("</tbody></table>");
}

fn expect_text(cell: &CellOutcome) -> String {
    match &cell.expect {
        Expect::Valid => "valid".into(),
        Expect::Detect(_) if cell.min_detections > 1 => {
            format!("{} (≥{} runs)", cell.expect.describe(), cell.min_detections)
        }
        Expect::Detect(_) => cell.expect.describe(),
    }
}

fn rate_text(cell: &CellOutcome) -> String {
    match (&cell.expect, cell.detection_rate()) {
        (Expect::Detect(_), Some(rate)) => format!("{:.0}%", rate * 100.0),
        _ => "-".into(),
    }
}

fn verdicts_text(cell: &CellOutcome) -> String {
    let counts = cell.verdict_counts();
    if counts.is_empty() {
        return "-".into();
    }
    counts
        .iter()
        .map(|(v, n)| format!("{n} {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The link from the campaign's directory to a run's: both live in the
/// store, so it climbs to the store root and descends; a run elsewhere
/// gets its absolute path.
fn relative_link(campaign_dir: &Path, store_root: &Path, run_dir: &Path) -> String {
    let (Ok(from), Ok(to)) = (
        campaign_dir.strip_prefix(store_root),
        run_dir.strip_prefix(store_root),
    ) else {
        return format!("file://{}", run_dir.display());
    };
    let mut link = PathBuf::new();
    for _ in from.components() {
        link.push("..");
    }
    link.push(to);
    link.display().to_string()
}

fn write_atomically(path: &Path, text: &str) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path)
}

const CSS: &str = "body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}\
table{border-collapse:collapse;margin:.5em 0 1.5em}th,td{border:1px solid #ccc;padding:.25em .5em;text-align:left;font-size:.92em}\
th{background:#f2f2f2}.banner{font-size:1.4em;font-weight:bold;padding:.5em .8em;border-radius:4px;margin-bottom:1em}\
.banner.met{background:#d9f2d9;color:#145214}.banner.unmet{background:#f9d6d5;color:#7a1410}.banner.unknown{background:#fdf1c7;color:#6b5200}\
tr.unmet td.result{color:#a01010;font-weight:bold}tr.met td.result{color:#146414}tr.unknown td.result{color:#8a6a00}\
tr.detected td:nth-child(3){font-weight:bold}code{background:#f4f4f4;padding:0 .2em}";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::campaign::outcome::RunRecord;
    use std::collections::BTreeMap;

    fn record() -> CampaignRecord {
        let run = |verdict: &str, detected: bool, dir: &str| RunRecord {
            seed: 9,
            run_dir: Some(PathBuf::from(dir)),
            verdict: verdict.into(),
            anomalies: if detected {
                BTreeMap::from([("lost-write".to_string(), 3)])
            } else {
                BTreeMap::new()
            },
            detected,
            first_anomaly_s: detected.then_some(4.25),
            duration_s: 21.0,
            error: None,
        };
        CampaignRecord {
            name: "demo".into(),
            source: "campaigns/demo.toml".into(),
            seed: 9,
            started: "2026-11-26T07:00:00Z".into(),
            finished: None,
            status: "complete".into(),
            command: "faultline campaign campaigns/demo.toml --seed 9".into(),
            cells: vec![
                CellOutcome {
                    name: "weak<&>".into(),
                    test: serde_json::json!({"workload": "set", "nemesis": ["partition"]}),
                    expect: Expect::Detect(vec!["lost-write".into()]),
                    min_detections: 1,
                    runs_planned: 2,
                    runs: vec![
                        run("invalid", true, "/s/weak/20261126T070000"),
                        run("valid", false, "/s/weak/20261126T070030"),
                    ],
                },
                CellOutcome {
                    name: "strong".into(),
                    test: serde_json::json!({"workload": "set"}),
                    expect: Expect::Valid,
                    min_detections: 1,
                    runs_planned: 1,
                    runs: vec![run("invalid", false, "/s/strong/20261126T070100")],
                },
            ],
        }
    }

    #[test]
    fn the_summary_table_has_a_row_per_cell_with_rate_and_result() {
        let table = record().summary_table();
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 3, "{table}");
        assert!(
            lines[1].contains("weak<&>")
                && lines[1].contains("50%")
                && lines[1].contains("4.2 s")
                && lines[1].ends_with("met"),
            "{table}"
        );
        assert!(
            lines[2].contains("strong") && lines[2].ends_with("UNMET"),
            "{table}"
        );
    }

    #[test]
    fn junit_has_one_escaped_test_case_per_cell_and_fails_the_unmet_one() {
        let xml = record().junit_xml();
        assert_eq!(xml.matches("<testcase ").count(), 2);
        assert!(
            xml.contains("tests=\"2\" failures=\"1\" errors=\"0\""),
            "{xml}"
        );
        assert!(xml.contains("name=\"weak&lt;&amp;&gt;\""), "{xml}");
        assert!(
            xml.contains("<failure message=\"expected valid; 1 runs of 1: 1 invalid\""),
            "{xml}"
        );
    }

    #[test]
    fn html_links_each_run_relative_to_the_store_and_escapes_names() {
        let html = record().html(
            Path::new("/s/campaigns/demo/20261126T070000"),
            Path::new("/s"),
        );
        assert!(
            html.contains("href=\"../../../weak/20261126T070000/report.html\""),
            "{html}"
        );
        assert!(html.contains("weak&lt;&amp;&gt;") && !html.contains("weak<&>"));
        assert!(html.contains("some expectations NOT met"));
    }

    #[test]
    fn json_carries_the_derived_figures() {
        let json = record().to_json();
        assert_eq!(json["verdict"], "unmet");
        assert_eq!(json["cells"][0]["detections"], 1);
        assert_eq!(json["cells"][0]["detection_rate"], 0.5);
        assert_eq!(json["cells"][1]["verdict"], "unmet");
        let back: CampaignRecord = serde_json::from_value(json).unwrap();
        assert_eq!(back.cells.len(), 2);
    }
}
