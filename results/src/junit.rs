//! `junit.xml`: one test case per checker, so CI systems show the verdicts.
//!
//! A valid checker passes; an invalid one fails with its anomaly counts as
//! the message and the first anomalies' explanations as the body; an unknown
//! one is an `<error type="unknown">` (not a pass, not a proven failure).

use std::fmt::Write as _;

use checker::Validity;

use crate::markup::escape;
use crate::summary::Results;

/// How many anomaly explanations a failure's body lists.
const EXPLAINED: usize = 10;

/// The `junit.xml` of `results`, for the test named `test_name`.
pub fn junit_xml(test_name: &str, results: &Results) -> String {
    let failures = count(results, Validity::Invalid);
    let errors = count(results, Validity::Unknown);
    let mut xml = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let suite = escape(test_name);
    let tests = results.checkers.len();
    let _ = writeln!(
        xml,
        "<testsuites name=\"faultline\" tests=\"{tests}\" failures=\"{failures}\" errors=\"{errors}\">"
    );
    let _ = writeln!(
        xml,
        "  <testsuite name=\"{suite}\" tests=\"{tests}\" failures=\"{failures}\" errors=\"{errors}\" time=\"{:.3}\">",
        results.stats.duration_s
    );
    for (name, checker) in &results.checkers {
        let _ = write!(
            xml,
            "    <testcase classname=\"faultline.{suite}\" name=\"{}\"",
            escape(name)
        );
        let counts: Vec<String> = checker
            .anomalies
            .iter()
            .map(|(k, n)| format!("{n} {k}"))
            .collect();
        let summary = if counts.is_empty() {
            "no anomalies listed".to_string()
        } else {
            counts.join(", ")
        };
        match checker.valid {
            Validity::Valid => xml.push_str("/>\n"),
            Validity::Invalid => {
                let body: Vec<String> = results
                    .anomalies
                    .iter()
                    .filter(|a| &a.checker == name)
                    .take(EXPLAINED)
                    .map(|a| format!("{}: {}", a.kind, a.explanation))
                    .collect();
                let _ = writeln!(
                    xml,
                    ">\n      <failure message=\"{}\" type=\"invalid\">{}</failure>\n    </testcase>",
                    escape(&format!("invalid: {summary}")),
                    escape(&body.join("\n"))
                );
            }
            Validity::Unknown => {
                let _ = writeln!(
                    xml,
                    ">\n      <error message=\"{}\" type=\"unknown\"/>\n    </testcase>",
                    escape(&format!("unknown: {summary}"))
                );
            }
        }
    }
    xml.push_str("  </testsuite>\n</testsuites>\n");
    xml
}

fn count(results: &Results, verdict: Validity) -> usize {
    results
        .checkers
        .values()
        .filter(|c| c.valid == verdict)
        .count()
}
