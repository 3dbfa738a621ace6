//! Network set-up for the server: the listening socket and the open-file
//! limit. Opens sockets and sets limits; never reads or writes a connection.

use std::io;
use std::net::SocketAddr;

/// Creates the listening socket (dual-stack for `::`), so the caller can
/// report the real address before [`crate::io::server::run`] starts.
pub fn bind(addr: SocketAddr) -> io::Result<std::net::TcpListener> {
    use socket2::{Domain, Socket, Type};
    let sock = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    sock.set_reuse_address(true)?;
    if addr.is_ipv6() {
        let _ = sock.set_only_v6(false);
    }
    sock.set_nonblocking(true)?;
    sock.bind(&addr.into())?;
    sock.listen(1024)?;
    Ok(sock.into())
}

/// Raises the soft open-file limit to the hard one: every connection needs a
/// socket, and a pipe and a file while it moves a body. Returns the limit
/// now in force.
pub fn raise_fd_limit() -> Option<u64> {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).ok()?;
    if soft < hard && setrlimit(Resource::RLIMIT_NOFILE, hard, hard).is_ok() {
        return Some(hard);
    }
    Some(soft)
}
