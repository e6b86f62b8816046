//! A real browser on a real run (part of the end-to-end group; `.ci/run`
//! runs it with `cargo test -p harness --test browser -- --ignored`, after
//! installing `chromium`):
//! - headless Chromium renders `report.html` from disk with the run's
//!   verdict in its banner and every plot, and a screenshot of it is kept;
//! - headless Chromium renders the `faultline serve` index over HTTP with
//!   the run in its table, follows it to the report, and a screenshot of
//!   the index is kept.
//!
//! The run, its store and the screenshots stay in
//! `target/tmp/browser-store/` (CI artifacts): `report-screenshot.png` and
//! `serve-screenshot.png` in the run directory. Every wait is bounded, and
//! each browser and server is killed with its whole process group.

mod support;

use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use support::flags::weak_set_under_primary_isolation;
use support::server::Server;
use support::{faultline, latest_run};

/// Browsers looked for on PATH, in order.
const BROWSERS: [&str; 4] = [
    "chromium",
    "chromium-browser",
    "google-chrome",
    "google-chrome-stable",
];

/// The plots `report.html` embeds, by their `alt` text.
const PLOTS: [&str; 3] = ["latency-raw", "latency-quantiles", "rate"];

/// How long one browser invocation may take.
const BROWSER_LIMIT: Duration = Duration::from_secs(90);

/// The weak design under primary isolation, short: an anomaly is likely
/// but not needed (the tests compare the page with results.json).
fn run_flags() -> Vec<&'static str> {
    let name = ["run", "--name", "browser-set-weak"];
    [&name[..], &weak_set_under_primary_isolation("2s", "6s")].concat()
}

/// The browser on PATH, or a panic that says what to install.
fn browser() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    BROWSERS
        .iter()
        .flat_map(|name| std::env::split_paths(&path).map(move |dir| dir.join(name)))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| {
            panic!(
                "the browser tests need Chromium: none of {} is on PATH \
                 (Debian/Ubuntu: apt-get install -y chromium)",
                BROWSERS.join(", ")
            )
        })
}

/// A finished run: the store and its run directory, made once per test binary.
struct StoredRun {
    store: PathBuf,
    run_dir: PathBuf,
    verdict: String,
}

fn stored_run() -> &'static StoredRun {
    static RUN_ONCE: OnceLock<StoredRun> = OnceLock::new();
    RUN_ONCE.get_or_init(|| {
        let store = Path::new(env!("CARGO_TARGET_TMPDIR")).join("browser-store");
        let _ = std::fs::remove_dir_all(&store);
        let mut run = faultline();
        run.args(run_flags()).arg("--store").arg(&store);
        let log = store.with_extension("log");
        let code = run_bounded(run, &log, Duration::from_secs(120));
        let output = std::fs::read_to_string(&log).unwrap_or_default();
        assert!(
            matches!(code, Some(0 | 1)),
            "faultline run exited {code:?}:\n{output}"
        );
        let run_dir = latest_run(&store);
        let results: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(run_dir.join("results.json")).expect("results.json"),
        )
        .unwrap();
        let verdict = match &results["valid"] {
            serde_json::Value::Bool(true) => "valid",
            serde_json::Value::Bool(false) => "invalid",
            _ => "unknown",
        };
        StoredRun {
            store,
            run_dir,
            verdict: verdict.to_string(),
        }
    })
}

/// Runs `command` in its own process group with stdout and stderr to
/// `log`; kills the group after `limit`. Returns the exit code.
fn run_bounded(mut command: Command, log: &Path, limit: Duration) -> Option<i32> {
    let out = File::create(log).unwrap();
    let mut child = command
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .process_group(0)
        .spawn()
        .unwrap_or_else(|e| panic!("starting {command:?}: {e}"));
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if Instant::now() > deadline {
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    // Whatever it started (a browser's renderers and helpers) goes too.
    let _ = killpg(Pid::from_raw(child.id() as i32), Signal::SIGKILL);
    let _ = child.wait();
    let status = status.unwrap_or_else(|| {
        panic!(
            "{command:?} did not finish within {limit:?}; output in {}",
            log.display()
        )
    });
    status.code()
}

/// Headless Chromium with a fresh profile, on `url`, with `extra` flags;
/// returns what it printed (stdout and stderr).
fn chromium(url: &str, extra: &[String]) -> String {
    let profile = tempfile::tempdir().unwrap();
    let mut command = Command::new(browser());
    command
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-background-networking",
            "--disable-component-update",
            "--no-first-run",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(extra)
        .arg(url);
    let log = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "chromium-{}.out",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    let code = run_bounded(command, &log, BROWSER_LIMIT);
    let output = std::fs::read_to_string(&log).unwrap_or_default();
    let _ = std::fs::remove_file(&log);
    assert_eq!(code, Some(0), "chromium on {url} failed:\n{output}");
    output
}

fn dump_dom(url: &str) -> String {
    chromium(url, &["--dump-dom".to_string()])
}

/// Takes a 1280×2000 screenshot of `url` into `png` and checks it is a PNG
/// of that size with real content.
fn screenshot(url: &str, png: &Path) {
    let _ = std::fs::remove_file(png);
    chromium(
        url,
        &[
            format!("--screenshot={}", png.display()),
            "--window-size=1280,2000".to_string(),
        ],
    );
    let bytes = std::fs::read(png).unwrap_or_else(|e| panic!("{}: {e}", png.display()));
    assert!(
        bytes.starts_with(b"\x89PNG\r\n\x1a\n"),
        "{} is not a PNG",
        png.display()
    );
    let dimension = |at: usize| u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap());
    assert_eq!(
        (dimension(16), dimension(20)),
        (1280, 2000),
        "{}",
        png.display()
    );
    assert!(
        bytes.len() > 20_000,
        "{} is only {} bytes: a blank page?",
        png.display(),
        bytes.len()
    );
    eprintln!("screenshot: {}", png.display());
}

/// `file://` URL of an absolute path (store paths here need no escaping).
fn file_url(path: &Path) -> String {
    format!("file://{}", path.display())
}

#[test]
#[ignore = "e2e: needs chromium; about 20 s; run with --ignored"]
fn headless_chromium_renders_the_report_with_its_verdict_and_plots() {
    browser(); // Say what is missing before spending a run on it.
    let run = stored_run();
    let report = run.run_dir.join("report.html");
    let dom = dump_dom(&file_url(&report));
    assert!(
        dom.contains(&format!("<header class=\"banner {}\">", run.verdict)),
        "no {} banner in the rendered report:\n{dom}",
        run.verdict
    );
    assert!(dom.contains(&format!(
        "<div class=\"verdict\">{}</div>",
        run.verdict.to_uppercase()
    )));
    for plot in PLOTS {
        assert!(
            dom.contains(&format!("<img alt=\"{plot}\" src=\"data:image/png;base64,")),
            "plot {plot} missing from the rendered report"
        );
        assert!(
            dom.contains(&format!("href=\"{plot}.svg\"")),
            "{plot}.svg link"
        );
    }
    screenshot(
        &file_url(&report),
        &run.run_dir.join("report-screenshot.png"),
    );
}

#[test]
#[ignore = "e2e: needs chromium; about 20 s; run with --ignored"]
fn headless_chromium_renders_the_serve_index_with_the_run_and_its_report() {
    browser(); // Say what is missing before spending a run on it.
    let run = stored_run();
    let server = Server::start(&run.store);
    assert!(
        server.url.starts_with("http://127.0.0.1:"),
        "{}",
        server.url
    );
    let dom = dump_dom(&server.url);
    let timestamp = run.run_dir.file_name().unwrap().to_string_lossy();
    assert!(dom.contains("<table id=\"runs\">"), "no runs table:\n{dom}");
    assert!(
        dom.contains(&format!(
            "<tr class=\"run\" data-verdict=\"{}\"><td class=\"name\">browser-set-weak</td>",
            run.verdict
        )),
        "the run is not in the index with verdict {}:\n{dom}",
        run.verdict
    );
    assert!(dom.contains(&format!(
        "href=\"/browser-set-weak/{timestamp}/report.html\""
    )));
    assert!(dom.contains(">one/bully/primary/primary/always<"), "{dom}");

    let report_url = format!("{}browser-set-weak/{timestamp}/report.html", server.url);
    let report = dump_dom(&report_url);
    assert!(
        report.contains(&format!("<header class=\"banner {}\">", run.verdict)),
        "the served report has no {} banner",
        run.verdict
    );
    for plot in PLOTS {
        assert!(report.contains(&format!("<img alt=\"{plot}\"")), "{plot}");
    }
    screenshot(&server.url, &run.run_dir.join("serve-screenshot.png"));
}
