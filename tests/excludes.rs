//! Issue 12, excludes: `-x PATTERN`, `--exclude-from FILE` and the
//! prompt's `backup --exclude PATTERN` leave out what their patterns
//! match, with the real binaries and the store checked on disk; an entry
//! excluded after it was backed up stays on the server (the `Closed` of
//! its directory keeps its name) while a deleted sibling goes to
//! history; bad patterns are usage errors; hostile `Closed` frames with
//! names to keep are refused and delete nothing they should not.

#[macro_use]
mod common;

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;
use std::time::Duration;

use common::*;
use rsb::proto::{Frame, WirePath};

/// Every entry stored under `dir`, as paths relative to it (reserved
/// `.rsb-tmp.` names left out).
fn stored(dir: &Path) -> BTreeSet<String> {
    fn walk(dir: &Path, rel: &str, out: &mut BTreeSet<String>) {
        for e in fs::read_dir(dir).unwrap().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with(".rsb-tmp.") {
                continue;
            }
            let r = if rel.is_empty() {
                name.clone()
            } else {
                format!("{rel}/{name}")
            };
            if fs::symlink_metadata(e.path()).unwrap().is_dir() {
                walk(&e.path(), &r, out);
            }
            out.insert(r);
        }
    }
    let mut out = BTreeSet::new();
    walk(dir, "", &mut out);
    out
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|n| n.to_string()).collect()
}

/// The source's path on the server, as the batch index names it.
fn wire(p: &Path) -> String {
    p.to_str().unwrap().trim_start_matches('/').to_string()
}

/// A tree with something for each kind of pattern.
fn tree(src: &Path) {
    let t0 = (1_600_000_000, 0);
    Tree::new(src, 0o755, t0)
        .file("keep.txt", b"keep", 0o644, t0)
        .file("a.tmp", b"tmp", 0o644, t0)
        .dir("d", 0o755, t0)
        .file("d/b.tmp", b"tmp", 0o644, t0)
        .file("d/keep", b"keep", 0o644, t0)
        .file("d/cache", b"a file named cache", 0o644, t0)
        .dir("cache", 0o755, t0)
        .dir("cache/deep", 0o755, t0)
        .file("cache/deep/x", b"cached", 0o644, t0)
        .dir("top", 0o755, t0)
        .file("top/only", b"anchored", 0o644, t0)
        .file("top/other", b"other", 0o644, t0)
        .dir("x", 0o755, t0)
        .dir("x/top", 0o755, t0)
        .file("x/top/only", b"deeper", 0o644, t0)
        .finish();
}

/// What the tree's backup stores with `*.tmp`, `cache/` and `/top/only`.
const KEPT: &[&str] = &[
    "keep.txt",
    "d",
    "d/keep",
    "d/cache",
    "top",
    "top/other",
    "x",
    "x/top",
    "x/top/only",
];

#[test]
fn excluded_entries_never_reach_the_store() {
    let s = scratch();
    let srv = Server::start_at(&s.join("root"), &[]);
    let src = s.join("src");
    tree(&src);
    let o = srv
        .client_opts(
            &["-x", "*.tmp", "-x", "cache/", "--exclude", "/top/only"],
            argv!["backup", &src],
        )
        .run();
    o.ok();
    assert_eq!(stored(&srv.store(NAME, &src)), set(KEPT), "{o}");
    // A second run with the same patterns changes nothing and deletes
    // nothing.
    srv.client_opts(
        &["-x", "*.tmp", "-x", "cache/", "-x", "/top/only"],
        argv!["backup", &src],
    )
    .run()
    .sent_nothing();
    assert!(batches(&srv.ns(NAME)).is_empty());
}

/// A file and a directory backed up, then excluded, stay on the server
/// (neither deleted nor moved to history), while a file deleted from the
/// same directory in the same run is moved to history.
#[test]
fn a_newly_excluded_entry_stays_and_a_deleted_sibling_goes_to_history() {
    let s = scratch();
    let srv = Server::start_at(&s.join("root"), &[]);
    let src = s.join("src");
    let t0 = (1_600_000_000, 0);
    Tree::new(&src, 0o755, t0)
        .file("a.log", b"log", 0o644, t0)
        .file("b.txt", b"b", 0o644, t0)
        .file("c.txt", b"gone soon", 0o644, t0)
        .dir("sub", 0o755, t0)
        .file("sub/inner", b"inner", 0o644, t0)
        .finish();
    srv.client(argv!["backup", &src]).run().ok();
    let ns = srv.ns(NAME);
    let all = set(&["a.log", "b.txt", "c.txt", "sub", "sub/inner"]);
    assert_eq!(stored(&srv.store(NAME, &src)), all);

    fs::remove_file(src.join("c.txt")).unwrap();
    set_mtime(&src, (1_650_000_000, 0));
    srv.client_opts(&["-x", "*.log", "-x", "sub/"], argv!["backup", &src])
        .run()
        .ok();
    let here = srv.store(NAME, &src);
    assert_eq!(
        stored(&here),
        set(&["a.log", "b.txt", "sub", "sub/inner"]),
        "{}",
        srv.log()
    );
    assert_eq!(fs::read(here.join("a.log")).unwrap(), b"log");
    assert_eq!(fs::read(here.join("sub/inner")).unwrap(), b"inner");
    let b = batches(&ns);
    assert_eq!(b.len(), 1, "one batch: {b:?}");
    assert_eq!(index_of(&b[0]), [format!("{}/c.txt", wire(&src))]);
    assert_eq!(
        fs::read(b[0].join(wire(&src)).join("c.txt")).unwrap(),
        b"gone soon"
    );
    assert!(srv.log_has("1 deleted"), "{}", srv.log());

    // Without the patterns, the next run sends nothing new and deletes
    // nothing: the entries were there all along.
    srv.client(argv!["backup", &src]).run().sent_nothing();
    assert_eq!(batches(&ns).len(), 1);
}

#[test]
fn exclude_from_reads_one_pattern_a_line() {
    let s = scratch();
    let srv = Server::start_at(&s.join("root"), &[]);
    let src = s.join("src");
    tree(&src);
    let list = s.join("excludes");
    fs::write(
        &list,
        b"# build leftovers\n*.tmp\n\n   \r\ncache/\r\n# anchored at the root\n/top/only\n",
    )
    .unwrap();
    let list_arg = list.to_str().unwrap();
    srv.client_opts(&["--exclude-from", list_arg], argv!["backup", &src])
        .run()
        .ok();
    assert_eq!(stored(&srv.store(NAME, &src)), set(KEPT));

    // A missing file is a usage error naming it, before anything is sent.
    let missing = s.join("no-such-list");
    let o = srv
        .client_opts(
            &["--exclude-from", missing.to_str().unwrap()],
            argv!["backup", &src],
        )
        .run();
    o.code_is(2)
        .err_has(&format!("--exclude-from {}", missing.display()))
        .err_has("No such file or directory");
    // So is one that is a directory.
    srv.client_opts(
        &["--exclude-from", s.path().to_str().unwrap()],
        argv!["backup", &src],
    )
    .run()
    .code_is(2)
    .err_has("--exclude-from");
    // And a bad pattern in it.
    fs::write(&list, b"ok\n[oops\n").unwrap();
    srv.client_opts(&["--exclude-from", list_arg], argv!["backup", &src])
        .run()
        .code_is(2)
        .err_has("'[oops': '[' without a closing ']'");
}

/// `backup --exclude PATTERN` at the prompt, added to the client's own
/// `-x`; a bad pattern there is an error line and the prompt goes on.
#[test]
fn the_prompts_backup_takes_excludes() {
    let s = scratch();
    let srv = Server::start_at(&s.join("root"), &[]);
    let src = s.join("src");
    tree(&src);
    let other = s.join("other");
    Tree::new(&other, 0o755, (1_600_000_000, 0))
        .file("o.tmp", b"o", 0o644, (1_600_000_000, 0))
        .file("o.txt", b"o", 0o644, (1_600_000_000, 0))
        .finish();
    let input = format!(
        "backup --exclude '*.tmp' --exclude=/top/only {}\nbackup --exclude '[x' {}\nbackup {}\n",
        src.display(),
        other.display(),
        other.display(),
    );
    let o = srv
        .client_opts(&["-x", "cache/"], argv![])
        .stdin(input)
        .run();
    o.code_is(1)
        .err_has("exclude pattern '[x': '[' without a closing ']'");
    assert_eq!(stored(&srv.store(NAME, &src)), set(KEPT), "{o}");
    // The command's patterns were its own: the next backup kept `o.tmp`.
    assert_eq!(
        stored(&srv.store(NAME, &other)),
        set(&["o.tmp", "o.txt"]),
        "{o}"
    );
}

#[test]
fn bad_patterns_are_usage_errors() {
    let s = scratch();
    let srv = Server::start_at(&s.join("root"), &[]);
    let src = s.join("src");
    tree(&src);
    for (opts, msg) in [
        (
            &["-x", "a[b"][..],
            "exclude pattern 'a[b': '[' without a closing ']'",
        ),
        (&["--exclude", ""], "empty exclude pattern"),
        (&["-x", "/"], "exclude pattern '/' has nothing to match"),
        (&["-x", "ok", "-x", "[z-a]"], "comes after its last"),
        (&["-x", "trailing\\"], "ends with a lone backslash"),
    ] {
        srv.client_opts(opts, argv!["backup", &src])
            .run()
            .code_is(2)
            .err_has(msg)
            .err_has("usage: rsb-client");
    }
    // One-shot: the command's own patterns.
    srv.client(argv!["backup", "--exclude", "[", &src])
        .run()
        .code_is(2)
        .err_has("'[' without a closing ']'");
    srv.client(argv!["backup", "--exclude"])
        .run()
        .code_is(2)
        .err_has("--exclude needs a PATTERN");
    assert!(
        !srv.store(NAME, &src).exists(),
        "a usage error sends nothing"
    );
    // A good one-shot pattern works.
    srv.client(argv![
        "backup",
        "--exclude",
        "*.tmp",
        "-x",
        "cache/",
        "-x",
        "/top/only",
        &src
    ])
    .run()
    .ok();
    assert_eq!(stored(&srv.store(NAME, &src)), set(KEPT));
}

/// The bytes of a `Closed` keeping `keep`, whatever the names are.
fn closed(id: u32, path: &str, whole: bool, keep: &[&[u8]]) -> Vec<u8> {
    rsb::proto::codec::to_vec(&Frame::Closed {
        id,
        path: WirePath::new(path.as_bytes().to_vec()).unwrap(),
        whole,
        keep: keep.iter().map(|k| k.to_vec()).collect(),
    })
}

/// Hostile `Closed` frames with names to keep: a name with `..`, a `/`
/// or a NUL, empty or too long, names in a `Closed` that is not whole, a
/// count past the frame, a frame past the limit: each a protocol error
/// that ends only that connection and deletes nothing. Names past the
/// 32 MiB a connection holds fail that directory's deletions alone.
#[test]
fn hostile_keep_names_are_refused_and_delete_nothing() {
    let s = scratch();
    let srv = Server::start_at(&s.join("root"), &[]);
    let src = s.join("src");
    let t0 = (1_600_000_000, 0);
    Tree::new(&src, 0o755, t0)
        .file("f1", b"one", 0o644, t0)
        .file("f2", b"two", 0o644, t0)
        .finish();
    srv.client(argv!["backup", &src]).run().ok();
    let ns = srv.ns(NAME);
    let dir = wire(&src);
    let t = Duration::from_secs(20);
    let long = vec![b'n'; 256];
    let bad: Vec<(&str, Vec<u8>)> = vec![
        ("dot-dot", closed(1, &dir, true, &[b"f1", b".."])),
        ("dot", closed(1, &dir, true, &[b"."])),
        ("slash", closed(1, &dir, true, &[b"../../etc"])),
        ("nul", closed(1, &dir, true, &[b"f1\0x"])),
        ("empty", closed(1, &dir, true, &[b""])),
        ("long", closed(1, &dir, true, &[&long])),
        ("not whole", closed(1, &dir, false, &[b"f1"])),
        ("count", {
            let mut f = closed(1, &dir, true, &[b"f1"]);
            let at = 5 + 4 + 4 + dir.len() + 1;
            f[at..at + 4].copy_from_slice(&u32::MAX.to_be_bytes());
            f
        }),
        (
            "oversized",
            closed(1, &dir, true, &vec![&[b'k'; 200][..]; 400]),
        ),
    ];
    for (what, bytes) in bad {
        let mut raw = Raw::hello(srv.port(), NAME);
        let commit = rsb::proto::codec::to_vec(&Frame::Commit { id: 2 });
        let _ = raw.send_raw(&[bytes, commit].concat());
        let closing = raw.expect_closed(t);
        assert!(
            matches!(closing.last(), Some(Frame::Error { .. })),
            "{what}: {closing:?}"
        );
        assert_eq!(stored(&srv.store(NAME, &src)), set(&["f1", "f2"]), "{what}");
        assert!(batches(&ns).is_empty(), "{what}");
    }

    // Past the bound: about 33 MiB of kept names over one connection.
    // Each directory's own deletions fail once they do not fit; the
    // connection and the server go on.
    let mut raw = Raw::hello(srv.port(), NAME);
    let names: Vec<Vec<u8>> = (0..256)
        .map(|i| format!("{i:03}{}", "k".repeat(247)).into_bytes())
        .collect();
    let names: Vec<&[u8]> = names.iter().map(Vec::as_slice).collect();
    let mut bytes = Vec::new();
    let dirs = 540;
    for i in 0..dirs {
        bytes.extend(closed(i + 1, &format!("nowhere/d{i}"), true, &names));
    }
    bytes.extend(rsb::proto::codec::to_vec(&Frame::Commit { id: dirs + 1 }));
    let (frames, _) = raw.exchange(&bytes, dirs + 1, Duration::from_secs(60));
    assert!(
        matches!(frames.last(), Some(Frame::Committed { .. })),
        "{:?}",
        frames.last()
    );
    let refused = frames
        .iter()
        .filter(
            |f| matches!(f, Frame::Failed { message, .. } if message.contains("names kept there")),
        )
        .count();
    assert!(refused > 0 && refused < dirs as usize, "{refused} refused");

    // A well-formed keep list from a raw client keeps that name and the
    // rest of the directory goes to history, as a client's would.
    let mut raw = Raw::hello(srv.port(), NAME);
    let bytes = [
        closed(1, &dir, true, &[b"f1"]),
        rsb::proto::codec::to_vec(&Frame::Commit { id: 2 }),
    ]
    .concat();
    let (frames, _) = raw.exchange(&bytes, 2, t);
    assert!(
        matches!(frames.last(), Some(Frame::Committed { id: 2 })),
        "{frames:?}"
    );
    assert_eq!(stored(&srv.store(NAME, &src)), set(&["f1"]));
    let b = batches(&ns);
    assert_eq!(b.len(), 1, "{b:?}");
    assert_eq!(index_of(&b[0]), [format!("{dir}/f2")]);

    // Still serving: the client's own run puts f2 back.
    srv.client(argv!["backup", &src]).run().ok();
    assert_eq!(stored(&srv.store(NAME, &src)), set(&["f1", "f2"]));
}
