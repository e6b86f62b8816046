//! Test support: clusters of real `target-node` processes on 127.0.0.1, a
//! blackholing TCP proxy per directed node-to-node link, and polling helpers.
//! Every child process is killed when its [`Cluster`] drops, even on panic.

use std::collections::BTreeMap;
use std::fs::File;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use target_node::api::{Role, Status};
use target_node::client::{primary_among, Client};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// Tests share two cores: run clusters one at a time so that timing knobs
/// stay meaningful.
pub static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Small timing knobs, so that failovers take a fraction of a second.
pub const FAST: &[&str] = &[
    "--heartbeat-ms",
    "20",
    "--election-timeout-ms",
    "200",
    "--rpc-timeout-ms",
    "150",
    "--request-timeout-ms",
    "1000",
];

/// A free port on 127.0.0.1 (bound, then released).
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

/// One node process.
pub struct NodeProc {
    /// Its id (`n1`...).
    pub id: String,
    /// Its client port.
    pub port: u16,
    args: Vec<String>,
    child: Option<Child>,
    /// Its stderr.
    pub log_path: PathBuf,
}

impl NodeProc {
    /// Starts (or restarts) the process; stderr is appended to its log.
    pub fn start(&mut self) {
        assert!(self.child.is_none(), "{} already running", self.id);
        let log = File::options()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_target-node"))
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn target-node");
        self.child = Some(child);
    }

    /// SIGKILLs the process and reaps it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Waits (bounded) for a process that exits by itself, e.g. on crash.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    self.child = None;
                    return Some(status);
                }
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        None
    }

    /// Its stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }
}

impl Drop for NodeProc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A proxied directed link: when blocked, it refuses new connections and
/// cuts open ones.
struct Link {
    blocked: Arc<AtomicBool>,
    cuts: watch::Sender<u64>,
}

/// A running cluster.
pub struct Cluster {
    /// The nodes, `n1` first.
    pub nodes: Vec<NodeProc>,
    /// Proxies by (from, to) node index.
    links: BTreeMap<(usize, usize), Link>,
    proxy_tasks: Vec<tokio::task::JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

impl Cluster {
    /// Starts `n` nodes with `flags` (plus [`FAST`]); with `proxied`, node
    /// to node traffic goes through proxies that [`Cluster::isolate`] cuts.
    pub async fn start(n: usize, flags: &[&str], proxied: bool) -> Cluster {
        let dir = tempfile::tempdir().expect("tempdir");
        let ports: Vec<u16> = (0..n).map(|_| free_port()).collect();
        let mut links = BTreeMap::new();
        let mut proxy_tasks = Vec::new();
        let mut peer_urls = vec![Vec::new(); n];
        for (from, urls) in peer_urls.iter_mut().enumerate() {
            for to in (0..n).filter(|to| *to != from) {
                let mut port = ports[to];
                if proxied {
                    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
                    port = listener.local_addr().expect("addr").port();
                    let upstream: SocketAddr = ([127, 0, 0, 1], ports[to]).into();
                    let blocked = Arc::new(AtomicBool::new(false));
                    let (cuts, cut_rx) = watch::channel(0);
                    proxy_tasks.push(tokio::spawn(proxy(
                        listener,
                        upstream,
                        blocked.clone(),
                        cut_rx,
                    )));
                    links.insert((from, to), Link { blocked, cuts });
                }
                urls.push(format!("n{}=http://127.0.0.1:{port}", to + 1));
            }
        }
        let nodes = (0..n)
            .map(|i| {
                let id = format!("n{}", i + 1);
                let mut args: Vec<String> = vec![
                    "--id".into(),
                    id.clone(),
                    "--listen".into(),
                    format!("127.0.0.1:{}", ports[i]),
                    "--data-dir".into(),
                    dir.path().join(&id).display().to_string(),
                ];
                if n > 1 {
                    args.extend(["--peers".into(), peer_urls[i].join(",")]);
                }
                args.extend(FAST.iter().chain(flags).map(|s| s.to_string()));
                let log_path = dir.path().join(format!("{id}.log"));
                let mut node = NodeProc {
                    id,
                    port: ports[i],
                    args,
                    child: None,
                    log_path,
                };
                node.start();
                node
            })
            .collect();
        Cluster {
            nodes,
            links,
            proxy_tasks,
            _dir: dir,
        }
    }

    /// A client of node `i` (0-based).
    pub fn client(&self, i: usize) -> Client {
        Client::new(
            format!("http://127.0.0.1:{}", self.nodes[i].port),
            Duration::from_secs(3),
        )
    }

    /// Index of the node named `id`.
    pub fn index_of(&self, id: &str) -> usize {
        self.nodes
            .iter()
            .position(|n| n.id == id)
            .expect("no such node")
    }

    /// Statuses of the nodes that answer.
    pub async fn statuses(&self) -> Vec<Status> {
        let mut statuses = Vec::new();
        for i in 0..self.nodes.len() {
            if let Ok(status) = self.client(i).status().await {
                statuses.push(status);
            }
        }
        statuses
    }

    /// Waits until some node other than `not` is primary and every
    /// answering node follows it; returns its index.
    pub async fn wait_primary(&self, not: Option<&str>) -> usize {
        let id = eventually(
            "a primary every node follows",
            Duration::from_secs(10),
            || async {
                let statuses = self.statuses().await;
                let primary = primary_among(&statuses)?;
                let agreed = statuses
                    .iter()
                    .all(|s| s.primary.as_ref() == Some(&primary.id) && s.term == primary.term);
                (agreed && Some(primary.id.0.as_str()) != not).then(|| primary.id.0.clone())
            },
        )
        .await;
        self.index_of(&id)
    }

    /// Cuts every link to and from node `i`.
    pub fn isolate(&self, i: usize) {
        for ((from, to), link) in &self.links {
            if *from == i || *to == i {
                link.blocked.store(true, Ordering::SeqCst);
                link.cuts.send_modify(|n| *n += 1);
            }
        }
    }

    /// Restores every link.
    pub fn heal(&self) {
        for link in self.links.values() {
            link.blocked.store(false, Ordering::SeqCst);
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            node.kill();
        }
        for task in &self.proxy_tasks {
            task.abort();
        }
    }
}

async fn proxy(
    listener: TcpListener,
    upstream: SocketAddr,
    blocked: Arc<AtomicBool>,
    cuts: watch::Receiver<u64>,
) {
    loop {
        let Ok((mut inbound, _)) = listener.accept().await else {
            return;
        };
        if blocked.load(Ordering::SeqCst) {
            continue; // dropped: the connection is refused
        }
        let mut cuts = cuts.clone();
        cuts.mark_unchanged();
        tokio::spawn(async move {
            let Ok(mut outbound) = TcpStream::connect(upstream).await else {
                return;
            };
            tokio::select! {
                _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                _ = cuts.changed() => {}
            }
        });
    }
}

/// Polls `probe` every 25 ms until it gives `Some`, at most for `limit`.
pub async fn eventually<T, F, Fut>(what: &str, limit: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Whether a status says the node is a secondary following `primary`.
pub fn follows(status: &Status, primary: &str) -> bool {
    status.role == Role::Secondary && status.primary.as_ref().is_some_and(|p| p.0 == primary)
}
