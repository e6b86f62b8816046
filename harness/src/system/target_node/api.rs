//! The abilities target-node's HTTP API gives the nemesis and the runner:
//! [`Primary`] and [`Settled`] from `GET /status`, [`Crash`] and [`Clock`]
//! from the admin endpoints (`--admin`). [`NodeApi`] has them all over a
//! list of nodes; the systems whose nodes speak this API (target-node, and
//! custom ones for now) hand it out.

use std::time::Duration;

use target_node::client::Client;

use super::status::{self, STATUS_TIMEOUT};
use crate::client::BoxFuture;
use crate::system::db::{Clock, Crash, NodeInfo, Primary, Settled};

/// How long an admin call (crash, clock offset) may take.
pub const ADMIN_TIMEOUT: Duration = Duration::from_secs(2);

/// target-node's API over these nodes.
#[derive(Clone, Debug, Default)]
pub struct NodeApi {
    nodes: Vec<NodeInfo>,
}

impl NodeApi {
    /// The API of `nodes`.
    pub fn new(nodes: &[NodeInfo]) -> NodeApi {
        NodeApi {
            nodes: nodes.to_vec(),
        }
    }

    /// The nodes it asks.
    pub fn set_nodes(&mut self, nodes: &[NodeInfo]) {
        self.nodes = nodes.to_vec();
    }

    /// The admin client of `node` (an unknown node gets an empty URL, and
    /// its calls fail as unreachable).
    fn admin(&self, node: &str) -> Client {
        let url = self
            .nodes
            .iter()
            .find(|n| n.id == node)
            .map(|n| n.url.clone())
            .unwrap_or_default();
        Client::new(url, ADMIN_TIMEOUT)
    }
}

impl Primary for NodeApi {
    fn primary(&self) -> BoxFuture<'static, Option<String>> {
        let nodes = self.nodes.clone();
        Box::pin(async move { status::primary_of(&nodes, STATUS_TIMEOUT).await })
    }
}

impl Settled for NodeApi {
    fn settled(&self) -> BoxFuture<'static, bool> {
        let nodes = self.nodes.clone();
        Box::pin(async move { status::settled(&nodes, STATUS_TIMEOUT).await })
    }
}

impl Crash for NodeApi {
    /// `POST /admin/crash`.
    fn crash(&self, node: &str) -> BoxFuture<'static, Result<(), String>> {
        let admin = self.admin(node);
        Box::pin(async move { admin.crash().await.map_err(|e| e.to_string()) })
    }
}

impl Clock for NodeApi {
    /// `POST /admin/clock`.
    fn shift(&self, node: &str, offset_ms: i64) -> BoxFuture<'static, Result<(), String>> {
        let admin = self.admin(node);
        Box::pin(async move {
            admin
                .set_clock_offset(offset_ms)
                .await
                .map_err(|e| e.to_string())
        })
    }

    fn strobe(
        &self,
        node: &str,
        offset_ms: i64,
        period: Duration,
    ) -> Option<BoxFuture<'static, ()>> {
        let admin = self.admin(node);
        Some(Box::pin(async move {
            for i in 1u64.. {
                tokio::time::sleep(period).await;
                let _ = admin
                    .set_clock_offset(if i % 2 == 0 { offset_ms } else { 0 })
                    .await;
            }
        }))
    }

    /// A node that is down has lost its offset anyway; a failed reset is
    /// not an error (the node may be going down).
    fn reset(&self, node: &str, down: bool) -> BoxFuture<'static, Result<(), String>> {
        let admin = self.admin(node);
        Box::pin(async move {
            if !down {
                let _ = admin.set_clock_offset(0).await;
            }
            Ok(())
        })
    }
}
