//! The HTML the server renders itself: the index of the store, the
//! listing of a directory in it and the error page. Self-contained pages
//! (inline CSS, no script): sorting and filtering are links and a form
//! whose query string the server applies, so they work the same from a
//! browser, `curl` or a test.
//!
//! # Query string of the index
//!
//! | key | values | default |
//! |---|---|---|
//! | `verdict` | `valid`, `invalid`, `unknown`, `running`, `incomplete`, or empty for all | all |
//! | `test` | text the test name must contain (case-insensitive) | any |
//! | `sort` | `name`, `time`, `mode`, `workload`, `faults`, `verdict`, `anomalies` | `time` |
//! | `order` | `asc`, `desc` | `desc` for `time` and `anomalies`, else `asc` |
//!
//! Whatever the sort, ties go newest first.

use std::cmp::Ordering;

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use results::html::Html;
use serde::Deserialize;

use super::runs::{CampaignRow, RunRow, Status, StoreListing};

/// Bytes left as they are in a path segment or query value; everything
/// else is percent-encoded (RFC 3986 unreserved characters stay).
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// A column the index sorts by.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SortColumn {
    /// The test name.
    Name,
    /// The run's start time.
    #[default]
    Time,
    /// The node modes.
    Mode,
    /// The workload.
    Workload,
    /// The faults.
    Faults,
    /// The verdict (alphabetically).
    Verdict,
    /// The total anomaly count.
    Anomalies,
}

impl SortColumn {
    const ALL: [(SortColumn, &'static str); 7] = [
        (SortColumn::Name, "name"),
        (SortColumn::Time, "time"),
        (SortColumn::Mode, "mode"),
        (SortColumn::Workload, "workload"),
        (SortColumn::Faults, "faults"),
        (SortColumn::Verdict, "verdict"),
        (SortColumn::Anomalies, "anomalies"),
    ];

    fn as_str(self) -> &'static str {
        SortColumn::ALL
            .iter()
            .find(|(column, _)| *column == self)
            .map_or("time", |(_, name)| name)
    }

    /// Newest and most anomalous first; everything else alphabetical.
    fn default_order(self) -> Order {
        match self {
            SortColumn::Time | SortColumn::Anomalies => Order::Desc,
            _ => Order::Asc,
        }
    }
}

/// A sort direction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Order {
    /// Smallest first.
    Asc,
    /// Largest first.
    Desc,
}

impl Order {
    fn as_str(self) -> &'static str {
        match self {
            Order::Asc => "asc",
            Order::Desc => "desc",
        }
    }

    fn flipped(self) -> Order {
        match self {
            Order::Asc => Order::Desc,
            Order::Desc => Order::Asc,
        }
    }
}

/// The index's query string (module docs).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct IndexQuery {
    /// Only runs with this status; empty for all.
    pub verdict: String,
    /// Only runs whose test name contains this (case-insensitive).
    pub test: String,
    /// The column to sort by.
    pub sort: SortColumn,
    /// The direction; the column's own default when absent.
    pub order: Option<Order>,
}

impl IndexQuery {
    /// The status `verdict` names: `Ok(None)` for all, `Err` with a message
    /// for a name that is not a status.
    pub fn status(&self) -> Result<Option<Status>, String> {
        if self.verdict.is_empty() {
            return Ok(None);
        }
        Status::ALL
            .into_iter()
            .find(|s| s.as_str() == self.verdict)
            .map(Some)
            .ok_or_else(|| {
                let names: Vec<_> = Status::ALL.iter().map(|s| s.as_str()).collect();
                format!(
                    "verdict must be one of {} (or empty), not {:?}",
                    names.join(", "),
                    self.verdict
                )
            })
    }

    fn order(&self) -> Order {
        self.order.unwrap_or(self.sort.default_order())
    }

    /// This query's query string with another sort.
    fn with_sort(&self, sort: SortColumn, order: Order) -> String {
        format!(
            "?verdict={}&test={}&sort={}&order={}",
            encode(&self.verdict),
            encode(&self.test),
            sort.as_str(),
            order.as_str()
        )
    }
}

/// The runs `query` keeps, in its order. `status` is `query.status()`.
pub fn select<'a>(
    runs: &'a [RunRow],
    query: &IndexQuery,
    status: Option<Status>,
) -> Vec<&'a RunRow> {
    let needle = query.test.to_lowercase();
    let mut kept: Vec<&RunRow> = runs
        .iter()
        .filter(|run| status.is_none() || status == Some(run.status))
        .filter(|run| run.test_name.to_lowercase().contains(&needle))
        .collect();
    let order = query.order();
    kept.sort_by(|a, b| {
        let primary = compare(query.sort, a, b);
        let primary = match order {
            Order::Asc => primary,
            Order::Desc => primary.reverse(),
        };
        primary
            .then_with(|| b.timestamp.cmp(&a.timestamp))
            .then_with(|| a.test_name.cmp(&b.test_name))
    });
    kept
}

fn compare(column: SortColumn, a: &RunRow, b: &RunRow) -> Ordering {
    match column {
        SortColumn::Name => a.test_name.cmp(&b.test_name),
        SortColumn::Time => a.timestamp.cmp(&b.timestamp),
        SortColumn::Mode => a.mode.cmp(&b.mode),
        SortColumn::Workload => a.workload.cmp(&b.workload),
        SortColumn::Faults => a.faults.cmp(&b.faults),
        SortColumn::Verdict => a.status.as_str().cmp(b.status.as_str()),
        SortColumn::Anomalies => a.anomaly_total().cmp(&b.anomaly_total()),
    }
}

const STYLE: &str = "
body { font-family: system-ui, sans-serif; margin: 1.5em; color: #222; }
h1 { font-size: 1.4em; } h2 { font-size: 1.15em; margin-top: 2em; }
code { background: #f3f3f3; padding: 0 .3em; }
table { border-collapse: collapse; width: 100%; font-size: .92em; }
th, td { text-align: left; padding: .3em .6em; border-bottom: 1px solid #ddd; vertical-align: top; }
th a { color: inherit; text-decoration: none; } th a:hover { text-decoration: underline; }
th.sorted { background: #eef; }
tbody tr:hover { background: #fafafa; }
td.verdict { font-weight: 600; }
.valid { color: #176c2c; } .invalid { color: #b3121e; } .unknown { color: #a15c00; }
.running { color: #1f4fa8; } .incomplete { color: #666; }
.anomaly { display: inline-block; background: #fde8ea; border-radius: 3px; padding: 0 .3em; margin: 0 .2em .2em 0; }
form.filter { margin: 1em 0; } form.filter > * { margin-right: .5em; }
.muted { color: #777; }
";

/// The index page: runs (filtered and sorted by `query`) and campaigns.
/// `store` is the store's path as given on the command line.
pub fn index(store: &str, listing: &StoreListing, query: &IndexQuery) -> Result<String, String> {
    let status = query.status()?;
    let shown = select(&listing.runs, query, status);
    let mut page = Html::new();
    page.tags("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">")
        .element("title", format_args!("faultline: {store}"))
        .tags("<style>")
        .tags(STYLE)
        .tags("</style></head><body>\n<h1>faultline store ")
        .element("code", store)
        .tags("</h1>\n");
    filter_form(&mut page, query, status);
    page.open("p", &[("class", &"count")])
        .text(format_args!(
            "{} of {} runs shown",
            shown.len(),
            listing.runs.len()
        ))
        .tags("</p>\n");
    runs_table(&mut page, &shown, query);
    campaigns_table(&mut page, &listing.campaigns);
    page.tags("</body></html>\n");
    Ok(page.into_string())
}

fn filter_form(page: &mut Html, query: &IndexQuery, status: Option<Status>) {
    page.tags("<form class=\"filter\" method=\"get\" action=\"/\">")
        .tags("<label>verdict <select name=\"verdict\"><option value=\"\">all</option>");
    for s in Status::ALL {
        page.tags("<option value=\"")
            .text(s.as_str())
            .tags(if status == Some(s) {
                "\" selected>"
            } else {
                "\">"
            })
            .text(s.as_str())
            .close("option");
    }
    page.tags("</select></label><label>test ")
        .open(
            "input",
            &[
                ("name", &"test"),
                ("value", &query.test),
                ("placeholder", &"name contains"),
            ],
        )
        .tags("</label>")
        .open(
            "input",
            &[
                ("type", &"hidden"),
                ("name", &"sort"),
                ("value", &query.sort.as_str()),
            ],
        )
        .open(
            "input",
            &[
                ("type", &"hidden"),
                ("name", &"order"),
                ("value", &query.order().as_str()),
            ],
        )
        .tags("<button type=\"submit\">filter</button> <a href=\"/\">clear</a></form>\n");
}

fn runs_table(page: &mut Html, runs: &[&RunRow], query: &IndexQuery) {
    page.tags("<table id=\"runs\"><thead><tr>");
    for (column, name) in SortColumn::ALL {
        let sorted = column == query.sort;
        let order = if sorted {
            query.order().flipped()
        } else {
            column.default_order()
        };
        let arrow = match (sorted, query.order()) {
            (false, _) => "",
            (true, Order::Asc) => " ▲",
            (true, Order::Desc) => " ▼",
        };
        page.tags("<th");
        if sorted {
            page.tags(" class=\"sorted\"");
        }
        if column == SortColumn::Mode {
            page.tags(" title=\"write-concern/election/reads/topology/fsync\"");
        }
        page.tags(">")
            .open("a", &[("href", &query.with_sort(column, order))])
            .text(format_args!("{name}{arrow}"))
            .tags("</a></th>");
    }
    page.tags("<th>report</th></tr></thead>\n<tbody>\n");
    for run in runs {
        page.append(&run_row(run));
    }
    if runs.is_empty() {
        page.tags("<tr><td colspan=\"8\" class=\"muted\">no runs</td></tr>\n");
    }
    page.tags("</tbody></table>\n");
}

fn run_row(run: &RunRow) -> Html {
    let dir = format!("/{}/{}/", encode(&run.test_name), encode(&run.timestamp));
    let status = run.status.as_str();
    let mut row = Html::new();
    row.open("tr", &[("class", &"run"), ("data-verdict", &status)])
        .open("td", &[("class", &"name")])
        .text(&run.test_name)
        .close("td")
        .open("td", &[("class", &"time"), ("title", &run.timestamp)])
        .text(readable_time(&run.timestamp))
        .close("td");
    for (class, text) in [
        ("mode", &run.mode),
        ("workload", &run.workload),
        ("faults", &run.faults.join(",")),
    ] {
        row.open("td", &[("class", &class)]).text(text).close("td");
    }
    let verdict_class = format!("verdict {status}");
    match &run.note {
        Some(note) => row.open("td", &[("class", &verdict_class), ("title", note)]),
        None => row.open("td", &[("class", &verdict_class)]),
    };
    row.text(status).tags("</td><td class=\"anomalies\">");
    for (kind, n) in &run.anomalies {
        row.open("span", &[("class", &"anomaly"), ("data-kind", kind)])
            .text(format_args!("{kind} {n}"))
            .close("span");
    }
    row.tags("</td><td class=\"links\">");
    if run.has_report {
        row.open("a", &[("href", &format_args!("{dir}report.html"))])
            .tags("report</a> · ");
    }
    row.open("a", &[("href", &dir)])
        .tags("files</a></td></tr>\n");
    row
}

fn campaigns_table(page: &mut Html, campaigns: &[CampaignRow]) {
    page.tags(
        "<h2>Campaigns</h2>\n<table id=\"campaigns\"><thead><tr>\
         <th>name</th><th>time</th><th>report</th></tr></thead>\n<tbody>\n",
    );
    for campaign in campaigns {
        let href: Vec<String> = campaign.path.split('/').map(encode).collect();
        page.tags("<tr class=\"campaign\"><td class=\"name\">")
            .text(&campaign.name)
            .tags("</td>")
            .open("td", &[("class", &"time"), ("title", &campaign.timestamp)])
            .text(readable_time(&campaign.timestamp))
            .tags("</td><td>")
            .open(
                "a",
                &[(
                    "href",
                    &format_args!("/{}/{}", href.join("/"), super::runs::CAMPAIGN_HTML),
                )],
            )
            .tags("campaign</a></td></tr>\n");
    }
    if campaigns.is_empty() {
        page.tags("<tr><td colspan=\"3\" class=\"muted\">no campaigns</td></tr>\n");
    }
    page.tags("</tbody></table>\n");
}

/// A listing of the store directory `url_path` (`/`-terminated, already
/// validated) holding `entries`: (name, is a directory).
pub fn directory(url_path: &str, entries: &[(String, bool)]) -> String {
    let mut page = Html::new();
    page.tags("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">")
        .element("title", format_args!("faultline: {url_path}"))
        .tags("<style>")
        .tags(STYLE)
        .tags("</style></head><body>\n<h1>")
        .element("code", url_path)
        .tags("</h1>\n<p><a href=\"/\">index</a> · <a href=\"../\">up</a></p>\n<ul class=\"entries\">\n");
    for (name, is_dir) in entries {
        let slash = if *is_dir { "/" } else { "" };
        page.tags("<li>")
            .open("a", &[("href", &format_args!("{}{slash}", encode(name)))])
            .text(format_args!("{name}{slash}"))
            .tags("</a></li>\n");
    }
    page.tags("</ul>\n</body></html>\n");
    page.into_string()
}

/// The page of a server error saying `message`.
pub fn error(message: &str) -> String {
    let mut page = Html::new();
    page.tags("<!DOCTYPE html><title>error</title>")
        .element("p", message);
    page.into_string()
}

/// `20261126T041503.123Z` (with any `-N` suffix) as
/// `2026-11-26 04:15:03.123 UTC`; anything else as it is.
fn readable_time(stamp: &str) -> String {
    let b = stamp.as_bytes();
    let shaped = b.len() >= 20
        && b[8] == b'T'
        && b[15] == b'.'
        && b[19] == b'Z'
        && stamp.is_char_boundary(20);
    if !shaped {
        return stamp.to_string();
    }
    format!(
        "{}-{}-{} {}:{}:{}.{} UTC{}",
        &stamp[0..4],
        &stamp[4..6],
        &stamp[6..8],
        &stamp[9..11],
        &stamp[11..13],
        &stamp[13..15],
        &stamp[16..19],
        &stamp[20..]
    )
}

/// `text` percent-encoded for a path segment or a query value.
pub fn encode(text: &str) -> String {
    utf8_percent_encode(text, UNRESERVED).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn row(name: &str, stamp: &str, status: Status, anomalies: usize) -> RunRow {
        RunRow {
            test_name: name.into(),
            timestamp: stamp.into(),
            mode: String::new(),
            workload: String::new(),
            faults: Vec::new(),
            status,
            note: None,
            anomalies: BTreeMap::from([("lost-write".to_string(), anomalies)]),
            has_report: false,
        }
    }

    fn names(runs: &[&RunRow]) -> Vec<String> {
        runs.iter().map(|r| r.test_name.clone()).collect()
    }

    #[test]
    fn time_is_newest_first_by_default_and_ties_go_newest_first_under_any_sort() {
        let runs = [
            row("a", "20250101T000000.000Z", Status::Valid, 0),
            row("b", "20250102T000000.000Z", Status::Invalid, 2),
            row("c", "20250103T000000.000Z", Status::Valid, 0),
        ];
        let query = IndexQuery::default();
        assert_eq!(names(&select(&runs, &query, None)), ["c", "b", "a"]);
        let by_verdict = IndexQuery {
            sort: SortColumn::Verdict,
            ..IndexQuery::default()
        };
        assert_eq!(names(&select(&runs, &by_verdict, None)), ["b", "c", "a"]);
        let by_anomalies_asc = IndexQuery {
            sort: SortColumn::Anomalies,
            order: Some(Order::Asc),
            ..IndexQuery::default()
        };
        assert_eq!(
            names(&select(&runs, &by_anomalies_asc, None)),
            ["c", "a", "b"]
        );
    }

    #[test]
    fn filters_by_status_and_by_a_case_insensitive_part_of_the_name() {
        let runs = [
            row("Set-weak", "20250101T000000.000Z", Status::Invalid, 1),
            row("register", "20250102T000000.000Z", Status::Invalid, 1),
            row("set-strong", "20250103T000000.000Z", Status::Valid, 0),
        ];
        let query = IndexQuery {
            verdict: "invalid".into(),
            test: "SET".into(),
            ..IndexQuery::default()
        };
        let status = query.status().unwrap();
        assert_eq!(names(&select(&runs, &query, status)), ["Set-weak"]);
        let bogus = IndexQuery {
            verdict: "broken".into(),
            ..IndexQuery::default()
        };
        assert!(bogus.status().unwrap_err().contains("incomplete"));
    }

    #[test]
    fn run_timestamps_read_as_utc_times_and_other_names_stay_as_they_are() {
        assert_eq!(
            readable_time("20261126T041503.123Z"),
            "2026-11-26 04:15:03.123 UTC"
        );
        assert_eq!(
            readable_time("20261126T041503.123Z-2"),
            "2026-11-26 04:15:03.123 UTC-2"
        );
        assert_eq!(readable_time("nightly"), "nightly");
    }

    #[test]
    fn the_error_page_escapes_its_message() {
        assert_eq!(
            error("no <store> & more"),
            "<!DOCTYPE html><title>error</title><p>no &lt;store&gt; &amp; more</p>"
        );
    }

    #[test]
    fn strings_from_the_store_are_escaped_in_rows_and_links() {
        let mut run = row("<b>", "20250101T000000.000Z", Status::Incomplete, 1);
        run.note = Some("\"bad\" & <worse>".into());
        run.anomalies = BTreeMap::from([("<script>".to_string(), 1)]);
        let html = run_row(&run).into_string();
        assert!(
            !html.contains("<b>") && !html.contains("<script>"),
            "{html}"
        );
        assert!(
            html.contains("&lt;b&gt;") && html.contains("/%3Cb%3E/"),
            "{html}"
        );
        assert!(
            html.contains("&quot;bad&quot; &amp; &lt;worse&gt;"),
            "{html}"
        );
    }
}
