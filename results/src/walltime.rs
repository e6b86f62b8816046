//! Wall-clock times: the run's start, node-log timestamps, and the mapping
//! between them and history time (ns since the test started).
//!
//! Decisions:
//! - Everything is UTC and Unix nanoseconds (`i64`, so times before the
//!   start map to negative history times instead of wrapping).
//! - A log line's time is its leading RFC 3339 UTC timestamp (what
//!   target-node's tracing writes: `2026-11-26T05:11:05.193038Z  INFO ...`),
//!   or, for the harness's own `== faultline: starting n1 at unix
//!   1764133865.193: ...` header, the Unix seconds it names. Other lines have
//!   no time of their own.

use std::time::{SystemTime, UNIX_EPOCH};

/// Nanoseconds since the Unix epoch of `time` (0 before the epoch, saturating
/// far in the future).
pub fn unix_ns(time: SystemTime) -> u64 {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    u64::try_from(since.as_nanos()).unwrap_or(u64::MAX)
}

/// `unix_ns` as RFC 3339 in UTC to the nanosecond:
/// `2026-11-26T05:11:04.678000123Z`.
pub fn rfc3339(unix_ns: u64) -> String {
    let secs = unix_ns / 1_000_000_000;
    let nanos = unix_ns % 1_000_000_000;
    let (year, month, day) = civil_from_days((secs / 86_400) as i64);
    let of_day = secs % 86_400;
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{nanos:09}Z",
        of_day / 3_600,
        of_day / 60 % 60,
        of_day % 60
    )
}

/// Days since 1970-01-01 of a civil date (proleptic Gregorian).
pub(crate) fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date (year, month, day) of a day count since 1970-01-01; the
/// inverse of [`days_from_civil`].
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Unix ns of `YYYY MM DD hh mm ss` and a fraction of a second in digits.
fn civil_ns(parts: [&str; 6], fraction: &str) -> Option<i64> {
    let n: Vec<i64> = parts
        .iter()
        .map(|p| {
            p.bytes()
                .all(|b| b.is_ascii_digit())
                .then(|| p.parse().ok())
                .flatten()
        })
        .collect::<Option<_>>()?;
    let days = days_from_civil(n[0], n[1], n[2]);
    let secs = days * 86_400 + n[3] * 3_600 + n[4] * 60 + n[5];
    let digits: String = fraction.chars().take(9).collect();
    let frac = if digits.is_empty() {
        0
    } else {
        digits.parse::<i64>().ok()? * 10i64.pow(9 - digits.len() as u32)
    };
    Some(secs * 1_000_000_000 + frac)
}

/// The Unix ns of a run directory's name, `20261126T041503.123Z[-n]` (the
/// moment the directory was made, to the millisecond).
pub fn run_dir_start_ns(name: &str) -> Option<i64> {
    let b = name.get(..20)?;
    if &b[8..9] != "T" || &b[15..16] != "." || &b[19..20] != "Z" {
        return None;
    }
    civil_ns(
        [
            &b[0..4],
            &b[4..6],
            &b[6..8],
            &b[9..11],
            &b[11..13],
            &b[13..15],
        ],
        &b[16..19],
    )
}

/// The Unix ns of a log line (see the module docs), `None` for a line
/// without a time of its own.
pub fn log_line_ns(line: &str) -> Option<i64> {
    if let Some(rest) = line.strip_prefix("== faultline: ") {
        return header_ns(rest);
    }
    let b = line.get(..20)?;
    if &b[4..5] != "-" || &b[7..8] != "-" || &b[10..11] != "T" || &b[13..14] != ":" {
        return None;
    }
    let fraction: String = line[19..]
        .strip_prefix('.')
        .unwrap_or("")
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    let zone = line[19..].trim_start_matches(|c: char| c == '.' || c.is_ascii_digit());
    if !zone.starts_with('Z') {
        return None;
    }
    civil_ns(
        [
            &b[0..4],
            &b[5..7],
            &b[8..10],
            &b[11..13],
            &b[14..16],
            &b[17..19],
        ],
        &fraction,
    )
}

/// `starting n1 at unix 1764133865.193: ...` → its Unix ns.
fn header_ns(rest: &str) -> Option<i64> {
    let (_, after) = rest.split_once(" at unix ")?;
    let number: String = after
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    let (whole, fraction) = number.split_once('.').unwrap_or((&number, ""));
    let secs: i64 = whole.parse().ok()?;
    let digits: String = fraction.chars().take(9).collect();
    let frac = if digits.is_empty() {
        0
    } else {
        digits.parse::<i64>().ok()? * 10i64.pow(9 - digits.len() as u32)
    };
    Some(secs * 1_000_000_000 + frac)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn rfc3339_round_trips_through_the_log_line_parser() {
        let ns = 1_795_669_865_193_038_123u64;
        let text = rfc3339(ns);
        assert_eq!(text, "2026-11-26T05:11:05.193038123Z");
        assert_eq!(log_line_ns(&format!("{text}  INFO n1")), Some(ns as i64));
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(
            rfc3339(unix_ns(UNIX_EPOCH + Duration::from_secs(951_782_400))),
            "2000-02-29T00:00:00.000000000Z"
        );
    }

    #[test]
    fn reads_run_directory_and_log_times() {
        let start = run_dir_start_ns("20261126T051104.678Z").unwrap();
        let line = log_line_ns("2026-11-26T05:11:05.193038Z  INFO n1 following").unwrap();
        assert_eq!(line - start, 515_038_000);
        assert_eq!(run_dir_start_ns("20261126T051104.678Z-1"), Some(start));
        assert_eq!(
            log_line_ns("== faultline: starting n1 at unix 1795669865.193: target-node ..."),
            Some(1_795_669_865_193_000_000)
        );
        assert_eq!(log_line_ns("== faultline: stopping n1"), None);
        assert_eq!(log_line_ns("  at src/main.rs:3"), None);
        assert_eq!(log_line_ns("2026-11-26T05:11:05.193038+01:00 x"), None);
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        for days in [-1, 0, 59, 365, 11_016, 20_418, 100_000] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }
}
