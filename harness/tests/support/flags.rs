//! Flag lists that more than one test binary runs.

/// The asynchronous, bully-elected design with primary reads, under
/// partitions that isolate the primary every `interval`, with the set
/// workload, for `time_limit`: acknowledged writes are likely lost.
pub fn weak_set_under_primary_isolation(
    interval: &'static str,
    time_limit: &'static str,
) -> Vec<&'static str> {
    vec![
        "--workload",
        "set",
        "--nodes",
        "3",
        "--write-concern",
        "one",
        "--election",
        "bully",
        "--reads",
        "primary",
        "--nemesis",
        "partition-primary",
        "--nemesis-interval",
        interval,
        "--time-limit",
        time_limit,
        "--seed",
        "1",
    ]
}
