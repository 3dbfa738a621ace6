//! The server's event loop: one thread, one `mio::Poll`, and an
//! [`EventLoop`] that owns everything the loop touches: the listener, the
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

use super::conn::{Conn, ConnId, Conns};
use super::plans::PlanBook;
use super::rsb_conn::RsbConn;
use super::{Env, Expiry, ServerConfig, ServerError};
use crate::io::store::Store;
use crate::io::timers::Timers;
use crate::io::worker::{Done, Ticket, Workers};
use crate::proto;
use crate::proto::ErrorCode;
use crate::server::peers::{Admit, PeerLimits};
use crate::server::session::ServerSession;

const LISTENER: Token = Token(usize::MAX - 1);
const SIGNALS: Token = Token(usize::MAX - 2);
/// The workers' wake-up call.
const WAKER: Token = Token(usize::MAX - 3);
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
    /// Registers the listener and the signals and starts the workers.
    pub(super) fn new(
        config: ServerConfig,
        root: Store,
        listener: std::net::TcpListener,
        mut signals: Signals,
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
        let peers = PeerLimits::new(config.max_per_address);
        let plans = PlanBook::open(&config.root, config.session.read_only, Instant::now());
        Ok(EventLoop {
            poll,
            listener,
            signals,
            env: Env {
                config,
                root,
                workers,
                plans,
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
            }
            self.fire_timers(now);
            if self.env.plans.reload_if_changed(now) {
                self.plans_changed();
            }
            self.drive_touched(now);
            for line in self.peers.poll_reports(now) {
                warn!("{line}");
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
        earliest(self.env.plans.next_check());
        next.map(|t| t.saturating_duration_since(now))
    }

    /// The plans changed (a hand edit read back, or a `set` by the web
    /// side): every agent connection is told its plan as it is now (a
    /// session sends it only if it differs from the one its agent has).
    pub(super) fn plans_changed(&mut self) {
        for (id, c) in self.conns.iter_mut() {
            if let Some(name) = c.agent() {
                let text = self.env.plans.text_of(name);
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
            if self.conns.len() >= config.max_clients {
                let mut s = ServerSession::busy(config.session.clone(), now, self.conns.len());
                let _ = (&sock).write(s.poll_transmit());
                s.handle_sent(usize::MAX);
                if self.peers.refused(peer.ip(), now) {
                    warn!(
                        "{peer}: refused: server busy ({} clients connected)",
                        self.conns.len()
                    );
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
                Ok(id) => self.touched.push(id),
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
                | Done::Crc { ticket, .. } => *ticket,
            };
            // A result for a connection that closed meanwhile is dropped.
            if let Some((id, c)) = self.conns.of_ticket(ticket) {
                c.handle_done(done, now);
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
            match c.drive(&self.env, now) {
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
            let log_auth = self.peers.closed(ip, Instant::now(), auth);
            c.close(self.poll.registry(), reason, log_auth);
        }
    }

    fn log_turn(&mut self, now: Instant) {
        let turn = now.elapsed();
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
