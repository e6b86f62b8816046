//! Queues: `fifo-queue` and `unordered-queue`, with `enqueue` and `dequeue`.
//!
//! An `ok` dequeue of nil observed an empty queue. An indeterminate dequeue
//! may have removed an element, or not:
//! - FIFO: it removed the head, whatever that was — deterministic.
//! - unordered: it removed *some* element. Removing an element that an `ok`
//!   dequeue later returns would make that dequeue impossible, so (with unique
//!   values, as queue workloads use) it removed an element that no `ok`
//!   dequeue ever returns. Those elements are kept only as a count
//!   (`anonymous`), which is all that emptiness checks need. With duplicate
//!   values this is stricter than it should be: an indeterminate dequeue
//!   cannot take a spare copy of a value that an ok dequeue also returns, so
//!   such a history may be reported invalid. Queue workloads enqueue unique
//!   values, as Jepsen's do.

use std::collections::VecDeque;

use serde_json::Value;

use super::{Interner, Model, ModelError};
use crate::pair::{Call, Outcome};

/// A queue op with interned elements.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum QueueOp {
    /// Put an element in.
    Enqueue(u32),
    /// Took this element out (`Some`), or observed an empty queue (`None`).
    Dequeue(Option<u32>),
    /// Took out an element, value unknown (an indeterminate dequeue).
    DequeueAny,
}

/// A queue's state.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct QueueState {
    /// Elements in order (FIFO), or sorted (unordered: only those some ok
    /// dequeue returns).
    pub items: VecDeque<u32>,
    /// Unordered only: elements that no ok dequeue returns.
    pub anonymous: u32,
}

/// A queue, initially empty; FIFO or unordered.
#[derive(Clone, Debug)]
pub struct Queue {
    elements: Interner,
    /// Per element id: some ok dequeue returns it.
    dequeued: Vec<bool>,
    fifo: bool,
}

impl Queue {
    /// A FIFO queue when `fifo`, else an unordered one.
    pub fn new(fifo: bool) -> Self {
        Queue {
            elements: Interner::default(),
            dequeued: Vec::new(),
            fifo,
        }
    }

    fn tracked(&self, e: u32) -> bool {
        self.fifo || self.dequeued.get(e as usize).copied().unwrap_or(false)
    }
}

impl Model for Queue {
    type State = QueueState;
    type Op = QueueOp;

    fn compile(&mut self, call: &Call) -> Result<Option<QueueOp>, ModelError> {
        let indeterminate = call.outcome == Outcome::Indeterminate;
        match call.f {
            "enqueue" => Ok(Some(QueueOp::Enqueue(self.elements.intern(call.value)))),
            "dequeue" if indeterminate => Ok(Some(QueueOp::DequeueAny)),
            "dequeue" if call.value.is_null() => Ok(Some(QueueOp::Dequeue(None))),
            "dequeue" => {
                let e = self.elements.intern(call.value);
                if self.dequeued.len() <= e as usize {
                    self.dequeued.resize(e as usize + 1, false);
                }
                self.dequeued[e as usize] = true;
                Ok(Some(QueueOp::Dequeue(Some(e))))
            }
            f => Err(ModelError::new(
                call,
                format!("this model takes enqueue or dequeue, not {f:?}"),
            )),
        }
    }

    fn init(&self) -> QueueState {
        QueueState::default()
    }

    fn step(&self, state: &QueueState, op: &QueueOp) -> Option<QueueState> {
        let mut next = state.clone();
        match *op {
            QueueOp::Enqueue(e) if self.fifo => next.items.push_back(e),
            QueueOp::Enqueue(e) if self.tracked(e) => {
                let at = next.items.partition_point(|&x| x <= e);
                next.items.insert(at, e);
            }
            QueueOp::Enqueue(_) => next.anonymous += 1,
            QueueOp::Dequeue(None) => {
                return (state.items.is_empty() && state.anonymous == 0).then_some(next)
            }
            QueueOp::Dequeue(Some(e)) if self.fifo => {
                (next.items.pop_front()? == e).then_some(())?;
            }
            QueueOp::Dequeue(Some(e)) => {
                let at = next.items.binary_search(&e).ok()?;
                next.items.remove(at);
            }
            QueueOp::DequeueAny if self.fifo => {
                next.items.pop_front()?;
            }
            QueueOp::DequeueAny => next.anonymous = next.anonymous.checked_sub(1)?,
        }
        Some(next)
    }

    /// An element no ok dequeue returns need never be enqueued: in the queue
    /// it can only stand in the way (or be taken by an indeterminate dequeue).
    fn droppable(&self, op: &QueueOp) -> bool {
        matches!(*op, QueueOp::Enqueue(e) if !self.dequeued.get(e as usize).copied().unwrap_or(false))
    }

    fn pure(&self, op: &QueueOp) -> bool {
        matches!(op, QueueOp::Dequeue(None))
    }

    fn state_json(&self, state: &QueueState) -> Value {
        let mut items: Vec<Value> = state
            .items
            .iter()
            .map(|&e| self.elements.value(e).clone())
            .collect();
        if state.anonymous > 0 {
            items.push(Value::String(format!(
                "(+{} never dequeued)",
                state.anonymous
            )));
        }
        Value::Array(items)
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

    fn enqueue_all(q: &Queue, items: &[u32]) -> QueueState {
        items
            .iter()
            .fold(q.init(), |s, &e| q.step(&s, &QueueOp::Enqueue(e)).unwrap())
    }

    #[test]
    fn fifo_dequeues_the_head_and_unordered_any_element() {
        let fifo = Queue::new(true);
        let s = enqueue_all(&fifo, &[1, 2]);
        assert!(fifo.step(&s, &QueueOp::Dequeue(Some(2))).is_none());
        assert!(fifo.step(&s, &QueueOp::Dequeue(Some(1))).is_some());
        let mut bag = Queue::new(false);
        bag.dequeued = vec![true; 3];
        let s = enqueue_all(&bag, &[1, 2]);
        assert!(bag.step(&s, &QueueOp::Dequeue(Some(2))).is_some());
        assert!(bag.step(&s, &QueueOp::Dequeue(None)).is_none());
    }

    #[test]
    fn an_indeterminate_dequeue_can_empty_an_unordered_queue_of_untracked_elements() {
        let bag = Queue::new(false);
        let s = enqueue_all(&bag, &[7]);
        assert_eq!(s.anonymous, 1);
        assert!(bag.step(&s, &QueueOp::Dequeue(None)).is_none());
        let emptied = bag.step(&s, &QueueOp::DequeueAny).unwrap();
        assert!(bag.step(&emptied, &QueueOp::Dequeue(None)).is_some());
        assert!(bag.step(&emptied, &QueueOp::DequeueAny).is_none());
    }
}
