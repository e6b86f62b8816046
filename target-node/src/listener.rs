//! The node's listening socket: bound here to `--listen`, or inherited from
//! the launcher as an already-bound file descriptor (`--listen-fd`), which
//! this node then listens on. An inherited socket must be bound to exactly
//! the `--listen` address, since that is the address peers were told.

use std::io;
use std::net::SocketAddr;
use std::os::fd::{FromRawFd, OwnedFd};

use socket2::Socket;

/// How many connections may wait to be accepted.
const BACKLOG: i32 = 1024;

/// The listener for `listen`: the inherited descriptor `fd` when given,
/// else a socket bound here.
pub(crate) fn open(listen: SocketAddr, fd: Option<i32>) -> io::Result<tokio::net::TcpListener> {
    let Some(fd) = fd else {
        let listener = std::net::TcpListener::bind(listen)?;
        listener.set_nonblocking(true)?;
        return tokio::net::TcpListener::from_std(listener);
    };
    let socket = Socket::from(inherited(fd)?);
    let bound = socket.local_addr()?.as_socket();
    if bound != Some(listen) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("--listen-fd {fd} is bound to {bound:?}, not to --listen {listen}"),
        ));
    }
    socket.listen(BACKLOG)?;
    socket.set_nonblocking(true)?;
    tokio::net::TcpListener::from_std(std::net::TcpListener::from(socket))
}

/// Takes ownership of descriptor `fd`, after checking that it is an open
/// socket of this process.
// The workspace denies unsafe code; this is its one use in target-node.
#[allow(unsafe_code)]
fn inherited(fd: i32) -> io::Result<OwnedFd> {
    let path = format!("/proc/self/fd/{fd}");
    let target = std::fs::read_link(&path).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("--listen-fd {fd} is not an open descriptor: {e}"),
        )
    })?;
    if !target.to_string_lossy().starts_with("socket:") {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("--listen-fd {fd} is {}, not a socket", target.display()),
        ));
    }
    // SAFETY: `fd` is open (its /proc entry exists) and is a socket; the
    // launcher passed it for this node alone, and nothing else in this
    // process owns or closes it, so ownership moves here exactly once.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}
