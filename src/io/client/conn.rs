//! One connection to the server: a non-blocking socket in a one-socket mio
//! loop, the client session, and the buffers between them. Command drivers
//! call [`Conn::step`] in a loop; it moves whatever can move and waits for
//! readiness only when nothing could.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::os::fd::OwnedFd;
use std::time::{Duration, Instant};

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};

use crate::auth::Key;
use crate::client::session::{ClientAuth, ClientSession, Event};
use crate::io::describe;
use crate::io::transfer::{receive_step, BodyReceiver, BodySender, Pipe};
use crate::proto::path::escape;
use crate::proto::{self, ErrorCode};

const SOCK: Token = Token(0);
/// Connecting gives up after this.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// A command gives up when nothing moved either way for this long (a
/// server that went silent, a network that dropped without a reset).
const NO_PROGRESS_TIMEOUT: Duration = Duration::from_secs(300);
/// The handshake gives up after this.
const HELLO_TIMEOUT: Duration = Duration::from_secs(10);
const READ_CHUNK: usize = 256 * 1024;
/// Body bytes moved per step before answers are read again.
const BUDGET: u64 = 16 << 20;

/// Why a connection could not be made or was lost. Both mean exit status 2.
#[derive(Debug)]
pub struct ConnError(pub String);

impl std::fmt::Display for ConnError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A connected, welcomed session.
pub struct Conn {
    poll: Poll,
    events: Events,
    sock: TcpStream,
    /// The protocol state.
    pub session: ClientSession,
    inbuf: Vec<u8>,
    readable: bool,
    writable: bool,
    pipe: Option<Pipe>,
    /// The server refuses writes.
    pub read_only: bool,
    /// `HOST:PORT` as the user wrote it, for messages.
    pub shown: String,
    /// Set by SIGINT/SIGTERM: the command stops at the next wait.
    interrupted: Arc<AtomicBool>,
    last_progress: Instant,
}

impl Conn {
    /// Connects to `host:port`, says hello as `name` (proving it knows the
    /// secret behind `key` when the server asks, and checking the server's
    /// proof) and waits for the welcome.
    pub fn open(
        host: &str,
        port: u16,
        name: &str,
        key: Option<&Key>,
        interrupted: Arc<AtomicBool>,
    ) -> Result<Conn, ConnError> {
        let shown = if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        let addrs: Vec<SocketAddr> = (host, port)
            .to_socket_addrs()
            .map_err(|e| ConnError(format!("cannot connect to {shown}: {e}")))?
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
        let auth = match key {
            Some(key) => Some(ClientAuth {
                key: key.clone(),
                nonce: crate::io::random_bytes()
                    .map_err(|e| ConnError(format!("getrandom: {}", describe(&e))))?,
            }),
            None => None,
        };
        let std_sock = std_sock.ok_or_else(|| {
            ConnError(format!(
                "cannot connect to {shown}: {}",
                crate::io::describe(&last)
            ))
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
            .map_err(|e| ConnError(format!("{shown}: {}", describe(&e))))?;
        let mut sock = TcpStream::from_std(std_sock);
        let poll = Poll::new().map_err(|e| ConnError(format!("poll: {e}")))?;
        poll.registry()
            .register(&mut sock, SOCK, Interest::READABLE | Interest::WRITABLE)
            .map_err(|e| ConnError(format!("poll: {e}")))?;
        let mut conn = Conn {
            poll,
            events: Events::with_capacity(8),
            sock,
            session: ClientSession::new(Instant::now(), name, auth),
            inbuf: Vec::new(),
            readable: true,
            writable: true,
            pipe: None,
            read_only: false,
            shown,
            interrupted,
            last_progress: Instant::now(),
        };
        let deadline = Instant::now() + HELLO_TIMEOUT;
        loop {
            conn.step(None)?;
            match conn.session.poll_event() {
                Some(Event::Welcome { read_only }) => {
                    conn.read_only = read_only;
                    return Ok(conn);
                }
                Some(Event::Refused { code, message }) => return Err(conn.refused(code, &message)),
                Some(_) => {
                    return Err(ConnError(format!(
                        "{}: protocol error during handshake",
                        conn.shown
                    )))
                }
                None if conn.session.is_closed() => return Err(conn.broken()),
                None => {}
            }
            if Instant::now() >= deadline {
                return Err(ConnError(format!(
                    "{}: no answer from the server",
                    conn.shown
                )));
            }
        }
    }

    /// The error for an `Error` frame from the server.
    pub fn refused(&self, code: ErrorCode, message: &str) -> ConnError {
        let hint = if code == ErrorCode::Auth && !self.session.has_secret() {
            " (the server requires a secret: -k FILE or RSB_SECRET_FILE)"
        } else {
            ""
        };
        ConnError(format!(
            "{}: {}{hint}",
            self.shown,
            escape(message.as_bytes())
        ))
    }

    /// The error for a session that broke (protocol error or EOF).
    pub fn broken(&self) -> ConnError {
        ConnError(format!(
            "{}: {}",
            self.shown,
            self.session
                .error()
                .map_or_else(|| "connection lost".to_string(), |e| e.to_string())
        ))
    }

    /// Sends queued frames; then, if nothing is queued and `body` is given,
    /// sends body bytes; then reads and parses frames. Waits for readiness
    /// (at most 200 ms, so callers can redraw progress) if nothing moved.
    /// Returns the body bytes sent.
    pub fn step(&mut self, mut body: Option<&mut BodySender>) -> Result<u64, ConnError> {
        let mut progress = self.flush()?;
        let mut sent = 0;
        if self.session.poll_transmit().is_empty() && self.writable {
            if let Some(tx) = body.as_deref_mut() {
                let p = tx
                    .pump(&self.sock, BUDGET)
                    .map_err(|e| ConnError(format!("{}: send: {}", self.shown, describe(&e))))?;
                sent = p.moved;
                if p.moved > 0 {
                    self.last_progress = Instant::now();
                }
                self.writable &= !p.would_block;
                progress |= p.moved > 0;
            }
        }
        if self.session.wants_body().is_none() && !self.session.is_closed() {
            progress |= self.read_frames()?;
        }
        if !progress && body.as_ref().is_none_or(|b| !b.is_done()) {
            self.wait(Duration::from_millis(200))?;
        }
        Ok(sent)
    }

    /// Receives body bytes of a restored file into `file` (or drops them).
    /// Returns the bytes moved; waits when nothing moved.
    pub fn receive(
        &mut self,
        recv: &mut BodyReceiver,
        file: Option<&OwnedFd>,
    ) -> Result<u64, ConnError> {
        let flushed = self.flush()?;
        let n = receive_step(
            recv,
            &mut self.inbuf,
            &self.sock,
            file,
            &mut self.pipe,
            &mut self.readable,
            BUDGET,
        )
        .map_err(|e| {
            if e.kind() == io::ErrorKind::UnexpectedEof {
                ConnError(format!("{}: connection closed by the server", self.shown))
            } else {
                ConnError(format!("{}: receive: {}", self.shown, describe(&e)))
            }
        })?;
        if n > 0 {
            self.last_progress = Instant::now();
        }
        if n == 0 && !flushed && !recv.is_done() {
            self.wait(Duration::from_millis(200))?;
        }
        Ok(n)
    }

    fn wait(&mut self, timeout: Duration) -> Result<(), ConnError> {
        if self.interrupted.load(Ordering::Relaxed) {
            return Err(ConnError("interrupted".into()));
        }
        if self.last_progress.elapsed() >= NO_PROGRESS_TIMEOUT {
            return Err(ConnError(format!(
                "{}: no progress for {} seconds: giving up",
                self.shown,
                NO_PROGRESS_TIMEOUT.as_secs()
            )));
        }
        match self.poll.poll(&mut self.events, Some(timeout)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(()),
            Err(e) => return Err(ConnError(format!("poll: {e}"))),
        }
        for ev in self.events.iter() {
            if ev.is_readable() || ev.is_read_closed() || ev.is_error() {
                self.readable = true;
            }
            if ev.is_writable() || ev.is_write_closed() || ev.is_error() {
                self.writable = true;
            }
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<bool, ConnError> {
        let mut wrote = false;
        while self.writable && !self.session.poll_transmit().is_empty() {
            match (&self.sock).write(self.session.poll_transmit()) {
                Ok(0) => return Err(ConnError(format!("{}: connection closed", self.shown))),
                Ok(n) => {
                    self.session.handle_sent(Instant::now(), n);
                    self.last_progress = Instant::now();
                    wrote = true;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.writable = false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // The server may have said why before closing: read that first.
                Err(e) => {
                    let _ = self.read_frames();
                    if self.session.error().is_some() {
                        return Err(self.broken());
                    }
                    return Err(ConnError(format!("{}: {}", self.shown, describe(&e))));
                }
            }
        }
        Ok(wrote)
    }

    /// Parses buffered frames, reading more when a frame is incomplete.
    fn read_frames(&mut self) -> Result<bool, ConnError> {
        let mut progress = false;
        // One read per call: the caller drains the events between calls, so
        // a server that floods answers cannot grow the event queue without
        // bound.
        let mut have_read = false;
        loop {
            let n = self.session.handle_input(Instant::now(), &self.inbuf);
            if n > 0 {
                self.inbuf.drain(..n);
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
            let len = self.inbuf.len();
            self.inbuf.resize(len + READ_CHUNK, 0);
            let r = (&self.sock).read(&mut self.inbuf[len..]);
            match r {
                Ok(0) => {
                    self.inbuf.truncate(len);
                    // Frames still buffered (an Error, say) come before the EOF.
                    let n = self.session.handle_input(Instant::now(), &self.inbuf);
                    self.inbuf.drain(..n);
                    self.session.handle_eof();
                    return Ok(true);
                }
                Ok(n) => {
                    self.inbuf.truncate(len + n);
                    self.last_progress = Instant::now();
                    progress = true;
                    have_read = true;
                }
                Err(e) => {
                    self.inbuf.truncate(len);
                    match e.kind() {
                        io::ErrorKind::WouldBlock => {
                            self.readable = false;
                            return Ok(progress);
                        }
                        io::ErrorKind::Interrupted => {}
                        _ => {
                            self.session.handle_eof();
                            return Err(ConnError(format!("{}: {}", self.shown, describe(&e))));
                        }
                    }
                }
            }
        }
    }
}
