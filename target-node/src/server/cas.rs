//! `POST /kv/{key}/cas` `{"from":..,"to":..}`: set the key to `to` if it
//! holds `from` (a missing key holds `null`); else a definite `cas-mismatch`.

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde_json::Value;
use std::sync::Arc;

use super::{parse_json, parse_key, ApiError};
use crate::api::{CasBody, ErrorBody, ErrorKind, WriteAck};
use crate::node::Node;
use crate::oplog::Op;

pub(super) async fn handle(
    State(node): State<Arc<Node>>,
    key: Result<Path<String>, PathRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<WriteAck>, ApiError> {
    let key = parse_key(key)?;
    let body: Value = parse_json(body)?;
    // Only the object form: serde would also take `[from, to]`.
    if !body.is_object() {
        return Err(ApiError::bad_request(
            StatusCode::BAD_REQUEST,
            "expected {\"from\":..,\"to\":..}",
        ));
    }
    let CasBody { from, to } = serde_json::from_value(body).map_err(|e| {
        ApiError::bad_request(StatusCode::BAD_REQUEST, format!("bad cas body: {e}"))
    })?;
    let ((), ack) = node
        .submit(move |kv, _| {
            let current = kv.get(&key);
            if current != from {
                let message = format!("key {key} holds {current}, not {from}");
                return Err(ErrorBody::new(ErrorKind::CasMismatch, message));
            }
            Ok((Op::Put { key, value: to }, ()))
        })
        .await?;
    Ok(Json(ack))
}
