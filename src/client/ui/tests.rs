//! Unit tests of the prompt's parsing and of every line the client prints.

use super::*;
use crate::proto::{Meta, Time};

fn os(s: &str) -> OsString {
    OsString::from(s)
}

/// Paths the tests pretend exist on the local disk.
fn exists(p: &OsStr) -> bool {
    let missing: [&[u8]; 8] = [
        b"/no/", b"missing", b"lss", b"clear", b"restor", b"Help", b"lsx", b"quti",
    ];
    !missing.iter().any(|m| p.as_bytes().starts_with(m))
}

fn line(s: &str) -> Result<Option<Command>, String> {
    parse_line(s.as_bytes(), &exists)
}

fn backup(paths: &[&str]) -> Command {
    Command::Backup {
        paths: paths.iter().map(|p| os(p)).collect(),
        excludes: Vec::new(),
    }
}

#[test]
fn blank_and_comment_lines() {
    assert_eq!(line(""), Ok(None));
    assert_eq!(line("   \t "), Ok(None));
    assert_eq!(line("# a comment"), Ok(None));
    assert_eq!(line("  #indented"), Ok(None));
}

#[test]
fn command_words() {
    assert_eq!(line("help"), Ok(Some(Command::Help)));
    assert_eq!(line("  quit  "), Ok(Some(Command::Quit)));
    assert_eq!(line("exit"), Ok(Some(Command::Quit)));
    assert_eq!(
        line("ls"),
        Ok(Some(Command::Ls {
            path: None,
            at: None
        }))
    );
    assert_eq!(
        line("ls /home"),
        Ok(Some(Command::Ls {
            path: Some(os("/home")),
            at: None
        }))
    );
    assert_eq!(line("backup /a b"), Ok(Some(backup(&["/a", "b"]))));
    assert_eq!(
        line("restore /etc/hosts"),
        Ok(Some(Command::Restore {
            path: os("/etc/hosts"),
            dest: None,
            force: false,
            at: None,
        }))
    );
    assert_eq!(
        line("restore /etc/hosts /tmp/x"),
        Ok(Some(Command::Restore {
            path: os("/etc/hosts"),
            dest: Some(os("/tmp/x")),
            force: false,
            at: None,
        }))
    );
    assert_eq!(
        line("restore --force /etc/hosts /tmp/x"),
        Ok(Some(Command::Restore {
            path: os("/etc/hosts"),
            dest: Some(os("/tmp/x")),
            force: true,
            at: None,
        }))
    );
    // `--` ends the options: a path may be called --force.
    assert_eq!(
        line("restore -- --force"),
        Ok(Some(Command::Restore {
            path: os("--force"),
            dest: None,
            force: false,
            at: None,
        }))
    );
    assert!(line("restore --force").is_err());
}

#[test]
fn quoting_and_escapes() {
    assert_eq!(
        line("backup 'my thesis' \"a \\\"b\\\" \\c\" d\\ e"),
        Ok(Some(backup(&["my thesis", "a \"b\" \\c", "d e"])))
    );
    assert_eq!(line("backup a'b c'd"), Ok(Some(backup(&["ab cd"]))));
    assert_eq!(
        line("\"ls\" x"),
        Ok(Some(Command::Ls {
            path: Some(os("x")),
            at: None
        }))
    );
    assert_eq!(line("backup \\'x"), Ok(Some(backup(&["'x"]))));
}

#[test]
fn bare_path_is_the_whole_line() {
    assert_eq!(
        line("  /home/ann/my thesis \t"),
        Ok(Some(backup(&["/home/ann/my thesis"])))
    );
    assert_eq!(line("it's here"), Ok(Some(backup(&["it's here"]))));
    assert_eq!(line("a\\b \"c"), Ok(Some(backup(&["a\\b \"c"]))));
}

#[test]
fn a_mistyped_command_is_unknown_not_a_backup() {
    assert_eq!(
        line("lss"),
        Err("unknown command 'lss' (did you mean ls?); use 'backup PATH' to back up a path".into())
    );
    assert_eq!(
        line("clear"),
        Err("unknown command 'clear'; use 'backup PATH' to back up a path".into())
    );
    assert_eq!(
        line("restor /a /b"),
        Err(
            "unknown command 'restor' (did you mean restore?); use 'backup PATH' to back up a path"
                .into()
        )
    );
    assert!(line("Help").unwrap_err().contains("did you mean help?"));
    assert!(line("quti").unwrap_err().contains("did you mean quit?"));
    assert!(line("/no/such dir")
        .unwrap_err()
        .contains("'/no/such' (and no such local path)"));
    assert!(line("'missing one' b")
        .unwrap_err()
        .contains("'missing one'"));
    assert!(line("missing 'it's").unwrap_err().contains("'missing'"));
    // The explicit form still backs up whatever it is given.
    assert_eq!(line("backup lss"), Ok(Some(backup(&["lss"]))));
    let args = |v: &[&str]| v.iter().map(|s| os(s)).collect::<Vec<_>>();
    assert_eq!(
        parse_args(&args(&["restor", "/a", "/b"]), &exists),
        Err(
            "unknown command 'restor' (did you mean restore?); use 'backup PATH' to back up a path"
                .into()
        )
    );
    assert_eq!(
        parse_args(&args(&["backup", "restor"]), &exists),
        Ok(backup(&["restor"]))
    );
    assert!(parse_args(&args(&[""]), &exists).is_err());
}

#[test]
fn quoted_line_is_a_list_of_paths() {
    assert_eq!(
        line("'a b' c \"d e\""),
        Ok(Some(backup(&["a b", "c", "d e"])))
    );
    assert_eq!(line("'ls foo'"), Ok(Some(backup(&["ls foo"]))));
    assert!(line("'a b").is_err());
    assert!(line("\"a").is_err());
}

#[test]
fn non_utf8_paths() {
    assert_eq!(
        parse_line(b"/tmp/\xff x", &exists),
        Ok(Some(Command::Backup {
            paths: vec![OsString::from_vec(b"/tmp/\xff x".to_vec())],
            excludes: Vec::new(),
        }))
    );
    assert_eq!(
        parse_line(b"ls '\xfe'", &exists),
        Ok(Some(Command::Ls {
            path: Some(OsString::from_vec(vec![0xfe])),
            at: None
        }))
    );
}

#[test]
fn usage_errors() {
    for bad in [
        "backup",
        "restore",
        "restore a b c",
        "ls a b",
        "help me",
        "quit now",
        "exit 1",
        "backup 'unbalanced",
        "ls \"x",
        "restore a\\",
        "backup ''",
    ] {
        assert!(line(bad).is_err(), "{bad:?} should fail");
    }
    assert_eq!(
        line("restore"),
        Err("usage: restore [--force] [--at TIME] PATH [DEST]".to_string())
    );
}

#[test]
fn one_shot_args() {
    let args = |v: &[&str]| v.iter().map(|s| os(s)).collect::<Vec<_>>();
    assert_eq!(
        parse_args(&args(&["/a b", "c"]), &exists),
        Ok(backup(&["/a b", "c"]))
    );
    assert_eq!(
        parse_args(&args(&["backup", "x"]), &exists),
        Ok(backup(&["x"]))
    );
    assert_eq!(
        parse_args(&args(&["ls"]), &exists),
        Ok(Command::Ls {
            path: None,
            at: None
        })
    );
    assert_eq!(
        parse_args(&args(&["restore", "/p", "d"]), &exists),
        Ok(Command::Restore {
            path: os("/p"),
            dest: Some(os("d")),
            force: false,
            at: None,
        })
    );
    assert_eq!(
        parse_args(&args(&["restore", "--force", "/p"]), &exists),
        Ok(Command::Restore {
            path: os("/p"),
            dest: None,
            force: true,
            at: None,
        })
    );
    assert_eq!(parse_args(&args(&["help"]), &exists), Ok(Command::Help));
    assert_eq!(parse_args(&args(&["quit"]), &exists), Ok(Command::Quit));
    // No tokenizing: quotes are part of the name.
    assert_eq!(parse_args(&args(&["'x'"]), &exists), Ok(backup(&["'x'"])));
    assert!(parse_args(&[], &exists).is_err());
    assert!(parse_args(&args(&["backup"]), &exists).is_err());
    assert!(parse_args(&args(&["restore"]), &exists).is_err());
    assert!(parse_args(&args(&["ls", "a", "b"]), &exists).is_err());
    assert_eq!(
        parse_args(&args(&["verify"]), &exists),
        Ok(Command::Verify(None))
    );
    assert_eq!(
        parse_args(&args(&["verify", "/etc"]), &exists),
        Ok(Command::Verify(Some(os("/etc"))))
    );
    assert!(parse_args(&args(&["verify", "a", "b"]), &exists).is_err());
    assert!(parse_args(&args(&["help", "x"]), &exists).is_err());
}

#[test]
fn help_lists_every_command() {
    for word in [
        "backup", "restore", "ls", "versions", "--at", "verify", "help", "quit", "exit", "PATH",
    ] {
        assert!(HELP.lines().any(|l| l.contains(word)), "{word}");
    }
    assert!(!HELP.ends_with('\n'));
}

fn item(kind: EntryKind, name: &[u8], mode: u32, size: u64, target: &[u8]) -> ListItem {
    ListItem {
        kind,
        name: name.to_vec(),
        meta: Meta {
            mode,
            mtime: Time { secs: 0, nanos: 0 },
            uid: 0,
            gid: 0,
        },
        size,
        target: target.to_vec(),
        rdev: 0,
    }
}

const T: LocalTime = LocalTime {
    year: 2026,
    month: 11,
    day: 21,
    hour: 5,
    min: 33,
};

#[test]
fn list_lines() {
    assert_eq!(
        format_list_line(&item(EntryKind::File, b"a.txt", 0o644, 1234, b""), T),
        "-rw-r--r--       1234 2026-11-21 05:33 a.txt"
    );
    assert_eq!(
        format_list_line(&item(EntryKind::Dir, b"d", 0o755, 4096, b""), T),
        "drwxr-xr-x       4096 2026-11-21 05:33 d"
    );
    assert_eq!(
        format_list_line(&item(EntryKind::Symlink, b"l", 0o777, 6, b"target"), T),
        "lrwxrwxrwx          6 2026-11-21 05:33 l -> target"
    );
    assert_eq!(
        format_list_line(&item(EntryKind::File, b"a\nb\xff", 0o600, 0, b""), T),
        "-rw-------          0 2026-11-21 05:33 a\\x0ab\\xff"
    );
    assert_eq!(
        format_list_line(&item(EntryKind::Symlink, b"l", 0o777, 1, b"\n"), T),
        "lrwxrwxrwx          1 2026-11-21 05:33 l -> \\x0a"
    );
}

#[test]
fn specials_show_their_type_and_devices_their_numbers() {
    let dev = |kind, rdev| ListItem {
        rdev,
        ..item(kind, b"n", 0o660, 0, b"")
    };
    assert_eq!(
        format_list_line(&dev(EntryKind::CharDev, crate::proto::make_dev(1, 3)), T),
        "crw-rw----       1, 3 2026-11-21 05:33 n"
    );
    assert_eq!(
        format_list_line(
            &dev(EntryKind::BlockDev, crate::proto::make_dev(259, 65536)),
            T
        ),
        "brw-rw---- 259, 65536 2026-11-21 05:33 n"
    );
    assert_eq!(
        format_list_line(&dev(EntryKind::Fifo, 0), T),
        "prw-rw----          0 2026-11-21 05:33 n"
    );
    assert_eq!(
        format_list_line(&dev(EntryKind::Socket, 0), T),
        "srw-rw----          0 2026-11-21 05:33 n"
    );
}

#[test]
fn special_mode_bits() {
    assert_eq!(mode_string(EntryKind::File, 0o4755), "-rwsr-xr-x");
    assert_eq!(mode_string(EntryKind::File, 0o4644), "-rwSr--r--");
    assert_eq!(mode_string(EntryKind::File, 0o2755), "-rwxr-sr-x");
    assert_eq!(mode_string(EntryKind::File, 0o2745), "-rwxr-Sr-x");
    assert_eq!(mode_string(EntryKind::Dir, 0o1777), "drwxrwxrwt");
    assert_eq!(mode_string(EntryKind::Dir, 0o1776), "drwxrwxrwT");
    assert_eq!(mode_string(EntryKind::File, 0), "----------");
    assert_eq!(mode_string(EntryKind::File, 0o7777), "-rwsrwsrwt");
}

#[test]
fn verify_and_list_summaries() {
    assert_eq!(
        format_verify_summary(3, 1536, 1, 2, Duration::from_millis(50)),
        "verify: 3 files, 1.5 KiB read, 1 damaged, 2 without a checksum, in 0.05s"
    );
    assert_eq!(
        format_list_summary(12, 0, Duration::from_millis(10)),
        "ls: 12 entries, 0 failed, in 0.01s"
    );
}

#[test]
fn one_file_is_not_1_files() {
    assert_eq!(count(0, "file", "files"), "0 files");
    assert_eq!(count(1, "file", "files"), "1 file");
    assert_eq!(count(2, "entry", "entries"), "2 entries");
    let s = Summary {
        verb: "backup",
        noun: "sent",
        files: 1,
        links: 0,
        specials: 0,
        unchanged: 0,
        updated: 0,
        unsupported: 0,
        failed: 0,
        bytes: 1,
        changed: 0,
        vanished: 0,
        reused: 0,
        elapsed: Duration::from_secs(1),
    };
    assert_eq!(
        format_summary(&s),
        "backup: 1 file sent, 0 unchanged, 0 failed, 1 byte in 1.00s (1 B/s)"
    );
    assert!(format_verify_summary(1, 0, 0, 0, Duration::ZERO).starts_with("verify: 1 file, "));
    assert!(format_list_summary(1, 0, Duration::ZERO).starts_with("ls: 1 entry, "));
}

#[test]
fn summary_line() {
    let s = Summary {
        verb: "backup",
        noun: "sent",
        files: 12,
        links: 0,
        specials: 0,
        unchanged: 3,
        updated: 0,
        unsupported: 0,
        failed: 0,
        bytes: 5242897,
        changed: 0,
        vanished: 0,
        reused: 0,
        elapsed: Duration::from_millis(420),
    };
    assert_eq!(
        format_summary(&s),
        "backup: 12 files sent, 3 unchanged, 0 failed, 5242897 bytes in 0.42s (11.9 MiB/s)"
    );
    let odd = Summary {
        unsupported: 1,
        ..s
    };
    let linked = Summary { links: 2, ..s };
    assert!(
        format_summary(&linked).starts_with("backup: 12 files and 2 symlinks sent, 3 unchanged,"),
        "{}",
        format_summary(&linked)
    );
    let specials = Summary { specials: 3, ..s };
    assert!(format_summary(&specials).starts_with("backup: 12 files and 3 special files sent, "));
    let both = Summary {
        links: 1,
        specials: 1,
        ..s
    };
    assert!(format_summary(&both)
        .starts_with("backup: 12 files, 1 symlink and 1 special file sent, 3 unchanged,"));
    let one = Summary { links: 1, ..s };
    assert!(format_summary(&one).starts_with("backup: 12 files and 1 symlink sent, "));
    assert_eq!(
        format_summary(&odd),
        "backup: 12 files sent, 3 unchanged, 1 not supported, 0 failed, 5242897 bytes in 0.42s (11.9 MiB/s)"
    );
    // Issue 10: metadata-only entries are counted apart, when there are
    // some, and are not files sent.
    let updated = Summary {
        files: 0,
        bytes: 0,
        updated: 2,
        ..odd
    };
    assert_eq!(
        format_summary(&updated),
        "backup: 0 files sent, 3 unchanged, 2 updated, 1 not supported, 0 failed, 0 bytes in 0.42s (0 B/s)"
    );
    let r = Summary {
        verb: "restore",
        noun: "received",
        bytes: 0,
        elapsed: Duration::ZERO,
        ..s
    };
    assert_eq!(
        format_summary(&r),
        "restore: 12 files received, 3 unchanged, 0 failed, 0 bytes in 0.00s (0 B/s)"
    );
    let slow = Summary {
        bytes: 65 * 1024,
        elapsed: Duration::from_secs(65),
        ..s
    };
    assert!(format_summary(&slow).ends_with("66560 bytes in 1m05s (1.0 KiB/s)"));
    let warned = Summary {
        changed: 1,
        vanished: 2,
        reused: 0,
        ..s
    };
    assert_eq!(
        format_summary(&warned),
        "backup: 12 files sent, 3 unchanged, 0 failed, 1 changed while read, 2 vanished, 5242897 bytes in 0.42s (11.9 MiB/s)"
    );
}

#[test]
fn elapsed_times() {
    assert_eq!(format_elapsed(Duration::from_millis(5)), "0.01s");
    assert_eq!(format_elapsed(Duration::from_millis(59_994)), "59.99s");
    assert_eq!(format_elapsed(Duration::from_millis(59_996)), "1m00s");
    assert_eq!(format_elapsed(Duration::from_secs(605)), "10m05s");
    assert_eq!(
        format_elapsed(Duration::from_secs(3600 * 2 + 184)),
        "2h03m04s"
    );
}

#[test]
fn human_sizes() {
    assert_eq!(human_bytes(0), "0 B");
    assert_eq!(human_bytes(1023), "1023 B");
    assert_eq!(human_bytes(1024), "1.0 KiB");
    assert_eq!(human_bytes(1536), "1.5 KiB");
    assert_eq!(human_bytes(1024 * 1024 - 1), "1.0 MiB");
    assert_eq!(human_bytes(1 << 30), "1.0 GiB");
    assert_eq!(human_bytes(123_400_000), "117.7 MiB");
    assert_eq!(human_bytes(u64::MAX), "16.0 EiB");
}

fn prog(done: u64, total: Option<u64>, secs: u64, current: &str) -> Progress<'_> {
    Progress {
        done,
        total,
        elapsed: Duration::from_secs(secs),
        current,
    }
}

#[test]
fn progress_lines() {
    let p = format_progress(&prog(512 << 20, Some(1 << 30), 8, ""), 80);
    assert_eq!(
        p,
        "\r  512.0 MiB / 1.0 GiB   50%  64.0 MiB/s  ETA 0:08\x1b[K"
    );
    let p = format_progress(&prog(100, None, 1, ""), 80);
    assert_eq!(p, "\r      100 B  100 B/s\x1b[K");
    let p = format_progress(&prog(0, Some(100), 0, ""), 80);
    assert_eq!(p, "\r        0 B / 100 B    0%  0 B/s  ETA -:--\x1b[K");
    let p = format_progress(&prog(200, Some(100), 1, ""), 80);
    assert!(p.contains("ETA 0:00") && p.contains("100%"), "{p:?}");
    let p = format_progress(&prog(1, Some(3601 + 1), 1, ""), 80);
    assert!(p.contains("ETA 1:00:01"), "{p:?}");
    assert!(format_progress(&prog(0, Some(0), 0, ""), 80).contains("100%"));
    assert!(!format_progress(&prog(1, None, 0, ""), 80).contains('\n'));
}

/// The text between `\r` and `ESC[K`.
fn body(line: &str) -> &str {
    line.strip_prefix('\r')
        .and_then(|l| l.strip_suffix("\x1b[K"))
        .unwrap()
}

#[test]
fn the_progress_line_shows_total_percentage_eta_and_file_within_the_width() {
    let p = format_progress(&prog(1 << 20, Some(4 << 20), 1, "/home/ann/big.iso"), 80);
    assert_eq!(
        body(&p),
        "    1.0 MiB / 4.0 MiB   25%  1.0 MiB/s  ETA 0:03  /home/ann/big.iso"
    );
    let long = "/home/ann/".to_string() + &"d/".repeat(40) + "big.iso";
    for width in [20, 40, 60, 80, 132] {
        let p = format_progress(&prog(1 << 20, Some(4 << 20), 1, &long), width);
        let b = body(&p);
        assert!(b.chars().count() < width.max(21), "{width}: {b:?}");
        if width >= 80 {
            assert!(b.ends_with("d/big.iso") && b.contains("  ..."), "{b:?}");
        }
    }
    // A restore: no total, the file still shown.
    let p = format_progress(&prog(3 << 20, None, 1, "src/a.txt"), 80);
    assert_eq!(body(&p), "    3.0 MiB  3.0 MiB/s  src/a.txt");
    // Multi-byte names are cut on characters.
    let p = format_progress(&prog(0, None, 1, &"é".repeat(100)), 40);
    assert!(body(&p).chars().count() <= 39);
}

/// Issue 11: `--at TIME` of `ls` and `restore` (either order with
/// `--force`), `versions PATH`; TIME is kept as typed for the I/O ring.
#[test]
fn at_time_and_versions_parse() {
    let exists = |_: &OsStr| false;
    let args = |v: &[&str]| v.iter().map(|s| os(s)).collect::<Vec<_>>();
    assert_eq!(
        line("ls --at 7d /home"),
        Ok(Some(Command::Ls {
            path: Some(os("/home")),
            at: Some("7d".into())
        }))
    );
    assert_eq!(
        line("ls --at @5"),
        Ok(Some(Command::Ls {
            path: None,
            at: Some("@5".into())
        }))
    );
    let want = Command::Restore {
        path: os("/a"),
        dest: Some(os("/b")),
        force: true,
        at: Some("2026-01-02".into()),
    };
    assert_eq!(
        line("restore --at 2026-01-02 --force /a /b"),
        Ok(Some(want.clone()))
    );
    assert_eq!(
        parse_args(
            &args(&["restore", "--force", "--at", "2026-01-02", "/a", "/b"]),
            &exists
        ),
        Ok(want)
    );
    assert!(line("ls --at").is_err());
    assert!(line("restore --at 7d").is_err());
    assert!(line("restore --at 7d --at 8d /a").is_err());
    assert_eq!(line("versions /a"), Ok(Some(Command::Versions(os("/a")))));
    assert!(line("versions").is_err());
    assert!(line("versions a b").is_err());
    // A TIME that is no text is named with the accepted forms.
    let bad = parse_args(
        &[os("ls"), os("--at"), OsString::from_vec(vec![0xff])],
        &exists,
    );
    assert!(bad.is_err_and(|e| e.contains("@EPOCHSECONDS")));
}

/// Issue 11: a `versions` line, current and replaced, and its last line.
#[test]
fn version_lines() {
    let utc = |secs: i64| CivilTime::from_utc(secs).unwrap();
    let mut item = VersionItem {
        path: crate::proto::WirePath::new(b"home/a\n".to_vec()).unwrap(),
        kind: EntryKind::File,
        size: 1234,
        meta: Meta {
            mode: 0o644,
            mtime: Time {
                secs: 86_400,
                nanos: 0,
            },
            ..Meta::default()
        },
        stored: Time {
            secs: 86_401,
            nanos: 7,
        },
        until: Time::default(),
        held: 0,
    };
    assert_eq!(
        format_version_line(&item, &utc),
        "-rw-r--r-- 1970-01-02 00:00:01 current                   1234 1970-01-02 00:00:00 /home/a\\x0a"
    );
    item.until = Time {
        secs: 90_061,
        nanos: 0,
    };
    item.kind = EntryKind::Dir;
    item.meta.mode = 0o755;
    assert!(format_version_line(&item, &utc)
        .starts_with("drwxr-xr-x 1970-01-02 00:00:01 1970-01-02 01:01:01 "));
    assert_eq!(
        format_versions_summary(1, 0),
        "1 version, 0 bytes in history"
    );
    assert_eq!(
        format_versions_summary(3, 1),
        "3 versions, 1 byte in history"
    );
}

#[test]
fn watch_takes_a_delay_a_rescan_period_and_directories() {
    use std::time::Duration;
    assert_eq!(
        line("watch /a /b"),
        Ok(Some(Command::Watch {
            paths: vec![os("/a"), os("/b")],
            delay: WATCH_DELAY,
            rescan: WATCH_RESCAN,
            excludes: Vec::new(),
        }))
    );
    assert_eq!(
        line("watch --rescan 10m -x '*.o' --delay 0.5 --exclude=cache/ -- /a"),
        Ok(Some(Command::Watch {
            paths: vec![os("/a")],
            delay: Duration::from_millis(500),
            rescan: Duration::from_secs(600),
            excludes: vec![b"*.o".to_vec(), b"cache/".to_vec()],
        }))
    );
    assert!(line("watch --exclude 'a[' /a").is_err());
    assert!(line("watch --exclude").is_err());
    for bad in [
        "watch",
        "watch --delay",
        "watch --delay x /a",
        "watch --delay 0 /a",
    ] {
        assert!(line(bad).is_err(), "{bad}");
    }
    assert!(line("watch --delay 1").is_err(), "a delay and no directory");
}

/// Issue 12: `backup --exclude PATTERN ... PATH...` at the prompt and on
/// the command line, the patterns checked (a bad one is an error line),
/// through the reusable [`take_excludes`] that `watch` will use too.
#[test]
fn backup_takes_exclude_patterns() {
    let with = |paths: &[&str], excludes: &[&[u8]]| Command::Backup {
        paths: paths.iter().map(|p| os(p)).collect(),
        excludes: excludes.iter().map(|e| e.to_vec()).collect(),
    };
    assert_eq!(
        line("backup --exclude '*.tmp' --exclude=cache/ -x /top/only /a /b"),
        Ok(Some(with(
            &["/a", "/b"],
            &[b"*.tmp", b"cache/", b"/top/only"]
        )))
    );
    assert_eq!(
        line("backup --exclude '*.o' -- --exclude"),
        Ok(Some(with(&["--exclude"], &[b"*.o"])))
    );
    assert_eq!(
        line("backup /a --exclude x"),
        Ok(Some(with(&["/a", "--exclude", "x"], &[])))
    );
    assert_eq!(
        parse_line(b"backup --exclude '\xff*' /a", &exists),
        Ok(Some(with(&["/a"], &[b"\xff*"])))
    );
    let usage = "usage: backup [--exclude PATTERN]... PATH...";
    assert_eq!(
        line("backup --exclude"),
        Err(format!("--exclude needs a PATTERN; {usage}"))
    );
    assert_eq!(line("backup --exclude '*.o'"), Err(usage.to_string()));
    assert_eq!(
        line("backup --exclude 'a[b' /x"),
        Err(format!(
            "exclude pattern 'a[b': '[' without a closing ']'; {usage}"
        ))
    );
    assert_eq!(
        line("backup --exclude '' /x"),
        Err(format!("empty exclude pattern; {usage}"))
    );
    let args = |v: &[&str]| v.iter().map(|a| os(a)).collect::<Vec<_>>();
    assert_eq!(
        parse_args(&args(&["backup", "-x", "*.tmp", "/a"]), &exists),
        Ok(with(&["/a"], &[b"*.tmp"]))
    );
    assert!(parse_args(&args(&["backup", "-x", "[", "/a"]), &exists).is_err());
    // The function itself, for `watch`.
    assert_eq!(
        take_excludes(args(&["--exclude", "x", "--delay", "1", "/a"]), "u"),
        Ok((vec![b"x".to_vec()], args(&["--delay", "1", "/a"])))
    );
    assert_eq!(take_excludes(args(&[]), "u"), Ok((Vec::new(), Vec::new())));
    assert!(HELP.contains("backup --exclude PAT"));
}
