//! The client's end of an in-memory connection: a [`ClientSession`] and
//! the bytes in and out, with the driver's side of file bodies and offers.
//!
//! The client session takes the time like the server's: every input here
//! passes the virtual time the end was last given. Also the small helpers
//! the session's own unit tests use on a bare session.

use std::collections::BTreeMap;
use std::time::Instant;

use super::frames::{bytes, welcome};
use crate::client::session::{ClientAuth, ClientSession, Event};
use crate::proto::{Layout, Meta, WirePath};

/// Every event the session has queued, drained.
pub fn drain_events(c: &mut ClientSession) -> Vec<Event> {
    std::iter::from_fn(|| c.poll_event()).collect()
}

/// A client called `box` at `now`, its `Hello` sent and a `Welcome`
/// (no flags) received, its events drained.
pub fn welcomed(now: Instant) -> ClientSession {
    let mut c = ClientSession::new(now, "box", None);
    let hello = c.poll_transmit().len();
    c.handle_sent(now, hello);
    c.handle_input(now, &bytes(&[welcome(0)]));
    drain_events(&mut c);
    c
}

/// A client session with its two byte streams and what it received.
pub struct ClientEnd {
    /// The session under test; make requests with its `send_*` methods.
    pub session: ClientSession,
    /// Bytes from the server not yet consumed.
    pub inbox: Vec<u8>,
    /// Bytes for the server.
    pub outbox: Vec<u8>,
    /// Every event the session gave, in order.
    pub events: Vec<Event>,
    /// Every restored body received, in order.
    pub bodies: Vec<Vec<u8>>,
    /// How much of an offered file the client holds (none if absent): its
    /// answer to the server's `Offer`.
    pub wants: BTreeMap<WirePath, u64>,
    /// The body being received, so far.
    body: Option<Vec<u8>>,
    /// The latest time this end was given (requests made between steps
    /// are sent at it).
    now: Instant,
}

impl ClientEnd {
    /// A client saying `Hello` as `name`, with `auth` if it has a secret.
    pub fn new(name: &str, auth: Option<ClientAuth>, now: Instant) -> ClientEnd {
        ClientEnd {
            session: ClientSession::new(now, name, auth),
            now,
            inbox: Vec::new(),
            outbox: Vec::new(),
            events: Vec::new(),
            bodies: Vec::new(),
            wants: BTreeMap::new(),
            body: None,
        }
    }

    /// The events received since the last call, taken.
    pub fn take_events(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.events)
    }

    /// Backs up a file: its header, `body`, and its `FileEnd`.
    pub fn send_file(&mut self, path: WirePath, meta: Meta, body: &[u8]) -> u32 {
        let id = self
            .session
            .send_file(path, meta, body.len() as u64, Layout::Dense);
        self.send_body(id, body, crc32c::crc32c(body));
        id
    }

    /// Backs up a file the server holds the first `offset` bytes of: a
    /// `FileFrom` header, the rest of `whole`, and a `FileEnd` whose crc32c
    /// covers all of it.
    pub fn send_file_from(&mut self, path: WirePath, meta: Meta, whole: &[u8], offset: u64) -> u32 {
        let size = whole.len() as u64;
        let id = self
            .session
            .send_file_from(path, meta, size, offset, Layout::Dense);
        let rest = whole.get(offset as usize..).unwrap_or_default();
        self.send_body(id, rest, crc32c::crc32c(whole));
        id
    }

    fn send_body(&mut self, id: u32, body: &[u8], crc: u32) {
        // The header goes out first; the body follows it raw.
        self.flush();
        self.outbox.extend_from_slice(body);
        self.session.send_file_end(id, crc, true);
    }

    /// One step at `now`: the session's deadline if it passed, then input
    /// (a body, or frames), the events collected (an offer answered from
    /// [`Self::wants`]), the output flushed. True when anything happened.
    pub fn step(&mut self, now: Instant) -> bool {
        self.now = now;
        let mut progress = false;
        if self.session.poll_timeout().is_some_and(|t| t <= now) {
            let closed = self.session.is_closed();
            self.session.handle_timeout(now);
            progress |= closed != self.session.is_closed();
        }
        if let Some(size) = self.session.wants_body() {
            let buf = self.body.get_or_insert_with(Vec::new);
            let want = usize::try_from(size).unwrap_or(usize::MAX) - buf.len();
            let take = want.min(self.inbox.len());
            buf.extend(self.inbox.drain(..take));
            progress |= take > 0;
            if take == want {
                self.bodies.push(self.body.take().unwrap_or_default());
                self.session.handle_body_done();
                progress = true;
            }
        } else {
            let n = self.session.handle_input(now, &self.inbox);
            self.inbox.drain(..n);
            progress |= n > 0;
        }
        while let Some(event) = self.session.poll_event() {
            progress = true;
            if let Event::Offer { id, path, .. } = &event {
                let held = self.wants.get(path).copied().unwrap_or(0);
                self.session.send_want(*id, held);
            }
            self.events.push(event);
        }
        progress | self.flush()
    }

    /// The server closed the connection.
    pub fn handle_eof(&mut self, now: Instant) {
        self.now = now;
        self.session.handle_eof();
        while let Some(event) = self.session.poll_event() {
            self.events.push(event);
        }
    }

    fn flush(&mut self) -> bool {
        let out = self.session.poll_transmit();
        let n = out.len();
        self.outbox.extend_from_slice(out);
        self.session.handle_sent(self.now, n);
        n > 0
    }
}
