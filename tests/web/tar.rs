//! A directory as a tar stream, `/files/<name>/<dir>/?format=tar`: GNU
//! tar extracts it (as root, so modes are kept) into a tree the same as
//! the source in type, bytes, mode, mtime to the nanosecond and symlink
//! target (tests/common's `tree_diff`, and rsync's itemized check by
//! checksum), long and non-UTF-8 names included; symlinks stay symlinks,
//! even to a directory outside.

use std::fs;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::http::*;
use crate::common::*;

/// A tree with what tar headers find hard: nanosecond mtimes, modes, a
/// long name (pax), a non-UTF-8 name, an empty directory, symlinks (one
/// to a file outside, one to a directory outside).
fn tar_tree(root: &Path) -> Tree {
    let mut t = Tree::new(root, 0o755, (1_500_000_000, 111_111_111));
    let long = "n".repeat(140);
    t.file("top.txt", b"top of the tree\n", 0o644, (1_500_000_001, 1))
        .dir("dir", 0o750, (1_500_000_002, 222_222_222))
        .file(
            "dir/inner.bin",
            &random_bytes(3, 70_000),
            0o600,
            (1_500_000_003, 333_333_333),
        )
        .file(
            "dir/run.sh",
            b"#!/bin/sh\necho hi\n",
            0o755,
            (1_500_000_004, 4),
        )
        .file(
            format!("dir/{long}.txt"),
            b"a long name\n",
            0o640,
            (1_500_000_005, 5),
        )
        .file(
            b"dir/\xff\xfe.bin",
            b"bytes name\n",
            0o644,
            (1_500_000_006, 6),
        )
        .file("dir/empty-file", b"", 0o444, (1_500_000_007, 7))
        .dir("empty", 0o700, (1_500_000_008, 8))
        .link("to-top", "top.txt", (1_500_000_009, 9))
        .link("to-passwd", "/etc/passwd", (1_500_000_010, 10))
        .link("to-etc", "/etc", (1_500_000_011, 11))
        .finish();
    t
}

/// Downloads `target` and extracts it with `tar -x` in a new directory.
fn extract(port: u16, target: &str, into: &Path) -> Resp {
    let r = curl(&[&url(port, target)]);
    r.status_is(200);
    fs::create_dir(into).unwrap();
    let mut tar = Command::new("tar")
        .args(["-x", "--preserve-permissions", "-f", "-", "-C"])
        .arg(into)
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run tar");
    tar.stdin.take().unwrap().write_all(&r.body).unwrap();
    let o = tar.wait_with_output().unwrap();
    assert!(
        o.status.success(),
        "tar -x: {}\n{}",
        String::from_utf8_lossy(&o.stderr),
        r.show()
    );
    r
}

/// Where the extracted copy of a directory called `base` is: `into/base`
/// when the stream names its entries under the directory's own name (the
/// only entry then), else `into` itself.
fn copy_root(into: &Path, base: &[u8]) -> PathBuf {
    let names: Vec<_> = fs::read_dir(into)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    if names.len() == 1 && names[0].as_bytes() == base {
        into.join(&names[0])
    } else {
        into.to_path_buf()
    }
}

#[test]
fn a_directory_as_tar_extracts_to_the_same_tree() {
    let srv = web_server(&[]);
    let tmp = scratch();
    let src = tmp.join("src");
    tar_tree(&src);
    backup(&srv, NAME, &src);
    let port = srv.web_port();
    let into = tmp.join("x");
    let r = extract(
        port,
        &format!("{}/?format=tar", file_url(NAME, &src)),
        &into,
    );
    assert!(
        r.must("content-type").starts_with("application/x-tar"),
        "{}",
        r.show()
    );
    assert_eq!(
        r.body.len() % 512,
        0,
        "a tar stream is whole 512-byte blocks"
    );
    let copy = copy_root(&into, b"src");
    assert_same_tree(&src, &copy);
    assert_eq!(rsync_diff_with(&["-aHn"], &src, &copy), "");
    // The links are links, not what they point at.
    for l in ["to-passwd", "to-etc"] {
        assert!(fs::symlink_metadata(copy.join(l))
            .unwrap()
            .file_type()
            .is_symlink());
    }
    // tar's own listing names the symlinks with their targets.
    let list = Command::new("tar")
        .args(["-tvf", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            c.stdin.take().unwrap().write_all(&r.body)?;
            c.wait_with_output()
        })
        .unwrap();
    let list = String::from_utf8_lossy(&list.stdout);
    assert!(list.contains("to-passwd -> /etc/passwd"), "{list}");
    assert!(!list.contains("shadow"), "/etc was followed:\n{list}");
}

#[test]
fn a_subdirectory_and_the_past_download_as_tar() {
    let srv = web_server(&[]);
    let tmp = scratch();
    let src = tmp.join("src");
    tar_tree(&src);
    backup(&srv, NAME, &src);
    let port = srv.web_port();
    // A snapshot of the tree as first backed up, then a change.
    let first = tmp.join("first");
    tar_tree(&first);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let between = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    std::thread::sleep(std::time::Duration::from_millis(1100));
    fs::write(src.join("dir/run.sh"), b"#!/bin/sh\necho changed\n").unwrap();
    set_mtime(&src.join("dir/run.sh"), (1_500_000_100, 0));
    set_mtime(&src.join("dir"), (1_500_000_002, 222_222_222));
    backup(&srv, NAME, &src);

    let into = tmp.join("sub");
    extract(
        port,
        &format!("{}/?format=tar", file_url(NAME, &src.join("dir"))),
        &into,
    );
    assert_same_tree(&src.join("dir"), &copy_root(&into, b"dir"));

    let into = tmp.join("then");
    extract(
        port,
        &format!(
            "{}/?format=tar&at=%40{between}",
            file_url(NAME, &src.join("dir"))
        ),
        &into,
    );
    let copy = copy_root(&into, b"dir");
    assert_eq!(
        fs::read(copy.join("run.sh")).unwrap(),
        b"#!/bin/sh\necho hi\n",
        "?at= gave today's tree"
    );
    assert_same_tree(&first.join("dir"), &copy);
}
