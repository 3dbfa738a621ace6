//! Raw TCP against a running server: malformed, oversized, out-of-order and
//! path-escaping frames. After each, the server is alive and serves a normal
//! backup, nothing exists outside its root, and no `.rsb-tmp.` file remains.

#[macro_use]
mod common;

use std::fs;
use std::time::Duration;

use common::*;
use rsb::proto::codec::to_vec;
use rsb::proto::{ErrorCode, Frame, WirePath};

const CLOSE: Duration = Duration::from_secs(5);

/// The end of every hostile test.
fn still_sane(srv: &Server) {
    assert_healthy(srv);
    assert_only_root(srv);
    assert_no_tmp_soon(srv);
}

/// Frames before the close must be at most one `Error`.
fn closed_with_error(raw: &mut Raw) -> Option<ErrorCode> {
    let frames = raw.expect_closed(CLOSE);
    match frames.as_slice() {
        [] => None,
        [Frame::Error { code, .. }] => Some(*code),
        other => panic!("expected at most one Error before the close, got {other:?}"),
    }
}

#[test]
fn hand_encoding_matches_the_codec() {
    let m = meta(0o755);
    assert_eq!(
        raw_dir(7, b"a/b"),
        to_vec(&Frame::Dir {
            id: 7,
            path: wpath("a/b"),
            meta: m
        })
    );
    assert_eq!(
        raw_file(7, b"f", 9),
        to_vec(&Frame::File {
            id: 7,
            path: wpath("f"),
            meta: meta(0o644),
            size: 9,
            layout: Default::default(),
        })
    );
    assert_eq!(
        raw_symlink(7, b"l", b"t"),
        to_vec(&Frame::Symlink {
            id: 7,
            path: wpath("l"),
            target: b"t".to_vec(),
            meta: meta(0o777)
        })
    );
    assert_eq!(
        raw_list(3, b"x"),
        to_vec(&Frame::List {
            id: 3,
            path: wpath("x")
        })
    );
    assert_eq!(
        raw_restore(3, b""),
        to_vec(&Frame::Restore {
            id: 3,
            path: WirePath::root()
        })
    );
    assert_eq!(
        raw_hello(b"RSB\0", rsb::proto::VERSION, b"n", 0),
        to_vec(&hello("n"))
    );
}

#[test]
fn garbage_bytes() {
    let srv = Server::start(&[]);
    let mut raw = Raw::connect(srv.port());
    let _ = raw.send_raw(&random_bytes(1, 100_000));
    raw.expect_closed(CLOSE);
    still_sane(&srv);
}

#[test]
fn truncated_frame_then_close() {
    let srv = Server::start(&[]);
    for cut in [1, 4, 5, 12] {
        let mut raw = Raw::connect(srv.port());
        let h = to_vec(&hello(NAME));
        raw.send_raw(&h[..cut]).unwrap();
        drop(raw);
    }
    // And after a valid Hello, half of a Dir frame.
    let mut raw = Raw::hello(srv.port(), NAME);
    let d = raw_dir(1, b"half");
    raw.send_raw(&d[..d.len() - 3]).unwrap();
    drop(raw);
    still_sane(&srv);
    assert!(!srv.ns(NAME).join("half").exists());
}

#[test]
fn oversized_length() {
    let srv = Server::start(&[]);
    for kind in [1u8, 12, 20] {
        for len in [u32::MAX, rsb::proto::MAX_PAYLOAD + 1] {
            let mut raw = Raw::connect(srv.port());
            let mut b = vec![kind];
            b.extend_from_slice(&len.to_be_bytes());
            b.extend_from_slice(&[0u8; 1000]);
            let _ = raw.send_raw(&b);
            closed_with_error(&mut raw);
        }
    }
    // Also after a valid Hello.
    let mut raw = Raw::hello(srv.port(), NAME);
    let _ = raw.send_raw(&[12, 0xff, 0xff, 0xff, 0xff]);
    closed_with_error(&mut raw);
    still_sane(&srv);
}

#[test]
fn unknown_kind() {
    let srv = Server::start(&[]);
    for kind in [0u8, 4, 9, 17, 99, 255] {
        let mut raw = Raw::connect(srv.port());
        let _ = raw.send_raw(&raw_frame(kind, b"abcd"));
        closed_with_error(&mut raw);
    }
    let mut raw = Raw::hello(srv.port(), NAME);
    let _ = raw.send_raw(&raw_frame(99, b""));
    closed_with_error(&mut raw);
    still_sane(&srv);
}

#[test]
fn frame_before_hello() {
    let srv = Server::start(&[]);
    let firsts = [
        to_vec(&Frame::List {
            id: 1,
            path: WirePath::root(),
        }),
        to_vec(&Frame::Restore {
            id: 1,
            path: WirePath::root(),
        }),
        to_vec(&Frame::Dir {
            id: 1,
            path: wpath("pre"),
            meta: meta(0o755),
        }),
        file_frames(1, "pre-file", b"data", None, true),
        to_vec(&Frame::Commit { id: 1 }),
        to_vec(&Frame::Welcome {
            version: 1,
            flags: 0,
            proof: vec![],
            store: (0, 0),
        }),
    ];
    for first in firsts {
        let mut raw = Raw::connect(srv.port());
        let _ = raw.send_raw(&first);
        closed_with_error(&mut raw);
    }
    // A second Hello after Welcome is out of order too.
    let mut raw = Raw::hello(srv.port(), NAME);
    raw.send(&hello(NAME));
    closed_with_error(&mut raw);
    still_sane(&srv);
    assert!(fs::read_dir(srv.root())
        .unwrap()
        .flatten()
        .all(|e| e.file_name() == NAME));
}

#[test]
fn bad_hellos() {
    let srv = Server::start(&[]);
    let long = vec![b'x'; 65];
    let cases: Vec<Vec<u8>> = vec![
        raw_hello(b"RSB\x01", rsb::proto::VERSION, NAME.as_bytes(), 0),
        raw_hello(b"HTTP", rsb::proto::VERSION, NAME.as_bytes(), 0),
        raw_hello(b"RSB\0", 999, NAME.as_bytes(), 0),
        raw_hello(b"RSB\0", rsb::proto::VERSION, NAME.as_bytes(), 1),
        raw_hello(b"RSB\0", rsb::proto::VERSION, b"..", 0),
        raw_hello(b"RSB\0", rsb::proto::VERSION, b".", 0),
        raw_hello(b"RSB\0", rsb::proto::VERSION, b"", 0),
        raw_hello(b"RSB\0", rsb::proto::VERSION, b"a/b", 0),
        raw_hello(b"RSB\0", rsb::proto::VERSION, b"../escape", 0),
        raw_hello(b"RSB\0", rsb::proto::VERSION, b"/abs", 0),
        raw_hello(b"RSB\0", rsb::proto::VERSION, &long, 0),
        raw_hello(b"RSB\0", rsb::proto::VERSION, b"\xff\xfe", 0),
        b"GET / HTTP/1.0\r\n\r\n".to_vec(),
    ];
    for c in cases {
        let mut raw = Raw::connect(srv.port());
        let _ = raw.send_raw(&c);
        let frames = raw.expect_closed(CLOSE);
        assert!(
            frames.iter().all(|f| matches!(f, Frame::Error { .. })),
            "hello {c:?} got {frames:?}"
        );
    }
    // Nothing was created for any of them.
    let names: Vec<_> = fs::read_dir(srv.root())
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(names.is_empty(), "created {names:?}");
    still_sane(&srv);
}

#[test]
fn hostile_paths_are_refused() {
    let srv = Server::start(&[]);
    let paths: [&[u8]; 10] = [
        b"..",
        b"../x",
        b"a/../../x",
        b"/abs",
        b"/tmp/evil",
        b"a\0b",
        b"a//b",
        b".",
        b"./x",
        b"x/",
    ];
    for p in paths {
        let frames = [
            raw_dir(1, p),
            raw_file(1, p, 0),
            raw_symlink(1, p, b"/"),
            raw_list(1, p),
            raw_restore(1, p),
            raw_frame(
                16,
                &[1u32.to_be_bytes().to_vec(), enc_bytes(p), enc_bytes(b"msg")].concat(),
            ),
        ];
        for f in frames {
            let mut raw = Raw::hello(srv.port(), NAME);
            let _ = raw.send_raw(&f);
            let _ = raw.send_raw(&to_vec(&Frame::Commit { id: 2 }));
            let got = raw.expect_closed(CLOSE);
            assert!(
                got.iter().all(|f| matches!(f, Frame::Error { .. })),
                "path {:?}: expected Error and close, got {got:?}",
                String::from_utf8_lossy(p)
            );
        }
    }
    still_sane(&srv);
    let names: Vec<_> = fs::read_dir(srv.root())
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(names.iter().all(|n| n == NAME), "created {names:?}");
    // Only the healthy backup's scratch tree is in the namespace.
    let top = scratch()
        .path()
        .components()
        .nth(1)
        .unwrap()
        .as_os_str()
        .to_owned();
    let inside: Vec<_> = fs::read_dir(srv.ns(NAME))
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        // The namespace's table of the names the healthy backup sent.
        .filter(|n| n != ".rsb-tmp.names")
        .collect();
    assert!(
        inside.iter().all(|n| *n == top),
        "created inside the namespace: {inside:?}"
    );
}

/// Sends frames and collects the answers until `Committed`/`Done` with `id`,
/// or the close. Body bytes of a `File` are collected too.
fn exchange(raw: &mut Raw, bytes: &[u8], id: u32) -> (Vec<Frame>, Vec<u8>) {
    let _ = raw.send_raw(bytes);
    let (mut frames, mut bodies) = (Vec::new(), Vec::new());
    loop {
        match raw.recv(CLOSE) {
            Recv::Frame(f) => {
                let end =
                    matches!(f, Frame::Committed { id: i } | Frame::Done { id: i } if i == id);
                if let Frame::File { size, .. } = f {
                    bodies.extend(raw.recv_body(size as usize, CLOSE).unwrap_or_default());
                }
                frames.push(f);
                if end {
                    return (frames, bodies);
                }
            }
            Recv::Closed => return (frames, bodies),
            other => panic!("waiting for {id}: {other:?} after {frames:?}"),
        }
    }
}

#[test]
fn symlinks_in_the_store_are_never_followed() {
    let srv = Server::start(&[]);
    let outside = scratch();
    fs::write(outside.join("secret"), "top secret").unwrap();
    let out = outside.path().to_str().unwrap().to_owned();
    let mut raw = Raw::hello(srv.port(), NAME);

    // esc -> the outside directory, committed.
    let mut b = to_vec(&Frame::Symlink {
        id: 1,
        path: wpath("esc"),
        target: out.clone().into_bytes(),
        meta: meta(0o777),
    });
    b.extend(to_vec(&Frame::Commit { id: 2 }));
    let (f, _) = exchange(&mut raw, &b, 2);
    assert!(
        f.iter().any(|f| matches!(f, Frame::Committed { id: 2 })),
        "{f:?}"
    );
    assert_eq!(
        fs::read_link(srv.ns(NAME).join("esc")).unwrap().to_str(),
        Some(out.as_str())
    );

    // Writing through it: a file, a directory, a link, then a commit.
    let mut b = file_frames(3, "esc/pwned", b"pwned", None, true);
    b.extend(to_vec(&Frame::Dir {
        id: 4,
        path: wpath("esc/newdir"),
        meta: meta(0o755),
    }));
    b.extend(to_vec(&Frame::Symlink {
        id: 5,
        path: wpath("esc/lnk"),
        target: b"x".to_vec(),
        meta: meta(0o777),
    }));
    b.extend(to_vec(&Frame::Commit { id: 6 }));
    // Refusing (Failed or Error) and replacing the link by a real directory
    // are both safe; what matters is the outside directory, checked below.
    exchange(&mut raw, &b, 6);
    drop(raw);

    // Reading through it.
    let mut raw = Raw::hello(srv.port(), NAME);
    let (f, body) = exchange(
        &mut raw,
        &to_vec(&Frame::Restore {
            id: 7,
            path: wpath("esc/secret"),
        }),
        7,
    );
    assert!(
        !f.iter().any(|f| matches!(f, Frame::File { .. })),
        "restore followed the link: {f:?}"
    );
    assert!(body.is_empty());
    let (f, _) = exchange(
        &mut raw,
        &to_vec(&Frame::List {
            id: 8,
            path: wpath("esc/secret"),
        }),
        8,
    );
    assert!(
        !f.iter().any(|f| matches!(f, Frame::ListEntry { .. })),
        "list followed the link: {f:?}"
    );
    let (f, _) = exchange(
        &mut raw,
        &to_vec(&Frame::List {
            id: 9,
            path: wpath("esc"),
        }),
        9,
    );
    assert!(
        f.iter()
            .all(|f| !matches!(f, Frame::ListEntry { item, .. } if item.name == b"secret")),
        "list of the link listed its target: {f:?}"
    );

    // A directory may replace the link; it must become a real directory.
    let mut b = to_vec(&Frame::Dir {
        id: 10,
        path: wpath("esc"),
        meta: meta(0o755),
    });
    b.extend(file_frames(11, "esc/inner", b"inner", None, true));
    b.extend(to_vec(&Frame::Commit { id: 12 }));
    exchange(&mut raw, &b, 12);
    drop(raw);

    let mut names: Vec<_> = fs::read_dir(outside.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    names.sort();
    assert_eq!(
        names,
        vec!["secret"],
        "something was written outside the root"
    );
    assert_eq!(fs::read(outside.join("secret")).unwrap(), b"top secret");
    still_sane(&srv);
}

#[test]
fn file_body_cut_off_by_closing() {
    let srv = Server::start(&[]);
    // An older version first.
    let mut raw = Raw::hello(srv.port(), NAME);
    let mut b = to_vec(&Frame::Dir {
        id: 1,
        path: wpath("cut"),
        meta: meta(0o755),
    });
    b.extend(file_frames(2, "cut/big", b"old version", None, true));
    b.extend(to_vec(&Frame::Commit { id: 3 }));
    let (f, _) = exchange(&mut raw, &b, 3);
    assert!(
        f.iter().any(|f| matches!(f, Frame::Committed { id: 3 })),
        "{f:?}"
    );
    let stored = srv.ns(NAME).join("cut/big");
    assert_eq!(fs::read(&stored).unwrap(), b"old version");

    // Then a new version that never finishes.
    let mut b = to_vec(&Frame::File {
        id: 4,
        path: wpath("cut/big"),
        meta: meta(0o644),
        size: 1 << 20,
        layout: Default::default(),
    });
    b.extend(random_bytes(3, 300_000));
    raw.send_raw(&b).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    drop(raw);
    assert_no_tmp_soon(&srv);
    assert_eq!(
        fs::read(&stored).unwrap(),
        b"old version",
        "old version damaged"
    );
    // The same with FileEnd but no Commit.
    let mut raw = Raw::hello(srv.port(), NAME);
    raw.send_raw(&file_frames(1, "cut/big", b"uncommitted", None, true))
        .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    drop(raw);
    assert_no_tmp_soon(&srv);
    assert_eq!(
        fs::read(&stored).unwrap(),
        b"old version",
        "uncommitted file became visible"
    );
    still_sane(&srv);
}

#[test]
fn bad_crc_and_discarded_files_never_become_visible() {
    let srv = Server::start(&[]);
    let mut raw = Raw::hello(srv.port(), NAME);
    let mut b = file_frames(1, "f", b"good", None, true);
    b.extend(to_vec(&Frame::Commit { id: 2 }));
    exchange(&mut raw, &b, 2);
    let stored = srv.ns(NAME).join("f");
    assert_eq!(fs::read(&stored).unwrap(), b"good");

    let mut b = file_frames(3, "f", b"evil", Some(crc32c::crc32c(b"good")), true);
    b.extend(file_frames(4, "g", b"discarded", None, false));
    b.extend(to_vec(&Frame::Commit { id: 5 }));
    let (f, _) = exchange(&mut raw, &b, 5);
    assert!(
        f.iter()
            .any(|f| matches!(f, Frame::Failed { id: 3, .. }) || matches!(f, Frame::Error { .. })),
        "bad crc not reported: {f:?}"
    );
    assert_eq!(
        fs::read(&stored).unwrap(),
        b"good",
        "a file with a bad crc replaced the old one"
    );
    assert!(
        !srv.ns(NAME).join("g").exists(),
        "a discarded file became visible"
    );
    drop(raw);
    still_sane(&srv);
}

#[test]
fn a_half_sent_frame_does_not_stall_other_clients() {
    let srv = Server::start(&[]);
    let mut stuck = Raw::hello(srv.port(), NAME);
    let f = to_vec(&Frame::File {
        id: 1,
        path: wpath("slow"),
        meta: meta(0o644),
        size: 10 << 20,
        layout: Default::default(),
    });
    stuck.send_raw(&f).unwrap();
    stuck.send_raw(&random_bytes(5, 1000)).unwrap();
    let mut half = Raw::connect(srv.port());
    half.send_raw(&to_vec(&hello(NAME))[..7]).unwrap();
    let s = scratch();
    let src = s.join("src");
    small_tree(&src, 9);
    let o = srv
        .client(argv!["backup", src])
        .timeout(Duration::from_secs(10))
        .run();
    o.ok();
    assert_same_tree(&src, &srv.store(NAME, &src));
    srv.client(argv!["ls", src])
        .timeout(Duration::from_secs(10))
        .run()
        .ok();
    drop(stuck);
    drop(half);
    still_sane(&srv);
}

#[test]
fn many_hostile_connections_at_once() {
    let srv = Server::start(&[]);
    let mut conns: Vec<Raw> = (0..50).map(|_| Raw::connect(srv.port())).collect();
    for (i, c) in conns.iter_mut().enumerate() {
        let _ = c.send_raw(&random_bytes(i as u64, 64 + i * 37));
    }
    for c in conns.iter_mut() {
        c.expect_closed(CLOSE);
    }
    still_sane(&srv);
}
