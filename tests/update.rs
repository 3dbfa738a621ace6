//! Issue 10, metadata-only updates: a `chmod` or `chown` of a file whose
//! content is unchanged (same size and mtime) costs a few bytes on the
//! wire, not the file: the server's manifest check asks for its metadata
//! only, the client sends an `Update`, and the server changes the stored
//! file in place at the commit (same inode, content and checksum record).

#[macro_use]
mod common;

use std::fs;
use std::os::unix::fs::{lchown, MetadataExt};
use std::path::Path;
use std::time::Duration;

use common::*;
use rsb::proto::{EntryKind, Frame, Meta, Time, WirePath};

/// The user the unprivileged server runs as.
const NOBODY: u32 = 65534;

/// An extended attribute of `p` (not following a link), raw.
fn xattr(p: &Path, name: &str) -> Option<Vec<u8>> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(p.as_os_str().as_bytes()).unwrap();
    let n = std::ffi::CString::new(name).unwrap();
    let mut buf = [0u8; 2048];
    // SAFETY: both strings are NUL-terminated; the buffer outlives the call.
    let len =
        unsafe { nix::libc::lgetxattr(c.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    (len >= 0).then(|| buf[..len as usize].to_vec())
}

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// The last summary line of `cmd` in `o`'s stderr.
fn summary(o: &Output, cmd: &str) -> String {
    let tag = format!("{cmd}: ");
    o.err()
        .lines()
        .rev()
        .find(|l| l.starts_with(&tag))
        .unwrap_or_else(|| panic!("no {cmd} summary\n{o}"))
        .to_string()
}

/// What the store holds of a file: inode, mode, owner, content, the
/// checksum record.
struct Stored {
    ino: u64,
    mode: u32,
    owner: (u32, u32),
    content: Vec<u8>,
    crc: Option<Vec<u8>>,
}

fn stored_state(p: &Path) -> Stored {
    let md = fs::symlink_metadata(p).unwrap();
    Stored {
        ino: md.ino(),
        mode: md.mode() & 0o7777,
        owner: (md.uid(), md.gid()),
        content: fs::read(p).unwrap(),
        crc: xattr(p, "user.rsb.crc32c"),
    }
}

/// Backs up a tree with a 2 MiB file, changes the file's mode (and as
/// root its owner), backs up again: 0 bytes sent and 1 updated; the store
/// has the new metadata on the same inode with the same content and
/// checksum record, a restore gives the new mode and owner, and a third
/// run finds everything unchanged.
fn chmod_and_chown(srv: &Server, root_server: bool) {
    let s = scratch();
    let src = s.join("src");
    let t = (1_600_000_000, 11);
    let big = random_bytes(10, 2 << 20);
    Tree::new(&src, 0o755, t)
        .file("big", &big, 0o644, t)
        .file("small", b"small", 0o644, t)
        .dir("d", 0o755, t)
        .file("d/inner", b"inner", 0o640, t)
        .finish();
    let o = srv.client(argv!["backup", src]).run();
    o.ok();
    assert_summary_bytes(&o, "backup", (2 << 20) + 5 + 5);
    let stored = srv.store(NAME, &src).join("big");
    let before = stored_state(&stored);
    assert!(before.crc.is_some(), "a checksum is recorded");

    chmod(&src.join("big"), 0o600);
    let owner = if is_root() {
        lchown(src.join("big"), Some(1234), Some(5678)).unwrap();
        Some((1234, 5678))
    } else {
        eprintln!("skipped the chown: owners can only be given as root");
        None
    };
    let o = srv.client(argv!["backup", src]).run();
    o.ok();
    let line = summary(&o, "backup");
    assert!(line.starts_with("backup: 0 files sent, "), "{o}");
    assert!(
        line.contains(" unchanged, 1 updated, 0 failed, 0 bytes"),
        "{o}"
    );
    assert_summary_bytes(&o, "backup", 0);

    let after = stored_state(&stored);
    assert_eq!(after.ino, before.ino, "the same inode");
    assert_eq!(after.content, big, "the same content");
    assert_eq!(after.crc, before.crc, "the same checksum record");
    let record = xattr(&stored, "user.rsb.meta").map(|r| String::from_utf8(r).unwrap());
    if root_server {
        assert_eq!(after.mode, 0o600);
        assert_eq!(after.owner, owner.unwrap_or(before.owner));
    } else {
        // A server that is not root keeps the real owner in the record,
        // and the sticky bit saying there is one.
        assert_eq!(after.owner, (NOBODY, NOBODY));
        assert_eq!(after.mode, 0o1600);
        assert_eq!(record.as_deref(), Some("v1 mode=0600 uid=1234 gid=5678"));
    }
    if root_server && owner.is_some() {
        assert_eq!(record, None, "nothing to record on a root server");
    }

    let dest = s.join("dest");
    srv.client(argv!["restore", src, dest]).run().ok();
    let md = fs::symlink_metadata(dest.join("big")).unwrap();
    assert_eq!(md.mode() & 0o7777, 0o600);
    if let Some(o) = owner {
        assert_eq!((md.uid(), md.gid()), o);
    }
    assert_eq!(fs::read(dest.join("big")).unwrap(), big);
    assert_same_tree(&src, &dest);

    // Nothing changed since: nothing is sent, nothing updated.
    let o = srv.client(argv!["backup", src]).run();
    o.ok();
    let line = summary(&o, "backup");
    assert!(line.starts_with("backup: 0 files sent, "), "{o}");
    assert!(line.contains(" unchanged, 0 failed, 0 bytes"), "{o}");
}

#[test]
fn a_chmod_and_chown_send_only_metadata() {
    chmod_and_chown(&Server::start(&[]), true);
}

/// rsync's `--fake-super` model: the record changes, the file stays.
#[test]
fn a_server_that_is_not_root_updates_the_record() {
    if !is_root() {
        eprintln!("skipped: a server run as another user needs root");
        return;
    }
    chmod_and_chown(&Server::start_as_user(NOBODY, &[]), false);
}

/// A file of two names is one inode on both sides: a chmod of it is
/// sent as metadata only (for each name, no body), and the store keeps
/// one inode of two names with the new mode.
#[test]
fn a_hard_linked_file_is_updated_and_stays_one_inode() {
    let srv = Server::start(&[]);
    let s = scratch();
    let src = s.join("src");
    fs::create_dir_all(src.join("a")).unwrap();
    fs::create_dir_all(src.join("b")).unwrap();
    let body = random_bytes(3, 300_000);
    fs::write(src.join("a/one"), &body).unwrap();
    fs::hard_link(src.join("a/one"), src.join("b/two")).unwrap();
    srv.client(argv!["backup", src]).run().ok();
    let stored = srv.store(NAME, &src);
    let ino = fs::metadata(stored.join("a/one")).unwrap().ino();

    chmod(&src.join("a/one"), 0o600);
    let o = srv.client(argv!["backup", src]).run();
    o.ok();
    assert_summary_bytes(&o, "backup", 0);
    let line = summary(&o, "backup");
    assert!(line.starts_with("backup: 0 files sent, "), "{o}");
    assert!(line.contains(" updated, 0 failed"), "{o}");
    for p in ["a/one", "b/two"] {
        let md = fs::metadata(stored.join(p)).unwrap();
        assert_eq!((md.ino(), md.nlink()), (ino, 2), "{p}");
        assert_eq!(md.mode() & 0o777, 0o600, "{p}");
    }
    assert_eq!(fs::read(stored.join("b/two")).unwrap(), body);
    let o = srv.client(argv!["backup", src]).run();
    o.ok();
    assert!(!summary(&o, "backup").contains("updated"), "{o}");
}

/// A symlink whose owner changed (root only) or whose mtime changed is
/// updated in place too: its target is its content.
#[test]
fn a_symlink_is_updated_in_place() {
    let srv = Server::start(&[]);
    let s = scratch();
    let src = s.join("src");
    let t = (1_600_000_000, 5);
    Tree::new(&src, 0o755, t)
        .file("f", b"f", 0o644, t)
        .link("l", "f", t)
        .finish();
    srv.client(argv!["backup", src]).run().ok();
    let stored = srv.store(NAME, &src).join("l");
    let ino = fs::symlink_metadata(&stored).unwrap().ino();
    set_mtime(&src.join("l"), (1_700_000_000, 1));
    if is_root() {
        lchown(src.join("l"), Some(1234), Some(5678)).unwrap();
    }
    set_mtime(&src, t);
    let o = srv.client(argv!["backup", src]).run();
    o.ok();
    let line = summary(&o, "backup");
    assert!(line.starts_with("backup: 0 files sent, "), "{o}");
    assert!(
        line.contains(" unchanged, 1 updated, 0 failed, 0 bytes"),
        "{o}"
    );
    let md = fs::symlink_metadata(&stored).unwrap();
    assert_eq!(md.ino(), ino, "the same link");
    assert_eq!(md.mtime(), 1_700_000_000);
    if is_root() {
        assert_eq!((md.uid(), md.gid()), (1234, 5678));
    }
    assert_eq!(fs::read_link(&stored).unwrap(), Path::new("f"));
}

/// A read-only server refuses an `Update` as any write, naming the
/// path; the connection goes on.
#[test]
fn a_read_only_server_refuses_updates() {
    let base = scratch();
    let root = base.join("root");
    let s = scratch();
    let src = s.join("src");
    let t = (1_600_000_000, 5);
    Tree::new(&src, 0o755, t).file("f", b"f", 0o644, t).finish();
    {
        let srv = Server::start_at(&root, &[]);
        srv.client(argv!["backup", src]).run().ok();
        srv.stop();
    }
    let srv = Server::start_at(&root, &["-r"]);
    let stored = srv.store(NAME, &src).join("f");
    let before = fs::metadata(&stored).unwrap().mode();
    let mut r = Raw::hello(srv.port(), NAME);
    let rel = src.join("f");
    let path = WirePath::new(
        rel.to_str()
            .unwrap()
            .trim_start_matches('/')
            .as_bytes()
            .to_vec(),
    )
    .unwrap();
    let update = Frame::Update {
        id: 1,
        path: path.clone(),
        kind: EntryKind::File,
        meta: Meta {
            mode: 0o600,
            mtime: Time {
                secs: t.0,
                nanos: t.1,
            },
            uid: 0,
            gid: 0,
        },
        size: 1,
    };
    let mut bytes = rsb::proto::codec::to_vec(&update);
    bytes.extend(rsb::proto::codec::to_vec(&Frame::Commit { id: 2 }));
    let (frames, _) = r.exchange(&bytes, 2, Duration::from_secs(10));
    assert!(
        matches!(&frames[..], [Frame::Failed { id: 1, path: p, message }, Frame::Committed { id: 2 }]
            if *p == path && message == "server is read-only"),
        "{frames:?}"
    );
    assert_eq!(fs::metadata(&stored).unwrap().mode(), before);
}

/// The stored copy removed between the manifest check and the commit
/// (here by hand, while the server's commit is slowed): the update fails
/// with "not stored", and the client sends the file whole at once, in a
/// batch of its own, so the run still ends with the file stored.
#[test]
fn a_stored_copy_removed_before_the_commit_is_sent_whole() {
    let srv = Server::start_with_env(&[], &[("RSB_TEST_COMMIT_DELAY_MS", "3000")]);
    let s = scratch();
    let src = s.join("src");
    let t = (1_600_000_000, 5);
    let body = random_bytes(4, 100_000);
    Tree::new(&src, 0o755, t)
        .file("f", &body, 0o644, t)
        .finish();
    srv.client(argv!["backup", src]).run().ok();
    let stored = srv.store(NAME, &src).join("f");
    assert!(stored.exists());

    chmod(&src.join("f"), 0o600);
    let run = srv.client(argv!["backup", src]).spawn();
    // Once it is connected its manifest is answered at once, its Update
    // staged, and its commit waits 3 s.
    assert!(wait_until(Duration::from_secs(10), || srv
        .log()
        .matches("client t connected")
        .count()
        == 2));
    std::thread::sleep(Duration::from_millis(700));
    fs::remove_file(&stored).unwrap();
    let o = run.wait(Duration::from_secs(30));
    o.ok();
    assert!(srv.log().contains("not stored"), "{}", srv.log());
    let line = summary(&o, "backup");
    assert!(line.starts_with("backup: 1 file sent, "), "{o}");
    assert!(line.contains(" 0 failed, 100000 bytes"), "{o}");
    assert_eq!(fs::read(&stored).unwrap(), body);
    assert_eq!(fs::metadata(&stored).unwrap().mode() & 0o777, 0o600);
}
