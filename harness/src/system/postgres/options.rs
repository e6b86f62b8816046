//! PostgreSQL's options: flat test keys prefixed `pg-` ([`PostgresOptions`],
//! flattened into the test) and flags of `faultline run` ([`PostgresArgs`]).

use serde::{Deserialize, Serialize};

use crate::system::SystemOption;

/// The isolation level every transaction runs at (PostgreSQL's three; its
/// `read uncommitted` is `read committed`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum PgIsolation {
    /// Each statement sees the data committed before it began.
    ReadCommitted,
    /// The transaction sees one snapshot, taken at its first statement
    /// (snapshot isolation; write skew allowed).
    RepeatableRead,
    /// Serializable snapshot isolation: transactions that could make a
    /// cycle abort with `40001`.
    #[default]
    Serializable,
}

impl PgIsolation {
    /// The level as SQL spells it.
    pub fn sql(self) -> &'static str {
        match self {
            PgIsolation::ReadCommitted => "READ COMMITTED",
            PgIsolation::RepeatableRead => "REPEATABLE READ",
            PgIsolation::Serializable => "SERIALIZABLE",
        }
    }

    /// The consistency model PostgreSQL's documentation promises at this
    /// level, which a run checks when the test names no models: repeatable
    /// read is documented as snapshot isolation, so it is checked as that
    /// (an ANSI repeatable-read check would flag the write skew it allows).
    pub fn promised_model(self) -> &'static str {
        match self {
            PgIsolation::ReadCommitted => "read-committed",
            PgIsolation::RepeatableRead => "snapshot-isolation",
            PgIsolation::Serializable => "serializable",
        }
    }
}

/// How `postgres-ha`'s primary replicates to its standbys.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum PgSync {
    /// Patroni's `synchronous_mode: true` with `synchronous_mode_strict:
    /// true`: a commit waits until one standby (the one Patroni names in
    /// `synchronous_standby_names`) has flushed it, and only that standby
    /// may be promoted; with none reachable, commits wait.
    On,
    /// Asynchronous streaming replication (Patroni's and PostgreSQL's
    /// default): a commit returns once the primary has flushed it.
    #[default]
    Off,
}

/// Which etcd API `postgres-ha`'s Patronis keep their state through.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum PgDcs {
    /// etcd's v2 API (Patroni's `etcd`, python-etcd; etcd with
    /// `--enable-v2`): the leader renews its key with a compare-and-swap
    /// on its own name.
    #[default]
    Etcd2,
    /// etcd's v3 API (Patroni's `etcd3`, over the JSON gateway). In
    /// Patroni 3.0.2 a leader whose key was taken while it was cut off can
    /// write it back unconditionally (fixed in 3.0.3, patroni#2689).
    Etcd3,
}

/// PostgreSQL's options in a test (keys of `--test` files and `test.json`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", default)]
pub struct PostgresOptions {
    /// The isolation level of every transaction.
    pub pg_isolation: PgIsolation,
    /// `postgres-ha`: synchronous replication or not.
    pub pg_sync: PgSync,
    /// `postgres-ha`: the etcd API Patroni uses.
    pub pg_dcs: PgDcs,
}

/// PostgreSQL's flags of `faultline run`; each overrides its key.
#[derive(Clone, Debug, Default, clap::Args)]
pub struct PostgresArgs {
    /// postgres: read-committed, repeatable-read or serializable
    /// [default: serializable].
    #[arg(long, value_enum)]
    pub pg_isolation: Option<PgIsolation>,
    /// postgres-ha: on (Patroni's strict synchronous mode) or off
    /// (asynchronous) [default: off].
    #[arg(long, value_enum)]
    pub pg_sync: Option<PgSync>,
    /// postgres-ha: the etcd API Patroni keeps its state through, etcd2 or
    /// etcd3 [default: etcd2].
    #[arg(long, value_enum)]
    pub pg_dcs: Option<PgDcs>,
}

impl PostgresArgs {
    /// Sets every option given as a flag.
    pub fn apply(self, options: &mut PostgresOptions) {
        if let Some(isolation) = self.pg_isolation {
            options.pg_isolation = isolation;
        }
        if let Some(sync) = self.pg_sync {
            options.pg_sync = sync;
        }
        if let Some(dcs) = self.pg_dcs {
            options.pg_dcs = dcs;
        }
    }
}

/// `--pg-isolation`, as `faultline systems` lists it.
const ISOLATION: SystemOption = SystemOption {
    key: "pg-isolation",
    values: "read-committed|repeatable-read|serializable",
    default: "serializable",
    about: "every transaction's isolation level; checked against the model it promises",
};

/// `postgres`'s options as `faultline systems` lists them.
pub const OPTIONS: [SystemOption; 1] = [ISOLATION];

/// `postgres-ha`'s options as `faultline systems` lists them.
pub const HA_OPTIONS: [SystemOption; 3] = [
    ISOLATION,
    SystemOption {
        key: "pg-sync",
        values: "on|off",
        default: "off",
        about: "Patroni's strict synchronous mode (on) or asynchronous replication (off)",
    },
    SystemOption {
        key: "pg-dcs",
        values: "etcd2|etcd3",
        default: "etcd2",
        about: "the etcd API Patroni keeps its leader key through",
    },
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_spec::{mode_name, TestSpec};

    #[test]
    fn the_listed_default_is_the_real_default() {
        assert_eq!(
            OPTIONS[0].default,
            mode_name(PostgresOptions::default().pg_isolation)
        );
        assert_eq!(
            HA_OPTIONS[1].default,
            mode_name(PostgresOptions::default().pg_sync)
        );
        assert_eq!(
            HA_OPTIONS[2].default,
            mode_name(PostgresOptions::default().pg_dcs)
        );
    }

    #[test]
    fn pg_isolation_is_a_flat_test_key() {
        let spec = TestSpec::from_toml("pg-isolation = \"repeatable-read\"\n").unwrap();
        assert_eq!(spec.postgres.pg_isolation, PgIsolation::RepeatableRead);
        assert!(TestSpec::from_toml("pg-isolation = \"snapshot\"\n").is_err());
    }

    #[test]
    fn each_level_promises_a_model_the_checker_knows() {
        for level in [
            PgIsolation::ReadCommitted,
            PgIsolation::RepeatableRead,
            PgIsolation::Serializable,
        ] {
            let options = checker::txn::TxnOptions {
                consistency_models: vec![level.promised_model().to_string()],
                ..checker::txn::TxnOptions::default()
            };
            assert!(checker::txn::check_list_append(&[], &options).is_ok());
        }
    }
}
