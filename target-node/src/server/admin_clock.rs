//! `POST /admin/clock` `{"offset_ms":N}` (only with `--admin`): set the
//! node's clock offset; 0 resets it.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::Json;
use std::sync::Arc;
use tracing::warn;

use super::{parse_json, ApiError};
use crate::api::ClockBody;
use crate::node::Node;

pub(super) async fn handle(
    State(node): State<Arc<Node>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<ClockBody>, ApiError> {
    let ClockBody { offset_ms } = parse_json(body)?;
    node.clock.set_offset_ms(offset_ms);
    warn!(offset_ms, "clock offset set");
    Ok(Json(ClockBody { offset_ms }))
}
