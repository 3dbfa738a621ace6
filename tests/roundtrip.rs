//! Back up awkward trees with the real client, check the store on disk, and
//! restore them, comparing bytes, modes, mtimes (ns) and link targets.

#[macro_use]
mod common;

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::time::Duration;

use common::*;

#[test]
fn awkward_tree_round_trips_bit_for_bit() {
    let srv = Server::start(&[]);
    let s = scratch();
    let src = s.join("src");
    let tree = awkward_tree(&src);

    let o = srv.client(argv!["backup", src]).run();
    o.ok();
    assert_summary_bytes(&o, "backup", tree.bytes);
    assert_same_tree(&src, &srv.store(NAME, &src));

    let dest = s.join("dest");
    fs::create_dir(&dest).unwrap();
    let o = srv.client(argv!["restore", src, dest]).run();
    o.ok();
    assert_summary_bytes(&o, "restore", tree.bytes);
    // cp -a semantics: DEST exists, so the tree lands at DEST/src.
    assert_same_tree(&src, &dest.join("src"));
    let names: Vec<_> = fs::read_dir(&dest)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec!["src"], "restore left something else in DEST");
}

/// Issue 10: a FIFO was skipped with a warning; it is an entry now.
#[test]
fn a_fifo_is_backed_up_and_restored() {
    let srv = Server::start(&[]);
    let s = scratch();
    let src = s.join("src");
    let mut tree = small_tree(&src, 1);
    tree.fifo("pipe");
    set_mtime(&src, (1_600_000_000, 1)); // mkfifo touched the dir

    let o = srv.client(argv!["backup", src]).run();
    o.ok();
    assert!(!o.err().contains("skipped"), "{o}");
    assert!(o.err().contains("and 1 special file sent"), "{o}");
    assert_summary_bytes(&o, "backup", tree.bytes);
    assert_same_tree(&src, &srv.store(NAME, &src));
    let dest = s.join("dest");
    srv.client(argv!["restore", src, dest]).run().ok();
    assert_same_tree(&src, &dest);
}

#[test]
fn bare_path_is_a_backup() {
    let srv = Server::start(&[]);
    let s = scratch();
    let src = s.join("bare");
    small_tree(&src, 2);
    srv.client(argv![src]).run().ok();
    assert_same_tree(&src, &srv.store(NAME, &src));
}

#[test]
fn several_paths_in_one_backup() {
    let srv = Server::start(&[]);
    let s = scratch();
    let (a, b) = (s.join("one"), s.join("two"));
    let (ta, tb) = (small_tree(&a, 3), small_tree(&b, 4));
    let o = srv.client(argv!["backup", a, b]).run();
    o.ok();
    assert_summary_bytes(&o, "backup", ta.bytes + tb.bytes);
    assert_same_tree(&a, &srv.store(NAME, &a));
    assert_same_tree(&b, &srv.store(NAME, &b));
}

#[test]
fn restore_to_a_missing_dest_creates_dest_itself() {
    let srv = Server::start(&[]);
    let s = scratch();
    let src = s.join("src");
    small_tree(&src, 5);
    srv.client(argv!["backup", src]).run().ok();
    let dest = s.join("fresh");
    srv.client(argv!["restore", src, dest]).run().ok();
    assert_same_tree(&src, &dest);
}

#[test]
fn restore_single_file_and_symlink_into_a_dir() {
    let srv = Server::start(&[]);
    let s = scratch();
    let src = s.join("src");
    awkward_tree(&src);
    srv.client(argv!["backup", src]).run().ok();
    let dest = s.join("dest");
    fs::create_dir(&dest).unwrap();
    for name in [
        "nested/a/b/c/deep.txt",
        "big.bin",
        "link_dangling",
        "link_dir",
    ] {
        let o = srv.client(argv!["restore", src.join(name), dest]).run();
        o.ok();
        let base = Path::new(name).file_name().unwrap();
        let diff = tree_diff(&src.join(name), &dest.join(base), &[]);
        assert!(diff.is_empty(), "{name}: {diff:?}\n{o}");
    }
    // The link to a directory came back as a link, not as the directory.
    assert!(fs::symlink_metadata(dest.join("link_dir"))
        .unwrap()
        .file_type()
        .is_symlink());
}

#[test]
fn restore_overwrites_a_changed_local_copy() {
    let srv = Server::start(&[]);
    let s = scratch();
    let src = s.join("src");
    small_tree(&src, 6);
    srv.client(argv!["backup", src]).run().ok();
    let out = s.join("out");
    fs::create_dir(&out).unwrap();
    srv.client(argv!["restore", src, out]).run().ok();
    let copy = out.join("src");
    fs::write(
        copy.join("a.txt"),
        b"scribbled over, and longer than before",
    )
    .unwrap();
    fs::remove_file(copy.join("sub/l")).unwrap();
    srv.client(argv!["restore", src, out]).run().ok();
    assert_same_tree(&src, &copy);
}

#[test]
fn relative_paths_are_taken_from_the_cwd() {
    let srv = Server::start(&[]);
    let s = scratch();
    let src = s.join("rel");
    small_tree(&src, 8);
    srv.client(argv!["backup", "rel/sub"])
        .cwd(s.path())
        .run()
        .ok();
    assert_same_tree(&src.join("sub"), &srv.store(NAME, &src.join("sub")));
    fs::create_dir(s.join("out")).unwrap();
    srv.client(argv!["restore", "rel/sub", "out"])
        .cwd(s.path())
        .run()
        .ok();
    assert_same_tree(&src.join("sub"), &s.join("out/sub"));
}

#[test]
fn single_file_backup_creates_its_ancestors() {
    let srv = Server::start(&[]);
    let s = scratch();
    let src = s.join("src");
    awkward_tree(&src);
    let deep = src.join("nested/a/b/c/deep.txt");
    srv.client(argv!["backup", deep]).run().ok();
    assert_same_tree(&deep, &srv.store(NAME, &deep));
    for anc in ["nested/a/b/c", "nested/a", "nested"] {
        let m = fs::symlink_metadata(srv.store(NAME, &src.join(anc))).unwrap();
        assert!(m.is_dir(), "{anc} is not a directory in the store");
    }
    // Ancestors carry the client's mode (0711 for nested/a).
    let m = fs::metadata(srv.store(NAME, &src.join("nested/a"))).unwrap();
    assert_eq!(m.mode() & 0o7777, 0o711, "ancestor mode");
}

#[test]
fn a_symlink_argument_is_stored_as_a_link() {
    let srv = Server::start(&[]);
    let s = scratch();
    let src = s.join("src");
    awkward_tree(&src);
    let link = src.join("link_dir");
    srv.client(argv!["backup", link]).run().ok();
    let stored = srv.store(NAME, &link);
    assert!(
        fs::symlink_metadata(&stored)
            .unwrap()
            .file_type()
            .is_symlink(),
        "{stored:?} is not a symlink"
    );
    assert_same_tree(&link, &stored);
    assert!(
        !srv.store(NAME, &src.join("nested/a/b/c/deep.txt")).exists(),
        "the link was followed"
    );
}

#[test]
fn a_second_backup_after_changes_updates_the_store() {
    let srv = Server::start(&[]);
    let s = scratch();
    let src = s.join("src");
    awkward_tree(&src);
    srv.client(argv!["backup", src]).run().ok();
    // Same size, new content and mtime; a mode-only change; a new file.
    let f = src.join("name with spaces.txt");
    fs::write(&f, b"SPACES\n").unwrap();
    set_mtime(&f, (1_700_000_000, 77));
    chmod(&src.join("exec.sh"), 0o700);
    fs::write(src.join("nested/a/new"), b"new file").unwrap();
    set_mtime(&src.join("nested/a"), (1_300_000_001, 101));
    let o = srv.client(argv!["backup", src]).run();
    o.ok();
    assert_same_tree(&src, &srv.store(NAME, &src));
}

#[test]
fn a_file_that_became_a_symlink_or_a_dir_is_replaced() {
    let srv = Server::start(&[]);
    let s = scratch();
    let src = s.join("src");
    let mut t = Tree::new(&src, 0o755, (1_600_000_000, 0));
    t.file("x", b"x", 0o644, (1_600_000_001, 0))
        .file("y", b"y", 0o644, (1_600_000_002, 0))
        .finish();
    srv.client(argv!["backup", src]).run().ok();
    fs::remove_file(src.join("x")).unwrap();
    fs::remove_file(src.join("y")).unwrap();
    let mut t = Tree::new(&src, 0o755, (1_600_000_010, 0));
    t.link("x", "y", (1_600_000_011, 0))
        .dir("y", 0o755, (1_600_000_012, 0))
        .file("y/inner", b"inner", 0o644, (1_600_000_013, 0))
        .finish();
    srv.client(argv!["backup", src]).run().ok();
    assert_same_tree(&src, &srv.store(NAME, &src));
}

#[test]
fn many_small_files() {
    let srv = Server::start(&[]);
    let s = scratch();
    let src = s.join("many");
    let mut t = Tree::new(&src, 0o755, (1_600_000_000, 5));
    for d in 0..10 {
        t.dir(format!("d{d}"), 0o755, (1_600_000_100 + d, 6));
        for i in 0..50u64 {
            let len = 1024 + ((i * 2654435761 + d as u64) % 3072) as usize;
            t.file(
                format!("d{d}/f{i}"),
                &random_bytes(i ^ (d as u64) << 8, len),
                0o644,
                (1_600_001_000 + i as i64, i as u32),
            );
        }
    }
    t.finish();
    let o = srv.client(argv!["backup", src]).run();
    o.ok();
    assert_summary_bytes(&o, "backup", t.bytes);
    assert_same_tree(&src, &srv.store(NAME, &src));
    let dest = s.join("back");
    let o = srv.client(argv!["restore", src, dest]).run();
    o.ok();
    assert_summary_bytes(&o, "restore", t.bytes);
    assert_same_tree(&src, &dest);
}

#[test]
fn namespaces_are_separate() {
    let srv = Server::start(&[]);
    let s = scratch();
    let src = s.join("src");
    small_tree(&src, 9);
    srv.client_as("alice", argv!["backup", src]).run().ok();
    assert_same_tree(&src, &srv.store("alice", &src));
    assert!(!srv.ns("bob").join("tmp").exists());
    let o = srv.client_as("bob", argv!["ls", src]).run();
    o.code_is(1);
    let dest = s.join("stolen");
    srv.client_as("bob", argv!["restore", src, dest])
        .run()
        .code_is(1);
    assert!(
        !dest.exists() || fs::read_dir(&dest).unwrap().next().is_none(),
        "bob got alice's files"
    );
}

#[test]
fn default_name_is_the_host_name() {
    let host = nix::unistd::gethostname().unwrap().into_string().unwrap();
    if !rsb::proto::is_valid_client_name(&host) {
        eprintln!("host name {host:?} is not a valid client name; skipped");
        return;
    }
    let srv = Server::start(&[]);
    let s = scratch();
    let src = s.join("src");
    small_tree(&src, 10);
    Cmd::client()
        .args(argv!["127.0.0.1", srv.port().to_string(), "backup", src])
        .run()
        .ok();
    assert_same_tree(&src, &srv.store(&host, &src));
}

#[test]
fn quiet_prints_no_summary() {
    let srv = Server::start(&[]);
    let s = scratch();
    let src = s.join("src");
    small_tree(&src, 11);
    let o = srv.client_opts(&["-q"], argv!["backup", src]).run();
    o.ok();
    assert!(
        o.stderr.is_empty(),
        "-q should print nothing on success\n{o}"
    );
    let o = srv
        .client_opts(&["--quiet"], argv!["restore", src, s.join("back")])
        .run();
    o.ok();
    assert!(o.stderr.is_empty(), "{o}");
    assert_same_tree(&src, &s.join("back"));
}

#[test]
fn server_creates_a_missing_root_with_mode_0700() {
    let srv = Server::start(&[]);
    let m = fs::metadata(srv.root()).expect("server did not create its root");
    assert!(m.is_dir());
    assert_eq!(m.permissions().mode() & 0o7777, 0o700);
}

#[test]
fn server_logs_the_connection_with_the_client_name() {
    let srv = Server::start(&[]);
    let s = scratch();
    let src = s.join("src");
    small_tree(&src, 12);
    srv.client_as("logname-7", argv!["backup", src]).run().ok();
    assert!(
        wait_until(Duration::from_secs(3), || srv.log().contains("logname-7")),
        "server log does not name the client:\n{}",
        srv.log()
    );
}

#[test]
fn many_empty_files_in_one_directory_round_trip_with_mode_and_mtime() {
    let srv = Server::start(&[]);
    let s = scratch();
    let src = s.join("src");
    fs::create_dir(&src).unwrap();
    let modes = [0o600, 0o644, 0o400, 0o755, 0o000, 0o1777];
    for i in 0..3000u32 {
        let p = src.join(format!("e{i:05}"));
        fs::write(&p, b"").unwrap();
        chmod(&p, modes[i as usize % modes.len()]);
        set_mtime(&p, (1_500_000_000 + i64::from(i), i * 7));
    }
    fs::write(src.join("not_empty"), b"body").unwrap();
    set_mtime(&src, (1_600_000_000, 5));

    let o = srv.client(argv!["backup", src]).run();
    o.ok();
    let stored = srv.store(NAME, &src);
    assert_same_tree(&src, &stored);
    assert!(find_stray_tmp(&stored).is_empty(), "temporary names left");
    // The checksum record of every empty file is there: verify finds
    // nothing wrong.
    srv.client(argv!["verify"]).run().ok();

    let dest = s.join("dest");
    fs::create_dir(&dest).unwrap();
    srv.client(argv!["restore", src, dest]).run().ok();
    assert_same_tree(&src, &dest.join("src"));
    assert!(find_stray_tmp(&dest).is_empty(), "temporary names left");
    // Restored again over itself, everything is skipped and stays.
    srv.client(argv!["restore", src, dest]).run().ok();
    assert_same_tree(&src, &dest.join("src"));
}

/// The walk keeps the outer directories of a tree open and looks at their
/// entries through them; a tree deeper than the client's descriptor limit
/// (here 64, with 100 levels) is still backed up whole, and the files to
/// send still get descriptors.
#[test]
fn a_tree_deeper_than_the_descriptor_limit_is_backed_up_whole() {
    let srv = Server::start(&[]);
    let s = scratch();
    let src = s.join("deep");
    let mut dir = src.clone();
    for level in 0..100 {
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("f"), format!("level {level}\n")).unwrap();
        dir = dir.join("d");
    }
    let backup = |srv: &Server| {
        let mut c = Cmd::new("prlimit");
        c.args(["--nofile=64:64", CLIENT, "-n", NAME, "127.0.0.1"])
            .arg(srv.port().to_string())
            .arg("backup")
            .arg(&src);
        c.run()
    };
    let o = backup(&srv);
    o.ok();
    assert!(o.err().contains("backup: 100 files sent"), "{o}");
    assert_same_tree(&src, &srv.store(NAME, &src));
    backup(&srv).sent_nothing();
}
