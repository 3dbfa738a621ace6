//! One connection of the server, as the loop's slab holds it, and the id
//! that names it. Owns no socket logic (see [`super::rsb_conn`]).

use std::io;
use std::net::SocketAddr;
use std::time::Instant;

use mio::net::TcpStream;

use super::stream::{Offered, Stream};
use crate::io::stage::Stager;
use crate::io::transfer::{BodyReceiver, BodySender, Pipe};
use crate::io::worker::Ticket;
use crate::server::session::ServerSession;

/// A connection id: the slab key behind a mio token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct ConnId(pub(super) usize);

/// Counters for the log line of a commit or a connection.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Stats {
    pub(super) entries: u64,
    pub(super) bytes: u64,
    pub(super) failed: u64,
}

pub(super) struct Conn {
    pub(super) sock: TcpStream,
    pub(super) peer: SocketAddr,
    /// This connection, for results coming back from the workers.
    pub(super) ticket: Ticket,
    /// A job of this connection's is with the workers: nothing else is
    /// read or done for it until the result is back.
    pub(super) waiting: bool,
    /// Tells a verify under way that this connection closed.
    pub(super) cancel: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
    pub(super) session: ServerSession,
    pub(super) inbuf: Vec<u8>,
    pub(super) store: Option<Stager>,
    pub(super) recv: Option<BodyReceiver>,
    /// crc and write error of the last body received, for its `EndFile`.
    pub(super) last_body: Option<(u32, Option<io::Error>)>,
    pub(super) pipe: Option<Pipe>,
    pub(super) stream: Option<Stream>,
    pub(super) send: Option<(u32, BodySender)>,
    pub(super) offered: Option<Offered>,
    /// A restore resuming an offered file at this offset, waiting for the
    /// crc32c of the bytes before it from a worker.
    pub(super) resuming: Option<(u32, Offered, u64)>,
    pub(super) readable: bool,
    pub(super) writable: bool,
    /// When the session started closing; the connection is dropped
    /// [`super::event_loop::CLOSE_GRACE`] later even if its peer never reads the error.
    pub(super) closing_since: Option<Instant>,
    pub(super) batch: Stats,
    pub(super) total: Stats,
}

impl Conn {
    pub(super) fn label(&self) -> String {
        match self.session.name() {
            Some(n) => format!("{n} ({})", self.peer),
            None => self.peer.to_string(),
        }
    }
}
