//! `set`: `add` an element, `read` the whole set. The state is a bitset over
//! the interned elements; a read must observe exactly the elements added.

use serde_json::Value;

use super::{read_is_unconstrained, Interner, Model, ModelError, NilRead};
use crate::pair::Call;

/// A set op with interned elements.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum SetOp {
    /// Add one element.
    Add(u32),
    /// Observed exactly these elements (a bitset).
    Read(Vec<u64>),
}

/// A grow-only set, initially empty.
#[derive(Clone, Debug, Default)]
pub struct Set {
    elements: Interner,
    /// Elements some read contains (a bitset).
    observed: Vec<u64>,
}

fn words_for(n: usize) -> usize {
    n.div_ceil(64)
}

impl Model for Set {
    type State = Vec<u64>;
    type Op = SetOp;

    fn compile(&mut self, call: &Call) -> Result<Option<SetOp>, ModelError> {
        match call.f {
            "add" => Ok(Some(SetOp::Add(self.elements.intern(call.value)))),
            "read" if read_is_unconstrained(call, NilRead::Value) => Ok(None),
            "read" => {
                let Some(items) = call.value.as_array() else {
                    return Err(ModelError::new(
                        call,
                        "a set read's value is a list of elements",
                    ));
                };
                let mut bits = Vec::new();
                for item in items {
                    let id = self.elements.intern(item) as usize;
                    if bits.len() <= id / 64 {
                        bits.resize(id / 64 + 1, 0);
                    }
                    bits[id / 64] |= 1 << (id % 64);
                }
                if self.observed.len() < bits.len() {
                    self.observed.resize(bits.len(), 0);
                }
                for (o, b) in self.observed.iter_mut().zip(&bits) {
                    *o |= b;
                }
                Ok(Some(SetOp::Read(bits)))
            }
            f => Err(ModelError::new(
                call,
                format!("this model takes add or read, not {f:?}"),
            )),
        }
    }

    fn init(&self) -> Vec<u64> {
        vec![0; words_for(self.elements.len())]
    }

    fn step(&self, state: &Vec<u64>, op: &SetOp) -> Option<Vec<u64>> {
        match op {
            SetOp::Add(e) => {
                let mut next = state.clone();
                next[*e as usize / 64] |= 1 << (e % 64);
                Some(next)
            }
            SetOp::Read(bits) => {
                let same = state
                    .iter()
                    .enumerate()
                    .all(|(i, w)| *w == bits.get(i).copied().unwrap_or(0));
                same.then(|| state.clone())
            }
        }
    }

    fn droppable(&self, op: &SetOp) -> bool {
        match op {
            SetOp::Add(e) => {
                let word = self.observed.get(*e as usize / 64).copied().unwrap_or(0);
                word & (1 << (e % 64)) == 0
            }
            SetOp::Read(_) => false,
        }
    }

    fn pure(&self, op: &SetOp) -> bool {
        matches!(op, SetOp::Read(_))
    }

    fn state_json(&self, state: &Vec<u64>) -> Value {
        Value::Array(
            self.members(state)
                .map(|e| self.elements.value(e).clone())
                .collect(),
        )
    }

    fn show_op(&self, op: &SetOp) -> String {
        match op {
            SetOp::Add(e) => format!("add {}", self.elements.value(*e)),
            SetOp::Read(bits) => format!("read {}", self.state_json(bits)),
        }
    }

    fn noun(&self) -> &'static str {
        "set holds"
    }
}

impl Set {
    fn members<'a>(&'a self, bits: &'a [u64]) -> impl Iterator<Item = u32> + 'a {
        (0..bits.len() * 64)
            .filter(|i| bits[i / 64] & (1 << (i % 64)) != 0)
            .map(|i| i as u32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pair::Outcome;
    use serde_json::json;

    fn call(f: &str, value: Value) -> Call<'static> {
        Call {
            process: 0,
            f: Box::leak(f.to_string().into_boxed_str()),
            key: None,
            value: Box::leak(Box::new(value)),
            outcome: Outcome::Ok,
            invoke_index: 0,
            complete_index: None,
            invoke_time: None,
            complete_time: None,
        }
    }

    #[test]
    fn a_read_must_see_exactly_the_added_elements() {
        let mut m = Set::default();
        let add1 = m.compile(&call("add", json!(1))).unwrap().unwrap();
        let read1 = m.compile(&call("read", json!([1]))).unwrap().unwrap();
        let read12 = m.compile(&call("read", json!([2, 1]))).unwrap().unwrap();
        let s = m.step(&m.init(), &add1).unwrap();
        assert!(m.step(&s, &read1).is_some());
        assert!(m.step(&s, &read12).is_none());
        assert_eq!(m.state_json(&s), json!([1]));
    }
}
