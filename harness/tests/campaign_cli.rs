//! `faultline campaign` end to end, with real nodes on loopback (short runs
//! of the strong mode without faults, so the outcome is certain):
//! - a campaign whose cells are all met exits 0 and writes campaign.json,
//!   campaign.html and junit.xml, with a run directory per run;
//! - a cell expecting an anomaly the strong mode cannot show is unmet: exit
//!   1, and junit.xml carries the failure;
//! - a bad campaign file is bad input (4) naming the file, cell and line;
//!   a bad flag is a usage error (3).

mod support;

use std::path::Path;
use std::process::Output;

use support::{faultline, stderr, stdout};

fn campaign(dir: &Path, toml: &str, extra: &[&str]) -> Output {
    let file = dir.join("c.toml");
    std::fs::write(&file, toml).unwrap();
    faultline()
        .arg("campaign")
        .arg(&file)
        .arg("--store")
        .arg(dir.join("store"))
        .args(["--seed", "5"])
        .args(extra)
        .output()
        .unwrap()
}

/// The one campaign directory under `store/campaigns/<name>/`.
fn campaign_dir(store: &Path, name: &str) -> std::path::PathBuf {
    let dirs: Vec<_> = std::fs::read_dir(store.join("campaigns").join(name))
        .unwrap()
        .flatten()
        .filter(|e| e.file_type().unwrap().is_dir())
        .map(|e| e.path())
        .collect();
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    dirs[0].clone()
}

const STRONG: &str = "nodes = 3\ntime-limit = \"2s\"\nwrite-concern = \"majority\"\nelection = \"majority\"\nreads = \"linearizable\"\nnemesis = [\"none\"]\nrate = 100\n";

#[test]
fn a_met_campaign_exits_0_and_writes_its_documents() {
    let dir = tempfile::tempdir().unwrap();
    let toml = format!(
        "name = \"ok\"\n[defaults]\n{STRONG}\n[[cell]]\nname = \"strong\"\nruns = 2\nexpect = \"valid\"\nvary = {{ workload = [\"register\", \"set\"] }}\n"
    );
    let out = campaign(dir.path(), &toml, &[]);
    let stdout = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{}", stderr(&out));
    assert!(stdout.contains("every expectation met"), "{stdout}");
    let cdir = campaign_dir(&dir.path().join("store"), "ok");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(cdir.join("campaign.json")).unwrap())
            .unwrap();
    assert_eq!(json["status"], "complete");
    assert_eq!(json["verdict"], "met");
    assert_eq!(json["seed"], 5);
    let cells = json["cells"].as_array().unwrap();
    assert_eq!(cells.len(), 2);
    for cell in cells {
        let runs = cell["runs"].as_array().unwrap();
        assert_eq!(runs.len(), 2);
        for run in runs {
            assert_eq!(run["verdict"], "valid");
            let run_dir = Path::new(run["run_dir"].as_str().unwrap());
            assert!(run_dir.join("report.html").is_file(), "{run_dir:?}");
            assert!(run_dir.join("results.json").is_file(), "{run_dir:?}");
        }
        // Two runs of a cell get different seeds.
        assert_ne!(runs[0]["seed"], runs[1]["seed"]);
    }
    let html = std::fs::read_to_string(cdir.join("campaign.html")).unwrap();
    assert!(html.contains("every expectation met") && html.contains("strong-register"));
    assert_eq!(html.matches("/report.html\">report</a>").count(), 4);
    let junit = std::fs::read_to_string(cdir.join("junit.xml")).unwrap();
    assert_eq!(junit.matches("<testcase ").count(), 2);
    assert!(junit.contains("failures=\"0\" errors=\"0\""), "{junit}");
}

#[test]
fn a_cell_whose_anomaly_never_shows_is_unmet_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let toml = format!(
        "name = \"blind\"\n[defaults]\n{STRONG}\n[[cell]]\nname = \"expects-loss\"\nworkload = \"set\"\nruns = 1\nexpect = [\"lost-write\"]\n"
    );
    let out = campaign(dir.path(), &toml, &[]);
    let stdout = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{}", stderr(&out));
    assert!(stdout.contains("UNMET"), "{stdout}");
    let junit =
        std::fs::read_to_string(campaign_dir(&dir.path().join("store"), "blind").join("junit.xml"))
            .unwrap();
    assert!(
        junit.contains(
            "<failure message=\"expected lost-write; 1 runs of 1: 1 valid, 0 detecting\""
        ),
        "{junit}"
    );
}

#[test]
fn bad_campaign_files_and_flags_say_what_and_where() {
    let dir = tempfile::tempdir().unwrap();
    let out = campaign(
        dir.path(),
        "[[cell]]\nexpect = \"valid\"\n\n[[cell]]\nexpect = [\"lost-writes\"]\n",
        &[],
    );
    let stderr = stderr(&out);
    assert_eq!(out.status.code(), Some(4), "{stderr}");
    assert!(
        stderr.contains("c.toml: cell 2 (line 4)") && stderr.contains("lost-writes"),
        "{stderr}"
    );
    let out = campaign(
        dir.path(),
        "[[cell]]\nexpect = \"valid\"\n",
        &["--runs-per-cell", "zero"],
    );
    assert_eq!(out.status.code(), Some(3));
    let out = campaign(
        dir.path(),
        "[[cell]]\nexpect = \"valid\"\n",
        &["--only", "nothing-like-this"],
    );
    assert_eq!(out.status.code(), Some(3));
    assert!(support::stderr(&out).contains("no cell's name contains"));
    assert!(
        !dir.path().join("store").exists(),
        "nothing is run or stored for a bad campaign"
    );
}
