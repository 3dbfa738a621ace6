//! Hard links: a file with several names is sent once per backup run and
//! stored as one inode with as many names.

#[macro_use]
mod common;

use std::fs;
use std::os::unix::fs::MetadataExt;

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
