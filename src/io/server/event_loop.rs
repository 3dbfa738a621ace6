//! The loop itself: one thread, one `mio::Poll`, the listening socket, the
//! signal pipe, the workers' waker, and every connection in a `slab::Slab`.
//! It waits for readiness, accepts, hands worker results back, fires
//! timers and drives the connections it touched. It carries out no
//! session command itself (see [`super::exec`]).

use std::collections::VecDeque;
use std::io::{self, Write};
use std::time::{Duration, Instant};

use log::{debug, error, info, warn};
use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Token};
use signal_hook::consts::{SIGHUP, SIGXFSZ};
use signal_hook_mio::v1_0::Signals;
use slab::Slab;

use super::conn::{Conn, ConnId, Stats};
use super::jobs::finish_job;
use super::rsb_conn::drive;
use super::ServerConfig;
use crate::io::sandbox::Beneath;
use crate::io::worker::{Ticket, Workers};
use crate::proto;
use crate::server::session::ServerSession;

pub(super) const LISTENER: Token = Token(usize::MAX - 1);
pub(super) const SIGNALS: Token = Token(usize::MAX - 2);
/// The workers' wake-up call.
pub(super) const WAKER: Token = Token(usize::MAX - 3);
/// Threads that commit and verify off the loop.
pub(super) const WORKERS: usize = 4;
/// A loop turn longer than this is logged: something blocked the loop.
pub(super) const SLOW_TURN: Duration = Duration::from_millis(500);
/// Tells connections that reuse a slab key apart (see [`Ticket`]).
pub(super) static GENERATION: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// How long a closing connection may take to accept its error frame.
pub(super) const CLOSE_GRACE: Duration = Duration::from_secs(5);
/// How long a shutdown waits for connections to take their error frame.
pub(super) const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// The loop itself (see [`run`]).
pub(super) fn serve(
    config: &ServerConfig,
    root: &Beneath,
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

pub(super) fn accept_all(
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
            match crate::io::random_bytes() {
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
            last_body: None,
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

pub(super) fn close(poll: &Poll, conns: &mut Slab<Conn>, id: ConnId, reason: &str) {
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
