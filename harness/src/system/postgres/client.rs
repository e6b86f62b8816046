//! [`PgClient`]: a worker's client, one connection (tokio-postgres, no
//! TLS) to the server, as user `postgres`, every transaction at the test's
//! isolation level (`SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION
//! LEVEL ...` once per connection).
//!
//! # Tables and workloads
//! - append: `list_append (k int primary key, v text)`, a list stored as
//!   its elements joined by commas. One SQL transaction per faultline
//!   transaction (`BEGIN`, a statement per micro-op, `COMMIT`); an append
//!   is an upsert that concatenates (`INSERT ... ON CONFLICT (k) DO UPDATE
//!   SET v = t.v || ',' || excluded.v`), a read a `SELECT`.
//! - rw-register: `rw_register (k int primary key, v bigint)`, a write an
//!   upsert of the value, a read a `SELECT`, one SQL transaction likewise.
//! - register: `register (k int primary key, v bigint)`, each op one
//!   statement in a transaction of its own (autocommit): `SELECT`, an
//!   upsert, and `UPDATE ... WHERE k = $1 AND v = $2` for cas (no row
//!   updated: `fail` with `cas-mismatch`).
//!
//! # Errors: definite or indefinite
//! - no connection (refused, or the server is starting up, in recovery, or
//!   paused past the connect timeout): `fail`, nothing was sent;
//! - any error before `COMMIT` was sent — an error answer (a `40001`
//!   serialization failure, a `40P01` deadlock, any other) or a lost
//!   connection: `fail`. PostgreSQL aborts a transaction at its first
//!   error, and one whose connection drops before `COMMIT`; it never
//!   commits without one;
//! - `COMMIT` answered with a class `40` error (serialization failure,
//!   deadlock), class `23` (a deferred constraint) or class `25` (no
//!   transaction to commit): `fail`, the transaction rolled back;
//! - `COMMIT` sent and the connection lost, or answered by any other error
//!   (`57P01` admin shutdown and other `FATAL`s can arrive after the
//!   commit record is written): `info`, it may have committed;
//! - a register `write` or `cas` (one autocommit statement) follows the
//!   `COMMIT` rule, as the statement is its own commit;
//! - anything that only reads (a `read`, a read-only transaction): `fail`
//!   whatever went wrong, a read changes nothing.
//!
//! - set: `set_elements (e bigint primary key)`, an add an `INSERT` (one
//!   autocommit statement, so the `COMMIT` rule), a read `SELECT e FROM
//!   set_elements ORDER BY e`.
//!
//! # Where connections go
//! To one server ([`Target::Local`]), or ([`Target::Primary`], streaming
//! replication) to whichever node takes writes: the nodes are tried in
//! order (the worker's own first), each with libpq's
//! `target_session_attrs=read-write` (tokio-postgres asks the server
//! `SHOW transaction_read_only` and moves on when it is a hot standby), and
//! the first that takes writes is kept until the connection breaks or a
//! call is cut off — as libpq multi-host clients do: a primary cut off
//! from its peers goes on taking this client's writes while it answers.
//!
//! A call cut off by the timeout wrapper leaves the connection mid-way; the
//! next call sees it unfinished and opens a new one (dropping the old one
//! aborts whatever it had not committed).

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::{json, Value};
use tokio_postgres::config::TargetSessionAttrs;
use tokio_postgres::{Client as Connection, NoTls, Statement};

use super::options::PgIsolation;
use crate::client::{BoxFuture, Client, Completion, Timeout};
use crate::generator::Invocation;
use crate::workload::{is_read_only, WorkloadKind};

/// The tables, created by setup.
pub const SCHEMA: &str = "\
    CREATE TABLE IF NOT EXISTS list_append (k int PRIMARY KEY, v text NOT NULL);\n\
    CREATE TABLE IF NOT EXISTS rw_register (k int PRIMARY KEY, v bigint NOT NULL);\n\
    CREATE TABLE IF NOT EXISTS register (k int PRIMARY KEY, v bigint NOT NULL);\n\
    CREATE TABLE IF NOT EXISTS set_elements (e bigint PRIMARY KEY);";

/// The statements of every workload, prepared on each connection.
struct Statements {
    append: Statement,
    read_list: Statement,
    write_rw: Statement,
    read_rw: Statement,
    write_register: Statement,
    cas_register: Statement,
    read_register: Statement,
    add_element: Statement,
    read_set: Statement,
}

const SQL: [&str; 9] = [
    "INSERT INTO list_append AS t (k, v) VALUES ($1, $2) \
     ON CONFLICT (k) DO UPDATE SET v = t.v || ',' || excluded.v",
    "SELECT v FROM list_append WHERE k = $1",
    "INSERT INTO rw_register AS t (k, v) VALUES ($1, $2) \
     ON CONFLICT (k) DO UPDATE SET v = excluded.v",
    "SELECT v FROM rw_register WHERE k = $1",
    "INSERT INTO register AS t (k, v) VALUES ($1, $2) \
     ON CONFLICT (k) DO UPDATE SET v = excluded.v",
    "UPDATE register SET v = $3 WHERE k = $1 AND v = $2",
    "SELECT v FROM register WHERE k = $1",
    "INSERT INTO set_elements (e) VALUES ($1)",
    "SELECT e FROM set_elements ORDER BY e",
];

/// An open connection and its prepared statements.
struct Session {
    connection: Connection,
    statements: Statements,
    /// The node it is connected to.
    node: String,
}

/// Where a client's connections go (see the module docs).
#[derive(Clone, Debug)]
pub enum Target {
    /// The one server, node `node` on 127.0.0.1:`port`.
    Local {
        /// Its node id.
        node: String,
        /// Its port.
        port: u16,
    },
    /// Whichever of these nodes (id, address) takes writes, tried in order.
    Primary(Vec<(String, SocketAddr)>),
}

impl Target {
    /// The node named when no connection is open.
    fn first_node(&self) -> String {
        match self {
            Target::Local { node, .. } => node.clone(),
            Target::Primary(nodes) => nodes.first().map(|n| n.0.clone()).unwrap_or_default(),
        }
    }
}

/// One worker's client.
pub struct PgClient {
    target: Target,
    isolation: PgIsolation,
    workload: WorkloadKind,
    connect_timeout: Duration,
    session: Option<Session>,
    /// A call began on the session and did not finish (it was cut off).
    unfinished: bool,
}

/// Where a transaction's error came.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    /// Before `COMMIT` was sent.
    BeforeCommit,
    /// In answer to `COMMIT` (or to an autocommit statement that writes).
    Commit,
}

/// Connects to the server on 127.0.0.1:`port` as `postgres`, all of it
/// (TCP and the startup exchange) within `timeout`; the connection's task
/// runs on the current runtime.
pub async fn connect(port: u16, timeout: Duration) -> Result<Connection, String> {
    connect_to(
        ([127, 0, 0, 1], port).into(),
        TargetSessionAttrs::Any,
        timeout,
    )
    .await
}

/// Connects to the server at `addr` as `postgres`, accepting it only if it
/// has `attrs` (read-write: not a hot standby), within `timeout`.
pub async fn connect_to(
    addr: SocketAddr,
    attrs: TargetSessionAttrs,
    timeout: Duration,
) -> Result<Connection, String> {
    let mut config = tokio_postgres::Config::new();
    config
        .host(addr.ip().to_string())
        .port(addr.port())
        .target_session_attrs(attrs)
        .user("postgres")
        .dbname("postgres")
        .application_name("faultline")
        .connect_timeout(timeout);
    let connecting = config.connect(NoTls);
    let (client, connection) = match tokio::time::timeout(timeout, connecting).await {
        Ok(Ok(pair)) => pair,
        Ok(Err(e)) => return Err(describe(&e)),
        Err(_) => return Err(format!("no connection within {timeout:?}")),
    };
    tokio::spawn(async move {
        // Ends when the client is dropped or the server goes away; the
        // client's calls report why.
        let _ = connection.await;
    });
    Ok(client)
}

/// Whether the server answers `SELECT 1`; `Err` says why not.
pub async fn probe(port: u16, timeout: Duration) -> Result<(), String> {
    let client = connect(port, timeout).await?;
    match tokio::time::timeout(timeout, client.simple_query("SELECT 1")).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(describe(&e)),
        Err(_) => Err(format!("no answer to SELECT 1 within {timeout:?}")),
    }
}

/// Creates the workloads' tables ([`SCHEMA`]).
pub async fn create_tables(port: u16, timeout: Duration) -> Result<(), String> {
    create_tables_at(([127, 0, 0, 1], port).into(), timeout).await
}

/// Creates the workloads' tables ([`SCHEMA`]) on the server at `addr`.
pub async fn create_tables_at(addr: SocketAddr, timeout: Duration) -> Result<(), String> {
    let client = connect_to(addr, TargetSessionAttrs::ReadWrite, timeout).await?;
    client.batch_execute(SCHEMA).await.map_err(|e| describe(&e))
}

impl PgClient {
    /// A client of the server on 127.0.0.1:`port` (node `node`) for
    /// `workload`, connecting when first used, each connection within
    /// `timeout`.
    pub fn new(
        port: u16,
        node: &str,
        isolation: PgIsolation,
        workload: WorkloadKind,
        timeout: Duration,
    ) -> PgClient {
        let target = Target::Local {
            node: node.to_string(),
            port,
        };
        PgClient::to(target, isolation, workload, timeout)
    }

    /// A client whose connections go to `target`, otherwise as
    /// [`PgClient::new`].
    pub fn to(
        target: Target,
        isolation: PgIsolation,
        workload: WorkloadKind,
        timeout: Duration,
    ) -> PgClient {
        PgClient {
            target,
            isolation,
            workload,
            connect_timeout: timeout,
            session: None,
            unfinished: false,
        }
    }

    /// The same client, cut off after `limit` (reads as `fail`, the rest
    /// as `info`).
    pub fn timed(self, limit: Duration) -> Timeout<PgClient> {
        Timeout::new(self, limit, is_read_only)
    }

    /// Opens a session (again) unless one is open and idle.
    async fn ensure_session(&mut self) -> Result<(), String> {
        let broken = self
            .session
            .as_ref()
            .is_some_and(|s| s.connection.is_closed());
        if broken || self.unfinished {
            self.session = None;
            self.unfinished = false;
        }
        if self.session.is_none() {
            self.session = Some(self.open().await?);
        }
        Ok(())
    }

    /// A connection where [`Target`] says, and the node it is to.
    async fn connection(&self) -> Result<(Connection, String), String> {
        let nodes = match &self.target {
            Target::Local { node, port } => {
                let connection = connect(*port, self.connect_timeout).await?;
                return Ok((connection, node.clone()));
            }
            Target::Primary(nodes) => nodes,
        };
        let mut why = Vec::new();
        for (node, addr) in nodes {
            let attempt = connect_to(*addr, TargetSessionAttrs::ReadWrite, self.connect_timeout);
            match attempt.await {
                Ok(connection) => return Ok((connection, node.clone())),
                Err(e) => why.push(format!("{node}: {e}")),
            }
        }
        Err(format!("no node takes writes: {}", why.join("; ")))
    }

    async fn open(&self) -> Result<Session, String> {
        let (connection, node) = self.connection().await?;
        let level = self.isolation.sql();
        let set = format!("SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL {level}");
        connection
            .batch_execute(&set)
            .await
            .map_err(|e| describe(&e))?;
        let mut prepared = Vec::with_capacity(SQL.len());
        for sql in SQL {
            prepared.push(connection.prepare(sql).await.map_err(|e| describe(&e))?);
        }
        let [append, read_list, write_rw, read_rw, write_register, cas_register, read_register, add_element, read_set] =
            <[Statement; 9]>::try_from(prepared).expect("one statement per SQL text");
        let statements = Statements {
            append,
            read_list,
            write_rw,
            read_rw,
            write_register,
            cas_register,
            read_register,
            add_element,
            read_set,
        };
        Ok(Session {
            connection,
            statements,
            node,
        })
    }

    /// The op's completion and the node it ran on.
    async fn perform(&mut self, op: &Invocation) -> (Completion, String) {
        let value = op.value.clone();
        let read_only = is_read_only(op);
        let first = self.target.first_node();
        if let Err(e) = self.ensure_session().await {
            return (
                Completion::fail(value, format!("not connected: {e}")),
                first,
            );
        }
        let Some(session) = self.session.as_ref() else {
            return (Completion::fail(value, "not connected"), first);
        };
        let node = session.node.clone();
        // Cleared only when the call runs to its end (see the module docs).
        self.unfinished = true;
        let outcome = match op.f.as_str() {
            "txn" => {
                let micro_ops = value.as_array().cloned().unwrap_or_default();
                txn(session, self.workload, &micro_ops).await
            }
            f if self.workload == WorkloadKind::Set => set_op(session, f, &value).await,
            f => {
                let key = op.key.as_deref().unwrap_or_default();
                register_op(session, f, key, &value).await
            }
        };
        self.unfinished = false;
        let completion = match outcome {
            Ok(done) => done,
            Err(e) => e.completion(value, read_only),
        };
        (completion, node)
    }
}

/// Why an op did not complete `ok`.
#[derive(Debug)]
enum OpError {
    /// The op is not one this client knows, or its key is not an integer.
    Bad(String),
    /// The server (or the connection) failed it at `stage`.
    Sql(Stage, tokio_postgres::Error),
}

impl OpError {
    /// The completion by the definite/indefinite rule of the module docs.
    fn completion(self, value: Value, read_only: bool) -> Completion {
        match self {
            OpError::Bad(reason) => Completion::fail(value, reason),
            OpError::Sql(stage, e) => {
                let reason = describe(&e);
                match read_only || definite(stage, &e) {
                    true => Completion::fail(value, reason),
                    false => Completion::info(value, reason),
                }
            }
        }
    }
}

/// Whether error `e` at `stage` certainly means nothing was committed.
fn definite(stage: Stage, e: &tokio_postgres::Error) -> bool {
    match stage {
        // No COMMIT, no commit: an error answer or a lost connection alike.
        Stage::BeforeCommit => true,
        Stage::Commit => e
            .code()
            .is_some_and(|code| matches!(&code.code()[..2], "40" | "23" | "25")),
    }
}

/// `e` with its SQLSTATE, e.g. `40001 could not serialize access ...`.
fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} {}", db.code().code(), db.message()),
        None => e.to_string(),
    }
}

/// The integer row key of `key`.
fn row_key(key: &Value) -> Result<i32, OpError> {
    let text = match key {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    text.parse()
        .map_err(|_| OpError::Bad(format!("key {text:?} is not an integer")))
}

/// An integer value as the tables hold it.
fn int_value(value: &Value) -> Result<i64, OpError> {
    value
        .as_i64()
        .ok_or_else(|| OpError::Bad(format!("value {value} is not an integer")))
}

/// One SQL transaction for a list-append or rw-register transaction.
async fn txn(
    session: &Session,
    workload: WorkloadKind,
    micro_ops: &[Value],
) -> Result<Completion, OpError> {
    let connection = &session.connection;
    let before = |e| OpError::Sql(Stage::BeforeCommit, e);
    connection.batch_execute("BEGIN").await.map_err(before)?;
    let mut done = Vec::with_capacity(micro_ops.len());
    for m in micro_ops {
        match micro_op(session, workload, m).await {
            Ok(completed) => done.push(completed),
            Err(e) => {
                // Leaves the session idle for the next transaction; a
                // ROLLBACK that fails has lost the connection, which the
                // next call sees closed and opens again.
                let _ = connection.batch_execute("ROLLBACK").await;
                return Err(e);
            }
        }
    }
    let commit = connection.batch_execute("COMMIT").await;
    commit.map_err(|e| OpError::Sql(Stage::Commit, e))?;
    Ok(Completion::ok(Value::Array(done)))
}

/// One micro-op inside a transaction of `workload` (which says which
/// table a read reads); the completed micro-op.
async fn micro_op(session: &Session, workload: WorkloadKind, m: &Value) -> Result<Value, OpError> {
    let connection = &session.connection;
    let s = &session.statements;
    let before = |e| OpError::Sql(Stage::BeforeCommit, e);
    let (f, key) = match (m.get(0).and_then(Value::as_str), m.get(1)) {
        (Some(f), Some(key)) => (f, key),
        _ => return Err(OpError::Bad(format!("not a micro-op: {m}"))),
    };
    let k = row_key(key)?;
    match f {
        "append" => {
            let element = int_value(&m[2])?.to_string();
            connection
                .execute(&s.append, &[&k, &element])
                .await
                .map_err(before)?;
            Ok(m.clone())
        }
        "w" => {
            let v = int_value(&m[2])?;
            connection
                .execute(&s.write_rw, &[&k, &v])
                .await
                .map_err(before)?;
            Ok(m.clone())
        }
        "r" => {
            let read = match workload {
                WorkloadKind::RwRegister => read_int(connection, &s.read_rw, k).await,
                _ => read_list(connection, &s.read_list, k).await,
            };
            Ok(json!(["r", key, read.map_err(before)?]))
        }
        other => Err(OpError::Bad(format!("unknown micro-op {other}"))),
    }
}

async fn read_list(
    connection: &Connection,
    statement: &Statement,
    k: i32,
) -> Result<Value, tokio_postgres::Error> {
    let row = connection.query_opt(statement, &[&k]).await?;
    let Some(row) = row else {
        return Ok(json!([]));
    };
    let text: String = row.get(0);
    Ok(Value::Array(parse_list(&text)))
}

async fn read_int(
    connection: &Connection,
    statement: &Statement,
    k: i32,
) -> Result<Value, tokio_postgres::Error> {
    let row = connection.query_opt(statement, &[&k]).await?;
    Ok(row.map_or(Value::Null, |row| json!(row.get::<_, i64>(0))))
}

/// A stored list's elements: `"1,2,3"` → `[1, 2, 3]`; an element that is
/// not an integer is kept as the string it is (the checker flags it).
pub fn parse_list(text: &str) -> Vec<Value> {
    text.split(',')
        .filter(|e| !e.is_empty())
        .map(|e| e.parse::<u64>().map_or_else(|_| json!(e), |n| json!(n)))
        .collect()
}

/// A set op: an add (one autocommit `INSERT`) or a read of every element.
async fn set_op(session: &Session, f: &str, value: &Value) -> Result<Completion, OpError> {
    let connection = &session.connection;
    let s = &session.statements;
    let commit = |e| OpError::Sql(Stage::Commit, e);
    match f {
        "add" => {
            let element = int_value(value)?;
            let add = connection.execute(&s.add_element, &[&element]).await;
            add.map_err(commit)?;
            Ok(Completion::ok(value.clone()))
        }
        "read" => {
            let rows = connection.query(&s.read_set, &[]).await.map_err(commit)?;
            let elements = rows.iter().map(|row| json!(row.get::<_, i64>(0)));
            Ok(Completion::ok(Value::Array(elements.collect())))
        }
        other => Err(OpError::Bad(format!("unknown op {other}"))),
    }
}

/// A register op: one autocommit statement.
async fn register_op(
    session: &Session,
    f: &str,
    key: &str,
    value: &Value,
) -> Result<Completion, OpError> {
    let connection = &session.connection;
    let s = &session.statements;
    let k = row_key(&json!(key))?;
    let commit = |e| OpError::Sql(Stage::Commit, e);
    match f {
        "read" => {
            let read = read_int(connection, &s.read_register, k).await;
            Ok(Completion::ok(read.map_err(commit)?))
        }
        "write" => {
            let v = int_value(value)?;
            let write = connection.execute(&s.write_register, &[&k, &v]).await;
            write.map_err(commit)?;
            Ok(Completion::ok(value.clone()))
        }
        "cas" => {
            let (from, to) = match value.as_array().map(Vec::as_slice) {
                Some([from, to]) => (int_value(from)?, int_value(to)?),
                _ => return Err(OpError::Bad("cas needs [from, to]".into())),
            };
            let cas = connection.execute(&s.cas_register, &[&k, &from, &to]).await;
            match cas.map_err(commit)? {
                0 => Ok(Completion::fail(value.clone(), "cas-mismatch")),
                _ => Ok(Completion::ok(value.clone())),
            }
        }
        other => Err(OpError::Bad(format!("unknown op {other}"))),
    }
}

impl Client for PgClient {
    fn invoke<'a>(&'a mut self, op: &'a Invocation) -> BoxFuture<'a, Completion> {
        Box::pin(async move {
            let (completion, node) = self.perform(op).await;
            completion.from_node(node)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stored_list_reads_back_as_its_elements_in_order() {
        assert_eq!(parse_list("1,2,10"), vec![json!(1), json!(2), json!(10)]);
        assert_eq!(parse_list(""), Vec::<Value>::new());
        assert_eq!(parse_list("3,x"), vec![json!(3), json!("x")]);
    }

    #[test]
    fn keys_must_be_integers() {
        assert_eq!(row_key(&json!("12")).unwrap(), 12);
        assert!(matches!(row_key(&json!("k1")), Err(OpError::Bad(_))));
    }

    #[tokio::test]
    async fn a_server_that_is_not_there_fails_every_op_definitely() {
        let port = crate::system::process::free_ports(1).unwrap()[0];
        let timeout = Duration::from_secs(1);
        let mut client = PgClient::new(
            port,
            "n1",
            PgIsolation::Serializable,
            WorkloadKind::Append,
            timeout,
        );
        let txn = Invocation::new("txn", json!([["append", "0", 1]]));
        let done = client.invoke(&txn).await;
        assert_eq!(done.op_type, checker::history::OpType::Fail, "{done:?}");
        assert_eq!(done.node.as_deref(), Some("n1"));
    }
}
