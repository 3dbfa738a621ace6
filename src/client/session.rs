//! The client side of one connection, as a pure state machine. No sockets,
//! files or clocks: the time comes in as `now`.
//!
//! Its methods fall in four groups, each prefix one direction:
//! * requests, `send_*`: the user's commands queue frames for the server
//!   (entries, manifests, commits, `List`/`Restore`/`Verify`, a `Want`);
//! * inputs, `handle_*`: bytes from the server, bytes that went out, body
//!   bytes moved, the end of a body, EOF, the clock reaching the deadline;
//! * outputs, `poll_*`: bytes to send ([`ClientSession::poll_transmit`]),
//!   [`Event`]s for the driver ([`ClientSession::poll_event`]), and when to
//!   wake the session next ([`ClientSession::poll_timeout`]);
//! * getters: `is_*`, `wants_*`, counts, [`ClientSession::error`].
//!
//! A driver's turn: feed what arrived (`handle_input`), drain `poll_event`,
//! send `poll_transmit` (then `handle_sent`), and wait for readiness no
//! longer than `poll_timeout`; at that deadline call `handle_timeout`.
//!
//! The session checks that the server keeps to the protocol: answers only
//! for requests that were made, restore entries only inside an open
//! `Restore`, a `FileEnd` right after each body. Anything else ends the
//! session with [`ClientSession::error`] set. It also owns the client's two
//! timeouts: the handshake's ([`HELLO_TIMEOUT`]) and a request's when
//! nothing moves ([`NO_PROGRESS_TIMEOUT`]).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::auth::Key;
pub use crate::client::event::{Event, SessionError};
use crate::proto::xattrs::Xattrs;
use crate::proto::{self, codec, Decoded, EntryKind, Frame, Layout, Meta, Time, WirePath};

/// The handshake gives up after this.
pub const HELLO_TIMEOUT: Duration = Duration::from_secs(10);

/// A request gives up when nothing moved either way for this long (a
/// server that went silent, a network that dropped without a reset).
pub const NO_PROGRESS_TIMEOUT: Duration = Duration::from_secs(300);

/// What the client proves itself with: its key and a fresh nonce.
#[derive(Debug, Clone)]
pub struct ClientAuth {
    /// The key derived from the client's secret.
    pub key: Key,
    /// [`proto::NONCE_LEN`] fresh random bytes.
    pub nonce: [u8; proto::NONCE_LEN],
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    AwaitWelcome,
    Ready,
    Body { size: u64 },
    AwaitFileEnd,
    Closed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pending {
    List(u32),
    Restore(u32),
    Verify(u32),
    Versions(u32),
}

/// The client side of one connection.
pub struct ClientSession {
    state: State,
    out: Vec<u8>,
    sent_upto: usize,
    events: VecDeque<Event>,
    next_id: u32,
    /// Streaming requests made and not yet `Done`, in order.
    streams: VecDeque<Pending>,
    /// Ids of commits sent and not yet confirmed, in order.
    commits: VecDeque<u32>,
    /// Ids and sizes of manifests sent and not yet answered, in order.
    manifests: VecDeque<(u32, usize)>,
    error: Option<SessionError>,
    /// A `File` header went out and its body and `FileEnd` are still owed.
    body_owed: bool,
    /// Frames queued while a body is owed; they follow its `FileEnd`.
    held: Vec<u8>,
    /// An `Offer` (id, size, path) not yet followed by its `FileFrom`.
    offer: Option<(u32, u64, WirePath)>,
    /// The offset the client asked for in its `Want`.
    wanted: Option<u64>,
    /// The size of the local file whose signature went with the `Want`.
    signed: Option<u64>,
    /// The name said in `Hello`.
    name: String,
    /// The secret to prove, if the client has one.
    auth: Option<ClientAuth>,
    /// The server's challenge, once it sent one.
    challenge: Option<Vec<u8>>,
    /// `(st_dev, st_ino)` of the server's backup root, from its `Welcome`.
    store: (u64, u64),
    /// When the handshake gives up.
    hello_deadline: Instant,
    /// The last time bytes moved either way.
    last_activity: Instant,
    /// Owner ids named to the server so far (backups).
    announced: proto::owners::Announced,
    /// Extended attributes for the next file or directory sent
    /// ([`Self::attach_xattrs`]).
    xattrs: Option<Box<Xattrs>>,
    /// An `Agent` went out: `Plan` frames may come.
    agent: bool,
    /// A `Need` whose signatures are still arriving.
    signing: Option<Box<delta::Signing>>,
}

impl ClientSession {
    /// A session that says `Hello` as `name`, proving it knows the secret
    /// behind `auth` when the server asks, and insisting that the server
    /// prove it too.
    pub fn new(now: Instant, name: &str, auth: Option<ClientAuth>) -> ClientSession {
        let nonce = auth.as_ref().map(|a| a.nonce.to_vec()).unwrap_or_default();
        let mut s = ClientSession {
            state: State::AwaitWelcome,
            out: Vec::new(),
            sent_upto: 0,
            events: VecDeque::new(),
            next_id: 1,
            streams: VecDeque::new(),
            commits: VecDeque::new(),
            manifests: VecDeque::new(),
            error: None,
            offer: None,
            wanted: None,
            signed: None,
            signing: None,
            body_owed: false,
            held: Vec::new(),
            name: name.to_string(),
            auth,
            challenge: None,
            store: (0, 0),
            hello_deadline: now + HELLO_TIMEOUT,
            last_activity: now,
            announced: proto::owners::Announced::new(),
            xattrs: None,
            agent: false,
        };
        s.push(&Frame::Hello {
            version: proto::VERSION,
            name: name.to_string(),
            flags: 0,
            nonce,
        });
        s
    }

    /// Why the session ended, once it has.
    pub fn error(&self) -> Option<&SessionError> {
        self.error.as_ref()
    }

    /// True once no more frames will be accepted.
    #[must_use]
    pub fn is_closed(&self) -> bool {
        self.state == State::Closed
    }

    /// Commits sent and not yet confirmed.
    #[must_use]
    pub fn commits_in_flight(&self) -> usize {
        self.commits.len()
    }

    /// Manifests sent and not yet answered.
    #[must_use]
    pub fn manifests_in_flight(&self) -> usize {
        self.manifests.len()
    }

    /// True when the client has a secret to prove (`-k FILE`).
    pub fn has_secret(&self) -> bool {
        self.auth.is_some()
    }

    /// `Some(size)` while the next bytes are a file body.
    #[must_use]
    pub fn wants_body(&self) -> Option<u64> {
        match self.state {
            State::Body { size } => Some(size),
            _ => None,
        }
    }

    // ---- requests -----------------------------------------------------

    fn id(&mut self) -> u32 {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1).max(1);
        id
    }

    /// The id of an entry that may carry extended attributes: an `Xattrs`
    /// frame with them goes out first when some are attached.
    fn entry_id(&mut self, path: &WirePath) -> u32 {
        let id = self.id();
        if let Some(attrs) = self.xattrs.take() {
            self.push(&Frame::Xattrs {
                id,
                path: path.clone(),
                attrs: *attrs,
            });
        }
        id
    }

    /// The id of an entry that carries no extended attributes (a stray
    /// attached set is dropped: it was not this entry's).
    fn plain_id(&mut self) -> u32 {
        self.xattrs = None;
        self.id()
    }

    /// Attaches extended attributes to the next directory or file sent
    /// ([`Self::send_dir`], [`Self::send_file`], [`Self::send_file_from`]):
    /// an `Xattrs` frame goes right before its header.
    pub fn attach_xattrs(&mut self, attrs: Option<Box<Xattrs>>) {
        self.xattrs = attrs;
    }

    /// Queues a `Names` frame before an entry with `meta` when it uses an
    /// id not named yet on this connection and `user` or `group` names it
    /// (each asked at most once per id; see [`crate::proto::owners`]).
    pub fn name_owners(
        &mut self,
        meta: &Meta,
        user: impl FnOnce(u32) -> Option<Vec<u8>>,
        group: impl FnOnce(u32) -> Option<Vec<u8>>,
    ) {
        if let Some(f) = self.announced.names_for(meta, user, group) {
            self.push(&f);
        }
    }

    /// Queues a directory entry; returns its id.
    pub fn send_dir(&mut self, path: WirePath, meta: Meta) -> u32 {
        let id = self.entry_id(&path);
        self.push(&Frame::Dir { id, path, meta });
        id
    }

    /// Queues the end of a directory's walk (see [`Frame::Closed`]), with
    /// the names left out there that the server is to keep; returns its
    /// id. A directory not read whole keeps no names; one whose names do
    /// not fit a frame goes as not whole (nothing deleted there).
    pub fn send_closed(&mut self, path: WirePath, whole: bool, keep: Vec<Vec<u8>>) -> u32 {
        let id = self.plain_id();
        let fits = keep.iter().all(|n| proto::codec::is_name(n))
            && proto::codec::closed_fits(&path, &keep);
        let (whole, keep) = if whole && fits {
            (true, keep)
        } else {
            (false, Vec::new())
        };
        self.push(&Frame::Closed {
            id,
            path,
            whole,
            keep,
        });
        id
    }

    /// Queues a symlink entry; returns its id.
    pub fn send_symlink(&mut self, path: WirePath, target: Vec<u8>, meta: Meta) -> u32 {
        let id = self.plain_id();
        self.push(&Frame::Symlink {
            id,
            path,
            target,
            meta,
        });
        id
    }

    /// Queues a FIFO, socket or device entry; returns its id.
    pub fn send_special(&mut self, path: WirePath, kind: EntryKind, rdev: u64, meta: Meta) -> u32 {
        let id = self.plain_id();
        self.push(&Frame::Special {
            id,
            path,
            kind,
            rdev,
            meta,
        });
        id
    }

    /// Queues a hard link: `path` is another name of the file sent (or
    /// stored) at `target`, of `size` bytes and `meta`'s mtime.
    pub fn send_link(&mut self, path: WirePath, target: WirePath, meta: Meta, size: u64) -> u32 {
        let id = self.plain_id();
        self.push(&Frame::Link {
            id,
            path,
            target,
            meta,
            size,
        });
        id
    }

    /// `(st_dev, st_ino)` of the server's backup root as its `Welcome`
    /// said (`(0, 0)`: unknown, or not welcomed yet).
    pub fn store_identity(&self) -> (u64, u64) {
        self.store
    }

    /// Queues the metadata of an entry the server stores with the same
    /// content (its answer set the entry's `meta` bit): `kind` is
    /// [`EntryKind::File`] or [`EntryKind::Symlink`], `size` its size or
    /// target length. Returns its id; it is answered like any entry.
    pub fn send_update(&mut self, path: WirePath, kind: EntryKind, meta: Meta, size: u64) -> u32 {
        let id = self.entry_id(&path);
        self.push(&Frame::Update {
            id,
            path,
            kind,
            meta,
            size,
        });
        id
    }

    /// Queues a file header; then the body bytes `layout` says
    /// ([`Layout::body_len`]: `size` for a dense file) are owed: the driver
    /// sends them after [`Self::poll_transmit`] is drained, or queues them
    /// with [`Self::send_body`]; then [`Self::send_file_end`].
    pub fn send_file(&mut self, path: WirePath, meta: Meta, size: u64, layout: Layout) -> u32 {
        let id = self.entry_id(&path);
        self.push(&Frame::File {
            id,
            path,
            meta,
            size,
            layout,
        });
        id
    }

    /// Queues the header of a file resumed at `offset`: the driver then
    /// sends bytes `offset..size` (those of `layout`'s extents, for a
    /// sparse file) and a `FileEnd` whose crc covers the whole file.
    pub fn send_file_from(
        &mut self,
        path: WirePath,
        meta: Meta,
        size: u64,
        offset: u64,
        layout: Layout,
    ) -> u32 {
        let id = self.entry_id(&path);
        self.push(&Frame::FileFrom {
            id,
            path,
            meta,
            size,
            offset: offset.min(size),
            layout,
        });
        id
    }

    /// Queues an owed body whole, read into memory (a small file's).
    pub fn send_body(&mut self, body: &[u8]) {
        if self.body_owed {
            self.out.extend_from_slice(body);
        }
    }

    /// Ends a file body.
    pub fn send_file_end(&mut self, id: u32, crc: u32, ok: bool) {
        self.push(&Frame::FileEnd { id, crc, ok });
    }

    /// Tells the server what is about to be backed up; it answers with a
    /// `Need` event for this id.
    pub fn send_manifest(&mut self, entries: Vec<crate::proto::ManifestEntry>) -> u32 {
        let id = self.id();
        self.manifests.push_back((id, entries.len()));
        self.push(&Frame::Manifest { id, entries });
        id
    }

    /// Answers the current `Offer`: send it from `offset` (bytes already
    /// held) on.
    pub fn send_want(&mut self, id: u32, offset: u64) {
        let offset = self
            .offer
            .as_ref()
            .map_or(0, |(_, size, _)| offset.min(*size));
        self.wanted = Some(offset);
        self.signed = None;
        self.push(&Frame::Want { id, offset });
    }

    /// Answers the current `Offer` with `Skip`: the server sends nothing of
    /// the file and goes on with the next entry.
    pub fn send_skip(&mut self, id: u32) {
        self.offer = None;
        self.wanted = None;
        self.signed = None;
        self.push(&Frame::Skip { id });
    }

    /// Asks the server to make everything so far durable.
    pub fn send_commit(&mut self) -> u32 {
        let id = self.id();
        self.commits.push_back(id);
        self.push(&Frame::Commit { id });
        id
    }

    /// Asks for a listing of `path`.
    pub fn send_list(&mut self, path: WirePath) -> u32 {
        let id = self.id();
        self.streams.push_back(Pending::List(id));
        self.push(&Frame::List { id, path });
        id
    }

    /// Asks for a listing of `path` as it was at `at` (an `At`, then the
    /// `List`: the server answers it as it answers any listing).
    pub fn send_list_at(&mut self, path: WirePath, at: Time) -> u32 {
        self.push(&Frame::At {
            secs: at.secs,
            nanos: at.nanos,
        });
        self.send_list(path)
    }

    /// Asks for the tree at `path` as it was at `at`.
    pub fn send_restore_at(&mut self, path: WirePath, at: Time) -> u32 {
        self.push(&Frame::At {
            secs: at.secs,
            nanos: at.nanos,
        });
        self.send_restore(path)
    }

    /// Asks for every version the server holds of `path`.
    pub fn send_versions(&mut self, path: WirePath) -> u32 {
        let id = self.id();
        self.streams.push_back(Pending::Versions(id));
        self.push(&Frame::Versions { id, path });
        id
    }

    /// Asks the server to check the stored files under `path` against
    /// their recorded crc32c.
    pub fn send_verify(&mut self, path: WirePath) -> u32 {
        let id = self.id();
        self.streams.push_back(Pending::Verify(id));
        self.push(&Frame::Verify { id, path });
        id
    }

    /// Makes the connection an agent's (or, sent again, keeps it alive):
    /// the server answers with the plan of the client's name
    /// ([`Event::Plan`]) and sends it again on each change. Nothing else
    /// may be asked on this connection afterwards.
    pub fn send_agent(&mut self) -> u32 {
        let id = self.id();
        self.agent = true;
        self.push(&Frame::Agent { id });
        id
    }

    /// Asks for the tree at `path`.
    pub fn send_restore(&mut self, path: WirePath) -> u32 {
        let id = self.id();
        self.streams.push_back(Pending::Restore(id));
        self.push(&Frame::Restore { id, path });
        id
    }

    // ---- inputs -------------------------------------------------------

    /// Parses frames from `buf`; returns the bytes used. Stops at a body.
    pub fn handle_input(&mut self, now: Instant, buf: &[u8]) -> usize {
        let mut used = 0;
        while matches!(
            self.state,
            State::AwaitWelcome | State::Ready | State::AwaitFileEnd
        ) {
            match codec::decode(&buf[used..]) {
                Ok(Decoded::Partial) => break,
                Ok(Decoded::Frame(f, n)) => {
                    used += n;
                    self.handle_frame(f);
                }
                Err(e) => {
                    self.broken(SessionError::Protocol(format!(
                        "malformed frame from server: {e}"
                    )));
                    break;
                }
            }
        }
        if used > 0 {
            self.last_activity = now;
        }
        used
    }

    /// `n` bytes of [`Self::poll_transmit`] were sent (dropped at half the buffer).
    pub fn handle_sent(&mut self, now: Instant, n: usize) {
        self.sent_upto = (self.sent_upto + n).min(self.out.len());
        if self.sent_upto == self.out.len() || self.sent_upto >= self.out.len() / 2 {
            self.out.drain(..self.sent_upto);
            self.sent_upto = 0;
        }
        if n > 0 {
            self.last_activity = now;
        }
    }

    /// Bytes moved that the session does not see: file body bytes either
    /// way, or part of a frame read and not yet complete.
    pub fn handle_activity(&mut self, now: Instant) {
        self.last_activity = now;
    }

    /// The clock reached [`Self::poll_timeout`] (or later): the handshake
    /// or the request in flight gives up.
    pub fn handle_timeout(&mut self, now: Instant) {
        match self.poll_timeout() {
            Some(t) if now >= t && self.state == State::AwaitWelcome => {
                self.broken(SessionError::HelloTimeout)
            }
            Some(t) if now >= t => self.broken(SessionError::NoProgress(NO_PROGRESS_TIMEOUT)),
            _ => {}
        }
    }

    /// The body announced by the last `File` event has been received.
    pub fn handle_body_done(&mut self) {
        if let State::Body { .. } = self.state {
            self.state = State::AwaitFileEnd;
        }
    }

    /// The connection closed.
    pub fn handle_eof(&mut self) {
        if self.state != State::Closed {
            self.broken(SessionError::Closed);
        }
    }

    // ---- outputs ------------------------------------------------------

    /// The next event.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Bytes to send.
    #[must_use]
    pub fn poll_transmit(&self) -> &[u8] {
        &self.out[self.sent_upto..]
    }

    /// When [`Self::handle_timeout`] must be called next: the handshake's
    /// deadline, or while anything is owed either way, [`NO_PROGRESS_TIMEOUT`]
    /// after bytes last moved. `None` when idle (a client at its prompt
    /// waits for its user, not the server) or closed.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.state {
            State::Closed => None,
            State::AwaitWelcome => Some(self.hello_deadline),
            _ if self.is_waiting() => self.last_activity.checked_add(NO_PROGRESS_TIMEOUT),
            _ => None,
        }
    }

    // ---- internals ----------------------------------------------------

    /// Queues a frame. While a file body is owed (between a `File` header
    /// and its `FileEnd`) the body bytes must come next on the wire, so any
    /// other frame is held back until the `FileEnd` (regression: a manifest
    /// queued then went out between a header and its body).
    fn push(&mut self, f: &Frame) {
        match (self.body_owed, f) {
            (true, Frame::FileEnd { .. }) => {
                codec::encode(f, &mut self.out);
                self.body_owed = false;
                let held = std::mem::take(&mut self.held);
                self.out.extend_from_slice(&held);
            }
            (true, _) => codec::encode(f, &mut self.held),
            (false, _) => {
                codec::encode(f, &mut self.out);
                self.body_owed = matches!(
                    f,
                    Frame::File { .. } | Frame::FileFrom { .. } | Frame::FileDelta { .. }
                );
            }
        }
    }

    /// A restored file header: the body carries the bytes of `layout`
    /// (`size - offset` of them for a dense file).
    #[allow(clippy::too_many_arguments)]
    fn file(
        &mut self,
        id: u32,
        path: WirePath,
        meta: Meta,
        size: u64,
        offset: u64,
        layout: Layout,
        delta: Option<Box<(u64, Vec<proto::CopyRange>)>>,
    ) {
        let body = layout.body_len(size, offset);
        // A sparse body of no bytes still goes through the shell: its
        // crc32c is that of the holes it leaves.
        self.state = if body == 0 && !layout.is_sparse() {
            State::AwaitFileEnd
        } else {
            State::Body { size: body }
        };
        self.events.push_back(Event::File {
            id,
            path,
            meta,
            size,
            offset,
            layout,
            delta,
        });
    }

    /// True while something is owed either way: bytes to send, a body, an
    /// answer to a request.
    fn is_waiting(&self) -> bool {
        self.state != State::Ready
            || !self.poll_transmit().is_empty()
            || self.body_owed
            || !self.streams.is_empty()
            || !self.commits.is_empty()
            || !self.manifests.is_empty()
    }

    fn broken_protocol(&mut self, msg: String) {
        self.broken(SessionError::Protocol(msg));
    }

    fn broken(&mut self, e: SessionError) {
        if self.error.is_none() {
            self.error = Some(e);
        }
        self.state = State::Closed;
    }

    /// With a secret, the server must prove it knows it too: otherwise
    /// anyone could pose as the server and collect the backup.
    fn server_proof_problem(&self, flags: u32, proof: &[u8]) -> Option<SessionError> {
        let auth = self.auth.as_ref()?;
        let Some(ns) = self.challenge.as_ref() else {
            return Some(SessionError::AuthFailed(format!(
                "authentication failed for {}: the server did not authenticate itself (does it run without --secrets?)",
                self.name
            )));
        };
        if flags & proto::WELCOME_AUTHENTICATED == 0
            || !auth.key.is_server_proof(proof, &self.name, &auth.nonce, ns)
        {
            return Some(SessionError::AuthFailed(format!(
                "authentication failed for {}: the server does not know the secret (not the server you meant?)",
                self.name
            )));
        }
        None
    }

    fn current_restore(&self, id: u32) -> bool {
        self.streams.front() == Some(&Pending::Restore(id))
    }

    fn handle_frame(&mut self, f: Frame) {
        if let Frame::Error { code, message } = f {
            self.error = Some(SessionError::Refused {
                code,
                message: message.clone(),
            });
            self.state = State::Closed;
            self.events.push_back(Event::Refused { code, message });
            return;
        }
        if self.signing.is_some() {
            return self.handle_signature(f);
        }
        match (self.state, f) {
            (State::AwaitWelcome, Frame::Challenge { nonce }) if self.challenge.is_none() => {
                let mac = match &self.auth {
                    Some(a) => a.key.client_proof(&self.name, &a.nonce, &nonce).to_vec(),
                    // Said anyway, so that the server ends the handshake
                    // with its one "authentication failed" answer.
                    None => Vec::new(),
                };
                self.challenge = Some(nonce);
                self.push(&Frame::Proof { mac });
            }
            (
                State::AwaitWelcome,
                Frame::Welcome {
                    version,
                    flags,
                    proof,
                    store,
                },
            ) => {
                let known = proto::WELCOME_READ_ONLY | proto::WELCOME_AUTHENTICATED;
                if version != proto::VERSION || flags & !known != 0 {
                    self.broken_protocol(format!("server speaks protocol version {version} with flags {flags:#x}; this client speaks version {}", proto::VERSION));
                } else if let Some(problem) = self.server_proof_problem(flags, &proof) {
                    self.broken(problem);
                } else {
                    self.state = State::Ready;
                    self.store = store;
                    self.events.push_back(Event::Welcome {
                        read_only: flags & proto::WELCOME_READ_ONLY != 0,
                    });
                }
            }
            (State::AwaitWelcome, f) => {
                self.broken_protocol(format!("expected welcome, got frame kind {}", f.kind()))
            }
            (State::AwaitFileEnd, Frame::FileEnd { id, crc, ok }) if self.current_restore(id) => {
                self.state = State::Ready;
                self.events.push_back(Event::FileEnd { id, crc, ok });
            }
            (State::AwaitFileEnd, f) => {
                self.broken_protocol(format!("expected file end, got frame kind {}", f.kind()))
            }
            (State::Ready, Frame::Failed { id, path, message }) => {
                if id >= self.next_id {
                    self.broken_protocol(format!("failure reported for unknown request {id}"));
                } else {
                    // A failure of the offered file ends the offer: the
                    // server sends nothing of it.
                    if self
                        .offer
                        .as_ref()
                        .is_some_and(|(o, _, p)| *o == id && *p == path)
                    {
                        self.offer = None;
                        self.wanted = None;
                    }
                    self.events.push_back(Event::Failed { id, path, message });
                }
            }
            (
                State::Ready,
                Frame::Need {
                    id,
                    bits,
                    meta,
                    resume,
                    delta,
                },
            ) => match self.manifests.front() {
                Some(&(m, n))
                    if m == id
                        && bits.len() == n.div_ceil(8)
                        && meta.len() == bits.len()
                        && resume.iter().all(|&(i, _)| (i as usize) < n)
                        && delta.iter().all(|&i| {
                            let (byte, bit) = (i as usize / 8, i % 8);
                            (i as usize) < n && bits.get(byte).is_some_and(|b| b >> bit & 1 == 1)
                        }) =>
                {
                    // An entry needed whole and as metadata only: the
                    // server contradicts itself.
                    if bits.iter().zip(&meta).any(|(b, m)| b & m != 0) {
                        self.broken_protocol(format!(
                            "answer to manifest {id} needs an entry both whole and as metadata"
                        ));
                        return;
                    }
                    self.manifests.pop_front();
                    self.accept_need(id, bits, meta, resume, delta);
                }
                _ => self.broken_protocol(format!("unexpected answer to manifest {id}")),
            },
            (State::Ready, Frame::Committed { id }) => {
                if self.commits.front() == Some(&id) {
                    self.commits.pop_front();
                    self.events.push_back(Event::Committed { id });
                } else {
                    self.broken_protocol(format!("unexpected commit confirmation {id}"));
                }
            }
            (State::Ready, Frame::ListEntry { id, item })
                if self.streams.front() == Some(&Pending::List(id)) =>
            {
                self.events.push_back(Event::ListEntry { id, item });
            }
            (State::Ready, Frame::Version { id, item })
                if self.streams.front() == Some(&Pending::Versions(id)) =>
            {
                self.events.push_back(Event::Version { id, item });
            }
            (State::Ready, Frame::Names { users, groups })
                if matches!(self.streams.front(), Some(Pending::Restore(_))) =>
            {
                self.events.push_back(Event::Names { users, groups });
            }
            (State::Ready, Frame::Xattrs { id, path, attrs }) if self.current_restore(id) => {
                self.events.push_back(Event::Xattrs { id, path, attrs });
            }
            (State::Ready, Frame::Dir { id, path, meta }) if self.current_restore(id) => {
                self.events.push_back(Event::Dir { id, path, meta });
            }
            (
                State::Ready,
                Frame::Special {
                    id,
                    path,
                    kind,
                    rdev,
                    meta,
                },
            ) if self.current_restore(id) => {
                self.events.push_back(Event::Special {
                    id,
                    path,
                    kind,
                    rdev,
                    meta,
                });
            }
            (
                State::Ready,
                Frame::Symlink {
                    id,
                    path,
                    target,
                    meta,
                },
            ) if self.current_restore(id) => {
                self.events.push_back(Event::Symlink {
                    id,
                    path,
                    target,
                    meta,
                });
            }
            (
                State::Ready,
                Frame::Link {
                    id,
                    path,
                    target,
                    meta,
                    size,
                },
            ) if self.current_restore(id) => {
                self.events.push_back(Event::Link {
                    id,
                    path,
                    target,
                    meta,
                    size,
                });
            }
            (
                State::Ready,
                Frame::File {
                    id,
                    path,
                    meta,
                    size,
                    layout,
                },
            ) if self.current_restore(id) => {
                self.file(id, path, meta, size, 0, layout, None);
            }
            (
                State::Ready,
                Frame::Offer {
                    id,
                    path,
                    meta,
                    size,
                },
            ) if self.current_restore(id) && self.offer.is_none() => {
                self.offer = Some((id, size, path.clone()));
                self.events.push_back(Event::Offer {
                    id,
                    path,
                    meta,
                    size,
                });
            }
            (
                State::Ready,
                Frame::FileFrom {
                    id,
                    path,
                    meta,
                    size,
                    offset,
                    layout,
                },
            ) if self.current_restore(id)
                && self
                    .offer
                    .as_ref()
                    .is_some_and(|(o, s, p)| *o == id && *s == size && *p == path)
                && self.wanted.is_some_and(|w| w == offset) =>
            {
                self.offer = None;
                self.wanted = None;
                self.signed = None;
                self.file(id, path, meta, size, offset, layout, None);
            }
            (
                State::Ready,
                Frame::FileDelta {
                    id,
                    path,
                    meta,
                    size,
                    basis,
                    offset,
                    copies,
                },
            ) if self.current_restore(id)
                && self
                    .offer
                    .as_ref()
                    .is_some_and(|(o, s, p)| *o == id && *s == size && *p == path)
                && self.wanted == Some(offset)
                && self.signed == Some(basis) =>
            {
                self.offer = None;
                self.wanted = None;
                self.signed = None;
                let layout = proto::delta_layout(size, offset, &copies);
                let delta = Some(Box::new((basis, copies)));
                self.file(id, path, meta, size, offset, layout, delta);
            }
            (State::Ready, Frame::Plan { text }) if self.agent => {
                self.events.push_back(Event::Plan { text });
            }
            (State::Ready, Frame::Done { id }) => match self.streams.front() {
                Some(Pending::List(p) | Pending::Restore(p) | Pending::Versions(p)) if *p == id => {
                    self.streams.pop_front();
                    self.events.push_back(Event::Done { id });
                }
                _ => self.broken_protocol(format!("unexpected done for request {id}")),
            },
            (State::Ready, Frame::Progress { id, files, bytes })
                if self.streams.front() == Some(&Pending::Verify(id)) =>
            {
                self.events.push_back(Event::Progress { id, files, bytes });
            }
            (
                State::Ready,
                Frame::Verified {
                    id,
                    files,
                    bytes,
                    damaged,
                    unchecked,
                },
            ) => {
                if self.streams.front() == Some(&Pending::Verify(id)) {
                    self.streams.pop_front();
                    self.events.push_back(Event::Verified {
                        id,
                        files,
                        bytes,
                        damaged,
                        unchecked,
                    });
                } else {
                    self.broken_protocol(format!("unexpected verify result for request {id}"));
                }
            }
            (_, f) => {
                self.broken_protocol(format!("unexpected frame kind {} from server", f.kind()))
            }
        }
    }
}

mod delta;

#[cfg(test)]
mod tests;
