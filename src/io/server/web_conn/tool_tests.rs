//! Tests that run real tools against the pure web code: GNU tar lists and
//! extracts what `crate::server::web::tar` writes, and python3's json
//! module parses what the dashboard's `/status.json` writes. Here and not
//! beside that code because they start processes and touch files (the
//! pure rings do not).

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;

use crate::proto::{EntryKind, Time};
use crate::server::web::pages::status_json;
use crate::server::web::pages::tests::{clients, dash};
use crate::server::web::tar::tests::{entry, push};
use crate::server::web::tar::*;

/// Runs GNU tar in `dir`; it must succeed and say nothing on stderr but
/// lines holding one of `allowed`.
fn tar(args: &[&str], dir: &Path, allowed: &[&str]) -> String {
    let out = Command::new("tar")
        .args(args)
        .current_dir(dir)
        .env("TZ", "UTC")
        .env("LC_ALL", "C")
        .output()
        .expect("GNU tar is installed");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let unexpected = stderr
        .lines()
        .any(|l| !allowed.iter().any(|a| l.contains(a)));
    assert!(
        out.status.success() && !unexpected,
        "tar {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn path_of(root: &Path, name: &[u8]) -> std::path::PathBuf {
    root.join(OsStr::from_bytes(name))
}

#[test]
fn python_json_parses_status_json() {
    let mut c = clients();
    c[0].activity[0].what = "backup</script><b>\u{2028}\x01".to_string();
    let json = status_json(&dash(c));
    // A real JSON parser agrees, when there is one.
    if let Ok(mut child) = std::process::Command::new("python3")
        .args([
            "-c",
            "import json,sys; d=json.load(sys.stdin); print(d['clients'][0]['cells']['activity'])",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
    {
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(json.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success());
        assert_eq!(
            String::from_utf8(out.stdout).unwrap(),
            "backup</script><b>\\u{2028}\\x01 for 1 min: 42 files, 3.0 MiB; idle\n"
        );
    }
}

/// Builds an archive of every hard case and has GNU tar list and extract
/// it: names (long, UTF-8, with a newline, with invalid UTF-8), sizes,
/// modes, mtimes with nanoseconds, owners, symlinks, hard links.
#[test]
fn gnu_tar_lists_and_extracts_what_we_write() {
    let tmp = tempfile::tempdir().unwrap();
    let long_segment = "s".repeat(150);
    let long_target = format!("../{}", "t".repeat(200));
    let long_path = format!("top/{long_segment}/{}", "deep".repeat(30));
    let nanos_time = Time {
        secs: 1_600_000_000,
        nanos: 123_456_789,
    };

    let mut a = Vec::new();
    push(&mut a, &entry(b"top", EntryKind::Dir), b"");
    let mut hello = entry(b"top/hello.txt", EntryKind::File);
    hello.size = 6;
    hello.mode = 0o640;
    push(&mut a, &hello, b"hello\n");
    let mut exec = entry(b"top/run.sh", EntryKind::File);
    exec.size = 700;
    exec.mode = 0o4755;
    push(&mut a, &exec, &[b'#'; 700]);
    push(
        &mut a,
        &entry(format!("top/{long_segment}").as_bytes(), EntryKind::Dir),
        b"",
    );
    let mut long = entry(long_path.as_bytes(), EntryKind::File);
    long.size = 3;
    push(&mut a, &long, b"abc");
    let mut utf8 = entry("top/héllo wörld ✓.txt".as_bytes(), EntryKind::File);
    utf8.size = 1;
    push(&mut a, &utf8, b"u");
    let mut newline = entry(b"top/line\nbreak", EntryKind::File);
    newline.size = 2;
    push(&mut a, &newline, b"nl");
    let mut invalid = entry(b"top/bad\xff\xfe.bin", EntryKind::File);
    invalid.size = 4;
    push(&mut a, &invalid, b"\xff\x00\x01\x02");
    let mut nanos = entry(b"top/nanos", EntryKind::File);
    nanos.mtime = nanos_time;
    push(&mut a, &nanos, b"");
    let mut owner = entry(b"top/owner", EntryKind::File);
    owner.uid = 3_000_000;
    owner.gid = 2_097_152;
    owner.user = Some("üser-with-a-name-longer-than-32-bytes".as_bytes());
    push(&mut a, &owner, b"");
    let mut sym = entry(b"top/link", EntryKind::Symlink);
    sym.link = Some(b"hello.txt");
    sym.mode = 0o777;
    sym.size = 9; // a walk may pass the target's length: no body follows
    push(&mut a, &sym, b"");
    let mut long_sym = entry(b"top/longlink", EntryKind::Symlink);
    long_sym.link = Some(long_target.as_bytes());
    push(&mut a, &long_sym, b"");
    let mut hard = entry(b"top/hard", EntryKind::File);
    hard.hard_link = true;
    hard.size = 6;
    hard.link = Some(b"top/hello.txt");
    push(&mut a, &hard, b"");
    push(&mut a, &entry(b"top/fifo", EntryKind::Fifo), b"");
    let mut old = entry(b"top/old", EntryKind::File);
    old.mtime = Time {
        secs: -86_400,
        nanos: 0,
    };
    push(&mut a, &old, b"");
    a.extend_from_slice(&END);
    assert_eq!(a.len() % BLOCK, 0);
    let archive = tmp.path().join("a.tar");
    std::fs::write(&archive, &a).unwrap();

    let listing = tar(&["--numeric-owner", "-tvf", "a.tar"], tmp.path(), &[]);
    let lines: Vec<&str> = listing.lines().collect();
    assert_eq!(lines.len(), 15, "{listing}");
    assert!(
        lines.contains(&"drwxr-xr-x 1000/1000         0 2023-11-14 22:13 top/"),
        "{listing}"
    );
    assert!(lines.contains(&"-rw-r----- 1000/1000         6 2023-11-14 22:13 top/hello.txt"));
    assert!(lines.contains(&"-rwsr-xr-x 1000/1000       700 2023-11-14 22:13 top/run.sh"));
    assert!(lines.contains(&"-rw-r--r-- 1000/1000         2 2023-11-14 22:13 top/line\\nbreak"));
    assert!(
        lines.contains(&"-rw-r--r-- 1000/1000         4 2023-11-14 22:13 top/bad\\377\\376.bin")
    );
    assert!(
        lines.contains(&"-rw-r--r-- 3000000/2097152   0 2023-11-14 22:13 top/owner"),
        "{listing}"
    );
    assert!(
        lines.contains(&"lrwxrwxrwx 1000/1000         0 2023-11-14 22:13 top/link -> hello.txt")
    );
    assert!(lines.contains(
        &"hrw-r--r-- 1000/1000         0 2023-11-14 22:13 top/hard link to top/hello.txt"
    ));
    assert!(lines.contains(&"prw-r--r-- 1000/1000         0 2023-11-14 22:13 top/fifo"));
    assert!(
        lines.contains(&"-rw-r--r-- 1000/1000         0 1969-12-31 00:00 top/old"),
        "{listing}"
    );
    assert!(lines.contains(
        &format!("-rw-r--r-- 1000/1000         3 2023-11-14 22:13 {long_path}").as_str()
    ));

    let out = tmp.path().join("out");
    std::fs::create_dir(&out).unwrap();
    // GNU tar warns of (and still sets) a time before 1970.
    tar(&["-xf", "../a.tar"], &out, &["implausibly old time stamp"]);
    let read = |name: &[u8]| std::fs::read(path_of(&out, name)).unwrap();
    let meta = |name: &[u8]| std::fs::symlink_metadata(path_of(&out, name)).unwrap();
    assert_eq!(read(b"top/hello.txt"), b"hello\n");
    assert_eq!(meta(b"top/hello.txt").mode() & 0o7777, 0o640);
    assert_eq!(meta(b"top/hello.txt").mtime(), 1_700_000_000);
    assert_eq!(meta(b"top/run.sh").mode() & 0o7777, 0o4755);
    assert_eq!(read(b"top/run.sh"), vec![b'#'; 700]);
    assert_eq!(read(long_path.as_bytes()), b"abc");
    assert_eq!(read("top/héllo wörld ✓.txt".as_bytes()), b"u");
    assert_eq!(read(b"top/line\nbreak"), b"nl");
    assert_eq!(read(b"top/bad\xff\xfe.bin"), b"\xff\x00\x01\x02");
    let n = meta(b"top/nanos");
    assert_eq!((n.mtime(), n.mtime_nsec()), (1_600_000_000, 123_456_789));
    assert_eq!(meta(b"top/old").mtime(), -86_400);
    assert_eq!(
        std::fs::read_link(path_of(&out, b"top/link"))
            .unwrap()
            .as_os_str()
            .as_bytes(),
        b"hello.txt"
    );
    assert_eq!(
        std::fs::read_link(path_of(&out, b"top/longlink"))
            .unwrap()
            .as_os_str()
            .as_bytes(),
        long_target.as_bytes()
    );
    assert_eq!(meta(b"top/hard").ino(), meta(b"top/hello.txt").ino());
    use std::os::unix::fs::FileTypeExt;
    assert!(meta(b"top/fifo").file_type().is_fifo());
    if is_root() {
        // Extracting as root keeps numeric owners, big ones included.
        assert_eq!(
            (meta(b"top/owner").uid(), meta(b"top/owner").gid()),
            (3_000_000, 2_097_152)
        );
    }
}

fn is_root() -> bool {
    std::fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false)
}

/// A file of 8 GiB and more: the size travels in a pax record. The body
/// is a hole of the archive file, so the test writes almost nothing.
#[test]
fn gnu_tar_reads_a_size_of_8_gib_and_more() {
    let tmp = tempfile::tempdir().unwrap();
    let size: u64 = (8 << 30) + 1;
    let mut e = entry(b"big.img", EntryKind::File);
    e.size = size;
    let header = entry_header(&e);
    let path = tmp.path().join("big.tar");
    std::fs::write(&path, &header).unwrap();
    let file = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    let end = header.len() as u64 + size + padding(size) as u64;
    file.set_len(end).unwrap();
    use std::io::Write;
    (&file).write_all(&END).unwrap();
    drop(file);
    let listing = tar(&["--numeric-owner", "-tvf", "big.tar"], tmp.path(), &[]);
    assert_eq!(
        listing,
        "-rw-r--r-- 1000/1000 8589934593 2023-11-14 22:13 big.img\n"
    );
}
