//! The target-node faultline ships, as a system under test (the default):
//! its nodes launched as `faultline node ...` (or `--node-bin`), its modes
//! as this system's options, its HTTP client for every workload, its
//! abilities through its admin and status endpoints.
//!
//! # Layout
//! - [`db`]: [`TargetNodeDb`], a cluster of target-node processes, and its
//!   [`TargetNodeConfig`].
//! - [`status`]: `GET /status` through target-node's client: primary,
//!   settled, readiness.
//! - [`api`]: [`api::NodeApi`], the abilities the API gives (primary,
//!   settled, crash, clock).
//! - [`client`]: [`NodeClient`], a worker's client: routing, redirects,
//!   error mapping.
//! - [`options`]: [`TargetNodeOptions`] (test keys) and [`TargetNodeArgs`]
//!   (flags): the modes and `node-bin`.

pub mod api;
pub mod client;
pub mod db;
pub mod options;
pub mod remote;
pub mod status;

use serde_json::json;

pub use client::{ClientOptions, NodeClient};
pub use db::{NodeBinary, TargetNodeConfig, TargetNodeDb};
pub use options::{TargetNodeArgs, TargetNodeOptions};
pub use target_node::mode::{Election, Fsync, Modes, Reads, Topology, WriteConcern};
pub use target_node::NodeArgs;

use super::net::{kernel_net, proxy_for};
use super::{Deployment, System, SystemError, SystemOption};
use crate::client::{BoxFuture, Client};
use crate::package::needs_net;
use crate::system::db::{Db, NodeInfo};
use crate::test_spec::{NetBackend, TestSpec};
use crate::workload::set::SET_KEY;
use crate::workload::WorkloadKind;
use nemesis::Fault;

/// The target-node system.
#[derive(Clone, Copy, Debug, Default)]
pub struct TargetNode;

impl System for TargetNode {
    fn name(&self) -> &'static str {
        "target-node"
    }

    fn about(&self) -> &'static str {
        "the replicated key-value store faultline ships (`faultline node`)"
    }

    fn workloads(&self) -> &'static [WorkloadKind] {
        &WorkloadKind::ALL
    }

    fn faults(&self) -> &'static [Fault] {
        &Fault::ALL
    }

    fn net_backends(&self) -> &'static [NetBackend] {
        &[NetBackend::Proxy, NetBackend::Netns]
    }

    fn options(&self) -> &'static [SystemOption] {
        &options::OPTIONS
    }

    fn check(&self, spec: &TestSpec) -> Result<(), String> {
        match spec.db {
            Some(_) => Err("a [db] table of command templates is the custom system's; \
                 write system = \"custom\" (or --system custom)"
                .into()),
            None => Ok(()),
        }
    }

    fn deploy<'a>(
        &'a self,
        spec: &'a TestSpec,
        run: &'a results::RunDir,
        seed: u64,
    ) -> BoxFuture<'a, Result<Deployment, SystemError>> {
        Box::pin(async move {
            if spec.remote.is_remote() {
                return deploy_remote(spec, run);
            }
            let mut config = TargetNodeConfig::new(spec.nodes, run.path());
            config.modes = spec.node.modes();
            config.log_dir = Some(run.nodes_dir());
            config.binary = match &spec.node.node_bin {
                Some(path) => NodeBinary::Path(path.clone()),
                None => NodeBinary::CurrentExe,
            };
            config.distinct_addresses = spec.net == NetBackend::Netns;
            let mut db = TargetNodeDb::new(config)?;
            let mut net = None;
            if needs_net(&spec.nemesis) && spec.net == NetBackend::Netns {
                net = Some(kernel_net(db.nodes())?);
            } else if needs_net(&spec.nemesis) {
                let proxy = proxy_for(db.nodes(), seed).await?;
                db.set_peer_urls(Some(proxy.peer_urls()))?;
                net = Some(Box::new(proxy) as Box<dyn nemesis::net::Net>);
            }
            Ok(Deployment {
                db: Box::new(db),
                net,
            })
        })
    }

    fn client(&self, spec: &TestSpec, worker: usize, nodes: &[NodeInfo]) -> Box<dyn Client> {
        client_for(spec.workload, &client_options(spec), worker, nodes)
    }
}

/// The nodes on the test's remote hosts, partitions as rules there.
fn deploy_remote(spec: &TestSpec, run: &results::RunDir) -> Result<Deployment, SystemError> {
    let hosts = crate::remote::connect_for(spec, run)?;
    let db = remote::RemoteTargetNodeDb::new(hosts.clone(), spec.node.modes(), run.nodes_dir());
    Ok(Deployment {
        db: Box::new(db),
        net: crate::remote::rules_for(spec, hosts),
    })
}

/// The client options a test gives target-node's client.
pub fn client_options(spec: &TestSpec) -> ClientOptions {
    ClientOptions {
        reads: spec.node.reads,
        topology: spec.node.topology,
        op_timeout: spec.op_timeout,
    }
}

/// target-node's client of worker `worker` for `workload`, cut off after
/// the op timeout: the set workload's ops go to its one key, whose missing
/// value reads as the empty set.
pub fn client_for(
    workload: WorkloadKind,
    options: &ClientOptions,
    worker: usize,
    nodes: &[NodeInfo],
) -> Box<dyn Client> {
    let client = NodeClient::new(worker, nodes, options);
    let client = match workload {
        WorkloadKind::Set => client
            .with_default_key(SET_KEY)
            .reading_missing_as(json!([])),
        WorkloadKind::Register | WorkloadKind::Append | WorkloadKind::RwRegister => client,
    };
    Box::new(client.timed(options.op_timeout))
}
