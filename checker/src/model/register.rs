//! `register` (read/write) and `cas-register` (read/write/cas).
//!
//! The state is the interned id of the value held; nil ("holds nothing") is a
//! value like any other. A `cas [from to]` that completed `ok` succeeded: it
//! needs the register to hold `from`. A failed cas was dropped when pairing.

use serde_json::Value;

use super::{pair_of, read_is_unconstrained, Interner, Model, ModelError, NilRead};
use crate::pair::Call;

/// A register op with interned values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RegisterOp {
    /// Observed this value.
    Read(u32),
    /// Set the value.
    Write(u32),
    /// Set `to` if it held `from`.
    Cas(u32, u32),
}

/// A single register; with `cas` it also accepts compare-and-set.
#[derive(Clone, Debug)]
pub struct Register {
    values: Interner,
    init: u32,
    cas: bool,
    nil_read: NilRead,
    /// Per value id: some op needs the register to hold it (a read, a cas).
    observed: Vec<bool>,
}

impl Register {
    /// A register holding `init`, accepting `cas` ops when `cas` is set.
    pub fn new(init: &Value, cas: bool, nil_read: NilRead) -> Self {
        let mut values = Interner::default();
        let init = values.intern(init);
        Register {
            values,
            init,
            cas,
            nil_read,
            observed: Vec::new(),
        }
    }

    fn show(&self, id: u32) -> String {
        self.values.value(id).to_string().replace("null", "nil")
    }
}

impl Model for Register {
    type State = u32;
    type Op = RegisterOp;

    fn compile(&mut self, call: &Call) -> Result<Option<RegisterOp>, ModelError> {
        let op = self.compile_op(call)?;
        if let Some(RegisterOp::Read(v) | RegisterOp::Cas(v, _)) = op {
            if self.observed.len() <= v as usize {
                self.observed.resize(v as usize + 1, false);
            }
            self.observed[v as usize] = true;
        }
        Ok(op)
    }

    fn droppable(&self, op: &RegisterOp) -> bool {
        match *op {
            RegisterOp::Write(v) | RegisterOp::Cas(_, v) => {
                !self.observed.get(v as usize).copied().unwrap_or(false)
            }
            RegisterOp::Read(_) => false,
        }
    }

    /// A pure op; or a write (or cas) whose value no op of `rest` reads or
    /// compares with: in a linearization only writes can follow it until
    /// the next write, and they are legal whatever the register held.
    fn removable(&self, op: &RegisterOp, rest: &[&RegisterOp]) -> bool {
        match *op {
            _ if self.pure(op) => true,
            RegisterOp::Write(v) | RegisterOp::Cas(_, v) => !rest
                .iter()
                .any(|o| matches!(**o, RegisterOp::Read(r) | RegisterOp::Cas(r, _) if r == v)),
            RegisterOp::Read(_) => true,
        }
    }

    fn init(&self) -> u32 {
        self.init
    }

    #[inline]
    fn step(&self, state: &u32, op: &RegisterOp) -> Option<u32> {
        match *op {
            RegisterOp::Read(v) => (v == *state).then_some(v),
            RegisterOp::Write(v) => Some(v),
            RegisterOp::Cas(from, to) => (from == *state).then_some(to),
        }
    }

    fn pure(&self, op: &RegisterOp) -> bool {
        match *op {
            RegisterOp::Read(_) => true,
            RegisterOp::Cas(from, to) => from == to,
            RegisterOp::Write(_) => false,
        }
    }

    fn state_json(&self, state: &u32) -> Value {
        self.values.value(*state).clone()
    }

    fn show_op(&self, op: &RegisterOp) -> String {
        match *op {
            RegisterOp::Read(v) => format!("read {}", self.show(v)),
            RegisterOp::Write(v) => format!("write {}", self.show(v)),
            RegisterOp::Cas(a, b) => format!("cas {} -> {}", self.show(a), self.show(b)),
        }
    }

    fn noun(&self) -> &'static str {
        "register holds"
    }
}

impl Register {
    fn compile_op(&mut self, call: &Call) -> Result<Option<RegisterOp>, ModelError> {
        match call.f {
            "read" if read_is_unconstrained(call, self.nil_read) => Ok(None),
            "read" => Ok(Some(RegisterOp::Read(self.values.intern(call.value)))),
            "write" => Ok(Some(RegisterOp::Write(self.values.intern(call.value)))),
            "cas" if self.cas => {
                let (from, to) = pair_of(call, "a cas value [from, to]")?;
                let (from, to) = (self.values.intern(from), self.values.intern(to));
                Ok(Some(RegisterOp::Cas(from, to)))
            }
            f => {
                let expected = if self.cas {
                    "read, write or cas"
                } else {
                    "read or write"
                };
                Err(ModelError::new(
                    call,
                    format!("this model takes {expected}, not {f:?}"),
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pair::Outcome;
    use serde_json::json;

    fn call(f: &str, value: Value, outcome: Outcome) -> Call<'static> {
        Call {
            process: 0,
            f: Box::leak(f.to_string().into_boxed_str()),
            key: None,
            value: Box::leak(Box::new(value)),
            outcome,
            invoke_index: 0,
            complete_index: None,
            invoke_time: None,
            complete_time: None,
        }
    }

    #[test]
    fn cas_needs_the_from_value_and_reads_need_the_held_value() {
        let mut m = Register::new(&json!(0), true, NilRead::Value);
        let cas = m
            .compile(&call("cas", json!([0, 2]), Outcome::Ok))
            .unwrap()
            .unwrap();
        let read2 = m
            .compile(&call("read", json!(2), Outcome::Ok))
            .unwrap()
            .unwrap();
        let s = m.init();
        let s2 = m.step(&s, &cas).unwrap();
        assert_eq!(m.step(&s2, &read2), Some(s2));
        assert_eq!(m.step(&s, &read2), None);
        assert_eq!(m.step(&s2, &cas), None);
        assert_eq!(m.show_op(&cas), "cas 0 -> 2");
    }

    #[test]
    fn nil_read_is_a_value_by_default_and_unconstrained_under_knossos_convention() {
        let mut strict = Register::new(&Value::Null, false, NilRead::Value);
        let nil = strict
            .compile(&call("read", Value::Null, Outcome::Ok))
            .unwrap();
        assert_eq!(
            strict.step(&strict.init(), &nil.unwrap()),
            Some(strict.init())
        );
        let mut knossos = Register::new(&json!(0), false, NilRead::Unknown);
        assert_eq!(
            knossos
                .compile(&call("read", Value::Null, Outcome::Ok))
                .unwrap(),
            None
        );
    }

    #[test]
    fn plain_register_refuses_cas_with_a_reason() {
        let mut m = Register::new(&json!(0), false, NilRead::Value);
        let err = m
            .compile(&call("cas", json!([0, 1]), Outcome::Ok))
            .unwrap_err();
        assert!(err.message.contains("read or write"), "{err}");
    }
}
