//! Extended attributes and ACLs (issue 10): every namespace a client can
//! read is kept in the store under `user.rsb.x.` and comes back on
//! restore; rsync (`-aHAXn`) is the judge. Changes of a set reach the
//! store, a set past the bounds is reported and the content still kept.

#[macro_use]
mod common;

use std::fs;
use std::path::{Path, PathBuf};

use common::*;

/// The user the unprivileged server runs as.
const NOBODY: u32 = 65534;

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// A tree with attributes of each namespace: `a` (user.*, a client's own
/// `user.rsb.crc32c`, an access ACL), `empty` (an empty file with one),
/// `d/` (a default ACL, `trusted.*`, user.*), `d/cap` (a file capability)
/// and `plain` (none).
fn xattr_tree(root: &Path) -> PathBuf {
    let src = root.join("src");
    fs::create_dir_all(src.join("d")).unwrap();
    fs::write(src.join("a"), b"contents of a").unwrap();
    fs::write(src.join("empty"), b"").unwrap();
    fs::write(src.join("d/cap"), b"#!/bin/sh\n").unwrap();
    fs::write(src.join("plain"), b"nothing special").unwrap();
    set_xattr(&src.join("a"), "user.color", b"blue");
    set_xattr(&src.join("a"), "user.rsb.crc32c", b"mine, not rsb's");
    set_xattr(&src.join("a"), "user.bin", &[0, 1, 2, 255]);
    set_xattr(&src.join("empty"), "user.e", b"1");
    set_xattr(&src.join("d"), "user.dir", b"yes");
    set_xattr(&src.join("d"), "trusted.t", b"only root sees this");
    tool(
        "setfacl",
        &["-m", "u:65534:r", &src.join("a").display().to_string()],
    );
    tool(
        "setfacl",
        &[
            "-d",
            "-m",
            "u:65534:rx",
            &src.join("d").display().to_string(),
        ],
    );
    tool(
        "setcap",
        &["cap_net_raw+ep", &src.join("d/cap").display().to_string()],
    );
    src
}

/// The stored attributes of `p` that are a client's (`user.rsb.x.*`).
fn kept(p: &Path) -> Vec<(String, Vec<u8>)> {
    xattrs_of(p)
        .into_iter()
        .filter_map(|(n, v)| Some((n.strip_prefix("user.rsb.x.")?.to_string(), v)))
        .collect()
}

fn names(v: &[(String, Vec<u8>)]) -> Vec<&str> {
    v.iter().map(|(n, _)| n.as_str()).collect()
}

#[test]
fn every_namespace_is_kept_and_restored() {
    if !is_root() {
        eprintln!("skipped: trusted.* and file capabilities need root");
        return;
    }
    round_trip(&Server::start(&[]));
}

#[test]
fn a_server_that_is_not_root_keeps_them_too() {
    if !is_root() {
        eprintln!("skipped: a server run as another user needs root");
        return;
    }
    round_trip(&Server::start_as_user(NOBODY, &[]));
}

fn round_trip(srv: &Server) {
    let s = scratch();
    let src = xattr_tree(s.path());
    srv.client(argv!["backup", src]).run().ok();
    let stored = srv.store(NAME, &src);

    // Each is kept under the prefix, taking no effect in the store; rsb's
    // own checksum record is its own.
    let a = kept(&stored.join("a"));
    assert_eq!(
        names(&a),
        [
            "system.posix_acl_access",
            "user.bin",
            "user.color",
            "user.rsb.crc32c"
        ]
    );
    assert!(a.contains(&("user.rsb.crc32c".into(), b"mine, not rsb's".to_vec())));
    let own: Vec<_> = xattrs_of(&stored.join("a"))
        .into_iter()
        .filter(|(n, _)| n == "user.rsb.crc32c")
        .collect();
    assert!(own[0].1.starts_with(b"v1 crc32c="), "{own:?}");
    assert_eq!(
        names(&kept(&stored.join("d"))),
        ["system.posix_acl_default", "trusted.t", "user.dir"]
    );
    assert_eq!(names(&kept(&stored.join("d/cap"))), ["security.capability"]);
    assert_eq!(names(&kept(&stored.join("empty"))), ["user.e"]);
    assert!(kept(&stored.join("plain")).is_empty());
    let native: Vec<_> = xattrs_of(&stored.join("d/cap"))
        .into_iter()
        .filter(|(n, _)| !n.starts_with("user.rsb."))
        .collect();
    assert!(
        native.is_empty(),
        "nothing takes effect in the store: {native:?}"
    );

    // Unchanged: nothing is sent.
    srv.client(argv!["backup", src]).run().sent_nothing();

    let dest = s.join("out");
    fs::create_dir(&dest).unwrap();
    srv.client(argv!["restore", src, dest]).run().ok();
    assert_eq!(rsync_diff_with(&["-aHAXn"], &src, &dest.join("src")), "");

    // A changed value, a removed attribute on a directory and on a file,
    // an ACL taken away: the store keeps exactly the new sets.
    set_xattr(&src.join("a"), "user.color", b"red");
    remove_xattr(&src.join("a"), "user.bin");
    remove_xattr(&src.join("d"), "user.dir");
    tool("setfacl", &["-b", &src.join("a").display().to_string()]);
    // Only metadata changed: the file goes as an update, no body.
    let o = srv.client(argv!["backup", src]).run();
    o.ok();
    let summary = o.err();
    assert!(
        summary
            .lines()
            .any(|l| l.starts_with("backup: 0 files sent")
                && l.contains(" 1 updated")
                && l.contains(" 0 bytes")),
        "{o}"
    );
    let a = kept(&stored.join("a"));
    assert_eq!(names(&a), ["user.color", "user.rsb.crc32c"]);
    assert!(a.contains(&("user.color".into(), b"red".to_vec())));
    assert_eq!(
        names(&kept(&stored.join("d"))),
        ["system.posix_acl_default", "trusted.t"]
    );
    // Restored over the first restore, whose files are the same but for
    // their attributes: those are made the stored ones.
    srv.client(argv!["restore", src, dest]).run().ok();
    assert_eq!(rsync_diff_with(&["-aHAXn"], &src, &dest.join("src")), "");
    let again = s.join("again");
    fs::create_dir(&again).unwrap();
    srv.client(argv!["restore", src, again]).run().ok();
    assert_eq!(rsync_diff_with(&["-aHAXn"], &src, &again.join("src")), "");
    // All gone from a directory: the record says so too.
    remove_xattr(&src.join("d"), "trusted.t");
    tool("setfacl", &["-k", &src.join("d").display().to_string()]);
    srv.client(argv!["backup", src]).run().ok();
    assert!(kept(&stored.join("d")).is_empty());
    srv.client(argv!["backup", src]).run().sent_nothing();

    // verify checks the kept attributes against the record's digest.
    srv.client(argv!["verify", src]).run().ok();
    set_xattr(&stored.join("a"), "user.rsb.x.user.color", b"tampered");
    srv.client(argv!["verify", src])
        .run()
        .code_is(1)
        .err_has("extended attributes changed");
}

/// A file with more attributes than rsb keeps (256) is backed up without
/// any, and named with the limit: exit 1, nobody believes they were kept.
#[test]
fn a_set_past_the_bounds_is_reported_and_the_content_kept() {
    // ext4 holds about 4 KiB of attributes per file; tmpfs holds more.
    let Ok(base) = tempfile::Builder::new()
        .prefix("rsb-xattr.")
        .tempdir_in("/dev/shm")
    else {
        eprintln!("skipped: no /dev/shm");
        return;
    };
    let src = base.path().join("src");
    fs::create_dir(&src).unwrap();
    let f = src.join("many");
    fs::write(&f, b"content").unwrap();
    for i in 0..300 {
        let c = std::ffi::CString::new(f.as_os_str().as_encoded_bytes()).unwrap();
        if rsb::io::xattrs::set(
            rsb::io::xattrs::On::Path(&c),
            format!("user.a{i}").as_bytes(),
            b"v",
        )
        .is_err()
        {
            eprintln!("skipped: /dev/shm keeps no user extended attributes");
            return;
        }
    }
    fs::write(src.join("fine"), b"ok").unwrap();
    let srv = Server::start(&[]);
    let o = srv.client(argv!["backup", src]).run();
    o.code_is(1)
        .err_has("extended attributes not kept")
        .err_has("more than the 256 rsb keeps");
    let stored = srv.store(NAME, &src);
    assert_eq!(fs::read(stored.join("many")).unwrap(), b"content");
    assert!(kept(&stored.join("many")).is_empty());
    assert_eq!(fs::read(stored.join("fine")).unwrap(), b"ok");
}

/// A restorer that is not root sets what it may (user.* and the ACLs of
/// files it owns) and says once how many it could not (a capability and
/// trusted.* need root).
#[test]
fn a_client_that_is_not_root_restores_what_it_may_and_counts_the_rest() {
    use std::os::unix::fs::PermissionsExt;
    if !is_root() {
        eprintln!("skipped: needs root to make the tree and switch users");
        return;
    }
    let srv = Server::start(&[]);
    let s = scratch();
    fs::set_permissions(s.path(), fs::Permissions::from_mode(0o711)).unwrap();
    let src = s.join("src");
    fs::create_dir(&src).unwrap();
    for f in ["ok", "cap", "trusted"] {
        fs::write(src.join(f), f).unwrap();
        fs::set_permissions(src.join(f), fs::Permissions::from_mode(0o644)).unwrap();
    }
    set_xattr(&src.join("ok"), "user.ok", b"1");
    tool(
        "setfacl",
        &["-m", "u:1000:r", &src.join("ok").display().to_string()],
    );
    tool(
        "setcap",
        &["cap_net_raw+ep", &src.join("cap").display().to_string()],
    );
    set_xattr(&src.join("trusted"), "trusted.x", b"root only");
    srv.client(argv!["backup", src]).run().ok();
    let dest = s.join("dest");
    fs::create_dir(&dest).unwrap();
    std::os::unix::fs::chown(&dest, Some(NOBODY), Some(NOBODY)).unwrap();
    let o = srv.client_as_nobody(argv!["restore", src, dest]).run();
    o.ok();
    assert_eq!(
        o.err()
            .matches("extended attributes were not restored")
            .count(),
        1,
        "{o}"
    );
    o.err_has("rsb-client: warning: 2 extended attributes were not restored");
    let top = dest.join("src");
    let ok = xattrs_of(&top.join("ok"));
    assert!(
        ok.iter().any(|(n, v)| n == "user.ok" && v == b"1"),
        "{ok:?}"
    );
    assert!(
        ok.iter().any(|(n, _)| n == "system.posix_acl_access"),
        "{ok:?}"
    );
    assert!(xattrs_of(&top.join("cap")).is_empty());
    assert_eq!(fs::read(top.join("trusted")).unwrap(), b"trusted");
}

/// What a restored entry inherits where it is written (the default ACL of
/// the destination) is not the stored set: it is removed, so the copy is
/// exactly the original.
#[test]
fn a_restore_drops_what_the_destination_would_have_it_inherit() {
    let srv = Server::start(&[]);
    let s = scratch();
    let src = s.join("src");
    fs::create_dir_all(src.join("sub")).unwrap();
    fs::write(src.join("f"), b"plain").unwrap();
    fs::write(src.join("sub/g"), b"plain too").unwrap();
    srv.client(argv!["backup", src]).run().ok();
    let dest = s.join("dest");
    fs::create_dir(&dest).unwrap();
    tool(
        "setfacl",
        &["-d", "-m", "u:65534:rwx", &dest.display().to_string()],
    );
    srv.client(argv!["restore", src, dest]).run().ok();
    assert_eq!(rsync_diff_with(&["-aHAXn"], &src, &dest.join("src")), "");
}

/// A restored directory gets its default ACL when its own entry comes,
/// after its files; files still queued for the restore's writer threads
/// then must not inherit it (their modes would come out masked and with
/// an access ACL of their own). Many small files in several such
/// directories, each file's mode its own, judged by rsync.
#[test]
fn files_restored_before_their_directorys_default_acl_do_not_inherit_it() {
    let srv = Server::start(&[]);
    let s = scratch();
    let src = s.join("src");
    let modes = [0o644, 0o600, 0o755, 0o640, 0o444, 0o700];
    for d in 0..4 {
        let dir = src.join(format!("acl{d}"));
        fs::create_dir_all(&dir).unwrap();
        for i in 0..400 {
            let f = dir.join(format!("f{i:03}"));
            fs::write(&f, vec![b'a' + (i % 26) as u8; 1024 + 37 * i]).unwrap();
            chmod(&f, modes[i % modes.len()]);
        }
        // Set after the files were made: they have none of it.
        tool(
            "setfacl",
            &[
                "-d",
                "-m",
                "u::rwx,g::---,o::---,u:65534:r,m::r",
                &dir.display().to_string(),
            ],
        );
    }
    srv.client(argv!["backup", src]).run().ok();
    let dest = s.join("dest");
    fs::create_dir(&dest).unwrap();
    srv.client(argv!["restore", src, dest]).run().ok();
    assert_eq!(rsync_diff_with(&["-aHAXn"], &src, &dest.join("src")), "");
}
