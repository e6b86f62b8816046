//! `POST /v3/maintenance/status` of each member: its own member id (the
//! response header's `member_id`) and the leader's member id it knows
//! (`leader`, `0` for none). A leader id is mapped to a node through the
//! member whose own id it is.

use std::time::Duration;

use serde_json::Value;

use crate::system::db::NodeInfo;

/// What one member said about itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberStatus {
    /// Its own member id.
    pub member_id: String,
    /// The leader's member id it knows; `None` when it knows none.
    pub leader: Option<String>,
}

/// Asks every node in `nodes` for its status, concurrently, each bounded by
/// `timeout`; in node order, `Err` saying why a member did not answer.
pub async fn statuses(nodes: &[NodeInfo], timeout: Duration) -> Vec<Result<MemberStatus, String>> {
    let http = match reqwest::Client::builder().timeout(timeout).build() {
        Ok(http) => http,
        Err(e) => return nodes.iter().map(|_| Err(e.to_string())).collect(),
    };
    let asks = nodes.iter().map(|n| status_of(&http, &n.url));
    futures_join(asks).await
}

async fn futures_join<F>(asks: impl Iterator<Item = F>) -> Vec<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handles: Vec<_> = asks.map(tokio::spawn).collect();
    let mut out = Vec::with_capacity(handles.len());
    for handle in handles {
        out.push(handle.await.expect("a status probe does not panic"));
    }
    out
}

fn status_of(
    http: &reqwest::Client,
    url: &str,
) -> impl std::future::Future<Output = Result<MemberStatus, String>> + Send + 'static {
    let request = http.post(format!("{url}/v3/maintenance/status")).body("{}");
    async move {
        let response = request.send().await.map_err(|e| e.to_string())?;
        let body: Value = response.json().await.map_err(|e| e.to_string())?;
        parse(&body)
    }
}

/// A status answer's member id and leader.
pub fn parse(body: &Value) -> Result<MemberStatus, String> {
    let id = |v: &Value| match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    };
    let member_id = body
        .pointer("/header/member_id")
        .and_then(id)
        .ok_or_else(|| format!("no member id in {body}"))?;
    let leader = body.get("leader").and_then(id).filter(|l| l != "0");
    Ok(MemberStatus { member_id, leader })
}

/// The node whose member id is `member_id`, among the answers.
fn node_of(
    member_id: &str,
    nodes: &[NodeInfo],
    answers: &[Result<MemberStatus, String>],
) -> Option<String> {
    nodes
        .iter()
        .zip(answers)
        .find(|(_, a)| a.as_ref().is_ok_and(|s| s.member_id == member_id))
        .map(|(n, _)| n.id.clone())
}

/// The leader every member answered with, when all answered and agree.
pub fn one_leader(answers: &[Result<MemberStatus, String>]) -> Option<String> {
    let mut leaders = answers.iter().map(|a| a.as_ref().ok()?.leader.clone());
    let first = leaders.next()??;
    leaders
        .all(|l| l.as_deref() == Some(first.as_str()))
        .then_some(first)
}

/// The node the answering members name as leader: the first named one
/// that is itself among the answers (its id known).
pub fn reported_leader(
    nodes: &[NodeInfo],
    answers: &[Result<MemberStatus, String>],
) -> Option<String> {
    answers
        .iter()
        .filter_map(|a| a.as_ref().ok()?.leader.clone())
        .find_map(|leader| node_of(&leader, nodes, answers))
}

/// Each node's last answer, for a readiness error.
pub fn describe(nodes: &[NodeInfo], answers: &[Result<MemberStatus, String>]) -> String {
    nodes
        .iter()
        .zip(answers)
        .map(|(n, a)| match a {
            Ok(s) => format!(
                "{}: member {} leader {}",
                n.id,
                s.member_id,
                s.leader.as_deref().unwrap_or("none")
            ),
            Err(e) => format!("{}: {e}", n.id),
        })
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn member(id: &str, leader: &str) -> Result<MemberStatus, String> {
        parse(&json!({"header": {"member_id": id}, "leader": leader}))
    }

    #[test]
    fn a_leader_is_known_only_when_every_member_names_the_same_one() {
        let agreed = [member("1", "2"), member("2", "2"), member("3", "2")];
        assert_eq!(one_leader(&agreed), Some("2".into()));
        let split = [member("1", "2"), member("2", "3")];
        assert_eq!(one_leader(&split), None);
        let missing = [member("1", "2"), Err("refused".into())];
        assert_eq!(one_leader(&missing), None);
        assert_eq!(one_leader(&[member("1", "0")]), None);
    }

    #[test]
    fn the_leader_id_maps_to_the_node_that_reported_it_as_its_own() {
        let nodes = crate::system::db::loopback_nodes(3).unwrap();
        let answers = [member("11", "33"), Err("paused".into()), member("33", "33")];
        assert_eq!(reported_leader(&nodes, &answers), Some("n3".into()));
        let unknown = [member("11", "22"), Err("down".into()), member("33", "22")];
        assert_eq!(reported_leader(&nodes, &unknown), None);
    }
}
