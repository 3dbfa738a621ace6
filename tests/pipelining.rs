//! Requests pipelined behind streamed answers, in raw frames against the
//! real server: every request kind behind every `List`, `Restore` and
//! `Verify`, of a tree with small files only and of one holding a file of
//! 1 MiB or more (offered, so the client's `Want` comes after the
//! pipelined request).

#[macro_use]
#[allow(unused_macros)]
mod common;

use std::time::Duration;

use common::*;
use rsb::proto::codec::to_vec;
use rsb::proto::{EntryKind, Frame, ManifestEntry};

const WAIT: Duration = Duration::from_secs(10);
/// A file large enough to be offered (`RESUME_MIN`, 1 MiB) and then some.
const BIG: usize = (1 << 20) + 3;

fn body(n: usize, seed: u8) -> Vec<u8> {
    (0..n).map(|i| (i % 251) as u8 ^ seed).collect()
}

/// The frames of one request `kind` with `id` (a backup batch is its
/// entries and their `Commit`, whose id is the last one used).
fn request(kind: &str, id: u32, tree: &str) -> (Vec<u8>, u32) {
    let path = wpath(tree);
    match kind {
        "list" => (to_vec(&Frame::List { id, path }), id),
        "restore" => (to_vec(&Frame::Restore { id, path }), id),
        "verify" => (to_vec(&Frame::Verify { id, path }), id),
        "manifest" => (
            to_vec(&Frame::Manifest {
                id,
                entries: vec![ManifestEntry {
                    kind: EntryKind::File,
                    path: wpath("new/f"),
                    meta: meta(0o644),
                    size: 7,
                    target: vec![],
                    rdev: 0,
                    xattrs: 0,
                }],
            }),
            id,
        ),
        _ => {
            let mut v = to_vec(&Frame::Dir {
                id,
                path: wpath("new"),
                meta: meta(0o755),
            });
            // Under MAX_READ_AHEAD (256 KiB): more behind an offer is refused.
            v.extend(file_frames(id + 1, "new/f", &body(200_000, 9), None, true));
            v.extend(to_vec(&Frame::Commit { id: id + 2 }));
            (v, id + 2)
        }
    }
}

/// The frame that ends the answer to a request of `kind` with `id`.
fn ends(kind: &str, f: &Frame, id: u32) -> bool {
    match (kind, f) {
        ("list" | "restore", Frame::Done { id: i })
        | ("verify", Frame::Verified { id: i, .. })
        | ("manifest", Frame::Need { id: i, .. })
        | ("backup", Frame::Committed { id: i }) => *i == id,
        _ => false,
    }
}

fn id_of(f: &Frame) -> Option<u32> {
    match f {
        Frame::ListEntry { id, .. }
        | Frame::Dir { id, .. }
        | Frame::Symlink { id, .. }
        | Frame::File { id, .. }
        | Frame::FileFrom { id, .. }
        | Frame::FileEnd { id, .. }
        | Frame::Offer { id, .. }
        | Frame::Failed { id, .. }
        | Frame::Done { id }
        | Frame::Progress { id, .. }
        | Frame::Verified { id, .. }
        | Frame::Need { id, .. }
        | Frame::Committed { id } => Some(*id),
        _ => None,
    }
}

/// Regression (issue 9 item 10): a request pipelined behind a `Restore` of
/// a tree holding a file of 1 MiB or more closed the connection
/// ("unexpected frame kind"): it arrived while the offer of that file
/// waited for its `Want`. All 30 combinations are answered, in order.
#[test]
fn requests_pipelined_behind_a_restore_of_a_large_file_are_answered_in_order() {
    let srv = Server::start(&[]);
    // The store: a tree of small files, and one holding a large file.
    let mut setup = Raw::hello(srv.port(), NAME);
    let mut b = file_frames(1, "small/a", b"abcde", None, true);
    b.extend(file_frames(2, "large/a", b"abcde", None, true));
    b.extend(file_frames(3, "large/big", &body(BIG, 0), None, true));
    b.extend(to_vec(&Frame::Commit { id: 4 }));
    let (frames, _) = setup.exchange(&b, 4, WAIT);
    assert!(
        matches!(frames.last(), Some(Frame::Committed { id: 4 })),
        "{frames:?}"
    );
    drop(setup);

    let mut combos = 0;
    for tree in ["small", "large"] {
        for first in ["list", "restore", "verify"] {
            for second in ["list", "restore", "verify", "manifest", "backup"] {
                let what = format!("{second} behind {first} of {tree}");
                let mut raw = Raw::hello(srv.port(), NAME);
                let (mut bytes, a) = request(first, 1, tree);
                let (more, b) = request(second, 10, tree);
                bytes.extend(more);
                raw.send_raw(&bytes).expect("send");
                let (mut a_done, mut bodies) = (false, 0usize);
                loop {
                    let f = match raw.recv(WAIT) {
                        Recv::Frame(f) => f,
                        other => panic!("{what}: {other:?} (first done: {a_done})"),
                    };
                    assert!(!matches!(f, Frame::Error { .. }), "{what}: {f:?}");
                    if let Some(id) = id_of(&f) {
                        assert!(id == a || a_done, "{what}: answer to {id} before {a} ended");
                    }
                    match &f {
                        Frame::Offer { id, .. } => raw.send(&Frame::Want { id: *id, offset: 0 }),
                        Frame::File { size, .. } | Frame::FileFrom { size, .. } => {
                            let got = raw.recv_body(*size as usize, WAIT).expect("body");
                            bodies += got.len();
                        }
                        _ => {}
                    }
                    if ends(first, &f, a) {
                        a_done = true;
                    }
                    if a_done && ends(second, &f, b) {
                        break;
                    }
                }
                let per_restore = if tree == "large" { 5 + BIG } else { 5 };
                let restores = usize::from(first == "restore") + usize::from(second == "restore");
                assert_eq!(bodies, restores * per_restore, "{what}: body bytes");
                combos += 1;
            }
        }
    }
    assert_eq!(combos, 30);
    assert_eq!(
        std::fs::read(srv.store(NAME, std::path::Path::new("/new/f"))).expect("backed up"),
        body(200_000, 9)
    );
    assert_healthy(&srv);
}
