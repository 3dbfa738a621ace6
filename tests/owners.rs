//! Issue 10, owners and groups: numeric uid and gid come back exactly,
//! whoever the server runs as (a root server sets them on the stored
//! entries, one that is not root keeps them in `user.rsb.meta` beside the
//! names), a chown alone is backed up, a restore maps by name
//! (`--numeric-ids`: by number), and a restorer that is not root says once
//! how many entries keep its ownership. rsync is the judge.

#[macro_use]
mod common;

use std::fs;
use std::os::unix::fs::{lchown, MetadataExt, PermissionsExt};
use std::path::Path;

use common::*;

/// The user the unprivileged server and client run as.
const NOBODY: u32 = 65534;

/// Skips (with a message) unless the test runs as root.
macro_rules! need_root {
    () => {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: owners can only be given as root");
            return;
        }
    };
}

/// An extended attribute of `p` (not following a link), as text.
fn xattr(p: &Path, name: &str) -> Option<String> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(p.as_os_str().as_bytes()).unwrap();
    let n = std::ffi::CString::new(name).unwrap();
    let mut buf = [0u8; 2048];
    // SAFETY: both strings are NUL-terminated; the buffer outlives the call.
    let len =
        unsafe { nix::libc::lgetxattr(c.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    (len >= 0).then(|| String::from_utf8_lossy(&buf[..len as usize]).into_owned())
}

/// Sets the extended attribute `name` of `p` to `value`.
fn set_xattr(p: &Path, name: &str, value: &str) {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(p.as_os_str().as_bytes()).unwrap();
    let n = std::ffi::CString::new(name).unwrap();
    // SAFETY: both strings are NUL-terminated; the value outlives the call.
    let rc = unsafe {
        nix::libc::lsetxattr(
            c.as_ptr(),
            n.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    assert_eq!(rc, 0, "setxattr {p:?}");
}

fn chown(p: &Path, uid: u32, gid: u32) {
    lchown(p, Some(uid), Some(gid)).unwrap_or_else(|e| panic!("chown {p:?}: {e}"));
}

/// A tree of files, directories and links owned by several users and
/// groups (one, `daemon`, with a name here; 1234 and 5678 with none),
/// set-user-ID and set-group-ID entries among them. `links_owned`: the
/// links are given owners too (a server that is not root cannot keep a
/// link's owner: Linux allows no user attribute on a link).
fn owned_tree(src: &Path, links_owned: bool) {
    let t = (1_600_000_000, 7);
    let mut tree = Tree::new(src, 0o755, t);
    tree.file("root", b"root's\n", 0o644, t)
        .file("odd", b"1234:5678\n", 0o640, t)
        .file("nobody", b"nobody's\n", 0o600, t)
        .file("daemon", b"daemon's\n", 0o644, t)
        .file("su", b"#!/bin/sh\n", 0o4755, t)
        .file("sg", b"#!/bin/sh\n", 0o2755, t)
        .dir("d", 0o750, t)
        .file("d/in", b"inside\n", 0o644, t)
        .dir("sgdir", 0o2775, t)
        .file("sgdir/f", b"group's\n", 0o664, t)
        .link("l-odd", "odd", t)
        .link("l-nobody", "nobody", t)
        .finish();
    for (p, uid, gid) in [
        ("odd", 1234, 5678),
        ("nobody", NOBODY, NOBODY),
        ("daemon", 1, 1),
        ("su", 1234, 0),
        ("sg", 0, 5678),
        ("d", 1234, 5678),
        ("d/in", 1234, 5678),
        ("sgdir", 0, 5678),
        ("sgdir/f", NOBODY, 5678),
    ] {
        chown(&src.join(p), uid, gid);
    }
    // chown cleared the set-id bits: given back.
    for (p, mode) in [("su", 0o4755), ("sg", 0o2755), ("sgdir", 0o2775)] {
        fs::set_permissions(src.join(p), fs::Permissions::from_mode(mode)).unwrap();
    }
    if links_owned {
        chown(&src.join("l-odd"), 1234, 5678);
        chown(&src.join("l-nobody"), NOBODY, NOBODY);
    }
    // Times last: chmod and chown leave them, but be sure.
    for p in ["d", "sgdir", ""] {
        set_mtime(&src.join(p), t);
    }
}

/// rsync's itemized differences between `a` and `b` (empty: the same).
fn rsync_diff(a: &Path, b: &Path) -> String {
    rsync_diff_with(&["-aHn"], a, b)
}

fn owner(p: &Path) -> (u32, u32) {
    let md = fs::symlink_metadata(p).unwrap();
    (md.uid(), md.gid())
}

/// Backs up, checks the store, re-runs (nothing sent), restores and asks
/// rsync; then a chown alone is backed up and restored.
fn round_trip(srv: &Server, root_server: bool) {
    let s = scratch();
    let src = s.join("src");
    owned_tree(&src, root_server);
    let o = srv.client(argv!["backup", src]).run();
    o.ok();

    let stored = srv.store(NAME, &src);
    let meta = |p: &str| xattr(&stored.join(p), "user.rsb.meta");
    if root_server {
        // The owners are on the stored entries; no set-id bit on a file.
        assert_eq!(owner(&stored.join("odd")), (1234, 5678));
        assert_eq!(owner(&stored.join("l-odd")), (1234, 5678));
        assert_eq!(owner(&stored.join("d")), (1234, 5678));
        let mode = fs::symlink_metadata(stored.join("su")).unwrap().mode() & 0o7777;
        assert_eq!(mode, 0o1755);
        assert_eq!(meta("su").as_deref(), Some("v1 mode=4755"));
        // Mode and owner on disk are real: no record. The names are in
        // the namespace's table, where the client has them.
        assert_eq!(meta("daemon"), None);
        assert_eq!(meta("odd"), None);
        let table = fs::read_to_string(srv.ns(NAME).join(".rsb-tmp.names")).unwrap();
        assert!(table.contains("\nuser 1 daemon\n"), "{table}");
        assert!(table.contains("\ngroup 1 daemon\n"), "{table}");
        assert!(!table.contains(" 1234 "), "{table}");
    } else {
        // Stored as the server's user; the real owner in the record, and
        // the sticky bit saying there is one.
        assert_eq!(owner(&stored.join("odd")), (NOBODY, NOBODY));
        assert_eq!(
            meta("odd").as_deref(),
            Some("v1 mode=0640 uid=1234 gid=5678")
        );
        assert_eq!(meta("daemon").as_deref(), Some("v1 mode=0644 uid=1 gid=1"));
        assert_eq!(
            meta("sgdir").as_deref(),
            Some("v1 mode=2775 uid=0 gid=5678")
        );
        // The server's own user needs no owner in the record, nor does
        // a mode the disk can hold: no record.
        assert_eq!(meta("nobody"), None);
        let mode = fs::symlink_metadata(stored.join("odd")).unwrap().mode() & 0o7777;
        assert_eq!(mode, 0o1640);
    }

    // Nothing changed: nothing is sent, not even a link.
    let o = srv.client(argv!["backup", src]).run();
    o.ok();
    assert!(o.err().contains("backup: 0 files sent"), "{o}");

    let dest = s.join("dest");
    srv.client(argv!["restore", src, dest]).run().ok();
    assert_eq!(rsync_diff(&src, &dest), "");

    // A chown alone is a change: the next backup sends that file's
    // metadata (not its content), and a restore brings the new owner back.
    chown(&src.join("root"), 1234, 0);
    let o = srv.client(argv!["backup", src]).run();
    o.ok();
    assert!(o.err().contains("backup: 0 files sent"), "{o}");
    assert!(o.err().contains(" 1 updated, 0 failed, 0 bytes"), "{o}");
    let o = srv.client(argv!["backup", src]).run();
    assert!(o.err().contains("backup: 0 files sent"), "{o}");
    let again = s.join("again");
    srv.client(argv!["restore", src, again]).run().ok();
    assert_eq!(rsync_diff(&src, &again), "");
    assert_eq!(owner(&again.join("root")), (1234, 0));
}

#[test]
fn a_root_server_keeps_owners_on_the_stored_entries() {
    need_root!();
    let srv = Server::start(&[]);
    round_trip(&srv, true);
}

/// rsync's `--fake-super` model: the stored entries belong to the
/// server's user, the record holds the real owners, a restore gives them
/// back.
#[test]
fn a_server_that_is_not_root_keeps_owners_in_the_record() {
    need_root!();
    let srv = Server::start_as_user(NOBODY, &[]);
    round_trip(&srv, false);
}

/// A name that exists on the restoring machine wins over the number it
/// had on the source (the record is edited to say that uid 1234 was
/// called `daemon` there); `--numeric-ids` keeps the number.
#[test]
fn a_restore_maps_owners_by_name_unless_told_numeric_ids() {
    need_root!();
    let srv = Server::start_as_user(NOBODY, &[]);
    let s = scratch();
    let src = s.join("src");
    let t = (1_600_000_000, 1);
    Tree::new(&src, 0o755, t)
        .file("f", b"x", 0o644, t)
        .file("g", b"y", 0o644, t)
        .finish();
    chown(&src.join("f"), 1234, 5678);
    chown(&src.join("g"), 4321, 5678);
    set_mtime(&src, t);
    srv.client(argv!["backup", src]).run().ok();
    let stored = srv.store(NAME, &src);
    set_xattr(
        &stored.join("f"),
        "user.rsb.meta",
        "v1 mode=0644 uid=1234 gid=5678 user=daemon group=no-such-group-rsb",
    );
    let dest = s.join("dest");
    srv.client(argv!["restore", src, dest]).run().ok();
    // By name: daemon is uid 1 here; the group's name is unknown here, so
    // its number stays. `g` has no names: numbers. (A connection names
    // an id once: every entry of uid 1234 would be daemon's here.)
    assert_eq!(owner(&dest.join("f")), (1, 5678));
    assert_eq!(owner(&dest.join("g")), (4321, 5678));
    let numeric = s.join("numeric");
    srv.client_opts(&["--numeric-ids"], argv!["restore", src, numeric])
        .run()
        .ok();
    assert_eq!(owner(&numeric.join("f")), (1234, 5678));
}

/// A restorer that is not root gives what it may (its own uid, its own
/// group) and says once how many entries keep its ownership; those lose
/// their set-id bits.
#[test]
fn a_client_that_is_not_root_restores_what_it_can_and_says_what_not() {
    need_root!();
    let srv = Server::start(&[]);
    let s = scratch();
    fs::set_permissions(s.path(), fs::Permissions::from_mode(0o711)).unwrap();
    let src = s.join("src");
    owned_tree(&src, true);
    srv.client(argv!["backup", src]).run().ok();
    let dest = s.join("dest");
    fs::create_dir(&dest).unwrap();
    chown(&dest, NOBODY, NOBODY);
    let o = srv.client_as_nobody(argv!["restore", src, dest]).run();
    o.ok();
    // Every entry but those of nobody:nogroup (the file "nobody" and its
    // link) keeps the restorer's: the top, 9 more entries and one link.
    let notice = "rsb-client: warning: 11 restored entries keep your ownership";
    assert!(o.err().contains(notice), "{o}");
    assert_eq!(o.err().matches("keep your ownership").count(), 1, "{o}");
    let top = dest.join("src");
    assert_eq!(fs::read(top.join("odd")).unwrap(), b"1234:5678\n");
    assert_eq!(owner(&top.join("odd")), (NOBODY, NOBODY));
    let mode = |p: &str| fs::symlink_metadata(top.join(p)).unwrap().mode() & 0o7777;
    assert_eq!(mode("su"), 0o755);
    assert_eq!(mode("sg"), 0o755);
    assert_eq!(mode("odd"), 0o640);
    assert_eq!(mode("nobody"), 0o600);
}

/// Issue 10: owner names live in the namespace's table, written when the
/// client names an id the table lacks, not in every file's record (which
/// cost an attribute per file and, on ext4, a second block for a small
/// file whose records no longer fitted in its inode).
#[test]
fn owner_names_are_kept_once_per_namespace_not_per_file() {
    need_root!();
    let srv = Server::start(&[]);
    let s = scratch();
    let src = s.join("src");
    let t = (1_600_000_000, 1);
    Tree::new(&src, 0o755, t)
        .file("a", b"small", 0o644, t)
        .file("b", b"small too", 0o644, t)
        .finish();
    srv.client(argv!["backup", src]).run().ok();
    let stored = srv.store(NAME, &src);
    for f in ["a", "b"] {
        assert_eq!(xattr(&stored.join(f), "user.rsb.meta"), None);
        let blocks = |p: &Path| fs::symlink_metadata(p).unwrap().blocks();
        assert_eq!(blocks(&stored.join(f)), blocks(&src.join(f)), "{f}");
    }
    let table = srv.ns(NAME).join(".rsb-tmp.names");
    let first = fs::symlink_metadata(&table).unwrap().ino();
    assert!(fs::read_to_string(&table)
        .unwrap()
        .contains("\nuser 0 root\n"));
    // Nothing new named: the table is not written again.
    srv.client(argv!["backup", src]).run().ok();
    assert_eq!(fs::symlink_metadata(&table).unwrap().ino(), first);
    // Never listed, never restored.
    let o = srv.client(argv!["ls", "/"]).run();
    assert!(!o.out().contains("rsb-tmp"), "{o}");
}
