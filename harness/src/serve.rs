//! `faultline serve`: a read-only web view of the store.
//!
//! - `/` is the index: a table of every run (name, time, mode, workload,
//!   faults, verdict, anomaly counts by kind, links to its report and
//!   files), sorted and filtered by the query string
//!   ([`pages`] documents it), and a table of the campaigns.
//! - Every other path names a file or directory of the store, relative to
//!   its root: `/<test-name>/<timestamp>/report.html`. A report's relative
//!   links (plots, timeline) therefore work as they do from disk. A
//!   directory shows a listing of its entries.
//!
//! Decisions:
//! - Read-only: GET and HEAD only (anything else is 405), and nothing here
//!   writes to the store.
//! - Nothing outside the store is ever served. Each path segment is
//!   percent-decoded, then `.`, `..` and segments holding `/`, `\` or NUL
//!   are refused with 400 before the file system is touched; what is left
//!   is resolved with every symlink followed, and a path that lands outside
//!   the store (a symlink pointing out of it) is 404, like a missing file.
//! - The store is read again on every request: the page never shows a
//!   stale cache while runs are being written.
//! - Every string that comes from the store is HTML-escaped: the pages
//!   are written with [`results::html::Html`], whose text is always escaped.
//! - Content types are guessed from the extension (`mime_guess`), except
//!   `.jsonl` and `.log`, which are served as UTF-8 plain text so a browser
//!   shows them instead of downloading them.

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{Request, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use mime_guess::mime;
use percent_encoding::percent_decode_str;
use tower::ServiceExt;
use tower_http::services::ServeFile;

pub mod pages;
pub mod runs;

/// The server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The address could not be bound (in use, not local, no permission).
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// Accepting or serving connections failed.
    #[error("serving failed: {0}")]
    Serve(#[source] std::io::Error),
}

/// A bound, not yet running server of one store.
pub struct Server {
    listener: tokio::net::TcpListener,
    local_addr: SocketAddr,
    store: PathBuf,
}

impl Server {
    /// Binds `addr` (port 0 picks a free port) to serve the store at `store`.
    /// The store need not exist yet: until it does, the index is empty.
    pub async fn bind(addr: SocketAddr, store: impl Into<PathBuf>) -> Result<Server, ServeError> {
        let bind_error = |source| ServeError::Bind { addr, source };
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(bind_error)?;
        let local_addr = listener.local_addr().map_err(bind_error)?;
        Ok(Server {
            listener,
            local_addr,
            store: store.into(),
        })
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Serves until `shutdown` completes, then finishes the requests in flight.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServeError> {
        axum::serve(self.listener, router(self.store))
            .with_graceful_shutdown(shutdown)
            .await
            .map_err(ServeError::Serve)
    }
}

/// The store as the handlers see it: the path as given.
type StoreRoot = Arc<Path>;

/// The routes: `/` is the index, every other GET path a store entry.
pub fn router(store: impl Into<PathBuf>) -> Router {
    let store: StoreRoot = Arc::from(store.into());
    Router::new()
        .route("/", get(index))
        .fallback_service(get(store_entry).with_state(Arc::clone(&store)))
        .with_state(store)
}

async fn index(State(store): State<StoreRoot>, Query(query): Query<pages::IndexQuery>) -> Response {
    let root = Arc::clone(&store);
    let listing = match tokio::task::spawn_blocking(move || runs::scan(&root)).await {
        Ok(Ok(listing)) => listing,
        Ok(Err(e)) => return internal(&e.to_string()),
        Err(e) => return internal(&e.to_string()),
    };
    match pages::index(&store.to_string_lossy(), &listing, &query) {
        Ok(page) => Html(page).into_response(),
        Err(message) => (StatusCode::BAD_REQUEST, message).into_response(),
    }
}

fn internal(message: &str) -> Response {
    let body = pages::error(message);
    (StatusCode::INTERNAL_SERVER_ERROR, Html(body)).into_response()
}

/// What a request path names inside the store.
enum Entry {
    File(PathBuf),
    Directory(PathBuf),
}

async fn store_entry(State(store): State<StoreRoot>, request: Request<Body>) -> Response {
    let segments = match store_segments(request.uri().path()) {
        Ok(segments) => segments,
        Err(reason) => return (StatusCode::BAD_REQUEST, reason).into_response(),
    };
    let lookup = segments.clone();
    let entry = tokio::task::spawn_blocking(move || resolve(&store, &lookup))
        .await
        .ok()
        .flatten();
    // Rebuilt from the decoded segments: never `//host`, never `..`.
    let canonical_url: String = segments
        .iter()
        .map(|s| format!("/{}", pages::encode(s)))
        .collect();
    match entry {
        None => (StatusCode::NOT_FOUND, "not in the store").into_response(),
        Some(Entry::File(path)) => serve_file(&path, request).await,
        Some(Entry::Directory(_)) if !request.uri().path().ends_with('/') => {
            // Relative links inside a directory need the trailing slash.
            Redirect::permanent(&format!("{canonical_url}/")).into_response()
        }
        Some(Entry::Directory(path)) => {
            let entries = tokio::task::spawn_blocking(move || directory_entries(&path))
                .await
                .unwrap_or_default();
            Html(pages::directory(&format!("{canonical_url}/"), &entries)).into_response()
        }
    }
}

/// The percent-decoded segments of a request path, empty ones dropped, or
/// why the path is refused: a segment that is `.` or `..`, holds a
/// separator or NUL once decoded, or is not UTF-8.
fn store_segments(raw_path: &str) -> Result<Vec<String>, &'static str> {
    let mut segments = Vec::new();
    for raw in raw_path.split('/') {
        let segment = percent_decode_str(raw)
            .decode_utf8()
            .map_err(|_| "path is not UTF-8")?;
        match &*segment {
            "" => {}
            "." | ".." => return Err("`.` and `..` are not allowed in paths"),
            s if s.contains(['/', '\\', '\0']) => {
                return Err("encoded separators are not allowed in paths")
            }
            s => segments.push(s.to_string()),
        }
    }
    Ok(segments)
}

/// The file or directory `segments` name under `store`, if it exists and,
/// with every symlink resolved, is inside the store.
fn resolve(store: &Path, segments: &[String]) -> Option<Entry> {
    let root = std::fs::canonicalize(store).ok()?;
    let mut path = root.clone();
    path.extend(segments);
    let real = std::fs::canonicalize(&path).ok()?;
    if !real.starts_with(&root) {
        return None;
    }
    let meta = std::fs::metadata(&real).ok()?;
    if meta.is_dir() {
        Some(Entry::Directory(real))
    } else if meta.is_file() {
        Some(Entry::File(real))
    } else {
        None
    }
}

/// A directory's entries, sorted by name: (name, is a directory). Entries
/// whose names are not UTF-8 are left out (they could not be linked to).
fn directory_entries(dir: &Path) -> Vec<(String, bool)> {
    let Ok(read) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut entries: Vec<(String, bool)> = read
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            Some((name, e.path().is_dir()))
        })
        .collect();
    entries.sort();
    entries
}

async fn serve_file(path: &Path, request: Request<Body>) -> Response {
    match ServeFile::new_with_mime(path, &content_type(path))
        .oneshot(request)
        .await
    {
        Ok(response) => response.into_response(),
        Err(never) => match never {},
    }
}

/// The content type of a store file (module docs).
pub fn content_type(path: &Path) -> mime::Mime {
    match path.extension().and_then(|e| e.to_str()) {
        Some("jsonl" | "log") => mime::TEXT_PLAIN_UTF_8,
        _ => mime_guess::from_path(path).first_or_octet_stream(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_that_could_climb_out_of_the_store_are_refused_before_any_lookup() {
        for bad in [
            "/../etc/passwd",
            "/a/../../etc/passwd",
            "/%2e%2e/etc/passwd",
            "/a/%2E%2E/%2e%2e/x",
            "/a%2f..%2fb",
            "/%2fetc%2fpasswd",
            "/a/.%2e/b",
            "/a%5c..%5cb",
            "/a%00b",
            "/%ff",
        ] {
            assert!(store_segments(bad).is_err(), "{bad} was accepted");
        }
        assert_eq!(
            store_segments("//set/20250101T000000.000Z/report%20x.html").unwrap(),
            ["set", "20250101T000000.000Z", "report x.html"]
        );
    }

    #[test]
    fn store_files_get_their_content_types() {
        let of = |name: &str| content_type(Path::new(name)).to_string();
        assert_eq!(of("report.html"), "text/html");
        assert_eq!(of("rate.svg"), "image/svg+xml");
        assert_eq!(of("rate.png"), "image/png");
        assert_eq!(of("results.json"), "application/json");
        assert_eq!(of("history.jsonl"), "text/plain; charset=utf-8");
        assert_eq!(of("nodes/n1.log"), "text/plain; charset=utf-8");
        assert!(of("junit.xml").ends_with("/xml"), "{}", of("junit.xml"));
    }
}
