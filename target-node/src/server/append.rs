//! `POST /kv/{key}/append`: append the body (any JSON value) to the list
//! at the key (a missing key is an empty list; a non-list is a bad request).

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, State};
use axum::Json;
use serde_json::Value;
use std::sync::Arc;

use super::{parse_json, parse_key, ApiError};
use crate::api::{ErrorBody, ErrorKind, WriteAck};
use crate::node::Node;
use crate::oplog::Op;

pub(super) async fn handle(
    State(node): State<Arc<Node>>,
    key: Result<Path<String>, PathRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<WriteAck>, ApiError> {
    let key = parse_key(key)?;
    let element: Value = parse_json(body)?;
    let ((), ack) = node
        .submit(move |kv, lww| {
            let list = kv
                .append_result(&key, &element)
                .map_err(|m| ErrorBody::new(ErrorKind::BadRequest, m))?;
            // Last-write-wins replicas exchange whole values, not appends.
            let op = if lww {
                Op::Put { key, value: list }
            } else {
                Op::Append {
                    key,
                    value: element,
                }
            };
            Ok((op, ()))
        })
        .await?;
    Ok(Json(ack))
}
