//! Issue 11, reading the past: `ls --at TIME`, `restore --at TIME` and
//! `versions PATH` end to end. History is made by backups that replace
//! and delete entries; times are
//! `@EPOCHSECONDS` taken between steps a second apart, so each falls
//! clearly between two versions.

#[macro_use]
mod common;

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::thread::sleep;
use std::time::Duration;

use common::*;
use rsb::proto::codec::to_vec;
use rsb::proto::Frame;

/// Waits a little over a second, takes `@NOW`, waits again: a TIME that
/// lies strictly between what came before and what comes after.
fn between() -> String {
    sleep(Duration::from_millis(1100));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    sleep(Duration::from_millis(1100));
    format!("@{now}")
}

/// Bytes, permission bits and mtime (s, ns) of a file.
fn facts(p: &Path) -> (Vec<u8>, u32, i64, i64) {
    let md = fs::symlink_metadata(p).unwrap_or_else(|e| panic!("{p:?}: {e}"));
    (
        fs::read(p).unwrap(),
        md.permissions().mode() & 0o7777,
        md.mtime(),
        md.mtime_nsec(),
    )
}

/// The names `ls` printed (the last word of each line).
fn names(o: &Output) -> Vec<String> {
    let mut v: Vec<String> = o
        .out()
        .lines()
        .filter_map(|l| l.rsplit(' ').next().map(str::to_string))
        .collect();
    v.sort();
    v
}

/// The sequence: a file written, modified, deleted and written
/// again, restored (alone and with its directory) and listed at a time
/// after each step: bytes, mode and mtime exact each time; at the time it
/// was deleted it is not there. `versions` lists the three versions of
/// the file newest first, and a directory's deleted entries.
#[test]
fn modify_delete_recreate_read_back_at_each_time() {
    let s = scratch();
    let srv = Server::start_at(&s.join("root"), &[]);
    let src = s.join("src");
    let f = src.join("f");
    let v1 = random_bytes(1, 70_000);
    let v2 = random_bytes(2, 3_000);
    let v3 = b"third".to_vec();
    Tree::new(&src, 0o755, (1_600_000_000, 0))
        .file("f", &v1, 0o644, (1_600_000_001, 11))
        .file("g", b"stays", 0o600, (1_600_000_002, 0))
        .file("gone", b"deleted", 0o640, (1_600_000_003, 0))
        .finish();
    srv.client(argv!["backup", &src]).run().ok();
    let want1 = facts(&f);
    let t1 = between();

    fs::write(&f, &v2).unwrap();
    chmod(&f, 0o600);
    set_mtime(&f, (1_650_000_000, 22));
    srv.client(argv!["backup", &src]).run().ok();
    let want2 = facts(&f);
    let t2 = between();

    // A backup of the directory deletes them on the server.
    fs::remove_file(&f).unwrap();
    fs::remove_file(src.join("gone")).unwrap();
    srv.client(argv!["backup", &src]).run().ok();
    assert!(!srv.store(NAME, &f).exists());
    let t3 = between();

    fs::write(&f, &v3).unwrap();
    chmod(&f, 0o640);
    set_mtime(&f, (1_700_000_000, 33));
    srv.client(argv!["backup", &src]).run().ok();
    let want3 = facts(&f);
    let t4 = between();

    for (i, (at, want)) in [(&t1, &want1), (&t2, &want2), (&t4, &want3)]
        .into_iter()
        .enumerate()
    {
        let dest = s.join(format!("one{i}"));
        let o = srv.client(argv!["restore", "--at", at, &f, &dest]).run();
        o.ok();
        assert_eq!(&facts(&dest), want, "restore --at {at}: {o}");
        let dest = s.join(format!("dir{i}"));
        srv.client(argv!["restore", "--at", at, &src, &dest])
            .run()
            .ok();
        assert_eq!(&facts(&dest.join("f")), want, "{at}");
        assert_eq!(fs::read(dest.join("g")).unwrap(), b"stays");
        // `gone` was there until t3.
        assert_eq!(dest.join("gone").exists(), i < 2, "{at}");
        let o = srv.client(argv!["ls", "--at", at, &src]).run();
        o.ok();
        let mut listed = vec!["f", "g", "gone"];
        if i == 2 {
            listed.retain(|n| *n != "gone");
        }
        assert_eq!(names(&o), listed, "{o}");
        let size = want.0.len().to_string();
        assert!(
            o.out()
                .lines()
                .any(|l| l.ends_with(" f") && l.contains(&size)),
            "{o}"
        );
    }

    // Deleted at t3: neither restored nor listed then, and said so.
    let o = srv
        .client(argv!["restore", "--at", &t3, &f, s.join("none")])
        .run();
    o.code_is(1).err_has("no such path at");
    assert!(!s.join("none").exists());
    let o = srv.client(argv!["ls", "--at", &t3, &src]).run();
    o.ok();
    assert_eq!(names(&o), vec!["g"], "{o}");
    // The current tree is untouched by all this.
    let o = srv.client(argv!["ls", &src]).run();
    assert_eq!(names(&o), vec!["f", "g"], "{o}");

    // Versions of the file: newest first, the current one first.
    let o = srv.client(argv!["versions", &f]).run();
    o.ok();
    let out = o.out();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 4, "{o}");
    let shown = f.display().to_string();
    assert!(lines[..3].iter().all(|l| l.ends_with(&shown)), "{o}");
    assert!(lines[0].starts_with("-rw-r----- ") && lines[0].contains(" current "));
    assert!(lines[1].starts_with("-rw------- ") && !lines[1].contains("current"));
    assert!(lines[1].contains(&format!(" {} ", v2.len())), "{o}");
    assert!(lines[2].starts_with("-rw-r--r-- ") && lines[2].contains(&format!(" {} ", v1.len())));
    // Its mtime, 1,650,000,000 s: 2022-04-15 UTC, a day either side locally.
    assert!(lines[1].contains(" 2022-04-1"), "mtime: {o}");
    assert_eq!(
        lines[3],
        format!("3 versions, {} bytes in history", v1.len() + v2.len())
    );
    // Of the directory: its own version and the deleted `gone`.
    let o = srv.client(argv!["versions", &src]).run();
    o.ok();
    let out = o.out();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{o}");
    assert!(lines[0].starts_with("drwxr-xr-x ") && lines[0].ends_with(&src.display().to_string()));
    assert!(
        lines[1].ends_with(&src.join("gone").display().to_string()),
        "{o}"
    );
    // History holds v1, v2 and `gone` beneath the directory.
    assert_eq!(
        lines[2],
        format!("2 versions, {} bytes in history", v1.len() + v2.len() + 7)
    );
    // A path the server never held.
    let o = srv.client(argv!["versions", src.join("nope")]).run();
    o.code_is(1);
}

/// A directory replaced by a file and then by a directory again: listed
/// and restored at each time as it was (the old directory's files with
/// it), and `versions` shows the three and the files of the first one.
#[test]
fn a_directory_replaced_by_a_file_and_back_read_at_each_time() {
    let s = scratch();
    let srv = Server::start_at(&s.join("root"), &[]);
    let src = s.join("src");
    let x = src.join("x");
    Tree::new(&src, 0o755, (1_600_000_000, 0))
        .dir("x", 0o750, (1_600_000_000, 5))
        .file("x/a", b"aaa", 0o644, (1_600_000_001, 0))
        .file("x/b", b"bbbb", 0o600, (1_600_000_002, 0))
        .finish();
    set_mtime(&x, (1_600_000_000, 5));
    srv.client(argv!["backup", &src]).run().ok();
    let t1 = between();

    fs::remove_dir_all(&x).unwrap();
    fs::write(&x, b"now a file").unwrap();
    chmod(&x, 0o604);
    set_mtime(&x, (1_610_000_000, 0));
    srv.client(argv!["backup", &src]).run().ok();
    let file_facts = facts(&x);
    let t2 = between();

    fs::remove_file(&x).unwrap();
    fs::create_dir(&x).unwrap();
    fs::write(x.join("c"), b"c").unwrap();
    srv.client(argv!["backup", &src]).run().ok();
    let t3 = between();

    // t1: the first directory, whole.
    let o = srv.client(argv!["ls", "--at", &t1, &x]).run();
    o.ok();
    assert_eq!(names(&o), vec!["a", "b"], "{o}");
    let d1 = s.join("d1");
    srv.client(argv!["restore", "--at", &t1, &x, &d1])
        .run()
        .ok();
    assert_eq!(facts(&d1.join("a")).0, b"aaa");
    assert_eq!(
        facts(&d1.join("b")),
        (b"bbbb".to_vec(), 0o600, 1_600_000_002, 0)
    );
    let md = fs::metadata(&d1).unwrap();
    assert_eq!((md.mode() & 0o7777, md.mtime()), (0o750, 1_600_000_000));
    assert!(!d1.join("c").exists());
    // t2: the file.
    let o = srv.client(argv!["ls", "--at", &t2, &x]).run();
    o.ok();
    assert!(o.out().starts_with("-rw----r-- "), "{o}");
    let d2 = s.join("d2");
    srv.client(argv!["restore", "--at", &t2, &x, &d2])
        .run()
        .ok();
    assert_eq!(facts(&d2), file_facts);
    // t3: the directory of now.
    let o = srv.client(argv!["ls", "--at", &t3, &x]).run();
    assert_eq!(names(&o), vec!["c"], "{o}");
    let d3 = s.join("d3");
    srv.client(argv!["restore", "--at", &t3, &x, &d3])
        .run()
        .ok();
    assert_same_tree(&x, &d3);

    let o = srv.client(argv!["versions", &x]).run();
    o.ok();
    let out = o.out();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 6, "{o}");
    assert!(
        lines[0].starts_with("d") && lines[0].contains(" current "),
        "{o}"
    );
    assert!(lines[1].starts_with("-rw----r-- "), "{o}");
    assert!(lines[2].starts_with("drwxr-x--- "), "{o}");
    assert!(
        lines[3].ends_with(&x.join("a").display().to_string()),
        "{o}"
    );
    assert!(
        lines[4].ends_with(&x.join("b").display().to_string()),
        "{o}"
    );
    assert_eq!(lines[5], "5 versions, 17 bytes in history");
}

/// A TIME that cannot be read: exit 2 and the accepted forms one-shot;
/// at the prompt an error line, and the prompt goes on.
#[test]
fn a_bad_time_is_a_usage_error_naming_the_forms() {
    let srv = Server::start(&[]);
    for bad in [
        "yesterday",
        "2026-13-01",
        "2026-02-30T10:00",
        "@12x",
        "1h30m",
        "@99999999999999999999",
    ] {
        let o = srv.client(argv!["ls", "--at", bad, "/"]).run();
        o.code_is(2).err_has("TIME must be YYYY-MM-DD");
        let o = srv
            .client(argv!["restore", "--at", bad, "/x", "/tmp/none"])
            .run();
        o.code_is(2).err_has("@EPOCHSECONDS");
    }
    let o = srv.client(argv!["ls", "--at"]).run();
    o.code_is(2).err_has("--at needs a TIME");
    let o = srv.client(argv![]).stdin("ls --at soon /\nhelp\n").run();
    o.code_is(1)
        .err_has("'soon': TIME must be")
        .out_has("versions PATH");
}

/// A TIME before anything was stored: "no such path at TIME", exit 1,
/// like `ls` or `restore` of a path the server does not hold.
#[test]
fn a_time_before_anything_existed_has_no_such_path() {
    let s = scratch();
    let srv = Server::start(&[]);
    let src = s.join("src");
    small_tree(&src, 3);
    srv.client(argv!["backup", &src]).run().ok();
    for p in [src.clone(), Path::new("/").to_path_buf()] {
        let o = srv.client(argv!["ls", "--at", "@1000000", &p]).run();
        o.code_is(1).err_has("no such path at 1970-01-12T13:46:40Z");
        let o = srv
            .client(argv!["restore", "--at", "2001-01-01", &p, s.join("d")])
            .run();
        o.code_is(1).err_has("no such path at");
        assert!(!s.join("d").exists());
    }
    // A week ago, in every form of TIME, is also before the backup.
    for at in ["7d", "1w", "168h", "10080m"] {
        srv.client(argv!["ls", "--at", at, &src]).run().code_is(1);
    }
    // And now is now (a second on: TIME has whole seconds).
    sleep(Duration::from_millis(1100));
    let o = srv.client(argv!["ls", "--at", "0s", &src]).run();
    o.ok();
    assert_eq!(o.out(), srv.client(argv!["ls", &src]).run().out());
}

/// Hostile frames: an `At` followed by anything but a listing or a
/// restore, two `At`s, an `At` with 10^9 nanoseconds, a `Versions` of
/// `..`: each ends its connection with an error, never the server.
#[test]
fn hostile_history_frames_end_the_connection_only() {
    let s = scratch();
    let srv = Server::start(&[]);
    let src = s.join("src");
    small_tree(&src, 4);
    srv.client(argv!["backup", &src]).run().ok();
    let at = to_vec(&Frame::At { secs: 5, nanos: 0 });
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "At then Versions",
            [
                at.clone(),
                to_vec(&Frame::Versions {
                    id: 1,
                    path: wpath("x"),
                }),
            ]
            .concat(),
        ),
        ("two At", [at.clone(), at.clone()].concat()),
        (
            "At then Verify",
            [
                at.clone(),
                to_vec(&Frame::Verify {
                    id: 1,
                    path: wpath("x"),
                }),
            ]
            .concat(),
        ),
        (
            "At then Commit",
            [at.clone(), to_vec(&Frame::Commit { id: 1 })].concat(),
        ),
        (
            "nanos",
            raw_frame(
                39,
                &[
                    5u64.to_be_bytes().to_vec(),
                    1_000_000_000u32.to_be_bytes().to_vec(),
                ]
                .concat(),
            ),
        ),
        (
            "Versions of ..",
            raw_frame(
                40,
                &[1u32.to_be_bytes().to_vec(), enc_bytes(b"..")].concat(),
            ),
        ),
        (
            "Versions of a/../b",
            raw_frame(
                40,
                &[1u32.to_be_bytes().to_vec(), enc_bytes(b"a/../b")].concat(),
            ),
        ),
        (
            "Version from a client",
            to_vec(&Frame::Version {
                id: 1,
                item: rsb::proto::VersionItem {
                    path: wpath("x"),
                    kind: rsb::proto::EntryKind::File,
                    size: 0,
                    meta: meta(0o644),
                    stored: Default::default(),
                    until: Default::default(),
                    held: 0,
                },
            }),
        ),
    ];
    for (what, bytes) in cases {
        let mut raw = Raw::hello(srv.port(), NAME);
        let _ = raw.send_raw(&bytes);
        let frames = raw.expect_closed(Duration::from_secs(5));
        assert!(
            frames.iter().any(|f| matches!(f, Frame::Error { .. })),
            "{what}: {frames:?}"
        );
    }
    // An At then a List is answered as of then (nothing at 5 s after the
    // epoch), and the connection goes on.
    let mut raw = Raw::hello(srv.port(), NAME);
    let rel = src.strip_prefix("/").unwrap().to_str().unwrap();
    let (frames, _) = raw.exchange(
        &[
            at,
            to_vec(&Frame::List {
                id: 1,
                path: wpath(rel),
            }),
        ]
        .concat(),
        1,
        Duration::from_secs(5),
    );
    assert!(
        matches!(frames.first(), Some(Frame::Failed { message, .. }) if message.contains("no such path at")),
        "{frames:?}"
    );
    let (frames, _) = raw.exchange(
        &to_vec(&Frame::Versions {
            id: 2,
            path: wpath(rel),
        }),
        2,
        Duration::from_secs(5),
    );
    assert!(
        matches!(frames.first(), Some(Frame::Version { .. })),
        "{frames:?}"
    );
    assert!(srv.client(argv!["ls", &src]).run().code() == Some(0));
}
