//! `POST /txn`: run a list of `["r",k,null]` / `["append",k,v]` /
//! `["w",k,v]` micro-ops atomically as one oplog entry; answer the list with
//! the reads filled in. A micro-op that cannot apply aborts the whole
//! transaction with a definite `txn-conflict`.
//!
//! A read-only transaction (only `r` micro-ops) is a read: it is served as
//! `--reads` says, like `GET /kv/{key}`, from one consistent state of the
//! node that serves it, and logs nothing. Every other transaction is a
//! write and goes through the primary's oplog.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use std::sync::Arc;

use super::{parse_json, ApiError};
use crate::api::{valid_key, ErrorBody, ErrorKind, MicroF, MicroOp};
use crate::node::Node;
use crate::oplog::Op;

/// Most micro-ops in one transaction.
const MAX_MICRO_OPS: usize = 1024;

pub(super) async fn handle(
    State(node): State<Arc<Node>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Vec<MicroOp>>, ApiError> {
    let ops: Vec<MicroOp> = parse_json(body)?;
    check(&ops).map_err(|m| ApiError::bad_request(StatusCode::BAD_REQUEST, m))?;
    if ops.iter().all(MicroOp::is_read) {
        let outcome = node.read_with(|kv| kv.execute_txn(&ops)).await?;
        // Reads alone cannot conflict; keep the error path all the same.
        let outcome = outcome.map_err(|m| ErrorBody::new(ErrorKind::TxnConflict, m))?;
        return Ok(Json(outcome.completed));
    }
    let (completed, _) = node
        .submit(move |kv, lww| {
            let outcome = kv
                .execute_txn(&ops)
                .map_err(|m| ErrorBody::new(ErrorKind::TxnConflict, m))?;
            let writes = if lww {
                outcome.final_values
            } else {
                outcome.writes
            };
            Ok((Op::Txn { writes }, outcome.completed))
        })
        .await?;
    Ok(Json(completed))
}

fn check(ops: &[MicroOp]) -> Result<(), String> {
    if ops.is_empty() || ops.len() > MAX_MICRO_OPS {
        return Err(format!("a transaction has 1 to {MAX_MICRO_OPS} micro-ops"));
    }
    for MicroOp(f, key, value) in ops {
        if !valid_key(key) {
            return Err(format!("invalid key {key:?}"));
        }
        if *f == MicroF::Read && !value.is_null() {
            return Err(format!("read of {key} must carry null"));
        }
    }
    Ok(())
}
