//! `GET /kv/{key}`: the value (`null` when missing), as `--reads` says.

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::Json;
use serde_json::Value;
use std::sync::Arc;

use super::{parse_key, ApiError};
use crate::node::Node;

pub(super) async fn handle(
    State(node): State<Arc<Node>>,
    key: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let key = parse_key(key)?;
    Ok(Json(node.read(&key).await?))
}
