//! Target `client_session`: a [`ClientSession`] fed an arbitrary byte
//! stream as the server's side of the connection.
//!
//! Input layout: `flags`, `seed`, then the server's byte stream. `flags`
//! picks the requests made before anything arrives (see the `F_*`
//! constants, issued in that order, so with all of them set the ids are 1
//! to 6); `seed` drives chunk sizes (and the answers to `Offer`s).

use std::collections::HashSet;
use std::time::Instant;

use rsb::auth::Key;
use rsb::client::session::{ClientAuth, ClientSession, Event};
use rsb::proto::{EntryKind, Frame, ManifestEntry, Meta, WirePath};

use crate::rng::Rng;

/// The client has a secret ([`crate::seeds::CLIENT_SECRET`]).
pub const F_AUTH: u8 = 1;
/// `List` of the root.
pub const F_LIST: u8 = 2;
/// `Restore` of the root.
pub const F_RESTORE: u8 = 4;
/// `Verify` of the root.
pub const F_VERIFY: u8 = 8;
/// A `Manifest` of two entries.
pub const F_MANIFEST: u8 = 16;
/// An empty file (header and `FileEnd`).
pub const F_FILE: u8 = 32;
/// A `Commit`.
pub const F_COMMIT: u8 = 64;

/// Answer `Offer`s with a random offset (else 0: the whole file).
pub const F_RESUME: u8 = 128;

/// The client's name.
pub const NAME: &str = "box";
/// The client's secret with [`F_AUTH`].
pub const SECRET: &[u8] = b"pw";
/// The client's nonce with [`F_AUTH`].
pub const CLIENT_NONCE: [u8; 32] = [0x3c; 32];

/// Drives a client session with `data` (see the module docs).
pub fn client_session(data: &[u8]) {
    let [flags, seed, stream @ ..] = data else {
        return;
    };
    let mut rng = Rng::new(*seed);
    let auth = (flags & F_AUTH != 0).then(|| ClientAuth {
        key: Key::from_secret(SECRET),
        nonce: CLIENT_NONCE,
    });
    // One instant throughout: the harness never calls `handle_timeout`.
    let now = Instant::now();
    let mut c = ClientSession::new(now, NAME, auth);
    let root = WirePath::root();
    let mut streams = HashSet::new();
    let mut commits = HashSet::new();
    let mut manifests = HashSet::new();
    if flags & F_LIST != 0 {
        streams.insert(c.send_list(root.clone()));
    }
    if flags & F_RESTORE != 0 {
        streams.insert(c.send_restore(root.clone()));
    }
    if flags & F_VERIFY != 0 {
        streams.insert(c.send_verify(root.clone()));
    }
    if flags & F_MANIFEST != 0 {
        let entry = |kind, p: &str| ManifestEntry {
            kind,
            path: WirePath::new(p.as_bytes().to_vec()).expect("path"),
            meta: Meta::default(),
            size: 0,
            target: Vec::new(),
            rdev: 0,
            xattrs: 0,
        };
        manifests.insert(c.send_manifest(vec![
            entry(EntryKind::File, "d/f"),
            entry(EntryKind::Dir, "d"),
        ]));
    }
    if flags & F_FILE != 0 {
        let id = c.send_file(
            WirePath::new(b"e".to_vec()).expect("path"),
            Meta::default(),
            0,
            Default::default(),
        );
        c.send_file_end(id, 0, true);
    }
    if flags & F_COMMIT != 0 {
        commits.insert(c.send_commit());
    }

    let mut sent = Vec::new();
    let mut pending = Vec::new();
    let mut body_left: Option<u64> = None;
    let mut announced: Option<u64> = None;
    let mut closed_events = None;
    let mut events = 0usize;
    let mut rest = stream;
    while !rest.is_empty() {
        let (chunk, tail) = rest.split_at(rng.chunk_len().min(rest.len()));
        rest = tail;
        pending.extend_from_slice(chunk);
        loop {
            let progress = if let Some(n) = c.wants_body() {
                let left = body_left.unwrap_or_else(|| {
                    assert_eq!(Some(n), announced, "body not announced by a File event");
                    assert!(n > 0);
                    n
                });
                assert_eq!(
                    c.handle_input(now, &pending),
                    0,
                    "body bytes parsed as frames"
                );
                let take = left.min(pending.len() as u64);
                pending.drain(..take as usize);
                if take == left {
                    body_left = None;
                    c.handle_body_done();
                } else {
                    body_left = Some(left - take);
                }
                take > 0
            } else {
                let used = c.handle_input(now, &pending);
                if closed_events.is_some() {
                    assert_eq!(used, 0, "a closed session consumed input");
                }
                pending.drain(..used);
                used > 0
            };
            while let Some(e) = c.poll_event() {
                events += 1;
                announced = None;
                match e {
                    Event::Offer { id, size, .. } => {
                        let offset = if flags & F_RESUME == 0 {
                            0
                        } else {
                            rng.below(size.saturating_add(1).max(1))
                        };
                        c.send_want(id, offset);
                    }
                    Event::File {
                        id, size, offset, ..
                    } => {
                        assert!(streams.contains(&id));
                        assert!(offset <= size);
                        announced = Some(size - offset);
                    }
                    Event::Done { id } | Event::Verified { id, .. } => {
                        assert!(streams.remove(&id), "{id} ended but was never asked for");
                    }
                    Event::ListEntry { id, .. }
                    | Event::Progress { id, .. }
                    | Event::Dir { id, .. }
                    | Event::Symlink { id, .. }
                    | Event::Link { id, .. }
                    | Event::Special { id, .. }
                    | Event::FileEnd { id, .. } => {
                        assert!(streams.contains(&id), "an entry for {id}, never asked for");
                    }
                    Event::Committed { id } => assert!(commits.remove(&id)),
                    Event::Need {
                        id,
                        bits,
                        meta,
                        resume,
                        delta,
                    } => {
                        assert!(manifests.remove(&id));
                        assert_eq!(bits.len(), 1);
                        assert_eq!(meta.len(), 1);
                        assert!(bits.iter().zip(&meta).all(|(b, m)| b & m == 0));
                        assert!(resume.iter().all(|&(i, _)| i < 2));
                        // Only needed entries, ascending, each signature whole.
                        assert!(delta.iter().all(|(i, _)| *i < 2 && bits[0] >> i & 1 == 1));
                        assert!(delta.windows(2).all(|w| w[0].0 < w[1].0));
                    }
                    Event::Welcome { .. }
                    | Event::Refused { .. }
                    | Event::Failed { .. }
                    | Event::Names { .. }
                    | Event::Version { .. }
                    | Event::Plan { .. }
                    | Event::Xattrs { .. } => {}
                }
            }
            if c.is_closed() {
                match closed_events {
                    None => closed_events = Some(events),
                    Some(n) => assert_eq!(n, events, "events after the session closed"),
                }
            }
            let out = c.poll_transmit().to_vec();
            c.handle_sent(now, out.len());
            sent.extend_from_slice(&out);
            for f in crate::drain_frames(&mut sent, "the client") {
                if let Frame::File { size, .. } = f {
                    assert_eq!(size, 0, "only empty files are sent");
                }
            }
            if !progress {
                break;
            }
        }
    }
    assert!(sent.is_empty(), "the client's output ends mid-frame");
    c.handle_eof();
    assert!(c.is_closed());
}
