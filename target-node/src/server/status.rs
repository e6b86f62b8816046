//! `GET /status`: id, role, term, primary, oplog and commit positions,
//! modes, clock offset and replication counters.

use axum::extract::State;
use axum::Json;
use std::sync::Arc;

use crate::api::Status;
use crate::node::Node;

pub(super) async fn handle(State(node): State<Arc<Node>>) -> Json<Status> {
    Json(node.status())
}
