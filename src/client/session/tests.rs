//! Unit tests of the client session: against the real server session wired
//! in memory (the shared [`crate::testing::Pair`], the server's shell
//! faked), and against hand-built frames from a hostile server.

use std::time::Duration;

use super::*;
use crate::proto::{EntryKind, ErrorCode, ListItem};
use crate::server::session::{Command, Completion, SessionConfig, VerifyCounts};
use crate::testing::client::{drain_events as events, welcomed};
use crate::testing::frames::{bytes, frames_of, meta, take_pieces, welcome, wp, Piece};
use crate::testing::{Clock, Pair, VerifyBatch};

/// A client called `box` and a server session with the default config,
/// wired together on a clock of their own.
fn pair() -> Pair {
    Pair::on(
        &Clock::new(),
        SessionConfig::default(),
        [0; proto::NONCE_LEN],
        "box",
        None,
    )
}

#[test]
fn handshake_and_pipelined_backup_against_the_server_session() {
    let mut p = pair();
    p.drive().expect("quiet");
    assert_eq!(
        p.client.take_events(),
        vec![Event::Welcome { read_only: false }]
    );
    // Three entries and a commit, without waiting for any reply.
    let s = &mut p.client.session;
    s.send_dir(wp("a"), meta());
    s.send_symlink(wp("a/l"), b"t".to_vec(), meta());
    let f = s.send_file(wp("a/f"), meta(), 0, crate::proto::Layout::Dense);
    s.send_file_end(f, 0, true);
    let c = s.send_commit();
    assert_eq!(p.client.session.commits_in_flight(), 1);
    p.drive().expect("quiet");
    assert_eq!(p.client.take_events(), vec![Event::Committed { id: c }]);
    assert_eq!(p.client.session.commits_in_flight(), 0);
    assert_eq!(
        p.server.shell.commands.len(),
        6,
        "{:?}",
        p.server.shell.commands
    );
}

#[test]
fn no_frame_goes_out_between_a_file_header_and_its_body() {
    let now = Clock::new().now();
    let mut c = ClientSession::new(now, "box", None);
    c.handle_input(now, &bytes(&[welcome(0)]));
    let hello_len = c.poll_transmit().len();
    c.handle_sent(now, hello_len);
    let id = c.send_file(wp("f"), meta(), 3, crate::proto::Layout::Dense);
    let header = c.poll_transmit().to_vec();
    // Queued while the body is owed: held back.
    c.send_manifest(vec![]);
    c.send_commit();
    assert_eq!(c.poll_transmit(), &header[..]);
    c.handle_sent(now, header.len());
    // (the driver sends the 3 body bytes here)
    c.send_file_end(id, 7, true);
    let mut rest = c.poll_transmit().to_vec();
    let out: Vec<_> = frames_of(&take_pieces(&mut rest))
        .iter()
        .map(Frame::kind)
        .collect();
    assert_eq!(
        out,
        vec![13, 24, 14],
        "FileEnd, then the held Manifest and Commit"
    );
}

/// A small file's body queued with the frames sits between its header
/// and its end, the frames queued meanwhile after them; with no body owed
/// nothing is queued.
#[test]
fn a_body_queued_with_the_frames_goes_between_header_and_end() {
    let now = Clock::new().now();
    let mut c = ClientSession::new(now, "box", None);
    c.handle_input(now, &bytes(&[welcome(0)]));
    let hello_len = c.poll_transmit().len();
    c.handle_sent(now, hello_len);
    c.send_body(b"stray");
    assert!(c.poll_transmit().is_empty(), "no body owed");
    let id = c.send_file(wp("f"), meta(), 3, crate::proto::Layout::Dense);
    c.send_commit();
    c.send_body(b"abc");
    c.send_file_end(id, crc32c::crc32c(b"abc"), true);
    let mut out = c.poll_transmit().to_vec();
    let pieces = take_pieces(&mut out);
    assert!(out.is_empty(), "{out:?}");
    let shape: Vec<_> = pieces
        .iter()
        .map(|p| match p {
            Piece::Frame(f) => format!("frame {}", f.kind()),
            Piece::Body(b) => format!("body {}", String::from_utf8_lossy(b)),
        })
        .collect();
    // File, its body, FileEnd, then the Commit held back meanwhile.
    assert_eq!(shape, ["frame 12", "body abc", "frame 13", "frame 14"]);
}

/// A stream that never empties (a slow network, small files queued with
/// the frames as fast as the socket takes some) keeps no more than about
/// twice what is queued: the sent part goes at half the buffer.
#[test]
fn what_was_sent_goes_even_when_the_queue_never_empties() {
    let now = Clock::new().now();
    let mut c = ClientSession::new(now, "box", None);
    c.handle_input(now, &bytes(&[welcome(0)]));
    let hello_len = c.poll_transmit().len();
    c.handle_sent(now, hello_len);
    let body = vec![7u8; 16 * 1024];
    for _ in 0..2000 {
        let id = c.send_file(
            wp("f"),
            meta(),
            body.len() as u64,
            crate::proto::Layout::Dense,
        );
        c.send_body(&body);
        c.send_file_end(id, crc32c::crc32c(&body), true);
        // The socket takes a little less than was queued.
        let queued = c.poll_transmit().len();
        c.handle_sent(now, queued.saturating_sub(1000).max(1));
        assert!(
            c.out.len() <= 2 * (body.len() + 2000) + 1000,
            "{}",
            c.out.len()
        );
    }
}

#[test]
fn restore_stream_with_body() {
    let now = Clock::new().now();
    let mut c = ClientSession::new(now, "box", None);
    let _ = c.handle_input(now, &bytes(&[welcome(1)]));
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
            layout: Default::default(),
        },
    ]);
    let header_len = b.len();
    b.extend_from_slice(b"abc");
    let n = c.handle_input(now, &b);
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
    assert_eq!(c.handle_input(now, &rest), rest.len());
    let ev = events(&mut c);
    assert_eq!(ev.len(), 4);
    assert!(matches!(ev[3], Event::Done { .. }));
    assert!(c.error().is_none());
}

#[test]
fn hostile_server_frames_end_the_session() {
    let now = Clock::new().now();
    // Restore entries nobody asked for.
    let mut c = ClientSession::new(now, "box", None);
    c.handle_input(
        now,
        &bytes(&[
            welcome(0),
            Frame::File {
                id: 1,
                path: wp("x"),
                meta: meta(),
                size: 1,
                layout: Default::default(),
            },
        ]),
    );
    assert!(c.is_closed());
    // A restore's link nobody asked for, and one in a listing's stream.
    let link = Frame::Link {
        id: 1,
        path: wp("b"),
        target: wp("a"),
        meta: meta(),
        size: 1,
    };
    let mut c = ClientSession::new(now, "box", None);
    c.handle_input(now, &bytes(&[welcome(0), link]));
    assert!(c.is_closed());
    let mut c = ClientSession::new(now, "box", None);
    c.handle_input(now, &bytes(&[welcome(0)]));
    let id = c.send_list(WirePath::root());
    c.handle_input(
        now,
        &bytes(&[Frame::Link {
            id,
            path: wp("b"),
            target: wp("a"),
            meta: meta(),
            size: 1,
        }]),
    );
    assert!(c.is_closed());
    // A commit confirmation for a commit never sent.
    let mut c = ClientSession::new(now, "box", None);
    c.handle_input(now, &bytes(&[welcome(0), Frame::Committed { id: 3 }]));
    assert!(c.is_closed());
    // Garbage.
    let mut c = ClientSession::new(now, "box", None);
    c.handle_input(now, b"\xff\xff\xff\xff\xff\xff");
    assert!(c.is_closed());
    assert!(c.error().unwrap().to_string().contains("malformed"));
    // An error frame is reported as a refusal.
    let mut c = ClientSession::new(now, "box", None);
    c.handle_input(
        now,
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
    let now = Clock::new().now();
    let mut c = ClientSession::new(now, "box", None);
    c.handle_input(now, &bytes(&[welcome(0)]));
    let id = c.send_list(WirePath::root());
    let item = ListItem {
        kind: EntryKind::Dir,
        name: b"home".to_vec(),
        meta: meta(),
        size: 0,
        target: vec![],
        rdev: 0,
    };
    c.handle_input(
        now,
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
    let mut p = pair();
    p.drive().expect("quiet");
    p.client.take_events();
    // The shell's verify job reports a first batch, then a damaged file
    // and the totals.
    p.server.shell.verify = vec![
        VerifyBatch {
            damaged: vec![],
            counts: VerifyCounts {
                files: 1,
                bytes: 10,
                damaged: 0,
                unchecked: 0,
            },
        },
        VerifyBatch {
            damaged: vec![(wp("x"), "content changed".into())],
            counts: VerifyCounts {
                files: 2,
                bytes: 20,
                damaged: 1,
                unchecked: 0,
            },
        },
    ];
    let id = p.client.session.send_verify(WirePath::root());
    p.drive().expect("quiet");
    assert_eq!(
        p.server.shell.commands.last(),
        Some(&Command::Verify {
            id,
            path: WirePath::root()
        })
    );
    let ev = p.client.take_events();
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
    // Progress for no verify in flight is a protocol error. No shell
    // sends it, so it goes into the server session by hand.
    p.server
        .session
        .handle_completion(Completion::VerifyProgress {
            id,
            files: 1,
            bytes: 1,
        });
    p.drive().expect("quiet");
    assert!(p.client.session.is_closed());
}

#[test]
fn the_handshake_gives_up_after_hello_timeout() {
    let now = Clock::new().now();
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
    let now = Clock::new().now();
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
    let now = Clock::new().now();
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
    let now = Clock::new().now();
    let mut c = ClientSession::new(now, "box", None);
    c.handle_eof();
    assert_eq!(c.error(), Some(&SessionError::Closed));
    let mut c = ClientSession::new(now, "box", None);
    c.handle_input(
        now,
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
    let mut c = ClientSession::new(now, "box", Some(auth));
    c.handle_input(now, &bytes(&[welcome(0)]));
    assert!(
        matches!(c.error(), Some(SessionError::AuthFailed(m)) if m.contains("did not authenticate"))
    );
}

#[test]
fn a_file_from_for_another_path_than_the_offer_ends_the_session() {
    let now = Clock::new().now();
    let mut c = welcomed(now);
    let id = c.send_restore(wp("r"));
    let offer = Frame::Offer {
        id,
        path: wp("r/harmless"),
        meta: meta(),
        size: 4,
    };
    c.handle_input(now, &bytes(&[offer]));
    events(&mut c);
    c.send_want(id, 0);
    c.handle_input(
        now,
        &bytes(&[Frame::FileFrom {
            id,
            path: wp("r/precious_dir"),
            meta: meta(),
            size: 4,
            offset: 0,
            layout: Default::default(),
        }]),
    );
    assert!(c.is_closed(), "a body for a path never offered is refused");
}

#[test]
fn a_failure_of_the_offered_file_ends_the_offer() {
    let now = Clock::new().now();
    let mut c = welcomed(now);
    let id = c.send_restore(wp("r"));
    let offer = |name: &str| Frame::Offer {
        id,
        path: wp(name),
        meta: meta(),
        size: 4,
    };
    c.handle_input(now, &bytes(&[offer("r/a")]));
    events(&mut c);
    c.send_want(id, 0);
    c.handle_input(
        now,
        &bytes(&[
            Frame::Failed {
                id,
                path: wp("r/a"),
                message: "read: Input/output error".into(),
            },
            offer("r/b"),
        ]),
    );
    assert!(!c.is_closed(), "{:?}", c.error());
    assert!(matches!(
        &events(&mut c)[..],
        [Event::Failed { .. }, Event::Offer { .. }]
    ));
}

/// Issue 10: a `Need` whose metadata bitmap has another length than the
/// manifest's, or needs an entry both whole and as metadata only, ends
/// the session; a good one hands both bitmaps on.
#[test]
fn a_need_with_a_bit_in_both_bitmaps_ends_the_session() {
    let now = Clock::new().now();
    let manifest = |c: &mut ClientSession| {
        c.handle_input(now, &bytes(&[welcome(0)]));
        let entries = (0..3)
            .map(|i| crate::proto::ManifestEntry {
                kind: EntryKind::File,
                path: wp(&format!("f{i}")),
                meta: meta(),
                size: 1,
                target: Vec::new(),
                rdev: 0,
                xattrs: 0,
            })
            .collect();
        c.send_manifest(entries)
    };
    let need = |id, bits: u8, meta: Vec<u8>| Frame::Need {
        id,
        bits: vec![bits],
        meta,
        resume: vec![],
        delta: vec![],
    };
    let mut c = ClientSession::new(now, "box", None);
    let id = manifest(&mut c);
    c.handle_input(now, &bytes(&[need(id, 0b011, vec![0b110])]));
    assert!(c.is_closed());
    assert!(
        c.error()
            .unwrap()
            .to_string()
            .contains("both whole and as metadata"),
        "{}",
        c.error().unwrap()
    );
    let mut c = ClientSession::new(now, "box", None);
    let id = manifest(&mut c);
    c.handle_input(now, &bytes(&[need(id, 0b001, vec![])]));
    assert!(c.is_closed());
    let mut c = ClientSession::new(now, "box", None);
    let id = manifest(&mut c);
    c.handle_input(now, &bytes(&[need(id, 0b001, vec![0b110])]));
    assert!(!c.is_closed());
    assert!(events(&mut c).iter().any(|e| matches!(
        e,
        Event::Need { bits, meta, .. } if bits[..] == [0b001] && meta[..] == [0b110]
    )));
}

/// An `Update` goes out as one frame with no body after it, and is
/// answered by the server session like any entry (staged, then committed).
#[test]
fn an_update_is_one_frame_without_a_body() {
    let now = Clock::new().now();
    let mut c = welcomed(now);
    let id = c.send_update(wp("a/big"), EntryKind::File, meta(), 2 << 20);
    assert_eq!(c.wants_body(), None, "no body is owed");
    let mut out = c.poll_transmit().to_vec();
    let pieces = take_pieces(&mut out);
    assert!(out.is_empty());
    assert_eq!(
        frames_of(&pieces),
        [Frame::Update {
            id,
            path: wp("a/big"),
            kind: EntryKind::File,
            meta: meta(),
            size: 2 << 20,
        }]
    );
    let mut p = pair();
    p.drive().expect("quiet");
    p.client.take_events();
    let s = &mut p.client.session;
    let id = s.send_update(wp("a/big"), EntryKind::File, meta(), 7);
    let commit = s.send_commit();
    p.drive().expect("quiet");
    assert_eq!(
        p.client.take_events(),
        vec![Event::Committed { id: commit }]
    );
    let cmds = &p.server.shell.commands;
    assert!(
        cmds.iter()
            .any(|c| matches!(c, Command::Update { id: i, size: 7, .. } if *i == id)),
        "{cmds:?}"
    );
}

/// Issue 12: a `Closed` carries the names to keep when whole and they
/// fit a frame; else it goes not whole, keeping nothing (deleting
/// nothing there).
#[test]
fn a_closed_keeps_names_only_when_whole_and_within_a_frame() {
    let now = Clock::new().now();
    let mut c = welcomed(now);
    let keep = vec![b"x.tmp".to_vec(), b"cache".to_vec()];
    let fits = c.send_closed(wp("d"), true, keep.clone());
    let not_whole = c.send_closed(wp("e"), false, keep.clone());
    let too_many = vec![vec![b'k'; 255]; 300];
    let overflow = c.send_closed(wp("f"), true, too_many);
    let bad_name = c.send_closed(wp("g"), true, vec![b"a/b".to_vec()]);
    let mut out = c.poll_transmit().to_vec();
    let pieces = take_pieces(&mut out);
    let closed = |id, path: &str, whole, keep: Vec<Vec<u8>>| Frame::Closed {
        id,
        path: wp(path),
        whole,
        keep,
    };
    assert_eq!(
        frames_of(&pieces),
        [
            closed(fits, "d", true, keep),
            closed(not_whole, "e", false, vec![]),
            closed(overflow, "f", false, vec![]),
            closed(bad_name, "g", false, vec![]),
        ]
    );
}

/// A signature made of `n` blocks of 4 KiB, each block distinct.
fn fake_signature(n: u32) -> crate::delta::Signature {
    crate::delta::Signature {
        file_len: u64::from(n) * 4096,
        block: 4096,
        blocks: (0..n)
            .map(|i| crate::delta::BlockSig {
                weak: i,
                strong: [i as u8; 32],
            })
            .collect(),
    }
}

/// Issue 14: the server's `Need` with a delta list, then the signatures
/// of those entries in pieces that fit a frame, as the server session
/// sends them: the client's `Need` event comes once all are in, each
/// signature whole and decoded. A piece out of order, a frame between
/// the pieces, or a delta entry the bitmap does not need ends the session.
#[test]
fn a_need_waits_for_its_signatures_and_hostile_pieces_end_the_session() {
    let now = Clock::new().now();
    let manifest = |c: &mut ClientSession| {
        c.handle_input(now, &bytes(&[welcome(0)]));
        let entries = (0..3)
            .map(|i| crate::proto::ManifestEntry {
                kind: EntryKind::File,
                path: wp(&format!("f{i}")),
                meta: meta(),
                size: 1 << 20,
                target: Vec::new(),
                rdev: 0,
                xattrs: 0,
            })
            .collect();
        c.send_manifest(entries)
    };
    // 5,000 blocks: 180 KB, three pieces; and a small one.
    let (big, small) = (fake_signature(5000), fake_signature(3));
    let server_says = |id: u32, delta: Vec<(u32, Vec<u8>)>| {
        let mut s = crate::testing::server::welcomed(SessionConfig::default(), now);
        crate::testing::server::sent_frames(&mut s);
        s.handle_completion(Completion::Checked {
            id,
            bits: vec![0b111],
            meta: vec![0],
            resume: vec![],
            delta,
        });
        crate::testing::server::sent_frames(&mut s)
    };
    let mut c = ClientSession::new(now, "box", None);
    let id = manifest(&mut c);
    let frames = server_says(id, vec![(0, big.encode()), (2, small.encode())]);
    assert!(matches!(&frames[0], Frame::Need { delta, .. } if delta[..] == [0, 2]));
    let pieces = big.encoded_len().div_ceil(crate::proto::SIGNATURE_CHUNK);
    assert_eq!(pieces, 3);
    assert_eq!(frames.len(), 1 + pieces + 1, "{} frames", frames.len());
    // Everything but the last piece: no event yet.
    let (last, rest) = frames.split_last().unwrap();
    c.handle_input(now, &bytes(rest));
    assert!(!events(&mut c)
        .iter()
        .any(|e| matches!(e, Event::Need { .. })));
    c.handle_input(now, &bytes(std::slice::from_ref(last)));
    let got = events(&mut c);
    let delta = got
        .iter()
        .find_map(|e| match e {
            Event::Need { delta, .. } => Some(delta.clone()),
            _ => None,
        })
        .expect("a Need event");
    assert_eq!(delta, vec![(0, big.clone()), (2, small.clone())]);
    assert!(!c.is_closed());

    // A frame between the pieces.
    let mut c = ClientSession::new(now, "box", None);
    let id = manifest(&mut c);
    let mut frames = server_says(id, vec![(0, big.encode())]);
    frames.insert(2, Frame::Committed { id: 99 });
    c.handle_input(now, &bytes(&frames));
    assert!(c.is_closed());
    assert!(c
        .error()
        .unwrap()
        .to_string()
        .contains("expected the signatures"));

    // Pieces of the second signature before the first is whole.
    let mut c = ClientSession::new(now, "box", None);
    let id = manifest(&mut c);
    let mut frames = server_says(id, vec![(0, big.encode()), (2, small.encode())]);
    frames.swap(2, 4);
    c.handle_input(now, &bytes(&frames));
    assert!(c.is_closed());

    // A signature that does not decode.
    let mut c = ClientSession::new(now, "box", None);
    let id = manifest(&mut c);
    let frames = server_says(id, vec![(1, vec![0xd1, 0, 0])]);
    c.handle_input(now, &bytes(&frames));
    assert!(c.is_closed());
    assert!(c.error().unwrap().to_string().contains("bad signature"));

    // A delta entry the server does not need.
    let mut c = ClientSession::new(now, "box", None);
    let id = manifest(&mut c);
    let need = Frame::Need {
        id,
        bits: vec![0b001],
        meta: vec![0],
        resume: vec![],
        delta: vec![1],
    };
    c.handle_input(now, &bytes(&[need]));
    assert!(c.is_closed());
}
