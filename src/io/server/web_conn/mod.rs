//! One web connection: HTTP/1.1 on the server's loop, beside the backup
//! protocol. Its socket, its [`Transport`] (plain or TLS), the bytes read
//! and not yet parsed, the answer going out ([`Out`]), and the phase it is
//! in. [`WebConn::drive`] moves it as far as its socket allows within the
//! turn's budget: writing the answer, then reading and answering the next
//! request (pipelined requests wait in the buffer, answered in order).
//! Its child modules answer requests: [`answer`] (auth, routing, the
//! response head), [`files`] (downloads, ranges, tar), [`pages`] (the
//! pages' data from the store, the status and the plans).
//!
//! Every decision about HTTP is the pure [`crate::server::web`]'s; this
//! file does the I/O and keeps the bounds: a request head of at most
//! 16 KiB, a form body of at most [`MAX_FORM`], a head (or a TLS
//! handshake) that must arrive within [`HEAD_TIMEOUT`], an idle keep-alive connection closed after
//! [`KEEP_ALIVE`], and an answer nobody reads closed after the idle
//! timeout. An idle connection holds no buffer.

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use log::{debug, info};
use mio::net::TcpStream;
use mio::Registry;

mod answer;
mod body;
mod files;
mod pages;
mod tarball;
#[cfg(test)]
mod tool_tests;

pub(super) use body::Transport;
use body::{read_into, Drained, Got, Out, SendError};
use files::Pending;
pub(super) use files::{check_done, is_check, Checks, FileId};
pub(super) use pages::CachedHistory;
use tarball::TarStream;

use super::{Env, Expiry};
use crate::io::worker::{Done, Ticket};
use crate::server::web::request::{parse_head, Parsed, MAX_HEAD};

/// Longest form body taken (a plan is a few KiB).
pub(super) const MAX_FORM: usize = 64 * 1024;
/// A request's head must be in within this long of its first byte.
const HEAD_TIMEOUT: Duration = Duration::from_secs(10);
/// An idle keep-alive connection is closed after this long.
const KEEP_ALIVE: Duration = Duration::from_secs(60);
/// Bytes one connection may move per turn before others get theirs.
const BUDGET: u64 = 8 << 20;
/// Chunks a tar stream keeps queued ahead of the socket.
const TAR_AHEAD: usize = 8;
/// After its last answer, a connection reads (and drops) what the client
/// still sends for this long before it closes: closing a socket with
/// unread input resets it, and a reset can destroy the answer the client
/// has not read yet (a 413 to a body still arriving, pipelined requests
/// behind a `Connection: close`).
const LINGER: Duration = Duration::from_secs(2);
/// Bytes a lingering connection drops per loop turn.
const LINGER_BUDGET: usize = 256 * 1024;

/// One web connection (see the module docs).
pub(super) struct WebConn {
    pub(super) sock: TcpStream,
    pub(super) peer: SocketAddr,
    /// This connection, for worker results.
    pub(super) ticket: Ticket,
    /// The deadline it has in the loop's heap.
    pub(super) armed: Option<Instant>,
    transport: Transport,
    inbuf: Vec<u8>,
    out: Out,
    readable: bool,
    writable: bool,
    /// When the first byte of the request being read arrived.
    head_since: Option<Instant>,
    /// When bytes last moved either way.
    last_io: Instant,
    /// The answer going out is the last: close once it is out.
    close_after: bool,
    /// The request being answered is a HEAD: every answer to it, an
    /// error's too, is a head without its body.
    head_request: bool,
    /// A directory's tar stream still producing.
    tar: Option<Box<TarStream>>,
    /// A range answer waiting for a worker's check of the whole file.
    pending: Option<Box<Pending>>,
    /// Bytes of `out.sent` already counted in the status.
    counted: u64,
    /// How long an answer may wait for its reader.
    stall: Duration,
    /// Statuses answered since the last drive, for the status's counts.
    statuses: Vec<u16>,
    /// The last answer is out and the write side shut: until when input
    /// is read and dropped (see [`LINGER`]).
    lingering: Option<Instant>,
    /// `100 Continue` went out for the request whose body is awaited.
    continued: bool,
}

impl WebConn {
    /// A connection just accepted.
    pub(super) fn new(
        sock: TcpStream,
        peer: SocketAddr,
        ticket: Ticket,
        transport: Transport,
        stall: Duration,
        now: Instant,
    ) -> WebConn {
        WebConn {
            sock,
            peer,
            ticket,
            armed: None,
            transport,
            inbuf: Vec::new(),
            out: Out::default(),
            readable: true,
            writable: true,
            head_since: None,
            last_io: now,
            close_after: false,
            head_request: false,
            tar: None,
            pending: None,
            counted: 0,
            stall,
            statuses: Vec::new(),
            lingering: None,
            continued: false,
        }
    }

    /// True while an answer is under way (being written, produced or
    /// waiting for a worker).
    fn is_answering(&self) -> bool {
        !self.out.is_empty() || self.tar.is_some() || self.pending.is_some()
    }

    /// When the loop must look at it again.
    pub(super) fn deadline(&self) -> Option<Instant> {
        if let Some(t) = self.lingering {
            return Some(t);
        }
        // Writing, producing a tar, or waiting for a worker's check: each
        // has the stall deadline (a waiter that gives up leaves its check
        // to answer the others).
        if self.is_answering() {
            return self.last_io.checked_add(self.stall);
        }
        match self.head_since {
            Some(t) => t.checked_add(HEAD_TIMEOUT),
            None => self.last_io.checked_add(KEEP_ALIVE),
        }
    }

    /// Its deadline came due: a head too slow gets a 408, an idle or
    /// stalled connection is closed.
    pub(super) fn handle_deadline(&mut self, now: Instant) -> Expiry {
        match self.deadline() {
            Some(t) if t <= now => {}
            _ => return Expiry::NotYet,
        }
        if self.lingering.is_some() {
            return Expiry::Abandon;
        }
        if !self.is_answering() && self.head_since.is_some() {
            self.head_since = None;
            self.inbuf = Vec::new();
            self.head_request = false;
            self.error_answer(408, "the request head did not arrive in time");
            self.close_after = true;
            self.last_io = now;
            return Expiry::Fired;
        }
        Expiry::Abandon
    }

    /// Takes a readiness event.
    pub(super) fn handle_readiness(&mut self, readable: bool, writable: bool) {
        self.readable |= readable;
        self.writable |= writable;
    }

    /// A worker's result: the check of a file a range answer waits for.
    pub(super) fn handle_done(&mut self, _env: &Env, done: Done) {
        if let Done::Crc { result, .. } = done {
            if let Some(p) = self.pending.take() {
                self.finish_pending(*p, result);
            }
        }
    }

    /// Moves it on as far as the socket and the budget allow. `Ok(true)`:
    /// more to do next turn; `Err`: close it, for the reason given.
    pub(super) fn drive(&mut self, env: &Env, now: Instant) -> Result<bool, String> {
        let mut spent: u64 = 0;
        if let Some(t) = self.tar.as_mut() {
            t.new_turn();
        }
        let result = self.drive_inner(env, now, &mut spent);
        let sent = self.out.sent - self.counted;
        if sent > 0 || !self.statuses.is_empty() {
            self.counted = self.out.sent;
            let mut status = env.status.borrow_mut();
            status.counters.web_bytes_out += sent;
            for s in self.statuses.drain(..) {
                status.handle_http(s);
            }
        }
        result
    }

    fn drive_inner(&mut self, env: &Env, now: Instant, spent: &mut u64) -> Result<bool, String> {
        loop {
            let mut progress = false;
            if self.writable && !self.out.is_empty() {
                match self
                    .out
                    .drain(&self.sock, &mut self.transport, BUDGET - *spent)
                {
                    Ok((how, moved)) => {
                        *spent += moved;
                        if moved > 0 {
                            progress = true;
                            self.last_io = now;
                        }
                        match how {
                            Drained::Blocked => self.writable = false,
                            Drained::Budget => return Ok(true),
                            Drained::Empty => {}
                        }
                    }
                    Err(SendError::Io(e)) => {
                        return Err(format!("write: {}", crate::io::describe(&e)))
                    }
                    Err(SendError::Damaged(why)) => {
                        log::error!(
                            "{}: download cut off: the stored file is damaged: {why}",
                            self.peer
                        );
                        return Err("damaged file".into());
                    }
                }
            }
            if let Some(t) = self.tar.as_mut() {
                if self.out.len() < TAR_AHEAD {
                    if t.turn_over() {
                        // The turn's entries are made: more next turn.
                        return Ok(true);
                    }
                    let done = t.produce(&mut self.out, TAR_AHEAD);
                    progress = true;
                    if done {
                        self.tar = None;
                    }
                }
            }
            if !self.is_answering() {
                if self.close_after {
                    return self.linger(now);
                }
                progress |= self.next_request(env, now)?;
            }
            if self.wants_tls_flush() {
                progress |= self.flush_tls()?;
            }
            if !progress {
                return Ok(false);
            }
            if *spent >= BUDGET {
                return Ok(true);
            }
        }
    }

    /// The last answer is out: shuts the write side (TLS says
    /// close_notify first) and drops what the peer still sends until it
    /// closes or [`LINGER`] is over. `Err` ends the connection.
    fn linger(&mut self, now: Instant) -> Result<bool, String> {
        if self.lingering.is_none() {
            if let Transport::Tls(t) = &mut self.transport {
                t.send_close_notify();
                if self.wants_tls_flush() {
                    self.flush_tls()?;
                }
                if matches!(&self.transport, Transport::Tls(t) if t.wants_write()) {
                    // The alert waits for room: the next writable edge.
                    return Ok(false);
                }
            }
            let _ = self.sock.shutdown(std::net::Shutdown::Write);
            self.lingering = now.checked_add(LINGER);
            self.inbuf = Vec::new();
        }
        if self.lingering.is_some_and(|end| now >= end) {
            return Err("answered; closed".into());
        }
        // Bounded per turn: a peer that keeps sending must not hold the
        // loop for as long as it can fill the socket.
        let mut sink = [0u8; 4096];
        let mut dropped = 0usize;
        loop {
            if dropped >= LINGER_BUDGET {
                return Ok(true);
            }
            match io::Read::read(&mut &self.sock, &mut sink) {
                Ok(0) => return Err("answered; closed".into()),
                Ok(n) => dropped += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.readable = false;
                    return Ok(false);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return Err("answered; closed".into()),
            }
        }
    }

    /// Parses and answers the next request in the buffer, reading more
    /// when it is not all there. Returns whether anything happened.
    fn next_request(&mut self, env: &Env, now: Instant) -> Result<bool, String> {
        match parse_head(&self.inbuf) {
            Parsed::Complete { request, head_len } => {
                let body_len =
                    usize::try_from(request.content_length.unwrap_or(0)).unwrap_or(usize::MAX);
                if body_len > MAX_FORM {
                    self.inbuf = Vec::new();
                    self.error_answer(413, "the request body is too large");
                    self.close_after = true;
                    return Ok(true);
                }
                let total = head_len.saturating_add(body_len);
                if self.inbuf.len() < total {
                    if request.expect_continue && !self.continued {
                        // curl asks before sending a body over 1 KiB.
                        self.continued = true;
                        self.out
                            .push_bytes(b"HTTP/1.1 100 Continue\r\n\r\n".to_vec());
                        return Ok(true);
                    }
                    return self.read_more(MAX_HEAD + MAX_FORM, now);
                }
                self.continued = false;
                let body: Vec<u8> = self.inbuf.get(head_len..total).unwrap_or_default().to_vec();
                self.inbuf.drain(..total);
                if self.inbuf.is_empty() {
                    self.inbuf = Vec::new();
                    self.head_since = None;
                } else {
                    self.head_since = Some(now);
                }
                if !request.keep_alive {
                    self.close_after = true;
                }
                self.head_request = request.method == crate::server::web::request::Method::Head;
                self.answer(env, request, body, now);
                Ok(true)
            }
            Parsed::Partial => self.read_more(MAX_HEAD, now),
            Parsed::Bad(bad) => {
                self.inbuf = Vec::new();
                self.head_since = None;
                self.head_request = false;
                self.error_answer(bad.status, bad.reason);
                self.close_after = true;
                Ok(true)
            }
        }
    }

    /// Reads what the socket has, up to `max` buffered bytes.
    fn read_more(&mut self, max: usize, now: Instant) -> Result<bool, String> {
        if !self.readable {
            return Ok(false);
        }
        if self.inbuf.len() >= max {
            // A head that fills the bound without ending is refused by the
            // parser; a body beyond it by the length check: never here.
            return Ok(false);
        }
        match read_into(&self.sock, &mut self.transport, &mut self.inbuf, max) {
            Ok(Got::Closed) => Err(if self.inbuf.is_empty() {
                "closed by peer".into()
            } else {
                "closed by peer in the middle of a request".into()
            }),
            Ok(Got::Nothing) => {
                self.readable = false;
                if self.inbuf.is_empty() {
                    // A TLS handshake ended with no request yet: the
                    // connection is idle now, not in a head.
                    self.head_since = None;
                }
                Ok(self.wants_tls_flush())
            }
            Ok(Got::Handshake) => {
                // A handshake must end within the head timeout of its
                // first byte, like a head: one that stalls is answered
                // 408 and closed, not held as an idle connection.
                self.readable = false;
                if self.head_since.is_none() {
                    self.head_since = Some(now);
                }
                self.last_io = now;
                Ok(self.wants_tls_flush())
            }
            Ok(Got::Bytes(_)) => {
                if self.head_since.is_none() {
                    self.head_since = Some(now);
                }
                self.last_io = now;
                Ok(true)
            }
            Err(e) => Err(format!("read: {}", crate::io::describe(&e))),
        }
    }

    fn wants_tls_flush(&self) -> bool {
        matches!(&self.transport, Transport::Tls(t) if t.wants_write()) && self.writable
    }

    /// Writes what TLS has buffered (handshake records, alerts).
    fn flush_tls(&mut self) -> Result<bool, String> {
        let Transport::Tls(t) = &mut self.transport else {
            return Ok(false);
        };
        let mut s = &self.sock;
        match t.flush(&mut s) {
            Ok(true) => Ok(true),
            Ok(false) => {
                self.writable = false;
                Ok(false)
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                self.writable = false;
                Ok(false)
            }
            Err(e) => Err(format!("tls: {e}")),
        }
    }

    /// The server is stopping: nothing more is read; what is going out
    /// may finish within the loop's grace.
    pub(super) fn handle_shutdown(&mut self) {
        self.close_after = true;
        self.inbuf = Vec::new();
    }

    /// Deregisters it.
    pub(super) fn close(mut self, env: &Env, registry: &Registry, reason: &str) {
        if self.lingering.is_none() {
            if let Transport::Tls(t) = &mut self.transport {
                t.send_close_notify();
                let mut s = &self.sock;
                let _ = t.flush(&mut s);
            }
        }
        let _ = registry.deregister(&mut self.sock);
        let mut status = env.status.borrow_mut();
        status.counters.web_open = status.counters.web_open.saturating_sub(1);
        debug!("{}: web connection closed: {reason}", self.peer);
        if reason == "damaged file" {
            info!("{}: closed a download of a damaged file", self.peer);
        }
    }
}
