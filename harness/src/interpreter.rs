//! The interpreter: runs generators against clients with real concurrency
//! and records every invocation and completion (Jepsen's
//! `jepsen.generator.interpreter`).
//!
//! One task owns the generators; each worker is a task that owns its client
//! and performs one op at a time. The owner asks the generator for an op
//! whenever a worker is free, records the invocation, hands the op over, and
//! records the completion when it comes back — so the history's line order is
//! the order in which the owner saw events, which is a valid real-time order.
//!
//! Client worker `w` starts as process `w`; when an op completes as `info` its
//! process is retired and the worker continues as `process + workers`
//! (Jepsen's rule). The nemesis is one more worker, process `"nemesis"`,
//! whose completions are always `info`.
//!
//! A client that gives up ([`Client::retired`]) retires its worker: it gets
//! no more ops. When every client worker is retired, the phase under way
//! ends as soon as nothing is in flight (the nemesis stops too), and
//! [`Interpreter::retired`] says why; later phases run the nemesis only.
//! At the end ([`Interpreter::finish`]) each client is closed
//! ([`Client::close`]).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use checker::history::{Op, OpType, Process};
use rand::rngs::StdRng;
use results::Recorder;
use serde_json::Value;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::client::{Client, Completion};
use crate::generator::{BoxGen, Context, Invocation, Next};

/// Live counters, for a progress display.
#[derive(Debug, Default)]
pub struct Progress {
    /// Client ops invoked.
    pub invoked: AtomicU64,
    /// Client completions by type.
    pub ok: AtomicU64,
    /// Failed client ops.
    pub fail: AtomicU64,
    /// Indeterminate client ops.
    pub info: AtomicU64,
    /// The fault in force, as the last nemesis op described it.
    pub fault: Mutex<String>,
}

impl From<std::io::Error> for InterpreterError {
    fn from(e: std::io::Error) -> Self {
        InterpreterError::Record(e)
    }
}

/// An error of the harness itself (not of the system under test).
#[derive(Debug, thiserror::Error)]
pub enum InterpreterError {
    /// The history could not be written.
    #[error("the history could not be recorded ({0}): free space in the store or choose another --store; the history up to here is in the run directory")]
    Record(std::io::Error),
    /// A worker task died.
    #[error("a worker stopped unexpectedly")]
    WorkerGone,
}

struct Worker {
    process: Process,
    ops: mpsc::Sender<Invocation>,
    task: JoinHandle<()>,
    busy: bool,
    retired: bool,
}

/// How long [`Interpreter::finish`] waits for the clients to close.
const CLOSE_LIMIT: Duration = Duration::from_secs(10);

/// A worker's completed op, and why its client retired, if it did.
type Done = (usize, Invocation, Completion, Option<String>);

/// Workers, their channels, the clock and the recorder; reused across phases.
pub struct Interpreter {
    workers: Vec<Worker>,
    /// Why the last client worker to retire did, once all have.
    retired: Option<String>,
    client_workers: usize,
    done: mpsc::Receiver<Done>,
    recorder: Arc<Recorder>,
    start: Instant,
    rng: StdRng,
    progress: Arc<Progress>,
}

impl Drop for Interpreter {
    fn drop(&mut self) {
        for w in &self.workers {
            w.task.abort();
        }
    }
}

impl Interpreter {
    /// Starts one worker per client, plus the nemesis worker if given. Times
    /// are measured from `start`.
    pub fn new(
        clients: Vec<Box<dyn Client>>,
        nemesis: Option<Box<dyn Client>>,
        recorder: Arc<Recorder>,
        start: Instant,
        rng: StdRng,
        progress: Arc<Progress>,
    ) -> Self {
        let client_workers = clients.len();
        let (done_tx, done) = mpsc::channel(client_workers + 2);
        let mut workers = Vec::new();
        let all = clients
            .into_iter()
            .map(Some)
            .chain(std::iter::once(nemesis));
        for (w, client) in all.enumerate() {
            let Some(client) = client else { continue };
            let process = if w < client_workers {
                Process::Client(w as u64)
            } else {
                Process::Nemesis
            };
            let (ops, rx) = mpsc::channel(1);
            let task = tokio::spawn(work(w, client, rx, done_tx.clone()));
            workers.push(Worker {
                process,
                ops,
                task,
                busy: false,
                retired: false,
            });
        }
        Interpreter {
            workers,
            retired: None,
            client_workers,
            done,
            recorder,
            start,
            rng,
            progress,
        }
    }

    /// Stops every worker and waits until each is gone, so what its client
    /// owned (the nemesis's network backend, with its namespaces and rules;
    /// an external client's program) is torn down before this returns: each
    /// worker closes its client ([`Client::close`]), all at once, for at
    /// most [`CLOSE_LIMIT`]. Dropping an interpreter stops the workers too,
    /// but their clients are dropped later, on the runtime.
    pub async fn finish(mut self) {
        let workers = std::mem::take(&mut self.workers);
        let mut tasks = Vec::new();
        for Worker { ops, task, .. } in workers {
            // A closed channel ends the worker's loop: it closes its client.
            drop(ops);
            tasks.push(task);
        }
        let deadline = tokio::time::Instant::now() + CLOSE_LIMIT;
        for mut task in tasks {
            if tokio::time::timeout_at(deadline, &mut task).await.is_err() {
                task.abort();
                let _ = task.await;
            }
        }
    }

    /// Why the client workers retired, once every one of them has.
    pub fn retired(&self) -> Option<&str> {
        self.retired.as_deref()
    }

    /// The time since the test started.
    pub fn now(&self) -> Duration {
        self.start.elapsed()
    }

    /// Runs one phase: client ops from `clients` and fault ops from `nemesis`
    /// until both are exhausted and every op has completed.
    pub async fn run_phase(
        &mut self,
        mut clients: BoxGen,
        mut nemesis: BoxGen,
    ) -> Result<(), InterpreterError> {
        let mut exhausted = [false, false];
        // A phase that starts with workers to run cuts itself short when
        // the last of them retires; one that starts without runs the nemesis.
        let had_clients = self.retired.is_none();
        loop {
            if self.retired.is_some() {
                exhausted[0] = true;
                exhausted[1] |= had_clients;
            }
            let wake = self.dispatch(&mut clients, &mut nemesis, &mut exhausted)?;
            let busy = self.workers.iter().any(|w| w.busy);
            if exhausted[0] && exhausted[1] && !busy {
                self.recorder.flush()?;
                return Ok(());
            }
            let sleep = match wake {
                Some(at) => at.saturating_sub(self.now()),
                None if busy => {
                    // Only a completion can change anything: no timer needed.
                    let done = self.done.recv().await.ok_or(InterpreterError::WorkerGone)?;
                    self.complete(done, &mut clients, &mut nemesis)?;
                    continue;
                }
                // Pending with no time and nothing outstanding: poll gently.
                None => Duration::from_millis(10),
            };
            tokio::select! {
                done = self.done.recv() => {
                    let done = done.ok_or(InterpreterError::WorkerGone)?;
                    self.complete(done, &mut clients, &mut nemesis)?;
                }
                _ = tokio::time::sleep(sleep) => {}
            }
        }
    }

    /// Gives every free worker an op if its generator has one; returns the
    /// earliest time a generator asked to be called again.
    fn dispatch(
        &mut self,
        clients: &mut BoxGen,
        nemesis: &mut BoxGen,
        exhausted: &mut [bool; 2],
    ) -> Result<Option<Duration>, InterpreterError> {
        let mut wake: Option<Duration> = None;
        for w in 0..self.workers.len() {
            let is_nemesis = self.workers[w].process == Process::Nemesis;
            let which = usize::from(is_nemesis);
            if self.workers[w].busy || self.workers[w].retired || exhausted[which] {
                continue;
            }
            let ctx = Context {
                time: self.now(),
                worker: w,
                workers: self.client_workers,
            };
            let generator = if is_nemesis {
                &mut *nemesis
            } else {
                &mut *clients
            };
            match generator.next(&ctx, &mut self.rng) {
                Next::Op(invocation) => self.invoke(w, invocation)?,
                Next::Pending(at) => {
                    wake = match (wake, at) {
                        (Some(a), Some(b)) => Some(a.min(b)),
                        (a, b) => a.or(b),
                    }
                }
                Next::Exhausted => exhausted[which] = true,
            }
        }
        if self.workers.iter().all(|w| w.process != Process::Nemesis) {
            exhausted[1] = true;
        }
        Ok(wake)
    }

    fn invoke(&mut self, w: usize, invocation: Invocation) -> Result<(), InterpreterError> {
        let worker = &mut self.workers[w];
        let mut op = Op {
            index: 0,
            time: Some(self.start.elapsed().as_nanos() as u64),
            process: worker.process,
            op_type: OpType::Invoke,
            f: invocation.f.clone(),
            key: invocation.key.clone(),
            value: invocation.value.clone(),
            node: invocation.node.clone(),
            error: None,
        };
        self.recorder.record(&mut op)?;
        if worker.process != Process::Nemesis {
            self.progress.invoked.fetch_add(1, Ordering::Relaxed);
        }
        worker.busy = true;
        worker
            .ops
            .try_send(invocation)
            .map_err(|_| InterpreterError::WorkerGone)
    }

    fn complete(
        &mut self,
        (w, invocation, completion, retired): Done,
        clients: &mut BoxGen,
        nemesis: &mut BoxGen,
    ) -> Result<(), InterpreterError> {
        let worker = &mut self.workers[w];
        let is_nemesis = worker.process == Process::Nemesis;
        let op_type = if is_nemesis {
            OpType::Info
        } else {
            completion.op_type
        };
        let mut op = Op {
            index: 0,
            time: Some(self.start.elapsed().as_nanos() as u64),
            process: worker.process,
            op_type,
            f: invocation.f,
            key: invocation.key,
            value: completion.value,
            node: completion.node,
            error: completion.error,
        };
        self.recorder.record(&mut op)?;
        worker.busy = false;
        if is_nemesis {
            *self.progress.fault.lock().expect("progress lock") = describe_fault(&op);
        } else {
            let counter = match op_type {
                OpType::Ok => &self.progress.ok,
                OpType::Fail => &self.progress.fail,
                _ => &self.progress.info,
            };
            counter.fetch_add(1, Ordering::Relaxed);
            if let (OpType::Info, Process::Client(p)) = (op_type, worker.process) {
                worker.process = Process::Client(p + self.client_workers as u64);
            }
            if let Some(reason) = retired {
                worker.retired = true;
                let mut clients = self
                    .workers
                    .iter()
                    .filter(|w| w.process != Process::Nemesis);
                if clients.all(|w| w.retired) {
                    self.retired = Some(reason);
                }
            }
        }
        let ctx = Context {
            time: self.now(),
            worker: w,
            workers: self.client_workers,
        };
        if is_nemesis {
            nemesis.update(&ctx, &op);
        } else {
            clients.update(&ctx, &op);
        }
        Ok(())
    }
}

/// "partition {..}" / "heal" / "kill n2": what the nemesis last did.
fn describe_fault(op: &Op) -> String {
    match &op.value {
        Value::Null => op.f.clone(),
        Value::String(s) => format!("{} {s}", op.f),
        v => format!("{} {v}", op.f),
    }
}

async fn work(
    w: usize,
    mut client: Box<dyn Client>,
    mut ops: mpsc::Receiver<Invocation>,
    done: mpsc::Sender<Done>,
) {
    while let Some(invocation) = ops.recv().await {
        let completion = client.invoke(&invocation).await;
        let retired = client.retired();
        if done
            .send((w, invocation, completion, retired))
            .await
            .is_err()
        {
            return;
        }
    }
    client.close().await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::BoxFuture;
    use crate::generator::{Empty, FromFn, Limit};
    use rand::{Rng, SeedableRng};

    /// A register in memory that answers after a random short delay; every
    /// fifth write is lost in flight (info).
    struct MemRegister {
        value: Arc<Mutex<i64>>,
        writes: u64,
    }

    impl Client for MemRegister {
        fn invoke<'a>(&'a mut self, op: &'a Invocation) -> BoxFuture<'a, Completion> {
            Box::pin(async move {
                tokio::time::sleep(Duration::from_micros(200)).await;
                let mut value = self.value.lock().unwrap();
                match op.f.as_str() {
                    "read" => Completion::ok(Value::from(*value)),
                    _ => {
                        *value = op.value.as_i64().unwrap();
                        self.writes += 1;
                        if self.writes.is_multiple_of(5) {
                            Completion::info(op.value.clone(), "lost")
                        } else {
                            Completion::ok(op.value.clone())
                        }
                    }
                }
            })
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn records_a_complete_linearizable_history_and_retires_info_processes() {
        let dir = std::env::temp_dir().join(format!("faultline-interp-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("history.jsonl");
        let recorder = Arc::new(Recorder::create(&path).unwrap());
        let value = Arc::new(Mutex::new(0));
        let clients: Vec<Box<dyn Client>> = (0..4)
            .map(|_| {
                Box::new(MemRegister {
                    value: value.clone(),
                    writes: 0,
                }) as Box<dyn Client>
            })
            .collect();
        let progress = Arc::new(Progress::default());
        let mut interpreter = Interpreter::new(
            clients,
            None,
            recorder.clone(),
            Instant::now(),
            StdRng::seed_from_u64(1),
            progress.clone(),
        );
        let ops = FromFn(|_: &Context, rng: &mut StdRng| {
            if rng.gen_bool(0.5) {
                Invocation::new("read", Value::Null)
            } else {
                Invocation::new("write", Value::from(rng.gen_range(0..5)))
            }
        });
        let generator = Box::new(Limit {
            remaining: 400,
            inner: Box::new(ops),
        });
        interpreter
            .run_phase(generator, Box::new(Empty))
            .await
            .unwrap();
        drop(interpreter);
        Arc::try_unwrap(recorder).ok().unwrap().finish().unwrap();

        let text = std::fs::read_to_string(&path).unwrap();
        let history = checker::history::parse_jsonl(&text, &path).unwrap();
        assert_eq!(history.len(), 800, "every op invoked and completed");
        assert_eq!(progress.invoked.load(Ordering::Relaxed), 400);
        let info = history.iter().filter(|o| o.op_type == OpType::Info).count();
        assert!(info > 0);
        let mut retired = std::collections::BTreeSet::new();
        for op in &history {
            assert!(
                !retired.contains(&op.process),
                "{:?} acted after its info",
                op.process
            );
            if op.op_type == OpType::Info {
                retired.insert(op.process);
            }
        }
        let spec = checker::model::ModelSpec {
            kind: checker::model::ModelKind::Register,
            init: Value::from(0),
            nil_read: checker::model::NilRead::Value,
        };
        let result = checker::linearizable::check(&history, &spec, &Default::default()).unwrap();
        assert_eq!(
            result.valid,
            checker::Validity::Valid,
            "{:?}",
            result.explanation
        );
        std::fs::remove_dir_all(&dir).ok();
    }
}
