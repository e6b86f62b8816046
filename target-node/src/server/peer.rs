//! `POST /peer`: a replication, vote or ping request from another node.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use std::sync::Arc;

use super::{parse_json, ApiError};
use crate::api::{ErrorBody, ErrorKind};
use crate::message::{PeerReply, PeerRequest};
use crate::node::Node;

pub(super) async fn handle(
    State(node): State<Arc<Node>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<PeerReply>, ApiError> {
    let request: PeerRequest = parse_json(body)?;
    match node.handle_peer(request).await {
        Some(reply) => Ok(Json(reply)),
        None => Err(ApiError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            body: ErrorBody::new(
                ErrorKind::Timeout,
                "could not make the entries durable in time",
            ),
        }),
    }
}
