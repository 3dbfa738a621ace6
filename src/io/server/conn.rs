//! The connections the server's loop holds, by kind, and the ids that name
//! them. A kind is one variant of [`Conn`]: the backup protocol
//! ([`RsbConn`]) and the web interface ([`WebConn`]). The loop talks to a
//! connection only through [`Conn`]'s methods, so a new kind touches this
//! file and its own, not the loop. Owns no protocol logic.

use std::time::Instant;

use mio::{Registry, Token};
use slab::Slab;

use super::rsb_conn::RsbConn;
use super::web_conn::WebConn;
use super::{Env, Expiry};
use crate::io::worker::{Done, Ticket};
use crate::server::peers::AuthOutcome;

/// A connection id: the slab key behind a mio token. The loop's own
/// tokens are reserved at the top of the range, beyond any key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(super) struct ConnId(usize);

impl ConnId {
    /// The id behind a token (it may name no connection).
    pub(super) fn from_token(token: Token) -> ConnId {
        ConnId(token.0)
    }

    /// The id a worker's ticket names.
    pub(super) fn of(ticket: Ticket) -> ConnId {
        ConnId(ticket.key)
    }

    /// The token its socket is registered with.
    pub(super) fn token(self) -> Token {
        Token(self.0)
    }

    /// The slab key, for tickets.
    pub(super) fn key(self) -> usize {
        self.0
    }
}

/// One connection, of whichever kind.
// Backup connections are the many (tests/scale.rs holds 10,000): they stay
// inline in the slab, and the rarer web connection is boxed.
#[allow(clippy::large_enum_variant)]
pub(super) enum Conn {
    /// The backup protocol.
    Rsb(RsbConn),
    /// The web interface (boxed: the slab's slots are as big as the
    /// largest kind, and backup connections are the many).
    Web(Box<WebConn>),
}

impl Conn {
    /// Tells this connection apart from a later one given the same id.
    pub(super) fn ticket(&self) -> Ticket {
        match self {
            Conn::Rsb(c) => c.ticket,
            Conn::Web(c) => c.ticket,
        }
    }

    /// The deadline it has in the loop's timer heap.
    pub(super) fn armed(&self) -> Option<Instant> {
        match self {
            Conn::Rsb(c) => c.armed,
            Conn::Web(c) => c.armed,
        }
    }

    /// Records the deadline it now has in the heap.
    pub(super) fn set_armed(&mut self, at: Option<Instant>) {
        match self {
            Conn::Rsb(c) => c.armed = at,
            Conn::Web(c) => c.armed = at,
        }
    }

    /// When the loop must look at it again, if ever.
    pub(super) fn deadline(&self) -> Option<Instant> {
        match self {
            Conn::Rsb(c) => c.deadline(),
            Conn::Web(c) => c.deadline(),
        }
    }

    /// Its deadline came due.
    pub(super) fn handle_deadline(&mut self, now: Instant) -> Expiry {
        match self {
            Conn::Rsb(c) => c.handle_deadline(now),
            Conn::Web(c) => c.handle_deadline(now),
        }
    }

    /// Its socket became readable and/or writable.
    pub(super) fn handle_readiness(&mut self, readable: bool, writable: bool) {
        match self {
            Conn::Rsb(c) => c.handle_readiness(readable, writable),
            Conn::Web(c) => c.handle_readiness(readable, writable),
        }
    }

    /// The server is shutting down: say so and close.
    pub(super) fn handle_shutdown(&mut self) {
        match self {
            Conn::Rsb(c) => c.session.handle_shutdown(),
            Conn::Web(c) => c.handle_shutdown(),
        }
    }

    /// A worker's result for it.
    pub(super) fn handle_done(&mut self, env: &Env, done: Done, now: Instant) {
        match self {
            Conn::Rsb(c) => c.handle_done(done, now),
            Conn::Web(c) => c.handle_done(env, done),
        }
    }

    /// Moves it on as far as its socket and the turn's budget allow.
    /// `Ok(true)`: it has more to do next turn. `Err`: close it.
    pub(super) fn drive(&mut self, env: &Env, now: Instant) -> Result<bool, String> {
        match self {
            Conn::Rsb(c) => c.drive(env, now),
            Conn::Web(c) => c.drive(env, now),
        }
    }

    /// Deregisters and drops it, logging why (a failed authentication
    /// only when `log_auth`: the rest of a burst is counted).
    pub(super) fn close(self, env: &Env, registry: &Registry, reason: &str, log_auth: bool) {
        match self {
            Conn::Rsb(c) => c.close(registry, reason, log_auth),
            Conn::Web(c) => c.close(env, registry, reason),
        }
    }

    /// True for a web connection.
    pub(super) fn is_web(&self) -> bool {
        matches!(self, Conn::Web(_))
    }

    /// The client's name when the connection is an agent following its
    /// plan (the dashboard's "agent connected").
    pub(super) fn agent(&self) -> Option<&str> {
        match self {
            Conn::Rsb(c) if c.session.is_agent() => c.session.name(),
            Conn::Rsb(_) | Conn::Web(_) => None,
        }
    }

    /// The plans changed: `text` is this agent's plan now.
    pub(super) fn handle_plan(&mut self, text: &[u8]) {
        match self {
            Conn::Rsb(c) => c.session.handle_plan(text),
            Conn::Web(_) => {}
        }
    }

    /// Its peer's address, and how its authentication went.
    pub(super) fn peer(&self) -> (std::net::IpAddr, AuthOutcome) {
        match self {
            Conn::Rsb(c) => {
                let auth = if c.session.auth_failure().is_some() {
                    AuthOutcome::Failed
                } else if c.session.name().is_some() {
                    AuthOutcome::Passed
                } else {
                    AuthOutcome::None
                };
                (c.peer.ip(), auth)
            }
            Conn::Web(c) => (c.peer.ip(), AuthOutcome::None),
        }
    }
}

/// Every open connection, by id.
pub(super) struct Conns {
    slab: Slab<Conn>,
    /// The next connection's generation (see [`Ticket`]).
    generation: u64,
}

impl Conns {
    /// None yet.
    pub(super) fn new() -> Conns {
        Conns {
            slab: Slab::new(),
            generation: 0,
        }
    }

    /// How many are open.
    pub(super) fn len(&self) -> usize {
        self.slab.len()
    }

    /// True when none is open.
    pub(super) fn is_empty(&self) -> bool {
        self.slab.is_empty()
    }

    /// The connection `id`, if it is open. (No `Index`: an id from an
    /// event or a ticket may name a connection that is gone, and a lookup
    /// must not panic.)
    pub(super) fn get(&self, id: ConnId) -> Option<&Conn> {
        self.slab.get(id.0)
    }

    /// The same, to change.
    pub(super) fn get_mut(&mut self, id: ConnId) -> Option<&mut Conn> {
        self.slab.get_mut(id.0)
    }

    /// The connection a worker's result belongs to, if it is still open
    /// (a later connection may have its id).
    pub(super) fn of_ticket(&mut self, ticket: Ticket) -> Option<(ConnId, &mut Conn)> {
        let id = ConnId::of(ticket);
        let c = self.slab.get_mut(id.0).filter(|c| c.ticket() == ticket)?;
        Some((id, c))
    }

    /// Adds the connection `make` builds from its id and generation, or
    /// nothing if it fails.
    pub(super) fn insert_with<E>(
        &mut self,
        make: impl FnOnce(ConnId, u64) -> Result<Conn, E>,
    ) -> Result<ConnId, E> {
        let entry = self.slab.vacant_entry();
        let id = ConnId(entry.key());
        let conn = make(id, self.generation)?;
        self.generation += 1;
        entry.insert(conn);
        Ok(id)
    }

    /// Takes the connection `id` out.
    pub(super) fn remove(&mut self, id: ConnId) -> Option<Conn> {
        self.slab.try_remove(id.0)
    }

    /// The ids of every open connection.
    pub(super) fn ids(&self) -> Vec<ConnId> {
        self.slab.iter().map(|(k, _)| ConnId(k)).collect()
    }

    /// Every open connection.
    pub(super) fn iter_mut(&mut self) -> impl Iterator<Item = (ConnId, &mut Conn)> {
        self.slab.iter_mut().map(|(k, c)| (ConnId(k), c))
    }

    /// True when the heap entry (`at`, `id`, `generation`) is the one that
    /// connection has armed; any other is stale.
    pub(super) fn is_armed(&self, id: ConnId, generation: u64, at: Instant) -> bool {
        self.get(id)
            .is_some_and(|c| c.ticket().generation == generation && c.armed() == Some(at))
    }
}
