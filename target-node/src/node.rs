//! The driver: owns a replication state machine behind a mutex, carries its
//! outputs out (HTTP to peers, the oplog writer, `meta.json`), ticks it, and
//! turns client requests into proposals and waits for their write concern.

use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::{oneshot, watch};
use tracing::error;

use crate::api::{ErrorBody, ErrorKind, LogPosition, NodeId, Role, Status, WriteAck};
use crate::clock::Clock;
use crate::kv::Store;
use crate::logging;
use crate::message::{PeerReply, PeerRequest};
use crate::mode::{Fsync, Modes, Reads, Topology};
use crate::oplog::Op;
use crate::replication::{NotPrimary, Output, ReadState, ReadTicket, Replication};
use crate::storage::{self, Writer};

/// Settings of the driver (the state machine has its own).
#[derive(Clone, Debug)]
pub struct DriverConfig {
    /// This node.
    pub id: NodeId,
    /// Base URLs of the peers.
    pub peer_urls: BTreeMap<NodeId, String>,
    /// Modes.
    pub modes: Modes,
    /// Whether `/admin/*` is served.
    pub admin: bool,
    /// Data dir.
    pub data_dir: PathBuf,
    /// How long a client request may wait for replication or confirmation.
    pub request_timeout: Duration,
    /// How long a request to a peer may take.
    pub rpc_timeout: Duration,
    /// The local address peer connections are made from (`None`: the
    /// kernel's choice), so firewall rules can match this node as a sender.
    pub peer_source: Option<IpAddr>,
}

struct WriteWaiter {
    position: LogPosition,
    done: oneshot::Sender<Result<(), ErrorBody>>,
}

struct ReadWaiter {
    ticket: ReadTicket,
    done: oneshot::Sender<Result<(), ErrorBody>>,
}

/// What the mutex guards.
struct Core {
    replication: Box<dyn Replication>,
    /// Waiting writes by (oplog index, waiter id).
    writes: BTreeMap<(u64, u64), WriteWaiter>,
    reads: HashMap<u64, ReadWaiter>,
    next_waiter: u64,
    writer: Option<Writer>,
}

/// A running node.
pub struct Node {
    cfg: DriverConfig,
    /// The node's wall clock.
    pub clock: Clock,
    core: Mutex<Core>,
    durable_seq: watch::Sender<u64>,
    http: reqwest::Client,
    runtime: tokio::runtime::Handle,
    start: Instant,
}

fn not_primary(e: NotPrimary) -> ErrorBody {
    let mut body = ErrorBody::new(ErrorKind::NotPrimary, "this node is not the primary");
    body.primary = e.primary;
    body
}

impl Node {
    /// A node around `replication`; call [`Node::attach_writer`] before use.
    pub fn new(
        cfg: DriverConfig,
        replication: Box<dyn Replication>,
        runtime: tokio::runtime::Handle,
    ) -> Arc<Node> {
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(8)
            .tcp_nodelay(true)
            .local_address(cfg.peer_source)
            .build()
            .unwrap_or_default();
        let core = Core {
            replication,
            writes: BTreeMap::new(),
            reads: HashMap::new(),
            next_waiter: 0,
            writer: None,
        };
        Arc::new(Node {
            cfg,
            clock: Clock::default(),
            core: Mutex::new(core),
            durable_seq: watch::Sender::new(0),
            http,
            runtime,
            start: Instant::now(),
        })
    }

    /// Starts the oplog writer thread.
    pub fn attach_writer(self: &Arc<Self>, flush_interval: Duration) -> std::io::Result<()> {
        let weak = Arc::downgrade(self);
        let writer = Writer::spawn(
            self.cfg.data_dir.clone(),
            self.cfg.modes.fsync,
            flush_interval,
            move |seq| {
                if let Some(node) = weak.upgrade() {
                    node.step(|core, _| core.replication.on_durable(seq));
                    node.durable_seq.send_replace(seq);
                }
            },
        )?;
        self.lock().writer = Some(writer);
        Ok(())
    }

    /// Flushes and stops the oplog writer.
    pub fn close(&self) {
        let writer = self.lock().writer.take();
        if let Some(mut writer) = writer {
            writer.close();
        }
    }

    /// The driver settings.
    pub fn config(&self) -> &DriverConfig {
        &self.cfg
    }

    fn now(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }

    fn lock(&self) -> MutexGuard<'_, Core> {
        self.core
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Runs `f` on the state machine, then carries out its outputs and
    /// resolves waiters. Returns `f`'s result and the highest persist seq
    /// it produced (0 if none).
    fn step<R>(self: &Arc<Self>, f: impl FnOnce(&mut Core, u64) -> R) -> (R, u64) {
        let now = self.now();
        let mut core = self.lock();
        let result = f(&mut core, now);
        let mut sends = Vec::new();
        let mut last_seq = 0;
        for output in core.replication.drain() {
            match output {
                Output::Send { to, request } => sends.push((to, request)),
                Output::Persist { seq, op } => {
                    last_seq = seq;
                    if let Some(writer) = &core.writer {
                        writer.submit(seq, op);
                    }
                }
                Output::SaveMeta(meta) => {
                    if let Err(e) =
                        storage::save_meta(&self.cfg.data_dir, &meta, self.cfg.modes.fsync)
                    {
                        error!("cannot save meta.json: {e}; exiting");
                        std::process::exit(70);
                    }
                }
            }
        }
        core.resolve_waiters(self.cfg.modes.write_concern);
        let (role, term, _) = core.replication.role();
        logging::set_role_and_term(role, term);
        drop(core);
        for (to, request) in sends {
            self.send(to, request);
        }
        (result, last_seq)
    }

    fn send(self: &Arc<Self>, to: NodeId, request: PeerRequest) {
        let Some(base) = self.cfg.peer_urls.get(&to) else {
            return;
        };
        let url = format!("{base}/peer");
        let node = self.clone();
        self.runtime.spawn(async move {
            let sent = node
                .http
                .post(&url)
                .json(&request)
                .timeout(node.cfg.rpc_timeout)
                .send()
                .await;
            let reply = match sent {
                Ok(response) if response.status().is_success() => {
                    response.json::<PeerReply>().await.ok()
                }
                _ => None,
            };
            node.step(|core, now| match reply {
                Some(reply) => core.replication.handle_reply(reply, now),
                None => core.replication.send_failed(&to, &request, now),
            });
        });
    }

    /// Advances timers (heartbeats, elections, retries).
    pub fn tick(self: &Arc<Self>) {
        self.step(|core, now| core.replication.tick(now));
    }

    /// Handles a request from a peer. `None` when the change it made could
    /// not be made durable in time (the peer treats it as no answer).
    pub async fn handle_peer(self: &Arc<Self>, request: PeerRequest) -> Option<PeerReply> {
        let (reply, seq) = self.step(|core, now| core.replication.handle_request(request, now));
        if seq > 0 && self.cfg.modes.fsync == Fsync::Always {
            let mut durable = self.durable_seq.subscribe();
            let wait = durable.wait_for(|done| *done >= seq);
            tokio::time::timeout(self.cfg.rpc_timeout, wait)
                .await
                .ok()?
                .ok()?;
        }
        Some(reply)
    }

    /// Proposes the write `build` makes from the current state (`build` gets
    /// the store and whether this is a last-write-wins topology) and waits
    /// for the write concern.
    pub async fn submit<T>(
        self: &Arc<Self>,
        build: impl FnOnce(&Store, bool) -> Result<(Op, T), ErrorBody>,
    ) -> Result<(T, WriteAck), ErrorBody> {
        let ts_ms = self.clock.now_ms();
        let lww = self.cfg.modes.topology == Topology::MultiPrimary;
        let ((waiter, key), position, value) = self
            .step(|core, now| {
                core.replication.check_primary().map_err(not_primary)?;
                let (op, value) = build(core.replication.kv(), lww)?;
                let position = core
                    .replication
                    .propose(op, ts_ms, now)
                    .map_err(not_primary)?;
                let (done, waiter) = oneshot::channel();
                core.next_waiter += 1;
                let key = (position.index, core.next_waiter);
                core.writes.insert(key, WriteWaiter { position, done });
                Ok::<_, ErrorBody>(((waiter, key), position, value))
            })
            .0?;
        // A waiter may already be resolved: resolve_waiters ran inside step.
        let ack = WriteAck {
            index: position.index,
            term: position.term,
        };
        match tokio::time::timeout(self.cfg.request_timeout, waiter).await {
            Ok(Ok(Ok(()))) => Ok((value, ack)),
            Ok(Ok(Err(e))) => Err(e),
            _ => {
                self.lock().writes.remove(&key);
                let concern =
                    serde_json::to_value(self.cfg.modes.write_concern).unwrap_or_default();
                Err(ErrorBody::new(
                    ErrorKind::Timeout,
                    format!("write {position:?} not acknowledged by write concern {concern} in time; it may still commit"),
                ))
            }
        }
    }

    /// Reads a key as the `--reads` mode says.
    pub async fn read(self: &Arc<Self>, key: &str) -> Result<Value, ErrorBody> {
        self.read_with(|kv| kv.get(key)).await
    }

    /// Runs `view` on the state the `--reads` mode says a read sees, on the
    /// node the mode allows: `local` (and every read in multi-primary
    /// topology) on this node's latest applied state, whatever its role;
    /// `primary` on the latest state if this node believes it is primary,
    /// without asking anyone; `linearizable` on the committed state once a
    /// majority has confirmed this node is still primary. Single-key reads
    /// and read-only transactions both come here, so they can be stale in
    /// exactly the same ways.
    pub async fn read_with<T>(
        self: &Arc<Self>,
        view: impl FnOnce(&Store) -> T,
    ) -> Result<T, ErrorBody> {
        match (self.cfg.modes.topology, self.cfg.modes.reads) {
            (Topology::MultiPrimary, _) | (_, Reads::Local) => {
                Ok(view(self.lock().replication.kv()))
            }
            (_, Reads::Primary) => {
                let core = self.lock();
                core.replication.check_primary().map_err(not_primary)?;
                Ok(view(core.replication.kv()))
            }
            (_, Reads::Linearizable) => {
                let (waiter, id) = self
                    .step(|core, now| {
                        let ticket = core.replication.begin_read(now).map_err(not_primary)?;
                        let (done, waiter) = oneshot::channel();
                        core.next_waiter += 1;
                        let id = core.next_waiter;
                        core.reads.insert(id, ReadWaiter { ticket, done });
                        Ok::<_, ErrorBody>((waiter, id))
                    })
                    .0?;
                match tokio::time::timeout(self.cfg.request_timeout, waiter).await {
                    Ok(Ok(Ok(()))) => Ok(view(self.lock().replication.committed_kv())),
                    Ok(Ok(Err(e))) => Err(e),
                    _ => {
                        self.lock().reads.remove(&id);
                        Err(ErrorBody::new(
                            ErrorKind::Timeout,
                            "leadership not confirmed by a majority in time",
                        ))
                    }
                }
            }
        }
    }

    /// What `GET /status` shows.
    pub fn status(&self) -> Status {
        let core = self.lock();
        let (role, term, primary) = core.replication.role();
        let (oplog, commit_index, durable_index) = core.replication.positions();
        Status {
            id: self.cfg.id.clone(),
            role,
            term,
            primary,
            oplog,
            commit_index,
            durable_index,
            mode: self.cfg.modes,
            clock_offset_ms: self.clock.offset_ms(),
            counters: core.replication.counters(),
        }
    }

    /// Whether this node believes it is primary.
    pub fn is_primary(&self) -> bool {
        self.lock().replication.role().0 == Role::Primary
    }
}

impl Core {
    fn resolve_waiters(&mut self, concern: crate::mode::WriteConcern) {
        let acked = self.replication.ack_index(concern);
        while let Some(waiter) = self.writes.first_entry() {
            if waiter.key().0 > acked {
                break;
            }
            let waiter = waiter.remove();
            let result = if self.replication.holds(waiter.position) {
                Ok(())
            } else {
                Err(ErrorBody::new(
                    ErrorKind::Timeout,
                    "the entry was replaced on this node by another primary's; it may or may not survive elsewhere",
                ))
            };
            let _ = waiter.done.send(result);
        }
        if self.reads.is_empty() {
            return;
        }
        let mut finished = Vec::new();
        for (id, waiter) in &self.reads {
            match self.replication.read_state(&waiter.ticket) {
                ReadState::Waiting => {}
                ReadState::Ready => finished.push((*id, Ok(()))),
                ReadState::Lost => {
                    let primary = self.replication.role().2;
                    finished.push((*id, Err(not_primary(NotPrimary { primary }))));
                }
            }
        }
        for (id, result) in finished {
            if let Some(waiter) = self.reads.remove(&id) {
                let _ = waiter.done.send(result);
            }
        }
    }
}
