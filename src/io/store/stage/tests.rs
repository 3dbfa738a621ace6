//! Unit tests of staging: what is visible before and after a commit, partials, modes, stand-ins.

use super::*;
use crate::proto::Time;

pub(crate) fn wp(s: &str) -> WirePath {
    WirePath::new(s.as_bytes().to_vec()).unwrap()
}

pub(crate) fn meta(mode: u32, secs: i64) -> Meta {
    Meta {
        mode,
        mtime: Time {
            secs,
            nanos: 123_456_789,
        },
        uid: nix::unistd::geteuid().as_raw(),
        gid: nix::unistd::getegid().as_raw(),
    }
}

/// Writes `data` to an incoming file's descriptor (a non-empty file has one).
pub(crate) fn write_all(fd: &Option<OwnedFd>, data: &[u8]) {
    nix::unistd::write(fd.as_ref().unwrap(), data).unwrap();
}

pub(crate) fn stager(dir: &std::path::Path) -> Stager {
    Stager::new(Namespace::open_dir(dir).unwrap(), StageOptions::default())
}

fn with(dir: &std::path::Path, opts: StageOptions) -> Stager {
    Stager::new(Namespace::open_dir(dir).unwrap(), opts)
}

#[test]
fn nothing_visible_before_commit_and_nothing_left_after_drop() {
    let t = tempfile::tempdir().unwrap();
    std::fs::write(t.path().join("f"), b"old").unwrap();
    {
        let mut s = stager(t.path());
        let inc = s.begin_file(1, &wp("f"), meta(0o640, 1000), 3).unwrap();
        write_all(&inc.file, b"new");
        s.finish_file(0).unwrap();
        assert_eq!(std::fs::read(t.path().join("f")).unwrap(), b"old");
    }
    assert_eq!(std::fs::read(t.path().join("f")).unwrap(), b"old");
    let names: Vec<_> = std::fs::read_dir(t.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 1, "{names:?}");
}

#[test]
fn aborted_file_leaves_old_version() {
    let t = tempfile::tempdir().unwrap();
    std::fs::write(t.path().join("f"), b"old").unwrap();
    let mut s = stager(t.path());
    let inc = s.begin_file(1, &wp("f"), meta(0o600, 1), 3).unwrap();
    write_all(&inc.file, b"ne");
    s.abort_file();
    assert!(s.commit().failures.is_empty());
    assert_eq!(std::fs::read(t.path().join("f")).unwrap(), b"old");
    assert_eq!(std::fs::read_dir(t.path()).unwrap().count(), 1);
}

#[test]
fn never_writes_through_a_stored_symlink() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("root");
    std::fs::create_dir(&root).unwrap();
    let outside = t.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    std::os::unix::fs::symlink(&outside, root.join("d")).unwrap();
    std::os::unix::fs::symlink(&outside, root.join("e")).unwrap();
    let mut s = stager(&root);
    // Entries under a stored link replace the link with a directory...
    s.begin_file(1, &wp("d/f"), meta(0o600, 1), 0).unwrap();
    s.finish_file(0).unwrap();
    s.symlink(2, &wp("d/l"), b"x", meta(0o600, 1)).unwrap();
    // ...and so does a directory entry where the link is.
    s.mkdir(&wp("e"), meta(0o755, 1)).unwrap();
    assert!(s.commit().failures.is_empty());
    assert!(std::fs::symlink_metadata(root.join("d")).unwrap().is_dir());
    assert!(std::fs::symlink_metadata(root.join("e")).unwrap().is_dir());
    assert!(std::fs::symlink_metadata(root.join("d/f"))
        .unwrap()
        .is_file());
    // Nothing was ever written through either link.
    assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0);
}

#[test]
fn a_file_becoming_a_directory_keeps_the_file_until_the_commit() {
    let t = tempfile::tempdir().unwrap();
    std::fs::write(t.path().join("x"), b"old file").unwrap();
    std::fs::write(t.path().join("y"), b"old y").unwrap();
    let names = |t: &tempfile::TempDir| {
        let mut v: Vec<_> = std::fs::read_dir(t.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        v.sort();
        v
    };
    // Aborted: both come back, nothing else is left.
    {
        let mut s = stager(t.path());
        let inc = s.begin_file(1, &wp("x/a/b"), meta(0o600, 1), 1).unwrap();
        write_all(&inc.file, b"n");
        s.finish_file(0).unwrap();
        s.mkdir(&wp("x/a"), meta(0o755, 1)).unwrap();
        s.mkdir(&wp("x"), meta(0o755, 1)).unwrap();
        s.mkdir(&wp("y"), meta(0o755, 1)).unwrap();
        // Until the commit the old files stay in place (a crash here
        // must leave them, not an empty directory).
        assert_eq!(std::fs::read(t.path().join("x")).unwrap(), b"old file");
        assert_eq!(std::fs::read(t.path().join("y")).unwrap(), b"old y");
    }
    assert_eq!(std::fs::read(t.path().join("x")).unwrap(), b"old file");
    assert_eq!(std::fs::read(t.path().join("y")).unwrap(), b"old y");
    assert_eq!(names(&t), ["x", "y"]);
    // Committed: the directories replace them and the old files go.
    let mut s = stager(t.path());
    let inc = s.begin_file(1, &wp("x/a"), meta(0o600, 1), 1).unwrap();
    write_all(&inc.file, b"n");
    s.finish_file(0).unwrap();
    s.mkdir(&wp("x"), meta(0o755, 1)).unwrap();
    s.mkdir(&wp("y"), meta(0o755, 1)).unwrap();
    assert!(s.commit().failures.is_empty());
    assert_eq!(std::fs::read(t.path().join("x/a")).unwrap(), b"n");
    assert!(t.path().join("y").is_dir());
    assert_eq!(names(&t), ["x", "y"]);
}

#[test]
fn a_large_file_inside_a_directory_that_replaces_a_file_is_committed() {
    let t = tempfile::tempdir().unwrap();
    std::fs::write(t.path().join("x"), b"old file").unwrap();
    let size = resume::RESUME_MIN;
    let body = vec![9u8; size as usize];
    let keep = StageOptions {
        keep_partials: true,
        ..StageOptions::default()
    };
    let mut s = with(t.path(), keep);
    let inc = s.begin_file(1, &wp("x/big"), meta(0o600, 5), size).unwrap();
    write_all(&inc.file, &body);
    s.finish_file(crc32c::crc32c(&body)).unwrap();
    s.mkdir(&wp("x"), meta(0o755, 5)).unwrap();
    let report = s.commit();
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    assert_eq!(std::fs::read(t.path().join("x/big")).unwrap(), body);
}

#[test]
fn partials_are_kept_and_resumed_only_when_the_options_say_so() {
    let t = tempfile::tempdir().unwrap();
    let size = resume::RESUME_MIN;
    let half = vec![7u8; (size / 2) as usize];
    let keep = StageOptions {
        keep_partials: true,
        ..StageOptions::default()
    };
    {
        let mut s = with(t.path(), keep);
        let inc = s.begin_file(1, &wp("big"), meta(0o600, 5), size).unwrap();
        write_all(&inc.file, &half);
        // Dropped before the body is complete: the partial stays.
    }
    assert_eq!(
        stager(t.path()).partial_len(&wp("big"), size, &meta(0o600, 5)),
        None
    );
    let mut s = with(t.path(), keep);
    assert_eq!(
        s.partial_len(&wp("big"), size, &meta(0o600, 5)),
        Some(size / 2)
    );
    // Another version of the file has no partial.
    assert_eq!(s.partial_len(&wp("big"), size, &meta(0o600, 6)), None);
    let inc = s
        .resume_file(2, &wp("big"), meta(0o600, 5), size, size / 2)
        .unwrap();
    assert_eq!((inc.offset, inc.crc), (size / 2, crc32c::crc32c(&half)));
    assert!(!inc.prefix_pending);
    drop(s);
    let mut s = with(
        t.path(),
        StageOptions {
            defer_prefix_crc: true,
            ..keep
        },
    );
    let inc = s
        .resume_file(3, &wp("big"), meta(0o600, 5), size, size / 2)
        .unwrap();
    assert!(inc.prefix_pending);
    assert_eq!(inc.crc, 0);
    let kept = inc.kept().unwrap();
    assert_eq!(kept.crc(0, size / 2, 0).unwrap(), crc32c::crc32c(&half));
    drop(s);
    let mut s = stager(t.path());
    let e = s
        .resume_file(4, &wp("big"), meta(0o600, 5), size, size / 2)
        .err()
        .unwrap();
    assert_eq!(e.raw_os_error(), Some(nix::libc::ENOENT));
}

/// Issue 14: a fresh file is created with its plain mode and its owner
/// where the prediction of [`made`] holds, so the `chmod` and `chown`
/// that would change nothing are left out; every mode and owner still
/// comes out right, whether made with it or changed after.
#[test]
fn fresh_files_get_every_mode_and_owner_whether_made_with_them_or_changed_after() {
    use std::os::unix::fs::MetadataExt;
    // Plain modes (made with them), and ones that are not: set-id,
    // sticky, no owner write, bits a umask may take.
    let modes = [
        0o600, 0o644, 0o640, 0o666, 0o777, 0o755, 0o4755, 0o2750, 0o1644, 0o444, 0o200, 0o000,
    ];
    for opts in [
        StageOptions::default(),
        StageOptions {
            fake_super: true,
            keep_owners: true,
            record_checksums: true,
            ..StageOptions::default()
        },
    ] {
        let t = tempfile::tempdir().unwrap();
        let mut s = with(t.path(), opts);
        for (i, mode) in modes.iter().enumerate() {
            let inc = s
                .begin_file(i as u32, &wp(&format!("f{i}")), meta(*mode, 9), 1)
                .unwrap();
            write_all(&inc.file, b"m");
            s.finish_file(crc32c::crc32c(b"m")).unwrap();
        }
        let r = s.commit();
        assert!(r.failures.is_empty(), "{:?}", r.failures);
        for (i, mode) in modes.iter().enumerate() {
            let m = std::fs::symlink_metadata(t.path().join(format!("f{i}"))).unwrap();
            let want = if opts.fake_super {
                crate::store::modes::on_disk(*mode, EntryKind::File, is_root())
            } else {
                *mode
            };
            assert_eq!(m.mode() & 0o7777, want, "{mode:o} {opts:?}");
            assert_eq!((m.uid(), m.gid()), (meta(0, 0).uid, meta(0, 0).gid));
            assert_eq!(m.mtime(), 9);
        }
    }
    if !is_root() {
        eprintln!("not root: owners other than ours skipped");
        return;
    }
    // As a root server: files of other owners, and a directory of
    // another group with the set-group-ID bit (a new file there takes the
    // directory's group, not the process's: the prediction is off there).
    let t = tempfile::tempdir().unwrap();
    let g = t.path().join("g");
    std::fs::create_dir(&g).unwrap();
    nix::unistd::chown(&g, None, Some(nix::unistd::Gid::from_raw(4321))).unwrap();
    std::fs::set_permissions(&g, std::os::unix::fs::PermissionsExt::from_mode(0o2775)).unwrap();
    let opts = StageOptions {
        fake_super: true,
        keep_owners: true,
        ..StageOptions::default()
    };
    let mut s = with(t.path(), opts);
    let ours = meta(0o644, 5);
    let theirs = Meta {
        uid: 1234,
        gid: 5678,
        ..ours
    };
    let files = [
        ("own", ours),
        ("theirs", theirs),
        ("g/own", ours),
        ("g/theirs", theirs),
    ];
    for (i, (p, m)) in files.iter().enumerate() {
        let inc = s.begin_file(i as u32, &wp(p), *m, 1).unwrap();
        write_all(&inc.file, b"o");
        s.finish_file(crc32c::crc32c(b"o")).unwrap();
    }
    let r = s.commit();
    assert!(r.failures.is_empty(), "{:?}", r.failures);
    for (p, m) in files {
        let st = std::fs::symlink_metadata(t.path().join(p)).unwrap();
        assert_eq!(
            (st.uid(), st.gid(), st.mode() & 0o7777),
            (m.uid, m.gid, 0o644),
            "{p}"
        );
    }
}

/// A directory with a default ACL gives a new file the ACL's bits instead
/// of the mode it is created with: no prediction there, the mode is set.
#[test]
fn a_fresh_file_under_a_default_acl_still_gets_its_mode() {
    use std::os::unix::fs::MetadataExt;
    let t = tempfile::tempdir().unwrap();
    let d = t.path().join("acl");
    std::fs::create_dir(&d).unwrap();
    let set = std::process::Command::new("setfacl")
        .args(["-d", "-m", "u::rwx,g::---,o::---"])
        .arg(&d)
        .status();
    if !set.is_ok_and(|s| s.success()) {
        eprintln!("skipped: no setfacl, or no ACLs on this file system");
        return;
    }
    for opts in [
        StageOptions::default(),
        StageOptions {
            fake_super: true,
            keep_owners: true,
            ..StageOptions::default()
        },
    ] {
        let mut s = with(t.path(), opts);
        // The first file, where the prediction holds and is checked; then
        // one under the ACL.
        for (id, p) in [(1, "first"), (2, "acl/f")] {
            let inc = s.begin_file(id, &wp(p), meta(0o644, 3), 1).unwrap();
            write_all(&inc.file, b"a");
            s.finish_file(crc32c::crc32c(b"a")).unwrap();
        }
        let r = s.commit();
        assert!(r.failures.is_empty(), "{:?}", r.failures);
        for p in ["first", "acl/f"] {
            let m = std::fs::symlink_metadata(t.path().join(p)).unwrap();
            assert_eq!(m.mode() & 0o7777, 0o644, "{p} {opts:?}");
        }
    }
}
