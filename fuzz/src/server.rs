//! Target `server_session`: a [`ServerSession`] fed an arbitrary byte
//! stream in arbitrary chunks, with a simulated I/O shell that carries out
//! every command plausibly and a virtual clock.
//!
//! Input layout: `flags`, `seed`, then the client's byte stream. `flags`
//! picks the configuration (see the `F_*` constants); `seed` drives chunk
//! sizes, clock steps and the shell's choices.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rsb::auth::{Key, Secrets};
use rsb::proto::{
    codec, Decoded, EntryKind, Frame, ListItem, Meta, WirePath, WELCOME_AUTHENTICATED,
    WELCOME_READ_ONLY,
};
use rsb::server::session::{
    Command, Completion, Received, ServerSession, SessionConfig, VerifyCounts,
};

use crate::rng::Rng;

/// The server has `--secrets` (the table in [`SECRETS`]).
pub const F_SECRETS: u8 = 1;
/// The server is read-only.
pub const F_READ_ONLY: u8 = 2;
/// No idle timeout.
pub const F_NO_IDLE: u8 = 4;
/// The namespace cannot be opened.
pub const F_NAMESPACE_FAILS: u8 = 8;
/// The shell sometimes fails entries (`Completion::Failed`).
pub const F_SHELL_FAILS: u8 = 16;
/// The server shuts down after the stream.
pub const F_SHUTDOWN: u8 = 32;
/// The stream arrives in one piece.
pub const F_WHOLE: u8 = 64;

/// The secrets file of a server started with [`F_SECRETS`].
pub const SECRETS: &[u8] = b"laptop:pw\n";
/// The one name in [`SECRETS`] and its secret.
pub const NAME: &str = "laptop";
/// The secret of [`NAME`].
pub const SECRET: &[u8] = b"pw";
/// The server's challenge.
pub const SERVER_NONCE: [u8; 32] = [0x5a; 32];

/// Drives a server session with `data` (see the module docs).
pub fn server_session(data: &[u8]) {
    let [flags, seed, stream @ ..] = data else {
        return;
    };
    let mut h = Harness::new(*flags, *seed);
    if flags & F_WHOLE != 0 {
        h.feed(stream);
    } else {
        let mut rest = stream;
        while !rest.is_empty() {
            let (chunk, tail) = rest.split_at(h.rng.chunk_len().min(rest.len()));
            h.feed(chunk);
            rest = tail;
        }
    }
    h.finish();
}

struct Harness {
    s: ServerSession,
    rng: Rng,
    flags: u8,
    t0: Instant,
    elapsed: Duration,
    /// Client bytes not yet consumed.
    pending: Vec<u8>,
    /// Body bytes still to move, while the session wants a body.
    body_left: Option<u64>,
    /// The body length announced by the last frame the session consumed,
    /// if that frame was a `File` or `FileFrom`.
    announced: Option<u64>,
    /// The nonce of the first `Hello` consumed (any later one is refused).
    client_nonce: Option<Vec<u8>>,
    /// Bytes sent and not yet decoded.
    sent: Vec<u8>,
    error_sent: bool,
    challenged: bool,
    welcomed: bool,
    /// The namespace opened, if any.
    opened: Option<String>,
    aborted: bool,
    /// The session was closing before the current input.
    was_closing: bool,
    last_id: Option<u32>,
    /// A `BeginFile` waiting for its `EndFile`.
    open_file: Option<u32>,
    /// An `Offer` (id, size) the shell made, waiting for `SendFrom`.
    offered: Option<(u32, u64)>,
}

fn meta() -> Meta {
    Meta {
        mode: 0o644,
        ..Meta::default()
    }
}

fn path(s: &str) -> WirePath {
    WirePath::new(s.as_bytes().to_vec()).expect("valid path")
}

impl Harness {
    fn new(flags: u8, seed: u8) -> Harness {
        let t0 = Instant::now();
        let config = SessionConfig {
            read_only: flags & F_READ_ONLY != 0,
            idle_timeout: (flags & F_NO_IDLE == 0).then(|| Duration::from_secs(20)),
            hello_timeout: Duration::from_secs(5),
            secrets: (flags & F_SECRETS != 0)
                .then(|| Arc::new(Secrets::parse(SECRETS, [7; 32]).expect("secrets"))),
            store: (0x803, 2),
        };
        Harness {
            s: ServerSession::new(config, t0, SERVER_NONCE),
            rng: Rng::new(seed),
            flags,
            t0,
            elapsed: Duration::ZERO,
            pending: Vec::new(),
            body_left: None,
            announced: None,
            client_nonce: None,
            sent: Vec::new(),
            error_sent: false,
            challenged: false,
            welcomed: false,
            opened: None,
            aborted: false,
            was_closing: false,
            last_id: None,
            open_file: None,
            offered: None,
        }
    }

    fn now(&self) -> Instant {
        self.t0 + self.elapsed
    }

    /// One read's worth of bytes arrives; then time passes.
    fn feed(&mut self, chunk: &[u8]) {
        self.pending.extend_from_slice(chunk);
        self.pump();
        // Mostly a moment; now and then long enough for a deadline.
        let step = if self.rng.one_in(32) { 30_000 } else { 200 };
        self.elapsed += Duration::from_millis(self.rng.below(step));
        let deadline = self.s.poll_timeout();
        let now = self.now();
        let closing = self.s.is_closing();
        self.was_closing = closing;
        self.s.handle_timeout(now);
        if !closing {
            assert_eq!(
                self.s.is_closing(),
                deadline.is_some_and(|d| now >= d),
                "timeout closed the session iff its deadline passed"
            );
        } else {
            assert_eq!(deadline, None, "a closing session wants no timer");
        }
        self.service();
    }

    /// Moves input into the session (frames and bodies) until it stops.
    fn pump(&mut self) {
        loop {
            let now = self.now();
            self.was_closing = self.s.is_closing();
            let progress = if let Some(n) = self.s.wants_body() {
                let left = match self.body_left {
                    Some(left) => left,
                    None => {
                        assert_eq!(
                            Some(n),
                            self.announced,
                            "the body wanted is not the one the last frame announced"
                        );
                        assert!(n > 0, "an empty body is never waited for");
                        n
                    }
                };
                assert_eq!(
                    self.s.handle_input(now, &self.pending),
                    0,
                    "body bytes parsed as frames"
                );
                let take = left.min(self.pending.len() as u64);
                self.pending.drain(..take as usize);
                self.s.handle_activity(now);
                if take == left {
                    self.body_left = None;
                    self.s.handle_completion(Completion::BodyReceived(Received {
                        crc: 0,
                        write_error: None,
                    }));
                    assert_eq!(self.s.wants_body(), None);
                } else {
                    self.body_left = Some(left - take);
                }
                take > 0
            } else {
                let used = self.s.handle_input(now, &self.pending);
                assert!(used <= self.pending.len());
                if self.was_closing {
                    assert_eq!(used, 0, "a closing session consumed input");
                }
                self.note_consumed(used);
                self.pending.drain(..used);
                used > 0
            };
            let streaming = self.s.is_streaming();
            self.service();
            // The shell may end a stream, and the session read on.
            if !progress && streaming == self.s.is_streaming() {
                break;
            }
        }
    }

    /// The session used `used` bytes of input: they must be whole frames.
    fn note_consumed(&mut self, used: usize) {
        let mut off = 0;
        while off < used {
            match codec::decode(&self.pending[off..used]) {
                Ok(Decoded::Frame(f, n)) => {
                    off += n;
                    self.announced = match f {
                        Frame::File { size, .. } => Some(size),
                        Frame::FileFrom { size, offset, .. } => Some(size - offset),
                        _ => None,
                    };
                    if let Frame::Hello { nonce, .. } = f {
                        self.client_nonce.get_or_insert(nonce);
                    }
                }
                other => panic!("consumed bytes are not whole frames: {other:?}"),
            }
        }
    }

    /// Carries out the commands and sends the output, checking both.
    fn service(&mut self) {
        let mut after_abort = false;
        while let Some(cmd) = self.s.poll_command() {
            assert!(!after_abort, "{cmd:?} after Abort");
            if self.was_closing {
                assert_eq!(cmd, Command::Abort, "a command after closing");
            }
            self.check_command(&cmd);
            after_abort = cmd == Command::Abort;
            self.answer(cmd);
        }
        let out = self.s.poll_transmit().to_vec();
        // A socket takes what it takes.
        let n = if self.rng.one_in(4) {
            self.rng.below(out.len() as u64 + 1) as usize
        } else {
            out.len()
        };
        self.sent.extend_from_slice(&out[..n]);
        self.s.handle_sent(n);
        for f in crate::drain_frames(&mut self.sent, "the server") {
            self.check_sent(&f);
        }
    }

    fn check_id(&mut self, id: u32) {
        assert!(
            self.last_id.is_none_or(|l| id > l),
            "id {id} after {:?}",
            self.last_id
        );
        self.last_id = Some(id);
    }

    fn check_command(&mut self, cmd: &Command) {
        if let Command::OpenNamespace { name } = cmd {
            assert!(self.opened.is_none(), "namespace opened twice");
            assert!(rsb::proto::is_valid_client_name(name));
            if self.flags & F_SECRETS != 0 {
                assert_eq!(name, NAME, "opened without the secret");
            }
            self.opened = Some(name.clone());
            return;
        }
        assert!(self.opened.is_some(), "{cmd:?} before the namespace");
        let write = matches!(
            cmd,
            Command::Mkdir { .. }
                | Command::Symlink { .. }
                | Command::Special { .. }
                | Command::Link { .. }
                | Command::Update { .. }
                | Command::Delete { .. }
                | Command::BeginFile { .. }
                | Command::EndFile { .. }
                | Command::LearnNames { .. }
                | Command::Xattrs { .. }
        );
        if write {
            assert!(
                self.flags & F_READ_ONLY == 0,
                "{cmd:?} on a read-only server"
            );
        }
        match cmd {
            Command::OpenNamespace { .. } => {}
            Command::Mkdir { id, path, .. } => {
                self.check_id(*id);
                assert!(!path.is_reserved());
            }
            Command::Symlink { id, path, .. } => {
                self.check_id(*id);
                assert!(!path.is_reserved() && !path.is_root());
            }
            Command::Special { id, path, kind, .. } => {
                self.check_id(*id);
                assert!(!path.is_reserved() && !path.is_root());
                assert!(kind.is_special());
            }
            Command::Link {
                id, path, target, ..
            } => {
                self.check_id(*id);
                assert!(!path.is_reserved() && !path.is_root());
                assert!(!target.is_reserved() && target != path);
            }
            Command::Delete { id, path, keep } => {
                self.check_id(*id);
                assert!(!path.is_reserved());
                assert!(keep.iter().all(|n| !n.is_empty() && !n.contains(&b'/')));
            }
            Command::Update { id, path, kind, .. } => {
                self.check_id(*id);
                assert!(!path.is_reserved() && !path.is_root());
                assert!(matches!(kind, EntryKind::File | EntryKind::Symlink));
            }
            Command::BeginFile {
                id,
                path,
                size,
                offset,
                ..
            } => {
                self.check_id(*id);
                assert!(!path.is_reserved() && !path.is_root());
                assert!(offset <= size);
                assert_eq!(self.open_file, None, "BeginFile before the last EndFile");
                self.open_file = Some(*id);
            }
            Command::EndFile { id, .. } => {
                assert_eq!(
                    self.open_file.take(),
                    Some(*id),
                    "EndFile without BeginFile"
                );
            }
            Command::Commit { id }
            | Command::List { id, .. }
            | Command::Restore { id, .. }
            | Command::Verify { id, .. }
            | Command::Versions { id, .. }
            | Command::Check { id, .. } => self.check_id(*id),
            Command::SendFrom { id, offset } => {
                let (want, size) = self.offered.take().expect("SendFrom without an offer");
                assert_eq!(*id, want);
                assert!(*offset <= size);
            }
            Command::SendDelta { id, offset, .. } => {
                let (want, size) = self.offered.take().expect("SendDelta without an offer");
                assert_eq!(*id, want);
                assert!(*offset <= size);
            }
            Command::SkipOffer { id } => {
                let (want, _) = self.offered.take().expect("SkipOffer without an offer");
                assert_eq!(*id, want);
            }
            Command::Abort => {
                assert!(!self.aborted, "Abort twice");
                self.aborted = true;
            }
            Command::FollowPlan { name } => {
                assert!(
                    rsb::proto::is_valid_client_name(name),
                    "a plan for {name:?}"
                );
            }
            Command::Xattrs { path, attrs } => {
                assert!(!path.is_root() || attrs.len() <= rsb::proto::xattrs::MAX_XATTRS);
                assert!(attrs
                    .pairs()
                    .iter()
                    .all(|(n, _)| rsb::proto::xattrs::is_valid_name(n)));
            }
            Command::LearnNames { users, groups } => {
                assert!(users
                    .iter()
                    .chain(groups)
                    .all(|(_, n)| rsb::proto::owners::is_valid_name(n)));
            }
        }
        if !matches!(cmd, Command::BeginFile { .. } | Command::Abort) {
            assert_eq!(
                self.open_file, None,
                "{cmd:?} between BeginFile and EndFile"
            );
        }
    }

    fn answer(&mut self, cmd: Command) {
        let fails = self.flags & F_SHELL_FAILS != 0 && self.rng.one_in(3);
        match cmd {
            Command::OpenNamespace { .. } => {
                if self.flags & F_NAMESPACE_FAILS != 0 {
                    self.s.handle_completion(Completion::NamespaceFailed {
                        message: "cannot open namespace".into(),
                    });
                }
            }
            Command::Mkdir { id, path, .. }
            | Command::Symlink { id, path, .. }
            | Command::Special { id, path, .. }
            | Command::Link { id, path, .. }
            | Command::Update { id, path, .. }
            | Command::Delete { id, path, .. }
            | Command::BeginFile { id, path, .. }
            | Command::EndFile { id, path, .. } => {
                if fails {
                    self.s.handle_completion(Completion::Failed {
                        id,
                        path,
                        message: "refused by the shell".into(),
                    });
                }
            }
            Command::Commit { id } => self.s.handle_completion(Completion::Committed { id }),
            Command::FollowPlan { .. } => {
                self.s.handle_completion(Completion::Plan {
                    text: b"[n]\npath /x\nwatch 2s\n".to_vec(),
                });
                // The loop's news of a change, now and then.
                if self.rng.one_in(2) {
                    self.s.handle_plan(b"");
                }
            }
            Command::List { id, .. } => {
                for _ in 0..self.rng.below(3) {
                    self.s.handle_completion(Completion::Listed {
                        id,
                        item: ListItem {
                            kind: EntryKind::File,
                            name: b"f".to_vec(),
                            meta: meta(),
                            size: 1,
                            target: Vec::new(),
                            rdev: 0,
                        },
                    });
                }
                self.s.handle_completion(Completion::Done { id });
            }
            Command::Versions { id, path } => {
                for _ in 0..self.rng.below(3) {
                    self.s.handle_completion(Completion::Version {
                        id,
                        item: rsb::proto::VersionItem {
                            path: path.clone(),
                            kind: EntryKind::File,
                            size: 1,
                            meta: meta(),
                            stored: Default::default(),
                            until: Default::default(),
                            held: 1,
                        },
                    });
                }
                self.s.handle_completion(Completion::Done { id });
            }
            Command::Restore { id, .. } => match self.rng.below(5) {
                0 => self.s.handle_completion(Completion::Done { id }),
                1 => {
                    self.s.handle_completion(Completion::OwnerNames {
                        meta: meta(),
                        user: Some(b"root".to_vec()),
                        group: None,
                    });
                    self.s.handle_completion(Completion::RestoredDir {
                        id,
                        path: WirePath::root(),
                        meta: meta(),
                    });
                    self.s.handle_completion(Completion::Done { id });
                }
                2 => {
                    self.s.handle_completion(Completion::RestoredFile {
                        id,
                        path: path("f"),
                        meta: meta(),
                        size: 3,
                        layout: Default::default(),
                    });
                    // (the shell sends the three body bytes itself)
                    self.s.handle_completion(Completion::FileSent {
                        id,
                        crc: 0,
                        ok: true,
                    });
                    // Another name of it: a link, no body.
                    self.s.handle_completion(Completion::RestoredLink {
                        id,
                        path: path("g"),
                        target: path("f"),
                        meta: meta(),
                        size: 3,
                    });
                    self.s.handle_completion(Completion::Done { id });
                }
                3 => {
                    self.s.handle_completion(Completion::Failed {
                        id,
                        path: WirePath::root(),
                        message: "unreadable".into(),
                    });
                    self.s.handle_completion(Completion::Done { id });
                }
                _ => {
                    let size = 1 << 21;
                    self.s.handle_completion(Completion::Offered {
                        id,
                        path: path("big"),
                        meta: meta(),
                        size,
                    });
                    self.offered = Some((id, size));
                }
            },
            Command::SendFrom { id, offset } => {
                self.s.handle_completion(Completion::Resumed {
                    id,
                    path: path("big"),
                    meta: meta(),
                    size: 1 << 21,
                    offset,
                    layout: Default::default(),
                });
                self.s.handle_completion(Completion::FileSent {
                    id,
                    crc: 0,
                    ok: true,
                });
                self.s.handle_completion(Completion::Done { id });
            }
            Command::SendDelta { id, .. } => {
                // The whole of the 2 MiB file as literal runs but its first
                // 64 KiB, taken from the client's copy.
                let size = 1u64 << 21;
                self.s.handle_completion(Completion::RestoredDelta {
                    id,
                    path: path("big"),
                    meta: meta(),
                    size,
                    basis: 1 << 16,
                    offset: 0,
                    copies: vec![rsb::proto::CopyRange {
                        dst: 0,
                        src: 0,
                        len: 1 << 16,
                    }],
                });
                self.s.handle_completion(Completion::FileSent {
                    id,
                    crc: 0,
                    ok: !fails,
                });
                self.s.handle_completion(Completion::Done { id });
            }
            Command::SkipOffer { id } => self.s.handle_completion(Completion::Done { id }),
            Command::Verify { id, path } => {
                if fails {
                    self.s.handle_completion(Completion::Failed {
                        id,
                        path,
                        message: "damaged".into(),
                    });
                }
                self.s.handle_completion(Completion::Verified {
                    id,
                    counts: VerifyCounts::default(),
                });
            }
            Command::Check { id, entries } => {
                let resume = if entries.is_empty() {
                    Vec::new()
                } else {
                    vec![(0, 1)]
                };
                self.s.handle_completion(Completion::Checked {
                    id,
                    bits: vec![0xff; entries.len().div_ceil(8)],
                    meta: vec![0; entries.len().div_ceil(8)],
                    resume,
                    // A real signature for the last entry: the fuzzed
                    // client may answer it with a FileDelta.
                    delta: entries
                        .len()
                        .checked_sub(1)
                        .map(|i| (i as u32, small_signature()))
                        .into_iter()
                        .collect(),
                });
            }
            Command::Abort | Command::LearnNames { .. } | Command::Xattrs { .. } => {}
        }
    }

    fn check_sent(&mut self, f: &Frame) {
        assert!(!self.error_sent, "{f:?} sent after an Error");
        match f {
            Frame::Error { .. } => self.error_sent = true,
            Frame::Challenge { nonce } => {
                assert!(self.flags & F_SECRETS != 0, "a challenge without secrets");
                assert!(!self.challenged && !self.welcomed);
                assert_eq!(nonce[..], SERVER_NONCE);
                self.challenged = true;
            }
            Frame::Welcome {
                version,
                flags,
                proof,
                store,
            } => {
                assert_eq!(*store, (0x803, 2), "the store's identity");
                assert!(!self.welcomed, "welcomed twice");
                self.welcomed = true;
                assert_eq!(*version, rsb::proto::VERSION);
                assert_eq!(
                    flags & WELCOME_READ_ONLY != 0,
                    self.flags & F_READ_ONLY != 0
                );
                if self.flags & F_SECRETS != 0 {
                    assert!(self.challenged);
                    assert!(flags & WELCOME_AUTHENTICATED != 0);
                    assert!(Key::from_secret(SECRET).is_server_proof(
                        proof,
                        NAME,
                        self.client_nonce.as_deref().unwrap_or_default(),
                        &SERVER_NONCE
                    ));
                } else {
                    assert!(flags & WELCOME_AUTHENTICATED == 0 && proof.is_empty());
                }
            }
            _ => assert!(self.welcomed, "{f:?} before Welcome"),
        }
    }

    /// The stream ended: maybe shut down, flush everything, final checks.
    fn finish(mut self) {
        if self.flags & F_SHUTDOWN != 0 {
            self.was_closing = self.s.is_closing();
            self.s.handle_shutdown();
            assert!(self.s.is_closing());
            self.service();
        }
        let out = self.s.poll_transmit().to_vec();
        self.s.handle_sent(out.len());
        assert!(self.s.poll_transmit().is_empty());
        self.sent.extend_from_slice(&out);
        for f in crate::drain_frames(&mut self.sent, "the server") {
            self.check_sent(&f);
        }
        assert!(self.sent.is_empty(), "the server's output ends mid-frame");
        if self.s.is_closing() {
            assert!(self.error_sent, "closing without an Error");
            assert_eq!(
                self.aborted,
                self.opened.is_some(),
                "a closed session with a namespace must abort (and only then)"
            );
        }
    }
}

/// The encoded signature of 5 KiB of zeros in 4 KiB blocks.
fn small_signature() -> Vec<u8> {
    let mut s = match rsb::delta::Signer::new(4096) {
        Ok(s) => s,
        Err(_) => return Vec::new(),
    };
    s.feed(&[0u8; 5120]);
    s.finish().encode()
}
