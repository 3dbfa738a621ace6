//! What a restore does to what it finds in its destination: a local
//! directory with contents where the backup has a file is refused unless
//! `restore --force`; anything else is replaced as `rsync -a` replaces it.

#[macro_use]
mod common;

use std::fs;
use std::os::unix::fs::{symlink, MetadataExt};
use std::thread;
use std::time::{Duration, Instant};

use common::*;

/// `mkdir -p D/src/a.txt/deep; echo mine > D/src/a.txt/deep/thesis.tex`,
/// then `restore /src D`: thesis.tex must survive, the entry be named with
/// the reason, the rest restored, and the exit status be 1.
#[test]
fn restore_refuses_to_delete_a_nonempty_local_directory() {
    let srv = Server::start(&[]);
    let s = scratch();
    let src = s.join("src");
    let mut tree = Tree::new(&src, 0o755, (1_600_000_000, 0));
    tree.file("a.txt", b"backed up", 0o644, (1_600_000_001, 0))
        .file("b.txt", b"other", 0o644, (1_600_000_002, 0))
        .finish();
    srv.client(argv!["backup", src]).run().ok();

    let dest = s.join("D");
    fs::create_dir_all(dest.join("src/a.txt/deep")).unwrap();
    let thesis = dest.join("src/a.txt/deep/thesis.tex");
    fs::write(&thesis, b"mine\n").unwrap();
    let o = srv.client(argv!["restore", src, dest]).run();
    o.code_is(1);
    let line = o
        .err()
        .lines()
        .find(|l| l.contains(&*dest.join("src/a.txt").to_string_lossy()))
        .map(str::to_owned)
        .unwrap_or_else(|| panic!("the refused entry is not named\n{o}"));
    assert!(
        line.contains("not empty") && line.contains("--force"),
        "{line}"
    );
    assert_eq!(
        fs::read(&thesis).unwrap(),
        b"mine\n",
        "the local file was lost"
    );
    // The rest of the restore went on.
    assert_eq!(fs::read(dest.join("src/b.txt")).unwrap(), b"other");
    assert!(find_tmp(&dest).is_empty(), "{:?}", find_tmp(&dest));

    // With --force the backup's file replaces the directory, at the prompt
    // and one-shot alike.
    let o = srv
        .client(argv![])
        .stdin(format!(
            "restore --force {} {}\nquit\n",
            src.display(),
            dest.display()
        ))
        .run();
    o.ok();
    assert_same_tree(&src, &dest.join("src"));
    fs::remove_file(dest.join("src/a.txt")).unwrap();
    fs::create_dir_all(dest.join("src/a.txt/deep")).unwrap();
    fs::write(&thesis, b"mine\n").unwrap();
    srv.client(argv!["restore", "--force", src, dest])
        .run()
        .ok();
    assert_same_tree(&src, &dest.join("src"));
}

/// The other replacements need no --force: a file or link where the backup
/// has a directory, an empty directory where it has a file or link.
#[test]
fn restore_replaces_files_links_and_empty_directories_without_force() {
    let srv = Server::start(&[]);
    let s = scratch();
    let src = s.join("src");
    let mut tree = Tree::new(&src, 0o755, (1_600_000_000, 0));
    tree.dir("was_file", 0o750, (1_600_000_003, 0))
        .file("was_file/in", b"x", 0o600, (1_600_000_004, 0))
        .dir("was_link", 0o755, (1_600_000_005, 0))
        .file("was_empty_dir", b"y", 0o644, (1_600_000_006, 0))
        .link("link_over_empty_dir", "somewhere", (1_600_000_007, 0))
        .finish();
    srv.client(argv!["backup", src]).run().ok();

    let dest = s.join("D");
    let out = s.join("outside");
    fs::create_dir_all(&out).unwrap();
    fs::create_dir_all(dest.join("src/was_empty_dir")).unwrap();
    fs::create_dir_all(dest.join("src/link_over_empty_dir")).unwrap();
    fs::write(dest.join("src/was_file"), b"local file").unwrap();
    symlink(&out, dest.join("src/was_link")).unwrap();
    srv.client(argv!["restore", src, dest]).run().ok();
    assert_same_tree(&src, &dest.join("src"));
    assert_eq!(
        fs::read_dir(&out).unwrap().count(),
        0,
        "wrote through a link"
    );
}

/// Kills `run` (SIGKILL) as soon as a partial in `dir` holds some bytes.
fn kill_when_partial(run: Running, dir: &std::path::Path) {
    wait_partial(&run, dir);
    run.kill9();
}

/// Waits until a partial in `dir` holds some bytes (the restore is then in
/// the middle of a large file's body).
fn wait_partial(run: &Running, dir: &std::path::Path) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if has_partial_with_bytes(dir) {
            return;
        }
        assert!(
            nix::sys::signal::kill(run.pid(), None).is_ok(),
            "the restore finished before it could be cut"
        );
        assert!(Instant::now() < deadline, "no partial appeared in {dir:?}");
        thread::sleep(Duration::from_micros(500));
    }
}

/// Every directory under `root` whose mode is 0700 (none in the source).
fn owner_only_dirs(root: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![root.to_path_buf()];
    while let Some(d) = todo.pop() {
        if fs::symlink_metadata(&d).unwrap().mode() & 0o7777 == 0o700 {
            out.push(d.clone());
        }
        for e in fs::read_dir(&d).unwrap().flatten() {
            if e.file_type().unwrap().is_dir() {
                todo.push(e.path());
            }
        }
    }
    out
}

/// The "N unchanged" of a summary line (identical files skipped).
fn summary_skipped(stderr: &str, cmd: &str) -> Option<u64> {
    let line = stderr
        .lines()
        .rev()
        .find(|l| l.contains(&format!("{cmd}:")))?;
    let words: Vec<&str> = line.split_whitespace().collect();
    words
        .windows(2)
        .find(|w| w[1].trim_end_matches(',') == "unchanged")
        .and_then(|w| w[0].parse().ok())
}

/// `restore /src D/r` cut by kill -9 while the second large file arrives,
/// then run again: the re-run restores into D/r (it made D/r and marked
/// it unfinished), not into D/r/src beside the partial tree; the tree
/// equals the source (bytes, modes, mtimes, no 0700 directory left); the
/// first large file, received whole before the cut, is not sent again.
#[test]
fn a_rerun_of_an_interrupted_restore_converges_without_nesting_or_resending() {
    const BIG_B: usize = 64;
    const BIG_C: usize = 160;
    let srv = Server::start(&[]);
    let s = scratch();
    let src = s.join("src");
    let mut tree = Tree::new(&src, 0o755, (1_600_000_000, 0));
    tree.dir("a", 0o750, (1_600_000_001, 0));
    for i in 0..40 {
        tree.file(
            format!("a/f{i:02}"),
            format!("small {i}\n").as_bytes(),
            0o644,
            (1_600_000_100 + i, 7),
        );
    }
    tree.dir("b", 0o711, (1_600_000_002, 0))
        .dir("c", 0o755, (1_600_000_003, 0));
    write_big(&src.join("b/big.bin"), BIG_B, 1);
    write_big(&src.join("c/big.bin"), BIG_C, 2);
    set_mtime(&src.join("b/big.bin"), (1_600_000_004, 4));
    set_mtime(&src.join("c/big.bin"), (1_600_000_005, 5));
    tree.finish();
    srv.client(argv!["backup", src])
        .timeout(Duration::from_secs(60))
        .run()
        .ok();

    let d = s.join("D");
    fs::create_dir(&d).unwrap();
    let r = d.join("r");
    let run = srv
        .client(argv!["restore", src, r])
        .timeout(Duration::from_secs(60))
        .spawn();
    // The server streams a directory in readdir order, read here from the
    // same stored directory: the cut comes while the second large file
    // arrives, whichever that is.
    let stored = srv.root().join("t").join(src.strip_prefix("/").unwrap());
    let order: Vec<String> = fs::read_dir(&stored)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let b_first = order.iter().position(|n| n == "b") < order.iter().position(|n| n == "c");
    let (second, second_mib) = if b_first { ("c", BIG_C) } else { ("b", BIG_B) };
    kill_when_partial(run, &r.join(second));
    thread::sleep(Duration::from_millis(100));

    let o = srv
        .client(argv!["restore", src, r])
        .timeout(Duration::from_secs(60))
        .run();
    o.ok();
    assert!(
        !r.join("src").exists(),
        "the re-run nested a second copy\n{o}"
    );
    assert_same_tree(&src, &r);
    assert!(owner_only_dirs(&r).is_empty(), "{:?}", owner_only_dirs(&r));
    assert!(find_tmp(&d).is_empty(), "left: {:?}", find_tmp(&d));
    let moved = summary_bytes(&o.err(), "restore").unwrap();
    assert!(
        moved < (second_mib as u64) << 20,
        "the re-run moved {moved} bytes: the first large file (or all of the second) was sent again\n{o}"
    );
    // Finished: no mark is left, so a further restore into D/r follows
    // cp -a's rule again.
    assert!(!rsb::io::client::marker::is_marked(
        &r,
        &rsb::client::restore::marker(
            &rsb::proto::WirePath::from_local(src.as_os_str().as_encoded_bytes()).unwrap()
        )
    ));
}

/// A restore into a tree that already holds the server's version of every
/// file (same size, mode and mtime) sends none of them again: the large
/// ones are skipped at their offer, the small ones are not rewritten.
#[test]
fn a_restore_over_an_identical_tree_sends_no_file_again() {
    let srv = Server::start(&[]);
    let s = scratch();
    let src = s.join("src");
    let mut tree = Tree::new(&src, 0o755, (1_600_000_000, 0));
    for i in 0..10 {
        tree.file(format!("f{i}"), b"small", 0o640, (1_600_000_100 + i, 3));
    }
    write_big(&src.join("big1"), 3, 1);
    write_big(&src.join("big2"), 2, 2);
    tree.finish();
    srv.client(argv!["backup", src]).run().ok();
    let d = s.join("D");
    fs::create_dir(&d).unwrap();
    let o = srv.client(argv!["restore", src, d]).run();
    o.ok();
    assert_eq!(
        summary_bytes(&o.err(), "restore"),
        Some((5 << 20) + 50),
        "{o}"
    );
    let inode = fs::metadata(d.join("src/f0")).unwrap().ino();
    let o = srv.client(argv!["restore", src, d]).run();
    o.ok();
    // The large files are skipped at their offer; the small ones still
    // cross the wire inside the stream (50 bytes) but are not rewritten.
    assert_eq!(summary_bytes(&o.err(), "restore"), Some(50), "{o}");
    assert_eq!(summary_skipped(&o.err(), "restore"), Some(12), "{o}");
    assert_eq!(
        fs::metadata(d.join("src/f0")).unwrap().ino(),
        inode,
        "rewritten"
    );
    assert_same_tree(&src, &d.join("src"));
    // A changed local file is restored again.
    fs::write(d.join("src/f3"), b"SMALL").unwrap();
    let o = srv.client(argv!["restore", src, d]).run();
    o.ok();
    o.err_has("restore: 1 file received, 11 unchanged");
    assert_same_tree(&src, &d.join("src"));
}

/// A restore cut off (here the server dies in the middle of a large file)
/// keeps what arrived whole: the files and the directories whose own
/// entries came (with their modes and mtimes) are committed, not thrown
/// away with the unfinished batch.
#[test]
fn an_interrupted_restore_keeps_what_arrived_whole_with_its_directory_modes() {
    let mut srv = Server::start(&[]);
    let s = scratch();
    let src = s.join("src");
    let mut tree = Tree::new(&src, 0o755, (1_600_000_000, 0));
    tree.dir("a", 0o750, (1_600_000_001, 0));
    for i in 0..20 {
        tree.file(
            format!("a/f{i:02}"),
            b"small",
            0o644,
            (1_600_000_100 + i, 7),
        );
    }
    tree.dir("c", 0o755, (1_600_000_003, 0));
    write_big(&src.join("c/big.bin"), 200, 2);
    tree.finish();
    srv.client(argv!["backup", src])
        .timeout(Duration::from_secs(60))
        .run()
        .ok();
    let d = s.join("D");
    fs::create_dir(&d).unwrap();
    let run = srv
        .client(argv!["restore", src, d])
        .timeout(Duration::from_secs(60))
        .spawn();
    wait_partial(&run, &d.join("src/c"));
    srv.signal(nix::sys::signal::Signal::SIGKILL);
    let _ = srv.wait_exit(Duration::from_secs(5));
    let o = run.default_wait();
    assert_ne!(o.code(), Some(0), "{o}");
    // The server streams a directory in its own order (readdir's), which
    // this reads from the same stored directory: when `a` comes before
    // `c`, all of `a` arrived before the big file and must be there whole.
    let stored = srv.root().join("t").join(src.strip_prefix("/").unwrap());
    let order: Vec<String> = fs::read_dir(&stored)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let a_first = order.iter().position(|n| n == "a") < order.iter().position(|n| n == "c");
    if a_first || d.join("src/a").exists() {
        assert_same_tree(&src.join("a"), &d.join("src/a"));
    }
    // The top directory's own entry never came: it waits for the re-run.
    let root = srv.root().to_path_buf();
    let srv = Server::start_at(&root, &[]);
    let o = srv
        .client(argv!["restore", src, d.join("src")])
        .timeout(Duration::from_secs(60))
        .run();
    o.ok();
    assert_same_tree(&src, &d.join("src"));
    if a_first {
        assert_eq!(summary_skipped(&o.err(), "restore"), Some(20), "{o}");
    }
}
