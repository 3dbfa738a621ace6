//! The server's end of an in-memory connection: a [`ServerSession`], the
//! [`FakeShell`] that carries out its commands, and the bytes in and out.
//! Also the small helpers the session's own unit tests use on a bare
//! session.

use std::time::Instant;

use super::frames::{bytes, hello, take_pieces, Piece};
use super::shell::{Answer, FakeShell};
use crate::proto::{self, codec, Decoded, Frame};
use crate::server::command::{Command, Completion};
use crate::server::session::{ServerSession, SessionConfig};

/// Every command the session has queued, drained.
pub fn drain_commands(s: &mut ServerSession) -> Vec<Command> {
    std::iter::from_fn(|| s.poll_command()).collect()
}

/// Decodes everything the session wants to send and marks it sent. Panics
/// unless it is whole frames.
pub fn sent_frames(s: &mut ServerSession) -> Vec<Frame> {
    let mut out = Vec::new();
    let buf = s.poll_transmit().to_vec();
    s.handle_sent(buf.len());
    let mut off = 0;
    while let Ok(Decoded::Frame(f, n)) = codec::decode(&buf[off..]) {
        out.push(f);
        off += n;
    }
    assert_eq!(off, buf.len());
    out
}

/// A session with the default config but `config`, after the `Hello` of a
/// client called `laptop`: its namespace opened and nothing waiting.
/// Panics unless it was welcomed (version 1, no flags).
pub fn welcomed(config: SessionConfig, now: Instant) -> ServerSession {
    let mut s = ServerSession::new(config, now, [0; proto::NONCE_LEN]);
    let b = bytes(&[hello("laptop")]);
    assert_eq!(s.handle_input(now, &b), b.len());
    assert_eq!(
        drain_commands(&mut s),
        vec![Command::OpenNamespace {
            name: "laptop".into()
        }]
    );
    assert!(matches!(
        sent_frames(&mut s)[..],
        [Frame::Welcome {
            version: crate::proto::VERSION,
            flags: 0,
            ..
        }]
    ));
    s
}

/// A server session with its shell and its two byte streams.
pub struct ServerEnd {
    /// The session under test.
    pub session: ServerSession,
    /// What carries out its commands.
    pub shell: FakeShell,
    /// Bytes from the peer not yet consumed.
    pub inbox: Vec<u8>,
    /// Bytes for the peer: the session's frames and the bodies the shell
    /// sent after them.
    pub outbox: Vec<u8>,
    /// The body being received, so far.
    body: Option<Vec<u8>>,
}

impl ServerEnd {
    /// A connection accepted at `now`, with `nonce` as its challenge.
    pub fn new(config: SessionConfig, now: Instant, nonce: [u8; proto::NONCE_LEN]) -> ServerEnd {
        ServerEnd {
            session: ServerSession::new(config, now, nonce),
            shell: FakeShell::new(),
            inbox: Vec::new(),
            outbox: Vec::new(),
            body: None,
        }
    }

    /// Bytes arrive from the peer.
    pub fn feed(&mut self, bytes: &[u8]) {
        self.inbox.extend_from_slice(bytes);
    }

    /// Frames arrive from the peer.
    pub fn feed_frames(&mut self, frames: &[Frame]) {
        self.feed(&bytes(frames));
    }

    /// What the server sent so far that has not been taken yet, as frames
    /// and bodies (for a test with no client session on the other end).
    pub fn take_sent(&mut self) -> Vec<Piece> {
        take_pieces(&mut self.outbox)
    }

    /// One step at `now`: the clock's deadline if it passed, then input (a
    /// body, or frames), then every command carried out and the output
    /// flushed. True when anything happened.
    pub fn step(&mut self, now: Instant) -> bool {
        let mut progress = false;
        if self.session.poll_timeout().is_some_and(|t| t <= now) {
            let closing = self.session.is_closing();
            self.session.handle_timeout(now);
            progress |= closing != self.session.is_closing();
        }
        if let Some(mut ahead) = self.session.take_read_ahead() {
            ahead.append(&mut self.inbox);
            self.inbox = ahead;
            progress = true;
        }
        if let Some(size) = self.session.wants_body() {
            let buf = self.body.get_or_insert_with(Vec::new);
            let want = usize::try_from(size).unwrap_or(usize::MAX) - buf.len();
            let take = want.min(self.inbox.len());
            buf.extend(self.inbox.drain(..take));
            if take > 0 {
                self.session.handle_activity(now);
                progress = true;
            }
            if take == want {
                let body = self.body.take().unwrap_or_default();
                let received = self.shell.receive_body(&body);
                self.session
                    .handle_completion(Completion::BodyReceived(received));
                progress = true;
            }
        } else if self.session.wants_input() {
            let n = self.session.handle_input(now, &self.inbox);
            self.inbox.drain(..n);
            progress |= n > 0;
        }
        progress | self.service()
    }

    /// Carries out every queued command and flushes the output; true when
    /// there was anything to do.
    pub fn service(&mut self) -> bool {
        let mut progress = false;
        while let Some(cmd) = self.session.poll_command() {
            progress = true;
            for answer in self.shell.carry_out(cmd) {
                match answer {
                    Answer::Complete(c) => self.session.handle_completion(c),
                    Answer::Body(b) => {
                        self.flush();
                        self.outbox.extend_from_slice(&b);
                    }
                }
            }
        }
        progress | self.flush()
    }

    /// Moves the session's output to the outbox; true when there was any.
    fn flush(&mut self) -> bool {
        let out = self.session.poll_transmit();
        let n = out.len();
        self.outbox.extend_from_slice(out);
        self.session.handle_sent(n);
        n > 0
    }
}

#[cfg(test)]
mod tests {
    use super::super::frames::{frames_of, meta, wp};
    use super::*;

    #[test]
    fn a_server_end_stores_what_a_raw_client_sends() {
        let now = Instant::now();
        let mut end = ServerEnd::new(SessionConfig::default(), now, [0; 32]);
        end.feed_frames(&[
            hello("a"),
            Frame::File {
                id: 1,
                path: wp("f"),
                meta: meta(),
                size: 3,
            },
        ]);
        end.feed(b"abc");
        end.feed_frames(&[
            Frame::FileEnd {
                id: 1,
                crc: crc32c::crc32c(b"abc"),
                ok: true,
            },
            Frame::Commit { id: 2 },
        ]);
        while end.step(now) {}
        assert_eq!(end.shell.stored.get(&wp("f")), Some(&b"abc".to_vec()));
        let sent = frames_of(&end.take_sent());
        assert!(
            matches!(
                sent[..],
                [Frame::Welcome { .. }, Frame::Committed { id: 2 }]
            ),
            "{sent:?}"
        );
    }
}
