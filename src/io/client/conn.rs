//! One connection to the server: a non-blocking socket, the client session,
//! and the buffers between them. It owns no poll: it is a source of the
//! client's one loop ([`super::event_loop`]), which registers it, tells it
//! when the socket became readable or writable ([`Conn::mark_ready`]) and
//! waits when a step moved nothing. A step never blocks.
//!
//! Edge-triggered readiness: the `readable`/`writable` flags stay set until
//! a read or write would block, as mio's rules for draining ask.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::os::fd::OwnedFd;
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Interest, Registry, Token};

use super::error::NetError;
use crate::auth::Key;
use crate::client::rate::Bucket;
use crate::client::session::{ClientAuth, ClientSession};
use crate::io::describe;
use crate::io::transfer::{receive_step, BodyReceiver, BodySender, Pipe};
use crate::proto::path::escape;
use crate::proto::{self, ErrorCode};

/// Connecting gives up after this.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const READ_CHUNK: usize = 256 * 1024;
/// Body bytes moved per step before answers are read again.
const BUDGET: u64 = 16 << 20;

/// The body bytes a step may move: [`BUDGET`], or less under `--bwlimit`
/// (what the bucket allows now). Unlimited, this is the constant alone: no
/// clock read, no system call.
fn budget(rate: Option<&Bucket>, now: Instant) -> u64 {
    match rate {
        None => BUDGET,
        Some(bucket) => bucket.allowance(now).min(BUDGET),
    }
}

/// Where, and as whom, to connect.
#[derive(Clone)]
pub struct Remote {
    /// Host name or address.
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// The client's name (its namespace on the server).
    pub name: String,
    /// The key of its secret, if it has one.
    pub key: Option<Key>,
}

impl Remote {
    /// `HOST:PORT` as the user wrote it (IPv6 in brackets), for messages.
    pub fn shown(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// What one step moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stepped {
    /// File body bytes moved (sent by a backup, received by a restore).
    pub body: u64,
    /// Anything moved at all; when not, the driver waits for the loop.
    pub progress: bool,
    /// Body bytes were due but `--bwlimit` allowed none: the driver waits
    /// for the bucket (`Bucket::ready_at`) as well as for the socket.
    pub throttled: bool,
}

/// A connected session (welcomed once the loop has driven its handshake).
pub struct Conn {
    sock: TcpStream,
    /// The protocol state.
    pub session: ClientSession,
    inbuf: crate::io::inbuf::InBuf,
    readable: bool,
    writable: bool,
    pipe: Option<Pipe>,
    /// The server refuses writes.
    pub read_only: bool,
    /// `HOST:PORT` as the user wrote it, for messages.
    pub shown: String,
}

impl Conn {
    /// Connects to `remote` (blocking, at most [`CONNECT_TIMEOUT`] per
    /// address) and queues the `Hello`; the loop then drives the handshake.
    pub fn connect(remote: &Remote) -> Result<Conn, NetError> {
        let shown = remote.shown();
        let addrs: Vec<SocketAddr> = (remote.host.as_str(), remote.port)
            .to_socket_addrs()
            .map_err(|e| NetError::Connect {
                server: shown.clone(),
                cause: e.to_string(),
            })?
            .collect();
        let mut last = io::Error::new(io::ErrorKind::NotFound, "no address");
        let mut std_sock = None;
        for addr in addrs {
            match std::net::TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT) {
                Ok(s) => {
                    std_sock = Some(s);
                    break;
                }
                Err(e) => last = e,
            }
        }
        let auth = match &remote.key {
            Some(key) => Some(ClientAuth {
                key: key.clone(),
                nonce: crate::io::random_bytes()
                    .map_err(|e| NetError::Local(format!("getrandom: {}", describe(&e))))?,
            }),
            None => None,
        };
        let std_sock = std_sock.ok_or_else(|| NetError::Connect {
            server: shown.clone(),
            cause: describe(&last),
        })?;
        let _ = std_sock.set_nodelay(true);
        // Notices a server that vanished without a reset (power cut, cable).
        let _ = socket2::SockRef::from(&std_sock).set_tcp_keepalive(
            &socket2::TcpKeepalive::new()
                .with_time(Duration::from_secs(60))
                .with_interval(Duration::from_secs(10)),
        );
        std_sock
            .set_nonblocking(true)
            .map_err(|e| NetError::Local(format!("{shown}: {}", describe(&e))))?;
        // The handshake's deadline starts once the socket is connected, not
        // before the name lookup and the connect (which may take a while
        // per address).
        Ok(Conn {
            sock: TcpStream::from_std(std_sock),
            session: ClientSession::new(Instant::now(), &remote.name, auth),
            inbuf: Default::default(),
            readable: true,
            writable: true,
            pipe: None,
            read_only: false,
            shown,
        })
    }

    /// The server runs on this machine: it was reached over loopback, or
    /// at the address this end of the connection has.
    pub fn is_local(&self) -> bool {
        match (self.sock.peer_addr(), self.sock.local_addr()) {
            (Ok(peer), Ok(local)) => peer.ip().is_loopback() || peer.ip() == local.ip(),
            _ => false,
        }
    }

    /// Joins the loop's poll under `token`, for both directions.
    pub fn register(&mut self, registry: &Registry, token: Token) -> Result<(), NetError> {
        registry
            .register(
                &mut self.sock,
                token,
                Interest::READABLE | Interest::WRITABLE,
            )
            .map_err(|e| NetError::Local(format!("poll: {e}")))
    }

    /// Leaves the loop's poll (before the connection is dropped).
    pub fn deregister(&mut self, registry: &Registry) {
        let _ = registry.deregister(&mut self.sock);
    }

    /// The loop saw the socket become readable or writable (or closed, or
    /// in error: the next read or write says which).
    pub fn mark_ready(&mut self, readable: bool, writable: bool) {
        self.readable |= readable;
        self.writable |= writable;
    }

    /// The error for an `Error` frame from the server.
    pub fn refused(&self, code: ErrorCode, message: &str) -> NetError {
        let hint = if code == ErrorCode::Auth && !self.session.has_secret() {
            " (the server requires a secret: -k FILE or RSB_SECRET_FILE)"
        } else {
            ""
        };
        let server = self.shown.clone();
        let message = format!("{}{hint}", escape(message.as_bytes()));
        if code == ErrorCode::Auth {
            NetError::Auth { server, message }
        } else {
            NetError::Refused {
                server,
                code,
                message,
            }
        }
    }

    /// The error for a session that ended (protocol error, EOF, timeout).
    pub fn broken(&self) -> NetError {
        NetError::from_session(&self.shown, self.session.error())
    }

    fn lost(&self, cause: String) -> NetError {
        NetError::Lost {
            server: self.shown.clone(),
            cause,
        }
    }

    /// Sends queued frames; then, if nothing is queued and `body` is given,
    /// sends body bytes (no more than `rate` allows, and spends them
    /// there); then reads and parses frames. Never waits. Frames are not
    /// paced: they are small next to the bodies.
    pub fn step(
        &mut self,
        now: Instant,
        body: Option<&mut BodySender>,
        rate: Option<&mut Bucket>,
    ) -> Result<Stepped, NetError> {
        let mut progress = self.flush(now)?;
        let mut sent = 0;
        let mut throttled = false;
        if self.session.poll_transmit().is_empty() && self.writable {
            if let Some(tx) = body.filter(|tx| !tx.is_done()) {
                let budget = budget(rate.as_deref(), now);
                throttled = budget == 0;
                let p = tx
                    .pump(&self.sock, budget)
                    .map_err(|e| self.lost(format!("send: {}", describe(&e))))?;
                sent = p.moved;
                if p.moved > 0 {
                    self.session.handle_activity(now);
                    if let Some(bucket) = rate {
                        bucket.spent(now, p.moved);
                    }
                }
                self.writable &= !p.would_block;
                progress |= p.moved > 0;
            }
        }
        if self.session.wants_body().is_none() && !self.session.is_closed() {
            progress |= self.read_frames(now)?;
        }
        Ok(Stepped {
            body: sent,
            progress,
            throttled,
        })
    }

    /// Receives body bytes of a restored file into `file` (or drops them),
    /// no more than `rate` allows (and spends them there). Never waits.
    ///
    /// Under a limit the bytes already read with the frame before the body
    /// are paced too (they are fed from the buffer a budget at a time), so
    /// the client never reads more than one read's worth ahead of its
    /// pace; a client that stops reading makes TCP hold the server back.
    pub fn receive(
        &mut self,
        now: Instant,
        recv: &mut BodyReceiver,
        file: Option<&OwnedFd>,
        rate: Option<&mut Bucket>,
    ) -> Result<Stepped, NetError> {
        let flushed = self.flush(now)?;
        let budget = budget(rate.as_deref(), now);
        let throttled = budget == 0 && !recv.is_done();
        let mut n = 0;
        // Unlimited, `receive_step` feeds the whole buffer; limited, the
        // budget bounds that part too.
        if rate.is_some() && !self.inbuf.is_empty() && !recv.is_done() {
            let take = self
                .inbuf
                .len()
                .min(usize::try_from(budget).unwrap_or(usize::MAX));
            n = recv.feed(file, self.inbuf.get(..take).unwrap_or_default()) as u64;
            self.inbuf.consume(n as usize);
        }
        if self.inbuf.is_empty() || rate.is_none() {
            n += receive_step(
                recv,
                &mut self.inbuf,
                &self.sock,
                file,
                &mut self.pipe,
                &mut self.readable,
                budget - n,
            )
            .map_err(|e| {
                if e.kind() == io::ErrorKind::UnexpectedEof {
                    self.lost("connection closed by the server".into())
                } else {
                    self.lost(format!("receive: {}", describe(&e)))
                }
            })?;
        }
        if n > 0 {
            self.session.handle_activity(now);
            if let Some(bucket) = rate {
                bucket.spent(now, n);
            }
        }
        Ok(Stepped {
            body: n,
            progress: n > 0 || flushed,
            throttled,
        })
    }

    /// Writes queued frames while the socket takes them; never waits.
    /// True when something was written.
    pub fn flush(&mut self, now: Instant) -> Result<bool, NetError> {
        let mut wrote = false;
        while self.writable && !self.session.poll_transmit().is_empty() {
            match (&self.sock).write(self.session.poll_transmit()) {
                Ok(0) => return Err(self.lost("connection closed".into())),
                Ok(n) => {
                    self.session.handle_sent(now, n);
                    wrote = true;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.writable = false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // The server may have said why before closing: read that first.
                Err(e) => {
                    let _ = self.read_frames(now);
                    if self.session.error().is_some() {
                        return Err(self.broken());
                    }
                    return Err(self.lost(describe(&e)));
                }
            }
        }
        Ok(wrote)
    }

    /// Parses buffered frames, reading more when a frame is incomplete.
    fn read_frames(&mut self, now: Instant) -> Result<bool, NetError> {
        let mut progress = false;
        // One read per call: the caller drains the events between calls, so
        // a server that floods answers cannot grow the event queue without
        // bound.
        let mut have_read = false;
        loop {
            let n = self.session.handle_input(now, &self.inbuf);
            if n > 0 {
                self.inbuf.consume(n);
                progress = true;
            }
            if have_read
                || self.session.wants_body().is_some()
                || self.session.is_closed()
                || !self.readable
            {
                return Ok(progress);
            }
            if self.inbuf.len() > proto::MAX_PAYLOAD as usize + READ_CHUNK {
                return Ok(progress);
            }
            let r = (&self.sock).read(self.inbuf.room(READ_CHUNK));
            match r {
                Ok(0) => {
                    self.inbuf.filled(READ_CHUNK, 0);
                    // Frames still buffered (an Error, say) come before the EOF.
                    let n = self.session.handle_input(now, &self.inbuf);
                    self.inbuf.consume(n);
                    self.session.handle_eof();
                    return Ok(true);
                }
                Ok(n) => {
                    self.inbuf.filled(READ_CHUNK, n);
                    // Part of a frame counts too: a large one may trickle.
                    self.session.handle_activity(now);
                    progress = true;
                    have_read = true;
                }
                Err(e) => {
                    self.inbuf.filled(READ_CHUNK, 0);
                    match e.kind() {
                        io::ErrorKind::WouldBlock => {
                            self.readable = false;
                            return Ok(progress);
                        }
                        io::ErrorKind::Interrupted => {}
                        _ => {
                            self.session.handle_eof();
                            return Err(self.lost(describe(&e)));
                        }
                    }
                }
            }
        }
    }
}
