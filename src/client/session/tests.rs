//! Unit tests of the client session: against the real server session wired
//! in memory, and against hand-built frames from a hostile server.

use super::*;
use crate::proto::testing::{bytes, meta, wp};
use crate::proto::{EntryKind, ErrorCode, ListItem};
use crate::server::session::{Command, ServerSession, SessionConfig};

/// One fixed instant for tests that do not care about time.
fn t0() -> Instant {
    use std::sync::OnceLock;
    static T0: OnceLock<Instant> = OnceLock::new();
    *T0.get_or_init(Instant::now)
}

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
        let now = t0();
        Pair {
            client: ClientSession::new(now, "box", None),
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
            self.client.handle_sent(self.now, c.len());
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
            let m = self.client.handle_input(self.now, &self.to_client);
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
    let mut c = ClientSession::new(t0(), "box", None);
    c.handle_input(
        t0(),
        &bytes(&[Frame::Welcome {
            version: 1,
            flags: 0,
            proof: vec![],
        }]),
    );
    let hello_len = c.poll_transmit().len();
    c.handle_sent(t0(), hello_len);
    let id = c.send_file(wp("f"), meta(), 3);
    let header = c.poll_transmit().to_vec();
    // Queued while the body is owed: held back.
    c.send_manifest(vec![]);
    c.send_commit();
    assert_eq!(c.poll_transmit(), &header[..]);
    c.handle_sent(t0(), header.len());
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
    let mut c = ClientSession::new(t0(), "box", None);
    let _ = c.handle_input(
        t0(),
        &bytes(&[Frame::Welcome {
            version: 1,
            flags: 1,
            proof: vec![],
        }]),
    );
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
    let n = c.handle_input(t0(), &b);
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
    assert_eq!(c.handle_input(t0(), &rest), rest.len());
    let ev = events(&mut c);
    assert_eq!(ev.len(), 4);
    assert!(matches!(ev[3], Event::Done { .. }));
    assert!(c.error().is_none());
}

#[test]
fn hostile_server_frames_end_the_session() {
    // Restore entries nobody asked for.
    let mut c = ClientSession::new(t0(), "box", None);
    c.handle_input(
        t0(),
        &bytes(&[
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
        ]),
    );
    assert!(c.is_closed());
    // A commit confirmation for a commit never sent.
    let mut c = ClientSession::new(t0(), "box", None);
    c.handle_input(
        t0(),
        &bytes(&[
            Frame::Welcome {
                version: 1,
                flags: 0,
                proof: vec![],
            },
            Frame::Committed { id: 3 },
        ]),
    );
    assert!(c.is_closed());
    // Garbage.
    let mut c = ClientSession::new(t0(), "box", None);
    c.handle_input(t0(), b"\xff\xff\xff\xff\xff\xff");
    assert!(c.is_closed());
    assert!(c.error().unwrap().to_string().contains("malformed"));
    // An error frame is reported as a refusal.
    let mut c = ClientSession::new(t0(), "box", None);
    c.handle_input(
        t0(),
        &bytes(&[Frame::Error {
            code: ErrorCode::Busy,
            message: "server busy (1 clients connected)".into(),
        }]),
    );
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
    let mut c = ClientSession::new(t0(), "box", None);
    c.handle_input(
        t0(),
        &bytes(&[Frame::Welcome {
            version: 1,
            flags: 0,
            proof: vec![],
        }]),
    );
    let id = c.send_list(WirePath::root());
    let item = ListItem {
        kind: EntryKind::Dir,
        name: b"home".to_vec(),
        meta: meta(),
        size: 0,
        target: vec![],
    };
    c.handle_input(
        t0(),
        &bytes(&[
            Frame::ListEntry {
                id,
                item: item.clone(),
            },
            Frame::Done { id },
        ]),
    );
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

fn welcomed(now: Instant) -> ClientSession {
    let mut c = ClientSession::new(now, "box", None);
    let hello = c.poll_transmit().len();
    c.handle_sent(now, hello);
    c.handle_input(
        now,
        &bytes(&[Frame::Welcome {
            version: 1,
            flags: 0,
            proof: vec![],
        }]),
    );
    events(&mut c);
    c
}

#[test]
fn the_handshake_gives_up_after_hello_timeout() {
    let now = t0();
    let mut c = ClientSession::new(now, "box", None);
    assert_eq!(c.poll_timeout(), Some(now + HELLO_TIMEOUT));
    c.handle_timeout(now + HELLO_TIMEOUT - Duration::from_millis(1));
    assert!(!c.is_closed(), "woken early, the session waits on");
    c.handle_timeout(now + HELLO_TIMEOUT);
    assert!(c.is_closed());
    assert_eq!(c.error(), Some(&SessionError::HelloTimeout));
    assert_eq!(c.error().unwrap().to_string(), "no answer from the server");
    assert_eq!(c.poll_timeout(), None);
}

#[test]
fn an_idle_session_has_no_deadline_and_a_request_gets_one() {
    let now = t0();
    let mut c = welcomed(now);
    assert_eq!(c.poll_timeout(), None, "idle at the prompt: no deadline");
    c.handle_timeout(now + Duration::from_secs(3600));
    assert!(!c.is_closed());
    let later = now + Duration::from_secs(1000);
    c.send_list(WirePath::root());
    let n = c.poll_transmit().len();
    c.handle_sent(later, n);
    assert_eq!(c.poll_timeout(), Some(later + NO_PROGRESS_TIMEOUT));
    // Body bytes or a partial frame count as progress.
    let later2 = later + Duration::from_secs(200);
    c.handle_activity(later2);
    c.handle_timeout(later + NO_PROGRESS_TIMEOUT);
    assert!(!c.is_closed());
    c.handle_timeout(later2 + NO_PROGRESS_TIMEOUT);
    assert_eq!(
        c.error(),
        Some(&SessionError::NoProgress(NO_PROGRESS_TIMEOUT))
    );
    assert_eq!(
        c.error().unwrap().to_string(),
        "no progress for 300 seconds: giving up"
    );
}

#[test]
fn frames_in_count_as_progress_and_answers_end_the_wait() {
    let now = t0();
    let mut c = welcomed(now);
    let id = c.send_list(WirePath::root());
    let n = c.poll_transmit().len();
    c.handle_sent(now, n);
    let later = now + Duration::from_secs(100);
    c.handle_input(later, &bytes(&[Frame::Done { id }]));
    assert_eq!(events(&mut c), vec![Event::Done { id }]);
    assert_eq!(c.poll_timeout(), None, "nothing owed any more");
}

#[test]
fn close_reasons_are_typed() {
    let mut c = ClientSession::new(t0(), "box", None);
    c.handle_eof();
    assert_eq!(c.error(), Some(&SessionError::Closed));
    let mut c = ClientSession::new(t0(), "box", None);
    c.handle_input(
        t0(),
        &bytes(&[Frame::Error {
            code: ErrorCode::Auth,
            message: "authentication failed for box".into(),
        }]),
    );
    assert!(matches!(
        c.error(),
        Some(SessionError::Refused {
            code: ErrorCode::Auth,
            ..
        })
    ));
    // A client with a secret insists that the server prove it too.
    let auth = ClientAuth {
        key: Key::from_secret(b"pw"),
        nonce: [1; proto::NONCE_LEN],
    };
    let mut c = ClientSession::new(t0(), "box", Some(auth));
    c.handle_input(
        t0(),
        &bytes(&[Frame::Welcome {
            version: 1,
            flags: 0,
            proof: vec![],
        }]),
    );
    assert!(
        matches!(c.error(), Some(SessionError::AuthFailed(m)) if m.contains("did not authenticate"))
    );
}
