//! Issue 11, deletions: a backup of a directory states it completely, so
//! what the server holds beneath it and the client no longer has leaves
//! the current tree, into history (one rename per deleted entry, however
//! big). Only a directory the client read whole deletes anything; a single
//! file or a deeper path never deletes its siblings; hostile `Closed`
//! frames delete nothing outside the namespace and never the history.

#[macro_use]
mod common;

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::time::Duration;

use common::*;
use rsb::proto::{Frame, WirePath};

/// Files under `dir`, recursively.
fn count_files(dir: &Path) -> usize {
    let mut n = 0;
    for e in fs::read_dir(dir).unwrap().flatten() {
        let md = fs::symlink_metadata(e.path()).unwrap();
        if md.is_dir() {
            n += count_files(&e.path());
        } else {
            n += 1;
        }
    }
    n
}

/// The source's path on the server, as the batch index names it.
fn wire(p: &Path) -> String {
    p.to_str().unwrap().trim_start_matches('/').to_string()
}

/// A deleted file and a deleted directory of 1,000 files leave the
/// current tree into one batch, two index entries (the directory whole),
/// the stored directory keeps its mtime, `ls` no longer shows them, a
/// restore brings back exactly the client's tree, and the run after that
/// changes nothing at all, in the tree or in history.
#[test]
fn deleted_entries_go_to_history_and_an_unchanged_rerun_adds_nothing() {
    let s = scratch();
    let srv = Server::start_at(&s.join("root"), &[]);
    let src = s.join("src");
    let t0 = (1_600_000_000, 7);
    let mut tree = Tree::new(&src, 0o755, t0);
    tree.dir("a", 0o755, t0)
        .file("a/keep.txt", b"kept", 0o644, t0)
        .file("a/old.txt", b"deleted soon", 0o600, t0)
        .dir("a/big", 0o750, t0);
    for i in 0..1000 {
        tree.file(
            format!("a/big/f{i:04}"),
            format!("{i}").as_bytes(),
            0o644,
            t0,
        );
    }
    tree.finish();
    srv.client(argv!["backup", &src]).run().ok();
    let ns = srv.ns(NAME);
    assert!(batches(&ns).is_empty());

    fs::remove_file(src.join("a/old.txt")).unwrap();
    fs::remove_dir_all(src.join("a/big")).unwrap();
    set_mtime(&src.join("a"), (1_650_000_000, 3));
    srv.client(argv!["backup", &src]).run().ok();
    let stored = srv.store(NAME, &src.join("a"));
    assert!(!stored.join("old.txt").exists());
    assert!(!stored.join("big").exists());
    assert_eq!(fs::read(stored.join("keep.txt")).unwrap(), b"kept");
    let md = fs::metadata(&stored).unwrap();
    assert_eq!((md.mtime(), md.mtime_nsec()), (1_650_000_000, 3));

    let b = batches(&ns);
    assert_eq!(b.len(), 1, "one batch: {b:?}");
    let mut index = index_of(&b[0]);
    index.sort();
    let a = wire(&src.join("a"));
    assert_eq!(index, [format!("{a}/big"), format!("{a}/old.txt")]);
    let kept = b[0].join(&a);
    assert_eq!(fs::read(kept.join("old.txt")).unwrap(), b"deleted soon");
    assert_eq!(
        fs::symlink_metadata(kept.join("old.txt")).unwrap().mode() & 0o7777,
        0o600
    );
    assert_eq!(count_files(&kept.join("big")), 1000);
    assert_eq!(fs::read(kept.join("big/f0999")).unwrap(), b"999");
    assert!(
        srv.log().contains("history: 0 replaced, 2 deleted"),
        "{}",
        srv.log()
    );

    let listed = srv.client(argv!["ls", src.join("a")]).run();
    listed.ok();
    assert!(
        !listed.out().contains("old.txt") && !listed.out().contains("big"),
        "{listed}"
    );
    let dest = s.join("dest");
    fs::create_dir(&dest).unwrap();
    srv.client(argv!["restore", &src, &dest]).run().ok();
    let diffs = tree_diff(&src, &dest.join("src"), &[]);
    assert!(diffs.is_empty(), "{diffs:?}");

    // The history and the source's own tree (its ancestors, /tmp among
    // them, change under other tests).
    let (hist, stored) = (ns.join(".rsb-tmp.history"), srv.store(NAME, &src));
    let before = (inventory(&hist), inventory(&stored));
    let o = srv.client(argv!["backup", &src]).run();
    o.ok();
    for (a, b) in [
        (&before.0, inventory(&hist)),
        (&before.1, inventory(&stored)),
    ] {
        let diff = inventory_diff(a, &b);
        assert!(
            diff.is_empty(),
            "an unchanged run touched the store: {diff:?}"
        );
    }
}

/// Backing up one file, or a path deeper in a directory, deletes nothing
/// the server holds beside it: only the directories walked are stated.
#[test]
fn a_single_file_or_a_deeper_path_never_deletes_its_siblings() {
    let s = scratch();
    let srv = Server::start_at(&s.join("root"), &[]);
    let src = s.join("src");
    let t0 = (1_600_000_000, 0);
    Tree::new(&src, 0o755, t0)
        .file("one.txt", b"1", 0o644, t0)
        .file("two.txt", b"2", 0o644, t0)
        .dir("sub", 0o755, t0)
        .file("sub/x", b"x", 0o644, t0)
        .dir("other", 0o755, t0)
        .file("other/y", b"y", 0o644, t0)
        .finish();
    srv.client(argv!["backup", &src]).run().ok();
    fs::remove_file(src.join("two.txt")).unwrap();
    fs::remove_dir_all(src.join("other")).unwrap();
    srv.client(argv!["backup", src.join("one.txt")]).run().ok();
    srv.client(argv!["backup", src.join("sub")]).run().ok();
    let stored = srv.store(NAME, &src);
    assert!(
        stored.join("two.txt").exists(),
        "a sibling of the file was deleted"
    );
    assert!(
        stored.join("other/y").exists(),
        "a sibling of sub was deleted"
    );
    assert!(batches(&srv.ns(NAME)).is_empty());
    // The whole directory, once backed up, is stated: both go.
    srv.client(argv!["backup", &src]).run().ok();
    assert!(!stored.join("two.txt").exists() && !stored.join("other").exists());
    assert_eq!(batches(&srv.ns(NAME)).len(), 1);
}

/// Two backups at one prompt, the first of a deeper path: the names the
/// first noted for the directories above it must not keep an entry the
/// second finds deleted (regression: both shared one connection, so the
/// server still held `b` among the names of `a` and kept it).
#[test]
fn a_later_backup_at_the_prompt_deletes_what_an_earlier_one_named() {
    use std::io::Write as _;
    use std::os::fd::OwnedFd;
    let s = scratch();
    let srv = Server::start_at(&s.join("root"), &[]);
    let src = s.join("src");
    let t0 = (1_600_000_000, 0);
    Tree::new(&src, 0o755, t0)
        .dir("a", 0o755, t0)
        .dir("a/b", 0o755, t0)
        .file("a/b/f", b"f", 0o644, t0)
        .file("a/keep", b"k", 0o644, t0)
        .finish();
    srv.client(argv!["backup", &src]).run().ok();
    let (r, w): (OwnedFd, OwnedFd) = nix::unistd::pipe().unwrap();
    let mut w = fs::File::from(w);
    let client = srv
        .client(argv![])
        .stdin_file(fs::File::from(r))
        .timeout(Duration::from_secs(30))
        .spawn();
    let line = |p: &Path| format!("backup '{}'\n", p.display());
    w.write_all(line(&src.join("a/b/f")).as_bytes()).unwrap();
    // The first backup is done once its summary would be: wait for the
    // server to log its commit.
    let end = std::time::Instant::now() + Duration::from_secs(10);
    while srv.log().matches("backup committed").count() < 2 && std::time::Instant::now() < end {
        std::thread::sleep(Duration::from_millis(20));
    }
    fs::remove_dir_all(src.join("a/b")).unwrap();
    w.write_all(line(&src.join("a")).as_bytes()).unwrap();
    w.write_all(b"quit\n").unwrap();
    drop(w);
    client.wait(Duration::from_secs(30)).ok();
    let stored = srv.store(NAME, &src);
    assert!(stored.join("a/keep").exists());
    assert!(
        !stored.join("a/b").exists(),
        "a/b was deleted but is still current on the server"
    );
}

/// A directory the client cannot list deletes nothing beneath it, and the
/// client names it (exit 1); its readable parent still deletes what the
/// client lacks beside it.
#[test]
fn nothing_is_deleted_under_a_directory_the_client_could_not_read() {
    if !nix::unistd::geteuid().is_root() {
        return;
    }
    let s = scratch();
    fs::set_permissions(s.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let srv = Server::start_at(&s.join("root"), &[]);
    let src = s.join("src");
    let t0 = (1_600_000_000, 0);
    Tree::new(&src, 0o755, t0)
        .file("gone.txt", b"g", 0o644, t0)
        .file("stays.txt", b"s", 0o644, t0)
        .dir("locked", 0o755, t0)
        .file("locked/a", b"a", 0o644, t0)
        .file("locked/b", b"b", 0o644, t0)
        .finish();
    srv.client(argv!["backup", &src]).run().ok();
    fs::remove_file(src.join("locked/b")).unwrap();
    fs::remove_file(src.join("gone.txt")).unwrap();
    fs::set_permissions(src.join("locked"), fs::Permissions::from_mode(0o700)).unwrap();
    let o = srv.client_as_nobody(argv!["backup", &src]).run();
    o.code_is(1);
    assert!(o.err().contains("locked"), "{o}");
    let stored = srv.store(NAME, &src);
    assert!(
        stored.join("locked/b").exists(),
        "deleted under an unreadable dir"
    );
    assert!(stored.join("locked/a").exists());
    assert!(
        !stored.join("gone.txt").exists(),
        "the readable parent deletes"
    );
    assert!(stored.join("stays.txt").exists());
    // Readable again: now the deletion is applied.
    fs::set_permissions(src.join("locked"), fs::Permissions::from_mode(0o755)).unwrap();
    set_mtime(&src.join("locked"), t0);
    srv.client(argv!["backup", &src]).run().ok();
    assert!(!stored.join("locked/b").exists());
    assert!(stored.join("locked/a").exists());
}

/// Deleted, then made again with other content: the current tree has the
/// new file, history the old one once; a directory deleted and a file
/// made under its name, and back.
#[test]
fn deleted_then_recreated_keeps_each_version_once() {
    let s = scratch();
    let srv = Server::start_at(&s.join("root"), &[]);
    let src = s.join("src");
    let t0 = (1_600_000_000, 0);
    Tree::new(&src, 0o755, t0)
        .file("f", b"first", 0o644, t0)
        .dir("d", 0o755, t0)
        .file("d/inner", b"inner", 0o644, t0)
        .finish();
    srv.client(argv!["backup", &src]).run().ok();
    fs::remove_file(src.join("f")).unwrap();
    fs::remove_dir_all(src.join("d")).unwrap();
    srv.client(argv!["backup", &src]).run().ok();
    fs::write(src.join("f"), b"second").unwrap();
    fs::write(src.join("d"), b"now a file").unwrap();
    srv.client(argv!["backup", &src]).run().ok();
    let stored = srv.store(NAME, &src);
    assert_eq!(fs::read(stored.join("f")).unwrap(), b"second");
    assert_eq!(fs::read(stored.join("d")).unwrap(), b"now a file");
    let ns = srv.ns(NAME);
    let b = batches(&ns);
    assert_eq!(b.len(), 1, "re-creating replaces nothing: {b:?}");
    let rel = wire(&src);
    assert_eq!(fs::read(b[0].join(&rel).join("f")).unwrap(), b"first");
    assert_eq!(fs::read(b[0].join(&rel).join("d/inner")).unwrap(), b"inner");
}

/// Hostile `Closed` frames: a reserved name is refused, a bad flag byte
/// ends only that connection, a `Closed` of the namespace root with no
/// manifest moves the client's own tree into history but never the
/// history itself nor anything outside the namespace.
#[test]
fn hostile_closed_frames_delete_nothing_they_should_not() {
    let s = scratch();
    let srv = Server::start_at(&s.join("root"), &[]);
    let src = s.join("src");
    let t0 = (1_600_000_000, 0);
    Tree::new(&src, 0o755, t0)
        .file("f", b"one", 0o644, t0)
        .finish();
    srv.client(argv!["backup", &src]).run().ok();
    fs::write(src.join("f"), b"two").unwrap();
    srv.client(argv!["backup", &src]).run().ok();
    let ns = srv.ns(NAME);
    assert_eq!(batches(&ns).len(), 1);
    fs::create_dir_all(srv.root().join("other/x")).unwrap();
    let t = Duration::from_secs(10);

    let mut raw = Raw::hello(srv.port(), NAME);
    let reserved = rsb::proto::codec::to_vec(&Frame::Closed {
        id: 1,
        path: WirePath::new(b".rsb-tmp.history".to_vec()).unwrap(),
        whole: true,
        keep: Vec::new(),
    });
    let commit = rsb::proto::codec::to_vec(&Frame::Commit { id: 2 });
    let (frames, _) = raw.exchange(&[reserved, commit].concat(), 2, t);
    assert!(
        matches!(frames.first(), Some(Frame::Failed { id: 1, .. })),
        "{frames:?}"
    );
    assert_eq!(batches(&ns).len(), 1);

    // A flag byte that is neither 0 nor 1: a protocol error.
    let mut bad = Raw::hello(srv.port(), NAME);
    let mut payload = 3u32.to_be_bytes().to_vec();
    payload.extend(enc_bytes(b"tmp"));
    payload.push(7);
    bad.send_raw(&raw_frame(38, &payload)).unwrap();
    let closing = bad.expect_closed(t);
    assert!(
        matches!(closing.last(), Some(Frame::Error { .. })),
        "{closing:?}"
    );

    let root = rsb::proto::codec::to_vec(&Frame::Closed {
        id: 3,
        path: WirePath::root(),
        whole: true,
        keep: Vec::new(),
    });
    let commit = rsb::proto::codec::to_vec(&Frame::Commit { id: 4 });
    let (frames, _) = raw.exchange(&[root, commit].concat(), 4, t);
    assert!(
        matches!(frames.last(), Some(Frame::Committed { id: 4 })),
        "{frames:?}"
    );
    let left: Vec<String> = fs::read_dir(&ns)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with(".rsb-tmp."))
        .collect();
    assert!(left.is_empty(), "the namespace still holds {left:?}");
    let b = batches(&ns);
    assert_eq!(b.len(), 2, "the old batch stays, one more: {b:?}");
    let rel = wire(&src);
    assert_eq!(fs::read(b[0].join(&rel).join("f")).unwrap(), b"one");
    assert_eq!(fs::read(b[1].join(&rel).join("f")).unwrap(), b"two");
    assert!(srv.root().join("other/x").is_dir());
    // Still serving.
    srv.client(argv!["backup", &src]).run().ok();
    assert_eq!(fs::read(srv.store(NAME, &src.join("f"))).unwrap(), b"two");
}
