//! The starting corpus: a few valid conversations per target, so the
//! fuzzer begins past the handshake (it cannot guess a MAC) and with every
//! frame kind in hand. `cargo test --lib -- --ignored write_seeds` (in
//! `fuzz/`) rewrites `fuzz/seeds/`; the plain tests check that every seed
//! runs clean through its harness.

use std::path::Path;

use rsb::auth::Key;
use rsb::proto::{
    codec, EntryKind, ErrorCode, Frame, ListItem, ManifestEntry, Meta, Time, WirePath,
};

use crate::{client, server};

fn wp(s: &str) -> WirePath {
    WirePath::new(s.as_bytes().to_vec()).expect("valid path")
}

fn meta() -> Meta {
    Meta {
        mode: 0o755,
        mtime: Time {
            secs: 1_700_000_000,
            nanos: 5,
        },
        uid: 1000,
        gid: 100,
    }
}

fn bytes(frames: &[Frame]) -> Vec<u8> {
    let mut v = Vec::new();
    for f in frames {
        codec::encode(f, &mut v);
    }
    v
}

/// One frame of every kind.
pub fn every_frame() -> Vec<Frame> {
    let entry = |kind, p: &str, size| ManifestEntry {
        kind,
        path: wp(p),
        meta: meta(),
        size,
        target: if kind == EntryKind::Symlink {
            b"t".to_vec()
        } else {
            Vec::new()
        },
        rdev: if kind == EntryKind::CharDev { 0x103 } else { 0 },
        xattrs: 0,
    };
    vec![
        Frame::Hello {
            version: rsb::proto::VERSION,
            name: "laptop".into(),
            flags: 0,
            nonce: vec![1; 32],
        },
        Frame::Welcome {
            version: rsb::proto::VERSION,
            flags: 2,
            proof: vec![2; 32],
            store: (0, 0),
        },
        Frame::Error {
            code: ErrorCode::Auth,
            message: "authentication failed for laptop".into(),
        },
        Frame::Challenge { nonce: vec![3; 32] },
        Frame::Proof { mac: vec![4; 32] },
        Frame::Dir {
            id: 1,
            path: wp("home/ann"),
            meta: meta(),
        },
        Frame::Symlink {
            id: 2,
            path: wp("home/ann/l"),
            target: b"../x".to_vec(),
            meta: meta(),
        },
        Frame::Link {
            id: 2,
            path: wp("home/ann/g"),
            target: wp("home/ann/f"),
            meta: meta(),
            size: 5,
        },
        Frame::Update {
            id: 2,
            path: wp("home/ann/f"),
            kind: EntryKind::File,
            meta: meta(),
            size: 5,
        },
        Frame::Closed {
            id: 2,
            path: wp("home/ann"),
            whole: true,
            keep: vec![b"cache".to_vec(), b"x.tmp".to_vec()],
        },
        Frame::Special {
            id: 2,
            path: wp("home/ann/null"),
            kind: EntryKind::CharDev,
            rdev: 0x103,
            meta: meta(),
        },
        Frame::File {
            id: 3,
            path: wp("home/ann/f"),
            meta: meta(),
            size: 5,
            layout: Default::default(),
        },
        Frame::File {
            id: 4,
            path: wp("home/ann/sparse"),
            meta: meta(),
            size: 1 << 20,
            layout: rsb::proto::Layout::Sparse(vec![
                rsb::proto::Extent {
                    offset: 4096,
                    len: 3,
                },
                rsb::proto::Extent {
                    offset: 65536,
                    len: 2,
                },
            ]),
        },
        Frame::FileEnd {
            id: 3,
            crc: 0x1234_5678,
            ok: true,
        },
        Frame::Commit { id: 4 },
        Frame::Committed { id: 4 },
        Frame::Failed {
            id: 5,
            path: wp("a"),
            message: "open: Permission denied".into(),
        },
        Frame::List {
            id: 6,
            path: wp("home"),
        },
        Frame::ListEntry {
            id: 6,
            item: ListItem {
                kind: EntryKind::File,
                name: b"f".to_vec(),
                meta: meta(),
                size: 5,
                target: Vec::new(),
                rdev: 0,
            },
        },
        Frame::Restore {
            id: 7,
            path: WirePath::root(),
        },
        Frame::Done { id: 7 },
        Frame::At {
            secs: 1_700_000_000,
            nanos: 5,
        },
        Frame::Agent { id: 14 },
        Frame::Plan {
            text: b"[t]\npath /srv\nevery 1h\n".to_vec(),
        },
        Frame::Versions {
            id: 13,
            path: wp("home/f"),
        },
        Frame::Version {
            id: 13,
            item: rsb::proto::VersionItem {
                path: wp("home/f"),
                kind: EntryKind::File,
                size: 5,
                meta: meta(),
                stored: rsb::proto::Time {
                    secs: 1_600_000_000,
                    nanos: 0,
                },
                until: rsb::proto::Time::default(),
                held: 5,
            },
        },
        Frame::Manifest {
            id: 8,
            entries: vec![
                entry(EntryKind::File, "a/f", 3),
                entry(EntryKind::Symlink, "a/l", 0),
                entry(EntryKind::CharDev, "a/c", 0),
                entry(EntryKind::Fifo, "a/p", 0),
                entry(EntryKind::Dir, "a", 0),
            ],
        },
        Frame::Need {
            id: 8,
            bits: vec![0b101],
            meta: vec![0b010],
            resume: vec![(0, 1)],
            delta: vec![2],
        },
        Frame::Signature {
            id: 8,
            index: 2,
            total: 4,
            chunk: vec![0xd1, 0, 0, 0],
        },
        Frame::FileDelta {
            id: 10,
            path: wp("vm.img"),
            meta: meta(),
            size: 300_000,
            basis: 290_000,
            offset: 0,
            copies: vec![rsb::proto::CopyRange {
                dst: 4096,
                src: 0,
                len: 200_000,
            }],
        },
        Frame::FileDelta {
            id: 11,
            path: wp("vm.img"),
            meta: meta(),
            size: 300_000,
            basis: 290_000,
            offset: 8192,
            copies: vec![rsb::proto::CopyRange {
                dst: 8192,
                src: 4096,
                len: 100_000,
            }],
        },
        Frame::FileFrom {
            id: 9,
            path: wp("big"),
            meta: meta(),
            size: 10,
            offset: 4,
            layout: Default::default(),
        },
        Frame::Offer {
            id: 10,
            path: wp("big"),
            meta: meta(),
            size: 1 << 21,
        },
        Frame::Want { id: 10, offset: 7 },
        Frame::Skip { id: 10 },
        Frame::Verify {
            id: 11,
            path: WirePath::root(),
        },
        Frame::Verified {
            id: 11,
            files: 1,
            bytes: 5,
            damaged: 0,
            unchecked: 1,
        },
        Frame::Progress {
            id: 11,
            files: 1,
            bytes: 5,
        },
        names(),
        Frame::Xattrs {
            id: 12,
            path: WirePath::new(b"a/f".to_vec()).expect("valid"),
            attrs: rsb::proto::xattrs::Xattrs::from_pairs(vec![
                (b"user.color".to_vec(), b"blue".to_vec()),
                (b"security.capability".to_vec(), vec![1, 0, 0, 2]),
            ])
            .expect("valid"),
        },
    ]
}

/// The names of [`meta`]'s owner and group.
fn names() -> Frame {
    Frame::Names {
        users: vec![(1000, b"ann".to_vec())],
        groups: vec![(100, b"users".to_vec())],
    }
}

/// A client's side of a whole session: handshake, a backup with a body,
/// a resumed file, a commit, then list, restore (answering an offer),
/// manifest and verify requests.
fn client_stream(hello_nonce: Vec<u8>, proof: Option<Vec<u8>>) -> Vec<u8> {
    let mut v = bytes(&[Frame::Hello {
        version: rsb::proto::VERSION,
        name: server::NAME.into(),
        flags: 0,
        nonce: hello_nonce,
    }]);
    if let Some(mac) = proof {
        v.extend(bytes(&[Frame::Proof { mac }]));
    }
    v.extend(bytes(&[
        names(),
        Frame::Dir {
            id: 1,
            path: wp("d"),
            meta: meta(),
        },
        Frame::Symlink {
            id: 2,
            path: wp("d/l"),
            target: b"f".to_vec(),
            meta: meta(),
        },
        Frame::Special {
            id: 2,
            path: wp("d/p"),
            kind: EntryKind::Fifo,
            rdev: 0,
            meta: meta(),
        },
        Frame::File {
            id: 3,
            path: wp("d/f"),
            meta: meta(),
            size: 5,
            layout: Default::default(),
        },
    ]));
    v.extend_from_slice(b"hello");
    v.extend(bytes(&[
        Frame::FileEnd {
            id: 3,
            crc: 0x9a71_bb4c,
            ok: true,
        },
        Frame::FileFrom {
            id: 4,
            path: wp("d/big"),
            meta: meta(),
            size: 8,
            offset: 5,
            layout: Default::default(),
        },
    ]));
    v.extend_from_slice(b"abc");
    v.extend(bytes(&[
        Frame::FileEnd {
            id: 4,
            crc: 1,
            ok: false,
        },
        Frame::Commit { id: 5 },
        Frame::List {
            id: 6,
            path: wp("d"),
        },
        Frame::Restore {
            id: 7,
            path: WirePath::root(),
        },
        Frame::Want { id: 7, offset: 3 },
        Frame::Manifest {
            id: 8,
            entries: vec![ManifestEntry {
                kind: EntryKind::File,
                path: wp("d/f"),
                meta: meta(),
                size: 5,
                target: Vec::new(),
                rdev: 0,
                xattrs: 0,
            }],
        },
        Frame::Verify {
            id: 9,
            path: WirePath::root(),
        },
        Frame::Commit { id: 10 },
    ]));
    v
}

/// What the server side sends a client that made every request of
/// [`client::client_session`] (ids 1 to 6).
fn server_stream(auth: bool) -> Vec<u8> {
    let mut v = Vec::new();
    let mut welcome_flags = 0;
    let mut proof = Vec::new();
    if auth {
        let ns = [0x77; 32];
        v.extend(bytes(&[Frame::Challenge { nonce: ns.to_vec() }]));
        proof = Key::from_secret(client::SECRET)
            .server_proof(client::NAME, &client::CLIENT_NONCE, &ns)
            .to_vec();
        welcome_flags = rsb::proto::WELCOME_AUTHENTICATED;
    }
    v.extend(bytes(&[
        Frame::Welcome {
            version: rsb::proto::VERSION,
            flags: welcome_flags,
            proof,
            store: (0, 0),
        },
        Frame::ListEntry {
            id: 1,
            item: ListItem {
                kind: EntryKind::Dir,
                name: b"d".to_vec(),
                meta: meta(),
                size: 0,
                target: Vec::new(),
                rdev: 0,
            },
        },
        Frame::ListEntry {
            id: 1,
            item: ListItem {
                kind: EntryKind::BlockDev,
                name: b"sda".to_vec(),
                meta: meta(),
                size: 0,
                target: Vec::new(),
                rdev: 0x800,
            },
        },
        Frame::Done { id: 1 },
        names(),
        Frame::Dir {
            id: 2,
            path: wp("d"),
            meta: meta(),
        },
        Frame::Special {
            id: 2,
            path: wp("d/s"),
            kind: EntryKind::Socket,
            rdev: 0,
            meta: meta(),
        },
        Frame::File {
            id: 2,
            path: wp("d/f"),
            meta: meta(),
            size: 3,
            layout: Default::default(),
        },
    ]));
    v.extend_from_slice(b"abc");
    v.extend(bytes(&[
        Frame::FileEnd {
            id: 2,
            crc: 0,
            ok: true,
        },
        Frame::Offer {
            id: 2,
            path: wp("big"),
            meta: meta(),
            size: 4,
        },
        // Without `F_RESUME` the client wants the whole file.
        Frame::FileFrom {
            id: 2,
            path: wp("big"),
            meta: meta(),
            size: 4,
            offset: 0,
            layout: Default::default(),
        },
    ]));
    v.extend_from_slice(b"wxyz");
    v.extend(bytes(&[
        Frame::FileEnd {
            id: 2,
            crc: 0,
            ok: true,
        },
        Frame::Done { id: 2 },
        Frame::Progress {
            id: 3,
            files: 1,
            bytes: 2,
        },
        Frame::Failed {
            id: 3,
            path: wp("d/f"),
            message: "damaged".into(),
        },
        Frame::Verified {
            id: 3,
            files: 1,
            bytes: 3,
            damaged: 1,
            unchecked: 0,
        },
        Frame::Need {
            id: 4,
            bits: vec![1],
            meta: vec![2],
            resume: vec![(0, 2)],
            delta: vec![],
        },
        Frame::Committed { id: 6 },
        Frame::Error {
            code: ErrorCode::Shutdown,
            message: "server shutting down".into(),
        },
    ]));
    v
}

fn prefixed(flags: u8, seed: u8, stream: &[u8]) -> Vec<u8> {
    let mut v = vec![flags, seed];
    v.extend_from_slice(stream);
    v
}

/// The seeds: (target, file name, bytes).
pub fn all() -> Vec<(&'static str, String, Vec<u8>)> {
    let mut out = Vec::new();
    let frames = every_frame();
    for f in &frames {
        out.push(("decode", format!("kind-{:02}", f.kind()), codec::to_vec(f)));
    }
    out.push(("decode", "all".into(), bytes(&frames)));

    let plain = client_stream(Vec::new(), None);
    let nc = vec![0x11; 32];
    let mac =
        Key::from_secret(server::SECRET).client_proof(server::NAME, &nc, &server::SERVER_NONCE);
    let authed = client_stream(nc, Some(mac.to_vec()));
    for (name, flags, seed, stream) in [
        ("plain-whole", server::F_WHOLE, 0, &plain),
        ("plain-chunked", 0, 1, &plain),
        (
            "read-only",
            server::F_READ_ONLY | server::F_SHELL_FAILS,
            2,
            &plain,
        ),
        ("secrets", server::F_SECRETS | server::F_WHOLE, 0, &authed),
        (
            "secrets-chunked",
            server::F_SECRETS | server::F_NO_IDLE,
            3,
            &authed,
        ),
        (
            "shutdown",
            server::F_SHUTDOWN | server::F_NAMESPACE_FAILS,
            4,
            &plain,
        ),
    ] {
        out.push(("server_session", name.into(), prefixed(flags, seed, stream)));
    }

    let all = client::F_LIST
        | client::F_RESTORE
        | client::F_VERIFY
        | client::F_MANIFEST
        | client::F_FILE
        | client::F_COMMIT;
    out.push((
        "client_session",
        "plain".into(),
        prefixed(all, 1, &server_stream(false)),
    ));
    out.push((
        "client_session",
        "auth".into(),
        prefixed(all | client::F_AUTH, 1, &server_stream(true)),
    ));

    for (name, text) in [
        (
            "ok",
            &b"# names and secrets\nlaptop:pw one\r\n\nlab-2:a:b:c\n"[..],
        ),
        ("bad-name", b"ok:1\nbad name:x\n"),
        ("twice", b"a:1\n#\na:2"),
    ] {
        out.push(("secrets", name.into(), text.to_vec()));
    }
    out
}

/// Writes [`all`] under `dir` (`<dir>/<target>/<name>`).
pub fn write(dir: &Path) -> std::io::Result<()> {
    for (target, name, data) in all() {
        let d = dir.join(target);
        std::fs::create_dir_all(&d)?;
        std::fs::write(d.join(name), data)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[ignore = "rewrites fuzz/seeds; run by hand"]
    fn write_seeds() {
        write(&Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds")).unwrap();
    }

    fn run(target: &str, data: &[u8]) {
        match target {
            "decode" => crate::decode(data),
            "server_session" => crate::server_session(data),
            "client_session" => crate::client_session(data),
            "secrets" => crate::secrets(data),
            other => panic!("no target {other}"),
        }
    }

    #[test]
    fn every_seed_runs_clean() {
        for (target, name, data) in all() {
            eprintln!("{target}/{name}");
            run(target, &data);
        }
    }

    /// The committed seeds, with the inputs of fixed crashes (`crash-*`,
    /// named after the bug) among them: the regression tests of the fuzz
    /// targets.
    #[test]
    fn every_seed_file_runs_clean() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds");
        for target in std::fs::read_dir(&dir).unwrap() {
            let target = target.unwrap().path();
            for file in std::fs::read_dir(&target).unwrap() {
                let file = file.unwrap().path();
                eprintln!("{}", file.display());
                let name = target.file_name().unwrap().to_str().unwrap();
                run(name, &std::fs::read(&file).unwrap());
            }
        }
    }

    #[test]
    fn seeds_cover_every_frame_kind() {
        let kinds: Vec<u8> = every_frame().iter().map(Frame::kind).collect();
        for k in 0..=255u8 {
            let known = !matches!(
                codec::decode(&[k, 0, 0, 0, 0]),
                Err(rsb::proto::DecodeError::UnknownKind(_))
            );
            assert_eq!(known, kinds.contains(&k), "kind {k}");
        }
    }
}
