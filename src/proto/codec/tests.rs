//! The codec's tests: every frame round-trips, every prefix is `Partial`,
//! bad input of each kind is refused with its reason.

use super::*;
use crate::proto::{CopyRange, MAX_DELTA_COPIES, MAX_SIGNATURE};

fn path(s: &str) -> WirePath {
    WirePath::new(s.as_bytes().to_vec()).unwrap()
}

fn meta() -> Meta {
    Meta {
        mode: 0o644,
        mtime: Time {
            secs: -5,
            nanos: 999_999_999,
        },
        uid: 1000,
        gid: u32::MAX,
    }
}

fn samples() -> Vec<Frame> {
    vec![
        Frame::Hello {
            version: 1,
            name: "laptop".into(),
            flags: 0,
            nonce: vec![],
        },
        Frame::Hello {
            version: 7,
            name: "x".into(),
            flags: 3,
            nonce: vec![1, 2, 3],
        },
        Frame::Welcome {
            version: 1,
            flags: 1,
            proof: vec![],
            store: (0, 0),
        },
        Frame::Welcome {
            version: 1,
            flags: 3,
            proof: vec![9; 32],
            store: (7, 8),
        },
        Frame::Challenge { nonce: vec![7; 32] },
        Frame::Proof { mac: vec![] },
        Frame::Proof { mac: vec![1; 64] },
        Frame::Verify {
            id: 9,
            path: WirePath::root(),
        },
        Frame::Progress {
            id: 9,
            files: 3,
            bytes: 4,
        },
        Frame::Verified {
            id: 9,
            files: 1,
            bytes: u64::MAX,
            damaged: 2,
            unchecked: 3,
        },
        Frame::Error {
            code: ErrorCode::Busy,
            message: "server busy".into(),
        },
        Frame::Dir {
            id: 1,
            path: path("a/b"),
            meta: meta(),
        },
        Frame::Symlink {
            id: 2,
            path: path("a/l"),
            target: b"../x\xff".to_vec(),
            meta: meta(),
        },
        Frame::Link {
            id: 2,
            path: path("b/second"),
            target: path("a/first\t"),
            meta: meta(),
            size: u64::MAX,
        },
        Frame::Link {
            id: 2,
            path: path("x"),
            target: path("y"),
            meta: meta(),
            size: 0,
        },
        Frame::At {
            secs: -1,
            nanos: 999_999_999,
        },
        Frame::At {
            secs: i64::MAX,
            nanos: 0,
        },
        Frame::Versions {
            id: 7,
            path: WirePath::root(),
        },
        Frame::Agent { id: 3 },
        Frame::Plan { text: vec![] },
        Frame::Plan {
            text: b"[laptop]\npath /home\nwatch 2s\n".to_vec(),
        },
        Frame::Versions {
            id: u32::MAX,
            path: path("a/b\n"),
        },
        Frame::Version {
            id: 7,
            item: VersionItem {
                path: path("a/f"),
                kind: EntryKind::File,
                size: 1 << 40,
                meta: meta(),
                stored: Time {
                    secs: 1_700_000_000,
                    nanos: 5,
                },
                until: Time::default(),
                held: u64::MAX,
            },
        },
        Frame::Version {
            id: 8,
            item: VersionItem {
                path: path("d"),
                kind: EntryKind::Dir,
                size: 0,
                meta: meta(),
                stored: Time { secs: -3, nanos: 0 },
                until: Time {
                    secs: 4,
                    nanos: 999_999_999,
                },
                held: 0,
            },
        },
        Frame::Update {
            id: 2,
            path: path("a/f"),
            kind: EntryKind::File,
            meta: meta(),
            size: 2 << 20,
        },
        Frame::Update {
            id: u32::MAX,
            path: path("l\u{7f}"),
            kind: EntryKind::Symlink,
            meta: meta(),
            size: 0,
        },
        Frame::File {
            id: 3,
            path: path("a/f\nx"),
            meta: meta(),
            size: u64::MAX,
            layout: Default::default(),
        },
        Frame::FileEnd {
            id: 3,
            crc: 0xdeadbeef,
            ok: true,
        },
        Frame::FileEnd {
            id: 3,
            crc: 0,
            ok: false,
        },
        Frame::Commit { id: 4 },
        Frame::Committed { id: 4 },
        Frame::Failed {
            id: 5,
            path: WirePath::root(),
            message: "no".into(),
        },
        Frame::List {
            id: 6,
            path: path("home"),
        },
        Frame::ListEntry {
            id: 6,
            item: ListItem {
                kind: EntryKind::Symlink,
                name: b"n".to_vec(),
                meta: meta(),
                size: 0,
                target: b"t".to_vec(),
                rdev: 0,
            },
        },
        Frame::Restore {
            id: 7,
            path: WirePath::root(),
        },
        Frame::Done { id: 7 },
        Frame::Manifest {
            id: 8,
            entries: vec![
                ManifestEntry {
                    kind: EntryKind::File,
                    path: path("a/f"),
                    meta: meta(),
                    size: 12,
                    target: vec![],
                    rdev: 0,
                    xattrs: 0x0123_4567_89ab_cdef,
                },
                ManifestEntry {
                    kind: EntryKind::Symlink,
                    path: path("a/l"),
                    meta: meta(),
                    size: 0,
                    target: b"t".to_vec(),
                    rdev: 0,
                    xattrs: 0,
                },
                ManifestEntry {
                    kind: EntryKind::Dir,
                    path: path("a"),
                    meta: meta(),
                    size: 0,
                    target: vec![],
                    rdev: 0,
                    xattrs: 7,
                },
            ],
        },
        Frame::Manifest {
            id: 9,
            entries: vec![],
        },
        Frame::Need {
            id: 8,
            bits: vec![0b101],
            meta: vec![0b010],
            resume: vec![],
            delta: vec![],
        },
        Frame::Need {
            id: 8,
            bits: vec![0b1],
            meta: vec![0],
            resume: vec![(0, 1 << 40)],
            delta: vec![0],
        },
        Frame::Signature {
            id: 8,
            index: 0,
            total: 5,
            chunk: vec![1, 2, 3],
        },
        Frame::FileDelta {
            id: 11,
            path: path("vm.img"),
            meta: meta(),
            size: 1 << 30,
            basis: 1 << 29,
            offset: 0,
            copies: vec![
                CopyRange {
                    dst: 0,
                    src: 4096,
                    len: 8192,
                },
                CopyRange {
                    dst: 8192,
                    src: 0,
                    len: 4096,
                },
                CopyRange {
                    dst: 1 << 20,
                    src: (1 << 29) - 1,
                    len: 1,
                },
            ],
        },
        Frame::FileDelta {
            id: 12,
            path: path("a"),
            meta: meta(),
            size: 0,
            basis: 0,
            offset: 0,
            copies: vec![],
        },
        Frame::FileDelta {
            id: 13,
            path: path("vm.img"),
            meta: meta(),
            size: 3 << 20,
            basis: 1 << 20,
            offset: 1 << 20,
            copies: vec![CopyRange {
                dst: 1 << 20,
                src: 0,
                len: 4096,
            }],
        },
        Frame::Need {
            id: 8,
            bits: vec![],
            meta: vec![],
            resume: vec![],
            delta: vec![],
        },
        Frame::FileFrom {
            id: 10,
            path: path("big"),
            meta: meta(),
            size: 100,
            offset: 40,
            layout: Default::default(),
        },
        Frame::FileFrom {
            id: 11,
            path: path("big"),
            meta: meta(),
            size: 100,
            offset: 100,
            layout: Default::default(),
        },
        Frame::Offer {
            id: 12,
            path: path("big"),
            meta: meta(),
            size: 1 << 33,
        },
        Frame::Want { id: 12, offset: 77 },
        Frame::Skip { id: 13 },
        Frame::Names {
            users: vec![(0, b"root".to_vec()), (1000, b"ann\xff".to_vec())],
            groups: vec![(u32::MAX - 1, vec![b'g'; 255])],
        },
        Frame::Names {
            users: vec![],
            groups: vec![],
        },
        Frame::Xattrs {
            id: 10,
            path: path("a/f"),
            attrs: crate::proto::xattrs::Xattrs::from_pairs(vec![
                (b"user.color".to_vec(), b"blue".to_vec()),
                (b"system.posix_acl_access".to_vec(), vec![2, 0, 0, 0]),
                (b"trusted.empty".to_vec(), vec![]),
            ])
            .unwrap(),
        },
        Frame::Xattrs {
            id: 11,
            path: WirePath::root(),
            attrs: crate::proto::xattrs::Xattrs::new(),
        },
        Frame::Closed {
            id: 12,
            path: path("home/ann"),
            whole: true,
            keep: vec![],
        },
        Frame::Closed {
            id: 13,
            path: WirePath::root(),
            whole: false,
            keep: vec![],
        },
        Frame::Closed {
            id: 14,
            path: path("a"),
            whole: true,
            keep: vec![b"x.tmp".to_vec(), vec![b'n'; 255], b"\xff ...".to_vec()],
        },
    ]
}

#[test]
fn every_frame_round_trips() {
    for f in samples() {
        let bytes = to_vec(&f);
        assert_eq!(
            decode(&bytes),
            Ok(Decoded::Frame(f.clone(), bytes.len())),
            "{f:?}"
        );
    }
}

#[test]
fn every_prefix_is_partial() {
    for f in samples() {
        let bytes = to_vec(&f);
        for n in 0..bytes.len() {
            assert_eq!(
                decode(&bytes[..n]),
                Ok(Decoded::Partial),
                "{f:?} prefix {n}"
            );
        }
    }
}

#[test]
fn back_to_back_frames_decode_one_at_a_time() {
    let mut all = Vec::new();
    for f in samples() {
        encode(&f, &mut all);
    }
    let mut off = 0;
    for f in samples() {
        match decode(&all[off..]).unwrap() {
            Decoded::Frame(g, n) => {
                assert_eq!(g, f);
                off += n;
            }
            Decoded::Partial => panic!("partial"),
        }
    }
    assert_eq!(off, all.len());
}

#[test]
fn oversized_unknown_and_trailing_rejected() {
    assert_eq!(
        decode(&[12, 0xff, 0xff, 0xff, 0xff]),
        Err(DecodeError::TooLarge(u32::MAX))
    );
    assert_eq!(decode(&[99, 0, 0, 0, 0]), Err(DecodeError::UnknownKind(99)));
    assert_eq!(decode(&[0, 0, 0, 0, 0]), Err(DecodeError::UnknownKind(0)));
    let mut b = to_vec(&Frame::Commit { id: 1 });
    b.push(0);
    b[4] += 1;
    assert_eq!(decode(&b), Err(DecodeError::Trailing(1)));
    // A length that promises less than the fields need.
    let mut b = to_vec(&Frame::Commit { id: 1 });
    b[4] = 2;
    b.truncate(7);
    assert_eq!(decode(&b), Err(DecodeError::Truncated("id")));
}

#[test]
fn bad_fields_rejected() {
    let mut hello = to_vec(&Frame::Hello {
        version: 1,
        name: "a".into(),
        flags: 0,
        nonce: vec![],
    });
    hello[5] = b'X';
    assert_eq!(decode(&hello), Err(DecodeError::BadMagic));
    // Nonces and MACs longer than MAX_TOKEN.
    let long = to_vec(&Frame::Proof { mac: vec![0; 65] });
    assert_eq!(decode(&long), Err(DecodeError::Invalid("mac")));
    let long = to_vec(&Frame::Challenge { nonce: vec![0; 65] });
    assert_eq!(decode(&long), Err(DecodeError::Invalid("nonce")));

    let raw = |kind: u8, payload: &[u8]| {
        let mut v = vec![kind];
        v.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        v.extend_from_slice(payload);
        v
    };
    // Path "../x" in a List.
    let mut p = 1u32.to_be_bytes().to_vec();
    p.extend_from_slice(&4u32.to_be_bytes());
    p.extend_from_slice(b"../x");
    assert_eq!(
        decode(&raw(20, &p)),
        Err(DecodeError::Path(PathError::DotDot))
    );
    // Absolute path.
    let mut p = 1u32.to_be_bytes().to_vec();
    p.extend_from_slice(&4u32.to_be_bytes());
    p.extend_from_slice(b"/etc");
    assert_eq!(
        decode(&raw(22, &p)),
        Err(DecodeError::Path(PathError::Absolute))
    );
    // A byte-string length pointing past the payload.
    let mut p = 1u32.to_be_bytes().to_vec();
    p.extend_from_slice(&u32::MAX.to_be_bytes());
    assert_eq!(decode(&raw(20, &p)), Err(DecodeError::Truncated("path")));
    // Mode with file-type bits; nanos out of range; bad status.
    let mut d = to_vec(&Frame::Dir {
        id: 1,
        path: path("a"),
        meta: meta(),
    });
    let mode_at = 5 + 4 + 4 + 1;
    d[mode_at] = 0xff;
    assert_eq!(decode(&d), Err(DecodeError::Invalid("mode")));
    let mut d = to_vec(&Frame::Dir {
        id: 1,
        path: path("a"),
        meta: meta(),
    });
    let n = d.len();
    // The nanos come before uid and gid.
    d[n - 12] = 0xff;
    assert_eq!(decode(&d), Err(DecodeError::Invalid("mtime")));
    let mut e = to_vec(&Frame::FileEnd {
        id: 1,
        crc: 2,
        ok: true,
    });
    let n = e.len();
    e[n - 1] = 7;
    assert_eq!(decode(&e), Err(DecodeError::Invalid("status")));
    // Non-UTF-8 name in Hello.
    let mut h = to_vec(&Frame::Hello {
        version: 1,
        name: "a".into(),
        flags: 0,
        nonce: vec![],
    });
    h[5 + 4 + 2 + 4] = 0xff;
    assert_eq!(decode(&h), Err(DecodeError::Invalid("name")));
    // Owner names: empty, too long, with a NUL; a count that promises
    // more pairs than there are.
    for (name, ok) in [
        (vec![], false),
        (vec![b'u'; 256], false),
        (b"a\0b".to_vec(), false),
        (vec![b'u'; 255], true),
    ] {
        let f = Frame::Names {
            users: vec![],
            groups: vec![(7, name)],
        };
        let got = decode(&to_vec(&f));
        if ok {
            assert_eq!(got, Ok(Decoded::Frame(f.clone(), to_vec(&f).len())));
        } else {
            assert_eq!(got, Err(DecodeError::Invalid("groups")));
        }
    }
    let mut p = 3u32.to_be_bytes().to_vec();
    p.extend_from_slice(&0u32.to_be_bytes());
    p.extend_from_slice(&1u32.to_be_bytes());
    p.push(b'r');
    assert_eq!(decode(&raw(34, &p)), Err(DecodeError::Truncated("users")));
    let mut p = u32::MAX.to_be_bytes().to_vec();
    p.extend_from_slice(&[0; 8]);
    assert_eq!(decode(&raw(34, &p)), Err(DecodeError::Invalid("users")));
}

#[test]
fn bad_links_rejected() {
    // A Link's payload: id, path, target, then meta and size.
    let link = |p: &[u8], target: &[u8]| {
        let mut v = 1u32.to_be_bytes().to_vec();
        for b in [p, target] {
            v.extend_from_slice(&(b.len() as u32).to_be_bytes());
            v.extend_from_slice(b);
        }
        let good = to_vec(&Frame::Link {
            id: 1,
            path: path("a"),
            target: path("b"),
            meta: meta(),
            size: 9,
        });
        // The good frame's meta and size follow its 5-byte header and
        // id, path "a" and target "b".
        v.extend_from_slice(&good[5 + 4 + 5 + 5..]);
        let mut f = vec![Kind::Link.byte()];
        f.extend_from_slice(&(v.len() as u32).to_be_bytes());
        f.extend_from_slice(&v);
        f
    };
    assert!(matches!(
        decode(&link(b"a", b"b")),
        Ok(Decoded::Frame(Frame::Link { .. }, _))
    ));
    // The root, the link itself, a path out of the namespace, an
    // absolute one.
    assert_eq!(
        decode(&link(b"a", b"")),
        Err(DecodeError::Invalid("target"))
    );
    assert_eq!(
        decode(&link(b"a", b"a")),
        Err(DecodeError::Invalid("target"))
    );
    assert_eq!(
        decode(&link(b"a", b"../b")),
        Err(DecodeError::Path(PathError::DotDot))
    );
    assert_eq!(
        decode(&link(b"a", b"/etc/shadow")),
        Err(DecodeError::Path(PathError::Absolute))
    );
    // A target length past the payload; a frame cut before its size.
    let mut p = 1u32.to_be_bytes().to_vec();
    p.extend_from_slice(&1u32.to_be_bytes());
    p.push(b'a');
    p.extend_from_slice(&u32::MAX.to_be_bytes());
    let mut f = vec![Kind::Link.byte()];
    f.extend_from_slice(&(p.len() as u32).to_be_bytes());
    f.extend_from_slice(&p);
    assert_eq!(decode(&f), Err(DecodeError::Truncated("target")));
    let mut f = link(b"a", b"b");
    let n = f.len();
    f.truncate(n - 3);
    f[1..5].copy_from_slice(&((n - 8) as u32).to_be_bytes());
    assert_eq!(decode(&f), Err(DecodeError::Truncated("size")));
}

/// Issue 10: an `Update` names a file or a link, with its meta and size,
/// and a `Need`'s two bitmaps have one length.
#[test]
fn bad_updates_and_needs_rejected() {
    let good = to_vec(&Frame::Update {
        id: 1,
        path: path("a"),
        kind: EntryKind::File,
        meta: meta(),
        size: 9,
    });
    // Header, id, path "a", then the kind byte.
    let kind_at = 5 + 4 + 5;
    assert_eq!(good[0], Kind::Update.byte());
    assert_eq!(good[0], 37);
    for bad in [0u8, 2, 4, 6, 8, 9, 255] {
        let mut f = good.clone();
        f[kind_at] = bad;
        assert_eq!(decode(&f), Err(DecodeError::Invalid("kind")), "kind {bad}");
    }
    let mut f = good.clone();
    f[kind_at] = EntryKind::Symlink as u8;
    assert!(matches!(
        decode(&f),
        Ok(Decoded::Frame(
            Frame::Update {
                kind: EntryKind::Symlink,
                ..
            },
            _
        ))
    ));
    // Cut anywhere inside its payload (the length says so): truncated.
    for cut in 1..good.len() - 5 {
        let mut f = good[..good.len() - cut].to_vec();
        let len = (f.len() - 5) as u32;
        f[1..5].copy_from_slice(&len.to_be_bytes());
        assert!(
            matches!(decode(&f), Err(DecodeError::Truncated(_))),
            "cut {cut}: {:?}",
            decode(&f)
        );
    }
    // A byte more: trailing; a length past the limit: too large.
    let mut f = good.clone();
    f.push(0);
    let len = (f.len() - 5) as u32;
    f[1..5].copy_from_slice(&len.to_be_bytes());
    assert_eq!(decode(&f), Err(DecodeError::Trailing(1)));
    let mut f = good.clone();
    f[1..5].copy_from_slice(&(MAX_PAYLOAD + 1).to_be_bytes());
    assert_eq!(decode(&f), Err(DecodeError::TooLarge(MAX_PAYLOAD + 1)));
    // A root or reserved path is the session's to refuse, a path out of
    // the namespace the codec's.
    let mut p = 1u32.to_be_bytes().to_vec();
    p.extend_from_slice(&4u32.to_be_bytes());
    p.extend_from_slice(b"../x");
    p.extend_from_slice(&good[kind_at..]);
    let mut f = vec![Kind::Update.byte()];
    f.extend_from_slice(&(p.len() as u32).to_be_bytes());
    f.extend_from_slice(&p);
    assert_eq!(decode(&f), Err(DecodeError::Path(PathError::DotDot)));
    // A Need whose meta bitmap is not as long as its bits.
    let need = to_vec(&Frame::Need {
        id: 1,
        bits: vec![1, 2],
        meta: vec![0],
        resume: vec![],
        delta: vec![],
    });
    assert_eq!(decode(&need), Err(DecodeError::Invalid("meta")));
}

#[test]
fn long_messages_are_cut_on_a_char_boundary() {
    let f = Frame::Failed {
        id: 1,
        path: WirePath::root(),
        message: "é".repeat(2000),
    };
    let b = to_vec(&f);
    match decode(&b).unwrap() {
        Decoded::Frame(Frame::Failed { message, .. }, _) => {
            assert!(message.len() <= MAX_MESSAGE)
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn messages_longer_than_the_encoder_writes_are_refused() {
    // Found with fuzz target decode: a 1,100-byte message decoded, and
    // re-encoding the frame cut it, so decode(encode(f)) != f.
    let raw = |kind: u8, head: &[u8], len: usize| {
        let mut p = head.to_vec();
        p.extend_from_slice(&(len as u32).to_be_bytes());
        p.extend(std::iter::repeat_n(b'x', len));
        let mut v = vec![kind];
        v.extend_from_slice(&(p.len() as u32).to_be_bytes());
        v.extend_from_slice(&p);
        v
    };
    let failed_head = [0, 0, 0, 1, 0, 0, 0, 0];
    for (kind, head) in [(3, &[0, 1][..]), (16, &failed_head[..])] {
        let ok = raw(kind, head, MAX_MESSAGE);
        match decode(&ok) {
            Ok(Decoded::Frame(f, n)) => assert_eq!(to_vec(&f).len(), n),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            decode(&raw(kind, head, MAX_MESSAGE + 1)),
            Err(DecodeError::Invalid("message"))
        );
    }
}

#[test]
fn arbitrary_bytes_never_panic() {
    // A small deterministic xorshift stream of garbage, every prefix.
    let mut x: u64 = 0x9e3779b97f4a7c15;
    for _ in 0..2000 {
        let mut buf = Vec::new();
        let n = (x % 64) as usize;
        for _ in 0..n {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            buf.push(x as u8);
        }
        if let Some(k) = buf.first_mut() {
            *k = [1, 2, 3, 10, 11, 12, 13, 16, 20, 21, 22][(x % 11) as usize];
        }
        if buf.len() >= 5 {
            buf[1] = 0;
            buf[2] = 0;
        }
        let _ = decode(&buf);
    }
}

/// The attributes of an `Xattrs` frame: count, then (name, value) pairs.
fn raw_xattrs(pairs: &[(&[u8], &[u8])]) -> Vec<u8> {
    let mut p = 1u32.to_be_bytes().to_vec();
    p.extend_from_slice(&0u32.to_be_bytes()); // the root path
    p.extend_from_slice(&(pairs.len() as u32).to_be_bytes());
    for (n, v) in pairs {
        p.extend_from_slice(&(n.len() as u32).to_be_bytes());
        p.extend_from_slice(n);
        p.extend_from_slice(&(v.len() as u32).to_be_bytes());
        p.extend_from_slice(v);
    }
    let mut f = vec![Kind::Xattrs.byte()];
    f.extend_from_slice(&(p.len() as u32).to_be_bytes());
    f.extend_from_slice(&p);
    f
}

/// Issue 10: a set out of order, with a name twice, a name in no
/// namespace, or more than the bounds is malformed.
#[test]
fn bad_xattr_sets_are_refused() {
    assert!(matches!(
        decode(&raw_xattrs(&[(b"user.a", b"1"), (b"user.b", b"")])),
        Ok(Decoded::Frame(Frame::Xattrs { .. }, _))
    ));
    let long = [b'a'; 250];
    let mut long_name = b"user.".to_vec();
    long_name.extend_from_slice(&long);
    for bad in [
        raw_xattrs(&[(b"user.b", b""), (b"user.a", b"")]),
        raw_xattrs(&[(b"user.a", b""), (b"user.a", b"")]),
        raw_xattrs(&[(b"other.a", b"")]),
        raw_xattrs(&[(b"user.", b"")]),
        raw_xattrs(&[(b"user.a\0", b"")]),
        raw_xattrs(&[(&long_name, b"")]),
    ] {
        assert_eq!(decode(&bad), Err(DecodeError::Invalid("xattrs")), "{bad:?}");
    }
    // A count past the bound is refused before anything is read.
    let mut many = raw_xattrs(&[]);
    let at = HEADER_LEN + 8;
    many[at..at + 4].copy_from_slice(&257u32.to_be_bytes());
    assert_eq!(decode(&many), Err(DecodeError::Invalid("xattrs")));
    // More than 56 KiB of values.
    let big = vec![0u8; 30 * 1024];
    assert_eq!(
        decode(&raw_xattrs(&[(b"user.a", &big), (b"user.b", &big)])),
        Err(DecodeError::Invalid("xattrs"))
    );
}

/// Only files and directories carry a digest in a manifest.
#[test]
fn only_files_and_directories_carry_an_xattr_digest() {
    let entry = |kind, xattrs| ManifestEntry {
        kind,
        path: path("x"),
        meta: meta(),
        size: 0,
        target: if kind == EntryKind::Symlink {
            b"t".to_vec()
        } else {
            vec![]
        },
        rdev: 0,
        xattrs,
    };
    let len = |kind| {
        to_vec(&Frame::Manifest {
            id: 1,
            entries: vec![entry(kind, 0)],
        })
        .len()
    };
    assert_eq!(len(EntryKind::File), len(EntryKind::Fifo) + 8);
    assert_eq!(len(EntryKind::Dir), len(EntryKind::Fifo) + 8);
    // A digest on a kind without one is not carried: it reads back as 0.
    let f = Frame::Manifest {
        id: 1,
        entries: vec![entry(EntryKind::Symlink, 5)],
    };
    match decode(&to_vec(&f)) {
        Ok(Decoded::Frame(Frame::Manifest { entries, .. }, _)) => assert_eq!(entries[0].xattrs, 0),
        other => panic!("{other:?}"),
    }
}

/// Issue 11: an `At`'s and a `Version`'s times carry nanoseconds below
/// one second, a `Version` names a stored kind, and nothing trails.
#[test]
fn bad_history_frames_rejected() {
    let at = to_vec(&Frame::At { secs: 5, nanos: 0 });
    assert_eq!(at[0], 39);
    let mut f = at.clone();
    f[5 + 8..5 + 12].copy_from_slice(&1_000_000_000u32.to_be_bytes());
    assert_eq!(decode(&f), Err(DecodeError::Invalid("nanos")));
    let mut f = at.clone();
    f.push(0);
    f[1..5].copy_from_slice(&13u32.to_be_bytes());
    assert_eq!(decode(&f), Err(DecodeError::Trailing(1)));
    let v = to_vec(&Frame::Version {
        id: 1,
        item: VersionItem {
            path: path("a"),
            kind: EntryKind::File,
            size: 1,
            meta: meta(),
            stored: Time::default(),
            until: Time::default(),
            held: 0,
        },
    });
    assert_eq!(v[0], 41);
    // Header, id, path "a", then the kind byte.
    let kind_at = 5 + 4 + 5;
    for bad in [0u8, 8, 9, 255] {
        let mut f = v.clone();
        f[kind_at] = bad;
        assert_eq!(decode(&f), Err(DecodeError::Invalid("kind")), "kind {bad}");
    }
    // The until time's nanoseconds sit just before the 8 bytes of held.
    let mut f = v.clone();
    let n = f.len();
    f[n - 12..n - 8].copy_from_slice(&u32::MAX.to_be_bytes());
    assert_eq!(decode(&f), Err(DecodeError::Invalid("until")));
    assert_eq!(
        to_vec(&Frame::Versions {
            id: 1,
            path: path("x")
        })[0],
        40
    );
}

/// Issue 12: a `Closed`'s names to keep are names of a path, only in a
/// whole `Closed`, within the frame; `closed_fits` says what fits.
#[test]
fn bad_closed_keeps_rejected() {
    let closed = |whole: bool, keep: Vec<Vec<u8>>| {
        to_vec(&Frame::Closed {
            id: 1,
            path: path("d"),
            whole,
            keep,
        })
    };
    for bad in [&b""[..], b".", b"..", b"a/b", b"/", b"a\0b", &[b'n'; 256]] {
        assert_eq!(
            decode(&closed(true, vec![b"ok".to_vec(), bad.to_vec()])),
            Err(DecodeError::Invalid("keep")),
            "{bad:?}"
        );
    }
    assert_eq!(
        decode(&closed(false, vec![b"x".to_vec()])),
        Err(DecodeError::Invalid("keep"))
    );
    // A count beyond the names present.
    let mut f = closed(true, vec![b"x".to_vec()]);
    let count_at = 5 + 4 + 5 + 1;
    f[count_at..count_at + 4].copy_from_slice(&u32::MAX.to_be_bytes());
    assert_eq!(decode(&f), Err(DecodeError::Truncated("keep")));
    // A version 3 Closed (no count) is truncated.
    let mut f = closed(true, vec![]);
    f.truncate(f.len() - 4);
    let len = (f.len() - 5) as u32;
    f[1..5].copy_from_slice(&len.to_be_bytes());
    assert_eq!(decode(&f), Err(DecodeError::Truncated("keep")));
    // What fits, to the byte.
    let dir = path("d");
    let fixed = 4 + 4 + 1 + 1 + 4;
    let room = MAX_PAYLOAD as usize - fixed;
    let mut keep: Vec<Vec<u8>> = vec![vec![b'k'; 251]; room / 255];
    let left = room - keep.len() * 255;
    keep.push(vec![b'z'; left - 4]);
    assert!(crate::proto::codec::closed_fits(&dir, &keep));
    let bytes = closed(true, keep.clone());
    assert_eq!(bytes.len(), HEADER_LEN + MAX_PAYLOAD as usize);
    assert!(matches!(decode(&bytes), Ok(Decoded::Frame(..))));
    keep.last_mut().unwrap().push(b'z');
    assert!(!crate::proto::codec::closed_fits(&dir, &keep));
    assert!(matches!(
        decode(&closed(true, keep)),
        Err(DecodeError::TooLarge(_))
    ));
}

mod delta;
