//! Times the linearizability check of EDN histories in-process, on one
//! thread, for the side-by-side benchmark against Porcupine
//! (`checker/benches/porcupine.sh`):
//!
//! ```text
//! cargo run --release -p checker --example timecheck -- <run> <out.tsv> <history.edn>...
//! ```
//!
//! Each history is read once (not timed), checked once as a warm-up, then
//! checked again until 30 ms are spent (at least 5 times, at most 20,000) as
//! a `cas-register` with a nil initial value and nil read as a value (the
//! model of Porcupine's etcd test). The median time of one `check` call —
//! pairing, partitioning, search and result — is appended to `out.tsv` as
//! `run<TAB>history<TAB>valid|invalid|unknown<TAB>median ns<TAB>samples`.
//! It uses only the checker's public API, so the benchmark can build it
//! against an older commit too.

use std::fs::OpenOptions;
use std::hint::black_box;
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use checker::import::{read_history_file, Format};
use checker::linearizable::{check, Options};
use checker::model::{ModelKind, ModelSpec};
use checker::Validity;

const SAMPLE_BUDGET: Duration = Duration::from_millis(30);
const MIN_SAMPLES: usize = 5;
const MAX_SAMPLES: usize = 20_000;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [run, out, files @ ..] = &args[..] else {
        eprintln!("usage: timecheck <run> <out.tsv> <history.edn>...");
        return ExitCode::from(3);
    };
    match time_all(run, Path::new(out), files) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("timecheck: {e}");
            ExitCode::from(4)
        }
    }
}

fn time_all(run: &str, out: &Path, files: &[String]) -> Result<(), String> {
    // Another model (by its command-line name) for profiling other histories.
    let spec = match std::env::var("FAULTLINE_TIMECHECK_MODEL") {
        Ok(name) => ModelSpec::new(name.parse::<ModelKind>()?),
        Err(_) => ModelSpec::new(ModelKind::CasRegister),
    };
    let options = Options {
        threads: 1,
        time_limit: None,
        ..Options::default()
    };
    let mut rows = String::new();
    for file in files {
        let path = Path::new(file);
        let history = read_history_file(path, file.ends_with(".edn").then_some(Format::Edn))
            .map_err(|e| format!("{file}: {e}"))?;
        let once = || check(&history, &spec, &options).map_err(|e| format!("{file}: {e}"));
        let verdict = once()?.valid; // also the warm-up
        let mut samples = Vec::new();
        let mut spent = Duration::ZERO;
        while samples.len() < MAX_SAMPLES && (samples.len() < MIN_SAMPLES || spent < SAMPLE_BUDGET)
        {
            let started = Instant::now();
            black_box(once()?);
            let took = started.elapsed();
            samples.push(took);
            spent += took;
        }
        samples.sort_unstable();
        let name = path
            .file_stem()
            .map_or(file.clone(), |s| s.to_string_lossy().into());
        let verdict = match verdict {
            Validity::Valid => "valid",
            Validity::Invalid => "invalid",
            Validity::Unknown => "unknown",
        };
        rows.push_str(&format!(
            "{run}\t{name}\t{verdict}\t{}\t{}\n",
            samples[samples.len() / 2].as_nanos(),
            samples.len()
        ));
    }
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(out)
        .and_then(|mut f| f.write_all(rows.as_bytes()))
        .map_err(|e| format!("{}: {e}", out.display()))
}
