//! Issue 11, history in the store: what a backup replaces is kept, never
//! destroyed. The tests read the history directory on disk as a person
//! would (`DIR/<name>/.rsb-tmp.history/<TIME>/<path>`), check that each
//! kept entry is exactly the version it replaced (bytes, mode, mtime,
//! target, checksum record, hard links), that an unchanged re-run leaves
//! the store inode for inode the same, and that neither `ls` nor a restore
//! of the current tree ever shows history.

#[macro_use]
mod common;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use common::*;
use rsb::store::history::{parse_batch_name, parse_index, INDEX_NAME};

/// The published batches of namespace `ns`, oldest first.
fn batches(ns: &Path) -> Vec<PathBuf> {
    let Ok(rd) = fs::read_dir(ns.join(".rsb-tmp.history")) else {
        return Vec::new();
    };
    let mut v: Vec<PathBuf> = rd
        .flatten()
        .filter(|e| parse_batch_name(e.file_name().as_bytes()).is_some())
        .map(|e| e.path())
        .collect();
    v.sort();
    v
}

/// The paths a batch's index lists.
fn index_of(batch: &Path) -> Vec<String> {
    let bytes = fs::read(batch.join(std::ffi::OsStr::from_bytes(INDEX_NAME))).unwrap();
    parse_index(&bytes)
        .unwrap_or_else(|| panic!("{batch:?}: not an index"))
        .iter()
        .map(|p| String::from_utf8_lossy(p.as_bytes()).into_owned())
        .collect()
}

/// Inode, mode, size, mtime, ctime (seconds, nanoseconds), content crc32c.
type Facts = (u64, u32, u64, i64, i64, i64, u32);

/// Every entry under `dir` (not following links) with its inode, mode,
/// size, mtime, ctime and, for files, a crc32c of the content: two equal
/// maps mean nothing was rewritten, renamed or touched.
fn inventory(dir: &Path) -> BTreeMap<PathBuf, Facts> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            let md = fs::symlink_metadata(&p).unwrap();
            let crc = if md.is_file() {
                crc32c::crc32c(&fs::read(&p).unwrap())
            } else {
                0
            };
            out.insert(
                p.strip_prefix(dir).unwrap().to_path_buf(),
                (
                    md.ino(),
                    md.mode(),
                    md.size(),
                    md.mtime(),
                    md.ctime(),
                    md.ctime_nsec(),
                    crc,
                ),
            );
            if md.is_dir() {
                stack.push(p);
            }
        }
    }
    out
}

/// The server's checksum record of a stored file.
fn record(p: &Path) -> Option<String> {
    xattrs_of(p)
        .into_iter()
        .find(|(n, _)| n == "user.rsb.crc32c")
        .map(|(_, v)| String::from_utf8_lossy(&v).into_owned())
}

/// A file modified and backed up again: the old version is in one new
/// batch, byte for byte, with its mode, mtime and checksum record, the
/// batch's index names it, and the current tree holds the new one.
#[test]
fn a_replaced_file_is_kept_whole_in_history() {
    let s = scratch();
    let srv = Server::start_at(&s.join("root"), &[]);
    let src = s.join("src");
    let t0 = (1_600_000_000, 5);
    let old = random_bytes(1, 300_000);
    Tree::new(&src, 0o755, t0)
        .dir("a", 0o755, t0)
        .file("a/doc.txt", &old, 0o640, t0)
        .file("a/same.txt", b"unchanged", 0o644, t0)
        .link("a/ln", "doc.txt", t0)
        .finish();
    srv.client(argv!["backup", &src]).run().ok();
    let ns = srv.ns(NAME);
    assert!(batches(&ns).is_empty(), "a first backup replaces nothing");
    let stored = srv.store(NAME, &src.join("a/doc.txt"));
    let old_record = record(&stored);
    assert!(old_record.is_some());

    let new = random_bytes(2, 100_000);
    fs::write(src.join("a/doc.txt"), &new).unwrap();
    set_mtime(&src.join("a/doc.txt"), (1_700_000_000, 0));
    fs::remove_file(src.join("a/ln")).unwrap();
    std::os::unix::fs::symlink("same.txt", src.join("a/ln")).unwrap();
    srv.client(argv!["backup", &src]).run().ok();

    assert_eq!(fs::read(&stored).unwrap(), new);
    let b = batches(&ns);
    assert_eq!(b.len(), 1, "one commit, one batch: {b:?}");
    let rel = src.strip_prefix("/").unwrap();
    let kept = b[0].join(rel).join("a/doc.txt");
    assert_eq!(fs::read(&kept).unwrap(), old);
    let md = fs::symlink_metadata(&kept).unwrap();
    assert_eq!(md.mode() & 0o7777, 0o640);
    assert_eq!((md.mtime(), md.mtime_nsec()), (t0.0, i64::from(t0.1)));
    assert_eq!(
        record(&kept),
        old_record,
        "the checksum record goes with it"
    );
    assert_eq!(
        fs::read_link(b[0].join(rel).join("a/ln")).unwrap(),
        Path::new("doc.txt")
    );
    let mut idx = index_of(&b[0]);
    idx.sort();
    let want = |n: &str| format!("{}/a/{n}", rel.display());
    assert_eq!(idx, vec![want("doc.txt"), want("ln")]);
    assert!(
        !b[0].join(rel).join("a/same.txt").exists(),
        "unchanged: not kept"
    );
    // The current tree is the source; history is neither listed nor
    // restored.
    assert_same_tree(&src, &srv.store(NAME, &src));
    let o = srv.client(argv!["ls", "/"]).run();
    o.ok();
    assert!(!o.out().contains("rsb-tmp"), "{o}");
    let dest = s.join("dest");
    fs::create_dir(&dest).unwrap();
    srv.client(argv!["restore", "/", &dest]).run().ok();
    assert!(find_tmp(&dest).is_empty() && !dest.join(".rsb-tmp.history").exists());
    assert_same_tree(&src, &dest.join(rel));
    // A restart keeps it: the sweep of the new process leaves history be.
    let root = srv.root().to_path_buf();
    let port = srv.port();
    srv.stop();
    let srv = Server::start_on(&root, port, &[]);
    srv.client(argv!["ls", "/"]).run().ok();
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(fs::read(&kept).unwrap(), old);
    assert_eq!(batches(&srv.ns(NAME)).len(), 1);
}

/// A directory replaced by a file goes into history whole (one entry of
/// the index, its files inside it), and so does the file when the
/// directory comes back; each version is intact in its own batch.
#[test]
fn a_directory_replaced_by_a_file_and_back_keeps_both_versions() {
    let srv = Server::start(&[]);
    let s = scratch();
    let src = s.join("src");
    let t = (1_600_000_000, 0);
    let mut tree = Tree::new(&src, 0o755, t);
    tree.dir("x", 0o750, t);
    for i in 0..50 {
        tree.file(format!("x/f{i}"), &random_bytes(i, 1000), 0o644, t);
    }
    tree.finish();
    srv.client(argv!["backup", &src]).run().ok();
    let first = s.join("first");
    copy_tree(&src, &first);

    fs::remove_dir_all(src.join("x")).unwrap();
    fs::write(src.join("x"), b"now a file").unwrap();
    set_mtime(&src.join("x"), (1_600_000_100, 0));
    set_mtime(&src, t);
    srv.client(argv!["backup", &src]).run().ok();
    let ns = srv.ns(NAME);
    let rel = src.strip_prefix("/").unwrap();
    let b = batches(&ns);
    assert_eq!(b.len(), 1, "{b:?}");
    assert_eq!(index_of(&b[0]), vec![format!("{}/x", rel.display())]);
    assert_same_tree(&first.join("x"), &b[0].join(rel).join("x"));
    assert_eq!(
        fs::read(srv.store(NAME, &src.join("x"))).unwrap(),
        b"now a file"
    );

    // Each batch has its own time, later than the one before.
    std::thread::sleep(std::time::Duration::from_millis(5));
    fs::remove_file(src.join("x")).unwrap();
    Tree::new(&src, 0o755, t)
        .dir("x", 0o700, t)
        .file("x/again", b"back", 0o600, t)
        .finish();
    set_mtime(&src, t);
    srv.client(argv!["backup", &src]).run().ok();
    let b = batches(&ns);
    assert_eq!(b.len(), 2, "{b:?}");
    assert_eq!(fs::read(b[1].join(rel).join("x")).unwrap(), b"now a file");
    assert_same_tree(&first.join("x"), &b[0].join(rel).join("x"));
    assert_same_tree(&src, &srv.store(NAME, &src));
}

/// Two names of one file changed together are kept as two links of one
/// inode, as they were stored.
#[test]
fn hard_links_are_kept_as_links() {
    let srv = Server::start(&[]);
    let s = scratch();
    let src = s.join("src");
    let t = (1_600_000_000, 0);
    Tree::new(&src, 0o755, t)
        .file("one", b"shared v1", 0o644, t)
        .finish();
    fs::hard_link(src.join("one"), src.join("two")).unwrap();
    srv.client(argv!["backup", &src]).run().ok();
    fs::write(src.join("one"), b"shared v2, longer").unwrap();
    srv.client(argv!["backup", &src]).run().ok();
    let b = batches(&srv.ns(NAME));
    assert_eq!(b.len(), 1, "{b:?}");
    let rel = src.strip_prefix("/").unwrap();
    let (k1, k2) = (b[0].join(rel).join("one"), b[0].join(rel).join("two"));
    assert_eq!(fs::read(&k1).unwrap(), b"shared v1");
    let (m1, m2) = (fs::metadata(&k1).unwrap(), fs::metadata(&k2).unwrap());
    assert_eq!(m1.ino(), m2.ino(), "one inode, two names");
    let cur = srv.store(NAME, &src.join("two"));
    assert_eq!(fs::read(&cur).unwrap(), b"shared v2, longer");
    assert_eq!(
        fs::metadata(&cur).unwrap().ino(),
        fs::metadata(srv.store(NAME, &src.join("one")))
            .unwrap()
            .ino()
    );
}

/// An unchanged re-run adds nothing to history and leaves every entry of
/// the namespace, history included, inode for inode and byte for byte as
/// it was (ctime too: nothing was even linked).
#[test]
fn an_unchanged_rerun_leaves_the_store_as_it_was() {
    let srv = Server::start(&[]);
    let s = scratch();
    let src = s.join("src");
    small_tree(&src, 7);
    srv.client(argv!["backup", &src]).run().ok();
    // Some history first, so that its stability is checked too.
    let some = fs::read_dir(&src)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.is_file())
        .expect("a file at the top of the tree");
    fs::write(&some, b"changed once").unwrap();
    srv.client(argv!["backup", &src]).run().ok();
    let ns = srv.ns(NAME);
    assert_eq!(batches(&ns).len(), 1);
    // (The ancestors of the source, /tmp among them, change under other
    // tests: only the source's tree and the history are compared.)
    let (hist, stored) = (ns.join(".rsb-tmp.history"), srv.store(NAME, &src));
    let before = (inventory(&hist), inventory(&stored));
    for _ in 0..2 {
        let o = srv.client(argv!["backup", &src]).run();
        o.ok();
        assert!(o.err().contains("backup: 0 files sent"), "{o}");
    }
    assert_eq!((inventory(&hist), inventory(&stored)), before);
}

/// Copies a tree with `cp -a`.
fn copy_tree(from: &Path, to: &Path) {
    tool("cp", &["-a", from.to_str().unwrap(), to.to_str().unwrap()]);
}

/// `verify` checks the versions history holds as well as the current
/// ones: a flipped byte in a kept version is named by its path in the
/// history, and a verify of one path checks that path's versions.
#[test]
fn verify_checks_the_history_too() {
    let srv = Server::start(&[]);
    let s = scratch();
    let src = s.join("src");
    let t = (1_600_000_000, 0);
    Tree::new(&src, 0o755, t)
        .file("a", &random_bytes(3, 20_000), 0o644, t)
        .file("b", b"b stays", 0o644, t)
        .finish();
    srv.client(argv!["backup", &src]).run().ok();
    fs::write(src.join("a"), b"a, second version").unwrap();
    srv.client(argv!["backup", &src]).run().ok();
    let o = srv.client(argv!["verify"]).run();
    o.ok();
    assert!(
        o.err().contains("verify: 3 files"),
        "current a and b, the old a\n{o}"
    );
    let o = srv.client(argv!["verify", src.join("a")]).run();
    o.ok();
    assert!(o.err().contains("verify: 2 files"), "{o}");

    let b = batches(&srv.ns(NAME));
    let rel = src.strip_prefix("/").unwrap();
    let kept = b[0].join(rel).join("a");
    let mut bytes = fs::read(&kept).unwrap();
    bytes[100] ^= 1;
    let md = fs::metadata(&kept).unwrap();
    fs::write(&kept, &bytes).unwrap();
    set_mtime(&kept, (md.mtime(), md.mtime_nsec() as u32));
    let batch = b[0].file_name().unwrap().to_string_lossy().into_owned();
    for args in [argv!["verify"], argv!["verify", src.join("a")]] {
        let o = srv.client(args).run();
        o.code_is(1).err_has(&format!(
            "/.rsb-tmp.history/{batch}{}: content changed",
            src.join("a").display()
        ));
    }
    // The current tree alone is clean.
    srv.client(argv!["verify", src.join("b")]).run().ok();
}
