//! Client-facing wire types: what goes over HTTP between a client (the
//! harness) and a node. The harness uses these exact definitions through
//! [`crate::client`].
//!
//! # Bodies
//! - `GET /kv/{key}` → `200` with the value as JSON (`null` when missing).
//! - `PUT /kv/{key}` with the value as body → `200` [`WriteAck`].
//! - `POST /kv/{key}/cas` with [`CasBody`] → `200` [`WriteAck`].
//! - `POST /kv/{key}/append` with the element as body → `200` [`WriteAck`].
//! - `POST /txn` with a list of [`MicroOp`] → `200` the same list, reads
//!   filled in.
//! - `GET /status` → `200` [`Status`].
//! - Any error → a 4xx/5xx status with an [`ErrorBody`]; see the table in the
//!   crate docs for which errors are definite.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt;

use crate::mode::Modes;

/// A node's id, such as `n3`. Ids order by their number (`n10 > n9`), then
/// by their text; the bully election and last-write-wins use that order.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct NodeId(pub String);

impl NodeId {
    /// The number in the id (its trailing digits), 0 when it has none.
    pub fn number(&self) -> u64 {
        let digits: String = self
            .0
            .chars()
            .rev()
            .take_while(|c| c.is_ascii_digit())
            .collect();
        digits
            .chars()
            .rev()
            .collect::<String>()
            .parse()
            .unwrap_or(0)
    }
}

impl Ord for NodeId {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.number(), &self.0).cmp(&(other.number(), &other.0))
    }
}

impl PartialOrd for NodeId {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for NodeId {
    fn from(id: &str) -> Self {
        NodeId(id.to_string())
    }
}

/// The longest key a node accepts, in bytes.
pub const MAX_KEY_LEN: usize = 256;

/// Whether `key` is a valid key: 1..=256 bytes of `A-Z a-z 0-9 _ - . :`.
pub fn valid_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= MAX_KEY_LEN
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-.:".contains(&b))
}

/// Body of `POST /kv/{key}/cas`: set the key to `to` if it holds `from` (a
/// missing key holds `null`). Both fields are required.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CasBody {
    /// The value the key must hold.
    pub from: Value,
    /// The value to store.
    pub to: Value,
}

/// Answer to an accepted write.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WriteAck {
    /// Oplog index of the entry holding the write.
    pub index: u64,
    /// Term of that entry (0 in multi-primary topology).
    pub term: u64,
}

/// The function of a transaction micro-op.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum MicroF {
    /// `"r"`: read the key; the request carries `null`, the answer the value.
    #[serde(rename = "r")]
    Read,
    /// `"append"`: append the value to the list at the key.
    #[serde(rename = "append")]
    Append,
    /// `"w"`: write the value.
    #[serde(rename = "w")]
    Write,
}

/// One micro-op of `POST /txn`, on the wire `["r","k",null]`,
/// `["append","k",3]` or `["w","k",3]` (Elle's list-append / rw-register).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MicroOp(pub MicroF, pub String, pub Value);

impl MicroOp {
    /// Whether this micro-op only reads (`"r"`). A transaction of such
    /// micro-ops alone is served as a read (`--reads`), not logged.
    pub fn is_read(&self) -> bool {
        self.0 == MicroF::Read
    }
}

/// Where an entry sits in an oplog.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct LogPosition {
    /// Term of the entry.
    pub term: u64,
    /// Index of the entry (1-based; 0 for an empty log).
    pub index: u64,
}

/// A node's role.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// Accepts writes (in multi-primary topology every node is primary).
    Primary,
    /// Follows a primary.
    Secondary,
    /// Asking for votes (majority election only).
    Candidate,
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Primary => "primary",
            Role::Secondary => "secondary",
            Role::Candidate => "candidate",
        })
    }
}

/// Counters a node keeps since it started (not persisted).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    /// Oplog entries this node read from its data dir at start.
    pub entries_recovered: u64,
    /// Oplog entries this node received from others through replication.
    pub entries_received: u64,
    /// Oplog entries this node sent to others.
    pub entries_sent: u64,
    /// Oplog entries this node discarded in rollbacks.
    pub entries_rolled_back: u64,
    /// Elections this node won (terms it became primary of).
    pub elections_won: u64,
}

/// Body of `GET /status`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Status {
    /// The node's id.
    pub id: NodeId,
    /// Its role.
    pub role: Role,
    /// Its current term.
    pub term: u64,
    /// The primary it believes in, if any.
    pub primary: Option<NodeId>,
    /// Position of its last oplog entry.
    pub oplog: LogPosition,
    /// Highest oplog index it knows to be held by a majority.
    pub commit_index: u64,
    /// Highest oplog index it knows to be on its own disk (or its own
    /// buffer, with `--fsync never`).
    pub durable_index: u64,
    /// Its modes.
    pub mode: Modes,
    /// Offset of its clock, in milliseconds.
    pub clock_offset_ms: i64,
    /// Replication counters.
    pub counters: Counters,
}

/// Kinds of error a node answers with. See the table in the crate docs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ErrorKind {
    /// Definite: this node does not accept this request in its current role;
    /// [`ErrorBody::primary`] names the primary it believes in, if any.
    NotPrimary,
    /// Definite: the key did not hold the expected value.
    CasMismatch,
    /// Definite: the request was malformed (bad JSON, bad key, too large,
    /// unknown route, wrong value type).
    BadRequest,
    /// Definite: a transaction could not apply (e.g. an append to a
    /// non-list value); none of it was applied.
    TxnConflict,
    /// Indefinite: replication or leadership confirmation did not finish in
    /// time; the write may still commit later.
    Timeout,
}

impl ErrorKind {
    /// Whether the operation certainly did not take effect.
    pub fn is_definite(self) -> bool {
        !matches!(self, ErrorKind::Timeout)
    }

    /// The HTTP status a node answers this error with.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorKind::NotPrimary => 421,
            ErrorKind::CasMismatch | ErrorKind::TxnConflict => 409,
            ErrorKind::BadRequest => 400,
            ErrorKind::Timeout => 504,
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = serde_json::to_value(self).ok();
        f.write_str(name.as_ref().and_then(Value::as_str).unwrap_or("?"))
    }
}

/// Body of every error answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// What went wrong.
    pub error: ErrorKind,
    /// Why, for people.
    pub message: String,
    /// For `not-primary`: the primary this node believes in, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary: Option<NodeId>,
}

impl ErrorBody {
    /// An error without a primary hint.
    pub fn new(error: ErrorKind, message: impl Into<String>) -> Self {
        ErrorBody {
            error,
            message: message.into(),
            primary: None,
        }
    }
}

impl fmt::Display for ErrorBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.error, self.message)?;
        if let Some(primary) = &self.primary {
            write!(f, " (primary: {primary})")?;
        }
        Ok(())
    }
}

/// Body of `POST /admin/clock`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClockBody {
    /// The offset to set (not add), in milliseconds; 0 resets the clock.
    pub offset_ms: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_order_by_number() {
        assert!(NodeId::from("n10") > NodeId::from("n9"));
        assert!(NodeId::from("n2") < NodeId::from("n3"));
        assert_eq!(NodeId::from("node").number(), 0);
    }

    #[test]
    fn micro_ops_are_triples() {
        let ops: Vec<MicroOp> =
            serde_json::from_str(r#"[["r","x",null],["append","x",3],["w","y",1]]"#).unwrap();
        assert_eq!(ops[1], MicroOp(MicroF::Append, "x".into(), Value::from(3)));
        assert_eq!(serde_json::to_string(&ops[0]).unwrap(), r#"["r","x",null]"#);
        assert!(serde_json::from_str::<Vec<MicroOp>>(r#"[["x","k",1]]"#).is_err());
    }

    #[test]
    fn only_r_micro_ops_are_reads() {
        let ops: Vec<MicroOp> =
            serde_json::from_str(r#"[["r","x",null],["append","x",3],["w","y",1]]"#).unwrap();
        let reads: Vec<bool> = ops.iter().map(MicroOp::is_read).collect();
        assert_eq!(reads, [true, false, false]);
    }

    #[test]
    fn cas_body_needs_both_fields() {
        assert!(serde_json::from_str::<CasBody>(r#"{"from":1}"#).is_err());
        let body: CasBody = serde_json::from_str(r#"{"from":null,"to":2}"#).unwrap();
        assert_eq!(body.from, Value::Null);
    }

    #[test]
    fn keys_are_checked() {
        assert!(valid_key("k-1.a:b_c"));
        assert!(!valid_key(""));
        assert!(!valid_key("a/b"));
        assert!(!valid_key(&"x".repeat(MAX_KEY_LEN + 1)));
    }
}
