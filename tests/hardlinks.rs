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

#[test]
fn a_link_group_is_sent_once_and_stored_as_one_inode() {
    let srv = Server::start(&[]);
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
