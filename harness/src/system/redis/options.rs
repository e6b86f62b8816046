//! Redis's options: flat test keys prefixed with its name
//! ([`RedisOptions`], flattened into the test) and flags of `faultline run`
//! ([`RedisArgs`]).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::system::SystemOption;
use crate::test_spec::{duration_text, parse_duration};

/// Where the clients' reads go.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum RedisReads {
    /// To the primary Sentinel names (where the writes go).
    #[default]
    Primary,
    /// To the worker's own node, replica or not: asynchronous replication
    /// makes them stale.
    Replica,
}

/// Redis's options in a test (keys of `--test` files and `test.json`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", default)]
pub struct RedisOptions {
    /// How many Sentinels, the first beside `n1`, the next beside `n2`, ...
    pub redis_sentinels: usize,
    /// After each write, `WAIT N`: a write fewer than N replicas
    /// acknowledged in time is `info` (0: no WAIT).
    pub redis_wait: usize,
    /// The primaries' `min-replicas-to-write` (0: off).
    pub redis_min_replicas: usize,
    /// Where reads go.
    pub redis_reads: RedisReads,
    /// Sentinel's `down-after-milliseconds`: how long a node may not answer
    /// before a Sentinel thinks it down.
    #[serde(with = "duration_text")]
    pub redis_down_after: Duration,
    /// Sentinel's `failover-timeout`.
    #[serde(with = "duration_text")]
    pub redis_failover_timeout: Duration,
}

impl Default for RedisOptions {
    fn default() -> Self {
        RedisOptions {
            redis_sentinels: 3,
            redis_wait: 0,
            redis_min_replicas: 0,
            redis_reads: RedisReads::Primary,
            redis_down_after: Duration::from_secs(2),
            redis_failover_timeout: Duration::from_secs(6),
        }
    }
}

/// Redis's flags of `faultline run`; each overrides its key.
#[derive(Clone, Debug, Default, clap::Args)]
pub struct RedisArgs {
    /// Redis: Sentinels, each beside one node [default: 3].
    #[arg(long)]
    pub redis_sentinels: Option<usize>,
    /// Redis: `WAIT N` after each write; fewer acks make it info [default: 0].
    #[arg(long)]
    pub redis_wait: Option<usize>,
    /// Redis: the primaries' min-replicas-to-write [default: 0].
    #[arg(long)]
    pub redis_min_replicas: Option<usize>,
    /// Redis: reads to the primary or the worker's own node [default: primary].
    #[arg(long, value_enum)]
    pub redis_reads: Option<RedisReads>,
    /// Redis: Sentinel's down-after-milliseconds [default: 2s].
    #[arg(long, value_parser = parse_duration)]
    pub redis_down_after: Option<Duration>,
    /// Redis: Sentinel's failover-timeout [default: 6s].
    #[arg(long, value_parser = parse_duration)]
    pub redis_failover_timeout: Option<Duration>,
}

impl RedisArgs {
    /// Sets every option given as a flag.
    pub fn apply(self, options: &mut RedisOptions) {
        macro_rules! set {
            ($($field:ident),*) => {
                $(if let Some(v) = self.$field { options.$field = v; })*
            };
        }
        set!(
            redis_sentinels,
            redis_wait,
            redis_min_replicas,
            redis_reads,
            redis_down_after,
            redis_failover_timeout
        );
    }
}

/// The options as `faultline systems` lists them.
pub const OPTIONS: [SystemOption; 6] = [
    SystemOption {
        key: "redis-sentinels",
        values: "N",
        default: "3",
        about: "Sentinels, each beside (and partitioned with) one node",
    },
    SystemOption {
        key: "redis-wait",
        values: "N",
        default: "0",
        about: "WAIT N after each write (fewer acks: info)",
    },
    SystemOption {
        key: "redis-min-replicas",
        values: "N",
        default: "0",
        about: "min-replicas-to-write of the primary",
    },
    SystemOption {
        key: "redis-reads",
        values: "primary|replica",
        default: "primary",
        about: "reads from the primary, or the worker's own node",
    },
    SystemOption {
        key: "redis-down-after",
        values: "DURATION",
        default: "2s",
        about: "Sentinel's down-after-milliseconds",
    },
    SystemOption {
        key: "redis-failover-timeout",
        values: "DURATION",
        default: "6s",
        about: "Sentinel's failover-timeout",
    },
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_spec::{format_duration, mode_name, TestSpec};

    #[test]
    fn the_listed_defaults_are_the_real_defaults() {
        let d = RedisOptions::default();
        let real = [
            d.redis_sentinels.to_string(),
            d.redis_wait.to_string(),
            d.redis_min_replicas.to_string(),
            mode_name(d.redis_reads),
            format_duration(d.redis_down_after),
            format_duration(d.redis_failover_timeout),
        ];
        for (option, value) in OPTIONS.iter().zip(real) {
            assert_eq!(option.default, value, "{}", option.key);
        }
    }

    #[test]
    fn redis_options_are_flat_test_keys() {
        let toml = "redis-wait = 2\nredis-reads = \"replica\"\nredis-down-after = \"500ms\"\n";
        let spec = TestSpec::from_toml(toml).unwrap();
        assert_eq!(spec.redis.redis_wait, 2);
        assert_eq!(spec.redis.redis_reads, RedisReads::Replica);
        assert_eq!(spec.redis.redis_down_after, Duration::from_millis(500));
        assert_eq!(spec.redis.redis_sentinels, 3);
        assert!(TestSpec::from_toml("redis-reads = \"any\"\n").is_err());
    }
}
