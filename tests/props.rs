//! Property tests of the codec and the server session: arbitrary valid
//! frames of every kind round-trip through encode/decode, their prefixes
//! are `Partial`, damaged bytes never panic the decoder, and the server
//! session does the same whatever the chunking of a valid client stream.
//! The fuzz targets in `fuzz/` push the same code with arbitrary bytes.

use std::time::Instant;

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

use rsb::proto::codec::{decode, encode, to_vec};
use rsb::proto::xattrs::Xattrs;
use rsb::proto::{
    DecodeError, Decoded, EntryKind, ErrorCode, Extent, Frame, Kind, Layout, ListItem,
    ManifestEntry, Meta, Time, WirePath, MAX_TOKEN,
};
use rsb::server::session::{
    Command, Completion, Received, ServerSession, SessionConfig, VerifyCounts,
};

// ---- strategies ------------------------------------------------------------

/// One path component: no NUL, no `/`, not `.` or `..`.
fn name() -> impl Strategy<Value = Vec<u8>> {
    vec(
        any::<u8>().prop_filter("no NUL or /", |b| *b != 0 && *b != b'/'),
        1..12,
    )
    .prop_filter("not . or ..", |n| n != b"." && n != b"..")
}

fn path() -> impl Strategy<Value = WirePath> {
    vec(name(), 0..4).prop_map(|c| WirePath::new(c.join(&b'/')).expect("valid by construction"))
}

fn meta() -> impl Strategy<Value = Meta> {
    (
        0u32..=0o7777,
        any::<i64>(),
        0u32..1_000_000_000,
        any::<u32>(),
        any::<u32>(),
    )
        .prop_map(|(mode, secs, nanos, uid, gid)| Meta {
            mode,
            mtime: Time { secs, nanos },
            uid,
            gid,
        })
}

/// An (id, name) pair of a `Names` frame: 1 to 255 bytes, no NUL.
fn owner_name() -> impl Strategy<Value = (u32, Vec<u8>)> {
    (any::<u32>(), vec(1u8..=255, 1..=255))
}

/// A body layout valid for a file of `size` bytes sent from `from`:
/// dense, or ascending extents apart inside it.
fn layout(size: u64, from: u64) -> BoxedStrategy<Layout> {
    prop_oneof![
        Just(Layout::Dense),
        vec((0u64..1 << 20, 1u64..1 << 20), 0..6).prop_map(move |runs| {
            let mut at = from;
            let mut extents = Vec::new();
            for (gap, len) in runs {
                let Some(end) = at.checked_add(gap).and_then(|o| o.checked_add(len)) else {
                    break;
                };
                if end > size {
                    break;
                }
                extents.push(Extent {
                    offset: end - len,
                    len,
                });
                at = end;
            }
            Layout::Sparse(extents)
        }),
    ]
    .boxed()
}

/// A symlink target: no NUL.
fn target() -> impl Strategy<Value = Vec<u8>> {
    vec(1u8..=255, 0..16)
}

/// A nonce, proof or MAC.
fn token() -> impl Strategy<Value = Vec<u8>> {
    vec(any::<u8>(), 0..=MAX_TOKEN)
}

fn text() -> impl Strategy<Value = String> {
    "\\PC{0,24}"
}

fn entry_kind() -> impl Strategy<Value = EntryKind> {
    (1u8..=7).prop_map(|k| EntryKind::from_u8(k).expect("1 to 7 are kinds"))
}

/// A FIFO, socket or device kind.
fn special_kind() -> impl Strategy<Value = EntryKind> {
    (4u8..=7).prop_map(|k| EntryKind::from_u8(k).expect("4 to 7 are kinds"))
}

/// A device number for `kind`: any for a device, 0 for the rest (which
/// carry none on the wire).
fn rdev_for(kind: EntryKind) -> impl Strategy<Value = u64> {
    if kind.is_device() {
        any::<u64>().boxed()
    } else {
        Just(0).boxed()
    }
}

fn xattr_digest_for(kind: EntryKind) -> impl Strategy<Value = u64> {
    if rsb::proto::codec::has_xattrs(kind) {
        any::<u64>().boxed()
    } else {
        Just(0).boxed()
    }
}

/// A valid set of extended attributes: names in a namespace, values of
/// any bytes.
fn xattr_set() -> impl Strategy<Value = Xattrs> {
    let name = (0usize..4, vec(1u8..=255, 1..=40)).prop_map(|(ns, rest)| {
        let mut n = rsb::proto::xattrs::NAMESPACES[ns].to_vec();
        n.extend(rest);
        n
    });
    vec((name, vec(any::<u8>(), 0..64)), 0..6).prop_map(|mut pairs| {
        pairs.sort();
        pairs.dedup_by(|a, b| a.0 == b.0);
        Xattrs::from_sorted(pairs).expect("valid by construction")
    })
}

fn error_code() -> impl Strategy<Value = ErrorCode> {
    // from_u16 maps what it does not know to Internal (9).
    (1u16..=9).prop_map(ErrorCode::from_u16)
}

fn manifest_entry() -> impl Strategy<Value = ManifestEntry> {
    entry_kind()
        .prop_flat_map(|kind| {
            (
                Just(kind),
                path(),
                meta(),
                any::<u64>(),
                target(),
                rdev_for(kind),
                xattr_digest_for(kind),
            )
        })
        .prop_map(
            |(kind, path, meta, size, target, rdev, xattrs)| ManifestEntry {
                kind,
                path,
                meta,
                size,
                target,
                rdev,
                xattrs,
            },
        )
}

/// (size, offset) with offset <= size.
fn size_and_offset() -> impl Strategy<Value = (u64, u64)> {
    any::<u64>().prop_flat_map(|size| (Just(size), 0..=size))
}

/// Valid frames of one wire kind, or `None` for a kind with no strategy.
///
/// This is the place to add a new frame: give its kind an arm here.
/// `every_frame_kind_has_a_strategy` fails until every kind the decoder
/// knows has one, and `all_variants` stops compiling for a new variant.
fn frame_of_kind(kind: u8) -> Option<BoxedStrategy<Frame>> {
    Some(match kind {
        1 => (any::<u16>(), text(), any::<u32>(), token())
            .prop_map(|(version, name, flags, nonce)| Frame::Hello {
                version,
                name,
                flags,
                nonce,
            })
            .boxed(),
        2 => (any::<u16>(), any::<u32>(), token(), any::<(u64, u64)>())
            .prop_map(|(version, flags, proof, store)| Frame::Welcome {
                version,
                flags,
                proof,
                store,
            })
            .boxed(),
        3 => (error_code(), text())
            .prop_map(|(code, message)| Frame::Error { code, message })
            .boxed(),
        4 => token().prop_map(|nonce| Frame::Challenge { nonce }).boxed(),
        5 => token().prop_map(|mac| Frame::Proof { mac }).boxed(),
        10 => (any::<u32>(), path(), meta())
            .prop_map(|(id, path, meta)| Frame::Dir { id, path, meta })
            .boxed(),
        11 => (any::<u32>(), path(), target(), meta())
            .prop_map(|(id, path, target, meta)| Frame::Symlink {
                id,
                path,
                target,
                meta,
            })
            .boxed(),
        12 => (any::<u32>(), path(), meta(), any::<u64>())
            .prop_flat_map(|(id, path, meta, size)| {
                layout(size, 0).prop_map(move |layout| Frame::File {
                    id,
                    path: path.clone(),
                    meta,
                    size,
                    layout,
                })
            })
            .boxed(),
        13 => (any::<u32>(), any::<u32>(), any::<bool>())
            .prop_map(|(id, crc, ok)| Frame::FileEnd { id, crc, ok })
            .boxed(),
        14 => any::<u32>().prop_map(|id| Frame::Commit { id }).boxed(),
        15 => any::<u32>().prop_map(|id| Frame::Committed { id }).boxed(),
        16 => (any::<u32>(), path(), text())
            .prop_map(|(id, path, message)| Frame::Failed { id, path, message })
            .boxed(),
        20 => (any::<u32>(), path())
            .prop_map(|(id, path)| Frame::List { id, path })
            .boxed(),
        21 => entry_kind()
            .prop_flat_map(|kind| {
                (
                    any::<u32>(),
                    Just(kind),
                    prop_oneof![Just(Vec::new()), name()],
                    meta(),
                    any::<u64>(),
                    target(),
                    rdev_for(kind),
                )
            })
            .prop_map(
                |(id, kind, name, meta, size, target, rdev)| Frame::ListEntry {
                    id,
                    item: ListItem {
                        kind,
                        name,
                        meta,
                        size,
                        target,
                        rdev,
                    },
                },
            )
            .boxed(),
        33 => special_kind()
            .prop_flat_map(|kind| (any::<u32>(), path(), Just(kind), rdev_for(kind), meta()))
            .prop_map(|(id, path, kind, rdev, meta)| Frame::Special {
                id,
                path,
                kind,
                rdev,
                meta,
            })
            .boxed(),
        36 => (any::<u32>(), path(), path(), meta(), any::<u64>())
            .prop_filter(
                "a link's target is a name other than its own",
                |(_, p, t, _, _)| !t.as_bytes().is_empty() && t != p,
            )
            .prop_map(|(id, path, target, meta, size)| Frame::Link {
                id,
                path,
                target,
                meta,
                size,
            })
            .boxed(),
        22 => (any::<u32>(), path())
            .prop_map(|(id, path)| Frame::Restore { id, path })
            .boxed(),
        23 => any::<u32>().prop_map(|id| Frame::Done { id }).boxed(),
        24 => (any::<u32>(), vec(manifest_entry(), 0..4))
            .prop_map(|(id, entries)| Frame::Manifest { id, entries })
            .boxed(),
        25 => (
            any::<u32>(),
            vec((any::<u8>(), any::<u8>()), 0..8),
            vec((any::<u32>(), any::<u64>()), 0..4),
            prop::collection::btree_set(any::<u32>(), 0..4),
        )
            .prop_map(|(id, pairs, resume, delta)| Frame::Need {
                id,
                bits: pairs.iter().map(|p| p.0).collect(),
                meta: pairs.iter().map(|p| p.1).collect(),
                resume,
                delta: delta.into_iter().collect(),
            })
            .boxed(),
        38 => (any::<u32>(), path(), any::<bool>(), vec(name(), 0..4))
            .prop_map(|(id, path, whole, keep)| Frame::Closed {
                id,
                path,
                whole,
                // Only a whole `Closed` keeps names.
                keep: if whole { keep } else { Vec::new() },
            })
            .boxed(),
        37 => (
            any::<u32>(),
            path(),
            prop::sample::select(vec![EntryKind::File, EntryKind::Symlink]),
            meta(),
            any::<u64>(),
        )
            .prop_map(|(id, path, kind, meta, size)| Frame::Update {
                id,
                path,
                kind,
                meta,
                size,
            })
            .boxed(),
        26 => (any::<u32>(), path(), meta(), size_and_offset())
            .prop_flat_map(|(id, path, meta, (size, offset))| {
                layout(size, offset).prop_map(move |layout| Frame::FileFrom {
                    id,
                    path: path.clone(),
                    meta,
                    size,
                    offset,
                    layout,
                })
            })
            .boxed(),
        27 => (any::<u32>(), path(), meta(), any::<u64>())
            .prop_map(|(id, path, meta, size)| Frame::Offer {
                id,
                path,
                meta,
                size,
            })
            .boxed(),
        28 => (any::<u32>(), any::<u64>())
            .prop_map(|(id, offset)| Frame::Want { id, offset })
            .boxed(),
        29 => (any::<u32>(), path())
            .prop_map(|(id, path)| Frame::Verify { id, path })
            .boxed(),
        30 => (
            any::<u32>(),
            any::<u64>(),
            any::<u64>(),
            any::<u64>(),
            any::<u64>(),
        )
            .prop_map(|(id, files, bytes, damaged, unchecked)| Frame::Verified {
                id,
                files,
                bytes,
                damaged,
                unchecked,
            })
            .boxed(),
        31 => (any::<u32>(), any::<u64>(), any::<u64>())
            .prop_map(|(id, files, bytes)| Frame::Progress { id, files, bytes })
            .boxed(),
        32 => any::<u32>().prop_map(|id| Frame::Skip { id }).boxed(),
        34 => (vec(owner_name(), 0..4), vec(owner_name(), 0..4))
            .prop_map(|(users, groups)| Frame::Names { users, groups })
            .boxed(),
        35 => (any::<u32>(), path(), xattr_set())
            .prop_map(|(id, path, attrs)| Frame::Xattrs { id, path, attrs })
            .boxed(),
        39 => (any::<i64>(), 0u32..1_000_000_000)
            .prop_map(|(secs, nanos)| Frame::At { secs, nanos })
            .boxed(),
        40 => (any::<u32>(), path())
            .prop_map(|(id, path)| Frame::Versions { id, path })
            .boxed(),
        41 => (
            any::<u32>(),
            path(),
            entry_kind().prop_filter("no manifest-only kind", |k| *k != EntryKind::HardLink),
            any::<u64>(),
            meta(),
            (any::<i64>(), 0u32..1_000_000_000),
            (any::<i64>(), 0u32..1_000_000_000),
            any::<u64>(),
        )
            .prop_map(|(id, path, kind, size, meta, s, u, held)| Frame::Version {
                id,
                item: rsb::proto::VersionItem {
                    path,
                    kind,
                    size,
                    meta,
                    stored: Time {
                        secs: s.0,
                        nanos: s.1,
                    },
                    until: Time {
                        secs: u.0,
                        nanos: u.1,
                    },
                    held,
                },
            })
            .boxed(),
        42 => any::<u32>().prop_map(|id| Frame::Agent { id }).boxed(),
        43 => vec(any::<u8>(), 0..300)
            .prop_map(|text| Frame::Plan { text })
            .boxed(),
        44 => (
            any::<u32>(),
            any::<u32>(),
            vec(any::<u8>(), 1..300),
            0u32..1000,
        )
            .prop_map(|(id, index, chunk, more)| Frame::Signature {
                id,
                index,
                total: chunk.len() as u32 + more,
                chunk,
            })
            .boxed(),
        45 => (
            any::<u32>(),
            path(),
            meta(),
            vec((0u64..1000, 1u64..1000, 0u64..1 << 20), 0..6),
            (0u64..1000, 0u64..1000),
        )
            .prop_map(|(id, path, meta, runs, (offset, tail))| {
                // From an offset, runs apart and ascending in the new file
                // past it, anywhere in a basis as large as their sources
                // need.
                let mut copies = Vec::new();
                let (mut at, mut basis) = (offset, 0u64);
                for (gap, len, src) in runs {
                    at += gap;
                    copies.push(rsb::proto::CopyRange { dst: at, src, len });
                    at += len;
                    basis = basis.max(src + len);
                }
                Frame::FileDelta {
                    id,
                    path,
                    meta,
                    size: at + tail,
                    basis,
                    offset,
                    copies,
                }
            })
            .boxed(),
        _ => return None,
    })
}

/// Every wire kind the decoder knows (it tells an unknown kind from a
/// known one by its first byte alone).
fn wire_kinds() -> Vec<u8> {
    (0..=255u8)
        .filter(|&k| !matches!(decode(&[k, 0, 0, 0, 0]), Err(DecodeError::UnknownKind(_))))
        .collect()
}

/// A valid frame of any kind, every kind equally likely.
fn frame() -> impl Strategy<Value = Frame> {
    proptest::sample::select(wire_kinds()).prop_flat_map(|k| {
        frame_of_kind(k).unwrap_or_else(|| panic!("no strategy for frame kind {k}"))
    })
}

/// Names every variant, with no wildcard: a new `Frame` variant stops this
/// from compiling until it is listed here, and given an arm in
/// [`frame_of_kind`].
fn all_variants(f: &Frame) {
    match f {
        Frame::Hello { .. }
        | Frame::Challenge { .. }
        | Frame::Proof { .. }
        | Frame::Welcome { .. }
        | Frame::Error { .. }
        | Frame::Dir { .. }
        | Frame::Symlink { .. }
        | Frame::Special { .. }
        | Frame::Link { .. }
        | Frame::Update { .. }
        | Frame::Closed { .. }
        | Frame::File { .. }
        | Frame::FileEnd { .. }
        | Frame::Commit { .. }
        | Frame::Committed { .. }
        | Frame::Failed { .. }
        | Frame::List { .. }
        | Frame::ListEntry { .. }
        | Frame::Restore { .. }
        | Frame::Done { .. }
        | Frame::Manifest { .. }
        | Frame::Need { .. }
        | Frame::Offer { .. }
        | Frame::Want { .. }
        | Frame::Skip { .. }
        | Frame::FileFrom { .. }
        | Frame::Verify { .. }
        | Frame::Verified { .. }
        | Frame::Progress { .. }
        | Frame::Names { .. }
        | Frame::Xattrs { .. }
        | Frame::At { .. }
        | Frame::Versions { .. }
        | Frame::Version { .. }
        | Frame::Agent { .. }
        | Frame::Plan { .. }
        | Frame::Signature { .. }
        | Frame::FileDelta { .. } => {}
    }
}

#[test]
fn every_frame_kind_has_a_strategy() {
    let kinds = wire_kinds();
    assert!(kinds.len() >= 23, "{kinds:?}");
    // The decoder knows exactly the kinds of the table.
    let table: Vec<u8> = Kind::ALL.iter().map(|k| k.byte()).collect();
    assert_eq!(kinds, table);
    let mut runner = TestRunner::deterministic();
    for k in kinds {
        let s = frame_of_kind(k).unwrap_or_else(|| panic!("no strategy for frame kind {k}"));
        let f = s.new_tree(&mut runner).expect("a value").current();
        all_variants(&f);
        assert_eq!(f.kind(), k, "the strategy for kind {k} made {f:?}");
    }
}

// ---- codec properties --------------------------------------------------------

fn config(cases: u32) -> ProptestConfig {
    Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    }
}

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn encode_then_decode_is_the_same_frame(f in frame()) {
        let b = to_vec(&f);
        prop_assert_eq!(decode(&b), Ok(Decoded::Frame(f.clone(), b.len())));
        // Whatever follows it does not matter.
        let mut more = b.clone();
        encode(&Frame::Done { id: 1 }, &mut more);
        prop_assert_eq!(decode(&more), Ok(Decoded::Frame(f, b.len())));
    }

    #[test]
    fn every_strict_prefix_is_partial(f in frame()) {
        let b = to_vec(&f);
        for n in 0..b.len() {
            prop_assert_eq!(decode(&b[..n]), Ok(Decoded::Partial), "prefix {}", n);
        }
    }

    #[test]
    fn one_byte_at_a_time_gives_the_same_frames(fs in vec(frame(), 1..5)) {
        let mut wire = Vec::new();
        for f in &fs {
            encode(f, &mut wire);
        }
        let mut buf = Vec::new();
        let mut got = Vec::new();
        for &byte in &wire {
            buf.push(byte);
            match decode(&buf) {
                Ok(Decoded::Partial) => {}
                Ok(Decoded::Frame(f, n)) => {
                    prop_assert_eq!(n, buf.len());
                    buf.clear();
                    got.push(f);
                }
                Err(e) => return Err(TestCaseError::fail(format!("{e}"))),
            }
        }
        prop_assert!(buf.is_empty());
        prop_assert_eq!(got, fs);
    }

    #[test]
    fn damaged_frames_never_panic(
        f in frame(),
        flips in vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut b = to_vec(&f);
        for (at, x) in flips {
            let i = at.index(b.len());
            b[i] ^= x;
        }
        let cut = cut.index(b.len() + 1);
        for bytes in [&b[..], &b[..cut]] {
            // Whatever still decodes is a valid frame: it round-trips.
            if let Ok(Decoded::Frame(g, n)) = decode(bytes) {
                prop_assert!(n <= bytes.len());
                let again = to_vec(&g);
                prop_assert_eq!(decode(&again), Ok(Decoded::Frame(g, again.len())));
            }
        }
    }
}

// ---- the server session, whatever the chunking ---------------------------------

/// One step of a valid client conversation after `Hello`.
#[derive(Debug, Clone)]
enum Step {
    Dir(WirePath),
    Symlink(WirePath, Vec<u8>),
    /// A FIFO, socket or device and its number.
    Special(WirePath, EntryKind, u64),
    /// A file and its body.
    File(WirePath, Vec<u8>),
    Commit,
    Manifest(Vec<ManifestEntry>),
    List(WirePath),
    Restore(WirePath),
    Verify(WirePath),
}

/// A path that is never the root (files and links need a name).
fn named_path() -> impl Strategy<Value = WirePath> {
    vec(name(), 1..3).prop_map(|c| WirePath::new(c.join(&b'/')).expect("valid"))
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        path().prop_map(Step::Dir),
        (named_path(), target()).prop_map(|(p, t)| Step::Symlink(p, t)),
        special_kind()
            .prop_flat_map(|k| (named_path(), Just(k), rdev_for(k)))
            .prop_map(|(p, k, d)| Step::Special(p, k, d)),
        (named_path(), vec(any::<u8>(), 0..40)).prop_map(|(p, b)| Step::File(p, b)),
        Just(Step::Commit),
        vec(manifest_entry(), 0..3).prop_map(Step::Manifest),
        path().prop_map(Step::List),
        path().prop_map(Step::Restore),
        path().prop_map(Step::Verify),
    ]
}

/// The client's bytes: `Hello`, then the steps with increasing ids.
fn client_stream(steps: &[Step]) -> Vec<u8> {
    let mut v = to_vec(&Frame::Hello {
        version: rsb::proto::VERSION,
        name: "laptop".into(),
        flags: 0,
        nonce: Vec::new(),
    });
    let meta = Meta {
        mode: 0o644,
        mtime: Time { secs: 1, nanos: 2 },
        uid: 0,
        gid: 0,
    };
    for (i, s) in steps.iter().enumerate() {
        let id = i as u32 + 1;
        let f = match s.clone() {
            Step::Dir(path) => Frame::Dir { id, path, meta },
            Step::Symlink(path, target) => Frame::Symlink {
                id,
                path,
                target,
                meta,
            },
            Step::Special(path, kind, rdev) => Frame::Special {
                id,
                path,
                kind,
                rdev,
                meta,
            },
            Step::File(path, body) => {
                encode(
                    &Frame::File {
                        id,
                        path,
                        meta,
                        size: body.len() as u64,
                        layout: Default::default(),
                    },
                    &mut v,
                );
                v.extend_from_slice(&body);
                Frame::FileEnd {
                    id,
                    crc: crc32c::crc32c(&body),
                    ok: true,
                }
            }
            Step::Commit => Frame::Commit { id },
            Step::Manifest(entries) => Frame::Manifest { id, entries },
            Step::List(path) => Frame::List { id, path },
            Step::Restore(path) => Frame::Restore { id, path },
            Step::Verify(path) => Frame::Verify { id, path },
        };
        encode(&f, &mut v);
    }
    v
}

/// Feeds `stream` to a fresh server session in pieces of the given sizes
/// (cycled), answering its commands as a store would; returns the commands,
/// the body bytes moved, and everything the session sent.
fn drive(stream: &[u8], sizes: &[usize]) -> (Vec<Command>, Vec<u8>, Vec<u8>) {
    let now = Instant::now();
    let mut s = ServerSession::new(SessionConfig::default(), now, [0; 32]);
    let (mut commands, mut bodies, mut sent) = (Vec::new(), Vec::new(), Vec::new());
    let mut pending = Vec::new();
    let mut body_left: Option<u64> = None;
    // crc32c of the body being moved, as the shell computes it.
    let mut body_crc = 0;
    let mut rest = stream;
    let mut sizes = sizes.iter().cycle();
    while !rest.is_empty() {
        let n = sizes.next().copied().unwrap_or(usize::MAX).min(rest.len());
        pending.extend_from_slice(&rest[..n]);
        rest = &rest[n..];
        loop {
            let progress = if let Some(size) = s.wants_body() {
                let left = body_left.unwrap_or(size);
                let take = left.min(pending.len() as u64) as usize;
                body_crc = crc32c::crc32c_append(body_crc, &pending[..take]);
                bodies.extend(pending.drain(..take));
                if take as u64 == left {
                    body_left = None;
                    s.handle_completion(Completion::BodyReceived(Received {
                        crc: std::mem::take(&mut body_crc),
                        write_error: None,
                    }));
                } else {
                    body_left = Some(left - take as u64);
                }
                take > 0
            } else {
                let used = s.handle_input(now, &pending);
                pending.drain(..used);
                used > 0
            };
            let mut answered = false;
            while let Some(cmd) = s.poll_command() {
                match &cmd {
                    Command::Commit { id } => {
                        s.handle_completion(Completion::Committed { id: *id })
                    }
                    Command::List { id, .. } | Command::Restore { id, .. } => {
                        s.handle_completion(Completion::Done { id: *id });
                        answered = true;
                    }
                    Command::Verify { id, .. } => {
                        s.handle_completion(Completion::Verified {
                            id: *id,
                            counts: VerifyCounts::default(),
                        });
                        answered = true;
                    }
                    Command::Check { id, entries } => s.handle_completion(Completion::Checked {
                        id: *id,
                        bits: vec![0xff; entries.len().div_ceil(8)],
                        meta: vec![0; entries.len().div_ceil(8)],
                        resume: Vec::new(),
                        delta: Vec::new(),
                    }),
                    _ => {}
                }
                commands.push(cmd);
            }
            let out = s.poll_transmit();
            let n = out.len();
            sent.extend_from_slice(out);
            s.handle_sent(n);
            if !progress && !answered {
                break;
            }
        }
    }
    assert!(pending.is_empty(), "{} bytes left over", pending.len());
    assert!(
        !s.is_closing(),
        "a valid stream was refused: {:?}",
        s.error()
    );
    (commands, bodies, sent)
}

proptest! {
    #![proptest_config(config(128))]

    #[test]
    fn chunking_does_not_change_what_the_server_does(
        steps in vec(step(), 0..12),
        sizes in vec(1usize..48, 1..8),
    ) {
        let stream = client_stream(&steps);
        let whole = drive(&stream, &[usize::MAX]);
        prop_assert!(!whole.0.is_empty(), "the namespace is opened");
        prop_assert_eq!(&drive(&stream, &sizes), &whole);
        prop_assert_eq!(&drive(&stream, &[1]), &whole);
    }
}
