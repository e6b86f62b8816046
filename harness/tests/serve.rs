//! `faultline serve` as a browser would see it: a real server process on
//! `127.0.0.1:0`, a store built with the library's own types, and raw
//! HTTP/1.1 over a `TcpStream` (a client library would normalize the `..`
//! paths the traversal tests need to send as they are).
//! - the index lists every run with its modes, faults, verdict and anomaly
//!   counts, a run without `results.json` as running or incomplete, and
//!   the campaigns;
//! - the query string filters by verdict and test name and sorts by column;
//! - store files are served with their content types, directories listed;
//! - nothing outside the store is served: `..`, encoded `..`, encoded
//!   separators and symlinks out of the store are refused;
//! - every string from the store is HTML-escaped;
//! - port 0 picks a port and the printed URL names it; SIGTERM stops the
//!   server with exit 0; a bad `--bind` is a usage error (3).

mod support;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use checker::Validity;
use harness::system::{Election, Reads, TargetNodeOptions, WriteConcern};
use harness::test_spec::TestSpec;
use harness::workload::WorkloadKind;
use results::{CheckerResult, Results, RunDir};
use support::faultline;
use support::server::Server;

const WEAK_RUN: &str = "set-weak/20250101T000000.000Z";
const STRONG_RUN: &str = "register-strong/20250102T000000.000Z";
const KILLED_RUN: &str = "register-strong/20250103T000000.000Z";
const HOSTILE_RUN: &str = "x<script>alert(1)&\"q\"/20250104T000000.000Z";
const CAMPAIGN: &str = "campaigns/nightly/20250105T000000.000Z";

/// A store with a weak invalid run (with a real report), a strong valid
/// run, a killed run (no results.json), a run whose name and anomaly kind
/// are markup, a campaign, and two symlinks that point out of the store.
struct Fixture {
    _dir: tempfile::TempDir,
    store: PathBuf,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let outside = dir.path().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("secret.txt"), "SECRET-OUTSIDE-THE-STORE").unwrap();

    let weak = TestSpec {
        name: Some("set-weak".into()),
        nodes: 3,
        workload: WorkloadKind::Set,
        node: TargetNodeOptions {
            write_concern: WriteConcern::One,
            election: Election::Bully,
            reads: Reads::Primary,
            ..TargetNodeOptions::default()
        },
        nemesis: vec!["partition-primary".into()],
        ..TestSpec::default()
    };
    let set_checker = CheckerResult::new(Validity::Invalid)
        .with_anomalies("lost-write", 3)
        .with_anomalies("stale-read", 1);
    let run = new_run(
        &store,
        WEAK_RUN,
        &weak,
        Some(results(&[("set", set_checker)])),
    );
    std::fs::write(run.history_path(), SET_HISTORY).unwrap();
    std::fs::write(run.node_log_path("n1"), "n1 started\n").unwrap();
    results::write_report(run.path()).expect("the report of the weak run");
    symlink(&outside, &run.path().join("outside"));
    symlink(&outside.join("secret.txt"), &store.join("leak.txt"));

    let strong = TestSpec {
        name: Some("register-strong".into()),
        nemesis: vec!["partition".into(), "kill".into()],
        ..TestSpec::default()
    };
    let linearizable = CheckerResult::new(Validity::Valid);
    new_run(
        &store,
        STRONG_RUN,
        &strong,
        Some(results(&[("linearizable", linearizable)])),
    );
    new_run(&store, KILLED_RUN, &strong, None);

    let hostile = CheckerResult::new(Validity::Unknown).with_anomalies("<img src=x>", 2);
    new_run(
        &store,
        HOSTILE_RUN,
        &TestSpec::default(),
        Some(results(&[("<b>", hostile)])),
    );

    std::fs::create_dir_all(store.join(CAMPAIGN)).unwrap();
    std::fs::write(
        store.join(CAMPAIGN).join("campaign.html"),
        "<!DOCTYPE html><title>nightly</title>",
    )
    .unwrap();
    Fixture { _dir: dir, store }
}

/// A set history: two adds acknowledged, a partition, a read missing one.
const SET_HISTORY: &str = r#"{"index":0,"time":1000000,"process":0,"type":"invoke","f":"add","value":1}
{"index":1,"time":2000000,"process":0,"type":"ok","f":"add","value":1,"node":"n1"}
{"index":2,"time":3000000,"process":"nemesis","type":"invoke","f":"partition","value":null}
{"index":3,"time":4000000,"process":"nemesis","type":"info","f":"partition","value":{"n1":["n2","n3"]}}
{"index":4,"time":5000000,"process":1,"type":"invoke","f":"add","value":2}
{"index":5,"time":6000000,"process":1,"type":"ok","f":"add","value":2,"node":"n1"}
{"index":6,"time":7000000,"process":"nemesis","type":"invoke","f":"heal","value":null}
{"index":7,"time":8000000,"process":"nemesis","type":"info","f":"heal","value":null}
{"index":8,"time":9000000,"process":0,"type":"invoke","f":"read","value":null}
{"index":9,"time":10000000,"process":0,"type":"ok","f":"read","value":[1],"node":"n2"}
"#;

fn results(checkers: &[(&str, CheckerResult)]) -> Results {
    let checkers: BTreeMap<String, CheckerResult> = checkers
        .iter()
        .map(|(name, result)| (name.to_string(), result.clone()))
        .collect();
    Results::compose(checkers, Vec::new(), Default::default())
}

fn new_run(store: &Path, relative: &str, spec: &TestSpec, results: Option<Results>) -> RunDir {
    let path = store.join(relative);
    std::fs::create_dir_all(path.join("nodes")).unwrap();
    let run = RunDir::open(&path).unwrap();
    run.write_test_json(&serde_json::to_value(spec).unwrap())
        .unwrap();
    if let Some(results) = results {
        run.write_results(&results).unwrap();
    }
    run
}

fn symlink(target: &Path, link: &Path) {
    std::os::unix::fs::symlink(target, link).unwrap();
}

impl Server {
    fn get(&self, target: &str) -> Response {
        request(self.addr, "GET", target)
    }
}

/// A response, its headers lowercased.
struct Response {
    status: u16,
    headers: String,
    body: Vec<u8>,
}

impl Response {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    fn content_type(&self) -> &str {
        self.headers
            .lines()
            .find_map(|l| l.strip_prefix("content-type:"))
            .map_or("", str::trim)
    }
}

/// One raw HTTP/1.1 request with `target` sent exactly as given.
fn request(addr: SocketAddr, method: &str, target: &str) -> Response {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(10)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    write!(
        stream,
        "{method} {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a complete response head");
    let head = String::from_utf8_lossy(&raw[..split]).to_lowercase();
    assert!(
        !head.contains("transfer-encoding: chunked"),
        "this helper reads sized bodies only:\n{head}"
    );
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {head}"));
    Response {
        status,
        headers: head,
        body: raw[split + 4..].to_vec(),
    }
}

/// The test names of the index's run rows, in page order.
fn row_names(page: &str) -> Vec<String> {
    page.split("<tr class=\"run\"")
        .skip(1)
        .map(|row| {
            let start = row.find("<td class=\"name\">").unwrap() + "<td class=\"name\">".len();
            row[start..][..row[start..].find("</td>").unwrap()].to_string()
        })
        .collect()
}

/// The index's run row for the test named `name` (escaped as in the page).
fn row_of<'a>(page: &'a str, name: &str) -> &'a str {
    let cell = page
        .find(&format!("<td class=\"name\">{name}</td>"))
        .unwrap_or_else(|| panic!("no row for {name} in\n{page}"));
    let start = page[..cell].rfind("<tr").unwrap();
    &page[start..][..page[start..].find("</tr>").unwrap()]
}

#[test]
fn index_lists_every_run_with_modes_faults_verdict_and_anomaly_counts() {
    let fixture = fixture();
    let server = Server::start(&fixture.store);
    let index = server.get("/");
    assert_eq!(index.status, 200);
    assert!(index.content_type().starts_with("text/html"));
    let page = index.text();
    assert!(page.contains("4 of 4 runs shown"), "{page}");

    let weak = row_of(&page, "set-weak");
    assert!(weak.contains("data-verdict=\"invalid\""), "{weak}");
    assert!(
        weak.contains(">one/bully/primary/primary/always<"),
        "{weak}"
    );
    assert!(weak.contains(">set<") && weak.contains(">partition-primary<"));
    assert!(weak.contains(">lost-write 3<") && weak.contains(">stale-read 1<"));
    assert!(weak.contains("2025-01-01 00:00:00.000 UTC"), "{weak}");
    assert!(
        weak.contains(&format!("href=\"/{WEAK_RUN}/report.html\"")),
        "{weak}"
    );

    let newest_first = row_names(&page);
    assert_eq!(
        newest_first[1..],
        ["register-strong", "register-strong", "set-weak"]
    );
    assert!(page.contains("data-verdict=\"valid\""));
    assert!(
        page.contains("data-verdict=\"incomplete\""),
        "a run without results.json is listed as incomplete"
    );
    assert!(page.contains(">majority/majority/linearizable/primary/always<"));
    assert!(page.contains(">partition,kill<"));

    let campaigns = &page[page.find("id=\"campaigns\"").expect("a campaigns table")..];
    assert!(campaigns.contains(">nightly<"), "{campaigns}");
    assert!(campaigns.contains(&format!("href=\"/{CAMPAIGN}/campaign.html\"")));
    let campaign = server.get(&format!("/{CAMPAIGN}/campaign.html"));
    assert_eq!(campaign.status, 200);
}

#[test]
fn index_filters_by_verdict_and_by_part_of_the_test_name() {
    let fixture = fixture();
    let server = Server::start(&fixture.store);
    let invalid = server.get("/?verdict=invalid").text();
    assert_eq!(row_names(&invalid), ["set-weak"]);
    assert!(invalid.contains("<option value=\"invalid\" selected>"));
    let incomplete = server.get("/?verdict=incomplete&test=").text();
    assert_eq!(row_names(&incomplete), ["register-strong"]);
    assert!(row_of(&incomplete, "register-strong").contains("20250103T000000.000Z"));
    let register = server.get("/?test=REGISTER").text();
    assert_eq!(row_names(&register), ["register-strong", "register-strong"]);
    let both = server.get("/?verdict=valid&test=strong").text();
    assert_eq!(row_names(&both), ["register-strong"]);
    assert!(both.contains("1 of 4 runs shown"));
    let none = server.get("/?test=nothing-matches").text();
    assert!(row_names(&none).is_empty() && none.contains("no runs"));

    let bogus = server.get("/?verdict=broken");
    assert_eq!(bogus.status, 400);
    assert!(
        bogus.text().contains("verdict must be one of"),
        "{}",
        bogus.text()
    );
    assert_eq!(server.get("/?sort=colour").status, 400);
}

#[test]
fn index_sorts_by_the_column_and_order_asked_for() {
    let fixture = fixture();
    let server = Server::start(&fixture.store);
    let names = |query: &str| row_names(&server.get(query).text());
    let by_name = names("/?sort=name&order=asc");
    assert_eq!(
        by_name[..3],
        ["register-strong", "register-strong", "set-weak"]
    );
    assert!(by_name[3].starts_with("x&lt;script"));
    let by_name_desc = names("/?sort=name&order=desc");
    assert_eq!(by_name_desc[0], by_name[3]);
    assert_eq!(by_name_desc[3], "register-strong");
    let oldest_first = names("/?sort=time&order=asc");
    assert_eq!(
        oldest_first[..3],
        ["set-weak", "register-strong", "register-strong"]
    );
    let most_anomalies = names("/?sort=anomalies");
    assert_eq!(most_anomalies[0], "set-weak", "4 anomalies beat 2");
    let by_verdict = names("/?sort=verdict&order=asc");
    assert_eq!(
        by_verdict[..2],
        ["register-strong", "set-weak"],
        "incomplete < invalid"
    );

    // The header links flip the order of the column sorted by and keep the filter.
    let page = server.get("/?sort=name&order=asc&test=reg").text();
    assert!(
        page.contains("href=\"?verdict=&amp;test=reg&amp;sort=name&amp;order=desc\""),
        "{page}"
    );
}

#[test]
fn store_files_are_served_with_their_content_types_and_directories_are_listed() {
    let fixture = fixture();
    let server = Server::start(&fixture.store);
    let report = server.get(&format!("/{WEAK_RUN}/report.html"));
    assert_eq!(report.status, 200);
    assert!(report.content_type().starts_with("text/html"));
    assert!(
        report.text().contains("latency-raw"),
        "the report shows its plots"
    );

    let cases = [
        ("latency-raw.png", "image/png"),
        ("rate.svg", "image/svg+xml"),
        ("results.json", "application/json"),
        ("test.json", "application/json"),
        ("history.jsonl", "text/plain; charset=utf-8"),
        ("nodes/n1.log", "text/plain; charset=utf-8"),
        ("timeline.html", "text/html"),
    ];
    for (file, content_type) in cases {
        let response = server.get(&format!("/{WEAK_RUN}/{file}"));
        assert_eq!(response.status, 200, "{file}");
        assert_eq!(response.content_type(), content_type, "{file}");
        let on_disk = std::fs::read(fixture.store.join(WEAK_RUN).join(file)).unwrap();
        assert_eq!(response.body, on_disk, "{file} is served as it is on disk");
    }
    let junit = server.get(&format!("/{WEAK_RUN}/junit.xml"));
    assert_eq!(junit.status, 200);
    assert!(
        junit.content_type().ends_with("/xml"),
        "{}",
        junit.content_type()
    );
    assert!(server
        .get(&format!("/{WEAK_RUN}/rate.png"))
        .body
        .starts_with(b"\x89PNG"));

    let listing = server.get(&format!("/{WEAK_RUN}/"));
    assert_eq!(listing.status, 200);
    let listing = listing.text();
    assert!(listing.contains("href=\"report.html\"") && listing.contains("href=\"nodes/\""));
    let redirect = server.get(&format!("/{WEAK_RUN}"));
    assert_eq!(
        redirect.status, 308,
        "a directory without its slash redirects"
    );
    assert!(redirect
        .headers
        .contains(&format!("location: /{}/", WEAK_RUN.to_lowercase())));

    assert_eq!(server.get("/set-weak/nope.html").status, 404);
    assert_eq!(request(server.addr, "HEAD", "/").status, 200);
    let post = request(server.addr, "POST", &format!("/{WEAK_RUN}/results.json"));
    assert_eq!(post.status, 405, "the view is read-only");
    assert_eq!(request(server.addr, "DELETE", "/").status, 405);
}

#[test]
fn paths_that_escape_the_store_are_refused() {
    let fixture = fixture();
    let server = Server::start(&fixture.store);
    let refused = [
        "/../outside/secret.txt",
        "/../../../../etc/passwd",
        "/set-weak/../../outside/secret.txt",
        "/%2e%2e/outside/secret.txt",
        "/%2E%2E/%2E%2E/etc/passwd",
        "/.%2e/outside/secret.txt",
        "/%2e%2e%2foutside%2fsecret.txt",
        "/..%5coutside%5csecret.txt",
        "/%2Fetc%2Fpasswd",
        "http://127.0.0.1/../outside/secret.txt",
    ];
    for target in refused {
        let response = server.get(target);
        assert!(
            matches!(response.status, 400 | 404),
            "{target}: {} {}",
            response.status,
            response.text()
        );
        assert!(!response.text().contains("SECRET"), "{target} leaked");
        assert!(!response.text().contains("root:"), "{target} leaked");
    }
    assert_eq!(server.get("/../outside/secret.txt").status, 400);
    assert_eq!(server.get("/%2e%2e/outside/secret.txt").status, 400);

    // Symlinks that point out of the store are as good as missing.
    for target in ["/leak.txt", &format!("/{WEAK_RUN}/outside/secret.txt")] {
        let response = server.get(target);
        assert_eq!(response.status, 404, "{target}");
        assert!(!response.text().contains("SECRET"), "{target} leaked");
    }
    // The raw request really reaches the server with its `..` (the same
    // file inside the store is served).
    assert_eq!(server.get(&format!("/{WEAK_RUN}/test.json")).status, 200);
}

#[test]
fn strings_from_the_store_are_html_escaped() {
    let fixture = fixture();
    let server = Server::start(&fixture.store);
    let page = server.get("/").text();
    assert!(!page.contains("<script>"), "{page}");
    assert!(!page.contains("<img src=x>"), "{page}");
    let row = row_of(&page, "x&lt;script&gt;alert(1)&amp;&quot;q&quot;");
    assert!(row.contains(">&lt;img src=x&gt; 2<"), "{row}");
    assert!(row.contains("data-verdict=\"unknown\""), "{row}");
    assert!(
        row.contains("href=\"/x%3Cscript%3Ealert%281%29%26%22q%22/20250104T000000.000Z/\""),
        "{row}"
    );
    let store = fixture.store.to_string_lossy().to_string();
    assert!(page.contains(&store), "the page names the store");
}

#[test]
fn a_run_without_results_is_running_while_its_harness_lives_and_incomplete_after() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let spec = TestSpec::default();
    let live = new_run(&store, "live/20250101T000000.000Z", &spec, None);
    harness::cleanup::RunState {
        harness_pid: std::process::id(),
        ..Default::default()
    }
    .write(live.path())
    .unwrap();
    let mut exited = std::process::Command::new("true").spawn().unwrap();
    let dead_pid = exited.id();
    exited.wait().unwrap();
    let killed = new_run(&store, "killed/20250102T000000.000Z", &spec, None);
    harness::cleanup::RunState {
        harness_pid: dead_pid,
        ..Default::default()
    }
    .write(killed.path())
    .unwrap();
    let broken = new_run(&store, "broken/20250103T000000.000Z", &spec, None);
    std::fs::write(broken.results_json_path(), "{\"valid\": tr").unwrap();

    let server = Server::start(&store);
    let page = server.get("/").text();
    assert!(row_of(&page, "live").contains("data-verdict=\"running\""));
    assert!(row_of(&page, "killed").contains("data-verdict=\"incomplete\""));
    let broken = row_of(&page, "broken");
    assert!(broken.contains("data-verdict=\"incomplete\""), "{broken}");
    assert!(
        broken.contains("results.json"),
        "the reason is kept: {broken}"
    );
    assert_eq!(row_names(&server.get("/?verdict=running").text()), ["live"]);
}

#[test]
fn a_missing_store_shows_an_empty_index() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("not-yet"));
    let index = server.get("/");
    assert_eq!(index.status, 200);
    assert!(index.text().contains("0 of 0 runs shown"));
    assert!(index.text().contains("no campaigns"));
    assert_eq!(server.get("/anything").status, 404);
}

#[test]
fn sigterm_stops_the_server_with_exit_0() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path());
    assert_ne!(server.addr.port(), 0, "port 0 picks a real port");
    assert!(server.addr.ip().is_loopback(), "binds 127.0.0.1 by default");
    assert_eq!(server.get("/").status, 200);
    assert_eq!(server.terminate(), Some(0));
}

#[test]
fn a_bad_bind_address_or_port_is_a_usage_error() {
    for args in [["--bind", "not-an-address"], ["--port", "70000"]] {
        let out = faultline().arg("serve").args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(3), "{args:?}");
    }
}
