//! Issue 11, retention: `rsb-server --keep SPEC --prune [--dry-run]` over a
//! real store's history, and the running server's pruner. History is made
//! by real backups; where the policy needs old versions, batches are given
//! older names by hand (a batch's name is its time: that is the layout the
//! man page documents), as a server running for weeks would have made.

#[macro_use]
mod common;

use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::Duration;

use common::*;
use rsb::store::history::batch_name;

/// `rsb-server -d ROOT ARGS...`, run to its end.
fn server_once(root: &Path, args: &[&str]) -> Output {
    let mut c = Cmd::server();
    c.arg("-d")
        .arg(root)
        .args(args)
        .timeout(Duration::from_secs(30));
    c.run()
}

/// Backs up `src` `n` times, rewriting `src/a` (and, every second time,
/// `src/b`) before each run after the first: `n - 1` batches.
fn make_history(srv: &Server, src: &Path, n: usize) {
    for i in 0..n {
        fs::write(src.join("a"), format!("a version {i}")).unwrap();
        if i % 2 == 0 {
            fs::write(src.join("b"), format!("b version {i}")).unwrap();
        }
        srv.client(argv!["backup", src]).run().ok();
        // Distinct batch times even on a coarse clock.
        std::thread::sleep(Duration::from_millis(3));
    }
}

/// `--prune --dry-run --keep last=2` names each version it would remove
/// and removes nothing; `--prune --keep last=2` removes exactly those,
/// empties and removes the oldest batches, rewrites the index of a batch
/// that keeps something, and leaves the current tree alone.
#[test]
fn prune_keeps_the_last_versions_and_dry_run_changes_nothing() {
    let s = scratch();
    let root = s.join("root");
    let srv = Server::start_at(&root, &[]);
    let src = s.join("src");
    fs::create_dir(&src).unwrap();
    make_history(&srv, &src, 6);
    let ns = srv.ns(NAME);
    let before = batches(&ns);
    assert_eq!(before.len(), 5, "{before:?}");
    let rel = |n: &str| format!("{}/{n}", src.strip_prefix("/").unwrap().display());
    // a: 5 old versions; b: rewritten at 0, 2, 4: 2 old versions.
    let dry = server_once(&root, &["--keep", "last=2", "--prune", "--dry-run"]);
    dry.ok();
    let out = dry.out();
    let lines: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with("would remove"))
        .collect();
    assert_eq!(lines.len(), 3, "{dry}");
    assert!(
        lines
            .iter()
            .all(|l| l.contains(&format!("{NAME}:/{}", rel("a")))),
        "{dry}"
    );
    assert!(
        dry.out().contains(
            "would remove 3 versions (3 entries, 33 bytes) from 1 namespaces; 4 versions kept"
        ),
        "{dry}"
    );
    assert_eq!(batches(&ns), before, "a dry run removes nothing");
    for b in &before {
        assert!(!index_of(b).is_empty());
    }

    let o = server_once(&root, &["--keep", "last=2", "--prune"]);
    o.ok();
    assert!(
        o.out().contains("removed 3 versions (3 entries, 33 bytes)"),
        "{o}"
    );
    let after = batches(&ns);
    // The batches of versions 1 and 3 held only a: they went whole; the
    // one of version 2 keeps the b it held.
    assert_eq!(after.len(), 3, "{after:?}");
    assert_eq!(index_of(&after[0]), vec![rel("b")]);
    assert!(!after[0].join(rel("a")).exists());
    assert_eq!(fs::read(after[0].join(rel("b"))).unwrap(), b"b version 0");
    let mut idx = index_of(&after[1]);
    idx.sort();
    assert_eq!(idx, vec![rel("a"), rel("b")]);
    assert_eq!(fs::read(after[2].join(rel("a"))).unwrap(), b"a version 4");
    // The current tree is untouched and a second prune finds nothing.
    assert_eq!(
        fs::read(srv.store(NAME, &src.join("a"))).unwrap(),
        b"a version 5"
    );
    let again = server_once(&root, &["--keep", "last=2", "--prune"]);
    assert!(again.out().contains("removed 0 versions"), "{again}");
    assert!(
        find_stray_tmp(&root).is_empty(),
        "{:?}",
        find_stray_tmp(&root)
    );
}

/// Without `--keep`, nothing younger than 7 days goes, nor a sparse old
/// history (one version on each of a few days: `daily=30` keeps each);
/// `--keep daily=2` keeps the newest version of the two latest days that
/// hold one; `--keep all` keeps everything, however old.
#[test]
fn the_default_policy_keeps_young_and_sparse_history() {
    let s = scratch();
    let root = s.join("root");
    let srv = Server::start_at(&root, &[]);
    let src = s.join("src");
    fs::create_dir(&src).unwrap();
    fs::write(src.join("b"), b"never changes").unwrap();
    make_history_of_a(&srv, &src, 6);
    let ns = srv.ns(NAME);
    assert_eq!(batches(&ns).len(), 5);
    let o = server_once(&root, &["--prune"]);
    o.ok();
    assert!(o.out().contains("removed 0 versions"), "{o}");
    assert_eq!(batches(&ns).len(), 5);

    age_each(&ns, &[400, 300, 200, 100, 3]);
    let all = batches(&ns);
    let o = server_once(&root, &["--prune"]);
    assert!(o.out().contains("removed 0 versions"), "{o}");
    let o = server_once(&root, &["--keep", "daily=2", "--prune", "--dry-run"]);
    assert!(o.out().contains("would remove 3 versions"), "{o}");
    assert_eq!(batches(&ns), all);
    let o = server_once(&root, &["--keep", "daily=2", "--prune"]);
    o.ok();
    assert_eq!(batches(&ns), all[3..].to_vec(), "{o}");
    let o = server_once(&root, &["--keep", "all", "--prune"]);
    assert!(o.out().contains("removed 0 versions"), "{o}");
    assert_eq!(batches(&ns).len(), 2);
}

/// Renames the batches of `ns` (oldest first) to `days[i]` days before
/// now: a history that has aged.
fn age_each(ns: &Path, days: &[i64]) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let b = batches(ns);
    assert_eq!(b.len(), days.len());
    for (b, d) in b.iter().zip(days) {
        let older = b.with_file_name(std::ffi::OsStr::from_bytes(&batch_name(
            now - d * 86_400,
            0,
        )));
        fs::rename(b, older).unwrap();
    }
}

fn make_history_of_a(srv: &Server, src: &Path, n: usize) {
    for i in 0..n {
        fs::write(src.join("a"), format!("a version {i}")).unwrap();
        srv.client(argv!["backup", src]).run().ok();
        std::thread::sleep(Duration::from_millis(3));
    }
}

/// A directory kept whole is one version of its path: removing it is one
/// removal counting every entry below it, and its batch goes with it.
#[test]
fn a_kept_directory_is_one_version_with_all_its_entries() {
    let s = scratch();
    let root = s.join("root");
    let srv = Server::start_at(&root, &[]);
    let src = s.join("src");
    let t = (1_600_000_000, 0);
    let mut tree = Tree::new(&src, 0o755, t);
    tree.dir("d", 0o755, t);
    for i in 0..20 {
        tree.file(format!("d/f{i}"), &[b'x'; 100], 0o644, t);
    }
    tree.finish();
    srv.client(argv!["backup", &src]).run().ok();
    fs::remove_dir_all(src.join("d")).unwrap();
    fs::write(src.join("d"), b"a file now").unwrap();
    srv.client(argv!["backup", &src]).run().ok();
    std::thread::sleep(Duration::from_millis(3));
    fs::remove_file(src.join("d")).unwrap();
    fs::create_dir(src.join("d")).unwrap();
    fs::write(src.join("d/again"), b"a directory again").unwrap();
    srv.client(argv!["backup", &src]).run().ok();
    let ns = srv.ns(NAME);
    let two = batches(&ns);
    assert_eq!(two.len(), 2);
    let o = server_once(&root, &["--keep", "last=1", "--prune"]);
    o.ok();
    assert!(
        o.out()
            .contains("removed 1 versions (21 entries, 2000 bytes)"),
        "{o}"
    );
    assert_eq!(batches(&ns), two[1..].to_vec());
    let rel = src.strip_prefix("/").unwrap().join("d");
    assert_eq!(fs::read(two[1].join(rel)).unwrap(), b"a file now");
    assert_eq!(
        fs::read(srv.store(NAME, &src.join("d/again"))).unwrap(),
        b"a directory again"
    );
}

/// The running server applies its `--keep` at start and then on its
/// period (shortened here), and logs what it removed.
#[test]
fn a_running_server_prunes_on_its_own_and_logs_it() {
    let s = scratch();
    let root = s.join("root");
    let srv = Server::start_on_with_env(
        &root,
        0,
        &["--keep", "last=1"],
        &[("RSB_TEST_PRUNE_EVERY_MS", "200")],
    );
    let src = s.join("src");
    fs::create_dir(&src).unwrap();
    make_history_of_a(&srv, &src, 5);
    let ns = srv.ns(NAME);
    assert!(
        wait_until(Duration::from_secs(10), || batches(&ns).len() == 1),
        "{:?}\n{}",
        batches(&ns),
        srv.log()
    );
    assert!(
        wait_until(Duration::from_secs(5), || srv
            .log()
            .contains("t: retention removed")),
        "{}",
        srv.log()
    );
    assert!(
        srv.log()
            .contains("history: replaced and deleted entries kept (--keep last=1)"),
        "{}",
        srv.log()
    );
    let rel = src.strip_prefix("/").unwrap().join("a");
    assert_eq!(fs::read(batches(&ns)[0].join(rel)).unwrap(), b"a version 3");
}

/// Bad retention options are usage errors (exit 2) naming what is
/// accepted.
#[test]
fn bad_keep_options_are_usage_errors() {
    let s = scratch();
    let root = s.join("root");
    for (args, want) in [
        (&["--keep", "daily=0", "--prune"][..], "SPEC must be all"),
        (
            &["--keep", "weekly=3,weekly=4", "--prune"][..],
            "SPEC must be all",
        ),
        (&["--keep", "within=7x", "--prune"][..], "DURATION must be"),
        (&["--keep", "", "--prune"][..], "SPEC must be all"),
        (&["--dry-run"][..], "--dry-run goes with --prune"),
    ] {
        let o = server_once(&root, args);
        o.code_is(2).err_has(want);
    }
    let o = server_once(&s.join("missing"), &["--prune"]);
    o.code_is(2).err_has("no such directory");
    assert!(!s.join("missing").exists(), "--prune creates nothing");
}
