//! Writes a generated benchmark history as JSONL.
//!
//! ```text
//! cargo run --release -p checker --example genhist -- <kind> <seed> <out.jsonl>
//! ```
//!
//! Kinds: `etcd`, `etcd-bad`, `multikey`, `long` (see `checker/benches/gen.rs`).
//! A one-line summary goes to stderr. Write big histories to `/tmp`.

#[path = "../benches/gen.rs"]
mod gen;

use std::fs::File;
use std::process::ExitCode;

use gen::{generate, Kind};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [kind, seed, out] = &args[..] else {
        eprintln!("usage: genhist <etcd|etcd-bad|multikey|long> <seed> <out.jsonl>");
        return ExitCode::from(3);
    };
    let kind: Kind = match kind.parse() {
        Ok(k) => k,
        Err(e) => {
            eprintln!("genhist: {e}");
            return ExitCode::from(3);
        }
    };
    let Ok(seed) = seed.parse::<u64>() else {
        eprintln!("genhist: seed must be a non-negative integer, got {seed:?}");
        return ExitCode::from(3);
    };
    let generated = generate(kind, seed);
    let written = File::create(out).and_then(|f| generated.write_jsonl(f));
    if let Err(e) = written {
        eprintln!("genhist: {out}: {e}");
        return ExitCode::from(5);
    }
    let note = match generated.injected {
        Some(i) => format!("; bad read injected at op {i}"),
        None => String::new(),
    };
    eprintln!("{out}: {kind} seed {seed}: {}{note}", generated.stats());
    ExitCode::SUCCESS
}
