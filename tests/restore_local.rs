//! What a restore does to what it finds in its destination: a local
//! directory with contents where the backup has a file is refused unless
//! `restore --force`; anything else is replaced as `rsync -a` replaces it.

#[macro_use]
mod common;

use std::fs;
use std::os::unix::fs::symlink;

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
