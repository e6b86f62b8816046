//! `PUT /kv/{key}`: write the body (any JSON value) to the key.

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, State};
use axum::Json;
use serde_json::Value;
use std::sync::Arc;

use super::{parse_json, parse_key, ApiError};
use crate::api::WriteAck;
use crate::node::Node;
use crate::oplog::Op;

pub(super) async fn handle(
    State(node): State<Arc<Node>>,
    key: Result<Path<String>, PathRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<WriteAck>, ApiError> {
    let key = parse_key(key)?;
    let value: Value = parse_json(body)?;
    let ((), ack) = node
        .submit(move |_, _| Ok((Op::Put { key, value }, ())))
        .await?;
    Ok(Json(ack))
}
