//! Checks generated histories in a loop, for profilers (`perf record`,
//! `valgrind --tool=callgrind`):
//!
//! ```text
//! cargo run --release -p checker --example checkloop -- <kind> <first-seed> <count> <rounds>
//! ```
//!
//! Generates `count` histories of `kind` (seeds `first-seed..`, see
//! `checker/benches/gen.rs`), then checks each of them `rounds` times as a
//! cas-register with a nil initial value, in-process, and prints the verdicts
//! and the mean time per check.

#[path = "../benches/gen.rs"]
mod gen;

use std::hint::black_box;
use std::process::ExitCode;
use std::time::Instant;

use checker::history::Op;
use checker::linearizable::{check, Options};
use checker::model::{ModelKind, ModelSpec};
use checker::Validity;
use gen::{generate, Kind};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let parsed = match &args[..] {
        [kind, first, count, rounds] => (
            kind.parse::<Kind>(),
            first.parse::<u64>(),
            count.parse::<u64>(),
            rounds.parse::<u64>(),
        ),
        _ => {
            eprintln!("usage: checkloop <kind> <first-seed> <count> <rounds>");
            return ExitCode::from(3);
        }
    };
    let (Ok(kind), Ok(first), Ok(count), Ok(rounds)) = parsed else {
        eprintln!("checkloop: bad arguments {args:?}");
        return ExitCode::from(3);
    };
    let histories: Vec<Vec<Op>> = (first..first + count)
        .map(|s| generate(kind, s).history())
        .collect();
    let spec = ModelSpec::new(ModelKind::CasRegister);
    let options = Options {
        time_limit: None,
        ..Options::default()
    };
    let mut verdicts = [0usize; 3];
    let started = Instant::now();
    for round in 0..rounds {
        for h in &histories {
            let v = black_box(check(h, &spec, &options).expect("a well-formed history")).valid;
            if round == 0 {
                verdicts[match v {
                    Validity::Valid => 0,
                    Validity::Invalid => 1,
                    Validity::Unknown => 2,
                }] += 1;
            }
        }
    }
    let per = started.elapsed().as_secs_f64() * 1e6 / (rounds * count).max(1) as f64;
    println!(
        "{kind} seeds {first}..{}: {} valid, {} invalid, {} unknown; {per:.2} µs per check",
        first + count,
        verdicts[0],
        verdicts[1],
        verdicts[2]
    );
    ExitCode::SUCCESS
}
