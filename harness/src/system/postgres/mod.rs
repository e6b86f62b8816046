//! PostgreSQL (15, Debian's `postgresql`) as a system under test: one
//! server of our own, `initdb`ed into the run directory and started from
//! `/usr/lib/postgresql/15/bin/postgres` on a loopback port, with the
//! append, rw-register and register workloads over tokio-postgres, every
//! transaction at the test's isolation level (`--pg-isolation`), checked by
//! default against the model that level promises
//! ([`PgIsolation::promised_model`]).
//!
//! # Faults
//! - `kill` (SIGKILL of the postmaster and every backend; restarted on the
//!   same data dir, it runs crash recovery), `pause` (SIGSTOP/SIGCONT of
//!   every process of the server).
//! - `clock`, through libfaketime (`apt-get install libfaketime`): the
//!   server runs with it preloaded (only when the test has clock faults)
//!   and its wall clock (`now()`, `clock_timestamp()`) is shifted through
//!   a timestamp file; monotonic time is left alone. Nothing our workloads
//!   do reads the clock, so a correct server shrugs clock faults off.
//! - No partitions, `slow` or `flaky`: one server has no peers to cut off
//!   (streaming replication is the next step).
//!
//! # Layout
//! - [`db`]: [`PostgresDb`], the server's lifecycle and abilities.
//! - [`launch`]: how `initdb` and `postgres` are run: the unprivileged user
//!   and the namespaces that leave nothing behind.
//! - [`client`]: [`PgClient`], a worker's client and the definite or
//!   indefinite rule of its errors.
//! - [`options`]: [`PostgresOptions`] (test keys) and [`PostgresArgs`]
//!   (flags).

pub mod client;
pub mod db;
pub mod launch;
pub mod options;

pub use client::PgClient;
pub use db::{PostgresConfig, PostgresDb};
pub use options::{PgIsolation, PgSync, PostgresArgs, PostgresOptions};

use super::{Deployment, System, SystemError, SystemOption};
use crate::client::{BoxFuture, Client};
use crate::system::db::{DbError, NodeInfo};
use crate::test_spec::{NetBackend, TestSpec};
use crate::workload::WorkloadKind;
use nemesis::Fault;

/// The PostgreSQL system.
#[derive(Clone, Copy, Debug, Default)]
pub struct Postgres;

impl System for Postgres {
    fn name(&self) -> &'static str {
        "postgres"
    }

    fn about(&self) -> &'static str {
        "one PostgreSQL 15 server from /usr/lib/postgresql/15/bin (apt-get install postgresql)"
    }

    fn workloads(&self) -> &'static [WorkloadKind] {
        &[
            WorkloadKind::Append,
            WorkloadKind::RwRegister,
            WorkloadKind::Register,
        ]
    }

    fn faults(&self) -> &'static [Fault] {
        &[Fault::Kill, Fault::Pause, Fault::Clock]
    }

    fn net_backends(&self) -> &'static [NetBackend] {
        &[NetBackend::Proxy]
    }

    fn options(&self) -> &'static [SystemOption] {
        &options::OPTIONS
    }

    /// `postgres-` and the isolation level: `append-postgres-serializable-none`.
    fn name_part(&self, spec: &TestSpec) -> String {
        let level = crate::test_spec::mode_name(spec.postgres.pg_isolation);
        format!("postgres-{level}")
    }

    fn promised_models(&self, spec: &TestSpec) -> Vec<String> {
        vec![spec.postgres.pg_isolation.promised_model().to_string()]
    }

    fn check(&self, spec: &TestSpec) -> Result<(), String> {
        if spec.db.is_some() {
            return Err("a [db] table of command templates is the custom system's".into());
        }
        if spec.postgres.pg_sync == PgSync::On {
            return Err(
                "--pg-sync is for replication: --system postgres-ha (postgres is one server)"
                    .into(),
            );
        }
        if spec.nodes != 1 {
            return Err(format!(
                "postgres runs one server: nodes must be 1 (--nodes 1), got {}",
                spec.nodes
            ));
        }
        Ok(())
    }

    fn deploy<'a>(
        &'a self,
        spec: &'a TestSpec,
        run: &'a results::RunDir,
        _seed: u64,
    ) -> BoxFuture<'a, Result<Deployment, SystemError>> {
        Box::pin(async move {
            let mut config = PostgresConfig::new(run.path())?;
            let faults = Fault::parse_list(&spec.nemesis).unwrap_or_default();
            if faults.contains(&Fault::Clock) {
                let library = super::custom::libfaketime().ok_or_else(|| {
                    DbError::Config(
                        "clock faults on postgres need libfaketime (apt-get install libfaketime)"
                            .into(),
                    )
                })?;
                config.faketime = Some(library);
            }
            Ok(Deployment {
                db: Box::new(PostgresDb::new(config)?),
                net: None,
            })
        })
    }

    fn client(&self, spec: &TestSpec, _worker: usize, nodes: &[NodeInfo]) -> Box<dyn Client> {
        let node = &nodes[0];
        let isolation = spec.postgres.pg_isolation;
        let client = PgClient::new(
            node.port,
            &node.id,
            isolation,
            spec.workload,
            spec.op_timeout,
        );
        Box::new(client.timed(spec.op_timeout))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(toml: &str) -> TestSpec {
        TestSpec::from_toml(toml).unwrap()
    }

    #[test]
    fn a_run_checks_the_model_its_isolation_level_promises_unless_told_otherwise() {
        let rr = spec("system = \"postgres\"\nnodes = 1\npg-isolation = \"repeatable-read\"\n");
        assert_eq!(
            rr.with_checked_models().consistency_models,
            ["snapshot-isolation"]
        );
        let told = spec(
            "system = \"postgres\"\nnodes = 1\npg-isolation = \"repeatable-read\"\n\
             consistency-models = [\"serializable\"]\n",
        );
        assert_eq!(
            told.with_checked_models().consistency_models,
            ["serializable"]
        );
        let default = spec("system = \"postgres\"\nnodes = 1\n");
        assert_eq!(
            default.with_checked_models().consistency_models,
            ["serializable"]
        );
        let etcd = spec("system = \"etcd\"\n");
        assert_eq!(
            etcd.with_checked_models().consistency_models,
            ["strict-serializable"]
        );
        assert_eq!(rr.name(), "register-postgres-repeatable-read-none");
    }

    #[test]
    fn postgres_runs_one_server_and_no_partitions() {
        let five = spec("system = \"postgres\"\nnodes = 5\n");
        let err = five.validate().unwrap_err().to_string();
        assert!(err.contains("--nodes 1"), "{err}");
        let partition = spec("system = \"postgres\"\nnodes = 1\nnemesis = [\"partition\"]\n");
        let err = partition.validate().unwrap_err().to_string();
        assert!(err.contains("partition") && err.contains("kill"), "{err}");
        spec("system = \"postgres\"\nnodes = 1\nnemesis = [\"kill\", \"pause\", \"clock\"]\n")
            .validate()
            .unwrap();
    }
}
