//! The default network backend: a TCP proxy on every directed link.
//!
//! For every ordered pair of nodes `(from, to)` there is one listener on
//! `127.0.0.1:0` forwarding to `to`'s real address; node `from` is given
//! that listener as its peer address for `to` ([`ProxyNet::peer_urls`]).
//! So every byte between nodes crosses exactly one link, and a link knows
//! which node opened the connection (`from`) and which accepted it (`to`).
//! Clients of the test talk to nodes directly and are never faulted.
//!
//! # Directions
//! On link `from → to`, *forward* bytes are the ones `from` sends (requests)
//! and *backward* bytes the ones `to` sends back (responses). A grudge entry
//! `a: {b}` ("a drops traffic from b") holds every byte travelling b → a,
//! matching a kernel `DROP` of packets with source b arriving at a:
//! - on link `b → a` (connections b opened to a) the forward bytes are held;
//! - on link `a → b` (connections a opened to b) the backward bytes are held.
//!
//! # Link states
//! - pass: bytes flow;
//! - hold (blackhole): the proxy stops reading and forwarding in the held
//!   direction — on connections already open too, so keep-alive pools do
//!   not slip through; new connections are accepted but carry nothing.
//!   Held bytes stay queued and flow once the hold is lifted (heal), as
//!   retransmissions would after an `iptables DROP` rule is removed;
//! - reject ([`ProxyNet::reject`]): open connections are closed with an RST
//!   and new ones are reset as soon as they are accepted, like `REJECT`;
//! - delay: each chunk waits `delay ± jitter` before it is written;
//! - flaky: when `flaky(loss)` changes the loss, every open connection, and
//!   later every new one, independently with probability `loss` is either
//!   stalled (held both ways until `fast`) or reset (seeded randomness).

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

use super::{Net, NetError};
use crate::grudge::{Grudge, Node};

/// Bytes a link has forwarded so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LinkBytes {
    /// From the node that opened the connections to the node that accepted them.
    pub forward: u64,
    /// Back from the accepting node to the opening one.
    pub backward: u64,
}

/// A TCP proxy on every directed node-to-node link. See the module docs.
///
/// Dropping it (or [`Net::teardown`]) stops every listener and connection.
pub struct ProxyNet {
    links: BTreeMap<(Node, Node), Link>,
    tasks: Vec<JoinHandle<()>>,
}

struct Link {
    listen: SocketAddr,
    state: watch::Sender<LinkState>,
    bytes: Arc<Counters>,
}

#[derive(Default)]
struct Counters {
    forward: AtomicU64,
    backward: AtomicU64,
}

/// What a link does to its connections now.
#[derive(Clone, Debug, Default, PartialEq)]
struct LinkState {
    hold_forward: bool,
    hold_backward: bool,
    reject: bool,
    delay: Duration,
    jitter: Duration,
    loss: f64,
    /// Bumped whenever `flaky` changes the loss, so open connections draw again.
    flaky_epoch: u64,
}

impl ProxyNet {
    /// Starts one proxy per ordered pair of `nodes` (name → the node's real
    /// listen address), with flaky draws seeded by 0. Must run inside a
    /// tokio runtime; the proxy tasks run on it.
    pub async fn start(nodes: &BTreeMap<Node, SocketAddr>) -> Result<ProxyNet, NetError> {
        Self::start_seeded(nodes, 0).await
    }

    /// [`ProxyNet::start`] with the seed for flaky connection draws.
    pub async fn start_seeded(
        nodes: &BTreeMap<Node, SocketAddr>,
        seed: u64,
    ) -> Result<ProxyNet, NetError> {
        let mut net = ProxyNet {
            links: BTreeMap::new(),
            tasks: Vec::new(),
        };
        for (index, (from, to, target)) in directed_pairs(nodes).enumerate() {
            let listener = TcpListener::bind("127.0.0.1:0")
                .await
                .map_err(|e| NetError::io(format!("binding the proxy for {from} -> {to}"), e))?;
            let listen = listener
                .local_addr()
                .map_err(|e| NetError::io(format!("proxy address for {from} -> {to}"), e))?;
            let (state, state_rx) = watch::channel(LinkState::default());
            let bytes = Arc::new(Counters::default());
            let link_seed = seed ^ (index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
            net.tasks.push(tokio::spawn(accept_loop(
                listener,
                target,
                state_rx,
                Arc::clone(&bytes),
                link_seed,
            )));
            tracing::debug!(%from, %to, %listen, %target, "proxy link up");
            net.links.insert(
                (from, to),
                Link {
                    listen,
                    state,
                    bytes,
                },
            );
        }
        Ok(net)
    }

    /// For each node `from`, the URL (`http://127.0.0.1:P`) it must use to
    /// reach each other node `to`.
    pub fn peer_urls(&self) -> BTreeMap<Node, BTreeMap<Node, String>> {
        let mut urls: BTreeMap<Node, BTreeMap<Node, String>> = BTreeMap::new();
        for ((from, to), link) in &self.links {
            urls.entry(from.clone())
                .or_default()
                .insert(to.clone(), format!("http://{}", link.listen));
        }
        urls
    }

    /// The proxy listener of link `from → to`.
    pub fn link_addr(&self, from: &str, to: &str) -> Option<SocketAddr> {
        self.link(from, to).map(|link| link.listen)
    }

    /// Bytes link `from → to` has forwarded so far.
    pub fn bytes(&self, from: &str, to: &str) -> Option<LinkBytes> {
        self.link(from, to).map(|link| LinkBytes {
            forward: link.bytes.forward.load(Ordering::Relaxed),
            backward: link.bytes.backward.load(Ordering::Relaxed),
        })
    }

    /// Like [`Net::partition`], but every link the grudge touches (in either
    /// direction) resets its connections instead of holding bytes, like
    /// `REJECT`. Replaces any partition in force.
    pub fn reject(&mut self, grudge: &Grudge) -> Result<(), NetError> {
        self.check_nodes(grudge)?;
        for ((from, to), link) in &self.links {
            let reject = drops(grudge, to, from) || drops(grudge, from, to);
            link.state.send_if_modified(|s| {
                let new = (false, false, reject);
                let changed = (s.hold_forward, s.hold_backward, s.reject) != new;
                (s.hold_forward, s.hold_backward, s.reject) = new;
                changed
            });
        }
        Ok(())
    }

    /// Tears down and waits until every listener is closed, so a connect to
    /// any former link is refused once this returns.
    pub async fn shutdown(mut self) {
        self.stop();
        for task in std::mem::take(&mut self.tasks) {
            // Cancelled is the expected outcome; a panic was already logged.
            let _ = task.await;
        }
    }

    fn link(&self, from: &str, to: &str) -> Option<&Link> {
        self.links.get(&(from.to_string(), to.to_string()))
    }

    fn check_nodes(&self, grudge: &Grudge) -> Result<(), NetError> {
        let known: BTreeSet<&Node> = self.links.keys().flat_map(|(a, b)| [a, b]).collect();
        match grudge
            .keys()
            .chain(grudge.values().flatten())
            .find(|n| !known.contains(n))
        {
            Some(unknown) if !known.is_empty() => Err(NetError::UnknownNode(unknown.clone())),
            _ => Ok(()),
        }
    }

    fn update_all(&self, modify: impl Fn(&mut LinkState)) {
        for link in self.links.values() {
            link.state.send_if_modified(|s| {
                let before = s.clone();
                modify(s);
                *s != before
            });
        }
    }

    fn update_links(&self, links: &BTreeSet<(Node, Node)>, modify: impl Fn(&mut LinkState)) {
        for link in links.iter().filter_map(|l| self.links.get(l)) {
            link.state.send_if_modified(|s| {
                let before = s.clone();
                modify(s);
                *s != before
            });
        }
    }

    fn check_links(&self, links: &BTreeSet<(Node, Node)>) -> Result<(), NetError> {
        match links.iter().find(|l| !self.links.contains_key(*l)) {
            Some((from, to)) => Err(NetError::UnknownNode(format!("{from} -> {to}"))),
            None => Ok(()),
        }
    }

    fn stop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl Net for ProxyNet {
    fn partition(&mut self, grudge: &Grudge) -> Result<(), NetError> {
        self.check_nodes(grudge)?;
        for ((from, to), link) in &self.links {
            // Forward bytes travel from → to: held when `to` drops `from`.
            // Backward bytes travel to → from: held when `from` drops `to`.
            let new = (drops(grudge, to, from), drops(grudge, from, to), false);
            link.state.send_if_modified(|s| {
                let changed = (s.hold_forward, s.hold_backward, s.reject) != new;
                (s.hold_forward, s.hold_backward, s.reject) = new;
                changed
            });
        }
        Ok(())
    }

    fn heal(&mut self) -> Result<(), NetError> {
        self.update_all(|s| {
            s.hold_forward = false;
            s.hold_backward = false;
            s.reject = false;
        });
        Ok(())
    }

    fn slow(&mut self, delay: Duration, jitter: Duration) -> Result<(), NetError> {
        self.update_all(|s| {
            s.delay = delay;
            s.jitter = jitter;
        });
        Ok(())
    }

    fn flaky(&mut self, loss: f64) -> Result<(), NetError> {
        if !(0.0..=1.0).contains(&loss) {
            return Err(NetError::Invalid(format!(
                "loss {loss} is not within 0..=1"
            )));
        }
        // Only a change of loss makes open connections draw again, so
        // repeating the same call is a no-op.
        self.update_all(|s| {
            if s.loss != loss {
                s.loss = loss;
                s.flaky_epoch += 1;
            }
        });
        Ok(())
    }

    fn slow_links(
        &mut self,
        links: &BTreeSet<(Node, Node)>,
        delay: Duration,
        jitter: Duration,
    ) -> Result<(), NetError> {
        self.check_links(links)?;
        self.update_links(links, |s| {
            s.delay = delay;
            s.jitter = jitter;
        });
        Ok(())
    }

    fn flaky_links(&mut self, links: &BTreeSet<(Node, Node)>, loss: f64) -> Result<(), NetError> {
        if !(0.0..=1.0).contains(&loss) {
            return Err(NetError::Invalid(format!(
                "loss {loss} is not within 0..=1"
            )));
        }
        self.check_links(links)?;
        self.update_links(links, |s| {
            if s.loss != loss {
                s.loss = loss;
                s.flaky_epoch += 1;
            }
        });
        Ok(())
    }

    fn fast(&mut self) -> Result<(), NetError> {
        self.update_all(|s| {
            s.delay = Duration::ZERO;
            s.jitter = Duration::ZERO;
            s.loss = 0.0;
        });
        Ok(())
    }

    fn teardown(&mut self) -> Result<(), NetError> {
        self.heal()?;
        self.fast()?;
        self.stop();
        Ok(())
    }
}

impl Drop for ProxyNet {
    fn drop(&mut self) {
        self.stop();
    }
}

fn drops(grudge: &Grudge, dropper: &str, sender: &str) -> bool {
    dropper != sender
        && grudge
            .get(dropper)
            .is_some_and(|dropped| dropped.contains(sender))
}

fn directed_pairs(
    nodes: &BTreeMap<Node, SocketAddr>,
) -> impl Iterator<Item = (Node, Node, SocketAddr)> + '_ {
    nodes.keys().flat_map(move |from| {
        nodes
            .iter()
            .filter(move |(to, _)| *to != from)
            .map(move |(to, addr)| (from.clone(), to.clone(), *addr))
    })
}

/// Accepts connections on one link until aborted; dropping the `JoinSet`
/// on abort aborts every connection of the link with it.
async fn accept_loop(
    listener: TcpListener,
    target: SocketAddr,
    state: watch::Receiver<LinkState>,
    bytes: Arc<Counters>,
    seed: u64,
) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((inbound, _)) => {
                    connections.spawn(serve(inbound, target, state.clone(), Arc::clone(&bytes), rng.gen()));
                }
                Err(err) => {
                    tracing::warn!(%err, "proxy accept failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

/// Which directions of one connection may carry bytes now.
#[derive(Clone, Copy, Debug)]
struct Gate {
    hold_forward: bool,
    hold_backward: bool,
    delay: Duration,
    jitter: Duration,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Direction {
    Forward,
    Backward,
}

impl Gate {
    fn holds(&self, direction: Direction) -> bool {
        match direction {
            Direction::Forward => self.hold_forward,
            Direction::Backward => self.hold_backward,
        }
    }
}

/// One connection's flaky luck: drawn again at every `flaky` call.
struct Fate {
    rng: StdRng,
    stalled: bool,
    drawn_for_epoch: Option<u64>,
}

impl Fate {
    /// The gate under `link`, or `None` when the connection must be reset.
    fn gate(&mut self, link: &LinkState) -> Option<Gate> {
        if link.reject {
            return None;
        }
        if link.loss <= 0.0 {
            self.stalled = false;
            self.drawn_for_epoch = None;
        } else if self.drawn_for_epoch != Some(link.flaky_epoch) {
            self.drawn_for_epoch = Some(link.flaky_epoch);
            self.stalled = false;
            if self.rng.gen::<f64>() < link.loss {
                if self.rng.gen_bool(0.5) {
                    return None;
                }
                self.stalled = true;
            }
        }
        Some(Gate {
            hold_forward: link.hold_forward || self.stalled,
            hold_backward: link.hold_backward || self.stalled,
            delay: link.delay,
            jitter: link.jitter,
        })
    }
}

/// Forwards one connection until both sides close, or resets it.
async fn serve(
    mut inbound: TcpStream,
    target: SocketAddr,
    mut link: watch::Receiver<LinkState>,
    bytes: Arc<Counters>,
    seed: u64,
) {
    let mut fate = Fate {
        rng: StdRng::seed_from_u64(seed),
        stalled: false,
        drawn_for_epoch: None,
    };
    if fate.gate(&link.borrow_and_update()).is_none() {
        return reset(inbound);
    }
    let mut outbound = match TcpStream::connect(target).await {
        Ok(stream) => stream,
        Err(err) => {
            tracing::debug!(%err, %target, "proxy could not reach the node");
            return reset(inbound);
        }
    };
    // The state may have changed while connecting.
    let Some(first) = fate.gate(&link.borrow_and_update()) else {
        reset(outbound);
        return reset(inbound);
    };
    let _ = inbound.set_nodelay(true);
    let _ = outbound.set_nodelay(true);
    let (gate_tx, gate_rx) = watch::channel(first);
    let closed_cleanly = {
        let (in_read, in_write) = inbound.split();
        let (out_read, out_write) = outbound.split();
        let forward = pump(
            in_read,
            out_write,
            Direction::Forward,
            gate_rx.clone(),
            &bytes.forward,
            seed,
        );
        let backward = pump(
            out_read,
            in_write,
            Direction::Backward,
            gate_rx,
            &bytes.backward,
            !seed,
        );
        let control = async {
            while link.changed().await.is_ok() {
                match fate.gate(&link.borrow_and_update()) {
                    Some(gate) => gate_tx.send_replace(gate),
                    None => return,
                };
            }
        };
        tokio::select! {
            biased;
            () = control => false,
            both = async { tokio::try_join!(forward, backward) } => both.is_ok(),
        }
    };
    if !closed_cleanly {
        reset(inbound);
        reset(outbound);
    }
}

/// Copies one direction chunk by chunk, waiting while the gate holds it.
async fn pump<R, W>(
    mut from: R,
    mut to: W,
    direction: Direction,
    mut gate: watch::Receiver<Gate>,
    counter: &AtomicU64,
    seed: u64,
) -> io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut rng = StdRng::seed_from_u64(seed);
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        // Not reading while held leaves the bytes queued in the kernel, so
        // the sender sees a stalled peer, as with a dropped packet.
        wait_for_pass(&mut gate, direction).await?;
        let n = from.read(&mut buf).await?;
        if n == 0 {
            return to.shutdown().await;
        }
        // A hold may have begun while this read was pending.
        let open = wait_for_pass(&mut gate, direction).await?;
        tokio::time::sleep(sample_delay(open.delay, open.jitter, &mut rng)).await;
        to.write_all(&buf[..n]).await?;
        counter.fetch_add(n as u64, Ordering::Relaxed);
    }
}

/// Waits until `direction` passes, and returns the gate that let it pass.
async fn wait_for_pass(gate: &mut watch::Receiver<Gate>, direction: Direction) -> io::Result<Gate> {
    let open = gate
        .wait_for(|g| !g.holds(direction))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "connection control ended"))?;
    Ok(*open)
}

fn sample_delay(delay: Duration, jitter: Duration, rng: &mut StdRng) -> Duration {
    if jitter.is_zero() {
        return delay;
    }
    let low = delay.saturating_sub(jitter);
    let high = delay + jitter;
    rng.gen_range(low..=high)
}

/// Closes `stream` with an RST rather than a FIN.
fn reset(stream: TcpStream) {
    if let Err(err) = stream.set_zero_linger() {
        tracing::debug!(%err, "could not set SO_LINGER 0; closing with FIN");
    }
    drop(stream);
}
