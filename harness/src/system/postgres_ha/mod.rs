//! PostgreSQL with streaming replication and automatic failover by
//! Patroni (Debian's `postgresql` 15 and `patroni` 3.0, etcd 3.4 as its
//! store) as a system under test: a primary and N−1 hot standbys, cloned
//! and kept by Patroni, asynchronous or (`--pg-sync on`) in Patroni's
//! strict synchronous mode; set, append, rw-register and register
//! workloads over tokio-postgres, clients following the primary.
//!
//! # The cluster
//! Every node is a network namespace of its own (the seam's per-node
//! namespaces, `--net netns` only) running an etcd member, and Patroni with
//! the PostgreSQL it forks, on the node's address. Patroni keeps the leader
//! key in etcd (over its v2 API, `--pg-dcs etcd2`, etcd started with
//! `--enable-v2`; or its v3 API, `--pg-dcs etcd3`, where Patroni 3.0.2
//! may write a key another node took back unconditionally: patroni#2689)
//! with the test's `ttl`; when the leader cannot renew it
//! within `retry_timeout` it demotes its PostgreSQL, and when the key
//! expires the standbys elect one of themselves (in synchronous mode only
//! the synchronous standby may be promoted). faultline never fails over.
//!
//! # Faults
//! - Partitions (every shape): DROP rules between node addresses, cutting
//!   replication, Patroni's traffic and etcd's together; a primary cut off
//!   from the majority loses etcd with it. Clients, on the harness's bridge
//!   address, reach every node throughout.
//! - `kill`, `kill-primary`: SIGKILL of the node's Patroni and every
//!   PostgreSQL process (its etcd member stays); `pause`, `pause-primary`:
//!   SIGSTOP/SIGCONT of both. The primary is the leader most Patronis name.
//! - Never `clock`, `crash`, `slow`, `flaky` (no libfaketime under Patroni's
//!   Python, no crash hook, no `tc netem` on this kernel).
//!
//! # Layout
//! - [`db`]: [`PatroniDb`], the nodes' lifecycle and abilities.
//! - [`patroni`]: Patroni's configuration file and its REST API's view.
//!
//! The client is [`crate::system::postgres::PgClient`] with a
//! [`Target::Primary`]; the options are `postgres`'s
//! ([`crate::system::PostgresOptions`]: `pg-isolation`, `pg-sync`,
//! `pg-dcs`).

pub mod db;
pub mod patroni;

pub use db::{PatroniDb, PatroniDbConfig, PATRONI_BIN};

use super::net::node_namespaces;
use super::postgres::client::{PgClient, Target};
use super::postgres::options::{PgSync, HA_OPTIONS};
use super::{Deployment, System, SystemError, SystemOption};
use crate::client::{BoxFuture, Client};
use crate::system::db::NodeInfo;
use crate::test_spec::{NetBackend, TestSpec};
use crate::workload::WorkloadKind;
use nemesis::Fault;

/// The PostgreSQL-with-Patroni system.
#[derive(Clone, Copy, Debug, Default)]
pub struct PostgresHa;

impl System for PostgresHa {
    fn name(&self) -> &'static str {
        "postgres-ha"
    }

    fn about(&self) -> &'static str {
        "PostgreSQL 15 streaming replication, failover by Patroni over etcd \
         (apt-get install postgresql patroni etcd-server)"
    }

    fn workloads(&self) -> &'static [WorkloadKind] {
        &[
            WorkloadKind::Set,
            WorkloadKind::Append,
            WorkloadKind::RwRegister,
            WorkloadKind::Register,
        ]
    }

    fn faults(&self) -> &'static [Fault] {
        &[
            Fault::Partition,
            Fault::PartitionOne,
            Fault::PartitionPrimary,
            Fault::PartitionHalves,
            Fault::PartitionRing,
            Fault::PartitionBridge,
            Fault::PartitionOneWay,
            Fault::Kill,
            Fault::KillPrimary,
            Fault::Pause,
            Fault::PausePrimary,
        ]
    }

    fn net_backends(&self) -> &'static [NetBackend] {
        &[NetBackend::Netns]
    }

    fn options(&self) -> &'static [SystemOption] {
        &HA_OPTIONS
    }

    /// `postgres-ha-`, the replication mode and the isolation level:
    /// `set-postgres-ha-async-serializable-partition-primary`.
    fn name_part(&self, spec: &TestSpec) -> String {
        let level = crate::test_spec::mode_name(spec.postgres.pg_isolation);
        let sync = match spec.postgres.pg_sync {
            PgSync::On => "sync",
            PgSync::Off => "async",
        };
        format!("postgres-ha-{sync}-{level}")
    }

    fn promised_models(&self, spec: &TestSpec) -> Vec<String> {
        vec![spec.postgres.pg_isolation.promised_model().to_string()]
    }

    fn check(&self, spec: &TestSpec) -> Result<(), String> {
        if spec.db.is_some() {
            return Err("a [db] table of command templates is the custom system's".into());
        }
        if spec.nodes < 2 {
            return Err(format!(
                "postgres-ha needs a primary and a standby at least (--nodes 3), got {}",
                spec.nodes
            ));
        }
        Ok(())
    }

    fn deploy<'a>(
        &'a self,
        spec: &'a TestSpec,
        run: &'a results::RunDir,
        seed: u64,
    ) -> BoxFuture<'a, Result<Deployment, SystemError>> {
        Box::pin(async move {
            let token = format!("faultline-pg-{seed:x}-{}", std::process::id());
            let mut config = PatroniDbConfig::new(spec.nodes, run.path(), token)?;
            config.synchronous = spec.postgres.pg_sync == PgSync::On;
            config.dcs = spec.postgres.pg_dcs;
            let (placement, net) = node_namespaces(spec.nodes)?;
            let db = PatroniDb::new(config, placement)?;
            Ok(Deployment {
                db: Box::new(db),
                net: Some(net),
            })
        })
    }

    /// Worker `worker`'s client: its own node first, then the others in
    /// node order, taking the first that accepts writes.
    fn client(&self, spec: &TestSpec, worker: usize, nodes: &[NodeInfo]) -> Box<dyn Client> {
        let own = worker % nodes.len();
        let order = nodes[own..].iter().chain(&nodes[..own]);
        let targets = order
            .filter_map(|n| db::pg_addr(n).map(|addr| (n.id.clone(), addr)))
            .collect();
        let client = PgClient::to(
            Target::Primary(targets),
            spec.postgres.pg_isolation,
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
        TestSpec::from_toml(&format!("system = \"postgres-ha\"\n{toml}")).unwrap()
    }

    #[test]
    fn postgres_ha_runs_in_node_namespaces_with_a_standby_at_least() {
        let err = spec("nodes = 3\n").validate().unwrap_err().to_string();
        assert!(err.contains("netns"), "{err}");
        let one = spec("nodes = 1\nnet = \"netns\"\n");
        assert!(PostgresHa.check(&one).unwrap_err().contains("--nodes 3"));
        spec("nodes = 3\nnet = \"netns\"\nworkload = \"set\"\nnemesis = [\"partition-primary\"]\n")
            .validate()
            .unwrap();
    }

    #[test]
    fn the_test_name_says_the_replication_mode() {
        let sync = spec("nodes = 3\nnet = \"netns\"\nworkload = \"set\"\npg-sync = \"on\"\n");
        assert_eq!(sync.name(), "set-postgres-ha-sync-serializable-none");
    }
}
