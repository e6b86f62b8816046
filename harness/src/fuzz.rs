//! Entry points of the fuzz target for the test and campaign TOML parsers
//! (`fuzz/`, `cargo +nightly fuzz`) and of the stable test that replays
//! its corpus (`tests/fuzz_replay.rs`): arbitrary bytes, as text, must give
//! a test, a campaign or an error, never a panic.

use crate::campaign::Campaign;
use crate::test_spec::{parse_duration, TestSpec};

/// A test (TOML, then `test.json`'s JSON), validated as `faultline run`
/// does; a campaign; a duration.
pub fn test_spec(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(spec) = TestSpec::from_toml(text) {
        let _ = spec.validate();
        let _ = spec.name();
    }
    if let Ok(spec) = serde_json::from_str::<TestSpec>(text) {
        let _ = spec.validate();
    }
    let _ = Campaign::parse(text, "fuzz-input", "fuzz");
    let _ = parse_duration(text);
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_entry_point_takes_any_bytes() {
        for input in [
            &b""[..],
            b"\xff",
            b"nodes = 0",
            b"time-limit = 1e300",
            b"[[cell]]\n",
        ] {
            super::test_spec(input);
        }
    }
}
