//! Network set-up for the server: the listening socket and the open-file
//! limit. Opens sockets and sets limits; never reads or writes a connection.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Creates the listening socket (dual-stack for `::`), so the caller can
/// report the real address before the loop starts.
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

/// Listens on `addr`, or on all interfaces when `None`: dual-stack IPv6
/// where the host has it, else IPv4.
pub fn listen(addr: Option<IpAddr>, port: u16) -> io::Result<std::net::TcpListener> {
    match addr {
        Some(ip) => bind(SocketAddr::new(ip, port)),
        None => bind(SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), port))
            .or_else(|_| bind(SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port))),
    }
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
