//! Every mode round-trips, whoever the server runs as: a server that is
//! not root keeps the real mode (and owner) in the entry's metadata record
//! (`user.rsb.meta`) and stores with the owner access it needs (rsync's
//! "fake super"); the manifest check, listings, restores and verify all
//! take the mode from there.

#[macro_use]
mod common;

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use common::*;

/// The user the unprivileged server runs as.
const NOBODY: u32 = 65534;

/// An extended attribute of `p` (not following a link), as text.
fn xattr(p: &Path, name: &str) -> Option<String> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(p.as_os_str().as_bytes()).unwrap();
    let n = std::ffi::CString::new(name).unwrap();
    let mut buf = [0u8; 128];
    // SAFETY: both strings are NUL-terminated; the buffer outlives the call.
    let len =
        unsafe { nix::libc::lgetxattr(c.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    (len >= 0).then(|| String::from_utf8_lossy(&buf[..len as usize]).into_owned())
}

/// A tree of every awkward mode: files a server that is not root could
/// not set its checksum on or read back, and directories it could not
/// write into or read, each with files inside.
fn awkward_modes(src: &Path) -> Tree {
    let t = (1_600_000_000, 5);
    let mut tree = Tree::new(src, 0o755, t);
    for (i, mode) in [0o444, 0o400, 0o440, 0o555, 0o000, 0o200, 0o644]
        .into_iter()
        .enumerate()
    {
        let body = random_bytes(i as u64, 1000 + i * 7);
        tree.file(
            format!("f{mode:04o}"),
            &body,
            mode,
            (1_600_000_001, i as u32),
        );
    }
    // A large file (received into a partial) that its owner cannot write.
    tree.file(
        "big0444",
        &random_bytes(99, (1 << 20) + 4321),
        0o444,
        (1_600_000_002, 3),
    );
    for (i, mode) in [0o311, 0o111, 0o000, 0o555].into_iter().enumerate() {
        let d = format!("d{mode:04o}");
        tree.dir(&d, mode, (1_600_000_010, i as u32))
            .dir(format!("{d}/sub"), 0o500, (1_600_000_011, i as u32))
            .file(
                format!("{d}/in.txt"),
                b"inside\n",
                0o644,
                (1_600_000_012, 0),
            )
            .file(format!("{d}/ro"), b"read only\n", 0o400, (1_600_000_013, 0))
            .file(
                format!("{d}/sub/deep"),
                b"deep\n",
                0o000,
                (1_600_000_014, 0),
            );
    }
    tree.finish();
    tree
}

/// (inode, ctime) of everything under `dir`: a backup that sends nothing
/// changes none of them.
fn inodes(dir: &Path) -> Vec<(String, u64, i64, i64)> {
    let mut v = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in fs::read_dir(&d).unwrap().flatten() {
            let md = fs::symlink_metadata(e.path()).unwrap();
            v.push((
                e.path().display().to_string(),
                md.ino(),
                md.ctime(),
                md.ctime_nsec(),
            ));
            if md.is_dir() {
                todo.push(e.path());
            }
        }
    }
    v.sort();
    v
}

fn round_trip(srv: &Server, root_server: bool) {
    let s = scratch();
    let src = s.join("src");
    awkward_modes(&src);
    let o = srv.client(argv!["backup", src]).run();
    o.ok();
    assert!(!o.err().contains("denied"), "{o}");

    // What is on disk: owner access added where a server that is not root
    // needs it, the real mode recorded beside, and the sticky bit saying
    // there is a record.
    let stored = srv.store(NAME, &src);
    let disk = |p: &str| fs::symlink_metadata(stored.join(p)).unwrap().mode() & 0o7777;
    if root_server {
        // No record (no sticky bit: the mode and owner on disk are the
        // real ones; the owner's names are in the namespace's table).
        assert_eq!(disk("f0444"), 0o444);
        assert_eq!(
            xattr(&stored.join("f0444"), "user.rsb.meta").as_deref(),
            None
        );
        let table = fs::read_to_string(srv.ns(NAME).join(".rsb-tmp.names")).unwrap();
        assert!(
            table.starts_with("v1\n") && table.contains("\nuser 0 root\n"),
            "{table}"
        );
    } else {
        assert_eq!(disk("f0444"), 0o1644);
        assert_eq!(disk("f0200"), 0o1600);
        assert_eq!(disk("d0000"), 0o1700);
        assert_eq!(
            xattr(&stored.join("f0444"), "user.rsb.meta").as_deref(),
            Some("v1 mode=0444 uid=0 gid=0")
        );
        assert_eq!(
            xattr(&stored.join("d0311"), "user.rsb.meta").as_deref(),
            Some("v1 mode=0311 uid=0 gid=0")
        );
        // Its mode is its own, its owner (root) is not the server's.
        assert_eq!(disk("f0644"), 0o1644);
        assert_eq!(
            xattr(&stored.join("f0644"), "user.rsb.meta").as_deref(),
            Some("v1 mode=0644 uid=0 gid=0")
        );
        let md = fs::metadata(stored.join("f0000")).unwrap();
        assert_eq!((md.uid(), md.gid()), (NOBODY, NOBODY));
    }
    assert!(xattr(&stored.join("d0000/sub/deep"), "user.rsb.crc32c").is_some());

    // Listings show the real modes.
    let o = srv.client(argv!["ls", src]).run();
    o.ok();
    for (name, col) in [
        ("f0444", "-r--r--r--"),
        ("f0000", "----------"),
        ("f0200", "--w-------"),
        ("d0311", "d-wx--x--x"),
        ("d0000", "d---------"),
    ] {
        assert!(
            o.out()
                .lines()
                .any(|l| l.starts_with(col) && l.ends_with(name)),
            "{name} not listed as {col}:\n{o}"
        );
    }

    // An incremental re-run sends nothing and touches nothing.
    let before = inodes(&stored);
    let o = srv.client(argv!["backup", src]).run();
    o.ok();
    assert!(o.err().contains("backup: 0 files sent"), "{o}");
    assert_eq!(before, inodes(&stored), "the re-run changed the store");

    let o = srv.client(argv!["verify"]).run();
    o.ok();
    assert!(!o.err().contains("no checksum"), "{o}");

    // Every byte, mode and mtime comes back.
    let dest = s.join("dest");
    // DEST does not exist: the tree lands at DEST itself.
    let o = srv.client(argv!["restore", src, dest]).run();
    o.ok();
    assert_same_tree(&src, &dest);
}

/// Issue 9 item 4: a server run as an ordinary user could not store files
/// of modes 0444, 0400, 0440, 0555 or 0000 ("setxattr: Permission
/// denied": the mode was set before the checksum), and accepted with exit
/// 0 files it could never read back (0200, anything inside 0311, 0111 or
/// 0000 directories).
#[test]
fn a_server_that_is_not_root_stores_and_gives_back_every_mode() {
    let srv = Server::start_as_user(NOBODY, &[]);
    round_trip(&srv, false);
}

#[test]
fn a_root_server_stores_and_gives_back_every_mode() {
    assert!(nix::unistd::geteuid().is_root(), "the tests run as root");
    let srv = Server::start(&[]);
    round_trip(&srv, true);
}

/// Issue 9 item 6: set-user-ID and set-group-ID bits survived while the
/// owner was dropped: a user's set-user-ID file came back set-user-ID
/// root, and a root server kept it set-user-ID root in the store. Since
/// issue 10 owners come back too: a root restore gives the bits back with
/// them (a restore that cannot is in tests/owners.rs).
#[test]
fn a_setuid_file_is_never_setuid_in_the_store_and_comes_back_with_its_owner() {
    let srv = Server::start(&[]);
    let s = scratch();
    let src = s.join("src");
    let t = (1_600_000_000, 9);
    let mut tree = Tree::new(&src, 0o755, t);
    tree.file("su", b"#!/bin/sh\n", 0o4755, t)
        .file("sg", b"#!/bin/sh\n", 0o2711, t)
        .file("sticky", b"x", 0o1644, t)
        .dir("sgdir", 0o2775, t)
        .file("sgdir/plain", b"plain", 0o644, t)
        .finish();
    srv.client(argv!["backup", src]).run().ok();

    // In the store: the file, owned by root, is not set-user-ID; the real
    // bits are in its record.
    let stored = srv.store(NAME, &src);
    let disk = |p: &str| fs::symlink_metadata(stored.join(p)).unwrap().mode() & 0o7777;
    assert_eq!(disk("su"), 0o1755);
    assert_eq!(disk("sg"), 0o1711);
    assert_eq!(
        xattr(&stored.join("su"), "user.rsb.meta").as_deref(),
        Some("v1 mode=4755")
    );
    // Nothing changed: a re-run sends nothing.
    let o = srv.client(argv!["backup", src]).run();
    o.ok();
    assert!(o.err().contains("backup: 0 files sent"), "{o}");

    // Restored by root with their owner, so with the bits, and nothing
    // to warn about.
    let dest = s.join("dest");
    let o = srv.client(argv!["restore", src, dest]).run();
    o.ok();
    assert!(!o.err().contains("warning"), "{o}");
    let mode = |p: &str| fs::symlink_metadata(dest.join(p)).unwrap().mode() & 0o7777;
    assert_eq!(mode("su"), 0o4755);
    assert_eq!(mode("sg"), 0o2711);
    assert_eq!(mode("sticky"), 0o1644);
    assert_eq!(mode("sgdir"), 0o2775);
    assert_eq!(fs::read(dest.join("sgdir/plain")).unwrap(), b"plain");
    // Nothing to clear, nothing said.
    let plain = s.join("plain");
    let o = srv
        .client(argv!["restore", src.join("sgdir/plain"), plain])
        .run();
    o.ok();
    assert!(!o.err().contains("warning"), "{o}");
}
