//! Redis (7.0, Debian's `redis-server` and `redis-sentinel`) with Sentinel
//! as a system under test: a primary and N−1 replicas (asynchronous
//! replication), Sentinels that fail over to a replica when the primary
//! stops answering, the set, register and append workloads over the `redis`
//! crate.
//!
//! # Faults
//! - `kill`, `kill-primary` (SIGKILL of the node's Redis; restarted on its
//!   data dir and its config file as last rewritten), `pause`,
//!   `pause-primary` (SIGSTOP/SIGCONT); the primary is the node most
//!   Sentinels name. A node's Sentinel is neither killed nor paused with it.
//! - Partitions (every shape) with `--net netns`: after a failover Sentinel
//!   hands every replica the one address of the new primary, so per-link
//!   proxies cannot follow; every node runs in a network namespace of its
//!   own (the seam's per-node namespaces) with its Sentinel beside it, and
//!   a partition is DROP rules between node addresses, cutting replication
//!   and Sentinel traffic alike. Clients, on the harness's bridge address,
//!   reach every node and Sentinel throughout. Without `--net netns`
//!   partitions are refused.
//! - Never `clock`: libfaketime cannot be preloaded into Debian's Redis,
//!   which is linked with jemalloc — the server aborts at start ("libfaketime:
//!   Cannot recover from unexpected recursive calls to clock_gettime()").
//! - Never `crash`: Redis has no self-crash hook; `kill` is the nearest.
//! - Never `slow` or `flaky`: no `tc netem` on this kernel, and the proxy
//!   cannot follow a failover.
//!
//! # Layout
//! - [`db`]: [`RedisDb`], the nodes' and Sentinels' lifecycle and
//!   abilities.
//! - [`status`]: what Sentinels and nodes say (primary, replicas, links).
//! - [`client`]: [`RedisClient`], a worker's client (set, register,
//!   append).
//! - [`options`]: [`RedisOptions`] (test keys) and [`RedisArgs`] (flags).

pub mod client;
pub mod db;
pub mod options;
pub mod status;

pub use client::RedisClient;
pub use db::{RedisConfig, RedisDb, REDIS_SENTINEL_BIN, REDIS_SERVER_BIN};
pub use options::{RedisArgs, RedisOptions, RedisReads};

use super::net::node_namespaces;
use super::{Deployment, System, SystemError, SystemOption};
use crate::client::{BoxFuture, Client};
use crate::package::needs_net;
use crate::system::db::NodeInfo;
use crate::test_spec::{NetBackend, TestSpec};
use crate::workload::WorkloadKind;
use nemesis::Fault;

/// The Redis-with-Sentinel system.
#[derive(Clone, Copy, Debug, Default)]
pub struct Redis;

impl System for Redis {
    fn name(&self) -> &'static str {
        "redis"
    }

    fn about(&self) -> &'static str {
        "Redis 7 with Sentinel (apt-get install redis-server redis-sentinel)"
    }

    fn workloads(&self) -> &'static [WorkloadKind] {
        &[
            WorkloadKind::Set,
            WorkloadKind::Register,
            WorkloadKind::Append,
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
        &[NetBackend::Proxy, NetBackend::Netns]
    }

    fn options(&self) -> &'static [SystemOption] {
        &options::OPTIONS
    }

    fn check(&self, spec: &TestSpec) -> Result<(), String> {
        if spec.db.is_some() {
            return Err("a [db] table of command templates is the custom system's".into());
        }
        if needs_net(&spec.nemesis) && spec.net != NetBackend::Netns {
            return Err(
                "Redis's partitions need --net netns (each node and its Sentinel in a \
                        network namespace of their own: after a failover every replica is \
                        pointed at the new primary's one address, which a proxy per link \
                        cannot follow)"
                    .into(),
            );
        }
        let options = &spec.redis;
        if options.redis_sentinels == 0 || options.redis_sentinels > spec.nodes {
            return Err(format!(
                "--redis-sentinels {} with {} nodes: each Sentinel sits beside one node",
                options.redis_sentinels, spec.nodes
            ));
        }
        for (flag, n) in [
            ("redis-wait", options.redis_wait),
            ("redis-min-replicas", options.redis_min_replicas),
        ] {
            if n >= spec.nodes {
                return Err(format!(
                    "--{flag} {n} with {} nodes: there are only {} replicas",
                    spec.nodes,
                    spec.nodes - 1
                ));
            }
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
            let options = &spec.redis;
            let mut config = RedisConfig::new(spec.nodes, options.redis_sentinels, run.path());
            config.min_replicas = options.redis_min_replicas;
            config.down_after = options.redis_down_after;
            config.failover_timeout = options.redis_failover_timeout;
            if spec.net != NetBackend::Netns {
                let db = RedisDb::new(config)?;
                return Ok(Deployment {
                    db: Box::new(db),
                    net: None,
                });
            }
            let (placement, net) = node_namespaces(spec.nodes)?;
            let db = RedisDb::in_namespaces(config, placement)?;
            Ok(Deployment {
                db: Box::new(db),
                net: Some(net),
            })
        })
    }

    fn client(&self, spec: &TestSpec, worker: usize, nodes: &[NodeInfo]) -> Box<dyn Client> {
        let options = &spec.redis;
        let client = RedisClient::new(
            worker,
            nodes,
            options.redis_reads,
            options.redis_wait,
            spec.op_timeout,
        );
        Box::new(client.timed(spec.op_timeout))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_need_namespaces_and_counts_must_fit_the_nodes() {
        let spec = |toml: &str| {
            TestSpec::from_toml(&format!("system = \"redis\"\nnodes = 3\n{toml}")).unwrap()
        };
        let err = Redis
            .check(&spec("nemesis = [\"partition-primary\"]\n"))
            .unwrap_err();
        assert!(err.contains("--net netns"), "{err}");
        assert!(Redis
            .check(&spec(
                "net = \"netns\"\nnemesis = [\"partition-primary\"]\n"
            ))
            .is_ok());
        assert!(Redis.check(&spec("redis-sentinels = 4\n")).is_err());
        assert!(Redis.check(&spec("redis-wait = 3\n")).is_err());
        assert!(Redis
            .check(&spec("redis-wait = 2\nredis-min-replicas = 1\n"))
            .is_ok());
    }
}
