//! The systems under test: what each one brings to a test (Jepsen's test
//! map `{db, client, nemesis, ...}`, one suite per system on one core).
//!
//! A [`System`] is a value that says what it supports — workloads, faults,
//! network backends, its own options (`faultline systems` prints them) —
//! and builds the parts of a run: its [`db::Db`] (the node lifecycle, with
//! optional abilities the nemesis asks for: kill/start, pause/resume,
//! crash, clock, primary, settled, log files) and the network backend
//! between its nodes ([`System::deploy`]), and a client per worker for the
//! test's workload ([`System::client`]). The run, the nemesis and the
//! workloads know no system by name.
//!
//! # Adding a system
//! One module here (`etcd.rs`, or a folder), with a unit struct that
//! implements [`System`], added to [`SYSTEMS`]. Its options are flat test
//! keys prefixed with its name (`etcd-reads`): a struct flattened into
//! [`crate::test_spec::TestSpec`] and a clap `Args` struct flattened into
//! `faultline run`'s flags.
//!
//! # Layout
//! - [`db`]: [`db::Db`], [`db::NodeInfo`], [`db::DbError`], the abilities.
//! - `process`: node processes: the spawner thread, process groups,
//!   signals, stop and reap.
//! - [`net`]: the network backends a system can ask for (proxy, kernel rules,
//!   per-node namespaces with their placement).
//! - [`target_node`]: the target-node faultline ships (the default).
//! - [`custom`]: any system started by command templates (`[db]`).
//! - [`etcd`]: etcd 3.4 from Debian, over its v3 JSON gateway (register, set,
//!   append), partitioned in per-node namespaces.
//! - [`redis`]: Redis 7 with Sentinel from Debian (set, register, append),
//!   each node and its Sentinel in a per-node namespace.
//! - [`postgres`]: one PostgreSQL 15 server from Debian, over tokio-postgres
//!   (append, rw-register, register) at a chosen isolation level.
//! - [`postgres_ha`]: PostgreSQL 15 streaming replication with failover by
//!   Patroni over etcd (set, append, rw-register, register), each node in a
//!   per-node namespace.

pub mod custom;
pub mod db;
pub mod etcd;
pub(crate) mod members;
pub mod net;
pub mod postgres;
pub mod postgres_ha;
pub(crate) mod process;
pub mod redis;
pub mod target_node;

use nemesis::net::Net;
use results::RunDir;

use crate::client::{BoxFuture, Client};
use crate::test_spec::{NetBackend, TestSpec};
use crate::workload::WorkloadKind;
use db::{Db, DbError, NodeInfo};
use nemesis::Fault;

pub use etcd::{EtcdArgs, EtcdOptions, EtcdReads};
pub use postgres::{PgIsolation, PgSync, PostgresArgs, PostgresOptions};
pub use redis::{RedisArgs, RedisOptions, RedisReads};
pub use target_node::{
    Election, Fsync, NodeArgs, Reads, TargetNodeArgs, TargetNodeOptions, Topology, WriteConcern,
};

/// Every system, in the order `faultline systems` lists them.
pub const SYSTEMS: [&dyn System; 6] = [
    &target_node::TargetNode,
    &custom::Custom,
    &etcd::Etcd,
    &redis::Redis,
    &postgres::Postgres,
    &postgres_ha::PostgresHa,
];

/// The system a test runs on when it names none (and has no `[db]` table).
pub const DEFAULT_SYSTEM: &str = "target-node";

/// A system under test: see the module docs.
pub trait System: Send + Sync {
    /// Its name: `--system NAME`, TOML `system = "NAME"`.
    fn name(&self) -> &'static str;

    /// What it is, in one line.
    fn about(&self) -> &'static str;

    /// The workloads it has a client for.
    fn workloads(&self) -> &'static [WorkloadKind];

    /// The faults it can undergo (`none` is always allowed).
    fn faults(&self) -> &'static [Fault];

    /// The network backends (`--net`) it can run over.
    fn net_backends(&self) -> &'static [NetBackend];

    /// Its own options: flags of `faultline run` and TOML keys of the same
    /// name.
    fn options(&self) -> &'static [SystemOption];

    /// The modes in a test's default name (`register-MODES-none`).
    fn name_part(&self, spec: &TestSpec) -> String {
        spec.node.name_part()
    }

    /// The consistency models an append or rw-register run checks when the
    /// test names none: what the system promises.
    fn promised_models(&self, _spec: &TestSpec) -> Vec<String> {
        vec!["strict-serializable".to_string()]
    }

    /// Checks what the test asks of this system beyond the lists above
    /// (tables only it reads, say); `Err` is a usage error.
    fn check(&self, _spec: &TestSpec) -> Result<(), String> {
        Ok(())
    }

    /// Its nodes (known, not started) and, when the test's faults need one,
    /// the network backend between them.
    fn deploy<'a>(
        &'a self,
        spec: &'a TestSpec,
        run: &'a RunDir,
        seed: u64,
    ) -> BoxFuture<'a, Result<Deployment, SystemError>>;

    /// The client of worker `worker` (0-based) for the test's workload,
    /// bound to node `worker % nodes.len()`.
    fn client(&self, spec: &TestSpec, worker: usize, nodes: &[NodeInfo]) -> Box<dyn Client>;
}

/// One option of a system, as `faultline systems` lists it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SystemOption {
    /// The flag without dashes, and the TOML key.
    pub key: &'static str,
    /// Its values, e.g. `one|majority|all`.
    pub values: &'static str,
    /// Its default.
    pub default: &'static str,
    /// What it decides.
    pub about: &'static str,
}

/// What [`System::deploy`] gives the run.
pub struct Deployment {
    /// The nodes' lifecycle and abilities.
    pub db: Box<dyn Db>,
    /// The network backend between the nodes, if the faults need one.
    pub net: Option<Box<dyn Net>>,
}

/// Why a system could not be deployed.
#[derive(Debug, thiserror::Error)]
pub enum SystemError {
    /// Its nodes could not be managed.
    #[error(transparent)]
    Db(#[from] DbError),
    /// Its network backend could not be started.
    #[error("{0}")]
    Net(String),
}

/// The system called `name`; `Err` names the systems there are.
pub fn by_name(name: &str) -> Result<&'static dyn System, String> {
    SYSTEMS
        .into_iter()
        .find(|s| s.name() == name)
        .ok_or_else(|| format!("unknown system {name:?}; the systems are {}", names()))
}

/// The systems' names, as a comma list.
pub fn names() -> String {
    SYSTEMS.map(|s| s.name()).join(", ")
}

/// Checks that `system` supports the test's workload, faults and network
/// backend; `Err` says what it does support.
pub fn check_support(system: &dyn System, spec: &TestSpec) -> Result<(), String> {
    let name = system.name();
    // A `[client]` program speaks every workload; the list is of the
    // system's own clients.
    if spec.client.is_none() && !system.workloads().contains(&spec.workload) {
        let names: Vec<&str> = system.workloads().iter().map(|w| w.name()).collect();
        return Err(format!(
            "system {name} has no client for workload {}; it supports: {}",
            spec.workload,
            names.join(", ")
        ));
    }
    let faults = Fault::parse_list(&spec.nemesis).map_err(|e| e.to_string())?;
    if let Some(fault) = faults.iter().find(|f| !system.faults().contains(f)) {
        return Err(format!(
            "system {name} does not support fault {:?}; it supports: {}",
            fault.name(),
            fault_names(system).join(", ")
        ));
    }
    if !system.net_backends().contains(&spec.net) {
        let names: Vec<String> = system
            .net_backends()
            .iter()
            .map(|n| crate::test_spec::mode_name(*n))
            .collect();
        return Err(format!(
            "system {name} does not run over --net {}; it supports: {}",
            crate::test_spec::mode_name(spec.net),
            names.join(", ")
        ));
    }
    if spec.remote.is_remote() {
        check_remote(name, spec, &faults)?;
    }
    system.check(spec)
}

/// What a run on remote hosts (`--hosts`) can do today: target-node, one
/// node per host, partitions as rules on the hosts (not `--net netns`),
/// no proxy faults.
fn check_remote(name: &str, spec: &TestSpec, faults: &[Fault]) -> Result<(), String> {
    if !["target-node", "etcd"].contains(&name) {
        return Err(format!(
            "--hosts runs target-node and etcd only so far; system {name} runs here (drop --hosts)"
        ));
    }
    spec.remote.parsed_hosts(spec.nodes)?;
    if spec.net != NetBackend::Proxy {
        return Err("--hosts makes partitions rules on each host; drop --net netns".into());
    }
    if spec.node.node_bin.is_some() {
        return Err("--hosts runs this executable on the hosts; drop --node-bin".into());
    }
    if let Some(fault) = faults
        .iter()
        .find(|f| matches!(f, Fault::Slow | Fault::Flaky))
    {
        return Err(format!(
            "fault {:?} needs the proxy between nodes, which cannot sit between remote hosts: unsupported with --hosts",
            fault.name()
        ));
    }
    Ok(())
}

/// The `--nemesis` names `system` accepts, `none` first.
fn fault_names(system: &dyn System) -> Vec<&'static str> {
    let faults = system.faults().iter().map(|f| f.name());
    std::iter::once(Fault::NONE).chain(faults).collect()
}

/// The table `faultline systems` prints: each system with its workloads,
/// faults, network backends and options.
pub fn describe_all() -> String {
    let mut out = String::new();
    for system in SYSTEMS {
        out.push_str(&describe(system));
        out.push('\n');
    }
    out
}

/// One system's entry of [`describe_all`].
pub fn describe(system: &dyn System) -> String {
    let workloads: Vec<&str> = system.workloads().iter().map(|w| w.name()).collect();
    let nets: Vec<String> = system
        .net_backends()
        .iter()
        .map(|n| crate::test_spec::mode_name(*n))
        .collect();
    let mut out = format!("{}: {}\n", system.name(), system.about());
    out.push_str(&format!("  workloads: {}\n", workloads.join(", ")));
    out.push_str(&format!(
        "  faults:    {}\n",
        wrap(&fault_names(system), 62, 13)
    ));
    out.push_str(&format!("  net:       {}\n", nets.join(", ")));
    if system.options().is_empty() {
        out.push_str("  options:   none\n");
        return out;
    }
    out.push_str("  options:\n");
    let key_width = system
        .options()
        .iter()
        .map(|o| o.key.len() + 2)
        .max()
        .unwrap_or(0);
    let values_width = system
        .options()
        .iter()
        .map(|o| o.values.len())
        .max()
        .unwrap_or(0);
    let default_width = system
        .options()
        .iter()
        .map(|o| o.default.len() + 11)
        .max()
        .unwrap_or(0);
    for option in system.options() {
        out.push_str(&format!(
            "    {:key_width$}  {:values_width$}  {:default_width$}  {}\n",
            format!("--{}", option.key),
            option.values,
            format!("[default: {}]", option.default),
            option.about
        ));
    }
    out
}

/// `items` as a comma list wrapped at `width`, continued lines indented by
/// `indent`.
fn wrap(items: &[&str], width: usize, indent: usize) -> String {
    let mut lines: Vec<String> = vec![String::new()];
    for item in items {
        let line = lines.last_mut().expect("one line at least");
        if !line.is_empty() && line.len() + item.len() + 2 > width {
            line.push(',');
            lines.push(String::new());
        }
        let line = lines.last_mut().expect("one line at least");
        if !line.is_empty() {
            line.push_str(", ");
        }
        line.push_str(item);
    }
    lines.join(&format!("\n{}", " ".repeat(indent)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_system_is_found_by_its_name_and_an_unknown_one_lists_them() {
        for system in SYSTEMS {
            assert_eq!(by_name(system.name()).unwrap().name(), system.name());
        }
        let err = by_name("no-such-system").err().unwrap();
        assert!(
            err.contains("target-node") && err.contains("custom"),
            "{err}"
        );
        assert!(by_name(DEFAULT_SYSTEM).is_ok());
    }

    #[test]
    fn the_table_lists_workloads_faults_and_options_of_every_system() {
        let table = describe_all();
        for system in SYSTEMS {
            assert!(table.contains(&format!("{}: ", system.name())), "{table}");
        }
        for key in ["--write-concern", "--reads", "--node-bin", "partition-ring"] {
            assert!(table.contains(key), "{key}: {table}");
        }
        assert!(table.contains("rw-register"), "{table}");
    }

    /// A system with one workload and one fault, for the support checks.
    struct Narrow;

    impl System for Narrow {
        fn name(&self) -> &'static str {
            "narrow"
        }
        fn about(&self) -> &'static str {
            "supports little"
        }
        fn workloads(&self) -> &'static [WorkloadKind] {
            &[WorkloadKind::Register]
        }
        fn faults(&self) -> &'static [Fault] {
            &[Fault::Kill]
        }
        fn net_backends(&self) -> &'static [NetBackend] {
            &[NetBackend::Proxy]
        }
        fn options(&self) -> &'static [SystemOption] {
            &[]
        }
        fn deploy<'a>(
            &'a self,
            _: &'a TestSpec,
            _: &'a RunDir,
            _: u64,
        ) -> BoxFuture<'a, Result<Deployment, SystemError>> {
            Box::pin(async { Err(SystemError::Net("not deployable".into())) })
        }
        fn client(&self, _: &TestSpec, _: usize, _: &[NodeInfo]) -> Box<dyn Client> {
            unreachable!("never deployed")
        }
    }

    #[test]
    fn an_unsupported_workload_or_fault_names_what_the_system_supports() {
        let set = TestSpec {
            workload: WorkloadKind::Set,
            ..TestSpec::default()
        };
        let err = check_support(&Narrow, &set).unwrap_err();
        assert!(
            err.contains("workload set") && err.contains("register"),
            "{err}"
        );
        let pause = TestSpec {
            nemesis: vec!["kill".into(), "pause".into()],
            ..TestSpec::default()
        };
        let err = check_support(&Narrow, &pause).unwrap_err();
        assert!(
            err.contains("\"pause\"") && err.contains("none, kill"),
            "{err}"
        );
        assert!(check_support(&Narrow, &TestSpec::default()).is_ok());
        assert!(describe(&Narrow).contains("options:   none"));
    }

    #[test]
    fn an_unsupported_network_backend_names_the_supported_ones() {
        let spec = TestSpec {
            net: NetBackend::Netns,
            ..TestSpec::default()
        };
        let err = check_support(&custom::Custom, &spec).unwrap_err();
        assert!(err.contains("netns") && err.contains("proxy"), "{err}");
        assert!(check_support(&target_node::TargetNode, &spec).is_ok());
    }
}
