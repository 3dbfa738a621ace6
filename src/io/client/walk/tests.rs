//! The walk's tests, on real temporary trees.

use super::*;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::time::{Duration, SystemTime};

/// Walks and renders each item as a short string relative to `base`.
fn render(root: &Path, base: &Path) -> Vec<String> {
    walk(root)
        .filter(|item| !matches!(item, WalkItem::Closed { .. }))
        .map(|item| match item {
            WalkItem::Entry(e) => {
                let rel = e.local.strip_prefix(base).unwrap_or(&e.local);
                let kind = match e.kind {
                    EntryKind::File => "file",
                    EntryKind::Dir => "dir",
                    EntryKind::Symlink => "link",
                    EntryKind::Fifo => "fifo",
                    EntryKind::Socket => "socket",
                    EntryKind::CharDev => "chr",
                    EntryKind::BlockDev => "blk",
                    EntryKind::HardLink => "hardlink",
                };
                format!("{kind} {}", rel.display())
            }
            WalkItem::Excluded { path } => {
                format!(
                    "excluded {}",
                    path.strip_prefix(base).unwrap_or(&path).display()
                )
            }
            WalkItem::Skipped { path, .. } => {
                format!(
                    "skip {}",
                    path.strip_prefix(base).unwrap_or(&path).display()
                )
            }
            WalkItem::Vanished { path } => {
                format!(
                    "vanished {}",
                    path.strip_prefix(base).unwrap_or(&path).display()
                )
            }
            WalkItem::Error { path, error } => {
                format!(
                    "error {} {:?}",
                    path.strip_prefix(base).unwrap_or(&path).display(),
                    error.kind()
                )
            }
            WalkItem::Closed { wire, whole, .. } => format!("closed {wire} {whole}"),
        })
        .collect()
}

/// Each directory opened is closed after everything beneath it,
/// whole unless an entry of it was left out; the walk's ancestors and
/// a file given as the root are never closed.
#[test]
fn directories_are_closed_after_their_contents_and_say_if_read_whole() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("r");
    fs::create_dir_all(root.join("a/inner")).unwrap();
    fs::create_dir_all(root.join("b/store")).unwrap();
    fs::write(root.join("a/inner/f"), b"x").unwrap();
    fs::write(root.join("b/g"), b"y").unwrap();
    let store = fs::metadata(root.join("b/store")).unwrap();
    let opts = WalkOptions {
        exclude: Some((store.dev(), store.ino())),
        ..WalkOptions::default()
    };
    let wire = |p: &Path| WirePath::from_local(p.as_os_str().as_bytes()).unwrap();
    let items: Vec<String> = walk_with(&root, opts)
        .filter_map(|item| match item {
            WalkItem::Entry(e) if e.local.starts_with(&root) => Some(format!(
                "entry {}",
                e.local.strip_prefix(&root).unwrap().display()
            )),
            WalkItem::Closed { wire: w, whole, .. } => {
                let rel = w.as_bytes().strip_prefix(wire(&root).as_bytes()).unwrap();
                Some(format!(
                    "closed {}{} {whole}",
                    "r",
                    String::from_utf8_lossy(rel)
                ))
            }
            WalkItem::Excluded { .. } => Some("excluded".into()),
            _ => None,
        })
        .collect();
    assert_eq!(
        items,
        [
            "entry ",
            "entry a",
            "entry a/inner",
            "entry a/inner/f",
            "closed r/a/inner true",
            "closed r/a true",
            "entry b",
            "entry b/g",
            "excluded",
            "closed r/b false",
            "closed r true",
        ]
    );
    let file: Vec<String> = walk(&root.join("b/g"))
        .filter(|i| matches!(i, WalkItem::Closed { .. }))
        .map(|_| "closed".to_string())
        .collect();
    assert!(file.is_empty(), "a file closes nothing: {file:?}");
}

fn entries(root: &Path) -> Vec<LocalEntry> {
    walk(root)
        .filter_map(|item| match item {
            WalkItem::Entry(e) => Some(e),
            _ => None,
        })
        .collect()
}

fn tree() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path().join("root");
    fs::create_dir_all(r.join("b/y")).unwrap();
    fs::write(r.join("a"), b"hello").unwrap();
    fs::write(r.join("b/z"), b"").unwrap();
    fs::write(r.join("B"), b"upper").unwrap();
    symlink("b", r.join("c")).unwrap();
    nix::unistd::mkfifo(&r.join("f"), Mode::from_bits_truncate(0o644)).unwrap();
    dir
}

#[test]
fn order_is_sorted_pre_order() {
    let dir = tree();
    let base = dir.path();
    let items = render(&base.join("root"), base);
    let ancestors = base.components().count() - 1;
    assert!(
        items[..ancestors].iter().all(|s| s.starts_with("dir ")),
        "{items:?}"
    );
    assert_eq!(
        items[ancestors..],
        [
            "dir root",
            "file root/B",
            "file root/a",
            "dir root/b",
            "dir root/b/y",
            "file root/b/z",
            "link root/c",
            "fifo root/f"
        ]
    );
}

#[test]
fn ancestors_come_first_with_wire_paths() {
    let dir = tree();
    let root = dir.path().join("root");
    let all = entries(&root);
    let mut expect = PathBuf::from("/");
    let comps: Vec<_> = root.components().skip(1).collect();
    for (entry, comp) in all.iter().zip(&comps) {
        expect.push(comp);
        assert_eq!(entry.local, expect);
        assert_eq!(entry.kind, EntryKind::Dir);
        assert_eq!(entry.wire.as_bytes(), &expect.as_os_str().as_bytes()[1..]);
    }
    let root_entry = &all[comps.len() - 1];
    assert_eq!(root_entry.local, root);
    let a = all.iter().find(|e| e.local == root.join("a")).unwrap();
    assert_eq!(a.size, 5);
    assert_eq!(
        a.wire.as_bytes(),
        root.join("a")
            .as_os_str()
            .as_bytes()
            .strip_prefix(b"/")
            .unwrap()
    );
}

#[test]
fn symlinks_are_not_followed() {
    let dir = tree();
    let root = dir.path().join("root");
    let all = entries(&root);
    let c = all.iter().find(|e| e.local == root.join("c")).unwrap();
    assert_eq!(
        (c.kind, c.target.as_slice(), c.size),
        (EntryKind::Symlink, &b"b"[..], 0)
    );
    let below_c = |e: &LocalEntry| e.local.starts_with(root.join("c")) && e.local != root.join("c");
    assert!(!all.iter().any(below_c));

    // A symlink as the root is one entry, after its ancestors.
    let items = render(&root.join("c"), dir.path());
    assert_eq!(items.last().map(String::as_str), Some("link root/c"));
    assert_eq!(items.iter().filter(|s| s.contains("root/b")).count(), 0);
}

#[test]
fn fifos_sockets_and_devices_are_entries() {
    let dir = tree();
    let r = dir.path().join("root");
    let _sock = std::os::unix::net::UnixListener::bind(r.join("s")).unwrap();
    let fifo = r.join("f");
    match walk(&fifo).last() {
        Some(WalkItem::Entry(e)) => {
            assert_eq!(
                (e.local, e.kind, e.size, e.rdev),
                (fifo, EntryKind::Fifo, 0, 0)
            );
            assert_eq!(e.meta.mode & 0o777, 0o644 & !umask());
        }
        other => panic!("{other:?}"),
    }
    let s = entries(&r).into_iter().find(|e| e.local == r.join("s"));
    assert_eq!(s.map(|e| e.kind), Some(EntryKind::Socket));
    // /dev/null is a character device 1,3 on every Linux.
    match walk(Path::new("/dev/null")).last() {
        Some(WalkItem::Entry(e)) => {
            assert_eq!(
                (e.kind, e.rdev),
                (EntryKind::CharDev, crate::proto::make_dev(1, 3))
            )
        }
        other => panic!("{other:?}"),
    }
}

fn umask() -> u32 {
    let old = nix::sys::stat::umask(Mode::from_bits_truncate(0o022));
    nix::sys::stat::umask(old);
    old.bits()
}

#[test]
fn the_store_is_left_out_with_its_contents() {
    let dir = tree();
    let r = dir.path().join("root");
    let md = fs::metadata(r.join("b")).unwrap();
    let opts = WalkOptions {
        exclude: Some((md.dev(), md.ino())),
        ..WalkOptions::default()
    };
    let items: Vec<String> = walk_with(&r, opts)
        .map(|i| match i {
            WalkItem::Entry(e) => e.local.display().to_string(),
            WalkItem::Excluded { path } => format!("excluded {}", path.display()),
            other => format!("{other:?}"),
        })
        .filter(|s| s.contains("root/"))
        .collect();
    assert!(items.contains(&format!("excluded {}", r.join("b").display())));
    assert!(!items.iter().any(|s| s.contains("root/b/")), "{items:?}");
    assert!(items.contains(&r.join("a").display().to_string()));
}

#[test]
fn missing_root_is_one_error() {
    let dir = tempfile::tempdir().unwrap();
    for missing in [dir.path().join("nope"), dir.path().join("no/such/dir")] {
        let items: Vec<_> = walk(&missing).collect();
        assert_eq!(items.len(), 1);
        match &items[0] {
            WalkItem::Error { path, error } => {
                assert_eq!(path, &missing);
                assert_eq!(error.kind(), io::ErrorKind::NotFound);
            }
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn an_entry_removed_after_its_directory_was_listed_has_vanished() {
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path().join("r");
    fs::create_dir_all(r.join("b")).unwrap();
    fs::write(r.join("a"), b"").unwrap();
    fs::write(r.join("c"), b"").unwrap();
    let mut w = walk(&r);
    // Up to `a`: r is listed by then.
    let mut seen = Vec::new();
    for item in w.by_ref() {
        let done = matches!(&item, WalkItem::Entry(e) if e.local == r.join("a"));
        seen.push(item);
        if done {
            break;
        }
    }
    fs::remove_dir(r.join("b")).unwrap();
    fs::remove_file(r.join("c")).unwrap();
    let rest: Vec<String> = w
        .filter(|item| !matches!(item, WalkItem::Closed { .. }))
        .map(|item| match item {
            WalkItem::Vanished { path } => format!("vanished {}", path.display()),
            other => format!("{other:?}"),
        })
        .collect();
    let show = |n: &str| format!("vanished {}", r.join(n).display());
    assert_eq!(rest, [show("b"), show("c")]);
    // A missing root is still an error: the user named it.
    assert!(matches!(
        walk(&r.join("b")).next(),
        Some(WalkItem::Error { .. })
    ));
}

#[test]
fn nanosecond_mtimes_and_modes() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("t");
    fs::write(&file, b"x").unwrap();
    let when = SystemTime::UNIX_EPOCH + Duration::new(1_600_000_000, 123_456_789);
    fs::File::options()
        .write(true)
        .open(&file)
        .unwrap()
        .set_modified(when)
        .unwrap();
    fs::set_permissions(&file, fs::Permissions::from_mode(0o4751)).unwrap();
    let e = entries(&file).pop().unwrap();
    assert_eq!(e.local, file);
    assert_eq!(
        e.meta.mtime,
        Time {
            secs: 1_600_000_000,
            nanos: 123_456_789
        }
    );
    assert_eq!(e.meta.mode, 0o4751);
}

#[test]
fn unreadable_dir_is_an_error_and_the_walk_goes_on() {
    if nix::unistd::geteuid().is_root() {
        return; // root reads every directory
    }
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path().join("r");
    fs::create_dir_all(r.join("locked")).unwrap();
    fs::write(r.join("locked/x"), b"").unwrap();
    fs::write(r.join("z"), b"").unwrap();
    fs::set_permissions(r.join("locked"), fs::Permissions::from_mode(0o000)).unwrap();
    let items = render(&r, dir.path());
    fs::set_permissions(r.join("locked"), fs::Permissions::from_mode(0o755)).unwrap();
    let n = items.len();
    assert_eq!(
        items[n - 3..],
        [
            "dir r/locked",
            "error r/locked PermissionDenied",
            "file r/z"
        ]
    );
}

#[test]
fn too_long_wire_path_is_invalid_input() {
    let dir = tempfile::tempdir().unwrap();
    let name = "n".repeat(200);
    // Built with mkdirat below an open directory, since the whole path
    // is longer than PATH_MAX.
    let mut fd = fs::File::open(dir.path()).unwrap();
    for _ in 0..21 {
        nix::sys::stat::mkdirat(
            Some(std::os::fd::AsRawFd::as_raw_fd(&fd)),
            name.as_str(),
            Mode::S_IRWXU,
        )
        .unwrap();
        let next = nix::fcntl::openat(
            Some(std::os::fd::AsRawFd::as_raw_fd(&fd)),
            name.as_str(),
            nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_DIRECTORY,
            Mode::empty(),
        )
        .unwrap();
        // SAFETY: openat just returned this descriptor and nothing else owns it.
        fd = unsafe { std::os::fd::FromRawFd::from_raw_fd(next) };
    }
    let items: Vec<_> = walk(&dir.path().join(&name)).collect();
    let errors: Vec<_> = items
        .iter()
        .filter_map(|i| match i {
            WalkItem::Error { error, .. } => Some(error),
            _ => None,
        })
        .collect();
    assert_eq!(errors.len(), 1, "{items:?}");
    assert_eq!(errors[0].kind(), io::ErrorKind::InvalidInput);
    assert_eq!(errors[0].to_string(), "path is too long");
}

#[test]
fn absolute_is_lexical() {
    let abs = |s: &str| absolute(Path::new(s)).unwrap();
    assert_eq!(abs("/a/b/../c"), Path::new("/a/c"));
    assert_eq!(abs("/a/./b//c/"), Path::new("/a/b/c"));
    assert_eq!(abs("/.."), Path::new("/"));
    assert_eq!(abs("/"), Path::new("/"));
    let cwd = std::env::current_dir().unwrap();
    assert_eq!(abs("x/y"), cwd.join("x/y"));
    assert_eq!(abs("."), cwd);
    assert_eq!(abs("x/.."), cwd);
    assert!(absolute(Path::new("")).is_err());
}

#[test]
fn slash_root_yields_no_ancestors() {
    let first = walk(Path::new("/")).next();
    match first {
        Some(WalkItem::Entry(e)) => {
            assert_eq!(e.local, Path::new("/"));
            assert!(e.wire.is_root());
            assert_eq!(e.kind, EntryKind::Dir);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn utc_fallback_and_local_time() {
    let t = utc_time(0);
    assert_eq!((t.year, t.month, t.day, t.hour, t.min), (1970, 1, 1, 0, 0));
    let t = utc_time(1_795_239_180); // 2026-11-21 05:33:00 UTC
    assert_eq!(
        (t.year, t.month, t.day, t.hour, t.min),
        (2026, 11, 21, 5, 33)
    );
    let t = utc_time(-1);
    assert_eq!(
        (t.year, t.month, t.day, t.hour, t.min),
        (1969, 12, 31, 23, 59)
    );
    let t = utc_time(951_782_400); // 2000-02-29
    assert_eq!((t.year, t.month, t.day), (2000, 2, 29));
    let local = local_time(1_795_239_180);
    assert!((1..=12).contains(&local.month) && (1..=31).contains(&local.day));
    assert!(local.hour < 24 && local.min < 60);
}

/// A listing walk opens only its root (and closes it, whole); an entry
/// walk opens nothing: a subdirectory is an entry without its contents.
#[test]
fn a_walk_goes_only_as_deep_as_its_root_says() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("r");
    fs::create_dir_all(root.join("sub/deeper")).unwrap();
    fs::write(root.join("f"), b"x").unwrap();
    fs::write(root.join("sub/g"), b"y").unwrap();
    let rendered = |depth: Depth| -> Vec<String> {
        let r = Root {
            path: root.clone(),
            depth,
            optional: false,
            base: None,
        };
        walk_root(&r, WalkOptions::default())
            .filter_map(|item| match item {
                WalkItem::Entry(e) if e.local.starts_with(&root) => Some(format!(
                    "entry {}",
                    e.local.strip_prefix(tmp.path()).unwrap().display()
                )),
                WalkItem::Closed { whole, wire, .. } => Some(format!(
                    "closed {} {whole}",
                    String::from_utf8_lossy(wire.components().last().unwrap_or(b""))
                )),
                WalkItem::Entry(_) => None,
                other => Some(format!("{other:?}")),
            })
            .collect()
    };
    assert_eq!(
        rendered(Depth::Listing),
        ["entry r", "entry r/f", "entry r/sub", "closed r true"]
    );
    assert_eq!(rendered(Depth::Entry), ["entry r"]);
    assert_eq!(
        rendered(Depth::Tree),
        [
            "entry r",
            "entry r/f",
            "entry r/sub",
            "entry r/sub/deeper",
            "closed deeper true",
            "entry r/sub/g",
            "closed sub true",
            "closed r true"
        ]
    );
}

/// An optional root that is gone is nothing, not an error.
#[test]
fn an_optional_root_that_is_gone_yields_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let gone = tmp.path().join("gone");
    let mut r = Root::tree(&gone);
    assert!(matches!(
        walk_root(&r, WalkOptions::default()).next(),
        Some(WalkItem::Error { .. })
    ));
    r.optional = true;
    assert!(walk_root(&r, WalkOptions::default()).next().is_none());
}

/// A path inside the excluded directory (the store) is not walked at all,
/// not even its ancestors.
#[test]
fn a_root_inside_the_store_is_left_out_whole() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    fs::create_dir_all(store.join("t/home")).unwrap();
    fs::write(store.join("t/home/f"), b"x").unwrap();
    let md = fs::metadata(&store).unwrap();
    let opts = WalkOptions {
        exclude: Some((md.dev(), md.ino())),
        ..WalkOptions::default()
    };
    let items: Vec<WalkItem> = walk_with(&store.join("t/home/f"), opts).collect();
    assert_eq!(items.len(), 1, "{items:?}");
    assert!(matches!(&items[0], WalkItem::Excluded { path } if *path == store));
}

/// Walks `root` with `patterns` relative to `base`, rendering entries
/// and closes relative to `shown` (`closed DIR keep NAMES`).
fn excluding(root: &Path, base: Option<&Path>, patterns: &[&str], shown: &Path) -> Vec<String> {
    let opts = WalkOptions {
        patterns: Some(Arc::new(Excludes::new(patterns).unwrap())),
        ..WalkOptions::default()
    };
    let r = Root {
        path: root.to_path_buf(),
        depth: Depth::Tree,
        optional: false,
        base: base.map(Path::to_path_buf),
    };
    let shown_wire = WirePath::from_local(shown.as_os_str().as_bytes()).unwrap();
    walk_root(&r, opts)
        .filter_map(|item| match item {
            WalkItem::Entry(e) if e.local.starts_with(shown) && e.local != shown => Some(format!(
                "{} {}",
                if e.kind == EntryKind::Dir {
                    "dir"
                } else {
                    "file"
                },
                e.local.strip_prefix(shown).unwrap().display()
            )),
            WalkItem::Entry(_) => None,
            WalkItem::Closed { wire, whole, keep } => {
                let rel = wire.as_bytes().strip_prefix(shown_wire.as_bytes()).unwrap();
                let rel = String::from_utf8_lossy(rel.strip_prefix(b"/").unwrap_or(rel));
                let keep: Vec<String> = keep
                    .iter()
                    .map(|k| String::from_utf8_lossy(k).into_owned())
                    .collect();
                Some(format!("closed {rel} {whole} [{}]", keep.join(",")))
            }
            other => Some(format!("{other:?}")),
        })
        .collect()
}

/// Issue 12: an excluded file is not yielded and its directory's close
/// names it; an excluded directory is not opened (no close, nothing
/// beneath it), and a file of that name is kept by a directory-only
/// pattern.
#[test]
fn excluded_files_and_directories_are_left_out_and_kept() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("r");
    fs::create_dir_all(root.join("cache/deep")).unwrap();
    fs::create_dir_all(root.join("d")).unwrap();
    fs::write(root.join("a.tmp"), b"x").unwrap();
    fs::write(root.join("keep"), b"x").unwrap();
    fs::write(root.join("cache/deep/f"), b"x").unwrap();
    fs::write(root.join("d/b.tmp"), b"x").unwrap();
    fs::write(root.join("d/cache"), b"a file").unwrap();
    assert_eq!(
        excluding(&root, None, &["*.tmp", "cache/"], &root),
        [
            "dir d",
            "file d/cache",
            "closed d true [b.tmp]",
            "file keep",
            "closed  true [a.tmp,cache]",
        ]
    );
}

/// A pattern with a `/` is matched against the path below the root, a
/// leading `/` anchoring it there; the root itself is never excluded,
/// even by a pattern naming it.
#[test]
fn anchored_patterns_match_below_the_root_only_and_the_root_is_never_excluded() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("r");
    fs::create_dir_all(root.join("top")).unwrap();
    fs::create_dir_all(root.join("x/top")).unwrap();
    fs::create_dir_all(root.join("r")).unwrap();
    fs::write(root.join("top/only"), b"x").unwrap();
    fs::write(root.join("x/top/only"), b"x").unwrap();
    assert_eq!(
        excluding(&root, None, &["/top/only", "/r"], &root),
        [
            "dir top",
            "closed top true [only]",
            "dir x",
            "dir x/top",
            "file x/top/only",
            "closed x/top true []",
            "closed x true []",
            "closed  true [r]",
        ]
    );
    // `r` names the root too: it is walked all the same.
    let names = excluding(&root, None, &["r"], &root);
    assert!(names.contains(&"file top/only".to_string()), "{names:?}");
    assert_eq!(names.last().unwrap(), "closed  true [r]");
}

/// Watch mode's walks: a directory below the root the user named, with
/// patterns matched relative to that root; a base that is not above the
/// path counts as none.
#[test]
fn patterns_are_matched_relative_to_the_base() {
    let tmp = tempfile::tempdir().unwrap();
    let top = tmp.path().join("home");
    let sub = top.join("a/b");
    fs::create_dir_all(&sub).unwrap();
    fs::write(sub.join("x"), b"x").unwrap();
    fs::write(sub.join("y"), b"y").unwrap();
    assert_eq!(
        excluding(&sub, Some(&top), &["/a/b/x", "a/b"], &sub),
        ["file y", "closed  true [x]"]
    );
    // Relative to the path itself: `/a/b/x` names nothing there.
    assert_eq!(
        excluding(&sub, None, &["/a/b/x"], &sub),
        ["file x", "file y", "closed  true []"]
    );
    let elsewhere = tmp.path().join("other");
    assert_eq!(
        excluding(&sub, Some(&elsewhere), &["/x"], &sub),
        ["file y", "closed  true [x]"]
    );
    // The base is the path itself, or `/`.
    assert_eq!(
        excluding(&sub, Some(&sub), &["/y"], &sub),
        ["file x", "closed  true [y]"]
    );
    let from_slash = format!("{}/x", wire_path(&sub).unwrap());
    assert_eq!(
        excluding(
            &sub,
            Some(Path::new("/")),
            &[&format!("/{from_slash}")],
            &sub
        ),
        ["file y", "closed  true [x]"]
    );
}

/// A directory not read whole keeps no names (the server deletes
/// nothing there anyway).
#[test]
fn a_directory_not_read_whole_keeps_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("r");
    fs::create_dir_all(root.join("store")).unwrap();
    fs::write(root.join("a.tmp"), b"x").unwrap();
    let store = fs::metadata(root.join("store")).unwrap();
    let opts = WalkOptions {
        exclude: Some((store.dev(), store.ino())),
        patterns: Some(Arc::new(Excludes::new(["*.tmp"]).unwrap())),
        ..WalkOptions::default()
    };
    let closes: Vec<(bool, Vec<Vec<u8>>)> = walk_with(&root, opts)
        .filter_map(|item| match item {
            WalkItem::Closed { whole, keep, .. } => Some((whole, keep)),
            _ => None,
        })
        .collect();
    assert_eq!(closes, [(false, vec![])]);
}

/// Issue 14: a tree of wide directories (wider than the helper's window,
/// some deeper than the descriptors the walk keeps open, with excluded
/// names and directories, symlinks, FIFOs and attributes) walks the same,
/// item for item, with the helper looking ahead as without it.
#[test]
fn a_wide_tree_walks_the_same_with_the_helper_as_without() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("r");
    let mut deep = root.join("deep");
    for i in 0..MAX_OPEN_DIRS + 2 {
        deep.push(format!("l{i}"));
    }
    let wide_dirs = [
        root.clone(),
        root.join("w"),
        root.join("w/sub"),
        deep.clone(),
    ];
    for d in &wide_dirs {
        fs::create_dir_all(d).unwrap();
    }
    let mut xattrs_kept = false;
    for (n, d) in wide_dirs.iter().enumerate() {
        let width = if n == 1 { 700 } else { 90 };
        for i in 0..width {
            let p = d.join(format!("f{i:04}"));
            match i % 9 {
                0 => fs::create_dir(&p).unwrap(),
                1 => symlink(format!("target{i}"), &p).unwrap(),
                2 => nix::unistd::mkfifo(&p, Mode::from_bits_truncate(0o600)).unwrap(),
                3 => fs::write(d.join(format!("f{i:04}.tmp")), b"left out").unwrap(),
                4 => fs::create_dir_all(d.join(format!("cache{i}/inside"))).unwrap(),
                _ => {
                    fs::write(&p, vec![b'x'; i]).unwrap();
                    if i % 9 == 5 {
                        let c = std::ffi::CString::new(p.as_os_str().as_bytes()).unwrap();
                        let on = crate::io::xattrs::On::Path(&c);
                        xattrs_kept |=
                            crate::io::xattrs::set(on, b"user.n", format!("{i}").as_bytes())
                                .is_ok();
                    }
                }
            }
        }
    }
    let opts = WalkOptions {
        patterns: Some(Arc::new(Excludes::new(["*.tmp", "cache*/"]).unwrap())),
        ..WalkOptions::default()
    };
    let run = |helper: bool| {
        let alone = WalkOptions {
            alone: !helper,
            ..opts.clone()
        };
        let mut w = walk_with(&root, alone);
        // The ancestors (/tmp and the like) are left out: other tests
        // change their mtimes between the two walks.
        let items: Vec<String> = w
            .by_ref()
            .filter(|item| !matches!(item, WalkItem::Entry(e) if !e.local.starts_with(&root)))
            .map(|item| format!("{item:?}"))
            .collect();
        (items, w.looked_ahead)
    };
    let (alone, none) = run(false);
    let (helped, looked_ahead) = run(true);
    assert_eq!(none, 0);
    assert_eq!(alone.len(), helped.len());
    for (a, h) in alone.iter().zip(&helped) {
        assert_eq!(a, h);
    }
    assert!(
        alone.iter().any(|i| i.contains("f0010")) && !alone.iter().any(|i| i.contains(".tmp\""))
    );
    assert!(
        !alone.iter().any(|i| i.contains("inside")),
        "an excluded directory is not entered"
    );
    if xattrs_kept {
        assert!(alone
            .iter()
            .any(|i| i.contains("user.n") || i.contains("117, 115, 101, 114, 46, 110")));
    }
    if std::thread::available_parallelism().map_or(1, |n| n.get()) > 1 {
        assert!(looked_ahead > 0, "the helper looked at nothing");
    }
    eprintln!(
        "{} items, {looked_ahead} looked at by the helper",
        alone.len()
    );
}
