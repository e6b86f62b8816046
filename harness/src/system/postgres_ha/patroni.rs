//! Patroni: the configuration file each node's Patroni reads, and what its
//! REST API says about the cluster.
//!
//! # The configuration
//! [`PatroniConfig::file`] writes one node's `patroni.yml` as JSON (YAML's
//! subset, which Patroni's `yaml.safe_load` reads): the cluster `faultline`
//! under the DCS prefix `/faultline/`, etcd's v3 API on every node's
//! member, over etcd's v2 API (`etcd.hosts`, `--pg-dcs etcd2`) or its v3
//! API (`etcd3.hosts`: Patroni 3.0 speaks it through etcd's JSON gateway,
//! no gRPC), the REST API and PostgreSQL on the node's own
//! address (ports [`REST_PORT`], [`PG_PORT`]), the data dir and the unix
//! socket in the node's directory, trust authentication (everything is in
//! the run's own namespaces), and the bootstrap's dynamic configuration:
//! the test's `ttl`, `loop_wait` and `retry_timeout`, `synchronous_mode`
//! and `synchronous_mode_strict` as `--pg-sync` says, `pg_rewind` (with
//! `wal_log_hints`) so a deposed primary rejoins as a standby of the new
//! one, and replication slots. No watchdog: there is no `/dev/watchdog`
//! to arm here.
//!
//! # The REST API
//! `GET /cluster` on any node: the members Patroni knows from the DCS,
//! each with its name, role (`leader`, `sync_standby`, `replica`), state
//! and lag; [`ClusterView`] is what faultline reads of it.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{json, Value};

use crate::system::postgres::options::PgDcs;

/// PostgreSQL's port, on a node's own address.
pub const PG_PORT: u16 = 5432;
/// Patroni's REST API port, on a node's own address.
pub const REST_PORT: u16 = 8008;
/// etcd's client port, on a node's own address.
pub const ETCD_PORT: u16 = 2379;
/// The cluster's name (Patroni's `scope`).
pub const SCOPE: &str = "faultline";

/// Patroni's timing, in seconds (its dynamic configuration).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timing {
    /// How long the leader key lives without being renewed.
    pub ttl: u64,
    /// How long Patroni sleeps between its HA loops.
    pub loop_wait: u64,
    /// How long DCS and PostgreSQL operations are retried before the
    /// leader demotes itself.
    pub retry_timeout: u64,
}

impl Default for Timing {
    /// Fast failover: the leader key lives 8 s, renewed every second;
    /// Patroni's rule `loop_wait + 2 * retry_timeout <= ttl` holds.
    fn default() -> Self {
        Timing {
            ttl: 8,
            loop_wait: 1,
            retry_timeout: 3,
        }
    }
}

/// What every node's Patroni configuration shares.
#[derive(Clone, Debug)]
pub struct PatroniConfig {
    /// PostgreSQL's programs (`bin_dir`).
    pub bin_dir: PathBuf,
    /// Every node's address, in node order (their etcd members).
    pub addresses: Vec<IpAddr>,
    /// Strict synchronous mode (`--pg-sync on`).
    pub synchronous: bool,
    /// The etcd API (`--pg-dcs`).
    pub dcs: PgDcs,
    /// The HA loop's timing.
    pub timing: Timing,
}

impl PatroniConfig {
    /// The configuration of node `name` at `address`, its files under
    /// `node_dir`.
    pub fn file(&self, name: &str, address: IpAddr, node_dir: &Path) -> Value {
        let at = |port: u16| SocketAddr::new(address, port).to_string();
        let hosts: Vec<String> = self
            .addresses
            .iter()
            .map(|a| SocketAddr::new(*a, ETCD_PORT).to_string())
            .collect();
        let auth = |user: &str| json!({"username": user, "password": "faultline"});
        json!({
            "scope": SCOPE,
            "namespace": "/faultline/",
            "name": name,
            "restapi": {"listen": at(REST_PORT), "connect_address": at(REST_PORT)},
            self.dcs_section(): {"hosts": hosts},
            "bootstrap": {
                "dcs": self.dynamic(),
                "initdb": [{"encoding": "UTF8"}, {"locale": "C"}],
            },
            "postgresql": {
                "listen": at(PG_PORT),
                "connect_address": at(PG_PORT),
                "data_dir": node_dir.join("data"),
                "bin_dir": self.bin_dir,
                "pgpass": node_dir.join("pgpass"),
                "authentication": {
                    "superuser": auth("postgres"),
                    "replication": auth("replicator"),
                    "rewind": auth("postgres"),
                },
                "parameters": {
                    "unix_socket_directories": node_dir,
                    // In Patroni's own IPC namespace, gone with it (launch).
                    "dynamic_shared_memory_type": "sysv",
                    "deadlock_timeout": "100ms",
                },
                "pg_hba": [
                    "local all all trust",
                    "host all all 0.0.0.0/0 trust",
                    "host replication all 0.0.0.0/0 trust",
                ],
                "remove_data_directory_on_rewind_failure": true,
                "remove_data_directory_on_diverged_timelines": true,
            },
            "watchdog": {"mode": "off"},
        })
    }

    /// The section naming the store: `etcd` (v2) or `etcd3`.
    fn dcs_section(&self) -> &'static str {
        match self.dcs {
            PgDcs::Etcd2 => "etcd",
            PgDcs::Etcd3 => "etcd3",
        }
    }

    /// The dynamic configuration Patroni writes to the DCS at bootstrap.
    fn dynamic(&self) -> Value {
        json!({
            "ttl": self.timing.ttl,
            "loop_wait": self.timing.loop_wait,
            "retry_timeout": self.timing.retry_timeout,
            "maximum_lag_on_failover": 1048576,
            "synchronous_mode": self.synchronous,
            "synchronous_mode_strict": self.synchronous,
            "postgresql": {
                "use_pg_rewind": true,
                "use_slots": true,
                "parameters": {
                    "wal_log_hints": "on",
                    "max_connections": 200,
                    "max_wal_senders": 10,
                    "max_replication_slots": 10,
                },
            },
        })
    }
}

/// One member as `GET /cluster` lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    /// Its node id.
    pub name: String,
    /// `leader`, `sync_standby`, `replica`, ...
    pub role: String,
    /// `running`, `streaming`, `starting`, `stopped`, ...
    pub state: String,
    /// Its replication lag in bytes, when Patroni gives a number.
    pub lag: Option<u64>,
}

/// What one Patroni says about the cluster.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClusterView {
    /// The members, as listed.
    pub members: Vec<Member>,
}

impl ClusterView {
    /// A `GET /cluster` answer.
    pub fn parse(body: &Value) -> Result<ClusterView, String> {
        let members = body
            .get("members")
            .and_then(Value::as_array)
            .ok_or_else(|| format!("no members in {body}"))?;
        let text = |m: &Value, key: &str| m.get(key).and_then(Value::as_str).unwrap_or("").into();
        let members = members
            .iter()
            .map(|m| Member {
                name: text(m, "name"),
                role: text(m, "role"),
                state: text(m, "state"),
                lag: m.get("lag").and_then(Value::as_u64),
            })
            .collect();
        Ok(ClusterView { members })
    }

    /// The leader's name.
    pub fn leader(&self) -> Option<&str> {
        let leader = self.members.iter().find(|m| m.role == "leader");
        leader.map(|m| m.name.as_str())
    }

    /// Whether it shows a healthy cluster of `nodes` members: a running
    /// leader, every other member running and caught up (lag 0), and with
    /// `synchronous`, a synchronous standby. `Err` says what is not so.
    pub fn healthy(&self, nodes: usize, synchronous: bool) -> Result<(), String> {
        let running = |m: &Member| m.state == "running" || m.state == "streaming";
        if self.members.len() != nodes || !self.members.iter().all(running) {
            return Err(format!("members {:?}", self.members));
        }
        self.leader().ok_or("no leader")?;
        let lagging = self
            .members
            .iter()
            .filter(|m| m.role != "leader")
            .any(|m| m.lag != Some(0));
        if lagging {
            return Err(format!("standbys not caught up: {:?}", self.members));
        }
        if synchronous && !self.members.iter().any(|m| m.role == "sync_standby") {
            return Err(format!("no synchronous standby: {:?}", self.members));
        }
        Ok(())
    }
}

/// `GET /cluster` from the Patroni at `rest`, within `timeout`.
pub async fn cluster(rest: SocketAddr, timeout: Duration) -> Result<ClusterView, String> {
    let body = get(rest, "cluster", timeout).await?.1;
    ClusterView::parse(&body)
}

/// Whether the Patroni at `rest` says its node is the running primary
/// (`GET /primary` answers 200).
pub async fn is_primary(rest: SocketAddr, timeout: Duration) -> Result<bool, String> {
    Ok(get(rest, "primary", timeout).await?.0 == 200)
}

/// `GET /PATH` of a Patroni REST API: the status code and the JSON body.
async fn get(rest: SocketAddr, path: &str, timeout: Duration) -> Result<(u16, Value), String> {
    let http = reqwest::Client::builder()
        .timeout(timeout)
        .no_proxy()
        .build()
        .map_err(|e| e.to_string())?;
    let response = http
        .get(format!("http://{rest}/{path}"))
        .send()
        .await
        .map_err(|e| format!("Patroni {rest}: {e}"))?;
    let status = response.status().as_u16();
    let body = response.json().await.unwrap_or(Value::Null);
    Ok((status, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(synchronous: bool) -> PatroniConfig {
        PatroniConfig {
            bin_dir: PathBuf::from("/usr/lib/postgresql/15/bin"),
            addresses: vec![[198, 18, 0, 11].into(), [198, 18, 0, 12].into()],
            synchronous,
            dcs: PgDcs::Etcd3,
            timing: Timing::default(),
        }
    }

    #[test]
    fn a_node_listens_on_its_own_address_and_knows_every_etcd_member() {
        let file = config(true).file("n2", [198, 18, 0, 12].into(), Path::new("/run/nodes/n2"));
        assert_eq!(file["restapi"]["listen"], "198.18.0.12:8008");
        assert_eq!(file["postgresql"]["listen"], "198.18.0.12:5432");
        assert_eq!(
            file["etcd3"]["hosts"],
            json!(["198.18.0.11:2379", "198.18.0.12:2379"])
        );
        assert_eq!(file["postgresql"]["data_dir"], "/run/nodes/n2/data");
        let dcs = &file["bootstrap"]["dcs"];
        assert_eq!(dcs["synchronous_mode_strict"], true);
        let timing = Timing::default();
        assert!(timing.loop_wait + 2 * timing.retry_timeout <= timing.ttl);
        assert_eq!(config(false).dynamic()["synchronous_mode"], false);
    }

    #[test]
    fn a_cluster_is_healthy_with_a_leader_and_every_standby_caught_up() {
        let body = json!({"members": [
            {"name": "n1", "role": "leader", "state": "running"},
            {"name": "n2", "role": "sync_standby", "state": "streaming", "lag": 0},
            {"name": "n3", "role": "replica", "state": "running", "lag": 0},
        ]});
        let view = ClusterView::parse(&body).unwrap();
        assert_eq!(view.leader(), Some("n1"));
        view.healthy(3, true).unwrap();
        assert!(view.healthy(4, false).is_err(), "a member missing");
        let lagging = json!({"members": [
            {"name": "n1", "role": "leader", "state": "running"},
            {"name": "n2", "role": "replica", "state": "running", "lag": 120},
        ]});
        let view = ClusterView::parse(&lagging).unwrap();
        assert!(view.healthy(2, false).is_err());
        let caught_up = json!({"members": [
            {"name": "n1", "role": "leader", "state": "running"},
            {"name": "n2", "role": "replica", "state": "running", "lag": 0},
        ]});
        let view = ClusterView::parse(&caught_up).unwrap();
        view.healthy(2, false).unwrap();
        assert!(view.healthy(2, true).is_err(), "no synchronous standby");
    }
}
