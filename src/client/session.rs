//! The client side of one connection, as a pure state machine: requests in
//! (`send_*`), bytes in (`handle_input`), and out come bytes to send
//! (`poll_transmit`) and [`Event`]s for the driver (`poll_event`). No
//! sockets, files or clocks.
//!
//! The session checks that the server keeps to the protocol: answers only
//! for requests that were made, restore entries only inside an open
//! `Restore`, a `FileEnd` right after each body. Anything else ends the
//! session with [`ClientSession::error`] set.

use std::collections::VecDeque;

use crate::auth::Key;
use crate::proto::{self, codec, Decoded, ErrorCode, Frame, ListItem, Meta, WirePath};

/// What the client proves itself with: its key and a fresh nonce.
#[derive(Debug, Clone)]
pub struct ClientAuth {
    /// The key derived from the client's secret.
    pub key: Key,
    /// [`proto::NONCE_LEN`] fresh random bytes.
    pub nonce: [u8; proto::NONCE_LEN],
}

/// What the server said, for the driver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The handshake succeeded.
    Welcome {
        /// The server refuses writes.
        read_only: bool,
    },
    /// The server ended the connection with an `Error`.
    Refused {
        /// Why.
        code: ErrorCode,
        /// Its message.
        message: String,
    },
    /// A request or entry failed on the server.
    Failed {
        /// Id of the request or entry.
        id: u32,
        /// Server-side path concerned.
        path: WirePath,
        /// The cause.
        message: String,
    },
    /// The server's answer to a `Manifest`.
    Need {
        /// The manifest's id.
        id: u32,
        /// Bit `i` set: entry `i` is needed.
        bits: Vec<u8>,
        /// (entry index, offset): send that file from `offset` on.
        resume: Vec<(u32, u64)>,
    },
    /// Everything before the `Commit` with this id is durable.
    Committed {
        /// The commit's id.
        id: u32,
    },
    /// One entry of a listing.
    ListEntry {
        /// The `List` request.
        id: u32,
        /// The entry.
        item: ListItem,
    },
    /// A restored directory.
    Dir {
        /// The `Restore` request.
        id: u32,
        /// Path relative to the restored path.
        path: WirePath,
        /// Mode and mtime.
        meta: Meta,
    },
    /// A restored symlink.
    Symlink {
        /// The `Restore` request.
        id: u32,
        /// Path relative to the restored path.
        path: WirePath,
        /// Link target, verbatim.
        target: Vec<u8>,
        /// Mtime.
        meta: Meta,
    },
    /// A restored file; its `size` body bytes follow (see
    /// [`ClientSession::wants_body`]).
    File {
        /// The `Restore` request.
        id: u32,
        /// Path relative to the restored path.
        path: WirePath,
        /// Mode and mtime.
        meta: Meta,
        /// Size of the whole file.
        size: u64,
        /// The body carries bytes `offset..size` (0: the whole file).
        offset: u64,
    },
    /// A restored file of which the client may hold a part: answer with
    /// [`ClientSession::send_want`]; a `File` event with the offset follows.
    Offer {
        /// The `Restore` request.
        id: u32,
        /// Path relative to the restored path.
        path: WirePath,
        /// Mode and mtime.
        meta: Meta,
        /// Size of the file.
        size: u64,
    },
    /// The body of the last `File` ended.
    FileEnd {
        /// The `Restore` request.
        id: u32,
        /// The server's crc32c.
        crc: u32,
        /// The server read a stable file.
        ok: bool,
    },
    /// The `List` or `Restore` with this id is complete.
    Done {
        /// The request.
        id: u32,
    },
    /// How far the server's `Verify` got.
    Progress {
        /// The request.
        id: u32,
        /// Files read so far.
        files: u64,
        /// Bytes read so far.
        bytes: u64,
    },
    /// The `Verify` with this id is complete (damaged files came before
    /// it as `Failed`).
    Verified {
        /// The request.
        id: u32,
        /// Files read.
        files: u64,
        /// Bytes read.
        bytes: u64,
        /// Files damaged or unreadable.
        damaged: u64,
        /// Files without a recorded crc32c.
        unchecked: u64,
    },
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
    error: Option<String>,
    /// A `File` header went out and its body and `FileEnd` are still owed.
    body_owed: bool,
    /// Frames queued while a body is owed; they follow its `FileEnd`.
    held: Vec<u8>,
    /// An `Offer` (id, size) not yet followed by its `FileFrom`.
    offer: Option<(u32, u64)>,
    /// The offset the client asked for in its `Want`.
    wanted: Option<u64>,
    /// The name said in `Hello`.
    name: String,
    /// The secret to prove, if the client has one.
    auth: Option<ClientAuth>,
    /// The server's challenge, once it sent one.
    challenge: Option<Vec<u8>>,
}

impl ClientSession {
    /// A session that says `Hello` as `name`, proving it knows the secret
    /// behind `auth` when the server asks, and insisting that the server
    /// prove it too.
    pub fn new(name: &str, auth: Option<ClientAuth>) -> ClientSession {
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
            body_owed: false,
            held: Vec::new(),
            name: name.to_string(),
            auth,
            challenge: None,
        };
        s.push(&Frame::Hello {
            version: proto::VERSION,
            name: name.to_string(),
            flags: 0,
            nonce,
        });
        s
    }

    /// Why the session ended, if it ended by a protocol error or refusal.
    pub fn error(&self) -> Option<&str> {
        self.error.as_deref()
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

    // ---- requests -----------------------------------------------------

    fn id(&mut self) -> u32 {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1).max(1);
        id
    }

    /// Queues a directory entry; returns its id.
    pub fn send_dir(&mut self, path: WirePath, meta: Meta) -> u32 {
        let id = self.id();
        self.push(&Frame::Dir { id, path, meta });
        id
    }

    /// Queues a symlink entry; returns its id.
    pub fn send_symlink(&mut self, path: WirePath, target: Vec<u8>, meta: Meta) -> u32 {
        let id = self.id();
        self.push(&Frame::Symlink {
            id,
            path,
            target,
            meta,
        });
        id
    }

    /// Queues a file header; the driver must then send exactly `size` body
    /// bytes after [`Self::poll_transmit`] is drained, and call
    /// [`Self::send_file_end`].
    pub fn send_file(&mut self, path: WirePath, meta: Meta, size: u64) -> u32 {
        let id = self.id();
        self.push(&Frame::File {
            id,
            path,
            meta,
            size,
        });
        id
    }

    /// Queues the header of a file resumed at `offset`: the driver then
    /// sends bytes `offset..size` and a `FileEnd` whose crc covers the
    /// whole file.
    pub fn send_file_from(&mut self, path: WirePath, meta: Meta, size: u64, offset: u64) -> u32 {
        let id = self.id();
        self.push(&Frame::FileFrom {
            id,
            path,
            meta,
            size,
            offset: offset.min(size),
        });
        id
    }

    /// Ends a file body.
    pub fn send_file_end(&mut self, id: u32, crc: u32, ok: bool) {
        self.push(&Frame::FileEnd { id, crc, ok });
    }

    /// Manifests sent and not yet answered.
    #[must_use]
    pub fn manifests_in_flight(&self) -> usize {
        self.manifests.len()
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
        let offset = self.offer.map_or(0, |(_, size)| offset.min(size));
        self.wanted = Some(offset);
        self.push(&Frame::Want { id, offset });
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

    /// Asks the server to check the stored files under `path` against
    /// their recorded crc32c.
    pub fn send_verify(&mut self, path: WirePath) -> u32 {
        let id = self.id();
        self.streams.push_back(Pending::Verify(id));
        self.push(&Frame::Verify { id, path });
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
    pub fn handle_input(&mut self, buf: &[u8]) -> usize {
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
                    self.broken(format!("malformed frame from server: {e}"));
                    break;
                }
            }
        }
        used
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
            self.broken("connection closed by the server".into());
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

    /// `n` bytes were sent.
    pub fn consume_transmit(&mut self, n: usize) {
        self.sent_upto = (self.sent_upto + n).min(self.out.len());
        if self.sent_upto == self.out.len() {
            self.out.clear();
            self.sent_upto = 0;
        }
    }

    /// `Some(size)` while the next bytes are a file body.
    #[must_use]
    pub fn wants_body(&self) -> Option<u64> {
        match self.state {
            State::Body { size } => Some(size),
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
                self.body_owed = matches!(f, Frame::File { .. } | Frame::FileFrom { .. });
            }
        }
    }

    /// A restored file header: the body carries `size - offset` bytes.
    fn file(&mut self, id: u32, path: WirePath, meta: Meta, size: u64, offset: u64) {
        let body = size.saturating_sub(offset);
        self.state = if body == 0 {
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
        });
    }

    fn broken(&mut self, msg: String) {
        if self.error.is_none() {
            self.error = Some(msg);
        }
        self.state = State::Closed;
    }

    /// With a secret, the server must prove it knows it too: otherwise
    /// anyone could pose as the server and collect the backup.
    fn server_proof_problem(&self, flags: u32, proof: &[u8]) -> Option<String> {
        let auth = self.auth.as_ref()?;
        let Some(ns) = self.challenge.as_ref() else {
            return Some(format!(
                "authentication failed for {}: the server did not authenticate itself (does it run without --secrets?)",
                self.name
            ));
        };
        if flags & proto::WELCOME_AUTHENTICATED == 0
            || !auth.key.is_server_proof(proof, &self.name, &auth.nonce, ns)
        {
            return Some(format!(
                "authentication failed for {}: the server does not know the secret (not the server you meant?)",
                self.name
            ));
        }
        None
    }

    /// True when the client was started without a secret.
    pub fn has_secret(&self) -> bool {
        self.auth.is_some()
    }

    fn current_restore(&self, id: u32) -> bool {
        self.streams.front() == Some(&Pending::Restore(id))
    }

    fn handle_frame(&mut self, f: Frame) {
        if let Frame::Error { code, message } = f {
            self.error = Some(message.clone());
            self.state = State::Closed;
            self.events.push_back(Event::Refused { code, message });
            return;
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
                },
            ) => {
                let known = proto::WELCOME_READ_ONLY | proto::WELCOME_AUTHENTICATED;
                if version != proto::VERSION || flags & !known != 0 {
                    self.broken(format!("server speaks protocol version {version} with flags {flags:#x}; this client speaks version {}", proto::VERSION));
                } else if let Some(problem) = self.server_proof_problem(flags, &proof) {
                    self.broken(problem);
                } else {
                    self.state = State::Ready;
                    self.events.push_back(Event::Welcome {
                        read_only: flags & proto::WELCOME_READ_ONLY != 0,
                    });
                }
            }
            (State::AwaitWelcome, f) => {
                self.broken(format!("expected welcome, got frame kind {}", f.kind()))
            }
            (State::AwaitFileEnd, Frame::FileEnd { id, crc, ok }) if self.current_restore(id) => {
                self.state = State::Ready;
                self.events.push_back(Event::FileEnd { id, crc, ok });
            }
            (State::AwaitFileEnd, f) => {
                self.broken(format!("expected file end, got frame kind {}", f.kind()))
            }
            (State::Ready, Frame::Failed { id, path, message }) => {
                if id >= self.next_id {
                    self.broken(format!("failure reported for unknown request {id}"));
                } else {
                    self.events.push_back(Event::Failed { id, path, message });
                }
            }
            (State::Ready, Frame::Need { id, bits, resume }) => match self.manifests.front() {
                Some(&(m, n))
                    if m == id
                        && bits.len() == n.div_ceil(8)
                        && resume.iter().all(|&(i, _)| (i as usize) < n) =>
                {
                    self.manifests.pop_front();
                    self.events.push_back(Event::Need { id, bits, resume });
                }
                _ => self.broken(format!("unexpected answer to manifest {id}")),
            },
            (State::Ready, Frame::Committed { id }) => {
                if self.commits.front() == Some(&id) {
                    self.commits.pop_front();
                    self.events.push_back(Event::Committed { id });
                } else {
                    self.broken(format!("unexpected commit confirmation {id}"));
                }
            }
            (State::Ready, Frame::ListEntry { id, item })
                if self.streams.front() == Some(&Pending::List(id)) =>
            {
                self.events.push_back(Event::ListEntry { id, item });
            }
            (State::Ready, Frame::Dir { id, path, meta }) if self.current_restore(id) => {
                self.events.push_back(Event::Dir { id, path, meta });
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
                Frame::File {
                    id,
                    path,
                    meta,
                    size,
                },
            ) if self.current_restore(id) => {
                self.file(id, path, meta, size, 0);
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
                self.offer = Some((id, size));
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
                },
            ) if self.current_restore(id)
                && self.offer == Some((id, size))
                && self.wanted.is_some_and(|w| w == offset) =>
            {
                self.offer = None;
                self.wanted = None;
                self.file(id, path, meta, size, offset);
            }
            (State::Ready, Frame::Done { id }) => match self.streams.front() {
                Some(Pending::List(p)) | Some(Pending::Restore(p)) if *p == id => {
                    self.streams.pop_front();
                    self.events.push_back(Event::Done { id });
                }
                _ => self.broken(format!("unexpected done for request {id}")),
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
                    self.broken(format!("unexpected verify result for request {id}"));
                }
            }
            (_, f) => self.broken(format!("unexpected frame kind {} from server", f.kind())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::testing::{bytes, meta, wp};
    use crate::proto::EntryKind;
    use crate::server::session::{Command, ServerSession, SessionConfig};
    use std::time::Instant;

    fn events(s: &mut ClientSession) -> Vec<Event> {
        std::iter::from_fn(|| s.poll_event()).collect()
    }

    /// A client and a server session wired together in memory. The test
    /// plays the server's shell: it answers commands as a store would.
    struct Pair {
        client: ClientSession,
        server: ServerSession,
        now: Instant,
        to_server: Vec<u8>,
        to_client: Vec<u8>,
        commands: Vec<Command>,
    }

    impl Pair {
        fn new() -> Pair {
            let now = Instant::now();
            Pair {
                client: ClientSession::new("box", None),
                server: ServerSession::new(SessionConfig::default(), now, [0; 32]),
                now,
                to_server: vec![],
                to_client: vec![],
                commands: vec![],
            }
        }

        /// Moves bytes both ways until nothing moves (bounded).
        fn drive(&mut self) {
            for _ in 0..100 {
                let c = self.client.poll_transmit().to_vec();
                self.client.consume_transmit(c.len());
                self.to_server.extend_from_slice(&c);
                let n = self.server.handle_input(self.now, &self.to_server);
                self.to_server.drain(..n);
                while let Some(cmd) = self.server.poll_command() {
                    if let Command::Commit { id } = cmd {
                        self.server.handle_committed(id);
                    }
                    self.commands.push(cmd);
                }
                let s = self.server.poll_transmit().to_vec();
                self.server.consume_transmit(s.len());
                self.to_client.extend_from_slice(&s);
                let m = self.client.handle_input(&self.to_client);
                self.to_client.drain(..m);
                if c.is_empty() && s.is_empty() && n == 0 && m == 0 {
                    return;
                }
            }
            panic!("did not settle");
        }
    }

    #[test]
    fn handshake_and_pipelined_backup_against_the_server_session() {
        let mut p = Pair::new();
        p.drive();
        assert_eq!(
            events(&mut p.client),
            vec![Event::Welcome { read_only: false }]
        );
        // Three entries and a commit, without waiting for any reply.
        p.client.send_dir(wp("a"), meta());
        p.client.send_symlink(wp("a/l"), b"t".to_vec(), meta());
        let f = p.client.send_file(wp("a/f"), meta(), 0);
        p.client.send_file_end(f, 0, true);
        let c = p.client.send_commit();
        assert_eq!(p.client.commits_in_flight(), 1);
        p.drive();
        assert_eq!(events(&mut p.client), vec![Event::Committed { id: c }]);
        assert_eq!(p.client.commits_in_flight(), 0);
        assert_eq!(p.commands.len(), 6, "{:?}", p.commands);
    }

    #[test]
    fn no_frame_goes_out_between_a_file_header_and_its_body() {
        let mut c = ClientSession::new("box", None);
        c.handle_input(&bytes(&[Frame::Welcome {
            version: 1,
            flags: 0,
            proof: vec![],
        }]));
        let hello_len = c.poll_transmit().len();
        c.consume_transmit(hello_len);
        let id = c.send_file(wp("f"), meta(), 3);
        let header = c.poll_transmit().to_vec();
        // Queued while the body is owed: held back.
        c.send_manifest(vec![]);
        c.send_commit();
        assert_eq!(c.poll_transmit(), &header[..]);
        c.consume_transmit(header.len());
        // (the driver sends the 3 body bytes here)
        c.send_file_end(id, 7, true);
        let mut out = Vec::new();
        let rest = c.poll_transmit().to_vec();
        let mut off = 0;
        while let Ok(Decoded::Frame(f, n)) = codec::decode(&rest[off..]) {
            out.push(f.kind());
            off += n;
        }
        assert_eq!(
            out,
            vec![13, 24, 14],
            "FileEnd, then the held Manifest and Commit"
        );
    }

    #[test]
    fn restore_stream_with_body() {
        let mut c = ClientSession::new("box", None);
        let _ = c.handle_input(&bytes(&[Frame::Welcome {
            version: 1,
            flags: 1,
            proof: vec![],
        }]));
        assert_eq!(events(&mut c), vec![Event::Welcome { read_only: true }]);
        let id = c.send_restore(wp("x"));
        let mut b = bytes(&[
            Frame::Dir {
                id,
                path: WirePath::root(),
                meta: meta(),
            },
            Frame::File {
                id,
                path: wp("f"),
                meta: meta(),
                size: 3,
            },
        ]);
        let header_len = b.len();
        b.extend_from_slice(b"abc");
        let n = c.handle_input(&b);
        assert_eq!(n, header_len);
        assert_eq!(c.wants_body(), Some(3));
        c.handle_body_done();
        let rest = bytes(&[
            Frame::FileEnd {
                id,
                crc: 9,
                ok: true,
            },
            Frame::Done { id },
        ]);
        assert_eq!(c.handle_input(&rest), rest.len());
        let ev = events(&mut c);
        assert_eq!(ev.len(), 4);
        assert!(matches!(ev[3], Event::Done { .. }));
        assert!(c.error().is_none());
    }

    #[test]
    fn hostile_server_frames_end_the_session() {
        // Restore entries nobody asked for.
        let mut c = ClientSession::new("box", None);
        c.handle_input(&bytes(&[
            Frame::Welcome {
                version: 1,
                flags: 0,
                proof: vec![],
            },
            Frame::File {
                id: 1,
                path: wp("x"),
                meta: meta(),
                size: 1,
            },
        ]));
        assert!(c.is_closed());
        // A commit confirmation for a commit never sent.
        let mut c = ClientSession::new("box", None);
        c.handle_input(&bytes(&[
            Frame::Welcome {
                version: 1,
                flags: 0,
                proof: vec![],
            },
            Frame::Committed { id: 3 },
        ]));
        assert!(c.is_closed());
        // Garbage.
        let mut c = ClientSession::new("box", None);
        c.handle_input(b"\xff\xff\xff\xff\xff\xff");
        assert!(c.is_closed());
        assert!(c.error().unwrap().contains("malformed"));
        // An error frame is reported as a refusal.
        let mut c = ClientSession::new("box", None);
        c.handle_input(&bytes(&[Frame::Error {
            code: ErrorCode::Busy,
            message: "server busy (1 clients connected)".into(),
        }]));
        assert!(matches!(
            &events(&mut c)[..],
            [Event::Refused {
                code: ErrorCode::Busy,
                ..
            }]
        ));
    }

    #[test]
    fn listing() {
        let mut c = ClientSession::new("box", None);
        c.handle_input(&bytes(&[Frame::Welcome {
            version: 1,
            flags: 0,
            proof: vec![],
        }]));
        let id = c.send_list(WirePath::root());
        let item = ListItem {
            kind: EntryKind::Dir,
            name: b"home".to_vec(),
            meta: meta(),
            size: 0,
            target: vec![],
        };
        c.handle_input(&bytes(&[
            Frame::ListEntry {
                id,
                item: item.clone(),
            },
            Frame::Done { id },
        ]));
        assert_eq!(
            events(&mut c)[1..],
            [Event::ListEntry { id, item }, Event::Done { id }]
        );
    }

    #[test]
    fn verify_progress_and_result_against_the_server_session() {
        let mut p = Pair::new();
        p.drive();
        events(&mut p.client);
        let id = p.client.send_verify(WirePath::root());
        p.drive();
        assert_eq!(
            p.commands.last(),
            Some(&Command::Verify {
                id,
                path: WirePath::root()
            })
        );
        p.server.send_progress(id, 1, 10);
        p.server
            .handle_failed(id, wp("x"), "content changed".into());
        p.server.send_verified(
            id,
            crate::server::session::VerifyCounts {
                files: 2,
                bytes: 20,
                damaged: 1,
                unchecked: 0,
            },
        );
        p.drive();
        let ev = events(&mut p.client);
        assert!(
            matches!(
                ev[..],
                [
                    Event::Progress {
                        files: 1,
                        bytes: 10,
                        ..
                    },
                    Event::Failed { .. },
                    Event::Verified {
                        files: 2,
                        damaged: 1,
                        ..
                    }
                ]
            ),
            "{ev:?}"
        );
        // Progress for no verify in flight is a protocol error.
        p.server.send_progress(id, 1, 1);
        p.drive();
        assert!(p.client.is_closed());
    }
}
