//! Clients: how a worker performs an op against the system (Jepsen's
//! `jepsen.client`).
//!
//! A client turns an [`Invocation`] into a [`Completion`]. Errors are
//! outcomes, not harness failures: a definite error (the op certainly did not
//! happen) completes as `fail`; an indefinite one (timeout, lost connection
//! after sending) as `info`. The [`Timeout`] wrapper turns a call past its
//! deadline into `info` — or `fail` for an op that changes nothing, like a
//! read.
//!
//! [`external`] is a client that is a program in any language, spoken to
//! over its stdin and stdout (docs/client-protocol.md).

pub mod external;

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use checker::history::OpType;
use serde_json::Value;

use crate::generator::Invocation;

/// A boxed future, so clients can be trait objects.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// How an op ended.
#[derive(Clone, Debug, PartialEq)]
pub struct Completion {
    /// `ok`, `fail` or `info`.
    pub op_type: OpType,
    /// The completion's value (a read's result; otherwise usually the invocation's).
    pub value: Value,
    /// The node that answered, if any.
    pub node: Option<String>,
    /// Why it failed or is indeterminate.
    pub error: Option<Value>,
}

impl Completion {
    /// It happened, with this value.
    pub fn ok(value: Value) -> Self {
        Completion {
            op_type: OpType::Ok,
            value,
            node: None,
            error: None,
        }
    }

    /// It certainly did not happen.
    pub fn fail(value: Value, error: impl Into<Value>) -> Self {
        Completion {
            op_type: OpType::Fail,
            value,
            node: None,
            error: Some(error.into()),
        }
    }

    /// Unknown whether it happened.
    pub fn info(value: Value, error: impl Into<Value>) -> Self {
        Completion {
            op_type: OpType::Info,
            value,
            node: None,
            error: Some(error.into()),
        }
    }

    /// The same completion, answered by `node`.
    pub fn from_node(mut self, node: impl Into<String>) -> Self {
        self.node = Some(node.into());
        self
    }
}

/// Performs ops for one worker. Each worker owns its client.
pub trait Client: Send {
    /// Performs `op`; never panics on a system error, which is an outcome.
    fn invoke<'a>(&'a mut self, op: &'a Invocation) -> BoxFuture<'a, Completion>;

    /// Why this client takes no more ops, once it has given up (an
    /// external client after repeated protocol errors): the interpreter
    /// retires its worker. `None` while it works.
    fn retired(&self) -> Option<String> {
        None
    }

    /// Ends the client gracefully at the end of the run (an external
    /// client closes its program's stdin and waits for it); dropping a
    /// client ends it too, at once.
    fn close(&mut self) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }
}

/// Completes a call that outlives `limit` as `info` (or `fail` when
/// `read_only` says the op changes nothing), as Jepsen's timeout wrapper does.
pub struct Timeout<C> {
    inner: C,
    limit: Duration,
    read_only: fn(&Invocation) -> bool,
}

impl<C: Client> Timeout<C> {
    /// Wraps `inner`.
    pub fn new(inner: C, limit: Duration, read_only: fn(&Invocation) -> bool) -> Self {
        Timeout {
            inner,
            limit,
            read_only,
        }
    }
}

impl<C: Client> Client for Timeout<C> {
    fn invoke<'a>(&'a mut self, op: &'a Invocation) -> BoxFuture<'a, Completion> {
        Box::pin(async move {
            let limit = self.limit;
            let read_only = (self.read_only)(op);
            match tokio::time::timeout(limit, self.inner.invoke(op)).await {
                Ok(done) => done,
                Err(_) if read_only => Completion::fail(op.value.clone(), "timeout"),
                Err(_) => Completion::info(op.value.clone(), "timeout"),
            }
        })
    }

    fn retired(&self) -> Option<String> {
        self.inner.retired()
    }

    fn close(&mut self) -> BoxFuture<'_, ()> {
        self.inner.close()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Slow(Duration);

    impl Client for Slow {
        fn invoke<'a>(&'a mut self, op: &'a Invocation) -> BoxFuture<'a, Completion> {
            Box::pin(async move {
                tokio::time::sleep(self.0).await;
                Completion::ok(op.value.clone())
            })
        }
    }

    fn is_read(op: &Invocation) -> bool {
        op.f == "read"
    }

    #[tokio::test]
    async fn a_slow_write_is_info_and_a_slow_read_is_fail() {
        let mut c = Timeout::new(
            Slow(Duration::from_secs(5)),
            Duration::from_millis(20),
            is_read,
        );
        let w = c.invoke(&Invocation::new("write", Value::from(1))).await;
        assert_eq!(w.op_type, OpType::Info);
        let r = c.invoke(&Invocation::new("read", Value::Null)).await;
        assert_eq!(r.op_type, OpType::Fail);
        let mut fast = Timeout::new(Slow(Duration::ZERO), Duration::from_secs(1), is_read);
        let ok = fast.invoke(&Invocation::new("write", Value::from(1))).await;
        assert_eq!(ok.op_type, OpType::Ok);
    }
}
