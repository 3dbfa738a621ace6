//! One connection's protocol state on the server, as a pure state machine.
//!
//! Inputs (`handle_*`): bytes from the peer, the end of a body, completions
//! of commands, the clock. Outputs (`poll_*`): [`Command`]s for the I/O
//! shell to carry out in order, bytes to send, and the next deadline. It
//! never touches a socket or a file and never reads the clock.
//!
//! Driving it (the run-loop invariant): after every input, drain
//! [`ServerSession::poll_command`] and carry each command out (reporting back
//! through `handle_failed`, `handle_committed`, `send_*`), then write out
//! [`ServerSession::poll_transmit`], then close if [`ServerSession::is_closing`]
//! and nothing is left to send, then arm a timer for
//! [`ServerSession::poll_timeout`]. While [`ServerSession::wants_body`] is
//! `Some(n)`, the next `n` bytes of the stream are a file body that the shell
//! moves itself (splice) and then reports with `handle_body_done`.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use std::sync::Arc;

use crate::auth::Secrets;
use crate::proto::{self, codec, Decoded, ErrorCode, Frame, ListItem, Meta, WirePath};

/// Output is not allowed to grow past this before input is paused.
const MAX_OUTPUT: usize = 256 * 1024;

/// Per-connection settings from the server's options.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// Refuse every write.
    pub read_only: bool,
    /// Close a connection silent for this long (`None`: never).
    pub idle_timeout: Option<Duration>,
    /// Close a connection that has not finished its handshake within this.
    pub hello_timeout: Duration,
    /// `--secrets`: every client must prove it knows its name's secret.
    pub secrets: Option<Arc<Secrets>>,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            read_only: false,
            idle_timeout: Some(Duration::from_secs(300)),
            hello_timeout: Duration::from_secs(5),
            secrets: None,
        }
    }
}

/// Work for the I/O shell, in the order it must be done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Open (creating it if needed) the client's namespace directory.
    OpenNamespace {
        /// The validated client name.
        name: String,
    },
    /// Make `path` a directory; its meta is applied at the next commit.
    Mkdir {
        /// Request id.
        id: u32,
        /// Path beneath the namespace.
        path: WirePath,
        /// Mode and mtime.
        meta: Meta,
    },
    /// Stage a symlink.
    Symlink {
        /// Request id.
        id: u32,
        /// Path beneath the namespace.
        path: WirePath,
        /// Link target, stored verbatim.
        target: Vec<u8>,
        /// Mtime (mode ignored).
        meta: Meta,
    },
    /// Create the temporary file for a body of `size` bytes that follows.
    BeginFile {
        /// Request id.
        id: u32,
        /// Path beneath the namespace.
        path: WirePath,
        /// Mode and mtime.
        meta: Meta,
        /// Size of the whole file.
        size: u64,
        /// The body starts here: the store keeps bytes `0..offset` from an
        /// interrupted transfer (0: a fresh transfer).
        offset: u64,
    },
    /// The body is complete: keep the file if the sender says it is good and
    /// the received bytes have crc32c `crc`, else discard it.
    EndFile {
        /// Request id.
        id: u32,
        /// Path beneath the namespace.
        path: WirePath,
        /// The sender's crc32c.
        crc: u32,
        /// The sender's status.
        ok: bool,
    },
    /// Sync, rename staged entries into place, sync; then `handle_committed`.
    Commit {
        /// Request id.
        id: u32,
    },
    /// Send the listing of `path` (`send_list_entry`, then `send_done`).
    List {
        /// Request id.
        id: u32,
        /// Path beneath the namespace.
        path: WirePath,
    },
    /// Send the tree at `path` (`send_entry`, bodies, `send_file_end`, then
    /// `send_done`).
    Restore {
        /// Request id.
        id: u32,
        /// Path beneath the namespace.
        path: WirePath,
    },
    /// Compare the entries with the store; answer with `handle_need`.
    Check {
        /// Request id of the `Manifest`.
        id: u32,
        /// What the client has.
        entries: Vec<crate::proto::ManifestEntry>,
    },
    /// Send the offered file of the restore `id` from `offset` on
    /// (`send_entry` with `FileFrom`, the body, `send_file_end`).
    SendFrom {
        /// The `Restore` request.
        id: u32,
        /// Bytes the client already holds.
        offset: u64,
    },
    /// Re-read the stored files under `path` and compare each with its
    /// recorded crc32c (`handle_failed` for each damaged one, then
    /// `send_verified`). Changes nothing.
    Verify {
        /// Request id.
        id: u32,
        /// Path beneath the namespace.
        path: WirePath,
    },
    /// Drop everything staged and not committed (the connection is ending).
    Abort,
}

/// What a `Verify` found, for its `Verified` answer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VerifyCounts {
    /// Files read.
    pub files: u64,
    /// Bytes read.
    pub bytes: u64,
    /// Files that no longer match their crc32c, or could not be read.
    pub damaged: u64,
    /// Files with no recorded crc32c.
    pub unchecked: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    AwaitHello,
    /// `Challenge` sent; the client's `Proof` must come next.
    AwaitProof {
        name: String,
        client_nonce: Vec<u8>,
    },
    Ready,
    /// The next `remaining` bytes are the body of file `id`.
    Body {
        id: u32,
        path: WirePath,
        size: u64,
        accepted: bool,
    },
    /// A body ended; its `FileEnd` must come next.
    AwaitFileEnd {
        id: u32,
        path: WirePath,
        accepted: bool,
    },
    /// The shell is streaming the answer to a `List` or `Restore`.
    Streaming {
        id: u32,
    },
    /// An `Error` was queued; flush and close.
    Closing,
}

/// The server side of one connection.
pub struct ServerSession {
    config: SessionConfig,
    state: State,
    name: Option<String>,
    out: Vec<u8>,
    sent_upto: usize,
    commands: VecDeque<Command>,
    last_id: Option<u32>,
    uncommitted: u32,
    uncommitted_bytes: usize,
    deadline: Option<Instant>,
    last_activity: Instant,
    error: Option<String>,
    /// A restore's `Offer` (id, size) waiting for the client's `Want`.
    offer: Option<(u32, u64)>,
    /// This connection's challenge, sent when the server has secrets.
    nonce: [u8; proto::NONCE_LEN],
    /// A failed authentication: the name tried and why (for the log only;
    /// the client learns nothing but "failed").
    auth_failure: Option<(String, &'static str)>,
}

impl ServerSession {
    /// A session for a connection accepted at `now`. `nonce` must be fresh
    /// random bytes when the config has secrets: it is this connection's
    /// challenge.
    pub fn new(
        config: SessionConfig,
        now: Instant,
        nonce: [u8; proto::NONCE_LEN],
    ) -> ServerSession {
        let deadline = now.checked_add(config.hello_timeout);
        ServerSession {
            config,
            state: State::AwaitHello,
            name: None,
            out: Vec::new(),
            sent_upto: 0,
            commands: VecDeque::new(),
            last_id: None,
            uncommitted: 0,
            uncommitted_bytes: 0,
            deadline,
            last_activity: now,
            error: None,
            offer: None,
            nonce,
            auth_failure: None,
        }
    }

    /// A session that only tells the peer the server is full, then closes.
    pub fn busy(config: SessionConfig, now: Instant, clients: usize) -> ServerSession {
        let mut s = ServerSession::new(config, now, [0; proto::NONCE_LEN]);
        s.fail(
            ErrorCode::Busy,
            format!("server busy ({clients} clients connected)"),
        );
        s
    }

    /// The client's name, once its `Hello` was accepted.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// The name and the cause of a failed authentication, for the log.
    pub fn auth_failure(&self) -> Option<(&str, &'static str)> {
        self.auth_failure.as_ref().map(|(n, w)| (n.as_str(), *w))
    }

    /// Why the session is closing, if it is because of an error.
    pub fn error(&self) -> Option<&str> {
        self.error.as_deref()
    }

    // ---- inputs -------------------------------------------------------

    /// Parses frames from `buf` and returns how many bytes it used. Stops
    /// early at a file body, while a listing or restore is being streamed,
    /// when closing, or when too much output is waiting.
    pub fn handle_input(&mut self, now: Instant, buf: &[u8]) -> usize {
        if !buf.is_empty() {
            self.last_activity = now;
        }
        let mut used = 0;
        while self.wants_input() {
            let rest = &buf[used..];
            match codec::decode(rest) {
                Ok(Decoded::Partial) => break,
                Ok(Decoded::Frame(frame, n)) => {
                    used += n;
                    self.handle_frame(frame);
                }
                Err(e) => {
                    self.fail(ErrorCode::Malformed, format!("malformed frame: {e}"));
                    break;
                }
            }
        }
        used
    }

    /// The shell moved the whole body announced by the last `File`.
    pub fn handle_body_done(&mut self, now: Instant) {
        self.last_activity = now;
        if let State::Body {
            id, path, accepted, ..
        } = std::mem::replace(&mut self.state, State::Ready)
        {
            self.state = State::AwaitFileEnd { id, path, accepted };
        }
    }

    /// The connection saw traffic either way (body bytes and writes count).
    pub fn handle_activity(&mut self, now: Instant) {
        self.last_activity = now;
    }

    /// A command for request `id` failed; tell the client and go on.
    pub fn handle_failed(&mut self, id: u32, path: WirePath, message: String) {
        self.push(&Frame::Failed { id, path, message });
    }

    /// The namespace could not be opened: end the connection.
    pub fn handle_namespace_failed(&mut self, message: String) {
        self.fail(ErrorCode::Internal, message);
    }

    /// The answer to the `Manifest` with this id: which entries are needed,
    /// and which of them can resume from an offset.
    pub fn handle_need(&mut self, id: u32, bits: Vec<u8>, resume: Vec<(u32, u64)>) {
        self.push(&Frame::Need { id, bits, resume });
    }

    /// The `Commit` with this id is done.
    pub fn handle_committed(&mut self, id: u32) {
        self.push(&Frame::Committed { id });
    }

    /// The clock reached [`Self::poll_timeout`] (or later).
    pub fn handle_timeout(&mut self, now: Instant) {
        if matches!(self.state, State::Closing) {
            return;
        }
        if matches!(self.state, State::AwaitHello | State::AwaitProof { .. }) {
            if self.deadline.is_some_and(|d| now >= d) {
                self.fail(
                    ErrorCode::Timeout,
                    "no hello within the handshake deadline".into(),
                );
            }
            return;
        }
        if let Some(idle) = self.config.idle_timeout {
            // Activity is traffic either way: a client that stops reading a
            // restore is as idle as one that stops sending.
            if self
                .last_activity
                .checked_add(idle)
                .is_some_and(|t| now >= t)
            {
                self.fail(
                    ErrorCode::Timeout,
                    format!("idle timeout ({}s)", idle.as_secs()),
                );
            }
        }
    }

    /// The server is shutting down.
    pub fn handle_shutdown(&mut self) {
        if !matches!(self.state, State::Closing) {
            self.fail(ErrorCode::Shutdown, "server shutting down".into());
        }
    }

    // ---- answers the shell streams on the session's behalf --------------

    /// One entry of a `List` answer.
    pub fn send_list_entry(&mut self, id: u32, item: ListItem) {
        self.push(&Frame::ListEntry { id, item });
    }

    /// The header of one restored entry (`Dir`, `Symlink` or `File`). After a
    /// `File`, the shell sends exactly `size` body bytes itself and then
    /// calls [`Self::send_file_end`].
    pub fn send_entry(&mut self, frame: &Frame) {
        self.push(frame);
    }

    /// Offers a large restored file; the restore pauses until the client's
    /// `Want` turns into [`Command::SendFrom`].
    pub fn send_offer(&mut self, id: u32, path: WirePath, meta: Meta, size: u64) {
        self.push(&Frame::Offer {
            id,
            path,
            meta,
            size,
        });
        self.offer = Some((id, size));
    }

    /// True while a restore waits for the client's answer to an `Offer`.
    #[must_use]
    pub fn is_offering(&self) -> bool {
        self.offer.is_some()
    }

    /// Ends a restored file body.
    pub fn send_file_end(&mut self, id: u32, crc: u32, ok: bool) {
        self.push(&Frame::FileEnd { id, crc, ok });
    }

    /// How far the `Verify` with this id got.
    pub fn send_progress(&mut self, id: u32, files: u64, bytes: u64) {
        self.push(&Frame::Progress { id, files, bytes });
    }

    /// The `Verify` with this id is complete.
    pub fn send_verified(&mut self, id: u32, c: VerifyCounts) {
        self.push(&Frame::Verified {
            id,
            files: c.files,
            bytes: c.bytes,
            damaged: c.damaged,
            unchecked: c.unchecked,
        });
        if self.state == (State::Streaming { id }) {
            self.state = State::Ready;
        }
    }

    /// The `List` or `Restore` with this id is complete.
    pub fn send_done(&mut self, id: u32) {
        self.push(&Frame::Done { id });
        if self.state == (State::Streaming { id }) {
            self.state = State::Ready;
        }
    }

    // ---- outputs ------------------------------------------------------

    /// The next command for the shell.
    #[must_use]
    pub fn poll_command(&mut self) -> Option<Command> {
        self.commands.pop_front()
    }

    /// Bytes waiting to be sent.
    #[must_use]
    pub fn poll_transmit(&self) -> &[u8] {
        &self.out[self.sent_upto..]
    }

    /// `n` bytes of [`Self::poll_transmit`] were sent.
    pub fn consume_transmit(&mut self, n: usize) {
        self.sent_upto = (self.sent_upto + n).min(self.out.len());
        if self.sent_upto == self.out.len() {
            self.out.clear();
            self.sent_upto = 0;
        } else if self.sent_upto > MAX_OUTPUT {
            self.out.drain(..self.sent_upto);
            self.sent_upto = 0;
        }
    }

    /// When [`Self::handle_timeout`] must be called next.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.state {
            State::Closing => None,
            State::AwaitHello | State::AwaitProof { .. } => self.deadline,
            _ => self
                .config
                .idle_timeout
                .and_then(|d| self.last_activity.checked_add(d)),
        }
    }

    /// `Some(size)` while the next bytes of the stream are a file body.
    #[must_use]
    pub fn wants_body(&self) -> Option<u64> {
        match self.state {
            State::Body { size, .. } => Some(size),
            _ => None,
        }
    }

    /// True when frames may be parsed now.
    #[must_use]
    pub fn wants_input(&self) -> bool {
        (matches!(
            self.state,
            State::AwaitHello
                | State::AwaitProof { .. }
                | State::Ready
                | State::AwaitFileEnd { .. }
        ) || self.offer.is_some() && matches!(self.state, State::Streaming { .. }))
            && self.out.len() - self.sent_upto < MAX_OUTPUT
    }

    /// True once the connection must be closed after flushing output.
    #[must_use]
    pub fn is_closing(&self) -> bool {
        matches!(self.state, State::Closing)
    }

    /// True while the shell streams a `List` or `Restore` answer.
    #[must_use]
    pub fn is_streaming(&self) -> bool {
        matches!(self.state, State::Streaming { .. })
    }

    // ---- internals ----------------------------------------------------

    fn push(&mut self, frame: &Frame) {
        // The `Error` is the last frame: an answer the shell completes
        // afterwards (a commit finishing on a worker after a shutdown
        // began, say) is dropped.
        if !self.is_closing() {
            codec::encode(frame, &mut self.out);
        }
    }

    /// Queues an `Error` and ends the session ("last gasp"); only the first
    /// failure counts.
    fn fail(&mut self, code: ErrorCode, message: String) {
        if self.is_closing() {
            return;
        }
        self.push(&Frame::Error {
            code,
            message: message.clone(),
        });
        self.error = Some(message);
        // Requests already queued are not carried out: nothing may follow
        // the error (regression: a List pipelined behind a Hello whose
        // namespace could not be opened was answered after the Error).
        // A namespace never opened has nothing to abort (regression, found
        // by fuzz target server_session: an Abort came out alone when a
        // Hello and a malformed frame arrived together).
        let never_opened = self
            .commands
            .iter()
            .any(|c| matches!(c, Command::OpenNamespace { .. }));
        self.commands.clear();
        if self.name.is_some() && !never_opened {
            self.commands.push_back(Command::Abort);
        }
        self.state = State::Closing;
    }

    /// Accepts the client as `name`; `proof` is the server's own proof
    /// (empty without secrets).
    fn welcome(&mut self, name: String, proof: Vec<u8>) {
        self.name = Some(name.clone());
        self.state = State::Ready;
        self.deadline = None;
        self.commands.push_back(Command::OpenNamespace { name });
        let mut flags = 0;
        if self.config.read_only {
            flags |= proto::WELCOME_READ_ONLY;
        }
        if !proof.is_empty() {
            flags |= proto::WELCOME_AUTHENTICATED;
        }
        self.push(&Frame::Welcome {
            version: proto::VERSION,
            flags,
            proof,
        });
    }

    /// Checks the client's `Proof`. Every failure looks the same to the
    /// client; the log learns which it was.
    fn check_proof(&mut self, name: String, client_nonce: Vec<u8>, mac: &[u8]) {
        let Some(secrets) = self.config.secrets.clone() else {
            return;
        };
        let (key, known) = secrets.key(&name);
        // The MAC is computed even for a malformed nonce or an unknown name,
        // so the work done does not tell them apart.
        let good = key.is_client_proof(mac, &name, &client_nonce, &self.nonce);
        let why = if !known {
            Some("unknown name")
        } else if mac.is_empty() {
            Some("the client has no secret")
        } else if !crate::auth::is_nonce(&client_nonce) {
            Some("bad client nonce")
        } else if !good {
            Some("wrong secret")
        } else {
            None
        };
        match why {
            Some(why) => {
                self.fail(ErrorCode::Auth, format!("authentication failed for {name}"));
                self.auth_failure = Some((name, why));
            }
            None => {
                let proof = key.server_proof(&name, &client_nonce, &self.nonce);
                self.welcome(name, proof.to_vec());
            }
        }
    }

    /// Starts the streamed answer to request `id` (`List`, `Restore`,
    /// `Verify`): true when the shell is to produce it. A reserved path is
    /// refused here, and the answer ended at once with `end`.
    fn start_stream(&mut self, id: u32, path: &WirePath, end: fn(&mut Self, u32)) -> bool {
        if !self.check_id(id) {
            return false;
        }
        if self.refuse_reserved(id, path) {
            end(self, id);
            return false;
        }
        self.state = State::Streaming { id };
        true
    }

    fn refuse_done(&mut self, id: u32) {
        self.push(&Frame::Done { id });
    }

    fn refuse_verified(&mut self, id: u32) {
        self.send_verified(id, VerifyCounts::default());
    }

    fn handle_frame(&mut self, frame: Frame) {
        match (&self.state, frame) {
            (
                State::AwaitHello,
                Frame::Hello {
                    version,
                    name,
                    flags,
                    nonce,
                },
            ) => {
                if version != proto::VERSION {
                    self.fail(
                        ErrorCode::Version,
                        format!(
                            "protocol version {version} not supported (this server speaks {})",
                            proto::VERSION
                        ),
                    );
                } else if flags != 0 {
                    self.fail(
                        ErrorCode::Version,
                        format!("unknown hello flags {flags:#x}"),
                    );
                } else if !proto::is_valid_client_name(&name) {
                    self.fail(
                        ErrorCode::BadName,
                        format!(
                            "invalid client name '{}'",
                            proto::path::escape(name.as_bytes())
                        ),
                    );
                } else if self.config.secrets.is_some() {
                    self.push(&Frame::Challenge {
                        nonce: self.nonce.to_vec(),
                    });
                    self.state = State::AwaitProof {
                        name,
                        client_nonce: nonce,
                    };
                } else {
                    self.welcome(name, Vec::new());
                }
            }
            (State::AwaitProof { .. }, Frame::Proof { mac }) => {
                let State::AwaitProof { name, client_nonce } =
                    std::mem::replace(&mut self.state, State::Ready)
                else {
                    return;
                };
                self.check_proof(name, client_nonce, &mac);
            }
            (State::AwaitProof { .. }, f) => self.fail(
                ErrorCode::Unexpected,
                format!("expected proof, got frame kind {}", f.kind()),
            ),
            (State::AwaitHello, f) => self.fail(
                ErrorCode::Unexpected,
                format!("expected hello, got frame kind {}", f.kind()),
            ),
            (State::AwaitFileEnd { id: want, .. }, Frame::FileEnd { id, crc, ok }) => {
                let want = *want;
                let State::AwaitFileEnd { path, accepted, .. } =
                    std::mem::replace(&mut self.state, State::Ready)
                else {
                    return;
                };
                if id != want {
                    self.fail(
                        ErrorCode::Unexpected,
                        format!("file end for id {id}, expected {want}"),
                    );
                } else if accepted {
                    self.commands
                        .push_back(Command::EndFile { id, path, crc, ok });
                }
            }
            (State::AwaitFileEnd { .. }, f) => {
                self.fail(
                    ErrorCode::Unexpected,
                    format!("expected file end, got frame kind {}", f.kind()),
                );
            }
            (State::Ready, frame) => self.handle_request(frame),
            (State::Streaming { .. }, Frame::Want { id, offset }) => match self.offer {
                Some((want, size)) if want == id && offset <= size => {
                    self.offer = None;
                    self.commands.push_back(Command::SendFrom { id, offset });
                }
                _ => self.fail(
                    ErrorCode::Unexpected,
                    format!("unexpected want for request {id}"),
                ),
            },
            // wants_input() keeps frames from arriving in the other states.
            (_, f) => self.fail(
                ErrorCode::Unexpected,
                format!("unexpected frame kind {}", f.kind()),
            ),
        }
    }

    fn check_id(&mut self, id: u32) -> bool {
        if self.last_id.is_some_and(|last| id <= last) {
            self.fail(
                ErrorCode::Unexpected,
                format!("request id {id} does not increase"),
            );
            return false;
        }
        self.last_id = Some(id);
        true
    }

    /// Counts an entry toward the batch limits; false (and closing) past
    /// them. The shell keeps every staged path until the commit, so both
    /// the count and the bytes of paths are bounded.
    fn count_entry(&mut self, path: &WirePath) -> bool {
        self.uncommitted += 1;
        self.uncommitted_bytes += path.as_bytes().len();
        if self.uncommitted > proto::MAX_BATCH
            || self.uncommitted_bytes > proto::MAX_BATCH_PATH_BYTES
        {
            self.fail(
                ErrorCode::Unexpected,
                format!(
                    "more than {} entries or {} bytes of paths without a commit",
                    proto::MAX_BATCH,
                    proto::MAX_BATCH_PATH_BYTES
                ),
            );
            return false;
        }
        true
    }

    /// Refuses (with `Failed`) a write on a read-only server or to a name
    /// reserved for temporary files. True when refused.
    fn refuse_write(&mut self, id: u32, path: &WirePath) -> bool {
        if self.config.read_only {
            self.handle_failed(id, path.clone(), "server is read-only".into());
            return true;
        }
        self.refuse_reserved(id, path)
    }

    fn refuse_reserved(&mut self, id: u32, path: &WirePath) -> bool {
        if path.is_reserved() {
            self.handle_failed(
                id,
                path.clone(),
                "names starting with .rsb-tmp. are reserved".into(),
            );
            return true;
        }
        false
    }

    /// A file header: `size` bytes in all, the body carrying `offset..size`.
    fn handle_file(&mut self, id: u32, path: WirePath, meta: Meta, size: u64, offset: u64) {
        if !(self.check_id(id) && self.count_entry(&path)) {
            return;
        }
        let mut accepted = !self.refuse_write(id, &path);
        if accepted && path.is_root() {
            self.handle_failed(
                id,
                path.clone(),
                "the namespace root cannot be a file".into(),
            );
            accepted = false;
        }
        if accepted {
            self.commands.push_back(Command::BeginFile {
                id,
                path: path.clone(),
                meta,
                size,
                offset,
            });
        }
        // The codec guarantees offset <= size.
        let body = size.saturating_sub(offset);
        self.state = State::Body {
            id,
            path,
            size: body,
            accepted,
        };
        if body == 0 {
            // Nothing to move: go straight to waiting for FileEnd.
            self.handle_body_done(self.last_activity);
        }
    }

    fn handle_request(&mut self, frame: Frame) {
        match frame {
            Frame::Dir { id, path, meta } => {
                if self.check_id(id) && self.count_entry(&path) && !self.refuse_write(id, &path) {
                    self.commands.push_back(Command::Mkdir { id, path, meta });
                }
            }
            Frame::Symlink {
                id,
                path,
                target,
                meta,
            } => {
                if !(self.check_id(id) && self.count_entry(&path)) || self.refuse_write(id, &path) {
                    return;
                }
                if path.is_root() {
                    self.handle_failed(id, path, "the namespace root cannot be a symlink".into());
                } else {
                    self.commands.push_back(Command::Symlink {
                        id,
                        path,
                        target,
                        meta,
                    });
                }
            }
            Frame::File {
                id,
                path,
                meta,
                size,
            } => self.handle_file(id, path, meta, size, 0),
            Frame::FileFrom {
                id,
                path,
                meta,
                size,
                offset,
            } => self.handle_file(id, path, meta, size, offset),
            Frame::Manifest { id, entries } => {
                if self.check_id(id) {
                    self.commands.push_back(Command::Check { id, entries });
                }
            }
            Frame::Commit { id } => {
                if self.check_id(id) {
                    self.uncommitted = 0;
                    self.uncommitted_bytes = 0;
                    self.commands.push_back(Command::Commit { id });
                }
            }
            Frame::List { id, path } => {
                if self.start_stream(id, &path, Self::refuse_done) {
                    self.commands.push_back(Command::List { id, path });
                }
            }
            Frame::Restore { id, path } => {
                if self.start_stream(id, &path, Self::refuse_done) {
                    self.commands.push_back(Command::Restore { id, path });
                }
            }
            Frame::Verify { id, path } => {
                if self.start_stream(id, &path, Self::refuse_verified) {
                    self.commands.push_back(Command::Verify { id, path });
                }
            }
            f => self.fail(
                ErrorCode::Unexpected,
                format!("frame kind {} is not a request", f.kind()),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::testing::{bytes, meta, wp};
    use crate::proto::EntryKind;

    fn hello(name: &str) -> Frame {
        Frame::Hello {
            version: proto::VERSION,
            name: name.into(),
            flags: 0,
            nonce: vec![],
        }
    }

    /// Decodes everything the session wants to send.
    fn sent(s: &mut ServerSession) -> Vec<Frame> {
        let mut out = Vec::new();
        let buf = s.poll_transmit().to_vec();
        s.consume_transmit(buf.len());
        let mut off = 0;
        while let Ok(Decoded::Frame(f, n)) = codec::decode(&buf[off..]) {
            out.push(f);
            off += n;
        }
        assert_eq!(off, buf.len());
        out
    }

    fn commands(s: &mut ServerSession) -> Vec<Command> {
        std::iter::from_fn(|| s.poll_command()).collect()
    }

    fn ready(now: Instant) -> ServerSession {
        let mut s = ServerSession::new(SessionConfig::default(), now, [0; 32]);
        let b = bytes(&[hello("laptop")]);
        assert_eq!(s.handle_input(now, &b), b.len());
        assert_eq!(
            commands(&mut s),
            vec![Command::OpenNamespace {
                name: "laptop".into()
            }]
        );
        assert!(matches!(
            sent(&mut s)[..],
            [Frame::Welcome {
                version: 1,
                flags: 0,
                ..
            }]
        ));
        s
    }

    #[test]
    fn handshake_then_pipelined_backup() {
        let now = Instant::now();
        let mut s = ready(now);
        let b = bytes(&[
            Frame::Dir {
                id: 1,
                path: wp("home"),
                meta: meta(),
            },
            Frame::Symlink {
                id: 2,
                path: wp("home/l"),
                target: b"x".to_vec(),
                meta: meta(),
            },
            Frame::File {
                id: 3,
                path: wp("home/f"),
                meta: meta(),
                size: 5,
            },
        ]);
        let mut all = b.clone();
        all.extend_from_slice(b"hello");
        let used = s.handle_input(now, &all);
        assert_eq!(used, b.len(), "stops at the body");
        assert_eq!(s.wants_body(), Some(5));
        assert!(!s.wants_input());
        let cmds = commands(&mut s);
        assert_eq!(cmds.len(), 3);
        assert!(matches!(
            &cmds[2],
            Command::BeginFile { id: 3, size: 5, .. }
        ));
        s.handle_body_done(now);
        let b = bytes(&[
            Frame::FileEnd {
                id: 3,
                crc: 7,
                ok: true,
            },
            Frame::Commit { id: 4 },
        ]);
        assert_eq!(s.handle_input(now, &b), b.len());
        assert_eq!(
            commands(&mut s),
            vec![
                Command::EndFile {
                    id: 3,
                    path: wp("home/f"),
                    crc: 7,
                    ok: true
                },
                Command::Commit { id: 4 }
            ]
        );
        s.handle_committed(4);
        assert_eq!(sent(&mut s), vec![Frame::Committed { id: 4 }]);
    }

    #[test]
    fn one_byte_at_a_time() {
        let now = Instant::now();
        let mut s = ServerSession::new(SessionConfig::default(), now, [0; 32]);
        let b = bytes(&[
            hello("a"),
            Frame::List {
                id: 1,
                path: WirePath::root(),
            },
        ]);
        let mut pending = Vec::new();
        for byte in b {
            pending.push(byte);
            let n = s.handle_input(now, &pending);
            pending.drain(..n);
        }
        assert!(pending.is_empty());
        assert_eq!(
            commands(&mut s),
            vec![
                Command::OpenNamespace { name: "a".into() },
                Command::List {
                    id: 1,
                    path: WirePath::root()
                }
            ]
        );
        assert!(s.is_streaming());
        s.send_list_entry(
            1,
            ListItem {
                kind: EntryKind::File,
                name: b"f".to_vec(),
                meta: meta(),
                size: 3,
                target: vec![],
            },
        );
        s.send_done(1);
        assert!(!s.is_streaming());
        let out = sent(&mut s);
        assert!(matches!(
            out[..],
            [
                Frame::Welcome { .. },
                Frame::ListEntry { id: 1, .. },
                Frame::Done { id: 1 }
            ]
        ));
    }

    #[test]
    fn garbage_gets_an_error_frame_and_closes() {
        let now = Instant::now();
        let mut s = ServerSession::new(SessionConfig::default(), now, [0; 32]);
        s.handle_input(now, b"GET / HTTP/1.1\r\n\r\n");
        assert!(s.is_closing());
        assert!(matches!(
            sent(&mut s)[..],
            [Frame::Error {
                code: ErrorCode::Malformed,
                ..
            }]
        ));
        assert!(commands(&mut s).is_empty());
    }

    #[test]
    fn request_before_hello_is_refused() {
        let now = Instant::now();
        let mut s = ServerSession::new(SessionConfig::default(), now, [0; 32]);
        s.handle_input(
            now,
            &bytes(&[Frame::List {
                id: 1,
                path: WirePath::root(),
            }]),
        );
        assert!(s.is_closing());
        assert!(matches!(
            sent(&mut s)[..],
            [Frame::Error {
                code: ErrorCode::Unexpected,
                ..
            }]
        ));
    }

    #[test]
    fn bad_names_versions_and_auth_are_refused() {
        let now = Instant::now();
        for (frame, code) in [
            (hello(".."), ErrorCode::BadName),
            (hello("a/b"), ErrorCode::BadName),
            (hello(""), ErrorCode::BadName),
            (
                Frame::Hello {
                    version: 2,
                    name: "a".into(),
                    flags: 0,
                    nonce: vec![],
                },
                ErrorCode::Version,
            ),
            (
                Frame::Hello {
                    version: 1,
                    name: "a".into(),
                    flags: 1,
                    nonce: vec![],
                },
                ErrorCode::Version,
            ),
        ] {
            let mut s = ServerSession::new(SessionConfig::default(), now, [0; 32]);
            s.handle_input(now, &bytes(&[frame]));
            assert!(s.is_closing());
            match &sent(&mut s)[..] {
                [Frame::Error { code: c, .. }] => assert_eq!(*c, code),
                other => panic!("{other:?}"),
            }
            assert!(commands(&mut s).is_empty());
        }
    }

    #[test]
    fn read_only_refuses_writes_but_still_skips_bodies() {
        let now = Instant::now();
        let mut s = ServerSession::new(
            SessionConfig {
                read_only: true,
                ..SessionConfig::default()
            },
            now,
            [0; 32],
        );
        s.handle_input(now, &bytes(&[hello("a")]));
        commands(&mut s);
        sent(&mut s);
        let b = bytes(&[Frame::File {
            id: 1,
            path: wp("f"),
            meta: meta(),
            size: 3,
        }]);
        s.handle_input(now, &b);
        assert_eq!(s.wants_body(), Some(3));
        s.handle_body_done(now);
        s.handle_input(
            now,
            &bytes(&[
                Frame::FileEnd {
                    id: 1,
                    crc: 0,
                    ok: true,
                },
                Frame::Dir {
                    id: 2,
                    path: wp("d"),
                    meta: meta(),
                },
            ]),
        );
        assert!(commands(&mut s).is_empty());
        let out = sent(&mut s);
        assert_eq!(out.len(), 2);
        assert!(out.iter().all(
            |f| matches!(f, Frame::Failed { message, .. } if message == "server is read-only")
        ));
    }

    #[test]
    fn ids_must_increase_and_file_end_must_match() {
        let now = Instant::now();
        let mut s = ready(now);
        s.handle_input(
            now,
            &bytes(&[Frame::Commit { id: 5 }, Frame::Commit { id: 5 }]),
        );
        assert!(s.is_closing());
        // The protocol error ends the session: the commit queued before it
        // is not carried out, and the batch is dropped.
        assert_eq!(commands(&mut s), vec![Command::Abort]);

        let mut s = ready(now);
        s.handle_input(
            now,
            &bytes(&[
                Frame::File {
                    id: 1,
                    path: wp("f"),
                    meta: meta(),
                    size: 0,
                },
                Frame::FileEnd {
                    id: 2,
                    crc: 0,
                    ok: true,
                },
            ]),
        );
        assert!(s.is_closing());
        let mut s = ready(now);
        s.handle_input(
            now,
            &bytes(&[
                Frame::File {
                    id: 1,
                    path: wp("f"),
                    meta: meta(),
                    size: 0,
                },
                Frame::Commit { id: 2 },
            ]),
        );
        assert!(s.is_closing());
    }

    #[test]
    fn nothing_is_sent_after_the_error() {
        // Found by fuzz target server_session: a commit queued before a
        // malformed frame was answered after the session's `Error`, and a
        // second failure queued a second `Error` and `Abort`.
        let now = Instant::now();
        let mut s = ready(now);
        let mut b = bytes(&[Frame::Commit { id: 1 }]);
        b.extend_from_slice(&[0xff; 5]);
        s.handle_input(now, &b);
        // The commit queued before the bad frame is dropped with the rest.
        assert_eq!(commands(&mut s), vec![Command::Abort]);
        s.handle_committed(1);
        s.handle_namespace_failed("cannot open namespace".into());
        assert!(matches!(
            sent(&mut s)[..],
            [Frame::Error {
                code: ErrorCode::Malformed,
                ..
            }]
        ));
        assert!(commands(&mut s).is_empty());
        assert!(s.error().is_some_and(|e| e.starts_with("malformed frame")));
    }

    #[test]
    fn batch_limit_is_enforced() {
        let now = Instant::now();
        let mut s = ready(now);
        let frames: Vec<Frame> = (1..=proto::MAX_BATCH + 1)
            .map(|id| Frame::Dir {
                id,
                path: wp("d"),
                meta: meta(),
            })
            .collect();
        s.handle_input(now, &bytes(&frames));
        assert!(s.is_closing());
    }

    #[test]
    fn batch_path_bytes_are_bounded() {
        let now = Instant::now();
        let mut s = ready(now);
        let long = "d/".repeat(1000) + "x";
        let n = proto::MAX_BATCH_PATH_BYTES / long.len() + 1;
        let frames: Vec<Frame> = (1..=n as u32)
            .map(|id| Frame::Dir {
                id,
                path: wp(&long),
                meta: meta(),
            })
            .collect();
        s.handle_input(now, &bytes(&frames));
        assert!(s.is_closing());
        // A commit in time resets the count.
        let mut s = ready(now);
        let half = n as u32 / 2;
        let mut frames: Vec<Frame> = (1..=half)
            .map(|id| Frame::Dir {
                id,
                path: wp(&long),
                meta: meta(),
            })
            .collect();
        frames.push(Frame::Commit { id: half + 1 });
        frames.extend((half + 2..=n as u32 + 1).map(|id| Frame::Dir {
            id,
            path: wp(&long),
            meta: meta(),
        }));
        s.handle_input(now, &bytes(&frames));
        assert!(!s.is_closing());
    }

    #[test]
    fn reserved_temporary_names_are_refused() {
        let now = Instant::now();
        let mut s = ready(now);
        let b = bytes(&[
            Frame::Dir {
                id: 1,
                path: wp("a/.rsb-tmp.1.2"),
                meta: meta(),
            },
            Frame::File {
                id: 2,
                path: wp(".rsb-tmp.x/f"),
                meta: meta(),
                size: 0,
            },
            Frame::FileEnd {
                id: 2,
                crc: 0,
                ok: true,
            },
            Frame::List {
                id: 3,
                path: wp(".rsb-tmp.y"),
            },
            Frame::Restore {
                id: 4,
                path: wp("b/.rsb-tmp.z"),
            },
        ]);
        assert_eq!(s.handle_input(now, &b), b.len());
        assert!(commands(&mut s).is_empty());
        let out = sent(&mut s);
        assert_eq!(
            out.iter()
                .filter(|f| matches!(f, Frame::Failed { .. }))
                .count(),
            4,
            "{out:?}"
        );
        assert!(!s.is_closing() && !s.is_streaming());
    }

    #[test]
    fn root_cannot_become_a_file_or_link() {
        let now = Instant::now();
        let mut s = ready(now);
        s.handle_input(
            now,
            &bytes(&[
                Frame::File {
                    id: 1,
                    path: WirePath::root(),
                    meta: meta(),
                    size: 0,
                },
                Frame::FileEnd {
                    id: 1,
                    crc: 0,
                    ok: true,
                },
            ]),
        );
        assert!(commands(&mut s).is_empty());
        assert!(matches!(sent(&mut s)[..], [Frame::Failed { id: 1, .. }]));
        assert!(!s.is_closing());
    }

    #[test]
    fn timeouts() {
        let t0 = Instant::now();
        let cfg = SessionConfig {
            idle_timeout: Some(Duration::from_secs(5)),
            hello_timeout: Duration::from_secs(2),
            ..SessionConfig::default()
        };
        let mut s = ServerSession::new(cfg.clone(), t0, [0; 32]);
        assert_eq!(s.poll_timeout(), Some(t0 + Duration::from_secs(2)));
        s.handle_timeout(t0 + Duration::from_secs(1));
        assert!(!s.is_closing());
        s.handle_timeout(t0 + Duration::from_secs(2));
        assert!(s.is_closing());

        let mut s = ServerSession::new(cfg, t0, [0; 32]);
        s.handle_input(t0, &bytes(&[hello("a")]));
        commands(&mut s);
        let t1 = t0 + Duration::from_secs(3);
        s.handle_input(t1, &bytes(&[Frame::Commit { id: 1 }]));
        assert_eq!(s.poll_timeout(), Some(t1 + Duration::from_secs(5)));
        s.handle_timeout(t1 + Duration::from_secs(4));
        assert!(!s.is_closing());
        s.handle_timeout(t1 + Duration::from_secs(5));
        assert!(s.is_closing());
        assert!(commands(&mut s).contains(&Command::Abort));
    }

    #[test]
    fn a_client_that_stops_reading_a_restore_times_out() {
        let t0 = Instant::now();
        let cfg = SessionConfig {
            idle_timeout: Some(Duration::from_secs(5)),
            ..SessionConfig::default()
        };
        let mut s = ServerSession::new(cfg, t0, [0; 32]);
        s.handle_input(
            t0,
            &bytes(&[
                hello("a"),
                Frame::Restore {
                    id: 1,
                    path: WirePath::root(),
                },
            ]),
        );
        assert!(s.is_streaming());
        // The shell reports each write that made progress.
        let t1 = t0 + Duration::from_secs(4);
        s.handle_activity(t1);
        s.handle_timeout(t1 + Duration::from_secs(4));
        assert!(!s.is_closing());
        s.handle_timeout(t1 + Duration::from_secs(5));
        assert!(s.is_closing());
    }

    #[test]
    fn busy_session_says_so_and_closes() {
        let mut s = ServerSession::busy(SessionConfig::default(), Instant::now(), 3);
        assert!(s.is_closing());
        match &sent(&mut s)[..] {
            [Frame::Error {
                code: ErrorCode::Busy,
                message,
            }] => assert_eq!(message, "server busy (3 clients connected)"),
            other => panic!("{other:?}"),
        }
    }

    fn with_secrets(now: Instant, nonce: [u8; 32]) -> ServerSession {
        let secrets = crate::auth::Secrets::parse(b"laptop:pw\n", [7; 32]).unwrap();
        ServerSession::new(
            SessionConfig {
                secrets: Some(Arc::new(secrets)),
                ..SessionConfig::default()
            },
            now,
            nonce,
        )
    }

    fn hello_nonce(name: &str, nonce: &[u8]) -> Frame {
        Frame::Hello {
            version: 1,
            name: name.into(),
            flags: 0,
            nonce: nonce.to_vec(),
        }
    }

    /// Says hello as `name` with `secret`, answers the challenge, and
    /// returns what the server sent after the proof.
    fn authenticate(s: &mut ServerSession, name: &str, secret: &[u8], nc: &[u8]) -> Vec<Frame> {
        let now = Instant::now();
        s.handle_input(now, &bytes(&[hello_nonce(name, nc)]));
        let ns = match &sent(s)[..] {
            [Frame::Challenge { nonce }] => nonce.clone(),
            other => panic!("{other:?}"),
        };
        assert!(commands(s).is_empty(), "nothing is opened before the proof");
        let mac = crate::auth::Key::from_secret(secret).client_proof(name, nc, &ns);
        s.handle_input(now, &bytes(&[Frame::Proof { mac: mac.to_vec() }]));
        sent(s)
    }

    #[test]
    fn a_right_proof_is_welcomed_with_the_servers_own_proof() {
        let mut s = with_secrets(Instant::now(), [5; 32]);
        let out = authenticate(&mut s, "laptop", b"pw", &[1; 32]);
        let [Frame::Welcome { flags, proof, .. }] = &out[..] else {
            panic!("{out:?}")
        };
        assert_eq!(*flags, proto::WELCOME_AUTHENTICATED);
        assert!(crate::auth::Key::from_secret(b"pw")
            .is_server_proof(proof, "laptop", &[1; 32], &[5; 32]));
        assert_eq!(
            commands(&mut s),
            vec![Command::OpenNamespace {
                name: "laptop".into()
            }]
        );
    }

    #[test]
    fn every_failed_proof_looks_the_same_to_the_client() {
        for (name, secret, nc, why) in [
            ("laptop", &b"wrong"[..], &[1u8; 32][..], "wrong secret"),
            ("nobody", b"pw", &[1; 32], "unknown name"),
            ("laptop", b"pw", &[1; 5], "bad client nonce"),
        ] {
            let mut s = with_secrets(Instant::now(), [5; 32]);
            let out = authenticate(&mut s, name, secret, nc);
            match &out[..] {
                [Frame::Error {
                    code: ErrorCode::Auth,
                    message,
                }] => assert_eq!(message, &format!("authentication failed for {name}")),
                other => panic!("{other:?}"),
            }
            assert!(s.is_closing());
            assert!(commands(&mut s).is_empty());
            assert_eq!(s.auth_failure(), Some((name, why)));
        }
        // No secret at all: an empty proof.
        let mut s = with_secrets(Instant::now(), [5; 32]);
        s.handle_input(Instant::now(), &bytes(&[hello_nonce("laptop", &[])]));
        sent(&mut s);
        s.handle_input(Instant::now(), &bytes(&[Frame::Proof { mac: vec![] }]));
        assert!(matches!(
            sent(&mut s)[..],
            [Frame::Error {
                code: ErrorCode::Auth,
                ..
            }]
        ));
    }

    #[test]
    fn a_replayed_proof_fails_against_a_new_challenge() {
        let nc = [1; 32];
        let mut first = with_secrets(Instant::now(), [5; 32]);
        first.handle_input(Instant::now(), &bytes(&[hello_nonce("laptop", &nc)]));
        sent(&mut first);
        let mac = crate::auth::Key::from_secret(b"pw").client_proof("laptop", &nc, &[5; 32]);
        let mut second = with_secrets(Instant::now(), [6; 32]);
        second.handle_input(Instant::now(), &bytes(&[hello_nonce("laptop", &nc)]));
        sent(&mut second);
        second.handle_input(
            Instant::now(),
            &bytes(&[Frame::Proof { mac: mac.to_vec() }]),
        );
        assert!(second.is_closing());
        assert!(commands(&mut second).is_empty());
    }

    #[test]
    fn requests_before_the_proof_are_refused() {
        let mut s = with_secrets(Instant::now(), [5; 32]);
        s.handle_input(Instant::now(), &bytes(&[hello_nonce("laptop", &[1; 32])]));
        sent(&mut s);
        s.handle_input(
            Instant::now(),
            &bytes(&[Frame::List {
                id: 1,
                path: WirePath::root(),
            }]),
        );
        assert!(s.is_closing());
        assert!(commands(&mut s).is_empty());
    }

    #[test]
    fn a_silent_prover_hits_the_handshake_deadline() {
        let t0 = Instant::now();
        let mut s = with_secrets(t0, [5; 32]);
        s.handle_input(t0, &bytes(&[hello_nonce("laptop", &[1; 32])]));
        sent(&mut s);
        let d = s.poll_timeout().unwrap();
        assert!(d <= t0 + Duration::from_secs(5));
        s.handle_timeout(d);
        assert!(s.is_closing());
    }

    #[test]
    fn nothing_queued_runs_or_is_answered_after_an_error() {
        let now = Instant::now();
        let mut s = ServerSession::new(SessionConfig::default(), now, [0; 32]);
        s.handle_input(
            now,
            &bytes(&[
                hello("a"),
                Frame::List {
                    id: 1,
                    path: WirePath::root(),
                },
            ]),
        );
        // The shell is carrying out the OpenNamespace when it fails.
        assert!(matches!(
            s.poll_command(),
            Some(Command::OpenNamespace { .. })
        ));
        s.handle_namespace_failed("cannot open namespace".into());
        assert_eq!(commands(&mut s), vec![Command::Abort]);
        s.send_done(1);
        s.handle_committed(2);
        let out = sent(&mut s);
        assert!(matches!(out.last(), Some(Frame::Error { .. })), "{out:?}");
        // A second failure adds nothing either.
        s.handle_shutdown();
        assert!(sent(&mut s).is_empty());
    }

    #[test]
    fn no_abort_for_a_namespace_never_opened() {
        let now = Instant::now();
        let mut s = ServerSession::new(SessionConfig::default(), now, [0; 32]);
        let mut b = bytes(&[hello("a")]);
        b.extend_from_slice(&[0xff; 5]);
        s.handle_input(now, &b);
        assert!(s.is_closing());
        assert!(commands(&mut s).is_empty());
    }
}
