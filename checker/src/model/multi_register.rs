//! `multi-register`: transactions (`f` = `txn`) of reads and writes over
//! several named registers, e.g. `[["read","x",1],["write","y",2]]` (`r`/`w`
//! are accepted too). A txn applies atomically, its micro-ops in order.
//!
//! The state is one interned value id per register. Registers missing from the
//! initial object start out holding nil.

use std::collections::HashMap;

use serde_json::{Map, Value};

use super::{Interner, Model, ModelError, NilRead};
use crate::pair::{Call, Outcome};

/// One micro-op on register `reg` (an index into the model's register names).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MicroOp {
    /// Observed this value; `None` when the read tells nothing.
    Read(usize, Option<u32>),
    /// Set the value.
    Write(usize, u32),
}

/// Several registers read and written by transactions.
#[derive(Clone, Debug)]
pub struct MultiRegister {
    values: Interner,
    names: Vec<String>,
    by_name: HashMap<String, usize>,
    init: Map<String, Value>,
    nil_read: NilRead,
}

impl MultiRegister {
    /// Registers holding `init` (a JSON object of name → value; `null` for none).
    pub fn new(init: &Value, nil_read: NilRead) -> Result<Self, String> {
        let init = match init {
            Value::Object(map) => map.clone(),
            Value::Null => Map::new(),
            other => {
                return Err(format!(
                    "multi-register takes an object of initial values like {{\"x\":0}}, not {other}"
                ))
            }
        };
        let mut model = MultiRegister {
            values: Interner::default(),
            names: Vec::new(),
            by_name: HashMap::new(),
            init: init.clone(),
            nil_read,
        };
        for (name, value) in &init {
            model.register(name);
            model.values.intern(value);
        }
        model.values.intern(&Value::Null);
        Ok(model)
    }

    fn register(&mut self, name: &str) -> usize {
        if let Some(&i) = self.by_name.get(name) {
            return i;
        }
        self.names.push(name.to_string());
        self.by_name.insert(name.to_string(), self.names.len() - 1);
        self.names.len() - 1
    }

    fn micro_op(&mut self, call: &Call, mop: &Value) -> Result<Option<MicroOp>, ModelError> {
        let parts = mop.as_array().map(Vec::as_slice);
        let Some([f, k, v]) = parts else {
            return Err(ModelError::new(
                call,
                format!("micro-op {mop} is not [f, register, value]"),
            ));
        };
        let name = match k {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let reg = self.register(&name);
        match f.as_str() {
            Some("read" | "r") => {
                let unknown = call.outcome == Outcome::Indeterminate
                    || (v.is_null() && self.nil_read == NilRead::Unknown);
                Ok(Some(MicroOp::Read(
                    reg,
                    (!unknown).then(|| self.values.intern(v)),
                )))
            }
            Some("write" | "w") => Ok(Some(MicroOp::Write(reg, self.values.intern(v)))),
            _ => Err(ModelError::new(
                call,
                format!("micro-op {mop}: expected read or write"),
            )),
        }
    }
}

impl Model for MultiRegister {
    type State = Vec<u32>;
    type Op = Vec<MicroOp>;

    fn compile(&mut self, call: &Call) -> Result<Option<Vec<MicroOp>>, ModelError> {
        if call.f != "txn" {
            return Err(ModelError::new(
                call,
                format!("this model takes txn, not {:?}", call.f),
            ));
        }
        let Some(mops) = call.value.as_array() else {
            return Err(ModelError::new(call, "a txn value is a list of micro-ops"));
        };
        let mut ops = Vec::with_capacity(mops.len());
        for mop in mops {
            ops.extend(self.micro_op(call, mop)?);
        }
        let constrains = ops
            .iter()
            .any(|m| matches!(m, MicroOp::Write(..) | MicroOp::Read(_, Some(_))));
        Ok(constrains.then_some(ops))
    }

    fn init(&self) -> Vec<u32> {
        let mut values = self.values.clone();
        self.names
            .iter()
            .map(|n| values.intern(self.init.get(n).unwrap_or(&Value::Null)))
            .collect()
    }

    fn step(&self, state: &Vec<u32>, op: &Vec<MicroOp>) -> Option<Vec<u32>> {
        let mut next = state.clone();
        for m in op {
            match *m {
                MicroOp::Read(reg, Some(v)) if next[reg] != v => return None,
                MicroOp::Read(..) => {}
                MicroOp::Write(reg, v) => next[reg] = v,
            }
        }
        Some(next)
    }

    fn pure(&self, op: &Vec<MicroOp>) -> bool {
        op.iter().all(|m| matches!(m, MicroOp::Read(..)))
    }

    fn state_json(&self, state: &Vec<u32>) -> Value {
        let map = self
            .names
            .iter()
            .zip(state)
            .map(|(n, &v)| (n.clone(), self.values.value(v).clone()))
            .collect();
        Value::Object(map)
    }

    fn show_op(&self, op: &Vec<MicroOp>) -> String {
        let parts: Vec<String> = op
            .iter()
            .map(|m| match *m {
                MicroOp::Read(r, Some(v)) => {
                    format!("read {} {}", self.names[r], self.values.value(v))
                }
                MicroOp::Read(r, None) => format!("read {} ?", self.names[r]),
                MicroOp::Write(r, v) => format!("write {} {}", self.names[r], self.values.value(v)),
            })
            .collect();
        format!("txn [{}]", parts.join(", "))
    }

    fn noun(&self) -> &'static str {
        "registers hold"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn txn(value: Value, outcome: Outcome) -> Call<'static> {
        Call {
            process: 0,
            f: "txn",
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
    fn a_txn_reads_its_own_earlier_write_and_applies_atomically() {
        let mut m = MultiRegister::new(&json!({"x": 0, "y": 0}), NilRead::Value).unwrap();
        let t = m
            .compile(&txn(
                json!([["write", "x", 1], ["read", "x", 1], ["read", "y", 0]]),
                Outcome::Ok,
            ))
            .unwrap()
            .unwrap();
        let bad = m
            .compile(&txn(json!([["r", "y", 5]]), Outcome::Ok))
            .unwrap()
            .unwrap();
        let s = m.init();
        let s2 = m.step(&s, &t).unwrap();
        assert_eq!(m.state_json(&s2), json!({"x": 1, "y": 0}));
        assert_eq!(m.step(&s2, &bad), None);
    }

    #[test]
    fn indeterminate_read_only_txn_is_dropped() {
        let mut m = MultiRegister::new(&json!({"x": 0}), NilRead::Value).unwrap();
        let t = m
            .compile(&txn(json!([["read", "x", null]]), Outcome::Indeterminate))
            .unwrap();
        assert_eq!(t, None);
    }
}
