//! `mutex`: a lock with `acquire` and `release`. The state is whether it is
//! held. Acquiring a held lock, or releasing a free one, is illegal.

use serde_json::Value;

use super::{Model, ModelError};
use crate::pair::Call;

/// A lock op.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MutexOp {
    /// Take the lock.
    Acquire,
    /// Give it back.
    Release,
}

/// A single lock, initially free.
#[derive(Clone, Debug, Default)]
pub struct Mutex;

impl Model for Mutex {
    type State = bool;
    type Op = MutexOp;

    fn compile(&mut self, call: &Call) -> Result<Option<MutexOp>, ModelError> {
        match call.f {
            "acquire" => Ok(Some(MutexOp::Acquire)),
            "release" => Ok(Some(MutexOp::Release)),
            f => Err(ModelError::new(
                call,
                format!("this model takes acquire or release, not {f:?}"),
            )),
        }
    }

    fn init(&self) -> bool {
        false
    }

    fn step(&self, held: &bool, op: &MutexOp) -> Option<bool> {
        match op {
            MutexOp::Acquire => (!held).then_some(true),
            MutexOp::Release => held.then_some(false),
        }
    }

    fn state_json(&self, held: &bool) -> Value {
        Value::String(if *held { "held" } else { "free" }.into())
    }

    fn show_op(&self, op: &MutexOp) -> String {
        match op {
            MutexOp::Acquire => "acquire".into(),
            MutexOp::Release => "release".into(),
        }
    }

    fn noun(&self) -> &'static str {
        "lock is"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_lock_cannot_be_acquired_and_a_free_one_cannot_be_released() {
        let m = Mutex;
        assert_eq!(m.step(&false, &MutexOp::Acquire), Some(true));
        assert_eq!(m.step(&true, &MutexOp::Acquire), None);
        assert_eq!(m.step(&false, &MutexOp::Release), None);
        assert_eq!(m.step(&true, &MutexOp::Release), Some(false));
    }
}
