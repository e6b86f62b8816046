//! `kv`: a string per key with `get`, `put` and `append` (concatenation),
//! the key-value store of Porcupine's `kv` tests and MIT 6.5840's labs.
//! Histories give each op a `key`, so the checker checks each key's string
//! on its own. A missing key reads as the empty string (also what a nil
//! initial value means); a `get` must return the string exactly.

use std::sync::Arc;

use serde_json::Value;

use super::{Model, ModelError};
use crate::pair::{Call, Outcome};

/// A kv op on one key's string.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum KvOp {
    /// Observed this string.
    Get(Arc<str>),
    /// Set the string.
    Put(Arc<str>),
    /// Append to the string.
    Append(Arc<str>),
}

/// One key's string, starting at `init`.
#[derive(Clone, Debug, Default)]
pub struct Kv {
    init: Arc<str>,
}

impl Kv {
    /// A string starting as `init` (nil is the empty string).
    pub fn new(init: &Value) -> Result<Self, String> {
        match init {
            Value::Null => Ok(Kv::default()),
            Value::String(s) => Ok(Kv {
                init: Arc::from(s.as_str()),
            }),
            v => Err(format!("kv takes a string initial value, not {v}")),
        }
    }
}

/// The call's value as a string (nil as the empty string).
fn string(call: &Call) -> Result<Arc<str>, ModelError> {
    match call.value {
        Value::Null => Ok(Arc::from("")),
        Value::String(s) => Ok(Arc::from(s.as_str())),
        _ => Err(ModelError::new(call, "expected a string")),
    }
}

impl Model for Kv {
    type State = Arc<str>;
    type Op = KvOp;

    fn compile(&mut self, call: &Call) -> Result<Option<KvOp>, ModelError> {
        match call.f {
            // A get that never returned tells nothing.
            "get" if call.outcome == Outcome::Indeterminate => Ok(None),
            "get" => Ok(Some(KvOp::Get(string(call)?))),
            "put" => Ok(Some(KvOp::Put(string(call)?))),
            "append" => Ok(Some(KvOp::Append(string(call)?))),
            f => Err(ModelError::new(
                call,
                format!("this model takes get, put or append, not {f:?}"),
            )),
        }
    }

    fn init(&self) -> Arc<str> {
        self.init.clone()
    }

    fn step(&self, state: &Arc<str>, op: &KvOp) -> Option<Arc<str>> {
        match op {
            KvOp::Get(v) => (v == state).then(|| state.clone()),
            KvOp::Put(v) => Some(v.clone()),
            KvOp::Append(v) if v.is_empty() => Some(state.clone()),
            KvOp::Append(v) => Some(Arc::from(format!("{state}{v}"))),
        }
    }

    fn pure(&self, op: &KvOp) -> bool {
        match op {
            KvOp::Get(_) => true,
            KvOp::Append(v) => v.is_empty(),
            KvOp::Put(_) => false,
        }
    }

    fn state_json(&self, state: &Arc<str>) -> Value {
        Value::String(state.to_string())
    }

    fn show_op(&self, op: &KvOp) -> String {
        match op {
            KvOp::Get(v) => format!("get {v:?}"),
            KvOp::Put(v) => format!("put {v:?}"),
            KvOp::Append(v) => format!("append {v:?}"),
        }
    }

    fn noun(&self) -> &'static str {
        "the string is"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(text: &str) -> Arc<str> {
        Arc::from(text)
    }

    #[test]
    fn gets_see_the_puts_and_appends_before_them() {
        let m = Kv::new(&Value::Null).unwrap();
        let after = m.step(&m.init(), &KvOp::Append(s("x 0 0 y"))).unwrap();
        let after = m.step(&after, &KvOp::Append(s("x 1 0 y"))).unwrap();
        assert_eq!(&*after, "x 0 0 yx 1 0 y");
        assert!(m.step(&after, &KvOp::Get(s("x 0 0 yx 1 0 y"))).is_some());
        assert!(m.step(&after, &KvOp::Get(s("x 0 0 y"))).is_none());
        let put = m.step(&after, &KvOp::Put(s("z"))).unwrap();
        assert!(m.step(&put, &KvOp::Get(s("z"))).is_some());
        assert!(Kv::new(&Value::from(3)).is_err());
    }
}
