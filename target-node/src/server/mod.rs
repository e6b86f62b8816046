//! The HTTP server: one file per command (parse, apply, encode), plus the
//! router and the shared request parsing and error encoding here.

mod admin_clock;
mod admin_crash;
mod append;
mod cas;
mod get;
mod peer;
mod put;
mod status;
mod txn;

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{DefaultBodyLimit, Path, Request, State};
use axum::http::{header, StatusCode, Uri};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use std::sync::Arc;
use tokio::sync::Semaphore;

use crate::api::{valid_key, ErrorBody, ErrorKind};
use crate::node::Node;

/// Largest client request body, in bytes.
pub const CLIENT_BODY_LIMIT: usize = 1 << 20;
/// Largest peer request body, in bytes: a batch of up to `--max-batch`
/// entries, each up to about a client body (peers are trusted).
pub const PEER_BODY_LIMIT: usize = 1 << 30;

/// Most bytes of peer request bodies a node reads at once; a request past
/// the budget waits (its body unread, held back by TCP) until earlier ones
/// are done, so many large peer bodies at once cannot exhaust memory.
pub const PEER_BODIES_IN_FLIGHT: usize = 256 << 20;

/// The peer body budget, in KiB permits.
fn peer_budget() -> Arc<Semaphore> {
    Arc::new(Semaphore::new(PEER_BODIES_IN_FLIGHT >> 10))
}

/// Holds a share of the peer body budget (its declared length, or the
/// largest allowed when it declares none) while the request is served.
async fn within_peer_budget(
    State(budget): State<Arc<Semaphore>>,
    request: Request,
    next: Next,
) -> Response {
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<usize>().ok())
        .unwrap_or(PEER_BODY_LIMIT);
    let kib = (declared.min(PEER_BODIES_IN_FLIGHT) >> 10).max(1);
    let Ok(_permit) = budget.acquire_many(kib as u32).await else {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    };
    next.run(request).await
}

/// The routes of a node.
pub fn router(node: Arc<Node>) -> Router {
    let mut router = Router::new()
        .route("/kv/{key}", get(get::handle).put(put::handle))
        .route("/kv/{key}/cas", post(cas::handle))
        .route("/kv/{key}/append", post(append::handle))
        .route("/txn", post(txn::handle))
        .route("/status", get(status::handle))
        .route(
            "/peer",
            post(peer::handle)
                .layer(DefaultBodyLimit::max(PEER_BODY_LIMIT))
                .layer(middleware::from_fn_with_state(
                    peer_budget(),
                    within_peer_budget,
                )),
        );
    if node.config().admin {
        router = router
            .route("/admin/clock", post(admin_clock::handle))
            .route("/admin/crash", post(admin_crash::handle));
    }
    router
        .fallback(unknown_route)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(CLIENT_BODY_LIMIT))
        .with_state(node)
}

/// An error answer: an [`ErrorBody`] with its HTTP status.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    body: ErrorBody,
}

impl ApiError {
    fn bad_request(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            body: ErrorBody::new(ErrorKind::BadRequest, message),
        }
    }
}

impl From<ErrorBody> for ApiError {
    fn from(body: ErrorBody) -> Self {
        let status = StatusCode::from_u16(body.error.http_status())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        ApiError { status, body }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(self.body)).into_response()
    }
}

async fn unknown_route(uri: Uri) -> ApiError {
    ApiError::bad_request(
        StatusCode::NOT_FOUND,
        format!("no such route: {}", uri.path()),
    )
}

async fn method_not_allowed(uri: Uri) -> ApiError {
    ApiError::bad_request(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("method not allowed on {}", uri.path()),
    )
}

/// The key from the path, if valid.
fn parse_key(path: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    let Path(key) =
        path.map_err(|e| ApiError::bad_request(StatusCode::BAD_REQUEST, e.body_text()))?;
    if valid_key(&key) {
        Ok(key)
    } else {
        Err(ApiError::bad_request(
            StatusCode::BAD_REQUEST,
            "invalid key: use 1 to 256 bytes of A-Z a-z 0-9 _ - . :",
        ))
    }
}

/// The body as JSON of type `T`.
fn parse_json<T: DeserializeOwned>(body: Result<Bytes, BytesRejection>) -> Result<T, ApiError> {
    let bytes = body.map_err(|e| ApiError::bad_request(e.status(), e.body_text()))?;
    serde_json::from_slice(&bytes).map_err(|e| {
        ApiError::bad_request(StatusCode::BAD_REQUEST, format!("malformed JSON body: {e}"))
    })
}
