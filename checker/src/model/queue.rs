//! Queues: `fifo-queue` and `unordered-queue`, with `enqueue` and `dequeue`.
//!
//! An `ok` dequeue of nil observed an empty queue. An indeterminate dequeue of
//! a FIFO queue may have removed the head, whatever it was; of an unordered
//! queue it is dropped, since removing an element never makes a later op legal.

use std::collections::VecDeque;

use serde_json::Value;

use super::{Interner, Model, ModelError};
use crate::pair::{Call, Outcome};

/// A queue op with interned elements.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QueueOp {
    /// Put an element in.
    Enqueue(u32),
    /// Took this element out (`Some`), or observed an empty queue (`None`).
    Dequeue(Option<u32>),
    /// Took out the head, value unknown (FIFO only).
    DequeueAny,
}

/// A queue, initially empty; FIFO or unordered.
#[derive(Clone, Debug)]
pub struct Queue {
    elements: Interner,
    fifo: bool,
}

impl Queue {
    /// A FIFO queue when `fifo`, else an unordered one.
    pub fn new(fifo: bool) -> Self {
        Queue {
            elements: Interner::default(),
            fifo,
        }
    }
}

impl Model for Queue {
    /// Elements in order (FIFO) or sorted (unordered).
    type State = VecDeque<u32>;
    type Op = QueueOp;

    fn compile(&mut self, call: &Call) -> Result<Option<QueueOp>, ModelError> {
        let indeterminate = call.outcome == Outcome::Indeterminate;
        match call.f.as_str() {
            "enqueue" => Ok(Some(QueueOp::Enqueue(self.elements.intern(&call.value)))),
            "dequeue" if indeterminate && self.fifo => Ok(Some(QueueOp::DequeueAny)),
            "dequeue" if indeterminate => Ok(None),
            "dequeue" if call.value.is_null() => Ok(Some(QueueOp::Dequeue(None))),
            "dequeue" => Ok(Some(QueueOp::Dequeue(Some(
                self.elements.intern(&call.value),
            )))),
            f => Err(ModelError::new(
                call,
                format!("this model takes enqueue or dequeue, not {f:?}"),
            )),
        }
    }

    fn init(&self) -> VecDeque<u32> {
        VecDeque::new()
    }

    fn step(&self, state: &VecDeque<u32>, op: &QueueOp) -> Option<VecDeque<u32>> {
        let mut next = state.clone();
        match *op {
            QueueOp::Enqueue(e) if self.fifo => next.push_back(e),
            QueueOp::Enqueue(e) => {
                let at = next.partition_point(|&x| x <= e);
                next.insert(at, e);
            }
            QueueOp::Dequeue(None) => return state.is_empty().then_some(next),
            QueueOp::Dequeue(Some(e)) if self.fifo => {
                (next.pop_front()? == e).then_some(())?;
            }
            QueueOp::Dequeue(Some(e)) => {
                let at = next.binary_search(&e).ok()?;
                next.remove(at);
            }
            QueueOp::DequeueAny => {
                next.pop_front()?;
            }
        }
        Some(next)
    }

    fn state_json(&self, state: &VecDeque<u32>) -> Value {
        Value::Array(
            state
                .iter()
                .map(|&e| self.elements.value(e).clone())
                .collect(),
        )
    }

    fn show_op(&self, op: &QueueOp) -> String {
        match *op {
            QueueOp::Enqueue(e) => format!("enqueue {}", self.elements.value(e)),
            QueueOp::Dequeue(Some(e)) => format!("dequeue {}", self.elements.value(e)),
            QueueOp::Dequeue(None) => "dequeue from an empty queue".into(),
            QueueOp::DequeueAny => "dequeue (unknown)".into(),
        }
    }

    fn noun(&self) -> &'static str {
        "queue holds"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fifo_dequeues_the_head_and_unordered_any_element() {
        let fifo = Queue::new(true);
        let s = fifo.step(&fifo.init(), &QueueOp::Enqueue(1)).unwrap();
        let s = fifo.step(&s, &QueueOp::Enqueue(2)).unwrap();
        assert!(fifo.step(&s, &QueueOp::Dequeue(Some(2))).is_none());
        assert!(fifo.step(&s, &QueueOp::Dequeue(Some(1))).is_some());
        let bag = Queue::new(false);
        let s = bag.step(&bag.init(), &QueueOp::Enqueue(1)).unwrap();
        let s = bag.step(&s, &QueueOp::Enqueue(2)).unwrap();
        assert!(bag.step(&s, &QueueOp::Dequeue(Some(2))).is_some());
        assert!(bag.step(&s, &QueueOp::Dequeue(None)).is_none());
    }
}
