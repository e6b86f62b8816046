//! A running `faultline serve --port 0`, in its own process group, which
//! is killed on drop.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use nix::sys::signal::{kill, killpg, Signal};
use nix::unistd::Pid;

/// A running `faultline serve` on a store.
pub struct Server {
    pub child: Child,
    /// The URL it printed, `http://127.0.0.1:PORT/`.
    pub url: String,
    /// The address in that URL.
    pub addr: SocketAddr,
}

impl Server {
    /// Starts `faultline serve --port 0 --store STORE` and waits (30 s at
    /// most) for the URL it prints.
    pub fn start(store: &Path) -> Server {
        let mut child = super::faultline()
            .args(["serve", "--port", "0", "--store"])
            .arg(store)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut server = Server {
            child,
            url: String::new(),
            addr: SocketAddr::from(([0, 0, 0, 0], 0)),
        };
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("serve prints its URL within 30 s");
        let url = line
            .find("http://")
            .map(|at| line[at..].trim().to_string())
            .unwrap_or_else(|| panic!("no URL in {line:?}"));
        server.addr = url
            .strip_prefix("http://")
            .and_then(|rest| rest.strip_suffix('/'))
            .and_then(|addr| addr.parse().ok())
            .unwrap_or_else(|| panic!("no address in {url:?}"));
        server.url = url;
        server
    }

    /// Sends SIGTERM and returns the exit code (30 s at most).
    pub fn terminate(&mut self) -> Option<i32> {
        kill(Pid::from_raw(self.child.id() as i32), Signal::SIGTERM).unwrap();
        for _ in 0..300 {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("serve did not stop within 30 s of SIGTERM");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = killpg(Pid::from_raw(self.child.id() as i32), Signal::SIGKILL);
            let _ = self.child.wait();
        }
    }
}
