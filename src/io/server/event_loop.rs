//! The server's event loop: one thread, one `mio::Poll`, and an
//! [`EventLoop`] that owns everything the loop touches: the listeners (the
//! backup protocol's and, with `--http`, the web interface's), the
//! signals, the workers and their waker, every connection ([`Conns`]), the
//! deadline heap and the shutdown state. Each turn it waits for readiness
//! (or the next deadline), accepts, takes worker results back, fires due
//! timers and drives every connection it touched. It carries out no
//! session command itself and decides nothing about the protocol:
//! connections do (the one frame it writes itself is a session's "server
//! busy" answer to a connection it will not keep).
//!
//! Readiness is edge-triggered: a connection is registered once for reading
//! and writing and remembers that its socket may still have data until a
//! call says `WouldBlock`. A connection that uses up its per-turn budget is
//! put on the `ready` list and driven again next turn, after the others had
//! theirs, so one fast client cannot starve the rest and no edge is lost.
//!
//! Timers: a connection arms the heap only when it wants an earlier
//! deadline than the one it has armed; a due entry is checked against the
//! connection's deadline now (which activity may have moved later) and
//! re-armed if it is not reached. So no turn looks at every connection.

use std::collections::VecDeque;
use std::io::{self, Write};
use std::time::{Duration, Instant};

use log::{debug, error, info, warn};
use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Token};
use signal_hook::consts::{SIGHUP, SIGXFSZ};
use signal_hook_mio::v1_0::Signals;

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;

use super::conn::{Conn, ConnId, Conns};
use super::plans::PlanBook;
use super::rsb_conn::RsbConn;
use super::tls::Tls;
use super::web_conn::{self, Transport, WebConn};
use super::{Env, Expiry, LoopAction, ServerConfig, ServerError, WebEnv};
use crate::io::store::Store;
use crate::io::timers::Timers;
use crate::io::worker::{Done, Ticket, Workers};
use crate::proto;
use crate::proto::ErrorCode;
use crate::server::peers::{Admit, PeerLimits};
use crate::server::session::ServerSession;
use crate::server::status::Status;

const LISTENER: Token = Token(usize::MAX - 1);
const SIGNALS: Token = Token(usize::MAX - 2);
/// The workers' wake-up call.
const WAKER: Token = Token(usize::MAX - 3);
/// The last backup of each client, beside the namespaces.
const STATUS_FILE: &str = ".rsb-status";
/// The web interface's listener.
const WEB_LISTENER: Token = Token(usize::MAX - 4);
/// The answer to a web connection beyond `--http-max`.
const WEB_BUSY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: 12\r\nRetry-After: 5\r\nConnection: close\r\n\r\nserver busy\n";
/// Threads that commit and verify off the loop.
const WORKERS: usize = 4;
/// A loop turn longer than this is logged: something blocked the loop.
const SLOW_TURN: Duration = Duration::from_millis(500);
/// How long a shutdown waits for connections to take their error frame.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);
/// How soon to try `accept` again after it failed for want of descriptors.
const ACCEPT_RETRY: Duration = Duration::from_millis(100);

/// A timer heap entry's owner: a connection id and its generation.
type TimerKey = (ConnId, u64);

/// The server's loop and everything it owns.
pub(super) struct EventLoop {
    poll: Poll,
    listener: TcpListener,
    /// The web interface's listener, with `--http`.
    web_listener: Option<TcpListener>,
    signals: Signals,
    /// The root, the options and the workers: what connections use.
    env: Env,
    conns: Conns,
    timers: Timers<TimerKey>,
    /// Connections that used up their budget: driven again next turn.
    ready: VecDeque<ConnId>,
    /// Connections to drive this turn (sorted and deduplicated first).
    touched: Vec<ConnId>,
    /// When SIGINT or SIGTERM arrived.
    shutdown_at: Option<Instant>,
    /// Set when accept failed for want of file descriptors: the listener's
    /// edge is spent, so the loop must come back to it by itself.
    accept_retry_at: Option<Instant>,
    /// Connections per address, and failed authentications.
    peers: PeerLimits<std::net::IpAddr>,
    longest_turn: Duration,
}

impl EventLoop {
    /// Registers the listeners and the signals and starts the workers.
    pub(super) fn new(
        config: ServerConfig,
        root: Store,
        listener: std::net::TcpListener,
        mut signals: Signals,
        web: Option<(std::net::TcpListener, Option<Arc<Tls>>)>,
    ) -> Result<EventLoop, ServerError> {
        let failed = |op| move |error| ServerError::Loop { op, error };
        let poll = Poll::new().map_err(failed("poll"))?;
        let mut listener = TcpListener::from_std(listener);
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)
            .map_err(failed("register listener"))?;
        poll.registry()
            .register(&mut signals, SIGNALS, Interest::READABLE)
            .map_err(failed("register signals"))?;
        let waker = mio::Waker::new(poll.registry(), WAKER).map_err(failed("waker"))?;
        let mut workers = Workers::start(WORKERS, waker).map_err(failed("workers"))?;
        // Retention on a store of its own (a second handle on the root).
        if !config.session.read_only {
            let store = Store::open(&config.root).map_err(ServerError::Root)?;
            workers
                .start_pruner(store, config.keep)
                .map_err(failed("pruner"))?;
        }
        if web.is_some() {
            let store = Store::open(&config.root).map_err(ServerError::Root)?;
            workers.start_measurer(store).map_err(failed("measurer"))?;
        }
        let peers = PeerLimits::new(config.max_per_address);
        let mut web_listener = None;
        let mut web_env = None;
        if let Some((l, tls)) = web {
            let addr = l.local_addr().map_err(failed("web listener"))?;
            let mut l = TcpListener::from_std(l);
            poll.registry()
                .register(&mut l, WEB_LISTENER, Interest::READABLE)
                .map_err(failed("register web listener"))?;
            web_listener = Some(l);
            let csrf_key = crate::io::random_bytes().map_err(failed("getrandom"))?;
            let w = config.web.clone().unwrap_or_default();
            web_env = Some(WebEnv {
                addr,
                loopback: addr.ip().is_loopback(),
                admins: w.admins,
                hosts: w.hosts,
                tls,
                csrf_key,
                // Connections are not limited per address here: only
                // failed logins are counted.
                peers: RefCell::new(PeerLimits::new(0)),
                verdicts: RefCell::new(HashMap::new()),
                histories: RefCell::new(HashMap::new()),
                checks: RefCell::new(web_conn::Checks::new(
                    crate::server::web::checks::MAX_CHECKS,
                )),
                max_connections: w.max_connections,
            });
        }
        let plans = PlanBook::open(&config.root, config.session.read_only, Instant::now());
        let mut status = Status::new(crate::io::clock::now_time());
        if let Ok(text) = std::fs::read_to_string(config.root.join(STATUS_FILE)) {
            status.restore_last(crate::server::status::parse_last(&text));
        }
        Ok(EventLoop {
            poll,
            listener,
            web_listener,
            signals,
            env: Env {
                config,
                root,
                workers,
                status: RefCell::new(status),
                plans: RefCell::new(plans),
                web: web_env,
                actions: RefCell::new(Vec::new()),
            },
            conns: Conns::new(),
            timers: Timers::new(),
            ready: VecDeque::new(),
            touched: Vec::new(),
            shutdown_at: None,
            accept_retry_at: None,
            peers,
            longest_turn: Duration::ZERO,
        })
    }

    /// Serves until a shutdown completes, then waits for the workers: a
    /// commit under way is finished, never cut off.
    pub(super) fn run(mut self) -> Result<(), ServerError> {
        let result = self.serve();
        self.env.workers.shutdown();
        result
    }

    fn serve(&mut self) -> Result<(), ServerError> {
        let mut events = Events::with_capacity(1024);
        loop {
            let now = Instant::now();
            let timeout = self.poll_timeout(now);
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(ServerError::Loop {
                    op: "poll",
                    error: e,
                });
            }
            let now = Instant::now();
            self.touched.extend(self.ready.drain(..));
            for ev in events.iter() {
                match ev.token() {
                    LISTENER => {
                        if self.shutdown_at.is_none() {
                            self.accept_all(now);
                        }
                    }
                    WEB_LISTENER => {
                        if self.shutdown_at.is_none() {
                            self.accept_web(now);
                        }
                    }
                    WAKER => self.take_done(now),
                    SIGNALS => self.handle_signals(now),
                    token => {
                        let id = ConnId::from_token(token);
                        if let Some(c) = self.conns.get_mut(id) {
                            c.handle_readiness(
                                ev.is_readable() || ev.is_read_closed() || ev.is_error(),
                                ev.is_writable() || ev.is_write_closed() || ev.is_error(),
                            );
                            self.touched.push(id);
                        }
                    }
                }
            }
            if self.shutdown_at.is_none() && self.accept_retry_at.is_some_and(|t| t <= now) {
                self.accept_all(now);
                self.accept_web(now);
            }
            self.fire_timers(now);
            if self.env.plans.borrow_mut().reload_if_changed(now) {
                self.plans_changed();
            }
            self.drive_touched(now);
            self.take_actions();
            for line in self.peers.poll_reports(now) {
                warn!("{line}");
            }
            if let Some(w) = self.env.web.as_ref() {
                for line in w.peers.borrow_mut().poll_reports(now) {
                    warn!("web: {line}");
                }
            }
            self.log_turn(now);
            if self.is_shut_down(now) {
                return Ok(());
            }
        }
    }

    /// How long the next poll may wait: not at all when connections have
    /// work left from the last turn, else until the earliest deadline.
    fn poll_timeout(&mut self, now: Instant) -> Option<Duration> {
        if !self.ready.is_empty() {
            return Some(Duration::ZERO);
        }
        let conns = &self.conns;
        let mut next = self
            .timers
            .next_deadline(|at, (id, generation)| conns.is_armed(id, generation, at));
        let mut earliest = |t: Instant| next = Some(next.map_or(t, |n: Instant| n.min(t)));
        if let Some(t) = self.shutdown_at.and_then(|t| t.checked_add(SHUTDOWN_GRACE)) {
            earliest(t);
        }
        if let Some(t) = self.accept_retry_at {
            earliest(t);
        }
        if let Some(t) = self.peers.next_report() {
            earliest(t);
        }
        if let Some(t) = self
            .env
            .web
            .as_ref()
            .and_then(|w| w.peers.borrow().next_report())
        {
            earliest(t);
        }
        earliest(self.env.plans.borrow().next_check());
        next.map(|t| t.saturating_duration_since(now))
    }

    /// The plans changed (a hand edit read back, or a `set` by the web
    /// side): every agent connection is told its plan as it is now (a
    /// session sends it only if it differs from the one its agent has).
    pub(super) fn plans_changed(&mut self) {
        for (id, c) in self.conns.iter_mut() {
            if let Some(name) = c.agent() {
                let text = self.env.plans.borrow().text_of(name);
                c.handle_plan(&text);
                self.touched.push(id);
            }
        }
    }

    /// Accepts every pending connection (or refuses it as busy).
    fn accept_all(&mut self, now: Instant) {
        self.accept_retry_at = None;
        loop {
            let (mut sock, peer) = match self.listener.accept() {
                Ok(x) => x,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    // EMFILE and friends: log loudly and come back shortly;
                    // the pending connections will not raise another edge.
                    error!("accept: {e}");
                    self.accept_retry_at = Some(now + ACCEPT_RETRY);
                    return;
                }
            };
            let _ = sock.set_nodelay(true);
            let config = &self.env.config;
            // Web connections have their own limit (`--http-max`).
            let clients = self.conns.len() - self.env.status.borrow().counters.web_open as usize;
            if clients >= config.max_clients {
                let mut s = ServerSession::busy(config.session.clone(), now, clients);
                let _ = (&sock).write(s.poll_transmit());
                s.handle_sent(usize::MAX);
                if self.peers.refused(peer.ip(), now) {
                    warn!("{peer}: refused: server busy ({clients} clients connected)");
                }
                continue;
            }
            let refusal = match self.peers.admit(peer.ip(), now) {
                Admit::Yes => None,
                Admit::TooMany { open, log } => Some((
                    format!(
                        "server busy ({open} connections from {}, the most one address may have)",
                        peer.ip()
                    ),
                    log,
                )),
                Admit::Backoff { wait, log } => Some((
                    format!(
                        "too many failed authentications from {}: try again in {} s",
                        peer.ip(),
                        wait.as_secs().max(1)
                    ),
                    log,
                )),
            };
            if let Some((message, log)) = refusal {
                let mut s = ServerSession::refused(
                    config.session.clone(),
                    now,
                    ErrorCode::Busy,
                    message.clone(),
                );
                let _ = (&sock).write(s.poll_transmit());
                s.handle_sent(usize::MAX);
                if log {
                    warn!("{peer}: refused: {message}");
                }
                continue;
            }
            let registry = self.poll.registry();
            let added = self.conns.insert_with(|id, generation| {
                if let Err(e) = registry.register(
                    &mut sock,
                    id.token(),
                    Interest::READABLE | Interest::WRITABLE,
                ) {
                    error!("{peer}: register: {e}");
                    return Err(());
                }
                // Each connection's challenge; only drawn when it will be
                // used.
                let nonce = if config.session.secrets.is_some() {
                    match crate::io::random_bytes() {
                        Ok(n) => n,
                        Err(e) => {
                            error!("{peer}: getrandom: {e}");
                            return Err(());
                        }
                    }
                } else {
                    [0; proto::NONCE_LEN]
                };
                debug!("{peer}: connected");
                let ticket = Ticket {
                    key: id.key(),
                    generation,
                };
                let session = ServerSession::new(config.session.clone(), now, nonce);
                Ok(Conn::Rsb(RsbConn::new(sock, peer, ticket, session)))
            });
            match added {
                Ok(id) => {
                    self.env.status.borrow_mut().counters.rsb_accepted += 1;
                    self.touched.push(id);
                }
                Err(()) => {
                    self.peers
                        .closed(peer.ip(), now, crate::server::peers::AuthOutcome::None);
                }
            }
        }
    }

    /// Takes every result the workers have back to its connection.
    fn take_done(&mut self, now: Instant) {
        while let Some(done) = self.env.workers.poll_done() {
            let ticket = match &done {
                Done::Committed { ticket, .. }
                | Done::Verifying { ticket, .. }
                | Done::Crc { ticket, .. }
                | Done::Signed { ticket, .. }
                | Done::Copied { ticket, .. }
                | Done::DeltaChecked { ticket, .. }
                | Done::Matched { ticket, .. } => *ticket,
                Done::Space { name, measured, at } => {
                    let space = crate::server::web::model::Space {
                        current: measured.current,
                        history: measured.history,
                        entries: measured.entries,
                        measured: crate::proto::Time {
                            secs: *at,
                            nanos: 0,
                        },
                    };
                    self.env.status.borrow_mut().handle_space(name, space);
                    continue;
                }
            };
            if let Done::Committed {
                report, elapsed, ..
            } = &done
            {
                self.env
                    .status
                    .borrow_mut()
                    .handle_commit(elapsed.as_secs_f64(), report.committed.len() as u64);
            }
            // A web interface's whole-file check answers every range
            // waiting for it.
            let done = match done {
                Done::Crc { ticket, result } if web_conn::is_check(ticket) => {
                    for (waiter, each) in web_conn::check_done(&self.env, ticket, result) {
                        if let Some((id, c)) = self.conns.of_ticket(waiter) {
                            c.handle_done(&self.env, each, now);
                            self.touched.push(id);
                        }
                    }
                    continue;
                }
                other => other,
            };
            // A result for a connection that closed meanwhile is dropped.
            if let Some((id, c)) = self.conns.of_ticket(ticket) {
                c.handle_done(&self.env, done, now);
                self.touched.push(id);
            }
        }
    }

    fn handle_signals(&mut self, now: Instant) {
        for sig in self.signals.pending() {
            if sig == SIGHUP || sig == SIGXFSZ {
                debug!("signal {sig} ignored");
                continue;
            }
            if self.shutdown_at.is_none() {
                info!(
                    "signal {sig}: shutting down ({} connections open)",
                    self.conns.len()
                );
                self.shutdown_at = Some(now);
                let _ = self.poll.registry().deregister(&mut self.listener);
                if let Some(l) = self.web_listener.as_mut() {
                    let _ = self.poll.registry().deregister(l);
                }
                for (id, c) in self.conns.iter_mut() {
                    c.handle_shutdown();
                    self.touched.push(id);
                }
            }
        }
    }

    /// Idle connections, handshake deadlines, and connections whose peer
    /// does not take their last error frame.
    fn fire_timers(&mut self, now: Instant) {
        let mut abandoned = Vec::new();
        while let Some((at, (id, generation))) = self.timers.pop_due(now) {
            if !self.conns.is_armed(id, generation, at) {
                continue;
            }
            let Some(c) = self.conns.get_mut(id) else {
                continue;
            };
            c.set_armed(None);
            match c.handle_deadline(now) {
                Expiry::Abandon => abandoned.push(id),
                Expiry::Fired => self.touched.push(id),
                Expiry::NotYet => self.rearm(id),
            }
        }
        for id in abandoned {
            self.close(id, "peer does not read");
        }
        let conns = &self.conns;
        self.timers.compact(conns.len(), |at, (id, generation)| {
            conns.is_armed(id, generation, at)
        });
    }

    /// Gives the connection's deadline to the heap unless an entry at or
    /// before it is there already (that one fires and re-checks).
    fn rearm(&mut self, id: ConnId) {
        let Some(c) = self.conns.get_mut(id) else {
            return;
        };
        let Some(want) = c.deadline() else {
            return;
        };
        if c.armed().is_some_and(|a| a <= want) {
            return;
        }
        c.set_armed(Some(want));
        self.timers.arm(want, (id, c.ticket().generation));
    }

    fn drive_touched(&mut self, now: Instant) {
        let mut touched = std::mem::take(&mut self.touched);
        touched.sort();
        touched.dedup();
        for id in touched.drain(..) {
            let Some(c) = self.conns.get_mut(id) else {
                continue;
            };
            let result = c.drive(&self.env, now);
            if let Conn::Rsb(r) = c {
                let (bytes_in, bytes_out) = r.take_moved();
                let view = r.view();
                let mut status = self.env.status.borrow_mut();
                status.counters.bytes_in += bytes_in;
                status.counters.bytes_out += bytes_out;
                status.handle_conn(
                    (id.key(), r.ticket.generation),
                    view,
                    crate::io::clock::now_time(),
                );
            }
            match result {
                Ok(more) => {
                    if more {
                        self.ready.push_back(id);
                    }
                    self.rearm(id);
                }
                Err(reason) => self.close(id, &reason),
            }
        }
        // Keeps the allocation for the next turn.
        self.touched = touched;
    }

    fn close(&mut self, id: ConnId, reason: &str) {
        if let Some(c) = self.conns.remove(id) {
            let (ip, auth) = c.peer();
            if let Conn::Rsb(r) = &c {
                let run = r.last_run(crate::io::clock::now_time(), reason);
                let ran = run.is_some();
                self.env
                    .status
                    .borrow_mut()
                    .handle_closed((id.key(), r.ticket.generation), run);
                if ran {
                    self.save_last_runs();
                }
            }
            // Web connections are not counted per address (only their
            // failed logins are, per request).
            let log_auth = !c.is_web() && self.peers.closed(ip, Instant::now(), auth);
            c.close(&self.env, self.poll.registry(), reason, log_auth);
        }
    }

    /// Accepts every pending web connection (or answers 503 beyond
    /// `--http-max`).
    fn accept_web(&mut self, now: Instant) {
        let Some(web) = self.env.web.as_ref() else {
            return;
        };
        loop {
            let Some(listener) = self.web_listener.as_ref() else {
                return;
            };
            let (mut sock, peer) = match listener.accept() {
                Ok(x) => x,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    error!("web accept: {e}");
                    self.accept_retry_at = Some(now + ACCEPT_RETRY);
                    return;
                }
            };
            let _ = sock.set_nodelay(true);
            let open = self.env.status.borrow().counters.web_open as usize;
            if open >= web.max_connections {
                if web.tls.is_none() {
                    let _ = (&sock).write(WEB_BUSY);
                }
                debug!("{peer}: web connection refused: {open} open (--http-max)");
                continue;
            }
            let transport = match &web.tls {
                None => Transport::Plain,
                Some(tls) => match tls.session() {
                    Ok(s) => Transport::Tls(Box::new(s)),
                    Err(e) => {
                        error!("{peer}: tls: {e}");
                        continue;
                    }
                },
            };
            let stall = self
                .env
                .config
                .session
                .idle_timeout
                .unwrap_or(Duration::from_secs(300));
            let registry = self.poll.registry();
            let added = self.conns.insert_with(|id, generation| {
                if let Err(e) = registry.register(
                    &mut sock,
                    id.token(),
                    Interest::READABLE | Interest::WRITABLE,
                ) {
                    error!("{peer}: register: {e}");
                    return Err(());
                }
                let ticket = Ticket {
                    key: id.key(),
                    generation,
                };
                Ok(Conn::Web(Box::new(WebConn::new(
                    sock, peer, ticket, transport, stall, now,
                ))))
            });
            if let Ok(id) = added {
                let mut status = self.env.status.borrow_mut();
                status.counters.web_accepted += 1;
                status.counters.web_open += 1;
                drop(status);
                debug!("{peer}: web connection");
                self.touched.push(id);
            }
        }
    }

    /// Keeps every client's last backup in `DIR/.rsb-status` (a small
    /// file replaced whole by a rename; not made durable: it is the
    /// dashboard's memory, not backup data), so the dashboard has them
    /// after a restart. Only a server with a dashboard (`--http`) writes
    /// it.
    fn save_last_runs(&self) {
        if self.env.config.session.read_only || self.env.web.is_none() {
            return;
        }
        let text = crate::server::status::format_last(self.env.status.borrow().last_runs());
        let path = self.env.config.root.join(STATUS_FILE);
        let tmp = self.env.config.root.join(format!("{STATUS_FILE}.tmp"));
        if let Err(e) = std::fs::write(&tmp, text).and_then(|()| std::fs::rename(&tmp, &path)) {
            warn!("{}: {e}", path.display());
        }
    }

    /// Carries out what connections asked of the loop this turn.
    fn take_actions(&mut self) {
        let actions = std::mem::take(&mut *self.env.actions.borrow_mut());
        for a in actions {
            match a {
                LoopAction::PlansChanged => self.plans_changed(),
            }
        }
    }

    fn log_turn(&mut self, now: Instant) {
        let turn = now.elapsed();
        self.env.status.borrow_mut().handle_turn(turn.as_secs_f64());
        if turn > self.longest_turn {
            self.longest_turn = turn;
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
    }

    /// After a shutdown began: true once every connection is gone, or the
    /// grace is over and the rest were closed.
    fn is_shut_down(&mut self, now: Instant) -> bool {
        let Some(t) = self.shutdown_at else {
            return false;
        };
        if !self.conns.is_empty() && t.checked_add(SHUTDOWN_GRACE).is_some_and(|end| now < end) {
            return false;
        }
        for id in self.conns.ids() {
            self.close(id, "server shutting down");
        }
        info!(
            "stopped (longest loop turn {:.1} ms)",
            self.longest_turn.as_secs_f64() * 1e3
        );
        true
    }
}
