//! What the Sentinels and nodes say about the replication: the primary each
//! Sentinel names (`SENTINEL get-master-addr-by-name`), whether the
//! Sentinels know each other and every replica (`SENTINEL master`), and
//! each node's role and link (`INFO replication`). Every probe is one
//! connection through the `redis` crate, bounded by a timeout.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, ConnectionAddr, RedisError};

/// The name every Sentinel monitors the primary under.
pub const MASTER_NAME: &str = "faultline";

/// A connection to `addr`, its connect and every answer bounded by
/// `timeout`.
pub async fn connect(
    addr: SocketAddr,
    timeout: Duration,
) -> Result<MultiplexedConnection, RedisError> {
    let client = redis::Client::open(ConnectionAddr::Tcp(addr.ip().to_string(), addr.port()))?;
    let config = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(timeout))
        .set_response_timeout(Some(timeout));
    client
        .get_multiplexed_async_connection_with_config(&config)
        .await
}

/// The primary Sentinel `sentinel` names; `Err` says why there is none.
pub async fn named_primary(sentinel: SocketAddr, timeout: Duration) -> Result<SocketAddr, String> {
    let ask = async {
        let mut conn = connect(sentinel, timeout).await?;
        redis::cmd("SENTINEL")
            .arg("get-master-addr-by-name")
            .arg(MASTER_NAME)
            .query_async::<Option<(String, u16)>>(&mut conn)
            .await
    };
    let answer = bounded(timeout, ask).await?;
    let (host, port) = answer.ok_or_else(|| format!("{MASTER_NAME} is not monitored"))?;
    let ip = host
        .parse()
        .map_err(|e| format!("a primary address {host:?}: {e}"))?;
    Ok(SocketAddr::new(ip, port))
}

/// What a Sentinel knows of the cluster beside the primary's address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SentinelView {
    /// Replicas it knows.
    pub replicas: usize,
    /// Other Sentinels it knows.
    pub other_sentinels: usize,
}

/// `SENTINEL master` of `sentinel`: how many replicas and Sentinels it knows.
pub async fn sentinel_view(
    sentinel: SocketAddr,
    timeout: Duration,
) -> Result<SentinelView, String> {
    let ask = async {
        let mut conn = connect(sentinel, timeout).await?;
        redis::cmd("SENTINEL")
            .arg("master")
            .arg(MASTER_NAME)
            .query_async::<Vec<String>>(&mut conn)
            .await
    };
    let fields = bounded(timeout, ask).await?;
    let map: BTreeMap<&str, &str> = fields
        .chunks(2)
        .filter_map(|kv| Some((kv.first()?.as_str(), kv.get(1)?.as_str())))
        .collect();
    let count = |key: &str| -> Result<usize, String> {
        map.get(key)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| format!("no {key} in SENTINEL master"))
    };
    Ok(SentinelView {
        replicas: count("num-slaves")?,
        other_sentinels: count("num-other-sentinels")?,
    })
}

/// A node's part in the replication, from `INFO replication`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Role {
    /// A primary.
    Primary,
    /// A replica of `primary`, its link up or not.
    Replica {
        /// The primary it replicates from.
        primary: String,
        /// `master_link_status:up`.
        link_up: bool,
    },
}

/// `INFO replication` of the node at `node`.
pub async fn role(node: SocketAddr, timeout: Duration) -> Result<Role, String> {
    let ask = async {
        let mut conn = connect(node, timeout).await?;
        redis::cmd("INFO")
            .arg("replication")
            .query_async::<String>(&mut conn)
            .await
    };
    parse_role(&bounded(timeout, ask).await?)
}

/// The role in an `INFO replication` text.
pub fn parse_role(info: &str) -> Result<Role, String> {
    let fields: BTreeMap<&str, &str> = info
        .lines()
        .filter_map(|l| l.trim().split_once(':'))
        .collect();
    match fields.get("role") {
        Some(&"master") => Ok(Role::Primary),
        Some(&"slave") => Ok(Role::Replica {
            primary: format!(
                "{}:{}",
                fields.get("master_host").unwrap_or(&"?"),
                fields.get("master_port").unwrap_or(&"?")
            ),
            link_up: fields.get("master_link_status") == Some(&"up"),
        }),
        other => Err(format!("INFO replication without a known role: {other:?}")),
    }
}

/// The primary every Sentinel named, when all answered and agree.
pub fn agreed(answers: &[Result<SocketAddr, String>]) -> Option<SocketAddr> {
    let first = answers.first()?.clone().ok()?;
    answers
        .iter()
        .all(|a| a.as_ref() == Ok(&first))
        .then_some(first)
}

/// The primary most Sentinels that answered name (the first named among
/// equals).
pub fn most_named(answers: &[Result<SocketAddr, String>]) -> Option<SocketAddr> {
    let named: Vec<SocketAddr> = answers.iter().filter_map(|a| a.clone().ok()).collect();
    let votes = |addr: &SocketAddr| named.iter().filter(|a| *a == addr).count();
    let most = named.iter().map(votes).max()?;
    named.iter().find(|a| votes(a) == most).copied()
}

/// Whether `primary` says it is one and every other node replicates from
/// it with its link up.
pub fn replicas_follow(primary: SocketAddr, roles: &[(SocketAddr, Result<Role, String>)]) -> bool {
    roles.iter().all(|(addr, role)| match role {
        Ok(Role::Primary) => *addr == primary,
        Ok(Role::Replica {
            primary: p,
            link_up,
        }) => *link_up && *p == primary.to_string(),
        Err(_) => false,
    })
}

/// `future`'s answer, or why there is none (its error, or no answer within
/// `timeout`: the connection timeout does not bound a paused server's
/// answer everywhere).
async fn bounded<T>(
    timeout: Duration,
    future: impl std::future::Future<Output = Result<T, RedisError>>,
) -> Result<T, String> {
    match tokio::time::timeout(timeout, future).await {
        Ok(answer) => answer.map_err(|e| e.to_string()),
        Err(_) => Err(format!("no answer within {timeout:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(text: &str) -> SocketAddr {
        text.parse().unwrap()
    }

    #[test]
    fn info_replication_gives_the_role_and_the_link() {
        let replica = "# Replication\r\nrole:slave\r\nmaster_host:198.18.0.2\r\nmaster_port:6379\r\nmaster_link_status:up\r\n";
        assert_eq!(
            parse_role(replica).unwrap(),
            Role::Replica {
                primary: "198.18.0.2:6379".into(),
                link_up: true
            }
        );
        let down = replica.replace("status:up", "status:down");
        assert!(matches!(
            parse_role(&down).unwrap(),
            Role::Replica { link_up: false, .. }
        ));
        assert_eq!(
            parse_role("role:master\r\nconnected_slaves:2\r\n").unwrap(),
            Role::Primary
        );
        assert!(parse_role("nothing").is_err());
    }

    #[test]
    fn sentinels_agree_only_when_every_one_names_the_same_primary() {
        let a = addr("10.0.0.1:6379");
        let b = addr("10.0.0.2:6379");
        assert_eq!(agreed(&[Ok(a), Ok(a), Ok(a)]), Some(a));
        assert_eq!(agreed(&[Ok(a), Ok(b), Ok(a)]), None);
        assert_eq!(agreed(&[Ok(a), Err("down".into())]), None);
        assert_eq!(most_named(&[Ok(a), Ok(b), Ok(b)]), Some(b));
        assert_eq!(most_named(&[Err("x".into()), Ok(a)]), Some(a));
        assert_eq!(most_named(&[Err("x".into())]), None);
    }

    #[test]
    fn replicas_follow_only_with_one_primary_and_every_link_up() {
        let p = addr("10.0.0.1:6379");
        let up = |to: &str| {
            Ok(Role::Replica {
                primary: to.into(),
                link_up: true,
            })
        };
        let r2 = addr("10.0.0.2:6379");
        let good = [(p, Ok(Role::Primary)), (r2, up("10.0.0.1:6379"))];
        assert!(replicas_follow(p, &good));
        let elsewhere = [(p, Ok(Role::Primary)), (r2, up("10.0.0.3:6379"))];
        assert!(!replicas_follow(p, &elsewhere));
        let two = [(p, Ok(Role::Primary)), (r2, Ok(Role::Primary))];
        assert!(!replicas_follow(p, &two));
        let silent = [(p, Ok(Role::Primary)), (r2, Err("paused".into()))];
        assert!(!replicas_follow(p, &silent));
    }
}
