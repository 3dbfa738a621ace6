//! The session's own tests: frames in, frames and commands out.

use super::*;
use crate::testing::clock::Clock;
use crate::testing::frames::{bytes, hello, meta, wp};
use crate::testing::server::{drain_commands, sent_frames, welcomed};

#[test]
fn garbage_gets_an_error_frame_and_closes() {
    let now = Clock::new().now();
    let mut s = ServerSession::new(SessionConfig::default(), now, [0; 32]);
    s.handle_input(now, b"GET / HTTP/1.1\r\n\r\n");
    assert!(s.is_closing());
    assert!(matches!(
        sent_frames(&mut s)[..],
        [Frame::Error {
            code: ErrorCode::Malformed,
            ..
        }]
    ));
    assert!(drain_commands(&mut s).is_empty());
}

#[test]
fn request_before_hello_is_refused() {
    let now = Clock::new().now();
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
        sent_frames(&mut s)[..],
        [Frame::Error {
            code: ErrorCode::Unexpected,
            ..
        }]
    ));
}

#[test]
fn ids_must_increase_and_file_end_must_match() {
    let now = Clock::new().now();
    let mut s = welcomed(SessionConfig::default(), now);
    s.handle_input(
        now,
        &bytes(&[Frame::Commit { id: 5 }, Frame::Commit { id: 5 }]),
    );
    assert!(s.is_closing());
    // The protocol error ends the session: the commit queued before it
    // is not carried out, and the batch is dropped.
    assert_eq!(drain_commands(&mut s), vec![Command::Abort]);

    let mut s = welcomed(SessionConfig::default(), now);
    s.handle_input(
        now,
        &bytes(&[
            Frame::File {
                id: 1,
                path: wp("f"),
                meta: meta(),
                size: 0,
                layout: Default::default(),
            },
            Frame::FileEnd {
                id: 2,
                crc: 0,
                ok: true,
            },
        ]),
    );
    assert!(s.is_closing());
    let mut s = welcomed(SessionConfig::default(), now);
    s.handle_input(
        now,
        &bytes(&[
            Frame::File {
                id: 1,
                path: wp("f"),
                meta: meta(),
                size: 0,
                layout: Default::default(),
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
    let now = Clock::new().now();
    let mut s = welcomed(SessionConfig::default(), now);
    let mut b = bytes(&[Frame::Commit { id: 1 }]);
    b.extend_from_slice(&[0xff; 5]);
    s.handle_input(now, &b);
    // The commit queued before the bad frame is dropped with the rest.
    assert_eq!(drain_commands(&mut s), vec![Command::Abort]);
    s.handle_completion(Completion::Committed { id: 1 });
    s.handle_completion(Completion::NamespaceFailed {
        message: "cannot open namespace".into(),
    });
    assert!(matches!(
        sent_frames(&mut s)[..],
        [Frame::Error {
            code: ErrorCode::Malformed,
            ..
        }]
    ));
    assert!(drain_commands(&mut s).is_empty());
    assert!(s.error().is_some_and(|e| e.starts_with("malformed frame")));
}

#[test]
fn timeouts() {
    let t0 = Clock::new().now();
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
    drain_commands(&mut s);
    let t1 = t0 + Duration::from_secs(3);
    s.handle_input(t1, &bytes(&[Frame::Commit { id: 1 }]));
    assert_eq!(s.poll_timeout(), Some(t1 + Duration::from_secs(5)));
    s.handle_timeout(t1 + Duration::from_secs(4));
    assert!(!s.is_closing());
    s.handle_timeout(t1 + Duration::from_secs(5));
    assert!(s.is_closing());
    assert!(drain_commands(&mut s).contains(&Command::Abort));
}

#[test]
fn a_client_that_stops_reading_a_restore_times_out() {
    let t0 = Clock::new().now();
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
    let mut s = ServerSession::busy(SessionConfig::default(), Clock::new().now(), 3);
    assert!(s.is_closing());
    match &sent_frames(&mut s)[..] {
        [Frame::Error {
            code: ErrorCode::Busy,
            message,
        }] => assert_eq!(message, "server busy (3 clients connected)"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn nothing_queued_runs_or_is_answered_after_an_error() {
    let now = Clock::new().now();
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
    s.handle_completion(Completion::NamespaceFailed {
        message: "cannot open namespace".into(),
    });
    assert_eq!(drain_commands(&mut s), vec![Command::Abort]);
    s.handle_completion(Completion::Done { id: 1 });
    s.handle_completion(Completion::Committed { id: 2 });
    let out = sent_frames(&mut s);
    assert!(matches!(out.last(), Some(Frame::Error { .. })), "{out:?}");
    // A second failure adds nothing either.
    s.handle_shutdown();
    assert!(sent_frames(&mut s).is_empty());
}

#[test]
fn no_abort_for_a_namespace_never_opened() {
    let now = Clock::new().now();
    let mut s = ServerSession::new(SessionConfig::default(), now, [0; 32]);
    let mut b = bytes(&[hello("a")]);
    b.extend_from_slice(&[0xff; 5]);
    s.handle_input(now, &b);
    assert!(s.is_closing());
    assert!(drain_commands(&mut s).is_empty());
}
