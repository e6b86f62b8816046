//! `junit.xml`, the one writer of it: a small typed builder ([`TestSuites`],
//! [`TestSuite`], [`TestCase`], [`Outcome`]) that counts, formats and
//! escapes, and [`junit_xml`], a run's document built with it (the campaign
//! builds its own with the same types).
//!
//! A run's document has one test case per checker, so CI systems show the
//! verdicts: a valid checker passes; an invalid one fails with its anomaly
//! counts as the message and the first anomalies' explanations as the body;
//! an unknown one is an `<error type="unknown">` (not a pass, not a proven
//! failure).
//!
//! # Format
//! ```text
//! <?xml version="1.0" encoding="UTF-8"?>
//! <testsuites name=.. tests=.. failures=.. errors=..>
//!   <testsuite name=.. tests=.. failures=.. errors=.. time="1.234">
//!     <properties><property name=.. value=../></properties>   (when there are any)
//!     <testcase classname=.. name=.. [time=..]/>               (a pass)
//!     <testcase ..><failure message=.. type=..>body</failure></testcase>
//!     <testcase ..><error message=.. type=..[/>|>body</error>]</testcase>
//!   </testsuite>
//! </testsuites>
//! ```
//! `tests`, `failures` and `errors` are counted from the cases; every name,
//! message and body is escaped with [`crate::markup::escape`].

use std::fmt::Write as _;

use checker::Validity;

use crate::markup::escape;
use crate::summary::Results;

/// How many anomaly explanations a failure's body lists.
const EXPLAINED: usize = 10;

/// The whole document: `<testsuites>`.
#[derive(Clone, Debug, PartialEq)]
pub struct TestSuites {
    name: String,
    suites: Vec<TestSuite>,
}

/// One `<testsuite>`.
#[derive(Clone, Debug, PartialEq)]
pub struct TestSuite {
    name: String,
    time_s: f64,
    properties: Vec<(String, String)>,
    cases: Vec<TestCase>,
}

/// One `<testcase>`.
#[derive(Clone, Debug, PartialEq)]
pub struct TestCase {
    classname: String,
    name: String,
    time_s: Option<f64>,
    outcome: Outcome,
}

/// How a test case ended.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// Passed: `<testcase .../>`.
    Pass,
    /// A proven failure: `<failure message type>body</failure>`.
    Failure {
        /// The `message` attribute.
        message: String,
        /// The `type` attribute.
        kind: String,
        /// The element's text.
        body: String,
    },
    /// Neither pass nor proven failure: `<error message type>`, with its
    /// body as text, or self-closing without one.
    Error {
        /// The `message` attribute.
        message: String,
        /// The `type` attribute.
        kind: String,
        /// The element's text, if any.
        body: Option<String>,
    },
}

impl TestSuites {
    /// An empty document named `name`.
    pub fn new(name: impl Into<String>) -> TestSuites {
        TestSuites {
            name: name.into(),
            suites: Vec::new(),
        }
    }

    /// Adds `suite`.
    pub fn suite(mut self, suite: TestSuite) -> TestSuites {
        self.suites.push(suite);
        self
    }

    /// The XML text (see the module docs).
    pub fn to_xml(&self) -> String {
        let cases = || self.suites.iter().flat_map(|s| &s.cases);
        let mut xml = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        let _ = writeln!(
            xml,
            "<testsuites name=\"{}\"{}>",
            escape(&self.name),
            counts(cases())
        );
        for suite in &self.suites {
            suite.write(&mut xml);
        }
        xml.push_str("</testsuites>\n");
        xml
    }
}

impl TestSuite {
    /// An empty suite named `name` that took `time_s` seconds.
    pub fn new(name: impl Into<String>, time_s: f64) -> TestSuite {
        TestSuite {
            name: name.into(),
            time_s,
            properties: Vec::new(),
            cases: Vec::new(),
        }
    }

    /// Adds the property `name` = `value`.
    pub fn property(mut self, name: impl Into<String>, value: impl Into<String>) -> TestSuite {
        self.properties.push((name.into(), value.into()));
        self
    }

    /// Adds `case`.
    pub fn case(mut self, case: TestCase) -> TestSuite {
        self.cases.push(case);
        self
    }

    fn write(&self, xml: &mut String) {
        let _ = writeln!(
            xml,
            "  <testsuite name=\"{}\"{} time=\"{:.3}\">",
            escape(&self.name),
            counts(self.cases.iter()),
            self.time_s
        );
        if !self.properties.is_empty() {
            xml.push_str("    <properties>\n");
            for (name, value) in &self.properties {
                let _ = writeln!(
                    xml,
                    "      <property name=\"{}\" value=\"{}\"/>",
                    escape(name),
                    escape(value)
                );
            }
            xml.push_str("    </properties>\n");
        }
        for case in &self.cases {
            case.write(xml);
        }
        xml.push_str("  </testsuite>\n");
    }
}

impl TestCase {
    /// The case `name` of class `classname`, ended as `outcome`.
    pub fn new(classname: impl Into<String>, name: impl Into<String>, outcome: Outcome) -> Self {
        TestCase {
            classname: classname.into(),
            name: name.into(),
            time_s: None,
            outcome,
        }
    }

    /// The case took `time_s` seconds (written as its `time`).
    pub fn took(mut self, time_s: f64) -> TestCase {
        self.time_s = Some(time_s);
        self
    }

    fn write(&self, xml: &mut String) {
        let _ = write!(
            xml,
            "    <testcase classname=\"{}\" name=\"{}\"",
            escape(&self.classname),
            escape(&self.name)
        );
        if let Some(time) = self.time_s {
            let _ = write!(xml, " time=\"{time:.3}\"");
        }
        let (element, message, kind, body) = match &self.outcome {
            Outcome::Pass => {
                xml.push_str("/>\n");
                return;
            }
            Outcome::Failure {
                message,
                kind,
                body,
            } => ("failure", message, kind, Some(body)),
            Outcome::Error {
                message,
                kind,
                body,
            } => ("error", message, kind, body.as_ref()),
        };
        let _ = write!(
            xml,
            ">\n      <{element} message=\"{}\" type=\"{}\"",
            escape(message),
            escape(kind)
        );
        match body {
            Some(body) => {
                let _ = writeln!(xml, ">{}</{element}>\n    </testcase>", escape(body));
            }
            None => xml.push_str("/>\n    </testcase>\n"),
        }
    }
}

/// ` tests=".." failures=".." errors=".."` of `cases`.
fn counts<'c>(cases: impl Iterator<Item = &'c TestCase>) -> String {
    let (mut tests, mut failures, mut errors) = (0, 0, 0);
    for case in cases {
        tests += 1;
        match case.outcome {
            Outcome::Pass => {}
            Outcome::Failure { .. } => failures += 1,
            Outcome::Error { .. } => errors += 1,
        }
    }
    format!(" tests=\"{tests}\" failures=\"{failures}\" errors=\"{errors}\"")
}

/// The `junit.xml` of `results`, for the test named `test_name`.
pub fn junit_xml(test_name: &str, results: &Results) -> String {
    let mut suite = TestSuite::new(test_name, results.stats.duration_s);
    for (name, checker) in &results.checkers {
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
        let outcome = match checker.valid {
            Validity::Valid => Outcome::Pass,
            Validity::Invalid => Outcome::Failure {
                message: format!("invalid: {summary}"),
                kind: "invalid".into(),
                body: explanations(results, name),
            },
            Validity::Unknown => Outcome::Error {
                message: format!("unknown: {summary}"),
                kind: "unknown".into(),
                body: None,
            },
        };
        suite = suite.case(TestCase::new(
            format!("faultline.{test_name}"),
            name,
            outcome,
        ));
    }
    TestSuites::new("faultline").suite(suite).to_xml()
}

/// The first [`EXPLAINED`] anomalies `checker` found, one line each.
fn explanations(results: &Results, checker: &str) -> String {
    let lines: Vec<String> = results
        .anomalies
        .iter()
        .filter(|a| a.checker == checker)
        .take(EXPLAINED)
        .map(|a| format!("{}: {}", a.kind, a.explanation))
        .collect();
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(message: &str, body: &str) -> Outcome {
        Outcome::Failure {
            message: message.into(),
            kind: "invalid".into(),
            body: body.into(),
        }
    }

    #[test]
    fn counts_come_from_the_cases_and_every_text_is_escaped() {
        let xml = TestSuites::new("s<1>")
            .suite(
                TestSuite::new("t&", 1.5)
                    .case(TestCase::new("c", "pass", Outcome::Pass).took(0.25))
                    .case(TestCase::new("c", "f\"", failure("m<", "b&")))
                    .case(TestCase::new(
                        "c",
                        "e",
                        Outcome::Error {
                            message: "u".into(),
                            kind: "unknown".into(),
                            body: None,
                        },
                    )),
            )
            .to_xml();
        assert_eq!(
            xml,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
             <testsuites name=\"s&lt;1&gt;\" tests=\"3\" failures=\"1\" errors=\"1\">\n  \
             <testsuite name=\"t&amp;\" tests=\"3\" failures=\"1\" errors=\"1\" time=\"1.500\">\n    \
             <testcase classname=\"c\" name=\"pass\" time=\"0.250\"/>\n    \
             <testcase classname=\"c\" name=\"f&quot;\">\n      \
             <failure message=\"m&lt;\" type=\"invalid\">b&amp;</failure>\n    </testcase>\n    \
             <testcase classname=\"c\" name=\"e\">\n      \
             <error message=\"u\" type=\"unknown\"/>\n    </testcase>\n  \
             </testsuite>\n</testsuites>\n"
        );
    }

    #[test]
    fn properties_come_before_the_cases_and_only_when_there_are_any() {
        let bare = TestSuites::new("s")
            .suite(TestSuite::new("t", 0.0))
            .to_xml();
        assert!(!bare.contains("properties"), "{bare}");
        let xml = TestSuites::new("s")
            .suite(
                TestSuite::new("t", 0.0)
                    .property("seed", "5")
                    .case(TestCase::new("c", "n", Outcome::Pass)),
            )
            .to_xml();
        let properties = xml.find("<property name=\"seed\" value=\"5\"/>").unwrap();
        assert!(properties < xml.find("<testcase").unwrap(), "{xml}");
    }
}
