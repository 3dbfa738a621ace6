//! Hard links: a file with several names is sent once per backup run and
//! stored as one inode with as many names, and a restore makes the names
//! it brings back one inode again.

#[macro_use]
mod common;

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use common::*;

/// The bytes moved by a command, from its summary line.
fn moved(o: &Output, cmd: &str) -> u64 {
    summary_bytes(&o.err(), cmd).unwrap_or_else(|| panic!("no summary\n{o}"))
}

/// The user the unprivileged server runs as.
const NOBODY: u32 = 65534;

#[test]
fn a_link_group_is_sent_once_and_stored_as_one_inode() {
    link_group(&Server::start(&[]));
}

/// A server that is not root gives its own stored file more names the
/// same way (the links share the inode, so its record too).
#[test]
fn a_server_that_is_not_root_stores_a_link_group_as_one_inode_too() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: a server run as another user needs root");
        return;
    }
    link_group(&Server::start_as_user(NOBODY, &[]));
}

/// Backs up a group of three names (and an unrelated file) four times:
/// first, unchanged, rewritten in place, with a fourth name.
fn link_group(srv: &Server) {
    let s = scratch();
    let src = s.join("src");
    fs::create_dir_all(src.join("a")).unwrap();
    fs::create_dir_all(src.join("b")).unwrap();
    let body = vec![7u8; 50_000];
    fs::write(src.join("a/one"), &body).unwrap();
    fs::hard_link(src.join("a/one"), src.join("a/two")).unwrap();
    fs::hard_link(src.join("a/one"), src.join("b/three")).unwrap();
    fs::write(src.join("b/other"), b"unrelated").unwrap();

    let o = srv.client(argv!["backup", src]).run();
    o.ok();
    assert_eq!(moved(&o, "backup"), 50_000 + 9, "{o}");
    let stored = srv.store(NAME, &src);
    let ino = |p: &str| {
        let m = fs::symlink_metadata(stored.join(p)).unwrap();
        (m.ino(), m.nlink())
    };
    let first = ino("a/one");
    assert_eq!(first.1, 3);
    assert_eq!(ino("a/two"), first);
    assert_eq!(ino("b/three"), first);
    assert_eq!(ino("b/other").1, 1);
    assert_eq!(fs::read(stored.join("b/three")).unwrap(), body);

    // Unchanged: nothing is sent, not even the other names (the server
    // finds each the same inode as the stored first name).
    let o = srv.client(argv!["backup", src]).run();
    o.ok();
    let err = o.err();
    assert!(
        err.lines().any(|l| l.starts_with("backup: 0 files sent")),
        "{o}"
    );
    assert_eq!(moved(&o, "backup"), 0, "{o}");

    // Rewritten in place: sent once, the store keeps one inode of three
    // names with the new content.
    let new = vec![9u8; 50_000];
    fs::write(src.join("b/three"), &new).unwrap();
    let o = srv.client(argv!["backup", src]).run();
    o.ok();
    assert_eq!(moved(&o, "backup"), 50_000, "{o}");
    let first = ino("a/one");
    assert_eq!(first.1, 3);
    assert_eq!(ino("a/two"), first);
    assert_eq!(ino("b/three"), first);
    assert_eq!(fs::read(stored.join("a/two")).unwrap(), new);

    // A fourth name: no body is sent.
    fs::hard_link(src.join("a/one"), src.join("b/four")).unwrap();
    let o = srv.client(argv!["backup", src]).run();
    o.ok();
    assert_eq!(moved(&o, "backup"), 0, "{o}");
    assert_eq!(ino("b/four"), (first.0, 4));
}

/// rsync's itemized differences between `a` and `b` (empty: the same).
fn rsync_diff(a: &Path, b: &Path) -> String {
    rsync_diff_with(&["-aHn"], a, b)
}

/// (inode, link count) of `p`.
fn inode(p: &Path) -> (u64, u64) {
    let m = fs::symlink_metadata(p).unwrap();
    (m.ino(), m.nlink())
}

/// A restore makes a group's names one inode again: three names in two
/// directories and a subdirectory (a small file, sent), two names of a
/// large one (offered first), and an unrelated file. The content goes
/// once; rsync -H finds the copy the same; a second restore over it
/// changes nothing; a restore of one name alone is a plain file.
#[test]
fn a_restore_makes_a_link_group_one_inode_again() {
    restore_group(&Server::start(&[]));
}

/// The same from a server that is not root (the stored names share the
/// inode's `user.rsb.meta`).
#[test]
fn a_restore_from_a_server_that_is_not_root_makes_one_inode_too() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: a server run as another user needs root");
        return;
    }
    restore_group(&Server::start_as_user(NOBODY, &[]));
}

fn restore_group(srv: &Server) {
    let s = scratch();
    let src = s.join("src");
    fs::create_dir_all(src.join("a/sub")).unwrap();
    fs::create_dir_all(src.join("b")).unwrap();
    let body = vec![7u8; 50_000];
    fs::write(src.join("a/one"), &body).unwrap();
    fs::hard_link(src.join("a/one"), src.join("b/two")).unwrap();
    fs::hard_link(src.join("a/one"), src.join("a/sub/three")).unwrap();
    let big: Vec<u8> = (0..3u32 << 20).map(|i| (i % 251) as u8).collect();
    fs::write(src.join("b/big"), &big).unwrap();
    fs::hard_link(src.join("b/big"), src.join("a/big2")).unwrap();
    fs::write(src.join("b/other"), b"unrelated").unwrap();
    let content = (body.len() + big.len() + 9) as u64;
    srv.client(argv!["backup", src]).run().ok();

    // Into an existing directory, as `cp -a` does: at out/src, so that
    // the same command restores over it again.
    let out = s.join("out");
    fs::create_dir(&out).unwrap();
    let dest = out.join("src");
    let o = srv.client(argv!["restore", src, out]).run();
    o.ok();
    assert_eq!(moved(&o, "restore"), content, "the content goes once\n{o}");
    assert!(o.err().contains("restore: 6 files received"), "{o}");
    let check = |dest: &Path| {
        let first = inode(&dest.join("a/one"));
        assert_eq!(first.1, 3, "{}", dest.display());
        assert_eq!(inode(&dest.join("b/two")), first);
        assert_eq!(inode(&dest.join("a/sub/three")), first);
        let bigs = inode(&dest.join("b/big"));
        assert_eq!(bigs.1, 2);
        assert_eq!(inode(&dest.join("a/big2")), bigs);
        assert_eq!(inode(&dest.join("b/other")).1, 1);
        assert_eq!(fs::read(dest.join("a/sub/three")).unwrap(), body);
        assert_eq!(fs::read(dest.join("a/big2")).unwrap(), big);
        assert_eq!(rsync_diff(&src, dest), "", "rsync -H sees a difference");
        assert!(find_tmp(dest).is_empty(), "temporary files left");
    };
    check(&dest);

    // Again over the result: nothing sent, nothing broken, one inode.
    let before = inode(&dest.join("a/one"));
    // (A small file's body comes and is dropped, a large one is skipped
    // at its offer: the small group's content goes once, links none.)
    let o = srv.client(argv!["restore", src, out]).run();
    o.ok();
    assert_eq!(moved(&o, "restore"), body.len() as u64 + 9, "{o}");
    assert!(
        o.err().contains("restore: 0 files received, 6 unchanged"),
        "{o}"
    );
    check(&dest);
    assert_eq!(inode(&dest.join("a/one")), before);

    // A name replaced locally by a file of its own, another removed: the
    // restore makes them names of their groups again (whichever name the
    // server meets first goes as the file).
    fs::remove_file(dest.join("b/two")).unwrap();
    fs::write(dest.join("b/two"), b"mine").unwrap();
    fs::remove_file(dest.join("a/big2")).unwrap();
    srv.client(argv!["restore", src, out]).run().ok();
    check(&dest);

    // One name alone: a plain file.
    let alone = s.join("alone");
    let o = srv.client(argv!["restore", src.join("b/two"), alone]).run();
    o.ok();
    assert_eq!(inode(&alone).1, 1);
    assert_eq!(fs::read(&alone).unwrap(), body);
    assert_eq!(moved(&o, "restore"), body.len() as u64, "{o}");

    // One directory of the group: the names inside it are linked, the
    // one outside is not there.
    let part = s.join("part");
    srv.client(argv!["restore", src.join("a"), part]).run().ok();
    let first = inode(&part.join("one"));
    assert_eq!(first.1, 2);
    assert_eq!(inode(&part.join("sub/three")), first);
    assert_eq!(inode(&part.join("big2")).1, 1);
}
