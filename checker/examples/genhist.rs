//! Writes a generated benchmark history as JSONL.
//!
//! ```text
//! cargo run --release -p checker --example genhist -- <kind> <seed> <out.jsonl>
//! cargo run --release -p checker --example genhist -- multikey <seed> <out.jsonl> <ops> <keys>
//! ```
//!
//! Kinds: `etcd`, `etcd-bad`, `etcd-bad-any`, `multikey`, `long` (see
//! `checker/benches/gen.rs`). `multikey` takes an optional size: `ops` ops
//! over `keys` keys (default 1,000,000 over 1,000), e.g. `10000000 10000`.
//! A one-line summary goes to stderr. Write big histories to `/tmp`.

#[path = "../benches/gen.rs"]
mod gen;

use std::fs::File;
use std::process::ExitCode;

use gen::{generate, generate_multikey, Kind};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (kind, seed, out, size) = match &args[..] {
        [kind, seed, out] => (kind, seed, out, None),
        [kind, seed, out, ops, keys] if kind == "multikey" => {
            match (ops.parse::<usize>(), keys.parse::<u32>()) {
                (Ok(ops), Ok(keys)) if keys > 0 => (kind, seed, out, Some((ops, keys))),
                _ => {
                    eprintln!(
                        "genhist: ops and keys must be positive integers, got {ops:?} {keys:?}"
                    );
                    return ExitCode::from(3);
                }
            }
        }
        _ => {
            eprintln!("usage: genhist <etcd|etcd-bad|etcd-bad-any|multikey|long> <seed> <out.jsonl>\n       genhist multikey <seed> <out.jsonl> <ops> <keys>");
            return ExitCode::from(3);
        }
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
    let generated = match size {
        Some((ops, keys)) => generate_multikey(seed, ops, keys),
        None => generate(kind, seed),
    };
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
