//! The commit of a staged batch: `syncfs` (the staged data is durable),
//! rename every staged file and link over its final name, remove what
//! they displaced, apply directory modes and times deepest first, `syncfs`
//! again. Returns a [`CommitReport`]: what is now in place (enough for a
//! history or a sync group to learn what changed) and every failure, each
//! with the errno the kernel gave (a full disk says "No space left on
//! device" for each file it failed).
//!
//! Must not stage anything: entries come from [`Stager`]'s staging calls.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use nix::errno::Errno;
use nix::fcntl;
use nix::sys::stat;
use nix::unistd::{self, UnlinkatFlags};

use super::beneath::os;
use super::stage::{omit, remove_tree, timespec, Remove, Stager};
use crate::io::error::FsError;
use crate::proto::{EntryKind, Meta, WirePath};

/// An entry a commit put in place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed {
    /// Its path beneath the tree.
    pub path: WirePath,
    /// File, directory or link.
    pub kind: EntryKind,
    /// The mode and mtime it was given.
    pub meta: Meta,
    /// A file's size, a link's target length; 0 for a directory.
    pub size: u64,
}

/// One failure of a commit: which entry, and why.
#[derive(Debug)]
pub struct CommitFailure {
    /// Request id of the entry (0: a directory, or the whole batch).
    pub id: u32,
    /// Its path.
    pub path: WirePath,
    /// The cause, with its errno.
    pub error: FsError,
}

/// What a commit did: every entry now in place (files and links in the
/// order they were staged, then directories deepest first) and every
/// failure. When the final `syncfs` fails, the entries are in place but
/// perhaps not durable: that shows as a failure for the root.
#[derive(Debug, Default)]
pub struct CommitReport {
    /// What is now in place. Today only the tests read it; it is what
    /// history (the replaced versions), sync groups
    /// (the changes to pass on) and the web dashboard will learn a commit's
    /// effect from, without a second look at the disk.
    pub committed: Vec<Committed>,
    /// What could not be committed.
    pub failures: Vec<CommitFailure>,
}

impl Stager {
    /// Makes every staged entry durable and visible, and reports what is
    /// now in place and what could not be committed (see
    /// [`CommitReport`]).
    pub fn commit(&mut self) -> CommitReport {
        let mut report = CommitReport::default();
        let CommitReport {
            committed,
            failures,
        } = &mut report;
        self.parent = None;
        self.touched.clear();
        let staged = std::mem::take(&mut self.staged);
        let mut dirs = std::mem::take(&mut self.dirs);
        if staged.is_empty() && dirs.is_empty() {
            return report;
        }
        if !staged.is_empty() {
            if let Err(e) = self.sync() {
                // Every entry fails for the same cause, errno and all (a
                // full disk says so for each file).
                for s in staged {
                    self.remove_tmp(&s.path, &s.tmp);
                    failures.push(CommitFailure {
                        id: s.id,
                        path: s.path,
                        error: e.clone(),
                    });
                }
                self.restore_displaced();
                return report;
            }
        }
        let mut parent_path: Option<WirePath> = None;
        let mut parent_fd: Option<OwnedFd> = None;
        for s in staged {
            let Some(pp) = s.path.parent() else { continue };
            if parent_path.as_ref() != Some(&pp) {
                parent_fd = None;
                match self.ns.tree.dir(&pp) {
                    Ok(fd) => parent_fd = Some(fd),
                    Err(error) => {
                        failures.push(CommitFailure {
                            id: s.id,
                            path: s.path,
                            error,
                        });
                        parent_path = None;
                        continue;
                    }
                }
                parent_path = Some(pp);
            }
            let Some(dir) = parent_fd.as_ref() else {
                continue;
            };
            let Some(name) = s.path.file_name() else {
                continue;
            };
            let dir = dir.as_raw_fd();
            if !Stager::still_staged(dir, &s) {
                // Not the file this stager wrote: never rename it.
                failures.push(CommitFailure {
                    id: s.id,
                    error: FsError::errno("rename", self.ns.tree.show(&s.path), Errno::ESTALE),
                    path: s.path,
                });
                continue;
            }
            let mut res = fcntl::renameat(Some(dir), os(&s.tmp), Some(dir), os(name));
            if matches!(res, Err(Errno::EISDIR | Errno::ENOTEMPTY | Errno::EEXIST)) {
                // A directory stands where the new file or link goes: move
                // it aside (removed below, once the new entry is in place).
                let pp = s.path.parent().unwrap_or_default();
                res = self
                    .displace(dir, &pp, name)
                    .and_then(|()| {
                        let r = fcntl::renameat(Some(dir), os(&s.tmp), Some(dir), os(name));
                        if r.is_err() {
                            if let Some(d) = self.displaced.pop() {
                                let _ =
                                    fcntl::renameat(Some(dir), os(&d.tmp), Some(dir), os(&d.name));
                            }
                        }
                        r.map_err(|e| FsError::errno("rename", self.ns.tree.show(&s.path), e))
                    })
                    .map_err(|e| e.raw_os_error().map_or(Errno::EIO, Errno::from_raw));
            }
            match res {
                Ok(()) => committed.push(Committed {
                    path: s.path,
                    kind: s.kind,
                    meta: s.meta,
                    size: s.size,
                }),
                Err(e) => {
                    let _ = unistd::unlinkat(Some(dir), os(&s.tmp), UnlinkatFlags::NoRemoveDir);
                    failures.push(CommitFailure {
                        id: s.id,
                        error: FsError::errno("rename", self.ns.tree.show(&s.path), e),
                        path: s.path,
                    });
                }
            }
        }
        // The new entries are in place and their data is durable: the old
        // versions they displaced go now, before directory times are set
        // (removing a name changes its directory's mtime), and the final
        // sync makes both durable together.
        for d in std::mem::take(&mut self.displaced) {
            if let Ok(dir) = self.ns.tree.dir(&d.parent) {
                if let Err(e) = remove_tree(dir.as_raw_fd(), &d.tmp, Remove::All, 0) {
                    log::warn!(
                        "{}: cannot remove the replaced entry: {}",
                        self.ns.tree.show_in(&d.parent, &d.name),
                        e.desc()
                    );
                }
            }
        }
        // Deepest first: setting a child's mtime changes nothing above it,
        // but creating it did, so parents are stamped last.
        dirs.sort_by_key(|(p, _)| std::cmp::Reverse(p.components().count()));
        for (path, meta) in dirs {
            let res = self.ns.tree.dir(&path).and_then(|fd| {
                self.set_mode(fd.as_fd(), EntryKind::Dir, meta.mode)
                    .map_err(|(op, e)| FsError::errno(op, self.ns.tree.show(&path), e))?;
                stat::futimens(fd.as_raw_fd(), &omit(), &timespec(&meta))
                    .map_err(|e| FsError::errno("utimes", self.ns.tree.show(&path), e))
            });
            match res {
                Ok(()) => committed.push(Committed {
                    path,
                    kind: EntryKind::Dir,
                    meta,
                    size: 0,
                }),
                Err(error) => failures.push(CommitFailure { id: 0, path, error }),
            }
        }
        if let Err(error) = self.sync() {
            failures.push(CommitFailure {
                id: 0,
                path: WirePath::root(),
                error,
            });
        }
        report
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::store::stage::tests::{meta, stager, wp, write_all};
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn commit_renames_and_sets_metadata() {
        let t = tempfile::tempdir().unwrap();
        let mut s = stager(t.path());
        s.mkdir(&wp("d"), meta(0o555, 2000)).unwrap();
        let inc = s.begin_file(2, &wp("d/f"), meta(0o604, 1000), 3).unwrap();
        write_all(&inc.file, b"abc");
        s.finish_file(0).unwrap();
        s.symlink(3, &wp("d/l"), b"../nowhere", meta(0o777, 3000))
            .unwrap();
        assert!(s.commit().failures.is_empty());
        let f = std::fs::symlink_metadata(t.path().join("d/f")).unwrap();
        assert_eq!(
            (f.mode() & 0o7777, f.mtime(), f.mtime_nsec()),
            (0o604, 1000, 123_456_789)
        );
        let l = std::fs::symlink_metadata(t.path().join("d/l")).unwrap();
        assert!(l.file_type().is_symlink());
        assert_eq!(l.mtime(), 3000);
        assert_eq!(
            std::fs::read_link(t.path().join("d/l")).unwrap(),
            std::path::Path::new("../nowhere")
        );
        let d = std::fs::symlink_metadata(t.path().join("d")).unwrap();
        assert_eq!((d.mode() & 0o7777, d.mtime()), (0o555, 2000));
        // A second backup into the read-only directory still works.
        let mut s = stager(t.path());
        s.mkdir(&wp("d"), meta(0o555, 2000)).unwrap();
        let inc = s.begin_file(4, &wp("d/g"), meta(0o600, 1), 1).unwrap();
        write_all(&inc.file, b"x");
        s.finish_file(0).unwrap();
        assert!(s.commit().failures.is_empty());
        assert_eq!(std::fs::read(t.path().join("d/g")).unwrap(), b"x");
        std::fs::set_permissions(
            t.path().join("d"),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
    }

    #[test]
    fn a_file_or_link_replaces_a_directory_tree_at_the_commit() {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(t.path().join("x/y/z")).unwrap();
        std::fs::write(t.path().join("x/y/z/f"), b"old").unwrap();
        std::fs::create_dir_all(t.path().join("l/m")).unwrap();
        // A read-only directory inside must not stop the removal.
        std::fs::set_permissions(
            t.path().join("x/y"),
            std::os::unix::fs::PermissionsExt::from_mode(0o500),
        )
        .unwrap();
        let mut s = stager(t.path());
        let inc = s.begin_file(9, &wp("x"), meta(0o600, 1), 3).unwrap();
        write_all(&inc.file, b"new");
        s.finish_file(0).unwrap();
        s.symlink(10, &wp("l"), b"target", meta(0o777, 1)).unwrap();
        // Before the commit the old trees are intact.
        assert!(t.path().join("x/y/z/f").is_file());
        assert!(s.commit().failures.is_empty());
        assert_eq!(std::fs::read(t.path().join("x")).unwrap(), b"new");
        assert!(std::fs::symlink_metadata(t.path().join("l"))
            .unwrap()
            .file_type()
            .is_symlink());
        let mut names: Vec<_> = std::fs::read_dir(t.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        assert_eq!(names, ["l", "x"]);
    }

    #[test]
    fn commit_reports_what_it_put_in_place() {
        let t = tempfile::tempdir().unwrap();
        let mut s = stager(t.path());
        let inc = s.begin_file(1, &wp("d/f"), meta(0o600, 10), 3).unwrap();
        write_all(&inc.file, b"abc");
        s.finish_file(crc32c::crc32c(b"abc")).unwrap();
        s.symlink(2, &wp("d/l"), b"f", meta(0o777, 11)).unwrap();
        s.mkdir(&wp("d/e"), meta(0o755, 12)).unwrap();
        s.mkdir(&wp("d"), meta(0o755, 13)).unwrap();
        let r = s.commit();
        assert!(r.failures.is_empty());
        let got: Vec<_> = r
            .committed
            .iter()
            .map(|c| (c.path.clone(), c.kind, c.meta, c.size))
            .collect();
        assert_eq!(
            got,
            [
                (wp("d/f"), EntryKind::File, meta(0o600, 10), 3),
                (wp("d/l"), EntryKind::Symlink, meta(0o777, 11), 1),
                (wp("d/e"), EntryKind::Dir, meta(0o755, 12), 0),
                (wp("d"), EntryKind::Dir, meta(0o755, 13), 0),
            ]
        );
        // Nothing staged: nothing to report.
        let r = s.commit();
        assert!(r.committed.is_empty() && r.failures.is_empty());
    }

    #[test]
    fn a_failure_keeps_its_errno_and_the_rest_is_committed() {
        let t = tempfile::tempdir().unwrap();
        let mut s = stager(t.path());
        let inc = s.begin_file(7, &wp("x/f"), meta(0o600, 1), 1).unwrap();
        write_all(&inc.file, b"x");
        s.finish_file(0).unwrap();
        let inc = s.begin_file(8, &wp("g"), meta(0o600, 1), 1).unwrap();
        write_all(&inc.file, b"g");
        s.finish_file(0).unwrap();
        // The directory goes before the commit: its entry cannot be put in
        // place, and says why.
        std::fs::remove_dir_all(t.path().join("x")).unwrap();
        let r = s.commit();
        assert_eq!(r.failures.len(), 1);
        let f = &r.failures[0];
        assert_eq!((f.id, &f.path), (7, &wp("x/f")));
        assert_eq!(f.error.raw_os_error(), Some(nix::libc::ENOENT));
        assert_eq!(
            f.error.to_string(),
            format!("open {}/x: No such file or directory", t.path().display())
        );
        assert_eq!(r.committed.len(), 1);
        assert_eq!(r.committed[0].path, wp("g"));
        assert_eq!(std::fs::read(t.path().join("g")).unwrap(), b"g");
    }
}
