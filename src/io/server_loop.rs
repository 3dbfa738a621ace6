//! The server's event loop: one thread, one `mio::Poll`, the listening
//! socket, the signal pipe, and every connection in a `slab::Slab`. Each
//! connection pairs a socket with a pure [`ServerSession`]; this file feeds
//! the session bytes, carries out its [`Command`]s against the client's
//! namespace (through the store: [`Stager`], [`Namespace`], [`StoredFile`]),
//! and moves file bodies with splice and sendfile.
//!
//! Readiness is edge-triggered: a connection is registered once for reading
//! and writing, and the loop remembers in `readable`/`writable` that a socket
//! may still have data until a call returns `WouldBlock`. A connection that
//! uses up its per-wakeup budget is put on the `ready` list and driven again
//! on the next turn, after the others had theirs, so one fast client cannot
//! starve the rest and no edge is lost.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use log::{debug, error, info, warn};
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM, SIGXFSZ};
use signal_hook_mio::v1_0::Signals;
use slab::Slab;

use super::error::FsError;
use super::store::{CommitReport, Namespace, StageOptions, Stager, Store, StoredFile};
use super::transfer::{receive_step, BodyReceiver, BodySender, Pipe};
use super::worker::{Done, Job, Ticket, Workers};
use super::{kind_of, meta_of};
use crate::proto::{self, EntryKind, Meta, WirePath};
use crate::server::session::receive::{body_verdict, Staged, Verdict};
use crate::server::session::stream::{self, FilePlan, ResumePlan};
use crate::server::session::{Command, Completion, Received, ServerSession, SessionConfig};

const LISTENER: Token = Token(usize::MAX - 1);
const SIGNALS: Token = Token(usize::MAX - 2);
/// The workers' wake-up call.
const WAKER: Token = Token(usize::MAX - 3);
/// Threads that commit and verify off the loop.
const WORKERS: usize = 4;
/// A loop turn longer than this is logged: something blocked the loop.
const SLOW_TURN: Duration = Duration::from_millis(500);
/// Tells connections that reuse a slab key apart (see [`Ticket`]).
static GENERATION: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
/// Bytes one connection may move per turn before others get theirs.
const BUDGET: u64 = 8 << 20;
/// A connection yields after this long in one turn even within its byte
/// budget: writing to a file can block when the disk is slow (dirty-page
/// throttling), and bytes alone would not bound the others' wait.
const TURN_SLICE: Duration = Duration::from_millis(10);
/// Body bytes moved per step, between two looks at the clock.
const STEP_BYTES: u64 = 1 << 20;
/// Bytes read from a socket at a time for frames.
const READ_CHUNK: usize = 64 * 1024;
/// What one command or streamed entry counts against [`BUDGET`]: about
/// what moving that many bytes costs, so 512 of them make a turn.
const ENTRY_COST: u64 = 16 * 1024;
thread_local! {
    /// The loop's one read buffer (see `read_some`).
    static READ_BUF: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(vec![0; READ_CHUNK]);
}

/// Entries one `produce` call stats and queues at most.
const ENTRIES_PER_CALL: u64 = 256;
/// How long a closing connection may take to accept its error frame.
const CLOSE_GRACE: Duration = Duration::from_secs(5);
/// Output queued before the loop stops producing listing/restore frames.
const STREAM_HIGH_WATER: usize = 64 * 1024;
/// How long a shutdown waits for connections to take their error frame.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// What the server was told to do.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// The backup root.
    pub root: PathBuf,
    /// `--max-clients`.
    pub max_clients: usize,
    /// Settings for every session.
    pub session: SessionConfig,
}

/// A connection id: the slab key behind a mio token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ConnId(usize);

/// Counters for the log line of a commit or a connection.
#[derive(Debug, Default, Clone, Copy)]
struct Stats {
    entries: u64,
    bytes: u64,
    failed: u64,
}

/// A listing being sent: the names still to stat.
struct ListStream {
    id: u32,
    dir: WirePath,
    names: VecDeque<Vec<u8>>,
}

/// A restore being sent: a depth-first walk with one name list per level.
struct RestoreStream {
    id: u32,
    base: WirePath,
    started: bool,
    /// Directories being sent: path, names still to send, and the
    /// directory's own metadata, sent after its contents.
    stack: Vec<(WirePath, VecDeque<Vec<u8>>, Meta)>,
    stats: Stats,
}

enum Stream {
    List(ListStream),
    Restore(RestoreStream),
}

/// A large restored file offered to the client, waiting for its `Want`.
struct Offered {
    file: StoredFile,
    rel: WirePath,
}

/// What a restored entry leaves for the loop to do.
enum Pending {
    /// Send this body now.
    Send(BodySender),
    /// Wait for the client's `Want`, then send from its offset.
    Offer(Offered),
}

struct Conn {
    sock: TcpStream,
    peer: SocketAddr,
    /// This connection, for results coming back from the workers.
    ticket: Ticket,
    /// A job of this connection's is with the workers: nothing else is
    /// read or done for it until the result is back.
    waiting: bool,
    /// Tells a verify under way that this connection closed.
    cancel: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
    session: ServerSession,
    inbuf: Vec<u8>,
    store: Option<Stager>,
    recv: Option<BodyReceiver>,
    pipe: Option<Pipe>,
    stream: Option<Stream>,
    send: Option<(u32, BodySender)>,
    offered: Option<Offered>,
    /// A restore resuming an offered file at this offset, waiting for the
    /// crc32c of the bytes before it from a worker.
    resuming: Option<(u32, Offered, u64)>,
    readable: bool,
    writable: bool,
    /// When the session started closing; the connection is dropped
    /// [`CLOSE_GRACE`] later even if its peer never reads the error.
    closing_since: Option<Instant>,
    batch: Stats,
    total: Stats,
}

impl Conn {
    fn label(&self) -> String {
        match self.session.name() {
            Some(n) => format!("{n} ({})", self.peer),
            None => self.peer.to_string(),
        }
    }
}

/// Creates the listening socket (dual-stack for `::`), so the caller can
/// report the real address before [`run`] starts.
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

/// Installs the handlers for SIGINT, SIGTERM, SIGHUP and SIGXFSZ. Done
/// before the server says it is listening, so that no signal finds the
/// default action: SIGHUP would kill the process, and so would SIGXFSZ
/// when a file reaches RLIMIT_FSIZE, where a write failing with EFBIG
/// (reported to that one client) is what is wanted.
pub fn signals() -> Result<Signals, String> {
    Signals::new([SIGINT, SIGTERM, SIGHUP, SIGXFSZ]).map_err(|e| format!("signals: {e}"))
}

/// Opens (creating it if missing) the backup root.
pub fn open_root(config: &ServerConfig) -> Result<Store, String> {
    Store::open(&config.root).map_err(|e| e.to_string())
}

/// Runs the server until SIGINT or SIGTERM. Errors are fatal start-up or
/// loop failures; a client's misbehaviour never ends the loop.
pub fn run(
    config: ServerConfig,
    root: Store,
    listener: std::net::TcpListener,
    mut signals: Signals,
) -> Result<(), String> {
    let mut poll = Poll::new().map_err(|e| format!("poll: {e}"))?;
    let mut listener = TcpListener::from_std(listener);
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)
        .map_err(|e| format!("register listener: {e}"))?;
    poll.registry()
        .register(&mut signals, SIGNALS, Interest::READABLE)
        .map_err(|e| format!("register signals: {e}"))?;

    let waker = mio::Waker::new(poll.registry(), WAKER).map_err(|e| format!("waker: {e}"))?;
    let workers = Workers::start(WORKERS, waker).map_err(|e| format!("workers: {e}"))?;
    let result = serve(
        &config,
        &root,
        &mut poll,
        &mut listener,
        &mut signals,
        &workers,
    );
    // A commit under way is finished, never cut off.
    workers.shutdown();
    result
}

/// The loop itself (see [`run`]).
fn serve(
    config: &ServerConfig,
    root: &Store,
    poll: &mut Poll,
    listener: &mut TcpListener,
    signals: &mut Signals,
    workers: &Workers,
) -> Result<(), String> {
    let mut conns: Slab<Conn> = Slab::new();
    let mut events = Events::with_capacity(1024);
    let mut longest_turn = Duration::ZERO;
    let mut ready: VecDeque<ConnId> = VecDeque::new();
    let mut shutdown_at: Option<Instant> = None;
    // Set when accept failed for want of file descriptors: the listener's
    // edge is spent, so the loop must come back to it by itself.
    let mut accept_retry_at: Option<Instant> = None;

    loop {
        let now = Instant::now();
        let timeout = if !ready.is_empty() {
            Some(Duration::ZERO)
        } else {
            let mut next = shutdown_at.map(|t| t + SHUTDOWN_GRACE);
            let mut earliest = |t: Instant| next = Some(next.map_or(t, |n: Instant| n.min(t)));
            if let Some(t) = accept_retry_at {
                earliest(t);
            }
            for (_, c) in conns.iter() {
                if c.waiting {
                    continue;
                }
                if let Some(t) = c.session.poll_timeout() {
                    earliest(t);
                }
                if let Some(t) = c.closing_since {
                    earliest(t + CLOSE_GRACE);
                }
            }
            next.map(|t| t.saturating_duration_since(now))
        };
        if let Err(e) = poll.poll(&mut events, timeout) {
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(format!("poll: {e}"));
        }
        let now = Instant::now();
        let mut touched: Vec<ConnId> = std::mem::take(&mut ready).into_iter().collect();
        for ev in events.iter() {
            match ev.token() {
                LISTENER => {
                    if shutdown_at.is_none() {
                        accept_retry_at =
                            accept_all(listener, poll, &mut conns, config, &mut touched, now);
                    }
                }
                WAKER => {
                    while let Some(done) = workers.poll_done() {
                        if let Some(id) = finish_job(&mut conns, done, now) {
                            touched.push(id);
                        }
                    }
                }
                SIGNALS => {
                    for sig in signals.pending() {
                        if sig == SIGHUP || sig == SIGXFSZ {
                            debug!("signal {sig} ignored");
                            continue;
                        }
                        if shutdown_at.is_none() {
                            info!(
                                "signal {sig}: shutting down ({} connections open)",
                                conns.len()
                            );
                            shutdown_at = Some(now);
                            let _ = poll.registry().deregister(listener);
                            for (key, c) in conns.iter_mut() {
                                c.session.handle_shutdown();
                                touched.push(ConnId(key));
                            }
                        }
                    }
                }
                Token(key) => {
                    if let Some(c) = conns.get_mut(key) {
                        if ev.is_readable() || ev.is_read_closed() || ev.is_error() {
                            c.readable = true;
                        }
                        if ev.is_writable() || ev.is_write_closed() || ev.is_error() {
                            c.writable = true;
                        }
                        touched.push(ConnId(key));
                    }
                }
            }
        }
        if shutdown_at.is_none() && accept_retry_at.is_some_and(|t| t <= now) {
            accept_retry_at = accept_all(listener, poll, &mut conns, config, &mut touched, now);
        }
        // Timers: idle connections, handshake deadlines, and connections
        // whose peer does not take their last error frame.
        let mut abandoned = Vec::new();
        for (key, c) in conns.iter_mut() {
            // A connection waiting for the disk is not idle.
            if c.waiting {
                continue;
            }
            if c.closing_since.is_some_and(|t| t + CLOSE_GRACE <= now) {
                abandoned.push(ConnId(key));
            } else if c.session.poll_timeout().is_some_and(|t| t <= now) {
                c.session.handle_timeout(now);
                touched.push(ConnId(key));
            }
        }
        for id in abandoned {
            close(poll, &mut conns, id, "peer does not read");
        }
        touched.sort_by_key(|c| c.0);
        touched.dedup();
        for id in touched {
            let Some(c) = conns.get_mut(id.0) else {
                continue;
            };
            match drive(c, root, config.session.read_only, workers, now) {
                Ok(true) => ready.push_back(id),
                Ok(false) => {}
                Err(reason) => close(poll, &mut conns, id, &reason),
            }
        }
        let turn = now.elapsed();
        if turn > longest_turn {
            longest_turn = turn;
            debug!(
                "longest loop turn so far: {:.1} ms",
                turn.as_secs_f64() * 1e3
            );
        }
        if turn > SLOW_TURN {
            warn!(
                "a loop turn took {:.0} ms: other clients waited that long",
                turn.as_secs_f64() * 1e3
            );
        }
        if let Some(t) = shutdown_at {
            if conns.is_empty() || now >= t + SHUTDOWN_GRACE {
                for key in conns.iter().map(|(k, _)| k).collect::<Vec<_>>() {
                    close(poll, &mut conns, ConnId(key), "server shutting down");
                }
                info!(
                    "stopped (longest loop turn {:.1} ms)",
                    longest_turn.as_secs_f64() * 1e3
                );
                return Ok(());
            }
        }
    }
}

fn accept_all(
    listener: &TcpListener,
    poll: &Poll,
    conns: &mut Slab<Conn>,
    config: &ServerConfig,
    touched: &mut Vec<ConnId>,
    now: Instant,
) -> Option<Instant> {
    loop {
        let (mut sock, peer) = match listener.accept() {
            Ok(x) => x,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return None,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                // EMFILE and friends: log loudly and come back shortly; the
                // pending connections will not raise another edge.
                error!("accept: {e}");
                return Some(now + Duration::from_millis(100));
            }
        };
        let _ = sock.set_nodelay(true);
        if conns.len() >= config.max_clients {
            let mut s = ServerSession::busy(config.session.clone(), now, conns.len());
            let _ = (&sock).write(s.poll_transmit());
            s.consume_transmit(usize::MAX);
            warn!(
                "{peer}: refused: server busy ({} clients connected)",
                conns.len()
            );
            continue;
        }
        let entry = conns.vacant_entry();
        let key = entry.key();
        if let Err(e) = poll.registry().register(
            &mut sock,
            Token(key),
            Interest::READABLE | Interest::WRITABLE,
        ) {
            error!("{peer}: register: {e}");
            continue;
        }
        // Each connection's challenge; only drawn when it will be used.
        let nonce = if config.session.secrets.is_some() {
            match super::random_bytes() {
                Ok(n) => n,
                Err(e) => {
                    error!("{peer}: getrandom: {e}");
                    continue;
                }
            }
        } else {
            [0; proto::NONCE_LEN]
        };
        debug!("{peer}: connected");
        let generation = GENERATION.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        entry.insert(Conn {
            sock,
            peer,
            ticket: Ticket { key, generation },
            waiting: false,
            cancel: None,
            session: ServerSession::new(config.session.clone(), now, nonce),
            inbuf: Vec::new(),
            store: None,
            recv: None,
            pipe: None,
            stream: None,
            send: None,
            offered: None,
            resuming: None,
            readable: true,
            writable: true,
            closing_since: None,
            batch: Stats::default(),
            total: Stats::default(),
        });
        touched.push(ConnId(key));
    }
}

fn close(poll: &Poll, conns: &mut Slab<Conn>, id: ConnId, reason: &str) {
    let Some(mut c) = conns.try_remove(id.0) else {
        return;
    };
    let _ = poll.registry().deregister(&mut c.sock);
    if let Some(s) = c.store.as_mut() {
        s.abort();
    }
    if let Some(cancel) = c.cancel.take() {
        cancel.store(true, std::sync::atomic::Ordering::Relaxed);
    }
    let t = c.total;
    if let Some((name, why)) = c.session.auth_failure() {
        warn!("{}: authentication failed for {name} ({why})", c.peer);
    } else if c.session.name().is_some() {
        info!(
            "{}: disconnected: {reason} ({} entries, {} bytes, {} failed)",
            c.label(),
            t.entries,
            t.bytes,
            t.failed
        );
    } else {
        debug!("{}: disconnected: {reason}", c.label());
    }
}

/// Drives one connection as far as its sockets allow, within the budget.
/// `Ok(true)`: more work is ready (budget used up). `Err`: close it.
fn drive(
    c: &mut Conn,
    root: &Store,
    read_only: bool,
    workers: &Workers,
    now: Instant,
) -> Result<bool, String> {
    // Work done this turn: body bytes moved, plus a charge per command and
    // per streamed entry, so that metadata-only work yields too.
    let mut spent: u64 = 0;
    let started = Instant::now();
    loop {
        let mut progress = false;
        if c.session.is_closing() {
            c.closing_since.get_or_insert(now);
            c.stream = None;
            // The error frame can only go out at a frame boundary; in the
            // middle of a body there is nothing to do but close.
            if c.send.is_some() {
                return Err(c.session.error().unwrap_or("closed").to_string());
            }
        }
        if flush(c)? {
            progress = true;
            c.session.handle_activity(now);
        }
        if c.session.poll_transmit().is_empty() && c.writable {
            if let Some((id, tx)) = c.send.as_mut() {
                let p = tx
                    .pump(&c.sock, BUDGET.saturating_sub(spent).min(STEP_BYTES))
                    .map_err(|e| format!("send: {e}"))?;
                spent += p.moved;
                if p.moved > 0 {
                    c.session.handle_activity(now);
                }
                c.writable &= !p.would_block;
                progress |= p.moved > 0;
                if tx.is_done() {
                    let (crc, ok) = tx.finish();
                    if let Some((recorded, read)) = tx.damage() {
                        warn!(
                            "{}: restore: a stored file no longer matches its checksum (crc32c {recorded:08x} recorded, {read:08x} read): not sent as good; verify names it",
                            c.session.name().unwrap_or("?")
                        );
                    }
                    if let Some(Stream::Restore(r)) = c.stream.as_mut() {
                        r.stats.bytes += tx.sent();
                    }
                    c.session
                        .handle_completion(Completion::FileSent { id: *id, crc, ok });
                    c.send = None;
                    progress = true;
                }
            }
        }
        if c.send.is_none()
            && c.offered.is_none()
            && !c.waiting
            && c.stream.is_some()
            && c.session.poll_transmit().len() < STREAM_HIGH_WATER
        {
            let entries = produce(c);
            spent += entries * ENTRY_COST;
            progress |= entries > 0;
        }
        if c.session.is_closing() && c.session.poll_transmit().is_empty() {
            return Err(c.session.error().unwrap_or("closed").to_string());
        }
        if !c.waiting {
            // Commands that waited behind a job go first: a file's
            // BeginFile must run before its body is received.
            let cost = run_commands(c, root, read_only, workers);
            progress |= cost > 0;
            spent += cost;
        }
        if c.waiting {
            // Only output moves until the workers are done.
        } else if let Some(size) = c.session.wants_body() {
            progress |= receive_body(c, size, now, &mut spent)?;
        } else if c.session.wants_input() {
            let n = c.session.handle_input(now, &c.inbuf);
            if n > 0 {
                c.inbuf.drain(..n);
                progress = true;
            }
            // A malformed frame consumes nothing but queues an error frame
            // that must still go out (regression: the connection hung).
            progress |= c.session.is_closing();
            spent += run_commands(c, root, read_only, workers);
            if n == 0 && !c.waiting && c.session.wants_input() && c.readable {
                progress |= read_some(c)?;
            }
        }
        if c.inbuf.is_empty() && c.inbuf.capacity() > 0 {
            c.inbuf = Vec::new();
        }
        if !progress {
            return Ok(false);
        }
        if spent >= BUDGET || started.elapsed() >= TURN_SLICE {
            return Ok(true);
        }
    }
}

/// Writes queued frames. Returns whether anything was written.
fn flush(c: &mut Conn) -> Result<bool, String> {
    let mut wrote = false;
    while c.writable && !c.session.poll_transmit().is_empty() {
        match (&c.sock).write(c.session.poll_transmit()) {
            Ok(0) => return Err("connection closed".into()),
            Ok(n) => {
                c.session.consume_transmit(n);
                wrote = true;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => c.writable = false,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("write: {e}")),
        }
    }
    Ok(wrote)
}

/// Reads frame bytes. `Err` on EOF or a socket error.
fn read_some(c: &mut Conn) -> Result<bool, String> {
    if c.inbuf.len() >= proto::MAX_PAYLOAD as usize + proto::HEADER_LEN + READ_CHUNK {
        return Ok(false);
    }
    // Read into one buffer shared by all connections and keep only what
    // is left over: an idle connection then holds no read buffer at all.
    READ_BUF.with(|buf| {
        let mut buf = buf.borrow_mut();
        match (&c.sock).read(&mut buf[..]) {
            Ok(0) => Err(if c.session.name().is_some() {
                "closed by client".into()
            } else {
                "closed before hello".into()
            }),
            Ok(n) => {
                c.inbuf.extend_from_slice(&buf[..n]);
                Ok(true)
            }
            Err(e) => match e.kind() {
                io::ErrorKind::WouldBlock => {
                    c.readable = false;
                    Ok(false)
                }
                io::ErrorKind::Interrupted => Ok(true),
                _ => Err(format!("read: {}", super::describe(&e))),
            },
        }
    })
}

fn receive_body(c: &mut Conn, size: u64, now: Instant, moved: &mut u64) -> Result<bool, String> {
    let incoming = c.store.as_mut().and_then(|s| s.incoming());
    // A resumed body continues the kept bytes: at their end, with their crc.
    let (offset, crc) = incoming.as_ref().map_or((0, 0), |i| (i.offset, i.crc));
    let recv = c
        .recv
        .get_or_insert_with(|| BodyReceiver::at(size, offset, crc));
    let file = incoming.map(|i| &i.file);
    let n = receive_step(
        recv,
        &mut c.inbuf,
        &c.sock,
        file,
        &mut c.pipe,
        &mut c.readable,
        BUDGET.saturating_sub(*moved).min(STEP_BYTES),
    )
    .map_err(|e| format!("receive: {e}"))?;
    *moved += n;
    if n > 0 {
        c.session.handle_activity(now);
    }
    if recv.is_done() {
        if let Some(mut r) = c.recv.take() {
            c.batch.bytes += size;
            c.session
                .handle_completion(Completion::BodyReceived(Received {
                    crc: r.crc(),
                    write_error: r.take_error().map(|e| super::describe(&e)),
                }));
        }
        return Ok(true);
    }
    Ok(n > 0)
}

/// The message a client sees for a failed operation: the operation and the
/// cause, without the server's own paths.
fn client_message(e: &FsError) -> String {
    format!("{}: {}", e.op, super::describe(&e.error))
}

/// Carries out the session's commands; returns their cost against the
/// turn's budget (a commit, which syncs the file system, uses it all).
fn run_commands(c: &mut Conn, root: &Store, read_only: bool, workers: &Workers) -> u64 {
    let mut cost = 0;
    // After a job goes to the workers, the commands behind it wait for it.
    while !c.waiting {
        let Some(cmd) = c.session.poll_command() else {
            break;
        };
        cost += ENTRY_COST;
        match cmd {
            Command::OpenNamespace { name } => {
                // A read-only server creates nothing, not even a namespace.
                let ns = if read_only {
                    root.existing_namespace(&name)
                } else {
                    root.namespace(&name)
                };
                match ns {
                    Ok(ns) => {
                        info!("{}: client {name} connected", c.peer);
                        // Temporary files a killed server left in this
                        // namespace go, in the background, once per run.
                        if !read_only {
                            if let Ok(tree) = ns.try_clone() {
                                workers.sweep_once(&name, tree);
                            }
                        }
                        let opts = StageOptions {
                            keep_partials: true,
                            record_checksums: true,
                            defer_prefix_crc: true,
                            ..StageOptions::default()
                        };
                        c.store = Some(Stager::new(ns, opts));
                    }
                    Err(e) if read_only && e.raw_os_error() == Some(nix::libc::ENOENT) => {
                        info!("{}: client {name} connected (nothing stored yet)", c.peer);
                    }
                    Err(e) => {
                        error!("{}: namespace {name}: {e}", c.peer);
                        c.session.handle_completion(Completion::NamespaceFailed {
                            message: format!("cannot open namespace: {}", client_message(&e)),
                        });
                    }
                }
            }
            Command::Abort => {
                if let Some(s) = c.store.as_mut() {
                    s.abort();
                }
            }
            Command::SendFrom { id, offset } => {
                let Some(o) = c.offered.take() else { continue };
                let len = match stream::plan_resume(offset) {
                    ResumePlan::FromStart => {
                        start_send(c, id, o, 0, Ok(0));
                        continue;
                    }
                    ResumePlan::ReadKept { len } => len,
                };
                // The bytes the client holds are read once for the crc32c,
                // on a worker: they can be gigabytes.
                let job = o.file.try_clone().map(|file| Job::Crc {
                    ticket: c.ticket,
                    file,
                    len,
                });
                match job.map(|j| workers.submit(j)) {
                    Ok(Ok(())) => {
                        c.resuming = Some((id, o, offset));
                        c.waiting = true;
                    }
                    Ok(Err(_)) => start_send(
                        c,
                        id,
                        o,
                        offset,
                        Err(io::Error::other("the server is stopping")),
                    ),
                    Err(e) => start_send(c, id, o, offset, Err(e.error)),
                }
            }
            cmd @ Command::BeginFile { .. } => {
                dispatch(c, cmd);
                defer_prefix_crc(c, workers);
            }
            Command::Commit { id } => {
                // A 1 MiB pipe per idle connection would pin memory and use
                // up the per-user pipe quota with many clients: it lives for
                // one batch of bodies.
                c.pipe = None;
                let Some(store) = c.store.take() else {
                    answer_empty(cmd, &mut c.session);
                    continue;
                };
                debug!("{}: committing {} entries", c.label(), store.pending());
                let job = Job::Commit {
                    ticket: c.ticket,
                    id,
                    store: Box::new(store),
                };
                match workers.submit(job) {
                    Ok(()) => c.waiting = true,
                    Err(Job::Commit { mut store, .. }) => {
                        // No worker left (cannot happen while the loop
                        // runs): commit here rather than lose the batch.
                        let report = store.commit();
                        c.store = Some(*store);
                        committed(c, id, report);
                    }
                    Err(_) => {}
                }
            }
            Command::Verify { id, path } => {
                let Some(store) = c.store.as_ref() else {
                    answer_empty(Command::Verify { id, path }, &mut c.session);
                    continue;
                };
                info!("{}: verify {path}", c.label());
                let tree = match store.tree().try_clone() {
                    Ok(t) => t,
                    Err(e) => {
                        c.session.handle_completion(Completion::Failed {
                            id,
                            path,
                            message: client_message(&e),
                        });
                        c.session.handle_completion(Completion::Verified {
                            id,
                            counts: Default::default(),
                        });
                        continue;
                    }
                };
                let cancel = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
                c.cancel = Some(cancel.clone());
                let job = Job::Verify {
                    ticket: c.ticket,
                    id,
                    tree,
                    path,
                    cancel,
                };
                if workers.submit(job).is_ok() {
                    c.waiting = true;
                } else {
                    c.session.handle_completion(Completion::Verified {
                        id,
                        counts: Default::default(),
                    });
                }
            }
            cmd => dispatch(c, cmd),
        }
    }
    cost
}

fn dispatch(c: &mut Conn, cmd: Command) {
    match c.store.as_mut() {
        Some(store) => execute(
            cmd,
            store,
            &mut c.session,
            &mut c.stream,
            &mut c.batch,
            &c.peer,
        ),
        None => answer_empty(cmd, &mut c.session),
    }
}

/// Answers for a namespace that does not exist on a read-only server: it
/// holds nothing. (Writes never get here: the session refuses them.)
fn answer_empty(cmd: Command, session: &mut ServerSession) {
    match cmd {
        // Listing the empty root is an empty listing.
        Command::List { id, path } if path.is_root() => {
            session.handle_completion(Completion::Done { id })
        }
        Command::List { id, path } | Command::Restore { id, path } => {
            session.handle_completion(Completion::Failed {
                id,
                path,
                message: "not on the server".into(),
            });
            session.handle_completion(Completion::Done { id });
        }
        Command::Commit { id } => session.handle_completion(Completion::Committed { id }),
        Command::Verify { id, .. } => session.handle_completion(Completion::Verified {
            id,
            counts: Default::default(),
        }),
        Command::Check { id, entries } => session.handle_completion(Completion::Checked {
            id,
            bits: vec![0xff; entries.len().div_ceil(8)],
            resume: Vec::new(),
        }),
        _ => {}
    }
}

/// Takes a result from the workers back to its connection; returns the
/// connection to drive, if it is still there.
fn finish_job(conns: &mut Slab<Conn>, done: Done, now: Instant) -> Option<ConnId> {
    let ticket = match &done {
        Done::Committed { ticket, .. }
        | Done::Verifying { ticket, .. }
        | Done::Crc { ticket, .. } => *ticket,
    };
    let c = conns.get_mut(ticket.key).filter(|c| c.ticket == ticket)?;
    // The time spent waiting for the disk is not idle time (regression: a
    // 40 s commit under -t 30 was answered, then timed out at once).
    c.session.handle_activity(now);
    match done {
        Done::Committed {
            id,
            store,
            report,
            elapsed,
            ..
        } => {
            debug!(
                "{}: commit took {:.1} ms",
                c.label(),
                elapsed.as_secs_f64() * 1e3
            );
            c.store = Some(*store);
            c.waiting = false;
            committed(c, id, report);
        }
        Done::Crc { result, .. } => {
            c.waiting = false;
            prefix_crc_done(c, result);
        }
        Done::Verifying {
            id,
            damaged,
            counts,
            finished,
            ..
        } => {
            for (path, why) in damaged {
                warn!("{}: verify: {}: {why}", c.label(), path);
                c.session.handle_completion(Completion::Failed {
                    id,
                    path,
                    message: why,
                });
            }
            if !finished {
                c.session.handle_completion(Completion::VerifyProgress {
                    id,
                    files: counts.files,
                    bytes: counts.bytes,
                });
            }
            if finished {
                info!(
                    "{}: verified {} files, {} bytes: {} damaged, {} without a checksum",
                    c.label(),
                    counts.files,
                    counts.bytes,
                    counts.damaged,
                    counts.unchecked
                );
                c.session
                    .handle_completion(Completion::Verified { id, counts });
                c.waiting = false;
            }
        }
    }
    Some(ConnId(ticket.key))
}

/// Starts sending the offered file `o` from `offset`, the bytes before
/// it having crc32c `prefix` (or failed to be read).
fn start_send(c: &mut Conn, id: u32, o: Offered, offset: u64, prefix: io::Result<u32>) {
    let (meta, size, shown) = (o.file.meta(), o.file.size(), o.file.shown().to_string());
    match prefix.and_then(|crc| o.file.sender(offset, crc).map_err(|e| e.error)) {
        Ok(tx) => {
            if offset > 0 {
                debug!(
                    "{}: resuming restore of {shown} at byte {offset}",
                    c.label(),
                );
            }
            c.session.handle_completion(Completion::Resumed {
                id,
                path: o.rel,
                meta,
                size,
                offset,
            });
            c.send = Some((id, tx));
        }
        Err(e) => {
            warn!("{}: {shown}: {}", c.label(), super::describe(&e));
            c.session.handle_completion(Completion::Failed {
                id,
                path: o.rel,
                message: format!("read: {}", super::describe(&e)),
            });
        }
    }
}

/// A resumed backup's kept bytes are read for their crc32c on a worker;
/// the body waits (the connection reads nothing) until that is done.
fn defer_prefix_crc(c: &mut Conn, workers: &Workers) {
    let Some(store) = c.store.as_mut() else {
        return;
    };
    let Some(inc) = store.incoming().filter(|i| i.prefix_pending) else {
        return;
    };
    let (id, path, len) = (inc.id, inc.path.clone(), inc.offset);
    let job = inc.kept().map(|file| Job::Crc {
        ticket: c.ticket,
        file,
        len,
    });
    match job.map(|j| workers.submit(j)) {
        Ok(Ok(())) => c.waiting = true,
        Ok(Err(_)) | Err(_) => {
            // Keep the partial: a later transfer can still resume it.
            store.abort_file();
            c.batch.failed += 1;
            c.session.handle_completion(Completion::Failed {
                id,
                path,
                message: "resume: cannot read the kept part".into(),
            });
        }
    }
}

/// The crc32c of a resumed transfer's kept bytes is back.
fn prefix_crc_done(c: &mut Conn, result: io::Result<u32>) {
    if let Some((id, o, offset)) = c.resuming.take() {
        start_send(c, id, o, offset, result);
        return;
    }
    let who = c.label();
    let Some(store) = c.store.as_mut() else {
        return;
    };
    let Some(inc) = store.incoming() else {
        return;
    };
    match result {
        Ok(crc) => {
            inc.crc = crc;
            inc.prefix_pending = false;
        }
        Err(e) => {
            let (id, path) = (inc.id, inc.path.clone());
            warn!("{who}: {path}: resume: {}", super::describe(&e));
            store.abort_file();
            c.batch.failed += 1;
            c.session.handle_completion(Completion::Failed {
                id,
                path,
                message: format!("resume: {}", super::describe(&e)),
            });
        }
    }
}

/// Reports a finished commit to the client and the log.
fn committed(c: &mut Conn, id: u32, report: CommitReport) {
    let who = c.label();
    for f in report.failures {
        error!("{who}: commit: {}", f.error);
        c.batch.failed += 1;
        c.session.handle_completion(Completion::Failed {
            id: f.id,
            path: f.path,
            message: client_message(&f.error),
        });
    }
    let batch = std::mem::take(&mut c.batch);
    info!(
        "{who}: backup committed: {} entries, {} bytes, {} failed",
        batch.entries, batch.bytes, batch.failed
    );
    c.total.entries += batch.entries;
    c.total.bytes += batch.bytes;
    c.total.failed += batch.failed;
    c.session.handle_completion(Completion::Committed { id });
}

fn execute(
    cmd: Command,
    store: &mut Stager,
    session: &mut ServerSession,
    stream: &mut Option<Stream>,
    batch: &mut Stats,
    peer: &SocketAddr,
) {
    let who = session.name().unwrap_or("?").to_string();
    let fail =
        |session: &mut ServerSession, id: u32, path: WirePath, msg: String, batch: &mut Stats| {
            batch.failed += 1;
            session.handle_completion(Completion::Failed {
                id,
                path,
                message: msg,
            });
        };
    match cmd {
        Command::Mkdir { id, path, meta } => {
            batch.entries += 1;
            if let Err(e) = store.mkdir(&path, meta) {
                warn!("{who}: {e}");
                fail(session, id, path, client_message(&e), batch);
            }
        }
        Command::Symlink {
            id,
            path,
            target,
            meta,
        } => {
            batch.entries += 1;
            if let Err(e) = store.symlink(id, &path, &target, meta) {
                warn!("{who}: {e}");
                fail(session, id, path, client_message(&e), batch);
            }
        }
        Command::BeginFile {
            id,
            path,
            meta,
            size,
            offset,
        } => {
            batch.entries += 1;
            let res = if offset > 0 {
                info!("{who}: {path}: resuming at byte {offset} of {size}");
                store.resume_file(id, &path, meta, size, offset).map(|_| ())
            } else {
                store.begin_file(id, &path, meta, size).map(|_| ())
            };
            if let Err(e) = res {
                warn!("{who}: {e}");
                fail(session, id, path, client_message(&e), batch);
            }
        }
        Command::EndFile {
            id,
            path,
            crc,
            ok,
            received,
        } => {
            let Some(staged) = store.incoming().map(|i| Staged {
                size: i.size,
                offset: i.offset,
                kept_crc: i.crc,
            }) else {
                // BeginFile failed and was reported already.
                return;
            };
            match body_verdict(crc, ok, received, staged) {
                Verdict::Discard(msg) => {
                    store.abort_file();
                    warn!("{who}: {path}: {msg}");
                    fail(session, id, path, msg, batch);
                }
                Verdict::Keep => {
                    if let Err(e) = store.finish_file(crc) {
                        warn!("{who}: {e}");
                        fail(session, id, path, client_message(&e), batch);
                    }
                }
            }
        }
        Command::List { id, path } => {
            info!("{who}: ls {path}");
            match store.tree().lstat(&path) {
                Ok(st) if kind_of(&st) == Some(EntryKind::Dir) => {
                    match store.tree().read_dir(&path) {
                        Ok(names) => {
                            *stream = Some(Stream::List(ListStream {
                                id,
                                dir: path,
                                names: names.into(),
                            }))
                        }
                        Err(e) => {
                            fail(session, id, path, client_message(&e), batch);
                            session.handle_completion(Completion::Done { id });
                        }
                    }
                }
                Ok(st) => {
                    match store.tree().list_item(&path, b"", &st) {
                        Ok(item) => session.handle_completion(Completion::Listed { id, item }),
                        Err(e) => fail(session, id, path, client_message(&e), batch),
                    }
                    session.handle_completion(Completion::Done { id });
                }
                Err(e) => {
                    fail(session, id, path, cause(&e), batch);
                    session.handle_completion(Completion::Done { id });
                }
            }
        }
        Command::Restore { id, path } => {
            info!("{who}: restore {path} (from {peer})");
            *stream = Some(Stream::Restore(RestoreStream {
                id,
                base: path,
                started: false,
                stack: Vec::new(),
                stats: Stats::default(),
            }));
        }
        Command::Check { id, entries } => {
            let checked = store.check(&entries);
            let unchanged = entries.len() - checked.need.count();
            debug!(
                "{who}: manifest of {} entries, {unchanged} unchanged",
                entries.len()
            );
            session.handle_completion(Completion::Checked {
                id,
                bits: checked.need.into_bytes(),
                resume: checked.resume,
            });
        }
        Command::OpenNamespace { .. }
        | Command::Abort
        | Command::SendFrom { .. }
        | Command::Commit { .. }
        | Command::Verify { .. } => {}
    }
}

/// A missing path reads better as just the cause.
fn cause(e: &FsError) -> String {
    if e.raw_os_error() == Some(nix::libc::ENOENT) {
        "not on the server".to_string()
    } else {
        client_message(e)
    }
}

/// Queues more listing or restore frames, at most [`ENTRIES_PER_CALL`].
/// Returns how many entries it handled (0: nothing to do).
fn produce(c: &mut Conn) -> u64 {
    let Some(store) = c.store.as_ref() else {
        return 0;
    };
    let tree = store.tree();
    let Some(stream) = c.stream.as_mut() else {
        return 0;
    };
    let mut count: u64 = 0;
    match stream {
        Stream::List(l) => {
            while c.session.poll_transmit().len() < STREAM_HIGH_WATER && count < ENTRIES_PER_CALL {
                let Some(name) = l.names.pop_front() else {
                    c.session.handle_completion(Completion::Done { id: l.id });
                    c.stream = None;
                    return count + 1;
                };
                count += 1;
                let Ok(path) = l.dir.join(&name) else {
                    continue;
                };
                // Entries that vanish between readdir and stat are simply gone.
                if let Ok(st) = tree.lstat(&path) {
                    if let Ok(item) = tree.list_item(&path, &name, &st) {
                        c.session
                            .handle_completion(Completion::Listed { id: l.id, item });
                    }
                }
            }
        }
        Stream::Restore(r) => {
            while c.send.is_none()
                && c.offered.is_none()
                && c.session.poll_transmit().len() < STREAM_HIGH_WATER
                && count < ENTRIES_PER_CALL
            {
                count += 1;
                let rel = if !r.started {
                    r.started = true;
                    WirePath::root()
                } else {
                    let Some((dir, names, _)) = r.stack.last_mut() else {
                        let who = c.session.name().unwrap_or("?").to_string();
                        info!(
                            "{who}: restore {} sent: {} entries, {} bytes, {} failed",
                            r.base, r.stats.entries, r.stats.bytes, r.stats.failed
                        );
                        c.session.handle_completion(Completion::Done { id: r.id });
                        c.stream = None;
                        return count + 1;
                    };
                    match names.pop_front() {
                        Some(name) => match dir.join(&name) {
                            Ok(p) => p,
                            Err(_) => continue,
                        },
                        None => {
                            if let Some((dir, _, meta)) = r.stack.pop() {
                                c.session.handle_completion(Completion::RestoredDir {
                                    id: r.id,
                                    path: dir,
                                    meta,
                                });
                            }
                            continue;
                        }
                    }
                };
                match restore_entry(tree, r, &rel, &mut c.session) {
                    Ok(Some(Pending::Send(tx))) => c.send = Some((r.id, tx)),
                    Ok(Some(Pending::Offer(o))) => c.offered = Some(o),
                    Ok(None) => {}
                    Err(e) => {
                        r.stats.failed += 1;
                        let shown = r.base.join_path(&rel).unwrap_or_else(|_| rel.clone());
                        let msg = if rel.is_root() {
                            cause(&e)
                        } else {
                            client_message(&e)
                        };
                        c.session.handle_completion(Completion::Failed {
                            id: r.id,
                            path: shown,
                            message: msg,
                        });
                    }
                }
            }
        }
    }
    count
}

/// Sends the header of one restored entry; a file also gets its sender.
fn restore_entry(
    tree: &Namespace,
    r: &mut RestoreStream,
    rel: &WirePath,
    session: &mut ServerSession,
) -> Result<Option<Pending>, FsError> {
    let full = r
        .base
        .join_path(rel)
        .map_err(|e| FsError::invalid("restore", tree.show(&r.base), e))?;
    let st = tree.lstat(&full)?;
    let other = || {
        FsError::other(
            "restore",
            tree.show(&full),
            "not a regular file, directory or symlink",
        )
    };
    let kind = kind_of(&st).ok_or_else(other)?;
    r.stats.entries += 1;
    match kind {
        EntryKind::Dir => {
            let names = tree.read_dir(&full)?;
            r.stack.push((rel.clone(), names.into(), meta_of(&st)));
            Ok(None)
        }
        EntryKind::Symlink => {
            let target = tree.readlink(&full)?;
            session.handle_completion(Completion::RestoredSymlink {
                id: r.id,
                path: rel.clone(),
                target,
                meta: meta_of(&st),
            });
            Ok(None)
        }
        EntryKind::File => {
            // What is sent is what was opened, not what the name says now.
            let file = tree.open_stored(&full)?;
            if !file.is_file() {
                return Err(other());
            }
            let (meta, size) = (file.meta(), file.size());
            if stream::plan_file(size) == FilePlan::Offer {
                // Large: the client may hold part of it from an earlier,
                // interrupted restore. Ask before sending.
                session.handle_completion(Completion::Offered {
                    id: r.id,
                    path: rel.clone(),
                    meta,
                    size,
                });
                return Ok(Some(Pending::Offer(Offered {
                    file,
                    rel: rel.clone(),
                })));
            }
            let tx = file.sender(0, 0)?;
            session.handle_completion(Completion::RestoredFile {
                id: r.id,
                path: rel.clone(),
                meta,
                size,
            });
            Ok(Some(Pending::Send(tx)))
        }
    }
}
