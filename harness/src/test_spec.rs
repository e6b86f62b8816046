//! The test: everything that defines a run, from flags and/or a TOML file.
//!
//! Keys are the long flag names without dashes (docs/DESIGN.md's shared vocabulary):
//! `write-concern = "majority"`, `time-limit = "30s"`. Flags override the
//! file. The resolved test (seed included) is saved as the run's `test.json`,
//! which `--test` reads back as well, so any run can be repeated exactly.
//!
//! `system` names the system under test (`faultline systems`). Its own
//! options are flat keys of the test too: a system's struct of options is
//! flattened in (target-node's modes keep their plain names; other systems'
//! keys carry the system's name as prefix), and the custom system's command
//! templates are the `[db]` table. A test with `[db]` and no `system` key
//! runs the custom system, as before systems had names.

use std::path::{Path, PathBuf};
use std::time::Duration;

use nemesis::Fault;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

pub use crate::client::external::ClientSpec;
pub use crate::system::custom::ExternalSpec;
use crate::system::{TargetNodeOptions, DEFAULT_SYSTEM};
use crate::workload::WorkloadKind;

/// A test, fully resolved.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct TestSpec {
    /// The test's name: the store directory it goes in.
    pub name: Option<String>,
    /// The system under test; `target-node` when not given, `custom` when
    /// not given and there is a `[db]` table ([`TestSpec::system_name`]).
    pub system: Option<String>,
    /// How many nodes.
    pub nodes: usize,
    /// What the clients do.
    pub workload: WorkloadKind,
    /// target-node's options: its modes and `node-bin`.
    #[serde(flatten)]
    pub node: TargetNodeOptions,
    /// etcd's options (`etcd-reads`).
    #[serde(flatten)]
    pub etcd: crate::system::EtcdOptions,
    /// Redis's options (`redis-wait`, `redis-reads`, ...).
    #[serde(flatten)]
    pub redis: crate::system::RedisOptions,
    /// PostgreSQL's options (`pg-isolation`).
    #[serde(flatten)]
    pub postgres: crate::system::PostgresOptions,
    /// Remote hosts, one per node (`hosts`, `ssh-key`, ...); none: here.
    #[serde(flatten)]
    pub remote: crate::remote::RemoteOptions,
    /// Faults to inject (`none` for none).
    pub nemesis: Vec<String>,
    /// Time between fault actions.
    #[serde(with = "duration_text")]
    pub nemesis_interval: Duration,
    /// How network faults are applied.
    pub net: NetBackend,
    /// Client workers.
    pub concurrency: usize,
    /// Target client ops per second (0: as fast as possible).
    pub rate: f64,
    /// Length of the main phase.
    #[serde(with = "duration_text")]
    pub time_limit: Duration,
    /// Keys in use at once (register workload).
    pub keys: usize,
    /// A client call that takes longer completes as `info` (`fail` when it
    /// changes nothing).
    #[serde(with = "duration_text")]
    pub op_timeout: Duration,
    /// The consistency models an append or rw-register history must
    /// satisfy; none given: the models the system promises
    /// ([`TestSpec::with_checked_models`]).
    pub consistency_models: Vec<String>,
    /// The seed; chosen at random and recorded when not given.
    pub seed: Option<u64>,
    /// How many times to run the test.
    pub test_count: usize,
    /// Where runs are stored.
    pub store: PathBuf,
    /// The custom system's command templates (TOML `[db]`). It must speak
    /// target-node's HTTP API for the shipped workloads.
    pub db: Option<ExternalSpec>,
    /// A client program per worker (TOML `[client]`,
    /// docs/client-protocol.md), in place of the system's own clients.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<ClientSpec>,
}

/// How network faults (partitions, slow and flaky links) are applied.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum NetBackend {
    /// A TCP proxy on every directed node-to-node link (no root needed;
    /// also does delay and loss).
    #[default]
    Proxy,
    /// Kernel DROP rules (nft, else iptables) between per-node loopback
    /// addresses, in a private network namespace the run re-executes itself
    /// in (as root, or rootless through a user namespace). Partitions only:
    /// this kernel has no `tc netem`, so `slow` and `flaky` need the proxy.
    Netns,
}

impl Default for TestSpec {
    fn default() -> Self {
        TestSpec {
            name: None,
            system: None,
            nodes: 5,
            workload: WorkloadKind::Register,
            node: TargetNodeOptions::default(),
            etcd: crate::system::EtcdOptions::default(),
            redis: crate::system::RedisOptions::default(),
            postgres: crate::system::PostgresOptions::default(),
            remote: crate::remote::RemoteOptions::default(),
            nemesis: vec!["none".into()],
            nemesis_interval: Duration::from_secs(5),
            net: NetBackend::Proxy,
            concurrency: 10,
            rate: 500.0,
            time_limit: Duration::from_secs(30),
            keys: 10,
            op_timeout: Duration::from_secs(2),
            consistency_models: Vec::new(),
            seed: None,
            test_count: 1,
            store: PathBuf::from("store"),
            db: None,
            client: None,
        }
    }
}

/// A test file or value that does not make a test.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not a valid test.
    #[error("{path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong, and where.
        message: String,
    },
    /// A value is out of range.
    #[error("{0}")]
    Invalid(String),
}

impl TestSpec {
    /// Reads a test from TOML, or from JSON (a run's `test.json`).
    pub fn load(path: &Path) -> Result<TestSpec, SpecError> {
        let text = std::fs::read_to_string(path).map_err(|source| SpecError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let parse = |message: String| SpecError::Parse {
            path: path.to_path_buf(),
            message,
        };
        if text.trim_start().starts_with('{') {
            serde_json::from_str(&text)
                .map_err(|e| parse(format!("line {}, column {}: {e}", e.line(), e.column())))
        } else {
            TestSpec::from_toml(&text).map_err(parse)
        }
    }

    /// Parses a test from TOML. A key the test does not know is named with
    /// its line (serde sees the keys of flattened option structs only once
    /// the whole table is read, past toml's own line numbers).
    pub fn from_toml(text: &str) -> Result<TestSpec, String> {
        let spec: TestSpec = toml::from_str(text).map_err(|e| {
            let message = e.to_string();
            match unknown_key_line(text, e.message()) {
                Some(line) => format!("line {line}: {}", e.message()),
                None => message,
            }
        })?;
        crate::client::external::check(&spec)?;
        Ok(spec)
    }

    /// The system under test: `system`, else `custom` with a `[db]` table,
    /// else `target-node`.
    pub fn system_name(&self) -> &str {
        match (&self.system, &self.db) {
            (Some(system), _) => system,
            (None, Some(_)) => "custom",
            (None, None) => DEFAULT_SYSTEM,
        }
    }

    /// The test with its consistency models filled in, when it names none,
    /// with the ones its system promises (strict serializability, or
    /// PostgreSQL's isolation level's model), as a run checks and records
    /// them.
    pub fn with_checked_models(&self) -> TestSpec {
        let mut spec = self.clone();
        if spec.consistency_models.is_empty() {
            spec.consistency_models = match crate::system::by_name(self.system_name()) {
                Ok(system) => system.promised_models(self),
                Err(_) => vec!["strict-serializable".into()],
            };
        }
        spec
    }

    /// The test's name: given, or made of its workload and modes.
    pub fn name(&self) -> String {
        self.name.clone().unwrap_or_else(|| {
            let modes = match crate::system::by_name(self.system_name()) {
                Ok(system) => system.name_part(self),
                Err(_) => self.node.name_part(),
            };
            format!(
                "{}-{}-{}",
                mode_name(self.workload),
                modes,
                self.nemesis.join("+")
            )
        })
    }

    /// Checks values the types cannot: counts, rates, fault names.
    pub fn validate(&self) -> Result<(), SpecError> {
        let bad = |m: String| Err(SpecError::Invalid(m));
        if !(1..=99).contains(&self.nodes) {
            return bad(format!("nodes must be 1 to 99, got {}", self.nodes));
        }
        if self.concurrency == 0 {
            return bad("concurrency must be at least 1".into());
        }
        if self.keys == 0 {
            return bad("keys must be at least 1".into());
        }
        if !(self.rate == 0.0 || (MIN_RATE..f64::INFINITY).contains(&self.rate)) {
            return bad(format!(
                "rate must be 0 (no limit) or a number of ops per second from {MIN_RATE}, got {}",
                self.rate
            ));
        }
        if self.test_count == 0 {
            return bad("test-count must be at least 1".into());
        }
        if self.time_limit.is_zero() {
            return bad("time-limit must be longer than 0".into());
        }
        if let Err(unknown) = Fault::parse_list(&self.nemesis) {
            return bad(format!(
                "unknown fault {:?} in nemesis; expected one of {}",
                unknown.name,
                Fault::names().collect::<Vec<_>>().join(", ")
            ));
        }
        if self.op_timeout.is_zero() {
            return bad("op-timeout must be longer than 0".into());
        }
        let options = checker::txn::TxnOptions {
            consistency_models: self.with_checked_models().consistency_models,
            ..checker::txn::TxnOptions::default()
        };
        if let Err(e @ checker::txn::TxnError::UnknownModel(_)) =
            checker::txn::check_list_append(&[], &options)
        {
            return bad(format!("consistency-models: {e}"));
        }
        crate::client::external::check(self).map_err(SpecError::Invalid)?;
        let system = crate::system::by_name(self.system_name()).map_err(SpecError::Invalid)?;
        crate::system::check_support(system, self).map_err(SpecError::Invalid)
    }
}

/// The line of `text` where the key an "unknown field `key`" message names
/// is set, if it is one.
fn unknown_key_line(text: &str, message: &str) -> Option<usize> {
    let rest = message.strip_prefix("unknown field `")?;
    let key = &rest[..rest.find('`')?];
    text.lines()
        .position(|line| {
            let line = line.trim_start();
            line.strip_prefix(key)
                .is_some_and(|after| after.trim_start().starts_with('='))
        })
        .map(|index| index + 1)
}

/// A mode's command-line name, e.g. `majority`.
pub fn mode_name<T: clap::ValueEnum>(value: T) -> String {
    value
        .to_possible_value()
        .map_or_else(String::new, |v| v.get_name().to_string())
}

/// Parses docs/DESIGN.md's durations: `30s`, `500ms`, `2m`, `1h`, or a bare number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let n: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration (try 30s, 500ms, 2m or 10)"))?;
    let seconds = match unit {
        "" | "s" => n,
        "ms" => n / 1e3,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        other => {
            return Err(format!(
                "{text:?}: unknown unit {other:?} (use ms, s, m or h)"
            ))
        }
    };
    seconds_duration(seconds).map_err(|e| format!("{text:?}: {e}"))
}

/// The lowest rate other than 0 (no limit): one op per 1000 s.
pub const MIN_RATE: f64 = 0.001;

/// The longest duration faultline takes (a year): longer ones would
/// overflow the clock arithmetic of a run, and no test runs that long.
pub const LONGEST_DURATION: Duration = Duration::from_secs(366 * 24 * 3600);

/// `seconds` as a duration, or why it is none: negative, not a number, or
/// longer than [`LONGEST_DURATION`].
fn seconds_duration(seconds: f64) -> Result<Duration, String> {
    match Duration::try_from_secs_f64(seconds) {
        Ok(d) if d <= LONGEST_DURATION => Ok(d),
        Ok(_) | Err(_) if seconds > 0.0 => Err(format!(
            "{seconds} s is longer than faultline takes (at most {} days)",
            LONGEST_DURATION.as_secs() / 86400
        )),
        _ => Err(format!("{seconds} is not a duration")),
    }
}

/// Writes a duration the way a person would type it.
pub fn format_duration(d: Duration) -> String {
    if d.subsec_millis() == 0 && d.subsec_nanos() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

/// Serde for durations as `"30s"` strings (or bare numbers of seconds).
pub(crate) mod duration_text {
    use super::*;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_duration(*d))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Text {
            Number(f64),
            Text(String),
        }
        match Text::deserialize(d)? {
            Text::Number(n) => seconds_duration(n).map_err(serde::de::Error::custom),
            Text::Text(t) => parse_duration(&t).map_err(serde::de::Error::custom),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_and_ssh_options_are_test_keys_and_left_out_when_local() {
        let spec = TestSpec::from_toml(
            "nodes = 2\nhosts = [\"root@10.0.0.2\", \"10.0.0.3:2222\"]\n\
             ssh-key = \"/k/id\"\nssh-option = [\"StrictHostKeyChecking=no\"]\n",
        )
        .unwrap();
        assert_eq!(spec.remote.hosts.len(), 2);
        assert_eq!(spec.remote.ssh().options, ["StrictHostKeyChecking=no"]);
        spec.validate().unwrap();
        let json = serde_json::to_string(&TestSpec::default()).unwrap();
        assert!(!json.contains("hosts") && !json.contains("ssh"), "{json}");
    }
    use crate::system::WriteConcern;

    #[test]
    fn durations_take_units_or_bare_seconds() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("10"), Ok(Duration::from_secs(10)));
        assert!(parse_duration("ten").is_err());
        assert!(parse_duration("5d").unwrap_err().contains("unknown unit"));
    }

    #[test]
    fn a_duration_too_long_to_hold_is_an_error_not_a_panic() {
        for text in ["99999999999999999999999", "600000000h"] {
            let err = parse_duration(text).unwrap_err();
            assert!(err.contains("longer than faultline takes"), "{text}: {err}");
        }
        let toml = "time-limit = 1e300\n";
        let err = toml::from_str::<TestSpec>(toml).unwrap_err().to_string();
        assert!(err.contains("longer than faultline takes"), "{err}");
        let err = toml::from_str::<TestSpec>("time-limit = -1\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("is not a duration"), "{err}");
        let spec = TestSpec {
            rate: 1e-320,
            ..TestSpec::default()
        };
        assert!(spec
            .validate()
            .unwrap_err()
            .to_string()
            .contains("rate must be"));
    }

    #[test]
    fn a_saved_test_json_reads_back_as_the_same_test() {
        let spec = TestSpec {
            seed: Some(42),
            nemesis_interval: Duration::from_millis(1500),
            ..TestSpec::default()
        };
        let dir = std::env::temp_dir().join(format!("faultline-spec-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("test.json");
        std::fs::write(&path, serde_json::to_string_pretty(&spec).unwrap()).unwrap();
        assert_eq!(TestSpec::load(&path).unwrap(), spec);
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn toml_uses_the_long_flag_names_and_bad_keys_say_where() {
        let spec: TestSpec = TestSpec::from_toml(
            "write-concern = \"one\"\nelection = \"bully\"\ntime-limit = \"10s\"\nnemesis = [\"none\"]\n",
        )
        .unwrap();
        assert_eq!(spec.node.write_concern, WriteConcern::One);
        assert_eq!(spec.time_limit, Duration::from_secs(10));
        let err = TestSpec::from_toml("nodes = 3\nwrite-concerns = \"one\"\n").unwrap_err();
        assert!(err.to_string().contains("write-concerns"), "{err}");
        assert!(err.to_string().contains("line 2"), "{err}");
    }

    #[test]
    fn an_external_system_is_a_db_table_of_command_templates() {
        let spec: TestSpec = toml::from_str(
            "nodes = 3\n[db]\nstart = \"{bin} --id {id} --port {port}\"\nvars = { bin = \"/opt/mydb\" }\n",
        )
        .unwrap();
        let db = spec.db.unwrap();
        assert_eq!(db.start, "{bin} --id {id} --port {port}");
        assert_eq!(db.vars["bin"], "/opt/mydb");
        assert_eq!(db.kill, None);
    }

    #[test]
    fn unknown_faults_are_rejected_with_the_list() {
        let spec = TestSpec {
            nemesis: vec!["meteor".into()],
            ..TestSpec::default()
        };
        let err = spec.validate().unwrap_err().to_string();
        assert!(
            err.contains("meteor") && err.contains("partition-ring"),
            "{err}"
        );
    }

    /// `TestSpec::default()` with seed 42 as `test.json` held it before
    /// systems had names (commit 051d255), and the same with a `[db]` table.
    const OLD_TEST_JSON: &str = r#"{
  "name": null,
  "nodes": 5,
  "workload": "register",
  "write-concern": "majority",
  "election": "majority",
  "reads": "linearizable",
  "topology": "primary",
  "fsync": "always",
  "nemesis": ["none"],
  "nemesis-interval": "5s",
  "net": "proxy",
  "concurrency": 10,
  "rate": 500.0,
  "time-limit": "30s",
  "keys": 10,
  "seed": 42,
  "test-count": 1,
  "store": "store",
  "node-bin": null,
  "db": null
}"#;

    #[test]
    fn a_test_json_written_before_systems_loads_as_the_same_default_test() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("test.json");
        std::fs::write(&path, OLD_TEST_JSON).unwrap();
        let spec = TestSpec::load(&path).unwrap();
        let expected = TestSpec {
            seed: Some(42),
            ..TestSpec::default()
        };
        assert_eq!(spec, expected);
        assert_eq!(spec.system_name(), "target-node");
        assert_eq!(spec.op_timeout, Duration::from_secs(2));
        spec.validate().unwrap();

        let with_db = OLD_TEST_JSON.replace(
            "\"db\": null",
            "\"db\": {\"start\": \"mydb --port {port}\", \"vars\": {}}",
        );
        std::fs::write(&path, with_db).unwrap();
        let spec = TestSpec::load(&path).unwrap();
        assert_eq!(
            spec.system_name(),
            "custom",
            "[db] without system is custom"
        );
        spec.validate().unwrap();
    }

    #[test]
    fn every_cell_of_every_shipped_campaign_names_its_system_and_reads_back() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../campaigns");
        let mut cells = 0;
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            if path.extension().is_none_or(|e| e != "toml") {
                continue;
            }
            let campaign = crate::campaign::Campaign::load(&path).unwrap();
            for cell in campaign.cells {
                cell.test.validate().unwrap();
                // etcd.toml is etcd's, postgres.toml PostgreSQL's; every
                // other campaign the shipped node's.
                let system = match campaign.name.as_str() {
                    "etcd" => "etcd",
                    "redis" => "redis",
                    "postgres" => "postgres",
                    "postgres-ha" => "postgres-ha",
                    _ => "target-node",
                };
                assert_eq!(cell.test.system_name(), system, "{}", cell.name);
                let json = serde_json::to_string(&cell.test).unwrap();
                let back: TestSpec = serde_json::from_str(&json).unwrap();
                assert_eq!(back, cell.test, "{}", cell.name);
                cells += 1;
            }
        }
        assert!(cells > 20, "{cells} cells");
    }

    #[test]
    fn the_system_is_a_key_and_a_db_table_belongs_to_custom() {
        let spec = TestSpec::from_toml("system = \"custom\"\n").unwrap();
        let err = spec.validate().unwrap_err().to_string();
        assert!(err.contains("[db]"), "{err}");
        let spec = TestSpec::from_toml("system = \"target-node\"\n[db]\nstart = \"mydb {port}\"\n")
            .unwrap();
        let err = spec.validate().unwrap_err().to_string();
        assert!(err.contains("custom"), "{err}");
        let spec = TestSpec::from_toml("system = \"no-such-system\"\n").unwrap();
        let err = spec.validate().unwrap_err().to_string();
        assert!(
            err.contains("no-such-system") && err.contains("target-node"),
            "{err}"
        );
    }

    #[test]
    fn op_timeout_and_consistency_models_are_keys_checked_at_validation() {
        let spec = TestSpec::from_toml(
            "op-timeout = \"500ms\"\nconsistency-models = [\"serializable\"]\n",
        )
        .unwrap();
        assert_eq!(spec.op_timeout, Duration::from_millis(500));
        assert_eq!(spec.consistency_models, ["serializable"]);
        spec.validate().unwrap();
        let spec = TestSpec {
            consistency_models: vec!["sequential-ish".into()],
            ..TestSpec::default()
        };
        let err = spec.validate().unwrap_err().to_string();
        assert!(err.contains("sequential-ish"), "{err}");
    }
}
