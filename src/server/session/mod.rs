//! One connection's protocol state on the server, as a pure state machine:
//! its states, the inputs it takes (`handle_*`), the outputs it gives
//! (`poll_*`), its predicates (`is_*`, `wants_*`) and getters. It never
//! touches a socket or a file and never reads the clock.
//!
//! The frames of each phase are handled in their own files, as further
//! `impl ServerSession` blocks: [`handshake`] (hello, challenge,
//! proof, welcome), [`receive`] (entries, bodies, batch limits) and
//! [`stream`] (list, restore, verify, offers). The vocabulary with
//! the shell is in [`crate::server::command`].

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::auth::Secrets;
use crate::proto::{self, codec, Decoded, ErrorCode, Frame, Time, WirePath};

pub use crate::server::command::{Command, Completion, Received, VerifyCounts};
use receive::Batch;

mod closed;
mod delta;
pub mod handshake;
pub mod receive;
pub mod stream;

/// Output is not allowed to grow past this before input is paused.
const MAX_OUTPUT: usize = 256 * 1024;
/// Most bytes of pipelined requests (frames and bodies) read ahead while
/// an `Offer` waits for its `Want` (see [`crate::proto`]): as much as the
/// output may hold, so a client that never answers pins no more.
pub const MAX_READ_AHEAD: usize = 256 * 1024;

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
    /// `(st_dev, st_ino)` of the backup root, told to every client in its
    /// `Welcome` (`(0, 0)`: unknown).
    pub store: (u64, u64),
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            read_only: false,
            idle_timeout: Some(Duration::from_secs(300)),
            hello_timeout: Duration::from_secs(5),
            secrets: None,
            store: (0, 0),
        }
    }
}

/// The phases of a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    /// Nothing received yet; the `Hello` must come first.
    AwaitHello,
    /// `Challenge` sent; the client's `Proof` must come next.
    AwaitProof { name: String, client_nonce: Vec<u8> },
    /// Welcomed: requests are read.
    Ready,
    /// The next `size` bytes are the body of file `id`.
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
        /// What the shell reported of the body (`None`: it was empty).
        received: Option<Received>,
    },
    /// The shell is streaming the answer to a `List`, `Restore` or
    /// `Verify`.
    Streaming { id: u32 },
    /// An `Error` was queued; flush and close.
    Closing,
}

/// The server side of one connection.
///
/// Methods come in four kinds, each prefix one direction:
///
/// * inputs, `handle_*`: bytes from the peer ([`Self::handle_input`]), how
///   much of [`Self::poll_transmit`] went out ([`Self::handle_sent`]), what
///   the shell did ([`Self::handle_completion`]), traffic either way
///   ([`Self::handle_activity`]), the clock ([`Self::handle_timeout`]) and
///   the server stopping ([`Self::handle_shutdown`]);
/// * outputs, `poll_*` (`#[must_use]`): [`Self::poll_command`],
///   [`Self::poll_transmit`], [`Self::poll_timeout`];
/// * predicates, `is_*`/`wants_*`: what the shell may do next;
/// * getters: [`Self::name`], [`Self::auth_failure`], [`Self::error`].
///
/// After every input the shell drains the outputs in this order (the
/// run-loop invariant): every [`Self::poll_command`], carrying each out and
/// reporting its outcome through [`Self::handle_completion`] (which may
/// queue more commands: drain until `None`); then [`Self::poll_transmit`],
/// written out; then, if [`Self::is_closing`] and nothing is left to send,
/// it closes; then it arms a timer for [`Self::poll_timeout`]. While
/// [`Self::wants_body`] is `Some(n)`, the next `n` bytes of the stream are
/// a file body that the shell moves itself (splice) and then reports with
/// [`Completion::BodyReceived`].
pub struct ServerSession {
    config: SessionConfig,
    state: State,
    name: Option<String>,
    out: Vec<u8>,
    sent_upto: usize,
    commands: VecDeque<Command>,
    last_id: Option<u32>,
    /// Entries staged since the last commit.
    batch: Batch,
    deadline: Option<Instant>,
    last_activity: Instant,
    error: Option<String>,
    /// A restore's `Offer` (id, size) waiting for the client's `Want`.
    offer: Option<(u32, u64)>,
    /// The signature of the client's own copy of the offered file, as its
    /// pieces arrive before the `Want`: (announced length, bytes).
    offer_sig: Option<Box<(u32, Vec<u8>)>>,
    /// The id an `Xattrs` frame was for: the next frame must be that
    /// entry's header.
    xattrs_for: Option<u32>,
    /// The names manifests carried, for the deletions of `Closed`.
    listed: closed::Listed,
    /// The time of an `At`, for the `List` or `Restore` that must follow.
    at: Option<Time>,
    /// Bytes of requests pipelined behind a streamed answer, read while
    /// looking for an offer's `Want`: handed back to the shell, to be
    /// parsed again, once the stream ended ([`Self::take_read_ahead`]).
    read_ahead: Vec<u8>,
    /// Body bytes of the last read-ahead `File` still to come.
    read_ahead_body: u64,
    /// This connection's challenge, sent when the server has secrets.
    nonce: [u8; proto::NONCE_LEN],
    /// A failed authentication: the name tried and why (for the log only;
    /// the client learns nothing but "failed").
    auth_failure: Option<(String, &'static str)>,
    /// Owner ids named to the client so far (restores).
    announced: proto::owners::Announced,
    /// The connection sent `Agent`: it follows its name's plan, and takes
    /// no other request.
    agent: bool,
    /// The plan text last sent to the agent, so a change that leaves its
    /// plan as it was sends nothing.
    plan_sent: Option<Vec<u8>>,
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
            announced: proto::owners::Announced::new(),
            last_id: None,
            batch: Batch::default(),
            deadline,
            last_activity: now,
            error: None,
            offer: None,
            offer_sig: None,
            xattrs_for: None,
            listed: closed::Listed::default(),
            at: None,
            read_ahead: Vec::new(),
            read_ahead_body: 0,
            nonce,
            auth_failure: None,
            agent: false,
            plan_sent: None,
        }
    }

    /// A session that only refuses the peer with `code` and `message`,
    /// then closes (a per-address limit, say).
    pub fn refused(
        config: SessionConfig,
        now: Instant,
        code: ErrorCode,
        message: String,
    ) -> ServerSession {
        let mut s = ServerSession::new(config, now, [0; proto::NONCE_LEN]);
        s.fail(code, message);
        s
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

    // ---- getters ------------------------------------------------------

    /// The client's name, once its `Hello` was accepted.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// The name and the cause of a failed authentication, for the log.
    pub fn auth_failure(&self) -> Option<(&str, &'static str)> {
        self.auth_failure.as_ref().map(|(n, w)| (n.as_str(), *w))
    }

    /// True once the client sent `Agent`: it follows its plan (the
    /// dashboard shows "agent connected"; the loop tells it of changes with
    /// [`Self::handle_plan`]).
    pub fn is_agent(&self) -> bool {
        self.agent && !self.is_closing()
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
            let rest = buf.get(used..).unwrap_or_default();
            if self.is_reading_ahead() {
                match self.read_ahead(rest) {
                    0 => break,
                    n => {
                        used += n;
                        continue;
                    }
                }
            }
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

    /// Input while an offer waits for its `Want`: the `Want` (or the
    /// `Skip` that declines the offer) is taken, and
    /// anything else (requests pipelined behind the stream, with their
    /// file bodies) is kept, at most [`MAX_READ_AHEAD`] bytes, to be
    /// parsed in order once the stream ended. Returns the bytes used.
    fn read_ahead(&mut self, rest: &[u8]) -> usize {
        let (n, frame) = if self.read_ahead_body > 0 {
            let n = usize::try_from(self.read_ahead_body)
                .unwrap_or(usize::MAX)
                .min(rest.len());
            (n, None)
        } else {
            match codec::decode(rest) {
                Ok(Decoded::Partial) => return 0,
                Ok(Decoded::Frame(Frame::Want { id, offset }, n)) => {
                    self.handle_want(id, offset);
                    return n;
                }
                Ok(Decoded::Frame(Frame::Skip { id }, n)) => {
                    self.handle_skip(id);
                    return n;
                }
                Ok(Decoded::Frame(
                    Frame::Signature {
                        id,
                        index,
                        total,
                        chunk,
                    },
                    n,
                )) => {
                    self.handle_offer_signature(id, index, total, &chunk);
                    return n;
                }
                Ok(Decoded::Frame(frame, n)) => (n, Some(frame)),
                Err(e) => {
                    self.fail(ErrorCode::Malformed, format!("malformed frame: {e}"));
                    return 0;
                }
            }
        };
        if n == 0 {
            return 0;
        }
        if self.read_ahead.len().saturating_add(n) > MAX_READ_AHEAD {
            self.fail(
                ErrorCode::Unexpected,
                format!(
                    "more than {MAX_READ_AHEAD} bytes pipelined behind an offer before its want"
                ),
            );
            return 0;
        }
        self.read_ahead
            .extend_from_slice(rest.get(..n).unwrap_or_default());
        match frame {
            Some(Frame::File { size, layout, .. }) => {
                self.read_ahead_body = layout.body_len(size, 0);
            }
            Some(Frame::FileFrom {
                size,
                offset,
                layout,
                ..
            }) => self.read_ahead_body = layout.body_len(size, offset),
            Some(Frame::FileDelta {
                size,
                offset,
                copies,
                ..
            }) => {
                self.read_ahead_body =
                    proto::delta_layout(size, offset, &copies).body_len(size, offset);
            }
            Some(_) => {}
            None => self.read_ahead_body = self.read_ahead_body.saturating_sub(n as u64),
        }
        n
    }

    /// What the shell did: the outcome of a command, the end of a body it
    /// moved, or a piece of an answer it streams. Completions are not
    /// traffic and take no time: the shell reports bytes moved either way
    /// with [`Self::handle_activity`]. After the session began closing,
    /// nothing more is sent (the `Error` is the last frame).
    pub fn handle_completion(&mut self, completion: Completion) {
        match completion {
            Completion::Plan { text } => self.push_plan(text),
            Completion::NamespaceFailed { message } => self.fail(ErrorCode::Internal, message),
            Completion::Failed { id, path, message } => self.push_failed(id, path, message),
            Completion::BodyReceived(received) => self.handle_body_received(received),
            Completion::Checked {
                id,
                bits,
                meta,
                resume,
                delta,
            } => self.push_need(id, bits, meta, resume, delta),
            Completion::Committed { id } => self.push(&Frame::Committed { id }),
            Completion::Listed { id, item } => self.push(&Frame::ListEntry { id, item }),
            Completion::Version { id, item } => self.push(&Frame::Version { id, item }),
            Completion::OwnerNames { meta, user, group } => {
                if let Some(f) = self.announced.names_for(&meta, |_| user, |_| group) {
                    self.push(&f);
                }
            }
            Completion::Xattrs { id, path, attrs } => self.push(&Frame::Xattrs { id, path, attrs }),
            Completion::RestoredDir { id, path, meta } => self.push(&Frame::Dir { id, path, meta }),
            Completion::RestoredSymlink {
                id,
                path,
                target,
                meta,
            } => self.push(&Frame::Symlink {
                id,
                path,
                target,
                meta,
            }),
            Completion::RestoredSpecial {
                id,
                path,
                kind,
                rdev,
                meta,
            } => self.push(&Frame::Special {
                id,
                path,
                kind,
                rdev,
                meta,
            }),
            Completion::RestoredFile {
                id,
                path,
                meta,
                size,
                layout,
            } => self.push(&Frame::File {
                id,
                path,
                meta,
                size,
                layout,
            }),
            Completion::RestoredLink {
                id,
                path,
                target,
                meta,
                size,
            } => self.push(&Frame::Link {
                id,
                path,
                target,
                meta,
                size,
            }),
            Completion::Offered {
                id,
                path,
                meta,
                size,
            } => self.push_offer(id, path, meta, size),
            Completion::Resumed {
                id,
                path,
                meta,
                size,
                offset,
                layout,
            } => self.push(&Frame::FileFrom {
                id,
                path,
                meta,
                size,
                offset,
                layout,
            }),
            Completion::RestoredDelta {
                id,
                path,
                meta,
                size,
                basis,
                offset,
                copies,
            } => self.push(&Frame::FileDelta {
                id,
                path,
                meta,
                size,
                basis,
                offset,
                copies,
            }),
            Completion::FileSent { id, crc, ok } => self.push(&Frame::FileEnd { id, crc, ok }),
            Completion::VerifyProgress { id, files, bytes } => {
                self.push(&Frame::Progress { id, files, bytes })
            }
            Completion::Verified { id, counts } => self.push_verified(id, counts),
            Completion::Done { id } => self.push_done(id),
        }
    }

    /// The plans changed: `text` is this agent's plan now (one block, empty
    /// for none). Sent when it differs from the one the agent has; nothing
    /// for a connection that is not an agent.
    pub fn handle_plan(&mut self, text: &[u8]) {
        if !self.is_agent() || self.plan_sent.as_deref() == Some(text) {
            return;
        }
        self.push_plan(text.to_vec());
    }

    /// The connection saw traffic either way (body bytes and writes count).
    pub fn handle_activity(&mut self, now: Instant) {
        self.last_activity = now;
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
        if let Some(idle) = self.idle_timeout() {
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

    // ---- outputs ------------------------------------------------------

    /// The next command for the shell.
    #[must_use]
    pub fn poll_command(&mut self) -> Option<Command> {
        self.commands.pop_front()
    }

    /// Input read ahead while an offer waited for its `Want` (requests
    /// pipelined behind a restore), once its stream ended: the shell puts
    /// these bytes back in front of what it has not yet passed to
    /// [`Self::handle_input`] (they may hold a file body it moves itself).
    #[must_use]
    pub fn take_read_ahead(&mut self) -> Option<Vec<u8>> {
        if self.read_ahead.is_empty() || self.is_streaming() || self.is_closing() {
            return None;
        }
        Some(std::mem::take(&mut self.read_ahead))
    }

    /// Bytes waiting to be sent.
    #[must_use]
    pub fn poll_transmit(&self) -> &[u8] {
        self.out.get(self.sent_upto..).unwrap_or_default()
    }

    /// `n` bytes of [`Self::poll_transmit`] were sent (the shell says how
    /// much of it the socket took). Takes no time, unlike the client's: the
    /// server counts traffic through [`Self::handle_activity`].
    pub fn handle_sent(&mut self, n: usize) {
        self.sent_upto = self.sent_upto.saturating_add(n).min(self.out.len());
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
                .idle_timeout()
                .and_then(|d| self.last_activity.checked_add(d)),
        }
    }

    // ---- predicates ---------------------------------------------------

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
        ) || self.is_reading_ahead())
            && self.out.len() - self.sent_upto < MAX_OUTPUT
    }

    /// True once the connection must be closed after flushing output.
    #[must_use]
    pub fn is_closing(&self) -> bool {
        matches!(self.state, State::Closing)
    }

    /// True while the shell streams a `List`, `Restore` or `Verify` answer.
    #[must_use]
    pub fn is_streaming(&self) -> bool {
        matches!(self.state, State::Streaming { .. })
    }

    /// True while a restore waits for the client's answer to an `Offer`.
    #[must_use]
    pub fn is_offering(&self) -> bool {
        self.offer.is_some()
    }

    /// True while frames are read only to find an offer's `Want`.
    fn is_reading_ahead(&self) -> bool {
        self.offer.is_some() && self.is_streaming()
    }

    // ---- internals ----------------------------------------------------

    /// The idle timeout in force: an agent is silent between its pings
    /// ([`proto::AGENT_PING`]), so it has at least [`proto::AGENT_IDLE`].
    fn idle_timeout(&self) -> Option<Duration> {
        let idle = self.config.idle_timeout?;
        Some(if self.agent {
            idle.max(proto::AGENT_IDLE)
        } else {
            idle
        })
    }

    fn push_plan(&mut self, text: Vec<u8>) {
        self.push(&Frame::Plan { text: text.clone() });
        self.plan_sent = Some(text);
    }

    /// An `Agent` (the first, or a keepalive): answered with the plan.
    fn handle_agent(&mut self, id: u32) {
        if !self.check_id(id) {
            return;
        }
        let Some(name) = self.name.clone() else {
            return;
        };
        self.agent = true;
        self.commands.push_back(Command::FollowPlan { name });
    }

    fn push(&mut self, frame: &Frame) {
        // The `Error` is the last frame: an answer the shell completes
        // afterwards (a commit finishing on a worker after a shutdown
        // began, say) is dropped.
        if !self.is_closing() {
            codec::encode(frame, &mut self.out);
        }
    }

    fn push_failed(&mut self, id: u32, path: WirePath, message: String) {
        self.push(&Frame::Failed { id, path, message });
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

    /// Request ids must increase; false (and closing) when one does not.
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
            ) => self.handle_hello(version, name, flags, nonce),
            (State::AwaitProof { .. }, Frame::Proof { mac }) => self.handle_proof(&mac),
            (State::AwaitProof { .. }, f) => self.fail(
                ErrorCode::Unexpected,
                format!("expected proof, got frame kind {}", f.kind()),
            ),
            (State::AwaitHello, f) => self.fail(
                ErrorCode::Unexpected,
                format!("expected hello, got frame kind {}", f.kind()),
            ),
            (State::AwaitFileEnd { .. }, Frame::FileEnd { id, crc, ok }) => {
                self.handle_file_end(id, crc, ok)
            }
            (State::AwaitFileEnd { .. }, f) => {
                self.fail(
                    ErrorCode::Unexpected,
                    format!("expected file end, got frame kind {}", f.kind()),
                );
            }
            (State::Ready, frame) => self.handle_request(frame),
            (State::Streaming { .. }, Frame::Want { id, offset }) => self.handle_want(id, offset),
            (State::Streaming { .. }, Frame::Skip { id }) => self.handle_skip(id),
            (
                State::Streaming { .. },
                Frame::Signature {
                    id,
                    index,
                    total,
                    chunk,
                },
            ) => self.handle_offer_signature(id, index, total, &chunk),
            // wants_input() keeps frames from arriving in the other states.
            (_, f) => self.fail(
                ErrorCode::Unexpected,
                format!("unexpected frame kind {}", f.kind()),
            ),
        }
    }

    fn handle_request(&mut self, frame: Frame) {
        if self.agent {
            return match frame {
                Frame::Agent { id } => self.handle_agent(id),
                f => self.fail(
                    ErrorCode::Unexpected,
                    format!(
                        "frame kind {} on an agent connection (it takes no other request)",
                        f.kind()
                    ),
                ),
            };
        }
        if let Some(want) = self.xattrs_for.take() {
            let follows = match &frame {
                Frame::Dir { id, .. }
                | Frame::File { id, .. }
                | Frame::FileFrom { id, .. }
                | Frame::FileDelta { id, .. }
                | Frame::Update { id, .. } => *id == want,
                _ => false,
            };
            if !follows {
                return self.fail(
                    ErrorCode::Unexpected,
                    format!("extended attributes for request {want} not followed by its file or directory"),
                );
            }
        }
        if let Some(at) = self.at.take() {
            return match frame {
                Frame::List { id, path } => self.handle_list(id, path, Some(at)),
                Frame::Restore { id, path } => self.handle_restore(id, path, Some(at)),
                f => self.fail(
                    ErrorCode::Unexpected,
                    format!(
                        "a time (At) not followed by a listing or restore but frame kind {}",
                        f.kind()
                    ),
                ),
            };
        }
        match frame {
            Frame::Dir { id, path, meta } => self.handle_dir(id, path, meta),
            Frame::Symlink {
                id,
                path,
                target,
                meta,
            } => self.handle_symlink(id, path, target, meta),
            Frame::Special {
                id,
                path,
                kind,
                rdev,
                meta,
            } => self.handle_special(id, path, kind, rdev, meta),
            Frame::Link {
                id,
                path,
                target,
                meta,
                size,
            } => self.handle_link(id, path, target, meta, size),
            Frame::Update {
                id,
                path,
                kind,
                meta,
                size,
            } => self.handle_update(id, path, kind, meta, size),
            Frame::File {
                id,
                path,
                meta,
                size,
                layout,
            } => self.handle_file(id, path, meta, size, 0, layout),
            Frame::FileFrom {
                id,
                path,
                meta,
                size,
                offset,
                layout,
            } => self.handle_file(id, path, meta, size, offset, layout),
            Frame::FileDelta {
                id,
                path,
                meta,
                size,
                basis,
                offset,
                copies,
            } => self.handle_file_delta(id, path, meta, size, (basis, offset), copies),
            Frame::Manifest { id, entries } => self.handle_manifest(id, entries),
            Frame::Commit { id } => self.handle_commit(id),
            Frame::Closed {
                id,
                path,
                whole,
                keep,
            } => self.handle_closed(id, path, whole, &keep),
            Frame::List { id, path } => self.handle_list(id, path, None),
            Frame::Restore { id, path } => self.handle_restore(id, path, None),
            Frame::At { secs, nanos } => self.at = Some(Time { secs, nanos }),
            Frame::Versions { id, path } => self.handle_versions(id, path),
            Frame::Agent { id } => self.handle_agent(id),
            Frame::Verify { id, path } => self.handle_verify(id, path),
            // A read-only server stores nothing to name.
            Frame::Names { .. } if self.config.read_only => {}
            Frame::Names { users, groups } => {
                self.commands
                    .push_back(Command::LearnNames { users, groups });
            }
            Frame::Xattrs { id, path, attrs } => {
                self.xattrs_for = Some(id);
                // A read-only server refuses the entry that follows.
                if !self.config.read_only {
                    self.commands.push_back(Command::Xattrs { path, attrs });
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
mod tests;

#[cfg(test)]
mod agent_tests;
