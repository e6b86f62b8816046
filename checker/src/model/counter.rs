//! `counter`: `add n` (n may be negative) and `read`. The state is the count;
//! a read must observe it exactly.

use serde_json::Value;

use super::{read_is_unconstrained, Model, ModelError, NilRead};
use crate::pair::Call;

/// A counter op.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CounterOp {
    /// Add this amount.
    Add(i64),
    /// Observed this count.
    Read(i64),
}

/// A counter starting at `init`.
#[derive(Clone, Debug, Default)]
pub struct Counter {
    init: i64,
}

impl Counter {
    /// A counter starting at `init` (nil counts as 0).
    pub fn new(init: &Value) -> Result<Self, String> {
        match init {
            Value::Null => Ok(Counter { init: 0 }),
            v => v
                .as_i64()
                .map(|init| Counter { init })
                .ok_or_else(|| format!("counter takes an integer initial value, not {v}")),
        }
    }
}

fn integer(call: &Call) -> Result<i64, ModelError> {
    call.value
        .as_i64()
        .ok_or_else(|| ModelError::new(call, "expected an integer"))
}

impl Model for Counter {
    type State = i64;
    type Op = CounterOp;

    fn compile(&mut self, call: &Call) -> Result<Option<CounterOp>, ModelError> {
        match call.f {
            "add" => Ok(Some(CounterOp::Add(integer(call)?))),
            "read" if read_is_unconstrained(call, NilRead::Value) => Ok(None),
            "read" => Ok(Some(CounterOp::Read(integer(call)?))),
            f => Err(ModelError::new(
                call,
                format!("this model takes add or read, not {f:?}"),
            )),
        }
    }

    fn init(&self) -> i64 {
        self.init
    }

    fn step(&self, count: &i64, op: &CounterOp) -> Option<i64> {
        match *op {
            CounterOp::Add(n) => count.checked_add(n),
            CounterOp::Read(n) => (n == *count).then_some(n),
        }
    }

    fn pure(&self, op: &CounterOp) -> bool {
        matches!(op, CounterOp::Read(_) | CounterOp::Add(0))
    }

    fn state_json(&self, count: &i64) -> Value {
        Value::from(*count)
    }

    fn show_op(&self, op: &CounterOp) -> String {
        match op {
            CounterOp::Add(n) => format!("add {n}"),
            CounterOp::Read(n) => format!("read {n}"),
        }
    }

    fn noun(&self) -> &'static str {
        "counter is at"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_see_the_sum_of_adds() {
        let m = Counter::new(&Value::from(5)).unwrap();
        let s = m.step(&m.init(), &CounterOp::Add(-2)).unwrap();
        assert_eq!(m.step(&s, &CounterOp::Read(3)), Some(3));
        assert_eq!(m.step(&s, &CounterOp::Read(5)), None);
    }
}
