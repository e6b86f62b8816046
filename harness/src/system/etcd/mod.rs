//! etcd (3.4, Debian's `etcd-server`) as a system under test: its members
//! launched from `/usr/bin/etcd` as child processes, the register, set and
//! append workloads over its v3 JSON gateway.
//!
//! # Faults
//! - `kill`, `kill-primary` (SIGKILL; restarted on the same data dir),
//!   `pause`, `pause-primary` (SIGSTOP/SIGCONT); the primary is the Raft
//!   leader from `/v3/maintenance/status`.
//! - Partitions (every shape) with `--net netns`: etcd advertises one peer
//!   URL per member and cannot choose its source address, so every member
//!   runs in a network namespace of its own (the seam's per-node
//!   namespaces, `nemesis::net::nodes`) and a partition is DROP rules
//!   between member addresses; client traffic, from the harness's bridge
//!   address, is never cut. Without `--net netns` partitions are refused.
//! - Never `clock`: etcd is a Go binary, which reads the clock through the
//!   vDSO and its own syscalls, so libfaketime does not reach it.
//! - Never `crash`: etcd has no self-crash hook; `kill` is the nearest.
//! - Never `slow` or `flaky`: this kernel has no `tc netem`, and the proxy
//!   cannot sit between members that connect to advertised peer URLs.
//!
//! # Layout
//! - [`db`]: [`EtcdDb`], the members' lifecycle and abilities.
//! - [`status`]: the maintenance status API: member ids and the leader.
//! - [`client`]: [`EtcdClient`], a worker's client (register, set, append).
//! - [`options`]: [`EtcdOptions`] (test keys) and [`EtcdArgs`] (flags).

pub mod client;
pub mod db;
pub mod options;
pub mod status;

pub use client::EtcdClient;
pub use db::{EtcdConfig, EtcdDb, ETCD_BIN};
pub use options::{EtcdArgs, EtcdOptions, EtcdReads};

use super::net::node_namespaces;
use super::{Deployment, System, SystemError, SystemOption};
use crate::client::{BoxFuture, Client};
use crate::package::needs_net;
use crate::system::db::NodeInfo;
use crate::test_spec::{NetBackend, TestSpec};
use crate::workload::WorkloadKind;
use nemesis::Fault;

/// The etcd system.
#[derive(Clone, Copy, Debug, Default)]
pub struct Etcd;

impl System for Etcd {
    fn name(&self) -> &'static str {
        "etcd"
    }

    fn about(&self) -> &'static str {
        "etcd 3.4 from /usr/bin/etcd (apt-get install etcd-server etcd-client)"
    }

    fn workloads(&self) -> &'static [WorkloadKind] {
        &[
            WorkloadKind::Register,
            WorkloadKind::Set,
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
        if needs_net(&spec.nemesis) && spec.net != NetBackend::Netns && !spec.remote.is_remote() {
            return Err(
                "etcd's partitions need --net netns (each member in a network \
                        namespace of its own: etcd cannot choose its peer connections' source \
                        address, so the proxy cannot cut them)"
                    .into(),
            );
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
            let token = format!("faultline-{seed:x}-{}", std::process::id());
            let config = EtcdConfig::new(spec.nodes, run.path(), token);
            if spec.remote.is_remote() {
                let hosts = crate::remote::connect_for(spec, run)?;
                let db = EtcdDb::on_hosts(config, hosts.clone())?;
                return Ok(Deployment {
                    db: Box::new(db),
                    net: crate::remote::rules_for(spec, hosts),
                });
            }
            if spec.net != NetBackend::Netns {
                let db = EtcdDb::new(config)?;
                return Ok(Deployment {
                    db: Box::new(db),
                    net: None,
                });
            }
            let (placement, net) = node_namespaces(spec.nodes)?;
            let db = EtcdDb::in_namespaces(config, placement)?;
            Ok(Deployment {
                db: Box::new(db),
                net: Some(net),
            })
        })
    }

    fn client(&self, spec: &TestSpec, worker: usize, nodes: &[NodeInfo]) -> Box<dyn Client> {
        let reads = spec.etcd.etcd_reads;
        let client = EtcdClient::new(worker, nodes, reads, spec.op_timeout);
        Box::new(client.timed(spec.op_timeout))
    }
}
