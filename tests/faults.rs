//! Faults on the server's side: a disk that fills up (simulated with
//! RLIMIT_FSIZE, which makes writes past the limit fail with EFBIG exactly
//! where ENOSPC would) must fail that one file with a clear message naming
//! it, leave the stored previous version intact, and keep the server
//! serving.

#[macro_use]
mod common;

use std::fs;

use common::*;

#[test]
fn a_full_disk_fails_the_file_by_name_and_keeps_the_old_version() {
    let srv = Server::start_with_file_size_limit(&[], 1 << 20);
    let s = scratch();
    let src = s.join("src");
    fs::create_dir(&src).unwrap();
    let big = src.join("big.bin");
    let small = src.join("small.txt");
    fs::write(&big, random_bytes(1, 512 * 1024)).unwrap();
    fs::write(&small, b"small v1\n").unwrap();
    srv.client(argv!["backup", src]).run().ok();
    let stored = srv.store(NAME, &big);
    assert_eq!(fs::read(&stored).unwrap(), fs::read(&big).unwrap());

    // The new version does not fit; the small file beside it does.
    fs::write(&big, random_bytes(2, 3 << 20)).unwrap();
    fs::write(&small, b"small v2\n").unwrap();
    let o = srv.client(argv!["backup", src]).run();
    o.code_is(1).err_has("big.bin").err_has("File too large");
    assert_eq!(
        fs::read(&stored).unwrap(),
        random_bytes(1, 512 * 1024),
        "old version damaged"
    );
    assert_eq!(fs::read(srv.store(NAME, &small)).unwrap(), b"small v2\n");
    assert!(
        find_tmp(srv.root()).is_empty(),
        "temporary files left: {:?}",
        find_tmp(srv.root())
    );

    // The server is still up and serves the next backup and restore.
    fs::write(&big, random_bytes(3, 700 * 1024)).unwrap();
    srv.client(argv!["backup", big]).run().ok();
    assert_eq!(fs::read(&stored).unwrap(), fs::read(&big).unwrap());
    let dest = s.join("dest");
    fs::create_dir(&dest).unwrap();
    srv.client(argv!["restore", src, dest]).run().ok();
    assert_same_tree(&src, &dest.join("src"));
}
